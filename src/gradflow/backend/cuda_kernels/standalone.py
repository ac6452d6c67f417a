"""The kernel definitions as one standalone CUDA translation unit, for ``nvcc`` without a GPU.

Each kernel is emitted once per dtype combination the way CuPy emits it: the type
placeholders are typedefs (CuPy puts them at file scope; here each instantiation gets its own
namespace so that float and double fit in one file), elementwise arguments are bound as typed
references per element inside a grid-stride loop over ``i``, scalars are by-value parameters,
``raw`` arrays are pointers indexed by the kernel, and reductions run map -> REDUCE (thread
loop, then a shared-memory tree) -> POST_MAP with CuPy's macro shapes. Compiling this checks
every expression, type and preamble the GPU will see.
"""

import itertools

from .defs import KERNELS, Elementwise, preamble_piece

FLOAT_TYPES = ("float", "double")
LABEL_TYPES = ("int", "long long")
_CTYPES = {"int64": "long long", "int32": "int", "float32": "float", "float64": "double",
           "bool": "bool"}


def parse_params(spec):
    """CuPy's parameter list 'T x, raw T z, int64 c' -> [(raw, type, name)]."""
    out = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        words = item.split()
        raw = words[0] == "raw"
        typ, name = words[-2], words[-1]
        out.append((raw, _CTYPES.get(typ, typ), name))
    return out


# The backend passes these parameters as Python numbers (by value in CuPy), the rest as arrays.
SCALARS = {
    "gf_leaky_relu": ("slope",), "gf_leaky_relu_backward": ("slope",),
    "gf_softplus": ("beta", "threshold"), "gf_softplus_backward": ("beta", "threshold"),
    "gf_pow_scalar_backward": ("p", "pm1"),
    "gf_cross_entropy_pick": ("c",), "gf_cross_entropy_backward": ("c",),
    "gf_sgd": ("lr", "weight_decay"),
    "gf_sgd_momentum": ("lr", "momentum", "one_minus_dampening", "weight_decay", "nesterov",
                        "first_step"),
    "gf_adam": ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2", "step_size", "sqrt_bc2",
                "eps", "weight_decay", "decay", "decoupled"),
}


def _type_combos(kernel):
    text = kernel.in_params + "," + kernel.out_params
    uses_s = any(t == "S" for _, t, _ in parse_params(text))
    return [dict(T=t, S=s) for t, s in itertools.product(FLOAT_TYPES, LABEL_TYPES if uses_s else (None,))]


def _signature(kernel, scalars):
    params, binds_in, binds_out = [], [], []
    for raw, typ, name in parse_params(kernel.in_params):
        if raw:
            params.append(f"{typ}* {name}")
        elif name in scalars:
            params.append(f"{typ} {name}")
        else:
            params.append(f"const {typ}* _raw_{name}")
            binds_in.append((typ, name))
    for raw, typ, name in parse_params(kernel.out_params):
        params.append(f"{typ}* _raw_{name}")
        binds_out.append((typ, name))
    return params, binds_in, binds_out


def _elementwise(k, fname, scalars):
    params, ins, outs = _signature(k, scalars)
    binds = "".join(f"    const {t} &{n} = _raw_{n}[i];\n" for t, n in ins)
    binds += "".join(f"    {t} &{n} = _raw_{n}[i];\n" for t, n in outs)
    return (f'extern "C" __global__ void {fname}({", ".join(params + ["ptrdiff_t _n"])}) {{\n'
            "  for (ptrdiff_t i = blockIdx.x * (ptrdiff_t)blockDim.x + threadIdx.x; i < _n;\n"
            "       i += (ptrdiff_t)blockDim.x * gridDim.x) {\n"
            f"{binds}    {k.operation};\n  }}\n}}\n")


def _reduction(k, fname, scalars):
    params, ins, outs = _signature(k, scalars)
    reduce_type = k.reduce_type or parse_params(k.out_params)[0][1]
    binds_in = "".join(f"      const {t} {n} = _raw_{n}[_o * _n_red + _j];\n" for t, n in ins)
    binds_out = "".join(f"    {t} &{n} = _raw_{n}[_o];\n" for t, n in outs)
    return (f"#define REDUCE(a, b) ({k.reduce_expr})\n#define POST_MAP(a) ({k.post_map_expr})\n"
            f"typedef {reduce_type} _type_reduce;\n"
            f'extern "C" __global__ void {fname}({", ".join(params + ["ptrdiff_t _n_out", "ptrdiff_t _n_red"])}) {{\n'
            "  __shared__ char _sdata_raw[256 * sizeof(_type_reduce)];\n"
            "  _type_reduce *_sdata = reinterpret_cast<_type_reduce*>(_sdata_raw);\n"
            "  const unsigned int _tid = threadIdx.x;\n"
            "  for (ptrdiff_t _o = blockIdx.x; _o < _n_out; _o += gridDim.x) {\n"
            f"    _type_reduce _s = _type_reduce({k.identity});\n"
            "    for (ptrdiff_t _j = _tid; _j < _n_red; _j += blockDim.x) {\n"
            f"{binds_in}      _type_reduce _a = static_cast<_type_reduce>({k.map_expr});\n"
            "      _s = REDUCE(_s, _a);\n    }\n"
            "    _sdata[_tid] = _s;\n    __syncthreads();\n"
            "    for (unsigned int _b = blockDim.x / 2; _b > 0; _b >>= 1) {\n"
            "      if (_tid < _b) { _type_reduce _x = _sdata[_tid], _y = _sdata[_tid + _b];"
            " _sdata[_tid] = REDUCE(_x, _y); }\n"
            "      __syncthreads();\n    }\n"
            "    if (_tid != 0) continue;\n"
            f"    _s = _sdata[0];\n{binds_out}    POST_MAP(_s);\n  }}\n}}\n"
            "#undef REDUCE\n#undef POST_MAP\n")


def translation_unit(kernels=None):
    """(source, [function names]) of one .cu file holding every kernel in every dtype combo."""
    kernels = list(KERNELS.values()) if kernels is None else kernels
    seen, parts, names = set(), [], []
    for k in kernels:  # each preamble once, at file scope, as CuPy pastes it above the kernel
        for p in k.preamble:
            if p not in seen:
                seen.add(p)
                parts.append(preamble_piece(p))
    for k in kernels:
        scalars = set(SCALARS.get(k.name, ()))
        for combo in _type_combos(k):
            suffix = "_".join(v.replace(" ", "") for v in combo.values() if v)
            fname = f"{k.name}_{suffix}"
            typedefs = "".join(f"typedef {v} {n};\n" for n, v in combo.items() if v)
            body = (_elementwise if isinstance(k, Elementwise) else _reduction)(k, fname, scalars)
            parts.append(f"namespace ns_{fname} {{\n{typedefs}{body}}}\n")
            names.append(fname)
    return "\n".join(parts), names
