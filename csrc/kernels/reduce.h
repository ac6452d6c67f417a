// Reduction kernels: sums (in double, multi-accumulator), max/min and the logsumexp state
// along one strided line, over four unit-stride lines in lockstep, and over the columns of a
// set of rows (the layout and accuracy notes are in reduce.cpp).
//
// A family header of the dispatched kernels: no include guard, code in namespace
// gf::GF_KERNEL_NS (see table.h).

#define GF_REDUCE_TABLE                                     \
  GF_KERNEL(sum_line, sum_line<T>)                          \
  GF_KERNEL(sum_x4, lockstep_x4<T, SumLanes<T>>)            \
  GF_KERNEL(max_x4, lockstep_x4<T, ExtremeLanes<T, true>>)  \
  GF_KERNEL(min_x4, lockstep_x4<T, ExtremeLanes<T, false>>) \
  GF_KERNEL(sum_cols, sum_cols<T>)                          \
  GF_KERNEL(max_cols, extreme_cols<T, true>)                \
  GF_KERNEL(min_cols, extreme_cols<T, false>)               \
  GF_KERNEL(lse_cols, lse_cols<T>)

namespace gf {
namespace GF_KERNEL_NS {

constexpr int kLanes = 32;

// ---- row kernels: one strided line (stride in elements) ---------------------------------------
// float32, unit stride, n <= kSumBlock: eight 16-float vector accumulators (enough independent
// add chains to cover the add latency on both ports, no per-element widening to double), so at
// most kSumBlock / 128 = 32 float additions per lane before the lanes are summed in double.
typedef float f32x16 __attribute__((vector_size(64)));

inline double sum_block_f32(const float* p, index_t n) {
  constexpr int V = 16, U = 8;
  f32x16 a[U] = {};
  index_t i = 0;
  for (; i + V * U <= n; i += V * U) {
    for (int u = 0; u < U; ++u) {
      f32x16 v;
      __builtin_memcpy(&v, p + i + V * u, sizeof v);
      a[u] += v;
    }
  }
  double acc[V] = {};
  for (int u = 0; u < U; ++u)
    for (int j = 0; j < V; ++j) acc[j] += double(a[u][j]);
  double t = 0;
  for (; i < n; ++i) t += double(p[i]);
  for (int w = V / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0] + t;
}

template <class T>
double sum_line(const T* p, index_t n, index_t s) {
  if constexpr (std::is_same<T, float>::value)
    if (s == 1) return sum_block_f32(p, n);
  double acc[kLanes] = {};
  index_t i = 0;
  if (s == 1) {
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) acc[j] += double(p[i + j]);
    }
  } else {
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) acc[j] += double(p[(i + j) * s]);
    }
  }
  double t = 0;
  for (; i < n; ++i) t += double(p[i * s]);
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0] + t;
}

// ---- four unit-stride lines in lockstep (why: see reduce.cpp) ---------------------------------
// What the four lines fold with: each lane's step, and the fold of the lanes and the tail into
// one result per line (a float32 sum folds in double).
template <class T>
struct SumLanes {
  using Out = double;
  static T init() { return T(0); }
  static T step(T a, T x) { return a + x; }
  static double fold(double s, T v) { return s + double(v); }
};
template <class T, bool Max>
struct ExtremeLanes {
  using Out = T;
  static T init() {
    return Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  }
  static T step(T a, T x) { return Max ? nanmax(a, x) : nanmin(a, x); }
  static T fold(T m, T v) { return step(m, v); }
};

template <class T, class F>
void lockstep_x4(const T* const* p, index_t n, typename F::Out* out) {
  constexpr int L = 128 / int(sizeof(T));
  T a0[L], a1[L], a2[L], a3[L];
  for (int j = 0; j < L; ++j) a0[j] = a1[j] = a2[j] = a3[j] = F::init();
  const T *q0 = p[0], *q1 = p[1], *q2 = p[2], *q3 = p[3];
  index_t i = 0;
  for (; i + L <= n; i += L) {
#pragma omp simd
    for (int j = 0; j < L; ++j) {
      a0[j] = F::step(a0[j], q0[i + j]);
      a1[j] = F::step(a1[j], q1[i + j]);
      a2[j] = F::step(a2[j], q2[i + j]);
      a3[j] = F::step(a3[j], q3[i + j]);
    }
  }
  // Each line folds its lanes in order; the four lines' chains are interleaved, so that they
  // overlap instead of waiting out one another's add latency.
  const T* acc[kStreams] = {a0, a1, a2, a3};
  typename F::Out r[kStreams];
  for (int k = 0; k < kStreams; ++k) r[k] = F::init();
  for (int j = 0; j < L; ++j)
    for (int k = 0; k < kStreams; ++k) r[k] = F::fold(r[k], acc[k][j]);
  for (int k = 0; k < kStreams; ++k) {
    for (index_t t = i; t < n; ++t) r[k] = F::fold(r[k], p[k][t]);
    out[k] = r[k];
  }
}

