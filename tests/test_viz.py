import re
import shutil

import pytest

import gradflow as gf
from gradflow import viz
from gradflow.autograd.grad_mode import state


def parse(dot):
    """(labels by node id, edges as (src label, dst label)) of to_dot's output."""
    labels = dict(re.findall(r'^  (n\d+) \[label="((?:[^"\\]|\\.)*)"', dot, re.M))
    edges = [(labels[a], labels[b]) for a, b in re.findall(r"^  (n\d+) -> (n\d+);", dot, re.M)]
    return labels, edges


def small_graph():
    x = gf.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # needs no grad
    w = gf.ones((3,), requires_grad=True)
    b = gf.zeros((3,), requires_grad=True)
    return x, w, b, (x * w + b).sum()


def test_nodes_edges_shapes_and_param_names():
    x, w, b, y = small_graph()
    labels, edges = parse(viz.to_dot(y, params={"w": w, "b": b}))
    assert sorted(labels.values()) == sorted([
        "Sum\\n() float32", "Add\\n(2, 3) float32", "Mul\\n(2, 3) float32",
        "w\\n(3,) float32", "b\\n(3,) float32", "const\\n(2, 3) float32"])
    assert sorted(edges) == sorted([
        ("const\\n(2, 3) float32", "Mul\\n(2, 3) float32"),
        ("w\\n(3,) float32", "Mul\\n(2, 3) float32"),
        ("Mul\\n(2, 3) float32", "Add\\n(2, 3) float32"),
        ("b\\n(3,) float32", "Add\\n(2, 3) float32"),
        ("Add\\n(2, 3) float32", "Sum\\n() float32")])


def test_params_as_pairs_and_leaf_name_attribute_without_shapes():
    class Named(gf.Tensor):
        pass

    w = Named([1.0, 2.0], requires_grad=True)
    w.name = "weight"
    v = gf.ones((2,), requires_grad=True)
    labels, _ = parse(viz.to_dot((w * v).sum(), show_shapes=False, params=[("v", v)]))
    assert sorted(labels.values()) == ["Mul", "Sum", "v", "weight"]


def test_shared_leaf_is_one_node_with_two_edges():
    x = gf.ones((2,), requires_grad=True)
    labels, edges = parse(viz.to_dot((x * x).sum(), show_shapes=False))
    assert sorted(labels.values()) == ["Mul", "Sum", "leaf"]
    assert edges.count(("leaf", "Mul")) == 2


def test_leaf_root():
    x = gf.ones((2,), requires_grad=True)
    labels, edges = parse(viz.to_dot(x, params={"x": x}))
    assert list(labels.values()) == ["x\\n(2,) float32"] and edges == []


def test_grad_norms_after_backward():
    x = gf.ones((4,), requires_grad=True)
    y = (x * 3).sum()
    with viz.record_grads():
        y.backward()  # frees the saved tensors; the nodes stay walkable
    labels, _ = parse(viz.to_dot(y, show_grads=True, show_shapes=False, params={"x": x}))
    # Sum gets 1; Mul gets ones(4) (norm 2); x.grad = 3 * ones(4) (norm 6); 3 is a constant.
    assert sorted(labels.values()) == sorted(
        ["Sum\\n‖ḡ‖ = 1", "Mul\\n‖ḡ‖ = 2", "x\\n‖ḡ‖ = 6", "const"])


def test_show_grads_without_recorded_norms_raises():
    x = gf.ones((2,), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="record_grads"):
        viz.to_dot(y, show_grads=True)


def test_record_grads_chains_and_restores_the_observer():
    seen = []
    state.grad_observer = lambda node, g: seen.append(node.name)
    try:
        x = gf.ones((2,), requires_grad=True)
        with viz.record_grads():
            (x * 2).sum().backward()
        assert state.grad_observer is not None and seen == ["Sum", "Mul"]
    finally:
        state.grad_observer = None
    with viz.record_grads():
        pass
    assert state.grad_observer is None


def test_deep_chain_is_walked_iteratively():
    x = gf.ones((1,), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    labels, edges = parse(viz.to_dot(y, show_shapes=False))
    assert list(labels.values()).count("Mul") == 5000
    assert edges.count(("Mul", "Mul")) == 4999


def test_labels_are_escaped():
    x = gf.ones((2,), requires_grad=True)
    name = 'a "quoted"\\name\nline 2'
    dot = viz.to_dot(x.sum(), show_shapes=False, params={name: x})
    assert '[label="a \\"quoted\\"\\\\name\\nline 2",' in dot


def test_render_svg_and_png(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz 'dot' is not installed (apt-get install graphviz)")
    x = gf.ones((2,), requires_grad=True)
    y = (x * 2).sum()
    with viz.record_grads():
        y.backward()
    svg = viz.render(y, tmp_path / "g.svg", show_grads=True, params={'odd "name" \\': x})
    png = viz.render(y, str(tmp_path / "g.png"))
    assert b"<svg" in svg.read_bytes() and b"Mul" in svg.read_bytes()
    assert png.read_bytes().startswith(b"\x89PNG")


def test_render_without_dot_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    x = gf.ones((2,), requires_grad=True)
    with pytest.raises(RuntimeError, match="Graphviz 'dot' program was not found.*install"):
        viz.render(x.sum(), tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_render_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=".svg or .png"):
        viz.render(gf.ones((2,), requires_grad=True).sum(), tmp_path / "g.pdf")


def test_module_parameter_names():
    if not hasattr(gf.nn, "Linear"):
        pytest.skip("gradflow.nn.Linear is not available yet")
    model = gf.nn.Linear(3, 2)
    params = dict(model.named_parameters())
    labels, _ = parse(viz.to_dot(model(gf.ones((4, 3))).sum(), params=params))
    names = {label.split("\\n")[0] for label in labels.values()}
    assert set(params) <= names


def test_module_parameters_are_named_without_and_with_params():
    from gradflow import nn

    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    out = model(gf.randn(4, 3)).sum()
    plain = gf.viz.to_dot(out)
    assert "weight" in plain and "bias" in plain
    assert "leaf" not in plain  # every parameter carries its attribute name
    full = gf.viz.to_dot(out, params=model)
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert name in full
