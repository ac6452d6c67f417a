#include "common.h"

#include <cblas.h>

#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace gf {

// libgomp cannot start threads again in a process forked after it used them: the child's
// first parallel region waits forever for the parent's workers. A forked child therefore runs
// gradflow's kernels and BLAS on its one thread (as PyTorch does), which also keeps a pool of
// forked workers from oversubscribing the cores.
static std::atomic<bool> forked_child{false};

int num_threads() { return forked_child ? 1 : omp_get_max_threads(); }

void set_num_threads(int n) {
  if (n < 1) throw py::value_error("set_num_threads: need n >= 1, got " + std::to_string(n));
  if (forked_child) {
    if (n > 1 && PyErr_WarnEx(PyExc_RuntimeWarning,
                              "gradflow runs single-threaded in a process forked from one that "
                              "used its threads (OpenMP cannot restart them there); start worker "
                              "processes with the 'spawn' method for threaded kernels",
                              1) < 0)
      throw py::error_already_set();
    return;
  }
  omp_set_num_threads(n);
  scipy_openblas_set_num_threads(n);  // how many jobs the BLAS splits an operation into
}

// ---- one thread pool for the kernels and the BLAS -------------------------------------------
// OpenBLAS hands the jobs of a threaded operation to this callback, which runs them on OpenMP's
// threads, the ones the elementwise kernels use. With two pools, each one's idle threads spin
// on the cores the other needs next (an MLP step has a GEMM after every activation), and a
// pool put to sleep at once instead pays a wake-up on every small GEMM (256x64x64: 65 us
// instead of 26 us).
namespace {
void run_blas_jobs(int /*sync: OpenBLAS always waits*/, openblas_dojob_callback dojob, int numjobs,
                   std::size_t jobdata_elsize, void* jobdata, int dojob_data) {
  char* data = static_cast<char*>(jobdata);
  // The jobs of one GEMM wait for each other's packed panels, so all must run at once: on an
  // OpenMP team when one of numjobs threads is certain (not nested, no dynamic sizing, not a
  // forked child), else on threads started for this call.
  if (!forked_child && omp_get_level() == 0 && !omp_get_dynamic() &&
      numjobs <= omp_get_max_threads() && numjobs <= omp_get_thread_limit()) {
#pragma omp parallel for num_threads(numjobs) schedule(static, 1)
    for (int i = 0; i < numjobs; ++i) dojob(i, data + i * jobdata_elsize, dojob_data);
    return;
  }
  std::vector<std::thread> threads;
  for (int i = 1; i < numjobs; ++i) threads.emplace_back(dojob, i, data + i * jobdata_elsize, dojob_data);
  dojob(0, data, dojob_data);
  for (auto& t : threads) t.join();
}
}  // namespace

void init_threads() {
  scipy_openblas_set_threads_callback_function(run_blas_jobs);
  scipy_openblas_set_num_threads(num_threads());
  pthread_atfork(nullptr, nullptr, [] {
    forked_child = true;
    scipy_openblas_set_num_threads(1);  // no jobs for the callback: nothing reaches OpenMP
  });
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

void* raw_alloc(std::size_t nbytes) {
  const std::size_t total = (kHeader + nbytes + 4095) & ~std::size_t(4095);
  void* block = std::aligned_alloc(4096, total);
  if (!block) throw std::bad_alloc();
  if (total >= (std::size_t(2) << 20)) madvise(block, total, MADV_HUGEPAGE);  // fewer faults
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
      return p;
    }
  }
  return raw_alloc(nbytes);
}

void buffer_release(void* p, std::size_t nbytes) {
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cached + nbytes <= kCacheLimit) {
      cache.emplace(nbytes, p);
      cached += nbytes;
      return;
    }
  }
  raw_free(p);
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
