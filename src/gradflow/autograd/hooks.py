"""Tensor hooks, kept outside the tensor (its fields are fixed slots in the C base type).

* ``t.register_hook(fn)`` runs ``fn(grad)`` on the gradient with respect to ``t`` each time
  backward computes it (a non-None result replaces the gradient); ``t.retain_grad()`` keeps that
  gradient in ``t.grad`` for a non-leaf tensor. A non-leaf tensor's hooks live on the node that
  made it (the engine hands each node's summed signal to an observer, whose result replaces the
  signal); a leaf's run just before its gradient is accumulated into ``.grad`` (or returned by
  gf.grad).
* ``t.register_post_accumulate_grad_hook(fn)`` runs ``fn(t)`` once the leaf ``t``'s ``.grad`` is
  complete for the backward pass being run (after accumulation).

The engine only looks at a registry when it is non-empty, so an unhooked backward pays one truth
test per registry. Weak references drop a tensor's entries when the tensor goes away.
"""

import functools
import weakref

from .._jit import trace as _jit_trace

_node_hooks = weakref.WeakKeyDictionary()  # node -> {handle id: hook}
_leaf_hooks = {}  # id(leaf) -> (weakref to the leaf, {handle id: hook})
post_accumulate = {}  # id(leaf) -> (weakref to the leaf, {handle id: hook})
_retaining = {}  # id(tensor) -> weakref, for tensors whose retain_grad() was called
_next_id = [0]


class RemovableHandle:
    """What the register_*hook methods return: ``remove()`` unregisters the hook (a second call
    does nothing); also a context manager that removes it on exit."""

    def __init__(self, hooks, key, registry=None, owner=None):
        self._hooks, self.id = hooks, key
        self._registry, self._owner = registry, owner  # a per-leaf registry to prune

    def remove(self):
        """Unregisters the hook (a second call does nothing)."""
        self._hooks.pop(self.id, None)
        if self._registry is not None and not self._hooks:
            entry = self._registry.get(self._owner)
            if entry is not None and entry[1] is self._hooks:
                del self._registry[self._owner]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _forget(key, registry, ref):
    # (the registry is bound in: at interpreter exit this module's globals may be gone)
    entry = registry.get(key)
    if entry is not None and entry[0] is ref:
        del registry[key]


def _leaf_entry(registry, t):
    key = id(t)
    entry = registry.get(key)
    if entry is None or entry[0]() is not t:  # (a dead tensor's id can be reused)
        entry = registry[key] = (weakref.ref(t, functools.partial(_forget, key, registry)), {})
    return entry[1]


def _add(hooks, hook, registry=None, owner=None):
    _next_id[0] += 1
    hooks[_next_id[0]] = hook
    return RemovableHandle(hooks, _next_id[0], registry, owner)


def register_hook(t, hook):
    """Registers ``hook(grad) -> Tensor or None`` on ``t``; returns a RemovableHandle."""
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that does not require grad")
    if t._node is not None:
        hooks = _node_hooks.get(t._node)
        if hooks is None:
            hooks = _node_hooks[t._node] = {}
        return _add(hooks, hook)
    return _add(_leaf_entry(_leaf_hooks, t), hook, _leaf_hooks, id(t))


def register_post_accumulate_grad(tensor, hook):
    """Registers ``hook(tensor)``, run once the leaf's ``.grad`` is complete in each backward."""
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got "
                        f"{type(hook).__name__}")
    if not tensor.requires_grad or tensor._node is not None:
        raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors that require "
                           "grad accumulate a .grad (this one "
                           + ("was made by " + tensor._node.name if tensor._node is not None
                              else "does not require grad") + ")")
    return _add(_leaf_entry(post_accumulate, tensor), hook, post_accumulate, id(tensor))


def fire_post_accumulate(leaf):
    """Runs the post-accumulate-grad hooks registered on ``leaf`` (if it is still the
    tensor they were registered on), after its ``.grad`` was accumulated."""
    entry = post_accumulate.get(id(leaf))
    if entry is not None and entry[0]() is leaf:
        _jit_trace.refuse(_HOOK_RAN)
        for hook in list(entry[1].values()):  # a hook may remove itself
            hook(leaf)


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


_HOOK_RAN = "a gradient hook ran (Python code, a DDP reduction, that a replay would not run)"


def _apply(hooks, grad):
    _jit_trace.refuse(_HOOK_RAN)
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
