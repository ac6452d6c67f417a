// Line kernels shared by the reductions and the softmax family: NaN-propagating max/min and
// the max-shifted sum of exponentials along one strided line (stride in elements).
//
// A family header of the dispatched kernels: no include guard, code in namespace
// gf::GF_KERNEL_NS (see table.h).

#define GF_LINE_TABLE                         \
  GF_KERNEL(max_line, extreme_line<T, true>)  \
  GF_KERNEL(min_line, extreme_line<T, false>) \
  GF_KERNEL(sumexp_line, sumexp_line<T>)

namespace gf {
namespace GF_KERNEL_NS {

constexpr int kLineLanes = 64;  // independent accumulators: enough to fill the vector units

template <class T, bool Max>
T extreme_line(const T* p, index_t n, index_t s) {
  const T init = Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  T acc[kLineLanes];
  for (int j = 0; j < kLineLanes; ++j) acc[j] = init;
  index_t i = 0;
  if (s == 1) {
    for (; i + kLineLanes <= n; i += kLineLanes) {
#pragma omp simd
      for (int j = 0; j < kLineLanes; ++j)
        acc[j] = Max ? nanmax(acc[j], p[i + j]) : nanmin(acc[j], p[i + j]);
    }
  } else {
    for (; i + kLineLanes <= n; i += kLineLanes) {
#pragma omp simd
      for (int j = 0; j < kLineLanes; ++j)
        acc[j] = Max ? nanmax(acc[j], p[(i + j) * s]) : nanmin(acc[j], p[(i + j) * s]);
    }
  }
  T m = init;
  for (; i < n; ++i) m = Max ? nanmax(m, p[i * s]) : nanmin(m, p[i * s]);
  // tree fold of the lanes (vectorised), not a serial chain: short lines (one row) pay for it
  for (int w = kLineLanes / 2; w > 0; w /= 2) {
#pragma omp simd
    for (int j = 0; j < w; ++j) acc[j] = Max ? nanmax(acc[j], acc[j + w]) : nanmin(acc[j], acc[j + w]);
  }
  return Max ? nanmax(m, acc[0]) : nanmin(m, acc[0]);
}

// sum of exp(x - shift) over a line, accumulated in double; shift >= the line's max (every caller
// passes a max), so the exponent is <= 0
template <class T>
double sumexp_line(const T* p, index_t n, index_t s, T shift) {
  double acc = 0;
  if (s == 1) {
#pragma omp simd reduction(+ : acc)
    for (index_t i = 0; i < n; ++i) acc += double(math::exp_nonpos(p[i] - shift));
  } else {
#pragma omp simd reduction(+ : acc)
    for (index_t i = 0; i < n; ++i) acc += double(math::exp_nonpos(p[i * s] - shift));
  }
  return acc;
}

}  // namespace GF_KERNEL_NS
}  // namespace gf
