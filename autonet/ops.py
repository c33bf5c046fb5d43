"""The NumPy/torch-style functions of autonet: an.add, an.exp, an.sum, an.concatenate, ...

Each takes Tensors, arrays or numbers and returns a Tensor; each is the method of the same name
(`an.exp(x)` is `an.tensor(x).exp()`) or a primitive of the table applied directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autonet.primitives import PRIMITIVES
from autonet.tensor import Tensor, as_operand, record


def tensor(
    data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None
) -> Tensor:
    """A new leaf tensor holding a copy of data (same as Tensor(...), as torch.tensor)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def add(a: Any, b: Any) -> Tensor:
    """a + b with broadcasting."""
    return as_tensor(a) + b


def sub(a: Any, b: Any) -> Tensor:
    """a - b with broadcasting."""
    return as_tensor(a) - b


def mul(a: Any, b: Any) -> Tensor:
    """a * b, element-wise with broadcasting (the Hadamard product)."""
    return as_tensor(a) * b


def div(a: Any, b: Any) -> Tensor:
    """a / b with broadcasting."""
    return as_tensor(a) / b


def neg(x: Any) -> Tensor:
    """-x."""
    return -as_tensor(x)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - the NumPy/torch name
    """a ** b with broadcasting."""
    return as_tensor(a) ** b


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b with numpy.matmul's rules: 1-D operands, 2-D, and batched N-D with broadcasting."""
    return as_tensor(a) @ b


def exp(x: Any) -> Tensor:
    return as_tensor(x).exp()


def log(x: Any) -> Tensor:
    return as_tensor(x).log()


def sqrt(x: Any) -> Tensor:
    return as_tensor(x).sqrt()


def sigmoid(x: Any) -> Tensor:
    return as_tensor(x).sigmoid()


def tanh(x: Any) -> Tensor:
    return as_tensor(x).tanh()


def relu(x: Any) -> Tensor:
    return as_tensor(x).relu()


def abs(x: Any) -> Tensor:  # noqa: A001 - the NumPy/torch name
    return as_tensor(x).abs()


def sign(x: Any, at_zero: float = 0.0) -> Tensor:
    return as_tensor(x).sign(at_zero=at_zero)


def maximum(a: Any, b: Any) -> Tensor:
    """Element-wise maximum with broadcasting; at ties each input receives half the gradient."""
    a = as_tensor(a)
    return record(PRIMITIVES["maximum"], (a, as_operand(b, a, "maximum")))


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return as_tensor(x).sum(axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return as_tensor(x).mean(axis=axis, keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return as_tensor(x).max(axis=axis, keepdims=keepdims)


def reshape(x: Any, shape: Any) -> Tensor:
    return as_tensor(x).reshape(shape)


def transpose(x: Any, axes: Any = None) -> Tensor:
    return as_tensor(x).transpose(axes) if axes is not None else as_tensor(x).transpose()


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis, as numpy.concatenate (torch.cat)."""
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    inputs = [as_tensor(t) for t in tensors]
    ndim = inputs[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: 0-d tensors cannot be concatenated; use stack")
    params = {"axis": axis}
    return record(PRIMITIVES["concatenate"], tuple(inputs), params)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along a new axis, as numpy.stack (torch.stack)."""
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    inputs = [as_tensor(t) for t in tensors]
    shapes = {t.shape for t in inputs}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    ndim = inputs[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis {axis} is out of range for the result's {ndim} dimensions")
    axis %= ndim
    expanded = [t.reshape(t.shape[:axis] + (1,) + t.shape[axis:]) for t in inputs]
    return concatenate(expanded, axis=axis)
