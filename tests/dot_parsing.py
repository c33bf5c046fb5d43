"""Reading back the DOT statements that autonet.draw writes, for the drawing tests.

A Drawing's body is a list of statements, one per node, edge or subgraph line, so the tests can
check its structure without a renderer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import graphviz

NODE = re.compile(r"^\s*(\w+) \[(.*)\]\s*$", re.DOTALL)
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?\s*$", re.DOTALL)
SUBGRAPH = re.compile(r"^\s*subgraph (\w+) \{\s*$")
ATTRIBUTE = r'{key}=("(?:[^"\\]|\\.)*"|<.*>|[^ \]]+)'


@dataclass
class Dot:
    nodes: dict[str, str] = field(default_factory=dict)  # id -> attribute text
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (tail, head, attributes)
    clusters: dict[str, list[str]] = field(default_factory=dict)  # cluster label -> node ids

    def ops(self) -> dict[str, str]:
        """op node id -> op name (the first line of its label)."""
        return {
            node: attribute(attrs, "label").split("\\n")[0]
            for node, attrs in self.nodes.items()
            if node.startswith("op")
        }

    def tensors(self) -> dict[str, str]:
        """tensor node id -> its HTML label."""
        return {n: attribute(a, "label") for n, a in self.nodes.items() if n.startswith("t")}


def attribute(attrs: str, key: str) -> str:
    """The value of key in a DOT attribute list, unquoted ('' if absent)."""
    match = re.search(r"(?:^| )" + ATTRIBUTE.format(key=key), attrs, re.DOTALL)
    if match is None:
        return ""
    value = match.group(1)
    return value[1:-1] if value.startswith('"') else value


def parse(drawing: graphviz.Digraph) -> Dot:
    dot = Dot()
    cluster: list[str] | None = None
    for statement in drawing.body:
        if SUBGRAPH.match(statement):
            cluster = []
            continue
        if statement.strip() == "}":
            cluster = None
            continue
        if cluster is not None and "[" not in statement and "->" not in statement:
            dot.clusters[attribute(statement.strip(), "label")] = cluster  # cluster attributes
            continue
        edge = EDGE.match(statement)
        if edge:
            dot.edges.append((edge.group(1), edge.group(2), edge.group(3) or ""))
            continue
        node = NODE.match(statement)
        if node and node.group(1) not in ("graph", "node", "edge"):
            dot.nodes[node.group(1)] = node.group(2)
            if cluster is not None:
                cluster.append(node.group(1))
    return dot
