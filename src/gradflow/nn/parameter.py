"""Parameter: a Tensor that a Module registers as learnable."""

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad (by default) and is registered when assigned to a
    Module attribute. ``Parameter(t)`` shares ``t``'s memory."""

    def __init__(self, data, requires_grad=True):
        src = data if isinstance(data, Tensor) else Tensor(data)
        self.data, self._device, self._be = src.data, src._device, src._be
        self.grad, self._node, self._vbox, self._base = None, None, [0], None
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
