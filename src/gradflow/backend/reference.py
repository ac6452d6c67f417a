"""The backend interface written in plain numpy: the reference every backend is tested against.

Every backend (``cpu``: the C++ kernels; ``cuda``: CuPy kernels) exposes these functions with
the same signatures and semantics (the binary ops take an optional third argument, ``out``).
Arrays in, arrays out; nothing here records gradients.
The formulas are the straightforward textbook ones (computed stably), so that a fast kernel
that disagrees with them is wrong. The CPU backend also falls back to these functions for
dtypes its kernels do not cover (integers, bools).
"""

import numpy as np

xp = np


# ---- activations and elementwise math (forward, and backward from what forward saved) ---------
def sigmoid(x):
    """1 / (1 + exp(-x))."""
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r).astype(x.dtype, copy=False)


def sigmoid_backward(y, g):
    """g * y (1 - y), from the output y."""
    return g * y * (1 - y)


def tanh(x):
    """tanh(x)."""
    return np.tanh(x)


def tanh_backward(y, g):
    """g * (1 - y^2), from the output y."""
    return g * (1 - y * y)


def relu(x):
    """max(0, x)."""
    return np.where(x < 0, np.zeros((), x.dtype), x)


def relu_backward(y, g):
    """g where the output y > 0, else 0."""
    return np.where(y > 0, g, np.zeros((), g.dtype))


def leaky_relu(x, negative_slope):
    """x, or negative_slope * x where x <= 0."""
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(x, g, negative_slope):
    """g, or g * negative_slope where x <= 0."""
    return np.where(x > 0, g, g * g.dtype.type(negative_slope))


def _erf(x):
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x)


def gelu(x, approximate):
    """x Phi(x), or the tanh approximation."""
    x64 = x.astype(np.float64)
    if approximate:
        y = 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64**3)))
    else:
        y = 0.5 * x64 * (1 + _erf(x64 / np.sqrt(2)))
    return y.astype(x.dtype)


def gelu_backward(x, g, approximate):
    """g * gelu'(x)."""
    x64 = x.astype(np.float64)
    if approximate:
        c = np.sqrt(2 / np.pi)
        t = np.tanh(c * (x64 + 0.044715 * x64**3))
        d = 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * c * (1 + 3 * 0.044715 * x64**2)
    else:
        d = 0.5 * (1 + _erf(x64 / np.sqrt(2))) + x64 * np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
    return (g * d).astype(x.dtype)


def softplus(x, beta, threshold):
    """log(1 + exp(beta x)) / beta (x above the threshold)."""
    z = beta * x.astype(np.float64)
    sp = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    return np.where(z > threshold, x, sp / beta).astype(x.dtype)


def softplus_backward(x, g, beta, threshold):
    """g * sigmoid(beta x) (g above the threshold)."""
    z = beta * x.astype(np.float64)
    return np.where(z > threshold, g, g * sigmoid(z)).astype(x.dtype)


def exp(x):
    """e^x."""
    return np.exp(x)


def exp_backward(y, g):
    """g * y, from the output y."""
    return g * y


def log(x):
    """log x."""
    return np.log(x)


def log_backward(x, g):
    """g / x."""
    return g / x


def sqrt(x):
    """sqrt(x)."""
    return np.sqrt(x)


def sqrt_backward(y, g):
    """g / (2 y), from the output y."""
    return g / (2 * y)


def abs(x):  # noqa: A001 - the interface name
    """|x|."""
    return np.abs(x)


def abs_backward(x, g):
    """g * sign(x)."""
    return g * np.sign(x)


def neg(x):
    """-x."""
    return np.negative(x)


def pow_scalar(x, p):
    """x ** p for a number p."""
    return np.power(x, x.dtype.type(p)) if x.dtype.kind == "f" else np.power(x, p)


def pow_scalar_backward(x, g, p):
    """g * p x^(p-1) (0 where p == 0)."""
    if p == 0:
        return np.zeros_like(g)
    return g * (p * np.power(x, x.dtype.type(p - 1)))


# ---- binary, with numpy broadcasting -------------------------------------------------------------
add, sub, mul, div, pow = np.add, np.subtract, np.multiply, np.true_divide, np.power
maximum, minimum = np.maximum, np.minimum
eq, ne, lt, le, gt, ge = np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal


def where(cond, a, b):
    """a where cond, else b."""
    return np.where(cond, a, b)


# ---- reductions ----------------------------------------------------------------------------------
def sum(x, axes, keepdims):  # noqa: A001
    """The sum over axes."""
    return np.sum(x, axis=axes, keepdims=keepdims)


def mean(x, axes, keepdims):
    """The mean over axes."""
    return np.mean(x, axis=axes, keepdims=keepdims)


def max(x, axes, keepdims):  # noqa: A001
    """The maximum over axes."""
    return np.max(x, axis=axes, keepdims=keepdims)


def min(x, axes, keepdims):  # noqa: A001
    """The minimum over axes."""
    return np.min(x, axis=axes, keepdims=keepdims)


def argmax(x, axis, keepdims):
    """The index of the maximum along axis (of the flattened array when None)."""
    return np.argmax(x, axis=axis, keepdims=keepdims)


