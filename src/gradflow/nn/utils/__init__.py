"""``gf.nn.utils``: gradient clipping and flattening parameters into one vector."""

import math

from ...autograd.grad_mode import no_grad
from ...tensor import Tensor


def _params(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scales the gradients so that their joint ``norm_type``-norm is at most ``max_norm``;
    returns that norm (before clipping) as a 0-d tensor."""
    from ...ops.scan import vector_norm
    from ...ops.shape import stack

    params = _params(parameters)
    if not params:
        from ...tensor import tensor

        return tensor(0.0)
    with no_grad():
        norms = stack([vector_norm(p.grad, norm_type) for p in params])
        total = vector_norm(norms, norm_type)
        value = float(total.item())
        if error_if_nonfinite and not math.isfinite(value):
            raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {value}")
        scale = min(1.0, float(max_norm) / (value + 1e-6))
        if scale < 1.0:
            for p in params:
                p.grad.mul_(scale)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamps every gradient entry to [-clip_value, clip_value], in place."""
    with no_grad():
        for p in _params(parameters):
            p.grad.array[...] = p._be.xp.clip(p.grad.array, -clip_value, clip_value)
            p.grad._vbox[0] += 1


def parameters_to_vector(parameters):
    """All the parameters flattened and joined into one 1-d tensor."""
    from ...ops.shape import concatenate

    return concatenate([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copies consecutive pieces of the 1-d ``vec`` into the parameters, in place."""
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-d, got shape {vec.shape}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.numel() != total:
        raise ValueError(f"vector_to_parameters: vec has {vec.numel()} values, the parameters {total}")
    start = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[start:start + n].reshape(p.shape))
            start += n


__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]
