"""Tensor: a backend array (numpy on the CPU, CuPy on a GPU) plus what autograd needs."""

import numbers

import numpy as np

from . import _C
from . import backend as _backend
from ._jit import trace as _jit_trace
from . import dtypes as _dtypes
from .autograd import engine as _engine
from .autograd import function as _function
from .autograd import hooks as _hooks
from .autograd import views as _views
from .autograd.grad_mode import state as _state
from .ops import activation as _act
from .ops import arith as _arith
from .ops import linalg as _linalg
from .ops import reduce as _reduce
from .ops import shape as _shape
from .ops import _util
from .ops import elementwise as _elementwise
from .ops import index as _index


_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
               "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
               "bool": "Bool"}
PRINT_OPTIONS = {}  # numpy array2string options, set by gf.set_printoptions


class Size(tuple):
    """A tensor's shape (as ``torch.Size``): a tuple of ints, with ``numel()``."""

    __slots__ = ()

    def numel(self):
        """The number of elements a tensor of this shape holds."""
        n = 1
        for d in self:
            n *= d
        return n

    def __getitem__(self, i):
        out = tuple.__getitem__(self, i)
        return Size(out) if isinstance(i, slice) else out

    def __repr__(self):
        return f"gf.Size({list(self)})"

    __str__ = tuple.__repr__  # error messages read "(2, 3)"


