"""Reliability of the engine and the op layer: each case gives PyTorch's answer or a clear
exception, never a wrong number. Private .grad memory, concurrent accumulation, views and
in-place ops, values captured for backward, checks on what custom backwards return, casts,
clamp with tensor bounds, pow at zero, complex input and the errors for odd arguments."""
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradflow as gf  # noqa: E402
import gradflow.nn.functional as F  # noqa: E402
from gradflow.autograd.function import Function  # noqa: E402


def f64(a, requires_grad=True):
    return gf.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def t64(a, requires_grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def grad_of(t):
    return t.grad.detach().numpy() if isinstance(t, torch.Tensor) else t.grad.numpy()


# ---- .grad is private memory -------------------------------------------------------------------
@pytest.mark.parametrize("view", [
    lambda x: x.reshape(4), lambda x: x.flatten(), lambda x: x.reshape(1, 4).squeeze(0),
], ids=["reshape", "flatten", "squeeze"])
def test_grad_never_aliases_the_callers_gradient(view):
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    g = gf.tensor([1.0, 2.0, 3.0, 4.0], dtype=gf.float64)
    view(x).backward(g)
    assert not np.shares_memory(x.grad.array, g.array)
    x.grad.array += 1
    np.testing.assert_array_equal(g.numpy(), [1.0, 2.0, 3.0, 4.0])


def test_two_leaves_never_share_a_grad_buffer():
    a, b = f64([[1.0, 2.0]]), f64([[3.0, 4.0]])
    g = gf.tensor([1.0, 5.0], dtype=gf.float64)
    (a.reshape(2) + b.reshape(2)).backward(g)
    assert not np.shares_memory(a.grad.array, b.grad.array)
    assert not np.shares_memory(a.grad.array, g.array)
    a.grad.array[...] = 0
    np.testing.assert_array_equal(b.grad.numpy(), [[1.0, 5.0]])


def test_grad_never_aliases_an_array_a_custom_backward_keeps():
    class Keep(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            ctx.kept = g * 2
            return (ctx.kept,)

    x = f64([1.0, 2.0])
    y = Keep.apply(x)
    y.sum().backward(retain_graph=True)
    assert not np.shares_memory(x.grad.array, y.grad_fn.kept.array)


def test_zero_grad_without_set_to_none_then_sgd_matches_torch():
    w0 = np.arange(6.0).reshape(2, 3) / 7
    x0 = np.linspace(-1, 1, 8).reshape(4, 2)
    g0 = np.linspace(0.5, 1, 6)

    def train(lib):
        mk = t64 if lib is torch else f64
        w, b = mk(w0), mk(w0[0])
        x, g = mk(x0, False), mk(g0, False)  # g: one gradient tensor, reused every step
        opt = (torch.optim.SGD if lib is torch else gf.optim.SGD)([w, b], lr=0.1, momentum=0.9)
        for _ in range(4):
            opt.zero_grad(set_to_none=False)
            # Backward through a view hands w a view of g as its first gradient. (PyTorch keeps
            # that view as .grad and then writes into g, so it gets a copy of g.)
            w.reshape(6).backward(g.clone() if lib is torch else g)
            h = x @ w + b.reshape(1, 3)
            (h * h).sum().backward()
            opt.step()
        return w.detach().numpy().copy(), b.detach().numpy().copy(), g.numpy().copy()

    got, want = train(gf), train(torch)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_array_equal(got[2], g0)


# ---- concurrent backward passes ----------------------------------------------------------------
def test_concurrent_backwards_into_one_leaf_lose_no_update():
    from gradflow.autograd.grad_mode import state

    n_threads, n_backwards = 8, 60
    w = f64(np.zeros((256, 256)))
    graphs = [[(w * 1.0).sum() for _ in range(n_backwards)] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)
    errors = []

    def work(ys):
        try:
            barrier.wait()
            for y in ys:
                y.backward()
        except Exception as e:  # reported below: a thread's exception would be lost
            errors.append(e)

    modes = state.phase, state.grad_enabled  # (each backward switches them while it runs)
    threads = [threading.Thread(target=work, args=(ys,)) for ys in graphs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        state.phase, state.grad_enabled = modes
    assert not errors
    np.testing.assert_array_equal(w.grad.numpy(), np.full((256, 256), n_threads * n_backwards))


# ---- what a custom backward (or forward) returns -------------------------------------------------
def _op(forward, backward):
    return type("Custom", (Function,), {"forward": staticmethod(forward),
                                        "backward": staticmethod(backward)})


@pytest.mark.parametrize("bad_shape", [(3, 2), (6,), (2, 4), (1, 3, 3)])
def test_backward_gradient_of_the_wrong_shape_raises(bad_shape):
    op = _op(lambda ctx, a: a * 1, lambda ctx, g: (gf.ones(*bad_shape, dtype=gf.float64),))
    x = f64(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"Custom.*\(2, 3\)") as e:
        op.apply(x).sum().backward()
    assert str(bad_shape) in str(e.value)


def test_backward_gradient_that_broadcasts_is_summed():
    op = _op(lambda ctx, a: a * 1, lambda ctx, g: (gf.ones(4, 2, 3, dtype=gf.float64),))
    x = f64(np.ones((1, 3)))
    op.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[8.0, 8.0, 8.0]])


@pytest.mark.parametrize("dtype", [gf.int64, gf.bool_])
def test_backward_gradient_of_a_non_float_dtype_raises(dtype):
    op = _op(lambda ctx, a: a * 1, lambda ctx, g: (gf.ones(2, dtype=dtype),))
    with pytest.raises(TypeError, match="Custom.*dtype"):
        op.apply(f64([1.0, 2.0])).sum().backward()


def test_backward_gradient_of_another_float_dtype_is_cast():
    op = _op(lambda ctx, a: a * 1, lambda ctx, g: (gf.ones(2, dtype=gf.float32),))
    x = f64([1.0, 2.0])
    op.apply(x).sum().backward()
    assert x.grad.dtype == gf.float64


def test_backward_gradient_on_another_backend_raises():
    from gradflow.backend import reference

    class Elsewhere:  # a backend object other than the input's (stands in for another device)
        name = "cuda:7"
        xp = reference.xp

    op = _op(lambda ctx, a: a * 1, lambda ctx, g: (gf.Tensor(g.array.copy(), Elsewhere, None),))
    with pytest.raises(RuntimeError, match="Custom.*cuda:7.*cpu"):
        op.apply(f64([1.0, 2.0])).sum().backward()


def test_backward_returning_a_bare_tensor_for_one_input_is_accepted():
    op = _op(lambda ctx, a: a * 2, lambda ctx, g: g * 2)
    x = f64([1.0, 2.0])
    op.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_backward_returning_a_bare_tensor_for_two_inputs_raises():
    # a Tensor of two elements must not be read as one gradient per input
    op = _op(lambda ctx, a, b: a * b, lambda ctx, g: g)
    with pytest.raises(TypeError, match="Custom.*single Tensor for 2 inputs"):
        op.apply(f64([1.0, 2.0]), f64([3.0, 4.0])).sum().backward()


@pytest.mark.parametrize("result", [[1.0, 2.0], None, (1.0,), 3.0], ids=["list", "None", "tuple", "float"])
def test_forward_returning_a_non_array_raises(result):
    op = _op(lambda ctx, a: result, lambda ctx, g: (g,))
    with pytest.raises(TypeError, match="Custom.forward returned a"):
        op.apply(f64([1.0, 2.0]))


def test_grad_with_mismatched_grad_outputs_raises():
    x = f64([1.0, 2.0])
    y, z = x * 2, x * 3
    with pytest.raises(ValueError, match="1 grad_outputs for 2 outputs"):
        gf.grad([y, z], [x], grad_outputs=[gf.ones(2, dtype=gf.float64)])
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        gf.grad([y], [x], grad_outputs=[gf.ones(2, dtype=gf.float64)] * 2)


# ---- casts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, torch_dtype", [
    (gf.int64, torch.int64), (gf.int32, torch.int32), (gf.bool_, torch.bool)])
