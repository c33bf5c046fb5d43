"""Writing a drawing: DOT source laid out and rendered to SVG, PNG or PDF, or written as DOT; or
an interactive HTML page (interactive.py) for a drawing made by draw(), which knows its tensors.

Rendering runs the system Graphviz `dot` when it is on PATH, else `graphviz-pure` (a pip package,
installed with autonet: a self-contained port of dot that writes SVG and PNG, not PDF). Files are
written whole or not at all. Nothing here knows about tensors: drawing.py builds the DOT source.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import graphviz

FORMATS = {
    ".svg": "svg",
    ".png": "png",
    ".pdf": "pdf",
    ".dot": "dot",
    ".gv": "dot",
    ".html": "html",
}
# PNG: 144 dpi is sharp on high-density screens and in print (the renderers default to 72 or 96);
# a drawing larger than 60 x 60 inches (8640 pixels a side) is scaled down to fit, since bitmaps
# of large graphs take minutes and gigabytes (graphviz-pure aborts on them). Use SVG for those.
PNG_OPTIONS = ["-Gdpi=144", "-Gsize=60,60"]


class Drawing(graphviz.Digraph):
    """A graphviz.Digraph that renders with autonet's renderer (system `dot`, else graphviz-pure).

    Everything graphviz.Digraph does works (`.source`, `.node()`, `.attr()`, ...); `save(path)`
    writes it by the suffix as `render` does, and Jupyter shows it inline as SVG even where no
    system Graphviz is installed (graphviz.Digraph's own `.render()` and `.pipe()` need `dot`).
    """

    # (the tensor drawn, id -> the name shown), set by draw(): an .html page shows the tensors'
    # values and gradients, which the DOT source does not hold. None for a Drawing made by hand.
    drawn: tuple[Any, dict[int, str]] | None = None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the drawing to path: .svg, .png, .pdf (system dot only), .dot, or .html (an
        interactive page; a drawing made by an.draw only), atomically."""
        path = Path(path)
        if path.suffix.lower() != ".html" or self.drawn is None:
            return save(self.source, path)
        # imported here: interactive.py imports drawing.py, which imports this module
        from autonet.viz.interactive import page

        write_atomically(path, page(self.source, *self.drawn).encode("utf-8"))
        return path

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, Any]:
        wanted = {"image/svg+xml"} if include is None else set(include)
        wanted -= set(exclude or ())
        if "image/svg+xml" not in wanted:
            return {}
        try:
            svg = layout(self.source, "svg", "draw").decode("utf-8")
        except RuntimeError as error:  # no renderer: Jupyter shows why, not a traceback
            return {"text/plain": f"{error}\n(the DOT source is in drawing.source)"}
        return {"image/svg+xml": svg}


def save(source: str, path: str | os.PathLike[str]) -> Path:
    """Write DOT source to path, laid out and rendered by the suffix (see `autonet.viz.render`)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"render: cannot tell the format of {str(path)!r} from its suffix; use one of "
            + ", ".join(FORMATS)
        )
    if fmt == "html":
        raise ValueError(
            f"render: an .html page ({str(path)!r}) shows the tensors' values and gradients, "
            "which DOT source lacks; save a drawing made by an.draw (an.render(root, path) or "
            "an.draw(root).save(path)), or write .svg"
        )
    data = source.encode("utf-8") if fmt == "dot" else layout(source, fmt, "render")
    write_atomically(path, data)
    return path


def find_renderer() -> str | None:
    """The program that lays out DOT: the system Graphviz `dot` if on PATH, else graphviz-pure.

    graphviz-pure is looked for first in the running Python's own environment (where installing
    autonet put it; found even when that environment is not activated), then on PATH.
    """
    places = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable), None]
    for program, directory in [("dot", None)] + [("graphviz-pure", d) for d in places]:
        found = shutil.which(program, path=directory)
        if found:
            return found
    return None


def layout(source: str, fmt: str, caller: str) -> bytes:
    """DOT source laid out and rendered to fmt ("svg", "png" or "pdf") by `find_renderer()`."""
    program = find_renderer()
    if program is None:
        raise RuntimeError(
            f"{caller}: no Graphviz renderer found to write {fmt.upper()}: install graphviz-pure "
            "(`pip install graphviz-pure`: SVG and PNG) or the system Graphviz (`apt install "
            "graphviz`, `brew install graphviz` or `conda install graphviz`: also PDF); or write "
            "the DOT source with a .dot path, or drawing.source"
        )
    if fmt == "pdf" and Path(program).name.startswith("graphviz-pure"):
        raise RuntimeError(
            f"{caller}: PDF needs the system Graphviz `dot` (`apt install graphviz`, `brew "
            "install graphviz` or `conda install graphviz`); graphviz-pure, the renderer found "
            f"({program}), writes SVG and PNG only: write a .svg or .png instead"
        )
    command = [program, f"-T{fmt}"] + (PNG_OPTIONS if fmt == "png" else [])
    result = subprocess.run(command, input=source.encode("utf-8"), capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(
            f"{caller}: {program} -T{fmt} failed (exit {result.returncode}): {message}"
        )
    return result.stdout


def write_atomically(path: Path, data: bytes, caller: str = "render") -> None:
    """Write data to path through a temporary file in the same directory and os.replace, so a
    reader never sees half a file and a failure leaves any old file as it was."""
    if not path.parent.is_dir():  # say so here: os.open would name the temporary file
        raise FileNotFoundError(
            f"{caller}: there is no folder {str(path.parent)!r} to write {path.name!r} in; "
            "create it first, or give a path in an existing folder"
        )
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        # 0o666 less the umask: the permissions an ordinary open() would give.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
