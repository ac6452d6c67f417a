"""gradflow: a tensor autograd engine with a C++ CPU backend and a CuPy CUDA backend."""

from . import _blas

_blas.preload()
from . import _C  # noqa: E402

get_num_threads = _C.get_num_threads
set_num_threads = _C.set_num_threads

__version__ = "0.1.0"
