"""dtypes are numpy dtypes; gf.float32 is np.dtype('float32'). PyTorch's aliases name the same
objects (gf.float is gf.float32, gf.long is gf.int64, ...). gf.bfloat16 is ml_dtypes' numpy
bfloat16 type (kind 'V', not 'f': use is_float, not dtype.kind, to ask for a float dtype)."""

import numpy as np

try:
    import ml_dtypes as _ml_dtypes
except ImportError:  # gradflow works without it; only bfloat16 needs it
    _ml_dtypes = None

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

# numpy has no bfloat16 of its own: tensors store it as ml_dtypes' type (ops compute in float32).
bfloat16 = np.dtype(_ml_dtypes.bfloat16) if _ml_dtypes is not None else None
BFLOAT16_MISSING = ("bfloat16 needs the ml_dtypes package (numpy's bfloat16 type), which is not "
                    "installed: pip install ml_dtypes")

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
    if bfloat16 is None and dtype == "bfloat16":
        raise TypeError(BFLOAT16_MISSING)
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def is_dtype_name(name: str) -> bool:
    """Whether ``name`` names a dtype (one numpy understands, or "bfloat16", which as_dtype
    rejects with the reason when ml_dtypes is not installed)."""
    if name in ("bfloat16", "torch.bfloat16"):
        return True
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def check_supported(dtype, where, device="cpu"):
    """``dtype`` if tensors on ``device`` can hold it (bool, integers, floats; bfloat16 on the
    CPU, and on CUDA devices with a CuPy that has it, 14 on); a TypeError naming ``where``
    otherwise: complex data would lose its imaginary part in the real kernels."""
    if dtype.kind not in "biuf" and not is_bfloat16(dtype):
        what = "complex numbers are" if dtype.kind == "c" else f"dtype {dtype} is"
        raise TypeError(f"{where}: {what} not supported (tensors hold bool, integer or float data)")
    if device != "cpu" and is_bfloat16(dtype):
        from .backend import cuda

        if not cuda.has_bfloat16():
            raise TypeError(bfloat16_on_device(where, device, cuda.cp.__version__))
    return dtype


def bfloat16_on_device(where, device, cupy_version):
    """The error message for a bfloat16 tensor asked for on a CUDA device whose CuPy has no
    bfloat16 dtype."""
    return (f"{where}: bfloat16 tensors on {device} need CuPy >= 14 (its ml_dtypes bfloat16 "
            f"support); CuPy {cupy_version} has no bfloat16 dtype: upgrade CuPy, or use float16 "
            "or float32 there (t.float().to(device))")


def via_float32(src, dst) -> bool:
    """Whether a cast from ``src`` to ``dst`` goes through float32, as PyTorch's do: float64
    and integers to a 16-bit float round to float32 first."""
    return is_lowp(dst) and src != float32 and not is_lowp(src)


def is_float(dtype) -> bool:
    """Whether ``dtype`` is a floating-point dtype (bfloat16 included)."""
    return dtype.kind == "f" or dtype is bfloat16  # (a dtype is never None)


def category(dtype) -> int:
    """PyTorch's promotion category of ``dtype``: 0 bool, 1 integer, 2 floating point."""
    return 2 if is_float(dtype) else _KIND_CATEGORY[dtype.kind]


def is_bfloat16(dtype) -> bool:
    """Whether ``dtype`` is bfloat16 (False when ml_dtypes is not installed)."""
    return dtype is bfloat16 and dtype is not None  # (numpy keeps one instance of it)


def is_lowp(dtype) -> bool:
    """Whether ``dtype`` is a 16-bit float (float16, bfloat16): ops on it compute in float32 and
    round once (autograd/lowp.py)."""
    return dtype is float16 or (dtype is bfloat16 and dtype is not None)


def finfo(type=None):
    """Machine limits of a floating dtype (the default float if None), as torch.finfo: ``bits``,
    ``eps``, ``max``, ``min``, ``tiny``/``smallest_normal``, ``resolution``, ``dtype``."""
    dt = default_float if type is None else as_dtype(type)
    if not is_float(dt):
        raise TypeError(f"finfo: expected a floating-point dtype, got {dt}")
    return _ml_dtypes.finfo(dt) if is_bfloat16(dt) else np.finfo(dt)


def get_default_dtype():
    """The dtype floats get when none is given (float32 unless set_default_dtype changed it)."""
    return default_float


def set_default_dtype(dtype):
    """Sets the default float dtype (float32, float64, float16 or bfloat16), as
    torch.set_default_dtype."""
    global default_float
    dt = as_dtype(dtype)
    if dt not in (float16, float32, float64) and not is_bfloat16(dt):
        raise TypeError(f"set_default_dtype: only floating-point dtypes, got {dt}")
    default_float = dt


_KIND_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def promote_types(type1, type2):
    """The dtype two tensors of these dtypes combine to, by PyTorch's rules (the higher of bool <
    integer < float; within one, the wider: int64 with float32 gives float32)."""
    a, b = as_dtype(type1), as_dtype(type2)
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)  # (bfloat16 with float16 is float32, as in PyTorch)


def can_cast(from_, to):
    """Whether PyTorch lets an op's result of dtype ``from_`` be written into ``to``: not to a
    lower category (float to integer, integer to bool)."""
    return category(as_dtype(from_)) <= category(as_dtype(to))


def result_type(tensor1, tensor2):
    """The dtype of ``tensor1 op tensor2`` (tensors or Python numbers), by PyTorch's rules."""
    from .ops._util import promote
    from .tensor import Tensor, tensor

    if not isinstance(tensor1, Tensor) and not isinstance(tensor2, Tensor):
        tensor1 = tensor(tensor1)  # two numbers: as a 0-d tensor and a number
    return promote(tensor1, tensor2)[0].dtype
