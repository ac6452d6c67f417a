"""Adam and AdamW (decoupled weight decay)."""

from .optimizer import Optimizer


class Adam(Optimizer):
    """PyTorch's Adam rule, one fused in-place kernel over all parameters of a group.
    ``weight_decay`` adds wd * p to the gradient (L2); AdamW decays the weights directly
    instead."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"invalid betas: {group['betas']}")
        if group["eps"] < 0 or group["weight_decay"] < 0:
            raise ValueError(f"invalid eps/weight_decay: {group['eps']}, {group['weight_decay']}")

    def _update_many(self, params, grads, states, group, be):
        for param, state in zip(params, states):
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = be.xp.zeros(param.shape, param.dtype)
                state["exp_avg_sq"] = be.xp.zeros(param.shape, param.dtype)
            state["step"] += 1
        if group["amsgrad"]:
            for param, grad, state in zip(params, grads, states):
                self._amsgrad_update(param, grad, group, state, be.xp)
            return
        b1, b2 = group["betas"]
        be.adam_step_multi(params, grads, [s["exp_avg"] for s in states],
                           [s["exp_avg_sq"] for s in states], [s["step"] for s in states],
                           group["lr"], b1, b2, group["eps"], group["weight_decay"], self.decoupled)


    def _amsgrad_update(self, param, grad, group, state, xp):
        """Adam with the running maximum of the second moment (AMSGrad), as array ops."""
        b1, b2 = group["betas"]
        lr, wd, t = group["lr"], group["weight_decay"], state["step"]
        if "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = xp.zeros(param.shape, param.dtype)
        if wd and self.decoupled:
            param *= 1 - lr * wd
        elif wd:
            grad = grad + wd * param
        m, v, vmax = state["exp_avg"], state["exp_avg_sq"], state["max_exp_avg_sq"]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        xp.maximum(vmax, v, out=vmax)
        denom = xp.sqrt(vmax) / ((1 - b2 ** t) ** 0.5) + group["eps"]
        param -= (lr / (1 - b1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (the weights shrink by lr * weight_decay each step)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
