"""Loads the OpenBLAS from the scipy-openblas32 wheel before the extension that links it.

The extension also carries an rpath to it, but loading it by path here makes the import work
whatever the install layout (editable, wheel, in-tree build)."""

import ctypes
import os


def preload() -> None:
    import scipy_openblas32

    lib_dir = scipy_openblas32.get_lib_dir()
    ctypes.CDLL(os.path.join(lib_dir, scipy_openblas32.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)
