"""gradflow.data: datasets, the loader, the embedded digits, MNIST IDX files, splits, toys."""

import gzip
import os

import numpy as np
import pytest

import gradflow as gf
from gradflow.data import (DataLoader, Dataset, TensorDataset, load_digits, load_mnist,
                           make_moons, make_regression_1d, make_spirals, make_xor,
                           train_test_split)


# ---- TensorDataset and DataLoader ------------------------------------------------------------------
def test_tensor_dataset_rows_and_length():
    x, y = gf.arange(12).reshape(6, 2).float(), np.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    assert xi.tolist() == [8.0, 9.0] and yi.item() == 4


def test_tensor_dataset_rejects_different_lengths():
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(4,\)"):
        TensorDataset(gf.zeros(3, 2), gf.zeros(4))


@pytest.mark.parametrize("n,batch,drop_last,sizes", [
    (10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, False, [4, 4]), (3, 5, False, [3])])
def test_loader_batch_sizes(n, batch, drop_last, sizes):
    loader = DataLoader(TensorDataset(gf.arange(n)), batch, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes)
    assert [len(b[0]) for b in batches] == sizes
    assert all(isinstance(b, tuple) and len(b) == 1 for b in batches)


def test_loader_without_shuffle_keeps_order():
    x = gf.arange(7)
    got = np.concatenate([xb.numpy() for (xb,) in DataLoader(TensorDataset(x), 3)])
    assert got.tolist() == list(range(7))


def test_loader_shuffle_is_a_permutation_that_changes_per_epoch():
    x, y = gf.arange(50), gf.arange(50) * 10
    loader = DataLoader(TensorDataset(x, y), 8, shuffle=True, seed=1)
    epochs = []
    for _ in range(2):
        xs, ys = zip(*[(xb.numpy(), yb.numpy()) for xb, yb in loader])
        xs, ys = np.concatenate(xs), np.concatenate(ys)
        assert sorted(xs.tolist()) == list(range(50))
        assert (ys == xs * 10).all()  # rows stay aligned across tensors
        epochs.append(xs)
    assert not (epochs[0] == epochs[1]).all()


def _orders(loader, epochs=2):
    return [np.concatenate([xb.numpy() for (xb,) in loader]).tolist() for _ in range(epochs)]


def test_loader_seed_makes_the_order_reproducible():
    ds = TensorDataset(gf.arange(40))
    assert _orders(DataLoader(ds, 7, shuffle=True, seed=3)) == \
        _orders(DataLoader(ds, 7, shuffle=True, seed=3))
    assert _orders(DataLoader(ds, 7, shuffle=True, seed=3)) != \
        _orders(DataLoader(ds, 7, shuffle=True, seed=4))


def test_loader_without_seed_follows_manual_seed():
    ds = TensorDataset(gf.arange(40))
    gf.manual_seed(5)
    first = _orders(DataLoader(ds, 7, shuffle=True))
    gf.manual_seed(5)
    assert _orders(DataLoader(ds, 7, shuffle=True)) == first
    gf.manual_seed(6)
    assert _orders(DataLoader(ds, 7, shuffle=True)) != first


