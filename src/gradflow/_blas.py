"""Loads the OpenBLAS from the scipy-openblas32 wheel before the extension that links it, and
tunes how OpenBLAS's own threads idle, before they start.

The extension also carries an rpath to the BLAS, but loading it by path here makes the import
work whatever the install layout (editable, wheel, in-tree build)."""

import ctypes
import os


def preload() -> None:
    # The BLAS runs its jobs on OpenMP's threads (see init_threads in csrc/common.cpp), so
    # OpenBLAS's own threads, started when the library loads, never get work: 2^4 cycles of
    # spinning instead of 2^28 sends them to sleep at once. OpenBLAS reads the variable while it
    # loads; it is removed again afterwards, so that it reaches neither another OpenBLAS loaded
    # later (numpy's) nor child processes. A user's own setting is left alone.
    ours = "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    if ours:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    # (libgomp's own spin-then-sleep default is kept: with one pool, the workers that spin
    # between kernels are the ones the next GEMM uses; capping the spin made a 784-512-512-10
    # training step's median 10-40% slower.)
    try:
        import scipy_openblas32

        lib_dir = scipy_openblas32.get_lib_dir()
        ctypes.CDLL(os.path.join(lib_dir, scipy_openblas32.get_library(fullname=True)),
                    mode=ctypes.RTLD_GLOBAL)
    finally:
        if ours:
            del os.environ["OPENBLAS_THREAD_TIMEOUT"]
