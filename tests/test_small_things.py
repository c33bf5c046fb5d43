"""Small things people trip on: f"{loss:.4f}" and round(loss) on one-element tensors, the advice
for float class labels in cross_entropy, and sqrt and pow at 0 without NumPy's RuntimeWarnings
(their values and gradients checked against PyTorch's)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.nn import functional as F

SPECS = ["", ".4f", ".2e", "g", "10.3f", "+.1%", "<12", "^9.2g"]
ONE_ELEMENT_SHAPES = [(), (1,), (1, 1), (1, 1, 1)]
DTYPES = [np.float64, np.float32]


def numbers(dtype):
    width = 32 if dtype == np.float32 else 64
    return st.floats(width=width, allow_nan=True, allow_infinity=True)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    shape=st.sampled_from(ONE_ELEMENT_SHAPES),
    dtype=st.sampled_from(DTYPES),
    spec=st.sampled_from(SPECS),
    requires_grad=st.booleans(),
)
def test_a_one_element_tensor_formats_as_its_number(data, shape, dtype, spec, requires_grad):
    value = data.draw(numbers(dtype))
    t = an.tensor(np.full(shape, value, dtype), requires_grad=requires_grad)
    number = float(dtype(value))  # the value as the tensor holds it
    expected = format(number, spec) if spec or t.ndim == 0 else str(t)
    assert format(t, spec) == expected
    assert f"{t:{spec}}" == expected


@settings(max_examples=30, deadline=None)
@given(
    value=st.floats(-1e6, 1e6, width=32), dtype=st.sampled_from(DTYPES), spec=st.sampled_from(SPECS)
)
def test_a_0d_tensor_formats_as_pytorchs(value, dtype, spec):
    torch = pytest.importorskip("torch")
    theirs = torch.tensor(value, dtype=torch.float32 if dtype == np.float32 else torch.float64)
    assert format(an.tensor(np.array(value, dtype)), spec) == format(theirs, spec)


@pytest.mark.parametrize("shape", [(3,), (2, 2), (0,), (1, 0)])
def test_other_tensors_format_as_str_without_a_spec_and_refuse_a_spec(shape):
    t = an.tensor(np.arange(np.prod(shape), dtype=float).reshape(shape))
    assert f"{t}" == format(t, "") == str(t)
    message = f"format: the format spec '.4f' is for one number, but this tensor has shape {shape}"
    with pytest.raises(TypeError, match=re.escape(message)):
        f"{t:.4f}"


def test_integer_and_boolean_tensors_format_as_their_numbers():
    assert f"{an.tensor(np.array(7)):03d}" == "007"
    assert f"{an.tensor(np.array(True))}" == "True"


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    shape=st.sampled_from(ONE_ELEMENT_SHAPES),
    dtype=st.sampled_from(DTYPES),
    ndigits=st.none() | st.integers(-3, 6),
)
def test_round_of_a_one_element_tensor_is_round_of_its_number(data, shape, dtype, ndigits):
    value = data.draw(numbers(dtype).filter(np.isfinite))
    t = an.tensor(np.full(shape, value, dtype), requires_grad=True)
    rounded = round(t, ndigits)
    assert rounded == round(float(dtype(value)), ndigits)
    assert type(rounded) is (int if ndigits is None else float)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_round_of_a_non_finite_tensor_raises_as_pythons(value):
    with pytest.raises(ValueError if np.isnan(value) else OverflowError):  # as round(float(...))
        round(an.tensor(value))


def test_round_of_several_elements_points_to_numpy():
    with pytest.raises(TypeError, match=r"round: only a one-element tensor .* np\.round"):
        round(an.tensor([1.5, 2.5]), 1)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 5), c=st.integers(1, 4), seed=st.integers(0, 2**16), as_tensor=st.booleans()
)
def test_float_class_labels_get_advice_that_works(n, c, seed, as_tensor):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c))
    labels = rng.integers(0, c, size=n).astype(float)
    target = an.tensor(labels) if as_tensor else labels
    with pytest.raises(TypeError, match=r"convert it with target\.astype\(int\)"):
        F.cross_entropy(an.tensor(logits), target)
    loss = F.cross_entropy(an.tensor(logits), target.astype(int))  # the advice, followed
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(logits), torch.tensor(labels.astype(int))
    )
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)


# Bases with zeros among them; exponents where the value or a derivative is infinite at 0.
bases = st.lists(st.sampled_from([0.0, 0.25, 1.0, 4.0]) | st.floats(0.1, 4), min_size=1, max_size=4)
exponents = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0]) | st.floats(-3, 3)


def quietly(compute):
    """compute() with every warning an error: autonet must not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compute()