class Tensor(_C.TensorBase):
    """An n-dimensional array that can record the ops applied to it.

    ``array`` is the backend array (``data`` is PyTorch's: a tensor sharing it). ``grad_fn`` is the tape node that produced it (None for
    leaves). ``_vbox`` is a one-element list holding the version counter, shared with views,
    which in-place ops bump so that stale saved tensors are detected in backward. These fields
    live in the C base (csrc/autograd.cpp), which makes each new tensor with them set to None,
    False and a fresh version box, so that op outputs are made without running Python.
    """

    __slots__ = ()
    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to Tensor's operators

    def __init__(self, data, be=None, node=None, *, dtype=None, device=None, requires_grad=False):
        """``gf.Tensor(data, dtype=..., device=..., requires_grad=...)`` builds a leaf from data,
        as ``gf.tensor`` does. Internally ``Tensor(array, backend, node)`` wraps a backend array
        (the op path: one call, every slot set once)."""
        if be is None:
            t = tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
            data, be, node, requires_grad = t.array, t._be, None, t.requires_grad
        else:
            requires_grad = node is not None
        self.array = data  # first: the requires_grad setter checks the data's dtype
        self._be = be
        if node is not None:
            self._node = node
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _make(cls, data, device, node=None, vbox=None, base=None):
        """A tensor on ``device`` (a canonical device string) around a backend array; ``vbox``
        and ``base`` make it a view sharing its base's version counter."""
        t = cls(data, _backend.get(device), node)
        if vbox is not None:
            t._vbox = vbox
        t._base = base
        return t

    # ---- properties ----------------------------------------------------------------------------
    @property
    def shape(self):
        """The dims, as a :class:`Size` (a tuple of ints)."""
        return Size(self.array.shape)

    @property
    def dtype(self):
        """The element type (a numpy dtype: ``gf.float32`` is ``np.dtype('float32')``)."""
        return self.array.dtype

    @property
    def device(self):
        """Where the values live: "cpu" or "cuda:N"."""
        return self._be.name

    @property
    def _device(self):
        return self._be.name

    @property
    def ndim(self):
        """The number of dims."""
        return self.array.ndim

    def size(self, dim=None):
        """The shape as a :class:`Size`, or with ``dim`` the length of that dim (an int)."""
        if dim is None:
            return Size(self.array.shape)
        if self.ndim == 0:
            raise IndexError(f"size({dim!r}): a 0-d tensor has no dims")
        return self.array.shape[_util.normalize_axis(dim, self.ndim, "size")]

    def numel(self):
        """The number of elements."""
        return int(self.array.size)

    nelement = numel

    def stride(self, dim=None):
        """The step in elements between neighbours along each dim (a tuple), or along ``dim``."""
        steps = tuple(s // self.array.itemsize for s in self.array.strides)
        return steps if dim is None else steps[_util.normalize_axis(dim, self.ndim, "stride")]

    def is_contiguous(self, memory_format=None):
        """Whether the elements lie in memory in row-major order with no gaps."""
        return bool(self.array.flags.c_contiguous)

    def dim(self):
        """The number of dims (as ``ndim``)."""
        return self.array.ndim

    ndimension = dim

    def element_size(self):
        """Bytes per element."""
        return self.array.dtype.itemsize

    @property
    def itemsize(self):
        """Bytes per element."""
        return self.array.dtype.itemsize

    @property
    def is_cuda(self):
        """Whether the tensor lives on a GPU."""
        return self._device != "cpu"

    def is_floating_point(self):
        """Whether the dtype is a floating-point one (bfloat16 included)."""
        return _dtypes.is_float(self.dtype)

    @property
    def T(self):
        """Every dim reversed (for a 2-d tensor, the matrix transpose)."""
        return _shape.reverse_dims(self)

    @property
    def mT(self):
        """The last two dims swapped (a batch of matrices transposed)."""
        return _shape.matrix_transpose(self)

    @property
    def is_leaf(self):
        """True for tensors not made by a recorded op (inputs, parameters)."""
        return self._node is None

    @property
    def grad_fn(self):
        """The tape node that made this tensor (None for leaves)."""
        return self._node

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def numpy(self):
        """The values as a numpy array (a copy from the GPU; on the CPU, the array itself)."""
        if self.requires_grad:
            raise RuntimeError("numpy() on a tensor that requires grad: call .detach().numpy()")
        if _jit_trace.active:
            _jit_trace.host_read(self)
        return self.array if self._device == "cpu" else self._be.to_numpy(self.array)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(f"item(): the tensor has {self.array.size} elements, not 1")
        return self._host().reshape(()).item()

    def tolist(self):
        """The values as (nested lists of) Python numbers; a 0-d tensor gives a number."""
        return self._host().tolist()

    def __format__(self, spec):
        """``f"{t:.3f}"`` formats a one-element tensor's value; an empty spec gives repr."""
        if not spec:
            return repr(self)
        if self.array.size != 1:
            raise TypeError(f"format spec {spec!r} needs a one-element tensor, got shape {self.shape}")
        return format(self.item(), spec)

    def _host(self):
        if _jit_trace.active:  # (values handed to Python cannot be replayed)
            _jit_trace.host_read(self)
        return self.array if self._device == "cpu" else self._be.to_numpy(self.array)

    def __repr__(self):
        host = self._host()
        if _dtypes.is_bfloat16(host.dtype):  # (as floats: numpy prints ml_dtypes' 1.0 as "1")
            host = host.astype(np.float32)
        body = np.array2string(host, separator=", ", prefix="tensor(", **PRINT_OPTIONS)
        extra = []
        if self.dtype != _dtypes.float32:
            extra.append(f"dtype={self.dtype}")
        if self._device != "cpu":
            extra.append(f"device='{self._device}'")
        if self._node is not None:
            extra.append(f"grad_fn=<{self._node.name}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extra) + ")"

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.array.size} elements is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.array.size != 1:
            raise TypeError("only integer tensors of one element can be used as an index")
        return int(self.item())

    def __hash__(self):
        return id(self)

    def __array__(self, dtype=None, copy=None):
        a = self._host()
        return a if dtype is None else a.astype(dtype)

    def __dlpack__(self, *args, **kwargs):
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def __reduce_ex__(self, protocol):
        """pickle, copy.copy and copy.deepcopy: a leaf's values (copied), device, requires_grad
        and grad, and a subclass's own attributes (Parameter). A tensor made by a recorded op
        refuses, as its graph cannot come along."""
        if self._node is not None:
            raise RuntimeError("only leaf tensors can be pickled or copied; this one was made by "
                               f"{self._node.name}: call .detach() first")
        state = getattr(self, "__dict__", None) or None
        return (_rebuild, (type(self), self._host().copy(), self._device, self.requires_grad,
                           self.grad), state)

    # ---- autograd ---------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Backpropagates from this tensor, accumulating into the ``.grad`` of the leaves that
        require grad. ``gradient``: d(something)/d(this tensor), needed unless it has one
        element; ``retain_graph`` keeps the saved values for another backward;
        ``create_graph`` records the backward pass (for higher derivatives)."""
        _engine.backward(self, gradient, retain_graph, create_graph)

    def detach(self):
        """The same values, cut from the graph (shares memory and the version counter)."""
        return Tensor._make(self.array, self._device, None, self._vbox, self)

    @property
    def data(self):
        """The values as a tensor that shares this one's memory but not its graph, version
        counter or ``requires_grad``, as PyTorch's ``.data``: changes through it are invisible to
        autograd (``p.data -= lr * p.grad`` updates a leaf in place). The backend array itself
        is :attr:`array`."""
        return Tensor._make(self.array, self._device)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data can only be set to a Tensor, got {type(value).__name__}"
                            " (the backend array itself is Tensor.array)")
        self.array = value  # its array and its device

    def register_hook(self, hook):
        """Runs ``hook(grad)`` on this tensor's gradient in each backward (a returned tensor
        replaces it); returns a handle whose remove() unregisters it."""
        return _hooks.register_hook(self, hook)

    def retain_grad(self):
        """Keeps this non-leaf tensor's gradient in ``.grad`` after backward."""
        _hooks.retain_grad(self)

    @property
    def retains_grad(self):
        """Whether retain_grad() was called on this non-leaf tensor."""
        return _hooks.retains_grad(self)

    def requires_grad_(self, requires_grad=True):
        """Sets whether this leaf records ops for gradients (floats only); returns self."""
        # (the setter checks the value: a bool, True only for floating point)
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach()")
        self.requires_grad = requires_grad
        return self

    def zero_grad(self):
        """Clears ``.grad`` (sets it to None)."""
        self.grad = None

    def register_post_accumulate_grad_hook(self, hook):
        """Calls ``hook(self)`` once this leaf's ``.grad`` is complete for a backward pass
        (after accumulation), as PyTorch's hook of that name. Returns a handle; ``.remove()``
        unregisters it."""
        return _hooks.register_post_accumulate_grad(self, hook)

    # ---- devices and dtypes -------------------------------------------------------------------------
    def to(self, device_or_dtype=None, dtype=None, device=None):
        """t.to("cuda"), t.to(gf.float64), t.to("cpu", gf.float32)."""
        target_device, target_dtype = device, dtype
        if device_or_dtype is not None:
            try:
                target_device = _backend.canonical_device(device_or_dtype)
            except ValueError:
                if isinstance(device_or_dtype, str) and not _dtypes.is_dtype_name(device_or_dtype):
                    raise  # neither: "unknown device"
                target_dtype = _dtypes.as_dtype(device_or_dtype)
        target_device = (self._device if target_device is None
                          else _backend.canonical_device(target_device))
        cast = target_dtype is not None and _dtypes.as_dtype(target_dtype) != self.dtype
        if cast:
            target_dtype = _dtypes.check_supported(_dtypes.as_dtype(target_dtype), "to",
                                                   target_device)
        out = self
        if target_device != self._device:
            from .ops.device import to_device

            # The cast runs where the data is before a move to a GPU and on the CPU after a
            # move to it: from and to the CPU, the cast is the CPU's.
            if cast and target_device != "cpu":
                out, cast = _shape.cast(out, target_dtype), False
            out = to_device(out, target_device)
        return _shape.cast(out, target_dtype) if cast else out

    def cuda(self, index=0):
        """The tensor on GPU ``index`` (``to("cuda:index")``)."""
        return self.to(f"cuda:{index}")

    def cpu(self):
        """The tensor on the CPU (itself if it is there)."""
        return self.to("cpu")

    def float(self):
        """The tensor as float32 (itself if it is already)."""
        return self.to(_dtypes.float32)

    def double(self):
        """The tensor as float64."""
        return self.to(_dtypes.float64)

    def half(self):
        """The tensor as float16."""
        return self.to(_dtypes.float16)

    def uniform_(self, from_=0.0, to=1.0, *, generator=None):
        """Fills with samples of U(from_, to) in place (as nn.init.uniform_); returns self."""
        from .nn import init
        if _state.grad_enabled:
            self._check_inplace("uniform_")
        return init.uniform_(self, from_, to, generator=generator)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Fills with samples of N(mean, std^2) in place (as nn.init.normal_); returns self."""
        from .nn import init
        if _state.grad_enabled:
            self._check_inplace("normal_")
        return init.normal_(self, mean, std, generator=generator)

    def bfloat16(self):
        """The tensor as bfloat16 (stored as ml_dtypes' type; ops compute in float32)."""
        return self.to("bfloat16")

    def long(self):
        """The tensor as int64."""
        return self.to(_dtypes.int64)

    def int(self):
        """The tensor as int32."""
        return self.to(_dtypes.int32)

    def short(self):
        """The tensor as int16."""
        return self.to(_dtypes.int16)

    def bool(self):
        """The tensor as bool."""
        return self.to(_dtypes.bool_)

    def type(self, dtype=None):
        """With no argument, the type name ("gradflow.FloatTensor"); else the tensor as ``dtype``
        (a dtype or such a name)."""
        if dtype is None:
            return "gradflow." + _TYPE_NAMES.get(self.dtype.name, self.dtype.name) + "Tensor"
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {v: k for k, v in _TYPE_NAMES.items()}
            dtype = names[dtype.rsplit(".", 1)[-1][:-len("Tensor")]]
        return self.to(_dtypes.as_dtype(dtype))

    def type_as(self, other):
        """The tensor in ``other``'s dtype."""
        return self.to(other.dtype)

    # ---- operators --------------------------------------------------------------------------------
    __add__ = _arith.add

    def __radd__(self, o):
        return _arith.add(o, self)

    __sub__ = _arith.sub

    def __rsub__(self, o):
        return _arith.sub(o, self)

    __mul__ = _arith.mul

    def __rmul__(self, o):
        return _arith.mul(o, self)

    def __truediv__(self, o):
        return _arith.div(self, o)

    def __rtruediv__(self, o):
        return _arith.div(o, self)

    def __pow__(self, o):
        return _arith.pow(self, o)

    def __rpow__(self, o):
        return _arith.pow(o, self)

    def pow(self, exponent):
        """self ** exponent."""
        return _arith.pow(self, exponent)

    def __neg__(self):
        return _arith.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _arith.abs(self)

    def __matmul__(self, o):
        return _linalg.matmul(self, o)

    def __rmatmul__(self, o):
        return _linalg.matmul(o, self)

    def __eq__(self, o):
        return _arith.compare("eq", self, o)

    def __ne__(self, o):
        return _arith.compare("ne", self, o)

    def __lt__(self, o):
        return _arith.compare("lt", self, o)

    def __le__(self, o):
        return _arith.compare("le", self, o)

    def __gt__(self, o):
        return _arith.compare("gt", self, o)

    def __ge__(self, o):
        return _arith.compare("ge", self, o)

    def __and__(self, o):
        return _elementwise.bitwise_and(self, o)

    def __rand__(self, o):
        return _elementwise.bitwise_and(o, self)

    def __or__(self, o):
        return _elementwise.bitwise_or(self, o)

    def __ror__(self, o):
        return _elementwise.bitwise_or(o, self)

    def __invert__(self):
        return _elementwise.bitwise_not(self)

    def __getitem__(self, index):
        index = _index_arrays(index, self)
        ints_first = _split_int_index(index)
        if ints_first is not None:  # integers are basic indices in PyTorch: applied first
            return _shape.getitem(_shape.getitem(self, ints_first[0]), ints_first[1])
        return _shape.getitem(self, index)

    # ---- in place ---------------------------------------------------------------------------------
    def __setitem__(self, index, value):
        index = _index_arrays(index, self)
        ints_first = _split_int_index(index)
        if ints_first is not None:
            if _state.grad_enabled and self.requires_grad:
                raise RuntimeError("assigning through an index that mixes integers with index "
                                   "arrays is not supported on a tensor that requires grad")
            self[ints_first[0]][ints_first[1]] = value
            return
        value = _arith.as_tensor(value, self)
        if value.dtype != self.dtype:
            value = value.to(self.dtype)
        if _state.grad_enabled and (self.requires_grad or value.requires_grad):
            self._check_inplace("__setitem__")
            result = _shape.SetItem.apply(self._snapshot(), value, index=index)
            self._write(result, "__setitem__")
        else:
            self._be.setitem(self.array, index, value.array)
            self._vbox[0] += 1

    def _inplace(self, op, other):
        """``self op= other`` writing into self's memory; recorded on the tape when it needs to
        be (then the old value is kept for any backward that reads it)."""
        if op == "sub":
            _arith.check_not_bool("Subtraction", self, other)
        other = _arith.as_tensor(other, self)
        if other.dtype is not self.dtype or op == "div":  # (the same dtype always casts)
            _check_inplace_cast(op, "true_divide" if op == "div" else other.dtype, self.dtype)
        if _state.grad_enabled and (self.requires_grad or other.requires_grad):
            self._check_inplace(op)
            result = getattr(_arith, op)(self._snapshot(), other)
            if result.shape != self.shape:
                raise ValueError(
                    f"in-place {op}: the result's shape {result.shape} differs from the tensor's "
                    f"shape {self.shape}")
            self._write(result.to(self.dtype), op)
        else:
            if other.dtype != self.dtype:
                other = other.to(self.dtype)
            try:
                getattr(self._be, op)(self.array, other.array, self.array)  # (a, b, out)
            except (ValueError, TypeError) as e:
                raise ValueError(f"in-place {op} of shape {other.shape} into {self.shape}: {e}") from None
            self._vbox[0] += 1
        return self

    def _check_inplace(self, op):
        if self._node is None and self.requires_grad:
            raise RuntimeError(
                f"{op}: a leaf tensor that requires grad is being modified in place; "
                "wrap the update in `with gf.no_grad():`")

    def _snapshot(self):
        # The pre-op value, as its own tensor, for backward functions that need it.
        return Tensor._make(self._be.copy(self.array), self._device, self._node)

    def _write(self, result, op):
        """Makes ``result`` (recorded) the new value of self, or of the region of its base
        that self views."""
        if self._base is None:
            self._commit_inplace(result)
        else:
            _views.write_through(self, result, op)

    def _commit_inplace(self, result):
        self._be.setitem(self.array, Ellipsis, result.array)
        self._node = result._node
        self.requires_grad = result.requires_grad
        self._vbox[0] += 1
        if self._node is not None and self._node._out_data is not None:
            # The node saved its output: point it at our memory and version counter.
            self._node._out_data = self.array
            self._node._out_vbox = self._vbox
            self._node._out_version = self._vbox[0]
        _views.rebase(self)  # the views of self now read its new value

    def __iadd__(self, o):
        return self._inplace("add", o)

    def __isub__(self, o):
        return self._inplace("sub", o)

    def __imul__(self, o):
        return self._inplace("mul", o)

    def __itruediv__(self, o):
        return self._inplace("div", o)

    def add_(self, o, alpha=1):
        """``self += alpha * o`` in place; returns self."""
        return self._inplace("add", o if alpha == 1 else o * alpha)

    def sub_(self, o, alpha=1):
        """``self -= alpha * o`` in place; returns self."""
        return self._inplace("sub", o if alpha == 1 else o * alpha)

    def mul_(self, o):
        """``self *= o`` in place; returns self."""
        return self._inplace("mul", o)

    def div_(self, o):
        """``self /= o`` in place; returns self."""
        return self._inplace("div", o)

    def zero_(self):
        """Fills with zeros in place; returns self."""
        return self.fill_(0)

    def fill_(self, value):
        """Fills with ``value`` in place; returns self."""
        self[...] = value
        return self

    def copy_(self, src):
        """Copies ``src``'s values (broadcast, converted to this dtype) in place; returns self."""
        self[...] = src
        return self

    # ---- math methods: each is the gf function of the same name ------------------------------------
    exp = _arith.exp
    log = _arith.log
    sqrt = _arith.sqrt
    abs = _arith.abs

    def clip(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        """Values limited to [min, max] (either may be None)."""
        return _arith.clip(self, min, max)

    clamp = clip

    sigmoid = _act.sigmoid
    tanh = _act.tanh
    relu = _act.relu
    softmax = _act.softmax
    log_softmax = _act.log_softmax

    sum = _reduce.sum
    mean = _reduce.mean
    max = _reduce.max
    min = _reduce.min
    amax = _reduce.amax
    amin = _reduce.amin
    aminmax = _reduce.aminmax
    logsumexp = _reduce.logsumexp
    var = _reduce.var
    std = _reduce.std
    argmax = _reduce.argmax
    argmin = _reduce.argmin

    def matmul(self, o):
        """The matrix product (as ``@``)."""
        return _linalg.matmul(self, o)

    def reshape(self, *shape):
        """The same values in a new shape (one dim may be -1); a view where possible."""
        return _shape.reshape(self, *shape)

    view = reshape

    def view_as(self, other):
        """``reshape(other.shape)``."""
        return _shape.reshape(self, other.shape)

    def reshape_as(self, other):
        """``reshape(other.shape)``."""
        return _shape.reshape(self, other.shape)

    transpose = _shape.transpose
    swapaxes = swapdims = _shape.transpose
    permute = _shape.permute
    t = _shape.t
    movedim = _shape.movedim
    flatten = _shape.flatten
    unflatten = _shape.unflatten
    squeeze = _shape.squeeze
    unsqueeze = _shape.unsqueeze
    split = _shape.split

    def broadcast_to(self, shape):
        """The tensor broadcast to ``shape`` (a view)."""
        return _shape.broadcast_to(self, shape)

def _index_arrays(index, like):
    """Tensors inside an index become backend arrays on the indexed tensor's device. Arrays are
    copies: the index is kept for backward, and a later change to the caller's index tensor,
    array or list must not change the gradient."""
    if isinstance(index, tuple):
        return tuple(_index_item(i, like) for i in index)
    return _index_item(index, like)


def _split_int_index(index):
    """For an index mixing integers with index arrays: (the integers, the rest), to apply one
    after the other. numpy counts an integer as an index array, so with a slice between them
    it would move the arrays' dim to the front; PyTorch applies integers first, as here.
    None for any other index."""
    if not isinstance(index, tuple):
        return None
    has_int = has_array = False
    for i in index:
        if isinstance(i, numbers.Integral) and not isinstance(i, bool):
            has_int = True
        elif i is not None and i is not Ellipsis and not isinstance(i, slice):
            has_array = True
    if not (has_int and has_array):
        return None
    first, rest = [], []
    for i in index:
        if isinstance(i, numbers.Integral) and not isinstance(i, bool):
            first.append(i)
        elif i is None:
            rest.append(i)
        elif i is Ellipsis:
            first.append(i)
            rest.append(i)
        else:
            nd = getattr(i, "ndim", None)
            dims = nd if nd is not None and getattr(i, "dtype", None) == bool else 1
            first.extend([slice(None)] * dims)
            rest.append(i)
    return tuple(first), tuple(rest)


def _index_item(i, like):
    if isinstance(i, Tensor):
        if i._device != like._device:
            raise RuntimeError(f"indexing a tensor on {like._device} with an index on {i._device}")
        if i.dtype.kind not in "iub":
            raise IndexError(f"tensors used as indices must be integer or bool, not {i.dtype}")
        return i._be.copy(i.array)
    if isinstance(i, (list, np.ndarray)):
        return np.array(i) if like._device == "cpu" else like._be.xp.asarray(i)
    return i


def _attach_methods():
    """PyTorch's tensor methods that are the gf function of the same name with the tensor as
    the first argument."""
    from .ops import elementwise, layout, scan

    table = (
        (elementwise, """sin cos tan asin acos atan sinh cosh asinh acosh atanh arcsin arccos
         arctan arcsinh arccosh arctanh erf erfc erfinv log1p expm1 log2 log10 exp2 rsqrt
         reciprocal square sign floor ceil round trunc fix frac atan2 arctan2 copysign fmod
         remainder floor_divide logaddexp hypot lerp div divide true_divide isnan isinf
         isfinite isposinf isneginf isclose allclose equal nan_to_num bitwise_and bitwise_or
         bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift logical_not
         logical_and logical_or logical_xor xlogy eq ne lt le gt ge greater greater_equal less
         less_equal not_equal add sub subtract mul multiply clamp_min clamp_max addcmul
         addcdiv logit fmax fmin absolute positive sgn sinc float_power"""),
        (layout, """expand expand_as repeat repeat_interleave tile chunk unbind narrow flip fliplr
         flipud roll tril triu diag diagonal diag_embed clone contiguous ravel tensor_split diff
         take kron rot90 hsplit vsplit"""),
        (scan, """prod all any count_nonzero norm cumsum cumprod logcumsumexp cummax cummin sort
         argsort topk kthvalue median mode unique unique_consecutive nansum nanmean bincount"""),
        (_index, """gather take_along_dim index_select scatter scatter_add index_add masked_fill
         masked_select nonzero argwhere select scatter_reduce index_fill index_copy"""),
        (_reduce, "var_mean std_mean"),
        (_linalg, "mm bmm mv dot vdot inner outer ger addmm baddbmm trace cross dist"),
    )
    for module, names in table:
        for name in names.split():
            setattr(Tensor, name, getattr(module, name))
    Tensor.__mod__ = elementwise.remainder
    Tensor.__rmod__ = lambda self, o: elementwise.remainder(o, self)
    Tensor.__floordiv__ = elementwise.floor_divide
    Tensor.__rfloordiv__ = lambda self, o: elementwise.floor_divide(o, self)
    Tensor.__xor__ = elementwise.bitwise_xor
    Tensor.__lshift__ = elementwise.bitwise_left_shift
    Tensor.__rshift__ = elementwise.bitwise_right_shift
    Tensor.neg = Tensor.negative = _arith.neg
    from .ops import activation

    Tensor.maximum, Tensor.minimum = _arith.maximum, _arith.minimum
    for name in ("exp", "log", "sqrt", "abs", "neg", "pow"):
        setattr(Tensor, name + "_", _inplace_form(getattr(_arith, name), name + "_"))
    for name in ("sigmoid", "tanh", "relu"):
        setattr(Tensor, name + "_", _inplace_form(getattr(activation, name), name + "_"))
    for name in ("square", "reciprocal", "rsqrt", "sin", "cos", "erf", "erfinv", "floor", "ceil",
                 "round", "trunc", "sign", "frac", "nan_to_num", "lerp", "clamp_min", "clamp_max",
                 "addcmul", "addcdiv", "fmod", "remainder", "copysign", "xlogy"):
        setattr(Tensor, name + "_", _inplace_form(getattr(elementwise, name), name + "_"))
    for name, fn in (("clamp_", elementwise.clamp), ("clip_", elementwise.clamp),
                     ("masked_fill_", _index.masked_fill), ("index_add_", _index.index_add),
                     ("scatter_", _index.scatter), ("scatter_add_", _index.scatter_add),
                     ("scatter_reduce_", _index.scatter_reduce), ("index_fill_", _index.index_fill),
                     ("index_copy_", _index.index_copy)):
        setattr(Tensor, name, _inplace_form(fn, name))
    for name, make in (("new_zeros", "zeros"), ("new_ones", "ones"), ("new_empty", "zeros")):
        setattr(Tensor, name, _new_form(make, name))


def _check_inplace_cast(op, result, out):
    """An in-place op must not write a result of a higher category (float into an integer
    tensor, integer into a bool one) into its tensor: torch raises, and a cast would silently
    truncate. ``result``: the dtype the op computes in, or "true_divide" (always a float)."""
    if not _dtypes.can_cast(_dtypes.default_float if result == "true_divide" else result, out):
        shown = "a float" if result == "true_divide" else result
        raise RuntimeError(f"{op}: result type {shown} can't be cast to the desired output type "
                           f"{out} (an in-place op keeps its tensor's dtype)")


def _inplace_form(fn, name):
    """``x.fn_(...)``: x's values replaced by ``fn(x, ...)``, recorded as an in-place write."""
    def method(self, *args, **kwargs):
        recording = _state.grad_enabled and (self.requires_grad or any(
            isinstance(a, Tensor) and a.requires_grad for a in (*args, *kwargs.values())))
        # while recording, fn reads a snapshot: the write below must not change what it saved
        result = fn(self._snapshot() if recording else self, *args, **kwargs)
        _check_inplace_cast(name, result.dtype, self.dtype)
        self.copy_(result)
        return self

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In place: the tensor becomes ``{fn.__name__}(self, ...)``; returns self."
    return method


def _new_form(make, name):
    """``x.new_zeros(size)`` and the like: a new tensor with x's dtype and device by default."""
    def method(self, *size, dtype=None, device=None, requires_grad=False):
        return globals()[make](*size, dtype=dtype or self.dtype, device=device or self.device,
                               requires_grad=requires_grad)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = (f"A new tensor of the given size filled as ``{make}``, with this "
                      "tensor's dtype and device unless given.")
    return method


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A new tensor of ``size`` filled with ``fill_value``, with this tensor's dtype and device
    unless given."""
    return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                requires_grad=requires_grad)


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    """A new tensor from ``data`` (copied), with this tensor's dtype and device unless given."""
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                  requires_grad=requires_grad)


def _where(self, condition, other):
    """``self`` where ``condition`` is True, else ``other`` (gf.where(condition, self, other))."""
    return _arith.where(condition, self, other)


def _multinomial(self, num_samples, replacement=False, *, generator=None):
    """gf.multinomial(self, num_samples, replacement, generator=generator)."""
    from .random import multinomial
    return multinomial(self, num_samples, replacement, generator=generator)


def _bernoulli(self, p=None, *, generator=None):
    """gf.bernoulli(self, p, generator=generator)."""
    from .random import bernoulli
    return bernoulli(self, p, generator=generator)


def _bernoulli_(self, p=0.5, *, generator=None):
    """Fills with 0/1 samples, 1 with probability ``p``, in place; returns self."""
    from .random import bernoulli
    if _state.grad_enabled:
        self._check_inplace("bernoulli_")
    from .autograd.grad_mode import no_grad
    with no_grad():
        return self.copy_(bernoulli(self, p, generator=generator))


_attach_methods()
Tensor.new_full, Tensor.new_tensor = _new_full, _new_tensor
Tensor.where, Tensor.multinomial, Tensor.bernoulli = _where, _multinomial, _bernoulli
Tensor.bernoulli_ = _bernoulli_
_function.bind_tensor_type(Tensor)


def _rebuild(cls, host, device, requires_grad, grad):
    """The inverse of Tensor.__reduce_ex__."""
    be = _backend.get(device)
    t = cls.__new__(cls)
    Tensor.__init__(t, be.to_device_array(host), be)
    t.requires_grad = requires_grad
    t.grad = grad
    return t


# ---- construction ---------------------------------------------------------------------------------
def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor from a Python number, nested list, numpy/CuPy array or Tensor (copied).

    dtype None: floats become float32, ints int64, bools bool; numpy arrays keep their dtype.
    """
    dev = _backend.canonical_device(device)
    dt = _dtypes.as_dtype(dtype)
    if isinstance(data, Tensor):
        data = data._host() if dev == "cpu" or data._device == "cpu" else data.array
    src = _backend.device_of_array(data) if hasattr(data, "__cuda_array_interface__") else "cpu"
    if src != "cpu" and src != dev:
        # Another device's array: a host copy for the CPU, else a device-to-device copy (a
        # memcpy, needing no peer access; CuPy's array() would run a kernel across devices).
        src_be = _backend.get(src)
        data = src_be.to_numpy(data) if dev == "cpu" else _backend.get(dev).to_device_array(data)
    if dt is None:
        if isinstance(data, (np.ndarray, np.generic)) or hasattr(data, "__cuda_array_interface__"):
            dt = data.dtype
        else:
            probe = np.asarray(data)
            if probe.dtype.kind == "f":
                dt = _dtypes.default_float
            elif probe.dtype.kind in "iu":
                dt = _dtypes.int64
            elif probe.dtype.kind == "b":
                dt = _dtypes.bool_
            else:
                raise TypeError(f"cannot make a tensor from {type(data).__name__} of dtype {probe.dtype}")
    _dtypes.check_supported(np.dtype(dt), "tensor", dev)
    if not dt.isnative:  # '>f4' on x86: the kernels read memory in the machine's byte order
        dt = dt.newbyteorder("=")
    be = _backend.get(dev)
    if _dtypes.is_lowp(dt):
        if not hasattr(data, "__cuda_array_interface__"):
            data = np.asarray(data)
        if _dtypes.via_float32(data.dtype, dt):
            data = data.astype(_dtypes.float32)
    arr = be.xp.array(data, dtype=dt, copy=True) if dev != "cpu" else np.array(data, dtype=dt)
    t = Tensor._make(arr, dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(a):
    """A CPU tensor sharing memory with the numpy array ``a``."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy array, got {type(a).__name__}")
    _dtypes.check_supported(a.dtype, "from_numpy")
    if not a.dtype.isnative:  # shared memory cannot be converted (PyTorch raises too)
        raise ValueError(f"from_numpy: the array's byte order ({a.dtype.str}) is not the machine's;"
                         " convert it first: a.astype(a.dtype.newbyteorder('='))")
    return Tensor._make(a, "cpu")


