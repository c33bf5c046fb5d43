"""What each node of a drawing says, and its colours: HTML-like Graphviz labels and styles.

    parameter (leaf that requires grad)   blue box
    input or constant                     grey box (never recorded, so always a leaf)
    intermediate result                   white box
    output (the tensor drawn)             orange box, thick border
    module, collapsed                     teal box: its parameters and output, summarised
    NaN or inf in values or gradient      red octagon, counted in the label
    op (a primitive of the table)         violet ellipse

A tensor's label is a table: name (and the formula that made it, when its operands are named),
shape and dtype above its values and, beside them, dL/d(tensor) once backward() has run. With
color_by_grad, tensors are filled by their gradient's norm instead, on a log scale drawn in the
caption; the scale runs from pale to orange and never reaches the red of NaN and inf, which are
also the only octagons, so a huge gradient never looks like a broken one.

Every number is printed by one rule, `format_number`: `precision` significant digits, in
scientific notation when fixed notation would hide them (0.00012 stays 0.00012; 1.2e-07 and
1.23e+03 at precision 3), so no small value is drawn as 0.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from autonet.tensor import Tensor

# Fill and border colours by kind of tensor: pale fills keep the black text readable, saturated
# borders tell the kinds apart.
STYLES = {
    "parameter": ("#dbeafe", "#1d4ed8"),
    "constant": ("#f3f4f6", "#9ca3af"),
    "intermediate": ("#ffffff", "#6b7280"),
    "output": ("#fef3c7", "#d97706"),
    "module": ("#ccfbf1", "#0f766e"),
    "nonfinite": ("#fecaca", "#b91c1c"),
}
# NaN and inf: the only octagons (a stop sign), so they stand out with or without colour.
NONFINITE_SHAPE = "octagon"
# ordering="in" keeps an op's inputs in operand order, a left of b, as in the formula.
OP_STYLE = {
    "shape": "ellipse",
    "style": "filled",
    "fillcolor": "#ede9fe",
    "color": "#7c3aed",
    "ordering": "in",
}
HIGHLIGHT = "#dc2626"

# Gradient-magnitude colours, smallest to largest: pale for vanishing gradients, orange for the
# largest; all light enough for the black and grey text on them, and none red: red is NaN's.
GRAD_PALETTE = ["#f1f5f9", "#bfdbfe", "#fef08a", "#fdba74", "#fb923c"]


@dataclass(frozen=True)
class LabelOptions:
    """What a tensor's label shows: draw()'s show_values, show_grads, max_values and precision;
    side_by_side puts the gradient beside the values (top-to-bottom drawings) rather than under
    them (left-to-right ones), so nodes grow across the flow, not along it."""

    show_values: bool = True
    show_grads: bool = True
    max_values: int = 16
    precision: int = 3
    side_by_side: bool = True


def format_number(x: float | np.number, precision: int) -> str:
    """x to `precision` significant digits (Python's "g" format): fixed notation for
    1e-4 <= |x| < 10**precision, else scientific; trailing zeros dropped; nan, inf, -inf.
    Integers are printed whole.

        format_number(0.00012, 3) == "0.00012"     format_number(1234.5, 3) == "1.23e+03"
    """
    if isinstance(x, (int, np.integer, bool, np.bool_)):
        return str(int(x))
    return f"{float(x):.{precision}g}"


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


def is_finite(t: Tensor) -> bool:
    """Values and gradient (if any) hold no NaN or inf."""
    return bool(np.isfinite(t.numpy()).all()) and (
        t.grad is None or bool(np.isfinite(t.grad.numpy()).all())
    )


def tensor_kind(t: Tensor, root: Tensor) -> str:
    if not is_finite(t):
        return "nonfinite"
    if t is root:
        return "output"
    if t.op is not None:
        return "intermediate"
    return "parameter" if t.requires_grad else "constant"


def formula(t: Tensor, names: dict[int, str]) -> str | None:
    """How t was computed, in derive's notation of its op, when every operand has a name and the
    op no static argument: "Hr = S · syn0" says what Hr is. None otherwise."""
    if (
        t.op is None
        or not t.parents
        or any(v is not None and v is not False for v in t.params.values())
    ):
        return None
    operands = [names.get(id(parent)) for parent in t.parents]
    if None in operands:
        return None
    notation = t.op.notation
    if notation.infix and len(operands) == 2:
        return f"{operands[0]}{notation.text}{operands[1]}"
    return f"{notation.text}({', '.join(str(o) for o in operands)})"


def node_frame(kind: str, fill: str, border: str, highlighted: bool) -> tuple[dict[str, str], str]:
    """(node attributes, table attributes) of a box in the given colours: a plain node whose
    table draws the rounded border, or for NaN and inf a filled octagon around a borderless
    table. On the highlighted path the border is red."""
    if highlighted:
        border = HIGHLIGHT
    if kind == "nonfinite":
        attrs = {
            "shape": NONFINITE_SHAPE,
            "style": "filled",
            "fillcolor": fill,
            "color": border,
            "penwidth": "2.5",
            "margin": "0.02",
        }
        return attrs, f'BORDER="0" BGCOLOR="{fill}"'
    width = 2 if kind == "output" else 1
    return {"shape": "plain"}, f'BORDER="{width}" STYLE="rounded" BGCOLOR="{fill}" COLOR="{border}"'


def tensor_node(
    t: Tensor,
    root: Tensor,
    name: str | None,
    made_by: str | None,
    grad_scale: GradScale | None,
    highlighted: bool,
    options: LabelOptions,
) -> dict[str, str]:
    """A tensor's node attributes: its kind's colours (filled by its gradient's norm on the
    grad_scale, except NaN and inf) and an HTML-like label: a table of name, formula, shape and
    dtype; values; gradient."""
    kind = tensor_kind(t, root)
    fill, border = STYLES[kind]
    if grad_scale is not None and kind != "nonfinite" and t.grad is not None:
        fill = grad_scale.color(t.grad.numpy())
    attrs, frame = node_frame(kind, fill, border, highlighted)
    precision, max_values = options.precision, options.max_values
    shape = "scalar" if t.ndim == 0 else str(t.shape)
    header = f'<FONT COLOR="#4b5563">{shape} {t.dtype}</FONT>'
    if made_by:
        header = f"= {html.escape(made_by)}  " + header
    if name:
        header = f"<B>{html.escape(name)}</B> " + header
    cells = []
    grad = t.grad if options.show_grads else None
    if options.show_values:
        caption = '<FONT COLOR="#4b5563">value</FONT><BR ALIGN="LEFT"/>' if grad is not None else ""
        cells.append(caption + values_text(t.numpy(), max_values, precision))
    if grad is not None:
        g = grad.numpy()
        # the norm of a one-element gradient is its absolute value, printed just below
        show_norm = not (options.show_values and g.size == 1)
        norm = f", norm {format_number(grad_norm(g), precision)}" if show_norm else ""
        grad_text = f'<FONT COLOR="#4b5563">grad{norm}</FONT>'
        if options.show_values and g.size <= max_values:
            grad_text += '<BR ALIGN="LEFT"/>' + values_text(g, max_values, precision)
        cells.append(grad_text)
    # Values and gradient side by side (as micrograd's "data | grad") when the flow is vertical,
    # so a node grows in width rather than height and the layers stay close; stacked when the
    # flow is horizontal, for the same reason.
    body = [f'<TD ALIGN="LEFT" BALIGN="LEFT" VALIGN="TOP">{cell}</TD>' for cell in cells]
    rows = [body] if options.side_by_side else [[cell] for cell in body]
    columns = max((len(row) for row in rows), default=1)
    span = f' COLSPAN="{columns}"' if columns > 1 else ""
    text = f'<TR><TD ALIGN="LEFT"{span}>{header}</TD></TR>'
    text += "".join(f"<TR>{''.join(row)}</TR>" for row in rows if row)
    attrs["label"] = (
        f'<<TABLE {frame} CELLBORDER="0" CELLSPACING="0" CELLPADDING="4">{text}</TABLE>>'
    )
    return attrs


def values_text(a: np.ndarray, max_values: int, precision: int) -> str:
    """The values, one matrix row per line (monospace, columns aligned), or if there are more
    than max_values their min, max and mean; NaN and inf counted in red. Every number by
    format_number."""
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a.ravel()
    if a.size <= max_values:
        width = max((len(format_number(v, precision)) for v in a.flat), default=0)

        def number(v: Any) -> str:
            return format_number(v, precision).rjust(width)

        floats = a.dtype.kind == "f"
        text = np.array2string(
            a,
            separator=" ",
            max_line_width=60,
            formatter={"float_kind": number} if floats else None,
        )
        lines = [html.escape(line) for line in text.split("\n")]
        body = '<FONT FACE="Courier">' + '<BR ALIGN="LEFT"/>'.join(lines) + "</FONT>"
    elif finite.size:
        low, high, mean = (format_number(v, precision) for v in summary(finite))
        body = f"values in [{low}, {high}], mean {mean}"
    else:
        body = "no finite values"
    if finite.size < a.size:
        nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        body += f'<BR ALIGN="LEFT"/><FONT COLOR="{HIGHLIGHT}"><B>{nan} nan, {inf} inf</B></FONT>'
    return body


def summary(finite: np.ndarray) -> tuple[float, float, float]:
    """(min, max, mean) of finite values; the mean taken on values scaled by the largest
    magnitude, so that values near the float64 limit do not overflow their sum."""
    low, high = finite.min(), finite.max()
    if finite.dtype.kind != "f":
        return low, high, float(np.mean(finite, dtype=np.float64))
    scale = float(max(abs(float(low)), abs(float(high))))
    mean = scale * float(np.mean(finite.astype(np.float64) / scale)) if scale > 0 else 0.0
    return low, high, mean


def module_node(
    prefix: str,
    members: list[Tensor],
    outputs: list[Tensor],
    names: dict[int, str],
    grad_scale: GradScale | None,
    highlighted: bool,
    options: LabelOptions,
) -> dict[str, str]:
    """A collapsed module's node: its name and ops, one line per parameter (shape, gradient
    norm) and per output (shape, values summarised, gradient norm). Teal, filled by its
    parameters' gradient norm on the grad_scale; a red octagon if anything in it is NaN or inf."""
    precision = options.precision
    parameters = [t for t in members if t.op is None and t.requires_grad]
    kind = "module" if all(is_finite(t) for t in members) else "nonfinite"
    fill, border = STYLES[kind]
    grads = [t.grad.numpy() for t in parameters if t.grad is not None]
    if grad_scale is not None and kind == "module" and grads:
        fill = grad_scale.color(np.concatenate([g.ravel() for g in grads]))
    attrs, frame = node_frame(kind, fill, border, highlighted)
    ops = ", ".join(dict.fromkeys(t.op.name for t in members if t.op is not None))
    rows = [f'<B>{html.escape(prefix)}</B>  <FONT COLOR="#4b5563">{html.escape(ops)}</FONT>']
    for t, is_output in [(t, False) for t in parameters] + [(t, True) for t in outputs]:
        name = "out" if is_output else names.get(id(t), "").rsplit(".", 1)[-1]
        shape = "scalar" if t.ndim == 0 else str(t.shape)
        text = f'{html.escape(name)} <FONT COLOR="#4b5563">{shape} {t.dtype}</FONT>'
        if options.show_values and is_output:
            text += "  " + values_text(t.numpy(), 1, precision).replace('<BR ALIGN="LEFT"/>', "  ")
        if options.show_grads and t.grad is not None:
            norm = format_number(grad_norm(t.grad.numpy()), precision)
            text += f'  <FONT COLOR="#4b5563">grad norm</FONT> {norm}'
        rows.append(text)
    cells = "".join(f'<TR><TD ALIGN="LEFT">{row}</TD></TR>' for row in rows)
    attrs["label"] = (
        f'<<TABLE {frame} CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">{cells}</TABLE>>'
    )
    return attrs


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
    (pale) to the largest (orange); a scale narrower than one decade is widened to one."""

    def __init__(self, nodes: list[Tensor]) -> None:
        norms = [grad_norm(t.grad.numpy()) for t in nodes if t.grad is not None]
        logs = [np.log10(n) for n in norms if np.isfinite(n) and n > 0]
        self.high = max(logs) if logs else 0.0
        self.low = min(min(logs) if logs else 0.0, self.high - 1)

    def color(self, g: np.ndarray) -> str:
        norm = grad_norm(g)
        if not norm > 0:
            return GRAD_PALETTE[0]
        return interpolate((np.log10(norm) - self.low) / (self.high - self.low))

    def legend(self, precision: int) -> str:
        """A row of colour cells labelled with the norms at both ends."""
        steps = 8
        cells = "".join(
            f'<TD BGCOLOR="{interpolate(k / (steps - 1))}" WIDTH="18"> </TD>' for k in range(steps)
        )
        low, high = (format_number(10.0**end, precision) for end in (self.low, self.high))
        return (
            '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" COLOR="#9ca3af"><TR>'
            f'<TD BORDER="0">grad norm  {low} </TD>{cells}'
            f'<TD BORDER="0"> {high}</TD></TR></TABLE>'
        )


def grad_norm(g: np.ndarray) -> float:
    """sqrt(sum g^2), as m * sqrt(sum (g / m)^2) with m = max |g|, so that gradients of 1e200
    do not overflow to inf nor those of 1e-200 underflow to 0. NaN if g holds a NaN."""
    magnitude = np.abs(np.asarray(g, dtype=np.float64))
    m = float(magnitude.max(initial=0.0))
    if m == 0.0 or not np.isfinite(m):
        return m
    return m * float(np.sqrt(np.sum(np.square(magnitude / m))))


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


def caption(
    title: str | None,
    legend: bool,
    grad_scale: GradScale | None,
    notes: list[str],
    precision: int,
) -> str:
    """The graph's label: the title (one line per line of it), the legend, notes, the scale."""
    rows = []
    if title:
        lines = "<BR/>".join(html.escape(line) for line in title.split("\n"))
        rows.append(f'<TR><TD><FONT POINT-SIZE="14">{lines}</FONT></TD></TR>')
    if legend:
        rows.append(f"<TR><TD>{legend_table()}</TD></TR>")
    rows += [f'<TR><TD><FONT COLOR="{HIGHLIGHT}">{html.escape(n)}</FONT></TD></TR>' for n in notes]
    if grad_scale is not None:
        rows.append(f"<TR><TD>{grad_scale.legend(precision)}</TD></TR>")
    return '<<TABLE BORDER="0" CELLSPACING="2">' + "".join(rows) + "</TABLE>>"


def legend_table() -> str:
    """One small box per kind of node, in its colours, named."""
    kinds = [
        ("parameter", "parameter"),
        ("constant", "input or constant"),
        ("intermediate", "intermediate"),
        ("output", "output"),
        ("module", "module (collapsed)"),
        ("nonfinite", "NaN or inf (octagon)"),
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
