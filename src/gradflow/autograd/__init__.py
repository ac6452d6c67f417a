"""Reverse-mode automatic differentiation: the tape (Function), the engine (backward, grad),
grad modes, anomaly detection and numerical gradient checks."""

from .engine import backward, grad
from .function import Function
from .grad_mode import (detect_anomaly, enable_grad, inference_mode, is_grad_enabled,
                        is_inference_mode_enabled, no_grad, set_grad_enabled)
from .gradcheck import gradcheck, gradgradcheck

__all__ = ["Function", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "inference_mode", "is_inference_mode_enabled", "detect_anomaly", "gradcheck", "gradgradcheck"]
