"""mlp: one full training step (forward, cross-entropy, backward, SGD) of a small MLP.

784-512-512-10 ReLU at batch 64 and 256, 64-32-10 sigmoid at batch 32; gradflow
(``nn.Sequential`` of ``nn.Linear`` and the activation's module + ``optim.SGD``) against torch
(``nn.functional`` + ``torch.optim.SGD``) and a hand-written numpy step, which in float64 is
also the reference. A step returns (loss, gradients, updated parameters); all three are checked.
Each net is also a ``gf.jit`` case: the same gradflow step recorded once and replayed, against
the same peers timed again in that case.

The floor of a step is its GEMMs: for each ReLU net a "gemms" case times the eight GEMMs of
its step alone (3 forward; dW of the 3 layers and dX of the upper 2), gradflow's matmul on
arrays of the step's shapes. The analysis sets each step against them (step / GEMMs, the time
outside the GEMMs) and against torch's step, all from the same run.

The network helpers here are shared with the backprop-cost suite.
"""

import numpy as np

import gradflow as gf

from .harness import Case, gflops

LR = 0.05
NETS = (((784, 512, 512, 10), "relu", 64), ((784, 512, 512, 10), "relu", 256),
        ((64, 32, 10), "sigmoid", 32))


# ---- the network ---------------------------------------------------------------------------------
def make_inputs(sizes, batch, seed=0):
    """Host inputs: x (batch, sizes[0]), labels, then W0, b0, W1, b1, ... (W: (out, in))."""
    rng = np.random.default_rng(seed)
    out = [rng.standard_normal((batch, sizes[0]), dtype=np.float32),
           rng.integers(0, sizes[-1], batch)]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        out += [rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                rng.uniform(-bound, bound, fan_out).astype(np.float32)]
    return tuple(out)


def multiply_adds(sizes, batch):
    """(forward, backward) multiply-adds: forward batch*in*out per layer; backward dW and dX
    per layer (2x forward) minus the first layer's dX, which nothing needs."""
    fwd = sum(batch * i * o for i, o in zip(sizes[:-1], sizes[1:]))
    return fwd, 2 * fwd - batch * sizes[0] * sizes[1]


# ---- numpy: forward, backward by hand, step ------------------------------------------------------
def _np_act(name, z):
    return np.maximum(z, 0) if name == "relu" else 1 / (1 + np.exp(-z))


def _np_act_grad(name, h):  # from the activation's output
    return (h > 0).astype(h.dtype) if name == "relu" else h * (1 - h)


def np_forward(act, x, labels, *params):
    """(mean cross-entropy, layer inputs, logits)."""
    hs, h = [], x
    for i in range(0, len(params), 2):
        hs.append(h)
        z = h @ params[i].T + params[i + 1]
        h = _np_act(act, z) if i + 2 < len(params) else z
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1, keepdims=True)) + m
    return (lse[:, 0] - z[np.arange(len(labels)), labels]).mean(), hs, z - lse


