// The autograd hot path, in C: the storage of a Tensor (TensorBase, which gradflow.Tensor
// extends with its methods), Function.apply (running and recording one op), the backward loop
// (run_tape), the checked reads of saved tensors and the grad-mode switches. They run on every
// op and every node, and written in Python they cost several times a small kernel. The rules
// they follow are documented in gradflow/autograd/function.py and engine.py; the rare paths
// (profiler, anomaly mode, ops that move devices, un-broadcasting) call back into Python.
#include <Python.h>

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace gf {
namespace {

struct TensorObject {
  PyObject_HEAD
  PyObject* data;           // the backend array
  PyObject* be;             // the backend module
  PyObject* requires_grad;  // a bool
  PyObject* grad;
  PyObject* node;           // the Function that produced it, or None for a leaf
  PyObject* vbox;           // [version], shared with views: bumped by in-place ops
  PyObject* base;           // the tensor a view shares memory with, or None
  PyObject* weakrefs;
};

PyTypeObject TensorBaseType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// The autograd switches (gradflow.autograd.grad_mode.state is the object that exposes them), here
// so that every op reads them without an attribute lookup. Process-wide:
struct State {
  bool anomaly = false;              // remember where each op was recorded; check backward
  PyObject* profiler = nullptr;      // gradflow.profiler.Profile while one is active, or None
  PyObject* grad_observer = nullptr; // callable(node, grad) the engine calls, or None
} S;
// Per thread, as in PyTorch: no_grad in one thread, or a backward pass running there, leaves
// the other threads recording. A new thread starts with recording on, in the forward phase.
thread_local bool t_grad_enabled = true;  // record ops on the tape
thread_local bool t_backward = false;     // phase: "backward" while the engine runs, else "forward"

// Set once by autograd_init (gradflow.autograd.function.bind_tensor_type).
PyTypeObject* g_tensor_type = nullptr;  // gradflow.Tensor: the class of op outputs
PyObject* g_backend_get = nullptr;      // gradflow.backend.get(device) -> backend
PyObject* g_recording_trace = nullptr;  // () -> str: the stack an op is recorded at
// Set by lowp_init (gradflow/autograd/lowp.py): the 16-bit float dtypes (float16, and bfloat16
// when ml_dtypes is installed; null when unset) and their type numbers (-1 when unset), whose
// ops run in float32 as PyTorch's CPU kernels do, and the Python function that runs an op's
// forward that way.
PyObject* g_lowp_dtypes[2] = {nullptr, nullptr};
int g_lowp_type_nums[2] = {-1, -1};
PyObject* g_lowp_forward = nullptr;
unsigned long long g_sequence = 0;      // recording order (see engine.py)

struct Names {
  PyObject *be, *next, *in_meta, *forward, *differentiable, *moves_device, *is_view, *view,
      *save_idx, *save_out, *saved, *saved_versions, *out_data, *out_vbox, *out_version, *seq,
      *trace, *dst, *name, *shape, *dtype, *begin, *end,
      *add, *backward, *released, *raise_released, *raise_modified, *raise_output_modified,
      *op_cache, *forward_phase, *backward_phase, *dtype_kind, *cuda_array, *array_interface,
      *empty_tuple;
} N;

bool intern_names() {
  struct { PyObject** slot; const char* s; } table[] = {
      {&N.be, "be"}, {&N.next, "_next"}, {&N.in_meta, "_in_meta"}, {&N.forward, "forward"},
      {&N.differentiable, "differentiable"}, {&N.moves_device, "moves_device"},
      {&N.is_view, "is_view"}, {&N.view, "view"}, {&N.save_idx, "_save_idx"},
      {&N.save_out, "_save_out"}, {&N.saved, "_saved"}, {&N.saved_versions, "_saved_versions"},
      {&N.out_data, "_out_data"}, {&N.out_vbox, "_out_vbox"}, {&N.out_version, "_out_version"},
      {&N.seq, "_seq"}, {&N.trace, "trace"}, {&N.dst, "dst"}, {&N.name, "name"},
      {&N.shape, "shape"}, {&N.dtype, "dtype"}, {&N.begin, "begin"}, {&N.end, "end"},
      {&N.add, "add"}, {&N.backward, "backward"}, {&N.released, "_released"},
      {&N.raise_released, "_raise_released"}, {&N.raise_modified, "_raise_modified"},
      {&N.raise_output_modified, "_raise_output_modified"}, {&N.op_cache, "_op_cache"},
      {&N.forward_phase, "forward"}, {&N.backward_phase, "backward"}, {&N.dtype_kind, "kind"},
      {&N.cuda_array, "__cuda_array_interface__"}, {&N.array_interface, "__array_interface__"}};
  for (auto& e : table)
    if (!(*e.slot = PyUnicode_InternFromString(e.s))) return false;
  return (N.empty_tuple = PyTuple_New(0)) != nullptr;
}

// An owned reference, released at scope exit.
struct Ref {
  PyObject* p;
  explicit Ref(PyObject* p = nullptr) : p(p) {}
  ~Ref() { Py_XDECREF(p); }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  PyObject* release() { PyObject* r = p; p = nullptr; return r; }
  explicit operator bool() const { return p != nullptr; }
};

// getattr(obj, name) as a truth value; -1 on error.
int attr_true(PyObject* obj, PyObject* name) {
  Ref v(PyObject_GetAttr(obj, name));
  return v ? PyObject_IsTrue(v.p) : -1;
}

// hasattr(obj, name): 1, 0, or -1 on an error other than AttributeError.
int has_attr(PyObject* obj, PyObject* name) {
  PyObject* r = PyObject_GetAttr(obj, name);
  if (r) {
    Py_DECREF(r);
    return 1;
  }
  if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
  PyErr_Clear();
  return 0;
}

// A tuple of the sequence's items (the tuple itself when it is one): a snapshot that Python code
// run while it is read (a backend's add, a sum_to, an __index__) cannot shrink, as it could a
// list, under the reader.
PyObject* as_tuple(PyObject* seq, const char* what) {
  if (PyTuple_CheckExact(seq)) return Py_NewRef(seq);
  PyObject* t = PySequence_Tuple(seq);
  if (!t && PyErr_ExceptionMatches(PyExc_TypeError)) {
    PyErr_Clear();
    PyErr_SetString(PyExc_TypeError, what);
  }
  return t;
}

// The version counter in a version box (borrowed), or nullptr with RuntimeError when Python code
// has emptied or grown the box (the setter checks it only when it is assigned).
PyObject* version_of(PyObject* vbox) {
  if (PyList_Check(vbox) && PyList_GET_SIZE(vbox) == 1) return PyList_GET_ITEM(vbox, 0);
  PyErr_SetString(PyExc_RuntimeError,
                  "a Tensor's version box (_vbox) must stay a one-element list: [version]");
  return nullptr;
}

// ---- TensorBase ------------------------------------------------------------------------------
PyObject* new_vbox() {
  PyObject* zero = PyLong_FromLong(0);
  if (!zero) return nullptr;
  PyObject* box = PyList_New(1);
  if (box)
    PyList_SET_ITEM(box, 0, zero);
  else
    Py_DECREF(zero);
  return box;
}

// Every field starts valid (None, False, a fresh version box), so a tensor made here and
// filled in by C, or by Tensor.__init__, is never half-initialised.
PyObject* tensor_new(PyTypeObject* type, PyObject*, PyObject*) {
  auto* t = reinterpret_cast<TensorObject*>(type->tp_alloc(type, 0));
  if (!t) return nullptr;
  t->vbox = new_vbox();
  if (!t->vbox) {
    Py_DECREF(t);
    return nullptr;
  }
  PyObject** none_fields[] = {&t->data, &t->be, &t->grad, &t->node, &t->base};
  for (PyObject** f : none_fields) *f = Py_NewRef(Py_None);
  t->requires_grad = Py_NewRef(Py_False);
  return reinterpret_cast<PyObject*>(t);
}

// The object fields, for the GC and the attribute accessors.
constexpr std::size_t kFields[] = {
    offsetof(TensorObject, data),          offsetof(TensorObject, be),
    offsetof(TensorObject, requires_grad), offsetof(TensorObject, grad),
    offsetof(TensorObject, node),          offsetof(TensorObject, vbox),
    offsetof(TensorObject, base)};

PyObject*& field(PyObject* o, std::size_t offset) {
  return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(o) + offset);
}

int tensor_traverse(PyObject* o, visitproc visit, void* arg) {
  for (std::size_t f : kFields) Py_VISIT(field(o, f));
  return 0;
}

int tensor_clear(PyObject* o) {
  for (std::size_t f : kFields) Py_CLEAR(field(o, f));
  return 0;
}

// Freeing a tensor frees what only it holds (its node, whose saved tensors free their nodes,
// ...): the trashcan turns a long chain's recursion into a loop, as in CPython's containers.
void tensor_dealloc(PyObject* o) {
  PyObject_GC_UnTrack(o);
  Py_TRASHCAN_BEGIN(o, tensor_dealloc)
  if (reinterpret_cast<TensorObject*>(o)->weakrefs) PyObject_ClearWeakRefs(o);
  tensor_clear(o);
  Py_TYPE(o)->tp_free(o);
  Py_TRASHCAN_END
}

// ---- field assignment -------------------------------------------------------------------------
PyObject* numpy_array_or_null(PyObject* a) {
  return py::detail::npy_api::get().PyArray_Check_(a) ? a : nullptr;
}

// A backend array's dtype and shape (new references), numpy's read directly.
bool array_dtype_shape(PyObject* a, Ref& dtype, Ref& shape) {
  if (numpy_array_or_null(a)) {
    const auto* arr = py::detail::array_proxy(a);
    dtype.p = Py_NewRef(arr->descr);
    shape.p = PyTuple_New(arr->nd);
    if (!shape) return false;
    for (int d = 0; d < arr->nd; ++d) {
      PyObject* dim = PyLong_FromSsize_t(arr->dimensions[d]);
      if (!dim) return false;
      PyTuple_SET_ITEM(shape.p, d, dim);
    }
    return true;
  }
  return (dtype.p = PyObject_GetAttr(a, N.dtype)) && (shape.p = PyObject_GetAttr(a, N.shape));
}

// The device a backend serves ("cpu", "cuda:0"): its name.
PyObject* device_name(PyObject* be) {
  return be == Py_None ? PyUnicode_FromString("no device") : PyObject_GetAttr(be, N.name);
}

// t.grad = g: None, or a Tensor of t's shape, dtype and device (as PyTorch requires). Only a
// tensor that has its data yet is checked (Tensor.__init__ fills the fields one by one).
bool check_grad(TensorObject* t, PyObject* g) {
  if (g == Py_None) return true;
  if (!PyObject_TypeCheck(g, &TensorBaseType)) {
    PyErr_Format(PyExc_TypeError, "assigned grad must be a Tensor or None, got %s",
                 Py_TYPE(g)->tp_name);
    return false;
  }
  auto* gt = reinterpret_cast<TensorObject*>(g);
  if (t->data == Py_None) return true;
  PyObject *a = numpy_array_or_null(t->data), *b = numpy_array_or_null(gt->data);
  if (a && b && gt->be == t->be) {  // the engine's case: every check on the structs
    const auto *pa = py::detail::array_proxy(a), *pb = py::detail::array_proxy(b);
    bool same = pa->nd == pb->nd && (pa->descr == pb->descr ||
                                     py::detail::npy_api::get().PyArray_EquivTypes_(pa->descr, pb->descr));
    for (int d = 0; same && d < pa->nd; ++d) same = pa->dimensions[d] == pb->dimensions[d];
    if (same) return true;
  }
  Ref td, ts, gd, gs;
  if (!array_dtype_shape(t->data, td, ts) || !array_dtype_shape(gt->data, gd, gs)) return false;
  int same = PyObject_RichCompareBool(gs.p, ts.p, Py_EQ);
  if (same < 0) return false;
  if (!same) {
    PyErr_Format(PyExc_ValueError, "assigned grad has shape %S, but the tensor has shape %S",
                 gs.p, ts.p);
    return false;
  }
  same = PyObject_RichCompareBool(gd.p, td.p, Py_EQ);
  if (same < 0) return false;
  if (!same) {
    PyErr_Format(PyExc_TypeError, "assigned grad has dtype %S, but the tensor has dtype %S",
                 gd.p, td.p);
    return false;
  }
  if (gt->be != t->be) {
    Ref gn(device_name(gt->be)), tn(device_name(t->be));
    if (!gn || !tn) return false;
    same = PyObject_RichCompareBool(gn.p, tn.p, Py_EQ);
    if (same < 0) return false;
    if (!same) {
      PyErr_Format(PyExc_RuntimeError, "assigned grad is on %S, but the tensor is on %S", gn.p,
                   tn.p);
      return false;
    }
  }
  return true;
}

// The kind of a backend array's dtype ('f', 'i', 'b', ...), or 0 with an error set.
char dtype_kind(PyObject* a) {
  if (numpy_array_or_null(a))
    return py::detail::array_descriptor_proxy(py::detail::array_proxy(a)->descr)->kind;
  Ref dtype(PyObject_GetAttr(a, N.dtype));
  if (!dtype) return 0;
  Ref kind(PyObject_GetAttr(dtype.p, N.dtype_kind));
  if (!kind) return 0;
  const char* k = PyUnicode_Check(kind.p) ? PyUnicode_AsUTF8(kind.p) : nullptr;
  if (!k || !*k) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "dtype.kind must be a string");
    return 0;
  }
  return k[0];
}

