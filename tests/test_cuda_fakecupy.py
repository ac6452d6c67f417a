"""The CuPy stand-in (tests/fakecupy) behaves as CuPy does where faults hide; runs only when it
is active (GRADFLOW_TEST_FAKE_CUDA=N)."""

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif("stand-in" not in cupy.__version__, reason="the CuPy stand-in is not active")


def test_kernel_strings_are_compiled_with_cupys_bindings_and_scalar_casts():
    k = cupy.ElementwiseKernel("T x, T s", "T y", "y = x * s", "fake_scale")
    x = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    y = k(x.T, 0.1)  # a strided input; a Python float cast to the kernel's float
    assert y.dtype == np.float32 and y.shape == (3, 2)
    np.testing.assert_array_equal(y.get(), np.arange(6, dtype=np.float32).reshape(2, 3).T * np.float32(0.1))
    with pytest.raises(ValueError, match="Out shape is mismatched"):
        k(x, 2.0, cupy.empty((1, 3), cupy.float32))  # outputs do not broadcast
    with pytest.raises(TypeError, match="Type is mismatched"):
        k(x, 2.0, cupy.empty((2, 3), cupy.float64))
    with pytest.raises(TypeError, match="Unsupported type"):
        k(np.ones(3, np.float32), 2.0)  # a host array is not an operand
    bad = cupy.ElementwiseKernel("T x", "T y", "y = no_such_function(x)", "fake_bad")
    with pytest.raises(cupy._kernels.CompileException, match="no_such_function"):
        bad(x)


def test_reductions_run_identity_map_reduce_post_map_and_the_cub_renaming():
    r = cupy.ReductionKernel("T x", "T y", "x * x", "a + b", "y = sqrt(a)", "0", "fake_norm")
    x = cupy.asarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    np.testing.assert_allclose(r(x, axis=1).get(), np.sqrt((np.arange(12.0).reshape(3, 4) ** 2).sum(1)))
    np.testing.assert_allclose(r(x, axis=0, keepdims=True).get().shape, (1, 4))
    # CUB's substring renaming of y -> out0 breaks this post-map (my_y -> mout0_out0), as on a GPU
    stray = cupy.ReductionKernel("T x", "T y", "x", "a + b", "y = my_y(a)", "0", "fake_stray",
                                 preamble="template <class T> T my_y(T a) { return a; }")
    with pytest.raises(cupy._kernels.CompileException, match="mout0_out0"):
        stray(x)
    # a strided input takes the general path: no renaming, so it compiles
    assert stray(x[:, ::2], axis=1).shape == (3,)


def test_arrays_refuse_implicit_host_conversion_and_wrap_integer_indices():
    a = cupy.arange(5)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    assert a[cupy.asarray(np.array([5, -6, 1]))].get().tolist() == [0, 4, 1]
    v = a[1:3]
    v[...] = 9  # a view writes through
    assert a.get().tolist() == [0, 9, 9, 3, 4]
    assert a.__cuda_array_interface__["data"][0] == a.data.ptr


@pytest.mark.skipif(cupy.cuda.runtime.device_count() < 2, reason="needs two fake devices")
def test_operands_must_be_on_the_current_device():
    with cupy.cuda.Device(1):
        b = cupy.ones(3)
    assert b.device.id == 1 and cupy.cuda.Device().id == 0
    for op in (lambda: b + 1, lambda: b.astype(np.float32), lambda: b[cupy.asarray(np.array([0]))],
               lambda: b.fill(2), lambda: cupy.sum(b)):
        with pytest.raises(ValueError, match="Peer access is unavailable"):
            op()
    c = b.copy()  # a copy between devices is a memcpy
    assert c.device.id == 0 and c.get().tolist() == [1, 1, 1]
    assert b[1:].device.id == 1  # a view stays on its array's device


def test_bfloat16_as_cupy_14_has_it_and_cupy_13_lacks_it(monkeypatch):
    """CuPy 14 (the default): bfloat16 arrays, a bfloat16 loop in the ufuncs after the float16
    one, and casts through float32 as cupy/bfloat16.cuh's constructors (from double and the
    integers: ``data_(float(v))``), so float64 and int64 round twice where numpy's cast rounds
    once; NaN is CUDA's 0x7fff. CuPy 13: no loop, and a kernel on a bfloat16 array is its
    code generator's KeyError; allocation and host transfers still take the dtype."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = np.dtype(ml_dtypes.bfloat16)
    monkeypatch.setattr(cupy, "_bfloat16", True)  # (GRADFLOW_FAKE_CUPY_VERSION=13 sets False)
    assert cupy.add.types.index("EE->E") == cupy.add.types.index("ee->e") + 1
    assert "E->E" in cupy.exp.types and "E->E" not in cupy.invert.types
    x = np.array([1 + 2 ** -8 + 2 ** -30, 2 ** 24 + 2 ** 16 + 1])
    for src in (np.float64, np.int64):
        a = x.astype(src)
        got = cupy.asarray(a).astype(bf).get()
        np.testing.assert_array_equal(got, a.astype(np.float32).astype(bf))  # (1.0, 2^24)
        assert not np.array_equal(got, a.astype(bf))
    nan = cupy.asarray(np.array([np.nan, -np.nan], np.float32)).astype(bf).get()
    assert nan.view(np.uint16).tolist() == [0x7FFF] * 2  # cvt.rn.bf16.f32's NaN
    y = cupy.asarray(np.array([1.5, -2.0], bf))
    assert y.dtype == bf and y.astype(np.float32).get().tolist() == [1.5, -2.0]
    assert cupy.full(2, 3.0, bf).get().tolist() == [3.0, 3.0]

    monkeypatch.setattr(cupy, "_bfloat16", False)
    assert "EE->E" not in cupy.add.types
    for kernel in [lambda: y.astype(np.float32), lambda: cupy.ones(2, np.float32).astype(bf),
                   lambda: cupy.full(2, 3.0, bf), lambda: y + y, lambda: y[cupy.asarray([0])]]:
        with pytest.raises(KeyError):
            kernel()
    assert cupy.empty(2, bf).dtype == bf and y.get().tolist() == [1.5, -2.0]
    assert cupy.asarray(np.ones(2, bf)).copy().dtype == bf


def test_gradflow_kernels_refuse_16_bit_arrays():
    """CuPy would write float16/bfloat16 kernels; gradflow's are written for float32/float64
    (its ops widen 16-bit floats first), so the stand-in refuses one a 16-bit array."""
    k = cupy.ElementwiseKernel("T x", "T y", "y = x", "fake_copy")
    for dt in ["float16"] + (["bfloat16"] if cupy._BF16 is not None else []):
        with pytest.raises(TypeError, match="widened to float32"):
            k(cupy.empty(2, dt))
