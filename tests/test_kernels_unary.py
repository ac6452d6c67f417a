"""The C++ elementwise unary kernels (_C.sigmoid ... _C.pow_scalar_backward) against numpy
float64 references (tests/_kernel_refs.py)."""
import numpy as np
import pytest

import _kernel_refs as R
import test_ulp_float32 as U  # float64 references that do not cancel where the kernels must not
from gradflow import _C

rng = np.random.default_rng(1234)


class Case:
    """One op: forward kernel and reference, backward kernel and reference, what the backward
    takes (forward input 'x' or output 'y'), the input domain, float32/float64 tolerances."""

    def __init__(self, name, fwd, ref, bwd=None, bref=None, saved="x", lo=-4.0, hi=4.0,
                 ulps=8, atol32=0.0, atol64=1e-300, bulps=8, batol32=0.0, batol64=1e-300):
        self.name, self.fwd, self.ref, self.bwd, self.bref = name, fwd, ref, bwd, bref
        self.saved, self.lo, self.hi = saved, lo, hi
        self.ulps, self.atol32, self.atol64 = ulps, atol32, atol64
        self.bulps, self.batol32, self.batol64 = bulps, batol32, batol64

    def __repr__(self):
        return self.name


CASES = [
    Case("sigmoid", _C.sigmoid, R.sigmoid, _C.sigmoid_backward, R.sigmoid_backward, "y", -20, 20),
    # 1 - y^2 cancels near |y| = 1 unless formed as (1 - y)(1 + y): inputs reach |y| ~ 1 - 1e-5.
    Case("tanh", _C.tanh, np.tanh, _C.tanh_backward,
         lambda y, g: R.f64(g) * (1 - R.f64(y)) * (1 + R.f64(y)), "y", -6, 6),
    Case("relu", _C.relu, R.relu, _C.relu_backward, R.relu_backward, "y"),
    # the slope is rounded to the array's dtype, as the kernel sees it
    Case("leaky_relu", lambda x: _C.leaky_relu(x, 0.1), lambda x: R.leaky_relu(x, x.dtype.type(0.1)),
         lambda x, g: _C.leaky_relu_backward(x, g, 0.1),
         lambda x, g: R.leaky_relu_backward(x, g, x.dtype.type(0.1))),
    # Relative tolerances through the cancellation regions (x << 0, the derivatives' zero near
    # -0.75); float64 keeps a little absolute slack there.
    Case("gelu", lambda x: _C.gelu(x, False), U.gelu, lambda x, g: _C.gelu_backward(x, g, False),
         lambda x, g: R.f64(g) * U.gelu_grad(x), "x", -6, 6, atol64=5e-15, batol64=5e-15),
    Case("gelu_tanh", lambda x: _C.gelu(x, True), U.gelu_tanh, lambda x, g: _C.gelu_backward(x, g, True),
         lambda x, g: R.f64(g) * U.gelu_tanh_grad(x), "x", -6, 6, atol64=5e-15, batol64=5e-14),
    Case("softplus", lambda x: _C.softplus(x, 1.0, 20.0), lambda x: R.softplus(x, 1.0, 20.0),
         lambda x, g: _C.softplus_backward(x, g, 1.0, 20.0),
         lambda x, g: R.softplus_backward(x, g, 1.0, 20.0), "x", -30, 30),
    Case("softplus_beta2", lambda x: _C.softplus(x, 2.0, 5.0), lambda x: R.softplus(x, 2.0, 5.0),
         lambda x, g: _C.softplus_backward(x, g, 2.0, 5.0),
         lambda x, g: R.softplus_backward(x, g, 2.0, 5.0), "x", -10, 10),
    Case("exp", _C.exp, np.exp, _C.exp_backward, lambda y, g: R.f64(y) * R.f64(g), "y", -20, 20),
    Case("log", _C.log, np.log, _C.log_backward, lambda x, g: R.f64(g) / R.f64(x), "x", 1e-3, 50,
         atol32=1e-6),
    Case("sqrt", _C.sqrt, np.sqrt, _C.sqrt_backward, lambda y, g: R.f64(g) / (2 * R.f64(y)), "y",
         1e-3, 50),
    Case("abs", _C.abs, np.abs, _C.abs_backward, R.abs_backward, "x"),
    Case("neg", _C.neg, np.negative),
] + [
    Case(f"pow_{p}", lambda x, p=p: _C.pow_scalar(x, p), lambda x, p=p: R.pow_scalar(x, p),
         lambda x, g, p=p: _C.pow_scalar_backward(x, g, p),
         lambda x, g, p=p: R.pow_scalar_backward(x, g, p), "x",
         -3 if float(p).is_integer() else 0.05, 3)
    for p in (0.0, 1.0, 2.0, 3.0, -1.0, 0.5, -1.5, 2.5)
]
CASE_IDS = [c.name for c in CASES]
BWD_CASES = [c for c in CASES if c.bwd is not None]
BWD_IDS = [c.name for c in BWD_CASES]


