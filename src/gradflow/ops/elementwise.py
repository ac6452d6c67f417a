"""PyTorch's elementwise math beyond the fused kernels: trigonometric and hyperbolic functions,
erf and friends, logs and exps of other bases, rounding, atan2, copysign, fmod, remainder,
floor_divide, logaddexp, hypot, lerp, float classification, isclose/allclose/equal,
nan_to_num and the bitwise ops; the operators' PyTorch names (eq, add(alpha=), ...), clamp_min,
clamp_max, addcmul, addcdiv.

Each unary op is one backend call forward (``be.xp`` is numpy or CuPy) and a backward written
with tensor ops (``g * f'(x)``), so that it is differentiable again. Rounding ops have a zero
gradient, as in PyTorch."""

import math

from .. import tensor as _tensor
from .._jit import trace as _jit_trace
from ..autograd.function import Function, NonDifferentiable
from ..autograd.lowp import in_float32
from ._util import as_tensor, float_operand, promote

_SQRT_PI = math.sqrt(math.pi)


def _special(xp, name):
    """erf, erfc and erfinv: cupyx.scipy.special on a GPU; on the host, Python's math module
    (numpy has none of them) with erfinv by Newton's method on erf."""
    if xp.__name__ != "numpy":
        import cupyx.scipy.special as sp

        return getattr(sp, name)
    import numpy as np

    erf = np.vectorize(math.erf, otypes=[np.float64])
    if name == "erf":
        return lambda x: erf(x).astype(x.dtype)
    if name == "erfc":
        return lambda x: np.vectorize(math.erfc, otypes=[np.float64])(x).astype(x.dtype)

    def erfinv(x):
        y = np.asarray(x, np.float64)
        # Giles' single-precision approximation as the start, then Newton steps on erf.
        w = -np.log(np.clip((1 - y) * (1 + y), 1e-300, None))
        z = np.where(w < 5, w - 2.5, np.sqrt(w) - 3)
        p = np.where(w < 5, 2.81022636e-08, -0.000200214257)
        for a, b in ((3.43273939e-07, 0.000100950558), (-3.5233877e-06, 0.00134934322),
                     (-4.39150654e-06, -0.00367342844), (0.00021858087, 0.00573950773),
                     (-0.00125372503, -0.0076224613), (-0.00417768164, 0.00943887047),
                     (0.246640727, 1.00167406), (1.50140941, 2.83297682)):
            p = np.where(w < 5, a, b) + p * z
        r = p * y
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(3):
                r = r - (erf(r) - y) / (2 / _SQRT_PI * np.exp(-r * r))
        r = np.where(np.abs(y) == 1, np.copysign(np.inf, y), r)
        r = np.where(np.abs(y) > 1, np.nan, r)
        return r.astype(x.dtype)

    return erfinv


class _Unary(Function):
    """``kernel(xp, x)`` forward; ``grad(x, y)`` is dy/dx as a Tensor expression (None: zero)."""

    kernel = None
    grad = None

    @staticmethod
    def forward(ctx, x):
        if ctx.grad is not None:
            ctx.save_inputs(0)
            ctx.save_output()
        return _jit_trace.call(ctx.kernel, ctx.be.xp, x, live=False)  # (one step of gf.jit's record)

    @staticmethod
    def backward(ctx, g):
        if ctx.grad is None:
            return (_tensor.zeros(g.shape, dtype=g.dtype, device=g.device),)
        x, y = ctx.saved_tensors
        return (g * ctx.grad(x, y),)


def _unary(name, kernel, grad, doc, floats_only=True):
    op = type(name.capitalize(), (_Unary,), {
        "kernel": staticmethod(kernel), "grad": None if grad is None else staticmethod(grad)})

    def fn(input):
        if not floats_only and input.dtype.kind in "iub" and name != "sign":
            return _tensor.Tensor._make(input._be.copy(input.array), input._device)  # already whole
        return op.apply(float_operand(input) if floats_only else input)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return op, fn


_LN2, _LN10 = math.log(2), math.log(10)

