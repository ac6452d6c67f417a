"""Locating ``gf_math.h``: the activation math the CPU kernels are built from."""

import functools
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[2]  # .../gradflow
_FOLDERS = (
    _PACKAGE / "_include",         # installed wheel (CMake installs the headers there)
    _PACKAGE.parents[1] / "csrc",  # source checkout (src/gradflow) / editable
)


@functools.lru_cache(maxsize=None)
def gf_math_h() -> str:
    """The text of gf_vecmath.h (exp, log, tanh, ... which gf_math.h includes on the CPU)
    followed by gf_math.h, read once: NVRTC gets both without an include path."""
    for folder in _FOLDERS:
        if (folder / "gf_math.h").is_file():
            return "\n".join((folder / name).read_text() for name in ("gf_vecmath.h", "gf_math.h"))
    raise RuntimeError("gradflow: gf_math.h not found; looked in "
                       + ", ".join(str(p) for p in _FOLDERS))
