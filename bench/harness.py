"""Cases, agreement checks and timing.

A :class:`Case` is one measurement (say, sgemm 1024³) with one implementation per library
family. For every contender that has one, :func:`run_case` builds the implementation on that
contender's copy of the inputs, checks its first result against a float64 numpy reference, and
only then times it: a wrong result is reported as WRONG and not timed.

Timing: each contender is warmed up and calibrated alone: calls are batched (``number`` per
sample) so that one sample lasts at least ``min_sample_s``. The samples (``budget_s`` worth per
contender, between ``min_repeats`` and ``max_repeats`` of them) are then taken in ``rounds``:
every contender in turn takes its share, so that a burst of load on a shared machine falls on
all contenders of a case alike instead of on whichever ran at that moment. Each turn starts
with calls for ``settle_s``, long enough for the thread pools that the previous contender left
spinning (OpenBLAS's spin for about 2^28 cycles) to go to sleep. Each sample is the mean time
per call of its batch; the row reports their median, quartiles and extremes. Device contenders
synchronise before the clock is read.
"""

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# Agreement with the float64 reference: |out - ref| <= rtol |ref| + atol_frac max|ref|.
TOLERANCE = {"float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)}


@dataclass
class Settings:
    warmup: int = 2
    warmup_s: float = 0.2
    min_sample_s: float = 2e-3
    budget_s: float = 0.4
    min_repeats: int = 3
    max_repeats: int = 24
    rounds: int = 3
    settle_s: float = 0.15


QUICK = Settings(warmup=1, warmup_s=0.02, min_sample_s=5e-4, budget_s=0.05, min_repeats=3,
                 max_repeats=6, rounds=2, settle_s=0.005)


@dataclass
class Case:
    suite: str
    name: str
    inputs: Callable[[], tuple]  # -> host (numpy) inputs; made when the case runs
    reference: Callable[..., object]  # host inputs -> expected result (arrays, float64)
    impls: dict  # family -> factory(contender, *host inputs) -> zero-argument callable
    params: dict = field(default_factory=dict)
    metric: tuple | None = None  # (unit, amount): value = amount / median seconds
    dtype: str = "float32"  # sets the tolerance
    devices: tuple = ("cpu", "cuda")
    budget_scale: float = 1.0  # < 1 for the slowest cases


def on_arrays(op):
    """A factory for ops on plain arrays: converts the inputs once, times op(contender, *arrays)."""

    def factory(c, *host):
        args = [c.asarray(h) for h in host]
        return lambda: op(c, *args)

    return factory


def gflops(flops):
    return ("GFLOP/s", flops / 1e9)


def gbps(nbytes):
    return ("GB/s", nbytes / 1e9)


def _flat(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


def agreement(outs, refs, dtype):
    """(agreed, worst error relative to the tolerance) between results and reference."""
    rtol, atol_frac = TOLERANCE[dtype]
    outs, refs = _flat(outs), _flat(refs)
    if len(outs) != len(refs):
        return False, float("inf")
    worst = 0.0
    for out, ref in zip(outs, refs):
        out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
        if out.shape != ref.shape:
            return False, float("inf")
        if ref.size == 0:
            continue
        allowed = rtol * np.abs(ref) + atol_frac * float(np.max(np.abs(ref)))
        excess = np.abs(out - ref) / np.maximum(allowed, np.finfo(np.float64).tiny)
        worst = max(worst, float(np.max(np.where(np.isnan(excess), np.inf, excess))))
    return worst <= 1.0, worst


def _call_for(fn, sync, seconds, calls=1):
    """Calls fn at least ``calls`` times and for at least ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while n < calls or time.perf_counter() - t0 < seconds:
        fn()
        sync()
        n += 1


def _calibrate(fn, sync, s: Settings):
    """(calls per sample, seconds per sample) after the warm-up."""
    _call_for(fn, sync, s.warmup_s, s.warmup)
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-9)
    number = max(1, int(s.min_sample_s / once))
    return number, once * number


def _sample(fn, sync, number):
    sync()
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    sync()
    return (time.perf_counter() - t0) / number


def _prepare(case, contender, settings, host_inputs, reference):
    """(row, timing): the contender's implementation is built on its own copy of the inputs,
    its first result checked against the reference, then warmed up and calibrated. timing (the
    callable, its sync, calls per sample, samples per turn) is None when the result disagrees
    or anything raises, which the row then says."""
    row = {"suite": case.suite, "case": case.name, "params": case.params,
           "contender": contender.name, "family": contender.family, "device": contender.device,
           "dtype": case.dtype}
    try:
        fn = case.impls[contender.family](contender, *host_inputs)
        first = fn()
        contender.sync()
        out = [contender.to_numpy(o) for o in _flat(first)]
        row["agreed"], row["error_vs_tolerance"] = agreement(out, reference, case.dtype)
        if not row["agreed"]:
            row["status"] = "WRONG"
            return row, None
        number, sample_s = _calibrate(fn, contender.sync, settings)
    except Exception as e:  # noqa: BLE001 - a crashing contender is a result, not a crash of the run
        _failed(row, e)
        return row, None
    budget = settings.budget_s * case.budget_scale
    repeats = min(settings.max_repeats, max(settings.min_repeats, budget / sample_s))
    per_turn = max(1, -(-int(repeats) // settings.rounds))  # ceil
    return row, (fn, contender.sync, number, per_turn)


def _failed(row, e):
    row.update(agreed=False, status="ERROR", error=f"{type(e).__name__}: {e}")


def run_case(case, contenders, settings, host_inputs, reference):
    """One result row per contender on one case: checked, then timed in rounds (see above)."""
    rows, timed = [], []
    for c in contenders:
        row, timing = _prepare(case, c, settings, host_inputs, reference)
        rows.append(row)
        if timing is not None:
            timed.append((row, timing, []))
    for _ in range(settings.rounds):
        for entry in list(timed):
            row, (fn, sync, number, per_turn), samples = entry
            try:
                if len(timed) > 1:
                    _call_for(fn, sync, settings.settle_s)
                samples += [_sample(fn, sync, number) for _ in range(per_turn)]
            except Exception as e:  # noqa: BLE001
                _failed(row, e)
                timed.remove(entry)
    for row, (_, _, number, _), samples in timed:
        q1, med, q3 = np.percentile(samples, [25, 50, 75])
        row.update(status="ok", times_s=samples, number=number, median_s=float(med),
                   q1_s=float(q1), q3_s=float(q3), min_s=min(samples), max_s=max(samples))
        if case.metric:
            unit, amount = case.metric
            row["metric"] = {"unit": unit, "value": float(amount / med)}
    return rows
