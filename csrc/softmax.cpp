// softmax / log_softmax along any axis, their backward passes, and the fused cross-entropy
// forward and backward.
//
// Every kernel is max-subtracted. A "line" is the 1-d slice along the axis at one position of
// the other dimensions. The other dimensions form a StridedLoop over (output, inputs...); each
// run of lines goes to
//  - row mode: line by line (unit stride for a last-axis softmax of a C-contiguous array);
//  - column mode, when neighbouring lines are closer in memory than neighbouring elements of
//    a line (softmax over axis 0 of a C-contiguous array): blocks of lines are processed
//    together, vectorised across the lines.
// softmax = exp(x - max) / sum: one exp per element (the exps are stored, then scaled).
// A line that is all -inf gives NaN from softmax and log_softmax, as in PyTorch.
#include <cmath>
#include <cstdint>
#include <limits>

#include "common.h"
#include "kernels/table.h"
#include "strided.h"

namespace gf {
namespace {

// The line, column and cross-entropy row kernels are in kernels/softmax.h (compiled per
// instruction-set level, called through kern<T>()).

// ---- drivers ------------------------------------------------------------------------------------------
// Loop over the lines along `axis` of K operands (operand 0 the new C-contiguous output);
// astr[k] is operand k's stride along the axis in bytes.
template <int K>
StridedLoop<K> line_loop(const std::vector<py::array>& ops, int axis, index_t* astr) {
  const py::array& x = ops[1];
  const int nd = int(x.ndim());
  std::vector<index_t> shape;
  for (int d = 0; d < nd; ++d)
    if (d != axis) shape.push_back(x.shape(d));
  StridedLoop<K> L;
  L.set_shape(shape);
  for (int k = 0; k < K; ++k) {
    std::vector<index_t> st;
    for (int d = 0; d < nd; ++d)
      if (d != axis) st.push_back(ops[k].strides(d));
    L.set_operand(k, const_cast<void*>(ops[k].data()), st.data());
    astr[k] = ops[k].strides(axis);
  }
  L.collapse();
  return L;
}

template <class T>
py::array softmax_typed(py::array x, int axis, bool log) {
  py::array out = new_array<T>(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  if (x.size() == 0) return out;
  index_t as[2];
  StridedLoop<2> L = line_loop<2>({out, x}, axis, as);
  const index_t n = x.shape(axis);
  const index_t z = sizeof(T);
  NoGilIf nogil(index_t(x.size()) >= kNoGilMin);
  L.for_each(std::max<index_t>(1, (kGrain / 4) / n), [&](char* const* p, const index_t* s, index_t m) {
    T* o = reinterpret_cast<T*>(p[0]);
    const T* xi = reinterpret_cast<const T*>(p[1]);
    if (m >= 8 && n > 1 && std::abs(s[1]) < std::abs(as[1])) {
      for (index_t j0 = 0; j0 < m; j0 += kSoftmaxColBlock)
        kern<T>().softmax_cols(log, o + j0 * (s[0] / z), s[0] / z, as[0] / z, xi + j0 * (s[1] / z), s[1] / z,
                        as[1] / z, n, std::min(kSoftmaxColBlock, m - j0));
      return;
    }
    for (index_t i = 0; i < m; ++i) {
      T* oi = o + i * (s[0] / z);
      const T* xr = xi + i * (s[1] / z);
      if (log) kern<T>().log_softmax_line(oi, as[0] / z, xr, as[1] / z, n);
      else kern<T>().softmax_line(oi, as[0] / z, xr, as[1] / z, n);
    }
  });
  return out;
}

py::array softmax(const py::object& xo, index_t axis, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  py::array x = as_array(xo, op);
  DType dt = float_dtype(x, op);
  if (x.ndim() < 1) throw py::value_error(std::string(op) + ": expected an array of ndim >= 1, got " + describe(x));
  int ax = normalize_axis(axis, int(x.ndim()), op);
  x = aligned(x);
  return dt == DType::f32 ? softmax_typed<float>(x, ax, log) : softmax_typed<double>(x, ax, log);
}

template <class T>
py::array softmax_bwd_typed(py::array y, py::array g, int axis, bool log) {
  py::array out = new_array<T>(std::vector<py::ssize_t>(y.shape(), y.shape() + y.ndim()));
  if (y.size() == 0) return out;
  index_t as[3];
  StridedLoop<3> L = line_loop<3>({out, y, g}, axis, as);
  const index_t n = y.shape(axis);
  const index_t z = sizeof(T);
  NoGilIf nogil(index_t(y.size()) >= kNoGilMin);
  L.for_each(std::max<index_t>(1, (kGrain / 2) / n), [&](char* const* p, const index_t* s, index_t m) {
    T* o = reinterpret_cast<T*>(p[0]);
    const T* yi = reinterpret_cast<const T*>(p[1]);
    const T* gi = reinterpret_cast<const T*>(p[2]);
    if (m >= 8 && n > 1 && std::abs(s[1]) < std::abs(as[1])) {
      for (index_t j0 = 0; j0 < m; j0 += kSoftmaxColBlock)
        kern<T>().softmax_bwd_cols(log, o + j0 * (s[0] / z), s[0] / z, as[0] / z, yi + j0 * (s[1] / z),
                            s[1] / z, as[1] / z, gi + j0 * (s[2] / z), s[2] / z, as[2] / z, n,
                            std::min(kSoftmaxColBlock, m - j0));
      return;
    }
    for (index_t i = 0; i < m; ++i) {
      T* oi = o + i * (s[0] / z);
      const T* yr = yi + i * (s[1] / z);
      const T* gr = gi + i * (s[2] / z);
      if (log) kern<T>().log_softmax_bwd_line(oi, as[0] / z, yr, as[1] / z, gr, as[2] / z, n);
      else kern<T>().softmax_bwd_line(oi, as[0] / z, yr, as[1] / z, gr, as[2] / z, n);
    }
  });
  return out;
}

py::array softmax_bwd(const py::object& yo, const py::object& go, index_t axis, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  py::array y = as_array(yo, op), g = as_array(go, op);
  DType dt = same_float_dtype(op, {&y, &g});
  bool same = y.ndim() == g.ndim();
  for (py::ssize_t d = 0; same && d < y.ndim(); ++d) same = y.shape(d) == g.shape(d);
  if (!same)
    throw py::value_error(std::string(op) + ": y and g must have the same shape, got " + describe(y) +
                          " and " + describe(g));
  if (y.ndim() < 1) throw py::value_error(std::string(op) + ": expected arrays of ndim >= 1, got " + describe(y));
  int ax = normalize_axis(axis, int(y.ndim()), op);
  y = aligned(y);
  g = aligned(g);
  return dt == DType::f32 ? softmax_bwd_typed<float>(y, g, ax, log)
                          : softmax_bwd_typed<double>(y, g, ax, log);
}

// ---- cross entropy ------------------------------------------------------------------------------------
py::array_t<std::int64_t> check_labels(const char* op, const py::object& lo, const py::array& logits) {
  py::array l = as_array(lo, op);
  char k = l.dtype().kind();
  if (k != 'i' && k != 'u')
    throw py::type_error(std::string(op) + ": labels must be an integer array, got " + describe(l));
  if (l.ndim() != 1 || l.shape(0) != logits.shape(0))
    throw py::value_error(std::string(op) + ": labels must have shape (" + std::to_string(logits.shape(0)) +
                          ",) to match logits " + describe(logits) + ", got " + describe(l));
  PyObject* converted = py::detail::npy_api::get().PyArray_FromAny_(
      l.ptr(), py::dtype::of<std::int64_t>().release().ptr(), 0, 0,
      py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_ | py::array::forcecast, nullptr);
  if (!converted) throw py::error_already_set();  // (a MemoryError: the dtype always converts)
  auto labels = py::reinterpret_steal<py::array_t<std::int64_t>>(converted);
  const index_t C = logits.shape(1);
  auto r = labels.unchecked<1>();
  for (py::ssize_t i = 0; i < r.shape(0); ++i) {
    std::int64_t v = r(i);
    if (v < 0 || v >= C)
      throw py::index_error(std::string(op) + ": label " + std::to_string(v) + " (at index " +
                            std::to_string(i) + ") is out of range for " + std::to_string(C) + " classes");
  }
  return labels;
}

void check_logits(const char* op, const py::array& x) {
  if (x.ndim() != 2)
    throw py::value_error(std::string(op) + ": logits must be 2-d (N, C), got " + describe(x));
  if (x.shape(1) == 0) throw py::value_error(std::string(op) + ": logits have no classes (C = 0): " + describe(x));
}

template <class T>
py::tuple cross_entropy_typed(py::array x, py::array_t<std::int64_t> labels) {
  const index_t N = x.shape(0), C = x.shape(1);
  py::array_t<T> loss(std::vector<py::ssize_t>{py::ssize_t(N)}), lse(std::vector<py::ssize_t>{py::ssize_t(N)});
  const char* base = static_cast<const char*>(x.data());
  const index_t rs = x.strides(0), cs = x.strides(1) / index_t(sizeof(T));
  const std::int64_t* lab = labels.data();
  const index_t ls = labels.strides(0) / index_t(sizeof(std::int64_t));
  T* lo = loss.mutable_data();
  T* le = lse.mutable_data();
  {
    NoGilIf nogil(true);
    parallel_for(N, std::max<index_t>(1, (kGrain / 4) / C), [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) {
        const T* r = reinterpret_cast<const T*>(base + i * rs);
        T m = kern<T>().max_line(r, C, cs);
        const T xl = r[lab[i * ls] * cs];
        if (m - m == T(0)) {
          // loss = (m - x[label]) + log(s) in double: not through the rounded lse, so it stays
          // exact to the dtype's precision when lse is large (logits ~ 1e4)
          const double ls_ = math::log(kern<T>().sumexp_line(r, C, cs, m));
          le[i] = T(double(m) + ls_);
          lo[i] = T((double(m) - double(xl)) + ls_);
        } else {  // NaN or +-inf in the row
          le[i] = m;
          lo[i] = m - xl;
        }
      }
    });
  }
  return py::make_tuple(loss, lse);
}

py::tuple cross_entropy(const py::object& xo, const py::object& lo) {
  const char* op = "cross_entropy";
  py::array x = as_array(xo, op);
  DType dt = float_dtype(x, op);
  check_logits(op, x);
  auto labels = check_labels(op, lo, x);
  x = aligned(x);
  return dt == DType::f32 ? cross_entropy_typed<float>(x, labels) : cross_entropy_typed<double>(x, labels);
}

template <class T>
py::array cross_entropy_bwd_typed(py::array x, py::array_t<std::int64_t> labels, py::array lse, py::array g) {
  const index_t N = x.shape(0), C = x.shape(1);
  py::array_t<T> out = new_array<T>(std::vector<py::ssize_t>{py::ssize_t(N), py::ssize_t(C)});
  const char* base = static_cast<const char*>(x.data());
  const index_t rs = x.strides(0), cs = x.strides(1) / index_t(sizeof(T));
  const std::int64_t* lab = labels.data();
  const index_t ls = labels.strides(0) / index_t(sizeof(std::int64_t));
  const T* lp = static_cast<const T*>(lse.data());
  const index_t lss = lse.strides(0) / index_t(sizeof(T));
  const T* gp = static_cast<const T*>(g.data());
  const index_t gs = g.strides(0) / index_t(sizeof(T));
  T* op = out.mutable_data();
  {
    NoGilIf nogil(true);
    parallel_for(N, std::max<index_t>(1, (kGrain / 4) / C), [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) {
        const T gi = gp[i * gs];
        T* o = op + i * C;
        const double sum = kern<T>().ce_bwd_exp(o, reinterpret_cast<const T*>(base + i * rs), cs, C, lp[i * lss]);
        // exp(x - lse) sums to 1 but for the rounding of lse (float32 lse of logits ~ 1e4 is
        // off by up to 5e-4): dividing by the sum, while the row is in cache, removes that.
        const bool ok = sum > 0 && sum < std::numeric_limits<double>::infinity();
        kern<T>().ce_bwd_scale(o, C, ok ? T(double(gi) / sum) : gi);
        o[lab[i * ls]] -= gi;
      }
    });
  }
  return out;
}

py::array cross_entropy_bwd(const py::object& xo, const py::object& lo, const py::object& lseo,
                            const py::object& go) {
  const char* op = "cross_entropy_backward";
  py::array x = as_array(xo, op), lse = as_array(lseo, op), g = as_array(go, op);
  DType dt = same_float_dtype(op, {&x, &lse, &g});
  check_logits(op, x);
  auto labels = check_labels(op, lo, x);
  for (const py::array* a : {&lse, &g})
    if (a->ndim() != 1 || a->shape(0) != x.shape(0))
      throw py::value_error(std::string(op) + ": lse and g must have shape (" + std::to_string(x.shape(0)) +
                            ",) to match logits " + describe(x) + ", got " + describe(*a));
  x = aligned(x);
  lse = aligned(lse);
  g = aligned(g);
  return dt == DType::f32 ? cross_entropy_bwd_typed<float>(x, labels, lse, g)
                          : cross_entropy_bwd_typed<double>(x, labels, lse, g);
}

}  // namespace

