"""Layers without convolution or normalisation: Linear, activations, Dropout, Flatten, Embedding,
and the MLP built from them. Each forward is a few of autonet's public ops (see functional.py).

Where autonet differs from PyTorch:
- Linear's weight has shape (in_features, out_features) and the layer computes x @ weight + bias,
  as the tutorial writes S . syn0; torch.nn.Linear stores (out, in) and computes x @ weight.T.
  Its default init is Xavier uniform with zero biases, not PyTorch's kaiming_uniform(a=sqrt(5)).
- Softmax and LogSoftmax take dim as a required argument (PyTorch's dim=None picks an axis by
  the input's rank, a deprecated guess).
- Embedding has no padding_idx, max_norm or sparse gradients.
- Layers draw their initial weights from `rng` (a seed or a numpy Generator), with PyTorch's
  distributions but not its random stream.

A layer given an input of the wrong shape names itself (its repr), the shape it expects and
the shape it got (check_input).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from autonet.nn import functional as F
from autonet.nn.init import Initialiser, get_initialiser
from autonet.nn.modules import Module, RandomState, Sequential, make_rng
from autonet.ops import as_tensor
from autonet.tensor import Tensor, normalize_axis


def check_input(layer: Module, x: Tensor, layouts: list[tuple[Any, ...]]) -> None:
    """x must have one of the layouts, each a tuple of axis names (str) and required lengths
    (int), e.g. ("N", 3, "H", "W"); a leading "..." stands for any number of axes. ValueError
    naming the layer and both shapes otherwise."""
    for layout in layouts:
        tail = layout[1:] if layout[:1] == ("...",) else layout
        fits_rank = len(tail) <= x.ndim if tail is not layout else len(tail) == x.ndim
        got = x.shape[x.ndim - len(tail) :]
        if fits_rank and all(
            isinstance(want, str) or want == n for want, n in zip(tail, got, strict=True)
        ):
            return
    expected = " or ".join("(" + ", ".join(map(str, layout)) + ")" for layout in layouts)
    ranks = {len(layout) for layout in layouts if layout[:1] != ("...",)}
    hint = (
        "for one sample use x.reshape(1, *x.shape)"
        if x.ndim + 1 in ranks and x.ndim not in ranks
        else "the numbers are the sizes the layer was built for: build it for this input, or "
        "reshape the input"
    )
    raise ValueError(f"{layer!r}: expected input of shape {expected}, got {x.shape}; {hint}")


class Linear(Module):
    """out = x @ weight + bias, weight of shape (in_features, out_features), bias (out_features,).

    init names the weight initialiser ("uniform": the tutorial's U[-1, 1); "xavier"; "he"; see
    autonet.nn.init) or is a function (shape, rng) -> array. Biases start at 0. rng is a seed or a
    numpy Generator; layers sharing one Generator draw in turn, as the tutorial's successive calls
    to np.random.random do.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | Initialiser = "xavier",
        rng: RandomState = None,
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, got {in_features}, "
                f"{out_features}"
            )
        generator = make_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        weight = get_initialiser(init)((in_features, out_features), generator)
        self.weight = Tensor(np.asarray(weight, dtype=np.float64), requires_grad=True)
        self.bias = Tensor(np.zeros(out_features), requires_grad=True) if bias else None

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear: input shape {x.shape} does not end in in_features = {self.in_features}; "
                f"pass inputs of shape (batch, {self.in_features})"
            )
        out = x @ self.weight
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Sigmoid(Module):
    """sigmoid(x) = 1 / (1 + exp(-x)), element-wise."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).sigmoid()


class Tanh(Module):
    """tanh(x), element-wise."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).tanh()


class ReLU(Module):
    """max(x, 0), element-wise (gradient 0 at 0)."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).relu()


class Identity(Module):
    """x unchanged."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x)


class Sign(Module):
    """sign(x), with sign(0) = at_zero (0 as NumPy; -1 for the perceptron convention). Its
    gradient is 0 everywhere, so nothing before it learns by gradient descent."""

    def __init__(self, at_zero: float = 0.0) -> None:
        self.at_zero = at_zero

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).sign(at_zero=self.at_zero)

    def extra_repr(self) -> str:
        return f"at_zero={self.at_zero}"


