"""NumPy's ufuncs and functions on Tensors record as the autonet function the dispatch table names.

For every entry of autonet.dispatch.NUMPY: called on Tensors the NumPy function returns a Tensor
equal to NumPy's result on the arrays, recorded with the same ops as the autonet function it maps
to, whose gradient matches central finite differences of NumPy's function on raw arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.dispatch import NUMPY, ON_VALUES
from autonet.testing import broadcastable_shapes, shapes
from tests.oracles import ATOL, RTOL, numeric_gradient

COMPARISONS = [np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal]
SEQUENCE_FIRST = {np.concatenate, np.stack}  # functions whose first argument is a list of arrays
REDUCTIONS = {np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod}  # axis, keepdims
NOT_DIFFERENTIABLE = {np.split, np.argmax, np.argmin}  # a list; indices (tested apart)
POSITIVE = {np.log, np.log2, np.log10, np.sqrt, np.power}  # defined for positive inputs only

# NumPy ufuncs an autonet operation could record: each mapped one must record, the others must
# raise TypeError naming it (and map in one line once autonet has the operation).
CANDIDATE_UFUNCS = [
    *(np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan, np.sinh, np.cosh, np.tanh),
    *(np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10, np.log1p, np.sqrt, np.square),
    *(np.cbrt, np.reciprocal, np.absolute, np.sign, np.negative, np.positive),
    *(np.add, np.subtract, np.multiply, np.divide, np.power, np.float_power, np.maximum),
    *(np.minimum, np.fmax, np.fmin, np.arctan2, np.hypot, np.logaddexp, np.matmul),
]


def values(rng, shape, low=0.1, high=0.9, signed=True):
    """float64 values of shape with |x| in [low, high] (a margin from the kinks of abs, sign and
    maximum at 0 and from log's and sqrt's edge; random, so that ties have probability 0)."""
    x = rng.uniform(low, high, shape)
    return x * rng.choice([-1.0, 1.0], shape) if signed else x


@st.composite
def cases(draw, key):
    """(arrays, kwargs) for the table entry `key`: the operands and the NumPy arguments."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    signed = key not in POSITIVE
    if key is np.matmul:
        a_shape, b_shape = draw(broadcastable_shapes(signature=np.matmul.signature, max_side=3))
        return [values(rng, a_shape), values(rng, b_shape)], {}
    if isinstance(key, np.ufunc):
        drawn = draw(broadcastable_shapes(num_shapes=key.nin, max_side=3))
        return [values(rng, shape, signed=signed) for shape in drawn], {}
    if key is np.tensordot:
        return tensordot_case(draw, rng)
    if key is np.einsum:
        return einsum_case(draw, rng)
    if key is np.where:
        c_shape, a_shape, b_shape = draw(broadcastable_shapes(num_shapes=3, max_side=3))
        condition = rng.choice([True, False], c_shape)
        return [values(rng, a_shape), values(rng, b_shape)], {"condition": condition}
    if key is np.outer:
        return [values(rng, draw(shapes(max_dims=2))), values(rng, draw(shapes(max_dims=2)))], {}
    x_shape = draw(shapes(min_dims=0 if key in REDUCTIONS else 2 if key is np.trace else 1))
    x = values(rng, x_shape)
    ndim = x.ndim
    if key in (np.var, np.std):  # over at least 2 elements: std's gradient is infinite at var 0
        x = values(rng, draw(shapes(min_dims=1, min_side=2)))
        axis = draw(st.none() | st.integers(-x.ndim, x.ndim - 1) | st.just(tuple(range(x.ndim))))
        return [x], {
            "axis": axis,
            "ddof": draw(st.sampled_from([0, 1])),
            "keepdims": draw(st.booleans()),
        }
    if key in REDUCTIONS | {np.add.reduce, np.maximum.reduce}:
        axes = st.none() | st.integers(-ndim, ndim - 1) if ndim else st.none()
        if ndim:
            axes |= st.lists(st.integers(0, ndim - 1), unique=True).map(tuple)
        if key in (np.add.reduce, np.maximum.reduce):  # one axis or all (ufunc.reduce's default 0)
            axes = st.just(0) | st.none() | st.integers(-ndim, ndim - 1)
        return [x], {"axis": draw(axes), "keepdims": draw(st.booleans())}
    if key is np.reshape:
        shape = draw(st.sampled_from([(-1,), (x.size,), x.shape[::-1], (1, *x.shape)]))
        return [x], {"shape": shape}
    if key is np.transpose:
        return [x], {"axes": draw(st.none() | st.permutations(range(ndim)).map(tuple))}
    if key is np.swapaxes:
        return [x], {
            "axis1": draw(st.integers(-ndim, ndim - 1)),
            "axis2": draw(st.integers(0, ndim - 1)),
        }
    if key is np.concatenate:
        axis = draw(st.integers(-ndim, ndim - 1))
        other = list(x.shape)
        other[axis] = draw(st.integers(1, 3))
        return [x, values(rng, other)], {"axis": axis}
    if key is np.stack:
        return [x, values(rng, x.shape)], {"axis": draw(st.integers(-ndim - 1, ndim))}
    if key is np.broadcast_to:
        small = tuple(draw(st.sampled_from([n, 1])) for n in x.shape)
        return [values(rng, small)], {"shape": (2, *x.shape)}
    if key is np.copy:
        return [x], {}
    if key is np.cumsum:
        return [x], {"axis": draw(st.none() | st.integers(-ndim, ndim - 1))}
    if key is np.squeeze:  # x with axes of length 1 inserted
        at = draw(st.integers(-ndim - 1, ndim))
        x = np.expand_dims(x, at)
        return [x], {"axis": draw(st.none() | st.just(at))}
    if key is np.expand_dims:
        return [x], {"axis": draw(st.integers(-ndim - 1, ndim))}
    if key is np.take_along_axis:
        axis = draw(st.none() | st.integers(-ndim, ndim - 1))
        if axis is None:
            indices = rng.integers(0, x.size, draw(st.integers(1, 5)))
        else:
            shape = list(x.shape)
            shape[axis] = draw(st.integers(1, 4))
            indices = rng.integers(0, x.shape[axis], shape)
        return [x], {"indices": indices, "axis": axis}
    if key is np.tile:
        reps = st.integers(1, 3) | st.lists(st.integers(1, 2), min_size=1, max_size=ndim + 1)
        return [x], {"reps": draw(reps.map(lambda r: tuple(r) if isinstance(r, list) else r))}
    if key is np.repeat:
        axis = draw(st.none() | st.integers(-ndim, ndim - 1))
        length = x.size if axis is None else x.shape[axis]
        repeats = draw(st.integers(0, 3) | st.just(rng.integers(0, 3, length)))
        return [x], {"repeats": repeats, "axis": axis}
    if key is np.trace:
        axis1 = draw(st.integers(-ndim, ndim - 1))
        axis2 = draw(st.integers(-ndim, ndim - 1).filter(lambda a: a % ndim != axis1 % ndim))
        return [x], {"offset": draw(st.integers(-1, 1)), "axis1": axis1, "axis2": axis2}
    if key is np.clip:  # |x| in [0.1, 0.4] or [0.6, 0.9]: a margin from the bounds at +-0.5
        x = values(rng, x_shape, 0.1, 0.4) + np.sign(x) * rng.choice([0.0, 0.5], x_shape)
        low, high = draw(st.sampled_from([(-0.5, 0.5), (None, 0.5), (-0.5, None)]))
        names = draw(st.sampled_from([("a_min", "a_max"), ("min", "max")]))
        bounds = dict(zip(names, (low, high), strict=True))  # NumPy needs a_min and a_max
        return [x], bounds if names[0] == "a_min" else {
            k: b for k, b in bounds.items() if b is not None
        }
    if key is np.pad:
        pad_width = draw(
            st.integers(0, 2)
            | st.tuples(st.integers(0, 2), st.integers(0, 2))
            | st.lists(
                st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=ndim, max_size=ndim
            )
        )
        kwargs = {"pad_width": pad_width, "constant_values": draw(st.sampled_from([0.0, 1.5]))}
        return [x], {**kwargs, **draw(st.sampled_from([{}, {"mode": "constant"}]))}
    raise LookupError(f"no case for {key}: add one to tests/test_numpy_dispatch.py")


