"""gf.jit: replays are bitwise the eager steps; what it cannot replay runs eagerly or raises."""

import re
import threading
import warnings

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from conftest import requires_cuda


def batches(n, batch=32, features=64, classes=10, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [(gf.tensor(rng.standard_normal((batch, features)).astype(dtype)),
             gf.tensor(rng.integers(0, classes, batch))) for _ in range(n)]


def mlp(seed=0, dropout=0.0):
    gf.manual_seed(seed)
    layers = [nn.Linear(64, 32), nn.Sigmoid()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(32, 10))


def train_step(model, opt, zero_first=True):
    def step(x, y):
        if zero_first:
            opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if not zero_first:
            opt.zero_grad()
        return loss

    return step


def state_of(model, opt):
    """Everything a step leaves behind, as host arrays: parameters, .grad, optimizer state."""
    out = []
    for p in model.parameters():
        out.append(p.array.copy())
        out.append(None if p.grad is None else p.grad.array.copy())
        for k, v in sorted(opt.state.get(p, {}).items()):
            out.append(np.array(v))
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
        else:
            assert x.dtype == y.dtype and x.shape == y.shape
            assert np.array_equal(x, y, equal_nan=True), np.abs(x - y).max()


def run_both(make_opt, steps=25, dropout=0.0, zero_first=True, data=None, between=None):
    """The same training run eagerly and under gf.jit: the losses and states after each step."""
    data = data or batches(5)
    runs = []
    for jitted in (False, True):
        model = mlp(dropout=dropout)
        opt = make_opt(model.parameters())
        step = train_step(model, opt, zero_first)
        if jitted:
            step = gf.jit(step)
        gf.manual_seed(123)  # dropout's draws
        losses, states = [], []
        for i in range(steps):
            if between is not None:
                between(i, model, opt)
            x, y = data[i % len(data)]
            losses.append(step(x, y).item())
            states.append(state_of(model, opt))
        runs.append((losses, states, step))
    (le, se, _), (lj, sj, jitted) = runs
    assert le == lj
    for a, b in zip(se, sj):
        assert_same(a, b)
    return jitted


def replayed(jitted):
    return [p for variants in jitted._plans.values() for p in variants if p != "eager"]


@pytest.mark.parametrize("make_opt", [
    lambda ps: gf.optim.SGD(ps, lr=0.05),
    lambda ps: gf.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
    lambda ps: gf.optim.Adam(ps, lr=1e-2),
    lambda ps: gf.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: gf.optim.Adam(ps, lr=1e-2, amsgrad=True),
    lambda ps: gf.optim.RMSprop(ps, lr=1e-3, momentum=0.5),
], ids=["sgd", "sgd-nesterov-wd", "adam", "adamw", "adam-amsgrad", "rmsprop"])
def test_training_steps_bitwise_eager(make_opt):
    jitted = run_both(make_opt)
    assert replayed(jitted)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_replays_take_every_large_buffer_from_the_cache(optimizer):
    """After the first replays, a replay's kernels allocate no new large output buffer: each one
    (activations, gradients, the optimizer's temporaries) is one an earlier replay freed."""
    from gradflow import _C

    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    opt = (gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
           else gf.optim.Adam(model.parameters(), lr=1e-3))
    step = gf.jit(train_step(model, opt))
    (x, y), = batches(1, batch=256, features=784)
    for _ in range(4):
        step(x, y)
    assert replayed(step)
    before = _C.fresh_buffers()
    for _ in range(3):
        step(x, y)
    assert _C.fresh_buffers() == before


def test_zero_grad_at_the_end_of_the_step():
    assert replayed(run_both(lambda ps: gf.optim.SGD(ps, lr=0.1, momentum=0.9),
                             zero_first=False))


def test_learning_rate_changed_between_steps_is_read_at_replay():
    def schedule(i, model, opt):
        for g in opt.param_groups:
            g["lr"] = 0.1 / (1 + i)

    run_both(lambda ps: gf.optim.SGD(ps, lr=0.1, momentum=0.9), between=schedule)


def test_scheduler_and_adam_bias_correction():
    scheds = {}

    def step_scheduler(i, model, opt):
        if opt not in scheds:
            scheds[opt] = gf.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        else:
            scheds[opt].step()

    run_both(lambda ps: gf.optim.Adam(ps, lr=1e-2), between=step_scheduler)
    assert [o.param_groups[0]["lr"] for o in scheds] == [1e-2 * 0.5 ** 8] * 2


def test_dropout_draws_advance_the_generator_as_eagerly():
    jitted = run_both(lambda ps: gf.optim.SGD(ps, lr=0.05), dropout=0.3)
    assert replayed(jitted)
    # and the generator is left where the eager run leaves it
    assert gf.random.generator().random() == pytest.approx(gf.random.generator().random(), abs=1)


def test_dropout_generator_state_after_replays():
    model = mlp(dropout=0.5)
    step = gf.jit(lambda x: model(x).sum())
    x = batches(1)[0][0]
    gf.manual_seed(7)
    eager = [model(x).sum().item() for _ in range(4)]
    after_eager = gf.random.generator().random()
    gf.manual_seed(7)
    jitted = [step(x).item() for _ in range(4)]
    assert jitted == eager and gf.random.generator().random() == after_eager


def test_train_eval_switches():
    def modes(i, model, opt):
        model.train(i % 3 != 2)

    jitted = run_both(lambda ps: gf.optim.SGD(ps, lr=0.05), dropout=0.2, between=modes)
    assert len(replayed(jitted)) >= 2  # a record for each mode, both kept


def test_short_last_batch_traces_again():
    data = batches(3) + [tuple(t[:7] for t in batches(1, seed=9)[0])]
    jitted = run_both(lambda ps: gf.optim.SGD(ps, lr=0.05, momentum=0.9), data=data, steps=12)
    shapes = {key[0][0] for key in jitted._plans}
    assert shapes == {(32, 64), (7, 64)}


def test_float64_and_gradient_accumulation_over_two_batches():
    gf.manual_seed(0)
    data = batches(4, dtype=np.float64)
    results = []
    for jit in (False, True):
        model = mlp().to(gf.float64)
        opt = gf.optim.SGD(model.parameters(), lr=0.05)

        def step(a, b):
            opt.zero_grad()
            for x, y in (a, b):
                F.cross_entropy(model(x), y).backward()
            opt.step()

        step = gf.jit(step) if jit else step
        out = []
        for i in range(8):
            step(data[i % 4], data[(i + 1) % 4])
            out.append(state_of(model, opt))
        results.append(out)
    for a, b in zip(*results):
        assert_same(a, b)


def test_returns_what_the_function_returns():
    model = mlp()
    opt = gf.optim.SGD(model.parameters(), lr=0.05)

    @gf.jit
    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        return {"loss": loss, "logits": logits, "weight": model[0].weight, "n": 3}

    x, y = batches(1)[0]
    first = step(x, y)
    for _ in range(3):
        out = step(x, y)
    assert out["n"] == 3 and out["weight"] is model[0].weight
    assert out["loss"].shape == () and out["logits"].shape == (32, 10)
    assert out["loss"] is not first["loss"]
    assert isinstance(out["loss"].item(), float)


def test_transformer_block_with_adamw():
    def block():
        gf.manual_seed(1)
        return nn.ModuleDict({"emb": nn.Embedding(20, 16), "ln": nn.LayerNorm(16),
                              "q": nn.Linear(16, 16), "k": nn.Linear(16, 16),
                              "v": nn.Linear(16, 16), "out": nn.Linear(16, 20)})

    def forward(m, tokens, targets):
        h = m["ln"](m["emb"](tokens))
        q, k, v = m["q"](h), m["k"](h), m["v"](h)
        att = (q @ k.transpose(-2, -1) / 4.0).softmax(-1)
        h = h + F.gelu(att @ v)
        return F.cross_entropy(m["out"](h).reshape(-1, 20), targets.reshape(-1))

    rng = np.random.default_rng(0)
    tokens = [gf.tensor(rng.integers(0, 20, (4, 8))) for _ in range(3)]
    results = []
    for jit in (False, True):
        m = block()
        opt = gf.optim.AdamW(m.parameters(), lr=1e-2)

        def step(tok, tgt):
            opt.zero_grad()
            loss = forward(m, tok, tgt)
            loss.backward()
            opt.step()
            return loss

        if jit:
            step = gf.jit(step)
        with warnings.catch_warnings():
            warnings.simplefilter("error", gf.JitWarning)
            losses = [step(tokens[i % 3], tokens[(i + 1) % 3]).item() for i in range(10)]
        results.append((losses, state_of(m, opt)))
    assert results[0][0] == results[1][0]
    assert_same(results[0][1], results[1][1])


def test_forward_only_under_no_grad():
    model = mlp()
    predict = gf.jit(lambda x: model(x).argmax(1))
    x = batches(1)[0][0]
    with gf.no_grad():
        for _ in range(3):
            assert np.array_equal(predict(x).numpy(), model(x).argmax(1).numpy())
    # with grad mode on, another record
    for _ in range(2):
        assert np.array_equal(predict(x).numpy(), model(x).argmax(1).detach().numpy())


# ---- what cannot be replayed ---------------------------------------------------------------------
def test_item_inside_runs_eagerly_with_a_warning():
    model = mlp()
    calls = []

    @gf.jit
    def step(x):
        out = model(x).sum()
        calls.append(1)
        if out.item() > 0:  # Python control flow on a value
            return out * 2
        return out

    x = batches(1)[0][0]
    with pytest.warns(gf.JitWarning, match="read on the host"):
        step(x)
    for _ in range(3):
        step(x)
    assert len(calls) == 4  # every call ran the Python function


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: t.tolist(), lambda t: bool(t),
                                  lambda t: t.detach().numpy(), lambda t: float(t), repr],
                         ids=["item", "tolist", "bool", "numpy", "float", "repr"])
