"""Second derivatives where they are most often wrong: at exact zeros, ties, zero exponents and the
kinks inside smooth functions, and through a Tensor seed (Jacobian-vector products).

- Smooth functions whose stable forms are written with kinked parts (softplus, log_sigmoid,
  binary_cross_entropy_with_logits): their second derivatives, at 0 and elsewhere, against the
  exact s (1 - s); each computed two ways, an.grad composed and an.gradients(create_graph=True).
- a ** b with a Tensor exponent: all four second partials against exact formulas, at b = 0
  (where d2/da db = 1 / a, and where PyTorch's masked rule gives 0), at a = 1, and at a = 0.
- x ** p with a number exponent: p (p - 1) x^(p - 2), at x = 0 too.
- Random graphs (tests/fuzz.py) on inputs drawn from a few exact values (0, +-1/2, +-1, +-2), so
  that they meet zeros, ties and kinks: gradients, Hessian-vector products over all inputs (mixed
  partials included) and Jacobian-vector products against PyTorch in float64. There PyTorch's
  conventions are autonet's (relu'(0) = |x|'(0) = 0, ties share the gradient); its pow is run
  as exp(b log a), whose derivatives are exact at b = 0 too.
- Jacobian-vector products by the double-VJP trick (g = J^T u for a Tensor u requiring grad,
  then d<g, v>/du = J v) on random graphs, against central differences of raw NumPy.

The example count is modest in the normal suite; for a long run set
AUTONET_FUZZ_SECOND_ORDER_EXAMPLES, e.g.

    AUTONET_FUZZ_SECOND_ORDER_EXAMPLES=5000 python -m pytest -q tests/test_fuzz_second_order.py
"""

import math
import os

import numpy as np
import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

import autonet as an
from autonet.nn import functional as F
from tests.fuzz import (
    AutonetBackend,
    GivenLeaves,
    NumpyBackend,
    Step,
    TorchBackend,
    depending_on,
    example_graph,
    fuzz_settings,
    graphs,
    leaves_of,
    run,
)

EXAMPLES = int(os.environ.get("AUTONET_FUZZ_SECOND_ORDER_EXAMPLES", "30"))
second_order_settings = fuzz_settings(EXAMPLES)
EPS = np.finfo(np.float64).eps
H = 1e-6  # central-difference step, as in test_fuzz.py
LIMIT = 1e6  # graphs with a larger intermediate value are rejected, as in test_fuzz.py

# exact values that are kinks of the parts (0), and ordinary ones, then any
SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0])
POINTS = SPECIAL | st.floats(-30, 30)


def second(f, *args, wrt=(0, 0)) -> dict[str, float]:
    """d2 f / d args[i] d args[j], computed two ways: an.grad composed, and
    an.gradients(create_graph=True) followed by an.gradients."""
    i, j = wrt
    composed = an.grad(lambda *a: an.grad(f, argnums=i)(*a), argnums=j)(*args).item()
    leaves = [an.tensor(a, requires_grad=True) for a in args]
    (first,) = an.gradients(f(*leaves), [leaves[i]], create_graph=True)
    # a first derivative that records nothing is constant: the second is 0
    chained = an.gradients(first, [leaves[j]])[0].item() if first.requires_grad else 0.0
    return {"an.grad composed": composed, "an.gradients": chained}


def mismatches(cases, rel: float, abs: float) -> list[str]:  # noqa: A002 - pytest.approx's name
    """The cases (name, {way: value}, exact) whose value is not the exact one to the tolerance."""
    return [
        f"{name} by {way}: {value!r}, exact {want!r}"
        for name, values, want in cases
        for way, value in values.items()
        if value != pytest.approx(want, rel=rel, abs=abs)
    ]


def pow_cases(a: float, b: float) -> list:
    return [
        ("d2 a**b / d{}d{}".format(*("ab"[n] for n in wrt)), second(an.pow, a, b, wrt=wrt), want)
        for wrt, want in pow_partials(a, b).items()
    ]


def sigmoid_slope(x: float) -> float:
    """s (1 - s) for s = sigmoid(x), as e / (1 + e)^2 with e = exp(-|x|) <= 1: a few ulps."""
    e = math.exp(-abs(x))
    return e / (1 + e) ** 2


