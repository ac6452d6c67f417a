"""gradflow.nn: Module registration/traversal/state, Parameter, the layers and losses (against
gf.nn.functional, numpy and, where installed, torch.nn), and nn.init (PyTorch's formulas)."""
import math

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.nn import init
from gradflow.backend import canonical_device

from conftest import _CUDA_SKIP, host, t64


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


# ==== Parameter ======================================================================================
def test_parameter_is_tensor_requiring_grad():
    p = nn.Parameter(gf.zeros(2, 3))
    assert isinstance(p, gf.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad is None
    assert p.shape == (2, 3)
    q = nn.Parameter(gf.zeros(2), requires_grad=False)
    assert not q.requires_grad


def test_parameter_shares_memory_with_source():
    t = gf.tensor(np.arange(4.0))
    p = nn.Parameter(t)
    t.array[0] = 42.0
    assert host(p)[0] == 42.0
    with gf.no_grad():
        p.array[1] = -1.0
    assert host(t)[1] == -1.0


def test_parameter_from_array_and_repr():
    p = nn.Parameter(np.ones((2,), dtype=np.float64))
    assert p.dtype == np.float64 and np.array_equal(host(p), [1.0, 1.0])
    assert repr(p).startswith("Parameter containing:")


def test_parameter_gets_grad():
    p = nn.Parameter(t64([1.0, 2.0], requires_grad=False))
    (p * p).sum().backward()
    np.testing.assert_allclose(host(p.grad), [2.0, 4.0])


# ==== Module registration ============================================================================
def test_attribute_assignment_registers_params_and_modules():
    m = TwoLayer()
    assert list(m._parameters) == []
    assert list(dict(m.named_children())) == ["fc1", "act", "fc2"]
    assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert len(list(m.parameters())) == 4
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())
    assert list(m.children()) == [m.fc1, m.act, m.fc2]


def test_plain_tensor_attribute_not_registered():
    m = nn.Module()
    m.buf = gf.zeros(3)
    m.n = 5
    assert list(m.parameters()) == [] and list(m.children()) == []
    assert m.n == 5


def test_reassignment_and_deletion_unregister():
    m = nn.Module()
    m.w = nn.Parameter(gf.zeros(2))
    p2 = nn.Parameter(gf.ones(3))
    m.w = p2  # re-assign a new Parameter
    assert list(m.parameters()) == [p2]
    for plain in (3.0, gf.ones(3)):  # as in PyTorch: only a Parameter (or None) replaces one
        with pytest.raises(TypeError, match="as parameter 'w'.*Parameter or None expected"):
            m.w = plain
    assert list(m.parameters()) == [p2]
    m.w = nn.Parameter(gf.zeros(1))
    m.w = nn.Linear(2, 2)  # a module over a parameter: now a child, not a parameter
    assert [n for n, _ in m.named_parameters()] == ["w.weight", "w.bias"]
    assert list(dict(m.named_children())) == ["w"]
    m.w = nn.Parameter(gf.zeros(1))  # and back
    assert list(dict(m.named_children())) == [] and [n for n, _ in m.named_parameters()] == ["w"]
    del m.w
    assert list(m.parameters()) == []
    assert not hasattr(m, "w")
    m.sub = nn.ReLU()
    del m.sub
    assert list(m.children()) == []


def test_register_parameter():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(gf.zeros(2)))
    assert [n for n, _ in m.named_parameters()] == ["w"]
    m.register_parameter("w", None)
    assert list(m.parameters()) == [] and m.w is None


def test_forgetting_super_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_forward_not_defined():
    with pytest.raises(NotImplementedError):
        nn.Module()(gf.zeros(1))


def test_shared_parameters_listed_once():
    m = nn.Module()
    m.a = nn.Linear(2, 2)
    m.b = nn.Linear(2, 2)
    m.b.weight = m.a.weight  # tied weights
    names = [n for n, _ in m.named_parameters()]
    assert names == ["a.weight", "a.bias", "b.bias"]
    assert len(list(m.parameters())) == 3


def test_shared_submodule_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    mods = list(seq.modules())
    assert mods[0] is seq and sum(m is shared for m in mods) == 1
    assert len(mods) == 3


