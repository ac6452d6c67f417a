"""``GRADFLOW_DISTRIBUTED_DEBUG=DETAIL``: before each collective every rank exchanges a
fingerprint of it (its number, kind, dtype, shape, reduction or root, and what started it), so
mismatched collectives (a rank with another model, a rank that skipped a step, a rank that
left early) raise an error naming the ranks instead of hanging or mixing up buffers. It costs
one small allgather per collective: a debugging tool, as PyTorch's TORCH_DISTRIBUTED_DEBUG.
"""

import os

context = ""  # what is starting the next collectives (set by DistributedDataParallel)


def enabled():
    """Whether GRADFLOW_DISTRIBUTED_DEBUG is DETAIL (OFF by default; any other value
    raises ValueError)."""
    level = os.environ.get("GRADFLOW_DISTRIBUTED_DEBUG", "OFF").upper()
    if level not in ("OFF", "DETAIL"):
        raise ValueError(f"GRADFLOW_DISTRIBUTED_DEBUG must be OFF or DETAIL, not {level!r}")
    return level == "DETAIL"


class CheckedCommunicator:
    """Wraps a communicator; every collective is checked against the other ranks' first."""

    def __init__(self, comm):
        self.inner, self.rank, self.size = comm, comm.rank, comm.size
        self.count = 0

    def check(self, kind, array=None, detail=None):
        """Counts a collective and exchanges its fingerprint with every rank;
        raises RuntimeError naming each rank's collective if they differ."""
        self.count += 1
        mine = (kind, None if array is None else str(array.dtype),
                None if array is None else tuple(array.shape), detail)
        everyone = self.inner.allgather_object((self.count, mine, context))
        if any(fp != mine for _, fp, _ in everyone):
            lines = "\n".join(f"  rank {r}: collective #{n} {_describe(fp)}"
                              + (f" ({what})" if what else "")
                              for r, (n, fp, what) in enumerate(everyone))
            raise RuntimeError("GRADFLOW_DISTRIBUTED_DEBUG: the ranks started different "
                               f"collectives:\n{lines}")

    def allreduce(self, array, op, wait=False):
        """The wrapped communicator's allreduce, checked first."""
        self.check("allreduce", array, op)
        return self.inner.allreduce(array, op, wait)

    def broadcast(self, array, src, wait=False):
        """The wrapped communicator's broadcast, checked first."""
        self.check("broadcast", array, f"src {src}")
        return self.inner.broadcast(array, src, wait)

    def allgather(self, send, recv, wait=False):
        """The wrapped communicator's allgather, checked first."""
        self.check("allgather", send)
        return self.inner.allgather(send, recv, wait)

    def reduce_scatter(self, send, recv, op, wait=False):
        """The wrapped communicator's reduce_scatter, checked first."""
        self.check("reduce_scatter", send, op)
        return self.inner.reduce_scatter(send, recv, op, wait)

    def barrier(self, wait=False):
        """The wrapped communicator's barrier, checked first."""
        self.check("barrier")
        return self.inner.barrier(wait)

    def allgather_object(self, obj):
        """The wrapped communicator's allgather_object, checked
        first."""
        self.check("allgather_object")
        return self.inner.allgather_object(obj)

    def broadcast_object(self, obj, src):
        """The wrapped communicator's broadcast_object, checked
        first."""
        self.check("broadcast_object", detail=f"src {src}")
        return self.inner.broadcast_object(obj, src)

    def __getattr__(self, name):  # backend, local_rank, abort, close: the wrapped one's
        return getattr(self.inner, name)


def _describe(fp):
    kind, dtype, shape, detail = fp
    parts = [kind, f"{dtype}{list(shape)}" if dtype else "", str(detail) if detail else ""]
    return " ".join(p for p in parts if p)
