"""The C++ reduction kernels (_C.sum, mean, max, min, logsumexp, argmax, argmin) against numpy."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gradflow import _C

DTYPES = [np.float32, np.float64]
rng = np.random.default_rng(1)


def ref_lse(x, axis, keepdims=False):
    x = np.asarray(x, np.float64)
    if x.size == 0 or (axis != () and any(x.shape[a] == 0 for a in (axis if axis is not None else range(x.ndim)))):
        m = np.full(np.sum(x, axis=axis, keepdims=True).shape, -np.inf)
    else:
        m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(all="ignore"):
        shift = np.where(np.isfinite(m), m, 0.0)
        r = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
        r = np.where(np.isfinite(m), r, m)
    if not keepdims:
        r = r.reshape(np.sum(x, axis=axis, keepdims=False).shape)
    return r


REF = {
    "sum": lambda x, axis, keepdims: np.sum(x.astype(np.float64), axis=axis, keepdims=keepdims),
    "mean": lambda x, axis, keepdims: np.mean(x.astype(np.float64), axis=axis, keepdims=keepdims),
    "max": lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    "min": lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
    "logsumexp": ref_lse,
}


def tol(dtype, name, x, axis):
    """(rtol, atol) for comparing against the float64 reference."""
    if name in ("max", "min"):
        return 0, 0
    if dtype == np.float32:
        # a few float32 ulps of the result; sums that cancel are judged against sum(|x|)
        scale = np.sum(np.abs(x.astype(np.float64)), axis=axis) if name in ("sum", "mean") else 0
        return 8 * 2.0 ** -23, 1e-30 + 2.0 ** -24 * np.max(scale, initial=0) / max(1, 1)
    scale = np.sum(np.abs(x.astype(np.float64)), axis=axis) if name in ("sum", "mean") else 0
    return 1e-12, 1e-300 + 1e-15 * np.max(scale, initial=0)


def check(name, x, axis, keepdims=False):
    got = getattr(_C, name)(x, axis, keepdims)
    with np.errstate(all="ignore"):
        want = REF[name](x, axis, keepdims)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == x.dtype
    assert got.flags.c_contiguous
    rtol, atol = tol(x.dtype, name, x, axis)
    if name == "mean" and atol:
        n = max(1, x.size // max(1, want.size))
        atol = atol / n
    if x.dtype == np.float32:
        want = want.astype(np.float32).astype(np.float64)  # the float32 reference: rounded
        rtol += 2.0 ** -24
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=atol, equal_nan=True)


NAMES = list(REF)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape,axes", [
    ((7,), None), ((7,), (0,)), ((7,), ()), ((3, 5), (0,)), ((3, 5), (1,)), ((3, 5), (-1,)),
    ((3, 5), (0, 1)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (1,)), ((2, 3, 4), (2, 0)), ((4, 1, 5), (1,)),
    ((1, 1), (0,)), ((2, 3, 4, 5), (1, 3)), ((2, 3, 4, 5), (0, 1, 2)), ((), ()), ((), None),
    ((3, 0), (0,)), ((0, 3), (1,)), ((5, 37), (0,)), ((37, 5), (1,)),
])
@pytest.mark.parametrize("keepdims", [False, True])
def test_small(name, dtype, shape, axes, keepdims):
    x = rng.standard_normal(shape).astype(dtype)
    check(name, x, axes, keepdims)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_views(name, dtype):
    base = rng.standard_normal((40, 60)).astype(dtype)
    for x in [base.T, base[::2], base[:, ::-1], base[::-3, 1::4], np.broadcast_to(base[:1], (40, 60)),
              np.broadcast_to(base[:, :1], (40, 60))]:
        for axes in [None, (0,), (1,), (), (1, 0)]:
            check(name, x, axes)
    b3 = rng.standard_normal((6, 7, 8)).astype(dtype)
    for x in [b3.transpose(2, 0, 1), b3[::-1, :, ::2], b3.transpose(1, 2, 0)[:, ::-1]]:
        for axes in itertools.chain.from_iterable(itertools.combinations(range(3), k) for k in range(4)):
            check(name, x, axes)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_threaded(name, dtype):
    x = rng.standard_normal((700, 300)).astype(dtype)  # > 1 << 15 elements
    for v in [x, x.T, x[::-1, ::2]]:
        for axes in [None, (0,), (1,)]:
            check(name, v, axes)
    check(name, rng.standard_normal((3, 100000)).astype(dtype), (1,))   # few outputs, long rows
    check(name, rng.standard_normal((100000, 3)).astype(dtype), (0,))   # few outputs, strided
    check(name, rng.standard_normal((20000, 20)).astype(dtype), (0,))   # column mode, threaded
    check(name, rng.standard_normal((1 << 17,)).astype(dtype), None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_lockstep_lines(name, dtype):
    """Long contiguous ranges are reduced as four quarters in lockstep, and rows of the last
    axis four at a time: odd lengths (a remainder after the quarters, lane tails), row counts
    that leave rows over, NaN and infinities in one quarter or row only."""
    for shape, axis in [((65536 * 4 + 7,), None), ((9, 1031), (1,)), ((4, 5000), (1,)),
                        ((2, 3, 70003), (2,)), ((262147,), (0,))]:
        x = rng.standard_normal(shape).astype(dtype)
        check(name, x, axis)
        rtol, atol = tol(x.dtype, name, x, axis)  # the finite entries' tolerance
        y = x.copy().reshape(-1)
        y[y.size * 3 // 4 + 5] = np.inf  # last quarter / a late row
        y[7] = -np.inf
        for _ in range(2):
            y = y.reshape(shape)
            got = getattr(_C, name)(y, axis, False).astype(np.float64)
            with np.errstate(all="ignore"):
                want = np.asarray(REF[name](y, axis, False))
            finite = np.isfinite(want)
            np.testing.assert_array_equal(got[~finite], want[~finite])  # inf, -inf, NaN exactly
            np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=atol)
            y = y.reshape(-1)
            y[y.size // 2 + 1] = np.nan


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_of_infinities(dtype):
    """An infinite element makes the sum infinite, not NaN (the compensation term must not
    compute inf - inf); opposite infinities give NaN, as in numpy."""
    inf = np.inf
    for x, want in [([1.0, -inf, 2.0], -inf), ([inf, 1.0, inf], inf), ([inf, -inf, 1.0], np.nan)]:
        a = np.array(x, dtype)
        for f in (_C.sum, _C.mean):
            np.testing.assert_array_equal(f(a), np.array(want, dtype))


def test_sum_accuracy_large():
    x = rng.random(1 << 22) + 0.5
    got = _C.sum(x)
    exact = float(np.sum(x.astype(np.longdouble)))
    assert abs(got - exact) <= 1e-13 * exact
    assert abs(got - np.sum(x)) <= 1e-12 * exact
    x32 = x.astype(np.float32)
    exact32 = np.float32(np.sum(x32.astype(np.float64)))
    assert abs(float(_C.sum(x32)) - float(exact32)) <= 2 * np.spacing(exact32)
    # column sums over many rows (accumulators flushed in blocks)
    y = rng.random((1 << 18, 4)) + 0.5
    np.testing.assert_allclose(_C.sum(y, (0,)), np.sum(y.astype(np.longdouble), axis=0).astype(np.float64),
                               rtol=1e-13)
    y32 = y.astype(np.float32)[:, :3]
    want = np.sum(y32.astype(np.float64), axis=0).astype(np.float32)
    assert (np.abs(_C.sum(y32, (0,)) - want) <= 2 * np.spacing(want)).all()


@pytest.mark.parametrize("n", [1, 127, 128, 129, 4095, 4096, 4097, 8192 + 131])
def test_sum_float32_lane_blocks(n):
    """Unit-stride float32 sums add in float lanes within 4096-element blocks: lengths around
    the lane and block sizes, with cancelling values (judged against sum |x|)."""
    x = rng.standard_normal(n).astype(np.float32) * np.float32(1e3)
    check("sum", x, None)
    check("sum", np.stack([x, -x, x * 2]), (1,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["max", "min"])
def test_nan_propagation(name, dtype):
    x = rng.standard_normal((50, 70)).astype(dtype)
    x[3, 5] = np.nan
    x[10, 69] = np.nan
    for axes in [None, (0,), (1,)]:
        for v in [x, x.T]:
            np.testing.assert_array_equal(getattr(_C, name)(v, axes), getattr(np, name)(v, axis=axes))
    big = rng.standard_normal((400, 300)).astype(dtype)
    big[399, 299] = np.nan
    assert np.isnan(getattr(_C, name)(big))


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_extremes(dtype):
    inf = np.inf
    x = np.array([[-inf, -inf, -inf], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4], [inf, 1.0, 2.0],
                  [-inf, 0.0, -inf], [np.nan, 1.0, 2.0], [inf, -inf, 0.0]], dtype)
    with np.errstate(all="ignore"):
        got = _C.logsumexp(x, (1,))
    want = np.array([-inf, 1e4 + np.log(2), -1e4 + np.log(3), inf, 0.0, np.nan, inf])
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=4 * np.finfo(dtype).eps)
    assert got[0] == -inf and not np.isnan(got[0])
    # the same as columns (column mode) and in long rows spanning several blocks
    np.testing.assert_allclose(_C.logsumexp(np.ascontiguousarray(x.T), (0,)).astype(np.float64), want,
                               rtol=4 * np.finfo(dtype).eps)
    long = np.full((2, 5000), -inf, dtype)
    long[1, 4000] = 3.0
    long[1, 10] = -1e4
    np.testing.assert_array_equal(_C.logsumexp(long, (1,)), np.array([-inf, 3.0], dtype))
    grow = np.linspace(-1e4, 1e4, 20000).astype(dtype)  # max grows block after block
    check("logsumexp", grow, None)
    check("logsumexp", grow.reshape(100, 200).T.copy(), (0,))
    assert _C.logsumexp(np.zeros((0,), dtype)) == -inf
    assert (_C.logsumexp(np.zeros((3, 0), dtype), (1,)) == -inf).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty(dtype):
    z = np.zeros((0, 3), dtype)
    assert _C.sum(z, (0,)).tolist() == [0, 0, 0]
    assert np.isnan(_C.mean(z, (0,))).all()
    assert _C.max(z, (1,)).shape == (0,)
    with pytest.raises(ValueError, match=r"zero-size array.*maximum.*\(0, 3\)"):
        _C.max(z, (0,))
    with pytest.raises(ValueError, match=r"minimum"):
        _C.min(z)
    with pytest.raises(ValueError, match="empty"):
        _C.argmax(z, 0)
    assert _C.argmax(z, 1).shape == (0,)


def test_axes_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="duplicate"):
        _C.sum(x, (0, 0))
    with pytest.raises(ValueError, match="duplicate"):
        _C.max(x, (1, -1))
    with pytest.raises(IndexError, match=r"axis 2.*2"):
        _C.sum(x, (2,))
    with pytest.raises(IndexError, match=r"axis -3"):
        _C.logsumexp(x, (-3,))
    with pytest.raises(IndexError, match=r"axis 5"):
        _C.argmax(x, 5)
    with pytest.raises(TypeError, match="int32"):
        _C.sum(np.ones(3, np.int32), (0,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg(name, dtype):
    x = rng.integers(-5, 5, size=(30, 40)).astype(dtype)  # ties: first occurrence wins
    f = getattr(np, name)
    for v in [x, x.T, x[::-1, ::3], np.broadcast_to(x[:1], (30, 40))]:
        for axis in [None, 0, 1, -1]:
            for keepdims in [False, True]:
                got = getattr(_C, name)(v, axis, keepdims)
                assert got.dtype == np.int64
                np.testing.assert_array_equal(got, f(v, axis=axis, keepdims=keepdims))
    x[4, 7] = np.nan
    x[20, 3] = np.nan
    for axis in [None, 0, 1]:
        np.testing.assert_array_equal(getattr(_C, name)(x, axis), f(x, axis=axis))
    big = rng.standard_normal((500, 300)).astype(dtype)
    for v in [big, big[::-1].T]:
        for axis in [None, 0, 1]:
            np.testing.assert_array_equal(getattr(_C, name)(v, axis), f(v, axis=axis))
    big[250:, :] = big.max() + 1  # tie across thread chunks: the first wins
    assert _C.argmax(big) == np.argmax(big)


@st.composite
def array_and_axes(draw):
    shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=4))
    ndim = len(shape)
    axes = draw(st.one_of(st.none(), st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda a: a % ndim,
                                               max_size=ndim).map(tuple))) if ndim else draw(st.sampled_from([None, ()]))
    perm = draw(st.permutations(range(ndim)))
    flip = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    return shape, axes, perm, flip


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
@settings(max_examples=250, deadline=None)
@given(array_and_axes(), st.sampled_from(NAMES), st.sampled_from(DTYPES), st.booleans())
def test_hypothesis_reduce(spec, name, dtype, keepdims):
    shape, axes, perm, flip = spec
    x = rng.standard_normal(shape).astype(dtype)
    x = x.transpose(perm) if shape else x
    for d, f in enumerate(flip):
        if f:
            x = np.flip(x, d)
    nr = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    if name in ("max", "min") and nr == 0:
        with pytest.raises(ValueError):
            getattr(_C, name)(x, axes, keepdims)
        return
    check(name, x, axes, keepdims)
