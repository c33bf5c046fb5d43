"""Drawing the computation graph: draw() builds a graphviz.Digraph, render() writes a picture.

    with an.retain_grads(L):        # keep every intermediate gradient (and the graph) for drawing
        L.backward()
    an.draw(L)                      # a graphviz.Digraph; shows inline in Jupyter
    an.render(L, "graph.svg")       # .svg, .png, .pdf or .dot, chosen by the suffix

    drawing.py     draw(), retain_grads: the graph walked, its nodes named, grouped and joined
    labels.py      what each node says and its colours (HTML-like Graphviz labels)
    rendering.py   DOT source to a file: find_renderer() (system dot, else graphviz-pure), save()

drawing.py knows tensors and nothing of files; rendering.py knows files and nothing of tensors;
render() below joins them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from autonet.tensor import Tensor
from autonet.viz.drawing import draw, graph_nodes, retain_grads
from autonet.viz.labels import GRAD_PALETTE, HIGHLIGHT, interpolate
from autonet.viz.rendering import Drawing, find_renderer, save

__all__ = [
    "GRAD_PALETTE",
    "HIGHLIGHT",
    "Drawing",
    "draw",
    "find_renderer",
    "graph_nodes",
    "interpolate",
    "render",
    "retain_grads",
]


def render(root: Tensor, path: str | os.PathLike[str], **draw_options: Any) -> Path:
    """Draw root's graph (draw's options) and write it to path, the format chosen by the suffix.

        an.render(L, "graph.png", rankdir="LR")

    .svg and .png use the system Graphviz `dot` if it is on PATH, else graphviz-pure; .pdf needs
    the system `dot`; .dot (or .gv) writes the DOT source and needs neither. The file is written
    whole or not at all (a temporary file, then os.replace). Returns the path written.
    """
    return save(draw(root, **draw_options).source, path)
