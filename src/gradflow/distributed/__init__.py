"""Data-parallel training across processes and machines (PyTorch's torch.distributed names).

Ranks are started by an MPI launcher (``mpiexec``; see ``gradflow.distributed.launch``) and
``init_process_group`` takes rank and size from it. Backends: ``"mpi"`` (CPU tensors, mpi4py)
and ``"nccl"`` (CUDA tensors, NCCL through ``cupy.cuda.nccl``, bootstrapped over MPI). The
collectives work in place on tensors, every rank calling the same ones in the same order;
``async_op=True`` returns a :class:`Work` to ``wait()`` on.
"""

import atexit
import os
import sys
import time

from .. import dtypes as _dtypes
from .._jit import trace as _jit_trace
from ..tensor import Tensor
from . import debug as _debug
from .work import ReduceOp, Work, reduce_op

__all__ = ["init_process_group", "is_initialized", "is_available", "get_rank", "get_world_size",
           "get_backend", "all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier",
           "destroy_process_group", "ReduceOp", "Work"]

_group = None  # the default communicator


def is_available():
    """Whether mpi4py can be imported (the MPI backend, and NCCL's bootstrap, need it)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def init_process_group(backend="mpi", comm=None):
    """Joins the job the MPI launcher started: afterwards ``get_rank()``/``get_world_size()``
    are MPI's. ``comm``: an mpi4py communicator to use instead of COMM_WORLD. Unless
    OMP_NUM_THREADS is set, each rank computes on one thread (``gf.set_num_threads(1)``)."""
    global _group
    if _group is not None:
        raise RuntimeError("init_process_group: the default process group is already initialised")
    threads_chosen = "OMP_NUM_THREADS" in os.environ
    if backend == "mpi":
        from .mpi import MpiCommunicator
        group = MpiCommunicator(comm)
    elif backend == "nccl":
        from .nccl import init_nccl
        group = init_nccl(comm)
    else:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; use 'mpi' or 'nccl'")
    if not threads_chosen:
        from .. import set_num_threads
        set_num_threads(1)
    _install_abort_on_error(group)
    _group = _debug.CheckedCommunicator(group) if _debug.enabled() else group
    atexit.unregister(destroy_process_group)  # (once, however often a group is started)
    atexit.register(destroy_process_group)


def _install_abort_on_error(group):
    """An uncaught exception on one rank ends the whole job (after printing its traceback)
    instead of leaving the others waiting in a collective; ``python -m mpi4py`` does the same
    for the main script."""
    if group.size == 1 or getattr(sys.excepthook, "aborts_the_job", False):
        return
    previous = sys.excepthook

    def abort(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        # The launcher forwards each rank's output on its own time, and an abort kills every
        # rank at once: a moment's wait lets this traceback (and a failing peer's) get through.
        time.sleep(0.5)
        group.abort(1)

    abort.aborts_the_job = True
    sys.excepthook = abort


def is_initialized():
    """Whether the default process group has been initialised."""
    return _group is not None


def _default(group):
    if group is not None:
        return group
    if _group is None:
        raise RuntimeError("gradflow.distributed: call init_process_group() first (and start the "
                           "program with mpiexec: see python -m gradflow.distributed.launch)")
    return _group


def get_rank(group=None):
    """This process's rank in ``group`` (default: the default process group)."""
    return _default(group).rank


def get_world_size(group=None):
    """The number of ranks in ``group`` (default: the default process group)."""
    return _default(group).size


def get_backend(group=None):
    """The backend name ("mpi" or "nccl") of ``group`` (default: the default group)."""
    return _default(group).backend


def destroy_process_group():
    """Leaves the default group (registered at exit too; a second call does nothing)."""
    global _group
    if _group is None:
        return
    group, _group = _group, None
    if isinstance(group, _debug.CheckedCommunicator):
        group.check("destroy_process_group")  # a rank still inside a collective hears of it
    group.close()


# ---- collectives on tensors -----------------------------------------------------------------------
def _check(tensor, what, comm):
    _jit_trace.refuse(f"{what}: a collective (communication a replay would not run)")
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: expected a gradflow Tensor, got {type(tensor).__name__}")
    # (NCCL has ncclBfloat16; mpi4py cannot even take the buffer. comm None: a list's entries,
    # of the dtype of a tensor checked with the communicator)
    if _dtypes.is_bfloat16(tensor.dtype) and comm is not None and comm.backend != "nccl":
        raise TypeError(f"{what}: bfloat16 tensors cannot be communicated over the "
                        f"{comm.backend} backend (MPI has no bfloat16 type): send a float32 copy "
                        "(t.float()), or use the nccl backend")
    check_device(comm, tensor.device, what)


