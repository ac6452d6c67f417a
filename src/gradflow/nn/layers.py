"""Layers: Linear, Dropout, Embedding, LayerNorm, BatchNorm1d, Flatten, Unflatten, Identity, the
activation modules and the loss modules."""

import math

from .. import dtypes as _dtypes
from ..autograd.grad_mode import no_grad as _no_grad
from ..tensor import ones, zeros
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features), initialised as PyTorch does
    (kaiming_uniform_ with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in)), and the same bound for b)."""

    def __init__(self, in_features, out_features, bias=True, dtype=None, device=None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: features must be >= 1, got ({in_features}, {out_features})")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
        self.weight = Parameter(zeros(out_features, in_features, dtype=dt, device=device))
        self.bias = Parameter(zeros(out_features, dtype=dt, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Draws the weights and bias again, as the constructor does."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    """Inverted dropout: in training, zeroes each element with probability p and scales the rest
    by 1/(1-p); identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return F.dropout(x, self.p, True)

    def extra_repr(self):
        return f"p={self.p}"


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """The hyperbolic tangent."""

    def forward(self, x):
        return F.tanh(x)


class ReLU(Module):
    """max(0, x). ``inplace`` is accepted for PyTorch code and computes out of place."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x * Phi(x) (approximate='tanh' for the tanh formula)."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + exp(beta x)) / beta."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """F.mse_loss as a module."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """F.cross_entropy as a module (weight, ignore_index, label_smoothing as there)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """F.nll_loss as a module."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """F.binary_cross_entropy_with_logits as a module (weight, pos_weight)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class BCELoss(_Loss):
    """F.binary_cross_entropy as a module."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class L1Loss(_Loss):
    """F.l1_loss as a module."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """F.huber_loss as a module."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """F.smooth_l1_loss as a module."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class KLDivLoss(Module):
    """F.kl_div as a module (reduction may also be "batchmean")."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__()
        self.reduction, self.log_target = reduction, log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)




def _activation(name, fn, params=(), doc=""):
    """A module class calling ``fn(x, **params)``, its constructor taking ``params`` (with
    their defaults) and PyTorch's ``inplace`` (computed out of place)."""
    def __init__(self, *args, inplace=False, **kwargs):
        Module.__init__(self)
        values = dict(params)
        for (k, _), v in zip(params, args):
            values[k] = v
        for k, v in kwargs.items():
            if k not in values:
                raise TypeError(f"{name}() got an unexpected keyword argument {k!r}")
            values[k] = v
        self._args = values
        for k, v in values.items():
            object.__setattr__(self, k, v)
        self.inplace = inplace

    def forward(self, x):
        """The activation applied to ``x``."""
        return fn(x, **self._args)

    def extra_repr(self):
        """The activation's parameters."""
        return ", ".join(f"{k}={v}" for k, v in self._args.items())

    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc})


SiLU = _activation("SiLU", F.silu, doc="x * sigmoid(x).")
Mish = _activation("Mish", F.mish, doc="x * tanh(softplus(x)).")
ELU = _activation("ELU", F.elu, (("alpha", 1.0),), "x if x > 0 else alpha (exp(x) - 1).")
SELU = _activation("SELU", F.selu, doc="Scaled ELU with SELU's constants.")
CELU = _activation("CELU", F.celu, (("alpha", 1.0),), "max(0, x) + min(0, alpha (exp(x/alpha) - 1)).")
Hardtanh = _activation("Hardtanh", F.hardtanh, (("min_val", -1.0), ("max_val", 1.0)), "clamp(x, min_val, max_val).")
ReLU6 = _activation("ReLU6", F.relu6, doc="min(max(0, x), 6).")
Hardsigmoid = _activation("Hardsigmoid", F.hardsigmoid, doc="relu6(x + 3) / 6.")
Hardswish = _activation("Hardswish", F.hardswish, doc="x relu6(x + 3) / 6.")
LogSigmoid = _activation("LogSigmoid", F.logsigmoid, doc="log(sigmoid(x)).")
Softsign = _activation("Softsign", F.softsign, doc="x / (1 + |x|).")
Softmax = _activation("Softmax", F.softmax, (("dim", -1),), "softmax along dim.")
LogSoftmax = _activation("LogSoftmax", F.log_softmax, (("dim", -1),), "log_softmax along dim.")
Softmin = _activation("Softmin", F.softmin, (("dim", -1),), "softmax(-x) along dim.")

GLU = _activation("GLU", F.glu, (("dim", -1),), "a * sigmoid(b) for the halves a, b along dim.")
Threshold = _activation("Threshold", F.threshold, (("threshold", 0.0), ("value", 0.0)),
                        "x where x > threshold, else value.")
Tanhshrink = _activation("Tanhshrink", F.tanhshrink, doc="x - tanh(x).")
Softshrink = _activation("Softshrink", F.softshrink, (("lambd", 0.5),), "x shrunk towards 0 by lambd.")
Hardshrink = _activation("Hardshrink", F.hardshrink, (("lambd", 0.5),), "x where |x| > lambd, else 0.")


class PReLU(Module):
    """x for x >= 0, a * x otherwise, with a learnt (one value, or one per channel)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = int(num_parameters)
        dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
        self.weight = Parameter(ones(self.num_parameters, dtype=dt, device=device) * init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the last dims ``normalized_shape``, times a learnt weight
    (1 to start); eps None is the dtype's machine epsilon."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
        self.weight = Parameter(ones(shape, dtype=dt, device=device)) if elementwise_affine else None

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"


class GroupNorm(Module):
    """Normalises each of ``num_groups`` groups of the channels (dim 1), then a learnt weight
    and bias per channel."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: {num_channels} channels do not divide into {num_groups} groups")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
        self.weight = Parameter(ones(num_channels, dtype=dt, device=device)) if affine else None
        self.bias = Parameter(zeros(num_channels, dtype=dt, device=device)) if affine else None

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class CosineSimilarity(Module):
    """F.cosine_similarity(x1, x2, dim, eps)."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """F.pairwise_distance(x1, x2, p, eps, keepdim)."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class Identity(Module):
    """Returns its input (arguments to the constructor are ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Flattens dims start_dim..end_dim (by default all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size``."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``, initialised from
    N(0, 1) (the ``padding_idx`` row zeroed, and kept from learning). ``max_norm``,
    ``norm_type`` and ``scale_grad_by_freq`` as in :func:`gradflow.nn.functional.embedding`
    (the rows looked up are renormalised in place); ``sparse=True`` is not supported."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        if sparse:
            raise NotImplementedError("Embedding: sparse=True is not supported (gradflow's "
                                      "gradients are dense tensors); pass sparse=False")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is not within "
                                 f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.sparse = False
        if _weight is not None and tuple(_weight.shape) != (num_embeddings, embedding_dim):
            raise ValueError(f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                             f"{(num_embeddings, embedding_dim)}")
        dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
        self.weight = Parameter(zeros(num_embeddings, embedding_dim, dtype=dt, device=device)
                                if _weight is None else _weight, requires_grad=not _freeze)
        if _weight is None:
            self.reset_parameters()

    def reset_parameters(self):
        """Draws the table from N(0, 1) again (the padding row zeroed)."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with _no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding holding ``embeddings`` (a 2-d tensor); frozen by default."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{embeddings.shape}")
        return cls(embeddings.shape[0], embeddings.shape[1], padding_idx, max_norm, norm_type,
                   scale_grad_by_freq, sparse, _weight=embeddings, _freeze=freeze)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s


class LayerNorm(Module):
    """Normalises over the last dims ``normalized_shape`` (weight 1 and bias 0 to start)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None, device=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
        self.weight = Parameter(ones(shape, dtype=dt, device=device)) if elementwise_affine else None
        self.bias = Parameter(zeros(shape, dtype=dt, device=device)) if elementwise_affine and bias else None

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"


class BatchNorm1d(Module):
    """Batch normalisation of (N, C) or (N, C, L) inputs: batch statistics in training (and
    running averages updated, kept as buffers), the running averages in eval."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=None, device=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        dt = _dtypes.as_dtype(dtype) or _dtypes.default_float
        self.weight = Parameter(ones(num_features, dtype=dt, device=device)) if affine else None
        self.bias = Parameter(zeros(num_features, dtype=dt, device=device)) if affine else None
        self.track_running_stats = track_running_stats
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dt, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dt, device=device))
            self.register_buffer("num_batches_tracked", zeros((), dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def forward(self, input):
        if input.ndim not in (2, 3) or input.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}): expected (N, {self.num_features}) "
                             f"or (N, {self.num_features}, L) input, got shape {input.shape}")
        use_batch = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            with _no_grad():
                self.num_batches_tracked += 1
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch, self.momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
