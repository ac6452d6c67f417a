"""MNIST from the four standard IDX files in a local folder (plain or gzipped)."""

import gzip
import os

import numpy as np

from ..tensor import from_numpy

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one MNIST uses


def _find(folder, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path, ndim):
    """An IDX file of unsigned bytes with ``ndim`` dimensions as a numpy uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot read ({e})") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\0\0" or raw[2] != _UBYTE or raw[3] != ndim:
        raise ValueError(f"{path}: bad magic number {raw[:4].hex() or '(empty file)'}, expected "
                         f"0000{_UBYTE:02x}{ndim:02x} (unsigned bytes, {ndim} dimensions)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise ValueError(f"{path}: size mismatch: the header says {shape} = {size} bytes of data, "
                         f"the file holds {len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_mnist(path):
    """((train_images, train_labels), (test_images, test_labels)) from the IDX files in the
    folder ``path``: images float32 (N, rows*cols) scaled to [0, 1], labels int64 (N,), as CPU
    tensors. Raises FileNotFoundError naming any missing file, ValueError for a corrupt one."""
    path = os.fspath(path)
    names = [n for pair in _FILES.values() for n in pair]
    found = {n: _find(path, n) for n in names}
    missing = [n for n in names if found[n] is None]
    if missing:
        where = f"folder {path!r}" if os.path.isdir(path) else f"{path!r} (no such folder)"
        raise FileNotFoundError(
            f"MNIST: {', '.join(missing)} not found in {where}; the folder must hold all of "
            f"{', '.join(names)} (each may be gzipped, with .gz appended)")
    splits = []
    for image_name, label_name in _FILES.values():
        images = read_idx(found[image_name], 3)
        labels = read_idx(found[label_name], 1)
        if len(images) != len(labels):
            raise ValueError(f"MNIST: {found[image_name]} holds {len(images)} images but "
                             f"{found[label_name]} holds {len(labels)} labels")
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
        splits.append((from_numpy(x), from_numpy(labels.astype(np.int64))))
    return tuple(splits)
