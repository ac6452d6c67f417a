"""The tape-based reverse-mode engine: graph release, long chains, broadcasting reduction,
higher-order gradients, accumulation, in-place ops and version counters, anomaly detection."""
import gc

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F


def f64(a, requires_grad=True):
    return gf.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# ---- retain_graph ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda x: (x * x).sum(),
    lambda x: x.exp().sum(),
    lambda x: F.sigmoid(x).sum(),
    lambda x: (x @ x),
    lambda x: F.log_softmax(x, -1).sum(),
    lambda x: x.max(),
], ids=["mul", "exp", "sigmoid", "matmul", "log_softmax", "max"])
def test_second_backward_without_retain_graph_raises(make):
    x = f64([1.0, 2.0, 3.0])
    y = make(x)
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_saved_tensors_released_after_backward():
    x = f64([1.0, 2.0])
    z = x * x
    e = z.exp()
    e.sum().backward()
    for node in (z.grad_fn, e.grad_fn):
        assert node._released and node._saved == () and node._out_data is None


def test_retain_graph_allows_second_backward_and_accumulates():
    x = f64([1.0, 2.0])
    y = (x * x).exp().sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    assert y.grad_fn._released is False
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_grad_releases_unless_retain_graph():
    x = f64([1.0, 2.0])
    y = (x * x).sum()
    gf.grad(y, x, retain_graph=True)
    gf.grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph"):
        gf.grad(y, x)


def test_shared_subgraph_released_by_first_backward():
    x = f64([1.0, 2.0])
    h = x.exp()
    a, b = h.sum(), (h * 2).sum()
    a.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        b.backward()


# ---- long chains ------------------------------------------------------------------------------------
N_CHAIN = 100_000


def test_long_chain_backward_and_delete():
    """100,000 recorded ops back-propagate (the engine is iterative), and freeing the whole tape
    afterwards (a 100,000-deep chain of nodes) does not overflow the stack."""
    x = f64([1.0, 2.0])
    y = x
    for i in range(N_CHAIN):
        y = y * 1.0 if i % 3 else (y + 0.5) - 0.5  # input-saving and saving-nothing nodes
    y.sum().backward(retain_graph=True)  # keep every node alive for the delete below
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])
    del y
    gc.collect()
    assert x.grad is not None


# ---- broadcasting ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sa,sb", [((3, 1), (1, 4)), ((2, 3), (3,)), ((2, 3), ()), ((1,), (2, 2, 1)),
                                   ((2, 1, 3), (4, 1))])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "pow"])
def test_broadcast_grads_reduced_to_operand_shape(sa, sb, op):
    rng = np.random.default_rng(0)
    a = f64(rng.uniform(0.5, 2, sa))
    b = f64(rng.uniform(0.5, 2, sb) + 0.013)
    fn = {"add": lambda p, q: p + q, "sub": lambda p, q: p - q, "mul": lambda p, q: p * q,
          "div": lambda p, q: p / q, "maximum": gf.maximum, "pow": lambda p, q: p ** q}[op]
    fn(a, b).sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    assert gf.autograd.gradcheck(fn, (f64(a.detach().numpy()), f64(b.detach().numpy())))


def test_backward_on_device(device):
    x = gf.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=gf.float64, device=device, requires_grad=True)
    b = gf.tensor([0.5, -1.0], dtype=gf.float64, device=device, requires_grad=True)
    loss = F.log_softmax(F.sigmoid(x @ x + b) * 3, -1).sum()
    loss.backward()
    assert x.grad.device == x.device and b.grad.shape == (2,)
    assert gf.autograd.gradcheck(lambda p, q: F.log_softmax(F.sigmoid(p @ p + q) * 3, -1), (x, b))
    assert gf.autograd.gradgradcheck(lambda p: F.tanh(p * p).sum(0), (x,))


def test_scalar_operand_grad_dtype_and_shape():
    x = gf.ones(2, 3, requires_grad=True)
    s = gf.tensor(2.0, requires_grad=True)
    (x * s).sum().backward()
    assert s.grad.shape == () and s.grad.item() == 6.0
    assert x.grad.dtype == gf.float32


