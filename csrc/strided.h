// N-d strided iteration for the elementwise and reduction kernels.
//
// A StridedLoop<K> describes K operands (operand 0 is usually the output) that share one
// logical shape, each with its own byte strides (any sign, 0 for broadcast dimensions). It is
// built from numpy arrays without copying them, then `collapse()`d: size-1 dimensions are
// dropped and adjacent dimensions that every operand walks as one are merged, so a contiguous
// array becomes 1-d and a row broadcast becomes (rows, cols) with stride 0 rows for the
// broadcast operand. `for_each` then splits the flat index range across threads and calls
// f(ptrs, inner_strides, n) for runs along the innermost dimension: the hot kernels see plain
// 1-d loops with (usually) unit or zero strides.
#pragma once

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace gf {

constexpr int kMaxDims = 64;  // numpy 2's NPY_MAXDIMS

// numpy's broadcast of several shapes, or ValueError naming the op and every operand.
inline std::vector<index_t> broadcast_shapes(const char* op,
                                             std::initializer_list<const py::array*> arrays) {
  int nd = 0;
  for (const py::array* a : arrays) nd = std::max<int>(nd, int(a->ndim()));
  std::vector<index_t> shape(nd, 1);
  for (const py::array* a : arrays) {
    int off = nd - int(a->ndim());
    for (int d = 0; d < int(a->ndim()); ++d) {
      index_t s = a->shape(d);
      index_t& r = shape[off + d];
      if (s == r || s == 1) continue;
      if (r == 1) {
        r = s;
        continue;
      }
      std::string msg = std::string(op) + ": operands could not be broadcast together: ";
      size_t i = 0;
      for (const py::array* b : arrays) {
        if (i) msg += (i + 1 == arrays.size()) ? " and " : ", ";
        msg += describe(*b);
        ++i;
      }
      throw py::value_error(msg);
    }
  }
  return shape;
}

inline std::string shape_to_str(const std::vector<index_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) r += ",";
  return r + ")";
}

template <int K>
struct StridedLoop {
  int ndim = 0;
  index_t shape[kMaxDims];
  index_t strides[K][kMaxDims];  // bytes
  char* data[K];

  index_t size() const {
    index_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }

  void set_shape(const std::vector<index_t>& s) {
    ndim = int(s.size());
    for (int d = 0; d < ndim; ++d) shape[d] = s[d];
  }

  // Operand k is `a`, broadcast (right-aligned, numpy rules) to this loop's shape.
  void set_operand(int k, const py::array& a) {
    data[k] = static_cast<char*>(const_cast<void*>(a.data()));
    int off = ndim - int(a.ndim());
    for (int d = 0; d < ndim; ++d) {
      int ad = d - off;
      strides[k][d] = (ad < 0 || a.shape(ad) == 1) ? 0 : index_t(a.strides(ad));
    }
  }
  // Operand k from raw pointer and strides given per dimension of this loop.
  void set_operand(int k, void* p, const index_t* st) {
    data[k] = static_cast<char*>(p);
    for (int d = 0; d < ndim; ++d) strides[k][d] = st[d];
  }

  // Drops size-1 dimensions and merges adjacent dimensions that every operand walks as one.
  // A 0-d loop becomes a 1-d loop of one element.
  void collapse() {
    int nd = 0;
    for (int d = 0; d < ndim; ++d) {
      if (shape[d] == 1) continue;
      shape[nd] = shape[d];
      for (int k = 0; k < K; ++k) strides[k][nd] = strides[k][d];
      ++nd;
    }
    ndim = nd;
    if (ndim == 0) {
      ndim = 1;
      shape[0] = 1;
      for (int k = 0; k < K; ++k) strides[k][0] = 0;
      return;
    }
    int w = 0;  // merged dims written so far, last one at w
    for (int d = 1; d < ndim; ++d) {
      bool ok = true;
      for (int k = 0; k < K; ++k)
        if (strides[k][w] != strides[k][d] * shape[d]) ok = false;
      if (ok) {
        shape[w] *= shape[d];
        for (int k = 0; k < K; ++k) strides[k][w] = strides[k][d];
      } else {
        ++w;
        shape[w] = shape[d];
        for (int k = 0; k < K; ++k) strides[k][w] = strides[k][d];
      }
    }
    ndim = w + 1;
  }

