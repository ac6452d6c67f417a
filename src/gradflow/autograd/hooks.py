"""Tensor hooks: ``t.register_hook(fn)`` runs ``fn(grad)`` on the gradient with respect to
``t`` each time backward computes it (a non-None result replaces the gradient), and
``t.retain_grad()`` keeps that gradient in ``t.grad`` for a non-leaf tensor.

A non-leaf tensor's hooks live on the node that made it (the engine hands each node's summed
signal to an observer, whose result replaces the signal); a leaf's run just before its
gradient is accumulated into ``.grad`` (or returned by gf.grad)."""

import weakref

_node_hooks = weakref.WeakKeyDictionary()  # node -> {handle id: hook}
_leaf_hooks = {}  # id(leaf) -> (weakref to the leaf, {handle id: hook})
_retaining = {}  # id(tensor) -> weakref, for tensors whose retain_grad() was called
_next_id = [0]


class RemovableHandle:
    """What register_hook returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks, key):
        self._hooks, self.id = hooks, key

    def remove(self):
        """Unregisters the hook (a second call does nothing)."""
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _hooks_of(t):
    if t._node is not None:
        hooks = _node_hooks.get(t._node)
        if hooks is None:
            hooks = _node_hooks[t._node] = {}
        return hooks
    entry = _leaf_hooks.get(id(t))
    if entry is None or entry[0]() is not t:
        key = id(t)
        entry = _leaf_hooks[key] = (weakref.ref(t, lambda _, k=key: _leaf_hooks.pop(k, None)), {})
    return entry[1]


def register_hook(t, hook):
    """Registers ``hook(grad) -> Tensor or None`` on ``t``; returns a RemovableHandle."""
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that does not require grad")
    hooks = _hooks_of(t)
    _next_id[0] += 1
    hooks[_next_id[0]] = hook
    return RemovableHandle(hooks, _next_id[0])


def retain_grad(t):
    """Keeps the gradient of the non-leaf ``t`` in ``t.grad`` after backward (accumulated, as
    for leaves); nothing to do for a leaf."""
    if not t.requires_grad:
        raise RuntimeError("retain_grad() on a tensor that does not require grad")
    if t._node is None or retains_grad(t):
        return
    ref = weakref.ref(t)
    _retaining[id(t)] = ref

    def keep(grad):
        owner = ref()
        if owner is not None:
            g = grad.detach()
            owner.grad = g.clone() if owner.grad is None else owner.grad + g

    register_hook(t, keep)


def retains_grad(t):
    """Whether retain_grad() was called on the non-leaf ``t``."""
    ref = _retaining.get(id(t))
    return ref is not None and ref() is t


def _apply(hooks, grad):
    changed = False
    for hook in list(hooks.values()):
        out = hook(grad)
        if out is not None:
            if tuple(out.shape) != tuple(grad.shape):
                raise RuntimeError(f"hook returned a gradient of shape {out.shape} for one of "
                                   f"shape {grad.shape}")
            grad, changed = out, True
    return grad, changed


def observer(prev):
    """The engine's per-node observer for this backward: ``prev`` (if any), then the node's
    tensor hooks; None when there is nothing to run."""
    if not _node_hooks:
        return prev

    def observe(node, grad):
        if prev is not None:
            prev(node, grad)
        hooks = _node_hooks.get(node)
        if not hooks:
            return None
        grad, changed = _apply(hooks, grad)
        return grad if changed else None

    return observe


def leaf_grad(leaf, grad):
    """A leaf's gradient after its hooks."""
    entry = _leaf_hooks.get(id(leaf))
    if entry is None or entry[0]() is not leaf or not entry[1]:
        return grad
    return _apply(entry[1], grad)[0]
