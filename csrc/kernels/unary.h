// Elementwise activation and math loops, forward and backward: one flat `omp simd` loop per op
// and dtype. Each op is one line of GF_UNARY_KERNELS: the list both defines the loops (here)
// and names them in the kernel table (table.h).
//
// A family header of the dispatched kernels: no include guard, code in namespace
// gf::GF_KERNEL_NS (see table.h).

// FWD(name, expr): y[i] = expr, with the element `x`, the type `T` and the converted
// parameters `pa`, `pb`. BWD(name, expr): out[i] = expr, with the saved tensor element `x`
// (the forward's input or output, per op), the incoming gradient `g`, and `pa`, `pb`.
#define GF_UNARY_KERNELS(FWD, BWD)                                                         \
  FWD(sigmoid_fwd, M::sigmoid(x))                                                          \
  FWD(tanh_fwd, M::tanh_(x))                                                               \
  FWD(relu_fwd, M::relu(x))                                                                \
  FWD(leaky_relu_fwd, M::leaky_relu(x, pa))                                                \
  FWD(gelu_fwd, M::gelu(x))                                                                \
  FWD(gelu_tanh_fwd, M::gelu_tanh(x))                                                      \
  FWD(softplus_fwd, M::softplus(x, pa, pb))                                                \
  FWD(exp_fwd, M::exp(x))                                                                  \
  FWD(log_fwd, M::log(x))                                                                  \
  FWD(sqrt_fwd, M::sqrt(x))                                                                \
  FWD(abs_fwd, M::abs(x))                                                                  \
  FWD(neg_fwd, -x)                                                                         \
  /* pow_scalar: the exponents 0, 1 and 2 get exact loops (picked by the caller); the rest \
     call pow. */                                                                          \
  FWD(pow0_fwd, T(1))                                                                      \
  FWD(pow1_fwd, x)                                                                         \
  FWD(pow2_fwd, x * x)                                                                     \
  FWD(pow_fwd, M::pow(x, pa))                                                             \
  /* ... and 0.5, -0.5, -1, 3, -2 their forms of gf_vecmath.h */                           \
  FWD(pow_half_fwd, M::pow_half(x))                                                        \
  FWD(pow_mhalf_fwd, M::pow_mhalf(x))                                                      \
  FWD(pow_m1_fwd, M::pow_m1(x))                                                            \
  FWD(pow_3_fwd, T(M::pow_3(wide(x))))                                                     \
  FWD(pow_m2_fwd, T(M::pow_m2(wide(x))))                                                   \
  BWD(sigmoid_bwd, M::sigmoid_grad(x, g)) /* x is the forward output y */                  \
  BWD(tanh_bwd, M::tanh_grad(x, g))       /* output */                                     \
  BWD(relu_bwd, M::relu_grad(x, g))       /* output */                                     \
  BWD(leaky_relu_bwd, M::leaky_relu_grad(x, g, pa)) /* input */                            \
  BWD(gelu_bwd, M::gelu_grad(x, g))                 /* input */                            \
  BWD(gelu_tanh_bwd, M::gelu_tanh_grad(x, g))       /* input */                            \
  BWD(softplus_bwd, M::softplus_grad(x, g, pa, pb)) /* input */                            \
  BWD(exp_bwd, g * x)                               /* output */                           \
  BWD(log_bwd, g / x)                               /* input */                            \
  BWD(sqrt_bwd, sqrt_grad(x, g))                    /* output */                           \
  /* g * sign(x): 0 at +-0, NaN where x is NaN. */                                         \
  BWD(abs_bwd, x > T(0) ? g : (x < T(0) ? -g : (x == x ? T(0) : x)))                       \
  /* g * p * x^(p-1); exponents 0, 1, 2 are exact and never produce 0 * inf. */            \
  BWD(pow0_bwd, T(0))                                                                      \
  BWD(pow1_bwd, g)                                                                         \
  BWD(pow2_bwd, T(2) * g * x)                                                              \
  BWD(pow_bwd, pow_grad(x, g, pa, pb)) /* pb = p - 1 (computed in T) */                   \
  /* p - 1 = 0.5, -0.5, -1, 2, 3, -2: x^(p-1) by the forms above, in double */             \
  BWD(pow_bwd_half, pow_grad_with(g, pa, M::pow_half(wide(x))))                            \
  BWD(pow_bwd_mhalf, pow_grad_with(g, pa, M::pow_mhalf(wide(x))))                          \
  BWD(pow_bwd_m1, pow_grad_with(g, pa, M::pow_m1(wide(x))))                                \
  BWD(pow_bwd_2, pow_grad_with(g, pa, wide(x) * wide(x)))                                  \
  BWD(pow_bwd_3, pow_grad_with(g, pa, M::pow_3(wide(x))))                                  \
  BWD(pow_bwd_m2, pow_grad_with(g, pa, M::pow_m2(wide(x))))

#define GF_UNARY_TABLE_ENTRY(NAME, EXPR) GF_KERNEL(NAME, NAME<T>)
#define GF_UNARY_TABLE                                           \
  GF_UNARY_KERNELS(GF_UNARY_TABLE_ENTRY, GF_UNARY_TABLE_ENTRY) \
  GF_KERNEL(relu_inplace, relu_inplace<T>)