def inputs(case, shape, dtype):
    x = rng.uniform(case.lo, case.hi, size=shape).astype(dtype)
    if case.name.startswith("pow_-"):
        x[np.abs(x) < 0.05] = 0.5  # keep away from the pole at 0
    return x


def saved_for(case, x):
    """What the backward takes: the forward output computed by the kernel, or the input."""
    return case.fwd(x) if case.saved == "y" else x


def check_fwd(case, x, got):
    dtype = x.dtype.type
    R.assert_close(got, case.ref(x), dtype, ulps=case.ulps, atol=case.atol32, atol64=case.atol64)


def check_bwd(case, s, g, got):
    dtype = s.dtype.type
    R.assert_close(got, case.bref(s, g), dtype, ulps=case.bulps, atol=case.batol32, atol64=case.batol64)


# ---- values, shapes and layouts ---------------------------------------------------------------
SHAPES = [(0,), (1,), (7,), (3, 5), (4, 1, 6), (2, 0, 3), (1000,), (1 << 16) + 7]


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward(case, shape, dtype):
    x = inputs(case, shape, dtype)
    y = case.fwd(x)
    assert y.flags.c_contiguous and y.shape == x.shape and y.dtype == x.dtype
    assert not np.shares_memory(x, y)
    check_fwd(case, x, y)


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", BWD_CASES, ids=BWD_IDS)
def test_backward(case, shape, dtype):
    s = saved_for(case, inputs(case, shape, dtype))
    g = rng.uniform(-2, 2, size=shape).astype(dtype)
    gs, ss = g.copy(), s.copy()
    out = case.bwd(s, g)
    assert out.flags.c_contiguous and out.shape == s.shape and out.dtype == s.dtype
    np.testing.assert_array_equal(g, gs)  # inputs untouched
    np.testing.assert_array_equal(s, ss)
    check_bwd(case, s, g, out)


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_zero_d(case, dtype):
    x = np.asarray(inputs(case, (), dtype))
    assert x.ndim == 0
    y = case.fwd(x)
    assert y.shape == () and y.dtype == dtype
    check_fwd(case, x, y)
    if case.bwd is not None:
        s = saved_for(case, x)
        g = np.asarray(dtype(0.75))
        out = case.bwd(s, g)
        assert out.shape == () and out.dtype == dtype
        check_bwd(case, s, g, out)


def noncontig_views(x2d):
    """Non-C-contiguous views of a 2-D array: transposed, step-sliced, reversed."""
    return {
        "T": x2d.T,
        "rows_step2": x2d[::2],
        "cols_step3": x2d[:, ::3],
        "cols_reversed": x2d[:, ::-1],
        "both_reversed_step": x2d[::-2, ::-1],
    }


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("big", [False, True], ids=["small", "threaded"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_noncontiguous(case, dtype, big):
    base = inputs(case, (600, 130) if big else (9, 14), dtype)
    for name, x in noncontig_views(base).items():
        assert not x.flags.c_contiguous
        y = case.fwd(x)
        assert y.flags.c_contiguous and y.shape == x.shape, name
        check_fwd(case, np.ascontiguousarray(x), y)
        if case.bwd is not None:
            s = saved_for(case, x)
            gbase = rng.uniform(-2, 2, size=base.shape).astype(dtype)
            g = noncontig_views(gbase)[name]
            # saved operand non-contiguous, gradient contiguous, and both non-contiguous
            for g_ in (np.ascontiguousarray(g), g):
                out = case.bwd(s, g_)
                assert out.flags.c_contiguous and out.shape == x.shape
                check_bwd(case, np.ascontiguousarray(s), np.ascontiguousarray(g_), out)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_threaded_matches_serial_chunks(dtype):
    """A size that takes the threaded path, compared with the same data run in small
    (single-threaded) pieces. Not bit for bit: the elements at a chunk's tail run the loop's
    scalar remainder, whose products the compiler may fuse (FMA) differently."""
    x = rng.uniform(-8, 8, size=(1 << 17) + 3).astype(dtype)
    for f in (_C.sigmoid, _C.tanh, lambda v: _C.gelu(v, False), lambda v: _C.softplus(v, 1.0, 20.0)):
        whole = f(x)
        pieces = np.concatenate([f(x[i:i + 4096]) for i in range(0, x.size, 4096)])
        R.assert_close(whole, pieces, dtype, ulps=4, atol=2e-6, atol64=5e-15)


# ---- extreme values ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", R.DTYPES)
def test_sigmoid_extremes(dtype):
    x = np.array([-1e4, -1000, -100, -50, 0, 50, 100, 1000, 1e4, -np.inf, np.inf], dtype)
    y = _C.sigmoid(x)
    assert np.all(np.isfinite(y))
    R.assert_close(y, R.sigmoid(x), dtype, atol64=0)
    assert y[0] == 0 and y[-3] == 1 and y[4] == 0.5
    g = np.ones_like(x)
    gb = _C.sigmoid_backward(y, g)
    assert np.all(np.isfinite(gb)) and gb[0] == 0 and gb[-3] == 0


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (1.0, float("inf")), (0.5, 1e30), (3.0, 5.0)])
def test_softplus_extremes(dtype, beta, threshold):
    x = np.array([-1e4, -100, -30, -1e-3, 0, 1e-3, 30, 100, 1e4], dtype)
    y = _C.softplus(x, beta, threshold)
    assert np.all(np.isfinite(y))
    R.assert_close(y, R.softplus(x, beta, threshold), dtype, atol=1e-30, atol64=1e-300)
    assert y[0] == 0 and y[-1] == x[-1]
    gb = _C.softplus_backward(x, np.ones_like(x), beta, threshold)
    assert np.all(np.isfinite(gb)) and gb[0] == 0 and gb[-1] == 1


