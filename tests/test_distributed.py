"""Data-parallel arithmetic on the in-process fake communicator (no MPI needed): collectives,
DistributedDataParallel against one process, DistributedSampler."""

import numpy as np
import pytest

import gradflow as gf
from gradflow import distributed as dist
from gradflow.distributed.debug import CheckedCommunicator
from gradflow.distributed.launch import mpi_defaults
from gradflow.nn.parallel import DistributedDataParallel

from _distributed_recipe import Net, compare, train
from _fake_comm import FakeGroup, Hang


# ---- collectives -------------------------------------------------------------------------------
def test_collectives_on_tensors():
    def body(comm):
        r = comm.rank
        t = gf.tensor([1.0 + r, 10.0 * r])
        dist.all_reduce(t, group=comm)
        avg = gf.tensor([float(r)])
        dist.all_reduce(avg, op="avg", group=comm)
        mx = gf.tensor([r, -r], dtype=gf.int64)
        dist.all_reduce(mx, op=dist.ReduceOp.MAX, group=comm)
        b = gf.tensor([float(r)] * 2)
        work = dist.broadcast(b, 2, group=comm, async_op=True)
        work.wait()
        gathered = [gf.zeros(2) for _ in range(comm.size)]
        dist.all_gather(gathered, gf.tensor([r, r * r], dtype=gf.float32), group=comm)
        out = gf.zeros(2)
        dist.reduce_scatter(out, [gf.full((2,), float(r + i)) for i in range(comm.size)],
                            group=comm)
        strided = gf.tensor(np.arange(6.0).reshape(2, 3) * (r + 1)).swapaxes(0, 1)
        assert not strided.array.flags.c_contiguous
        dist.all_reduce(strided, group=comm)  # a non-contiguous view: reduced through a copy
        dist.barrier(group=comm)
        return (t.numpy(), avg.item(), mx.numpy(), b.numpy(), [g.numpy() for g in gathered],
                out.numpy(), strided.numpy())

    for r, (t, avg, mx, b, gathered, out, strided) in enumerate(FakeGroup(3).run(body)):
        np.testing.assert_array_equal(t, [6.0, 30.0])
        assert avg == 1.0
        np.testing.assert_array_equal(mx, [2, 0])
        np.testing.assert_array_equal(b, [2.0, 2.0])
        np.testing.assert_array_equal(np.stack(gathered), [[0, 0], [1, 1], [2, 4]])
        np.testing.assert_array_equal(out, [3.0 + 3 * r] * 2)  # sum over q of (q + r)
        np.testing.assert_array_equal(strided, (np.arange(6.0).reshape(2, 3) * 6).T)


def test_collective_errors_are_clear():
    def body(comm):
        with pytest.raises(ValueError, match="unknown reduction"):
            dist.all_reduce(gf.zeros(2), op="prod", group=comm)
        with pytest.raises(TypeError, match="floating-point"):
            dist.all_reduce(gf.zeros(2, dtype=gf.int32), op="avg", group=comm)
        with pytest.raises(ValueError, match="list of 2 tensors"):
            dist.all_gather([gf.zeros(2)], gf.zeros(2), group=comm)
        with pytest.raises(ValueError, match="src 5"):
            dist.broadcast(gf.zeros(2), 5, group=comm)
        with pytest.raises(TypeError, match="gradflow Tensor"):
            dist.all_reduce(np.zeros(2), group=comm)
    FakeGroup(2).run(body)
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="unknown backend"):
        dist.init_process_group("gloo")


# ---- DistributedDataParallel: the same numbers as one process ----------------------------------
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_sgd_momentum_float64_matches_one_process(world):
    # batch 50 over 3 or 4 ranks is uneven (17/17/16, 13/13/12/12); 130 samples end each
    # epoch with a batch of 30
    reference = train()
    compare(reference, FakeGroup(world).run(lambda c: train(c)), rtol=1e-10)


def test_small_buckets_float32_and_adam():
    reference = train(dtype="float32")
    compare(reference, FakeGroup(2).run(lambda c: train(c, dtype="float32", bucket_cap_mb=1e-4)),
            rtol=1e-4)
    reference = train(optimizer="adam")
    compare(reference, FakeGroup(3).run(lambda c: train(c, optimizer="adam")), rtol=1e-10)


