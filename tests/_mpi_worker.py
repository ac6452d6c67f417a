"""What tests/test_distributed_mpi.py runs on every rank: python -m mpi4py _mpi_worker.py CASE."""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow as gf  # noqa: E402
from gradflow import distributed as dist  # noqa: E402
from gradflow.nn.parallel import DistributedDataParallel  # noqa: E402

from _distributed_recipe import Net, compare, train  # noqa: E402


def group():
    """The default group's communicator (unwrapped from the debug mode's checks)."""
    return dist._default(None)


def exact():
    comm = group()
    runs = [dict(), dict(dtype="float32"), dict(optimizer="adam"), dict(bucket_cap_mb=1e-3)]
    for kw in runs:
        mine = train(comm, **kw)
        everyone = comm.allgather_object(mine)
        if comm.rank == 0:
            compare(train(**kw), everyone, rtol=1e-4 if kw.get("dtype") == "float32" else 1e-10)


def collectives():
    r, n = dist.get_rank(), dist.get_world_size()
    t = gf.tensor([1.0 + r, 2.0])
    work = dist.all_reduce(t, op="avg", async_op=True)
    work.wait()
    np.testing.assert_allclose(t.numpy(), [1 + (n - 1) / 2, 2.0])
    parts = [gf.zeros(3, dtype=gf.int64) for _ in range(n)]
    dist.all_gather(parts, gf.full((3,), r, dtype=gf.int64))
    assert [int(p.numpy()[0]) for p in parts] == list(range(n))
    out = gf.zeros(2)
    dist.reduce_scatter(out, [gf.full((2,), float(i)) for i in range(n)], op="max")
    np.testing.assert_array_equal(out.numpy(), [float(r)] * 2)
    b = gf.tensor([float(r)])
    dist.broadcast(b, n - 1)
    assert b.item() == n - 1
    dist.barrier()
    assert dist.get_backend() == "mpi"
    assert gf.get_num_threads() == 1  # one compute thread per rank by default


def fail():
    comm = group()
    model = DistributedDataParallel(Net("float64"))
    x = gf.randn(4, 6, dtype=gf.float64)
    for step in range(5):
        if comm.rank == 1 and step == 2:
            raise ValueError("rank 1 fails on purpose at step 2")
        model(x).sum().backward()


def skip_step():
    comm = group()
    model = DistributedDataParallel(Net("float64"))
    x = gf.randn(4, 6, dtype=gf.float64)
    for step in range(3):
        if comm.rank == 1 and step == 1:
            continue
        model(x).sum().backward()


def other_model():
    DistributedDataParallel(Net("float64", extra=dist.get_rank() == 1))


def checkpoint():
    comm, folder = group(), sys.argv[2]
    path = os.path.join(folder, "half.npz")
    train(comm, steps=10, save=path)
    resumed = train(comm, steps=10, first_step=10, resume=path)
    everyone = comm.allgather_object(resumed)
    if comm.rank == 0:
        compare(train(steps=20), everyone, rtol=1e-10)


def launcher_env():
    throttle = os.environ.get("MPIR_CVAR_CH4_PROGRESS_THROTTLE")
    seen = group().allgather_object([os.environ.get("OMP_NUM_THREADS"), throttle])
    if dist.get_rank() == 0:
        with open(sys.argv[2], "w") as f:
            json.dump(seen, f)


CASES = {f.__name__: f for f in (exact, collectives, fail, skip_step, other_model, checkpoint,
                                 launcher_env)}

if __name__ == "__main__":
    dist.init_process_group("mpi")
    CASES[sys.argv[1]]()
    rank = dist.get_rank()
    dist.destroy_process_group()
    print(f"rank {rank} done", flush=True)
