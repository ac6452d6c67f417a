"""PyTorch's remaining tensor factories (the basic ones live beside Tensor in tensor.py):
empty, empty_like, full_like, linspace, logspace, as_tensor, is_tensor, tril/triu_indices,
and set_printoptions."""

import sys

import numpy as np

from . import backend as _backend
from . import dtypes as _dtypes
from . import tensor as _tensor_module
from .tensor import Tensor, _filled, _shape_args, full, tensor


def empty(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of the given shape with unspecified values (here: zeros, so that nothing read
    by mistake is garbage)."""
    return _filled(0, _shape_args(size), dtype, device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    """``empty`` in the shape (and by default dtype and device) of ``input``."""
    return empty(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``full`` in the shape (and by default dtype and device) of ``input``."""
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` (both included)."""
    host = np.linspace(float(start), float(end), int(steps))
    return tensor(host, dtype=_dtypes.as_dtype(dtype) or _dtypes.default_float, device=device,
                  requires_grad=requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    """``base ** linspace(start, end, steps)``."""
    host = np.logspace(float(start), float(end), int(steps), base=float(base))
    return tensor(host, dtype=_dtypes.as_dtype(dtype) or _dtypes.default_float, device=device,
                  requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing memory where it can (a Tensor of the asked dtype and device
    is returned as is, a CPU numpy array is wrapped); otherwise a copy, as ``gf.tensor``."""
    dt = _dtypes.as_dtype(dtype)
    if isinstance(data, Tensor):
        out = data if dt is None else data.to(dt)
        return out if device is None else out.to(device)
    dev = _backend.canonical_device(device)
    if isinstance(data, np.ndarray) and dev == "cpu" and (dt is None or dt == data.dtype):
        return Tensor._make(data, "cpu")
    return tensor(data, dtype=dt, device=device)


def is_tensor(obj):
    """Whether ``obj`` is a gradflow Tensor."""
    return isinstance(obj, Tensor)


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    """The (2, n) indices of the lower triangle of a row x col matrix (diagonal ``offset``)."""
    r, c = np.tril_indices(int(row), int(offset), int(col))
    return tensor(np.stack([r, c]), dtype=dtype or _dtypes.int64, device=device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    """The (2, n) indices of the upper triangle of a row x col matrix (diagonal ``offset``)."""
    r, c = np.triu_indices(int(row), int(offset), int(col))
    return tensor(np.stack([r, c]), dtype=dtype or _dtypes.int64, device=device)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """How tensors print (as torch.set_printoptions; gradflow prints with numpy's printer).
    ``profile`` is "default", "short" or "full"."""
    presets = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
               "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
               "full": dict(precision=4, threshold=sys.maxsize, edgeitems=3, linewidth=80)}
    if profile is not None and profile not in presets:
        raise ValueError(f"set_printoptions: profile must be one of {list(presets)}, got {profile!r}")
    opts = dict(presets[profile]) if profile else {}
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            opts[k] = v
    if "linewidth" in opts:
        opts["max_line_width"] = opts.pop("linewidth")
    if sci_mode is not None:
        opts["suppress_small"] = not sci_mode
    _tensor_module.PRINT_OPTIONS.update(opts)  # read by Tensor.__repr__
