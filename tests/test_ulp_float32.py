"""Every float32 elementwise kernel, forward and backward, within 4 ulp of the exact result.

The exact result is the kernel's mathematical function of its float32 inputs, evaluated in
float64 with numerically stable formulas (relative error ~1e-15, far below a float32 ulp), and
in 50-digit decimal arithmetic where even float64 cancels (the GELU derivatives next to their
zero). A backward kernel computes g * f'(s) from the saved float32 tensor s (the forward's input
or output, per op) and a float32 gradient g: its exact result is that product (with g = 1 and
with random g), not f' at the unrounded forward input.

Error in ulp: |got - exact| / spacing, where spacing is the distance between consecutive
float32 numbers at |exact|: 2^(e - 23) for 2^e <= |exact| < 2^(e+1) (e >= -126), the subnormal
spacing 2^-149 below 2^-126 and at exact = 0. Values beyond the float32 range (and infinities
of either side when the exact value is finite) count as +-2^128, so an overflow is an error of a
few ulp at most when the exact value is near FLT_MAX and a huge one otherwise. A NaN where the
exact value is a number, or a number where it is NaN, is an infinite error. A correctly rounded
result has an error of at most 0.5.

Inputs: float32 bit patterns spread over the whole range (each binade, subnormals, +-0, +-inf,
NaN, both signs) and dense grids over each kernel's cancellation regions.
"""
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

from gradflow import _C

MAX_ULP = 4.0
F32_MAX_EXP = 127
SQRT1_2 = 0.70710678118654752440
SQRT2_PI = 0.79788456080286535588  # sqrt(2/pi)
INV_SQRT_2PI = 0.39894228040143267794
GELU_A = 0.044715


# ---- measuring ---------------------------------------------------------------------------------
def spacing32(exact):
    """float32 spacing at |exact| (exact a float64 array; values beyond the range at 2^128)."""
    a = np.minimum(np.abs(exact), 2.0 ** 128)
    _, e = np.frexp(a)  # a = m 2^e, 0.5 <= m < 1
    s = np.ldexp(1.0, np.clip(e - 1, -126, F32_MAX_EXP) - 23)
    return np.where(a < 2.0 ** -126, 2.0 ** -149, s)


def ulp_error(got, exact):
    """Per element error of float32 `got` against float64 `exact`, in float32 ulp (see above)."""
    got = np.asarray(got, np.float64)
    exact = np.asarray(exact, np.float64)
    both_inf = np.isinf(exact) & (got == exact)
    g = np.clip(got, -2.0 ** 128, 2.0 ** 128)
    x = np.clip(exact, -2.0 ** 128, 2.0 ** 128)
    with np.errstate(invalid="ignore"):
        err = np.abs(g - x) / spacing32(x)
    err = np.where(np.isnan(got) | np.isnan(exact), np.where(np.isnan(got) & np.isnan(exact), 0, np.inf), err)
    return np.where(both_inf, 0.0, err)


def worst(got, exact, *inputs):
    """(max error, description of where)."""
    err = ulp_error(got, exact)
    i = int(np.argmax(err))
    at = ", ".join(f"{np.float32(a[i])!r}" for a in inputs)
    return float(err[i]), f"at ({at}): got {np.float32(got[i])!r}, exact {float(exact[i])!r}"


# ---- inputs --------------------------------------------------------------------------------------
_rng = np.random.default_rng(20240614)


def whole_range(step=1 << 11):
    """float32 numbers spread over every binade (a bit-pattern grid with random low bits), both
    signs, with +-0, +-inf, NaN, the subnormal extremes and FLT_MAX."""
    bits = np.arange(0, 0x7F800000, step, dtype=np.uint32)
    bits = bits + _rng.integers(0, step, bits.size, dtype=np.uint32)
    tiny = np.arange(1, step, dtype=np.uint32)  # the smallest subnormal binades, whole
    pos = np.concatenate([bits, tiny]).view(np.float32)
    special = np.array([0.0, np.inf, np.nan, 2.0 ** -149, 2.0 ** -126, np.finfo(np.float32).max],
                       np.float32)
    x = np.concatenate([pos, special])
    return np.concatenate([x, -x])


def every_float(lo, hi, limit=1 << 20):
    """Every float32 in [lo, hi] (one sign), or `limit` evenly spaced ones when there are more."""
    if lo < 0 < hi:
        raise ValueError("one sign per range")
    a, b = sorted(np.abs(np.array([lo, hi], np.float32)).view(np.int32).tolist())
    bits = np.arange(a, b + 1) if b - a < limit else np.linspace(a, b, limit).astype(np.int64)
    x = bits.astype(np.int32).view(np.float32)
    return -x if hi <= 0 else x


