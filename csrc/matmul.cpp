// Placeholder until the matmul kernels land; registers nothing.
#include "common.h"
namespace gf {
void bind_matmul(py::module_&) {}
}  // namespace gf
