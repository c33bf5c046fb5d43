"""The `autonet` command: one subcommand per job, each in its own module of this package.

autonet demo        train the tutorial's network and compare with its hand-derived gradients
autonet derive      print the tutorial's gradient formulas (or a deeper network's), derived
autonet verify      check the tutorial's gradient formulas on Hypothesis-drawn networks
autonet graph       draw the tutorial's network: its graph, values and gradients

Each module (demo.py, derive.py, verify.py, graph.py) has add_arguments(parser) and run(args).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module with add_arguments(parser) and run(args) -> exit status, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("autonet.cli.demo", "train the tutorial's network on XNOR, checked step by step"),
    "derive": ("autonet.cli.derive", "print the backward pass as matrix formulas, checked"),
    "verify": ("autonet.cli.verify", "check the tutorial's formulas vs autograd, finite diffs"),
    "graph": ("autonet.cli.graph", "draw the seed network's graph, values and gradients"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="autonet", description="Reverse-mode autodiff for NumPy you can read, draw and check."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = {}
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        module.add_arguments(subparsers.add_parser(name, help=summary, description=summary))
    args = parser.parse_args(argv)
    try:
        status = int(modules[args.command].run(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe can still be handled
        return status
    except BrokenPipeError:
        # the reader of our output left early (`autonet derive | head`): not an error of ours;
        # point stdout at devnull so that the interpreter's final flush stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