def grid(*ranges):
    return np.concatenate([whole_range()] + [every_float(lo, hi) for lo, hi in ranges])


# ---- exact results (float64, stable; decimal where float64 cancels) ------------------------------
_erfc = np.frompyfunc(math.erfc, 1, 1)


def f64(a):
    return np.asarray(a, np.float64)


def sigmoid(z):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def phi_upper(x):
    """Phi(x), the standard normal CDF, accurate in both tails."""
    return 0.5 * np.asarray(_erfc(-f64(x) * SQRT1_2), np.float64)


def gelu(x):
    x = f64(x)
    return np.where(np.isinf(x), np.where(x > 0, x, 0.0), x * phi_upper(x))


def gelu_tanh_z(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return 2 * SQRT2_PI * (x + GELU_A * x ** 3)


def gelu_tanh(x):
    x = f64(x)
    with np.errstate(invalid="ignore"):
        y = x * sigmoid(gelu_tanh_z(x))
    return np.where(np.isinf(x), np.where(x > 0, x, 0.0), y)


def _dec_sqrt_2pi_inv():
    pi = Decimal("3.14159265358979323846264338327950288419716939937510")
    return 1 / (2 * pi).sqrt(), (2 / pi).sqrt()


def _dec_gelu_grad(x):
    """gelu'(x) = Phi(x) + x phi(x), 50 digits, by the Taylor series of Phi (|x| < 2)."""
    inv, _ = _dec_sqrt_2pi_inv()
    x = Decimal(float(x))
    term, s, n = x, x, 0
    while abs(term) > Decimal(10) ** -55:
        n += 1
        term = term * (-x * x) / (2 * n)
        s += term / (2 * n + 1)
    return float(Decimal("0.5") + inv * s + x * inv * (-x * x / 2).exp())


def _dec_gelu_tanh_grad(x):
    _, c = _dec_sqrt_2pi_inv()
    a = Decimal(GELU_A)
    x = Decimal(float(x))
    z = 2 * c * (x + a * x ** 3)
    s = 1 / (1 + (-z).exp())
    return float(s + x * s * (1 - s) * 2 * c * (1 + 3 * a * x * x))


def _refine_near_zero(x, d, dec):
    """float64 d (a GELU derivative) recomputed in decimal where it is small enough that the
    float64 formula's rounding (~1e-17 absolute) could reach a float32 ulp."""
    d = d.copy()
    for i in np.flatnonzero((np.abs(d) < 1e-6) & (np.abs(x) < 2)):  # the zero is near -0.75
        d[i] = dec(x[i])
    return d


def gelu_grad(x):
    x = f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        d = phi_upper(x) + x * INV_SQRT_2PI * np.exp(-0.5 * x * x)
    d = np.where(np.isinf(x), np.where(x > 0, 1.0, 0.0), d)
    return _refine_near_zero(x, d, _dec_gelu_grad)


def gelu_tanh_grad(x):
    x = f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        z = gelu_tanh_z(x)
        s = sigmoid(z)
        d = s + x * s * sigmoid(-z) * 2 * SQRT2_PI * (1 + 3 * GELU_A * x * x)
    d = np.where(np.isinf(x), np.where(x > 0, 1.0, 0.0), d)
    d = np.where(np.abs(x) > 1e10, np.where(x > 0, 1.0, 0.0), d)  # s (1 - s) x^3 -> 0 * inf
    return _refine_near_zero(x, d, _dec_gelu_tanh_grad)


def softplus(x, beta, threshold):
    x = f64(x)
    z = beta * x
    with np.errstate(over="ignore", invalid="ignore"):
        sp = (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / beta
    return np.where(z > threshold, x, sp)


def softplus_grad(x, beta, threshold):
    z = beta * f64(x)
    return np.where(z > threshold, 1.0, sigmoid(z))


def pow_(x, p):
    """x ** p with C's (and PyTorch's) value at -inf, where numpy gives NaN for non-integer p."""
    x = f64(x)
    with np.errstate(all="ignore"):
        y = np.power(x, p)
    odd = float(p).is_integer() and p % 2 == 1
    at_neg_inf = (-np.inf if odd else np.inf) if p > 0 else (-0.0 if odd else 0.0)
    return np.where(x == -np.inf, 1.0 if p == 0 else at_neg_inf, y)


def pow_grad(x, p):
    """p x^(p-1); 0 everywhere for p = 0, as PyTorch (no 0 * inf at x = 0)."""
    if p == 0:
        return np.zeros_like(f64(x))
    return p * pow_(x, float(np.float32(p) - np.float32(1)))


# ---- the kernels ---------------------------------------------------------------------------------
class K:
    """A float32 kernel pair. fwd(x) / exact(x); bwd(s, g) with exact g * dexact(s), s the saved
    forward input ('x') or output ('y'); `saved_domain` keeps the s a forward can produce;
    `ranges` are the dense grids (cancellation regions) of the forward, `bwd_ranges` of s."""

    def __init__(self, name, fwd, exact, bwd=None, dexact=None, saved="x", ranges=(),
                 bwd_ranges=None, saved_domain=None):
        self.name, self.fwd, self.exact, self.bwd, self.dexact = name, fwd, exact, bwd, dexact
        self.saved, self.ranges = saved, ranges
        self.bwd_ranges = ranges if bwd_ranges is None else bwd_ranges
        self.saved_domain = saved_domain

    def __repr__(self):
        return self.name


def _leaky(slope):
    s = float(np.float32(slope))
    return K(f"leaky_relu_{slope}", lambda x: _C.leaky_relu(x, slope),
             lambda x: np.where(f64(x) > 0, f64(x), f64(x) * s),
             lambda x, g: _C.leaky_relu_backward(x, g, slope), lambda x: np.where(f64(x) > 0, 1.0, s))


def _softplus(beta, threshold):
    return K(f"softplus_{beta}_{threshold}", lambda x: _C.softplus(x, beta, threshold),
             lambda x: softplus(x, beta, threshold),
             lambda x, g: _C.softplus_backward(x, g, beta, threshold),
             lambda x: softplus_grad(x, beta, threshold),
             ranges=((-40 / beta, -1e-3), (1e-3, 40 / beta)))


def _pow(p):
    return K(f"pow_{p}", lambda x: _C.pow_scalar(x, p), lambda x: pow_(x, p),
             lambda x, g: _C.pow_scalar_backward(x, g, p), lambda x: pow_grad(x, p),
             ranges=((0.5, 2.0), (-2.0, -0.5)))


def _unit(y):
    return np.abs(y) <= 1


KERNELS = [
    K("sigmoid", _C.sigmoid, lambda x: sigmoid(f64(x)), _C.sigmoid_backward,
      lambda y: f64(y) * (1 - f64(y)), "y", ranges=((-30, -1e-3), (1e-3, 30)),
      bwd_ranges=((0.9, 1.0), (1e-3, 0.1)), saved_domain=lambda y: (y >= 0) & (y <= 1)),
    K("tanh", _C.tanh, lambda x: np.tanh(f64(x)), _C.tanh_backward, lambda y: 1 - f64(y) ** 2, "y",
      ranges=((-10, -1e-3), (1e-3, 10)), bwd_ranges=((0.9, 1.0), (-1.0, -0.9)), saved_domain=_unit),
    K("relu", _C.relu, lambda x: np.where(f64(x) < 0, 0.0, f64(x)), _C.relu_backward,
      lambda y: np.where(f64(y) > 0, 1.0, 0.0), "y"),
    _leaky(0.01),
    _leaky(0.2),
    K("gelu", lambda x: _C.gelu(x, False), gelu, lambda x, g: _C.gelu_backward(x, g, False), gelu_grad,
      ranges=((-15, -0.5), (-0.76, -0.74), (1e-3, 8))),
    K("gelu_tanh", lambda x: _C.gelu(x, True), gelu_tanh, lambda x, g: _C.gelu_backward(x, g, True),
      gelu_tanh_grad, ranges=((-15, -0.5), (-0.76, -0.74), (1e-3, 8))),
    _softplus(1.0, 20.0),
    _softplus(2.0, 5.0),
    _softplus(0.5, 30.0),
    K("exp", _C.exp, lambda x: np.exp(f64(x)), _C.exp_backward, f64, "y", ranges=((-104, -1e-3), (1e-3, 89)),
      saved_domain=lambda y: y >= 0),
    K("log", _C.log, lambda x: np.log(f64(x)), _C.log_backward, lambda x: 1 / f64(x),
      ranges=((0.5, 2.0),)),
    K("sqrt", _C.sqrt, lambda x: np.sqrt(f64(x)), _C.sqrt_backward, lambda y: 1 / (2 * f64(y)), "y",
      saved_domain=lambda y: y >= 0),
    K("abs", _C.abs, lambda x: np.abs(f64(x)), _C.abs_backward,
      lambda x: np.where(np.isnan(x), np.nan, np.sign(f64(x)))),
    K("neg", _C.neg, lambda x: -f64(x)),
] + [_pow(p) for p in (0.0, 1.0, 2.0, 3.0, 4.0, -1.0, -2.0, 0.5, -0.5, 1.5, -1.5, 2.5)]
IDS = [k.name for k in KERNELS]
BWD = [k for k in KERNELS if k.bwd is not None]


def forward_error(k):
    x = grid(*k.ranges)
    with np.errstate(all="ignore"):
        return worst(k.fwd(x), k.exact(x), x)


def random_g(n):
    """float32 gradients of either sign with magnitudes in [0.5, 2)."""
    m = _rng.uniform(0.5, 2.0, n) * _rng.choice([-1.0, 1.0], n)
    return m.astype(np.float32)


def backward_errors(k):
    """(max error, where) with g = 1 and with random g."""
    s = grid(*k.bwd_ranges)
    if k.saved_domain is not None:
        with np.errstate(invalid="ignore"):
            s = s[k.saved_domain(s) | np.isnan(s)]
    with np.errstate(divide="ignore"):
        d = k.dexact(s)
    out = []
    for g in (np.ones_like(s), random_g(s.size)):
        with np.errstate(all="ignore"):
            out.append(worst(k.bwd(s, g), f64(g) * d, s, g))
    return out


# ---- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", KERNELS, ids=IDS)
def test_forward_within_4_ulp(k):
    err, where = forward_error(k)
    assert err <= MAX_ULP, f"{k.name}: {err:.1f} ulp {where}"


def test_log_every_float_from_a_third_to_three():
    """Every float32 in [1/3, 3): both ends of the reduction m in [2/3, 4/3) (r = m - 1 at
    +-1/3, the polynomial's edges) for k = -1, 0, 1, and the cancellation of k ln2 against r."""
    lo, hi = np.float32(1 / 3).view(np.int32), np.float32(3).view(np.int32)
    x = np.arange(lo, hi, dtype=np.int32).view(np.float32)
    err, where = worst(_C.log(x), np.log(f64(x)), x)
    assert err <= MAX_ULP, f"log: {err:.1f} ulp {where}"


@pytest.mark.parametrize("k", BWD, ids=[k.name for k in BWD])
def test_backward_within_4_ulp(k):
    for (err, where), g in zip(backward_errors(k), ("1", "random")):
        assert err <= MAX_ULP, f"{k.name}_backward (g = {g}): {err:.1f} ulp {where}"


# ---- the measure itself ----------------------------------------------------------------------------
def test_ulp_error_definition():
    f = np.float32
    one = 2.0 ** -23
    assert ulp_error(np.array([1 + one], f), np.array([1.0]))[0] == 1
    assert ulp_error(np.array([1.0], f), np.array([1 + one / 2]))[0] == 0.5
    # the spacing is taken at the exact value: the float just below 1 is half a spacing away
    assert ulp_error(np.array([1 - one / 2], f), np.array([1.0]))[0] == 0.5
    assert ulp_error(np.array([0.0], f), np.array([2.0 ** -149]))[0] == 1  # subnormal spacing
    assert ulp_error(np.array([2.0 ** -148], f), np.array([0.0]))[0] == 2
    assert ulp_error(np.array([np.inf], f), np.array([np.inf]))[0] == 0
    assert ulp_error(np.array([np.finfo(f).max], f), np.array([np.inf]))[0] == 1
    assert ulp_error(np.array([np.inf], f), np.array([1e300]))[0] == 0  # both beyond the range
    assert ulp_error(np.array([np.inf], f), np.array([1.0]))[0] > 1e30
    assert ulp_error(np.array([np.nan], f), np.array([1.0]))[0] == np.inf
    assert ulp_error(np.array([1.0], f), np.array([np.nan]))[0] == np.inf
    assert ulp_error(np.array([np.nan], f), np.array([np.nan]))[0] == 0


def test_whole_range_covers_every_binade_and_the_specials():
    x = whole_range()
    finite = x[np.isfinite(x) & (x != 0)]
    _, e = np.frexp(np.abs(finite.astype(np.float64)))
    assert set(range(-148, 129)) <= set(e.tolist())
    assert np.isnan(x).any() and np.isposinf(x).any() and np.isneginf(x).any()
    assert (x == 0).any() and (np.signbit(x) & (x == 0)).any()


def test_decimal_reference_agrees_with_float64_away_from_the_zero():
    x = np.array([-1.5, -0.3, 0.4, 1.7])
    np.testing.assert_allclose([_dec_gelu_grad(v) for v in x], gelu_grad(x), rtol=1e-14)
    np.testing.assert_allclose([_dec_gelu_tanh_grad(v) for v in x], gelu_tanh_grad(x), rtol=1e-14)
