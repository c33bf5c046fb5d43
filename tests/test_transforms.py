"""JAX's function transforms (value_and_grad, vjp, jvp, jacobian/jacrev, jacfwd, hessian, hvp):
each matches finite differences and torch.func, the two modes agree, and they compose.

Each function below is written once, in `lib`'s operations: NumPy's on arrays (the oracle), the
same NumPy calls on autonet Tensors (dispatched), or torch's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.testing import shapes
from tests.oracles import numeric_gradient

try:
    import torch
    import torch.func
except ImportError:  # PyTorch is an optional cross-check
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
# torch.func's forward mode scripts its decompositions with the deprecated torch.jit.script on
# first use: PyTorch's own warning, not this project's
quiet_torch_jit = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

# Exact transforms of the same VJPs agree to rounding; central differences (eps = 1e-6) to ~1e-9
# for values of order 1 (tests/oracles.py), second differences of a gradient likewise.
EXACT = {"rtol": 1e-10, "atol": 1e-12}
NUMERIC = {"rtol": 1e-5, "atol": 1e-6}


def sin_times_x(x, lib=np):
    return lib.sin(x) * x


def softmax(x, lib=np):
    e = lib.exp(x)
    return e / lib.sum(e)


def cumulative_squares(x, lib=np):
    return lib.cumsum(x.reshape(-1), 0) ** 2 if lib is not np else np.cumsum(x.reshape(-1)) ** 2


def scalar_loss(x, lib=np):
    """A smooth scalar function with a dense Hessian."""
    return lib.log(lib.sum(lib.exp(x))) + lib.sum(lib.sin(x) * x * x)


VECTOR_FUNCTIONS = [sin_times_x, softmax, cumulative_squares]

SETTINGS = settings(max_examples=15, deadline=None)
ARRAYS = shapes(min_dims=0, max_dims=2, max_side=3).flatmap(
    lambda shape: st.integers(0, 2**32 - 1).map(
        lambda seed: np.random.default_rng(seed).uniform(-2, 2, shape)
    )
)


def numeric_jacobian(f, x):
    """d f(x)[i...] / d x[j...] by central differences, shape f(x).shape + x.shape."""
    out_shape = np.shape(f(x))
    rows = [
        numeric_gradient(lambda a, i=i: np.asarray(f(a)).reshape(-1)[i], [x], 0)
        for i in range(int(np.prod(out_shape)))
    ]
    return np.array(rows).reshape(out_shape + x.shape)


@pytest.mark.parametrize("f", VECTOR_FUNCTIONS, ids=lambda f: f.__name__)
@SETTINGS
@given(x=ARRAYS)
def test_jacobians_match_finite_differences_and_each_other(f, x):
    reverse, forward = an.jacobian(f)(x), an.jacfwd(f)(x)
    expected = numeric_jacobian(f, x)
    assert reverse.shape == forward.shape == expected.shape
    np.testing.assert_allclose(reverse.data, expected, **NUMERIC)
    np.testing.assert_allclose(forward.data, reverse.data, **EXACT)


@pytest.mark.parametrize("f", VECTOR_FUNCTIONS, ids=lambda f: f.__name__)
@SETTINGS
@given(x=ARRAYS, seed=st.integers(0, 2**32 - 1))
def test_jvp_and_vjp_are_transposes_and_match_the_jacobian(f, x, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=x.shape)
    out, tangent_out = an.jvp(f, (x,), (v,))
    u = rng.normal(size=out.shape)
    out_again, vjp_fn = an.vjp(f, x)
    (cotangent_in,) = vjp_fn(u)
    J = numeric_jacobian(f, x).reshape(out.size, x.size)
    np.testing.assert_allclose(out.data, f(x), **EXACT)
    np.testing.assert_allclose(out_again.data, f(x), **EXACT)
    np.testing.assert_allclose(tangent_out.data.reshape(-1), J @ v.reshape(-1), **NUMERIC)
    np.testing.assert_allclose(cotangent_in.data.reshape(-1), J.T @ u.reshape(-1), **NUMERIC)
    # <u, J v> = <J^T u, v>, exactly up to rounding
    assert np.isclose(np.vdot(u, tangent_out.data), np.vdot(cotangent_in.data, v), **EXACT)


@SETTINGS
@given(x=ARRAYS, seed=st.integers(0, 2**32 - 1))
def test_hessian_is_symmetric_and_matches_finite_differences_of_the_gradient(x, seed):
    H = an.hessian(scalar_loss)(x)
    assert H.shape == x.shape + x.shape
    n = x.size
    matrix = H.data.reshape(n, n)
    np.testing.assert_allclose(matrix, matrix.T, **EXACT)
    gradient = an.grad(scalar_loss)
    expected = numeric_jacobian(lambda a: gradient(a).data, x)
    np.testing.assert_allclose(H.data, expected, **NUMERIC)
    # jacfwd of grad (forward over reverse, JAX's choice) is the same matrix
    np.testing.assert_allclose(an.jacfwd(gradient)(x).data, H.data, **EXACT)
    v = np.random.default_rng(seed).normal(size=x.shape)
    expected_hv = (matrix @ v.reshape(-1)).reshape(x.shape)
    np.testing.assert_allclose(an.hvp(scalar_loss, x, v).data, expected_hv, **EXACT)


@SETTINGS
@given(x=ARRAYS)
def test_value_and_grad_matches_f_and_finite_differences(x):
    value, found = an.value_and_grad(scalar_loss)(x)
    np.testing.assert_allclose(value.data, scalar_loss(x), **EXACT)
    np.testing.assert_allclose(found.data, numeric_gradient(scalar_loss, [x], 0), **NUMERIC)
    assert not value.requires_grad and not found.requires_grad


@needs_torch
@quiet_torch_jit
@pytest.mark.parametrize("f", VECTOR_FUNCTIONS, ids=lambda f: f.__name__)
def test_transforms_match_torch_func(f):
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    u = rng.normal(size=f(x).shape)
    tx, tv, tu = (torch.tensor(a) for a in (x, v, u))

    def torch_f(t):
        return f(t, torch)

    np.testing.assert_allclose(an.jacobian(f)(x).data, torch.func.jacrev(torch_f)(tx), **EXACT)
    np.testing.assert_allclose(an.jacfwd(f)(x).data, torch.func.jacfwd(torch_f)(tx), **EXACT)
    np.testing.assert_allclose(
        an.jvp(f, (x,), (v,))[1].data, torch.func.jvp(torch_f, (tx,), (tv,))[1], **EXACT
    )
    np.testing.assert_allclose(
        an.vjp(f, x)[1](u)[0].data, torch.func.vjp(torch_f, tx)[1](tu)[0], **EXACT
    )


@needs_torch
@quiet_torch_jit
def test_second_order_transforms_match_torch():
    rng = np.random.default_rng(1)
    x, v = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    tx, tv = torch.tensor(x), torch.tensor(v)

    def torch_loss(t):
        return scalar_loss(t, torch)

    np.testing.assert_allclose(
        an.hessian(scalar_loss)(x).data, torch.func.hessian(torch_loss)(tx), **EXACT
    )
    _, expected = torch.autograd.functional.hvp(torch_loss, tx, tv)
    np.testing.assert_allclose(an.hvp(scalar_loss, x, v).data, expected, **EXACT)


def test_compositions():
    x = np.array([0.3, -1.1, 2.0])
    ones = np.ones(3)

    # d/dx of jvp(sin, x, 1) = d/dx cos(x) = -sin(x), and once more -cos(x)
    def derivative(y):
        return an.jvp(an.sin, (y,), (ones,))[1].sum()

    np.testing.assert_allclose(an.grad(derivative)(x).data, -np.sin(x), **EXACT)
    np.testing.assert_allclose(
        an.grad(lambda y: an.grad(derivative)(y).sum())(x).data, -np.cos(x), **EXACT
    )
    # a tangent that requires grad stays in the graph: d/dv sum(cos(x) v) = cos(x)
    found = an.grad(lambda v: an.jvp(an.sin, (x,), (v,))[1].sum())(ones)
    np.testing.assert_allclose(found.data, np.cos(x), **EXACT)
    # jvp of jvp, and jacfwd of jacobian: second derivatives of sin are -sin on the diagonal
    second = an.jvp(lambda y: an.jvp(an.sin, (y,), (ones,))[1], (x,), (ones,))[1]
    np.testing.assert_allclose(second.data, -np.sin(x), **EXACT)
    H = an.jacfwd(an.jacobian(lambda y: an.sin(y).sum()))(x)
    np.testing.assert_allclose(H.data, np.diag(-np.sin(x)), **EXACT)
    # a vjp whose cotangent is differentiated: d/du <J^T u, 1> = J 1
    W = np.arange(6.0).reshape(2, 3)
    _, vjp_fn = an.vjp(lambda y: an.tensor(W) @ y, x)
    found = an.grad(lambda u: vjp_fn(u)[0].sum())(np.ones(2))
    np.testing.assert_allclose(found.data, W @ ones, **EXACT)


def test_a_closed_over_variable_is_not_confused_with_the_argument():
    # d/dx [d/dy (x y) at y = x] = d/dx x = 1 (2 if the inner grad differentiated x as well)
    assert an.grad(lambda x: an.grad(lambda y: x * y)(x))(3.0).item() == 1.0
    assert an.grad(lambda x: an.jvp(lambda y: x * y, (x,), (1.0,))[1])(3.0).item() == 1.0


def test_tuple_argnums_and_tuple_outputs_follow_jax_layout():
    A, b = np.arange(6.0).reshape(2, 3) / 6, np.array([0.5, -1.0, 2.0])

    def f(A, b):
        return np.tanh(A @ b), (b * b).sum()

    reverse = an.jacobian(f, argnums=(0, 1))(A, b)
    forward = an.jacfwd(f, argnums=(-2, -1))(A, b)
    shapes_found = [[block.shape for block in per_output] for per_output in reverse]
    assert shapes_found == [[(2, 2, 3), (2, 3)], [(2, 3), (3,)]]
    for rev_out, fwd_out in zip(reverse, forward, strict=True):
        for rev, fwd in zip(rev_out, fwd_out, strict=True):
            np.testing.assert_allclose(fwd.data, rev.data, **EXACT)
    np.testing.assert_allclose(reverse[1][1].data, 2 * b, **EXACT)
    dA, db = an.grad(lambda A, b: f(A, b)[0].sum(), argnums=(0, 1))(A, b)
    np.testing.assert_allclose(dA.data, reverse[0][0].data.sum(axis=0), **EXACT)
    out, (t0, t1) = an.jvp(f, (A, b), (np.ones_like(A), np.zeros_like(b)))
    np.testing.assert_allclose(t0.data, reverse[0][0].data.sum(axis=(1, 2)), **EXACT)
    assert t1.item() == 0.0


def test_has_aux_returns_the_auxiliary_value_untouched():
    x = np.array([1.0, 2.0])

    def f(y):
        return (y * y).sum(), {"note": "aux"}

    found, aux = an.grad(f, has_aux=True)(x)
    (value, aux2), found2 = an.value_and_grad(f, has_aux=True)(x)
    assert aux == aux2 == {"note": "aux"} and value.item() == 5.0
    np.testing.assert_array_equal(found.data, 2 * x)
    np.testing.assert_array_equal(found2.data, 2 * x)
    _, tangent, aux3 = an.jvp(f, (x,), (np.ones(2),), has_aux=True)
    _, vjp_fn, aux4 = an.vjp(f, x, has_aux=True)
    jac, aux5 = an.jacobian(f, has_aux=True)(x)
    assert aux3 == aux4 == aux5 == {"note": "aux"}
    assert tangent.item() == 6.0
    np.testing.assert_array_equal(vjp_fn(1.0)[0].data, 2 * x)
    np.testing.assert_array_equal(jac.data, 2 * x)


def test_vjp_fn_can_be_called_again_and_unused_inputs_get_zeros():
    x, unused = np.array([1.0, 2.0]), np.array([3.0])
    out, vjp_fn = an.vjp(lambda y, z: y * 3, x, unused)
    for u in (np.ones(2), np.array([1.0, -1.0])):
        gx, gz = vjp_fn(u)
        np.testing.assert_array_equal(gx.data, 3 * u)
        np.testing.assert_array_equal(gz.data, [0.0])
    assert an.jvp(lambda y: an.tensor(2.0), (x,), (x,))[1].item() == 0.0
    np.testing.assert_array_equal(an.jacfwd(lambda y: an.tensor([2.0]))(x).data, [[0.0, 0.0]])


@pytest.mark.parametrize(
    "transform",
    [
        lambda f, x: an.grad(lambda y: f(y).sum())(x),
        lambda f, x: an.jacobian(f)(x),
        lambda f, x: an.jacfwd(f)(x),
        lambda f, x: an.jvp(f, (x,), (np.ones_like(x),))[1],
        lambda f, x: an.vjp(f, x)[1](np.ones_like(x))[0],
        lambda f, x: an.hessian(lambda y: f(y).sum())(x),
        lambda f, x: an.hvp(lambda y: f(y).sum(), x, np.ones_like(x)),
    ],
    ids=["grad", "jacobian", "jacfwd", "jvp", "vjp", "hessian", "hvp"],
)
def test_float32_is_kept(transform):
    x = np.array([0.5, -1.5], dtype=np.float32)
    assert transform(sin_times_x, x).dtype == np.float32


def test_arguments_may_be_numbers_arrays_or_tensors():
    expected = np.cos(0.5)
    for x in (0.5, np.array(0.5), an.tensor(0.5), an.tensor(0.5, requires_grad=True)):
        assert np.isclose(an.jvp(an.sin, (x,), (1.0,))[1].item(), expected)
        assert np.isclose(an.jacfwd(an.sin)(x).item(), expected)
        assert np.isclose(an.hessian(an.sin)(x).item(), -np.sin(0.5))
