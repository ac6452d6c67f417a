"""Stateless neural-network functions (``import gradflow.nn.functional as F``)."""

from .. import dtypes as _dtypes
from ..autograd.function import Function
from ..autograd.lowp import in_float32
from ..ops.activation import (cross_entropy_rows, gelu, leaky_relu, log_softmax, relu, sigmoid,
                              softmax, softplus, tanh)
from .._jit import trace as _jit_trace
from ..ops.linalg import linear
from ..ops._util import check_range

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softplus", "softmax", "log_softmax",
           "linear", "mse_loss", "cross_entropy", "binary_cross_entropy_with_logits", "nll_loss",
           "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy", "kl_div", "silu",
           "mish", "elu", "selu", "celu", "hardtanh", "relu6", "hardsigmoid", "hardswish",
           "logsigmoid", "softsign", "softmin", "dropout", "layer_norm", "batch_norm",
           "normalize", "cosine_similarity", "scaled_dot_product_attention", "embedding",
           "one_hot", "pad", "glu", "threshold", "tanhshrink", "softshrink", "hardshrink", "prelu",
           "rms_norm", "group_norm", "pairwise_distance"]


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(op, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} differ "
                         "(no silent broadcasting in losses)")


@in_float32
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """(input - target)^2, reduced."""
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


@in_float32
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits (N, C) (or (C,), or (N, C, d1, ...)) against integer class labels
    (N,) / (N, d1, ...) or class probabilities of the logits' shape, as PyTorch: optional class
    ``weight``, labels equal to ``ignore_index`` skipped, ``label_smoothing`` mixing in the
    uniform distribution. Plain integer labels on (N, C) use the fused kernel: the gradient is
    softmax(logits) - onehot(label), never formed through the log of a softmax."""
    from ..tensor import Tensor, tensor

    if size_average is not None or reduce is not None:
        raise TypeError("cross_entropy: size_average/reduce are deprecated in PyTorch; use reduction=")
    logits = input
    if not isinstance(target, Tensor):  # a Python int/list of ints stays integer labels
        target = tensor(target, device=logits.device)
    if logits.ndim == 1:  # one sample: its label is a scalar, its probabilities a vector
        return cross_entropy(logits.unsqueeze(0), target.unsqueeze(0), weight, None, ignore_index,
                             None, reduction, label_smoothing)
    if logits.ndim == 0:
        raise ValueError("cross_entropy: logits must have a class dim, got a 0-d tensor")
    _check_reduction(reduction, "cross_entropy")
    if not _dtypes.is_float(logits.dtype):
        logits = logits.float()
    if target.dtype.kind in "iu":
        expected = (logits.shape[0],) + tuple(logits.shape[2:])
        if tuple(target.shape) != expected:
            raise ValueError(f"cross_entropy: labels of shape {target.shape} do not match logits "
                             f"of shape {logits.shape} (expected {expected})")
        if target.requires_grad:
            raise TypeError("cross_entropy: integer labels cannot require grad")
        if target._device != logits._device:
            raise RuntimeError(f"cross_entropy: the labels are on {target._device} but the logits "
                               f"are on {logits._device}")
        plain = (logits.ndim == 2 and weight is None and not label_smoothing
                 and not _jit_trace.guard(_has_value, target._be.xp, target.array, ignore_index))
        if plain:
            labels = target.array if target.dtype == "int64" else target._be.astype(target.array, "int64")
            return _reduce(cross_entropy_rows(logits, labels), reduction, "cross_entropy")
        logp = log_softmax(logits, 1)
        loss = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
        if not label_smoothing:
            return loss
        c = logits.shape[1]
        w = _class_shape(weight, logp) if weight is not None else None
        smooth = -(logp * w if w is not None else logp).sum(1) / c
        valid = (target != ignore_index).to(logp.dtype)
        smooth = smooth * valid
        if reduction == "mean":
            denom = (_class_weights(weight, target, ignore_index, logp) * valid).sum() \
                if weight is not None else valid.sum()
            smooth = smooth.sum() / denom
        else:
            smooth = _reduce(smooth, reduction, "cross_entropy")
        return (1 - label_smoothing) * loss + label_smoothing * smooth
    if _dtypes.is_float(target.dtype):
        _same_shape("cross_entropy", logits, target)
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / logits.shape[1]
        logp = log_softmax(logits, 1)
        if weight is not None:
            logp = logp * _class_shape(weight, logp)
        loss = -(target * logp).sum(1)
        return _reduce(loss, reduction, "cross_entropy")
    raise TypeError(f"cross_entropy: target must be integer labels or float probabilities, "
                    f"got {target.dtype}")


def _has_value(xp, labels, value):
    """Whether any label is ``value`` (a gf.jit replay checks it again first). ``xp``: the
    labels' backend's, which works on their device."""
    return bool(xp.any(xp.equal(labels, value)))


def _check_reduction(reduction, op):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_shape(weight, like):
    """Per-class weights (C,) shaped to broadcast along dim 1 of ``like``."""
    return weight.reshape((1, -1) + (1,) * (like.ndim - 2)).to(like.dtype)


def _class_weights(weight, target, ignore_index, like):
    safe = target.masked_fill(target == ignore_index, 0)
    return weight.to(like.dtype)[safe]


@in_float32
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """The negative log-likelihood -input[n, target[n]] of log-probabilities (N, C) or
    (N, C, d1, ...), weighted by class ``weight``; the mean divides by the summed weights of
    the labels not equal to ``ignore_index``."""
    from ..ops.index import gather

    if size_average is not None or reduce is not None:
        raise TypeError("nll_loss: size_average/reduce are deprecated in PyTorch; use reduction=")
    _check_reduction(reduction, "nll_loss")
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must be integer class labels, got {target.dtype}")
    c = input.shape[1]
    ignored = target == ignore_index
    safe = target.masked_fill(ignored, 0)
    check_range(safe.array, 0, c, f"nll_loss: labels must be in [0, {c}) (or ignore_index), got "
                "{lo}..{hi}")
    picked = -gather(input, 1, safe.unsqueeze(1)).squeeze(1)
    w = (~ignored).to(input.dtype)
    if weight is not None:
        w = w * weight.to(input.dtype)[safe]
    loss = picked * w
    if reduction == "mean":
        return loss.sum() / w.sum()
    return loss.sum() if reduction == "sum" else loss


@in_float32
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """|input - target|, reduced."""
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction, "l1_loss")


@in_float32
def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with d = input - target."""
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("huber_loss", input, target)
    d = input - target
    a = d.abs()
    return _reduce(_where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta)), reduction, "huber_loss")