// Whether backend array `a` is of a 16-bit float type (float16, bfloat16): a numpy array's type
// number, read directly; another backend's array (CuPy's) by its dtype attribute, which is
// numpy's dtype object.
bool is_lowp(PyObject* a) {
  if (numpy_array_or_null(a)) {
    const int t = py::detail::array_descriptor_proxy(py::detail::array_proxy(a)->descr)->type_num;
    return t == g_lowp_type_nums[0] || t == g_lowp_type_nums[1];
  }
  if (!g_lowp_dtypes[0]) return false;
  Ref dtype(PyObject_GetAttr(a, N.dtype));
  if (!dtype) {  // (not an array: the op's forward says so)
    PyErr_Clear();
    return false;
  }
  return dtype.p == g_lowp_dtypes[0] || dtype.p == g_lowp_dtypes[1];
}

// t.requires_grad = v: a bool, and True only for floating-point data (as PyTorch).
bool check_requires_grad(TensorObject* t, PyObject* v) {
  if (!PyBool_Check(v)) {
    PyErr_Format(PyExc_TypeError, "requires_grad must be a bool, got %s", Py_TYPE(v)->tp_name);
    return false;
  }
  if (v == Py_False || t->data == Py_None) return true;
  char kind = dtype_kind(t->data);
  if (!kind) return false;
  if (kind != 'f' && !is_lowp(t->data)) {
    Ref dtype(PyObject_GetAttr(t->data, N.dtype));
    PyErr_Format(PyExc_RuntimeError,
                 "only Tensors of floating point dtype can require gradients, got dtype %S",
                 dtype ? dtype.p : Py_None);
    return false;
  }
  return true;
}

