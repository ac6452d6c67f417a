"""ElementwiseKernel and ReductionKernel of the stand-in.

The kernel strings a caller passes are turned into source the way CuPy does it (cupy/_core/
_kernel.pyx and _reduction.pyx of CuPy 13/14): the same parameter parsing and type decisions,
typedefs, ``CArray``/``CIndexer`` parameters, per-element bindings (``const T &x =
_raw_x[_ind.get()]``), the reduction's ``REDUCE``/``POST_MAP`` macros, identity, map and
post-map, and the CUB path's renaming of a single input/output to ``in0``/``out0``. The
source is compiled with g++ behind ``compat.h`` and run on the host over the arrays' memory.
Only the reduction's loop is the stand-in's own: one thread, with the partial results of a
few virtual threads merged pairwise (identities included), as a block's tree merges them.
"""

import ctypes
import hashlib
import os
import string
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

_HEADER = (Path(__file__).with_name("compat.h")).read_text()
_CACHE = Path(os.environ.get("GRADFLOW_FAKE_CUPY_CACHE")
              or Path(tempfile.gettempdir()) / f"gradflow-fakecupy-{os.getuid()}")
_lock = threading.Lock()
_loaded = {}

_TYPENAMES = {np.dtype(t): n for t, n in [
    (np.bool_, "bool"), (np.int8, "signed char"), (np.uint8, "unsigned char"),
    (np.int16, "short"), (np.uint16, "unsigned short"), (np.int32, "int"),
    (np.uint32, "unsigned int"), (np.int64, "long long"), (np.uint64, "unsigned long long"),
    (np.float32, "float"), (np.float64, "double")]}


def typename(dtype):
    """The C type of ``dtype``. CuPy 14 would also write float16 and bfloat16 kernels, but
    gradflow's are written for float32/float64 (its ops compute 16-bit floats in float32):
    a 16-bit array given to one means an op skipped that widening."""
    dtype = np.dtype(dtype)
    if dtype not in _TYPENAMES:
        raise TypeError(f"a {dtype} array was given to an ElementwiseKernel/ReductionKernel: "
                        "gradflow's kernels take float32/float64 (16-bit floats must be widened "
                        "to float32 first)")
    return _TYPENAMES[dtype]


class CompileException(Exception):
    pass


# ---- parameters and types (cupy/_core/_kernel.pyx: ParameterInfo, _decide_params_type) -------
class ParameterInfo:
    def __init__(self, param, is_const):
        self.raw, self.is_const, self.dtype = False, is_const, None
        s = param.split()
        if len(s) < 2:
            raise Exception(f"Syntax error: {param}")
        t, self.name = s[-2:]
        if t == "CIndexer" or len(t) == 1:
            self.ctype = t
        else:
            dtype = np.dtype(t)
            if dtype.name != t:
                raise ValueError(f"Wrong type {t}")
            self.dtype, self.ctype = dtype, typename(dtype)
        for word in s[:-2]:
            if word == "raw":
                self.raw = True
            elif word == "_non_const":
                self.is_const = False
            else:
                raise Exception(f'Unknown keyword "{word}"')


def param_info(s, is_const):
    return () if not s.strip() else tuple(ParameterInfo(p, is_const) for p in s.strip().split(","))


def decide_types(in_params, out_params, in_dtypes, out_dtypes):
    types = {}
    for p, a in zip(out_params, out_dtypes):
        if a is None:
            raise TypeError("Output arguments must be cupy.ndarray")
        if p.dtype is not None:
            if np.dtype(a) != p.dtype:
                raise TypeError(f"Type is mismatched. {p.name} {a} {p.dtype}")
        elif p.ctype in types:
            if np.dtype(types[p.ctype]) != np.dtype(a):
                raise TypeError(f"Type is mismatched. {p.name} {a} {types[p.ctype]} {p.ctype}")
        else:
            types[p.ctype] = np.dtype(a)
    for p, a in zip(in_params, in_dtypes):
        if a is None:
            continue
        if p.dtype is not None:
            if np.dtype(a) != p.dtype:
                raise TypeError(f"Type is mismatched. {p.name} {a} {p.dtype}")
        elif p.ctype in types:
            if np.dtype(types[p.ctype]) != np.dtype(a):
                raise TypeError(f"Type is mismatched. {p.name} {a} {types[p.ctype]} {p.ctype}")
        else:
            types[p.ctype] = np.dtype(a)
    in_types = tuple(types[p.ctype] if p.dtype is None else p.dtype for p in in_params)
    out_types = tuple(types[p.ctype] if p.dtype is None else p.dtype for p in out_params)
    return in_types, out_types, tuple(sorted(types.items()))


