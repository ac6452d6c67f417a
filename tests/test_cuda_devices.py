"""CUDA behaviour beyond the kernels: tensors on cuda:1 while device 0 is current, device copies,
label checks, optimizer-step checks, TF32 on the 2-D path only, device-drawn dropout masks,
and memory statistics. They run on a GPU and, in CI, on the CuPy
stand-in (GRADFLOW_TEST_FAKE_CUDA=2), whose kernels refuse operands of another device."""

import numpy as np
import pytest

import gradflow as gf
from gradflow.backend import reference as ref

REASON = gf.cuda.unavailable_reason()
gpu = pytest.mark.skipif(REASON is not None, reason=f"no usable CUDA GPU: {REASON}")
two_gpus = pytest.mark.skipif(gf.cuda.device_count() < 2, reason="needs two CUDA devices")
F = gf.nn.functional


def _device_id(t):
    return t.array.device.id


@two_gpus
def test_cuda1_works_while_device0_is_current():
    import cupy

    rng = np.random.default_rng(0)
    x_host, y_host = rng.normal(size=(16, 6)), rng.integers(0, 3, 16)
    results = {}
    for dev in ("cpu", "cuda:1"):
        gf.manual_seed(0)
        model = gf.nn.Sequential(gf.nn.Linear(6, 8), gf.nn.ReLU(), gf.nn.Linear(8, 3)).to(dev)
        opt = gf.optim.Adam(model.parameters(), lr=0.1)
        loader = gf.data.DataLoader(gf.data.TensorDataset(gf.tensor(x_host, device=dev),
                                                          gf.tensor(y_host, device=dev)), 8)
        with cupy.cuda.Device(0):
            for x, y in loader:
                x = x.T.reshape(16 // 2, 6)[:, ::1].T.reshape(8, 6)  # reshapes that copy
                loss = F.cross_entropy(model(x.double().float()), y)
                opt.zero_grad(set_to_none=model[0].weight.grad is None)
                with gf.viz.record_grads():
                    loss.backward()
                opt.step()
            w = model[0].weight
            picked = w[gf.tensor([0, 2, 2], device=dev)]  # advanced indexing
            w2 = w.detach() * 1
            w2[gf.tensor([1], device=dev)] = 5.0  # setitem
            w2 += 1  # in place
            dot = gf.viz.to_dot(loss, show_grads=True)
            with gf.profiler.profile() as prof:
                (w2.sum() * 2).item()
        if dev != "cpu":
            for t in (loss, w, w.grad, picked, w2, x, y):
                assert t.device == "cuda:1" and _device_id(t) == 1
            assert "digraph" in dot and prof.table()
        results[dev] = [t.detach().cpu().numpy() for t in (loss, w, picked, w2)]
    for c, g in zip(results["cpu"], results["cuda:1"]):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)


@two_gpus
def test_tensor_from_another_devices_array_is_a_copy():
    import cupy

    with cupy.cuda.Device(1):
        a = cupy.arange(4, dtype=cupy.float32)
    t = gf.tensor(a)  # the default device: a host copy
    assert t.device == "cpu" and t.tolist() == [0, 1, 2, 3]
    on1 = gf.tensor([1.0, 2.0], device="cuda:1")
    on0 = gf.tensor(on1, device="cuda:0")
    assert on0.device == "cuda:0" and _device_id(on0) == 0 and on0.tolist() == [1, 2]
    assert gf.tensor(on1, dtype=gf.float64, device="cuda:0").dtype == gf.float64


@gpu
def test_tensor_from_a_cupy_array_with_the_default_device():
    import cupy

    t = gf.tensor(cupy.arange(3, dtype=cupy.int64))
    assert t.device == "cpu" and t.tolist() == [0, 1, 2] and t.dtype == gf.int64


@gpu
def test_labels_on_another_device_and_out_of_range_labels():
    logits = gf.randn(4, 3, device="cuda")
    with pytest.raises(RuntimeError, match="labels are on cpu but the logits are on cuda:0"):
        F.cross_entropy(logits, gf.tensor([0, 1, 2, 0]))
    bad = gf.tensor([0, 3, 1, -1], device="cuda")
    rows = F.cross_entropy(logits, bad, reduction="none")
    assert np.isnan(rows.cpu().numpy()).tolist() == [False, True, False, True]
    gf.cuda.check_labels(True)
    try:
        with pytest.raises(IndexError, match="label 3 is out of range for 3 classes"):
            F.cross_entropy(logits, bad)
        F.cross_entropy(logits, gf.tensor([0, 1, 2, 0], device="cuda"))  # in range: fine
    finally:
        gf.cuda.check_labels(False)


