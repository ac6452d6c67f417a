// The kernels for AVX2 + FMA (x86-64-v3).
#define GF_ISA_NS avx2
#include "kernels/level.h"
