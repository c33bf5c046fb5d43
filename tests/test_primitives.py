"""Every primitive of the table: forward matches NumPy, VJPs match finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.primitives import PRIMITIVES
from tests.oracles import (
    ATOL,
    RTOL,
    conv2d_by_loop,
    linear_transpose,
    max_pool2d_gather_by_loop,
    max_pool2d_scatter_by_loop,
    numeric_gradient,
    pool_by_loop,
)
from tests.strategies import PRIMITIVE_CASES

# Independent NumPy statements of each forward (the table's own forward is what is tested).
NUMPY_REFERENCE = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda x: -x,
    "pow": lambda a, b: a**b,
    "pow_scalar": lambda x, exponent: np.power(x, np.float64(exponent)),
    "matmul": lambda a, b: np.matmul(a, b),
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.log(1 + np.exp(x)),
    "tanh": np.tanh,
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "abs": np.abs,
    "sign": np.sign,
    "maximum": np.maximum,
    "sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    "max": lambda x, axis, keepdims: np.amax(x, axis=axis, keepdims=keepdims),
    "log_softmax": lambda x, axis: np.log(np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)),
    "broadcast_to": lambda x, shape: np.broadcast_to(x, shape),
    "reshape": lambda x, shape: np.reshape(x, shape),
    "transpose": lambda x, axes: np.transpose(x, axes),
    "getitem": lambda x, index: x[index],
    "scatter_add": lambda g, index, shape: scatter_by_loop(g, index, shape),
    "concatenate": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "astype": lambda x, dtype: x.astype(dtype),
    "zeros_like": np.zeros_like,
    "copy": lambda x: x + 0.0,
    "sin": np.sin,
    "cos": np.cos,
    "tan": lambda x: np.sin(x) / np.cos(x),
    "arcsin": np.arcsin,
    "arccos": lambda x: np.pi / 2 - np.arcsin(x),
    "arctan": np.arctan,
    "sinh": lambda x: (np.exp(x) - np.exp(-x)) / 2,
    "cosh": lambda x: (np.exp(x) + np.exp(-x)) / 2,
    "log1p": lambda x: np.log(1 + x),
    "expm1": lambda x: np.exp(x) - 1,
    "log2": lambda x: np.log(x) / np.log(2),
    "log10": lambda x: np.log(x) / np.log(10),
    "exp2": lambda x: 2.0**x,
    "erf": np.vectorize(math.erf, otypes=[np.float64]),
    "where": lambda cond, a, b: np.where(cond, a, b),
    "clip": lambda x, a_min, a_max: np.clip(
        x, -np.inf if a_min is None else a_min, np.inf if a_max is None else a_max
    ),
    "minimum": np.minimum,
    "logsumexp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
    "cumsum": lambda x, axis: np.cumsum(x, axis=axis),
    "prod": lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
    "pad": lambda x, pad_width, constant_values: np.pad(
        x, pad_width, constant_values=constant_values
    ),
    "einsum": lambda *xs, subscripts: np.einsum(subscripts, *xs),
    "conv2d": conv2d_by_loop,
    # the transposes of linear maps: the matrix of the loop statement, transposed
    "conv2d_input_grad": lambda u, w, input_size, **p: linear_transpose(
        lambda x: conv2d_by_loop(x, w, **p), u.shape, u.shape[:1] + w.shape[1:2] + input_size
    )(u),
    "conv2d_weight_grad": lambda x, u, kernel_size, **p: linear_transpose(
        lambda w: conv2d_by_loop(x, w, **p), u.shape, u.shape[1:2] + x.shape[1:2] + kernel_size
    )(u),
    "avg_pool2d": lambda x, **p: pool_by_loop(x, **p, reduce=np.mean, fill=0.0),
    "avg_pool2d_grad": lambda u, input_size, **p: linear_transpose(
        lambda x: pool_by_loop(x, **p, reduce=np.mean, fill=0.0), u.shape, u.shape[:2] + input_size
    )(u),
    "max_pool2d": lambda x, **p: pool_by_loop(x, **p, reduce=np.max, fill=-np.inf),
    "max_pool2d_scatter": max_pool2d_scatter_by_loop,
    "max_pool2d_gather": max_pool2d_gather_by_loop,
}


def scatter_by_loop(g, index, shape):
    out = np.zeros(shape)
    positions = np.arange(int(np.prod(shape))).reshape(shape)[index]
    for position, value in zip(np.ravel(positions), np.ravel(g), strict=True):
        out.flat[position] += value
    return out


def test_primitive_cases_cover_the_table():
    assert set(PRIMITIVE_CASES) == set(PRIMITIVES) == set(NUMPY_REFERENCE)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_forward_matches_numpy(name, data):
    inputs, params = data.draw(PRIMITIVE_CASES[name])
    out = PRIMITIVES[name](*[an.tensor(x) for x in inputs], **params)
    assert isinstance(out, an.Tensor)
    expected = NUMPY_REFERENCE[name](*inputs, **params)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_vjp_matches_finite_differences(name, data):
    """For L = sum(u * out) with a random u, autograd's dL/dx_i equals central differences."""
    primitive = PRIMITIVES[name]
    inputs, params = data.draw(PRIMITIVE_CASES[name])
    out_shape = np.shape(primitive.forward(*inputs, **params))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    u = rng.normal(size=out_shape)

    # an input whose VJP is None (where's condition) has no gradient to check
    differentiable = [primitive.variadic or vjp is not None for vjp in primitive.vjps]
    differentiable += [differentiable[-1]] * (len(inputs) - len(differentiable))
    tensors = [an.tensor(x, requires_grad=d) for x, d in zip(inputs, differentiable, strict=True)]
    (primitive(*tensors, **params) * u).sum().backward()

    def loss(*arrays):
        return float(np.sum(u * primitive.forward(*arrays, **params)))

    for i, t in enumerate(tensors):
        if not differentiable[i]:
            assert t.grad is None
            continue
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == t.dtype
        np.testing.assert_allclose(
            t.grad.data,
            numeric_gradient(loss, inputs, i),
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"{name}: gradient of input {i}",
        )


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.0, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_python_number_exponent_is_a_param_of_pow_scalar(exponent, dtype):
    """x ** p with a Python number p records pow_scalar (one input, p a param) with the values
    and gradients of pow with p as a constant input, in x's dtype; a tensor exponent records pow."""
    values = np.array([0.5, 1.0, 2.5], dtype=dtype)
    x = an.tensor(values, requires_grad=True)
    y = x**exponent
    assert y.op is PRIMITIVES["pow_scalar"] and y.params == {"exponent": exponent}
    assert len(y.parents) == 1 and y.dtype == dtype
    y.sum().backward()

    x_pow = an.tensor(values, requires_grad=True)
    z = x_pow ** an.tensor(np.asarray(exponent, dtype=dtype))
    assert z.op is PRIMITIVES["pow"]
    z.sum().backward()
    # the same ufunc loop, or numpy's exact shortcut for it (x ** 2 is x * x): equal to an ulp
    np.testing.assert_allclose(y.data, z.data, rtol=2 * np.finfo(dtype).eps)
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.data, x_pow.grad.data, rtol=4 * np.finfo(dtype).eps)
