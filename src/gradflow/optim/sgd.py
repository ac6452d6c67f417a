"""Stochastic gradient descent with momentum, Nesterov momentum, weight decay and maximize."""

from .optimizer import Optimizer


class SGD(Optimizer):
    """PyTorch's SGD rule, one fused in-place kernel over all parameters of a group:
    d = g + wd p; buf = momentum buf + (1 - dampening) d (buf = d at the first step);
    d = d + momentum buf (Nesterov) or buf; p -= lr d."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay,
                                      maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        if group["momentum"] < 0:
            raise ValueError(f"invalid momentum: {group['momentum']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']}")

    def _update_many(self, params, grads, states, group, be):
        momentum = group["momentum"]
        bufs, firsts = [], []
        for param, state in zip(params, states):
            buf, first = None, False
            if momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = be.xp.empty(param.shape, param.dtype)
                    first = True
            bufs.append(buf)
            firsts.append(first)
        be.sgd_step_multi(params, grads, bufs, firsts, group["lr"], momentum, group["dampening"],
                          group["nesterov"], group["weight_decay"])
