"""autonet.testing: its strategies draw what they promise, and its assertions pass on the seed's
formulas, fail on a broken one with a table naming the odd one out, and shrink the failure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.seed import seed_forward, seed_gradients
from autonet.testing import (
    DerivationError,
    assert_gradients_match,
    broadcastable_shapes,
    check_derivation,
    floats,
    seed_operands,
    shapes,
    tensors,
)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_tensors_have_the_requested_shape_dtype_and_bounds(data, dtype):
    shape = data.draw(shapes(max_dims=3, max_side=3))
    t = data.draw(
        tensors(
            shape=shape, dtype=dtype, elements=floats(-1, 2, dtype), requires_grad=True, name="t"
        )
    )
    assert isinstance(t, an.Tensor) and t.requires_grad and t.name == "t"
    assert t.shape == shape and t.dtype == dtype
    assert np.all((t.data >= -1) & (t.data <= 2))


@settings(max_examples=30, deadline=None)
@given(shape_tuple=broadcastable_shapes(num_shapes=3))
def test_broadcastable_shapes_broadcast_together(shape_tuple):
    assert len(shape_tuple) == 3
    np.broadcast_shapes(*shape_tuple)  # raises if they do not


@settings(max_examples=30, deadline=None)
@given(shape_pair=broadcastable_shapes(signature=np.matmul.signature))
def test_broadcastable_shapes_with_a_signature_give_matmul_operands(shape_pair):
    a, b = shape_pair
    np.matmul(np.ones(a), np.ones(b))  # raises if they are not matmul operands


@settings(max_examples=30, deadline=None)
@given(ops=seed_operands(max_side=3))
def test_seed_operands_have_consistent_shapes(ops):
    S, Y, syn0, syn1 = ops
    (m, n), (p, k) = S.shape, syn1.shape
    assert Y.shape == (m, k) and syn0.shape == (n, p)
    assert max(m, n, p, k) <= 3
    assert [t.requires_grad for t in ops] == [False, False, True, True]
    assert np.all((Y.data >= 0) & (Y.data <= 1))


@settings(max_examples=10, deadline=None)
@given(ops=seed_operands(m=4, n=3, p=4, k=1))
def test_seed_operands_can_fix_the_tutorials_sizes(ops):
    assert [t.shape for t in ops] == [(4, 3), (4, 1), (3, 4), (4, 1)]


def seed_loss(S, Y, syn0, syn1):
    O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
    return 0.5 * ((O - Y) ** 2).sum()


def without_hidden_derivative(S, Y, syn0, syn1):
    """The seed's formulas with grad0's H * (1 - H) factor dropped (wrong)."""
    _, O = seed_forward(S, syn0, syn1)
    grad0, grad1 = seed_gradients(S, Y, syn0, syn1)
    return S.T @ (((O - Y) * O * (1 - O)) @ syn1.T), grad1


def operands_at(m=2, n=3, p=2, k=1, seed=0):
    rng = np.random.default_rng(seed)
    return (
        an.tensor(rng.normal(size=(m, n))),
        an.tensor(rng.random((m, k))),
        an.tensor(rng.uniform(-1, 1, (n, p)), requires_grad=True),
        an.tensor(rng.uniform(-1, 1, (p, k)), requires_grad=True),
    )


def test_assert_gradients_match_passes_on_the_seed_formulas():
    comparison = assert_gradients_match(seed_loss, seed_gradients, *operands_at())
    errors = comparison.errors()
    assert errors["abs vs autograd"] < 1e-12 and errors["abs vs finite diff"] < 1e-8


def test_a_wrong_derivation_fails_with_a_table_blaming_the_derivation():
    with pytest.raises(DerivationError) as info:
        assert_gradients_match(seed_loss, without_hidden_derivative, *operands_at())
    message = str(info.value)
    assert "the derived gradient is the odd one out" in message
    header, first = message.splitlines()[1:3]
    assert header.split() == [
        "input",
        "element",
        "derived",
        "autograd",
        "finite",
        "diff",
        "disagrees",
        "error",
    ]
    assert first.split()[0] == "syn0" and first.split()[-2] == "derived"
    assert "syn1" not in message.split("\n", 2)[2]  # grad1 is right: no syn1 rows


def test_a_wrong_vjp_is_blamed_on_autograd():
    bad_sigmoid = an.Primitive(
        "bad_sigmoid", lambda x: 1 / (1 + np.exp(-x)), lambda g, out, x: g * out
    )  # missing (1 - out)

    def loss(S, Y, syn0, syn1):
        O = bad_sigmoid(an.sigmoid(S @ syn0) @ syn1)
        return 0.5 * ((O - Y) ** 2).sum()

    with pytest.raises(DerivationError, match="autograd is the odd one out"):
        assert_gradients_match(loss, seed_gradients, *operands_at())


def test_derivations_of_the_wrong_shape_or_count_are_reported():
    with pytest.raises(DerivationError, match=r"gradient for syn0 has shape \(2, 3\)"):
        assert_gradients_match(seed_loss, lambda S, Y, w0, w1: (w0.T, w1), *operands_at())
    with pytest.raises(TypeError, match="returned 1 gradient"):
        assert_gradients_match(seed_loss, lambda S, Y, w0, w1: w0, *operands_at())


def test_check_derivation_passes_on_the_seed_formulas():
    report = check_derivation(seed_loss, seed_gradients, seed_operands(), max_examples=25)
    assert report.examples == 25
    assert report.errors["abs vs autograd"] < 1e-12 and report.errors["abs vs finite diff"] < 1e-6


def test_check_derivation_reports_hypothesis_minimal_counterexample():
    with pytest.raises(DerivationError) as info:
        check_derivation(seed_loss, without_hidden_derivative, seed_operands(), max_examples=50)
    error = info.value
    message = str(error)
    assert "Minimal counterexample (shrunk by Hypothesis" in message
    # Shrunk to 1 x 1 operands: the smallest network where the dropped factor matters.
    assert [t.shape for t in error.counterexample] == [(1, 1)] * 4
    for label in ("S =", "Y =", "syn0 =", "syn1 ="):
        assert label in message
    assert "the derived gradient is the odd one out" in message
    # The example shown is one where the formula really fails.
    with pytest.raises(DerivationError):
        assert_gradients_match(seed_loss, without_hidden_derivative, *error.counterexample)


def test_check_derivation_reports_exceptions_of_the_derivation_with_the_counterexample():
    def transposed_wrongly(S, Y, syn0, syn1):
        grad0, grad1 = seed_gradients(S, Y, syn0, syn1)
        return grad0 @ np.ones((syn0.shape[0], syn0.shape[0])), grad1  # fails unless n == p

    with pytest.raises(DerivationError, match="ValueError") as info:
        check_derivation(seed_loss, transposed_wrongly, seed_operands(), max_examples=50)
    assert info.value.counterexample is not None


def test_elements_at_a_kink_are_compared_with_autograd_only():
    def f(x):
        return (an.relu(x) * x).sum()

    def derived(x):  # d/dx relu(x) x = 2x for x > 0, 0 for x < 0 (and 0 at 0, as autograd)
        return 2 * x * (x > 0)

    x = an.tensor([0.0, 1.0, -2.0], requires_grad=True)
    assert assert_gradients_match(f, derived, x).skipped == 1
    with pytest.raises(DerivationError, match=r"derived/autograd \(no finite difference"):
        assert_gradients_match(f, lambda x: 2 * x * (x > 0) + (x == 0), x)
