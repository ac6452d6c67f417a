"""gradflow: a tensor autograd engine with a C++ CPU backend and a CuPy CUDA backend.

    import gradflow as gf
    x = gf.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 x
"""

from . import _blas

_blas.preload()

from . import _C  # noqa: E402
from . import tensor as _tensor  # noqa: E402  (first: the autograd and ops modules refer to it)
from . import autograd, nn  # noqa: E402
from .autograd import enable_grad, grad, no_grad, set_grad_enabled  # noqa: E402
from .dtypes import bool_, float32, float64, int32, int64  # noqa: E402
from .ops.activation import sigmoid, softmax, log_softmax, tanh, relu  # noqa: E402
from .ops.arith import abs, clip, exp, log, maximum, minimum, sqrt, where  # noqa: E402,A004
from .ops.linalg import matmul  # noqa: E402
from .ops.index import (argwhere, gather, index_add, index_select, masked_fill,  # noqa: E402
                        masked_select, nonzero, scatter, scatter_add, select, take_along_dim)
from .ops.reduce import (amax, amin, aminmax, argmax, argmin, logsumexp, max, mean, min,  # noqa: E402,A004
                         std, std_mean, sum, var, var_mean)
from .ops.shape import (broadcast_to, cat, concat, concatenate, flatten, movedim, permute,  # noqa: E402
                        reshape, split, squeeze, stack, swapaxes, swapdims, t, transpose,
                        unflatten, unsqueeze)
from .random import manual_seed, rand, randint, randn  # noqa: E402
from .tensor import (Size, Tensor, arange, eye, from_dlpack, from_numpy, full, ones, ones_like,  # noqa: E402
                     tensor, zeros, zeros_like)

get_num_threads = _C.get_num_threads
set_num_threads = _C.set_num_threads
set_flush_denormal = _C.set_flush_denormal  # as torch.set_flush_denormal
empty_cache = _C.empty_cache  # hands the CPU backend's recycled output buffers back to the system

__version__ = "0.1.0"

from . import profiler, viz  # noqa: E402
from . import cuda  # noqa: E402  (gf.cuda; imports CuPy only when used)
from . import optim  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import data  # noqa: E402
