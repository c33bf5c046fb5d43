"""The tutorial's network and its hand-derived gradients, kept as a reference to check against.

The network (3 inputs, 4 hidden units, 1 output, no biases, sigmoid everywhere):

    H = sigmoid(S . syn0)        S: (m, n) samples, syn0: (n, p)
    O = sigmoid(H . syn1)        syn1: (p, k), O: (m, k)
    L = 1/2 sum (O - Y)^2        Y: (m, k) targets

and the gradients the tutorial derives by hand ('.' is the matrix product, '*' element-wise):

    grad1 = dL/dsyn1 = H^T . ((O - Y) * O * (1 - O))
    grad0 = dL/dsyn0 = S^T . ((((O - Y) * O * (1 - O)) . syn1^T) * H * (1 - H))
"""

from __future__ import annotations

import numpy as np

from autonet.primitives import stable_sigmoid

# The tutorial's data: output 1 when the first two inputs are equal (XNOR); the third input is a
# constant 1 that plays the role of a bias.
XNOR_INPUTS = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
XNOR_TARGETS = np.array([[1], [0], [0], [1]], dtype=np.float64)


def seed_forward(
    S: np.ndarray, syn0: np.ndarray, syn1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The hidden layer H and the output O of the tutorial's network, in plain NumPy."""
    H = stable_sigmoid(S @ syn0)
    O = stable_sigmoid(H @ syn1)
    return H, O


def seed_loss(S: np.ndarray, Y: np.ndarray, syn0: np.ndarray, syn1: np.ndarray) -> float:
    """L = 1/2 sum (O - Y)^2."""
    _, O = seed_forward(S, syn0, syn1)
    return 0.5 * float(np.sum((O - Y) ** 2))


def seed_gradients(
    S: np.ndarray, Y: np.ndarray, syn0: np.ndarray, syn1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(grad0, grad1) = (dL/dsyn0, dL/dsyn1), exactly as the tutorial writes them."""
    H, O = seed_forward(S, syn0, syn1)
    delta_O = (O - Y) * O * (1 - O)
    grad1 = H.T @ delta_O
    grad0 = S.T @ ((delta_O @ syn1.T) * H * (1 - H))
    return grad0, grad1


def seed_weights(
    n: int = 3, p: int = 4, k: int = 1, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's initialisation: syn0, syn1 uniform in [-1, 1)."""
    rng = np.random.default_rng(seed)
    return 2 * rng.random((n, p)) - 1, 2 * rng.random((p, k)) - 1
