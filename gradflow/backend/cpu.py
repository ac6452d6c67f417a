"""The CPU backend: the C++ kernels of ``gradflow._C`` on numpy arrays.

Same interface as :mod:`gradflow.backend.reference`. The kernels cover float32 and float64;
other dtypes (integer and bool tensors: labels, masks, indices) take the numpy reference path.
"""

import numpy as np

from .. import _C
from . import reference as _ref

xp = np
name = "cpu"
_FLOATS = frozenset((np.dtype(np.float32), np.dtype(np.float64)))


def _kernel(fn_name, dtype_arg=0):
    # TRANSITIONAL: falls back to the reference while the C++ kernel families land.
    fast = getattr(_C, fn_name, None) or getattr(_ref, fn_name)
    slow = getattr(_ref, fn_name)

    def call(*args, **kwargs):
        if args[dtype_arg].dtype in _FLOATS:
            return fast(*args, **kwargs)
        return slow(*args, **kwargs)

    call.__name__ = fn_name
    return call


_UNARY = """sigmoid sigmoid_backward tanh tanh_backward relu relu_backward leaky_relu
leaky_relu_backward gelu gelu_backward softplus softplus_backward exp exp_backward log log_backward
sqrt sqrt_backward abs abs_backward neg pow_scalar pow_scalar_backward""".split()
_BINARY = "add sub mul div pow maximum minimum eq ne lt le gt ge".split()
_REDUCE = "sum mean max min logsumexp argmax".split()
_ROWWISE = """softmax log_softmax softmax_backward log_softmax_backward cross_entropy
cross_entropy_backward matmul sgd_step adam_step""".split()

for _n in _UNARY + _BINARY + _REDUCE + _ROWWISE:
    globals()[_n] = _kernel(_n)
where = _kernel("where", dtype_arg=1)
index_add = _ref.index_add
scalar = _ref.scalar
to_numpy = _ref.to_numpy
to_device_array = _ref.to_device_array
