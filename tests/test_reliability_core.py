"""The C core under memory pressure, threads, interpreter exit, hostile Python state and odd
arrays: each case ends as the right result or a clear Python exception, never a crash.

The cases that could crash run in a fresh interpreter each, so that a crash fails one test."""

import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

import gradflow as gf
from gradflow import _C

_SRC = os.path.dirname(os.path.dirname(os.path.abspath(gf.__file__)))


def run_py(code, timeout=120, env=None):
    """Runs ``code`` in a new interpreter that imports this gradflow; returns the completed
    process (a crash shows as a negative return code)."""
    full_env = {**os.environ, "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def assert_ok(p, expect=None):
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    if expect is not None:
        assert expect in p.stdout, p.stdout + p.stderr


# ---- a contiguous copy that cannot be allocated --------------------------------------------
# The process may use only a little more address space than it has: a copy of a big broadcast
# or transposed view must fail with MemoryError.
_LIMIT = """
import resource, numpy as np, gradflow as gf
from gradflow import _C

def vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

def limit(headroom):
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + headroom, resource.RLIM_INFINITY))

def expect_memory_error(f, *args, **kw):
    try:
        f(*args, **kw)
    except MemoryError:
        print("MemoryError")
    else:
        print("no error")
_C.exp(np.ones((1 << 16,), np.float32))  # the thread pool exists before the limit
"""


@pytest.mark.parametrize("case", [
    "_C.exp(big)", "_C.gelu(big)", "_C.tanh_backward(big, big)", "_C.sigmoid_backward(big_t, big)",
    "_C.pow_scalar(big, 3.0)", "gf.from_numpy(big).exp()",
])
def test_unary_copy_out_of_memory_raises(case):
    p = run_py(_LIMIT + f"""
big = np.broadcast_to(np.ones((1, 1 << 14), np.float32), (1 << 14, 1 << 14))  # 1 GiB as a copy
big_t = big.T  # a transposed view: also copied
limit(256 << 20)
expect_memory_error(lambda: {case})
""")
    assert_ok(p, "MemoryError")


def test_matmul_operand_copy_out_of_memory_raises():
    p = run_py(_LIMIT + """
a = np.broadcast_to(np.ones((1, 1), np.float32), (1, 1 << 28))  # 1 GiB as a copy
b = np.broadcast_to(np.ones((1, 1), np.float32), (1 << 28, 1))
limit(256 << 20)
expect_memory_error(_C.matmul, a, b)
""")
    assert_ok(p, "MemoryError")


def test_matmul_bias_copy_out_of_memory_raises():
    # The output (256 MiB) fits, the contiguous copy of the broadcast bias does not.
    p = run_py(_LIMIT + """
n = 1 << 26
a = np.ones((1, 1), np.float32)
b = np.broadcast_to(np.ones((1, 1), np.float32), (1, n))
bias = np.broadcast_to(np.ones(1, np.float32), (n,))
limit(400 << 20)
expect_memory_error(_C.matmul, a, b, bias=bias)
""")
    assert_ok(p, "MemoryError")


# ---- daemon threads inside a kernel at interpreter exit -------------------------------------
_DAEMONS = """
import threading, numpy as np
from gradflow import _C
x = np.ones(1 << 20, np.float32)
x2 = x.reshape(1024, 1024)
m = np.ones((256, 256), np.float32)
p = x.copy()
started = threading.Barrier(5)
def work():
    if WARM:
        KERNEL
    started.wait()
    while True:
        KERNEL
for _ in range(4):
    threading.Thread(target=work, daemon=True).start()
started.wait()
print("exiting")
"""


def _exit_under_daemons(kernel, warm):
    # Four threads keep running the kernel (with the GIL released) while the main thread
    # returns: the interpreter finalizes under them, several times over.
    code = _DAEMONS.replace("KERNEL", kernel).replace("WARM", str(warm))
    for _ in range(3):
        p = run_py(code)
        assert_ok(p, "exiting")
        assert "terminate" not in p.stderr


@pytest.mark.parametrize("kernel", [
    "_C.exp(x)", "_C.tanh_backward(x, x)", "_C.add(x, x)", "_C.sum(x)", "_C.softmax(x2, -1)",
    "_C.matmul(m, m)", "_C.matmul(m, m, bias=m[0])", "_C.sgd_step(p, x, None, 0.1)",
])
def test_daemon_thread_in_kernel_at_exit(kernel):
    _exit_under_daemons(kernel, warm=True)


def test_daemon_threads_first_kernel_call_at_exit():
    _exit_under_daemons("_C.exp(x)", warm=False)


# ---- mutable Python state the C core reads ---------------------------------------------------
def test_version_box_emptied_after_assignment():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    x._vbox.clear()
    with pytest.raises(RuntimeError, match="version"):
        y.sum().backward()
    z = gf.tensor([1.0, 2.0], requires_grad=True)
    z._vbox.append(3)
    with pytest.raises(RuntimeError, match="version"):
        z * z


def test_backend_replaced_while_apply_runs():
    p = run_py("""
import gc, types, numpy as np, gradflow as gf
from gradflow.autograd.function import Function
from gradflow.backend import cpu

class Swap(Function):
    def __init__(self):
        super().__init__()
        x._be = cpu                # drops the last reference to the backend x had
        gc.collect()
        junk = [types.SimpleNamespace(name="junk") for _ in range(1000)]
    @staticmethod
    def forward(ctx, a):
        return ctx.be.exp(a)
    @staticmethod
    def backward(ctx, g):
        return (g,)

x = gf.tensor([0.0, 1.0])
x._be = types.SimpleNamespace(**{k: getattr(cpu, k) for k in dir(cpu) if not k.startswith("__")})
y = Swap.apply(x)
print(np.allclose(y.data, np.exp([0.0, 1.0])), type(y._be).__name__)
""")
    assert_ok(p, "True SimpleNamespace")


def test_gradients_list_mutated_while_sent():
    # The first gradient's accumulation runs the backend's add (Python here), which empties
    # the list backward returned before the second gradient is read from it.
    p = run_py("""
import gc, types, numpy as np, gradflow as gf
from gradflow.autograd.function import Function
from gradflow.backend import cpu
held = {}
def add(a, b, out=None):
    held.pop("out", [None]).clear()
    gc.collect()
    return cpu.add(a, b)
be = types.SimpleNamespace(**{k: getattr(cpu, k) for k in dir(cpu) if not k.startswith("__")})
be.add = add

class Early(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b
    @staticmethod
    def backward(ctx, g):
        held["out"] = [g, g * 3]
        return held["out"]

class Late(Function):  # recorded after Early: its backward runs first
    @staticmethod
    def forward(ctx, a):
        return a * 1
    @staticmethod
    def backward(ctx, g):
        return (gf.Tensor(g.data.copy(), be),)

a = gf.tensor([1.0], requires_grad=True)
b = gf.tensor([2.0], requires_grad=True)
(Early.apply(a, b).sum() + Late.apply(a).sum()).backward()
print(a.grad.tolist(), b.grad.tolist())
""")
    assert_ok(p, "[2.0] [3.0]")


def test_save_indices_mutated_while_read():
    p = run_py("""
import gradflow as gf
from gradflow.autograd.function import Function

class Shrink:
    def __index__(self):
        idx.clear()
        return 0
idx = [Shrink(), 0, 0, 0]

class Op(Function):
    @staticmethod
    def forward(ctx, a):
        ctx._save_idx = idx
        return a * 2
    @staticmethod
    def backward(ctx, g):
        return (g * 2,)

a = gf.tensor([1.0], requires_grad=True)
try:
    Op.apply(a).sum().backward()
    print("grad", a.grad.tolist())
except (IndexError, RuntimeError, TypeError) as e:
    print("error", type(e).__name__)
""")
    assert_ok(p)
    assert "grad [2.0]" in p.stdout or "error" in p.stdout


# ---- deep chains ------------------------------------------------------------------------------
def test_freeing_a_million_linked_tensors():
    p = run_py("""
import gradflow as gf
x = gf.tensor([1.0], requires_grad=True)
y = x
for _ in range(1_000_000):
    y = y * 1.0
del y
print("freed")
""", timeout=600)
    assert_ok(p, "freed")


def test_freeing_a_deep_chain_of_tensor_fields():
    p = run_py("""
from gradflow import _C
t = _C.TensorBase()  # the C type itself (gradflow.Tensor's instances free through Python's)
for _ in range(1_000_000):
    u = _C.TensorBase()
    u._base = t
    t = u
del t, u
print("freed")
""", timeout=600)
    assert_ok(p, "freed")


# ---- dynamically created op classes ------------------------------------------------------------
def test_dynamic_op_classes_are_freed():
    from gradflow.autograd.function import Function

    class Payload:
        pass

    refs = []
    for _ in range(3):
        payload = Payload()

        class Scale(Function):
            @staticmethod
            def forward(ctx, a, _p=payload):
                return a * 2

            @staticmethod
            def backward(ctx, g):
                return (g * 2,)

        class Closure(Function):
            def forward(self, a):
                assert payload is not None
                return super().forward(a) if False else a * 3

            @staticmethod
            def backward(ctx, g):
                return (g * 3,)

        x = gf.tensor([1.0], requires_grad=True)
        Scale.apply(x).sum().backward()
        Closure.apply(x)
        refs += [weakref.ref(Scale), weakref.ref(Closure), weakref.ref(payload)]
        del Scale, Closure, payload, x
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


def test_op_class_modified_after_first_use():
    from gradflow.autograd.function import Function

    class Op(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return (g * 2,)

    x = gf.tensor([1.0])
    assert Op.apply(x).item() == 2.0
    Op.forward = staticmethod(lambda ctx, a: a * 5)
    assert Op.apply(x).item() == 5.0
