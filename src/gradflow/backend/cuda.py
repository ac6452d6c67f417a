"""The CUDA backend: CuPy arrays, CuPy's ufuncs/reductions/cuBLAS, and fused CuPy kernels.

Same interface as :mod:`gradflow.backend.reference`. ``for_device(index)`` returns the backend
object of one GPU; every function of it runs with that GPU current (CuPy allocates and launches
on the current device), so "cuda:1" works whatever device the caller has made current.
Nothing in the op path reads device memory from the host: no synchronisation, and memory comes
from CuPy's pool. Importing this module imports CuPy and raises RuntimeError saying what is
missing when CuPy is not installed; a missing driver or GPU is reported by ``for_device``.
"""

import builtins
import math
import types

import numpy as np

try:
    import cupy as cp
except ImportError as e:  # not installed, or installed for a CUDA it cannot load
    raise RuntimeError(
        f"a CUDA device was requested but CuPy cannot be imported ({e}); install it with "
        'pip install "gradflow[cuda12]" (CUDA 12) or pip install "gradflow[cuda13]" (CUDA 13)'
    ) from e

from . import reference as _ref
from .cuda_kernels import KERNELS, USES, Elementwise
from .cuda_kernels.defs import preamble_source

# ---- device discovery ---------------------------------------------------------------------------


def device_count() -> int:
    """The number of usable GPUs; RuntimeError with CuPy's reason when there is no driver/GPU."""
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError as e:
        raise RuntimeError(f"CuPy is installed but no usable CUDA driver/GPU was found: {e}") from e
    if n == 0:
        raise RuntimeError("CuPy is installed but no CUDA GPU was found")
    return n


def has_bfloat16() -> bool:
    """Whether CuPy holds ml_dtypes' bfloat16 (CuPy 14 on, with ml_dtypes installed): its
    ufuncs then have bfloat16 loops, and its casts, creation and copies take the dtype."""
    from .. import dtypes

    if dtypes.bfloat16 is None:
        return False
    c = dtypes.bfloat16.char
    return f"{c}{c}->{c}" in cp.add.types


# ---- TF32 -------------------------------------------------------------------------------------
# CuPy picks the cuBLAS compute type of its float32 GEMMs (cupy.matmul/dot) from a process-wide
# setting that CUPY_TF32=1 seeds on first use; set_compute_type overrides it. gradflow sets it
# explicitly, so float32 matmuls are true float32 unless gf.cuda.allow_tf32(True) was called.
_tf32 = False


def set_tf32(flag: bool) -> None:
    global _tf32
    _tf32 = bool(flag)
    _apply_tf32()


def _apply_tf32():
    from cupy._core import _routines_linalg as linalg

    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if _tf32 else linalg.COMPUTE_TYPE_DEFAULT)


# ---- the fused kernels: built from cuda_kernels' definitions on first use, then cached --------
_compiled = {}


def _k(name):
    k = _compiled.get(name)
    if k is None:
        d = KERNELS[name]
        if isinstance(d, Elementwise):
            k = cp.ElementwiseKernel(d.in_params, d.out_params, d.operation, d.name,
                                     preamble=preamble_source(d))
        else:
            k = cp.ReductionKernel(d.in_params, d.out_params, d.map_expr, d.reduce_expr,
                                   d.post_map_expr, d.identity, d.name, reduce_type=d.reduce_type,
                                   preamble=preamble_source(d))
        _compiled[name] = k
    return k


def _is_float(a):
    return a.dtype.kind == "f"


# ---- activations and elementwise math ----------------------------------------------------------
def sigmoid(x):
    return _k("gf_sigmoid")(x)


def sigmoid_backward(y, g):
    return _k("gf_sigmoid_backward")(y, g)


def tanh(x):
    return _k("gf_tanh")(x)


def tanh_backward(y, g):
    return _k("gf_tanh_backward")(y, g)


def relu(x):
    return _k("gf_relu")(x)


def relu_backward(y, g):
    return _k("gf_relu_backward")(y, g)


def leaky_relu(x, negative_slope):
    return _k("gf_leaky_relu")(x, negative_slope)


def leaky_relu_backward(x, g, negative_slope):
    return _k("gf_leaky_relu_backward")(x, g, negative_slope)


