"""``gf.autograd.functional``: Jacobians, Hessians and vector products of functions of tensors
(as torch.autograd.functional), computed with reverse mode (``gf.grad``; jvp by the double-vjp
trick)."""

from .. import dtypes as _dtypes
from .. import tensor as _tensor
from .engine import grad as _grad
from .grad_mode import enable_grad


def _prepare(inputs):
    single = isinstance(inputs, _tensor.Tensor)
    xs = (inputs,) if single else tuple(inputs)
    return single, tuple(x.detach().requires_grad_(True) if _dtypes.is_float(x.dtype) else x for x in xs)


def _as_tuple(out):
    return ((out,), True) if isinstance(out, _tensor.Tensor) else (tuple(out), False)


def _grads(outputs, inputs, grad_outputs, create_graph):
    g = _grad(outputs, inputs, grad_outputs, retain_graph=True, create_graph=create_graph,
              allow_unused=True)
    return tuple(_tensor.zeros_like(x) if gi is None else gi for gi, x in zip(g, inputs))


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product (v may be None for a scalar output)."""
    single, xs = _prepare(inputs)
    with enable_grad():
        out = func(*xs)
        outs, single_out = _as_tuple(out)
        vs = None if v is None else ((v,) if isinstance(v, _tensor.Tensor) else tuple(v))
        g = _grads(list(outs), list(xs), vs, create_graph)
    res = g[0] if single else g
    return (out if create_graph else _detach(out)), (res if create_graph else _detach(res))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product, as the vjp of a vjp."""
    single, xs = _prepare(inputs)
    vs = (v,) if isinstance(v, _tensor.Tensor) else tuple(v) if v is not None else None
    with enable_grad():
        out = func(*xs)
        outs, single_out = _as_tuple(out)
        us = [_tensor.zeros_like(o).requires_grad_(True) for o in outs]
        g = _grads(list(outs), list(xs), us, True)
        if vs is None:
            vs = tuple(_tensor.ones_like(x) for x in xs)
        jv = _grads(list(g), us, list(vs), create_graph)
    res = jv[0] if single_out else jv
    return (out if create_graph else _detach(out)), (res if create_graph else _detach(res))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """d func / d inputs: for one input and one output, a tensor of shape out.shape + in.shape;
    tuples of them (outputs first) for several."""
    single, xs = _prepare(inputs)
    from ..ops.shape import stack

    with enable_grad():
        out = func(*xs)
        outs, single_out = _as_tuple(out)
        rows = []
        for o in outs:
            flat = o.reshape(-1)
            per_input = [[] for _ in xs]
            for i in range(flat.shape[0]):
                g = _grads([flat[i]], list(xs), None, create_graph)
                for j, gj in enumerate(g):
                    per_input[j].append(gj)
            jac = []
            for j, x in enumerate(xs):
                if per_input[j]:
                    jac.append(stack(per_input[j]).reshape(tuple(o.shape) + tuple(x.shape)))
                else:
                    jac.append(_tensor.zeros(tuple(o.shape) + tuple(x.shape), dtype=x.dtype, device=x.device))
            rows.append(jac[0] if single else tuple(jac))
    res = rows[0] if single_out else tuple(rows)
    return res if create_graph else _detach(res)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The matrix of second derivatives of a scalar function: shape in.shape + in.shape for one
    input, a tuple of tuples for several."""
    single, xs = _prepare(inputs)

    def gradient(*ys):
        out = func(*ys)
        if out.numel() != 1:
            raise RuntimeError(f"hessian: the function must return a single value, got shape {out.shape}")
        g = _grads([out.reshape(())], list(ys), None, True)
        return g[0] if single else g

    return jacobian(gradient, xs[0] if single else xs, create_graph)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a scalar function."""
    return hvp(func, inputs, v, create_graph, strict)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for a scalar function (H is symmetric, so this is also v^T H)."""
    single, xs = _prepare(inputs)
    vs = (v,) if isinstance(v, _tensor.Tensor) else tuple(v)
    with enable_grad():
        out = func(*xs)
        g = _grads([out], list(xs), None, True)
        hv = _grads(list(g), list(xs), list(vs), create_graph)
    res = hv[0] if single else hv
    return (out if create_graph else _detach(out)), (res if create_graph else _detach(res))


def _detach(x):
    if isinstance(x, _tensor.Tensor):
        return x.detach()
    return type(x)(_detach(v) for v in x)
