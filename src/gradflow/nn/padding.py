"""The padding layers, as PyTorch's: each is ``F.pad`` with a mode and the widths fixed, for 1,
2 or 3 padded dims (ReflectionPad2d pads the last two dims of a (C, H, W) or (N, C, H, W)
input; the non-constant modes check the input's dims as F.pad does)."""

import numbers

from . import functional as F
from .module import Module


class _PadNd(Module):
    """F.pad(input, padding, mode, value), ``padding`` an int (the same on every side) or
    2 * dims ints (left, right, top, bottom, front, back)."""

    mode, dims = "constant", 1

    def __init__(self, padding, value=None):
        super().__init__()
        if isinstance(padding, numbers.Integral):
            padding = (int(padding),) * (2 * self.dims)
        padding = tuple(int(p) for p in padding)
        if len(padding) != 2 * self.dims:
            raise ValueError(f"{type(self).__name__}: padding must be an int or {2 * self.dims} "
                             f"ints, got {padding}")
        self.padding, self.value = padding, value

    def forward(self, input):
        return F.pad(input, self.padding, self.mode, self.value)

    def extra_repr(self):
        return f"{self.padding}" + (f", value={self.value}" if self.mode == "constant" else "")


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        """padding: an int or 2 * dims ints; value: the fill."""
        super().__init__(padding, value)


class _ZeroPadNd(_PadNd):
    def __init__(self, padding):
        """padding: an int or 2 * dims ints."""
        super().__init__(padding, 0.0)


class _ReflectionPadNd(_PadNd):
    mode = "reflect"


class _ReplicationPadNd(_PadNd):
    mode = "replicate"


class _CircularPadNd(_PadNd):
    mode = "circular"



class ReflectionPad1d(_ReflectionPadNd):
    """Pads the last 1 dim with the input mirrored at its edges (the edge not repeated)."""

    dims = 1


class ReflectionPad2d(_ReflectionPadNd):
    """Pads the last 2 dims with the input mirrored at its edges (the edge not repeated)."""

    dims = 2


class ReflectionPad3d(_ReflectionPadNd):
    """Pads the last 3 dims with the input mirrored at its edges (the edge not repeated)."""

    dims = 3


class ReplicationPad1d(_ReplicationPadNd):
    """Pads the last 1 dim with copies of the edge values."""

    dims = 1


class ReplicationPad2d(_ReplicationPadNd):
    """Pads the last 2 dims with copies of the edge values."""

    dims = 2


class ReplicationPad3d(_ReplicationPadNd):
    """Pads the last 3 dims with copies of the edge values."""

    dims = 3


class CircularPad1d(_CircularPadNd):
    """Pads the last 1 dim with the input wrapped around."""

    dims = 1


class CircularPad2d(_CircularPadNd):
    """Pads the last 2 dims with the input wrapped around."""

    dims = 2


class CircularPad3d(_CircularPadNd):
    """Pads the last 3 dims with the input wrapped around."""

    dims = 3


class ZeroPad1d(_ZeroPadNd):
    """Pads the last 1 dim with zeros."""

    dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pads the last 2 dims with zeros."""

    dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pads the last 3 dims with zeros."""

    dims = 3


class ConstantPad1d(_ConstantPadNd):
    """Pads the last 1 dim with ``value``."""

    dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last 2 dims with ``value``."""

    dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last 3 dims with ``value``."""

    dims = 3