// t.array = v (and t.data = v): a Tensor (its array; its device too) or a backend array: a numpy
// array in the machine's byte order (the C kernels read raw memory) or another array type
// (CuPy's). Returns the array to store (new reference), or nullptr with TypeError.
PyObject* data_to_store(PyObject* v) {
  if (PyObject_TypeCheck(v, &TensorBaseType)) v = reinterpret_cast<TensorObject*>(v)->data;
  if (numpy_array_or_null(v)) {
    PyObject* descr = py::detail::array_proxy(v)->descr;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    constexpr char kSwapped = '>';
#else
    constexpr char kSwapped = '<';
#endif
    if (py::detail::array_descriptor_proxy(descr)->byteorder == kSwapped) {
      PyErr_Format(PyExc_TypeError,
                   "Tensor.array must be in the machine's byte order, got a byte-swapped %R array "
                   "(convert it with a.astype(a.dtype.newbyteorder('=')))",
                   descr);
      return nullptr;
    }
    return Py_NewRef(v);
  }
  // (looked up on the type: an instance's __cuda_array_interface__ builds a dict)
  PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(v));
  int ok = has_attr(type, N.cuda_array);
  if (ok == 0) ok = has_attr(type, N.array_interface);  // numpy scalars
  if (ok < 0) return nullptr;
  if (!ok) {
    PyErr_Format(PyExc_TypeError, "Tensor.array must be a Tensor or a backend array, got %s",
                 Py_TYPE(v)->tp_name);
    return nullptr;
  }
  return Py_NewRef(v);
}

// The fields as attributes. C reads them without checks on every op, so Python may replace
// them (with values of the right kind) but not delete them.
template <std::size_t Offset>
PyObject* field_get(PyObject* o, void*) {
  return Py_NewRef(field(o, Offset));
}

template <std::size_t Offset>
int field_set(PyObject* o, PyObject* v, void* name) {
  if (!v) {
    PyErr_Format(PyExc_AttributeError, "a Tensor's %s cannot be deleted",
                 static_cast<const char*>(name));
    return -1;
  }
  auto* t = reinterpret_cast<TensorObject*>(o);
  PyObject* value = Py_NewRef(v);
  if constexpr (Offset == offsetof(TensorObject, vbox)) {
    if (!(PyList_CheckExact(v) && PyList_GET_SIZE(v) == 1)) {
      PyErr_SetString(PyExc_TypeError, "_vbox must be a one-element list (the version counter)");
      Py_DECREF(value);
      return -1;
    }
  } else if constexpr (Offset == offsetof(TensorObject, grad)) {
    if (!check_grad(t, v)) {
      Py_DECREF(value);
      return -1;
    }
  } else if constexpr (Offset == offsetof(TensorObject, requires_grad)) {
    if (!check_requires_grad(t, v)) {
      Py_DECREF(value);
      return -1;
    }
  } else if constexpr (Offset == offsetof(TensorObject, data)) {
    Py_DECREF(value);
    if (!(value = data_to_store(v))) return -1;
    if (PyObject_TypeCheck(v, &TensorBaseType))  // and its device, as PyTorch's p.data = other
      Py_SETREF(t->be, Py_NewRef(reinterpret_cast<TensorObject*>(v)->be));
  }
  Py_SETREF(field(o, Offset), value);
  return 0;
}

#define GF_FIELD(NAME, MEMBER, DOC)                                                          \
  {NAME, field_get<offsetof(TensorObject, MEMBER)>, field_set<offsetof(TensorObject, MEMBER)>, \
   DOC, const_cast<char*>(NAME)}
PyGetSetDef tensor_getset[] = {
    GF_FIELD("array", data, "The backend array (numpy on the CPU, CuPy on CUDA) itself, no copy."),
    GF_FIELD("_be", be, "The backend module."),
    GF_FIELD("requires_grad", requires_grad, "Whether gradients flow to this tensor."),
    GF_FIELD("grad", grad, "The accumulated gradient (leaves)."),
    GF_FIELD("_node", node, "The producing Function, or None."),
    GF_FIELD("_vbox", vbox, "[version], shared with views."),
    GF_FIELD("_base", base, "The tensor a view shares memory with, or None."),
    {nullptr, nullptr, nullptr, nullptr, nullptr}};
#undef GF_FIELD

// A new gradflow.Tensor around ``data`` (fields as in Tensor(data, be, node)).
TensorObject* make_tensor(PyObject* data, PyObject* be, PyObject* node) {
  auto* t = reinterpret_cast<TensorObject*>(tensor_new(g_tensor_type, nullptr, nullptr));
  if (!t) return nullptr;
  Py_SETREF(t->data, Py_NewRef(data));
  Py_SETREF(t->be, Py_NewRef(be));
  if (node != Py_None) {
    Py_SETREF(t->node, Py_NewRef(node));
    Py_SETREF(t->requires_grad, Py_NewRef(Py_True));
  }
  return t;
}

// ---- apply -----------------------------------------------------------------------------------
PyObject* type_name(PyObject* cls) {
  return PyType_Check(cls) ? PyUnicode_FromString(reinterpret_cast<PyTypeObject*>(cls)->tp_name)
                           : PyObject_Repr(cls);
}

PyObject* device_error(PyObject* cls, PyObject* be_a, PyObject* be_b) {
  Ref op(type_name(cls)), a(PyObject_GetAttr(be_a, N.name)), b(PyObject_GetAttr(be_b, N.name));
  if (op && a && b)
    PyErr_Format(PyExc_RuntimeError, "%S: expected all tensors on one device, got %S and %S",
                 op.p, a.p, b.p);
  return nullptr;
}

// (a.shape, a.dtype) of a backend array; numpy arrays are read directly (this runs for every
// input of every recorded op), others through their attributes.
PyObject* array_meta(PyObject* a) {
  Ref shape, dtype;
  if (py::detail::npy_api::get().PyArray_Check_(a)) {
    const auto* arr = py::detail::array_proxy(a);
    shape.p = PyTuple_New(arr->nd);
    if (!shape) return nullptr;
    for (int d = 0; d < arr->nd; ++d) {
      PyObject* dim = PyLong_FromSsize_t(arr->dimensions[d]);
      if (!dim) return nullptr;
      PyTuple_SET_ITEM(shape.p, d, dim);
    }
    dtype.p = Py_NewRef(arr->descr);
  } else if (!(shape.p = PyObject_GetAttr(a, N.shape)) || !(dtype.p = PyObject_GetAttr(a, N.dtype))) {
    return nullptr;
  }
  return PyTuple_Pack(2, shape.p, dtype.p);
}

// ctx._next and ctx._in_meta: per input, the edge its gradient goes along (its producer node,
// the leaf itself, or None) and the (shape, dtype) that gradient must have.
bool record_edges(PyObject* ctx, TensorObject* const* in, Py_ssize_t n) {
  Ref next(PyTuple_New(n)), meta(PyTuple_New(n));
  if (!next || !meta) return false;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* edge = in[i]->node;
    if (edge == Py_None)  // (requires_grad is a bool: its setter takes nothing else)
      edge = in[i]->requires_grad == Py_True ? reinterpret_cast<PyObject*>(in[i]) : Py_None;
    PyTuple_SET_ITEM(next.p, i, Py_NewRef(edge));
    PyObject* pair = array_meta(in[i]->data);
    if (!pair) return false;
    PyTuple_SET_ITEM(meta.p, i, pair);
  }
  return PyObject_SetAttr(ctx, N.next, next.p) == 0 &&
         PyObject_SetAttr(ctx, N.in_meta, meta.p) == 0;
}

