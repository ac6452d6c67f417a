"""Every differentiable op: float64 gradcheck AND gradgradcheck (create_graph=True through the
op's backward), on small shapes and inputs away from kinks; ties and kinks have dedicated tests."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck, gradgradcheck


def _u(shape, lo, hi, seed):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape)


def _n(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _away_from_zero(shape, seed, lo=0.3, hi=2.0):
    a = _u(shape, lo, hi, seed)
    s = np.where(np.random.default_rng(seed + 100).random(shape) < 0.5, -1.0, 1.0)
    return a * s


def _distinct(shape, seed):
    """Values with no ties (for max/min reductions and maximum/minimum)."""
    n = int(np.prod(shape))
    v = np.random.default_rng(seed).permutation(n).astype(np.float64) * 0.37 - n * 0.15
    return v.reshape(shape)


LABELS = gf.tensor(np.array([2, 0, 1]))
PROBS = gf.tensor(np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.1, 0.8, 0.1]]))
MASK = gf.tensor(np.array([[True, False, True], [False, True, True]]))
COND = gf.tensor(np.array([[True, False, True], [False, False, True]]))

# (id, fn, [input arrays])
CASES = [
    # ---- arithmetic, with broadcasting ---------------------------------------------------------
    ("add", lambda a, b: a + b, [_n((2, 3), 0), _n((3,), 1)]),
    ("add_bcast_both", lambda a, b: a + b, [_n((2, 1), 0), _n((1, 3), 1)]),
    ("sub", lambda a, b: a - b, [_n((2, 3), 0), _n((2, 1), 1)]),
    ("mul", lambda a, b: a * b, [_n((2, 3), 0), _n((3,), 1)]),
    ("mul_self", lambda a: a * a, [_n((2, 3), 0)]),
    ("div", lambda a, b: a / b, [_n((2, 3), 0), _away_from_zero((2, 3), 1)]),
    ("div_bcast", lambda a, b: a / b, [_n((2, 3), 0), _away_from_zero((2, 1), 1)]),
    ("pow_tensor_tensor", lambda a, b: a ** b, [_u((2, 3), 0.5, 2.0, 0), _n((2, 3), 1)]),
    ("pow_tensor_tensor_bcast", lambda a, b: a ** b, [_u((2, 3), 0.5, 2.0, 0), _n((1,), 1)]),
    ("pow_scalar_int", lambda a: a ** 3, [_n((2, 3), 0)]),
    ("pow_scalar_2", lambda a: a ** 2, [_n((2, 3), 0)]),
    ("pow_scalar_float", lambda a: a ** 2.5, [_u((2, 3), 0.5, 2.0, 0)]),
    ("pow_scalar_neg", lambda a: a ** -1.5, [_u((2, 3), 0.5, 2.0, 0)]),
    ("pow_scalar_one", lambda a: a ** 1, [_n((2, 3), 0)]),
    ("pow_scalar_zero", lambda a: a ** 0 * a, [_n((2, 3), 0)]),
    ("scalar_pow_tensor", lambda a: 2.5 ** a, [_n((2, 3), 0)]),
    ("neg", lambda a: -a, [_n((2, 3), 0)]),
    ("scalar_add_left", lambda a: 1.5 + a, [_n((2, 3), 0)]),
    ("scalar_add_right", lambda a: a + 1.5, [_n((2, 3), 0)]),
    ("scalar_sub_left", lambda a: 1.5 - a * a, [_n((2, 3), 0)]),
    ("scalar_sub_right", lambda a: a * a - 1.5, [_n((2, 3), 0)]),
    ("scalar_mul_left", lambda a: 3.0 * a * a, [_n((2, 3), 0)]),
    ("scalar_mul_right", lambda a: a * a * 3.0, [_n((2, 3), 0)]),
    ("scalar_div_left", lambda a: 2.0 / a, [_away_from_zero((2, 3), 0)]),
    ("scalar_div_right", lambda a: a * a / 2.0, [_n((2, 3), 0)]),
    ("maximum", gf.maximum, [_distinct((2, 3), 0), _distinct((2, 3), 1) + 0.1]),
    ("minimum", gf.minimum, [_distinct((2, 3), 0), _distinct((2, 3), 1) + 0.1]),
    ("maximum_bcast", gf.maximum, [_distinct((2, 3), 0), np.array([0.05])]),
    ("minimum_scalar", lambda a: gf.minimum(a, 0.05) * a, [_distinct((2, 3), 0)]),
    ("where", lambda a, b: gf.where(COND, a, b) * a, [_n((2, 3), 0), _n((2, 3), 1)]),
    ("where_bcast", lambda a, b: gf.where(COND, a, b), [_n((2, 3), 0), _n((3,), 1)]),
    ("where_scalar", lambda a: gf.where(COND, a * a, 0.0), [_n((2, 3), 0)]),
    ("exp", gf.exp, [_n((2, 3), 0)]),
    ("log", gf.log, [_u((2, 3), 0.3, 3.0, 0)]),
    ("sqrt", gf.sqrt, [_u((2, 3), 0.3, 3.0, 0)]),
    ("abs", lambda a: gf.abs(a) * a, [_away_from_zero((2, 3), 0)]),
    ("abs_method", lambda a: abs(a), [_away_from_zero((2, 3), 0)]),
    ("clip", lambda a: gf.clip(a, -0.5, 0.7) * a, [_away_from_zero((3, 4), 0, 0.1, 1.3)]),
    ("clip_lo", lambda a: a.clip(0.2) * a, [_away_from_zero((3, 4), 1, 0.3, 1.3)]),
    ("clip_hi", lambda a: a.clip(None, 0.2) * a, [_away_from_zero((3, 4), 2, 0.3, 1.3)]),
    # ---- matmul ------------------------------------------------------------------------------------
    ("matmul_1d_1d", gf.matmul, [_n((3,), 0), _n((3,), 1)]),
    ("matmul_1d_2d", gf.matmul, [_n((3,), 0), _n((3, 2), 1)]),
    ("matmul_2d_1d", gf.matmul, [_n((2, 3), 0), _n((3,), 1)]),
    ("matmul_2d_2d", lambda a, b: a @ b, [_n((2, 3), 0), _n((3, 4), 1)]),
    ("matmul_batched", lambda a, b: a @ b, [_n((2, 2, 3), 0), _n((2, 3, 2), 1)]),
    ("matmul_batch_bcast", lambda a, b: a @ b, [_n((2, 1, 2, 3), 0), _n((3, 3, 2), 1)]),
    ("matmul_batched_2d", lambda a, b: a @ b, [_n((2, 2, 3), 0), _n((3, 2), 1)]),
    ("matmul_1d_batched", lambda a, b: a @ b, [_n((3,), 0), _n((2, 3, 2), 1)]),
    ("matmul_batched_1d", lambda a, b: a @ b, [_n((2, 2, 3), 0), _n((3,), 1)]),
    # ---- reductions --------------------------------------------------------------------------------
    ("sum_all", lambda a: a.sum(), [_n((2, 3, 2), 0)]),
    ("sum_axis", lambda a: a.sum(1), [_n((2, 3, 2), 0)]),
    ("sum_neg_keep", lambda a: (a.sum(-1, keepdims=True) * a), [_n((2, 3, 2), 0)]),
    ("sum_tuple", lambda a: gf.sum(a, (0, 2)), [_n((2, 3, 2), 0)]),
    ("mean_all", lambda a: a.mean() * a, [_n((2, 3), 0)]),
    ("mean_tuple_keep", lambda a: gf.mean(a, (0, -1), keepdims=True), [_n((2, 3, 2), 0)]),
    ("max_all", lambda a: a.max(), [_distinct((2, 3, 2), 0)]),
    ("max_axis", lambda a: gf.max(a, 1).values, [_distinct((2, 3, 2), 0)]),
    ("max_dim_keep", lambda a: a.max(dim=-1, keepdim=True)[0], [_distinct((2, 3, 2), 0)]),
    ("amax_tuple_keep", lambda a: a.amax((0, 2), keepdims=True), [_distinct((2, 3, 2), 0)]),
    ("amin_tuple", lambda a: gf.amin(a, (0, 1)), [_distinct((2, 3, 2), 0)]),
    ("min_neg", lambda a: gf.min(a, -1).values, [_distinct((2, 3, 2), 0)]),
    ("min_all_keep", lambda a: a.min(None, keepdims=True), [_distinct((2, 3), 0)]),
    ("logsumexp_all", lambda a: a.logsumexp(), [_n((2, 3), 0)]),
    ("logsumexp_axis", lambda a: gf.logsumexp(a, 1), [_n((2, 3, 2), 0)]),
    ("logsumexp_tuple_keep", lambda a: a.logsumexp((0, -1), keepdims=True), [_n((2, 3, 2), 0)]),
    ("var_all", lambda a: a.var(), [_n((2, 3), 0)]),
    ("var_axis", lambda a: gf.var(a, 0), [_n((3, 2), 0)]),
    ("var_tuple_keep_correction", lambda a: a.var((0, 2), keepdim=True, correction=2), [_n((2, 3, 2), 0)]),
    ("var_biased", lambda a: a.var(1, unbiased=False), [_n((2, 3, 2), 0)]),
    ("std", lambda a: a.std(1), [_n((2, 3, 2), 0)]),
    # ---- shape -------------------------------------------------------------------------------------
    ("reshape_star", lambda a: a.reshape(3, 2) * a.reshape(3, 2), [_n((2, 3), 0)]),
    ("reshape_tuple_neg1", lambda a: gf.reshape(a, (-1,)) ** 2, [_n((2, 3), 0)]),
    ("view", lambda a: a.view(6, 1) ** 2, [_n((2, 3), 0)]),
    ("T", lambda a: a.T ** 2, [_n((2, 3, 2), 0)]),
    ("transpose_two_dims", lambda a: a.transpose(0, 2) ** 2, [_n((2, 3, 2), 0)]),
    ("permute", lambda a: a.permute(1, 2, 0) ** 2, [_n((2, 3, 2), 0)]),
    ("permute_tuple", lambda a: gf.permute(a, (2, 0, 1)) ** 2, [_n((2, 3, 2), 0)]),
    ("T", lambda a: a.T @ a, [_n((2, 3), 0)]),
    ("swapaxes", lambda a: a.swapaxes(0, -1) ** 2, [_n((2, 3, 2), 0)]),
    ("flatten", lambda a: a.flatten() ** 2, [_n((2, 3, 2), 0)]),
    ("flatten_start", lambda a: gf.flatten(a, 1) ** 2, [_n((2, 3, 2), 0)]),
    ("squeeze", lambda a: a.squeeze() ** 2, [_n((2, 1, 3), 0)]),
    ("squeeze_axis", lambda a: gf.squeeze(a, -2) ** 2, [_n((2, 1, 3), 0)]),
    ("unsqueeze", lambda a: a.unsqueeze(1) ** 2, [_n((2, 3), 0)]),
    ("unsqueeze_neg", lambda a: gf.unsqueeze(a, -1) ** 2, [_n((2, 3), 0)]),
    ("broadcast_to", lambda a: a.broadcast_to((2, 2, 3)) ** 2, [_n((2, 1), 0)]),
    ("gf_broadcast_to", lambda a: gf.broadcast_to(a, (3, 3)) ** 2, [_n((3,), 0)]),
    ("concatenate", lambda a, b: gf.concatenate([a, b * b, a], axis=1), [_n((2, 3), 0), _n((2, 2), 1)]),
    ("concatenate_neg", lambda a, b: gf.concatenate([a * a, b], axis=-2), [_n((2, 3), 0), _n((1, 3), 1)]),
    ("stack", lambda a, b: gf.stack([a, b * a]), [_n((2, 3), 0), _n((2, 3), 1)]),
    ("stack_neg", lambda a, b: gf.stack([a * a, b], axis=-1), [_n((2, 3), 0), _n((2, 3), 1)]),
    ("split_int", lambda a: tuple(p * p for p in a.split(2, axis=1)), [_n((2, 5), 0)]),
    ("split_list", lambda a: tuple(p * p for p in gf.split(a, [1, 3], axis=0)), [_n((4, 2), 0)]),
    # ---- indexing ----------------------------------------------------------------------------------
    ("index_int", lambda a: a[1] ** 2, [_n((3, 4), 0)]),
    ("index_neg_int", lambda a: a[-1, -2] * a, [_n((3, 4), 0)]),
    ("index_slice", lambda a: a[1:, :3] ** 2, [_n((3, 4), 0)]),
    ("index_step", lambda a: a[::2, 1::2] ** 2, [_n((3, 4), 0)]),
    ("index_neg_step", lambda a: a[::-1, -1:0:-2] ** 2, [_n((3, 4), 0)]),
    ("index_none_ellipsis", lambda a: a[None, ..., 1] ** 2, [_n((2, 3, 4), 0)]),
    ("index_ellipsis_mid", lambda a: a[0, ..., None] ** 2, [_n((2, 3, 4), 0)]),
    ("index_int_array", lambda a: a[[0, 2, 0, 0]] ** 2, [_n((3, 4), 0)]),
    ("index_int_array_tensor", lambda a: a[:, gf.tensor([1, 1, 3])] ** 2, [_n((3, 4), 0)]),
    ("index_two_arrays", lambda a: a[[0, 1, 0], [2, 2, 2]] ** 2, [_n((3, 4), 0)]),
    ("index_bool_mask", lambda a: a[MASK] ** 2, [_n((2, 3), 0)]),
    ("index_bool_rows", lambda a: a[np.array([True, False, True])] ** 2, [_n((3, 2), 0)]),
    # ---- nn.functional -----------------------------------------------------------------------------
    ("sigmoid", F.sigmoid, [_n((2, 3), 0)]),
    ("gf_sigmoid_method", lambda a: a.sigmoid(), [_n((2, 3), 0)]),
    ("tanh", F.tanh, [_n((2, 3), 0)]),
    ("relu", lambda a: F.relu(a) * a, [_away_from_zero((2, 3), 0)]),
    ("leaky_relu", lambda a: F.leaky_relu(a, 0.1) * a, [_away_from_zero((2, 3), 0)]),
    ("leaky_relu_default", F.leaky_relu, [_away_from_zero((2, 3), 0)]),
    ("gelu", F.gelu, [_n((2, 3), 0)]),
    ("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), [_n((2, 3), 0)]),
    ("softplus", F.softplus, [_n((2, 3), 0)]),
    ("softplus_beta", lambda a: F.softplus(a, beta=2.0), [_n((2, 3), 0)]),
    ("softplus_threshold", lambda a: F.softplus(a * 3, beta=1.5, threshold=2.0),
     [np.array([[-1.2, 0.1, 0.3], [0.9, 1.4, -0.2]])]),  # some beta*x above, some below
    ("softmax_last", F.softmax, [_n((2, 3), 0)]),
    ("softmax_axis0", lambda a: F.softmax(a, 0), [_n((2, 3), 0)]),
    ("softmax_mid", lambda a: gf.softmax(a, axis=1), [_n((2, 3, 2), 0)]),
    ("log_softmax_last", F.log_softmax, [_n((2, 3), 0)]),
    ("log_softmax_axis0", lambda a: F.log_softmax(a, 0), [_n((2, 3), 0)]),
    ("log_softmax_mid", lambda a: gf.log_softmax(a, axis=-2), [_n((2, 3, 2), 0)]),
    ("linear_1d", F.linear, [_n((3,), 0), _n((4, 3), 1), _n((4,), 2)]),
    ("linear_2d", F.linear, [_n((2, 3), 0), _n((4, 3), 1), _n((4,), 2)]),
    ("linear_3d", F.linear, [_n((2, 2, 3), 0), _n((4, 3), 1), _n((4,), 2)]),
    ("linear_nobias_1d", F.linear, [_n((3,), 0), _n((4, 3), 1)]),
    ("linear_nobias_2d", F.linear, [_n((2, 3), 0), _n((4, 3), 1)]),
    ("linear_nobias_3d", F.linear, [_n((2, 2, 3), 0), _n((4, 3), 1)]),
    ("linear_then_tanh", lambda x, w, b: F.tanh(F.linear(x, w, b)), [_n((2, 3), 0), _n((4, 3), 1), _n((4,), 2)]),
    ("mse_mean", lambda a, b: F.mse_loss(a, b), [_n((2, 3), 0), _n((2, 3), 1)]),
    ("mse_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"), [_n((2, 3), 0), _n((2, 3), 1)]),
    ("mse_none", lambda a, b: F.mse_loss(a, b, reduction="none"), [_n((2, 3), 0), _n((2, 3), 1)]),
    ("ce_labels_mean", lambda a: F.cross_entropy(a, LABELS), [_n((3, 3), 0)]),
    ("ce_labels_sum", lambda a: F.cross_entropy(a, LABELS, reduction="sum"), [_n((3, 3), 0)]),
    ("ce_labels_none", lambda a: F.cross_entropy(a, LABELS, reduction="none"), [_n((3, 3), 0)]),
    ("ce_1d_logits", lambda a: F.cross_entropy(a, gf.tensor(1)), [_n((3,), 0)]),
    ("ce_probs_mean", lambda a: F.cross_entropy(a, PROBS), [_n((3, 3), 0)]),
    ("ce_probs_none", lambda a: F.cross_entropy(a, PROBS, reduction="none"), [_n((3, 3), 0)]),
    ("ce_probs_grad_target", lambda a, t: F.cross_entropy(a, t, reduction="sum"), [_n((3, 3), 0), PROBS.numpy()]),
    ("bce_logits_mean", lambda a: F.binary_cross_entropy_with_logits(a, PROBS), [_n((3, 3), 0)]),
    ("bce_logits_sum", lambda a, t: F.binary_cross_entropy_with_logits(a, t, reduction="sum"),
     [_n((3, 3), 0), PROBS.numpy()]),
    ("bce_logits_none", lambda a: F.binary_cross_entropy_with_logits(a, PROBS, reduction="none"), [_n((3, 3), 0)]),
    # ---- casts -------------------------------------------------------------------------------------
    ("to_float64_roundtrip", lambda a: (a.to(gf.float64) * a).double(), [_n((2, 3), 0)]),
]


def _inputs(arrays):
    return tuple(gf.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays)


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(name, fn, arrays):
    assert gradcheck(fn, _inputs(arrays))


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_gradgradcheck(name, fn, arrays):
    assert gradgradcheck(fn, _inputs(arrays)) in (True, False)  # raises AssertionError on mismatch


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_no_grad_forward_matches_recorded(name, fn, arrays):
    """Forward values do not depend on requires_grad (recording changes nothing)."""
    xs = _inputs(arrays)
    with gf.no_grad():
        plain = fn(*xs)
    rec = fn(*xs)
    plain = plain if isinstance(plain, tuple) else (plain,)
    rec = rec if isinstance(rec, tuple) else (rec,)
    for p, r in zip(plain, rec):
        assert not p.requires_grad
        np.testing.assert_array_equal(p.numpy(), r.detach().numpy())


# ---- ties and kinks: the defined subgradients ------------------------------------------------------
def test_maximum_minimum_ties_split_evenly():
    a = gf.tensor([1.0, 2.0, 2.0], dtype=gf.float64, requires_grad=True)
    b = gf.tensor([1.0, 1.0, 3.0], dtype=gf.float64, requires_grad=True)
    gf.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 0.0, 1.0])
    a.zero_grad(), b.zero_grad()
    gf.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0, 0.0])


def test_maximum_with_scalar_tie():
    a = gf.tensor([0.0, 1.0, -1.0], dtype=gf.float64, requires_grad=True)
    gf.maximum(a, 0.0).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 1.0, 0.0])


@pytest.mark.parametrize("op", ["max", "min"])
def test_amax_amin_and_full_reductions_split_ties_evenly(op):
    x = gf.tensor([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], dtype=gf.float64, requires_grad=True)
    if op == "min":
        x_used = -x
    else:
        x_used = x
    getattr(x_used, "a" + op)(1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy() * (1 if op == "max" else -1),
                               [[0.5, 0.0, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.zero_grad()
    getattr(x, op)().backward()
    expected = np.zeros((2, 3))
    if op == "max":
        expected[0, [0, 2]] = 0.5
    else:
        expected[0, 1] = 1.0
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_relu_abs_clip_subgradients_at_kinks():
    x = gf.tensor([-1.0, 0.0, 2.0], dtype=gf.float64, requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])
    x.zero_grad()
    gf.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1.0, 0.0, 1.0])
    x.zero_grad()
    gf.clip(x, 0.0, 2.0).sum().backward()  # inclusive bounds pass the gradient (as PyTorch)
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0])


def test_repeated_indices_accumulate():
    x = gf.tensor(np.arange(4.0), requires_grad=True)
    x[[0, 2, 0, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0, 0.0])
    x.zero_grad()
    x[gf.tensor([1, 1])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0, 0.0, 0.0])


def test_boolean_mask_grad():
    x = gf.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    m = x > 2.5
    (x[m] * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 0], [2, 2, 2]])


def test_pow_zero_base_and_zero_exponent():
    x = gf.tensor([0.0, 1.0], dtype=gf.float64, requires_grad=True)
    y = gf.tensor([2.0, 2.0], dtype=gf.float64, requires_grad=True)
    (x ** y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0])
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0])  # 0^y log 0 taken as 0
    x.zero_grad()
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


def test_comparisons_and_argmax_not_differentiable():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = gf.tensor([3.0, 2.0, 1.0], requires_grad=True)
    for r in (x < y, x <= y, x > y, x >= y, x == y, x != y, x > 1.5, 2.0 < x):
        assert r.dtype == gf.bool_
        assert not r.requires_grad and r.grad_fn is None
    assert (x < y).tolist() == [True, False, False]
    assert (x == y).tolist() == [False, True, False]
    assert (2.0 < x).tolist() == [False, False, True]
    a = x.argmax()
    assert a.item() == 2 and a.dtype == gf.int64 and not a.requires_grad
    m = gf.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    assert gf.argmax(m, axis=-1).tolist() == [1, 0]
    assert m.argmax(0, keepdims=True).shape == (1, 2)


def test_where_no_grad_to_condition_and_values():
    x = gf.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = gf.where(x > 0, x, x * 10)
    assert y.tolist() == [1.0, -20.0, 3.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 10.0, 1.0]


def test_third_derivative_pow_and_sigmoid():
    x = gf.tensor([0.7, -0.3], dtype=gf.float64, requires_grad=True)
    (g1,) = gf.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = gf.grad(g1.sum(), x, create_graph=True)
    (g3,) = gf.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), 24 * x.detach().numpy())
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    xv = x.detach().numpy()
    (g1,) = gf.grad(F.sigmoid(x).sum(), x, create_graph=True)
    (g2,) = gf.grad(g1.sum(), x, create_graph=True)
    (g3,) = gf.grad(g2.sum(), x)
    sv = s(xv)
    expected = sv * (1 - sv) * (1 - 6 * sv + 6 * sv * sv)
    np.testing.assert_allclose(g3.numpy(), expected, rtol=1e-10)


def _fused_ops():
    from gradflow.ops import activation, arith  # noqa: F401 - defines the FusedOps
    from gradflow.ops._fused import FusedOp

    todo, ops = list(FusedOp.__subclasses__()), []
    while todo:
        op = todo.pop()
        ops.append(op)
        todo += op.__subclasses__()
    return ops


def test_fused_ops_name_kernels_every_backend_has():
    """A FusedOp runs be.<kernel> and be.<kernel>_backward: every backend must define both (the
    CUDA module is read as source, since it imports CuPy)."""
    import ast
    import pathlib

    from gradflow.backend import cpu, reference

    src = pathlib.Path(reference.__file__).with_name("cuda.py").read_text()
    cuda_names = set()
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef):
            cuda_names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                cuda_names |= {e.id for e in ast.walk(t) if isinstance(e, ast.Name)}
    ops = _fused_ops()
    assert len(ops) >= 13
    for op in ops:
        assert op.Backward.__name__ == op.__name__ + "Backward" and op.Backward.op is op
        for name in (op.kernel, op.kernel + "_backward"):
            assert callable(getattr(reference, name, None)), (op.__name__, name, "reference")
            assert callable(getattr(cpu, name, None)), (op.__name__, name, "cpu")
            assert name in cuda_names, (op.__name__, name, "cuda")
