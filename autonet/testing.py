"""Check your own gradient derivations in pytest: Hypothesis strategies and three-way assertions.

A derivation is a function `derived(*arrays)` returning, for a scalar function `f(*tensors)`, the
gradient of f with respect to each input that requires grad, as the seed tutorial derives

    grad0 = dL/dsyn0 = S^T . ((((O - Y) * O * (1 - O)) . syn1^T) * H * (1 - H))
    grad1 = dL/dsyn1 = H^T . ((O - Y) * O * (1 - O))

for L = 1/2 sum (O - Y)^2. It is compared with two independent oracles: autograd (backward through
f's recorded graph) and central finite differences of f in float64 (autonet.gradcheck's, kept off
kinks). Three values per element tell who is wrong: when two agree, the third is the odd one out.

    from autonet.testing import check_derivation, seed_operands

    def test_my_derivation():
        check_derivation(loss, my_gradients, seed_operands())
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autonet.gradcheck import (
    MAX_REFINED,
    FiniteDifferences,
    as_input_tensors,
    default_eps,
    element,
    mismatches,
    output_of,
    relative_error,
)
from autonet.tensor import Tensor
from autonet.transforms import gradients

# ---------------------------------------------------------------------------------------------
# Strategies


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, small by default (as hypothesis.extra.numpy.array_shapes)."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes: int = 2,
    min_dims: int = 0,
    max_dims: int = 3,
    min_side: int = 1,
    max_side: int = 4,
    signature: str | None = None,
) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """Tuples of `num_shapes` shapes that broadcast together (with `signature`, e.g.
    np.matmul.signature, shapes of a generalised ufunc's operands: 1-D and batched matmul pairs).

    Unlike hypothesis.extra.numpy.broadcastable_shapes (one shape broadcastable to a given shape),
    this draws the operands' shapes only, from mutually_broadcastable_shapes.
    """
    kwargs: dict[str, Any] = {
        "min_dims": min_dims,
        "max_dims": max_dims,
        "min_side": min_side,
        "max_side": max_side,
    }
    if signature is None:
        kwargs["num_shapes"] = num_shapes
    else:
        kwargs["signature"] = signature
    return hnp.mutually_broadcastable_shapes(**kwargs).map(lambda s: s.input_shapes)


def floats(min_value: float, max_value: float, dtype: Any = np.float64) -> st.SearchStrategy[float]:
    """Finite floats representable in dtype, without subnormals (which no gradient test needs)."""
    return st.floats(
        min_value, max_value, width=np.dtype(dtype).itemsize * 8, allow_subnormal=False
    )


def tensors(
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    dtype: Any = np.float64,
    elements: st.SearchStrategy[float] | None = None,
    requires_grad: bool = False,
    name: str | None = None,
) -> st.SearchStrategy[Tensor]:
    """Tensors of `shape` (a tuple, a strategy, or None for shapes()), `dtype`, with elements from
    `elements` (default: floats in [-5, 5], bounded so that exp, sigmoid and products stay in
    range)."""
    return hnp.arrays(
        np.dtype(dtype),
        shapes() if shape is None else shape,
        elements=floats(-5, 5, dtype) if elements is None else elements,
    ).map(lambda a: Tensor(a, requires_grad=requires_grad, name=name))


@st.composite
def seed_operands(
    draw: Any,
    m: int | None = None,
    n: int | None = None,
    p: int | None = None,
    k: int | None = None,
    max_side: int = 4,
    dtype: Any = np.float64,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(S, Y, syn0, syn1) for the seed network  O = sigmoid(sigmoid(S . syn0) . syn1):

        S (m, n) in [-2, 2]      Y (m, k) in [0, 1]      syn0 (n, p), syn1 (p, k) in [-2, 2]

    syn0 and syn1 require grad. Each of m, n, p, k is fixed when given, else drawn in
    [1, max_side]; Hypothesis shrinks a failure towards 1 x 1 operands with simple values.
    """
    m, n, p, k = (draw(st.integers(1, max_side)) if d is None else d for d in (m, n, p, k))

    def operand(shape: tuple[int, int], low: float, high: float) -> np.ndarray:
        return draw(hnp.arrays(np.dtype(dtype), shape, elements=floats(low, high, dtype)))

    return (
        Tensor(operand((m, n), -2, 2), name="S"),
        Tensor(operand((m, k), 0, 1), name="Y"),
        Tensor(operand((n, p), -2, 2), requires_grad=True, name="syn0"),
        Tensor(operand((p, k), -2, 2), requires_grad=True, name="syn1"),
    )


# ---------------------------------------------------------------------------------------------
# The three-way comparison


class DerivationError(AssertionError):
    """A derived gradient disagrees with autograd or finite differences (or they with each other).

    From check_derivation it also carries the minimal `counterexample` (the inputs) and the number
    of `examples` tried.
    """

    counterexample: tuple[Any, ...] | None = None
    examples: int = 0


@dataclass
class GradientComparison:
    """Derived, autograd and finite-difference gradients of a scalar function, per input.

    numeric holds NaN for elements skipped at a kink. Each pair is compared as gradcheck compares:
    |x - reference| <= atol + rtol |reference|, the reference being autograd or finite differences.
    """

    labels: list[str]
    derived: list[np.ndarray]
    autograd: list[np.ndarray]
    numeric: list[np.ndarray]
    atol: float
    rtol: float

    @property
    def skipped(self) -> int:
        return int(sum(np.isnan(n).sum() for n in self.numeric))

    def errors(self) -> dict[str, float]:
        """Largest abs and relative error of the derived gradient vs autograd and vs finite
        differences (relative: |a - b| / max(|a|, |b|, atol))."""
        result = {}
        for oracle, values in (("autograd", self.autograd), ("finite diff", self.numeric)):
            pairs = list(zip(self.derived, values, strict=True))
            kept = [~np.isnan(o) for _, o in pairs]
            diffs = [np.abs(d - o)[m] for (d, o), m in zip(pairs, kept, strict=True)]
            rels = [
                relative_error(d, o, self.atol)[m] for (d, o), m in zip(pairs, kept, strict=True)
            ]
            result[f"abs vs {oracle}"] = max((float(x.max(initial=0)) for x in diffs), default=0)
            result[f"rel vs {oracle}"] = max((float(x.max(initial=0)) for x in rels), default=0)
        return result

    def disagreements(self) -> list[tuple[str, str, float, float, float, str, float]]:
        """Rows (input, element, derived, autograd, finite difference, who disagrees, error) for
        every element where some pair disagrees, largest error first."""
        rows = []
        for label, d, a, n in zip(
            self.labels, self.derived, self.autograd, self.numeric, strict=True
        ):
            da = mismatches(d, a, self.atol, self.rtol)
            dn = mismatches(d, n, self.atol, self.rtol)
            an_ = mismatches(a, n, self.atol, self.rtol)
            for i in np.flatnonzero(da | dn | an_):
                odd = odd_one_out(
                    bool(da.flat[i]), bool(dn.flat[i]), bool(an_.flat[i]), bool(np.isnan(n.flat[i]))
                )
                values = (float(d.flat[i]), float(a.flat[i]), float(n.flat[i]))
                error = max(abs(x - y) for x in values for y in values if not np.isnan(x - y))
                rows.append((label, element(d.shape, int(i)), *values, odd, error))
        return sorted(rows, key=lambda row: -row[-1])

    def table(self, limit: int = 8) -> str:
        """The disagreements as an aligned text table (at most `limit` rows)."""
        rows = self.disagreements()
        header = ("input", "element", "derived", "autograd", "finite diff", "disagrees", "error")
        cells = [header] + [
            (
                label,
                idx,
                f"{d:.6g}",
                f"{a:.6g}",
                "skipped" if np.isnan(n) else f"{n:.6g}",
                odd,
                f"{err:.3g}",
            )
            for label, idx, d, a, n, odd, err in rows[:limit]
        ]
        widths = [max(len(row[c]) for row in cells) for c in range(len(header))]
        lines = [
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        if len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more")
        return "\n".join(lines)

    def verdict(self) -> str:
        """One sentence on who disagrees, from the rows' odd ones out."""
        rows = self.disagreements()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row[5]] = counts.get(row[5], 0) + 1
        total = sum(d.size for d in self.derived)
        worst = max(counts, key=counts.__getitem__)
        return f"{len(rows)} of {total} gradient elements disagree; " + VERDICTS.get(
            worst, f"there is no single odd one out ({worst})"
        )


VERDICTS = {
    "derived": "the derived gradient is the odd one out: autograd and finite differences agree "
    "with each other, so the derivation is wrong",
    "autograd": "autograd is the odd one out: the derivation and finite differences agree, so a "
    "VJP on f's path is wrong (a user-defined Primitive's?)",
    "finite diff": "finite differences are the odd one out: the derivation and autograd agree; f "
    "may be badly conditioned here (try another eps)",
}


def odd_one_out(da: bool, dn: bool, an_: bool, skipped: bool) -> str:
    """Which of derived (d), autograd (a), finite difference (n) disagrees with the other two."""
    if skipped:  # two values only: no majority
        return "derived/autograd (no finite difference at a kink)"
    if da and dn and not an_:
        return "derived"
    if da and an_ and not dn:
        return "autograd"
    if dn and an_ and not da:
        return "finite diff"
    if da and dn and an_:
        return "all three"
    pair = {"da": "derived/autograd", "dn": "derived/finite diff", "an": "autograd/finite diff"}
    return next(pair[k] for k, v in (("da", da), ("dn", dn), ("an", an_)) if v) + " (borderline)"


def input_labels(f: Callable[..., Any], tensors: Sequence[Tensor]) -> list[str]:
    """Each input's name: its Tensor name, else f's parameter name, else its position."""
    try:
        params = [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [
        getattr(t, "name", None) or (params[i] if i < len(params) else f"input {i}")
        for i, t in enumerate(tensors)
    ]


def compare_gradients(
    f: Callable[..., Any],
    derived: Callable[..., Any],
    *inputs: Any,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    eps: float | None = None,
) -> GradientComparison:
    """The derived, autograd and finite-difference gradients of scalar f at inputs.

    f(*tensors) -> one-element Tensor; derived(*arrays) -> the gradient for each input with
    requires_grad=True, in order (one array, or a tuple). Costs one backward pass and two
    evaluations of f per element differentiated.
    """
    tensors = as_input_tensors(inputs, "assert_gradients_match")
    labels = input_labels(f, tensors)
    wrt = [k for k, t in enumerate(tensors) if t.requires_grad]
    wanted_labels = [labels[k] for k in wrt]

    try:
        result = derived(*[t.data for t in tensors])
    except Exception as exc:  # a formula that cannot even be evaluated here is wrong here
        name = getattr(derived, "__name__", "derived")
        raise DerivationError(
            f"assert_gradients_match: {name} raised {type(exc).__name__}: {exc} (input shapes "
            f"{', '.join(f'{lab} {t.shape}' for lab, t in zip(labels, tensors, strict=True))})"
        ) from exc
    derived_grads = list(result) if isinstance(result, (tuple, list)) else [result]
    if len(derived_grads) != len(wrt):
        raise TypeError(
            f"assert_gradients_match: derived returned {len(derived_grads)} gradient(s) but "
            f"{len(wrt)} input(s) require grad ({', '.join(wanted_labels)}); return one gradient "
            "per input with requires_grad=True, in order"
        )
    derived_arrays = []
    for label, k, g in zip(wanted_labels, wrt, derived_grads, strict=True):
        g = np.asarray(getattr(g, "data", g), dtype=np.float64)
        if g.shape != tensors[k].shape:
            raise DerivationError(
                f"assert_gradients_match: the derived gradient for {label} has shape {g.shape} "
                f"but {label} has shape {tensors[k].shape} (a missing transpose or sum?)"
            )
        derived_arrays.append(g)

    fresh = [Tensor(t.data, requires_grad=t.requires_grad) for t in tensors]
    out = output_of(f(*fresh), "assert_gradients_match")
    if out.size != 1:
        raise TypeError(
            f"assert_gradients_match: f must return a one-element Tensor (a loss), got shape "
            f"{out.shape}; for vector outputs use an.gradcheck"
        )
    wanted = [fresh[k] for k in wrt]
    if out.requires_grad:
        autograd = [np.asarray(g.data, np.float64) for g in gradients(out, wanted)]
    else:
        autograd = [np.zeros(t.shape) for t in wanted]

    def evaluate(ts: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        value = output_of(f(*ts), "assert_gradients_match")
        return value, [value]

    if eps is None:
        eps = default_eps([tensors[k].dtype for k in wrt])
    differences = FiniteDifferences(evaluate, [t.data for t in tensors], wrt, eps)
    numeric = []
    refined = 0
    for k, a in zip(wrt, autograd, strict=True):
        n = differences.jacobian(k)[0].reshape(tensors[k].shape)
        # Where autograd and the finite difference agree they are two independent oracles
        # confirming each other; elsewhere refine the finite difference (without looking at d or
        # a) before judging which of the three is off.
        suspect = mismatches(a, n, atol, rtol)
        for i in np.flatnonzero(suspect):
            if refined == MAX_REFINED:
                break
            column = differences.refined_column(k, int(i), atol, rtol)
            if column is not None:
                n.flat[i] = column[0]
            refined += 1
        numeric.append(n)
    return GradientComparison(wanted_labels, derived_arrays, autograd, numeric, atol, rtol)


def assert_gradients_match(
    f: Callable[..., Any],
    derived: Callable[..., Any],
    *inputs: Any,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    eps: float | None = None,
) -> GradientComparison:
    """Assert that a hand-derived gradient matches autograd and finite differences at inputs.

        f(*tensors)      a scalar function (a one-element Tensor), e.g. a loss
        derived(*arrays) your formula: the gradient of f for each input with requires_grad=True

    Passes (returning the comparison) when derived, autograd and finite differences agree within
    atol + rtol |reference| at every element; otherwise raises DerivationError with a table
    (input, element, derived, autograd, finite difference, who disagrees, error) and a verdict:
    if autograd and finite differences agree, your derivation is the one that is wrong.
    """
    __tracebackhide__ = True  # in pytest, tracebacks start at the caller's line
    comparison = compare_gradients(f, derived, *inputs, atol=atol, rtol=rtol, eps=eps)
    if comparison.disagreements():
        skipped = comparison.skipped
        raise DerivationError(
            "assert_gradients_match: "
            + comparison.verdict()
            + ".\n"
            + comparison.table()
            + (
                f"\n  ({skipped} element(s) had no finite difference: their +-h window crosses "
                "a kink)"
                if skipped
                else ""
            )
        )
    return comparison


@dataclass(frozen=True)
class DerivationReport:
    """What check_derivation tried: examples, and the largest errors of the derived gradient
    against autograd and against finite differences over all of them."""

    examples: int
    errors: dict[str, float]


def describe_operands(labels: Sequence[str], inputs: Sequence[Any]) -> str:
    lines = []
    for label, x in zip(labels, inputs, strict=True):
        data = np.asarray(getattr(x, "data", x))
        body = np.array2string(data, precision=6, separator=", ", prefix=" " * (len(label) + 5))
        lines.append(f"  {label} = {body}   (shape {data.shape})")
    return "\n".join(lines)


def check_derivation(
    f: Callable[..., Any],
    derived: Callable[..., Any],
    strategy: st.SearchStrategy[Any],
    max_examples: int = 50,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    eps: float | None = None,
    settings: hypothesis_settings | None = None,
) -> DerivationReport:
    """Run assert_gradients_match on inputs drawn by `strategy` (a tuple of f's inputs per
    example, e.g. seed_operands()), under Hypothesis.

    On a failure Hypothesis shrinks the inputs to a minimal counterexample; DerivationError then
    shows those inputs and the comparison table at them (the first kind of failure found, if the
    derivation fails in several ways). `settings` (a hypothesis.settings) is the base for the run;
    max_examples, deadline=None and report_multiple_bugs=False are set on top. Call it from a
    plain test function, not from inside another @given.
    """
    __tracebackhide__ = True
    examples = 0
    errors: dict[str, float] = {}

    def derivation_holds(inputs: Any) -> None:
        nonlocal examples
        examples += 1
        inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        try:
            comparison = assert_gradients_match(f, derived, *inputs, atol=atol, rtol=rtol, eps=eps)
        except DerivationError as exc:
            exc.counterexample = inputs
            raise
        for key, value in comparison.errors().items():
            errors[key] = max(errors.get(key, 0.0), value)

    derivation_holds.__qualname__ = derivation_holds.__name__ = (
        f"check_derivation_of_{getattr(derived, '__name__', 'derived')}"
    )
    # One bug at a time: with several distinct failures Hypothesis would raise an ExceptionGroup.
    run = hypothesis_settings(
        settings, max_examples=max_examples, deadline=None, report_multiple_bugs=False
    )(given(strategy)(derivation_holds))
    try:
        run()
    except DerivationError as exc:
        inputs = exc.counterexample
        name = getattr(derived, "__name__", "derived")
        error = DerivationError(
            f"check_derivation: {name} fails. Minimal counterexample (shrunk by Hypothesis; "
            f"{examples} examples tried):\n"
            + describe_operands(input_labels(f, inputs), inputs)
            + "\n"
            + str(exc)
        )
        error.counterexample, error.examples = inputs, examples
        raise error from None
    return DerivationReport(examples, errors)
