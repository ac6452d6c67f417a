"""gf.nn against torch.nn: functional activations, normalisation, attention, embeddings, padding
and losses (values and input gradients in float64, plus a gradcheck), the layer modules,
containers and Module features (buffers, hooks, apply, dtype conversion), utils and init."""
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

import gradflow as gf  # noqa: E402
import gradflow.nn.functional as F  # noqa: E402
from gradflow import nn  # noqa: E402
from gradflow.autograd import gradcheck  # noqa: E402


def _n(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _u(shape, lo, hi, seed):
    return np.random.default_rng(seed).uniform(lo, hi, shape)


LABELS = np.array([2, 0, 1, 2])
LABELS_IGN = np.array([2, -100, 1, 0])
LABELS_3D = np.array([[0, 1, 2], [2, 2, 0]])
W3 = np.array([0.2, 1.0, 2.5])
PROBS = np.random.default_rng(9).dirichlet(np.ones(3), 4)
TARGET = _u((4, 3), 0.05, 0.95, 8)


class _OnCuda:
    """gf.nn.functional, with the constants that _c builds created on the GPU."""

    def __getattr__(self, attr):
        return getattr(F, attr)


_ON_CUDA = _OnCuda()


def _c(L, a):
    if L is TF:
        return torch.tensor(a)
    return gf.tensor(a, device="cuda" if L is _ON_CUDA else "cpu")


def _softmaxed(L, a):
    return TF.log_softmax(a, 1) if L is TF else L.log_softmax(a, 1)


# (id, f(F-module, *tensors), inputs); F is gf.nn.functional or torch.nn.functional.
CASES = [
    *[(name, (lambda name: lambda L, a: getattr(L, name)(a))(name), [_n((3, 4), 0) * 3 + 0.01])
      for name in ["silu", "mish", "elu", "selu", "celu", "hardtanh", "relu6", "hardsigmoid",
                   "hardswish", "logsigmoid", "softsign"]],
    ("elu_alpha", lambda L, a: L.elu(a, 0.5), [_n((3, 4), 0)]),
    ("celu_alpha", lambda L, a: L.celu(a, 2.0), [_n((3, 4), 0)]),
    ("softmin", lambda L, a: L.softmin(a, dim=0), [_n((3, 4), 0)]),
    ("layer_norm", lambda L, a, w, b: L.layer_norm(a, (4,), w, b), [_n((3, 4), 0), _n((4,), 1), _n((4,), 2)]),
    ("layer_norm_2d", lambda L, a: L.layer_norm(a, (3, 4)), [_n((2, 3, 4), 0)]),
    ("normalize", lambda L, a: L.normalize(a, dim=1), [_n((3, 4), 0)]),
    ("normalize_p1", lambda L, a: L.normalize(a, p=1.0, dim=0), [_n((3, 4), 0)]),
    ("cosine_similarity", lambda L, a, b: L.cosine_similarity(a, b, dim=1), [_n((3, 4), 0), _n((3, 4), 1)]),
    ("sdpa", lambda L, q, k, v: L.scaled_dot_product_attention(q, k, v),
     [_n((2, 3, 4), 0), _n((2, 5, 4), 1), _n((2, 5, 2), 2)]),
    ("sdpa_causal", lambda L, q, k, v: L.scaled_dot_product_attention(q, k, v, is_causal=True),
     [_n((2, 1, 4, 3), 0), _n((2, 1, 4, 3), 1), _n((2, 1, 4, 3), 2)]),
    ("sdpa_mask", lambda L, q, k, v: L.scaled_dot_product_attention(
        q, k, v, attn_mask=_c(L, np.array([[True, False, True], [True, True, False]])), scale=0.3),
     [_n((2, 4), 0), _n((3, 4), 1), _n((3, 2), 2)]),
    ("sdpa_float_mask", lambda L, q, k, v: L.scaled_dot_product_attention(q, k, v, attn_mask=_c(L, _n((2, 3), 5))),
     [_n((2, 4), 0), _n((3, 4), 1), _n((3, 2), 2)]),
    ("embedding", lambda L, w: L.embedding(_c(L, np.array([[0, 2], [2, 3]])), w), [_n((4, 3), 0)]),
    ("embedding_pad", lambda L, w: L.embedding(_c(L, np.array([[0, 2], [1, 3]])), w, padding_idx=2), [_n((4, 3), 0)]),
    ("embedding_freq", lambda L, w: L.embedding(_c(L, np.array([[0, 2, 2], [2, 3, 0]])), w, padding_idx=3,
                                                scale_grad_by_freq=True), [_n((4, 3), 0)]),
    ("pad", lambda L, a: L.pad(a, (1, 2)), [_n((3, 4), 0)]),
    ("pad_2d_value", lambda L, a: L.pad(a, (0, 1, 2, 0), value=1.5), [_n((2, 3, 4), 0)]),
    ("pad_crop", lambda L, a: L.pad(a, (-1, 1)), [_n((3, 4), 0)]),
    *[(f"pad_{mode}_{'_'.join(map(str, p))}", (lambda mode, p: lambda L, a: L.pad(a, p, mode=mode))(mode, p), [_n(shape, 0)])
      for mode in ["reflect", "replicate", "circular"]
      for p, shape in [((2, 1), (2, 4)), ((1, 3), (2, 3, 4)), ((-1, 2), (2, 3, 4)), ((1, 2, 2, 0), (2, 3, 4)),
                       ((0, 1, -1, 2), (2, 2, 3, 4)), ((1, 1, 2, 0, 1, 2), (2, 3, 3, 4)),
                       ((1, 0, 1, 2, 2, 1), (1, 2, 3, 3, 4))]],
    ("glu", lambda L, a: L.glu(a) + L.glu(a, 0).sum(), [_n((4, 6), 0)]),
    ("threshold", lambda L, a: L.threshold(a, 0.2, -1.5), [_n((3, 4), 0)]),
    ("shrinks", lambda L, a: L.tanhshrink(a) + L.softshrink(a, 0.3) * L.hardshrink(a), [_n((3, 4), 0) * 2]),
    ("prelu", lambda L, a, w: L.prelu(a, w), [_n((2, 3, 4), 0), _u((3,), 0.1, 0.5, 1)]),
    ("prelu_single", lambda L, a, w: L.prelu(a, w), [_n((3, 4), 0), _u((1,), 0.1, 0.5, 1)]),
    ("rms_norm", lambda L, a, w: L.rms_norm(a, (4,), w) + L.rms_norm(a, (3, 4), eps=1e-3),
     [_n((2, 3, 4), 0), _n((4,), 1)]),
    ("group_norm", lambda L, a, w, b: L.group_norm(a, 2, w, b), [_n((2, 4, 3), 0), _n((4,), 1), _n((4,), 2)]),
    ("pairwise_distance", lambda L, a, b: L.pairwise_distance(a, b) + L.pairwise_distance(a, b, p=1.0, keepdim=True).sum(),
     [_n((3, 4), 0), _n((3, 4), 1)]),
    ("batch_norm_train", lambda L, a, w, b: L.batch_norm(a, None, None, w, b, training=True),
     [_n((5, 3), 0), _n((3,), 1), _n((3,), 2)]),
    ("batch_norm_3d", lambda L, a: L.batch_norm(a, None, None, training=True), [_n((4, 3, 2), 0)]),
    # losses
    ("ce_weight", lambda L, x: L.cross_entropy(x, _c(L, LABELS), weight=_c(L, W3)), [_n((4, 3), 0)]),
    ("ce_ignore", lambda L, x: L.cross_entropy(x, _c(L, LABELS_IGN)), [_n((4, 3), 0)]),
    ("ce_ignore_sum", lambda L, x: L.cross_entropy(x, _c(L, LABELS_IGN), reduction="sum"), [_n((4, 3), 0)]),
    ("ce_smooth", lambda L, x: L.cross_entropy(x, _c(L, LABELS), label_smoothing=0.1), [_n((4, 3), 0)]),
    ("ce_smooth_weight_ignore", lambda L, x: L.cross_entropy(x, _c(L, LABELS_IGN), weight=_c(L, W3),
                                                             label_smoothing=0.2), [_n((4, 3), 0)]),
    ("ce_nd", lambda L, x: L.cross_entropy(x, _c(L, LABELS_3D)), [_n((2, 3, 3), 0)]),
    ("ce_nd_none", lambda L, x: L.cross_entropy(x, _c(L, LABELS_3D), reduction="none"), [_n((2, 3, 3), 0)]),
    ("ce_probs_smooth_weight", lambda L, x: L.cross_entropy(x, _c(L, PROBS), weight=_c(L, W3),
                                                            label_smoothing=0.1), [_n((4, 3), 0)]),
    ("ce_probs_nd", lambda L, x: L.cross_entropy(x, _c(L, np.moveaxis(np.random.default_rng(1).dirichlet(
        np.ones(3), (2, 4)), -1, 1))), [_n((2, 3, 4), 0)]),
    ("nll", lambda L, x: L.nll_loss(_softmaxed(L, x), _c(L, LABELS_IGN), weight=_c(L, W3)), [_n((4, 3), 0)]),
    ("l1", lambda L, x: L.l1_loss(x, _c(L, TARGET)), [_n((4, 3), 0)]),
    ("huber", lambda L, x: L.huber_loss(x, _c(L, TARGET), delta=0.7), [_n((4, 3), 0)]),
    ("smooth_l1", lambda L, x: L.smooth_l1_loss(x, _c(L, TARGET), beta=0.5), [_n((4, 3), 0)]),
    ("bce", lambda L, x: L.binary_cross_entropy(x, _c(L, TARGET)), [_u((4, 3), 0.05, 0.95, 0)]),
    ("bce_weight", lambda L, x: L.binary_cross_entropy(x, _c(L, TARGET), weight=_c(L, W3), reduction="sum"),
     [_u((4, 3), 0.05, 0.95, 0)]),
    ("bce_logits_pos_weight", lambda L, x: L.binary_cross_entropy_with_logits(
        x, _c(L, TARGET), pos_weight=_c(L, W3)), [_n((4, 3), 0)]),
    ("kl_div", lambda L, x: L.kl_div(_softmaxed(L, x), _c(L, PROBS), reduction="batchmean"), [_n((4, 3), 0)]),
    ("kl_div_log_target", lambda L, x: L.kl_div(_softmaxed(L, x), _c(L, np.log(PROBS)), reduction="sum",
                                                log_target=True), [_n((4, 3), 0)]),
]


def _lib(L):
    return gf if L is F else torch


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_functional_matches_torch(name, fn, arrays):
    out = {}
    for L in (F, TF):
        ts = [_lib(L).tensor(a, requires_grad=True) for a in arrays]
        y = fn(L, *ts)
        w = np.random.default_rng(3).standard_normal(tuple(y.shape))
        (y * _lib(L).tensor(w)).sum().backward()
        out[L] = (y.detach().numpy(), [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in ts])
    # torch's hardsigmoid multiplies by 1/6 rounded to float32 even in float64
    tol = 1e-7 if name == "hardsigmoid" else 1e-9
    np.testing.assert_allclose(out[F][0], out[TF][0], rtol=tol, atol=1e-12)
    for a, b in zip(out[F][1], out[TF][1]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=1e-12)


# The padding row of an embedding gets no gradient, and scale_grad_by_freq scales it, by design:
# finite differences disagree.
NOT_GRADIENTS = {"embedding_pad", "embedding_freq"}


@pytest.mark.parametrize("name,fn,arrays", [c for c in CASES if c[0] not in NOT_GRADIENTS],
                         ids=[c[0] for c in CASES if c[0] not in NOT_GRADIENTS])
def test_functional_gradcheck(name, fn, arrays):
    assert gradcheck(lambda *xs: fn(F, *xs), [gf.tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm_renormalises_in_place_as_torch(device, norm_type):
    w = _n((5, 3), 0) * 2
    idx = np.array([[0, 2, 2], [4, 0, 1]])
    gm = nn.Embedding(5, 3, max_norm=1.5, norm_type=norm_type, scale_grad_by_freq=True,
                      _weight=gf.tensor(w, device=device))
    tm = torch.nn.Embedding(5, 3, max_norm=1.5, norm_type=norm_type, scale_grad_by_freq=True,
                            _weight=torch.tensor(w))
    v = gm.weight._vbox[0]
    gy, ty = gm(gf.tensor(idx, device=device)), tm(torch.tensor(idx))
    assert gm.weight._vbox[0] > v and gm.weight.grad_fn is None
    np.testing.assert_allclose(gm.weight.detach().cpu().numpy(), tm.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gy.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)
    g = _n(tuple(ty.shape), 1)
    (gy * gf.tensor(g, device=device)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(gm.weight.grad.cpu().numpy(), tm.weight.grad.numpy(), rtol=1e-12)
    out = F.embedding(gf.tensor(idx, device=device), gf.tensor(w, device=device), max_norm=1.0)
    assert float(out.norm(dim=-1).max()) <= 1.0
    assert "max_norm=1.5" in repr(gm)


def test_embedding_errors():
    w = gf.zeros(4, 3)
    with pytest.raises(NotImplementedError, match="sparse"):
        F.embedding(gf.tensor([0]), w, sparse=True)
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(4, 3, sparse=True)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(gf.tensor([-1]), w)
    with pytest.raises(TypeError, match="integer"):
        F.embedding(gf.tensor([0.0]), w)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 3, padding_idx=4)
    e = nn.Embedding.from_pretrained(gf.ones(4, 3), freeze=False, padding_idx=-1)
    assert e.padding_idx == 3 and e.weight.requires_grad
    assert not nn.Embedding.from_pretrained(gf.ones(4, 3)).weight.requires_grad


def test_pad_errors_as_torch():
    x = gf.zeros(2, 3)
    with pytest.raises(NotImplementedError, match="batch"):
        F.pad(gf.zeros(3), (1, 1), mode="reflect")
    with pytest.raises(NotImplementedError, match="batch"):
        F.pad(x, (1, 1, 1, 1), mode="replicate")
    with pytest.raises(RuntimeError, match="less than the size"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(RuntimeError, match="more than once"):
        F.pad(x, (4, 0), mode="circular")
    with pytest.raises(RuntimeError, match="value"):
        F.pad(x, (1, 1), mode="reflect", value=2.0)
    with pytest.raises(RuntimeError, match="divisible by 2"):
        F.pad(x, (1,))
    with pytest.raises(NotImplementedError, match="unrecognised"):
        F.pad(x, (1, 1), mode="wrap")
    assert F.pad(x, (1, 1), mode="circular", value=0).shape == (2, 5) == tuple(
        TF.pad(torch.zeros(2, 3), (1, 1), mode="circular", value=0).shape)


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_functional_cuda_matches_cpu(name, fn, arrays):
    """The same function on the CUDA backend: values and gradients as on the CPU."""
    from conftest import _CUDA_SKIP

    if _CUDA_SKIP is not None:
        pytest.skip(_CUDA_SKIP)

    results = []
    for device in ("cpu", "cuda"):
        ts = [gf.tensor(a, requires_grad=True, device=device) for a in arrays]
        out = fn(F if device == "cpu" else _ON_CUDA, *ts)
        out.sum().backward()
        results.append([out.detach().cpu().numpy()] + [t.grad.cpu().numpy() if t.grad is not None
                                                          else np.zeros(t.shape) for t in ts])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_dropout_and_one_hot():
    x = gf.ones(1000, dtype=gf.float64)
    y = F.dropout(x, 0.3)
    kept = y.numpy() != 0
    assert 0.6 < kept.mean() < 0.8 and np.allclose(y.numpy()[kept], 1 / 0.7)
    assert F.dropout(x, 0.3, training=False) is x
    np.testing.assert_array_equal(F.one_hot(gf.tensor([[0, 2], [1, 1]]), 4).numpy(),
                                  TF.one_hot(torch.tensor([[0, 2], [1, 1]]), 4).numpy())
    assert F.one_hot(gf.tensor([0, 3])).shape == (2, 4)


# ---- modules ---------------------------------------------------------------------------------------
def _copy_params(gm, tm):
    with torch.no_grad():
        for (gn, gp), (tn, tp) in zip(gm.state_dict().items(), tm.state_dict().items()):
            assert gn == tn
            tp.copy_(torch.tensor(gp.numpy()))


@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.Embedding(6, 3, padding_idx=1),
    lambda lib: lib.nn.LayerNorm(4),
    lambda lib: lib.nn.BatchNorm1d(4),
    lambda lib: lib.nn.Sequential(lib.nn.Linear(4, 5), lib.nn.SiLU(), lib.nn.Linear(5, 4), lib.nn.Hardswish()),
    lambda lib: lib.nn.Sequential(OrderedDict([("fc", lib.nn.Linear(4, 4)), ("act", lib.nn.ELU(0.3))])),
    lambda lib: lib.nn.Sequential(lib.nn.Flatten(), lib.nn.Unflatten(1, (2, 2)), lib.nn.Identity()),
], ids=["embedding", "layernorm", "batchnorm1d", "mlp", "ordered_dict", "flatten"])
def test_modules_match_torch(make):
    gm, tm = make(gf), make(torch).double()
    gm.double()
    _copy_params(gm, tm)
    is_embedding = isinstance(gm, nn.Embedding)
    x = np.array([[0, 1, 5], [3, 1, 2]]) if is_embedding else _n((6, 4), 0)
    for step in range(2):  # batch norm: a second step sees updated running statistics
        gx = gf.tensor(x, requires_grad=not is_embedding)
        tx = torch.tensor(x, requires_grad=not is_embedding)
        gy, ty = gm(gx), tm(tx)
        np.testing.assert_allclose(gy.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-12)
        gy.sum().backward()
        ty.sum().backward()
        for (name, gp), tp in zip(gm.named_parameters(), tm.parameters()):
            np.testing.assert_allclose(gp.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    for (name, gb), tb in zip(gm.named_buffers(), tm.buffers()):
        np.testing.assert_allclose(gb.numpy(), tb.numpy(), rtol=1e-12, err_msg=name)
    gm.eval()
    tm.eval()
    gx, tx = gf.tensor(x), torch.tensor(x)
    np.testing.assert_allclose(gm(gx).detach().numpy(), tm(tx).detach().numpy(), rtol=1e-9, atol=1e-12)


def test_loss_modules_match_torch():
    x = _n((4, 3), 0)
    for make, target in [
        (lambda lib: lib.nn.CrossEntropyLoss(weight=lib.tensor(W3), ignore_index=0, label_smoothing=0.1), LABELS),
        (lambda lib: lib.nn.NLLLoss(), LABELS), (lambda lib: lib.nn.L1Loss(reduction="sum"), TARGET),
        (lambda lib: lib.nn.HuberLoss(delta=0.5), TARGET), (lambda lib: lib.nn.SmoothL1Loss(beta=0.3), TARGET),
        (lambda lib: lib.nn.BCEWithLogitsLoss(pos_weight=lib.tensor(W3)), TARGET),
        (lambda lib: lib.nn.KLDivLoss(reduction="batchmean"), PROBS)]:
        g = make(gf)(gf.tensor(x), gf.tensor(target))
        t = make(torch)(torch.tensor(x), torch.tensor(target))
        np.testing.assert_allclose(g.item(), t.item(), rtol=1e-10)
    p = _u((4, 3), 0.1, 0.9, 0)
    np.testing.assert_allclose(nn.BCELoss()(gf.tensor(p), gf.tensor(TARGET)).item(),
                               torch.nn.BCELoss()(torch.tensor(p), torch.tensor(TARGET)).item())


def test_activation_modules_and_inplace_flag():
    x = _n((3, 4), 0)
    for name, args in [("SiLU", ()), ("ELU", (0.5,)), ("SELU", ()), ("CELU", (1.5,)), ("Mish", ()),
                       ("Hardswish", ()), ("Hardsigmoid", ()), ("Hardtanh", (-0.5, 0.5)), ("ReLU6", ()),
                       ("LogSigmoid", ()), ("Softsign", ()), ("Softmax", (0,)), ("LogSoftmax", (1,)),
                       ("Softmin", (1,))]:
        g = getattr(nn, name)(*args)(gf.tensor(x))
        t = getattr(torch.nn, name)(*args)(torch.tensor(x))
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(nn.ReLU(inplace=True)(gf.tensor(x)).numpy(), np.maximum(x, 0))
    assert "alpha=0.5" in repr(nn.ELU(0.5))


# ---- containers and Module features ------------------------------------------------------------------
def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 4 and len(list(layers.parameters())) == 8 and isinstance(layers[-1], nn.Linear)
    assert len(layers[1:3]) == 2
    d = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    assert list(d.keys()) == ["a", "b"] and "a" in d and [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]
    pl = nn.ParameterList([gf.zeros(2), nn.Parameter(gf.ones(3))])
    assert all(isinstance(p, nn.Parameter) for p in pl) and len(list(pl.parameters())) == 2
    pd = nn.ParameterDict({"w": gf.zeros(2)})
    assert isinstance(pd["w"], nn.Parameter) and [n for n, _ in pd.named_parameters()] == ["w"]
    s = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    s.append(nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[1:], nn.Sequential) and len(s[1:]) == 2
    assert s(gf.ones(2, 3)).shape == (2, 1)
    named = nn.Sequential(OrderedDict([("first", nn.Linear(2, 2))]))
    assert [n for n, _ in named.named_parameters()] == ["first.weight", "first.bias"]


def test_deleting_and_inserting_renumber_as_torch():
    """del and insert on Sequential and ModuleList leave the names torch's containers have."""
    for lib in (nn, torch.nn):
        def names(c):
            return [n for n, _ in c.named_modules() if n]

        seq = lib.Sequential(OrderedDict([("a", lib.ReLU()), ("b", lib.Tanh()), ("c", lib.ReLU())]))
        del seq[0]
        got = [names(seq)]
        seq.insert(1, lib.Sigmoid())
        got.append([type(m).__name__ for m in seq])
        with pytest.raises(IndexError):
            seq.insert(5, lib.ReLU())
        ml = lib.ModuleList([lib.ReLU(), lib.Tanh(), lib.Sigmoid()])
        del ml[1:2]
        got.append(names(ml))
        ml.insert(0, lib.Tanh())
        got.append([type(m).__name__ for m in ml] + names(ml))
        if lib is nn:
            ours = got
    assert ours == got


def test_buffers_state_dict_to_and_dtype():
    m = nn.Module()
    m.register_buffer("stats", gf.zeros(3))
    m.register_buffer("scratch", gf.ones(2), persistent=False)
    m.fc = nn.Linear(3, 2)
    assert list(m.state_dict()) == ["fc.weight", "fc.bias", "stats"]
    assert [n for n, _ in m.named_buffers()] == ["stats", "scratch"]
    m.stats = gf.ones(3)  # reassigning keeps it a buffer
    assert m.state_dict()["stats"].tolist() == [1.0, 1.0, 1.0]
    m2 = nn.Module()
    m2.register_buffer("stats", gf.zeros(3))
    m2.fc = nn.Linear(3, 2)
    m2.load_state_dict(m.state_dict())
    assert m2.stats.tolist() == [1.0, 1.0, 1.0]
    m.double()
    assert m.fc.weight.dtype == gf.float64 and m.stats.dtype == gf.float64
    m.to(gf.float32)
    assert m.fc.weight.dtype == gf.float32 and m.scratch.dtype == gf.float32
    m.half()
    assert m.fc.bias.dtype == gf.float16


def test_hooks_apply_requires_grad_add_module():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    seen = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: seen.append(out.shape) or out + 1)
    out = m(gf.ones(1, 2))
    assert seen == [(1, 2)] and np.all(out.detach().numpy() >= 1)
    h1.remove()
    h2.remove()
    m(gf.ones(1, 2))
    assert len(seen) == 1
    names = []
    m.apply(lambda mod: names.append(type(mod).__name__))
    assert names == ["Linear", "ReLU", "Sequential"]
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.add_module("extra", nn.Linear(2, 3))
    assert "extra" in dict(m.named_children()) and len(list(m.modules())) == 4
    m.apply(lambda mod: nn.init.zeros_(mod.weight) if isinstance(mod, nn.Linear) else None)
    assert m[0].weight.abs().sum().item() == 0


def test_utils_and_init():
    m = nn.Linear(3, 2)
    (m(gf.ones(4, 3)) * 100).sum().backward()
    t = torch.nn.Linear(3, 2)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        t.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    (t(torch.ones(4, 3)) * 100).sum().backward()
    gn = nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    tn = torch.nn.utils.clip_grad_norm_(t.parameters(), 1.0)
    np.testing.assert_allclose(gn.item(), tn.item(), rtol=1e-5)
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-5)
    nn.utils.clip_grad_value_(m.parameters(), 0.01)
    assert float(m.weight.grad.abs().amax()) <= 0.01
    v = nn.utils.parameters_to_vector(m.parameters())
    assert v.shape == (8,)
    nn.utils.vector_to_parameters(gf.arange(8.0), m.parameters())
    assert m.bias.tolist() == [6.0, 7.0]
    w = gf.zeros(4, 6)
    nn.init.orthogonal_(w)
    np.testing.assert_allclose((w @ w.T).numpy(), np.eye(4), atol=1e-5)
    nn.init.trunc_normal_(w, std=3.0, a=-1.0, b=1.0)
    assert float(w.abs().amax()) <= 1.0
    nn.init.eye_(w)
    np.testing.assert_array_equal(w.numpy(), np.eye(4, 6))
    nn.init.constant_(w, 2.5)
    nn.init.ones_(w[0])
    assert w.sum().item() == 2.5 * 18 + 6


@pytest.mark.parametrize("kind", ["Reflection", "Replication", "Circular", "Zero", "Constant"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_padding_layers_match_torch(kind, dims):
    name = f"{kind}Pad{dims}d"
    args = (2 if kind != "Circular" else 1,) + ((1.5,) if kind == "Constant" else ())
    x = _n((2, 3) + (4,) * dims, 0)
    for padding in [args[0], tuple(i % 3 for i in range(2 * dims))]:
        gm, tm = getattr(nn, name)(padding, *args[1:]), getattr(torch.nn, name)(padding, *args[1:])
        g, t = gf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        gy, ty = gm(g), tm(t)
        np.testing.assert_allclose(gy.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
        w = _n(tuple(ty.shape), 1)
        (gy * gf.tensor(w)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="padding"):
        getattr(nn, name)((1,) * (2 * dims + 1), *args[1:])


@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.PReLU(3), lambda lib: lib.nn.RMSNorm(4), lambda lib: lib.nn.RMSNorm((3, 4), eps=1e-4),
    lambda lib: lib.nn.GroupNorm(3, 3), lambda lib: lib.nn.GLU(), lambda lib: lib.nn.Threshold(0.1, 2.0),
    lambda lib: lib.nn.Softshrink(0.2), lambda lib: lib.nn.Hardshrink(), lambda lib: lib.nn.Tanhshrink(),
], ids=["prelu", "rmsnorm", "rmsnorm_2d", "groupnorm", "glu", "threshold", "softshrink", "hardshrink",
        "tanhshrink"])
def test_more_layers_match_torch(make):
    gm, tm = make(gf), make(torch).double()
    gm.double()
    _copy_params(gm, tm)
    x = _n((2, 3, 4), 0)
    g, t = gf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    gy, ty = gm(g), tm(t)
    np.testing.assert_allclose(gy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    (gy * gy).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (name, gp), (_, tp) in zip(gm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(gp.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_distance_modules_match_torch():
    a, b = _n((3, 4), 0), _n((3, 4), 1)
    for gm, tm in [(nn.CosineSimilarity(), torch.nn.CosineSimilarity()),
                   (nn.PairwiseDistance(p=3.0, keepdim=True), torch.nn.PairwiseDistance(p=3.0, keepdim=True))]:
        np.testing.assert_allclose(gm(gf.tensor(a), gf.tensor(b)).numpy(), tm(torch.tensor(a), torch.tensor(b)).numpy(),
                                   rtol=1e-10)
    with pytest.raises(ValueError, match="groups"):
        nn.GroupNorm(2, 3)
