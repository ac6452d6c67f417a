"""Matrix products on the backend's BLAS: matmul (1-D, 2-D, batched with broadcast batch dims)
and linear (x @ W^T + b with the bias fused into the GEMM). Gradients use the transpose flags
instead of materialising transposes. Also addmm, baddbmm, trace and cdist, written on them."""

import builtins

from ..autograd.function import Function
from ..dtypes import is_lowp
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.lowp import in_float32
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
        gx, gw = Linear.input_grads(need, g, x, w)
        if len(need) == 2:  # no bias
            return gx, gw
        return gx, gw, (g if need[2] else None)  # the engine sums g over the batch for the bias

    @staticmethod
    def input_grads(need, g, x, w):
        """(dx, dW) from the output's gradient g, each None where not needed: two GEMMs on the
        transpose flags."""
        gx = MatMul.apply(g, w) if need[0] else None  # skipped for the data input of layer 1
        gw = None
        if need[1]:
            gw = MatMul.apply(g, x, trans_a=True) if g.ndim == 2 else MatMul.apply(
                g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1]), trans_a=True)
        return gx, gw


class LinearReLU(Function):
    """relu(x @ W^T + bias) as one op, with the values and gradients (bitwise) of Linear then
    ReLU: the ReLU runs over the GEMM's output while it is in cache, and backward takes the
    bias gradient (the column sums) in the same pass as the ReLU's backward."""

    @staticmethod
    def forward(ctx, x, w, bias=None):
        ctx.save_inputs(0, 1)
        ctx.save_output()
        return ctx.be.linear_relu(x, w, bias)

    @staticmethod
    def backward(ctx, g):
        from ..tensor import Tensor
        from .activation import ReLU

        x, w, y = ctx.saved_tensors
        need = ctx.needs_input_grad
        want_bias = len(need) == 3 and need[2]
        gb = None
        # create_graph: recorded ops, differentiable again (and 16-bit floats', in float32 each)
        if is_grad_enabled() or not want_bias or is_lowp(g.dtype):
            gz = ReLU.run_backward(y, g, ())
            gb = gz if want_bias else None  # the engine sums it over the batch
        else:
            gz, gb = ctx.be.relu_backward_sum(y.array, g.array)
            gz, gb = Tensor._make(gz, g._device), Tensor._make(gb, g._device)
        gx, gw = Linear.input_grads(need, gz, x, w)
        return (gx, gw) if len(need) == 2 else (gx, gw, gb)


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
    return _linear(Linear, x, weight, bias)


def linear_relu(x, weight, bias=None):
    """relu(linear(x, weight, bias)) as one op (nn.Sequential runs a Linear followed by a ReLU
    through it): the same values and gradients, with the ReLU and the bias gradient fused."""
    return _linear(LinearReLU, x, weight, bias)


def _linear(op, x, weight, bias):
    if x.dtype != weight.dtype:
        raise TypeError(f"linear: input dtype {x.dtype} differs from weight dtype {weight.dtype}; "
                        f"convert the input first (x.to({weight.dtype}))")
    if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape} "
            "(expected weight (out_features, in_features) with in_features == input.shape[-1])")
    if x.ndim == 1:
        return _linear(op, x.reshape(1, -1), weight, bias).reshape(-1)
    if bias is None:
        return op.apply(x, weight)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias of shape {bias.shape} does not fit weight of shape {weight.shape}")
    if bias.dtype != x.dtype:
        bias = bias.to(x.dtype)
    return op.apply(x, weight, bias)


def mm(input, mat2):
    """The product of two matrices (2-d only, as in PyTorch)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: expects two 2-d tensors, got shapes {input.shape} and {mat2.shape}")
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched matrix product of (b, n, m) and (b, m, p) tensors."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ValueError(f"bmm: expects (b, n, m) and (b, m, p) tensors, got shapes {input.shape} "
                         f"and {mat2.shape}")
    return matmul(input, mat2)


def mv(input, vec):
    """Matrix times vector."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ValueError(f"mv: expects a 2-d and a 1-d tensor, got shapes {input.shape} and {vec.shape}")
    return matmul(input, vec)


@in_float32
def dot(input, other):
    """The dot product of two 1-d tensors of one length."""
    if input.ndim != 1 or other.ndim != 1 or input.shape != other.shape:
        raise ValueError(f"dot: expects two 1-d tensors of one length, got shapes {input.shape} "
                         f"and {other.shape}")
    return (input * other).sum()


vdot = inner = dot