def gelu(x, approximate):
    return _k("gf_gelu_tanh" if approximate else "gf_gelu")(x)


def gelu_backward(x, g, approximate):
    return _k("gf_gelu_tanh_backward" if approximate else "gf_gelu_backward")(x, g)


def softplus(x, beta, threshold):
    return _k("gf_softplus")(x, beta, threshold)


def softplus_backward(x, g, beta, threshold):
    return _k("gf_softplus_backward")(x, g, beta, threshold)


exp, log, sqrt, abs, neg = cp.exp, cp.log, cp.sqrt, cp.abs, cp.negative  # noqa: A001 - one pass each
exp_backward = cp.multiply  # g * y


def log_backward(x, g):
    return cp.true_divide(g, x)


def sqrt_backward(y, g):
    return _k("gf_sqrt_backward")(y, g)


def abs_backward(x, g):
    return _k("gf_abs_backward")(x, g) if _is_float(x) else g * cp.sign(x)


def pow_scalar(x, p):
    return cp.power(x, x.dtype.type(p)) if _is_float(x) else cp.power(x, p)


def pow_scalar_backward(x, g, p):
    if p == 0:
        return cp.zeros_like(g)
    if not _is_float(x):
        return g * (p * cp.power(x, p - 1))
    return _k("gf_pow_scalar_backward")(x, g, p, p - 1)


# ---- binary, with broadcasting: CuPy's ufuncs are already one fused pass ------------------------
add, sub, mul, div, pow = cp.add, cp.subtract, cp.multiply, cp.true_divide, cp.power  # noqa: A001
maximum, minimum = cp.maximum, cp.minimum
eq, ne, lt, le, gt, ge = cp.equal, cp.not_equal, cp.less, cp.less_equal, cp.greater, cp.greater_equal
where = cp.where


# ---- reductions ----------------------------------------------------------------------------------
def sum(x, axes, keepdims):  # noqa: A001
    return cp.sum(x, axis=axes, keepdims=keepdims)


def mean(x, axes, keepdims):
    return cp.mean(x, axis=axes, keepdims=keepdims)


def max(x, axes, keepdims):  # noqa: A001
    return cp.max(x, axis=axes, keepdims=keepdims)


def min(x, axes, keepdims):  # noqa: A001
    return cp.min(x, axis=axes, keepdims=keepdims)


def argmax(x, axis, keepdims):
    return cp.argmax(x, axis=axis, keepdims=keepdims)


def logsumexp(x, axes, keepdims):
    return _k("gf_logsumexp")(x, axis=axes, keepdims=keepdims)


def _stats(x, axis):
    """Per line along ``axis`` (kept as size 1): the max m and the sum s of exp(x - m)."""
    kept = x.shape[:axis] + (1,) + x.shape[axis + 1:]
    m, s = cp.empty(kept, x.dtype), cp.empty(kept, x.dtype)
    _k("gf_lse_stats")(x, m, s, axis=axis, keepdims=True)
    return m, s


def softmax(x, axis):
    return _k("gf_softmax_apply")(x, *_stats(x, axis))


def log_softmax(x, axis):
    return _k("gf_log_softmax_apply")(x, *_stats(x, axis))


def softmax_backward(y, g, axis):
    s = _k("gf_dot_reduce")(y, g, axis=axis, keepdims=True)
    return _k("gf_softmax_backward_apply")(y, g, s)


def log_softmax_backward(y, g, axis):
    return _k("gf_log_softmax_backward_apply")(y, g, cp.sum(g, axis=axis, keepdims=True))


# Whether cross_entropy checks its labels on the host (gf.cuda.check_labels): off, an
# out-of-range label gives NaN in its row (and its gradient row), with no synchronisation.
_check_labels = False


def set_check_labels(flag: bool) -> None:
    global _check_labels
    _check_labels = bool(flag)


