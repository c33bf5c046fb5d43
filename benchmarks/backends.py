"""Time autonet on its array backends against PyTorch, and the backend layer's cost on NumPy.

    python benchmarks/backends.py                                  # the backends only
    git -C . worktree add /tmp/before b12b43c                      # a tree of the earlier commit
    python benchmarks/backends.py --before-tree /tmp/before        # and the cost on NumPy
    git -C . worktree remove --force /tmp/before

Workloads (each a whole training step: forward, backward and SGD update, from workloads.py):
  tutorial   the seed network of autonet.seed: the 4 XNOR examples x 3 inputs, 4 hidden units,
             1 output, sigmoid, L = 1/2 sum (O - Y)^2, batch gradient descent
  mlp        an MLP 784-128-10 (ReLU, L = mean (h - T)^2), a batch of 64, float64 and float32

Engines:
  numpy      autonet eager on NumPy ndarrays (its fast path)
  torch      autonet eager on PyTorch CPU tensors (an.tensor(torch.asarray(...))): the table's
             forwards run in torch's Array API namespace, the VJP rules on torch Tensors
  pytorch    PyTorch eager itself, from the same arrays

Method, as run.py's: every engine's gradients are checked against the hand formulas before
timing (autonet.seed's for the tutorial, the hand-written backward pass for the MLP); the engines
are then timed in turn, their order rotated every repeat (run.time_interleaved), each sample
lasting at least --min-time seconds; reported are the median per step, its min-max spread and the
ratios of medians. BLAS, OpenMP and PyTorch run on one thread; the load average is printed at
the start and the end.

--before-tree: the same eager tutorial and MLP steps on NumPy, timed with autonet from the given
tree (an earlier commit) and from this checkout, each sample in a fresh process of its own (its
PYTHONPATH the tree), the two trees' processes in turn, their order alternating every repeat.
Reported per workload: each tree's median and spread, and after / before as the ratio of the
medians with the min-max of the ratios of the repeats' paired samples (taken one after the other,
so that a load that changes slowly moves both alike).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# A child of --before-tree takes the autonet of its PYTHONPATH; otherwise, this checkout's.
if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(REPO))

# autonet before run.py, which puts this checkout first on sys.path (and sets the thread
# variables before NumPy is imported: autonet imports NumPy, so set them here first)
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
import autonet  # noqa: E402

# isort: split
import numpy as np  # noqa: E402
import workloads  # noqa: E402  (benchmarks/ is on sys.path as the script's directory)
from run import (  # noqa: E402
    cell,
    check_gradients,
    load_average,
    machine,
    summarize,
    time_interleaved,
)

from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients, seed_weights  # noqa: E402

ENGINE_TITLES = {
    "numpy": "autonet on NumPy",
    "torch": "autonet on torch CPU",
    "pytorch": "PyTorch eager",
}
WORKLOAD_TITLES = {
    "tutorial": "tutorial step (seed network, 4x3-4-1, float64)",
    "mlp64": "MLP step 784-128-10, batch 64, float64",
    "mlp32": "MLP step 784-128-10, batch 64, float32",
}
MLP_BATCH, MLP_SIZES = 64, (784, 128, 10)

Problem = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], str]


# ---------------------------------------------------------------------------------------------
# The workloads' arrays and reference gradients


def tutorial_problem() -> Problem:
    """((S, Y, syn0, syn1), the tutorial's hand-derived (grad0, grad1), dtype): the XNOR data
    (its third input a constant 1, the bias) and the tutorial's initial weights."""
    syn0, syn1 = seed_weights()
    arrays = (XNOR_INPUTS, XNOR_TARGETS, syn0, syn1)
    return arrays, seed_gradients(*arrays), "float64"


def mlp_problem(dtype: str) -> Problem:
    """((X, T, W1, b1, W2, b2), the hand-written backward pass's gradients in float64, dtype):
    X (64, 784) and T (64, 10) standard normal, W He-normal, b zero."""
    rng = np.random.default_rng(0)
    (n, hidden, k), batch = MLP_SIZES, MLP_BATCH
    X, T = rng.normal(size=(batch, n)), rng.normal(size=(batch, k))
    weights = [
        rng.normal(scale=np.sqrt(2 / n), size=(n, hidden)),
        np.zeros(hidden),
        rng.normal(scale=np.sqrt(2 / hidden), size=(hidden, k)),
        np.zeros(k),
    ]
    expected = workloads.make_mlp("hand", X, T, weights)()[1:]
    return tuple(a.astype(dtype) for a in (X, T, *weights)), expected, dtype


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "tutorial": tutorial_problem,
    "mlp64": lambda: mlp_problem("float64"),
    "mlp32": lambda: mlp_problem("float32"),
}


