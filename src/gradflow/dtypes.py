"""dtypes are numpy dtypes; gf.float32 is np.dtype('float32')."""

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
default_float = float32


def as_dtype(dtype):
    """None -> None; gf.float32 / np.float32 / 'float32' -> np.dtype('float32')."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def is_dtype_name(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def check_supported(dtype, where):
    """``dtype`` if tensors can hold it (bool, integers, floats); a TypeError naming ``where``
    otherwise: complex data would lose its imaginary part in the real kernels."""
    if dtype.kind not in "biuf":
        what = "complex numbers are" if dtype.kind == "c" else f"dtype {dtype} is"
        raise TypeError(f"{where}: {what} not supported (tensors hold bool, integer or float data)")
    return dtype


def is_float(dtype) -> bool:
    return dtype.kind == "f"
