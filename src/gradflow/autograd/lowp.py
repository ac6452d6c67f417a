"""bfloat16 arithmetic, in one place: an op whose inputs include a bfloat16 array runs its
forward on float32 copies of them and rounds a float32 result to bfloat16 once, as PyTorch's
CPU kernels do. numpy has no bfloat16 arithmetic of its own (ml_dtypes' type, kind 'V'), and
the C kernels take only float32/float64, so the float32 kernels do the work. Ops written as
several ops (layer_norm, the losses) round once too: :func:`in_float32` runs them in float32.

``Function.apply`` (csrc/autograd.cpp) calls :func:`forward` instead of the op's forward when
an input array is bfloat16; backward is written with Tensor ops, which come here again. Ops that
only move or reinterpret data (views, casts, device moves) set ``Function.lowp_native`` and get
the bfloat16 arrays themselves: a view must share the input's memory, and a cast must produce
its own dtype.
"""

import functools
import inspect

import numpy as np

from .. import _C
from .. import dtypes

_f32 = np.dtype(np.float32)


def forward(op_forward, ctx, *arrays, **params):
    """``op_forward(ctx, *arrays, **params)`` with the bfloat16 arrays as float32 and a float32
    result as bfloat16 (unless a float input of another dtype was given: then the result keeps
    the dtype the float32 computation gives, PyTorch's promotion of bfloat16 with it)."""
    cls = type(ctx)
    if cls.lowp_native or cls.is_view:
        return op_forward(ctx, *arrays, **params)
    bf16, astype = dtypes.bfloat16, ctx.be.astype  # (the backend's: gf.jit records the casts)
    only_bf16 = True
    wide = []
    for a in arrays:
        if a.dtype is bf16:
            a = astype(a, _f32)
        elif dtypes.is_float(a.dtype):
            only_bf16 = False
        wide.append(a)
    out = op_forward(ctx, *wide, **params)
    if isinstance(out, np.generic):  # (numpy's reductions to 0-d give scalars)
        out = ctx.be.xp.asarray(out)
    if only_bf16 and out.dtype == _f32:
        out = astype(out, bf16)
    return out


if dtypes.bfloat16 is not None:
    _C.lowp_init(dtypes.bfloat16.num, forward)


def in_float32(fn=None, *, in_place=()):
    """Decorator for an op written as several ops (dot, layer_norm, the losses...): given a
    bfloat16 tensor, ``fn`` runs on float32 casts of its bfloat16 tensor arguments, and a float32
    result is rounded to bfloat16 once, as PyTorch's single kernel for the op rounds; the casts
    are ops, so gradients flow back to the bfloat16 inputs. As in :func:`forward`, the result
    stays float32 when a float tensor of another dtype was among the arguments. ``in_place``
    names parameters ``fn`` updates in place (batch_norm's running statistics): they are passed
    as they are."""
    if fn is None:
        return lambda f: in_float32(f, in_place=in_place)
    if dtypes.bfloat16 is None:
        return fn
    bf16 = dtypes.bfloat16
    params = list(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for a in args:  # (a loop: on the float32 path this check is all the wrapper costs)
            if getattr(a, "dtype", None) is bf16:
                break
        else:
            if not kwargs or not any(getattr(v, "dtype", None) is bf16 for v in kwargs.values()):
                return fn(*args, **kwargs)
        only_bf16 = True

        def widen(name, a):
            nonlocal only_bf16
            if not isinstance(a, _C.TensorBase) or name in in_place:
                return a
            if a.dtype is bf16:
                return a.float()
            only_bf16 = only_bf16 and not dtypes.is_float(a.dtype)
            return a

        args = [widen(params[i] if i < len(params) else None, a) for i, a in enumerate(args)]
        kwargs = {k: widen(k, v) for k, v in kwargs.items()}
        out = fn(*args, **kwargs)
        return _narrow(out) if only_bf16 else out

    return wrapper


def _narrow(out):
    """``out`` (a Tensor, or a tuple of them) with float32 tensors rounded to bfloat16."""
    if isinstance(out, _C.TensorBase):
        return out.to(dtypes.bfloat16) if out.dtype == _f32 else out
    if isinstance(out, tuple):
        items = [_narrow(o) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    return out
