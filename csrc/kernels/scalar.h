// Scalar helpers used both by the dispatched kernels and by the code around them. Internal
// linkage: every translation unit, each level's kernels included, compiles its own copy with
// its own instruction set (an inline function with external linkage would be merged into one
// copy by the linker, possibly one that uses instructions the CPU lacks).
#pragma once

namespace gf {
namespace {

template <class T> inline T nanmax(T m, T x) { return (x > m || x != x) ? x : m; }
template <class T> inline T nanmin(T m, T x) { return (x < m || x != x) ? x : m; }
template <class T> inline bool is_finite(T x) { return x - x == T(0); }

}  // namespace
}  // namespace gf
