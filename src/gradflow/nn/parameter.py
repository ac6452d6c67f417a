"""Parameter: a Tensor that a Module registers as learnable."""

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad (by default) and is registered when assigned to a
    Module attribute. ``Parameter(t)`` shares ``t``'s memory."""

    def __init__(self, data, requires_grad=True):
        src = data if isinstance(data, Tensor) else Tensor(data)
        super().__init__(src.array, src._be)
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
