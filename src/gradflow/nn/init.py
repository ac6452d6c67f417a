"""Parameter initialisation, in place and unrecorded, with PyTorch's formulas. Values are drawn
on the host from gradflow's seeded generator (gf.manual_seed) and copied to the tensor's device."""

import math

from .. import random as _random
from ..autograd.grad_mode import no_grad


def _assign(tensor, host):
    with no_grad():
        be = tensor._be
        be.setitem(tensor.array, Ellipsis, be.to_device_array(host.astype(tensor.dtype, copy=False)))
        tensor._vbox[0] += 1
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in/out need a tensor of at least 2 dimensions, got shape {tensor.shape}")
    receptive = 1
    for n in tensor.shape[2:]:
        receptive *= n
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fills the tensor with samples of U(a, b) (from ``generator``, a gf.Generator, or the
    default one), in place."""
    return _assign(tensor, _random.generator(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fills the tensor with samples of N(mean, std^2) (from ``generator``, a gf.Generator, or
    the default one), in place."""
    return _assign(tensor, _random.generator(generator).normal(mean, std, tensor.shape))


def zeros_(tensor):
    """Fills the tensor with zeros, in place."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fills the tensor with ones, in place."""
    return constant_(tensor, 1.0)


def constant_(tensor, value):
    """Fills the tensor with ``value``, in place."""
    with no_grad():
        tensor._be.setitem(tensor.array, Ellipsis, value)
        tensor._vbox[0] += 1
    return tensor


def xavier_uniform_(tensor, gain=1.0):
    """U(-b, b) with b = gain sqrt(6 / (fan_in + fan_out)) (Glorot), in place."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """N(0, gain^2 2 / (fan_in + fan_out)) (Glorot), in place."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = gain(nonlinearity, a) sqrt(3 / fan) (He), in place."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, (gain(nonlinearity, a) / sqrt(fan))^2) (He), in place."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fills with N(mean, std^2) samples kept to [a, b] (redrawing those outside)."""
    import numpy as np

    rng = _random.generator()
    out = rng.normal(mean, std, tensor.shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < a) | (out > b)
    return _assign(tensor, np.asarray(out))


def eye_(tensor):
    """Fills a 2-d tensor with the identity matrix (ones on the diagonal)."""
    import numpy as np

    if tensor.ndim != 2:
        raise ValueError(f"eye_: needs a 2-d tensor, got shape {tensor.shape}")
    return _assign(tensor, np.eye(*tensor.shape))


def orthogonal_(tensor, gain=1.0):
    """Fills with a (semi-)orthogonal matrix, the tensor seen as (rows, the rest), from the QR
    decomposition of a Gaussian matrix (signs fixed so that the result is uniformly
    distributed), times ``gain``."""
    import numpy as np

    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dims, got shape {tensor.shape}")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _random.generator().standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _assign(tensor, (gain * q).reshape(tensor.shape))
