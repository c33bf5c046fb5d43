"""The .html page of a graph is self-contained, holds the graph's data, and works in a browser.

The page's data and HTML are checked in Python; its behaviour (hover, module boxes, the backward
steps, search) in a real headless Chromium driven by Selenium, skipped only where no Chromium and
chromedriver are installed (`apt-get install chromium chromium-driver`; .ci/run installs them).
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autonet as an
from autonet.cli import main as cli_main
from autonet.cli.graph import seed_graph
from autonet.engine import topological_order
from autonet.viz import interactive, rendering
from autonet.viz.drawing import graph_nodes

needs_renderer = pytest.mark.skipif(
    rendering.find_renderer() is None, reason="no Graphviz renderer (dot or graphviz-pure)"
)


def backward_recording_order(loss: an.Tensor) -> list[an.Tensor]:
    """Run loss.backward() inside an.retain_grads, which makes every node keep its gradient, and
    return the nodes in the order the engine handed them their gradients (accumulate_grad)."""
    order = []
    accumulate = an.Tensor.accumulate_grad

    def recording(self, g, owned=False):
        order.append(self)
        accumulate(self, g, owned)

    an.Tensor.accumulate_grad = recording
    try:
        with an.retain_grads(loss):
            loss.backward()
    finally:
        an.Tensor.accumulate_grad = accumulate
    return order


def two_layer_graph() -> tuple[an.Tensor, dict[str, an.Tensor]]:
    """A two-layer network whose parameters are named as nn modules name them, so the drawing
    has a module box per layer; backward run inside retain_grads, so every gradient is kept.
    named["order"]: the nodes in the order backward took them."""
    rng = np.random.default_rng(0)
    x = an.tensor(rng.normal(size=(5, 3)), name="x")
    w0 = an.tensor(rng.normal(size=(3, 4)), requires_grad=True, name="layers.0.weight")
    b0 = an.tensor(rng.normal(size=4), requires_grad=True, name="layers.0.bias")
    w1 = an.tensor(rng.normal(size=(4, 2)), requires_grad=True, name="layers.1.weight")
    h = an.sigmoid(x @ w0 + b0)
    h.name = "hidden"
    out = (h @ w1).tanh()
    loss = (out * out).mean()
    loss.name = "loss"
    order = backward_recording_order(loss)
    return loss, {"x": x, "w0": w0, "b0": b0, "w1": w1, "hidden": h, "loss": loss, "order": order}


def node_ids(root: an.Tensor) -> dict[int, str]:
    return {id(t): f"t{i}" for i, t in enumerate(graph_nodes(root))}


def engine_order(root: an.Tensor, order: list[an.Tensor]) -> list[str]:
    """The drawing's ids of the nodes, in the order backward took them."""
    ids = node_ids(root)
    return [ids[id(t)] for t in order]


def decoded(values) -> np.ndarray:
    """The page's nested lists as an array, "NaN"/"Infinity"/"-Infinity" read back (float()
    reads these names)."""
    return np.array(values, dtype=object).astype(float)


