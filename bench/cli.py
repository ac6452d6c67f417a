"""``python -m bench``: run the suites, print the table, write the JSON and the plot."""

import argparse
import dataclasses
import datetime
import sys
import time

from tqdm import tqdm

from . import (backprop_cost, contenders, contention, distributed, elementwise, gemm, harness,
               machine, mlp, overhead, reduce, report)

SUITES = {"gemm": gemm, "elementwise": elementwise, "reduce": reduce, "overhead": overhead,
          "mlp": mlp, "backprop-cost": backprop_cost, "distributed": distributed,
          "contention": contention}
DEVICES = {"cpu": ("cpu",), "cuda": ("cuda",), "all": ("cpu", "cuda")}


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--suite", default=",".join(SUITES),
                   help=f"comma-separated suites (default: all): {', '.join(SUITES)}")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--quick", action="store_true", help="small sizes, short timing: a smoke run")
    p.add_argument("--json", metavar="PATH", help="write every raw figure and the machine here")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of gradflow's ratios here")
    p.add_argument("--threads", type=int, metavar="N", help="threads for gradflow, torch and numpy's BLAS")
    args = p.parse_args(argv)
    args.suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        p.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    return args


def run(suites, found, settings, quick):
    """All result rows; a progress bar over (case, contender) pairs, advanced per case."""
    plan = []
    for name in suites:
        for case in SUITES[name].cases(quick):
            who = [c for c in found if c.device in case.devices and c.family in case.impls]
            if who:
                plan.append((case, who))
    rows = []
    with tqdm(total=sum(len(who) for _, who in plan), unit="run", dynamic_ncols=True) as bar:
        for case, who in plan:
            bar.set_postfix_str(f"{case.suite}: {case.name}", refresh=False)
            inputs = case.inputs()
            rows += harness.run_case(case, who, settings, inputs, case.reference(*inputs))
            bar.update(len(who))
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    notes = []
    if args.threads:
        notes.append(machine.set_threads(args.threads))
    found, skipped = contenders.discover(DEVICES[args.device])
    notes += [f"skipped {name}: {why}" for name, why in skipped]
    settings = harness.QUICK if args.quick else harness.Settings()

    start, ticks = time.perf_counter(), machine.cpu_ticks()
    rows = run(args.suites, found, settings, args.quick)
    load = machine.background_load(ticks, machine.cpu_ticks(), time.perf_counter() - start)
    analysis = {s: SUITES[s].analyse([r for r in rows if r["suite"] == s])
                for s in args.suites if hasattr(SUITES[s], "analyse")}
    if "distributed" in args.suites:  # its own mpiexec jobs, not in-process cases
        analysis["distributed"] = distributed.measure(args.quick)
    if "mlp" in args.suites:  # the step against its GEMMs, interleaved sample by sample
        analysis["mlp"]["breakdown"] = mlp.breakdown(found, args.quick)
    if "contention" in args.suites:  # starts its own busy neighbours
        analysis["contention"] = contention.measure(args.quick)
    report.add_ratios(rows)
    wall = time.perf_counter() - start

    info = machine.info()
    info["background_load_cpus"] = load
    if load is not None and load > 0.25:
        notes.append(f"other processes kept {load:.2f} CPUs busy during the run: timings of "
                     "multi-threaded kernels (which wait for every thread) are unreliable")
    notes = [n for n in notes if n]
    print(f"\n{machine.one_line(info)}")
    print(report.table(rows))
    if analysis.get("backprop-cost"):
        print("\nbackprop-cost\n" + report.backprop_table(analysis["backprop-cost"]))
    if "distributed" in analysis:
        print("\ndistributed\n" + distributed.table(analysis["distributed"]))
    if analysis.get("mlp", {}).get("breakdown"):
        print("\nmlp step against its eight GEMMs (interleaved)\n" + mlp.breakdown_table(analysis["mlp"]["breakdown"]))
    if "contention" in analysis:
        print("\ncontention\n" + contention.table(analysis["contention"]))
    for suite, key in (("gemm", "peak"), ("elementwise", "copy_bw")):
        if analysis.get(suite, {}).get(key):
            print(f"\n{suite} {key} ({analysis[suite][key + '_definition']}): {analysis[suite][key]}")
    bad = [r for r in rows if not r["agreed"]]
    for r in bad:
        notes.append(f"{r['status']}: {r['case']} [{r['contender']}] "
                     f"{r.get('error') or 'error/tolerance = %.3g' % r['error_vs_tolerance']}")
    if args.json:
        report.write_json(args.json, {
            "command": "python -m bench " + " ".join(argv),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": wall, "quick": args.quick, "device": args.device,
            "settings": dataclasses.asdict(settings), "machine": info,
            "machine_line": machine.one_line(info),
            "contenders": [c.name for c in found], "notes": notes,
            "analysis": analysis, "results": rows})
    if args.plot:
        notes.append(report.plot(args.plot, rows))
    for n in filter(None, notes):
        print(f"note: {n}")
    print(f"{len(rows)} runs in {wall:.0f} s; {len(bad)} disagreed with the reference or failed")
    return 1 if bad else 0
