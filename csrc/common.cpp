#include "common.h"

#include <cblas.h>
#if defined(GF_OPENMP)
#include <omp.h>
#endif

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cxxabi.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>
#include <vector>

namespace gf {

// A process forked from one whose workers ran has none of them (only the forking thread
// survives fork), and the pool's state may be mid-job: a forked child runs gradflow's kernels
// on its one thread (as PyTorch does), which also keeps a pool of forked workers from
// oversubscribing the cores.
static std::atomic<bool> forked_child{false};

// gradflow's thread count, shared by every thread. 0 until init_threads sets the start value.
static std::atomic<int> thread_count{0};

int num_threads() { return forked_child ? 1 : thread_count.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw py::value_error("set_num_threads: need n >= 1, got " + std::to_string(n));
  if (forked_child) {
    if (n > 1 && PyErr_WarnEx(PyExc_RuntimeWarning,
                              "gradflow runs single-threaded in a process forked from one that "
                              "used its threads (the parent's workers do not exist here); start "
                              "worker processes with the 'spawn' method for threaded kernels",
                              1) < 0)
      throw py::error_already_set();
    return;
  }
  thread_count.store(n, std::memory_order_relaxed);
}

#if !defined(GF_OPENMP)
// OMP_NUM_THREADS as OpenMP reads it (a positive count, the first of a list), else 0.
static int env_thread_count() {
  const char* s = std::getenv("OMP_NUM_THREADS");
  if (!s) return 0;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  return end != s && v > 0 && v < (1 << 16) ? int(v) : 0;
}

// The CPUs this process may run on (its affinity mask where the system has one).
static int available_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}
#endif

// At the end of Py_Finalize, before the C library's exit handlers free what kernels use: a
// daemon thread still inside a kernel finishes it (then waits, see reacquire_gil). Bounded, in
// case a kernel never returns.
static void wait_for_kernels() {
  for (int i = 0; i < 10000 && kernels_without_gil.load(std::memory_order_acquire) > 0; ++i)
    usleep(1000);
}

// The start count. An OpenMP build takes the OpenMP runtime's reading of its environment
// (OMP_NUM_THREADS, OMP_THREAD_LIMIT, OMP_DYNAMIC, the CPUs it may use), for programs that
// set those; the threads themselves are always the pool's.
static int start_thread_count() {
#if defined(GF_OPENMP)
  return std::max(1, std::min(omp_get_max_threads(), omp_get_thread_limit()));
#else
  const int n = env_thread_count();
  return n > 0 ? n : available_cpus();
#endif
}

void init_threads() {
  Py_AtExit(wait_for_kernels);
  thread_count.store(start_thread_count(), std::memory_order_relaxed);
  // Every BLAS call is single-threaded: a threaded product is split by gradflow into
  // independent BLAS calls that the pool's threads take (see threaded_gemm in matmul.cpp).
  // OpenBLAS's own threaded GEMM gives each thread a fixed share and makes them wait for each
  // other's packed panels, so one descheduled thread stalls the whole product.
  scipy_openblas_set_num_threads(1);
  pthread_atfork(nullptr, nullptr, [] { forked_child = true; });
}

// ---- the GIL ---------------------------------------------------------------------------------
namespace {
bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

[[noreturn]] void wait_for_exit() {
  for (;;) pause();
}
}  // namespace

std::atomic<int> kernels_without_gil{0};

void reacquire_gil(PyThreadState* state) noexcept {
  kernels_without_gil.fetch_sub(1, std::memory_order_release);
  if (finalizing()) wait_for_exit();
  // Finalization can also begin while this thread waits for the GIL: CPython then ends it from
  // inside PyEval_RestoreThread (a forced unwind, which must not leave the catch block: it is
  // not rethrown, the thread just waits; it holds no lock of the interpreter's at that point).
  // glibc's pthread_exit unwinds as an exception only libstdc++ names; macOS's ends the thread
  // without unwinding its frames.
#if defined(__GLIBCXX__)
  try {
    PyEval_RestoreThread(state);
  } catch (abi::__forced_unwind&) {
    wait_for_exit();
  }
#else
  PyEval_RestoreThread(state);
#endif
}

