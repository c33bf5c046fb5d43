"""`autonet demo` (run as `python -m autonet demo` in a subprocess) prints the tutorial network's
result and writes the files it names."""

import base64
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
    assert f"{loss:.6f}" in report
    # the report is whole on its own: its pictures are embedded, it links to no file beside it
    targets = re.findall(r"\]\(([^)]*)\)", report) + re.findall(
        r"(?:src|href)=\"?([^\" >]*)", report
    )
    assert targets and all(target.startswith("data:") for target in targets), targets
    embedded = dict(re.findall(r"\]\(data:([a-z/+]+);base64,([A-Za-z0-9+/=]+)\)", report))
    assert base64.b64decode(embedded["image/svg+xml"]) == (out / "graph.svg").read_bytes()
    if "loss_curve.png" in expected:
        assert base64.b64decode(embedded["image/png"]) == (out / "loss_curve.png").read_bytes()
    assert len(embedded) == len(targets) == len(expected) - 2  # the pictures: not npz, not md


def test_demo_without_matplotlib_says_so_in_one_line_and_still_reports(
    tmp_path, env_without_matplotlib
):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "loss_curve.png").write_bytes(b"a curve of an earlier run")
    result = demo(out, env_without_matplotlib, "--steps", "50")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if "matplotlib is not installed" in line]
    assert len(notes) == 1
    assert (out / "loss_curve.png").read_bytes() == b"a curve of an earlier run"  # not written
    assert (out / "model.npz").exists()
    report = (out / "report.md").read_text()
    assert "matplotlib is not installed" in report and "`loss_curve.png`" not in report
    svg = base64.b64encode((out / "graph.svg").read_bytes()).decode()
    assert re.findall(r"\]\(([^)]*)\)", report) == [f"data:image/svg+xml;base64,{svg}"]


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
