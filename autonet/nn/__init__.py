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

Everything here is built from autonet's public ops; no module has a backward of its own.
"""

from autonet.nn import functional, init
from autonet.nn.modules import (
    ACTIVATIONS,
    MLP,
    Dropout,
    Identity,
    Linear,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Sign,
    Tanh,
)
from autonet.nn.training import History, fit

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Dropout",
    "History",
    "Identity",
    "Linear",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Sign",
    "Tanh",
    "fit",
    "functional",
    "init",
]
