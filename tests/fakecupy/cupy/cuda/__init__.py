"""The stand-in's cupy.cuda: N fake devices (GRADFLOW_TEST_FAKE_CUDA=N), a current device per
thread, a memory pool with CuPy's accounting, events that do nothing (the work has already been
done when a call returns) and streams whose capture records the work into a replayable graph."""

import contextlib
import threading
import time
import weakref

import numpy as np

from . import runtime  # noqa: F401  (cupy.cuda.runtime)
from .runtime import CUDARuntimeError, device_count

_local = threading.local()


def _current_id():
    return getattr(_local, "device", 0)


class Device:
    """cupy.cuda.Device: ``with Device(i):`` makes device i current for this thread."""

    def __init__(self, device=None):
        self.id = _current_id() if device is None else int(device)
        self._stack = []

    def _check(self):
        if not 0 <= self.id < device_count():
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    def use(self):
        self._check()
        _local.device = self.id

    def __enter__(self):
        self._check()
        self._stack.append(_current_id())
        _local.device = self.id
        return self

    def __exit__(self, *exc):
        _local.device = self._stack.pop()

    def synchronize(self):
        pass

    @property
    def compute_capability(self):
        return "90"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


# ---- memory: every array's bytes come from the current allocator, as in CuPy -----------------
_ROUND = 512  # CuPy's pool rounds each allocation up to a multiple of 512 bytes


class _Chunk:
    """One allocation: host bytes standing in for device memory."""

    def __init__(self, nbytes, device_id, pool):
        self.buf = np.empty(max(nbytes, 1), np.uint8)
        self.size = nbytes
        self.device_id = device_id
        self.ptr = self.buf.ctypes.data
        if pool is not None:
            pool._used[device_id] = pool._used.get(device_id, 0) + nbytes
            weakref.finalize(self, pool._release, device_id, nbytes)


class MemoryPointer:
    def __init__(self, mem, offset=0):
        self.mem = mem
        self.offset = offset
        self.ptr = mem.ptr + offset
        self.device_id = mem.device_id

    @property
    def device(self):
        return Device(self.device_id)


class MemoryPool:
    """CuPy's pool per device: used bytes (live arrays) and free bytes kept for reuse until
    free_all_blocks() hands them back."""

    def __init__(self):
        self._used, self._free = {}, {}

    def malloc(self, nbytes):
        dev = _current_id()
        size = -(-nbytes // _ROUND) * _ROUND if nbytes else 0
        self._free[dev] = max(0, self._free.get(dev, 0) - size)  # reuses a freed block
        return MemoryPointer(_Chunk(size, dev, self))

    def _release(self, dev, size):
        self._used[dev] -= size
        self._free[dev] = self._free.get(dev, 0) + size

    def used_bytes(self):
        return self._used.get(_current_id(), 0)

    def free_bytes(self):
        return self._free.get(_current_id(), 0)

    def total_bytes(self):
        return self.used_bytes() + self.free_bytes()

    def free_all_blocks(self, stream=None):
        self._free[_current_id()] = 0


_default_pool = MemoryPool()
_allocator = _default_pool.malloc


def set_allocator(allocator=None):
    global _allocator
    _allocator = allocator if allocator is not None else (lambda n: MemoryPointer(_Chunk(n, _current_id(), None)))


@contextlib.contextmanager
def using_allocator(allocator=None):
    """Allocations inside the block come from ``allocator`` (the pool's default when None)."""
    global _allocator
    prev = _allocator
    set_allocator(allocator)
    try:
        yield
    finally:
        _allocator = prev


def get_allocator():
    return _allocator


def alloc(nbytes):
    return _allocator(nbytes)


# ---- streams, and stream capture into graphs ---------------------------------------------------
class Stream:
    """A stream: the host computes synchronously, so ordering needs nothing. ``with stream:``
    makes it current in this thread. Between ``begin_capture`` and ``end_capture`` the device
    work issued while it is current is recorded, not done (see ``cupy._capture``), and
    ``end_capture`` returns it as a :class:`Graph`."""

    null = None

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.ptr = 0 if null else id(self)
        self._work = None  # while capturing: the recorded device work

    def synchronize(self):
        if self._work is not None:
            raise CUDARuntimeError("cudaErrorStreamCaptureUnsupported: operation not permitted "
                                   "when stream is capturing")

    def use(self):
        _local.streams = [self]
        return self

    def __enter__(self):
        _local.__dict__.setdefault("streams", []).append(self)
        return self

    def __exit__(self, *exc):
        _local.streams.pop()

    def begin_capture(self, mode=None):
        if self.ptr == 0:
            raise RuntimeError("cannot capture on the default (null) stream")
        if self._work is not None:
            raise CUDARuntimeError("cudaErrorIllegalState: the stream is already capturing")
        self._work = []

    def is_capturing(self):
        return self._work is not None

    def end_capture(self):
        if self._work is None:
            raise CUDARuntimeError("cudaErrorIllegalState: the stream is not capturing")
        work, self._work = self._work, None
        return Graph(work)


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    streams = getattr(_local, "streams", None)
    return streams[-1] if streams else Stream.null


class Graph:
    """cupy.cuda.graph.Graph: the device work of a stream capture, run again by each launch
    (into the same arrays: the results land where the captured work put them)."""

    def __init__(self, work):
        self._work = work

    def launch(self, stream=None):
        if get_current_stream()._work is not None:
            raise CUDARuntimeError("cudaErrorStreamCaptureUnsupported: a graph launched while "
                                   "capturing")
        for run in self._work:
            run()

    def upload(self, stream=None):
        pass


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = time.perf_counter()

    def synchronize(self):
        pass

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    return (end_event._t - start_event._t) * 1e3


def is_available():
    return device_count() > 0


def get_device_id():
    return _current_id()

