// Every family header of the dispatched kernels, in namespace gf::GF_KERNEL_NS. No include
// guard: table.h includes it once for the declarations, level.h once more per level.
#include "kernels/unary.h"
#include "kernels/binary.h"
#include "kernels/line.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "kernels/optim.h"
