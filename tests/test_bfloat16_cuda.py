"""bfloat16 on CUDA devices (CuPy >= 14, which holds ml_dtypes' type): the CPU's rule, float32
compute rounded once per op, so the results are the CPU's bit for bit wherever the float32
kernels agree. Every op case of test_bfloat16 on the device against the CPU (values and
gradients); creation, device moves both ways, casts, printing; checkpoints; SGD and Adam
training against the CPU's (float16 too); gf.jit; NCCL collectives. The CPU's results are
held to torch's by test_bfloat16. With CuPy 13 (itself, or the stand-in switched to it), every
way to a bfloat16 tensor on a device is a TypeError naming CuPy >= 14.
"""
import warnings

import numpy as np
import pytest

import gradflow as gf
import test_bfloat16 as base
from conftest import _CUDA_SKIP, gf_on, requires_cuda

bf16 = base.bf16
torch = base.torch
pytestmark = base.needs_ml_dtypes
_NO_BF16 = _CUDA_SKIP or (None if bf16 is None or gf.cuda.is_bf16_supported() else
                          "this CuPy has no bfloat16 (CuPy >= 14 has it)")
requires_cuda_bf16 = pytest.mark.skipif(_NO_BF16 is not None, reason=_NO_BF16 or "")


bits = base.bits


def assert_same_bits(got, want, what):
    """Bitwise equal bfloat16 tensors, NaN for NaN (a NaN's bits are the device's cast's)."""
    g, w = bits(got), bits(want)
    nan = np.isnan(want.detach().cpu().float().numpy())
    np.testing.assert_array_equal(np.isnan(got.detach().cpu().float().numpy()), nan, what)
    np.testing.assert_array_equal(g[~nan], w[~nan], what)


@pytest.fixture
def cupy13(monkeypatch):
    """A CuPy without bfloat16: CuPy 13, or the stand-in switched to model it."""
    import cupy

    if "stand-in" in cupy.__version__:
        monkeypatch.setattr(cupy, "_bfloat16", False)
        monkeypatch.setattr(cupy, "__version__", "13.6.0+gradflow-test-stand-in")
    elif gf.cuda.is_bf16_supported():
        pytest.skip(f"CuPy {cupy.__version__} has bfloat16")


@requires_cuda_bf16
@base.needs_torch
@pytest.mark.parametrize("name,fn,arrays,functional", base._cases())
def test_ops_on_cuda_match_cpu_bitwise(name, fn, arrays, functional):
    """Each op of test_bfloat16's torch comparison, on bfloat16 tensors on cuda:0: the result
    and the gradients of a weighted sum are bfloat16, on the device, and the CPU's bits where
    the float32 kernels agree: on the stand-in, whose CuPy functions are numpy's and whose
    kernels are gradflow's shared formulas, everywhere. On a GPU, CUDA's libm (CuPy's exp,
    log, ...) may differ from the CPU's by a float32 ulp, which the rounding to bfloat16
    sometimes keeps: within one bfloat16 ulp there."""
    import cupy
    import test_torch_nn

    exact = "stand-in" in cupy.__version__

    arrays = [np.asarray(a).astype(bf16).astype(np.float64) if np.asarray(a).dtype.kind == "f"
              else a for a in arrays]
    w = None
    results = []
    for device in ("cpu", "cuda"):
        lib = (gf.nn.functional if device == "cpu" else test_torch_nn._ON_CUDA) if functional \
            else gf_on(device)
        ts = []
        for a in arrays:
            t = gf.tensor(a, device=device)
            ts.append(t.to(bf16).requires_grad_(True) if np.asarray(a).dtype.kind == "f" else t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(lib, *ts)
        assert out.device == ("cpu" if device == "cpu" else "cuda:0")
        got = [out]
        if out.requires_grad:
            if w is None:
                w = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(bf16)
            (out * gf.tensor(w, device=device)).sum().backward()
            got += [t.grad for t in ts if t.is_floating_point()]
        results.append(got)
    for i, (c, g) in enumerate(zip(*results)):
        what = f"{name} {'result' if i == 0 else f'grad {i}'}"
        assert (c is None) == (g is None), what
        if c is None:
            continue
        assert g.dtype == c.dtype and g.device == "cuda:0", what
        if c.dtype != bf16:  # comparisons, indices, float64 (float_power)
            got, want = g.detach().cpu().numpy(), c.detach().numpy()
            if exact or not gf.is_floating_point(c):
                np.testing.assert_array_equal(got, want, what)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-15, err_msg=what)
        elif not exact:
            err = base.errors_in_ulps(base.values(g.cpu()), base.values(c))
            assert err.max() <= 1, f"{what}: {err.max():.2f} ulps from the CPU's"
        else:
            assert_same_bits(g, c, what)


