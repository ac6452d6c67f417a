"""Indexing by index tensors along one dim: gather, take_along_dim, index_select, scatter,
scatter_add, scatter_reduce, index_add, index_fill, index_copy, masked_fill, masked_select,
nonzero.

Each is written as an advanced index into the tensor (GetItem, whose gradient scatter-adds back,
and IndexAdd / SetItem for the writes), so they are differentiable to any order on every
backend with no kernels of their own."""

import numbers

from .. import tensor as _tensor
from ..autograd import grad_mode as _grad_mode
from ..autograd.function import Function
from ..autograd.lowp import in_float32
from ._util import as_tensor, normalize_axis, torch_kwargs
from .shape import GetItem, IndexAdd, SetItem, _mask_out


def _index_tensor(index, like, op):
    if not isinstance(index, _tensor.Tensor):
        index = _tensor.tensor(index, device=like.device)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype}")
    if index._device != like._device:
        raise RuntimeError(f"{op}: index is on {index._device} but the tensor is on {like._device}")
    return index


def _along(input, dim, index, op):
    """The advanced index that picks ``input[..., index[i, j, ...], ...]`` at dim ``dim``, with
    every other dim running over index's own extent (gather's rule)."""
    index = _index_tensor(index, input, op)
    if index.ndim != input.ndim:
        raise ValueError(f"{op}: index has {index.ndim} dims but the tensor has {input.ndim} "
                         f"(shapes {index.shape} and {input.shape})")
    d = normalize_axis(dim, input.ndim, op)
    for i, (n, m) in enumerate(zip(index.shape, input.shape)):
        if i != d and n > m:
            raise ValueError(f"{op}: index shape {index.shape} exceeds the tensor's shape "
                             f"{input.shape} in dim {i}")
    xp = input._be.xp
    parts = []
    for i, n in enumerate(index.shape):
        if i == d:
            parts.append(index.array)
        else:
            # (xp's functions, not array methods: a gf.jit record sees them)
            parts.append(xp.reshape(xp.arange(n), (1,) * i + (n,) + (1,) * (index.ndim - i - 1)))
    return tuple(parts)


@torch_kwargs
def gather(input, dim, index):
    """``out[i][j] = input[index[i][j]][j]`` for dim 0 (and likewise for other dims)."""
    if input.ndim == 0:
        return input
    return GetItem.apply(input, index=_along(input, dim, index, "gather"))


@torch_kwargs
def take_along_dim(input, indices, dim=None):
    """``gather`` with index broadcast against the tensor; dim None indexes the flattened one."""
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    indices = _index_tensor(indices, input, "take_along_dim")
    d = normalize_axis(dim, input.ndim, "take_along_dim")
    shape = [max(a, b) for a, b in zip(input.shape, indices.shape)]
    shape[d] = indices.shape[d]
    return gather(input, d, indices.broadcast_to(tuple(shape)))


@torch_kwargs
def index_select(input, dim, index):
    """The entries of ``input`` at positions ``index`` (1-D) along ``dim``."""
    index = _index_tensor(index, input, "index_select")
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {index.shape}")
    d = normalize_axis(dim, input.ndim, "index_select")
    return GetItem.apply(input, index=(slice(None),) * d + (index._be.reshape(index.array, -1),))


def _src(src, like, op):
    src = as_tensor(src, like)
    return src if src.dtype == like.dtype else src.to(like.dtype)


@torch_kwargs
def scatter(input, dim, index, src=None, value=None, reduce=None):
    """A copy of ``input`` with ``out[index[i][j]][j] = src[i][j]`` (dim 0); ``src`` may be a
    number (or pass ``value=``). ``reduce="add"`` adds instead (as scatter_add)."""
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: give src (a tensor or a number) or value")
    if reduce == "add":
        return scatter_add(input, dim, index, src)
    if reduce is not None:
        raise ValueError(f"scatter: reduce must be None or 'add', got {reduce!r}")
    ix = _along(input, dim, index, "scatter")
    src = _src(src, input, "scatter")
    if src.ndim:
        src = src[tuple(slice(0, n) for n in index.shape)]
    return SetItem.apply(input, src.broadcast_to(index.shape), index=ix)


@torch_kwargs
def scatter_add(input, dim, index, src):
    """A copy of ``input`` with ``src[i][j]`` added at ``[index[i][j]][j]`` (dim 0); repeated
    indices accumulate."""
    ix = _along(input, dim, index, "scatter_add")
    src = _src(src, input, "scatter_add")[tuple(slice(0, n) for n in index.shape)]
    return input + IndexAdd.apply(src, shape=tuple(input.shape), index=ix)


