"""Views of a tensor, and recorded in-place changes to the tensor they view.

A view (reshape, transpose, broadcast_to, basic indexing) shares its base's memory, so an
in-place op recorded on the base changes the view's values too, and the view's tape node (which
reads the base's old value) no longer says how they were computed. As in PyTorch, the view is
then rebased: it gets the node of the same view ops replayed on the base's new value, so that a
later use of the view differentiates through the in-place op.

For that, every view is remembered (weakly) with the ops that lead from its base to it (its
*steps*). A view made with grad mode off has no steps: after such a change to its base, a
gradient through it raises, as PyTorch forbids that use as ambiguous. Views of a leaf that
requires grad are not tracked: a recorded in-place op on such a leaf, or on a view of it,
raises anyway.

A recorded in-place op on a view is a write into its base: the base's new value is its old
one with the viewed region replaced (``WriteThrough``, PyTorch's CopySlices), which the base
then takes on as any in-place result, rebasing its views, the written one included.
"""

import types
import weakref

from .function import Function
from .grad_mode import state

# id(base) -> [weak reference to the base, {id(view): (weak reference to the view, steps)},
# the size at which dead views are next pruned]. Keyed by id, not by the tensors: Tensor's ==
# is elementwise, which dict keys cannot use. Views are pruned in bulk, not by a callback each:
# tracking runs for every view op.
_views = {}


def _entry(base):
    key = id(base)
    entry = _views.get(key)
    if entry is None or entry[0]() is not base:
        entry = _views[key] = [weakref.ref(base, lambda _: _views.pop(key, None)), {}, 16]
    return entry


def track(view, source, op, params):
    """Remembers that ``view`` is ``op.apply(source, **params)``, a view of ``view._base``
    (without steps if grad mode is off). A view of an untracked view (one made by detach()) is
    not tracked: it does not follow the base's graph; nor are the views a backward pass makes
    of gradients while it records nothing."""
    base = view._base
    grad_enabled = state.grad_enabled
    if (base._node is None and base.requires_grad) or (
            not grad_enabled and state.phase == "backward"):
        return
    entry = _entry(base)
    members = entry[1]
    if source is base:
        steps = ((op, params),) if grad_enabled else None
    else:
        known = members.get(id(source))
        if known is None or known[0]() is not source:
            return
        steps = known[1] + ((op, params),) if grad_enabled and known[1] is not None else None
    members[id(view)] = (weakref.ref(view), steps)
    if len(members) >= entry[2]:
        for key, (ref, _) in list(members.items()):  # (list(): one step, safe with threads)
            if ref() is None:
                members.pop(key, None)
        entry[2] = max(16, 2 * len(members))


class NoGradViewOfModifiedBase(Function):
    """The node of a view made with grad mode off whose base then changed in place while
    recording: its gradient is ambiguous, so backward through it raises."""

    @staticmethod
    def forward(ctx, base):
        """Passes ``base`` through unchanged."""
        return base

    @staticmethod
    def backward(ctx, g):
        """Raises: the gradient through such a view is ambiguous."""
        raise RuntimeError(
            "a view was made with grad mode off and its base (or another view of it) was then "
            "modified in place with grad mode on; its gradient is ambiguous. Make the view and "
            "the in-place op both inside the no_grad block or both outside it.")


def _steps(view):
    """The steps from ``view``'s base to it, or None when unknown (untracked, or made with grad
    mode off)."""
    entry = _views.get(id(view._base))
    known = entry and entry[0]() is view._base and entry[1].get(id(view))
    return known[1] if known and known[0]() is view else None


def _assign(arr, steps, value, be):
    """Writes ``value`` into the region of backend array ``arr`` that ``steps`` view."""
    ctx = types.SimpleNamespace(be=be)  # what the view ops' forward reads and writes
    *lead, (last, params) = steps
    for op, p in lead:
        sub = op.forward(ctx, arr, **p)
        if sub.base is None:  # (a copy, where the original op gave a view: layouts differ)
            raise RuntimeError("write through a view: its region of the base cannot be "
                               "addressed as a view of a copy of the base")
        arr = sub
    try:
        if "index" in params:  # an indexing step: assign through its parent
            be.setitem(arr, params["index"], value)
        else:
            be.setitem(last.forward(ctx, arr, **params), Ellipsis, value)
    except ValueError as e:  # read-only: a broadcast view
        raise RuntimeError(f"in-place write through a broadcast view: {e}") from None


class WriteThrough(Function):
    """``base`` with the region that ``steps`` view replaced by ``value``; backward: the
    gradient outside that region goes to base, the region's to value."""

    @staticmethod
    def forward(ctx, base, value, steps):
        """A copy of ``base`` (in its layout) with ``value`` written into the region
        that ``steps`` view."""
        ctx.steps = steps
        out = ctx.be.copy(base, "K")  # the base's layout, so the steps view it as they did
        _assign(out, steps, value, ctx.be)
        return out

    @staticmethod
    def backward(ctx, g):
        """``g`` with the region zeroed for base, and ``g``'s region (the steps
        replayed on it) for value."""
        from ..tensor import Tensor

        mask = g._be.xp.ones(g.shape, g.dtype)
        _assign(mask, ctx.steps, 0, g._be)
        region = g
        for op, params in ctx.steps:
            region = op.apply(region, **params)
        return g * Tensor._make(mask, g._device), region


def write_through(view, value, op):
    """A recorded in-place ``op`` on ``view`` whose new value is ``value``: written into the
    base, which takes it on as an in-place result (and so rebases its views)."""
    base = view._base
    if base._node is None and base.requires_grad:
        raise RuntimeError(f"{op}: a view of a leaf tensor that requires grad is being used in "
                           "an in-place operation; wrap the update in `with gf.no_grad():`")
    steps = _steps(view)
    if steps is None:
        raise RuntimeError(
            f"{op}: in-place modification of a view made with grad mode off or from detach() "
            "is not supported while gradients are recorded; apply the op out of place")
    base._commit_inplace(WriteThrough.apply(base._snapshot(), value, steps=steps))


def rebase(base):
    """After a recorded in-place op on ``base``: every live view of it gets the node of its
    steps replayed on the base's new value (and requires grad as that result does); a view
    made with grad mode off gets a node that raises in backward."""
    entry = _views.get(id(base))
    if entry is None or entry[0]() is not base:
        return
    for ref, steps in list(entry[1].values()):
        view = ref()
        if view is None:
            continue
        t = base
        for op, params in steps or ((NoGradViewOfModifiedBase, {}),):
            t = op.apply(t, **params)
        view._node = t._node
        view.requires_grad = t.requires_grad
