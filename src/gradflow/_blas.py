"""Loads the OpenBLAS from the scipy-openblas32 wheel before the extension that links it, and
tunes how the thread pools idle, before either starts.

The extension also carries an rpath to the BLAS, but loading it by path here makes the import
work whatever the install layout (editable, wheel, in-tree build)."""

import ctypes
import os


def preload() -> None:
    # The BLAS runs its jobs on OpenMP's threads (see use_one_thread_pool in csrc/common.cpp), so
    # OpenBLAS's own threads, started when the library loads, never get work: 2^4 cycles of
    # spinning instead of 2^28 sends them to sleep at once. Read at load; a user's setting wins.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    # libgomp's idle workers spin ~300,000 pauses (milliseconds) before sleeping, holding cores
    # that other thread pools in the process (numpy's BLAS, PyTorch) need. 10,000 keeps
    # back-to-back kernels as fast as the default does; fully passive waiting made them slower.
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    import scipy_openblas32

    lib_dir = scipy_openblas32.get_lib_dir()
    ctypes.CDLL(os.path.join(lib_dir, scipy_openblas32.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)