def test_named_parameters_nested_dotted_and_non_recursive():
    outer = nn.Module()
    outer.w = nn.Parameter(gf.zeros(1))
    outer.inner = nn.Sequential(nn.Linear(1, 2), nn.Sequential(nn.Linear(2, 3)))
    names = [n for n, _ in outer.named_parameters()]
    assert names == ["w", "inner.0.weight", "inner.0.bias", "inner.1.0.weight", "inner.1.0.bias"]
    assert [n for n, _ in outer.named_parameters(recurse=False)] == ["w"]
    assert [n for n, _ in outer.named_parameters(prefix="model")][:2] == ["model.w", "model.inner.0.weight"]


def test_modules_and_named_modules():
    m = TwoLayer()
    named = list(m.named_modules())
    assert [n for n, _ in named] == ["", "fc1", "act", "fc2"]
    assert list(m.modules()) == [m, m.fc1, m.act, m.fc2]
    seq = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1", "1.0"]


def test_train_eval_recursive():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    assert m.train() is m
    assert all(x.training for x in m.modules())
    m.train(False)
    assert not any(x.training for x in m.modules())


def test_zero_grad_module():
    m = TwoLayer()
    m(gf.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    grads = [p.grad for p in m.parameters()]
    m.zero_grad(set_to_none=False)
    for p, g in zip(m.parameters(), grads):
        assert p.grad is g and np.all(host(p.grad) == 0)
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.zero_grad(set_to_none=False)  # no grads: stays None, no error
    assert all(p.grad is None for p in m.parameters())


# ==== to(device) =====================================================================================
def test_to_cpu_is_noop_same_objects():
    m = TwoLayer()
    before = [(p, p.array) for p in m.parameters()]
    assert m.to("cpu") is m
    assert m.cpu() is m
    for (p, d), q in zip(before, m.parameters()):
        assert p is q and q.array is d and q.device == "cpu"


@pytest.mark.skipif(_CUDA_SKIP is None, reason="a GPU is usable here")
def test_to_cuda_without_gpu_raises():
    m = nn.Linear(2, 2)
    with pytest.raises(RuntimeError):
        m.to("cuda")
    with pytest.raises(RuntimeError):
        m.cuda()
    assert m.weight.device == "cpu"


def test_to_bad_device_string():
    with pytest.raises(ValueError):
        nn.Linear(2, 2).to("tpu")


def test_to_device_keeps_parameter_objects(device):
    m = TwoLayer()
    params = list(m.parameters())
    vals = [host(p).copy() for p in params]
    m(gf.randn(2, 3)).sum().backward()
    m.to(device)
    assert list(m.parameters()) == params
    for p, v in zip(m.parameters(), vals):
        assert p.device == canonical_device(device)
        assert p.requires_grad and p.is_leaf
        np.testing.assert_array_equal(host(p), v)
        assert p.grad is not None and p.grad.device == p.device
    out = m(gf.randn(2, 3, device=device))
    assert out.device == params[0].device
    m.to("cpu")
    assert all(p.device == "cpu" for p in m.parameters())


# ==== state_dict / load_state_dict ===================================================================
def test_state_dict_keys_values_and_roundtrip():
    gf.manual_seed(0)
    a, b = TwoLayer(), TwoLayer()
    sd = a.state_dict()
    assert list(sd) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    for k, p in a.named_parameters():
        assert not sd[k].requires_grad
        np.testing.assert_array_equal(host(sd[k]), host(p))
    x = gf.randn(4, 3)
    assert not np.allclose(host(a(x)), host(b(x)))
    res = b.load_state_dict(sd)
    assert tuple(res) == ([], [])
    np.testing.assert_array_equal(host(a(x)), host(b(x)))
    # b holds copies, not a's memory
    with gf.no_grad():
        a.fc1.weight.array[...] = 0
    assert not np.all(host(b.fc1.weight) == 0)


def test_load_state_dict_accepts_numpy_and_bumps_nothing_in_graph():
    m = nn.Linear(2, 1)
    m.load_state_dict({"weight": np.array([[1.0, 2.0]]), "bias": np.array([0.5])})
    np.testing.assert_allclose(host(m(gf.tensor([[1.0, 1.0]]))), [[3.5]])
    assert m.weight.is_leaf and m.weight.requires_grad and m.weight.dtype == np.float32


def test_load_state_dict_strict_lists_all_problems():
    m = TwoLayer()
    sd = dict(m.state_dict())
    del sd["fc1.bias"]
    sd["extra.weight"] = gf.zeros(1)
    sd["fc2.weight"] = gf.zeros(5, 5)
    before = host(m.fc1.weight).copy()
    with pytest.raises(RuntimeError) as ei:
        m.load_state_dict(sd)
    msg = str(ei.value)
    assert "fc1.bias" in msg and "missing" in msg
    assert "extra.weight" in msg and "unexpected" in msg
    assert "fc2.weight" in msg and "(5, 5)" in msg and "(2, 4)" in msg
    np.testing.assert_array_equal(host(m.fc1.weight), before)  # nothing loaded on failure


def test_load_state_dict_non_strict_returns_keys():
    src, dst = TwoLayer(), TwoLayer()
    sd = dict(src.state_dict())
    del sd["fc2.bias"]
    sd["bogus"] = gf.zeros(1)
    missing, unexpected = dst.load_state_dict(sd, strict=False)
    assert missing == ["fc2.bias"] and unexpected == ["bogus"]
    res = dst.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc2.bias"] and res.unexpected_keys == ["bogus"]
    np.testing.assert_array_equal(host(dst.fc1.weight), host(src.fc1.weight))
    # shape mismatches raise even when not strict (as in PyTorch)
    sd["fc1.weight"] = gf.zeros(1)
    with pytest.raises(RuntimeError, match="fc1.weight"):
        dst.load_state_dict(sd, strict=False)


# ==== repr =============================================================================================
def test_repr_nested_sequential_matches_torch_layout():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Tanh(), nn.Linear(3, 1, bias=False)))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Tanh()\n"
        "    (1): Linear(in_features=3, out_features=1, bias=False)\n"
        "  )\n"
        ")")


