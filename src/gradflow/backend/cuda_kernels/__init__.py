"""The CUDA backend's custom kernels as plain data (no CuPy needed to read them).

:mod:`.defs` holds every fused kernel the CUDA backend runs (activations, softmax family,
cross-entropy, optimizer updates, dropout masks) and :mod:`.header` finds ``gf_math.h``
(pasted into the activation kernels' preamble).
"""

from .defs import KERNELS, USES, Elementwise, Reduction  # noqa: F401
