"""Global autograd switches: gradient recording, anomaly detection, and the observer hooks."""

import contextlib

from .. import _C

# The switches, read by every op, live in C (csrc/autograd.cpp) so that apply reads them without
# a lookup: grad_enabled (record ops on the tape), anomaly (remember where each op was recorded;
# check backward for NaN/Inf), profiler (the active gradflow.profiler.Profile, or None), phase
# ("backward" while the engine runs backward functions, else "forward"), grad_observer
# (callable(node, grad) the engine calls for each node's error signal, or None).
state = _C.autograd_state


def is_grad_enabled() -> bool:
    """Whether ops are being recorded for gradients."""
    return state.grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager / decorator that turns gradient recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        self.prev = state.grad_enabled
        state.grad_enabled = self.mode

    def __exit__(self, *exc):
        state.grad_enabled = self.prev
        return False


class no_grad(set_grad_enabled):
    """``with gf.no_grad():`` runs ops without recording them (inference, optimizer updates)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """``with gf.enable_grad():`` records ops even inside no_grad."""

    def __init__(self):
        super().__init__(True)


class detect_anomaly(contextlib.ContextDecorator):
    """Inside, every op remembers the stack where it was recorded, and a NaN or Inf produced by a
    backward function raises RuntimeError naming that op and that stack."""

    def __enter__(self):
        self.prev = state.anomaly
        state.anomaly = True

    def __exit__(self, *exc):
        state.anomaly = self.prev
        return False

