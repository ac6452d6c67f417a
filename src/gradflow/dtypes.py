"""dtypes are numpy dtypes; gf.float32 is np.dtype('float32'). PyTorch's aliases name the same
objects (gf.float is gf.float32, gf.long is gf.int64, ...)."""

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
half, double, short, long = float16, float64, int16, int64
default_float = float32

# Tensors hold numpy (or CuPy) arrays, which have no bfloat16 type of their own.
BFLOAT16_UNSUPPORTED = ("bfloat16 is not supported: gradflow's tensors hold numpy arrays, and "
                        "numpy has no bfloat16 dtype; use float16 or float32")

# PyTorch's names that are Python builtins (gf.float, gf.int, gf.bool), exported as such.
TORCH_ALIASES = {"float": float32, "int": int32, "bool": bool_}


def as_dtype(dtype):
    """None -> None; gf.float32 / np.float32 / 'float32' / Python float -> np.dtype('float32')
    (a Python type means what it means in PyTorch: float -> the default float, int -> int64)."""
    if dtype is None:
        return None
    if dtype is float:
        return default_float
    if dtype is int:
        return int64
    if isinstance(dtype, str) and dtype.startswith("torch."):
        dtype = dtype[6:]
    if dtype == "bfloat16":
        raise TypeError(BFLOAT16_UNSUPPORTED)
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def is_dtype_name(name: str) -> bool:
    """Whether ``name`` names a dtype (one numpy understands, or "bfloat16", which as_dtype
    rejects with the reason)."""
    if name in ("bfloat16", "torch.bfloat16"):
        return True
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
    """Whether ``dtype`` is a floating-point dtype."""
    return dtype.kind == "f"


def get_default_dtype():
    """The dtype floats get when none is given (float32 unless set_default_dtype changed it)."""
    return default_float


def set_default_dtype(dtype):
    """Sets the default float dtype (float32 or float64), as torch.set_default_dtype."""
    global default_float
    dt = as_dtype(dtype)
    if dt not in (float16, float32, float64):
        raise TypeError(f"set_default_dtype: only floating-point dtypes, got {dt}")
    default_float = dt


CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}  # bool < integer < float, by dtype.kind


def promote_types(type1, type2):
    """The dtype two tensors of these dtypes combine to, by PyTorch's rules (the higher of bool <
    integer < float; within one, the wider: int64 with float32 gives float32)."""
    a, b = as_dtype(type1), as_dtype(type2)
    ca, cb = CATEGORY[a.kind], CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def can_cast(from_, to):
    """Whether PyTorch lets an op's result of dtype ``from_`` be written into ``to``: not to a
    lower category (float to integer, integer to bool)."""
    return CATEGORY[as_dtype(from_).kind] <= CATEGORY[as_dtype(to).kind]


def result_type(tensor1, tensor2):
    """The dtype of ``tensor1 op tensor2`` (tensors or Python numbers), by PyTorch's rules."""
    from .ops._util import promote
    from .tensor import Tensor, tensor

    if not isinstance(tensor1, Tensor) and not isinstance(tensor2, Tensor):
        tensor1 = tensor(tensor1)  # two numbers: as a 0-d tensor and a number
    return promote(tensor1, tensor2)[0].dtype