@requires_cuda_bf16
@base.needs_torch
def test_single_ops_on_cuda_round_once_as_torch():
    """Arithmetic, matmul and reductions on the device are torch's (CPU) bfloat16, bitwise
    on the stand-in; on a GPU, where CUDA's libm and cuBLAS's order of summation may move a
    float32 result by an ulp, within one bfloat16 ulp."""
    import cupy

    exact = "stand-in" in cupy.__version__
    rng = np.random.default_rng(0)
    a, b, m = rng.standard_normal((5, 7)), rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    ga, gb, gm = (gf.tensor(v, device="cuda").bfloat16() for v in (a, b, m))
    ta, tb, tm = (torch.tensor(v).bfloat16() for v in (a, b, m))
    for f in [lambda x, y, w: x + y, lambda x, y, w: x * y, lambda x, y, w: x / y,
              lambda x, y, w: x - 2.5 * y, lambda x, y, w: x @ w, lambda x, y, w: x.sum(),
              lambda x, y, w: x.sum(1), lambda x, y, w: x.mean(0), lambda x, y, w: x.exp(),
              lambda x, y, w: x.softmax(1), lambda x, y, w: (x * 1000).sum(),
              lambda x, y, w: x.amax(1), lambda x, y, w: x.cumsum(1),
              lambda x, y, w: x.clamp(-0.5, 0.5)]:
        got, want = f(ga, gb, gm), f(ta, tb, tm)
        if exact:
            np.testing.assert_array_equal(bits(got), base.bits(want))
        else:
            assert base.errors_in_ulps(base.values(got.cpu()), base.values(want)).max() <= 1


@requires_cuda_bf16
def test_creation_moves_casts_and_printing():
    assert gf.cuda.is_bf16_supported()
    for make in [lambda: gf.zeros(2, dtype="bfloat16", device="cuda"),
                 lambda: gf.ones(2, dtype=bf16, device="cuda"),
                 lambda: gf.tensor([1.0, 2.0], dtype="torch.bfloat16", device="cuda"),
                 lambda: gf.full((2,), 1.5, dtype=bf16, device="cuda"),
                 lambda: gf.randn(2, dtype=bf16, device="cuda"),
                 lambda: gf.rand(2, dtype=bf16, device="cuda"),
                 lambda: gf.arange(2, dtype=bf16, device="cuda"),
                 lambda: gf.linspace(0, 1, 2, dtype=bf16, device="cuda"),
                 lambda: gf.eye(2, dtype=bf16, device="cuda")[0],
                 lambda: gf.empty(2, dtype=bf16, device="cuda"),
                 lambda: gf.zeros_like(gf.ones(2, dtype=bf16, device="cuda")),
                 lambda: gf.tensor([1.0, 2.0], device="cuda").bfloat16(),
                 lambda: gf.tensor([1, 2], device="cuda").to(bf16),
                 lambda: gf.ones(2).to("cuda", bf16), lambda: gf.ones(2, dtype=bf16).cuda(),
                 lambda: gf.nn.Linear(2, 2).to("cuda").bfloat16().weight[0]]:
        t = make()
        assert t.dtype == bf16 and t.device == "cuda:0" and t.shape == (2,)
        assert t.array.dtype == bf16 and not isinstance(t.array, np.ndarray)
    # float32 -> bfloat16 on the device rounds to nearest even as the CPU does, and back exactly
    special = np.array([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8,
                        3.4e38, -3.4e38, 1e-40, -1e-40, np.inf, -np.inf, 65504.0], np.float32)
    x = np.concatenate([special, np.random.default_rng(1).standard_normal(1000).astype(np.float32)])
    on_cpu = gf.tensor(x).bfloat16()
    on_cuda = gf.tensor(x, device="cuda").bfloat16()
    np.testing.assert_array_equal(bits(on_cuda), bits(on_cpu))
    np.testing.assert_array_equal(on_cuda.float().cpu().numpy(), on_cpu.float().numpy())
    # NaN: CUDA's bfloat16 NaN (cvt.rn.bf16.f32), where the CPU's (numpy's) is 0x7fc0
    assert bits(gf.tensor([np.nan, -np.nan], device="cuda").bfloat16()).tolist() == [0x7FFF] * 2
    y = gf.tensor([-2.7, -0.5, 0.5, 2.5, 3.9], device="cuda").bfloat16()
    assert y.long().tolist() == [-2, 0, 0, 2, 3] and y.long().device == "cuda:0"
    # moves keep the bits, both ways and between devices
    back = on_cpu.to("cuda").cpu()
    assert back.dtype == bf16 and back.device == "cpu"
    np.testing.assert_array_equal(bits(back), bits(on_cpu))
    if gf.cuda.device_count() > 1:
        other = on_cuda.to("cuda:1")
        assert other.device == "cuda:1" and other.dtype == bf16
        np.testing.assert_array_equal(bits(other), bits(on_cpu))
        assert (other * 2).device == "cuda:1"
    t = gf.tensor([1.5, -2.25], dtype=bf16, device="cuda")
    assert repr(t) == "tensor([ 1.5 , -2.25], dtype=bfloat16, device='cuda:0')"
    assert t.tolist() == [1.5, -2.25] and t[1].item() == -2.25 and isinstance(t[0].item(), float)
    assert f"{t[1]:.2f}" == "-2.25" and float(t[0]) == 1.5
    assert "requires_grad=True" in repr(t.requires_grad_(True))
    # a gradient flows back through the moves and casts to a float32 leaf on the CPU
    u = gf.tensor([0.5, 2.0], requires_grad=True)
    (u.to("cuda", bf16) ** 2).sum().backward()
    assert u.grad.dtype == gf.float32 and u.grad.device == "cpu" and u.grad.tolist() == [1.0, 4.0]


