// The math of every activation and its derivative, written once.
//
// This header is included by the C++ CPU kernels and pasted verbatim into the preamble of the
// CuPy (NVRTC) kernels, so the formulas the CPU tests check are the ones the GPU runs. Keep it
// free of anything but inline arithmetic on a scalar T: no includes under NVRTC, no I/O, no
// globals.
#pragma once

#if !defined(GF_VECMATH_H)
#include "gf_vecmath.h"  // exp, log, expm1, tanh, normal tail (pasted before this file for CuPy)
#endif

namespace gf {
namespace math {

namespace detail {
// e^(x - m) 2^100 for x <= 0 and |m| < 2^-16 (minus the low part of a two-float argument; m = 0
// folds away), a normal float: kernels whose result can be subnormal scale by 2^-100 last, so
// that it is rounded once.
// The parts of e^(x - m) 2^100 for x <= 0: the scale 2^(k + 100), r, and q with
// e^r = 1 + r q (q the Taylor series to r^7 over r, without its last step).
struct ExpParts {
  float scale, r, q;
};
GF_HD ExpParts exp_nonpos_2p100_parts(float x, float m) {
  x = x < -120.0f ? -120.0f : x;  // e^-120 2^-100 is 0 to a float (NaN stays NaN)
  const float shift = 12582912.0f;  // 1.5 2^23: adding it rounds to an integer
  float t = x * 1.44269504f + shift;
  float k = t - shift;  // round(x / ln 2), in [-174, 0]
  // r = x - m - k ln 2 in [-ln2/2, ln2/2]; k * ln2_hi is exact (ln2_hi has 16 significant bits)
  float r = ((x - k * 0.693145751953125f) - k * 1.428606765330187e-06f) - m;
  float q = 1.98412698e-04f;  // Taylor to r^7: error < 5e-9
  q = q * r + 1.38888889e-03f;
  q = q * r + 8.33333333e-03f;
  q = q * r + 4.16666667e-02f;
  q = q * r + 0.166666667f;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  // 2^(k + 100) from the low bits of t (k + 227 in the exponent field)
  return {bits_to_float((float_to_bits(t) + 227) << 23), r, q};
}
GF_HD float exp_nonpos_2p100(float x, float m) {
  ExpParts e = exp_nonpos_2p100_parts(x, m);
  return (e.q * e.r + 1.0f) * e.scale;
}
GF_HD float two_m100() { return 7.88860905e-31f; }  // 2^-100 (a function: NVRTC has no globals)
}  // namespace detail

// e^x for x <= 0, the argument every stable activation form passes. float: within 1 ulp, a
// subnormal result rounded once, by the last product. double: exp of gf_vecmath.h less its upper
// clamp, which cannot apply here and whose constant GCC folds into every later expression, a blend
// each (float64 sigmoid, softplus and GELU-tanh 0.9x the time without it).
GF_HD float exp_nonpos(float x) { return detail::exp_nonpos_2p100(x, 0.0f) * detail::two_m100(); }
GF_HD double exp_nonpos(double x) {
  x = x < -746.0 ? -746.0 : x;  // (NaN passes)
  return detail::exp_reduced(detail::reduce_ln2(x));
}

// Logistic sigmoid, stable for any x: exp only ever sees -|x|, so it never overflows. One
// rounded division (e / (1 + e) for x < 0), not 1 / (1 + e) times e: an ulp less.
template <class T> GF_HD T sigmoid(T x) {
  T e = exp_nonpos(-abs(x));
  return (x >= T(0) ? T(1) : e) / (T(1) + e);
}
// Derivatives take what the forward saved (here the output y) and the incoming gradient g.
template <class T> GF_HD T sigmoid_grad(T y, T g) { return g * y * (T(1) - y); }

template <class T> GF_HD T tanh_(T x) { return tanh(x); }
// 1 - y^2 as (1 - y)(1 + y): where it cancels (|y| near 1) 1 - |y| is exact, while y * y would
// be rounded before the subtraction.
template <class T> GF_HD T tanh_grad(T y, T g) { return g * ((T(1) - y) * (T(1) + y)); }

// `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) so that NaN propagates, as in numpy and PyTorch.
template <class T> GF_HD T relu(T x) { return x < T(0) ? T(0) : x; }
template <class T> GF_HD T relu_grad(T y, T g) { return y > T(0) ? g : T(0); }

template <class T> GF_HD T leaky_relu(T x, T slope) { return x > T(0) ? x : x * slope; }
template <class T> GF_HD T leaky_relu_grad(T x, T g, T slope) { return x > T(0) ? g : g * slope; }

// ---- GELU -------------------------------------------------------------------------------------
// Both GELUs cancel for x < 0 (1 + erf, 1 + tanh) and their derivatives have a zero near
// x = -0.75, so the textbook forms lose up to ~100 ulp in float32. The double versions use
// the normal tail Q and keep the forms below. The float exact GELU is all float (a vector of
// doubles holds half as many lanes): e^(-x^2/2) from a two-float x^2, fitted tails, and
// error-free products (fma), within 3 ulp; so is the float tanh GELU (a two-float z), also
// within 3 ulp. Its derivative is computed in double (within 0.6 ulp): in float its cancellation
// took a two-float z, e^-z as hi + lo and a fit around its zero, 1.5x the instructions.

namespace detail {
// The fits below are polynomials in u = 3 / (3 + a), a = |x| in [0, 15] (beyond, the GELUs are 0
// or x to a float). A rounding error e in u changes their value by S(u) e, S = d ln f / d ln u up
// to 2.4: tail_var returns u with its error, and each fit corrects for it with its own S (a
// degree-5 fit), which keeps them within about 2 ulp in float.
GF_HD float tail_var(float a, float& du) {  // u, and du = (3 / (3 + a) - u) / u
  float s = 3.0f + a;
  float big = 3.0f < a ? a : 3.0f, small = 3.0f < a ? 3.0f : a;
  float se = (big - s) + small;  // 3 + a = s + se exactly
  float u = 3.0f / s;
  float r = fma(-u, s, 3.0f);    // 3 - u s exactly
  du = (r - u * se) * (1.0f / 3.0f);
  return u;
}
// The standard normal upper tail Q(a) = Phi(-a) over e^(-a^2/2), as u P(u) (weighted
// least-squares fit, relative error 1e-10).
GF_HD float normal_tail_ratio(float u) {
  float p = -0.01243093702942133f;
  p = p * u + 0.0830172747373581f;
  p = p * u - 0.22859777510166168f;
  p = p * u + 0.3176004886627197f;
  p = p * u - 0.20654985308647156f;
  p = p * u + 0.036736708134412766f;
  p = p * u - 0.014385249465703964f;
  p = p * u - 0.0014941520057618618f;
  p = p * u + 0.05435345321893692f;
  p = p * u + 0.08742090314626694f;
  p = p * u + 0.11838111281394958f;
  p = p * u + 0.1329667866230011f;
  p = p * u + 0.13298124074935913f;
  return p;
}
// d ln (u P) / d ln u: the fit's change for a rounding error in u (a degree-5 fit)
GF_HD float normal_tail_sens(float u) {
  float sens = 1.2842352390289307f;
  sens = sens * u - 3.5438547134399414f;
  sens = sens * u + 2.4243664741516113f;
  sens = sens * u + 0.1399444341659546f;
  sens = sens * u + 1.0947779417037964f;
  sens = sens * u + 0.994536280632019f;
  return sens;
}
// (Q(a) - a phi(a)) / (e^(-a^2/2) (a - a0)), a0 = 0.7517915246935645 the zero of gelu'(-a); same
// variable and fit, relative error 1e-10. The factor a - a0 is what cancels, and is computed
// exactly.
GF_HD float gelu_grad_ratio(float u) {
  float p = -0.001971269492059946f;
  p = p * u + 0.00881529226899147f;
  p = p * u - 0.007872208021581173f;
  p = p * u - 0.02424168772995472f;
  p = p * u + 0.0597357340157032f;
  p = p * u - 0.03795865923166275f;
  p = p * u + 0.011791822500526905f;
  p = p * u - 0.038531672209501266f;
  p = p * u - 0.05502806976437569f;
  p = p * u - 0.08091795444488525f;
  p = p * u - 0.0999564379453659f;
  p = p * u - 0.39894288778305054f;
  return p;
}
GF_HD float gelu_grad_sens(float u) {  // d ln R / d ln u
  float sens = -0.012910392135381699f;
  sens = sens * u - 0.5166671276092529f;
  sens = sens * u + 0.972266435623169f;
  sens = sens * u + 0.051615532487630844f;
  sens = sens * u + 0.30611109733581543f;
  sens = sens * u - 0.003914228640496731f;
  return sens;
}
// e^(-a^2/2) 2^100 in float, from a^2 = h + l exactly (fma).
GF_HD float normal_exp_half_sq_2p100(float a) {
  float h = a * a;
  return exp_nonpos_2p100(-0.5f * h, 0.5f * fma(a, a, -h));
}
}  // namespace detail

// Exact GELU: x Phi(x), Phi the standard normal CDF; Phi(x) = Q(-x) has no cancellation for
// x < 0, 1 - Q(x) none for x >= 0 (one tail Q either way, of x itself: no x / sqrt 2 whose
// rounding would grow with x^2 in the tails).
template <class T> GF_HD T gelu(T x) {
  T q = normal_upper_tail(abs(x));  // Phi(-|x|)
  return x < T(0) ? x * q : x * (T(1) - q);
}
// d/dx [x Phi(x)] = Phi(x) + x phi(x), one e^(-x^2/2) for both terms; |x| clamped where Q and phi
// are 0 (so that +-inf gives 1 or 0, not inf * 0).
template <class T> GF_HD T gelu_grad(T x, T g) {
  T a = detail::clamp_abs_bits(x, T(40));  // e is 0 beyond 38.7 (R's fit ends at 38.6)
  T e = normal_density_scaled(a);
  T q = e * normal_tail_scaled(a);
  T xpdf = (x < T(0) ? -a : a) * T(0.39894228040143267794) * e;
  T d = g * ((x < T(0) ? q : T(1) - q) + xpdf);
  return x == x ? d : x;  // (the clamp made a NaN x 40)
}
// x Q(a) 2^100 = x e^(-a^2/2) u P(u (1 + du)) 2^100: the products error-free (fma) until the
// last, rounded once, so that only e^ and P's own rounding errors remain (about 3 ulp in all).
GF_HD float gelu(float x) {
  float a = detail::clamp_abs_bits(x, 15.0f);  // NaN propagates through x
  float du, u = detail::tail_var(a, du);
  float p = detail::normal_tail_ratio(u), sens = detail::normal_tail_sens(u);
  float e = detail::normal_exp_half_sq_2p100(a);
  float xc = -30.0f < x ? x : -30.0f;  // inf * 0 is NaN (a NaN x reaches the result below)
  xc = 30.0f < xc ? 30.0f : xc;
  float xu = xc * u, xu_lo = fma(xc, u, -xu);
  float b = xu * e, b_lo = fma(xu, e, -b) + xu_lo * e;
  float q = fma(b, p, fma(b * p, du * sens, b_lo * p));  // x Q(a) 2^100
  // 2^-100 last: a subnormal result is rounded once more, by an error far below its spacing
  return x < 0 ? q * detail::two_m100() : fma(-q, detail::two_m100(), x);
}
// gelu'(x) = Phi(x) + x phi(x) = r for x < 0 and 1 - r for x >= 0, r = e^(-a^2/2) (a - a0) R(a),
// a = |x|, R = gelu_grad_ratio: the zero at x = -a0 is the factor a - a0, a two-float. The
// products as in gelu.
GF_HD float gelu_grad(float x, float g) {
  float a = detail::clamp_abs_bits(x, 15.0f);  // gelu' is 0 or 1 beyond 15; NaN restored last
  float du, u = detail::tail_var(a, du);
  float p = detail::gelu_grad_ratio(u), sens = detail::gelu_grad_sens(u);
  float e = detail::normal_exp_half_sq_2p100(a);
  float d = a - 0.75179154f, dd = d - a;  // a - a0 = d + d_lo (two-sum; a0 in two parts)
  float d_lo = ((a - (d - dd)) - (0.75179154f + dd)) + 1.211445e-08f;
  float b = e * d, b_lo = fma(e, d, -b) + e * d_lo;
  float r = fma(b, p, fma(b * p, du * sens, b_lo * p));  // r 2^100
  // g r: where r is subnormal, r 2^-50 times g 2^-50 (g r is rounded once, and cannot overflow)
  float rs = r * detail::two_m100();
  bool sub = (r < 0 ? -r : r) < 1.49011612e-08f;  // 2^-26
  float neg = sub ? (g * 8.8817842e-16f) * (r * 8.8817842e-16f) : g * rs;  // 2^-50
  return x < 0 ? neg : (x == x ? fma(-g, rs, g) : x);
}

// GELU, tanh approximation: x (1 + tanh(u)) / 2 = x sigmoid(z), z = 2u = 2 sqrt(2/pi) (x + 0.044715 x^3).
template <class T> GF_HD T gelu_tanh(T x) {
  T z = T(1.5957691216057307118) * (x + T(0.044715) * x * x * x);
  return x * sigmoid(z);
}
// d/dx [x s(z)] = s (1 + x (1 - s) z'), z' = 2 sqrt(2/pi) (1 + 3 0.044715 x^2).
template <class T> GF_HD T gelu_tanh_grad(T x, T g) {
  T x2 = x * x;
  T z = T(1.5957691216057307118) * (x + T(0.044715) * x2 * x);
  T e = exp_nonpos(-abs(z));
  T r = T(1) / (T(1) + e);
  T s = z >= T(0) ? r : e * r, s1 = z >= T(0) ? e * r : r;  // s(z), 1 - s(z)
  T dz = T(1.5957691216057307118) * (T(1) + T(3) * T(0.044715) * x2);
  return g * (s * (T(1) + x * s1 * dz));
}
// z as a two-float hi + lo (error ~1e-14 |z|): where z < 0, sigmoid(z) ~ e^z has the relative
// error of z times |z| (up to 104), far beyond a float z.
namespace detail {
// z = x (c + c 0.044715 x^2) = x P, c = 2 sqrt(2/pi); x^2 = w + w_lo. Constants in two parts.
GF_HD float gelu_tanh_z(float x, float& lo) {
  float w = x * x;
  float w_lo = fma(x, x, -w);
  float m = 0.0713548139f * w;  // c 0.044715 x^2
  float m_lo = fma(0.0713548139f, w, -m) + (0.0713548139f * w_lo + 2.39883247e-09f * w);
  float P = 1.59576917f + m, bb = P - 1.59576917f;  // two-sum
  float P_lo = ((1.59576917f - (P - bb)) + (m - bb)) + (m_lo - 4.53406805e-08f);
  float z = x * P;
  lo = fma(x, P, -z) + x * P_lo;
  return z;
}
}  // namespace detail
// x sigmoid(z) = x / (1 + e) for z >= 0, x e / (1 + e) for z < 0, e = e^-|z|: one division, and
// 2^-100 last (a subnormal result is rounded once).
GF_HD float gelu_tanh(float x) {
  float a = detail::clamp_abs_bits(x, 30.0f);  // beyond, gelu is x or -0 (NaN: through x)
  float lo, z = detail::gelu_tanh_z(a, lo);  // z(|x|) >= 0
  float e2 = detail::exp_nonpos_2p100(-z, lo);  // e 2^100
  float e = (z < 87.0f ? e2 : 0.0f) * detail::two_m100();  // never subnormal (slow)
  float xc = -30.0f < x ? x : -30.0f;  // -inf gives -0, not -inf e
  float y = (x < 0 ? xc * e2 : x) / (1.0f + e);
  // times 2^-100 where x has its sign bit (-0 included, no matter), built from the bits: a
  // select on x < 0 here would have the compiler divide both quotients
  return y * detail::bits_to_float(0x3f800000 - ((detail::float_to_bits(x) >> 31) & (100 << 23)));
}
// s (1 + x (1 - s) z') = 1 + T(a) for x >= 0 and -T(a) for x < 0 (gelu'(x) + gelu'(-x) = 1), where
// a = |x|, e = e^-z(a), A = a z'(a), T = e (A - 1 - e) / (1 + e)^2, in double. A - 1 - e cancels
// at its zero a1 (A(a1) = 1 + e1, e1 = e^-z(a1)): at the float closest to a1 it is 2.8e-8, so e
// from e^-z would need an exp good to 1e-15 (degree 11). Taken relative to a1 instead, with
// d = a - a1 (exact there) an exact factor of the cubics' differences,
// A(a) - A(a1) = d (c + c3 S), z(a) - z(a1) = d (c + c A S), S = a^2 + a a1 + a1^2,
// e = e1 e^-(z(a) - z(a1)) = e1 t (1 + q): near a1, k = 0 and q ~ -d, and the fit's error is
// relative to q, so A - 1 - e = (A(a) - A(a1) + e1) - e is within 1e-8 relative (its roundings,
// under 1e-16 absolute, add 3e-9). g (1 + T) or -g T is rounded once to float (a subnormal too).
GF_HD float gelu_tanh_grad(float x, float g) {
  double a = detail::clamp_abs_bits(x, 20.0f);  // 1 or 0 beyond (T < 1e-250); NaN restored last
  double d = a - 0.7524614220710163;  // a - a1, exact near a1 (a1's low part, 4e-17, left out)
  double S = fma(a, a + 0.7524614220710163, 0.5661981917051361);  // a1^2 rounded
  double dz = d * fma(0.07135481627260025, S, 1.5957691216057308);  // z(a) - z(a1), in [-1.24, 602]
  // e^-dz = 2^k (1 + q), q = e^r - 1 by a fit (relative error 1.4e-8, 5.5e-9 for 1 + q, over
  // |r| <= ln2/2: a float result needs no more); k ln2 with ln2 in one part (|k| <= 869: r's
  // error is below 2e-14)
  const double shift = 6755399441055744.0;  // 1.5 2^52: adding it rounds to an integer
  double tk = fma(-dz, 1.4426950408889634, shift);
  double k = tk - shift;
  double r = fma(k, -0.6931471805599453, -dz);
  double p = 0.0013882509830832554;
  p = p * r + 0.008366581567477027;
  p = p * r + 0.041667201819742976;
  p = p * r + 0.16666543168898154;
  p = p * r + 0.4999999814386214;
  double q = fma(r * r, p, r);
  // e1 2^k: k (the low bits of tk) added to e1's exponent field, in unsigned arithmetic
  const double e1 = 0.29195521191476714;  // e^-z(a1)
  unsigned long long kb = (unsigned long long)detail::double_to_bits(tk) << 52;
  double te = detail::bits_to_double((long long)((unsigned long long)detail::double_to_bits(e1) + kb));
  double e = fma(te, q, te);
  double W = fma(d, fma(0.21406444881780073, S, 1.5957691216057308), e1) - e;  // A - 1 - e
  double ope = 1.0 + e;
  double T = e * W / (ope * ope);
  float y = float(double(g) * (x < 0 ? -T : 1.0 + T));  // rounded once
  return x == x ? y : x;
}

// log(1 + e) for e in [0, 1], the range softplus needs. float: 2 atanh(s) with s = e / (2 + e)
// in [0, 1/3], an odd polynomial (least-squares fit; within 2 ulp of log1p over all of [0, 1]):
// no exponent handling, cheaper than a full log plus a correction. double: log(u) plus the
// rounding error of u = 1 + e over u.
GF_HD float log1p_unit(float e) {
  float s = e / (2.0f + e);
  float z = s * s;
  float p = 0.11855479329824448f;
  p = p * z + 0.1079321876168251f;
  p = p * z + 0.1430109292268753f;
  p = p * z + 0.19999706745147705f;
  p = p * z + 0.3333333432674408f;
  return 2.0f * (s + s * z * p);
}
GF_HD double log1p_unit(double e) {
  double u = 1.0 + e;
  return detail::log_<false>(u) + (e - (u - 1.0)) / u;  // (u in [1, 2])
}

// softplus(x) = log(1 + exp(beta x)) / beta, linear once beta x > threshold (as PyTorch).
// Written as max(z, 0) + log1p(exp(-|z|)) so that it never overflows, whatever the threshold.
// 1 / beta is hoisted out of loops.
template <class T> GF_HD T softplus(T x, T beta, T threshold) {
  T z = beta * x;
  T sp = (z > T(0) ? z : T(0)) + log1p_unit(exp_nonpos(-abs(z)));
  return z > threshold ? x : sp * (T(1) / beta);
}
template <class T> GF_HD T softplus_grad(T x, T g, T beta, T threshold) {
  T z = beta * x;
  return z > threshold ? g : g * sigmoid(z);
}

}  // namespace math
}  // namespace gf
