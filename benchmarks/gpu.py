"""Autonet on a CUDA GPU: the primitive table's check, and training steps against PyTorch CUDA.

    python benchmarks/gpu.py                         # every GPU library found
    python benchmarks/gpu.py --libraries cupy --repeats 7 --examples 8
    python benchmarks/gpu.py --skip-table            # the timings only

The GPU libraries: CuPy arrays ("cupy") and PyTorch CUDA tensors ("torch-cuda"), each used when
installed with a CUDA device. Without either, the script prints one line saying what is missing
and exits with status 0: there is nothing to measure.

1. The table. Every primitive of autonet.primitives.PRIMITIVES, on --examples cases each drawn
   by hypothesis from tests.strategies.PRIMITIVE_CASES, as tests/test_backends.py checks
   array_api_strict and torch CPU: the output, dL/dx for L = sum(u * out), and
   d(sum(v * dL/dx))/dx (tests.test_backends.first_and_second_order), with every array on the
   GPU, against the same on NumPy, to GPU_TOLERANCE; results must stay on the GPU. Failures are
   listed and make the exit status 1.

2. Steps: forward, backward and SGD update, from the same arrays in autonet (on each library's
   arrays) and in PyTorch CUDA:
     tutorial  the seed network of autonet.seed (4 XNOR examples x 3 inputs, 4 hidden, sigmoid)
     mlp64/32  an MLP 784-128-10 (ReLU, mean squared error), a batch of 64, float64 / float32
     cnn       the digits CNN of workloads.py (conv 3x3 1-8, ReLU, max pool 2, linear 128-10,
               cross-entropy on one-hot targets), one batch of 32 8x8 digits, float64
   Each engine's gradients are first checked against the reference (the hand formulas of
   backends.py; for the CNN, autonet's step on NumPy). Every step ends by waiting for the GPU
   (synchronize), so that a sample times the work and not only its queueing. Timing as run.py's:
   engines in turn, their order rotated every repeat, medians with the min-max spread, and the
   ratio of each median to PyTorch CUDA's.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import backends  # first: it sets up sys.path and the thread variables
import numpy as np
import workloads
from run import cell, summarize, time_interleaved

import autonet as an
from autonet import backend
from autonet.nn import functional as F

# Allowed difference from NumPy, relative and absolute: CUDA's math library and the GPU's
# reduction order move float64 results by a few ulps (test_backends.py allows 1e-12 on the CPU
# libraries, whose kernels are often NumPy's own); a wrong rule is off by far more.
GPU_TOLERANCE = 1e-9


@dataclass(frozen=True)
class GpuLibrary:
    """An array library on a CUDA device, as this script uses it."""

    name: str  # "cupy" or "torch-cuda"
    asarray: Callable[[Any], Any]  # an ndarray's (or number's) values as an array on the GPU
    holds: Callable[[Any], bool]  # whether x is one of this library's arrays on the GPU
    synchronize: Callable[[], None]  # wait until the GPU has done the work queued so far


def cupy_library() -> GpuLibrary | str:
    """CuPy on its current device, or why it cannot be used (a phrase)."""
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed"
    import cupy

    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        return f"cupy {cupy.__version__} finds no CUDA device ({exc})"
    if devices == 0:
        return f"cupy {cupy.__version__} finds no CUDA device"
    return GpuLibrary(
        "cupy",
        asarray=lambda x: cupy.asarray(np.asarray(x)),
        holds=lambda x: isinstance(x, cupy.ndarray),
        synchronize=lambda: cupy.cuda.Device().synchronize(),
    )


def torch_cuda_library() -> GpuLibrary | str:
    """PyTorch on the CUDA device "cuda", or why it cannot be used (a phrase)."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else "no CUDA device found"
        return f"torch {torch.__version__} has torch.cuda.is_available() False ({build})"
    return GpuLibrary(
        "torch-cuda",
        asarray=lambda x: torch.asarray(np.asarray(x), device="cuda"),
        holds=lambda x: isinstance(x, torch.Tensor) and x.is_cuda,
        synchronize=torch.cuda.synchronize,
    )


LIBRARIES: dict[str, Callable[[], GpuLibrary | str]] = {
    "cupy": cupy_library,
    "torch-cuda": torch_cuda_library,
}


# ---------------------------------------------------------------------------------------------
# 1. The primitive table on the GPU


