// Shared helpers for the CPU kernels: dtype dispatch, argument checks that raise Python
// exceptions, and the parallel loop with its small-input cut-off.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/types.h"  // index_t
#include "thread_pool.h"

namespace py = pybind11;

namespace gf {

// ---- threads -------------------------------------------------------------------------------
// Below this many elements an op runs on the calling thread: waking a worker costs more than
// the work. Kernels whose per-element cost is high (erf, exp) may pass a smaller grain.
constexpr index_t kGrain = 1 << 15;
// Chunks per thread when a loop is split: with several each, the threads that run finish the
// chunks of one that is descheduled (another process on its core) instead of waiting for it.
constexpr int kChunksPerThread = 4;
// How much larger a loop must be to wake a sleeping worker for it (see pool_asleep): the
// training step of a small network has one such loop (its optimizer's update) between long
// stretches of single-threaded work, and waking a worker for it cost more than it saved. At 4x,
// exp-based activations of 2^16 elements (25-60 us) ran 1.5-2x faster on an idle machine but
// up to 2x slower than one thread beside a busy process: short jobs gain microseconds from a
// second thread and lose milliseconds when it is descheduled holding a chunk.
constexpr index_t kWakeFactor = 16;

// The count is process-wide: set from any thread, it holds for every thread's kernels.
int num_threads();          // threads gradflow's kernels (and its matrix products) may use
void set_num_threads(int);
// At import: the starting count (OMP_NUM_THREADS, else the CPUs this process may run on) and
// the BLAS's own threading; forked children run on one thread.
void init_threads();

// Runs f(c) for every c in [0, chunks), on the pool's threads and this one (see
// thread_pool.h). f must not throw (exceptions cannot cross threads here): check arguments
// before calling.
template <class F>
void parallel_chunks(int chunks, F&& f) {
  if (chunks <= 0) return;
  const int nt = num_threads();
  if (nt <= 1 || chunks == 1) {
    for (int c = 0; c < chunks; ++c) f(c);
    return;
  }
  using Fn = std::remove_reference_t<F>;
  pool_run(chunks, std::min(nt, chunks), [](void* p, int c) { (*static_cast<Fn*>(p))(c); },
           const_cast<void*>(static_cast<const void*>(&f)));
}

// Runs f(begin, end) over [0, n) split into contiguous chunks of at least `grain` elements
// (a few per thread, taken dynamically), or inline when n is small. Chunks of 64 elements or
// more start on multiples of 64: a vectorised loop then leaves the same elements to its scalar
// tail whatever the thread count, so that results never depend on it. f must not throw.
constexpr index_t kSplitAlign = 64;
template <class F>
void parallel_for(index_t n, index_t grain, F&& f) {
  const int nt = num_threads();
  if (n <= grain || nt <= 1 || (n <= grain * kWakeFactor && pool_asleep(nt))) {
    if (n > 0) f(index_t(0), n);
    return;
  }
  const index_t chunks = std::min<index_t>(index_t(nt) * kChunksPerThread, (n + grain - 1) / grain);
  const index_t align = n / chunks >= kSplitAlign ? kSplitAlign : 1;
  const index_t units = (n + align - 1) / align;
  parallel_chunks(int(chunks), [&](int c) {
    const index_t b = std::min(n, units * c / chunks * align);
    const index_t e = std::min(n, units * (c + 1) / chunks * align);
    if (b < e) f(b, e);
  });
}

// Releases the GIL for its scope when an op touches at least kNoGilMin elements. Releasing and
// re-taking it costs more than a small op's whole work (the per-op overhead matters there), and
// only a long op gains from letting other Python threads run meanwhile.
constexpr index_t kNoGilMin = 1 << 12;

// Takes the GIL back after a kernel ran without it. A thread that asks for the GIL once the
// interpreter is finalizing (a daemon thread still in a kernel when the program ends) is ended
// by CPython 3.11-3.13 with pthread_exit, whose unwinding cannot cross this noexcept code
// (std::terminate). Such a thread waits here instead until the process exits, never touching
// Python again, as CPython 3.14 makes such threads do.
void reacquire_gil(PyThreadState* state) noexcept;
// Kernels running without the GIL now: the process's exit waits for them (see init_threads),
// so that no kernel is still reading the BLAS's or the allocator's state as it is torn down.
extern std::atomic<int> kernels_without_gil;

// Every kernel releases the GIL through this guard (never through py::gil_scoped_release).
class NoGilIf {
 public:
  explicit NoGilIf(bool release) : state_(nullptr) {
    if (release) {
      kernels_without_gil.fetch_add(1, std::memory_order_relaxed);
      state_ = PyEval_SaveThread();
    }
  }
  ~NoGilIf() {
    if (state_) reacquire_gil(state_);
  }
  NoGilIf(const NoGilIf&) = delete;
  NoGilIf& operator=(const NoGilIf&) = delete;

 private:
  PyThreadState* state_;
};

// ---- input arrays ----------------------------------------------------------------------------
// `a` itself when it is C-contiguous, else a C-contiguous copy. Raises the Python error (a
// MemoryError when the copy cannot be allocated) instead of returning an empty handle.
py::array c_contiguous(const py::array& a);
// Any array-like as an ndarray (ndarrays pass unchanged): TypeError naming the op for what
// numpy cannot convert; a MemoryError stays a MemoryError.
py::array as_array(const py::object& o, const char* op);

// ---- output arrays ---------------------------------------------------------------------------
// New C-contiguous arrays for kernel outputs. Large buffers are recycled: when such an array
// dies, its buffer goes to a small cache that the next output of the same byte size takes, so
// that ops repeated on big tensors (every training step) write into memory that is already
// mapped instead of page-faulting a fresh mmap'd block (which cost as much as the op itself).
void* buffer_acquire(std::size_t nbytes);
void buffer_release(void* p, std::size_t nbytes);
std::size_t buffer_cache_bytes();
std::size_t buffer_fresh_count();  // output buffers allocated so far (not taken from the cache)
bool buffer_in_use(const void* p);  // whether p is the start of a buffer acquire handed out
void buffer_cache_clear();

template <class T>
py::array_t<T> new_array(const std::vector<py::ssize_t>& shape) {
  std::size_t count = 1;
  for (auto d : shape) count *= std::size_t(d);
  const std::size_t nbytes = count * sizeof(T);
  constexpr std::size_t kCacheMin = 1 << 18;  // smaller blocks come from malloc's own free lists
  if (nbytes < kCacheMin) return py::array_t<T>(shape);
  void* p = buffer_acquire(nbytes);
  py::capsule owner(p, [](void* q) {
    // The byte count sits just before the data (see buffer_acquire).
    buffer_release(q, static_cast<std::size_t*>(q)[-8]);
  });
  return py::array_t<T>(shape, static_cast<T*>(p), owner);
}

// ---- argument checks -------------------------------------------------------------------------
std::string shape_str(const py::array& a);
std::string dtype_str(const py::array& a);
std::string describe(const py::array& a);  // "float32 array of shape (2, 3)"

enum class DType { f32, f64 };
// float32/float64 in the machine's byte order, or TypeError naming the op and the offending
// dtype (a byte-swapped array, '>f4' on x86, would be misread).
DType float_dtype(const py::array& a, const char* op);
// Same dtype for all, or TypeError naming every dtype.
DType same_float_dtype(const char* op, std::initializer_list<const py::array*> arrays);
// Normalises a possibly negative axis, or IndexError naming the axis and ndim.
int normalize_axis(index_t axis, int ndim, const char* op);

}  // namespace gf