# ---- higher order ------------------------------------------------------------------------------------
def test_create_graph_gives_grad_with_graph():
    x = f64([0.5, -1.0])
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.detach().numpy(), 3 * np.array([0.5, -1.0]) ** 2)
    (gg,) = gf.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 6 * np.array([0.5, -1.0]))


@pytest.mark.parametrize("act", [F.sigmoid, F.tanh, F.gelu, lambda t: F.gelu(t, "tanh"), F.softplus,
                                 lambda t: F.softmax(t, -1), lambda t: F.log_softmax(t, 0),
                                 lambda t: F.leaky_relu(t, 0.2) * t, lambda t: F.relu(t) * t,
                                 lambda t: F.cross_entropy(t, gf.tensor([1, 0]))],
                         ids=["sigmoid", "tanh", "gelu", "gelu_tanh", "softplus", "softmax",
                              "log_softmax", "leaky_relu", "relu", "cross_entropy"])
def test_fused_activations_hessian_vector_product(act):
    """Hessian-vector product via double backward equals central differences of the gradient."""
    rng = np.random.default_rng(3)
    x0 = rng.uniform(0.3, 1.5, (2, 3)) * np.where(rng.random((2, 3)) < 0.5, -1, 1)
    v = rng.standard_normal((2, 3))

    def grad_at(a, create):
        x = f64(a)
        (g,) = gf.grad(act(x).sum(), x, create_graph=create)
        return x, g

    x, g = grad_at(x0, True)
    (hv,) = gf.grad((g * gf.tensor(v)).sum(), x, allow_unused=True)
    hv = np.zeros_like(x0) if hv is None else hv.numpy()
    eps = 1e-6
    num = (grad_at(x0 + eps * v, False)[1].numpy() - grad_at(x0 - eps * v, False)[1].numpy()) / (2 * eps)
    np.testing.assert_allclose(hv, num, atol=1e-6, rtol=1e-5)


# ---- accumulation -------------------------------------------------------------------------------------
def test_leaf_grad_accumulates_until_zeroed():
    x = f64([1.0, 2.0])
    for k in range(1, 4):
        (x * 3).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [3.0 * k] * 2)
    x.zero_grad()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    with gf.no_grad():
        x.grad.zero_()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_non_leaf_grads_not_kept():
    x = f64([1.0, 2.0])
    y = x * 2
    z = y.exp()
    z.sum().backward()
    assert y.grad is None and z.grad is None and x.grad is not None


def test_grad_used_twice_and_diamond():
    x = f64([1.5])
    a = x * 2
    b = x * 3
    (a * b + x).sum().backward()  # 6x^2 + x -> 12x + 1
    np.testing.assert_allclose(x.grad.numpy(), [12 * 1.5 + 1])


def test_leaf_grads_are_private_arrays():
    x, y = f64([1.0, 2.0]), f64([3.0, 4.0])
    (x + y).sum().backward()  # Add hands the same gradient to both operands
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    x.grad.numpy()[0] = 100.0
    assert y.grad.tolist() == [1.0, 1.0]


def test_backward_does_not_modify_callers_grad_tensor():
    x, y = f64([1.0, 2.0]), f64([3.0, 4.0])
    g = gf.tensor([1.0, 1.0], dtype=gf.float64)
    (x + y).backward(g)
    (x + y).backward(g)
    assert g.tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [2.0, 2.0]


def test_backward_on_leaf_does_not_modify_callers_grad_tensor():
    x = f64([1.0, 2.0])
    g = gf.tensor([1.0, 1.0], dtype=gf.float64)
    x.backward(g)
    x.backward(g)
    assert g.tolist() == [1.0, 1.0]


def test_backward_nonscalar_without_grad_raises():
    x = f64([1.0, 2.0])
    with pytest.raises(RuntimeError):
        (x * 2).backward()
    with pytest.raises(RuntimeError):
        gf.grad(x * 2, x)


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        gf.ones(2).sum().backward()


