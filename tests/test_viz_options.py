"""draw's options: names, highlighted paths, module clusters, gradient colours, NaN marks,
values and direction; and its errors."""

from __future__ import annotations

import colorsys
import html
import os
import stat
from xml.etree import ElementTree

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.cli.graph import seed_graph
from autonet.viz import GRAD_PALETTE, HIGHLIGHT, interpolate
from autonet.viz.labels import NONFINITE_SHAPE, STYLES
from tests.dot_parsing import attribute, parse


def bold_names(dot) -> dict[str, str]:
    return {
        label.split("<B>")[1].split("</B>")[0]: node
        for node, label in dot.tensors().items()
        if "<B>" in label
    }


def test_names_from_locals_and_pairs_with_own_name_winning():
    a = an.tensor([1.0, 2.0], requires_grad=True)
    b = an.tensor([3.0, 4.0], name="weights")
    c = a * b
    _hidden = c  # names starting with "_" are skipped
    assert set(bold_names(parse(an.draw(c, names=locals())))) == {"a", "weights", "c"}
    assert set(bold_names(parse(an.draw(c, names=[("first", a), ("product", c)])))) == {
        "first",
        "weights",
        "product",
    }
    assert set(bold_names(parse(an.draw(c)))) == {"weights"}


def highlighted_edges(dot) -> list[tuple[str, str]]:
    return [(t, h) for t, h, attrs in dot.edges if attribute(attrs, "color") == HIGHLIGHT]


def test_highlight_marks_exactly_the_path_from_a_parameter_to_the_output():
    L = seed_graph()
    named = {t.name: t for t in an.topological_order(L)}
    syn0, syn1 = named["syn0"], named["syn1"]
    # syn1 -> matmul -> Or -> sigmoid -> O -> sub -> . -> pow -> . -> sum -> . -> mul -> L
    assert len(highlighted_edges(parse(an.draw(L, highlight=syn1)))) == 12
    # syn0 adds syn0 -> matmul -> Hr -> sigmoid -> H before it
    dot = parse(an.draw(L, highlight=syn0))
    path = highlighted_edges(dot)
    assert len(path) == 16
    names = bold_names(dot)
    assert all(names[n] not in {t for t, _ in path} for n in ("S", "Y", "syn1"))
    assert len(highlighted_edges(parse(an.draw(L)))) == 0


def test_highlight_of_a_tensor_outside_the_graph_is_refused():
    with pytest.raises(ValueError, match="not in the graph"):
        an.draw(seed_graph(), highlight=an.tensor([1.0], name="w"))


def two_layers():
    x = an.tensor([[1.0, 2.0]], name="x")
    W0 = an.tensor([[0.1, 0.2], [0.3, 0.4]], requires_grad=True, name="layers.0.weight")
    b0 = an.tensor([0.1, 0.2], requires_grad=True, name="layers.0.bias")
    W1 = an.tensor([[0.5], [0.6]], requires_grad=True, name="layers.1.weight")
    return (an.sigmoid(x @ W0 + b0) @ W1).sum()


def test_ops_consuming_a_modules_parameters_are_grouped_with_them():
    dot = parse(an.draw(two_layers()))
    ops, names = dot.ops(), bold_names(dot)
    assert list(dot.clusters) == ["layers.0", "layers.1"]
    first, second = dot.clusters["layers.0"], dot.clusters["layers.1"]
    assert sorted(ops[n] for n in first if n in ops) == ["add", "matmul"]
    assert sorted(ops[n] for n in second if n in ops) == ["matmul"]
    assert {names["layers.0.weight"], names["layers.0.bias"]} <= set(first)
    assert names["layers.1.weight"] in second
    # outputs go with their op; the sigmoid, the sum and the input x belong to no module
    assert all(f"t{n[2:]}" in cluster for cluster in (first, second) for n in cluster if n in ops)
    clustered = set(first) | set(second)
    assert names["x"] not in clustered
    assert not any(ops[n] in ("sigmoid", "sum") for n in clustered if n in ops)
    assert parse(an.draw(two_layers(), group=False)).clusters == {}


