"""gradflow's own vector math (csrc/gf_vecmath.h) in float64, through the kernels that call it.

exp, log and pow are kernels of their own; tanh is expm1's only caller; sigmoid, softplus and the
exact GELU (the normal tail) use exp, log and the tail; softmax, log_softmax and logsumexp use
exp and log along a row. The float32 side of the same functions is tests/test_ulp_float32.py
(every kernel within 4 ulp over the whole float range).

References are numpy's functions in long double (x87 80-bit on x86-64: a 64-bit significand,
about 1e-19 relative), or, for the normal tail, which numpy lacks, its Taylor series and its
continued fraction evaluated in long double. Each function must be within 1e-15 relative
(plus the subnormal spacing 2^-1074, where a relative bound means nothing), over dense grids,
float64 bit patterns spread over every binade, and the special values.
"""

import numpy as np
import pytest

from gradflow import _C

L = np.longdouble
pytestmark = pytest.mark.skipif(np.finfo(L).nmant < 63, reason="needs an 80-bit (or wider) long double")

RTOL = 1e-15
TINY = 2.0 ** -1074
_rng = np.random.default_rng(20261201)


def spread(lo, hi, n=1 << 14):
    """float64 numbers in [lo, hi] spread over every binade (bit patterns), both signs, plus a
    uniform grid."""
    bits = np.sort(_rng.integers(0, 0x7FF0000000000000, n * 8, dtype=np.int64)).view(np.float64)
    grid = np.linspace(lo, hi, n) if np.isfinite(hi - lo) else []
    x = np.concatenate([bits, -bits, grid])
    return x[(x >= lo) & (x <= hi)]


def check(got, exact, x, rtol=RTOL, scale=None):
    """|got - exact| <= rtol * (scale or |exact|) + 2^-1074, NaN where exact is NaN."""
    exact = np.asarray(exact, L).ravel()
    got = np.asarray(got, np.float64).ravel()
    nan = np.isnan(exact.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg="NaN mismatch")
    scale = np.abs(exact) if scale is None else np.asarray(scale, L).ravel()
    with np.errstate(invalid="ignore"):
        err = np.abs(got.astype(L) - exact)
        same = got == exact.astype(np.float64)  # the same infinity (or beyond the range)
        bad = ~nan & ~same & ~(err <= rtol * scale + TINY)
    if bad.any():
        i = np.flatnonzero(bad)[np.argmax((err / (scale + TINY))[bad])]
        raise AssertionError(f"{bad.sum()} values off, worst at x = {x[i]!r}: got {got[i]!r}, "
                             f"exact {float(exact[i])!r} (relative {float(err[i] / abs(exact[i])):.3g})")


# ---- exp, log ------------------------------------------------------------------------------------
def test_exp():
    x = np.concatenate([spread(-746, 710), np.linspace(-745.2, -708, 4096), np.linspace(-1e-3, 1e-3, 1001),
                        [0.0, -0.0, 709.782712893384, 709.7827128933841, -745.1332191019411, -745.1332191019412,
                         np.inf, -np.inf, np.nan, 5e-324, -5e-324]])
    with np.errstate(over="ignore"):
        check(_C.exp(x), np.exp(x.astype(L)), x)
    assert _C.exp(np.array([709.79]))[0] == np.inf and _C.exp(np.array([-745.14]))[0] == 0


def test_log():
    x = np.concatenate([spread(0, np.inf), np.linspace(0.5, 2, 4001), 1 + np.linspace(-1e-6, 1e-6, 2001),
                        [5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308]])
    check(_C.log(x), np.log(x.astype(L)), x)
    got = _C.log(np.array([0.0, -0.0, -1.0, -np.inf, np.inf, np.nan, 1.0]))
    np.testing.assert_array_equal(got, [-np.inf, -np.inf, np.nan, np.nan, np.inf, np.nan, 0.0])


