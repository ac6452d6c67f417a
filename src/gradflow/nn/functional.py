"""Stateless neural-network functions (``import gradflow.nn.functional as F``)."""

from ..ops.activation import (cross_entropy_rows, gelu, leaky_relu, log_softmax, relu, sigmoid,
                              softmax, softplus, tanh)
from ..ops.linalg import linear

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softplus", "softmax", "log_softmax",
           "linear", "mse_loss", "cross_entropy", "binary_cross_entropy_with_logits"]


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


def mse_loss(input, target, reduction="mean"):
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def cross_entropy(logits, target, reduction="mean"):
    """Cross-entropy of logits (N, C) (or (C,)) against integer class labels (N,) or class
    probabilities (N, C). Integer labels use the fused kernel: the gradient is
    softmax(logits) - onehot(label), never formed through the log of a softmax."""
    from ..tensor import Tensor, tensor

    if not isinstance(target, Tensor):  # a Python int/list of ints stays integer labels
        target = tensor(target, device=logits.device)
    if logits.ndim == 1:  # one sample: its label is a scalar, its probabilities a vector
        return cross_entropy(logits.unsqueeze(0), target.unsqueeze(0), reduction)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}")
    if target.dtype.kind in "iu":
        if target.shape != (logits.shape[0],):
            raise ValueError(f"cross_entropy: labels of shape {target.shape} do not match logits "
                             f"of shape {logits.shape} (expected ({logits.shape[0]},))")
        if target.requires_grad:
            raise TypeError("cross_entropy: integer labels cannot require grad")
        if target._device != logits._device:
            raise RuntimeError(f"cross_entropy: the labels are on {target._device} but the logits "
                               f"are on {logits._device}")
        labels = target.data if target.dtype == "int64" else target._be.astype(target.data, "int64")
        loss = cross_entropy_rows(logits if logits.dtype.kind == "f" else logits.float(), labels)
    elif target.dtype.kind == "f":
        _same_shape("cross_entropy", logits, target)
        loss = -(target * log_softmax(logits, -1)).sum(-1)
    else:
        raise TypeError(f"cross_entropy: target must be integer labels or float probabilities, "
                        f"got {target.dtype}")
    return _reduce(loss, reduction, "cross_entropy")


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """-[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] computed stably as softplus(x) - t x."""
    from ..ops._util import as_tensor

    target = as_tensor(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    loss = softplus(input, 1.0, float("inf")) - target * input
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")
