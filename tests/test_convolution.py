"""Convolution and pooling (nn.functional.conv2d, conv1d, max_pool2d, avg_pool2d): values and
gradients equal PyTorch's in float64 (skipped when torch is absent) and finite differences, over
drawn shapes, strides, paddings and dilations; second derivatives; float32 stays float32; ties in
a max-pooling window send the gradient to the first maximum, as PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.nn import functional as F
from tests.strategies import distinct_values, image_case

try:
    import torch
except ImportError:  # PyTorch is an optional cross-check
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
draws = settings(max_examples=25, deadline=None)

# float64 sums of a few dozen products, computed in a different order by each engine: a few ulps.
CLOSE = {"rtol": 1e-10, "atol": 1e-12}


def values(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def autonet_values_and_grads(f, arrays, seed=1):
    """f(*tensors), and the gradient of sum(u * f) for a random u with respect to each array."""
    tensors = [an.tensor(a, requires_grad=True) for a in arrays]
    out = f(*tensors)
    u = values(out.shape, seed, out.dtype)
    (out * u).sum().backward()
    return out.data, [t.grad.data for t in tensors]


def torch_values_and_grads(f, arrays, seed=1):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = f(*tensors)
    u = torch.tensor(values(tuple(out.shape), seed, arrays[0].dtype))
    (out * u).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def assert_same_as_torch(f, f_torch, arrays, **tolerance):
    out, grads = autonet_values_and_grads(f, arrays)
    out_torch, grads_torch = torch_values_and_grads(f_torch, arrays)
    assert out.shape == out_torch.shape
    np.testing.assert_allclose(out, out_torch, **(tolerance or CLOSE))
    for grad, grad_torch in zip(grads, grads_torch, strict=True):
        np.testing.assert_allclose(grad, grad_torch, **(tolerance or CLOSE))


@st.composite
def conv_problems(draw):
    """x, w, b and conv2d's params (pairs), with the window fitting in the padded image."""
    shape, params = draw(image_case())
    kernel = params.pop("kernel_size")
    seed = draw(st.integers(0, 2**32 - 1))
    x, w = values(shape, seed), values((draw(st.integers(1, 3)), shape[1]) + kernel, seed + 1)
    return x, w, values((w.shape[0],), seed + 2), params


@needs_torch
@draws
@given(problem=conv_problems())
def test_conv2d_values_and_gradients_equal_pytorch(problem):
    x, w, b, params = problem
    assert_same_as_torch(
        lambda x, w, b: F.conv2d(x, w, b, **params),
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **params),
        [x, w, b],
    )


@draws
@given(problem=conv_problems())
def test_conv2d_gradients_match_finite_differences(problem):
    x, w, b, params = problem
    inputs = [an.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert an.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **params), inputs)


@needs_torch
@draws
@given(problem=conv_problems())
def test_conv1d_equals_pytorch(problem):
    x, w, b, params = problem
    x, w = x[:, :, 0], w[:, :, 0]  # (N, C, L), (O, C, K): the widths' params
    stride, padding, dilation = (params[k][1] for k in ("stride", "padding", "dilation"))
    if dilation * (w.shape[2] - 1) + 1 > x.shape[2] + 2 * padding:
        assume(False)  # the window fits the width only with the padding drawn for the height
    assert_same_as_torch(
        lambda x, w, b: F.conv1d(x, w, b, stride, padding, dilation),
        lambda x, w, b: torch.nn.functional.conv1d(x, w, b, stride, padding, dilation),
        [x, w, b],
    )


@st.composite
def pool_problems(draw):
    """x with distinct values (no ties: they are max pooling's kink) and a pool's params."""
    shape, params = draw(image_case(max_stride=3, pool=True))
    return draw(distinct_values(shape)), params


@needs_torch
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@draws
@given(problem=pool_problems())
def test_pools_equal_pytorch(name, problem):
    x, params = problem
    assert_same_as_torch(
        lambda x: getattr(F, name)(x, **params),
        lambda x: getattr(torch.nn.functional, name)(x, **params),
        [x],
    )


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@draws
@given(problem=pool_problems())
def test_pool_gradients_match_finite_differences(name, problem):
    x, params = problem
    assert an.gradcheck(lambda x: getattr(F, name)(x, **params), [an.tensor(x, requires_grad=True)])


