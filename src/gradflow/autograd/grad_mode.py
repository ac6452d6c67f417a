"""Autograd switches: gradient recording, anomaly detection, and the observer hooks.

Grad mode is per thread, as in PyTorch: ``no_grad`` / ``enable_grad`` / ``set_grad_enabled`` /
``inference_mode`` in one thread (and a backward pass running in one) never change what another
thread records, and a new thread starts with recording on. Anomaly detection, the profiler and
the gradient observer are process-wide (PyTorch's anomaly mode is global too).
"""

import functools
import inspect
import threading

from .. import _C

# The switches, read by every op, live in C (csrc/autograd.cpp) so that apply reads them without
# a lookup: grad_enabled (record ops on the tape; per thread), anomaly (remember where each op
# was recorded; check backward for NaN/Inf), profiler (the active gradflow.profiler.Profile, or
# None), phase ("backward" while the engine runs backward functions in this thread, else
# "forward"), grad_observer (callable(node, grad) the engine calls for each node's error signal,
# or None).
state = _C.autograd_state


def is_grad_enabled() -> bool:
    """Whether ops run in this thread are recorded for backward."""
    return state.grad_enabled


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside ``inference_mode()`` (here: recording is off)."""
    return _inference.depth > 0


class _GradMode:
    """A context manager that sets this thread's recording switch to ``self.mode`` and restores
    it on exit; as a decorator, it runs every call of the function (or each step of a generator)
    that way."""

    mode: bool

    def __enter__(self):
        self.prev = state.grad_enabled
        state.grad_enabled = self.mode

    def __exit__(self, *exc):
        state.grad_enabled = self.prev
        return False

    def clone(self):
        """A fresh manager for one use (a decorated function's calls may nest or overlap)."""
        return _Mode(self.mode)

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args, **kwargs):
                it = fn(*args, **kwargs)
                try:
                    with self.clone():
                        sent = it.send(None)
                    while True:
                        try:
                            value = yield sent
                        except GeneratorExit:
                            with self.clone():
                                it.close()
                            raise
                        except BaseException as e:  # thrown in: passed on under the mode
                            with self.clone():
                                sent = it.throw(e)
                        else:
                            with self.clone():
                                sent = it.send(value)
                except StopIteration as stop:
                    return stop.value
            return gen

        @functools.wraps(fn)
        def call(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return call


class _Mode(_GradMode):
    def __init__(self, mode):
        self.mode = mode


class no_grad(_GradMode):
    """``with gf.no_grad():`` (or ``@gf.no_grad()``) runs ops without recording them
    (inference, optimizer updates), in this thread."""

    mode = False


class enable_grad(_GradMode):
    """``with gf.enable_grad():`` (or ``@gf.enable_grad()``) records ops again inside a
    ``no_grad`` block, in this thread."""

    mode = True


class set_grad_enabled(_GradMode):
    """``gf.set_grad_enabled(False)`` turns recording off in this thread, as a plain call (it
    takes effect at once), or for a block (``with``) or a function (decorator), restoring the
    previous setting afterwards."""

    def __init__(self, mode: bool):
        self.prev = state.grad_enabled
        self.mode = bool(mode)
        state.grad_enabled = self.mode  # a plain call takes effect here

    def __enter__(self):
        pass  # (set by the constructor already; __exit__ restores what was before it)

    def __call__(self, fn):
        state.grad_enabled = self.prev  # as a decorator, only the calls run in the mode
        return super().__call__(fn)


class _InferenceDepth(threading.local):
    depth = 0  # this thread's nesting of inference_mode() blocks


_inference = _InferenceDepth()


class inference_mode(_GradMode):
    """``with gf.inference_mode():`` (or ``@gf.inference_mode()``): PyTorch's inference mode.
    Here it is ``no_grad`` (nothing is recorded, in this thread); tensors made inside are
    ordinary tensors. ``inference_mode(False)`` leaves recording as it is."""

    def __init__(self, mode: bool = True):
        self.enabled = bool(mode)

    def __enter__(self):
        self.prev = state.grad_enabled
        if self.enabled:
            state.grad_enabled = False
            _inference.depth += 1

    def __exit__(self, *exc):
        if self.enabled:
            _inference.depth -= 1
        state.grad_enabled = self.prev
        return False

    def clone(self):
        return type(self)(self.enabled)


class detect_anomaly:
    """Inside, every op remembers the stack where it was recorded, and a NaN or Inf produced by a
    backward function raises RuntimeError naming that op and that stack. Process-wide, as
    PyTorch's anomaly mode."""

    def __enter__(self):
        self.prev = state.anomaly
        state.anomaly = True

    def __exit__(self, *exc):
        state.anomaly = self.prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with detect_anomaly():
                return fn(*args, **kwargs)
        return call
