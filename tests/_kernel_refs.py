"""numpy float64 references and comparison helpers shared by the C++ kernel tests
(test_kernels_unary.py, test_kernels_matmul.py, test_kernels_optim.py).

A float32 kernel is compared with the same formula evaluated in float64 on the same (float32)
inputs and then rounded to float32; a float64 kernel with the float64 formula."""
import math

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 2**-23
DTYPES = [np.float32, np.float64]
SQRT1_2 = 0.70710678118654752440
SQRT2_PI = 0.79788456080286535588


def assert_close(got, want, dtype, ulps=8, atol=0.0, rtol64=1e-12, atol64=None):
    """float32: within `ulps` float32 ulps (relative) plus `atol`; float64: within rtol64
    relative plus a tiny absolute slack (atol64, default 1e-300 scaled by nothing)."""
    want = np.asarray(want)
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(got, want.astype(np.float32), rtol=ulps * EPS32, atol=atol)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol64, atol=1e-300 if atol64 is None else atol64)


def f64(a):
    return np.asarray(a, dtype=np.float64)


# ---- activations (float64, written from the definitions, numerically stable) -----------------
def sigmoid(x):
    x = f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_backward(y, g):
    y, g = f64(y), f64(g)
    return g * y * (1.0 - y)


def tanh_backward(y, g):
    y, g = f64(y), f64(g)
    return g * (1.0 - y * y)


def relu(x):
    x = f64(x)
    return np.where(x < 0, 0.0, x)  # NaN propagates


def relu_backward(y, g):
    return np.where(f64(y) > 0, f64(g), 0.0)


def leaky_relu(x, slope):
    x = f64(x)
    return np.where(x > 0, x, x * slope)


def leaky_relu_backward(x, g, slope):
    return np.where(f64(x) > 0, f64(g), f64(g) * slope)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x, approximate=False):
    x = f64(x)
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(SQRT2_PI * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x * SQRT1_2))


def gelu_backward(x, g, approximate=False):
    x, g = f64(x), f64(g)
    if approximate:
        t = np.tanh(SQRT2_PI * (x + 0.044715 * x ** 3))
        du = SQRT2_PI * (1.0 + 3 * 0.044715 * x * x)
        return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
    cdf = 0.5 * (1.0 + _erf(x * SQRT1_2))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return g * (cdf + x * pdf)


def softplus(x, beta=1.0, threshold=20.0):
    x = f64(x)
    z = beta * x
    sp = (np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))) / beta
    return np.where(z > threshold, x, sp)


def softplus_backward(x, g, beta=1.0, threshold=20.0):
    x, g = f64(x), f64(g)
    z = beta * x
    return np.where(z > threshold, g, g * sigmoid(z))


def pow_scalar(x, p):
    return np.power(f64(x), p)


def pow_scalar_backward(x, g, p):
    x, g = f64(x), f64(g)
    if p == 0:
        return np.zeros_like(x)
    if p == 1:
        return g
    return g * p * np.power(x, p - 1)


def abs_backward(x, g):
    return f64(g) * np.sign(f64(x))


# ---- matmul ------------------------------------------------------------------------------------
def matmul(a, b, trans_a=False, trans_b=False, bias=None):
    a, b = f64(a), f64(b)
    if trans_a:
        a = np.swapaxes(a, -1, -2)
    if trans_b:
        b = np.swapaxes(b, -1, -2)
    out = np.matmul(a, b)
    if bias is not None:
        out = out + f64(bias)
    return out


# ---- optimizers (PyTorch's rules, transcribed; float64, state updated in place) ---------------
def sgd_step(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first_step):
    d = g + weight_decay * p
    if momentum != 0:
        if first_step:
            buf[...] = d
        else:
            buf[...] = momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf.copy()
    p -= lr * d


def adam_step(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    if decoupled:
        p *= 1 - lr * weight_decay
    else:
        g = g + weight_decay * p
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    p -= lr / bc1 * m / (np.sqrt(v) / math.sqrt(bc2) + eps)


# ---- layouts -----------------------------------------------------------------------------------
def layouts(base):
    """(name, view) pairs of a 2-D float array: the same values in different memory layouts
    (each view is a fresh array or a view of one, never sharing memory with `base`)."""
    a = np.array(base)
    out = [("contig", a), ("transposed", np.array(a.T).T)]
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    wide[:, ::2] = a
    out.append(("col_step2", wide[:, ::2]))
    tall = np.zeros((2 * a.shape[0], a.shape[1]), a.dtype)
    tall[::2] = a
    out.append(("row_step2", tall[::2]))
    out.append(("reversed_cols", np.array(a[:, ::-1])[:, ::-1]))
    out.append(("fortran", np.asfortranarray(a)))
    return out
