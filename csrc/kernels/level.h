// One level's kernels: included by csrc/kernels/<level>.cpp after it defines GF_ISA_NS (the
// level's namespace); that file is compiled with the level's instruction-set flags.
#include "kernels/table.h"

#define GF_KERNEL_NS GF_ISA_NS
#include "kernels/all.h"
#undef GF_KERNEL_NS

namespace gf {
namespace GF_ISA_NS {

template <class T>
void fill(Kernels<T>& k) {
#define GF_KERNEL(name, ...) k.name = &__VA_ARGS__;
  GF_KERNEL_TABLE
#undef GF_KERNEL
}

void fill_tables(KernelTables& t) {
  fill(t.f32);
  fill(t.f64);
}

}  // namespace GF_ISA_NS
}  // namespace gf
