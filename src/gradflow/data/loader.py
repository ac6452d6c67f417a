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
from .sampler import BatchSampler, RandomSampler, SequentialSampler


class DataLoader:
    """Iterates over ``dataset`` in batches.

    shuffle: a new order every epoch (a :class:`RandomSampler`), drawn from ``generator`` (a
    gf.Generator), or from ``np.random.default_rng(seed)`` when a seed is given, else from
    gradflow's default generator (gf.manual_seed). drop_last: skip the last, smaller batch.
    sampler: an iterable of indices (with a length, e.g. DistributedSampler) that gives the
    order instead; batch_sampler: an iterable of lists of indices that gives the batches
    instead (then batch_size, shuffle, sampler and drop_last are left at their defaults, as
    PyTorch requires). batch_size=None: no batching, each sample as it is (numpy arrays made
    tensors). collate_fn: turns a list of samples into a batch (default:
    :func:`default_collate`). num_workers > 0 loads batches in that many spawned processes
    (the dataset and collate_fn must pickle); persistent_workers keeps them between epochs.
    device: where the batches go. A TensorDataset without a collate_fn gives a tuple of
    tensors per batch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, seed=None, device=None):
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size = None
        elif batch_size is None:
            if drop_last:
                raise ValueError("DataLoader: batch_size=None option disables auto-batching and "
                                 "is mutually exclusive with drop_last")
        elif isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle (the "
                             "sampler decides the order)")
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers needs num_workers > 0")
        if generator is not None and seed is not None:
            raise TypeError("DataLoader: give generator or seed, not both")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=np.random.default_rng(seed)
                                    if seed is not None else generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
        self.dataset, self.sampler, self.batch_sampler = dataset, sampler, batch_sampler
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn, self.num_workers = collate_fn, int(num_workers)
        self.worker_init_fn, self.persistent_workers = worker_init_fn, bool(persistent_workers)
        self.multiprocessing_context = multiprocessing_context or "spawn"
        self.device = None if device is None else _backend.canonical_device(device)
        self.generator = generator
        self._pool = None

    def __len__(self):
        return len(self.sampler) if self.batch_sampler is None else len(self.batch_sampler)

    def __iter__(self):
        if self.batch_sampler is None:  # no batching: each sample, converted
            for i in self.sampler:
                yield self._to_device(default_convert(self.dataset[int(i)]))
            return
        chunks = [np.asarray(b, dtype=np.int64).reshape(-1) for b in self.batch_sampler]
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


def default_convert(data):
    """A sample as DataLoader(batch_size=None) gives it, as torch's default_convert: numpy
    arrays become tensors (Python numbers stay), in dicts, named tuples, tuples and lists too
    (a plain tuple becomes a list)."""
    if isinstance(data, np.ndarray):
        return tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(v) for v in data))
    if isinstance(data, (list, tuple)):  # a plain tuple gives a list, as torch's
        return [default_convert(v) for v in data]
    return data


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
