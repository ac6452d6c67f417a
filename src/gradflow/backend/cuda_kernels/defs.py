"""Every custom CUDA kernel of the CuPy backend, as data.

Each entry is what CuPy's ``ElementwiseKernel`` / ``ReductionKernel`` is constructed from; CI
without a GPU compiles every one through CuPy's own code generator and NVRTC
(tests/test_cuda_nvrtc.py) and runs it on the host (the CuPy stand-in in tests/fakecupy).
Type placeholders follow CuPy: ``T`` is the float type of the arrays, ``S`` an integer label
type. ``preamble`` names the pieces of preamble a kernel needs:
``"math"`` is csrc/gf_math.h verbatim (the formulas the CPU kernels are tested with), ``"lse"``
the running (max, sum-of-exp) pair below. Each kernel is one pass over its inputs.

A reduction with one input and one output may run on CuPy's CUB path, which renames them to
``in0``/``out0`` by substring replacement in the map and post-map expressions (a ``y`` anywhere
in the post-map would be rewritten): such kernels name their parameters ``in0``/``out0``
themselves, so that nothing is renamed.
"""

from dataclasses import dataclass

from .header import gf_math_h


@dataclass(frozen=True)
class Elementwise:
    name: str
    in_params: str
    out_params: str
    operation: str
    preamble: tuple = ()
    scalars: tuple = ()  # the parameters the backend passes as Python numbers (by value)


@dataclass(frozen=True)
class Reduction:
    name: str
    in_params: str
    out_params: str
    map_expr: str
    reduce_expr: str
    post_map_expr: str  # an expression (CuPy wraps it in parentheses): use commas, not ';'
    identity: str
    reduce_type: str = None  # None: the first output's type, as in CuPy
    preamble: tuple = ()
    scalars: tuple = ()


# A numerically stable one-pass log-sum-exp: each partial result is (m, s) with s the sum of
# exp(x - m) over its elements and m their max. Merging rescales the smaller side by
# exp(m_small - m_big) <= 1, so nothing overflows; equal maxima (including +-inf) merge without
# computing inf - inf, so an all -inf line gives m = -inf, s = count (logsumexp -inf, as on the
# CPU) and a NaN anywhere wins. One exp per element.
LSE_PREAMBLE = r"""
template <class T> struct gf_lse { T m; T s; };
template <class T> __device__ __forceinline__ gf_lse<T> gf_lse_empty() {
  gf_lse<T> r = {T(-__longlong_as_double(0x7ff0000000000000LL)), T(0)};
  return r;
}
template <class T> __device__ __forceinline__ gf_lse<T> gf_lse_of(T x) {
  gf_lse<T> r = {x, T(1)};
  return r;
}
template <class T> __device__ __forceinline__ gf_lse<T> gf_lse_merge(gf_lse<T> a, gf_lse<T> b) {
  if (b.m > a.m || b.m != b.m) { gf_lse<T> t = a; a = b; b = t; }  // a: the max (or a NaN)
  if (b.s == T(0)) return a;                                         // b is empty
  gf_lse<T> r = {a.m, a.m == b.m ? a.s + b.s : a.s + b.s * exp(b.m - a.m)};
  return r;
}
"""


def preamble_piece(name):
    """The source of one named preamble piece."""
    return gf_math_h() if name == "math" else {"lse": LSE_PREAMBLE}[name]


def preamble_source(kernel):
    """The full preamble CuPy compiles ``kernel`` with."""
    return "\n".join(preamble_piece(p) for p in kernel.preamble)

_NAN = "T(nan(\"\"))"  # an out-of-range label poisons its row: no host check in the op path

_DEFS = [
    # ---- activations: gf_math.h, the CPU's formulas ---------------------------------------------
    Elementwise("gf_sigmoid", "T x", "T y", "y = gf::math::sigmoid(x)", ("math",)),
    Elementwise("gf_sigmoid_backward", "T y, T g", "T dx", "dx = gf::math::sigmoid_grad(y, g)", ("math",)),
    Elementwise("gf_tanh", "T x", "T y", "y = gf::math::tanh_(x)", ("math",)),
    Elementwise("gf_tanh_backward", "T y, T g", "T dx", "dx = gf::math::tanh_grad(y, g)", ("math",)),
    Elementwise("gf_relu", "T x", "T y", "y = gf::math::relu(x)", ("math",)),
    Elementwise("gf_relu_backward", "T y, T g", "T dx", "dx = gf::math::relu_grad(y, g)", ("math",)),
    Elementwise("gf_leaky_relu", "T x, T slope", "T y", "y = gf::math::leaky_relu(x, slope)", ("math",),
                ("slope",)),
    Elementwise("gf_leaky_relu_backward", "T x, T g, T slope", "T dx",
                "dx = gf::math::leaky_relu_grad(x, g, slope)", ("math",), ("slope",)),
    Elementwise("gf_gelu", "T x", "T y", "y = gf::math::gelu(x)", ("math",)),
    Elementwise("gf_gelu_backward", "T x, T g", "T dx", "dx = gf::math::gelu_grad(x, g)", ("math",)),
    Elementwise("gf_gelu_tanh", "T x", "T y", "y = gf::math::gelu_tanh(x)", ("math",)),
    Elementwise("gf_gelu_tanh_backward", "T x, T g", "T dx", "dx = gf::math::gelu_tanh_grad(x, g)",
                ("math",)),
    Elementwise("gf_softplus", "T x, T beta, T threshold", "T y",
                "y = gf::math::softplus(x, beta, threshold)", ("math",), ("beta", "threshold")),
    Elementwise("gf_softplus_backward", "T x, T g, T beta, T threshold", "T dx",
                "dx = gf::math::softplus_grad(x, g, beta, threshold)", ("math",), ("beta", "threshold")),
    # ---- elementwise math whose backward would otherwise be a chain of ufuncs ------------------
    Elementwise("gf_sqrt_backward", "T y, T g", "T dx", "dx = g / (T(2) * y)"),
    # g * sign(x): x == 0 gives g * x (a zero) and a NaN x gives NaN, as numpy's sign does.
    Elementwise("gf_abs_backward", "T x, T g", "T dx", "dx = x > T(0) ? g : (x < T(0) ? -g : g * x)"),
    Elementwise("gf_pow_scalar_backward", "T x, T g, T p, T pm1", "T dx", "dx = g * (p * pow(x, pm1))",
                scalars=("p", "pm1")),
    # ---- softmax family: one stats pass (m, s) over the axis, then one elementwise pass ---------
    Reduction("gf_lse_stats", "T x", "T m, T s", "gf_lse_of(x)", "gf_lse_merge(a, b)",
              "m = a.m, s = a.s", "gf_lse_empty<T>()", "gf_lse<T>", ("lse",)),
    Reduction("gf_logsumexp", "T in0", "T out0", "gf_lse_of(in0)", "gf_lse_merge(a, b)",
              "out0 = a.m + log(a.s)", "gf_lse_empty<T>()", "gf_lse<T>", ("lse",)),
    Elementwise("gf_softmax_apply", "T x, T m, T s", "T y", "y = exp(x - m) / s"),
    # (x - m) is exact near the max, so the result there has one rounding (as on the CPU)
    Elementwise("gf_log_softmax_apply", "T x, T m, T s", "T y", "y = (x - m) - log(s)"),
    Reduction("gf_dot_reduce", "T y, T g", "T s", "y * g", "a + b", "s = a", "0"),
    Elementwise("gf_softmax_backward_apply", "T y, T g, T s", "T dx", "dx = y * (g - s)"),
    Elementwise("gf_log_softmax_backward_apply", "T y, T g, T s", "T dx", "dx = g - exp(y) * s"),
    # ---- cross-entropy: logsumexp per row (gf_logsumexp), then these ---------------------------
    Elementwise("gf_cross_entropy_pick", "T lse, S label, raw T z, int64 c", "T loss",
                f"loss = (label < 0 || label >= c) ? {_NAN} : lse - z[i * c + label]", scalars=("c",)),
    # i is the flat index into the (N, C) output, so i % c is the class of this element.
    Elementwise("gf_cross_entropy_backward", "T z, T lse, S label, T g, int64 c", "T dz",
                "T p = exp(z - lse);\n"
                f"dz = (label < 0 || label >= c) ? {_NAN} : ((i % c) == label ? p - T(1) : p) * g",
                scalars=("c",)),
    # ---- optimizer updates, in place (param and state are outputs, read then written) ----------
    Elementwise("gf_sgd", "T grad, T lr, T weight_decay", "T param",
                "param -= lr * (weight_decay != T(0) ? grad + weight_decay * param : grad)",
                scalars=("lr", "weight_decay")),
    Elementwise("gf_sgd_momentum",
                "T grad, T lr, T momentum, T one_minus_dampening, T weight_decay, bool nesterov, "
                "bool first_step",
                "T param, T buf",
                "T d = weight_decay != T(0) ? grad + weight_decay * param : grad;\n"
                "buf = first_step ? d : momentum * buf + one_minus_dampening * d;\n"
                "param -= lr * (nesterov ? d + momentum * buf : buf)",
                scalars=("lr", "momentum", "one_minus_dampening", "weight_decay", "nesterov",
                         "first_step")),
    # Scalars like 1 - beta1, decay = 1 - lr * weight_decay, step_size = lr / (1 - beta1^t) and
    # sqrt_bc2 = sqrt(1 - beta2^t) come from the host, computed in double as the reference does,
    # so the roundings match.
    Elementwise("gf_adam",
                "T grad, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T step_size, "
                "T sqrt_bc2, T eps, T weight_decay, T decay, bool decoupled",
                "T param, T exp_avg, T exp_avg_sq",
                "T g = grad;\n"
                "if (decoupled) param *= decay;\n"
                "else if (weight_decay != T(0)) g = g + weight_decay * param;\n"
                "exp_avg = beta1 * exp_avg + one_minus_beta1 * g;\n"
                "exp_avg_sq = beta2 * exp_avg_sq + one_minus_beta2 * g * g;\n"
                "param -= step_size * exp_avg / (sqrt(exp_avg_sq) / sqrt_bc2 + eps)",
                scalars=("beta1", "one_minus_beta1", "beta2", "one_minus_beta2", "step_size",
                         "sqrt_bc2", "eps", "weight_decay", "decay", "decoupled")),
    # ---- dropout: a counter-based hash (splitmix64) of (seed, element) gives each element a
    # uniform 53-bit number, so the mask needs no state on the device and no copy from the host.
    Elementwise("gf_dropout_mask", "uint64 seed, float64 p, T scale", "T mask",
                "unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;\n"
                "z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;\n"
                "z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;\n"
                "z ^= z >> 31;\n"
                "mask = (double)(z >> 11) * (1.0 / 9007199254740992.0) >= p ? scale : T(0)",
                scalars=("seed", "p", "scale")),
]
KERNELS = {k.name: k for k in _DEFS}
assert len(KERNELS) == len(_DEFS), "duplicate kernel name"

# Which backend-interface functions run which custom kernels (the rest are CuPy's own ufuncs,
# reductions and cuBLAS). Tests check this table against KERNELS and the backend.
USES = {
    "sigmoid": ("gf_sigmoid",), "sigmoid_backward": ("gf_sigmoid_backward",),
    "tanh": ("gf_tanh",), "tanh_backward": ("gf_tanh_backward",),
    "relu": ("gf_relu",), "relu_backward": ("gf_relu_backward",),
    "leaky_relu": ("gf_leaky_relu",), "leaky_relu_backward": ("gf_leaky_relu_backward",),
    "gelu": ("gf_gelu", "gf_gelu_tanh"), "gelu_backward": ("gf_gelu_backward", "gf_gelu_tanh_backward"),
    "softplus": ("gf_softplus",), "softplus_backward": ("gf_softplus_backward",),
    "sqrt_backward": ("gf_sqrt_backward",), "abs_backward": ("gf_abs_backward",),
    "pow_scalar_backward": ("gf_pow_scalar_backward",),
    "logsumexp": ("gf_logsumexp",),
    "softmax": ("gf_lse_stats", "gf_softmax_apply"),
    "log_softmax": ("gf_lse_stats", "gf_log_softmax_apply"),
    "softmax_backward": ("gf_dot_reduce", "gf_softmax_backward_apply"),
    "log_softmax_backward": ("gf_log_softmax_backward_apply",),
    "cross_entropy": ("gf_logsumexp", "gf_cross_entropy_pick"),
    "cross_entropy_backward": ("gf_cross_entropy_backward",),
    "sgd_step": ("gf_sgd", "gf_sgd_momentum"),
    "adam_step": ("gf_adam",),
    "linear_relu": ("gf_relu",), "relu_backward_sum": ("gf_relu_backward",),
    "sgd_step_multi": ("gf_sgd", "gf_sgd_momentum"), "adam_step_multi": ("gf_adam",),
    "dropout_mask": ("gf_dropout_mask",),
}
