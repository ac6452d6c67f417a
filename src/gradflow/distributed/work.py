"""What every communicator shares: the reduction names, the request protocol and ``Work``.

A communicator (``mpi.MpiCommunicator``, ``nccl.NcclCommunicator``, or a test's stand-in) has
``rank``, ``size``, ``backend`` (its name) and ``device`` (the kind of device its arrays are
on: "cpu" or "cuda") and starts collectives on contiguous arrays, each returning a request
with ``test()`` (True once complete; it also drives progress) and ``wait()``:

- ``allreduce(array, op)`` in place, op one of "sum", "max", "min";
- ``broadcast(array, src)`` in place;
- ``allgather(send, recv)`` with ``recv.shape == (size,) + send.shape``;
- ``reduce_scatter(send, recv, op)`` with ``send.shape == (size,) + recv.shape``;
- ``barrier()``;

each with ``wait=True`` returning only once complete (MPI's blocking call, cheaper than a
nonblocking one waited on); and exchanges small Python objects, blocking:
``allgather_object(obj)`` (a list, one per rank) and ``broadcast_object(obj, src)``. Every rank
must start the same collectives in the same order, as MPI requires.
"""


class ReduceOp:
    """The reductions of ``all_reduce``/``reduce_scatter``; plain strings work as well."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


REDUCE_OPS = (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.MAX, ReduceOp.MIN)


def reduce_op(op):
    """The reduction's name ("sum", "avg", "max" or "min") for ``op`` (a ReduceOp or
    string, any case); ValueError for any other."""
    name = str(op).lower()
    if name not in REDUCE_OPS:
        raise ValueError(f"unknown reduction {op!r}; choose from {', '.join(REDUCE_OPS)}")
    return name


class Work:
    """An asynchronous collective (``async_op=True``): ``wait()`` blocks until it is complete
    and its result is in place; ``is_completed()`` asks without blocking."""

    __slots__ = ("_request", "_finish", "_done")

    def __init__(self, request, finish=None):
        self._request, self._finish, self._done = request, finish, False

    def is_completed(self):
        """Whether the collective has completed (testing it drives its progress),
        without blocking."""
        if not self._done and self._request.test():
            self._complete()
        return self._done

    def wait(self):
        """Blocks until the collective is complete and its result in place; returns True."""
        if not self._done:
            self._request.wait()
            self._complete()
        return True

    def _complete(self):
        self._done = True
        if self._finish is not None:
            self._finish()
