"""autonet.nn.functional: each loss equals its textbook formula, its gradient matches finite
differences and its closed form, and it stays finite (values and gradients, no warnings) for
inputs as large as |x| = 1e4."""

import decimal
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.nn import functional as F
from tests.oracles import numeric_gradient

SETTINGS = settings(max_examples=30, deadline=None)


def value_and_grad(function, x, *args, **kwargs):
    t = an.tensor(x, requires_grad=True)
    out = function(t, *args, **kwargs)
    out.sum().backward()
    return out.data, t.grad.data


# The textbook formulas, in plain NumPy, used as the oracle on moderate inputs (|x| <= 5 so that the
# naive forms are accurate there).
def naive_log_softmax(z):
    return np.log(np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True))


def naive_bce(z, y):
    s = 1 / (1 + np.exp(-z))
    return np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s)))


NAIVE = {
    "softplus": (F.softplus, lambda x: np.sum(np.log(1 + np.exp(x)))),
    "log_sigmoid": (F.log_sigmoid, lambda x: np.sum(np.log(1 / (1 + np.exp(-x))))),
    "log_softmax": (F.log_softmax, lambda x: np.sum(naive_log_softmax(x) * np.arange(x.shape[-1]))),
}


@pytest.mark.parametrize("name", sorted(NAIVE))
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
@example(seed=2978)  # log_softmax's finite differences are 1.05e-8 off there (rounding)
def test_activation_matches_its_formula_and_finite_differences(name, seed):
    function, naive = NAIVE[name]
    x = np.random.default_rng(seed).uniform(-5, 5, size=(3, 4))
    t = an.tensor(x, requires_grad=True)
    out = function(t)
    if name == "log_softmax":
        out = out * np.arange(4.0)  # a weighting that makes the gradient non-trivial
    total = out.sum()
    total.backward()
    np.testing.assert_allclose(float(total.data), naive(x), rtol=1e-12)
    # eps = 1e-6 central differences: truncation error ~eps^2 = 1e-12, and the rounding error of
    # f (a sum of 12 terms up to ~15 in size: ~1e-14) divided by 2 eps, up to ~1e-8 absolute
    # (1.05e-8 seen for log_softmax at seed 2978): atol 1e-7
    np.testing.assert_allclose(t.grad.data, numeric_gradient(naive, [x], 0), rtol=1e-6, atol=1e-7)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(4,), (3, 2), (2, 3, 2)]))
def test_half_sse_and_mse_match_their_formulas_and_gradients(seed, shape):
    rng = np.random.default_rng(seed)
    o, y = rng.normal(size=shape), rng.normal(size=shape)
    loss, grad = value_and_grad(F.half_sse, o, y)
    np.testing.assert_allclose(loss, 0.5 * np.sum((o - y) ** 2), rtol=1e-12)
    np.testing.assert_allclose(grad, o - y, rtol=1e-12, atol=1e-15)  # dL/do = o - y
    loss, grad = value_and_grad(F.mse, o, y)
    np.testing.assert_allclose(loss, np.mean((o - y) ** 2), rtol=1e-12)
    np.testing.assert_allclose(grad, 2 * (o - y) / o.size, rtol=1e-12, atol=1e-15)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_binary_cross_entropy_with_logits_matches_formula_and_gradient(seed):
    rng = np.random.default_rng(seed)
    z, y = rng.uniform(-5, 5, size=(6, 2)), rng.random((6, 2))
    loss, grad = value_and_grad(F.binary_cross_entropy_with_logits, z, y)
    np.testing.assert_allclose(loss, naive_bce(z, y), rtol=1e-12)
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-z)) - y) / z.size, rtol=1e-10, atol=1e-15)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), c=st.integers(2, 5))
def test_cross_entropy_from_indices_and_from_one_hot_agree_with_softmax_gradient(seed, n, c):
    rng = np.random.default_rng(seed)
    z, t = rng.uniform(-5, 5, size=(n, c)), rng.integers(0, c, size=n)
    one_hot = np.eye(c)[t]
    loss, grad = value_and_grad(F.cross_entropy, z, t)
    # the loss is log(sum exp z) - z_t, a difference of terms up to ~5: its absolute error is a
    # few ulps of 5 (~1e-15), which is a large relative error when the loss itself is tiny
    expected = -np.mean(naive_log_softmax(z)[np.arange(n), t])
    np.testing.assert_allclose(loss, expected, rtol=1e-12, atol=1e-14)
    softmax = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, (softmax - one_hot) / n, rtol=1e-10, atol=1e-15)
    loss_1h, grad_1h = value_and_grad(F.cross_entropy, z, one_hot)
    np.testing.assert_allclose(loss_1h, loss, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad_1h, grad, rtol=1e-10, atol=1e-15)


