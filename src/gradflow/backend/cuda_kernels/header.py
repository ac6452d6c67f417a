"""Locating ``gf_math.h``: the activation math the CPU kernels are built from."""

import functools
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[2]  # .../gradflow
_CANDIDATES = (
    _PACKAGE / "_include" / "gf_math.h",         # installed wheel (CMake installs it there)
    _PACKAGE.parents[1] / "csrc" / "gf_math.h",  # source checkout (src/gradflow) / editable
)


@functools.lru_cache(maxsize=None)
def gf_math_h() -> str:
    """The text of gf_math.h, read once."""
    for path in _CANDIDATES:
        if path.is_file():
            return path.read_text()
    raise RuntimeError("gradflow: gf_math.h not found; looked in "
                       + ", ".join(str(p) for p in _CANDIDATES))
