// Fused optimizer updates, in place, one pass over memory: SGD (momentum, dampening, Nesterov,
// weight decay) and Adam / AdamW, with PyTorch's exact update rules.
//
// All arrays must have the parameter's shape and dtype (float32/float64) and be C-contiguous;
// the ones written (param and the optimizer state) must be writeable. The scalar
// hyper-parameters arrive as Python floats and are converted to the array's dtype once;
// derived scalars (Adam's bias corrections) are formed in double first, as PyTorch does.
// The update loops are in kernels/optim.h (compiled per instruction-set level).
#include "common.h"
#include "kernels/table.h"

#include <cmath>
#include <string>

namespace gf {
namespace {

// ---- argument checks ------------------------------------------------------------------------
std::string shape_of(const py::array& a) { return shape_str(a); }

bool same_shape(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) != b.shape(i)) return false;
  return true;
}

// `arr` (called `name`) must match param's shape, be C-contiguous, and writeable if written.
void check_state(const char* op, const char* name, const py::array& arr, const py::array& param,
                 bool written) {
  if (!same_shape(arr, param))
    throw py::value_error(std::string(op) + ": " + name + " must have param's shape " + shape_of(param) +
                          ", got " + describe(arr));
  if (!(arr.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous, got a strided " +
                          describe(arr));
  if (written && !arr.writeable())
    throw py::value_error(std::string(op) + ": " + name + " must be writeable (it is updated in place), got a read-only " +
                          describe(arr));
}

void sgd_step(py::array param, py::array grad, py::object buf_obj, double lr, double momentum,
              double dampening, bool nesterov, double weight_decay, bool first_step) {
  const char* op = "sgd_step";
  const bool use_mom = momentum != 0.0;
  py::array buf;
  if (use_mom) {
    if (buf_obj.is_none())
      throw py::value_error("sgd_step: momentum = " + std::to_string(momentum) +
                            " needs a momentum_buffer array, got None");
    if (!py::isinstance<py::array>(buf_obj))
      throw py::type_error("sgd_step: momentum_buffer must be a numpy array or None");
    buf = buf_obj.cast<py::array>();
  }
  DType dt = use_mom ? same_float_dtype(op, {&param, &grad, &buf}) : same_float_dtype(op, {&param, &grad});
  check_state(op, "param", param, param, true);
  check_state(op, "grad", grad, param, false);
  if (use_mom) check_state(op, "momentum_buffer", buf, param, true);
  const index_t n = index_t(param.size());
  void* pp = param.mutable_data();
  const void* gp = grad.data();
  void* bp = use_mom ? buf.mutable_data() : nullptr;
  NoGilIf nogil(true);
  if (dt == DType::f32) {
    using T = float;
    T* p = static_cast<T*>(pp);
    const T* g = static_cast<const T*>(gp);
    T* b = static_cast<T*>(bp);
    parallel_for(n, kGrain, [&](index_t s, index_t e) {
      if (use_mom)
        kern<T>().sgd_momentum(p + s, g + s, b + s, e - s, T(lr), T(weight_decay), T(momentum),
                           T(1.0 - dampening), nesterov, first_step);
      else
        kern<T>().sgd_plain(p + s, g + s, e - s, T(lr), T(weight_decay));
    });
  } else {
    using T = double;
    T* p = static_cast<T*>(pp);
    const T* g = static_cast<const T*>(gp);
    T* b = static_cast<T*>(bp);
    parallel_for(n, kGrain, [&](index_t s, index_t e) {
      if (use_mom)
        kern<T>().sgd_momentum(p + s, g + s, b + s, e - s, T(lr), T(weight_decay), T(momentum),
                            T(1.0 - dampening), nesterov, first_step);
      else
        kern<T>().sgd_plain(p + s, g + s, e - s, T(lr), T(weight_decay));
    });
  }
}

void adam_step(py::array param, py::array grad, py::array exp_avg, py::array exp_avg_sq, long long step,
               double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled) {
  const char* op = "adam_step";
  if (step < 1) throw py::value_error("adam_step: step must be >= 1, got " + std::to_string(step));
  DType dt = same_float_dtype(op, {&param, &grad, &exp_avg, &exp_avg_sq});
  check_state(op, "param", param, param, true);
  check_state(op, "grad", grad, param, false);
  check_state(op, "exp_avg", exp_avg, param, true);
  check_state(op, "exp_avg_sq", exp_avg_sq, param, true);
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  const double step_size = lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  const double decay = 1.0 - lr * weight_decay;
  const index_t n = index_t(param.size());
  void* pp = param.mutable_data();
  const void* gp = grad.data();
  void* mp = exp_avg.mutable_data();
  void* vp = exp_avg_sq.mutable_data();
  NoGilIf nogil(true);
  if (dt == DType::f32) {
    using T = float;
    T *p = static_cast<T*>(pp), *m = static_cast<T*>(mp), *v = static_cast<T*>(vp);
    const T* g = static_cast<const T*>(gp);
    parallel_for(n, kGrain, [&](index_t s, index_t e) {
      kern<T>().adam(p + s, g + s, m + s, v + s, e - s, T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2),
                 T(step_size), T(bc2_sqrt), T(eps), T(weight_decay), T(decay), decoupled);
    });
  } else {
    using T = double;
    T *p = static_cast<T*>(pp), *m = static_cast<T*>(mp), *v = static_cast<T*>(vp);
    const T* g = static_cast<const T*>(gp);
    parallel_for(n, kGrain, [&](index_t s, index_t e) {
      kern<T>().adam(p + s, g + s, m + s, v + s, e - s, T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2),
                  T(step_size), T(bc2_sqrt), T(eps), T(weight_decay), T(decay), decoupled);
    });
  }
}

}  // namespace

void bind_optim(py::module_& m) {
  using py::arg;
  m.def("sgd_step", &sgd_step, arg("param"), arg("grad"), arg("momentum_buffer"), arg("lr"),
        arg("momentum") = 0.0, arg("dampening") = 0.0, arg("nesterov") = false, arg("weight_decay") = 0.0,
        arg("first_step") = false,
        "In-place SGD update (PyTorch's rule): d = g + wd p; with momentum, buf = d on the first "
        "step else momentum buf + (1 - dampening) d, and d = d + momentum buf (Nesterov) or buf; "
        "p -= lr d. momentum_buffer may be None when momentum == 0.");
  m.def("adam_step", &adam_step, arg("param"), arg("grad"), arg("exp_avg"), arg("exp_avg_sq"), arg("step"),
        arg("lr"), arg("beta1") = 0.9, arg("beta2") = 0.999, arg("eps") = 1e-8, arg("weight_decay") = 0.0,
        arg("decoupled") = false,
        "In-place Adam (decoupled=False: g += wd p) / AdamW (decoupled=True: p *= 1 - lr wd) "
        "update, PyTorch's rule; step counts from 1.");
}

}  // namespace gf
