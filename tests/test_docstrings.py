"""help() on every public function, class and method of gradflow shows a sentence: each has a
docstring (its own, or the one of the method it overrides)."""
import importlib
import inspect
import pkgutil

import gradflow as gf

# Generated kernel tables and the optional GPU modules are not API.
SKIP = ("gradflow.backend.cuda", "gradflow.backend.cuda_kernels", "gradflow._blas")


def _public(module):
    for attr, obj in vars(module).items():
        if not attr.startswith("_") and getattr(obj, "__module__", None) == module.__name__ and (
                inspect.isfunction(obj) or inspect.isclass(obj)):
            yield attr, obj


def test_every_public_function_class_and_method_has_a_docstring():
    missing = []
    for info in pkgutil.walk_packages(gf.__path__, "gradflow."):
        if info.name.startswith(SKIP):
            continue
        module = importlib.import_module(info.name)
        for attr, obj in _public(module):
            if not (obj.__doc__ or "").strip():
                missing.append(f"{info.name}.{attr}")
            if not inspect.isclass(obj):
                continue
            for name, member in vars(obj).items():
                if name.startswith("_") and name != "__call__":
                    continue
                if isinstance(member, property):
                    doc = member.__doc__
                elif inspect.isfunction(getattr(member, "__func__", member)):
                    doc = inspect.getdoc(getattr(obj, name))
                else:
                    continue
                if not (doc or "").strip():
                    missing.append(f"{info.name}.{attr}.{name}")
    assert not missing, "no docstring: " + ", ".join(missing)