def make_step(workload: str, engine: str, arrays: tuple[Any, ...]) -> workloads.Step:
    """A fresh step of `workload` for workloads.py's `engine` ("eager" or "torch"), on `arrays`
    (of any library autonet takes, for "eager"); returns (loss, *gradients)."""
    if workload == "tutorial":
        return workloads.make_tutorial(engine, *arrays)
    X, T, *weights = arrays
    return workloads.make_mlp(engine, X, T, weights)


def backend_step(workload: str, engine: str, arrays: tuple[np.ndarray, ...]) -> workloads.Step:
    """make_step for this script's engines: numpy, torch (autonet on torch CPU) or pytorch."""
    if engine == "torch":
        import torch

        return make_step(workload, "eager", tuple(torch.asarray(a) for a in arrays))
    return make_step(workload, {"numpy": "eager", "pytorch": "torch"}[engine], arrays)


def checked_steps(
    workload: str,
    problem: Problem,
    engines: list[str],
    make: Callable[[str, tuple[np.ndarray, ...]], workloads.Step],
    to_numpy: Callable[[Any], np.ndarray] = np.asarray,
) -> dict[str, workloads.Step]:
    """{engine: make(engine, the problem's arrays)}, each engine's gradients first checked
    against the problem's reference gradients on a step of its own (run.check_gradients raises
    when they disagree), after to_numpy (np.asarray takes NumPy's and torch CPU's arrays; a GPU's
    need autonet.backend.to_numpy, which the earlier trees timed by --before-tree do not have)."""
    arrays, expected, dtype = problem
    steps = {}
    for engine in engines:
        got = [to_numpy(g) for g in make(engine, arrays)()[1:]]
        check_gradients(workload, engine, got, expected, dtype)
        steps[engine] = make(engine, arrays)  # fresh weights
    return steps


# ---------------------------------------------------------------------------------------------
# Autonet on NumPy and on torch CPU against PyTorch


def run_backends(repeats: int, min_time: float) -> dict[str, dict[str, Any]]:
    """{workload: run.summarize's results per engine, ratios to PyTorch}."""
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    results = {}
    for workload, problem in PROBLEMS.items():
        print(f"{workload} ...", file=sys.stderr, flush=True)
        steps = checked_steps(
            workload, problem(), list(ENGINE_TITLES), functools.partial(backend_step, workload)
        )
        results[workload] = summarize(time_interleaved(steps, repeats, min_time), base="pytorch")
    return results