def test_host_reads_raise_when_strict(read):
    w = gf.tensor([1.5], requires_grad=True)

    @gf.jit(strict=True)
    def f(x):
        y = (x * w).sum()
        read(y)
        return y

    with pytest.raises(gf.JitError, match="host"):
        f(gf.tensor([2.0]))


def test_value_dependent_shapes_are_refused():
    @gf.jit(strict=True)
    def f(x):
        return gf.masked_select(x, x > 0).sum()

    with pytest.raises(gf.JitError):
        f(gf.tensor([1.0, -2.0, 3.0]))


def test_tensor_made_from_host_data_inside_is_refused():
    source = [np.ones(3, np.float32)]

    @gf.jit(strict=True)
    def f(x):
        return x + gf.tensor(source[0])  # would be a stale constant at replay

    with pytest.raises(gf.JitError, match="no recorded call made"):
        f(gf.tensor([1.0, 2.0, 3.0]))


def test_replaced_parameter_traces_again():
    model = nn.Linear(3, 2)
    f = gf.jit(lambda x: model(x))
    x = gf.tensor(np.ones((4, 3), np.float32))
    f(x), f(x)
    with gf.no_grad():
        model.weight.array = np.full((2, 3), 2.0, np.float32)  # rebinds the array
    assert np.array_equal(f(x).detach().numpy(), model(x).detach().numpy())
    assert len(replayed(f)) == 2


