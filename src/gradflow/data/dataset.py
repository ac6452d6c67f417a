"""Datasets: anything with ``__len__`` and ``__getitem__``; TensorDataset wraps equal-length
tensors so that a DataLoader can gather a whole batch with one fancy-index per tensor."""

import numpy as np

from ..tensor import Tensor, from_numpy


class Dataset:
    """Base class: ``dataset[i]`` returns one sample (a tuple of fields), ``len(dataset)`` the
    number of samples."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} does not define __len__")


class TensorDataset(Dataset):
    """Sample i is ``tuple(t[i] for t in tensors)``. numpy arrays are wrapped without a copy."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else from_numpy(np.asarray(t))
                             for t in tensors)
        shapes = [tuple(t.shape) for t in self.tensors]
        if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(f"TensorDataset: tensors must share their first dimension, got "
                             f"shapes {', '.join(map(str, shapes))}")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]
