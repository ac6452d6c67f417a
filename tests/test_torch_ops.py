"""PyTorch's op names in gradflow: each op against torch 2.x on the same float64 inputs (values,
and gradients of a random weighting of the output), and a float64 gradcheck of gradflow's
gradient against finite differences."""
import operator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradflow as gf  # noqa: E402
from gradflow.autograd import gradcheck  # noqa: E402


def _n(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _u(shape, lo, hi, seed):
    return np.random.default_rng(seed).uniform(lo, hi, shape)


def _distinct(shape, seed):
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.37 - n * 0.15).reshape(shape)


IDX = np.array([[0, 2, 1, 0], [1, 1, 0, 2]])
IDX1 = np.array([2, 0, 2])
IDXR = np.array([[0, 1, 1, 2], [0, 1, 1, 0], [2, 1, 0, 0]])  # repeats within every column
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])


def _with_zeros(a, at):
    a = a.copy()
    for i in at:
        a[i] = 0.0
    return a


def _lib(lib):
    """Helpers that build constant index/mask tensors in either library."""
    return (lambda a: torch.tensor(a)) if lib is torch else lib.tensor


# (id, f(lib, *tensors), [input arrays]); f uses only names both libraries share.
CASES = [
    # elementwise math
    *[(name, (lambda name: lambda L, a: getattr(L, name)(a))(name), [_u((3, 4), -0.8, 0.8, 0)])
      for name in ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "atanh",
                   "erf", "erfc", "erfinv", "log1p", "expm1", "exp2", "reciprocal", "square",
                   "frac", "arcsin", "arctan"]],
    *[(name, (lambda name: lambda L, a: getattr(L, name)(a))(name), [_u((3, 4), 1.2, 3.0, 1)])
      for name in ["acosh", "log2", "log10", "rsqrt"]],
    *[(name, (lambda name: lambda L, a: getattr(L, name)(a) * a)(name), [_u((3, 4), -3.0, 3.0, 2) + 0.05])
      for name in ["floor", "ceil", "round", "trunc", "sign"]],
    ("method_sin", lambda L, a: a.sin() * a.cos(), [_n((3, 4), 0)]),
    ("atan2", lambda L, a, b: L.atan2(a, b), [_n((3, 4), 0), _n((4,), 1)]),
    ("copysign", lambda L, a, b: L.copysign(a, b), [_n((3, 4), 0) + 0.05, _n((3, 4), 1) + 0.05]),
    ("fmod", lambda L, a, b: L.fmod(a, b), [_u((3, 4), -5, 5, 0), _u((3, 4), 0.7, 2, 1)]),
    ("remainder", lambda L, a, b: L.remainder(a, b), [_u((3, 4), -5, 5, 0), _u((3, 4), 0.7, 2, 1)]),
    ("mod_op", lambda L, a: a % 1.5, [_u((3, 4), -5, 5, 0)]),
    ("logaddexp", lambda L, a, b: L.logaddexp(a, b), [_n((3, 4), 0), _n((3, 4), 1)]),
    ("hypot", lambda L, a, b: L.hypot(a, b), [_n((3, 4), 0), _n((3, 4), 1)]),
    ("lerp", lambda L, a, b: L.lerp(a, b, 0.3), [_n((3, 4), 0), _n((3, 4), 1)]),
    ("nan_to_num", lambda L, a: L.nan_to_num(a / (a > 0).to(a.dtype), nan=0.5, posinf=2.0, neginf=-2.0), [_n((3, 4), 0)]),
    # reductions and scans
    ("prod", lambda L, a: a.prod(), [_u((2, 3), 0.5, 1.5, 0)]),
    ("prod_dim", lambda L, a: L.prod(a, 1, keepdim=True), [_n((3, 4), 0)]),
    ("prod_zero", lambda L, a: a.prod(1) * 1.0, [np.array([[0.0, 2.0, 3.0], [1.5, 0.0, 0.0], [1.0, 2.0, -1.0]])]),
    ("cumsum", lambda L, a: a.cumsum(1), [_n((3, 4), 0)]),
    ("cumsum_0", lambda L, a: L.cumsum(a, dim=0), [_n((3, 4), 0)]),
    ("cumprod", lambda L, a: a.cumprod(1), [_u((3, 4), 0.5, 1.5, 0)]),
    ("cumprod_zero", lambda L, a: a.cumprod(1), [np.array([[1.5, 0.0, 2.0, 3.0], [0.0, 1.0, 0.0, 2.0]])]),
    ("logcumsumexp", lambda L, a: a.logcumsumexp(1), [_n((3, 4), 0)]),
    ("cummax", lambda L, a: a.cummax(1).values, [_distinct((3, 4), 0)]),
    ("cummin", lambda L, a: L.cummin(a, 0).values, [_distinct((3, 4), 0)]),
    ("norm", lambda L, a: a.norm(), [_n((3, 4), 0)]),
    ("norm_dim", lambda L, a: L.norm(a, dim=1, keepdim=True), [_n((3, 4), 0)]),
    ("norm_p3", lambda L, a: L.norm(a, p=3, dim=0), [_n((3, 4), 0)]),
    ("vector_norm_inf", lambda L, a: L.linalg.vector_norm(a, ord=float("inf"), dim=1), [_distinct((3, 4), 0)]),
    ("vector_norm_1", lambda L, a: L.linalg.vector_norm(a, ord=1), [_n((3, 4), 0)]),
    ("sort", lambda L, a: a.sort(1).values, [_distinct((3, 4), 0)]),
    ("sort_desc", lambda L, a: L.sort(a, dim=0, descending=True).values, [_distinct((3, 4), 0)]),
    ("topk", lambda L, a: a.topk(2, dim=1).values, [_distinct((3, 4), 0)]),
    ("topk_smallest", lambda L, a: L.topk(a, 2, 0, largest=False).values, [_distinct((3, 4), 0)]),
    ("kthvalue", lambda L, a: a.kthvalue(2, 1).values, [_distinct((3, 4), 0)]),
    ("median", lambda L, a: a.median(), [_distinct((3, 5), 0)]),
    ("median_dim", lambda L, a: a.median(1).values, [_distinct((3, 4), 0)]),
    ("amax", lambda L, a: a.amax((0, 1)), [_distinct((3, 4), 0)]),
    # shape and indexing
    ("cat", lambda L, a, b: L.cat([a, b], dim=1), [_n((3, 4), 0), _n((3, 2), 1)]),
    ("view", lambda L, a: a.view(2, 6) * a.view(-1)[:6], [_n((3, 4), 0)]),
    ("view_as", lambda L, a, b: a.view_as(b) * b, [_n((3, 4), 0), _n((4, 3), 1)]),
    ("expand", lambda L, a: a.expand(2, 3, 4), [_n((3, 1), 0)]),
    ("expand_minus1", lambda L, a: a.expand(-1, 5) * 1.0, [_n((3, 1), 0)]),
    ("expand_as", lambda L, a, b: a.expand_as(b) * b, [_n((1, 4), 0), _n((3, 4), 1)]),
    ("repeat", lambda L, a: a.repeat(2, 1, 3), [_n((3, 4), 0)]),
    ("repeat_interleave", lambda L, a: a.repeat_interleave(2, dim=1), [_n((3, 4), 0)]),
    ("repeat_interleave_flat", lambda L, a: L.repeat_interleave(a, 3), [_n((2, 2), 0)]),
    ("repeat_interleave_tensor", lambda L, a: a.repeat_interleave(_lib(L)(np.array([1, 0, 2])), dim=0),
     [_n((3, 4), 0)]),
    ("tile", lambda L, a: L.tile(a, (2,)), [_n((3, 4), 0)]),
    ("chunk", lambda L, a: a.chunk(3, 1)[1] * a.chunk(3, 1)[0], [_n((3, 4), 0)]),
    ("unbind", lambda L, a: L.unbind(a, 1)[2] * a.unbind()[0][:3], [_n((3, 4), 0)]),
    ("narrow", lambda L, a: a.narrow(1, 1, 2), [_n((3, 4), 0)]),
    ("flip", lambda L, a: a.flip(0) * a.flip((0, 1)), [_n((3, 4), 0)]),
    ("roll", lambda L, a: a.roll(1, 1) * L.roll(a, (2, -1), (0, 1)), [_n((3, 4), 0)]),
    ("roll_flat", lambda L, a: a.roll(5), [_n((3, 4), 0)]),
    ("movedim", lambda L, a: a.movedim(0, 2), [_n((2, 3, 4), 0)]),
    ("unflatten", lambda L, a: a.unflatten(1, (2, 2)), [_n((3, 4), 0)]),
    ("gather", lambda L, a: a.gather(0, _lib(L)(IDX)), [_n((3, 4), 0)]),
    ("gather_1", lambda L, a: L.gather(a, 1, _lib(L)(IDX[:, :3])), [_n((3, 4), 0)]),
    ("take_along_dim", lambda L, a: L.take_along_dim(a, _lib(L)(IDX[:1]), 0), [_n((3, 4), 0)]),
    ("scatter", lambda L, a, b: a.scatter(1, _lib(L)(np.array([[0, 1], [2, 3], [3, 0]])), b),
     [_n((3, 4), 0), _n((3, 2), 1)]),
    ("scatter_value", lambda L, a: a.scatter(0, _lib(L)(np.array([[0, 1, 2, 0]])), 1.5), [_n((3, 4), 0)]),
    ("scatter_add", lambda L, a, b: a.scatter_add(0, _lib(L)(IDX), b), [_n((3, 4), 0), _n((2, 4), 1)]),
    ("scatter_reduce_sum", lambda L, a, b: a.scatter_reduce(0, _lib(L)(IDX), b, "sum"),
     [_n((3, 4), 0), _n((2, 4), 1)]),
    ("scatter_reduce_mean", lambda L, a, b: L.scatter_reduce(a, 0, _lib(L)(IDX), b, "mean"),
     [_n((3, 4), 0), _n((2, 4), 1)]),
    ("scatter_reduce_mean_exclude", lambda L, a, b: a.scatter_reduce(1, _lib(L)(IDX[:, :3]), b, "mean",
                                                                     include_self=False),
     [_n((3, 4), 0), _n((2, 3), 1)]),
    *[(f"scatter_reduce_{reduce}{'' if keep else '_exclude'}",
       (lambda reduce, keep: lambda L, a, b: a.scatter_reduce(0, _lib(L)(IDXR), b, reduce,
                                                              include_self=keep))(reduce, keep),
       [_distinct((3, 4), 0), _distinct((3, 4), 1) + 0.123])
      for reduce in ["prod", "amax", "amin"] for keep in [True, False]],
    *[(f"scatter_reduce_prod_zeros{'' if keep else '_exclude'}",
       (lambda keep: lambda L, a, b: L.scatter_reduce(a, 0, _lib(L)(IDXR), b, "prod",
                                                      include_self=keep))(keep),
       [_with_zeros(_n((3, 4), 0), [(0, 0), (1, 2)]), _with_zeros(_n((3, 4), 1), [(0, 1), (1, 1), (0, 2)])])
      for keep in [True, False]],
    ("xlogy", lambda L, a, b: L.xlogy(a, b), [_n((2, 3), 0), _u((2, 3), 0.5, 2, 1)]),
    ("pow_method", lambda L, a: L.pow(a, 2) + a.pow(3), [_n((3, 4), 0)]),
    ("clamp", lambda L, a: L.clamp(a, -0.5, 0.5) * a, [_n((3, 4), 0) + 0.01]),
    ("index_select", lambda L, a: a.index_select(1, _lib(L)(IDX1)), [_n((3, 4), 0)]),
    ("index_add", lambda L, a, b: a.index_add(0, _lib(L)(IDX1), b, alpha=2.0), [_n((3, 4), 0), _n((3, 4), 1)]),
    ("index_fill", lambda L, a: a.index_fill(1, _lib(L)(np.array([0, 2])), -1.5) * L.index_fill(a, 0, _lib(L)(IDX1[:1]), 2.0),
     [_n((3, 4), 0)]),
    ("index_copy", lambda L, a, b: a.index_copy(0, _lib(L)(np.array([2, 0])), b), [_n((3, 4), 0), _n((2, 4), 1)]),
    ("masked_fill", lambda L, a: a.masked_fill(_lib(L)(MASK), -2.0), [_n((3, 4), 0)]),
    ("masked_select", lambda L, a: a.masked_select(_lib(L)(MASK)), [_n((3, 4), 0)]),
    ("tril", lambda L, a: a.tril(), [_n((3, 4), 0)]),
    ("triu_k", lambda L, a: L.triu(a, 1) + L.tril(a, -1), [_n((2, 3, 4), 0)]),
    ("diag_vec", lambda L, a: L.diag(a, 1), [_n((3,), 0)]),
    ("diag_mat", lambda L, a: a.diag(-1), [_n((3, 4), 0)]),
    ("diagonal", lambda L, a: a.diagonal(0, 1, 2), [_n((2, 3, 4), 0)]),
    ("diag_embed", lambda L, a: L.diag_embed(a), [_n((2, 3), 0)]),
    ("meshgrid", lambda L, a, b: L.meshgrid(a, b, indexing="ij")[0] * L.meshgrid(a, b, indexing="xy")[1].T,
     [_n((3,), 0), _n((4,), 1)]),
    ("einsum_mm", lambda L, a, b: L.einsum("ij,jk->ik", a, b), [_n((3, 4), 0), _n((4, 2), 1)]),
    ("einsum_batch", lambda L, a, b: L.einsum("bij,bkj->bik", a, b), [_n((2, 3, 4), 0), _n((2, 5, 4), 1)]),
    ("einsum_sum_out", lambda L, a, b: L.einsum("ij,j->", a, b), [_n((3, 4), 0), _n((4,), 1)]),
    ("einsum_implicit", lambda L, a, b: L.einsum("ij,jk", a, b), [_n((3, 4), 0), _n((4, 2), 1)]),
    ("einsum_ellipsis", lambda L, a, b: L.einsum("...ij,...jk->...ik", a, b), [_n((2, 3, 4), 0), _n((4, 2), 1)]),
    ("einsum_drop", lambda L, a: L.einsum("ijk->j", a), [_n((2, 3, 4), 0)]),
    ("outer", lambda L, a, b: L.outer(a, b), [_n((3,), 0), _n((4,), 1)]),
    ("dot", lambda L, a, b: L.dot(a, b), [_n((4,), 0), _n((4,), 1)]),
    ("mm", lambda L, a, b: a.mm(b), [_n((3, 4), 0), _n((4, 2), 1)]),
    ("bmm", lambda L, a, b: L.bmm(a, b), [_n((2, 3, 4), 0), _n((2, 4, 2), 1)]),
    ("mv", lambda L, a, b: L.mv(a, b), [_n((3, 4), 0), _n((4,), 1)]),
    ("add_alpha", lambda L, a, b: L.add(a, b, alpha=2.5) * a.sub(b, alpha=0.5) + a.mul(b) + L.multiply(a, 2),
     [_n((3, 4), 0), _n((4,), 1)]),
    ("subtract", lambda L, a, b: L.subtract(a, b) * L.mul(a, b), [_n((3, 4), 0), _n((3, 4), 1)]),
    ("clamp_min_max", lambda L, a, b: L.clamp_min(a, 0.1) * a.clamp_max(b), [_n((3, 4), 0), _n((3, 4), 1) + 0.01]),
    ("addcmul_addcdiv", lambda L, a, b, c: L.addcmul(a, b, c, value=0.5) + a.addcdiv(b, c, value=-2),
     [_n((3, 4), 0), _n((3, 4), 1), _u((3, 4), 0.5, 2, 2)]),
    ("maximum_method_where", lambda L, a, b: a.maximum(b) * a.minimum(b) + a.where(a > b, b),
     [_distinct((3, 4), 0), _distinct((3, 4), 1) + 0.05]),
    ("addmm", lambda L, c, a, b: L.addmm(c, a, b, beta=0.5, alpha=2.0) + c.addmm(a, b), [_n((4,), 2), _n((3, 5), 0), _n((5, 4), 1)]),
    ("baddbmm", lambda L, c, a, b: L.baddbmm(c, a, b, alpha=-1.5), [_n((2, 3, 4), 2), _n((2, 3, 5), 0), _n((2, 5, 4), 1)]),
    ("trace", lambda L, a: L.trace(a) * a.trace(), [_n((3, 4), 0)]),
    ("cdist", lambda L, a, b: L.cdist(a, b), [_n((2, 3, 4), 0), _n((2, 5, 4), 1)]),
    ("cdist_p1", lambda L, a, b: L.cdist(a, b, p=1.0), [_n((3, 4), 0) + 0.01, _n((2, 4), 1)]),
    ("ravel", lambda L, a: a.t().ravel() * L.ravel(a), [_n((3, 4), 0)]),
    ("broadcast_tensors", lambda L, a, b: L.broadcast_tensors(a, b)[0] * L.broadcast_tensors(a, b)[1],
     [_n((3, 1), 0), _n((4,), 1)]),
    ("atleast", lambda L, a, b: L.atleast_3d(a).sum() * L.atleast_2d(b) + L.atleast_1d(b), [_n((3, 4), 0), _n((4,), 1)]),
    ("tensor_split", lambda L, a: L.tensor_split(a, 3, dim=1)[2] * a.tensor_split([1, 3], 1)[0], [_n((3, 5), 0)]),
    ("diff", lambda L, a: L.diff(a) * 1.0, [_n((3, 4), 0)]),
    ("diff_n2_prepend", lambda L, a, b: a.diff(n=2, dim=0, prepend=b, append=b), [_n((3, 4), 0), _n((1, 4), 1)]),
    ("take", lambda L, a: L.take(a, _lib(L)(np.array([[0, -1], [5, 5]]))), [_n((3, 4), 0)]),
    ("logit", lambda L, a: L.logit(a) + a.logit(eps=0.2), [_u((3, 4), 0.05, 0.95, 0)]),
    ("fmax_fmin", lambda L, a, b: L.fmax(a, b) * L.fmin(a, b), [np.where(_n((3, 4), 5) > 0.8, np.nan, _n((3, 4), 0)), _n((3, 4), 1)]),
    ("fmax_ties", lambda L, a, b: L.fmax(a, b) + a.fmin(b), [np.array([[1.0, 2.0], [3.0, np.nan]]), np.array([[1.0, 1.0], [3.0, 2.0]])]),
    ("nansum", lambda L, a: L.nansum(a) * a.nansum(1), [np.where(_n((3, 4), 5) > 0.8, np.nan, _n((3, 4), 0))]),
    ("nanmean", lambda L, a: L.nanmean(a, dim=0, keepdim=True) * a.nanmean(), [np.where(_n((3, 4), 5) > 0.8, np.nan, _n((3, 4), 0))]),
    ("absolute_positive_sgn", lambda L, a: L.absolute(a) * L.positive(a) + a.sgn() * a, [_n((3, 4), 0) + 0.01]),
    ("sinc", lambda L, a: L.sinc(a), [np.concatenate([_n((3, 3), 0), np.zeros((3, 1))], 1)]),
    ("float_power", lambda L, a: L.float_power(a, 3) + a.float_power(2.5), [_u((3, 4), 0.5, 2, 0)]),
    ("kron", lambda L, a, b: L.kron(a, b), [_n((2, 3), 0), _n((3,), 1)]),
    ("rot90", lambda L, a: L.rot90(a) * 1.0 + L.rot90(a, 3, (1, 0)), [_n((3, 3), 0)]),
    ("rot90_k2", lambda L, a: a.rot90(2, (0, 2)), [_n((2, 3, 4), 0)]),
    ("hsplit_vsplit", lambda L, a: L.hsplit(a, 2)[1] * L.vsplit(a, [1])[1].sum() + a.hsplit([1])[0].sum(),
     [_n((3, 4), 0)]),
    ("dstack", lambda L, a, b: L.dstack([a, b]), [_n((3, 4), 0), _n((3, 4), 1)]),
    ("block_diag", lambda L, a, b, c: L.block_diag(a, b, c), [_n((), 0), _n((3,), 1), _n((2, 2), 2)]),
    ("cartesian_prod", lambda L, a, b: L.cartesian_prod(a, b), [_n((3,), 0), _n((2,), 1)]),
    ("cross", lambda L, a, b: L.cross(a, b, dim=1) + L.linalg.cross(a, b), [_n((4, 3), 0), _n((4, 3), 1)]),
    ("dist", lambda L, a, b: L.dist(a, b) + a.dist(b, p=1), [_n((3, 4), 0), _n((4,), 1)]),
    ("clone", lambda L, a: a.clone() * a, [_n((3, 4), 0)]),
    ("contiguous", lambda L, a: a.t().contiguous() * 2.0, [_n((3, 4), 0)]),
]


