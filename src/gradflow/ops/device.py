"""Moving a tensor between devices, differentiably (the gradient moves back)."""

from .. import dtypes
from ..autograd.function import Function


class ToDevice(Function):
    moves_device = True  # Function.apply puts the output on ctx.dst
    lowp_native = True

    @staticmethod
    def forward(ctx, x, src, dst):
        from .. import backend

        ctx.src, ctx.dst = src, dst
        if dst != "cpu":
            dtypes.check_supported(x.dtype, "to", dst)  # (bfloat16 needs CuPy 14)
        if dst == "cpu":
            return backend.get(src).to_numpy(x)
        return backend.get(dst).to_device_array(x)

    @staticmethod
    def backward(ctx, g):
        return (to_device(g, ctx.src),)


def to_device(x, device):
    return ToDevice.apply(x, src=x._device, dst=device)
