"""Threads: OMP_NUM_THREADS is honoured, threaded GEMMs (split by gradflow into single-threaded
BLAS calls on its pool) stay correct in every configuration, and results do not depend on the
thread count or on other processes competing for the cores (each environment case in a fresh
interpreter, since the start count is read once)."""

import contextlib
import os
import subprocess
import textwrap
import time

import numpy as np
import pytest

import gradflow as gf
from gradflow import _C
from conftest import python_command

# Big enough that each product is split into blocks for the threads.
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
        # a threaded kernel between GEMMs, as in a training step
        assert np.allclose(_C.relu(_C.matmul(a, b)), np.maximum(want, 0), rtol=1e-4, atol=1e-4)
    print(gf.get_num_threads())
""")


@pytest.mark.parametrize("env, threads", [
    ({"OMP_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "2"}, 2),
    ({"OMP_NUM_THREADS": "3"}, 3),  # more threads than cores
    # OpenMP's other variables (read by OpenMP builds, ignored by the others)
    ({"OMP_NUM_THREADS": "2", "OMP_DYNAMIC": "true"}, 2),
    ({"OMP_NUM_THREADS": "2", "OMP_THREAD_LIMIT": "1"}, None),
    ({"OMP_NUM_THREADS": "4,2"}, 4),  # a nested list: the first level's count
])
def test_start_count_and_threaded_gemms(env, threads):
    out = subprocess.run(python_command("-c", _SCRIPT), env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if threads is not None:
        assert int(out.stdout) == threads


def test_concurrent_gemms_from_python_threads():
    """matmul releases the GIL: products from several Python threads at once (one has the pool,
    the others run their blocks on their own thread) must not share any BLAS state."""
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


@pytest.mark.parametrize("user_value", [None, "3"])
def test_openblas_settings_do_not_leak(user_value):
    """gradflow's OpenBLAS loads with OPENBLAS_NUM_THREADS=1 (it starts no threads of its own),
    and the variable is put back afterwards, so that numpy's OpenBLAS (loaded later here) and
    child processes keep their own defaults; a user's value is left as it was."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if user_value is not None:
        env["OPENBLAS_NUM_THREADS"] = user_value
    code = ("import os, gradflow, numpy; from gradflow import _C\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), _C.blas_num_threads())")
    out = subprocess.run(python_command("-c", code), env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(user_value), "1"]


