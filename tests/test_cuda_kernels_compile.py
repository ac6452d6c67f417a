"""The CUDA backend's fused kernels, checked without a GPU: nvcc compiles every one of them
(in every dtype it runs in), and the kernel table agrees with the backend interface."""

import shutil
import subprocess

import numpy as np
import pytest

from gradflow.backend import reference
from gradflow.backend.cuda_kernels import KERNELS, USES, Elementwise, standalone
from gradflow.backend.cuda_kernels.defs import preamble_source
from gradflow.backend.cuda_kernels.header import gf_math_h

NVCC = shutil.which("nvcc")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: the CUDA kernels are not compile-checked")
def test_every_kernel_compiles_with_nvcc(tmp_path):
    source, names = standalone.translation_unit()
    cu = tmp_path / "gradflow_kernels.cu"
    cu.write_text(source)
    r = subprocess.run([NVCC, "-c", "-std=c++17", "--gpu-architecture=sm_90",
                        "-o", str(tmp_path / "k.o"), str(cu)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    assert len(names) >= 2 * len(KERNELS)  # float and double of each


def test_a_broken_kernel_fails_to_compile(tmp_path):
    """The check above can fail: a typo in a kernel body is a compile error."""
    if NVCC is None:
        pytest.skip("nvcc is not installed")
    bad = Elementwise("gf_bad", "T x", "T y", "y = gf::math::no_such_function(x)", ("math",))
    source, _ = standalone.translation_unit([bad])
    cu = tmp_path / "bad.cu"
    cu.write_text(source)
    r = subprocess.run([NVCC, "-c", "-std=c++17", "--gpu-architecture=sm_90", "-o", str(tmp_path / "k.o"),
                        str(cu)], capture_output=True, text=True)
    assert r.returncode != 0 and "no_such_function" in r.stderr


def test_kernel_table_covers_the_interface():
    interface = {n for n in dir(reference) if not n.startswith("_") and callable(getattr(reference, n))}
    assert set(USES) <= interface
    used = {k for names in USES.values() for k in names}
    assert used == set(KERNELS), "a kernel is defined but never used, or used but not defined"
    # every activation and its derivative runs a fused kernel
    for fn in ("sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softplus"):
        assert fn in USES and fn + "_backward" in USES
    for fn in ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "logsumexp",
               "cross_entropy", "cross_entropy_backward", "sgd_step", "adam_step"):
        assert fn in USES


def test_activation_kernels_paste_gf_math_h_verbatim():
    header = gf_math_h()
    assert "namespace gf" in header
    for name, k in KERNELS.items():
        if "gf::math::" in getattr(k, "operation", ""):
            assert header in preamble_source(k), name


def test_scalar_parameters_are_declared_parameters():
    for name, scalars in standalone.SCALARS.items():
        k = KERNELS[name]
        declared = {n for _, _, n in standalone.parse_params(k.in_params)}
        assert set(scalars) <= declared, name


# ---- the one non-textbook formula, the online log-sum-exp merge, replayed in numpy -------------
def _lse_merge(a, b):  # gf_lse_merge of cuda_kernels.defs, line by line
    if b[0] > a[0] or b[0] != b[0]:
        a, b = b, a
    if b[1] == 0:
        return a
    return (a[0], a[1] + b[1] if a[0] == b[0] else a[1] + b[1] * np.exp(b[0] - a[0]))


@pytest.mark.parametrize("case", ["random", "all_neg_inf", "some_neg_inf", "nan", "pos_inf", "huge"])
def test_online_logsumexp_merge_matches_reference(case):
    rng = np.random.default_rng(0)
    x = rng.normal(size=37) * 30
    if case == "all_neg_inf":
        x[:] = -np.inf
    elif case == "some_neg_inf":
        x[::3] = -np.inf
    elif case == "nan":
        x[5] = np.nan
    elif case == "pos_inf":
        x[7] = np.inf
    elif case == "huge":
        x += 1e4
    parts = [(v, 1.0) for v in x] + [(-np.inf, 0.0)] * 3  # identities, as idle threads hold
    rng.shuffle(parts)
    while len(parts) > 1:  # a tree in a random order, as the GPU's threads and blocks merge
        parts = [_lse_merge(*parts[i:i + 2]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    m, s = parts[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        got = m + np.log(s)
    np.testing.assert_allclose(got, reference.logsumexp(x, (0,), False), rtol=1e-13)