def test_repr_same_as_torch(torch):
    tn = torch.nn
    g = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Sigmoid(), nn.Linear(3, 1)),
                      nn.LeakyReLU(0.2), nn.Softplus(2.0, 10.0))
    t = tn.Sequential(tn.Linear(2, 3), tn.ReLU(), tn.Sequential(tn.Sigmoid(), tn.Linear(3, 1)),
                      tn.LeakyReLU(0.2), tn.Softplus(2.0, 10.0))
    assert repr(g) == repr(t)
    assert repr(TwoLayer()).startswith("TwoLayer(\n  (fc1): Linear(in_features=3")


def test_repr_extra_and_children_like_torch():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 1)

        def extra_repr(self):
            return "scale=2"

    assert repr(Block()) == ("Block(\n  scale=2\n  (fc): Linear(in_features=1, out_features=1, bias=True)\n)")


# ==== Linear ===========================================================================================
def test_linear_shapes_and_forward(device):
    gf.manual_seed(1)
    lin = nn.Linear(5, 3, dtype=gf.float64, device=device)
    assert lin.weight.shape == (3, 5) and lin.bias.shape == (3,)
    assert lin.in_features == 5 and lin.out_features == 3
    W, b = host(lin.weight), host(lin.bias)
    rng = np.random.default_rng(0)
    for shape in [(5,), (4, 5), (2, 4, 5)]:
        x = rng.standard_normal(shape)
        y = lin(gf.tensor(x, device=device))
        assert y.shape == shape[:-1] + (3,)
        np.testing.assert_allclose(host(y), x @ W.T + b, rtol=1e-12, atol=1e-12)


def test_linear_no_bias_and_grads():
    lin = nn.Linear(3, 2, bias=False, dtype=gf.float64)
    assert lin.bias is None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    x = np.random.default_rng(2).standard_normal((4, 3))
    lin(gf.tensor(x)).sum().backward()
    np.testing.assert_allclose(host(lin.weight.grad), np.ones((4, 2)).T @ x, rtol=1e-12)
    lin2 = nn.Linear(3, 2, dtype=gf.float64)
    lin2(gf.tensor(x)).sum().backward()
    np.testing.assert_allclose(host(lin2.bias.grad), [4.0, 4.0])


def test_linear_default_dtype_float32_and_bad_features():
    assert nn.Linear(2, 2).weight.dtype == np.float32
    with pytest.raises(ValueError):
        nn.Linear(0, 2)


def test_linear_default_init_like_torch():
    gf.manual_seed(0)
    n_in, n_out = 400, 300
    lin = nn.Linear(n_in, n_out, dtype=gf.float64)
    bound = 1 / math.sqrt(n_in)
    w, b = host(lin.weight), host(lin.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # fills the interval
    # U(-bound, bound): mean 0, std bound/sqrt(3); 120000 draws -> std error ~ 0.3 %
    assert abs(w.mean()) < 0.01 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    # uniform, not normal: the fraction in the central half-interval is 1/2
    assert np.mean(np.abs(w) < bound / 2) == pytest.approx(0.5, abs=0.01)
    assert np.std(b) == pytest.approx(bound / math.sqrt(3), rel=0.2)
    gf.manual_seed(0)
    lin2 = nn.Linear(n_in, n_out, dtype=gf.float64)
    np.testing.assert_array_equal(host(lin2.weight), w)


# ==== Sequential =========================================================================================
def test_sequential_forward_index_slice_len_iter():
    gf.manual_seed(3)
    l1, l2 = nn.Linear(3, 4, dtype=gf.float64), nn.Linear(4, 2, dtype=gf.float64)
    seq = nn.Sequential(l1, nn.Tanh(), l2)
    x = gf.tensor(np.random.default_rng(1).standard_normal((5, 3)))
    np.testing.assert_allclose(host(seq(x)), host(l2(F.tanh(l1(x)))), rtol=1e-14)
    assert len(seq) == 3
    assert seq[0] is l1 and seq[2] is l2 and seq[-1] is l2
    assert list(seq) == [l1, seq[1], l2]
    sub = seq[:2]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is l1
    np.testing.assert_allclose(host(sub(x)), host(F.tanh(l1(x))), rtol=1e-14)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(IndexError):
        seq[3]
    assert len(nn.Sequential()) == 0


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), lambda x: x)
    with pytest.raises(TypeError):
        nn.Sequential([nn.ReLU()])


# ==== Dropout =============================================================================================
def test_dropout_train_statistics_and_scale(device):
    p = 0.3
    d = nn.Dropout(p)
    gf.manual_seed(0)
    x = gf.ones(200_000, dtype=gf.float64, device=device)
    y = host(d(x))
    zero = y == 0
    assert zero.mean() == pytest.approx(p, abs=0.005)
    np.testing.assert_allclose(y[~zero], 1 / (1 - p), rtol=1e-15)
    assert y.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_reproducible_and_grad():
    d = nn.Dropout(0.5)
    x = gf.tensor(np.arange(1.0, 101.0), requires_grad=True)
    gf.manual_seed(7)
    y1 = d(x)
    gf.manual_seed(7)
    y2 = d(x)
    np.testing.assert_array_equal(host(y1), host(y2))
    y3 = d(x)
    assert not np.array_equal(host(y1), host(y3))
    y1.sum().backward()
    mask = host(y1) / np.arange(1.0, 101.0)
    np.testing.assert_allclose(host(x.grad), mask)
    assert set(np.unique(mask)) <= {0.0, 2.0}


def test_dropout_eval_identity_and_p0():
    x = gf.randn(10)
    d = nn.Dropout(0.9).eval()
    np.testing.assert_array_equal(host(d(x)), host(x))
    np.testing.assert_array_equal(host(nn.Dropout(0.0)(x)), host(x))
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"


@pytest.mark.parametrize("p", [-0.1, 1.5, 2])
def test_dropout_invalid_p(p):
    with pytest.raises(ValueError):
        nn.Dropout(p)


def test_dropout_dtype_preserved():
    gf.manual_seed(0)
    assert nn.Dropout(0.5)(gf.ones(8, dtype=gf.float32)).dtype == np.float32


