"""Time the transforms: per-example gradients by vmap(grad), forward mode (jvp) against a forward
pass, and forward- against reverse-mode Jacobians.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/transforms.py --repeats 7

1. Per-example gradients of a 784-128-10 MLP (ReLU, cross-entropy) on a batch of 64:
   `an.vmap(an.grad(loss), in_axes=(None, None, None, None, 0, 0))`, against a Python loop of
   `an.grad` calls over the examples and against `torch.func.vmap(torch.func.grad(loss))`
   (when PyTorch is installed), in float64 and float32. Results are checked equal first.
2. `an.jvp` of the same network's logits against the forward pass alone.
3. `an.jacfwd` against `an.jacobian` for tanh(A x): 2 inputs and 1,000 outputs, then 1,000
   inputs and 2 outputs.
Engines are timed in turn, their order rotated each repeat (run.py's time_interleaved); the
median per call is reported with the spread (min-max) of the repeats.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's autonet, installed or not

from run import format_time, time_interleaved  # noqa: E402  (benchmarks/ is the script's folder)

import autonet as an  # noqa: E402
from autonet.nn import functional as F  # noqa: E402

CLASSES = 10


def mlp_loss(w1: Any, b1: Any, w2: Any, b2: Any, x: Any, label: Any) -> an.Tensor:
    """Cross-entropy of one example: -log softmax(relu(x w1 + b1) w2 + b2)[label]."""
    logits = an.relu(x @ w1 + b1) @ w2 + b2
    return -F.log_softmax(logits)[label]


def mlp_problem(dtype: Any, batch: int = 64, seed: int = 0) -> tuple[list[np.ndarray], ...]:
    rng = np.random.default_rng(seed)
    params = [
        (rng.normal(size=(784, 128)) * 0.05).astype(dtype),
        np.zeros(128, dtype),
        (rng.normal(size=(128, CLASSES)) * 0.05).astype(dtype),
        np.zeros(CLASSES, dtype),
    ]
    return params, [rng.normal(size=(batch, 784)).astype(dtype), rng.integers(0, CLASSES, batch)]


def per_example_steps(dtype: Any) -> dict[str, Callable[[], Any]]:
    params, (X, labels) = mlp_problem(dtype)
    gradient = an.grad(mlp_loss, argnums=(0, 1, 2, 3))
    mapped = an.vmap(gradient, in_axes=(None, None, None, None, 0, 0))
    steps: dict[str, Callable[[], Any]] = {
        "autonet vmap(grad)": lambda: mapped(*params, X, labels),
        "autonet loop of grad": lambda: [gradient(*params, X[i], labels[i]) for i in range(len(X))],
    }
    ours = mapped(*params, X, labels)
    looped = steps["autonet loop of grad"]()
    for i, parts in enumerate(looped):
        for got, expected in zip(ours, parts, strict=True):
            np.testing.assert_allclose(got.data[i], expected.data, rtol=1e-4, atol=1e-6)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)

        def torch_loss(p: list, x: Any, label: Any) -> Any:
            logits = torch.relu(x @ p[0] + p[1]) @ p[2] + p[3]
            # torch.func.vmap cannot index by a mapped label: a one-hot mask instead
            return -(torch.log_softmax(logits, -1) * (label == torch.arange(CLASSES))).sum()

        theirs = torch.func.vmap(torch.func.grad(torch_loss), in_dims=(None, 0, 0))
        tp = [torch.tensor(p) for p in params]
        tX, tl = torch.tensor(X), torch.tensor(labels)
        for got, expected in zip(ours, theirs(tp, tX, tl), strict=True):
            np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-4, atol=1e-6)
        steps["torch.func vmap(grad)"] = lambda: theirs(tp, tX, tl)
    return steps


def jvp_steps() -> dict[str, Callable[[], Any]]:
    params, (X, _) = mlp_problem(np.float64)
    w1, b1, w2, b2 = params

    def logits(x: Any) -> an.Tensor:
        return an.relu(x @ w1 + b1) @ w2 + b2

    tangent = np.random.default_rng(1).normal(size=X.shape)
    x = an.tensor(X)
    return {
        "forward pass": lambda: logits(x),
        "jvp (forward + tangent)": lambda: an.jvp(logits, (X,), (tangent,)),
    }


def jacobian_steps(inputs: int, outputs: int) -> dict[str, Callable[[], Any]]:
    A = np.random.default_rng(2).normal(size=(outputs, inputs)) / np.sqrt(inputs)
    x = np.random.default_rng(3).normal(size=inputs)

    def f(x: Any) -> an.Tensor:
        return an.tanh(A @ x)

    np.testing.assert_allclose(an.jacfwd(f)(x).data, an.jacobian(f)(x).data, rtol=1e-10)
    return {"jacfwd": lambda: an.jacfwd(f)(x), "jacobian (reverse)": lambda: an.jacobian(f)(x)}


def report(title: str, samples: dict[str, list[float]], baseline: str) -> None:
    print(f"\n{title}")
    base = float(np.median(samples[baseline]))
    for name, times in samples.items():
        median = float(np.median(times))
        spread = f"{format_time(min(times))}-{format_time(max(times))}"
        print(f"  {name:28s} {format_time(median):>10s}  ({spread})  {median / base:7.3g}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per sample")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} repeats (min-max)")
    for dtype in (np.float64, np.float32):
        steps = per_example_steps(dtype)
        samples = time_interleaved(steps, args.repeats, args.min_time)
        report(
            f"per-example gradients, 784-128-10 MLP, batch 64, {np.dtype(dtype).name} "
            "(ratios to autonet vmap)",
            samples,
            "autonet vmap(grad)",
        )
    report(
        "jvp of the MLP's logits (ratio to the forward pass)",
        time_interleaved(jvp_steps(), args.repeats, args.min_time),
        "forward pass",
    )
    for inputs, outputs in ((2, 1000), (1000, 2)):
        report(
            f"Jacobian of tanh(A x), {inputs} inputs -> {outputs} outputs (ratio to jacfwd)",
            time_interleaved(jacobian_steps(inputs, outputs), args.repeats, args.min_time),
            "jacfwd",
        )


if __name__ == "__main__":
    main()
