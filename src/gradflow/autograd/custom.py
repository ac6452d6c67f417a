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
non-Tensors and for inputs that need none). A forward that modifies an input in place calls
``ctx.mark_dirty(x)`` and returns it: the caller's tensor itself comes back, now the output of
the Function (its version bumped by the write), as in PyTorch. Each output is wired into the graph as a node of
gradflow's own op protocol (gradflow.autograd.function.Function, whose forward works on backend
arrays), so the engine treats it like any built-in op.
"""

import functools

from .. import dtypes as _dtypes
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
        self._dirty = set()
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
        """Declares inputs that forward modified in place; forward must return them. The caller
        then gets its own tensor back, now the output of this Function (as PyTorch's)."""
        for t in tensors:
            if not isinstance(t, _tensor.Tensor):
                raise TypeError(f"mark_dirty takes Tensors, got {type(t).__name__}")
        self._dirty.update(id(t) for t in tensors)


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
        dirty = _dirty_originals(cls, ctx, outputs)
        if not (_state.grad_enabled and any(needs)):
            if not dirty:
                return out
            # as PyTorch: the caller's tensor, unless it requires grad (then an alias of it
            # outside the graph, sharing its memory and version counter)
            outputs = tuple(o if id(o) not in dirty or dirty[id(o)].requires_grad else dirty[id(o)]
                            for o in outputs)
            return outputs[0] if single else outputs
        slots = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
        inputs = [args[i] for i in slots]
        wired, linked = [], {}
        for k, o in enumerate(outputs):
            if o is None or id(o) in ctx._non_differentiable or not _dtypes.is_float(o.dtype):
                wired.append(dirty.get(id(o), o))
                continue
            w = _Output.apply(*inputs, fn=cls, ctx=ctx, outputs=outputs, k=k, arg_slots=slots)
            if id(o) in dirty:  # the caller's tensor becomes the output, as after an in-place op
                w = _rebase_dirty(dirty[id(o)], w)
            else:
                w._vbox = o._vbox  # one tensor to the caller: in-place writes are seen by backward
            linked[id(o)] = w
            wired.append(w)
        # Saved outputs are the wired ones, so that a backward recorded under create_graph
        # reaches the graph through them.
        ctx._saved = tuple(linked.get(id(t), t) for t in ctx._saved)
        return wired[0] if single else tuple(wired)


def _dirty_originals(cls, ctx, outputs):
    """id(returned tensor) -> the caller's tensor, for each input marked dirty; checks, as
    PyTorch does, that each was returned and that none is a leaf requiring grad."""
    if not ctx._dirty:
        return {}
    returned = {id(o) for o in outputs if o is not None}
    if not ctx._dirty <= returned:
        raise RuntimeError(f"{cls.__name__}: some tensors marked dirty in forward were not "
                           "returned as outputs (an input modified in place must be returned)")
    dirty = {}
    for d in ctx._dirty:
        original = ctx._originals.get(d)
        if original is None:
            raise RuntimeError(f"{cls.__name__}: mark_dirty was given a tensor that is not an "
                               "input of forward")
        if _state.grad_enabled and original.requires_grad and original._node is None:
            raise RuntimeError(f"{cls.__name__}: a leaf tensor that requires grad (shape "
                               f"{original.shape}) is being modified in place by this Function; "
                               "modify a copy (x.clone()) or call it under gf.no_grad()")
        if original._base is not None and any(ctx.needs_input_grad):
            raise RuntimeError(f"{cls.__name__}: mark_dirty on a view (shape {original.shape}) "
                               "is not supported when gradients are recorded; modify the base "
                               "tensor, or a copy")
        dirty[d] = original
    return dirty


def _rebase_dirty(original, wired):
    """``original`` (modified in place by forward; its version already bumped by that write)
    takes ``wired``'s node, and its views follow."""
    from . import views

    original._node = wired._node
    original.requires_grad = wired.requires_grad
    views.rebase(original)
    return original


def once_differentiable(backward):
    """Decorator for a custom Function's backward that is not itself differentiable: it runs
    without recording, so a second derivative through it gets no gradient."""
    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            return backward(ctx, *grads)

    return wrapper
