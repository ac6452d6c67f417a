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
from .autograd.grad_mode import (inference_mode, is_grad_enabled,  # noqa: E402
                                 is_inference_mode_enabled)
from .dtypes import bool_, float32, float64, int32, int64  # noqa: E402
from .ops.activation import sigmoid, softmax, log_softmax, tanh, relu  # noqa: E402
from .ops.arith import abs, clip, exp, log, maximum, minimum, sqrt, where  # noqa: E402,A004
from .ops.linalg import matmul  # noqa: E402
from .ops.reduce import argmax, logsumexp, max, mean, min, sum, var  # noqa: E402,A004
from .ops.shape import (broadcast_to, concatenate, flatten, reshape, split, squeeze, stack,  # noqa: E402
                        swapaxes, transpose, unsqueeze)
from .random import manual_seed, rand, randint, randn  # noqa: E402
from .tensor import (Tensor, arange, eye, from_dlpack, from_numpy, full, ones, ones_like,  # noqa: E402
                     tensor, zeros, zeros_like)

get_num_threads = _C.get_num_threads
set_num_threads = _C.set_num_threads
set_flush_denormal = _C.set_flush_denormal  # as torch.set_flush_denormal

__version__ = "0.1.0"

from . import profiler, viz  # noqa: E402
from . import cuda  # noqa: E402  (gf.cuda; imports CuPy only when used)


def empty_cache():
    """Return cached memory: the CPU backend's recycled output buffers, and the blocks CuPy's
    memory pool keeps where a GPU has been used."""
    _C.empty_cache()
    cuda.empty_cache()

from . import optim  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import data  # noqa: E402
from . import distributed  # noqa: E402  (imports mpi4py only when a group starts)
