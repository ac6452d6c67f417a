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

// softplus(x) = log(1 + exp(beta x)) / beta, linear once beta x > threshold (as PyTorch).
// Written as max(z, 0) + log1p(exp(-|z|)) so that it never overflows, whatever the threshold.
// log1p(e) is taken as log(u) plus the rounding error of u = 1 + e over u (within an ulp or
// two): libmvec's vector logf costs far less than its log1pf. 1 / beta is hoisted out of loops.
template <class T> GF_HD T softplus(T x, T beta, T threshold) {
  T z = beta * x;
  T e = exp(-abs(z));
  T u = T(1) + e;
  T sp = (z > T(0) ? z : T(0)) + (log(u) + (e - (u - T(1))) / u);
  return z > threshold ? x : sp * (T(1) / beta);
}
template <class T> GF_HD T softplus_grad(T x, T g, T beta, T threshold) {
  T z = beta * x;
  return z > threshold ? g : g * sigmoid(z);
}

}  // namespace math
}  // namespace gf
