"""derive(): the engine's backward pass run on symbols, giving d(output)/d(t) as formulas, each
checked against autograd's gradient and finite differences; Derivation prints them.

The walk is engine.backpropagate's own, with every node's value replaced by its Expr (naming.py
gives those, and the names of shared gradients); check.py does the finite differences. How it
works, the notation and the names: docs/derive.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autonet import backend, engine
from autonet.derive.check import agrees, check_numerically, loss_as_function_of
from autonet.derive.expr import Expr
from autonet.derive.naming import name_deltas, name_labels, symbols_of
from autonet.derive.render import format_name, render
from autonet.gradcheck import GradcheckResult
from autonet.modes import is_grad_enabled
from autonet.tensor import Tensor
from autonet.transforms import gradients


@dataclass
class Formula:
    """d(output)/d(tensor) as an expression, and how it compares with autograd's gradient and with
    finite differences."""

    label: str  # ∂L/∂syn1
    name: str  # syn1
    expr: Expr
    autograd: np.ndarray
    error: float  # max |expr.value - autograd|
    matches_autograd: bool
    # gradcheck's comparison of expr.value with finite differences when they agree (None when they
    # disagree or were not compared), and its explanation when they disagree.
    finite_differences: GradcheckResult | None = None
    finite_difference_failure: str | None = None

    @property
    def verified(self) -> bool:
        """Equal to autograd's gradient, and not contradicted by finite differences."""
        return self.matches_autograd and self.finite_difference_failure is None