def tensordot_case(draw, rng):
    """a, b and axes: the last k axes of a against the first k of b, as an int or as pairs of
    axes (negative for a)."""
    a_shape = draw(shapes(max_dims=3, max_side=3))
    k = draw(st.integers(0, len(a_shape)))
    b_shape = a_shape[len(a_shape) - k :] + draw(shapes(min_dims=0, max_dims=1, max_side=3))
    axes = draw(st.just(k) | st.just((list(range(-k, 0)), list(range(k)))))
    return [values(rng, a_shape), values(rng, b_shape)], {"axes": axes}


def einsum_case(draw, rng):
    """Subscripts (explicit, implicit, a repeated letter, an ellipsis) and their operands."""
    n, m, k = (draw(st.integers(1, 3)) for _ in range(3))
    subscripts, operand_shapes = draw(
        st.sampled_from(
            [
                ("ij,jk->ik", [(n, m), (m, k)]),
                ("ij->ji", [(n, m)]),
                ("ii", [(n, n)]),
                ("i,j", [(n,), (m,)]),
                ("...ij,...j->...i", [(k, n, m), (m,)]),
                ("ij,ij->", [(n, m), (n, m)]),
            ]
        )
    )
    return [values(rng, shape) for shape in operand_shapes], {"subscripts": subscripts}