def test_backward_grad_shape_mismatch_raises():
    x = f64([1.0, 2.0])
    with pytest.raises(ValueError):
        (x * 2).backward(gf.ones(3, dtype=gf.float64))


def test_backward_grad_of_other_dtype_is_cast_to_the_outputs():
    x = gf.tensor([1.0, 2.0], requires_grad=True)  # float32
    (x * x).backward(gf.tensor([1.0, 0.5], dtype=gf.float64))
    assert x.grad.dtype == gf.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_single_element_nonscalar_backward_is_allowed():
    x = f64([[2.0]])
    (x * 3).backward()
    assert x.grad.tolist() == [[3.0]]


def test_no_grad_blocks_recording():
    x = f64([1.0])
    with gf.no_grad():
        y = x * 2
    assert not y.requires_grad
    with pytest.raises(RuntimeError):
        y.backward()


def test_detach_stops_gradient():
    x = f64([2.0])
    y = x * x.detach()  # d/dx = x (the detached factor is a constant)
    y.backward()
    assert x.grad.tolist() == [2.0]


# ---- in-place ops and version counters ---------------------------------------------------------------
@pytest.mark.parametrize("op", [
    lambda t: t.__iadd__(1.0), lambda t: t.__isub__(1.0), lambda t: t.__imul__(2.0),
    lambda t: t.__itruediv__(2.0), lambda t: t.__setitem__(0, 5.0), lambda t: t.__setitem__(Ellipsis, 5.0),
    lambda t: t.add_(1.0), lambda t: t.mul_(2.0), lambda t: t.sub_(1.0), lambda t: t.div_(2.0),
    lambda t: t.zero_(), lambda t: t.fill_(3.0), lambda t: t.copy_(gf.ones(3))],
    ids=["iadd", "isub", "imul", "idiv", "setitem", "setitem_ellipsis", "add_", "mul_", "sub_", "div_",
         "zero_", "fill_", "copy_"])
def test_inplace_bumps_version(op):
    t = gf.zeros(3)
    v = t._vbox[0]
    op(t)
    assert t._vbox[0] == v + 1
    d = t.detach()  # shares the version counter
    op(d)
    assert t._vbox[0] == v + 2


@pytest.mark.parametrize("op,name", [
    (lambda t: t.__iadd__(1.0), "Mul"), (lambda t: t.__imul__(2.0), "Mul"),
    (lambda t: t.__setitem__(0, 5.0), "Mul"), (lambda t: t.zero_(), "Mul"),
    (lambda t: t.fill_(1.0), "Mul"), (lambda t: t.add_(1.0), "Mul")],
    ids=["iadd", "imul", "setitem", "zero_", "fill_", "add_"])
def test_backward_through_modified_saved_input_raises_naming_op(op, name):
    x = f64([1.0, 2.0, 3.0])
    y = x * 2
    z = y * y  # Mul saves y
    op(y)
    with pytest.raises(RuntimeError, match=name):
        z.sum().backward()


@pytest.mark.parametrize("make,name", [(lambda x: x.exp(), "Exp"), (lambda x: F.sigmoid(x), "Sigmoid"),
                                       (lambda x: F.tanh(x), "Tanh"), (lambda x: x.sqrt(), "Sqrt"),
                                       (lambda x: F.softmax(x, -1), "Softmax")])
def test_backward_through_modified_saved_output_raises_naming_op(make, name):
    x = f64([1.0, 2.0, 3.0])
    y = make(x)
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match=name):
        y.sum().backward()


def test_modification_under_no_grad_and_through_detach_detected():
    x = f64([1.0, 2.0])
    y = x.exp()
    with gf.no_grad():
        y[0] = 0.0
    with pytest.raises(RuntimeError, match="Exp"):
        y.sum().backward()
    x = f64([1.0, 2.0])
    y = x.exp()
    y.detach().zero_()
    with pytest.raises(RuntimeError, match="Exp"):
        y.sum().backward()