@torch_kwargs
@in_float32
def index_add(input, dim, index, source, alpha=1):
    """A copy of ``input`` with ``alpha * source`` added at positions ``index`` along ``dim``."""
    index = _index_tensor(index, input, "index_add")
    d = normalize_axis(dim, input.ndim, "index_add")
    source = _src(source, input, "index_add")
    if alpha != 1:
        source = source * alpha
    ix = (slice(None),) * d + (index._be.reshape(index.array, -1),)
    return input + IndexAdd.apply(source, shape=tuple(input.shape), index=ix)


@torch_kwargs
def index_fill(input, dim, index, value):
    """A copy of ``input`` with ``value`` (a number or 0-d tensor) at positions ``index`` (1-D)
    along ``dim``."""
    index = _index_tensor(index, input, "index_fill")
    d = normalize_axis(dim, input.ndim, "index_fill")
    if isinstance(value, _tensor.Tensor) and value.ndim:
        raise ValueError(f"index_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
    ix = (slice(None),) * d + (index._be.reshape(index.array, -1),)
    value = _src(value, input, "index_fill")
    shape = tuple(input.shape[:d]) + (index.numel(),) + tuple(input.shape[d + 1:])
    return SetItem.apply(input, value.broadcast_to(shape), index=ix)


@torch_kwargs
def index_copy(input, dim, index, source):
    """A copy of ``input`` with the slices of ``source`` along ``dim`` written at positions
    ``index`` (1-D, one per slice)."""
    index = _index_tensor(index, input, "index_copy")
    d = normalize_axis(dim, input.ndim, "index_copy")
    source = _src(source, input, "index_copy")
    expect = tuple(input.shape[:d]) + (index.numel(),) + tuple(input.shape[d + 1:])
    if tuple(source.shape) != expect:
        raise ValueError(f"index_copy: source has shape {source.shape}, expected {expect} "
                         f"({index.numel()} indices along dim {d} of {input.shape})")
    ix = (slice(None),) * d + (index._be.reshape(index.array, -1),)
    return SetItem.apply(input, source, index=ix)


def _mask(mask, like, op):
    if not isinstance(mask, _tensor.Tensor):
        mask = _tensor.tensor(mask, device=like.device)
    if mask.dtype.kind != "b":
        raise TypeError(f"{op}: mask must be a bool tensor, got {mask.dtype}")
    return mask


def masked_fill(input, mask, value):
    """A copy of ``input`` with ``value`` (a number or 0-d tensor) where ``mask`` is True."""
    from .arith import where

    mask = _mask(mask, input, "masked_fill")
    if isinstance(value, _tensor.Tensor) and value.ndim:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
    value = _src(value, input, "masked_fill")
    out = where(mask, value, input)
    return out if out.shape == input.shape else out.broadcast_to(input.shape)


def masked_select(input, mask):
    """The elements of ``input`` where ``mask`` (broadcast) is True, as a 1-D tensor."""
    mask = _mask(mask, input, "masked_select")
    shape = tuple(_broadcast_shape(input.shape, mask.shape))
    return input.broadcast_to(shape)[mask.broadcast_to(shape)]


def _broadcast_shape(a, b):
    import numpy as np

    return np.broadcast_shapes(tuple(a), tuple(b))


def nonzero(input, as_tuple=False):
    """The indices of the nonzero elements: an (n, ndim) int64 tensor, or with as_tuple=True one
    1-D tensor per dim."""
    xp = input._be.xp
    idx = xp.nonzero(input.array if input.ndim else input._be.reshape(input.array, 1))
    if as_tuple:
        return tuple(_tensor.Tensor._make(i.astype("int64"), input._device) for i in idx)
    return _tensor.Tensor._make(xp.stack(idx, axis=1).astype("int64") if idx else
                                xp.zeros((0, 0), "int64"), input._device)


def argwhere(input):
    """``nonzero(input)``."""
    return nonzero(input)


def select(input, dim, index):
    """``input`` at position ``index`` of dim ``dim``, that dim removed."""
    d = normalize_axis(dim, input.ndim, "select")
    if not isinstance(index, numbers.Integral):
        raise TypeError(f"select: index must be an int, got {index!r}")
    return input[(slice(None),) * d + (int(index),)]



class ScatterCombine(Function):
    """``x`` with ``src`` combined in at ``index`` by multiplication, maximum or minimum.

    The gradient is PyTorch's: for amax/amin it is split evenly among the entries equal to the
    result (self counted among them even with include_self=False, as PyTorch counts it); for
    prod it is the product of the other factors, computed without dividing by a zero."""

    @staticmethod
    def forward(ctx, x, src, index, reduce, include_self):
        import numpy as np

        ctx.index, ctx.reduce, ctx.include_self = index, reduce, include_self
        ctx.save_inputs(0, 1)
        ctx.save_output()
        be = ctx.be
        # numpy's ufunc.at is the one unbuffered combine with repeats that every backend shares
        a, s = be.to_numpy(x).copy(), be.to_numpy(src)
        idx = tuple(be.to_numpy(i) if hasattr(i, "shape") else i for i in index)
        ufunc = {"amax": np.maximum, "amin": np.minimum, "prod": np.multiply}[reduce]
        if not include_self:
            hit = np.zeros(a.shape, bool)
            hit[idx] = True
            a[hit] = {"amax": -np.inf, "amin": np.inf, "prod": 1}[reduce] if a.dtype.kind == "f" else \
                {"amax": np.iinfo(a.dtype).min, "amin": np.iinfo(a.dtype).max, "prod": 1}[reduce]
        ufunc.at(a, idx, np.broadcast_to(s, _ix_shape(idx)))
        return be.to_device_array(a)

    @staticmethod
    def backward(ctx, g):
        from .arith import where

        x, s, out = ctx.saved_tensors
        ix, shape = ctx.index, tuple(x.shape)
        one = _tensor.ones((), dtype=x.dtype, device=x.device)
        take = lambda t: GetItem.apply(t, index=ix)  # noqa: E731  (gather at index)
        if ctx.reduce == "prod":
            kept = where(x == 0, one, x)  # self's factor divided out, without dividing by 0
            gx = g * ScatterCombine.apply(kept, s, index=ix, reduce="prod",
                                          include_self=ctx.include_self) / kept
            s_zero = s == 0
            zeros_there = take(IndexAdd.apply(s_zero.to(x.dtype), shape=shape, index=ix))
            single = s_zero & (zeros_there == 1)
            others = ScatterCombine.apply(x, where(single, one, s), index=ix, reduce="prod",
                                          include_self=ctx.include_self)
            gs = where(single, take(g * others), take(g * out) / where(s_zero, one, s))
            if _grad_mode.state.grad_enabled and bool((zeros_there > 1).any()):
                gs = _NoDoubleBackward.apply(gs)
        else:
            x_is = (x == out).to(x.dtype)
            s_is = (s == take(out)).to(x.dtype)
            share = g / (x_is + IndexAdd.apply(s_is, shape=shape, index=ix))
            gx, gs = x_is * share, s_is * take(share)
        if not ctx.include_self:
            gx = gx * _mask_out(gx, ix)
        return gx, gs


class _NoDoubleBackward(Function):
    """Passes a first derivative through; differentiating it again raises (as PyTorch does for
    scatter_reduce's prod when two zeros of src meet at one position)."""

    @staticmethod
    def forward(ctx, g):
        return ctx.be.copy(g)

    @staticmethod
    def backward(ctx, gg):
        raise RuntimeError("scatter_reduce: the double backward of reduce='prod' is not supported "
                           "when more than one zero of src is scattered to the same position")


@torch_kwargs
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """A copy of ``input`` with ``src[i][j]`` combined into ``[index[i][j]][j]`` (dim 0) by
    ``reduce``: "sum", "mean", "prod", "amax" or "amin"; all differentiable (PyTorch's
    gradients; with include_self=False the input's value at a scattered-to position is left out)."""
    from .arith import where

    ix = _along(input, dim, index, "scatter_reduce")
    src = _src(src, input, "scatter_reduce")[tuple(slice(0, n) for n in index.shape)]
    if reduce in ("sum", "mean"):
        added = IndexAdd.apply(src, shape=tuple(input.shape), index=ix)
        xp = input._be.xp
        ones = xp.ones(_ix_shape(ix), input.dtype)
        count = input._be.index_add(tuple(input.shape), input.dtype, ix, ones)
        hit = _tensor.Tensor._make(count > 0, input._device)
        base = input if include_self else where(hit, _tensor.zeros((), dtype=input.dtype, device=input.device), input)
        total = base + added
        if reduce == "sum":
            return total
        n = _tensor.Tensor._make(count + (1 if include_self else 0), input._device)
        n = where(n == 0, _tensor.ones((), dtype=input.dtype, device=input.device), n)
        return where(hit, total / n, input)
    if reduce not in ("prod", "amax", "amin"):
        raise ValueError(f"scatter_reduce: reduce must be sum, prod, mean, amax or amin, got {reduce!r}")
    return ScatterCombine.apply(input, src, index=ix, reduce=reduce, include_self=include_self)


def _ix_shape(ix):
    import numpy as np

    return np.broadcast_shapes(*[tuple(i.shape) for i in ix])
