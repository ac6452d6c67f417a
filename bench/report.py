"""Ratios, the end-of-run table, the JSON file and the ratio plot."""

import json
import math

from .contenders import PEERS


def add_ratios(rows):
    """On each timed gradflow row: ratio[vs peer] = peer median / gradflow median (> 1: gradflow
    is faster) for the peer on the same case and device (numpy: the host)."""
    by_key = {(r["suite"], r["case"], r["family"], r["device"]): r for r in rows}
    for r in rows:
        if r["family"] != "gradflow" or r["status"] != "ok" or r["params"].get("baseline"):
            continue  # baseline cases measure the machine, not gradflow
        r["ratio"] = {}
        for peer in PEERS:
            other = by_key.get((r["suite"], r["case"], peer, "cpu" if peer == "numpy" else r["device"]))
            if other and other["status"] == "ok":
                r["ratio"][f"vs {peer}"] = other["median_s"] / r["median_s"]


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=_jsonable)
        f.write("\n")


def _jsonable(x):
    if hasattr(x, "tolist"):  # numpy scalars and arrays
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _time(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _cell(r):
    if r is None:
        return "n/a"
    if r["status"] != "ok":
        return r["status"]
    spread = (r["q3_s"] - r["q1_s"]) / r["median_s"]
    return f"{_time(r['median_s'])} ±{100 * spread / 2:.0f}%"


def _rate(r):
    if r is None or r["status"] != "ok" or "metric" not in r:
        return ""
    text = f"{r['metric']['value']:.3g} {r['metric']['unit']}"
    for key, label in (("fraction_of_peak", "peak"), ("fraction_of_copy_bw", "copy")):
        if key in r:
            text += f" ({100 * r[key]:.0f}% {label})"
    return text


def _format(header, lines):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    return "\n".join(out + [fmt.format(*map(str, line)) for line in lines])


def table(rows):
    """One line per (case, device): each family's median ± half the IQR, the ratios, gradflow's rate."""
    by_key = {(r["suite"], r["case"], r["family"], r["device"]): r for r in rows}
    lines = []
    for suite, case, device in dict.fromkeys((r["suite"], r["case"], r["device"]) for r in rows):
        gf = by_key.get((suite, case, "gradflow", device))
        peers = [by_key.get((suite, case, p, "cpu" if p == "numpy" else device)) for p in PEERS]
        ratios = (gf or {}).get("ratio", {})
        lines.append([suite, case, device, _cell(gf), *map(_cell, peers),
                      *(f"{ratios[f'vs {p}']:.2f}" if f"vs {p}" in ratios else "" for p in PEERS),
                      _rate(gf)])
    header = ["suite", "case", "dev", "gradflow", *PEERS, *(f"vs {p}" for p in PEERS), "gradflow rate"]
    return _format(header, lines)


def backprop_table(analysis):
    lines = []
    for name, res in analysis.items():
        for c in res["configs"]:
            lines.append([name, c["depth"], c["width"], _time(c["forward_s"]), _time(c["backward_s"]),
                          f"{c['backward_over_forward_time']:.2f}",
                          f"{c['backward_over_forward_multiply_adds']:.2f}"])
    text = _format(["contender", "depth", "width", "forward", "backward", "bwd/fwd time",
                    "bwd/fwd multiply-adds"], lines)
    for name, res in analysis.items():
        if "vs_depth" in res:
            d = res["vs_depth"]
            text += (f"\n{name}: fwd+bwd time vs depth (width {res['configs'][0]['width']}...): "
                     f"{_time(d['per_layer_s'])}/layer, R² {d['r2']:.3f}")
        if "vs_width" in res:
            w = res["vs_width"]
            text += (f"\n{name}: fwd+bwd time vs width: log-log slope {w['slope_all']:.2f} "
                     f"(largest 3 widths: {w['slope_largest3']:.2f})")
    return text


def plot(path, rows):
    """Horizontal bars of gradflow's ratios (log scale) per case, one panel per suite."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    ratio_rows = [r for r in rows if r.get("ratio")]
    suites = list(dict.fromkeys(r["suite"] for r in ratio_rows))
    if not suites:
        return "no ratios to plot"
    heights = [sum(1 for r in ratio_rows if r["suite"] == s) + 1 for s in suites]
    fig, axes = plt.subplots(len(suites), 1, figsize=(9, 0.3 * sum(heights) + 1.5),
                             gridspec_kw={"height_ratios": heights}, squeeze=False, sharex=True)
    bar = 0.8 / len(PEERS)
    for ax, suite in zip(axes[:, 0], suites):
        mine = [r for r in ratio_rows if r["suite"] == suite]
        for j, peer in enumerate(PEERS):
            ys = [i + (j - (len(PEERS) - 1) / 2) * bar for i in range(len(mine))]
            xs = [r["ratio"].get(f"vs {peer}", math.nan) for r in mine]
            ax.barh(ys, [x - 1 for x in xs], left=1, height=bar, label=f"vs {peer}")
        ax.axvline(1, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(mine)))
        ax.set_yticklabels([f"{r['case']} [{r['device']}]" for r in mine], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(suite, fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7, labelbottom=True)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("peer time / gradflow time (> 1: gradflow faster)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
