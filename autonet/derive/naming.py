"""The names in derive's formulas: the symbol of every node of the recorded graph (a tensor's
name, its forward expression, a constant, or x1, x2, ...) and the deltas (δ_O) given to gradients
that the formulas use more than once (docs/derive.md, "Names").
"""

from __future__ import annotations

import numpy as np

from autonet.derive.expr import NEG, TRANSPOSE, Expr, apply
from autonet.tensor import Tensor


def symbols_of(
    order: list[Tensor], output: Tensor, output_name: str
) -> tuple[dict[int, Expr], list[tuple[str, Expr]]]:
    """The symbol of every node of the graph, by id, and the forward definitions of the named
    ones: a named tensor is its name; an unnamed computed one its forward expression; an unnamed
    constant (0.5, 2) its value; any other unnamed tensor x1, x2, ..."""
    taken = {t.name for node in order for t in (node, *node.parents) if t.name}
    fresh = (f"x{i}" for i in range(1, 1 << 30) if f"x{i}" not in taken)
    symbols: dict[int, Expr] = {}
    forward: list[tuple[str, Expr]] = []

    def leaf(t: Tensor) -> Expr:
        if t.name:
            return Expr.symbol(t.name, t.data)
        if not t.requires_grad and t.size and np.all(t.data == t.data.flat[0]):
            return Expr.const(t.data)
        return Expr.symbol(next(fresh), t.data)

    if output.op is None:
        symbols[id(output)] = leaf(output)
    for node in order:
        if node.op is None:  # a leaf is named where it is used, so x1, x2 follow the formulas
            continue
        for parent in node.parents:
            if id(parent) not in symbols:
                symbols[id(parent)] = leaf(parent)
        definition = apply(node.op, tuple(symbols[id(p)] for p in node.parents), node.params)
        if node.name or node is output:
            forward.append((node.name or output_name, definition))
        symbols[id(node)] = Expr.symbol(node.name, node.data) if node.name else definition
    return symbols, forward


def name_deltas(
    order: list[Tensor], found: dict[int, Expr], exprs: list[Expr], taken: set[str]
) -> tuple[dict[int, str], list[tuple[str, Expr]]]:
    """Names for the gradients (at graph nodes) that the formulas use more than once, in the
    order the backward pass computed them (so each is defined before it is used)."""
    uses: dict[int, int] = {}
    stack = list(exprs)
    seen: set[int] = set()
    for e in exprs:
        uses[id(e)] = uses.get(id(e), 0) + 1
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        for a in e.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
            stack.append(a)
    consumers: dict[int, list[Tensor]] = {}
    for node in order:
        for parent in node.parents:
            consumers.setdefault(id(parent), []).append(node)
    names: dict[int, str] = {}
    deltas: list[tuple[str, Expr]] = []
    for node in reversed(order):
        gradient = found.get(id(node))
        if (
            gradient is None
            or id(gradient) in names
            or uses.get(id(gradient), 0) < 2
            or is_simple(gradient)
        ):
            continue
        users = consumers.get(id(node), [])
        source = users[0] if not node.name and len(users) == 1 and users[0].name else node
        label = source.name or ""
        name = "δ_" + label.partition("_")[2] if "_" in label else ("δ_" + label if label else "δ")
        while name in taken:
            name = name.replace("_", "′_", 1) if "_" in name else name + "′"
        taken.add(name)
        names[id(gradient)] = name
        deltas.append((name, gradient))
    return names, deltas


def is_simple(e: Expr) -> bool:
    """A symbol, a constant, or one transposed or negated: nothing gained by naming it."""
    if e.op in (TRANSPOSE, NEG):
        e = e.args[0]
    return e.op in ("symbol", "const")
