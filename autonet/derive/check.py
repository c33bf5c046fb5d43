"""derive's two checks of a formula's value: equal to autograd's gradient up to rounding (agrees),
and to central finite differences of the loss in float64 (check_numerically, by gradcheck's
machinery), the loss re-evaluated by running the recorded graph again with one tensor nudged. The
second uses no VJP rule, so it catches a wrong rule that autograd and the formula share
(docs/derive.md, "Checked twice").
"""

from __future__ import annotations

import warnings

import numpy as np

from autonet import gradcheck
from autonet.gradcheck import GradcheckError, GradcheckResult, GradcheckWarning
from autonet.tensor import Tensor

# Above this many elements a tensor's formula is compared with finite differences along
# N_PROJECTIONS random directions (two evaluations each) instead of element by element (two
# evaluations per element); gradcheck's defaults.
MAX_FULL_SIZE = 512
N_PROJECTIONS = 8


def loss_as_function_of(
    t: Tensor, order: list[Tensor], output: Tensor, seed: np.ndarray | None
) -> gradcheck.Evaluation:
    """L as a function of t's value, by the recorded graph: every node that depends on t is
    recomputed by its primitive (recorded, so that gradcheck sees the side of each kink), every
    other node keeps its recorded value. L is the output, or sum(seed * output) when a seed
    dL/d(output) was given."""
    depends = {id(t)}
    recomputed = []
    for node in order:
        if node is not t and any(id(p) in depends for p in node.parents):
            depends.add(id(node))
            recomputed.append(node)

    def evaluate(ts: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        values = {id(t): ts[0]}
        for node in recomputed:
            args = [values[id(p)] if id(p) in values else p.detach() for p in node.parents]
            values[id(node)] = node.op(*args, **node.params)
        out = values[id(output)] if id(output) in values else output.detach()
        if seed is not None:
            out = (out * seed).sum()
        return out, [out]

    return evaluate


def check_numerically(
    value: np.ndarray, name: str, t: Tensor, evaluate: gradcheck.Evaluation
) -> tuple[GradcheckResult | None, str | None]:
    """Compare a formula's value with finite differences of L with respect to t (gradcheck's
    check, with the formula as its analytic side): gradcheck's result when they agree, or its
    explanation when they do not."""
    gradient = value.astype(np.float64)  # of t's shape: unbroadcast sees to it

    def formula_vjp(u: np.ndarray) -> list[np.ndarray]:  # L is a scalar: J^T u = u * dL/dt
        return [float(u.ravel()[0]) * gradient]

    nudged = Tensor(t.data, requires_grad=True, name=name)
    try:
        with warnings.catch_warnings():
            # float32 tensors and checks with every element at a kink: the result says so.
            warnings.simplefilter("ignore", GradcheckWarning)
            result = gradcheck.check(
                evaluate,
                [nudged],
                "derive",
                eps=None,
                atol=1e-5,
                rtol=1e-3,
                max_full_size=MAX_FULL_SIZE,
                n_projections=N_PROJECTIONS,
                seed=0,
                vjp_of=formula_vjp,
                analytic="the formula",
            )
    except GradcheckError as exc:
        return None, str(exc)
    return result, None


def agrees(value: np.ndarray, reference: np.ndarray, equal_nan: bool = False) -> bool:
    """Equal up to rounding: a formula does the same arithmetic as the backward pass, regrouped
    (constants folded, products reordered), which changes the result by a few units in the last
    place per operation, relative to the magnitude of the terms; sqrt(eps) (1.5e-8 in float64)
    leaves a wide margin for that while a wrong formula (a missing factor or transpose) is off
    by the size of the gradient itself. With equal_nan, NaN agrees with NaN (a recorded forward
    value that is NaN, such as log of a negative number, is what its definition gives too)."""
    if value.shape != reference.shape:
        return False
    tol = float(np.sqrt(np.finfo(reference.dtype).eps)) if reference.dtype.kind == "f" else 0.0
    scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
    return bool(np.allclose(value, reference, rtol=tol, atol=tol * scale, equal_nan=equal_nan))