def page_json(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="autonet-data">(.*?)</script>', text)
    assert found, "no data in the page"
    return json.loads(found.group(1))


class Tags(html.parser.HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


# ---------------------------------------------------------------------------------------------
# The file, without a browser.


@needs_renderer
def test_page_is_one_self_contained_file_that_parses(tmp_path):
    path = an.render(seed_graph(), tmp_path / "graph.html")
    assert path == tmp_path / "graph.html"
    assert [p.name for p in tmp_path.iterdir()] == ["graph.html"]  # no temporary file left
    text = path.read_text("utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", text, re.IGNORECASE), "the page names a URL"
    parser = Tags()
    parser.feed(text)
    parser.close()
    tags = [tag for tag, _ in parser.tags]
    assert tags.count("svg") == 1 and tags.count("script") == 2
    for tag, attrs in parser.tags:
        assert tag not in ("link", "iframe", "img", "object", "embed"), tag
        for key in ("src", "href", "xlink:href"):
            assert attrs.get(key) is None or attrs[key].startswith("#"), (tag, attrs)
    svg = text[text.index("<svg") : text.index("</svg>") + len("</svg>")]
    graph = ET.fromstring(svg)  # the embedded SVG is well-formed XML
    titles = {g.findtext("title") for g in graph.iter("g") if g.get("class") == "node"}
    assert set(page_json(text)["nodes"]) <= titles  # every tensor is drawn


@needs_renderer
def test_page_data_holds_each_tensor_and_the_engine_order():
    loss, named = two_layer_graph()
    drawing = an.draw(loss)
    assert drawing.drawn is not None
    text = interactive.page(drawing.source, *drawing.drawn)
    data = page_json(text)
    ids = node_ids(loss)
    nodes = graph_nodes(loss)
    assert list(data["nodes"]) == [ids[id(t)] for t in nodes]
    for t in nodes:
        entry = data["nodes"][ids[id(t)]]
        assert entry["name"] == t.name
        assert entry["op"] == (t.op.name if t.op else None)
        assert entry["shape"] == list(t.shape) and entry["dtype"] == str(t.dtype)
        np.testing.assert_array_equal(decoded(entry["value"]["values"]), t.data)
        if t.requires_grad:
            np.testing.assert_array_equal(decoded(entry["grad"]["values"]), t.grad.data)
        else:
            assert entry["grad"] is None and t.grad is None
    assert [step["node"] for step in data["steps"]] == engine_order(loss, named["order"])
    assert data["limit"] == interactive.ARRAY_LIMIT


# a user's primitive: x * s, differentiated in x only
SCALE_BY = an.Primitive("scale_by", lambda x, s: x * s, lambda g, out, x, s: g * s, None)
GRAPHS = {
    # broadcasting (a bias), fan-out (h used twice), a variadic op, float32 meeting float64,
    # an index, a reduction over an axis
    "bias and fan-out": lambda a, b: (an.sigmoid(a @ b + b[0]) * (a @ b)).sum(),
    "concatenate": lambda a, b: (an.concatenate([a, b.T, a * 2.0]) ** 2).sum(),
    "float32 and float64": lambda a, b: (a.astype(np.float32) @ b).tanh().sum(),
    "index and axis": lambda a, b: (a[1:, ::-1] @ b[::-1]).exp().mean(axis=0).sum(),
    # an input whose rule is None gets no gradient: b, though it requires grad, is never reached
    "an input without a rule": lambda a, b: SCALE_BY(a, b.T.sum()).sum(),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_steps_follow_the_engine_and_their_gradients_add_up_to_every_gradient(name):
    """The steps are the nodes in the order backward takes them; each sends dL/d(input) through
    one use of the input, and a tensor's gradient is the sum over its uses (the chain rule), so
    the sends add up to the .grad backward computed."""
    rng = np.random.default_rng(1)
    a = an.tensor(rng.normal(size=(3, 2)), requires_grad=True, name="a")
    b = an.tensor(rng.normal(size=(2, 3)), requires_grad=True, name="b")
    loss = GRAPHS[name](a, b)
    order = backward_recording_order(loss)
    data = interactive.page_data(loss, {})
    assert [step["node"] for step in data["steps"]] == engine_order(loss, order)
    ids = node_ids(loss)
    total = {tid: 0.0 for tid in data["nodes"]}
    for step in data["steps"]:
        for send in step["sends"]:
            total[send["to"]] = total[send["to"]] + decoded(send["grad"]["values"])
    for t in order[1:]:
        np.testing.assert_allclose(total[ids[id(t)]], t.grad.data, rtol=1e-6, atol=1e-12)
    assert len(order) >= 3


def test_steps_before_backward_list_the_order_without_gradients():
    a = an.tensor(np.ones(3), requires_grad=True, name="a")
    loss = (a * 3.0).sum()
    data = interactive.page_data(loss, {})
    sends = [send for step in data["steps"] for send in step["sends"]]
    assert sends and all(send["grad"] is None for send in sends)
    assert all(entry["grad"] is None for entry in data["nodes"].values())
    order = engine_order(loss, backward_recording_order(loss))
    assert [step["node"] for step in data["steps"]] == order


def test_a_graph_without_gradients_has_no_steps():
    assert interactive.page_data(an.tensor(np.ones(3)).sum(), {})["steps"] == []


element_dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.bool_])


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        element_dtypes,
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
        elements={"allow_subnormal": False},
    )
)
def test_arrays_are_embedded_exactly_with_their_statistics(array):
    data = json.loads(json.dumps(interactive.array_data(array), allow_nan=False))
    np.testing.assert_array_equal(decoded(data["values"]).reshape(array.shape), array.astype(float))
    finite = array.astype(float)[np.isfinite(array.astype(float))]
    assert data["size"] == array.size and data["nonfinite"] == array.size - finite.size
    if finite.size == 0:
        assert "min" not in data and "histogram" not in data
        return
    assert data["min"] == finite.min() and data["max"] == finite.max()
    assert len(data["histogram"]) == interactive.HISTOGRAM_BINS
    assert sum(data["histogram"]) == finite.size
    with np.errstate(over="ignore"):
        mean, norm = finite.mean(), np.linalg.norm(finite)
    for key, expected in (("mean", mean), ("norm", norm)):
        if np.isfinite(expected):
            assert data[key] == pytest.approx(expected, rel=1e-12)
        else:
            assert data[key] in ("Infinity", "-Infinity")


