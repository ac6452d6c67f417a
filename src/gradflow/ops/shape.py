"""Shape and layout ops: reshape, transpose, broadcast_to, sum_to, concatenate, stack, split,
indexing and its scatter-add gradient, dtype casts. Where the backend returns a view, the output
shares its base's version counter, so in-place writes through it are seen by saved tensors."""

import numbers

import numpy as np

from .. import dtypes as _dtypes
from .._jit import trace as _jit_trace
from ..autograd import views as _views
from ..autograd.function import Function, NonDifferentiable
from ._util import normalize_axis, normalize_dims, torch_kwargs


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


def _transpose_array(x, axes):
    return x.transpose(axes)


class Transpose(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return _jit_trace.call(_transpose_array, x, axes, live=False)  # (one step of gf.jit's record)

    @staticmethod
    def backward(ctx, g):
        return (Transpose.apply(g, axes=tuple(int(i) for i in np.argsort(ctx.axes))),)


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
    lowp_native = True  # (to and from bfloat16 too: astype rounds to nearest even)

    @staticmethod
    def forward(ctx, x, dtype):
        if _dtypes.via_float32(x.dtype, dtype):
            x = ctx.be.astype(x, _dtypes.float32)
        return ctx.be.astype(x, dtype)

    @staticmethod
    def backward(ctx, g):
        return (g,)  # the engine casts it back to the input's dtype


class DiscreteCast(NonDifferentiable):
    """A cast to an integer or bool dtype: it cuts the graph, as in PyTorch."""

    forward = Cast.forward


def cast(x, dtype):
    return (Cast if _dtypes.is_float(dtype) else DiscreteCast).apply(x, dtype=dtype)


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
    shape = _resolve_shape(tuple(int(s) for s in shape), x.array.size, x.shape)
    if shape == x.shape:
        return x
    return _tracked(Reshape.apply(x, shape=shape), x, Reshape, {"shape": shape})


def permute(input, *dims):
    """The tensor with its dims reordered: output dim i is input dim ``dims[i]``."""
    if len(dims) == 1 and not isinstance(dims[0], numbers.Integral):
        dims = tuple(dims[0])
    n = input.ndim
    perm = tuple(normalize_axis(d, n, "permute") for d in dims)
    if len(perm) != n or sorted(perm) != list(range(n)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {n} dims of a tensor "
                         f"of shape {input.shape}")
    if perm == tuple(range(n)):
        return input
    return _transpose(input, perm)


def _transpose(x, axes):
    return _tracked(Transpose.apply(x, axes=axes), x, Transpose, {"axes": axes})


@torch_kwargs
def transpose(input, dim0, dim1):
    """The tensor with dims ``dim0`` and ``dim1`` swapped (a view); ``permute`` reorders all of
    them and ``.T`` reverses them. A 0-d tensor accepts dims 0 and -1 (and is returned)."""
    n = input.ndim
    a, b = normalize_axis(dim0, n, "transpose"), normalize_axis(dim1, n, "transpose")
    if a == b:
        return input
    perm = list(range(n))
    perm[a], perm[b] = perm[b], perm[a]
    return _transpose(input, tuple(perm))


swapaxes = swapdims = transpose


def t(input):
    """The transpose of a tensor of at most 2 dims (0-d and 1-d tensors come back unchanged)."""
    if input.ndim > 2:
        raise ValueError(f"t() expects a tensor of at most 2 dims, got shape {input.shape}: use "
                         "transpose(dim0, dim1) or permute(...)")
    return transpose(input, 0, -1) if input.ndim == 2 else input


def reverse_dims(input):
    """Every dim in reverse order (``.T``)."""
    return permute(input, tuple(reversed(range(input.ndim))))


def matrix_transpose(input):
    """The last two dims swapped (``.mT``), for a tensor of at least 2 dims."""
    if input.ndim < 2:
        raise ValueError(f"mT needs a tensor of at least 2 dims, got shape {input.shape}")
    return transpose(input, -2, -1)


@torch_kwargs
def movedim(input, source, destination):
    """Moves dims ``source`` (an int or tuple) to the positions ``destination``."""
    src = (source,) if isinstance(source, numbers.Integral) else tuple(source)
    dst = (destination,) if isinstance(destination, numbers.Integral) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} differ in length")
    n = input.ndim
    src = [normalize_axis(d, n, "movedim") for d in src]
    dst = [normalize_axis(d, n, "movedim") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"movedim: repeated dim in {source} or {destination}")
    rest = iter(d for d in range(n) if d not in src)
    where = dict(zip(dst, src))
    return permute(input, tuple(where[i] if i in where else next(rest) for i in range(n)))


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


@torch_kwargs
def flatten(input, start_dim=0, end_dim=-1):
    """Dims ``start_dim`` to ``end_dim`` merged into one (a 0-d tensor becomes 1-d)."""
    x = input
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_axis(start_dim, x.ndim, "flatten")
    e = normalize_axis(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (-1,) + x.shape[e + 1:]
    return reshape(x, shape)


@torch_kwargs
def unflatten(input, dim, sizes):
    """Dim ``dim`` split into ``sizes`` (one of them may be -1)."""
    d = normalize_axis(dim, input.ndim, "unflatten")
    return reshape(input, input.shape[:d] + tuple(sizes) + input.shape[d + 1:])


@torch_kwargs
def squeeze(input, dim=None):
    """Removes dims of size 1: all of them, or those among ``dim`` (an int or tuple); as in
    PyTorch, a named dim whose size is not 1 is left as it is."""
    x = input
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_dims(dim, x.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes or n != 1)
    return reshape(x, shape)


@torch_kwargs
def unsqueeze(input, dim):
    """A dim of size 1 inserted at position ``dim``."""
    a = normalize_axis(dim, input.ndim + 1, "unsqueeze")
    return reshape(input, input.shape[:a] + (1,) + input.shape[a:])


@torch_kwargs
def concatenate(tensors, dim=0):
    """The tensors joined along an existing dim ``dim`` (dtypes promoted as for ``+``)."""
    axis = dim
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


cat = concat = concatenate


@torch_kwargs
def stack(tensors, dim=0):
    """The tensors (all of one shape) joined along a new dim ``dim``."""
    axis = dim
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    a = normalize_axis(axis, tensors[0].ndim + 1, "stack")
    return concatenate([unsqueeze(t, a) for t in tensors], a)


@torch_kwargs
def split(tensor, split_size_or_sections, dim=0):
    """PyTorch's split: an int is the size of each piece (the last may be smaller); a list gives
    each piece's size."""
    x, axis = tensor, dim
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
