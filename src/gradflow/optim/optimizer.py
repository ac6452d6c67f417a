"""Optimizer: parameter groups, per-parameter state, state_dict round trips."""

import numpy as np

from .. import dtypes as _dtypes
from .._jit import trace as _jit_trace
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor


class Optimizer:
    """The base of the optimizers: parameter groups (``param_groups``, each a dict of options
    and its ``params``), per-parameter ``state``, ``step``, ``zero_grad`` and state dicts."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = {}  # parameter -> dict of its state (arrays on the parameter's device)
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Adds a dict {"params": [...], option: value, ...}; unset options take the defaults."""
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if not p.requires_grad or not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can only optimise leaf tensors that "
                                 "require grad")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("a parameter appears in more than one parameter group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group):
        if group["lr"] < 0:
            raise ValueError(f"invalid learning rate: {group['lr']}")

    def zero_grad(self, set_to_none=True):
        """Clears the gradients of every parameter (to None by default, else to zeros)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad._be.setitem(p.grad.array, Ellipsis, 0)

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure``, if given, is called
        first (with gradients enabled) to recompute the loss, which step returns."""
        loss = None
        if closure is not None:
            from ..autograd.grad_mode import enable_grad

            with enable_grad():
                loss = closure()
        with no_grad():
            items = []
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.shape != p.shape:
                        raise RuntimeError(f"gradient of shape {p.grad.shape} for a parameter "
                                           f"of shape {p.shape}")
                    items.append((p, p.grad.array, group))
            # One step of gf.jit's record: a replay runs the update again, reading the state and
            # the options (a scheduler's learning rate) as they are then.
            _jit_trace.call(self._apply, items)
        return loss

    def _apply(self, items):
        """The update of each (parameter, gradient array, group) in ``items``: a group's
        C-contiguous parameters on one backend in one ``_update_many`` call."""
        batches = {}  # (group, backend) -> (group, tensors, params, grads, states)
        for p, grad, group in items:
            xp = p._be.xp
            # The fused kernels update C-contiguous memory in place; any other layout (a
            # parameter made from a transposed view) goes through a contiguous copy.
            grad = xp.ascontiguousarray(grad)
            if group.get("maximize"):
                grad = xp.negative(grad)  # (xp works on p's device, cuda:1 too)
            state = self.state.setdefault(p, {})
            if _dtypes.is_lowp(p.dtype):
                self._update_lowp(p, grad, state, group)
            elif p.array.flags.c_contiguous:
                batch = batches.setdefault((id(group), p._be), (group, [], [], [], []))
                for item, value in zip(batch[1:], (p, p.array, grad, state)):
                    item.append(value)
            else:
                work = xp.ascontiguousarray(p.array)
                self._update_many([work], [grad], [state], group, p._be)
                p._be.setitem(p.array, Ellipsis, work)
                p._vbox[0] += 1
        for (_, be), (group, tensors, params, grads, states) in batches.items():
            self._update_many(params, grads, states, group, be)
            for p in tensors:
                p._vbox[0] += 1

    def _update_lowp(self, p, grad, state, group):
        """One step of float16/bfloat16 parameter ``p``: the update runs in float32 on copies of
        the parameter, gradient and state (the kernels take float32), and each result is rounded
        to ``p``'s dtype once; the state keeps that dtype, as PyTorch keeps it in the
        parameter's."""
        f32, low, astype = np.float32, p.dtype, p._be.astype  # (on p's device: cuda:1 too)
        work = astype(p.array, f32)
        wide = {k: astype(v, f32) if getattr(v, "dtype", None) is low else v
                for k, v in state.items()}
        self._update_many([work], [astype(grad, f32)], [wide], group, p._be)
        for k, v in wide.items():
            state[k] = astype(v, low) if getattr(v, "dtype", None) == f32 else v
        p._be.setitem(p.array, Ellipsis, work)
        p._vbox[0] += 1

    def _update_many(self, params, grads, states, group, be):
        """One step of each of the C-contiguous arrays ``params`` (in place), with its gradient
        and its state dict, on backend ``be``; by default one ``_update`` per parameter."""
        for param, grad, state in zip(params, grads, states):
            self._update(param, grad, group, state, be)

    def _update(self, param, grad, group, state, be):
        """One step on C-contiguous arrays ``param`` (in place) and ``grad``, with backend ``be``."""
        raise NotImplementedError

    # ---- state ------------------------------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {name: value}}, 'param_groups': [{..., 'params': [index, ...]}]},
        parameters numbered in group order, as in PyTorch."""
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: (Tensor._make(v, p._device) if hasattr(v, "shape") else v)
                        for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restores what state_dict returned (onto this optimizer's parameters, in order)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("optimizer state_dict does not match this optimizer's parameter groups")
        params = {}
        for saved, own in zip(groups, self.param_groups):
            for i, p in zip(saved["params"], own["params"]):
                params[i] = p
            for k, v in saved.items():
                if k != "params":
                    own[k] = v
        self.state = {}
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {k: (p._be.to_device_array(v._host() if isinstance(v, Tensor) else v)
                                 .astype(p.dtype, copy=True) if hasattr(v, "shape") else v)
                             for k, v in st.items()}
