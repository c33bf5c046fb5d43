"""Drawing the computation graph: which tensors and ops are drawn, named, grouped and joined.

The drawing has one node per recorded primitive (an ellipse labelled with its name in the table,
"matmul", "sigmoid", ...) and one node per tensor (a box: name, shape, dtype, values when small,
and dL/d(tensor) once backward() has run); edges follow the data flow, input -> op -> output, and
are labelled a, b (or 0, 1, ...) where the order of the operands matters (a - b, a @ b). What the
nodes say and their colours are in labels.py.

Parameters named "<module>.<attribute>" (layers.0.weight) group their module's ops in a box; in
a drawing of more than EXPAND_LIMIT nodes each module is collapsed into one node (m0, m1, ...)
listing its parameters and outputs (modules.py), so an 8-layer MLP reads as a column of 8
layers. Leaves meeting a computed value at an op sit beside that op, not above it, so each layer
takes one rank.

The walk is the engine's `topological_order` (iterative), so a graph of any depth draws; one
larger than `max_nodes` is drawn from the output back as far as the limit allows, the rest folded
into one node that counts what it holds. The same graph always gives the same DOT text: node ids
are positions in the topological order.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from autonet.engine import topological_order
from autonet.tensor import Tensor
from autonet.viz.labels import (
    HIGHLIGHT,
    GradScale,
    LabelOptions,
    caption,
    caption_notes,
    formula,
    module_node,
    op_attributes,
    summary_label,
    tensor_node,
)
from autonet.viz.modules import (
    module_clusters,
    module_order,
    module_outputs,
    modules_to_collapse,
)
from autonet.viz.rendering import Drawing

NodeStatement = tuple[str, dict[str, str]]  # a node's id and attributes, to emit in order


def check_tensor(x: Any, caller: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{caller}: expected an autonet Tensor (the output whose graph to draw), got "
            f"{type(x).__name__}; wrap arrays with an.tensor(...)"
        )


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
    expand: bool | Iterable[str] | None = None,
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
                   the nodes; a tensor's own `name=` wins over it. A named tensor computed from
                   named operands shows how: "Hr = S · syn0"
    rankdir        "TB" (top to bottom), "LR", "BT" or "RL", as in Graphviz
    show_values    print the values of tensors with at most `max_values` elements (else their
                   min, max and mean)
    show_grads     print each gradient: its norm sqrt(sum g^2), and its values when small
    color_by_grad  fill each tensor by log10 of its gradient's norm (pale: vanishing, orange:
                   largest), with the scale drawn above the graph; NaN and inf stay red octagons
    highlight      a tensor of the graph (usually a parameter): the paths from it to root are
                   drawn in red
    group          put each op that consumes parameters named "<prefix>.<attr>" (as nn modules
                   name them, e.g. layers.0.weight) in a box labelled <prefix>, with them
    expand         which modules (groups) to draw op by op; the others are collapsed into one
                   box each, listing their parameters and outputs: True (all), False (none), a
                   list of module names such as ["layers.4"], or None (the default): all if the
                   drawing has at most 60 nodes, none if it has more
    title          a caption above the graph (any notes and the colour scale go under it)
    legend         say above the graph what the colours and shapes mean
    max_nodes      most nodes drawn; a larger graph is drawn from root back as far as the limit
                   allows, the rest folded into one node that counts what it holds
    precision      significant digits of every number printed (values, gradients, norms,
                   summaries): 0.00012 and 1.23e-07 at 3, never rounded to 0 (NumPy's
                   array2string counts digits after the point instead)

    Parameters and constants feeding an op whose other input is computed are drawn beside the
    op (weights beside their matmul), so each layer of a network takes one rank, not two.

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
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
        raise ValueError(
            f"draw: precision is the number of significant digits printed, a whole number >= 1; "
            f"got {precision!r}"
        )
    nodes = graph_nodes(root)
    ids = {id(t): f"t{i}" for i, t in enumerate(nodes)}
    labels = display_names(nodes, names)
    shown, hidden = nodes_within(nodes, root, max_nodes)
    on_path = path_to_root(nodes, highlight, ids) if highlight is not None else set()
    grad_scale = GradScale(nodes) if color_by_grad else None
    options = LabelOptions(
        show_values, show_grads, max_values, precision, side_by_side=rankdir in ("TB", "BT")
    )

    g = empty_drawing(rankdir)
    clusters = module_clusters(shown, labels) if group else {}
    modules = module_order(shown, clusters)
    collapsed = modules_to_collapse(modules, expand, sum(cost(t) for t in shown))
    module_ids = {prefix: f"m{k}" for k, prefix in enumerate(modules)}
    stands_for = {
        id(t): module_ids[clusters[id(t)]] for t in shown if clusters.get(id(t)) in collapsed
    }
    members: dict[str, list[NodeStatement]] = {prefix: [] for prefix in modules}
    top: list[NodeStatement] = []
    for t in shown:
        if id(t) in stands_for:
            continue
        tid, highlighted = ids[id(t)], id(t) in on_path
        name = labels.get(id(t))
        made_by = formula(t, labels) if name else None
        attrs = tensor_node(t, root, name, made_by, grad_scale, highlighted, options)
        place = members[clusters[id(t)]] if id(t) in clusters else top
        place.append((tid, attrs))
        if t.op is not None:
            place.append((f"op{tid[1:]}", op_attributes(t, highlighted)))
    for prefix in collapsed:
        inside = [t for t in shown if clusters.get(id(t)) == prefix]
        outputs = module_outputs(inside, shown, root, clusters)
        highlighted = any(id(t) in on_path for t in inside)
        top.append(
            (
                module_ids[prefix],
                module_node(prefix, inside, outputs, labels, grad_scale, highlighted, options),
            )
        )
    add_nodes(g, top, [prefix for prefix in modules if prefix not in collapsed], members)
    if hidden:
        g.node(
            "rest",
            label=summary_label(hidden, max_nodes),
            shape="box",
            style="rounded,dashed",
            color="#6b7280",
            fontcolor="#374151",
        )
    add_edges(g, shown, ids, on_path, stands_for)

    freed = sum(1 for t in shown if t.op is not None and not t.parents)
    notes = caption_notes(nodes, root, freed)
    if title or legend or grad_scale is not None or notes:
        label = caption(title, legend, grad_scale, notes, precision)
        g.attr(label=label, labelloc="t", fontsize="11")
    if freed:
        warnings.warn(
            f"draw: the graph was freed by backward() ({freed} op(s) lost their inputs); to draw "
            "it whole, run backward inside `with an.retain_grads(loss):` or pass "
            "retain_graph=True",
            RuntimeWarning,
            stacklevel=2,
        )
    g.drawn = (root, labels)  # for an .html page (interactive.py): the values and gradients
    return g


def empty_drawing(rankdir: str) -> Drawing:
    """A Drawing with autonet's graph, node and edge attributes, and no nodes yet."""
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
    return g


