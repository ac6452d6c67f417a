"""``gradflow.utils.data``: the datasets, samplers and the DataLoader under PyTorch's import
path (the same objects as ``gradflow.data``)."""

from ..data import (BatchSampler, ConcatDataset, DataLoader, Dataset, DistributedSampler,
                    RandomSampler, Sampler, SequentialSampler, Subset, SubsetRandomSampler,
                    TensorDataset, WeightedRandomSampler, default_collate, default_convert,
                    random_split)

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader",
           "default_collate", "default_convert", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler", "DistributedSampler"]
