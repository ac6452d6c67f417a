"""Stream capture in the stand-in, as CUDA does it: while a capturing stream is current, device
work is recorded into the stream's graph, not done. The host computes synchronously, so a
captured call runs at once (to know its results' shapes) and then undoes itself: its operands
are restored and the arrays it made are filled with garbage (NaN for floats), as memory no
kernel has written yet. Each launch of the graph runs the recorded calls again, in order, into
the arrays the capture returned. Reading values on the host during a capture raises, as
cudaErrorStreamCaptureUnsupported does."""

import functools
import threading

import numpy as np

from . import cuda

_inside = threading.local()  # a captured call running: the calls it makes are part of it


def _arrays(obj, ndarray, out):
    if isinstance(obj, ndarray):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            _arrays(x, ndarray, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _arrays(x, ndarray, out)
    return out


def _garbage(a):
    kind = a.dtype.kind
    a._a[...] = np.nan if kind in "fc" else (True if kind == "b" else -1)


def device_work(fn, ndarray):
    """``fn`` (a function or method doing device work), recorded when a stream captures."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        stream = cuda.get_current_stream()
        if stream._work is None or getattr(_inside, "on", False):
            return fn(*args, **kwargs)
        operands = _arrays((args, kwargs), ndarray, [])
        saved = [(a, a._a.copy()) for a in operands if a._a.flags.writeable]
        _inside.on = True
        try:
            result = fn(*args, **kwargs)
        finally:
            _inside.on = False
            for a, before in saved:
                a._a[...] = before
        made = [r for r in _arrays(result, ndarray, [])
                if all(r._mem is not a._mem for a in operands)]
        for r in made:
            _garbage(r)

        def launch():
            _inside.on = True
            try:
                again = fn(*args, **kwargs)
            finally:
                _inside.on = False
            for r, new in zip(_arrays(result, ndarray, []), _arrays(again, ndarray, [])):
                if any(r is m for m in made):
                    r._a[...] = new._a

        stream._work.append(launch)
        return result

    return run


def host_read(fn):
    """``fn`` (a copy of device values to the host), refused while a stream captures."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        if cuda.get_current_stream()._work is not None:
            raise cuda.CUDARuntimeError("cudaErrorStreamCaptureUnsupported: operation not "
                                        "permitted when stream is capturing")
        return fn(*args, **kwargs)

    return run


HOST_READS = "get item tolist __bool__ __float__ __int__ __complex__".split()
METHODS = """copy astype fill __setitem__ __getitem__ sum mean max min argmax any all dot clip
ravel flatten reshape""".split()
NOT_WORK = """get_array_module get_default_memory_pool may_share_memory shares_memory from_dlpack
isscalar result_type promote_types can_cast builtins_any""".split()


def install(module):
    """Makes the stand-in's device work capturable: module functions, ufuncs, array methods."""
    ndarray = module.ndarray
    for name in HOST_READS:
        setattr(ndarray, name, host_read(getattr(ndarray, name)))
    for name in METHODS:
        setattr(ndarray, name, device_work(getattr(ndarray, name), ndarray))
    module.ufunc.__call__ = device_work(module.ufunc.__call__, ndarray)
    module.ufunc.at = device_work(module.ufunc.at, ndarray)
    for k in (module.ElementwiseKernel, module.ReductionKernel):
        k.__call__ = device_work(k.__call__, ndarray)
    for mod in (module, module.random, module.linalg):
        for name, fn in list(vars(mod).items()):
            if (callable(fn) and not isinstance(fn, (type, module.ufunc)) and not name.startswith("_")
                    and getattr(fn, "__module__", "").startswith("cupy") and name not in NOT_WORK):
                setattr(mod, name, host_read(fn) if name == "asnumpy"
                        else device_work(fn, ndarray))