def test_second_derivatives_of_conv2d_and_avg_pool2d():
    """gradgradcheck: the VJPs (conv2d_input_grad, conv2d_weight_grad, avg_pool2d_grad) are
    primitives with VJPs of their own, so the gradient differentiates again."""
    x, w, b = (
        an.tensor(values(s, k), requires_grad=True)
        for k, s in enumerate([(2, 2, 5, 6), (3, 2, 3, 2), (3,)])
    )
    conv = {"stride": (2, 1), "padding": 1, "dilation": (1, 2)}
    assert an.gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **conv), [x, w, b])
    # a smooth function of the convolution, so that the second derivative is not only bilinear
    assert an.gradgradcheck(lambda x, w: an.tanh(F.conv2d(x, w, padding=1)), [x, w])
    assert an.gradgradcheck(lambda x: an.tanh(F.avg_pool2d(x, 3, 2, padding=1)), [x])
    assert an.gradgradcheck(lambda x: an.tanh(F.max_pool2d(x, (2, 3), 1)), [x])


@needs_torch
def test_second_derivative_of_a_small_cnn_equals_pytorch():
    """d/dw of |dL/dx|^2 for L = sum(tanh(max_pool(conv(x, w)))): every image primitive's VJP,
    differentiated once more (a gradient penalty), against torch.autograd.grad."""
    x_data, w_data = values((2, 2, 6, 6), 0), values((3, 2, 3, 3), 1)

    x, w = an.tensor(x_data, requires_grad=True), an.tensor(w_data, requires_grad=True)
    loss = an.tanh(F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, padding=1), 2), 3, 1, 1)).sum()
    (grad_x,) = an.gradients(loss, [x], create_graph=True)
    (penalty_w,) = an.gradients((grad_x * grad_x).sum(), [w])

    xt, wt = torch.tensor(x_data, requires_grad=True), torch.tensor(w_data, requires_grad=True)
    tf = torch.nn.functional
    loss_t = torch.tanh(tf.avg_pool2d(tf.max_pool2d(tf.conv2d(xt, wt, padding=1), 2), 3, 1, 1))
    (grad_xt,) = torch.autograd.grad(loss_t.sum(), [xt], create_graph=True)
    (penalty_wt,) = torch.autograd.grad((grad_xt * grad_xt).sum(), [wt])
    np.testing.assert_allclose(grad_x.data, grad_xt.detach().numpy(), **CLOSE)
    np.testing.assert_allclose(penalty_w.data, penalty_wt.numpy(), **CLOSE)


@pytest.mark.parametrize(
    "f",
    [
        lambda x, w: F.conv2d(x, w, w[:, 0, 0, 0], padding=1),
        lambda x, w: F.max_pool2d(x, 2) * w.sum(),
        lambda x, w: F.avg_pool2d(x, 2, 1, 1) * w.sum(),
    ],
    ids=["conv2d", "max_pool2d", "avg_pool2d"],
)
def test_float32_stays_float32(f):
    x, w = values((2, 3, 6, 6), 0, np.float32), values((4, 3, 3, 3), 1, np.float32)
    out, grads = autonet_values_and_grads(f, [x, w])
    out64, grads64 = autonet_values_and_grads(f, [x.astype(np.float64), w.astype(np.float64)])
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(out, out64, rtol=1e-5, atol=1e-5)
    for grad, grad64 in zip(grads, grads64, strict=True):
        np.testing.assert_allclose(grad, grad64, rtol=1e-4, atol=1e-4)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_in_the_window():
    """A window of equal values gives all its gradient to its first element in row-major order
    (PyTorch's choice); overlapping windows each send theirs to their own first maximum."""
    x = an.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)

    x = an.tensor([[[[1.0, 3.0, 3.0], [3.0, 0.0, 3.0]]]], requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()  # windows [[1, 3], [3, 0]] and [[3, 3], [0, 3]]
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])


@needs_torch
def test_max_pool_ties_follow_pytorch():
    x = np.round(values((2, 3, 7, 6), 0))  # small integers: many ties
    for params in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}):
        assert_same_as_torch(
            lambda x, p=params: F.max_pool2d(x, **p),
            lambda x, p=params: torch.nn.functional.max_pool2d(x, **p),
            [x],
        )


def test_max_pool_padding_is_minus_infinity_and_stride_defaults_to_the_kernel():
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # all negative: a zero pad would win
    out = F.max_pool2d(an.tensor(x), 3, padding=1)
    np.testing.assert_array_equal(out.data[0, 0], [[-1.0, -3.0], [-9.0, -11.0]])
    assert F.avg_pool2d(an.tensor(x), 2).shape == (1, 1, 2, 2)


def test_conv2d_of_a_known_image():
    """A 3x3 box of ones over a 3x3 image of ones with padding 1 counts each pixel's neighbours."""
    out = F.conv2d(an.tensor(np.ones((1, 1, 3, 3))), an.tensor(np.ones((1, 1, 3, 3))), padding=1)
    np.testing.assert_array_equal(out.data[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
