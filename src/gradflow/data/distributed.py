"""DistributedSampler: each rank's share of a dataset for data-parallel training."""

import math

import numpy as np


class DistributedSampler:
    """Yields rank ``rank``'s indices of ``dataset``: the (shuffled, if asked) order cut into
    ``num_replicas`` interleaved shares, ``order[rank::num_replicas]``, as PyTorch's sampler
    does. Every rank gets the same number of indices, so no rank waits for a collective the
    others never start: the order is padded by repeating its start (or, with ``drop_last``,
    cut to a multiple of ``num_replicas``). The shuffle is ``np.random.default_rng(seed +
    epoch)``'s permutation, the same on every rank; call ``set_epoch(e)`` before each epoch
    for a new one. ``num_replicas`` and ``rank`` default to the process group's.

    With ``DataLoader(dataset, batch_size=b, sampler=sampler)`` on each of N ranks, step k's
    batches together are positions ``k*N*b .. (k+1)*N*b - 1`` of the order: one process with
    batch size N*b over that order sees the same global batches.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if int(num_replicas) != num_replicas or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got "
                             f"{num_replicas!r}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank {rank} is outside [0, {num_replicas})")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Sets the epoch, which seeds the shuffle (``seed + epoch``): call it
        before each epoch for a new order, the same on every rank."""
        self.epoch = int(epoch)

    def order(self):
        """The whole order before it is shared out (padded or cut to total_size)."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:
            order = np.resize(order, self.total_size)  # repeats from the start
        return order[:self.total_size]

    def __iter__(self):
        return iter(self.order()[self.rank::self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples
