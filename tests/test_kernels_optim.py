"""The C++ fused optimizer updates (_C.sgd_step, _C.adam_step) against a numpy float64
transcription of PyTorch's rules (tests/_kernel_refs.py), over several steps.

Each step is checked from the same state: the reference applies the rule in float64 to the
kernel's current (float32 or float64) state, and the kernel's result must match it after
rounding; the kernel's state then carries on to the next step."""
import itertools

import numpy as np
import pytest

import _kernel_refs as R
from gradflow import _C

rng = np.random.default_rng(99)
SHAPES = [(), (0,), (1,), (7,), (3, 4), (2, 3, 5), ((1 << 16) + 5,)]
STEPS = 6


def close(got, want, dtype):
    """float64: 1e-12 relative; float32: 8 ulps, plus 8 ulps of the array's largest magnitude
    for elements where a sum cancels (m + g with opposite signs, p - update)."""
    want = np.asarray(want)
    scale = float(np.abs(want).max()) if want.size else 0.0
    if np.dtype(dtype) == np.float32:
        R.assert_close(got, want, dtype, ulps=8, atol=8 * R.EPS32 * scale)
    else:
        R.assert_close(got, want, dtype, rtol64=1e-12, atol64=1e-15 * scale + 1e-300)


SGD_FLAGS = list(itertools.product([0.0, 0.9], [0.0, 0.25], [False, True], [0.0, 1e-2]))


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("momentum,dampening,nesterov,wd", SGD_FLAGS, ids=str)
def test_sgd_trajectory(dtype, shape, momentum, dampening, nesterov, wd):
    lr = 0.05
    p = rng.standard_normal(shape).astype(dtype)
    buf = np.zeros(shape, dtype) if momentum else None
    p_id = id(p)
    for t in range(STEPS):
        g = rng.standard_normal(shape).astype(dtype)
        rp = p.astype(np.float64)
        rbuf = None if buf is None else buf.astype(np.float64)
        R.sgd_step(rp, g.astype(np.float64), rbuf, lr, momentum, dampening, nesterov, wd, t == 0)
        g_before = g.copy()
        assert _C.sgd_step(p, g, buf, lr, momentum, dampening, nesterov, wd, t == 0) is None
        assert id(p) == p_id
        np.testing.assert_array_equal(g, g_before)  # grad is read-only for the kernel
        close(p, rp, dtype)
        if buf is not None:
            close(buf, rbuf, dtype)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_sgd_first_step_ignores_old_buffer(dtype):
    p = np.ones(5, dtype)
    g = np.full(5, 2, dtype)
    buf = np.full(5, np.nan, dtype)  # whatever is there is overwritten on the first step
    _C.sgd_step(p, g, buf, 0.5, 0.9, 0.0, False, 0.0, True)
    np.testing.assert_array_equal(buf, g)
    np.testing.assert_array_equal(p, np.zeros(5, dtype))
    # momentum == 0: no buffer needed, none touched
    buf2 = np.full(5, 7, dtype)
    _C.sgd_step(p, g, buf2, 0.5, 0.0, 0.0, False, 0.0, False)
    np.testing.assert_array_equal(buf2, np.full(5, 7, dtype))
    np.testing.assert_array_equal(p, np.full(5, -1, dtype))


