"""``gf.jit``: run a function once while recording its backend calls, then replay them.

A call with a new input signature runs the function eagerly and records every backend kernel it
calls (the forward ops, the backward pass ``loss.backward()`` runs, the optimizer's update),
each argument named by where it came from (see :mod:`.trace`). The record becomes a plan: a
generated Python function that checks what the record assumed (the guards), calls the kernels
in order on the new inputs and leaves the same effects (each parameter's new ``.grad``) as the
eager call did. Later calls of the same signature run the plan: no op layer, no tape, no
autograd engine; the results are bitwise those of the eager function.
"""

import functools
import re
import threading
import types
import warnings
from collections import OrderedDict

import numpy as np

from .. import _C
from .. import dtypes as _dtypes
from ..tensor import Tensor
from ..autograd import grad_mode as _grad_mode
from . import trace as _trace
from .trace import JitError, JitWarning

_MISS = object()  # a plan's answer when a guard fails: trace again
_EAGER = "eager"  # the plan of a signature the record cannot replay
_VARIANTS = 4  # records kept per input signature (differing in modes, .grad states...)


def _is_array(obj):
    return isinstance(obj, np.ndarray) or hasattr(obj, "__cuda_array_interface__")


def _signature(args, kwargs):
    """(the tensors and arrays among the arguments, in order; a hashable key of the rest)."""
    leaves, key = [], []

    def visit(obj):
        # (the strides too: the op layer picks kernels and flags by layout)
        if isinstance(obj, Tensor):
            a = obj.array
            leaves.append(obj)
            key.append((a.shape, a.strides, a.dtype, obj._device, obj.requires_grad,
                        obj._node is None))
        elif _is_array(obj):
            leaves.append(obj)
            key.append(("array", obj.shape, obj.strides, obj.dtype,
                        str(getattr(obj, "device", "cpu"))))
        elif type(obj) is list or type(obj) is tuple:
            key.append((type(obj), len(obj)))
            for x in obj:
                visit(x)
        elif type(obj) is dict:
            key.append((dict, tuple(obj)))
            for x in obj.values():
                visit(x)
        else:
            try:
                hash(obj)
                key.append((type(obj), obj))  # by value: numbers, strings, flags, objects by id
            except TypeError:
                key.append(("id", id(obj)))

    for a in args:
        visit(a)
    if kwargs:
        key.append(tuple(kwargs))
        for v in kwargs.values():
            visit(v)
    if len(leaves) > 1:  # which arguments share an array (f(x, x) is not f(x, y))
        ids = [id(x.array if isinstance(x, Tensor) else x) for x in leaves]
        if len(set(ids)) < len(ids):
            key.append(("aliases", tuple(ids.index(i) for i in ids)))
    return leaves, tuple(key)


