"""Activations, softmax and cross-entropy on the backends' fused kernels.

Each forward is one kernel and saves exactly what its backward kernel reads (the output for
sigmoid/tanh/relu/softmax, the input otherwise). Each backward is itself an op (``*Backward``)
running one fused kernel, whose own backward is written with tensor ops, so second and higher
derivatives work. The activations and softmax are declared as FusedOps (see ``_fused``).
"""

import math

from ..autograd.function import Function
from ._fused import FusedOp
from ._util import as_tensor, float_operand, normalize_axis, torch_kwargs


class Sigmoid(FusedOp):
    kernel, saves_output = "sigmoid", True
    curvature = staticmethod(lambda y: 1 - 2 * y)  # f' = y (1 - y)


class Tanh(FusedOp):
    kernel, saves_output = "tanh", True
    curvature = staticmethod(lambda y: -2 * y)  # f' = 1 - y^2


class ReLU(FusedOp):
    kernel, saves_output = "relu", True  # piecewise linear: no curvature


class LeakyReLU(FusedOp):
    kernel, params = "leaky_relu", ("negative_slope",)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class GELU(FusedOp):
    kernel, params = "gelu", ("approximate",)

    @staticmethod
    def curvature(x, approximate):
        if approximate:  # gelu = x/2 (1 + tanh u), u = c (x + a x^3)
            a = 0.044715
            t = (_SQRT_2_OVER_PI * (x + a * x**3)).tanh()
            du = _SQRT_2_OVER_PI * (1 + 3 * a * x * x)
            sech2 = 1 - t * t
            return sech2 * du + 0.5 * x * sech2 * (-2 * t * du * du + _SQRT_2_OVER_PI * 6 * a * x)
        return _INV_SQRT_2PI * (-0.5 * x * x).exp() * (2 - x * x)  # gelu'' = phi(x) (2 - x^2)


class Softplus(FusedOp):
    kernel, params = "softplus", ("beta", "threshold")

    @staticmethod
    def curvature(x, beta, threshold):
        from .arith import where

        z = x * beta
        s = z.sigmoid()
        return where(z > threshold, as_tensor(0, x), s * (1 - s) * beta)


class Softmax(FusedOp):
    kernel, params, saves_output = "softmax", ("axis",), True

    @classmethod
    def backward_of_backward(cls, ctx, gg):
        y, g = ctx.saved_tensors  # out = y (g - sum(g y))
        (ax,) = ctx.args
        gy = gg * (g - (g * y).sum(ax, keepdim=True)) - g * (gg * y).sum(ax, keepdim=True)
        return gy, cls.run_backward(y, gg, ctx.args)


class LogSoftmax(FusedOp):
    kernel, params, saves_output = "log_softmax", ("axis",), True

    @classmethod
    def backward_of_backward(cls, ctx, gg):
        y, g = ctx.saved_tensors  # out = g - exp(y) sum(g)
        (ax,) = ctx.args
        p = y.exp()
        gy = -gg * p * g.sum(ax, keepdim=True)
        gg_g = gg - (gg * p).sum(ax, keepdim=True)
        return gy, gg_g


class CrossEntropy(Function):
    """Per-row loss logsumexp(z) - z[label] of logits z (N, C) with integer labels (N,)."""

    @staticmethod
    def forward(ctx, logits, labels):
        loss, ctx.lse = ctx.be.cross_entropy(logits, labels)
        if ctx._next:  # recorded: backward reads them, and a later change must not reach it
            ctx.labels = ctx.be.copy(labels)
        ctx.save_inputs(0)
        return loss

    @staticmethod
    def backward(ctx, g):
        (logits,) = ctx.saved_tensors
        return (CrossEntropyBackward.apply(logits, g, labels=ctx.labels, lse=ctx.lse),)


class CrossEntropyBackward(Function):
    """(softmax(z) - onehot(label)) * g per row, in one fused pass."""

    @staticmethod
    def forward(ctx, logits, g, labels, lse):
        ctx.labels = labels
        ctx.save_inputs(0, 1)
        return ctx.be.cross_entropy_backward(logits, labels, lse, g)

    @staticmethod
    def backward(ctx, gg):
        logits, g = ctx.saved_tensors
        p = logits.softmax(-1)
        onehot = _onehot(ctx.labels, logits)
        g_g = (gg * (p - onehot)).sum(-1)
        g_logits = p * (gg - (gg * p).sum(-1, keepdim=True)) * g.unsqueeze(-1)
        return g_logits, g_g


def _onehot(labels, like):
    from ..tensor import Tensor

    xp = like._be.xp
    eye = xp.zeros(like.shape, like.dtype)
    like._be.setitem(eye, (xp.arange(len(labels)), labels), 1)
    return Tensor._make(eye, like._device)


# ---- functional forms -------------------------------------------------------------------------
def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return Sigmoid.apply(float_operand(x))


def tanh(x):
    """The hyperbolic tangent."""
    return Tanh.apply(float_operand(x))


def relu(x):
    """max(0, x)."""
    return ReLU.apply(float_operand(x))


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    return LeakyReLU.apply(float_operand(x), negative_slope=float(negative_slope))


def gelu(x, approximate="none"):
    """x * Phi(x) (Phi the standard normal CDF); approximate="tanh" uses the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(float_operand(x), approximate=approximate == "tanh")


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold."""
    if beta <= 0:
        raise ValueError(f"softplus: beta must be > 0, got {beta}")
    return Softplus.apply(float_operand(x), beta=float(beta), threshold=float(threshold))


@torch_kwargs
def softmax(input, dim=-1, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (a 0-d tensor gives 1)."""
    x = float_operand(input if dtype is None else input.to(dtype))
    d = normalize_axis(dim, x.ndim, "softmax")
    if x.ndim == 0:
        return (x - x).exp()
    return Softmax.apply(x, axis=d)


@torch_kwargs
def log_softmax(input, dim=-1, dtype=None):
    """x - logsumexp(x) along ``dim`` (a 0-d tensor gives 0)."""
    x = float_operand(input if dtype is None else input.to(dtype))
    d = normalize_axis(dim, x.ndim, "log_softmax")
    if x.ndim == 0:
        return x - x
    return LogSoftmax.apply(x, axis=d)


def cross_entropy_rows(logits, labels):
    """Per-row cross-entropy of (N, C) logits against an integer label array (N,)."""
    return CrossEntropy.apply(logits, labels=labels)
