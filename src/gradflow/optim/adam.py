"""Adam and AdamW (decoupled weight decay)."""

from .optimizer import Optimizer


class Adam(Optimizer):
    """PyTorch's Adam rule, one fused in-place kernel per parameter. ``weight_decay`` adds
    wd * p to the gradient (L2); AdamW decays the weights directly instead."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _validate(self, group):
        super()._validate(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"invalid betas: {group['betas']}")
        if group["eps"] < 0 or group["weight_decay"] < 0:
            raise ValueError(f"invalid eps/weight_decay: {group['eps']}, {group['weight_decay']}")

    def _update(self, param, grad, group, state, be):
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = be.xp.zeros(param.shape, param.dtype)
            state["exp_avg_sq"] = be.xp.zeros(param.shape, param.dtype)
        state["step"] += 1
        b1, b2 = group["betas"]
        be.adam_step(param, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                     group["lr"], b1, b2, group["eps"], group["weight_decay"], self.decoupled)


class AdamW(Adam):
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
