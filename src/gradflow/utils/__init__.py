"""``gradflow.utils``: PyTorch's import paths (``gradflow.utils.data``)."""

from . import data

__all__ = ["data"]
