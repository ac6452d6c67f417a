"""cupy.cuda.runtime of the stand-in: the device count comes from GRADFLOW_TEST_FAKE_CUDA."""

import os


class CUDARuntimeError(RuntimeError):
    pass


def device_count():
    return int(os.environ.get("GRADFLOW_TEST_FAKE_CUDA", "0") or 0)


def getDeviceCount():  # noqa: N802 - CuPy's name
    n = device_count()
    if n == 0:
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    return n


def getDevice():  # noqa: N802
    from . import _current_id

    return _current_id()


def getDeviceProperties(device):  # noqa: N802
    return {"name": b"gradflow test stand-in (numpy on the host)", "major": 9, "minor": 0,
            "totalGlobalMem": 1 << 34, "warpSize": 32}


def deviceCanAccessPeer(device, peer):  # noqa: N802 - no peer access: device mix-ups fail
    return 0


is_hip = False
