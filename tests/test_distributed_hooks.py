"""Tensor.register_post_accumulate_grad_hook: fired once per backward, after accumulation."""

import gc

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import hooks
from gradflow.autograd.function import Function


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
    gc.collect()  # (entries of tensors from earlier tests that only a collection frees)
    before = len(hooks.post_accumulate)
    t = gf.tensor([1.0], requires_grad=True)
    t.register_post_accumulate_grad_hook(lambda t: None)
    assert len(hooks.post_accumulate) == before + 1
    del t
    gc.collect()
    assert len(hooks.post_accumulate) == before


class _Marker(Function):
    """The identity, noting in ``events`` when its backward runs."""

    events = []

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        _Marker.events.append("marker backward")
        return (g,)


def test_a_leaf_is_finished_as_soon_as_nothing_left_in_backward_adds_to_it():
    w1 = gf.tensor(np.ones((3, 3)), requires_grad=True)
    w2 = gf.tensor(np.full((3, 3), 2.0), requires_grad=True)
    x = gf.tensor(np.arange(3.0))
    events = _Marker.events
    events.clear()
    for name, w in (("w1", w1), ("w2", w2)):
        w.register_post_accumulate_grad_hook(
            lambda t, name=name: events.append((name, t.grad.numpy().copy())))
    # w2 is used twice, both times after the marker: its gradient is complete (both uses summed)
    # before the marker's backward runs; w1's only after it.
    h = _Marker.apply(w1 @ x)
    ((w2 @ h) * (w2 @ h)).sum().backward()
    assert [e if isinstance(e, str) else e[0] for e in events] == ["w2", "marker backward", "w1"]
    expected = gf.tensor(np.ones((3, 3)), requires_grad=True), gf.tensor(
        np.full((3, 3), 2.0), requires_grad=True)
    ((expected[1] @ (expected[0] @ x)) ** 2).sum().backward()
    np.testing.assert_allclose(events[0][1], expected[1].grad.numpy())
    np.testing.assert_allclose(events[2][1], expected[0].grad.numpy())
