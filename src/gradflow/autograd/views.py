"""Views of a tensor, and recorded in-place changes to the tensor they view.

A view (reshape, transpose, broadcast_to, basic indexing) shares its base's memory, so an
in-place op recorded on the base changes the view's values too, and the view's tape node (which
reads the base's old value) no longer says how they were computed. As in PyTorch, the view is
then rebased: it gets the node of the same view ops replayed on the base's new value, so that a
later use of the view differentiates through the in-place op.

For that, every view made while grad mode is on is remembered (weakly) with the ops that lead
from its base to it (its *steps*). Writes through a view into its base while recording are not
supported (Tensor._check_inplace raises); without recording they need nothing from here.
"""

import weakref

# id(base) -> (weak reference to the base, {id(view): (weak reference to the view, steps)}).
# Keyed by id, not by the tensors: Tensor's == is elementwise, which dict keys cannot use.
_views = {}


def track(view, source, op, params):
    """Remembers that ``view`` is ``op.apply(source, **params)``, a view of ``view._base``.
    A view of an untracked view (made with grad mode off, or by detach()) is not tracked: its
    path from the base is unknown, and it does not follow the base's graph."""
    base = view._base
    if source is base:
        steps = ((op, params),)
    else:
        entry = _views.get(id(base))
        known = entry and entry[1].get(id(source))
        if not known or known[0]() is not source:
            return
        steps = known[1] + ((op, params),)
    entry = _views.get(id(base))
    if entry is None or entry[0]() is not base:
        key = id(base)
        entry = _views[key] = (weakref.ref(base, lambda _, key=key: _views.pop(key, None)), {})
    members = entry[1]
    key = id(view)
    members[key] = (weakref.ref(view, lambda _, key=key: members.pop(key, None)), steps)


def rebase(base):
    """After a recorded in-place op on ``base``: every live view of it gets the node of its
    steps replayed on the base's new value (and requires grad as that result does)."""
    entry = _views.get(id(base))
    if entry is None or entry[0]() is not base:
        return
    for ref, steps in list(entry[1].values()):
        view = ref()
        if view is None:
            continue
        t = base
        for op, params in steps:
            t = op.apply(t, **params)
        view._node = t._node
        view.requires_grad = t.requires_grad
