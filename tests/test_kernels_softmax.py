"""The C++ softmax / log_softmax / cross-entropy kernels against float64 numpy references."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gradflow import _C

DTYPES = [np.float32, np.float64]
rng = np.random.default_rng(2)


def ref_log_softmax(x, axis):
    x = x.astype(np.float64)
    if x.size == 0:
        return x.copy()
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def ref_softmax(x, axis):
    return np.exp(ref_log_softmax(x, axis))


def close(got, want, dtype, what=""):
    assert got.dtype == dtype
    assert got.flags.c_contiguous
    if dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=what)
    else:
        want32 = want.astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(got.astype(np.float64), want32, rtol=8 * 2.0 ** -23,
                                   atol=1e-7,
                                   err_msg=what)


def views(dtype):
    a = rng.standard_normal((30, 50)).astype(dtype) * 3
    b = rng.standard_normal((4, 5, 6)).astype(dtype) * 3
    return [a, a.T, a[::2], a[:, ::-1], a[::-3, 1::4], np.broadcast_to(a[:1], (30, 50)),
            np.broadcast_to(a[:, :1], (30, 50)), b, b.transpose(2, 0, 1), b[:, ::-1, ::2],
            a[0], a[:, 0], np.ones((1, 1), dtype), np.zeros((3, 0), dtype), np.zeros((0, 4), dtype),
            rng.standard_normal((300, 400)).astype(dtype),          # threaded
            rng.standard_normal((400, 300)).astype(dtype)[:, ::-1],  # threaded, strided
            rng.standard_normal((3, 40000)).astype(dtype)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_forward(dtype):
    for x in views(dtype):
        for axis in range(-x.ndim, x.ndim):
            close(_C.softmax(x, axis), ref_softmax(x, axis), dtype, f"softmax {x.shape} {x.strides} {axis}")
            close(_C.log_softmax(x, axis), ref_log_softmax(x, axis), dtype,
                  f"log_softmax {x.shape} {x.strides} {axis}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_backward(dtype):
    for x in views(dtype):
        for axis in range(-x.ndim, x.ndim):
            g = rng.standard_normal(x.shape).astype(dtype)
            y = ref_softmax(x, axis)
            want = y * (g - np.sum(g * y, axis=axis, keepdims=True))
            y_ = y.astype(dtype)
            got = _C.softmax_backward(y_, g, axis)
            # the reference from the same (rounded) y
            yd = y_.astype(np.float64)
            want = yd * (g - np.sum(g * yd, axis=axis, keepdims=True))
            close(got, want, dtype, "softmax_backward") if dtype == np.float64 else \
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * (1 + np.abs(g).max(initial=0)))
            ly = ref_log_softmax(x, axis).astype(dtype)
            lyd = ly.astype(np.float64)
            want = g - np.exp(lyd) * np.sum(g.astype(np.float64), axis=axis, keepdims=True)
            got = _C.log_softmax_backward(ly, g, axis)
            if dtype == np.float64:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * (1 + np.abs(g).sum()))
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(g).max(initial=0)))
            # strided y and g
            if x.ndim == 2 and x.size:
                got = _C.softmax_backward(np.asfortranarray(y_), g[::-1][::-1], axis)
                np.testing.assert_allclose(got, _C.softmax_backward(y_, np.ascontiguousarray(g), axis))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_extremes(dtype):
    inf = np.inf
    x = np.array([[1e4, -1e4, 1e4], [-1e4, -1e4, -1e4], [-inf, 0.0, -inf], [-inf, -inf, -inf]], dtype)
    with np.errstate(all="ignore"):
        s = _C.softmax(x, 1)
        ls = _C.log_softmax(x, 1)
        sT = _C.softmax(np.ascontiguousarray(x.T), 0)
    np.testing.assert_allclose(s[:3], [[0.5, 0, 0.5], [1 / 3] * 3, [0, 1, 0]], rtol=1e-6)
    np.testing.assert_allclose(ls[:2], [[-np.log(2), -2e4 - np.log(2), -np.log(2)], [-np.log(3)] * 3],
                               rtol=1e-6)
    assert ls[2, 1] == 0 and ls[2, 0] == -inf
    # an all -inf row: NaN, as PyTorch (documented), no crash
    assert np.isnan(s[3]).all() and np.isnan(ls[3]).all()
    np.testing.assert_array_equal(sT.T, s)


def test_softmax_errors():
    with pytest.raises(IndexError, match=r"axis 2.*2"):
        _C.softmax(np.ones((2, 3), np.float32), 2)
    with pytest.raises(ValueError, match="ndim"):
        _C.softmax(np.ones((), np.float32), 0)
    with pytest.raises(TypeError, match="int64"):
        _C.log_softmax(np.ones(3, np.int64), 0)
    with pytest.raises(ValueError, match="same shape"):
        _C.softmax_backward(np.ones((2, 3)), np.ones((3, 2)), 1)
    with pytest.raises(TypeError, match="float32.*float64"):
        _C.log_softmax_backward(np.ones((2, 3), np.float32), np.ones((2, 3)), 1)


def ref_ce(x, labels):
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    return lse - x[np.arange(len(labels)), labels], lse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C", [(1, 1), (5, 3), (64, 10), (3, 5000), (2000, 37), (0, 4)])
def test_cross_entropy(dtype, N, C):
    x = (rng.standard_normal((N, C)) * 4).astype(dtype)
    labels = rng.integers(0, C, size=N)
    g = rng.standard_normal(N).astype(dtype)
    for xv, lv in [(x, labels), (np.asfortranarray(x), labels.astype(np.int32)), (x[::-1], labels[::-1])]:
        loss, lse = _C.cross_entropy(xv, lv)
        want_loss, want_lse = ref_ce(xv, lv)
        assert loss.shape == (N,) and lse.shape == (N,)
        close(lse, want_lse, dtype)
        tol = 1e-12 if dtype == np.float64 else 8 * 2.0 ** -23
        np.testing.assert_allclose(loss, want_loss, rtol=tol, atol=tol * np.abs(want_lse).max(initial=0))
        d = _C.cross_entropy_backward(xv, lv, lse, g)
        p = np.exp(xv.astype(np.float64) - lse.astype(np.float64)[:, None])
        p[np.arange(N), lv] -= 1
        want = p * g.astype(np.float64)[:, None]
        assert d.shape == (N, C) and d.dtype == dtype
        np.testing.assert_allclose(d, want, rtol=tol * 4, atol=tol * 4 * (np.abs(g).max(initial=0) + 1e-300))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_extremes(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4], [-1e4, 1e4, 5.0]], dtype)
    labels = np.array([1, 0, 0, 1])
    loss, lse = _C.cross_entropy(x, labels)
    assert np.isfinite(loss).all() and np.isfinite(lse).all()
    np.testing.assert_allclose(loss, [2e4, np.log(3), np.log(2), 0.0], rtol=1e-6, atol=1e-6)
    d = _C.cross_entropy_backward(x, labels, lse, np.ones(4, dtype))
    assert np.isfinite(d).all()
    want = np.array([[1, -1, 0], [1 / 3 - 1, 1 / 3, 1 / 3], [0.5 - 1, 0.5, 0], [0, 0, 0]])
    np.testing.assert_allclose(d, want, atol=1e-6)


def test_cross_entropy_errors():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(IndexError, match=r"label 4.*4 classes"):
        _C.cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match=r"label -1"):
        _C.cross_entropy(x, np.array([0, -1, 1]))
    with pytest.raises(IndexError, match=r"label 7"):
        _C.cross_entropy_backward(x, np.array([7, 0, 0]), np.zeros(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="C = 0"):
        _C.cross_entropy(np.zeros((3, 0), np.float32), np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="integer"):
        _C.cross_entropy(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        _C.cross_entropy(x, np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="2-d"):
        _C.cross_entropy(np.zeros(4, np.float32), np.zeros(4, np.int64))
    with pytest.raises(TypeError):
        _C.cross_entropy_backward(x, np.zeros(3, np.int64), np.zeros(3), np.ones(3, np.float32))
    loss, lse = _C.cross_entropy(np.zeros((0, 5), np.float64), np.zeros(0, np.int64))
    assert loss.shape == (0,) and lse.shape == (0,)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data(), st.sampled_from(DTYPES))
def test_hypothesis_softmax(shape, data, dtype):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    perm = data.draw(st.permutations(range(len(shape))))
    x = (rng.standard_normal(shape) * 5).astype(dtype).transpose(perm)
    close(_C.softmax(x, axis), ref_softmax(x, axis), dtype)
    close(_C.log_softmax(x, axis), ref_log_softmax(x, axis), dtype)
