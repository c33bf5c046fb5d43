"""Large and deep graphs draw within the node limit, the rest folded into one counted node."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from tests.dot_parsing import attribute, parse


def mlp_stack(layers: int) -> an.Tensor:
    """h = tanh(h @ W_i) for `layers` layers: 5 nodes per layer (W_i, matmul and its output,
    tanh and its output), plus the input x."""
    rng = np.random.default_rng(0)
    h = an.tensor(rng.standard_normal((2, 3)), name="x")
    for i in range(layers):
        W = an.tensor(rng.standard_normal((3, 3)) / 2, requires_grad=True, name=f"W{i}")
        h = an.tanh(h @ W)
    return h.sum()


def folded_counts(dot) -> tuple[int, int]:
    """(ops, leaves) that the summary node says it holds."""
    label = attribute(dot.nodes["rest"], "label")
    match = re.match(r"([\d,]+) more ops and ([\d,]+) more leaves", label)
    assert match, label
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


def test_two_thousand_node_graph_is_drawn_within_the_limit_and_counted():
    root = mlp_stack(400)  # 400 * 5 + x + sum's 2 nodes = 2,003 nodes
    dot = parse(an.draw(root, max_nodes=150))
    assert len(dot.nodes) <= 150
    ops, leaves = folded_counts(dot)
    shown_ops = len(dot.ops())
    shown_leaves = sum(1 for n in dot.tensors() if f"op{n[1:]}" not in dot.nodes)
    assert shown_ops + ops == 801 and shown_leaves + leaves == 401
    # readable: the output end is drawn, the summary says what was folded and how to see more
    label = attribute(dot.nodes["rest"], "label")
    assert "matmul x" in label and "tanh x" in label and "max_nodes=150" in label
    assert "sum" in dot.ops().values()
    assert all(tail in dot.nodes and head in dot.nodes for tail, head, _ in dot.edges)
    assert any(tail == "rest" for tail, _, _ in dot.edges)


def test_hundred_thousand_op_chain_draws_collapsed():
    x = an.tensor([0.5], requires_grad=True, name="x")
    y = x
    for _ in range(100_000):
        y = -y
    dot = parse(an.draw(y, max_nodes=40))
    assert len(dot.nodes) <= 40
    ops, leaves = folded_counts(dot)
    assert ops + len(dot.ops()) == 100_000 and leaves == 1
    assert "neg x" in attribute(dot.nodes["rest"], "label")


@st.composite
def random_graphs(draw):
    """A graph of random unary and binary ops over a pool of tensors, some constants."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pool = [an.tensor(rng.standard_normal(2), requires_grad=bool(k % 2)) for k in range(3)]
    pool[1].requires_grad = True
    for _ in range(draw(st.integers(1, 40))):
        a, b = (pool[i] for i in rng.integers(0, len(pool), 2))
        kind = draw(st.sampled_from(["add", "mul", "sub", "tanh", "neg"]))
        if kind in ("tanh", "neg"):
            pool.append(an.tanh(a) if kind == "tanh" else -a)
        else:
            pool.append({"add": a + b, "mul": a * b, "sub": a - b}[kind])
    root = pool[-1]
    if not root.requires_grad:
        root = root + pool[1]
    return root


@settings(max_examples=40, deadline=None)
@given(random_graphs(), st.integers(3, 60))
def test_any_graph_draws_within_any_limit_and_accounts_for_every_node(root, max_nodes):
    full = parse(an.draw(root, max_nodes=10**6))
    dot = parse(an.draw(root, max_nodes=max_nodes))
    assert len(dot.nodes) <= max_nodes
    assert all(tail in dot.nodes and head in dot.nodes for tail, head, _ in dot.edges)
    if len(full.nodes) <= max_nodes:
        assert dot.nodes == full.nodes and "rest" not in dot.nodes
    else:
        ops, leaves = folded_counts(dot)
        assert ops + len(dot.ops()) == len(full.ops())
        assert ops + leaves + len(dot.tensors()) == len(full.tensors())
        # the output and its op are always drawn
        (root_id,) = [n for n, attrs in full.nodes.items() if 'BORDER="2"' in attrs]
        assert root_id in dot.nodes
    assert an.draw(root, max_nodes=max_nodes).source == an.draw(root, max_nodes=max_nodes).source