// What forward declared with save_inputs()/save_output() (or the class declares), kept on ctx
// with the versions it had, so that backward can detect a later in-place change.
bool record_saved(PyObject* ctx, TensorObject* const* in, Py_ssize_t n, PyObject* out_data,
                  TensorObject* out) {
  Ref idx(PyObject_GetAttr(ctx, N.save_idx));
  if (!idx) return false;
  Ref seq(as_tuple(idx.p, "_save_idx must be a sequence of input indices"));
  if (!seq) return false;
  Py_ssize_t k = PyTuple_GET_SIZE(seq.p);
  if (k > 0) {
    Ref saved(PyTuple_New(k)), versions(PyTuple_New(k));
    if (!saved || !versions) return false;
    for (Py_ssize_t j = 0; j < k; ++j) {
      Py_ssize_t i = PyNumber_AsSsize_t(PyTuple_GET_ITEM(seq.p, j), PyExc_IndexError);
      if (i == -1 && PyErr_Occurred()) return false;
      if (i < 0 || i >= n) {
        PyErr_Format(PyExc_IndexError, "save_inputs: index %zd, but the op has %zd inputs", i, n);
        return false;
      }
      PyObject* version = version_of(in[i]->vbox);
      if (!version) return false;
      PyTuple_SET_ITEM(saved.p, j, Py_NewRef(reinterpret_cast<PyObject*>(in[i])));
      PyTuple_SET_ITEM(versions.p, j, Py_NewRef(version));
    }
    if (PyObject_SetAttr(ctx, N.saved, saved.p) < 0 ||
        PyObject_SetAttr(ctx, N.saved_versions, versions.p) < 0)
      return false;
  }
  int save_out = attr_true(ctx, N.save_out);
  if (save_out <= 0) return save_out == 0;
  Ref vbox(Py_NewRef(out->vbox));
  PyObject* version = version_of(vbox.p);
  if (!version) return false;
  Ref v(Py_NewRef(version));
  return PyObject_SetAttr(ctx, N.out_data, out_data) == 0 &&
         PyObject_SetAttr(ctx, N.out_vbox, vbox.p) == 0 &&
         PyObject_SetAttr(ctx, N.out_version, v.p) == 0;
}

// What apply reads from an op class, cached in the class's own __dict__ (as _op_cache) and
// revalidated by the class's version tag, which Python changes whenever the class or a base is
// modified (and never reuses). Kept there, it lives and dies with the class: a cache of its own
// would keep every op class made at run time, its forward and their closures alive.
struct OpInfo {
  PyObject_HEAD
  unsigned int tag;     // 0: not valid
  PyObject* forward;
  bool differentiable, moves_device, is_view;
};

int opinfo_traverse(PyObject* o, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<OpInfo*>(o)->forward);
  return 0;
}

int opinfo_clear(PyObject* o) {
  Py_CLEAR(reinterpret_cast<OpInfo*>(o)->forward);
  return 0;
}

void opinfo_dealloc(PyObject* o) {
  PyObject_GC_UnTrack(o);
  opinfo_clear(o);
  PyObject_GC_Del(o);
}

PyTypeObject OpInfoType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// The cached lookups of op class cls (a new reference), refreshed when the class changed.
OpInfo* op_info(PyObject* cls) {
  if (!PyType_Check(cls)) {
    PyErr_SetString(PyExc_TypeError, "apply: the first argument must be an op class");
    return nullptr;
  }
  auto* type = reinterpret_cast<PyTypeObject*>(cls);
  const bool heap = type->tp_flags & Py_TPFLAGS_HEAPTYPE;
  if (heap) {
    PyObject* hit = PyDict_GetItemWithError(type->tp_dict, N.op_cache);  // borrowed
    if (hit && Py_IS_TYPE(hit, &OpInfoType)) {
      auto* info = reinterpret_cast<OpInfo*>(hit);
      if (info->tag != 0 && info->tag == type->tp_version_tag) return reinterpret_cast<OpInfo*>(Py_NewRef(hit));
    } else if (!hit && PyErr_Occurred()) {
      return nullptr;
    }
  }
  Ref fresh(reinterpret_cast<PyObject*>(PyObject_GC_New(OpInfo, &OpInfoType)));
  if (!fresh) return nullptr;
  auto* info = reinterpret_cast<OpInfo*>(fresh.p);
  info->tag = 0;
  info->forward = nullptr;
  PyObject_GC_Track(fresh.p);
  // Stored first (storing modifies the class), then filled: the lookups give the class its
  // new version tag. A class that cannot store it (a static type) is looked up every time.
  if (heap && PyObject_SetAttr(cls, N.op_cache, fresh.p) < 0) return nullptr;
  info->forward = PyObject_GetAttr(cls, N.forward);
  if (!info->forward) return nullptr;
  const unsigned int tag = type->tp_version_tag;  // assigned by that lookup (0: not cacheable)
  int diff = attr_true(cls, N.differentiable), moves = attr_true(cls, N.moves_device),
      view = attr_true(cls, N.is_view);
  if (diff < 0 || moves < 0 || view < 0) return nullptr;
  info->differentiable = diff;
  info->moves_device = moves;
  info->is_view = view;
  // (valid only if nothing those lookups ran, a metaclass's __getattr__, say, changed the class)
  info->tag = heap && type->tp_version_tag == tag ? tag : 0;
  return reinterpret_cast<OpInfo*>(fresh.release());
}

// Function.apply(cls, *tensors, **params), bound to each op class as a classmethod.
PyObject* apply(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (!g_tensor_type) {
    PyErr_SetString(PyExc_RuntimeError, "apply: gradflow.Tensor is not bound yet");
    return nullptr;
  }
  if (nargs < 2) {
    PyErr_SetString(PyExc_TypeError, "apply(cls, *tensors): an op needs at least one tensor");
    return nullptr;
  }
  PyObject* cls = args[0];
  const Py_ssize_t n = nargs - 1;
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  auto* const* in = reinterpret_cast<TensorObject* const*>(args + 1);

  // Every field read here is held (a new reference) before anything runs Python: the op's
  // constructor, forward or a profiler may reassign the input tensors' fields meanwhile.
  Ref be_ref;
  PyObject* be = nullptr;
  bool requires_grad = false;
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (!PyObject_TypeCheck(args[1 + i], &TensorBaseType)) {
      Ref op(type_name(cls));
      if (op)
        PyErr_Format(PyExc_TypeError, "%S: input %zd is a %s, not a Tensor", op.p, i,
                     Py_TYPE(args[1 + i])->tp_name);
      return nullptr;
    }
    if (i == 0)
      be = in[0]->be;
    else if (in[i]->be != be)
      return device_error(cls, be, in[i]->be);
    requires_grad = requires_grad || in[i]->requires_grad == Py_True;  // (a bool: see its setter)
  }
  be_ref.p = Py_NewRef(be);

  Ref op_ref(reinterpret_cast<PyObject*>(op_info(cls)));
  if (!op_ref) return nullptr;
  const OpInfo* op = reinterpret_cast<OpInfo*>(op_ref.p);
  Ref forward(Py_NewRef(op->forward));
  const bool differentiable = op->differentiable, moves_device = op->moves_device,
             is_view = op->is_view;
  const bool record = requires_grad && t_grad_enabled && differentiable;
  Ref ctx(PyObject_CallNoArgs(cls));
  if (!ctx || PyObject_SetAttr(ctx.p, N.be, be) < 0) return nullptr;
  // The edges before forward runs, which may consult them (needs_input_grad).
  if (record ? !record_edges(ctx.p, in, n) : PyObject_SetAttr(ctx.p, N.next, N.empty_tuple) < 0)
    return nullptr;

  // forward(ctx, *arrays, **params): the keyword values follow the positionals in args.
  PyObject* small[16];
  std::vector<PyObject*> large;
  PyObject** fargs = small;
  if (1 + n + nkw > 16) {
    large.resize(1 + n + nkw);
    fargs = large.data();
  }
  fargs[0] = ctx.p;
  for (Py_ssize_t k = 0; k < nkw; ++k) fargs[1 + n + k] = args[nargs + k];
  // The input arrays, held while forward runs.
  struct Held {
    PyObject** p;
    Py_ssize_t n;
    ~Held() {
      for (Py_ssize_t i = 0; i < n; ++i) Py_DECREF(p[i]);
    }
  } held{fargs + 1, 0};
  for (Py_ssize_t i = 0; i < n; ++i, ++held.n) fargs[1 + i] = Py_NewRef(in[i]->data);
  Ref prof(Py_NewRef(S.profiler));  // (forward may end the profile)
  Ref token;
  if (prof.p != Py_None && !(token.p = PyObject_CallMethodOneArg(prof.p, N.begin, be)))
    return nullptr;
  bool lowp = false;
  for (Py_ssize_t i = 0; i < n && !lowp; ++i) lowp = is_lowp(fargs[1 + i]);
  Ref out_data;
  if (lowp) {  // lowp_forward(forward, ctx, *arrays, **params)
    std::vector<PyObject*> largs(2 + n + nkw);
    largs[0] = forward.p;
    std::copy(fargs, fargs + 1 + n + nkw, largs.begin() + 1);
    out_data.p = PyObject_Vectorcall(g_lowp_forward, largs.data(), 2 + n, kwnames);
  } else {
    out_data.p = PyObject_Vectorcall(forward.p, fargs, 1 + n, kwnames);
  }
  if (!out_data) return nullptr;
  if (!py::detail::npy_api::get().PyArray_Check_(out_data.p)) {  // (a CuPy array has a dtype)
    if (!PyObject_HasAttr(out_data.p, N.dtype) || PyList_Check(out_data.p) ||
        PyTuple_Check(out_data.p)) {
      Ref op_name(type_name(cls));
      if (op_name)
        PyErr_Format(PyExc_TypeError, "%S.forward returned a %s, not an array", op_name.p,
                     Py_TYPE(out_data.p)->tp_name);
      return nullptr;
    }
  }
  if (prof.p != Py_None) {
    Ref arrays(PyList_New(n));
    if (!arrays) return nullptr;
    for (Py_ssize_t i = 0; i < n; ++i) PyList_SET_ITEM(arrays.p, i, Py_NewRef(fargs[1 + i]));
    Ref r(PyObject_CallMethodObjArgs(prof.p, N.end, token.p, ctx.p, arrays.p, out_data.p,
                                     nullptr));
    if (!r) return nullptr;
  }

  Ref out_be(Py_NewRef(be));
  if (moves_device) {
    Ref dst(PyObject_GetAttr(ctx.p, N.dst));
    if (!dst) return nullptr;
    Py_SETREF(out_be.p, PyObject_CallOneArg(g_backend_get, dst.p));
    if (!out_be) return nullptr;
  }
  Ref out(reinterpret_cast<PyObject*>(
      make_tensor(out_data.p, out_be.p, record ? ctx.p : Py_None)));
  if (!out) return nullptr;
  auto* o = reinterpret_cast<TensorObject*>(out.p);

  int view = is_view ? attr_true(ctx.p, N.view) : 0;
  if (view < 0) return nullptr;
  if (view) {  // shares memory with its input: writes through it are writes to the base
    Py_SETREF(o->vbox, Py_NewRef(in[0]->vbox));
    PyObject* base = in[0]->base != Py_None ? in[0]->base : reinterpret_cast<PyObject*>(in[0]);
    Py_SETREF(o->base, Py_NewRef(base));
  }
  if (!record) return out.release();

  Ref seq(PyLong_FromUnsignedLongLong(g_sequence++));
  if (!seq || PyObject_SetAttr(ctx.p, N.seq, seq.p) < 0) return nullptr;
  if (!record_saved(ctx.p, in, n, out_data.p, o)) return nullptr;
  if (S.anomaly) {
    Ref trace(PyObject_CallNoArgs(g_recording_trace));
    if (!trace || PyObject_SetAttr(ctx.p, N.trace, trace.p) < 0) return nullptr;
  }
  return out.release();
}

// Whether backend array `a` has this shape (a tuple) and dtype (an identical object, as numpy's
// and CuPy's dtypes are singletons for the builtin types): 1, 0, or -1 on error. numpy arrays are
// read directly (this runs for every gradient of every backward), others through attributes.
int has_meta(PyObject* a, PyObject* shape, PyObject* dtype) {
  if (py::detail::npy_api::get().PyArray_Check_(a)) {
    const auto* arr = py::detail::array_proxy(a);
    if (arr->descr != dtype) return 0;
    if (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) != arr->nd) return 0;
    for (int i = 0; i < arr->nd; ++i) {
      Py_ssize_t d = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, i));
      if (d == -1 && PyErr_Occurred()) return -1;
      if (d != arr->dimensions[i]) return 0;
    }
    return 1;
  }
  Ref a_dtype(PyObject_GetAttr(a, N.dtype));
  if (!a_dtype) return -1;
  if (a_dtype.p != dtype) return 0;
  Ref a_shape(PyObject_GetAttr(a, N.shape));
  return a_shape ? PyObject_RichCompareBool(a_shape.p, shape, Py_EQ) : -1;
}

// ---- the backward pass -----------------------------------------------------------------------
// The loop of gradflow/autograd/engine.py's run_backward (which documents it): nodes visited
// newest first, each given the sum of its consumers' signals; the gradients a node's backward
// returns are reduced to their inputs' (shape, dtype) by the engine's one sum_to, then added to
// the signal pending at each input's node, or at the leaf.
struct Pass {
  PyObject* leaf_grads;  // {id(leaf): [leaf, summed gradient]}, filled here
  PyObject* allowed;     // set of the nodes to propagate to, or nullptr for all
  PyObject* capture;     // {node: gradient} to fill for the captured non-leaves, or nullptr
  PyObject* wanted;      // set of the nodes whose backward must run, or nullptr for all
  PyObject* observer;    // observer(node, grad), or nullptr
  PyObject* anomaly;     // anomaly(node, in_grads) raising on NaN/Inf, or nullptr
  PyObject* sum_to;      // sum_to(grad, shape, dtype) -> grad
  bool retain_graph, create_graph;

  struct Entry {
    unsigned long long seq;
    PyObject* node;
    bool operator<(const Entry& o) const { return seq < o.seq; }  // max-heap: newest first
  };
  std::priority_queue<Entry> heap;
  std::unordered_map<PyObject*, PyObject*> pending;  // node -> signal; owns both references

  ~Pass() {
    for (auto& kv : pending) {
      Py_DECREF(kv.first);
      Py_DECREF(kv.second);
    }
  }

  // a + b: recorded when create_graph, else the arrays added directly.
  PyObject* accumulate(PyObject* a, PyObject* b) {
    if (create_graph) return PyNumber_Add(a, b);
    auto* ta = reinterpret_cast<TensorObject*>(a);
    auto* tb = reinterpret_cast<TensorObject*>(b);
    Ref be(Py_NewRef(ta->be)), da(Py_NewRef(ta->data)), db(Py_NewRef(tb->data));
    Ref sum(PyObject_CallMethodObjArgs(be.p, N.add, da.p, db.p, nullptr));
    return sum ? reinterpret_cast<PyObject*>(make_tensor(sum.p, be.p, Py_None)) : nullptr;
  }

  // g (from node's backward; nullptr for the roots) reduced to the input's (shape, dtype); a
  // new reference.
  PyObject* fit(PyObject* g, PyObject* meta, PyObject* node) {
    if (!PyTuple_Check(meta) || PyTuple_GET_SIZE(meta) != 2) {
      PyErr_SetString(PyExc_TypeError, "_in_meta entries must be (shape, dtype) pairs");
      return nullptr;
    }
    PyObject *shape = PyTuple_GET_ITEM(meta, 0), *dtype = PyTuple_GET_ITEM(meta, 1);
    Ref data(Py_NewRef(reinterpret_cast<TensorObject*>(g)->data));
    int same = has_meta(data.p, shape, dtype);
    if (same < 0) return nullptr;
    if (same) return Py_NewRef(g);
    PyObject* r =
        PyObject_CallFunctionObjArgs(sum_to, g, shape, dtype, node ? node : Py_None, nullptr);
    if (r && !PyObject_TypeCheck(r, &TensorBaseType)) {
      PyErr_Format(PyExc_TypeError, "sum_to returned a %s, not a Tensor", Py_TYPE(r)->tp_name);
      Py_CLEAR(r);
    }
    return r;
  }

