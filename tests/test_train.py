"""python -m gradflow.train, called in-process through main(argv)."""

import contextlib
import io
import os
import warnings

import numpy as np
import pytest

import gradflow as gf
from conftest import requires_cuda
from gradflow import train


def run(argv):
    """main(argv) with its progress output swallowed; returns (result, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        result = train.main(argv)
    return result, out.getvalue()


def fails(argv, capsys):
    """The exit status and stderr of main(argv) for arguments it must reject."""
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    return e.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "digits_mlp.npz"
    return run(["--out", str(out)])


def test_defaults_reach_97_percent(default_run):
    result, stdout = default_run
    assert result["test_accuracy"] >= 0.97
    assert f"test accuracy {result['test_accuracy']:.4f}" in stdout
    assert "train acc" in stdout and "s per epoch" in stdout
    assert f"checkpoint: {result['checkpoint']}" in stdout
    assert len(result["history"]["loss"]) == 20
    assert result["history"]["loss"][-1] < result["history"]["loss"][0]


def test_checkpoint_loads_into_a_fresh_model(default_run):
    result, _ = default_run
    assert os.path.isfile(result["checkpoint"])
    model, mean, std = train.load_model(result["checkpoint"])
    x, y = gf.data.load_digits()
    _, x_test, _, y_test = gf.data.train_test_split(x, y, test_fraction=0.2, seed=0, stratify=y)
    x_test = gf.tensor((x_test.numpy() - mean) / std)
    assert train.accuracy(model, x_test, y_test) == result["test_accuracy"]


def test_same_seed_same_numbers(tmp_path):
    argv = ["--epochs", "2", "--hidden", "32", "--out", str(tmp_path / "a.npz")]
    first, _ = run(argv + ["--seed", "3"])
    second, _ = run(argv + ["--seed", "3"])
    other, _ = run(argv + ["--seed", "4"])
    assert first["history"]["loss"] == second["history"]["loss"]
    assert first["test_accuracy"] == second["test_accuracy"]
    assert other["history"]["loss"] != first["history"]["loss"]


@pytest.mark.parametrize("optimizer,device", [
    ("sgd", "cpu"), ("adam", "cpu"), pytest.param("sgd", "cuda", marks=requires_cuda)])
def test_jit_and_no_jit_give_the_same_checkpoint(tmp_path, optimizer, device):
    argv = ["--epochs", "3", "--hidden", "32,16", "--optimizer", optimizer, "--batch-size", "50",
            "--device", device]
    with warnings.catch_warnings():
        warnings.simplefilter("error", gf.JitWarning)  # every step is replayable
        jitted, _ = run(argv + ["--out", str(tmp_path / "jit.npz")])
    eager, _ = run(argv + ["--no-jit", "--out", str(tmp_path / "eager.npz")])
    assert jitted["history"]["loss"] == eager["history"]["loss"]
    assert jitted["test_accuracy"] == eager["test_accuracy"]
    a, b = np.load(jitted["checkpoint"]), np.load(eager["checkpoint"])
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("activation", sorted(train.ACTIVATIONS))
def test_every_activation_and_adam_learn(tmp_path, activation):
    result, _ = run(["--epochs", "2", "--hidden", "32", "--activation", activation,
                     "--optimizer", "adam", "--lr", "0.01", "--out", str(tmp_path / "m.npz")])
    assert result["test_accuracy"] > 0.85


def test_threads_option(tmp_path):
    before = gf.get_num_threads()
    try:
        run(["--epochs", "1", "--hidden", "8", "--threads", "1", "--out", str(tmp_path / "m.npz")])
        assert gf.get_num_threads() == 1
    finally:
        gf.set_num_threads(before)


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves" / "run.png"
    run(["--epochs", "2", "--hidden", "16", "--plot", str(png), "--out", str(tmp_path / "m.npz")])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,message", [
    (["--hidden", "abc"], "argument --hidden: expected comma-separated layer widths"),
    (["--hidden", "64,0"], "argument --hidden: layer widths must be >= 1"),
    (["--lr", "-1"], "argument --lr: must be > 0"),
    (["--lr", "fast"], "argument --lr: expected a number"),
    (["--lr", "nan"], "argument --lr: must be finite"),
    (["--epochs", "0"], "argument --epochs: must be >= 1"),
    (["--epochs", "2.5"], "argument --epochs: expected an integer"),
    (["--batch-size", "0"], "argument --batch-size: must be >= 1"),
    (["--activation", "swish"], "argument --activation: invalid choice"),
    (["--dataset", "mnist"], "--dataset mnist needs --data-dir"),
])
def test_bad_arguments_exit_2_with_usage(argv, message, capsys):
    code, err = fails(argv, capsys)
    assert code == 2
    assert err.startswith("usage: python -m gradflow.train")
    assert message in err


def test_cuda_without_gpu_is_a_usage_error(capsys):
    if gf.cuda.is_available():
        pytest.skip("a GPU is available")
    code, err = fails(["--device", "cuda"], capsys)
    assert code == 2 and "--device cuda: no usable GPU" in err
    assert gf.cuda.unavailable_reason() in err


def test_mnist_folder_missing_files_is_a_usage_error(tmp_path, capsys):
    code, err = fails(["--dataset", "mnist", "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "train-images-idx3-ubyte" in err and str(tmp_path) in err


def test_mnist_from_idx_files(tmp_path):
    # A tiny fake MNIST: the same pipeline as the real one, on 20 + 10 images.
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        for kind, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
            data = rng.integers(0, 10 if kind.startswith("labels") else 256, shape, dtype=np.uint8)
            header = bytes([0, 0, 8, data.ndim]) + b"".join(d.to_bytes(4, "big") for d in shape)
            (tmp_path / f"{prefix}-{kind}-ubyte").write_bytes(header + data.tobytes())
    result, _ = run(["--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1",
                     "--hidden", "8", "--out", str(tmp_path / "m.npz")])
    model, _, _ = train.load_model(result["checkpoint"])
    assert model[0].weight.shape == (8, 784)