# ---- pow -----------------------------------------------------------------------------------------
def _pow_inputs():
    """(x, y) pairs: every binade of x with y spanning the whole result range, x near 1 with huge
    y, |y log x| at the overflow and subnormal thresholds, negative x with integer y."""
    n = 1 << 15
    x = np.abs(spread(0, np.inf, n // 8))
    x = x[x > 0]
    lx = np.abs(np.log(x))
    y = _rng.uniform(-1.05, 1.05, x.size) * 745 / np.where(lx == 0, 1, lx)
    pairs = [(x, y), (_rng.uniform(0, 10, n), _rng.uniform(-30, 30, n))]
    for d, ymax in ((1e-6, 7e8), (2.0 ** -40, 2.0 ** 49)):
        pairs.append((1 + _rng.uniform(-d, d, n), _rng.uniform(-ymax, ymax, n)))
    for edge in (709.78, -708.4, -745.1):  # overflow, smallest normal, smallest subnormal
        x = _rng.uniform(0.25, 4, n)
        pairs.append((x, (edge + _rng.uniform(-0.5, 0.5, n)) / np.log(x)))
    pairs.append((-np.floor(_rng.uniform(1, 100, n)), np.floor(_rng.uniform(-60, 60, n))))
    return np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs])


def test_pow():
    x, y = _pow_inputs()
    with np.errstate(all="ignore"):
        check(_C.pow(x, y), np.power(x.astype(L), y.astype(L)), x)


def test_float64_pow_blocks_are_bitwise_the_same_with_a_special_value_among_them():
    # A block of float64 pows whose lanes are all ordinary (x positive and normal, |y ln x| <
    # 708, or x = +0) takes a shorter path; one special lane sends its block through the general
    # one. Both must give the same bits for the ordinary lanes, up to the edges of the short
    # path's range.
    n = 1 << 14
    x = np.concatenate([_rng.uniform(0.01, 100, n), _rng.uniform(0.25, 4, 2 * n),
                        np.full(n, 2.2250738585072014e-308), np.full(n, 1.7976931348623157e308)])
    y = np.concatenate([_rng.uniform(-40, 40, n), np.empty(2 * n), _rng.uniform(-0.999, 1.0, n),
                        _rng.uniform(-0.999, 0.999, n)])
    y[n:3 * n] = _rng.choice([-1, 1], 2 * n) * _rng.uniform(700, 707.999, 2 * n) / np.log(x[n:3 * n])
    x[:n:37] = 0.0  # (+0 is on the short path too, for any y)
    y[:n:37 * 5] = _rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0, -3.0], y[:n:37 * 5].size)
    special = x.copy()
    special[::101] = -1.5  # (NaN for a non-integer y)
    keep = np.ones(x.size, bool)
    keep[::101] = False
    g = _rng.uniform(-2, 2, x.size)
    with np.errstate(all="ignore"):
        check(_C.pow(x, y), np.power(x.astype(L), y.astype(L)), x)
        for short, general in ((_C.pow(x, y), _C.pow(special, y)),
                               (_C.pow_scalar(x, 2.7), _C.pow_scalar(special, 2.7)),
                               (_C.pow_scalar_backward(x, g, -1.3), _C.pow_scalar_backward(special, g, -1.3))):
            a, b = short[keep], general[keep]  # (NaNs alike, not their payload or sign)
            assert np.array_equal(np.isnan(a), np.isnan(b))
            assert np.array_equal(a[~np.isnan(a)].view(np.int64), b[~np.isnan(b)].view(np.int64))