def np_backward(act, labels, params, hs, log_probs):
    """Gradients [dW0, db0, dW1, ...] of the mean cross-entropy."""
    dz = np.exp(log_probs)
    dz[np.arange(len(labels)), labels] -= 1
    dz /= len(labels)
    grads = []
    for i in range(len(params) - 2, -1, -2):
        grads[:0] = [dz.T @ hs[i // 2], dz.sum(axis=0)]
        if i:
            dz = (dz @ params[i]) * _np_act_grad(act, hs[i // 2])
    return grads


def np_step(act, x, labels, *params):
    loss, hs, log_probs = np_forward(act, x, labels, *params)
    grads = np_backward(act, labels, params, hs, log_probs)
    for p, g in zip(params, grads):
        p -= LR * g
    return (loss, *grads, *params)


def reference_step(act):
    """The numpy step in float64 on copies of the host inputs."""
    def ref(x, labels, *params):
        return np_step(act, x.astype(np.float64), labels, *(p.astype(np.float64) for p in params))
    return ref


# ---- gradflow and torch --------------------------------------------------------------------------
def forward(F, act, x, labels, params):
    """Mean cross-entropy of the MLP, written with an ``nn.functional`` (gradflow's or torch's)."""
    h = x
    for i in range(0, len(params), 2):
        h = F.linear(h, params[i], params[i + 1])
        if i + 2 < len(params):
            h = getattr(F, act)(h)
    return F.cross_entropy(h, labels)


def tensors(c, x, labels, params):
    return c.tensor(x), c.tensor(labels), [c.tensor(p, requires_grad=True) for p in params]


def sequential(act, params):
    """gradflow's nn.Sequential of Linear layers (holding ``params``) and the activation."""
    nn, layers = gf.nn, []
    for i in range(0, len(params), 2):
        lin = nn.Linear(params[i].shape[1], params[i].shape[0])
        lin.weight, lin.bias = nn.Parameter(params[i]), nn.Parameter(params[i + 1])
        layers.append(lin)
        if i + 2 < len(params):
            layers.append(nn.ReLU() if act == "relu" else nn.Sigmoid())
    return nn.Sequential(*layers)


def gradflow_step(act):
    def make(c, x, labels, *params):
        x, labels, ps = tensors(c, x, labels, params)
        net = sequential(act, ps)
        ps = list(net.parameters())  # W0, b0, W1, ...
        opt = gf.optim.SGD(ps, lr=LR)
        F = gf.nn.functional

        def step():
            loss = F.cross_entropy(net(x), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return (loss, *(p.grad for p in ps), *ps)

        return step

    return make


def gradflow_jit_step(act):
    """The gradflow step under gf.jit, traced and replayed once before the harness's first
    call (which is then a replay, checked like every first result); the parameters are put
    back to the inputs' values afterwards."""
    def make(c, x, labels, *params):
        step = gf.jit(gradflow_step(act)(c, x, labels, *params))
        for _ in range(3):  # a record from before the gradients exist, one after, a replay
            out = step()
        for p, host in zip(out[len(out) // 2 + 1:], params):
            p.array[...] = c.asarray(host)
        return step

    return make


# ---- the floor: the step's eight GEMMs alone -----------------------------------------------------
def gemm_inputs(sizes, batch):
    """x, W0, W1, W2 of the step and float32 arrays of the shapes of the layer inputs h1, h2 and
    the pre-activation gradients g0, g1, g2 (values from the numpy step)."""
    x, labels, *params = make_inputs(sizes, batch)
    _, hs, log_probs = np_forward("relu", x, labels, *params)
    gs, dz = [], np.exp(log_probs)
    dz[np.arange(batch), labels] -= 1
    for i in range(len(params) - 2, -1, -2):
        gs.insert(0, dz)
        dz = (dz @ params[i]) * (hs[i // 2] > 0)
    return (x, *params[0::2], *hs[1:], *gs)


def _gemms(mm, x, w0, w1, w2, h1, h2, g0, g1, g2):
    return (mm(x, w0, False, True), mm(h1, w1, False, True), mm(h2, w2, False, True),  # forward
            mm(g2, h2, True, False), mm(g2, w2, False, False), mm(g1, h1, True, False),  # backward
            mm(g1, w1, False, False), mm(g0, x, True, False))


def gradflow_gemms(c, *host):
    arrays = [c.asarray(h) for h in host]
    return lambda: _gemms(c.be.matmul, *arrays)


def reference_gemms(*host):
    def mm(a, b, ta, tb):
        a, b = a.astype(np.float64), b.astype(np.float64)
        return (a.T if ta else a) @ (b.T if tb else b)

    return _gemms(mm, *host)


def torch_step(act):
    def make(c, x, labels, *params):
        x, labels, ps = tensors(c, x, labels, params)
        opt = c.torch.optim.SGD(ps, lr=LR)

        def step():
            loss = forward(c.torch.nn.functional, act, x, labels, ps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return (loss, *(p.grad for p in ps), *ps)

        return step

    return make


def numpy_step(act):
    def make(c, x, labels, *params):
        params = [c.asarray(p) for p in params]
        return lambda: np_step(act, x, labels, *params)

    return make


def cases(quick):
    out = []
    for sizes, act, batch in NETS:
        fwd, bwd = multiply_adds(sizes, batch)
        name = f"{'-'.join(map(str, sizes))} {act} b{batch}"
        if act == "relu":
            out.append(Case(
                "mlp", name + " gemms", lambda sizes=sizes, batch=batch: gemm_inputs(sizes, batch),
                reference_gemms, {"gradflow": gradflow_gemms},
                {"sizes": sizes, "activation": act, "batch": batch, "multiply_adds": fwd + bwd,
                 "part": "gemms"}, gflops(2 * (fwd + bwd))))
        out.append(Case(
            "mlp", name,
            lambda sizes=sizes, batch=batch: make_inputs(sizes, batch), reference_step(act),
            {"gradflow": gradflow_step(act), "torch": torch_step(act), "numpy": numpy_step(act)},
            {"sizes": sizes, "activation": act, "batch": batch, "multiply_adds": fwd + bwd,
             "part": "step"},
            gflops(2 * (fwd + bwd))))
        out.append(Case(
            "mlp", f"{'-'.join(map(str, sizes))} {act} b{batch} gf.jit",
            lambda sizes=sizes, batch=batch: make_inputs(sizes, batch), reference_step(act),
            {"gradflow": gradflow_jit_step(act), "torch": torch_step(act),
             "numpy": numpy_step(act)},
            {"sizes": sizes, "activation": act, "batch": batch, "multiply_adds": fwd + bwd,
             "jit": True, "part": "jit"},
            gflops(2 * (fwd + bwd))))
    return out


def analyse(rows):
    """Per net with a gemms case and device: each contender's step on that device against
    gradflow's eight GEMMs alone there (ratio and the time outside them), and gradflow's step
    against torch's."""
    med = {}  # (net, part, device) -> {family: median seconds}
    for r in rows:
        if r["status"] == "ok":
            p = r["params"]
            net = f"{'-'.join(map(str, p['sizes']))} {p['activation']} b{p['batch']}"
            med.setdefault((net, p["part"], r["device"]), {})[r["family"]] = r["median_s"]
    out = {}
    for (net, part, device), by_family in sorted(med.items()):
        gemm_s = by_family.get("gradflow")
        if part != "gemms" or gemm_s is None:
            continue
        steps = med.get((net, "step", device), {})
        entry = out.setdefault(device, {})[net] = {"gemms_s": gemm_s, "steps": {
            family: {"step_s": t, "step_over_gemms": t / gemm_s, "outside_gemms_s": t - gemm_s,
                     "outside_gemms_fraction": 1 - gemm_s / t}
            for family, t in steps.items()}}
        if "gradflow" in steps and "torch" in steps:
            entry["gradflow_over_torch"] = steps["gradflow"] / steps["torch"]
    return out


# ---- the breakdown: step against its GEMMs, sample by sample ------------------------------------
def breakdown(found, quick):
    """For each ReLU net on the CPU: the eight GEMMs, gradflow's steps (eager and under gf.jit),
    torch's and numpy's timed in turn, one sample each per round, so that load from other
    processes falls on all alike; per round the ratio of each step to the GEMMs (and
    gradflow's to torch's), reported as median and quartiles, next to the ratio of the
    fastest samples."""
    import time

    by = {c.family: c for c in found if c.device == "cpu"}
    if "gradflow" not in by:
        return {}
    rounds, calls = (4, 1) if quick else (40, 4)
    out = {}
    for sizes, act, batch in NETS:
        if act != "relu":
            continue
        host = make_inputs(sizes, batch)
        fns = {"gemms": gradflow_gemms(by["gradflow"], *gemm_inputs(sizes, batch))}
        for family, make in (("gradflow", gradflow_step), ("gradflow", gradflow_jit_step),
                             ("torch", torch_step), ("numpy", numpy_step)):
            if family in by:
                key = family + (" gf.jit" if make is gradflow_jit_step else "")
                fns[key] = make(act)(by[family], *host)
        times = {k: [] for k in fns}
        for f in fns.values():
            for _ in range(3):
                f()
        for _ in range(rounds):
            for k, f in fns.items():
                t0 = time.perf_counter()
                for _ in range(calls):
                    f()
                times[k].append((time.perf_counter() - t0) / calls)
        t = {k: np.array(v) for k, v in times.items()}

        def ratio(a, b):
            q1, med, q3 = np.percentile(t[a] / t[b], [25, 50, 75])
            return {"median": float(med), "q1": float(q1), "q3": float(q3),
                    "of_fastest": float(t[a].min() / t[b].min())}

        entry = out[f"{'-'.join(map(str, sizes))} {act} b{batch}"] = {
            "rounds": rounds, "calls_per_sample": calls,
            "median_s": {k: float(np.median(v)) for k, v in t.items()},
            "fastest_s": {k: float(v.min()) for k, v in t.items()},
            "step_over_gemms": {k: ratio(k, "gemms") for k in t if k != "gemms"}}
        if "torch" in t:
            entry["gradflow_over_torch"] = ratio("gradflow", "torch")
            entry["gradflow_jit_over_torch"] = ratio("gradflow gf.jit", "torch")
    return out


def breakdown_table(result):
    lines = ["net, GEMMs (median); gradflow/GEMMs; gf.jit/GEMMs; torch/GEMMs; numpy/GEMMs; "
             "gradflow/torch; gf.jit/torch"]
    for net, e in result.items():
        r = e["step_over_gemms"]

        def cell(x):
            return f"{x['median']:.2f} [{x['q1']:.2f}-{x['q3']:.2f}] ({x['of_fastest']:.2f})" if x else "-"

        lines.append(f"{net}, {e['median_s']['gemms'] * 1e3:.2f} ms; {cell(r.get('gradflow'))}; "
                     f"{cell(r.get('gradflow gf.jit'))}; {cell(r.get('torch'))}; {cell(r.get('numpy'))}; "
                     f"{cell(e.get('gradflow_over_torch'))}; {cell(e.get('gradflow_jit_over_torch'))}")
    lines.append("median [quartiles] of the per-round ratios (ratio of the fastest samples)")
    return "\n".join(lines)
