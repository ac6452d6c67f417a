"""The CPU communicator: MPI through mpi4py (by default MPICH's wheel, ``gradflow[mpi]``; on a
cluster mpi4py is built against the site's MPI).

MPI only moves data inside MPI calls (there is no progress thread by default), so a pending
nonblocking collective advances when its request is tested or waited on.
"""

import os
import sys

_OPS = None  # "sum" -> MPI.SUM, ..., filled on first use


def import_mpi():
    """mpi4py's MPI module (initialising MPI), or ImportError saying how to install it."""
    if "mpi4py.MPI" not in sys.modules:
        from .launch import apply_mpi_defaults
        apply_mpi_defaults(os.environ)  # before MPI_Init reads them
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(
            f'gradflow.distributed\'s "mpi" backend needs mpi4py ({e}); install it with '
            'pip install "gradflow[mpi]" (mpi4py and MPICH), or build mpi4py against your '
            'MPI: pip install mpi4py') from e
    return MPI


class _Request:
    __slots__ = ("_req",)

    def __init__(self, req):
        self._req = req

    def test(self):
        return self._req.Test()

    def wait(self):
        self._req.Wait()


class _Done:
    """The request of a collective that ran blocking."""

    __slots__ = ()

    def test(self):
        return True

    def wait(self):
        pass


DONE = _Done()


class MpiCommunicator:
    """Collectives on numpy arrays over a duplicate of ``comm`` (default COMM_WORLD), so that
    gradflow's traffic never matches a user's messages on the same communicator."""

    backend, device = "mpi", "cpu"

    def __init__(self, comm=None):
        global _OPS
        MPI = import_mpi()
        self.MPI = MPI
        self.comm = (comm if comm is not None else MPI.COMM_WORLD).Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        if _OPS is None:
            _OPS = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def allreduce(self, array, op, wait=False):
        """Reduces ``array`` in place across the ranks with ``op`` (MPI
        Iallreduce, or Allreduce with ``wait``); returns its request."""
        if wait:
            self.comm.Allreduce(self.MPI.IN_PLACE, array, op=_OPS[op])
            return DONE
        return _Request(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=_OPS[op]))

    def broadcast(self, array, src, wait=False):
        """Copies rank ``src``'s ``array`` into every rank's, in place
        (Ibcast, or Bcast with ``wait``); returns its request."""
        if wait:
            self.comm.Bcast(array, root=src)
            return DONE
        return _Request(self.comm.Ibcast(array, root=src))

    def allgather(self, send, recv, wait=False):
        """Gathers every rank's ``send`` into ``recv[rank]`` on all ranks
        (Iallgather, or Allgather with ``wait``); returns its request."""
        if wait:
            self.comm.Allgather(send, recv)
            return DONE
        return _Request(self.comm.Iallgather(send, recv))

    def reduce_scatter(self, send, recv, op, wait=False):
        """Reduces ``send`` across the ranks with ``op`` and leaves
        block ``rank`` in ``recv`` (Ireduce_scatter_block); returns its request."""
        if wait:
            self.comm.Reduce_scatter_block(send, recv, op=_OPS[op])
            return DONE
        return _Request(self.comm.Ireduce_scatter_block(send, recv, op=_OPS[op]))

    def barrier(self, wait=False):
        """Waits for every rank (Ibarrier, or Barrier with ``wait``); returns its
        request."""
        if wait:
            self.comm.Barrier()
            return DONE
        return _Request(self.comm.Ibarrier())

    def allgather_object(self, obj):
        """A list of every rank's (picklable) ``obj``, by rank."""
        return self.comm.allgather(obj)

    def broadcast_object(self, obj, src):
        """Rank ``src``'s (picklable) ``obj``, on every rank."""
        return self.comm.bcast(obj, root=src)

    def local_rank(self):
        """This process's index among the ranks on its machine."""
        shared = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return shared.Get_rank()
        finally:
            shared.Free()

    def abort(self, code=1):
        """Aborts the whole MPI job (COMM_WORLD) with exit code ``code``."""
        self.MPI.COMM_WORLD.Abort(code)  # (still there once this communicator is freed)

    def close(self):
        """Frees the duplicated communicator (unless MPI is already finalized)."""
        if not self.MPI.Is_finalized():
            self.comm.Free()
