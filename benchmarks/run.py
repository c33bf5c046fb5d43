"""Time autonet against the tutorial's code, PyTorch and HIPS autograd; write Markdown and JSON.

    python benchmarks/run.py            # everything; writes benchmarks/results.md and .json
    python benchmarks/run.py --sizes seed,small --repeats 5 --engines hand,eager,replay
    python benchmarks/run.py --check --out /tmp/results   # exit 1 if a goal is missed

Workloads (see workloads.py for the code of each engine):
  tutorial   one training step (forward, backward, SGD update) of the tutorial's network at the
             sizes (m, n, p, k) below: S (m, n), syn0 (n, p), syn1 (p, k), Y (m, k); the
             baseline is the tutorial's own step ("hand": its sigmoid 1 / (1 + exp(-x)))
  products   the step's five matrix products alone, NumPy against PyTorch (sizes medium, large)
  memory     peak memory of one step at --memory-size, each engine in a process of its own
  digits     --digits-epochs epochs of an MLP and of a small CNN on the 8x8 digits: autonet's fit
             (eagerly and replayed) against PyTorch's loop, from the same weights
  chain      a deep chain of element-wise ops on a 16-vector, forward and backward
  mlp        one SGD step of an MLP (--mlp-layers layers of --mlp-width units, batch 64)
  overhead   autonet's cost per op on a tiny tensor, forward and backward, against the NumPy call
  instructions  machine instructions per step at the seed size (valgrind's callgrind, when
             installed): a measure that other work on the machine does not change

Method: before timing, every engine's gradients are checked against hand formulas (the
tutorial's `seed_gradients`, or the hand-written backward pass), and the run stops if one
disagrees. Engines are then timed in turn, their order rotated every repeat so that a noisy
neighbour slows all of them alike; each sample runs an engine's step enough times to last at least
--min-time seconds. BLAS, OpenMP and PyTorch run on one thread (unless the *_NUM_THREADS
variables say otherwise), so that a busy machine does not make multi-threaded kernels thrash.
Reported: the median time per step over the repeats, its min-max spread, its ratio to the median
of the baseline, and the load average of the machine at the start and the end.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# One thread for NumPy's BLAS and for PyTorch, unless set: read when they are imported, so here.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for variable in THREAD_VARIABLES:
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's autonet, installed or not

import workloads  # noqa: E402  (benchmarks/ is on sys.path as the script's directory)

from autonet.seed import seed_gradients, seed_weights  # noqa: E402

SIZES: dict[str, tuple[tuple[int, int, int, int], str]] = {
    "seed": ((4, 3, 4, 1), "float64"),
    "small": ((64, 32, 64, 1), "float64"),
    "medium": ((512, 256, 256, 10), "float64"),
    "large": ((4096, 1024, 1024, 10), "float64"),
    "large32": ((4096, 1024, 1024, 10), "float32"),
}
ENGINE_TITLES = {
    "hand": "the tutorial's code",
    "stable": "the tutorial's code, stable sigmoid",
    "eager": "autonet eager",
    "replay": "autonet replay",
    "torch": "PyTorch CPU",
    "autograd": "HIPS autograd",
}
WORKLOADS = (
    "tutorial",
    "products",
    "memory",
    "digits",
    "chain",
    "mlp",
    "overhead",
    "instructions",
)
# The tutorial's step only: the other workloads have no stable-sigmoid variant.
TUTORIAL_ONLY = ("stable",)
# Steps counted by the instructions workload, inside one call of functools.reduce (whose own
# instructions are shared among them)
INSTRUCTION_STEPS = 300
# Gradient agreement required before timing, relative to the largest reference entry. float64:
# the engines associate sums differently (BLAS blocking, pairwise sums), which moves results by
# a few ulps times the depth of the computation; 1e-9 is far above that and far below any bug.
# float32 carries 7 digits and the large step sums 1024 products: 1e-3.
TOLERANCE = {"float64": 1e-9, "float32": 1e-3}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="tutorial sizes, comma-separated")
    parser.add_argument("--engines", default=None, help="engines (default: all installed)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="workloads to run")
    parser.add_argument("--repeats", type=int, default=9, help="timed samples per engine")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per sample, at least")
    parser.add_argument("--chain-lengths", default="1000,100000", help="deep chain lengths")
    parser.add_argument("--mlp-layers", type=int, default=8)
    parser.add_argument("--mlp-width", type=int, default=256)
    parser.add_argument("--memory-size", default="large", choices=list(SIZES))
    parser.add_argument("--digits-epochs", type=int, default=5, help="epochs per digits sample")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if a goal measured by this run is missed (printing which)",
    )
    parser.add_argument(
        "--out",
        default=str(REPO / "benchmarks" / "results"),
        help="output path without extension: writes OUT.json (this run) and OUT.md (this run "
        "above the earlier ones)",
    )
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count-child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    installed = workloads.available_engines()
    args.engines = installed if args.engines is None else args.engines.split(",")
    for engine in args.engines:
        if engine not in installed:
            parser.error(f"engine {engine!r} is not available here (available: {installed})")
    if "hand" not in args.engines:
        args.engines.insert(0, "hand")  # every ratio is to the tutorial's code
    args.sizes = args.sizes.split(",")
    for size in args.sizes:
        if size not in SIZES:
            parser.error(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    args.workloads = args.workloads.split(",")
    for workload in args.workloads:
        if workload not in WORKLOADS:
            parser.error(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    args.chain_lengths = [int(n) for n in args.chain_lengths.split(",")]
    return args


# ---------------------------------------------------------------------------------------------
# Checking and timing


def check_gradients(
    workload: str,
    engine: str,
    got: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    dtype: str,
) -> float:
    """The largest difference between an engine's gradients and the reference, relative to the
    reference's largest entry; raises if it exceeds TOLERANCE[dtype]."""
    worst = 0.0
    for g, e in zip(got, expected, strict=True):
        g = np.asarray(g, dtype=np.float64)
        e = np.asarray(e, dtype=np.float64)
        if g.shape != e.shape:
            raise AssertionError(f"{workload}/{engine}: gradient shape {g.shape} != {e.shape}")
        scale = max(float(np.abs(e).max(initial=0.0)), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.abs(g - e).max(initial=0.0)) / scale)
    if not worst <= TOLERANCE[dtype]:
        raise AssertionError(
            f"{workload}/{engine}: gradients differ from the hand formulas by {worst:.2e} "
            f"(relative), more than the {TOLERANCE[dtype]:.0e} allowed; not timing a wrong engine"
        )
    return worst