@pytest.mark.parametrize("p", [2.5, 0.5, -0.5, 1.5, -1.0, -1.5, 3.0, 4.0, -2.0, -7.0, 1e-3, 40.25])
def test_pow_scalar_and_backward(p):
    x = np.concatenate([spread(0, np.inf, 1 << 12), -np.arange(1.0, 50.0)])
    g = _rng.uniform(-2, 2, x.size)
    with np.errstate(all="ignore"):
        check(_C.pow_scalar(x, p), np.power(x.astype(L), L(p)), x)
        d = np.power(x.astype(L), L(p - 1))
        # (x^(p-1) is rounded to a double before g p multiplies it: no relative bound where it
        # is subnormal or overflows)
        keep = ~(np.abs(d) < L(2.0 ** -1000)) & ~(np.abs(d) > L(np.finfo(np.float64).max))
        check(_C.pow_scalar_backward(x, g, p)[keep], (g.astype(L) * L(p) * d)[keep], x[keep], rtol=2 * RTOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pow_special_values_are_c99s(dtype):
    """(float32 too: its pow folds the special cases into its operands in its own way)"""
    v = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308, -1e308,
         1e-45, -1e-45, 3e38, -3e38]
    e = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5, -0.5, np.inf, -np.inf, np.nan, 1e300, -1e300,
         2.0 ** 53, 2.0 ** 53 + 2, 2.0 ** 52 + 1, -(2.0 ** 52 + 1), 1075.0, -1075.0,
         2.0 ** 24, 2.0 ** 24 + 2, 2.0 ** 23 + 1, -(2.0 ** 23 + 1), 151.0, -151.0, 2.5, -2.5,
         # the parity test's edges: |y| / 2 rounded by adding 2^52, exact below it, integers beyond
         2.0 ** 52 - 1, -(2.0 ** 52 - 1), 2.0 ** 52 - 0.5, 2.0 ** 51 + 0.5, -(2.0 ** 51 + 1.5), 3 * 2.0 ** 52,
         2.0 ** 54 + 4, 2.0 ** 60 + 2.0 ** 8, 0.25, -0.75, 1.5, 5e-324]
    with np.errstate(all="ignore"):
        x, y = (a.ravel().astype(dtype) for a in np.meshgrid(v, e))
        got = _C.pow(x, y)
        want = np.power(x.astype(np.float64), y.astype(np.float64)).astype(dtype)  # numpy calls C's pow
    rtol = RTOL if dtype == np.float64 else 4 * np.finfo(np.float32).eps
    ok = np.isclose(got, want, rtol=rtol, atol=0) | (got == want) | (np.isnan(got) & np.isnan(want))
    ok &= (np.signbit(got) == np.signbit(want)) | np.isnan(want)
    assert ok.all(), list(zip(x[~ok], y[~ok], got[~ok], want[~ok]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [0.5, -0.5, -1.0, 3.0, -2.0, 2.5])
def test_pow_scalar_special_values_are_c99s(p, dtype):
    """The exponents with kernels of their own (sqrt for 0.5, ...) keep C's pow at +-0, +-inf
    and NaN, where sqrt differs (sqrt(-0) = -0, sqrt(-inf) = NaN), and so does the backward."""
    import ctypes
    import ctypes.util

    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.pow.restype, libm.pow.argtypes = ctypes.c_double, (ctypes.c_double, ctypes.c_double)
    c_pow = np.vectorize(libm.pow, otypes=[np.float64])  # (numpy's power is sqrt for 0.5)
    with np.errstate(all="ignore"):
        x = np.array([0.0, -0.0, 1.0, -1.0, 4.0, -4.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308, -1e308], dtype)
        want = c_pow(x, p).astype(dtype)
        dwant = (p * c_pow(x, float(dtype(p) - dtype(1)))).astype(dtype)
    for got, w in ((_C.pow_scalar(x, p), want), (_C.pow_scalar_backward(x, np.ones_like(x), p), dwant)):
        assert got.dtype == dtype
        ok = (got == w) | (np.isnan(got) & np.isnan(w)) | np.isclose(got, w, rtol=4 * np.finfo(dtype).eps, atol=0)
        ok &= (np.signbit(got) == np.signbit(w)) | np.isnan(w)
        assert ok.all(), list(zip(x[~ok], got[~ok], w[~ok]))


# ---- tanh (expm1), sigmoid, softplus -------------------------------------------------------------
def test_tanh():
    x = np.concatenate([spread(-30, 30), np.linspace(-1e-4, 1e-4, 2001), [0.0, np.inf, -np.inf, np.nan, 5e-324]])
    check(_C.tanh(x), np.tanh(x.astype(L)), x)
    assert np.signbit(_C.tanh(np.array([-0.0]))[0])
    np.testing.assert_array_equal(_C.tanh(np.array([np.inf, -np.inf, 400.0])), [1.0, -1.0, 1.0])


def _sigmoid(x):
    x = x.astype(L)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def test_sigmoid():
    x = np.concatenate([spread(-800, 800), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    check(_C.sigmoid(x), _sigmoid(x), x)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 5.0), (0.5, 30.0)])
