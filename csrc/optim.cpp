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

// ---- one pass over the parameters ------------------------------------------------------------
// A step updates one parameter or every parameter of a group in one parallel pass: the
// parameters laid end to end, each thread takes a contiguous share of the total and runs the
// kernel on the parts of the parameters it covers, so the values are bitwise those of one update
// per parameter, with one thread team per step.
struct Part {
  bool f64;
  void *p, *m, *v;  // param; SGD: momentum buffer (m); Adam: exp_avg (m), exp_avg_sq (v)
  const void* g;
  index_t n;
  bool first;        // SGD: the momentum buffer's first step
  double step_size, bc2_sqrt;  // Adam: lr / bc1, sqrt(bc2)
};

template <class F>
void over_parts(const std::vector<Part>& parts, F&& f) {
  std::vector<index_t> start(parts.size() + 1, 0);
  for (size_t i = 0; i < parts.size(); ++i) start[i + 1] = start[i] + parts[i].n;
  NoGilIf nogil(start.back() >= kNoGilMin);
  parallel_for(start.back(), kGrain, [&](index_t b, index_t e) {
    for (size_t i = 0; i < parts.size(); ++i) {
      const index_t s = std::max(b, start[i]), t = std::min(e, start[i + 1]);
      if (s < t) f(parts[i], s - start[i], t - s);
    }
  });
}

// An array updated in place must be the caller's own numpy array (a converted copy would take
// the update and be dropped).
py::array written_array(const py::object& o, const char* op, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(op) + ": " + name + " must be a numpy array (it is updated in "
                         "place), got " + py::str(py::type::of(o)).cast<std::string>());
  return py::reinterpret_borrow<py::array>(o);
}

// One parameter's checked arrays as a Part; `keep` holds them while the kernels run.
Part sgd_part(const char* op, const py::object& param, const py::object& grad, const py::object& buf_obj,
              double momentum, bool first, std::vector<py::array>& keep) {
  const bool use_mom = momentum != 0.0;
  py::array p = written_array(param, op, "param"), g = as_array(grad, op), b;
  if (use_mom) {
    if (buf_obj.is_none())
      throw py::value_error(std::string(op) + ": momentum = " + std::to_string(momentum) +
                            " needs a momentum_buffer array, got None");
    b = written_array(buf_obj, op, "momentum_buffer");
  }
  DType dt = use_mom ? same_float_dtype(op, {&p, &g, &b}) : same_float_dtype(op, {&p, &g});
  check_state(op, "param", p, p, true);
  check_state(op, "grad", g, p, false);
  if (use_mom) check_state(op, "momentum_buffer", b, p, true);
  keep.insert(keep.end(), {p, g});
  if (use_mom) keep.push_back(b);
  return {dt == DType::f64, p.mutable_data(), use_mom ? b.mutable_data() : nullptr, nullptr, g.data(),
          index_t(p.size()), first, 0, 0};
}

Part adam_part(const char* op, const py::object& param, const py::object& grad, const py::object& exp_avg,
               const py::object& exp_avg_sq, long long step, double lr, double beta1, double beta2,
               std::vector<py::array>& keep) {
  if (step < 1) throw py::value_error(std::string(op) + ": step must be >= 1, got " + std::to_string(step));
  py::array p = written_array(param, op, "param"), g = as_array(grad, op),
            m = written_array(exp_avg, op, "exp_avg"), v = written_array(exp_avg_sq, op, "exp_avg_sq");
  DType dt = same_float_dtype(op, {&p, &g, &m, &v});
  check_state(op, "param", p, p, true);
  check_state(op, "grad", g, p, false);
  check_state(op, "exp_avg", m, p, true);
  check_state(op, "exp_avg_sq", v, p, true);
  keep.insert(keep.end(), {p, g, m, v});
  // the bias corrections in double, as PyTorch forms them
  const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  return {dt == DType::f64, p.mutable_data(), m.mutable_data(), v.mutable_data(), g.data(),
          index_t(p.size()), false, lr / bc1, std::sqrt(bc2)};
}

void sgd_run(const std::vector<Part>& parts, double lr, double momentum, double dampening, bool nesterov,
             double weight_decay) {
  over_parts(parts, [&](const Part& q, index_t s, index_t n) {
    auto run = [&](auto zero) {
      using T = decltype(zero);
      T* p = static_cast<T*>(q.p) + s;
      const T* g = static_cast<const T*>(q.g) + s;
      if (momentum != 0.0)
        kern<T>().sgd_momentum(p, g, static_cast<T*>(q.m) + s, n, T(lr), T(weight_decay), T(momentum),
                               T(1.0 - dampening), nesterov, q.first);
      else
        kern<T>().sgd_plain(p, g, n, T(lr), T(weight_decay));
    };
    q.f64 ? run(0.0) : run(0.0f);
  });
}

