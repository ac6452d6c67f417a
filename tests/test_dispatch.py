"""Run-time dispatch of the C++ kernels (csrc/kernels/table.h, csrc/dispatch.cpp).

Every instruction-set level this build has and this CPU runs is forced in a fresh interpreter
(GRADFLOW_SIMD=<level>) and a representative set of kernels (activations forward and backward,
binary ops on contiguous and broadcast operands, reductions in row, column and lockstep layouts,
the softmax family, the optimizer updates; float32 and float64) is compared with the reference
backend evaluated in float64 on the same inputs. Also: what simd_level() reports, and the
error for a GRADFLOW_SIMD value the build or the CPU cannot honour."""
import os
import pathlib
import subprocess

import numpy as np
import pytest

import gradflow
from gradflow import _C
from gradflow.backend import reference as ref
from conftest import python_command

PACKAGE_PARENT = pathlib.Path(gradflow.__file__).resolve().parents[1]  # the gradflow under test
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}
LEVELS = _C.simd_levels()


def run_python(code, level, *args):
    """Runs `code` in a fresh interpreter with GRADFLOW_SIMD=level (None: unset)."""
    env = dict(os.environ)
    env.pop("GRADFLOW_SIMD", None)
    if level is not None:
        env["GRADFLOW_SIMD"] = level
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT), os.path.dirname(__file__),
                                         env.get("PYTHONPATH", "")])
    return subprocess.run(python_command("-c", code, *map(str, args)), env=env,
                          capture_output=True, text=True, timeout=300)


# ---- the cases: name -> (kernel call, reference call, tolerance scale) ----------------------------
def make_inputs(dtype, seed=7):
    """Arrays long enough for the vector bodies and odd enough for their tails."""
    r = np.random.default_rng(seed)
    special = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.5, -0.5, 15.0, -15.0, 30.0, -30.0])
    x = np.concatenate([special, r.standard_normal(4099) * 4]).astype(dtype)
    return {
        "x": x,
        "g": r.standard_normal(x.size).astype(dtype),
        "pos": (np.abs(x) + np.asarray(0.25, dtype)).astype(dtype),
        "m": (r.standard_normal((67, 1031)) * 3).astype(dtype),
        "b_row": r.standard_normal(1031).astype(dtype),
        "m2": (r.standard_normal((67, 1031)) * 3).astype(dtype),
        "cond": r.random((67, 1031)) < 0.5,
        "long": r.standard_normal(70001).astype(dtype),  # four quarters of >= 2^14: lockstep
        "logits": (r.standard_normal((37, 259)) * 5).astype(dtype),
        "labels": r.integers(0, 259, 37),
        "gl": r.standard_normal(37).astype(dtype),
        "p": r.standard_normal(5003).astype(dtype),
        "pg": r.standard_normal(5003).astype(dtype),
        "pm": r.standard_normal(5003).astype(dtype),
        "pv": np.abs(r.standard_normal(5003)).astype(dtype),
    }


def _sgd(k, a):
    p, buf = a["p"].copy(), a["pm"].copy()
    k.sgd_step(p, a["pg"], buf, 0.1, 0.9, 0.1, True, 0.01, False)
    return np.stack([p, buf])


def _adam(k, a):
    p, m, v = a["p"].copy(), a["pm"].copy(), a["pv"].copy()
    k.adam_step(p, a["pg"], m, v, 3, 1e-2, 0.9, 0.999, 1e-8, 0.01, True)
    return np.stack([p, m, v])


