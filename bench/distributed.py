"""distributed: data-parallel training across processes, gradflow.distributed on MPI (mpi4py,
MPICH) against torch.distributed's gloo, each rank on one thread.

Every figure comes from a small job started with mpiexec (``python -m mpi4py -m
bench.distributed WORKER``); torch's ranks find each other through gloo's file rendezvous,
taking rank and size from MPICH's launcher (MPI itself is not started there). Per job, on
rank 0, after a barrier:

- all-reduce latency and bandwidth of float32 buffers: 4 B, 64 KiB and the 2.55 MiB of
  gradients of the 784-512-512-10 MLP (median time of a call; "bus" bandwidth counts the
  2 (n-1)/n of the buffer each rank sends and receives in a ring);
- the training step (forward, cross-entropy, backward, SGD) of that MLP under
  DistributedDataParallel, with a per-rank batch of 64 (global batch 64 n, weak scaling) and
  with a global batch of 256 shared out (strong scaling); and the same step without the
  wrapper on the same ranks at the same time (no communication, same contention), so that
  the communication share of the step is 1 - plain / distributed;
- the wall time of a job that only starts MPI (mpiexec start-up).

Scaling efficiency: weak t(1 rank) / t(n ranks), strong t(1) / (n t(n)). On a machine with n
cores or fewer, other processes' load falls on the ranks alike but makes every figure noisy.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

SIZES = (1, 16384, 669706)  # float32 values; the last is 784*512+512+512*512+512+512*10+10
NET = (784, 512, 512, 10)
RANKS = (1, 2)


def cases(quick):
    return []  # not in-process cases: measure() runs its own jobs


# ---- the worker: runs on every rank -----------------------------------------------------------
class _Timer:
    def __init__(self, barrier, quick):
        self.barrier, self.quick = barrier, quick

    def __call__(self, fn, target_s=None):
        """Median seconds per call of fn over samples lasting about target_s each."""
        target_s = target_s or (0.01 if self.quick else 0.05)
        for _ in range(2):
            fn()
        self.barrier()
        t = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t, 1e-7)
        number = max(1, int(target_s / once))
        number = self._agree(number)
        samples = []
        for _ in range(3 if self.quick else 7):
            self.barrier()
            t = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - t) / number)
        return statistics.median(samples)


def _mlp_numpy(batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, NET[0]), dtype=np.float32)
    y = rng.integers(0, NET[-1], batch)
    return x, y


def _gradflow_worker(quick):
    import gradflow as gf
    from gradflow import distributed as dist
    from gradflow import nn

    dist.init_process_group("mpi")
    rank, n = dist.get_rank(), dist.get_world_size()
    barrier = dist.barrier
    timer = _Timer(barrier, quick)
    timer._agree = lambda k: int(_allreduce_max_gf(gf, dist, k))
    out = {"allreduce_s": {}}
    for size in SIZES:
        t = gf.ones(size)
        out["allreduce_s"][size] = timer(lambda t=t: dist.all_reduce(t))

    def step_fn(model, opt, x, y):
        def step():
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    for name, per_rank in (("weak", 64), ("strong", 256 // n)):
        gf.manual_seed(0)
        layers = []
        for a, b in zip(NET[:-1], NET[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        plain = nn.Sequential(*layers[:-1])
        x, y = (gf.tensor(a) for a in _mlp_numpy(per_rank, seed=rank))
        ddp = nn.parallel.DistributedDataParallel(plain)
        for key, model in ((f"{name}_plain_s", plain), (f"{name}_ddp_s", ddp)):
            out[key] = timer(step_fn(model, gf.optim.SGD(model.parameters(), lr=0.05), x, y))
    return rank, out


def _allreduce_max_gf(gf, dist, k):
    t = gf.tensor([float(k)], dtype=gf.float64)
    dist.all_reduce(t, op="max")
    return t.item()


def _torch_worker(quick, rendezvous):
    import torch
    import torch.distributed as tdist
    from torch import nn

    torch.set_num_threads(1)
    rank, n = int(os.environ["PMI_RANK"]), int(os.environ["PMI_SIZE"])
    tdist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=n)

    def agree(k):
        t = torch.tensor([float(k)])
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return int(t.item())

    timer = _Timer(tdist.barrier, quick)
    timer._agree = agree
    out = {"allreduce_s": {}}
    for size in SIZES:
        t = torch.ones(size)
        out["allreduce_s"][size] = timer(lambda t=t: tdist.all_reduce(t))

    def step_fn(model, opt, x, y):
        def step():
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    for name, per_rank in (("weak", 64), ("strong", 256 // n)):
        torch.manual_seed(0)
        layers = []
        for a, b in zip(NET[:-1], NET[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        plain = nn.Sequential(*layers[:-1])
        xa, ya = _mlp_numpy(per_rank, seed=rank)
        x, y = torch.from_numpy(xa), torch.from_numpy(ya)
        ddp = nn.parallel.DistributedDataParallel(plain)
        for key, model in ((f"{name}_plain_s", plain), (f"{name}_ddp_s", ddp)):
            out[key] = timer(step_fn(model, torch.optim.SGD(model.parameters(), lr=0.05), x, y))
    tdist.destroy_process_group()
    return rank, out


# ---- the driver -------------------------------------------------------------------------------------
def _job(n, args, timeout=300):
    from gradflow.distributed.launch import command, environment, find_mpiexec
    env = environment(n, timeout=timeout)
    if args[0] == "torch":  # gloo alone: MPI is only the launcher there
        cmd = [find_mpiexec(), "-n", str(n), sys.executable, "-m", "bench.distributed", *args]
    else:
        cmd = command(n, ["-m", "bench.distributed", *args])
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout + 30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} on {n} ranks failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _startup_s(n):
    from gradflow.distributed.launch import command, environment
    cmd = command(n, ["-c", "pass"])
    walls = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, env=environment(n, timeout=60), check=True, capture_output=True)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def measure(quick):
    """{"gradflow": {n: figures}, "torch": {...}, "startup_s": {n: s}, "skipped": [...]}"""
    from gradflow.distributed import is_available
    from gradflow.distributed.launch import find_mpiexec

    result = {"gradflow": {}, "torch": {}, "startup_s": {}, "skipped": []}
    if not is_available() or find_mpiexec() is None:
        result["skipped"].append("distributed: needs mpi4py and mpiexec "
                                 '(pip install "gradflow[mpi]")')
        return result
    mode = "quick" if quick else "full"
    try:
        import torch.distributed as tdist
        has_gloo = tdist.is_available() and tdist.is_gloo_available()
    except ImportError:
        has_gloo = False
    if not has_gloo:
        result["skipped"].append("torch: torch.distributed with gloo is not installed")
    for n in RANKS:
        result["startup_s"][n] = _startup_s(n)
        result["gradflow"][n] = _job(n, ["gradflow", mode])
        if has_gloo:
            with tempfile.TemporaryDirectory() as folder:
                result["torch"][n] = _job(n, ["torch", mode, os.path.join(folder, "rendezvous")])
    return result


def table(result):
    """The measured figures as text lines."""
    lines = [f"note: {s}" for s in result["skipped"]]
    for lib in ("gradflow", "torch"):
        runs = result[lib]
        if not runs:
            continue
        one = runs.get(1) or runs.get("1")
        for n, r in sorted(runs.items(), key=lambda kv: int(kv[0])):
            n = int(n)
            ar = r["allreduce_s"]
            parts = [f"{lib:8s} {n} rank{'s' if n > 1 else ' '}"]
            for size in SIZES:
                s = ar[str(size)] if str(size) in ar else ar[size]
                busbw = 2 * (n - 1) / n * size * 4 / s / 1e9 if n > 1 else 0
                parts.append(f"allreduce {_bytes(size * 4)} {s * 1e6:8.1f} us"
                             + (f" ({busbw:.2f} GB/s)" if size == SIZES[-1] and n > 1 else ""))
            lines.append("  ".join(parts))
            for name in ("weak", "strong"):
                ddp, plain = r[f"{name}_ddp_s"], r[f"{name}_plain_s"]
                eff = (one[f"{name}_ddp_s"] / ddp) / (n if name == "strong" else 1)
                lines.append(f"{'':17s}{name:6s} step {ddp * 1e3:7.2f} ms  without comm "
                             f"{plain * 1e3:7.2f} ms  comm share {max(0.0, 1 - plain / ddp):5.1%}"
                             f"  scaling efficiency {eff:5.1%}")
    if result["startup_s"]:
        lines.append("mpiexec start-up: " + ", ".join(
            f"{n} rank{'s' if int(n) > 1 else ''} {s:.2f} s"
            for n, s in result["startup_s"].items()))
    return "\n".join(lines)


def _bytes(b):
    if b >= 2 ** 20:
        return f"{b / 2 ** 20:.2f} MiB"
    return f"{b / 2 ** 10:.0f} KiB" if b >= 2 ** 10 else f"{b} B"


if __name__ == "__main__":
    kind, mode = sys.argv[1], sys.argv[2]
    if kind == "gradflow":
        rank, figures = _gradflow_worker(mode == "quick")
    else:
        rank, figures = _torch_worker(mode == "quick", sys.argv[3])
    if rank == 0:
        print(json.dumps(figures), flush=True)
    if kind == "torch":
        # gloo's threads now and then abort the interpreter's teardown ("terminate called
        # without an active exception"); the figures are out, so skip it.
        os._exit(0)