def test_softplus_float32_dense_grid():
    """float32 softplus takes log(1 + e), e in [0, 1], from its own polynomial rather than libm:
    every float32 on a dense grid through the whole curved part stays within 4 ulp."""
    x = np.linspace(-25, 25, 1 << 21, dtype=np.float32)
    R.assert_close(_C.softplus(x, 1.0, 20.0), R.softplus(x, 1.0, 20.0), np.float32, ulps=4)
    e = np.float32(2.0) ** -np.arange(1, 150, dtype=np.float32)  # tiny e: log1p(e) ~ e
    x_neg = np.log(e.astype(np.float64)).astype(np.float32)
    R.assert_close(_C.softplus(x_neg, 1.0, 20.0), R.softplus(x_neg, 1.0, 20.0), np.float32, ulps=4,
                   atol=1e-44)


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_extremes(dtype, approximate):
    x = np.array([-1e4, -100, -10, 0, 10, 100, 1e4], dtype)
    y = _C.gelu(x, approximate)
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[[0, 1, 3, 5, 6]], x[[0, 1, 3, 5, 6]] * np.array([0, 0, 0, 1, 1], dtype))
    gb = _C.gelu_backward(x, np.ones_like(x), approximate)
    assert np.all(np.isfinite(gb))
    np.testing.assert_array_equal(gb[[0, 1, 5, 6]], np.array([0, 0, 1, 1], dtype))
    assert gb[3] == 0.5