def sigmoid_stack(depth: int) -> tuple[an.Tensor, list[an.Tensor]]:
    """The tutorial's warning: through many sigmoids the gradient shrinks by s (1 - s) <= 1/4
    per layer."""
    x = an.tensor([0.3, -0.2], requires_grad=True, name="x")
    layers = [x]
    for _ in range(depth):
        layers.append(an.sigmoid(layers[-1] * 3.0))
    L = layers[-1].sum()
    with an.retain_grads(L):
        L.backward()
    return L, layers


def fills(dot) -> dict[str, str]:
    return {n: attribute(label, "BGCOLOR") for n, label in dot.tensors().items()}


def test_colour_by_gradient_follows_the_norm_on_a_log_scale():
    L, layers = sigmoid_stack(10)
    drawing = an.draw(L, color_by_grad=True)
    dot = parse(drawing)
    # the gradient vanishes towards x: each layer's norm is below the next one's
    norms = [float(np.linalg.norm(t.grad.data)) for t in layers]
    assert all(a < b for a, b in zip(norms[:-1], norms[1:], strict=True))
    fill = fills(dot)
    node_of = {id(t): f"t{k}" for k, t in enumerate(drawn_order(L))}
    colours = [fill[node_of[id(t)]] for t in layers]
    # the palette position of each colour (nearest of 1001 samples) rises with the norm
    samples = [interpolate(k / 1000) for k in range(1001)]
    positions = [min(range(1001), key=lambda k: distance(samples[k], c)) for c in colours]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # the smallest norm in the graph is palest, the largest reddest
    with_grad = [t for t in drawn_order(L) if t.grad is not None]
    by_norm = sorted(with_grad, key=lambda t: np.linalg.norm(t.grad.data))
    assert fill[node_of[id(by_norm[0])]] == GRAD_PALETTE[0]
    assert fill[node_of[id(by_norm[-1])]] == GRAD_PALETTE[-1]
    assert "grad norm" in drawing.source  # the scale is drawn under the graph
    assert "grad norm" not in an.draw(L).source


def drawn_order(L):
    from autonet.viz import graph_nodes

    return graph_nodes(L)


def distance(a: str, b: str) -> int:
    return sum(abs(int(a[i : i + 2], 16) - int(b[i : i + 2], 16)) for i in (1, 3, 5))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nan_and_inf_are_marked():
    x = an.tensor([1.0, -1.0, 0.0], requires_grad=True, name="x")
    y = an.log(x)  # [0, nan, -inf]
    L = y.sum()
    dot = parse(an.draw(L, names={"y": y}))
    label = bold_names_labels(dot)["y"]
    nan_fill, _ = STYLES["nonfinite"]
    assert "1 nan, 1 inf" in label and f'BGCOLOR="{nan_fill}"' in label
    assert attribute(dot.nodes[bold_names(dot)["y"]], "shape") == NONFINITE_SHAPE
    x_label = bold_names_labels(parse(an.draw(L)))["x"]
    assert "nan" not in x_label and 'BGCOLOR="#dbeafe"' in x_label


def rgb_distance(a: str, b: str) -> int:
    return sum(abs(int(a[i : i + 2], 16) - int(b[i : i + 2], 16)) for i in (1, 3, 5))


