// Vector variants of libm's exp/log for `#pragma omp simd` loops in the reduce and softmax
// kernels: glibc's libmvec (linked by CMake) supplies _ZGV*_expf and friends. (A local copy of
// these declarations, for the kernels of this file's owner; other kernels use simd_math.h.)
#pragma once

#include <cmath>

extern "C" {
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
double log(double);
}

namespace gf {
namespace vm {
// Overloads that call the C functions above (std::exp would bypass the simd declarations).
inline float vexp(float x) { return ::expf(x); }
inline double vexp(double x) { return ::exp(x); }
}  // namespace vm
}  // namespace gf
