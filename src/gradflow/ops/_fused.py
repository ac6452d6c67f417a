"""FusedOp: an op whose forward and backward are each one backend kernel.

A subclass declares, instead of writing forward and backward:

* ``kernel``: the name of the kernel pair, ``be.<kernel>(x, *args)`` and
  ``be.<kernel>_backward(s, g, *args)``;
* ``params``: the names of the op's scalar parameters, in the kernels' argument order;
* ``saves_output``: whether the backward kernel reads the forward output (sigmoid, tanh, relu,
  softmax) rather than the input; ``s`` is whichever is saved;
* ``curvature(s, *args)``: for an elementwise op, whose backward kernel is ``g * f'(s)``, the
  derivative ``d f'(s) / ds`` as a Tensor expression; ``None`` (the attribute, or the value it
  returns) where it is zero, as for piecewise-linear ops.

The backward kernel is itself an op, ``Op.Backward``, made from the declaration, so that
``create_graph=True`` works to any order: its gradient with respect to ``g`` is the backward
kernel again (``g * f'(s)`` is linear in ``g``), and with respect to ``s`` it is
``gg * g * curvature(s)``. Ops whose backward is not elementwise (softmax) override
``backward_of_backward`` instead of giving a curvature.
"""

from ..autograd.function import Function


def _kernel_forward(kernel, params):
    """The forward of a FusedOp (``params`` names its keyword parameters) or of its backward op
    (``params`` is None: the values, if any, come packed as ``args``): ``be.<kernel>`` on the arrays and
    the parameter values. Made once per class, as a closure, so that a call does no more work
    than a hand-written forward would."""
    # A FusedOp takes one array (x); its backward op two (s, g). Named, not *arrays: cheaper.
    if params is None:
        def forward(ctx, s, g, args=()):
            if args:
                ctx.args = args
                return getattr(ctx.be, kernel)(s, g, *args)
            return getattr(ctx.be, kernel)(s, g)
    elif params:
        def forward(ctx, x, **values):
            ctx.args = args = tuple([values[name] for name in params])
            return getattr(ctx.be, kernel)(x, *args)
    else:
        def forward(ctx, x):
            return getattr(ctx.be, kernel)(x)
    return staticmethod(forward)


class FusedOp(Function):
    kernel = ""
    params = ()
    saves_output = False
    curvature = None
    Backward = None  # set for each subclass by __init_subclass__
    args = ()  # per node: the parameter values (set only when there are any)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.forward = _kernel_forward(cls.kernel, cls.params)
        # What backward reads is fixed per op, so it is declared once, on the class, instead of
        # by save_output()/save_inputs() on every call.
        cls._save_out = cls.saves_output
        cls._save_idx = () if cls.saves_output else (0,)
        # A piecewise-linear elementwise op's second derivative never reads g: don't keep it.
        reads_g = (cls.curvature is not None or cls.backward_of_backward.__func__
                   is not FusedOp.backward_of_backward.__func__)
        cls.Backward = type(f"{cls.__name__}Backward", (FusedBackward,), {
            "op": cls,
            "forward": _kernel_forward(cls.kernel + "_backward", None),
            "_save_idx": (0, 1) if reads_g else (0,),
            "__module__": cls.__module__,
            "__doc__": f"The backward kernel of {cls.__name__}, as an op."})

    @classmethod
    def backward(cls, ctx, g):
        (s,) = ctx.saved_tensors
        args = ctx.args  # (run_backward, inlined: this runs for every node)
        return (cls.Backward.apply(s, g, args=args) if args else cls.Backward.apply(s, g),)

    @classmethod
    def backward_of_backward(cls, ctx, gg):
        """Gradients of the backward kernel ``g * f'(s)`` with respect to (s, g)."""
        saved = ctx.saved_tensors
        s = saved[0]
        c = None if cls.curvature is None else cls.curvature(s, *ctx.args)
        gs = None if c is None else gg * saved[1] * c
        return gs, cls.run_backward(s, gg, ctx.args)

    @classmethod
    def run_backward(cls, s, g, args):
        """The backward kernel applied to (s, g), recorded as an op."""
        return cls.Backward.apply(s, g, args=args) if args else cls.Backward.apply(s, g)


class FusedBackward(Function):
    """Base of the backward ops that FusedOp makes; the op's own class says how to
    differentiate them."""

    op = FusedOp  # the op whose backward kernel this runs
    args = ()

    @classmethod
    def backward(cls, ctx, gg):
        return cls.op.backward_of_backward(ctx, gg)