def test_threading_info_says_what_runs():
    info = _C.threading_info()
    assert info["pool"] == "gradflow" and isinstance(info["openmp"], bool)
    assert info["threads"] == gf.get_num_threads() and info["blas_threads"] == 1
    before = gf.get_num_threads()
    try:
        gf.set_num_threads(3)
        _C.relu(np.ones(1 << 20, np.float32))  # the workers start on first use
        info = _C.threading_info()
        assert info["threads"] == 3 and info["workers"] >= 2
    finally:
        gf.set_num_threads(before)


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
            gf.set_num_threads(2)  # refused with a warning: the parent's workers are not here
        assert gf.get_num_threads() == 1 and len(w) == 1 and "spawn" in str(w[0].message)
        return float(_C.relu(x).sum() + _C.matmul(a, a.T)[0, 0] + _C.sum(x, None))

    with get_context("fork").Pool(2) as pool:
        print(pool.map(work, range(4)))
    print(gf.get_num_threads())  # the parent keeps its threads
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_run_single_threaded():
    """A process forked after gradflow's threads ran must not hang in its first threaded kernel
    or GEMM (its parent's workers do not exist there): it runs them on one thread."""
    out = subprocess.run(python_command("-c", _FORK_SCRIPT), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    results, parent_threads = out.stdout.strip().splitlines()
    assert results == str([float((1 << 20) + 200 + (1 << 20))] * 4)
    assert int(parent_threads) == gf.get_num_threads()


# ---- results under contention ------------------------------------------------------------------
_SPIN = ("import os, sys\n"
         "if hasattr(os, 'sched_setaffinity'):\n"
         "    os.sched_setaffinity(0, {int(sys.argv[1])})\n"
         "print('ready', flush=True)\n"
         "while True:\n"
         "    pass\n")


@contextlib.contextmanager
def busy_neighbours(n):
    """n processes spinning on the last n CPUs this process may use (one each)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    procs = [subprocess.Popen(python_command("-c", _SPIN, str(c)), stdout=subprocess.PIPE,
                              text=True) for c in (cpus[-n:] if n <= len(cpus) else cpus * n)[:n]]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()
            p.stdout.close()


def _kernel_results():
    """Elementwise kernels, every reduction layout (full, lockstep rows whose split between
    threads falls mid-group, column mode) and argmax, on sizes that the threads split."""
    rng = np.random.default_rng(7)
    out = []
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(1 << 20).astype(dt) * 3
        out += [_C.tanh(x), _C.exp(x), _C.gelu(x), _C.sigmoid_backward(_C.sigmoid(x), x)]
        for shape, axes in [((1 << 21,), None), ((37, 3000), 1), ((3000, 37), 0), ((5, 200000), 1),
                            ((13, 1 << 16), 1), ((7, 3, 70001), (0, 2)), ((999, 1001), 0)]:
            a = (rng.standard_normal(shape) * 1e3 + 1e2).astype(dt)
            out += [f(a, axes) for f in (_C.sum, _C.mean, _C.logsumexp, _C.max)]
        a = rng.standard_normal((4096, 300)).astype(dt)
        out += [_C.softmax(a, 1), _C.argmax(a, None), _C.argmax(a, 0)]
    return out


def _training_result():
    """Three SGD steps of an MLP (threaded GEMMs, kernels, reductions): its parameters."""
    rng = np.random.default_rng(3)
    x = gf.tensor(rng.standard_normal((256, 300), dtype=np.float32))
    y = gf.tensor(rng.integers(0, 10, 256))
    model = gf.nn.Sequential(gf.nn.Linear(300, 256), gf.nn.ReLU(), gf.nn.Linear(256, 10))
    for p, v in zip(model.parameters(), _initial(rng, model)):
        p.data[...] = v
    opt = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        gf.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def _initial(rng, model):
    return [rng.uniform(-0.05, 0.05, p.shape).astype(np.float32) for p in model.parameters()]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v, equal_nan=True) for u, v in zip(a, b))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins its busy neighbours")
def test_results_do_not_depend_on_threads_or_contention():
    """Kernel results are the same for any thread count, and with one or two other processes
    keeping cores busy (which changes which thread runs which chunk); a training step, whose
    GEMM blocks depend on the thread count, is the same at a given count under contention."""
    before = gf.get_num_threads()
    try:
        gf.set_num_threads(1)
        kernels = _kernel_results()
        for n in (2, 3):
            gf.set_num_threads(n)
            assert _same(_kernel_results(), kernels), f"{n} threads"
        gf.set_num_threads(2)
        training = _training_result()
        for neighbours in (1, 2):
            with busy_neighbours(neighbours):
                for n in (2, 3):
                    gf.set_num_threads(n)
                    assert _same(_kernel_results(), kernels), f"{n} threads, {neighbours} busy"
                gf.set_num_threads(2)
                for _ in range(3):
                    assert _same(_training_result(), training), f"training, {neighbours} busy"
    finally:
        gf.set_num_threads(before)


@pytest.mark.parametrize("before_job,counter", [(False, "stalls"), (True, "absences")],
                         ids=["stalled", "absent"])
def test_a_worker_kept_off_its_core_sends_the_next_jobs_to_the_calling_thread(before_job, counter):
    # A worker that sleeps before each chunk it takes (as one kept off its core by another
    # process would) makes jobs stall; one that sleeps before it looks at a job leaves every
    # chunk of a long job to the caller (an absence). Either way the following jobs run on the
    # calling thread alone for a while, GEMMs in the same blocks: every result is the same.
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1 << 20).astype(np.float32)
    a, b = rng.standard_normal((64, 784)).astype(np.float32), rng.standard_normal((784, 512)).astype(np.float32)
    before = gf.get_num_threads()
    try:
        gf.set_num_threads(1)
        t = time.perf_counter()
        expected = _C.exp(x)
        alone = time.perf_counter() - t
        gf.set_num_threads(2)
        product = _C.matmul(a, b)  # (the worker starts)
        time.sleep(0.6)  # (past a solo spell an earlier stall may have started)
        start = _C.threading_info()
        # a delay well beyond the whole job's time on one thread (under qemu too)
        _C._pool_set_test_delay(int(max(0.02, 4 * alone) * 1e6), before_job)
        try:
            for _ in range(4):  # a stall or an absence, then jobs on this thread alone
                assert np.array_equal(_C.exp(x), expected)
                assert np.array_equal(_C.matmul(a, b), product)
        finally:
            _C._pool_set_test_delay(0)
        info = _C.threading_info()
        assert info[counter] > start[counter]
        assert info["solo_jobs"] > start["solo_jobs"]
    finally:
        gf.set_num_threads(before)



def test_a_solo_spell_doubles_only_while_stalls_follow_it():
    # A stall right after a solo spell ended (the worker still has no core) doubles the next
    # spell; a lone stall long after the last one (a virtual CPU descheduled now and then on an
    # idle machine) starts from the shortest spell again, 4 ms.
    # A job that begins in a spell runs alone and may end after it: the next one begins that much
    # later, so a job must take far less than the 100 ms window (under qemu 2^20 exps took more).
    before = gf.get_num_threads()
    gf.set_num_threads(1)
    for n in (1 << 20, 1 << 19, 1 << 18):  # (all above 16x the exp kernels' grain of 2^13)
        x = np.random.default_rng(2).standard_normal(n).astype(np.float32)
        _C.exp(x)
        t = time.perf_counter()
        _C.exp(x)
        alone = time.perf_counter() - t
        if alone <= 0.02:
            break
    else:
        gf.set_num_threads(before)
        pytest.skip(f"one job of 2^18 exps takes {alone * 1e3:.0f} ms here, too long next to the window")

    def stall():
        count = _C.threading_info()["stalls"]
        for _ in range(200):
            _C.exp(x)
            if _C.threading_info()["stalls"] > count:
                return _C.threading_info()["solo_spell_us"]
        raise AssertionError("no stall detected")

    try:
        gf.set_num_threads(2)
        _C.exp(x)  # (the worker starts)
        delay = int(max(0.02, 4 * alone) * 1e6)
        spells = []
        for _ in range(2):
            time.sleep(0.6)  # past the longest spell and the window after it
            _C._pool_set_test_delay(delay)
            try:
                spells += [stall(), stall()]  # the second right after the first spell ended
            finally:
                _C._pool_set_test_delay(0)
        assert spells == [4000, 8000, 4000, 8000]
    finally:
        gf.set_num_threads(before)