def test_arrays_above_the_limit_are_summarised_and_the_page_says_so(tmp_path):
    limit = interactive.ARRAY_LIMIT
    assert "values" in interactive.array_data(np.zeros(limit))
    x = an.tensor(np.arange(limit + 1.0), requires_grad=True, name="x")
    loss = (x * 2.0).sum()
    with an.retain_grads(loss):
        loss.backward()
    text = an.render(loss, tmp_path / "big.html").read_text("utf-8")
    assert f"Arrays of up to {limit:,} elements are embedded in full" in text
    big = page_json(text)["nodes"][node_ids(loss)[id(x)]]
    assert "values" not in big["value"] and "values" not in big["grad"]
    assert big["value"]["size"] == limit + 1 and big["value"]["max"] == limit
    assert sum(big["value"]["histogram"]) == limit + 1 and big["grad"]["min"] == 2.0


def test_an_extreme_range_gives_a_histogram_not_an_overflow():
    data = interactive.array_data(np.array([-1e308, 0.0, 1e308, np.nan]))
    assert data["histogram"][0] == 1 and data["histogram"][-1] == 1 and data["nonfinite"] == 1
    assert sum(data["histogram"]) == 3
    assert data["mean"] == "NaN" or np.isfinite(data["mean"])


def test_html_needs_a_drawing_made_by_draw(tmp_path):
    with pytest.raises(ValueError, match=r"render: an \.html page"):
        an.viz.Drawing().save(tmp_path / "graph.html")
    with pytest.raises(ValueError, match=r"render: an \.html page"):
        rendering.save(an.draw(seed_graph()).source, tmp_path / "graph.html")
    assert list(tmp_path.iterdir()) == []


def test_html_without_a_renderer_fails_clearly_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(rendering, "find_renderer", lambda: None)
    with pytest.raises(RuntimeError, match="render: no Graphviz renderer found to write SVG"):
        an.render(seed_graph(), tmp_path / "graph.html")
    assert list(tmp_path.iterdir()) == []


