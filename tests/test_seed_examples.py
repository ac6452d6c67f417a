"""The worked examples from the issue, each derivative checked against the hand formula."""
import numpy as np

import gradflow as gf
import gradflow.nn.functional as F


def sig(z):
    return 1 / (1 + np.exp(-z))


def test_single_neuron_squared_loss():
    """y = sigma(w x + b), L = 1/2 (y - t)^2."""
    xv, tv, wv, bv = 1.5, 0.2, -0.7, 0.3
    w = gf.tensor(wv, dtype=gf.float64, requires_grad=True)
    b = gf.tensor(bv, dtype=gf.float64, requires_grad=True)
    x = gf.tensor(xv, dtype=gf.float64, requires_grad=True)
    z = w * x + b
    y = F.sigmoid(z)
    loss = 0.5 * (y - tv) ** 2
    gy, gz = gf.grad(loss, [y, z], retain_graph=True)
    loss.backward()
    zv = wv * xv + bv
    yv = sig(zv)
    y_bar = yv - tv
    z_bar = y_bar * yv * (1 - yv)
    np.testing.assert_allclose(loss.item(), 0.5 * (yv - tv) ** 2, rtol=1e-14)
    np.testing.assert_allclose(gy.item(), y_bar, rtol=1e-14)
    np.testing.assert_allclose(gz.item(), z_bar, rtol=1e-14)
    np.testing.assert_allclose(w.grad.item(), z_bar * xv, rtol=1e-14)
    np.testing.assert_allclose(b.grad.item(), z_bar, rtol=1e-14)
    np.testing.assert_allclose(x.grad.item(), z_bar * wv, rtol=1e-14)


def test_multivariable_chain_rule():
    """f(x, y) = y + exp(x y), x = cos t, y = t^2."""
    for tv in (0.3, 1.1, -2.0):
        t = gf.tensor(tv, dtype=gf.float64, requires_grad=True)
        x = _cos(t)
        y = t ** 2
        f = y + gf.exp(x * y)
        gx, gy = gf.grad(f, [x, y], retain_graph=True)
        f.backward()
        xv, yv = np.cos(tv), tv ** 2
        df_dx = yv * np.exp(xv * yv)
        df_dy = 1 + xv * np.exp(xv * yv)
        np.testing.assert_allclose(gx.item(), df_dx, rtol=1e-13)
        np.testing.assert_allclose(gy.item(), df_dy, rtol=1e-13)
        np.testing.assert_allclose(t.grad.item(), df_dx * -np.sin(tv) + df_dy * 2 * tv, rtol=1e-12)