def call(func, operands, kwargs):
    """func on the operands as a user writes it: ufuncs on their inputs, a function on its array
    (or list of arrays) and keyword arguments."""
    if isinstance(func, np.ufunc):
        return func(*operands)
    if func is np.where:  # positional only
        return func(kwargs["condition"], *operands)
    if func is np.einsum:
        return func(kwargs["subscripts"], *operands)
    if func in SEQUENCE_FIRST:
        return func(list(operands), **kwargs)
    return func(*operands, **kwargs)


def call_autonet(key, operands, kwargs):
    """The autonet function the table maps key to, called directly."""
    function = NUMPY[key]
    if isinstance(key, np.ufunc):
        return function(*operands)
    if key is np.where:
        return function(kwargs["condition"], *operands)
    if key is np.einsum:  # NumPy binds subscripts and operands to one tuple
        return function((kwargs["subscripts"], *operands))
    if key in SEQUENCE_FIRST:
        return function(list(operands), **kwargs)
    return function(*operands, **kwargs)


def ops_of(t):
    return [node.op.name for node in an.topological_order(t) if node.op is not None]


DIFFERENTIABLE = [key for key in NUMPY if key not in COMPARISONS and key not in NOT_DIFFERENTIABLE]


@pytest.mark.parametrize("key", DIFFERENTIABLE, ids=lambda k: getattr(k, "__qualname__", str(k)))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_numpy_function_records_as_its_autonet_function(key, data):
    arrays, kwargs = data.draw(cases(key))
    expected = call(key, arrays, kwargs)
    tensors = [an.tensor(a, requires_grad=True) for a in arrays]
    out = call(key, tensors, kwargs)
    assert isinstance(out, an.Tensor) and out.requires_grad
    assert out.shape == np.shape(expected) and out.dtype == np.asarray(expected).dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-15)
    direct = call_autonet(key, [an.tensor(a, requires_grad=True) for a in arrays], kwargs)
    assert ops_of(out) == ops_of(direct)
    g = np.random.default_rng(0).normal(size=out.shape)
    grads = an.gradients(out, tensors, grad=g)
    for i, grad in enumerate(grads):

        def loss(*xs):
            return float(np.sum(call(key, xs, kwargs) * g))

        np.testing.assert_allclose(
            grad.data, numeric_gradient(loss, arrays, i), rtol=RTOL, atol=ATOL
        )
    # float32 stays float32, value and gradient, and agrees with float64 to float32's precision
    # (a few ulps of float32, 6e-8 each, on values and gradients of order 1)
    tensors32 = [an.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out32 = call(key, tensors32, kwargs)
    assert (
        out32.dtype == np.float32 == call(key, [a.astype(np.float32) for a in arrays], kwargs).dtype
    )
    np.testing.assert_allclose(out32.data, expected, rtol=1e-5, atol=1e-6)
    grads32 = an.gradients(out32, tensors32, grad=g.astype(np.float32))
    for grad32, grad in zip(grads32, grads, strict=True):
        assert grad32.dtype == np.float32
        np.testing.assert_allclose(grad32.data, grad.data, rtol=1e-4, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_split_returns_a_list_of_tensors_recorded_as_autonets(data):
    x = values(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))), data.draw(shapes(1)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    sections = data.draw(
        st.sampled_from([d for d in range(1, n + 1) if n % d == 0])
        | st.lists(st.integers(0, n), max_size=3).map(sorted)
    )
    t = an.tensor(x, requires_grad=True)
    pieces = np.split(t, sections, axis=axis)
    expected = np.split(x, sections, axis=axis)
    assert isinstance(pieces, list) and len(pieces) == len(expected)
    direct = an.split(an.tensor(x, requires_grad=True), sections, axis=axis)
    for piece, value, same in zip(pieces, expected, direct, strict=True):
        assert isinstance(piece, an.Tensor) and piece.requires_grad
        np.testing.assert_array_equal(piece.data, value)
        assert ops_of(piece) == ops_of(same)
    # each piece's gradient lands on its part of x
    gs = [np.random.default_rng(k).normal(size=p.shape) for k, p in enumerate(pieces)]
    loss = an.sum(an.stack([(p * g).sum() for p, g in zip(pieces, gs, strict=True)]))
    (grad,) = an.gradients(loss, [t])
    np.testing.assert_array_equal(grad.data, np.concatenate(gs, axis=axis))


@pytest.mark.parametrize("func", [np.argmax, np.argmin])
def test_argmax_and_argmin_give_integer_tensors_outside_the_graph(func):
    x = values(np.random.default_rng(3), (3, 4))
    t = an.tensor(x, requires_grad=True)
    for kwargs in ({}, {"axis": -1}, {"axis": 0, "keepdims": True}):
        out = func(t, **kwargs)
        expected = func(x, **kwargs)
        assert isinstance(out, an.Tensor) and not out.requires_grad and out.op is None
        assert out.dtype == expected.dtype and out.dtype.kind == "i"
        np.testing.assert_array_equal(out.data, expected)
        np.testing.assert_array_equal(NUMPY[func](t, **kwargs).data, expected)


def test_adapted_arguments_bind_as_numpy_binds_them():
    x = values(np.random.default_rng(4), (2, 3))
    t = an.tensor(x, requires_grad=True)
    # np.where(condition) alone is np.nonzero: indices, computed on the values
    for got, expected in zip(np.where(t > 0), np.where(x > 0), strict=True):
        np.testing.assert_array_equal(got, expected)
    out = np.where(x > 0, 0.0, t)  # a Tensor in y only
    assert out.op.name == "where" and out.dtype == np.float64
    np.testing.assert_array_equal(out.data, np.where(x > 0, 0.0, x))
    # np.clip: NumPy's a_min/a_max, positionally, or NumPy 2's min/max; not both kinds
    np.testing.assert_array_equal(np.clip(t, -0.5, None).data, np.clip(x, -0.5, None))
    np.testing.assert_array_equal(np.clip(t, max=0.5).data, np.clip(x, max=0.5))
    with pytest.raises(ValueError, match="Passing `min` or `max` keyword argument"):
        np.clip(t, -0.5, 0.5, max=0.5)
    # np.einsum's optimize only orders NumPy's contraction; np.pad's **kwargs bind by name
    np.testing.assert_allclose(
        np.einsum("ij,kj->ik", t, x, optimize=True).data, x @ x.T, rtol=1e-12
    )
    np.testing.assert_array_equal(
        np.pad(t, 1, "constant", constant_values=2.0).data, np.pad(x, 1, constant_values=2.0)
    )
    np.testing.assert_array_equal(np.take_along_axis(t, np.zeros((2, 1), int)).data, x[:, :1])
    with pytest.raises(TypeError, match="np.pad: stat_length= is not supported"):
        np.pad(t, 1, stat_length=2)
    with pytest.raises(ValueError, match="pad: mode 'edge' is not supported"):
        np.pad(t, 1, mode="edge")


@pytest.mark.parametrize("ufunc", CANDIDATE_UFUNCS, ids=lambda u: u.__name__)
def test_candidate_ufunc_records_if_mapped_and_raises_otherwise(ufunc):
    rng = np.random.default_rng(1)
    arrays = [values(rng, (2, 3), 0.2, 0.8, signed=False) for _ in range(ufunc.nin)]
    if ufunc is np.matmul:
        arrays[1] = arrays[1].T
    tensors = [an.tensor(a, requires_grad=True) for a in arrays]
    if ufunc not in NUMPY:
        with pytest.raises(TypeError, match=rf"np\.{ufunc.__name__} is not supported"):
            ufunc(*tensors)
        return
    out = ufunc(*tensors)
    assert out.requires_grad and out.op is not None
    np.testing.assert_allclose(out.data, ufunc(*arrays), rtol=1e-12)


def test_a_numpy_function_is_differentiable_unchanged():
    def f(x):  # written for ndarrays
        return np.sum(np.tanh(x) ** 2)

    x = np.array([0.5, -1.0, 2.0])
    hand = 2 * np.tanh(x) * (1 - np.tanh(x) ** 2)
    np.testing.assert_allclose(an.grad(f)(x).data, hand, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "name, operator",
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a**b),
        ("matmul", lambda a, b: a @ b),
    ],
)
def test_ndarray_and_tensor_mix_on_either_side_and_record(name, operator, dtype):
    rng = np.random.default_rng(2)
    a = values(rng, (2, 3, 3), 0.5, 1.5, signed=False).astype(dtype)  # broadcasts against b
    b = values(rng, (3, 3), 0.5, 1.5, signed=False).astype(dtype)
    for array_first in (True, False):
        t = an.tensor(b if array_first else a, requires_grad=True)
        operands = (a, t) if array_first else (t, b)
        out = operator(*operands)
        assert isinstance(out, an.Tensor) and out.op.name == name
        assert out.dtype == dtype and out.shape == (2, 3, 3)
        np.testing.assert_array_equal(out.data, operator(a, b))
        # the same graph and gradient as with the array made a tensor first
        wrapped = [an.tensor(x) if isinstance(x, np.ndarray) else x for x in operands]
        (grad,) = an.gradients(out.sum(), [t])
        (expected,) = an.gradients(operator(*wrapped).sum(), [t])
        np.testing.assert_array_equal(grad.data, expected.data)
        assert grad.dtype == dtype


def test_numbers_take_the_tensors_dtype_and_arrays_promote_as_numpy():
    t = an.tensor(np.ones(3, np.float32), requires_grad=True)
    for out in (np.multiply(2.0, t), np.add(2, t), np.power(2.0, t), np.maximum(0.5, t)):
        assert out.dtype == np.float32 and out.requires_grad
    assert np.power(t, 2).op.name == "pow_scalar"  # as t ** 2
    assert (np.ones(3, np.float64) + t).dtype == np.float64
    assert (np.ones(3, np.float32) * t).dtype == np.float32
    assert (np.float32(2.0) * t).dtype == np.float32


def test_comparisons_give_boolean_tensors_outside_the_graph():
    a = np.array([0.0, 1.0, 2.0])
    t = an.tensor([1.0, 1.0, 1.0], requires_grad=True)
    for ufunc in COMPARISONS:
        for out, expected in ((ufunc(a, t), ufunc(a, 1.0)), (ufunc(t, a), ufunc(1.0, a))):
            assert isinstance(out, an.Tensor) and not out.requires_grad
            np.testing.assert_array_equal(out.data, expected)
    np.testing.assert_array_equal((a < t).data, [True, False, False])


def test_functions_on_values_return_numpys_results():
    t = an.tensor([1.0, np.inf, np.nan], requires_grad=True)
    assert ON_VALUES
    assert np.shape(t) == (3,) and np.ndim(t) == 1 and np.size(t) == 3
    assert np.allclose(an.tensor([1.0, 2.0]), [1.0, 2.0])
    assert np.array_equal(an.tensor([1.0, 2.0]), np.array([1.0, 2.0]))
    for out, expected in ((np.isfinite(t), [True, False, False]), (np.isnan(t), [0, 0, 1])):
        assert isinstance(out, an.Tensor) and not out.requires_grad and out.dtype == bool
        np.testing.assert_array_equal(out.data, expected)
    assert not np.all(np.isfinite(t))


