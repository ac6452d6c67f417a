// The kernels for AVX-512 F/BW/CD/DQ/VL (x86-64-v4).
#define GF_ISA_NS avx512
#include "kernels/level.h"
