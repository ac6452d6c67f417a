"""Function: the base of every differentiable op, and the node it leaves on the tape.

An op is a subclass with two static methods:

* ``forward(ctx, *arrays, **params) -> array`` computes the value on backend arrays
  (``ctx.be`` is the backend module) and declares what backward needs with
  ``ctx.save_inputs(i, ...)`` and/or ``ctx.save_output()``;
* ``backward(ctx, grad) -> tuple`` takes the output's gradient as a Tensor and returns one
  gradient (Tensor or None) per input, written with Tensor ops, so that backward is itself
  differentiable (``create_graph=True``). Gradients may have the broadcast shape: the engine
  reduces them to each input's shape, in one place.

``Op.apply(*tensors, **params)`` runs forward and, when recording, keeps the instance (the
"ctx") as the output's ``grad_fn``: the tape node. The node holds what backward needs and the
edges to its inputs' producers, never the inputs' values unless asked to.
"""

import traceback

from .. import _C
from .. import backend as _backend
from . import lowp as _lowp  # noqa: F401  (registers the bfloat16 forward with apply)


class Function:
    """The base of gradflow's own ops: static ``forward(ctx, *arrays, **params)`` on backend
    arrays and ``backward(ctx, grad)`` on Tensors (see the module docstring). PyTorch-style
    custom functions on Tensors subclass ``gf.autograd.Function`` instead."""

    # What apply sets on every node (be; for a recorded one also its edges, input metadata and
    # sequence number), as slots: cheaper to set than instance-dict entries. apply sets _next
    # to () on a node it does not record.
    __slots__ = ("be", "_next", "_in_meta", "_seq", "__dict__", "__weakref__")

    # Subclasses that only produce non-differentiable outputs (comparisons, argmax) set False.
    differentiable = True
    # True for the one op whose output lives on another device (ctx.dst) than its inputs.
    moves_device = False
    # Ops whose output may share memory with their first input (reshape, transpose, basic
    # indexing) set this; forward may set ctx.view = False when it had to copy.
    is_view = False
    view = True
    # Ops that only move data or change its dtype (casts, device moves) set this: they get
    # bfloat16 arrays as they are, where other ops compute on them in float32 (autograd/lowp.py).
    lowp_native = False
    # Per-node state, as class-level defaults so that recording an op sets only what differs.
    _save_idx = ()  # set by save_inputs() (Mul sets it directly), or on the class when fixed
    _save_out = False  # set by save_output(), or likewise on the class
    _saved = ()
    _saved_versions = ()
    _out_data = None
    _released = False  # set by the engine when backward frees the saved values

    # ---- what forward declares ------------------------------------------------------------
    def save_inputs(self, *indices):
        """In forward: keep inputs number ``indices`` for backward (read as saved_tensors)."""
        self._save_idx = indices

    def save_output(self):
        """In forward: keep the output for backward (after the saved inputs)."""
        self._save_out = True

    # ---- the tape node ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The op's name (its class name)."""
        return type(self).__name__

    @property
    def needs_input_grad(self):
        """Per input, whether its gradient is wanted (empty when the op is not recorded). Known
        in forward already, so an op can save only what the wanted gradients read."""
        return [e is not None for e in self._next]

    @property
    def next_functions(self):
        """Per input: its producer node, the leaf Tensor itself, or None (no grad)."""
        return self._next

    def _raise_released(self):
        raise RuntimeError(
            f"{self.name}: trying to backward through the graph a second time (or to use "
            "saved tensors after they were freed). Saved values are freed by backward(); "
            "pass retain_graph=True to the first backward() if you need to backward twice.")

    def _raise_modified(self, t, version):
        raise RuntimeError(
            f"one of the tensors needed by {self.name} for gradient computation has been "
            f"modified by an in-place operation: a tensor of shape {t.shape} is at version "
            f"{t._vbox[0]}, expected {version}.")

    def _raise_output_modified(self):
        raise RuntimeError(
            f"the output of {self.name}, needed for its gradient computation, has been "
            f"modified by an in-place operation (version {self._out_vbox[0]}, expected "
            f"{self._out_version}).")

    # What backward reads, checked: each raises (the _raise_* messages above) if backward has
    # freed the saved values or an in-place op has changed them since forward. In C, as they run
    # for nearly every node of every backward.
    # saved_input(i): the saved input number i (as passed to save_inputs).
    saved_input = _C.saved_input_method
    saved_tensors = property(_C.saved_tensors, doc="The Tensors forward saved, inputs first, then "
                             "the output (rebuilt from its saved array; under create_graph, "
                             "wired back to this node).")

    # Op.apply(*tensors, **params): checks that the inputs share a device; makes the node (an
    # instance of the op class, the "ctx") and, when recording, its edges and input metadata;
    # runs forward(ctx, *arrays, **params); wraps the result in a Tensor whose grad_fn is the
    # node; then keeps what forward declared for backward, with the versions it had. Written in
    # C (csrc/autograd.cpp) because it runs on every op.
    apply = classmethod(_C.apply)

    def __repr__(self):
        return f"<{self.name}>"


def _recording_trace():
    """Where the op being recorded was called from (anomaly mode), without this frame."""
    return "".join(traceback.format_stack()[:-1])


def bind_tensor_type(tensor_type):
    """Tells apply which class its outputs are; called once, by gradflow.tensor."""
    _C.autograd_init(tensor_type, _backend.get, _recording_trace)


class NonDifferentiable(Function):
    """Base for ops whose output carries no gradient (comparisons, argmax, casts to int)."""

    differentiable = False