def test_no_colour_of_the_gradient_scale_is_near_the_nan_colour():
    # The scale's top was the salmon red of NaN: a healthy parameter drew redder than a NaN.
    nan_fill, nan_border = STYLES["nonfinite"]
    scale = [interpolate(k / 1000) for k in range(1001)]
    assert min(rgb_distance(nan_fill, colour) for colour in scale) >= 60
    # and none is red: every saturated colour of the scale is at least 20 degrees of hue from
    # red (0 degrees), as NaN's fill is red
    for colour in scale:
        hue, _, saturation = colorsys.rgb_to_hls(
            *(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        )
        assert saturation < 0.2 or 20 <= hue * 360 <= 340, colour
    hue, _, saturation = colorsys.rgb_to_hls(
        *(int(nan_fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    )
    assert saturation > 0.2 and (hue * 360 < 10 or hue * 360 > 350)
    assert nan_border not in scale


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(-300, 300), min_size=1, max_size=6),
    st.integers(0, len(GRAD_PALETTE)),
)
def test_no_finite_gradient_gets_the_nan_colour_or_shape(exponents, nan_at):
    """Gradients of any magnitude (1e-300 to 1e300) fill their nodes with the scale's colours,
    never NaN's; the only octagon, in NaN's red, is the node holding a NaN."""
    ws = [an.tensor([1.0, -1.0], requires_grad=True, name=f"w{k}") for k in range(len(exponents))]
    terms = [(w * 10.0**e).sum() for w, e in zip(ws, exponents, strict=True)]
    broken = nan_at < len(terms)
    if broken:
        terms[nan_at] = terms[nan_at] * np.nan
    L = terms[0]
    for term in terms[1:]:
        L = L + term
    with an.retain_grads(L):
        L.backward()
    dot = parse(an.draw(L, color_by_grad=True))
    nan_fill, _ = STYLES["nonfinite"]
    for node, attrs in dot.nodes.items():
        if not node.startswith("t"):
            continue
        label = attribute(attrs, "label")
        tensor_is_finite = "nan, " not in label
        is_octagon = attribute(attrs, "shape") == NONFINITE_SHAPE
        assert is_octagon == (not tensor_is_finite)
        assert (f'BGCOLOR="{nan_fill}"' in label) == (not tensor_is_finite)
    octagons = [n for n, a in dot.nodes.items() if attribute(a, "shape") == NONFINITE_SHAPE]
    assert bool(octagons) == broken


def bold_names_labels(dot) -> dict[str, str]:
    labels = dot.tensors()
    return {name: labels[node] for name, node in bold_names(dot).items()}


def test_values_are_shown_when_small_and_summarised_when_large():
    small = an.tensor([[0.12345, 2.0]], requires_grad=True, name="small")
    large = an.tensor(np.arange(20.0).reshape(4, 5), requires_grad=True, name="large")
    L = (small.sum() + large.sum()) * 1.0
    labels = bold_names_labels(parse(an.draw(L)))
    assert "[[0.123     2]]" in labels["small"]
    assert "values in [0, 19], mean 9.5" in labels["large"]
    hidden = bold_names_labels(parse(an.draw(L, show_values=False)))
    assert "0.123" not in hidden["small"] and "values in" not in hidden["large"]


def test_title_and_legend_are_drawn_when_asked():
    L = seed_graph()
    plain = an.draw(L).source
    drawing = an.draw(L, title="The seed network\nafter one step", legend=True).source
    assert "The seed network<BR/>after one step" in drawing and "seed network" not in plain
    kinds = ("parameter", "input or constant", "output", "module (collapsed)", "op (primitive)")
    for kind in (*kinds, "NaN or inf (octagon)"):
        assert f">{kind}</TD>" in drawing and f">{kind}</TD>" not in plain


def test_gradients_can_be_hidden_and_direction_set():
    L = seed_graph()
    assert '"#4b5563">grad' in an.draw(L).source
    assert '"#4b5563">grad' not in an.draw(L, show_grads=False).source
    assert "rankdir=LR" in an.draw(L, rankdir="LR").source


def test_op_parameters_are_shown():
    x = an.tensor(np.ones((2, 3)), requires_grad=True)
    labels = list(parse(an.draw(x.sum(axis=1))).ops().values())
    assert labels == ["sum"]
    assert "axis=1" in an.draw(x.sum(axis=1)).source


def test_bad_arguments_are_refused():
    L = seed_graph(backward=False)
    with pytest.raises(TypeError, match="draw: expected an autonet Tensor"):
        an.draw(np.ones(3))
    with pytest.raises(ValueError, match="rankdir"):
        an.draw(L, rankdir="up")
    with pytest.raises(ValueError, match="max_nodes=2 is too small"):
        an.draw(L, max_nodes=2)


def test_named_results_say_how_they_were_computed():
    # Hr and Or (the tutorial's pre-activations) are explained by the formula that made them
    labels = bold_names_labels(parse(an.draw(seed_graph())))
    assert "<B>Hr</B> = S · syn0" in labels["Hr"]
    assert "<B>H</B> = σ(Hr)" in labels["H"]
    assert "<B>Or</B> = H · syn1" in labels["Or"]
    assert "<B>O</B> = σ(Or)" in labels["O"]
    # no formula for a leaf, nor for an operand without a name
    assert "=" not in labels["syn0"].split("</B>")[1].split("<FONT")[0]
    assert "<B>L</B> <FONT" in labels["L"]  # 0.5 * (unnamed sum)


def test_leaves_sit_beside_an_op_that_reads_a_computed_value():
    dot = parse(an.draw(seed_graph()))
    names = bold_names(dot)
    minlen = {(tail, head): attribute(attrs, "minlen") for tail, head, attrs in dot.edges}
    into = {tail: head for tail, head in minlen}
    # syn1 meets H (computed) at the second matmul, Y meets O at sub: same rank as the op
    assert minlen[names["syn1"], into[names["syn1"]]] == "0"
    assert minlen[names["Y"], into[names["Y"]]] == "0"
    # S and syn0 meet only each other: above their matmul, as inputs
    assert minlen[names["S"], into[names["S"]]] == ""
    assert minlen[names["syn0"], into[names["syn0"]]] == ""


def test_gradient_is_beside_the_values_top_down_and_under_them_left_to_right():
    for rankdir, rows in [("TB", 2), ("BT", 2), ("LR", 3), ("RL", 3)]:
        label = bold_names_labels(parse(an.draw(seed_graph(), rankdir=rankdir)))["syn1"]
        assert label.count("<TR>") == rows, rankdir


def test_drawings_and_tensors_display_in_notebooks():
    L = seed_graph()
    bundle = an.draw(L)._repr_mimebundle_()
    assert ElementTree.fromstring(bundle["image/svg+xml"]).tag.endswith("svg")
    page = L._repr_html_()
    assert page.startswith(f"<pre>{html.escape(repr(L))}</pre><svg")
    root = ElementTree.fromstring(f"<div>{page}</div>")  # well-formed: one <pre>, one <svg>
    assert [child.tag for child in root] == ["pre", "svg"]
    assert "syn0" in page  # the graph is drawn
    # a leaf has no graph to draw: its repr only; repr and str stay text
    leaf = an.tensor([1.0, 2.0], requires_grad=True)
    assert leaf._repr_html_() == f"<pre>{html.escape(repr(leaf))}</pre>"
    assert repr(L).startswith("tensor(") and "<" not in repr(L)


def test_notebook_display_says_how_to_install_a_renderer_when_there_is_none(monkeypatch):
    import autonet.viz.rendering

    monkeypatch.setattr(autonet.viz.rendering, "find_renderer", lambda: None)
    L = seed_graph()
    bundle = an.draw(L)._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]
    assert "draw: no Graphviz renderer found" in bundle["text/plain"]
    assert "drawing.source" in bundle["text/plain"]
    page = L._repr_html_()
    assert page.startswith(f"<pre>{html.escape(repr(L))}</pre><p>display: no Graphviz renderer")
    assert "apt install graphviz" in page


@pytest.mark.parametrize(("umask", "suffix"), [(0o022, ".dot"), (0o077, ".dot"), (0o002, ".svg")])
def test_written_pictures_respect_the_umask(tmp_path, umask, suffix):
    previous = os.umask(umask)
    try:
        path = an.render(seed_graph(), tmp_path / f"graph{suffix}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
