"""Drawing the computation graph: draw() builds a graphviz.Digraph, render() writes a picture.

    with an.retain_grads(L):        # keep every intermediate gradient (and the graph) for drawing
        L.backward()
    an.draw(L)                      # a graphviz.Digraph; shows inline in Jupyter
    an.render(L, "graph.svg")       # .svg, .png, .pdf or .dot, chosen by the suffix

The drawing has one node per recorded primitive (an ellipse labelled with its name in the table,
"matmul", "sigmoid", ...) and one node per tensor (a box: name, shape, dtype, values when small,
and dL/d(tensor) once backward() has run); edges follow the data flow, input -> op -> output, and
are labelled a, b (or 0, 1, ...) where the order of the operands matters (a - b, a @ b).

    parameter (leaf that requires grad)   blue box
    input or constant                     grey box (never recorded, so always a leaf)
    intermediate result                   white box
    output (the tensor drawn)             orange box, thick border
    NaN or inf in values or gradient      red box, counted in the label

The walk is the engine's `topological_order` (iterative), so a graph of any depth draws; one
larger than `max_nodes` is drawn from the output back as far as the limit allows, the rest folded
into one node that counts what it holds. The same graph always gives the same DOT text: node ids
are positions in the topological order.

Rendering runs the system Graphviz `dot` when it is on PATH, else `graphviz-pure` (a pip package,
installed with autonet: a self-contained port of dot that writes SVG and PNG, not PDF).
"""

from __future__ import annotations

import html
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from autonet.engine import topological_order
from autonet.tensor import Tensor

# Fill and border colours by kind of tensor: pale fills keep the black text readable, saturated
# borders tell the kinds apart.
STYLES = {
    "parameter": ("#dbeafe", "#1d4ed8"),
    "constant": ("#f3f4f6", "#9ca3af"),
    "intermediate": ("#ffffff", "#6b7280"),
    "output": ("#fef3c7", "#d97706"),
    "nonfinite": ("#fee2e2", "#dc2626"),
}
# ordering="in" keeps an op's inputs in operand order, a left of b, as in the formula.
OP_STYLE = {
    "shape": "ellipse",
    "style": "filled",
    "fillcolor": "#ede9fe",
    "color": "#7c3aed",
    "ordering": "in",
}
HIGHLIGHT = "#dc2626"

# Gradient-magnitude colours, smallest to largest: pale for vanishing gradients, hot for large;
# all light enough for the black and grey text on them.
GRAD_PALETTE = ["#f1f5f9", "#bfdbfe", "#fef08a", "#fdba74", "#fca5a5"]

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
# PNG: 144 dpi is sharp on high-density screens and in print (the renderers default to 72 or 96);
# a drawing larger than 60 x 60 inches (8640 pixels a side) is scaled down to fit, since bitmaps
# of large graphs take minutes and gigabytes (graphviz-pure aborts on them). Use SVG for those.
PNG_OPTIONS = ["-Gdpi=144", "-Gsize=60,60"]

NodeStatement = tuple[str, dict[str, str]]  # a node's id and attributes, to emit in order


