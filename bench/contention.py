"""contention: gradflow's default threads on a machine where other processes keep cores busy.

A laptop or a shared server rarely has its cores to itself. For 0, 1 and 2 busy neighbours
(child processes spinning on a core each, pinned with ``os.sched_setaffinity`` where the
system has it; at most one per core) every CPU workload of the elementwise, reduce, gemm and
mlp suites (at their --quick sizes) is timed three ways in interleaved rounds: gradflow at its default thread count,
gradflow on one thread, and torch at its default. Then the training command
(``python -m gradflow.train`` on the digits, default threads against ``--threads 1``), its
seconds per epoch, alternating runs.

Each sample is the mean time per call of a batch of calls lasting at least ``min_sample_s``,
taken after ``settle_s`` of calls (another library's pool that spins on the cores the next
contender needs is asleep by then); rounds take one sample of each of the three in turn, so
a burst of other load falls on all three alike. Rows give the median over the rounds and the
quartiles. Ratios: ``vs_one_thread`` = gradflow default / gradflow one thread (threads must not
hurt: at most 1.1 under contention), ``vs_torch`` = gradflow default / torch default (at most
0.8). The load average at the start and end of each level is recorded: the neighbours are not
the only other load on a shared machine.
"""

import os
import re
import subprocess
import sys
import tempfile

import numpy as np

import gradflow as gf

from . import contenders, elementwise, gemm, harness, mlp, reduce

SUITES = (elementwise, reduce, gemm, mlp)
NEIGHBOURS = (0, 1, 2)
QUICK_NEIGHBOURS = (0, 1)
# A neighbour: pins itself to one CPU (when given one and the system can), then spins.
_SPIN = ("import os, sys\n"
         "cpu = int(sys.argv[1])\n"
         "if cpu >= 0 and hasattr(os, 'sched_setaffinity'):\n"
         "    os.sched_setaffinity(0, {cpu})\n"
         "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
         "while True:\n"
         "    pass\n")
_EPOCH = re.compile(r"\(([0-9.]+) s per epoch")


def cases(quick):
    return []  # not harness cases: measure() times its own configurations


def _cpus():
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


class Neighbours:
    """``n`` busy processes, on the last n CPUs this process may use, for a with-block."""

    def __init__(self, n):
        cpus = _cpus()
        self.cpus = cpus[len(cpus) - n:] if n else []
        self.procs = []

    def __enter__(self):
        for cpu in self.cpus:
            p = subprocess.Popen([sys.executable, "-c", _SPIN, str(cpu)], stdout=subprocess.PIPE,
                                 text=True)
            self.procs.append(p)
        for p in self.procs:
            p.stdout.readline()  # spinning from here on
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
            p.stdout.close()
        self.procs = []


def _load():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def workloads(quick):
    """Every CPU case of the suites' --quick sets with a gradflow and a torch version (their
    full sizes, timed three ways at three levels, take over half an hour on a loaded 2-core
    machine); --quick here: the first two of each suite."""
    out = []
    for suite in SUITES:
        mine = [case for case in suite.cases(True)
                if "cpu" in case.devices and {"gradflow", "torch"} <= set(case.impls)]
        out += mine[:2] if quick else mine
    return out


def _configs(found, default_threads):
    """[(label, contender, threads to set)]: gradflow default, gradflow one thread, torch."""
    by_family = {c.family: c for c in found if c.device == "cpu"}
    out = [("gradflow", by_family["gradflow"], default_threads), ("gradflow-1t", by_family["gradflow"], 1)]
    if "torch" in by_family:
        out.append(("torch", by_family["torch"], None))
    return out


def _time_case(case, configs, settings, default_threads):
    """{label: [samples]} and any error, the configurations interleaved in rounds."""
    host = case.inputs()
    reference = case.reference(*host)
    fns, samples, errors = {}, {}, {}
    for label, c, threads in configs:
        try:
            if threads:
                gf.set_num_threads(threads)
            fn = case.impls[c.family](c, *host)
            out = [c.to_numpy(o) for o in harness._flat(fn())]
            agreed, _ = harness.agreement(out, reference, case.dtype)
            if not agreed:
                errors[label] = "disagrees with the reference"
                continue
            number, _ = harness._calibrate(fn, c.sync, settings)
            fns[label], samples[label] = (fn, c, threads, number), []
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            errors[label] = f"{type(e).__name__}: {e}"
    for _ in range(settings.rounds):
        for label, (fn, c, threads, number) in fns.items():
            if threads:
                gf.set_num_threads(threads)
            harness._call_for(fn, c.sync, settings.settle_s)
            samples[label].append(harness._sample(fn, c.sync, number))
    gf.set_num_threads(default_threads)
    return samples, errors


def _summary(samples):
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3), "n": len(samples)}


def _ratios(row):
    t = {k: v["median_s"] for k, v in row["times"].items()}
    if "gradflow" in t and "gradflow-1t" in t:
        row["vs_one_thread"] = t["gradflow"] / t["gradflow-1t"]
    if "gradflow" in t and "torch" in t:
        row["vs_torch"] = t["gradflow"] / t["torch"]


