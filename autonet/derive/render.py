"""An expression as text (Unicode) or LaTeX: `(O − Y) * O * (1 − O)`, `H^T · δ_O`.

Bottom-up over the tree, with parentheses only where precedence needs them. How a primitive is
written, a function σ(x) or an operator a + b, is its `notation` in the table (primitives.py);
the forms left here are structural (x^T, |x|, x[i], sum with its axis). See docs/derive.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from autonet.derive.forms import printed_params
from autonet.primitives import PRIMITIVES

if TYPE_CHECKING:  # for annotations only: Expr prints itself through render, one way
    from autonet.derive.expr import Expr

# Precedence, higher binds tighter: + − < * / (and prefix −) < · < ^ (power, ^T) < atoms.
P_SUM, P_PRODUCT, P_MATMUL, P_POWER, P_ATOM = 1, 2, 3, 4, 5

LATEX_COMPARISONS = {">": ">", "<": "<", ">=": r"\geq", "<=": r"\leq", "==": "=", "!=": r"\neq"}


def render(root: Expr, latex: bool = False, names: dict[int, str] | None = None) -> str:
    """root as text (or LaTeX); an Expr named in `names` (by id) prints as its name, except root.

    Bottom-up with an explicit stack, so a deep formula needs no recursion."""
    names = names or {}
    done: dict[int, tuple[str, int]] = {}
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        e, args_done = stack.pop()
        if id(e) in done:
            continue
        if e is not root and id(e) in names:
            done[id(e)] = (format_name(names[id(e)], latex), P_ATOM)
        elif args_done or not e.args:
            done[id(e)] = form(e, [done[id(a)] for a in e.args], latex)
        else:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args)
    return done[id(root)][0]


def wrap(part: tuple[str, int], level: int, latex: bool) -> str:
    """part's text, in parentheses if it binds less tightly than `level`."""
    text, precedence = part
    if precedence >= level:
        return text
    return rf"\left({text}\right)" if latex else f"({text})"


# The precedence of each binding of an infix operator (a primitive's notation.infix).
INFIX_PRECEDENCE = {"sum": P_SUM, "product": P_PRODUCT, "matmul": P_MATMUL}


def form(e: Expr, args: list[tuple[str, int]], latex: bool) -> tuple[str, int]:
    """The text of e and its precedence, given its operands' texts and precedences."""
    if e.op == "symbol":
        return format_name(str(e.name), latex), P_ATOM
    if e.op == "const":
        return format_const(e, latex)
    if isinstance(e.op, str):  # a comparison: the indicator [a > b], 1 where it holds
        symbol = LATEX_COMPARISONS[e.op] if latex else e.op
        return f"[{args[0][0]} {symbol} {args[1][0]}]", P_ATOM
    name = e.op.name if PRIMITIVES.get(e.op.name) is e.op else None
    if name == "div" and latex:
        return rf"\frac{{{args[0][0]}}}{{{args[1][0]}}}", P_ATOM
    notation = e.op.notation
    if notation.infix is not None:
        level = INFIX_PRECEDENCE[notation.infix]
        left, right = wrap(args[0], level, latex), wrap(args[1], level + notation.strict, latex)
        return left + ((notation.latex or notation.text) if latex else notation.text) + right, level
    if name == "neg":
        return ("-" if latex else "−") + wrap(args[0], P_PRODUCT, latex), P_PRODUCT
    if name in ("pow", "pow_scalar"):
        power = args[1] if name == "pow" else format_number(e.params["exponent"], latex)
        exponent = power[0] if power[1] == P_ATOM else f"({power[0]})"
        exponent = f"{{{power[0]}}}" if latex else exponent
        return f"{wrap(args[0], P_ATOM, latex)}^{exponent}", P_POWER
    if name == "transpose" and e.ndim >= 2:
        axes = transpose_axes(e.ndim, e.params["axes"])
        swapped = tuple(range(e.ndim - 2)) + (e.ndim - 1, e.ndim - 2)
        if axes == swapped:  # x^T: the last two axes exchanged, as matmul's rules write it
            return wrap(args[0], P_ATOM, latex) + ("^{T}" if latex else "^T"), P_POWER
    if name == "sqrt" and latex:
        return rf"\sqrt{{{args[0][0]}}}", P_ATOM
    if name == "abs":
        return (rf"\left|{args[0][0]}\right|" if latex else f"|{args[0][0]}|"), P_ATOM
    if name == "getitem":
        index = format_index(e.params["index"], latex)
        return wrap(args[0], P_ATOM, latex) + (
            rf"\left[{index}\right]" if latex else f"[{index}]"
        ), P_ATOM
    if name in ("sum", "max"):
        return format_reduction(name, args[0][0], e.params, latex), P_ATOM
    label = notation.text if not latex else notation.latex or rf"\mathrm{{{escape(notation.text)}}}"
    items = [text for text, _ in args] + [
        format_param(k, v, latex, bare=k in notation.bare)
        for k, v in printed_params(e.op, e.params, e.ndim).items()
        if v is not None and (k, v) not in notation.omitted
    ]
    return (
        rf"{label}\left({', '.join(items)}\right)" if latex else f"{label}({', '.join(items)})"
    ), P_ATOM


