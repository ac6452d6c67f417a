"""Numerical gradient checks by central differences in float64."""

import numpy as np

from .grad_mode import no_grad


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _check_inputs(inputs):
    for i, t in enumerate(inputs):
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; use float64 inputs for a reliable check")


def _numeric_jacobian_vjp(fn, inputs, outputs_weights, eps):
    """d/dinput of sum(w * fn(inputs)) for each input that requires grad, numerically."""
    grads = []
    for t in inputs:
        if not t.requires_grad:
            grads.append(None)
            continue
        host = t._host()  # perturbed in place; on the GPU through a host copy
        g = np.zeros(t.shape, np.float64)
        flat = host.reshape(-1)
        for k in range(flat.size):
            orig = flat[k]
            vals = []
            for step in (eps, -eps):
                flat[k] = orig + step
                _sync_back(t, host)
                with no_grad():
                    outs = _as_tuple(fn(*inputs))
                vals.append(sum(float((o._host().astype(np.float64) * w).sum())
                                for o, w in zip(outs, outputs_weights)))
            flat[k] = orig
            _sync_back(t, host)
            g.reshape(-1)[k] = (vals[0] - vals[1]) / (2 * eps)
        grads.append(g)
    return grads


def _sync_back(t, host):
    if t._device != "cpu":
        t.array[...] = t._be.xp.asarray(host)


def _compare(analytic, numeric, atol, rtol, what):
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        if n is None:
            continue
        a = np.zeros_like(n) if a is None else a._host().astype(np.float64)
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        if a.shape != n.shape or (err > 0).any():
            k = np.unravel_index(int(np.argmax(err)), n.shape) if n.size else ()
            raise AssertionError(
                f"{what}: mismatch for input {i} at index {k}: analytic {a[k] if a.size else a}, "
                f"numerical {n[k] if n.size else n} (atol={atol}, rtol={rtol})")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Checks the gradients of ``fn`` at ``inputs`` (float64 tensors; those with requires_grad
    are checked) against central differences. Returns True or raises AssertionError naming the
    worst element."""
    from ..tensor import tensor
    from .engine import grad

    inputs = _as_tuple(inputs)
    _check_inputs(inputs)
    outs = _as_tuple(fn(*inputs))
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(o.shape) for o in outs]
    numeric = _numeric_jacobian_vjp(fn, inputs, weights, eps)
    wanted = [t for t in inputs if t.requires_grad]
    diff_outs = [(o, w) for o, w in zip(outs, weights) if o.requires_grad]
    analytic = grad([o for o, _ in diff_outs],
                    wanted,
                    [tensor(w, dtype=o.dtype, device=o.device) for o, w in diff_outs],
                    allow_unused=True) if diff_outs else [None] * len(wanted)
    it = iter(analytic)
    full = [next(it) if t.requires_grad else None for t in inputs]
    _compare(full, numeric, atol, rtol, "gradcheck")
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Checks second derivatives: the gradient of <grad(fn), v> (built with create_graph=True)
    with respect to the inputs, against central differences of that gradient."""
    from ..tensor import tensor
    from .engine import grad

    inputs = _as_tuple(inputs)
    _check_inputs(inputs)
    rng = np.random.default_rng(seed)
    outs = _as_tuple(fn(*inputs))
    weights = [tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device) for o in outs]
    wanted = [t for t in inputs if t.requires_grad]

    def first_grads(*xs):
        from .grad_mode import enable_grad

        with enable_grad():
            os_ = _as_tuple(fn(*xs))
            gs = grad(list(os_), [x for x in xs if x.requires_grad], weights,
                      create_graph=True, allow_unused=True)
        return tuple(g if g is not None else _zeros_like(x)
                     for g, x in zip(gs, [x for x in xs if x.requires_grad]))

    return gradcheck(first_grads, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed + 1) and bool(wanted)


def _zeros_like(x):
    from ..tensor import zeros_like

    return zeros_like(x)
