"""gf.cuda: is a GPU usable, how many, does it take bfloat16, the TF32 switch, the label check
of cross-entropy and memory statistics. CuPy is imported only when one of these functions is
called, never by ``import gradflow``."""

import sys


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


def is_bf16_supported() -> bool:
    """Whether bfloat16 tensors can live on the GPU (as torch.cuda.is_bf16_supported): a
    usable GPU, and a CuPy that holds ml_dtypes' bfloat16 (CuPy >= 14)."""
    return is_available() and _backend().has_bfloat16()


def allow_tf32(flag: bool = True) -> None:
    """Let float32 matmuls on the GPU use TF32 tensor cores (10-bit mantissa inputs, float32
    accumulation; much faster, about 1e-3 relative error). Off by default, whatever CUPY_TF32
    says. This is CuPy's process-wide float32 GEMM compute type, so it also applies to the
    caller's own cupy.matmul/dot."""
    _backend().set_tf32(flag)


def check_labels(flag: bool = True) -> None:
    """Make cross-entropy on the GPU check its integer labels and raise IndexError for one out
    of range, as on the CPU. Off by default: the check reads the labels on the host (a
    synchronisation per loss), and an out-of-range label then gives NaN in its row's loss
    and gradient instead."""
    _backend().set_check_labels(flag)


def _index(device):
    from .backend import canonical_device

    if device is None:
        import cupy

        return cupy.cuda.Device().id
    return int(canonical_device(device)[5:])


def memory_allocated(device=None) -> int:
    """Bytes of GPU memory held by live arrays on ``device`` (default: the current one), as
    CuPy's memory pool counts them (each allocation rounded up to 512 bytes)."""
    return _backend().memory_allocated(_index(device))


def max_memory_allocated(device=None) -> int:
    """The most bytes memory_allocated() has reached on ``device`` since the first use of the
    GPU or reset_peak_memory_stats()."""
    return _backend().max_memory_allocated(_index(device))


def reset_peak_memory_stats(device=None) -> None:
    """Resets the peak that max_memory_allocated() reports on ``device`` (default:
    the current one) to the memory allocated now."""
    _backend().reset_peak_memory_stats(_index(device))


def empty_cache() -> None:
    """Hand the blocks CuPy's memory pool keeps for reuse back to the driver (on every GPU);
    nothing to do where no GPU has been used."""
    if "gradflow.backend.cuda" in sys.modules:
        _backend().empty_cache()


def synchronize(device=None) -> None:
    """Wait until all work queued on ``device`` (default: the current one) has finished."""
    import cupy

    from .backend import canonical_device

    index = None if device is None else int(canonical_device(device)[5:])
    with cupy.cuda.Device(index):
        cupy.cuda.get_current_stream().synchronize()
