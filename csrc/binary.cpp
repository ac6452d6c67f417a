// Elementwise binary kernels with numpy broadcasting: arithmetic (add, sub, mul, div, pow,
// maximum, minimum; optional out= for in-place updates), comparisons (bool results) and where.
//
// Operands are walked through their own strides (views are never copied, broadcast
// dimensions have stride 0) by StridedLoop, which collapses the loop to as few dimensions as
// possible; the innermost run goes to a kernel of kernels/binary.h (compiled per instruction-set
// level) with fast paths for the contiguous, scalar-operand and row-broadcast cases.
#include <cmath>
#include <cstdint>

#include "common.h"
#include "kernels/table.h"
#include "strided.h"

namespace gf {
namespace {

// One strided run of an op (strides in elements): a binary_run of kernels/binary.h.
template <class T, class R>
using BinaryFn = void (*)(R*, index_t, const T*, index_t, const T*, index_t, index_t);

// ---- drivers ---------------------------------------------------------------------------------------
// Validates `out` for `op`: an ndarray of exactly `shape` and dtype `dt`, writeable.
py::array check_out(const char* op, const py::object& out_obj, const std::vector<index_t>& shape,
                    const py::array& like) {
  if (!py::isinstance<py::array>(out_obj))
    throw py::type_error(std::string(op) + ": out must be a numpy array, got " +
                         py::str(py::type::of(out_obj)).cast<std::string>());
  py::array out = py::reinterpret_borrow<py::array>(out_obj);
  if (!out.dtype().is(like.dtype()) && !out.dtype().equal(like.dtype()))
    throw py::type_error(std::string(op) + ": out has dtype " + dtype_str(out) + ", expected " +
                         dtype_str(like));
  bool same = index_t(out.ndim()) == index_t(shape.size());
  for (size_t d = 0; same && d < shape.size(); ++d) same = out.shape(d) == shape[d];
  if (!same)
    throw py::value_error(std::string(op) + ": out has shape " + shape_str(out) +
                          ", expected the broadcast shape " + shape_to_str(shape));
  if (!out.writeable())
    throw py::value_error(std::string(op) + ": out is read-only");
  bool ok = (reinterpret_cast<std::uintptr_t>(out.data()) % out.itemsize()) == 0;
  for (py::ssize_t d = 0; d < out.ndim(); ++d)
    if (out.strides(d) % out.itemsize() != 0) ok = false;
  if (!ok) throw py::value_error(std::string(op) + ": out is not aligned to its item size");
  return out;
}

// An input that shares memory with `out` other than as the very same view is copied first,
// so that writing out never changes input elements not yet read.
py::array detach_from(const py::array& in, const py::array& out) {
  if (in.size() == 0 || out.size() == 0 || same_view(in, out) || !overlaps(in, out)) return in;
  return py::module_::import("numpy").attr("array")(in, py::arg("copy") = true);
}

template <class T, class R>
py::array binary_typed(py::array a, py::array b, py::object out_obj, const char* name,
                       BinaryFn<T, R> run, index_t grain) {
  std::vector<index_t> shape = broadcast_shapes(name, {&a, &b});
  py::array out;
  if (!out_obj.is_none()) {
    out = check_out(name, out_obj, shape, a);
    a = detach_from(a, out);
    b = detach_from(b, out);
  } else {
    out = new_array<R>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  }
  a = aligned(a);
  b = aligned(b);
  StridedLoop<3> L;
  L.set_shape(shape);
  L.set_operand(0, out);
  L.set_operand(1, a);
  L.set_operand(2, b);
  L.collapse();
  {
    NoGilIf nogil(L.size() >= kNoGilMin);
    L.for_each(grain, [run](char* const* p, const index_t* s, index_t n) {
      run(reinterpret_cast<R*>(p[0]), s[0] / index_t(sizeof(R)),
                           reinterpret_cast<const T*>(p[1]), s[1] / index_t(sizeof(T)),
                           reinterpret_cast<const T*>(p[2]), s[2] / index_t(sizeof(T)), n);
    });
  }
  return out;
}

// Same shape, both C-contiguous, no out=: the common case of an op on two tensors of one shape
// skips the broadcast bookkeeping (it dominates the cost of small ops).
template <class T, class R>
py::array binary_flat(const py::array& a, const py::array& b, BinaryFn<T, R> run, index_t grain) {
  py::array out = new_array<R>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  R* o = static_cast<R*>(out.mutable_data());
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  {
    NoGilIf nogil(index_t(a.size()) >= kNoGilMin);
    parallel_for(index_t(a.size()), grain, [&](index_t lo, index_t hi) {
      run(o + lo, 1, pa + lo, 1, pb + lo, 1, hi - lo);
    });
  }
  return out;
}

bool flat_pair(const py::array& a, const py::array& b) {
  const auto c = py::array::c_style;
  if (a.ndim() != b.ndim() || !(a.flags() & c) || !(b.flags() & c)) return false;
  for (const py::array* x : {&a, &b})
    if (reinterpret_cast<std::uintptr_t>(x->data()) % x->itemsize() != 0) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.shape(d) != b.shape(d)) return false;
  return true;
}

// run32 / run64: the op's kernels for the two dtypes; R32 / R64 their result types.
template <class R32, class R64>
py::array binary(const char* name, py::array a, py::array b, py::object out,
                 BinaryFn<float, R32> run32, BinaryFn<double, R64> run64, index_t grain) {
  DType dt = same_float_dtype(name, {&a, &b});
  if (out.is_none() && flat_pair(a, b))
    return dt == DType::f32 ? binary_flat<float>(a, b, run32, grain)
                            : binary_flat<double>(a, b, run64, grain);
  return dt == DType::f32 ? binary_typed<float>(a, b, out, name, run32, grain)
                          : binary_typed<double>(a, b, out, name, run64, grain);
}

template <class T>
py::array where_typed(py::array c, py::array a, py::array b) {
  std::vector<index_t> shape = broadcast_shapes("where", {&c, &a, &b});
  py::array out = new_array<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  a = aligned(a);
  b = aligned(b);
  StridedLoop<4> L;
  L.set_shape(shape);
  L.set_operand(0, out);
  L.set_operand(1, c);
  L.set_operand(2, a);
  L.set_operand(3, b);
  L.collapse();
  {
    NoGilIf nogil(L.size() >= kNoGilMin);
    const auto run = kern<T>().where;
    L.for_each(kGrain, [run](char* const* p, const index_t* s, index_t n) {
      const index_t z = sizeof(T);
      run(reinterpret_cast<T*>(p[0]), s[0] / z,
          reinterpret_cast<const std::uint8_t*>(p[1]), s[1],
          reinterpret_cast<const T*>(p[2]), s[2] / z,
          reinterpret_cast<const T*>(p[3]), s[3] / z, n);
    });
  }
  return out;
}

py::array where(py::object c_, py::object a_, py::object b_) {
  py::array c = as_array(c_, "where"), a = as_array(a_, "where"), b = as_array(b_, "where");
  if (c.dtype().kind() != 'b')
    throw py::type_error("where: cond must be a bool array, got " + describe(c));
  DType dt = same_float_dtype("where", {&a, &b});
  return dt == DType::f32 ? where_typed<float>(c, a, b) : where_typed<double>(c, a, b);
}

}  // namespace