class _Squares(Dataset):
    """A non-tensor dataset: sample i is (a float32 vector, an int label)."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.full(3, i * i, np.float32), i


def test_loader_generic_dataset_stacks_fields():
    batches = list(DataLoader(_Squares(), 2))
    assert [tuple(xb.shape) for xb, _ in batches] == [(2, 3), (2, 3), (1, 3)]
    xb, yb = batches[1]
    assert xb.dtype == np.float32 and xb[:, 0].tolist() == [4.0, 9.0]
    assert yb.dtype == np.int64 and yb.tolist() == [2, 3]


def test_loader_generic_dataset_of_tensor_samples():
    # The generic path with samples made of 0-d and 1-d tensors.
    ds = TensorDataset(gf.arange(6).reshape(3, 2).float(), gf.arange(3))

    class Wrapped(Dataset):
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds[i]

    (xb, yb), = list(DataLoader(Wrapped(), 3))
    assert xb.tolist() == [[0, 1], [2, 3], [4, 5]] and yb.tolist() == [0, 1, 2]


def test_loader_batches_do_not_require_grad():
    x = gf.ones(4, 2, requires_grad=True)
    (xb,), *_ = DataLoader(TensorDataset(x), 2)
    assert not xb.requires_grad


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8"])
def test_loader_rejects_bad_batch_size(bad):
    with pytest.raises((ValueError, TypeError)):
        DataLoader(TensorDataset(gf.arange(4)), bad)


def test_loader_moves_batches_to_device(device):
    (xb, yb), = list(DataLoader(TensorDataset(gf.arange(3).float(), gf.arange(3)), 3,
                                device=device))
    assert xb.device == gf.tensor(0, device=device).device == yb.device


# ---- embedded digits -------------------------------------------------------------------------------
def test_load_digits():
    x, y = load_digits()
    assert tuple(x.shape) == (1797, 64) and x.dtype == np.float32
    assert tuple(y.shape) == (1797,) and y.dtype == np.int64
    xs, ys = x.numpy(), y.numpy()
    assert xs.min() == 0.0 and xs.max() == 1.0
    assert np.allclose(xs * 16, np.round(xs * 16))  # stored as the original 0..16 levels
    assert np.bincount(ys).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


# ---- MNIST IDX files -------------------------------------------------------------------------------
def _idx(data, type_code=0x08):
    data = np.asarray(data, np.uint8)
    header = bytes([0, 0, type_code, data.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in data.shape)
    return header + data.tobytes()


def _write(path, raw, gz=False):
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def _mnist_folder(tmp_path, n_train=5, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    sets = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _write(tmp_path / f"{prefix}-images-idx3-ubyte", _idx(images), gz)
        _write(tmp_path / f"{prefix}-labels-idx1-ubyte", _idx(labels), gz)
        sets[prefix] = images, labels
    return sets


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_idx_files(tmp_path, gz):
    sets = _mnist_folder(tmp_path, gz=gz)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    assert tuple(x_train.shape) == (5, 784) and tuple(x_test.shape) == (3, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    images, labels = sets["train"]
    assert np.allclose(x_train.numpy(), images.reshape(5, 784) / 255.0)
    assert y_train.tolist() == labels.tolist()
    assert y_test.tolist() == sets["t10k"][1].tolist()
    assert 0 <= x_test.numpy().min() and x_test.numpy().max() <= 1


def test_load_mnist_missing_files_are_named(tmp_path):
    _mnist_folder(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(tmp_path)
    message = str(e.value)
    assert "t10k-labels-idx1-ubyte" in message and str(tmp_path) in message
    assert "train-images-idx3-ubyte" in message  # the full list of expected files


def test_load_mnist_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_mnist(tmp_path / "nowhere")


def test_load_mnist_bad_magic(tmp_path):
    _mnist_folder(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx(np.zeros(5), type_code=0x0D))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte: bad magic number"):
        load_mnist(tmp_path)


def test_load_mnist_size_mismatch(tmp_path):
    _mnist_folder(tmp_path)
    raw = _idx(np.zeros((5, 28, 28)))
    _write(tmp_path / "train-images-idx3-ubyte", raw[:-10])
    with pytest.raises(ValueError, match=r"size mismatch.*\(5, 28, 28\)"):
        load_mnist(tmp_path)


def test_load_mnist_images_and_labels_disagree(tmp_path):
    _mnist_folder(tmp_path)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx(np.zeros(4)))
    with pytest.raises(ValueError, match="3 images but .* 4 labels"):
        load_mnist(tmp_path)


def test_load_mnist_corrupt_gzip(tmp_path):
    _mnist_folder(tmp_path, gz=True)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)


# ---- train_test_split ------------------------------------------------------------------------------
def test_split_is_deterministic_and_disjoint():
    x, y = np.arange(100) * 2, np.arange(100)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_fraction=0.25, seed=7)
    assert len(x_te) == 25 and len(x_tr) == 75
    assert (x_tr == 2 * y_tr).all() and (x_te == 2 * y_te).all()
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(100))
    again = train_test_split(x, y, test_fraction=0.25, seed=7)
    assert all((a == b).all() for a, b in zip((x_tr, x_te, y_tr, y_te), again))
    assert not (train_test_split(x, y, test_fraction=0.25, seed=8)[1] == x_te).all()


def test_split_keeps_tensors_as_tensors():
    x, y = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y)
    assert isinstance(x_tr, gf.Tensor) and isinstance(y_te, gf.Tensor)
    assert len(x_tr) + len(x_te) == 1797 and len(y_te) == len(x_te)


def test_split_stratified_keeps_class_shares():
    y = np.array([0] * 80 + [1] * 20)
    _, y_te = train_test_split(y, test_fraction=0.25, stratify=y)
    assert np.bincount(y_te).tolist() == [20, 5]


@pytest.mark.parametrize("kwargs,match", [
    (dict(test_fraction=0), "test_fraction"), (dict(test_fraction=1.5), "test_fraction"),
    (dict(stratify=np.zeros(3)), "stratify"), (dict(test_fraction=0.01), "leave")])
def test_split_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_test_split(np.arange(10), **kwargs)


def test_split_rejects_different_lengths():
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        train_test_split(np.zeros(3), np.zeros(4))


# ---- toy problems ----------------------------------------------------------------------------------
def test_make_xor():
    x, y = make_xor()
    assert y.tolist() == [int(a) ^ int(b) for a, b in x.tolist()]


@pytest.mark.parametrize("make,n", [(make_moons, 101), (make_spirals, 100)])
def test_classification_toys(make, n):
    x, y = make(n, noise=0.1, seed=3)
    assert tuple(x.shape) == (n, 2) and x.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y.numpy())
    assert counts.max() - counts.min() <= 1  # classes as balanced as n allows
    x2, y2 = make(n, noise=0.1, seed=3)
    assert (x.numpy() == x2.numpy()).all() and (y.numpy() == y2.numpy()).all()
    assert not (make(n, noise=0.1, seed=4)[0].numpy() == x.numpy()).all()


def test_make_spirals_classes():
    _, y = make_spirals(50, classes=5)
    assert sorted(set(y.tolist())) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="classes"):
        make_spirals(10, classes=1)


def test_make_regression_1d():
    x, y = make_regression_1d(64, fn=np.cos, seed=1)
    assert tuple(x.shape) == tuple(y.shape) == (64, 1) and y.dtype == np.float32
    assert np.allclose(y.numpy(), np.cos(x.numpy()), atol=1e-6)
    assert -np.pi <= x.numpy().min() and x.numpy().max() <= np.pi
    _, noisy = make_regression_1d(64, fn=np.cos, noise=0.1, seed=1)
    assert 0.03 < np.std(noisy.numpy() - y.numpy()) < 0.3
