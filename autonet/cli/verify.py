"""`autonet verify`: check the tutorial's hand-derived gradients on Hypothesis-drawn networks.

For the seed network (autonet.seed)

    H = sigmoid(S . syn0),   O = sigmoid(H . syn1),   L = 1/2 sum (O - Y)^2

each formula of `seed_gradients` is compared, element by element, with autograd and with float64
finite differences (autonet.testing.check_derivation) on operands of random shapes and values.
With --show-wrong, a deliberately wrong derivation of grad0 (without the hidden layer's H * (1 - H)
factor) is checked too, to show what a caught mistake and its minimal counterexample look like.

Exit status: 1 when a check of the tutorial's formulas fails; with --strict, 1 when any check
fails, including the deliberately wrong one (so `--show-wrong --strict` exits 1).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from autonet.cli import positive_int
from autonet.ops import sigmoid
from autonet.seed import seed_forward, seed_gradients
from autonet.tensor import Tensor

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--examples",
        type=positive_int,
        default=100,
        help="Hypothesis examples per formula (default 100)",
    )
    parser.add_argument(
        "--max-side", type=positive_int, default=4, help="largest m, n, p, k drawn (default 4)"
    )
    parser.add_argument(
        "--show-wrong",
        action="store_true",
        help="also check a deliberately wrong grad0 (without H * (1 - H))",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any check fails, including the deliberately wrong one",
    )


def seed_loss(S: Tensor, Y: Tensor, syn0: Tensor, syn1: Tensor) -> Tensor:
    """L = 1/2 sum (O - Y)^2 with O = sigmoid(sigmoid(S . syn0) . syn1), recorded by autograd."""
    O = sigmoid(sigmoid(S @ syn0) @ syn1)
    return 0.5 * ((O - Y) ** 2).sum()


def grad1(S: np.ndarray, Y: np.ndarray, syn0: np.ndarray, syn1: np.ndarray) -> np.ndarray:
    return seed_gradients(S, Y, syn0, syn1)[1]


def grad0(S: np.ndarray, Y: np.ndarray, syn0: np.ndarray, syn1: np.ndarray) -> np.ndarray:
    return seed_gradients(S, Y, syn0, syn1)[0]


def grad0_without_sigmoid_derivative(
    S: np.ndarray, Y: np.ndarray, syn0: np.ndarray, syn1: np.ndarray
) -> np.ndarray:
    """The tutorial's grad0 with the hidden layer's sigmoid derivative H * (1 - H) dropped."""
    _, O = seed_forward(S, syn0, syn1)
    return S.T @ (((O - Y) * O * (1 - O)) @ syn1.T)


def only(name: str, strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
    """The seed operands with only the named weight requiring grad."""
    return strategy.map(
        lambda ops: tuple(
            t if t.name == name or not t.requires_grad else Tensor(t.data, name=t.name) for t in ops
        )
    )


# (formula as printed, derivation, weight it differentiates, whether it is the tutorial's)
CHECKS: list[tuple[str, Callable[..., np.ndarray], str, bool]] = [
    ("grad1 = H^T . ((O-Y)*O*(1-O))", grad1, "syn1", True),
    ("grad0 = S^T . ((((O-Y)*O*(1-O)) . syn1^T) * H*(1-H))", grad0, "syn0", True),
    ("grad0 without H*(1-H)  (wrong on purpose)", grad0_without_sigmoid_derivative, "syn0", False),
]


def run(args: argparse.Namespace) -> int:
    with temporary_hypothesis_storage():
        return run_checks(args)


@contextlib.contextmanager
def temporary_hypothesis_storage() -> Iterator[None]:
    """Hypothesis' storage (its example database and its cache of the constants in the code under
    test) in a temporary folder, removed on leaving, so that a run leaves no .hypothesis/ folder in
    the current directory; then Hypothesis' default again (HYPOTHESIS_STORAGE_DIRECTORY, else
    ./.hypothesis)."""
    from hypothesis.configuration import set_hypothesis_home_dir

    with tempfile.TemporaryDirectory(prefix="autonet-verify-") as home:
        set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            set_hypothesis_home_dir(None)


def run_checks(args: argparse.Namespace) -> int:
    """Check each formula of CHECKS, print the table (and each failure's counterexample); the
    exit status."""
    # Imported here, not at the top: the `autonet` command imports every subcommand's module to
    # build its parser, and Hypothesis, slow to import, is needed by this one only.
    from hypothesis import Verbosity
    from hypothesis import settings as hypothesis_settings

    from autonet.testing import DerivationError, check_derivation, compare_gradients, seed_operands

    settings = hypothesis_settings(database=None, derandomize=True, verbosity=Verbosity.quiet)
    operands = seed_operands(max_side=args.max_side)
    atol, rtol = 1e-5, 1e-3
    print(
        "autonet verify: the tutorial's hand-derived gradients against autograd and float64 "
        "finite differences"
    )
    print(
        f"  L = 1/2 sum (O - Y)^2,  O = sigmoid(H . syn1),  H = sigmoid(S . syn0);  "
        f"m, n, p, k drawn in 1..{args.max_side}"
    )
    print(f"  an element passes when |derived - oracle| <= {atol:g} + {rtol:g} * |oracle|\n")
    header = [
        ["formula", "examples", "vs autograd", "", "vs finite diff", "", "verdict"],
        ["", "", "max abs", "max rel", "max abs", "max rel", ""],
    ]
    rows, failures = [], []
    real_failed = any_failed = False
    for formula, derivation, weight, real in CHECKS:
        if not real and not args.show_wrong:
            continue
        try:
            report = check_derivation(
                seed_loss,
                derivation,
                only(weight, operands),
                max_examples=args.examples,
                atol=atol,
                rtol=rtol,
                settings=settings,
            )
            examples, errors, verdict = report.examples, report.errors, "ok"
        except DerivationError as error:
            if error.counterexample is None:
                raise
            examples = error.examples
            # The errors at the minimal counterexample, where the check failed.
            errors = compare_gradients(
                seed_loss, derivation, *error.counterexample, atol=atol, rtol=rtol
            ).errors()
            verdict = "FAILED" if real else "caught (as it should be)"
            failures.append((formula, error))
            any_failed = True
            real_failed = real_failed or real
        rows.append(
            [formula, str(examples)]
            + [
                f"{errors[key]:.1e}"
                for key in (
                    "abs vs autograd",
                    "rel vs autograd",
                    "abs vs finite diff",
                    "rel vs finite diff",
                )
            ]
            + [verdict]
        )
    # Column widths from the sub-headers and rows; each group title spans its two columns.
    widths = [max(len(r[c]) for r in [*header, *rows]) for c in range(len(header[1]))]
    widths[2] = widths[3] = widths[4] = widths[5] = max(
        len(r[c]) for r in [header[1], *rows] for c in range(2, 6)
    )
    for row in [*header, *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        if row is header[0]:
            cells[2:6] = [row[2].ljust(2 * widths[2] + 2), row[4].ljust(2 * widths[4] + 2)]
        print("  ".join(cells).rstrip())
    for formula, failure in failures:
        print(f"\n{formula}:\n{failure}")
    if real_failed:
        print("\nA formula of the tutorial failed its check.")
    return 1 if real_failed or (args.strict and any_failed) else 0
