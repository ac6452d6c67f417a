"""The CUDA backend against the numpy reference, and gradflow's behaviour where CUDA is absent.

GPU cases are skipped, with the reason, when no GPU is usable; the tests at the end run
everywhere (no CuPy import at ``import gradflow``, helpful errors, is_available() False).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradflow as gf
from gradflow.backend import reference as ref

import test_kernels_unary as U
from conftest import python_command

REASON = gf.cuda.unavailable_reason()
gpu = pytest.mark.skipif(REASON is not None, reason=f"no usable CUDA GPU: {REASON}")
DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


@pytest.fixture(scope="module")
def be():
    from gradflow.backend import get

    return get("cuda:0")


def dev(be, *arrays):
    return [be.to_device_array(a) for a in arrays]


def host(be, out):
    return tuple(host(be, o) for o in out) if isinstance(out, tuple) else be.to_numpy(out)


def check(be, fn, args, dtype, atol32=None, **kw):
    """fn on the GPU (arrays moved there) equals fn of the reference on the same inputs.
    ``atol32``: the float32 absolute tolerance where rounding scales with the inputs' size
    (sums, x - lse), not with the result's."""
    dargs = [be.to_device_array(a) if isinstance(a, np.ndarray) else a for a in args]
    got, want = host(be, getattr(be, fn)(*dargs, **kw)), getattr(ref, fn)(*args, **kw)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert g.dtype == w.dtype and g.shape == w.shape
        t = tol(dtype)
        if atol32 is not None and dtype == np.float32:
            t["atol"] = atol32
        np.testing.assert_allclose(g, w, **t)


def data(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


# ---- every backend function on the GPU == the reference --------------------------------------
UNARY = [("sigmoid", ()), ("tanh", ()), ("relu", ()), ("leaky_relu", (0.1,)), ("gelu", (False,)),
         ("gelu", (True,)), ("softplus", (1.5, 20.0)), ("softplus", (1.0, 1.0)), ("exp", ()),
         ("neg", ()), ("abs", ()), ("pow_scalar", (3,)), ("pow_scalar", (2.5,))]
BACKWARD = [("sigmoid_backward", "y", ()), ("tanh_backward", "y", ()), ("relu_backward", "y", ()),
            ("leaky_relu_backward", "x", (0.1,)), ("gelu_backward", "x", (False,)),
            ("gelu_backward", "x", (True,)), ("softplus_backward", "x", (1.5, 20.0)),
            ("exp_backward", "y", ()), ("log_backward", "pos", ()), ("sqrt_backward", "pos", ()),
            ("abs_backward", "x", ()), ("pow_scalar_backward", "pos", (2.5,)),
            ("pow_scalar_backward", "x", (0,))]


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn,params", UNARY)
def test_unary(be, fn, params, dtype):
    x = data((33, 65), dtype)
    x[0, :4] = [0, -0.0, np.nan, np.inf] if fn not in ("pow_scalar",) else [0, 1, 2, 3]
    if fn == "pow_scalar":
        x = np.abs(x)
    check(be, fn, [x, *params], dtype)


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["log", "sqrt"])
def test_unary_positive(be, fn, dtype):
    check(be, fn, [np.abs(data((100,), dtype)) + 0.1], dtype)


@gpu
@pytest.mark.parametrize("dtype", [np.float64])  # float32: at the CPU kernels' ulp targets, below
@pytest.mark.parametrize("fn,first,params", BACKWARD)
def test_backward(be, fn, first, params, dtype):
    x = data((17, 129), dtype, seed=1)
    a = {"x": x, "pos": np.abs(x) + 0.1, "y": ref.sigmoid(x)}[first]
    check(be, fn, [a, data((17, 129), dtype, seed=2), *params], dtype)


# The CPU kernel tests' cases (test_kernels_unary): the same formulas run on the GPU, so the
# same float32 ulp targets apply, case by case, forward and backward.
def _gpu_call(name):
    """The backend function and parameters of a test_kernels_unary case."""
    fixed = {"leaky_relu": ("leaky_relu", (0.1,)), "gelu": ("gelu", (False,)),
             "gelu_tanh": ("gelu", (True,)), "softplus": ("softplus", (1.0, 20.0)),
             "softplus_beta2": ("softplus", (2.0, 5.0))}
    if name.startswith("pow_"):
        return "pow_scalar", (float(name[4:]),)
    return fixed.get(name, (name, ()))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", U.CASES, ids=U.CASE_IDS)
