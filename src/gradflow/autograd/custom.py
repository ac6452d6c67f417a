"""PyTorch-style custom autograd functions: ``gf.autograd.Function``.

    class Exp(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    Exp.apply(x)

forward works on Tensors (with recording off) and returns a Tensor or a tuple of them;
backward gets one gradient per output and returns one per forward argument (None for
non-Tensors and for inputs that need none). Each output is wired into the graph as a node of
gradflow's own op protocol (gradflow.autograd.function.Function, whose forward works on backend
arrays), so the engine treats it like any built-in op.
"""

import functools

from .. import tensor as _tensor
from . import function as _function
from .grad_mode import no_grad
from .grad_mode import state as _state


class FunctionCtx:
    """The ``ctx`` of a custom Function: what forward leaves for backward."""

    def __init__(self, needs_input_grad, originals):
        self.needs_input_grad = needs_input_grad
        self._originals = originals  # id(detached arg) -> the caller's tensor
        self._saved = ()
        self._versions = ()
        self._non_differentiable = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors):
        """Keeps tensors (inputs or outputs of forward, or None) for backward."""
        for t in tensors:
            if t is not None and not isinstance(t, _tensor.Tensor):
                raise TypeError(f"save_for_backward takes Tensors or None, got {type(t).__name__}")
        self._saved = tuple(self._originals.get(id(t), t) if t is not None else None for t in tensors)
        self._versions = tuple(t._vbox[0] if t is not None else None for t in self._saved)

    @property
    def saved_tensors(self):
        """The tensors given to save_for_backward (an error if one was modified in place since)."""
        for t, v in zip(self._saved, self._versions):
            if t is not None and t._vbox[0] != v:
                raise RuntimeError(f"one of the tensors saved for a custom Function's backward has "
                                   f"been modified in place (shape {t.shape}, version {t._vbox[0]}, "
                                   f"expected {v})")
        return self._saved

    def mark_non_differentiable(self, *outputs):
        """Declares outputs (e.g. indices) that carry no gradient."""
        self._non_differentiable.update(id(o) for o in outputs)

    def set_materialize_grads(self, value):
        """With False, backward gets None (not zeros) for outputs that received no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        """Not supported: custom Functions must return new tensors (raises RuntimeError)."""
        raise RuntimeError("mark_dirty: in-place custom Functions are not supported; return a new tensor")


class _Output(_function.Function):
    """The tape node of output number ``k`` of a custom Function call."""

    @staticmethod
    def forward(node, *arrays, fn, ctx, outputs, k, arg_slots):
        node.fn, node.fn_ctx, node.k, node.arg_slots = fn, ctx, k, arg_slots
        node.out_meta = [(o.shape, o.dtype, o.device) if o is not None else None for o in outputs]
        return outputs[k].array

    @staticmethod
    def backward(node, g):
        ctx = node.fn_ctx
        grads = []
        for i, meta in enumerate(node.out_meta):
            if i == node.k:
                grads.append(g)
            elif meta is not None and ctx.materialize_grads:
                grads.append(_tensor.zeros(meta[0], dtype=meta[1], device=meta[2]))
            else:
                grads.append(None)
        result = node.fn.backward(ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        n_args = len(ctx.needs_input_grad)
        if len(result) != n_args:
            raise RuntimeError(f"{node.fn.__name__}.backward returned {len(result)} gradients, "
                               f"expected {n_args} (one per forward argument)")
        return tuple(result[i] for i in node.arg_slots)


class Function:
    """Base class of PyTorch-style custom autograd functions (see the module docstring)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        """The computation, on Tensors; returns a Tensor or a tuple of Tensors."""
        raise NotImplementedError("a custom Function defines forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        """One gradient per forward argument, from one gradient per output."""
        raise NotImplementedError("a custom Function defines backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Runs forward and, when recording, wires its outputs into the graph."""
        Tensor = _tensor.Tensor
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        detached = [a.detach() if isinstance(a, Tensor) else a for a in args]
        originals = {id(d): a for d, a in zip(detached, args) if isinstance(a, Tensor)}
        ctx = FunctionCtx(needs if _state.grad_enabled else (False,) * len(args), originals)
        with no_grad():
            out = cls.forward(ctx, *detached, **kwargs)
        single = not isinstance(out, tuple)
        outputs = (out,) if single else out
        for o in outputs:
            if o is not None and not isinstance(o, Tensor):
                raise TypeError(
                    f"{cls.__name__}.forward returned a {type(o).__name__}: gf.autograd.Function "
                    "is PyTorch-style (forward gets and returns Tensors); an op written on backend "
                    "arrays subclasses gradflow.autograd.function.Function instead")
        if not (_state.grad_enabled and any(needs)):
            return out
        slots = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
        inputs = [args[i] for i in slots]
        wired, linked = [], {}
        for k, o in enumerate(outputs):
            if o is None or id(o) in ctx._non_differentiable or o.dtype.kind != "f":
                wired.append(o)
                continue
            w = _Output.apply(*inputs, fn=cls, ctx=ctx, outputs=outputs, k=k, arg_slots=slots)
            w._vbox = o._vbox  # one tensor to the caller: in-place writes are seen by backward
            linked[id(o)] = w
            wired.append(w)
        # Saved outputs are the wired ones, so that a backward recorded under create_graph
        # reaches the graph through them.
        ctx._saved = tuple(linked.get(id(t), t) for t in ctx._saved)
        return wired[0] if single else tuple(wired)


def once_differentiable(backward):
    """Decorator for a custom Function's backward that is not itself differentiable: it runs
    without recording, so a second derivative through it gets no gradient."""
    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            return backward(ctx, *grads)

    return wrapper
