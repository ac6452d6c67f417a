"""gradflow.optim: SGD / Adam / AdamW trajectories against a numpy transcription of the update
rules (always) and torch.optim (float64, 1e-12, where torch is installed), parameter groups,
None grads, zero_grad, state_dict round trips, argument checks and the LR schedulers."""
import itertools
import math

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn, optim
from gradflow.optim import lr_scheduler

from conftest import host

STEPS = 6
_rng = np.random.default_rng(0)
P0 = [_rng.standard_normal((4, 3)), _rng.standard_normal((5,))]
GRADS = [[_rng.standard_normal(p.shape) for p in P0] for _ in range(STEPS)]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# ---- numpy transcriptions of PyTorch's documented update rules ---------------------------------------
def np_sgd(params, grads_seq, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    params = [p.copy() for p in params]
    bufs = [None] * len(params)
    for grads in grads_seq:
        for i, (p, g) in enumerate(zip(params, grads)):
            d = g + weight_decay * p
            if momentum:
                if bufs[i] is None:
                    bufs[i] = d.copy()
                else:
                    bufs[i] = momentum * bufs[i] + (1 - dampening) * d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            p -= lr * d
    return params


def np_adam(params, grads_seq, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
            decoupled=False):
    b1, b2 = betas
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_seq, 1):
        for i, (p, g) in enumerate(zip(params, grads)):
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            mhat = m[i] / (1 - b1**t)
            vhat = v[i] / (1 - b2**t)
            p -= lr * mhat / (np.sqrt(vhat) + eps)
    return params


def gf_run(cls, kw, steps=STEPS, device="cpu"):
    params = [nn.Parameter(gf.tensor(p.copy(), device=device)) for p in P0]
    opt = cls(params, **kw)
    for grads in GRADS[:steps]:
        for p, g in zip(params, grads):
            p.grad = gf.tensor(g.copy(), device=device)
        opt.step()
    return [host(p).copy() for p in params]


def torch_run(torch, cls, kw, steps=STEPS):
    params = [torch.nn.Parameter(torch.tensor(p.copy())) for p in P0]
    opt = cls(params, **kw)
    for grads in GRADS[:steps]:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g.copy())
        opt.step()
    return [p.detach().numpy().copy() for p in params]


SGD_CASES = [dict(lr=0.1, momentum=mom, dampening=damp, nesterov=nest, weight_decay=wd)
             for mom, damp, nest, wd in itertools.product([0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.05])
             if not (nest and (mom == 0 or damp != 0))]
ADAM_CASES = [dict(lr=lr, betas=betas, eps=eps, weight_decay=wd)
              for lr, betas, eps, wd in itertools.product([0.01, 0.3], [(0.9, 0.999), (0.5, 0.8)],
                                                          [1e-8, 1e-3], [0.0, 0.1])]


def _ids(cases):
    return ["-".join(f"{k}={v}" for k, v in c.items()) for c in cases]


def _close(a, b, tol=1e-12):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


# ---- trajectories ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", SGD_CASES, ids=_ids(SGD_CASES))
def test_sgd_matches_numpy(kw, device):
    _close(gf_run(optim.SGD, kw, device=device), np_sgd(P0, GRADS, **kw))


@pytest.mark.parametrize("kw", SGD_CASES, ids=_ids(SGD_CASES))
def test_sgd_matches_torch(kw, torch):
    _close(gf_run(optim.SGD, kw), torch_run(torch, torch.optim.SGD, kw))


@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("kw", ADAM_CASES, ids=_ids(ADAM_CASES))
def test_adam_matches_numpy(kw, decoupled, device):
    cls = optim.AdamW if decoupled else optim.Adam
    _close(gf_run(cls, kw, device=device), np_adam(P0, GRADS, decoupled=decoupled, **kw))


