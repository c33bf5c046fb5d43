"""`autonet demo` (run as `python -m autonet demo` in a subprocess) prints the tutorial network's
result and writes the files it names."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

import autonet as an

ROOT = Path(__file__).resolve().parent.parent


def demo(out, env, *options):
    return subprocess.run(
        [sys.executable, "-m", "autonet", "demo", "--out", str(out), *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_prints_its_result_and_writes_what_it_says(tmp_path, env):
    out = tmp_path / "demo"
    result = demo(out, env, "--steps", "2000")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "2000 steps" in text
    worst = float(re.search(r"max \|autograd - hand-derived formula\| .* = (\S+)", text)[1])
    assert worst < 1e-10
    loss = float(re.search(r"final loss .* = (\S+)", text)[1])
    assert loss < 0.05
    outputs = [float(v) for v in re.findall(r"^  \[.*\]  [01]       (\S+)$", text, re.M)]
    assert len(outputs) == 4
    written = re.findall(r"^wrote (.+)$", text, re.M)
    expected = ["graph.svg", "model.npz", "report.md"]
    svg = ElementTree.parse(out / "graph.svg").getroot()
    assert svg.tag.endswith("svg") and "matmul" in (out / "graph.svg").read_text()
    if importlib.util.find_spec("matplotlib") is not None:
        expected.append("loss_curve.png")
        assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in text
    assert sorted(written) == sorted(str(out / name) for name in expected)
    # the saved weights reproduce the printed outputs
    model = an.nn.MLP([3, 4, 1], bias=False)
    model.load_state_dict(an.load(out / "model.npz"))
    np.testing.assert_allclose(model(an.seed.XNOR_INPUTS).data[:, 0], outputs, atol=5e-5)
    report = (out / "report.md").read_text()
    for name in re.findall(r"\]\(([^)]+)\)", report):
        assert (out / name).exists(), name
    assert all(f"]({name})" in report for name in expected if name != "report.md")
    assert f"{loss:.6f}" in report


def test_demo_without_matplotlib_says_so_in_one_line_and_still_reports(
    tmp_path, env_without_matplotlib
):
    out = tmp_path / "demo"
    result = demo(out, env_without_matplotlib, "--steps", "50")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if "matplotlib is not installed" in line]
    assert len(notes) == 1
    assert not (out / "loss_curve.png").exists()
    assert (out / "model.npz").exists()
    assert "matplotlib is not installed" in (out / "report.md").read_text()


def test_demo_rejects_a_bad_step_count(tmp_path, env):
    result = demo(tmp_path, env, "--steps", "0")
    assert result.returncode == 2 and "--steps must be at least 1" in result.stderr


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path, env):
    """`autonet derive | head -0`: the command stops quietly when its reader closes the pipe."""
    with subprocess.Popen(
        [sys.executable, "-m", "autonet", "derive"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    ) as process:
        process.stdout.close()  # the reader leaves before the command writes anything
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr
