"""Stand-ins for ``cupy.cuda.nccl`` and the stream/event part of ``cupy.cuda``, on the
in-process fake group (_fake_comm.py), for testing gradflow.distributed.nccl's logic (id
exchange, bucket order, stream use) on host arrays: a "device pointer" is a numpy array's
address. Kernels run on the host at once, so a stream's queued work is done when its last
collective is; waiting for an event on a stream therefore waits on the host."""

import ctypes
import itertools
import threading

import numpy as np

from _fake_comm import reduce_in_rank_order

NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_BFLOAT16 = 7, 8, 2, 4, 9
NCCL_SUM, NCCL_MAX, NCCL_MIN = 0, 2, 3
_NUMPY = {NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64, NCCL_INT32: np.int32,
          NCCL_INT64: np.int64}
try:  # (ml_dtypes' bfloat16 sums round to bfloat16 at each step, as NCCL's bfloat16 reductions)
    import ml_dtypes
    _NUMPY[NCCL_BFLOAT16] = ml_dtypes.bfloat16
except ImportError:
    pass
_OPS = {NCCL_SUM: "sum", NCCL_MAX: "max", NCCL_MIN: "min"}


def _array(ptr, count, dtype):
    dtype = np.dtype(_NUMPY[dtype])
    return np.frombuffer((ctypes.c_char * (count * dtype.itemsize)).from_address(ptr), dtype)


class FakeCuda:
    """``Stream``, ``Event`` and ``get_current_stream`` for one fake group."""

    def __init__(self, group):
        self.group, self.streams, self.local = group, {}, threading.local()
        self._ptrs = itertools.count(1)
        fake = self

        class Stream:
            def __init__(self, non_blocking=False):
                self.ptr, self.last, self.log = next(fake._ptrs), None, []
                fake.streams[self.ptr] = self

            def wait_event(self, event):
                self.log.append(("wait_event", event))
                fake.group.wait_until(lambda: event.done)

            def synchronize(self):
                fake.group.wait_until(lambda: self.last is None or self.last["done"])

        class Event:
            slot = None

            def record(self, stream=None):
                self.slot = (stream or fake.get_current_stream()).last

            @property
            def done(self):
                return self.slot is None or self.slot["done"]

        self.Stream, self.Event = Stream, Event

    def get_current_stream(self):
        if not hasattr(self.local, "stream"):
            self.local.stream = self.Stream()
        return self.local.stream


class FakeNccl:
    """The ``cupy.cuda.nccl`` subset gradflow uses; ``log`` records each rank's calls."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_BFLOAT16 = (
        NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_BFLOAT16)
    NCCL_SUM, NCCL_MAX, NCCL_MIN = NCCL_SUM, NCCL_MAX, NCCL_MIN

    def __init__(self, group, cuda):
        self.group, self.cuda, self.log, self.ids_made = group, cuda, [], 0
        fake = self

        class NcclCommunicator:
            def __init__(self, ndev, comm_id, rank):
                assert ndev == fake.group.size
                self.rank, self.id, self.count = rank, comm_id, 0
                fake.log.append(("init", rank, comm_id))

            def _post(self, kind, stream, parts, combine):
                self.count += 1
                slot = fake.group.post(("nccl", self.id, self.count), self.rank, kind, parts,
                                       combine)
                fake.cuda.streams[stream].last = slot
                fake.log.append((kind, self.rank, stream))

            def allReduce(self, send, recv, count, dtype, op, stream):
                def combine(pairs):
                    total = reduce_in_rank_order([s.copy() for s, _ in pairs], _OPS[op])
                    for _, r in pairs:
                        r[...] = total
                self._post(f"allReduce {count}", stream,
                           (_array(send, count, dtype), _array(recv, count, dtype)), combine)

            def bcast(self, buf, count, dtype, root, stream):
                def combine(arrays):
                    for a in arrays:
                        a[...] = arrays[root]
                self._post(f"bcast {count} {root}", stream, _array(buf, count, dtype), combine)

            def allGather(self, send, recv, count, dtype, stream):
                def combine(pairs):
                    for _, r in pairs:
                        r[...] = np.concatenate([s for s, _ in pairs])
                self._post(f"allGather {count}", stream, (_array(send, count, dtype),
                           _array(recv, count * fake.group.size, dtype)), combine)

            def reduceScatter(self, send, recv, count, dtype, op, stream):
                def combine(pairs):
                    total = reduce_in_rank_order([s.copy() for s, _ in pairs], _OPS[op])
                    for i, (_, r) in enumerate(pairs):
                        r[...] = total[i * count:(i + 1) * count]
                self._post(f"reduceScatter {count}", stream, (_array(send, count * fake.group.size,
                           dtype), _array(recv, count, dtype)), combine)

            def destroy(self):
                fake.log.append(("destroy", self.rank, None))

        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self):
        self.ids_made += 1
        return tuple(range(self.ids_made, self.ids_made + 128))