  bool send_one(PyObject* edge, PyObject* g_in, PyObject* meta, PyObject* node) {
    Ref g(fit(g_in, meta, node));
    if (!g) return false;
    if (PyObject_TypeCheck(edge, &TensorBaseType)) {  // a leaf that requires grad
      Ref key(PyLong_FromVoidPtr(edge));
      if (!key) return false;
      PyObject* found = PyDict_GetItemWithError(leaf_grads, key.p);  // borrowed
      if (!found) {
        if (PyErr_Occurred()) return false;
        Ref fresh(PyList_New(2));
        if (!fresh) return false;
        PyList_SET_ITEM(fresh.p, 0, Py_NewRef(edge));
        PyList_SET_ITEM(fresh.p, 1, g.release());
        return PyDict_SetItem(leaf_grads, key.p, fresh.p) == 0;
      }
      if (!PyList_CheckExact(found) || PyList_GET_SIZE(found) != 2) {
        PyErr_SetString(PyExc_TypeError, "run_tape: leaf_grads values must be [leaf, gradient]");
        return false;
      }
      // (held: the backend's add may be Python code)
      Ref slot(Py_NewRef(found)), before(Py_NewRef(PyList_GET_ITEM(found, 1)));
      PyObject* sum = accumulate(before.p, g.p);
      if (!sum) return false;
      if (PyList_GET_SIZE(slot.p) != 2) {
        Py_DECREF(sum);
        PyErr_SetString(PyExc_RuntimeError, "run_tape: leaf_grads changed during backward");
        return false;
      }
      return PyList_SetItem(slot.p, 1, sum) == 0;
    }
    if (allowed) {
      int ok = PySet_Contains(allowed, edge);
      if (ok <= 0) return ok == 0;
    }
    auto it = pending.find(edge);
    if (it != pending.end()) {
      PyObject* sum = accumulate(it->second, g.p);
      if (!sum) return false;
      Py_SETREF(it->second, sum);
      return true;
    }
    Ref seq(PyObject_GetAttr(edge, N.seq));
    if (!seq) return false;
    unsigned long long order = PyLong_AsUnsignedLongLong(seq.p);
    if (order == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
    heap.push({order, edge});
    pending.emplace(Py_NewRef(edge), g.release());
    return true;
  }

  // Per input of a node (edges), its gradient (grads, as backward returned them) and its
  // (shape, dtype) (metas).
  bool send(PyObject* node, PyObject* edges, PyObject* grads, PyObject* metas) {
    // The op's name, for errors (the roots have no node).
    auto op_name = [node] {
      return node ? type_name(reinterpret_cast<PyObject*>(Py_TYPE(node)))
                  : PyUnicode_FromString("backward");
    };
    Ref e(as_tuple(edges, "_next must be a sequence"));
    if (!e) return false;
    Py_ssize_t n = PyTuple_GET_SIZE(e.p);
    Ref g;
    if (PyObject_TypeCheck(grads, &TensorBaseType)) {  // a bare Tensor: one input's gradient
      if (n != 1) {
        Ref op(op_name());
        if (op)
          PyErr_Format(PyExc_TypeError, "%S.backward returned a single Tensor for %zd inputs; "
                       "return a tuple with one gradient (or None) per input", op.p, n);
        return false;
      }
      g.p = PyTuple_Pack(1, grads);
    } else if (PyList_Check(grads) || PyTuple_Check(grads)) {
      g.p = as_tuple(grads, "");
    } else {
      Ref op(op_name());
      if (op)
        PyErr_Format(PyExc_TypeError, "%S.backward returned a %s; expected a tuple with one "
                     "gradient (or None) per input", op.p, Py_TYPE(grads)->tp_name);
      return false;
    }
    Ref m(as_tuple(metas, "_in_meta must be a sequence"));
    if (!g || !m) return false;
    // The device the gradients must be on: the node's inputs' (every input of an op is on one).
    Ref be(node ? PyObject_GetAttr(node, N.be) : nullptr);
    if (node && !be) return false;
    if (PyTuple_GET_SIZE(g.p) != n || PyTuple_GET_SIZE(m.p) != n) {
      Ref op(op_name());
      if (op)
        PyErr_Format(PyExc_RuntimeError, "%S.backward returned %zd gradients for %zd inputs",
                     op.p, PyTuple_GET_SIZE(g.p), n);
      return false;
    }
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* edge = PyTuple_GET_ITEM(e.p, i);
      PyObject* grad = PyTuple_GET_ITEM(g.p, i);
      if (edge == Py_None || grad == Py_None) continue;
      if (!PyObject_TypeCheck(grad, &TensorBaseType)) {
        Ref op(op_name());
        if (op)
          PyErr_Format(PyExc_TypeError, "%S.backward returned a %s for input %zd, not a Tensor",
                       op.p, Py_TYPE(grad)->tp_name, i);
        return false;
      }
      if (be && reinterpret_cast<TensorObject*>(grad)->be != be.p) {  // (names decide)
        Ref want(PyObject_GetAttr(be.p, N.name)),
            got(PyObject_GetAttr(reinterpret_cast<TensorObject*>(grad)->be, N.name));
        if (!want || !got) return false;
        int same = PyObject_RichCompareBool(want.p, got.p, Py_EQ);
        if (same < 0) return false;
        if (!same) {
          Ref op(op_name());
          if (op)
            PyErr_Format(PyExc_RuntimeError, "%S.backward returned a gradient on %S for input "
                         "%zd, which is on %S", op.p, got.p, i, want.p);
          return false;
        }
      }
      if (!send_one(edge, grad, PyTuple_GET_ITEM(m.p, i), node)) return false;
    }
    return true;
  }

  // Frees what the node saved for backward; a later backward through it raises (saved_tensors).
  static bool release(PyObject* node) {
    return PyObject_SetAttr(node, N.saved, N.empty_tuple) == 0 &&
           PyObject_SetAttr(node, N.out_data, Py_None) == 0 &&
           PyObject_SetAttr(node, N.released, Py_True) == 0;
  }

  bool run() {
    while (!heap.empty()) {
      PyObject* key = heap.top().node;
      heap.pop();
      auto it = pending.find(key);
      Ref node(it->first), grad(it->second);  // ownership moves out of the map
      pending.erase(it);
      if (capture) {
        int hit = PyDict_Contains(capture, node.p);
        if (hit < 0 || (hit && PyDict_SetItem(capture, node.p, grad.p) < 0)) return false;
      }
      if (observer) {  // a result other than None replaces the signal (tensor hooks)
        Ref r(PyObject_CallFunctionObjArgs(observer, node.p, grad.p, nullptr));
        if (!r) return false;
        if (r.p != Py_None) {
          Py_SETREF(grad.p, r.release());
        }
      }
      if (wanted) {
        int w = PySet_Contains(wanted, node.p);
        if (w < 0) return false;
        if (!w) continue;  // a captured tensor whose own inputs lead to no other target
      }
      Ref backward(PyObject_GetAttr(reinterpret_cast<PyObject*>(Py_TYPE(node.p)), N.backward));
      if (!backward) return false;
      Ref in_grads(PyObject_CallFunctionObjArgs(backward.p, node.p, grad.p, nullptr));
      if (!in_grads) return false;
      if (anomaly) {
        Ref r(PyObject_CallFunctionObjArgs(anomaly, node.p, in_grads.p, nullptr));
        if (!r) return false;
      }
      if (!retain_graph && !release(node.p)) return false;
      Ref edges(PyObject_GetAttr(node.p, N.next));
      if (!edges) return false;
      Ref metas(PyObject_GetAttr(node.p, N.in_meta));
      if (!metas || !send(node.p, edges.p, in_grads.p, metas.p)) return false;
    }
    return true;
  }
};

PyObject* none_to_null(PyObject* o) { return o == Py_None ? nullptr : o; }