@in_float32
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, with d = input - target."""
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("smooth_l1_loss", input, target)
    d = input - target
    a = d.abs()
    if beta == 0:
        return _reduce(a, reduction, "smooth_l1_loss")
    return _reduce(_where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta), reduction, "smooth_l1_loss")


@in_float32
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-[t log p + (1 - t) log(1 - p)] of probabilities ``input``, the logs clamped at -100 as
    PyTorch does."""
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("binary_cross_entropy", input, target)
    loss = -(target * input.log().clip(-100.0) + (1 - target) * (1 - input).log().clip(-100.0))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


@in_float32
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL divergence with ``input`` as log-probabilities: target (log target - input), or with
    log_target=True exp(target) (target - input). ``reduction="batchmean"`` divides the sum by
    the batch size (the mathematically right mean)."""
    from ..ops._util import as_tensor
    from ..ops.elementwise import xlogy

    target = as_tensor(target, input)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = xlogy(target, target) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


@in_float32
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """-[pos_weight t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], computed stably as
    softplus(x) - t x (and with pos_weight, (1 - t) x + (1 + (pw - 1) t) softplus(-x))."""
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    if pos_weight is None:
        loss = softplus(input, 1.0, float("inf")) - target * input
    else:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus(-input, 1.0, float("inf"))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


# ---- more activations (compositions of differentiable ops) ------------------------------------------
@in_float32
def silu(input, inplace=False):
    """x * sigmoid(x) (swish)."""
    return input * sigmoid(input)


@in_float32
def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    return input * tanh(softplus(input))


@in_float32
def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    from ..ops.elementwise import expm1

    return _where(input > 0, input, alpha * expm1(_min0(input)))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


@in_float32
def selu(input, inplace=False):
    """scale * elu(x, alpha) with SELU's fixed alpha and scale."""
    return _SELU_SCALE * elu(input, _SELU_ALPHA)


@in_float32
def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1))."""
    from ..ops.elementwise import expm1

    return _where(input > 0, input, alpha * expm1(_min0(input) / alpha))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clamped to [min_val, max_val]."""
    return input.clip(min_val, max_val)


def relu6(input, inplace=False):
    """min(max(0, x), 6)."""
    return hardtanh(input, 0.0, 6.0)


@in_float32
def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    return relu6(input + 3.0) / 6.0


@in_float32
def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6."""
    return input * hardsigmoid(input)


@in_float32
def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), computed stably."""
    return -softplus(-input, 1.0, float("inf"))


@in_float32
def softsign(input):
    """x / (1 + |x|)."""
    return input / (1 + input.abs())


