"""gf.save / gf.load: round trips of nested states, model and optimizer state dicts, atomic
writes, clear errors for broken files, and no pickles anywhere."""
import os
import pathlib
import zipfile

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn, optim

from conftest import host


def _same(a, b):
    """Deep equality of loaded states: tensors by dtype, values and requires_grad."""
    assert type(a) is type(b) or (isinstance(a, gf.Tensor) and isinstance(b, gf.Tensor)), (a, b)
    if isinstance(a, gf.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(host(a), host(b))
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        assert [type(k) for k in a] == [type(k) for k in b]
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def _no_temp_files(directory, keep):
    assert sorted(os.listdir(directory)) == sorted(keep)


# ---- round trips --------------------------------------------------------------------------------
def test_nested_round_trip(tmp_path):
    state = {
        "f32": gf.tensor([[1.5, -2.0], [3.0, 4.25]]),
        "f64": gf.tensor(np.linspace(0, 1, 7), dtype=gf.float64),
        "i64": gf.tensor([1, 2, 3]),
        "i32": gf.tensor(np.array([4, 5], dtype=np.int32)),
        "bool": gf.tensor([True, False]),
        "scalar": gf.tensor(2.5),
        "empty": gf.zeros(0, 3),
        "grad": gf.ones(2, 2, requires_grad=True),
        "np": np.arange(6, dtype=np.int16).reshape(2, 3),
        "np_f": np.array([np.inf, -0.0, 1e-300]),
        "np_str": np.array(["ab", "c"]),
        "nums": [1, -2.5, True, False, None, "text", "ünïcödé", float("inf"), 2**70],
        "nested": {"a": [{"b": (1, (2.0, "x"), [])}], "c": ()},
        "tuple": (gf.zeros(1), [np.ones(2)], {"k": None}),
        3: "int key",
        "3": "str key",
        -1: {0: gf.tensor([0.5]), 1: [gf.tensor([1.0])]},
        "nan": float("nan"),
        "empty_dict": {},
        "empty_list": [],
    }
    path = tmp_path / "ck.npz"
    assert gf.save(state, path) is None
    loaded = gf.load(path)
    _same(state, loaded)
    assert loaded["grad"].is_leaf and loaded["grad"].requires_grad
    assert not loaded["f32"].requires_grad
    assert loaded["f32"].device == "cpu"


@pytest.mark.parametrize("obj", [gf.tensor([1.0, 2.0]), [1, 2], (3, "a"), 5, 2.5, "s", None, True,
                                 np.eye(2), {}])
def test_top_level_objects(obj, tmp_path):
    gf.save(obj, tmp_path / "x.npz")
    _same(obj, gf.load(tmp_path / "x.npz"))


def test_numpy_scalars_become_python_numbers(tmp_path):
    gf.save({"a": np.float32(1.5), "b": np.int64(3), "c": np.bool_(True)}, tmp_path / "s.npz")
    out = gf.load(tmp_path / "s.npz")
    assert out == {"a": 1.5, "b": 3, "c": True}
    assert type(out["b"]) is int and type(out["c"]) is bool


def test_str_and_pathlike_paths(tmp_path):
    p = tmp_path / "sub" / "dir" / "ck.npz"  # missing directories are created
    gf.save([1], p)
    assert gf.load(str(p)) == [1]
    gf.save([2], str(p))
    assert gf.load(pathlib.Path(p)) == [2]
    # the name is kept exactly (no extension appended)
    gf.save({"x": 1}, tmp_path / "checkpoint")
    assert gf.load(tmp_path / "checkpoint") == {"x": 1}
    assert "checkpoint" in os.listdir(tmp_path)


def test_loaded_values_are_independent_copies(tmp_path):
    t = gf.tensor([1.0, 2.0])
    a = np.array([3.0])
    gf.save({"t": t, "a": a}, tmp_path / "c.npz")
    out = gf.load(tmp_path / "c.npz")
    out["t"].array[0] = 9
    out["a"][0] = 9
    assert host(t)[0] == 1.0 and a[0] == 3.0
    assert host(gf.load(tmp_path / "c.npz")["t"])[0] == 1.0
    assert out["a"].flags.writeable and out["t"].array.flags.writeable


def test_non_contiguous_values(tmp_path):
    a = np.arange(12.0).reshape(3, 4).T
    t = gf.tensor(np.arange(6.0).reshape(2, 3)).T
    gf.save({"a": a, "t": t}, tmp_path / "c.npz")
    out = gf.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(out["a"], a)
    np.testing.assert_array_equal(host(out["t"]), host(t))


def test_map_location_cpu(tmp_path, device):
    state = {"w": gf.tensor([1.0, 2.0], device=device, requires_grad=True), "n": 3}
    gf.save(state, tmp_path / "m.npz")
    out = gf.load(tmp_path / "m.npz", map_location="cpu")
    assert out["w"].device == "cpu" and out["w"].requires_grad
    np.testing.assert_array_equal(host(out["w"]), [1.0, 2.0])
    back = gf.load(tmp_path / "m.npz")  # default: the device it was saved from
    assert back["w"].device == state["w"].device
    with pytest.raises(ValueError):
        gf.load(tmp_path / "m.npz", map_location="tpu")


# ---- model and optimizer state dicts ------------------------------------------------------------
def _model():
    return nn.Sequential(nn.Linear(3, 5, dtype=gf.float64), nn.Tanh(), nn.Linear(5, 2, dtype=gf.float64))


def test_module_state_dict_round_trip(tmp_path):
    gf.manual_seed(0)
    m = _model()
    gf.save(m.state_dict(), tmp_path / "model.npz")
    sd = gf.load(tmp_path / "model.npz")
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    fresh = _model()
    x = gf.tensor(np.random.default_rng(0).standard_normal((4, 3)))
    assert not np.array_equal(host(fresh(x)), host(m(x)))
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(host(fresh(x)), host(m(x)))


def test_optimizer_state_round_trip_same_trajectory(tmp_path):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    loss_fn = nn.MSELoss()

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(model(gf.tensor(X)), gf.tensor(Y)).backward()
            opt.step()

    for make in (lambda ps: optim.Adam(ps, lr=0.05, weight_decay=0.01),
                 lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                 lambda ps: optim.AdamW(ps, lr=0.05)):
        gf.manual_seed(2)
        ref = _model()
        ref_opt = make(ref.parameters())
        train(ref, ref_opt, 6)

        gf.manual_seed(2)
        m = _model()
        opt = make(m.parameters())
        train(m, opt, 3)
        gf.save({"model": m.state_dict(), "optim": opt.state_dict(), "epoch": 3}, tmp_path / "ck.npz")

        ck = gf.load(tmp_path / "ck.npz")
        assert ck["epoch"] == 3
        m2 = _model()
        m2.load_state_dict(ck["model"])
        opt2 = make(m2.parameters())
        opt2.load_state_dict(ck["optim"])
        train(m2, opt2, 3)
        for p, q in zip(ref.parameters(), m2.parameters()):
            np.testing.assert_array_equal(host(p), host(q))


# ---- atomic writes ------------------------------------------------------------------------------
def test_no_temp_files_after_success(tmp_path):
    for i in range(3):
        gf.save({"i": i, "t": gf.ones(10)}, tmp_path / "ck.npz")
    _no_temp_files(tmp_path, ["ck.npz"])
    assert gf.load(tmp_path / "ck.npz")["i"] == 2


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    gf.save({"version": "old", "w": gf.tensor([1.0])}, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="simulated"):
        gf.save({"version": "new", "w": gf.tensor([2.0])}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert gf.load(path)["version"] == "old"
    _no_temp_files(tmp_path, ["ck.npz"])


def test_write_interrupted_half_way(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    gf.save({"version": "old"}, path)
    real = np.savez

    def partial(f, **entries):
        real(f, **entries)  # the bytes are written ...
        raise KeyboardInterrupt  # ... but the process is interrupted before the rename

    monkeypatch.setattr(np, "savez", partial)
    with pytest.raises(KeyboardInterrupt):
        gf.save({"version": "new", "big": np.zeros(10000)}, path)
    monkeypatch.undo()
    assert gf.load(path) == {"version": "old"}
    _no_temp_files(tmp_path, ["ck.npz"])


def test_failed_rename_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"

    def no_replace(src, dst):
        raise PermissionError("simulated")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(PermissionError):
        gf.save({"a": 1}, path)
    monkeypatch.undo()
    _no_temp_files(tmp_path, [])


def test_unsupported_objects_raise_type_error_and_write_nothing(tmp_path):
    for bad in [{1, 2}, lambda x: x, {"a": {1}}, [object()], b"bytes", 1 + 2j, {(1, 2): 3},
                {1.5: "float key"}, {"m": nn.Linear(1, 1)}]:
        with pytest.raises(TypeError):
            gf.save(bad, tmp_path / "bad.npz")
    _no_temp_files(tmp_path, [])


def test_object_array_rejected(tmp_path):
    with pytest.raises(TypeError):
        gf.save({"a": np.array([{1}, "x"], dtype=object)}, tmp_path / "obj.npz")
    _no_temp_files(tmp_path, [])


def test_file_permissions_follow_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        gf.save({"a": 1}, tmp_path / "ck.npz")
        np.savez(tmp_path / "ref.npz", a=np.ones(1))
    finally:
        os.umask(umask)
    mode = os.stat(tmp_path / "ck.npz").st_mode & 0o777
    assert mode == os.stat(tmp_path / "ref.npz").st_mode & 0o777 == 0o644


# ---- no pickles -----------------------------------------------------------------------------------
def test_files_are_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "ck.npz"
    m = _model()
    gf.save({"model": m.state_dict(), "meta": {"epoch": 1, "name": "run"}, "arr": np.ones(3)}, path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as z:
        assert "__structure__" in z.files
        for name in z.files:
            arr = z[name]
            assert arr.dtype != object


# ---- broken files ----------------------------------------------------------------------------------
def _assert_value_error_naming(path):
    with pytest.raises(ValueError) as ei:
        gf.load(path)
    assert str(path) in str(ei.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        gf.load(tmp_path / "nope.npz")


def test_truncated_files(tmp_path):
    good = tmp_path / "good.npz"
    gf.save({"w": gf.ones(40, 40), "meta": [1, 2, "x"]}, good)
    raw = good.read_bytes()
    for n in sorted({0, 1, 30, 100, 1000, len(raw) // 2, len(raw) - 100, len(raw) - 22, len(raw) - 1}):
        p = tmp_path / f"trunc{n}.npz"
        p.write_bytes(raw[:n])
        _assert_value_error_naming(p)


def test_random_bytes(tmp_path):
    p = tmp_path / "random.npz"
    p.write_bytes(np.random.default_rng(0).bytes(2048))
    _assert_value_error_naming(p)
    p2 = tmp_path / "pickle.npz"  # the pickle magic: must be refused, not unpickled
    p2.write_bytes(b"\x80\x04\x95" + b"\x00" * 50)
    _assert_value_error_naming(p2)


def test_plain_npz_without_structure(tmp_path):
    p = tmp_path / "plain.npz"
    np.savez(p, x=np.ones(3))
    _assert_value_error_naming(p)
    q = tmp_path / "plain.npy"
    np.save(q, np.ones(3))
    _assert_value_error_naming(q)


def _fake(tmp_path, name, structure_bytes, **arrays):
    p = tmp_path / name
    with open(p, "wb") as f:
        np.savez(f, __structure__=np.frombuffer(structure_bytes, dtype=np.uint8), **arrays)
    return p


def test_bad_format_marker_and_version(tmp_path):
    import json

    def js(d):
        return json.dumps(d).encode()

    for name, s in [("marker.npz", js({"format": "something-else", "version": 1, "state": 1})),
                    ("nomarker.npz", js({"version": 1, "state": 1})),
                    ("version.npz", js({"format": "gradflow-checkpoint", "version": 99, "state": 1})),
                    ("list.npz", js([1, 2])),
                    ("notjson.npz", b"{not json"),
                    ("binary.npz", b"\xff\xfe\x00")]:
        _assert_value_error_naming(_fake(tmp_path, name, s))


@pytest.mark.parametrize("structure", [
    {"format": "gradflow-checkpoint", "version": 1},
    {"format": "gradflow-checkpoint", "version": 1,
     "state": {"__tensor__": 5, "device": "cpu", "requires_grad": False}},
], ids=["no_state", "missing_array"])
def test_inconsistent_structure(tmp_path, structure):
    import json
    _assert_value_error_naming(_fake(tmp_path, "bad.npz", json.dumps(structure).encode()))


def test_directory_path(tmp_path):
    with pytest.raises((ValueError, IsADirectoryError)):
        gf.load(tmp_path)