NAN_CASES = [c for c in BWD_CASES if c.name in ("sigmoid", "tanh", "gelu", "gelu_tanh", "softplus", "exp")]


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("case", NAN_CASES, ids=[c.name for c in NAN_CASES])
def test_nan_propagates_through_forward_and_backward(case, dtype):
    """A NaN input gives NaN forward and backward, in a loop's vector body and in its tail, and
    no other element changes (the kernels clamp |x| where the result saturates, which would turn
    a NaN into a number unless it is carried through x)."""
    x = inputs(case, (259,), dtype)
    at = [3, 100, 258]
    x[at] = np.nan
    y = case.fwd(x)
    assert np.isnan(y[at]).all() and np.isfinite(np.delete(y, at)).all()
    b = case.bwd(saved_for(case, x), np.ones_like(x))
    assert np.isnan(b[at]).all() and np.isfinite(np.delete(b, at)).all()


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_relu_nan_propagates(dtype):
    x = np.array([np.nan, -1, 0, 2, -np.inf, np.inf], dtype)
    y = _C.relu(x)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:], [0, 0, 2, 0, np.inf])
    np.testing.assert_array_equal(_C.relu_backward(y[1:], np.full(5, 3, dtype)), [0, 0, 3, 0, 3])
    assert np.isnan(_C.leaky_relu(x, 0.1)[0])
    assert np.isnan(_C.abs(x)[0]) and np.isnan(_C.neg(x)[0]) and np.isnan(_C.sigmoid(x)[0])
    assert np.isnan(_C.tanh(x)[0]) and np.isnan(_C.gelu(x, False)[0]) and np.isnan(_C.exp(x)[0])


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_abs_backward_at_zero(dtype):
    x = np.array([-2, -0.0, 0.0, 3, np.nan], dtype)
    out = _C.abs_backward(x, np.full(5, 5, dtype))
    np.testing.assert_array_equal(out[:4], [-5, 0, 0, 5])
    assert np.isnan(out[4])


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_pow_scalar_special_exponents(dtype):
    x = np.array([0, -0.0, 1.5, -2, 3], dtype)
    g = np.array([1, 2, 3, 4, 5], dtype)
    np.testing.assert_array_equal(_C.pow_scalar(x, 0.0), np.ones(5, dtype))
    np.testing.assert_array_equal(_C.pow_scalar(x, 1.0), x)
    np.testing.assert_array_equal(_C.pow_scalar(x, 2.0), x * x)
    np.testing.assert_array_equal(_C.pow_scalar_backward(x, g, 0.0), np.zeros(5, dtype))
    np.testing.assert_array_equal(_C.pow_scalar_backward(x, g, 1.0), g)
    np.testing.assert_array_equal(_C.pow_scalar_backward(x, g, 2.0), 2 * g * x)
    # integer exponents >= 1 at x = 0: a clean 0, never 0 * inf = NaN
    for p in (3.0, 4.0, 7.0):
        out = _C.pow_scalar_backward(x, g, p)
        assert np.all(np.isfinite(out)) and out[0] == 0 and out[1] == 0
        R.assert_close(out, R.pow_scalar_backward(x, g, p), dtype)
    # infinite gradient stays infinite (not NaN) for p = 1
    assert _C.pow_scalar_backward(x[:1], np.array([np.inf], dtype), 1.0)[0] == np.inf


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_exp_log_sqrt_edges(dtype):
    x = np.array([0, 1, np.inf, -np.inf], dtype)
    y = _C.exp(x)
    np.testing.assert_array_equal(y[[0, 2, 3]], [1, np.inf, 0])
    R.assert_close(y[1:2], np.array([np.e]), dtype, ulps=2, rtol64=1e-15)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(_C.log(np.array([0, 1, np.inf], dtype)), [-np.inf, 0, np.inf])
    assert np.isnan(_C.log(np.array([-1.0], dtype))[0])
    np.testing.assert_array_equal(_C.sqrt(np.array([0, 4, np.inf], dtype)), [0, 2, np.inf])
    assert np.isnan(_C.sqrt(np.array([-1.0], dtype))[0])


# ---- bad input --------------------------------------------------------------------------------
UNARY_FWD = [c for c in CASES if c.name in ("sigmoid", "gelu", "softplus", "relu", "pow_2.5", "neg")]


@pytest.mark.parametrize("case", UNARY_FWD, ids=[c.name for c in UNARY_FWD])
@pytest.mark.parametrize("bad", [np.int64, np.int32, np.float16, np.complex128, np.bool_])
def test_bad_dtype_forward(case, bad):
    x = np.zeros((2, 3), bad)
    with pytest.raises(TypeError, match=r"float32 or float64.*" + np.dtype(bad).name):
        case.fwd(x)


@pytest.mark.parametrize("case", BWD_CASES, ids=BWD_IDS)
def test_backward_shape_mismatch(case):
    s = np.ones((2, 3))
    g = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        case.bwd(s, g)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(6,\)"):
        case.bwd(s, np.ones(6))
    with pytest.raises(ValueError):
        case.bwd(np.ones(()), np.ones((1,)))


@pytest.mark.parametrize("case", BWD_CASES, ids=BWD_IDS)
def test_backward_dtype_mismatch(case):
    with pytest.raises(TypeError, match="float32.*float64"):
        case.bwd(np.ones(4, np.float32), np.ones(4, np.float64))
    with pytest.raises(TypeError, match="float64.*int64"):
        case.bwd(np.ones(4, np.float64), np.ones(4, np.int64))


def test_error_messages_name_the_op():
    with pytest.raises(TypeError, match="sigmoid"):
        _C.sigmoid(np.arange(3))
    with pytest.raises(ValueError, match="gelu_backward"):
        _C.gelu_backward(np.ones(2), np.ones(3), False)
    with pytest.raises(TypeError, match="softplus_backward"):
        _C.softplus_backward(np.ones(2, np.float32), np.ones(2), 1.0, 20.0)
