"""Shape and layout ops: reshape, transpose, broadcast_to, sum_to, concatenate, stack, split,
indexing and its scatter-add gradient, dtype casts. Where the backend returns a view, the output
shares its base's version counter, so in-place writes through it are seen by saved tensors."""

import numbers

import numpy as np

from ..autograd import views as _views
from ..autograd.function import Function, NonDifferentiable
from ._util import normalize_axis, normalize_dims


class Reshape(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        out = ctx.be.reshape(x, shape)
        # A view unless the layout forced a copy (then its base is that copy, not x's memory).
        ctx.view = out.base is not None and (out.base is x or out.base is x.base)
        return out

    @staticmethod
    def backward(ctx, g):
        return (g.reshape(ctx.in_shape),)


class Transpose(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return (g.transpose(tuple(np.argsort(ctx.axes))),)


class BroadcastTo(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        return ctx.be.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return (g,)  # the engine sums it back to the input's shape


class SumTo(Function):
    """Sum a broadcast gradient back to ``shape``: the inverse of broadcast_to."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        lead = len(x.shape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
        out = ctx.be.sum(x, axes, True) if axes else x
        return ctx.be.reshape(out, shape)

    @staticmethod
    def backward(ctx, g):
        return (g.broadcast_to(ctx.in_shape),)


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        return ctx.be.astype(x, dtype)

    @staticmethod
    def backward(ctx, g):
        return (g,)  # the engine casts it back to the input's dtype


class DiscreteCast(NonDifferentiable):
    """A cast to an integer or bool dtype: it cuts the graph, as in PyTorch."""

    forward = Cast.forward


def cast(x, dtype):
    return (Cast if dtype.kind == "f" else DiscreteCast).apply(x, dtype=dtype)


class Concatenate(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([0] + [x.shape[axis] for x in xs])
        return ctx.be.xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        b = ctx.bounds
        return tuple(g[lead + (slice(int(b[i]), int(b[i + 1])),)] for i in range(len(b) - 1))


class GetItem(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, index):
        ctx.index, ctx.in_shape = index, x.shape
        out = ctx.be.getitem(x, index)
        if isinstance(out, np.generic):  # numpy gives a scalar for a full integer index
            out = np.asarray(out)
            ctx.view = False
        else:
            ctx.view = _is_basic(index)  # advanced indexing copies
        return out

    @staticmethod
    def backward(ctx, g):
        return (IndexAdd.apply(g, shape=ctx.in_shape, index=ctx.index),)


class IndexAdd(Function):
    """zeros(shape) with g scattered in at ``index``; repeated indices accumulate."""

    @staticmethod
    def forward(ctx, g, shape, index):
        ctx.index = index
        if _is_basic(index):  # no repeats possible: plain assignment
            out = ctx.be.xp.zeros(shape, g.dtype)
            ctx.be.setitem(out, index, g)
            return out
        return ctx.be.index_add(shape, g.dtype, index, g)

    @staticmethod
    def backward(ctx, gg):
        return (GetItem.apply(gg, index=ctx.index),)


class SetItem(Function):
    """``x`` with ``x[index] = v``, out of place (the engine's in-place machinery writes it
    back); the gradient of x is zero where it was overwritten."""

    @staticmethod
    def forward(ctx, x, v, index):
        ctx.index = index
        out = ctx.be.copy(x)
        ctx.be.setitem(out, index, v)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * _mask_out(g, ctx.index), GetItem.apply(g, index=ctx.index)


def _mask_out(like, index):
    from ..tensor import Tensor

    m = like._be.xp.ones(like.shape, like.dtype)
    like._be.setitem(m, index, 0)
    return Tensor._make(m, like._device)


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (numbers.Integral, slice)) or i is None or i is Ellipsis for i in items)


# ---- functional forms -------------------------------------------------------------------------
def _tracked(out, x, op, params):
    """``out``, made by ``op.apply(x, **params)``: every view op's functional form passes its
    result through here, so that a view is tracked (see autograd.views) and an in-place change
    to its base rebases it."""
    if out._base is not None:
        _views.track(out, x, op, params)
    return out


def getitem(x, index):
    return _tracked(GetItem.apply(x, index=index), x, GetItem, {"index": index})


def sum_to(x, shape):
    return SumTo.apply(x, shape=tuple(shape))


def _resolve_shape(shape, size, from_shape):
    unknown = [i for i, n in enumerate(shape) if n == -1]
    known = 1
    for n in shape:
        if n != -1:
            known *= n
    bad = len(unknown) > 1 or any(n < -1 for n in shape)
    if not bad and unknown:
        bad = known == 0 or size % known != 0
        if not bad:
            shape = shape[:unknown[0]] + (size // known,) + shape[unknown[0] + 1:]
    elif not bad:
        bad = known != size
    if bad:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {from_shape} into {shape}")
    return shape


def reshape(x, *shape):
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
    for s in shape:
        if s.__class__ is not int and (not isinstance(s, numbers.Integral) or isinstance(s, bool)):
            raise TypeError(f"reshape: the shape must be ints, got {s!r} ({type(s).__name__}) "
                            f"in {tuple(shape)!r}")
    shape = _resolve_shape(tuple(int(s) for s in shape), x.size, x.shape)
    if shape == x.shape:
        return x
    return _tracked(Reshape.apply(x, shape=shape), x, Reshape, {"shape": shape})


def transpose(x, *axes):
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    elif len(axes) == 1 and not isinstance(axes[0], numbers.Integral):
        axes = tuple(axes[0])
    if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of a {x.ndim}-d tensor's axes")
    return _transpose(x, tuple(a % x.ndim for a in axes))


def _transpose(x, axes):
    return _tracked(Transpose.apply(x, axes=axes), x, Transpose, {"axes": axes})


def swapaxes(x, a, b):
    axes = list(range(x.ndim))
    a, b = normalize_axis(a, x.ndim, "swapaxes"), normalize_axis(b, x.ndim, "swapaxes")
    axes[a], axes[b] = axes[b], axes[a]
    return _transpose(x, tuple(axes))


def broadcast_to(x, shape):
    shape = tuple(shape)
    try:
        np.broadcast_shapes(x.shape, shape)
        if len(shape) < x.ndim or np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    if shape == x.shape:
        return x
    return _tracked(BroadcastTo.apply(x, shape=shape), x, BroadcastTo, {"shape": shape})


def flatten(x, start_axis=0, end_axis=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_axis(start_axis, x.ndim, "flatten")
    e = normalize_axis(end_axis, x.ndim, "flatten")
    shape = x.shape[:s] + (-1,) + x.shape[e + 1:]
    return reshape(x, shape)


def squeeze(x, axis=None):
    if axis is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_dims(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return reshape(x, shape)


def unsqueeze(x, axis):
    a = normalize_axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


def concatenate(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"concatenate: zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
    dt = np.result_type(*[t.dtype for t in tensors])
    tensors = [t if t.dtype == dt else t.to(dt) for t in tensors]
    ax = normalize_axis(axis, first.ndim, "concatenate")
    for t in tensors:
        if t.ndim != first.ndim or any(
                t.shape[i] != first.shape[i] for i in range(first.ndim) if i != ax):
            raise ValueError(
                f"concatenate: shapes {[tt.shape for tt in tensors]} differ outside axis {ax}")
    return Concatenate.apply(*tensors, axis=ax)


def stack(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    a = normalize_axis(axis, tensors[0].ndim + 1, "stack")
    return concatenate([unsqueeze(t, a) for t in tensors], a)


def split(x, split_size_or_sections, axis=0):
    """PyTorch's split: an int is the size of each piece (the last may be smaller); a list gives
    each piece's size."""
    if x.ndim == 0:
        raise RuntimeError("split: expects at least a 1-dimensional tensor, got a 0-d one")
    ax = normalize_axis(axis, x.ndim, "split")
    n = x.shape[ax]
    if isinstance(split_size_or_sections, numbers.Integral):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: size must be positive, got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes):
            raise ValueError(f"split: section sizes must be non-negative, got {sizes}")
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of axis {ax}")
    out, start = [], 0
    lead = (slice(None),) * ax
    for s in sizes:
        out.append(x[lead + (slice(start, start + s),)])
        start += s
    return tuple(out)
