"""Random tensors from seeded generators, so that runs are reproducible for a fixed seed on any
device (values are drawn on the host and moved). ``gf.manual_seed`` seeds the default
generator; a ``gf.Generator`` can be passed as ``generator=`` to draw from its own stream."""

import numpy as np

from . import dtypes as _dtypes
from .tensor import _shape_args, tensor


class Generator:
    """A random stream (as ``torch.Generator``): ``manual_seed(s)``, ``seed()``,
    ``initial_seed()``; pass it as ``generator=`` to the random functions."""

    def __init__(self, device="cpu"):
        self.device = device
        self.seed()

    def manual_seed(self, seed):
        """Restarts the stream from ``seed``; returns the generator."""
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def seed(self):
        """Restarts the stream from a fresh nondeterministic seed, and returns that seed."""
        self.manual_seed(int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) >> 1)
        return self._seed

    def initial_seed(self):
        """The seed the stream was last started from."""
        return self._seed

    def get_state(self):
        """The stream's state (for set_state)."""
        return self.rng.bit_generator.state

    def set_state(self, state):
        """Restores a state returned by get_state."""
        self.rng.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int):
    """Seeds the default generator; returns it."""
    return default_generator.manual_seed(seed)


def seed():
    """Seeds the default generator nondeterministically; returns the seed."""
    return default_generator.seed()


def initial_seed():
    """The seed the default generator was last started from."""
    return default_generator.initial_seed()


def generator(gen=None) -> np.random.Generator:
    """The numpy generator behind ``gen`` (the default generator when None), which every
    gradflow random op draws from (DataLoader shuffling and dropout included)."""
    return (gen or default_generator).rng


def _float(dtype):
    dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
    if not _dtypes.is_float(dt):
        raise TypeError(f"expected a floating-point dtype, got {dt}")
    return dt


def randn(*shape, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples of N(0, 1) in the given shape."""
    draws = _gen(generator).standard_normal(_shape_args(shape))
    return tensor(draws.astype(_float(dtype)), device=device, requires_grad=requires_grad)


def rand(*shape, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples of U[0, 1) in the given shape."""
    draws = _gen(generator).random(_shape_args(shape))
    return tensor(draws.astype(_float(dtype)), device=device, requires_grad=requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None):
    """Integers drawn uniformly from [low, high) (``randint(high, size)`` starts at 0)."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: give the size, e.g. randint(0, 10, (3,))")
    size = (size,) if isinstance(size, int) else tuple(size)
    dt = _dtypes.as_dtype(dtype) or _dtypes.int64
    return tensor(_gen(generator).integers(low, high, size=size).astype(dt), device=device)


def randperm(n, *, generator=None, dtype=None, device=None):
    """A random permutation of 0 .. n-1 (int64)."""
    dt = _dtypes.as_dtype(dtype) or _dtypes.int64
    return tensor(_gen(generator).permutation(int(n)).astype(dt), device=device)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False):
    """Samples of N(mean, std^2): numbers with ``size``, or tensors broadcast together."""
    from .tensor import Tensor

    m = mean._host() if isinstance(mean, Tensor) else mean
    s = std._host() if isinstance(std, Tensor) else std
    if size is None and not (isinstance(mean, Tensor) or isinstance(std, Tensor)):
        raise TypeError("normal: give size= when mean and std are numbers")
    shape = tuple(size) if size is not None else np.broadcast_shapes(np.shape(m), np.shape(s))
    like = next((t for t in (mean, std) if isinstance(t, Tensor)), None)
    dt = _dtypes.as_dtype(dtype) or (like.dtype if like is not None else _dtypes.default_float)
    dev = device or (like.device if like is not None else None)
    draws = _gen(generator).normal(m, s, size=shape).astype(dt)
    return tensor(draws, device=dev, requires_grad=requires_grad)


def _like(kind, t, dtype, device, requires_grad, generator=None, low=None, high=None):
    dt = dtype or t.dtype
    dev = device or t.device
    if kind == "rand":
        return rand(t.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)
    if kind == "randn":
        return randn(t.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)
    return randint(low, high, tuple(t.shape), generator=generator, dtype=dt, device=dev)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, generator=None):
    """``rand`` in the shape (and by default dtype and device) of ``input``."""
    return _like("rand", input, dtype, device, requires_grad, generator)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, generator=None):
    """``randn`` in the shape (and by default dtype and device) of ``input``."""
    return _like("randn", input, dtype, device, requires_grad, generator)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, generator=None):
    """``randint`` in the shape (and by default dtype and device) of ``input``."""
    if high is None:
        low, high = 0, low
    return _like("randint", input, dtype, device, False, generator, low, high)


def _gen(gen):
    if gen is not None and not isinstance(gen, Generator):
        raise TypeError(f"generator must be a gf.Generator, got {type(gen).__name__}")
    return generator(gen)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """``num_samples`` category indices per row of ``input`` (1-D, or 2-D: one row per
    distribution; non-negative weights, not necessarily summing to 1), int64, as
    torch.multinomial: with ``replacement`` independent draws, without it distinct categories
    (zero-weight ones only after every positive-weight one is taken)."""
    from .tensor import Tensor

    if not isinstance(input, Tensor) or input.ndim not in (1, 2):
        raise RuntimeError("multinomial: the weights must be a 1-D or 2-D tensor, got "
                           f"{getattr(input, 'shape', type(input).__name__)}")
    if int(num_samples) != num_samples or num_samples <= 0:
        raise RuntimeError(f"multinomial: num_samples must be a positive integer, got {num_samples!r}")
    p = np.asarray(input.detach()._host(), dtype=np.float64).reshape(-1, input.shape[-1])
    k, n = p.shape[1], int(num_samples)
    if not np.isfinite(p).all() or (p < 0).any():
        raise RuntimeError("multinomial: the weights contain inf, nan or an element < 0")
    if (p.sum(axis=1) <= 0).any():
        raise RuntimeError("multinomial: invalid distribution (a row's weights sum to <= 0)")
    if not replacement and n > k:
        raise RuntimeError(f"multinomial: cannot draw {n} samples from {k} categories without "
                           "replacement")
    rng = _gen(generator)
    if replacement:
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        u = rng.random((p.shape[0], n))
        out = np.stack([np.searchsorted(c, r, side="right") for c, r in zip(cdf, u)])
        out = np.minimum(out, k - 1)
    else:  # the largest weight / Exp(1) keys: a draw without replacement, weighted as given
        keys = p / rng.exponential(size=p.shape)
        out = np.argsort(-keys, axis=1, kind="stable")[:, :n]
    out = out.astype(np.int64).reshape(input.shape[:-1] + (n,))
    return tensor(out, device=input.device)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples, 1 with probability ``input`` (or ``p``, a number, for every element), in
    ``input``'s dtype and shape."""
    probs = np.asarray(input.detach()._host(), dtype=np.float64) if p is None else float(p)
    if np.any((np.asarray(probs) < 0) | (np.asarray(probs) > 1)) or np.any(np.isnan(probs)):
        raise RuntimeError("bernoulli: probabilities must be in [0, 1]")
    draws = _gen(generator).random(tuple(input.shape)) < probs
    return tensor(draws.astype(input.dtype if _dtypes.is_float(input.dtype) else _dtypes.default_float),
                  device=input.device)