def typedefs(type_map):
    return "".join(f"typedef {t if isinstance(t, str) else typename(t)} {n};\n" for n, t in type_map)


# ---- arguments as the kernel sees them ---------------------------------------------------------
class _Scalar:
    """CuPy's CScalar: a Python or numpy scalar, cast to the parameter's type at launch."""

    def __init__(self, value):
        self.value = value

    def cast(self, dtype):
        with np.errstate(all="ignore"):
            self.arr = np.array(self.value).astype(dtype)
        return self


class _Indexer:
    def __init__(self, shape):
        self.shape = tuple(shape)
        self.size = int(np.prod(self.shape, dtype=np.int64))


def _index_32_bits(a):
    return a._a.size * a._a.itemsize < 2**31 and max((abs(s) for s in a._a.strides), default=0) * max(a._a.shape, default=1) < 2**31


def c_type(arg):
    """The argument's C type in the kernel's parameter list (CuPy's _ArgInfo.get_c_type)."""
    from . import ndarray

    if isinstance(arg, ndarray):
        c = arg._a.flags.c_contiguous or arg._a.ndim == 0
        return f"CArray<{typename(arg.dtype)}, {arg.ndim}, {int(c)}, {int(_index_32_bits(arg))}>"
    if isinstance(arg, _Indexer):
        return f"CIndexer<{len(arg.shape)}, {int(arg.size < 2**31)}>"
    return typename(arg.arr.dtype)


def _pack(arg):
    from . import ndarray

    if isinstance(arg, ndarray):
        a = arg._a
        if a.ndim == 0:
            return np.array([a.ctypes.data, 1], np.int64)
        return np.array([a.ctypes.data, a.size, *a.shape, *a.strides], np.int64)
    if isinstance(arg, _Indexer):
        if not arg.shape:
            return np.array([arg.size], np.int64)
        return np.array([arg.size, *arg.shape, *([0] * len(arg.shape))], np.int64)
    return np.ascontiguousarray(arg.arr.reshape(1))


def kernel_params(params, args):
    """'const CArray<float, 1, 1, 1> _raw_x, const float slope, CIndexer<1, 1> _ind'."""
    from . import ndarray

    out = []
    for p, a in zip(params, args):
        name = "_raw_" + p.name if isinstance(a, ndarray) and not p.raw else p.name
        out.append(("const " if p.is_const else "") + c_type(a) + " " + name)
    return ", ".join(out)


def launch(source, name, args):
    """Compile ``source`` (cached by its text) with a launcher for kernel ``name`` taking
    ``args`` (packed as CuPy packs kernel arguments), and run it."""
    types = [c_type(a) for a in args]
    call = ", ".join(f"*reinterpret_cast<{t}*>(a[{k}])" for k, t in enumerate(types))
    full = (_HEADER + "\n" + source
            + f'\nextern "C" void gf_fake_launch(void** a) {{ {name}({call}); }}\n')
    fn = _compiled(full)
    packed = [_pack(a) for a in args]
    ptrs = (ctypes.c_void_p * max(len(packed), 1))(*[p.ctypes.data for p in packed])
    fn(ptrs)


def _compiled(full):
    key = hashlib.sha256(full.encode()).hexdigest()[:32]
    with _lock:
        fn = _loaded.get(key)
        if fn is not None:
            return fn
        so = _CACHE / f"{key}.so"
        if not so.exists():
            _CACHE.mkdir(parents=True, exist_ok=True)
            src = _CACHE / f"{key}.{os.getpid()}.cpp"
            src.write_text(full)
            tmp = _CACHE / f"{key}.{os.getpid()}.so"
            r = subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-w", "-o", str(tmp),
                                str(src)], capture_output=True, text=True)
            src.unlink()
            if r.returncode != 0:
                raise CompileException(r.stderr[-6000:] + "\n---- source ----\n" + full[len(_HEADER):])
            os.replace(tmp, so)
        fn = ctypes.CDLL(str(so)).gf_fake_launch
        fn.argtypes = [ctypes.c_void_p]
        fn.restype = None
        _loaded[key] = fn
        return fn