def test_pytorch_mean_recipe_with_equal_parts():
    reference = train(reduction="avg", batch=40, n=120)
    compare(reference, FakeGroup(4).run(lambda c: train(c, reduction="avg", batch=40, n=120)),
            rtol=1e-10)


def test_no_sync_accumulation_and_bucket_views():
    reference = train(accumulate=3, steps=6)
    compare(reference, FakeGroup(2).run(lambda c: train(c, accumulate=3, steps=6)), rtol=1e-10)
    compare(train(), FakeGroup(2).run(lambda c: train(c, views=True, bucket_cap_mb=1e-3)),
            rtol=1e-10)


def test_find_unused_parameters():
    reference = train(unused=True, steps=5)
    results = FakeGroup(2).run(lambda c: train(c, unused=True, steps=5))
    compare(reference, results, rtol=1e-10)


def test_buckets_follow_reverse_parameter_order_on_every_rank():
    def body(comm):
        gf.manual_seed(0)
        model = DistributedDataParallel(Net("float64"), bucket_cap_mb=100 * 8 / 2 ** 20,
                                        process_group=comm)
        comm.log.clear()
        model(gf.randn(4, 6, dtype=gf.float64)).sum().backward()
        return comm.log

    logs = FakeGroup(2).run(body)
    assert logs[0] == logs[1]
    # fc2.bias (3) + fc2.weight (48) + fc1.bias (16) fit in 100 values; fc1.weight (96) starts
    # the next bucket
    assert logs[0] == [("allreduce sum", "float64", 67), ("allreduce sum", "float64", 96)]


def test_unused_parameter_without_the_flag_is_an_error_not_a_hang():
    def body(comm):
        model = DistributedDataParallel(Net("float64", extra=True), process_group=comm)
        x = gf.randn(4, 6, dtype=gf.float64)
        model(x).sum().backward()
        model(x)

    with pytest.raises(RuntimeError, match=r"did not produce gradients for .*unused\.weight"):
        FakeGroup(2).run(body)


def test_construction_checks_the_models_and_broadcasts_rank_0():
    def body(comm):
        gf.manual_seed(comm.rank)
        model = Net("float64")
        DistributedDataParallel(model, process_group=comm)
        return [p.detach().numpy() for p in model.parameters()]

    a, b = FakeGroup(2).run(body)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)

    def different(comm):
        DistributedDataParallel(Net("float64" if comm.rank == 0 else "float32"),
                                process_group=comm)

    with pytest.raises(RuntimeError, match=r"fc1\.weight \(float64\[16, 6\].*rank 0 but "
                                           r"fc1\.weight \(float32\[16, 6\].* on rank 1"):
        FakeGroup(2).run(different)


def test_debug_mode_names_mismatched_collectives():
    def skips_a_step(comm):
        checked = CheckedCommunicator(comm)
        model = DistributedDataParallel(Net("float64"), process_group=checked)
        x = gf.randn(4, 6, dtype=gf.float64)
        for step in range(3):
            if comm.rank == 1 and step == 1:
                continue
            model(x).sum().backward()
        checked.check("destroy_process_group")

    with pytest.raises(RuntimeError, match=r"(?s)different collectives.*rank 0: collective "
                                           r"#\d+ allreduce.*step 3.*rank 1: collective #\d+ "
                                           r"destroy_process_group"):
        FakeGroup(2).run(skips_a_step)


def test_a_missing_collective_is_caught_by_the_fake_as_a_hang():
    def body(comm):
        if comm.rank == 0:
            dist.barrier(group=comm)

    with pytest.raises(Hang):
        FakeGroup(2).run(body)


def test_ddp_argument_errors():
    def body(comm):
        with pytest.raises(ValueError, match="reduction"):
            DistributedDataParallel(Net("float64"), reduction="mean", process_group=comm)
        with pytest.raises(TypeError, match="Module"):
            DistributedDataParallel(lambda x: x, process_group=comm)
    FakeGroup(1).run(body)


# ---- DistributedSampler ------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shares_out_every_sample(drop_last):
    data = gf.data.TensorDataset(gf.arange(10))
    shares = [list(gf.data.DistributedSampler(data, 4, r, seed=3, drop_last=drop_last))
              for r in range(4)]
    assert len({len(s) for s in shares}) == 1
    flat = sorted(i for s in shares for i in s)
    if drop_last:
        assert len(flat) == 8 and len(set(flat)) == 8
    else:
        assert len(flat) == 12 and set(flat) == set(range(10))  # 2 repeated as padding