  // Calls f(ptrs, inner_strides, n) for consecutive runs along the innermost dimension that
  // cover flat indices [b, e) (C order over `shape`).
  template <class F>
  void run_range(index_t b, index_t e, F&& f) const {
    run_range_at(data, b, e, f);
  }
  // The same with other base pointers (the strides and shape of this loop, other data).
  template <class F>
  void run_range_at(char* const* base, index_t b, index_t e, F&& f) const {
    if (b >= e) return;
    index_t idx[kMaxDims];
    char* p[K];
    index_t rem = b;
    for (int k = 0; k < K; ++k) p[k] = base[k];
    for (int d = ndim - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (int k = 0; k < K; ++k) p[k] += idx[d] * strides[k][d];
    }
    const int last = ndim - 1;
    index_t inner[K];
    for (int k = 0; k < K; ++k) inner[k] = strides[k][last];
    index_t pos = b;
    while (pos < e) {
      index_t n = std::min(shape[last] - idx[last], e - pos);
      f(p, static_cast<const index_t*>(inner), n);
      pos += n;
      if (pos >= e) break;
      // The run ended at the end of its row: back to the row's start, then carry.
      for (int k = 0; k < K; ++k) p[k] -= idx[last] * inner[k];
      idx[last] = 0;
      for (int d = last - 1; d >= 0; --d) {
        ++idx[d];
        for (int k = 0; k < K; ++k) p[k] += strides[k][d];
        if (idx[d] < shape[d]) break;
        for (int k = 0; k < K; ++k) p[k] -= shape[d] * strides[k][d];
        idx[d] = 0;
      }
    }
  }

  // The whole loop, split across threads when it has more than `grain` elements: into whole
  // innermost rows when it has several, so that f sees the same runs whatever the split.
  template <class F>
  void for_each(index_t grain, F&& f) const {
    const index_t n = size();
    if (ndim <= 1) {
      parallel_for(n, grain, [&](index_t b, index_t e) { run_range(b, e, f); });
      return;
    }
    const index_t row = shape[ndim - 1];
    if (row == 0) return;
    parallel_for(n / row, (grain + row - 1) / row,
                 [&](index_t b, index_t e) { run_range(b * row, e * row, f); });
  }
};

// The byte range [lo, hi) that an array's elements occupy.
inline void byte_bounds(const py::array& a, const char*& lo, const char*& hi) {
  const char* p = static_cast<const char*>(a.data());
  lo = hi = p;
  if (a.size() == 0) return;
  const char* l = p;
  const char* h = p;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    index_t ext = index_t(a.strides(d)) * (index_t(a.shape(d)) - 1);
    if (ext < 0) l += ext;
    else h += ext;
  }
  lo = l;
  hi = h + a.itemsize();
}

// True if a and b are the very same view (same data, shape and strides).
inline bool same_view(const py::array& a, const py::array& b) {
  if (a.data() != b.data() || a.ndim() != b.ndim()) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.shape(d) != b.shape(d) || (a.shape(d) > 1 && a.strides(d) != b.strides(d))) return false;
  return true;
}

inline bool overlaps(const py::array& a, const py::array& b) {
  const char *al, *ah, *bl, *bh;
  byte_bounds(a, al, ah);
  byte_bounds(b, bl, bh);
  return al < bh && bl < ah;
}

// A strided view whose strides are not multiples of its item size, or whose data is not
// aligned, cannot be walked as T*: such (rare) arrays are copied.
inline py::array aligned(const py::array& a) {
  bool ok = (reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize()) == 0;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.strides(d) % a.itemsize() != 0) ok = false;
  if (ok) return a;
  return py::module_::import("numpy").attr("array")(a, py::arg("copy") = true,
                                                     py::arg("order") = "C");
}

}  // namespace gf
