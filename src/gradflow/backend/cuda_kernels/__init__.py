"""The CUDA backend's custom kernels as plain data (no CuPy needed to read them).

:mod:`.defs` holds every fused kernel the CUDA backend runs (activations, softmax family,
cross-entropy, optimizer updates), :mod:`.header` finds ``gf_math.h`` (pasted into the
activation kernels' preamble), and :mod:`.standalone` turns the definitions into one ``.cu``
translation unit so that CI without a GPU can compile-check them with ``nvcc``.
"""

from .defs import KERNELS, USES, Elementwise, Reduction  # noqa: F401
