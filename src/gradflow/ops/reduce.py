"""Reductions over any set of axes with keepdims: sum, mean, max, min, logsumexp, var, argmax."""

import builtins

from ..autograd.function import Function, NonDifferentiable
from ._util import float_operand, normalize_dims


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
        share = hit / hit.sum(axes, keepdims=True)
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


class ArgMax(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        return ctx.be.argmax(x, axis, keepdims)


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return Sum.apply(x, axes=normalize_dims(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    x = float_operand(x)
    return Mean.apply(x, axes=normalize_dims(axis, x.ndim, "mean"), keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return Max.apply(x, axes=normalize_dims(axis, x.ndim, "max"), keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return Min.apply(x, axes=normalize_dims(axis, x.ndim, "min"), keepdims=keepdims)


def logsumexp(x, axis=None, keepdims=False):
    x = float_operand(x)
    return LogSumExp.apply(x, axes=normalize_dims(axis, x.ndim, "logsumexp"), keepdims=keepdims)


def var(x, axis=None, keepdims=False, ddof=0):
    """Variance with numpy's convention (ddof=0 divides by N; pass ddof=1 for the unbiased
    estimate PyTorch's var() gives by default)."""
    x = float_operand(x)
    axes = normalize_dims(axis, x.ndim, "var")
    count = _count(x.shape, axes)
    d = x - mean(x, axes, keepdims=True)
    return sum(d * d, axes, keepdims=keepdims) / builtins.max(count - ddof, 0)


def argmax(x, axis=None, keepdims=False):
    if axis is not None:
        axis = normalize_dims(axis, x.ndim, "argmax")[0]
    return ArgMax.apply(x, axis=axis, keepdims=keepdims)