@second_order_settings
@given(x=POINTS, y=st.sampled_from([0.0, 1.0, 0.25]) | st.floats(0, 1))
@example(x=0.0, y=0.0)  # softplus''(0) = 1/4: the kinks of max(x, 0) and |x| must not show
def test_smooth_functions_have_their_exact_second_derivatives_at_kinks_of_their_parts(x, y):
    # softplus'' = s (1 - s), log_sigmoid'' = -s (1 - s); binary_cross_entropy_with_logits(z, y)
    # = softplus(z) - y z: d2/dz2 = s (1 - s), d2/dz dy = -1, d2/dy2 = 0. The exact values are
    # a few ulps off; autonet's s (1 - s) loses relative precision where s rounds near 1, but
    # its absolute error stays about eps (1 - s is exact, s is off by eps / 2): 4 eps absolute.
    q = sigmoid_slope(x)

    def bce(z, t):
        return F.binary_cross_entropy_with_logits(z, t, reduction="sum")

    cases = [
        ("softplus''", second(F.softplus, x), q),
        ("log_sigmoid''", second(F.log_sigmoid, x), -q),
        ("d2 bce / dz2", second(bce, x, y, wrt=(0, 0)), q),
        ("d2 bce / dz dy", second(bce, x, y, wrt=(0, 1)), -1.0),
        ("d2 bce / dy dz", second(bce, x, y, wrt=(1, 0)), -1.0),
        ("d2 bce / dy2", second(bce, x, y, wrt=(1, 1)), 0.0),
    ]
    assert not mismatches(cases, rel=4 * EPS, abs=4 * EPS)


def pow_partials(a: float, b: float) -> dict[tuple[int, int], float]:
    """The second partials of a^b: d2/da2 = b (b - 1) a^(b-2), d2/db2 = a^b log(a)^2,
    d2/da db = a^(b-1) (1 + b log a); at a = 0 (b >= 2) their limits: 2 or 0, 0, 0."""
    if a == 0:
        return {(0, 0): 2.0 if b == 2 else 0.0, (1, 1): 0.0, (0, 1): 0.0, (1, 0): 0.0}
    mixed = a ** (b - 1) * (1 + b * math.log(a))
    return {
        (0, 0): b * (b - 1) * a ** (b - 2),
        (1, 1): a**b * math.log(a) ** 2,
        (0, 1): mixed,
        (1, 0): mixed,
    }


@second_order_settings
@given(
    a=st.sampled_from([1.0, 2.0, 0.5, 3.0]) | st.floats(0.125, 4),
    b=st.sampled_from([0.0, 1.0, 2.0, -1.0, 0.5, 3.0]) | st.floats(-3, 3),
)
@example(a=2.0, b=0.0)  # d2(a**b)/da db = 1/a = 0.5 (masking grad_a to 0 at b = 0 gives 1)
@example(a=1.0, b=0.0)  # log a = 0 too
def test_pow_has_exact_second_partials_at_zero_exponents(a, b):
    # Each formula is a few roundings of terms no larger than a^(b-1) (1 + |b log a|) and
    # b (b - 1) a^(b-2), with |b log a| <= 5: the powers' relative error is about |b log a| eps.
    # 100 eps on the size of the terms leaves a wide margin and catches any wrong term.
    size = (a ** (b - 1) + a**b) * (1 + abs(b * math.log(a))) ** 2 + abs(b * (b - 1) * a ** (b - 2))
    assert not mismatches(pow_cases(a, b), rel=100 * EPS, abs=100 * EPS * size)


@second_order_settings
@given(b=st.sampled_from([2.0, 3.0]) | st.floats(2, 4))
@example(b=2.0)
def test_pow_at_a_zero_base_has_the_limits_as_second_partials(b):
    # at a = 0 and b >= 2 the second partials are continuous: their limits are exact values
    assert not mismatches(pow_cases(0.0, b), rel=100 * EPS, abs=100 * EPS)


@second_order_settings
@given(
    x=st.sampled_from([0.0, 1.0, 0.5, 2.0]) | st.floats(1 / 8, 3),
    p=st.sampled_from([0, 1, 2, 3, 4, 0.0, 1.0, 2.0]) | st.floats(-2, 3),
)
@example(x=0.0, p=0)
@example(x=0.0, p=2)
@example(x=2.0, p=0)
def test_a_number_exponent_has_the_exact_second_derivative(x, p):
    # d2/dx2 x^p = p (p - 1) x^(p-2); at x = 0 only integer p >= 2 or p in {0, 1} are finite
    assume(x > 0 or p in (0, 1, 2, 3, 4))
    want = p * (p - 1) * x ** (p - 2) if p not in (0, 1) else 0.0  # (0^0 = 1 for p = 2)
    cases = [("d2 x**p / dx2", second(lambda t: t**p, x), want)]
    assert not mismatches(cases, rel=100 * EPS, abs=100 * EPS * (1 + abs(want)))