def _run(fn, arrays, lib):
    ts = [(gf if lib is gf else torch).tensor(a, requires_grad=True) for a in arrays]
    return ts, fn(lib, *ts)


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, fn, arrays):
    gts, g = _run(fn, arrays, gf)
    tts, t = _run(fn, arrays, torch)
    assert tuple(g.shape) == tuple(t.shape)
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(7).standard_normal(tuple(t.shape))
    (g * gf.tensor(w)).sum().backward()
    (t * torch.tensor(w)).sum().backward()
    for a, b in zip(gts, tts):
        exp = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape) if a.grad is None else a.grad.numpy()
        np.testing.assert_allclose(got, exp, rtol=1e-9, atol=1e-12)


# Ties on purpose (PyTorch's choice of which operand gets the gradient): no derivative there.
AT_TIES = {"fmax_ties"}


@pytest.mark.parametrize("name,fn,arrays", [c for c in CASES if c[0] not in AT_TIES],
                         ids=[c[0] for c in CASES if c[0] not in AT_TIES])
def test_gradcheck(name, fn, arrays):
    ts = [gf.tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(lambda *xs: fn(gf, *xs), ts)


# ---- non-differentiable ops: values against torch ---------------------------------------------------
def test_orderings_indices_match_torch():
    a = _distinct((3, 5), 0)
    g, t = gf.tensor(a), torch.tensor(a)
    for gi, ti in [(g.argsort(1), t.argsort(1)), (g.sort(0, descending=True).indices,
                                                   t.sort(0, descending=True).indices),
                   (g.topk(3).indices, t.topk(3).indices), (g.kthvalue(2, 0).indices, t.kthvalue(2, 0).indices),
                   (g.median(1).indices, t.median(1).indices), (g.cummax(1).indices, t.cummax(1).indices),
                   (g.cummin(0).indices, t.cummin(0).indices)]:
        np.testing.assert_array_equal(gi.numpy(), ti.numpy())


@pytest.mark.parametrize("reduce", ["prod", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_ties_and_integers_match_torch(reduce, include_self):
    """Ties (amax/amin split the gradient among them, self included) and integer tensors."""
    a = np.array([[1.0, 2.0, 0.0, 3.0], [2.0, 2.0, 1.0, 0.0], [0.0, 1.0, 1.0, 3.0]])
    b = np.array([[1.0, 2.0, 1.0, 3.0], [1.0, 2.0, 0.0, 0.0], [2.0, 2.0, 1.0, 3.0]])
    g = [gf.tensor(x, requires_grad=True) for x in (a, b)]
    t = [torch.tensor(x, requires_grad=True) for x in (a, b)]
    go = g[0].scatter_reduce(0, gf.tensor(IDXR), g[1], reduce, include_self=include_self)
    to = t[0].scatter_reduce(0, torch.tensor(IDXR), t[1], reduce, include_self=include_self)
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-12)
    w = np.random.default_rng(3).standard_normal(a.shape)
    (go * gf.tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for x, y in zip(g, t):
        np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-12, atol=1e-15)
    ai, bi = a.astype(np.int64) - 1, b.astype(np.int64)
    np.testing.assert_array_equal(
        gf.tensor(ai).scatter_reduce(0, gf.tensor(IDXR), gf.tensor(bi), reduce, include_self=include_self).numpy(),
        torch.tensor(ai).scatter_reduce(0, torch.tensor(IDXR), torch.tensor(bi), reduce,
                                        include_self=include_self).numpy())


def test_scatter_reduce_prod_double_backward():
    """Second derivatives of prod against torch; two zeros of src at one position raise, as in torch."""
    a, b = _n((3, 4), 0), _with_zeros(_n((3, 4), 1), [(0, 2)])
    g = [gf.tensor(x, requires_grad=True) for x in (a, b)]
    t = [torch.tensor(x, requires_grad=True) for x in (a, b)]
    gg = gf.autograd.grad(g[0].scatter_reduce(0, gf.tensor(IDXR), g[1], "prod").sum(), g, create_graph=True)
    tg = torch.autograd.grad(t[0].scatter_reduce(0, torch.tensor(IDXR), t[1], "prod").sum(), t, create_graph=True)
    gh = gf.autograd.grad((gg[0] * gg[1].sum()).sum(), g)
    th = torch.autograd.grad((tg[0] * tg[1].sum()).sum(), t)
    for x, y in zip(gh, th):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-10, atol=1e-12)
    b2 = gf.tensor(_with_zeros(b, [(1, 2)]), requires_grad=True)
    (_, gs) = gf.autograd.grad(g[0].scatter_reduce(0, gf.tensor(IDXR), b2, "prod").sum(), [g[0], b2],
                               create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gs.sum().backward()


def test_xlogy_at_zero_matches_torch():
    a, b = np.array([0.0, 0.0, 2.0]), np.array([0.0, 3.0, 3.0])
    g, gb = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    t, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    gf.xlogy(g, gb + 1).sum().backward()
    torch.xlogy(t, tb + 1).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy())
    np.testing.assert_allclose(gb.grad.numpy(), tb.grad.numpy())
    np.testing.assert_array_equal(gf.xlogy(gf.tensor(a), gf.tensor(b)).numpy(), torch.xlogy(torch.tensor(a), torch.tensor(b)).numpy())


def test_mode_unique_count_nonzero_all_any_match_torch():
    a = np.array([[1, 2, 2, 3, 3], [0, 0, 5, 5, 5], [4, 1, 4, 1, 0]])
    g, t = gf.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal(g.mode(1).values.numpy(), t.mode(1).values.numpy())
    for x, y in zip(gf.tensor([1, 3, 2, 3, 1]).mode(), torch.tensor([1, 3, 2, 3, 1]).mode()):
        assert x.shape == () and x.item() == y.item()  # 1-d input: 0-d values and index
    np.testing.assert_array_equal(gf.unique(g).numpy(), torch.unique(t).numpy())
    u, inv, cnt = gf.unique(g, return_inverse=True, return_counts=True)
    tu, tinv, tcnt = torch.unique(t, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(inv.numpy(), tinv.numpy())
    np.testing.assert_array_equal(cnt.numpy(), tcnt.numpy())
    np.testing.assert_array_equal(g.count_nonzero(1).numpy(), t.count_nonzero(1).numpy())
    np.testing.assert_array_equal(gf.count_nonzero(g).numpy(), torch.count_nonzero(t).numpy())
    np.testing.assert_array_equal(g.all(1).numpy(), t.all(1).numpy())
    np.testing.assert_array_equal((g > 0).any(0, keepdim=True).numpy(), (t > 0).any(0, keepdim=True).numpy())
    assert bool(gf.all(g >= 0)) and not bool(gf.any(g > 5))
    np.testing.assert_array_equal(g.nonzero().numpy(), t.nonzero().numpy())
    for x, y in zip(g.nonzero(as_tuple=True), t.nonzero(as_tuple=True)):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_unique_and_unique_consecutive_match_torch(device, dim):
    a = np.array([[1, 2, 1, 2], [0, 5, 0, 5], [1, 2, 1, 2], [1, 2, 1, 3]])
    g, t = gf.tensor(a, device=device), torch.tensor(a)
    for name in ["unique", "unique_consecutive"]:
        got = getattr(gf, name)(g, return_inverse=True, return_counts=True, dim=dim)
        exp = getattr(torch, name)(t, return_inverse=True, return_counts=True, dim=dim)
        for x, y in zip(got, exp):
            assert str(x.dtype) == str(y.dtype).replace("torch.", "")
            np.testing.assert_array_equal(x.cpu().numpy(), y.numpy())
        np.testing.assert_array_equal(getattr(g, name)(dim=dim).cpu().numpy(), getattr(t, name)(dim=dim).numpy())
    f = np.array([[0.5, -1.0], [0.5, -1.0], [0.25, 3.0]])
    np.testing.assert_array_equal(gf.unique(gf.tensor(f, device=device), dim=0).cpu().numpy(),
                                  torch.unique(torch.tensor(f), dim=0).numpy())
    empty = gf.unique(gf.zeros(0, 3, device=device), dim=0, return_inverse=True, return_counts=True)
    assert [tuple(x.shape) for x in empty] == [(0, 3), (0,), (0,)]
    with pytest.raises(IndexError, match="no dimensions"):
        gf.unique(gf.tensor(3, device=device), dim=0)


def test_integer_division_bitwise_and_classification_match_torch():
    a, b = np.array([7, -7, 5, 0]), np.array([2, 2, -3, 1])
    g, h, t, u = gf.tensor(a), gf.tensor(b), torch.tensor(a), torch.tensor(b)
    for x, y in [(g // h, t // u), (g % h, t % u), (gf.div(g, h, rounding_mode="trunc"),
                                                    torch.div(t, u, rounding_mode="trunc")),
                 (gf.div(g, h, rounding_mode="floor"), torch.div(t, u, rounding_mode="floor")),
                 (g & h, t & u), (g | h, t | u), (g ^ h, t ^ u), (~g, ~t), (g << 1, t << 1),
                 (gf.fmod(g, h), torch.fmod(t, u)), (gf.floor(g), torch.floor(t))]:
        assert str(x.dtype) == str(y.dtype).replace("torch.", "")
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    f = np.array([1.0, np.nan, np.inf, -np.inf, 1e-9])
    gf_f, t_f = gf.tensor(f), torch.tensor(f)
    for name in ["isnan", "isinf", "isfinite", "isposinf", "isneginf"]:
        np.testing.assert_array_equal(getattr(gf, name)(gf_f).numpy(), getattr(torch, name)(t_f).numpy())
    np.testing.assert_array_equal(gf.isclose(gf_f, gf.zeros(5, dtype=gf.float64)).numpy(),
                                  torch.isclose(t_f, torch.zeros(5, dtype=torch.float64)).numpy())
    assert gf.allclose(gf.ones(3), gf.ones(3) + 1e-9) and not gf.allclose(gf.ones(3), gf.zeros(3))
    assert gf.equal(gf.ones(2), gf.ones(2)) and not gf.equal(gf.ones(2), gf.ones(3))
    np.testing.assert_array_equal(gf.nan_to_num(gf_f).numpy(), torch.nan_to_num(t_f).numpy())


# ---- creation and dtypes -----------------------------------------------------------------------------
def test_dtype_aliases_and_conversions():
    assert gf.float is gf.float32 and gf.double is gf.float64 and gf.long is gf.int64
    assert gf.int is gf.int32 and gf.bool is gf.bool_ and gf.half is gf.float16
    assert gf.uint8.itemsize == 1 and gf.int8.kind == "i" and gf.int16.itemsize == 2
    x = gf.tensor([1.5, -2.5])
    assert x.double().dtype == gf.float64 and x.long().dtype == gf.int64 and x.int().dtype == gf.int32
    assert x.bool().dtype == gf.bool_ and x.half().dtype == gf.float16 and x.long().float().dtype == gf.float32
    assert x.type() == "gradflow.FloatTensor" and x.type(gf.float64).dtype == gf.float64
    assert x.type("gradflow.LongTensor").dtype == gf.int64
    np.testing.assert_array_equal(x.long().numpy(), torch.tensor([1.5, -2.5]).long().numpy())


def test_default_dtype():
    assert gf.get_default_dtype() == gf.float32
    gf.set_default_dtype(gf.float64)
    try:
        assert gf.tensor([1.0]).dtype == gf.float64 and gf.zeros(2).dtype == gf.float64
        assert (gf.tensor([1]) / 2).dtype == gf.float64
    finally:
        gf.set_default_dtype(gf.float32)
    with pytest.raises(TypeError):
        gf.set_default_dtype(gf.int64)


def test_creation_functions_match_torch():
    x = gf.ones(2, 3, dtype=gf.float64)
    assert gf.empty(2, 3).shape == (2, 3) and gf.empty_like(x).dtype == gf.float64
    np.testing.assert_array_equal(gf.full_like(x, 7).numpy(), torch.full_like(torch.ones(2, 3), 7).numpy())
    np.testing.assert_allclose(gf.linspace(0, 1, 7).numpy(), torch.linspace(0, 1, 7).numpy(), rtol=1e-6)
    np.testing.assert_allclose(gf.logspace(0, 2, 5).numpy(), torch.logspace(0, 2, 5).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(gf.tril_indices(3, 4, 1).numpy(), torch.tril_indices(3, 4, 1).numpy())
    np.testing.assert_array_equal(gf.triu_indices(4, 3).numpy(), torch.triu_indices(4, 3).numpy())
    assert gf.is_tensor(x) and not gf.is_tensor(np.ones(2))
    a = np.arange(3.0)
    shared = gf.as_tensor(a)
    a[0] = 9
    assert shared.tolist()[0] == 9 and gf.as_tensor(x) is x
    assert gf.as_tensor([1, 2], dtype=gf.float64).dtype == gf.float64


def test_random_functions_and_generators():
    g1, g2 = gf.Generator().manual_seed(3), gf.Generator().manual_seed(3)
    assert g1.initial_seed() == 3
    np.testing.assert_array_equal(gf.randn(4, generator=g1).numpy(), gf.randn(4, generator=g2).numpy())
    assert sorted(gf.randperm(6, generator=g1).tolist()) == list(range(6))
    x = gf.zeros(2, 3, dtype=gf.float64)
    assert gf.rand_like(x).shape == (2, 3) and gf.randn_like(x).dtype == gf.float64
    r = gf.randint_like(x, 3, 5)
    assert r.dtype == gf.float64 and bool(((r >= 3) & (r < 5)).all())
    assert gf.randint(5, (3,)).dtype == gf.int64 and gf.randint(2, 4, size=(2, 2)).shape == (2, 2)
    n = gf.normal(gf.zeros(1000), 2.0)
    assert n.shape == (1000,) and 1.5 < float(n.std()) < 2.5
    assert gf.normal(1.0, 0.5, size=(3,)).shape == (3,)
    s = gf.seed()
    assert gf.initial_seed() == s
    gf.manual_seed(11)
    a = gf.rand(3)
    gf.manual_seed(11)
    np.testing.assert_array_equal(a.numpy(), gf.rand(3).numpy())


def test_set_printoptions():
    try:
        gf.set_printoptions(precision=2)
        assert "3.14" in repr(gf.tensor([3.14159])) and "3.142" not in repr(gf.tensor([3.14159]))
    finally:
        gf.set_printoptions(profile="default")


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_cuda_matches_cpu(name, fn, arrays):
    """The same op on the CUDA backend: values and gradients as on the CPU."""
    from conftest import _CUDA_SKIP, gf_on

    if _CUDA_SKIP is not None:
        pytest.skip(_CUDA_SKIP)

    results = []
    for device in ("cpu", "cuda"):
        ts = [gf.tensor(a, requires_grad=True, device=device) for a in arrays]
        L = gf_on(device)
        out = fn(L, *ts)
        out.sum().backward()
        results.append([out.detach().cpu().numpy()] + [t.grad.cpu().numpy() if t.grad is not None
                                                          else np.zeros(t.shape) for t in ts])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_inplace_and_new_tensor_methods_match_torch():
    """x.clamp_/masked_fill_/index_add_/scatter_/scatter_add_/scatter_reduce_ (values and the
    gradient through the in-place write), neg, and the new_* factories."""
    a, b = _n((3, 4), 0), _n((3, 4), 1)
    steps = [(name, lambda L, x, s: ()) for name in ["exp_", "sigmoid_", "tanh_", "relu_", "square_",
                                                     "neg_", "abs_", "sin_", "round_", "sign_"]]
    steps += [("pow_", lambda L, x, s: (2,)), ("clamp_min_", lambda L, x, s: (0.1,)),
              ("lerp_", lambda L, x, s: (s, 0.3)), ("addcmul_", lambda L, x, s: (s, s)),
              ("clamp_", lambda L, x, s: (-0.5, 0.5)), ("clip_", lambda L, x, s: (None, 0.3)),
             ("masked_fill_", lambda L, x, s: (_lib(L)(MASK), 1.5)),
             ("index_add_", lambda L, x, s: (0, _lib(L)(IDX1), s)),
             ("scatter_", lambda L, x, s: (1, _lib(L)(IDXR[:, :2]), s[:, :2])),
             ("scatter_add_", lambda L, x, s: (0, _lib(L)(IDXR), s)),
             ("scatter_reduce_", lambda L, x, s: (0, _lib(L)(IDXR), s, "amax")),
             ("index_fill_", lambda L, x, s: (1, _lib(L)(IDX1), 0.5)),
             ("index_copy_", lambda L, x, s: (0, _lib(L)(np.array([2, 0, 1])), s))]
    for name, args in steps:
        res = []
        for L in (gf, torch):
            x, s = L.tensor(a, requires_grad=True), L.tensor(b, requires_grad=True)
            y = x * 1.0
            assert getattr(y, name)(*args(L, y, s)) is y
            (y * y.neg()).sum().backward()
            res.append([y.detach().numpy(), x.grad.numpy(),
                        np.zeros(b.shape) if s.grad is None else s.grad.numpy()])
        for g, t in zip(*res):
            np.testing.assert_allclose(g, t, rtol=1e-12, err_msg=name)
    x, t = gf.tensor(a), torch.tensor(a)
    for name, args in [("new_zeros", (2, 3)), ("new_ones", ((2,),)), ("new_full", ((2, 2), 7)),
                       ("new_tensor", ([1, 2],))]:
        g, e = getattr(x, name)(*args), getattr(t, name)(*args)
        assert str(g.dtype) == str(e.dtype).replace("torch.", "")
        np.testing.assert_array_equal(g.numpy(), e.numpy())
    assert x.new_empty(2, 3).shape == (2, 3) and x.new_zeros(2, dtype=gf.int64).dtype == gf.int64


def test_random_fill_methods():
    g1, g2 = gf.Generator().manual_seed(5), gf.Generator().manual_seed(5)
    w = gf.zeros(2000, dtype=gf.float64)
    assert w.normal_(1.0, 0.5, generator=g1) is w and abs(float(w.mean()) - 1) < 0.05
    np.testing.assert_array_equal(w.numpy(), gf.zeros(2000, dtype=gf.float64).normal_(1.0, 0.5, generator=g2).numpy())
    u = gf.zeros(2000).uniform_(-2, 3)
    assert u.dtype == gf.float32 and float(u.min()) >= -2 and float(u.max()) < 3
    p = gf.nn.Parameter(gf.zeros(3))
    for fill in (p.normal_, p.uniform_):
        with pytest.raises(RuntimeError, match="leaf"):  # as torch: not on a leaf that requires grad
            fill()
    with gf.no_grad():
        p.normal_()
    p.data.uniform_()


def test_comparison_names_and_multinomial_match_torch():
    a, b = _distinct((3, 4), 0), _distinct((3, 4), 1)
    for name in ["eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal",
                 "not_equal"]:
        for other in (b, 0.37):
            og, ot = (gf.tensor(other), torch.tensor(other)) if isinstance(other, np.ndarray) else (other, other)
            np.testing.assert_array_equal(getattr(gf, name)(gf.tensor(a), og).numpy(),
                                          getattr(torch, name)(torch.tensor(a), ot).numpy())
            np.testing.assert_array_equal(getattr(gf.tensor(a), name)(og).numpy(),
                                          getattr(torch.tensor(a), name)(ot).numpy())
    p = gf.tensor([[0.0, 1.0, 0.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    g = gf.Generator().manual_seed(0)
    draws = gf.multinomial(p, 20000, replacement=True, generator=g)
    assert draws.dtype == gf.int64 and draws.shape == (2, 20000)
    freq = np.stack([np.bincount(r, minlength=4) / 20000 for r in draws.numpy()])
    np.testing.assert_allclose(freq, [[0, 0.25, 0, 0.75], [0.25] * 4], atol=0.02)
    distinct = p.multinomial(4, generator=g).numpy()
    assert all(sorted(r) == [0, 1, 2, 3] for r in distinct) and set(distinct[0, :2]) == {1, 3}
    assert gf.multinomial(gf.tensor([0.0, 2.0]), 1).item() == 1
    for bad, n, repl in [(gf.tensor([0.0, 0.0]), 1, False), (gf.tensor([1.0, -1.0]), 1, True),
                         (gf.ones(1, 1, 2), 1, True), (gf.ones(2), 3, False), (gf.ones(2), 0, True)]:
        with pytest.raises(RuntimeError):
            gf.multinomial(bad, n, repl)
        tb = torch.tensor(bad.numpy())
        with pytest.raises(RuntimeError):
            torch.multinomial(tb, n, repl)


def test_search_count_and_membership_match_torch(device):
    G = lambda a: gf.tensor(a, device=device)  # noqa: E731
    seq, vals = np.array([1, 3, 3, 5, 9]), np.array([[0, 3, 4], [9, 10, 5]])
    rows = np.array([[1, 3, 5], [2, 4, 6]])
    for right in (False, True):
        np.testing.assert_array_equal(gf.searchsorted(G(seq), G(vals), right=right).cpu().numpy(),
                                      torch.searchsorted(torch.tensor(seq), torch.tensor(vals), right=right).numpy())
        np.testing.assert_array_equal(gf.searchsorted(G(rows), G(vals[:, :2]), right=right).cpu().numpy(),
                                      torch.searchsorted(torch.tensor(rows), torch.tensor(vals[:, :2]), right=right).numpy())
        np.testing.assert_array_equal(gf.bucketize(G(vals), G(seq), right=right).cpu().numpy(),
                                      torch.bucketize(torch.tensor(vals), torch.tensor(seq), right=right).numpy())
    assert gf.searchsorted(G(seq), G(vals), side="right", out_int32=True).dtype == gf.int32
    x = np.array([0, 2, 2, 5])
    np.testing.assert_array_equal(gf.bincount(G(x), minlength=8).cpu().numpy(),
                                  torch.bincount(torch.tensor(x), minlength=8).numpy())
    for w in (np.array([0.5, 1.0, 2.0, 1.0]), np.array([0.5, 1.0, 2.0, 1.0], np.float32)):
        g, t = G(x).bincount(G(w)), torch.tensor(x).bincount(torch.tensor(w))
        assert str(g.dtype) == str(t.dtype).replace("torch.", "")
        np.testing.assert_array_equal(g.cpu().numpy(), t.numpy())
    np.testing.assert_array_equal(gf.isin(G(vals), G(seq)).cpu().numpy(),
                                  torch.isin(torch.tensor(vals), torch.tensor(seq)).numpy())
    np.testing.assert_array_equal(gf.isin(G(vals), 3, invert=True).cpu().numpy(),
                                  torch.isin(torch.tensor(vals), 3, invert=True).numpy())
    assert gf.broadcast_shapes((3, 1), (4,), (1, 4)) == torch.broadcast_shapes((3, 1), (4,), (1, 4))
    with pytest.raises(IndexError, match="out of range"):
        gf.take(gf.ones(3, device=device), G([3]))
    with pytest.raises(ValueError, match="non-negative"):
        gf.bincount(G([-1, 2]))


def test_stride_and_is_contiguous_match_torch():
    a = np.arange(24.0).reshape(2, 3, 4)
    for f in [lambda x: x, lambda x: x.transpose(0, 2), lambda x: x[:, ::2], lambda x: x.permute(1, 0, 2)]:
        g, t = f(gf.tensor(a)), f(torch.tensor(a))
        assert g.stride() == t.stride() and g.stride(-1) == t.stride(-1)
        assert g.is_contiguous() == t.is_contiguous()
    with pytest.raises(ValueError, match="source has shape"):
        gf.zeros(3, 4).index_copy(0, gf.tensor([0]), gf.ones(2, 4))


def test_dtype_rules_and_bernoulli_match_torch():
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
    for a in names:
        for b in names:
            ga, gb, ta, tb = getattr(gf, a if a != "bool" else "bool_"), getattr(gf, b if b != "bool" else "bool_"), \
                getattr(torch, a), getattr(torch, b)
            assert str(gf.promote_types(ga, gb)) == str(torch.promote_types(ta, tb)).replace("torch.", "").replace("bool", "bool")
            assert gf.can_cast(ga, gb) == torch.can_cast(ta, tb), (a, b)
    for x, y in [(lambda L: L.tensor([1, 2]), 1.0), (lambda L: L.tensor([1.0], dtype=L.float16),
                                                     lambda L: L.tensor(2.0, dtype=L.float64)),
                 (lambda L: L.tensor([True]), 3), (lambda L: 2, 3.0)]:
        args = [[v(L) if callable(v) else v for v in (x, y)] for L in (gf, torch)]
        assert str(gf.result_type(*args[0])) == str(torch.result_type(*args[1])).replace("torch.", "")
    g = gf.Generator().manual_seed(0)
    p = gf.tensor([0.0, 0.25, 1.0], dtype=gf.float64).expand(4000, 3)
    draws = gf.bernoulli(p, generator=g)
    assert draws.dtype == gf.float64 and set(np.unique(draws.numpy())) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.numpy().mean(0), [0, 0.25, 1], atol=0.03)
    x = gf.zeros(4000)
    assert x.bernoulli_(0.7) is x and abs(float(x.mean()) - 0.7) < 0.03
    with pytest.raises(RuntimeError, match="probabilities"):
        gf.tensor([1.5]).bernoulli()


def test_atleast_shapes_match_torch():
    for name in ["atleast_1d", "atleast_2d", "atleast_3d"]:
        for shape in [(), (2,), (2, 3), (2, 3, 4)]:
            assert tuple(getattr(gf, name)(gf.ones(shape)).shape) == tuple(getattr(torch, name)(torch.ones(shape)).shape)
        got = getattr(gf, name)([gf.ones(2)])
        exp = getattr(torch, name)([torch.ones(2)])
        assert isinstance(got, tuple) and [tuple(x.shape) for x in got] == [tuple(x.shape) for x in exp]


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int16", "int32", "int64"])
def test_integer_sums_and_products_accumulate_in_int64_as_torch(device, dtype):
    a = np.array([[1, 0, 3], [2, 5, 1]])
    g = gf.tensor(a, device=device).to(getattr(gf, dtype))
    t = torch.tensor(a).to(getattr(torch, dtype))
    for name, args in [("sum", ()), ("sum", (1,)), ("prod", ()), ("prod", (0,)), ("cumsum", (1,)),
                       ("cumprod", (0,))]:
        got, want = getattr(g, name)(*args), getattr(t, name)(*args)
        assert str(got.dtype) == str(want.dtype).replace("torch.", ""), (name, args)
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


# ---- dtype rules of the arithmetic operators, every dtype pair against torch -----------------------
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]



def _outcome(lib, fn):
    """(result dtype name, values as float64), or ("raises", None)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fn()
    except Exception:  # noqa: BLE001  (only whether it raised is compared)
        return "raises", None
    values = r.numpy() if lib is torch else r.cpu().numpy()
    return str(r.dtype).replace("torch.", ""), np.asarray(values, np.float64)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "maximum",
                                  "eq", "lt"])
def test_binary_operator_dtypes_and_values_match_torch(name):
    """Every pair of dtypes, tensor-tensor and with a 0-d operand on either side, and every
    dtype with a Python int, float and bool: the result's dtype and values are torch's, or both
    raise (torch has no bool subtraction, no bool floor division, ...)."""
    def make(lib, dt, val):
        return (torch.tensor(val) if lib is torch else gf.tensor(val)).to(getattr(lib, dt))

    def op(lib):
        if name == "maximum":
            return lib.maximum
        return {"floordiv": operator.floordiv, "mod": operator.mod, "truediv": operator.truediv,
                "pow": operator.pow}.get(name) or getattr(operator, name)

    cases = [(da, va, db, vb) for da in DTYPES for db in DTYPES
             for va, vb in [([3, 1, 2], [2, 1, 3]), ([3, 1, 2], 1), (2, [2, 1, 3])]]
    wrong = []
    for da, va, db, vb in cases:
        got, want = (_outcome(lib, lambda lib=lib: op(lib)(make(lib, da, va), make(lib, db, vb)))
                     for lib in (gf, torch))
        if got[0] != want[0] or (want[1] is not None and not np.allclose(got[1], want[1], equal_nan=True)):
            wrong.append((da, va, db, vb, got, want))
    for da in DTYPES:
        for s in ([2, 2.5, True, False] if name != "maximum" else []):
            # tensor op number; for pow also number ** tensor (a bool ** a bool tensor raises)
            for swap in (False, True) if name == "pow" else (False,):
                def run(lib, da=da, s=s, swap=swap):
                    x = make(lib, da, [3, 0, 2])
                    return op(lib)(s, x) if swap else op(lib)(x, s)

                got, want = (_outcome(lib, lambda lib=lib: run(lib)) for lib in (gf, torch))
                if got[0] != want[0] or (want[1] is not None
                                         and not np.allclose(got[1], want[1], equal_nan=True)):
                    wrong.append((da, s, swap, got, want))
    assert not wrong, wrong[:5]


def test_in_place_ops_keep_their_dtype_or_raise_as_torch():
    """A result of a higher category (float into an integer tensor, integer into bool) is an
    error, never a silent truncation; a lower or equal one is cast, as torch does."""
    cases = {
        "add_ float number": lambda L: L.tensor([1, 2]).add_(1.5),
        "add_ float tensor": lambda L: L.tensor([1, 2]).add_(L.tensor([0.5, 0.5])),
        "mul_": lambda L: L.tensor([1, 2]).mul_(2.5),
        "div_": lambda L: L.tensor([1, 2]).div_(2),
        "bool add_": lambda L: L.tensor([True, False]).add_(1),
        "bool mul_": lambda L: L.tensor([True, False]).mul_(L.tensor([True, True])),
        "uint8 add_ int64": lambda L: L.tensor([1, 2], dtype=L.uint8).add_(L.tensor([300, 1])),
        "float32 add_ float64": lambda L: L.tensor([1., 2.]).add_(L.tensor([1., 1.], dtype=L.float64)),
        "sub_ bool": lambda L: L.tensor([1, 2]).sub_(True),
        "clamp_": lambda L: L.tensor([1, 2]).clamp_(min=0.5),
        "exp_": lambda L: L.tensor([1, 2]).exp_(),
        "sqrt_": lambda L: L.tensor([1, 4]).sqrt_(),
        "iadd": lambda L: L.tensor([1, 2]).__iadd__(0.5),
    }
    for what, fn in cases.items():
        got, want = _outcome(gf, lambda: fn(gf)), _outcome(torch, lambda: fn(torch))
        assert got[0] == want[0], what
        if want[1] is not None:
            np.testing.assert_array_equal(got[1], want[1], err_msg=what)


def test_clamp_result_dtype_as_torch():
    for lib in (gf, torch):
        i, f = lib.tensor([1, 2]), lib.tensor([1.0, 2.0])
        got = [i.clamp(min=0.5), i.clamp(0.5, 1.5), i.clamp(min=1), f.clamp(min=lib.tensor(0.5, dtype=lib.float64)),
               i.clamp(min=lib.tensor([0.5, 0.5])), lib.tensor([True]).clamp(min=0),
               lib.tensor([1, 2], dtype=lib.int32).clamp(min=lib.tensor(1))]
        if lib is gf:
            ours = [(str(r.dtype), r.tolist()) for r in got]
    assert ours == [(str(r.dtype).replace("torch.", ""), r.tolist()) for r in got]


@pytest.mark.parametrize("fn, seven_by_two", [
    (lambda a, b: a // b, [3, -4]), (lambda a, b: a % b, [1, 1]), (lambda a, b: gf.fmod(a, b), [1, -1]),
    (lambda a, b: gf.div(a, b, rounding_mode="trunc"), [3, -3]),
    (lambda a, b: gf.div(a, b, rounding_mode="floor"), [3, -4])])
def test_integer_division_by_zero_raises(device, fn, seven_by_two):
    a = gf.tensor([1, 2], device=device)
    for b in (gf.tensor([0, 1], device=device), 0, gf.tensor(0, device=device).to(gf.uint8)):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(a, b)
    assert fn(gf.tensor([7, -7], device=device), 2).tolist() == seven_by_two


def test_integer_trunc_division_is_exact_and_promoted():
    a, b = [2**60 + 1, -7, 7, -7, 7, 0], [1, 2, -2, -2, 2, -3]
    got = gf.div(gf.tensor(a), gf.tensor(b), rounding_mode="trunc")
    assert got.tolist() == torch.div(torch.tensor(a), torch.tensor(b), rounding_mode="trunc").tolist()
    mixed = gf.div(gf.tensor([100], dtype=gf.int8), gf.tensor([3]), rounding_mode="trunc")
    assert mixed.dtype == gf.int64 and mixed.tolist() == [33]


def test_zero_divisor_check_runs_at_every_jit_replay():
    @gf.jit
    def f(a, b):
        return a // b

    a = gf.tensor([4, 6])
    for _ in range(3):
        assert f(a, gf.tensor([2, 3])).tolist() == [2, 2]
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        f(a, gf.tensor([2, 0]))
