"""A deterministic train/test split of several aligned arrays or tensors."""

import numpy as np

from ..tensor import Tensor


def _length(a):
    if a.ndim == 0:
        raise ValueError("train_test_split: got a 0-d array; every input needs a first dimension")
    return a.shape[0]


def train_test_split(*arrays, test_fraction=None, seed=None, stratify=None, test_size=None,
                     random_state=None):
    """(a_train, a_test, b_train, b_test, ...): the same random rows of every input go to the
    test part, in sklearn's output order; tensors stay tensors, arrays stay arrays.

    ``test_size`` (scikit-learn's name; ``test_fraction`` is the same) is the test part's share
    (a float, default 0.2) or its number of rows (an int); ``random_state`` (or ``seed``,
    default 0) fixes the shuffle. ``stratify`` (class labels, one per row) keeps each class's
    share in both parts: a class of m rows gives round(m * test_fraction) rows to the test part.
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    if test_fraction is not None and test_size is not None:
        raise TypeError("train_test_split: give test_size or test_fraction, not both")
    if seed is not None and random_state is not None:
        raise TypeError("train_test_split: give random_state or seed, not both")
    seed = 0 if seed is None and random_state is None else (seed if seed is not None else random_state)
    size = test_size if test_size is not None else test_fraction
    if size is None:
        size = 0.2
    if test_size is not None and isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        n_rows = _length(arrays[0])
        if not 0 < size < n_rows:
            raise ValueError(f"train_test_split: test_size={size} rows does not fit {n_rows} rows")
        size = size / n_rows
    test_fraction = size
    if not 0 < test_fraction < 1:
        raise ValueError(f"train_test_split: test_fraction must be in (0, 1), got {test_fraction}")
    lengths = [_length(a) for a in arrays]
    n = lengths[0]
    if any(m != n for m in lengths):
        raise ValueError(f"train_test_split: inputs have different lengths {lengths}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        n_test = round(n * test_fraction)
        test, train = order[:n_test], order[n_test:]
    else:
        labels = np.asarray(stratify.detach()._host() if isinstance(stratify, Tensor) else stratify)
        if labels.shape != (n,):
            raise ValueError(f"train_test_split: stratify has shape {labels.shape}, expected ({n},)")
        test, train = [], []
        for c in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == c))
            k = round(len(rows) * test_fraction)
            test.append(rows[:k])
            train.append(rows[k:])
        test, train = rng.permutation(np.concatenate(test)), rng.permutation(np.concatenate(train))
    if len(test) == 0 or len(train) == 0:
        raise ValueError(f"train_test_split: {n} rows with test_fraction={test_fraction} leave "
                         f"{len(train)} for training and {len(test)} for testing")
    out = []
    for a in arrays:
        out += [a[train], a[test]]
    return tuple(out)