def test_softplus(beta, threshold):
    x = np.concatenate([spread(-800, 800), np.linspace(-40 / beta, 40 / beta, 8001), [0.0, -np.inf, np.nan]])
    z = beta * x.astype(L)
    exact = np.where(z > threshold, x.astype(L), (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / L(beta))
    check(_C.softplus(x, beta, threshold), exact, x)
    check(_C.softplus_backward(x, np.ones_like(x), beta, threshold),
          np.where(z > threshold, L(1), _sigmoid(np.asarray(z, np.float64))), x)


# ---- the exact GELU: the normal tail Q ------------------------------------------------------------
SQRT_2PI = np.sqrt(8 * np.arctan(L(1)))  # pi in long double (np.pi is a double)


def upper_tail(a):
    """Q(a) = Phi(-a) for a >= 0 in long double: 1/2 - phi(a) sum a^(2n+1) / (2n+1)!! up to a = 3
    (no term cancels, and 1/2 - s loses at most a factor 370 there), the continued fraction
    phi(a) / (a + 1/(a + 2/(a + ...))) beyond."""
    a = np.asarray(a, L)
    phi = np.exp(-a * a / 2) / SQRT_2PI
    small = np.minimum(a, 3)
    term, s = small.copy(), small.copy()
    for n in range(1, 90):
        term = term * small * small / (2 * n + 1)
        s = s + term
    big = np.maximum(a, 3)
    f = big.copy()
    for n in range(200, 0, -1):
        f = big + n / f
    return np.where(a <= 3, 0.5 - phi * s, phi / f)


def test_upper_tail_reference_agrees_with_itself_and_erfc():
    import math

    # the two methods meet at a = 3, and agree with math.erfc (a double) everywhere
    a = np.array([0.1, 1.0, 2.5, 2.9999, 3.0001, 5.0, 20.0])
    np.testing.assert_allclose(upper_tail(a).astype(np.float64),
                               [0.5 * math.erfc(v / math.sqrt(2)) for v in a], rtol=1e-13)
    series = upper_tail(np.array([2.9999999], L))
    assert abs(series[0] / upper_tail(np.array([3.0000001], L))[0] - 1) < 1e-6


def gelu_exact(x):
    q = upper_tail(np.abs(x))
    xl = x.astype(L)
    with np.errstate(invalid="ignore"):  # inf * 0 at x = -inf
        return np.where(x < 0, xl * q, xl * (1 - q))


def test_gelu():
    # beyond -37.5 the result is subnormal (its relative error is that of the last rounding)
    x = np.concatenate([spread(-37.5, 40), np.linspace(-8, 8, 8001), np.linspace(-37.5, -30, 2001),
                        np.linspace(-1e-3, 1e-3, 1001), [0.0, -0.0, np.inf, np.nan]])
    check(_C.gelu(x, False), gelu_exact(x), x)


def test_gelu_backward():
    """Phi(x) + x phi(x) has a zero near x = -0.75, where no relative bound holds for any
    formula that adds the two terms: the bound there is relative to their sizes."""
    x = np.concatenate([spread(-37.5, 37.5), np.linspace(-8, 8, 8001), np.linspace(-0.76, -0.74, 2001)])
    xl = x.astype(L)
    pdf = xl * np.exp(-xl * xl / 2) / SQRT_2PI
    phi = np.where(x < 0, upper_tail(np.abs(x)), 1 - upper_tail(np.abs(x)))
    check(_C.gelu_backward(x, np.ones_like(x), False), phi + pdf, x, rtol=2 * RTOL,
          scale=np.abs(phi) + np.abs(pdf))
    np.testing.assert_array_equal(_C.gelu_backward(np.array([np.inf, -np.inf]), np.ones(2), False), [1.0, 0.0])


# ---- softmax, log_softmax, logsumexp ---------------------------------------------------------------
def _rows():
    x = _rng.standard_normal((512, 64)) * 20
    x[::7, 3] = -np.inf
    x[5] = 700.0 + _rng.standard_normal(64)  # huge: only the shift keeps exp finite
    return x


def _lse(x):
    xl = x.astype(L)
    m = np.max(xl, axis=-1, keepdims=True)
    return m + np.log(np.sum(np.exp(xl - m), axis=-1, keepdims=True))


def test_log_softmax_and_logsumexp():
    x = _rows()
    lse = _lse(x)
    # a sum of 64 rounded exponentials: its relative error is below 64 eps, and log turns it into
    # an absolute error of that size
    check(_C.logsumexp(x, (1,), True), lse, x, rtol=64 * 2 ** -53, scale=np.maximum(np.abs(lse), 1))
    exact = x.astype(L) - lse
    check(_C.log_softmax(x), exact, x.ravel(), rtol=64 * 2 ** -53, scale=np.maximum(np.abs(exact), 1))


def test_softmax():
    """exp(x - m) / s: x - m is rounded (to |x - m| eps / 2), which exp turns into that relative
    error, on top of the sum's."""
    x = _rows()
    exact = np.exp(x.astype(L) - _lse(x))
    shift = np.abs(x - np.max(x, axis=-1, keepdims=True))
    with np.errstate(invalid="ignore"):
        check(_C.softmax(x), exact, x.ravel(), rtol=2 ** -53, scale=exact * np.nan_to_num(shift + 64))
