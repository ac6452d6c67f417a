"""Loads the OpenBLAS from the scipy-openblas32 wheel before the extension that links it, and
tunes how the two thread pools (OpenBLAS's and OpenMP's) idle, before either starts.

The extension also carries an rpath to the BLAS, but loading it by path here makes the import
work whatever the install layout (editable, wheel, in-tree build)."""

import ctypes
import os


def preload() -> None:
    # OpenBLAS's idle threads spin for about 2^28 cycles after a GEMM, holding the cores that
    # the OpenMP kernel which typically follows needs: on 2 cores a GEMM then an optimizer step
    # took 8 ms instead of 0.6 ms. 2^4 cycles makes them sleep at once. Read when the library
    # loads, so it must be set before; a user's own setting wins.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    # The same holds the other way: libgomp's idle workers spin ~300,000 pauses (milliseconds)
    # before sleeping, stalling the GEMM that follows an OpenMP kernel (784-512-512-10 step:
    # 6.1 ms -> 2.7 ms at batch 64). 10,000 keeps back-to-back OpenMP kernels as fast as the
    # default does; fully passive waiting made them slower.
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    import scipy_openblas32

    lib_dir = scipy_openblas32.get_lib_dir()
    ctypes.CDLL(os.path.join(lib_dir, scipy_openblas32.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)
