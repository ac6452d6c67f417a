"""Threads: OMP_NUM_THREADS is honoured, the BLAS runs its jobs on the same OpenMP pool as the
kernels, and threaded GEMMs stay correct in every configuration of that pool (each case in a
fresh interpreter, since OpenMP reads its environment once)."""

import os
import subprocess
import textwrap

import numpy as np
import pytest

import gradflow as gf
from gradflow import _C
from conftest import python_command

# Big enough that OpenBLAS splits each product into one job per thread.
_SCRIPT = textwrap.dedent("""
    import numpy as np, gradflow as gf
    from gradflow import _C
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        a, b = rng.standard_normal((300, 200)).astype(dt), rng.standard_normal((200, 400)).astype(dt)
        want = a.astype(np.float64) @ b
        for _ in range(3):
            got = _C.matmul(a, b)
            assert np.allclose(got, want, rtol=1e-4, atol=1e-4), float(np.abs(got - want).max())
        # an OpenMP kernel between GEMMs, as in a training step
        assert np.allclose(_C.relu(_C.matmul(a, b)), np.maximum(want, 0), rtol=1e-4, atol=1e-4)
    print(gf.get_num_threads())
""")


@pytest.mark.parametrize("env, threads", [
    ({"OMP_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "2"}, 2),
    ({"OMP_NUM_THREADS": "3"}, 3),  # more threads than cores
    # Teams that might be smaller than the BLAS's job count: the jobs run on their own threads.
    ({"OMP_NUM_THREADS": "2", "OMP_DYNAMIC": "true"}, 2),
    ({"OMP_NUM_THREADS": "2", "OMP_THREAD_LIMIT": "1"}, None),
])
def test_blas_on_the_openmp_pool(env, threads):
    out = subprocess.run(python_command("-c", _SCRIPT), env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if threads is not None:
        assert int(out.stdout) == threads


def test_concurrent_gemms_from_python_threads():
    """matmul releases the GIL: products from several Python threads at once, each threaded
    on its own OpenMP team, must not share OpenBLAS's job state."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    pairs = [(rng.standard_normal((256, 300)).astype(np.float32),
              rng.standard_normal((300, 200)).astype(np.float32)) for _ in range(4)]
    wants = [a.astype(np.float64) @ b for a, b in pairs]

    def work(i):
        a, b = pairs[i % 4]
        return all(np.allclose(_C.matmul(a, b), wants[i % 4], rtol=1e-4, atol=1e-4)
                   for _ in range(20))

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(work, range(8)))


def test_set_num_threads_round_trip():
    before = gf.get_num_threads()
    try:
        gf.set_num_threads(1)
        assert gf.get_num_threads() == 1
        a = np.ones((300, 200), np.float32)
        np.testing.assert_array_equal(_C.matmul(a, a.T), np.full((300, 300), 200, np.float32))
    finally:
        gf.set_num_threads(before)
    with pytest.raises(ValueError, match="n >= 1"):
        gf.set_num_threads(0)


@pytest.mark.parametrize("user_value", [None, "20"])
def test_openblas_settings_do_not_leak(user_value):
    """The idle-thread setting for gradflow's OpenBLAS is read while it loads and removed again,
    so numpy's OpenBLAS (loaded later here) and child processes keep their own defaults; a
    user's value is left as it was."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if user_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user_value
    code = "import os, gradflow, numpy; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    out = subprocess.run(python_command("-c", code), env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(user_value)


_FORK_SCRIPT = textwrap.dedent("""
    import os, warnings, numpy as np, gradflow as gf
    from gradflow import _C
    from multiprocessing import get_context
    x = np.ones(1 << 20, np.float32)
    a = np.ones((300, 200), np.float32)
    _C.relu(x), _C.matmul(a, a.T), _C.sum(x, None)  # the parent's threads are running now

    def work(i):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            gf.set_num_threads(2)  # refused with a warning: OpenMP cannot restart here
        assert gf.get_num_threads() == 1 and len(w) == 1 and "spawn" in str(w[0].message)
        return float(_C.relu(x).sum() + _C.matmul(a, a.T)[0, 0] + _C.sum(x, None))

    with get_context("fork").Pool(2) as pool:
        print(pool.map(work, range(4)))
    print(gf.get_num_threads())  # the parent keeps its threads
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_run_single_threaded():
    """A process forked after gradflow's threads ran must not hang in its first threaded kernel
    or GEMM (libgomp cannot restart its pool there): it runs them on one thread."""
    out = subprocess.run(python_command("-c", _FORK_SCRIPT), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    results, parent_threads = out.stdout.strip().splitlines()
    assert results == str([float((1 << 20) + 200 + (1 << 20))] * 4)
    assert int(parent_threads) == gf.get_num_threads()
