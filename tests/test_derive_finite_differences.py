"""derive()'s second check: each formula's value equals float64 central differences of the
output, taken by re-running the recorded graph with the tensor nudged. Independent of the VJP
rules, it catches a wrong rule that autograd and the formula share; kinks are skipped."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

import autonet as an
from autonet.cli.derive import layered_network, seed_network
from autonet.derive.check import MAX_FULL_SIZE
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_weights
from autonet.testing import assert_gradients_match, seed_operands
from tests.conftest import run_env

ROOT = Path(__file__).resolve().parent.parent

# A cube whose VJP forgets a factor: 2 x^2 instead of 3 x^2. Autograd runs this rule and derive
# writes it out, so the two agree; only finite differences can tell.
WRONG_CUBE = an.Primitive("cube", lambda x: x**3, lambda g, out, x: g * 2 * x**2)


def seed_loss(S, Y, syn0, syn1):
    H = an.sigmoid(S @ syn0)
    H.name = "H"
    O = an.sigmoid(H @ syn1)
    O.name = "O"
    return 0.5 * ((O - Y) ** 2).sum()


@settings(max_examples=15, deadline=None)
@given(operands=seed_operands())
def test_seed_formulas_agree_with_finite_differences(operands):
    S, Y, syn0, syn1 = operands
    derivation = an.derive(seed_loss(*operands), wrt=[syn0, syn1])
    assert derivation.verified, str(derivation)
    for t in (syn0, syn1):
        result = derivation[t].finite_differences
        assert result.method == "full Jacobian" and result.compared == t.size
        assert result.skipped == 0
    # The same formulas against finite differences of the Python function itself (not of the
    # replayed graph), through the testing toolkit: atol 1e-6 + rtol 1e-4 is far above the
    # float64 central difference's error (about 1e-10 here) and far below a wrong factor's.
    assert_gradients_match(
        seed_loss,
        lambda *arrays: (derivation[syn0].expr.value, derivation[syn1].expr.value),
        S,
        Y,
        syn0,
        syn1,
        atol=1e-6,
        rtol=1e-4,
    )


def test_the_tutorials_network_and_a_three_layer_net_with_biases_pass():
    w0, w1 = seed_weights(seed=1)
    L, syn0, syn1 = seed_network(XNOR_INPUTS, XNOR_TARGETS, w0, w1)
    seed = an.derive(L, wrt=[syn1, syn0])
    rng = np.random.default_rng(1)
    sizes = [3, 4, 4, 1]
    weights = [rng.uniform(-1, 1, (m, n)) for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [rng.uniform(-1, 1, n) for n in sizes[1:]]
    L, parameters = layered_network(XNOR_INPUTS, XNOR_TARGETS, weights, biases)
    layers = an.derive(L, wrt=parameters)
    for derivation in (seed, layers):
        assert derivation.verified and derivation.finite_differences_checked
        # Central differences with h = 1e-6 on values of order 1: errors near 1e-10 (rounding,
        # 1e-16 / 1e-6), relative to gradients down to the 1e-5 floor of the relative error.
        assert derivation.max_relative_error < 1e-4
        assert sum(f.finite_differences.compared for f in derivation.formulas) == sum(
            t.size for t in derivation.keys
        )
        assert "and finite differences (largest difference" in derivation.check()


def test_a_wrong_vjp_is_caught_although_the_formula_equals_autograd():
    x = an.tensor([0.5, -1.5, 2.0], requires_grad=True, name="x")
    derivation = an.derive(WRONG_CUBE(x).sum(), wrt=[x])
    formula = derivation[x]
    assert derivation.text(x) == "2 * x^2"
    assert formula.matches_autograd and formula.error == 0.0
    assert not formula.verified and not derivation.verified
    assert formula.finite_differences is None
    verdict = derivation.check().splitlines()[0]
    assert verdict == (
        "NOT verified: these differ from finite differences: ∂L/∂x (which equals autograd's: a "
        "VJP rule on its path is wrong)"
    )
    failure = formula.finite_difference_failure
    assert "derive: the formula's gradient of x" in failure
    assert "primitives on the path: cube, sum" in failure
    assert failure.replace("\n", "\n  ") in str(derivation)
    assert "\n```text\n  derive: the formula's gradient of x" in derivation._repr_markdown_()


def test_a_wrong_vjp_is_caught_along_random_directions_in_a_large_tensor():
    x = an.tensor(np.linspace(0.5, 1.5, MAX_FULL_SIZE + 88).reshape(30, 20), requires_grad=True)
    x.name = "x"
    wrong = an.derive(WRONG_CUBE(x).sum(), wrt=[x])
    assert not wrong.verified
    assert "disagrees with finite differences along a random projection" in (
        wrong[x].finite_difference_failure
    )
    right = an.derive((x**3).sum(), wrt=[x])
    assert right.verified, str(right)
    assert right[x].finite_differences.method.startswith("8 random projections")
    assert "compared along random directions for x (8 random directions)" in right.check()


def test_kinks_are_skipped_not_failed():
    # relu at 0: autograd's convention gives 0, a central difference 0.5; neither is wrong.
    x = an.tensor([-1.0, 0.0, 2.0, 0.0], requires_grad=True, name="x")
    derivation = an.derive((an.relu(x) * an.tensor([1.0, 2.0, 3.0, 4.0])).sum(), wrt=[x])
    assert derivation.verified, str(derivation)
    result = derivation[x].finite_differences
    assert (result.compared, result.skipped) == (2, 2)
    assert derivation.skipped_at_kinks == 2
    assert "2 elements skipped at kinks" in derivation.check()

    at_kinks = an.tensor([0.0, 0.0], requires_grad=True, name="z")
    derivation = an.derive(an.relu(at_kinks).sum(), wrt=[at_kinks])
    assert derivation.verified
    assert "nothing compared for z: every element at a kink" in derivation.check()


def test_intermediate_and_nested_tensors_are_nudged_where_they_are_recorded():
    # dL/dsyn0 flows through H; dL/dH holds syn0 fixed. Both come from one replay scheme.
    S = an.tensor([[0.0, 1.0], [1.0, 1.0]], name="S")
    syn0 = an.tensor([[0.5, -0.3], [0.2, 0.8]], requires_grad=True, name="syn0")
    H = an.sigmoid(S @ syn0)
    H.name = "H"
    L = (H * (S @ syn0)).sum()  # syn0 reaches L through H and directly
    derivation = an.derive(L, wrt=[H, syn0])
    assert derivation.verified, str(derivation)
    assert [derivation[t].finite_differences.compared for t in (H, syn0)] == [4, 4]


def test_an_unused_tensor_has_a_zero_gradient_by_both_checks():
    x = an.tensor([1.0, 2.0], requires_grad=True, name="x")
    w = an.tensor([3.0], requires_grad=True, name="w")
    derivation = an.derive((x * x).sum(), wrt=[w])
    assert derivation.text(w) == "0" and derivation.verified
    assert derivation[w].finite_differences.max_abs_error == 0.0


def test_a_seeded_vector_output_is_checked_as_sum_of_seed_times_output():
    w = an.tensor([1.0, -2.0], requires_grad=True, name="w")
    G = an.tensor([0.5, 3.0], name="G")
    assert an.derive(an.tanh(w), wrt=[w], grad=G).verified
    wrong = an.derive(WRONG_CUBE(w), wrt=[w], grad=G)
    assert not wrong.verified and wrong[w].matches_autograd


def test_float32_is_checked_without_warnings():
    w = an.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2), requires_grad=True)
    w.name = "w"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        derivation = an.derive(an.sigmoid(w).sum(), wrt=[w])
    assert derivation.verified, str(derivation)
    assert derivation[w].finite_differences.eps == 1e-3  # gradcheck's step for float32


def test_finite_differences_can_be_turned_off():
    x = an.tensor([1.0, 2.0], requires_grad=True, name="x")
    derivation = an.derive(WRONG_CUBE(x).sum(), wrt=[x], finite_differences=False)
    assert derivation.verified  # only autograd was asked, and it shares the wrong rule
    assert not derivation.finite_differences_checked
    assert derivation[x].finite_differences is None
    assert "finite differences" not in derivation.check()


def test_under_no_grad_the_error_names_the_fix():
    x = an.tensor([1.0, 2.0], requires_grad=True, name="x")
    L = (x * x).sum()
    with an.no_grad():
        with pytest.raises(RuntimeError, match="or pass finite_differences=False"):
            an.derive(L, wrt=[x])
        assert an.derive(L, wrt=[x], finite_differences=False).verified


@pytest.mark.parametrize("args", [[], ["--layers", "3", "--bias"]], ids=["tutorial", "layers"])
def test_the_command_prints_the_finite_difference_check(args):
    result = subprocess.run(
        [sys.executable, "-m", "autonet", "derive", *args],
        cwd=ROOT,
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    verdict = next(line for line in result.stdout.splitlines() if "verified" in line)
    assert verdict.startswith("verified: each formula")
    assert "equals autograd's gradient (largest difference 0.0e+00) and finite differences (" in (
        verdict
    )
