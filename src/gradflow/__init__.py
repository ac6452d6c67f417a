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
from .dtypes import (bool_, can_cast, double, finfo, float16, float32, float64,  # noqa: E402
                     get_default_dtype, half, int8, int16, int32, int64, long, promote_types,
                     result_type, set_default_dtype, short, uint8)
from .dtypes import TORCH_ALIASES as _ALIASES  # noqa: E402
from .ops.activation import sigmoid, softmax, log_softmax, tanh, relu  # noqa: E402
from .ops.arith import abs, clip, exp, log, maximum, minimum, pow, sqrt, where  # noqa: E402,A004
from .ops.layout import (chunk, clone, column_stack, contiguous, diag, diag_embed,  # noqa: E402
                         diagonal, expand, expand_as, flip, fliplr, flipud, hstack, meshgrid,
                         narrow, repeat, repeat_interleave, roll, tile, tril, triu, unbind, vstack,
                         atleast_1d, atleast_2d, atleast_3d, broadcast_shapes, broadcast_tensors,
                         diff, ravel, take, tensor_split, block_diag, cartesian_prod, dstack, hsplit,
                         kron, rot90, vsplit)
from .ops.linalg import (addmm, baddbmm, bmm, cdist, dot, einsum, ger, inner, matmul,  # noqa: E402
                         mm, mv, outer, trace, vdot, cross, dist)
from .ops.scan import (all, any, argsort, count_nonzero, cummax, cummin, cumprod,  # noqa: E402,A004
                       cumsum, kthvalue, logcumsumexp, median, mode, norm, prod, sort, topk,
                       unique, unique_consecutive, nansum, nanmean, isin, searchsorted, bucketize,
                       bincount)
from .ops.elementwise import (  # noqa: E402,A004
    acos, acosh, allclose, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, asin, asinh,
    atan, atan2, atanh, clamp, bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
    bitwise_right_shift, bitwise_xor, ceil, copysign, cos, cosh, div, divide, equal, erf, erfc,
    erfinv, exp2, expm1, fix, floor, floor_divide, fmod, frac, hypot, isclose, isfinite, isinf,
    isnan, isneginf, isposinf, lerp, log1p, log2, log10, logaddexp, logical_and, logical_not,
    logical_or, logical_xor, nan_to_num, reciprocal, remainder, round, rsqrt, sign, sin, sinh,
    square, tan, trunc, true_divide, xlogy, eq, ne, lt, le, gt, ge, greater, greater_equal, less,
    less_equal, not_equal, add, sub, subtract, mul, multiply, clamp_min, clamp_max, addcmul,
    addcdiv, logit, fmax, fmin, absolute, positive, sgn, sinc, float_power)
from .ops.index import (argwhere, gather, index_add, index_copy, index_fill, index_select,  # noqa: E402
                        masked_fill, masked_select, nonzero, scatter, scatter_add, scatter_reduce, select,
                        take_along_dim)
from .ops.reduce import (amax, amin, aminmax, argmax, argmin, logsumexp, max, mean, min,  # noqa: E402,A004
                         std, std_mean, sum, var, var_mean)
from .ops.shape import (broadcast_to, cat, concat, concatenate, flatten, movedim, permute,  # noqa: E402
                        reshape, split, squeeze, stack, swapaxes, swapdims, t, transpose,
                        unflatten, unsqueeze)
from .random import (Generator, bernoulli, default_generator, initial_seed, manual_seed,  # noqa: E402
                     multinomial, normal, rand, rand_like, randint, randint_like, randn, randn_like, randperm, seed)
from .factories import (as_tensor, empty, empty_like, full_like, is_tensor, linspace,  # noqa: E402
                        logspace, set_printoptions, tril_indices, triu_indices)
from .tensor import (Size, Tensor, arange, eye, from_dlpack, from_numpy, full, ones, ones_like,  # noqa: E402
                     tensor, zeros, zeros_like)

globals().update(_ALIASES)  # gf.float, gf.int, gf.bool: PyTorch's dtype names
neg, negative = _tensor.Tensor.__neg__, _tensor.Tensor.__neg__
is_floating_point = _tensor.Tensor.is_floating_point
numel = _tensor.Tensor.numel

get_num_threads = _C.get_num_threads
set_num_threads = _C.set_num_threads
set_flush_denormal = _C.set_flush_denormal  # as torch.set_flush_denormal

__version__ = "0.1.0"

from . import linalg, profiler, viz  # noqa: E402
from . import cuda  # noqa: E402  (gf.cuda; imports CuPy only when used)


def empty_cache():
    """Return cached memory: the CPU backend's recycled output buffers, and the blocks CuPy's
    memory pool keeps where a GPU has been used."""
    _C.empty_cache()
    cuda.empty_cache()

from . import optim  # noqa: E402
from ._jit.jitted import JitError, JitWarning, jit  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import data  # noqa: E402
from . import distributed  # noqa: E402  (imports mpi4py only when a group starts)
from . import utils  # noqa: E402  (gradflow.utils.data, as torch.utils.data)


if dtypes.bfloat16 is not None:
    bfloat16 = dtypes.bfloat16


def __getattr__(name):
    """``gf.bfloat16`` exists only with ml_dtypes installed: without it, say how to get it."""
    if name == "bfloat16":
        raise AttributeError(f"module 'gradflow' has no attribute 'bfloat16': "
                             f"{dtypes.BFLOAT16_MISSING}")
    raise AttributeError(f"module 'gradflow' has no attribute {name!r}")