PyObject* run_tape(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 12) {
    PyErr_SetString(PyExc_TypeError, "run_tape takes 12 arguments");
    return nullptr;
  }
  Pass pass;
  pass.leaf_grads = args[3];
  if (!PyDict_Check(pass.leaf_grads)) {
    PyErr_SetString(PyExc_TypeError, "run_tape: leaf_grads must be a dict");
    return nullptr;
  }
  int retain = PyObject_IsTrue(args[4]), create = PyObject_IsTrue(args[5]);
  if (retain < 0 || create < 0) return nullptr;
  pass.retain_graph = retain;
  pass.create_graph = create;
  pass.allowed = none_to_null(args[6]);
  pass.capture = none_to_null(args[7]);
  pass.wanted = none_to_null(args[8]);
  pass.observer = none_to_null(args[9]);
  pass.anomaly = none_to_null(args[10]);
  pass.sum_to = args[11];
  if ((pass.allowed && !PyAnySet_Check(pass.allowed)) ||
      (pass.wanted && !PyAnySet_Check(pass.wanted)) ||
      (pass.capture && !PyDict_Check(pass.capture))) {
    PyErr_SetString(PyExc_TypeError, "run_tape: allowed and wanted must be sets, capture a dict");
    return nullptr;
  }
  if (!pass.send(nullptr, args[0], args[1], args[2]) || !pass.run()) return nullptr;
  Py_RETURN_NONE;
}

// ---- what backward reads ---------------------------------------------------------------------
// Function.saved_tensors and Function.saved_input: the values forward saved, after checking
// that backward has not freed them and that no in-place op has changed them since (the error
// messages are Function's _raise_* methods).
bool check_not_released(PyObject* ctx) {
  int released = attr_true(ctx, N.released);
  if (released < 0) return false;
  if (released) {
    Ref r(PyObject_CallMethodNoArgs(ctx, N.raise_released));
    if (r) PyErr_SetString(PyExc_RuntimeError, "saved values were freed by backward");
    return false;
  }
  return true;
}

// The saved tensor t if its version is still `version`; else raises.
PyObject* checked(PyObject* ctx, PyObject* t, PyObject* version) {
  if (!PyObject_TypeCheck(t, &TensorBaseType)) {
    PyErr_SetString(PyExc_TypeError, "_saved must hold Tensors");
    return nullptr;
  }
  PyObject* current = version_of(reinterpret_cast<TensorObject*>(t)->vbox);
  if (!current) return nullptr;
  Ref now(Py_NewRef(current));  // (an __eq__ may replace it)
  int same = now.p == version ? 1 : PyObject_RichCompareBool(now.p, version, Py_EQ);
  if (same < 0) return nullptr;
  if (!same) {
    Ref r(PyObject_CallMethodObjArgs(ctx, N.raise_modified, t, version, nullptr));
    if (r) PyErr_SetString(PyExc_RuntimeError, "a saved tensor was modified in place");
    return nullptr;
  }
  return Py_NewRef(t);
}

PyObject* saved_tensors(PyObject*, PyObject* ctx) {
  if (!check_not_released(ctx)) return nullptr;
  Ref saved(PyObject_GetAttr(ctx, N.saved)), versions(PyObject_GetAttr(ctx, N.saved_versions));
  if (!saved || !versions) return nullptr;
  Ref s(as_tuple(saved.p, "_saved must be a sequence")),
      v(as_tuple(versions.p, "_saved_versions must be a sequence"));
  if (!s || !v) return nullptr;
  Py_ssize_t n = PyTuple_GET_SIZE(s.p);
  if (PyTuple_GET_SIZE(v.p) != n) {
    PyErr_SetString(PyExc_RuntimeError, "_saved and _saved_versions differ in length");
    return nullptr;
  }
  Ref out(PyList_New(0));
  if (!out) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    Ref t(checked(ctx, PyTuple_GET_ITEM(s.p, i), PyTuple_GET_ITEM(v.p, i)));
    if (!t || PyList_Append(out.p, t.p) < 0) return nullptr;
  }
  Ref out_data(PyObject_GetAttr(ctx, N.out_data));
  if (!out_data) return nullptr;
  if (out_data.p != Py_None) {
    Ref vbox(PyObject_GetAttr(ctx, N.out_vbox)), version(PyObject_GetAttr(ctx, N.out_version));
    if (!vbox || !version) return nullptr;
    PyObject* current = version_of(vbox.p);
    if (!current) return nullptr;
    Ref now(Py_NewRef(current));
    int same = now.p == version.p ? 1 : PyObject_RichCompareBool(now.p, version.p, Py_EQ);
    if (same < 0) return nullptr;
    if (!same) {
      Ref r(PyObject_CallMethodNoArgs(ctx, N.raise_output_modified));
      if (r) PyErr_SetString(PyExc_RuntimeError, "the saved output was modified in place");
      return nullptr;
    }
    // Rebuilt from the saved array; under create_graph it is wired back to this node so that
    // the second-order gradient flows through the op again.
    Ref be(PyObject_GetAttr(ctx, N.be));
    if (!be) return nullptr;
    Ref t(reinterpret_cast<PyObject*>(
        make_tensor(out_data.p, be.p, t_grad_enabled ? ctx : Py_None)));
    if (!t) return nullptr;
    Py_SETREF(reinterpret_cast<TensorObject*>(t.p)->vbox, vbox.release());
    if (PyList_Append(out.p, t.p) < 0) return nullptr;
  }
  return out.release();
}

PyObject* saved_input(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "saved_input(i) takes one argument");
    return nullptr;
  }
  PyObject* ctx = args[0];
  if (!check_not_released(ctx)) return nullptr;
  Ref idx(PyObject_GetAttr(ctx, N.save_idx));
  if (!idx) return nullptr;
  Ref s(as_tuple(idx.p, "_save_idx must be a sequence"));
  if (!s) return nullptr;
  Py_ssize_t k = 0, n = PyTuple_GET_SIZE(s.p);
  for (; k < n; ++k) {
    int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(s.p, k), args[1], Py_EQ);
    if (eq < 0) return nullptr;
    if (eq) break;
  }
  if (k == n) {
    PyErr_Format(PyExc_ValueError, "saved_input: input %R was not saved by forward", args[1]);
    return nullptr;
  }
  Ref saved(PyObject_GetAttr(ctx, N.saved)), versions(PyObject_GetAttr(ctx, N.saved_versions));
  if (!saved || !versions) return nullptr;
  Ref t(PySequence_GetItem(saved.p, k)), v(PySequence_GetItem(versions.p, k));
  if (!t || !v) return nullptr;
  return checked(ctx, t.p, v.p);
}

PyObject* wrap(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "wrap(data, be, node) takes 3 arguments");
    return nullptr;
  }
  if (!g_tensor_type) {
    PyErr_SetString(PyExc_RuntimeError, "wrap: gradflow.Tensor is not bound yet");
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(make_tensor(args[0], args[1], args[2]));
}

// ---- the autograd switches -------------------------------------------------------------------
PyObject* get_flag(PyObject*, void* flag) { return PyBool_FromLong(*static_cast<bool*>(flag)); }

int set_flag(PyObject*, PyObject* v, void* flag) {
  if (!v) {
    PyErr_SetString(PyExc_AttributeError, "autograd switches cannot be deleted");
    return -1;
  }
  int on = PyObject_IsTrue(v);
  if (on < 0) return -1;
  *static_cast<bool*>(flag) = on;
  return 0;
}

// The per-thread switches: their addresses differ per thread, so each has its own accessors.
PyObject* get_grad_enabled(PyObject*, void*) { return PyBool_FromLong(t_grad_enabled); }

int set_grad_enabled(PyObject* self, PyObject* v, void*) {
  return set_flag(self, v, &t_grad_enabled);
}

PyObject* get_phase(PyObject*, void*) {
  return Py_NewRef(t_backward ? N.backward_phase : N.forward_phase);
}

