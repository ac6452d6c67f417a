"""The C++ matmul kernel (_C.matmul on OpenBLAS) against numpy float64 references."""
import itertools
import tracemalloc

import numpy as np
import pytest

import _kernel_refs as R
from gradflow import _C

rng = np.random.default_rng(7)


def rand(shape, dtype):
    return rng.uniform(-1, 1, size=shape).astype(dtype)


def check(got, a, b, trans_a=False, trans_b=False, bias=None):
    """got vs the float64 product, within the forward-error bound of a length-k dot product:
    |err| <= c k eps (|op(a)| @ |op(b)|), plus the bias's rounding."""
    want = R.matmul(a, b, trans_a, trans_b, bias)
    dtype = np.dtype(a.dtype)
    assert got.dtype == dtype and got.shape == want.shape, (got.dtype, got.shape, want.shape)
    assert got.flags.c_contiguous
    k = (a.shape[-2] if trans_a else a.shape[-1]) if a.ndim else 0
    eps = float(np.finfo(dtype).eps)
    mag = R.matmul(np.abs(a), np.abs(b), trans_a, trans_b, None if bias is None else np.abs(bias))
    tol = 2 * (k + 2) * eps * mag + 1e-300
    err = np.abs(got.astype(np.float64) - want)
    bad = err > tol
    assert not bad.any(), f"max err {err.max()} at {np.argwhere(bad)[:3]}, tol there {tol[bad][:3]}"


def stored(shape_op, trans, dtype):
    """An array whose op() (per the flag) has shape `shape_op`."""
    if trans:
        return np.swapaxes(rand(shape_op, dtype), -1, -2).copy()
    return rand(shape_op, dtype)


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 4, 5), (1, 7, 3), (6, 1, 2), (5, 3, 1), (17, 33, 9),
                                   (64, 784, 512), (128, 64, 257)])
def test_2d(dtype, trans_a, trans_b, m, k, n):
    a = stored((m, k), trans_a, dtype)
    b = stored((k, n), trans_b, dtype)
    check(_C.matmul(a, b, trans_a, trans_b), a, b, trans_a, trans_b)
    bias = rand((n,), dtype)
    check(_C.matmul(a, b, trans_a, trans_b, bias), a, b, trans_a, trans_b, bias)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_default_args(dtype):
    a, b = rand((4, 3), dtype), rand((3, 2), dtype)
    check(_C.matmul(a, b), a, b)
    check(_C.matmul(a=a, b=b, trans_a=False, trans_b=False, bias=None), a, b)


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
def test_layouts(dtype, trans_a, trans_b):
    """Every memory layout of each operand (C, Fortran/transposed, step slices, reversed)."""
    m, k, n = 9, 7, 5
    a0 = stored((m, k), trans_a, dtype)
    b0 = stored((k, n), trans_b, dtype)
    for (na, a), (nb, b) in itertools.product(R.layouts(a0), R.layouts(b0)):
        np.testing.assert_array_equal(a, a0)
        got = _C.matmul(a, b, trans_a, trans_b)
        check(got, a0, b0, trans_a, trans_b)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_transposed_views(dtype):
    a, b = rand((30, 20), dtype), rand((40, 30), dtype)
    check(_C.matmul(a.T, b.T), a.T, b.T)  # (20, 30) @ (30, 40)
    x = rand((3, 30, 20), dtype)
    check(_C.matmul(np.swapaxes(x, -1, -2), b.T[:, :7]), np.swapaxes(x, -1, -2), b.T[:, :7])
    # a transposed view with the transpose flag is a plain row-major matrix again
    check(_C.matmul(a.T, a.T, True, False), a.T, a.T, True, False)
    # leading dimension larger than the extent (sub-block of a bigger matrix)
    big = rand((50, 60), dtype)
    check(_C.matmul(big[3:13, 5:25], big[10:30, 2:9]), big[3:13, 5:25], big[10:30, 2:9])
    check(_C.matmul(big[3:13, 5:25].T, big[10:20, 2:9]), big[3:13, 5:25].T, big[10:20, 2:9])


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_no_copy_of_transposed_operand(dtype):
    """A transposed 2 MB operand is handed to BLAS as is: the call allocates little more than
    its (small) output. (numpy's allocations are visible to tracemalloc.)"""
    a = rand((4096, 64), dtype)  # a.T: (64, 4096), column-major
    b = rand((4096, 8), dtype)
    _C.matmul(a.T, b)  # warm up
    tracemalloc.start()
    try:
        out = _C.matmul(a.T, b)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < a.nbytes // 4, peak
    check(out, a.T, b)
    # while a step-sliced operand is copied (and still right)
    check(_C.matmul(a.T[:, ::2], b[::2]), a.T[:, ::2], b[::2])


