"""Activations, softmax and cross-entropy on the backends' fused kernels.

Each forward is one kernel and saves exactly what its backward kernel reads (the output for
sigmoid/tanh/relu, the input otherwise). Each backward is itself an op (``*Backward``) running
one fused kernel, whose own backward is written with tensor ops, so second and higher
derivatives work.
"""

import math

from ..autograd.function import Function
from ._util import as_tensor, float_operand


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_output()
        return ctx.be.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (SigmoidBackward.apply(y, g),)


class SigmoidBackward(Function):
    @staticmethod
    def forward(ctx, y, g):
        ctx.save_inputs(0, 1)
        return ctx.be.sigmoid_backward(y, g)

    @staticmethod
    def backward(ctx, gg):
        y, g = ctx.saved_tensors  # out = g y (1 - y)
        return gg * g * (1 - 2 * y), SigmoidBackward.apply(y, gg)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_output()
        return ctx.be.tanh(x)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (TanhBackward.apply(y, g),)


class TanhBackward(Function):
    @staticmethod
    def forward(ctx, y, g):
        ctx.save_inputs(0, 1)
        return ctx.be.tanh_backward(y, g)

    @staticmethod
    def backward(ctx, gg):
        y, g = ctx.saved_tensors  # out = g (1 - y^2)
        return -2 * gg * g * y, TanhBackward.apply(y, gg)


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_output()
        return ctx.be.relu(x)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (ReLUBackward.apply(y, g),)


