"""The same network trained on NumPy and on the other array libraries installed: PyTorch (on the
GPU when CUDA is there), CuPy, array_api_strict. (Not Dask: a training loop on its lazy arrays
builds an ever longer task graph, the weights' and the optimizer's state's; docs/backends.md.)

An MLP 64-32-10 (ReLU) on the 8x8 digits, softmax cross-entropy, Adam (lr 1e-2), mini-batches of
64 in a fixed order, from the same initial weights: the model is built once on NumPy, then
model.to(xp) makes a copy of it on each library's arrays (an.nn.Module.to), the batches are made
that library's arrays (xp.asarray), and the loop is the same lines for every library. The table
gives each library's time per epoch, its test accuracy, and how far its final weights are from
NumPy's (float64: the libraries agree to rounding, as tests/test_backends.py checks op by op).
Arrays this small favour NumPy: the other libraries' cost per operation is larger, and pays off
on large arrays and on a GPU.

Data: autonet.datasets.load_digits (shipped with autonet), pixels scaled to [0, 1], the last 360
images held out for the test.

Run: python examples/other_arrays.py [--quick] [--out FOLDER]   (--quick: 2 epochs instead of
10; FOLDER is unused, kept for the examples' common command line)
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from common import arguments

import autonet as an
from autonet import nn, optim
from autonet.datasets import load_digits
from autonet.nn import functional as F

SEED, N_TEST, EPOCHS, QUICK_EPOCHS, BATCH, LR = 0, 360, 10, 2, 64, 1e-2


def libraries() -> dict[str, tuple[Any, dict[str, Any]]]:
    """{name: (the library's module, keyword arguments of its asarray)} for NumPy and every other
    library installed here (torch on "cuda" when it is available)."""
    found: dict[str, tuple[Any, dict[str, Any]]] = {"numpy": (np, {})}
    for name, module_name in [
        ("torch", "torch"),
        ("cupy", "cupy"),
        ("array_api_strict", "array_api_strict"),
    ]:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(module_name)
        options: dict[str, Any] = {}
        if name == "torch" and module.cuda.is_available():
            name, options = "torch (cuda)", {"device": "cuda"}
        if name == "cupy" and module.cuda.runtime.getDeviceCount() == 0:
            continue
        found[name] = (module, options)
    return found


def train(
    model: nn.Module,
    to_library: Callable[[np.ndarray], Any],
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
) -> float:
    """Adam on (x, y) in batches of BATCH, in order; returns the seconds per epoch."""
    adam = optim.Adam(model.parameters(), lr=LR)
    start = time.perf_counter()
    for _ in range(epochs):
        for first in range(0, len(x), BATCH):
            batch = slice(first, first + BATCH)
            adam.zero_grad()
            loss = F.cross_entropy(model(an.tensor(to_library(x[batch]))), y[batch])
            loss.backward()
            adam.step()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    args = arguments(__doc__, "autonet-examples")
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    digits, labels = load_digits()
    digits = digits / 16.0
    x, y, x_test, y_test = digits[:-N_TEST], labels[:-N_TEST], digits[-N_TEST:], labels[-N_TEST:]
    generator = np.random.default_rng(SEED)
    initial = nn.Sequential(
        nn.Linear(64, 32, rng=generator), nn.ReLU(), nn.Linear(32, 10, rng=generator)
    )
    weights = {}
    print(f"MLP 64-32-10, Adam, {epochs} epochs of {len(x)} digits, batches of {BATCH}")
    print("| library | time per epoch | test accuracy | largest difference from NumPy's weights |")
    print("|---|---|---|---|")
    for name, (module, options) in libraries().items():
        model = copy.deepcopy(initial)
        model.to(module, **options)

        def to_library(a: np.ndarray, module: Any = module, options: dict = options) -> Any:
            return a if module is np else module.asarray(a, **options)

        seconds = train(model, to_library, x, y, epochs)
        with an.no_grad():
            logits = model(an.tensor(to_library(x_test))).numpy()
        accuracy = (logits.argmax(axis=1) == y_test).mean()
        weights[name] = [p.numpy() for p in model.parameters()]
        difference = max(
            float(np.abs(mine - theirs).max())
            for mine, theirs in zip(weights[name], weights["numpy"], strict=True)
        )
        print(f"| {name} | {seconds * 1e3:.1f} ms | {accuracy:.3f} | {difference:.1e} |")


if __name__ == "__main__":
    main()
