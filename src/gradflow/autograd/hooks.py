"""Per-tensor hooks kept outside the tensor: its fields are fixed slots in the C base type.

``post_accumulate`` maps id(tensor) to the hooks that the engine calls, with the tensor, once
that leaf's ``.grad`` is complete for the backward pass being run (after accumulation). The
engine only looks here when the map is non-empty, so an unhooked backward pays one truth test.
A weak reference drops a tensor's entry when the tensor goes away.
"""

import functools
import itertools
import weakref

post_accumulate = {}  # id(tensor) -> (weakref to it, {handle id: hook})
_ids = itertools.count()


class RemovableHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``remove()`` unregisters the hook
    (a second ``remove()`` does nothing)."""

    __slots__ = ("_key", "_id")

    def __init__(self, key, hook_id):
        self._key, self._id = key, hook_id

    def remove(self):
        entry = post_accumulate.get(self._key)
        if entry is not None:
            entry[1].pop(self._id, None)
            if not entry[1]:
                del post_accumulate[self._key]


def register_post_accumulate_grad(tensor, hook):
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got "
                        f"{type(hook).__name__}")
    if not tensor.requires_grad or tensor._node is not None:
        raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors that require "
                           "grad accumulate a .grad (this one "
                           + ("was made by " + tensor._node.name if tensor._node is not None
                              else "does not require grad") + ")")
    key = id(tensor)
    entry = post_accumulate.get(key)
    if entry is None or entry[0]() is not tensor:  # (a dead tensor's id can be reused)
        entry = (weakref.ref(tensor, functools.partial(_forget, key, post_accumulate)), {})
        post_accumulate[key] = entry
    hook_id = next(_ids)
    entry[1][hook_id] = hook
    return RemovableHandle(key, hook_id)


def _forget(key, registry, ref):
    # (the registry is bound in: at interpreter exit this module's globals may be gone)
    entry = registry.get(key)
    if entry is not None and entry[0] is ref:
        del registry[key]


def fire_post_accumulate(leaf):
    entry = post_accumulate.get(id(leaf))
    if entry is not None and entry[0]() is leaf:
        for hook in list(entry[1].values()):  # a hook may remove itself
            hook(leaf)