BATCH_CASES = [
    ((2, 4, 5), (2, 5, 6)),
    ((2, 3, 4, 5), (3, 5, 6)),
    ((1, 4, 5), (7, 5, 6)),
    ((4, 5), (2, 3, 5, 6)),
    ((2, 1, 4, 5), (1, 3, 5, 6)),
    ((3, 4, 5), (5, 6)),          # the Linear case: one gemm of (12, 5) x (5, 6)
    ((3, 4, 5), (1, 1, 5, 6)),
    ((2, 3, 1, 5), (5, 6)),
    ((5, 1, 5), (1, 5, 1)),
    ((0, 4, 5), (5, 6)),
    ((2, 0, 4, 5), (1, 5, 6)),
]


@pytest.mark.parametrize("dtype", R.DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("sa,sb", BATCH_CASES, ids=str)
def test_batched_broadcast(dtype, trans_a, trans_b, sa, sb):
    a = stored(sa, trans_a, dtype)
    b = stored(sb, trans_b, dtype)
    got = _C.matmul(a, b, trans_a, trans_b)
    check(got, a, b, trans_a, trans_b)
    n = b.shape[-2] if trans_b else b.shape[-1]
    bias = rand((n,), dtype)
    check(_C.matmul(a, b, trans_a, trans_b, bias), a, b, trans_a, trans_b, bias)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_batched_strided(dtype):
    """Batch axes with steps, negative strides and broadcast (zero) strides; rows that are
    still evenly spaced (one gemm) and rows that are not (a loop)."""
    x = rand((6, 8, 10), dtype)
    w = rand((7, 10), dtype)
    bias = rand((7,), dtype)
    for a in (x[::2], x[::-1], x[:, ::2], x[:, :, :6], x[::-2, 1:7], np.swapaxes(x, 0, 1),
              np.broadcast_to(x[:1], (6, 8, 10)), x[:, ::-1]):
        k = a.shape[-1]
        check(_C.matmul(a, w[:, :k], False, True, bias), a, w[:, :k], False, True, bias)
        check(_C.matmul(a, w[:, :k].T), a, w[:, :k].T)
    b = rand((6, 10, 5), dtype)
    for bb in (b[::-1], b[::3], np.broadcast_to(b[:1], (6, 10, 5)), np.swapaxes(np.swapaxes(b, 1, 2).copy(), 1, 2)):
        check(_C.matmul(x[: bb.shape[0]], bb), x[: bb.shape[0]], bb)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_linear_layer_shapes(dtype):
    x = rand((64, 784), dtype)
    w = rand((512, 784), dtype)  # (out, in), as nn.Linear stores it
    bias = rand((512,), dtype)
    check(_C.matmul(x, w, False, True, bias), x, w, False, True, bias)
    check(_C.matmul(x, w.T.copy(), False, False, bias), x, w.T.copy(), False, False, bias)
    # backward of the Linear layer: dX = g @ W, dW = g^T @ X
    g = rand((64, 512), dtype)
    check(_C.matmul(g, w), g, w)
    check(_C.matmul(g, x, True, False), g, x, True, False)
    # a sequence batch through the same layer
    xs = rand((4, 16, 784), dtype)
    check(_C.matmul(xs, w, False, True, bias), xs, w, False, True, bias)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_empty(dtype):
    a, b = rand((3, 0), dtype), rand((0, 4), dtype)
    out = _C.matmul(a, b)
    np.testing.assert_array_equal(out, np.zeros((3, 4), dtype))
    assert out.dtype == dtype
    bias = rand((4,), dtype)
    np.testing.assert_array_equal(_C.matmul(a, b, False, False, bias), np.broadcast_to(bias, (3, 4)))
    np.testing.assert_array_equal(_C.matmul(rand((2, 3, 0), dtype), rand((0, 4), dtype), False, False, bias),
                                  np.broadcast_to(bias, (2, 3, 4)))
    assert _C.matmul(rand((0, 5), dtype), rand((5, 4), dtype)).shape == (0, 4)
    assert _C.matmul(rand((3, 5), dtype), rand((5, 0), dtype)).shape == (3, 0)
    assert _C.matmul(rand((3, 5), dtype), rand((5, 0), dtype), False, False, rand((0,), dtype)).shape == (3, 0)
    assert _C.matmul(rand((0, 3, 5), dtype), rand((5, 2), dtype)).shape == (0, 3, 2)
    assert _C.matmul(rand((0, 5), dtype), rand((5, 0), dtype), True, True).shape == (5, 5)


@pytest.mark.parametrize("dtype", R.DTYPES)
def test_threaded_sizes(dtype):
    a, b = rand((300, 200), dtype), rand((200, 400), dtype)
    check(_C.matmul(a, b), a, b)
    bias = rand((400,), dtype)
    check(_C.matmul(a, b, False, False, bias), a, b, False, False, bias)


# ---- errors -----------------------------------------------------------------------------------
def test_inner_dimension_mismatch():
    a, b = np.ones((2, 3)), np.ones((4, 5))
    with pytest.raises(ValueError, match=r"\(2, 3\).*trans_a=False.*\(4, 5\).*trans_b=False"):
        _C.matmul(a, b)
    with pytest.raises(ValueError, match=r"\(2, 3\).*trans_a=True.*\(4, 5\).*trans_b=True"):
        _C.matmul(a, b, True, True)
    # fine with the right flag
    assert _C.matmul(np.ones((3, 2)), np.ones((3, 5)), True).shape == (2, 5)


def test_batch_mismatch():
    with pytest.raises(ValueError, match=r"broadcast.*\(2, 3, 4\).*\(3, 4, 5\)"):
        _C.matmul(np.ones((2, 3, 4)), np.ones((3, 4, 5)))


def test_dtype_errors():
    with pytest.raises(TypeError, match="float32.*float64"):
        _C.matmul(np.ones((2, 2), np.float32), np.ones((2, 2)))
    with pytest.raises(TypeError, match="int64"):
        _C.matmul(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64))
    with pytest.raises(TypeError, match=r"float64.*float32 array of shape \(2,\)"):
        _C.matmul(np.ones((2, 2)), np.ones((2, 2)), False, False, np.ones(2, np.float32))


def test_bias_shape_error():
    with pytest.raises(ValueError, match=r"bias.*\(5,\).*\(4,\)"):
        _C.matmul(np.ones((2, 3)), np.ones((3, 5)), False, False, np.ones(4))
    with pytest.raises(ValueError, match=r"bias.*\(1, 5\)"):
        _C.matmul(np.ones((2, 3)), np.ones((3, 5)), False, False, np.ones((1, 5)))


def test_ndim_error():
    with pytest.raises(ValueError, match=r"at least 2.*\(3,\)"):
        _C.matmul(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        _C.matmul(np.ones((3, 2)), np.ones(()))