def _cos(t):
    """cos t as a user-defined Function (gradflow has no cos op); its backward uses sin, whose
    backward uses cos, so it is differentiable to any order."""
    from gradflow.autograd.function import Function

    class Cos(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_inputs(0)
            return np.cos(a)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return (-g * _sin(a),)

    return Cos.apply(t)


def _sin(t):
    from gradflow.autograd.function import Function

    class Sin(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_inputs(0)
            return np.sin(a)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return (g * _cos(a),)

    return Sin.apply(t)


def test_custom_function_cos_gradgradcheck():
    t = gf.tensor([0.3, -1.2], dtype=gf.float64, requires_grad=True)
    assert gf.autograd.gradcheck(_cos, (t,))
    assert gf.autograd.gradgradcheck(_cos, (t,))


def test_two_layer_mlp_vectorised():
    """z = W1 x + b1, h = sigma(z), y = W2 h + b2, L = 1/2 |y - t|^2."""
    rng = np.random.default_rng(0)
    n_in, n_hid, n_out = 4, 5, 3
    W1v, b1v = rng.standard_normal((n_hid, n_in)), rng.standard_normal(n_hid)
    W2v, b2v = rng.standard_normal((n_out, n_hid)), rng.standard_normal(n_out)
    xv, tv = rng.standard_normal(n_in), rng.standard_normal(n_out)
    W1, b1, W2, b2 = (gf.tensor(v, requires_grad=True) for v in (W1v, b1v, W2v, b2v))
    x = gf.tensor(xv)
    z = W1 @ x + b1
    h = F.sigmoid(z)
    y = W2 @ h + b2
    loss = 0.5 * ((y - gf.tensor(tv)) ** 2).sum()
    g_y, g_h, g_z = gf.grad(loss, [y, h, z], retain_graph=True)
    loss.backward()
    zv = W1v @ xv + b1v
    hv = sig(zv)
    yv = W2v @ hv + b2v
    y_bar = yv - tv
    h_bar = W2v.T @ y_bar
    z_bar = h_bar * hv * (1 - hv)
    np.testing.assert_allclose(g_y.numpy(), y_bar, rtol=1e-12)
    np.testing.assert_allclose(W2.grad.numpy(), np.outer(y_bar, hv), rtol=1e-12)
    np.testing.assert_allclose(b2.grad.numpy(), y_bar, rtol=1e-12)
    np.testing.assert_allclose(g_h.numpy(), h_bar, rtol=1e-12)
    np.testing.assert_allclose(g_z.numpy(), z_bar, rtol=1e-12)
    np.testing.assert_allclose(W1.grad.numpy(), np.outer(z_bar, xv), rtol=1e-12)
    np.testing.assert_allclose(b1.grad.numpy(), z_bar, rtol=1e-12)


def test_two_layer_mlp_batched_with_linear():
    """The same network on a batch, through F.linear: the gradients are sums over the batch."""
    rng = np.random.default_rng(1)
    N, n_in, n_hid, n_out = 6, 4, 5, 3
    W1v, b1v = rng.standard_normal((n_hid, n_in)), rng.standard_normal(n_hid)
    W2v, b2v = rng.standard_normal((n_out, n_hid)), rng.standard_normal(n_out)
    X, Tg = rng.standard_normal((N, n_in)), rng.standard_normal((N, n_out))
    W1, b1, W2, b2 = (gf.tensor(v, requires_grad=True) for v in (W1v, b1v, W2v, b2v))
    Y = F.linear(F.sigmoid(F.linear(gf.tensor(X), W1, b1)), W2, b2)
    F.mse_loss(Y, gf.tensor(Tg), reduction="sum").backward()
    H = sig(X @ W1v.T + b1v)
    Yb = 2 * (H @ W2v.T + b2v - Tg)
    Zb = (Yb @ W2v) * H * (1 - H)
    np.testing.assert_allclose(W2.grad.numpy(), Yb.T @ H, rtol=1e-11)
    np.testing.assert_allclose(b2.grad.numpy(), Yb.sum(0), rtol=1e-11)
    np.testing.assert_allclose(W1.grad.numpy(), Zb.T @ X, rtol=1e-11)
    np.testing.assert_allclose(b1.grad.numpy(), Zb.sum(0), rtol=1e-11)


def test_softmax_cross_entropy_grad_is_softmax_minus_onehot():
    rng = np.random.default_rng(2)
    logits_v = rng.standard_normal((4, 5)) * 3
    labels = np.array([0, 4, 2, 2])
    onehot = np.eye(5)[labels]
    p = np.exp(logits_v - logits_v.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for target in (gf.tensor(labels), gf.tensor(onehot)):  # integer labels and probabilities
        z = gf.tensor(logits_v, requires_grad=True)
        loss = F.cross_entropy(z, target, reduction="sum")
        np.testing.assert_allclose(loss.item(), -np.log(p[np.arange(4), labels]).sum(), rtol=1e-12)
        loss.backward()
        np.testing.assert_allclose(z.grad.numpy(), p - onehot, rtol=1e-10, atol=1e-14)
        z.zero_grad()
        F.cross_entropy(z, target).backward()  # mean: divided by the batch size
        np.testing.assert_allclose(z.grad.numpy(), (p - onehot) / 4, rtol=1e-10, atol=1e-14)
    # the unbatched form
    z = gf.tensor(logits_v[0], requires_grad=True)
    F.cross_entropy(z, gf.tensor(labels[0])).backward()
    np.testing.assert_allclose(z.grad.numpy(), p[0] - onehot[0], rtol=1e-10, atol=1e-14)
