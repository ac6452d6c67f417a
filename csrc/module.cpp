// The gradflow._C extension: the CPU backend's kernels, and the autograd hot path (Tensor's
// storage and Function.apply). Each lives in its own file and registers itself through a bind_*
// function.
#include <cblas.h>
#include <omp.h>
#if defined(__x86_64__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include "common.h"

namespace gf {
void bind_matmul(py::module_& m);
void bind_unary(py::module_& m);
void bind_binary(py::module_& m);
void bind_reduce(py::module_& m);
void bind_softmax(py::module_& m);
void bind_optim(py::module_& m);
void bind_autograd(py::module_& m);
void bind_fallback(py::module_& m);

// Flush-to-zero / denormals-are-zero on the calling thread and on every OpenMP worker (MXCSR on
// x86-64 and FPCR on aarch64 are per thread). Denormal operands slow float arithmetic, GEMMs
// included, by ~80x, and the gradients of a well-fitted network drift into that range.
static bool set_flush_denormal(bool on) {
#if defined(__x86_64__) || defined(__aarch64__)
  auto apply = [on]() {
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
  };
  apply();
  if (gf::num_threads() > 1) {
#pragma omp parallel num_threads(gf::num_threads())
    apply();
  }
  return true;
#else
  (void)on;
  return false;
#endif
}

static std::string simd_level() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
  return "baseline";
#else
  return "baseline";
#endif
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
  m.def("blas_num_threads", []() { return scipy_openblas_get_num_threads(); },
        "Threads OpenBLAS splits an operation into (as set by set_num_threads).");
  m.def("blas_config", []() { return std::string(scipy_openblas_get_config()); },
        "OpenBLAS's build configuration string.");
  m.def("blas_corename", []() { return std::string(scipy_openblas_get_corename()); },
        "The OpenBLAS kernel family chosen for this CPU (honours OPENBLAS_CORETYPE).");
#if defined(GF_NATIVE)
  m.attr("build") = "native";
#else
  m.attr("build") = "portable";
#endif
  m.def("simd_level", &gf::simd_level, "The SIMD code path the kernels run on this CPU.");
  m.def("set_flush_denormal", &gf::set_flush_denormal, py::arg("mode"),
        "Flush denormal floats to zero in gradflow's CPU threads (and this thread); returns "
        "False where the CPU has no such mode.");
  m.def("cached_bytes", &gf::buffer_cache_bytes,
        "Bytes of freed output buffers kept for reuse by the next outputs of the same size.");
  m.def("empty_cache", &gf::buffer_cache_clear, "Returns the cached output buffers to the system.");
  // Before any BLAS call: the BLAS runs its jobs on OpenMP's threads, as many as OpenMP has
  // (OMP_NUM_THREADS or the core count).
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
