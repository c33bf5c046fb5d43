"""Forward mode by transposing the VJP (jvp, jacfwd) and second order (hessian, hvp)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autonet import backend
from autonet.engine import backpropagate
from autonet.primitives import constant_like
from autonet.tensor import Tensor
from autonet.transforms.core import (
    add_up,
    arranged,
    assemble,
    call,
    gradients,
    one_hot,
    outputs_of,
    recorded,
    results,
    seed_like,
    variables,
    zeros_for,
)
from autonet.transforms.reverse import grad, jacobian, jacobian_by
from autonet.transforms.vmap import vmap

# ---------------------------------------------------------------------------------------------
# Forward mode, by transposing the VJP
#
# g(u) = J^T u is linear in u, so its own VJP is J:  d<g(u), v>/du = J v. Recording the first
# backward pass with a seed u that requires grad (any value: zeros) and backpropagating through
# that record with seed v gives the Jacobian-vector product exactly, with no new rule per
# primitive: every VJP in the table is written in differentiable operations.


def transposed(outs: Sequence[Tensor], wanted: Sequence[Tensor]) -> tuple[list[Tensor], list]:
    """Seeds u (zeros that require grad, one per output) and g_j(u) = sum_o J_oj^T u_o for each
    wanted input, recorded so that they can be differentiated with respect to u."""
    us = [
        Tensor(constant_like(o, np.zeros(o.shape, dtype=o.dtype)), requires_grad=True) for o in outs
    ]
    gs: list[Any] = [None] * len(wanted)
    for o, u in zip(outs, us, strict=True):
        if o.requires_grad:
            # the engine's own results, not gradients()'s copies: g_j is only differentiated
            # below, never handed out (None for an input o does not depend on)
            found = backpropagate(o, u, retain_graph=True, create_graph=True, wanted=wanted)
            gs = add_up(gs, [found.get(id(t)) for t in wanted])
    return us, gs


def pushed_forward(
    us: list[Tensor], gs: list[Any], tangents: Sequence[Any], keep: bool
) -> list[Tensor]:
    """J v = sum_j d<g_j(u), v_j>/du for each output; a None tangent is zero."""
    total: list[Any] = [None] * len(us)
    for g, v in zip(gs, tangents, strict=True):
        if v is not None and g is not None and g.requires_grad:
            total = add_up(total, gradients(g, us, grad=v, retain_graph=True, create_graph=keep))
    return [zeros_for(u) if t is None else t for u, t in zip(us, total, strict=True)]


def jvp(
    function: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any], has_aux=False
) -> Any:
    """f(primals) and the Jacobian-vector product J v (JAX's jvp): (out, tangent_out).

        tangent_out = sum_j df/dx_j v_j        v_j of primal j's shape and dtype

    Forward mode by transposing the VJP: g(u) = J^T u is recorded with u a Tensor that requires
    grad, and J v = d<g(u), v>/du is a backward pass through that record. The result is exact
    (to rounding, as the VJPs), and costs the forward pass, one recorded backward pass and a
    backward pass through it: a small constant times the forward pass (4x for a two-layer
    network at batch 64, width 512; a gradient costs 2x).
        out, dout = an.jvp(an.sin, (x,), (v,))      # dout = cos(x) * v
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp: got {len(primals)} primals but {len(tangents)} tangents; pass one tangent per "
            "primal, as tuples: jvp(f, (x, y), (v, w))"
        )
    args, made_here = variables(primals, range(len(primals)))
    tangents = tuple(
        seed_like(v, x, "jvp", f"tangent {j}", f"primal {j}")
        for j, (v, x) in enumerate(zip(tangents, args, strict=True))
    )
    out, aux = call(function, args, "jvp", has_aux)
    outs = outputs_of(out, "jvp")
    keep = recorded(outs, made_here, tangents)
    us, gs = transposed(outs, args)
    found = pushed_forward(us, gs, tangents, keep)
    kept = results(outs, keep)
    value, tangent_out = (kept, tuple(found)) if isinstance(out, tuple) else (kept[0], found[0])
    return (value, tangent_out, aux) if has_aux else (value, tangent_out)


def jacfwd(
    function: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The full Jacobian by forward mode, a column per Jacobian-vector product (JAX's jacfwd).

    The same layout as jacobian: shape f(x).shape + x.shape, tuples for tuple argnums or tuple
    outputs. The jvps share one forward pass and one recorded backward pass (see jvp); then each
    basis tangent costs one backward pass through the record, in.size of them.
    """

    return jacobian_by(function, argnums, has_aux, "jacfwd", columns_by_forward_mode)


def columns_by_forward_mode(
    outs: Sequence[Tensor], wanted: list[Tensor], keep: bool
) -> list[tuple[Tensor, ...]]:
    """Each Jacobian block from its columns: J e_k for each element k of each input, all from
    one recorded VJP -- the columns of an input at once, by vmap over the basis tangents, unless
    they are recorded (vmap's results cannot be differentiated from outside)."""
    us, gs = transposed(outs, wanted)
    blocks: list[list[Tensor]] = [[] for _ in outs]  # [i][j]: d out_i / d input_j
    for j, x in enumerate(wanted):
        if not keep and x.size and not backend.is_foreign(x.data):

            def column(v: Tensor, j: int = j) -> tuple[Tensor, ...]:
                return tuple(
                    pushed_forward(
                        us, gs, [v if m == j else None for m in range(len(wanted))], False
                    )
                )

            tangents = np.eye(x.size, dtype=x.dtype).reshape((x.size, *x.shape))
            for i, stacked in enumerate(vmap(column)(tangents)):
                blocks[i].append(arranged(stacked, outs[i], x, rows=False))
            continue
        basis: list[Any] = [None] * len(wanted)
        columns = []  # [k]: J e_k, e_k the k-th element of input j
        for k in range(x.size):
            basis[j] = one_hot(x, k)
            columns.append(pushed_forward(us, gs, basis, keep))
        for i, o in enumerate(outs):
            blocks[i].append(assemble([c[i] for c in columns], o, x, rows=False))
    return [tuple(block) for block in blocks]


# ---------------------------------------------------------------------------------------------
# Second order


def hessian(function: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The Hessian of a scalar function, reverse over reverse: jacobian(grad(f)).

        hessian(f)(x)[i..., j...] = d^2 f / dx[i...] dx[j...]      shape x.shape + x.shape

    One forward pass, the recorded gradient, then a backward pass through the gradient's record
    per element of x. JAX uses jacfwd(grad(f)), forward over reverse, since its forward mode is
    native; here forward mode is itself a pass through a recorded VJP, so jacfwd(grad(f)) gives
    the same matrix about twice as slowly (measured at x of size 64).
    """
    return jacobian(grad(function, argnums), argnums)


def hvp(function: Callable[..., Any], x: Any, v: Any) -> Tensor:
    """The Hessian-vector product H v of a scalar function at x, without forming H.

        hvp(f, x, v) = d<grad f(x), v>/dx         v of x's shape and dtype

    Reverse over reverse: the gradient is recorded and <grad f(x), v> differentiated once more,
    about twice the cost of a gradient whatever the size of x.
    """
    like = x if isinstance(x, Tensor) else Tensor(x)
    v = seed_like(v, like, "hvp", "v", "x")
    first = grad(function)
    return grad(lambda y: (first(y) * v).sum())(x)
