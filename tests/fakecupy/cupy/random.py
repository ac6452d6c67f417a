"""cupy.random of the stand-in: numpy's generators, results on the current device."""

import numpy as np

from . import _result

_state = np.random.default_rng()


def seed(s=None):
    global _state
    _state = np.random.default_rng(s)


def standard_normal(size=None, dtype=float):
    return _result(_state.standard_normal(size).astype(dtype))


def random(size=None, dtype=float):
    return _result(_state.random(size).astype(dtype))


random_sample = random


def uniform(low=0.0, high=1.0, size=None, dtype=float):
    return _result(_state.uniform(low, high, size).astype(dtype))


def randn(*size, dtype=float):
    return standard_normal(size, dtype)


def rand(*size, dtype=float):
    return random(size, dtype)
