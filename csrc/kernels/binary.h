// Elementwise binary kernels over one strided run (strides in elements), with fast paths for
// the contiguous, scalar-operand and row-broadcast cases: arithmetic, comparisons (bool
// results) and where.
//
// A family header of the dispatched kernels: no include guard, code in namespace
// gf::GF_KERNEL_NS (see table.h).

#define GF_BINARY_TABLE                         \
  GF_KERNEL(add, binary_run<Add, T, T>)         \
  GF_KERNEL(sub, binary_run<Sub, T, T>)         \
  GF_KERNEL(mul, binary_run<Mul, T, T>)         \
  GF_KERNEL(div, binary_run<Div, T, T>)         \
  GF_KERNEL(pow, binary_run<Pow, T, T>)         \
  GF_KERNEL(maximum, binary_run<Maximum, T, T>) \
  GF_KERNEL(minimum, binary_run<Minimum, T, T>) \
  GF_KERNEL(eq, binary_run<Eq, T, bool>)        \
  GF_KERNEL(ne, binary_run<Ne, T, bool>)        \
  GF_KERNEL(lt, binary_run<Lt, T, bool>)        \
  GF_KERNEL(le, binary_run<Le, T, bool>)        \
  GF_KERNEL(gt, binary_run<Gt, T, bool>)        \
  GF_KERNEL(ge, binary_run<Ge, T, bool>)        \
  GF_KERNEL(where, where_run<T>)

namespace gf {
namespace GF_KERNEL_NS {

// ---- the ops ---------------------------------------------------------------------------------
struct Add { template <class T> static T f(T a, T b) { return a + b; } };
struct Sub { template <class T> static T f(T a, T b) { return a - b; } };
struct Mul { template <class T> static T f(T a, T b) { return a * b; } };
struct Div { template <class T> static T f(T a, T b) { return a / b; } };
// (always inlined: with pow's body inside, clang would call f and not vectorise the loop)
struct Pow {
  template <class T> __attribute__((always_inline)) static T f(T a, T b) { return math::pow(a, b); }
};
// NaN in either operand gives NaN, as numpy's maximum/minimum.
struct Maximum { template <class T> static T f(T a, T b) { return (a > b || a != a) ? a : b; } };
struct Minimum { template <class T> static T f(T a, T b) { return (a < b || a != a) ? a : b; } };

struct Eq { template <class T> static bool f(T a, T b) { return a == b; } };
struct Ne { template <class T> static bool f(T a, T b) { return a != b; } };
struct Lt { template <class T> static bool f(T a, T b) { return a < b; } };
struct Le { template <class T> static bool f(T a, T b) { return a <= b; } };
struct Gt { template <class T> static bool f(T a, T b) { return a > b; } };
struct Ge { template <class T> static bool f(T a, T b) { return a >= b; } };

// ---- inner kernels (strides in elements) ---------------------------------------------------------
template <class Op, class T, class R>
void binary_run(R* o, index_t so, const T* a, index_t sa, const T* b, index_t sb, index_t n) {
  if (so == 1) {
    if (sa == 1 && sb == 1) {
#pragma omp simd
      for (index_t i = 0; i < n; ++i) o[i] = Op::f(a[i], b[i]);
      return;
    }
    if (sa == 1 && sb == 0) {
      const T bv = *b;
#pragma omp simd
      for (index_t i = 0; i < n; ++i) o[i] = Op::f(a[i], bv);
      return;
    }
    if (sa == 0 && sb == 1) {
      const T av = *a;
#pragma omp simd
      for (index_t i = 0; i < n; ++i) o[i] = Op::f(av, b[i]);
      return;
    }
  }
#pragma omp simd
  for (index_t i = 0; i < n; ++i) o[i * so] = Op::f(a[i * sa], b[i * sb]);
}

// a ** b with a's and b's strides known at compile time where they are 1, or a scalar operand
// read once (read in the loop, it could alias the output: GCC left such a loop scalar)
template <int SA, int SB>
struct PowOperands {
  const double *a, *b;
  index_t sa, sb;
  double av, bv;  // the scalar operand's value (SA or SB 0)
  __attribute__((always_inline)) double x(index_t i) const { return SA == 0 ? av : a[SA == 1 ? i : i * sa]; }
  __attribute__((always_inline)) double y(index_t i) const { return SB == 0 ? bv : b[SB == 1 ? i : i * sb]; }
  __attribute__((always_inline)) double fast(index_t i, bool& ok) const {
    return math::pow_fast<SA != 0>(x(i), y(i), ok);
  }
  __attribute__((always_inline)) double full(index_t i) const { return math::pow(x(i), y(i)); }
};
template <>
inline void binary_run<Pow, double, double>(double* o, index_t so, const double* a, index_t sa,
                                            const double* b, index_t sb, index_t n) {
  if (so == 1 && sa == 1 && sb == 1) return pow_blocks(o, 1, n, PowOperands<1, 1>{a, b, sa, sb, 0, 0});
  if (so == 1 && sa == 1 && sb == 0) return pow_blocks(o, 1, n, PowOperands<1, 0>{a, b, sa, sb, 0, *b});
  if (so == 1 && sa == 0 && sb == 1) return pow_blocks(o, 1, n, PowOperands<0, 1>{a, b, sa, sb, *a, 0});
  pow_blocks(o, so, n, PowOperands<-1, -1>{a, b, sa, sb, 0, 0});
}

template <class T>
void where_run(T* o, index_t so, const std::uint8_t* c, index_t sc, const T* a, index_t sa,
               const T* b, index_t sb, index_t n) {
  if (so == 1 && sc == 1) {
    if (sa == 1 && sb == 1) {
#pragma omp simd
      for (index_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : b[i];
      return;
    }
    if (sa == 1 && sb == 0) {
      const T bv = *b;
#pragma omp simd
      for (index_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : bv;
      return;
    }
    if (sa == 0 && sb == 1) {
      const T av = *a;
#pragma omp simd
      for (index_t i = 0; i < n; ++i) o[i] = c[i] ? av : b[i];
      return;
    }
  }
#pragma omp simd
  for (index_t i = 0; i < n; ++i) o[i * so] = c[i * sc] ? a[i * sa] : b[i * sb];
}

}  // namespace GF_KERNEL_NS
}  // namespace gf
