"""``gradflow.utils.data``: the datasets and the DataLoader under PyTorch's import path (the
same objects as ``gradflow.data``)."""

from ..data import (ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate,
                    random_split)

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader",
           "default_collate"]
