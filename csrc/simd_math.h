// Declares the libm functions the elementwise kernels call as SIMD-capable, so that a
// `#pragma omp simd` loop calling them is vectorised through glibc's libmvec
// (_ZGVeN16v_expf, _ZGVdN4v_exp, ...) instead of falling back to one scalar call per element.
// glibc's <math.h> only declares these itself under -ffast-math; the declarations below are
// the same functions with the OpenMP `declare simd` contract added. The CMake target links
// libmvec. Include this header BEFORE gf_math.h (whose std::exp(float) etc. call these).
//
// With LTO (pybind11 turns on -flto) the declarations of a libm function from all translation
// units are merged and the first object's wins: a .cpp that calls, say, std::pow without this
// header and links before another one that includes it silently turns the other's vector calls
// back into scalar ones. So every kernel file that calls these functions should include this
// header first.
//
// libmvec's accuracy: at most 4 ulp for every variant used here, far inside the float64
// tolerance the tests ask for (1e-12 relative). In float32 that is not always enough inside a
// longer formula (expf is off by up to 2.6 ulp, logf by 3.9), which is why gf_math.h has its
// own float exp for the activations.
#pragma once

#include <cmath>

// libmvec exists on x86-64 glibc only (aarch64 glibc 2.36 has none of these variants).
#if defined(__x86_64__) && defined(__GLIBC__)
extern "C" {
#pragma omp declare simd notinbranch
float expf(float) noexcept;
#pragma omp declare simd notinbranch
double exp(double) noexcept;
#pragma omp declare simd notinbranch
float logf(float) noexcept;
#pragma omp declare simd notinbranch
double log(double) noexcept;
#pragma omp declare simd notinbranch
float log1pf(float) noexcept;
#pragma omp declare simd notinbranch
double log1p(double) noexcept;
#pragma omp declare simd notinbranch
float tanhf(float) noexcept;
#pragma omp declare simd notinbranch
double tanh(double) noexcept;
#pragma omp declare simd notinbranch
double erfc(double) noexcept;
#pragma omp declare simd notinbranch
float powf(float, float) noexcept;
#pragma omp declare simd notinbranch
double pow(double, double) noexcept;
}
#endif

namespace gf {
namespace vm {
// Overloads that call the C functions above by name, for kernels that pick float/double by
// template parameter.
inline float vexp(float x) { return ::expf(x); }
inline double vexp(double x) { return ::exp(x); }
}  // namespace vm
}  // namespace gf