def test_casting_to_an_integer_or_bool_dtype_cuts_the_graph(dtype, torch_dtype):
    y = f64([0.5, 1.5, -2.0]).to(dtype)
    assert y.requires_grad is t64([0.5, 1.5, -2.0]).to(torch_dtype).requires_grad is False
    assert y.grad_fn is None
    assert f64([1.0]).to(gf.float32).requires_grad  # a float cast stays differentiable


# ---- pow at zero ----------------------------------------------------------------------------------
@pytest.mark.parametrize("b", [0.0, 0.5, 1.0, 2.0, -1.0])
def test_pow_gradients_at_a_zero_base_match_torch(b):
    a0, b0 = [0.0, 0.0, 2.0], [b, b, b]
    a, e = f64(a0), f64(b0)
    (a ** e).sum().backward()
    ta, te = t64(a0), t64(b0)
    (ta ** te).sum().backward()
    # (the infinities and NaNs at 0 exactly; away from 0 within 1 ulp: gradflow's pow is not
    # correctly rounded, libm's is)
    np.testing.assert_allclose(grad_of(a), grad_of(ta), rtol=1e-15)
    np.testing.assert_allclose(grad_of(e), grad_of(te), rtol=1e-15)
    a, ta = f64(a0), t64(a0)  # a number exponent: the fused kernel
    (a ** b).sum().backward()
    (ta ** b).sum().backward()
    np.testing.assert_allclose(grad_of(a), grad_of(ta), rtol=1e-15)  # (away from 0: within 1 ulp)


