"""Data-parallel training on real MPI: each test starts a small mpiexec job (MPICH's wheel,
``pip install "gradflow[mpi]"``) of tests/_mpi_worker.py under ``python -m mpi4py``, with
MPIEXEC_TIMEOUT so that a hang ends as a failure. 3 and 4 ranks oversubscribe a 2-core
machine. Skipped, visibly, where mpi4py or mpiexec is missing."""

import os
import re
import subprocess
import sys

import pytest

from gradflow.distributed import is_available
from gradflow.distributed.launch import command, find_mpiexec

pytestmark = pytest.mark.skipif(
    not is_available() or find_mpiexec() is None,
    reason='needs mpi4py and mpiexec: pip install "gradflow[mpi]"')

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_mpi_worker.py")
TIMEOUT = 120  # seconds, for MPICH's launcher; each job takes a few


def mpirun(n, *args, launcher=False, **env):
    full_env = {**os.environ, "MPIEXEC_TIMEOUT": str(TIMEOUT), **env}
    if launcher:
        cmd = [sys.executable, "-m", "gradflow.distributed.launch", "-n", str(n), "--", *args]
    else:
        cmd = command(n, list(args))
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True,
                          timeout=TIMEOUT + 30)


def worker(n, case, *args, **env):
    return mpirun(n, WORKER, case, *args, **env)


def ok(result, n):
    assert result.returncode == 0, result.stdout + result.stderr
    # (the launcher forwards the ranks' output in chunks, not lines)
    assert sorted(int(r) for r in re.findall(r"rank (\d+) done", result.stdout)) == list(range(n))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_training_matches_one_process(n):
    # SGD momentum float64 (1e-10) and float32 (1e-4), Adam, small buckets; batch 50 over
    # 3 or 4 ranks is uneven, and 130 samples end each epoch with a short batch
    ok(worker(n, "exact"), n)


def test_collectives():
    ok(worker(3, "collectives"), 3)


def test_checkpoint_written_by_rank_0_resumes_exactly(tmp_path):
    ok(worker(2, "checkpoint", str(tmp_path)), 2)


def test_an_exception_on_one_rank_ends_the_job_with_its_traceback():
    result = worker(2, "fail")
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "ValueError: rank 1 fails on purpose at step 2" in out
    assert "Traceback" in out and "TIMED OUT" not in out.upper()


def test_without_python_m_mpi4py_an_exception_still_ends_the_job():
    # init_process_group's excepthook aborts the job after printing the traceback
    from gradflow.distributed.launch import find_mpiexec

    result = subprocess.run([find_mpiexec(), "-n", "2", sys.executable, WORKER, "fail"],
                            env={**os.environ, "MPIEXEC_TIMEOUT": str(TIMEOUT)},
                            capture_output=True, text=True, timeout=TIMEOUT + 30)
    assert result.returncode != 0
    assert "ValueError: rank 1 fails on purpose at step 2" in result.stderr
    assert "TIMED OUT" not in (result.stdout + result.stderr).upper()


def test_different_models_are_named():
    result = worker(2, "other_model")
    assert result.returncode != 0
    assert "models differ: rank 0 has 4 parameters and rank 1 6" in result.stderr


def test_debug_mode_catches_a_skipped_step():
    result = worker(2, "skip_step", GRADFLOW_DISTRIBUTED_DEBUG="DETAIL")
    assert result.returncode != 0
    assert "the ranks started different collectives" in result.stderr
    assert "destroy_process_group" in result.stderr and "step 3 bucket 0" in result.stderr


def test_launcher_sets_one_thread_per_rank_and_leaves_the_users_settings(tmp_path):
    import json

    seen = tmp_path / "env.json"
    ok(mpirun(2, WORKER, "launcher_env", str(seen), launcher=True), 2)
    throttle = "1" if 2 > os.cpu_count() else None
    assert json.loads(seen.read_text()) == [["1", throttle]] * 2
    ok(mpirun(1, WORKER, "launcher_env", str(seen), launcher=True, OMP_NUM_THREADS="2",
              MPIR_CVAR_CH4_PROGRESS_THROTTLE="0"), 1)
    assert json.loads(seen.read_text()) == [["2", "0"]]


def test_the_training_command_distributed_matches_one_process(tmp_path):
    """mpiexec -n 2 python -m mpi4py -m gradflow.train --distributed: the same test accuracy
    and, up to float32 rounding, the same checkpoint as one process on the same batches."""
    import numpy as np

    import gradflow as gf

    common = ["--epochs", "2", "--hidden", "64,32"]
    one = subprocess.run([sys.executable, "-m", "gradflow.train", *common, "--out",
                          str(tmp_path / "one.npz")], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert one.returncode == 0, one.stderr
    two = mpirun(2, "-m", "gradflow.train", "--distributed", *common, "--out",
                 str(tmp_path / "two.npz"))
    assert two.returncode == 0, two.stderr
    assert "2 ranks" in two.stdout and two.stdout.count("test accuracy") == 1  # rank 0 prints
    a, b = gf.load(str(tmp_path / "one.npz")), gf.load(str(tmp_path / "two.npz"))
    assert a["test_accuracy"] == b["test_accuracy"]
    for name, p in a["model"].items():
        p, q = p.numpy(), b["model"][name].numpy()
        assert np.max(np.abs(p - q)) <= 1e-4 * np.max(np.abs(p)), name


def test_readme_example_runs_on_two_ranks(tmp_path):
    import pathlib

    import gradflow as gf

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    (code,) = re.findall(r"^```py\n(.*?)^```$", readme, re.S | re.M)
    (tmp_path / "train.py").write_text(code)
    here = os.path.dirname(os.path.dirname(os.path.abspath(gf.__file__)))  # (run elsewhere)
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    result = subprocess.run(command(2, ["train.py"]), cwd=tmp_path, capture_output=True,
                            text=True, timeout=TIMEOUT + 30,
                            env={**os.environ, "MPIEXEC_TIMEOUT": str(TIMEOUT), "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    state = gf.load(str(tmp_path / "model.npz"))
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias"}
