"""reduce: sum/max over all, axis 0, axis 1; logsumexp and softmax along axis 1; cross-entropy
forward (integer labels, per-row losses) on a 4096x4096 float32 matrix.

Sums run on uniform [0, 1) values (no cancellation, so the float32 tolerance is meaningful),
the rest on normal values. Rates are GB/s of bytes read + written.
"""

import numpy as np

from .harness import Case, gbps, on_arrays

SIDE, QUICK_SIDE = 4096, 512


def _lse(x):
    m = x.max(axis=1, keepdims=True)
    return np.log(np.exp(x - m).sum(axis=1)) + m[:, 0]


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _cross_entropy(x, labels):
    return _lse(x) - x[np.arange(len(labels)), labels]


AXES = {"all": (None, None), "axis 0": ((0,), 0), "axis 1": ((1,), 1)}  # label -> (gradflow, numpy/torch)


def _reduction(name, np_fn, torch_fn, label, side):
    axes, axis = AXES[label]

    def inputs():
        return (np.random.default_rng(0).random((side, side), dtype=np.float32),)

    def torch_op(c, x):
        return getattr(x, torch_fn)() if axis is None else getattr(x, torch_fn)(dim=axis)

    impls = {"gradflow": on_arrays(lambda c, x: getattr(c.be, name)(x, axes, False)),
             "numpy": on_arrays(lambda c, x: np_fn(x, axis=axis)),
             "torch": on_arrays(torch_op)}
    out_bytes = 4 * (1 if axis is None else side)
    return Case("reduce", f"{name} {label} {side}^2", inputs,
                lambda x: np_fn(x.astype(np.float64), axis=axis), impls, {"side": side, "axis": axis},
                gbps(4 * side * side + out_bytes))


def _rowwise(side):
    def inputs():
        rng = np.random.default_rng(0)
        return (2 * rng.standard_normal((side, side), dtype=np.float32),)

    def ce_inputs():
        return inputs() + (np.random.default_rng(1).integers(0, side, side),)

    f64 = np.float64
    n = side * side
    return [
        Case("reduce", f"logsumexp axis 1 {side}^2", inputs, lambda x: _lse(x.astype(f64)),
             {"gradflow": on_arrays(lambda c, x: c.be.logsumexp(x, (1,), False)),
              "numpy": on_arrays(lambda c, x: _lse(x)),
              "torch": on_arrays(lambda c, x: c.torch.logsumexp(x, 1))},
             {"side": side, "axis": 1}, gbps(4 * n + 4 * side)),
        Case("reduce", f"softmax axis 1 {side}^2", inputs, lambda x: _softmax(x.astype(f64)),
             {"gradflow": on_arrays(lambda c, x: c.be.softmax(x, 1)),
              "numpy": on_arrays(lambda c, x: _softmax(x)),
              "torch": on_arrays(lambda c, x: c.torch.softmax(x, 1))},
             {"side": side, "axis": 1}, gbps(8 * n)),
        Case("reduce", f"cross_entropy fwd {side}^2", ce_inputs,
             lambda x, labels: _cross_entropy(x.astype(f64), labels),
             {"gradflow": on_arrays(lambda c, x, labels: c.be.cross_entropy(x, labels)[0]),
              "numpy": on_arrays(lambda c, x, labels: _cross_entropy(x, labels)),
              "torch": on_arrays(lambda c, x, labels: c.torch.nn.functional.cross_entropy(
                  x, labels, reduction="none"))},
             {"side": side, "classes": side}, gbps(4 * n + 12 * side)),
    ]


def cases(quick):
    side = QUICK_SIDE if quick else SIDE
    out = []
    for name, np_fn, torch_fn in (("sum", np.sum, "sum"), ("max", np.max, "amax")):
        out += [_reduction(name, np_fn, torch_fn, label, side) for label in AXES]
    return out + _rowwise(side)
