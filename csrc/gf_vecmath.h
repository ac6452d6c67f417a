// gradflow's own exp, log, expm1, pow, tanh and normal tail, for float and double.
//
// Plain branch-free arithmetic (integer tricks on the bit patterns, polynomials, selects instead
// of branches), so that GCC and clang both vectorise a `#pragma omp simd` loop that calls them,
// with no vector libm. Shared with the CUDA kernels like gf_math.h (which includes it, and is
// pasted after it into the NVRTC preamble): no includes under NVRTC, no globals.
//
// Accuracy (measured against long double references, see tests/test_vecmath.py): float within
// 2.5 ulp, double within 4e-16 relative (the normal tail 7e-16, pow 7e-16), over the whole range,
// with C's special values (+-0, subnormals, overflow and underflow thresholds, +-inf, NaN).
#pragma once
#define GF_VECMATH_H  // (gf_math.h includes this file only where its text was not pasted before)

#if defined(__CUDACC__)
#define GF_HD __host__ __device__ __forceinline__
#else
// always inlined: a call inside a `#pragma omp simd` loop would keep it from vectorising
#define GF_HD inline __attribute__((always_inline))
#include <cmath>
#endif

namespace gf {
namespace math {

#if !defined(__CUDACC__)
using std::abs;
using std::fma;
using std::sqrt;
#endif

namespace detail {
GF_HD double bits_to_double(long long i) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(i);
#else
  double d;
  __builtin_memcpy(&d, &i, sizeof d);
  return d;
#endif
}
GF_HD long long double_to_bits(double d) {
#if defined(__CUDA_ARCH__)
  return __double_as_longlong(d);
#else
  long long i;
  __builtin_memcpy(&i, &d, sizeof i);
  return i;
#endif
}
GF_HD float bits_to_float(int i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float f;
  __builtin_memcpy(&f, &i, sizeof f);
  return f;
#endif
}
GF_HD int float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(f);
#else
  int i;
  __builtin_memcpy(&i, &f, sizeof i);
  return i;
#endif
}

// 2^k for k in the normal exponent range, straight into the exponent field
// (unsigned shifts: k is garbage, and only its NaN result matters, when the input was NaN)
GF_HD float pow2i(int k) { return bits_to_float(int(unsigned(k + 127) << 23)); }
GF_HD double pow2i(long long k) {
  return bits_to_double((long long)((unsigned long long)(k + 1023) << 52));
}
GF_HD float copysign_(float mag, float s) {  // |mag| >= 0 (or NaN) with the sign of s
  return bits_to_float(float_to_bits(mag) | (float_to_bits(s) & int(0x80000000u)));
}
GF_HD double copysign_(double mag, double s) {
  return bits_to_double(double_to_bits(mag) | (double_to_bits(s) & (long long)(0x8000000000000000ull)));
}
// min(|x|, m) for m > 0 as an integer min of the bits (NaN gives m): a select of a constant
// would be folded by the compiler into every expression of the result, one blend each (in the
// float64 GELU, 14 blends and 10 constant loads per vector).
GF_HD float clamp_abs_bits(float x, float m) {
  int a = float_to_bits(x) & 0x7fffffff, b = float_to_bits(m);
  return bits_to_float(b < a ? b : a);
}
GF_HD double clamp_abs_bits(double x, double m) {
  long long a = double_to_bits(x) & 0x7fffffffffffffffll, b = double_to_bits(m);
  return bits_to_double(b < a ? b : a);
}
GF_HD float inf_f() { return bits_to_float(0x7f800000); }
GF_HD double inf_d() { return bits_to_double(0x7ff0000000000000ll); }
GF_HD float inf_(float) { return inf_f(); }
GF_HD double inf_(double) { return inf_d(); }

// x = k ln2 + r, |r| <= ln2/2 (plus rounding), k an integer as a float / double and as an int.
// Adding 1.5 2^23 (2^52) rounds to an integer; the integer is then in the low bits of t. k times
// ln2's high part is exact (it has 16 / 32 significant bits), so r has only lo's rounding, and
// the low part of a two-term argument is added to r by the caller.
struct RedF {
  float r;
  int k;
};
GF_HD RedF reduce_ln2(float x) {
  const float shift = 12582912.0f;  // 1.5 2^23
  float t = x * 1.44269504f + shift;
  float k = t - shift;
  RedF o;
  o.r = (x - k * 0.693145751953125f) - k * 1.428606765330187e-06f;
  o.k = float_to_bits(t) - 0x4B400000;  // the bits of shift
  return o;
}
struct RedD {
  double r;
  long long k;
};
GF_HD RedD reduce_ln2(double x) {
  const double shift = 6755399441055744.0;  // 1.5 2^52
  double t = x * 1.4426950408889634 + shift;
  double k = t - shift;
  RedD o;
  o.r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  o.k = double_to_bits(t) - 0x4338000000000000ll;
  return o;
}

// e^r - 1 - r over r^2 for |r| <= 0.35: float Taylor to r^8 (relative error of e^r - 1 below
// 1e-9), double a least-squares fit of degree 11 in all (relative error of e^r below 2e-17).
GF_HD float expm1_tail(float r) {
  float p = 2.48015873e-05f;
  p = p * r + 1.98412698e-04f;
  p = p * r + 1.38888889e-03f;
  p = p * r + 8.33333333e-03f;
  p = p * r + 4.16666667e-02f;
  p = p * r + 0.166666667f;
  return p * r + 0.5f;
}
GF_HD double expm1_tail(double r) {  // (Estrin's scheme: a short dependency chain)
  double r2 = r * r, r4 = r2 * r2;
  double p01 = 0.16666666666666483 * r + 0.5000000000000012;
  double p23 = 0.00833333333345138 * r + 0.04166666666651618;
  double p45 = 0.0001984126959726756 * r + 0.001388888894671868;
  double p67 = 2.7557507109782503e-06 * r + 2.48014903029148e-05;
  double p89 = 2.5024716626552722e-08 * r + 2.763114162568767e-07;
  return (p01 + r2 * p23) + r4 * ((p45 + r2 * p67) + r4 * p89);
}

// e^(k ln2 + r). The scale 2^k is applied as two exact powers of two, 2^(k/2) then 2^(k - k/2):
// the first product is exact (a normal number), the second rounds once, so subnormal results are
// rounded correctly and 2^k itself never needs to be representable.
template <class T> GF_HD T exp_poly(T r) { return T(1) + (r + r * r * expm1_tail(r)); }  // e^r
template <class Red> GF_HD auto exp_reduced(Red red) -> decltype(red.r) {
  auto p = exp_poly(red.r);
  auto k1 = red.k >> 1;
  return p * pow2i(k1) * pow2i(red.k - k1);
}
}  // namespace detail