namespace gf {
namespace GF_KERNEL_NS {

namespace M = gf::math;

// g / (2 y). float: in double, where 2 y can overflow and g / y too for a subnormal y.
template <class T> inline T sqrt_grad(T y, T g) { return g / (T(2) * y); }
inline float sqrt_grad(float y, float g) { return float(double(g) / (2.0 * double(y))); }
// g p x^(p-1). float: in double, where x^(p-1) alone can overflow or lose bits as a subnormal
// while the product is a normal float; rounded once. (Always inlined: with pow's body inside,
// clang would call them and not vectorise the loop.)
inline __attribute__((always_inline)) double pow_grad(double x, double g, double p, double pm1) {
  return g * p * M::pow(x, pm1);
}
inline __attribute__((always_inline)) float pow_grad(float x, float g, float p, float pm1) {
  return float(double(g) * double(p) * M::pow_in_double(x, pm1));
}

// x in double, for the float kernels whose formula is computed there and rounded once
inline double wide(double x) { return x; }
inline double wide(float x) { return x; }
// g p x^(p-1) from x^(p-1) in double (as pow_grad)
template <class T> inline T pow_grad_with(T g, T p, double v) { return T(double(g) * double(p) * v); }

#define GF_UNARY_FWD(NAME, EXPR)                                              \
  template <class T>                                                          \
  void NAME(const T* __restrict xp, T* __restrict yp, index_t n, Params p) {  \
    const T pa = T(p.a), pb = T(p.b);                                         \
    (void)pa;                                                                 \
    (void)pb;                                                                 \
    _Pragma("omp simd") for (index_t i = 0; i < n; ++i) {                     \
      const T x = xp[i];                                                      \
      (void)x;                                                                \
      yp[i] = (EXPR);                                                         \
    }                                                                         \
  }
#define GF_UNARY_BWD(NAME, EXPR)                                              \
  template <class T>                                                          \
  void NAME(const T* __restrict xp, const T* __restrict gp, T* __restrict op, \
            index_t n, Params p) {                                            \
    const T pa = T(p.a), pb = T(p.b);                                         \
    (void)pa;                                                                 \
    (void)pb;                                                                 \
    _Pragma("omp simd") for (index_t i = 0; i < n; ++i) {                     \
      const T x = xp[i];                                                      \
      const T g = gp[i];                                                      \
      (void)x;                                                                \
      (void)g;                                                                \
      op[i] = (EXPR);                                                         \
    }                                                                         \
  }
GF_UNARY_KERNELS(GF_UNARY_FWD, GF_UNARY_BWD)
#undef GF_UNARY_FWD
#undef GF_UNARY_BWD

// float64 pow by blocks (x ** p and its backward here, a ** b in binary.h): math::pow_fast over
// kPowBlock elements into a buffer, stored when every lane was in its range, else the block
// again by math::pow (from the inputs: out may be one of them). Either way each element is
// bitwise pow's, whatever the block boundaries. After a block that needed pow, the next
// kPowSkip blocks go to pow directly: where special values are everywhere (the zeros of a ReLU's
// output) a block costs both paths only once in kPowSkip + 1. F: fast(i, ok) and full(i),
// element i's value either way.
constexpr index_t kPowBlock = 128;
constexpr int kPowSkip = 32;
template <class F>
__attribute__((always_inline)) inline void pow_blocks(double* o, index_t so, index_t n, const F& f) {
  double buf[kPowBlock];
  int skip = 0;
  for (index_t i0 = 0; i0 < n; i0 += kPowBlock) {
    const index_t m = n - i0 < kPowBlock ? n - i0 : kPowBlock;
    int out = 1;
    if (skip > 0) {
      --skip;
    } else {
      out = 0;
#pragma omp simd reduction(| : out)
      for (index_t j = 0; j < m; ++j) {
        bool ok;
        buf[j] = f.fast(i0 + j, ok);
        out |= !ok;
      }
      if (out) skip = kPowSkip;
    }
    if (out) {
#pragma omp simd
      for (index_t j = 0; j < m; ++j) o[(i0 + j) * so] = f.full(i0 + j);
    } else {
#pragma omp simd
      for (index_t j = 0; j < m; ++j) o[(i0 + j) * so] = buf[j];
    }
  }
}
struct PowScalar {  // x ** p
  const double* x;
  double p;
  __attribute__((always_inline)) double fast(index_t i, bool& ok) const { return M::pow_fast(x[i], p, ok); }
  __attribute__((always_inline)) double full(index_t i) const { return M::pow(x[i], p); }
};
struct PowScalarGrad {  // g p x^(p - 1), as pow_grad
  const double *x, *g;
  double p, pm1;
  __attribute__((always_inline)) double fast(index_t i, bool& ok) const {
    return g[i] * p * M::pow_fast(x[i], pm1, ok);
  }
  __attribute__((always_inline)) double full(index_t i) const { return pow_grad(x[i], g[i], p, pm1); }
};
template <>
inline void pow_fwd<double>(const double* __restrict xp, double* __restrict yp, index_t n, Params p) {
  pow_blocks(yp, 1, n, PowScalar{xp, p.a});
}
template <>
inline void pow_bwd<double>(const double* __restrict xp, const double* __restrict gp,
                            double* __restrict op, index_t n, Params p) {
  pow_blocks(op, 1, n, PowScalarGrad{xp, gp, p.a, p.b});
}

// y = relu(y) in place (the fused Linear+ReLU's epilogue): the forward loops' pointers are
// __restrict, so in place needs its own.
template <class T>
void relu_inplace(T* y, index_t n) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) y[i] = M::relu(y[i]);
}

}  // namespace GF_KERNEL_NS
}  // namespace gf
