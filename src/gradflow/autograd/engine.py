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

from .. import _C
from .. import tensor as _tensor
from ..ops import shape as _shape_ops
from . import hooks as _hooks
from .function import Function
from .grad_mode import state


def _sum_to(grad, shape, dtype):
    if grad.shape != shape:
        grad = _shape_ops.sum_to(grad, shape)
    if grad.dtype != dtype:
        grad = grad.to(dtype)
    return grad


def _check_anomaly(node, grads):
    for g in grads:
        if g is None:
            continue
        bad = ~node.be.xp.isfinite(g.data)
        if bool(bad.any()):
            where = getattr(node, "trace", "(recorded outside detect_anomaly)")
            raise RuntimeError(
                f"detect_anomaly: backward of {node.name} produced NaN/Inf in a gradient of shape "
                f"{g.shape}. The op was recorded at:\n{where}")


def run_backward(roots, root_grads, retain_graph, create_graph, capture=None):
    """Back-propagate ``root_grads`` from ``roots``.

    Without ``capture``, leaf gradients are accumulated into ``.grad``. With ``capture`` (a list
    of tensors), nothing is accumulated and their gradients are returned in that order.
    """
    Tensor = _tensor.Tensor
    leaf_grads = {}  # id(leaf) -> [leaf, summed gradient]
    capture_nodes = {}
    wanted = None  # with capture: the nodes whose backward leads to a captured tensor
    if capture is not None:
        for t in capture:
            if t._node is not None:
                capture_nodes[t._node] = None
        wanted = _nodes_reaching(roots, capture_nodes, {id(t) for t in capture if t._node is None})
    allowed = None if wanted is None else wanted | capture_nodes.keys()

    edges, metas = [], []
    for t, g in zip(roots, root_grads):
        edges.append(t._node or (t if t.requires_grad else None))
        metas.append((g.data.shape, g.data.dtype))
    prev = state.phase, state.grad_enabled
    state.phase, state.grad_enabled = "backward", create_graph  # backward records only then
    try:
        # The loop itself runs in C (csrc/autograd.cpp, run_tape): it is the per-node cost of
        # every backward. With create_graph, pending signals are summed with a recorded ``+``;
        # otherwise their arrays are added directly.
        _C.run_tape(edges, root_grads, metas, leaf_grads, retain_graph, create_graph, allowed,
                    capture_nodes or None, wanted, _hooks.observer(state.grad_observer),
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

    shared = {id(g.data) for g in root_grads}  # the caller's arrays, and those stored already
    for leaf, g in leaf_grads.values():
        g = _hooks.leaf_grad(leaf, g)
        if g.requires_grad and not create_graph:  # e.g. the caller's grad, handed straight on
            g = g.detach()
        if leaf.grad is None:
            arr = g.data
            flags = arr.flags
            # .grad must be a private, writable, contiguous array: a gradient can be a
            # broadcast view, the caller's array, or one array handed to several inputs (add).
            if (id(arr) in shared or not flags.c_contiguous
                    or not getattr(flags, "writeable", True)):  # CuPy arrays lack the flag
                g = Tensor(arr.copy(), g._be, g._node)
            shared.add(id(arr))
            leaf.grad = g
        elif create_graph or leaf.grad.requires_grad:
            leaf.grad = leaf.grad + g
        else:
            leaf.grad.data += g.data  # accumulate in place, as .grad is private
    return None


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
        if out.data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; got shape {out.shape}."
                " Pass a gradient of that shape.")
        one = out._be.xp.empty(out.data.shape, out.data.dtype)
        one.fill(1)  # (numpy's ones() costs several times this on a small array)
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


