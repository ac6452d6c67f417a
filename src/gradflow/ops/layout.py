"""PyTorch's layout ops on top of reshape, broadcast_to, indexing and concatenate: expand,
repeat, repeat_interleave, tile, chunk, unbind, narrow, flip, roll, tril, triu, diag,
diagonal, meshgrid, clone, contiguous, ravel, broadcast_tensors, atleast_Nd, tensor_split, diff,
take. Written with differentiable ops, so their gradients (to
any order) come from those ops', on every backend."""

import numbers

import numpy as np

from .. import tensor as _tensor
from ..autograd.function import Function
from ._util import check_range, normalize_axis, normalize_dims, torch_kwargs
from .shape import GetItem, IndexAdd, broadcast_to, concatenate, reshape, split


def _sizes(sizes):
    if len(sizes) == 1 and not isinstance(sizes[0], numbers.Integral):
        sizes = tuple(sizes[0])
    return tuple(int(s) for s in sizes)


def expand(input, *sizes):
    """The tensor broadcast to ``sizes`` (a view); -1 keeps a dim's size."""
    sizes = _sizes(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes given for a tensor of shape {input.shape}")
    shape = tuple(input.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    if any(s < 0 for s in shape):
        raise ValueError(f"expand: -1 is not allowed for a new leading dim, got sizes {sizes}")
    return broadcast_to(input, shape)


def expand_as(input, other):
    """``expand(other.shape)``."""
    return broadcast_to(input, tuple(other.shape))


def repeat(input, *sizes):
    """The tensor tiled ``sizes[i]`` times along each dim (numpy's tile; PyTorch's repeat)."""
    sizes = _sizes(sizes)
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeats given for a tensor of {input.ndim} dims")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    # (1, n0, 1, n1, ...) broadcast to (r0, n0, r1, n1, ...) and merged pairwise.
    x = reshape(input, tuple(v for n in shape for v in (1, n)))
    x = broadcast_to(x, tuple(v for r, n in zip(sizes, shape) for v in (r, n)))
    return reshape(x, tuple(r * n for r, n in zip(sizes, shape)))


def tile(input, dims):
    """``repeat`` with ones prepended to ``dims`` when it is shorter than the tensor's dims."""
    dims = tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


@torch_kwargs
def repeat_interleave(input, repeats, dim=None, *, output_size=None):
    """Each element repeated ``repeats`` times (an int, or a tensor of counts per element) along
    ``dim`` (of the flattened tensor when None)."""
    if dim is None:
        input, dim = input.reshape(-1), 0
    d = normalize_axis(dim, input.ndim, "repeat_interleave")
    if isinstance(repeats, numbers.Integral):
        x = input.unsqueeze(d + 1)
        shape = list(x.shape)
        shape[d + 1] = int(repeats)
        out_shape = list(input.shape)
        out_shape[d] *= int(repeats)
        return reshape(broadcast_to(x, tuple(shape)), tuple(out_shape))
    counts = repeats._host() if isinstance(repeats, _tensor.Tensor) else np.asarray(repeats)
    idx = np.repeat(np.arange(input.shape[d]), counts)
    return GetItem.apply(input, index=(slice(None),) * d + (input._be.to_device_array(idx),))


@torch_kwargs
def chunk(input, chunks, dim=0):
    """The tensor split into ``chunks`` pieces of ceil(n / chunks) along ``dim`` (maybe fewer)."""
    d = normalize_axis(dim, input.ndim, "chunk")
    if chunks < 1:
        raise ValueError(f"chunk: chunks must be >= 1, got {chunks}")
    n = input.shape[d]
    return split(input, max(1, -(-n // chunks)), d)


@torch_kwargs
def unbind(input, dim=0):
    """The slices along ``dim``, that dim removed, as a tuple."""
    d = normalize_axis(dim, input.ndim, "unbind")
    return tuple(input[(slice(None),) * d + (i,)] for i in range(input.shape[d]))


@torch_kwargs
def narrow(input, dim, start, length):
    """``length`` entries of dim ``dim`` from ``start`` (a view)."""
    d = normalize_axis(dim, input.ndim, "narrow")
    n = input.shape[d]
    start = int(start) + (n if start < 0 else 0)
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise IndexError(f"narrow: start {start} and length {length} do not fit dim {d} of size {n}")
    return input[(slice(None),) * d + (slice(start, start + int(length)),)]


@torch_kwargs
def flip(input, dims):
    """The tensor with the order of the entries along ``dims`` reversed."""
    axes = normalize_dims(dims, input.ndim, "flip")
    return input[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(input.ndim))]


def fliplr(input):
    """``flip(input, 1)``."""
    return flip(input, 1)


def flipud(input):
    """``flip(input, 0)``."""
    return flip(input, 0)


class Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return ctx.be.xp.roll(x, shifts, dims)

    @staticmethod
    def backward(ctx, g):
        return (Roll.apply(g, shifts=tuple(-s for s in ctx.shifts), dims=ctx.dims),)


@torch_kwargs
def roll(input, shifts, dims=None):
    """Entries shifted cyclically by ``shifts`` along ``dims`` (the flattened tensor if None)."""
    if dims is None:
        return roll(input.reshape(-1), shifts, 0).reshape(input.shape)
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
    dims = tuple(normalize_axis(d, input.ndim, "roll") for d in dims)
    return Roll.apply(input, shifts=tuple(int(s) for s in shifts), dims=dims)


def _triangle(input, diagonal, lower):
    from .arith import where

    if input.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: needs at least 2 dims, got {input.shape}")
    xp = input._be.xp
    n, m = input.shape[-2:]
    keep = xp.tri(n, m, diagonal, dtype=bool) if lower else ~xp.tri(n, m, diagonal - 1, dtype=bool)
    mask = _tensor.Tensor._make(keep, input._device)
    return where(mask, input, _tensor.zeros((), dtype=input.dtype, device=input.device))


def tril(input, diagonal=0):
    """The lower triangle of the last two dims (entries above diagonal ``diagonal`` zeroed)."""
    return _triangle(input, int(diagonal), True)


def triu(input, diagonal=0):
    """The upper triangle of the last two dims (entries below diagonal ``diagonal`` zeroed)."""
    return _triangle(input, int(diagonal), False)


def _diag_index(n, m, offset, xp):
    rows = xp.arange(max(0, -offset), min(n, m - offset))
    return rows, rows + offset


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` of dims ``dim1``/``dim2``, as a new last dim (a copy)."""
    from .shape import movedim

    a, b = normalize_axis(dim1, input.ndim, "diagonal"), normalize_axis(dim2, input.ndim, "diagonal")
    if a == b:
        raise ValueError("diagonal: dim1 and dim2 must differ")
    x = movedim(input, (a, b), (-2, -1))
    rows, cols = _diag_index(x.shape[-2], x.shape[-1], int(offset), input._be.xp)
    return GetItem.apply(x, index=(Ellipsis, rows, cols))


_diagonal = diagonal  # diag's parameter is named diagonal, as PyTorch's


def diag(input, diagonal=0):
    """For a vector, the square matrix with it on diagonal ``diagonal``; for a matrix, that
    diagonal as a vector."""
    k = int(diagonal)
    if input.ndim == 1:
        n = input.shape[0] + abs(k)
        rows, cols = _diag_index(n, n, k, input._be.xp)
        return IndexAdd.apply(input, shape=(n, n), index=(rows, cols))
    if input.ndim == 2:
        return _diagonal(input, k)
    raise ValueError(f"diag: needs a 1-d or 2-d tensor, got shape {input.shape}")


def diag_embed(input, offset=0):
    """A batch of matrices with the last dim of ``input`` on their diagonal ``offset``."""
    n = input.shape[-1] + abs(int(offset))
    rows, cols = _diag_index(n, n, int(offset), input._be.xp)
    return IndexAdd.apply(input, shape=tuple(input.shape[:-1]) + (n, n), index=(Ellipsis, rows, cols))


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors: ``indexing="ij"`` (matrix, the default) or "xy"."""
    if len(tensors) == 1 and not isinstance(tensors[0], _tensor.Tensor):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    ts = list(tensors)
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.numel() for t in ts)
    out = [broadcast_to(reshape(t, tuple(-1 if i == j else 1 for j in range(len(ts)))), shape)
           for i, t in enumerate(ts)]
    if swap:  # the grids of (y, x, ...) in ij order are those of (x, y, ...) in xy order
        out[0], out[1] = out[1], out[0]
    return tuple(out)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return (g,)


def clone(input, *, memory_format=None):
    """A copy with its own memory (differentiable: the gradient passes through)."""
    return Clone.apply(input)


def contiguous(input, memory_format=None):
    """The tensor in row-major layout: itself if it already is, else a copy."""
    flags = getattr(input.array, "flags", None)
    if flags is not None and flags.c_contiguous:
        return input
    return clone(input)


def column_stack(tensors):
    """1-D tensors as columns (2-D ones as they are), joined along dim 1."""
    return concatenate([t.reshape(-1, 1) if t.ndim <= 1 else t for t in tensors], 1)


def hstack(tensors):
    """Joined along dim 1 (dim 0 for 1-D tensors)."""
    tensors = list(tensors)
    return concatenate(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Joined along dim 0, 1-D tensors as rows."""
    return concatenate([t.reshape(1, -1) if t.ndim == 1 else t for t in tensors], 0)


def ravel(input):
    """The tensor flattened to 1-D."""
    return reshape(input, -1)


def broadcast_shapes(*shapes):
    """The shape that ``shapes`` broadcast to (a gf.Size); ValueError if they do not."""
    return _tensor.Size(np.broadcast_shapes(*[(s,) if isinstance(s, numbers.Integral) else tuple(s)
                                              for s in shapes]))


def broadcast_tensors(*tensors):
    """The tensors broadcast to their common shape (views)."""
    shape = tuple(broadcast_shapes(*[t.shape for t in tensors]))
    return tuple(t if tuple(t.shape) == shape else broadcast_to(t, shape) for t in tensors)


def _atleast(tensors, n):
    """Each tensor reshaped to at least ``n`` dims as PyTorch does: () -> (1,) * n, (a,) ->
    (1, a) or (1, a, 1), (a, b) -> (a, b, 1). One tensor gives a tensor; several, or a
    sequence of them, give a tuple."""
    as_tuple = len(tensors) == 1 and isinstance(tensors[0], (list, tuple))
    if as_tuple:
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        shape = tuple(t.shape)
        if len(shape) < n:
            t = reshape(t, {0: (1,) * n, 1: (1,) + shape + (1,) * (n - 2), 2: shape + (1,)}[len(shape)])
        out.append(t)
    return out[0] if len(out) == 1 and not as_tuple else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (a 0-d one becomes shape (1,))."""
    return _atleast(tensors, 1)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims ((a,) becomes (1, a))."""
    return _atleast(tensors, 2)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims ((a,) becomes (1, a, 1), (a, b) becomes (a, b, 1))."""
    return _atleast(tensors, 3)


@torch_kwargs
def tensor_split(input, indices_or_sections, dim=0):
    """Views of ``input`` along ``dim``: ``n`` parts as equal as can be (the first ``size % n``
    one longer), or split before each index of a list."""
    d = normalize_axis(dim, input.ndim, "tensor_split")
    size = input.shape[d]
    if isinstance(indices_or_sections, numbers.Integral):
        n = int(indices_or_sections)
        if n <= 0:
            raise ValueError(f"tensor_split: the number of sections must be positive, got {n}")
        lengths = [size // n + (1 if i < size % n else 0) for i in range(n)]
        bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    else:
        cuts = [min(max(int(i) if i >= 0 else int(i) + size, 0), size) for i in indices_or_sections]
        bounds = [0] + cuts + [size]
    lead = (slice(None),) * d
    return tuple(input[lead + (slice(a, max(a, b)),)] for a, b in zip(bounds[:-1], bounds[1:]))


@torch_kwargs
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim`` (``prepend``/``append`` joined on first)."""
    d = normalize_axis(dim, input.ndim, "diff")
    parts = [t for t in (prepend, input, append) if t is not None]
    x = concatenate(parts, d) if len(parts) > 1 else input
    lead = (slice(None),) * d
    for _ in range(int(n)):
        x = x[lead + (slice(1, None),)] - x[lead + (slice(None, -1),)]
    return x


def take(input, index):
    """``input`` read as 1-D at ``index`` (any shape; negative indices count from the end)."""
    from .index import _index_tensor

    index = _index_tensor(index, input, "take")
    n = input.numel()
    check_range(index.array, -n, n, f"take: index out of range for a tensor of {n} elements")
    return GetItem.apply(reshape(input, -1), index=index.array)


def kron(input, other):
    """The Kronecker product (the shapes multiply dim by dim, the shorter padded with 1s in
    front)."""
    n = max(input.ndim, other.ndim)
    a = reshape(input, (1,) * (n - input.ndim) + tuple(input.shape))
    b = reshape(other, (1,) * (n - other.ndim) + tuple(other.shape))
    shape = tuple(x * y for x, y in zip(a.shape, b.shape))
    spread_a = reshape(a, tuple(s for d in a.shape for s in (d, 1)))
    spread_b = reshape(b, tuple(s for d in b.shape for s in (1, d)))
    return reshape(spread_a * spread_b, shape)


def rot90(input, k=1, dims=(0, 1)):
    """Rotates by 90 degrees ``k`` times in the plane of ``dims``, from the first towards the
    second."""
    if len(dims) != 2:
        raise ValueError(f"rot90: dims must name two dims, got {dims}")
    d0, d1 = (normalize_axis(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90: the two dims must differ, got {dims}")
    k %= 4
    if k == 0:
        return input
    if k == 2:
        return flip(input, (d0, d1))
    from .shape import transpose

    return transpose(flip(input, d1), d0, d1) if k == 1 else flip(transpose(input, d0, d1), d1)


def _split_evenly(input, sections, dim, op):
    if isinstance(sections, numbers.Integral) and input.shape[dim] % sections:
        raise ValueError(f"{op}: dim {dim} of size {input.shape[dim]} is not divisible by {sections}")
    return tensor_split(input, sections, dim)


def hsplit(input, indices_or_sections):
    """tensor_split along dim 1 (dim 0 of a 1-D tensor); a number of sections must divide it."""
    if input.ndim == 0:
        raise ValueError("hsplit: needs a tensor with at least 1 dim")
    return _split_evenly(input, indices_or_sections, 1 if input.ndim > 1 else 0, "hsplit")


def vsplit(input, indices_or_sections):
    """tensor_split along dim 0 of a tensor with at least 2 dims; a number of sections must
    divide it."""
    if input.ndim < 2:
        raise ValueError(f"vsplit: needs a tensor with at least 2 dims, got shape {input.shape}")
    return _split_evenly(input, indices_or_sections, 0, "vsplit")


def dstack(tensors):
    """The tensors (made at least 3-D) joined along dim 2."""
    return concatenate([atleast_3d(t) for t in tensors], 2)


def block_diag(*tensors):
    """The tensors (0-d as 1x1, 1-D as one row) as blocks down the diagonal of a zero matrix."""
    from ._util import result_dtype

    blocks = [reshape(t, (1, 1)) if t.ndim == 0 else reshape(t, (1, -1)) if t.ndim == 1 else t
              for t in tensors]
    for t in blocks:
        if t.ndim != 2:
            raise ValueError(f"block_diag: expected tensors of at most 2 dims, got shape {t.shape}")
    dtype = blocks[0].dtype
    for t in blocks[1:]:
        dtype = result_dtype(_tensor.zeros(1, dtype=dtype), t)
    width = sum(t.shape[1] for t in blocks)
    rows, left = [], 0
    for t in blocks:
        r, c = t.shape
        parts = [_tensor.zeros(r, left, dtype=dtype, device=t.device), t.to(dtype),
                 _tensor.zeros(r, width - left - c, dtype=dtype, device=t.device)]
        rows.append(concatenate(parts, 1))
        left += c
    return concatenate(rows, 0)


def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, as rows (a single tensor is
    returned as it is)."""
    from .shape import stack

    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([reshape(g, -1) for g in grids], 1)