def test_replaced_global_model_traces_again():
    g = {"model": nn.Linear(3, 2)}
    exec("def f(x):\n    return model(x)", g)
    f = gf.jit(g["f"])
    x = gf.tensor(np.ones((4, 3), np.float32))
    f(x), f(x)
    g["model"] = nn.Linear(3, 2)
    assert np.array_equal(f(x).detach().numpy(), g["model"](x).detach().numpy())


def test_in_place_change_of_an_input_replays():
    @gf.jit
    def f(x, y):
        x.add_(y)
        return x * 2

    a, b = gf.tensor([1.0, 2.0]), gf.tensor([0.5, 0.5])
    for i in range(4):
        out = f(a, b)
        assert np.array_equal(a.numpy(), [1.0 + 0.5 * (i + 1), 2.0 + 0.5 * (i + 1)])
        assert np.array_equal(out.numpy(), a.numpy() * 2)


def test_non_tensor_arguments_are_part_of_the_signature():
    f = gf.jit(lambda x, scale: x * scale)
    x = gf.tensor([1.0, 2.0])
    assert f(x, 2.0).tolist() == [2.0, 4.0] and f(x, 2.0).tolist() == [2.0, 4.0]
    assert f(x, 3.0).tolist() == [3.0, 6.0]


def test_two_threads_each_with_their_own_jitted_step():
    data = batches(4)

    def setup(index):  # (in this thread: initialisation draws from the global generator)
        model = mlp(seed=index)
        return model, gf.optim.Adam(model.parameters(), lr=1e-2)

    def run(jit, model, opt, out, index):
        step = train_step(model, opt)
        step = gf.jit(step) if jit else step
        out[index] = [step(*data[i % 4]).item() for i in range(30)] + [state_of(model, opt)]

    eager = {}
    for i in range(2):
        run(False, *setup(i), eager, i)
    jitted = {}
    threads = [threading.Thread(target=run, args=(True, *setup(i), jitted, i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert eager[i][:-1] == jitted[i][:-1]
        assert_same(eager[i][-1], jitted[i][-1])


def test_eager_thread_unaffected_while_another_traces():
    x = gf.tensor(np.ones((8, 8), np.float32), requires_grad=True)
    errors = []
    stop = threading.Event()

    def eager():
        try:
            while not stop.is_set():
                y = (x * 2.0).sigmoid().sum()
                assert y.item() > 0
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=eager)
    t.start()
    try:
        f = gf.jit(lambda a: (a * 3.0).tanh().sum(), strict=True)
        for _ in range(20):
            f.__wrapped__  # (the function itself stays reachable)
            f._plans.clear()  # trace every time
            f(gf.tensor(np.ones((8, 8), np.float32)))
    finally:
        stop.set()
        t.join()
    assert not errors


# ---- CUDA: replays through CUDA graphs ------------------------------------------------------------
def cuda_run(jit, make_opt, dropout, steps=12):
    data = [(x.to("cuda"), y.to("cuda")) for x, y in batches(3)]
    model = mlp(dropout=dropout).to("cuda")
    opt = make_opt(model.parameters())
    step = train_step(model, opt)
    step = gf.jit(step) if jit else step
    gf.manual_seed(5)
    losses, kept = [], []
    for i in range(steps):
        if i == steps - 3:
            model.eval()
        loss = step(*data[i % 3])
        kept.append(loss)
        losses.append(loss.item())
    states = [a if a is None else a.get() for a in
              [p.array for p in model.parameters()] + [p.grad.array for p in model.parameters()]]
    return losses, states, [k.item() for k in kept], step


@requires_cuda
@pytest.mark.parametrize("make_opt", [lambda ps: gf.optim.SGD(ps, lr=0.05, momentum=0.9),
                                      lambda ps: gf.optim.AdamW(ps, lr=1e-2)], ids=["sgd", "adamw"])
def test_cuda_graph_replays_match_eager(make_opt):
    eager = cuda_run(False, make_opt, dropout=0.25)
    jitted = cuda_run(True, make_opt, dropout=0.25)
    assert eager[0] == jitted[0]
    assert jitted[2] == jitted[0]  # a returned loss is the caller's: later steps leave it alone
    for a, b in zip(eager[1], jitted[1]):
        assert np.array_equal(a, b)
    # (the first step's record, from before the gradients existed, is never replayed)
    plans = [p for p in replayed(jitted[3]) if p.source.startswith("def launch")]
    assert len(plans) == 2  # training and eval
    # the live steps (the dropout draws, the update) run between the graphs
    train_plan = [p for p in plans if "_G1.launch()" in p.source]
    assert train_plan and "_copyto(" in train_plan[0].source


@requires_cuda
def test_cuda_in_place_change_of_an_input_replays_without_graphs():
    f = gf.jit(lambda x, y: x.add_(y) * 2)
    a, b = gf.tensor([1.0, 2.0], device="cuda"), gf.tensor([0.5, 0.5], device="cuda")
    for i in range(4):
        out = f(a, b)
        assert a.tolist() == [1.0 + 0.5 * (i + 1), 2.0 + 0.5 * (i + 1)]
        assert out.tolist() == [2 * v for v in a.tolist()]
    assert replayed(f)[0].source.startswith("def replay")


@requires_cuda
def test_stand_in_stream_capture_records_and_relaunches():
    import cupy as cp

    if "stand-in" not in cp.__version__:
        pytest.skip("checks the CUDA stand-in itself")
    a = cp.arange(4, dtype=cp.float32)
    s = cp.cuda.Stream()
    with s:
        s.begin_capture()
        b = a * 2 + 1
        assert np.isnan(b._a).all()  # captured, not done
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="capturing"):
            b.get()
        a += 1  # in place: not done either
        graph = s.end_capture()
    assert a.get().tolist() == [0, 1, 2, 3]
    graph.launch()
    assert b.get().tolist() == [1, 3, 5, 7] and a.get().tolist() == [1, 2, 3, 4]
    graph.launch()
    assert b.get().tolist() == [3, 5, 7, 9] and a.get().tolist() == [2, 3, 4, 5]
    with pytest.raises(RuntimeError, match="default"):
        cp.cuda.Stream.null.begin_capture()


def test_random_op_inside_is_refused():
    @gf.jit(strict=True)
    def f(x):
        return x + gf.randn(3)

    with pytest.raises(gf.JitError):
        f(gf.tensor([1.0, 2.0, 3.0]))


def test_hooks_are_refused():
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    w.register_hook(lambda g: g * 2)

    @gf.jit(strict=True)
    def f(x):
        (x * w).sum().backward()

    with pytest.raises(gf.JitError, match="hook"):
        f(gf.tensor([1.0, 1.0]))


def test_layout_and_aliasing_of_inputs_are_part_of_the_signature():
    w = gf.tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    f = gf.jit(lambda a, b: a @ w + b.sum())
    x = gf.tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    xt = gf.tensor(np.arange(12, dtype=np.float32).reshape(3, 4)).t()  # same shape, transposed
    y = gf.tensor(np.ones((4, 3), np.float32))
    for a, b in [(x, y), (x, y), (xt, y), (xt, y), (x, x), (x, x), (x, y)]:
        assert np.array_equal(f(a, b).numpy(), (a @ w + b.sum()).numpy())
    assert len(f._plans) == 3


def test_default_dtype_change_records_again():
    f = gf.jit(lambda x: x + gf.zeros(3))
    x = gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64)
    f(x), f(x)
    gf.set_default_dtype(gf.float64)
    try:
        assert f(x).dtype == (x + gf.zeros(3)).dtype
    finally:
        gf.set_default_dtype(gf.float32)