def test_activations_meet_the_cpu_kernels_ulp_targets(be, case, dtype):
    fn, params = _gpu_call(case.name)
    x = U.inputs(case, (4099,), dtype)
    y = be.to_numpy(getattr(be, fn)(be.to_device_array(x), *params))
    U.check_fwd(case, x, y)
    if case.bwd is not None:
        s = y if case.saved == "y" else x
        g = data((4099,), dtype, seed=7, scale=1.0)
        got = be.to_numpy(getattr(be, fn + "_backward")(be.to_device_array(s), be.to_device_array(g), *params))
        U.check_bwd(case, s, g, got)


@gpu
@pytest.mark.parametrize("fn", ["add", "sub", "mul", "div", "maximum", "minimum", "eq", "lt", "ge"])
def test_binary_broadcast(be, fn):
    check(be, fn, [data((4, 1, 5), np.float32), data((3, 1), np.float32, seed=3) + 10], np.float32)


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["sum", "mean", "max", "min", "logsumexp"])
@pytest.mark.parametrize("axes,keepdims", [((1,), False), ((0, 2), True), ((0, 1, 2), False)])
def test_reductions(be, fn, axes, keepdims, dtype):
    check(be, fn, [data((6, 300, 7), dtype), axes, keepdims], dtype, atol32=2e-3)


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_is_stable_and_all_neg_inf_gives_neg_inf(be, dtype):
    x = data((5, 40), dtype) + 1e4  # exp would overflow without the max subtraction
    x[1] = -np.inf
    x[2, :3] = -np.inf
    check(be, "logsumexp", [x, (1,), False], dtype)
    assert host(be, be.logsumexp(be.to_device_array(x), (1,), False))[1] == -np.inf


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis", [((64, 1000), 1), ((3, 50, 4), 1), ((70, 3), 0)])
def test_softmax_family(be, fn, shape, axis, dtype):
    x = data(shape, dtype) + 500  # exp(x) overflows float32 unless the max is subtracted
    check(be, fn, [x, axis], dtype, atol32=1e-4)  # log_softmax = x - lse: ulp(500) = 3e-5
    y = getattr(ref, fn)(x, axis)
    check(be, fn + "_backward", [y, data(shape, dtype, seed=4), axis], dtype)


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy(be, dtype):
    z, labels = data((50, 11), dtype), np.random.default_rng(5).integers(0, 11, 50)
    check(be, "cross_entropy", [z, labels], dtype)
    _, lse = ref.cross_entropy(z, labels)
    check(be, "cross_entropy_backward", [z, labels, lse, data((50,), dtype, seed=6)], dtype)


@gpu
def test_cross_entropy_bad_label_gives_nan_row_without_sync(be):
    z, labels = dev(be, data((3, 4), np.float32), np.array([0, 7, 1]))
    loss, _ = be.cross_entropy(z, labels)
    assert np.isnan(host(be, loss)).tolist() == [False, True, False]


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul(be, ta, tb, dtype):
    a = data((7, 5) if ta else (5, 7), dtype)
    b = data((3, 7) if tb else (7, 3), dtype, seed=1)
    check(be, "matmul", [a, b, ta, tb, data((3,), dtype, seed=2)], dtype)
    check(be, "matmul", [data((4, 5, 7), dtype), b, False, tb], dtype)  # batch rows folded
    check(be, "matmul", [data((4, 7, 5), dtype), data((4, 3, 7), dtype), True, True], dtype)


@gpu
def test_matmul_float32_is_true_float32_by_default(be):
    a = np.full((1024, 1024), 1.0001, np.float32)
    got = host(be, be.matmul(*dev(be, a, np.ones((1024, 1024), np.float32))))[0, 0]
    assert abs(got - 1024.1024) < 1e-2  # TF32 rounds 1.0001 to 1 and gives 1024.0


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov,wd,first", [(0, False, 0, False), (0, False, 0.1, False),
                                                       (0.9, False, 0, True), (0.9, True, 0.01, False)])
def test_sgd_step(be, momentum, nesterov, wd, first, dtype):
    p, g, buf = (data((300,), dtype, seed=s) for s in range(3))
    dp, dg, dbuf = dev(be, p, g, buf)
    args = (0.1, momentum, 0.1, nesterov, wd, first)
    ref.sgd_step(p, g, buf, *args)
    be.sgd_step(dp, dg, dbuf if momentum else None, *args)
    np.testing.assert_allclose(host(be, dp), p, **tol(dtype))
    if momentum:
        np.testing.assert_allclose(host(be, dbuf), buf, **tol(dtype))


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd,decoupled", [(0, False), (0.1, False), (0.1, True)])
def test_adam_step(be, wd, decoupled, dtype):
    p, g, m = (data((300,), dtype, seed=s) for s in range(3))
    v = np.abs(data((300,), dtype, seed=3))
    dp, dg, dm, dv = dev(be, p, g, m, v)
    args = (3, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled)
    ref.adam_step(p, g, m, v, *args)
    be.adam_step(dp, dg, dm, dv, *args)
    for d, h in ((dp, p), (dm, m), (dv, v)):
        np.testing.assert_allclose(host(be, d), h, **tol(dtype))


