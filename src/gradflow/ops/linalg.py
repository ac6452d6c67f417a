"""Matrix products on the backend's BLAS: matmul (1-D, 2-D, batched with broadcast batch dims)
and linear (x @ W^T + b with the bias fused into the GEMM). Gradients use the transpose flags
instead of materialising transposes."""

from ..autograd.function import Function
from ._util import float_operand, promote


class MatMul(Function):
    """op(a) @ op(b), op = swap of the last two axes where the flag is set; both ndim >= 2."""

    @staticmethod
    def forward(ctx, a, b, trans_a=False, trans_b=False):
        ctx.trans_a, ctx.trans_b = trans_a, trans_b
        ctx.save_inputs(0, 1)
        return ctx.be.matmul(a, b, trans_a, trans_b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ta, tb = ctx.trans_a, ctx.trans_b
        need_a, need_b = ctx.needs_input_grad
        # C = A' B' with A' = op(a), B' = op(b):  dA' = g B'^T,  dB' = A'^T g
        ga = gb = None
        if need_a:
            ga = (MatMul.apply(g, b, trans_a=False, trans_b=not tb) if not ta
                  else MatMul.apply(b, g, trans_a=tb, trans_b=True))
        if need_b:
            gb = (MatMul.apply(a, g, trans_a=not ta, trans_b=False) if not tb
                  else MatMul.apply(g, a, trans_a=True, trans_b=ta))
        return ga, gb


class Linear(Function):
    """x @ W^T + bias, W of shape (out, in); one GEMM with the bias fused in."""

    @staticmethod
    def forward(ctx, x, w, bias=None):
        ctx.save_inputs(0, 1)
        return ctx.be.matmul(x, w, False, True, bias)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        gx = MatMul.apply(g, w) if need[0] else None  # skipped for the data input of layer 1
        gw = None
        if need[1]:
            gw = MatMul.apply(g, x, trans_a=True) if g.ndim == 2 else MatMul.apply(
                g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1]), trans_a=True)
        if len(need) == 2:  # no bias
            return gx, gw
        return gx, gw, (g if need[2] else None)  # the engine sums g over the batch for the bias


def matmul(a, b):
    a, b = promote(a, b)
    a, b = float_operand(a), float_operand(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape} ({k_a} != {k_b})")
    # numpy's 1-D rules: a vector on the left is a row, on the right a column; the added axis is
    # removed from the result.
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = a.reshape(1, a.shape[0])
    if squeeze_b:
        b = b.reshape(b.shape[0], 1)
    out = MatMul.apply(a, b)
    if squeeze_a:
        out = out.squeeze(-2)
    if squeeze_b:
        out = out.squeeze(-1)
    return out


def linear(x, weight, bias=None):
    """x @ weight^T + bias. The input must have the weight's dtype, as in PyTorch (an integer
    input is an error, not silently converted)."""
    if x.dtype != weight.dtype:
        raise TypeError(f"linear: input dtype {x.dtype} differs from weight dtype {weight.dtype}; "
                        f"convert the input first (x.to({weight.dtype}))")
    if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape} "
            "(expected weight (out_features, in_features) with in_features == input.shape[-1])")
    if x.ndim == 1:
        return linear(x.reshape(1, -1), weight, bias).reshape(-1)
    if bias is None:
        return Linear.apply(x, weight)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {bias.shape} does not fit weight of shape {weight.shape}")
    if bias.dtype != x.dtype:
        bias = bias.to(x.dtype)
    return Linear.apply(x, weight, bias)