def transpose_axes(ndim: int, axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """The permutation a transpose with `axes` applies (None: all axes reversed), non-negative:
    how the printing spots x^T, and how the simplifications compose two transposes."""
    return tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)


def format_reduction(name: str, operand_text: str, params: dict, latex: bool) -> str:
    """sum(x, axis=0) in text; in LaTeX a sum (or max) with the axis below it."""
    axis, keepdims = params.get("axis"), params.get("keepdims", False)
    if isinstance(axis, tuple) and len(axis) == 1:
        axis = axis[0]
    if not latex:
        items = [operand_text] + ([] if axis is None else [f"axis={axis}"])
        return f"{name}({', '.join(items + (['keepdims'] if keepdims else []))})"
    below = [] if axis is None else [rf"\mathrm{{axis}}\,{axis}"]
    below += [r"\mathrm{keepdims}"] if keepdims else []
    sub = "_{" + r",\,".join(below) + "}" if below else ""
    return (r"\sum" if name == "sum" else r"\max") + sub + rf"\left({operand_text}\right)"


def format_const(e: Expr, latex: bool) -> tuple[str, int]:
    value = e.scalar
    if value is None:
        shape = (r" \times " if latex else "×").join(map(str, e.shape))
        return (rf"\mathrm{{const}}_{{{shape}}}" if latex else f"const[{shape}]"), P_ATOM
    return format_number(value, latex)


def format_number(value: Any, latex: bool) -> tuple[str, int]:
    """A number as a formula writes it (2, 0.5, −1) and its precedence (a sign binds loosely)."""
    value = float(value)
    text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if value < 0:
        return ("-" if latex else "−") + text.lstrip("-"), P_PRODUCT
    return text, P_ATOM


def format_name(name: str, latex: bool) -> str:
    """A tensor or delta name; in LaTeX, "syn0" -> \\mathit{syn0}, "H_2" -> H_{2}, "δ_O" ->
    \\delta_{O}."""
    if not latex:
        return name
    base, _, sub = name.partition("_")
    primes = len(base) - len(base.rstrip("′"))
    base = base.rstrip("′")
    tex = {"δ": r"\delta"}.get(base) or (
        escape(base) if len(base) == 1 else rf"\mathit{{{escape(base)}}}"
    )
    tex += "'" * primes
    return f"{tex}_{{{escape(sub)}}}" if sub else tex


def escape(text: str) -> str:
    for char in "\\_#$%&{}":
        text = text.replace(char, "\\" + char)
    return text


def format_index(index: Any, latex: bool) -> str:
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for item in items:
        if isinstance(item, slice):
            bounds = ["" if v is None else str(v) for v in (item.start, item.stop, item.step)]
            parts.append(":".join(bounds if item.step is not None else bounds[:2]))
        elif item is Ellipsis:
            parts.append("...")
        else:
            parts.append(str(np.asarray(item).tolist()) if item is not None else "None")
    text = ", ".join(parts)
    if latex:
        text = text.replace("...", r"\ldots").replace(":", "{:}").replace("None", r"\mathrm{None}")
    return text


def format_param(key: str, value: Any, latex: bool, bare: bool) -> str:
    if key == "index":
        text = f"[{format_index(value, latex)}]"
    elif key == "dtype":
        text = np.dtype(value).name
    else:
        text = str(tuple(value) if isinstance(value, list) else value)
    if latex and key != "index":
        text = rf"\mathrm{{{escape(text)}}}"
    if bare:
        return text
    return (rf"\mathrm{{{escape(key)}}}=" if latex else f"{key}=") + text
