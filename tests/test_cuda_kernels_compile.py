"""The CUDA backend's kernel table, checked without a GPU: it agrees with the backend interface,
the activation kernels paste gf_math.h, and the one non-textbook formula (the online
log-sum-exp merge) is right. Compiling and running the kernels: test_cuda_nvrtc.py (CuPy's code
generator and NVRTC) and the CUDA tests on the CuPy stand-in (GRADFLOW_TEST_FAKE_CUDA)."""

import numpy as np
import pytest

from gradflow.backend import reference
from gradflow.backend.cuda_kernels import KERNELS, USES
from gradflow.backend.cuda_kernels.defs import preamble_source
from gradflow.backend.cuda_kernels.header import gf_math_h

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
    for name, k in KERNELS.items():
        declared = {p.split()[-1] for p in k.in_params.split(",") if p.strip() and "raw" not in p}
        assert set(k.scalars) <= declared, name


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
