"""The `autonet` command answers a bad argument or environment in one line on stderr, `autonet
<command>: <message>`, with exit status 2 (a bad argument) or 1 (the environment), never with a
traceback; an unexpected exception still shows one. Each case runs `python -m autonet` in a
subprocess, in an empty folder, all of them at once; docs/errors.md lists the same messages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from autonet.cli import graph, main
from tests.conftest import run_env

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"

# (bad input, arguments, exit status, the one line on stderr)
CASES = [
    (
        "a drawing format autonet cannot write",
        ["graph", "--out", "x.jpg"],
        2,
        "autonet graph: argument --out: cannot tell the format of 'x.jpg' from its suffix; use one "
        "of .svg, .png, .pdf, .dot, .gv, .html (see autonet graph --help)",
    ),
    (
        "a drawing into a folder that does not exist",
        ["graph", "--out", "no/such/folder/x.svg"],
        1,
        "autonet graph: render: there is no folder 'no/such/folder' to write 'x.svg' in; create it "
        "first, or give a path in an existing folder",
    ),
    (
        "a step size of 0",
        ["demo", "--lr", "0"],
        2,
        "autonet demo: argument --lr: must be a finite number greater than 0, got 0 (see autonet "
        "demo --help)",
    ),
    (
        "a negative step size",
        ["demo", "--lr", "-1"],
        2,
        "autonet demo: argument --lr: must be a finite number greater than 0, got -1 (see autonet "
        "demo --help)",
    ),
    (
        "a step size that is not a number",
        ["demo", "--lr", "nan"],
        2,
        "autonet demo: argument --lr: must be a finite number greater than 0, got nan (see autonet "
        "demo --help)",
    ),
    (
        "no steps",
        ["demo", "--steps", "0"],
        2,
        "autonet demo: argument --steps: must be at least 1, got 0 (see autonet demo --help)",
    ),
    (
        "an output folder that cannot be created",
        ["demo", "--out", "/proc/x"],
        1,
        "autonet demo: cannot create the folder /proc/x (No such file or directory); pass --out a "
        "folder you can write in",
    ),
    (
        "no examples",
        ["verify", "--examples", "0"],
        2,
        "autonet verify: argument --examples: must be at least 1, got 0 (see autonet verify "
        "--help)",
    ),
    (
        "operands of no size",
        ["verify", "--max-side", "0"],
        2,
        "autonet verify: argument --max-side: must be at least 1, got 0 (see autonet verify "
        "--help)",
    ),
    (
        "a negative seed (demo)",
        ["demo", "--seed", "-1"],
        2,
        "autonet demo: argument --seed: must be a non-negative integer (a NumPy seed), got -1 "
        "(see autonet demo --help)",
    ),
    (
        "a negative seed (graph)",
        ["graph", "--seed", "-1"],
        2,
        "autonet graph: argument --seed: must be a non-negative integer (a NumPy seed), got -1 "
        "(see autonet graph --help)",
    ),
    (
        "a negative seed (derive)",
        ["derive", "--seed", "-1"],
        2,
        "autonet derive: argument --seed: must be a non-negative integer (a NumPy seed), got "
        "-1 (see autonet derive --help)",
    ),
    (
        "an argument that is not a number",
        ["demo", "--steps", "x"],
        2,
        "autonet demo: argument --steps: invalid positive_int value: 'x' (see autonet demo --help)",
    ),
    (
        "no command",
        [],
        2,
        "autonet: the following arguments are required: COMMAND (see autonet --help)",
    ),
]

# Cases whose message depends on the machine: (name, arguments, exit status, a regex it matches).
MACHINE_CASES = [
    (
        "PDF without the system Graphviz (dot not on PATH)",
        ["graph", "--out", "x.pdf"],
        1,
        r"autonet graph: render: PDF needs the system Graphviz `dot` .*write a \.svg or \.png "
        r"instead",
    ),
    (
        "an output folder inside a file",
        ["demo", "--out", "a-file/out"],
        1,
        r"autonet demo: cannot create the folder a-file/out \(.+\); pass --out a folder you can "
        r"write in",
    ),
]


# The cases run as `python -m autonet` in a subprocess (all at once); the others, quicker, by
# calling autonet.cli.main in this process.
IN_A_SUBPROCESS = {
    "a drawing format autonet cannot write",
    "a drawing into a folder that does not exist",
    "a step size of 0",
    "a negative step size",
    "an output folder that cannot be created",
    "no examples",
    "operands of no size",
    "a negative seed (demo)",
    "a negative seed (graph)",
    "a negative seed (derive)",
    "PDF without the system Graphviz (dot not on PATH)",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The cases of IN_A_SUBPROCESS run at once, each in a fresh empty folder, with no system
    Graphviz on PATH (the command finds graphviz-pure beside the Python that runs it)."""
    env = run_env()
    env["PATH"] = str(tmp_path_factory.mktemp("empty-path"))
    started = {}
    for name, arguments, _, _ in CASES + MACHINE_CASES:
        if name in IN_A_SUBPROCESS:
            command = [sys.executable, "-m", "autonet", *arguments]
            folder = tmp_path_factory.mktemp("case")
            pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
            started[name] = (command, subprocess.Popen(command, cwd=folder, env=env, **pipes))
    finished = {}
    for name, (command, process) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        finished[name] = subprocess.CompletedProcess(
            command, process.returncode, stdout.decode(), stderr.decode()
        )
    return finished


