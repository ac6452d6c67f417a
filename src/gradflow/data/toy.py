"""Small synthetic problems for examples and tests. Each returns CPU tensors: float32 inputs
and int64 class labels (or float32 targets for regression), deterministic for a given seed."""

import math

import numpy as np

from ..tensor import from_numpy


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _shuffled(rng, x, y):
    order = rng.permutation(len(x))
    return from_numpy(np.ascontiguousarray(x[order], np.float32)), from_numpy(y[order])


def make_xor():
    """The four XOR points: x (4, 2) in {0, 1}^2 and y = x0 xor x1, int64 (4,)."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    return from_numpy(x), from_numpy(np.array([0, 1, 1, 0], np.int64))


def make_moons(n=200, noise=0.1, seed=0):
    """Two interleaving half circles (as scikit-learn's make_moons): x (n, 2), y (n,) in
    {0, 1}, Gaussian noise of std ``noise`` added to the points, rows shuffled."""
    _check_count("n", n, 2)
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    t_outer = np.linspace(0, math.pi, n_outer)
    t_inner = np.linspace(0, math.pi, n - n_outer)
    x = np.concatenate([np.stack([np.cos(t_outer), np.sin(t_outer)], 1),
                        np.stack([1 - np.cos(t_inner), 0.5 - np.sin(t_inner)], 1)])
    x += rng.normal(0, noise, x.shape)
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n - n_outer, np.int64)])
    return _shuffled(rng, x, y)


def make_spirals(n=300, classes=3, noise=0.2, seed=0):
    """``classes`` interleaved spiral arms, n points in all (split as evenly as possible):
    x (n, 2) within the unit disc, y (n,) in 0..classes-1, rows shuffled. ``noise`` is the std
    of the angle jitter in radians."""
    _check_count("classes", classes, 2)
    _check_count("n", n, classes)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(classes):
        m = n // classes + (k < n % classes)
        r = np.linspace(0.05, 1, m)
        theta = 2 * math.pi * k / classes + 1.5 * math.pi * r + rng.normal(0, noise, m)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], 1))
        ys.append(np.full(m, k, np.int64))
    return _shuffled(rng, np.concatenate(xs), np.concatenate(ys))


def make_regression_1d(n=256, fn=np.sin, noise=0.0, seed=0, low=-math.pi, high=math.pi):
    """x (n, 1) uniform on [low, high] and y = fn(x) plus Gaussian noise of std ``noise``,
    (n, 1), both float32."""
    _check_count("n", n, 1)
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, (n, 1))
    y = np.asarray(fn(x), np.float64) + (rng.normal(0, noise, x.shape) if noise else 0)
    return from_numpy(x.astype(np.float32)), from_numpy(y.astype(np.float32).reshape(n, 1))
