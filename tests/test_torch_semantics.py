"""Where gradflow has a PyTorch name, it has PyTorch's meaning: checked against torch itself
(dims and keywords, transpose, max/min, var/std, sizes, formatting, type promotion, squeeze,
0-d tensors, where, mixed integer/array indexing, integer powers, Parameter assignment)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradflow as gf  # noqa: E402
from gradflow import nn  # noqa: E402
from gradflow.autograd import gradcheck  # noqa: E402


def _pair(shape, seed=0, dtype=np.float64):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return gf.tensor(a), torch.tensor(a)


def _same(g, t, tol=1e-12):
    g_np = g.detach().numpy() if isinstance(g, gf.Tensor) else np.asarray(g)
    t_np = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    assert g_np.shape == t_np.shape
    np.testing.assert_allclose(g_np, t_np, rtol=tol, atol=tol)


# ---- dim= / keepdim= and their numpy aliases ------------------------------------------------------
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "logsumexp", "var", "std"])
def test_dim_keepdim_and_numpy_aliases(op):
    g, t = _pair((3, 4, 2))
    _same(getattr(g, op)(dim=1, keepdim=True), getattr(t, op)(dim=1, keepdim=True))
    _same(getattr(g, op)(axis=(0, 2), keepdims=True), getattr(t, op)(dim=(0, 2), keepdim=True))
    _same(getattr(gf, op)(g, -1), getattr(torch, op)(t, -1))


def test_unknown_keyword_suggests_the_right_one():
    x = gf.ones(2, 3)
    with pytest.raises(TypeError, match="'keep_dim'; did you mean 'keepdim'"):
        x.sum(keep_dim=True)
    with pytest.raises(TypeError, match="'dims'; did you mean 'dim'"):
        gf.softmax(x, dims=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        x.mean(foo=1)


def test_bool_and_float_dims_are_type_errors():
    x = gf.ones(2, 3)
    with pytest.raises(TypeError):
        x.sum(True)
    with pytest.raises(TypeError):
        x.sum(1.0)
    with pytest.raises(IndexError):
        x.sum(2)


# ---- transposes -------------------------------------------------------------------------------------
def test_transpose_swaps_two_dims_and_the_other_layouts():
    g, t = _pair((2, 3, 4))
    _same(g.transpose(0, 1), t.transpose(0, 1))
    _same(gf.transpose(g, -1, 0), torch.transpose(t, -1, 0))
    _same(g.permute(2, 0, 1), t.permute(2, 0, 1))
    _same(g.permute((1, 2, 0)), t.permute((1, 2, 0)))
    _same(g.swapaxes(0, 2), t.swapaxes(0, 2))
    _same(g.swapdims(1, 2), t.swapdims(1, 2))
    _same(g.mT, t.mT)
    _same(g.movedim(0, -1), t.movedim(0, -1))
    _same(gf.movedim(g, (0, 1), (2, 0)), torch.movedim(t, (0, 1), (2, 0)))
    m, mt = _pair((2, 3))
    _same(m.transpose(0, 1), mt.transpose(0, 1))  # (not m itself, as a numpy-style transpose gave)
    _same(m.t(), mt.t())
    _same(m.T, mt.T)
    with pytest.raises(ValueError, match="at most 2 dims"):
        g.t()
    with pytest.raises(TypeError):
        g.transpose()


def test_transpose_of_0d_and_1d():
    s = gf.tensor(2.0)
    assert s.t() is s and s.transpose(0, 0) is s and s.transpose(-1, -1) is s
    with pytest.raises(IndexError):
        s.transpose(0, 1)
    v = gf.arange(3)
    assert v.t() is v


# ---- max / min / argmax -----------------------------------------------------------------------------
def test_max_min_with_dim_return_values_and_indices():
    g, t = _pair((3, 4))
    for op in ("max", "min"):
        gr, tr = getattr(g, op)(1), getattr(t, op)(1)
        _same(gr.values, tr.values)
        _same(gr.indices, tr.indices)
        values, indices = getattr(gf, op)(g, dim=0, keepdim=True)
        _same(values, getattr(torch, op)(t, dim=0, keepdim=True).values)
        _same(indices, getattr(torch, op)(t, dim=0, keepdim=True).indices)
        full = getattr(g, op)()
        assert full.ndim == 0
        _same(full, getattr(t, op)())


def test_max_of_two_tensors_is_elementwise():
    a, at = _pair((3,), 0)
    b, bt = _pair((3,), 1)
    _same(gf.max(a, b), torch.max(at, bt))
    _same(gf.min(a, b), torch.min(at, bt))


def test_max_dim_gradient_goes_to_the_returned_index_as_torch():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    x, xt = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    x.max(1).values.sum().backward()
    xt.max(1).values.sum().backward()
    _same(x.grad, xt.grad)
    x.grad = None
    xt.grad = None
    x.amax(1).sum().backward()
    xt.amax(1).sum().backward()
    _same(x.grad, xt.grad)
    assert gradcheck(lambda v: v.max(0).values * v.min(1, keepdim=True).values,
                     [gf.tensor(np.random.default_rng(3).permutation(12).reshape(3, 4) * 0.3,
                                requires_grad=True)])


def test_argmax_argmin_dim_keepdim():
    g, t = _pair((3, 4, 5))
    for op in ("argmax", "argmin"):
        _same(getattr(g, op)(), getattr(t, op)())
        _same(getattr(g, op)(1), getattr(t, op)(1))
        _same(getattr(g, op)(dim=-1, keepdim=True), getattr(t, op)(dim=-1, keepdim=True))
        _same(getattr(g, op)(keepdim=True), getattr(t, op)(keepdim=True))


def test_aminmax():
    g, t = _pair((3, 4))
    r, rt = gf.aminmax(g, dim=1), torch.aminmax(t, dim=1)
    _same(r.min, rt.min)
    _same(r.max, rt.max)


# ---- var / std --------------------------------------------------------------------------------------
def test_var_std_are_unbiased_by_default_with_correction_and_unbiased():
    g, t = _pair((4, 5))
    for op in ("var", "std"):
        _same(getattr(g, op)(), getattr(t, op)())
        _same(getattr(g, op)(0), getattr(t, op)(0))
        _same(getattr(g, op)(1, unbiased=False), getattr(t, op)(1, unbiased=False))
        _same(getattr(g, op)(1, correction=0, keepdim=True),
              getattr(t, op)(1, correction=0, keepdim=True))
        _same(getattr(g, op)(dim=(0, 1), correction=2), getattr(t, op)(dim=(0, 1), correction=2))
    for op in ("var_mean", "std_mean"):
        for a, b in zip(getattr(gf, op)(g, 1), getattr(torch, op)(t, 1)):
            _same(a, b)
        for a, b in zip(getattr(gf, op)(g, 0, unbiased=False), getattr(torch, op)(t, 0, unbiased=False)):
            _same(a, b)
    x = gf.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda v: v.std(1) + v.var(0, correction=0).sum(), [x])


# ---- sizes, formatting, backward(gradient=) --------------------------------------------------------
def test_size_numel_dim_element_size_and_shape():
    x = gf.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and isinstance(x.size(), gf.Size) and isinstance(x.shape, gf.Size)
    assert x.size(1) == 3 and x.size(-1) == 4 and x.shape.numel() == 24
    assert x.numel() == 24 and x.dim() == 3 and x.element_size() == 4
    assert gf.zeros(2, dtype=gf.float64).element_size() == 8
    assert repr(x.shape) == "gf.Size([2, 3, 4])" and isinstance(x.shape[1:], gf.Size)
    with pytest.raises(IndexError):
        x.size(3)


def test_backward_gradient_keyword():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(gradient=gf.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_item_tolist_and_format_of_0d():
    s = gf.tensor(3.14159)
    assert f"{s:.3f}" == "3.142" and s.tolist() == pytest.approx(3.14159) and isinstance(s.item(), float)
    assert f"{gf.tensor(7):d}" == "7"
    assert f"{gf.ones(2)}" == repr(gf.ones(2))
    with pytest.raises(TypeError):
        f"{gf.ones(2):.3f}"


# ---- type promotion ---------------------------------------------------------------------------------
_DT = {"bool": (gf.bool_, torch.bool), "int32": (gf.int32, torch.int32), "int64": (gf.int64, torch.int64),
       "float32": (gf.float32, torch.float32), "float64": (gf.float64, torch.float64)}


@pytest.mark.parametrize("da", list(_DT))
@pytest.mark.parametrize("db", list(_DT))
@pytest.mark.parametrize("shapes", [((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())])
def test_type_promotion_matches_torch(da, db, shapes):
    sa, sb = shapes
    a = gf.ones(sa, dtype=_DT[da][0])
    b = gf.ones(sb, dtype=_DT[db][0])
    at, bt = torch.ones(sa, dtype=_DT[da][1]), torch.ones(sb, dtype=_DT[db][1])
    if da == db == "bool":
        return  # bool + bool is logical in torch; gradflow's & and | cover it
    assert str((a + b).dtype) == str(torch.result_type(at, bt)).replace("torch.", "")
    assert str((a * b).dtype) == str((at * bt).dtype).replace("torch.", "")
    assert str((a / b).dtype) == str((at / bt).dtype).replace("torch.", "")


@pytest.mark.parametrize("da", ["bool", "int32", "int64", "float32", "float64"])
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_python_scalars_promote_as_torch(da, scalar):
    a, at = gf.ones(3, dtype=_DT[da][0]), torch.ones(3, dtype=_DT[da][1])
    if da == "bool" and scalar is True:
        return
    assert str((a + scalar).dtype) == str((at + scalar).dtype).replace("torch.", "")
    assert str((scalar * a).dtype) == str((scalar * at).dtype).replace("torch.", "")


def test_linear_on_integer_input_raises():
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(3, 2)(gf.ones(4, 3, dtype=gf.int64))


# ---- squeeze, 0-d, where, indexing, powers ---------------------------------------------------------
def test_squeeze_of_a_non_1_dim_is_a_no_op():
    g, t = _pair((2, 1, 3))
    _same(g.squeeze(0), t.squeeze(0))
    _same(g.squeeze(1), t.squeeze(1))
    _same(g.squeeze((0, 1)), t.squeeze((0, 1)))


@pytest.mark.parametrize("dim", [0, -1])
def test_0d_tensors_accept_dim_0_and_minus_1(dim):
    s, st = gf.tensor(1.5, requires_grad=True), torch.tensor(1.5, requires_grad=True)
    for fn in (lambda x: x.sum(dim), lambda x: x.logsumexp(dim), lambda x: x.softmax(dim),
               lambda x: x.log_softmax(dim), lambda x: x.squeeze(dim), lambda x: x.mean(dim),
               lambda x: x.amax(dim)):
        _same(fn(s), fn(st))
    _same(s.max(dim).values, st.max(dim).values)
    _same(s.argmax(dim), st.argmax(dim))
    with pytest.raises(IndexError):
        s.sum(1)


def test_where_with_two_scalars():
    c = gf.tensor([True, False, True])
    ct = torch.tensor([True, False, True])
    for a, b in ((1.0, 0.0), (1, 0), (2, 0.5)):
        out, exp = gf.where(c, a, b), torch.where(ct, a, b)
        _same(out, exp)
        assert str(out.dtype) == str(exp.dtype).replace("torch.", "")


@pytest.mark.parametrize("index", [
    (0, slice(None), [1, 2]), ([1, 0], slice(None), 1), (1, slice(None), [[0, 1], [2, 2]]),
    (Ellipsis, 1, slice(None), [0, 2]), (0, [1, 2]), (0, slice(1, 3), [0, 0, 1])])
def test_integer_and_index_array_separated_by_a_slice_place_dims_as_torch(index):
    a = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    g = gf.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    tidx = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
    out, exp = g[index], t[tidx]
    _same(out, exp)
    w = np.random.default_rng(0).standard_normal(tuple(exp.shape))
    (out * gf.tensor(w)).sum().backward()
    (exp * torch.tensor(w)).sum().backward()
    _same(g.grad, t.grad)
    h, ht = gf.tensor(a), torch.tensor(a)
    h[index] = -1.0
    ht[tidx] = -1.0
    _same(h, ht)


def test_integer_tensor_to_negative_integer_power_raises():
    with pytest.raises(RuntimeError, match="negative integer powers"):
        gf.tensor([2, 3]) ** -1
    with pytest.raises(RuntimeError, match="negative integer powers"):
        gf.tensor([2, 3]) ** gf.tensor([1, -1])
    _same(gf.tensor([2, 3]) ** 2, torch.tensor([2, 3]) ** 2)
    _same(gf.tensor([2.0, 4.0]) ** -1, torch.tensor([2.0, 4.0]) ** -1)


def test_assigning_a_plain_tensor_to_a_parameter_attribute_raises():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        m.weight = gf.zeros(2, 2)
    m.bias = None  # None is allowed, as in PyTorch
    assert [n for n, _ in m.named_parameters()] == ["weight"]


# ---- .data ----------------------------------------------------------------------------------------
def test_data_is_a_tensor_sharing_storage_outside_the_graph():
    p = gf.tensor([1.0, 2.0], requires_grad=True)
    d = p.data
    assert isinstance(d, gf.Tensor) and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.array, p.array) and d.array is p.array
    d[0] = 5.0  # visible through p, invisible to autograd (no version bump on p)
    assert p.tolist() == [5.0, 2.0] and p._vbox[0] == 0
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    t.data[0] = 5.0
    assert t._version == 0


def test_micrograd_style_update_loop_matches_torch():
    w0 = np.random.default_rng(0).standard_normal((3, 2))
    x = np.random.default_rng(1).standard_normal((4, 3))
    g_w, t_w = gf.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    for _ in range(3):
        for w, mod in ((g_w, gf), (t_w, torch)):
            loss = (mod.tensor(x) @ w).tanh().sum()
            w.grad = None
            loss.backward()
            w.data += -0.1 * w.grad
    _same(g_w, t_w)
    assert g_w.requires_grad and g_w.is_leaf


def test_data_copy_and_assignment_as_torch():
    p = gf.tensor([1.0, 2.0], requires_grad=True)
    y = p * p  # saves p: .data writes are not detected, as in PyTorch
    p.data.copy_(gf.tensor([3.0, 4.0]))
    y.sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [6.0, 8.0])
    other = gf.tensor([[7.0]], dtype=gf.float32)
    p.data = other
    assert p.shape == (1, 1) and p.dtype == gf.float32 and p.array is other.array
    assert p.requires_grad
    with pytest.raises(TypeError, match="Tensor.array"):
        p.data = np.zeros(2)
