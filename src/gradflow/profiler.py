"""A cost profiler for the ops a block of code runs, split into forward and backward.

    with gf.profiler.profile() as prof:
        loss = model(x).sum()
        loss.backward()
    print(prof.table())
    prof.summary()["backward_forward_flop_ratio"]   # about 2 for an MLP

Every op executed inside the block (every ``Function.apply``) is recorded under its class name
and the phase it ran in (``state.phase``: ops run by backward functions count as "backward").
Per (op, phase): calls, wall time (``time.perf_counter``; on a non-CPU backend the stream is
synchronised before each clock read, so times are real but the profiled code runs slower),
FLOPs, and bytes moved (the nbytes of the input arrays plus the output array).

FLOP rules, counting multiply and add as one FLOP each:

* MatMul: 2·m·n·k per batch entry, k the contracted dimension (read through ``trans_a``);
* Linear (x @ W^T + b): 2·in·out per row of x, plus one per output element for the bias;
* reductions (Sum, Mean, Max, Min, LogSumExp, ArgMax, SumTo) and the row-wise kernels
  (Softmax, LogSoftmax, CrossEntropy and their ``*Backward``), and IndexAdd: one per element of
  the first input;
* layout and copies (Reshape, Transpose, BroadcastTo, Cast, Concatenate, GetItem, SetItem,
  ToDevice): none;
* every other op (elementwise arithmetic, comparisons, activations and their ``*Backward``
  kernels, and ops this module does not know): one per output element. Transcendental functions
  (exp, log, sigmoid, tanh, ...) are counted as one FLOP like an add, so the counts are a lower
  bound for them.

Only ops are seen: the engine's own gradient accumulation (array adds outside any op) and
Python overhead are not counted. Profiles do not nest. With no profile active, the core pays one
``state.profiler is None`` check per op and nothing else.
"""

import time
from dataclasses import dataclass

from .autograd.grad_mode import state

__all__ = ["profile", "OpStats"]

_PHASES = ("forward", "backward")


def _matmul_flops(ctx, arrays, out):
    a = arrays[0]
    k = a.shape[-2] if ctx.trans_a else a.shape[-1]
    return 2 * k * out.size


def _linear_flops(ctx, arrays, out):
    bias = out.size if len(arrays) == 3 else 0
    return 2 * arrays[0].shape[-1] * out.size + bias


def _per_input_element(ctx, arrays, out):
    return arrays[0].size


def _no_flops(ctx, arrays, out):
    return 0


def _per_output_element(ctx, arrays, out):
    return out.size


_FLOP_RULES = {
    "MatMul": _matmul_flops,
    "Linear": _linear_flops,
    **dict.fromkeys(
        ("Sum", "Mean", "Max", "Min", "LogSumExp", "ArgMax", "SumTo", "Softmax", "SoftmaxBackward",
         "LogSoftmax", "LogSoftmaxBackward", "CrossEntropy", "CrossEntropyBackward", "IndexAdd"),
        _per_input_element),
    **dict.fromkeys(
        ("Reshape", "Transpose", "BroadcastTo", "Cast", "Concatenate", "GetItem", "SetItem",
         "ToDevice"),
        _no_flops),
}


def flops(ctx, arrays, out) -> int:
    """FLOPs of one executed op by the rules above (``ctx`` is the op instance)."""
    return int(_FLOP_RULES.get(ctx.name, _per_output_element)(ctx, arrays, out))


@dataclass
class OpStats:
    """Totals for one (op, phase): calls, seconds, FLOPs, bytes moved."""

    calls: int = 0
    time: float = 0.0
    flops: int = 0
    bytes: int = 0


def _sync(be):
    if be.name != "cpu":
        be.xp.cuda.get_current_stream().synchronize()


def _ratio(a, b) -> float:
    return a / b if b else float("nan")


def _si(x) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return str(int(x))


class profile:
    """Context manager recording the cost of every op run inside it (see the module docs).

    ``stats`` maps (op name, phase) to :class:`OpStats`; :meth:`table` and :meth:`summary` read
    it. Reusing the same instance in a later ``with`` block adds to its totals.
    """

    def __init__(self):
        self.stats = {}

    def __enter__(self):
        if state.profiler is not None:
            raise RuntimeError("gradflow.profiler.profile: a profile is already active; "
                               "profiles do not nest")
        state.profiler = self
        return self

    def __exit__(self, *exc):
        state.profiler = None
        return False

    # ---- called by Function.apply around each op's forward --------------------------------------
    def begin(self, be):
        """Called by apply before an op runs: the start time (after the device is idle)."""
        _sync(be)
        return time.perf_counter()

    def end(self, start, ctx, arrays, out):
        """Called by apply after an op ran: records its time, FLOPs and bytes."""
        _sync(ctx.be)
        elapsed = time.perf_counter() - start
        key = (ctx.name, state.phase)
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = OpStats()
        s.calls += 1
        s.time += elapsed
        s.flops += flops(ctx, arrays, out)
        s.bytes += sum(a.nbytes for a in arrays) + out.nbytes

    # ---- reports --------------------------------------------------------------------------------
    def summary(self) -> dict:
        """Totals per phase ({"forward": {"time", "flops", "bytes", "calls"}, "backward": ...})
        and the backward/forward ratios of FLOPs and time (nan when forward is zero)."""
        out = {p: {"time": 0.0, "flops": 0, "bytes": 0, "calls": 0} for p in _PHASES}
        for (_, phase), s in self.stats.items():
            t = out[phase]
            t["time"] += s.time
            t["flops"] += s.flops
            t["bytes"] += s.bytes
            t["calls"] += s.calls
        fwd, bwd = out["forward"], out["backward"]
        out["backward_forward_flop_ratio"] = _ratio(bwd["flops"], fwd["flops"])
        out["backward_forward_time_ratio"] = _ratio(bwd["time"], fwd["time"])
        return out

    def table(self, sort_by="time") -> str:
        """A text table, one row per (op, phase), sorted by ``sort_by`` ("time", "flops",
        "bytes", "calls": largest first; "op": by name), then the totals per phase."""
        if sort_by == "op":
            rows = sorted(self.stats.items())
        elif sort_by in ("time", "flops", "bytes", "calls"):
            rows = sorted(self.stats.items(), key=lambda kv: getattr(kv[1], sort_by), reverse=True)
        else:
            raise ValueError(f"table: sort_by must be 'time', 'flops', 'bytes', 'calls' or 'op', "
                             f"got {sort_by!r}")
        summary = self.summary()
        rows += [(("total", p), OpStats(**summary[p])) for p in _PHASES]
        header = ("op", "phase", "calls", "time (ms)", "FLOPs", "bytes")
        lines = [header] + [
            (op, phase, str(s.calls), f"{s.time * 1e3:.3f}", _si(s.flops), _si(s.bytes))
            for (op, phase), s in rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                          for i, (c, w) in enumerate(zip(line, widths)))
                for line in lines]
        text.insert(1, "-" * len(text[0]))
        text.insert(len(text) - len(_PHASES), "-" * len(text[0]))
        return "\n".join(text)
