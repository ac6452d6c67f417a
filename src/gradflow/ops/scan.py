"""PyTorch's other reductions, scans and orderings: prod, all, any, count_nonzero, norm,
cumsum, cumprod, logcumsumexp, cummax, cummin, sort, argsort, topk, kthvalue, median, mode,
unique, unique_consecutive, nansum, nanmean, isin, searchsorted, bucketize, bincount.

Orderings and selections compute indices without a gradient and pick the values with
``take_along_dim``, so the gradient goes to the elements picked, as in PyTorch."""

import numpy as np

from .. import dtypes as _dtypes
from .. import tensor as _tensor
from ..autograd.function import Function, NonDifferentiable
from ..autograd.lowp import in_float32
from ._util import float_operand, normalize_axis, normalize_dims, torch_kwargs
from .index import take_along_dim
from .reduce import ValuesIndices, accumulated, amax

_T = lambda arr, like: _tensor.Tensor._make(arr, like._device)  # noqa: E731


# ---- prod -----------------------------------------------------------------------------------------
class Prod(Function):
    """The product over ``axes``. Gradient: the product of the others, written to be right with
    zeros (one zero: only it gets a gradient; two or more: none does)."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.save_inputs(0)
        return ctx.be.xp.prod(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        from .arith import where

        (x,) = ctx.saved_tensors
        zero = x == 0
        one = _tensor.ones((), dtype=x.dtype, device=x.device)
        nonzero = where(zero, one, x)
        others = Prod.apply(nonzero, axes=ctx.axes, keepdims=True) / nonzero
        zeros = zero.sum(ctx.axes, keepdim=True)
        use = (zeros == 0) | ((zeros == 1) & zero)
        gk = g if ctx.keepdims else g.reshape(tuple(1 if i in ctx.axes else n
                                                    for i, n in enumerate(x.shape)))
        return (gk * others * use.to(g.dtype),)


@torch_kwargs
def prod(input, dim=None, keepdim=False, *, dtype=None):
    """The product over ``dim`` (all elements when None)."""
    x = accumulated(input, dtype)
    axes = normalize_dims(dim, x.ndim, "prod")
    return Prod.apply(x, axes=axes, keepdims=keepdim) if axes else x


# ---- logical reductions ---------------------------------------------------------------------------
class _Logical(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, fn, axes, keepdims):
        return getattr(ctx.be.xp, fn)(x, axis=axes, keepdims=keepdims)


@torch_kwargs
def all(input, dim=None, keepdim=False):  # noqa: A001
    """Whether every element (along ``dim``) is nonzero, as a bool tensor."""
    return _Logical.apply(input, fn="all", axes=normalize_dims(dim, input.ndim, "all"), keepdims=keepdim)


@torch_kwargs
def any(input, dim=None, keepdim=False):  # noqa: A001
    """Whether some element (along ``dim``) is nonzero, as a bool tensor."""
    return _Logical.apply(input, fn="any", axes=normalize_dims(dim, input.ndim, "any"), keepdims=keepdim)


class _CountNonzero(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, axes):
        return ctx.be.xp.count_nonzero(x, axis=axes).astype("int64")


@torch_kwargs
def count_nonzero(input, dim=None):
    """The number of nonzero elements (along ``dim``), int64."""
    return _CountNonzero.apply(input, axes=normalize_dims(dim, input.ndim, "count_nonzero"))


# ---- norms ----------------------------------------------------------------------------------------
@torch_kwargs
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ``ord``-norm over ``dim`` of a tensor seen as a vector: (sum |x|^ord)^(1/ord); inf
    gives max |x|, -inf min |x|, 0 the count of nonzeros. The gradient at a zero norm is 0."""
    from .arith import where

    x = float_operand(x if dtype is None else x.to(dtype))
    axes = normalize_dims(dim, x.ndim, "vector_norm")
    a = x.abs()
    if ord == float("inf"):
        return a.amax(axes, keepdim) if axes else a
    if ord == float("-inf"):
        return a.amin(axes, keepdim) if axes else a
    if ord == 0:
        return (x != 0).to(x.dtype).sum(axes, keepdim)
    if ord == 2:  # sqrt(sum x^2), with a zero gradient (not NaN) where the norm is 0
        s = (x * x).sum(axes, keepdim)
        zero = s == 0
        safe = where(zero, _tensor.ones((), dtype=x.dtype, device=x.device), s)
        return where(zero, s, safe.sqrt())
    if ord == 1:
        return a.sum(axes, keepdim)
    s = (a ** ord).sum(axes, keepdim)
    zero = s == 0
    safe = where(zero, _tensor.ones((), dtype=x.dtype, device=x.device), s)
    return where(zero, s, safe ** (1.0 / ord))


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """``torch.norm``: the 2-norm (Frobenius) by default, or the ``p``-norm, over ``dim``."""
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise ValueError(f"norm: p={p!r} is not supported here (use 'fro' or a number)")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