// ---- column kernels: update W accumulators (column stride cs) from rows ------------------------
template <class T>
void sum_cols(double* acc, const T* const* rows, int nr, index_t W, index_t cs) {
  int r = 0;
  if (cs == 1) {
    for (; r + 4 <= nr; r += 4) {
      const T *a = rows[r], *b = rows[r + 1], *c = rows[r + 2], *d = rows[r + 3];
#pragma omp simd
      for (index_t j = 0; j < W; ++j)
        acc[j] += (double(a[j]) + double(b[j])) + (double(c[j]) + double(d[j]));
    }
    for (; r < nr; ++r) {
      const T* a = rows[r];
#pragma omp simd
      for (index_t j = 0; j < W; ++j) acc[j] += double(a[j]);
    }
  } else {
    for (; r < nr; ++r) {
      const T* a = rows[r];
#pragma omp simd
      for (index_t j = 0; j < W; ++j) acc[j] += double(a[j * cs]);
    }
  }
}

template <class T, bool Max>
void extreme_cols(T* acc, const T* const* rows, int nr, index_t W, index_t cs) {
  int r = 0;
  if (cs == 1) {
    for (; r + 4 <= nr; r += 4) {
      const T *a = rows[r], *b = rows[r + 1], *c = rows[r + 2], *d = rows[r + 3];
#pragma omp simd
      for (index_t j = 0; j < W; ++j) {
        T m = acc[j];
        m = Max ? nanmax(m, a[j]) : nanmin(m, a[j]);
        m = Max ? nanmax(m, b[j]) : nanmin(m, b[j]);
        m = Max ? nanmax(m, c[j]) : nanmin(m, c[j]);
        m = Max ? nanmax(m, d[j]) : nanmin(m, d[j]);
        acc[j] = m;
      }
    }
    for (; r < nr; ++r) {
      const T* a = rows[r];
#pragma omp simd
      for (index_t j = 0; j < W; ++j) acc[j] = Max ? nanmax(acc[j], a[j]) : nanmin(acc[j], a[j]);
    }
  } else {
    for (; r < nr; ++r) {
      const T* a = rows[r];
#pragma omp simd
      for (index_t j = 0; j < W; ++j)
        acc[j] = Max ? nanmax(acc[j], a[j * cs]) : nanmin(acc[j], a[j * cs]);
    }
  }
}

// logsumexp state per column: running max m, running sum s of exp(x - m)
template <class T>
void lse_cols(T* m, double* s, T* bm, T* sh, const T* const* rows, int nr, index_t W,
              index_t cs) {
  const T ninf = -std::numeric_limits<T>::infinity();
#pragma omp simd
  for (index_t j = 0; j < W; ++j) bm[j] = ninf;
  for (int r = 0; r < nr; ++r) {
    const T* a = rows[r];
#pragma omp simd
    for (index_t j = 0; j < W; ++j) bm[j] = nanmax(bm[j], a[j * cs]);
  }
#pragma omp simd
  for (index_t j = 0; j < W; ++j) {
    T om = m[j];
    T nm = nanmax(om, bm[j]);
    // om == nm also covers the all -inf column (no exp(-inf - -inf) = NaN)
    double sc = (nm == om) ? 1.0 : math::exp(double(om) - double(nm));
    s[j] *= sc;
    m[j] = nm;
    sh[j] = is_finite(nm) ? nm : T(0);  // non-finite max: the sum is not used
  }
  for (int r = 0; r < nr; ++r) {
    const T* a = rows[r];
#pragma omp simd
    for (index_t j = 0; j < W; ++j) s[j] += double(math::exp(a[j * cs] - sh[j]));
  }
}

}  // namespace GF_KERNEL_NS
}  // namespace gf
