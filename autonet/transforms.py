"""Transforms: functions of functions and of graphs, as JAX's and torch.func's, built on the
backward pass (engine.backpropagate) and above Tensor.

    gradients(output, inputs)   d(output)/d(input) for each input (torch.autograd.grad)
    grad(f)                     x -> df/dx, composable (JAX's grad)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autonet.engine import backpropagate, check_root_grad, topological_order
from autonet.modes import is_grad_enabled
from autonet.tensor import Tensor


def gradients(
    output: Tensor,
    inputs: Sequence[Tensor],
    grad: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> tuple[Tensor, ...]:
    """d(output)/d(input) for each input, returned rather than stored (as torch.autograd.grad).

    `inputs` may be leaves or intermediate tensors; an input that output does not depend on gets a
    gradient of zeros (torch.autograd.grad raises unless allow_unused=True). No `.grad` changes.
    `retain_graph` defaults to `create_graph`.
    """
    if not output.requires_grad:
        raise RuntimeError(
            "gradients: the output does not require grad (no input of it has requires_grad=True)"
        )
    root_grad: Any = check_root_grad(output, grad, "gradients")
    if create_graph:
        # a Tensor seed stays in the graph, so the gradients are differentiable in it too (the
        # double-VJP trick for Jacobian-vector products differentiates them with respect to it)
        root_grad = grad if isinstance(grad, Tensor) else Tensor(root_grad)
    found = backpropagate(
        output,
        root_grad,
        retain_graph=create_graph if retain_graph is None else retain_graph,
        create_graph=create_graph,
        wanted=inputs,
    )
    result = []
    for t in inputs:
        g = found.get(id(t))
        if g is None:
            g = np.zeros(t.shape, dtype=t.dtype)
        # each result owns its memory (Tensor() and clone() copy): the pass may hand the same
        # array, or the caller's seed, to several inputs
        result.append(g.clone() if isinstance(g, Tensor) else Tensor(g))
    return tuple(result)


def grad(function: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The gradient of a scalar-valued function, as a function (JAX / HIPS autograd style).

        grad(f)(x) = df/dx at x            grad(f, argnums=(0, 1))(x, y) = (df/dx, df/dy)

    Arguments may be numbers, arrays or Tensors; results are Tensors. It composes: called on a
    Tensor that is itself being differentiated, it records its own backward pass, so
    an.grad(an.grad(an.sigmoid))(x) is sigmoid'' = s (1 - s) (1 - 2 s), s = sigmoid(x).
    """

    def gradient_of_function(*args: Any) -> Any:
        positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        args_list = list(args)
        made_here = set()
        for i in positions:
            arg = args_list[i]
            if not (isinstance(arg, Tensor) and arg.requires_grad):
                data = arg.data if isinstance(arg, Tensor) else arg
                args_list[i] = Tensor(data, requires_grad=True)
                made_here.add(id(args_list[i]))
        output = function(*args_list)
        if not isinstance(output, Tensor) or output.size != 1:
            shape = getattr(output, "shape", type(output).__name__)
            raise TypeError(
                f"grad: the function must return a one-element Tensor, got {shape}; "
                "for a vector output use gradients(output, inputs, grad=...)"
            )
        wanted = [args_list[i] for i in positions]
        if output.requires_grad:
            # Record the backward pass when the output depends on a tensor this call did not
            # make (an argument that requires grad, another argument of an enclosing grad, a
            # tensor the function closes over): something outside may differentiate the result.
            nested = is_grad_enabled() and any(
                node.op is None and id(node) not in made_here for node in topological_order(output)
            )
            result = gradients(output, wanted, create_graph=nested)
        else:
            result = tuple(Tensor(np.zeros(t.shape, dtype=t.dtype)) for t in wanted)
        return result[0] if isinstance(argnums, int) else result

    gradient_of_function.__name__ = f"grad_of_{getattr(function, '__name__', 'function')}"
    return gradient_of_function
