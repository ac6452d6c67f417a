"""The fused parts of a training step: Linear+ReLU as one op (nn.Sequential), the ReLU
backward that also sums the bias gradient, the multi-tensor optimizer updates, and the reuse of
output buffers from one step to the next. Fused results are compared with the unfused ops
(bitwise on the CPU), with the reference backend, with PyTorch and, where a new op is
differentiable, by a float64 gradient check."""

import numpy as np
import pytest

import gradflow as gf
from gradflow import _C
from gradflow.backend import reference as R
from gradflow.ops.linalg import LinearReLU, linear_relu

nn = gf.nn


def _net(sizes, dtype=gf.float32, device="cpu", bias=True):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias, dtype=dtype, device=device))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _unfused(net, x):
    for layer in net:
        x = layer(x)
    return x


def _grads(net, x, labels, run):
    for p in net.parameters():
        p.grad = None
    x = x.detach().requires_grad_(x.requires_grad)
    loss = nn.functional.cross_entropy(run(net, x), labels)
    loss.backward()
    return [loss.array] + [p.grad.array for p in net.parameters()] + (
        [x.grad.array] if x.requires_grad else [])


def _nodes(t):
    seen, todo = set(), [t.grad_fn]
    while todo:
        n = todo.pop()
        if n is None or isinstance(n, gf.Tensor) or n in seen:
            continue
        seen.add(n)
        todo += list(n.next_functions)
    return {n.name for n in seen}


