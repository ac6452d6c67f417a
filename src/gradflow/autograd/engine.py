"""Reverse-mode traversal of the tape.

Nodes are visited in reverse recording order (a max-heap on the sequence number each node got
when recorded, ``_seq``; every node is newer than the nodes of its inputs, so a node is only
visited once all its consumers have added their error signal to it). Each node receives the sum
of its children's signals, and its backward function turns that into one signal per input.
Iterative, so a chain of 100,000 ops is no problem. The loop runs in C (``_C.run_tape``); this
module prepares it and hands out the results.

This is also the one place where gradients are reduced back to the shape (and dtype) of the
operand they belong to, undoing broadcasting.
"""

import datetime
import sys
import threading

import numpy as np

from .. import _C
from .. import dtypes as _dtypes
from .. import tensor as _tensor
from ..ops import shape as _shape_ops
from . import hooks as _hooks
from .function import Function
from .grad_mode import state
from .hooks import fire_post_accumulate, post_accumulate


# Accumulation into .grad is a read-modify-write of shared state (an in-place add may release
# the GIL): backward passes in several threads take turns at it.
_accumulate_lock = threading.Lock()


def _sum_to(grad, shape, dtype, node):
    """``grad`` (from ``node``'s backward, None for the roots) reduced to its input's shape and
    dtype. Runs only when they differ; a gradient is valid if the input broadcasts to its shape
    and its dtype is of the input's kind (float for a float input)."""
    if grad.shape != shape:
        try:
            valid = np.broadcast_shapes(shape, grad.shape) == grad.shape
        except ValueError:
            valid = False
        if not valid:
            where = node.name if node is not None else "backward"
            raise RuntimeError(
                f"{where}.backward returned a gradient of shape {grad.shape} for an input of "
                f"shape {shape}")
        grad = _shape_ops.sum_to(grad, shape)
    if grad.dtype != dtype:
        if _dtypes.category(grad.dtype) != _dtypes.category(dtype):  # (float inputs get them)
            where = node.name if node is not None else "backward"
            raise TypeError(
                f"{where}.backward returned a gradient of dtype {grad.dtype} for an input of "
                f"dtype {dtype}")
        grad = grad.to(dtype)
    return grad


def _check_anomaly(node, grads):
    for g in grads:
        if g is None:
            continue
        xp = node.be.xp
        if not bool(xp.all(xp.isfinite(g.array))):
            where = getattr(node, "trace", "(recorded outside detect_anomaly)")
            raise RuntimeError(
                f"detect_anomaly: backward of {node.name} produced NaN/Inf in a gradient of shape "
                f"{g.shape}. The op was recorded at:\n{where}")


def run_backward(roots, root_grads, retain_graph, create_graph, capture=None):
    """Back-propagate ``root_grads`` from ``roots``.

    Without ``capture``, leaf gradients are accumulated into ``.grad``. With ``capture`` (a list
    of tensors), nothing is accumulated and their gradients are returned in that order.
    """
    leaf_grads = {}  # id(leaf) -> [leaf, summed gradient]
    capture_nodes = {}
    wanted = None  # with capture: the nodes whose backward leads to a captured tensor
    if capture is not None:
        for t in capture:
            if t._node is not None:
                capture_nodes[t._node] = None
        wanted = _nodes_reaching(roots, capture_nodes, {id(t) for t in capture if t._node is None})
    allowed = None if wanted is None else wanted | capture_nodes.keys()

    shared = {id(g.array) for g in root_grads}  # the caller's arrays, and those stored already
    observer = _hooks.observer(state.grad_observer)  # tensor hooks on non-leaves, if any
    if post_accumulate and capture is None:  # hooks (DDP's reductions) start during backward
        observer = _ReadyLeaves(roots, leaf_grads, shared, create_graph).observer(observer)

    edges, metas = [], []
    for t, g in zip(roots, root_grads):
        edges.append(t._node or (t if t.requires_grad else None))
        metas.append((g.array.shape, g.array.dtype))
    prev = state.phase, state.grad_enabled
    state.phase, state.grad_enabled = "backward", create_graph  # backward records only then
    try:
        # The loop itself runs in C (csrc/autograd.cpp, run_tape): it is the per-node cost of
        # every backward. With create_graph, pending signals are summed with a recorded ``+``;
        # otherwise their arrays are added directly.
        _C.run_tape(edges, root_grads, metas, leaf_grads, retain_graph, create_graph, allowed,
                    capture_nodes or None, wanted, observer,
                    _check_anomaly if state.anomaly else None, _sum_to)
    finally:
        state.phase, state.grad_enabled = prev

    if capture is not None:
        out = []
        for t in capture:
            if t._node is not None:
                out.append(capture_nodes[t._node])
            else:
                slot = leaf_grads.get(id(t))
                out.append(_hooks.leaf_grad(t, slot[1]) if slot else None)
        return out

    for key in list(leaf_grads):
        leaf, g = leaf_grads.pop(key)
        _accumulate(leaf, g, shared, create_graph)
    return None


