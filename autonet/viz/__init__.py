"""Drawing the computation graph: draw() builds a graphviz.Digraph, render() writes a picture.

    with an.retain_grads(L):        # keep every intermediate gradient (and the graph) for drawing
        L.backward()
    an.draw(L)                      # a graphviz.Digraph; shows inline in Jupyter
    L                               # in Jupyter, a tensor shows its repr and its graph drawn
    an.render(L, "graph.svg")       # .svg, .png, .pdf, .dot or .html, chosen by the suffix

    drawing.py     draw(), retain_grads: the graph walked, its nodes named, grouped and joined
    labels.py      what each node says and its colours (HTML-like Graphviz labels)
    modules.py     which tensors belong to which nn module, and which modules are collapsed
    rendering.py   DOT source to a file: find_renderer() (system dot, else graphviz-pure), save()

drawing.py knows tensors and nothing of files; rendering.py knows files and nothing of tensors;
render() below joins them.
"""

from __future__ import annotations

import html
import os
import warnings
from pathlib import Path
from typing import Any

from autonet.tensor import Tensor
from autonet.viz.drawing import draw, graph_nodes, retain_grads
from autonet.viz.interactive import inline_svg
from autonet.viz.labels import GRAD_PALETTE, HIGHLIGHT, interpolate
from autonet.viz.rendering import Drawing, find_renderer, layout

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
    "tensor_html",
]


def render(root: Tensor, path: str | os.PathLike[str], **draw_options: Any) -> Path:
    """Draw root's graph (draw's options) and write it to path, the format chosen by the suffix.

        an.render(L, "graph.png", rankdir="LR")

    .svg and .png use the system Graphviz `dot` if it is on PATH, else graphviz-pure; .pdf needs
    the system `dot`; .dot (or .gv) writes the DOT source and needs neither; .html writes an
    interactive page (autonet/viz/interactive.py) around the .svg, every module drawn op by op
    (expand=True unless given: the page collapses a module on a click). The file is written
    whole or not at all (a temporary file, then os.replace). Returns the path written.
    """
    if Path(path).suffix.lower() == ".html":
        draw_options.setdefault("expand", True)  # the page collapses a module on a click
    return draw(root, **draw_options).save(path)


def tensor_html(t: Tensor) -> str:
    """A tensor as Jupyter shows it (Tensor._repr_html_): its repr, and below it, for a tensor
    computed by recorded ops, the drawing of its graph (an.draw(t): at most 100 nodes, laid out
    in some tens of milliseconds) as inline SVG. Without a renderer the drawing is replaced by
    a line saying how to install one. (PyTorch's tensors display as their repr only.)"""
    text = f"<pre>{html.escape(repr(t))}</pre>"
    if t.op is None:
        return text
    with warnings.catch_warnings():  # a freed graph is noted in the drawing's caption
        warnings.simplefilter("ignore", RuntimeWarning)
        source = draw(t).source
    try:
        svg = layout(source, "svg", "display").decode("utf-8")
    except RuntimeError as error:
        return text + f"<p>{html.escape(str(error))}</p>"
    return text + inline_svg(svg)