# Each case computes from the inputs `a` with the module `k` (_C, or the reference backend given
# float64 inputs). The tolerance: `ulps` ulps of the dtype relative to each value, plus `ulps`
# ulps of the largest magnitude of the case (for results that cancel, e.g. a log_softmax near 0).
CASES = {
    "sigmoid": (lambda k, a: k.sigmoid(a["x"]), 8),
    "tanh": (lambda k, a: k.tanh(a["x"]), 8),
    "relu": (lambda k, a: k.relu(a["x"]), 0),
    "leaky_relu": (lambda k, a: k.leaky_relu(a["x"], 0.1), 1),
    "gelu": (lambda k, a: k.gelu(a["x"], False), 8),
    "gelu_tanh": (lambda k, a: k.gelu(a["x"], True), 8),
    "softplus": (lambda k, a: k.softplus(a["x"], 1.0, 20.0), 8),
    "exp": (lambda k, a: k.exp(a["x"]), 8),
    "log": (lambda k, a: k.log(a["pos"]), 8),
    "sigmoid_backward": (lambda k, a: k.sigmoid_backward(ref.sigmoid(a["x"]), a["g"]), 8),
    "relu_backward": (lambda k, a: k.relu_backward(ref.relu(a["x"]), a["g"]), 0),
    "tanh_backward": (lambda k, a: k.tanh_backward(np.tanh(a["x"]), a["g"]), 8),
    "gelu_backward": (lambda k, a: k.gelu_backward(a["x"], a["g"], False), 8),
    "gelu_tanh_backward": (lambda k, a: k.gelu_backward(a["x"], a["g"], True), 8),
    "softplus_backward": (lambda k, a: k.softplus_backward(a["x"], a["g"], 1.0, 20.0), 8),
    "add": (lambda k, a: k.add(a["m"], a["m2"]), 1),
    "mul_row_broadcast": (lambda k, a: k.mul(a["m"], a["b_row"]), 1),
    "div_transposed": (lambda k, a: k.div(a["m"].T, a["m2"].T), 1),
    "pow": (lambda k, a: k.pow(a["pos"], a["g"]), 8),
    "maximum": (lambda k, a: k.maximum(a["m"], a["b_row"]), 0),
    "lt": (lambda k, a: k.lt(a["m"], a["m2"]), 0),
    "where": (lambda k, a: k.where(a["cond"], a["m"], a["b_row"]), 0),
    "linear_relu": (lambda k, a: k.linear_relu(a["m"][:, :67], a["m2"][:40, :67], a["b_row"][:40]), 16),
    # the ReLU backward and the bias gradient: the column blocks (67 rows) and one row
    "relu_backward_sum": (lambda k, a: k.relu_backward_sum(ref.relu(a["m"]), a["m2"])[1], 4),
    "relu_backward_sum_grad": (lambda k, a: k.relu_backward_sum(ref.relu(a["m"]), a["m2"])[0], 0),
    "relu_backward_sum_row": (lambda k, a: np.concatenate(
        [v.ravel() for v in k.relu_backward_sum(ref.relu(a["m"][:1]), a["m2"][:1])]), 4),
    "sum_all": (lambda k, a: k.sum(a["m"], None, False), 4),
    "sum_rows": (lambda k, a: k.sum(a["m"], (1,), False), 4),
    "sum_cols": (lambda k, a: k.sum(a["m"], (0,), False), 4),
    "sum_long": (lambda k, a: k.sum(a["long"], None, False), 4),
    "mean_cols": (lambda k, a: k.mean(a["m"], (0,), True), 4),
    "max_rows": (lambda k, a: k.max(a["m"], (1,), False), 0),
    "min_cols": (lambda k, a: k.min(a["m"], (0,), False), 0),
    "max_long": (lambda k, a: k.max(a["long"], None, False), 0),
    "logsumexp_rows": (lambda k, a: k.logsumexp(a["m"], (1,), False), 8),
    "logsumexp_cols": (lambda k, a: k.logsumexp(a["m"], (0,), False), 8),
    "softmax_rows": (lambda k, a: k.softmax(a["m"], -1), 8),
    "softmax_cols": (lambda k, a: k.softmax(a["m"], 0), 8),
    "log_softmax_rows": (lambda k, a: k.log_softmax(a["m"], -1), 8),
    "log_softmax_cols": (lambda k, a: k.log_softmax(a["m"], 0), 8),
    "softmax_backward": (lambda k, a: k.softmax_backward(ref.softmax(a["m"], -1), a["m2"], -1), 8),
    "log_softmax_backward_cols": (
        lambda k, a: k.log_softmax_backward(ref.log_softmax(a["m"], 0), a["m2"], 0), 8),
    "cross_entropy": (lambda k, a: np.stack(k.cross_entropy(a["logits"], a["labels"])), 8),
    "cross_entropy_backward": (
        lambda k, a: k.cross_entropy_backward(a["logits"], a["labels"],
                                              ref.cross_entropy(a["logits"], a["labels"])[1],
                                              a["gl"]), 8),
    "sgd_step": (_sgd, 4),
    "adam_step": (_adam, 16),
}