# ==== activation modules ======================================================================================
ACTS = [
    (nn.Sigmoid(), lambda x: F.sigmoid(x)),
    (nn.Tanh(), lambda x: F.tanh(x)),
    (nn.ReLU(), lambda x: F.relu(x)),
    (nn.LeakyReLU(), lambda x: F.leaky_relu(x, 0.01)),
    (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    (nn.GELU(), lambda x: F.gelu(x)),
    (nn.GELU("tanh"), lambda x: F.gelu(x, "tanh")),
    (nn.Softplus(), lambda x: F.softplus(x)),
    (nn.Softplus(2.0, 1.0), lambda x: F.softplus(x, 2.0, 1.0)),
]


@pytest.mark.parametrize("mod,fn", ACTS, ids=[repr(m) for m, _ in ACTS])
def test_activation_modules_match_functional(mod, fn):
    x = t64(np.linspace(-4, 4, 41))
    np.testing.assert_array_equal(host(mod(x)), host(fn(x)))
    assert list(mod.parameters()) == []


@pytest.mark.parametrize("idx", range(len(ACTS)), ids=[repr(m) for m, _ in ACTS])
def test_activation_modules_vs_torch(idx, torch):
    tn = torch.nn
    tmods = [tn.Sigmoid(), tn.Tanh(), tn.ReLU(), tn.LeakyReLU(), tn.LeakyReLU(0.2), tn.GELU(),
             tn.GELU("tanh"), tn.Softplus(), tn.Softplus(2.0, 1.0)]
    xs = np.linspace(-4, 4, 41)
    x = t64(xs)
    y = ACTS[idx][0](x)
    tx = torch.tensor(xs, requires_grad=True)
    ty = tmods[idx](tx)
    np.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


# ==== losses ================================================================================================
RED = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", RED)
def test_mse_loss_numpy(reduction):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    out = host(nn.MSELoss(reduction)(t64(a), t64(b, requires_grad=False)))
    ref = {"mean": ((a - b) ** 2).mean(), "sum": ((a - b) ** 2).sum(), "none": (a - b) ** 2}[reduction]
    np.testing.assert_allclose(out, ref, rtol=1e-13)


def test_loss_invalid_reduction_and_shape():
    with pytest.raises(ValueError):
        nn.MSELoss("avg")
    with pytest.raises(ValueError):
        nn.CrossEntropyLoss(reduction="bad")
    with pytest.raises(ValueError):
        nn.MSELoss()(gf.zeros(3), gf.zeros(3, 1))
    assert repr(nn.MSELoss()) == "MSELoss(reduction='mean')"


@pytest.mark.parametrize("reduction", RED)
def test_losses_vs_torch(reduction, torch):
    tn = torch.nn
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 4)) * 3
    labels = np.array([0, 3, 1, 2, 3, 0])
    probs = rng.random((6, 4)) + 0.1
    probs /= probs.sum(1, keepdims=True)
    target01 = rng.random((6, 4))
    cases = [
        (nn.MSELoss(reduction), tn.MSELoss(reduction=reduction), target01, torch.tensor(target01)),
        (nn.CrossEntropyLoss(reduction=reduction), tn.CrossEntropyLoss(reduction=reduction),
         gf.tensor(labels), torch.tensor(labels)),
        (nn.CrossEntropyLoss(reduction=reduction), tn.CrossEntropyLoss(reduction=reduction), probs, torch.tensor(probs)),
        (nn.BCEWithLogitsLoss(reduction=reduction), tn.BCEWithLogitsLoss(reduction=reduction),
         target01, torch.tensor(target01)),
    ]
    for gmod, tmod, gt, tt in cases:
        x = t64(logits)
        gt = gt if isinstance(gt, gf.Tensor) else t64(gt, requires_grad=False)
        tx = torch.tensor(logits, requires_grad=True)
        y, ty = gmod(x, gt), tmod(tx, tt)
        np.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=repr(gmod))
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-14,
                                   err_msg=repr(gmod))


def test_bce_with_logits_extreme_logits_finite():
    x = t64([-800.0, 0.0, 800.0])
    y = nn.BCEWithLogitsLoss(reduction="none")(x, t64([1.0, 0.5, 0.0], requires_grad=False))
    np.testing.assert_allclose(host(y), [800.0, math.log(2), 800.0])


# ==== nn.init ===============================================================================================
def test_calculate_gain_values():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError):
        init.calculate_gain("swish")


def test_calculate_gain_vs_torch(torch):
    for nl, param in [("linear", None), ("conv1d", None), ("conv3d", None), ("sigmoid", None),
                      ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.3),
                      ("selu", None)]:
        assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param),
                                                               rel=1e-15)


def test_calculate_gain_conv_transpose():
    for nl in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        assert init.calculate_gain(nl) == 1.0


def _big(shape=(256, 128, 3)):
    return gf.zeros(*shape, dtype=gf.float64)


def test_xavier_uniform_bounds_and_std():
    gf.manual_seed(0)
    t = _big()
    fan_in, fan_out = 128 * 3, 256 * 3
    out = init.xavier_uniform_(t, gain=2.0)
    assert out is t
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    a = host(t)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert a.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_xavier_normal_std():
    gf.manual_seed(0)
    t = _big()
    assert init.xavier_normal_(t) is t
    std = math.sqrt(2 / (128 * 3 + 256 * 3))
    a = host(t)
    assert a.std() == pytest.approx(std, rel=0.01) and abs(a.mean()) < 0.01 * std
    assert np.abs(a).max() > 3 * std  # normal, not bounded like a uniform


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nl,a", [("relu", 0), ("leaky_relu", 0), ("leaky_relu", 0.2),
                                  ("leaky_relu", math.sqrt(5)), ("tanh", 0), ("linear", 0)])