def logsumexp(x, axes, keepdims):
    """log(sum(exp(x))) over axes, shifted by the maximum."""
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, np.zeros((), x.dtype))
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axes)


def softmax(x, axis):
    """exp(x) / sum(exp(x)) along axis."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis):
    """x - logsumexp(x) along axis."""
    return x - logsumexp(x, (axis,), True)


def softmax_backward(y, g, axis):
    """y (g - sum(g y)) along axis, from the output y."""
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


def log_softmax_backward(y, g, axis):
    """g - exp(y) sum(g) along axis, from the output y."""
    return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)


def cross_entropy(logits, labels):
    """(per-row loss logsumexp(z) - z[label], the logsumexp) of logits (N, C) and labels (N,)."""
    n, c = logits.shape
    if n and (labels.min() < 0 or labels.max() >= c):
        bad = labels[(labels < 0) | (labels >= c)][0]
        raise IndexError(f"cross_entropy: label {bad} is out of range for {c} classes")
    lse = logsumexp(logits, (1,), False)
    return lse - logits[np.arange(n), labels], lse


def cross_entropy_backward(logits, labels, lse, g):
    """(softmax(z) - onehot(label)) * g per row."""
    d = np.exp(logits - lse[:, None])
    d[np.arange(len(labels)), labels] -= 1
    return d * g[:, None]


# ---- matmul and optimizer updates ----------------------------------------------------------------
def matmul(a, b, trans_a=False, trans_b=False, bias=None):
    """op(a) @ op(b) (+ bias), op a transpose of the last two axes where the flag is set."""
    a = np.swapaxes(a, -1, -2) if trans_a else a
    b = np.swapaxes(b, -1, -2) if trans_b else b
    out = np.matmul(a, b)
    return out + bias if bias is not None else out


def linear_relu(x, w, bias=None):
    """relu(x @ w^T (+ bias)): a linear layer followed by a ReLU."""
    return relu(matmul(x, w, False, True, bias))


def relu_backward_sum(y, g):
    """(relu_backward(y, g), its sum over all but the last axis): the gradients of a ReLU's
    input (y its output) and of the bias before it."""
    gx = relu_backward(y, g)
    return gx, gx.sum(axis=tuple(range(gx.ndim - 1)))


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first_step):
    """One SGD update of param in place (momentum buffer buf, PyTorch's rule)."""
    d = grad + weight_decay * param if weight_decay else grad.copy()
    if momentum:
        if first_step:
            buf[...] = d
        else:
            buf *= momentum
            buf += (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    param -= lr * d


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam/AdamW update of param in place (PyTorch's rule)."""
    if decoupled:
        param *= 1 - lr * weight_decay
    elif weight_decay:
        grad = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    bc1, bc2 = 1 - beta1**step, 1 - beta2**step
    param -= (lr / bc1) * exp_avg / (np.sqrt(exp_avg_sq) / np.sqrt(bc2) + eps)


def sgd_step_multi(params, grads, bufs, first_steps, lr, momentum, dampening, nesterov, weight_decay):
    """sgd_step on each parameter of the lists (first_steps: per parameter)."""
    for p, g, b, first in zip(params, grads, bufs, first_steps, strict=True):
        sgd_step(p, g, b, lr, momentum, dampening, nesterov, weight_decay, first)


def adam_step_multi(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay,
                    decoupled):
    """adam_step on each parameter of the lists (steps: per parameter)."""
    for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True):
        adam_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled)


# ---- scatter (the gradient of indexing) -----------------------------------------------------------
def index_add(shape, dtype, index, values):
    """zeros(shape) with ``values`` added at ``index``; repeated indices accumulate."""
    out = np.zeros(shape, dtype)
    np.add.at(out, index, values)
    return out


def scalar(value, dtype):
    """A Python number as a 0-d array of ``dtype``, ready to broadcast against arrays."""
    return np.asarray(value, dtype=dtype)


def dropout_mask(shape, p, dtype, seed):
    """0 with probability p, else 1 / (1 - p), per element: element i keeps its value when
    the splitmix64 hash of (seed, i + 1), as a 53-bit fraction, is >= p (the CUDA kernel's
    formula, so both give the same mask for the same seed)."""
    i = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    keep = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 >= p
    return np.where(keep, dtype.type(1.0 / (1.0 - p)), dtype.type(0)).reshape(shape)


# ---- array methods, as functions (a GPU backend runs them on its own device) -----------------------
def reshape(a, shape):
    """``a`` with shape ``shape`` (a view where possible)."""
    return a.reshape(shape)


def astype(a, dtype):
    """A copy of ``a`` converted to ``dtype``."""
    return a.astype(dtype)


def copy(a, order="C"):
    """A copy of ``a`` in memory order ``order`` ("C", "F", "A" or "K")."""
    return a.copy(order)


def getitem(a, index):
    """``a[index]`` (a view for basic indexing)."""
    return a[index]


def setitem(a, index, value):
    """Writes ``value`` into ``a[index]``, in place."""
    a[index] = value


def to_numpy(a):
    """A host (numpy) array with the values of a backend array."""
    return np.asarray(a)


def to_device_array(a):
    """An array of this backend holding the values of a numpy or other backend's array."""
    return np.asarray(a)
