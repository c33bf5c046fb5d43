"""The tutorial's network, built from autonet.nn and trained with autograd, checked at every step
against the gradients the tutorial derives by hand.

    S (4 x 3) XNOR inputs, the third column a constant 1;  Y = [[1], [0], [0], [1]]
    H = sigmoid(S . syn0),  O = sigmoid(H . syn1),  L = 1/2 sum (O - Y)^2
    syn0' = syn0 - alpha * dL/dsyn0,  syn1' = syn1 - alpha * dL/dsyn1     (full-batch descent)

MLP([3, 4, 1], bias=False, init="uniform") is exactly this network: its weights layers.0.weight
and layers.2.weight are syn0 and syn1. Each step compares backward()'s gradients with
autonet.seed.seed_gradients (the tutorial's formulas) and stops with an error if they ever differ
by more than 1e-10. Plots the loss curve (seed_network_loss.png).

Run: python examples/seed_network.py [--quick] [--out FOLDER]
"""

from __future__ import annotations

import sys

import numpy as np
from common import arguments

import autonet as an
from autonet.nn import functional as F
from autonet.plotting import save_loss_curve
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients

TOLERANCE = 1e-10  # the two computations differ only in rounding order: ~1e-16 per step


def main() -> int:
    args = arguments(__doc__, "autonet-examples")
    steps = 1000 if args.quick else 10_000
    model = an.nn.MLP([3, 4, 1], bias=False, init="uniform", rng=1)
    syn0, syn1 = model.layers[0].weight, model.layers[2].weight
    optimizer = an.optim.SGD(model.parameters(), lr=1.0)
    S, Y = XNOR_INPUTS, XNOR_TARGETS
    losses, worst = [], 0.0
    for _ in range(steps):
        loss = F.half_sse(model(S), Y)
        optimizer.zero_grad()
        loss.backward()
        grad0, grad1 = seed_gradients(S, Y, syn0.data, syn1.data)
        worst = max(
            worst, np.abs(syn0.grad.data - grad0).max(), np.abs(syn1.grad.data - grad1).max()
        )
        if worst > TOLERANCE:
            print(f"autograd and the hand formulas differ by {worst:.3g} at step {len(losses)}")
            return 1
        optimizer.step()
        losses.append(float(loss.data))
    with an.no_grad():
        O = model(S).data
    print(f"{steps} full-batch steps, alpha = 1")
    for x, y, o in zip(S, Y, O, strict=True):
        print(f"  input {x.astype(int)}  target {y[0]:.0f}  output {o[0]:.4f}")
    print(f"loss: {losses[0]:.4f} at step 1, {losses[-1]:.6f} at step {steps}")
    print(f"max |autograd - hand formulas| over all steps: {worst:.2e}")
    path = args.out / "seed_network_loss.png"
    if save_loss_curve(losses, path, "the tutorial's network on XNOR: L = 1/2 sum (O - Y)^2"):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
