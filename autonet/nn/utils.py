"""Training utilities that act on parameters' gradients, as torch.nn.utils.

loss.backward()
an.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
optimizer.step()
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from autonet import backend
from autonet.modes import no_grad
from autonet.tensor import Tensor


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the parameters' gradients in place so that their total norm is at most max_norm;
    return the total norm before scaling, as torch.nn.utils.clip_grad_norm_.

        n_i   = |g_i|_p                 each gradient's norm, flattened (p = norm_type)
        total = |(n_1, n_2, ...)|_p     (= the p-norm of all gradients as one vector)
        g_i   = g_i * min(1, max_norm / (total + 1e-6))

    p may be any float, inf or 'inf' (the largest |element|), -inf (the smallest) or 0 (the count
    of non-zero elements). Parameters whose .grad is None are skipped; with none left the total
    is 0. A total that is nan or inf raises RuntimeError if error_if_nonfinite, else scales the
    gradients by max_norm / (total + 1e-6) anyway (0 for inf, nan for nan), as PyTorch does.
    The norm is a 0-d Tensor of the gradients' result dtype (a float32 model gives float32),
    computed in the gradients' array library (they must share one: backend.namespace_of).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(
            f"clip_grad_norm_: norm_type must be a number, inf or 'inf', got {norm_type!r}"
        ) from None
    grads = [parameter.grad for parameter in parameters if parameter.grad is not None]
    if not grads:
        return Tensor(np.array(0.0))
    xp = backend.namespace_of(*(g.data for g in grads), operation="clip_grad_norm_")
    dtype = backend.dtype_in(xp, np.result_type(*(g.dtype for g in grads)))
    norms = xp.stack([xp.astype(vector_norm(g.data, p, xp), dtype) for g in grads])
    total = vector_norm(norms, p, xp)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {p} of the gradients is {total}, so they "
            "cannot be clipped; find the non-finite gradient (an.detect_anomaly() names the "
            "operation), or pass error_if_nonfinite=False to scale by the non-finite norm anyway"
        )
    coefficient = xp.clip(max_norm / (total + 1e-6), max=1.0)  # nan stays nan
    with no_grad(), np.errstate(invalid="ignore"):  # inf * 0 is nan, as documented
        for g in grads:
            g.data = g.data * xp.astype(coefficient, g.data.dtype)
    return Tensor(total)


def vector_norm(x: Any, p: float, xp: Any) -> Any:
    """The p-norm of x's elements as one vector, in x's dtype (torch.linalg.vector_norm). The
    norm of no elements is the identity of its reduction: 0, or inf for p = -inf (a minimum), so
    an empty gradient leaves the total unchanged (torch refuses it for p = inf or -inf). x is an
    array of namespace xp, and so is the norm, a 0-d array."""
    flat = xp.abs(xp.reshape(x, (-1,)))
    if flat.shape[0] == 0:
        empty = math.inf if p == -math.inf else 0.0
        return xp.asarray(empty, dtype=x.dtype, device=backend.array_api_compat().device(x))
    if p == math.inf:
        return xp.max(flat)
    if p == -math.inf:
        return xp.min(flat)
    if p == 0:
        return xp.astype(xp.count_nonzero(flat), x.dtype)
    return xp.astype(xp.sum(flat**p) ** (1 / p), x.dtype)
