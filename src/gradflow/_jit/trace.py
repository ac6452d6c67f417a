"""Recording: every backend call a traced function makes, as the lines of a replay function.

While a trace runs in some thread, the backends' interface functions (and their ``xp`` array
module) are wrapped: a call from the tracing thread runs the kernel and appends one line to the
plan (``r7 = f3(r2, p0, 1.5)``); a call from any other thread goes straight through. Every array
a kernel reads is named by where it came from: an argument of the traced function (``a0``, its
gradient ``q0``), a tensor the function can reach (a parameter's array ``p1`` or gradient
``g1``), the result of an earlier line (``r7``), or a buffer the function made and wrote first
(``b3``). An array of any other origin (made by code that bypasses the backend, or kept from an
earlier call) cannot be replayed, and the trace fails with the reason.

This module imports nothing from gradflow at load time: tensor.py and the optimizers call its
hooks (``active`` is the cheap check they make first).
"""

import re
import threading
import weakref

import numpy as np

active = 0  # traces running, in all threads: the hooks' fast path reads only this
_local = threading.local()
_install_lock = threading.Lock()
_installed = {}  # backend object -> {attribute: original}

# Kernels that write into an argument (position, or keyword): an array of unknown origin in such
# a place is a buffer the plan owns (scratch the function allocated), not an input it reads.
WRITES = {"setitem": (0,), "sgd_step": (0, 2), "adam_step": (0, 2, 3)}
_OUT_POSITION = (2,)  # binary kernels: a, b, out
for _n in "add sub mul div pow maximum minimum".split():
    WRITES[_n] = _OUT_POSITION
HOST_READS = frozenset({"to_numpy"})  # a device array's values copied to the host
# Array functions whose result's shape depends on the values: a replay would keep the shape.
VALUE_SHAPED = frozenset(f"xp.{n}" for n in "nonzero flatnonzero argwhere unique extract compress "
                         "unique_values unique_counts unique_inverse unique_all".split())


class JitError(RuntimeError):
    """What makes a function impossible to replay (raised by ``gf.jit(fn, strict=True)``)."""


class JitWarning(UserWarning):
    """A jitted function runs eagerly for an input signature: the message says why."""


def recorder():
    """The recorder of this thread's running trace, or None."""
    return getattr(_local, "rec", None)


def call(fn, *args, live=True):
    """``fn(*args)``, recorded as one replayable step when a trace runs in this thread: the
    step runs again at every replay. ``live``: it reads Python state as it is then (an
    optimizer's learning rate, a generator's draws), so it runs on the host between CUDA
    graphs; otherwise it is device work like a kernel (an op written with array operators).
    Arrays among ``args`` are named as kernel arguments are; what ``fn`` calls inside is not
    recorded."""
    rec = getattr(_local, "rec", None) if active else None
    if rec is None or rec.paused:
        return fn(*args)
    return rec.call(fn, args, {}, (), host=live)


def guard(fn, *args):
    """``fn(*args)``, a Python value the traced function branches on (whether any label is the
    ignored one, say), computed from its arguments' or reachable tensors' arrays as they are on
    entry. A replay computes it again before any kernel runs and, if it differs, is not used (the
    next record of the signature is tried, or the function is traced again)."""
    rec = getattr(_local, "rec", None) if active else None
    if rec is None or rec.paused:
        return fn(*args)
    return rec.guard(fn, args)


def host_read(tensor):
    """Called by the tensor methods that hand values to Python (item, tolist, numpy, bool...)."""
    refuse("a tensor's values were read on the host inside the function (item(), tolist(), "
           "numpy(), bool(), float(), print...): the result could steer Python code that a "
           "replay would not run")


def refuse(reason):
    """Marks this thread's running trace (if any) as impossible to replay, for ``reason``."""
    rec = getattr(_local, "rec", None) if active else None
    if rec is not None and not rec.paused:
        rec.fail(reason)


def _is_array(obj):
    return hasattr(obj, "__array_interface__") or hasattr(obj, "__cuda_array_interface__")


_LITERALS = (bool, int, str, type(None))


def _holds_array(obj):
    if type(obj) in (tuple, list):
        return any(_holds_array(x) for x in obj)
    if type(obj) is dict:
        return any(_holds_array(x) for x in obj.values())
    return _is_array(obj)


def _bool_index(index):
    items = index if type(index) is tuple else (index,)
    return any(_is_array(i) and i.dtype.kind == "b" for i in items)


def _literal(obj):
    """Whether repr(obj) rebuilds it exactly: ints, strings, flags and tuples of them."""
    if type(obj) is tuple:
        return all(_literal(x) for x in obj)
    return type(obj) in _LITERALS
_VALUES = (bool, float, complex, np.generic)  # values (not metadata) an array function returns


