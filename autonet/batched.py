"""Batched: the value of a tensor inside `vmap`, one example's shape on the outside, the whole
batch inside.

A function mapped by vmap sees tensors of one example's shape (`x.shape`, `x.ndim`, `len(x)`
answer for one example, as in JAX and torch.func), while `value` holds every example at once:
one leading axis per enclosing vmap that maps the tensor, outermost first (`levels` names those
vmaps, in the order they were entered). Operations on such tensors run once on `value`, by the
primitive's batching rule (transforms/vmap.py, from the facts of the table in primitives.py).

What needs one example's numbers (truth, float(), .item(), NumPy on `.data`) cannot be answered
for the batch: it raises ValuesNeededError, as JAX raises for traced values.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import numpy as np


class ValuesNeededError(TypeError):
    """A transformed function asked for values that the transform does not have: vmap's
    function for one example's (a Python `if` on a tensor, float(t), t.item(), NumPy on t.data:
    it runs once for the whole batch), replay's recording for a traced value's (it follows
    operations, not decisions)."""


class Batched:
    """A batch of arrays of one shape: `value` with len(levels) leading batch axes."""

    __slots__ = ("value", "levels")

    def __init__(self, value: np.ndarray, levels: tuple[int, ...]) -> None:
        self.value = value
        self.levels = levels

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape[len(self.levels) :]

    @property
    def ndim(self) -> int:
        return self.value.ndim - len(self.levels)

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def copy(self) -> Batched:
        return Batched(self.value.copy(), self.levels)

    def astype(self, dtype: Any) -> Batched:
        return Batched(self.value.astype(dtype), self.levels)

    def aligned(self, levels: tuple[int, ...]) -> np.ndarray:
        """value with one leading axis per level of `levels` (a superset of self.levels, sorted):
        a level this value is not mapped over gets an axis of length 1, which broadcasts."""
        if levels == self.levels:
            return self.value
        lead = iter(self.value.shape[: len(self.levels)])
        sizes = tuple(next(lead) if level in self.levels else 1 for level in levels)
        return self.value.reshape(sizes + self.shape)

    def needs_values(self, what: str) -> NoReturn:
        raise ValuesNeededError(
            f"vmap: {what} needs the values of one example, but inside vmap a tensor of shape "
            f"{self.shape} stands for a whole batch (shape {self.value.shape}); compute with "
            "autonet operations instead (an.where(x > 0, a, b) for an `if`, a mask for a loop), "
            "or call the function outside vmap"
        )

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NoReturn:
        self.needs_values("converting a tensor to a NumPy array")

    def item(self) -> NoReturn:
        self.needs_values("item()")

    def __bool__(self) -> bool:
        self.needs_values("the truth value of a tensor (an `if` or `while` on it)")

    def __float__(self) -> float:
        self.needs_values("float()")

    def __repr__(self) -> str:
        batch = self.value.shape[: len(self.levels)]
        return f"Batched(shape={self.shape}, dtype={self.dtype}, batch={batch})"


class RecordedThroughMapError(NotImplementedError):
    """A backward pass through a result of vmap was asked to record itself (create_graph, or
    another transform's rules on Tensors): the map's VJP gives arrays only."""
