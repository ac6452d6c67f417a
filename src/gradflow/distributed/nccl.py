"""The GPU communicator: NCCL through ``cupy.cuda.nccl``, bootstrapped over MPI.

As ChainerMN's pure-NCCL communicator: rank 0 creates the NCCL unique id, MPI broadcasts it,
and every rank builds its NCCL communicator from it on the GPU ``local_rank % device_count``.
Collectives run on a stream of their own, ordered after the work already queued on the
current stream (an event), so the computation queued after a launch overlaps it; waiting makes
the current stream wait for the collective's completion event, without blocking the host.
Small Python objects travel over MPI.
"""

_DTYPES = {"float16": "NCCL_FLOAT16", "bfloat16": "NCCL_BFLOAT16", "float32": "NCCL_FLOAT32",
           "float64": "NCCL_FLOAT64", "int8": "NCCL_INT8", "uint8": "NCCL_UINT8",
           "int32": "NCCL_INT32", "int64": "NCCL_INT64"}
_OPS = {"sum": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}


class _Request:
    __slots__ = ("_done", "_cuda")

    def __init__(self, done, cuda):
        self._done, self._cuda = done, cuda

    def test(self):
        return self._done.done

    def wait(self):
        self._cuda.get_current_stream().wait_event(self._done)


class NcclCommunicator:
    """``bootstrap``: a communicator for objects (``mpi.MpiCommunicator``) whose ranks are
    this one's. ``nccl`` and ``cuda``: the modules ``cupy.cuda.nccl`` and ``cupy.cuda`` (or
    stand-ins); ``pointer(array)``: an array's device address, on ``device``."""

    backend = "nccl"

    def __init__(self, bootstrap, nccl=None, cuda=None, pointer=None, device="cuda"):
        self.device = device
        if nccl is None or cuda is None:
            import cupy.cuda
            from cupy.cuda import nccl as cupy_nccl
            nccl, cuda = nccl or cupy_nccl, cuda or cupy.cuda
        self.nccl, self.cuda = nccl, cuda
        self.pointer = pointer or (lambda a: a.data.ptr)
        self.bootstrap, self.rank, self.size = bootstrap, bootstrap.rank, bootstrap.size
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = bootstrap.broadcast_object(uid, 0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self.stream = cuda.Stream(non_blocking=True)

    def _launch(self, call, wait):
        """Runs ``call(stream_ptr)`` on the collective stream after the current stream's work
        (with ``wait``, the current stream then waits for it)."""
        ready = self.cuda.Event()
        ready.record(self.cuda.get_current_stream())
        self.stream.wait_event(ready)
        call(self.stream.ptr)
        done = self.cuda.Event()
        done.record(self.stream)
        request = _Request(done, self.cuda)
        if wait:
            request.wait()
        return request

    def _dtype(self, array):
        name = _DTYPES.get(str(array.dtype))
        if name is None:
            raise TypeError(f"NCCL cannot reduce {array.dtype} arrays")
        return getattr(self.nccl, name)

    def allreduce(self, array, op, wait=False):
        """Reduces ``array`` in place across the ranks with ``op`` (NCCL
        allReduce on the collective stream); returns its request."""
        p, n, t = self.pointer(array), array.size, self._dtype(array)
        o = getattr(self.nccl, _OPS[op])
        return self._launch(lambda s: self.comm.allReduce(p, p, n, t, o, s), wait)

    def broadcast(self, array, src, wait=False):
        """Copies rank ``src``'s ``array`` into every rank's, in place (NCCL
        bcast); returns its request."""
        p, n, t = self.pointer(array), array.size, self._dtype(array)
        return self._launch(lambda s: self.comm.bcast(p, n, t, src, s), wait)

    def allgather(self, send, recv, wait=False):
        """Gathers every rank's ``send`` into ``recv[rank]`` on all ranks
        (NCCL allGather); returns its request."""
        ps, pr, n, t = self.pointer(send), self.pointer(recv), send.size, self._dtype(send)
        return self._launch(lambda s: self.comm.allGather(ps, pr, n, t, s), wait)

    def reduce_scatter(self, send, recv, op, wait=False):
        """Reduces ``send`` across the ranks with ``op`` and leaves
        block ``rank`` in ``recv`` (NCCL reduceScatter); returns its request."""
        ps, pr, n, t = self.pointer(send), self.pointer(recv), recv.size, self._dtype(send)
        o = getattr(self.nccl, _OPS[op])
        return self._launch(lambda s: self.comm.reduceScatter(ps, pr, n, t, o, s), wait)

    def barrier(self, wait=False):
        """Synchronizes the current stream, then a barrier over the bootstrap
        communicator; returns its request."""
        self.cuda.get_current_stream().synchronize()
        return self.bootstrap.barrier(wait)

    def allgather_object(self, obj):
        """A list of every rank's ``obj``, by rank (over the bootstrap)."""
        return self.bootstrap.allgather_object(obj)

    def broadcast_object(self, obj, src):
        """Rank ``src``'s ``obj``, on every rank (over the bootstrap)."""
        return self.bootstrap.broadcast_object(obj, src)

    def local_rank(self):
        """This process's index among the ranks on its machine (the
        bootstrap's)."""
        return self.bootstrap.local_rank()

    def abort(self, code=1):
        """Aborts the whole job through the bootstrap communicator."""
        self.bootstrap.abort(code)

    def close(self):
        """Destroys the NCCL communicator, then closes the bootstrap one."""
        self.comm.destroy()
        self.bootstrap.close()


def init_nccl(comm=None):
    """The NCCL communicator of an MPI job, each rank on its machine's next GPU."""
    from .mpi import MpiCommunicator
    try:
        import cupy.cuda
        from cupy.cuda import nccl
    except ImportError as e:
        raise ImportError(f'the "nccl" backend needs CuPy with NCCL ({e}): pip install '
                          '"gradflow[cuda12,mpi]" (or cuda13)') from e
    if not getattr(nccl, "available", True):
        raise RuntimeError("the \"nccl\" backend: CuPy cannot load NCCL; install it (python -m "
                           "cupyx.tools.install_library --library nccl --cuda 12.x) or use "
                           "backend='mpi'")
    bootstrap = MpiCommunicator(comm)
    cupy.cuda.Device(bootstrap.local_rank() % cupy.cuda.runtime.getDeviceCount()).use()
    return NcclCommunicator(bootstrap, nccl, cupy.cuda)