def test_gradients_of_inputs_and_accumulation_into_grad():
    def make():
        return gf.tensor([[1.0, 2.0], [3.0, -4.0]], requires_grad=True)

    def f(x, w):
        (x @ w).sigmoid().sum().backward()  # w.grad accumulates over the calls
        return x.grad

    we, wj, fj = make(), make(), gf.jit(f)
    for i in range(5):
        xe = gf.tensor([[0.1 * i, 0.2]], requires_grad=True)
        xj = gf.tensor([[0.1 * i, 0.2]], requires_grad=True)
        ge, gj = f(xe, we), fj(xj, wj)
        assert gj is xj.grad and np.array_equal(ge.numpy(), gj.numpy())
        assert np.array_equal(we.grad.numpy(), wj.grad.numpy())
    assert len(replayed(fj)) == 2  # w.grad None, then accumulated into


def test_batchnorm_running_statistics_and_zero_grad_to_zeros():
    data = batches(3)
    results = []
    for jit in (False, True):
        gf.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
        opt = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad(set_to_none=False)  # the same .grad arrays, zeroed in place
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        step = gf.jit(step) if jit else step
        losses = [step(*data[i % 3]).item() for i in range(10)]
        model.eval()
        losses.append(step(*data[0]).item())  # eval: the running statistics
        results.append((losses, [b.numpy().copy() for b in model.buffers()], state_of(model, opt)))
    assert results[0][0] == results[1][0]
    assert_same(results[0][1], results[1][1])
    assert_same(results[0][2], results[1][2])