def _train(threads, quick):
    """Seconds per epoch of one run of the training command (its own report)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "gradflow.train", "--epochs", "1" if quick else "4",
               "--out", os.path.join(tmp, "mlp.npz")]
        if threads:
            cmd += ["--threads", str(threads)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "TQDM_DISABLE": "1"})
    m = _EPOCH.search(p.stdout)
    if p.returncode or not m:
        raise RuntimeError(f"gradflow.train failed ({p.returncode}): {p.stderr[-400:]}")
    return float(m.group(1))


def measure(quick):
    # (settle 0.15 s, as the other suites: torch's OpenMP threads can still spin 0.02 s after its
    # sample, and a gradflow pool whose idle workers yield their core measured the MLP steps with
    # no neighbour at 1.05-1.16x one thread there, 0.6-0.7x after 0.15 s)
    settings = harness.Settings(warmup=1, warmup_s=0.05, min_sample_s=2e-3, rounds=3 if quick else 5,
                                settle_s=0.01 if quick else 0.15)
    found, _ = contenders.discover(("cpu",))
    default_threads = gf.get_num_threads()
    configs = _configs(found, default_threads)
    cases_ = workloads(quick)
    cpus = len(_cpus())
    levels = [n for n in (QUICK_NEIGHBOURS if quick else NEIGHBOURS) if n <= cpus]
    result = {"default_threads": default_threads, "cpus": cpus, "threading": gf._C.threading_info(),
              "settings": {"rounds": settings.rounds, "min_sample_s": settings.min_sample_s,
                           "settle_s": settings.settle_s},
              "levels": []}
    train_runs = 1 if quick else 3
    for n in levels:
        level = {"neighbours": n, "load_start": _load(), "rows": [], "errors": []}
        with Neighbours(n) as nb:
            level["neighbour_cpus"] = nb.cpus
            for case in cases_:
                samples, errors = _time_case(case, configs, settings, default_threads)
                row = {"suite": case.suite, "case": case.name,
                       "times": {k: _summary(v) for k, v in samples.items() if v}}
                _ratios(row)
                level["rows"].append(row)
                level["errors"] += [f"{case.name} [{k}]: {v}" for k, v in errors.items()]
            runs = {"default": [], "threads 1": []}
            for _ in range(train_runs):
                for label, threads in (("default", None), ("threads 1", 1)):
                    try:
                        runs[label].append(_train(threads, quick))
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        level["errors"].append(f"train [{label}]: {e}")
            level["train_s_per_epoch"] = {k: _summary(v) for k, v in runs.items() if v}
            if all(runs.values()):
                level["train_vs_one_thread"] = (float(np.median(runs["default"]))
                                                / float(np.median(runs["threads 1"])))
        level["load_end"] = _load()
        result["levels"].append(level)
    return result


def _cell(t):
    if not t:
        return f"{'-':>17}"
    spread = 100 * (t["q3_s"] - t["q1_s"]) / t["median_s"]
    return f"{t['median_s'] * 1e3:9.3f} ms {spread:3.0f}%"


def _ratio(r):
    return f"{r:6.2f}" if r is not None else f"{'-':>6}"


def table(result):
    lines = [f"threading {result['threading']}, {result['cpus']} CPUs; medians over "
             f"{result['settings']['rounds']} rounds, quartile spread in % of the median"]
    for level in result["levels"]:
        lines.append(f"\n{level['neighbours']} busy neighbour(s) on CPUs {level['neighbour_cpus']}; "
                     f"load average {level['load_start']:.2f} -> {level['load_end']:.2f}")
        lines.append(f"  {'case':<36}{'default':>17}{'1 thread':>17}{'torch':>17}{'/1t':>7}{'/torch':>7}")
        for row in level["rows"]:
            cells = "".join(_cell(row["times"].get(k)) for k in ("gradflow", "gradflow-1t", "torch"))
            lines.append(f"  {row['suite'][:4] + ' ' + row['case']:<36}{cells} "
                         f"{_ratio(row.get('vs_one_thread'))} {_ratio(row.get('vs_torch'))}")
        tr = level.get("train_s_per_epoch", {})
        if tr:
            cells = ", ".join(f"{k} {v['median_s']:.4f} s/epoch ({v['q1_s']:.4f}-{v['q3_s']:.4f})"
                              for k, v in tr.items())
            ratio = level.get("train_vs_one_thread")
            lines.append(f"  train: {cells}" + (f"; default / threads 1 = {ratio:.2f}" if ratio else ""))
        over = [r for r in level["rows"]
                if r.get("vs_one_thread", 0) > 1.1 or r.get("vs_torch", 0) > 0.8]
        lines.append(f"  rows over 1.1x one thread or 0.8x torch: {len(over)} of {len(level['rows'])}")
        lines += [f"  error: {e}" for e in level["errors"]]
    return "\n".join(lines)
