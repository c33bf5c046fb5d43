"""What each node of a drawing says, and its colours: HTML-like Graphviz labels and styles.

    parameter (leaf that requires grad)   blue box
    input or constant                     grey box (never recorded, so always a leaf)
    intermediate result                   white box
    output (the tensor drawn)             orange box, thick border
    NaN or inf in values or gradient      red box, counted in the label
    op (a primitive of the table)         violet ellipse

A tensor's label is a table: name, shape and dtype above its values and, beside them, dL/d(tensor)
once backward() has run. With color_by_grad, tensors are filled by their gradient's norm instead,
on a log scale drawn in the caption.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class LabelOptions:
    """What a tensor's label shows: draw()'s show_values, show_grads, max_values and precision."""

    show_values: bool = True
    show_grads: bool = True
    max_values: int = 16
    precision: int = 3


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


def op_attributes(t: Tensor, highlighted: bool) -> dict[str, str]:
    """An op's node: OP_STYLE and its label; dashed red if backward() freed its inputs; a thick
    red border on the highlighted path."""
    attrs = dict(OP_STYLE, label=op_label(t))
    if not t.parents:
        attrs.update(
            style="filled,dashed",
            color=HIGHLIGHT,
            label=op_label(t) + "\\n(inputs freed by backward)",
        )
    if highlighted:
        attrs.update(color=HIGHLIGHT, penwidth="2")
    return attrs


def tensor_kind(t: Tensor, root: Tensor) -> str:
    if not np.isfinite(t.data).all() or (t.grad is not None and not np.isfinite(t.grad.data).all()):
        return "nonfinite"
    if t is root:
        return "output"
    if t.op is not None:
        return "intermediate"
    return "parameter" if t.requires_grad else "constant"


def tensor_colors(
    t: Tensor, root: Tensor, grad_scale: GradScale | None, highlighted: bool
) -> tuple[str, str]:
    """(fill, border) of a tensor's box: its kind's; filled by its gradient's norm on the
    grad_scale (NaN and inf stay red); the border red on the highlighted path."""
    kind = tensor_kind(t, root)
    fill, border = STYLES[kind]
    if grad_scale is not None and kind != "nonfinite" and t.grad is not None:
        fill = grad_scale.color(t.grad.data)
    if highlighted:
        border = HIGHLIGHT
    return fill, border


def tensor_label(
    t: Tensor, name: str | None, fill: str, border: str, is_output: bool, options: LabelOptions
) -> str:
    """An HTML-like Graphviz label: a table of name, shape and dtype; values; gradient."""
    show_values, max_values, precision = options.show_values, options.max_values, options.precision
    shape = "scalar" if t.ndim == 0 else str(t.shape)
    header = f'<FONT COLOR="#4b5563">{shape} {t.dtype}</FONT>'
    if name:
        header = f"<B>{html.escape(name)}</B>  " + header
    cells = []
    grad = t.grad if options.show_grads else None
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