# ---- complex input --------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: gf.tensor(np.array([1 + 2j, 3.0])),
    lambda: gf.tensor([1.0, 2.0], dtype=np.complex128),
    lambda: gf.from_numpy(np.array([1j], np.complex64)),
    lambda: gf.from_dlpack(np.array([1j])),
    lambda: gf.tensor([1.0, 2.0]) + np.array([1j, 2.0]),
    lambda: gf.tensor([1.0, 2.0]) * 1j,
    lambda: gf.tensor([1.0, 2.0]).to(np.complex64),
    lambda: gf.zeros(2, dtype=np.complex64),
    lambda: gf.eye(2, dtype=np.complex128),
    lambda: gf.randn(2, dtype=np.complex64),
], ids=["tensor", "tensor-dtype", "from_numpy", "from_dlpack", "array-operand", "number-operand",
        "to", "zeros", "eye", "randn"])
def test_complex_input_is_rejected(make):
    with pytest.raises(TypeError, match="complex"):
        make()


def test_complex_arrays_in_a_checkpoint_are_rejected(tmp_path):
    import json

    path = tmp_path / "c.npz"
    structure = {"format": "gradflow-checkpoint", "version": 1,
                 "state": {"__tensor__": 0, "device": "cpu", "requires_grad": False}}
    np.savez(path, __structure__=np.frombuffer(json.dumps(structure).encode(), np.uint8),
             a0=np.array([1j, 2.0]))
    with pytest.raises(ValueError, match="complex"):
        gf.load(path)


# ---- clear errors for odd arguments -----------------------------------------------------------------
def test_unknown_device_says_unknown_device(tmp_path):
    x = gf.tensor([1.0])
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        x.to("tpu")
    assert x.to("float64").dtype == gf.float64  # a dtype name still works
    gf.save({"x": x}, tmp_path / "a.npz")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        gf.load(tmp_path / "a.npz", map_location="tpu")


def test_a_checkpoint_naming_an_unknown_device_says_unknown_device(tmp_path):
    import json

    path = tmp_path / "d.npz"
    structure = {"format": "gradflow-checkpoint", "version": 1,
                 "state": {"__tensor__": 0, "device": "tpu", "requires_grad": False}}
    np.savez(path, __structure__=np.frombuffer(json.dumps(structure).encode(), np.uint8),
             a0=np.ones(2))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        gf.load(path)


def test_concatenate_and_split_of_zero_dimensional_tensors_raise():  # RuntimeError, as PyTorch
    with pytest.raises(RuntimeError, match="zero-dimensional tensor .* cannot be concatenated"):
        gf.concatenate([gf.tensor(1.0), gf.tensor(2.0)])
    with pytest.raises(RuntimeError, match="1-dimensional"):
        gf.split(gf.tensor(1.0), 1)


@pytest.mark.parametrize("sizes", [[3, -1], [-1, 3], [0, 2, 0]])
def test_split_sizes(sizes):
    x = gf.arange(2.0)
    if min(sizes) < 0:
        with pytest.raises(ValueError, match="non-negative"):
            gf.split(x, sizes)
    else:  # empty pieces are allowed, as in PyTorch
        assert [p.shape for p in gf.split(x, sizes)] == [(0,), (2,), (0,)]


