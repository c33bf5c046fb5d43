"""Finite-difference checks of autograd: gradcheck, gradgradcheck, and the machinery they share.

For f: inputs -> out, autograd's Jacobian J (one row per element of out, one column per element
of the inputs) is compared with central differences

    J[:, i] ~= (f(x + h e_i) - f(x - h e_i)) / (2 h),       h = eps * max(1, |x_i|)

evaluated in float64 whatever the inputs' dtype (the analytic side runs in the inputs' own dtype:
that is what is being checked). The error of a central difference is about
h^2 |f'''| / 6 (truncation) plus u |f| / h (rounding, u = the unit roundoff of the precision f
really computes in), smallest near h = u^(1/3): eps defaults to 1e-6 for float64 inputs and
1e-3 for float32 (whose functions may compute in float32 even when handed float64 copies).

Three things keep a correct gradient from failing:
- Kinks. The recorded graph is walked (`topological_order`) at x and at x +- h; for every primitive
  with a `kink` in the table (relu, abs, sign at 0; maximum and max at ties) the side of the kink
  each element is on is compared. An element whose +-h window changes a side (or the recorded
  primitives) is skipped, and the skips are counted in the result and in any error.
- Step size. An entry that disagrees is re-estimated on a ladder of steps h/10 ... 1000 h: the
  largest step whose difference agrees with the one at a tenth of it wins (else Richardson
  extrapolation of the closest pair, R = (100 D(s) - D(10 s)) / 99, which cancels the h^2 error
  term). This uses no knowledge of the analytic value, so a wrong gradient still fails; the error
  then says whether the mismatch changed with the step (finite-difference error) or stayed put,
  and whether a Richardson-extrapolated difference agrees (a wrong formula if neither).
- Size. Beyond `max_full_size` elements the full Jacobian is replaced by random projections,
  <u, J v> (two evaluations of f) against <J^T u, v> (one backward pass); a failing projection is
  narrowed down to one input element by bisection of v's support.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autonet import backend
from autonet.engine import topological_order
from autonet.modes import is_grad_enabled
from autonet.ops import concatenate
from autonet.primitives import constant_like
from autonet.tensor import Tensor
from autonet.transforms import gradients

# An evaluation returns the output and the tensors whose graphs hold the kinks that matter
# (gradgradcheck's output, a gradient, need not contain the forward relu whose step it jumps).
Evaluation = Callable[[list[Tensor]], tuple[Tensor, list[Tensor]]]
# The analytic side of a check: u (an array of the output's shape) -> J^T u for each differentiated
# input, as float64 arrays of the inputs' shapes. gradcheck's is autograd's backward pass; derive
# passes the value of its formulas.
VectorJacobianProduct = Callable[[np.ndarray], list[np.ndarray]]


class GradcheckError(AssertionError):
    """Autograd disagrees with finite differences.

    An AssertionError (PyTorch's GradcheckError is a RuntimeError) because it reports a failed
    check: pytest shows its message as a test failure.
    """


class GradcheckWarning(UserWarning):
    """A check ran at reduced strength: float32 inputs, or every entry skipped at a kink."""


Signature = list[tuple[str, Any]]


def graph_signature(roots: Sequence[Tensor]) -> Signature:
    """The recorded primitives in topological order, with the kink side of each kinked one."""
    signature: Signature = []
    seen: set[int] = set()
    for root in roots:
        if not (isinstance(root, Tensor) and root.requires_grad):
            continue
        for node in topological_order(root):
            if id(node) in seen or node.op is None:
                continue
            seen.add(id(node))
            kink = node.op.kink
            signature.append((node.op.name, None if kink is None else kink.side(node)))
    return signature


def same_piece(a: Signature, b: Signature) -> bool:
    """Whether two evaluations took the same primitives and the same side of every kink."""
    return len(a) == len(b) and all(
        name_a == name_b and (side_a is None or np.array_equal(side_a, side_b))
        for (name_a, side_a), (name_b, side_b) in zip(a, b, strict=True)
    )


def default_eps(dtypes: Sequence[np.dtype]) -> float:
    """The step for the least precise dtype: about u^(1/3) (float64 1e-6, float32 1e-3)."""
    resolution = max(np.finfo(d).resolution for d in dtypes)
    return 1e-6 if resolution <= 1e-15 else 1e-3 if resolution <= 1e-6 else 1e-2


class FiniteDifferences:
    """Central differences of a recorded function, in float64, kept off the kinks of its graph.

    `arrays` are the inputs (floating ones are promoted to float64); `wrt` the positions of the
    inputs to differentiate. Each evaluation records the graph (the wrt inputs require grad) so
    that its kinks can be compared with those at x.
    """

    def __init__(
        self,
        evaluate: Evaluation,
        arrays: Sequence[np.ndarray],
        wrt: Sequence[int],
        eps: float,
        library: Any = np,
    ) -> None:
        self.evaluate = evaluate
        self.library = library  # the inputs' array library: f is evaluated on its arrays
        self.arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
        self.wrt = list(wrt)
        self.eps = eps
        self.out, self.signature = self.at(self.arrays)

    def at(self, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, Signature]:
        """f at arrays, flattened to float64, and the signature of its recorded graph."""
        xp = self.library
        tensors = [
            Tensor(a if xp is np else xp.asarray(a), requires_grad=i in self.wrt)
            for i, a in enumerate(arrays)
        ]
        out, roots = self.evaluate(tensors)
        return out.numpy().astype(np.float64).ravel(), graph_signature(roots)

    def step(self, k: int, i: int) -> float:
        """h for element i of input k: eps, scaled up for elements larger than 1."""
        return self.eps * max(1.0, abs(float(self.arrays[k].flat[i])))

    def difference(self, directions: dict[int, np.ndarray], h: float) -> np.ndarray | None:
        """(f(x + h d) - f(x - h d)) / (2 h) for direction d (one array per input position), or
        None when x +- h d lies across a kink from x."""
        results = []
        for sign in (1, -1):
            moved = list(self.arrays)
            for k, d in directions.items():
                moved[k] = self.arrays[k] + sign * h * d
            out, signature = self.at(moved)
            if not same_piece(signature, self.signature):
                return None
            results.append(out)
        return (results[0] - results[1]) / (2 * h)

    def unit(self, k: int, i: int) -> dict[int, np.ndarray]:
        e = np.zeros(self.arrays[k].shape)
        e.flat[i] = 1.0
        return {k: e}

    def column(self, k: int, i: int, h: float | None = None) -> np.ndarray | None:
        """d out / d (input k, element i), or None if the element's window crosses a kink."""
        return self.difference(self.unit(k, i), self.step(k, i) if h is None else h)

    def jacobian(self, k: int) -> np.ndarray:
        """The (out size, input size) Jacobian of input k; columns of skipped elements are NaN."""
        size = self.arrays[k].size
        jac = np.full((self.out.size, size), np.nan)
        for i in range(size):
            col = self.column(k, i)
            if col is not None:
                jac[:, i] = col
        return jac

    def ladder(self, k: int, i: int) -> list[tuple[float, np.ndarray | None]]:
        """The column at steps h/10, h, 10 h, ..., 1000 h (up to a tenth of max(1, |x_i|)), in
        increasing order; None where the step crosses a kink. Larger steps cut rounding error,
        the usual cause of a false mismatch, at the price of truncation error."""
        h = self.step(k, i)
        largest = 0.1 * max(1.0, abs(float(self.arrays[k].flat[i])))
        steps = [s for s in (h / 10, h, 10 * h, 100 * h, 1000 * h) if s <= largest]
        return [(s, self.column(k, i, s)) for s in steps]

    def refined_column(self, k: int, i: int, atol: float, rtol: float) -> np.ndarray | None:
        """A better estimate of a column, chosen without looking at the analytic value.

        Going down the ladder from its largest step s: the first D(s) that agrees with D(s/10)
        within atol + rtol |D(s/10)|. Truncation error falls 100-fold from s to s/10 and rounding
        error grows 10-fold, so two agreeing neighbours are dominated by neither. If no two
        agree, the closest pair is combined by Richardson extrapolation.
        """
        pairs = neighbours(self.ladder(k, i))
        for small, large in reversed(pairs):
            if not mismatches(large, small, atol, rtol).any():
                return large
        if not pairs:
            return None
        return richardson(*min(pairs, key=lambda p: float(np.max(np.abs(p[0] - p[1])))))

    def diagnosis(self, k: int, i: int, row: int, analytic: float, atol: float, rtol: float) -> str:
        """Whether the mismatch at (row, column i of input k) moves with the step or stays put,
        and whether a Richardson-extrapolated difference agrees with the analytic value."""
        ladder = self.ladder(k, i)
        errors = {s: abs(analytic - float(c[row])) for s, c in ladder if c is not None}
        pairs = neighbours(ladder)
        if not pairs:
            return (
                "the finite difference could not be re-estimated (steps around h cross a kink or "
                "exceed a tenth of max(1, |x|))"
            )
        listing = ", ".join(f"{e:.3g} at h={s:.0e}" for s, e in sorted(errors.items()))
        moves = min(errors.values()) < max(errors.values()) / 10
        extrapolated = float(richardson(*pairs[-1])[row])
        agrees = abs(analytic - extrapolated) <= atol + rtol * abs(extrapolated)
        trend = "changes with the step" if moves else "stays put as the step changes"
        observed = (
            f"|analytic - numeric| {trend} ({listing}); a Richardson-extrapolated difference "
            f"gives {extrapolated:.10g}, which {'agrees' if agrees else 'also disagrees'} with "
            "the analytic value"
        )
        if agrees or moves:
            best = min(errors, key=errors.__getitem__)
            scale = max(1.0, abs(float(self.arrays[k].flat[i])))
            return (
                f"{observed}: this looks like finite-difference error (rounding or truncation), "
                f"not a wrong gradient; try eps={best / scale:.0e}, or check in float64"
            )
        return f"{observed}: not rounding; the analytic gradient (a VJP on this path) is wrong"


def neighbours(
    ladder: list[tuple[float, np.ndarray | None]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(D(s), D(10 s)) for each two consecutive steps of a ladder that both cross no kink."""
    return [
        (small, large)
        for (_, small), (_, large) in zip(ladder, ladder[1:], strict=False)
        if small is not None and large is not None
    ]


def richardson(small: np.ndarray, large: np.ndarray) -> np.ndarray:
    """Richardson extrapolation of central differences at steps s and 10 s: their error is
    c s^2 + O(s^4), so (100 D(s) - D(10 s)) / 99 cancels the s^2 term."""
    return (100 * small - large) / 99


def relative_error(a: np.ndarray, b: np.ndarray, atol: float) -> np.ndarray:
    """|a - b| / max(|a|, |b|, atol): magnitudes below atol count as atol, so that two values both
    near 0 do not show a large relative error."""
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), atol)


def mismatches(analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Entries where |analytic - numeric| > atol + rtol |numeric| (NaN numeric: skipped)."""
    with np.errstate(invalid="ignore"):
        return np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)


@dataclass(frozen=True)
class GradcheckResult:
    """What gradcheck compared. Always truthy (a failed check raises), so `assert gradcheck(...)`
    reads as in PyTorch, where gradcheck returns True."""

    method: str
    compared: int
    skipped: int
    refined: int
    max_abs_error: float
    max_rel_error: float
    eps: float

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return (
            f"gradcheck passed ({self.method}, eps={self.eps:g}): {self.compared} entries "
            f"compared, {self.skipped} skipped at kinks, {self.refined} needed a refined "
            f"finite difference; max abs error {self.max_abs_error:.2e}, max relative error "
            f"{self.max_rel_error:.2e}"
        )


def input_label(t: Tensor, position: int) -> str:
    """How errors name an input: its name if it has one, else its position."""
    return t.name or f"input {position}"


def input_header(t: Tensor, position: int) -> str:
    where = f"input {position}, " if t.name else ""
    return f"{input_label(t, position)} ({where}shape {t.shape}, {t.dtype})"


def element(shape: tuple[int, ...], i: int) -> str:
    return "[" + ", ".join(str(j) for j in np.unravel_index(i, shape)) + "]" if shape else "[]"


def as_input_tensors(inputs: Any, caller: str) -> list[Tensor]:
    """inputs (a Tensor or a sequence of Tensors, arrays and numbers) as a list of Tensors."""
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    tensors = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    if not any(t.requires_grad for t in tensors):
        raise ValueError(
            f"{caller}: none of the {len(tensors)} inputs requires grad, so there is nothing to "
            "check; create the inputs to differentiate with requires_grad=True, e.g. "
            "an.tensor(x, requires_grad=True)"
        )
    return tensors


def output_of(value: Any, caller: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{caller}: the function must return a Tensor (one output, any shape), got "
            f"{type(value).__name__}; combine several outputs with an.concatenate"
        )
    return value


def autograd_vjp(out: Tensor, wanted: list[Tensor]) -> VectorJacobianProduct:
    """J^T u by a backward pass through out's graph, in the inputs' own dtype."""
    return lambda u: vjp(out, wanted, u)


def analytic_jacobians(
    vjp_of: VectorJacobianProduct, out: Tensor, tensors: list[Tensor], wrt: list[int]
) -> list[np.ndarray]:
    """The analytic Jacobian for each wrt input, row j = J^T e_j (for autograd, a backward pass
    seeded with e_j), converted to float64 for the comparison."""
    jacs = [np.zeros((out.size, tensors[k].size)) for k in wrt]
    for j in range(out.size):
        seed = np.zeros(out.shape)
        seed.flat[j] = 1
        for jac, g in zip(jacs, vjp_of(seed), strict=True):
            jac[j] = np.asarray(g, dtype=np.float64).ravel()
    return jacs


def check(
    evaluate: Evaluation,
    tensors: list[Tensor],
    caller: str,
    eps: float | None,
    atol: float,
    rtol: float,
    max_full_size: int,
    n_projections: int,
    seed: int,
    vjp_of: VectorJacobianProduct | None = None,
    analytic: str = "autograd",
) -> GradcheckResult:
    """The comparison behind gradcheck and gradgradcheck (see the module docstring), and derive's
    finite-difference check of its formulas.

    vjp_of is the analytic side (None: autograd's backward pass through evaluate(tensors)), and
    `analytic` what errors call it.
    """
    __tracebackhide__ = True
    if not is_grad_enabled():
        raise RuntimeError(
            f"{caller}: called under no_grad, so autograd records nothing to check; call it "
            "outside the `with an.no_grad():` block"
        )
    wrt = [k for k, t in enumerate(tensors) if t.requires_grad]
    dtypes = [tensors[k].dtype for k in wrt]
    if eps is None:
        eps = default_eps(dtypes)
    low = [input_label(tensors[k], k) for k in wrt if np.finfo(tensors[k].dtype).bits < 64]
    if low:
        warnings.warn(
            GradcheckWarning(
                f"{caller}: {', '.join(low)} {'is' if len(low) == 1 else 'are'} "
                f"{', '.join(sorted({str(d) for d in dtypes if np.finfo(d).bits < 64}))}: "
                f"autograd runs in that precision, finite differences in float64 with eps={eps:g}; "
                f"small errors (below atol={atol:g} + rtol={rtol:g} * |numeric|) go unseen. "
                "Check float64 inputs for a sharper test"
            ),
            stacklevel=3,
        )
    library = backend.namespace_of(*(t.data for t in tensors), operation=caller)
    numeric = FiniteDifferences(evaluate, [t.numpy() for t in tensors], wrt, eps, library)
    out, _ = evaluate(tensors)
    if vjp_of is None:
        vjp_of = autograd_vjp(out, [tensors[k] for k in wrt])
    total = sum(tensors[k].size for k in wrt)
    if total <= max_full_size and numeric.out.size <= max_full_size:
        analytic_jacs = analytic_jacobians(vjp_of, out, tensors, wrt)
        return check_full(
            evaluate, tensors, wrt, numeric, analytic_jacs, caller, analytic, atol, rtol
        )
    return check_projections(
        evaluate,
        tensors,
        wrt,
        numeric,
        out,
        vjp_of,
        caller,
        analytic,
        atol,
        rtol,
        n_projections,
        seed,
    )


def check_full(
    evaluate: Evaluation,
    tensors: list[Tensor],
    wrt: list[int],
    numeric: FiniteDifferences,
    analytic_jacs: list[np.ndarray],
    caller: str,
    analytic: str,
    atol: float,
    rtol: float,
) -> GradcheckResult:
    __tracebackhide__ = True
    compared = skipped = refined = 0
    max_abs = max_rel = 0.0
    for jac_a, k in zip(analytic_jacs, wrt, strict=True):
        jac_n = numeric.jacobian(k)
        bad = mismatches(jac_a, jac_n, atol, rtol)
        for i in np.flatnonzero(bad.any(axis=0))[:MAX_REFINED]:
            column = numeric.refined_column(k, int(i), atol, rtol)
            if column is not None and not mismatches(jac_a[:, i], column, atol, rtol).any():
                jac_n[:, i] = column
                refined += 1
        bad = mismatches(jac_a, jac_n, atol, rtol)
        kept = ~np.isnan(jac_n)
        compared += int(kept.sum())
        skipped_k = int(np.isnan(jac_n[0]).sum()) if jac_n.size else 0
        skipped += skipped_k
        if kept.any():
            max_abs = max(max_abs, float(np.abs(jac_a - jac_n)[kept].max()))
            max_rel = max(max_rel, float(relative_error(jac_a, jac_n, atol)[kept].max()))
        if bad.any():
            raise GradcheckError(
                describe_full_mismatch(
                    caller,
                    analytic,
                    tensors[k],
                    k,
                    jac_a,
                    jac_n,
                    bad,
                    skipped_k,
                    numeric,
                    atol,
                    rtol,
                    evaluate,
                    tensors,
                )
            )
    if compared == 0 and skipped:
        warnings.warn(
            GradcheckWarning(
                f"{caller}: every entry ({skipped}) was skipped at a kink; nothing "
                "was compared. Move the inputs away from the kinks."
            ),
            stacklevel=4,
        )
    return GradcheckResult(
        "full Jacobian", compared, skipped, refined, max_abs, max_rel, numeric.eps
    )


# Each refined column costs 10 evaluations of f; past this many mismatching columns the formula is
# wrong anyway and refining the rest would only delay the report.
MAX_REFINED = 32
# Jacobians with at most this many entries are printed in full in an error.
MAX_PRINTED = 36


def primitives_on_path(evaluate: Evaluation, tensors: list[Tensor]) -> str:
    out, roots = evaluate(tensors)
    names = [name for name, _ in graph_signature([out, *roots])]
    return ", ".join(dict.fromkeys(names))


def describe_full_mismatch(
    caller: str,
    analytic: str,
    t: Tensor,
    k: int,
    jac_a: np.ndarray,
    jac_n: np.ndarray,
    bad: np.ndarray,
    skipped: int,
    numeric: FiniteDifferences,
    atol: float,
    rtol: float,
    evaluate: Evaluation,
    tensors: list[Tensor],
) -> str:
    """The error of a full-Jacobian check: the input, its worst element, both values, the
    diagnosis, and both Jacobians when they are small."""
    with np.errstate(invalid="ignore"):
        excess = np.where(bad, np.abs(jac_a - jac_n) / (atol + rtol * np.abs(jac_n)), 0)
    row, i = np.unravel_index(int(np.argmax(excess)), excess.shape)
    a, n = float(jac_a[row, i]), float(jac_n[row, i])
    label = input_label(t, k)
    out_shape = evaluate(tensors)[0].shape
    h = numeric.step(k, int(i))
    allowed = atol + rtol * abs(n)
    lines = [
        f"{caller}: {analytic}'s gradient of {input_header(t, k)} does not match finite "
        "differences.",
        f"  worst element {label}{element(t.shape, int(i))}, of output element "
        f"out{element(out_shape, int(row))}:",
        f"    analytic ({analytic}, in {t.dtype})".ljust(52) + f"{a: .10g}",
        f"    numeric (float64 central difference, h={h:.1g})".ljust(52) + f"{n: .10g}",
        f"    |analytic - numeric| {abs(a - n):.3g}, relative error "
        f"{float(relative_error(np.array(a), np.array(n), atol)):.3g}; allowed atol {atol:g} + "
        f"rtol {rtol:g} * |numeric| = {allowed:.3g}",
        f"  {int(bad.sum())} of {int((~np.isnan(jac_n)).sum())} compared entries disagree; "
        f"{skipped} element(s) of {label} skipped (their +-h window crosses a kink).",
        "  diagnosis: " + numeric.diagnosis(k, int(i), int(row), a, atol, rtol),
        f"  primitives on the path: {primitives_on_path(evaluate, tensors)}",
    ]
    if jac_a.size <= MAX_PRINTED:
        options = {"precision": 6, "suppress_small": True, "prefix": "    "}
        lines += [
            f"  analytic Jacobian d out / d {label} (rows: output elements, columns: elements):",
            "    " + np.array2string(jac_a, **options),
            "  numeric Jacobian (nan: skipped at a kink):",
            "    " + np.array2string(jac_n, **options),
        ]
    return "\n".join(lines)


def check_projections(
    evaluate: Evaluation,
    tensors: list[Tensor],
    wrt: list[int],
    numeric: FiniteDifferences,
    out: Tensor,
    vjp_of: VectorJacobianProduct,
    caller: str,
    analytic: str,
    atol: float,
    rtol: float,
    n_projections: int,
    seed: int,
) -> GradcheckResult:
    """Compare <u, J v> (finite differences along v) with <J^T u, v> (one backward pass) for random
    unit vectors u, v; redraw v when x +- h v crosses a kink."""
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    h = numeric.eps * max(1.0, *(float(np.abs(numeric.arrays[k]).max(initial=0)) for k in wrt))
    compared = skipped = 0
    max_abs = max_rel = 0.0
    attempts = 0
    while compared < n_projections and attempts < 3 * n_projections:
        attempts += 1
        u = rng.normal(size=out.shape)
        u /= max(np.linalg.norm(u), 1e-300)
        vs = {k: rng.normal(size=tensors[k].shape) for k in wrt}
        norm = np.sqrt(sum(float((v * v).sum()) for v in vs.values()))
        vs = {k: v / norm for k, v in vs.items()}
        difference = numeric.difference(vs, h)
        if difference is None:
            skipped += 1
            continue
        n = float(u.ravel() @ difference)
        jtu = vjp_of(u)
        a = sum(float((g * vs[k]).sum()) for g, k in zip(jtu, wrt, strict=True))
        compared += 1
        max_abs = max(max_abs, abs(a - n))
        max_rel = max(max_rel, float(relative_error(np.array(a), np.array(n), atol)))
        if mismatches(np.array(a), np.array(n), atol, rtol):
            raise GradcheckError(
                describe_projection_mismatch(
                    caller,
                    analytic,
                    tensors,
                    wrt,
                    numeric,
                    jtu,
                    u,
                    vs,
                    a,
                    n,
                    h,
                    atol,
                    rtol,
                    evaluate,
                )
            )
    if compared == 0:
        warnings.warn(
            GradcheckWarning(
                f"{caller}: every random direction crossed a kink; nothing was "
                "compared. Move the inputs away from the kinks."
            ),
            stacklevel=4,
        )
    method = f"{compared} random projections <u, J v> vs <J^T u, v>"
    return GradcheckResult(method, compared, skipped, 0, max_abs, max_rel, numeric.eps)


def vjp(out: Tensor, wanted: list[Tensor], u: np.ndarray) -> list[np.ndarray]:
    """J^T u for each wanted input, as float64 arrays of the inputs' shapes."""
    if not out.requires_grad:
        return [np.zeros(t.shape) for t in wanted]
    seed = constant_like(out, u.astype(out.dtype))  # in the output's array library
    grads = gradients(out, wanted, grad=seed, retain_graph=True)
    return [g.numpy().astype(np.float64) for g in grads]


def describe_projection_mismatch(
    caller: str,
    analytic: str,
    tensors: list[Tensor],
    wrt: list[int],
    numeric: FiniteDifferences,
    jtu: list[np.ndarray],
    u: np.ndarray,
    vs: dict[int, np.ndarray],
    a: float,
    n: float,
    h: float,
    atol: float,
    rtol: float,
    evaluate: Evaluation,
) -> str:
    """Narrow a failing projection to one element: the mismatch <J^T u, v_S> - <u, J v_S> is
    linear in v, so of two halves of v's support one carries at least half of it; keep that half
    until one element is left (2 evaluations of f per half, log2(size) rounds)."""
    support = [(k, i) for k in wrt for i in range(tensors[k].size)]
    grads = dict(zip(wrt, jtu, strict=True))

    def mismatch(part: list[tuple[int, int]]) -> float:
        direction = {k: np.zeros(tensors[k].shape) for k in wrt}
        for k, i in part:
            direction[k].flat[i] = vs[k].flat[i]
        difference = numeric.difference(direction, h)
        analytic = sum(grads[k].flat[i] * vs[k].flat[i] for k, i in part)
        return abs(analytic - (0.0 if difference is None else float(u.ravel() @ difference)))

    while len(support) > 1:
        half = len(support) // 2
        first, second = support[:half], support[half:]
        support = first if mismatch(first) >= mismatch(second) else second
    k, i = support[0]
    column = numeric.column(k, i)
    element_n = float("nan") if column is None else float(u.ravel() @ column)
    element_a = float(grads[k].flat[i])
    label = input_label(tensors[k], k)
    return "\n".join(
        [
            f"{caller}: autograd disagrees with finite differences along a random projection "
            f"(inputs too large for the full Jacobian).",
            f"  <J^T u, v> ({analytic}) = {a:.8g}, <u, J v> (float64 central difference, "
            f"h={h:.2g}) = {n:.8g}; |difference| {abs(a - n):.3g} > atol {atol:g} + "
            f"rtol {rtol:g} * |numeric|",
            f"  narrowed by bisection to {input_header(tensors[k], k)}, element "
            f"{label}{element(tensors[k].shape, i)}:",
            f"    (J^T u) analytic {element_a:.8g}, numeric {element_n:.8g}, relative error "
            f"{float(relative_error(np.array(element_a), np.array(element_n), atol)):.3g}",
            f"  primitives on the path: {primitives_on_path(evaluate, tensors)}",
        ]
    )


def gradcheck(
    f: Callable[..., Any],
    inputs: Any,
    eps: float | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    max_full_size: int = 512,
    n_projections: int = 8,
    seed: int = 0,
) -> GradcheckResult:
    """Check autograd's derivatives of f at inputs against central finite differences.

        J_autograd[j, i] = d out_j / d x_i by backward passes (in the inputs' dtype)
        J_numeric[:, i]  = (f(x + h e_i) - f(x - h e_i)) / (2 h)   in float64, h = eps max(1, |x_i|)
        passes when |J_autograd - J_numeric| <= atol + rtol |J_numeric| for every entry

    f takes the inputs (Tensors; arrays and numbers are wrapped) and returns one Tensor of any
    shape. Only inputs with requires_grad=True are differentiated, as in torch.autograd.gradcheck.

    eps      step; None picks it from the least precise input dtype (float64 1e-6, float32 1e-3)
    max_full_size   above this many input (or output) elements, check `n_projections` random
             projections <u, J v> vs <J^T u, v> instead of the full Jacobian

    Returns a GradcheckResult (truthy; it says how many entries were compared, skipped at kinks
    and refined) or raises GradcheckError naming the input, its worst element, both values, their
    relative error, whether the mismatch looks like finite-difference error, and both Jacobians
    when small. Warns (GradcheckWarning) for float32 inputs. Example:

        x = an.tensor([0.5, -1.0, 2.0], requires_grad=True)
        an.gradcheck(lambda x: an.sigmoid(x) * x, [x])
    """
    __tracebackhide__ = True  # in pytest, tracebacks start at the caller's line
    tensors = as_input_tensors(inputs, "gradcheck")

    def evaluate(ts: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        out = output_of(f(*ts), "gradcheck")
        return out, [out]

    return check(
        evaluate, tensors, "gradcheck", eps, atol, rtol, max_full_size, n_projections, seed
    )


def gradgradcheck(
    f: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    eps: float | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    max_full_size: int = 512,
    n_projections: int = 8,
    seed: int = 0,
) -> GradcheckResult:
    """Check second derivatives: gradcheck of the first-order VJP  x -> J(x)^T u.

        F(x) = concatenate over the inputs x_k requiring grad of  (d out / d x_k)^T u
        dF/dx by autograd (backward through the graph recorded by create_graph=True)
        vs central differences of F (first-order autograd at x +- h e_i)

    u is grad_outputs (an array of out's shape), or a fixed random vector (seeded by `seed`) when
    None. Kinks of the forward graph (a relu's step in its derivative) are skipped as in gradcheck.
    Other arguments and the result are as gradcheck's.
    """
    __tracebackhide__ = True
    tensors = as_input_tensors(inputs, "gradgradcheck")
    out_shape = output_of(f(*tensors), "gradgradcheck").shape
    if grad_outputs is None:
        u = np.random.default_rng(seed).normal(size=out_shape)
    else:
        u = backend.to_numpy(getattr(grad_outputs, "data", grad_outputs)).astype(np.float64)
        if u.shape != out_shape:
            raise ValueError(
                f"gradgradcheck: grad_outputs has shape {u.shape} but f's output has "
                f"shape {out_shape}; pass an array of the output's shape"
            )

    def first_order(ts: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        out = output_of(f(*ts), "gradgradcheck")
        wanted = [t for t in ts if t.requires_grad]
        if not out.requires_grad:
            zeros = np.zeros(sum(t.size for t in wanted))
            return Tensor(constant_like(out, zeros)), []
        seed = constant_like(out, u.astype(out.dtype))  # in the output's array library
        grads = gradients(out, wanted, grad=seed, create_graph=True)
        flat = concatenate([g.reshape(-1) for g in grads])
        return flat, [flat, out]

    return check(
        first_order, tensors, "gradgradcheck", eps, atol, rtol, max_full_size, n_projections, seed
    )