// ---- exp, expm1 -------------------------------------------------------------------------------
// Beyond the clamps e^x is 0 or inf to the type (e^-104 < 2^-150, e^89 > FLT_MAX; e^-746 <
// 2^-1075, e^710 > DBL_MAX); the comparisons let NaN through.
GF_HD float exp(float x) {
  x = x < -104.0f ? -104.0f : x;
  x = x > 89.0f ? 89.0f : x;
  return detail::exp_reduced(detail::reduce_ln2(x));
}
GF_HD double exp(double x) {
  x = x < -746.0 ? -746.0 : x;
  x = x > 710.0 ? 710.0 : x;
  return detail::exp_reduced(detail::reduce_ln2(x));
}
// e^(x + xl) for a two-term argument (|xl| tiny next to the rounding of x, e.g. the low part of
// -a^2/2), x <= 0: its error is that of exp, not x's rounding times |x|. exp_hl_in_range: the
// same without the clamp, for x >= -745 (-103 for float).
template <class T> GF_HD T exp_hl_in_range(T x, T xl) {
  auto red = detail::reduce_ln2(x);
  red.r += xl;
  return detail::exp_reduced(red);
}
template <class T> GF_HD T exp_hl_(T x, T xl, T lo) { return exp_hl_in_range(x < lo ? lo : x, xl); }
GF_HD float exp_hl(float x, float xl) { return exp_hl_(x, xl, -104.0f); }
GF_HD double exp_hl(double x, double xl) { return exp_hl_(x, xl, -746.0); }