// ---- the output buffer cache ----------------------------------------------------------------
// Exact-size reuse is enough: a training loop allocates the same shapes every step. The cache
// holds at most kCacheLimit bytes; gradflow.empty_cache() hands them back to the system.
namespace {
constexpr std::size_t kHeader = 64;  // keeps the data 64-byte aligned; holds the byte count
constexpr std::size_t kCacheLimit = std::size_t(1) << 30;
std::mutex cache_mutex;
std::multimap<std::size_t, void*> cache;  // nbytes -> data pointer
std::size_t cached = 0;
std::size_t fresh = 0;  // buffers acquire had to allocate (none of the cached size was free)
std::unordered_set<const void*> in_use;  // buffers handed out and not yet released

void* raw_alloc(std::size_t nbytes) {
  const std::size_t total = (kHeader + nbytes + 4095) & ~std::size_t(4095);
  void* block = std::aligned_alloc(4096, total);
  if (!block) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)  // Linux's transparent huge pages
  if (total >= (std::size_t(2) << 20)) madvise(block, total, MADV_HUGEPAGE);  // fewer faults
#endif
  char* data = static_cast<char*>(block) + kHeader;
  reinterpret_cast<std::size_t*>(data)[-8] = nbytes;
  return data;
}
void raw_free(void* data) { std::free(static_cast<char*>(data) - kHeader); }
}  // namespace

void* buffer_acquire(std::size_t nbytes) {
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(nbytes);
    if (it != cache.end()) {
      void* p = it->second;
      cache.erase(it);
      cached -= nbytes;
      in_use.insert(p);
      return p;
    }
    ++fresh;
  }
  void* p = raw_alloc(nbytes);
  std::lock_guard<std::mutex> lock(cache_mutex);
  in_use.insert(p);
  return p;
}

void buffer_release(void* p, std::size_t nbytes) {
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    in_use.erase(p);
    if (cached + nbytes <= kCacheLimit) {
      cache.emplace(nbytes, p);
      cached += nbytes;
      return;
    }
  }
  raw_free(p);
}

bool buffer_in_use(const void* p) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return in_use.count(p) != 0;
}

std::size_t buffer_fresh_count() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return fresh;
}

std::size_t buffer_cache_bytes() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cached;
}

void buffer_cache_clear() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  for (auto& kv : cache) raw_free(kv.second);
  cache.clear();
  cached = 0;
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
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  constexpr char kSwapped = '>';
#else
  constexpr char kSwapped = '<';
#endif
  py::dtype dt = a.dtype();
  if (dt.kind() == 'f' && dt.byteorder() != kSwapped) {
    if (a.itemsize() == 4) return DType::f32;
    if (a.itemsize() == 8) return DType::f64;
  }
  if (dt.kind() == 'f' && dt.byteorder() == kSwapped)
    throw py::type_error(std::string(op) + ": expected a float32 or float64 array in the "
                         "machine's byte order, got a byte-swapped " + describe(a) +
                         " (convert it with a.astype(a.dtype.newbyteorder('=')))");
  throw py::type_error(std::string(op) + ": expected a float32 or float64 array, got " + describe(a));
}

py::array c_contiguous(const py::array& a) {
  if (a.flags() & py::array::c_style) return a;
  PyObject* r = py::detail::npy_api::get().PyArray_FromAny_(
      a.ptr(), nullptr, 0, 0,
      py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_ | py::array::c_style, nullptr);
  if (!r) throw py::error_already_set();
  return py::reinterpret_steal<py::array>(r);
}

py::array as_array(const py::object& o, const char* op) {
  if (py::isinstance<py::array>(o)) return py::reinterpret_borrow<py::array>(o);
  PyObject* r = py::detail::npy_api::get().PyArray_FromAny_(
      o.ptr(), nullptr, 0, 0, py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_, nullptr);
  if (r) return py::reinterpret_steal<py::array>(r);
  if (PyErr_ExceptionMatches(PyExc_MemoryError)) throw py::error_already_set();
  PyErr_Clear();
  throw py::type_error(std::string(op) + ": expected an array, got " +
                       py::str(py::type::of(o)).cast<std::string>());
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
