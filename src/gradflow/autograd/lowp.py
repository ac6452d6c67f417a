"""16-bit float arithmetic (float16, bfloat16), in one place: an op whose inputs include a
float16 or bfloat16 array runs its forward on float32 copies of them and rounds a float32
result to that dtype once, as PyTorch's CPU kernels do. numpy has no bfloat16 arithmetic of its
own (ml_dtypes' type, kind 'V') and computes float16 in float16 (its sums round at every step),
and the C kernels take only float32/float64, so the float32 kernels do the work. Ops written as
several ops (layer_norm, the losses) round once too: :func:`in_float32` runs them in float32.

``Function.apply`` (csrc/autograd.cpp) calls :func:`forward` instead of the op's forward when
an input array is float16 or bfloat16, on every device (one rule: CuPy's float16 arrays take
this path too, as gradflow's CUDA kernels are written for float32/float64); backward is written
with Tensor ops, which come here again. Ops that only move or reinterpret data (views, casts,
device moves) set ``Function.lowp_native`` and get the 16-bit arrays themselves: a view must
share the input's memory, and a cast must produce its own dtype.
"""

import functools
import inspect

import numpy as np

from .. import _C
from .. import dtypes

_f32 = np.dtype(np.float32)
_MIXED = object()  # (the float inputs were of several dtypes: the result is not narrowed)


def _narrow_to(narrow, dt):
    """The dtype to round a float32 result to, given the one so far (None: no float input yet)
    and a float input's dtype ``dt``: the 16-bit dtype when every float input had it."""
    if narrow is None and dtypes.is_lowp(dt):
        return dt
    return narrow if narrow is dt else _MIXED


def forward(op_forward, ctx, *arrays, **params):
    """``op_forward(ctx, *arrays, **params)`` with the 16-bit float arrays as float32 and a
    float32 result as their dtype (unless float inputs of another dtype were given: then the
    result keeps the dtype the float32 computation gives, PyTorch's promotion: float16 with
    bfloat16 or float32 is float32)."""
    cls = type(ctx)
    if cls.lowp_native or cls.is_view:
        return op_forward(ctx, *arrays, **params)
    astype = ctx.be.astype  # (the backend's: gf.jit records the casts)
    narrow = None
    wide = []
    # A 0-d float32 operand beside a dimensioned 16-bit one (a number, see _util.promote) does
    # not widen the result, as in PyTorch.
    dims_lowp = any(a.ndim and dtypes.is_lowp(a.dtype) for a in arrays)
    for a in arrays:
        dt = a.dtype
        if dtypes.is_float(dt) and not (dims_lowp and not a.ndim and dt == _f32):
            narrow = _narrow_to(narrow, dt)
            if dtypes.is_lowp(dt):
                a = astype(a, _f32)
        wide.append(a)
    out = op_forward(ctx, *wide, **params)
    if isinstance(out, np.generic):  # (numpy's reductions to 0-d give scalars)
        out = ctx.be.xp.asarray(out)
    if narrow is not _MIXED and out.dtype == _f32:
        with np.errstate(over="ignore"):  # (beyond float16's range: inf, as PyTorch, silently)
            out = astype(out, narrow)
    return out


_C.lowp_init(forward, dtypes.float16, *([dtypes.bfloat16] if dtypes.bfloat16 is not None else []))


def in_float32(fn=None, *, in_place=()):
    """Decorator for an op written as several ops (dot, layer_norm, the losses...): given a
    float16 or bfloat16 tensor, ``fn`` runs on float32 casts of its 16-bit tensor arguments, and
    a float32 result is rounded to their dtype once, as PyTorch's single kernel for the op
    rounds; the casts are ops, so gradients flow back to the 16-bit inputs. As in
    :func:`forward`, the result stays float32 when a float tensor of another dtype was among the
    arguments. ``in_place`` names parameters ``fn`` updates in place (batch_norm's running
    statistics): they are passed as they are."""
    if fn is None:
        return lambda f: in_float32(f, in_place=in_place)
    f16 = dtypes.float16
    # (never None: an argument without a dtype gives None)
    bf16 = dtypes.bfloat16 if dtypes.bfloat16 is not None else f16
    params = list(inspect.signature(fn).parameters)

    def lowp(a):
        dt = getattr(a, "dtype", None)
        return dt is f16 or dt is bf16

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for a in args:  # (a loop: on the float32 path this check is all the wrapper costs)
            dt = getattr(a, "dtype", None)
            if dt is f16 or dt is bf16:
                break
        else:
            if not kwargs or not any(lowp(v) for v in kwargs.values()):
                return fn(*args, **kwargs)
        narrow = None

        def widen(name, a):
            nonlocal narrow
            if not isinstance(a, _C.TensorBase) or name in in_place:
                return a
            if dtypes.is_float(a.dtype):
                narrow = _narrow_to(narrow, a.dtype)
            return a.float() if dtypes.is_lowp(a.dtype) else a

        args = [widen(params[i] if i < len(params) else None, a) for i, a in enumerate(args)]
        kwargs = {k: widen(k, v) for k, v in kwargs.items()}
        out = fn(*args, **kwargs)
        return out if narrow is None or narrow is _MIXED else _narrow(out, narrow)

    return wrapper


def _narrow(out, dtype):
    """``out`` (a Tensor, or a tuple of them) with float32 tensors rounded to ``dtype``."""
    if isinstance(out, _C.TensorBase):
        return out.to(dtype) if out.dtype == _f32 else out
    if isinstance(out, tuple):
        items = [_narrow(o, dtype) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    return out
