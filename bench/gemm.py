"""gemm: C = A @ B, square n³ (float32 and float64) and the MLP's shapes (float32).

gradflow runs its backend kernel (``gradflow._C.matmul`` on the CPU). Peak is *measured*: the
best GFLOP/s of any contender on the large square GEMMs (n >= 1024) of the same dtype and
device in this run; every row reports its fraction of that peak.
"""

import numpy as np

from .harness import Case, gflops, on_arrays

SIZES = (64, 128, 256, 512, 1024, 2048)
QUICK_SIZES = (64, 128)
PEAK_MIN_N = 1024
MLP_SHAPES = ((64, 784, 512), (256, 512, 512), (256, 512, 10))  # (m, k, n)

IMPLS = {
    "gradflow": on_arrays(lambda c, a, b: c.be.matmul(a, b)),
    "numpy": on_arrays(lambda c, a, b: np.matmul(a, b)),
    "torch": on_arrays(lambda c, a, b: c.torch.matmul(a, b)),
}


def _case(m, k, n, dtype, label):
    def inputs():
        rng = np.random.default_rng(0)
        return (rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype))

    return Case("gemm", label, inputs, lambda a, b: a.astype(np.float64) @ b.astype(np.float64),
                IMPLS, params={"m": m, "k": k, "n": n}, metric=gflops(2 * m * n * k), dtype=dtype,
                budget_scale=0.5 if m * n * k >= 1024**3 else 1.0)


def cases(quick):
    out = []
    for dtype, prefix in (("float32", "sgemm"), ("float64", "dgemm")):
        out += [_case(n, n, n, dtype, f"{prefix} {n}^3") for n in (QUICK_SIZES if quick else SIZES)]
    out += [_case(m, k, n, "float32", f"sgemm {m}x{k}.{k}x{n}") for m, k, n in MLP_SHAPES]
    return out


def analyse(rows):
    """Adds fraction_of_peak to each row; returns the peaks per (dtype, device)."""
    peaks = {}
    for r in rows:
        p = r["params"]
        if r["status"] == "ok" and p["m"] == p["n"] == p["k"] >= PEAK_MIN_N:
            key = f"{r['dtype']}-{r['device']}"
            if r["metric"]["value"] > peaks.get(key, {}).get("gflops", 0):
                peaks[key] = {"gflops": r["metric"]["value"], "by": r["contender"], "case": r["case"]}
    for r in rows:
        peak = peaks.get(f"{r['dtype']}-{r['device']}")
        if r["status"] == "ok" and peak:
            r["fraction_of_peak"] = r["metric"]["value"] / peak["gflops"]
    return {"peak_definition": f"best GFLOP/s of any contender on square GEMMs n >= {PEAK_MIN_N} "
                               "of the same dtype and device in this run",
            "peak": peaks}
