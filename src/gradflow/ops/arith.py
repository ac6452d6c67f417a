"""Elementwise arithmetic and math: + - * / **, maximum/minimum, where, comparisons, exp, log,
sqrt, abs, clip. Operands broadcast numpy-style; the engine reduces gradients back."""

from .. import _C
from .. import dtypes as _dtypes
from ..autograd.function import Function, NonDifferentiable
from ._fused import FusedOp
from ._util import as_tensor, float_operand, lowp_scale, promote, result_dtype_of


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.be.add(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.be.sub(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, -g


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        edges = ctx._next
        if edges:  # each gradient reads the other operand: save only what will be read
            ctx._save_idx = (0,) if edges[0] is None else (1,) if edges[1] is None else (1, 0)
        return ctx.be.mul(a, b)

    @staticmethod
    def backward(ctx, g):
        # Mul.apply, not g * ...: g and the saved inputs already share a dtype (no promotion).
        edge_a, edge_b = ctx._next
        return (Mul.apply(g, ctx.saved_input(1)) if edge_a is not None else None,
                Mul.apply(g, ctx.saved_input(0)) if edge_b is not None else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        need = ctx.needs_input_grad
        if need:  # d/da reads b; d/db reads a and b
            ctx.save_inputs(*((0, 1) if need[1] else (1,)))
        return ctx.be.div(a, b)

    @staticmethod
    def backward(ctx, g):
        need_a, need_b = ctx.needs_input_grad
        gb = g / ctx.saved_input(1)
        return (gb if need_a else None), (-gb * ctx.saved_input(0) / ctx.saved_input(1) if need_b else None)


class Pow(Function):
    """a ** b for two tensors."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_inputs(0, 1)
        ctx.save_output()
        return ctx.be.pow(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        ga = None
        if need_a:  # d/da a^b = b a^(b-1); taken as 0 where b == 0 (0 * 0^-1 would be NaN)
            ga = where(b == 0, as_tensor(0, g), g * b * a ** (b - 1))
        gb = None
        if need_b:  # d/db a^b = a^b log a; taken as 0 where a == 0 (and b >= 0), as PyTorch does
            zero = (a == 0) & (b >= 0)
            safe_a = where(zero, as_tensor(1, a), a)
            gb = where(zero, as_tensor(0, g), g * out * safe_a.log())
        return ga, gb


class PowScalar(FusedOp):
    kernel, params = "pow_scalar", ("p",)

    @staticmethod
    def curvature(x, p):  # f' = p x^(p-1)
        return None if p in (0, 1) else (p * (p - 1)) * x ** (p - 2)


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.be.neg(x)

    @staticmethod
    def backward(ctx, g):
        return (-g,)


class _MaxMin(Function):
    """maximum/minimum; where the operands tie, the gradient is split evenly between them."""

    kernel = None  # the backend function: "maximum" or "minimum"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_inputs(0, 1)
        return getattr(ctx.be, ctx.kernel)(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        win_a = ctx.wins(a, b).to(g.dtype)
        tie = (a == b).to(g.dtype) * 0.5
        return g * (win_a + tie), g * (1 - win_a - tie)


class Maximum(_MaxMin):
    kernel = "maximum"
    wins = staticmethod(lambda a, b: a > b)


class Minimum(_MaxMin):
    kernel = "minimum"
    wins = staticmethod(lambda a, b: a < b)


class Where(Function):
    @staticmethod
    def forward(ctx, a, b, cond):
        if ctx._next:  # recorded: backward reads it, and a later change to it must not reach it
            ctx.cond = ctx.be.copy(cond)
        return ctx.be.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        from ..tensor import Tensor

        cond = Tensor._make(ctx.cond, g._device)
        zero = as_tensor(0, g)
        return where(cond, g, zero), where(cond, zero, g)


class Compare(NonDifferentiable):
    @staticmethod
    def forward(ctx, a, b, op):
        return getattr(ctx.be, op)(a, b)


class Exp(FusedOp):
    kernel, saves_output = "exp", True
    curvature = staticmethod(lambda y: 1)  # f' = y


class Log(FusedOp):
    kernel = "log"
    curvature = staticmethod(lambda x: -1 / (x * x))  # f' = 1 / x


class Sqrt(FusedOp):
    kernel, saves_output = "sqrt", True
    curvature = staticmethod(lambda y: -0.5 / (y * y))  # f' = 1 / (2 y)


class Abs(FusedOp):
    kernel = "abs"  # piecewise linear: no curvature


class Clip(Function):
    """clip(x, lo, hi) with number bounds; the gradient passes where lo <= x <= hi (either
    bound may be None)."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.lo, ctx.hi = lo, hi
        ctx.save_inputs(0)
        return ctx.be.xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        keep = None
        if ctx.lo is not None:
            keep = x >= ctx.lo
        if ctx.hi is not None:
            keep = (x <= ctx.hi) if keep is None else keep & (x <= ctx.hi)
        return (g * keep.to(g.dtype),)


class ClipTensor(Function):
    """clip(x, lo, hi) with tensor bounds (broadcasting), differentiable in all three, with
    PyTorch's rule: x gets the gradient where lo <= x <= hi (ties included), lo where x < lo
    and hi where x > hi; where lo > hi the result is hi, and only hi gets it. The inputs are
    (x, lo, hi), or (x, lo) or (x, hi) as ``has_lo``/``has_hi`` say."""

    @staticmethod
    def forward(ctx, x, *bounds, has_lo, has_hi):
        ctx.has_lo, ctx.has_hi = has_lo, has_hi
        ctx.save_inputs(*range(1 + len(bounds)))
        lo = bounds[0] if has_lo else None
        hi = bounds[-1] if has_hi else None
        return ctx.be.xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        saved = ctx.saved_tensors
        x = saved[0]
        lo = saved[1] if ctx.has_lo else None
        hi = saved[-1] if ctx.has_hi else None
        zero = as_tensor(0, g)
        if lo is not None and hi is not None:
            keep, to_lo, to_hi = (x >= lo) & (x <= hi), (x < lo) & (lo < hi), (x > hi) | (hi < lo)
        elif lo is not None:
            keep, to_lo, to_hi = x >= lo, x < lo, None
        else:
            keep, to_lo, to_hi = x <= hi, None, x > hi
        grads = [where(keep, g, zero)]
        grads += [where(m, g, zero) for m in (to_lo, to_hi) if m is not None]
        return tuple(grads)


# ---- functional forms -------------------------------------------------------------------------
def _binary(op, doc):
    apply = op.apply

    def fn(a, b):
        # Two tensors of one class and dtype (the usual case) go straight to the op.
        if a.__class__ is not b.__class__ or a.array.dtype is not b.array.dtype:
            a, b = promote(a, b)
        return apply(a, b)

    fn.__doc__ = doc
    return fn


add = _binary(Add, "a + b, broadcasting.")
_sub = _binary(Sub, "a - b, broadcasting.")


def _is_bool(x):
    return x.__class__ is bool or (isinstance(x, _C.TensorBase) and x.array.dtype.kind == "b")


def check_not_bool(op, *operands):
    """torch has no arithmetic negation on bools: ``-`` with a bool tensor or a Python bool
    raises (numpy would compute it in integers or raise a numpy error)."""
    for x in operands:
        if _is_bool(x):
            hint = ("use the `^` or `logical_xor()` operator instead"
                    if op == "Subtraction" and all(_is_bool(y) for y in operands)
                    else "if you are trying to invert a mask, use the `~` or `logical_not()` "
                         "operator instead")
            raise RuntimeError(f"{op}, the `-` operator, with a bool tensor or a bool is not "
                               f"supported (as in torch); {hint}")


def sub(a, b):
    """a - b, broadcasting (not for bools)."""
    check_not_bool("Subtraction", a, b)
    return _sub(a, b)


def mul(a, b):
    """a * b, broadcasting."""
    if a.__class__ is not b.__class__ or a.array.dtype is not b.array.dtype:
        x = lowp_scale(a, b)
        if x is not None:
            return Mul.apply(a, x)
        x = lowp_scale(b, a)
        if x is not None:
            return Mul.apply(x, b)
        a, b = promote(a, b)
    return Mul.apply(a, b)



maximum = _binary(Maximum, "Elementwise maximum; ties split the gradient evenly.")
minimum = _binary(Minimum, "Elementwise minimum; ties split the gradient evenly.")


def div(a, b):
    if a.__class__ is not b.__class__:  # (a number: two tensors skip these checks)
        x = lowp_scale(a, b)
        if x is not None:
            return Div.apply(a, x)
        x = lowp_scale(b, a)
        if x is not None:  # number / 16-bit tensor: PyTorch's is the number times the rounded 1 / b
            return Mul.apply(x, PowScalar.apply(b, p=-1))
    a, b = promote(a, b)
    if not _dtypes.is_float(a.dtype):
        a, b = float_operand(a), float_operand(b)
    return Div.apply(a, b)


def pow(a, b):  # noqa: A001
    """tensor ** number runs the fused scalar-power kernel; anything else is elementwise."""
    from ..tensor import Tensor, ones_like

    if b.__class__ is bool and isinstance(a, Tensor) and a.dtype.kind == "b":
        # torch's bool tensor ** Python bool is a bool tensor (x ** True is x, x ** False all
        # True); bool tensor ** bool tensor raises there, as below
        return a.clone() if b else ones_like(a)
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if isinstance(b, int) and b < 0 and a.dtype.kind in "iub":
            raise RuntimeError(f"pow: integers to negative integer powers are not allowed ({a.dtype} "
                             f"tensor ** {b}); convert the tensor to a float dtype first")
        int_power = isinstance(b, int) and b >= 0  # keeps an integer tensor integer
        if isinstance(b, float) and _dtypes.is_lowp(a.dtype):
            b = float(a._be.scalar(b, a.dtype))  # (PyTorch's exponent: the number in a's dtype)
        return PowScalar.apply(a if int_power else float_operand(a), p=b)
    a, b = promote(a, b)
    if a.dtype.kind == "b":
        raise RuntimeError("pow: not implemented for two bools (as in torch); convert them to an "
                           "integer dtype first")
    if a.dtype.kind in "iu" and bool((b.array < 0).any()):
        raise RuntimeError("pow: integers to negative integer powers are not allowed; convert to "
                         "a float dtype first")
    return Pow.apply(a, b)


def neg(x):
    """-x (not for bools)."""
    check_not_bool("Negation", x)
    return Neg.apply(x)


def where(cond, a, b):
    """Elementwise ``a if cond else b``; cond is a boolean tensor (no gradient flows to it)."""
    from ..tensor import Tensor

    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        if not isinstance(cond, Tensor):
            raise TypeError("where: cond must be a Tensor when a and b are numbers")
        from ..tensor import tensor

        a = tensor(a, device=cond.device)  # a number takes its kind's default dtype
    a, b = promote(a, b)
    if not isinstance(cond, Tensor):
        cond = as_tensor(cond, a)
    if cond._device != a._device:
        raise RuntimeError(f"where: cond is on {cond._device} but the operands are on {a._device}")
    c = cond.array if cond.dtype.kind == "b" else cond._be.astype(cond.array, bool)
    return Where.apply(a, b, cond=c)


def compare(op, a, b):
    """The bool tensor of ``a <op> b`` (op: eq, ne, lt, le, gt, ge), operands promoted."""
    return Compare.apply(*promote(a, b), op=op)


def exp(x):
    """e ** x, elementwise."""
    return Exp.apply(float_operand(x))


def log(x):
    """The natural logarithm, elementwise."""
    return Log.apply(float_operand(x))


def sqrt(x):
    """The square root, elementwise."""
    return Sqrt.apply(float_operand(x))


def abs(x):  # noqa: A001
    """|x|, elementwise (gradient 0 at 0)."""
    return Abs.apply(x)


def clip(x, min=None, max=None):  # noqa: A002  (PyTorch's names)
    """x limited to [min, max]; either bound may be None, a number or a tensor (broadcasting,
    and then differentiable in the bound). Where min > max the result is max, as in PyTorch."""
    from ..tensor import Tensor

    lo, hi = min, max
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of min and max")
    tensors = [x] + [as_tensor(b, x) for b in (lo, hi) if b is not None]
    dt = result_dtype_of(tensors)  # (a number bound is a 0-d tensor of its category here)
    if not any(isinstance(b, Tensor) or hasattr(b, "shape") for b in (lo, hi)):
        # number bounds: one kernel, nothing saved but x
        return Clip.apply(x if x.dtype == dt else x.to(dt), lo=lo, hi=hi)
    tensors = [t if t.dtype == dt else t.to(dt) for t in tensors]
    return ClipTensor.apply(*tensors, has_lo=lo is not None, has_hi=hi is not None)
