// Elementwise activations and math functions, forward and backward.
//
// Every op's formula comes from gf_math.h (shared with the CUDA backend) or is a one-liner in
// kernels/unary.h, which compiles each op into one flat `omp simd` loop per dtype and per
// instruction-set level (kernels/table.h); the loops are split across threads by
// gf::parallel_for for large inputs.
//
// Layout: inputs that are C-contiguous are read in place (no copy). Any other layout
// (transposed, step-sliced, negative strides) is first copied into a C-contiguous temporary by
// numpy (one extra pass), and the flat loop runs on that. Outputs are always new C-contiguous
// arrays of the input's shape and dtype.
#include "common.h"
#include "kernels/table.h"

#include <string>
#include <vector>

namespace gf {
namespace {

using Fwd32 = void (*)(const float*, float*, index_t, Params);
using Fwd64 = void (*)(const double*, double*, index_t, Params);
using Bwd32 = void (*)(const float*, const float*, float*, index_t, Params);
using Bwd64 = void (*)(const double*, const double*, double*, index_t, Params);

struct FwdK {
  Fwd32 f32;
  Fwd64 f64;
};
struct BwdK {
  Bwd32 f32;
  Bwd64 f64;
};
// An op's loops for both dtypes, from the kernel table.
#define GF_K(NAME) \
  { kern<float>().NAME, kern<double>().NAME }

constexpr index_t kGrainHeavy = 1 << 13;  // ops that call exp / erf / tanh / log / pow

std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

template <class T, class K>
py::array run_fwd(const py::array& x_in, K k, Params p, index_t grain) {
  py::array x = c_contiguous(x_in);
  py::array_t<T> y = new_array<T>(shape_of(x));
  const index_t n = index_t(x.size());
  const T* xp = static_cast<const T*>(x.data());
  T* yp = y.mutable_data();
  {
    NoGilIf nogil(n >= kNoGilMin);
    parallel_for(n, grain, [&](index_t b, index_t e) { k(xp + b, yp + b, e - b, p); });
  }
  return std::move(y);
}

py::array unary(const char* op, const py::array& x, FwdK k, Params p, index_t grain) {
  if (float_dtype(x, op) == DType::f32) return run_fwd<float>(x, k.f32, p, grain);
  return run_fwd<double>(x, k.f64, p, grain);
}

template <class T, class K>
py::array run_bwd(const py::array& x_in, const py::array& g_in, K k, Params p, index_t grain) {
  py::array x = c_contiguous(x_in), g = c_contiguous(g_in);
  py::array_t<T> out = new_array<T>(shape_of(x));
  const index_t n = index_t(x.size());
  const T* xp = static_cast<const T*>(x.data());
  const T* gp = static_cast<const T*>(g.data());
  T* op = out.mutable_data();
  {
    NoGilIf nogil(n >= kNoGilMin);
    parallel_for(n, grain, [&](index_t b, index_t e) { k(xp + b, gp + b, op + b, e - b, p); });
  }
  return std::move(out);
}

// `saved` is the forward's input or output (per op), `g` the gradient of the output.
py::array unary_bwd(const char* op, const char* saved_name, const py::array& x,
                    const py::array& g, BwdK k, Params p, index_t grain) {
  DType dt = same_float_dtype(op, {&x, &g});
  bool same = x.ndim() == g.ndim();
  for (py::ssize_t i = 0; same && i < x.ndim(); ++i) same = x.shape(i) == g.shape(i);
  if (!same)
    throw py::value_error(std::string(op) + ": " + saved_name + " and g must have the same shape, got " +
                          saved_name + ": " + describe(x) + " and g: " + describe(g));
  if (dt == DType::f32) return run_bwd<float>(x, g, k.f32, p, grain);
  return run_bwd<double>(x, g, k.f64, p, grain);
}

}  // namespace

void bind_unary(py::module_& m) {
  using py::arg;
  const index_t G = kGrain, H = kGrainHeavy;

  // ---- activations ----
  m.def("sigmoid", [=](const py::array& x) { return unary("sigmoid", x, GF_K(sigmoid_fwd), {}, H); },
        arg("x"), "1 / (1 + exp(-x)), computed without overflow.");
  m.def("sigmoid_backward",
        [=](const py::array& y, const py::array& g) {
          return unary_bwd("sigmoid_backward", "y", y, g, GF_K(sigmoid_bwd), {}, G);
        },
        arg("y"), arg("g"), "g * y * (1 - y), y the forward output.");

  m.def("tanh", [=](const py::array& x) { return unary("tanh", x, GF_K(tanh_fwd), {}, H); }, arg("x"));
  m.def("tanh_backward",
        [=](const py::array& y, const py::array& g) {
          return unary_bwd("tanh_backward", "y", y, g, GF_K(tanh_bwd), {}, G);
        },
        arg("y"), arg("g"), "g * (1 - y^2), y the forward output.");

  m.def("relu", [=](const py::array& x) { return unary("relu", x, GF_K(relu_fwd), {}, G); }, arg("x"),
        "max(x, 0); NaN propagates.");
  m.def("relu_backward",
        [=](const py::array& y, const py::array& g) {
          return unary_bwd("relu_backward", "y", y, g, GF_K(relu_bwd), {}, G);
        },
        arg("y"), arg("g"), "g where y > 0 else 0, y the forward output.");

  m.def("leaky_relu",
        [=](const py::array& x, double slope) {
          return unary("leaky_relu", x, GF_K(leaky_relu_fwd), {slope, 0}, G);
        },
        arg("x"), arg("negative_slope") = 0.01);
  m.def("leaky_relu_backward",
        [=](const py::array& x, const py::array& g, double slope) {
          return unary_bwd("leaky_relu_backward", "x", x, g, GF_K(leaky_relu_bwd), {slope, 0}, G);
        },
        arg("x"), arg("g"), arg("negative_slope") = 0.01, "x the forward input.");

  m.def("gelu",
        [=](const py::array& x, bool approximate) {
          return approximate ? unary("gelu", x, GF_K(gelu_tanh_fwd), {}, H)
                             : unary("gelu", x, GF_K(gelu_fwd), {}, H);
        },
        arg("x"), arg("approximate") = false,
        "x * Phi(x) (erf form), or the tanh approximation when approximate=True.");
  m.def("gelu_backward",
        [=](const py::array& x, const py::array& g, bool approximate) {
          return approximate ? unary_bwd("gelu_backward", "x", x, g, GF_K(gelu_tanh_bwd), {}, H)
                             : unary_bwd("gelu_backward", "x", x, g, GF_K(gelu_bwd), {}, H);
        },
        arg("x"), arg("g"), arg("approximate") = false, "x the forward input.");

  m.def("softplus",
        [=](const py::array& x, double beta, double threshold) {
          return unary("softplus", x, GF_K(softplus_fwd), {beta, threshold}, H);
        },
        arg("x"), arg("beta") = 1.0, arg("threshold") = 20.0,
        "log(1 + exp(beta x)) / beta, x where beta x > threshold.");
  m.def("softplus_backward",
        [=](const py::array& x, const py::array& g, double beta, double threshold) {
          return unary_bwd("softplus_backward", "x", x, g, GF_K(softplus_bwd), {beta, threshold}, H);
        },
        arg("x"), arg("g"), arg("beta") = 1.0, arg("threshold") = 20.0, "x the forward input.");

  // ---- math ----
  m.def("exp", [=](const py::array& x) { return unary("exp", x, GF_K(exp_fwd), {}, H); }, arg("x"));
  m.def("exp_backward",
        [=](const py::array& y, const py::array& g) {
          return unary_bwd("exp_backward", "y", y, g, GF_K(exp_bwd), {}, G);
        },
        arg("y"), arg("g"), "g * y, y the forward output.");
  m.def("log", [=](const py::array& x) { return unary("log", x, GF_K(log_fwd), {}, H); }, arg("x"));
  m.def("log_backward",
        [=](const py::array& x, const py::array& g) {
          return unary_bwd("log_backward", "x", x, g, GF_K(log_bwd), {}, G);
        },
        arg("x"), arg("g"), "g / x, x the forward input.");
  m.def("sqrt", [=](const py::array& x) { return unary("sqrt", x, GF_K(sqrt_fwd), {}, G); }, arg("x"));
  m.def("sqrt_backward",
        [=](const py::array& y, const py::array& g) {
          return unary_bwd("sqrt_backward", "y", y, g, GF_K(sqrt_bwd), {}, G);
        },
        arg("y"), arg("g"), "g / (2 y), y the forward output.");
  m.def("abs", [=](const py::array& x) { return unary("abs", x, GF_K(abs_fwd), {}, G); }, arg("x"));
  m.def("abs_backward",
        [=](const py::array& x, const py::array& g) {
          return unary_bwd("abs_backward", "x", x, g, GF_K(abs_bwd), {}, G);
        },
        arg("x"), arg("g"), "g * sign(x) (0 at 0), x the forward input.");
  m.def("neg", [=](const py::array& x) { return unary("neg", x, GF_K(neg_fwd), {}, G); }, arg("x"));

  m.def("pow_scalar",
        [=](const py::array& x, double p) {
          if (p == 0) return unary("pow_scalar", x, GF_K(pow0_fwd), {}, G);
          if (p == 1) return unary("pow_scalar", x, GF_K(pow1_fwd), {}, G);
          if (p == 2) return unary("pow_scalar", x, GF_K(pow2_fwd), {}, G);
          if (p == 0.5) return unary("pow_scalar", x, GF_K(pow_half_fwd), {}, G);
          if (p == -0.5) return unary("pow_scalar", x, GF_K(pow_mhalf_fwd), {}, G);
          if (p == -1) return unary("pow_scalar", x, GF_K(pow_m1_fwd), {}, G);
          if (p == 3) return unary("pow_scalar", x, GF_K(pow_3_fwd), {}, G);
          if (p == -2) return unary("pow_scalar", x, GF_K(pow_m2_fwd), {}, G);
          return unary("pow_scalar", x, GF_K(pow_fwd), {p, 0}, H);
        },
        arg("x"), arg("p"), "x ** p for a scalar exponent p.");
  m.def("pow_scalar_backward",
        [=](const py::array& x, const py::array& g, double p) {
          const char* op = "pow_scalar_backward";
          if (p == 0) return unary_bwd(op, "x", x, g, GF_K(pow0_bwd), {}, G);
          if (p == 1) return unary_bwd(op, "x", x, g, GF_K(pow1_bwd), {}, G);
          if (p == 2) return unary_bwd(op, "x", x, g, GF_K(pow2_bwd), {}, G);
          // The exponent p - 1 is formed in T from p rounded to T, as the forward sees p.
          Params prm{p, 0};
          if (float_dtype(x, op) == DType::f32)
            prm.b = double(float(p) - 1.0f);
          else
            prm.b = p - 1.0;
          const double pm1 = prm.b;
          if (pm1 == 0.5) return unary_bwd(op, "x", x, g, GF_K(pow_bwd_half), prm, G);
          if (pm1 == -0.5) return unary_bwd(op, "x", x, g, GF_K(pow_bwd_mhalf), prm, G);
          if (pm1 == -1) return unary_bwd(op, "x", x, g, GF_K(pow_bwd_m1), prm, G);
          if (pm1 == 2) return unary_bwd(op, "x", x, g, GF_K(pow_bwd_2), prm, G);
          if (pm1 == 3) return unary_bwd(op, "x", x, g, GF_K(pow_bwd_3), prm, G);
          if (pm1 == -2) return unary_bwd(op, "x", x, g, GF_K(pow_bwd_m2), prm, G);
          return unary_bwd(op, "x", x, g, GF_K(pow_bwd), prm, H);
        },
        arg("x"), arg("g"), arg("p"), "g * p * x^(p-1), x the forward input.");
}

#undef GF_K

}  // namespace gf