def test_sampler_epochs_and_global_batches():
    data = gf.data.TensorDataset(gf.arange(12))
    samplers = [gf.data.DistributedSampler(data, 3, r) for r in range(3)]
    loaders = [gf.data.DataLoader(data, batch_size=2, sampler=s) for s in samplers]
    order = samplers[0].order()
    for k, batches in enumerate(zip(*loaders)):  # step k's batches form positions 6k..6k+5
        got = sorted(int(i) for (b,) in batches for i in b.numpy())
        assert got == sorted(order[6 * k:6 * k + 6].tolist())
    first = list(samplers[0])
    samplers[0].set_epoch(1)
    assert list(samplers[0]) != first
    with pytest.raises(ValueError, match="mutually exclusive"):
        gf.data.DataLoader(data, sampler=samplers[0], shuffle=True)
    with pytest.raises(ValueError, match="rank 3"):
        gf.data.DistributedSampler(data, 3, 3)


def test_train_distributed_without_a_launcher_says_how_to_launch(capsys, monkeypatch):
    for name in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MPI_LOCALNRANKS",
                 "OMPI_COMM_WORLD_LOCAL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    from gradflow import train
    with pytest.raises(SystemExit) as e:
        train.main(["--distributed"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "mpiexec -n 2 python -m mpi4py -m gradflow.train --distributed" in err


def test_mpich_throttles_its_polling_only_when_oversubscribed():
    assert mpi_defaults(4, cores=2) == {"MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1"}
    assert mpi_defaults(2, cores=2) == {}
    assert mpi_defaults(None, cores=2) == {}


def test_a_discarded_wrapper_unhooks_its_parameters():
    import gc

    from gradflow.autograd import hooks

    def body(comm):
        net = Net("float64")
        gc.collect()  # (entries of tensors from earlier tests that only a collection frees)
        before = len(hooks.post_accumulate)
        DistributedDataParallel(net, process_group=comm)
        gc.collect()
        return before, len(hooks.post_accumulate)

    (before, after), = FakeGroup(1).run(body)
    assert after == before


def test_debug_setting_is_checked(monkeypatch):
    from gradflow.distributed import debug

    monkeypatch.setenv("GRADFLOW_DISTRIBUTED_DEBUG", "detail")
    assert debug.enabled()
    monkeypatch.setenv("GRADFLOW_DISTRIBUTED_DEBUG", "LOUD")
    with pytest.raises(ValueError, match="OFF or DETAIL"):
        debug.enabled()


def test_a_tensor_on_a_device_the_backend_does_not_reach_is_an_error():
    class Gpu:  # the attributes check_device reads, as the nccl backend has them
        backend, device = "nccl", "cuda"

    with pytest.raises(RuntimeError, match=r"nccl backend communicates cuda tensors, this one "
                                           r"is on cpu; .*init_process_group\('mpi'\)"):
        dist.all_reduce(gf.zeros(2), group=Gpu())
    with pytest.raises(RuntimeError, match=r"DistributedDataParallel: parameter fc1\.weight"):
        DistributedDataParallel(Net("float64"), process_group=Gpu())



def test_reductions_start_while_backward_still_runs():
    from test_distributed_hooks import _Marker

    class Marked(Net):  # notes when backward reaches the layer below fc2
        def forward(self, x):
            return self.fc2(_Marker.apply(gf.tanh(self.fc1(x))))

    def body(comm):
        gf.manual_seed(0)
        # fc2's bias and weight (3 + 48 values) fill the first bucket, fc1's the others
        model = DistributedDataParallel(Marked("float64"), bucket_cap_mb=60 * 8 / 2 ** 20,
                                        process_group=comm)
        comm.log.clear()
        out = model(gf.randn(4, 6, dtype=gf.float64))
        started = []
        original = _Marker.backward
        _Marker.backward = staticmethod(lambda ctx, g: (started.append(len(comm.log)), (g,))[1])
        try:
            out.sum().backward()
        finally:
            _Marker.backward = original
        return started, len(comm.log)

    for started, total in FakeGroup(2).run(body):
        assert started == [1] and total == 3  # fc2's bucket was on its way before fc1's backward
