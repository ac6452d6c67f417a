"""Every example runs and reaches its target (each in about a second)."""

import contextlib
import io
import subprocess

import pytest

from gradflow.examples import digits, fit_1d, logistic_regression, xor
from conftest import python_command


def quiet(main, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return main(**kwargs)


def test_logistic_regression():
    assert quiet(logistic_regression.main) >= 0.9


def test_xor_all_four_points():
    assert quiet(xor.main) == 1.0


def test_fit_1d():
    assert quiet(fit_1d.main) < 1e-3


def test_digits():
    assert quiet(digits.main) >= 0.95


@pytest.mark.parametrize("name", ["logistic_regression", "xor"])
def test_runs_as_a_module(name):
    done = subprocess.run(python_command("-m", f"gradflow.examples.{name}"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "loss" in done.stdout