class Dropout(Module):
    """Zeroes each element with probability p in training mode (scaling the rest by 1/(1-p));
    the identity in evaluation mode. See functional.dropout."""

    def __init__(self, p: float = 0.5, rng: RandomState = None) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = make_rng(rng)

    def forward(self, x: Any) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LeakyReLU(Module):
    """x where x > 0, negative_slope * x elsewhere (see functional.leaky_relu)."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x Phi(x), exact (erf) or with PyTorch's tanh approximation (see functional.gelu)."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in F.GELU_APPROXIMATIONS:
            raise ValueError(
                f"GELU: approximate must be one of {F.GELU_APPROXIMATIONS}, got {approximate!r}"
            )
        self.approximate = approximate

    def forward(self, x: Any) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """exp(x) / sum exp(x) along dim (see functional.softmax, whose argument is called axis)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, x: Any) -> Tensor:
        return F.softmax(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """x - log sum exp(x) along dim, without overflow (see functional.log_softmax)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def forward(self, x: Any) -> Tensor:
        return F.log_softmax(x, axis=self.dim)


class Flatten(Module):
    """Axes start_dim..end_dim (inclusive, negative ones from the end) merged into one, as
    torch.nn.Flatten: (N, C, H, W) -> (N, C * H * W) by default. A reshape, so the gradient is
    g reshaped back."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        start, end = (
            cast(int, normalize_axis(d, x, "Flatten")) for d in (self.start_dim, self.end_dim)
        )
        if start > end:
            raise ValueError(
                f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} for an "
                f"input of shape {x.shape}; give start_dim <= end_dim"
            )
        merged = math.prod(x.shape[start : end + 1])
        return x.reshape(x.shape[:start] + (merged,) + x.shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim), drawn from N(0, 1) as PyTorch's;
    Embedding(n, d)(indices) = weight[indices], of shape indices.shape + (d,). Indices are
    integers in [0, num_embeddings) (see functional.embedding)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, rng: RandomState = None) -> None:
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(
                f"Embedding: num_embeddings and embedding_dim must be positive, got "
                f"{num_embeddings}, {embedding_dim}"
            )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        weight = make_rng(rng).normal(size=(num_embeddings, embedding_dim))
        self.weight = Tensor(weight, requires_grad=True)

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


ACTIVATIONS: dict[str, Callable[[], Module]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "identity": Identity,
}


class MLP(Module):
    """A multilayer perceptron: Linear layers of the given sizes, each followed by the activation.

        MLP([3, 4, 1], bias=False, init="uniform", rng=1)   # the tutorial's network:
            O = sigmoid(sigmoid(S @ W0) @ W1)     # W0: layers.0.weight, W1: layers.2.weight

    sizes = [inputs, hidden..., outputs]. activation is "sigmoid", "tanh", "relu" or "identity".
    last_activation=False leaves the last layer linear (logits for cross_entropy or
    binary_cross_entropy_with_logits); by default it is squashed too, as in the tutorial.
    dropout > 0 adds Dropout(dropout) after every hidden activation. All layers draw their
    weights from one Generator (rng), in order.
    """

    def __init__(
        self,
        sizes: list[int],
        activation: str = "sigmoid",
        bias: bool = True,
        init: str | Initialiser = "xavier",
        last_activation: bool = True,
        dropout: float = 0.0,
        rng: RandomState = None,
    ) -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least [inputs, outputs], got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}"
            )
        generator = make_rng(rng)
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            last = i == len(sizes) - 2
            layers.append(Linear(n_in, n_out, bias=bias, init=init, rng=generator))
            if not last or last_activation:
                layers.append(ACTIVATIONS[activation]())
            if not last and dropout > 0:
                layers.append(Dropout(dropout, rng=generator))
        self.sizes = list(sizes)
        self.layers = Sequential(*layers)

    def forward(self, x: Any) -> Tensor:
        return self.layers(x)