@in_float32
def softmin(input, dim=-1, dtype=None):
    """softmax(-x) along ``dim``."""
    return softmax(-input, dim, dtype)


@in_float32
def glu(input, dim=-1):
    """a * sigmoid(b), with a and b the two halves of ``input`` along ``dim``."""
    from ..ops._util import normalize_axis

    d = normalize_axis(dim, input.ndim, "glu")
    if input.shape[d] % 2:
        raise ValueError(f"glu: dim {dim} of shape {input.shape} must have an even size")
    a, b = input.chunk(2, d)
    return a * sigmoid(b)


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else ``value``."""
    return _where(input > threshold, input, _scalar(value, input))


@in_float32
def tanhshrink(input):
    """x - tanh(x)."""
    return input - tanh(input)


@in_float32
def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    zero = _scalar(0.0, input)
    return _where(input > lambd, input - lambd, _where(input < -lambd, input + lambd, zero))


@in_float32
def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    return _where(input.abs() > lambd, input, _scalar(0.0, input))


@in_float32
def prelu(input, weight):
    """x for x >= 0, weight * x otherwise; ``weight`` has 1 element or one per channel (dim 1)."""
    if weight.numel() != 1:
        if input.ndim < 2 or weight.numel() != input.shape[1]:
            raise ValueError(f"prelu: weight of {weight.numel()} elements does not match the "
                             f"channels (dim 1) of input shape {input.shape}")
        weight = weight.reshape((-1,) + (1,) * (input.ndim - 2))
    return _where(input >= 0, input, weight * input)


@in_float32
def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) over the last len(normalized_shape) dims, then * weight; eps
    defaults to the dtype's machine epsilon, as PyTorch."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"rms_norm: input of shape {input.shape} does not end in {shape}")
    if eps is None:
        eps = float(_dtypes.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


@in_float32
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Layer norm within each of ``num_groups`` groups of the channels (dim 1) of an (N, C, *)
    input, then * weight + bias per channel."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise ValueError(f"group_norm: the channels (dim 1) of input shape {input.shape} do not "
                         f"divide into {num_groups} groups")
    n, c = input.shape[0], input.shape[1]
    x = input.reshape(n, num_groups, -1)
    mean = x.mean(-1, keepdim=True)
    d = x - mean
    out = (d * ((d * d).mean(-1, keepdim=True) + eps).rsqrt()).reshape(tuple(input.shape))
    per_channel = (c,) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(per_channel)
    if bias is not None:
        out = out + bias.reshape(per_channel)
    return out


@in_float32
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """The p-norm of ``x1 - x2 + eps`` along the last dim."""
    from ..ops.scan import vector_norm

    return vector_norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


def _scalar(value, like):
    from ..ops._util import as_tensor

    return as_tensor(value, like)


def _where(cond, a, b):
    from ..ops.arith import where

    return where(cond, a, b)


def _min0(x):
    return x.clip(None, 0.0)


# ---- dropout, normalisation, attention ----------------------------------------------------------------
def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability p and scales the rest by 1/(1-p) when training."""
    from ..tensor import Tensor

    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    # One step of gf.jit's record: a replay draws a new mask, advancing the generator as this did.
    mask = _jit_trace.call(_dropout_mask, input._be, tuple(input.shape), p, input.dtype)
    return input * Tensor._make(mask, input._device)


def _dropout_mask(be, shape, p, dtype):
    """0 with probability p, else 1 / (1 - p), drawn from the default generator."""
    from .. import random as _random

    if be.name == "cpu":
        keep = _random.generator().random(shape) >= p
        return (keep / (1 - p)).astype(dtype)
    # on the device from a seed: no mask copied from the host every step
    return be.dropout_mask(shape, p, dtype, int(_random.generator().integers(0, 2**63)))


@in_float32
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) over the last len(normalized_shape) dims (biased variance),
    then * weight + bias."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm: input of shape {input.shape} does not end in {shape}")
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    mean = input.mean(dims, keepdim=True)
    d = input - mean
    var = (d * d).mean(dims, keepdim=True)
    out = d * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