# ---- argument preparation shared by both kernels ------------------------------------------------
def preprocess(args):
    """CuPy's _preprocess_args: arrays must be on the current device; anything else must be a
    scalar (a numpy array is not one: TypeError, as in CuPy)."""
    from . import _check_device, ndarray

    out = []
    for a in args:
        if isinstance(a, ndarray):
            _check_device(a)
            out.append(a)
        elif isinstance(a, (bool, int, float, complex, np.generic)):
            out.append(_Scalar(a))
        else:
            raise TypeError(f"Unsupported type {type(a)}")
    return out


def broadcast(args, params, use_size):
    from . import _view, ndarray

    arrays = [a for a, p in zip(args, params) if isinstance(a, ndarray) and not p.raw]
    if use_size and arrays:
        raise ValueError("Specified 'size' can be used only if all of the ndarray are 'raw'.")
    if not use_size and not arrays:
        raise ValueError("Loop size is undecided.")
    if not arrays:
        return list(args), ()
    shape = np.broadcast_shapes(*[a.shape for a in arrays])
    out = [_view(np.broadcast_to(a._a, shape), a) if isinstance(a, ndarray) and not p.raw
           and a.shape != shape else a for a, p in zip(args, params)]
    return out, shape


def reduce_dims(args, params, shape):
    """CuPy's _reduce_dims for the common case: all non-raw arrays C-contiguous -> one axis."""
    from . import _view, ndarray

    arrays = [i for i, (a, p) in enumerate(zip(args, params)) if isinstance(a, ndarray) and not p.raw]
    if len(shape) <= 1 or not arrays or not all(args[i]._a.flags.c_contiguous for i in arrays):
        return args, shape
    size = int(np.prod(shape))
    args = list(args)
    for i in arrays:
        args[i] = _view(args[i]._a.reshape(size), args[i])
    return args, (size,)


# ---- ElementwiseKernel (cupy/_core/_kernel.pyx) --------------------------------------------------
_ELEMENTWISE = string.Template('''
    ${typedef_preamble}
    ${preamble}
    extern "C" __global__ void ${name}(${params}) {
      ${loop_prep};
      #pragma unroll 1
      CUPY_FOR(i, _ind.size()) {
        _ind.set(i);
        ${operation};
      }
      ${after_loop};
    }
    ''')


class ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, loop_prep="", after_loop="",
                 **kwargs):
        self.in_params = param_info(in_params, True)
        self.out_params = param_info(out_params, False)
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self.nargs = self.nin + self.nout
        self.params = self.in_params + self.out_params + param_info("CIndexer _ind", False)
        self.operation, self.name, self.preamble = operation, name, preamble
        self.reduce_dims, self.no_return, self.return_tuple = reduce_dims, no_return, return_tuple
        self.loop_prep, self.after_loop = loop_prep, after_loop
        if "i" in [p.name for p in self.in_params + self.out_params]:
            raise ValueError("Can not use 'i' as a parameter name")
        self.__name__ = name

    def __call__(self, *args, size=-1, stream=None, block_size=128):
        from . import ndarray, empty

        if len(args) not in (self.nin, self.nargs):
            raise TypeError(f"Wrong number of arguments for {self.name!r}. It must be either "
                            f"{self.nin} or {self.nargs} (with outputs), but given {len(args)}.")
        arg_list = preprocess(args)
        out_args = arg_list[self.nin:]
        bargs, shape = broadcast(arg_list, self.params, size != -1)
        in_args = bargs[:self.nin]
        in_types, out_types, type_map = decide_types(
            self.in_params, self.out_params,
            [a.dtype if isinstance(a, ndarray) else None for a in in_args],
            [a.dtype for a in out_args])
        if size != -1:
            shape = (size,)
        if not out_args:
            if any(p.raw for p in self.out_params) and size == -1:
                raise ValueError("Output array size is Undecided")
            out_args = [empty(shape, t) for t in out_types]
        else:
            for p, a in zip(self.out_params, out_args):
                if not isinstance(a, ndarray):
                    raise TypeError("Output arguments type must be cupy.ndarray")
                if not p.raw and a.shape != tuple(shape):
                    raise ValueError("Out shape is mismatched")
        ret = None if self.no_return else (
            out_args[0] if not self.return_tuple and self.nout == 1 else tuple(out_args))
        if 0 in tuple(shape):
            return ret
        in_args = [a.cast(t) if isinstance(a, _Scalar) else a for a, t in zip(in_args, in_types)]
        inout = in_args + list(out_args)
        if self.reduce_dims:
            inout, shape = reduce_dims(inout, self.params, shape)
        inout.append(_Indexer(shape))
        op = [("const {t} &{n} = _raw_{n}[_ind.get()];" if p.is_const else
               "{t} &{n} = _raw_{n}[_ind.get()];").format(t=p.ctype, n=p.name)
              for p, a in zip(self.params, inout) if isinstance(a, ndarray) and not p.raw]
        source = _ELEMENTWISE.substitute(
            typedef_preamble=typedefs(type_map), preamble=self.preamble, name=self.name,
            params=kernel_params(self.params, inout), operation="\n".join(op + [self.operation]),
            loop_prep=self.loop_prep, after_loop=self.after_loop)
        launch(source, self.name, inout)
        return ret