def first_and_second(function, x):
    """autonet's function(x) and its first and second derivatives (element-wise functions)."""
    first = an.grad(lambda t: function(t).sum())
    second = an.grad(lambda t: first(t).sum())
    return [quietly(lambda f=f: f(an.tensor(x)).data) for f in (function, first, second)]


def torch_first_and_second(torch, function, x):
    t = torch.tensor(x, requires_grad=True)
    out = function(t)
    (first,) = torch.autograd.grad(out.sum(), t, create_graph=True)
    if first.requires_grad:
        (second,) = torch.autograd.grad(first.sum(), t)
    else:  # a constant first derivative (t ** 0 has 0)
        second = torch.zeros_like(t)
    return [v.detach().numpy() for v in (out, first, second)]


@settings(max_examples=40, deadline=None)
@given(x=bases, p=exponents)
@example(x=[0.0, 4.0], p=0.5).via("sqrt's shape, infinite derivatives at 0")
@example(x=[0.0, 2.0], p=-1.0).via("0 ** -1")
@example(x=[0.0, 1.0], p=0.0).via("x ** 0, whose derivatives have limits at 0")
def test_sqrt_and_pow_at_zero_do_not_warn_and_agree_with_pytorch(x, p):
    """Values, first and second derivatives of sqrt(x), x ** p and pow(x, p) with p a tensor.

    One difference, where autonet is right: the second derivative of pow(x, p) with a tensor p at
    x = p = 0 is 0 in autonet (x^0 = 1 near 0, and pow's rule takes the limit) and nan in PyTorch.
    """
    torch = pytest.importorskip("torch")
    x = np.array(x)
    p_tensor = an.tensor(np.full(x.shape, p))
    cases = [
        (an.sqrt, torch.sqrt),
        (lambda t: t**p, lambda t: t**p),
        (lambda t: an.pow(t, p_tensor), lambda t: t ** torch.tensor(p, dtype=torch.float64)),
    ]
    for ours, theirs in cases:
        expected = torch_first_and_second(torch, theirs, x)
        if theirs is cases[2][1] and p == 0:
            expected[2] = np.where(x == 0, 0.0, expected[2])
        for mine, wanted in zip(first_and_second(ours, x), expected, strict=True):
            np.testing.assert_allclose(mine, wanted, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(a=bases, b=st.lists(exponents, min_size=4, max_size=4))
@example(a=[0.0, 0.0, 0.0, 2.0], b=[-1.0, 0.5, 0.0, -1.0]).via("d/db at a = 0: -inf, 0, 0")
def test_pow_gradients_in_base_and_exponent_at_zero_agree_with_pytorch(a, b):
    torch = pytest.importorskip("torch")
    a, b = np.array(a), np.array(b[: len(a)])
    ta, tb = an.tensor(a, requires_grad=True), an.tensor(b, requires_grad=True)
    out = quietly(lambda: an.pow(ta, tb))
    quietly(lambda: out.sum().backward())
    qa, qb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    expected = torch.pow(qa, qb)
    expected.sum().backward()
    for mine, theirs in [(out, expected), (ta.grad, qa.grad), (tb.grad, qb.grad)]:
        np.testing.assert_allclose(mine.data, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_cases_that_warned_now_give_inf_quietly(dtype):
    zero = np.zeros(1, dtype)
    assert quietly(lambda: an.grad(lambda t: an.sqrt(t).sum())(an.tensor(zero))).item() == np.inf
    assert quietly(lambda: an.grad(lambda t: (t**0.5).sum())(an.tensor(zero))).item() == np.inf
    assert quietly(lambda: (an.tensor(zero) ** -1).item()) == np.inf
    assert quietly(lambda: (0.0 ** an.tensor(-np.ones(1, dtype))).item()) == np.inf
    with pytest.warns(RuntimeWarning, match="invalid value"):  # sqrt(-1) still says so
        an.sqrt(an.tensor(-np.ones(1, dtype)))
