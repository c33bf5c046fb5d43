"""The `autonet` command: one subcommand per job, each in the module that does the work.

autonet demo        train the tutorial's network and compare with its hand-derived gradients
autonet derive      print the tutorial's gradient formulas (or a deeper network's), derived
autonet verify      check the tutorial's gradient formulas on Hypothesis-drawn networks
autonet graph       draw the tutorial's network: its graph, values and gradients
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module with add_arguments(parser) and run(args) -> exit status, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("autonet.demo", "train the tutorial's network on XNOR, checked against its formulas"),
    "derive": ("autonet.derive_command", "print the backward pass as matrix formulas, checked"),
    "verify": ("autonet.verify", "check the tutorial's formulas, autograd and finite differences"),
    "graph": ("autonet.graph_command", "draw the seed network's graph, values and gradients"),
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
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
