"""`autonet graph`: draw the tutorial's network after one forward and backward pass.

autonet graph                       # writes seed-graph.svg
autonet graph --out graph.png       # .svg, .png, .pdf (system Graphviz only), .dot or .html
"""

from __future__ import annotations

import argparse
from pathlib import Path

import autonet as an
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_weights
from autonet.viz import find_renderer
from autonet.viz.rendering import FORMATS


def drawing_path(text: str) -> Path:
    """An argparse type: a path whose suffix names a format a drawing can be written in."""
    if Path(text).suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"cannot tell the format of {text!r} from its suffix; use one of {', '.join(FORMATS)}"
        )
    return Path(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=drawing_path,
        default="seed-graph.svg",
        help="file to write, the format from its suffix: .svg (default seed-graph.svg), .png, "
        ".pdf (system Graphviz only), .dot or .html (an interactive page)",
    )
    parser.add_argument(
        "--rankdir",
        default="TB",
        choices=["TB", "LR", "BT", "RL"],
        help="direction of the data flow (default TB, top to bottom)",
    )
    parser.add_argument(
        "--color-by-grad",
        action="store_true",
        help="fill each tensor by its gradient's norm on a log scale",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the weights")


def seed_graph(seed: int = 1, backward: bool = True) -> an.Tensor:
    """The tutorial's loss L = 1/2 sum (O - Y)^2 after one forward pass and (if `backward`) one
    backward pass, with the graph and every gradient kept (an.retain_grads) so that a drawing
    shows both passes."""
    S, Y = an.tensor(XNOR_INPUTS, name="S"), an.tensor(XNOR_TARGETS, name="Y")
    w0, w1 = seed_weights(seed=seed)
    syn0 = an.tensor(w0, requires_grad=True, name="syn0")
    syn1 = an.tensor(w1, requires_grad=True, name="syn1")
    Hr = S @ syn0  # the tutorial's names: Hr and Or are the layers before squashing
    H = an.sigmoid(Hr)
    Or = H @ syn1
    O = an.sigmoid(Or)
    L = 0.5 * ((O - Y) ** 2).sum()
    for name, t in [("Hr", Hr), ("H", H), ("Or", Or), ("O", O), ("L", L)]:
        t.name = name
    if backward:
        with an.retain_grads(L):
            L.backward()
    return L


def run(args: argparse.Namespace) -> int:
    L = seed_graph(args.seed)
    title = (
        "The tutorial's network after one forward and backward pass on XNOR\n"
        "each tensor shows its value and dL/d(tensor)"
    )
    drawing = an.draw(
        L, rankdir=args.rankdir, color_by_grad=args.color_by_grad, title=title, legend=True
    )
    path = drawing.save(args.out)
    renderer = "" if path.suffix in (".dot", ".gv") else f" with {find_renderer()}"
    print(f"autonet graph: wrote {path}{renderer}")
    return 0
