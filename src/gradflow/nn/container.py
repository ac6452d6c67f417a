"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict."""

from collections import OrderedDict

from ..ops.linalg import linear_relu
from .layers import Linear, ReLU
from .module import Module
from .parameter import Parameter


def _check_module(m, where):
    if not isinstance(m, Module):
        raise TypeError(f"{where}: {type(m).__name__} is not a Module")
    return m


def _fuses(a, b):
    """Whether a Linear followed by a ReLU can run as one op: both exactly those layers (not
    subclasses, whose forward may differ) and without forward hooks, which would see the
    intermediate value."""
    return (type(a) is Linear and type(b) is ReLU and not (
        a._forward_hooks or a._forward_pre_hooks or b._forward_hooks or b._forward_pre_hooks))


class _IndexedModules(Module):
    """What Sequential and ModuleList share: modules registered under "0", "1", ..., renumbered
    after a deletion or an insertion, as PyTorch's are."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __delitem__(self, i):
        items = list(self._modules.values())
        del items[i]
        self._renumber(items)

    def append(self, module):
        """Adds ``module`` at the end; returns self."""
        setattr(self, str(len(self)), _check_module(module, f"{type(self).__name__}.append"))
        return self

    def extend(self, modules):
        """Appends each module; returns self."""
        for m in modules:
            self.append(m)
        return self

    def _insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)

    def _renumber(self, items):
        for name in list(self._modules):
            delattr(self, name)
        for i, m in enumerate(items):
            setattr(self, str(i), m)


class Sequential(_IndexedModules):
    """Modules applied one after the other; built from modules or an OrderedDict of them."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                setattr(self, name, _check_module(m, f"Sequential item {name!r}"))
        else:
            for i, m in enumerate(args):
                setattr(self, str(i), _check_module(m, f"Sequential: item {i}"))

    def forward(self, input):
        layers = list(self._modules.values())
        i, n = 0, len(layers)
        while i < n:
            layer = layers[i]
            if i + 1 < n and _fuses(layer, layers[i + 1]):
                input = linear_relu(input, layer.weight, layer.bias)
                i += 2
            else:
                input = layer(input)
                i += 1
        return input

    def __getitem__(self, i):
        layers = list(self._modules.items())
        if isinstance(i, slice):
            return Sequential(OrderedDict(layers[i]))
        return layers[i][1]

    def __setitem__(self, i, module):
        setattr(self, list(self._modules)[i], _check_module(module, "Sequential"))

    def insert(self, index, module):
        """Inserts ``module`` before position ``index`` (-len <= index <= len); returns self."""
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"Sequential.insert: index {index} out of range for {n} modules")
        self._insert(index, _check_module(module, "Sequential.insert"))
        return self


class ModuleList(_IndexedModules):
    """A list of modules, each registered (indexed 0, 1, ...)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, i):
        items = list(self._modules.values())
        return ModuleList(items[i]) if isinstance(i, slice) else items[i]

    def __setitem__(self, i, module):
        setattr(self, list(self._modules)[i], _check_module(module, "ModuleList"))

    def __iadd__(self, modules):
        return self.extend(modules)

    def insert(self, index, module):
        """Inserts ``module`` before position ``index`` (as list.insert)."""
        self._insert(index, _check_module(module, "ModuleList.insert"))


class _RegisteredDict:
    """The dict interface of ModuleDict and ParameterDict over the Module registry named by
    ``_store`` ("_modules" or "_parameters"); ``_wrap`` checks or converts each value set."""

    def __getitem__(self, key):
        return getattr(self, self._store)[key]

    def __setitem__(self, key, value):
        setattr(self, key, self._wrap(value))

    def __delitem__(self, key):
        delattr(self, key)

    def __len__(self):
        return len(getattr(self, self._store))

    def __iter__(self):
        return iter(getattr(self, self._store))

    def __contains__(self, key):
        return key in getattr(self, self._store)

    def keys(self):
        """The keys."""
        return getattr(self, self._store).keys()

    def values(self):
        """The values."""
        return getattr(self, self._store).values()

    def items(self):
        """(key, value) pairs."""
        return getattr(self, self._store).items()

    def update(self, values):
        """Adds the (key, value) pairs of a dict or an iterable of pairs."""
        for k, v in (values.items() if hasattr(values, "items") else values):
            self[k] = v

    def pop(self, key):
        """Removes and returns the value under ``key``."""
        v = getattr(self, self._store)[key]
        delattr(self, key)
        return v


class ModuleDict(_RegisteredDict, Module):
    """A dict of modules, each registered under its key."""

    _store = "_modules"

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    @staticmethod
    def _wrap(module):
        return _check_module(module, "ModuleDict")


def _as_parameter(p):
    return p if isinstance(p, Parameter) else Parameter(p)


class ParameterList(Module):
    """A list of parameters, each registered (indexed 0, 1, ...); plain tensors are wrapped."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, i):
        items = list(self._parameters.values())
        return ParameterList(items[i]) if isinstance(i, slice) else items[i]

    def __setitem__(self, i, p):
        setattr(self, list(self._parameters)[i], _as_parameter(p))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value):
        """Adds a parameter at the end; returns self."""
        setattr(self, str(len(self)), _as_parameter(value))
        return self

    def extend(self, values):
        """Appends each parameter; returns self."""
        for v in values:
            self.append(v)
        return self


class ParameterDict(_RegisteredDict, Module):
    """A dict of parameters, each registered under its key; plain tensors are wrapped."""

    _store = "_parameters"
    _wrap = staticmethod(_as_parameter)

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)