def outer(input, vec2):
    """The outer product of two 1-d tensors: out[i, j] = input[i] * vec2[j]."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise ValueError(f"outer: expects two 1-d tensors, got shapes {input.shape} and {vec2.shape}")
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


ger = outer


def _parse_einsum(equation, operands):
    """Subscripts per operand and for the output, with '...' expanded into capital letters
    (right-aligned, as broadcasting aligns them)."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(ins)} operands, {len(operands)} given")
    n_ell = 0
    for s, t in zip(ins, operands):
        if "..." in s:
            n_ell = max(n_ell, t.ndim - (len(s) - 3))
    ell = "".join(chr(ord("Z") - i) for i in range(n_ell))[::-1]
    expanded = []
    for s, t in zip(ins, operands):
        if "..." in s:
            k = t.ndim - (len(s) - 3)
            s = s.replace("...", ell[n_ell - k:])
        if len(s) != t.ndim:
            raise ValueError(f"einsum: subscripts {s!r} do not fit an operand of shape {t.shape}")
        expanded.append(s)
    if not arrow:
        counts = {}
        for s in expanded:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    for s in expanded:
        if len(set(s)) != len(s):
            raise ValueError(f"einsum: repeated subscripts within one operand ({s!r}, a diagonal) "
                             "are not supported; take gf.diagonal first")
    return expanded, out


class Einsum(Function):
    @staticmethod
    def forward(ctx, *xs, ins, out):
        ctx.ins, ctx.out = ins, out
        ctx.save_inputs(*range(len(xs)))
        return ctx.be.xp.einsum(",".join(ins) + "->" + out, *xs)

    @staticmethod
    def backward(ctx, g):
        xs = ctx.saved_tensors
        need = ctx.needs_input_grad
        grads = []
        for i, s in enumerate(ctx.ins):
            if not need[i]:
                grads.append(None)
                continue
            others = [(t, ctx.ins[j]) for j, t in enumerate(xs) if j != i]
            present = set(ctx.out).union(*[set(o) for _, o in others])
            kept = "".join(c for c in s if c in present)
            gi = Einsum.apply(g, *[t for t, _ in others], ins=(ctx.out,) + tuple(o for _, o in others),
                              out=kept)
            if kept != s:  # letters summed away in forward: their gradient is broadcast back
                x = xs[i]
                gi = gi.reshape(tuple(x.shape[k] if c in present else 1 for k, c in enumerate(s)))
                gi = gi.broadcast_to(tuple(x.shape))
            grads.append(gi)
        return tuple(grads)


def einsum(equation, *operands):
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)`` (``...`` broadcasts)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = list(operands)
    for k in range(1, len(ts)):
        ts[0], ts[k] = promote(ts[0], ts[k])
    ts = [t if t.dtype == ts[0].dtype else t.to(ts[0].dtype) for t in ts]
    ins, out = _parse_einsum(equation, ts)
    sizes = {}
    for s, t in zip(ins, ts):
        for c, n in zip(s, t.shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {n}")
            sizes[c] = builtins.max(sizes.get(c, 1), n)
    ts = [t.broadcast_to(tuple(sizes[c] for c in s)) for s, t in zip(ins, ts)]  # size-1 dims
    return Einsum.apply(*ts, ins=tuple(ins), out=out)


@in_float32
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)`` (input broadcast; with beta 0 it is not read, so
    its NaNs do not propagate, as in PyTorch)."""
    return _scaled_sum(input, mm(mat1, mat2), beta, alpha)


@in_float32
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * bmm(batch1, batch2)``, as addmm."""
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)


def _scaled_sum(input, product, beta, alpha):
    import numpy as np

    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product.broadcast_to(tuple(np.broadcast_shapes(tuple(input.shape), tuple(product.shape))))
    return (input if beta == 1 else input * beta) + product


def trace(input):
    """The sum of a 2-D tensor's main diagonal."""
    from .layout import diagonal

    if input.ndim != 2:
        raise ValueError(f"trace: expected a 2-D tensor, got shape {input.shape}")
    return diagonal(input).sum()


@in_float32
def cdist(x1, x2, p=2.0):
    """The p-norm distances between the rows of ``x1`` (..., P, M) and of ``x2`` (..., R, M):
    (..., P, R). The gradient at a zero distance is zero, as PyTorch's."""
    from .scan import vector_norm

    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist: expected (..., P, M) and (..., R, M) tensors, got shapes "
                         f"{x1.shape} and {x2.shape}")
    return vector_norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), ord=p, dim=-1)


def cross(input, other, dim=None):
    """The cross product of 3-vectors along ``dim`` (default: the first dim of size 3, as
    PyTorch's torch.cross; torch.linalg.cross uses -1), the operands broadcast."""
    from .layout import broadcast_tensors
    from .shape import stack

    a, b = broadcast_tensors(*promote(input, other))
    if dim is None:
        dim = next((i for i, n in enumerate(a.shape) if n == 3), None)
        if dim is None:
            raise ValueError(f"cross: no dim of size 3 in shape {a.shape}")
    d = dim % a.ndim if -a.ndim <= dim < a.ndim else dim
    if not 0 <= d < a.ndim or a.shape[d] != 3:
        raise ValueError(f"cross: dim {dim} of shape {a.shape} must exist and have size 3")
    lead = (slice(None),) * d
    x = [a[lead + (i,)] for i in range(3)]
    y = [b[lead + (i,)] for i in range(3)]
    return stack([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2],
                  x[0] * y[1] - x[1] * y[0]], d)


def dist(input, other, p=2):
    """The p-norm of ``input - other`` (broadcast)."""
    from .scan import vector_norm

    return vector_norm(input - other, ord=p)
