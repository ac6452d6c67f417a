"""GPU benchmarks of gradflow's CUDA backend, against PyTorch CUDA when it is importable.

    python bench/gpu/bench_gpu.py [--out DIR] [--quick]

* MLP 784-512-512-10 (ReLU, cross-entropy, SGD) training step at batch 256 and 4096;
* every activation forward and backward at 2^26 float32 elements, as a fraction of the
  measured device copy bandwidth (a CuPy copy of the same size);
* float32 matmul 4096^3, TF32 off and on (the same setting for gradflow and torch).

Times come from CUDA events around N back-to-back runs after warm-up. Prints a table and
writes gpu_bench.json into --out (default: $OUT, else bench/results).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import cupy as cp
import numpy as np

import gradflow as gf
from gradflow.backend import get as get_backend

try:
    import torch

    HAVE_TORCH = torch.cuda.is_available()
except ImportError:
    HAVE_TORCH = False


def cupy_ms(fn, reps):
    """Mean milliseconds of fn() on the GPU, CUDA events around reps runs after 2 warm-ups."""
    for _ in range(2):
        fn()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(reps):
        fn()
    stop.record()
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop) / reps


def torch_ms(fn, reps):
    for _ in range(2):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / reps


# ---- MLP training step --------------------------------------------------------------------------
SIZES = (784, 512, 512, 10)


def _init(rng):
    return [((rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32), np.zeros(o, np.float32))
            for i, o in zip(SIZES[:-1], SIZES[1:])]


def gradflow_mlp(batch, rng, lr=0.01):
    F = gf.nn.functional
    params = [(gf.tensor(w, device="cuda", requires_grad=True), gf.tensor(b, device="cuda", requires_grad=True))
              for w, b in _init(rng)]
    x = gf.tensor(rng.standard_normal((batch, SIZES[0])).astype(np.float32), device="cuda")
    y = gf.tensor(rng.integers(0, SIZES[-1], batch), device="cuda")
    flat = [p for pair in params for p in pair]
    be = get_backend("cuda:0")

    def step():
        h = x
        for i, (w, b) in enumerate(params):
            h = F.linear(h, w, b)
            if i < len(params) - 1:
                h = h.relu()
        loss = F.cross_entropy(h, y)
        for p in flat:
            p.grad = None
        loss.backward()
        for p in flat:
            be.sgd_step(p.array, p.grad.array, None, lr, 0.0, 0.0, False, 0.0, False)

    return step


def torch_mlp(batch, rng, lr=0.01):
    params = [(torch.tensor(w, device="cuda", requires_grad=True), torch.tensor(b, device="cuda", requires_grad=True))
              for w, b in _init(rng)]
    x = torch.tensor(rng.standard_normal((batch, SIZES[0])).astype(np.float32), device="cuda")
    y = torch.tensor(rng.integers(0, SIZES[-1], batch), device="cuda")
    opt = torch.optim.SGD([p for pair in params for p in pair], lr=lr)

    def step():
        h = x
        for i, (w, b) in enumerate(params):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(params) - 1:
                h = h.relu()
        loss = torch.nn.functional.cross_entropy(h, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


# ---- activations at copy bandwidth ------------------------------------------------------------
ACTIVATIONS = {  # name: (forward args after x, backward reads the forward's output?)
    "sigmoid": ((), True), "tanh": ((), True), "relu": ((), True), "leaky_relu": ((0.01,), False),
    "gelu": ((False,), False), "gelu_tanh": ((True,), False), "softplus": ((1.0, 20.0), False),
}


def _torch_act(name):
    F = torch.nn.functional
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
            "leaky_relu": lambda t: F.leaky_relu(t, 0.01), "gelu": F.gelu,
            "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "softplus": F.softplus}[name]


def activations(n, reps):
    be = get_backend("cuda:0")
    x = cp.random.standard_normal(n, dtype=cp.float32)
    g = cp.random.standard_normal(n, dtype=cp.float32)
    out = cp.empty_like(x)
    copy_ms = cupy_ms(lambda: cp.copyto(out, x), reps)
    nbytes = x.nbytes
    copy_gbs = 2 * nbytes / copy_ms / 1e6
    rows = []
    for name, (args, saves_output) in ACTIVATIONS.items():
        fn = name if name != "gelu_tanh" else "gelu"
        fwd = getattr(be, fn)
        bwd = getattr(be, fn + "_backward")
        y = fwd(x, *args)
        saved = y if saves_output else x
        f_ms = cupy_ms(lambda: fwd(x, *args), reps)
        b_ms = cupy_ms(lambda: bwd(saved, g, *args), reps)
        row = {"op": name, "fwd_ms": f_ms, "bwd_ms": b_ms,
               "fwd_frac_copy_bw": (2 * nbytes / f_ms / 1e6) / copy_gbs,
               "bwd_frac_copy_bw": (3 * nbytes / b_ms / 1e6) / copy_gbs}
        if HAVE_TORCH:
            tx = torch.as_tensor(x, device="cuda").requires_grad_(True)
            tg = torch.as_tensor(g, device="cuda")
            act = _torch_act(name)
            ty = act(tx)
            row["torch_fwd_ms"] = torch_ms(lambda: act(tx.detach()), reps)
            row["torch_bwd_ms"] = torch_ms(lambda: torch.autograd.grad(ty, tx, tg, retain_graph=True), reps)
        rows.append(row)
    return copy_gbs, rows


# ---- matmul -------------------------------------------------------------------------------------
def matmul(n, reps):
    be = get_backend("cuda:0")
    a = cp.random.standard_normal((n, n), dtype=cp.float32)
    b = cp.random.standard_normal((n, n), dtype=cp.float32)
    rows = []
    for tf32 in (False, True):
        gf.cuda.allow_tf32(tf32)
        ms = cupy_ms(lambda: be.matmul(a, b), reps)
        row = {"op": f"matmul f32 {n}^3", "tf32": tf32, "ms": ms, "tflops": 2 * n**3 / ms / 1e9}
        if HAVE_TORCH:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
            row["torch_ms"] = torch_ms(lambda: torch.matmul(ta, tb), reps)
            row["torch_tflops"] = 2 * n**3 / row["torch_ms"] / 1e9
        rows.append(row)
    gf.cuda.allow_tf32(False)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or str(Path(__file__).resolve().parents[1] / "results"))
    ap.add_argument("--quick", action="store_true", help="small sizes, few reps (a smoke run)")
    args = ap.parse_args(argv)
    if not gf.cuda.is_available():
        sys.exit(f"no usable CUDA GPU: {gf.cuda.unavailable_reason()}")
    n_act, n_mm, reps = (2**20, 512, 3) if args.quick else (2**26, 4096, 20)
    rng = np.random.default_rng(0)
    result = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
              "torch": torch.__version__ if HAVE_TORCH else None, "mlp": []}

    print(f"{'MLP 784-512-512-10 step':<28}{'gradflow ms':>12}{'torch ms':>10}")
    for batch in (256, 4096):
        row = {"batch": batch, "ms": cupy_ms(gradflow_mlp(batch, rng), reps)}
        if HAVE_TORCH:
            row["torch_ms"] = torch_ms(torch_mlp(batch, rng), reps)
        result["mlp"].append(row)
        print(f"{'batch ' + str(batch):<28}{row['ms']:>12.3f}{row.get('torch_ms', float('nan')):>10.3f}")

    copy_gbs, result["activations"] = activations(n_act, reps)
    result["copy_GBps"] = copy_gbs
    print(f"\nactivations, {n_act} float32; copy {copy_gbs:.0f} GB/s")
    print(f"{'op':<12}{'fwd ms':>8}{'fwd/copy':>9}{'bwd ms':>8}{'bwd/copy':>9}{'torch f':>9}{'torch b':>9}")
    for r in result["activations"]:
        print(f"{r['op']:<12}{r['fwd_ms']:>8.3f}{r['fwd_frac_copy_bw']:>9.2f}{r['bwd_ms']:>8.3f}"
              f"{r['bwd_frac_copy_bw']:>9.2f}{r.get('torch_fwd_ms', float('nan')):>9.3f}"
              f"{r.get('torch_bwd_ms', float('nan')):>9.3f}")

    result["matmul"] = matmul(n_mm, max(3, reps // 4))
    print(f"\n{'matmul':<20}{'tf32':>5}{'TFLOP/s':>9}{'torch':>8}")
    for r in result["matmul"]:
        print(f"{r['op']:<20}{str(r['tf32']):>5}{r['tflops']:>9.1f}{r.get('torch_tflops', float('nan')):>8.1f}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_bench.json").write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out / 'gpu_bench.json'}")


if __name__ == "__main__":
    main()