@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("kw", ADAM_CASES, ids=_ids(ADAM_CASES))
def test_adam_matches_torch(kw, decoupled, torch):
    cls, tcls = (optim.AdamW, torch.optim.AdamW) if decoupled else (optim.Adam, torch.optim.Adam)
    _close(gf_run(cls, kw), torch_run(torch, tcls, kw))


def test_defaults_match_torch(torch):
    _close(gf_run(optim.Adam, {}), torch_run(torch, torch.optim.Adam, {}))
    _close(gf_run(optim.AdamW, {}), torch_run(torch, torch.optim.AdamW, {}))  # wd 1e-2
    assert optim.AdamW([nn.Parameter(gf.zeros(1))]).param_groups[0]["weight_decay"] == 1e-2
    g = optim.Adam([nn.Parameter(gf.zeros(1))]).param_groups[0]
    assert g["lr"] == 1e-3 and tuple(g["betas"]) == (0.9, 0.999) and g["eps"] == 1e-8


def test_float32_params_stay_float32():
    p = nn.Parameter(gf.ones(3, dtype=gf.float32))
    for cls, kw in [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, {}), (optim.AdamW, {})]:
        opt = cls([p], **kw)
        p.grad = gf.ones(3, dtype=gf.float32)
        opt.step()
        assert p.dtype == np.float32 and p.is_leaf and p.requires_grad


def test_training_reduces_loss():
    gf.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = nn.Sequential(nn.Linear(3, 8, dtype=gf.float64), nn.Tanh(), nn.Linear(8, 1, dtype=gf.float64))
    opt = optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn(model(gf.tensor(X)), gf.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


# ---- groups, None grads, zero_grad ---------------------------------------------------------------------------
def test_param_groups_per_group_lr():
    a = nn.Parameter(gf.tensor(P0[0].copy()))
    b = nn.Parameter(gf.tensor(P0[1].copy()))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.01, "momentum": 0.5}], lr=0.1, momentum=0.9)
    assert len(opt.param_groups) == 2
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.5
    assert opt.param_groups[1]["params"] == [b]
    for grads in GRADS:
        a.grad, b.grad = gf.tensor(grads[0]), gf.tensor(grads[1])
        opt.step()
    ra = np_sgd([P0[0]], [[g[0]] for g in GRADS], lr=0.1, momentum=0.9)[0]
    rb = np_sgd([P0[1]], [[g[1]] for g in GRADS], lr=0.01, momentum=0.5)[0]
    np.testing.assert_allclose(host(a), ra, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(b), rb, rtol=1e-12, atol=1e-12)


def test_param_groups_vs_torch(torch):
    a = nn.Parameter(gf.tensor(P0[0].copy()))
    b = nn.Parameter(gf.tensor(P0[1].copy()))
    ta = torch.nn.Parameter(torch.tensor(P0[0].copy()))
    tb = torch.nn.Parameter(torch.tensor(P0[1].copy()))
    opt = optim.Adam([{"params": [a], "lr": 0.2}, {"params": [b], "betas": (0.5, 0.6)}], lr=0.01)
    topt = torch.optim.Adam([{"params": [ta], "lr": 0.2}, {"params": [tb], "betas": (0.5, 0.6)}], lr=0.01)
    for grads in GRADS:
        a.grad, b.grad = gf.tensor(grads[0]), gf.tensor(grads[1])
        ta.grad, tb.grad = torch.tensor(grads[0]), torch.tensor(grads[1])
        opt.step()
        topt.step()
    np.testing.assert_allclose(host(a), ta.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(b), tb.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_add_param_group_and_duplicates():
    a, b = nn.Parameter(gf.zeros(2)), nn.Parameter(gf.zeros(2))
    opt = optim.SGD([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.0
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [a]})


def test_step_skips_none_grads():
    a = nn.Parameter(gf.tensor(P0[0].copy()))
    b = nn.Parameter(gf.tensor(P0[1].copy()))
    for cls, kw in [(optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)), (optim.Adam, dict(lr=0.1)),
                    (optim.AdamW, dict(lr=0.1, weight_decay=0.01))]:
        a.array[...] = P0[0]
        b.array[...] = P0[1]
        opt = cls([a, b], **kw)
        a.grad, b.grad = gf.tensor(GRADS[0][0]), None
        opt.step()
        np.testing.assert_array_equal(host(b), P0[1])  # untouched, even with weight decay
        assert not np.array_equal(host(a), P0[0])
        assert opt.state.get(b, {}) == {}
        # b's first real step is its step 1 (Adam bias correction) while a is at step 2
        a.grad, b.grad = gf.tensor(GRADS[1][0]), gf.tensor(GRADS[1][1])
        opt.step()
        if cls is optim.SGD:
            rb = np_sgd([P0[1]], [[GRADS[1][1]]], **kw)[0]
        else:
            rb = np_adam([P0[1]], [[GRADS[1][1]]], decoupled=cls is optim.AdamW, **kw)[0]
        np.testing.assert_allclose(host(b), rb, rtol=1e-12, atol=1e-12)


def test_grad_shape_mismatch_raises_at_assignment():
    p = nn.Parameter(gf.zeros(3, dtype=gf.float64))
    with pytest.raises(ValueError, match=r"shape \(4,\).*shape \(3,\)"):
        p.grad = gf.zeros(4, dtype=gf.float64)


def test_step_not_recorded():
    p = nn.Parameter(t := gf.ones(3, dtype=gf.float64))
    opt = optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.is_leaf and p.grad_fn is None and p.requires_grad
    assert t is not p


def test_optimizer_zero_grad():
    a, b = nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(3))
    opt = optim.SGD([a, b], lr=0.1)
    (a.sum() + b.sum()).backward()
    ga = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is ga and np.all(host(a.grad) == 0) and np.all(host(b.grad) == 0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.zero_grad(set_to_none=False)
    assert a.grad is None


# ---- argument checks -------------------------------------------------------------------------------------
def _p():
    return [nn.Parameter(gf.zeros(2))]


@pytest.mark.parametrize("make", [
    lambda: optim.SGD(_p(), lr=-0.1),
    lambda: optim.SGD(_p(), lr=0.1, momentum=-0.5),
    lambda: optim.SGD(_p(), lr=0.1, weight_decay=-1),
    lambda: optim.SGD(_p(), lr=0.1, nesterov=True),
    lambda: optim.SGD(_p(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    lambda: optim.SGD([], lr=0.1),
    lambda: optim.SGD([{"params": _p(), "lr": -1}], lr=0.1),
    lambda: optim.Adam(_p(), lr=-1e-3),
    lambda: optim.Adam(_p(), betas=(1.0, 0.999)),
    lambda: optim.Adam(_p(), betas=(0.9, 1.0)),
    lambda: optim.Adam(_p(), betas=(-0.1, 0.999)),
    lambda: optim.Adam(_p(), eps=-1e-8),
    lambda: optim.Adam(_p(), weight_decay=-0.1),
    lambda: optim.Adam([]),
    lambda: optim.AdamW(_p(), betas=(0.9, 1.5)),
    lambda: optim.AdamW(iter([])),
], ids=["sgd_lr", "sgd_momentum", "sgd_wd", "nesterov_no_momentum", "nesterov_dampening",
        "sgd_empty", "group_lr", "adam_lr", "beta1", "beta2", "beta1_neg", "eps", "adam_wd",
        "adam_empty", "adamw_beta2", "adamw_empty_iter"])
def test_invalid_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_non_leaf_or_non_tensor_params_rejected():
    x = gf.ones(2, requires_grad=True)
    with pytest.raises(ValueError):
        optim.SGD([x * 2], lr=0.1)
    with pytest.raises(ValueError):
        optim.SGD([gf.ones(2)], lr=0.1)  # does not require grad
    with pytest.raises(TypeError):
        optim.SGD([np.ones(2)], lr=0.1)


def test_accepts_generators_of_parameters():
    m = nn.Linear(2, 2)
    opt = optim.SGD(m.parameters(), lr=0.1)
    assert opt.param_groups[0]["params"] == list(m.parameters())


# ---- state_dict ----------------------------------------------------------------------------------------
OPT_CASES = [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
             (optim.SGD, dict(lr=0.1)),
             (optim.Adam, dict(lr=0.05, weight_decay=0.1)),
             (optim.AdamW, dict(lr=0.05, betas=(0.8, 0.9)))]


def _params():
    return [nn.Parameter(gf.tensor(p.copy())) for p in P0]


def _feed(params, grads):
    for p, g in zip(params, grads):
        p.grad = gf.tensor(g.copy())


@pytest.mark.parametrize("cls,kw", OPT_CASES, ids=[c.__name__ + str(i) for i, (c, _) in enumerate(OPT_CASES)])
def test_state_dict_round_trip_continues_trajectory(cls, kw, tmp_path):
    ref = _params()
    ref_opt = cls(ref, **kw)
    for g in GRADS:
        _feed(ref, g)
        ref_opt.step()

    a = _params()
    opt_a = cls(a, **kw)
    for g in GRADS[:3]:
        _feed(a, g)
        opt_a.step()
    sd = opt_a.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert sd["param_groups"][0]["lr"] == kw["lr"]
    gf.save({"opt": sd, "params": [host(p) for p in a]}, tmp_path / "ck.npz")

    # in memory: load into a fresh optimizer on copies of the parameters now
    b = [nn.Parameter(gf.tensor(host(p).copy())) for p in a]
    opt_b = cls(b, **{**kw, "lr": 123.0})  # hyper-parameters come from the state dict
    opt_b.load_state_dict(sd)
    assert opt_b.param_groups[0]["lr"] == kw["lr"]
    assert opt_b.param_groups[0]["params"] == b

    # from disk
    ck = gf.load(tmp_path / "ck.npz")
    c = [nn.Parameter(gf.tensor(v)) for v in ck["params"]]
    opt_c = cls(c, **kw)
    opt_c.load_state_dict(ck["opt"])

    for g in GRADS[3:]:
        for ps, o in ((a, opt_a), (b, opt_b), (c, opt_c)):
            _feed(ps, g)
            o.step()
    for ps in (a, b, c):
        for p, r in zip(ps, ref):
            np.testing.assert_array_equal(host(p), host(r))


def test_state_dict_with_groups_and_unstepped_params():
    a, b, c = (nn.Parameter(gf.zeros(2, dtype=gf.float64)) for _ in range(3))
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1)
    a.grad = gf.ones(2, dtype=gf.float64)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.1, 0.5]
    assert list(sd["state"]) == [0]
    assert sd["state"][0]["step"] == 1
    np.testing.assert_allclose(host(sd["state"][0]["exp_avg"]), [0.1, 0.1])
    opt2 = optim.Adam([{"params": [a, b]}, {"params": [c]}], lr=0.1)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.5 and opt2.state[a]["step"] == 1 and b not in opt2.state
    # loaded state is a copy
    opt2.state[a]["exp_avg"][...] = 7
    np.testing.assert_allclose(host(sd["state"][0]["exp_avg"]), [0.1, 0.1])


def test_load_state_dict_mismatched_groups():
    a, b = nn.Parameter(gf.zeros(2)), nn.Parameter(gf.zeros(2))
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)


