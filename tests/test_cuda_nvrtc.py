"""Every kernel the CUDA backend can launch, written by CuPy's own code generator and compiled
by NVRTC with CuPy's options, without a GPU.

For each kernel of ``cuda_kernels``: each float type (and int32/int64 labels), contiguous and
strided operands, 32- and 64-bit indexing, and for the reductions with one input and one
output the CUB path's renamed source. The source is what ``ElementwiseKernel`` /
``ReductionKernel`` would hand to ``compile_with_cache`` (``_get_elementwise_kernel_code``,
``_ReductionKernel_get_cached_function_code``, CuPy's header list and
``assemble_cupy_compiler_options`` plus ``-ftz=true``), compiled by ``compile_using_nvrtc``
for sm_90; and CuPy's own copy kernel between bfloat16 and float32 (CuPy 14; with CuPy 13
gradflow refuses bfloat16 on CUDA). Needs a real CuPy and the NVRTC wheel (``.ci/run``
installs both, for CuPy 13 and 14, into a folder of their own); skips, saying why, without
them.
"""

import ctypes
import glob
import itertools
import os
import sys

import numpy as np
import pytest

from gradflow.backend.cuda_kernels import KERNELS, Elementwise
from gradflow.backend.cuda_kernels.defs import preamble_source

ARCH = "90"