def cross_entropy(logits, labels):
    """(loss, lse) per row. An out-of-range label gives NaN in its row, or with
    gf.cuda.check_labels(True) the CPU's IndexError (a read of device memory: a sync)."""
    c = logits.shape[1]
    if _check_labels and labels.size:
        bad = (labels < 0) | (labels >= c)
        if bool(bad.any()):
            raise IndexError(f"cross_entropy: label {int(labels[bad][0])} is out of range for "
                             f"{c} classes")
    logits = cp.ascontiguousarray(logits)  # the pick indexes rows of the raw array
    lse = _k("gf_logsumexp")(logits, axis=1)
    return _k("gf_cross_entropy_pick")(lse, labels, logits, logits.shape[1]), lse


def cross_entropy_backward(logits, labels, lse, g):
    return _k("gf_cross_entropy_backward")(logits, lse[:, None], labels[:, None], g[:, None],
                                           logits.shape[1])


# ---- matmul and optimizer updates ----------------------------------------------------------------
def matmul(a, b, trans_a=False, trans_b=False, bias=None):
    """op(a) @ op(b) (+ bias) on cuBLAS through cupy.matmul. 2-D products (and a batched a
    times a 2-D b, folded into one 2-D GEMM over the batch rows) take transposed views as
    cuBLAS's transpose flags, without copies, and honour allow_tf32 (CuPy's gemmEx with its
    float32 compute type). Any other batched product (3-D @ 3-D, 2-D @ 3-D) is CuPy's batched
    path: it copies each operand that is not C-contiguous (a transposed view included) and
    runs gemmStridedBatchedEx, or a pointer-array gemmBatched where a batch axis broadcasts,
    with the compute type equal to the data type, so TF32 is never used there. The bias is
    added in place into the GEMM's output (no temporary)."""
    if trans_a:
        a = cp.swapaxes(a, -1, -2)
    if trans_b:
        b = cp.swapaxes(b, -1, -2)
    if a.ndim > 2 and b.ndim == 2 and not trans_a:
        out = cp.matmul(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[-1],))
    else:
        out = cp.matmul(a, b)
    if bias is not None:
        cp.add(out, bias, out=out)
    return out


def linear_relu(x, w, bias=None):
    """relu(x @ w^T (+ bias)), the ReLU in place on the GEMM's output."""
    out = matmul(x, w, False, True, bias)
    return _k("gf_relu")(out, out)


def relu_backward_sum(y, g):
    gx = relu_backward(y, g)
    return gx, sum(gx, tuple(range(gx.ndim - 1)), False)


def _check_update(op, param, *others):
    """The CPU kernels' checks: an ElementwiseKernel would broadcast a (1, n) gradient into an
    (m, n) parameter, or write a non-contiguous parameter through a copy."""
    for name, a in zip(("grad", "state"), others):
        if a is None:
            continue
        if a.shape != param.shape or a.dtype != param.dtype:
            raise ValueError(f"{op}: {name} of shape {a.shape} and dtype {a.dtype} does not match "
                             f"the parameter's shape {param.shape} and dtype {param.dtype}")
    for a in (param,) + others:
        if a is not None and not a.flags.c_contiguous:
            raise ValueError(f"{op}: arrays must be C-contiguous (shape {a.shape}, strides {a.strides})")


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first_step):
    _check_update("sgd_step", param, grad, buf if momentum else None)
    if momentum:
        _k("gf_sgd_momentum")(grad, lr, momentum, 1 - dampening, weight_decay, bool(nesterov),
                              bool(first_step), param, buf)
    else:
        _k("gf_sgd")(grad, lr, weight_decay, param)


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    _check_update("adam_step", param, grad, exp_avg, exp_avg_sq)
    bc1, bc2 = 1 - beta1**step, 1 - beta2**step
    _k("gf_adam")(grad, beta1, 1 - beta1, beta2, 1 - beta2, lr / bc1, math.sqrt(bc2), eps,
                  weight_decay, 1 - lr * weight_decay, bool(decoupled), param, exp_avg, exp_avg_sq)


# ---- scatter, scalars, host transfers ------------------------------------------------------------
def index_add(shape, dtype, index, values):
    out = cp.zeros(shape, dtype)
    cp.add.at(out, index, values)
    return out


def scalar(value, dtype):
    # A fill kernel on the device, not a host-to-device copy.
    return cp.full((), value, dtype)


def to_numpy(a):
    return cp.asnumpy(a)


def to_device_array(a):
    # ndarray.copy() copies onto the *current* device, also from another GPU (a memcpy: no
    # peer access needed).
    return a.copy() if isinstance(a, cp.ndarray) else cp.asarray(a)