# ---- scans ----------------------------------------------------------------------------------------
class CumSum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return ctx.be.xp.cumsum(x, axis=axis)

    @staticmethod
    def backward(ctx, g):
        from .layout import flip

        return (flip(CumSum.apply(flip(g, ctx.axis), axis=ctx.axis), ctx.axis),)


@torch_kwargs
def cumsum(input, dim, *, dtype=None):
    """Running sums along ``dim``."""
    x = accumulated(input, dtype)
    if x.ndim == 0:
        return x
    return CumSum.apply(x, axis=normalize_axis(dim, x.ndim, "cumsum"))


class CumProd(Function):
    """Running products, for inputs without zeros: the gradient is
    reverse-cumsum(g * out) / x."""

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        ctx.save_inputs(0)
        ctx.save_output()
        return ctx.be.xp.cumprod(x, axis=axis)

    @staticmethod
    def backward(ctx, g):
        from .layout import flip

        x, y = ctx.saved_tensors
        d = ctx.axis
        return (flip(cumsum(flip(g * y, d), d), d) / x,)


@torch_kwargs
def cumprod(input, dim, *, dtype=None):
    """Running products along ``dim``."""
    from .shape import concatenate

    x = accumulated(input, dtype)
    if x.ndim == 0:
        return x
    d = normalize_axis(dim, x.ndim, "cumprod")
    if not x.requires_grad or not bool((x.array == 0).any()):
        return CumProd.apply(x, axis=d)
    # With zeros, the division above is undefined: each prefix as its own product (whose
    # gradient handles zeros exactly).
    return concatenate([prod(x.narrow(d, 0, i + 1), d, keepdim=True) for i in range(x.shape[d])], d)


@torch_kwargs
@in_float32
def logcumsumexp(input, dim):
    """log(cumsum(exp(x))) along ``dim``, without overflow."""
    x = float_operand(input)
    if x.ndim == 0:
        return x
    d = normalize_axis(dim, x.ndim, "logcumsumexp")
    m = amax(x, d, keepdim=True).detach()
    return cumsum((x - m).exp(), d).log() + m


class _CumExtremum(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, axis, kind):
        import numpy as np

        # On the host: ufunc.accumulate is numpy's (the indices go back to the device).
        a = ctx.be.to_numpy(x)
        run = (np.maximum if kind == "max" else np.minimum).accumulate(a, axis=axis)
        # The index of the last position where the running extreme was attained.
        n = a.shape[axis]
        pos = np.arange(n).reshape((1,) * axis + (n,) + (1,) * (a.ndim - axis - 1))
        hit = np.where(a == run, pos, 0)
        return ctx.be.to_device_array(np.maximum.accumulate(hit, axis=axis).astype("int64"))


