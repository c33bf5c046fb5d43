"""The names in derive's formulas: the symbol of every node of the recorded graph (a tensor's
name, its forward expression, a constant, a size such as the batch size m, or x1, x2, ...) and the
deltas (δ_O) given to gradients that the formulas use more than once (docs/derive.md, "Names").
"""

from __future__ import annotations

import math
from functools import reduce
from typing import NamedTuple

import numpy as np

from autonet.derive.check import agrees
from autonet.derive.expr import DIV, MUL, NEG, SUM, TRANSPOSE, Expr, apply
from autonet.tensor import Tensor


class GraphSymbols(NamedTuple):
    """symbols   the symbol of every node, by id
    forward   the forward definitions of the named nodes (and of the output), in graph order
    sizes     the lengths written as symbols (m, n_1), each with its value
    misread   the names whose forward definition does not evaluate to the recorded value"""

    symbols: dict[int, Expr]
    forward: list[tuple[str, Expr]]
    sizes: list[Expr]
    misread: list[str]


def symbols_of(order: list[Tensor], output: Tensor, output_name: str) -> GraphSymbols:
    """The symbol of every node of the graph: a named tensor is its name; an unnamed computed
    one its forward expression; the constant of a mean its size (1/m); any other unnamed constant
    (0.5, 2) its value; any other unnamed tensor x1, x2, ..."""
    taken = {t.name for node in order for t in (node, *node.parents) if t.name}
    fresh = (f"x{i}" for i in range(1, 1 << 30) if f"x{i}" not in taken)
    symbols: dict[int, Expr] = {}
    forward: list[tuple[str, Expr]] = []
    sizes: dict[tuple[int, int], Expr] = {}
    misread: list[str] = []

    def leaf(t: Tensor) -> Expr:
        if t.name:
            return Expr.symbol(t.name, t.numpy())
        if not t.requires_grad and t.size and np.all(t.numpy() == t.numpy().flat[0]):
            return Expr.const(t.numpy())
        return Expr.symbol(next(fresh), t.numpy())

    if output.op is None:
        symbols[id(output)] = leaf(output)
    for node in order:
        if node.op is None:  # a leaf is named where it is used, so x1, x2 follow the formulas
            continue
        count = mean_count(node)
        if count is not None:
            symbols[id(node.parents[1])] = count_symbol(node, count, sizes, taken)
        for parent in node.parents:
            if id(parent) not in symbols:
                symbols[id(parent)] = leaf(parent)
        definition = apply(node.op, tuple(symbols[id(p)] for p in node.parents), node.params)
        if node.name or node is output:
            name = node.name or output_name
            forward.append((name, definition))
            if not agrees(definition.value.astype(node.dtype), node.numpy(), equal_nan=True):
                misread.append(name)
        symbols[id(node)] = Expr.symbol(node.name, node.numpy()) if node.name else definition
    return GraphSymbols(symbols, forward, list(sizes.values()), misread)


def mean_count(node: Tensor) -> list[tuple[int, int]] | None:
    """For a mean, sum(x, axis) * (1/k) or sum(x, axis) / k (the constant second, as Tensor.mean
    records it: 0.5 * sum(...) stays a half), the (axis, length) of x that k counts, the axes of
    length 1 left out; None for any other node."""
    if node.op not in (MUL, DIV) or len(node.parents) != 2:
        return None
    summed, constant = node.parents
    if summed.op is not SUM or constant.op is not None or constant.requires_grad:
        return None
    if constant.name or constant.ndim != 0 or constant.dtype.kind != "f":
        return None
    x, axis = summed.parents[0], summed.params["axis"]
    axes = range(x.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    lengths = [(a, x.shape[a]) for a in axes if x.shape[a] != 1]
    k = math.prod(n for _, n in lengths)
    expected = 1.0 / k if node.op is MUL else float(k)
    if not lengths or constant.numpy() != np.asarray(expected, constant.dtype):
        return None
    if k > 2 ** (np.finfo(constant.dtype).nmant + 1):  # beyond, not every integer is exact
        return None  # (float16 holds those up to 2048; 100000 would be inf)
    return lengths


def count_symbol(
    node: Tensor, lengths: list[tuple[int, int]], sizes: dict[tuple[int, int], Expr], taken: set
) -> Expr:
    """1/m (or m, for a division) for the constant of a mean over `lengths`; axis 0's length is
    m (the batch size), axis a's n_a; one symbol per (axis, length)."""
    dtype = node.parents[1].dtype
    for axis, length in lengths:
        if (axis, length) not in sizes:
            name = "m" if axis == 0 else f"n_{axis}"
            while name in taken:
                name = name.replace("_", "′_", 1) if "_" in name else name + "′"
            taken.add(name)
            sizes[axis, length] = Expr.dimension(name, length, dtype)
    product = reduce(lambda a, b: apply(MUL, (a, b)), (sizes[key] for key in lengths))
    return product if node.op is DIV else apply(DIV, (Expr.const(np.ones((), dtype)), product))


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


def name_labels(roots: list[Expr], taken: set[str]) -> list[Expr]:
    """Name the class-index symbols (Expr.labels) in the expressions under roots: T, or T′, ...
    where T is taken, one name per distinct array of indices; the named symbols, one per name."""
    named: list[Expr] = []
    stack, seen = list(roots), set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        stack.extend(e.args)
        if e.op != "symbol" or not e.params.get("labels"):
            continue
        same = next((n for n in named if np.array_equal(n.value, e.value)), None)
        if same is None:
            name = "T"
            while name in taken:
                name += "′"
            taken.add(name)
            same = Expr.labels(e.value)
            same.name = name
            named.append(same)
        e.name = same.name
    return named