@gpu
def test_index_add_scalar_argmax_where(be):
    idx = np.array([0, 2, 2, 4])
    vals = data((4, 3), np.float32)
    got = host(be, be.index_add((5, 3), np.float32, be.to_device_array(idx), be.to_device_array(vals)))
    np.testing.assert_allclose(got, ref.index_add((5, 3), np.float32, idx, vals), rtol=1e-6)
    s = be.scalar(2.5, np.float32)
    assert s.shape == () and s.dtype == np.float32 and host(be, s) == 2.5
    check(be, "argmax", [data((4, 9), np.float32), 1, True], np.float32)
    check(be, "where", [data((4, 9), np.float32) > 0, data((4, 9), np.float32, 1), np.float32(0)], np.float32)


# ---- end to end, through Tensors --------------------------------------------------------------
def _mlp_grads(device):
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.normal(size=(32, 20)), dtype=gf.float64, device=device)
    labels = gf.tensor(rng.integers(0, 5, 32), device=device)
    w1 = gf.tensor(rng.normal(size=(16, 20)) * 0.3, dtype=gf.float64, device=device, requires_grad=True)
    b1 = gf.tensor(rng.normal(size=16), dtype=gf.float64, device=device, requires_grad=True)
    w2 = gf.tensor(rng.normal(size=(5, 16)) * 0.3, dtype=gf.float64, device=device, requires_grad=True)
    F = gf.nn.functional
    h = F.gelu(F.linear(x, w1, b1).relu() + F.linear(x, w1).sigmoid(), approximate="tanh")
    logits = F.linear(h, w2)
    loss = F.cross_entropy(logits, labels) + logits.log_softmax(-1).softmax(0).logsumexp(1).mean()
    loss.backward()
    return [t.detach().cpu().numpy() for t in (loss, w1.grad, b1.grad, w2.grad)]


@gpu
def test_mlp_forward_backward_matches_cpu():
    for g, c in zip(_mlp_grads("cuda"), _mlp_grads("cpu")):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)


@gpu
def test_round_trip_device_mixing_and_dlpack():
    a = gf.tensor([[1.0, -2.0], [3.0, 4.0]])
    c = a.cuda()
    assert c.device == "cuda:0" and c.cpu().device == "cpu"
    np.testing.assert_array_equal(c.cpu().numpy(), a.numpy())
    with pytest.raises(RuntimeError, match="cpu.*cuda:0|cuda:0.*cpu"):
        a + c
    import cupy

    x = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    t = gf.from_dlpack(x)
    assert t.device == "cuda:0"
    x[0, 0] = 42  # shares memory
    assert t.cpu().numpy()[0, 0] == 42
    assert cupy.from_dlpack(t).shape == (2, 3)
    g = gf.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    (g * g).sum().backward()
    np.testing.assert_allclose(g.grad.cpu().numpy(), [2.0, 4.0])


# ---- everywhere ----------------------------------------------------------------------------------
def test_import_gradflow_does_not_import_cupy():
    code = "import sys, gradflow; assert 'cupy' not in sys.modules, 'cupy imported'; print('ok')"
    r = subprocess.run(python_command("-c", code), capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


@pytest.mark.skipif(REASON is None, reason="a GPU is usable here")
def test_without_a_gpu_cuda_is_unavailable_and_errors_are_helpful():
    assert gf.cuda.is_available() is False and gf.cuda.device_count() == 0
    with pytest.raises(RuntimeError) as e:
        gf.zeros(2, device="cuda")
    msg = str(e.value)
    assert ("pip install" in msg and "gradflow[cuda1" in msg) or "driver" in msg or "GPU" in msg
    with pytest.raises(RuntimeError):
        gf.tensor([1.0]).cuda()


def test_without_cupy_the_error_says_how_to_install(tmp_path):
    # A stub package that fails to import stands in for a missing CuPy.
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise ImportError('No module named cupy')")
    code = ("import gradflow as gf\nassert gf.cuda.is_available() is False\n"
            "try:\n    gf.zeros(2, device='cuda:0')\nexcept RuntimeError as e:\n    print(e)\n")
    # gradflow from wherever this run imports it (a folder on PYTHONPATH on the GPU machine)
    where = Path(gf.__file__).resolve().parents[1]
    r = subprocess.run(python_command("-c", code), capture_output=True, text=True,
                       env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{where}", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert 'pip install "gradflow[cuda12]"' in r.stdout and "cuda13" in r.stdout