@pytest.mark.parametrize("shape", [(2.5, 2), (2, 2.0), ((2.0, 2),), (True, 4)])
def test_reshape_with_a_non_integer_size_raises_naming_it(shape):
    x = gf.zeros(4)
    with pytest.raises(TypeError, match="reshape: the shape must be ints"):
        x.reshape(*shape)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "logsumexp", "var", "argmax"])
@pytest.mark.parametrize("axis", [True, 1.0, (0, 1.5), "0"])
def test_reductions_reject_bool_and_float_axes(op, axis):
    x = gf.ones(2, 3)
    with pytest.raises(TypeError, match=f"{op}: dim must be an int"):
        getattr(x, op)(axis=axis)


def test_normalize_dims():
    from gradflow.ops._util import normalize_dims

    assert normalize_dims(None, 3, "f") == (0, 1, 2)
    assert normalize_dims(-1, 3, "f") == (2,)
    assert normalize_dims((2, np.int64(0)), 3, "f") == (0, 2)
    with pytest.raises(IndexError, match="f: dim 3 is out of range"):
        normalize_dims(3, 3, "f")
    with pytest.raises(ValueError, match="repeated"):
        normalize_dims((0, -3), 3, "f")
    with pytest.raises(TypeError, match="f: dim must be an int"):
        normalize_dims(False, 3, "f")


def test_save_rejects_self_referencing_and_deeply_nested_states(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        gf.save(loop, tmp_path / "a.npz")
    deep = inner = []
    for _ in range(10_000):
        inner.append([])
        inner = inner[0]
    with pytest.raises(ValueError, match="nested more than"):
        gf.save(deep, tmp_path / "b.npz")
    shared = [1.0]  # the same container twice, not inside itself, is fine
    gf.save({"p": shared, "q": shared}, tmp_path / "c.npz")
    assert gf.load(tmp_path / "c.npz") == {"p": [1.0], "q": [1.0]}


@pytest.mark.parametrize("depth", [150, 100_000])
def test_load_rejects_deeply_nested_structures(tmp_path, depth):
    path = tmp_path / "deep.npz"
    text = ('{"format": "gradflow-checkpoint", "version": 1, "state": '
            + "[" * depth + "]" * depth + "}")
    np.savez(path, __structure__=np.frombuffer(text.encode(), np.uint8))
    with pytest.raises(ValueError, match="not a readable gradflow checkpoint"):
        gf.load(path)


# ---- clamp with tensor bounds -----------------------------------------------------------------------
_CLAMP_X = [-2.0, 0.0, 1.0, 2.0, 3.0, 5.0, 1.5, 1.5]  # ties with either bound, and min > max
_CLAMP_LO = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 1.5]
_CLAMP_HI = [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 1.0, 1.5]


@pytest.mark.parametrize("which", ["both", "min", "max"])
def test_clamp_with_tensor_bounds_matches_torch(which):
    def run(mk, clamp):
        x, lo, hi = mk(_CLAMP_X), mk(_CLAMP_LO), mk(_CLAMP_HI)
        kw = {"both": dict(min=lo, max=hi), "min": dict(min=lo), "max": dict(max=hi)}[which]
        y = clamp(x, **kw)
        (y * mk(np.arange(1.0, 9.0), False)).sum().backward()
        return [y.detach().numpy()] + [grad_of(t) if t.grad is not None else None
                                        for t in (x, lo, hi)]

    got, want = run(f64, gf.clip), run(t64, torch.clamp)
    for a, b in zip(got, want):
        if b is None:
            assert a is None
        else:
            np.testing.assert_array_equal(a, b)


