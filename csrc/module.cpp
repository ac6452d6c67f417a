// The gradflow._C extension: the CPU backend's kernels, and the autograd hot path (Tensor's
// storage and Function.apply). Each lives in its own file and registers itself through a bind_*
// function.
#include <cblas.h>
#if defined(__x86_64__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include "common.h"
#include "kernels/table.h"

namespace gf {
void bind_matmul(py::module_& m);
void bind_unary(py::module_& m);
void bind_binary(py::module_& m);
void bind_reduce(py::module_& m);
void bind_softmax(py::module_& m);
void bind_optim(py::module_& m);
void bind_autograd(py::module_& m);
void bind_fallback(py::module_& m);

// Flush-to-zero / denormals-are-zero on the calling thread and on every worker (MXCSR on x86-64
// and FPCR on aarch64 are per thread). Denormal operands slow float arithmetic, GEMMs included,
// by ~80x, and the gradients of a well-fitted network drift into that range.
#if defined(__x86_64__) || defined(__aarch64__)
static void apply_flush_denormal(bool on) {
#if defined(__x86_64__)
  _MM_SET_FLUSH_ZERO_MODE(on ? _MM_FLUSH_ZERO_ON : _MM_FLUSH_ZERO_OFF);
  _MM_SET_DENORMALS_ZERO_MODE(on ? _MM_DENORMALS_ZERO_ON : _MM_DENORMALS_ZERO_OFF);
#else
  // FPCR.FZ (bit 24) flushes denormal inputs and results of float and double arithmetic.
  constexpr std::uint64_t kFZ = std::uint64_t(1) << 24;
  std::uint64_t fpcr;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
  fpcr = on ? (fpcr | kFZ) : (fpcr & ~kFZ);
  __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
#endif
}
#endif

static bool set_flush_denormal(bool on) {
#if defined(__x86_64__) || defined(__aarch64__)
  apply_flush_denormal(on);
  gf::pool_set_worker_setup(apply_flush_denormal, on);
  return true;
#else
  (void)on;
  return false;
#endif
}

static py::dict threading_info() {
  py::dict d;
  d["pool"] = "gradflow";  // the kernels' and the matrix products' threads (thread_pool.h)
#if defined(GF_OPENMP)
  d["openmp"] = true;  // OpenMP's environment variables set the start count
#else
  d["openmp"] = false;
#endif
  d["threads"] = gf::num_threads();
  d["workers"] = gf::pool_workers();
  d["blas_threads"] = scipy_openblas_get_num_threads();
  const PoolStats st = pool_stats();
  d["threaded_jobs"] = st.jobs;
  d["solo_jobs"] = st.solo_jobs;
  d["stalls"] = st.stalls;
  d["absences"] = st.absences;
  d["solo_spell_us"] = st.solo_spell_us;
  return d;
}
}  // namespace gf

PYBIND11_MODULE(_C, m) {
  m.doc() = "gradflow's C++ CPU backend";
  // pybind11 looks numpy's C API up on first use, releasing the GIL meanwhile; done here, no
  // kernel call ever waits for the GIL there (a thread that does while the interpreter
  // finalizes would be ended inside pybind11's noexcept GIL guard: std::terminate).
  py::detail::npy_api::get();
  m.def("get_num_threads", &gf::num_threads, "Threads used by gradflow's CPU kernels and BLAS.");
  m.def("set_num_threads", &gf::set_num_threads, py::arg("n"));
  m.def("threading_info", &gf::threading_info,
        "How gradflow's CPU kernels are threaded: a dict with 'pool' (whose threads run them), "
        "'openmp' (whether this build reads the start count through OpenMP's runtime, see "
        "GRADFLOW_OPENMP), 'threads' (the count in use), 'workers' (pool threads started so "
        "far), 'blas_threads' (OpenBLAS's own count: 1, gradflow splits the products), and "
        "since the start: 'threaded_jobs' (loops split across threads), 'stalls' (jobs whose "
        "caller waited long for a worker kept off its core), 'absences' (long jobs no worker "
        "took part in) and 'solo_jobs' (loops run on the calling thread alone for a while "
        "after a stall or an absence), and 'solo_spell_us' (the latest such while's length, "
        "microseconds: it doubles while stalls recur soon after one ended).");
  m.def("_pool_set_test_delay", &gf::pool_set_test_delay, py::arg("microseconds"),
        py::arg("before_job") = false,
        "For tests: pool workers sleep this long before each chunk they take (0: never), or "
        "with before_job before they look at a new job.");
  m.def("blas_num_threads", []() { return scipy_openblas_get_num_threads(); },
        "Threads OpenBLAS splits one of its calls into: always 1, gradflow splits a product "
        "into single-threaded calls itself.");
  m.def("blas_config", []() { return std::string(scipy_openblas_get_config()); },
        "OpenBLAS's build configuration string.");
  m.def("blas_corename", []() { return std::string(scipy_openblas_get_corename()); },
        "The OpenBLAS kernel family chosen for this CPU (honours OPENBLAS_CORETYPE).");
#if defined(GF_NATIVE)
  m.attr("build") = "native";
#else
  m.attr("build") = "portable";
#endif
  // First: GRADFLOW_SIMD may name a level this CPU cannot run, which fails the import.
  gf::init_dispatch();
  m.def("simd_level", &gf::simd_level,
        "The instruction-set level the kernels run at: the best this CPU runs ('avx512', 'avx2', "
        "'baseline'; 'sve', 'neon'; 'native' for a GRADFLOW_NATIVE build), or GRADFLOW_SIMD's.");
  m.def("simd_levels", []() {
          py::list names;
          for (const std::string& n : gf::simd_levels()) names.append(n);
          return names;
        },
        "The levels this build has and this CPU runs, lowest first (what GRADFLOW_SIMD accepts).");
  m.def("set_flush_denormal", &gf::set_flush_denormal, py::arg("mode"),
        "Flush denormal floats to zero in gradflow's CPU threads (and this thread); returns "
        "False where the CPU has no such mode.");
  m.def("cached_bytes", &gf::buffer_cache_bytes,
        "Bytes of freed output buffers kept for reuse by the next outputs of the same size.");
  m.def("fresh_buffers", &gf::buffer_fresh_count,
        "How many large output buffers were allocated so far rather than taken from the cache.");
  m.def("owns_buffer",
        [](const py::array& a) {
          // a's base is the capsule new_array made around a buffer of the cache, and a spans it
          PyObject* base = py::detail::array_proxy(a.ptr())->base;
          return base && PyCapsule_CheckExact(base) &&
                 PyCapsule_GetPointer(base, PyCapsule_GetName(base)) == a.data() &&
                 gf::buffer_in_use(a.data());
        },
        py::arg("a"), "Whether a is an output array of the kernels holding its own cached buffer.");
  m.def("empty_cache", &gf::buffer_cache_clear, "Returns the cached output buffers to the system.");
  // Before any BLAS call: the start thread count, the BLAS single-threaded.
  gf::init_threads();
  gf::bind_matmul(m);
  gf::bind_unary(m);
  gf::bind_binary(m);
  gf::bind_reduce(m);
  gf::bind_softmax(m);
  gf::bind_optim(m);
  gf::bind_autograd(m);
  gf::bind_fallback(m);
}
