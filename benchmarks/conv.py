"""Time one convolutional layer, forward and backward: autonet against hand-written NumPy (im2col)
and PyTorch CPU.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/conv.py --repeats 15

The layer: x (32, 8, 28, 28), w (16, 8, 3, 3), b (16,), padding 1, relu, 2x2 max pooling, loss the
sum of the pooled maps; the step computes the loss and its gradients with respect to x, w and b.
Every engine's gradients are checked against the hand-written ones before timing; engines are timed
in turn, their order rotated each repeat (run.py's time_interleaved), and the median per step is
reported with the spread (min-max) of the repeats and the ratio to hand-written NumPy.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's autonet, installed or not

from run import format_time, time_interleaved  # noqa: E402  (benchmarks/ is the script's folder)

import autonet as an  # noqa: E402
from autonet.nn import functional as F  # noqa: E402

Step = Callable[[], tuple[np.ndarray, ...]]


def hand_step(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Step:
    """The layer and its backward pass written out in NumPy: im2col (one copy of the 3x3 windows,
    as (C, kH, kW) rows of N * H * W pixels: the fast order, see conv2d_forward), one matrix
    product each way, col2im by adding back one kernel offset at a time; the 2x2 pooling as
    element-wise maxima of its four strided slices."""
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape

    def step() -> tuple[np.ndarray, ...]:
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
        cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * h * width)
        z = (w.reshape(o, -1) @ cols).reshape(o, n, h, width).transpose(1, 0, 2, 3)
        z = z + b.reshape(-1, 1, 1)
        a = np.maximum(z, 0)
        corners = [a[:, :, p::2, q::2] for p in (0, 1) for q in (0, 1)]
        pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(*corners[2:]))
        loss = pooled.sum()
        # backward: the pooled gradient (ones) to each block's first maximum, then relu
        g_a, taken = np.zeros(a.shape, x.dtype), np.zeros(pooled.shape, dtype=bool)
        for k, corner in enumerate(corners):
            hit = (corner == pooled) & ~taken
            taken |= hit
            g_a[:, :, k // 2 :: 2, k % 2 :: 2] = hit
        g_z = g_a * (z > 0)
        g_rows = g_z.transpose(1, 0, 2, 3).reshape(o, -1)  # (O, N * H * W)
        g_w = (g_rows @ cols.T).reshape(w.shape)
        g_b = g_rows.sum(axis=1)
        g_cols = (w.reshape(o, -1).T @ g_rows).reshape(c, kh, kw, n, h, width)
        g_xp = np.zeros(xp.shape, x.dtype)
        for p in range(kh):
            for q in range(kw):
                g_xp[:, :, p : p + h, q : q + width] += g_cols[:, p, q].transpose(1, 0, 2, 3)
        return loss, g_xp[:, :, 1:-1, 1:-1], g_w, g_b

    return step


def autonet_step(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Step:
    xt, wt, bt = (an.tensor(a, requires_grad=True) for a in (x, w, b))

    def step() -> tuple[np.ndarray, ...]:
        for t in (xt, wt, bt):
            t.grad = None
        loss = F.max_pool2d(F.conv2d(xt, wt, bt, padding=1).relu(), 2).sum()
        loss.backward()
        return loss.data, xt.grad.data, wt.grad.data, bt.grad.data

    return step


def torch_step(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Step:
    import torch

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

    def step() -> tuple[np.ndarray, ...]:
        for t in (xt, wt, bt):
            t.grad = None
        conv = torch.nn.functional.conv2d(xt, wt, bt, padding=1)
        loss = torch.nn.functional.max_pool2d(torch.relu(conv), 2).sum()
        loss.backward()
        return tuple(t.detach().numpy() for t in (loss, xt.grad, wt.grad, bt.grad))

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per sample")
    parser.add_argument("--dtype", default="float64")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 28, 28)).astype(args.dtype)
    w = (rng.normal(size=(16, 8, 3, 3)) / 8).astype(args.dtype)
    b = rng.normal(size=16).astype(args.dtype)
    steps = {"hand": hand_step(x, w, b), "autonet": autonet_step(x, w, b)}
    if importlib.util.find_spec("torch") is not None:
        steps["torch"] = torch_step(x, w, b)

    expected = steps["hand"]()
    tolerance = 1e-3 if args.dtype == "float32" else 1e-9
    for name, step in steps.items():
        for got, want in zip(step(), expected, strict=True):
            worst = np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want)))
            assert worst <= tolerance, f"{name}: differs from hand-written NumPy by {worst:.1e}"

    samples = time_interleaved(steps, args.repeats, args.min_time)
    hand = np.median(samples["hand"])
    threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(f"conv layer step, {args.dtype}, {args.repeats} repeats, {threads}")
    print("| engine | median | min - max | ratio to hand |")
    print("|---|---|---|---|")
    for name, s in samples.items():
        spread = f"{format_time(min(s))} - {format_time(max(s))}"
        median = np.median(s)
        print(f"| {name} | {format_time(median)} | {spread} | {median / hand:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
