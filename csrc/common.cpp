#include "common.h"

#include <cblas.h>

#include <sstream>

namespace gf {

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  if (n < 1) throw py::value_error("set_num_threads: need n >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
  // One count for both pools: the BLAS is only ever called outside OpenMP regions, so the two
  // never run at once and never oversubscribe the cores.
  scipy_openblas_set_num_threads(n);
}

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s << ", ";
    s << a.shape(i);
  }
  if (a.ndim() == 1) s << ",";
  s << ")";
  return s.str();
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

std::string describe(const py::array& a) { return dtype_str(a) + " array of shape " + shape_str(a); }

DType float_dtype(const py::array& a, const char* op) {
  if (a.dtype().kind() == 'f') {
    if (a.itemsize() == 4) return DType::f32;
    if (a.itemsize() == 8) return DType::f64;
  }
  throw py::type_error(std::string(op) + ": expected a float32 or float64 array, got " + describe(a));
}

DType same_float_dtype(const char* op, std::initializer_list<const py::array*> arrays) {
  DType d = float_dtype(**arrays.begin(), op);
  for (const py::array* a : arrays) {
    if (float_dtype(*a, op) != d) {
      std::string msg = std::string(op) + ": dtypes differ:";
      for (const py::array* b : arrays) msg += " " + describe(*b) + ";";
      throw py::type_error(msg);
    }
  }
  return d;
}

int normalize_axis(index_t axis, int ndim, const char* op) {
  if (axis < -ndim || axis >= ndim)
    throw py::index_error(std::string(op) + ": axis " + std::to_string(axis) +
                          " is out of range for an array of " + std::to_string(ndim) + " dimensions");
  return int(axis < 0 ? axis + ndim : axis);
}

}  // namespace gf
