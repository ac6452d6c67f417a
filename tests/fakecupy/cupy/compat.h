// What CuPy's generated kernel source needs from CUDA, for g++ on the host: the qualifiers, the
// thread coordinates of a single thread (block 0, thread 0, grid and block of one, so CUPY_FOR
// visits every index in order) and CuPy's CArray / CIndexer with CuPy's field layout
// (cupy/_core/include/cupy/carray.cuh), which the launcher fills from ctypes buffers.
#include <cmath>
#include <cstddef>
#include <cstring>
#include <math.h>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__
#define __syncthreads()

struct gf_dim3 { unsigned int x, y, z; };
static const gf_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static const gf_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
inline long long __double_as_longlong(double v) { long long i; std::memcpy(&i, &v, 8); return i; }
inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int __float_as_int(float v) { int i; std::memcpy(&i, &v, 4); return i; }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }

#define CUPY_FOR(i, n) for (ptrdiff_t i = 0; i < (n); ++i)

template <typename T, int _ndim, bool _c_contiguous = false, bool _use_32bit_indexing = false>
class CArray {
 public:
  static const int ndim = _ndim;
  typedef typename std::conditional<_use_32bit_indexing, int, ptrdiff_t>::type index_t;
  T* data_;
  ptrdiff_t size_;
  ptrdiff_t shape_[_ndim];
  ptrdiff_t strides_[_ndim];

  ptrdiff_t size() const { return size_; }
  const ptrdiff_t* shape() const { return shape_; }
  const ptrdiff_t* strides() const { return strides_; }
  T* data() const { return data_; }

  template <typename Int> T& operator[](const Int (&idx)[_ndim]) const {
    index_t diff = 0;
    for (int dim = 0; dim < _ndim; ++dim)
      diff += static_cast<index_t>(strides_[dim]) * static_cast<index_t>(idx[dim]);
    return *reinterpret_cast<T*>(reinterpret_cast<char*>(data_) + diff);
  }
  T& operator[](ptrdiff_t idx) const {
    if (_c_contiguous) return data_[idx];
    index_t diff = 0;
    index_t i = static_cast<index_t>(idx);
    for (int dim = _ndim; --dim > 0;) {
      index_t s = static_cast<index_t>(shape_[dim]);
      diff += static_cast<index_t>(strides_[dim]) * (i % s);
      i /= s;
    }
    diff += static_cast<index_t>(strides_[0]) * i;
    return *reinterpret_cast<T*>(reinterpret_cast<char*>(data_) + diff);
  }
};

template <typename T, bool _use_32bit_indexing>
class CArray<T, 0, true, _use_32bit_indexing> {
 public:
  static const int ndim = 0;
  T* data_;
  ptrdiff_t size_;
  ptrdiff_t size() const { return size_; }
  template <typename U> T& operator[](const U&) const { return *data_; }
};

template <int _ndim, bool _use_32bit_indexing = false>
class CIndexer {
 public:
  static const int ndim = _ndim;
  typedef ptrdiff_t index_t[_ndim];
  ptrdiff_t size_;
  ptrdiff_t shape_[_ndim];
  ptrdiff_t index_[_ndim];

  ptrdiff_t size() const { return size_; }
  const index_t& get() const { return index_; }
  void set(ptrdiff_t i) {
    for (int dim = _ndim; --dim > 0;) {
      index_[dim] = i % shape_[dim];
      i /= shape_[dim];
    }
    index_[0] = i;
  }
};

template <bool _use_32bit_indexing>
class CIndexer<0, _use_32bit_indexing> {
 public:
  static const int ndim = 0;
  ptrdiff_t size_;
  ptrdiff_t size() const { return size_; }
  void set(ptrdiff_t) {}
  const ptrdiff_t* get() const { return nullptr; }
};