def _accumulate(leaf, g, shared, create_graph):
    """Adds this backward's gradient ``g`` for ``leaf`` (after the leaf's tensor hooks) into
    ``leaf.grad``; then this leaf's post-accumulate-grad hooks run."""
    hooked = _hooks.leaf_grad(leaf, g)
    if hooked is not g:  # a hook's result may be kept by the hook: never taken as .grad
        shared.add(id(hooked.array))
        g = hooked
    del hooked  # (a reference _private_grad's count of g's owners does not allow for)
    with _accumulate_lock:
        if leaf.grad is None:
            leaf.grad = _private_grad(g, shared, create_graph)
        elif create_graph or leaf.grad.requires_grad:
            leaf.grad = leaf.grad + g
        else:
            be = leaf.grad._be  # accumulate in place, as .grad is private
            be.add(leaf.grad.array, g.array, leaf.grad.array)
    if post_accumulate:  # this leaf's .grad is final for this backward
        fire_post_accumulate(leaf)


class _ReadyLeaves:
    """Finishes each hooked leaf's ``.grad`` as soon as no node still to run can add to it, so
    that its hooks run while backward goes on. Nodes run newest first and every node is newer
    than its inputs' nodes, so once the node about to run is older than all the consumers of a
    leaf, that leaf's gradient is complete."""

    def __init__(self, roots, leaf_grads, shared, create_graph):
        self.leaf_grads, self.shared, self.create_graph = leaf_grads, shared, create_graph
        oldest = {}  # id(leaf) -> (sequence number of its oldest consumer, leaf)
        seen, stack = set(), [t._node for t in roots if t._node is not None]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for e in node._next:
                if isinstance(e, Function):
                    stack.append(e)
                elif e is not None and id(e) in post_accumulate:
                    known = oldest.get(id(e))
                    if known is None or node._seq < known[0]:
                        oldest[id(e)] = (node._seq, e)
        self.pending = sorted(oldest.values(), key=lambda entry: entry[0])  # newest last

    def observer(self, then):
        """The engine's per-node observer: finishes what is complete, then calls ``then`` (the
        tensor hooks' observer, whose result replaces the node's gradient)."""
        def observe(node, grad):
            seq = node._seq
            while self.pending and self.pending[-1][0] > seq:
                leaf = self.pending.pop()[1]
                entry = self.leaf_grads.pop(id(leaf), None)
                if entry is not None:
                    g = entry[1]
                    del entry  # (the gradient's references decide whether it is kept as .grad)
                    _accumulate(leaf, g, self.shared, self.create_graph)
            return None if then is None else then(node, grad)  # (a result replaces grad)
        return observe


# The references to a gradient held by nothing but the engine (as PyTorch, which steals a
# gradient only when its use count shows no other owner): the Tensor's, from the caller of
# _accumulate (which took it out of leaf_grads), _accumulate's and _private_grad's arguments and
# getrefcount's; its array's, from the
# Tensor, _private_grad's local, its flags object and getrefcount's.
_PRIVATE_TENSOR_REFS, _PRIVATE_ARRAY_REFS = 4, 4
# The CPU kernels' large outputs live in recycled buffers: the array does not own its data, its
# base is the capsule that hands the buffer back to the cache (views of the array are based on
# the array, so they show in its count). The array owns its memory when the capsule is one of
# those (_C.owns_buffer; a DLPack capsule is not) held by nothing else: the references are the
# array's, _private_grad's local and getrefcount's.
_CAPSULE, _PRIVATE_CAPSULE_REFS = type(datetime.datetime_CAPI), 3


