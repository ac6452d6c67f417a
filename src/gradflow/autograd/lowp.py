"""bfloat16 arithmetic, in one place: an op whose inputs include a bfloat16 array runs its
forward on float32 copies of them and rounds a float32 result to bfloat16 once, as PyTorch's
CPU kernels do. numpy has no bfloat16 arithmetic of its own (ml_dtypes' type, kind 'V'), and
the C kernels take only float32/float64, so the float32 kernels do the work.

``Function.apply`` (csrc/autograd.cpp) calls :func:`forward` instead of the op's forward when
an input array is bfloat16; backward is written with Tensor ops, which come here again. Ops that
only move or reinterpret data (views, casts, device moves) set ``Function.lowp_native`` and get
the bfloat16 arrays themselves: a view must share the input's memory, and a cast must produce
its own dtype.
"""

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
    bf16 = dtypes.bfloat16
    only_bf16 = True
    wide = []
    for a in arrays:
        if a.dtype is bf16:
            a = a.astype(_f32)
        elif dtypes.is_float(a.dtype):
            only_bf16 = False
        wide.append(a)
    out = op_forward(ctx, *wide, **params)
    if only_bf16 and out.dtype == _f32:
        out = out.astype(bf16)
    return out


if dtypes.bfloat16 is not None:
    _C.lowp_init(dtypes.bfloat16.num, forward)
