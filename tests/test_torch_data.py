"""The data API PyTorch users write: gradflow.utils.data, random_split, Subset, ConcatDataset,
DataLoader collate_fn / generator / worker processes / samplers and batch samplers, default_collate on dicts, tuples and
nested samples (against torch's), and train_test_split with scikit-learn's names."""
from collections import namedtuple

import numpy as np
import pytest

import gradflow as gf
from gradflow.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, RandomSampler,
                                 SequentialSampler, Subset, SubsetRandomSampler, TensorDataset,
                                 WeightedRandomSampler, default_collate, random_split)

torch = pytest.importorskip("torch")

Point = namedtuple("Point", ["x", "label"])


class DictDataset(Dataset):
    """Samples are dicts of an array, a float, an int, a string and a nested tuple."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"x": np.full(3, i, dtype=np.float32), "w": i * 0.5, "y": i % 3, "name": f"s{i}",
                "pair": (np.array([i]), i + 1)}


def _same_structure(g, t):
    if isinstance(t, torch.Tensor):
        assert isinstance(g, gf.Tensor)
        assert str(g.dtype) == str(t.dtype).replace("torch.", "")
        np.testing.assert_array_equal(g.numpy(), t.numpy())
    elif isinstance(t, dict):
        assert isinstance(g, dict) and list(g) == list(t)
        for k in t:
            _same_structure(g[k], t[k])
    elif isinstance(t, (list, tuple)):
        assert type(g) is type(t) and len(g) == len(t)
        for a, b in zip(g, t):
            _same_structure(a, b)
    else:
        assert g == t


def test_default_collate_matches_torch():
    from torch.utils.data import default_collate as torch_collate

    ds = DictDataset()
    samples = [ds[i] for i in range(4)]
    _same_structure(default_collate(samples), torch_collate(samples))
    pts = [Point(np.ones(2) * i, i) for i in range(3)]
    _same_structure(default_collate(pts), torch_collate(pts))
    tuples = [(np.arange(2.0) + i, float(i), True) for i in range(3)]
    _same_structure(default_collate(tuples), torch_collate(tuples))


def test_loader_collate_fn_generator_and_drop_last():
    ds = DictDataset()
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=gf.Generator().manual_seed(0))
    batches = list(loader)
    assert len(batches) == 3 and batches[0]["x"].shape == (4, 3) and batches[-1]["y"].shape == (2,)
    again = list(DataLoader(ds, batch_size=4, shuffle=True, generator=gf.Generator().manual_seed(0)))
    assert [b["name"] for b in batches] == [b["name"] for b in again]
    custom = DataLoader(ds, batch_size=3, drop_last=True, collate_fn=lambda s: [d["y"] for d in s])
    assert list(custom) == [[0, 1, 2], [0, 1, 2], [0, 1, 2]]


def test_samplers_match_torch():
    from torch.utils import data as td

    ds = list(range(10))
    assert list(SequentialSampler(ds)) == list(td.SequentialSampler(ds)) and len(SequentialSampler(ds)) == 10
    for args in [(3, False), (3, True), (4, True)]:
        assert list(BatchSampler(range(10), *args)) == list(td.BatchSampler(range(10), *args))
        assert len(BatchSampler(range(10), *args)) == len(td.BatchSampler(range(10), *args))
    order = list(RandomSampler(ds, generator=gf.Generator().manual_seed(1)))
    assert sorted(order) == ds and order == list(RandomSampler(ds, generator=gf.Generator().manual_seed(1)))
    more = list(RandomSampler(ds, num_samples=25))
    assert len(more) == 25 and sorted(more[:20]) == sorted(ds * 2) and len(set(more[20:])) == 5
    drawn = list(RandomSampler(ds, replacement=True, num_samples=50))
    assert len(drawn) == 50 and set(drawn) <= set(ds)
    assert sorted(SubsetRandomSampler([3, 5, 7])) == [3, 5, 7]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 2.0], 30))
    assert len(w) == 30 and set(w) <= {1, 3}
    assert sorted(WeightedRandomSampler([1, 1, 0, 1], 3, replacement=False)) == [0, 1, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1, 0], 2, replacement=False)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)


def test_loader_batch_sampler_and_unbatched_as_torch():
    from torch.utils import data as td

    ds = TensorDataset(gf.arange(10.0), gf.arange(10))
    loader = DataLoader(ds, batch_sampler=[[0, 3], [9], [1, 2, 4]])
    assert len(loader) == 3 and loader.batch_size is None and not loader.drop_last
    assert [b[1].tolist() for b in loader] == [[0, 3], [9], [1, 2, 4]]
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=True)
    assert [b[1].tolist() for b in DataLoader(ds, batch_sampler=bs)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    dd = DictDataset()
    assert [b["y"].tolist() for b in DataLoader(dd, batch_sampler=[[1, 2], [5]])] == [[1, 2], [2]]
    for kw in [dict(batch_size=2), dict(shuffle=True), dict(sampler=[0]), dict(drop_last=True)]:
        with pytest.raises(ValueError, match="mutually exclusive") as e:
            DataLoader(ds, batch_sampler=[[0]], **kw)
        with pytest.raises(ValueError, match=str(e.value).split(": ", 1)[1]):
            td.DataLoader(range(3), batch_sampler=[[0]], **kw)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)
    plain = list(range(4))
    assert list(DataLoader(plain, batch_size=None)) == list(td.DataLoader(plain, batch_size=None))
    unbatched = list(DataLoader(dd, batch_size=None, sampler=[2]))
    _same_structure(unbatched[0], next(iter(td.DataLoader(dd, batch_size=None, sampler=[2]))))
    loader = DataLoader(ds, batch_size=3, shuffle=True, drop_last=True)
    assert isinstance(loader.sampler, RandomSampler) and isinstance(loader.batch_sampler, BatchSampler)
    assert len(loader) == 3 and all(len(b[0]) == 3 for b in loader)


def test_random_split_subset_concat():
    ds = TensorDataset(gf.arange(10.0), gf.arange(10))
    a, b = random_split(ds, [7, 3], generator=gf.Generator().manual_seed(1))
    assert len(a) == 7 and len(b) == 3
    seen = sorted(int(a[i][1]) for i in range(7)) + sorted(int(b[i][1]) for i in range(3))
    assert sorted(seen) == list(range(10))
    c, d = random_split(ds, [0.5, 0.5])
    assert len(c) == len(d) == 5
    sub = Subset(ds, [4, 2])
    assert float(sub[0][0]) == 4.0 and len(sub) == 2
    cat = ConcatDataset([sub, ds])
    assert len(cat) == 12 and float(cat[1][0]) == 2.0 and float(cat[2][0]) == 0.0 and float(cat[-1][0]) == 9.0
    xs, ys = next(iter(DataLoader(cat, batch_size=12)))
    assert xs.tolist()[:3] == [4.0, 2.0, 0.0] and ys.dtype == gf.int64
    with pytest.raises(ValueError, match="add up"):
        random_split(ds, [3, 3])


def _square(i):
    return i * i


class Squares(Dataset):
    def __len__(self):
        return 9

    def __getitem__(self, i):
        return {"i": i, "sq": np.array([_square(i)], dtype=np.float64)}


def test_worker_processes_match_the_main_process():
    main = list(DataLoader(Squares(), batch_size=4))
    loader = DataLoader(Squares(), batch_size=4, num_workers=2, persistent_workers=True)
    for _ in range(2):  # the same (persistent) workers serve a second epoch
        got = list(loader)
        assert len(got) == len(main)
        for g, m in zip(got, main):
            assert g["i"].tolist() == m["i"].tolist() and g["sq"].tolist() == m["sq"].tolist()
    ds = TensorDataset(gf.arange(6.0))
    (x,), (y,) = list(DataLoader(ds, batch_size=3, num_workers=1))
    assert x.tolist() == [0.0, 1.0, 2.0] and y.tolist() == [3.0, 4.0, 5.0]


def test_train_test_split_sklearn_names():
    x = np.arange(20)
    tr, te = gf.data.train_test_split(x, test_size=5, random_state=3)
    assert len(te) == 5 and sorted(np.concatenate([tr, te]).tolist()) == list(range(20))
    tr2, te2 = gf.data.train_test_split(x, test_size=0.25, random_state=3)
    np.testing.assert_array_equal(te, te2)
    with pytest.raises(TypeError):
        gf.data.train_test_split(x, test_size=0.2, test_fraction=0.2)


def test_load_accepts_weights_only(tmp_path):
    gf.save({"w": gf.ones(2)}, tmp_path / "c.npz")
    assert gf.load(tmp_path / "c.npz", weights_only=True)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="weights-only"):
        gf.load(tmp_path / "c.npz", weights_only=False)
