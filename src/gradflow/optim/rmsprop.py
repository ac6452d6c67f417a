"""RMSprop and Adagrad, as array ops on the backend (numpy or CuPy), PyTorch's update rules."""

from .optimizer import Optimizer


class RMSprop(Optimizer):
    """sq = alpha sq + (1 - alpha) g^2; p -= lr g / (sqrt(sq) + eps), with optional momentum,
    centering (subtract the running mean of g) and weight decay (added to g)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        if group["alpha"] < 0 or group["eps"] < 0 or group["momentum"] < 0 or group["weight_decay"] < 0:
            raise ValueError(f"RMSprop: invalid alpha/eps/momentum/weight_decay in {group}")

    def _update(self, param, grad, group, state, be):
        xp = be.xp
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = xp.zeros(param.shape, param.dtype)
            if group["momentum"] > 0:
                state["momentum_buffer"] = xp.zeros(param.shape, param.dtype)
            if group["centered"]:
                state["grad_avg"] = xp.zeros(param.shape, param.dtype)
        state["step"] += 1
        alpha = group["alpha"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * grad * grad
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= alpha
            ga += (1 - alpha) * grad
            avg = xp.sqrt(sq - ga * ga) + group["eps"]
        else:
            avg = xp.sqrt(sq) + group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += grad / avg
            param -= group["lr"] * buf
        else:
            param -= group["lr"] * grad / avg


class Adagrad(Optimizer):
    """sum += g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        if group["lr_decay"] < 0 or group["weight_decay"] < 0 or group["initial_accumulator_value"] < 0:
            raise ValueError(f"Adagrad: invalid lr_decay/weight_decay/initial_accumulator_value in {group}")

    def _update(self, param, grad, group, state, be):
        xp = be.xp
        if "sum" not in state:
            state["step"] = 0
            state["sum"] = xp.full(param.shape, group["initial_accumulator_value"], param.dtype)
        state["step"] += 1
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        param -= clr * grad / (xp.sqrt(state["sum"]) + group["eps"])
