"""Tensor.register_post_accumulate_grad_hook: fired once per backward, after accumulation."""

import gc

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import hooks


def test_fires_once_with_the_complete_grad():
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (w * 3 + w * w).sum().backward()  # two uses: the hook sees their sum, once
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [5.0, 7.0])
    (w * 3).sum().backward()  # accumulated onto the previous .grad
    assert len(seen) == 2
    np.testing.assert_allclose(seen[1], [8.0, 10.0])


def test_order_follows_the_engine_and_remove_works():
    a = gf.tensor([1.0], requires_grad=True)
    b = gf.tensor([2.0], requires_grad=True)
    order = []
    ha = a.register_post_accumulate_grad_hook(lambda t: order.append("a"))
    b.register_post_accumulate_grad_hook(lambda t: order.append("b"))
    ((a * 2) * b).sum().backward()
    assert sorted(order) == ["a", "b"]
    ha.remove()
    ha.remove()  # a second remove is harmless
    order.clear()
    ((a * 2) * b).sum().backward()
    assert order == ["b"]


def test_not_fired_by_autograd_grad_nor_for_unused_leaves():
    a = gf.tensor([1.0], requires_grad=True)
    unused = gf.tensor([1.0], requires_grad=True)
    calls = []
    a.register_post_accumulate_grad_hook(calls.append)
    unused.register_post_accumulate_grad_hook(calls.append)
    gf.grad((a * a).sum(), a)
    assert calls == []
    (a * a).sum().backward()
    assert calls == [a]


def test_only_leaves_that_require_grad():
    x = gf.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        gf.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="callable"):
        x.register_post_accumulate_grad_hook(3)


def test_registry_empties_when_the_tensor_dies():
    before = len(hooks.post_accumulate)
    t = gf.tensor([1.0], requires_grad=True)
    t.register_post_accumulate_grad_hook(lambda t: None)
    assert len(hooks.post_accumulate) == before + 1
    del t
    gc.collect()
    assert len(hooks.post_accumulate) == before