def _cum_extreme(input, dim, kind):
    if input.ndim == 0:
        return ValuesIndices(input, _tensor.zeros((), dtype="int64", device=input.device))
    d = normalize_axis(dim, input.ndim, "cum" + kind)
    idx = _CumExtremum.apply(input, axis=d, kind=kind)
    return ValuesIndices(take_along_dim(input, idx, d), idx)


@torch_kwargs
def cummax(input, dim):
    """Running maxima along ``dim`` and where each was attained: (values, indices)."""
    return _cum_extreme(input, dim, "max")


@torch_kwargs
def cummin(input, dim):
    """Running minima along ``dim`` and where each was attained: (values, indices)."""
    return _cum_extreme(input, dim, "min")


# ---- orderings ------------------------------------------------------------------------------------
class _ArgSort(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, axis, descending, stable):
        xp = ctx.be.xp
        if descending:  # stably, ties keeping their order: ascending on the negated values
            key = ~x if x.dtype.kind == "b" else -x.astype("int64") if x.dtype.kind == "u" else -x
            return xp.argsort(key, axis=axis, kind="stable").astype("int64")
        return xp.argsort(x, axis=axis, kind="stable" if stable else None).astype("int64")


@torch_kwargs
def argsort(input, dim=-1, descending=False, stable=False):
    """The indices that sort ``input`` along ``dim``."""
    if input.ndim == 0:
        return _tensor.zeros((), dtype="int64", device=input.device)
    d = normalize_axis(dim, input.ndim, "argsort")
    return _ArgSort.apply(input, axis=d, descending=bool(descending), stable=bool(stable))


@torch_kwargs
def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) of ``input`` sorted along ``dim``."""
    idx = argsort(input, dim, descending, stable)
    if input.ndim == 0:
        return ValuesIndices(input, idx)
    return ValuesIndices(take_along_dim(input, idx, normalize_axis(dim, input.ndim, "sort")), idx)


@torch_kwargs
def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """The ``k`` largest (or smallest) entries along ``dim``: (values, indices)."""
    d = normalize_axis(dim, input.ndim, "topk")
    n = input.shape[d] if input.ndim else 1
    if not 0 <= k <= n:
        raise ValueError(f"topk: k={k} is out of range for a dim of size {n}")
    idx = argsort(input, d, descending=largest, stable=True)
    if input.ndim == 0:
        return ValuesIndices(input, idx)
    idx = idx.narrow(d, 0, k)
    return ValuesIndices(take_along_dim(input, idx, d), idx)


@torch_kwargs
def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest entry (1-based) along ``dim`` and its index."""
    d = normalize_axis(dim, input.ndim, "kthvalue")
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise ValueError(f"kthvalue: k={k} is out of range for a dim of size {n}")
    if input.ndim == 0:
        return ValuesIndices(input, _tensor.zeros((), dtype="int64", device=input.device))
    idx = argsort(input, d, stable=True).narrow(d, k - 1, 1)
    values = take_along_dim(input, idx, d)
    return ValuesIndices(values, idx) if keepdim else ValuesIndices(values.squeeze(d), idx.squeeze(d))


