"""The CPU backend: the C++ kernels of ``gradflow._C`` on numpy arrays.

Same interface as :mod:`gradflow.backend.reference`. The kernels cover float32 and float64.
Ops that only make sense on floats are the kernels themselves (the op layer promotes integer
inputs first); ops that integer and bool tensors also use (arithmetic, comparisons, sums of
masks) fall back to the numpy reference when a kernel rejects the dtype with TypeError, which
costs nothing on the float path; float16 and bfloat16 arrays fall back to the float32 kernel
instead.
"""

import operator

import numpy as np

from .. import _C
from .. import dtypes as _dtypes
from . import reference as _ref

xp = np
name = "cpu"


_FLOAT_ONLY = """sigmoid sigmoid_backward tanh tanh_backward relu relu_backward leaky_relu
leaky_relu_backward gelu gelu_backward softplus softplus_backward exp exp_backward log log_backward
sqrt sqrt_backward mean logsumexp softmax log_softmax softmax_backward log_softmax_backward
cross_entropy cross_entropy_backward matmul linear_relu relu_backward_sum sgd_step adam_step
sgd_step_multi adam_step_multi""".split()
_ANY_DTYPE = """add sub mul div pow maximum minimum eq ne lt le gt ge where abs abs_backward neg
pow_scalar pow_scalar_backward sum max min argmax""".split()


def _is_lowp_array(a):
    return isinstance(a, np.ndarray) and _dtypes.is_lowp(a.dtype)


def _widening(kernel, reference):
    """What a kernel falls back to: for float16/bfloat16 arrays (which the autograd engine,
    accumulating gradients, hands to the backend directly) the float32 kernel on widened copies,
    its result rounded once (into ``out``, the binary kernels' third argument, when given; else
    to the arrays' 16-bit dtype when they share it); for other dtypes (integers, bools) the
    reference."""
    def fallback(*args):
        floats = {a.dtype for a in args if isinstance(a, np.ndarray) and _dtypes.is_float(a.dtype)}
        if not any(_dtypes.is_lowp(dt) for dt in floats):
            return reference(*args)
        wide = [a.astype(np.float32) if _is_lowp_array(a) else a for a in args]
        out = kernel(*wide)
        if len(args) > 2 and _is_lowp_array(args[2]):  # (a, b, out)
            args[2][...] = out
            return args[2]
        (narrow,) = floats if len(floats) == 1 else (None,)
        return out.astype(narrow) if narrow is not None and out.dtype == np.float32 else out

    return fallback


for _n in _FLOAT_ONLY:
    globals()[_n] = getattr(_C, _n)
for _n in _ANY_DTYPE:  # the C kernel, or where it raises TypeError, the fallback above
    globals()[_n] = _C.with_fallback(getattr(_C, _n), _widening(getattr(_C, _n), getattr(_ref, _n)))
del _n

index_add = _ref.index_add
dropout_mask = _ref.dropout_mask
scalar = _ref.scalar
# The array methods themselves (C callables: no Python frame on the op path).
reshape, astype, copy = np.ndarray.reshape, np.ndarray.astype, np.ndarray.copy
getitem, setitem = operator.getitem, operator.setitem
to_numpy = _ref.to_numpy
to_device_array = _ref.to_device_array
