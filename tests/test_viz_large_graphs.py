"""Large and deep graphs draw within the node limit, the rest folded into one counted node."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.viz import HIGHLIGHT
from autonet.viz.labels import NONFINITE_SHAPE
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


def mlp_loss(sizes: list[int]) -> tuple[an.Tensor, list[str]]:
    """The mean squared error of an.nn.MLP(sizes) on a batch of 8, after backward (every
    gradient kept), and the names of the model's modules (layers.0, layers.2, ...)."""
    rng = np.random.default_rng(0)
    model = an.nn.MLP(sizes, rng=0)
    x = an.tensor(rng.standard_normal((8, sizes[0])), name="x")
    y = an.tensor(rng.standard_normal((8, sizes[-1])), name="y")
    L = ((model(x) - y) ** 2).mean()
    with an.retain_grads(L):
        L.backward()
    modules = list(dict.fromkeys(name.rsplit(".", 1)[0] for name, _ in model.named_parameters()))
    return L, modules


def module_nodes(dot) -> dict[str, str]:
    """collapsed module name -> node id."""
    return {
        attribute(attrs, "label").split("<B>")[1].split("</B>")[0]: node
        for node, attrs in dot.nodes.items()
        if node.startswith("m")
    }


def test_a_deep_model_collapses_by_module_and_each_module_shows_its_parameters():
    L, modules = mlp_loss([4] + [8] * 7 + [1])
    assert len(modules) == 8
    dot = parse(an.draw(L))
    boxes = module_nodes(dot)
    assert list(boxes) == modules and dot.clusters == {}
    # the modules' parameters and ops are inside their boxes, not drawn apart
    assert not any("layers." in label for label in dot.tensors().values())
    ops = Counter(dot.ops().values())
    assert ops["sigmoid"] == 8 and ops["matmul"] == 0 and ops["add"] == 0
    # a chain: each box reads one node (x or the previous sigmoid's output) and feeds one op
    for box in boxes.values():
        assert len([t for t, h, _ in dot.edges if h == box]) == 1
        assert len([h for t, h, _ in dot.edges if t == box]) == 1
    assert all(tail in dot.nodes and head in dot.nodes for tail, head, _ in dot.edges)
    # each box lists its parameters (shape, gradient norm) and its output
    label = attribute(dot.nodes[boxes[modules[3]]], "label")
    for text in ("weight", "(8, 8) float64", "bias", "(8,) float64", "out", "grad norm"):
        assert text in label


def test_modules_expand_all_none_or_chosen():
    L, modules = mlp_loss([4] + [8] * 7 + [1])
    everything = parse(an.draw(L, expand=True))
    assert list(everything.clusters) == modules and module_nodes(everything) == {}
    chosen = parse(an.draw(L, expand=[modules[2], modules[5]]))
    assert list(chosen.clusters) == [modules[2], modules[5]]
    assert list(module_nodes(chosen)) == [m for m in modules if m not in chosen.clusters]
    assert "matmul" in chosen.ops().values()
    # a small model is drawn whole by default, collapsed on request
    small, small_modules = mlp_loss([4, 8, 8, 1])
    assert list(parse(an.draw(small)).clusters) == small_modules
    collapsed = parse(an.draw(small, expand=False))
    assert collapsed.clusters == {} and list(module_nodes(collapsed)) == small_modules
    assert "matmul" not in collapsed.ops().values()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_collapsed_modules_keep_highlight_and_nan_marks():
    L, modules = mlp_loss([4] + [8] * 7 + [1])
    graph = {t.name: t for t in an.topological_order(L) if t.name}
    dot = parse(an.draw(L, highlight=graph[f"{modules[5]}.weight"]))
    boxes = module_nodes(dot)
    red = [m for m, node in boxes.items() if HIGHLIGHT in attribute(dot.nodes[node], "label")]
    assert red == modules[5:]  # the path from module 5's weight runs through the later ones
    x = an.tensor(np.ones((1, 2)), name="x")
    w = an.tensor([[1.0], [np.nan]], requires_grad=True, name="layer.weight")
    dot = parse(an.draw((x @ w).sum(), expand=False))
    (box,) = module_nodes(dot).values()
    assert attribute(dot.nodes[box], "shape") == NONFINITE_SHAPE


def svg_size(drawing: an.viz.Drawing) -> tuple[float, float]:
    """(width, height) in points of the drawing laid out by the system Graphviz `dot`."""
    svg = subprocess.run(
        ["dot", "-Tsvg"], input=drawing.source.encode(), capture_output=True, check=True
    ).stdout.decode()
    width, height = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(width), float(height)


# A screen shows about 1,000 x 700 points: a drawing may scroll along its flow, not across it
# (width for top-to-bottom, height for left-to-right); along it, a picture may take 4,320 points
# (60 inches, beyond which PNG output is scaled down to unreadable). Measured with dot 2.43: the
# tutorial 713 x 1663 (LR 2667 x 437), the 3-layer MLP 844 x 2754, the 8-layer one 468 x 2945;
# before modules collapsed and leaves sat beside their ops, 664 x 1566 (LR 3195 x 352),
# 2375 x 2552 (a staircase) and 6672 x 4952.
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs the system Graphviz `dot`")
def test_drawings_of_models_fit_a_screen_across_their_flow():
    from autonet.cli.graph import seed_graph

    tutorial_width, tutorial_height = svg_size(an.draw(seed_graph(), legend=True))
    assert tutorial_width <= 1000 and tutorial_height <= 4320
    lr_width, lr_height = svg_size(an.draw(seed_graph(), rankdir="LR", legend=True))
    assert lr_height <= 700 and lr_width <= 4320
    for sizes in ([4, 8, 8, 1], [4] + [8] * 7 + [1]):
        width, height = svg_size(an.draw(mlp_loss(sizes)[0]))
        assert width <= 1000 and height <= 4320, (sizes, width, height)
