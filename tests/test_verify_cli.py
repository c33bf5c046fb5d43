"""`autonet verify`: exits 0 on the tutorial's formulas, 1 with --show-wrong --strict, and prints
the table and the minimal counterexample."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from autonet.cli import verify

ROOT = Path(__file__).resolve().parent.parent


def autonet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autonet", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verify_passes_on_the_tutorials_formulas():
    result = autonet("verify", "--examples", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.startswith(("grad0", "grad1"))]
    assert len(rows) == 2
    for row in rows:
        assert row.split()[-1] == "ok"
        assert " 20 " in row  # examples tried
    assert "wrong on purpose" not in result.stdout


def test_show_wrong_catches_the_dropped_factor_with_a_minimal_counterexample():
    result = autonet("verify", "--examples", "50", "--show-wrong")
    assert result.returncode == 0, result.stdout + result.stderr  # the real formulas pass
    assert "grad0 without H*(1-H)  (wrong on purpose)" in result.stdout
    assert "caught (as it should be)" in result.stdout
    assert "Minimal counterexample (shrunk by Hypothesis" in result.stdout
    assert "syn1 = [[1.]]" in result.stdout
    assert "the derived gradient is the odd one out" in result.stdout


def test_strict_makes_the_caught_wrong_formula_an_error():
    result = autonet("verify", "--examples", "50", "--show-wrong", "--strict")
    assert result.returncode == 1
    assert "caught (as it should be)" in result.stdout


def test_a_failing_check_of_a_real_formula_exits_1(monkeypatch, capsys):
    formula, wrong, weight, _ = verify.CHECKS[2]
    monkeypatch.setattr(verify, "CHECKS", [(formula, wrong, weight, True)])
    args = argparse.Namespace(examples=50, max_side=4, show_wrong=False, strict=True)
    assert verify.run(args) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "A formula of the tutorial failed its check." in out


def test_verify_leaves_nothing_in_the_current_folder(tmp_path, env):
    """Hypothesis keeps its database and a cache of constants in ./.hypothesis by default (even
    with database=None; a run of 2 examples writes it); the command's run keeps them in a
    temporary folder, removed afterwards."""
    result = subprocess.run(
        [sys.executable, "-m", "autonet", "verify", "--examples", "2", "--max-side", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []
