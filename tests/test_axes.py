"""Axes: every axis parameter of every primitive accepts negative axes and gives the gradient of the
same operation written with non-negative ones (recording normalises them once, from the table's
`axis_param`); out-of-range and repeated axes, and any axis of a 0-d tensor, raise ValueError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autonet as an
from autonet.nn import functional as F
from autonet.primitives import PRIMITIVES

SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


def values(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def gradient_of(function, x, weights):
    t = an.tensor(x, requires_grad=True)
    out = function(t)
    (out * weights(out.shape)).sum().backward()
    return out.data, t.grad.data


def weights_for(seed):
    return lambda shape: an.tensor(np.random.default_rng(seed).normal(size=shape))


def test_every_primitive_with_axes_declares_them():
    with_axes = {name for name, p in PRIMITIVES.items() if p.axis_param is not None}
    assert with_axes == {
        "sum",
        "max",
        "log_softmax",
        "transpose",
        "concatenate",
        "logsumexp",
        "cumsum",
        "prod",
    }
    assert [n for n, p in PRIMITIVES.items() if p.permutation] == ["transpose"]


@settings(max_examples=30, deadline=None)
@given(shape=SHAPES, data=st.data())
def test_transpose_with_negative_axes_equals_the_wrapped_axes(shape, data):
    order = data.draw(st.permutations(range(len(shape))))
    signed = tuple(data.draw(st.sampled_from([a, a - len(shape)])) for a in order)
    x = values(shape)
    out, grad = gradient_of(lambda t: t.transpose(signed), x, weights_for(1))
    expected_out, expected_grad = gradient_of(
        lambda t: t.transpose(tuple(order)), x, weights_for(1)
    )
    np.testing.assert_array_equal(out, np.transpose(x, order))
    np.testing.assert_array_equal(grad, expected_grad)
    np.testing.assert_array_equal(out, expected_out)


def test_transpose_minus_one_zero_on_a_square_gives_the_transposed_weights():
    """Found by review: x.transpose(-1, 0) on (3, 3) gave x.grad = W (PyTorch: W.T)."""
    W = np.arange(9.0).reshape(3, 3)
    x = an.tensor(np.ones((3, 3)), requires_grad=True)
    (x.transpose(-1, 0) * W).sum().backward()
    np.testing.assert_array_equal(x.grad.data, W.T)
    y = an.tensor(np.ones((2, 3, 4)), requires_grad=True)
    (y.transpose(0, -1, 1) * np.arange(24.0).reshape(2, 4, 3)).sum().backward()
    np.testing.assert_array_equal(y.grad.data, np.arange(24.0).reshape(2, 4, 3).swapaxes(1, 2))


@settings(max_examples=30, deadline=None)
@given(shape=SHAPES, data=st.data())
@example(shape=(2, 3), data=None).via("keepdims and a tuple in reverse order")
def test_reductions_with_negative_and_unordered_axes(shape, data):
    if data is None:  # the explicit example: sum over (-1, 0) of a (2, 3) tensor
        axis, keepdims = (-1, 0), True
    else:
        axes = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, min_size=1))
        axis = tuple(data.draw(st.sampled_from([a, a - len(shape)])) for a in axes)
        axis = axis[0] if len(axis) == 1 and data.draw(st.booleans()) else axis
        keepdims = data.draw(st.booleans())
    x = values(shape)
    wrapped = tuple(a % len(shape) for a in np.atleast_1d(axis))
    for reduce in ("sum", "mean", "max"):
        method = getattr(an.Tensor, reduce)
        out, grad = gradient_of(lambda t, m=method: m(t, axis, keepdims), x, weights_for(2))
        expected = gradient_of(lambda t, m=method: m(t, wrapped, keepdims), x, weights_for(2))
        np.testing.assert_allclose(out, getattr(np, reduce)(x, axis=axis, keepdims=keepdims))
        np.testing.assert_array_equal(out, expected[0])
        np.testing.assert_array_equal(grad, expected[1])


@settings(max_examples=40, deadline=None)
@given(shape=SHAPES, data=st.data())
def test_log_softmax_swapaxes_and_concatenate_with_negative_axes(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    other = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = values(shape)
    cases = {
        "log_softmax": (
            lambda t: F.log_softmax(t, axis),
            lambda t: F.log_softmax(t, axis % x.ndim),
        ),
        "swapaxes": (
            lambda t: t.swapaxes(axis, other),
            lambda t: t.swapaxes(axis % x.ndim, other % x.ndim),
        ),
        "concatenate": (
            lambda t: an.concatenate([t, t * 2.0], axis=axis),
            lambda t: an.concatenate([t, t * 2.0], axis=axis % x.ndim),
        ),
        "stack": (
            lambda t: an.stack([t, t * 2.0], axis=axis),
            lambda t: an.stack([t, t * 2.0], axis=axis % (x.ndim + 1)),
        ),
    }
    for name, (signed, wrapped) in cases.items():
        out, grad = gradient_of(signed, x, weights_for(3))
        expected_out, expected_grad = gradient_of(wrapped, x, weights_for(3))
        np.testing.assert_array_equal(out, expected_out, err_msg=name)
        np.testing.assert_array_equal(grad, expected_grad, err_msg=name)


def test_negative_axes_match_pytorch():
    torch = pytest.importorskip("torch")
    x = values((2, 3, 4))
    W = values((4, 2, 3), seed=5)
    t = an.tensor(x, requires_grad=True)
    (t.transpose(-1, 0, -2) * W).sum().backward()
    reference = torch.tensor(x, requires_grad=True)
    (reference.permute(-1, 0, -2) * torch.tensor(W)).sum().backward()
    np.testing.assert_array_equal(t.grad.data, reference.grad.numpy())


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(axis=0),
        lambda t: t.mean(axis=0),
        lambda t: t.max(axis=-1),
        lambda t: t.swapaxes(0, 0),
        lambda t: F.log_softmax(t),
    ],
    ids=["sum", "mean", "max", "swapaxes", "log_softmax"],
)
def test_a_0d_tensor_has_no_axes(call):
    with pytest.raises(ValueError, match="a 0-d tensor has no axes: use axis=None"):
        call(an.tensor(1.0, requires_grad=True))


def test_transpose_axes_must_order_every_axis():
    with pytest.raises(ValueError, match=r"do not order all 3 axes"):
        an.tensor(np.ones((2, 3, 4))).transpose(0, 1)
    with pytest.raises(TypeError, match="is not an integer"):
        an.tensor(np.ones((2, 3))).sum(axis=1.0)
