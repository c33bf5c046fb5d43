"""The benchmark script runs end to end: the smallest size, one repeat, every workload but the
instruction counts (valgrind takes minutes); --check's exit status follows the goals.

Benchmarks are not tests (timings on a shared machine prove nothing); this only keeps the script
working: it must check every engine's gradients, time them, and write Markdown and JSON.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_benchmark_script_runs_at_the_smallest_size(tmp_path):
    out = tmp_path / "results"
    out.with_suffix(".md").write_text("an earlier run\n")  # kept below this run's report
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
            "--digits-epochs",
            "1",
            "--engines",
            "hand,stable,eager,replay",
            "--workloads",
            "tutorial,memory,digits,chain,mlp,overhead",
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
    assert report["settings"]["engines"] == ["hand", "stable", "eager", "replay"]
    assert report["machine"]["threads"]["OPENBLAS_NUM_THREADS"] == "1"  # set by the script
    (seed,) = report["tutorial"]
    assert seed["size"] == "seed" and seed["shape"] == [4, 3, 4, 1]
    for engine in ("hand", "stable", "eager", "replay"):
        result = seed["engines"][engine]
        assert result["min_s"] <= result["median_s"] <= result["max_s"]
        assert len(result["samples_s"]) == 1
        assert result["gradient_error"] <= 1e-9  # checked against seed_gradients before timing
        assert report["memory"]["engines"][engine]["peak_above_start_bytes"] >= 0
    for engine in ("hand", "eager", "replay"):  # the stable sigmoid is the tutorial's step's only
        assert report["mlp"]["engines"][engine]["median_s"] > 0
    assert "stable" not in report["mlp"]["engines"]
    for row in report["digits"]:  # fit's weights, eager and replayed, agree before timing
        assert set(row["engines"]) == {"eager", "replay"}
        assert row["engines"]["replay"]["weight_error"] == 0
        assert row["base"] == "eager" and row["epochs"] == 1
    assert [row["model"] for row in report["digits"]] == ["mlp", "cnn"]
    assert [row["length"] for row in report["chain"]] == [10, 100]
    assert report["overhead"]["forward_us"] > 0
    text, history = out.with_suffix(".md").read_text().split("\n---\n\n")
    assert history == "an earlier run\n"
    assert "| seed (4, 3, 4, 1) | float64 |" in text and "## Goals" in text
    assert "seed: autonet eager / the tutorial's code" in text
    assert text in completed.stdout


def load_run_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # run.py imports workloads from there
    spec = importlib.util.spec_from_file_location("benchmark_run", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tutorial_report(**medians):
    """A report of the tutorial workload at the seed size with the given median times."""
    engines = {engine: {"median_s": median} for engine, median in medians.items()}
    return {"tutorial": [{"size": "seed", "engines": engines}]}


def test_check_exits_non_zero_naming_each_missed_goal_and_by_how_much(capsys, monkeypatch):
    run = load_run_module(monkeypatch)
    # eager 3.3x the tutorial's code (goal: 3.0x), replay 0.9x (<= 1.0x), PyTorch 10x
    report = tutorial_report(hand=1.0, eager=3.3, replay=0.9, torch=10.0)
    assert run.check(report) == 1
    err = capsys.readouterr().err
    assert err == (
        "1 goal(s) missed:\n"
        "  seed: autonet eager / the tutorial's code: measured 3.30x, 10% over 3.0x\n"
    )
    assert run.check(tutorial_report(hand=1.0, eager=2.9, replay=0.9, torch=10.0)) == 0
    assert capsys.readouterr().err == ""
    # replay slower than PyTorch at the seed size misses that goal too
    assert run.check(tutorial_report(hand=1.0, eager=2.9, replay=0.9, torch=0.6)) == 1
    err = capsys.readouterr().err
    assert "seed: autonet replay / PyTorch (faster): measured 1.50x, 50% over 1.0x" in err
    assert "seed: autonet eager / PyTorch: measured 4.83x, 383% over 1.0x" in err


def test_benchmark_script_rejects_unknown_sizes_and_engines():
    for option, value in (("--sizes", "huge"), ("--engines", "tensorflow"), ("--workloads", "x")):
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
    others = ["torch"] + (["autograd"] if importlib.util.find_spec("autograd") else [])
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
            "tutorial,products,digits,chain,mlp",
            "--digits-epochs",
            "1",
            "--chain-lengths",
            "10",
            "--mlp-layers",
            "2",
            "--mlp-width",
            "8",
            "--engines",
            ",".join(others),
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
    assert report["settings"]["engines"] == ["hand", *others]  # hand always runs
    for engine in others:
        assert report["tutorial"][0]["engines"][engine]["gradient_error"] <= 1e-9
        assert report["mlp"]["engines"][engine]["median_s"] > 0
    assert report["products"] == []  # matrix products are compared at medium and large only
    for row in report["digits"]:  # PyTorch's weights after the epoch agree with autonet's
        assert set(row["engines"]) == {"torch"} and row["engines"]["torch"]["weight_error"] < 1e-9


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


def test_gpu_script_without_a_gpu_says_what_is_missing_and_exits_0():
    """On a machine with no CUDA library (CI's), gpu.py measures nothing and says why; with a GPU
    it would run the table and the steps (not reachable here)."""
    pytest.importorskip("hypothesis")
    cupy = importlib.util.find_spec("cupy")
    torch = importlib.util.find_spec("torch")
    if cupy is not None or (torch is not None and __import__("torch").cuda.is_available()):
        pytest.skip("a GPU library is present: gpu.py would time real steps")
    completed = subprocess.run(
        [sys.executable, "benchmarks/gpu.py"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert "no CUDA GPU library to run on, nothing measured" in completed.stdout
    assert "cupy is not installed" in completed.stdout