def test_asarray_and_array_give_the_plain_values():
    t = an.tensor([1.0, 2.0], requires_grad=True)
    assert type(np.asarray(t)) is np.ndarray and np.asarray(t) is t.data
    assert type(np.array(t)) is np.ndarray and np.array(t) is not t.data
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float32), [1.0, 2.0])


def test_positional_numpy_arguments_bind_as_numpy_binds_them():
    x = an.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert np.sum(x, 1).shape == (2,)
    assert np.reshape(x, (3, 2)).shape == (3, 2)
    assert np.transpose(x, (1, 0)).shape == (3, 2)
    assert np.concatenate((x, x), 1).shape == (2, 6)
    assert np.mean(x, axis=None, out=None).shape == ()  # None where NumPy's default is None
    assert np.add.reduce(x, 1).shape == (2,) and np.add.reduce(x).shape == (3,)  # axis 0
    assert np.add.reduce(x, None, None, None, True).shape == (1, 1)
    assert np.exp(x, dtype=None).op.name == "exp"
    with pytest.raises(TypeError, match="np.sum: dtype= is not supported"):
        np.sum(x, 0, np.float64)  # dtype, positionally


@pytest.mark.parametrize(
    "code, message",
    [
        ("np.exp(t, out=t)", "np.exp: out= is not supported"),
        ("np.add(t, 1.0, out=np.empty(2))", "np.add: out= is not supported"),
        ("np.sum(t, out=np.empty(()))", "np.sum: out= is not supported"),
        ("np.add.reduce(t, out=np.empty(()))", "np.add.reduce: out= is not supported"),
        ("np.isfinite(t, out=np.empty(2, bool))", "np.isfinite: out= is not supported"),
        ("np.add(t, 1.0, where=True)", "np.add: where= is not supported"),
        ("np.exp(t, dtype=np.float32)", "np.exp: dtype= is not supported"),
        ("np.max(t, initial=0.0)", "np.max: initial= is not supported"),
        ("np.copy(t, order='F')", "np.copy: order= is not supported"),
        ("np.fft.fft(t)", r"np.fft.fft is not supported on autonet Tensors \(it would leave"),
        ("np.floor(t)", r"np.floor is not supported on autonet Tensors \(it would leave"),
        ("np.add.accumulate(t)", r"np.add.accumulate is not supported"),
        ("np.multiply.reduce(t)", r"np.multiply.reduce is not supported"),
        ("np.add.outer(t, t)", r"np.add.outer is not supported"),
        ("np.add.at(t, [0], 1.0)", r"np.add.at is not supported"),
    ],
)
def test_unsupported_calls_raise_a_type_error_naming_them(code, message):
    t = an.tensor([1.0, 2.0], requires_grad=True)
    before = t.data.copy()
    with pytest.raises(TypeError, match=message):
        eval(code, {"np": np, "t": t})
    np.testing.assert_array_equal(t.data, before)  # nothing was written


def test_tensor_operators_never_go_through_numpys_dispatch(monkeypatch):
    # Tensor op Tensor and Tensor op ndarray call Tensor's operators directly (the fast path)
    from autonet import dispatch

    calls = []
    monkeypatch.setattr(dispatch, "array_ufunc", lambda *args: calls.append(args))
    S, Y = an.tensor(np.ones((4, 3))), np.ones((4, 1))
    syn0 = an.tensor(np.full((3, 4), 0.1), requires_grad=True)
    syn1 = an.tensor(np.full((4, 1), 0.2), requires_grad=True)
    O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
    (0.5 * ((O - Y) ** 2).sum()).backward()
    assert calls == []
    np.ones(3) + an.tensor(np.ones(3))
    assert len(calls) == 1  # the ndarray's operator: NumPy calls np.add, which dispatches
