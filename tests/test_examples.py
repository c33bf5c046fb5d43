"""Every script in examples/ runs (in quick mode, in a subprocess) and prints what it claims."""

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import autonet as an
from autonet.datasets import load_digits
from autonet.viz import find_renderer

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def assert_plotted(folder, *names):
    """Each PNG was written, or (matplotlib absent) none was."""
    for name in names:
        if HAS_MATPLOTLIB:
            assert (folder / name).read_bytes()[:8] == PNG, name
        else:
            assert not (folder / name).exists(), name


def run_example(name, out, env):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_perceptron_conjunction_reproduces_the_tutorials_values(tmp_path, env):
    text = run_example("perceptron_conjunction.py", tmp_path, env)
    values = re.findall(r"f\(s1\.\.s4\) = (.+)", text)
    # corrected matrix with sign(0) = -1; with NumPy's sign(0) = 0; the misprinted matrix
    assert values == ["-1, -1, -1, 1", "0, -1, 0, 1", "-1, -1, -1, 1"]
    misprint = text.split("as printed")[1]
    assert "s2 = [0. 2.]:  p1 = +1" in misprint  # x1 + x2 - 1 = 1 at s2, where x1 - 1 = -1
    assert_plotted(tmp_path, "perceptron_regions.png")


def test_seed_network_agrees_with_the_hand_formulas(tmp_path, env):
    text = run_example("seed_network.py", tmp_path, env)
    worst = float(re.search(r"max \|autograd - hand formulas\| over all steps: (\S+)", text)[1])
    assert worst <= 1e-10
    assert_plotted(tmp_path, "seed_network_loss.png")


def test_vanishing_gradients_shows_sigmoid_vanishing_and_the_fixes_not(tmp_path, env):
    text = run_example("vanishing_gradients.py", tmp_path, env)
    factors = dict(
        re.findall(r"^(.+): depth 2 -> 10 changes \|dL/dW_1\| by a factor (\S+)$", text, re.M)
    )
    factors = {kind: float(value) for kind, value in factors.items()}
    assert factors["sigmoid"] < 1e-3  # 8 more sigmoid layers: each multiplies by <= 1/4 and W
    assert factors["relu"] > 0.1 and factors["residual sigmoid"] > 0.1
    assert_plotted(tmp_path, "vanishing_gradients.png", "vanishing_by_layer.png")


def test_beyond_the_seed_prints_one_row_per_question(tmp_path, env):
    text = run_example("beyond_the_seed.py", tmp_path, env)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 10  # header and ten recipes
    accuracies = [float(row.split("|")[4]) for row in rows[1:]]
    assert all(0 <= a <= 1 for a in accuracies)
    assert (tmp_path / "beyond_the_seed.md").read_text().count("\n") == 12


def test_digits_cnn_learns_and_its_checkpoint_reproduces_its_accuracy(tmp_path, env, monkeypatch):
    text = run_example("digits_cnn.py", tmp_path, env)
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    accuracy = {row[0].split(":")[0].strip(): row[4].strip() for row in rows[1:]}
    assert set(accuracy) == {"CNN", "MLP"}
    # chance is 0.1; 3 quick epochs reach about 0.95
    assert float(accuracy["CNN"]) > 0.8 and float(accuracy["MLP"]) > 0.8
    assert "identical logits on the 360 test images: True" in text
    assert "one more epoch of the trained and of the resumed model: identical weights: True" in text
    # the checkpoint, loaded here into a fresh model, scores what the example printed
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    example = importlib.import_module("digits_cnn")
    model = example.DigitsCNN(rng=1)
    model.load_state_dict(an.load(tmp_path / "digits_cnn.npz")["model"])
    images, y = load_digits(return_images=True)
    test = np.random.default_rng(example.SEED).permutation(len(y))[: example.N_TEST]
    predictions = example.predict(model, images[test, None] / 16.0).argmax(axis=1)
    assert f"{(predictions == y[test]).mean():.3f}" == accuracy["CNN"]
    dot = (tmp_path / "digits_cnn_graph.dot").read_text()
    assert "conv2d" in dot and "max_pool2d" in dot and "cluster" in dot
    assert (tmp_path / "digits_cnn_graph.svg").exists() == (find_renderer() is not None)


def test_examples_without_matplotlib_skip_plots_with_a_one_line_note(
    tmp_path, env_without_matplotlib
):
    for name in ["perceptron_conjunction.py", "seed_network.py", "vanishing_gradients.py"]:
        text = run_example(name, tmp_path, env_without_matplotlib)
        notes = [line for line in text.splitlines() if "matplotlib is not installed" in line]
        assert len(notes) == 1, name
    assert not list(tmp_path.glob("*.png"))


def test_other_arrays_trains_the_same_weights_on_every_library(tmp_path, env):
    text = run_example("other_arrays.py", tmp_path, env)
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    results = {row[0].strip(): (float(row[2]), float(row[3])) for row in rows[1:]}
    assert "numpy" in results and "array_api_strict" in results  # a test dependency
    accuracies = {accuracy for accuracy, _ in results.values()}
    assert len(accuracies) == 1 and accuracies.pop() > 0.5  # chance is 0.1
    assert all(difference < 1e-12 for _, difference in results.values())
