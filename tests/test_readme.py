"""The README's code runs and its commands name things that exist."""

import contextlib
import io
import os
import re

import pytest

import gradflow as gf

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def blocks(language):
    """The fenced code blocks whose info string is ``language`` ("" for plain blocks)."""
    with open(README, encoding="utf-8") as f:
        fences = re.findall(r"^```(\w*)\n(.*?)^```$", f.read(), re.S | re.M)
    return [body for lang, body in fences if lang == language]


def test_python_example_runs_and_learns():
    code = blocks("python")[0]
    scope = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, "README.md", "exec"), scope)
    assert out.getvalue().splitlines()[0] == "tensor([2., 4., 6.])"
    assert scope["model"].weight.item() == pytest.approx(3, abs=0.05)
    assert scope["model"].bias.item() == pytest.approx(-1, abs=0.05)


def test_quick_start_commands():
    assert blocks("")[0].splitlines() == [
        "python -m venv .venv && . .venv/bin/activate && pip install . && python -m gradflow.train",
        "pip install -r requirements-test.txt && python -m pytest -q",
    ]


def test_example_commands_name_real_modules():
    import importlib.util

    modules = re.findall(r"python -m (gradflow\.examples\.\w+)", blocks("")[1])
    assert len(modules) == 5
    for name in modules:
        assert importlib.util.find_spec(name) is not None, name


def test_checkpoint_prediction_example_runs(tmp_path, monkeypatch):
    from gradflow import train

    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        train.main(["--epochs", "2"])  # writes checkpoints/digits_mlp.npz, as the README says
        code = blocks("python")[1]
        scope = {}
        with contextlib.redirect_stdout(io.StringIO()) as out:
            exec(compile(code, "README.md", "exec"), scope)
    assert float(out.getvalue()) > 0.8


def test_documented_names_exist():
    for name in ["grad", "no_grad", "save", "load", "manual_seed", "set_num_threads",
                 "get_num_threads", "from_dlpack", "concatenate", "stack"]:
        assert hasattr(gf, name), name
    for path in ["autograd.detect_anomaly", "autograd.gradcheck", "autograd.gradgradcheck",
                 "viz.to_dot", "viz.render", "profiler.profile", "cuda.is_available",
                 "cuda.unavailable_reason", "optim.lr_scheduler.StepLR",
                 "optim.lr_scheduler.CosineAnnealingLR", "optim.AdamW", "nn.init",
                 "data.make_spirals", "data.load_mnist"]:
        obj = gf
        for part in path.split("."):
            obj = getattr(obj, part)
