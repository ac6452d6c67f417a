"""gf.optim against torch.optim: the optimizers PyTorch users reach for (trajectories on the same
float64 problem), step(closure), and every learning-rate schedule's sequence of rates,
including resuming from state dicts."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradflow as gf  # noqa: E402
from gradflow import optim  # noqa: E402

A = np.random.default_rng(0).standard_normal((5, 3))
Y = np.random.default_rng(1).standard_normal(5)
W0 = np.random.default_rng(2).standard_normal(3)


def _loss(lib, w):
    a, y = lib.tensor(A), lib.tensor(Y)
    r = a @ w - y
    return (r * r).sum()


OPTIMIZERS = [
    ("rmsprop", lambda lib, p: lib.optim.RMSprop(p, lr=0.01)),
    ("rmsprop_all", lambda lib, p: lib.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                                     weight_decay=0.1)),
    ("adagrad", lambda lib, p: lib.optim.Adagrad(p, lr=0.1)),
    ("adagrad_all", lambda lib, p: lib.optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.1,
                                                     initial_accumulator_value=0.5)),
    ("adam_amsgrad", lambda lib, p: lib.optim.Adam(p, lr=0.05, amsgrad=True, weight_decay=0.1)),
    ("adamw_amsgrad", lambda lib, p: lib.optim.AdamW(p, lr=0.05, amsgrad=True)),
    ("adam_maximize", lambda lib, p: lib.optim.Adam(p, lr=0.05, maximize=True)),
    ("sgd_maximize", lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9, maximize=True)),
    ("sgd_default_lr", lambda lib, p: lib.optim.SGD(p)),
    ("rmsprop_maximize", lambda lib, p: lib.optim.RMSprop(p, maximize=True)),
]


@pytest.mark.parametrize("name,make", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_trajectory_matches_torch(name, make):
    gw = gf.tensor(W0, requires_grad=True)
    tw = torch.tensor(W0, requires_grad=True)
    go, to = make(gf, [gw]), make(torch, [tw])
    for _ in range(6):
        for lib, w, o in ((gf, gw, go), (torch, tw, to)):
            o.zero_grad()
            _loss(lib, w).backward()
            o.step()
        np.testing.assert_allclose(gw.detach().numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    state = go.state_dict()
    go2 = make(gf, [gw])
    go2.load_state_dict(copy.deepcopy(state))
    gw_before = gw.detach().numpy().copy()
    for o in (go, go2):
        gw.array[...] = gw_before
        o.zero_grad()
        _loss(gf, gw).backward()
        o.step()
        if o is go:
            after = gw.detach().numpy().copy()
    np.testing.assert_allclose(gw.detach().numpy(), after, rtol=1e-12)


def test_step_with_closure_returns_the_loss():
    gw = gf.tensor(W0, requires_grad=True)
    tw = torch.tensor(W0, requires_grad=True)
    go, to = gf.optim.SGD([gw], lr=0.01), torch.optim.SGD([tw], lr=0.01)

    def closure(lib, w, o):
        def f():
            o.zero_grad()
            loss = _loss(lib, w)
            loss.backward()
            return loss
        return f

    with gf.no_grad():  # the closure runs with gradients enabled all the same
        gl = go.step(closure(gf, gw, go))
    tl = to.step(closure(torch, tw, to))
    assert gl.item() == pytest.approx(tl.item())
    np.testing.assert_allclose(gw.detach().numpy(), tw.detach().numpy(), rtol=1e-12)


SCHEDULERS = [
    ("exponential", lambda L, o: L.ExponentialLR(o, gamma=0.8)),
    ("multistep", lambda L, o: L.MultiStepLR(o, milestones=[2, 5], gamma=0.5)),
    ("lambda", lambda L, o: L.LambdaLR(o, lambda e: 1 / (1 + e))),
    ("linear", lambda L, o: L.LinearLR(o, start_factor=0.25, total_iters=4)),
    ("constant", lambda L, o: L.ConstantLR(o, factor=0.5, total_iters=3)),
    ("step", lambda L, o: L.StepLR(o, 3, gamma=0.5)),
    ("cosine", lambda L, o: L.CosineAnnealingLR(o, T_max=6, eta_min=0.01)),
    ("onecycle", lambda L, o: L.OneCycleLR(o, max_lr=1.0, total_steps=10)),
    ("onecycle_linear_3phase", lambda L, o: L.OneCycleLR(o, max_lr=0.5, total_steps=12, anneal_strategy="linear",
                                                         three_phase=True)),
    ("sequential", lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=3),
                                                   L.ExponentialLR(o, 0.9)], milestones=[3])),
]


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("name,make", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_schedule_matches_torch(name, make, opt):
    def build(lib):
        p = lib.zeros(2, requires_grad=True)
        o = lib.optim.SGD([p], lr=0.1, momentum=0.9) if opt == "sgd" else lib.optim.Adam([p], lr=0.1)
        return o, make(lib.optim.lr_scheduler, o)

    (go, gs), (to, ts) = build(gf), build(torch)
    key = "momentum" if opt == "sgd" else "betas"
    for _ in range(9):
        assert gs.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
        assert np.allclose(go.param_groups[0][key], to.param_groups[0][key])
        go.step()
        to.step()
        gs.step()
        ts.step()


def test_schedule_resumes_from_state_dict_and_last_epoch():
    p = gf.zeros(2, requires_grad=True)
    o = gf.optim.SGD([p], lr=0.1)
    s = gf.optim.lr_scheduler.MultiStepLR(o, [2, 4], 0.5)
    for _ in range(3):
        s.step()
    saved = s.state_dict()
    s2 = gf.optim.lr_scheduler.MultiStepLR(o, [9], 0.1)
    s2.load_state_dict(saved)
    s.step()
    s2.step()
    assert s.get_last_lr() == s2.get_last_lr() == [0.025]
    o2 = gf.optim.SGD([p], lr=0.1)
    with pytest.raises(KeyError, match="initial_lr"):
        gf.optim.lr_scheduler.ExponentialLR(o2, 0.5, last_epoch=3)
    o2.param_groups[0]["initial_lr"] = 0.1
    s3 = gf.optim.lr_scheduler.ExponentialLR(o2, 0.5, last_epoch=3)
    assert s3.get_last_lr() == [pytest.approx(0.1 * 0.5 ** 4)]


def test_reduce_lr_on_plateau_matches_torch():
    def build(lib):
        o = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=1.0)
        return o, lib.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1, min_lr=0.1)

    (go, gs), (to, ts) = build(gf), build(torch)
    for metric in [5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3]:
        gs.step(metric)
        ts.step(metric)
        assert go.param_groups[0]["lr"] == pytest.approx(to.param_groups[0]["lr"])
    restored = gf.optim.lr_scheduler.ReduceLROnPlateau(go)
    restored.load_state_dict(gs.state_dict())
    assert restored.best == 3 and restored.num_bad_epochs == gs.num_bad_epochs
