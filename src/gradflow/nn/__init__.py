"""Neural-network building blocks: Module, Parameter, containers, layers, losses, init,
functional, utils, padding layers."""

from . import functional, init, parallel, utils
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers import (CELU, ELU, GELU, GLU, SELU, BatchNorm1d, BCELoss, BCEWithLogitsLoss,
                     CosineSimilarity, CrossEntropyLoss, Dropout, Embedding, Flatten, GroupNorm,
                     Hardshrink, Hardsigmoid, Hardswish, Hardtanh, HuberLoss, Identity, KLDivLoss,
                     L1Loss, LayerNorm, LeakyReLU, Linear, LogSigmoid, LogSoftmax, Mish, MSELoss,
                     NLLLoss, PairwiseDistance, PReLU, ReLU, ReLU6, RMSNorm, Sigmoid, SiLU,
                     SmoothL1Loss, Softmax, Softmin, Softplus, Softshrink, Softsign, Tanh,
                     Tanhshrink, Threshold, Unflatten)
from .module import Module
from .padding import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d,
                      ConstantPad3d, ReflectionPad1d, ReflectionPad2d, ReflectionPad3d,
                      ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d,
                      ZeroPad3d)
from .parameter import Parameter

__all__ = ["functional", "init", "parallel", "utils", "Module", "Parameter", "Sequential", "ModuleList",
           "ModuleDict", "ParameterList", "ParameterDict", "Linear", "Dropout", "Embedding",
           "LayerNorm", "BatchNorm1d", "Flatten", "Unflatten", "Identity", "Sigmoid", "Tanh",
           "ReLU", "LeakyReLU", "GELU", "Softplus", "SiLU", "ELU", "SELU", "CELU", "Mish",
           "Hardswish", "Hardsigmoid", "Hardtanh", "ReLU6", "LogSigmoid", "Softsign", "Softmax",
           "LogSoftmax", "Softmin", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss",
           "BCEWithLogitsLoss", "BCELoss", "HuberLoss", "SmoothL1Loss", "KLDivLoss", "GLU",
           "Threshold", "Tanhshrink", "Softshrink", "Hardshrink", "PReLU", "RMSNorm", "GroupNorm",
           "CosineSimilarity", "PairwiseDistance",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
           "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
           "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d"]