_UNARY = {
    "sin": (lambda xp, x: xp.sin(x), lambda x, y: x.cos(), "Sine."),
    "cos": (lambda xp, x: xp.cos(x), lambda x, y: -x.sin(), "Cosine."),
    "tan": (lambda xp, x: xp.tan(x), lambda x, y: 1 + y * y, "Tangent."),
    "asin": (lambda xp, x: xp.arcsin(x), lambda x, y: (1 - x * x).rsqrt(), "Inverse sine."),
    "acos": (lambda xp, x: xp.arccos(x), lambda x, y: -(1 - x * x).rsqrt(), "Inverse cosine."),
    "atan": (lambda xp, x: xp.arctan(x), lambda x, y: 1 / (1 + x * x), "Inverse tangent."),
    "sinh": (lambda xp, x: xp.sinh(x), lambda x, y: x.cosh(), "Hyperbolic sine."),
    "cosh": (lambda xp, x: xp.cosh(x), lambda x, y: x.sinh(), "Hyperbolic cosine."),
    "asinh": (lambda xp, x: xp.arcsinh(x), lambda x, y: (x * x + 1).rsqrt(), "Inverse hyperbolic sine."),
    "acosh": (lambda xp, x: xp.arccosh(x), lambda x, y: (x * x - 1).rsqrt(), "Inverse hyperbolic cosine."),
    "atanh": (lambda xp, x: xp.arctanh(x), lambda x, y: 1 / (1 - x * x), "Inverse hyperbolic tangent."),
    "erf": (lambda xp, x: _special(xp, "erf")(x), lambda x, y: (2 / _SQRT_PI) * (-x * x).exp(),
            "The error function."),
    "erfc": (lambda xp, x: _special(xp, "erfc")(x), lambda x, y: (-2 / _SQRT_PI) * (-x * x).exp(),
             "1 - erf(x)."),
    "erfinv": (lambda xp, x: _special(xp, "erfinv")(x), lambda x, y: (_SQRT_PI / 2) * (y * y).exp(),
               "The inverse of erf."),
    "log1p": (lambda xp, x: xp.log1p(x), lambda x, y: 1 / (1 + x), "log(1 + x), accurate for small x."),
    "expm1": (lambda xp, x: xp.expm1(x), lambda x, y: y + 1, "exp(x) - 1, accurate for small x."),
    "log2": (lambda xp, x: xp.log2(x), lambda x, y: 1 / (x * _LN2), "Base-2 logarithm."),
    "log10": (lambda xp, x: xp.log10(x), lambda x, y: 1 / (x * _LN10), "Base-10 logarithm."),
    "exp2": (lambda xp, x: xp.exp2(x), lambda x, y: y * _LN2, "2 ** x."),
    "rsqrt": (lambda xp, x: 1 / xp.sqrt(x), lambda x, y: -0.5 * y * y * y, "1 / sqrt(x)."),
    "reciprocal": (lambda xp, x: 1 / x, lambda x, y: -(y * y), "1 / x."),
    "frac": (lambda xp, x: x - xp.trunc(x), lambda x, y: _tensor.ones_like(x), "x - trunc(x)."),
}
_ROUNDING = {
    "floor": (lambda xp, x: xp.floor(x), "The largest integer <= x (zero gradient)."),
    "ceil": (lambda xp, x: xp.ceil(x), "The smallest integer >= x (zero gradient)."),
    "round": (lambda xp, x: xp.round(x), "x rounded to the nearest integer, halves to even."),
    "trunc": (lambda xp, x: xp.trunc(x), "x rounded towards zero (zero gradient)."),
    "sign": (lambda xp, x: xp.sign(x), "-1, 0 or 1 by the sign of x (zero gradient)."),
}

for _name, (_k, _g, _doc) in _UNARY.items():
    globals()[_name.capitalize()], globals()[_name] = _unary(_name, _k, _g, _doc)
for _name, (_k, _doc) in _ROUNDING.items():
    globals()[_name.capitalize()], globals()[_name] = _unary(_name, _k, None, _doc, floats_only=False)
del _name, _k, _doc, _g
fix = trunc  # noqa: F821 - defined in the loop above
arcsin, arccos, arctan = asin, acos, atan  # noqa: F821
arcsinh, arccosh, arctanh = asinh, acosh, atanh  # noqa: F821


def square(input):
    """x * x."""
    return input * input


def round_(input, decimals=0):  # the public name is round, set below
    """x rounded to ``decimals`` decimal places (halves to even)."""
    if decimals == 0:
        return Round.apply(input)  # noqa: F821
    scale = 10.0 ** decimals
    return Round.apply(float_operand(input) * scale) / scale  # noqa: F821


round_.__name__ = round_.__qualname__ = "round"
round = round_  # noqa: A001


# ---- binary ---------------------------------------------------------------------------------------
class _Binary(Function):
    """``kernel(xp, a, b)`` forward; ``grads(a, b, y, g)`` returns both gradients."""

    kernel = None
    grads = None

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_inputs(0, 1)
        ctx.save_output()
        return _jit_trace.call(ctx.kernel, ctx.be.xp, a, b, live=False)

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_tensors
        return ctx.grads(a, b, y, g)


def _zeros(t):
    return _tensor.zeros(t.shape, dtype=t.dtype, device=t.device)


def _promoted(input, other):
    return promote(input, other) if isinstance(input, _tensor.Tensor) else \
        promote(as_tensor(input, other), other)


def _raise_on_zero(divisor, op):
    if bool((divisor == 0).any()):
        raise RuntimeError(f"ZeroDivisionError: {op} of integers by zero (as in torch; numpy "
                           "would return 0)")


def _integer_division(op, a, b):
    """The checks of an integer division (floor or trunc, remainder, fmod) by PyTorch's rules:
    two bools have no such op, and a zero divisor raises. The zero check reads the divisor on
    the host, and runs again at every gf.jit replay."""
    kind = a.dtype.kind
    if kind == "b":
        raise RuntimeError(f"{op}: not implemented for bool tensors (as in torch); convert them "
                           "to an integer dtype first")
    if kind in "iu":
        _jit_trace.call(_raise_on_zero, b.array, op)


def _binary(name, kernel, grads, doc, floats=True):
    op = type(name.capitalize(), (_Binary,), {"kernel": staticmethod(kernel),
                                              "grads": staticmethod(grads)})

    def fn(input, other):
        a, b = _promoted(input, other)
        if floats:
            a, b = float_operand(a), float_operand(b)
        else:
            _integer_division(name, a, b)
        return op.apply(a, b)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return op, fn


Atan2, atan2 = _binary(
    "atan2", lambda xp, a, b: xp.arctan2(a, b),
    lambda a, b, y, g: (g * b / (a * a + b * b), -g * a / (a * a + b * b)),
    "atan2(input, other): the angle of the point (other, input), in (-pi, pi].")
arctan2 = atan2
Copysign, copysign = _binary(
    "copysign", lambda xp, a, b: xp.copysign(a, b),
    lambda a, b, y, g: (g * sign(a) * sign(y), _zeros(b)),  # noqa: F821
    "|input| with the sign of other.")
Fmod, fmod = _binary(
    "fmod", lambda xp, a, b: xp.fmod(a, b),
    lambda a, b, y, g: (g, -g * trunc(a / b)),  # noqa: F821
    "The remainder of input / other with the sign of input (C's fmod).", floats=False)
Remainder, remainder = _binary(
    "remainder", lambda xp, a, b: xp.remainder(a, b),
    lambda a, b, y, g: (g, -g * floor(a / b)),  # noqa: F821
    "The remainder of input / other with the sign of other (Python's %).", floats=False)
Logaddexp, logaddexp = _binary(
    "logaddexp", lambda xp, a, b: xp.logaddexp(a, b),
    lambda a, b, y, g: (g * (a - y).exp(), g * (b - y).exp()),
    "log(exp(input) + exp(other)), without overflow.")
Hypot, hypot = _binary(
    "hypot", lambda xp, a, b: xp.hypot(a, b),
    lambda a, b, y, g: (g * a / y, g * b / y),
    "sqrt(input^2 + other^2).")


class FloorDivide(NonDifferentiable):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.be.xp.floor_divide(a, b)


def _trunc_divide(xp, a, b):
    """Integer a / b rounded toward zero, exactly (a float quotient would round large int64s):
    the floor quotient, plus one where the division was inexact and the signs differ."""
    q = xp.floor_divide(a, b)
    return q + ((q * b != a) & ((a < 0) != (b < 0))).astype(q.dtype)


class TruncDivide(NonDifferentiable):
    @staticmethod
    def forward(ctx, a, b):
        return _jit_trace.call(_trunc_divide, ctx.be.xp, a, b, live=False)


def floor_divide(input, other):
    """input // other rounded down (as Python's //); not differentiable."""
    a, b = _promoted(input, other)
    _integer_division("floor_divide", a, b)
    return FloorDivide.apply(a, b)


def div(input, other, *, rounding_mode=None):
    """input / other: true division, or with rounding_mode "trunc" / "floor" rounded that way."""
    from .arith import div as true_div

    if rounding_mode is None:
        return true_div(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        a, b = _promoted(input, other)
        if a.dtype.kind in "biu":
            _integer_division("div", a, b)
            return TruncDivide.apply(a, b)
        return trunc(true_div(a, b))  # noqa: F821
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


divide, true_divide = div, div


def clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's names
    """``input`` limited to [min, max] (either may be None); as clip."""
    from .arith import clip

    return clip(input, min, max)


def _xlogy_kernel(xp, a, b):
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where(a == 0, xp.zeros((), a.dtype), a * xp.log(b))


Xlogy, _xlogy = _binary(
    "xlogy", _xlogy_kernel, lambda a, b, y, g: (g * b.log(), g * a / b),
    "input * log(other), and 0 where input is 0 (even where other is 0 too).")


def xlogy(input, other):
    """input * log(other), and 0 where input is 0 (even where other is 0 too); the gradients
    are log(other) and input / other, as PyTorch's."""
    return _xlogy(input, other)


@in_float32
def lerp(input, end, weight):
    """input + weight * (end - input)."""
    return input + weight * (end - input)


# ---- classification and comparison ----------------------------------------------------------------
class _Test(NonDifferentiable):
    @staticmethod
    def forward(ctx, x, fn):
        return getattr(ctx.be.xp, fn)(x)


def isnan(input):
    """True where the value is NaN."""
    return _Test.apply(input, fn="isnan")


def isinf(input):
    """True where the value is +inf or -inf."""
    return _Test.apply(input, fn="isinf")


def isfinite(input):
    """True where the value is neither NaN nor infinite."""
    return _Test.apply(input, fn="isfinite")


def isposinf(input):
    """True where the value is +inf."""
    return _Test.apply(input, fn="isposinf")


def isneginf(input):
    """True where the value is -inf."""
    return _Test.apply(input, fn="isneginf")


class _IsClose(NonDifferentiable):
    @staticmethod
    def forward(ctx, a, b, rtol, atol, equal_nan):
        return ctx.be.xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other|, elementwise."""
    a, b = promote(input, other)
    return _IsClose.apply(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether isclose holds everywhere (a Python bool)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).array.all())


def equal(input, other):
    """Whether the two tensors have the same shape and values (a Python bool)."""
    if tuple(input.shape) != tuple(other.shape):
        return False
    a, b = promote(input, other)
    return bool((a.array == b.array).all())


class NanToNum(Function):
    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        ctx.save_inputs(0)
        return ctx.be.xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * isfinite(x).to(g.dtype),)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN replaced by ``nan`` and infinities by ``posinf``/``neginf`` (default: the dtype's
    largest and smallest finite values); the gradient passes only where the value was finite."""
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


# ---- bitwise --------------------------------------------------------------------------------------
class _Bitwise(NonDifferentiable):
    @staticmethod
    def forward(ctx, a, b, fn):
        return getattr(ctx.be.xp, fn)(a, b)


def _bitwise(fn, name):
    def op(input, other):
        a, b = promote(input, other) if isinstance(input, _tensor.Tensor) else \
            promote(as_tensor(input, other), other)
        if a.dtype.kind not in "biu":
            raise TypeError(f"{name}: needs integer or bool tensors, got {a.dtype}")
        return _Bitwise.apply(a, b, fn=fn)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name.split('_')[1]} of integer or bool tensors."
    return op


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")
bitwise_left_shift = _bitwise("left_shift", "bitwise_left_shift")
bitwise_right_shift = _bitwise("right_shift", "bitwise_right_shift")


class _Invert(NonDifferentiable):
    @staticmethod
    def forward(ctx, x):
        return ctx.be.xp.invert(x)


def bitwise_not(input):
    """Elementwise NOT of an integer or bool tensor (logical not for bool)."""
    if input.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not: needs an integer or bool tensor, got {input.dtype}")
    return _Invert.apply(input)


def logical_not(input):
    """True where the value is zero (or False)."""
    return _Test.apply(input, fn="logical_not")


def logical_and(input, other):
    """True where both are nonzero."""
    return _Bitwise.apply(*promote(input, other), fn="logical_and")


def logical_or(input, other):
    """True where either is nonzero."""
    return _Bitwise.apply(*promote(input, other), fn="logical_or")


def logical_xor(input, other):
    """True where exactly one is nonzero."""
    return _Bitwise.apply(*promote(input, other), fn="logical_xor")


# ---- PyTorch's named forms of the operators ------------------------------------------------------
def eq(input, other):
    """``input == other`` (a bool tensor)."""
    return input == other


def ne(input, other):
    """``input != other`` (a bool tensor)."""
    return input != other


def lt(input, other):
    """``input < other`` (a bool tensor)."""
    return input < other


def le(input, other):
    """``input <= other`` (a bool tensor)."""
    return input <= other


def gt(input, other):
    """``input > other`` (a bool tensor)."""
    return input > other


def ge(input, other):
    """``input >= other`` (a bool tensor)."""
    return input >= other


greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def add(input, other, *, alpha=1):
    """``input + alpha * other``."""
    return input + (other if alpha == 1 else other * alpha)


def sub(input, other, *, alpha=1):
    """``input - alpha * other``."""
    return input - (other if alpha == 1 else other * alpha)


def mul(input, other):
    """``input * other``."""
    return input * other


subtract, multiply = sub, mul


def clamp_min(input, min):  # noqa: A002 - PyTorch's name
    """``input`` limited from below by ``min`` (a number or tensor)."""
    return clamp(input, min=min)


def clamp_max(input, max):  # noqa: A002 - PyTorch's name
    """``input`` limited from above by ``max`` (a number or tensor)."""
    return clamp(input, max=max)


@in_float32
def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2``."""
    return input + (tensor1 * tensor2 if value == 1 else value * tensor1 * tensor2)


@in_float32
def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2``."""
    return input + (tensor1 / tensor2 if value == 1 else value * tensor1 / tensor2)


def logit(input, eps=None):
    """log(p / (1 - p)); with ``eps``, p is first clamped to [eps, 1 - eps] (no gradient
    outside it, as PyTorch)."""
    x = float_operand(input)
    if eps is not None:
        x = clamp(x, eps, 1 - eps)
    return (x / (1 - x)).log()


def fmax(input, other):
    """The elementwise maximum ignoring NaN (NaN only where both are); at ties the gradient goes
    to ``input``, as PyTorch's."""
    from .arith import where

    a, b = promote(input, other)
    return where((a >= b) | isnan(b), a, b)


def fmin(input, other):
    """The elementwise minimum ignoring NaN, as fmax."""
    from .arith import where

    a, b = promote(input, other)
    return where((a <= b) | isnan(b), a, b)


def absolute(input):
    """``abs(input)``."""
    return input.abs()


def positive(input):
    """``input`` itself (PyTorch's unary plus)."""
    return input


def sgn(input):
    """The sign (-1, 0 or 1) of a real tensor, as ``sign``."""
    return sign(input)


@in_float32
def sinc(input):
    """sin(pi x) / (pi x), 1 at x = 0 (where the gradient is 0)."""
    from .arith import where

    x = float_operand(input)
    zero = x == 0
    one = _tensor.ones((), dtype=x.dtype, device=x.device)
    safe = where(zero, one, x) * math.pi  # no 0/0 in the unused branch: its gradient would be NaN
    return where(zero, one, sin(safe) / safe)


def float_power(input, exponent):
    """``input ** exponent`` computed in float64 (the result is float64)."""
    from .arith import pow as _pow

    x = input.to("float64") if isinstance(input, _tensor.Tensor) else input
    e = exponent.to("float64") if isinstance(exponent, _tensor.Tensor) else float(exponent)
    if not isinstance(x, _tensor.Tensor):
        x = _tensor.tensor(float(x), dtype="float64", device=e.device)
    return _pow(x, e)
