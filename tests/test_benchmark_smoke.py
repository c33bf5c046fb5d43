"""The benchmark script runs end to end: the smallest size, one repeat, every workload.

Benchmarks are not tests (timings on a shared machine prove nothing); this only keeps the script
working: it must check every engine's gradients, time them, and write Markdown and JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_benchmark_script_runs_at_the_smallest_size(tmp_path):
    out = tmp_path / "results"
    completed = subprocess.run(
        [
            sys.executable,
            "benchmarks/run.py",
            "--sizes",
            "seed",
            "--repeats",
            "1",
            "--min-time",
            "0",
            "--chain-lengths",
            "10,100",
            "--mlp-layers",
            "2",
            "--mlp-width",
            "8",
            "--memory-size",
            "seed",
            "--engines",
            "hand,eager,replay",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["settings"]["engines"] == ["hand", "eager", "replay"]
    (seed,) = report["tutorial"]
    assert seed["size"] == "seed" and seed["shape"] == [4, 3, 4, 1]
    for engine in ("hand", "eager", "replay"):
        result = seed["engines"][engine]
        assert result["median_s"] > 0 and len(result["samples_s"]) == 1
        assert result["gradient_error"] <= 1e-9  # checked against seed_gradients before timing
        assert report["memory"]["engines"][engine]["peak_above_start_bytes"] >= 0
        assert report["mlp"]["engines"][engine]["median_s"] > 0
    assert [row["length"] for row in report["chain"]] == [10, 100]
    assert report["overhead"]["forward_us"] > 0
    text = out.with_suffix(".md").read_text()
    assert "| seed (4, 3, 4, 1) | float64 |" in text and "## Goals" in text
    assert text in completed.stdout


def test_benchmark_script_rejects_unknown_sizes_and_engines():
    for option, value in (("--sizes", "huge"), ("--engines", "tensorflow")):
        completed = subprocess.run(
            [sys.executable, "benchmarks/run.py", option, value],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == 2 and value in completed.stderr


def test_benchmark_script_runs_pytorch_and_hips_autograd_when_installed(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("autograd")
    out = tmp_path / "results"
    completed = subprocess.run(
        [
            sys.executable,
            "benchmarks/run.py",
            "--sizes",
            "seed",
            "--repeats",
            "1",
            "--min-time",
            "0",
            "--workloads",
            "tutorial,chain,mlp",
            "--chain-lengths",
            "10",
            "--mlp-layers",
            "2",
            "--mlp-width",
            "8",
            "--engines",
            "torch,autograd",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["settings"]["engines"] == ["hand", "torch", "autograd"]  # hand always runs
    for engine in ("torch", "autograd"):
        assert report["tutorial"][0]["engines"][engine]["gradient_error"] <= 1e-9
        assert report["mlp"]["engines"][engine]["median_s"] > 0


def test_convolution_benchmark_runs():
    """benchmarks/conv.py checks each engine's gradients against the hand-written step's."""
    completed = subprocess.run(
        [sys.executable, "benchmarks/conv.py", "--repeats", "1", "--min-time", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "| hand |" in completed.stdout and "| autonet |" in completed.stdout