void bind_binary(py::module_& m) {
#define GF_BIN(name, grain, doc)                                                        \
  m.def(                                                                                \
      #name,                                                                            \
      [](py::object a, py::object b, py::object out) {                                  \
        return binary(#name, as_array(a, #name), as_array(b, #name), out,               \
                      kern<float>().name, kern<double>().name, grain);                  \
      },                                                                                \
      py::arg("a"), py::arg("b"), py::arg("out") = py::none(),                          \
      doc " with numpy broadcasting; float32/float64, equal dtypes. out= (an array of " \
          "the broadcast shape and dtype, possibly an input itself) computes in place.");
  GF_BIN(add, kGrain, "a + b")
  GF_BIN(sub, kGrain, "a - b")
  GF_BIN(mul, kGrain, "a * b")
  GF_BIN(div, kGrain, "a / b")
  GF_BIN(pow, kGrain / 8, "a ** b (C's pow)")  // an exp and a log per element: threads pay off sooner
  GF_BIN(maximum, kGrain, "Elementwise max (NaN propagates)")
  GF_BIN(minimum, kGrain, "Elementwise min (NaN propagates)")
#undef GF_BIN
#define GF_CMP(name, doc)                                                        \
  m.def(                                                                         \
      #name,                                                                     \
      [](py::object a, py::object b) {                                           \
        return binary(#name, as_array(a, #name), as_array(b, #name), py::none(), \
                      kern<float>().name, kern<double>().name, kGrain);          \
      },                                                                         \
      py::arg("a"), py::arg("b"), doc " as a numpy bool array, with numpy broadcasting.");
  GF_CMP(eq, "a == b")
  GF_CMP(ne, "a != b")
  GF_CMP(lt, "a < b")
  GF_CMP(le, "a <= b")
  GF_CMP(gt, "a > b")
  GF_CMP(ge, "a >= b")
#undef GF_CMP
  m.def("where", &where, py::arg("cond"), py::arg("a"), py::arg("b"),
        "cond ? a : b elementwise; cond a bool array, a and b the same float dtype; all three "
        "broadcast together.");
}

}  // namespace gf
