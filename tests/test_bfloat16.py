"""bfloat16 (ml_dtypes' numpy type as storage) and float16: float32 compute rounded once per op.

Against torch.bfloat16 and torch.float16 on the CPU (skipped, visibly, without torch): every op
of the float64 comparison tables (test_torch_ops, test_torch_nn) run in each 16-bit dtype,
values and gradients, each measured against the exact result of the same 16-bit inputs; the
promotion table; training; gf.jit's replay and checkpoints in both.
Without torch: construction, conversions, printing, checkpoints, the optimizers, gf.jit,
float16 on CUDA and gradflow without ml_dtypes installed (bfloat16 on CUDA:
test_bfloat16_cuda.py).
"""
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import gradflow as gf
from conftest import python_command, requires_cuda

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
if torch is not None:  # (both modules skip themselves at import without torch)
    import test_torch_nn
    import test_torch_ops

bf16 = getattr(gf, "bfloat16", None)
needs_ml_dtypes = pytest.mark.skipif(bf16 is None, reason="ml_dtypes is not installed (gf.bfloat16 "
                                     "needs it; see the test that runs without it)")


# The 16-bit float dtypes: (name, significand bits after the point, smallest normal exponent).
_LOWP = [("bfloat16", 7, -126), ("float16", 10, -14)]
_FORMAT = {name: (mant, emin) for name, mant, emin in _LOWP}


def lowp_params(*marks):
    """Parameters naming each 16-bit dtype (bfloat16 needing ml_dtypes), with ``marks``."""
    return [pytest.param(n, marks=(needs_ml_dtypes,) * (n == "bfloat16") + marks, id=n)
            for n, _, _ in _LOWP]


def ulp(x, dtype="bfloat16"):
    """The spacing of ``dtype`` numbers at |x| (normal numbers; subnormals take the smallest)."""
    mant, emin = _FORMAT[str(dtype)]
    ax = np.maximum(np.abs(np.asarray(x, np.float64)), 2.0 ** emin)
    return 2.0 ** (np.floor(np.log2(ax)) - mant)


def errors_in_ulps(got, exact, dtype="bfloat16"):
    """|got - exact| in ``dtype`` ulps of ``exact``, an ulp being at least 2^-6 of the largest
    |exact| (where a sum cancels, the result's own ulp is no measure of the error). The same
    infinity, or NaN for NaN, is no error; anything else beside a non-finite value is infinite."""
    exact, got = np.asarray(exact, np.float64), np.asarray(got, np.float64)
    finite = np.isfinite(exact)
    scale = np.abs(exact[finite]).max() if finite.any() else 1.0
    unit = np.maximum(ulp(np.where(finite, exact, 1.0), dtype), ulp(scale, dtype) * 2.0 ** -6)
    err = np.abs(np.where(finite, got, 0.0) - np.where(finite, exact, 0.0)) / unit
    same = (got == exact) | (np.isnan(got) & np.isnan(exact))
    return np.where(finite & np.isfinite(got), err, np.where(same, 0.0, np.inf))


def values(t):
    """A gradflow or torch tensor's values as float64."""
    if torch is not None and isinstance(t, torch.Tensor):
        return t.detach().double().numpy()
    return t.detach().numpy().astype(np.float64)


def bits(t):
    """The bit patterns of a 16-bit gradflow (on any device) or torch tensor."""
    if torch is not None and isinstance(t, torch.Tensor):
        return t.detach().view(torch.int16).numpy().view(np.uint16)
    return t.detach().cpu().numpy().view(np.uint16)


# ---- every op against torch, in bfloat16 --------------------------------------------------------
# Cases left out, with the reason: their constants are float64 arrays built inside the case
# (class weights, targets, masks), and a bfloat16 input with a float64 tensor is a float64
# computation in both libraries or an error in torch's losses (the losses are tested below with
# bfloat16 targets). torch has no bfloat16 cdist.
_FLOAT64_CONSTANTS = {"ce_weight", "ce_smooth_weight_ignore", "nll", "huber", "smooth_l1", "l1",
                      "bce", "bce_weight", "bce_logits_pos_weight", "kl_div", "kl_div_log_target",
                      "ce_probs_smooth_weight", "ce_probs_nd", "sdpa_float_mask"}