// e^x - 1 = 2 (2^(k-1) q + (2^(k-1) - 1/2)), q = e^r - 1: no cancellation for k = 0 (the result
// is q), one rounding of a sum whose terms are at most twice the result otherwise; 2^(k-1)
// stays representable up to the overflow threshold. Below -18 (float) / -40 (double) the result
// is -1 to the type; |x| < 2^-25 / 2^-54 gives x itself (and keeps -0).
template <class T> GF_HD T expm1_(T x, T lo, T hi, T tiny) {
  T xc = x < lo ? lo : (x > hi ? hi : x);
  auto red = detail::reduce_ln2(xc);
  T q = red.r + red.r * red.r * detail::expm1_tail(red.r);
  T t = detail::pow2i(red.k - 1);
  T y = T(2) * (t * q + (t - T(0.5)));
  return abs(x) < tiny ? x : y;
}
GF_HD float expm1(float x) { return expm1_(x, -18.0f, 89.0f, 2.98023224e-08f); }
GF_HD double expm1(double x) { return expm1_(x, -40.0, 710.0, 5.5511151231257827e-17); }

// ---- log ---------------------------------------------------------------------------------------
// float: x = 2^k m, m in [2/3, 4/3) (subnormals scaled up first) by integer operations on the
// bits, r = m - 1 exact, log x = k ln2 + r + r^2 P(r), P of degree 7 (a fit of relative error
// below 2^-25 over the interval) by Estrin's scheme: no division, a short dependency chain.
// k ln2 in two parts (the high one has 16 bits: k ln2hi is exact).
GF_HD float log(float x) {
  bool sub = x < 1.17549435e-38f;  // also 0 and negatives, fixed below
  float xs = sub ? x * 8388608.0f : x;  // 2^23
  // (unsigned: for x < 0 the bits wrap; that result is replaced below)
  int ix = int(unsigned(detail::float_to_bits(xs)) - 0x3f2aaaabu);  // 2/3
  float k = float((ix >> 23) - (sub ? 23 : 0));
  float r = detail::bits_to_float((ix & 0x007fffff) + 0x3f2aaaab) - 1.0f;
  float r2 = r * r, r4 = r2 * r2;
  float p01 = 0.33333197f * r - 0.49999937f;
  float p23 = 0.20011163f * r - 0.2500782f;
  float p45 = 0.13995898f * r - 0.16415943f;
  float p67 = 0.14025919f * r - 0.15388626f;
  float P = (p01 + r2 * p23) + r4 * (p45 + r2 * p67);
  float y = (k * 0.693145751953125f + r) + (r2 * P + k * 1.428606765330187e-06f);
  // one select for 0, negatives, +inf and NaN (each its own value)
  float inf = detail::inf_f();
  float special = x == 0.0f ? -inf : (x < 0.0f ? inf - inf : x);
  return ((x > 0.0f) & (x < inf)) ? y : special;
}
// double: x = 2^k m, m in [sqrt(1/2), sqrt 2) (subnormals scaled up first), f = m - 1,
// log(1 + f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f), R the odd-series
// remainder as a minimax polynomial (FreeBSD's e_log.c coefficients, error below 2^-58),
// k ln2 added in two parts.
namespace detail {
// General = false, for callers whose x is a normal positive finite number (log1p_unit's 1 + e):
// the same arithmetic without the subnormal scaling and the special-value select (with them GCC
// 12 did not vectorise softplus's float64 loop: it ran scalar, 6x slower).
template <bool General> GF_HD double log_(double x) {
  bool sub = General && x < 2.2250738585072014e-308;
  double xs = General ? (sub ? x * 18014398509481984.0 : x) : x;  // 2^54
  long long ix = (long long)((unsigned long long)detail::double_to_bits(xs) - 0x3fe6a09e00000000ull);
  long long k = General ? (ix >> 52) - (sub ? 54 : 0) : ix >> 52;
  double f = detail::bits_to_double((ix & 0x000fffffffffffffll) + 0x3fe6a09e00000000ll) - 1.0;
  double s = f / (2.0 + f);
  double z = s * s, w = z * z;
  double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  double t2 = z * (6.666666666666735130e-01 +
                   w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  double R = t2 + t1, hfsq = 0.5 * f * f;
  // k to double through the 1.5 2^52 trick (no 64-bit integer conversion instruction needed)
  double dk = detail::bits_to_double(k + 0x4338000000000000ll) - 6755399441055744.0;
  double y = s * (hfsq + R) + dk * 1.90821492927058770002e-10 - hfsq + f + dk * 6.93147180369123816490e-01;
  if (!General) return y;
  double inf = detail::inf_d();
  double special = x == 0.0 ? -inf : (x < 0.0 ? inf - inf : x);
  return ((x > 0.0) & (x < inf)) ? y : special;
}
}  // namespace detail
GF_HD double log(double x) { return detail::log_<true>(x); }

// ---- float pow ---------------------------------------------------------------------------------
// x^p for float x and p as 2^(p log2|x|) in double, each part only as accurate as a float result
// needs (|p log2 x| <= 150 wherever the result is a nonzero finite float, so a relative error
// of 2^-37 in log2|x| is 2^-30 in the result): |x| = 2^k m, m in [sqrt(1/2), sqrt 2) by integer
// operations on the float's bits (subnormals scaled up first), log2 m = 2 atanh(s) / ln2 with
// s = (m - 1) / (m + 1), |s| < 0.172, as s P(s^2), then 2^(n + r), |r| <= 1/2, by a polynomial
// of degree 6 (2^-28.5) and 2^n into the exponent field: within 0.6 ulp of x^p once rounded to
// float. Returned in double for formulas that multiply it further before rounding.
//
// C's special cases go into the operands, in float (one vector for 16 lanes where double takes
// two): k is -inf for x = 0 and inf or NaN for those x (p log2|x| is then +-inf or NaN, which
// the last steps carry through), p is 0 where the result is 1, and the sign of x and the NaN of a
// negative x to a non-integer p are a factor of +-1 or NaN applied last. p log2|x| is clamped to
// +-1000, where 2^n is still a normal double, and inf is selected beyond.
namespace detail {
// |x^p| (NaN where x^p is), and `sign` the factor of +-1 or NaN that makes it x^p
GF_HD double pow_unsigned_in_double(float x, float p, float& sign) {
  float ax = abs(x), ap = abs(p), inf = detail::inf_f();
  // p integer (+-inf counts as even), odd: |p| / 2 not an integer (adding 2^23 rounds to an
  // integer below 2^23). Compares combined by & and |, and every condition depends on x (see pow)
  const float two23 = 8388608.0f, hp = 0.5f * ap;
  bool p_int = (ap >= two23) | ((ap + two23) - two23 == ap);
  bool p_odd = p_int & (ap < 2.0f * two23) & ((hp + two23) - two23 != hp);
  bool one = (x == 1.0f) | ((ax == 1.0f) & (ap == inf));  // 1^p (even NaN) and (-1)^+-inf
  bool zero_p = p == 0.0f;                                 // x^0 = 1 (even NaN)
  float pe = (one | zero_p) ? 0.0f : p;
  sign = (p_odd & (detail::float_to_bits(x) < 0)) ? -1.0f : 1.0f;  // -0 included
  sign = ((x < 0.0f) & (x > -inf) & !p_int) ? inf - inf : sign;
  bool sub = ax < 1.17549435e-38f;
  float xs = sub ? ax * 8388608.0f : ax;  // 2^23
  int ix = detail::float_to_bits(xs) - 0x3f3504f3;  // sqrt(1/2)
  float k = float((ix >> 23) - (sub ? 23 : 0));
  k = ((ax < inf) | zero_p) ? k : ax;               // inf, NaN
  k = ((ax == 0.0f) & !zero_p) ? -inf : k;
  double f = double(detail::bits_to_float((ix & 0x007fffff) + 0x3f3504f3) - 1.0f);  // exact
  double s = f / (2.0 + f), z = s * s;
  double P = 0.34072518908073873;  // (fit over |s| < 0.172, relative error 2^-37)
  P = P * z + 0.4116729927496582;
  P = P * z + 0.5770835802206937;
  P = P * z + 0.9617966733679659;
  P = P * z + 2.8853900817900624;
  double e = double(pe) * (s * P + double(k));
  bool over = e > 1000.0;
  e = e < -1000.0 ? -1000.0 : e;  // (NaN passes; beyond 1000 the result is replaced)
  const double shift = 6755399441055744.0;  // 1.5 2^52: e + shift rounds e to an integer
  double tn = e + shift, r = e - (tn - shift);
  double q = 0.00015469731979692066;  // (fit over |r| <= 1/2, relative error 2^-28.5)
  q = q * r + 0.001340043216526345;
  q = q * r + 0.009618025602946268;
  q = q * r + 0.05550327214209672;
  q = q * r + 0.24022651213595056;
  q = q * r + 0.6931472067106186;
  q = q * r + 0.9999999999595487;
  double m = q * detail::pow2i(detail::double_to_bits(tn) - 0x4338000000000000ll);
  return over ? detail::inf_d() : m;
}
}  // namespace detail
GF_HD double pow_in_double(float x, float p) {
  float sign;
  double m = detail::pow_unsigned_in_double(x, p, sign);
  return m * double(sign);
}
GF_HD float pow(float x, float p) {  // (the sign applied in float: one vector for 16 lanes)
  float sign;
  return float(detail::pow_unsigned_in_double(x, p, sign)) * sign;
}

// ---- x^p for the exponents that have an exact or correctly rounded form -------------------------
// (picked by the caller for a scalar p; C's special values kept: sqrt(-0) is -0 and sqrt(-inf)
// NaN, where pow gives +0 and +inf). x^-2 as (1/x)^2: 1/(x x) would round x x twice where it is
// subnormal. The double forms are within 2 roundings; the float kernels call x^3 and x^-2 in
// double (exact or rounded once there).
template <class T> GF_HD T pow_half(T x) {
  T inf = detail::inf_(x);
  return x == -inf ? inf : abs(sqrt(x));
}
template <class T> GF_HD T pow_mhalf(T x) { return T(1) / pow_half(x); }
template <class T> GF_HD T pow_m1(T x) { return T(1) / x; }
template <class T> GF_HD T pow_3(T x) { return x * x * x; }
template <class T> GF_HD T pow_m2(T x) {
  T r = T(1) / x;
  return r * r;
}

// ---- double pow --------------------------------------------------------------------------------
// x^y = e^(y ln|x|), with ln|x| in two parts and y ln|x| = p_h + p_l accurate to about 2^-60
// relative (error-free products by FMA), then e^(p_h + p_l) by exp's reduction (p_h - n ln2_hi
// exact) and polynomial, and its split scale (subnormal results rounded once). Relative error
// below 7e-16 (|y ln x| near 708, where the 2^-60 counts most). C's special cases as a few
// selects (see pow), so that the loop vectorises; pow_fast is the same without them.
namespace detail {
struct LogHL {
  double hi, lo;
};
// ln of a positive finite ax (finite garbage for 0, inf and NaN): ax = 2^k a, a in
// [sqrt(3)/2, sqrt 3) (subnormals scaled up first), ln a = ln b + 2 atanh(s),
// s = (a - b) / (a + b) with b = 1 below sqrt(3/2) and b = 1.5 above, so |s| <= 0.102:
// atanh(s) = s + s^3 / 3 + s^5 Q(s^2) (Q a fit, relative error of the sum below 2^-62). All but
// s is under 2^-8 s and rounded in double (2^-60 of s, the error that counts); s is s_h + s_l
// (the division's residual by FMA), and the sums with k ln2 and ln 1.5 are carried as high and
// low parts (the high parts on a 2^-42 grid below 2^11: k ln2_hi + ln1.5_hi is exact).
// (Subnormal: false for callers that pass only normal ax: the same arithmetic less the scaling.)
template <bool Subnormal = true> GF_HD LogHL log_hl(double ax) {
  bool sub = Subnormal && ax < 2.2250738585072014e-308;
  double xs = Subnormal ? (sub ? ax * 18014398509481984.0 : ax) : ax;  // 2^54
  const long long c0 = 0x3febb67ae8584caall;        // sqrt(3)/2
  long long ix = (long long)((unsigned long long)double_to_bits(xs) - (unsigned long long)c0);
  long long k = Subnormal ? (ix >> 52) - (sub ? 54 : 0) : ix >> 52;
  double a = bits_to_double((ix & 0x000fffffffffffffll) + c0);
  bool hi_b = a > 1.2247448713915890;  // sqrt(3/2)
  double b = hi_b ? 1.5 : 1.0;
  double lb_h = hi_b ? 0.40546510810827385 : 0.0, lb_l = hi_b ? -1.094708713660664e-13 : 0.0;
  double u = a - b;                  // exact (Sterbenz)
  double d_h = b + a, d_l = a - (d_h - b);  // a + b exactly (b's exponent >= a's)
  double v = 1.0 / d_h;
  double s_h = u * v;
  double s_l = (fma(-s_h, d_h, u) - s_h * d_l) * v;
  double z = s_h * s_h;
  double z2 = z * z;  // (Estrin's scheme: the loop is bound by its dependency chain)
  double Q = (0.1999999999999999 + z * 0.14285714285736664) +
             z2 * ((0.11111111085285473 + z * 0.0909091998652706) +
                   z2 * (0.07690233171756501 + z * 0.06848127655170308));
  // atanh(s) - s_h: s_l (1 + s^2) (its share of s^3 / 3) + t (1/3 + z Q), t = s_h z, with 1/3 in
  // two parts and t times its high part fused into the sum (rounding 1/3 + z Q and the product
  // separately cost 2^-59 of s: pow's error at |y ln x| near 708 was 9e-16, now 6.8e-16)
  double t = s_h * z;
  const double third_h = 0.33333333333333331, third_l = 1.850371707708594e-17;
  double tail = fma(t, third_h, fma(t * z, Q, fma(s_l, z, s_l) + t * third_l));
  double S_h = s_h + tail, S_l = tail - (S_h - s_h);  // exactly s_h + tail
  // k to double through the 1.5 2^52 trick (no 64-bit integer conversion instruction needed)
  double kd = bits_to_double(k + 0x4338000000000000ll) - 6755399441055744.0;
  const double ln2_hi = 0.6931471805598903, ln2_lo = 5.497923018708371e-14;
  double K_h = fma(kd, ln2_hi, lb_h), K_l = fma(kd, ln2_lo, lb_l);
  LogHL o;
  o.hi = fma(2.0, S_h, K_h);  // (|K_h| >= 0.28 > |2 S_h| unless K_h = 0)
  o.lo = fma(2.0, S_h, K_h - o.hi) + fma(2.0, S_l, K_l);
  return o;
}

// y ln x = p_h + p_l reduced by ln2 for e^(p_h + p_l) (p_h - n ln2_hi is exact: n ln2_hi has 53
// bits, and Sterbenz)
GF_HD RedD pow_reduce(double y, LogHL l, bool clamp) {
  double p_h = y * l.hi;
  double p_l = fma(y, l.hi, -p_h) + y * l.lo;
  if (clamp) {
    // |y ln x| > 760 (+-inf included): inf or 0 whatever the rest; the clamp keeps the scale's
    // exponents in range (NaN passes)
    bool big = p_h > 760.0, small = p_h < -760.0;
    p_h = big ? 760.0 : (small ? -760.0 : p_h);
    p_l = (big | small) ? 0.0 : p_l;
  }
  const double shift = 6755399441055744.0;  // 1.5 2^52: adding it rounds to an integer
  double tn = fma(p_h, 1.4426950408889634, shift), n = tn - shift;
  RedD red;
  red.r = fma(-n, 0.6931471805598903, p_h) + fma(-n, 5.497923018708371e-14, p_l);
  red.k = double_to_bits(tn) - 0x4338000000000000ll;
  return red;
}
}  // namespace detail

// C's special cases: y's parity from d = |y| - (|y| rounded to an even integer by adding 2^53;
// from 2^53 on, |y| and the sum are even, so |d| is 0 or >= 2; NaN for y = +-inf, which counts
// as even): |d| = 1 for odd y, 0 < |d| < 1 for non-integer y (four operations where separate
// integer and odd tests took nine). ln|x| is -inf at 0 and inf or NaN at those x (p_h is then +-inf or
// NaN, which the clamp and exp carry through), and 1^y, x^0 (even NaN), (-1)^+-inf and the sign
// of x or the NaN of a negative x to a non-integer y are selects at the end. Compares combined
// by & and |, not && and ||, and every select's condition depends on x: GCC does not vectorise
// a select between masks (what short-circuiting leaves) nor one on a mask of the loop-invariant
// y alone.
GF_HD double pow(double x, double y) {
  double ax = abs(x), inf = detail::inf_d();
  const double two53 = 9007199254740992.0;
  double ay = abs(y), ad = abs(ay - ((ay + two53) - two53));
  bool fin = ax < inf;
  bool neg_odd = (ad == 1.0) & (detail::double_to_bits(x) < 0);  // -0 included
  bool nan = (ad > 0.0) & (ad < 1.0) & (x < 0.0) & fin;         // -0 and -inf excluded
  bool one = (x == 1.0) | (y == 0.0) | ((ax == 1.0) & (ay == inf));  // (-1)^+-inf too
  detail::LogHL l = detail::log_hl(ax);
  l.hi = ax == 0.0 ? -inf : l.hi;
  l.hi = fin ? l.hi : ax;
  detail::RedD red = detail::pow_reduce(y, l, true);
  double sign = neg_odd ? -1.0 : 1.0;
  sign = nan ? inf - inf : sign;
  return one ? 1.0 : detail::exp_reduced(red) * sign;
}
// pow's arithmetic where none of its special cases applies: x a normal positive finite number
// and |y ln x| < 708, so that no select changes anything and e^(p_h + p_l) is normal (its scale
// 2^n one exact product); and x = +0 (a ReLU's zeros), whose results are one select. Elsewhere
// `in_range` is false (NaN and inf too). Bitwise pow(x, y) where it is true, about a quarter
// fewer operations: loops run it over a block and redo the block with pow when any lane was out
// of range (kernels/unary.h), so results never depend on the neighbours. (Zeros = false: x the
// same in every lane, where GCC would not vectorise the zero's selects: +0 is then out of range.)
template <bool Zeros = true> GF_HD double pow_fast(double x, double y, bool& in_range) {
  detail::LogHL l = detail::log_hl<false>(x);
  detail::RedD red = detail::pow_reduce(y, l, false);
  double inf = detail::inf_d();
  bool zero = Zeros && detail::double_to_bits(x) == 0;  // +0: +0, inf or 1 (NaN for a NaN y)
  in_range = ((x >= 2.2250738585072014e-308) & (x < inf) & (abs(y * l.hi) < 708.0)) | zero;
  double v = detail::exp_poly(red.r) * detail::pow2i(red.k);
  if (!Zeros) return v;
  v = zero ? y + 1.0 : v;  // (each select's condition depends on x: see pow)
  v = (zero & (y > 0.0)) ? 0.0 : v;
  return (zero & (y < 0.0)) ? inf : v;
}

// ---- tanh --------------------------------------------------------------------------------------
// tanh|x| = -m / (2 + m), m = expm1(-2|x|) in (-1, 0]: no cancellation anywhere (m is accurate
// near 0, and 2 + m >= 1), then the sign of x (so -0 stays -0).
template <class T> GF_HD T tanh_of(T x) {
  T m = expm1(T(-2) * abs(x));
  return detail::copysign_(-m / (T(2) + m), x);
}
// float: the same form with expm1 of -2|x| <= 0 inlined and pared down to that range: one clamp
// (beyond -18, m = -1 to a float and tanh = 1), no tiny-argument select (for k = 0 the result
// is q, and q = r for tiny r), a fitted polynomial (relative error of e^r - 1 below 6e-10 over
// |r| <= ln2/2, one term fewer than expm1's Taylor), and -m / (2 + m) as m / (-2 - m).
GF_HD float tanh(float x) {
  float a = -2.0f * abs(x);
  a = a < -18.0f ? -18.0f : a;  // (NaN passes)
  detail::RedF red = detail::reduce_ln2(a);
  float r = red.r;
  float p = 0.00019899285689461976f;
  p = p * r + 0.0013933650916442275f;
  p = p * r + 0.0083332983776927f;
  p = p * r + 0.04166646674275398f;
  p = p * r + 0.1666666716337204f;
  p = p * r + 0.5f;
  float q = r + r * r * p;
  float t = detail::pow2i(red.k);  // (2^k - 1 is exact down to k = -24, and m = -1 below)
  float m = t * q + (t - 1.0f);
  // |.| with the sign of x (m = +0 at x = 0 makes the quotient -0): one bitwise select
  int y = detail::float_to_bits(m / (-2.0f - m)), ix = detail::float_to_bits(x);
  return detail::bits_to_float(ix ^ ((ix ^ y) & 0x7fffffff));
}
GF_HD double tanh(double x) { return tanh_of(x); }

// ---- the standard normal upper tail ------------------------------------------------------------
// Q(a) = Phi(-a) for a >= 0 (NaN gives Q(38.6)), double: e^(-a^2/2) R(u), u = 5 / (5 + a), R a
// polynomial of degree 24 (weighted least-squares fit over a in [0, 38.6]: beyond, Q is 0 to a
// double), a^2/2 in two parts so that its rounding does not grow with a^2, and R corrected for the
// rounding of u (which R amplifies up to 4 times, near a = 0). Relative error below 7e-16 (the
// GELU's 5.4e-16). Evaluated as two halves (two dependency chains: the loop was bound by one
// chain of 24 steps; 0.86x the time).
// R and the exponential are separate functions for the GELU derivative, which needs both.
GF_HD double normal_tail_scaled(double a) {  // R = Q(a) e^(a^2/2), a in [0, 38.6]
  double s = 5.0 + a, big = a > 5.0 ? a : 5.0, small = a > 5.0 ? 5.0 : a;
  double se = (big - s) + small;  // 5 + a = s + se exactly
  double u = 5.0 / s;
  // R(u) = lo(u) + u^12 hv(u - 1), each by Horner's scheme: hv is the fit's part of degree >= 12
  // expanded around u = 1, where its terms are small (none cancels). u - 1 is exact for u >= 1/2;
  // below, its rounding is scaled by u^12 < 2.5e-4.
  double lo = -0.004156354456481102;
  lo = lo * u + 0.00682056279701225;
  lo = lo * u + 0.015602460398082376;
  lo = lo * u + 0.025430602696803747;
  lo = lo * u + 0.03763627446180742;
  lo = lo * u + 0.04977816059384874;
  lo = lo * u + 0.0610235791377301;
  lo = lo * u + 0.07021369996035895;
  lo = lo * u + 0.07659692841504746;
  lo = lo * u + 0.07978845553825918;
  lo = lo * u + 0.07978845609730761;
  lo = lo * u - 2.4691169259098877e-13;
  const double v = u - 1.0;
  double hv = 0.0005532403195526308;
  hv = hv * v - 0.0005519980482957339;
  hv = hv * v + 0.0005623769089924356;
  hv = hv * v - 0.00036968740252118744;
  hv = hv * v + 0.000805373346796228;
  hv = hv * v - 0.0020573842540472587;
  hv = hv * v + 0.0030696506702819295;
  hv = hv * v - 0.0024593147650645063;
  hv = hv * v + 0.0013024946177445755;
  hv = hv * v - 0.002981753101655603;
  hv = hv * v + 0.007021811104059117;
  hv = hv * v - 0.006619117169279152;
  hv = hv * v + 0.0014771743604701792;  // (1e-16 off the fit's: R(1) = 1/2 exactly, so gelu'(0) = 1/2)
  double u2 = u * u, u4 = u2 * u2, um = (u4 * u4) * u4;
  double p = fma(um, hv, lo);
  // R(u) for the exact u* = u + d, d = (5 - u (s + se)) / (s + se): R(u*) = R(u) + R'(u) d with
  // R'(u) = 5 (phi(0) - a R) / u^2 (from R' = a R - phi(0) in a), d / u^2 = (5 - u (s + se)) / (5 u)
  // (the factor of R' apart, computed beside the polynomial: two operations after it, not five)
  double d = (fma(-u, s, 5.0) - u * se) * (s * 0.2);
  return fma(fma(-a, p, 0.3989422804014327), d, p);
}
// e^(-a^2/2), a^2 in two parts. InRange: a <= 38.6 (normal_upper_tail clamps it there), where
// exp's own clamp cannot apply: without it, one select of a constant fewer (see clamp_abs_bits).
template <bool InRange = false> GF_HD double normal_density_scaled(double a) {
  double h = a * a, l = -0.5 * fma(a, a, -h);
  return InRange ? exp_hl_in_range(-0.5 * h, l) : exp_hl(-0.5 * h, l);
}
GF_HD double normal_upper_tail(double a) {  // (NaN gives Q(38.6): callers carry NaN through x)
  a = detail::clamp_abs_bits(a, 38.6);
  return normal_tail_scaled(a) * normal_density_scaled<true>(a);  // in this order GCC's loop is 0.93x the other's
}

}  // namespace math
}  // namespace gf
