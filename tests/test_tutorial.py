"""The tutorial's own examples: its perceptron conjunction and its network's hand formulas."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

import autonet as an
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients, seed_loss, seed_weights
from tests.oracles import ATOL, RTOL, numeric_gradient
from tests.strategies import seed_problems

# The tutorial's first matrix has a misprint: its row 2 reads [1, -1], which makes the first
# column x1 + x2 - 1; the text (p1 = sign(x1 - 1)) needs [0, -1].
FIRST_LAYER = np.array([[1.0, 0.0], [0.0, -1.0], [-1.0, 1.0]])
SECOND_LAYER = np.array([[1.0], [1.0], [0.0]])
# One sample from each of the tutorial's four regions s1..s4 of Fig. 1.
SAMPLES = np.array([[2.0, 2.0], [0.0, 2.0], [0.0, 0.0], [2.0, 0.0]])


def conjunction(samples, at_zero):
    x = an.concatenate([an.tensor(samples), an.tensor(np.ones((len(samples), 1)))], axis=1)
    p = an.sign(x @ FIRST_LAYER, at_zero=at_zero)
    p1 = an.concatenate([p, an.tensor(np.ones((len(samples), 1)))], axis=1)
    return an.sign(p1 @ SECOND_LAYER, at_zero=at_zero)


def test_perceptron_conjunction_with_the_tutorials_sign_convention():
    f = conjunction(SAMPLES, at_zero=-1)
    np.testing.assert_array_equal(f.data.ravel(), [-1, -1, -1, 1])


def test_perceptron_conjunction_with_numpy_sign_gives_zero_on_the_boundary():
    f = conjunction(SAMPLES, at_zero=0)
    np.testing.assert_array_equal(f.data.ravel(), [0, -1, 0, 1])


def test_sign_gradient_is_zero_everywhere_including_zero():
    x = an.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    an.sign(x, at_zero=-1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])


def seed_network(S, Y, w0, w1):
    syn0, syn1 = an.tensor(w0, requires_grad=True), an.tensor(w1, requires_grad=True)
    O = an.sigmoid(an.sigmoid(an.tensor(S) @ syn0) @ syn1)
    return 0.5 * ((O - Y) ** 2).sum(), syn0, syn1


@settings(max_examples=60, deadline=None)
@given(problem=seed_problems())
def test_autograd_equals_the_tutorials_formulas_and_finite_differences(problem):
    S, Y, w0, w1, _ = problem
    loss, syn0, syn1 = seed_network(S, Y, w0, w1)
    loss.backward()
    grad0, grad1 = seed_gradients(S, Y, w0, w1)
    # Both sides do the same float64 products in a different order: 1e-10 is ~1e5 ulps of margin.
    np.testing.assert_allclose(syn0.grad.data, grad0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(syn1.grad.data, grad1, rtol=0, atol=1e-10)

    def f(w0_, w1_):
        return seed_loss(S, Y, w0_, w1_)

    np.testing.assert_allclose(
        syn0.grad.data, numeric_gradient(f, [w0, w1], 0), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        syn1.grad.data, numeric_gradient(f, [w0, w1], 1), rtol=RTOL, atol=ATOL
    )


def test_seed_network_trains_on_xnor_like_the_tutorials_loop():
    """Autograd steps and the tutorial's hand-written steps stay equal for 2,000 updates."""
    w0, w1 = seed_weights(seed=3)
    h0, h1 = w0.copy(), w1.copy()
    for _ in range(2000):
        loss, syn0, syn1 = seed_network(XNOR_INPUTS, XNOR_TARGETS, w0, w1)
        loss.backward()
        w0, w1 = w0 - syn0.grad.data, w1 - syn1.grad.data
        g0, g1 = seed_gradients(XNOR_INPUTS, XNOR_TARGETS, h0, h1)
        h0, h1 = h0 - g0, h1 - g1
    np.testing.assert_allclose(w0, h0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(w1, h1, rtol=0, atol=1e-10)
    assert seed_loss(XNOR_INPUTS, XNOR_TARGETS, w0, w1) < 0.05