class _Environment:
    """What the traced function can reach besides its arguments: the tensors (parameters,
    buffers, tensor attributes), modules and optimizers among its arguments, closure cells, the
    globals it names and the attributes of those objects, two levels deep."""

    def __init__(self, fn, args, kwargs, leaves):
        from ..nn.module import Module
        from ..optim.optimizer import Optimizer

        self.tensors, self.modules, self.roots = [], [], []
        self._seen = {id(x) for x in leaves}
        self._Module, self._Optimizer, self._Tensor = Module, Optimizer, Tensor
        func = getattr(fn, "__func__", fn)
        if hasattr(fn, "__self__"):
            self._visit(fn.__self__, 0)
        for a in list(args) + list(kwargs.values()):
            self._visit(a, 0)
        code = getattr(func, "__code__", None)
        if code is not None:
            for cell in func.__closure__ or ():
                try:
                    obj = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                if self._visit(obj, 0):
                    self.roots.append(("cell", cell, None, obj))
            g = func.__globals__
            for name in _names(code):
                if name in g and self._visit(g[name], 0):
                    self.roots.append(("global", g, name, g[name]))
        self.entry = [(t.array, t.grad, None if t.grad is None else t.grad.array)
                      for t in self.tensors]
        self.training = [m.training for m in self.modules]
        del self._seen

    def _visit(self, obj, depth):
        """Collects what ``obj`` holds; True if it held a tensor, module or optimizer."""
        if id(obj) in self._seen or depth > 2:
            return False
        if isinstance(obj, self._Tensor):
            self._seen.add(id(obj))
            self.tensors.append(obj)
            return True
        if isinstance(obj, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
                            str, bytes, int, float, bool)) or obj is None:
            return False
        self._seen.add(id(obj))
        if isinstance(obj, self._Module):
            for m in obj.modules():
                if m is not obj:
                    self._seen.add(id(m))
                self.modules.append(m)
                for t in list(m._parameters.values()) + list(m._buffers.values()):
                    self._visit(t, 0)
                for v in vars(m).values():
                    if isinstance(v, self._Tensor):
                        self._visit(v, 0)
            return True
        if isinstance(obj, self._Optimizer):
            for g in obj.param_groups:
                for p in g["params"]:
                    self._visit(p, 0)
            return True
        if type(obj) in (list, tuple, set, frozenset):
            values = obj
        elif type(obj) is dict:
            values = obj.values()
        elif hasattr(obj, "__dict__") and not callable(obj):
            values = vars(obj).values()
        else:
            return False
        found = False
        for v in list(values):
            found = self._visit(v, depth + 1) or found
        return found


def _names(code):
    """The global names ``code`` and the functions it defines refer to."""
    out = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _names(c)
    return out


class _Plan:
    """The replay of one record: ``run(*leaves)`` gives the function's result, or _MISS when
    something the record assumed no longer holds.

    On the CPU ``run`` calls the recorded kernels in order. On one CUDA device the first run
    captures each stretch of kernels between two live steps (the optimizer's update, a random
    draw) into a CUDA graph, and later runs copy the inputs into the arrays the graphs read,
    launch the graphs and run the live steps in between.
    """

    def __init__(self, rec, env, leaves, entry_grads, out, name):
        self.rec, self.name = rec, name
        ns, guards, effects = rec.ns, [], []
        ns.update(_MISS=_MISS, wrap=_C.wrap, _gm=_grad_mode.state)
        for i, t in enumerate(env.tensors):
            ns[f"t{i}"] = t
            self._effects(f"t{i}", t, env.entry[i], effects, guards)
        self.tensor_leaves = [j for j, x in enumerate(leaves) if isinstance(x, Tensor)]
        for j in self.tensor_leaves:
            self._effects(f"x{j}", leaves[j], entry_grads[j], effects, guards)
        for k, (m, flag) in enumerate(zip(env.modules, env.training)):
            ns[f"m{k}"] = m
            guards.append(f"m{k}.training is {flag}")
        for k, (kind, holder, key, obj) in enumerate(env.roots):
            ns[f"h{k}"], ns[f"o{k}"] = holder, obj
            guards.append(f"h{k}.get({key!r}) is o{k}" if kind == "global"
                          else f"h{k}.cell_contents is o{k}")
        guards.append(f"_gm.grad_enabled is {_grad_mode.state.grad_enabled}")
        ns.update(_dts=_dtypes, _default_float=_dtypes.default_float)
        guards.append("_dts.default_float is _default_float")  # (factories inside fn use it)
        self.effects, self.n_leaves = effects, len(leaves)
        self.out_expr = self._out(out, env, leaves, fresh=False)
        self.fresh_out_expr = self._out(out, env, leaves, fresh=True)
        # The values the function branched on, computed again from the entry arrays.
        value_checks = []
        for k, (lines, call, value) in enumerate(rec.value_guards):
            ns[f"_V{k}"] = value
            value_checks += [re.sub(r"\ba(\d+)\b", lambda m: self._entry_array(int(m.group(1)), leaves), x)
                             for x in lines + [f"if {call} != _V{k}: return _MISS"]]
        text = "\n".join([call for _, call, _ in rec.steps] + effects + [self.out_expr]
                         + value_checks)
        checks = []  # the reachable arrays the steps read, each checked to be the one recorded
        for i, t in enumerate(env.tensors):
            for var, expr, captured in ((f"p{i}", f"t{i}.array", env.entry[i][0]),
                                        (f"g{i}", f"t{i}.grad.array", env.entry[i][2])):
                if _mentions(text, var):
                    ns[f"P_{var}"] = captured
                    checks += [f"{var} = {expr}", f"if {var} is not P_{var}: return _MISS"]
        self.head = (f"    if not ({' and '.join(guards)}):\n        return _MISS\n"
                     + "".join(f"    {line}\n" for line in checks + value_checks))
        for key in [k for k in ns if k.startswith("_ref_")]:
            del ns[key]
        loads = [f"a{j} = x{j}.array" if j in self.tensor_leaves else f"a{j} = x{j}"
                 for j in range(len(leaves))]
        # an argument's gradient, accumulated into (its None-ness is checked above)
        grads_read = [j for j in self.tensor_leaves if _mentions(text, f"q{j}")]
        loads += [f"q{j} = x{j}.grad.array" for j in grads_read]
        folded = _fold_constants(rec, "\n".join(effects + [self.out_expr]))
        body = [f"{target} = {call}" if target else call
                for i, (_, call, target) in enumerate(rec.steps) if i not in folded]
        self.run = self._compile("replay", loads + body + effects + ["return " + self.out_expr])
        self._replay_source = self.source
        # A graph reads and writes the arrays it was captured with: contiguous copies of the
        # inputs, refreshed at each launch. Not when the function writes into its inputs or
        # their gradients, or an input has another layout (the record may depend on it).
        contiguous = all((x.array if isinstance(x, Tensor) else x).flags.c_contiguous
                         for x in leaves)
        backend = (self._cuda_backend(env, leaves)
                   if contiguous and not rec.wrote_input and not grads_read else None)
        if backend is not None:
            self._replay, self.be = self.run, backend
            self.run = self._capture

    @staticmethod
    def _entry_array(j, leaves):
        """Source for argument j's array as the call passed it (before any copy a launch makes)."""
        return f"x{j}.array" if isinstance(leaves[j], Tensor) else f"x{j}"

    def _compile(self, name, lines):
        params = ", ".join(f"x{j}" for j in range(self.n_leaves))
        src = f"def {name}({params}):\n" + self.head + "".join(f"    {x}\n" for x in lines)
        if name != "capture":
            self.source = src  # (what ``run`` does, for reading)
        exec(compile(src, f"<gf.jit plan of {self.name}>", "exec"), self.rec.ns)
        return self.rec.ns[name]

    @staticmethod
    def _cuda_backend(env, leaves):
        """The backend of the one CUDA device all the tensors are on, or None."""
        devices = {t._device for t in env.tensors} | {x._device for x in leaves
                                                       if isinstance(x, Tensor)}
        devices |= {f"cuda:{x.device.id}" for x in leaves if not isinstance(x, (Tensor, np.ndarray))}
        if len(devices) != 1 or not next(iter(devices)).startswith("cuda"):
            return None
        from .. import backend

        return backend.get(next(iter(devices)))

    # ---- CUDA graphs ---------------------------------------------------------------------------
    def _capture(self, *leaves):
        """The first run on CUDA: each stretch of kernels between live steps captured into a
        graph (nothing runs while capturing: a live step's results are captured as empty
        arrays of their shapes), then the launch function built and run."""
        cp, ns = self.be.xp, self.rec.ns
        with self.be.device:
            stream, pool = cp.cuda.Stream(), cp.cuda.MemoryPool()
        graphs, capturing = [], []

        def begin():
            # The graphs' own memory: what the capture frees stays out of other allocations.
            capturing[:] = [cp.cuda.using_allocator(pool.malloc), stream]
            for c in capturing:
                c.__enter__()
            stream.begin_capture()

        def end():
            graphs.append(stream.end_capture())
            self._leave(capturing)

        ns.update(_begin=begin, _end=end, _static=lambda a: a.copy(), _empty=cp.empty,
                  _copyto=cp.copyto, _fresh=lambda a: a.copy())
        lines = [f"a{j} = _static(x{j}.array)" if j in self.tensor_leaves
                 else f"a{j} = _static(x{j})" for j in range(self.n_leaves)]
        launch = [f"_copyto(a{j}, x{j}.array)" if j in self.tensor_leaves
                  else f"_copyto(a{j}, x{j})" for j in range(self.n_leaves)]
        segment_open = False
        for kind, call, target in self.rec.steps:
            if (kind == "kernel") != segment_open:
                segment_open = not segment_open
                lines.append("_begin()" if segment_open else "_end()")
                if segment_open:
                    launch.append(f"_G{sum(x.startswith('_G') for x in launch)}.launch()")
            names = [n.strip() for n in (target or "").split(",") if n.strip() not in ("", "_")]
            if kind == "kernel":
                lines.append(f"{target} = {call}" if target else call)
                continue
            # a live step runs at each launch; its results go where the graphs read them
            launch.append(f"_h = {call}")
            for i, n in enumerate(names):
                shape, dtype = self.rec.host_outputs[n]
                ns[f"_dt{n}"] = dtype
                lines.append(f"{n} = _empty({shape!r}, _dt{n})")
                launch.append(f"_copyto({n}, _h{'' if target.count(',') == 0 else f'[{i}]'})")
        if segment_open:
            lines.append("_end()")
        capture = self._compile("capture", lines + ["return locals()"])
        try:
            static = capture(*leaves)
        except Exception:  # kernels that cannot be captured: replayed without graphs
            if capturing:
                try:
                    stream.end_capture()
                finally:
                    self._leave(capturing)
            self.run, self.source = self._replay, self._replay_source
            return self._replay(*leaves)
        if static is _MISS:
            return _MISS
        for k, v in static.items():
            if k[:1] in "rab" and k[1:].isdigit():
                ns[k] = v  # the arrays the graphs read and write
        ns.update({f"_G{k}": g for k, g in enumerate(graphs)}, _keep=(stream, pool))
        self.run = self._compile("launch", launch + self.effects
                                 + ["return " + self.fresh_out_expr])
        return self.run(*leaves)

    @staticmethod
    def _leave(capturing):
        for c in reversed(capturing):
            c.__exit__(None, None, None)
        capturing.clear()

    def _effects(self, var, t, entry, effects, guards):
        """The lines that leave ``t`` as the eager call did, and the guard on its entry state."""
        rec = self.rec
        array, grad, grad_array = entry
        if t.array is not array:
            name = rec.names.get(id(t.array))
            if name is None:
                rec.fail("a tensor's array was replaced by one of unknown origin")
            effects.append(f"{var}.array = {name}")
        if t.requires_grad:
            guards.append(f"{var}.grad is {'not ' if grad is not None else ''}None")
        g = t.grad
        if g is grad:
            if g is not None and g.array is not grad_array:
                rec.fail("a gradient tensor's array was replaced")
        elif g is None:
            effects.append(f"{var}.grad = None")
        elif g.requires_grad:
            rec.fail("a .grad that requires grad (backward with create_graph=True)")
        else:
            name = rec.names.get(id(g.array))
            if name is None:
                rec.fail("a .grad of unknown origin was set")
            effects.append(f"{var}.grad = wrap({name}, {var}._be, None)")

    def _out(self, out, env, leaves, fresh):
        """The expression of the function's result (with ``fresh``, the arrays copied out of
        the graphs' memory, which the next launch overwrites)."""
        rec = self.rec
        index = {id(t): f"t{i}" for i, t in enumerate(env.tensors)}
        index.update({id(x): f"x{j}" for j, x in enumerate(leaves)})
        grads = {id(t.grad): f"{var}.grad" for t, var in
                 [(t, f"t{i}") for i, t in enumerate(env.tensors)] +
                 [(x, f"x{j}") for j, x in enumerate(leaves) if isinstance(x, Tensor)]
                 if t.grad is not None}

        def src(obj):
            if isinstance(obj, Tensor):
                if id(obj) in index:
                    return index[id(obj)]
                if id(obj) in grads:
                    return grads[id(obj)]
                name = rec.names.get(id(obj.array))
                if name is None:
                    rec.fail("the function returned a tensor of unknown origin")
                return (f"wrap(_fresh({name}), {rec.const(obj._be)}, None)" if fresh
                        else f"wrap({name}, {rec.const(obj._be)}, None)")
            if type(obj) in (tuple, list):
                body = ", ".join(src(x) for x in obj)
                return f"[{body}]" if type(obj) is list else f"({body},)" if obj else "()"
            if type(obj) is dict:
                return "{" + ", ".join(f"{rec.src(k)}: {src(v)}" for k, v in obj.items()) + "}"
            return rec.src(obj)

        return src(out)


_FOLD_BYTES = 1 << 16  # constants a CPU plan keeps computed (a seed gradient, a 1/n scale)
_IMMUTABLE = (types.ModuleType, type, np.dtype, bool, int, float, complex, str, type(None))


def _fold_constants(rec, kept):
    """Computes once, into the plan's namespace, the kernel steps of a CPU record that read
    only constants and each other's results (the backward's seed gradient and the mean's
    1/n): each costs a replay a Python call, and, after the step's GEMMs have evicted the
    interpreter's data from the caches, more than the arithmetic. A result stays a step when
    the function returns it or leaves it in a ``.grad`` (``kept``), or when a step that is not
    folded writes it, reads it before a folded step wrote it, or runs live. The arrays are
    made read-only (a write through a view of one raises). Returns the folded indices."""
    steps, io = rec.steps, rec.step_io
    banned = set()
    while True:
        folded, made, last_write = set(), {}, {}
        for i, (kind, call, target) in enumerate(steps):
            reads, writes = io[i]
            if (i in banned or kind != "kernel" or not all(n in made for n in reads + writes)
                    or not all(isinstance(rec.ns[k], _IMMUTABLE)
                               for k in re.findall(r"\bk\d+\b", call))):
                continue
            folded.add(i)
            for n in writes:
                last_write[n] = i
            for n in (target or "").replace(",", " ").split():
                if n != "_":
                    made[n] = i
        bad = {made[n] for n in made if _mentions(kept, n)}
        for j, (kind, _, _) in enumerate(steps):
            if j in folded:
                continue
            reads, writes = io[j]
            bad |= {made[n] for n in writes if n in made}
            bad |= {made[n] for n in reads if n in made and (kind != "kernel" or j < last_write.get(n, -1))}
        if not bad:
            break
        banned |= bad
    if not folded:
        return folded
    lines = [f"{t} = {c}" if t else c for i, (_, c, t) in enumerate(steps) if i in folded]
    names = sorted(made)
    exec(compile("def _fold():\n" + "".join(f"    {x}\n" for x in lines)
                 + f"    return [{', '.join(names)}]\n", "<gf.jit constants>", "exec"), rec.ns)
    values = rec.ns.pop("_fold")()
    if (not all(type(v) is np.ndarray for v in values)
            or sum(v.nbytes for v in values if not isinstance(v.base, np.ndarray)) > _FOLD_BYTES):
        return set()  # (a device's arrays have no read-only flag; CUDA graphs replay these)
    for n, v in zip(names, values):
        v.flags.writeable = False
        rec.ns[n] = v
    return folded


def _mentions(text, name):
    return re.search(rf"\b{name}\b", text) is not None


class Jitted:
    """A function under :func:`jit`: call it as the function itself."""

    def __init__(self, fn, strict=False, cache_size=8):
        functools.update_wrapper(self, fn)
        self._fn, self._strict, self._cache_size = fn, strict, cache_size
        self._plans = OrderedDict()  # signature -> _Plan | _EAGER, least recently used first
        self._lock = threading.Lock()

    def __get__(self, obj, cls=None):  # as a method: the instance is the first argument
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        if _trace.active and _trace.recorder() is not None:  # inside another trace: its steps
            return self._fn(*args, **kwargs)
        leaves, key = _signature(args, kwargs)
        plans = self._plans.get(key, ())
        for plan in plans:  # the records of this signature, most recent first
            if plan is _EAGER:
                return self._fn(*args, **kwargs)
            out = plan.run(*leaves)
            if out is not _MISS:
                return out
        return self._trace(key, leaves, args, kwargs)

    def _trace(self, key, leaves, args, kwargs):
        rec = _trace.Recorder(self._strict)
        env = _Environment(self._fn, args, kwargs, leaves)
        for i, (array, _, grad_array) in enumerate(env.entry):
            rec.bind(array, f"p{i}")
            if grad_array is not None:
                rec.bind(grad_array, f"g{i}")
        entry_grads = []
        for j, x in enumerate(leaves):
            array = x.array if isinstance(x, Tensor) else x
            if rec.names.get(id(array), "a")[0] in "pg":
                rec.fail(f"argument {j} holds the array of a tensor the function also reaches "
                         "otherwise (a parameter passed as an argument)")
            rec.bind(array, f"a{j}")
            if isinstance(x, Tensor):
                g = x.grad
                entry_grads.append((x.array, g, None if g is None else g.array))
                if g is not None:
                    rec.bind(g.array, f"q{j}")
            else:
                entry_grads.append(None)
        _trace.start(rec)
        try:
            out = self._fn(*args, **kwargs)
        finally:
            _trace.stop()
        plan = _EAGER
        if rec.failure is None:
            built = _Plan(rec, env, leaves, entry_grads, out, self.__name__)
            if rec.failure is None:
                plan = built
        if plan is _EAGER:
            warnings.warn(f"gf.jit: {self.__name__} runs eagerly for this input signature: "
                          f"{rec.failure}", JitWarning, stacklevel=3)
        with self._lock:
            # A signature keeps a few records (train and eval mode, say), newest first; after a
            # trace that failed, calls that none of them fits run eagerly without tracing again.
            old = [p for p in self._plans.pop(key, ()) if p is not _EAGER]
            self._plans[key] = (([plan] + old)[:_VARIANTS] if plan is not _EAGER
                                else old[:_VARIANTS - 1] + [_EAGER])
            while len(self._plans) > self._cache_size:
                self._plans.popitem(last=False)
        return out