def time_interleaved(
    steps: dict[str, Callable[[], Any]], repeats: int, min_time: float
) -> dict[str, list[float]]:
    """Seconds per call of each step: `repeats` samples each, engines taken in turn (order
    rotated each repeat), each sample long enough to last min_time."""
    # Objects that exist now (imported modules, data) move to a permanent generation, so that the
    # collections the steps trigger scan only what the steps allocate, in every engine alike.
    gc.collect()
    gc.freeze()
    numbers = {}
    for name, step in steps.items():
        step()  # warm up (and, for replay, record)
        start = time.perf_counter()
        step()
        numbers[name] = max(1, int(min_time / max(time.perf_counter() - start, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            step, number = steps[name], numbers[name]
            start = time.perf_counter()
            for _ in range(number):
                step()
            samples[name].append((time.perf_counter() - start) / number)
    return samples


def summarize(samples: dict[str, list[float]], base: str = "hand") -> dict[str, dict[str, Any]]:
    """Per engine: the median, min and max time, the samples, and the ratio of the median to the
    median of `base` (as ratio_to_hand, whatever the base: the table says which it is)."""
    reference = float(np.median(samples[base]))
    return {
        name: {
            "median_s": float(np.median(s)),
            "min_s": float(np.min(s)),
            "max_s": float(np.max(s)),
            "ratio_to_hand": float(np.median(s)) / reference,
            "samples_s": [float(x) for x in s],
        }
        for name, s in samples.items()
    }


# ---------------------------------------------------------------------------------------------
# Workloads


def tutorial_data(size: str) -> tuple[np.ndarray, ...]:
    (m, n, p, k), dtype = SIZES[size]
    rng = np.random.default_rng(0)
    w0, w1 = seed_weights(n, p, k, seed=1)
    arrays = rng.random((m, n)), rng.random((m, k)), w0, w1
    return tuple(a.astype(dtype) for a in arrays)


def run_tutorial(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for size in args.sizes:
        (m, n, p, k), dtype = SIZES[size]
        S, Y, w0, w1 = tutorial_data(size)
        expected = seed_gradients(
            S.astype(np.float64), Y.astype(np.float64), w0.astype(np.float64), w1.astype(np.float64)
        )
        steps, errors = {}, {}
        for engine in args.engines:
            step = workloads.make_tutorial(engine, S, Y, w0, w1)
            errors[engine] = check_gradients("tutorial", engine, step()[1:], expected, dtype)
            steps[engine] = workloads.make_tutorial(engine, S, Y, w0, w1)  # fresh weights
        print(f"tutorial {size} {(m, n, p, k)} {dtype} ...", file=sys.stderr, flush=True)
        results = summarize(time_interleaved(steps, args.repeats, args.min_time))
        for engine in args.engines:
            results[engine]["gradient_error"] = errors[engine]
        rows.append({"size": size, "shape": [m, n, p, k], "dtype": dtype, "engines": results})
    return rows


def current_rss() -> int:
    """Resident memory of this process now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """The high-water mark of resident memory (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_child(engine: str, size: str) -> dict[str, int]:
    """Peak memory of one step of `engine`, above what the process held just before it: the
    step's temporaries and saved arrays. The data, the weights, a warm-up step (which also
    records replay) and the engine's imports come before, so they do not count."""
    S, Y, w0, w1 = tutorial_data(size)
    step = workloads.make_tutorial(engine, S, Y, w0, w1)
    step()
    before = current_rss()
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to the current RSS
        f.write("5")
    step()
    return {"peak_above_start_bytes": peak_rss() - before, "start_bytes": before}


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for engine in args.engines:
        print(f"memory {args.memory_size} {engine} ...", file=sys.stderr, flush=True)
        completed = subprocess.run(
            [sys.executable, __file__, "--memory-child", engine, "--memory-size", args.memory_size],
            capture_output=True,
            text=True,
            check=True,
            # glibc raises its mmap threshold after a large block is freed, so that the warm-up
            # step's arrays would stay resident and hide the measured step's (0 MiB at float32);
            # a fixed threshold maps every block of 64 KiB or more afresh and unmaps it when freed
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
        )
        results[engine] = json.loads(completed.stdout.strip().splitlines()[-1])
    hand = results["hand"]["peak_above_start_bytes"]
    for r in results.values():  # no ratio when the hand-written step allocates nothing new
        r["ratio_to_hand"] = r["peak_above_start_bytes"] / hand if hand > 0 else None
    return {
        "size": args.memory_size,
        "shape": list(SIZES[args.memory_size][0]),
        "dtype": SIZES[args.memory_size][1],
        "engines": results,
    }


def general_engines(args: argparse.Namespace) -> list[str]:
    """The engines of workloads other than the tutorial's step."""
    return [engine for engine in args.engines if engine not in TUTORIAL_ONLY]


def run_products(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The tutorial step's five matrix products alone (S syn0, H syn1, H^T delta_O,
    delta_O syn1^T, S^T delta_H), in NumPy and in PyTorch, on the arrays of a step: how much of
    the time between autonet and PyTorch is the BLAS each calls."""
    import torch

    rows = []
    for size in (s for s in args.sizes if s in ("medium", "large")):
        S, Y, w0, w1 = tutorial_data(size)
        H = 1 / (1 + np.exp(-(S @ w0)))
        arrays = {"numpy": (S, w0, H, w1, Y, H)}  # delta_O and delta_H: any arrays of their shapes
        arrays["torch"] = tuple(map(torch.from_numpy, arrays["numpy"]))

        def products(S: Any, w0: Any, H: Any, w1: Any, dO: Any, dH: Any) -> Any:
            return S @ w0, H @ w1, H.T @ dO, dO @ w1.T, S.T @ dH

        steps = {name: (lambda a=a: products(*a)) for name, a in arrays.items()}
        print(f"products {size} ...", file=sys.stderr, flush=True)
        results = summarize(time_interleaved(steps, args.repeats, args.min_time), base="numpy")
        rows.append({"size": size, "shape": list(SIZES[size][0]), "engines": results})
    return rows


def run_digits(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Epochs of the digits MLP and CNN: autonet's fit, eager and replayed, against PyTorch's
    loop. Before timing, each engine's weights after one call are checked against eager fit's
    (replay's must be equal bit for bit)."""
    images, targets, source = workloads.digits_data()
    print(f"digits: {source}", file=sys.stderr, flush=True)
    engines = [e for e in ("eager", "replay", "torch") if e in args.engines]
    epochs, rows = args.digits_epochs, []
    for model in ("mlp", "cnn"):
        expected = workloads.make_digits_epoch("eager", model, images, targets, epochs)()
        steps, errors = {}, {}
        for engine in engines:
            got = workloads.make_digits_epoch(engine, model, images, targets, epochs)()
            errors[engine] = check_gradients(f"digits {model}", engine, got, expected, "float64")
            if engine == "replay" and any(
                a.tobytes() != b.tobytes() for a, b in zip(got, expected, strict=True)
            ):
                raise AssertionError(f"digits {model}: replayed fit differs from eager fit")
            steps[engine] = workloads.make_digits_epoch(engine, model, images, targets, epochs)
        print(f"digits {model} ...", file=sys.stderr, flush=True)
        base = "torch" if "torch" in steps else "eager"
        results = summarize(time_interleaved(steps, args.repeats, args.min_time), base=base)
        for engine, result in results.items():
            result["per_epoch_s"] = result["median_s"] / epochs
            result["weight_error"] = errors[engine]
        rows.append(
            {
                "model": model,
                "epochs": epochs,
                "samples": len(images),
                "batch": workloads.DIGITS_BATCH,
                "source": source,
                "base": base,
                "engines": results,
            }
        )
    return rows


def count_child(engine: str, size: str, steps: int) -> None:
    """`steps` tutorial steps of engine, after two (the first records, for replay), all inside
    one call of functools.reduce: callgrind counts only within that C function, so neither the
    imports nor the set-up count."""
    S, Y, w0, w1 = tutorial_data(size)
    step = workloads.make_tutorial(engine, S, Y, w0, w1)
    step()
    step()
    functools.reduce(lambda _, __: step(), range(steps), None)


def run_instructions(args: argparse.Namespace) -> dict[str, Any]:
    """Machine instructions per tutorial step at the seed size, counted by valgrind's callgrind
    in a process of each engine's own (count_child). Unlike time, the count does not depend on
    what else the machine is doing."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {"error": "valgrind is not installed"}
    size, results = "seed", {}
    for engine in (e for e in args.engines if e in ("hand", "stable", "eager", "replay")):
        print(f"instructions {size} {engine} ...", file=sys.stderr, flush=True)
        completed = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
            + ["--collect-atstart=no", "--toggle-collect=functools_reduce", sys.executable]
            + [__file__, "--count-child", engine, size, str(INSTRUCTION_STEPS)],
            capture_output=True,
            text=True,
        )
        found = re.search(r"Collected : (\d+)", completed.stderr)
        if completed.returncode != 0 or found is None:
            return {"error": f"valgrind failed on {engine}: {completed.stderr[-500:]}"}
        results[engine] = {"per_step": int(found.group(1)) / INSTRUCTION_STEPS}
    for r in results.values():
        r["ratio_to_hand"] = r["per_step"] / results["hand"]["per_step"]
    return {"size": size, "engines": results}


def run_chain(args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    x, d = rng.normal(size=16), 1 + 1e-4 * rng.normal(size=16)
    rows = []
    for length in args.chain_lengths:
        expected = workloads.make_chain("hand", x, d, length)()[1:]
        steps = {}
        for engine in general_engines(args):
            steps[engine] = workloads.make_chain(engine, x, d, length)
            check_gradients("chain", engine, steps[engine]()[1:], expected, "float64")
        print(f"chain {length} ...", file=sys.stderr, flush=True)
        results = summarize(time_interleaved(steps, args.repeats, args.min_time))
        for r in results.values():
            r["per_op_us"] = r["median_s"] / length * 1e6
        rows.append({"length": length, "engines": results})
    return rows


def run_mlp(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    width, layers, batch = args.mlp_width, args.mlp_layers, 64
    X, T = rng.normal(size=(batch, width)), rng.normal(size=(batch, width))
    weights = []
    for _ in range(layers):
        weights += [rng.normal(scale=np.sqrt(2 / width), size=(width, width)), np.zeros(width)]
    expected = workloads.make_mlp("hand", X, T, weights)()[1:]
    steps = {}
    for engine in general_engines(args):
        check_gradients(
            "mlp", engine, workloads.make_mlp(engine, X, T, weights)()[1:], expected, "float64"
        )
        steps[engine] = workloads.make_mlp(engine, X, T, weights)
    print(f"mlp {layers}x{width} ...", file=sys.stderr, flush=True)
    results = summarize(time_interleaved(steps, args.repeats, args.min_time))
    return {"layers": layers, "width": width, "batch": batch, "engines": results}


def run_overhead(args: argparse.Namespace) -> dict[str, float]:
    """Microseconds per op of a chain of 1,000 multiplications of a 16-vector: the NumPy call
    alone, autonet's forward (the call plus recording) and autonet's backward (the VJP g * b plus
    the graph walk), medians over the repeats."""
    import autonet as an

    length, rng = 1000, np.random.default_rng(0)
    x, b = rng.normal(size=16), 1 + 1e-4 * rng.normal(size=16)

    def numpy_chain() -> None:
        y = x
        for _ in range(length):
            y = y * b

    def forward() -> an.Tensor:
        y = an.tensor(x, requires_grad=True)
        for _ in range(length):
            y = y * b
        return y.sum()

    samples: dict[str, list[float]] = {"numpy": [], "forward": [], "backward": []}
    gc.collect()
    gc.freeze()  # as in time_interleaved
    for _ in range(max(args.repeats, 15)):
        start = time.perf_counter()
        numpy_chain()
        samples["numpy"].append(time.perf_counter() - start)
        start = time.perf_counter()
        loss = forward()
        samples["forward"].append(time.perf_counter() - start)
        start = time.perf_counter()
        loss.backward()
        samples["backward"].append(time.perf_counter() - start)
    per_op = {k: float(np.median(v)) / length * 1e6 for k, v in samples.items()}
    return {
        "numpy_us": per_op["numpy"],
        "forward_us": per_op["forward"],
        "backward_us": per_op["backward"],
        "forward_overhead_us": per_op["forward"] - per_op["numpy"],
        "backward_overhead_us": per_op["backward"] - per_op["numpy"],
    }


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": processor_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "threads": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")},
    }
    for module in ("torch", "autograd"):
        try:
            from importlib.metadata import version

            info[module] = version(module)
        except Exception:  # noqa: BLE001 - not installed: simply not reported
            pass
    return info


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none): other work on a machine slows the
    Python-bound small steps more than the BLAS-bound large ones, so the report says how busy it
    was."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def processor_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


class Goal:
    """A performance goal: measured <= limit (a ratio; lower is better)."""

    def __init__(self, goal: str, measured: float, limit: float) -> None:
        self.goal, self.measured, self.limit = goal, measured, limit
        self.met = measured <= limit

    def miss(self) -> str:
        """How far off the goal is, as a sentence."""
        return (
            f"{self.goal}: measured {self.measured:.2f}x, {self.measured / self.limit - 1:.0%} "
            f"over {self.limit}x"
        )


# Eager autonet against the tutorial's code, per size (the project's goals).
EAGER_LIMITS = {"seed": 3.0, "medium": 1.05, "large": 0.95}
# autonet eager against PyTorch CPU eager: faster at the two smallest sizes, not slower at
# medium, within 1.1x at large.
TORCH_LIMITS = {"seed": 1.0, "small": 1.0, "medium": 1.0, "large": 1.1}


def goals(report: dict[str, Any]) -> list[Goal]:
    """Each of the project's performance goals that this run measured."""
    rows = []
    tutorial = {row["size"]: row["engines"] for row in report.get("tutorial", [])}

    def ratio(size: str, engine: str, base: str) -> float | None:
        engines = tutorial.get(size, {})
        if engine in engines and base in engines:
            return engines[engine]["median_s"] / engines[base]["median_s"]
        return None

    for size, limit in EAGER_LIMITS.items():
        if (r := ratio(size, "eager", "hand")) is not None:
            rows.append(Goal(f"{size}: autonet eager / the tutorial's code", r, limit))
    for size in tutorial:
        if (r := ratio(size, "replay", "hand")) is not None:
            rows.append(Goal(f"{size}: autonet replay / the tutorial's code", r, 1.0))
    for size in ("seed", "small", "medium"):
        if (r := ratio(size, "replay", "torch")) is not None:
            rows.append(Goal(f"{size}: autonet replay / PyTorch (faster)", r, 1.0))
    for size, limit in TORCH_LIMITS.items():
        if (r := ratio(size, "eager", "torch")) is not None:
            rows.append(Goal(f"{size}: autonet eager / PyTorch", r, limit))
    counted = report.get("instructions", {}).get("engines", {})
    for engine, limit in (("eager", EAGER_LIMITS["seed"]), ("replay", 1.0)):
        if engine in counted:
            measured = counted[engine]["ratio_to_hand"]
            rows.append(
                Goal(f"seed, instructions: autonet {engine} / the tutorial's code", measured, limit)
            )
    memory = report.get("memory")
    if memory and "eager" in memory["engines"] and memory["engines"]["eager"]["ratio_to_hand"]:
        rows.append(
            Goal(
                f"{memory['size']} step peak memory: autonet eager / the tutorial's code",
                memory["engines"]["eager"]["ratio_to_hand"],
                1.0,
            )
        )
    for row in report.get("digits", []):
        engines, limit = row["engines"], {"mlp": 1.0, "cnn": 3.0}[row["model"]]
        if "replay" in engines and "torch" in engines:
            measured = engines["replay"]["median_s"] / engines["torch"]["median_s"]
            rows.append(
                Goal(f"digits {row['model']} epoch: autonet fit / PyTorch", measured, limit)
            )
    chain = {row["length"]: row["engines"] for row in report.get("chain", [])}
    if len(chain) >= 2 and all("eager" in e for e in chain.values()):
        short, long = min(chain), max(chain)
        growth = chain[long]["eager"]["per_op_us"] / chain[short]["eager"]["per_op_us"]
        rows.append(
            Goal(f"deep chain: eager cost per op at {long:,} / at {short:,} ops", growth, 3)
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    engines = report["settings"]["engines"]
    titles = [ENGINE_TITLES[e] for e in engines]
    # the other workloads: no stable-sigmoid variant, and their baseline is written by hand
    general = [e for e in engines if e not in TUTORIAL_ONLY]
    general_titles = ["hand-written NumPy"] + [ENGINE_TITLES[e] for e in general[1:]]
    m = report["machine"]
    lines = [
        "# autonet benchmarks",
        "",
        f"{report['date']}; {m['processor']}, {m['cpus']} CPUs, Python {m['python']}, "
        f"NumPy {m['numpy']}"
        + "".join(f", {k} {m[k]}" for k in ("torch", "autograd") if k in m)
        + "".join(f", {k}={v}" for k, v in sorted(m["threads"].items()))
        + f". Medians of {report['settings']['repeats']} interleaved repeats, their min-max "
        "spread in brackets; in parentheses the ratio of the median to the baseline's (lower is "
        "faster).",
    ]
    if m.get("load_average_start") is not None:
        lines[-1] += (
            f" Load average (1 min) {m['load_average_start']} at the start, "
            f"{m['load_average_end']} at the end ({m['cpus']} CPUs): other work on the machine "
            "slows the Python-bound small steps more than the rest."
        )
    if "tutorial" in report:
        lines += [
            "",
            "## One training step of the tutorial's network",
            "",
            "Forward, backward and SGD update of H = sigmoid(S syn0), O = sigmoid(H syn1), "
            "L = 1/2 sum (O - Y)^2. Baseline: the tutorial's code, its sigmoid "
            "1 / (1 + exp(-x)) and its hand-derived step.",
            "",
            "| size (m, n, p, k) | dtype | " + " | ".join(titles) + " |",
            "|---|---|" + "---|" * len(titles),
        ]
        for row in report["tutorial"]:
            cells = [cell(row["engines"].get(e)) for e in engines]
            lines.append(
                f"| {row['size']} {tuple(row['shape'])} | {row['dtype']} | "
                + " | ".join(cells)
                + " |"
            )
    if "products" in report:
        lines += [
            "",
            "## The step's five matrix products alone (NumPy's BLAS against PyTorch's)",
            "",
            "| size | NumPy | PyTorch |",
            "|---|---|---|",
        ]
        for row in report["products"]:
            e = row["engines"]
            lines.append(f"| {row['size']} | {cell(e['numpy'])} | {cell(e['torch'])} |")
    if "memory" in report:
        mem = report["memory"]
        lines += [
            "",
            f"## Peak memory of one {mem['size']} step {tuple(mem['shape'])}",
            "",
            "Resident memory above what the process held just before the step (data, "
            "weights and imports excluded), each engine in a process of its own.",
            "",
            "| engine | peak above start | ratio to hand |",
            "|---|---|---|",
        ]
        for e in engines:
            r = mem["engines"].get(e)
            if r:
                ratio = "–" if r["ratio_to_hand"] is None else f"{r['ratio_to_hand']:.2f}"
                lines.append(
                    f"| {ENGINE_TITLES[e]} | {r['peak_above_start_bytes'] / 2**20:.1f} "
                    f"MiB | {ratio} |"
                )
    if "digits" in report:
        first = report["digits"][0]
        order = [e for e in ("eager", "replay", "torch") if e in first["engines"]]
        lines += [
            "",
            f"## Training epochs on {first['source']}",
            "",
            f"{first['samples']} images, batches of {first['batch']}, SGD, cross-entropy on "
            "one-hot targets, from the same initial weights in every engine; time per epoch of "
            f"a {first['epochs']}-epoch fit (autonet's fit, eager or replayed, includes its "
            "recording); in parentheses the ratio to "
            + ("PyTorch." if first["base"] == "torch" else "autonet eager."),
            "",
            "| model | " + " | ".join(DIGITS_TITLES[e] for e in order) + " |",
            "|---|" + "---|" * len(order),
        ]
        for row in report["digits"]:
            cells = [cell(row["engines"][e], per=row["epochs"]) for e in order]
            lines.append(f"| {DIGITS_MODELS[row['model']]} | " + " | ".join(cells) + " |")
    if "chain" in report:
        lines += [
            "",
            "## Deep chain (y * d and tanh(y) in turn on a 16-vector, forward and backward)",
            "",
            "Time per op; in parentheses the ratio to hand-written NumPy.",
            "",
            "| ops | " + " | ".join(general_titles) + " |",
            "|---|" + "---|" * len(general_titles),
        ]
        for row in report["chain"]:
            cells = []
            for e in general:
                r = row["engines"].get(e)
                cells.append(f"{r['per_op_us']:.2f} µs ({r['ratio_to_hand']:.1f})" if r else "–")
            lines.append(f"| {row['length']:,} | " + " | ".join(cells) + " |")
    if "mlp" in report:
        mlp = report["mlp"]
        lines += [
            "",
            f"## MLP step ({mlp['layers']} layers of {mlp['width']}, batch {mlp['batch']}, relu)",
            "",
            "| " + " | ".join(general_titles) + " |",
            "|" + "---|" * len(general_titles),
            "| " + " | ".join(cell(mlp["engines"].get(e)) for e in general) + " |",
        ]
    if "overhead" in report:
        o = report["overhead"]
        lines += [
            "",
            "## autonet's cost per op (x * b on a 16-vector)",
            "",
            "| NumPy call | autonet forward | autonet backward |",
            "|---|---|---|",
            f"| {o['numpy_us']:.2f} µs | {o['forward_us']:.2f} µs (+{o['forward_overhead_us']:.2f})"
            f" | {o['backward_us']:.2f} µs (+{o['backward_overhead_us']:.2f}) |",
        ]
    if "instructions" in report:
        counted = report["instructions"]
        lines += ["", "## Machine instructions per step (valgrind's callgrind)", ""]
        if "error" in counted:
            lines.append(f"Not measured: {counted['error']}.")
        else:
            lines += [
                f"The tutorial's step at the {counted['size']} size; in parentheses the ratio to "
                "the tutorial's code. Other work on the machine does not change these counts.",
                "",
                "| " + " | ".join(ENGINE_TITLES[e] for e in counted["engines"]) + " |",
                "|" + "---|" * len(counted["engines"]),
                "| "
                + " | ".join(
                    f"{r['per_step']:,.0f} ({r['ratio_to_hand']:.2f})"
                    for r in counted["engines"].values()
                )
                + " |",
            ]
    rows = goals(report)
    if rows:
        lines += ["", "## Goals", "", "| goal | measured | limit | met |", "|---|---|---|---|"]
        lines += [
            f"| {g.goal} | {g.measured:.2f}x | {g.limit}x | {'yes' if g.met else 'no'} |"
            for g in rows
        ]
    return "\n".join(lines) + "\n"


DIGITS_TITLES = {
    "eager": "autonet fit, eager",
    "replay": "autonet fit (replays)",
    "torch": "PyTorch",
}
DIGITS_MODELS = {
    "mlp": "MLP 64-128-10, ReLU",
    "cnn": "CNN: conv 3x3 1-8, ReLU, max pool 2, linear 128-10",
}


def cell(result: dict[str, Any] | None, per: int = 1) -> str:
    """median [min-max] (ratio), times divided by `per`."""
    if result is None:
        return "–"
    low, high = result["min_s"] / per, result["max_s"] / per
    return (
        f"{format_time(result['median_s'] / per)} [{format_range(low, high)}] "
        f"({result['ratio_to_hand']:.2f})"
    )


def format_range(low: float, high: float) -> str:
    """low-high in the unit format_time chooses for high."""
    unit, scale = ("s", 1) if high >= 1 else ("ms", 1e3) if high >= 1e-3 else ("µs", 1e6)
    digits = 1 if unit == "µs" else 2
    return f"{low * scale:.{digits}f}-{high * scale:.{digits}f} {unit}"


def write_atomically(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same directory, so no reader sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    # the tutorial's sigmoid: exp(-x) overflows to inf where 1 / (1 + inf) = 0 is right
    warnings.filterwarnings("ignore", "overflow encountered in exp", RuntimeWarning)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.memory_size)))
        return 0
    if args.count_child:
        engine, size, steps = args.count_child
        count_child(engine, size, int(steps))
        return 0
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "settings": {"engines": args.engines, "repeats": args.repeats, "min_time_s": args.min_time},
    }
    runners = {
        "tutorial": run_tutorial,
        "products": run_products,
        "memory": run_memory,
        "digits": run_digits,
        "chain": run_chain,
        "mlp": run_mlp,
        "overhead": run_overhead,
        "instructions": run_instructions,
    }
    report["machine"]["load_average_start"] = load_average()
    for workload in args.workloads:
        if workload == "products" and "torch" not in args.engines:
            continue  # NumPy's products against PyTorch's: nothing to compare without it
        report[workload] = runners[workload](args)
    report["machine"]["load_average_end"] = load_average()
    out = Path(args.out)
    write_atomically(out.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    # OUT.md keeps the history, newest run first; OUT.json holds the latest run only
    history = out.with_suffix(".md").read_text() if out.with_suffix(".md").exists() else ""
    write_atomically(out.with_suffix(".md"), text + (f"\n---\n\n{history}" if history else ""))
    print(text)
    return check(report) if args.check else 0


def check(report: dict[str, Any]) -> int:
    """--check: 1 if a goal the report measured is missed (each printed, with by how much)."""
    missed = [g for g in goals(report) if not g.met]
    if missed:
        print(f"{len(missed)} goal(s) missed:", file=sys.stderr)
        for g in missed:
            print(f"  {g.miss()}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