def test_clamp_with_broadcast_tensor_bounds_matches_torch():
    rng = np.random.default_rng(0)
    x0, lo0, hi0 = rng.normal(size=(3, 4)), rng.normal(size=(4,)) - 0.5, rng.normal(size=(3, 1)) + 0.5

    def run(mk, clamp):
        x, lo, hi = mk(x0), mk(lo0), mk(hi0)
        y = clamp(x, lo, hi)
        (y * y).sum().backward()
        return [grad_of(t) for t in (x, lo, hi)]

    for a, b in zip(run(f64, gf.clip), run(t64, torch.clamp)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_clamp_with_tensor_bounds_passes_gradcheck():
    rng = np.random.default_rng(1)
    x, lo, hi = (f64(rng.uniform(-2, 2, size=s)) for s in [(3, 4), (4,), (3, 1)])
    hi.array += 2.5  # away from ties, where the derivative jumps
    assert gf.autograd.gradcheck(lambda x, lo, hi: gf.clip(x, lo, hi) * x, (x, lo, hi))


def test_clamp_accepts_keywords_a_none_bound_and_numbers():
    x = f64([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(x.clamp(max=1.0).detach().numpy(), [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(gf.clip(x, min=0.0, max=None).detach().numpy(), [0.0, 0.5, 2.0])
    hi = f64([1.0])
    y = x.clamp(0.0, hi)  # a number and a tensor
    y.sum().backward()
    np.testing.assert_array_equal(hi.grad.numpy(), [1.0])
    with pytest.raises(ValueError, match="at least one of min and max"):
        x.clamp()


# ---- values a node keeps for backward ---------------------------------------------------------------
def test_index_tensor_changed_after_getitem_does_not_change_the_gradient():
    x = f64([1.0, 2.0, 3.0])
    idx = gf.tensor([0, 0, 2])
    y = x[idx]
    idx[...] = 1  # in place, after the op
    (y * f64([1.0, 2.0, 3.0], False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 3.0])


@pytest.mark.parametrize("kind", ["array", "list", "mask"])
def test_index_array_changed_after_getitem_does_not_change_the_gradient(kind):
    x = f64([1.0, 2.0, 3.0])
    idx = {"array": np.array([0, 2]), "list": [0, 2], "mask": np.array([True, False, True])}[kind]
    y = x[idx]
    if kind == "list":
        idx[:] = [1, 1]
    else:
        idx[...] = ~idx if kind == "mask" else 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])


def test_index_changed_after_setitem_does_not_change_the_gradient():
    v = f64([5.0])
    x = f64([1.0, 2.0, 3.0]) * 1
    idx = np.array([1])
    x[idx] = v
    idx[0] = 2
    (x * f64([1.0, 2.0, 3.0], False)).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [2.0])


def test_where_condition_changed_afterwards_does_not_change_the_gradient():
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0])
    cond = gf.tensor([True, False])
    y = gf.where(cond, a, b)
    cond[...] = False
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 1.0])


def test_cross_entropy_labels_changed_afterwards_do_not_change_the_gradient():
    z0 = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]])
    labels = gf.tensor([0, 2])
    z = f64(z0)
    loss = F.cross_entropy(z, labels)
    labels[...] = 1
    loss.backward()
    tz = t64(z0)
    torch.nn.functional.cross_entropy(tz, torch.tensor([0, 2])).backward()
    np.testing.assert_allclose(z.grad.numpy(), grad_of(tz), rtol=1e-12)


# ---- views and in-place changes -------------------------------------------------------------------
def _clone(x):
    return x.clone() if isinstance(x, torch.Tensor) else x * 1


def _base_mul_then_view(leaf):
    x = _clone(leaf)
    v = x[0]
    x.mul_(2)
    return (v * v).sum()


def _base_mul_then_base(leaf):
    x = _clone(leaf)
    v = x[0]  # noqa: F841  (a live view while the base changes)
    x.mul_(2)
    return (x * x).sum()


def _base_setitem_then_view_and_base(leaf):
    x = _clone(leaf)
    v = x[0]
    x[1] = 0.0
    return (v * 2).sum() + x.sum()


def _setitem_overwrites_part_of_a_view(leaf):
    x = _clone(leaf)
    v = x[:, 1]
    x[0, 1] = 10.0
    return (v * leaf[0]).sum()


def _base_add_then_view(leaf):
    x = _clone(leaf)
    v = x[0]
    x.add_(1)
    return v.sum()


def _base_mul_then_view_sum(leaf):  # a linear use of the view: only the path can be wrong
    x = _clone(leaf)
    v = x[0]
    x.mul_(3)
    return v.sum()


def _view_of_view_and_reshape(leaf):
    x = _clone(leaf)
    v = x[1][1:]
    r = x.reshape(4)
    t = x.T
    x.mul_(leaf)
    return (v * 3).sum() + (r * r).sum() + t[0].sum()


def _view_used_before_and_after(leaf):
    x = _clone(leaf)
    v = x[0]
    y = v * 5  # recorded before the change: reads the old value
    x.mul_(2)
    return (y + v * v).sum()