# The child: runs every case on _C with the inputs of each dtype, saves the results.
CHILD = """
import sys
import numpy as np
from gradflow import _C
import test_dispatch as T
out = {"level": np.array(_C.simd_level())}
for dt in (np.float32, np.float64):
    a = T.make_inputs(dt)
    for name, (call, _) in T.CASES.items():
        out[f"{name}/{np.dtype(dt).name}"] = np.asarray(call(_C, a))
np.savez(sys.argv[1], **out)
"""


def reference(name, dtype):
    """The reference backend on the float64 values of the case's inputs."""
    a = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in make_inputs(dtype).items()}
    return np.asarray(CASES[name][0](ref, a))


@pytest.fixture(scope="module")
def level_results(tmp_path_factory):
    """Each level's results, computed once in a fresh interpreter per level."""
    res = {}
    for level in LEVELS:
        path = tmp_path_factory.mktemp("simd") / f"{level}.npz"
        proc = run_python(CHILD, level, path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with np.load(path) as f:
            res[level] = dict(f)
    return res


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("level", LEVELS)
def test_level_matches_reference(level_results, level, name, dtype):
    got_all = level_results[level]
    assert str(got_all["level"]) == level
    got = got_all[f"{name}/{np.dtype(dtype).name}"]
    want = reference(name, dtype)
    assert got.shape == want.shape
    if got.dtype == bool:
        np.testing.assert_array_equal(got, want)
        return
    assert got.dtype == dtype
    ulps = CASES[name][1]
    eps = EPS[dtype]
    if ulps == 0:
        np.testing.assert_array_equal(got, want.astype(dtype))
        return
    scale = float(np.max(np.abs(want)))
    if name.startswith(("sum", "mean")):  # a sum's rounding scales with the sum of |terms|
        a = {k: np.abs(v.astype(np.float64)) for k, v in make_inputs(dtype).items() if v.dtype.kind == "f"}
        scale = float(np.max(CASES[name][0](ref, a)))
    np.testing.assert_allclose(got, want, rtol=ulps * eps, atol=ulps * eps * scale)


def test_default_level_is_the_best_the_cpu_runs():
    assert LEVELS, "no level"
    assert _C.simd_level() == LEVELS[-1]
    proc = run_python("from gradflow import _C; print(_C.simd_level())", "")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == LEVELS[-1]  # an empty GRADFLOW_SIMD is no choice


def test_levels_match_the_cpu_flags():
    """The levels found from cpuid/XGETBV agree with the flags the kernel reports."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if _C.build == "native":
        assert LEVELS == ["native"]
        return
    machine = os.uname().machine
    if machine in ("x86_64", "AMD64"):
        assert LEVELS[0] == "baseline" and set(LEVELS) <= {"baseline", "avx2", "avx512"}
    elif machine in ("aarch64", "arm64"):
        assert LEVELS[0] == "neon" and set(LEVELS) <= {"neon", "sve"}
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to compare the detected levels with")
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith(("flags", "Features")):
            flags |= set(line.split(":", 1)[1].split())
    if machine == "x86_64":
        v3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"} <= flags
        v4 = v3 and {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"} <= flags
        assert ("avx2" in LEVELS) == v3
        assert ("avx512" in LEVELS) == v4
    elif machine == "aarch64" and "sve" in LEVELS:
        assert "sve" in flags


@pytest.mark.parametrize("value", ["bogus", "AVX2 ", "sve" if os.uname().machine == "x86_64" else "avx2"])
def test_bad_value_fails_the_import_naming_the_levels(value):
    proc = run_python("import gradflow", value)
    assert proc.returncode != 0
    assert f"GRADFLOW_SIMD='{value}' is not a SIMD level of this build" in proc.stderr
    assert "this CPU runs: " + ", ".join(LEVELS) in proc.stderr
