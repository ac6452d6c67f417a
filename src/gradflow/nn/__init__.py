"""Neural-network building blocks: Module, Parameter, layers, losses, init, functional."""

from . import functional, init, parallel
from .layers import (GELU, BCEWithLogitsLoss, CrossEntropyLoss, Dropout, LeakyReLU, Linear,
                     MSELoss, ReLU, Sequential, Sigmoid, Softplus, Tanh)
from .module import Module
from .parameter import Parameter

__all__ = ["functional", "init", "parallel", "Module", "Parameter", "Linear", "Sequential",
           "Dropout", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU", "Softplus", "MSELoss",
           "CrossEntropyLoss", "BCEWithLogitsLoss"]
