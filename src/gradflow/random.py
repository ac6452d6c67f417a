"""Random tensors from one seeded generator, so that runs are reproducible for a fixed seed on
any device (values are drawn on the host and moved)."""

import numpy as np

from . import dtypes as _dtypes
from .tensor import _shape_args, tensor

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The generator every gradflow random op draws from (DataLoader shuffling included)."""
    return _generator


def randn(*shape, dtype=None, device=None, requires_grad=False):
    dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
    return tensor(_generator.standard_normal(_shape_args(shape)).astype(dt), device=device,
                  requires_grad=requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
    return tensor(_generator.random(_shape_args(shape)).astype(dt), device=device,
                  requires_grad=requires_grad)


def randint(low, high, shape, device=None):
    return tensor(_generator.integers(low, high, size=tuple(shape)), device=device)
