"""Devices and the backend (a flat module of array kernels) that serves each.

A device is ``"cpu"`` or ``"cuda:N"``. ``get(device)`` returns the backend module for it:
:mod:`gradflow.backend.cpu` (numpy arrays, C++ kernels) or :mod:`gradflow.backend.cuda`
(CuPy arrays, CuPy kernels), both with the interface of :mod:`gradflow.backend.reference`.
CuPy is imported only when a CUDA device is first asked for.
"""

from . import cpu

_backends = {"cpu": cpu}


def canonical_device(device) -> str:
    """'cpu' | 'cuda' | 'cuda:N' (or an object whose str() is one) -> 'cpu' or 'cuda:N'."""
    if device is None:
        return "cpu"
    s = str(device)
    if s in _backends:  # "cpu", and CUDA devices already in use
        return s
    if s == "cuda" or s.startswith("cuda:"):
        index = s[5:] if s != "cuda" else "0"
        if not index.isdigit():
            raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        return f"cuda:{int(index)}"
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def get(device: str):
    """The backend module for a canonical device string (see canonical_device)."""
    try:
        return _backends[device]
    except KeyError:
        pass
    from . import cuda  # imports CuPy; raises RuntimeError saying what is missing

    _backends[device] = cuda.for_device(int(device[5:]))
    return _backends[device]


def device_of_array(a) -> str:
    """The device an array lives on: numpy -> 'cpu', CuPy -> 'cuda:N'."""
    dev = getattr(a, "device", None)
    if dev is None or isinstance(dev, str):  # numpy >= 2 arrays have device == 'cpu'
        return "cpu"
    return f"cuda:{dev.id}"
