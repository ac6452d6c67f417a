"""overhead: the fixed cost of the autograd machinery, on 1-element (0-d) float32 tensors.

* ``add``: one recorded op, ``a + b`` with requires_grad leaves;
* ``chain``: a 16-op chain (mul, add, sigmoid, tanh, four times, each reusing the leaf x) then
  ``.backward()``; the analysis divides its time by 16 for a per-op forward+backward cost;
  once more under ``gf.jit`` (recorded once, then replayed without the op layer).
gradflow against torch (numpy has no autograd). The reference is the chain rule by hand.
"""

import math

import numpy as np

import gradflow as gf

from .harness import Case

CHAIN_OPS = 16


def _chain(x):
    h = x
    for _ in range(CHAIN_OPS // 4):
        h = (h * x + x).sigmoid().tanh()
    return h


def _chain_reference(x):
    """(value, d value / dx) of the chain, in float64 forward-mode arithmetic."""
    x = float(x)
    v, d = x, 1.0
    for _ in range(CHAIN_OPS // 4):
        v, d = v * x + x, d * x + v + 1
        s = 1 / (1 + math.exp(-v))
        v, d = s, d * s * (1 - s)
        t = math.tanh(v)
        v, d = t, d * (1 - t * t)
    return np.float64(v), np.float64(d)


def _add(c, a, b):
    a, b = c.tensor(a, requires_grad=True), c.tensor(b, requires_grad=True)
    return lambda: a + b


def _chain_step(c, x):
    x = c.tensor(x, requires_grad=True)

    def step():
        x.grad = None
        h = _chain(x)
        h.backward()
        return h, x.grad

    return step


def _chain_step_jit(c, x):
    step = gf.jit(_chain_step(c, x))
    for _ in range(3):  # a record from before x.grad exists, one after, a replay
        step()
    return step


def cases(quick):
    def scalars(*values):
        return lambda: tuple(np.array(v, np.float32) for v in values)

    return [
        Case("overhead", "add (1 op, recorded)", scalars(0.5, -1.25),
             lambda a, b: a.astype(np.float64) + b, {"gradflow": _add, "torch": _add}, {"ops": 1}),
        Case("overhead", f"chain fwd+bwd ({CHAIN_OPS} ops)", scalars(0.75),
             _chain_reference, {"gradflow": _chain_step, "torch": _chain_step}, {"ops": CHAIN_OPS}),
        Case("overhead", f"chain fwd+bwd ({CHAIN_OPS} ops) gf.jit", scalars(0.75),
             _chain_reference, {"gradflow": _chain_step_jit, "torch": _chain_step},
             {"ops": CHAIN_OPS, "jit": True}),
    ]


def analyse(rows):
    return {"us_per_op": {f"{r['case']} / {r['contender']}": 1e6 * r["median_s"] / r["params"]["ops"]
                          for r in rows if r["status"] == "ok"}}