@gpu
@pytest.mark.parametrize("step", ["sgd", "adam"])
def test_optimizer_steps_check_shapes_and_layout(step):
    from gradflow.backend import get

    be = get("cuda:0")
    p = be.xp.zeros((3, 4), np.float32)
    bad_grad = be.xp.ones((1, 4), np.float32)  # would broadcast silently into p
    strided = be.xp.ones((4, 3), np.float32).T
    state = [be.xp.zeros((3, 4), np.float32) for _ in range(2)]
    for g, what in ((bad_grad, "shape"), (strided, "contiguous")):
        with pytest.raises(ValueError, match=what):
            if step == "sgd":
                be.sgd_step(p, g, state[0], 0.1, 0.9, 0.0, False, 0.0, True)
            else:
                be.adam_step(p, g, *state, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    assert not be.to_numpy(p).any()


@gpu
def test_tf32_applies_to_2d_products_only():
    a = np.full((8, 64), 1 + 2**-12, np.float32)  # TF32 rounds 1 + 2^-12 to 1
    b = np.ones((64, 8), np.float32)
    exact = 64 * (1 + 2**-12)
    gf.cuda.allow_tf32(True)
    try:
        two_d = (gf.tensor(a, device="cuda") @ gf.tensor(b, device="cuda")).cpu().numpy()
        batched = (gf.tensor(a[None].repeat(2, 0), device="cuda")
                   @ gf.tensor(b[None].repeat(2, 0), device="cuda")).cpu().numpy()
    finally:
        gf.cuda.allow_tf32(False)
    assert np.all(two_d == 64)  # TF32 inputs
    np.testing.assert_allclose(batched, exact, rtol=1e-6)  # CuPy's batched GEMM: float32


@gpu
def test_dropout_draws_its_mask_on_the_device(monkeypatch):
    from gradflow.backend import get

    be = get("cuda:0")
    monkeypatch.setattr(be, "to_device_array", lambda a: pytest.fail("a host mask was copied"))
    layer = gf.nn.Dropout(0.25)
    y = layer(gf.ones(4000, device="cuda")).cpu().numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.03 and np.allclose(y[kept], 1 / 0.75)
    seed = 123456789
    got = be.to_numpy(be.dropout_mask((7, 5), 0.4, np.dtype(np.float32), seed))
    np.testing.assert_array_equal(got, ref.dropout_mask((7, 5), 0.4, np.dtype(np.float32), seed))


@gpu
def test_memory_statistics_and_empty_cache():
    import cupy

    pool = cupy.get_default_memory_pool()
    before = gf.cuda.memory_allocated()
    t = gf.zeros(1 << 20, device="cuda")
    assert gf.cuda.memory_allocated() >= before + 4 * (1 << 20)
    peak = gf.cuda.max_memory_allocated()
    assert peak >= gf.cuda.memory_allocated()
    del t
    assert gf.cuda.memory_allocated() == before and gf.cuda.max_memory_allocated() == peak
    assert pool.free_bytes() >= 4 * (1 << 20)
    gf.empty_cache()
    assert pool.free_bytes() == 0
    gf.cuda.reset_peak_memory_stats()
    assert gf.cuda.max_memory_allocated() == gf.cuda.memory_allocated()


@gpu
def test_inplace_on_a_recorded_tensor_and_a_device_that_is_not_there():
    x = gf.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    y = x * 3
    y += x  # recorded in place: the old value is kept (a device copy)
    y.sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]
    from gradflow.backend import get

    be = get("cuda:0")
    g = be.pow_scalar_backward(be.to_device_array(np.array([2, 3])), be.to_device_array(np.array([1, 1])), 2)
    assert be.to_numpy(g).tolist() == [4, 6]  # integer powers: no fused kernel
    n = gf.cuda.device_count()
    with pytest.raises(RuntimeError, match=f"cuda:{n} was requested but only {n}"):
        gf.zeros(1, device=f"cuda:{n}")


@two_gpus
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_maximize_step_on_cuda1_while_device0_is_current(dtype):
    import cupy

    w_host = np.random.default_rng(0).standard_normal((4, 3)).astype(dtype)
    results = {}
    for dev in ("cpu", "cuda:1"):
        w = gf.nn.Parameter(gf.tensor(w_host, device=dev))
        opt = gf.optim.Adam([w], lr=0.1, maximize=True)
        with cupy.cuda.Device(0):
            for _ in range(3):
                opt.zero_grad()
                (w * w).sum().backward()
                opt.step()
        results[dev] = w.detach().cpu().numpy().astype(np.float64)
    # (the device's Adam kernel may round its last step differently: 1 float32 ulp)
    np.testing.assert_allclose(results["cuda:1"], results["cpu"], rtol=1e-6)
