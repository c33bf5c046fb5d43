"""Independent oracles for the tests: central finite differences on raw NumPy functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Central differences have truncation error O(eps^2 f''') and rounding error O(ulp(f) / eps); in
# float64 with eps = 1e-6 and values of order 1 both stay below ~1e-9, so 1e-6 absolute plus 1e-5
# relative separates a correct rule from a wrong one (a wrong factor is off by O(1)).
EPS = 1e-6
ATOL = 1e-6
RTOL = 1e-5


def numeric_gradient(
    f: Callable[..., float], arrays: Sequence[np.ndarray], i: int, eps: float = EPS
) -> np.ndarray:
    """d f(*arrays) / d arrays[i] by central differences, element by element, in float64."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    x = arrays[i]
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        up = f(*arrays)
        x[index] = saved - eps
        down = f(*arrays)
        x[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad
