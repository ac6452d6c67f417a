// Elementwise binary kernels with numpy broadcasting: arithmetic (add, sub, mul, div, pow,
// maximum, minimum; optional out= for in-place updates), comparisons (bool results) and where.
//
// Operands are walked through their own strides (views are never copied, broadcast
// dimensions have stride 0) by StridedLoop, which collapses the loop to as few dimensions as
// possible; the innermost run goes to a multi-versioned kernel with fast paths for the
// contiguous, scalar-operand and row-broadcast cases.
#include <cmath>
#include <cstdint>

#include "common.h"
#include "strided.h"

namespace gf {
namespace {

// ---- the ops ---------------------------------------------------------------------------------
struct Add { template <class T> static T f(T a, T b) { return a + b; } };
struct Sub { template <class T> static T f(T a, T b) { return a - b; } };
struct Mul { template <class T> static T f(T a, T b) { return a * b; } };
struct Div { template <class T> static T f(T a, T b) { return a / b; } };
struct Pow { template <class T> static T f(T a, T b) { return std::pow(a, b); } };
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
GF_DISPATCH void binary_run(R* o, index_t so, const T* a, index_t sa, const T* b, index_t sb,
                            index_t n) {
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

template <class T>
GF_DISPATCH void where_run(T* o, index_t so, const std::uint8_t* c, index_t sc, const T* a,
                           index_t sa, const T* b, index_t sb, index_t n) {
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

template <class Op, class T, class R>
py::array binary_typed(py::array a, py::array b, py::object out_obj, const char* name) {
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
  const index_t grain = std::is_same<Op, Pow>::value ? kGrain / 8 : kGrain;
  {
    NoGilIf nogil(L.size() >= kNoGilMin);
    L.for_each(grain, [](char* const* p, const index_t* s, index_t n) {
      binary_run<Op, T, R>(reinterpret_cast<R*>(p[0]), s[0] / index_t(sizeof(R)),
                           reinterpret_cast<const T*>(p[1]), s[1] / index_t(sizeof(T)),
                           reinterpret_cast<const T*>(p[2]), s[2] / index_t(sizeof(T)), n);
    });
  }
  return out;
}

// Same shape, both C-contiguous, no out=: the common case of an op on two tensors of one shape
// skips the broadcast bookkeeping (it dominates the cost of small ops).
template <class Op, class T, class R>
py::array binary_flat(const py::array& a, const py::array& b) {
  py::array out = new_array<R>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  R* o = static_cast<R*>(out.mutable_data());
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  const index_t grain = std::is_same<Op, Pow>::value ? kGrain / 8 : kGrain;
  {
    NoGilIf nogil(index_t(a.size()) >= kNoGilMin);
    parallel_for(index_t(a.size()), grain, [&](index_t lo, index_t hi) {
      binary_run<Op, T, R>(o + lo, 1, pa + lo, 1, pb + lo, 1, hi - lo);
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

template <class Op, bool Compare>
py::array binary(const char* name, py::array a, py::array b, py::object out) {
  DType dt = same_float_dtype(name, {&a, &b});
  using R32 = typename std::conditional<Compare, bool, float>::type;
  using R64 = typename std::conditional<Compare, bool, double>::type;
  if (out.is_none() && flat_pair(a, b))
    return dt == DType::f32 ? binary_flat<Op, float, R32>(a, b) : binary_flat<Op, double, R64>(a, b);
  return dt == DType::f32 ? binary_typed<Op, float, R32>(a, b, out, name)
                          : binary_typed<Op, double, R64>(a, b, out, name);
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
    L.for_each(kGrain, [](char* const* p, const index_t* s, index_t n) {
      const index_t z = sizeof(T);
      where_run<T>(reinterpret_cast<T*>(p[0]), s[0] / z,
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
#define GF_BIN(name, Op, doc)                                                          \
  m.def(                                                                               \
      #name,                                                                           \
      [](py::object a, py::object b, py::object out) {                                 \
        return binary<Op, false>(#name, as_array(a, #name), as_array(b, #name), out);  \
      },                                                                               \
      py::arg("a"), py::arg("b"), py::arg("out") = py::none(),                         \
      doc " with numpy broadcasting; float32/float64, equal dtypes. out= (an array of " \
          "the broadcast shape and dtype, possibly an input itself) computes in place.");
  GF_BIN(add, Add, "a + b")
  GF_BIN(sub, Sub, "a - b")
  GF_BIN(mul, Mul, "a * b")
  GF_BIN(div, Div, "a / b")
  GF_BIN(pow, Pow, "std::pow(a, b)")
  GF_BIN(maximum, Maximum, "Elementwise max (NaN propagates)")
  GF_BIN(minimum, Minimum, "Elementwise min (NaN propagates)")
#undef GF_BIN
#define GF_CMP(name, Op, doc)                                                                 \
  m.def(                                                                                      \
      #name,                                                                                  \
      [](py::object a, py::object b) {                                                        \
        return binary<Op, true>(#name, as_array(a, #name), as_array(b, #name), py::none());   \
      },                                                                                      \
      py::arg("a"), py::arg("b"), doc " as a numpy bool array, with numpy broadcasting.");
  GF_CMP(eq, Eq, "a == b")
  GF_CMP(ne, Ne, "a != b")
  GF_CMP(lt, Lt, "a < b")
  GF_CMP(le, Le, "a <= b")
  GF_CMP(gt, Gt, "a > b")
  GF_CMP(ge, Ge, "a >= b")
#undef GF_CMP
  m.def("where", &where, py::arg("cond"), py::arg("a"), py::arg("b"),
        "cond ? a : b elementwise; cond a bool array, a and b the same float dtype; all three "
        "broadcast together.");
}

}  // namespace gf