# ---- ReductionKernel (cupy/_core/_reduction.pyx, _cub_reduction.pyx) ------------------------------
_THREADS = 8  # virtual threads whose partial results are merged as a tree
_REDUCTION = string.Template('''
${type_preamble}
${preamble}
#define REDUCE(a, b) (${reduce_expr})
#define POST_MAP(a) (${post_map_expr})
#define _REDUCE(_offset) if (_tid < _offset) { \\
  _type_reduce _a = _sdata[_tid], _b = _sdata[(_tid + _offset)]; \\
  _sdata[_tid] = REDUCE(_a, _b); \\
}

typedef ${reduce_type} _type_reduce;
extern "C" __global__ void ${name}(${params}) {
  const ptrdiff_t _n_out = _out_ind.size();
  for (ptrdiff_t _i = 0; _i < _n_out; ++_i) {
    _type_reduce _sdata[${threads}];
    for (unsigned int _tid = 0; _tid < ${threads}; ++_tid) {
      _type_reduce _s = _type_reduce(${identity});
      for (ptrdiff_t _j = _i + _tid * _n_out; _j < _in_ind.size(); _j += ${threads} * _n_out) {
        _in_ind.set(_j);
        ${input_expr}
        _type_reduce _a = static_cast<_type_reduce>(${pre_map_expr});
        _s = REDUCE(_s, _a);
      }
      _sdata[_tid] = _s;
    }
    for (unsigned int _block = ${threads} / 2; _block >= 1; _block >>= 1)
      for (unsigned int _tid = 0; _tid < _block; ++_tid) {
        _REDUCE(_block);
      }
    _type_reduce _s = _sdata[0];
    _out_ind.set(_i);
    ${output_expr}
    POST_MAP(_s);
  }
}''')


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim)), ()
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    red = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        red.append(a % ndim)
    red = tuple(sorted(red))
    if len(set(red)) != len(red):
        raise ValueError("duplicate value in 'axis'")
    return red, tuple(d for d in range(ndim) if d not in red)


def cub_usable(in_args, out_args, reduce_axis, out_axis):
    """CuPy's _can_use_cub_block_reduction (CUB on by default, as CUPY_ACCELERATORS is)."""
    if os.environ.get("CUPY_ACCELERATORS", "cub") == "" or len(in_args) != 1 or len(out_args) != 1:
        return False
    a = in_args[0]._a
    n = a.ndim
    if a.flags.c_contiguous:
        ok = reduce_axis == tuple(range(n - len(reduce_axis), n))
        perm = out_axis + reduce_axis
    elif a.flags.f_contiguous:
        ok = reduce_axis == tuple(range(len(reduce_axis)))
        perm = reduce_axis + out_axis
    else:
        return False
    size = int(np.prod([a.shape[i] for i in reduce_axis], dtype=np.int64))
    return ok and perm == tuple(range(n)) and size > 0