_TORCH_LACKS = {"cdist", "cdist_p1"}
# torch computes these as several bfloat16 ops (cosine_similarity, attention with a causal
# mask), rounding in between: gradflow's single rounding is nearer the exact result (checked)
# but may be further than an ulp from torch's.
_TORCH_ROUNDS_INSIDE = {"cosine_similarity", "sdpa_causal", "kl_div"}
# Likewise torch's float16 batch_norm and tanhshrink (its results up to 2.4 ulps from exact,
# gradflow's within half an ulp).
_TORCH_ROUNDS_INSIDE_FLOAT16 = {"batch_norm_train", "batch_norm_3d", "shrinks"}
# Gradients that are sums of two cancelling contributions, each rounded (in both libraries)
# before the engine adds them: one ulp in a contribution is several of the sum's. Extra ulps
# allowed beyond torch's error, per (case, dtype).
_GRAD_CANCELS = {("glu", "float16"): 6}

_LABELS = np.array([2, 0, 1, 2])
_LOSS_CASES = [
    ("mse_loss", lambda L, x, y: L.mse_loss(x, y), [np.linspace(-2, 2, 12).reshape(4, 3),
                                                    np.linspace(1, -1, 12).reshape(4, 3)]),
    ("l1_loss", lambda L, x, y: L.l1_loss(x, y), [np.linspace(-2, 2, 12).reshape(4, 3),
                                                  np.cos(np.arange(12.0)).reshape(4, 3)]),
    ("huber_loss", lambda L, x, y: L.huber_loss(x, y, delta=0.7),
     [np.linspace(-2, 2, 12).reshape(4, 3), np.cos(np.arange(12.0)).reshape(4, 3)]),
    ("smooth_l1_loss", lambda L, x, y: L.smooth_l1_loss(x, y, beta=0.5),
     [np.linspace(-2, 2, 12).reshape(4, 3), np.cos(np.arange(12.0)).reshape(4, 3)]),
    ("bce", lambda L, x, y: L.binary_cross_entropy(L.sigmoid(x), y),
     [np.linspace(-2, 2, 12).reshape(4, 3), np.linspace(0.05, 0.95, 12).reshape(4, 3)]),
    ("bce_with_logits",
     lambda L, x, y: L.binary_cross_entropy_with_logits(x, y, pos_weight=_w3(L, x)),
     [np.linspace(-2, 2, 12).reshape(4, 3), np.linspace(0.05, 0.95, 12).reshape(4, 3)]),
    ("kl_div",
     lambda L, x, y: L.kl_div(L.log_softmax(x, 1), L.softmax(y, 1), reduction="batchmean"),
     [np.sin(np.arange(12.0)).reshape(4, 3), np.cos(np.arange(12.0)).reshape(4, 3)]),
    ("cross_entropy_weight",
     lambda L, x: L.cross_entropy(x, _labels(L), weight=_w3(L, x), label_smoothing=0.1),
     [np.sin(np.arange(12.0)).reshape(4, 3) * 2]),
    ("nll_loss", lambda L, x: L.nll_loss(L.log_softmax(x, 1), _labels(L)),
     [np.sin(np.arange(12.0)).reshape(4, 3) * 2]),
    ("linear", lambda L, x, w, b: L.linear(x, w, b),
     [np.sin(np.arange(24.0)).reshape(4, 6), np.cos(np.arange(18.0)).reshape(3, 6),
      np.ones(3) * 0.1]),
]


def _labels(L):
    if L is torch.nn.functional:
        return torch.tensor(_LABELS)
    return gf.tensor(_LABELS, device="cuda" if L is test_torch_nn._ON_CUDA else "cpu")


def _w3(L, like):
    """Class weights (constants, no gradient) in ``like``'s dtype, on its device."""
    w = np.array([0.2, 1.0, 2.5])
    if L is torch.nn.functional:
        return torch.tensor(w).to(like.dtype)
    return gf.tensor(w).to(like.device, like.dtype)