int set_phase(PyObject*, PyObject* v, void*) {
  if (!v) {
    PyErr_SetString(PyExc_AttributeError, "autograd switches cannot be deleted");
    return -1;
  }
  for (PyObject* phase : {N.forward_phase, N.backward_phase}) {
    int eq = PyUnicode_Check(v) ? PyUnicode_Compare(v, phase) == 0 : 0;
    if (eq) {
      t_backward = phase == N.backward_phase;
      return 0;
    }
    if (PyErr_Occurred()) return -1;
  }
  PyErr_Format(PyExc_ValueError, "phase must be 'forward' or 'backward', got %R", v);
  return -1;
}

PyObject* get_obj(PyObject*, void* slot) { return Py_NewRef(*static_cast<PyObject**>(slot)); }

int set_obj(PyObject*, PyObject* v, void* slot) {
  if (!v) {
    PyErr_SetString(PyExc_AttributeError, "autograd switches cannot be deleted");
    return -1;
  }
  Py_XSETREF(*static_cast<PyObject**>(slot), Py_NewRef(v));
  return 0;
}

PyGetSetDef state_getset[] = {
    {"grad_enabled", get_grad_enabled, set_grad_enabled,
     "Record ops on the tape (this thread's setting; a new thread starts with True).", nullptr},
    {"anomaly", get_flag, set_flag,
     "Remember where each op was recorded; check backward for NaN/Inf (process-wide).",
     &S.anomaly},
    {"profiler", get_obj, set_obj, "The active gradflow.profiler.Profile, or None.", &S.profiler},
    {"phase", get_phase, set_phase, "'forward', or 'backward' while the engine runs backward "
     "functions in this thread.", nullptr},
    {"grad_observer", get_obj, set_obj, "callable(node, grad) the engine calls for each node's "
     "error signal (a result other than None replaces it), or None.", &S.grad_observer},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject StateType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyObject* autograd_init(PyObject*, PyObject* args) {
  PyObject *tensor_type, *backend_get, *recording_trace;
  if (!PyArg_ParseTuple(args, "O!OO", &PyType_Type, &tensor_type, &backend_get, &recording_trace))
    return nullptr;
  if (!PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(tensor_type), &TensorBaseType)) {
    PyErr_SetString(PyExc_TypeError, "autograd_init: the tensor type must extend TensorBase");
    return nullptr;
  }
  Py_XSETREF(g_tensor_type, reinterpret_cast<PyTypeObject*>(Py_NewRef(tensor_type)));
  Py_XSETREF(g_backend_get, Py_NewRef(backend_get));
  Py_XSETREF(g_recording_trace, Py_NewRef(recording_trace));
  Py_RETURN_NONE;
}

PyObject* lowp_init(PyObject*, PyObject* args) {
  PyObject* forward;
  PyObject* dtypes[2] = {nullptr, nullptr};
  if (!PyArg_ParseTuple(args, "OO|O", &forward, &dtypes[0], &dtypes[1])) return nullptr;
  if (!PyCallable_Check(forward)) {
    PyErr_SetString(PyExc_TypeError, "lowp_init: forward must be callable");
    return nullptr;
  }
  int type_nums[2] = {-1, -1};
  auto& api = py::detail::npy_api::get();
  for (int i = 0; i < 2 && dtypes[i]; ++i) {
    if (!api.PyArrayDescr_Check_(dtypes[i])) {
      PyErr_Format(PyExc_TypeError, "lowp_init: expected numpy dtypes, got %s",
                   Py_TYPE(dtypes[i])->tp_name);
      return nullptr;
    }
    type_nums[i] = py::detail::array_descriptor_proxy(dtypes[i])->type_num;
  }
  Py_XSETREF(g_lowp_forward, Py_NewRef(forward));
  for (int i = 0; i < 2; ++i) {
    Py_XSETREF(g_lowp_dtypes[i], Py_XNewRef(dtypes[i]));
    g_lowp_type_nums[i] = type_nums[i];
  }
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"apply", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(apply)),
     METH_FASTCALL | METH_KEYWORDS,
     "apply(cls, *tensors, **params): run op class cls on the tensors and, when recording, "
     "keep the instance as the output's tape node."},
    {"run_tape", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(run_tape)),
     METH_FASTCALL,
     "run_tape(edges, grads, metas, leaf_grads, retain_graph, create_graph, allowed, capture, "
     "wanted, observer, anomaly, sum_to): the backward pass of gradflow.autograd.engine."},
    {"wrap", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(wrap)), METH_FASTCALL,
     "wrap(data, be, node): a new Tensor around a backend array, as Tensor(data, be, node) "
     "makes, without running Python."},
    {"saved_tensors", saved_tensors, METH_O,
     "saved_tensors(ctx): Function.saved_tensors (checked against release and in-place changes)."},
    {"saved_input", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(saved_input)),
     METH_FASTCALL, "saved_input(ctx, i): Function.saved_input."},
    {"autograd_init", autograd_init, METH_VARARGS,
     "autograd_init(tensor_type, backend_get, recording_trace): bind the Python side."},
    {"lowp_init", lowp_init, METH_VARARGS,
     "lowp_init(forward, dtype[, dtype2]): ops on arrays of these dtypes (float16, bfloat16) "
     "run forward(op_forward, ctx, *arrays, **params) instead of op_forward itself."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void bind_autograd(py::module_& m) {
  if (!intern_names()) throw py::error_already_set();
  TensorBaseType.tp_name = "gradflow._C.TensorBase";
  TensorBaseType.tp_doc = "The storage of a gradflow Tensor; gradflow.Tensor adds the methods.";
  TensorBaseType.tp_basicsize = sizeof(TensorObject);
  TensorBaseType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
  TensorBaseType.tp_new = tensor_new;
  TensorBaseType.tp_dealloc = tensor_dealloc;
  TensorBaseType.tp_traverse = tensor_traverse;
  TensorBaseType.tp_clear = tensor_clear;
  TensorBaseType.tp_getset = tensor_getset;
  TensorBaseType.tp_weaklistoffset = offsetof(TensorObject, weakrefs);
  if (PyType_Ready(&TensorBaseType) < 0) throw py::error_already_set();
  m.add_object("TensorBase", py::reinterpret_borrow<py::object>(
                                 reinterpret_cast<PyObject*>(&TensorBaseType)));
  S.profiler = Py_NewRef(Py_None);
  S.grad_observer = Py_NewRef(Py_None);
  OpInfoType.tp_name = "gradflow._C.OpCache";
  OpInfoType.tp_doc = "What Function.apply looks up on an op class, kept in the class.";
  OpInfoType.tp_basicsize = sizeof(OpInfo);
  OpInfoType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
  OpInfoType.tp_traverse = opinfo_traverse;
  OpInfoType.tp_clear = opinfo_clear;
  OpInfoType.tp_dealloc = opinfo_dealloc;
  if (PyType_Ready(&OpInfoType) < 0) throw py::error_already_set();
  StateType.tp_name = "gradflow._C.AutogradState";
  StateType.tp_doc = "The autograd switches, read by every op (one instance: autograd_state).";
  StateType.tp_basicsize = sizeof(PyObject);
  StateType.tp_flags = Py_TPFLAGS_DEFAULT;
  StateType.tp_getset = state_getset;
  if (PyType_Ready(&StateType) < 0) throw py::error_already_set();
  PyObject* state = PyObject_New(PyObject, &StateType);
  if (!state) throw py::error_already_set();
  m.add_object("autograd_state", py::reinterpret_steal<py::object>(state));
  for (PyMethodDef* d = methods; d->ml_name; ++d) {
    PyObject* f = PyCFunction_NewEx(d, nullptr, m.ptr());
    if (!f) throw py::error_already_set();
    m.add_object(d->ml_name, py::reinterpret_steal<py::object>(f));
  }
  // As a class attribute, a builtin function does not bind to the instance; an instancemethod
  // does, so that Function can use it as its saved_input method.
  PyObject* method = PyInstanceMethod_New(m.attr("saved_input").ptr());
  if (!method) throw py::error_already_set();
  m.add_object("saved_input_method", py::reinterpret_steal<py::object>(method));
}

}  // namespace gf