class ReductionKernel:
    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", reduce_type=None, reduce_dims=True, preamble="", options=()):
        self.in_params = param_info(in_params, True)
        self.out_params = param_info(out_params, False)
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self.nargs = self.nin + self.nout
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.name, self.preamble = identity, name, preamble
        self.reduce_dims = reduce_dims
        self.reduce_type = self.out_params[0].ctype if reduce_type is None else reduce_type
        self.__name__ = name

    def __call__(self, *args, out=None, axis=None, keepdims=False, stream=None):
        from . import _view, empty, ndarray

        if len(args) not in (self.nin, self.nargs):
            raise TypeError(f"Wrong number of arguments for {self.name}")
        out_args = list(args[self.nin:])
        if out is not None:
            if self.nout != 1:
                raise NotImplementedError("")
            if out_args:
                raise ValueError("cannot specify 'out' as both a positional and keyword argument")
            out_args = [out]
        in_args = preprocess(args[:self.nin])
        out_args = preprocess(out_args)
        in_args, a_shape = broadcast(in_args, self.in_params, False)
        in_types, out_types, type_map = decide_types(
            self.in_params, self.out_params,
            [a.dtype if isinstance(a, ndarray) else None for a in in_args],
            [a.dtype if isinstance(a, ndarray) else None for a in out_args])
        reduce_axis, out_axis = _normalize_axis(axis, len(a_shape))
        out_shape = (tuple(1 if i in reduce_axis else n for i, n in enumerate(a_shape)) if keepdims
                     else tuple(a_shape[i] for i in out_axis))
        if not out_args:
            out_args = [empty(out_shape, t) for t in out_types]
        else:
            for a in out_args:
                if not isinstance(a, ndarray):
                    raise TypeError("Output arguments type must be cupy.ndarray")
                if a.shape != out_shape:
                    raise ValueError("Out shape is mismatched")
        ret = out_args[0]
        if ret.size == 0:
            return ret
        if self.identity == "" and 0 in a_shape:
            raise ValueError(f"zero-size array to reduction operation {self.name} which has no identity")
        in_size = int(np.prod(a_shape, dtype=np.int64))
        type_map = type_map + (("IndexT", np.dtype(np.int64 if in_size // ret.size > 0x7fffffff
                                                   else np.int32)),)
        in_args = [a.cast(t) if isinstance(a, _Scalar) else a for a, t in zip(in_args, in_types)]

        in_params, out_params = self.in_params, self.out_params
        map_expr, post_map_expr = self.map_expr, self.post_map_expr
        if cub_usable(in_args, out_args, reduce_axis, out_axis):
            # _try_to_call_cub_reduction: the one input and output are renamed by substring
            # replacement in the map and post-map expressions.
            old_in0, old_out0 = in_params[0].name, out_params[0].name
            if old_in0 != "in0" or old_out0 != "out0":
                in_params = param_info(f"{in_params[0].ctype} in0", True)
                out_params = param_info(f"{out_params[0].ctype} out0", False)
                map_expr = map_expr.replace(old_in0, "in0")
                post_map_expr = post_map_expr.replace(old_out0, "out0")
        perm = reduce_axis + out_axis
        in_args = [_view(a._a.transpose(perm), a) if isinstance(a, ndarray) else a for a in in_args]
        in_shape = tuple(a_shape[i] for i in perm)
        if self.reduce_dims:
            in_args, in_shape = reduce_dims(in_args, in_params, in_shape)
            out_args, out_shape = reduce_dims(out_args, out_params, out_shape)
        params = (in_params + out_params
                  + param_info("CIndexer _in_ind, CIndexer _out_ind", False)
                  + param_info("int32 _block_stride", True))
        inout = in_args + list(out_args) + [_Indexer(in_shape), _Indexer(out_shape),
                                            _Scalar(1).cast(np.int32)]
        input_expr = "\n".join(
            ("const {0} {1}" if p.is_const else "{0}& {1}").format(p.ctype, p.name)
            + f" = _raw_{p.name}[_in_ind.get()];"
            for p, a in zip(in_params, in_args) if not p.raw and isinstance(a, ndarray))
        output_expr = "\n".join(
            f"{p.ctype} &{p.name} = _raw_{p.name}[_out_ind.get()];"
            for p, a in zip(out_params, out_args) if not p.raw and isinstance(a, ndarray) and not p.is_const)
        source = _REDUCTION.substitute(
            type_preamble=typedefs(type_map), preamble=self.preamble, reduce_expr=self.reduce_expr,
            post_map_expr=post_map_expr, reduce_type=self.reduce_type, name=self.name,
            params=kernel_params(params, inout), threads=_THREADS, identity=self.identity,
            input_expr=input_expr, pre_map_expr=map_expr, output_expr=output_expr)
        launch(source, self.name, inout)
        return ret  # CuPy returns the first output only
