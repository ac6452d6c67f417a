"""The UCI handwritten digits, shipped with the package (digits.npz, 45 kB)."""

import os

import numpy as np

from ..tensor import from_numpy

_PATH = os.path.join(os.path.dirname(__file__), "digits.npz")


def load_digits():
    """(images, labels): float32 (1797, 64) 8x8 images scaled from 0..16 to [0, 1], and int64
    labels 0..9 of shape (1797,), as CPU tensors."""
    with np.load(_PATH) as f:
        images, labels = f["images"], f["labels"]
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(16)
    return from_numpy(x), from_numpy(labels.astype(np.int64))
