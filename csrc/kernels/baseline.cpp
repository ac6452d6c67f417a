// The kernels at the baseline level: the compiler's default target (x86-64; armv8-a, which has
// NEON, on aarch64), or the build machine's CPU under GRADFLOW_NATIVE.
#define GF_ISA_NS baseline
#include "kernels/level.h"
