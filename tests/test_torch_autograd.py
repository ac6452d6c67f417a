"""Autograd as PyTorch users write it: tensor hooks, retain_grad, PyTorch-style custom Functions
(save_for_backward, needs_input_grad, mark_non_differentiable, once_differentiable, several
outputs, double backward) and torch.autograd.functional's jacobian/hessian/vjp/jvp/hvp,
against torch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradflow as gf  # noqa: E402
from gradflow.autograd import gradcheck, gradgradcheck  # noqa: E402

A = np.random.default_rng(0).standard_normal((2, 3))


def _pair(a=A):
    return gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def test_hooks_on_leaves_and_non_leaves_match_torch():
    results = []
    for lib in (gf, torch):
        x = lib.tensor(A, requires_grad=True)
        seen = []
        y = x * 2
        y.register_hook(lambda g: g * 3)  # replaces the gradient flowing on from y
        x.register_hook(lambda g: seen.append(g.detach().numpy().copy()))  # observes only
        (y * y).sum().backward()
        results.append((x.grad.numpy().copy(), seen[0]))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])


def test_hook_removal_and_retain_grad():
    x = gf.tensor(A, requires_grad=True)
    y = x.exp()
    assert not y.retains_grad
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    calls = []
    handle = y.register_hook(lambda g: calls.append(1))
    (y * 2).sum().backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.numpy(), 2 * np.ones((2, 3)))
    handle.remove()
    (y * 2).sum().backward()
    assert calls == [1]
    np.testing.assert_allclose(y.grad.numpy(), 4 * np.ones((2, 3)))  # accumulates, as .grad does
    with pytest.raises(RuntimeError, match="does not require grad"):
        gf.ones(2).register_hook(lambda g: g)


def test_hooks_apply_in_gf_grad():
    x = gf.tensor(A, requires_grad=True)
    x.register_hook(lambda g: g * 0 + 1)
    (g,) = gf.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), np.ones((2, 3)))


class Exp(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class ScaleShift(gf.autograd.Function):
    """forward(x, w, k) = (x * w * k, argmax); two outputs, a non-tensor argument."""

    @staticmethod
    def forward(ctx, x, w, k):
        ctx.save_for_backward(x, w)
        ctx.k = k
        out = x * w * k
        idx = out.argmax()
        ctx.mark_non_differentiable(idx)
        return out, idx

    @staticmethod
    def backward(ctx, grad, grad_idx):
        x, w = ctx.saved_tensors
        gx = grad * w * ctx.k if ctx.needs_input_grad[0] else None
        gw = grad * x * ctx.k if ctx.needs_input_grad[1] else None
        return gx, gw, None


class Cube(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    @gf.autograd.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2


def test_custom_function_values_and_gradcheck():
    x = gf.tensor(A, requires_grad=True)
    y = Exp.apply(x)
    assert y.grad_fn is not None
    np.testing.assert_allclose(y.detach().numpy(), np.exp(A))
    assert gradcheck(Exp.apply, [x])
    assert gradgradcheck(Exp.apply, [x])  # backward is made of recorded ops
    w = gf.tensor(np.random.default_rng(1).standard_normal(3), requires_grad=True)
    assert gradcheck(lambda a, b: ScaleShift.apply(a, b, 1.5)[0], [x, w])
    out, idx = ScaleShift.apply(x, w, 2.0)
    assert not idx.requires_grad and out.requires_grad
    assert gradcheck(Cube.apply, [x])


def test_custom_function_needs_input_grad_and_no_grad_mode():
    seen = []

    class Probe(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            seen.append(ctx.needs_input_grad)
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g, g

    a, b = gf.tensor(A, requires_grad=True), gf.tensor(A)
    Probe.apply(a, b)
    with gf.no_grad():
        out = Probe.apply(a, b)
    assert seen == [(True, False), (False, False)] and out.grad_fn is None


def test_custom_function_matches_torch_custom_function():
    class TExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    gx, tx = _pair()
    (Exp.apply(gx) * gx).sum().backward()
    (TExp.apply(tx) * tx).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_custom_function_errors_are_clear():
    class ArrayStyle(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.numpy()

    with pytest.raises(TypeError, match="PyTorch-style"):
        ArrayStyle.apply(gf.ones(2))

    class WrongCount(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="expected 2"):
        WrongCount.apply(gf.ones(2, requires_grad=True), gf.ones(2)).sum().backward()

    x = gf.ones(2, requires_grad=True)
    y = Exp.apply(x)
    with gf.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


def _mul_inplace_functions():
    """The same in-place custom Function (x *= k; x += w) in gradflow and torch."""
    fns = {}
    for lib in (gf, torch):
        class MulAddInplace(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, w, k):
                x.mul_(k)
                x.add_(w)
                ctx.mark_dirty(x)
                ctx.k = k
                return x

            @staticmethod
            def backward(ctx, grad):
                return grad * ctx.k, grad, None

        fns[lib] = MulAddInplace
    return fns


def test_mark_dirty_inplace_function_matches_torch():
    fns = _mul_inplace_functions()
    res = {}
    for lib in (gf, torch):
        a = lib.tensor(A, requires_grad=True)
        w = lib.tensor(A[::-1].copy(), requires_grad=True)
        x = a * 2  # a non-leaf: in place is allowed
        x_vbox = x._vbox if lib is gf else None
        v = x._vbox[0] if lib is gf else x._version
        y = fns[lib].apply(x, w, 3.0)
        assert y is x  # the caller's tensor comes back
        assert (x._vbox[0] if lib is gf else x._version) > v and (lib is torch or x._vbox is x_vbox)
        assert y.grad_fn is not None and y.requires_grad
        (y * y).sum().backward()
        res[lib] = (y.detach().numpy(), a.grad.numpy(), w.grad.numpy())
    for g, t in zip(res[gf], res[torch]):
        np.testing.assert_allclose(g, t, rtol=1e-12)


def test_mark_dirty_errors_as_torch():
    fns = _mul_inplace_functions()
    for lib in (gf, torch):
        leaf = lib.tensor(A, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            fns[lib].apply(leaf, lib.tensor(A), 2.0)
        with lib.no_grad():  # allowed outside recording; an alias outside the graph comes back
            plain = lib.tensor(A, requires_grad=True)
            alias = fns[lib].apply(plain, lib.tensor(A), 2.0)
            assert alias is not plain and not alias.requires_grad
            np.testing.assert_allclose(plain.detach().numpy(), A * 3)
            other = lib.tensor(A)
            assert fns[lib].apply(other, lib.tensor(A), 2.0) is other
        e = lib.tensor(A, requires_grad=True).exp()  # exp saves its output for backward
        fns[lib].apply(e, lib.tensor(A), 2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation|modified by an in-place"):
            e.sum().backward()

    class Forgets(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="not returned"):
        Forgets.apply(gf.tensor(A, requires_grad=True) * 1)
    no_grad_input = gf.tensor(A)
    out = fns[gf].apply(no_grad_input, gf.tensor(A), 2.0)
    assert out is no_grad_input and not out.requires_grad
    np.testing.assert_allclose(out.numpy(), A * 3)


def _f(x):
    return (x.sin() * x).sum(1)


def _scalar(x):
    return (x.exp() * x).sum()


def test_functional_matches_torch():
    from torch.autograd import functional as TFn

    from gradflow.autograd import functional as GFn

    g, t = gf.tensor(A), torch.tensor(A)
    np.testing.assert_allclose(GFn.jacobian(_f, g).numpy(), TFn.jacobian(_f, t).numpy(), rtol=1e-12)
    np.testing.assert_allclose(GFn.hessian(_scalar, g).numpy(), TFn.hessian(_scalar, t).numpy(), rtol=1e-12)
    v_out = np.array([1.0, -2.0])
    v_in = np.random.default_rng(2).standard_normal((2, 3))
    for name, v in (("vjp", v_out), ("jvp", v_in)):
        go, gr = getattr(GFn, name)(_f, g, gf.tensor(v))
        to, tr = getattr(TFn, name)(_f, t, torch.tensor(v))
        np.testing.assert_allclose(go.numpy(), to.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gr.numpy(), tr.numpy(), rtol=1e-12)
    for name in ("hvp", "vhp"):
        go, gr = getattr(GFn, name)(_scalar, g, gf.tensor(v_in))
        to, tr = getattr(TFn, name)(_scalar, t, torch.tensor(v_in))
        np.testing.assert_allclose(gr.numpy(), tr.numpy(), rtol=1e-12)
    two = lambda a, b: a * b.sum()  # noqa: E731
    gj = GFn.jacobian(two, (g, g * 2))
    tj = TFn.jacobian(two, (t, t * 2))
    for a, b in zip(gj, tj):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
