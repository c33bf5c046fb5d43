"""Vanishing gradients: how the gradient reaching the first layer shrinks with depth, and the fixes
the tutorial's last section names (ReLU instead of sigmoid; residual connections).

For an L-layer network h_l = act(h_{l-1} . W_l), backpropagation multiplies the gradient by
W_l^T and by act'(.) once per layer. sigmoid' <= 1/4 (the tutorial's h (1 - h) <= 0.25), so with
sigmoid the gradient of the first layer's weights falls roughly geometrically with depth; tanh'
<= 1 and ReLU' in {0, 1} lose less, and a residual block h_l = h_{l-1} + act(h_{l-1} . W_l)
passes the gradient through its identity path unchanged (plus what the block adds, so there
the gradient tends to grow with depth rather than vanish).

For depths 2..20, this builds each network (width 32, Xavier init for sigmoid/tanh, He for ReLU,
one fixed batch of 64 random inputs), computes L = 1/2 sum (out - y)^2 and backward(), and
reports |dL/dW_1| (Frobenius norm of the first layer's weight gradient). Plots it against depth
(vanishing_gradients.png) and, at depth 20, the norm layer by layer (vanishing_by_layer.png).

Run: python examples/vanishing_gradients.py [--quick] [--out FOLDER]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from common import arguments

import autonet as an
from autonet import nn
from autonet.nn import functional as F
from autonet.plotting import pyplot

WIDTH, BATCH = 32, 64
INITS = {"sigmoid": "xavier", "tanh": "xavier", "relu": "he"}


class Residual(nn.Module):
    """h + act(h . W + b): the identity path carries the gradient past the layer unchanged."""

    def __init__(self, width: int, activation: str, rng: np.random.Generator) -> None:
        self.linear = nn.Linear(width, width, init=INITS[activation], rng=rng)
        self.activation = nn.ACTIVATIONS[activation]()

    def forward(self, h: Any) -> an.Tensor:
        return h + self.activation(self.linear(h))


def build(kind: str, depth: int, rng: np.random.Generator) -> tuple[nn.Module, list[an.Tensor]]:
    """The network and its weight matrices, first layer first."""
    if kind.startswith("residual"):
        activation = kind.split()[-1]
        blocks = [Residual(WIDTH, activation, rng) for _ in range(depth)]
        return nn.Sequential(*blocks), [block.linear.weight for block in blocks]
    model = nn.MLP([WIDTH] * (depth + 1), activation=kind, init=INITS[kind], rng=rng)
    return model, [p for name, p in model.named_parameters() if name.endswith("weight")]


def gradient_norms(kind: str, depth: int, seed: int = 0) -> list[float]:
    """|dL/dW_l| for each layer l = 1..depth."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(BATCH, WIDTH)), rng.normal(size=(BATCH, WIDTH))
    model, weights = build(kind, depth, rng)
    F.half_sse(model(x), y).backward()
    return [float(np.linalg.norm(w.grad.data)) for w in weights]


def main() -> None:
    args = arguments(__doc__, "autonet-examples")
    depths = [2, 5, 10] if args.quick else list(range(2, 21, 2))
    kinds = ["sigmoid", "tanh", "relu", "residual sigmoid", "residual tanh"]
    first = {kind: [gradient_norms(kind, d)[0] for d in depths] for kind in kinds}
    print("|dL/dW_1|, the first layer's weight gradient, by depth")
    print("depth " + "".join(f"{kind:>18}" for kind in kinds))
    for i, depth in enumerate(depths):
        print(f"{depth:5d} " + "".join(f"{first[kind][i]:18.3e}" for kind in kinds))
    for kind in kinds:
        print(
            f"{kind}: depth {depths[0]} -> {depths[-1]} changes |dL/dW_1| by a factor "
            f"{first[kind][-1] / first[kind][0]:.1e}"
        )

    plt = pyplot("the vanishing-gradient plots")
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=(6, 4))
    for kind in kinds:
        axes.semilogy(depths, first[kind], marker="o", label=kind)
    axes.set(xlabel="depth (layers)", ylabel="|dL/dW_1|", title="gradient reaching layer 1")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out / "vanishing_gradients.png", dpi=100)
    figure, axes = plt.subplots(figsize=(6, 4))
    deepest = depths[-1]
    for kind in kinds:
        axes.semilogy(range(1, deepest + 1), gradient_norms(kind, deepest), marker=".", label=kind)
    axes.set(xlabel="layer", ylabel="|dL/dW_l|", title=f"gradient by layer, depth {deepest}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out / "vanishing_by_layer.png", dpi=100)
    print(f"wrote {args.out / 'vanishing_gradients.png'} and {args.out / 'vanishing_by_layer.png'}")


if __name__ == "__main__":
    main()
