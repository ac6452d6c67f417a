"""The C++ binary kernels (_C.add ... _C.where) against numpy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from gradflow import _C

ARITH = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
}
CMP = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
       "gt": np.greater, "ge": np.greater_equal}
DTYPES = [np.float32, np.float64]
rng = np.random.default_rng(0)


def rand(shape, dtype, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def operands(name, shape_a, shape_b, dtype):
    if name == "pow":
        return rand(shape_a, dtype, 0.1, 3.0), rand(shape_b, dtype, -2.0, 2.0)
    a, b = rand(shape_a, dtype), rand(shape_b, dtype)
    if name == "div":
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(dtype)
    return a, b


def check_arith(name, a, b, **kw):
    got = getattr(_C, name)(a, b, **kw)
    # numpy in the same dtype: elementwise ops are correctly rounded in both (pow through the
    # same libm), so a couple of ulps covers any difference.
    want = ARITH[name](a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.flags.c_contiguous
    if name == "pow":
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(a.dtype).eps, atol=0)
    else:
        np.testing.assert_array_equal(got, want)
    return got


SHAPE_PAIRS = [
    ((), ()), ((), (3, 4)), ((3, 4), ()), ((3, 1), (1, 4)), ((2, 3), (3,)), ((5, 1, 3), (4, 1)),
    ((0,), (0,)), ((0, 3), (1, 3)), ((1,), (7,)), ((2, 1, 1), (1, 1, 1)), ((4, 0), (4, 1)),
    ((300, 200), (200,)), ((300, 200), (300, 1)), ((1 << 16,), (1 << 16,)), ((257, 259), ()),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ARITH))
@pytest.mark.parametrize("sa,sb", SHAPE_PAIRS)
def test_arith_shapes(name, dtype, sa, sb):
    a, b = operands(name, sa, sb, dtype)
    check_arith(name, a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ARITH))
def test_arith_views(name, dtype):
    a, b = operands(name, (64, 48), (64, 48), dtype)
    check_arith(name, a.T, b.T)                     # transposed
    check_arith(name, a[::2], b[::2])               # row step
    check_arith(name, a[:, ::-1], b)                # negative stride
    check_arith(name, a[::-3, 1::5], b[::-3, 2::5])  # both
    check_arith(name, a.T, b[:, 0])                 # transposed with row broadcast
    check_arith(name, np.broadcast_to(a[:1], (64, 48)), b)  # stride-0 view
    check_arith(name, a[5, 7, ...], b)               # 0-d view
    check_arith(name, a[5, 7], b)                    # numpy scalar
    big_a, big_b = operands(name, (600, 300), (600, 300), dtype)  # threaded path
    check_arith(name, big_a[:, ::-2], big_b[::-1, ::2])
    check_arith(name, big_a.T, big_b.T)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CMP))
def test_compare(name, dtype):
    a = rng.integers(-3, 3, size=(70, 50)).astype(dtype)
    b = rng.integers(-3, 3, size=(70, 50)).astype(dtype)
    a[0, :5] = np.nan
    b[1, :5] = np.nan
    for x, y in [(a, b), (a, b[0]), (a[:, :1], b[:1]), (a.T, b.T[::-1]), (a[3, 3], b),
                 (np.ones((1 << 16,), dtype), np.ones((1 << 16,), dtype))]:
        got = getattr(_C, name)(x, y)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, CMP[name](x, y))


@pytest.mark.parametrize("dtype", DTYPES)
def test_maximum_minimum_nan(dtype):
    a = np.array([1, np.nan, 3, np.nan, -np.inf, 0.0], dtype)
    b = np.array([np.nan, 2, 1, np.nan, 5, -0.0], dtype)
    np.testing.assert_array_equal(_C.maximum(a, b), np.maximum(a, b))
    np.testing.assert_array_equal(_C.minimum(a, b), np.minimum(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_div_pow_special(dtype):
    a = np.array([1, -1, 0, np.inf, 2, 0], dtype)
    b = np.array([0, 0, 0, np.inf, -np.inf, -1], dtype)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(_C.div(a, b), a / b)
        np.testing.assert_array_equal(_C.pow(a, b), np.power(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_where(dtype):
    c = rng.random((40, 30)) > 0.5
    a, b = rand((40, 30), dtype), rand((30,), dtype)
    for cc, x, y in [(c, a, b), (c[:, :1], a, b), (c.T, a.T, b[:1, None]), (c, np.array(2.0, dtype), b),
                     (np.array(True), a, b), (c[::-1], a[:, ::2].repeat(2, 1), b), (c, a, np.zeros((), dtype))]:
        np.testing.assert_array_equal(_C.where(cc, x, y), np.where(cc, x, y))
    big = rng.random((300, 300)) > 0.3
    x = rand((300, 300), dtype)
    np.testing.assert_array_equal(_C.where(big, x, np.zeros((), dtype)), np.where(big, x, 0).astype(dtype))
    with pytest.raises(TypeError, match="bool"):
        _C.where(c.astype(np.float32), a, b)
    with pytest.raises(TypeError):
        _C.where(c, a, b.astype(np.float64 if dtype == np.float32 else np.float32))
    with pytest.raises(ValueError, match=r"\(40, 30\).*\(7,\)"):
        _C.where(c, a, rand((7,), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ARITH))
def test_out_in_place(name, dtype):
    a, b = operands(name, (200, 300), (300,), dtype)
    want = ARITH[name](a, b)
    x = a.copy()
    r = getattr(_C, name)(x, b, out=x)
    assert r is x or np.shares_memory(r, x)
    np.testing.assert_allclose(x, want, rtol=4 * np.finfo(dtype).eps)
    # a strided view as out and as input
    y = np.zeros((200, 600), dtype)
    y[:, ::2] = a
    v = y[:, ::2]
    getattr(_C, name)(v, b, out=v)
    np.testing.assert_allclose(y[:, ::2], want, rtol=4 * np.finfo(dtype).eps)
    assert (y[:, 1::2] == 0).all()
    # out overlaps an input other than as the same view: the result must be as if not
    z = rand((50, 40), dtype) + 3
    zc = z.copy()
    getattr(_C, name)(z[1:], z[:-1], out=z[1:])
    np.testing.assert_allclose(z[1:], ARITH[name](zc[1:], zc[:-1]), rtol=4 * np.finfo(dtype).eps)


def test_out_errors():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        _C.add(a, a, out=np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="float64"):
        _C.add(a, a, out=np.ones((2, 3), np.float64))
    ro = np.ones((2, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.add(a, a, out=ro)
    with pytest.raises(ValueError, match="read-only"):
        _C.add(np.ones(3, np.float32), np.ones(3, np.float32), out=np.broadcast_to(np.ones(1, np.float32), (3,)))


def test_errors():
    with pytest.raises(ValueError) as e:
        _C.add(np.ones((2, 3), np.float32), np.ones(4, np.float32))
    assert "add" in str(e.value) and "float32 array of shape (2, 3)" in str(e.value) \
        and "float32 array of shape (4,)" in str(e.value)
    with pytest.raises(TypeError, match=r"mul.*float32.*float64"):
        _C.mul(np.ones(3, np.float32), np.ones(3, np.float64))
    with pytest.raises(TypeError, match=r"lt.*int64"):
        _C.lt(np.ones(3, np.int64), np.ones(3, np.int64))
    with pytest.raises(TypeError, match="float16"):
        _C.sub(np.ones(3, np.float16), np.ones(3, np.float16))


@st.composite
def broadcastable(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    min_side=0, max_side=5))
    return shapes.input_shapes


@settings(max_examples=150, deadline=None)
@given(broadcastable(), st.sampled_from(list(ARITH)), st.sampled_from(DTYPES),
       st.booleans(), st.booleans())
def test_hypothesis_arith(shapes, name, dtype, flip_a, transpose_b):
    a, b = operands(name, shapes[0], shapes[1], dtype)
    if flip_a and a.ndim:
        a = np.flip(a, axis=0)
    if transpose_b:
        b = np.ascontiguousarray(b.T).T  # Fortran-ordered, same shape
    check_arith(name, a, b)


@settings(max_examples=100, deadline=None)
@given(broadcastable(), st.sampled_from(list(CMP)), st.sampled_from(DTYPES))
def test_hypothesis_compare(shapes, name, dtype):
    a = rng.integers(-2, 2, size=shapes[0]).astype(dtype)
    b = rng.integers(-2, 2, size=shapes[1]).astype(dtype)
    np.testing.assert_array_equal(getattr(_C, name)(a, b), CMP[name](a, b))
