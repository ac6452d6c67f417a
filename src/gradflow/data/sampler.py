"""Samplers, as PyTorch's: the order in which a DataLoader visits a dataset (Sampler,
SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler) and BatchSampler,
which groups a sampler's indices into batches."""

import numbers

import numpy as np

from .. import random as _random


class Sampler:
    """Base of the samplers: an iterable of dataset indices (with ``__len__`` where known)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError("a Sampler defines __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


def _rng(generator):
    """A numpy Generator as given, or the one behind a gf.Generator (None: the default one)."""
    return generator if isinstance(generator, np.random.Generator) else _random.generator(generator)


class RandomSampler(Sampler):
    """A random order of ``data_source``'s indices: a permutation (repeated, when ``num_samples``
    exceeds the length), or with ``replacement`` ``num_samples`` independent draws; drawn from
    ``generator`` (a gf.Generator; None: gradflow's default generator) on every iteration."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, numbers.Integral) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive integer, got {num_samples!r}")
        self.data_source, self.replacement = data_source, replacement
        self._num_samples, self.generator = num_samples, generator

    @property
    def num_samples(self):
        """How many indices one iteration yields (the dataset's length unless given)."""
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self):
        n, m, rng = len(self.data_source), self.num_samples, _rng(self.generator)
        if self.replacement:
            return iter(rng.integers(0, n, size=m).tolist())
        parts = [rng.permutation(n) for _ in range(m // n)] + ([rng.permutation(n)[:m % n]] if m % n else [])
        return iter(np.concatenate(parts).tolist() if parts else [])

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order (drawn from ``generator``) on every iteration."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = indices, generator

    def __iter__(self):
        perm = _rng(self.generator).permutation(len(self.indices))
        return iter([self.indices[int(i)] for i in perm])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices in [0, len(weights)), index i drawn with probability
    proportional to ``weights[i]``, with or without ``replacement``."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, numbers.Integral) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples must be a positive integer, got {num_samples!r}")
        if not isinstance(replacement, bool):
            raise TypeError(f"WeightedRandomSampler: replacement must be a bool, got {replacement!r}")
        w = np.asarray(weights.tolist() if hasattr(weights, "tolist") else weights, dtype=np.float64)
        if w.ndim != 1 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be a 1-D sequence of finite, "
                             "non-negative numbers with a positive sum")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                             f"replacement from {np.count_nonzero(w)} nonzero weights")
        self.weights, self.num_samples = w, int(num_samples)
        self.replacement, self.generator = replacement, generator

    def __iter__(self):
        p = self.weights / self.weights.sum()
        draws = _rng(self.generator).choice(len(p), self.num_samples, replace=self.replacement, p=p)
        return iter(draws.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups ``sampler``'s indices into lists of ``batch_size`` (the last one shorter unless
    ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(int(i))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
