"""Numerical safety: sigmoid and tanh stay finite, accurate and silent for |x| up to 1e4; log, sqrt
and division at their singular points give NumPy's values, and anomaly mode catches them."""

import decimal
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import autonet as an

EPS = np.finfo(np.float64).eps


def exact(function, x: np.ndarray) -> np.ndarray:
    """function (of a Decimal) at each element of x, with 40 significant digits and Decimal's
    unbounded exponent range (exp(1e4) is no problem), rounded to float64 once at the end."""
    with decimal.localcontext() as context:
        context.prec = 40
        return np.array([float(function(decimal.Decimal(float(v)))) for v in x.flat]).reshape(
            x.shape
        )


def sigmoid_exact(d: decimal.Decimal) -> decimal.Decimal:
    return 1 / (1 + (-d).exp())


def sigmoid_grad_exact(d: decimal.Decimal) -> decimal.Decimal:
    e = (-d).exp()
    return e / (1 + e) ** 2


def tanh_exact(d: decimal.Decimal) -> decimal.Decimal:
    with decimal.localcontext() as context:
        # 1 - e cancels for tiny |d|: carry as many more digits as d has leading zeros
        context.prec += max(0, -d.adjusted())
        e = (-2 * abs(d)).exp()
        return (1 - e) / (1 + e) * (1 if d >= 0 else -1)


def tanh_grad_exact(d: decimal.Decimal) -> decimal.Decimal:
    e = (-2 * abs(d)).exp()
    return 4 * e / (1 + e) ** 2  # 1 - tanh^2 = sech^2, without cancellation


big_floats = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


def value_and_gradient(function, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = an.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (overflow, invalid) fails the test
        out = function(t)
        out.backward(grad=np.ones_like(x))
    return out.data, t.grad.data


@settings(max_examples=100, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 8), elements=big_floats))
def test_sigmoid_is_finite_accurate_and_silent_up_to_1e4(x):
    value, grad = value_and_gradient(an.sigmoid, x)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    # the value to a few ulps relative (also far in the tail, where it is ~1e-4343 -> 0)
    np.testing.assert_allclose(value, exact(sigmoid_exact, x), rtol=4 * EPS, atol=1e-300)
    # the gradient s (1 - s) is computed from the rounded s: for x > 0, 1 - s cancels, so the
    # error is absolute, a few ulps of s (0.25 at most): 2 eps bounds it
    np.testing.assert_allclose(grad, exact(sigmoid_grad_exact, x), rtol=0, atol=2 * EPS)


@settings(max_examples=100, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 8), elements=big_floats))
def test_tanh_is_finite_accurate_and_silent_up_to_1e4(x):
    value, grad = value_and_gradient(an.tanh, x)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, exact(tanh_exact, x), rtol=4 * EPS, atol=0)
    # 1 - tanh(x)^2 from the rounded output: absolute error a few ulps of 1
    np.testing.assert_allclose(grad, exact(tanh_grad_exact, x), rtol=0, atol=4 * EPS)


@pytest.mark.parametrize("function", [an.sigmoid, an.tanh])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extremes_keep_dtype_and_saturate_exactly(function, dtype):
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4], dtype=dtype)
    value, grad = value_and_gradient(function, x)
    assert value.dtype == dtype and grad.dtype == dtype
    low = 0.0 if function is an.sigmoid else -1.0
    np.testing.assert_array_equal(value[[0, 1, -2, -1]], [low, low, 1.0, 1.0])
    np.testing.assert_array_equal(grad[[0, 1, -2, -1]], [0.0, 0.0, 0.0, 0.0])


SINGULAR = [
    # (name, function of x, x, NumPy's value of the same expression)
    ("log(0)", an.log, 0.0, lambda x: np.log(x)),
    ("log(-1)", an.log, -1.0, lambda x: np.log(x)),
    ("sqrt(-1)", an.sqrt, -1.0, lambda x: np.sqrt(x)),
    ("1 / 0", lambda t: 1.0 / t, 0.0, lambda x: 1.0 / x),
    ("0 / 0", lambda t: t / t, 0.0, lambda x: x / x),
]


@pytest.mark.parametrize("name, function, x, numpy_value", SINGULAR, ids=[s[0] for s in SINGULAR])
def test_singular_points_follow_numpy_and_anomaly_mode_catches_them(name, function, x, numpy_value):
    t = an.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        expected = numpy_value(np.float64(x))
        got = function(t).data
    np.testing.assert_array_equal(got, expected)
    with an.detect_anomaly(), pytest.raises(FloatingPointError, match="produced (nan|inf)"):
        function(t)


@pytest.mark.parametrize(
    "name, function, expected_grad",
    [
        ("log", an.log, np.inf),
        ("sqrt", an.sqrt, np.inf),
        ("reciprocal", lambda t: 1.0 / t, -np.inf),
    ],
)
def test_gradients_at_zero_follow_the_formulas_and_anomaly_mode_catches_them(
    name, function, expected_grad
):
    # d/dx log x = 1/x, d/dx sqrt x = 1/(2 sqrt x), d/dx 1/x = -1/x^2: all infinite at 0, as in
    # NumPy's arithmetic and in PyTorch
    t = an.tensor(0.0, requires_grad=True)
    with np.errstate(all="ignore"):
        function(t).backward()
    assert t.grad.data == expected_grad
    t = an.tensor(0.0, requires_grad=True)
    with an.detect_anomaly():
        if name == "sqrt":  # sqrt(0) = 0 is finite: only its gradient is caught
            out = function(t)
            with pytest.raises(FloatingPointError, match="gradient of sqrt for input 0 has inf"):
                out.backward()
        else:
            with pytest.raises(FloatingPointError, match="produced"):
                function(t)


def test_pow_at_zero_base_has_the_limits_as_gradients():
    # d/da a^0 = 0 everywhere (a^0 = 1), and d/db a^b = a^b log a -> 0 as a -> 0 for b > 0; the
    # plain formulas give 0 * inf = nan at a = 0. PyTorch's pow backward gives the same zeros.
    a = an.tensor([0.0, 0.0, 2.0], requires_grad=True)
    b = an.tensor([0.0, 2.0, 3.0], requires_grad=True)
    with an.detect_anomaly():  # no nan or inf anywhere, forward or backward
        (a**b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.0, 0.0, 12.0])
    np.testing.assert_array_equal(b.grad.data, [0.0, 0.0, 8 * np.log(2.0)])
    x = an.tensor([0.0, 3.0], requires_grad=True)
    (x**0.0).sum().backward()  # the constant exponent of x ** 0, as in a polynomial's x^0 term
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


@pytest.mark.parametrize(
    "dtype, xs", [(np.float64, [-744.0, -720.0, -709.9]), (np.float32, [-103.0, -95.0, -88.8])]
)
def test_sigmoid_keeps_the_subnormal_tail_that_expit_rounds_to_zero(dtype, xs):
    """scipy's expit gives 0 where exp(-x) overflows; there sigmoid(x) = exp(x) to rounding, a
    subnormal number, and that is what autonet returns."""
    x = np.array(xs, dtype=dtype)
    out = an.sigmoid(an.tensor(x)).data
    assert out.dtype == dtype and np.all(out > 0)
    np.testing.assert_array_equal(out, np.exp(x))
