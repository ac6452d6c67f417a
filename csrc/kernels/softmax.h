// softmax / log_softmax kernels and their backward passes, line by line (row mode) and W lines
// at once (column mode), and the per-row kernels of the fused cross-entropy backward (the
// layout notes are in softmax.cpp).
//
// A family header of the dispatched kernels: no include guard, code in namespace
// gf::GF_KERNEL_NS (see table.h).

#define GF_SOFTMAX_TABLE                                   \
  GF_KERNEL(softmax_line, softmax_line<T>)                 \
  GF_KERNEL(log_softmax_line, log_softmax_line<T>)         \
  GF_KERNEL(softmax_bwd_line, softmax_bwd_line<T>)         \
  GF_KERNEL(log_softmax_bwd_line, log_softmax_bwd_line<T>) \
  GF_KERNEL(softmax_cols, softmax_cols<T>)                 \
  GF_KERNEL(softmax_bwd_cols, softmax_bwd_cols<T>)         \
  GF_KERNEL(ce_bwd_exp, ce_bwd_exp<T>)                     \
  GF_KERNEL(ce_bwd_scale, ce_bwd_scale<T>)

namespace gf {
namespace GF_KERNEL_NS {

// x - max <= 0 (or NaN): exp_nonpos (gf_math.h), one clamp and one scale fewer than exp; the
// backward passes and the cross-entropy take exponents from the caller, and keep exp.

// ---- row mode (strides in elements) ----------------------------------------------------------------
template <class T>
void softmax_line(T* o, index_t so, const T* x, index_t sx, index_t n) {
  const T m = extreme_line<T, true>(x, n, sx);
  double s = 0;
  if (so == 1 && sx == 1) {
#pragma omp simd reduction(+ : s)
    for (index_t i = 0; i < n; ++i) {
      T e = math::exp_nonpos(x[i] - m);
      o[i] = e;
      s += double(e);
    }
    const T inv = T(1.0 / s);
#pragma omp simd
    for (index_t i = 0; i < n; ++i) o[i] *= inv;
  } else {
#pragma omp simd reduction(+ : s)
    for (index_t i = 0; i < n; ++i) {
      T e = math::exp_nonpos(x[i * sx] - m);
      o[i * so] = e;
      s += double(e);
    }
    const T inv = T(1.0 / s);
#pragma omp simd
    for (index_t i = 0; i < n; ++i) o[i * so] *= inv;
  }
}

template <class T>
void log_softmax_line(T* o, index_t so, const T* x, index_t sx, index_t n) {
  const T m = extreme_line<T, true>(x, n, sx);
  // (x - m) - log(s): x - m is exact near the max, so the result has one rounding there
  const T c = T(math::log(sumexp_line<T>(x, n, sx, m)));
  if (so == 1 && sx == 1) {
#pragma omp simd
    for (index_t i = 0; i < n; ++i) o[i] = (x[i] - m) - c;
  } else {
#pragma omp simd
    for (index_t i = 0; i < n; ++i) o[i * so] = (x[i * sx] - m) - c;
  }
}

// dx = y * (g - sum(g * y))
template <class T>
void softmax_bwd_line(T* o, index_t so, const T* y, index_t sy, const T* g, index_t sg,
                      index_t n) {
  double d = 0;
#pragma omp simd reduction(+ : d)
  for (index_t i = 0; i < n; ++i) d += double(g[i * sg]) * double(y[i * sy]);
  const T dt = T(d);
#pragma omp simd
  for (index_t i = 0; i < n; ++i) o[i * so] = y[i * sy] * (g[i * sg] - dt);
}

// dx = g - exp(y) * sum(g)
template <class T>
void log_softmax_bwd_line(T* o, index_t so, const T* y, index_t sy, const T* g,
                          index_t sg, index_t n) {
  double d = 0;
#pragma omp simd reduction(+ : d)
  for (index_t i = 0; i < n; ++i) d += double(g[i * sg]);
  const T dt = T(d);
#pragma omp simd
  for (index_t i = 0; i < n; ++i) o[i * so] = g[i * sg] - math::exp(y[i * sy]) * dt;
}

// ---- column mode: W lines at once; c* = stride between lines, a* = stride along the axis -------
template <class T>
void softmax_cols(bool log, T* o, index_t co, index_t ao, const T* x, index_t cx,
                  index_t ax, index_t n, index_t W) {
  T m[kSoftmaxColBlock];
  double s[kSoftmaxColBlock];
#pragma omp simd
  for (index_t j = 0; j < W; ++j) m[j] = -std::numeric_limits<T>::infinity(), s[j] = 0;
  for (index_t r = 0; r < n; ++r) {
    const T* xr = x + r * ax;
#pragma omp simd
    for (index_t j = 0; j < W; ++j) m[j] = nanmax(m[j], xr[j * cx]);
  }
  if (log) {
    for (index_t r = 0; r < n; ++r) {
      const T* xr = x + r * ax;
#pragma omp simd
      for (index_t j = 0; j < W; ++j) s[j] += double(math::exp_nonpos(xr[j * cx] - m[j]));
    }
    T c[kSoftmaxColBlock];
    for (index_t j = 0; j < W; ++j) c[j] = T(math::log(s[j]));
    for (index_t r = 0; r < n; ++r) {
      const T* xr = x + r * ax;
      T* orow = o + r * ao;
#pragma omp simd
      for (index_t j = 0; j < W; ++j) orow[j * co] = (xr[j * cx] - m[j]) - c[j];
    }
    return;
  }
  for (index_t r = 0; r < n; ++r) {
    const T* xr = x + r * ax;
    T* orow = o + r * ao;
#pragma omp simd
    for (index_t j = 0; j < W; ++j) {
      T e = math::exp_nonpos(xr[j * cx] - m[j]);
      orow[j * co] = e;
      s[j] += double(e);
    }
  }
  T inv[kSoftmaxColBlock];
#pragma omp simd
  for (index_t j = 0; j < W; ++j) inv[j] = T(1.0 / s[j]);
  for (index_t r = 0; r < n; ++r) {
    T* orow = o + r * ao;
#pragma omp simd
    for (index_t j = 0; j < W; ++j) orow[j * co] *= inv[j];
  }
}

template <class T>
void softmax_bwd_cols(bool log, T* o, index_t co, index_t ao, const T* y, index_t cy,
                      index_t ay, const T* g, index_t cg, index_t ag, index_t n,
                      index_t W) {
  double d[kSoftmaxColBlock];
#pragma omp simd
  for (index_t j = 0; j < W; ++j) d[j] = 0;
  for (index_t r = 0; r < n; ++r) {
    const T* yr = y + r * ay;
    const T* gr = g + r * ag;
    if (log) {
#pragma omp simd
      for (index_t j = 0; j < W; ++j) d[j] += double(gr[j * cg]);
    } else {
#pragma omp simd
      for (index_t j = 0; j < W; ++j) d[j] += double(gr[j * cg]) * double(yr[j * cy]);
    }
  }
  T dt[kSoftmaxColBlock];
  for (index_t j = 0; j < W; ++j) dt[j] = T(d[j]);
  for (index_t r = 0; r < n; ++r) {
    const T* yr = y + r * ay;
    const T* gr = g + r * ag;
    T* orow = o + r * ao;
    if (log) {
#pragma omp simd
      for (index_t j = 0; j < W; ++j) orow[j * co] = gr[j * cg] - math::exp(yr[j * cy]) * dt[j];
    } else {
#pragma omp simd
      for (index_t j = 0; j < W; ++j) orow[j * co] = yr[j * cy] * (gr[j * cg] - dt[j]);
    }
  }
}

// Writes exp(x - l) for one row and returns its sum (1 up to the rounding of l).
template <class T>
double ce_bwd_exp(T* o, const T* x, index_t cs, index_t C, T l) {
  double s = 0;
  if (cs == 1) {
#pragma omp simd reduction(+ : s)
    for (index_t j = 0; j < C; ++j) {
      T e = math::exp(x[j] - l);
      o[j] = e;
      s += double(e);
    }
  } else {
#pragma omp simd reduction(+ : s)
    for (index_t j = 0; j < C; ++j) {
      T e = math::exp(x[j * cs] - l);
      o[j] = e;
      s += double(e);
    }
  }
  return s;
}

template <class T>
void ce_bwd_scale(T* o, index_t C, T f) {
#pragma omp simd
  for (index_t j = 0; j < C; ++j) o[j] *= f;
}

}  // namespace GF_KERNEL_NS
}  // namespace gf