class Drawing(graphviz.Digraph):
    """A graphviz.Digraph that renders with autonet's renderer (system `dot`, else graphviz-pure).

    Everything graphviz.Digraph does works (`.source`, `.node()`, `.attr()`, ...); `save(path)`
    writes it by the suffix as `render` does, and Jupyter shows it inline as SVG even where no
    system Graphviz is installed (graphviz.Digraph's own `.render()` and `.pipe()` need `dot`).
    """

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the drawing to path: .svg, .png, .pdf (system dot only) or .dot, atomically."""
        return save(self.source, path)

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, Any]:
        wanted = {"image/svg+xml"} if include is None else set(include)
        wanted -= set(exclude or ())
        if "image/svg+xml" not in wanted:
            return {}
        return {"image/svg+xml": layout(self.source, "svg", "draw").decode("utf-8")}


class retain_grads:
    """Keep the whole graph of `root` and every gradient in it through backward(), for drawing.

        with an.retain_grads(L):
            L.backward()
        an.draw(L)          # every tensor shows dL/d(tensor), intermediates included

    On entry each non-leaf tensor of the graph gets `retains_grad=True` (as if `retain_grad()`
    had been called on each) and the graph's links are remembered; on exit the flags are put
    back and the links restored, so the graph that backward() freed is whole again for drawing
    (as after `backward(retain_graph=True)`). Gradients accumulate as usual: a second backward
    inside the block adds to the intermediate gradients too. (PyTorch has no such helper; there
    one calls `retain_grad()` on each tensor.)
    """

    def __init__(self, root: Tensor) -> None:
        check_tensor(root, "retain_grads")
        self.root = root
        self.saved: list[tuple[Tensor, tuple[Tensor, ...], bool]] = []

    def __enter__(self) -> Tensor:
        self.saved = [(t, t.parents, t.retains_grad) for t in topological_order(self.root)]
        for t, _, _ in self.saved:
            if t.op is not None:
                t.retains_grad = True
        return self.root

    def __exit__(self, *exc_info: object) -> None:
        for t, parents, flag in self.saved:
            t.parents = parents
            t.retains_grad = flag
        self.saved = []


def draw(
    root: Tensor,
    *,
    names: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    rankdir: str = "TB",
    show_values: bool = True,
    show_grads: bool = True,
    color_by_grad: bool = False,
    highlight: Tensor | None = None,
    group: bool = True,
    title: str | None = None,
    legend: bool = False,
    max_nodes: int = 100,
    max_values: int = 16,
    precision: int = 3,
) -> Drawing:
    """The computation graph that produced `root`, as a graphviz.Digraph (a `Drawing`).

        H = an.sigmoid(S @ syn0)
        L = ((H - Y) ** 2).sum()
        an.draw(L, names=locals())      # nodes named S, syn0, H, Y, L

    names          a mapping name -> tensor (such as locals()) or (name, tensor) pairs naming
                   the nodes; a tensor's own `name=` wins over it
    rankdir        "TB" (top to bottom), "LR", "BT" or "RL", as in Graphviz
    show_values    print the values of tensors with at most `max_values` elements (else their
                   range), rounded to `precision` digits (NumPy's array2string)
    show_grads     print each gradient: its norm sqrt(sum g^2), and its values when small
    color_by_grad  fill each tensor by log10 of its gradient's norm (pale: vanishing, red:
                   largest), with the scale drawn above the graph
    highlight      a tensor of the graph (usually a parameter): the paths from it to root are
                   drawn in red
    group          put each op that consumes parameters named "<prefix>.<attr>" (as nn modules
                   name them, e.g. layers.0.weight) in a box labelled <prefix>, with them
    title          a caption above the graph (any notes and the colour scale go under it)
    legend         say above the graph what the colours and shapes mean
    max_nodes      most nodes drawn; a larger graph is drawn from root back as far as the limit
                   allows, the rest folded into one node that counts what it holds

    After a backward() that freed the graph, only what is left is drawn, marked, with a
    RuntimeWarning: run backward inside `with an.retain_grads(L):` to keep it.
    """
    check_tensor(root, "draw")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if max_nodes < 3:
        raise ValueError(
            f"draw: max_nodes={max_nodes} is too small; at least 3 (the output, its op and a node "
            "for the rest) are needed"
        )
    nodes = graph_nodes(root)
    ids = {id(t): f"t{i}" for i, t in enumerate(nodes)}
    labels = display_names(nodes, names)
    shown, hidden = nodes_within(nodes, root, max_nodes)
    on_path = path_to_root(nodes, highlight, ids) if highlight is not None else set()
    grad_scale = GradScale(nodes) if color_by_grad else None

    g = Drawing(
        name="autonet",
        graph_attr={
            "rankdir": rankdir,
            "fontname": "Helvetica",
            "nodesep": "0.3",
            "ranksep": "0.35",
            "pad": "0.2",  # a margin for viewers whose fallback font is wider than Helvetica
        },
    )
    g.attr("node", fontname="Helvetica", fontsize="11")
    g.attr("edge", fontname="Helvetica", fontsize="10", color="#4b5563", arrowsize="0.7")

    clusters = module_clusters(shown, labels) if group else {}
    members: dict[str, list[NodeStatement]] = {prefix: [] for prefix in clusters.values()}
    top: list[NodeStatement] = []
    freed = 0
    for t in shown:
        tid = ids[id(t)]
        kind = tensor_kind(t, root)
        fill, border = STYLES[kind]
        if grad_scale is not None and kind != "nonfinite" and t.grad is not None:
            fill = grad_scale.color(t.grad.data)
        if id(t) in on_path:
            border = HIGHLIGHT
        label = tensor_label(
            t,
            labels.get(id(t)),
            fill,
            border,
            t is root,
            show_values,
            show_grads,
            max_values,
            precision,
        )
        cluster = clusters.get(id(t))
        place = members[cluster] if cluster is not None else top
        place.append((tid, {"label": label, "shape": "plain"}))
        if t.op is None:
            continue
        op_attrs = dict(OP_STYLE, label=op_label(t))
        if not t.parents:
            freed += 1
            op_attrs.update(
                style="filled,dashed",
                color=HIGHLIGHT,
                label=op_label(t) + "\\n(inputs freed by backward)",
            )
        if id(t) in on_path:
            op_attrs.update(color=HIGHLIGHT, penwidth="2")
        place.append((f"op{tid[1:]}", op_attrs))

    for tid, attrs in top:
        g.node(tid, **attrs)
    # Clusters in the order of their first op, so layer 0 comes before layer 1 in the DOT text.
    first_op = [clusters[id(t)] for t in shown if t.op is not None and id(t) in clusters]
    for k, prefix in enumerate(dict.fromkeys(first_op + list(clusters.values()))):
        with g.subgraph(name=f"cluster_{k}") as c:
            c.attr(label=prefix, style="rounded,dashed", color="#6b7280", labeljust="l")
            for tid, attrs in members[prefix]:
                c.node(tid, **attrs)
    if hidden:
        g.node(
            "rest",
            label=summary_label(hidden, max_nodes),
            shape="box",
            style="rounded,dashed",
            color="#6b7280",
            fontcolor="#374151",
        )

    add_edges(g, shown, ids, on_path)

    notes = caption_notes(nodes, root, freed)
    if title or legend or grad_scale is not None or notes:
        g.attr(label=caption(title, legend, grad_scale, notes), labelloc="t", fontsize="11")
    if freed:
        warnings.warn(
            f"draw: the graph was freed by backward() ({freed} op(s) lost their inputs); to draw "
            "it whole, run backward inside `with an.retain_grads(loss):` or pass "
            "retain_graph=True",
            RuntimeWarning,
            stacklevel=2,
        )
    return g


def render(root: Tensor, path: str | os.PathLike[str], **draw_options: Any) -> Path:
    """Draw root's graph (draw's options) and write it to path, the format chosen by the suffix.

        an.render(L, "graph.png", rankdir="LR")

    .svg and .png use the system Graphviz `dot` if it is on PATH, else graphviz-pure; .pdf needs
    the system `dot`; .dot (or .gv) writes the DOT source and needs neither. The file is written
    whole or not at all (a temporary file, then os.replace). Returns the path written.
    """
    return save(draw(root, **draw_options).source, path)


def save(source: str, path: str | os.PathLike[str]) -> Path:
    """Write DOT source to path, laid out and rendered by the suffix (see `render`)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"render: cannot tell the format of {str(path)!r} from its suffix; use one of "
            + ", ".join(FORMATS)
        )
    data = source.encode("utf-8") if fmt == "dot" else layout(source, fmt, "render")
    write_atomically(path, data)
    return path


