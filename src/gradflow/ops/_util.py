"""Helpers shared by the op definitions: turning operands into tensors, dtype promotion and
axis normalisation."""

import numbers

import numpy as np

from .. import dtypes
from .. import tensor as _tensor


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
        if like.dtype.kind == "f":
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
    """Two operands (Tensors or numbers, at least one Tensor) as Tensors of one dtype, following
    numpy's promotion for two arrays (float32 with float64 gives float64). A Python number takes
    the tensor's dtype; a float number with an integer tensor gives float32, as in PyTorch."""
    Tensor = _tensor.Tensor
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.data.dtype is b.data.dtype:
        return a, b  # the common case, kept cheap: it runs on every binary op
    if not isinstance(a, Tensor):
        a = as_tensor(a, b)
        if b.dtype.kind != "f" and a.dtype.kind == "f":  # int tensor op float number -> float32
            b = b.to(dtypes.default_float)
    elif not isinstance(b, Tensor):
        b = as_tensor(b, a)
        if a.dtype.kind != "f" and b.dtype.kind == "f":
            a = a.to(dtypes.default_float)
    if a.dtype != b.dtype:
        dt = np.result_type(a.dtype, b.dtype)
        if a.dtype != dt:
            a = a.to(dt)
        if b.dtype != dt:
            b = b.to(dt)
    return a, b


def float_operand(x):
    """Math that only makes sense on floats promotes integer/bool tensors to the default float."""
    return x if x.data.dtype.kind == "f" else x.to(dtypes.default_float)


def normalize_dims(dims, ndim, op_name):
    """The dim/axis argument of ``op_name`` on a tensor of ``ndim`` dimensions: None -> all
    axes; an int or a sequence of ints (negatives count from the end) -> the sorted tuple of
    distinct axes. A bool or a float is a TypeError (True is not axis 1), an axis out of range
    an IndexError, a repeated one a ValueError."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, numbers.Integral) and not isinstance(dims, bool):
        axes = (dims,)
    elif isinstance(dims, (bool, numbers.Number, str)) or not hasattr(dims, "__iter__"):
        raise TypeError(f"{op_name}: dim must be an int or a tuple of ints, got {dims!r}")
    else:
        axes = tuple(dims)
    out = []
    for a in axes:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            raise TypeError(f"{op_name}: dim must be an int or a tuple of ints, got {dims!r}")
        if a < -ndim or a >= ndim:
            raise IndexError(f"{op_name}: dim {a} is out of range for a tensor of {ndim} "
                             "dimensions")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op_name}: repeated dim in {dims!r}")
    return tuple(sorted(out))



def normalize_axis(axis, ndim, op):
    return normalize_dims(axis, ndim, op)[0] if ndim else 0