# Array methods launch kernels and allocate on the current device, so they are interface
# functions too (the reference backend's, which call the methods), bound to the backend's device
# like every other.
reshape, astype, copy, getitem, setitem = (_ref.reshape, _ref.astype, _ref.copy, _ref.getitem,
                                           _ref.setitem)


def dropout_mask(shape, p, dtype, seed):
    """0 with probability p, else 1 / (1 - p): one kernel on the device, from a 64-bit seed
    the host draws (no host-to-device copy of the mask)."""
    out = cp.empty(shape, dtype)
    _k("gf_dropout_mask")(seed, p, 1.0 / (1.0 - p), out)
    return out


# ---- memory: CuPy's pool, with the peak that PyTorch reports -------------------------------------
_pool = cp.get_default_memory_pool()
_peak = {}  # device index -> the most bytes in use at once


def _tracking_malloc(nbytes):
    # Bytes in use only grow at an allocation, so checking here sees every peak.
    mem = _pool.malloc(nbytes)
    used = _pool.used_bytes()  # of the current device, which mem was allocated on
    if used > _peak.get(mem.device_id, 0):
        _peak[mem.device_id] = used
    return mem


def _install_allocator():
    # Only over CuPy's default (the pool's malloc): a caller's own allocator is left alone.
    if cp.cuda.get_allocator() == _pool.malloc:
        cp.cuda.set_allocator(_tracking_malloc)


def memory_allocated(index):
    with cp.cuda.Device(index):
        return _pool.used_bytes()


def max_memory_allocated(index):
    with cp.cuda.Device(index):
        return builtins.max(_peak.get(index, 0), _pool.used_bytes())


def reset_peak_memory_stats(index):
    with cp.cuda.Device(index):
        _peak[index] = _pool.used_bytes()


def empty_cache():
    """Hands the pool's free blocks on every device back to the driver."""
    for index in range(device_count()):
        with cp.cuda.Device(index):
            _pool.free_all_blocks()


def sgd_step_multi(params, grads, bufs, first_steps, lr, momentum, dampening, nesterov, weight_decay):
    for p, g, b, first in zip(params, grads, bufs, first_steps, strict=True):
        sgd_step(p, g, b, lr, momentum, dampening, nesterov, weight_decay, first)


def adam_step_multi(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay,
                    decoupled):
    for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True):
        adam_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled)


# ---- one backend object per device ---------------------------------------------------------------
INTERFACE = tuple(n for n in dir(_ref) if not n.startswith("_") and callable(getattr(_ref, n))
                  and n != "xp")


class _OnDevice:
    """cupy (or one of its submodules: xp.linalg, xp.random, xp.cuda), seen from one device:
    each function runs with that device current. Attributes that are types or constants
    (dtypes, ndarray, Device) are cupy's own."""

    def __init__(self, device, module=cp):
        self._device = device
        self._module = module

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            attr = _OnDevice(self._device, attr)
        elif callable(attr) and not isinstance(attr, type):
            attr = _bind(self._device, attr)
        setattr(self, name, attr)  # cache: the next lookup is a plain attribute read
        return attr


def _bind(device, fn):
    def on_device(*args, **kwargs):
        with device:
            return fn(*args, **kwargs)

    on_device.__name__ = getattr(fn, "__name__", "fn")
    return on_device


class Backend:
    """The CUDA backend of one GPU: the module's functions, run on ``cuda:index``."""

    def __init__(self, index):
        self.index = index
        self.name = f"cuda:{index}"
        self.device = cp.cuda.Device(index)
        self.xp = _OnDevice(self.device)
        for fn_name in INTERFACE:
            setattr(self, fn_name, _bind(self.device, globals()[fn_name]))


_backends = {}


def for_device(index: int) -> Backend:
    n = device_count()
    if index >= n:
        raise RuntimeError(f"cuda:{index} was requested but only {n} CUDA device(s) are visible")
    if index not in _backends:
        _apply_tf32()
        _install_allocator()
        _backends[index] = Backend(index)
    return _backends[index]


assert set(USES) <= set(INTERFACE), "cuda_kernels.USES names a function outside the interface"
