"""DistributedDataParallel: every rank holds the same model, computes the gradients of its own
part of the batch, and the gradients are reduced over ranks during backward, as in PyTorch.

How the reduction is scheduled. The parameters are split into buckets of about
``bucket_cap_mb`` in reverse registration order (the order backward produces their gradients
in), one flat buffer per bucket. Each parameter's post-accumulate-grad hook copies its
gradient into its bucket; when a bucket is full it is reduced with a nonblocking all-reduce,
and buckets are started in bucket order on every rank (the collectives must match). Each hook
also tests the pending requests, which is what moves MPI's data along (MPI progresses only
inside MPI calls). When the last bucket has started, the hook waits for all of them and writes
the reduced gradients back into ``.grad``.

What overlaps what: gradflow's engine sets the leaves' ``.grad`` at the end of backward (its
tape walk keeps leaf gradients until it has finished), so the reductions start there, bucket
after bucket, overlapping each other and the copying of the remaining gradients, not the
backward computation itself. With NCCL the collectives run on their own CUDA stream.
"""

import contextlib
import weakref

from ... import distributed as _dist
from ...autograd.function import Function
from ...autograd.grad_mode import is_grad_enabled
from ...distributed import debug as _debug
from ...tensor import Tensor
from ..module import Module


class _Bucket:
    """Parameters reduced together: one flat buffer, a view of it per parameter."""

    __slots__ = ("index", "params", "flat", "views", "pending", "request")

    def __init__(self, index, params, xp):
        self.index, self.params = index, params
        self.flat = xp.zeros(sum(p.numel() for p in params), params[0].dtype)
        self.views, start = [], 0
        for p in params:
            self.views.append(self.flat[start:start + p.numel()].reshape(p.shape))
            start += p.numel()
        self.pending, self.request = len(params), None


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training over the default process group (or
    ``process_group``).

    At construction every rank's parameter names, shapes and dtypes are compared (a clear
    error naming the first difference) and rank 0's parameters (and buffers) are copied to
    all. ``reduction="avg"`` (default, PyTorch's) leaves the mean over ranks of the
    gradients in ``.grad``; ``reduction="sum"`` their sum, which with a per-rank loss of
    ``sum(losses) / global_batch`` gives exactly the one-process gradient for any split.
    ``no_sync()``: backward passes inside accumulate local gradients only. With
    ``find_unused_parameters=True`` the forward output's graph is searched for the
    parameters it does not use, which are reduced as zeros (a parameter no rank used keeps
    its ``.grad``); without it such a parameter stops the reduction, and the next forward
    raises an error naming it. ``gradient_as_bucket_view=True`` makes each ``.grad`` a view
    into its bucket instead of a copy of it.
    """

    def __init__(self, module, bucket_cap_mb=25, find_unused_parameters=False,
                 gradient_as_bucket_view=False, reduction="avg", broadcast_buffers=True,
                 process_group=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a gradflow Module, got "
                            f"{type(module).__name__}")
        if reduction not in ("avg", "sum"):
            raise ValueError(f"DistributedDataParallel: reduction must be 'avg' or 'sum', not "
                             f"{reduction!r}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got "
                             f"{bucket_cap_mb}")
        self.module = module
        comm = process_group if process_group is not None else _dist._default(None)
        everything = list(module.named_parameters())
        for n, p in everything:
            _dist.check_device(comm, p.device, f"DistributedDataParallel: parameter {n}")
        named = [(n, p) for n, p in everything if p.requires_grad]
        self._comm, self._reduction = comm, reduction
        self._find_unused = bool(find_unused_parameters)
        self._as_view = bool(gradient_as_bucket_view)
        self._check_same_model(everything)
        self._broadcast_state(everything, broadcast_buffers)
        self._names = {id(p): n for n, p in named}
        self._buckets, self._where = self._make_buckets([p for _, p in named],
                                                        int(bucket_cap_mb * 2 ** 20))
        me = weakref.ref(self)  # the hooks must not keep a discarded wrapper alive

        def grad_ready(param):
            ddp = me()
            if ddp is not None:
                ddp._grad_ready(param)
        self._hooks = [p.register_post_accumulate_grad_hook(grad_ready) for _, p in named]
        self._no_sync = False
        self._armed = False  # a forward in grad mode outside no_sync: its backward reduces
        self._steps = 0
        self._reset()

    def __del__(self):
        for handle in getattr(self, "_hooks", ()):
            handle.remove()

    # ---- construction -----------------------------------------------------------------------------
    def _check_same_model(self, named):
        mine = [(n, tuple(p.shape), str(p.dtype), p.device.split(":")[0]) for n, p in named]
        everyone = self._comm.allgather_object(mine)
        for r, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                raise RuntimeError("DistributedDataParallel: the ranks' models differ: "
                                   + _first_difference(everyone[0], theirs, r))

    def _broadcast_state(self, named, broadcast_buffers):
        tensors = [p for _, p in named]
        if broadcast_buffers and hasattr(self.module, "named_buffers"):
            tensors += [b for _, b in self.module.named_buffers()]
        for t in tensors:  # (in place on the arrays: nothing is recorded)
            _dist.broadcast(t, 0, group=self._comm)

    def _make_buckets(self, params, cap_bytes):
        """Reverse registration order; a new bucket at the cap or when dtype or device changes."""
        groups, current, size = [], [], 0
        for p in reversed(params):
            if current and (size + p.numel() * p.dtype.itemsize > cap_bytes
                            or p.dtype != current[0].dtype or p.device != current[0].device):
                groups.append(current)
                current, size = [], 0
            current.append(p)
            size += p.numel() * p.dtype.itemsize
        if current:
            groups.append(current)
        buckets = [_Bucket(i, g, g[0]._be.xp) for i, g in enumerate(groups)]
        where = {id(p): (b, i) for b in buckets for i, p in enumerate(b.params)}
        return buckets, where

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        if self._armed and self._started:
            self._unfinished_reduction()
        self._reset()
        self._armed = is_grad_enabled() and not self._no_sync
        out = self.module(*args, **kwargs)
        if self._armed:
            self._steps += 1
            if self._find_unused and self._buckets:
                self._mark_unused(out)
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside accumulate gradients locally; the first
        backward after it reduces the accumulated ``.grad``."""
        previous, self._no_sync = self._no_sync, True
        try:
            yield
        finally:
            self._no_sync = previous

    def _reset(self):
        for b in self._buckets:
            b.pending, b.request = len(b.params), None
        self._ready = set()  # ids of the parameters whose gradient is in its bucket
        self._started = False  # a gradient hook has fired since the forward
        self._used = self._used_request = None  # find_unused_parameters: 1 per used parameter
        self._next_bucket = 0

    def _mark_unused(self, out):
        reached = _leaves_reached(out)
        order = [(b, i, p) for b in self._buckets for i, p in enumerate(b.params)]
        xp = order[0][2]._be.xp
        self._used = xp.asarray([id(p) in reached for _, _, p in order], dtype="int32")
        for b, i, p in order:
            if id(p) not in reached:
                b.views[i][...] = 0
                self._mark_ready(p, b)

    def _unfinished_reduction(self):
        missing = [self._names[id(p)] for b in self._buckets for p in b.params
                   if id(p) not in self._ready]
        for b in self._buckets:  # the buckets that did start are matched on every rank
            if b.request is not None:
                b.request.wait()
        self._armed = False
        raise RuntimeError(
            "DistributedDataParallel: the previous backward did not produce gradients for "
            f"{', '.join(missing)}, so their reduction never finished. Pass "
            "find_unused_parameters=True if some parameters are not used in every step, and "
            "make sure the loss depends on the output of this module's forward.")

    # ---- backward ---------------------------------------------------------------------------------
    def _grad_ready(self, param):
        if not self._armed:
            return
        bucket, i = self._where[id(param)]
        if id(param) in self._ready:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {self._names[id(param)]} got a gradient "
                "twice in one step (two backward passes, or a parameter found unused by "
                "find_unused_parameters that the loss uses after all)")
        self._started = True
        view = bucket.views[i]
        if param.grad.array is not view:  # (with gradient_as_bucket_view it may be the view)
            view[...] = param.grad.array
        self._mark_ready(param, bucket)

    def _mark_ready(self, param, bucket):
        self._ready.add(id(param))
        bucket.pending -= 1
        buckets, launched = self._buckets, False
        while self._next_bucket < len(buckets) and buckets[self._next_bucket].pending == 0:
            self._launch(buckets[self._next_bucket])
            self._next_bucket += 1
            launched = True
        if self._next_bucket == len(buckets):
            self._finish()
        elif not launched:
            for b in buckets[:self._next_bucket]:
                b.request.test()  # MPI moves data only inside its calls

    def _launch(self, bucket):
        checked = isinstance(self._comm, _debug.CheckedCommunicator)
        if checked:
            _debug.context = f"DistributedDataParallel step {self._steps} bucket {bucket.index}"
        bucket.request = self._comm.allreduce(bucket.flat, "sum")
        if self._used is not None and bucket.index == len(self._buckets) - 1:
            self._used_request = self._comm.allreduce(self._used, "sum")
        if checked:
            _debug.context = ""

    def _finish(self):
        """Waits for every bucket and puts the reduced gradients into ``.grad``."""
        self._armed = False
        used = None
        if self._used_request is not None:
            self._used_request.wait()
            used = iter(self._used.tolist())
        for b in self._buckets:
            b.request.wait()
            if self._reduction == "avg" and self._comm.size > 1:
                b.flat /= self._comm.size
            for p, view in zip(b.params, b.views):
                if used is not None and not next(used):
                    continue  # no rank used it: its .grad stays as it was
                if self._as_view:
                    if p.grad is None or p.grad.array is not view:
                        p.grad = Tensor._make(view, p.device)
                elif p.grad is None:
                    p.grad = Tensor._make(view.copy(), p.device)
                else:
                    p.grad.array[...] = view


def _leaves_reached(out):
    """ids of the leaf tensors the graph of ``out`` (tensors, possibly nested in tuples,
    lists and dicts) reaches."""
    stack, seen, leaves = [out], set(), set()
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            if x._node is None:
                leaves.add(id(x))
            else:
                stack.append(x._node)
        elif isinstance(x, Function):
            if id(x) not in seen:
                seen.add(id(x))
                stack.extend(e for e in x._next if e is not None)
        elif isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return leaves


def _first_difference(reference, theirs, rank):
    for k, (a, b) in enumerate(zip(reference, theirs)):
        if a != b:
            return (f"parameter {k} is {_describe(a)} on rank 0 but {_describe(b)} on rank "
                    f"{rank}")
    k = min(len(reference), len(theirs))
    owner, extra = (0, reference[k]) if len(reference) > k else (rank, theirs[k])
    return (f"rank 0 has {len(reference)} parameters and rank {rank} {len(theirs)}; the first "
            f"one only rank {owner} has is {_describe(extra)}")


def _describe(entry):
    name, shape, dtype, device = entry
    return f"{name} ({dtype}{list(shape)} on {device})"