void adam_run(const std::vector<Part>& parts, double lr, double beta1, double beta2, double eps,
              double weight_decay, bool decoupled) {
  const double decay = 1.0 - lr * weight_decay;
  over_parts(parts, [&](const Part& q, index_t s, index_t n) {
    auto run = [&](auto zero) {
      using T = decltype(zero);
      kern<T>().adam(static_cast<T*>(q.p) + s, static_cast<const T*>(q.g) + s, static_cast<T*>(q.m) + s,
                     static_cast<T*>(q.v) + s, n, T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2),
                     T(q.step_size), T(q.bc2_sqrt), T(eps), T(weight_decay), T(decay), decoupled);
    };
    q.f64 ? run(0.0) : run(0.0f);
  });
}

// ---- the bound functions ----------------------------------------------------------------------
void sgd_step(const py::object& param, const py::object& grad, const py::object& buf, double lr,
              double momentum, double dampening, bool nesterov, double weight_decay, bool first_step) {
  std::vector<py::array> keep;
  std::vector<Part> parts{sgd_part("sgd_step", param, grad, buf, momentum, first_step, keep)};
  sgd_run(parts, lr, momentum, dampening, nesterov, weight_decay);
}

void adam_step(const py::object& param, const py::object& grad, const py::object& exp_avg,
               const py::object& exp_avg_sq, long long step, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool decoupled) {
  std::vector<py::array> keep;
  std::vector<Part> parts{adam_part("adam_step", param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, keep)};
  adam_run(parts, lr, beta1, beta2, eps, weight_decay, decoupled);
}

py::list as_list(const py::object& o, const char* op, const char* name, size_t n) {
  py::list l(o);
  if (l.size() != n)
    throw py::value_error(std::string(op) + ": " + name + " has " + std::to_string(l.size()) +
                          " entries for " + std::to_string(n) + " parameters");
  return l;
}

void sgd_step_multi(const py::object& params_obj, const py::object& grads_obj, const py::object& bufs_obj,
                    const py::object& first_obj, double lr, double momentum, double dampening,
                    bool nesterov, double weight_decay) {
  const char* op = "sgd_step_multi";
  py::list params(params_obj);
  const size_t np = params.size();
  py::list grads = as_list(grads_obj, op, "grads", np), bufs = as_list(bufs_obj, op, "momentum_buffers", np),
           firsts = as_list(first_obj, op, "first_steps", np);
  std::vector<py::array> keep;
  std::vector<Part> parts;
  for (size_t i = 0; i < np; ++i)
    parts.push_back(sgd_part(op, params[i], grads[i], bufs[i], momentum, firsts[i].cast<bool>(), keep));
  sgd_run(parts, lr, momentum, dampening, nesterov, weight_decay);
}

void adam_step_multi(const py::object& params_obj, const py::object& grads_obj, const py::object& m_obj,
                     const py::object& v_obj, const py::object& steps_obj, double lr, double beta1,
                     double beta2, double eps, double weight_decay, bool decoupled) {
  const char* op = "adam_step_multi";
  py::list params(params_obj);
  const size_t np = params.size();
  py::list grads = as_list(grads_obj, op, "grads", np), ms = as_list(m_obj, op, "exp_avgs", np),
           vs = as_list(v_obj, op, "exp_avg_sqs", np), steps = as_list(steps_obj, op, "steps", np);
  std::vector<py::array> keep;
  std::vector<Part> parts;
  for (size_t i = 0; i < np; ++i)
    parts.push_back(adam_part(op, params[i], grads[i], ms[i], vs[i], steps[i].cast<long long>(), lr, beta1,
                              beta2, keep));
  adam_run(parts, lr, beta1, beta2, eps, weight_decay, decoupled);
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
  m.def("sgd_step_multi", &sgd_step_multi, arg("params"), arg("grads"), arg("momentum_buffers"),
        arg("first_steps"), arg("lr"), arg("momentum") = 0.0, arg("dampening") = 0.0, arg("nesterov") = false,
        arg("weight_decay") = 0.0,
        "sgd_step on every parameter of the lists (bitwise the same values) in one parallel pass; "
        "first_steps: per parameter, whether its momentum buffer takes its first step.");
  m.def("adam_step_multi", &adam_step_multi, arg("params"), arg("grads"), arg("exp_avgs"), arg("exp_avg_sqs"),
        arg("steps"), arg("lr"), arg("beta1") = 0.9, arg("beta2") = 0.999, arg("eps") = 1e-8,
        arg("weight_decay") = 0.0, arg("decoupled") = false,
        "adam_step on every parameter of the lists (bitwise the same values) in one parallel pass; "
        "steps: per parameter, its step count (from 1).");
}

}  // namespace gf
