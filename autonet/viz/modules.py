"""Modules in a drawing: which tensors belong to which module, and which modules are collapsed.

nn modules name their parameters by attribute path, "<module>.<attribute>" (layers.0.weight is in
layers.0). draw() boxes each module's parameters with the ops that consume them; in a drawing of
more than EXPAND_LIMIT nodes (or as `expand` says) a module is collapsed into one node listing
its parameters and outputs, so a deep model reads as a column of layers.
"""

from __future__ import annotations

from collections.abc import Iterable

from autonet.tensor import Tensor

# Modules are drawn whole (expand=None) in drawings of at most this many nodes: about what a
# screen shows readably at natural size (the tutorial's network has 27, a 3-layer MLP 43).
EXPAND_LIMIT = 60


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


def module_order(shown: list[Tensor], clusters: dict[int, str]) -> list[str]:
    """The modules in the order of their first ops, so layer 0 comes before layer 1; then any
    module whose parameters feed only other modules' ops."""
    first_op = [clusters[id(t)] for t in shown if t.op is not None and id(t) in clusters]
    return list(dict.fromkeys(first_op + list(clusters.values())))


def modules_to_collapse(
    modules: list[str], expand: bool | Iterable[str] | None, size: int
) -> list[str]:
    """The modules drawn as one box each, in order, by draw's `expand`: True none, False all,
    names all but those; None all when the drawing has more than EXPAND_LIMIT nodes."""
    if expand is None:
        expand = size <= EXPAND_LIMIT
    if expand is True:
        return []
    if expand is False:
        return modules
    if isinstance(expand, str):
        expand = [expand]
    if not isinstance(expand, Iterable):
        raise TypeError(
            "draw: expand must be True, False, None or a list of module names, got "
            f"{type(expand).__name__}"
        )
    wanted = list(expand)
    unknown = [name for name in wanted if name not in modules]
    if unknown:
        raise ValueError(
            f"draw: expand names {unknown}, not modules of the drawing; its modules (the "
            f"prefixes of parameter names, layers.0 for layers.0.weight) are {modules}"
        )
    return [prefix for prefix in modules if prefix not in wanted]


def module_outputs(
    inside: list[Tensor], shown: list[Tensor], root: Tensor, clusters: dict[int, str]
) -> list[Tensor]:
    """The tensors a module computes that are used outside it (or are the root)."""
    prefix = clusters[id(inside[0])]
    used_outside = {id(p) for t in shown if clusters.get(id(t)) != prefix for p in t.parents}
    return [t for t in inside if t.op is not None and (t is root or id(t) in used_outside)]