@pytest.mark.parametrize("dtype", [gf.float32, gf.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("input_grad", [False, True])
def test_sequential_fuses_linear_relu_bitwise(dtype, bias, batch, input_grad):
    gf.manual_seed(0)
    net = _net((20, 33, 3, 5), dtype, bias=bias)  # a 3-wide layer: the sum's few-columns mode
    rng = np.random.default_rng(batch)
    x = gf.tensor(rng.standard_normal((batch, 20)), dtype=dtype, requires_grad=input_grad)
    labels = gf.tensor(rng.integers(0, 5, batch))
    assert "LinearReLU" in _nodes(net(x)) and "LinearReLU" not in _nodes(_unfused(net, x))
    fused = _grads(net, x, labels, lambda n, v: n(v))
    plain = _grads(net, x, labels, _unfused)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fused_sequential_matches_torch():
    torch = pytest.importorskip("torch")
    gf.manual_seed(0)
    net = _net((12, 16, 16, 4), gf.float64)
    tnet = torch.nn.Sequential(*[torch.nn.Linear(l.in_features, l.out_features).double()
                                 if isinstance(l, nn.Linear) else torch.nn.ReLU() for l in net])
    with torch.no_grad():
        for tp, p in zip(tnet.parameters(), net.parameters()):
            tp.copy_(torch.from_numpy(p.array))
    x = np.random.default_rng(0).standard_normal((9, 12))
    y = np.random.default_rng(1).integers(0, 4, 9)
    out = _grads(net, gf.tensor(x), gf.tensor(y), lambda n, v: n(v))
    loss = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    np.testing.assert_allclose(out[0], loss.item(), rtol=1e-12)
    for a, tp in zip(out[1:], tnet.parameters(), strict=True):
        np.testing.assert_allclose(a, tp.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_linear_relu_gradcheck():
    rng = np.random.default_rng(3)
    # offsets keep the pre-activations away from the ReLU's kink, where differences are one-sided
    x = gf.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    w = gf.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = gf.tensor(rng.standard_normal(3), requires_grad=True)
    assert gf.autograd.gradcheck(lambda x, w, b: linear_relu(x, w, b), (x, w, b))
    assert gf.autograd.gradcheck(lambda x, w: linear_relu(x, w), (x, w))
    x3 = gf.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert gf.autograd.gradcheck(lambda x, w, b: linear_relu(x, w, b), (x3, w, b))


def test_linear_relu_double_backward_matches_unfused():
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((6, 4))
    ws, bs = rng.standard_normal((5, 4)), rng.standard_normal(5)

    def second(f):
        x = gf.tensor(xs, requires_grad=True)
        w, b = gf.tensor(ws, requires_grad=True), gf.tensor(bs, requires_grad=True)
        y = f(x, w, b)
        (gx, gw, gb) = gf.autograd.grad((y * y).sum(), (x, w, b), create_graph=True)
        (gx.sum() + (gw * gw).sum() + (gb * gb).sum()).backward()
        return [t.array for t in (gx, gw, gb, x.grad, w.grad, b.grad)]

    fused = second(linear_relu)
    plain = second(lambda x, w, b: nn.functional.relu(nn.functional.linear(x, w, b)))
    for a, c in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-13)


def test_hooks_and_subclasses_take_the_unfused_path():
    gf.manual_seed(0)
    net = _net((4, 6, 2))
    x = gf.tensor(np.ones((3, 4), np.float32))
    seen = []
    h = net[0].register_forward_hook(lambda m, a, out: seen.append(out))
    assert "LinearReLU" not in _nodes(net(x)) and len(seen) == 1
    h.remove()
    h = net[1].register_forward_pre_hook(lambda m, a: seen.append(a))
    assert "LinearReLU" not in _nodes(net(x)) and len(seen) == 2
    h.remove()

    class Scaled(nn.ReLU):
        def forward(self, x):
            return super().forward(x) * 2

    net[1] = Scaled()
    assert "LinearReLU" not in _nodes(net(x))


def test_frozen_layer_and_leaf_hooks():
    """requires_grad=False parameters get no gradient; tensor hooks on the parameters and
    retain_grad on the output still see what the unfused ops give them."""
    gf.manual_seed(0)
    net = _net((5, 7, 3), gf.float64)
    net[0].bias.requires_grad_(False)
    x = gf.tensor(np.random.default_rng(0).standard_normal((4, 5)))
    hooked = []
    net[0].weight.register_hook(lambda g: hooked.append(g.array.copy()))
    y = net(x)
    y.retain_grad()
    y.sum().backward()
    assert net[0].bias.grad is None and len(hooked) == 1
    w_grad = net[0].weight.grad.array.copy()
    net[0].weight.grad = None
    y2 = _unfused(net, x)
    y2.sum().backward()
    np.testing.assert_array_equal(w_grad, net[0].weight.grad.array)
    np.testing.assert_array_equal(hooked[0], hooked[1])
    np.testing.assert_array_equal(y.grad.array, np.ones((4, 3)))


# ---- the kernels: CPU against the reference ------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(256, 512), (64, 512), (3, 7), (1000, 5), (1, 9), (0, 4),
                                   (17, 2000), (2, 3, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_sum_is_the_two_kernels(threads, shape, dtype):
    old = gf.get_num_threads()
    gf.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        y = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        gx, gb = _C.relu_backward_sum(y, g)
        lead = tuple(range(len(shape) - 1))
        np.testing.assert_array_equal(gx, _C.relu_backward(y, g))
        np.testing.assert_array_equal(gb, _C.sum(_C.relu_backward(y, g), lead))
        rx, rb = R.relu_backward_sum(y, g)
        np.testing.assert_array_equal(gx, rx)
        np.testing.assert_allclose(gb, rb, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    finally:
        gf.set_num_threads(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_relu_kernel(dtype, bias):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((33, 20)).astype(dtype), rng.standard_normal((40, 20)).astype(dtype)
    b = rng.standard_normal(40).astype(dtype) if bias else None
    out = _C.linear_relu(x, w, b)
    np.testing.assert_array_equal(out, _C.relu(_C.matmul(x, w, False, True, b)))
    np.testing.assert_allclose(out, R.linear_relu(x, w, b), rtol=1e-5, atol=1e-5)
    xt = np.ascontiguousarray(x.T).T  # a column-major input goes as BLAS's transpose flag
    np.testing.assert_array_equal(_C.linear_relu(xt, w, b), _C.relu(_C.matmul(xt, w, False, True, b)))


def test_relu_backward_sum_errors():
    with pytest.raises(ValueError, match="one shape"):
        _C.relu_backward_sum(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        _C.relu_backward_sum(np.ones(3), np.ones(3))
    with pytest.raises(TypeError):
        _C.relu_backward_sum(np.ones((2, 3), np.float32), np.ones((2, 3)))


def test_linear_relu_on_device(device):
    gf.manual_seed(0)
    net = _net((6, 8, 3), gf.float64, device=device)
    cpu = _net((6, 8, 3), gf.float64)
    cpu.load_state_dict(net.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 6))
    y = np.random.default_rng(1).integers(0, 3, 5)
    a = _grads(net, gf.tensor(x, device=device), gf.tensor(y, device=device), lambda n, v: n(v))
    b = _grads(cpu, gf.tensor(x), gf.tensor(y), _unfused)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(gf.backend.get(net[0].weight.device).to_numpy(u), v,
                                   rtol=1e-12, atol=1e-12)


# ---- multi-tensor optimizer updates ---------------------------------------------------------------
def _params(rng, dtypes=(np.float32, np.float32, np.float64)):
    shapes = [(40, 30), (30,), (5, 7, 3), (1,)]
    return [rng.standard_normal(s).astype(dtypes[i % len(dtypes)]) for i, s in enumerate(shapes)]


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [
    (0.0, 0.0, False, 0.0), (0.0, 0.0, False, 0.1), (0.9, 0.0, False, 0.0), (0.9, 0.3, False, 0.01),
    (0.9, 0.0, True, 0.0), (0.5, 0.0, True, 0.2)])
@pytest.mark.parametrize("be", [_C, R], ids=["cpu", "reference"])
def test_sgd_multi_is_per_parameter_bitwise(be, momentum, dampening, nesterov, wd):
    rng = np.random.default_rng(0)
    ps = _params(rng)
    qs = [p.copy() for p in ps]
    bufs = [np.empty_like(p) for p in ps] if momentum else [None] * len(ps)
    qbufs = [np.empty_like(p) for p in ps] if momentum else [None] * len(ps)
    for t in range(4):
        gs = [rng.standard_normal(p.shape).astype(p.dtype) for p in ps]
        firsts = [t == 0 or (t == 2 and i == 1) for i in range(len(ps))]
        be.sgd_step_multi(ps, gs, bufs, firsts, 0.05, momentum, dampening, nesterov, wd)
        for q, g, b, first in zip(qs, gs, qbufs, firsts):
            be.sgd_step(q, g, b, 0.05, momentum, dampening, nesterov, wd, first)
        for p, q in zip(ps, qs):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("decoupled,wd", [(False, 0.0), (False, 0.1), (True, 0.01)])
@pytest.mark.parametrize("be", [_C, R], ids=["cpu", "reference"])
def test_adam_multi_is_per_parameter_bitwise(be, decoupled, wd):
    rng = np.random.default_rng(0)
    ps = _params(rng)
    qs = [p.copy() for p in ps]
    state = [[np.zeros_like(p) for p in ps] for _ in range(4)]  # m, v (multi), m, v (single)
    for t in range(1, 5):
        gs = [rng.standard_normal(p.shape).astype(p.dtype) for p in ps]
        steps = [t, t + 3, t, 1000 * t]  # each parameter its own count
        be.adam_step_multi(ps, gs, state[0], state[1], steps, 1e-2, 0.9, 0.999, 1e-8, wd, decoupled)
        for i, q in enumerate(qs):
            be.adam_step(q, gs[i], state[2][i], state[3][i], steps[i], 1e-2, 0.9, 0.999, 1e-8, wd,
                         decoupled)
        for p, q in zip(ps, qs):
            np.testing.assert_array_equal(p, q)


def test_multi_update_errors():
    p, g = np.zeros((2, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="grads has 1 entries for 2 parameters"):
        _C.sgd_step_multi([p, p.copy()], [g], [None, None], [True, True], 0.1)
    with pytest.raises(ValueError, match="needs a momentum_buffer"):
        _C.sgd_step_multi([p], [g], [None], [True], 0.1, 0.9)
    with pytest.raises(ValueError, match="grad must have param's shape"):
        _C.sgd_step_multi([p], [np.zeros(6)], [None], [True], 0.1)
    with pytest.raises(ValueError, match="step must be >= 1"):
        _C.adam_step_multi([p], [g], [p.copy()], [p.copy()], [0], 0.1)
    with pytest.raises(ValueError, match="writeable"):
        ro = np.zeros((2, 3))
        ro.flags.writeable = False
        _C.sgd_step_multi([ro], [g], [None], [True], 0.1)


def test_updated_arrays_must_be_arrays():
    """What an update writes in place is the caller's array, never a converted copy that would
    take the update and be dropped (the gradient may be anything numpy converts)."""
    p, lst = np.zeros(3), [0.0, 0.0, 0.0]
    _C.sgd_step(p, lst, None, 0.5)  # a list gradient converts
    with pytest.raises(TypeError, match="param must be a numpy array"):
        _C.sgd_step(lst, p, None, 0.5)
    with pytest.raises(TypeError, match="momentum_buffer must be a numpy array"):
        _C.sgd_step_multi([p], [p], [lst], [True], 0.1, 0.9)
    with pytest.raises(TypeError, match="exp_avg_sq must be a numpy array"):
        _C.adam_step(p, p, np.zeros(3), lst, 1, 0.1)
    assert lst == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("make", [
    lambda ps: gf.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: gf.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    lambda ps: gf.optim.AdamW(ps, lr=0.01),
    lambda ps: gf.optim.Adam(ps, lr=0.01, amsgrad=True)], ids=["sgd", "adam", "adamw", "amsgrad"])
def test_optimizer_step_is_per_parameter_kernels(make):
    """Optimizer.step's one call per group gives, bitwise, what one kernel per parameter gives;
    a parameter without a gradient is skipped and a transposed one updated through a copy."""
    rng = np.random.default_rng(0)
    arrays = _params(rng, (np.float32,))
    ps = [gf.tensor(a, requires_grad=True) for a in arrays]
    ps.append(gf.tensor(rng.standard_normal((4, 6)).astype(np.float32)).t().detach().requires_grad_())
    opt = make(ps)
    singles = [make([gf.tensor(p.array.copy(), requires_grad=True)]) for p in ps]
    for t in range(3):
        for i, (p, s) in enumerate(zip(ps, singles)):
            q = s.param_groups[0]["params"][0]
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = None if (t == 1 and i == 0) else gf.tensor(g)
            q.grad = None if (t == 1 and i == 0) else gf.tensor(g)
            s.step()
        opt.step()
        for p, s in zip(ps, singles):
            np.testing.assert_array_equal(p.array, s.param_groups[0]["params"][0].array)


# ---- no allocation on the step's path after the first steps ----------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_step_reuses_its_buffers(optimizer):
    """After the first steps, every large buffer a step's kernels write (activations, gradients,
    the optimizer's temporaries) is one a previous step freed: the count of fresh allocations
    stays put."""
    gf.manual_seed(0)
    net = _net((784, 512, 512, 10))
    opt = (gf.optim.SGD(net.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
           else gf.optim.Adam(net.parameters(), lr=1e-3))
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((256, 784)).astype(np.float32))
    labels = gf.tensor(rng.integers(0, 10, 256))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), labels).backward()
        opt.step()

    for _ in range(3):
        step()
    before = _C.fresh_buffers()
    for _ in range(3):
        step()
    assert _C.fresh_buffers() == before


# ---- .grad takes a kernel's large output without a copy, and stays private ------------------------
BIG = (256, 512)  # float32: 512 KiB, an output in a recycled buffer


def test_large_weight_gradient_is_taken_not_copied():
    gf.manual_seed(0)
    lin = nn.Linear(BIG[1], BIG[0])
    x = gf.tensor(np.ones((8, BIG[1]), np.float32))
    lin(x).sum().backward()
    g = lin.weight.grad.array
    assert _C.owns_buffer(g) and not g.flags.owndata  # the GEMM's output itself
    assert not _C.owns_buffer(g[1:]) and not _C.owns_buffer(np.ones(3))


def test_large_gradients_stay_private():
    """A gradient sent to two leaves, one a backward also keeps, one the caller passed in, or a
    view of a buffer: each leaf's .grad is memory of its own."""
    rng = np.random.default_rng(0)
    a = gf.tensor(rng.standard_normal(BIG).astype(np.float32), requires_grad=True)
    b = gf.tensor(rng.standard_normal(BIG).astype(np.float32), requires_grad=True)
    (a * 2 + b).sum().backward()
    assert not np.shares_memory(a.grad.array, b.grad.array)

    kept = []

    class Keep(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            out = g * 3
            kept.append(out)
            return out

    c = gf.tensor(rng.standard_normal(BIG).astype(np.float32), requires_grad=True)
    Keep.apply(c).sum().backward()
    assert not np.shares_memory(c.grad.array, kept[0].array)

    d = gf.tensor(rng.standard_normal(BIG).astype(np.float32), requires_grad=True)
    seed = d * 2  # a kernel output: a recycled buffer
    (d * 1).backward(seed)
    assert not np.shares_memory(d.grad.array, seed.array)

    e = gf.tensor(rng.standard_normal((2,) + BIG).astype(np.float32), requires_grad=True)
    big = e * 1
    big[0].sum().backward()
    assert e.grad is not None and not np.shares_memory(e.grad.array, big.array)
