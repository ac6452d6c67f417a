"""CuPy's float32 GEMM compute type switch (cupy._core._routines_linalg)."""

COMPUTE_TYPE_TBD, COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_PEDANTIC = 0, 1, 2
COMPUTE_TYPE_FP16, COMPUTE_TYPE_FP32, COMPUTE_TYPE_FP64 = 3, 4, 5
COMPUTE_TYPE_BF16, COMPUTE_TYPE_TF32 = 6, 7

_types = {}


def set_compute_type(dtype, compute_type):
    import numpy as np

    _types[np.dtype(dtype)] = compute_type


def get_compute_type(dtype):
    import os

    import numpy as np

    dt = np.dtype(dtype)
    if dt not in _types:  # seeded from CUPY_TF32 on first use, as CuPy does
        _types[dt] = COMPUTE_TYPE_TF32 if os.environ.get("CUPY_TF32", "0") != "0" else COMPUTE_TYPE_DEFAULT
    return _types[dt]