def find_renderer() -> str | None:
    """The program that lays out DOT: the system Graphviz `dot` if on PATH, else graphviz-pure.

    graphviz-pure is looked for first in the running Python's own environment (where installing
    autonet put it; found even when that environment is not activated), then on PATH.
    """
    places = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable), None]
    for program, directory in [("dot", None)] + [("graphviz-pure", d) for d in places]:
        found = shutil.which(program, path=directory)
        if found:
            return found
    return None


def layout(source: str, fmt: str, caller: str) -> bytes:
    """DOT source laid out and rendered to fmt ("svg", "png" or "pdf") by `find_renderer()`."""
    program = find_renderer()
    if program is None:
        raise RuntimeError(
            f"{caller}: no Graphviz renderer found to write {fmt.upper()}: install graphviz-pure "
            "(`pip install graphviz-pure`: SVG and PNG) or the system Graphviz (`apt install "
            "graphviz`, `brew install graphviz` or `conda install graphviz`: also PDF); or write "
            "the DOT source with a .dot path, or drawing.source"
        )
    if fmt == "pdf" and Path(program).name.startswith("graphviz-pure"):
        raise RuntimeError(
            f"{caller}: PDF needs the system Graphviz `dot` (`apt install graphviz`, `brew "
            "install graphviz` or `conda install graphviz`); graphviz-pure, the renderer found "
            f"({program}), writes SVG and PNG only: write a .svg or .png instead"
        )
    command = [program, f"-T{fmt}"] + (PNG_OPTIONS if fmt == "png" else [])
    result = subprocess.run(command, input=source.encode("utf-8"), capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(
            f"{caller}: {program} -T{fmt} failed (exit {result.returncode}): {message}"
        )
    return result.stdout


def write_atomically(path: Path, data: bytes) -> None:
    """Write data to path through a temporary file in the same directory and os.replace, so a
    reader never sees half a file and a failure leaves any old file as it was."""
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        # 0o666 less the umask: the permissions an ordinary open() would give.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# The graph: which tensors, which names, which are drawn.


def check_tensor(x: Any, caller: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{caller}: expected an autonet Tensor (the output whose graph to draw), got "
            f"{type(x).__name__}; wrap arrays with an.tensor(...)"
        )


def graph_nodes(root: Tensor) -> list[Tensor]:
    """Every tensor root depends on, each after its inputs.

    The engine's topological order holds the tensors that require grad; their other inputs
    (data, constants) are never recorded, so they are leaves, placed just before their first use.
    """
    nodes: list[Tensor] = []
    seen: set[int] = set()
    for t in topological_order(root):
        for parent in t.parents:
            if id(parent) not in seen and not parent.requires_grad:
                seen.add(id(parent))
                nodes.append(parent)
        seen.add(id(t))
        nodes.append(t)
    return nodes


def display_names(
    nodes: list[Tensor], names: Mapping[str, Any] | Iterable[tuple[str, Any]] | None
) -> dict[int, str]:
    """id -> the name to show: the tensor's own `name`, else the first name `names` gives it
    (names starting with "_" are skipped, as locals() holds such helpers)."""
    given: dict[int, str] = {}
    pairs = names.items() if isinstance(names, Mapping) else (names or ())
    for key, value in pairs:
        if isinstance(value, Tensor) and isinstance(key, str) and not key.startswith("_"):
            given.setdefault(id(value), key)
    result = {}
    for t in nodes:
        name = t.name or given.get(id(t))
        if name:
            result[id(t)] = name
    return result


def cost(t: Tensor) -> int:
    """Nodes a tensor takes in the drawing: its box, and the ellipse of the op that made it."""
    return 1 if t.op is None else 2


def nodes_within(
    nodes: list[Tensor], root: Tensor, max_nodes: int
) -> tuple[list[Tensor], list[Tensor]]:
    """(shown, hidden): all of nodes if they fit in max_nodes, else those nearest root (breadth
    first through the inputs) that fit in max_nodes - 1, one node being left for the rest."""
    if sum(cost(t) for t in nodes) <= max_nodes:
        return nodes, []
    budget = max_nodes - 1
    kept: set[int] = set()
    queue = deque([root])
    while queue:
        t = queue.popleft()
        if id(t) in kept:
            continue
        if cost(t) > budget:
            break
        budget -= cost(t)
        kept.add(id(t))
        queue.extend(t.parents)
    return [t for t in nodes if id(t) in kept], [t for t in nodes if id(t) not in kept]


def path_to_root(nodes: list[Tensor], start: Tensor, ids: dict[int, str]) -> set[int]:
    """ids of the tensors on a path from start to the root: start and every tensor computed
    from it (nodes are in topological order, so one pass forward finds them all)."""
    if id(start) not in ids:
        raise ValueError(
            f"draw: the tensor to highlight (shape {start.shape}, name {start.name!r}) is not in "
            "the graph of the tensor drawn; pass one the output was computed from"
        )
    on = {id(start)}
    for t in nodes:
        if any(id(parent) in on for parent in t.parents):
            on.add(id(t))
    return on


def module_clusters(nodes: list[Tensor], labels: dict[int, str]) -> dict[int, str]:
    """id -> module prefix, for parameters named "<prefix>.<attribute>" (layers.0.weight is in
    layers.0) and for the ops that consume them directly, with their outputs. An op consuming
    parameters of several modules goes with the first."""
    prefix_of: dict[int, str] = {}
    for t in nodes:
        name = labels.get(id(t), "")
        if t.op is None and t.requires_grad and "." in name:
            prefix_of[id(t)] = name.rsplit(".", 1)[0]
    clusters = dict(prefix_of)
    for t in nodes:
        for parent in t.parents:
            if id(parent) in prefix_of:
                clusters[id(t)] = prefix_of[id(parent)]
                break
    return clusters


def tensor_kind(t: Tensor, root: Tensor) -> str:
    if not np.isfinite(t.data).all() or (t.grad is not None and not np.isfinite(t.grad.data).all()):
        return "nonfinite"
    if t is root:
        return "output"
    if t.op is not None:
        return "intermediate"
    return "parameter" if t.requires_grad else "constant"


def operand_position(t: Tensor, i: int) -> str:
    """The label of t's i-th input edge: a, b (or 0, 1, ...) where order matters, else ""."""
    assert t.op is not None
    if len(t.parents) < 2 or t.op.commutative:
        return ""
    return "ab"[i] if len(t.parents) == 2 else str(i)


def add_edges(
    g: graphviz.Digraph, shown: list[Tensor], ids: dict[int, str], on_path: set[int]
) -> None:
    """input -> op -> output for every op drawn, labelled with operand positions where order
    matters; inputs not drawn come from the "rest" node, in one dashed edge per op."""
    shown_ids = {id(t) for t in shown}
    for t in shown:
        if t.op is None:
            continue
        tid = ids[id(t)]
        op_id = f"op{tid[1:]}"
        edge_style = {"color": HIGHLIGHT, "penwidth": "2.5"} if id(t) in on_path else {}
        # Heavier edges along computed values keep the data path straight, with parameters
        # and constants hanging at its side (else a chain of layers drifts sideways).
        g.edge(op_id, tid, weight="3", **edge_style)
        hidden_positions = []
        for i, parent in enumerate(t.parents):
            position = operand_position(t, i)
            if id(parent) not in shown_ids:
                hidden_positions.append(position)
                continue
            attrs = {"label": position} if position else {}
            if parent.op is not None:
                attrs["weight"] = "3"
            if id(parent) in on_path:
                attrs.update(edge_style)
            g.edge(ids[id(parent)], op_id, **attrs)
        if hidden_positions:
            label = ", ".join(p for p in hidden_positions if p)
            g.edge("rest", op_id, style="dashed", **({"label": label} if label else {}))


# ---------------------------------------------------------------------------------------------
# Labels.


def op_label(t: Tensor) -> str:
    """The op's name in the table, then its static arguments that are set (axis=0, shape=...)."""
    assert t.op is not None
    lines = [t.op.name]
    for key, value in t.params.items():
        if value is None or value is False:
            continue
        text = f"{key}={value!r}"
        lines.append(text if len(text) <= 30 else text[:27] + "...")
    return "\\n".join(lines)


def tensor_label(
    t: Tensor,
    name: str | None,
    fill: str,
    border: str,
    is_output: bool,
    show_values: bool,
    show_grads: bool,
    max_values: int,
    precision: int,
) -> str:
    """An HTML-like Graphviz label: a table of name, shape and dtype; values; gradient."""
    shape = "scalar" if t.ndim == 0 else str(t.shape)
    header = f'<FONT COLOR="#4b5563">{shape} {t.dtype}</FONT>'
    if name:
        header = f"<B>{html.escape(name)}</B>  " + header
    cells = []
    grad = t.grad if show_grads else None
    if show_values:
        caption = '<FONT COLOR="#4b5563">value</FONT><BR ALIGN="LEFT"/>' if grad is not None else ""
        cells.append(caption + values_text(t.data, max_values, precision))
    if grad is not None:
        g = grad.data
        # the norm of a one-element gradient is its absolute value, printed just below
        norm = "" if show_values and g.size == 1 else f", norm {grad_norm(g):.{precision}g}"
        grad_text = f'<FONT COLOR="#4b5563">grad{norm}</FONT>'
        if show_values and g.size <= max_values:
            grad_text += '<BR ALIGN="LEFT"/>' + values_text(g, max_values, precision)
        cells.append(grad_text)
    # Values and gradient side by side (as micrograd's "data | grad"), so a node grows in width
    # rather than height and the layers of a network stay close together.
    body = "".join(f'<TD ALIGN="LEFT" BALIGN="LEFT" VALIGN="TOP">{cell}</TD>' for cell in cells)
    span = f' COLSPAN="{len(cells)}"' if len(cells) > 1 else ""
    rows = f'<TR><TD ALIGN="LEFT"{span}>{header}</TD></TR>'
    if body:
        rows += f"<TR>{body}</TR>"
    width = 2 if is_output else 1
    return (
        f'<<TABLE BORDER="{width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" '
        f'STYLE="rounded" BGCOLOR="{fill}" COLOR="{border}">{rows}</TABLE>>'
    )


def values_text(a: np.ndarray, max_values: int, precision: int) -> str:
    """The values, rounded, one matrix row per line (monospace), or their range if many; NaN
    and inf counted in red."""
    finite = a[np.isfinite(a)]
    if a.size <= max_values:
        text = np.array2string(a, precision=precision, separator=" ", max_line_width=60)
        lines = [html.escape(line) for line in text.split("\n")]
        body = '<FONT FACE="Courier">' + '<BR ALIGN="LEFT"/>'.join(lines) + "</FONT>"
    elif finite.size:
        body = f"values in [{finite.min():.{precision}g}, {finite.max():.{precision}g}]"
    else:
        body = "no finite values"
    if finite.size < a.size:
        nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        body += f'<BR ALIGN="LEFT"/><FONT COLOR="{HIGHLIGHT}"><B>{nan} nan, {inf} inf</B></FONT>'
    return body


def summary_label(hidden: list[Tensor], max_nodes: int) -> str:
    """The node standing for the tensors not drawn: how many, made by which ops."""
    ops = Counter(t.op.name for t in hidden if t.op is not None)
    leaves = len(hidden) - sum(ops.values())
    kinds = sorted(ops.items(), key=lambda item: (-item[1], item[0]))
    listed = ", ".join(f"{name} x{count:,}" for name, count in kinds[:4])
    if len(kinds) > 4:
        listed += ", ..."
    lines = [
        f"{sum(ops.values()):,} more ops and {leaves:,} more leaves",
        listed,
        f"(not drawn: max_nodes={max_nodes})",
    ]
    return "\\n".join(line for line in lines if line)


class GradScale:
    """Colours for gradient norms on a log scale, from the smallest nonzero norm in the graph
    (pale) to the largest (red); a scale narrower than one decade is widened to one."""

    def __init__(self, nodes: list[Tensor]) -> None:
        norms = [grad_norm(t.grad.data) for t in nodes if t.grad is not None]
        logs = [np.log10(n) for n in norms if np.isfinite(n) and n > 0]
        self.high = max(logs) if logs else 0.0
        self.low = min(min(logs) if logs else 0.0, self.high - 1)

    def color(self, g: np.ndarray) -> str:
        norm = grad_norm(g)
        if not norm > 0:
            return GRAD_PALETTE[0]
        return interpolate((np.log10(norm) - self.low) / (self.high - self.low))

    def legend(self) -> str:
        """A row of colour cells labelled with the norms at both ends."""
        steps = 8
        cells = "".join(
            f'<TD BGCOLOR="{interpolate(k / (steps - 1))}" WIDTH="18"> </TD>' for k in range(steps)
        )
        return (
            '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" COLOR="#9ca3af"><TR>'
            f'<TD BORDER="0">grad norm  {10**self.low:.1e} </TD>{cells}'
            f'<TD BORDER="0"> {10**self.high:.1e}</TD></TR></TABLE>'
        )


def grad_norm(g: np.ndarray) -> float:
    return float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))


