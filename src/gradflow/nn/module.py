"""Module: the base of every layer and model. Parameters and submodules are registered by
assigning them to attributes, as in PyTorch."""

from collections import OrderedDict, namedtuple

from .. import backend as _backend
from .. import dtypes as _dtypes
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """What the register_*_hook methods return: ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        """Unregisters the hook (a second call does nothing)."""
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """The base of every layer and model: assign Parameters, Modules and buffers to attributes
    and they are registered (for parameters(), state_dict(), to(), ...), as in PyTorch."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        """The computation; every subclass defines it (call the module, not forward)."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        """Runs the forward pre-hooks, forward, then the forward hooks."""
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after each forward; a non-None result replaces
        the output. Returns a handle whose remove() unregisters it."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before each forward; a non-None result replaces the
        arguments. Returns a handle whose remove() unregisters it."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    # ---- registration ---------------------------------------------------------------------------
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called: call "
                "super().__init__() first in your module's __init__")
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                "(a Tensor or None expected)")
            buffers[name] = value
            object.__setattr__(self, name, value)
            return
        if name in params and not isinstance(value, (Parameter, Module, type(None))):
            raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                            "(gf.nn.Parameter or None expected); wrap it in nn.Parameter, or "
                            f"copy values in with `with gf.no_grad(): module.{name}.copy_(value)`")
        params.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
            if getattr(value, "name", None) is None:
                value.name = name  # how gf.viz labels it when given no fuller name
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Registers ``param`` (a Parameter, or None) under ``name``."""
        if param is None:
            self._parameters[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Registers ``tensor`` (or None) as a buffer: state that is not a parameter (running
        statistics), saved in state_dict() when persistent and moved by to()."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: attribute {name!r} already exists")
        self._buffers[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name, module):
        """Registers ``module`` (or None) as the child ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        if module is None:
            self._modules[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, module)

    register_module = add_module

    def get_submodule(self, target):
        """The submodule at the dotted path ``target`` ("" is the module itself)."""
        m = self
        for part in target.split(".") if target else []:
            if part not in m._modules:
                raise AttributeError(f"{type(m).__name__} has no submodule {part!r}")
            m = m._modules[part]
        return m

    # ---- traversal ------------------------------------------------------------------------------
    def named_children(self):
        """(name, module) for each direct child."""
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        """The direct children."""
        return (m for m in self._modules.values() if m is not None)

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every module below it, each once."""
        stack, seen = [(prefix, self)], set()
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            subs = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(subs))

    def modules(self):
        """This module and every module below it."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, parameter) for every parameter, a shared one listed once."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for pname, p in m._parameters.items():
                if p is not None and id(p) not in seen:  # a shared parameter is listed once
                    seen.add(id(p))
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse=True):
        """Every parameter (what an optimizer is given)."""
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        """(dotted name, buffer) for every buffer that is not None."""
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self, recurse=True):
        """Every buffer."""
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn):
        """Calls ``fn(module)`` on every submodule and then on this one (e.g. to initialise
        weights); returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad=True):
        """Sets requires_grad on every parameter (False freezes them); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- modes, devices, grads ----------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (dropout active, batch norm on batch statistics); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (train(False)); returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Clears every parameter's gradient (to None by default, else to zeros)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad._be.setitem(p.grad.array, Ellipsis, 0)

    def to(self, device=None, dtype=None):
        """Moves every parameter (and its gradient) and buffer to ``device`` and/or converts the
        floating-point ones to ``dtype`` (``to("cuda")``, ``to(gf.float64)``), in place: the
        Parameter objects stay the same, so an optimizer built on them keeps working."""
        from .. import dtypes as _dtypes

        if dtype is None and device is not None:
            try:
                device = _backend.canonical_device(device)
            except ValueError as bad_device:
                try:
                    device, dtype = None, _dtypes.as_dtype(device)
                except TypeError:
                    raise bad_device from None
        if device is not None:
            device = _backend.canonical_device(device)
        dt = _dtypes.as_dtype(dtype)
        with no_grad():
            for t in list(self.parameters()) + list(self.buffers()):
                moved = t
                if dt is not None and _dtypes.is_float(t.dtype) and t.dtype != dt:
                    moved = moved.to(dt)
                if device is not None and moved._device != device:
                    moved = moved.to(device)
                if moved is not t:
                    t.array = moved.array
                    t._be = moved._be
                    if t.grad is not None:
                        t.grad = t.grad.to(t._device).to(t.dtype)
        return self

    def float(self):
        """Floating-point parameters and buffers as float32; returns self."""
        return self.to(dtype="float32")

    def double(self):
        """Floating-point parameters and buffers as float64; returns self."""
        return self.to(dtype="float64")

    def half(self):
        """Floating-point parameters and buffers as float16; returns self."""
        return self.to(dtype="float16")

    def bfloat16(self):
        """Floating-point parameters and buffers as bfloat16; returns self."""
        return self.to(dtype="bfloat16")

    def cuda(self, index=0):
        """``to("cuda:index")``."""
        return self.to(f"cuda:{index}")

    def cpu(self):
        """``to("cpu")``."""
        return self.to("cpu")

    # ---- state ------------------------------------------------------------------------------------
    def _named_state(self):
        yield from self.named_parameters()
        for mname, m in self.named_modules():
            for bname, b in m._buffers.items():
                if b is not None and bname not in m._non_persistent:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def state_dict(self):
        """Parameters and persistent buffers by dotted name (detached, sharing memory)."""
        return OrderedDict((name, t.detach()) for name, t in self._named_state())

    def load_state_dict(self, state_dict, strict=True):
        """Copies values into the parameters and buffers. With strict=True, missing or unexpected
        keys and shape mismatches raise one RuntimeError listing all of them."""
        own = dict(self._named_state())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for k, p in own.items():
            if k in state_dict:
                v = state_dict[k]
                shape = tuple(v.shape)
                if shape != p.shape:
                    mismatched.append(f"{k}: checkpoint shape {shape}, model shape {p.shape}")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if problems:
            raise RuntimeError(f"error loading state_dict into {type(self).__name__}: "
                               + " | ".join(problems))
        with no_grad():
            for k, p in own.items():
                if k in state_dict:
                    v = state_dict[k]
                    host = v._host() if isinstance(v, Tensor) else v
                    be = p._be
                    be.setitem(p.array, Ellipsis, be.astype(be.to_device_array(host), p.dtype))
                    p._vbox[0] += 1
        return IncompatibleKeys(missing, unexpected)

    # ---- printing ---------------------------------------------------------------------------------
    def extra_repr(self):
        """The module's settings, as shown inside its repr (subclasses override it)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        lines = [f"  {line}" for line in extra.split("\n")] if extra and self._modules else []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"