void bind_softmax(py::module_& m) {
  m.def("softmax", [](py::object x, index_t axis) { return softmax(x, axis, false); }, py::arg("x"),
        py::arg("axis") = -1,
        "exp(x - max) / sum along axis (any axis, ndim >= 1). A slice that is all -inf gives NaN "
        "(as PyTorch).");
  m.def("log_softmax", [](py::object x, index_t axis) { return softmax(x, axis, true); }, py::arg("x"),
        py::arg("axis") = -1,
        "x - max - log(sum(exp(x - max))) along axis. A slice that is all -inf gives NaN.");
  m.def("softmax_backward", [](py::object y, py::object g, index_t axis) { return softmax_bwd(y, g, axis, false); },
        py::arg("y"), py::arg("g"), py::arg("axis") = -1,
        "Gradient of softmax from its output y: y * (g - sum(g * y, axis)).");
  m.def("log_softmax_backward",
        [](py::object y, py::object g, index_t axis) { return softmax_bwd(y, g, axis, true); },
        py::arg("y"), py::arg("g"), py::arg("axis") = -1,
        "Gradient of log_softmax from its output y: g - exp(y) * sum(g, axis).");
  m.def("cross_entropy", &cross_entropy, py::arg("logits"), py::arg("labels"),
        "(loss, lse) for logits (N, C) and integer labels (N,): lse = logsumexp of each row, "
        "loss = lse - logits[i, label]. Labels outside [0, C): IndexError.");
  m.def("cross_entropy_backward", &cross_entropy_bwd, py::arg("logits"), py::arg("labels"), py::arg("lse"),
        py::arg("g"),
        "dlogits = (exp(logits - lse[:, None]) - onehot(labels)) * g[:, None], fused per row "
        "(exp(logits - lse) renormalised by its row sum, which absorbs the rounding of lse).");
}

}  // namespace gf