class Recorder:
    """One trace: the replay function's lines and the namespace they refer to."""

    def __init__(self, strict):
        self.strict = strict
        self.names = {}  # id(array) -> its name in the replay function
        self.ns = {}  # the replay function's globals: kernels, constants
        self.steps = []  # (kind, call source, output target or None); kind: "kernel" | "host"
        self.used = set()  # the source names the steps read
        self.wrote_input = False
        self.written = set()  # the names of the arrays a step wrote into
        self.step_io = []  # per step: (the names it read, the names it wrote)
        self.producer = {}  # result name -> the index of the step that made it
        self.value_guards = []  # (lines, then an expression, computed first at a replay; value)
        self._reads = None  # (name, written) of the arrays the current step's arguments name
        self.host_outputs = {}  # name -> (shape, dtype) of what a live step returned
        self.paused = 0
        self.failure = None
        self._count = 0
        self._consts = {}  # id(obj) -> name

    # ---- names -------------------------------------------------------------------------------
    def new_name(self, prefix):
        """A fresh variable name of the replay function."""
        self._count += 1
        return f"{prefix}{self._count}"

    def bind(self, array, name):
        """``array`` is known as ``name`` from here on (until it is freed: its id may be reused)."""
        key = id(array)
        self.names[key] = name

        def forget(_, names=self.names, key=key, name=name):
            if names.get(key) == name:
                del names[key]

        try:
            self.ns["_ref_" + name] = weakref.ref(array, forget)
        except TypeError:  # an array type without weak references: kept alive instead
            self.ns["_ref_" + name] = array

    def const(self, obj, prefix="k"):
        """The name under which the replay function sees ``obj`` itself (a global of it)."""
        key = id(obj)
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = self.new_name(prefix)
            self.ns[name] = obj
        return name

    def fail(self, reason):
        """Marks the record as impossible to replay (the first reason is the one reported)."""
        if self.failure is None:
            self.failure = reason
        if self.strict:
            raise JitError(reason)

    def src(self, obj, written=False, where=""):
        """Python source for ``obj`` as a replay argument."""
        if _is_array(obj) and not isinstance(obj, type):
            name = self.names.get(id(obj))
            if name is None:
                if not written:
                    self.fail(f"{where} read an array of shape {getattr(obj, 'shape', '?')} that "
                              "no recorded call made and no input or reachable tensor holds "
                              "(made by code outside the backend interface, or kept from "
                              "an earlier call)")
                    return "None"
                name = self.const(obj, "b")  # the function's own buffer, written here first
                self.bind(obj, name)
            elif written and name[0] == "a":
                self.wrote_input = True  # (a CUDA graph would write its own copy of the input)
            if written:
                self.written.add(name)
            if self._reads is not None:
                self._reads.append((name, written))
            self.used.add(name)
            return name
        t = type(obj)
        if t in _LITERALS or (t is float and obj == obj and abs(obj) != float("inf")):
            return repr(obj)
        if obj is Ellipsis:
            return "..."
        if t is _RecordedXp:  # replays call the array module itself
            return self.const(obj._xp)
        if t in (tuple, list, dict) and not _holds_array(obj):
            return repr(obj) if t is tuple and _literal(obj) else self.const(obj)  # (live)
        if t is tuple or t is list:
            body = ", ".join(self.src(x, written, where) for x in obj)
            return f"[{body}]" if t is list else f"({body},)" if obj else "()"
        if t is dict:
            return "{" + ", ".join(f"{self.src(k)}: {self.src(v, written, where)}"
                                   for k, v in obj.items()) + "}"
        if t is slice:
            return f"slice({self.src(obj.start)}, {self.src(obj.stop)}, {self.src(obj.step)})"
        return self.const(obj)

    # ---- steps -------------------------------------------------------------------------------
    def guard(self, fn, args):
        """Runs ``fn(*args)`` and records it as a check at the start of the replay."""
        where = getattr(fn, "__name__", "a guard")
        self._reads = []
        try:
            arg_src = [self.src(a, where=where) for a in args]
            names = [name for name, _ in self._reads]
        finally:
            self._reads = None
        self.paused += 1
        try:
            value = fn(*args)
        finally:
            self.paused -= 1
        if type(value) not in (bool, int):
            self.fail(f"{where}: a guard must give a bool or an int, got {type(value).__name__}")
        steps = self._entry_slice(names)
        if steps is None:
            self.fail(f"{where}: the function branches on values that are not its inputs' own, "
                      "or kernels made them from inputs written before (a replay must check them "
                      "before it runs any kernel)")
            return value
        # (the slice's results renamed: a replay's own variables keep their meaning)
        lines = [_slice_names(f"{target} = {call}") for _, call, target in
                 (self.steps[i] for i in steps)]
        call = _slice_names(f"{self.const(fn, 'f')}({', '.join(arg_src)})")
        self.value_guards.append((lines, call, value))
        return value

    def _entry_slice(self, names):
        """The steps (indices, in order) that compute the arrays ``names`` from the entry arrays,
        or None when one is not computed that way by kernels that write nothing, from arrays
        unwritten so far."""
        steps, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name in self.written:
                return None
            if name[0] in "ap":
                continue
            i = self.producer.get(name)
            if i is None or self.steps[i][0] != "kernel" or self.step_io[i][1]:
                return None
            if i not in steps:
                steps.add(i)
                todo += self.step_io[i][0]
        return sorted(steps)

    def call(self, fn, args, kwargs, writes, host=False, name=None, xp=False):
        """Runs ``fn(*args, **kwargs)`` and records it as one step."""
        where = name or getattr(fn, "__name__", "a call")
        if name in HOST_READS:
            self.fail(f"{name}: a device array's values were copied to the host inside the "
                      "function")
        if name in VALUE_SHAPED or (name == "getitem" and _bool_index(args[1])):
            self.fail(f"{name}: the shape of its result depends on the values (a boolean mask, "
                      "nonzero, unique...); a replay would keep the recorded shape")
        self._reads = []
        try:
            arg_src = [self.src(a, i in writes, where) for i, a in enumerate(args)]
            arg_src += [f"{k}={self.src(v, k == 'out', where)}" for k, v in kwargs.items()]
            reads = self._reads
        finally:
            self._reads = None
        self.paused += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            self.paused -= 1
        call_src = f"{self.const(fn, 'f')}({', '.join(arg_src)})"
        if xp and isinstance(result, np.generic) and any(_is_array(a) for a in args):
            # (numpy's reductions give scalars, which look like arrays: a value Python may branch on)
            self.fail(f"{where}: a value computed from arrays came back to Python")
        if _is_array(result):
            target = self.new_name("r")
            self.bind(result, target)
        elif type(result) is tuple and any(_is_array(x) for x in result):
            names = []
            for x in result:
                names.append(self.new_name("r") if _is_array(x) else "_")
                if names[-1] != "_":
                    self.bind(x, names[-1])
            target = ", ".join(names) + ","
        else:
            if xp and isinstance(result, _VALUES) and any(_is_array(a) for a in args):
                self.fail(f"{where}: a value computed from arrays came back to Python")
            if xp:  # metadata (dtypes, shapes): nothing to replay
                return result
            target = None
        if host:  # (what a CUDA graph reading the results is captured with)
            for x in result if type(result) is tuple else (result,):
                if _is_array(x):
                    self.host_outputs[self.names[id(x)]] = (x.shape, x.dtype)
        for n in (target or "").replace(",", " ").split():
            if n != "_":
                self.producer[n] = len(self.steps)
        self.step_io.append(([n for n, w in reads if not w], [n for n, w in reads if w]))
        self.steps.append(("host" if host else "kernel", call_src, target))
        return result