def test_nested_jitted_function_is_part_of_the_outer_record():
    inner = gf.jit(lambda x: x.sigmoid() * 2)
    outer = gf.jit(lambda x: inner(x).sum())
    x = gf.tensor([0.5, -1.0])
    for _ in range(3):
        assert outer(x).item() == (x.sigmoid() * 2).sum().item()
    assert len(replayed(outer)) == 1 and not inner._plans


def test_an_exception_inside_leaves_no_record():
    fail = [True]

    @gf.jit
    def f(x):
        y = x * 2
        if fail[0]:
            raise ValueError("boom")
        return y

    x = gf.tensor([1.0])
    with pytest.raises(ValueError):
        f(x)
    assert not f._plans and gf._jit.trace.active == 0
    fail[0] = False
    assert f(x).tolist() == [2.0] and f(x).tolist() == [2.0]


def test_masked_writes_replay():
    f = gf.jit(lambda x: gf.masked_fill(x, x < 0, 0.0) * 2)
    for v in ([1.0, -2.0, 3.0], [-1.0, 2.0, -3.0], [4.0, 5.0, -6.0]):
        x = gf.tensor(v)
        assert f(x).tolist() == [2 * max(a, 0.0) for a in v]
    assert replayed(f)


@requires_cuda
def test_cuda_kernels_that_cannot_be_captured_replay_without_graphs():
    gf.cuda.check_labels(True)  # cross-entropy then reads the labels on the host
    try:
        sgd = lambda ps: gf.optim.SGD(ps, lr=0.05)  # noqa: E731
        eager, jitted = cuda_run(False, sgd, 0.0), cuda_run(True, sgd, 0.0)
    finally:
        gf.cuda.check_labels(False)
    assert eager[0] == jitted[0]
    for a, b in zip(eager[1], jitted[1]):
        assert np.array_equal(a, b)
    plans = replayed(jitted[3])
    assert plans and all(p.source.startswith("def replay") for p in plans)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("view", [False, True], ids=["labels", "reshaped_labels"])
