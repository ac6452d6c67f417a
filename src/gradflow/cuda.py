"""gf.cuda: is a GPU usable, how many, and the TF32 switch. CuPy is imported only when one of
these functions is called, never by ``import gradflow``."""


def _backend():
    from .backend import cuda  # RuntimeError naming what is missing when CuPy is not installed

    return cuda


def unavailable_reason():
    """None when a CUDA GPU is usable; otherwise why not (no CuPy, no driver, no GPU)."""
    try:
        _backend().device_count()
    except RuntimeError as e:
        return str(e)
    return None


def is_available() -> bool:
    """Whether a CUDA GPU is usable (CuPy installed and a device found)."""
    return unavailable_reason() is None


def device_count() -> int:
    """The number of usable CUDA devices (0 without CuPy or a GPU)."""
    try:
        return _backend().device_count()
    except RuntimeError:
        return 0


def allow_tf32(flag: bool = True) -> None:
    """Let float32 matmuls on the GPU use TF32 tensor cores (10-bit mantissa inputs, float32
    accumulation; much faster, about 1e-3 relative error). Off by default, whatever CUPY_TF32
    says. This is CuPy's process-wide float32 GEMM compute type, so it also applies to the
    caller's own cupy.matmul/dot."""
    _backend().set_tf32(flag)


def synchronize(device=None) -> None:
    """Wait until all work queued on ``device`` (default: the current one) has finished."""
    import cupy

    from .backend import canonical_device

    index = None if device is None else int(canonical_device(device)[5:])
    with cupy.cuda.Device(index):
        cupy.cuda.get_current_stream().synchronize()