def backends_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown: each engine's median [min-max] (ratio to PyTorch), and torch / NumPy."""
    lines = [
        "| step | "
        + " | ".join(ENGINE_TITLES.values())
        + " | autonet on torch / autonet on NumPy |",
        "|---|" + "---|" * (len(ENGINE_TITLES) + 1),
    ]
    for workload, engines in results.items():
        cells = [cell(engines[e]) for e in ENGINE_TITLES]
        ratio = engines["torch"]["median_s"] / engines["numpy"]["median_s"]
        lines.append(f"| {WORKLOAD_TITLES[workload]} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return lines


# ---------------------------------------------------------------------------------------------
# The backend layer's cost on NumPy: this checkout against an earlier tree


def tree_child(min_time: float) -> None:
    """One sample of each workload's eager step on NumPy, with the autonet that Python finds
    first (the child's PYTHONPATH names its tree); prints {"autonet": its path, "seconds": {...}}
    as JSON."""
    steps = {
        workload: checked_steps(
            workload, problem(), ["eager"], functools.partial(make_step, workload)
        )["eager"]
        for workload, problem in PROBLEMS.items()
    }
    samples = time_interleaved(steps, repeats=1, min_time=min_time)
    seconds = {workload: s[0] for workload, s in samples.items()}
    print(json.dumps({"autonet": str(Path(autonet.__file__).parent.parent), "seconds": seconds}))


def run_tree_sample(tree: Path, min_time: float) -> dict[str, float]:
    """A tree_child run in a fresh process with autonet from `tree`: seconds per workload."""
    environment = os.environ | {"PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--tree-child", "--min-time", str(min_time)]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"the child timing {tree} failed:\n{completed.stderr[-2000:]}")
    found = json.loads(completed.stdout.splitlines()[-1])
    if Path(found["autonet"]).resolve() != tree.resolve():
        raise RuntimeError(
            f"the child meant to time {tree} imported autonet from {found['autonet']}"
        )
    return found["seconds"]


def run_before_after(before: Path, repeats: int, min_time: float) -> dict[str, dict[str, Any]]:
    """{workload: {"before", "after": summaries, "paired_ratios": after / before per repeat}},
    the trees' processes taken in turn, the first alternating every repeat."""
    trees = {"before": before, "after": REPO}
    samples: dict[str, dict[str, list[float]]] = {w: {"before": [], "after": []} for w in PROBLEMS}
    for r in range(repeats):
        print(f"before/after repeat {r + 1}/{repeats} ...", file=sys.stderr, flush=True)
        for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
            for workload, seconds in run_tree_sample(trees[name], min_time).items():
                samples[workload][name].append(seconds)
    results = {}
    for workload, by_tree in samples.items():
        results[workload] = summarize(by_tree, base="before")
        results[workload]["paired_ratios"] = [
            a / b for a, b in zip(by_tree["after"], by_tree["before"], strict=True)
        ]
    return results


def before_after_table(results: dict[str, dict[str, Any]], before: Path) -> list[str]:
    """Markdown: each tree's median [min-max], and after / before [min-max of paired ratios]."""
    lines = [
        f"| step (autonet eager on NumPy) | before ({before}) | after (this checkout) "
        "| after / before [paired min-max] |",
        "|---|---|---|---|",
    ]
    for workload, r in results.items():
        paired = r["paired_ratios"]
        lines.append(
            f"| {WORKLOAD_TITLES[workload]} | {cell(r['before'])} | {cell(r['after'])} | "
            f"{r['after']['ratio_to_hand']:.3f} [{min(paired):.3f}-{max(paired):.3f}] |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed samples per engine")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per sample, at least")
    parser.add_argument(
        "--before-tree",
        type=Path,
        default=None,
        help="a checkout of an earlier commit: also time NumPy's eager steps with its autonet",
    )
    parser.add_argument("--skip-backends", action="store_true", help="time --before-tree only")
    parser.add_argument("--tree-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tree_child:
        tree_child(args.min_time)
        return 0
    info = machine()
    start = load_average()
    lines = [
        f"{info['processor']}, {info['cpus']} CPUs, Python {info['python']}, NumPy "
        f"{info['numpy']}, torch {info.get('torch', 'not installed')}, "
        + ", ".join(f"{k}={v}" for k, v in sorted(info["threads"].items()))
        + f"; medians of {args.repeats} interleaved repeats [min-max]."
    ]
    if not args.skip_backends:
        results = run_backends(args.repeats, args.min_time)
        lines += ["", "In parentheses: the ratio to PyTorch eager.", ""]
        lines += backends_table(results)
    if args.before_tree is not None:
        results = run_before_after(args.before_tree, args.repeats, args.min_time)
        lines += ["", "In parentheses: the ratio to before.", ""]
        lines += before_after_table(results, args.before_tree)
    lines += ["", f"Load average (1 min): {start} at the start, {load_average()} at the end."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