class ReLUBackward(Function):
    @staticmethod
    def forward(ctx, y, g):
        ctx.save_inputs(0)
        return ctx.be.relu_backward(y, g)

    @staticmethod
    def backward(ctx, gg):
        (y,) = ctx.saved_tensors  # piecewise linear: no curvature
        return None, ReLUBackward.apply(y, gg)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.slope = negative_slope
        ctx.save_inputs(0)
        return ctx.be.leaky_relu(x, negative_slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (LeakyReLUBackward.apply(x, g, negative_slope=ctx.slope),)


class LeakyReLUBackward(Function):
    @staticmethod
    def forward(ctx, x, g, negative_slope):
        ctx.slope = negative_slope
        ctx.save_inputs(0)
        return ctx.be.leaky_relu_backward(x, g, negative_slope)

    @staticmethod
    def backward(ctx, gg):
        (x,) = ctx.saved_tensors
        return None, LeakyReLUBackward.apply(x, gg, negative_slope=ctx.slope)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class GELU(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        ctx.save_inputs(0)
        return ctx.be.gelu(x, approximate)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (GELUBackward.apply(x, g, approximate=ctx.approximate),)


class GELUBackward(Function):
    @staticmethod
    def forward(ctx, x, g, approximate):
        ctx.approximate = approximate
        ctx.save_inputs(0, 1)
        return ctx.be.gelu_backward(x, g, approximate)

    @staticmethod
    def backward(ctx, gg):
        x, g = ctx.saved_tensors
        if ctx.approximate:  # gelu = x/2 (1 + tanh u), u = c (x + a x^3)
            a = 0.044715
            t = (_SQRT_2_OVER_PI * (x + a * x**3)).tanh()
            du = _SQRT_2_OVER_PI * (1 + 3 * a * x * x)
            sech2 = 1 - t * t
            second = sech2 * du + 0.5 * x * sech2 * (-2 * t * du * du + _SQRT_2_OVER_PI * 6 * a * x)
        else:  # gelu'' = phi(x) (2 - x^2)
            second = _INV_SQRT_2PI * (-0.5 * x * x).exp() * (2 - x * x)
        return gg * g * second, GELUBackward.apply(x, gg, approximate=ctx.approximate)


class Softplus(Function):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.beta, ctx.threshold = beta, threshold
        ctx.save_inputs(0)
        return ctx.be.softplus(x, beta, threshold)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (SoftplusBackward.apply(x, g, beta=ctx.beta, threshold=ctx.threshold),)


class SoftplusBackward(Function):
    @staticmethod
    def forward(ctx, x, g, beta, threshold):
        ctx.beta, ctx.threshold = beta, threshold
        ctx.save_inputs(0, 1)
        return ctx.be.softplus_backward(x, g, beta, threshold)

    @staticmethod
    def backward(ctx, gg):
        from .arith import where

        x, g = ctx.saved_tensors
        z = x * ctx.beta
        s = z.sigmoid()
        curvature = where(z > ctx.threshold, as_tensor(0, x), s * (1 - s) * ctx.beta)
        return gg * g * curvature, SoftplusBackward.apply(x, gg, beta=ctx.beta, threshold=ctx.threshold)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        ctx.save_output()
        return ctx.be.softmax(x, axis)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (SoftmaxBackward.apply(y, g, axis=ctx.axis),)


class SoftmaxBackward(Function):
    @staticmethod
    def forward(ctx, y, g, axis):
        ctx.axis = axis
        ctx.save_inputs(0, 1)
        return ctx.be.softmax_backward(y, g, axis)

    @staticmethod
    def backward(ctx, gg):
        y, g = ctx.saved_tensors  # out = y (g - sum(g y))
        ax = ctx.axis
        gy = gg * (g - (g * y).sum(ax, keepdims=True)) - g * (gg * y).sum(ax, keepdims=True)
        return gy, SoftmaxBackward.apply(y, gg, axis=ax)


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        ctx.save_output()
        return ctx.be.log_softmax(x, axis)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (LogSoftmaxBackward.apply(y, g, axis=ctx.axis),)


class LogSoftmaxBackward(Function):
    @staticmethod
    def forward(ctx, y, g, axis):
        ctx.axis = axis
        ctx.save_inputs(0, 1)
        return ctx.be.log_softmax_backward(y, g, axis)

    @staticmethod
    def backward(ctx, gg):
        y, g = ctx.saved_tensors  # out = g - exp(y) sum(g)
        ax = ctx.axis
        p = y.exp()
        gy = -gg * p * g.sum(ax, keepdims=True)
        gg_g = gg - (gg * p).sum(ax, keepdims=True)
        return gy, gg_g


class CrossEntropy(Function):
    """Per-row loss logsumexp(z) - z[label] of logits z (N, C) with integer labels (N,)."""

    @staticmethod
    def forward(ctx, logits, labels):
        loss, ctx.lse = ctx.be.cross_entropy(logits, labels)
        ctx.labels = labels
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
        g_logits = p * (gg - (gg * p).sum(-1, keepdims=True)) * g.unsqueeze(-1)
        return g_logits, g_g


def _onehot(labels, like):
    from ..tensor import Tensor

    xp = like._be.xp
    eye = xp.zeros(like.shape, like.dtype)
    eye[xp.arange(len(labels)), labels] = 1
    return Tensor._make(eye, like._device)


# ---- functional forms -------------------------------------------------------------------------
def sigmoid(x):
    return Sigmoid.apply(float_operand(x))


def tanh(x):
    return Tanh.apply(float_operand(x))


def relu(x):
    return ReLU.apply(float_operand(x))


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU.apply(float_operand(x), negative_slope=float(negative_slope))


def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(float_operand(x), approximate=approximate == "tanh")


def softplus(x, beta=1.0, threshold=20.0):
    if beta <= 0:
        raise ValueError(f"softplus: beta must be > 0, got {beta}")
    return Softplus.apply(float_operand(x), beta=float(beta), threshold=float(threshold))


def softmax(x, axis=-1):
    from ._util import normalize_axis

    x = float_operand(x)
    return Softmax.apply(x, axis=normalize_axis(axis, x.ndim, "softmax"))


def log_softmax(x, axis=-1):
    from ._util import normalize_axis

    x = float_operand(x)
    return LogSoftmax.apply(x, axis=normalize_axis(axis, x.ndim, "log_softmax"))


def cross_entropy_rows(logits, labels):
    """Per-row cross-entropy of (N, C) logits against an integer label array (N,)."""
    return CrossEntropy.apply(logits, labels=labels)
