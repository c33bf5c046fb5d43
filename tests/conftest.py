"""Fixtures shared by the tests: the environment of scripts and the CLI run in a subprocess, and
thread switching for the tests of concurrent backward passes."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_env(extra_path: Path | None = None) -> dict[str, str]:
    """The environment for a subprocess that imports this checkout's autonet (and, if given,
    modules from extra_path first)."""
    env = dict(os.environ)
    paths = ([str(extra_path)] if extra_path else []) + [str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("AUTONET_QUICK", None)
    return env


@pytest.fixture
def env() -> dict[str, str]:
    return run_env()


@pytest.fixture
def env_without_matplotlib(tmp_path_factory) -> dict[str, str]:
    """An environment in which `import matplotlib` fails, as on a machine without the extra."""
    stubs = tmp_path_factory.mktemp("no_matplotlib")
    (stubs / "matplotlib").mkdir()
    (stubs / "matplotlib" / "__init__.py").write_text(
        "raise ImportError('matplotlib is hidden for this test')\n"
    )
    return run_env(stubs)


@pytest.fixture
def frequent_switches():
    """Make the interpreter switch threads every microsecond, so the threads really interleave."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)