@in_float32(in_place=("running_mean", "running_var"))
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalises each channel (dim 1) over the batch (and any further dims) in training, and
    updates the running statistics in place (unbiased variance, as PyTorch); in eval, uses them."""
    from ..autograd.grad_mode import no_grad

    dims = (0,) + tuple(range(2, input.ndim))
    shape = (1, -1) + (1,) * (input.ndim - 2)
    if training:
        mean = input.mean(dims, keepdim=True)
        d = input - mean
        var = (d * d).mean(dims, keepdim=True)
        if running_mean is not None:
            n = input.numel() // input.shape[1]
            with no_grad():
                running_mean.mul_(1 - momentum).add_(mean.detach().reshape(-1) * momentum)
                running_var.mul_(1 - momentum).add_(var.detach().reshape(-1) * (momentum * n / max(n - 1, 1)))
    else:
        if running_mean is None:
            raise ValueError("batch_norm: eval mode needs running_mean and running_var")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
        d = input - mean
    out = d * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


@in_float32
def normalize(input, p=2.0, dim=1, eps=1e-12):
    """x / max(||x||_p, eps) along ``dim``."""
    from ..ops.scan import vector_norm

    return input / vector_norm(input, p, dim, keepdim=True).clip(eps)


@in_float32
def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """<x1, x2> / (max(||x1||, eps) * max(||x2||, eps)) along ``dim``."""
    from ..ops.scan import vector_norm

    n1 = vector_norm(x1, 2, dim).clip(eps)
    n2 = vector_norm(x2, 2, dim).clip(eps)
    return (x1 * x2).sum(dim) / (n1 * n2)


@in_float32
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None):
    """softmax(q k^T * scale + mask) v over the last two dims (scale 1/sqrt(E) by default);
    ``is_causal`` masks future positions; a bool ``attn_mask`` keeps where True, a float one is
    added."""
    import math

    from ..tensor import Tensor

    L, S = query.shape[-2], key.shape[-2]
    s = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * s
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
        keep = Tensor._make(query._be.xp.tri(L, S, 0, dtype=bool), query._device)
        attn_mask = keep
    if attn_mask is not None:
        if attn_mask.dtype.kind == "b":
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = softmax(scores, -1)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p)
    return weights @ value


# ---- embeddings, padding, one-hot --------------------------------------------------------------------
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by the integer tensor ``input`` (any shape), as PyTorch: the row
    at ``padding_idx`` gets no gradient; with ``max_norm`` the rows looked up whose
    ``norm_type``-norm exceeds it are first rescaled to that norm, in place in ``weight``;
    with ``scale_grad_by_freq`` each row's gradient is divided by how often ``input`` holds it.
    ``sparse=True`` (sparse gradients) is not supported."""
    from ..tensor import Tensor

    if sparse:
        raise NotImplementedError("embedding: sparse=True is not supported (gradflow's gradients "
                                  "are dense tensors); pass sparse=False")
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise TypeError("embedding: input must be an integer tensor of indices, got "
                        f"{input.dtype if isinstance(input, Tensor) else type(input).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D, got shape {weight.shape}")
    n, be = weight.shape[0], input._be
    check_range(input.array, 0, n, f"embedding: index out of range for {n} embeddings (indices "
                f"must be in [0, {n}))")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} is not within {n} embeddings")
        padding_idx %= n
    if max_norm is not None:
        _renorm_rows(weight, input, max_norm, norm_type)
    w = weight
    if padding_idx is not None and weight.requires_grad:
        keep = weight._be.xp.ones((n, 1), weight.dtype)
        weight._be.setitem(keep, padding_idx, 0)
        k = Tensor._make(keep, weight._device)
        w = weight * k + (weight * (1 - k)).detach()  # same values; no gradient to that row
    out = w[input]
    if scale_grad_by_freq and out.requires_grad:
        xp = be.xp
        # counted in int64 (exact at any count; a bfloat16 count would stop at 256)
        counts = be.index_add((n,), _dtypes.int64, (be.reshape(input.array, -1),),
                              xp.ones(input.numel(), _dtypes.int64))
        per_use = be.astype(1 / be.getitem(counts, input.array), weight.dtype)
        per_use = be.reshape(per_use, tuple(input.shape) + (1,))
        out = _GradScale.apply(out, scale=per_use)
    return out


def _renorm_rows(weight, input, max_norm, norm_type):
    """PyTorch's embedding_renorm_: each distinct row looked up whose norm exceeds max_norm is
    scaled by max_norm / (norm + 1e-7), in place and outside the graph."""
    from ..autograd.grad_mode import no_grad
    from ..ops.arith import where
    from ..ops.scan import unique
    from ..tensor import ones

    with no_grad():
        rows = unique(input)
        picked = weight[rows]
        norm = picked.norm(p=norm_type, dim=1, keepdim=True)
        one = ones((), dtype=weight.dtype, device=weight.device)
        weight[rows] = picked * where(norm > max_norm, max_norm / (norm + 1e-7), one)