class Derivation:
    """The formulas of d(output)/d(tensor) for each tensor of `wrt`, checked against autograd and
    (unless derive(..., finite_differences=False)) against finite differences.

    str(d) prints them (named deltas first, then one line per tensor, then the forward definitions
    of the named intermediates); d.latex() is LaTeX; in Jupyter it renders as math. d[syn0] (or
    d["syn0"]) is the Formula of one tensor; d.text(syn0, expand=True) writes it with every delta
    substituted, as the tutorial writes its formulas. d.given lists the sizes and class indices
    the formulas name, [("m", "4"), ("T", "[1, 0, 0, 1]")], and d.misread the forward definitions
    (of the `where` line) that do not evaluate to the recorded values (none, when verified).
    """

    def __init__(
        self,
        output: str,
        formulas: list[Formula],
        deltas: list[tuple[str, Expr]],
        forward: list[tuple[str, Expr]],
        names: dict[int, str],
        keys: list[Tensor],
        seed: tuple[str, str] | None = None,
        given: list[tuple[str, str]] | None = None,
        misread: list[str] | None = None,
    ) -> None:
        self.output = output
        self.seed = seed  # (G, y) when dL/dy = G was given for a non-scalar output y
        self.given = given or []  # ("m", "5"), ("T", "[0, 2, 1]"): sizes and class indices
        self.misread = misread or []  # forward definitions that differ from the recorded values
        self.formulas = formulas
        self.deltas = deltas
        self.forward = forward
        self.names = names
        self.keys = keys

    def __getitem__(self, key: Tensor | str) -> Formula:
        for tensor, formula in zip(self.keys, self.formulas, strict=True):
            if tensor is key or (isinstance(key, str) and formula.name == key):
                return formula
        raise KeyError(f"derive: {key!r} is not among the tensors this derivation was taken for")

    @property
    def verified(self) -> bool:
        """Whether every formula evaluates to autograd's gradient and agrees with finite
        differences (where they were compared), and every forward definition of the `where`
        line to the recorded value."""
        return all(f.verified for f in self.formulas) and not self.misread

    @property
    def max_error(self) -> float:
        """The largest |formula - autograd| over all elements of all formulas."""
        return max((f.error for f in self.formulas), default=0.0)

    @property
    def finite_differences_checked(self) -> bool:
        return any(
            f.finite_differences is not None or f.finite_difference_failure is not None
            for f in self.formulas
        )

    @property
    def max_relative_error(self) -> float:
        """The largest relative error |formula - finite difference| / max(|formula|, |finite
        difference|, 1e-5) of the formulas that agree with finite differences."""
        results = [f.finite_differences for f in self.formulas if f.finite_differences]
        return max((r.max_rel_error for r in results), default=0.0)

    @property
    def skipped_at_kinks(self) -> int:
        """Elements (or random directions) left out of the finite-difference check because their
        +-h window crosses a kink (relu, abs at 0; max at ties)."""
        return sum(f.finite_differences.skipped for f in self.formulas if f.finite_differences)

    def text(self, key: Tensor | str, expand: bool = False, latex: bool = False) -> str:
        """The right-hand side of the formula of a tensor (or of a delta, by name: "δ_O");
        expand=True substitutes every named delta."""
        deltas = dict(self.deltas)
        expr = deltas[key] if isinstance(key, str) and key in deltas else self[key].expr
        return render(expr, latex, {} if expand else self.names)

    def equations(self, latex: bool = False) -> list[tuple[str, str]]:
        """(left, right) of every line: the deltas, then the gradient of each tensor."""
        lines = [(format_name(n, latex), render(e, latex, self.names)) for n, e in self.deltas]
        for f in self.formulas:
            left = rf"\frac{{\partial {format_name(self.output, latex)}}}{{\partial "
            left += rf"{format_name(f.name, latex)}}}" if latex else ""
            lines.append((left if latex else f.label, render(f.expr, latex, self.names)))
        return lines

    def check(self) -> str:
        """One sentence: whether every formula equals autograd's gradient and finite differences,
        and by how much; when one does not, the sentence is followed by gradcheck's explanation
        of each finite-difference mismatch."""
        if self.verified:
            return (
                "verified: each formula, evaluated on the recorded values, equals autograd's "
                f"gradient (largest difference {self.max_error:.1e})" + self.numeric_summary()
            )
        faults = []
        wrong = [
            f"{f.label} (off by {f.error:.1e})" for f in self.formulas if not f.matches_autograd
        ]
        if wrong:
            faults.append(f"these formulas differ from autograd's gradient: {', '.join(wrong)}")
        failed = [f for f in self.formulas if f.finite_difference_failure is not None]
        if self.misread:
            faults.append(
                "these definitions differ from the recorded values: " + ", ".join(self.misread)
            )
        if failed:
            labels = ", ".join(
                f.label + (" (which equals autograd's: a VJP rule on its path is wrong)")
                if f.matches_autograd
                else f.label
                for f in failed
            )
            faults.append(f"these differ from finite differences: {labels}")
        details = ["  " + str(f.finite_difference_failure).replace("\n", "\n  ") for f in failed]
        return "\n".join(["NOT verified: " + "; ".join(faults), *details])

    def numeric_summary(self) -> str:
        """' and finite differences (...)' for the verified sentence, or '' if not compared."""
        results = [(f, f.finite_differences) for f in self.formulas if f.finite_differences]
        if not results:
            return ""
        largest = max(r.max_abs_error for _, r in results)
        notes = [f"largest difference {largest:.1e}, relative {self.max_relative_error:.0e}"]
        skipped = self.skipped_at_kinks
        if skipped:
            notes.append(f"{skipped} element{'s' if skipped > 1 else ''} skipped at kinks")
        projected = [
            f"{f.name} ({r.compared} random directions)"
            for f, r in results
            if r.method != "full Jacobian"
        ]
        if projected:
            notes.append("compared along random directions for " + ", ".join(projected))
        unchecked = [f.name for f, r in results if r.compared == 0]
        if unchecked:
            notes.append(f"nothing compared for {', '.join(unchecked)}: every element at a kink")
        return f" and finite differences ({'; '.join(notes)})"

    def __str__(self) -> str:
        lines = [f"{left} = {right}" for left, right in self.equations()]
        if self.forward:
            lines.append(f"where {self.where()}")
        return "\n".join(lines + [self.check()])

    def __repr__(self) -> str:
        return str(self)

    def where(self, latex: bool = False) -> str:
        """The forward definitions of the named tensors (and of the seed G, if one was given)."""
        defs = [(format_name(n, latex), render(e, latex)) for n, e in self.forward]
        defs += [(format_name(n, latex), value) for n, value in self.given]
        if self.seed is not None:
            g, y = (format_name(n, latex) for n in self.seed)
            defs.append((g, rf"\frac{{\partial L}}{{\partial {y}}}" if latex else f"∂L/∂{y}"))
        return ", ".join(f"${n} = {e}$" if latex else f"{n} = {e}" for n, e in defs)

    def latex(self) -> str:
        """The formulas as a LaTeX aligned block (for a document, or `$$ ... $$` in Markdown)."""
        rows = [f"{left} &= {right}" for left, right in self.equations(latex=True)]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def _repr_markdown_(self) -> str:
        where = self.where(latex=True)
        verdict, *details = self.check().split("\n")  # gradcheck's explanation, preformatted
        details_block = "\n\n```text\n" + "\n".join(details) + "\n```" if details else ""
        return (
            f"$$\n{self.latex()}\n$$\n\n"
            + (f"where {where}\n\n" if where else "")
            + verdict
            + details_block
        )


