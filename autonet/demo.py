"""`autonet demo`: train the tutorial's network with autograd, checked against its hand formulas.

The tutorial's loop (full-batch gradient descent on XNOR, 3-4-1 sigmoid network without biases,
L = 1/2 sum (O - Y)^2), with the gradients computed by backward() instead of by hand; at every step
the autograd gradients are compared with `seed_gradients`, the formulas the tutorial derives.
"""

from __future__ import annotations

import argparse

import numpy as np

import autonet as an
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients, seed_weights


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=10_000, help="gradient steps (default 10000)")
    parser.add_argument("--lr", type=float, default=1.0, help="step size alpha (default 1.0)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the weights")


def train_seed_network(steps: int, lr: float, seed: int) -> dict:
    """Train and return the final loss, outputs and the largest autograd-vs-hand difference."""
    S, Y = an.tensor(XNOR_INPUTS, name="S"), an.tensor(XNOR_TARGETS, name="Y")
    w0, w1 = seed_weights(seed=seed)
    syn0 = an.tensor(w0, requires_grad=True, name="syn0")
    syn1 = an.tensor(w1, requires_grad=True, name="syn1")
    worst = 0.0
    for _ in range(steps):
        O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
        loss = 0.5 * ((O - Y) ** 2).sum()
        syn0.grad = syn1.grad = None
        loss.backward()
        grad0, grad1 = seed_gradients(S.data, Y.data, syn0.data, syn1.data)
        worst = max(worst, np.abs(syn0.grad.data - grad0).max(), np.abs(syn1.grad.data - grad1).max())
        syn0.data = syn0.data - lr * syn0.grad.data
        syn1.data = syn1.data - lr * syn1.grad.data
    with an.no_grad():
        O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
    return {"loss": 0.5 * float(((O.data - Y.data) ** 2).sum()), "outputs": O.data, "worst": worst}


def run(args: argparse.Namespace) -> int:
    result = train_seed_network(args.steps, args.lr, args.seed)
    print(f"autonet demo: the tutorial's 3-4-1 sigmoid network on XNOR, {args.steps} steps")
    print("  input      target  output")
    for x, y, o in zip(XNOR_INPUTS, XNOR_TARGETS, result["outputs"]):
        print(f"  {x.astype(int)}  {y[0]:.0f}       {o[0]:.4f}")
    print(f"final loss 1/2 sum (O - Y)^2 = {result['loss']:.6f}")
    print(f"max |autograd - hand-derived formula| over all steps = {result['worst']:.2e}")
    return 0