def test_kaiming_uniform_and_normal(mode, nl, a):
    shape = (200, 64, 3)
    fan = 64 * 3 if mode == "fan_in" else 200 * 3
    slope = a
    gain = {"relu": math.sqrt(2), "leaky_relu": math.sqrt(2 / (1 + slope**2)), "tanh": 5 / 3,
            "linear": 1.0}[nl]
    std = gain / math.sqrt(fan)
    gf.manual_seed(1)
    t = gf.zeros(*shape, dtype=gf.float64)
    assert init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nl) is t
    u = host(t)
    bound = math.sqrt(3) * std
    assert np.abs(u).max() <= bound * (1 + 1e-12) and np.abs(u).max() > 0.99 * bound
    assert u.std() == pytest.approx(std, rel=0.02)
    t2 = gf.zeros(*shape, dtype=gf.float64)
    assert init.kaiming_normal_(t2, a=a, mode=mode, nonlinearity=nl) is t2
    assert host(t2).std() == pytest.approx(std, rel=0.02)


def test_kaiming_defaults_relu_gain():
    gf.manual_seed(0)
    t = gf.zeros(300, 500, dtype=gf.float64)
    init.kaiming_normal_(t)  # a=0, fan_in, leaky_relu -> gain sqrt(2)
    assert host(t).std() == pytest.approx(math.sqrt(2 / 500), rel=0.01)


def test_kaiming_bad_mode():
    with pytest.raises(ValueError):
        init.kaiming_uniform_(gf.zeros(3, 3), mode="fan_avg")


def test_fan_needs_2d():
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.raises(ValueError):
            fn(gf.zeros(5))
        with pytest.raises(ValueError):
            fn(gf.tensor(1.0))


def test_simple_inits_in_place_and_not_recorded(device):
    p = nn.Parameter(gf.ones(3, 4, dtype=gf.float64, device=device))
    data = p.array
    for fn, check in [
        (lambda t: init.zeros_(t), lambda a: np.all(a == 0)),
        (lambda t: init.ones_(t), lambda a: np.all(a == 1)),
        (lambda t: init.constant_(t, 2.5), lambda a: np.all(a == 2.5)),
        (lambda t: init.uniform_(t, -0.5, 0.25), lambda a: a.min() >= -0.5 and a.max() < 0.25),
        (lambda t: init.normal_(t, 10.0, 0.01), lambda a: np.all(np.abs(a - 10) < 0.1)),
    ]:
        out = fn(p)
        assert out is p
        assert p.array is data and p.is_leaf and p.grad_fn is None and p.requires_grad
        assert check(host(p))
    # still usable as a leaf after in-place init
    (p * p).sum().backward()
    np.testing.assert_allclose(host(p.grad), 2 * host(p))


def test_init_dtype_preserved_and_reproducible():
    t = gf.zeros(50, 20)
    gf.manual_seed(11)
    init.xavier_uniform_(t)
    a = host(t).copy()
    assert t.dtype == np.float32
    gf.manual_seed(11)
    init.xavier_uniform_(t)
    np.testing.assert_array_equal(host(t), a)
    init.xavier_uniform_(t)
    assert not np.array_equal(host(t), a)
    for fn in (init.normal_, init.uniform_, init.kaiming_normal_):
        gf.manual_seed(3)
        fn(t)
        first = host(t).copy()
        gf.manual_seed(3)
        fn(t)
        np.testing.assert_array_equal(host(t), first)


def test_init_uniform_normal_statistics():
    gf.manual_seed(0)
    t = gf.zeros(100_000, dtype=gf.float64)
    init.uniform_(t, 2.0, 4.0)
    a = host(t)
    assert a.min() >= 2.0 and a.max() < 4.0
    assert a.mean() == pytest.approx(3.0, abs=0.01) and a.std() == pytest.approx(2 / math.sqrt(12), rel=0.01)
    init.normal_(t, -1.0, 3.0)
    a = host(t)
    assert a.mean() == pytest.approx(-1.0, abs=0.05) and a.std() == pytest.approx(3.0, rel=0.01)
