"""An interactive page of the computation graph: one self-contained HTML file.

    with an.retain_grads(L):
        L.backward()
    an.render(L, "graph.html")      # or an.draw(L).save(...), or: autonet graph --out graph.html

The page holds the drawing's SVG (laid out as a .svg is), a small plain-JavaScript script
(interactive.js, with interactive.css) and the data as inline JSON: it needs no network and no
server, and opens in any browser. In it:

    hover a node     its name, op, shape and dtype; its value and dL/d(tensor) in full, each with
                     min, max, mean, norm sqrt(sum x^2) and a 10-bin histogram of its finite
                     elements (click the node to pin the box, so that long arrays can be scrolled)
    click a module   a dashed box (draw's group=True: parameters named "<module>.<attr>") hides
                     its nodes and the edges between them behind a summary; a second click shows
                     them. The layout is not recomputed: the box keeps its place and size.
    steps            prev, next, play and a slider replay the backward pass in the engine's order
                     (backpropagate takes nodes latest-made first: the topological order reversed):
                     the node whose rule runs, dL/d(node), and the gradient sent along each input
    search           a node by name or op (case-insensitive substring); Enter goes to the next

Arrays of up to ARRAY_LIMIT elements are embedded in full (exactly, as JSON), and shown to 6
significant digits; a larger one only by its statistics and histogram (the page and the box say
so). The whole graph is embedded, nodes folded away by draw's max_nodes included.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

import numpy as np

from autonet.engine import cast_gradient, topological_order, unbroadcast
from autonet.tensor import Tensor
from autonet.viz.drawing import graph_nodes
from autonet.viz.labels import tensor_kind
from autonet.viz.rendering import layout

ARRAY_LIMIT = 10_000  # elements of one array embedded in full; larger arrays are summarised
HISTOGRAM_BINS = 10


def page(source: str, root: Tensor, names: dict[int, str]) -> str:
    """The HTML page of the drawing of root with DOT source `source` (an.draw's) and the names
    it shows (id -> name): the SVG laid out by `find_renderer()`, the script, and the values,
    gradients and backward steps of root's graph."""
    svg = inline_svg(layout(source, "svg", "render").decode("utf-8"))
    data = page_data(root, names)
    title = f"autonet graph of {names.get(id(root)) or 'the output'}"
    assets = resources.files("autonet.viz")
    return PAGE.format(
        title=html.escape(title),
        css=assets.joinpath("interactive.css").read_text("utf-8"),
        script=assets.joinpath("interactive.js").read_text("utf-8"),
        svg=svg,
        data=json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c"),
        steps=len(data["steps"]),
        limit=f"{ARRAY_LIMIT:,}",
    )


def inline_svg(svg: str) -> str:
    """Graphviz's SVG file as an element for an HTML page: from <svg> on (no XML declaration,
    DOCTYPE or comment before it), without the xmlns attributes (HTML puts <svg> in the SVG
    namespace itself), so that the page names no URL at all."""
    start = svg.index("<svg")
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg[start:]).strip()


def page_data(root: Tensor, names: dict[int, str]) -> dict[str, Any]:
    """The page's JSON: every tensor of the graph by its node id in the drawing (t0, t1, ...: its
    position in graph_nodes, as draw numbers them) and the backward steps."""
    nodes = graph_nodes(root)
    ids = {id(t): f"t{i}" for i, t in enumerate(nodes)}
    return {
        "limit": ARRAY_LIMIT,
        "nodes": {ids[id(t)]: tensor_data(t, names.get(id(t)), root) for t in nodes},
        "steps": backward_steps(root, ids),
    }


def tensor_data(t: Tensor, name: str | None, root: Tensor) -> dict[str, Any]:
    """A tensor as the page shows it: name, op and its arguments, shape, dtype, kind (labels.py's
    colours: parameter, constant, intermediate, output, nonfinite), value and gradient."""
    return {
        "name": name,
        "op": None if t.op is None else t.op.name,
        "params": {key: short_repr(value) for key, value in t.params.items()},
        "shape": list(t.shape),
        "dtype": str(t.dtype),
        "kind": tensor_kind(t, root),
        "value": array_data(t.numpy()),
        "grad": None if t.grad is None else array_data(t.grad.numpy()),
    }