def _cupy():
    try:
        import cupy
    except Exception as e:  # noqa: BLE001 - any import failure is a reason to skip
        pytest.skip(f"CuPy cannot be imported ({e}): the NVRTC check needs the cupy wheel")
    if "stand-in" in cupy.__version__:
        pytest.skip("the CuPy stand-in is active: the NVRTC check needs the real cupy wheel")
    for folder in sys.path:  # the NVRTC wheel's library, loaded before CuPy looks for it
        for lib in sorted(glob.glob(os.path.join(folder, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.*"))):
            ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    from cupy.cuda import compiler

    try:
        compiler._get_nvrtc_version()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"NVRTC cannot be loaded ({e}): install nvidia-cuda-nvrtc-cu12")
    return cupy


@pytest.fixture(scope="module")
def cupy_nvrtc():
    cupy = _cupy()
    from cupy.cuda import compiler

    # The arch CuPy would pick is memoized per device (it asks the driver); with no GPU the
    # arch is given, through the same function without the memo.
    original = compiler._get_arch_for_options_for_nvrtc
    compiler._get_arch_for_options_for_nvrtc = original.__wrapped__
    yield cupy
    compiler._get_arch_for_options_for_nvrtc = original


FLOATS = (np.float32, np.float64)
LABELS = (np.int32, np.int64)
LAYOUTS = {"contiguous": (1, True), "strided": (2, False)}


def _variants(kernel):
    uses_s = any(p.split()[-2] == "S" for p in (kernel.in_params + "," + kernel.out_params).split(",") if p.strip())
    return list(itertools.product(FLOATS, LABELS if uses_s else (None,), LAYOUTS, (True, False)))


def _source_and_options(code):
    """What compile_with_cache hands NVRTC for ``code``: CuPy's headers first, and CuPy's
    options (CuPy 13 adds the CUDA runtime wheel's include folder here; 14 in the assembly)."""
    from cupy._core import core
    from cupy.cuda import compiler

    source = "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + code
    extra = getattr(compiler, "_get_extra_include_dir_opts", tuple)()
    return source, core.assemble_cupy_compiler_options(()) + ("-ftz=true",) + extra


def _compile(cupy, code, name):
    from cupy.cuda import compiler

    source, options = _source_and_options(code)
    try:
        compiler.compile_using_nvrtc(source, options, ARCH)
    except compiler.CompileException as e:
        pytest.fail(f"{name}: NVRTC rejects the source CuPy generates:\n{e}\n---- source ----\n{code}")


def _arginfos(cupy, kernel, params, types, layout, idx32, n_indexers):
    """CuPy's _ArgInfo for each parameter as the backend passes it: Python numbers for the
    kernel's scalars, arrays (raw ones 2-D contiguous) otherwise."""
    from cupy._core import _carray, _kernel, _scalar

    ndim, contiguous = LAYOUTS[layout]
    out = []
    for p, t in zip(params, types):
        if p.name in kernel.scalars:
            out.append(_kernel._ArgInfo(3, _scalar.CScalar, np.dtype(t).type, 0, True, True))
        elif p.raw:
            out.append(_kernel._ArgInfo(1, cupy.ndarray, np.dtype(t).type, 2, True, idx32))
        else:
            out.append(_kernel._ArgInfo(1, cupy.ndarray, np.dtype(t).type, ndim, contiguous, idx32))
    return out + [_kernel._ArgInfo(2, _carray.Indexer, None, ndim, True, idx32)] * n_indexers


def _types(cupy, kernel, in_params, out_params, T, S):
    from cupy._core import _kernel

    def dtype_of(p):
        return {"T": T, "S": S}.get(p.ctype) if p.dtype is None else p.dtype

    in_dtypes = tuple(None if p.name in kernel.scalars else np.dtype(dtype_of(p)).type for p in in_params)
    out_dtypes = tuple(np.dtype(dtype_of(p)).type for p in out_params)
    return _kernel._decide_params_type(in_params, out_params, in_dtypes, out_dtypes)


def _elementwise_source(cupy, k, T, S, layout, idx32):
    from cupy._core import _kernel

    in_params, out_params = _kernel._get_param_info(k.in_params, True), _kernel._get_param_info(k.out_params, False)
    in_types, out_types, type_map = _types(cupy, k, in_params, out_params, T, S)
    params = in_params + out_params + _kernel._get_param_info("CIndexer _ind", False)
    arginfos = _arginfos(cupy, k, in_params + out_params, in_types + out_types, layout, idx32, 1)
    return _kernel._get_elementwise_kernel_code(tuple(arginfos), type_map, params, k.operation,
                                                k.name, preamble_source(k))


def cub_renamed(in_params, out_params, map_expr, post_map_expr):
    """_try_to_call_cub_reduction's renaming of a one-input, one-output reduction."""
    old_in0, old_out0 = in_params.split()[-1], out_params.split()[-1]
    if old_in0 == "in0" and old_out0 == "out0":
        return in_params, out_params, map_expr, post_map_expr
    return (in_params.rsplit(" ", 1)[0] + " in0", out_params.rsplit(" ", 1)[0] + " out0",
            map_expr.replace(old_in0, "in0"), post_map_expr.replace(old_out0, "out0"))


def _reduction_source(cupy, k, T, S, layout, idx32, cub=False):
    from cupy._core import _kernel, _reduction

    in_s, out_s, map_expr, post_map_expr = k.in_params, k.out_params, k.map_expr, k.post_map_expr
    if cub:
        in_s, out_s, map_expr, post_map_expr = cub_renamed(in_s, out_s, map_expr, post_map_expr)
    in_params, out_params = _kernel._get_param_info(in_s, True), _kernel._get_param_info(out_s, False)
    in_types, out_types, type_map = _types(cupy, k, in_params, out_params, T, S)
    type_map = _kernel._TypeMap(type_map._pairs + (("IndexT", np.int32 if idx32 else np.int64),))
    params = (in_params + out_params
              + _kernel._get_param_info("CIndexer _in_ind, CIndexer _out_ind", False)
              + _kernel._get_param_info("int32 _block_stride", True))
    ndim, contiguous = LAYOUTS[layout]
    arginfos = (_arginfos(cupy, k, in_params, in_types, layout, idx32, 0)
                + [_kernel._ArgInfo(1, cupy.ndarray, np.dtype(t).type, 1, True, idx32) for t in out_types]
                + [_kernel._ArgInfo(2, cupy._core._carray.Indexer, None, ndim, True, idx32),
                   _kernel._ArgInfo(2, cupy._core._carray.Indexer, None, 1, True, idx32),
                   _kernel._ArgInfo(3, cupy._core._scalar.CScalar, np.int32, 0, True, True)])
    reduce_type = k.reduce_type or out_params[0].ctype
    return _reduction._ReductionKernel_get_cached_function_code(
        len(in_params), len(out_params), params, tuple(arginfos), type_map, k.name, 512,
        reduce_type, k.identity, map_expr, k.reduce_expr, post_map_expr, preamble_source(k), ())


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_cupy_generates_and_nvrtc_compiles_every_variant(cupy_nvrtc, name):
    k = KERNELS[name]
    for T, S, layout, idx32 in _variants(k):
        if isinstance(k, Elementwise):
            _compile(cupy_nvrtc, _elementwise_source(cupy_nvrtc, k, T, S, layout, idx32), name)
        else:
            _compile(cupy_nvrtc, _reduction_source(cupy_nvrtc, k, T, S, layout, idx32), name)
            if len(k.in_params.split(",")) == 1 and len(k.out_params.split(",")) == 1 and layout == "contiguous":
                _compile(cupy_nvrtc, _reduction_source(cupy_nvrtc, k, T, S, layout, idx32, cub=True),
                         name + " (CUB renaming)")


def test_a_broken_kernel_is_a_compile_error(cupy_nvrtc):
    """The check above can fail: a typo in a kernel body is rejected by NVRTC."""
    from cupy.cuda import compiler

    bad = Elementwise("gf_bad", "T x", "T y", "y = gf::math::no_such_function(x)", ("math",))
    source, options = _source_and_options(
        _elementwise_source(cupy_nvrtc, bad, np.float32, None, "contiguous", True))
    with pytest.raises(compiler.CompileException, match="no_such_function"):
        compiler.compile_using_nvrtc(source, options, ARCH)


def test_the_cub_renaming_would_rewrite_a_stray_name():
    """Why the one-input reductions name their parameters in0/out0: with other names, CuPy's
    substring replacement rewrites any identifier containing them."""
    renamed = cub_renamed("T x", "T y", "exp(x)", "y = my_log(a)")
    assert renamed[3] == "out0 = mout0_log(a)"  # the broken source CUB would compile
    for k in KERNELS.values():
        if not isinstance(k, Elementwise) and "," not in k.in_params and "," not in k.out_params:
            assert cub_renamed(k.in_params, k.out_params, k.map_expr, k.post_map_expr) == (
                k.in_params, k.out_params, k.map_expr, k.post_map_expr), k.name


def test_cupy_casts_between_bfloat16_and_float32_compile_or_bfloat16_is_refused(cupy_nvrtc):
    """gradflow's kernels never see bfloat16 (its ops compute in float32); on a GPU its
    bfloat16 data goes through CuPy's copy ufunc (``astype``, strided copies and writes into
    a bfloat16 array: the loop ``out0 = in0`` between float and CuPy's ``bfloat16`` class).
    With a CuPy that has bfloat16 (14 on), the casts both ways and the bfloat16 copy compile
    with the options above, through CuPy's code generator; with one that has not (13),
    gradflow refuses bfloat16 on CUDA up front."""
    import ml_dtypes
    from cupy._core import _carray, _kernel, core

    from gradflow import dtypes
    from gradflow.backend import cuda

    bf = np.dtype(ml_dtypes.bfloat16)
    loops = {op.in_types[0]: op.routine for op in core.elementwise_copy._ops.ops}
    if not cuda.has_bfloat16():
        assert bf not in loops and int(cupy_nvrtc.__version__.split(".")[0]) < 14
        with pytest.raises(TypeError, match=r"cuda:0 need CuPy >= 14.*CuPy 13\."):
            dtypes.check_supported(bf, "tensor", "cuda:0")
        return
    assert dtypes.check_supported(bf, "tensor", "cuda:0") is bf
    assert loops[bf] == "out0 = in0"
    params = (_kernel._get_param_info("T in0", True) + _kernel._get_param_info("U out0", False)
              + _kernel._get_param_info("CIndexer _ind", False))
    for src, dst in [(np.dtype(np.float32), bf), (bf, np.dtype(np.float32)), (bf, bf)]:
        for layout, idx32 in itertools.product(LAYOUTS, (True, False)):
            ndim, contiguous = LAYOUTS[layout]
            arginfos = (_kernel._ArgInfo(1, cupy_nvrtc.ndarray, src.type, ndim, contiguous, idx32),
                        _kernel._ArgInfo(1, cupy_nvrtc.ndarray, dst.type, ndim, True, idx32),
                        _kernel._ArgInfo(2, _carray.Indexer, None, ndim, True, idx32))
            code = _kernel._get_elementwise_kernel_code(
                arginfos, _kernel._TypeMap((("T", src.type), ("U", dst.type))), params,
                loops[src], "cupy_copy", "")
            assert "cupy/bfloat16.cuh" in code and "bfloat16" in code
            _compile(cupy_nvrtc, code, f"astype {src} -> {dst}")