ADAM_FLAGS = list(itertools.product([False, True], [0.0, 0.1], [(0.9, 0.999), (0.5, 0.9)]))


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("decoupled,wd,betas", ADAM_FLAGS, ids=str)
def test_adam_trajectory(dtype, shape, decoupled, wd, betas):
    lr, eps = 1e-2, 1e-8
    b1, b2 = betas
    p = rng.standard_normal(shape).astype(dtype)
    m = np.zeros(shape, dtype)
    v = np.zeros(shape, dtype)
    for step in range(1, STEPS + 1):
        g = rng.standard_normal(shape).astype(dtype)
        rp, rm, rv = p.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
        R.adam_step(rp, g.astype(np.float64), rm, rv, step, lr, b1, b2, eps, wd, decoupled)
        g_before = g.copy()
        assert _C.adam_step(p, g, m, v, step, lr, b1, b2, eps, wd, decoupled) is None
        np.testing.assert_array_equal(g, g_before)
        close(m, rm, dtype)
        close(v, rv, dtype)
        close(p, rp, dtype)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_adam_late_step_and_zero_grad(dtype):
    """Large step counts (bias corrections -> 1) and an all-zero gradient (v = 0: the update
    is m / eps-guarded, finite)."""
    p = rng.standard_normal(100).astype(dtype)
    m = np.zeros(100, dtype)
    v = np.zeros(100, dtype)
    g = np.zeros(100, dtype)
    rp = p.astype(np.float64)
    _C.adam_step(p, g, m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    np.testing.assert_array_equal(p, rp.astype(dtype))
    g = rng.standard_normal(100).astype(dtype)
    rp, rm, rv = p.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
    R.adam_step(rp, g.astype(np.float64), rm, rv, 10**6, 1e-3, 0.9, 0.999, 1e-8, 0.01, True)
    _C.adam_step(p, g, m, v, 10**6, 1e-3, 0.9, 0.999, 1e-8, 0.01, True)
    close(p, rp, dtype)
    assert np.all(np.isfinite(p))


def test_defaults():
    p = np.ones(3)
    _C.sgd_step(p, np.ones(3), None, 0.5)
    np.testing.assert_array_equal(p, np.full(3, 0.5))
    m, v = np.zeros(3), np.zeros(3)
    p = np.ones(3)
    rp, rm, rv = p.copy(), m.copy(), v.copy()
    _C.adam_step(p, np.ones(3), m, v, 1, 0.1)
    R.adam_step(rp, np.ones(3), rm, rv, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    close(p, rp, np.float64)


# ---- errors -----------------------------------------------------------------------------------
def test_sgd_errors():
    p, g, b = np.ones((2, 3)), np.ones((2, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"grad.*\(2, 3\).*\(3, 2\)"):
        _C.sgd_step(p, np.ones((3, 2)), b, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match=r"momentum_buffer.*\(2, 3\).*\(6,\)"):
        _C.sgd_step(p, g, np.zeros(6), 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match="momentum_buffer.*None"):
        _C.sgd_step(p, g, None, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(TypeError, match="float64.*float32"):
        _C.sgd_step(p, g.astype(np.float32), b, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(TypeError, match="float32.*float64"):
        _C.sgd_step(p.astype(np.float32), g.astype(np.float32), b, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(TypeError, match="int64"):
        _C.sgd_step(np.ones(3, np.int64), np.ones(3, np.int64), None, 0.1, 0.0, 0.0, False, 0.0, False)
    big = np.ones((4, 3))
    with pytest.raises(ValueError, match="param.*C-contiguous"):
        _C.sgd_step(big[::2], g, b, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match="grad.*C-contiguous"):
        _C.sgd_step(np.ones((3, 2)), g.T, np.zeros((3, 2)), 0.1, 0.9, 0.0, False, 0.0, False)
    ro = np.ones((2, 3))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="param.*writeable"):
        _C.sgd_step(ro, g, b, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match="momentum_buffer.*writeable"):
        _C.sgd_step(p, g, ro, 0.1, 0.9, 0.0, False, 0.0, False)
    # a read-only gradient is fine
    _C.sgd_step(p, ro, b, 0.1, 0.9, 0.0, False, 0.0, True)


def test_adam_errors():
    p, g, m, v = (np.ones((2, 3)) for _ in range(4))
    with pytest.raises(ValueError, match="step must be >= 1, got 0"):
        _C.adam_step(p, g, m, v, 0, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match=r"exp_avg_sq.*\(2, 3\).*\(3,\)"):
        _C.adam_step(p, g, m, np.ones(3), 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match=r"exp_avg .*\(2, 3\).*\(2, 3, 1\)"):
        _C.adam_step(p, g, np.ones((2, 3, 1)), v, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(TypeError, match="float32"):
        _C.adam_step(p, g, m.astype(np.float32), v, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match="exp_avg.*C-contiguous"):
        _C.adam_step(np.ones((3, 2)), np.ones((3, 2)), m.T, np.ones((3, 2)), 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    ro = np.ones((2, 3))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="exp_avg_sq.*writeable"):
        _C.adam_step(p, g, m, ro, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
