"""Every script in examples/ runs (in quick mode, in a subprocess) and prints what it claims."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    pytest.importorskip("sklearn")
    text = run_example("beyond_the_seed.py", tmp_path, env)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 10  # header and ten recipes
    accuracies = [float(row.split("|")[4]) for row in rows[1:]]
    assert all(0 <= a <= 1 for a in accuracies)
    assert (tmp_path / "beyond_the_seed.md").read_text().count("\n") == 12


def test_examples_without_matplotlib_skip_plots_with_a_one_line_note(
    tmp_path, env_without_matplotlib
):
    for name in ["perceptron_conjunction.py", "seed_network.py", "vanishing_gradients.py"]:
        text = run_example(name, tmp_path, env_without_matplotlib)
        notes = [line for line in text.splitlines() if "matplotlib is not installed" in line]
        assert len(notes) == 1, name
    assert not list(tmp_path.glob("*.png"))
