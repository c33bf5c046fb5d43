"""autonet.nn: modules (layers with parameters), initialisers, losses and a training loop.

    import autonet as an
    from autonet.nn import functional as F

    model = an.nn.MLP([3, 4, 1], bias=False, init="uniform", rng=1)   # the tutorial's network
    optimizer = an.optim.SGD(model.parameters(), lr=1.0)
    for step in range(1000):                                         # or: an.nn.fit(model, X, Y)
        loss = F.half_sse(model(X), Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

Layers keep PyTorch's names, arguments and defaults (each module's docstring says where autonet
differs): Linear, Conv1d, Conv2d, MaxPool2d, AvgPool2d, Flatten, LayerNorm, BatchNorm1d,
BatchNorm2d, Embedding, Dropout and the activations; Sequential, ModuleList and ModuleDict hold
sub-modules. A residual block is a Module whose forward adds its input back:

    class Residual(an.nn.Module):
        def __init__(self, width, rng=None):
            self.body = an.nn.Sequential(
                an.nn.Linear(width, width, rng=rng), an.nn.GELU(), an.nn.LayerNorm(width)
            )

        def forward(self, x):
            return x + self.body(x)        # the gradient reaches x both ways, and adds up

    model = an.nn.Sequential(an.nn.Linear(3, 8), Residual(8), Residual(8), an.nn.Linear(8, 1))

Everything here is built from autonet's public ops; no module has a backward of its own.
"""

from autonet.nn import functional, init, utils
from autonet.nn.convolution import AvgPool2d, Conv1d, Conv2d, MaxPool2d
from autonet.nn.layers import (
    ACTIVATIONS,
    GELU,
    MLP,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Sign,
    Softmax,
    Tanh,
)
from autonet.nn.modules import IncompatibleKeys, Module, ModuleDict, ModuleList, Sequential
from autonet.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from autonet.nn.training import History, fit

__all__ = [
    "ACTIVATIONS",
    "GELU",
    "MLP",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "History",
    "Identity",
    "IncompatibleKeys",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Sign",
    "Softmax",
    "Tanh",
    "fit",
    "functional",
    "init",
    "utils",
]
