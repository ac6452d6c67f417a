"""Loads the OpenBLAS from the scipy-openblas32 wheel before the extension that links it, with
none of OpenBLAS's own threads.

gradflow calls the BLAS single-threaded only and splits a product across its own thread pool
(see init_threads in csrc/common.cpp), so the threads OpenBLAS starts while it loads would
never get work: OPENBLAS_NUM_THREADS=1 while it loads keeps it from starting them. The
variable is put back as it was afterwards, so that it reaches neither another OpenBLAS loaded
later (numpy's) nor child processes.

The extension also carries an rpath to the BLAS, but loading it by path here makes the import
work whatever the install layout (editable, wheel, in-tree build)."""

import ctypes
import os


def preload() -> None:
    user = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import scipy_openblas32

        lib_dir = scipy_openblas32.get_lib_dir()
        ctypes.CDLL(os.path.join(lib_dir, scipy_openblas32.get_library(fullname=True)),
                    mode=ctypes.RTLD_GLOBAL)
    finally:
        if user is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = user
