"""What ran the benchmark: CPU, SIMD level, BLAS kernels and threads, versions, GPU."""

import os
import platform

import numpy as np

import gradflow as gf
from gradflow import _C
from gradflow.backend import cpu as gf_cpu
from gradflow.backend import reference as gf_ref

ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_threads(n):
    """Use n threads in gradflow, torch and numpy's BLAS (numpy's needs threadpoolctl)."""
    gf.set_num_threads(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "threadpoolctl is not installed: numpy's BLAS threads were left as they were"
    threadpool_limits(n)
    return None


def cpu_ticks():
    """(busy clock ticks of the whole machine, of this process) from /proc; None if unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            mine = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, int(mine[11]) + int(mine[12])  # utime + stime


def background_load(start, end, seconds):
    """CPUs' worth of work done by other processes between two cpu_ticks() readings: timings of
    threaded kernels are unreliable when this is well above 0."""
    if not (start and end and seconds > 0):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / hz / seconds)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _threadpools():
    """threadpoolctl's view of the loaded BLAS/OpenMP pools, labelled by owning package."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    pools = []
    for p in threadpool_info():
        path = p.get("filepath", "")
        owner = next((k for k in ("scipy_openblas32", "numpy", "torch", "cupy") if k in path), "system")
        pools.append({"owner": {"scipy_openblas32": "gradflow"}.get(owner, owner),
                      "api": p.get("internal_api"), "version": p.get("version"),
                      "architecture": p.get("architecture"), "threads": p.get("num_threads"),
                      "file": os.path.basename(path)})
    return pools


def _torch_info():
    try:
        import torch
    except ImportError:
        return None
    cfg = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in cfg.replace(",", "\n").split()
                 if part.startswith("BLAS_INFO=")), None)
    info = {"version": torch.__version__, "threads": torch.get_num_threads(), "blas": blas,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cupy_info():
    try:
        import cupy
    except ImportError:
        return None
    info = {"version": cupy.__version__}
    try:
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as e:  # noqa: BLE001 - no driver / no device
        info["gpu"] = None
        info["error"] = f"{type(e).__name__}: {e}"
    return info


def _numpy_fallbacks():
    return sorted(n for n in dir(gf_ref) if not n.startswith("_") and hasattr(gf_cpu, n)
                  and callable(getattr(gf_ref, n)) and not isinstance(getattr(gf_ref, n), type(np))
                  and not hasattr(_C, n))


def info():
    pools = _threadpools()
    numpy_blas = [p for p in pools or () if p["owner"] == "numpy"]
    torch_info, cupy_info = _torch_info(), _cupy_info()
    gpu = (torch_info or {}).get("gpu") or (cupy_info or {}).get("gpu")
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "simd_level": _C.simd_level(),
        "gradflow": {"version": gf.__version__, "threads": gf.get_num_threads(),
                     "blas_kernel": _C.blas_corename(), "blas_config": _C.blas_config(),
                     # CPU backend ops with no C++ kernel in this build (served by numpy)
                     "numpy_fallbacks": _numpy_fallbacks()},
        "numpy": {"version": np.__version__,
                  "blas": numpy_blas[0] if numpy_blas else None},
        "torch": torch_info,
        "cupy": cupy_info,
        "gpu": gpu,
        "threadpools": pools,
        "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
    }


def one_line(m):
    """A one-line summary for the table and the results README."""
    g = m["gradflow"]
    parts = [m["cpu_model"], f"{m['cores_usable'] or m['cores']} cores", m["simd_level"],
             f"gradflow OpenBLAS {g['blas_kernel']} ({g['threads']} threads)"]
    if m["numpy"]["blas"]:
        b = m["numpy"]["blas"]
        parts.append(f"numpy {b['api']} {b['architecture']} ({b['threads']} threads)")
    if m["torch"]:
        parts.append(f"torch {m['torch']['version']} {m['torch']['blas']} ({m['torch']['threads']} threads)")
    if m["gpu"]:
        parts.append(f"GPU {m['gpu']}")
    if "OPENBLAS_CORETYPE" in m["env"]:
        parts.append(f"OPENBLAS_CORETYPE={m['env']['OPENBLAS_CORETYPE']}")
    return ", ".join(parts)