@torch_kwargs
def median(input, dim=None, keepdim=False):
    """The lower median: of all elements (a 0-d tensor) or along ``dim`` (values, indices)."""
    if dim is None:
        flat = input.reshape(-1)
        return kthvalue(flat, (flat.shape[0] + 1) // 2, 0).values
    d = normalize_axis(dim, input.ndim, "median")
    n = input.shape[d] if input.ndim else 1
    return kthvalue(input, (n + 1) // 2, d, keepdim)


class _Mode(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, axis):
        xp = ctx.be.xp
        s = xp.sort(x, axis=axis)
        n = x.shape[axis]
        # For each sorted position, the length of the run of equal values ending there.
        moved = xp.moveaxis(s, axis, -1)
        run = xp.ones(moved.shape, "int64")
        for i in range(1, n):
            run[..., i] = xp.where(moved[..., i] == moved[..., i - 1], run[..., i - 1] + 1, 1)
        best = xp.argmax(run, axis=-1)  # first longest run: the smallest most frequent value
        value = xp.take_along_axis(moved, best[..., None], -1)
        orig = xp.moveaxis(x, axis, -1)
        last = n - 1 - xp.argmax((orig == value)[..., ::-1], axis=-1)  # as PyTorch: the last one
        return ctx.be.astype(xp.asarray(last), "int64")  # (numpy gives a scalar for 1-d input)


@torch_kwargs
def mode(input, dim=-1, keepdim=False):
    """The most frequent value along ``dim`` (the smallest among ties) and an index of it."""
    if input.ndim == 0:
        return ValuesIndices(input, _tensor.zeros((), dtype="int64", device=input.device))
    d = normalize_axis(dim, input.ndim, "mode")
    idx = _Mode.apply(input, axis=d).unsqueeze(d)
    values = take_along_dim(input, idx, d)
    return ValuesIndices(values, idx) if keepdim else ValuesIndices(values.squeeze(d), idx.squeeze(d))


@torch_kwargs
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """The distinct values (sorted), with optionally the inverse indices (where each element of
    ``input`` went; with ``dim``, each slice) and the counts. With ``dim``, the distinct slices
    along that dim, sorted lexicographically, as PyTorch."""
    be = input._be
    if dim is None:
        vals, inv, counts = be.xp.unique(be.reshape(input.array, -1), return_inverse=True,
                                         return_counts=True)
        inv = be.reshape(inv, input.shape)
    else:
        if input.ndim == 0:
            raise IndexError(f"unique: dim {dim} given but the tensor has no dimensions")
        d = normalize_axis(dim, input.ndim, "unique")
        # on the host: the output's size depends on the values, and not every array library has
        # unique over slices
        a = be.to_numpy(input.array)
        if a.shape[d] == 0:
            vals, inv, counts = a, np.zeros(0, np.int64), np.zeros(0, np.int64)
        else:
            vals, inv, counts = np.unique(a, axis=d, return_inverse=True, return_counts=True)
        vals, inv, counts = (be.to_device_array(x) for x in (vals, inv.reshape(-1), counts))
    return _unique_result(input, vals, inv, counts, return_inverse, return_counts)


@torch_kwargs
def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Like ``unique`` but only collapses runs of equal consecutive values (or slices along
    ``dim``), keeping their order, as PyTorch."""
    be = input._be
    a = be.to_numpy(input.array)  # on the host: the output's size depends on the values
    if dim is None:
        a, d = a.reshape(-1), 0
    elif input.ndim == 0:
        raise IndexError(f"unique_consecutive: dim {dim} given but the tensor has no dimensions")
    else:
        d = normalize_axis(dim, input.ndim, "unique_consecutive")
    rows = np.moveaxis(a, d, 0).reshape(a.shape[d], -1)
    starts = np.ones(a.shape[d], bool)
    starts[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    first = np.flatnonzero(starts)
    vals = np.take(a, first, axis=d)
    inv = np.cumsum(starts) - 1
    counts = np.diff(np.append(first, a.shape[d]))
    if dim is None:
        inv = inv.reshape(input.shape)
    vals, inv, counts = (be.to_device_array(x) for x in (vals, inv, counts))
    return _unique_result(input, vals, inv, counts, return_inverse, return_counts)


def _unique_result(input, vals, inv, counts, return_inverse, return_counts):
    be = input._be
    out = [_T(vals, input)]
    if return_inverse:
        out.append(_T(be.astype(inv, "int64"), input))
    if return_counts:
        out.append(_T(be.astype(counts, "int64"), input))
    return out[0] if len(out) == 1 else tuple(out)


@torch_kwargs
def nansum(input, dim=None, keepdim=False):
    """The sum over ``dim`` with NaNs counted as zero (no gradient to them)."""
    from .arith import where
    from .elementwise import isnan

    return where(isnan(input), _tensor.zeros((), dtype=input.dtype, device=input.device),
                 input).sum(dim=dim, keepdim=keepdim)


@torch_kwargs
def nanmean(input, dim=None, keepdim=False):
    """The mean over ``dim`` of the elements that are not NaN."""
    from .elementwise import isnan

    if not _dtypes.is_float(input.dtype):
        raise TypeError(f"nanmean: expected a floating-point tensor, got {input.dtype}")
    kept = (~isnan(input)).to(input.dtype).sum(dim=dim, keepdim=keepdim)
    return nansum(input, dim, keepdim) / kept


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each element of ``elements`` is among ``test_elements`` (a tensor or a number)."""
    like = elements if isinstance(elements, _tensor.Tensor) else test_elements
    be = like._be
    a = elements.array if isinstance(elements, _tensor.Tensor) else be.xp.asarray(elements)
    b = test_elements.array if isinstance(test_elements, _tensor.Tensor) else be.xp.asarray(test_elements)
    return _T(be.xp.isin(a, b, assume_unique=assume_unique, invert=invert), like)


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """Where each value of ``input`` would go in ``sorted_sequence`` (1-D, or one sorted row per
    leading index of ``input``) to keep it sorted: the first such place, or with
    ``right=True``/``side="right"`` the last."""
    if side is not None:
        if side not in ("left", "right") or (right and side == "left"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right' (and agree with right=), got {side!r}")
        right = side == "right"
    if sorter is not None:
        raise ValueError("searchsorted: sorter= is not supported; sort the sequence first")
    seq = sorted_sequence
    scalar = not isinstance(input, _tensor.Tensor)
    values = _tensor.tensor(input, device=seq.device) if scalar else input
    if values._device != seq._device:
        raise RuntimeError(f"searchsorted: the sequence is on {seq._device} but the values are on "
                           f"{values._device}")
    be, xp, where = seq._be, seq._be.xp, "right" if right else "left"
    if seq.ndim <= 1:
        out = xp.searchsorted(seq.array, values.array, side=where)
    else:
        if tuple(seq.shape[:-1]) != tuple(values.shape[:-1]):
            raise ValueError(f"searchsorted: the leading dims of the sequence {seq.shape} and the "
                             f"values {values.shape} differ")
        rows = be.reshape(seq.array, (-1, seq.shape[-1]))
        vals = be.reshape(values.array, (rows.shape[0], -1))
        out = be.reshape(xp.stack([xp.searchsorted(be.getitem(rows, i), be.getitem(vals, i), side=where)
                                   for i in range(rows.shape[0])]), tuple(values.shape))
    return _T(be.astype(xp.asarray(out), "int32" if out_int32 else "int64"), seq)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each value among the sorted 1-D ``boundaries``: i with
    boundaries[i-1] < x <= boundaries[i] (``right=True``: boundaries[i-1] <= x < boundaries[i])."""
    if boundaries.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-D, got shape {boundaries.shape}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def bincount(input, weights=None, minlength=0):
    """How often each value 0..max occurs in the 1-D non-negative integer ``input`` (at least
    ``minlength`` bins); with ``weights``, their sums instead (float64 unless weights is float32)."""
    if input.ndim != 1 or input.dtype.kind not in "iu":
        raise ValueError(f"bincount: expected a 1-D integer tensor, got {input.dtype} of shape {input.shape}")
    be = input._be
    if input.numel() and int(be.xp.min(input.array)) < 0:
        raise ValueError("bincount: the input must be non-negative")
    if weights is None:
        return _T(be.astype(be.xp.bincount(input.array, minlength=minlength), "int64"), input)
    counts = be.xp.bincount(input.array, weights=weights.array, minlength=minlength)
    return _T(be.astype(counts, "float32" if weights.dtype == np.float32 else "float64"), input)
