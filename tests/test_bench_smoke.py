"""Smoke test of the benchmark suite: ``python -m bench --quick`` runs every suite, every
contender agrees with the reference, and the JSON records the machine. Never asserts a speed."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is a directory of the checkout, not an installed package

from bench import harness  # noqa: E402
from bench.contenders import Numpy  # noqa: E402


@pytest.mark.skipif(bool(os.environ.get("GRADFLOW_TEST_LAUNCHER")),
                    reason="runs under a launcher (an emulator): the quick benchmark run would "
                           "time the emulator, for minutes of the emulated suite's time")
def test_quick_run(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    rows = doc["results"]
    assert {r["suite"] for r in rows} == {"gemm", "elementwise", "reduce", "overhead", "mlp",
                                          "backprop-cost"}
    assert {r["family"] for r in rows} >= {"gradflow", "numpy"}
    bad = [(r["case"], r["contender"], r.get("error"), r.get("error_vs_tolerance"))
           for r in rows if r["agreed"] is not True]
    assert not bad, bad
    assert all(r["median_s"] > 0 and len(r["times_s"]) >= 3 for r in rows)
    m = doc["machine"]
    assert m["cpu_model"] and m["cores"] >= 1 and m["simd_level"]
    assert m["gradflow"]["blas_kernel"] and m["gradflow"]["threads"] >= 1
    assert m["numpy"]["version"]
    # the contention suite: its levels, each with rows for the three configurations and the
    # training command's epoch times
    levels = doc["analysis"]["contention"]["levels"]
    assert [lv["neighbours"] for lv in levels] == [0, 1]
    for lv in levels:
        assert lv["rows"] and not lv["errors"], lv["errors"]
        assert all({"gradflow", "gradflow-1t"} <= set(r["times"]) for r in lv["rows"])
        assert lv["train_s_per_epoch"]["default"]["median_s"] > 0


def test_wrong_result_is_reported_not_timed():
    case = harness.Case("t", "wrong", lambda: (np.ones(8, np.float32),), lambda x: 2 * x.astype(np.float64),
                        {"numpy": harness.on_arrays(lambda c, x: 2 * x + 1e-3)})
    (row,) = harness.run_case(case, [Numpy("cpu")], harness.QUICK, case.inputs(),
                              case.reference(*case.inputs()))
    assert row["agreed"] is False and row["status"] == "WRONG" and "median_s" not in row