def short_repr(value: Any, limit: int = 200) -> str:
    """repr(value), cut to `limit` characters (an index array can be long)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def backward_steps(root: Tensor, ids: dict[int, str]) -> list[dict[str, Any]]:
    """The nodes in the order backpropagate takes them, the latest made first (the topological
    order reversed), each with the gradients its rule sends: those a node receives no gradient
    from (an input whose rule is None, such as an index) are skipped, as by the engine. No steps
    if root does not require grad (backward refuses it)."""
    steps: list[dict[str, Any]] = []
    reached = {id(root)} if root.requires_grad else set()
    for t in reversed(topological_order(root)):
        if id(t) not in reached:
            continue
        sends = []
        for position, parent, grad in sent_gradients(t):
            reached.add(id(parent))
            sends.append(
                {
                    "to": ids[id(parent)],
                    "position": position,
                    "grad": None if grad is None else array_data(grad),
                }
            )
        steps.append({"node": ids[id(t)], "sends": sends})
    return steps


def sent_gradients(t: Tensor) -> list[tuple[int, Tensor, np.ndarray | None]]:
    """(input position, input, the gradient t's rule sends it) for each input that gets one:

        dL/d(input i) += t.op.vjps[i](dL/dt, t, *t.parents)      summed to the input's shape

    computed from t.grad as backpropagate computes it (the gradients None if t has no .grad:
    backward has not run, or t is an intermediate not kept by an.retain_grads)."""
    op = t.op
    if op is None:
        return []
    g = None if t.grad is None else t.grad.numpy()
    args = (g, t.numpy(), *(parent.numpy() for parent in t.parents))
    sent: list[tuple[int, Tensor, np.ndarray | None]] = []
    for i, parent in enumerate(t.parents):
        rule = op.vjps[0] if op.variadic else op.vjps[i]  # a variadic op's one rule takes i
        if not parent.requires_grad or rule is None:
            continue
        if g is None:
            sent.append((i, parent, None))
            continue
        grad = np.asarray(rule(*((i, *args) if op.variadic else args), **t.params))
        if grad.shape != parent.shape:
            grad = unbroadcast(grad, parent.shape, op.name)
        if grad.dtype != parent.dtype:
            grad = cast_gradient(grad, parent, op.name)
        sent.append((i, parent, grad))
    return sent


def array_data(array: np.ndarray) -> dict[str, Any]:
    """An array as the page shows it: size; min, max, mean, norm and a HISTOGRAM_BINS-bin
    histogram of its finite elements (absent if none is finite); the count of NaN and infinite
    ones; and, if it has at most ARRAY_LIMIT elements, the elements as nested lists, NaN and the
    infinities as the strings "NaN", "Infinity" and "-Infinity" (which JSON lacks and
    JavaScript's Number() reads)."""
    numbers = np.asarray(array, dtype=np.float64)  # bool and integer arrays too
    finite = numbers[np.isfinite(numbers)]
    data: dict[str, Any] = {"size": int(numbers.size), "nonfinite": int(numbers.size - finite.size)}
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        with np.errstate(over="ignore"):  # values near the largest float: inf, as NumPy says
            mean, norm = finite.mean(), np.linalg.norm(finite)
        data.update(
            min=low,
            max=high,
            mean=json_number(float(mean)),
            norm=json_number(float(norm)),
            histogram=histogram(finite, low, high),
        )
    if numbers.size <= ARRAY_LIMIT:
        data["values"] = json_elements(np.asarray(array))
    return data


def histogram(finite: np.ndarray, low: float, high: float) -> list[int]:
    """Counts of finite in HISTOGRAM_BINS equal bins from low to high (all in the first if
    low == high). The edges are interpolated, not stepped, so that a range wider than the
    largest float (-1e308 to 1e308) does not overflow."""
    if low == high:
        return [int(finite.size)] + [0] * (HISTOGRAM_BINS - 1)
    fractions = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    edges = np.maximum.accumulate(low * (1 - fractions) + high * fractions)
    edges[0], edges[-1] = low, high
    return [int(n) for n in np.histogram(finite, bins=edges)[0]]


def json_number(x: float) -> float | str:
    """x for JSON: a float, or "NaN", "Infinity", "-Infinity" (JavaScript's names)."""
    x = float(x)
    if np.isfinite(x):
        return x
    return "NaN" if np.isnan(x) else "Infinity" if x > 0 else "-Infinity"


def json_elements(array: np.ndarray) -> Any:
    """array.tolist(), with each non-finite float replaced by its name in json_number."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return array.tolist()
    named = array.astype(object)
    for mask, word in [
        (np.isnan(array), "NaN"),
        (np.isposinf(array), "Infinity"),
        (np.isneginf(array), "-Infinity"),
    ]:
        named[mask] = word
    return named.tolist()


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header id="controls">
  <strong>{title}</strong>
  <input id="search" type="search" placeholder="find a node by name" aria-label="find a node">
  <span id="search-result"></span>
  <span id="steps">
    backward pass
    <button id="step-prev" type="button" title="previous step">&#9664; prev</button>
    <button id="step-play" type="button" title="play the steps">&#9654; play</button>
    <button id="step-next" type="button" title="next step">next &#9654;</button>
    <input id="step-slider" type="range" min="0" max="{steps}" value="0"
      aria-label="steps of the backward pass done">
    <span id="step-label">step 0 of {steps}</span>
  </span>
</header>
<div id="layout">
<main id="graph">
{svg}
</main>
<aside id="side">
<p id="notes">Hover a node for its value and gradient (click it to pin them); click a dashed
module box to collapse or expand it; step through the backward pass in the engine's order.
Arrays of up to {limit} elements are embedded in full, larger ones as statistics and a histogram
only.</p>
<div id="step-panel"></div>
</aside>
</div>
<div id="tooltip" hidden></div>
<script type="application/json" id="autonet-data">{data}</script>
<script>
{script}
</script>
</body>
</html>
"""