def check_table(library: GpuLibrary, examples: int) -> list[str]:
    """Each primitive's values and first and second derivatives on `library`'s arrays against
    NumPy's (module docstring, item 1); returns the failures, one line each."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from autonet.primitives import PRIMITIVES
    from tests.strategies import PRIMITIVE_CASES
    from tests.test_backends import first_and_second_order

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True)
    @given(data=st.data())
    def agrees_with_numpy(name: str, data: st.DataObject) -> None:
        primitive = PRIMITIVES[name]
        inputs, params = data.draw(PRIMITIVE_CASES[name])
        expected = first_and_second_order(primitive, inputs, params, np.asarray)
        found = first_and_second_order(primitive, inputs, params, library.asarray)
        out = found[0]
        assert library.holds(out.data), f"the output is a {type(out.data)}, not on the GPU"
        assert out.shape == expected[0].shape and out.dtype == expected[0].dtype, (
            f"output {out.shape} {out.dtype}, NumPy's {expected[0].shape} {expected[0].dtype}"
        )
        tolerance = {"rtol": GPU_TOLERANCE, "atol": GPU_TOLERANCE}
        np.testing.assert_allclose(out.numpy(), expected[0].data, **tolerance)
        for order in (1, 2):
            for mine, theirs in zip(found[order], expected[order], strict=True):
                if theirs is None:
                    assert mine is None, f"order {order}: a gradient where NumPy has none"
                    continue
                assert library.holds(mine.data), f"order {order}: the gradient left the GPU"
                np.testing.assert_allclose(
                    mine.numpy(), theirs.data, **tolerance, err_msg=f"order {order}"
                )

    failures = []
    for name in sorted(PRIMITIVES):
        try:
            agrees_with_numpy(name)
        except Exception as exc:  # noqa: BLE001 - every primitive is checked; failures listed
            failures.append(f"{name}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    return failures


# ---------------------------------------------------------------------------------------------
# 2. Training steps


def cnn_problem() -> backends.Problem:
    """((images, one-hot targets, conv w, conv b, linear w, linear b), the gradients of
    autonet's step on NumPy, "float64"): the first DIGITS_BATCH digits and digits_weights."""
    images, targets, _ = workloads.digits_data()
    batch = workloads.DIGITS_BATCH
    arrays = (images[:batch], targets[:batch], *workloads.digits_weights("cnn"))
    return arrays, autonet_cnn_step(arrays)()[1:], "float64"


PROBLEMS: dict[str, Callable[[], backends.Problem]] = backends.PROBLEMS | {"cnn": cnn_problem}
WORKLOAD_TITLES = backends.WORKLOAD_TITLES | {
    "cnn": "digits CNN step (conv 3x3 1-8, pool, linear 128-10), batch 32, float64"
}


def autonet_cnn_step(arrays: tuple[Any, ...]) -> workloads.Step:
    """One SGD step of workloads.digits_model("cnn") on (images, targets, *weights), arrays of
    any library autonet takes; returns (loss, *gradients)."""
    images, targets, *weights = arrays
    net = workloads.digits_model("cnn")
    for parameter, values in zip(net.parameters(), weights, strict=True):
        parameter.data = an.tensor(values).data  # a copy: the step updates it in place
    x, t = an.tensor(images), an.tensor(targets)
    sgd = an.optim.SGD(net.parameters(), lr=workloads.DIGITS_LR)

    def step() -> tuple[Any, ...]:
        sgd.zero_grad()
        loss = F.cross_entropy(net(x), t)
        loss.backward()
        gradients = [p.grad.data for p in net.parameters()]
        sgd.step()
        return (loss.data, *gradients)

    return step


def pytorch_step(workload: str, arrays: tuple[np.ndarray, ...], device: str) -> workloads.Step:
    """The same step as autonet's in PyTorch eager on `device`: the tutorial's network
    (workloads.tutorial_torch), the MLP (workloads.mlp_torch) or the CNN
    (workloads.digits_torch), those written for host arrays; returns (loss, *gradients)."""
    import torch
    import torch.nn.functional as TF

    X, T, *params = (torch.asarray(a, device=device, copy=True) for a in arrays)
    for p in params:
        p.requires_grad_()
    lr = {"tutorial": workloads.LR / len(X), "cnn": workloads.DIGITS_LR}.get(workload, workloads.LR)

    def loss_of() -> Any:
        if workload == "tutorial":
            syn0, syn1 = params
            O = torch.sigmoid(torch.sigmoid(X @ syn0) @ syn1)
            return 0.5 * ((O - T) ** 2).sum()
        w0, b0, w1, b1 = params
        if workload == "cnn":
            h = TF.max_pool2d(torch.relu(TF.conv2d(X, w0, b0, padding=1)), 2)
            return TF.cross_entropy(h.reshape(len(X), -1) @ w1 + b1, T)
        return (((torch.relu(X @ w0 + b0) @ w1 + b1) - T) ** 2).mean()

    def step() -> tuple[Any, ...]:
        loss = loss_of()
        loss.backward()
        gradients = [p.grad for p in params]
        with torch.no_grad():
            for p, gradient in zip(params, gradients, strict=True):
                p -= lr * gradient
                p.grad = None
        return (loss.detach(), *gradients)

    return step


def synchronized(step: workloads.Step, library: GpuLibrary) -> workloads.Step:
    """step, then a wait until the GPU has done its work."""

    def run() -> tuple[Any, ...]:
        out = step()
        library.synchronize()
        return out

    return run


def gpu_step(
    libraries: dict[str, GpuLibrary], workload: str, engine: str, arrays: tuple[np.ndarray, ...]
) -> workloads.Step:
    """A synchronized step of `engine`: "pytorch" (PyTorch CUDA) or autonet on the arrays of
    the library named `engine`."""
    if engine == "pytorch":
        return synchronized(pytorch_step(workload, arrays, "cuda"), libraries["torch-cuda"])
    library = libraries[engine]
    on_gpu = tuple(library.asarray(a) for a in arrays)
    if workload == "cnn":
        return synchronized(autonet_cnn_step(on_gpu), library)
    return synchronized(backends.make_step(workload, "eager", on_gpu), library)


def time_steps(
    libraries: dict[str, GpuLibrary], repeats: int, min_time: float
) -> dict[str, dict[str, Any]]:
    """{workload: run.summarize's results per engine}, ratios to PyTorch CUDA when it runs here
    (else to autonet on the last library)."""
    engines = list(libraries) + (["pytorch"] if "torch-cuda" in libraries else [])
    results = {}
    for workload, problem in PROBLEMS.items():
        print(f"{workload} ...", file=sys.stderr, flush=True)
        steps = backends.checked_steps(
            workload,
            problem(),
            engines,
            functools.partial(gpu_step, libraries, workload),
            to_numpy=backend.to_numpy,
        )
        samples = time_interleaved(steps, repeats, min_time)
        results[workload] = summarize(samples, base=engines[-1])
    return results


def steps_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown: per workload, each engine's median [min-max] (ratio)."""
    engines = list(next(iter(results.values())))
    titles = ["PyTorch CUDA" if e == "pytorch" else f"autonet on {e}" for e in engines]
    lines = [
        f"In parentheses: the ratio to {titles[-1]}.",
        "",
        "| step | " + " | ".join(titles) + " |",
        "|---|" + "---|" * len(titles),
    ]
    for workload, by_engine in results.items():
        cells = [cell(by_engine[e]) for e in engines]
        lines.append(f"| {WORKLOAD_TITLES[workload]} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--libraries", default=",".join(LIBRARIES), help="GPU libraries to use, comma-separated"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed samples per engine")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per sample, at least")
    parser.add_argument("--examples", type=int, default=8, help="table cases per primitive")
    parser.add_argument("--skip-table", action="store_true", help="time the steps only")
    args = parser.parse_args()
    found, missing = {}, []
    for name in args.libraries.split(","):
        if name not in LIBRARIES:
            parser.error(f"unknown library {name!r}; choose from {', '.join(LIBRARIES)}")
        library = LIBRARIES[name]()
        if isinstance(library, str):
            missing.append(library)
        else:
            found[name] = library
    if not found:
        print(f"gpu.py: no CUDA GPU library to run on, nothing measured: {'; '.join(missing)}")
        return 0
    if missing:
        print(f"gpu.py: not measured: {'; '.join(missing)}")
    failures = []
    if not args.skip_table:
        for name, library in found.items():
            print(f"the table on {name} ...", file=sys.stderr, flush=True)
            failures += [f"{name}: {failure}" for failure in check_table(library, args.examples)]
        print(f"the primitive table on {', '.join(found)}: {len(failures)} failure(s)")
        for failure in failures:
            print(f"  {failure}")
    print("\n".join(steps_table(time_steps(found, args.repeats, args.min_time))))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
