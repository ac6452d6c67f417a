"""Reductions over any set of dims with keepdim: sum, mean, max/min (values and indices), amax,
amin, aminmax, logsumexp, var, std, var_mean, std_mean, argmax, argmin."""

import builtins
from collections import namedtuple

from .. import tensor as _tensor
from ..autograd.function import Function, NonDifferentiable
from ..autograd.lowp import in_float32
from ..dtypes import as_dtype, is_float
from ._util import float_operand, normalize_axis, normalize_dims, torch_kwargs


def _count(shape, axes):
    """How many elements a reduction over ``axes`` combines into each output."""
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand(g, in_shape, axes, keepdims):
    """Bring a reduced gradient back to keepdims form so that it broadcasts over the input."""
    return g if keepdims else g.reshape(_kept_shape(in_shape, axes))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.axes, ctx.keepdims, ctx.in_shape = axes, keepdims, x.shape
        return ctx.be.sum(x, axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        return (_expand(g, ctx.in_shape, ctx.axes, ctx.keepdims).broadcast_to(ctx.in_shape),)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.axes, ctx.keepdims, ctx.in_shape = axes, keepdims, x.shape
        ctx.count = _count(x.shape, axes)
        return ctx.be.mean(x, axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        g = _expand(g, ctx.in_shape, ctx.axes, ctx.keepdims) / ctx.count
        return (g.broadcast_to(ctx.in_shape),)


class _Extremum(Function):
    """max/min: the gradient goes to the elements equal to the result, split evenly among ties."""

    kernel = None  # the backend function: "max" or "min"

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.save_inputs(0)
        ctx.save_output()
        return getattr(ctx.be, ctx.kernel)(x, axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        axes, keepdims = ctx.axes, ctx.keepdims
        hit = (x == _expand(y, x.shape, axes, keepdims)).to(g.dtype)
        share = hit / hit.sum(axes, keepdim=True)
        return (share * _expand(g, x.shape, axes, keepdims),)


class Max(_Extremum):
    kernel = "max"


class Min(_Extremum):
    kernel = "min"


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.save_inputs(0)
        ctx.save_output()
        return ctx.be.logsumexp(x, axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors  # d/dx = softmax over the reduced axes
        y = _expand(y, x.shape, ctx.axes, ctx.keepdims)
        return ((x - y).exp() * _expand(g, x.shape, ctx.axes, ctx.keepdims),)


class ArgExtremum(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, axis, keepdims, kernel):
        if kernel == "argmax":
            return ctx.be.argmax(x, axis, keepdims)
        return ctx.be.xp.asarray(ctx.be.xp.argmin(x, axis=axis, keepdims=keepdims))  # (not a scalar)


# ---- functional forms -------------------------------------------------------------------------
# PyTorch's names and meanings: dim=/keepdim= (numpy's axis=/keepdims= accepted as aliases).
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])
MinMax = namedtuple("MinMax", ["min", "max"])


def _dims(dim, x, op):
    return normalize_dims(dim, x.ndim, op)


def _cast(x, dtype):
    return x if dtype is None or x.dtype == as_dtype(dtype) else x.to(as_dtype(dtype))


def accumulated(input, dtype):
    """The input of a sum or product (running or not): cast to ``dtype``; without one, bool and
    integer tensors accumulate in int64, as torch's do (numpy's uint8 sum would be uint64)."""
    if dtype is None and input.dtype.kind in "biu" and input.dtype != as_dtype("int64"):
        dtype = "int64"
    return _cast(input, dtype)


@torch_kwargs
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or None for every dim); bool and integer tensors sum
    as int64."""
    x = accumulated(input, dtype)
    axes = _dims(dim, x, "sum")
    return Sum.apply(x, axes=axes, keepdims=keepdim) if axes else x


@torch_kwargs
def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over ``dim``; integer tensors need a float ``dtype``, as in PyTorch."""
    x = _cast(input, dtype)
    if not is_float(x.dtype):
        raise TypeError(f"mean: input dtype {x.dtype} is not a float: pass dtype=gf.float32 or "
                        "call .float() first")
    axes = _dims(dim, x, "mean")
    return Mean.apply(x, axes=axes, keepdims=keepdim) if axes else x


def _select(input, dim, keepdim, op, arg):
    from .index import take_along_dim

    if input.ndim == 0:
        normalize_axis(dim, 0, op)
        return ValuesIndices(input, arg(input, dim, keepdim))
    idx = arg(input, dim, True)
    values = take_along_dim(input, idx, dim)
    if not keepdim:
        values, idx = values.squeeze(dim), idx.squeeze(dim)
    return ValuesIndices(values, idx)


@torch_kwargs
def max(input, dim=None, keepdim=False):  # noqa: A001
    """``max(x)``: the largest element (0-d; the gradient is split among ties). ``max(x, dim)``:
    the named tuple (values, indices) along ``dim`` (the gradient goes to the index returned).
    ``max(x, other)`` with a tensor ``other``: the elementwise maximum."""
    if isinstance(dim, _tensor.Tensor):
        from .arith import maximum

        return maximum(input, dim)
    if dim is None:
        return amax(input)
    return _select(input, dim, keepdim, "max", argmax)


@torch_kwargs
def min(input, dim=None, keepdim=False):  # noqa: A001
    """``min(x)``, ``min(x, dim)`` -> (values, indices), ``min(x, other)``: as :func:`max`."""
    if isinstance(dim, _tensor.Tensor):
        from .arith import minimum

        return minimum(input, dim)
    if dim is None:
        return amin(input)
    return _select(input, dim, keepdim, "min", argmin)


@torch_kwargs
def amax(input, dim=(), keepdim=False):
    """The maximum over ``dim`` (every dim when () or None); ties split the gradient evenly."""
    axes = _dims(None if dim == () else dim, input, "amax")
    return Max.apply(input, axes=axes, keepdims=keepdim) if axes else input


@torch_kwargs
def amin(input, dim=(), keepdim=False):
    """The minimum over ``dim`` (every dim when () or None); ties split the gradient evenly."""
    axes = _dims(None if dim == () else dim, input, "amin")
    return Min.apply(input, axes=axes, keepdims=keepdim) if axes else input


@torch_kwargs
def aminmax(input, *, dim=None, keepdim=False):
    """The named tuple (min, max) over ``dim`` (every dim when None)."""
    d = () if dim is None else dim
    return MinMax(amin(input, d, keepdim), amax(input, d, keepdim))


@torch_kwargs
def logsumexp(input, dim=None, keepdim=False):
    """log(sum(exp(x))) over ``dim``, computed without overflow."""
    x = float_operand(input)
    axes = _dims(dim, x, "logsumexp")
    return LogSumExp.apply(x, axes=axes, keepdims=keepdim) if axes else x


def _correction(op, unbiased, correction):
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: give either unbiased= or correction=, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


@torch_kwargs
@in_float32
def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` dividing by N - correction: unbiased (correction=1) by default, as
    in PyTorch; ``unbiased=False`` or ``correction=0`` divides by N."""
    x = float_operand(input)
    if isinstance(unbiased, bool) is False and unbiased is not None:
        raise TypeError(f"var: unbiased must be a bool, got {unbiased!r} (dims go in dim=)")
    c = _correction("var", unbiased, correction)
    axes = _dims(dim, x, "var")
    count = _count(x.shape, axes)
    d = x - mean(x, axes, keepdim=True) if axes else x - x
    total = Sum.apply(d * d, axes=axes, keepdims=keepdim) if axes else d * d
    return total / builtins.max(count - c, 0)


@torch_kwargs
@in_float32
def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation over ``dim``: the square root of :func:`var` (same arguments)."""
    return var(input, dim, unbiased, keepdim, correction=correction).sqrt()


@torch_kwargs
@in_float32
def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over ``dim``, as :func:`var` and :func:`mean`."""
    x = float_operand(input)
    return (var(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim))


@torch_kwargs
@in_float32
def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over ``dim``, as :func:`std` and :func:`mean`."""
    x = float_operand(input)
    return (std(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim))


def _arg(kernel, input, dim, keepdim, op):
    if dim is None:
        out = ArgExtremum.apply(input.reshape(-1), axis=0, keepdims=False, kernel=kernel)
        return out.reshape((1,) * input.ndim) if keepdim else out
    axis = normalize_axis(dim, input.ndim, op)
    if input.ndim == 0:
        return _tensor.zeros((), dtype="int64", device=input.device)
    return ArgExtremum.apply(input, axis=axis, keepdims=keepdim, kernel=kernel)


@torch_kwargs
def argmax(input, dim=None, keepdim=False):
    """Index of the largest element along ``dim`` (of the flattened tensor when None)."""
    return _arg("argmax", input, dim, keepdim, "argmax")


@torch_kwargs
def argmin(input, dim=None, keepdim=False):
    """Index of the smallest element along ``dim`` (of the flattened tensor when None)."""
    return _arg("argmin", input, dim, keepdim, "argmin")
