// Placeholder until the reduce kernels land; registers nothing.
#include "common.h"
namespace gf {
void bind_reduce(py::module_&) {}
}  // namespace gf
