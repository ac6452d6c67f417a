"""The recorded graph as a picture: Graphviz dot source, and rendering it to SVG or PNG.

    with gf.viz.record_grads():
        loss.backward()
    gf.viz.render(loss, "graph.svg", show_grads=True, params=dict(model.named_parameters()))

One node per op (its class name, and the shape and dtype of its output), one per leaf that
requires grad (named from ``params`` or the leaf's own ``name`` attribute), and one per input
that needs no gradient (a grey "const" box); edges run in data-flow direction, input -> op ->
consumer. The graph stays walkable after ``backward()``: only saved values are freed.

With ``show_grads=True`` each node also shows the L2 norm of its error signal ḡ: ops from the
norms :class:`record_grads` stored during backward, leaves from ``.grad``. If no op in the graph
has a recorded norm, ``to_dot`` raises RuntimeError saying to run backward inside
``record_grads``; single nodes without a signal are labelled "ḡ: none".
"""

import itertools
import shutil
import subprocess
from pathlib import Path

from .autograd.function import Function
from .autograd.grad_mode import state

__all__ = ["to_dot", "render", "record_grads"]

_STYLE = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#dbe8f7"',
    "leaf": 'shape=box, style=filled, fillcolor="#d9f2d9"',
    "const": 'shape=box, style=filled, fillcolor="#eeeeee", fontcolor="#555555"',
}


def _norm(array, be):
    return float(be.xp.linalg.norm(be.reshape(array, -1)))


class record_grads:
    """Inside, backward stores the L2 norm of each node's summed error signal on the node
    (``node._grad_norm``), for ``to_dot(show_grads=True)``. Any observer already installed is
    still called, and restored on exit."""

    def __enter__(self):
        self.prev = prev = state.grad_observer

        def observe(node, grad):
            node._grad_norm = _norm(grad.array, grad._be)
            if prev is not None:
                prev(node, grad)

        state.grad_observer = observe
        return self

    def __exit__(self, *exc):
        state.grad_observer = self.prev
        return False


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _meta(shape, dtype):
    return f"{tuple(shape)} {dtype}"


def _grad_line(norm):
    return "ḡ: none" if norm is None else f"‖ḡ‖ = {norm:.4g}"


def _param_names(params):
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):  # a Module: its dotted parameter names
        params = params.named_parameters()
    pairs = params.items() if hasattr(params, "items") else params
    return {id(t): name for name, t in pairs}


def _walk(root):
    """The ops reachable from ``root`` (a node), each once, found iteratively, plus the output
    (shape, dtype) of each op but the root, as its consumer recorded it."""
    order, out_meta = [], {}
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        for edge, (shape, dtype) in zip(node._next, node._in_meta):
            if isinstance(edge, Function) and id(edge) not in out_meta:
                out_meta[id(edge)] = (shape, dtype)
                stack.append(edge)
    return order, out_meta


def to_dot(tensor, show_grads=False, show_shapes=True, params=None) -> str:
    """Graphviz dot source for the graph that produced ``tensor`` (see the module docs).

    ``params``: a Module, a dict or an iterable of (name, tensor) pairs, e.g.
    ``dict(model.named_parameters())``, naming the leaves. Without it, a Module's parameters
    still carry the attribute name they were registered under.
    """
    names = _param_names(params)
    ids = {}  # id(op or leaf) -> dot node id
    counter = itertools.count()
    lines = ["digraph gradflow {", '  node [fontname="Helvetica", fontsize=10];']

    def add(kind, label, key=None):
        nid = f"n{next(counter)}"
        if key is not None:
            ids[key] = nid
        lines.append(f'  {nid} [label="{_escape(label)}", {_STYLE[kind]}];')
        return nid

    def leaf(t):
        if id(t) in ids:
            return ids[id(t)]
        name = names.get(id(t))
        if name is None:
            name = getattr(t, "name", None)
        label = [name if isinstance(name, str) else "leaf"]
        if show_shapes:
            label.append(_meta(t.shape, t.dtype))
        if show_grads:
            label.append(_grad_line(None if t.grad is None else _norm(t.grad.array, t.grad._be)))
        return add("leaf", "\n".join(label), id(t))

    if tensor.grad_fn is None:
        leaf(tensor)
        lines.append("}")
        return "\n".join(lines) + "\n"

    order, out_meta = _walk(tensor.grad_fn)
    out_meta[id(tensor.grad_fn)] = (tensor.shape, tensor.dtype)
    if show_grads and not any(hasattr(node, "_grad_norm") for node in order):
        raise RuntimeError(
            "to_dot(show_grads=True): no gradient norms were recorded for this graph; run its "
            "backward inside `with gradflow.viz.record_grads():` first")
    for node in order:
        label = [node.name]
        if show_shapes:
            label.append(_meta(*out_meta[id(node)]))
        if show_grads:
            label.append(_grad_line(getattr(node, "_grad_norm", None)))
        add("op", "\n".join(label), id(node))
    for node in order:
        for edge, (shape, dtype) in zip(node._next, node._in_meta):
            if edge is None:
                label = f"const\n{_meta(shape, dtype)}" if show_shapes else "const"
                src = add("const", label)
            elif isinstance(edge, Function):
                src = ids[id(edge)]
            else:
                src = leaf(edge)
            lines.append(f"  {src} -> {ids[id(node)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_FORMATS = {".svg": "svg", ".png": "png"}


def render(tensor, path, **to_dot_kwargs):
    """Write the graph of ``tensor`` to ``path`` as SVG or PNG (by its suffix) with Graphviz's
    ``dot`` program; keyword arguments go to :func:`to_dot`. Returns the path."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"render: the path must end in .svg or .png, got {str(path)!r}")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            "render: the Graphviz 'dot' program was not found on PATH. Install Graphviz "
            "(apt-get install graphviz, brew install graphviz, or conda install graphviz), or "
            "use gradflow.viz.to_dot() and render the source elsewhere.")
    source = to_dot(tensor, **to_dot_kwargs)
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=source.encode(),
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"render: dot failed: {done.stderr.decode(errors='replace').strip()}")
    return path