def test_modification_through_basic_index_view_detected():
    x = f64([1.0, 2.0])
    y = x.exp()
    with gf.no_grad():
        y[:].mul_(0.0)
    with pytest.raises(RuntimeError, match="Exp"):
        y.sum().backward()


@pytest.mark.parametrize("view", [lambda t: t.reshape(2, 1), lambda t: t.T, lambda t: t.unsqueeze(0),
                                  lambda t: t.swapaxes(0, -1)], ids=["reshape", "T", "unsqueeze", "swapaxes"])
def test_modification_through_reshape_view_detected(view):
    x = f64([1.0, 2.0])
    y = x.exp()
    with gf.no_grad():
        view(y).mul_(0.0)
    with pytest.raises(RuntimeError, match="Exp"):
        y.sum().backward()


def test_recorded_inplace_on_reshape_view_of_saved_output():
    x = f64([1.0, 2.0])
    a = x.exp()
    v = a.reshape(2, 1)
    try:
        v += 1.0
        a.sum().backward()
    except RuntimeError:
        return  # refusing the write, or detecting it in backward, is acceptable
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]))


@pytest.mark.parametrize("op", [
    lambda t: t.__iadd__(1.0), lambda t: t.__isub__(1.0), lambda t: t.__imul__(2.0),
    lambda t: t.__itruediv__(2.0), lambda t: t.__setitem__(0, 5.0), lambda t: t.add_(1.0),
    lambda t: t.mul_(2.0), lambda t: t.zero_(), lambda t: t.fill_(1.0)],
    ids=["iadd", "isub", "imul", "idiv", "setitem", "add_", "mul_", "zero_", "fill_"])
def test_inplace_on_leaf_requiring_grad_raises(op):
    x = f64([1.0, 2.0])
    with pytest.raises(RuntimeError):
        op(x)
    assert x.tolist() == [1.0, 2.0]
    with gf.no_grad():
        op(x)  # the optimizer-update pattern is fine
    assert x.requires_grad and x.is_leaf


@pytest.mark.parametrize("view", [lambda t: t.reshape(-1), lambda t: t.T, lambda t: t.unsqueeze(0)],
                         ids=["reshape", "T", "unsqueeze"])
def test_inplace_on_view_of_leaf_requiring_grad_raises(view):
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    v = view(x)
    with pytest.raises(RuntimeError):
        v += 1.0
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_inplace_on_index_view_of_leaf_requiring_grad_raises():
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(RuntimeError):
        x[0].add_(1.0)
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("fn,expected", [
    (lambda x: _ip(x * 2, "__iadd__", 1.0), [2.0, 2.0]),
    (lambda x: _ip(x * 2, "__isub__", x), [1.0, 1.0]),
    (lambda x: _ip(x * 2, "__imul__", x), [4.0, 8.0]),  # y = 2x^2
    (lambda x: _ip(x * 3, "__itruediv__", 2.0), [1.5, 1.5]),
    (lambda x: _ip(x * 3, "sub_", x, alpha=2), [1.0, 1.0]),
    (lambda x: _ip(x * 1, "__setitem__", 0, x[1] * x[0]), [2.0, 2.0]),  # sum = x0 x1 + x1
    (lambda x: _ip(x + 0, "zero_") * x, [0.0, 0.0]),
    (lambda x: _ip(x * 2, "fill_", 7.0), [0.0, 0.0]),
    (lambda x: (lambda y: _ip(y * 1, "__iadd__", y))(F.sigmoid(x)), None),
], ids=["iadd", "isub_x", "imul_x", "idiv", "sub_alpha", "setitem", "zero_", "fill_", "iadd_sigmoid"])
def test_legal_inplace_on_non_leaf_gives_correct_grad(fn, expected):
    xv = np.array([1.0, 2.0])
    x = f64(xv)
    fn(x).sum().backward()
    if expected is None:  # 2 sigmoid(x): 2 s (1 - s)
        s = 1 / (1 + np.exp(-xv))
        expected = 2 * s * (1 - s)
    np.testing.assert_allclose(x.grad.numpy(), expected)


