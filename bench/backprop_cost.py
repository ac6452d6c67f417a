"""backprop-cost: does backward cost about two forward passes, and how does cost grow?

MLPs of ``depth`` ReLU layers of ``width`` units (input width, ``width`` classes, batch 256) are
timed twice: forward only (recording the graph) and forward + backward; backward time is the
difference. Multiply-adds are counted from the shapes (``mlp.multiply_adds``): forward
depth*batch*width², backward twice that minus the first layer's dX, so the counted ratio is
(2 depth - 1) / depth. The analysis fits forward+backward time against depth (a line) and
against width (the log-log slope, ≈ 2 where the GEMMs dominate). numpy is the hand-written
backprop: the same arithmetic with no autograd machinery.
"""

import numpy as np

import gradflow as gf

from . import mlp
from .harness import Case, gflops

BATCH = 256
WIDTHS, DEPTH = (64, 128, 256, 512, 1024), 4
DEPTHS, WIDTH = (1, 2, 4, 8, 16), 256
QUICK = ((32, 64), 2, (1, 2), 64)  # widths, depth, depths, width
ACT = "relu"


def _forward(c, x, labels, *params):
    F = gf.nn.functional if c.family == "gradflow" else c.torch.nn.functional
    x, labels, ps = mlp.tensors(c, x, labels, params)
    return lambda: mlp.forward(F, ACT, x, labels, ps)


def _forward_backward(c, x, labels, *params):
    F = gf.nn.functional if c.family == "gradflow" else c.torch.nn.functional
    x, labels, ps = mlp.tensors(c, x, labels, params)

    def run():
        for p in ps:
            p.grad = None
        loss = mlp.forward(F, ACT, x, labels, ps)
        loss.backward()
        return (loss, *(p.grad for p in ps))

    return run


def _np_forward(c, x, labels, *params):
    return lambda: mlp.np_forward(ACT, x, labels, *params)[0]


def _np_forward_backward(c, x, labels, *params):
    def run():
        loss, hs, log_probs = mlp.np_forward(ACT, x, labels, *params)
        return (loss, *mlp.np_backward(ACT, labels, params, hs, log_probs))

    return run


def _reference(x, labels, *params):
    """(loss, dW0, db0, ...) in float64."""
    x, params = x.astype(np.float64), [p.astype(np.float64) for p in params]
    loss, hs, log_probs = mlp.np_forward(ACT, x, labels, *params)
    return (loss, *mlp.np_backward(ACT, labels, params, hs, log_probs))


def _cases_for(depth, width, sweeps):
    sizes = (width,) * (depth + 1)
    fwd, bwd = mlp.multiply_adds(sizes, BATCH)
    params = {"depth": depth, "width": width, "batch": BATCH, "sweeps": sweeps,
              "multiply_adds_forward": fwd, "multiply_adds_backward": bwd}

    def inputs():
        return mlp.make_inputs(sizes, BATCH)

    return [
        Case("backprop-cost", f"fwd d={depth} w={width}", inputs, lambda *a: _reference(*a)[0],
             {"gradflow": _forward, "torch": _forward, "numpy": _np_forward},
             dict(params, pass_="forward"), gflops(2 * fwd)),
        Case("backprop-cost", f"fwd+bwd d={depth} w={width}", inputs, _reference,
             {"gradflow": _forward_backward, "torch": _forward_backward, "numpy": _np_forward_backward},
             dict(params, pass_="forward+backward"), gflops(2 * (fwd + bwd))),
    ]


def cases(quick):
    widths, depth, depths, width = QUICK if quick else (WIDTHS, DEPTH, DEPTHS, WIDTH)
    configs = {}  # (depth, width) -> the sweeps it belongs to
    for w in widths:
        configs.setdefault((depth, w), []).append("width")
    for d in depths:
        configs.setdefault((d, width), []).append("depth")
    return [case for (d, w), sweeps in sorted(configs.items()) for case in _cases_for(d, w, sweeps)]


def _line_fit(xs, ys):
    """(slope, intercept, R²) of a least-squares line."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    slope, intercept = np.polyfit(xs, ys, 1)
    ss_res = float(np.sum((ys - (slope * xs + intercept)) ** 2))
    ss_tot = float(np.sum((ys - ys.mean()) ** 2))
    return float(slope), float(intercept), 1 - ss_res / ss_tot if ss_tot else 1.0


def analyse(rows):
    """Per contender: backward/forward time and multiply-add ratios per config; forward+backward
    time fitted against depth (line) and width (log-log slope)."""
    passes = {}  # (contender, depth, width) -> {pass: (median, params)}
    for r in rows:
        if r["status"] == "ok":
            p = r["params"]
            passes.setdefault((r["contender"], p["depth"], p["width"]), {})[p["pass_"]] = (r["median_s"], p)
    out = {}
    for (name, d, w), by_pass in sorted(passes.items()):
        if len(by_pass) < 2:
            continue
        (tf, p), (tfb, _) = by_pass["forward"], by_pass["forward+backward"]
        res = out.setdefault(name, {"configs": [], "depth_sweep": [], "width_sweep": []})
        res["configs"].append({"depth": d, "width": w, "forward_s": tf, "backward_s": tfb - tf,
                               "backward_over_forward_time": (tfb - tf) / tf,
                               "backward_over_forward_multiply_adds":
                                   p["multiply_adds_backward"] / p["multiply_adds_forward"]})
        for sweep in p["sweeps"]:
            res[f"{sweep}_sweep"].append((d if sweep == "depth" else w, tfb))
    for res in out.values():
        depth_sweep, width_sweep = sorted(res.pop("depth_sweep")), sorted(res.pop("width_sweep"))
        if len(depth_sweep) >= 2:
            slope, intercept, r2 = _line_fit(*zip(*depth_sweep))
            res["vs_depth"] = {"fit": "fwd+bwd seconds = intercept + per_layer * depth",
                               "per_layer_s": slope, "intercept_s": intercept, "r2": r2}
        if len(width_sweep) >= 2:
            lw, lt = np.log(np.array(width_sweep)).T
            res["vs_width"] = {"fit": "slope of log(fwd+bwd seconds) vs log(width)",
                               "slope_all": float(np.polyfit(lw, lt, 1)[0]),
                               "slope_largest3": float(np.polyfit(lw[-3:], lt[-3:], 1)[0])}
    return out
