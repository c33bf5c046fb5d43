"""autonet: reverse-mode automatic differentiation for NumPy that you can read, draw and check.

import autonet as an
x = an.tensor([0.5, -1.0], requires_grad=True)
y = an.sigmoid(x).sum()
y.backward()
x.grad          # sigmoid(x) * (1 - sigmoid(x))
"""

from autonet import nn, optim
from autonet.anomaly import detect_anomaly, is_anomaly_enabled
from autonet.checkpoint import load, save
from autonet.derive import Derivation, derive
from autonet.engine import topological_order
from autonet.gradcheck import (
    GradcheckError,
    GradcheckResult,
    GradcheckWarning,
    gradcheck,
    gradgradcheck,
)
from autonet.modes import is_grad_enabled, no_grad
from autonet.ops import (
    abs,
    add,
    as_tensor,
    concatenate,
    div,
    exp,
    log,
    matmul,
    max,
    maximum,
    mean,
    mul,
    neg,
    pow,
    relu,
    reshape,
    sigmoid,
    sign,
    sqrt,
    stack,
    sub,
    sum,
    tanh,
    tensor,
    transpose,
)
from autonet.primitives import PRIMITIVES, Primitive
from autonet.replay import Replay, replay
from autonet.seed import seed_gradients
from autonet.tensor import Tensor
from autonet.transforms import grad, gradients
from autonet.viz import draw, render, retain_grads

__version__ = "0.1.0"

__all__ = [
    "Derivation",
    "GradcheckError",
    "GradcheckResult",
    "GradcheckWarning",
    "PRIMITIVES",
    "Primitive",
    "Replay",
    "Tensor",
    "abs",
    "add",
    "as_tensor",
    "concatenate",
    "derive",
    "detect_anomaly",
    "div",
    "draw",
    "exp",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "gradients",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "load",
    "log",
    "matmul",
    "max",
    "maximum",
    "mean",
    "mul",
    "neg",
    "nn",
    "no_grad",
    "optim",
    "pow",
    "relu",
    "render",
    "replay",
    "reshape",
    "save",
    "retain_grads",
    "seed_gradients",
    "sigmoid",
    "sign",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "tanh",
    "tensor",
    "topological_order",
    "transpose",
]