def _private_grad(g, shared, create_graph):
    """``g`` as a new ``.grad``: a tensor whose array belongs to it alone. The array is kept
    when it provably does (it owns its memory, no other object refers to it, and it is not
    handed to another leaf of this pass); otherwise copied. A gradient may be the caller's
    array, a view of it (reshape's backward), a broadcast view, one array sent to several
    inputs (add), or an array a custom backward also keeps."""
    arr = g.array
    flags = arr.flags
    base = arr.base
    owned = flags.owndata or (type(base) is _CAPSULE and _C.owns_buffer(arr)
                              and sys.getrefcount(base) <= _PRIVATE_CAPSULE_REFS)
    del base
    private = (id(arr) not in shared and owned and flags.c_contiguous
               and getattr(flags, "writeable", True)  # CuPy arrays lack the flag
               and sys.getrefcount(g) <= _PRIVATE_TENSOR_REFS
               and sys.getrefcount(arr) <= _PRIVATE_ARRAY_REFS)
    shared.add(id(arr))
    node = g._node if create_graph else None
    if private and g._node is node:
        return g
    return _C.wrap(arr if private else g._be.copy(arr), g._be, node)


def _nodes_reaching(roots, target_nodes, target_leaves):
    """The nodes from which some target (a node, or a leaf by id) is reachable through the
    inputs' edges, not counting the node itself: the ones whose backward must run."""
    reaches = {}  # node -> bool
    stack = [t._node for t in roots if t._node is not None]
    while stack:
        node = stack[-1]
        if node in reaches:
            stack.pop()
            continue
        todo = [e for e in node._next if isinstance(e, Function) and e not in reaches]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        reaches[node] = any(
            (e in target_nodes or reaches[e]) if isinstance(e, Function)
            else (e is not None and id(e) in target_leaves)
            for e in node._next)
    return {n for n, r in reaches.items() if r}


def backward(tensor, grad=None, retain_graph=None, create_graph=False):
    """``tensor.backward(grad, ...)``: accumulates d tensor / d leaf into each leaf's .grad."""
    if not tensor.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if retain_graph is None:
        retain_graph = create_graph
    run_backward([tensor], [_root_grad(grad, tensor)], retain_graph, create_graph)


def _root_grad(g, out):
    """The error signal an output starts with: ``g`` checked against it and in its dtype (as
    every signal the engine passes on is), or 1 for a scalar."""
    Tensor = _tensor.Tensor
    if g is None:
        if out.array.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; got shape {out.shape}."
                " Pass a gradient of that shape.")
        be = out._be
        one = be.xp.empty(out.array.shape, out.array.dtype)
        be.setitem(one, Ellipsis, 1)  # (numpy's ones() costs several times this on a small array)
        return _C.wrap(one, out._be, None)
    if not isinstance(g, Tensor):
        g = _tensor.tensor(g, dtype=out.dtype, device=out.device)
    if g.shape != out.shape:
        raise ValueError(f"grad has shape {g.shape}, but the output has shape {out.shape}")
    if g._device != out._device:
        raise RuntimeError(f"grad is on {g._device}, but the output is on {out._device}")
    return g if g.dtype == out.dtype else g.to(out.dtype)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple (``.grad`` is
    left untouched). ``create_graph=True`` records them for higher-order derivatives."""
    Tensor = _tensor.Tensor
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the inputs does not require grad")
    roots, root_grads = [], []
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("grad: one of the outputs does not require grad")
        roots.append(out)
        root_grads.append(_root_grad(g, out))
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(roots, root_grads, retain_graph, create_graph, capture=inputs)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} was not used in the graph of the outputs; pass allow_unused=True "
                "to get None for it")
        if g is not None and not create_graph:
            result[i] = g.detach()
    return tuple(result)


