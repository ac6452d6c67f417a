"""Property-based tests: binary ops over random broadcastable shapes, reductions over random axis
subsets, values and gradients against numpy."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import gradflow as gf

SETTINGS = settings(max_examples=40, deadline=None)


def _reduce_to(g, shape):
    """numpy: sum a broadcast gradient back to ``shape``."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


# op: (gf fn, numpy fn, d/da, d/db, value range for a, for b)
BINARY = {
    "add": (lambda a, b: a + b, np.add, lambda a, b: np.ones_like(a * b), lambda a, b: np.ones_like(a * b)),
    "sub": (lambda a, b: a - b, np.subtract, lambda a, b: np.ones_like(a * b), lambda a, b: -np.ones_like(a * b)),
    "mul": (lambda a, b: a * b, np.multiply, lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    "div": (lambda a, b: a / b, np.divide, lambda a, b: 1 / b + 0 * a, lambda a, b: -a / b ** 2),
    "pow": (lambda a, b: a ** b, np.power, lambda a, b: b * a ** (b - 1), lambda a, b: a ** b * np.log(a)),
    "maximum": (gf.maximum, np.maximum, lambda a, b: (a > b) + 0.5 * (a == b),
                lambda a, b: (b > a) + 0.5 * (a == b)),
    "minimum": (gf.minimum, np.minimum, lambda a, b: (a < b) + 0.5 * (a == b),
                lambda a, b: (b < a) + 0.5 * (a == b)),
}


@st.composite
def broadcastable_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3))
    sa, sb = shapes.input_shapes
    elems = st.floats(0.25, 2.5, allow_nan=False, width=64)
    a = draw(hnp.arrays(np.float64, sa, elements=elems))
    b = draw(hnp.arrays(np.float64, sb, elements=elems))
    return a, b


@SETTINGS
@given(pair=broadcastable_pair(), op=st.sampled_from(sorted(BINARY)))
def test_binary_op_values_and_reduced_grads(pair, op):
    a, b = pair
    fn, npfn, da, db = BINARY[op]
    ta = gf.tensor(a, requires_grad=True)
    tb = gf.tensor(b, requires_grad=True)
    out = fn(ta, tb)
    np.testing.assert_allclose(out.detach().numpy(), npfn(a, b), rtol=1e-12)
    out.sum().backward()
    ga = _reduce_to(np.broadcast_to(da(a, b), out.shape).astype(np.float64), a.shape)
    gb = _reduce_to(np.broadcast_to(db(a, b), out.shape).astype(np.float64), b.shape)
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    np.testing.assert_allclose(ta.grad.numpy(), ga, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), gb, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(pair=broadcastable_pair(), op=st.sampled_from(["add", "sub", "mul", "div"]),
       scalar=st.floats(0.5, 3.0), left=st.booleans())
def test_python_scalar_either_side(pair, op, scalar, left):
    a, _ = pair
    fn, npfn, da, db = BINARY[op]
    ta = gf.tensor(a, requires_grad=True)
    out = fn(scalar, ta) if left else fn(ta, scalar)
    exp = npfn(scalar, a) if left else npfn(a, scalar)
    np.testing.assert_allclose(out.detach().numpy(), exp, rtol=1e-12)
    assert out.dtype == gf.float64 and out.shape == a.shape
    out.sum().backward()
    g = db(np.float64(scalar), a) if left else da(a, np.float64(scalar))
    np.testing.assert_allclose(ta.grad.numpy(), np.broadcast_to(g, a.shape), rtol=1e-10)


@st.composite
def array_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    a = draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3, allow_nan=False, width=64),
                        unique=True))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-len(shape), len(shape) - 1))
    else:
        axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
        axis = tuple(ax - len(shape) if draw(st.booleans()) else ax for ax in axes)  # mix negatives
    return a, axis, draw(st.booleans())


def _np_lse(a, axis, keepdims):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis if axis is not None else tuple(range(a.ndim)))


@SETTINGS
@given(data=array_and_axes(), op=st.sampled_from(["sum", "mean", "amax", "amin", "logsumexp", "var"]))
def test_reductions_values_and_grads(data, op):
    a, axis, keepdims = data
    x = gf.tensor(a, requires_grad=True)
    kw = {"unbiased": False} if op == "var" else {}
    out = getattr(x, op)(axis, keepdim=keepdims, **kw)
    npfn = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min, "logsumexp": _np_lse,
            "var": np.var}[op]
    exp = npfn(a, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(exp)
    np.testing.assert_allclose(out.detach().numpy(), exp, rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(0).standard_normal(out.shape)
    (out * gf.tensor(w)).sum().backward()
    # numpy-derived gradient of sum(w * reduce(a))
    ax = tuple(range(a.ndim)) if axis is None else tuple(np.atleast_1d(axis) % a.ndim)
    wk = w if keepdims else np.expand_dims(w, ax)
    n = np.prod([a.shape[i] for i in ax])
    if op == "sum":
        g = np.broadcast_to(wk, a.shape)
    elif op == "mean":
        g = np.broadcast_to(wk / n, a.shape)
    elif op in ("amax", "amin"):
        hit = (a == npfn(a, axis=ax, keepdims=True)).astype(float)
        g = hit / hit.sum(axis=ax, keepdims=True) * wk
    elif op == "logsumexp":
        g = np.exp(a - _np_lse(a, ax, True)) * wk
    else:
        g = 2 * (a - a.mean(axis=ax, keepdims=True)) / n * wk
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(data=array_and_axes())
def test_softmax_log_softmax_along_random_axis(data):
    a, axis, _ = data
    if not isinstance(axis, int):
        axis = -1
    x = gf.tensor(a, requires_grad=True)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    s = gf.softmax(x, axis)
    np.testing.assert_allclose(s.detach().numpy(), p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gf.log_softmax(x, axis).detach().numpy(), np.log(p), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(1).standard_normal(a.shape)
    (s * gf.tensor(w)).sum().backward()
    g = p * (w - (w * p).sum(axis=axis, keepdims=True))
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(min_dims=0, max_dims=3, max_side=3,
                                                 signature="(m,n),(n,p)->(m,p)"))
def test_matmul_batched_broadcast_grads(shapes):
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(sum(sa) + 7 * sum(sb))
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    ta, tb = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    out = ta @ tb
    np.testing.assert_allclose(out.detach().numpy(), a @ b, rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(out.shape)
    (out * gf.tensor(w)).sum().backward()
    ga = _reduce_to(w @ np.swapaxes(np.broadcast_to(b, out.shape[:-2] + b.shape[-2:]), -1, -2), sa)
    gb = _reduce_to(np.swapaxes(np.broadcast_to(a, out.shape[:-2] + a.shape[-2:]), -1, -2) @ w, sb)
    np.testing.assert_allclose(ta.grad.numpy(), ga, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), gb, rtol=1e-9, atol=1e-12)