def _slice_names(source):
    """``source`` with the results it names (r7) renamed (_sr7)."""
    return re.sub(r"\br(\d+)\b", r"_sr\1", source)


# ---- the wrapped backends ----------------------------------------------------------------------
def _wrap(name, fn):
    writes = WRITES.get(name, ())

    def recorded(*args, **kwargs):
        rec = getattr(_local, "rec", None)
        if rec is None or rec.paused:
            return fn(*args, **kwargs)
        return rec.call(fn, args, kwargs, writes, name=name)

    recorded.__name__ = name
    recorded.__wrapped__ = fn
    return recorded


class _RecordedXp:
    """A backend's array module (numpy, CuPy) whose functions are recorded as kernels."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        attr = getattr(self._xp, name)
        if callable(attr) and not isinstance(attr, type) and not hasattr(attr, "__path__"):
            fn = attr

            def recorded(*args, **kwargs):
                rec = getattr(_local, "rec", None)
                if rec is None or rec.paused:
                    return fn(*args, **kwargs)
                return rec.call(fn, args, kwargs, (), name=f"xp.{name}", xp=True)

            recorded.__name__ = name
            attr = recorded
        setattr(self, name, attr)
        return attr


def _install(backends, interface):
    for be in backends:
        if be in _installed:
            continue
        saved = _installed[be] = {}
        for name in interface:
            fn = getattr(be, name, None)
            if fn is not None:
                saved[name] = fn
                setattr(be, name, _wrap(name, fn))
        saved["xp"] = be.xp
        be.xp = _RecordedXp(be.xp)


def _uninstall():
    for be, saved in _installed.items():
        for name, fn in saved.items():
            setattr(be, name, fn)
    _installed.clear()


def start(rec):
    """Starts recording this thread's backend calls into ``rec``."""
    global active
    from .. import backend
    from ..backend import reference

    interface = [n for n in dir(reference) if not n.startswith("_") and n != "xp"
                 and callable(getattr(reference, n)) and not isinstance(getattr(reference, n), type)]
    with _install_lock:
        active += 1
        _install(set(backend._backends.values()), interface)
    _local.rec = rec


def stop():
    """Stops this thread's recording (the backends are unwrapped when no trace is left)."""
    global active
    _local.rec = None
    with _install_lock:
        active -= 1
        if active == 0:
            _uninstall()