def jit(fn=None, *, strict=False, cache_size=8):
    """``gf.jit(fn)`` or ``@gf.jit``: ``fn`` runs eagerly on the first call of each input
    signature while its backend kernels are recorded; later calls replay the record, bitwise as
    the eager call (forward, ``loss.backward()``, ``opt.step()`` and ``opt.zero_grad()``
    included, with the same parameters, ``.grad`` and optimizer state left behind).

    The signature is the shapes, dtypes and devices of the tensor and array arguments and the
    values of the others; a replay first checks what else the record assumed (the parameter
    arrays, which gradients were None, train/eval modes, grad mode, the globals and closure
    cells holding models) and records again when that changed. Optimizer options (a
    scheduler's learning rate) and state, and dropout's draws from the default generator, are
    read at every replay. Returned tensors are new and detached.

    What cannot be replayed (values read on the host: ``.item()``, ``bool(t)``, ``print``...;
    value-dependent shapes: masks, ``nonzero``, ``unique``; tensors built inside from host
    data, random ops other than dropout; hooks, collectives, ``create_graph``) makes ``fn`` run
    eagerly for that signature with a :class:`JitWarning`, or raise :class:`JitError` with
    ``strict=True``. Python state other than tensors that ``fn`` changes is not replayed. On a
    CUDA device the replay launches CUDA graphs (see the README, "Replaying a step").
    ``cache_size``: input signatures kept (least recently recorded dropped first)."""
    if fn is None:
        return lambda f: Jitted(f, strict, cache_size)
    return Jitted(fn, strict, cache_size)


__all__ = ["jit", "Jitted", "JitError", "JitWarning"]