def interpolate(x: float) -> str:
    """The colour at x in [0, 1] along GRAD_PALETTE, blended linearly in RGB."""
    x = min(max(float(x), 0.0), 1.0) * (len(GRAD_PALETTE) - 1)
    k = min(int(x), len(GRAD_PALETTE) - 2)
    lo, hi = (np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)]) for c in GRAD_PALETTE[k : k + 2])
    rgb = np.rint(lo + (hi - lo) * (x - k)).astype(int)
    return "#" + "".join(f"{v:02x}" for v in rgb)


def caption_notes(nodes: list[Tensor], root: Tensor, freed: int) -> list[str]:
    """Warnings worth printing under the graph: a freed graph; intermediate gradients missing."""
    notes = []
    if freed:
        notes.append(
            "The graph was freed by backward(): run it inside `with an.retain_grads(loss):` "
            "(or with retain_graph=True) to draw it whole."
        )
    has_grads = any(t.grad is not None for t in nodes)
    if has_grads and any(t.grad is None and t.op is not None for t in nodes):
        notes.append(
            "Intermediate gradients were not kept: run backward inside "
            "`with an.retain_grads(loss):` to show them."
        )
    return notes


def caption(title: str | None, legend: bool, grad_scale: GradScale | None, notes: list[str]) -> str:
    """The graph's label: the title (one line per line of it), the legend, notes, the scale."""
    rows = []
    if title:
        lines = "<BR/>".join(html.escape(line) for line in title.split("\n"))
        rows.append(f'<TR><TD><FONT POINT-SIZE="14">{lines}</FONT></TD></TR>')
    if legend:
        rows.append(f"<TR><TD>{legend_table()}</TD></TR>")
    rows += [f'<TR><TD><FONT COLOR="{HIGHLIGHT}">{html.escape(n)}</FONT></TD></TR>' for n in notes]
    if grad_scale is not None:
        rows.append(f"<TR><TD>{grad_scale.legend()}</TD></TR>")
    return '<<TABLE BORDER="0" CELLSPACING="2">' + "".join(rows) + "</TABLE>>"


def legend_table() -> str:
    """One small box per kind of node, in its colours, named."""
    kinds = [
        ("parameter", "parameter"),
        ("constant", "input or constant"),
        ("intermediate", "intermediate"),
        ("output", "output"),
        ("nonfinite", "NaN or inf"),
    ]
    cells = [
        f'<TD BGCOLOR="{STYLES[kind][0]}" COLOR="{STYLES[kind][1]}" STYLE="rounded">{text}</TD>'
        for kind, text in kinds
    ]
    op = f'<TD BGCOLOR="{OP_STYLE["fillcolor"]}" COLOR="{OP_STYLE["color"]}">op (primitive)</TD>'
    return (
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="6" CELLPADDING="3"><TR>'
        + "".join(cells)
        + op
        + "</TR></TABLE>"
    )
