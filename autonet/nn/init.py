"""Weight initialisers: each returns a new float64 array of the given shape drawn from `rng`.

A Linear layer's weight has shape (in_features, out_features) = (fan_in, fan_out).

    uniform          U[-1, 1)                                   the tutorial's 2 * random() - 1
    xavier_uniform   U[-a, a),  a = sqrt(6 / (fan_in + fan_out)) Glorot and Bengio (2010): keeps
                                                                the variance of activations and of
                                                                gradients about equal across layers
                                                                for tanh / sigmoid units
    he_normal        N(0, 2 / fan_in)                           He et al. (2015): the same for ReLU,
                                                                which zeroes half of its inputs

torch.nn.init fills a tensor in place (`xavier_uniform_`); these return arrays instead, so that a
layer's parameters are made once, already initialised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """U[-1, 1): the tutorial's `2 * np.random.random(shape) - 1`."""
    return 2 * rng.random(shape) - 1


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """U[-a, a) with a = sqrt(6 / (fan_in + fan_out)), so Var = 2 / (fan_in + fan_out)."""
    fan_in, fan_out = fans(shape)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return bound * (2 * rng.random(shape) - 1)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """N(0, std^2) with std = sqrt(2 / fan_in) (Kaiming normal, fan_in mode, for ReLU)."""
    fan_in, _ = fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of that shape; a 1-D shape (n,) has fans (n, n)."""
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) != 2:
        raise ValueError(f"init: expected a 1-D or 2-D weight shape (fan_in, fan_out), got {shape}")
    return shape[0], shape[1]


Initialiser = Callable[[tuple[int, ...], np.random.Generator], np.ndarray]

INITIALISERS: dict[str, Initialiser] = {
    "uniform": uniform,
    "xavier": xavier_uniform,
    "glorot": xavier_uniform,
    "he": he_normal,
    "kaiming": he_normal,
}


def get_initialiser(init: str | Initialiser) -> Initialiser:
    """The initialiser named `init` (a key of INITIALISERS), or `init` itself if it is callable."""
    if callable(init):
        return init
    if init not in INITIALISERS:
        raise ValueError(
            f"init: unknown initialiser {init!r}; use one of {sorted(INITIALISERS)} or a function "
            "(shape, rng) -> ndarray"
        )
    return INITIALISERS[init]