def derive(
    output: Tensor, wrt: Sequence[Tensor], grad: Any = None, finite_differences: bool = True
) -> Derivation:
    """The formula of d(output)/d(t) for each t in wrt, from the recorded graph.

        S, Y = an.tensor(X, name="S"), an.tensor(T, name="Y")
        syn0 = an.tensor(w0, requires_grad=True, name="syn0")     # and syn1 likewise
        H = an.sigmoid(S @ syn0); H.name = "H"
        O = an.sigmoid(H @ syn1); O.name = "O"
        d = an.derive(0.5 * ((O - Y) ** 2).sum(), wrt=[syn1, syn0])
        d.text(syn1)               # 'H^T · δ_O'
        d.verified                 # True: each formula equals autograd's gradient

    A mean divides by sizes written as symbols (m, the batch size), and the losses read as a
    textbook writes them: δ_Z = (σ(Z) − Y) / m for binary cross-entropy on logits,
    (softmax(Z) − onehot(T)) / m for cross-entropy (docs/derive.md, "Identities").

    output must be a one-element tensor, or `grad` gives dL/d(output) (a Tensor, whose name is
    used, or an array, called G). The graph is kept (as retain_graph=True), so backward() can
    still follow.

    Each formula's value is checked against autograd's gradient and, with finite_differences=True,
    against central differences of L (the output, or sum(G * output)) in float64:

        formula[i] ~= (L(t + h e_i) - L(t - h e_i)) / (2 h)      every element i of t

    by gradcheck's machinery (its step, tolerances atol=1e-5, rtol=1e-3, refinement and kink
    skipping), with L re-evaluated by running the recorded graph again on the nudged value.
    This costs two evaluations of the part of the graph that depends on t per element; beyond
    MAX_FULL_SIZE elements it compares along N_PROJECTIONS random directions instead.
    """
    if not isinstance(output, Tensor) or not output.requires_grad:
        raise RuntimeError(
            "derive: the output must be a Tensor that requires grad (computed from a tensor with "
            "requires_grad=True)"
        )
    for i, t in enumerate(wrt):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(
                f"derive: wrt[{i}] ({getattr(t, 'name', None) or type(t).__name__}) does not "
                "require grad, so it has no gradient; pass tensors created with requires_grad=True"
            )
    if finite_differences and not is_grad_enabled():
        raise RuntimeError(
            "derive: finite differences re-run the recorded graph, and under no_grad nothing is "
            "recorded to keep them off its kinks; call derive outside the `with an.no_grad():` "
            "block, or pass finite_differences=False"
        )
    order = engine.topological_order(output)
    freed = [(n.op.name, n.shape) for n in reversed(order) if n.op is not None and not n.parents]
    if freed:
        raise RuntimeError(
            f"derive: the graph through {freed[0][0]} (output shape {freed[0][1]}) was freed by "
            "backward(), so there is nothing to derive from; call derive before backward(), or "
            "keep the graph with backward(retain_graph=True)"
        )
    seed_array = engine.check_root_grad(output, grad, "derive")
    seed_values = backend.to_numpy(seed_array)  # formulas are evaluated with NumPy
    seed = (
        Expr.const(seed_values)
        if grad is None
        else Expr.symbol(getattr(grad, "name", None) or "G", seed_values)
    )
    # With a seed G = dL/dy for a non-scalar output y, the formulas are those of dL/dx.
    loss, result = ("L", output.name or "y") if grad is not None else (output.name or "L",) * 2
    symbols, forward, sizes, misread = symbols_of(order, output, result)
    found = engine.backpropagate(
        output,
        seed,
        retain_graph=True,
        create_graph=False,
        wanted=order,
        operand=lambda node: symbols[id(node)],
    )
    autograd = gradients(output, wrt, grad=None if grad is None else seed_array, retain_graph=True)
    exprs = [found.get(id(t), Expr.const(np.zeros(t.shape, t.dtype))) for t in wrt]
    taken = {e.name for e in [*symbols.values(), *sizes] if e.name}
    labels = name_labels(exprs + [e for _, e in forward], taken)
    names, deltas = name_deltas(order, found, exprs, taken)
    formulas = []
    for i, (t, expr, auto) in enumerate(zip(wrt, exprs, autograd, strict=True)):
        symbol = symbols.get(id(t))
        name = t.name or (symbol.name if symbol is not None and symbol.name else f"wrt[{i}]")
        value = expr.value.astype(t.dtype)
        error = float(np.max(np.abs(value - auto.numpy()), initial=0.0))
        formula = Formula(
            f"∂{loss}/∂{name}", name, expr, auto.numpy(), error, agrees(value, auto.numpy())
        )
        if finite_differences:
            seed_of_sum = None if grad is None else seed_array
            evaluate = loss_as_function_of(t, order, output, seed_of_sum)
            formula.finite_differences, formula.finite_difference_failure = check_numerically(
                expr.value, name, t, evaluate
            )
        formulas.append(formula)
    seed_names = None if grad is None else (str(seed.name), result)
    given = [(str(e.name), format_array(e.value)) for e in sizes + labels]
    return Derivation(loss, formulas, deltas, forward, names, list(wrt), seed_names, given, misread)


def format_array(value: np.ndarray) -> str:
    """A size (5) or class indices ([0, 2, 1]; [0, 2, 1, ..., 1] when long), as given."""
    if value.ndim == 0:  # a length, held in the loss's float dtype
        return str(int(value))
    items = [str(v) for v in value.ravel().tolist()]
    return "[" + ", ".join(items if len(items) <= 12 else [*items[:3], "...", *items[-3:]]) + "]"
