"""The contenders: one library on one device, and the few conversions the suites need.

Every contender gets its own copy of the host (numpy) inputs, so a step that updates its
parameters in place cannot disturb the others.
"""

import numpy as np

import gradflow as gf

FAMILIES = ("gradflow", "numpy", "torch")
PEERS = ("numpy", "torch")  # what gradflow is compared against


class Contender:
    family = ""

    def __init__(self, device):
        self.device = device  # "cpu" | "cuda"
        self.name = f"{self.family}-{device}" if self.family != "numpy" else "numpy"

    def asarray(self, host):
        """The library's array holding a copy of a host array."""
        raise NotImplementedError

    def tensor(self, host, requires_grad=False):
        """The library's autograd tensor (numpy: a plain array)."""
        return self.asarray(host)

    def to_numpy(self, x):
        """A host copy of an array or tensor, for the agreement check."""
        return np.array(x)

    def sync(self):
        """Wait for queued device work (called before reading the clock)."""


class Gradflow(Contender):
    family = "gradflow"

    def __init__(self, device):
        super().__init__(device)
        self.dev = "cpu" if device == "cpu" else "cuda:0"
        self.be = gf.backend.get(self.dev)  # raises when CuPy or a GPU is missing

    def asarray(self, host):
        return self.be.to_device_array(np.array(host))

    def tensor(self, host, requires_grad=False):
        return gf.tensor(host, device=self.dev, requires_grad=requires_grad)

    def to_numpy(self, x):
        return np.array(self.be.to_numpy(x.array if isinstance(x, gf.Tensor) else x))

    def sync(self):
        if self.device == "cuda":
            self.be.xp.cuda.runtime.deviceSynchronize()


class Numpy(Contender):
    family = "numpy"

    def asarray(self, host):
        return np.array(host)


class Torch(Contender):
    family = "torch"

    def __init__(self, device):
        super().__init__(device)
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False")
        self.torch = torch

    def asarray(self, host):
        return self.torch.tensor(np.asarray(host), device=self.device)

    def tensor(self, host, requires_grad=False):
        return self.asarray(host).requires_grad_(requires_grad)

    def to_numpy(self, x):
        return x.detach().cpu().numpy().copy()

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def discover(devices):
    """(contenders that can run, [(name, why not)]) for devices ⊆ {"cpu", "cuda"}."""
    found, skipped = [], []
    for device in devices:
        for cls in (Gradflow, Numpy, Torch):
            if cls is Numpy and device != "cpu":
                continue  # numpy is a host library
            try:
                found.append(cls(device))
            except Exception as e:  # noqa: BLE001 - any import/driver failure means "skip"
                skipped.append((f"{cls.family}-{device}", f"{type(e).__name__}: {e}"))
    return found, skipped