def test_cross_entropy_replay_checks_the_ignored_label_first(device, view):
    # cross_entropy takes a one-kernel path when no label is ignore_index: a replay checks that
    # again (from the labels, before any kernel) and traces again when a label is ignored.
    gf.manual_seed(0)
    lin = nn.Linear(4, 3).to(device)
    opt = gf.optim.SGD(lin.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(lin(x), y.reshape(-1) if view else y)
        loss.backward()
        opt.step()
        return loss

    jitted = gf.jit(step)
    x = gf.tensor(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32), device=device)
    plain = gf.tensor([0, 1, 2, 1, 0, 2], device=device)
    ignored = gf.tensor([0, -100, 2, -100, 0, 2], device=device)
    for y in (plain, plain, plain, ignored, plain, ignored):
        gf.manual_seed(0)
        ref = nn.Linear(4, 3).to(device)
        with gf.no_grad():
            ref.weight.copy_(lin.weight)
            ref.bias.copy_(lin.bias)
        ref_opt = gf.optim.SGD(ref.parameters(), lr=0.1)
        expected = F.cross_entropy(ref(x), y)
        expected.backward()
        ref_opt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("error", gf.JitWarning)  # (both paths are recorded)
            got = jitted(x, y)
        assert got.item() == expected.item()
        assert np.array_equal(lin.weight.detach().numpy(), ref.weight.detach().numpy())
    plans = replayed(jitted)
    # the first record (before the gradients existed), then one for each path
    assert len(plans) == 3 and all("_V0" in p.source for p in plans)
    with pytest.raises(IndexError, match="labels must be in"):  # checked at the replay too
        jitted(x, gf.tensor([0, -100, 2, -5, 0, 2], device=device))