def _view_of_a_tensor_that_starts_without_grad(leaf):
    x = leaf.detach() * 1 if isinstance(leaf, gf.Tensor) else leaf.detach().clone()
    v = x[0]
    x.mul_(leaf)  # x (and so v) now depend on leaf
    return (v * v).sum()


@pytest.mark.parametrize("program", [
    _base_mul_then_view, _base_mul_then_base, _base_setitem_then_view_and_base,
    _setitem_overwrites_part_of_a_view, _base_add_then_view, _base_mul_then_view_sum,
    _view_of_view_and_reshape, _view_used_before_and_after,
    _view_of_a_tensor_that_starts_without_grad,
], ids=lambda f: f.__name__.strip("_"))
def test_inplace_on_a_base_with_live_views_matches_torch(program):
    a = [[1.0, 2.0], [3.0, 4.0]]
    leaf, tleaf = f64(a), t64(a)
    program(leaf).backward()
    program(tleaf).backward()
    np.testing.assert_array_equal(grad_of(leaf), grad_of(tleaf))


def _write_add_then_base(leaf, w):
    x = _clone(leaf)
    x[0].add_(1)
    return (x * x).sum()


def _write_mul_then_view(leaf, w):
    x = _clone(leaf)
    v = x[0]
    v.mul_(3)
    return (v * v).sum()


def _write_mul_by_tensor(leaf, w):
    x = _clone(leaf)
    x[0].mul_(w)
    return (x * x).sum()


def _write_setitem_through_view(leaf, w):
    x = _clone(leaf)
    v = x[1]
    v[0] = w[1]
    return (x * x).sum() + (v * 3).sum()


def _write_into_a_base_without_grad(leaf, w):
    x = leaf.detach() * 0
    x[:, 1].add_(w)
    return (x * x * leaf).sum()


def _write_view_of_view_reshape_transpose(leaf, w):
    x = _clone(leaf)
    x[1][1:].mul_(2)
    x.reshape(4)[1:3].mul_(w)
    x.T[0].add_(w)
    r = x.reshape(4)
    return (r * r * leaf.reshape(4)).sum()


def _write_into_a_reshape_that_copied(leaf, w):
    x = _clone(leaf)
    t = x.T if isinstance(x, gf.Tensor) else x.t()
    r = t.reshape(4)  # transposed memory: reshape copies, so r is no view of x
    r.mul_(w.reshape(2, 1).broadcast_to((2, 2)).reshape(4) if isinstance(x, gf.Tensor)
           else w.reshape(2, 1).expand(2, 2).reshape(4))
    return (x * x).sum() + (r * r).sum()


@pytest.mark.parametrize("program", [
    _write_add_then_base, _write_mul_then_view, _write_mul_by_tensor, _write_setitem_through_view,
    _write_into_a_base_without_grad, _write_view_of_view_reshape_transpose,
    _write_into_a_reshape_that_copied,
], ids=lambda f: f.__name__.strip("_"))
def test_writes_through_a_view_match_torch(program):
    a, b = [[1.0, 2.0], [3.0, 4.0]], [5.0, 6.0]
    leaf, w, tleaf, tw = f64(a), f64(b), t64(a), t64(b)
    program(leaf, w).backward()
    program(tleaf, tw).backward()
    for mine, theirs in ((leaf, tleaf), (w, tw)):
        assert (mine.grad is None) == (theirs.grad is None)
        if theirs.grad is not None:
            np.testing.assert_array_equal(grad_of(mine), grad_of(theirs))


def test_writes_through_a_view_second_order_matches_torch():
    def run(mk, lib):
        leaf = mk([[1.0, 2.0], [3.0, 4.0]])
        x = _clone(leaf)
        x[0].mul_(leaf[1])
        y = (x * x * x).sum()
        (g,) = lib.autograd.grad(y, leaf, create_graph=True) if lib is torch else gf.grad(
            y, leaf, create_graph=True)
        (g * g).sum().backward()
        return grad_of(leaf)

    np.testing.assert_allclose(run(f64, gf), run(t64, torch), rtol=1e-12)


@pytest.mark.parametrize("write, match", [
    (lambda leaf, w: leaf[0].add_(1), "view of a leaf tensor that requires grad"),
    (lambda leaf, w: (leaf * 1).detach()[0].add_(w), "detach"),
    (lambda leaf, w: (leaf * 1).broadcast_to((3, 2, 2))[0].add_(w), "broadcast"),
], ids=["view-of-leaf", "detached", "broadcast"])
def test_unsupported_writes_through_a_view_raise(write, match):
    leaf, w = f64([[1.0, 2.0], [3.0, 4.0]]), f64([5.0, 6.0])
    with pytest.raises(RuntimeError, match=match):
        write(leaf, w)


