"""Differential tests against PyTorch (float64): seeded random op graphs built identically in both
libraries; outputs and input gradients agree to 1e-10, and second derivatives for some graphs."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

import gradflow as gf  # noqa: E402
import gradflow.nn.functional as F  # noqa: E402

N, C = 4, 5
LABELS = np.array([0, 3, 4, 1])


def _probs(seed):
    p = np.random.default_rng(seed).random((N, C)) + 0.1
    return p / p.sum(1, keepdims=True)


# Each op maps an (N, C) tensor to an (N, C) tensor; `v` holds the other inputs by name:
# p (N, C), q (C,), W (C, C), b (C,). (gf version, torch version)
OPS = {
    "add_p": (lambda x, v: x + v["p"], lambda x, v: x + v["p"]),
    "sub_q": (lambda x, v: x - v["q"], lambda x, v: x - v["q"]),
    "rsub": (lambda x, v: 0.5 - x, lambda x, v: 0.5 - x),
    "mul_p": (lambda x, v: x * v["p"], lambda x, v: x * v["p"]),
    "mul_scalar": (lambda x, v: 1.7 * x, lambda x, v: 1.7 * x),
    "div_pos": (lambda x, v: x / (v["q"] * v["q"] + 0.5), lambda x, v: x / (v["q"] * v["q"] + 0.5)),
    "rdiv_pos": (lambda x, v: 1.0 / (x * x + 1.0), lambda x, v: 1.0 / (x * x + 1.0)),
    "pow2": (lambda x, v: x ** 2, lambda x, v: x ** 2),
    "pow_tt": (lambda x, v: (x * x + 0.5) ** v["q"], lambda x, v: (x * x + 0.5) ** v["q"]),
    "sigmoid": (lambda x, v: F.sigmoid(x), lambda x, v: torch.sigmoid(x)),
    "tanh": (lambda x, v: F.tanh(x), lambda x, v: torch.tanh(x)),
    "relu": (lambda x, v: F.relu(x), lambda x, v: TF.relu(x)),
    "leaky_relu": (lambda x, v: F.leaky_relu(x, 0.05), lambda x, v: TF.leaky_relu(x, 0.05)),
    "gelu": (lambda x, v: F.gelu(x), lambda x, v: TF.gelu(x)),
    "gelu_tanh": (lambda x, v: F.gelu(x, "tanh"), lambda x, v: TF.gelu(x, approximate="tanh")),
    "softplus": (lambda x, v: F.softplus(x, 2.0, 3.0), lambda x, v: TF.softplus(x, 2.0, 3.0)),
    "exp_clip": (lambda x, v: gf.exp(gf.clip(x, -3.0, 3.0)), lambda x, v: torch.exp(torch.clamp(x, -3.0, 3.0))),
    "log_pos": (lambda x, v: gf.log(x * x + 1.0), lambda x, v: torch.log(x * x + 1.0)),
    "sqrt_pos": (lambda x, v: gf.sqrt(x * x + 1.0), lambda x, v: torch.sqrt(x * x + 1.0)),
    "abs": (lambda x, v: gf.abs(x), lambda x, v: torch.abs(x)),
    "maximum_p": (lambda x, v: gf.maximum(x, v["p"]), lambda x, v: torch.maximum(x, v["p"])),
    "minimum_q": (lambda x, v: gf.minimum(x, v["q"]), lambda x, v: torch.minimum(x, v["q"])),
    "where": (lambda x, v: gf.where(x > 0, x, v["p"] * x), lambda x, v: torch.where(x > 0, x, v["p"] * x)),
    "center_sum0": (lambda x, v: x - x.sum(0, keepdims=True) / N, lambda x, v: x - x.sum(0, keepdim=True) / N),
    "center_mean1": (lambda x, v: x - x.mean(1, keepdims=True), lambda x, v: x - x.mean(1, keepdim=True)),
    "scale_max": (lambda x, v: x * x.amax(1, keepdims=True), lambda x, v: x * x.amax(1, keepdim=True)),
    "sub_lse": (lambda x, v: x - x.logsumexp(-1, keepdims=True),
                lambda x, v: x - torch.logsumexp(x, -1, keepdim=True)),
    "norm_var": (lambda x, v: x / (x.var(0, keepdim=True, unbiased=False) + 1.0) ** 0.5,
                 lambda x, v: x / (x.var(0, keepdim=True, unbiased=False) + 1.0) ** 0.5),
    "matmul_W": (lambda x, v: x @ v["W"], lambda x, v: x @ v["W"]),
    "matmul_WT": (lambda x, v: x @ v["W"].T, lambda x, v: x @ v["W"].T),
    "linear": (lambda x, v: F.linear(x, v["W"], v["b"]), lambda x, v: TF.linear(x, v["W"], v["b"])),
    "softmax1": (lambda x, v: F.softmax(x, -1), lambda x, v: TF.softmax(x, -1)),
    "softmax0": (lambda x, v: F.softmax(x, 0), lambda x, v: TF.softmax(x, 0)),
    "log_softmax1": (lambda x, v: F.log_softmax(x, 1), lambda x, v: TF.log_softmax(x, 1)),
    "log_softmax0": (lambda x, v: F.log_softmax(x, 0), lambda x, v: TF.log_softmax(x, 0)),
    "transpose_mm": (lambda x, v: (x.T @ x)[:N] if C >= N else x, lambda x, v: (x.T @ x)[:N] if C >= N else x),
    "index_rev": (lambda x, v: x[::-1] * x, lambda x, v: x.flip(0) * x),
    "fancy_index": (lambda x, v: x[[1, 1, 0, 3]] + x, lambda x, v: x[[1, 1, 0, 3]] + x),
    "concat_split": (lambda x, v: gf.concatenate(x.split([2, 3], axis=1)[::-1], axis=1),
                     lambda x, v: torch.cat(x.split([2, 3], dim=1)[::-1], dim=1)),
    "stack_mean": (lambda x, v: gf.stack([x, x * 2], axis=0).mean(0), lambda x, v: torch.stack([x, x * 2], 0).mean(0)),
}

LABELS_GF, LABELS_T = gf.tensor(LABELS), torch.tensor(LABELS)
# (gf, torch) final scalar losses
LOSSES = {
    "sum": (lambda x: x.sum(), lambda x: x.sum()),
    "mean": (lambda x: x.mean(), lambda x: x.mean()),
    "ce_labels": (lambda x: F.cross_entropy(x, LABELS_GF), lambda x: TF.cross_entropy(x, LABELS_T)),
    "ce_labels_sum": (lambda x: F.cross_entropy(x, LABELS_GF, reduction="sum"),
                      lambda x: TF.cross_entropy(x, LABELS_T, reduction="sum")),
    "ce_probs": (lambda x: F.cross_entropy(x, gf.tensor(_probs(0))),
                 lambda x: TF.cross_entropy(x, torch.tensor(_probs(0)))),
    "mse": (lambda x: F.mse_loss(x, gf.tensor(_probs(1))), lambda x: TF.mse_loss(x, torch.tensor(_probs(1)))),
    "bce": (lambda x: F.binary_cross_entropy_with_logits(x, gf.tensor(_probs(2))),
            lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor(_probs(2)))),
    "weighted_sum": (lambda x: (x * gf.tensor(_probs(3))).sum(1).max(),
                     lambda x: (x * torch.tensor(_probs(3))).sum(1).max()),
}

NAMES = ["x", "p", "q", "W", "b"]


def _inputs(seed):
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.standard_normal((N, C)), "p": rng.standard_normal((N, C)),
              "q": rng.standard_normal(C), "W": rng.standard_normal((C, C)) / np.sqrt(C),
              "b": rng.standard_normal(C)}
    g = {k: gf.tensor(a, requires_grad=True) for k, a in arrays.items()}
    t = {k: torch.tensor(a, requires_grad=True) for k, a in arrays.items()}
    return g, t


def _program(seed):
    rng = np.random.default_rng(10_000 + seed)
    names = sorted(OPS)
    ops = [names[i] for i in rng.integers(0, len(names), size=int(rng.integers(5, 11)))]
    loss = sorted(LOSSES)[int(rng.integers(0, len(LOSSES)))]
    return ops, loss


def _run(ops, loss, v, lib):
    k = 0 if lib == "gf" else 1
    x = v["x"]
    for name in ops:
        x = OPS[name][k](x, v)
    return LOSSES[loss][k](x)


def _close(a, b, tol=1e-10):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


def _gf_grads(out, ins, **kw):
    gs = gf.grad(out, ins, allow_unused=True, **kw)
    return gs


def _t_grads(out, ins, **kw):
    return torch.autograd.grad(out, ins, allow_unused=True, **kw)


def _np(g, like_shape):
    if g is None:
        return np.zeros(like_shape)
    if isinstance(g, torch.Tensor):
        return g.detach().numpy()
    return g.detach().numpy()


@pytest.mark.parametrize("seed", range(60))
def test_random_graph_value_and_grads(seed):
    ops, loss = _program(seed)
    vg, vt = _inputs(seed)
    out_g, out_t = _run(ops, loss, vg, "gf"), _run(ops, loss, vt, "torch")
    assert out_g.shape == tuple(out_t.shape)
    _close(out_g.item(), out_t.item())
    gg = _gf_grads(out_g, [vg[k] for k in NAMES])
    gt = _t_grads(out_t, [vt[k] for k in NAMES])
    for name, a, b in zip(NAMES, gg, gt):
        _close(_np(a, vg[name].shape), _np(b, vg[name].shape))


@pytest.mark.parametrize("seed", range(0, 60, 4))
def test_random_graph_second_derivatives(seed):
    """Hessian-vector products: grad of <grad(L), v> with create_graph=True."""
    ops, loss = _program(seed)
    vg, vt = _inputs(seed)
    out_g, out_t = _run(ops, loss, vg, "gf"), _run(ops, loss, vt, "torch")
    ing, int_ = [vg[k] for k in NAMES], [vt[k] for k in NAMES]
    g1g = _gf_grads(out_g, ing, create_graph=True)
    g1t = _t_grads(out_t, int_, create_graph=True)
    rng = np.random.default_rng(seed)
    dot_g, dot_t = 0, 0
    for a, b, name in zip(g1g, g1t, NAMES):
        w = rng.standard_normal(vg[name].shape)
        if a is not None and a.requires_grad:
            dot_g = dot_g + (a * gf.tensor(w)).sum()
        if b is not None and b.requires_grad:
            dot_t = dot_t + (b * torch.tensor(w)).sum()
    if isinstance(dot_t, int):
        assert isinstance(dot_g, int) or not dot_g.requires_grad
        return
    g2g = _gf_grads(dot_g, ing) if not isinstance(dot_g, int) else [None] * len(NAMES)
    g2t = _t_grads(dot_t, int_)
    for name, a, b in zip(NAMES, g2g, g2t):
        _close(_np(a, vg[name].shape), _np(b, vg[name].shape), tol=1e-9)


# ---- targeted comparisons -------------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1)])
def test_activation_third_derivatives(shape, axis):
    rng = np.random.default_rng(5)
    a = rng.standard_normal(shape)
    pairs = [(F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh), (F.gelu, TF.gelu),
             (lambda t: F.gelu(t, "tanh"), lambda t: TF.gelu(t, approximate="tanh")),
             (lambda t: F.softplus(t, 1.5, 2.0), lambda t: TF.softplus(t, 1.5, 2.0)),
             (lambda t: F.softmax(t, axis), lambda t: TF.softmax(t, axis)),
             (lambda t: F.log_softmax(t, axis), lambda t: TF.log_softmax(t, axis))]
    w = rng.standard_normal(shape)
    for fg, ft in pairs:
        xg, xt = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        yg, yt = (fg(xg) * gf.tensor(w)).sum(), (ft(xt) * torch.tensor(w)).sum()
        for _ in range(3):
            (dg,) = gf.grad(yg, xg, create_graph=True)
            (dt,) = torch.autograd.grad(yt, xt, create_graph=True)
            _close(dg.detach().numpy(), dt.detach().numpy(), tol=1e-9)
            yg, yt = (dg * gf.tensor(w)).sum(), (dt * torch.tensor(w)).sum()


def test_cross_entropy_second_derivative_vs_torch():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((5, 4)) * 2
    labels = np.array([0, 3, 1, 1, 2])
    xg, xt = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    lg = F.cross_entropy(xg, gf.tensor(labels), reduction="none")
    lt = TF.cross_entropy(xt, torch.tensor(labels), reduction="none")
    w = rng.standard_normal(5)
    (gg,) = gf.grad((lg * gf.tensor(w)).sum(), xg, create_graph=True)
    (gt,) = torch.autograd.grad((lt * torch.tensor(w)).sum(), xt, create_graph=True)
    _close(gg.detach().numpy(), gt.detach().numpy())
    v = rng.standard_normal((5, 4))
    (hg,) = gf.grad((gg * gf.tensor(v)).sum(), xg)
    (ht,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), xt)
    _close(hg.numpy(), ht.numpy())


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 1, 2, 3), (3, 3, 2)),
                                   ((3,), (2, 3, 4)), ((2, 4, 3), (3,))])
def test_matmul_shapes_vs_torch(sa, sb):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    ag, bg = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    at, bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    og, ot = ag @ bg, at @ bt
    assert og.shape == tuple(ot.shape)
    w = rng.standard_normal(og.shape)
    (og * gf.tensor(w)).sum().backward()
    (ot * torch.tensor(w)).sum().backward()
    _close(og.detach().numpy(), ot.detach().numpy())
    _close(ag.grad.numpy(), at.grad.numpy())
    _close(bg.grad.numpy(), bt.grad.numpy())


def test_float32_mlp_close_to_torch():
    """float32 end to end (the default dtype): loose tolerance, same math."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((16, 8)).astype(np.float32)
    W1 = (rng.standard_normal((32, 8)) / 3).astype(np.float32)
    W2 = (rng.standard_normal((4, 32)) / 6).astype(np.float32)
    y = rng.integers(0, 4, 16)
    g = [gf.tensor(a, requires_grad=True) for a in (W1, W2)]
    t = [torch.tensor(a, requires_grad=True) for a in (W1, W2)]
    lg = F.cross_entropy(F.linear(F.relu(F.linear(gf.tensor(X), g[0])), g[1]), gf.tensor(y))
    lt = TF.cross_entropy(TF.linear(TF.relu(TF.linear(torch.tensor(X), t[0])), t[1]), torch.tensor(y))
    lg.backward(), lt.backward()
    assert lg.dtype == gf.float32
    np.testing.assert_allclose(lg.item(), lt.item(), rtol=1e-5)
    for a, b in zip(g, t):
        assert a.grad.dtype == gf.float32
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-6)
