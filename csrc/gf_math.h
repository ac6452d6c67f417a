// The math of every activation and its derivative, written once.
//
// This header is included by the C++ CPU kernels and pasted verbatim into the preamble of the
// CuPy (NVRTC) kernels, so the formulas the CPU tests check are the ones the GPU runs. Keep it
// free of anything but inline arithmetic on a scalar T: no includes under NVRTC, no I/O, no
// globals.
#pragma once

#if defined(__CUDACC__)
#define GF_HD __host__ __device__ __forceinline__
#else
#define GF_HD inline
#include <cmath>
#endif

namespace gf {
namespace math {

#if !defined(__CUDACC__)
using std::abs;
using std::erf;
using std::exp;
using std::log;
using std::log1p;
using std::sqrt;
using std::tanh;
#endif

// Logistic sigmoid, stable for any x: exp only ever sees -|x|, so it never overflows.
template <class T> GF_HD T sigmoid(T x) {
  T e = exp(-abs(x));
  T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}
// Derivatives take what the forward saved (here the output y) and the incoming gradient g.
template <class T> GF_HD T sigmoid_grad(T y, T g) { return g * y * (T(1) - y); }

template <class T> GF_HD T tanh_(T x) { return tanh(x); }
template <class T> GF_HD T tanh_grad(T y, T g) { return g * (T(1) - y * y); }

// `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) so that NaN propagates, as in numpy and PyTorch.
template <class T> GF_HD T relu(T x) { return x < T(0) ? T(0) : x; }
template <class T> GF_HD T relu_grad(T y, T g) { return y > T(0) ? g : T(0); }

template <class T> GF_HD T leaky_relu(T x, T slope) { return x > T(0) ? x : x * slope; }
template <class T> GF_HD T leaky_relu_grad(T x, T g, T slope) { return x > T(0) ? g : g * slope; }

// Exact GELU: x * Phi(x), Phi the standard normal CDF.
template <class T> GF_HD T gelu(T x) {
  return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
}
// d/dx [x Phi(x)] = Phi(x) + x phi(x).
template <class T> GF_HD T gelu_grad(T x, T g) {
  T cdf = T(0.5) * (T(1) + erf(x * T(0.70710678118654752440)));
  T pdf = T(0.39894228040143267794) * exp(T(-0.5) * x * x);
  return g * (cdf + x * pdf);
}

// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <class T> GF_HD T gelu_tanh(T x) {
  T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
  return T(0.5) * x * (T(1) + tanh(u));
}
template <class T> GF_HD T gelu_tanh_grad(T x, T g) {
  T x2 = x * x;
  T u = T(0.79788456080286535588) * (x + T(0.044715) * x2 * x);
  T t = tanh(u);
  T du = T(0.79788456080286535588) * (T(1) + T(3) * T(0.044715) * x2);
  return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
}

// log(1 + e) for e in [0, 1], the range softplus needs. float: 2 atanh(s) with s = e / (2 + e)
// in [0, 1/3], an odd polynomial (least-squares fit; within 2 ulp of log1p over all of [0, 1]):
// no exponent handling and no libm call, a quarter faster than libmvec's logf plus a
// correction. double: log(u) plus the rounding error of u = 1 + e over u (libmvec's vector log
// costs far less than its log1p).
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
  return log(u) + (e - (u - 1.0)) / u;
}

// softplus(x) = log(1 + exp(beta x)) / beta, linear once beta x > threshold (as PyTorch).
// Written as max(z, 0) + log1p(exp(-|z|)) so that it never overflows, whatever the threshold.
// 1 / beta is hoisted out of loops.
template <class T> GF_HD T softplus(T x, T beta, T threshold) {
  T z = beta * x;
  T sp = (z > T(0) ? z : T(0)) + log1p_unit(exp(-abs(z)));
  return z > threshold ? x : sp * (T(1) / beta);
}
template <class T> GF_HD T softplus_grad(T x, T g, T beta, T threshold) {
  T z = beta * x;
  return z > threshold ? g : g * sigmoid(z);
}

}  // namespace math
}  // namespace gf
