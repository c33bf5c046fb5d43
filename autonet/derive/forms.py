"""The two functions derive writes that the table does not hold: softmax(x) and onehot(T).

The table has log_softmax (softmax is exp of it, a composite), and cross-entropy's class indices
are an index, not a tensor. A textbook writes the gradient of cross-entropy as
(softmax(Z) − onehot(T)) / m, so derive's simplifications (expr.py) rewrite exp(log_softmax(x)) as
softmax(x) and the scatter of g at (arange(m), T) as g * onehot(T). Each is a Primitive whose
forward computes its value, so a formula that uses them is checked like any other (docs/derive.md,
"Identities").
"""

from __future__ import annotations

import numpy as np

from autonet.primitives import PRIMITIVES, Notation, Primitive, log_softmax_forward


def onehot_forward(labels: np.ndarray, classes: int, dtype: np.dtype) -> np.ndarray:
    """onehot(T)[i, c] = 1 where c == T[i], 0 elsewhere: shape (len(T), classes)."""
    return np.eye(classes, dtype=dtype)[labels]


# Both are written, never differentiated (an Expr records no graph), so neither has a VJP.
# out = exp(log_softmax(x, axis)) = exp(x) / sum exp(x) along axis
SOFTMAX = Primitive(
    "softmax",
    lambda x, axis=-1: np.exp(log_softmax_forward(x, axis=axis)),
    None,
    axis_param="axis",
    notation=Notation("softmax", r"\mathrm{softmax}"),
)
# out = onehot(T): rows of the identity picked by the class indices T
ONEHOT = Primitive("onehot", onehot_forward, None, notation=Notation("onehot", r"\mathrm{onehot}"))

LOG_SOFTMAX = PRIMITIVES["log_softmax"]


def printed_params(op: Primitive, params: dict, ndim: int) -> dict:
    """The params worth printing: softmax's and log_softmax's axis is left out when it is the
    last axis (their default), onehot's number of classes and dtype always (its shape says)."""
    if op is ONEHOT:
        return {}
    if op in (SOFTMAX, LOG_SOFTMAX) and params.get("axis") in (-1, ndim - 1):
        return {k: v for k, v in params.items() if k != "axis"}
    return params
