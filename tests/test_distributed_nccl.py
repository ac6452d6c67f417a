"""The NCCL communicator's logic on stand-ins for cupy.cuda.nccl and CUDA streams (no GPU):
the unique id made once and shared over the bootstrap, buckets in the same order on every
rank, collectives on their own stream ordered against the current one, the arithmetic."""

import numpy as np

import gradflow as gf
from gradflow import distributed as dist
from gradflow.distributed.nccl import NcclCommunicator

from _distributed_recipe import compare, train
from _fake_comm import FakeGroup
from _fake_nccl import FakeCuda, FakeNccl


def nccl_group(size):
    group = FakeGroup(size)
    cuda = FakeCuda(group)
    nccl = FakeNccl(group, cuda)

    def make(bootstrap):
        return NcclCommunicator(bootstrap, nccl, cuda, pointer=lambda a: a.ctypes.data,
                                device="cpu")  # host arrays stand in for device memory
    return group, nccl, cuda, make


def test_ddp_over_nccl_matches_one_process_and_uses_its_stream():
    group, nccl, cuda, make = nccl_group(3)

    def body(bootstrap):
        comm = make(bootstrap)
        params = train(comm, bucket_cap_mb=1e-3, steps=10)
        current = cuda.get_current_stream()
        return params, comm.stream.ptr, current.ptr, len(current.log), len(comm.stream.log)

    results = group.run(body)
    compare(train(steps=10), [r[0] for r in results], rtol=1e-10)
    assert nccl.ids_made == 1  # rank 0 made the id; the bootstrap carried it to the others
    inits = [e for e in nccl.log if e[0] == "init"]
    assert sorted(r for _, r, _ in inits) == [0, 1, 2] and len({i for _, _, i in inits}) == 1
    for rank, (_, comm_stream, current, waits, comm_waits) in enumerate(results):
        calls = [(kind, stream) for kind, r, stream in nccl.log if r == rank and kind != "init"]
        assert {s for _, s in calls} == {comm_stream} != {current}  # never the compute stream
        # each collective starts after the compute stream's queued work, and the compute
        # stream waits for its result before using it
        assert comm_waits == waits == len(calls)
        assert [k for k, _ in calls] == [k for k, r, _ in nccl.log if r == 0 and k != "init"]


def test_tensor_collectives_over_nccl():
    group, _, _, make = nccl_group(2)

    def body(bootstrap):
        comm = make(bootstrap)
        r = comm.rank
        t = gf.tensor([1.0 + r, 4.0], dtype=gf.float32)
        dist.all_reduce(t, op="avg", group=comm)
        m = gf.tensor([r, 5 - r], dtype=gf.int64)
        dist.all_reduce(m, op="min", group=comm)
        b = gf.tensor([float(r)])
        dist.broadcast(b, 1, group=comm)
        parts = [gf.zeros(2) for _ in range(2)]
        dist.all_gather(parts, gf.full((2,), float(r)), group=comm)
        out = gf.zeros(2)
        dist.reduce_scatter(out, [gf.full((2,), float(r + 2 * i)) for i in range(2)], group=comm)
        dist.barrier(group=comm)
        comm.close()
        return t.numpy(), m.numpy(), b.item(), [p.numpy() for p in parts], out.numpy()

    for r, (t, m, b, parts, out) in enumerate(group.run(body)):
        np.testing.assert_array_equal(t, [1.5, 4.0])
        np.testing.assert_array_equal(m, [0, 4])
        assert b == 1.0
        np.testing.assert_array_equal(np.stack(parts), [[0, 0], [1, 1]])
        np.testing.assert_array_equal(out, [1.0 + 4 * r] * 2)  # (0 + 2r) + (1 + 2r)
