"""Shared fixtures for the Tensor/autograd core tests.

``device`` runs a test on "cpu" and on "cuda"; the CUDA case is skipped, with the reason shown in
the pytest summary (``-rs``), when ``gradflow.cuda`` is missing or no GPU is usable.

GRADFLOW_TEST_FAKE_CUDA=N runs the CUDA cases on ``tests/fakecupy``, a numpy-backed stand-in
for CuPy with N fake devices that compiles the CUDA kernels' source for the host. It is put on
the import path only when no real CuPy is importable: it never shadows one.
"""
import importlib.util
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

FAKE_CUDA = int(os.environ.get("GRADFLOW_TEST_FAKE_CUDA", "0") or 0)
if FAKE_CUDA:
    _fake = Path(__file__).with_name("fakecupy")
    _spec = importlib.util.find_spec("cupy")
    if _spec is not None and Path(_spec.origin).parents[1] != _fake:
        raise pytest.UsageError("GRADFLOW_TEST_FAKE_CUDA is set but a real CuPy is importable; "
                                "the stand-in never replaces it (unset the variable)")
    sys.path.insert(0, str(_fake))

import gradflow as gf  # noqa: E402


def cuda_skip_reason():
    """None when CUDA tests can run, otherwise a human-readable reason."""
    cuda = getattr(gf, "cuda", None)
    if cuda is None:
        return "gradflow.cuda is not available (module missing)"
    is_available = getattr(cuda, "is_available", None)
    if is_available is None:
        return "gradflow.cuda has no is_available()"
    try:
        ok = is_available()
    except Exception as e:  # a broken CUDA stack should skip, not error
        return f"gradflow.cuda.is_available() raised {type(e).__name__}: {e}"
    if not ok:
        why = getattr(cuda, "unavailable_reason", lambda: None)()
        return f"CUDA is not available{': ' + why if why else ''}"
    return None


_CUDA_SKIP = cuda_skip_reason()
requires_cuda = pytest.mark.skipif(_CUDA_SKIP is not None, reason=_CUDA_SKIP or "")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=requires_cuda)])
def device(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def t64(a, requires_grad=True, device="cpu"):
    """A float64 tensor from array-like ``a``."""
    return gf.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


def gf_on(device):
    """gf, with tensor() creating on ``device`` (for op cases whose index and mask constants
    must live beside their operands)."""
    if device == "cpu":
        return gf

    class OnDevice:
        def __getattr__(self, attr):
            return getattr(gf, attr)

        @staticmethod
        def tensor(a, **kw):
            return gf.tensor(a, device=device, **kw)
    return OnDevice()


def python_command(*args):
    """The command line that runs ``args`` in a new interpreter like this one. Where the suite
    runs under an emulator (the aarch64 CI job: qemu-user), GRADFLOW_TEST_LAUNCHER holds the
    emulator's command, which has to start the child as well."""
    return [*shlex.split(os.environ.get("GRADFLOW_TEST_LAUNCHER", "")), sys.executable, *args]


def host(t):
    """A tensor's values as a numpy array, whatever it requires."""
    return np.asarray(t.detach().numpy() if t.device == "cpu" else t.detach().cpu().numpy())