@pytest.fixture
def run(runs, tmp_path, monkeypatch, capsys):
    """run(name, arguments): the finished command, from a subprocess or from main() in an empty
    folder holding a file `a-file`."""

    def run_case(name: str, arguments: list[str]) -> subprocess.CompletedProcess:
        if name in IN_A_SUBPROCESS:
            return runs[name]
        monkeypatch.chdir(tmp_path)
        (tmp_path / "a-file").write_text("not a folder\n")
        try:
            status = main(arguments)
        except SystemExit as exit:  # argparse's errors exit
            status = exit.code
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(arguments, status, captured.out, captured.err)

    return run_case


def assert_one_line(result: subprocess.CompletedProcess, status: int) -> str:
    """The one line on stderr, after checking it is one line, without a traceback, and the exit
    status."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    return lines[0]


@pytest.mark.parametrize("name, arguments, status, message", CASES, ids=[c[0] for c in CASES])
def test_a_bad_argument_gets_one_line_and_an_exit_status(run, name, arguments, status, message):
    if "/proc/x" in arguments and not Path("/proc").is_dir():
        pytest.skip("/proc is Linux's")
    assert assert_one_line(run(name, arguments), status) == message


@pytest.mark.parametrize(
    "name, arguments, status, pattern", MACHINE_CASES, ids=[c[0] for c in MACHINE_CASES]
)
def test_a_bad_environment_gets_one_line_and_exit_status_1(run, name, arguments, status, pattern):
    assert re.fullmatch(pattern, assert_one_line(run(name, arguments), status))


def test_an_unexpected_error_still_shows_its_traceback(tmp_path, monkeypatch):
    """Only the expected kinds of error become one line: a bug (here a TypeError from inside the
    command) propagates, and Python prints its traceback."""

    def broken(seed: int = 1, backward: bool = True):
        raise TypeError("a bug")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(graph, "seed_graph", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["graph"])


def test_autonet_debug_shows_the_traceback_of_an_expected_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTONET_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="no folder 'missing'"):
        main(["graph", "--out", "missing/x.svg"])
    monkeypatch.setenv("AUTONET_DEBUG", "0")  # off, as when unset
    assert main(["graph", "--out", "missing/x.svg"]) == 1
    assert capsys.readouterr().err.startswith("autonet graph: render: there is no folder")


def docs_row(name: str, arguments: list[str], status: int, message: str) -> str:
    """The case's row of the command-line table in docs/errors.md."""
    command = " ".join(["autonet", *arguments])
    return f"| {name} | `{command}` | {status} | `` {message} `` |"


def test_docs_table_lists_every_case_with_its_exact_message():
    lines = DOCS.read_text().splitlines()
    for case in CASES:
        assert docs_row(*case) in lines, f"docs/errors.md: missing or stale row for {case[0]!r}"
