"""Every number a drawing prints keeps `precision` significant digits, whatever its magnitude:
values, gradients, norms and the min, max and mean of large arrays; read back from the label,
each is the true number rounded to that many digits (compared exactly, in decimal)."""

from __future__ import annotations

import html
import re
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import autonet as an
from tests.dot_parsing import parse

NUMBER = re.compile(r"-?(?:nan|inf|\d+(?:\.\d*)?(?:e[-+]\d+)?)")
SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf]


def magnitudes(low: int, high: int) -> st.SearchStrategy[float]:
    """Floats of either sign from 1e{low} to 1e{high}, every decade alike, and 0, nan, inf."""
    scaled = st.builds(
        lambda mantissa, exponent, sign: sign * mantissa * 10.0**exponent,
        st.floats(1, 10, exclude_max=True),
        st.integers(low, high - 1),
        st.sampled_from([1.0, -1.0]),
    )
    return st.one_of(scaled, st.sampled_from(SPECIAL))


def float_arrays(max_size: int, min_size: int = 0) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays over 1e-300..1e300, or float32 ones over 1e-37..1e37: 0-d to 3-D if at
    most 16 elements, else vectors and matrices."""
    if max_size <= 16:
        shapes = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3).filter(
            lambda s: min_size <= int(np.prod(s)) <= max_size
        )
    else:
        vectors = st.integers(min_size, max_size).map(lambda n: (n,))
        matrices = st.tuples(st.integers(3, 6), st.integers(6, max_size // 6))
        shapes = st.one_of(vectors, matrices)

    def of(dtype: type, low: int, high: int) -> st.SearchStrategy[np.ndarray]:
        return arrays(dtype, shapes, elements=magnitudes(low, high).map(dtype))

    return st.one_of(of(np.float64, -300, 300), of(np.float32, -37, 37))


def rounds_to(text: str, x: float, precision: int, slack: Decimal = Decimal(0)) -> bool:
    """text is x rounded to `precision` significant digits (within half a unit of the last
    digit, plus slack), and has no more digits than that; nan and inf as such."""
    if np.isnan(x) or np.isinf(x):
        return text == str(float(x))
    digits = re.sub(r"e.*", "", text).replace("-", "").replace(".", "").lstrip("0")
    if len(digits) > precision:
        return False
    exact = Decimal(float(x))
    half_unit = Decimal(5) * Decimal(10) ** (exact.adjusted() - precision) if x else Decimal(0)
    return abs(Decimal(text) - exact) <= half_unit + slack


def label_of(root: an.Tensor, name: str, **options) -> str:
    for label in parse(an.draw(root, **options)).tensors().values():
        if f"<B>{name}</B>" in label:
            return label
    raise AssertionError(f"no node named {name}")


def printed_arrays(label: str) -> list[list[str]]:
    """The numbers of each monospace block (values, then gradient), in order."""
    blocks = re.findall(r'<FONT FACE="Courier">(.*?)</FONT>', label, re.DOTALL)
    return [NUMBER.findall(html.unescape(block)) for block in blocks]


@settings(max_examples=60, deadline=None)
@given(float_arrays(max_size=16), st.integers(1, 8))
def test_values_print_to_precision_significant_digits_at_any_magnitude(a, precision):
    x = an.tensor(a, name="x")
    (printed,) = printed_arrays(label_of(x, "x", precision=precision))
    assert len(printed) == a.size
    assert all(rounds_to(text, v, precision) for text, v in zip(printed, a.flat, strict=True))


@settings(max_examples=40, deadline=None)
@given(float_arrays(max_size=12), st.integers(1, 6))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # products overflowing: not drawn here
def test_gradients_print_to_precision_significant_digits_at_any_magnitude(g, precision):
    w = an.tensor(np.ones(g.shape, g.dtype), requires_grad=True, name="w")
    (w * an.tensor(g)).sum().backward()  # dL/dw = g exactly
    value, grad = printed_arrays(label_of(w, "w", precision=precision))
    assert value == ["1"] * g.size
    assert len(grad) == g.size
    assert all(rounds_to(text, v, precision) for text, v in zip(grad, g.flat, strict=True))


def exact_mean(finite: np.ndarray) -> Decimal:
    total = sum((Fraction(float(v)) for v in finite.flat), Fraction(0))
    mean = total / finite.size
    with localcontext() as context:
        context.prec = 60
        return Decimal(mean.numerator) / Decimal(mean.denominator)


@settings(max_examples=40, deadline=None)
@given(float_arrays(max_size=60, min_size=17), st.integers(1, 8))
def test_large_arrays_print_min_max_and_mean_to_precision_digits(a, precision):
    label = label_of(an.tensor(a, name="big"), "big", precision=precision, max_values=16)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        assert "no finite values" in label
    else:
        low, high, mean = re.search(r"values in \[(\S+), (\S+)\], mean ([^<\s]+)", label).groups()
        assert rounds_to(low, finite.min(), precision)
        assert rounds_to(high, finite.max(), precision)
        # the mean is computed in float64 on values scaled by the largest: a few ulps of it
        scale = Decimal(float(np.abs(finite).max()))
        exact = exact_mean(finite)
        half_unit = Decimal(5) * Decimal(10) ** (exact.adjusted() - precision) if exact else 0
        assert abs(Decimal(mean) - exact) <= half_unit + scale * Decimal("1e-13")
    nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    assert (f"{nan} nan, {inf} inf" in label) == (nan + inf > 0)


@settings(max_examples=40, deadline=None)
@given(float_arrays(max_size=40, min_size=2), st.integers(1, 8))
def test_gradient_norms_print_to_precision_digits_without_overflow(g, precision):
    g = np.where(np.isfinite(g), g, 1.0).astype(g.dtype)
    w = an.tensor(np.ones(g.shape, g.dtype), requires_grad=True, name="w")
    (w * an.tensor(g)).sum().backward()
    norm = re.search(r"grad, norm ([^<\s]+)<", label_of(w, "w", precision=precision)).group(1)
    with localcontext() as context:
        context.prec = 60
        exact = sum((Decimal(float(v)) ** 2 for v in g.flat), Decimal(0)).sqrt()
    half_unit = Decimal(5) * Decimal(10) ** (exact.adjusted() - precision) if exact else 0
    assert abs(Decimal(norm) - exact) <= half_unit + exact * Decimal("1e-13")


def test_small_weights_and_gradients_are_not_drawn_as_zero():
    # Three decimals in fixed notation drew these as [0. 0.] and [0. 0.001].
    w = an.tensor([0.00012, 0.00034], requires_grad=True, name="w")
    (w * w).sum().backward()
    value, grad = printed_arrays(label_of(w, "w"))
    assert [float(v) for v in value] == [0.00012, 0.00034]
    assert [float(v) for v in grad] == [0.00024, 0.00068]
    (loss,) = printed_arrays(label_of(an.tensor(0.000594, name="loss"), "loss"))
    assert loss == ["0.000594"]


@pytest.mark.parametrize("precision", [0, -1, 2.5, True, "3"])
def test_precision_must_be_a_positive_whole_number(precision):
    with pytest.raises(ValueError, match="draw: precision is the number of significant digits"):
        an.draw(an.tensor([1.0]), precision=precision)
