"""mlp: one full training step (forward, cross-entropy, backward, SGD) of a small MLP.

784-512-512-10 ReLU at batch 64 and 256, 64-32-10 sigmoid at batch 32; gradflow
(``nn.functional`` + the backend's fused ``sgd_step``) against torch (``nn.functional`` +
``torch.optim.SGD``) and a hand-written numpy step, which in float64 is also the reference.
A step returns (loss, gradients, updated parameters); all three are checked. Each net is also
a ``gf.jit`` case: the same gradflow step recorded once and replayed, against the same peers
timed again in that case.

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


def gradflow_step(act):
    def make(c, x, labels, *params):
        x, labels, ps = tensors(c, x, labels, params)

        def step():
            loss = forward(gf.nn.functional, act, x, labels, ps)
            for p in ps:
                p.grad = None
            loss.backward()
            with gf.no_grad():
                for p in ps:  # plain SGD: lr, no momentum, dampening, nesterov or weight decay
                    p._be.sgd_step(p.array, p.grad.array, None, LR, 0.0, 0.0, False, 0.0, True)
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
        out.append(Case(
            "mlp", f"{'-'.join(map(str, sizes))} {act} b{batch}",
            lambda sizes=sizes, batch=batch: make_inputs(sizes, batch), reference_step(act),
            {"gradflow": gradflow_step(act), "torch": torch_step(act), "numpy": numpy_step(act)},
            {"sizes": sizes, "activation": act, "batch": batch, "multiply_adds": fwd + bwd},
            gflops(2 * (fwd + bwd))))
        out.append(Case(
            "mlp", f"{'-'.join(map(str, sizes))} {act} b{batch} gf.jit",
            lambda sizes=sizes, batch=batch: make_inputs(sizes, batch), reference_step(act),
            {"gradflow": gradflow_jit_step(act), "torch": torch_step(act),
             "numpy": numpy_step(act)},
            {"sizes": sizes, "activation": act, "batch": batch, "multiply_adds": fwd + bwd,
             "jit": True},
            gflops(2 * (fwd + bwd))))
    return out
