// The types in the signatures of the dispatched kernels. They live outside the per-level
// namespaces (see table.h) so that every level's kernel has the same function type.
#pragma once

#include <cstdint>

namespace gf {

using index_t = std::int64_t;

// The scalar parameters of an elementwise op (slope, beta, threshold, exponent), as doubles;
// each kernel converts them to its element type once, outside the loop.
struct Params {
  double a = 0, b = 0;
};

}  // namespace gf

namespace gf {
// Unit-stride lines a lockstep reduction kernel walks at once (see kernels/reduce.h).
constexpr int kStreams = 4;
}  // namespace gf

namespace gf {
// Lines a softmax column kernel processes at once (the size of its stack arrays).
constexpr index_t kSoftmaxColBlock = 256;
}  // namespace gf