def from_dlpack(x):
    """A tensor sharing memory with any DLPack producer (CuPy, PyTorch, numpy arrays)."""
    device_type, device_id = x.__dlpack_device__()
    if int(device_type) == 1:  # kDLCPU
        dev, arr = "cpu", np.from_dlpack(x)
    else:
        dev = f"cuda:{int(device_id)}"
        arr = _backend.get(dev).xp.from_dlpack(x)
    _dtypes.check_supported(arr.dtype, "from_dlpack", dev)
    return Tensor._make(arr, dev)


def _shape_args(shape):
    if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _filled(fill, shape, dtype, device, requires_grad):
    dev = _backend.canonical_device(device)
    dt = _dtypes.check_supported(_dtypes.as_dtype(dtype) or _dtypes.default_float, "full", dev)
    be = _backend.get(dev)
    t = Tensor._make(be.xp.full(shape, fill, dtype=dt), dev)
    return t.requires_grad_(True) if requires_grad else t


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros of the given shape (the default float dtype unless ``dtype``)."""
    return _filled(0, _shape_args(shape), dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    """A tensor of ones of the given shape (the default float dtype unless ``dtype``)."""
    return _filled(1, _shape_args(shape), dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    """dtype None: from the fill value, as PyTorch (bool, int64, else float32)."""
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = _dtypes.bool_
        elif isinstance(fill_value, numbers.Integral):
            dtype = _dtypes.int64
    return _filled(fill_value, shape, dtype, device, requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    """Zeros in the shape (and by default dtype and device) of ``t``."""
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    """Ones in the shape (and by default dtype and device) of ``t``."""
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    """start, start + step, ... up to (not including) stop; ``arange(n)`` is 0 .. n-1. int64
    for integer arguments, the default float otherwise."""
    if stop is None:
        start, stop = 0, start
    host = np.arange(start, stop, step)
    if dtype is None and _dtypes.is_float(host.dtype):
        dtype = _dtypes.default_float
    return tensor(host, dtype=dtype or _dtypes.int64, device=device, requires_grad=requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The n x m (n x n) matrix with ones on the diagonal."""
    dev = _backend.canonical_device(device)
    be = _backend.get(dev)
    dt = _dtypes.check_supported(_dtypes.as_dtype(dtype) or _dtypes.default_float, "eye", dev)
    t = Tensor._make(be.xp.eye(n, m, dtype=dt), dev)
    return t.requires_grad_(True) if requires_grad else t