def test_index_checks_run_again_at_every_replay():
    # embedding and take raise on out-of-range indices (numpy would wrap negative ones): the
    # check is a step of the record, so a replay with bad indices raises as eager does.
    emb = nn.Embedding(5, 3)
    f = gf.jit(lambda t: emb(t).sum() + gf.take(emb.weight, t).sum())
    good = gf.tensor([0, 4, 2])
    for _ in range(3):
        f(good)
    for bad in ([0, -1, 2], [0, 5, 2]):
        with pytest.raises(IndexError, match="out of range"):
            f(gf.tensor(bad))
    assert replayed(f)


def test_a_value_read_back_from_an_array_function_is_refused():
    # numpy's reductions return scalars, which look like arrays: a branch on one is refused
    @gf.jit(strict=True)
    def f(x):
        xp = x._be.xp
        return x * 2 if bool(xp.any(xp.greater(x.array, 0))) else x

    with pytest.raises(gf.JitError, match="came back to Python"):
        f(gf.tensor([1.0, -2.0]))


def test_constant_steps_are_computed_once():
    # the seed gradient of a mean loss and the mean's 1/n read nothing the call passes: a CPU
    # replay has them computed already
    model = mlp()
    step = gf.jit(train_step(model, gf.optim.SGD(model.parameters(), lr=0.05)))
    for x, y in batches(3):
        step(x, y)
    for plan in replayed(step):
        lines = [x for x in plan.source.splitlines() if re.match(r"\s+(r\d+.* = |f\d+\()", x)]
        assert len(lines) < len(plan.rec.steps)
    run_both(lambda ps: gf.optim.SGD(ps, lr=0.05), steps=6)


def test_constants_the_function_returns_or_writes_stay_steps():
    def f(x):
        c = gf.zeros(3)
        y = x + c
        c += 1  # written after a step read it: the read must see zeros
        d = gf.ones(3) * 2
        return y * c, d

    jf = gf.jit(f)
    for v in ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]):
        out, d = jf(gf.tensor(v))
        assert out.tolist() == v and d.tolist() == [2.0] * 3
        d.array[...] = -1  # the caller owns what it got: the next replay is unaffected
    assert replayed(jf)


def test_large_constants_stay_steps():
    # a constant the size of a layer is not kept alive by the plan (numpy's own arrays and the
    # kernels' buffer-cache arrays alike)
    f = gf.jit(lambda x: x + gf.zeros(1).exp().expand(1 << 16) * 1.0)
    for _ in range(3):
        out = f(gf.ones(1 << 16))
    assert out.array.flags.writeable and float(out.sum().item()) == 2.0 * (1 << 16)
    (plan,) = replayed(f)
    assert all(not isinstance(v, np.ndarray) or v.nbytes < (1 << 16)
               for k, v in plan.rec.ns.items() if re.fullmatch(r"r\d+", k))
