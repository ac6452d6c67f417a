"""Helpers shared by the op definitions: turning operands into tensors, dtype promotion and
axis normalisation."""

import difflib
import functools
import inspect
import numbers

import numpy as np

from .. import dtypes
from .. import tensor as _tensor
from .._jit import trace as _jit_trace


# (dtypes.is_float, inline on the paths every op takes; None without ml_dtypes)
_BF16 = dtypes.bfloat16


def check_range(array, low, high, message):
    """Raises IndexError(``message``, with ``{lo}``/``{hi}`` filled in by the array's extremes)
    unless every value of the integer ``array`` is in [low, high): PyTorch's rule for indices
    (numpy would wrap negative ones). A step of a gf.jit record: every replay checks again."""
    _jit_trace.call(_check_range, array, low, high, message)


def _check_range(array, low, high, message):
    if array.size:
        lo, hi = int(array.min()), int(array.max())
        if lo < low or hi >= high:
            raise IndexError(message.format(lo=lo, hi=hi))


def as_tensor(x, like):
    """``x`` as a Tensor on ``like``'s device; a Python number takes ``like``'s dtype when that
    is a float dtype (so float32 tensors stay float32, as in numpy and PyTorch)."""
    Tensor = _tensor.Tensor
    if isinstance(x, Tensor):
        return x
    if isinstance(x, bool) or isinstance(x, numbers.Number):
        if isinstance(x, (complex, np.complexfloating)):
            raise TypeError(f"complex number {x!r} as an operand: complex numbers are not "
                            "supported (tensors hold bool, integer or float data)")
        if like.dtype.kind == "f" or like.dtype is _BF16:
            dt = like.dtype
        elif isinstance(x, bool):
            dt = dtypes.bool_
        elif isinstance(x, numbers.Integral):
            dt = like.dtype if like.dtype.kind in "iu" else dtypes.int64
        else:
            dt = dtypes.default_float
        return Tensor._make(like._be.scalar(x, dt), like._device)
    return _tensor.tensor(x, device=like.device)


def promote(a, b):
    """Two operands (Tensors or numbers, at least one Tensor) as Tensors of one dtype, by
    PyTorch's rules. The categories are bool < integer < float. A Python number joins in its
    category's default (int64, the default float) only when its category is above the tensor's;
    otherwise it takes the tensor's dtype. Between two tensors, a 0-d tensor counts only when its
    category is above that of a tensor with dimensions; operands that count together take the
    higher category's dtype, or within one category the wider dtype (float32 with float64 gives
    float64, int32 with float64 gives float64, int64 with float32 gives float32)."""
    Tensor = _tensor.Tensor
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.array.dtype is b.array.dtype:
        return a, b  # the common case, kept cheap: it runs on every binary op
    if not isinstance(a, Tensor):
        a = as_tensor(a, b)
        if not dtypes.is_float(b.dtype) and dtypes.is_float(a.dtype):  # int tensor op float number -> float32
            b = b.to(dtypes.default_float)
    elif not isinstance(b, Tensor):
        b = as_tensor(b, a)
        if not dtypes.is_float(a.dtype) and dtypes.is_float(b.dtype):
            a = a.to(dtypes.default_float)
    if a.dtype != b.dtype:
        dt = result_dtype(a, b)
        if a.dtype != dt:
            a = a.to(dt)
        if b.dtype != dt:
            b = b.to(dt)
    return a, b


def lowp_scale(t, x):
    """For ``t * x``, ``x * t`` and ``t / x``: a dimensioned float16/bfloat16 tensor ``t`` and a
    Python (or numpy) number ``x`` as ``x``'s float32 value in a 0-d tensor, or None for any
    other pair. PyTorch multiplies and divides a 16-bit tensor by a number's float32 value (its
    other ops with numbers use the number rounded to the 16-bit dtype, as promote does), and
    autograd/lowp.py rounds the float32 result to ``t``'s dtype."""
    Tensor = _tensor.Tensor
    if (not isinstance(t, Tensor) or not t.ndim or not dtypes.is_lowp(t.dtype)
            or isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, np.number))):
        return None
    return Tensor._make(t._be.scalar(x, dtypes.float32), t._device)