def _ip(t, name, *args, **kwargs):
    r = getattr(t, name)(*args, **kwargs)
    return t if r is None else r


def test_inplace_setitem_with_tensor_value_requiring_grad():
    x = f64([1.0, 2.0, 3.0])
    buf = gf.zeros(3, dtype=gf.float64)
    buf[1:] = x[:2] * 2  # buf didn't require grad; now it does
    assert buf.requires_grad and not buf.is_leaf
    (buf * buf).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 16.0, 0.0])


def test_inplace_shape_change_rejected():
    y = gf.ones(2) * 1
    with pytest.raises(ValueError):
        y += gf.ones(3, 2)
    x = f64([1.0, 2.0]) * 1
    with pytest.raises(ValueError):
        x += f64(np.ones((3, 2)))


@pytest.mark.parametrize("use", [lambda y: y * 3, lambda y: y / 2.0, lambda y: 3.0 * y],
                         ids=["mul_scalar", "div_scalar", "rmul_scalar"])
def test_inplace_after_use_by_constant_op_is_legal(use):
    x = f64([1.0, 2.0])
    y = x * 2
    z = use(y)
    y += 1.0
    z.sum().backward()
    assert x.grad is not None


def test_inplace_on_view_of_non_leaf_is_correct_or_rejected():
    """y[0:1] += 1 on a non-leaf: either the correct gradient or a RuntimeError, never a wrong value."""
    x = f64([1.0, 2.0])
    y = x * 2
    try:
        z = y[0:1]
        z += 1.0
    except RuntimeError:
        return
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4 * (2 + 1), 8 * 2])


# ---- anomaly detection ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make,name", [(lambda x: x.sqrt(), "Sqrt"), (lambda x: x.log(), "Log"),
                                       (lambda x: x ** 0.5, "PowScalar"), (lambda x: 1.0 / x, "Div")])
def test_detect_anomaly_names_op(make, name):
    x = f64([0.0, 1.0])
    with gf.autograd.detect_anomaly():
        y = make(x).sum()
        with pytest.raises(RuntimeError, match=name):
            y.backward()


def test_detect_anomaly_off_gives_inf_without_error():
    x = f64([0.0, 1.0])
    x.sqrt().sum().backward()
    assert np.isinf(x.grad.numpy()[0])


def test_detect_anomaly_restores_state():
    assert not gf.autograd.grad_mode.state.anomaly
    with gf.autograd.detect_anomaly():
        assert gf.autograd.grad_mode.state.anomaly
    assert not gf.autograd.grad_mode.state.anomaly


def test_backward_exception_leaves_grad_mode_enabled():
    x = f64([1.0])
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()
    assert gf.autograd.is_grad_enabled()
    assert (x * 2).requires_grad


# ---- gf.grad with respect to non-leaf tensors ---------------------------------------------------------
def test_grad_wrt_non_leaf_leaves_upstream_graph_intact():
    x = f64([1.0, 2.0])
    a = x * x
    b = a * 3
    (ga,) = gf.grad(b.sum(), a)
    np.testing.assert_allclose(ga.numpy(), [3.0, 3.0])
    a.sum().backward()  # the x -> a part was not needed by gf.grad above
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_grad_wrt_non_leaf_ignores_upstream_nodes():
    x = f64([1.0, 2.0])
    a = x * x
    with gf.no_grad():
        x.add_(1.0)  # makes Mul(x, x) unusable, but gf.grad(b, a) never needs it
    b = a * 3
    (ga,) = gf.grad(b.sum(), a)
    np.testing.assert_allclose(ga.numpy(), [3.0, 3.0])


def test_gradcheck_rejects_float32_inputs():
    with pytest.raises(TypeError, match="float64"):
        gf.autograd.gradcheck(lambda t: t * 2, (gf.ones(2, requires_grad=True),))


