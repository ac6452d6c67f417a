"""The Tensor API: construction, dtypes, properties, conversions, error messages."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F

from conftest import requires_cuda


# ---- construction and dtypes ---------------------------------------------------------------------
def test_tensor_default_dtypes():
    assert gf.tensor([1.0, 2.0]).dtype == gf.float32
    assert gf.tensor(1.5).dtype == gf.float32
    assert gf.tensor([1, 2]).dtype == gf.int64
    assert gf.tensor(3).dtype == gf.int64
    assert gf.tensor([True, False]).dtype == gf.bool_
    assert gf.tensor([[1, 2.5]]).dtype == gf.float32


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.int32, np.int64, np.bool_])
def test_tensor_numpy_array_keeps_dtype(dt):
    a = np.zeros(3, dtype=dt)
    t = gf.tensor(a)
    assert t.dtype == np.dtype(dt)
    a[0] = 1  # gf.tensor copies
    assert t.tolist()[0] == 0


@pytest.mark.parametrize("spec", [gf.float64, np.float64, "float64", np.dtype("float64")])
def test_dtype_spellings(spec):
    assert gf.tensor([1, 2], dtype=spec).dtype == gf.float64
    assert gf.zeros(2, dtype=spec).dtype == gf.float64
    assert gf.ones((2,), dtype=spec).dtype == gf.float64
    assert gf.full((2,), 3, dtype=spec).dtype == gf.float64
    assert gf.eye(2, dtype=spec).dtype == gf.float64
    assert gf.randn(2, dtype=spec).dtype == gf.float64
    assert gf.rand(2, dtype=spec).dtype == gf.float64
    assert gf.arange(3, dtype=spec).dtype == gf.float64


def test_gf_dtypes_are_numpy_dtypes():
    assert gf.float32 == np.float32 and gf.float64 == np.dtype("float64")
    assert gf.int64 == np.int64 and gf.int32 == np.int32 and gf.bool_ == np.bool_


def test_unknown_dtype_raises():
    with pytest.raises(TypeError):
        gf.tensor([1.0], dtype="not_a_dtype")


def test_factories_shapes_and_values():
    assert gf.zeros(2, 3).shape == (2, 3)
    assert gf.zeros((2, 3)).shape == (2, 3)
    assert gf.zeros([2, 3]).shape == (2, 3)
    assert gf.ones((2, 3)).shape == (2, 3)
    assert gf.ones(2, 3).tolist() == [[1.0] * 3] * 2
    assert gf.zeros(2, 3).dtype == gf.float32
    assert gf.zeros(()).shape == ()
    f = gf.full((2, 2), 7.5)
    assert f.tolist() == [[7.5, 7.5], [7.5, 7.5]] and f.dtype == gf.float32
    assert gf.full(3, 1.0).shape == (3,)
    assert gf.arange(4).tolist() == [0, 1, 2, 3] and gf.arange(4).dtype == gf.int64
    assert gf.arange(1, 7, 2).tolist() == [1, 3, 5]
    a = gf.arange(0, 1, 0.25)
    assert a.dtype == gf.float32 and a.tolist() == [0.0, 0.25, 0.5, 0.75]
    np.testing.assert_array_equal(gf.eye(3).numpy(), np.eye(3))
    assert gf.eye(2, 3).shape == (2, 3)
    assert gf.randn(2, 3).shape == (2, 3) and gf.randn((2, 3)).dtype == gf.float32
    r = gf.rand(100)
    assert r.dtype == gf.float32 and (0 <= r.numpy()).all() and (r.numpy() < 1).all()


def test_like_factories():
    t = gf.tensor([[1, 2]], dtype=gf.float64)
    z = gf.zeros_like(t)
    assert z.shape == (1, 2) and z.dtype == gf.float64 and z.tolist() == [[0.0, 0.0]]
    o = gf.ones_like(t, dtype=gf.float32)
    assert o.dtype == gf.float32 and o.tolist() == [[1.0, 1.0]]
    assert gf.zeros_like(gf.tensor([1, 2])).dtype == gf.int64
    assert gf.zeros_like(t, requires_grad=True).requires_grad


def test_factories_requires_grad():
    for t in (gf.zeros(2, requires_grad=True), gf.ones(2, requires_grad=True),
              gf.randn(2, requires_grad=True), gf.rand(2, requires_grad=True),
              gf.full((2,), 1.0, requires_grad=True), gf.eye(2, requires_grad=True),
              gf.tensor([1.0], requires_grad=True)):
        assert t.requires_grad and t.is_leaf and t.grad is None


def test_from_numpy_shares_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = gf.from_numpy(a)
    assert t.dtype == gf.float64 and t.shape == (2, 3)
    a[0, 0] = 42.0
    assert t.tolist()[0][0] == 42.0
    with gf.no_grad():
        t += 1
    assert a[0, 0] == 43.0
    with pytest.raises(TypeError):
        gf.from_numpy([1, 2])


def test_manual_seed_reproducible():
    gf.manual_seed(123)
    a, b = gf.randn(3, 4).numpy().copy(), gf.rand(5).numpy().copy()
    gf.manual_seed(123)
    np.testing.assert_array_equal(gf.randn(3, 4).numpy(), a)
    np.testing.assert_array_equal(gf.rand(5).numpy(), b)
    gf.manual_seed(124)
    assert not np.array_equal(gf.randn(3, 4).numpy(), a)


def test_tensor_from_tensor_copies():
    a = gf.tensor([1.0, 2.0], requires_grad=True)
    b = gf.tensor(a)
    assert not b.requires_grad and b.is_leaf
    with gf.no_grad():
        a += 1
    assert b.tolist() == [1.0, 2.0]


def test_Tensor_constructor():
    t = gf.Tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(t, gf.Tensor) and t.requires_grad and t.dtype == gf.float32


# ---- properties ------------------------------------------------------------------------------------
def test_properties():
    t = gf.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.numel() == 24 and len(t) == 2
    assert t.device == "cpu" and t.dtype == gf.float32
    assert t.T.shape == (4, 3, 2)
    assert gf.zeros(3).T.shape == (3,)
    with pytest.raises(TypeError):
        len(gf.tensor(1.0))


def test_conversions():
    t = gf.tensor([[1.5, 2.0]])
    assert isinstance(t.numpy(), np.ndarray) and t.numpy().dtype == np.float32
    assert t.tolist() == [[1.5, 2.0]]
    assert gf.tensor([[2.5]]).item() == 2.5 and isinstance(gf.tensor(3).item(), int)
    assert float(gf.tensor(2.5)) == 2.5 and int(gf.tensor(3)) == 3
    with pytest.raises(ValueError):
        t.item()
    np.testing.assert_array_equal(np.asarray(t), [[1.5, 2.0]])
    assert "tensor(" in repr(t)


def test_numpy_on_requires_grad_needs_detach():
    x = gf.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0]
    assert x.tolist() == [1.0] and x.item() == 1.0


def test_bool_of_tensor():
    assert bool(gf.tensor([1.0]))
    with pytest.raises(RuntimeError):
        bool(gf.tensor([1.0, 2.0]))


def test_autograd_attributes():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    assert x.is_leaf and x.grad_fn is None and x.grad is None
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert y.grad_fn.name == "Mul"
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    np.testing.assert_array_equal(d.numpy(), [2.0, 4.0])
    c = gf.tensor([1.0])
    assert c.requires_grad_() is c and c.requires_grad
    c.requires_grad_(False)
    assert not c.requires_grad
    with pytest.raises(RuntimeError):
        y.requires_grad_(False)


def test_detach_shares_memory():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    d.array[0] = 5.0
    assert x.tolist()[0] == 5.0


def test_zero_grad():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad is not None
    x.zero_grad()
    assert x.grad is None


def test_backward_and_grad_api():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    y = (x ** 3).sum()
    g = gf.grad(y, x)
    assert isinstance(g, tuple) and len(g) == 1
    np.testing.assert_allclose(g[0].numpy(), [3.0, 12.0])
    assert x.grad is None  # gf.grad leaves .grad alone
    y2 = x ** 2
    y2.backward(gf.tensor([1.0, 10.0], dtype=gf.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 40.0])
    x.zero_grad()
    y2 = x ** 2
    y2.backward(gradient=[1.0, 1.0])  # array-likes accepted
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_grad_multiple_inputs_outputs_and_grad_outputs():
    a = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    b = gf.tensor([3.0, 4.0], dtype=gf.float64, requires_grad=True)
    ga, gb = gf.grad([(a * b).sum(), (a * a).sum()], [a, b])
    np.testing.assert_allclose(ga.numpy(), [3 + 2, 4 + 4])
    np.testing.assert_allclose(gb.numpy(), [1.0, 2.0])
    (ga,) = gf.grad(a * b, [a], grad_outputs=gf.tensor([1.0, -1.0], dtype=gf.float64))
    np.testing.assert_allclose(ga.numpy(), [3.0, -4.0])
    c = gf.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        gf.grad((a * 2).sum(), [a, c])
    ga, gc = gf.grad((a * 2).sum(), [a, c], allow_unused=True)
    assert gc is None


def test_grad_wrt_non_leaf():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    y = x * 3
    z = (y * y).sum()
    (gy,) = gf.grad(z, y)
    np.testing.assert_allclose(gy.numpy(), 2 * y.detach().numpy())


def test_no_grad_context_and_decorator():
    x = gf.tensor([1.0], requires_grad=True)
    with gf.no_grad():
        y = x * 2
        assert not gf.autograd.is_grad_enabled()
        with gf.enable_grad():
            z = x * 2
    assert gf.autograd.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @gf.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with gf.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert (x + 1).requires_grad


def test_operators_python_scalars_both_sides():
    x = gf.tensor([1.0, 2.0, 4.0])
    assert (x + 1).tolist() == (1 + x).tolist() == [2.0, 3.0, 5.0]
    assert (x - 1).tolist() == [0.0, 1.0, 3.0]
    assert (1 - x).tolist() == [0.0, -1.0, -3.0]
    assert (x * 2).tolist() == (2 * x).tolist() == [2.0, 4.0, 8.0]
    assert (x / 2).tolist() == [0.5, 1.0, 2.0]
    assert (4 / x).tolist() == [4.0, 2.0, 1.0]
    assert (x ** 2).tolist() == [1.0, 4.0, 16.0]
    assert (2 ** x).tolist() == [2.0, 4.0, 16.0]
    assert (-x).tolist() == [-1.0, -2.0, -4.0]
    for r in (x + 1, 1 + x, x * 2.5, 2 ** x, x / 3):
        assert r.dtype == gf.float32  # Python scalars don't promote
    assert isinstance(np.float64(2.0) * x, gf.Tensor)


def test_integer_arithmetic():
    i = gf.tensor([1, 2, 3])
    assert (i + 1).dtype == gf.int64 and (i * i).tolist() == [1, 4, 9]
    assert (i / 2).dtype.kind == "f" and (i / 2).tolist() == [0.5, 1.0, 1.5]
    assert (i ** 2).tolist() == [1, 4, 9]


# ---- errors -------------------------------------------------------------------------------------------
def test_broadcast_error_names_both_shapes():
    with pytest.raises(ValueError) as e:
        gf.ones(2, 3) + gf.ones(4)
    assert "(2, 3)" in str(e.value) and "(4,)" in str(e.value)
    with pytest.raises(ValueError) as e:
        gf.ones(2, 3) * gf.ones(3, 2)
    assert "(2, 3)" in str(e.value) and "(3, 2)" in str(e.value)


def test_broadcast_to_error():
    with pytest.raises(ValueError):
        gf.ones(3).broadcast_to((2, 4))
    with pytest.raises(ValueError):
        gf.ones(2, 3).broadcast_to((3,))


@pytest.mark.parametrize("sa,sb", [((2, 3), (4, 2)), ((2, 2, 3), (3, 4, 2)), ((5, 2, 3), (2, 2))])
def test_matmul_inner_dim_error_names_both_shapes(sa, sb):
    with pytest.raises(ValueError) as e:
        gf.ones(*sa) @ gf.ones(*sb)
    assert str(sa) in str(e.value) and str(sb) in str(e.value)


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((2, 3), (2,)), ((4,), (3, 2))])
def test_matmul_inner_dim_error_names_1d_shapes(sa, sb):
    with pytest.raises(ValueError) as e:
        gf.ones(*sa) @ gf.ones(*sb)
    assert str(sa) in str(e.value) and str(sb) in str(e.value)


def test_matmul_0d_error():
    with pytest.raises(ValueError):
        gf.matmul(gf.tensor(1.0), gf.ones(2))


def test_float32_float64_promotion():
    a, b = gf.ones(2), gf.ones(2, dtype=gf.float64)
    for r in (a + b, b + a, a * b, a - b, a / b, gf.maximum(a, b), a @ b):
        assert r.dtype == gf.float64
    x = gf.ones(2, requires_grad=True)
    (x * b).sum().backward()
    assert x.grad.dtype == gf.float32  # gradients come back in the operand's dtype


def test_requires_grad_on_integer_raises_runtimeerror():
    with pytest.raises(RuntimeError, match="floating point"):
        gf.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        gf.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        gf.zeros(2, dtype=gf.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        gf.arange(3, requires_grad=True)


@pytest.mark.parametrize("dev", ["tpu", "gpu", "cuda:x", "cpu:0", ""])
def test_unknown_device_raises_valueerror(dev):
    with pytest.raises(ValueError):
        gf.zeros(2, device=dev)
    with pytest.raises(ValueError):
        gf.tensor([1.0], device=dev)


def test_factories_on_device(device):
    for t in (gf.zeros(2, 3, device=device), gf.ones((2, 3), device=device), gf.randn(2, 3, device=device),
              gf.full((2, 3), 1.0, device=device), gf.tensor(np.ones((2, 3)), device=device),
              gf.eye(2, 3, device=device), gf.arange(6, device=device).reshape(2, 3)):
        assert t.device == gf.zeros(1, device=device).device and t.shape == (2, 3)
    t = gf.tensor([[1.0, 2.0]], device=device)
    assert t.tolist() == [[1.0, 2.0]]
    assert (t + 1).device == t.device and (t * t).sum().item() == 5.0
    assert t.cpu().device == "cpu" and t.to("cpu").numpy().tolist() == [[1.0, 2.0]]


def test_grad_flows_across_to_device(device):
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    y = x.to(device) * 3
    (y.cpu() * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6 * 1.0, 6 * 2.0])


@requires_cuda
def test_mixing_devices_raises():
    a = gf.ones(2)
    b = gf.ones(2, device="cuda")
    with pytest.raises(RuntimeError):
        a + b
    with pytest.raises(RuntimeError):
        b * a


def test_cross_entropy_label_out_of_range():
    logits = gf.zeros(2, 3)
    with pytest.raises((IndexError, ValueError)):
        F.cross_entropy(logits, gf.tensor([0, 3]))
    with pytest.raises((IndexError, ValueError)):
        F.cross_entropy(logits, gf.tensor([-1, 0]))
    with pytest.raises(ValueError):
        F.cross_entropy(logits, gf.tensor([0, 1, 2]))  # wrong number of labels


def test_loss_shape_mismatch_and_reduction_errors():
    with pytest.raises(ValueError):
        F.mse_loss(gf.zeros(2, 3), gf.zeros(3))
    with pytest.raises(ValueError):
        F.mse_loss(gf.zeros(2), gf.zeros(2), reduction="avg")
    with pytest.raises(ValueError):
        F.binary_cross_entropy_with_logits(gf.zeros(2, 3), gf.zeros(2))


def test_shape_op_errors():
    with pytest.raises(ValueError):
        gf.ones(2, 3).reshape(4, -1)
    with pytest.raises(ValueError):
        gf.ones(2, 3).reshape(-1, -1)
    with pytest.raises(ValueError):
        gf.ones(2, 3).permute(0, 0)
    with pytest.raises(IndexError):
        gf.ones(2, 3).transpose(0, 2)
    with pytest.raises(ValueError):
        gf.concatenate([gf.ones(2, 3), gf.ones(3, 2)], axis=0)
    with pytest.raises(ValueError):
        gf.stack([gf.ones(2), gf.ones(3)])
    with pytest.raises(ValueError):
        gf.ones(5).split([2, 2])
    with pytest.raises(IndexError):
        gf.ones(2, 3).sum(2)
    with pytest.raises(ValueError):
        gf.ones(2, 3).sum((0, 0))


# ---- shape ops: values ---------------------------------------------------------------------------
def test_shape_op_values():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = gf.tensor(a)
    np.testing.assert_array_equal(t.reshape(4, 6).numpy(), a.reshape(4, 6))
    np.testing.assert_array_equal(t.reshape((-1, 4)).numpy(), a.reshape(-1, 4))
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), a.swapaxes(0, 2))
    np.testing.assert_array_equal(t.swapaxes(0, 2).numpy(), a.swapaxes(0, 2))
    np.testing.assert_array_equal(t.T.numpy(), a.T)
    np.testing.assert_array_equal(t.flatten().numpy(), a.ravel())
    np.testing.assert_array_equal(t.flatten(1).numpy(), a.reshape(2, 12))
    assert t.unsqueeze(0).shape == (1, 2, 3, 4) and t.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert gf.ones(1, 2, 1).squeeze().shape == (2,)
    assert gf.ones(1, 2, 1).squeeze((0, 2)).shape == (2,)
    np.testing.assert_array_equal(gf.concatenate([t, t], axis=-1).numpy(), np.concatenate([a, a], -1))
    np.testing.assert_array_equal(gf.stack([t, t], axis=1).numpy(), np.stack([a, a], 1))
    parts = t.split(3, axis=2)
    assert [p.shape for p in parts] == [(2, 3, 3), (2, 3, 1)]
    parts = gf.split(t, [1, 2], axis=1)
    assert [p.shape for p in parts] == [(2, 1, 4), (2, 2, 4)]
    np.testing.assert_array_equal(t.broadcast_to((5, 2, 3, 4)).numpy()[3], a)


@pytest.mark.parametrize("index", [
    1, -1, (0, 1), slice(None, None, -1), (slice(1, None), Ellipsis, slice(None, None, 2)),
    (None, 0), (Ellipsis, None), ([0, 1, 1],), (slice(None), [2, 0]), ([1, 0], [2, 2]),
    (0, slice(None), -1)])
def test_indexing_values_match_numpy(index):
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(gf.tensor(a)[index].numpy(), a[index])


def test_bool_mask_indexing_values():
    a = np.arange(6.0).reshape(2, 3)
    t = gf.tensor(a)
    np.testing.assert_array_equal(t[t > 2].numpy(), a[a > 2])
    np.testing.assert_array_equal(t[np.array([True, False])].numpy(), a[[True, False]])


def test_elementwise_values_match_numpy(rng):
    a = rng.uniform(0.5, 2, (3, 4))
    b = rng.uniform(0.5, 2, (4,))
    ta, tb = gf.tensor(a), gf.tensor(b)
    for got, exp in [(ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b),
                     (ta ** tb, a ** b), (gf.maximum(ta, tb), np.maximum(a, b)),
                     (gf.exp(ta), np.exp(a)), (gf.log(ta), np.log(a)), (gf.sqrt(ta), np.sqrt(a)),
                     (gf.abs(-ta), a), (gf.clip(ta, 0.8, 1.5), np.clip(a, 0.8, 1.5)),
                     (ta.var(0, unbiased=False), a.var(0)), (ta.var(1), a.var(1, ddof=1)),
                     (ta.logsumexp(1), np.log(np.exp(a).sum(1))), (ta @ tb, a @ b)]:
        np.testing.assert_allclose(got.numpy(), exp, rtol=1e-12)


# ---- pickle and copy ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_leaf_tensor_copies_values_requires_grad_and_grad(how):
    import copy
    import pickle

    dup = {"copy": copy.copy, "deepcopy": copy.deepcopy,
           "pickle": lambda t: pickle.loads(pickle.dumps(t))}[how]
    t = gf.tensor([[1.0, 2.0]], dtype=gf.float64, requires_grad=True)
    (t * t).sum().backward()
    c = dup(t)
    assert type(c) is gf.Tensor and c.dtype == gf.float64 and c.requires_grad and c.is_leaf
    np.testing.assert_array_equal(c.detach().numpy(), [[1.0, 2.0]])
    np.testing.assert_array_equal(c.grad.numpy(), [[2.0, 4.0]])
    with gf.no_grad():
        c += 1  # its own memory
    np.testing.assert_array_equal(t.detach().numpy(), [[1.0, 2.0]])


def test_deepcopy_of_module_gives_independent_parameters():
    import copy

    m = gf.nn.Linear(3, 2)
    m2 = copy.deepcopy(m)
    assert isinstance(m2.weight, gf.nn.Parameter) and m2.weight is not m.weight
    np.testing.assert_array_equal(m2.weight.detach().numpy(), m.weight.detach().numpy())
    x = gf.ones(1, 3)
    m2(x).sum().backward()
    assert m2.weight.grad is not None and m.weight.grad is None


def test_non_leaf_tensor_refuses_to_be_copied():
    import copy

    y = gf.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only leaf tensors.*Mul.*detach"):
        copy.deepcopy(y)