def test_reductions_follow_pytorch():
    z, y = np.array([[1.0, -2.0], [0.5, 3.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    none = F.binary_cross_entropy_with_logits(z, y, reduction="none").data
    assert none.shape == (2, 2)
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(z, y, reduction="sum").data, none.sum(), rtol=1e-15
    )
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.mse(z, y, reduction="avg")


LARGE = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])


@pytest.mark.parametrize("name", ["softplus", "log_sigmoid", "log_softmax", "bce", "cross_entropy"])
def test_losses_are_finite_with_finite_gradients_for_huge_inputs(name):
    """exp(1e4) overflows float64; the stable forms never compute it. Warnings are errors here,
    so an overflow, a 0 * inf or a log(0) anywhere in forward or backward fails the test."""
    functions = {
        "softplus": lambda t: F.softplus(t),
        "log_sigmoid": lambda t: F.log_sigmoid(t),
        "log_softmax": lambda t: F.log_softmax(t.reshape(1, -1)),
        "bce": lambda t: F.binary_cross_entropy_with_logits(
            t, np.tile([0.0, 1.0], 4)[:7], reduction="none"
        ),
        "cross_entropy": lambda t: F.cross_entropy(t.reshape(1, -1), np.array([0])),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
            out, grad = value_and_grad(functions[name], LARGE.copy())
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad))


def test_stable_forms_give_the_exact_limits():
    out, grad = value_and_grad(F.softplus, LARGE.copy())
    np.testing.assert_allclose(out[[0, -1]], [0.0, 1e4])
    np.testing.assert_allclose(out[3], np.log(2), rtol=1e-15)
    sigmoid = 1 / (1 + np.exp(-np.clip(LARGE, -700, 700)))
    np.testing.assert_allclose(grad, sigmoid, rtol=1e-12, atol=1e-300)  # softplus' = sigmoid
    out, _ = value_and_grad(F.log_sigmoid, LARGE.copy())
    np.testing.assert_allclose(out[[0, 1, -1]], [-1e4, -800.0, 0.0])
    out, grad = value_and_grad(lambda t: F.cross_entropy(t, np.array([0])), np.array([[1e4, -1e4]]))
    np.testing.assert_allclose(out, 0.0, atol=0)
    np.testing.assert_allclose(grad, [[0.0, 0.0]], atol=0)
    out, _ = value_and_grad(lambda t: F.cross_entropy(t, np.array([1])), np.array([[1e4, -1e4]]))
    np.testing.assert_allclose(out, 2e4, rtol=1e-15)


def test_shape_and_target_errors_are_clear():
    with pytest.raises(ValueError, match=r"output shape \(4, 1\) and target shape \(4,\) differ"):
        F.half_sse(np.ones((4, 1)), np.ones(4))
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\)"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        F.cross_entropy(np.zeros(3), np.array([0]))


def softplus_exact(x: float) -> float:
    """log(1 + exp(x)) in Decimal arithmetic, rounded once to float64. 1 + exp(x) must keep 17
    digits of exp(x) ~ 10^(x / 2.3) beside the 1: the precision grows with -x."""
    with decimal.localcontext() as context:
        context.prec = 40 + int(abs(x) / 2.3)
        return float((1 + decimal.Decimal(x).exp()).ln())


@settings(max_examples=200, deadline=None)
@given(x=st.floats(-745, 745, allow_nan=False) | st.sampled_from([-40.0, -30.0, 40.0, 0.0]))
def test_softplus_and_log_sigmoid_have_full_relative_precision(x):
    """Found by review: softplus(-40) returned 0 (exact 4.25e-18) and softplus(-30) had a relative
    error of 1e-3 (log(1 + e) rounds 1 + e first); log_sigmoid(40) = -softplus(-40) likewise."""
    exact, exact_log_sigmoid = softplus_exact(x), -softplus_exact(-x)
    # numpy.logaddexp is within a few ulps; subnormal results (near -745) have an absolute ulp
    tolerance = dict(rtol=8 * np.finfo(np.float64).eps, atol=1e-320)
    np.testing.assert_allclose(F.softplus(x).item(), exact, **tolerance)
    np.testing.assert_allclose(F.log_sigmoid(x).item(), exact_log_sigmoid, **tolerance)
