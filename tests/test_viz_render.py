"""Rendering writes valid files by suffix, atomically, with a clear error when it cannot."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import autonet as an
from autonet.cli.graph import seed_graph
from autonet.viz import rendering as viz

ROOT = Path(__file__).resolve().parent.parent
needs_renderer = pytest.mark.skipif(
    viz.find_renderer() is None, reason="no Graphviz renderer (dot or graphviz-pure) installed"
)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_renderer
def test_svg_parses_as_xml_and_contains_the_op_names(tmp_path):
    path = an.render(seed_graph(), tmp_path / "seed.svg")
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.strip() for t in root.itertext())
    for op in ("matmul", "sigmoid", "sub", "pow", "sum", "mul"):
        assert op in text
    for name in ("syn0", "syn1", "H", "O", "L"):
        assert name in text


@needs_renderer
def test_png_has_the_signature_and_a_plausible_size(tmp_path):
    path = an.render(seed_graph(), tmp_path / "seed.png")
    data = path.read_bytes()
    width, height = png_size(data)
    # 22 nodes with 4x4 matrices, values beside gradients, at 144 dpi: about 1250 x 3000 pixels.
    assert 600 < width < 4000 and 1500 < height < 8000
    assert len(data) > 50_000


@needs_renderer
def test_drawing_displays_inline_as_svg():
    bundle = an.draw(seed_graph())._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]
    assert "matmul" in bundle["image/svg+xml"]
    assert an.draw(seed_graph())._repr_mimebundle_(include=["image/png"]) == {}


def test_dot_is_written_without_any_renderer(tmp_path, monkeypatch):
    monkeypatch.setattr(viz, "find_renderer", lambda: None)
    L = seed_graph()
    path = an.render(L, tmp_path / "seed.dot")
    assert path.read_text() == an.draw(L).source
    with pytest.raises(RuntimeError, match="pip install graphviz-pure") as excinfo:
        an.render(L, tmp_path / "seed.svg")
    assert "apt install graphviz" in str(excinfo.value) and ".dot" in str(excinfo.value)
    assert not (tmp_path / "seed.svg").exists()


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf, \.dot"):
        an.render(seed_graph(), tmp_path / "seed.jpg")


def fake_program(directory: Path, name: str, script: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_system_dot_on_path_is_preferred(tmp_path, monkeypatch):
    dot = fake_program(tmp_path, "dot", 'echo "<svg>fake</svg>"')
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert viz.find_renderer() == str(dot)
    path = an.render(seed_graph(), tmp_path / "out.svg")
    assert path.read_text() == "<svg>fake</svg>\n"


def test_failed_render_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    failing = fake_program(tmp_path, "dot", 'echo "Error: syntax error in line 3" >&2; exit 1')
    monkeypatch.setattr(viz, "find_renderer", lambda: str(failing))
    out = tmp_path / "out" / "graph.svg"
    out.parent.mkdir()
    out.write_text("old picture")
    with pytest.raises(RuntimeError, match="syntax error in line 3"):
        an.render(seed_graph(), out)
    assert out.read_text() == "old picture"
    assert os.listdir(out.parent) == ["graph.svg"]


def test_pdf_with_graphviz_pure_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(viz, "find_renderer", lambda: "/opt/bin/graphviz-pure")
    with pytest.raises(RuntimeError, match="PDF needs the system Graphviz") as excinfo:
        an.render(seed_graph(), tmp_path / "seed.pdf")
    assert ".svg or .png" in str(excinfo.value)
    assert not (tmp_path / "seed.pdf").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="PDF needs the system Graphviz dot")
def test_pdf_with_system_dot(tmp_path):
    path = an.render(seed_graph(), tmp_path / "seed.pdf")
    assert path.read_bytes()[:5] == b"%PDF-"


@needs_renderer
def test_autonet_graph_command_writes_svg_and_png(tmp_path):
    for name in ("seed-graph.svg", "custom.png"):
        args = [] if name == "seed-graph.svg" else ["--out", str(tmp_path / name)]
        result = subprocess.run(
            [sys.executable, "-m", "autonet", "graph", *args],
            cwd=tmp_path if not args else ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"wrote {name}" in result.stdout or f"wrote {tmp_path / name}" in result.stdout
        data = (tmp_path / name).read_bytes()
        if name.endswith(".png"):
            png_size(data)
        else:
            assert b"matmul" in data and ET.fromstring(data).tag.endswith("svg")


def test_autonet_graph_command_writes_dot(tmp_path):
    out = tmp_path / "seed.dot"
    result = subprocess.run(
        [sys.executable, "-m", "autonet", "graph", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("digraph autonet {")
    assert out.read_text().count("label=matmul") == 2


def test_write_interrupted_before_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "graph.dot"
    out.write_text("old source")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        an.render(seed_graph(), out)
    assert out.read_text() == "old source"
    assert os.listdir(tmp_path) == ["graph.dot"]


def test_graphviz_pure_installed_with_autonet_is_found_without_path(tmp_path, monkeypatch):
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("graphviz-pure")
    except PackageNotFoundError:
        pytest.skip("graphviz-pure is not installed in this environment")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot, no graphviz-pure on PATH
    found = viz.find_renderer()
    assert found is not None and Path(found).name.startswith("graphviz-pure")
    assert an.render(seed_graph(), tmp_path / "seed.svg").read_bytes().startswith(b"<?xml")
