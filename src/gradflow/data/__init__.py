"""Datasets and minibatches: Dataset, TensorDataset, DataLoader and its samplers, a deterministic
train_test_split, toy problems, two digit sets, and DistributedSampler (a rank's share).

``load_digits()`` reads the UCI "Optical Recognition of Handwritten Digits" test set (1,797 8x8
images, 10 classes; E. Alpaydin and C. Kaynak, UCI Machine Learning Repository,
https://archive.ics.uci.edu/dataset/80, licensed CC BY 4.0), shipped as digits.npz: the copy
scikit-learn distributes as sklearn.datasets.load_digits, stored as uint8 pixels 0..16 and
uint8 labels. ``load_mnist(path)`` reads MNIST from IDX files you have downloaded.
"""

from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .digits import load_digits
from .distributed import DistributedSampler
from .loader import DataLoader, default_collate, default_convert
from .mnist import load_mnist
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)
from .split import train_test_split
from .toy import make_moons, make_regression_1d, make_spirals, make_xor

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader",
           "DistributedSampler", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler", "default_collate",
           "default_convert", "load_digits", "load_mnist",
           "train_test_split", "make_xor", "make_moons", "make_spirals", "make_regression_1d"]