# ---- LR schedulers ------------------------------------------------------------------------------------------
def _sched_run(make, lrs=(0.1, 0.02), epochs=12):
    ps = [nn.Parameter(gf.zeros(2)) for _ in lrs]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], lr=1.0)
    s = make(opt)
    out = [list(s.get_last_lr())]
    for _ in range(epochs):
        for p in ps:
            p.grad = gf.zeros(2)
        opt.step()
        s.step()
        out.append(list(s.get_last_lr()))
        assert out[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(out), s


def _torch_sched_run(torch, make, lrs=(0.1, 0.02), epochs=12):
    ps = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], lr=1.0)
    s = make(opt)
    out = [list(s.get_last_lr())]
    for _ in range(epochs):
        for p in ps:
            p.grad = torch.zeros(2)
        opt.step()
        s.step()
        out.append(list(s.get_last_lr()))
    return np.array(out)


SCHED = [("StepLR", dict(step_size=3, gamma=0.5)), ("StepLR", dict(step_size=1, gamma=0.9)),
         ("StepLR", dict(step_size=4)), ("CosineAnnealingLR", dict(T_max=10)),
         ("CosineAnnealingLR", dict(T_max=4, eta_min=0.005)), ("CosineAnnealingLR", dict(T_max=1))]


@pytest.mark.parametrize("name,kw", SCHED, ids=[f"{n}-{k}" for n, k in SCHED])
def test_schedulers_vs_torch(name, kw, torch):
    got, _ = _sched_run(lambda o: getattr(lr_scheduler, name)(o, **kw))
    want = _torch_sched_run(torch, lambda o: getattr(torch.optim.lr_scheduler, name)(o, **kw))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_steplr_formula():
    got, s = _sched_run(lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.1), epochs=10)
    want = [[0.1 * 0.1 ** (e // 3), 0.02 * 0.1 ** (e // 3)] for e in range(11)]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert s.last_epoch == 10


def test_cosine_formula():
    T, eta = 10, 0.001
    got, _ = _sched_run(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=eta), epochs=10)
    want = [[eta + (b - eta) * (1 + math.cos(math.pi * e / T)) / 2 for b in (0.1, 0.02)] for e in range(11)]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert got[-1] == pytest.approx([eta, eta])


def test_scheduler_affects_sgd_updates():
    p = nn.Parameter(gf.zeros(1, dtype=gf.float64))
    opt = optim.SGD([p], lr=1.0)
    s = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = gf.ones(1, dtype=gf.float64)
        opt.step()
        s.step()
    np.testing.assert_allclose(host(p), [-(1 + 0.5 + 0.25)])


def test_scheduler_state_dict_and_errors():
    _, s = _sched_run(lambda o: lr_scheduler.StepLR(o, step_size=2), epochs=5)
    sd = s.state_dict()
    assert sd["last_epoch"] == 5 and sd["base_lrs"] == [0.1, 0.02]
    opt = optim.SGD([{"params": [nn.Parameter(gf.zeros(1))]}, {"params": [nn.Parameter(gf.zeros(1))]}],
                    lr=0.7)
    s2 = lr_scheduler.StepLR(opt, step_size=2)
    s2.load_state_dict(sd)
    s2.step()  # epoch 6
    assert s2.get_last_lr() == pytest.approx([0.1 * 0.1**3, 0.02 * 0.1**3], rel=1e-12)
    with pytest.raises(ValueError):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)


# ---- memory layouts: any grad / parameter layout steps like a contiguous one -----------------------
@pytest.mark.parametrize("cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, dict(lr=0.1))],
                         ids=["SGD", "Adam"])
def test_step_with_non_contiguous_grad(cls, kw):
    g = np.random.default_rng(0).standard_normal((4, 3))
    p = nn.Parameter(gf.tensor(P0[0].copy()))
    p.grad = gf.tensor(np.ascontiguousarray(g.T)).T  # (4, 3), a strided view
    assert not p.grad.array.flags.c_contiguous
    cls([p], **kw).step()
    ref = (np_sgd if cls is optim.SGD else np_adam)([P0[0]], [[g]], **kw)[0]
    np.testing.assert_allclose(host(p), ref, rtol=1e-12, atol=1e-12)


def test_step_with_non_contiguous_parameter():
    base = gf.tensor(P0[0].T.copy())
    p = nn.Parameter(base.T)  # (4, 3), strided
    p.grad = gf.tensor(GRADS[0][0])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(host(p), P0[0] - 0.1 * GRADS[0][0], rtol=1e-12)