def result_dtype(a, b):
    """The dtype PyTorch gives ``a op b`` for two tensors (see promote)."""
    ca, cb = dtypes.category(a.dtype), dtypes.category(b.dtype)
    if (a.ndim == 0) != (b.ndim == 0):  # one 0-d operand: it counts only from a higher category
        zero, dims = (a, b) if a.ndim == 0 else (b, a)
        return zero.dtype if dtypes.category(zero.dtype) > dtypes.category(dims.dtype) else dims.dtype
    if ca != cb:
        return a.dtype if ca > cb else b.dtype
    return np.promote_types(a.dtype, b.dtype)


def result_dtype_of(tensors):
    """The dtype PyTorch gives an op of several tensors: the dimensioned ones count, and the 0-d
    ones only from a higher category; within the winning group, the highest category's dtypes
    promoted."""
    def widest(ts):
        top = max(dtypes.category(t.dtype) for t in ts)
        return functools.reduce(dtypes.promote_types, [t.dtype for t in ts if dtypes.category(t.dtype) == top])

    dims, zeros = [t for t in tensors if t.ndim], [t for t in tensors if not t.ndim]
    if not dims or not zeros:
        return widest(dims or zeros)
    d, z = widest(dims), widest(zeros)
    return z if dtypes.category(z) > dtypes.category(d) else d


def float_operand(x):
    """Math that only makes sense on floats promotes integer/bool tensors to the default float."""
    dt = x.array.dtype
    return x if dt.kind == "f" or dt is _BF16 else x.to(dtypes.default_float)


def normalize_dims(dims, ndim, op_name):
    """None -> every dim; an int or a sequence of ints (negatives count from the end) -> a sorted
    tuple of distinct dims. As in PyTorch, a 0-d tensor accepts dim 0 and -1, which name no
    dimension (the result is ()). A bool or float dim raises TypeError, an out-of-range one
    IndexError, a repeated one ValueError."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, numbers.Integral):
        items = (dims,)  # (a bool too: rejected below)
    elif isinstance(dims, (numbers.Number, str)) or not hasattr(dims, "__iter__"):
        raise TypeError(f"{op_name}: dim must be an int or a tuple of ints, got {dims!r}")
    else:
        items = tuple(dims)
    span = ndim if ndim else 1
    out = []
    for d in items:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{op_name}: dim must be an int or a tuple of ints, got {dims!r}")
        if d < -span or d >= span:
            raise IndexError(f"{op_name}: dim {d} is out of range for a tensor of {ndim} "
                             f"dimensions (expected {-span} to {span - 1})")
        if ndim:
            out.append(d % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op_name}: repeated dim in {dims!r}")
    return tuple(sorted(out))


normalize_axes = normalize_dims


def normalize_axis(axis, ndim, op):
    """One dim as a non-negative int (0 for a 0-d tensor, which accepts 0 and -1)."""
    if axis is None or not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise TypeError(f"{op}: dim must be an int, got {axis!r}")
    dims = normalize_dims(axis, ndim, op)
    return dims[0] if ndim else 0


_ALIASES = {"axis": "dim", "keepdims": "keepdim", "axes": "dim", "dims": "dim"}


def torch_kwargs(fn):
    """Decorator: numpy's ``axis=``/``keepdims=`` are accepted for ``dim=``/``keepdim=``; any
    other unknown keyword raises a TypeError naming the accepted keyword closest to it."""
    accepted = [n for n, p in inspect.signature(fn).parameters.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    known = frozenset(accepted)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs and not known.issuperset(kwargs):
            kwargs = _rename_kwargs(fn.__name__, accepted, kwargs)
        return fn(*args, **kwargs)

    return wrapper


def _rename_kwargs(name, accepted, kwargs):
    out = {}
    for k, v in kwargs.items():
        if k not in accepted:
            alias = _ALIASES.get(k)
            if alias in accepted and k in ("axis", "keepdims") and alias not in kwargs:
                k = alias
            else:
                guess = alias if alias in accepted else next(
                    iter(difflib.get_close_matches(k, accepted, 1, 0.5)), None)
                hint = f"; did you mean {guess!r}?" if guess else \
                    f" (accepted: {', '.join(accepted[1:]) or 'none'})"
                raise TypeError(f"{name}() got an unexpected keyword argument {k!r}{hint}")
        out[k] = v
    return out