class _GradScale(Function):
    """The identity, with the gradient multiplied by ``scale`` (a backend array)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return ctx.be.copy(x)

    @staticmethod
    def backward(ctx, g):
        from ..tensor import Tensor

        return (g * Tensor._make(ctx.scale, g._device),)


def one_hot(tensor, num_classes=-1):
    """Integer labels as one-hot int64 vectors along a new last dim."""
    from ..tensor import Tensor

    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: needs an integer tensor, got {tensor.dtype}")
    n = int(tensor.array.max()) + 1 if num_classes == -1 else int(num_classes)
    if tensor.numel() and (int(tensor.array.min()) < 0 or int(tensor.array.max()) >= n):
        raise ValueError(f"one_hot: class values must be in [0, {n})")
    xp = tensor._be.xp
    return Tensor._make((tensor.array[..., None] == xp.arange(n)).astype("int64"), tensor._device)


@in_float32
def pad(input, pad, mode="constant", value=None):
    """Pads the last len(pad)/2 dims: ``pad = (left, right, top, bottom, ...)`` from the last dim
    backwards, as PyTorch (negative amounts crop). ``mode`` "constant" (with ``value``, any
    number of dims) or "reflect", "replicate", "circular", which as in PyTorch pad the last 1, 2
    or 3 dims of an input with 1 or 2 more (batch) dims. Differentiable in every mode."""
    pad = tuple(pad)
    if len(pad) % 2:
        raise RuntimeError(f"pad: padding length must be divisible by 2, got {pad}")
    if len(pad) > 2 * input.ndim:
        raise RuntimeError(f"pad: padding {pad} pads {len(pad) // 2} dims but the input has "
                           f"only {input.ndim} (shape {input.shape})")
    if mode == "constant":
        return _pad_constant(input, pad, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: unrecognised padding mode {mode!r} (expected 'constant', "
                                  "'reflect', 'replicate' or 'circular')")
    if value is not None and value != 0:
        raise RuntimeError(f"pad: padding mode {mode!r} doesn't take a value argument")
    k = len(pad) // 2
    if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of an input with 1 or 2 more "
            f"(batch) dims (padding sizes 2, 4, 6 for 2-3, 3-4, 4-5 dim inputs); got padding "
            f"size {len(pad)} for a {input.ndim}-dim input of shape {input.shape}")
    from ..ops.index import index_select
    from ..tensor import tensor

    if mode != "circular" and 0 in input.shape[input.ndim - k - 1:]:
        raise RuntimeError(f"pad: mode {mode!r} needs non-empty dims besides the batch dim, "
                           f"got shape {input.shape}")
    x = input
    for i in range(k):
        d = input.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        pos = _pad_positions(x.shape[d], lo, hi, mode, d, input.shape)
        x = index_select(x, d, tensor(pos, device=x.device))
    return x


def _pad_positions(n, lo, hi, mode, d, shape):
    """For each output position along one dim, the input position it copies."""
    import numpy as np

    if mode == "circular":  # as PyTorch: crop first, then wrap the cropped dim around
        start = max(0, -lo)
        m = n - start - max(0, -hi)
        lo, hi = max(0, lo), max(0, hi)
        if m < 0 or lo > m or hi > m:
            raise RuntimeError(f"pad: circular padding ({lo}, {hi}) of dim {d} (shape {shape}) "
                               f"wraps around the (cropped) size {max(m, 0)} more than once")
        return start + np.arange(-lo, m + hi) % m if m else np.zeros(0, np.int64)
    size = n + lo + hi
    if mode == "reflect" and (lo >= n or hi >= n):
        raise RuntimeError(f"pad: reflect padding ({lo}, {hi}) must be less than the size {n} of "
                           f"dim {d} (shape {shape})")
    if size <= 0:
        raise RuntimeError(f"pad: padding ({lo}, {hi}) leaves dim {d} of shape {shape} empty")
    p = np.arange(size) - lo
    if mode == "reflect":
        p = np.abs(p)
        return np.where(p > n - 1, 2 * (n - 1) - p, p)
    return np.clip(p, 0, n - 1)


def _pad_constant(input, pad, value):
    from ..ops.shape import IndexAdd
    from ..tensor import Tensor

    x = input
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    x = x[tuple(slice(max(0, -lo), n - max(0, -hi)) for n, (lo, hi) in zip(x.shape, widths))]
    lo = [max(0, w[0]) for w in widths]
    shape = tuple(n + a + max(0, w[1]) for n, a, w in zip(x.shape, lo, widths))
    index = tuple(slice(a, a + n) for a, n in zip(lo, x.shape))
    out = IndexAdd.apply(x, shape=shape, index=index)
    if value != 0:
        be = x._be
        fill = be.xp.full(shape, value, x.dtype)
        be.setitem(fill, index, 0)
        out = out + Tensor._make(fill, x._device)
    return out
