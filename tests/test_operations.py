"""The NumPy-named operations (element-wise, reductions, shape, linear algebra, constructors):
values match NumPy, gradients match finite differences and PyTorch (float64, when installed),
second derivatives of the smooth ones pass gradgradcheck, negative axes, float32 and empty or 0-d
inputs behave as NumPy's; conventions at kinks (clip's bounds, ties of minimum) are PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

import autonet as an
from tests.oracles import ATOL, RTOL, numeric_gradient

try:
    import torch
except ImportError:  # PyTorch is an optional cross-check
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def values(shape, low=-2.0, high=2.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, shape)


# name -> (autonet function, NumPy function, PyTorch function or None, input shape, low, high,
# smooth: whether gradgradcheck applies). Each is a function of one float tensor.
OPERATIONS = {
    "sin": (an.sin, np.sin, "sin", (2, 3), -2, 2, True),
    "cos": (an.cos, np.cos, "cos", (2, 3), -2, 2, True),
    "tan": (an.tan, np.tan, "tan", (2, 3), -1.2, 1.2, True),
    "arcsin": (an.arcsin, np.arcsin, "arcsin", (2, 3), -0.9, 0.9, True),
    "arccos": (an.arccos, np.arccos, "arccos", (2, 3), -0.9, 0.9, True),
    "arctan": (an.arctan, np.arctan, "arctan", (2, 3), -2, 2, True),
    "sinh": (an.sinh, np.sinh, "sinh", (2, 3), -2, 2, True),
    "cosh": (an.cosh, np.cosh, "cosh", (2, 3), -2, 2, True),
    "log1p": (an.log1p, np.log1p, "log1p", (2, 3), -0.8, 2, True),
    "expm1": (an.expm1, np.expm1, "expm1", (2, 3), -2, 2, True),
    "square": (an.square, np.square, "square", (2, 3), -2, 2, True),
    "log2": (an.log2, np.log2, "log2", (2, 3), 0.2, 3, True),
    "log10": (an.log10, np.log10, "log10", (2, 3), 0.2, 3, True),
    "exp2": (an.exp2, np.exp2, "exp2", (2, 3), -2, 2, True),
    "erf": (an.erf, None, "erf", (2, 3), -2, 2, True),
    "where": (
        lambda x: an.where(x > 0, x * 2, an.exp(x)),
        lambda x: np.where(x > 0, x * 2, np.exp(x)),
        lambda x: torch.where(x > 0, x * 2, torch.exp(x)),
        (2, 3),
        -2,
        2,
        False,
    ),
    "clip": (
        lambda x: an.clip(x, -0.5, 1.0),
        lambda x: np.clip(x, -0.5, 1.0),
        lambda x: torch.clamp(x, -0.5, 1.0),
        (3, 4),
        -2,
        2,
        False,
    ),
    "minimum": (
        lambda x: an.minimum(x, x[::-1] * 0.5),
        lambda x: np.minimum(x, x[::-1] * 0.5),
        lambda x: torch.minimum(x, x.flip(0) * 0.5),
        (3, 2),
        -2,
        2,
        False,
    ),
    "min": (
        lambda x: x.min(axis=-1),
        lambda x: x.min(axis=-1),
        lambda x: x.amin(dim=-1),
        (3, 4),
        -2,
        2,
        False,
    ),
    "var": (
        lambda x: x.var(axis=-1, ddof=1),
        lambda x: x.var(axis=-1, ddof=1),
        lambda x: x.var(dim=-1, correction=1),
        (3, 4),
        -2,
        2,
        True,
    ),
    "std": (
        lambda x: an.std(x, axis=(0, -1), keepdims=True),
        lambda x: x.std(axis=(0, -1), keepdims=True),
        lambda x: x.std(dim=(0, -1), correction=0, keepdim=True),
        (2, 3, 2),
        -2,
        2,
        True,
    ),
    "logsumexp": (
        lambda x: an.logsumexp(x, axis=-2),
        lambda x: np.log(np.exp(x).sum(axis=-2)),
        lambda x: torch.logsumexp(x, dim=-2),
        (3, 4),
        -2,
        2,
        True,
    ),
    "cumsum": (
        lambda x: an.cumsum(x, axis=-1) ** 2,
        lambda x: np.cumsum(x, axis=-1) ** 2,
        lambda x: torch.cumsum(x, dim=-1) ** 2,
        (3, 4),
        -2,
        2,
        True,
    ),
    "cumsum flattened": (
        lambda x: an.cumsum(x) ** 2,
        lambda x: np.cumsum(x) ** 2,
        lambda x: torch.cumsum(x.reshape(-1), dim=0) ** 2,
        (3, 2),
        -2,
        2,
        True,
    ),
    "prod": (
        lambda x: x.prod(axis=-1),
        lambda x: x.prod(axis=-1),
        lambda x: x.prod(dim=-1),
        (3, 4),
        -2,
        2,
        True,
    ),
    "prod of several axes": (
        lambda x: an.prod(x, axis=(0, 2), keepdims=True),
        lambda x: x.prod(axis=(0, 2), keepdims=True),
        None,
        (2, 3, 2),
        -2,
        2,
        True,
    ),
    "squeeze": (
        lambda x: x.squeeze(-2) * 2,
        lambda x: x.squeeze(-2) * 2,
        lambda x: x.squeeze(-2) * 2,
        (3, 1, 2),
        -2,
        2,
        True,
    ),
    "expand_dims": (
        lambda x: an.expand_dims(x, -1) * x.unsqueeze(0),
        lambda x: np.expand_dims(x, -1) * np.expand_dims(x, 0),
        lambda x: x.unsqueeze(-1) * x.unsqueeze(0),
        (3, 3),
        -2,
        2,
        True,
    ),
    "flatten": (lambda x: x.flatten(), lambda x: x.flatten(), "flatten", (2, 3), -2, 2, True),
    "broadcast_to": (
        lambda x: an.broadcast_to(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        lambda x: x.expand(2, 3, 4),
        (3, 1),
        -2,
        2,
        True,
    ),
    "split": (
        lambda x: an.split(x, [1, 3], axis=-1)[1] * an.split(x, 2)[0].sum(),
        lambda x: np.split(x, [1, 3], axis=-1)[1] * np.split(x, 2)[0].sum(),
        lambda x: x[:, 1:3] * x[:2].sum(),
        (4, 5),
        -2,
        2,
        True,
    ),
    "pad": (
        lambda x: an.pad(x, ((1, 0), (2, 1)), constant_values=0.5),
        lambda x: np.pad(x, ((1, 0), (2, 1)), constant_values=0.5),
        lambda x: torch.nn.functional.pad(x, (2, 1, 1, 0), value=0.5),
        (2, 3),
        -2,
        2,
        True,
    ),
    "take_along_axis": (
        lambda x: an.take_along_axis(x, np.array([[0, 0], [2, 1], [3, 3]]), axis=-1),
        lambda x: np.take_along_axis(x, np.array([[0, 0], [2, 1], [3, 3]]), axis=-1),
        lambda x: torch.take_along_dim(x, torch.tensor([[0, 0], [2, 1], [3, 3]]), dim=-1),
        (3, 4),
        -2,
        2,
        True,
    ),
    "take_along_axis broadcast": (
        lambda x: an.take_along_axis(x, np.array([[2, 0, 0]]), axis=1),
        lambda x: np.take_along_axis(x, np.array([[2, 0, 0]]), axis=1),
        lambda x: torch.take_along_dim(x, torch.tensor([[2, 0, 0]]), dim=1),
        (3, 4),
        -2,
        2,
        True,
    ),
    "tile": (
        lambda x: an.tile(x, (2, 1, 3)),
        lambda x: np.tile(x, (2, 1, 3)),
        lambda x: torch.tile(x, (2, 1, 3)),
        (2, 3),
        -2,
        2,
        True,
    ),
    "repeat": (
        lambda x: an.repeat(x, [1, 0, 3], axis=-1),
        lambda x: np.repeat(x, [1, 0, 3], axis=-1),
        lambda x: torch.repeat_interleave(x, torch.tensor([1, 0, 3]), dim=-1),
        (2, 3),
        -2,
        2,
        True,
    ),
    "repeat flattened": (
        lambda x: x.repeat(2),
        lambda x: x.repeat(2),
        lambda x: torch.repeat_interleave(x.reshape(-1), 2),
        (2, 3),
        -2,
        2,
        True,
    ),
    "tensordot": (
        lambda x: an.tensordot(x, x * x, axes=([0, -1], [0, 2])),
        lambda x: np.tensordot(x, x * x, axes=([0, -1], [0, 2])),
        lambda x: torch.tensordot(x, x * x, dims=([0, 2], [0, 2])),
        (2, 3, 2),
        -2,
        2,
        True,
    ),
    "outer": (
        lambda x: an.outer(x, x[0]),
        lambda x: np.outer(x, x[0]),
        lambda x: torch.outer(x.reshape(-1), x[0]),
        (2, 3),
        -2,
        2,
        True,
    ),
    "trace": (
        lambda x: x.trace(offset=1, axis1=-1, axis2=0) * an.trace(x),
        lambda x: x.trace(offset=1, axis1=-1, axis2=0) * np.trace(x),
        None,
        (3, 4, 4),
        -2,
        2,
        True,
    ),
    "softmax": (
        lambda x: an.softmax(x, axis=0) * an.log_softmax(x),
        lambda x: np.exp(x) / np.exp(x).sum(0) * (x - np.log(np.exp(x).sum(-1, keepdims=True))),
        lambda x: torch.softmax(x, 0) * torch.log_softmax(x, -1),
        (3, 4),
        -2,
        2,
        True,
    ),
}

EINSUMS = {
    # subscripts -> operand shapes
    "ij,jk->ik": [(2, 3), (3, 4)],
    "ij,jk": [(2, 3), (3, 4)],  # implicit output: ik
    "ji,jk": [(3, 2), (3, 4)],  # implicit output: ik (alphabetical, not in order of appearance)
    "ii->i": [(3, 3)],
    "ii": [(3, 3)],  # the trace
    "iij->ji": [(2, 2, 3)],
    "iji->j": [(2, 3, 2)],
    "i,i->": [(3,), (3,)],
    "i,j->ij": [(2,), (3,)],
    "ij->": [(2, 3)],
    "ij->j": [(2, 3)],
    "bij,bjk->bik": [(2, 2, 3), (2, 3, 2)],
    "...ij,...jk->...ik": [(2, 2, 3), (3, 2)],
    "i...->...": [(2, 3, 2)],
    "ij,ij,j->i": [(2, 3), (2, 3), (3,)],
    "ii,ij->j": [(3, 3), (3, 2)],
    "ij,kj->ik": [(2, 3), (1, 3)],
    "ab,bc,cd->ad": [(2, 3), (3, 2), (2, 2)],
}


def gradient_and_value(function, x, u):
    t = an.tensor(x, requires_grad=True)
    out = function(t)
    (out * u).sum().backward()
    return out.data, t.grad.data


@pytest.mark.parametrize("name", OPERATIONS)
def test_operation_matches_numpy_and_its_gradient_matches_finite_differences(name):
    function, reference, _, shape, low, high, _ = OPERATIONS[name]
    if reference is None:  # erf: math.erf, element by element
        import math

        reference = np.vectorize(math.erf, otypes=[np.float64])
    x = values(shape, low, high)
    expected = reference(x)
    u = np.random.default_rng(1).normal(size=np.shape(expected))
    out, grad = gradient_and_value(function, x, u)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    numeric = numeric_gradient(lambda a: float(np.sum(u * reference(a))), [x], 0)
    np.testing.assert_allclose(grad, numeric, rtol=RTOL, atol=ATOL)


@needs_torch
@pytest.mark.parametrize("name", [n for n in OPERATIONS if OPERATIONS[n][2] is not None])
def test_operation_gradient_matches_pytorch(name):
    function, _, torch_function, shape, low, high, _ = OPERATIONS[name]
    if isinstance(torch_function, str):
        torch_function = getattr(torch, torch_function, None) or torch.special.erf
    x = values(shape, low, high)
    u = np.random.default_rng(1).normal(size=np.shape(function(an.tensor(x)).data))
    out, grad = gradient_and_value(function, x, u)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    outt = torch_function(xt)
    (outt * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(out, outt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in OPERATIONS if OPERATIONS[n][6]])
def test_smooth_operation_passes_gradgradcheck(name):
    function, _, _, shape, low, high, _ = OPERATIONS[name]
    x = an.tensor(values(shape, low, high, seed=2), requires_grad=True)
    assert an.gradgradcheck(function, [x])


@pytest.mark.parametrize("name", OPERATIONS)
def test_operation_keeps_float32(name):
    function, _, _, shape, low, high, _ = OPERATIONS[name]
    x = an.tensor(values(shape, low, high).astype(np.float32), requires_grad=True)
    out = function(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("subscripts", EINSUMS)
def test_einsum_matches_numpy_and_finite_differences(subscripts):
    arrays = [values(shape, seed=k) for k, shape in enumerate(EINSUMS[subscripts])]
    tensors = [an.tensor(a, requires_grad=True) for a in arrays]
    out = an.einsum(subscripts, *tensors)
    expected = np.einsum(subscripts, *arrays)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    u = np.random.default_rng(9).normal(size=expected.shape)
    (out * u).sum().backward()
    for i, t in enumerate(tensors):
        numeric = numeric_gradient(
            lambda *xs: float(np.sum(u * np.einsum(subscripts, *xs))), arrays, i
        )
        np.testing.assert_allclose(t.grad.data, numeric, rtol=RTOL, atol=ATOL)
    assert an.gradgradcheck(lambda *xs: an.einsum(subscripts, *xs), tensors)


@needs_torch
@pytest.mark.parametrize("subscripts", [s for s in EINSUMS if "->" in s and "..." not in s])
def test_einsum_gradients_match_pytorch(subscripts):
    arrays = [values(shape, seed=k) for k, shape in enumerate(EINSUMS[subscripts])]
    tensors = [an.tensor(a, requires_grad=True) for a in arrays]
    an.einsum(subscripts, *tensors).sum().backward()
    torch_tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch.einsum(subscripts, *torch_tensors).sum().backward()
    for t, tt in zip(tensors, torch_tensors, strict=True):
        np.testing.assert_allclose(t.grad.data, tt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_einsum_keeps_float32_and_accepts_arrays_and_spaces():
    x = an.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    out = an.einsum("ij, jk -> ik", x, np.ones((3, 2), np.float32))
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 2.0))


def test_clip_gradient_is_one_at_the_bounds_as_pytorch():
    x = an.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0, 1.0, 0.0])
    y = an.tensor([-2.0, 0.0, 2.0], requires_grad=True)
    an.clip(y, None, 0.0).sum().backward()  # one bound only, as numpy.clip
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0, 0.0])
    if torch is not None:
        xt = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
        torch.clamp(xt, -1.0, 1.0).sum().backward()
        np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())


def test_minimum_ties_share_the_gradient_and_min_spreads_it_over_ties():
    a, b = an.tensor([1.0, 2.0], requires_grad=True), an.tensor([1.0, 3.0], requires_grad=True)
    an.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 1.0])
    np.testing.assert_array_equal(b.grad.data, [0.5, 0.0])
    x = an.tensor([1.0, 1.0, 2.0], requires_grad=True)
    x.min().backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.5, 0.0])


def test_where_does_not_leak_nan_from_the_branch_not_taken():
    x = an.tensor([-1.0, 4.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        out = an.where(x > 0, an.sqrt(x), 0.0)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, [0.0, 2.0])
    # sqrt's own gradient at -1 is nan; where passes it g = 0 there, and 0 * nan is nan (as
    # PyTorch): where masks g, not the values. A float condition is read as booleans.
    assert x.grad.data[1] == 0.25
    y = an.tensor([1.0, 2.0], requires_grad=True)
    an.where(np.array([0.0, 2.0]), y, -y).sum().backward()
    np.testing.assert_array_equal(y.grad.data, [-1.0, 1.0])


def test_logsumexp_is_stable_and_its_gradient_is_softmax():
    x = an.tensor([[1000.0, 1000.0], [-1000.0, -1000.0]], requires_grad=True)
    out = an.logsumexp(x, axis=1)
    np.testing.assert_allclose(out.data, [1000 + np.log(2), -1000 + np.log(2)], rtol=1e-15)
    out.sum().backward()
    # exp(x - out) with out rounded at the scale of 1000 (an ulp is 1.1e-13): a few ulps off
    np.testing.assert_allclose(x.grad.data, np.full((2, 2), 0.5), rtol=1e-12)
    assert an.logsumexp(an.tensor([-np.inf, -np.inf])).data == -np.inf
    assert an.logsumexp(an.tensor(np.ones((2, 0))), axis=1, keepdims=True).shape == (2, 1)
    assert np.all(an.logsumexp(an.tensor(np.ones((2, 0))), axis=1).data == -np.inf)


@pytest.mark.parametrize(
    "x", [[2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [1.5, -2.0, 0.5]], ids=str
)
def test_prod_gradient_is_the_product_of_the_others_even_with_zeros(x):
    t = an.tensor(x, requires_grad=True)
    t.prod().backward()
    expected = [np.prod(np.delete(x, i)) for i in range(len(x))]
    np.testing.assert_array_equal(t.grad.data, expected)
    assert an.gradgradcheck(lambda t: t.prod(), [an.tensor(x, requires_grad=True)])


def test_argmax_and_argmin_are_integer_tensors_outside_the_graph():
    x = an.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], requires_grad=True)
    for got, expected in [
        (an.argmax(x, axis=-1), [1, 0]),
        (x.argmin(axis=1), [0, 1]),
        (x.argmax(), 3),
        (an.argmin(x, axis=0, keepdims=True), [[0, 1, 0]]),
    ]:
        assert got.dtype.kind == "i" and not got.requires_grad and got.op is None
        np.testing.assert_array_equal(got.data, expected)


def test_var_std_and_min_take_negative_and_several_axes_as_numpy():
    x = values((2, 3, 4))
    t = an.tensor(x)
    for axis in (None, -1, (0, -1)):
        np.testing.assert_allclose(t.var(axis=axis).data, x.var(axis=axis), rtol=1e-12)
        np.testing.assert_allclose(an.std(t, axis, ddof=1).data, x.std(axis=axis, ddof=1))
        np.testing.assert_array_equal(an.min(t, axis=axis).data, x.min(axis=axis))


def test_shape_operations_match_numpy_on_edge_cases():
    x = an.tensor(np.ones((1, 3, 1)), requires_grad=True)
    assert x.squeeze().shape == (3,) and an.squeeze(x, (0, -1)).shape == (3,)
    assert an.expand_dims(an.tensor(1.0), 0).shape == (1,)
    assert x.unsqueeze(-1).shape == (1, 3, 1, 1)
    assert an.tensor(2.0).flatten().shape == (1,)
    assert [p.shape for p in an.split(an.tensor(np.ones((0, 2))), 2, axis=-1)] == [(0, 1)] * 2
    assert an.pad(an.tensor(np.ones(0)), 2).shape == (4,)
    assert an.tile(an.tensor(2.0), 3).shape == (3,)
    assert an.cumsum(an.tensor(np.ones((0, 3))), axis=0).shape == (0, 3)
    assert an.prod(an.tensor(np.ones((0, 3))), axis=0).data.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError):  # NumPy's message: an axis of length 3 cannot be squeezed
        x.squeeze(1)


def test_constructors_take_dtype_and_requires_grad():
    made = [
        an.zeros((2, 3)),
        an.ones(3),
        an.full((2,), 7.0),
        an.eye(3),
        an.arange(5),
        an.arange(1, 2, 0.25),
        an.linspace(0, 1, 5),
        an.zeros_like(np.ones(2)),
        an.ones_like(an.ones(2)),
        an.full_like(an.ones(2), 3.0),
        an.rand(2, 3, rng=0),
        an.randn((2, 3), rng=np.random.default_rng(0)),
    ]
    expected = [
        np.zeros((2, 3)),
        np.ones(3),
        np.full((2,), 7.0),
        np.eye(3),
        np.arange(5.0),
        np.arange(1, 2, 0.25),
        np.linspace(0, 1, 5),
        np.zeros(2),
        np.ones(2),
        np.full(2, 3.0),
        np.random.default_rng(0).random((2, 3)),
        np.random.default_rng(0).standard_normal((2, 3)),
    ]
    for t, e in zip(made, expected, strict=True):
        assert isinstance(t, an.Tensor) and t.dtype == np.float64 and not t.requires_grad
        np.testing.assert_array_equal(t.data, e)
    w = an.randn(3, rng=1, dtype=np.float32, requires_grad=True)
    assert w.dtype == np.float32 and w.requires_grad and w.is_leaf
    assert an.zeros_like(w).dtype == np.float32
    assert an.ones(2, dtype=np.int64).dtype == np.int64
    assert an.full_like(w, 2.0, requires_grad=True).requires_grad
    np.testing.assert_array_equal(an.rand(4, rng=5).data, an.rand(4, rng=5).data)


def test_clip_refuses_bounds_that_require_grad_instead_of_dropping_their_gradient():
    """clip's bounds are constants: a bound that requires grad would silently get no gradient,
    directly or through np.clip."""
    x = an.tensor([0.0, 2.0], requires_grad=True)
    lo = an.tensor([0.5, 0.5], requires_grad=True)
    for call in (lambda: an.clip(x, lo, 1.0), lambda: np.clip(x, lo, 1.0)):
        with pytest.raises(TypeError, match="clip: a bound of shape \\(2,\\) requires grad"):
            call()
    np.testing.assert_array_equal(an.clip(x, lo.detach(), 1.0).data, [0.5, 1.0])
