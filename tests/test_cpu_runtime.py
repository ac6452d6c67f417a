"""The CPU backend's runtime: recycled output buffers (which must never leak old values into a
live array or be handed out twice), the flush-denormal mode, and the dtype fallback wrapper."""

import numpy as np
import pytest

import gradflow as gf
from gradflow import _C

N = 1 << 18  # 1 MiB of float32: above the caching threshold


def test_freed_output_buffer_is_reused_and_overwritten():
    _C.empty_cache()
    x = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    y = _C.sigmoid(x)
    first = y.__array_interface__["data"][0]
    del y
    assert _C.cached_bytes() == x.nbytes
    z = _C.relu(x)  # same byte size: takes the cached buffer
    assert z.__array_interface__["data"][0] == first
    assert _C.cached_bytes() == 0
    np.testing.assert_array_equal(z, np.maximum(x, 0))


def test_live_outputs_never_share_a_buffer():
    _C.empty_cache()
    x = np.ones(N, np.float32)
    outs = [_C.mul(x, np.float32(k)) for k in range(4)]
    addresses = {o.__array_interface__["data"][0] for o in outs}
    assert len(addresses) == 4
    for k, o in enumerate(outs):
        assert (o == k).all()


def test_empty_cache_releases_everything():
    y = _C.exp(np.zeros(N, np.float64))
    del y
    assert _C.cached_bytes() > 0
    gf.empty_cache()
    assert _C.cached_bytes() == 0


def test_small_outputs_are_not_cached():
    _C.empty_cache()
    y = _C.exp(np.zeros(1000, np.float32))
    del y
    assert _C.cached_bytes() == 0


def test_flush_denormal_mode_round_trip():
    """On this thread and on the kernels' worker threads (the mode is per thread: the big array
    is split across them)."""
    for n in (4, 1 << 18):
        tiny = np.full(n, 1e-40, np.float32)  # a float32 denormal
        try:
            assert gf.set_flush_denormal(True)
            assert (_C.mul(tiny, np.float32(1.0)) == 0).all()
        finally:
            gf.set_flush_denormal(False)
        assert (_C.mul(tiny, np.float32(1.0)) == tiny).all()


def test_with_fallback_runs_slow_only_on_type_error():
    def fast(a, b=0):
        if isinstance(a, int):
            raise TypeError("ints go to the fallback")
        if a is None:
            raise ValueError("bad input")
        return ("fast", a, b)

    f = _C.with_fallback(fast, lambda a, b=0: ("slow", a, b))
    assert f(1.5, b=2) == ("fast", 1.5, 2)
    assert f(3, 4) == ("slow", 3, 4)
    with pytest.raises(ValueError, match="bad input"):
        f(None)
    assert f.__name__ == "fast"
    with pytest.raises(TypeError, match="callables"):
        _C.with_fallback(fast, 3)
