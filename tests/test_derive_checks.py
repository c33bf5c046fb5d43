"""derive()'s self-check, its errors, and graphs beyond layered networks (fan-out, float32, deep
chains, user-defined primitives)."""

from __future__ import annotations

import numpy as np
import pytest

import autonet as an
from autonet.derive.expr import POW, SIMPLIFICATIONS


def cube_sum():
    x = an.tensor([0.5, -1.5, 2.0], requires_grad=True, name="x")
    return (x**3).sum(), x


def test_check_catches_a_wrong_simplification(monkeypatch):
    # x^(b-1) with the exponent dropped: the formula reads wrongly and evaluates wrongly.
    monkeypatch.setitem(SIMPLIFICATIONS, POW, lambda args, params: args[0])
    L, x = cube_sum()
    derivation = an.derive(L, wrt=[x])
    assert derivation.text(x) == "3 * x"
    assert not derivation.verified
    verdict = next(line for line in str(derivation).splitlines() if "verified" in line)
    assert verdict.startswith("NOT verified:") and "∂L/∂x (off by 1.1e+01)" in verdict
    # Finite differences, independent of the formula's reading, catch it too.
    assert "differ from finite differences: ∂L/∂x" in verdict
    assert "does not match finite differences" in derivation[x].finite_difference_failure


def test_check_passes_and_reports_the_difference():
    L, x = cube_sum()
    derivation = an.derive(L, wrt=[x])
    assert derivation.text(x) == "3 * x^2"
    assert derivation.verified and derivation.max_error == 0.0
    assert derivation.check().startswith("verified:")


def test_fan_out_adds_the_gradients_of_each_use():
    x = an.tensor([1.0, 2.0], requires_grad=True, name="x")
    derivation = an.derive((x * x).sum(), wrt=[x])
    assert derivation.text(x) == "x + x"
    np.testing.assert_array_equal(derivation[x].expr.value, [2.0, 4.0])


def test_float32_formulas_stay_float32():
    w = an.tensor(np.ones((3, 2), np.float32), requires_grad=True, name="w")
    S = an.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 6, name="S")
    derivation = an.derive((0.5 * an.sigmoid(S @ w)).sum(), wrt=[w])
    assert derivation[w].expr.value.dtype == np.float32
    assert derivation.verified


def test_unnamed_intermediates_are_written_out_and_unnamed_leaves_numbered():
    a = an.tensor([[1.0, 2.0]], requires_grad=True)
    b = an.tensor([[0.5], [0.25]], requires_grad=True)
    derivation = an.derive(an.sigmoid(a @ b).sum(), wrt=[a, b])
    assert [(name, str(e)) for name, e in derivation.deltas] == [
        ("δ", "σ(x1 · x2) * (1 − σ(x1 · x2))")
    ]
    assert derivation.text(a) == "δ · x2^T"
    assert derivation.text(b, expand=True) == "x1^T · (σ(x1 · x2) * (1 − σ(x1 · x2)))"
    assert derivation.verified


def test_a_deep_chain_needs_no_recursion():
    h = an.tensor([0.1, 0.2], requires_grad=True, name="h_0")
    x = h
    for i in range(1, 3001):
        x = an.tanh(x)
        x.name = f"h_{i}"
    derivation = an.derive(x.sum(), wrt=[h])
    assert derivation.text(h).count("(1 − h_") == 3000
    assert derivation.verified


def test_a_users_primitive_is_derived_from_its_rule():
    cube = an.Primitive("cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
    x = an.tensor([1.0, -2.0], requires_grad=True, name="x")
    derivation = an.derive(cube(x).sum(), wrt=[x])
    assert derivation.text(x) == "3 * x^2"
    assert "where L = sum(cube(x))" in str(derivation)


def test_wrt_must_require_grad():
    S = an.tensor([1.0, 2.0], name="S")
    w = an.tensor([1.0, 2.0], requires_grad=True, name="w")
    with pytest.raises(ValueError, match=r"derive: wrt\[0\] \(S\) does not require grad"):
        an.derive((S * w).sum(), wrt=[S])


def test_a_vector_output_needs_a_seed_gradient():
    w = an.tensor([1.0, 2.0], requires_grad=True, name="w")
    with pytest.raises(RuntimeError, match="derive: grad can be implied only for a one-element"):
        an.derive(w * 2.0, wrt=[w])
    derivation = an.derive(w * 2.0, wrt=[w], grad=an.tensor([1.0, 3.0], name="G"))
    assert derivation.text(w) == "2 * G"
    np.testing.assert_array_equal(derivation[w].expr.value, [2.0, 6.0])


def test_the_graph_is_kept_for_backward():
    L, x = cube_sum()
    an.derive(L, wrt=[x])
    L.backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)


def test_constant_factors_fold():
    # 1/2 x^2: the pow rule gives (1/2 * G) * 2 * x^(2 - 1), which a person writes G * x.
    x = an.tensor([1.0, -2.0], requires_grad=True, name="x")
    G = an.tensor([0.5, 3.0], name="G")
    assert an.derive(0.5 * x**2, wrt=[x], grad=G).text(x) == "G * x"
    assert an.derive(3.0 * (2.0 * x), wrt=[x], grad=G).text(x) == "6 * G"
    assert an.derive(-(x * -1.0), wrt=[x], grad=G).text(x) == "G"


def test_a_row_bias_gradient_is_a_column_sum_that_keeps_its_axis():
    X = an.tensor(np.arange(6.0).reshape(2, 3), name="X")
    b = an.tensor(np.zeros((1, 3)), requires_grad=True, name="b")
    derivation = an.derive(an.tanh(X + b).sum(), wrt=[b])
    assert derivation.text(b) == "sum(1 − tanh(X + b) * tanh(X + b), axis=0, keepdims)"
    assert derivation.verified
