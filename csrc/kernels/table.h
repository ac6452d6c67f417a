// Run-time dispatch of the hot kernels.
//
// The kernels (the family headers unary.h, binary.h, line.h, reduce.h, softmax.h, optim.h) are
// compiled once per instruction-set level, each time into the level's own namespace: gf::avx512,
// gf::avx2 and gf::baseline on x86-64, gf::sve and gf::baseline (NEON) on aarch64. Each level is
// one translation unit, csrc/kernels/<level>.cpp, built with that level's flags
// (CMakeLists.txt). At import, dispatch.cpp picks the best level the CPU runs (or the lower one
// GRADFLOW_SIMD names) and copies its function pointers into the table below; callers go through
// it, kern<T>().name(...): one load and an indirect call, paid once per kernel call.
//
// Adding a kernel: write it in its family header and add GF_KERNEL(name, function<T>) to that
// header's table macro; it is then compiled for every level and reachable as kern<T>().name.
// Its signature may use only types defined outside the level namespaces (types.h), so that all
// levels' versions have one function type.
//
// Code compiled into a level calls only its own templates, functions with internal linkage
// (scalar.h) and inline arithmetic that is always inlined (gf_math.h, <cmath>): an out-of-line
// inline function with external linkage would be merged by the linker with the copies of the
// other levels, and the one kept could use instructions this CPU lacks.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "gf_vecmath.h"
#include "gf_math.h"
#include "kernels/scalar.h"
#include "kernels/types.h"

// The table: every family's GF_KERNEL entries.
#define GF_KERNEL_TABLE \
  GF_UNARY_TABLE        \
  GF_BINARY_TABLE       \
  GF_LINE_TABLE         \
  GF_REDUCE_TABLE       \
  GF_SOFTMAX_TABLE      \
  GF_OPTIM_TABLE

// The kernels once more in namespace gf::decl, only for the types of the table's entries (their
// templates are never instantiated there).
#define GF_KERNEL_NS decl
#include "kernels/all.h"
#undef GF_KERNEL_NS

namespace gf {
namespace decl {
// One pointer per kernel for element type T (float or double).
template <class T>
struct Kernels {
#define GF_KERNEL(name, ...) decltype(&__VA_ARGS__) name = nullptr;
  GF_KERNEL_TABLE
#undef GF_KERNEL
};
}  // namespace decl
using decl::Kernels;

struct KernelTables {
  Kernels<float> f32;
  Kernels<double> f64;
};
// The chosen level's kernels; filled once by init_dispatch, before any kernel runs.
extern KernelTables active_kernels;

template <class T>
inline const Kernels<T>& kern() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "kernels exist for float and double");
  if constexpr (std::is_same<T, float>::value) return active_kernels.f32;
  else return active_kernels.f64;
}

// At import: picks the level (the best the CPU runs, or GRADFLOW_SIMD's) and fills
// active_kernels. Throws std::invalid_argument (ValueError) for a GRADFLOW_SIMD value that is
// not a level of this build or that the CPU cannot run, naming the levels it can.
void init_dispatch();
std::string simd_level();               // the chosen level: "avx512", "avx2", "neon", ...
std::vector<std::string> simd_levels();  // the levels this build has and the CPU runs, lowest first

}  // namespace gf
