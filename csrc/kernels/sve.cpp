// The kernels for SVE (armv8-a+sve), vector-length agnostic.
#define GF_ISA_NS sve
#include "kernels/level.h"
