"""The seed network's drawing: exactly its ops, tensors and edges; gradients only after backward;
the same text every time."""

from __future__ import annotations

from collections import Counter

import numpy as np

import autonet as an
from autonet.cli.graph import seed_graph
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_forward, seed_gradients, seed_weights
from tests.dot_parsing import attribute, parse

# L = 0.5 * sum((sigmoid(sigmoid(S @ syn0) @ syn1) - Y) ** 2): 8 primitives.
SEED_OPS = {"matmul": 2, "sigmoid": 2, "sub": 1, "pow_scalar": 1, "sum": 1, "mul": 1}
# 5 leaves (S, syn0, syn1, Y and the constant 0.5; the exponent 2 is a param of pow_scalar, not
# an input) and one output per op.
SEED_TENSORS = 5 + 8
# Each op: one edge per input and one to its output (matmul 2+1, sigmoid 1+1, sub 2+1,
# pow_scalar 1+1, sum 1+1, mul 2+1).
SEED_EDGES = 2 * 3 + 2 * 2 + 3 + 2 + 2 + 3


def by_name(dot) -> dict[str, str]:
    """tensor name (the bold text of its label) -> node id."""
    names = {}
    for node, label in dot.tensors().items():
        if "<B>" in label:
            names[label.split("<B>")[1].split("</B>")[0]] = node
    return names


def test_seed_graph_has_exactly_its_ops_tensors_and_edges():
    dot = parse(an.draw(seed_graph()))
    assert Counter(dot.ops().values()) == SEED_OPS
    assert len(dot.tensors()) == SEED_TENSORS
    assert len(dot.nodes) == SEED_TENSORS + sum(SEED_OPS.values())
    assert len(dot.edges) == SEED_EDGES
    assert all(tail in dot.nodes and head in dot.nodes for tail, head, _ in dot.edges)


def test_seed_graph_names_its_tensors_and_orders_matmul_operands():
    dot = parse(an.draw(seed_graph()))
    names = by_name(dot)
    assert set(names) == {"S", "syn0", "syn1", "Hr", "H", "Or", "O", "Y", "L"}
    edges = {(tail, head): attribute(attrs, "label") for tail, head, attrs in dot.edges}
    ops = dot.ops()
    (first_matmul,) = [h for (t, h) in edges if t == names["S"]]
    assert ops[first_matmul] == "matmul"
    assert edges[names["S"], first_matmul] == "a" and edges[names["syn0"], first_matmul] == "b"
    assert (first_matmul, names["Hr"]) in edges
    (sub,) = [h for (t, h) in edges if t == names["Y"]]
    assert ops[sub] == "sub"
    assert edges[names["O"], sub] == "a" and edges[names["Y"], sub] == "b"
    # sigmoid has one input: no position label
    (sigmoid,) = [h for (t, h) in edges if t == names["Hr"]]
    assert ops[sigmoid] == "sigmoid" and edges[names["Hr"], sigmoid] == ""


def test_seed_graph_shows_gradients_after_backward_and_not_before():
    before = parse(an.draw(seed_graph(backward=False)))
    assert not any("grad" in label for label in before.tensors().values())

    after = parse(an.draw(seed_graph(backward=True)))
    labels = after.tensors()
    with_grad = [node for node, label in labels.items() if '"#4b5563">grad' in label]
    # every tensor that requires grad: syn0, syn1 and the 8 op outputs; not S, Y, 2, 0.5
    assert len(with_grad) == 10
    names = by_name(after)
    for constant in ("S", "Y"):
        assert "grad" not in labels[names[constant]]


def test_seed_graph_gradients_shown_are_the_tutorials_formulas():
    # The printed norms come from backward(); the reference is the tutorial's hand formulas.
    dot = parse(an.draw(seed_graph(seed=1)))
    labels, names = dot.tensors(), by_name(dot)
    w0, w1 = seed_weights(seed=1)
    grad0, grad1 = seed_gradients(XNOR_INPUTS, XNOR_TARGETS, w0, w1)
    _, O = seed_forward(XNOR_INPUTS, w0, w1)
    for name, g in [("syn0", grad0), ("syn1", grad1), ("O", O - XNOR_TARGETS)]:
        assert f"grad, norm {np.linalg.norm(g):.3g}</FONT>" in labels[names[name]]


def test_same_graph_gives_the_same_dot_text():
    assert an.draw(seed_graph()).source == an.draw(seed_graph()).source
    L = seed_graph()
    assert an.draw(L).source == an.draw(L).source