def _cases():
    if torch is None:
        return [pytest.param(None, None, None, None, marks=needs_torch, id="torch-missing")]
    ops = [(n, f, a, False) for n, f, a in test_torch_ops.CASES if n not in _TORCH_LACKS]
    nn_ = [(n, f, a, True) for n, f, a in test_torch_nn.CASES if n not in _FLOAT64_CONSTANTS]
    losses = [(n, f, a, True) for n, f, a in _LOSS_CASES]
    return [pytest.param(*c, id=c[0]) for c in ops + nn_ + losses]


def _inputs(lib, arrays, dtype):
    out = []
    for a in arrays:
        t = lib.tensor(a)
        if np.asarray(a).dtype.kind == "f":
            t = t.to(dtype).requires_grad_(True)
        out.append(t)
    return out


@needs_torch
@pytest.mark.parametrize("lowp", lowp_params())
@pytest.mark.parametrize("name,fn,arrays,functional", _cases())
def test_ops_in_16_bits_match_torch(name, fn, arrays, functional, lowp):
    """Each op on bfloat16 (float16) tensors gives a result of that dtype (or torch's dtype) no
    further from the exact result of those inputs than torch's result plus one ulp, and within
    one ulp of torch's; gradients of a weighted sum likewise within two ulps of torch's error."""
    G, T = (gf.nn.functional, torch.nn.functional) if functional else (gf, torch)
    low, tlow = getattr(gf, lowp), getattr(torch, lowp)
    # the inputs rounded to the dtype once, so that all three runs start from the same values
    arrays = [np.asarray(a).astype(low).astype(np.float64) if np.asarray(a).dtype.kind == "f"
              else a for a in arrays]
    gs, ts, xs = (_inputs(gf, arrays, low), _inputs(torch, arrays, tlow),
                  _inputs(gf, arrays, gf.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's warnings about its own deprecated names)
        g, t, x = fn(G, *gs), fn(T, *ts), fn(G, *xs)
    assert str(g.dtype) == str(t.dtype).replace("torch.", "")
    assert tuple(g.shape) == tuple(t.shape)
    exact = values(x)
    if g.dtype != low:  # comparisons, indices: exact; float64 results (float_power): to 1e-15
        if gf.is_floating_point(g):
            np.testing.assert_allclose(values(g), values(t), rtol=1e-15)
        else:
            np.testing.assert_array_equal(values(g), values(t))
        return
    eg, et = errors_in_ulps(values(g), exact, low), errors_in_ulps(values(t), exact, low)
    assert (eg <= et + 1).all(), f"{name}: {eg.max():.2f} ulps from exact, torch {et.max():.2f}"
    if name not in _TORCH_ROUNDS_INSIDE and not (lowp == "float16" and
                                                 name in _TORCH_ROUNDS_INSIDE_FLOAT16):
        direct = errors_in_ulps(values(g), values(t), low)
        assert direct.max() <= 1, f"{name}: {direct.max():.2f} ulps from torch"
    if not g.requires_grad:
        return
    w = np.random.default_rng(7).standard_normal(tuple(t.shape)).astype(low)
    (g * gf.tensor(w)).sum().backward()
    (t * torch.tensor(w.astype(np.float32)).to(tlow)).sum().backward()
    (x * gf.tensor(w.astype(np.float64))).sum().backward()
    for a, b, c in zip(gs, ts, xs):
        if not a.is_floating_point():
            continue
        assert (a.grad is None) == (b.grad is None)
        if a.grad is None:
            continue
        assert a.grad.dtype == low
        exact = values(c.grad)
        eg, et = (errors_in_ulps(values(a.grad), exact, low),
                  errors_in_ulps(values(b.grad), exact, low))
        assert (eg <= et + _GRAD_CANCELS.get((name, lowp), 2)).all(), \
            f"{name} grad: {eg.max():.2f} ulps from exact, torch {et.max():.2f}"


@needs_torch
@pytest.mark.parametrize("lowp", lowp_params())
def test_single_ops_round_once_as_torch(lowp):
    """Arithmetic, matmul and reductions are bitwise torch's: float32 compute, one rounding."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    m = rng.standard_normal((7, 3))
    ga, gb, gm = (gf.tensor(v).to(getattr(gf, lowp)) for v in (a, b, m))
    ta, tb, tm = (torch.tensor(v).to(getattr(torch, lowp)) for v in (a, b, m))
    for f in [lambda x, y, w: x + y, lambda x, y, w: x * y, lambda x, y, w: x / y,
              lambda x, y, w: x - 2.5 * y, lambda x, y, w: x @ w, lambda x, y, w: x.sum(),
              lambda x, y, w: x.sum(1), lambda x, y, w: x.mean(0), lambda x, y, w: x.exp(),
              lambda x, y, w: x.softmax(1), lambda x, y, w: (x * 1000).sum(),
              lambda x, y, w: x.amax(1), lambda x, y, w: x.cumsum(1),
              lambda x, y, w: x.clamp(-0.5, 0.5)]:
        np.testing.assert_array_equal(bits(f(ga, gb, gm)), bits(f(ta, tb, tm)))


@needs_ml_dtypes
@needs_torch
def test_casts_round_to_nearest_even_as_torch():
    special = np.array([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8,
                        3.4e38, -3.4e38, 1e-40, -1e-40, np.inf, -np.inf, 65504.0], np.float32)
    x = np.concatenate([special, np.random.default_rng(1).standard_normal(1000).astype(np.float32)])
    np.testing.assert_array_equal(bits(gf.tensor(x).bfloat16()), bits(torch.tensor(x).bfloat16()))
    np.testing.assert_array_equal(values(gf.tensor(x).bfloat16().float()),
                                  values(torch.tensor(x).bfloat16().float()))
    assert gf.tensor([np.nan]).bfloat16().isnan().item()
    # to integer dtypes, truncation toward zero as torch
    y = np.array([-2.7, -0.5, 0.5, 2.5, 3.9])
    assert gf.tensor(y).bfloat16().long().tolist() == torch.tensor(y).bfloat16().long().tolist()


_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
           "float64"]


def _gf_dtype(name):
    return getattr(gf, name)


@needs_ml_dtypes
@needs_torch
@pytest.mark.parametrize("lowp", lowp_params())
def test_promotion_table_matches_torch(lowp):
    """promote_types over every pair of dtypes; the dtypes that ops on a bfloat16 (float16)
    tensor and any other tensor (with dims, 0-d) or Python number give."""
    for a in _DTYPES:
        for b in _DTYPES:
            want = torch.promote_types(getattr(torch, a), getattr(torch, b))
            want = str(want).replace("torch.", "")
            assert str(gf.promote_types(_gf_dtype(a), _gf_dtype(b))) == want, (a, b)
    low = getattr(gf, lowp)
    x, tx = gf.ones(3, dtype=low), torch.ones(3, dtype=getattr(torch, lowp))
    for b in _DTYPES:
        for shape in [(3,), ()]:
            y, ty = gf.ones(shape, dtype=_gf_dtype(b)), torch.ones(shape, dtype=getattr(torch, b))
            for f in [lambda p, q: p + q, lambda p, q: q * p, lambda p, q: p / q,
                      lambda p, q: (gf if isinstance(p, gf.Tensor) else torch).where(p > 0, p, q)]:
                assert str(f(x, y).dtype) == str(f(tx, ty).dtype).replace("torch.", ""), (b, shape)
    for s in [2, 2.5, True]:
        assert str((x + s).dtype) == str((tx + s).dtype).replace("torch.", "")
        assert str((s * x).dtype) == str((s * tx).dtype).replace("torch.", "")
    # a 0-d 16-bit tensor with an integer tensor with dims
    assert (gf.ones((), dtype=low) + gf.ones(3, dtype=gf.int32)).dtype == low
    assert gf.result_type(x, 1.0) == low and gf.can_cast(bf16, gf.float16)


# ---- without torch ----------------------------------------------------------------------------
@needs_ml_dtypes
def test_dtype_and_construction():
    assert gf.bfloat16 is gf.dtypes.bfloat16 and gf.bfloat16.itemsize == 2
    for make in [lambda: gf.zeros(2, dtype="bfloat16"), lambda: gf.ones(2, dtype=bf16),
                 lambda: gf.tensor([1.0, 2.0], dtype="torch.bfloat16"),
                 lambda: gf.full((2,), 1.5, dtype=bf16),
                 lambda: gf.randn(2, dtype=bf16), lambda: gf.rand(2, dtype=bf16),
                 lambda: gf.arange(2, dtype=bf16), lambda: gf.linspace(0, 1, 2, dtype=bf16),
                 lambda: gf.eye(2, dtype=bf16)[0], lambda: gf.tensor([1.0, 2.0]).bfloat16(),
                 lambda: gf.tensor([1, 2]).to(bf16),
                 lambda: gf.tensor([1.0, 2.0]).to(dtype="bfloat16"),
                 lambda: gf.zeros_like(gf.ones(2, dtype=bf16)), lambda: gf.empty(2, dtype=bf16)]:
        t = make()
        assert t.dtype == bf16 and t.shape == (2,) and t.array.dtype == bf16
    t = gf.tensor([1.5, -2.25], dtype=bf16)
    assert t.element_size() == 2 and t.is_floating_point() and t.type() == "gradflow.BFloat16Tensor"
    assert t.tolist() == [1.5, -2.25] and t[0].item() == 1.5 and isinstance(t[0].item(), float)
    assert f"{t[1]:.2f}" == "-2.25" and float(t[1]) == -2.25
    assert repr(t) == "tensor([ 1.5 , -2.25], dtype=bfloat16)"
    assert "requires_grad=True" in repr(t.requires_grad_(True))
    assert gf.tensor(1.0 + 2 ** -9, dtype=bf16).item() == 1.0  # rounded to 8 significant bits
    a = np.array([1.0, 3.0], dtype=bf16)
    shared = gf.from_numpy(a)
    shared.array[0] = 5.0
    assert a[0] == 5.0 and shared.numpy() is a
    assert gf.tensor(a).dtype == bf16 and gf.as_tensor(a).array is a
    fi = gf.finfo(bf16)
    assert fi.bits == 16 and fi.eps == 2.0 ** -7 and float(fi.max) == 3.3895313892515355e38
    assert float(fi.tiny) == 2.0 ** -126 and gf.finfo(gf.float32).eps == np.finfo(np.float32).eps
    with pytest.raises(TypeError, match="floating-point"):
        gf.finfo(gf.int64)


@pytest.mark.parametrize("lowp", lowp_params())
def test_ops_keep_16_bits_and_compute_in_float32(lowp):
    low, (mant, _) = getattr(gf, lowp), _FORMAT[lowp]
    h = 2.0 ** -(mant + 1)  # half an ulp of 1
    x = gf.tensor([1.0, h, h], dtype=low)
    # in 16-bit arithmetic, 1 + h + h is 1 (each sum rounds back to even); float32 accumulation
    # gives 1 + 2h, a number of the dtype
    assert x.sum().dtype == low and x.sum().item() == 1.0 + 2 * h
    assert x.mean().item() == np.float32((1.0 + 2 * h) / 3).astype(low).astype(float)
    m = gf.ones(1, 3, dtype=low) @ x.reshape(3, 1)
    assert m.dtype == low and m.item() == 1.0 + 2 * h
    for f in [gf.exp, gf.relu, gf.sigmoid, lambda t: t.softmax(0), lambda t: t.logsumexp(0)]:
        assert f(x).dtype == low
        np.testing.assert_array_equal(f(x).numpy(), f(x.float()).numpy().astype(low))
    y = x * 3
    assert y.dtype == low and (x > 0.5).dtype == gf.bool_ and x.argmax().dtype == gf.int64
    assert (x + gf.ones(3, dtype=gf.float32)).dtype == gf.float32
    other = gf.float16 if lowp == "bfloat16" else bf16
    if other is not None:
        assert (x + gf.ones(3, dtype=other)).dtype == gf.float32
    assert (x + gf.ones(3, dtype=gf.int64)).dtype == low and (x + 1.5).dtype == low
    assert x.reshape(3, 1).array.base is not None  # views share memory
    v = x.view(3, 1)
    v[0, 0] = 4.0
    assert x[0].item() == 4.0
    x += 1
    assert x.dtype == low and x[0].item() == 5.0
    assert gf.cat([x, x]).dtype == low and gf.stack([x, x]).dtype == low


@pytest.mark.parametrize("lowp", lowp_params())
def test_autograd_and_training(lowp):
    low = getattr(gf, lowp)
    gf.manual_seed(0)
    model = gf.nn.Sequential(gf.nn.Linear(4, 8), gf.nn.ReLU(), gf.nn.Linear(8, 3)).to(low)
    assert all(p.dtype == low for p in model.parameters())
    assert model.to(gf.float32)[0].weight.dtype == gf.float32
    model.to(low)
    x, y = gf.randn(16, 4).to(low), gf.randint(0, 3, (16,))
    ps = list(model.parameters())
    for opt in [gf.optim.SGD(ps, lr=0.1, momentum=0.9), gf.optim.Adam(ps, lr=1e-2),
                gf.optim.AdamW(ps, lr=1e-2), gf.optim.RMSprop(ps, lr=1e-2),
                gf.optim.Adagrad(ps, lr=1e-2)]:
        losses = []
        for _ in range(8):
            loss = gf.nn.functional.cross_entropy(model(x), y)
            assert loss.dtype == low
            opt.zero_grad()
            loss.backward()
            assert all(p.grad.dtype == low for p in model.parameters())
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0], (type(opt).__name__, losses)
        state = opt.state[model[0].weight]
        assert all(v.dtype == low for v in state.values() if hasattr(v, "dtype"))
    w = gf.tensor([0.5, -1.5], dtype=low, requires_grad=True)
    (w * w).sum().backward()
    assert w.grad.dtype == low and w.grad.tolist() == [1.0, -3.0]
    # a float32 leaf cast to 16 bits gets a float32 gradient
    u = gf.tensor([0.5, 2.0], requires_grad=True)
    (u.to(low) ** 2).sum().backward()
    assert u.grad.dtype == gf.float32 and u.grad.tolist() == [1.0, 4.0]


@needs_torch
@pytest.mark.parametrize("lowp", lowp_params())
@pytest.mark.parametrize("optimizer,kw,scale,tol", [("SGD", {"lr": 0.1}, 1, 2),
                                                   ("Adam", {"lr": 1e-2}, 1024, 4)])
def test_training_matches_torch(lowp, optimizer, kw, scale, tol):
    """A 16-bit MLP trained three steps with SGD (Adam) from the same start: torch's losses and
    parameters, to ``tol`` ulps (an ulp of difference in a gradient moves the next step's
    result; torch updates Adam's state in several 16-bit ops, gradflow in one). Adam's loss is
    scaled, as 16-bit training does, so that its squared gradients do not underflow float16,
    where both libraries' updates become noise."""
    low, tlow = getattr(gf, lowp), getattr(torch, lowp)
    gf.manual_seed(0)
    model = gf.nn.Sequential(gf.nn.Linear(4, 8), gf.nn.Tanh(), gf.nn.Linear(8, 3)).to(low)
    tnn = torch.nn
    tmodel = tnn.Sequential(tnn.Linear(4, 8), tnn.Tanh(), tnn.Linear(8, 3)).to(tlow)
    with torch.no_grad():
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            tp.copy_(torch.from_numpy(p.detach().numpy().astype(np.float32)))
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(low)
    y = np.random.default_rng(1).integers(0, 3, 16)
    opt = getattr(gf.optim, optimizer)(model.parameters(), **kw)
    topt = getattr(torch.optim, optimizer)(tmodel.parameters(), **kw)
    for _ in range(3):
        loss = gf.nn.functional.cross_entropy(model(gf.tensor(x)), gf.tensor(y))
        tx = torch.tensor(x.astype(np.float32)).to(tlow)
        tloss = torch.nn.functional.cross_entropy(tmodel(tx), torch.tensor(y))
        assert loss.dtype == low and errors_in_ulps(loss.item(), tloss.item(), low) <= tol
        opt.zero_grad(), topt.zero_grad()
        (loss * scale).backward(), (tloss * scale).backward()
        opt.step(), topt.step()
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        assert p.dtype == low and errors_in_ulps(values(p), values(tp), low).max() <= tol


@pytest.mark.parametrize("lowp", lowp_params())
def test_checkpoints_round_trip(tmp_path, lowp):
    low = getattr(gf, lowp)
    gf.manual_seed(0)
    model = gf.nn.Linear(3, 2).to(low)
    opt = gf.optim.Adam(model.parameters(), lr=0.1)
    model(gf.randn(4, 3).to(low)).sum().backward()
    opt.step()
    gf.save({"model": model.state_dict(), "opt": opt.state_dict(), "raw": np.ones(2, low)},
            tmp_path / "ck.npz")
    back = gf.load(tmp_path / "ck.npz")
    assert back["raw"].dtype == low
    other = gf.nn.Linear(3, 2).to(low)
    other.load_state_dict(back["model"])
    np.testing.assert_array_equal(bits(other.weight), bits(model.weight))
    assert back["opt"]["state"][0]["exp_avg"].dtype == low
    import pickle
    t = pickle.loads(pickle.dumps(model.weight.detach()))
    assert t.dtype == low and np.array_equal(bits(t), bits(model.weight))


@pytest.mark.parametrize("lowp", lowp_params())
def test_jit_replays_16_bits_bitwise(lowp):
    check_jit_replays_bitwise(getattr(gf, lowp))


def check_jit_replays_bitwise(low, device="cpu"):
    """A training step in dtype ``low`` on ``device``, replayed by gf.jit, bitwise as eager."""
    def run(jitted):
        gf.manual_seed(0)
        model = gf.nn.Sequential(gf.nn.Linear(4, 8), gf.nn.GELU(), gf.nn.Linear(8, 3))
        model.to(device).to(low)
        opt = gf.optim.Adam(model.parameters(), lr=1e-2)

        def step(x, y):
            loss = gf.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        if jitted:
            step = gf.jit(step, strict=True)
        x = gf.randn(8, 4, device=device).to(low)
        y = gf.randint(0, 3, (8,), device=device)
        losses = [bits(step(x, y)).item() for _ in range(4)]
        return losses, [bits(p) for p in model.parameters()], step

    eager, (jl, jp, step) = run(False), run(True)
    assert eager[0] == jl
    for a, b in zip(eager[1], jp):
        np.testing.assert_array_equal(a, b)
    assert any(p != "eager" for variants in step._plans.values() for p in variants)


@requires_cuda
def test_cuda_float16_computes_in_float32_and_rounds_once():
    """On a CUDA device too, float16 ops are the float32 ones rounded once (one rule for every
    device), gradients and optimizer state stay float16 and on the device."""
    x = gf.tensor([[0.5, -1.25, 3.0], [2.0, 0.1, -0.7]], device="cuda").half().requires_grad_()
    F = gf.nn.functional
    for f in [gf.exp, gf.relu, gf.sigmoid, gf.tanh, F.gelu, lambda t: t.softmax(1),
              lambda t: t.log_softmax(1), lambda t: t.logsumexp(1), lambda t: t.sum(),
              lambda t: t @ t.T, lambda t: F.layer_norm(t, (3,)), lambda t: t * 2.5]:
        y = f(x)
        assert y.dtype == gf.float16 and y.device == "cuda:0"
        np.testing.assert_array_equal(y.detach().cpu().numpy(),
                                      f(x.detach().float()).half().cpu().numpy())
        y.sum().backward()
        assert x.grad.dtype == gf.float16 and x.grad.device == "cuda:0"
        x.grad = None
    assert (x + gf.ones(3, device="cuda")).dtype == gf.float32
    model = gf.nn.Linear(3, 2).to("cuda").half()
    opt = gf.optim.Adam(model.parameters(), lr=1e-2)
    F.cross_entropy(model(x.detach()), gf.tensor([0, 1], device="cuda")).backward()
    opt.step()
    assert model.weight.dtype == gf.float16 and model.weight.device == "cuda:0"
    assert all(v.dtype == gf.float16 for v in opt.state[model.weight].values()
               if hasattr(v, "dtype"))


def test_without_ml_dtypes_gradflow_imports_and_says_how_to_get_bfloat16(tmp_path):
    # A stub package that fails to import stands in for a missing ml_dtypes.
    (tmp_path / "ml_dtypes").mkdir()
    stub = tmp_path / "ml_dtypes" / "__init__.py"
    stub.write_text("raise ImportError('No module named ml_dtypes')")
    code = """
import gradflow as gf
assert not hasattr(gf, "bfloat16")
print((gf.ones(2) * 2).sum().item())
for make in [lambda: gf.bfloat16, lambda: gf.zeros(2, dtype="bfloat16"),
             lambda: gf.ones(2).bfloat16(), lambda: gf.ones(2).to("torch.bfloat16")]:
    try:
        make()
    except (AttributeError, TypeError) as e:
        print(type(e).__name__, e)
"""
    where = Path(gf.__file__).resolve().parents[1]
    r = subprocess.run(python_command("-c", code), capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{where}"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "4.0" and len(lines) == 5
    assert lines[1].startswith("AttributeError")
    assert all(line.startswith("TypeError") for line in lines[2:])
    assert all("pip install ml_dtypes" in line for line in lines[1:])


@needs_ml_dtypes
def test_collectives_refuse_bfloat16():
    from _fake_comm import FakeGroup

    import gradflow.distributed as dist

    def body(comm):
        with pytest.raises(TypeError, match="bfloat16.*float32"):
            dist.all_reduce(gf.ones(2, dtype=bf16), group=comm)
        t = gf.ones(2, dtype=bf16).float()
        dist.all_reduce(t, group=comm)
        return t.tolist()

    assert FakeGroup(2).run(body) == [[2.0, 2.0], [2.0, 2.0]]


@needs_torch
@pytest.mark.parametrize("name", lowp_params())
def test_casts_and_creation_round_through_float32_as_torch(name):
    # PyTorch rounds float64 and integers to float32 before a 16-bit float: values just past a
    # 16-bit halfway point by less than a float32 ulp round down there (numpy rounds up).
    mant = _FORMAT[name][0]
    rng = np.random.default_rng(0)
    base = rng.uniform(1, 2, 2000)
    halfway = (np.floor(base * 2.0 ** mant) + 0.5) / 2.0 ** mant
    f64 = np.concatenate([halfway + halfway * 2.0 ** -30, halfway - halfway * 2.0 ** -30,
                          rng.standard_normal(2000) * 100])
    top = 2 ** 40 if name == "bfloat16" else 60000  # (float16 overflows beyond 65504)
    i64 = np.concatenate([rng.integers(-top, top, 2000),
                          (1 << 24) + (1 << (24 - mant - 1)) + np.arange(1, 200)])
    if name == "float16":
        i64 = i64[np.abs(i64) < top]
    tdt = getattr(torch, name)
    for host in (f64, i64):
        expected = torch.from_numpy(host).to(tdt).float().numpy()
        for got in (gf.tensor(host).to(name), gf.tensor(host, dtype=name),
                    gf.tensor(host.tolist(), dtype=name)):
            np.testing.assert_array_equal(got.float().numpy(), expected)


@needs_torch
@pytest.mark.parametrize("name", lowp_params())
def test_products_and_quotients_by_numbers_use_their_float32_value_as_torch(name):
    # torch multiplies and divides a 16-bit tensor by a number's float32 value (0.1 rounded to
    # bfloat16 first would change a fifth of the products), divides a number by it as the number
    # times the rounded reciprocal, and adds or raises to the number rounded to its dtype
    x = np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    t, g = torch.from_numpy(x).to(getattr(torch, name)), gf.tensor(x).to(name)
    for s in (0.1, 3.7, 1e-3, 257, np.float32(0.3)):
        for f in (lambda v: v * s, lambda v: s * v, lambda v: v / s, lambda v: v + s,
                  lambda v: v - s, lambda v: s - v, lambda v: s / v,
                  lambda v: abs(v) ** float(s % 5)):
            got = f(g)
            assert got.dtype == getattr(gf, name)
            np.testing.assert_array_equal(got.float().numpy(), f(t).float().numpy())
