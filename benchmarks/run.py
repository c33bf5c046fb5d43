"""Time autonet against hand-written NumPy, PyTorch and HIPS autograd; write Markdown and JSON.

    python benchmarks/run.py            # everything; writes benchmarks/results.md and .json
    python benchmarks/run.py --sizes seed,small --repeats 5 --engines hand,eager,replay

Workloads (see workloads.py for the code of each engine):
  tutorial   one training step (forward, backward, SGD update) of the tutorial's network at the
             sizes (m, n, p, k) below: S (m, n), syn0 (n, p), syn1 (p, k), Y (m, k)
  memory     peak memory of one step at --memory-size, each engine in a process of its own
  chain      a deep chain of element-wise ops on a 16-vector, forward and backward
  mlp        one SGD step of an MLP (--mlp-layers layers of --mlp-width units, batch 64)
  overhead   autonet's cost per op on a tiny tensor, forward and backward, against the NumPy call

Method: before timing, every engine's gradients are checked against hand formulas (the
tutorial's `seed_gradients`, or the hand-written backward pass), and the run stops if one
disagrees. Engines are then timed in turn, their order rotated every repeat so that a noisy
neighbour slows all of them alike; each sample runs an engine's step enough times to last at least
--min-time seconds. Reported: the median time per step over the repeats, and its ratio to the
median of hand-written NumPy.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
    "hand": "hand-written NumPy",
    "eager": "autonet eager",
    "replay": "autonet replay",
    "torch": "PyTorch CPU",
    "autograd": "HIPS autograd",
}
WORKLOADS = ("tutorial", "memory", "chain", "mlp", "overhead")
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
    parser.add_argument(
        "--out",
        default=str(REPO / "benchmarks" / "results"),
        help="output path without extension: writes OUT.md and OUT.json",
    )
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    installed = workloads.available_engines()
    args.engines = installed if args.engines is None else args.engines.split(",")
    for engine in args.engines:
        if engine not in installed:
            parser.error(f"engine {engine!r} is not available here (available: {installed})")
    if "hand" not in args.engines:
        args.engines.insert(0, "hand")  # every ratio is to hand-written NumPy
    args.sizes = args.sizes.split(",")
    for size in args.sizes:
        if size not in SIZES:
            parser.error(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    args.workloads = args.workloads.split(",")
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


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    hand = float(np.median(samples["hand"]))
    return {
        name: {
            "median_s": float(np.median(s)),
            "ratio_to_hand": float(np.median(s)) / hand,
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


def run_chain(args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    x, d = rng.normal(size=16), 1 + 1e-4 * rng.normal(size=16)
    rows = []
    for length in args.chain_lengths:
        expected = workloads.make_chain("hand", x, d, length)()[1:]
        steps = {}
        for engine in args.engines:
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
    for engine in args.engines:
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


def goals(report: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for each of the project's performance goals that this run measured."""
    rows = []
    tutorial = {row["size"]: row["engines"] for row in report.get("tutorial", [])}
    for size, limit in (("seed", 2.5), ("medium", 1.3), ("large", 1.05)):
        if "eager" in tutorial.get(size, {}):
            ratio = tutorial[size]["eager"]["ratio_to_hand"]
            rows.append(
                (f"{size}: autonet eager <= {limit}x hand NumPy", f"{ratio:.2f}x", ratio <= limit)
            )
    if "replay" in tutorial.get("seed", {}):
        ratio = tutorial["seed"]["replay"]["ratio_to_hand"]
        rows.append(("seed: autonet replay <= 1.2x hand NumPy", f"{ratio:.2f}x", ratio <= 1.2))
    slower = [
        s
        for s, e in tutorial.items()
        if "replay" in e and "eager" in e and e["replay"]["median_s"] > e["eager"]["median_s"]
    ]
    if any("replay" in e and "eager" in e for e in tutorial.values()):
        rows.append(
            (
                "replay never slower than eager",
                "slower at " + ", ".join(slower) if slower else "faster at every size",
                not slower,
            )
        )
    chain = {row["length"]: row["engines"] for row in report.get("chain", [])}
    if len(chain) >= 2 and all("eager" in e for e in chain.values()):
        short, long = min(chain), max(chain)
        growth = chain[long]["eager"]["per_op_us"] / chain[short]["eager"]["per_op_us"]
        rows.append(
            (
                f"deep chain linear: per-op cost at {long:,} ops <= 3x that at {short:,}",
                f"{growth:.2f}x",
                growth <= 3,
            )
        )
    memory = report.get("memory")
    if memory and "eager" in memory["engines"] and memory["engines"]["eager"]["ratio_to_hand"]:
        ratio = memory["engines"]["eager"]["ratio_to_hand"]
        rows.append(
            (
                f"{memory['size']} step peak memory: eager <= 1.3x hand",
                f"{ratio:.2f}x",
                ratio <= 1.3,
            )
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    engines = report["settings"]["engines"]
    titles = [ENGINE_TITLES[e] for e in engines]
    m = report["machine"]
    lines = [
        "# autonet benchmarks",
        "",
        f"{report['date']}; {m['processor']}, {m['cpus']} CPUs, Python {m['python']}, "
        f"NumPy {m['numpy']}"
        + "".join(f", {k} {m[k]}" for k in ("torch", "autograd") if k in m)
        + "".join(f", {k}={v}" for k, v in sorted(m["threads"].items()))
        + f". Medians of {report['settings']['repeats']} interleaved repeats; in parentheses "
        "the ratio to hand-written NumPy (lower is faster).",
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
            "L = 1/2 sum (O - Y)^2.",
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
    if "chain" in report:
        lines += [
            "",
            "## Deep chain (y * d and tanh(y) in turn on a 16-vector, forward and backward)",
            "",
            "Time per op; in parentheses the ratio to hand-written NumPy.",
            "",
            "| ops | " + " | ".join(titles) + " |",
            "|---|" + "---|" * len(titles),
        ]
        for row in report["chain"]:
            cells = []
            for e in engines:
                r = row["engines"].get(e)
                cells.append(f"{r['per_op_us']:.2f} µs ({r['ratio_to_hand']:.1f})" if r else "–")
            lines.append(f"| {row['length']:,} | " + " | ".join(cells) + " |")
    if "mlp" in report:
        mlp = report["mlp"]
        lines += [
            "",
            f"## MLP step ({mlp['layers']} layers of {mlp['width']}, batch {mlp['batch']}, relu)",
            "",
            "| " + " | ".join(titles) + " |",
            "|" + "---|" * len(titles),
            "| " + " | ".join(cell(mlp["engines"].get(e)) for e in engines) + " |",
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
    rows = goals(report)
    if rows:
        lines += ["", "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
        lines += [f"| {g} | {v} | {'yes' if ok else 'no'} |" for g, v, ok in rows]
    return "\n".join(lines) + "\n"


def cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "–"
    return f"{format_time(result['median_s'])} ({result['ratio_to_hand']:.2f})"


def write_atomically(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same directory, so no reader sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.memory_size)))
        return 0
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "settings": {"engines": args.engines, "repeats": args.repeats, "min_time_s": args.min_time},
    }
    runners = {
        "tutorial": run_tutorial,
        "memory": run_memory,
        "chain": run_chain,
        "mlp": run_mlp,
        "overhead": run_overhead,
    }
    report["machine"]["load_average_start"] = load_average()
    for workload in args.workloads:
        report[workload] = runners[workload](args)
    report["machine"]["load_average_end"] = load_average()
    out = Path(args.out)
    write_atomically(out.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    write_atomically(out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
