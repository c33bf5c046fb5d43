"""Reverse mode: grad, value_and_grad, vjp, jacobian (jacrev): a backward pass per call, per
cotangent or per row of the Jacobian."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autonet import backend
from autonet.batched import RecordedThroughMapError
from autonet.tensor import Tensor
from autonet.transforms.core import (
    add_up,
    arrange,
    assemble,
    call,
    gradients,
    one_hot,
    outputs_of,
    positions_of,
    recorded,
    results,
    seed_like,
    variables,
    zeros_for,
)
from autonet.transforms.vmap import vmap

# ---------------------------------------------------------------------------------------------
# Reverse mode


def value_and_grad(
    function: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """f and its gradient in one call, as a function (JAX's value_and_grad).

        value_and_grad(f)(x) = (f(x), df/dx)    with has_aux: ((f(x), aux), df/dx)

    f returns a one-element Tensor (with has_aux, a pair (that Tensor, anything)). One forward
    pass and one backward pass.
    """
    return value_and_grad_as(function, argnums, has_aux, "value_and_grad")


def value_and_grad_as(
    function: Callable[..., Any], argnums: int | Sequence[int], has_aux: bool, transform: str
) -> Callable[..., Any]:
    """value_and_grad, its errors naming `transform` (grad is built on it)."""

    def value_and_gradient_of_function(*args: Any) -> Any:
        positions = positions_of(argnums, len(args), transform)
        args_list, made_here = variables(args, positions)
        output, aux = call(function, args_list, transform, has_aux)
        if not isinstance(output, Tensor) or output.size != 1:
            shape = getattr(output, "shape", type(output).__name__)
            raise TypeError(
                f"{transform}: the function must return a one-element Tensor, got {shape}; "
                "for a vector output use gradients(output, inputs, grad=...)"
            )
        wanted = [args_list[i] for i in positions]
        keep = recorded([output], made_here)
        if output.requires_grad:
            found = gradients(output, wanted, create_graph=keep)
        else:
            found = tuple(zeros_for(t) for t in wanted)
        (value,) = results([output], keep)
        found_out = found[0] if isinstance(argnums, int) else found
        return ((value, aux) if has_aux else value), found_out

    name = getattr(function, "__name__", "function")
    value_and_gradient_of_function.__name__ = f"value_and_grad_of_{name}"
    return value_and_gradient_of_function


def grad(
    function: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The gradient of a scalar-valued function, as a function (JAX / HIPS autograd style).

        grad(f)(x) = df/dx at x            grad(f, argnums=(0, 1))(x, y) = (df/dx, df/dy)
        grad(f, has_aux=True)(x) = (df/dx, aux)   for f returning (output, aux)

    Arguments may be numbers, arrays or Tensors; results are Tensors. It composes: called on a
    Tensor that is itself being differentiated, it records its own backward pass, so
    an.grad(an.grad(an.sigmoid))(x) is sigmoid'' = s (1 - s) (1 - 2 s), s = sigmoid(x).
    """
    both = value_and_grad_as(function, argnums, has_aux, "grad")

    def gradient_of_function(*args: Any) -> Any:
        value, found = both(*args)
        return (found, value[1]) if has_aux else found

    gradient_of_function.__name__ = f"grad_of_{getattr(function, '__name__', 'function')}"
    return gradient_of_function


def vjp(function: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """f(primals) and the function u -> J^T u (JAX's vjp): (out, vjp_fn), or (out, vjp_fn, aux).

        vjp_fn(u) = (u^T df/dx_1, ..., u^T df/dx_n)     one gradient per primal, in order

    u has the output's shape and dtype (a tuple of those if f returns a tuple). vjp_fn may be
    called any number of times, one backward pass each; f runs once.
        out, vjp_fn = an.vjp(an.sin, x);  (g,) = vjp_fn(an.ones_like(out))   # g = cos(x)
    """
    args, made_here = variables(primals, range(len(primals)))
    out, aux = call(function, args, "vjp", has_aux)
    outs = outputs_of(out, "vjp")

    def vjp_fn(cotangent: Any) -> tuple[Tensor, ...]:
        cotangents = cotangent if isinstance(out, tuple) else (cotangent,)
        if len(cotangents) != len(outs):
            raise ValueError(
                f"vjp: the function returned {len(outs)} outputs but vjp_fn got "
                f"{len(cotangents)} cotangents; pass one per output"
            )
        seeds = [
            seed_like(c, o, "vjp", f"cotangent {k}", f"output {k}")
            for k, (c, o) in enumerate(zip(cotangents, outs, strict=True))
        ]
        keep = recorded(outs, made_here, seeds)
        total: list[Any] = [None] * len(args)
        for o, u in zip(outs, seeds, strict=True):
            if o.requires_grad:
                total = add_up(
                    total, gradients(o, args, grad=u, retain_graph=True, create_graph=keep)
                )
        return tuple(zeros_for(a) if g is None else g for a, g in zip(args, total, strict=True))

    kept = results(outs, recorded(outs, made_here))
    value = kept if isinstance(out, tuple) else kept[0]
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jacobian(
    function: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The full Jacobian by reverse mode, a row per backward pass (JAX's jacrev).

        jacobian(f)(x)[i..., j...] = d f(x)[i...] / d x[j...]      shape f(x).shape + x.shape

    With tuple argnums, a tuple of blocks, one per argument; for f returning a tuple, a tuple
    over outputs of those. Cost: one forward pass and out.size backward passes (jacfwd costs
    in.size passes instead: pick the smaller side).
    """

    return jacobian_by(function, argnums, has_aux, "jacobian", rows_by_reverse_mode)


def jacobian_by(
    function: Callable[..., Any],
    argnums: int | Sequence[int],
    has_aux: bool,
    transform: str,
    blocks_of: Callable[[Sequence[Tensor], list[Tensor], bool], list[tuple[Tensor, ...]]],
) -> Callable[..., Any]:
    """jacobian or jacfwd: blocks_of(outputs, inputs, record) gives, per output, its Jacobian
    block for each input."""

    def jacobian_of_function(*args: Any) -> Any:
        positions = positions_of(argnums, len(args), transform)
        args_list, made_here = variables(args, positions)
        out, aux = call(function, args_list, transform, has_aux)
        outs = outputs_of(out, transform)
        wanted = [args_list[i] for i in positions]
        found = arrange(blocks_of(outs, wanted, recorded(outs, made_here)), out, argnums)
        return (found, aux) if has_aux else found

    name = getattr(function, "__name__", "function")
    jacobian_of_function.__name__ = f"{transform}_of_{name}"
    return jacobian_of_function


def rows_by_reverse_mode(
    outs: Sequence[Tensor], wanted: list[Tensor], keep: bool
) -> list[tuple[Tensor, ...]]:
    """Each Jacobian block from its rows: a backward pass per output element, seeded by e_k --
    all of them at once, by vmap over the seeds, unless the rows are recorded (vmap's results
    cannot be differentiated from outside), or there are none."""
    blocks = []
    for o in outs:
        if o.requires_grad and not keep and o.size and not backend.is_foreign(o.data):
            seeds = np.eye(o.size, dtype=o.dtype).reshape((o.size, *o.shape))
            try:
                rows = vmap(lambda u, o=o: gradients(o, wanted, u, True, False))(seeds)
            except RecordedThroughMapError:  # o was computed by a vmap: a pass per row below
                pass
            else:
                blocks.append(
                    tuple(r.reshape(o.shape + x.shape) for r, x in zip(rows, wanted, strict=True))
                )
                continue
        rows = [
            gradients(o, wanted, one_hot(o, k), True, keep)
            if o.requires_grad
            else tuple(zeros_for(x) for x in wanted)
            for k in range(o.size)
        ]
        blocks.append(
            tuple(assemble([row[j] for row in rows], o, x, rows=True) for j, x in enumerate(wanted))
        )
    return blocks


jacrev = jacobian
