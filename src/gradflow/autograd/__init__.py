"""Reverse-mode automatic differentiation: the tape and gradflow's op protocol
(``gradflow.autograd.function.Function``: forward on backend arrays), the engine (backward,
grad), grad modes, anomaly detection, numerical gradient checks, tensor hooks, PyTorch-style
custom functions (``Function``: forward and backward on Tensors) and ``functional``
(jacobian, hessian, vjp, jvp, hvp)."""

from . import functional
from .custom import Function, FunctionCtx, once_differentiable
from .engine import backward, grad
from .grad_mode import (detect_anomaly, enable_grad, inference_mode, is_grad_enabled,
                        is_inference_mode_enabled, no_grad, set_grad_enabled)
from .gradcheck import gradcheck, gradgradcheck

__all__ = ["Function", "FunctionCtx", "once_differentiable", "functional", "backward", "grad",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled", "detect_anomaly", "gradcheck", "gradgradcheck"]
