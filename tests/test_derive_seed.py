"""derive() on the tutorial's network prints the tutorial's two formulas, and they evaluate to
autograd's gradients, to the tutorial's code and to finite differences."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings

import autonet as an
from autonet.cli.derive import TUTORIAL_FORMULAS, same_formula, seed_network
from autonet.seed import seed_gradients, seed_loss
from tests.oracles import ATOL, RTOL, numeric_gradient
from tests.strategies import seed_problems

ROOT = Path(__file__).resolve().parent.parent


def seed_problem():
    """Data and weights of the tutorial's network, any sizes: S (m, n), syn0 (n, p), syn1 (p, k)."""
    sizes = (1, 5)
    return seed_problems(m=sizes, n=sizes, p=sizes, k=sizes).map(lambda problem: problem[:4])


@settings(max_examples=25, deadline=None)
@given(problem=seed_problem())
def test_seed_formulas_read_as_the_tutorials(problem):
    L, syn0, syn1 = seed_network(*problem)
    derivation = an.derive(L, wrt=[syn1, syn0])
    assert [(name, str(e)) for name, e in derivation.deltas] == [("δ_O", "(O − Y) * O * (1 − O)")]
    assert derivation.text(syn1) == "H^T · δ_O"
    assert derivation.text(syn0) == "S^T · (δ_O · syn1^T * H * (1 − H))"
    assert derivation.text(syn1, expand=True) == "H^T · ((O − Y) * O * (1 − O))"
    assert same_formula(derivation.text(syn1, expand=True), TUTORIAL_FORMULAS["syn1"])
    assert same_formula(derivation.text(syn0, expand=True), TUTORIAL_FORMULAS["syn0"])


@settings(max_examples=25, deadline=None)
@given(problem=seed_problem())
def test_seed_formulas_evaluate_to_autograd_and_the_tutorials_code(problem):
    S, Y, w0, w1 = problem
    L, syn0, syn1 = seed_network(S, Y, w0, w1)
    derivation = an.derive(L, wrt=[syn1, syn0])
    assert derivation.verified, str(derivation)
    L.backward()
    grad0, grad1 = seed_gradients(S, Y, w0, w1)
    # The same float64 operations in the same order as the hand formulas: equal to rounding.
    for tensor, hand in ((syn0, grad0), (syn1, grad1)):
        value = derivation[tensor].expr.value
        np.testing.assert_allclose(value, tensor.grad.data, rtol=0, atol=1e-12)
        np.testing.assert_allclose(value, hand, rtol=0, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(problem=seed_problem())
def test_seed_formulas_match_finite_differences(problem):
    S, Y, w0, w1 = problem
    L, syn0, syn1 = seed_network(S, Y, w0, w1)
    derivation = an.derive(L, wrt=[syn0, syn1])
    for i, tensor in ((2, syn0), (3, syn1)):
        numeric = numeric_gradient(seed_loss, [S, Y, w0, w1], i)
        np.testing.assert_allclose(derivation[tensor].expr.value, numeric, rtol=RTOL, atol=ATOL)


def test_derive_command_prints_and_confirms_the_tutorials_formulas():
    result = subprocess.run(
        [sys.executable, "-m", "autonet", "derive"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "δ_O = (O − Y) * O * (1 − O)" in lines
    assert "∂L/∂syn1 = H^T · δ_O" in lines
    assert "∂L/∂syn0 = S^T · (δ_O · syn1^T * H * (1 − H))" in lines
    assert "  grad1 = ∂L/∂syn1 = H^T · ((O − Y) * O * (1 − O))" in lines
    assert "  grad0 = ∂L/∂syn0 = S^T · (((O − Y) * O * (1 − O)) · syn1^T * H * (1 − H))" in lines
    assert result.stdout.count("the same") == 2
    assert "DIFFERENT" not in result.stdout
