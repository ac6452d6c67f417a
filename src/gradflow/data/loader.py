"""DataLoader, as PyTorch's: batches of samples collated by ``collate_fn`` (dicts, tuples,
lists and nested ones collated field by field, as torch's default_collate), optionally loaded
by worker processes started with ``spawn`` (so that the threaded kernels work in them). A
TensorDataset batch is gathered with one indexing op per tensor."""

import collections.abc
import math
import multiprocessing
import numbers

import numpy as np

from .. import backend as _backend
from .. import random as _random
from ..tensor import Tensor, tensor
from .dataset import TensorDataset


class DataLoader:
    """Iterates over ``dataset`` in batches.

    shuffle: a new order every epoch, drawn from ``generator`` (a gf.Generator), or from
    ``np.random.default_rng(seed)`` when a seed is given, else from gradflow's default
    generator (gf.manual_seed). drop_last: skip the last, smaller batch. collate_fn: turns a
    list of samples into a batch (default: :func:`default_collate`). num_workers > 0 loads
    batches in that many spawned processes (the dataset and collate_fn must pickle);
    persistent_workers keeps them between epochs. device: where the batches go. sampler: an
    iterable of indices with a length (e.g. DistributedSampler) that gives the order instead (no
    shuffle then).
    A TensorDataset without a collate_fn gives a tuple of tensors per batch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, seed=None, device=None):
        if batch_size is None or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if batch_sampler is not None:
            raise ValueError("DataLoader: batch_sampler is not supported; use sampler=, or "
                             "shuffle= and generator=")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the "
                             "sampler decides the order)")
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers needs num_workers > 0")
        if generator is not None and seed is not None:
            raise TypeError("DataLoader: give generator or seed, not both")
        self.sampler = sampler
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn, self.num_workers = collate_fn, int(num_workers)
        self.worker_init_fn, self.persistent_workers = worker_init_fn, bool(persistent_workers)
        self.multiprocessing_context = multiprocessing_context or "spawn"
        self.device = None if device is None else _backend.canonical_device(device)
        self.generator = generator
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._pool = None

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if self.sampler is not None:
            return np.fromiter(self.sampler, dtype=np.int64)
        if not self.shuffle:
            return np.arange(n)
        rng = self._rng if self._rng is not None else _random.generator(self.generator)
        return rng.permutation(n)

    def __iter__(self):
        order = self._order()
        chunks = [order[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]
        if self.num_workers == 0:
            for index in chunks:
                yield self._to_device(self._batch(index))
            return
        pool = self._pool or self._start_pool()
        try:
            for batch in pool.imap(_worker_batch, chunks):
                yield self._to_device(batch)
        finally:
            if not self.persistent_workers:
                pool.terminate()
                self._pool = None

    def _start_pool(self):
        ctx = multiprocessing.get_context(self.multiprocessing_context) \
            if isinstance(self.multiprocessing_context, str) else self.multiprocessing_context
        pool = ctx.Pool(self.num_workers, _worker_init,
                        (self.dataset, self.collate_fn, self.worker_init_fn))
        if self.persistent_workers:
            self._pool = pool
        return pool

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.terminate()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pool"] = None
        return state

    def _batch(self, index):
        if isinstance(self.dataset, TensorDataset) and self.collate_fn is None:
            # One gather per tensor, on the tensor's device; batches are data, never on a tape.
            return tuple(Tensor._make(t._be.getitem(t.array, index if t.device == "cpu"
                                                    else t._be.to_device_array(index)), t.device)
                         for t in self.dataset.tensors)
        return (self.collate_fn or default_collate)([self.dataset[int(i)] for i in index])

    def _to_device(self, batch):
        if self.device is None:
            return batch
        return _map_tensors(batch, lambda t: t.to(self.device))


# ---- worker processes ------------------------------------------------------------------------------
_worker_state = {}


def _worker_init(dataset, collate_fn, worker_init_fn):
    _worker_state.update(dataset=dataset, collate_fn=collate_fn or default_collate)
    if worker_init_fn is not None:
        worker_init_fn(multiprocessing.current_process()._identity[0] - 1)


def _worker_batch(index):
    ds = _worker_state["dataset"]
    if isinstance(ds, TensorDataset) and _worker_state["collate_fn"] is default_collate:
        return tuple(t[index] for t in ds.tensors)
    return _worker_state["collate_fn"]([ds[int(i)] for i in index])


# ---- collation -------------------------------------------------------------------------------------
def default_collate(batch):
    """A list of samples -> a batch, as torch's default_collate: tensors and arrays stacked
    along a new dim 0, Python floats into a float64 tensor, ints into int64, bools into bool,
    strings kept as a list; dicts, named tuples, tuples and lists collated field by field
    (a tuple or list of fields gives a list)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return tensor(np.stack([_host(s) for s in batch]), device=elem.device)
    if isinstance(elem, (np.ndarray, np.generic)):
        return tensor(np.stack([np.asarray(s) for s in batch]))
    if isinstance(elem, bool):
        return tensor(batch, dtype="bool")
    if isinstance(elem, numbers.Integral):
        return tensor(batch, dtype="int64")
    if isinstance(elem, numbers.Real):
        return tensor(batch, dtype="float64")
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(f)) for f in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(s) != len(elem) for s in batch):
            raise ValueError("DataLoader: samples have different numbers of fields")
        return [default_collate(list(f)) for f in zip(*batch)]
    raise TypeError(f"default_collate: cannot collate samples of type {type(elem).__name__}")


def _map_tensors(batch, fn):
    if isinstance(batch, Tensor):
        return fn(batch)
    if isinstance(batch, dict):
        return {k: _map_tensors(v, fn) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_map_tensors(v, fn) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_map_tensors(v, fn) for v in batch)
    return batch


def _host(value):
    # Not np.asarray(tensor): a 0-d CPU tensor's data is a numpy scalar, which __array__ rejects.
    return np.asarray(value.detach()._host())