def test_a_write_through_a_view_made_without_grad_raises():
    x, w = gf.zeros(2, 2, dtype=gf.float64), f64([5.0, 6.0])
    with gf.no_grad():
        v = x[0]
    with pytest.raises(RuntimeError, match="grad mode off"):
        v.mul_(w)


def test_writes_through_a_view_without_recording_reach_the_base():
    leaf = f64([[1.0, 2.0], [3.0, 4.0]])
    x = leaf * 1
    with gf.no_grad():
        x[0].add_(1)
    x.sum().backward()
    np.testing.assert_array_equal(x.detach().numpy(), [[2.0, 3.0], [3.0, 4.0]])
    np.testing.assert_array_equal(leaf.grad.numpy(), np.ones((2, 2)))


def test_a_view_made_without_grad_of_a_base_changed_in_place_raises_in_backward():
    leaf = f64([[1.0, 2.0], [3.0, 4.0]])
    for x in (leaf * 1, gf.zeros(2, 2, dtype=gf.float64)):
        with gf.no_grad():
            v = x[0]
            r = v.reshape(1, 2)  # a view of that view
        x.mul_(leaf)
        for view in (v, r):
            with pytest.raises(RuntimeError, match="grad mode off"):
                (view * view).sum().backward()
    with gf.no_grad():  # both inside no_grad: nothing recorded, nothing to raise
        x = leaf * 1
        v = x[0]
        x.mul_(2)
    np.testing.assert_array_equal(v.numpy(), [2.0, 4.0])


def _random_view_program(rng, lib, leaf, w):
    """A random mix of views (of the base and of views), in-place ops on any of them (by numbers
    and by a tensor that depends on w) and out-of-place uses; the result sums them all. Also
    returns, per view, whether it is one (reshape may copy, depending on the layout)."""
    x = _clone(leaf)
    live, is_view = [x], []
    for _ in range(rng.integers(1, 7)):
        t = live[rng.integers(len(live))]
        kind, arg = rng.choice(["view", "view", "mul", "mul_w", "add", "use"]), int(rng.integers(4))
        if kind == "view" and t.ndim:
            if arg == 0:
                v = t[1:]
            elif arg == 1:
                v = t.reshape(-1)
            elif arg == 2:
                v = t.T if lib is gf else t.permute(*reversed(range(t.ndim)))
            else:
                v = t[0]
            live.append(v)
            is_view.append(v._base is not None if lib is gf else v._is_view())
        elif kind == "mul":
            t.mul_(1.5 + arg)
        elif kind == "mul_w":
            t.mul_(w[arg % 2] * 1)
        elif kind == "add":
            t.add_(arg)
        elif kind == "use":
            live.append(t * (arg + 1))
    return sum((t * t).sum() * (k + 1) for k, t in enumerate(live)), is_view


@pytest.mark.parametrize("seed", range(4))
def test_random_programs_of_views_and_inplace_ops_match_torch(seed):
    a0, w0 = np.arange(1.0, 7.0).reshape(2, 3) / 3, np.array([0.7, 1.3])
    for trial in range(50):
        results = []
        for lib, mk in ((gf, f64), (torch, t64)):
            leaf, w = mk(a0), mk(w0)
            out, is_view = _random_view_program(np.random.default_rng([seed, trial]), lib, leaf, w)
            out.backward()
            results.append((is_view, [None if t.grad is None else grad_of(t) for t in (leaf, w)]))
        (views, got), (torch_views, want) = results
        if views != torch_views:
            continue  # a reshape copied in one library and not in the other: layouts differ
        for a, b in zip(got, want):
            assert (a is None) == (b is None)
            if b is not None:
                np.testing.assert_allclose(a, b, rtol=1e-12)


def test_the_views_of_a_base_are_remembered_only_while_they_live():
    import gc

    from gradflow.autograd import views

    x = gf.zeros(4, 4)
    for i in range(2000):
        x[i % 4].sum()
    assert len(views._views[id(x)][1]) < 64
    key = id(x)
    del x
    gc.collect()
    assert key not in views._views