def check_device(comm, device, what):
    """A clear error for a tensor on a device the group's communicator does not reach."""
    wanted = getattr(comm, "device", None)  # "cpu" or "cuda"; None: any
    if wanted is not None and device.split(":")[0] != wanted:
        other = "init_process_group('nccl')" if wanted == "cpu" else "init_process_group('mpi')"
        raise RuntimeError(f"{what}: the {comm.backend} backend communicates {wanted} tensors, "
                           f"this one is on {device}; move it with .to('{wanted}') or start "
                           f"the group with {other}")


def _buffer(tensor):
    """(contiguous array to communicate in, finish() that puts it back into the tensor)."""
    arr = tensor.array
    if arr.flags.c_contiguous and getattr(arr.flags, "writeable", True):
        return arr, lambda: _modified(tensor)
    buf = tensor._be.xp.ascontiguousarray(arr)

    def finish():
        tensor.array[...] = buf
        _modified(tensor)
    return buf, finish


def _modified(tensor):
    tensor._vbox[0] += 1  # as any in-place op: a saved copy of it is now stale


def _run(request, finish, async_op):
    """A Work for ``request``, or (the collective having run blocking) None once finished."""
    if async_op:
        return Work(request, finish)
    if finish is not None:
        finish()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Replaces ``tensor`` on every rank by the reduction (sum, avg, max, min) over ranks."""
    comm, op = _default(group), reduce_op(op)
    _check(tensor, "all_reduce", comm)
    if op == ReduceOp.AVG and not _dtypes.is_float(tensor.dtype):
        raise TypeError(f"all_reduce: op='avg' needs a floating-point tensor, got {tensor.dtype}")
    buf, put_back = _buffer(tensor)

    def finish():
        if op == ReduceOp.AVG:
            buf[...] /= comm.size
        put_back()
    return _run(comm.allreduce(buf, "sum" if op == ReduceOp.AVG else op, not async_op), finish,
                async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Replaces ``tensor`` on every rank by rank ``src``'s."""
    comm = _default(group)
    _check(tensor, "broadcast", comm)
    if not 0 <= src < comm.size:
        raise ValueError(f"broadcast: src {src} is not a rank of a group of {comm.size}")
    buf, put_back = _buffer(tensor)
    return _run(comm.broadcast(buf, src, not async_op), put_back, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """``tensor_list[r]`` receives rank r's ``tensor`` (same shape and dtype on every rank)."""
    comm = _default(group)
    _check(tensor, "all_gather", comm)
    _check_list(tensor_list, tensor, comm.size, "all_gather")
    xp = tensor._be.xp
    send = xp.ascontiguousarray(tensor.array)
    recv = xp.empty((comm.size,) + send.shape, send.dtype)

    def finish():
        for r, out in enumerate(tensor_list):
            out.array[...] = recv[r]
            _modified(out)
    return _run(comm.allgather(send, recv, not async_op), finish, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` on rank r receives the reduction over ranks of their ``input_list[r]``."""
    comm, op = _default(group), reduce_op(op)
    _check(output, "reduce_scatter", comm)
    _check_list(input_list, output, comm.size, "reduce_scatter")
    xp = output._be.xp
    send = xp.stack([t.array for t in input_list])
    recv = xp.empty(output.array.shape, output.array.dtype)

    def finish():
        if op == ReduceOp.AVG:
            recv[...] /= comm.size
        output.array[...] = recv
        _modified(output)
    return _run(comm.reduce_scatter(send, recv, "sum" if op == ReduceOp.AVG else op,
                                    not async_op), finish, async_op)


def _check_list(tensors, like, size, what):
    if len(tensors) != size:
        raise ValueError(f"{what}: expected a list of {size} tensors (one per rank), got "
                         f"{len(tensors)}")
    for i, t in enumerate(tensors):
        _check(t, what, None)
        if t.shape != like.shape or t.dtype != like.dtype or t.device != like.device:
            raise ValueError(f"{what}: tensor {i} is {t.dtype}{list(t.shape)} on {t.device}, "
                             f"expected {like.dtype}{list(like.shape)} on {like.device}")


def barrier(group=None, async_op=False):
    """Returns once every rank has called it."""
    return _run(_default(group).barrier(not async_op), None, async_op)