# -------------------------------------------------------------------------------------------
# Random graphs


def directions(graph, k: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Fixed random vectors: v (one per input) for H v, u (for pool[k]) the seed of J^T u."""
    rng = np.random.default_rng(len(graph.steps))
    v = [rng.uniform(-1, 1, size=np.shape(a)) for a in graph.inputs]
    u_shape = np.shape(run(graph, NumpyBackend())[1][k])
    return v, v[0], rng.uniform(-1, 1, size=u_shape)


def autonet_derivatives(graph, k: int) -> dict[str, list[np.ndarray]]:
    """The gradient of the loss, H v over every input that requires grad, and J v for
    pool[k] as a function of input 0 (by the double-VJP trick), from autonet."""
    v, v0, u0 = directions(graph, k)
    leaves = leaves_of(graph)
    wrt = [t for t in leaves if t.requires_grad]
    loss, pool = run(graph, GivenLeaves(leaves))
    grads = an.gradients(loss, wrt, create_graph=True)
    vs = [vi for vi, t in zip(v, leaves, strict=True) if t.requires_grad]
    dot = an.tensor(0.0)
    for g, vi in zip(grads, vs, strict=True):
        dot = dot + (g * vi).sum()
    if dot.requires_grad:
        hv = [h.data for h in an.gradients(dot, wrt, retain_graph=True)]  # J v goes on
    else:  # every gradient is constant
        hv = [np.zeros(t.shape) for t in wrt]
    u = an.tensor(u0, requires_grad=True)
    (g,) = an.gradients(pool[k], [leaves[0]], grad=u, create_graph=True)
    (jv,) = an.gradients(g, [u], grad=v0)
    return {"gradient": [g.data for g in grads], "H v": hv, "J v": [jv.data]}


def torch_derivatives(graph, k: int, torch) -> dict[str, list[np.ndarray]]:
    """The same from PyTorch in float64 (its pow as exp(b log a): see TorchBackend)."""
    v, v0, u0 = directions(graph, k)

    def grad(output, inputs, **kwargs):
        found = torch.autograd.grad(output, inputs, allow_unused=True, **kwargs)
        return [torch.zeros_like(t) if g is None else g for g, t in zip(found, inputs, strict=True)]

    loss, pool = run(graph, TorchBackend(torch))
    leaves = pool[: len(graph.inputs)]
    wrt = [t for t in leaves if t.requires_grad]
    vs = [vi for vi, t in zip(v, leaves, strict=True) if t.requires_grad]
    grads = grad(loss, wrt, create_graph=True)
    dot = sum((g * torch.from_numpy(vi)).sum() for g, vi in zip(grads, vs, strict=True))
    hv = (
        grad(dot, wrt, retain_graph=True)
        if dot.requires_grad
        else [torch.zeros_like(t) for t in wrt]
    )
    u = torch.from_numpy(u0).requires_grad_(True)
    (g,) = grad(pool[k], [leaves[0]], grad_outputs=u, create_graph=True)
    (jv,) = grad(g, [u], grad_outputs=torch.from_numpy(v0)) if g.requires_grad else [g * 0]
    return {
        name: [t.detach().numpy(force=True) for t in ts]  # (force: also a ZeroTensor)
        for name, ts in (("gradient", grads), ("H v", hv), ("J v", [jv]))
    }


KINKED = {"relu", "abs", "maximum", "max", "pow_relu"}


def same_points_at_kinks(graph, torch) -> bool:
    """Whether autonet and PyTorch hand every kinked step bit-identical inputs. Their matmuls and
    sums may round differently, so a tie (maximum(a, b) with a == b, say) can hold in one and
    not in the other; the gradients then differ by the split at the tie, and neither is wrong."""
    _, ours = run(graph, AutonetBackend())
    _, theirs = run(graph, TorchBackend(torch))
    return all(
        np.array_equal(ours[a].data, theirs[a].detach().numpy())
        for step in graph.steps
        if step.kind in KINKED
        for a in step.args
    )


def in_range(graph) -> float:
    """Reject graphs that leave the well-conditioned range; return the loss terms' scale."""
    loss, pool = run(graph, NumpyBackend())
    assume(all(np.all(np.isfinite(v)) and np.all(np.abs(v) < LIMIT) for v in pool))
    return float(sum(np.sum(np.abs(w * pool[i])) for i, w in graph.weights.items()))


@second_order_settings
@given(graph=graphs(max_steps=15, special_values=True), output=st.integers(0, 64))
@example(  # x + softplus(x) at x = 0: softplus''(0) = 1/4
    graph=example_graph([0.0], [Step("softplus", (0,))]), output=1
)
@example(  # log_sigmoid at 0
    graph=example_graph([[0.0, 1.0]], [Step("log_sigmoid", (0,))]), output=1
)
@example(  # (a^2 + 1/2)^b at b = 0: d2/da db = 2a / (a^2 + 1/2), not 2a
    graph=example_graph([[0.5, 1.0], [0.0, 0.0]], [Step("pow", (0, 1))]), output=2
)
@example(  # ties: max of [1, 1, 1] and maximum(x, x), then a smooth function of them
    graph=example_graph(
        [[1.0, 1.0, 1.0]],
        [
            Step("max", (0,), {"axis": -1, "keepdims": True}),
            Step("maximum", (0, 0)),
            Step("mul", (1, 2)),
            Step("softplus", (3,)),
        ],
    ),
    output=4,
)
def test_random_graphs_at_zeros_and_ties_have_pytorchs_second_derivatives(graph, output):
    torch = pytest.importorskip("torch")
    scale = in_range(graph)
    if not same_points_at_kinks(graph, torch):
        event("the engines' rounding put a kinked step on different sides (not compared)")
        assume(False)
    reach = depending_on(graph, 0)
    k = reach[output % len(reach)]
    got = autonet_derivatives(graph, k)
    want = torch_derivatives(graph, k, torch)
    torch_nan = False
    for name in ("gradient", "H v", "J v"):
        for i, (g, w) in enumerate(zip(got[name], want[name], strict=True)):
            # PyTorch differentiates through both branches of its masks (pow's at a zero base):
            # 0 * log(0) = nan where the limit autonet takes is finite. Compared where PyTorch's
            # value is a number; where it is nan, no oracle.
            known = ~np.isnan(w)
            torch_nan |= not known.all()
            # the same chain rule in the same precision: only the order of sums differs, each
            # sum's rounding relative to its terms, of the size of the values, derivatives
            # and loss terms involved
            size = 1 + scale + np.max(np.abs(w[known]), initial=0.0)
            np.testing.assert_allclose(
                g[known], w[known], rtol=1e-9, atol=1e-11 * size, err_msg=f"{name} of input {i}"
            )
    event("PyTorch gave nan (not compared there)" if torch_nan else "compared everywhere")


@second_order_settings
@given(graph=graphs(max_steps=15), output=st.integers(0, 64))
@example(graph=example_graph([[1.0, 2.0]], [Step("square", (0,))]), output=1)
def test_jacobian_vector_products_by_double_vjp_match_finite_differences(graph, output):
    # u a Tensor that requires grad: g = J^T u = gradients(y, [x], grad=u, create_graph=True) is
    # linear in u, and gradients(g, [u], grad=v) = d<J^T u, v>/du = J v, the directional
    # derivative of y along v: central differences of y(x0 + t v) in raw NumPy.
    scale = in_range(graph)
    reach = depending_on(graph, 0)
    k = reach[output % len(reach)]
    v, v0, _ = directions(graph, k)

    def value(x):
        numpy_run = NumpyBackend()
        _, pool = run(graph, numpy_run, [x] + graph.inputs[1:])
        return np.asarray(pool[k]), numpy_run

    x0 = graph.inputs[0]
    (_, base), (up, moved_up), (down, moved_down) = (value(x0 + t * v0) for t in (0, H, -H))
    crossed = base.ties or any(
        moved.ties
        or not all(np.array_equal(p, q) for p, q in zip(moved.kinks, base.kinks, strict=True))
        for moved in (moved_up, moved_down)
    )
    event("skipped: a kink within the FD step" if crossed else "compared")
    if crossed:
        return
    expected = (up - down) / (2 * H)
    jv = autonet_derivatives(graph, k)["J v"][0]
    size = 1 + scale + np.max(np.abs(value(x0)[0]), initial=0.0)
    # rounding of y (size ~ `size`, a few ulps) divided by 2H, as the HVP test of test_fuzz.py
    np.testing.assert_allclose(jv, expected, rtol=1e-5, atol=1e-6 * size)