@needs_renderer
def test_the_graph_command_writes_the_page(tmp_path, capsys):
    assert cli_main(["graph", "--out", str(tmp_path / "seed.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    data = page_json((tmp_path / "seed.html").read_text("utf-8"))
    names = {entry["name"] for entry in data["nodes"].values()}
    assert {"syn0", "syn1", "H", "O", "L"} <= names
    assert len(data["steps"]) == len(topological_order(seed_graph()))


# ---------------------------------------------------------------------------------------------
# The page in a headless Chromium.


def find_program(*names: str) -> str | None:
    """The first of names on PATH or in /usr/bin (where Debian puts chromium, off some PATHs)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin")
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    chromium = find_program("chromium", "chromium-browser", "google-chrome")
    driver_path = find_program("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("no Chromium and chromedriver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The two-layer graph and the path of its page."""
    if rendering.find_renderer() is None:
        pytest.skip("no Graphviz renderer (dot or graphviz-pure)")
    loss, named = two_layer_graph()
    return an.render(loss, tmp_path_factory.mktemp("page") / "graph.html"), loss, named


@pytest.fixture
def opened(browser, written):
    """The two-layer graph's page, freshly loaded in the browser."""
    path, loss, named = written
    browser.get(path.as_uri())
    return browser, loss, named


def svg_node(driver, name: str):
    """The <g> of the SVG node named `name` in the DOT source (its <title>)."""
    g = driver.execute_script(
        "return [...document.querySelectorAll('#graph g.node')]"
        ".find(g => g.querySelector('title').textContent.trim() === arguments[0]) || null",
        name,
    )
    assert g is not None, f"no node {name} in the page"
    return g


def test_hovering_a_node_shows_its_name_shape_values_and_gradient(opened):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, loss, named = opened
    w0 = named["w0"]
    g = svg_node(driver, node_ids(loss)[id(w0)])
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", g)
    ActionChains(driver).move_to_element(g).perform()
    tooltip = driver.find_element(By.ID, "tooltip")
    assert tooltip.is_displayed()
    assert tooltip.find_element(By.CSS_SELECTOR, "h3.name").text == "layers.0.weight"
    assert "shape (3, 4)" in tooltip.text and "float64" in tooltip.text
    value, grad = tooltip.find_elements(By.CSS_SELECTOR, "pre.values")
    for pre, expected in ((value, w0.data), (grad, w0.grad.data)):
        shown = np.array(re.findall(r"[-+0-9.e]+", pre.get_attribute("textContent")), float)
        np.testing.assert_allclose(shown.reshape(expected.shape), expected, rtol=1e-5)
    value_stats = tooltip.find_element(By.CSS_SELECTOR, ".stats").text
    stats = {key: float(x.rstrip(",")) for key, x in re.findall(r"(\w+) (\S+)", value_stats)[1:]}
    expected = {"min": w0.data.min(), "max": w0.data.max(), "mean": w0.data.mean()}
    expected["norm"] = np.linalg.norm(w0.data)
    assert stats == pytest.approx(expected, rel=1e-5)
    histograms = driver.execute_script(
        "return [...arguments[0].querySelectorAll('svg.histogram')]"
        ".map(h => [...h.querySelectorAll('rect')].map(bar => bar.textContent))",
        tooltip,
    )
    assert len(histograms) == 2  # the value's and the gradient's
    for bars in histograms:
        assert len(bars) == 10 and sum(int(bar.split()[0]) for bar in bars) == w0.size
    ActionChains(driver).move_by_offset(0, 0).move_to_element(
        driver.find_element(By.ID, "notes")
    ).perform()
    assert not tooltip.is_displayed()


def test_clicking_a_module_box_collapses_and_expands_it(opened):
    from selenium.webdriver.common.by import By

    driver, loss, named = opened
    ids = node_ids(loss)
    cluster = next(
        c for c in driver.find_elements(By.CSS_SELECTOR, "#graph g.cluster") if "layers.0" in c.text
    )
    member = svg_node(driver, ids[id(named["w0"])])
    outsider = svg_node(driver, ids[id(named["x"])])
    label = cluster.find_element(By.TAG_NAME, "text")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
    label.click()
    assert cluster.get_attribute("data-collapsed") == "true"
    assert not member.is_displayed() and outsider.is_displayed()
    assert "hidden (click to show)" in cluster.text
    label.click()
    assert cluster.get_attribute("data-collapsed") == "false"
    assert member.is_displayed()


def test_stepping_highlights_the_nodes_in_the_engines_order(opened, tmp_path):
    from selenium.webdriver.common.by import By

    driver, loss, named = opened
    expected = engine_order(loss, named["order"])
    step_label = driver.find_element(By.ID, "step-label")
    next_button = driver.find_element(By.ID, "step-next")
    highlighted = []
    for _ in expected:
        next_button.click()
        marked, label_node = driver.execute_script(
            "return [[...document.querySelectorAll('#graph g.node.step-node > title')]"
            ".map(t => t.textContent.trim()), document.getElementById('step-label').dataset.node]"
        )
        assert len(marked) == 1 and marked[0] == label_node
        highlighted.append(marked[0])
    assert highlighted == expected
    # the first step: the loss's rule, sending dL/d(input) along each input that requires grad
    driver.find_element(By.ID, "step-slider").send_keys("\ue011")  # Home: step 0
    driver.find_element(By.ID, "step-next").click()
    assert f"the rule of {loss.op.name} runs at loss" in step_label.text
    sends = sum(parent.requires_grad for parent in loss.parents)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#graph g.edge.step-edge")) == 1 + sends
    assert len(driver.find_elements(By.CSS_SELECTOR, "#step-panel pre.values")) == 1 + sends
    driver.find_element(By.ID, "step-prev").click()
    assert step_label.get_attribute("data-node") == ""
    screenshot = tmp_path / "backward-step.png"
    driver.find_element(By.ID, "step-next").click()
    assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
    print(f"screenshot: {screenshot}")


def test_play_advances_the_steps(opened):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver, loss, named = opened
    step_label = driver.find_element(By.ID, "step-label")
    driver.find_element(By.ID, "step-slider").send_keys("\ue011")
    play = driver.find_element(By.ID, "step-play")
    play.click()
    second = engine_order(loss, named["order"])[1]
    WebDriverWait(driver, 5).until(lambda d: step_label.get_attribute("data-node") == second)
    play.click()  # pause
    assert "play" in play.text


def test_search_finds_and_highlights_a_node_by_name(opened):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, loss, named = opened
    ids = node_ids(loss)
    search = driver.find_element(By.ID, "search")
    search.clear()
    search.send_keys("hidden")
    found = driver.find_elements(By.CSS_SELECTOR, "#graph g.node.found > title")
    assert [f.get_attribute("textContent") for f in found] == [ids[id(named["hidden"])]]
    search.clear()
    search.send_keys("weight")
    result = driver.find_element(By.ID, "search-result")
    first = result.get_attribute("data-node")
    assert "1 of 2" in result.text
    search.send_keys(Keys.ENTER)
    assert {first, result.get_attribute("data-node")} == {
        ids[id(named["w0"])],
        ids[id(named["w1"])],
    }
    search.clear()
    search.send_keys("no such node")
    assert result.text == "no node found"
