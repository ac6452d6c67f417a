"""DataLoader (PyTorch-shaped; a TensorDataset batch is gathered with one indexing op per tensor)."""

import math

import numpy as np

from .. import backend as _backend
from .. import random as _random
from ..tensor import Tensor, tensor
from .dataset import TensorDataset


class DataLoader:
    """Iterates over ``dataset`` in batches, each a tuple of tensors (one per sample field).

    shuffle: a new order every epoch, from ``np.random.default_rng(seed)`` when a seed is
    given (so the sequence of epochs is reproducible on its own), else from gradflow's
    generator (gf.manual_seed). drop_last: skip the last, smaller batch. device: where the
    batches go (by default, where the dataset's tensors are). sampler: an iterable of indices
    with a length (e.g. DistributedSampler) that gives the order instead (no shuffle then).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 device=None, sampler=None):
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the "
                             "sampler decides the order)")
        self.sampler = sampler
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.device = None if device is None else _backend.canonical_device(device)
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
        elif self.shuffle:
            order = (self._rng or _random.generator()).permutation(n)
        else:
            order = np.arange(n)
        for b in range(len(self)):
            yield self._batch(order[b * self.batch_size:(b + 1) * self.batch_size])

    def _batch(self, index):
        if isinstance(self.dataset, TensorDataset):
            # One gather per tensor, on the tensor's device; batches are data, never on a tape.
            batch = tuple(Tensor._make(t._be.getitem(t.data, index if t.device == "cpu"
                                                     else t._be.to_device_array(index)), t.device)
                          for t in self.dataset.tensors)
        else:
            batch = _collate([self.dataset[int(i)] for i in index])
        if self.device is not None:
            batch = tuple(t.to(self.device) for t in batch)
        return batch


def _collate(samples):
    """A list of samples (tuples, or single values) -> a tuple of stacked tensors."""
    if not isinstance(samples[0], (tuple, list)):
        samples = [(s,) for s in samples]
    width = len(samples[0])
    if any(len(s) != width for s in samples):
        raise ValueError("DataLoader: samples have different numbers of fields")
    return tuple(tensor(np.stack([_host(s[k]) for s in samples])) for k in range(width))


def _host(value):
    # Not np.asarray(tensor): a 0-d CPU tensor's data is a numpy scalar, which __array__ rejects.
    return np.asarray(value.detach()._host()) if isinstance(value, Tensor) else np.asarray(value)
