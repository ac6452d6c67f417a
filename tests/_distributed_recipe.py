"""The training run the distributed tests compare: N ranks against one process on the same
global batches. Used in-process (with the fake communicator) and under mpiexec."""

import contextlib

import numpy as np

import gradflow as gf
from gradflow import nn
from gradflow.nn.parallel import DistributedDataParallel

FEATURES, CLASSES = 6, 3


class Net(nn.Module):
    def __init__(self, dtype, extra=False):
        super().__init__()
        self.fc1 = nn.Linear(FEATURES, 16, dtype=dtype)
        self.fc2 = nn.Linear(16, CLASSES, dtype=dtype)
        if extra:  # a parameter the forward never uses
            self.unused = nn.Linear(2, 2, dtype=dtype)

    def forward(self, x):
        return self.fc2(gf.tanh(self.fc1(x)))


def data(n, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, FEATURES)).astype(dtype)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64) + (x[:, 3] > 1)
    return x, y


def global_batches(n, batch, steps):
    """``steps`` index arrays: epochs of a fixed shuffle, each ending with a shorter batch
    when ``batch`` does not divide ``n``."""
    out, epoch = [], 0
    while len(out) < steps:
        order = np.random.default_rng(epoch).permutation(n)
        out += [order[i:i + batch] for i in range(0, n, batch)]
        epoch += 1
    return out[:steps]


def train(comm=None, dtype="float64", steps=20, batch=50, n=130, optimizer="sgd",
          reduction="sum", bucket_cap_mb=25, unused=False, accumulate=1, views=False,
          first_step=0, resume=None, save=None):
    """Parameters (numpy arrays) after ``steps`` optimizer steps. ``comm=None``: one process.
    With ``accumulate`` > 1 each step sums that many backward passes, all but the last in
    ``no_sync()``. ``reduction="sum"`` takes each rank's loss as sum / global batch; "avg"
    the mean over its own part (PyTorch's recipe; the parts must then be equal). ``resume``:
    a checkpoint to start from (every rank reads it), at step ``first_step``; ``save``: where
    rank 0 writes one at the end (the others wait for it)."""
    rank, world = (0, 1) if comm is None else (comm.rank, comm.size)
    gf.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
    model = Net(dtype, extra=unused)
    if comm is not None:
        model = DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb, reduction=reduction,
                                        find_unused_parameters=unused,
                                        gradient_as_bucket_view=views, process_group=comm)
    params = list(model.parameters())
    if optimizer == "sgd":
        opt = gf.optim.SGD(params, lr=0.1, momentum=0.9)
    else:
        opt = gf.optim.Adam(params, lr=0.01)
    if resume is not None:
        state = gf.load(resume)
        (model.module if comm is not None else model).load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    x, y = data(n, dtype)
    batches = global_batches(n, batch, (first_step + steps) * accumulate)
    for step in range(first_step, first_step + steps):
        opt.zero_grad()
        for k in range(accumulate):
            idx = batches[step * accumulate + k]
            mine = np.array_split(idx, world)[rank]
            out_of = len(idx) * accumulate
            sync = comm is None or k == accumulate - 1
            with (contextlib.nullcontext() if sync else model.no_sync()):
                logits = model(gf.tensor(x[mine]))
                target = gf.tensor(y[mine])
                if reduction == "sum":
                    loss = nn.functional.cross_entropy(logits, target, reduction="sum") / out_of
                else:
                    loss = nn.functional.cross_entropy(logits, target) / accumulate
                loss.backward()
        opt.step()
    if save is not None:
        if rank == 0:
            gf.save({"model": (model.module if comm is not None else model).state_dict(),
                     "optimizer": opt.state_dict()}, save)
        if comm is not None:
            comm.barrier(wait=True)
    return [p.detach().numpy().copy() for p in params]


def compare(reference, results, rtol):
    """Every rank's parameters equal each other bitwise and the reference within rtol."""
    for rank, params in enumerate(results):
        for i, (a, b) in enumerate(zip(params, results[0])):
            assert np.array_equal(a, b), f"rank {rank} parameter {i} differs from rank 0's"
    for i, (a, ref) in enumerate(zip(results[0], reference)):
        err = np.max(np.abs(a - ref)) / np.max(np.abs(ref))
        assert err <= rtol, f"parameter {i}: relative error {err:.3g} > {rtol}"
