"""An in-process stand-in for MPI: N ranks as threads, for testing the reduction arithmetic
(DistributedDataParallel, the collectives) where mpi4py is absent.

Only one rank runs at a time: a rank holds the group's lock (the baton) except while it waits
for a collective, so gradflow's process-wide autograd switches are never shared by two running
ranks. A collective completes when the last rank starts it; its arithmetic runs in rank order,
so every rank gets bitwise the same result. If every live rank is waiting, that is a hang: the
group raises in all of them instead.
"""

import threading

import numpy as np

_REDUCE = {"sum": np.add, "max": np.maximum, "min": np.minimum}


class Hang(RuntimeError):
    pass


class FakeGroup:
    def __init__(self, size):
        self.size = size
        self.cond = threading.Condition()
        self.slots = {}  # (namespace, sequence number) -> slot
        self.alive = 0
        self.waiters = []  # what each waiting rank waits for
        self.hung = False

    def run(self, fn, *args):
        """fn(comm, *args) on every rank, concurrently; the list of their results (the first
        rank's exception, re-raised, if any rank failed)."""
        results, errors = [None] * self.size, [None] * self.size

        def body(rank):
            with self.cond:
                try:
                    results[rank] = fn(FakeCommunicator(self, rank), *args)
                except BaseException as e:  # noqa: BLE001 (handed to the caller)
                    errors[rank] = e
                finally:
                    self.alive -= 1
                    self._check_hang()
                    self.cond.notify_all()

        self.alive = self.size
        threads = [threading.Thread(target=body, args=(r,)) for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for rank, e in enumerate(errors):
            if e is not None and not isinstance(e, Hang):
                raise RuntimeError(f"rank {rank} failed: {e}") from e
        for rank, e in enumerate(errors):
            if e is not None:
                raise e
        return results

    def _check_hang(self):
        if self.alive and len(self.waiters) == self.alive and not any(w() for w in self.waiters):
            self.hung = True
            self.cond.notify_all()

    def wait_until(self, done):
        self.waiters.append(done)
        try:
            self._check_hang()
            while not done():
                if self.hung:
                    raise Hang("every rank waits for a collective that some rank never starts")
                self.cond.wait()
        finally:
            self.waiters.remove(done)

    def post(self, key, rank, kind, part, combine):
        slot = self.slots.setdefault(key, {"kind": kind, "parts": {}, "done": False})
        if slot["kind"] != kind:
            raise RuntimeError(f"mismatched collectives: rank {rank} started {kind} as #{key[1]}, "
                               f"another rank {slot['kind']}")
        slot["parts"][rank] = part
        if len(slot["parts"]) == self.size:
            slot["result"] = combine([slot["parts"][r] for r in range(self.size)])
            slot["done"] = True
            self.cond.notify_all()
        return slot


class FakeRequest:
    def __init__(self, group, slot):
        self.group, self.slot = group, slot

    def test(self):
        return self.slot["done"]

    def wait(self):
        self.group.wait_until(self.test)


def reduce_in_rank_order(arrays, op):
    total = arrays[0].copy()
    for a in arrays[1:]:
        total = _REDUCE[op](total, a)
    return total


class FakeCommunicator:
    """The communicator protocol of gradflow.distributed (see distributed/work.py)."""

    backend, device = "fake", "cpu"

    def __init__(self, group, rank, namespace="comm"):
        self.group, self.rank, self.size = group, rank, group.size
        self.namespace, self.count = namespace, 0
        self.log = []  # (kind, dtype, size) of each collective started, in order

    def _start(self, kind, part, combine, array=None, wait=False):
        self.count += 1
        if array is not None:
            self.log.append((kind, str(array.dtype), array.size))
        slot = self.group.post((self.namespace, self.count), self.rank, kind, part, combine)
        request = FakeRequest(self.group, slot)
        if wait:
            request.wait()
        return request

    def allreduce(self, array, op, wait=False):
        def combine(arrays):
            total = reduce_in_rank_order(arrays, op)
            for a in arrays:
                a[...] = total
        return self._start(f"allreduce {op}", array, combine, array, wait)

    def broadcast(self, array, src, wait=False):
        def combine(arrays):
            for a in arrays:
                a[...] = arrays[src]
        return self._start(f"broadcast {src}", array, combine, array, wait)

    def allgather(self, send, recv, wait=False):
        def combine(pairs):
            for _, r in pairs:
                for i, (s, _) in enumerate(pairs):
                    r[i] = s
        return self._start("allgather", (send, recv), combine, send, wait)

    def reduce_scatter(self, send, recv, op, wait=False):
        def combine(pairs):
            total = reduce_in_rank_order([s for s, _ in pairs], op)
            for i, (_, r) in enumerate(pairs):
                r[...] = total[i]
        return self._start(f"reduce_scatter {op}", (send, recv), combine, send, wait)

    def barrier(self, wait=False):
        return self._start("barrier", None, lambda parts: None, wait=wait)

    def allgather_object(self, obj):
        req = self._start("allgather_object", obj, list)
        req.wait()
        return list(req.slot["result"])

    def broadcast_object(self, obj, src):
        req = self._start(f"broadcast_object {src}", obj, lambda objs: objs[src])
        req.wait()
        return req.slot["result"]

    def local_rank(self):
        return self.rank

    def abort(self, code=1):
        raise SystemExit(code)

    def close(self):
        pass