def _train(device, low, optimizer, kw, steps=4):
    """Losses and final parameters (as float64) of an MLP of dtype ``low`` trained on
    ``device`` from gf.manual_seed(0); the parameters and optimizer state keep ``low`` and the
    device."""
    gf.manual_seed(0)
    model = gf.nn.Sequential(gf.nn.Linear(4, 8), gf.nn.Tanh(), gf.nn.Linear(8, 3)).to(device)
    model.to(low)
    opt = getattr(gf.optim, optimizer)(model.parameters(), **kw)
    x = gf.tensor(np.random.default_rng(0).standard_normal((16, 4)), device=device).to(low)
    y = gf.tensor(np.random.default_rng(1).integers(0, 3, 16), device=device)
    losses = []
    for _ in range(steps):
        loss = gf.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    params = list(model.parameters())
    assert all(p.dtype == low and p.device == device for p in params)
    for i, p in enumerate(params):
        assert all(v.dtype == low and v.device == p.device
                   for v in opt.state_dict()["state"][i].values() if isinstance(v, gf.Tensor))
    return np.array(losses), [p.detach().cpu().numpy().astype(np.float64) for p in params]


@pytest.mark.parametrize("lowp", [pytest.param("bfloat16", marks=requires_cuda_bf16),
                                  pytest.param("float16", marks=requires_cuda)])
@pytest.mark.parametrize("optimizer,kw,tol", [("SGD", {"lr": 0.1, "momentum": 0.9}, 2),
                                              ("Adam", {"lr": 1e-2}, 4)])
def test_training_on_cuda_matches_cpu(lowp, optimizer, kw, tol):
    """The same 16-bit training on the CPU, cuda:0 and (two devices) cuda:1: the updates run in
    float32 and round once on every device, so the losses and parameters are the CPU's, bit
    for bit on the stand-in; on a GPU cuBLAS sums the products in its own order: within
    ``tol`` ulps there (test_bfloat16's tolerance against torch)."""
    import cupy

    exact = "stand-in" in cupy.__version__
    low = getattr(gf, lowp)
    cpu = _train("cpu", low, optimizer, kw)
    devices = ["cuda:0"] + (["cuda:1"] if gf.cuda.device_count() > 1 else [])
    for device in devices:
        got = _train(device, low, optimizer, kw)
        for a, b in zip([got[0]] + got[1], [cpu[0]] + cpu[1]):
            if exact:
                np.testing.assert_array_equal(a, b, device)
            else:
                assert base.errors_in_ulps(a, b, lowp).max() <= tol, device


@requires_cuda_bf16
def test_checkpoints_of_cuda_bfloat16_round_trip(tmp_path):
    gf.manual_seed(0)
    model = gf.nn.Linear(3, 2).to("cuda").bfloat16()
    opt = gf.optim.Adam(model.parameters(), lr=0.1)
    model(gf.randn(4, 3, device="cuda").bfloat16()).sum().backward()
    opt.step()
    gf.save({"model": model.state_dict(), "opt": opt.state_dict(), "w": model.weight.detach()},
            tmp_path / "ck.npz")
    back = gf.load(tmp_path / "ck.npz")
    assert back["w"].device == "cuda:0" and back["w"].dtype == bf16
    np.testing.assert_array_equal(bits(back["w"]), bits(model.weight))
    other = gf.nn.Linear(3, 2).to("cuda").bfloat16()
    other.load_state_dict(back["model"])
    np.testing.assert_array_equal(bits(other.weight), bits(model.weight))
    state = back["opt"]["state"][0]["exp_avg"]
    assert state.dtype == bf16 and state.device == "cuda:0"
    on_cpu = gf.load(tmp_path / "ck.npz", map_location="cpu")["w"]
    assert on_cpu.device == "cpu" and on_cpu.dtype == bf16
    np.testing.assert_array_equal(bits(on_cpu), bits(model.weight))


@requires_cuda_bf16
def test_jit_replays_cuda_bfloat16_bitwise():
    base.check_jit_replays_bitwise(bf16, "cuda")


@requires_cuda_bf16
def test_gradflow_kernels_never_see_16_bit_arrays():
    """The stand-in refuses a 16-bit array in gradflow's own kernels (written for float32 and
    float64): the ops above reached none with one."""
    import cupy

    from gradflow.backend import cuda

    if "stand-in" not in cupy.__version__:
        pytest.skip("the check is the CuPy stand-in's")
    for dt in (bf16, np.float16):
        with pytest.raises(TypeError, match="widened"):
            cuda.sigmoid(cupy.ones(3, dt))
        with pytest.raises(TypeError, match="widened"):
            cuda.logsumexp(cupy.ones(3, dt), (0,), False)


@requires_cuda
def test_cupy_13_refuses_bfloat16_on_cuda_naming_cupy_14(cupy13):
    assert not gf.cuda.is_bf16_supported()
    x = gf.ones(2, dtype=bf16)
    for make in [lambda: x.cuda(), lambda: x.to("cuda:0"),
                 lambda: gf.zeros(2, dtype=bf16, device="cuda"),
                 lambda: gf.randn(2, dtype=bf16, device="cuda"),
                 lambda: gf.tensor([1.0], dtype=bf16, device="cuda"),
                 lambda: gf.ones(2, device="cuda").to(bf16),
                 lambda: gf.ones(2, device="cuda").bfloat16(),
                 lambda: gf.ones(2).to("cuda", bf16),
                 lambda: gf.nn.Linear(2, 2).to("cuda").bfloat16(),
                 lambda: gf.eye(2, dtype=bf16, device="cuda")]:
        with pytest.raises(TypeError, match=r"bfloat16.*cuda:0.*CuPy >= 14.*CuPy 13\."):
            make()
    # to the CPU and bfloat16 at once: the cast happens after the move, differentiably
    g = gf.ones(2, device="cuda", requires_grad=True)
    out = g.to("cpu", bf16)
    assert out.dtype == bf16 and out.device == "cpu"
    (out * 3).sum().backward()
    assert g.grad.device == "cuda:0" and g.grad.tolist() == [3.0, 3.0]


def test_bfloat16_over_nccl():
    """NCCL has a bfloat16 type: the collectives take bfloat16 tensors; MPI still refuses
    them (test_bfloat16). (Host arrays stand in for device memory; the sums are exact, as
    NCCL's order of summation is its own.)"""
    from test_distributed_nccl import nccl_group

    import gradflow.distributed as dist

    group, _, _, make = nccl_group(3)
    h = 2.0 ** -8  # half an ulp of 1 in bfloat16

    def body(bootstrap):
        comm = make(bootstrap)
        r = comm.rank
        t = gf.tensor([1.0, h, 3.0 * r], dtype=bf16)
        dist.all_reduce(t, group=comm)
        a = gf.tensor([1.0 + r, 4.0], dtype=bf16)
        dist.all_reduce(a, op="avg", group=comm)
        b = gf.tensor([float(r) + 0.5], dtype=bf16)
        dist.broadcast(b, 2, group=comm)
        parts = [gf.zeros(2, dtype=bf16) for _ in range(3)]
        dist.all_gather(parts, gf.full((2,), float(r), dtype=bf16), group=comm)
        comm.close()
        return [x.dtype for x in (t, a, b, *parts)], t.tolist(), a.tolist(), b.item(), \
            [p.tolist() for p in parts]

    for dts, t, a, b, parts in group.run(body):
        assert all(dt == bf16 for dt in dts)
        assert t == [3.0, 3 * h, 9.0] and a == [2.0, 4.0] and b == 2.5
        assert parts == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
