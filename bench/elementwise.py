"""elementwise: activations forward and backward, add/mul (same shape and row broadcast), copy.

gradflow runs its backend kernels (``be.sigmoid``, ``be.sigmoid_backward(y, g)``, ...); torch
its forward functions and ``torch.ops.aten.*_backward``; numpy the plain formulas, which also
give the float64 reference (numpy has no erf, so exact GELU has no numpy contender and its
reference uses math.erf). Rates are GB/s of bytes read + written. The copy case is a baseline
(no ratios): it measures the device's copy bandwidth (best contender; ``np.copyto`` on the CPU)
and each row reports its fraction of it.
"""

import math

import numpy as np

from .harness import Case, gbps, on_arrays

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
SLOPE, BETA, THRESHOLD = 0.01, 1.0, 20.0
_erf = np.vectorize(math.erf, otypes=[np.float64])  # reference only: slow


def _phi(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def _gelu_tanh_backward(x, g):
    t = np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3))
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x))


# name -> (gradflow kernel, extra args, backward reads "y" (output) or "x" (input),
#          numpy forward, numpy backward(saved, g), torch forward, torch backward(aten, g, saved))
ACTIVATIONS = {
    "sigmoid": ("sigmoid", (), "y", lambda x: 1 / (1 + np.exp(-x)), lambda y, g: g * y * (1 - y),
                lambda t, x: t.sigmoid(x), lambda a, g, y: a.sigmoid_backward(g, y)),
    "tanh": ("tanh", (), "y", np.tanh, lambda y, g: g * (1 - y * y),
             lambda t, x: t.tanh(x), lambda a, g, y: a.tanh_backward(g, y)),
    "relu": ("relu", (), "y", lambda x: np.maximum(x, 0), lambda y, g: g * (y > 0),
             lambda t, x: t.relu(x), lambda a, g, y: a.threshold_backward(g, y, 0)),
    "leaky_relu": ("leaky_relu", (SLOPE,), "x", lambda x: np.maximum(x, SLOPE * x),
                   lambda x, g: np.where(x > 0, g, SLOPE * g),
                   lambda t, x: t.nn.functional.leaky_relu(x, SLOPE),
                   lambda a, g, x: a.leaky_relu_backward(g, x, SLOPE, False)),
    "gelu": ("gelu", (False,), "x", None, None,
             lambda t, x: t.nn.functional.gelu(x), lambda a, g, x: a.gelu_backward(g, x)),
    "gelu_tanh": ("gelu", (True,), "x", _gelu_tanh, _gelu_tanh_backward,
                  lambda t, x: t.nn.functional.gelu(x, approximate="tanh"),
                  lambda a, g, x: a.gelu_backward(g, x, approximate="tanh")),
    "softplus": ("softplus", (BETA, THRESHOLD), "x", lambda x: np.where(x > THRESHOLD, x, np.logaddexp(0, x)),
                 lambda x, g: np.where(x > THRESHOLD, g, g / (1 + np.exp(-x))),
                 lambda t, x: t.nn.functional.softplus(x, BETA, THRESHOLD),
                 lambda a, g, x: a.softplus_backward(g, x, BETA, THRESHOLD)),
}
REFERENCE = {"gelu": (lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
                      lambda x, g: g * (0.5 * (1 + _erf(x / math.sqrt(2))) + x * _phi(x)))}

BINARY = {"add": (np.add, "add"), "mul": (np.multiply, "mul")}

SIZES = ((1 << 16, ("cpu", "cuda")), (1 << 24, ("cpu",)), (1 << 26, ("cuda",)))
QUICK_SIZES = ((1 << 16, ("cpu", "cuda")),)
COPY_SIZES = ((1 << 24, ("cpu",)), (1 << 26, ("cuda",)))


def _shape(n):
    rows = 1 << (n.bit_length() - 1) // 2
    return rows, n // rows


