// Placeholder until the unary kernels land; registers nothing.
#include "common.h"
namespace gf {
void bind_unary(py::module_&) {}
}  // namespace gf
