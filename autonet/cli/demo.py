"""`autonet demo`: train the tutorial's network with autonet.nn, checked against its hand formulas.

The tutorial's loop (full-batch gradient descent on XNOR, 3-4-1 sigmoid network without biases,
L = 1/2 sum (O - Y)^2), built as MLP([3, 4, 1], bias=False) and trained with backward() and
optim.SGD; at every step the autograd gradients are compared with `seed_gradients`, the formulas
the tutorial derives by hand. Writes into the output folder: the computation graph of one more
step of the trained network (graph.svg: values, gradients, a cluster per layer), the loss curve
(loss_curve.png, when matplotlib is installed), the trained weights (model.npz, for an.load) and
report.md: the numbers, with the two pictures embedded as data: URIs, so that the report is whole
on its own (Markdown viewers such as VS Code's and Jupyter's show them; GitHub's does not).
"""

from __future__ import annotations

import argparse
import base64
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import autonet as an
from autonet.cli import positive_float, positive_int
from autonet.nn import functional as F
from autonet.plotting import save_loss_curve
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients
from autonet.viz.rendering import write_atomically


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps", type=positive_int, default=5000, help="gradient steps (default 5000)"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=1.0, help="step size alpha (default 1.0)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the weights")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("autonet-demo"),
        help="folder for the loss curve, weights and report (default autonet-demo/)",
    )


@dataclass
class SeedRun:
    """The trained network, its loss before each step, its final outputs and loss, and the largest
    |autograd - hand formula| over every gradient entry of every step."""

    model: an.nn.MLP
    losses: list[float]
    outputs: np.ndarray
    final_loss: float
    worst: float


def train_seed_network(steps: int, lr: float, seed: int, progress: bool = False) -> SeedRun:
    """The tutorial's training loop, written with autonet.nn and checked at every step."""
    S, Y = XNOR_INPUTS, XNOR_TARGETS
    model = an.nn.MLP([3, 4, 1], bias=False, init="uniform", rng=seed)
    syn0, syn1 = model.layers[0].weight, model.layers[2].weight
    optimizer = an.optim.SGD(model.parameters(), lr=lr)
    losses, worst = [], 0.0
    for _ in tqdm(range(steps), disable=not progress, unit="step", leave=False, file=sys.stderr):
        loss = F.half_sse(model(S), Y)
        optimizer.zero_grad()
        loss.backward()
        grad0, grad1 = seed_gradients(S, Y, syn0.data, syn1.data)
        worst = max(
            worst, np.abs(syn0.grad.data - grad0).max(), np.abs(syn1.grad.data - grad1).max()
        )
        optimizer.step()
        losses.append(float(loss.data))
    with an.no_grad():
        outputs = model(S).data
    final_loss = float(F.half_sse(outputs, Y).data)
    return SeedRun(model, losses, outputs, final_loss, float(worst))


def trained_graph(model: an.nn.Module) -> an.Tensor:
    """The loss of the trained model on XNOR after one forward and backward pass, with every
    intermediate gradient kept for drawing."""
    S, Y = an.tensor(XNOR_INPUTS, name="S"), an.tensor(XNOR_TARGETS, name="Y")
    loss = F.half_sse(model(S), Y)
    loss.name = "L"
    with an.retain_grads(loss):
        loss.backward()
    return loss


def run(args: argparse.Namespace) -> int:
    out = args.out
    try:  # before training, so that a bad --out is said at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"cannot create the folder {out} ({error.strerror}); pass --out a folder you can "
            "write in"
        ) from error
    result = train_seed_network(args.steps, args.lr, args.seed, progress=sys.stderr.isatty())
    rows = [
        f"  {x.astype(int)}  {y[0]:.0f}       {o[0]:.4f}"
        for x, y, o in zip(XNOR_INPUTS, XNOR_TARGETS, result.outputs, strict=True)
    ]
    print(f"autonet demo: the tutorial's 3-4-1 sigmoid network on XNOR, {args.steps} steps")
    print("  input      target  output")
    print("\n".join(rows))
    print(f"final loss 1/2 sum (O - Y)^2 = {result.final_loss:.6f}")
    print(f"max |autograd - hand-derived formula| over all steps = {result.worst:.2e}")

    written = []
    an.render(
        trained_graph(result.model),
        out / "graph.svg",
        title="The trained network, one more forward and backward pass on XNOR",
        legend=True,
    )
    written.append(("graph.svg", "the computation graph: values, gradients, one box per layer"))
    title = "the tutorial's network on XNOR: L = 1/2 sum (O - Y)^2"
    if save_loss_curve(result.losses, out / "loss_curve.png", title):
        written.append(("loss_curve.png", "the loss before each step (log scale)"))
    an.save(result.model.state_dict(), out / "model.npz")
    written.append(("model.npz", "the trained weights: `model.load_state_dict(an.load(path))`"))
    report = make_report(args, result, rows, out, written)
    write_atomically(out / "report.md", report.encode("utf-8"))
    written.append(("report.md", "this report, its pictures embedded"))
    for name, _ in written:
        print(f"wrote {out / name}")
    return 0


def data_uri(path: Path, media_type: str) -> str:
    """The file's bytes as a data: URI, for a document that shows it without the file beside it."""
    return f"data:{media_type};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def make_report(
    args: argparse.Namespace,
    result: SeedRun,
    rows: list[str],
    out: Path,
    written: list[tuple[str, str]],
) -> str:
    """report.md: the run's numbers and its pictures (the graph, and the loss curve if this run
    drew one: `written` lists the files written into `out`), embedded as data: URIs, so that the
    report shows them when moved or sent on its own; the files are named, not linked."""
    files = "\n".join(f"- `{name}`: {what}" for name, what in written)
    if any(name == "loss_curve.png" for name, _ in written):
        curve = data_uri(out / "loss_curve.png", "image/png")
        loss_curve = f"![the loss before each step, log scale]({curve})"
    else:
        loss_curve = (
            "No loss curve: matplotlib is not installed (`pip install 'autonet[examples]'`)."
        )
    graph = data_uri(out / "graph.svg", "image/svg+xml")
    return f"""# autonet demo

The tutorial's network (3 inputs, 4 hidden units, 1 output, sigmoid, no biases) trained on XNOR
by full-batch gradient descent on L = 1/2 sum (O - Y)^2: `MLP([3, 4, 1], bias=False,
init="uniform")`, {args.steps} steps of `optim.SGD(lr={args.lr})`, weights seeded with {args.seed}.

```
  input      target  output
{chr(10).join(rows)}
```

- final loss: {result.final_loss:.6f} (first step: {result.losses[0]:.6f})
- largest difference between the autograd gradients and the tutorial's hand-derived formulas
  (`autonet.seed.seed_gradients`), over every entry of every step: {result.worst:.2e}

## The loss

{loss_curve}

## The trained network: one more forward and backward pass

Each tensor shows its value and, beside it, its gradient dL/d(tensor).

![the computation graph: values, gradients, one box per layer]({graph})

## Files written beside this report

{files}
"""
