"""autonet: reverse-mode automatic differentiation for NumPy that you can read, draw and check.

    import autonet as an
    x = an.tensor([0.5, -1.0], requires_grad=True)
    y = an.sigmoid(x).sum()
    y.backward()
    x.grad          # sigmoid(x) * (1 - sigmoid(x))
"""

from autonet.anomaly import detect_anomaly, is_anomaly_enabled
from autonet.engine import gradients, grad, is_grad_enabled, no_grad, topological_order
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
from autonet.seed import seed_gradients
from autonet.tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "PRIMITIVES",
    "Primitive",
    "Tensor",
    "abs",
    "add",
    "as_tensor",
    "concatenate",
    "detect_anomaly",
    "div",
    "exp",
    "grad",
    "gradients",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "log",
    "matmul",
    "max",
    "maximum",
    "mean",
    "mul",
    "neg",
    "no_grad",
    "pow",
    "relu",
    "reshape",
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