def _activation_cases(name, n, devices):
    kernel, args, saved, np_f, np_b, t_f, t_b = ACTIVATIONS[name]
    ref_f, ref_b = REFERENCE.get(name, (np_f, np_b))
    shape = _shape(n)

    def fwd_inputs():
        return (3 * np.random.default_rng(0).standard_normal(shape, dtype=np.float32),)

    def bwd_inputs():
        (x,) = fwd_inputs()
        g = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
        return (np_f(x).astype(np.float32) if saved == "y" else x), g

    fwd = {"gradflow": on_arrays(lambda c, x: getattr(c.be, kernel)(x, *args)),
           "torch": on_arrays(lambda c, x: t_f(c.torch, x))}
    bwd = {"gradflow": on_arrays(lambda c, s, g: getattr(c.be, kernel + "_backward")(s, g, *args)),
           "torch": on_arrays(lambda c, s, g: t_b(c.torch.ops.aten, g, s))}
    if np_f:
        fwd["numpy"] = on_arrays(lambda c, x: np_f(x))
        bwd["numpy"] = on_arrays(lambda c, s, g: np_b(s, g))
    params = {"n": n, "shape": shape}
    return [Case("elementwise", f"{name} fwd {_size(n)}", fwd_inputs,
                 lambda x: ref_f(x.astype(np.float64)), fwd, params, gbps(8 * n), devices=devices),
            Case("elementwise", f"{name} bwd {_size(n)}", bwd_inputs,
                 lambda s, g: ref_b(s.astype(np.float64), g.astype(np.float64)), bwd, params,
                 gbps(12 * n), devices=devices)]


def _binary_case(name, n, devices, row_broadcast):
    np_op, kernel = BINARY[name]
    shape = _shape(n)

    def inputs():
        rng = np.random.default_rng(0)
        return (rng.standard_normal(shape, dtype=np.float32),
                rng.standard_normal((1, shape[1]) if row_broadcast else shape, dtype=np.float32))

    impls = {"gradflow": on_arrays(lambda c, a, b: getattr(c.be, kernel)(a, b)),
             "numpy": on_arrays(lambda c, a, b: np_op(a, b)),
             "torch": on_arrays(lambda c, a, b: getattr(c.torch, kernel)(a, b))}
    label = f"{name} {shape[0]}x{shape[1]} {'+ row' if row_broadcast else 'same'}"
    nbytes = 4 * (2 * n + (shape[1] if row_broadcast else n))
    return Case("elementwise", label, inputs,
                lambda a, b: np_op(a.astype(np.float64), b.astype(np.float64)), impls,
                {"n": n, "shape": shape, "row_broadcast": row_broadcast}, gbps(nbytes), devices=devices)


def _copy_case(n, devices):
    def factory(copy):
        def make(c, src):
            src, dst = c.asarray(src), c.asarray(np.zeros(n, np.float32))
            return lambda: copy(c, dst, src)
        return make

    impls = {"gradflow": factory(lambda c, dst, src: c.be.xp.copyto(dst, src) or dst),
             "numpy": factory(lambda c, dst, src: np.copyto(dst, src) or dst),
             "torch": factory(lambda c, dst, src: dst.copy_(src))}
    return Case("elementwise", f"copy {_size(n)}",
                lambda: (np.random.default_rng(0).standard_normal(n, dtype=np.float32),),
                lambda src: src, impls, {"n": n, "baseline": True}, gbps(8 * n), devices=devices)


def _size(n):
    return f"2^{n.bit_length() - 1}"


def cases(quick):
    out = [_copy_case(n, devices) for n, devices in COPY_SIZES]
    for n, devices in QUICK_SIZES if quick else SIZES:
        for name in ACTIVATIONS:
            out += _activation_cases(name, n, devices)
        for name in BINARY:
            out += [_binary_case(name, n, devices, rb) for rb in (False, True)]
    return out


def analyse(rows):
    """Adds fraction_of_copy_bw to each row; returns the copy bandwidth per device."""
    copy_bw = {}
    for r in rows:
        if r["status"] == "ok" and r["params"].get("baseline"):
            best = copy_bw.get(r["device"], {}).get("GBps", 0)
            if r["metric"]["value"] > best:
                copy_bw[r["device"]] = {"GBps": r["metric"]["value"], "by": r["contender"], "case": r["case"]}
    for r in rows:
        bw = copy_bw.get(r["device"])
        if r["status"] == "ok" and bw:
            r["fraction_of_copy_bw"] = r["metric"]["value"] / bw["GBps"]
    return {"copy_bw_definition": "best read+write GB/s of any contender copying a float32 array "
                                  "(2^24 elements on the CPU, 2^26 on a GPU) on the same device",
            "copy_bw": copy_bw}
