"""The README's Python examples run as written, in order, in one namespace (later examples reuse
the tensors of the first), so the documentation cannot rot silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 5


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the examples write files (xnor.npz, graph.svg)
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(python_blocks(), start=1):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"README python block {number} failed: {exc!r}\n{block}")
        for name, value in list(namespace.items()):
            if name.startswith("test_") and callable(value):
                value()  # a test the README shows (test_my_derivation.py) passes as shown
                del namespace[name]
    assert (tmp_path / "xnor.npz").exists() and (tmp_path / "graph.svg").exists()
    assert "∂L/∂syn1 = H^T · δ_O" in capsys.readouterr().out  # the derive example's print
