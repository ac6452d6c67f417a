// Placeholder until the optim kernels land; registers nothing.
#include "common.h"
namespace gf {
void bind_optim(py::module_&) {}
}  // namespace gf