def test_gradcheck_detects_a_wrong_backward():
    from gradflow.autograd.function import Function

    class BadSquare(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_inputs(0)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return (g * a * 3,)  # should be 2a

    with pytest.raises(AssertionError):
        gf.autograd.gradcheck(BadSquare.apply, (f64([1.0, 2.0]),))


# ---- the C core's contract (csrc/autograd.cpp) ----------------------------------------------------
def _op(backward):
    from gradflow.autograd.function import Function

    class Custom(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

    Custom.backward = staticmethod(lambda ctx, g: backward(g))
    return Custom


@pytest.mark.parametrize("grads,err,msg", [
    (lambda g: (g,), RuntimeError, r"Custom.backward returned 1 gradients for 2 inputs"),
    (lambda g: (g, g, g), RuntimeError, r"Custom.backward returned 3 gradients for 2 inputs"),
    (lambda g: (g, 1.0), TypeError, r"Custom.backward returned a float for input 1"),
], ids=["too-few", "too-many", "not-a-tensor"])
def test_backward_returning_wrong_gradients_raises_naming_op(grads, err, msg):
    a, b = f64([1.0]), f64([2.0])
    y = _op(grads).apply(a, b)
    with pytest.raises(err, match=msg):
        y.sum().backward()


def test_apply_rejects_non_tensor_inputs_naming_op():
    with pytest.raises(TypeError, match=r"Custom: input 1 is a numpy.ndarray, not a Tensor"):
        _op(lambda g: (g, g)).apply(f64([1.0]), np.ones(1))


def test_apply_keyword_params_and_custom_op_gradients():
    from gradflow.autograd.function import Function

    class Scale(Function):
        @staticmethod
        def forward(ctx, a, *, k):
            ctx.k = k
            return a * k

        @staticmethod
        def backward(ctx, g):
            return (g * ctx.k,)

    x = f64([1.0, -2.0])
    y = Scale.apply(x, k=3.0)
    assert y.grad_fn.name == "Scale" and y.grad_fn.next_functions == (x,)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_tensor_cycles_are_collected_and_weakrefs_cleared():
    import weakref

    t = f64([1.0])
    y = t * 2
    y.grad = y  # a reference cycle through the C base's fields
    ref = weakref.ref(y)
    del y
    gc.collect()
    assert ref() is None


def test_deep_unreleased_tape_frees_without_backward():
    """A 100,000-deep tape dropped without backward (each node's edge holds the previous node)
    is freed without overflowing the C stack."""
    x = f64([1.0])
    y = x
    for _ in range(N_CHAIN):
        y = y * 1.0
    del y
    gc.collect()


def test_apply_sees_op_class_changes_after_first_use():
    """apply caches what it reads from an op class; changing the class must take effect."""
    from gradflow.autograd.function import Function

    class Twice(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return (g * 2,)

    x = f64([1.0])
    assert Twice.apply(x).requires_grad
    np.testing.assert_array_equal(Twice.apply(x).detach().numpy(), [2.0])
    Twice.forward = staticmethod(lambda ctx, a: a * 3)
    np.testing.assert_array_equal(Twice.apply(x).detach().numpy(), [3.0])
    Function.differentiable = False  # a base class change reaches the subclass too
    try:
        assert not Twice.apply(x).requires_grad
    finally:
        Function.differentiable = True
    assert Twice.apply(x).requires_grad


def test_autograd_switches_round_trip():
    from gradflow.autograd.grad_mode import state

    assert state.grad_enabled is True and state.phase == "forward" and state.profiler is None
    with gf.no_grad():
        assert state.grad_enabled is False
        assert not (f64([1.0]) * 2).requires_grad
    assert state.grad_enabled is True
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del state.grad_enabled


def test_tensor_fields_cannot_be_deleted_or_corrupted():
    """The C core reads a Tensor's fields without checks: Python may not delete them or give
    the version counter another shape (either would crash the interpreter, not raise)."""
    t = f64([1.0])
    for name in ("array", "_be", "requires_grad", "grad", "_node", "_vbox", "_base"):
        with pytest.raises(AttributeError, match="cannot be deleted"):
            delattr(t, name)
    for bad in (3, [], [0, 1], (0,)):
        with pytest.raises(TypeError, match="one-element list"):
            t._vbox = bad
    y = t * 2
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [2.0])
