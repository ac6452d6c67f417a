from types import SimpleNamespace

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd.grad_mode import state
from gradflow.ops.linalg import MatMul
from gradflow.profiler import profile


def mlp(sizes, batch, act, x_requires_grad):
    gf.manual_seed(0)
    x = gf.randn(batch, sizes[0])
    x.requires_grad = x_requires_grad
    labels = gf.randint(0, sizes[-1], (batch,))
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        w = gf.randn(n_out, n_in) * (n_in ** -0.5)
        w.requires_grad = True
        layers.append((w, gf.zeros((n_out,), requires_grad=True)))

    def step():
        h = x
        for i, (w, b) in enumerate(layers):
            h = F.linear(h, w, b)
            if i < len(layers) - 1:
                h = act(h)
        F.cross_entropy(h, labels, reduction="sum").backward()

    return step


def test_two_layer_mlp_flops_exactly():
    B, I, H, O = 8, 5, 7, 3
    step = mlp([I, H, O], B, F.sigmoid, x_requires_grad=True)
    with profile() as prof:
        step()
    flops = {key: s.flops for key, s in prof.stats.items()}
    # Documented rules: Linear 2*in*out per row + 1 per output for the bias; MatMul 2*m*n*k;
    # elementwise 1 per output; reductions and the cross-entropy kernels 1 per input element.
    assert flops == {
        ("Linear", "forward"): (2 * I * H + H) * B + (2 * H * O + O) * B,
        ("Sigmoid", "forward"): B * H,
        ("CrossEntropy", "forward"): B * O,
        ("Sum", "forward"): B,
        ("Reshape", "backward"): 0,  # Sum's backward: reshape and broadcast the scalar
        ("BroadcastTo", "backward"): 0,
        ("CrossEntropyBackward", "backward"): B * O,
        # dX and dW of both layers: g (B,O) @ W2 (O,H), g^T (O,B) @ h (B,H), and so on
        ("MatMul", "backward"): 2 * B * O * H * 2 + 2 * B * H * I * 2,
        ("SumTo", "backward"): B * O + B * H,  # the bias gradients
        ("SigmoidBackward", "backward"): B * H,
    }
    s = prof.summary()
    assert s["forward"]["flops"] == 2 * B * (I * H + H * O) + B * (2 * H + 2 * O + 1)
    assert s["backward"]["flops"] == 4 * B * (I * H + H * O) + B * (2 * O + 2 * H)
    assert s["forward"]["calls"] == 5 and s["backward"]["calls"] == 10


def test_mlp_backward_costs_about_twice_forward():
    step = mlp([64, 128, 128, 10], 32, F.relu, x_requires_grad=True)
    step()  # warm up
    with profile() as prof:
        step()
    s = prof.summary()
    assert 1.95 < s["backward_forward_flop_ratio"] < 2.05
    assert s["backward_forward_time_ratio"] == s["backward"]["time"] / s["forward"]["time"] > 0


def test_ops_run_by_backward_count_as_backward():
    x = gf.ones((3,), requires_grad=True)
    with profile() as prof:
        (x * x).sum().backward()
    calls = {key: s.calls for key, s in prof.stats.items()}
    assert calls[("Mul", "forward")] == 1 and calls[("Mul", "backward")] == 2
    assert ("Sum", "forward") in calls and ("Sum", "backward") not in calls


def test_matmul_reads_the_transpose_flags():
    m, k, n = 2, 3, 5
    a, b = gf.ones((k, m)), gf.ones((n, k))
    with profile() as prof:
        MatMul.apply(a, b, trans_a=True, trans_b=True)  # (m, k) @ (k, n)
        gf.matmul(gf.ones((4, m, k)), gf.ones((k, n)))  # batch of 4
    assert prof.stats[("MatMul", "forward")].flops == 2 * m * n * k * (1 + 4)


def test_bytes_are_inputs_plus_output():
    a = gf.ones((3, 4))
    with profile() as prof:
        a + gf.ones((4,))
    assert prof.stats[("Add", "forward")].bytes == (12 + 4 + 12) * 4


def test_table_is_sorted_and_lists_totals():
    x = gf.ones((50, 50), requires_grad=True)
    with profile() as prof:
        gf.matmul(x, x).exp().sum().backward()
    for key in ("time", "flops", "calls", "bytes"):
        rows = prof.table(sort_by=key).splitlines()
        assert rows[0].split() == ["op", "phase", "calls", "time", "(ms)", "FLOPs", "bytes"]
        ops = [(r.split()[0], r.split()[1]) for r in rows[2:-3]]
        values = [getattr(prof.stats[op], key) for op in ops]
        assert sorted(ops) == sorted(prof.stats) and values == sorted(values, reverse=True)
        assert [r.split()[:2] for r in rows[-2:]] == [["total", "forward"], ["total", "backward"]]
    by_op = [r.split()[:3] for r in prof.table(sort_by="op").splitlines()[2:-3]]
    assert by_op == sorted(by_op) and ["MatMul", "backward", "2"] in by_op
    with pytest.raises(ValueError, match="sort_by"):
        prof.table(sort_by="speed")


def test_no_recording_outside_and_no_nesting():
    prof = profile()
    with pytest.raises(RuntimeError, match="already active"):
        with prof:
            gf.ones((2,)) + 1
            with profile():
                pass
    assert state.profiler is None
    gf.ones((2,)) + 1
    assert [s.calls for s in prof.stats.values()] == [1]


def test_non_cpu_backend_is_synchronised_around_each_op():
    syncs = []
    stream = SimpleNamespace(synchronize=lambda: syncs.append(1))
    be = SimpleNamespace(name="cuda", xp=SimpleNamespace(cuda=SimpleNamespace(
        get_current_stream=lambda: stream)))
    prof = profile()
    a = np.ones(3, np.float32)
    prof.end(prof.begin(be), SimpleNamespace(name="Exp", be=be), [a], a)
    assert len(syncs) == 2 and prof.stats[("Exp", "forward")].flops == 3
