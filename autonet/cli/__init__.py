"""The `autonet` command: one subcommand per job, each in its own module of this package.

autonet demo        train the tutorial's network and compare with its hand-derived gradients
autonet derive      print the tutorial's gradient formulas (or a deeper network's), derived
autonet verify      check the tutorial's gradient formulas on Hypothesis-drawn networks
autonet graph       draw the tutorial's network: its graph, values and gradients

Each module (demo.py, derive.py, verify.py, graph.py) has add_arguments(parser) and run(args).

A bad argument or environment gets one line on stderr, `autonet <command>: <what and what to
do>`, and a non-zero exit status: 2 for a bad argument (argparse's convention: the parser's own
errors, and a ValueError from the command), 1 for the environment (an OSError: a folder that
does not exist or cannot be written; a RuntimeError: no renderer for the format asked for).
Any other exception is a bug and shows its traceback; AUTONET_DEBUG=1 shows the traceback of
the expected ones too. `--seed`, taken by several commands, is checked here once: NumPy's seeds
are non-negative.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from typing import NoReturn

# name -> (module with add_arguments(parser) and run(args) -> exit status, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("autonet.cli.demo", "train the tutorial's network on XNOR, checked step by step"),
    "derive": ("autonet.cli.derive", "print the backward pass as matrix formulas, checked"),
    "verify": ("autonet.cli.verify", "check the tutorial's formulas vs autograd, finite diffs"),
    "graph": ("autonet.cli.graph", "draw the seed network's graph, values and gradients"),
}

# The exceptions a command raises for a bad argument or environment, and the exit status of each.
EXIT_STATUS: dict[type[Exception], int] = {ValueError: 2, OSError: 1, RuntimeError: 1}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `autonet demo: argument --lr: ...`, with a
    pointer to --help instead of the usage text (the subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)  # a ValueError here is argparse's "invalid positive_int value: 'x'"
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number greater than 0."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def one_line(error: Exception) -> str:
    """The error's message on one line; for an OSError, its reason and the path the user gave (for
    os.replace(temporary, path), the second path)."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.strerror}: {error.filename2 or error.filename}"
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="autonet",
        description="Reverse-mode autodiff for NumPy you can read, draw and check.",
        epilog="Errors print one line; AUTONET_DEBUG=1 prints their traceback too.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules, parsers = {}, {}
    for name, (module_name, summary) in COMMANDS.items():
        modules[name] = importlib.import_module(module_name)
        parsers[name] = subparsers.add_parser(name, help=summary, description=summary)
        modules[name].add_arguments(parsers[name])
    args = parser.parse_args(argv)
    if getattr(args, "seed", None) is not None and args.seed < 0:
        parsers[args.command].error(
            f"argument --seed: must be a non-negative integer (a NumPy seed), got {args.seed}"
        )
    try:
        status = int(modules[args.command].run(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe can still be handled
        return status
    except BrokenPipeError:
        # the reader of our output left early (`autonet derive | head`): not an error of ours;
        # point stdout at devnull so that the interpreter's final flush stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except tuple(EXIT_STATUS) as error:
        if os.environ.get("AUTONET_DEBUG", "") not in ("", "0"):
            raise
        print(f"autonet {args.command}: {one_line(error)}", file=sys.stderr)
        return next(status for kind, status in EXIT_STATUS.items() if isinstance(error, kind))
