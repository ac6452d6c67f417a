// Placeholder until the binary kernels land; registers nothing.
#include "common.h"
namespace gf {
void bind_binary(py::module_&) {}
}  // namespace gf
