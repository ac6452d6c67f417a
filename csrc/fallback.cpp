// with_fallback(fast, slow): a callable that runs fast(*args) and, if that raises TypeError (a
// dtype the C++ kernels do not take: integers, bools), slow(*args) instead. The CPU backend
// wraps the kernels that integer and bool tensors also use this way; a Python wrapper function
// cost more than a small kernel's whole work, this costs one C call.
#include <Python.h>

#include "common.h"

namespace gf {
namespace {

struct FallbackObject {
  PyObject_HEAD
  PyObject* fast;
  PyObject* slow;
  vectorcallfunc vectorcall;
};

PyObject* fallback_vectorcall(PyObject* self, PyObject* const* args, size_t nargsf,
                              PyObject* kwnames) {
  auto* f = reinterpret_cast<FallbackObject*>(self);
  PyObject* r = PyObject_Vectorcall(f->fast, args, nargsf, kwnames);
  if (r || !PyErr_ExceptionMatches(PyExc_TypeError)) return r;
  PyErr_Clear();
  return PyObject_Vectorcall(f->slow, args, nargsf, kwnames);
}

int fallback_traverse(PyObject* self, visitproc visit, void* arg) {
  auto* f = reinterpret_cast<FallbackObject*>(self);
  Py_VISIT(f->fast);
  Py_VISIT(f->slow);
  return 0;
}

int fallback_clear(PyObject* self) {
  auto* f = reinterpret_cast<FallbackObject*>(self);
  Py_CLEAR(f->fast);
  Py_CLEAR(f->slow);
  return 0;
}

void fallback_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  fallback_clear(self);
  PyObject_GC_Del(self);
}

PyObject* fallback_repr(PyObject* self) {
  auto* f = reinterpret_cast<FallbackObject*>(self);
  return PyUnicode_FromFormat("<with_fallback %R, else %R>", f->fast, f->slow);
}

PyObject* fallback_doc(PyObject* self, void*) {
  return PyObject_GetAttrString(reinterpret_cast<FallbackObject*>(self)->fast, "__doc__");
}

PyObject* fallback_name(PyObject* self, void*) {
  return PyObject_GetAttrString(reinterpret_cast<FallbackObject*>(self)->fast, "__name__");
}

PyGetSetDef fallback_getset[] = {
    {"__doc__", fallback_doc, nullptr, nullptr, nullptr},
    {"__name__", fallback_name, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject FallbackType = {PyVarObject_HEAD_INIT(nullptr, 0)};

}  // namespace

void bind_fallback(py::module_& m) {
  FallbackType.tp_name = "gradflow._C.with_fallback";
  FallbackType.tp_basicsize = sizeof(FallbackObject);
  FallbackType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
  FallbackType.tp_vectorcall_offset = offsetof(FallbackObject, vectorcall);
  FallbackType.tp_call = PyVectorcall_Call;
  FallbackType.tp_traverse = fallback_traverse;
  FallbackType.tp_clear = fallback_clear;
  FallbackType.tp_dealloc = fallback_dealloc;
  FallbackType.tp_repr = fallback_repr;
  FallbackType.tp_getset = fallback_getset;
  if (PyType_Ready(&FallbackType) < 0) throw py::error_already_set();
  m.def(
      "with_fallback",
      [](py::object fast, py::object slow) {
        if (!PyCallable_Check(fast.ptr()) || !PyCallable_Check(slow.ptr()))
          throw py::type_error("with_fallback: fast and slow must be callables");
        auto* f = PyObject_GC_New(FallbackObject, &FallbackType);
        if (!f) throw py::error_already_set();
        f->fast = fast.release().ptr();
        f->slow = slow.release().ptr();
        f->vectorcall = fallback_vectorcall;
        PyObject_GC_Track(f);
        return py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(f));
      },
      py::arg("fast"), py::arg("slow"),
      "A callable running fast(*args), or slow(*args) where fast raises TypeError.");
}

}  // namespace gf