# ---------------------------------------------------------------------------------------------
# The graph: which tensors, which names, which are drawn.


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


# ---------------------------------------------------------------------------------------------
# Nodes and edges.


def add_nodes(
    g: Drawing,
    top: list[NodeStatement],
    expanded: list[str],
    members: dict[str, list[NodeStatement]],
) -> None:
    """The nodes outside any module (collapsed modules among them), then one box (a Graphviz
    cluster) per expanded module with its members."""
    for tid, attrs in top:
        g.node(tid, **attrs)
    for k, prefix in enumerate(expanded):
        with g.subgraph(name=f"cluster_{k}") as c:
            c.attr(label=prefix, style="rounded,dashed", color="#6b7280", labeljust="l")
            for tid, attrs in members[prefix]:
                c.node(tid, **attrs)


def operand_position(t: Tensor, i: int) -> str:
    """The label of t's i-th input edge: a, b (or 0, 1, ...) where order matters, else ""."""
    assert t.op is not None
    if len(t.parents) < 2 or t.op.commutative:
        return ""
    return "ab"[i] if len(t.parents) == 2 else str(i)


def add_edges(
    g: Drawing,
    shown: list[Tensor],
    ids: dict[int, str],
    on_path: set[int],
    stands_for: dict[int, str],
) -> None:
    """input -> op -> output for every op drawn, labelled with operand positions where order
    matters; inputs not drawn come from the "rest" node, in one dashed edge per op. A collapsed
    module (stands_for: tensor -> its module's node) gets one edge from each node it reads."""
    shown_ids = {id(t) for t in shown}
    into_modules: set[tuple[str, str]] = set()
    for t in shown:
        if t.op is None:
            continue
        module = stands_for.get(id(t))
        op_id = module or f"op{ids[id(t)][1:]}"
        edge_style = {"color": HIGHLIGHT, "penwidth": "2.5"} if id(t) in on_path else {}
        # Heavier edges along computed values keep the data path straight, with parameters
        # and constants hanging at its side (else a chain of layers drifts sideways).
        if module is None:
            g.edge(op_id, ids[id(t)], weight="3", **edge_style)
        # Leaves feeding an op that also reads a computed value sit beside it (minlen 0: the
        # same rank), as a weight beside its matmul: a layer takes one rank, not two.
        beside = any(parent.op is not None for parent in t.parents)
        hidden_positions = []
        for i, parent in enumerate(t.parents):
            position = operand_position(t, i)
            tail = "rest" if id(parent) not in shown_ids else stands_for.get(id(parent))
            tail = tail or ids[id(parent)]
            if module is not None and (tail == module or (tail, module) in into_modules):
                continue
            if tail == "rest":
                hidden_positions.append(position)
                continue
            attrs = {"label": position} if position and module is None else {}
            if parent.op is not None:
                attrs["weight"] = "3"
            elif beside and module is None:
                attrs["minlen"] = "0"
            if id(parent) in on_path:
                attrs.update(edge_style)
            if module is not None:
                into_modules.add((tail, module))
            g.edge(tail, op_id, **attrs)
        if hidden_positions:
            label = ", ".join(p for p in hidden_positions if p and module is None)
            g.edge("rest", op_id, style="dashed", **({"label": label} if label else {}))
