// Placeholder until the softmax kernels land; registers nothing.
#include "common.h"
namespace gf {
void bind_softmax(py::module_&) {}
}  // namespace gf
