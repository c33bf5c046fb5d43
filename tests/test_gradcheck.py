"""gradcheck and gradgradcheck: pass on correct derivatives (every primitive of the table,
composites, float32, kinks), fail with a useful message on wrong ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autonet as an
from autonet.gradcheck import GradcheckError, GradcheckWarning
from autonet.primitives import PRIMITIVES
from autonet.testing import floats, tensors

P = PRIMITIVES
ANY = floats(-3, 3)
POSITIVE = floats(0.5, 3)

# The image primitives' params: stride 2 in height, padding, dilation 2 in width (conv2d of a
# (5, 4) image with a (2, 2) kernel gives (2, 4)); a (3, 2) window, stride 2, padding 1: (3, 3).
CONV = {"stride": (2, 1), "padding": (0, 1), "dilation": (1, 2)}
POOL = {"kernel_size": (3, 2), "stride": (2, 2), "padding": (1, 1)}

# One or more cases per primitive: (function of the inputs, [(shape, elements) per input]).
# Shapes exercise broadcasting and the primitives' params; a new primitive fails
# test_every_primitive_has_a_case until it gets one here.
CASES: dict[str, list[tuple]] = {
    "add": [(lambda a, b: P["add"](a, b), [((2, 3), ANY), ((3,), ANY)])],
    "sub": [(lambda a, b: P["sub"](a, b), [((2, 1), ANY), ((2, 3), ANY)])],
    "mul": [(lambda a, b: P["mul"](a, b), [((2, 3), ANY), ((1, 3), ANY)])],
    "div": [(lambda a, b: P["div"](a, b), [((2, 3), ANY), ((3,), POSITIVE)])],
    "neg": [(lambda x: P["neg"](x), [((2, 3), ANY)])],
    "pow": [(lambda a, b: P["pow"](a, b), [((2, 3), POSITIVE), ((2, 3), ANY)])],
    "pow_scalar": [
        (lambda x: P["pow_scalar"](x, exponent=2), [((2, 3), ANY)]),
        (lambda x: P["pow_scalar"](x, exponent=-1.5), [((2, 3), POSITIVE)]),
    ],
    "matmul": [
        (lambda a, b: P["matmul"](a, b), [((2, 3), ANY), ((3, 2), ANY)]),
        (lambda a, b: P["matmul"](a, b), [((3,), ANY), ((2, 3, 2), ANY)]),
        (lambda a, b: P["matmul"](a, b), [((2, 2, 3), ANY), ((3,), ANY)]),
    ],
    "exp": [(lambda x: P["exp"](x), [((2, 3), ANY)])],
    "log": [(lambda x: P["log"](x), [((2, 3), POSITIVE)])],
    "sqrt": [(lambda x: P["sqrt"](x), [((2, 3), POSITIVE)])],
    "sigmoid": [(lambda x: P["sigmoid"](x), [((2, 3), ANY)])],
    "tanh": [(lambda x: P["tanh"](x), [((2, 3), ANY)])],
    "softplus": [(lambda x: P["softplus"](x), [((2, 3), ANY)])],
    "copy": [(lambda x: P["copy"](x), [((2, 3), ANY)])],
    "relu": [(lambda x: P["relu"](x), [((2, 3), ANY)])],
    "abs": [(lambda x: P["abs"](x), [((2, 3), ANY)])],
    "sign": [(lambda x: P["sign"](x) * x, [((2, 3), ANY)])],
    "maximum": [(lambda a, b: P["maximum"](a, b), [((2, 3), ANY), ((3,), ANY)])],
    "sum": [
        (lambda x: P["sum"](x, axis=1, keepdims=False), [((2, 3, 2), ANY)]),
        (lambda x: P["sum"](x, axis=None, keepdims=True), [((2, 3), ANY)]),
    ],
    "max": [(lambda x: P["max"](x, axis=0, keepdims=False), [((3, 2), ANY)])],
    "log_softmax": [
        (lambda x: P["log_softmax"](x, axis=1), [((2, 3), ANY)]),
        (lambda x: P["log_softmax"](x, axis=0), [((3, 2, 2), ANY)]),
    ],
    "broadcast_to": [(lambda x: P["broadcast_to"](x, shape=(2, 3)), [((3,), ANY)])],
    "reshape": [(lambda x: P["reshape"](x, shape=(3, 2)), [((2, 3), ANY)])],
    "transpose": [(lambda x: P["transpose"](x, axes=(1, 2, 0)), [((2, 3, 2), ANY)])],
    "getitem": [
        (lambda x: P["getitem"](x, index=(np.array([0, 2, 2]), slice(None))), [((3, 2), ANY)])
    ],
    "scatter_add": [
        (lambda g: P["scatter_add"](g, index=np.array([0, 2, 0]), shape=(4, 2)), [((3, 2), ANY)])
    ],
    "concatenate": [(lambda a, b: P["concatenate"](a, b, axis=1), [((2, 1), ANY), ((2, 3), ANY)])],
    # float64 -> float32 -> float64: the finite difference sees float32 rounding.
    "astype": [
        (
            lambda x: P["astype"](
                P["astype"](x, dtype=np.dtype(np.float32)), dtype=np.dtype(np.float64)
            ),
            [((2, 3), ANY)],
        )
    ],
    "zeros_like": [(lambda x: P["zeros_like"](x) + x, [((2, 3), ANY)])],
    "sin": [(lambda x: P["sin"](x), [((2, 3), ANY)])],
    "cos": [(lambda x: P["cos"](x), [((2, 3), ANY)])],
    "tan": [(lambda x: P["tan"](x), [((2, 3), floats(-1.2, 1.2))])],
    "arcsin": [(lambda x: P["arcsin"](x), [((2, 3), floats(-0.9, 0.9))])],
    "arccos": [(lambda x: P["arccos"](x), [((2, 3), floats(-0.9, 0.9))])],
    "arctan": [(lambda x: P["arctan"](x), [((2, 3), ANY)])],
    "sinh": [(lambda x: P["sinh"](x), [((2, 3), ANY)])],
    "cosh": [(lambda x: P["cosh"](x), [((2, 3), ANY)])],
    "log1p": [(lambda x: P["log1p"](x), [((2, 3), POSITIVE)])],
    "expm1": [(lambda x: P["expm1"](x), [((2, 3), ANY)])],
    "log2": [(lambda x: P["log2"](x), [((2, 3), POSITIVE)])],
    "log10": [(lambda x: P["log10"](x), [((2, 3), POSITIVE)])],
    "exp2": [(lambda x: P["exp2"](x), [((2, 3), ANY)])],
    "erf": [(lambda x: P["erf"](x), [((2, 3), ANY)])],
    "where": [
        (
            lambda a, b: P["where"](an.tensor([[True, False, True]]), a, b),
            [((2, 3), ANY), ((3,), ANY)],
        )
    ],
    "clip": [(lambda x: P["clip"](x, a_min=-1.0, a_max=1.0), [((2, 3), ANY)])],
    "minimum": [(lambda a, b: P["minimum"](a, b), [((2, 3), ANY), ((3,), ANY)])],
    "logsumexp": [(lambda x: P["logsumexp"](x, axis=1, keepdims=False), [((2, 3), ANY)])],
    "cumsum": [(lambda x: P["cumsum"](x, axis=0), [((3, 2), ANY)])],
    "prod": [(lambda x: P["prod"](x, axis=1, keepdims=True), [((2, 3), ANY)])],
    "pad": [(lambda x: P["pad"](x, pad_width=((1, 0), (2, 1))), [((2, 3), ANY)])],
    "einsum": [
        (lambda a, b: P["einsum"](a, b, subscripts="ij,jk->ik"), [((2, 3), ANY), ((3, 2), ANY)]),
        (lambda a: P["einsum"](a, subscripts="iij->ji"), [((2, 2, 3), ANY)]),
    ],
    "conv2d": [
        (lambda x, w: P["conv2d"](x, w, **CONV), [((2, 2, 5, 4), ANY), ((3, 2, 2, 2), ANY)])
    ],
    "conv2d_input_grad": [
        (
            lambda u, w: P["conv2d_input_grad"](u, w, input_size=(5, 4), **CONV),
            [((2, 3, 2, 4), ANY), ((3, 2, 2, 2), ANY)],
        )
    ],
    "conv2d_weight_grad": [
        (
            lambda x, u: P["conv2d_weight_grad"](x, u, kernel_size=(2, 2), **CONV),
            [((2, 2, 5, 4), ANY), ((2, 3, 2, 4), ANY)],
        )
    ],
    "avg_pool2d": [(lambda x: P["avg_pool2d"](x, **POOL), [((2, 2, 5, 4), ANY)])],
    "avg_pool2d_grad": [
        (lambda u: P["avg_pool2d_grad"](u, input_size=(5, 4), **POOL), [((2, 2, 3, 3), ANY)])
    ],
    "max_pool2d": [(lambda x: P["max_pool2d"](x, **POOL), [((2, 2, 5, 4), ANY)])],
    "max_pool2d_scatter": [
        (
            lambda u, x: P["max_pool2d_scatter"](u, x, **POOL),
            [((2, 2, 3, 3), ANY), ((2, 2, 5, 4), ANY)],
        )
    ],
    "max_pool2d_gather": [
        (
            lambda v, x: P["max_pool2d_gather"](v, x, **POOL),
            [((2, 2, 5, 4), ANY), ((2, 2, 5, 4), ANY)],
        )
    ],
}


def test_every_primitive_has_a_case():
    assert sorted(CASES) == sorted(PRIMITIVES)


def operands(specs: list) -> st.SearchStrategy:
    return st.tuples(*[hnp.arrays(np.float64, shape, elements=el) for shape, el in specs])


@pytest.mark.parametrize(
    "name, case",
    [(name, case) for name in sorted(CASES) for case in CASES[name]],
    ids=[f"{name}-{i}" for name in sorted(CASES) for i in range(len(CASES[name]))],
)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_gradcheck_passes_on_every_primitive(name, case, data):
    function, specs = case
    arrays = data.draw(operands(specs))
    inputs = [an.tensor(a, requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradcheckWarning)  # all-skipped at a kink is fine here
        assert an.gradcheck(function, inputs)


def seed_loss(S, Y, syn0, syn1):
    O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
    return 0.5 * ((O - Y) ** 2).sum()


def softmax_rows(x):
    e = an.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@settings(max_examples=15, deadline=None)
@given(x=tensors(shape=(3, 4), requires_grad=True), w=tensors(shape=(4, 2), requires_grad=True))
def test_gradcheck_passes_on_composite_functions(x, w):
    assert an.gradcheck(
        lambda x, w: an.tanh(x @ w) * an.sigmoid(x.sum(axis=1, keepdims=True)), [x, w]
    )
    with warnings.catch_warnings():
        # x may be drawn with every row tied at its max: then all entries are skipped (softmax is
        # smooth there, but skipping whatever crosses a kink of a recorded max is conservative).
        warnings.simplefilter("ignore", GradcheckWarning)
        assert an.gradcheck(softmax_rows, [x])  # non-scalar output
    assert an.gradcheck(lambda x, w: (an.log(1 + an.exp(x @ w)) ** 2).mean(), [x, w])


def cube_with_vjp(vjp):
    return an.Primitive("cube", lambda x: x**3, vjp)


WRONG_CUBE = cube_with_vjp(lambda g, out, x: g * 2 * x**2)  # should be 3 x^2


def test_gradcheck_fails_on_a_wrong_vjp_with_a_useful_message():
    x = an.tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    assert an.gradcheck(cube_with_vjp(lambda g, out, x: g * 3 * x**2), [x])
    with pytest.raises(GradcheckError) as info:
        an.gradcheck(lambda x: WRONG_CUBE(x), [x])
    message = str(info.value)
    # The worst element is x[2] (d/dx x^3 = 12 there, the wrong rule says 8).
    assert "gradient of x (input 0, shape (3,), float64)" in message
    assert "worst element x[2]" in message
    assert "8" in message and "12" in message and "relative error 0.333" in message
    assert "the analytic gradient (a VJP on this path) is wrong" in message
    assert "primitives on the path: cube" in message
    assert "analytic Jacobian" in message and "numeric Jacobian" in message


def test_gradcheck_names_the_input_whose_gradient_is_wrong():
    scaled = an.Primitive(
        "scaled", lambda a, b: a * b, lambda g, out, a, b: g * b, lambda g, out, a, b: g * a * 1.01
    )
    a = an.tensor([[1.0, 2.0]], requires_grad=True, name="a")
    b = an.tensor([[3.0, -1.0]], requires_grad=True)
    with pytest.raises(GradcheckError, match=r"gradient of input 1 \(shape \(1, 2\), float64\)"):
        an.gradcheck(scaled, [a, b])


def square_wrong_at(index):
    """x^2 with a VJP that is wrong (3x instead of 2x) at one element only."""

    def vjp(g, out, x):
        factor = np.full(x.shape, 2.0)
        factor[index] = 3.0
        return g * x * factor

    return an.Primitive("square", lambda x: x**2, vjp)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), row=st.integers(0, 29), col=st.integers(0, 29))
def test_large_inputs_are_checked_by_projections_and_a_bad_element_is_found(seed, row, col):
    x = an.tensor(np.random.default_rng(seed).uniform(1, 2, (30, 30)), requires_grad=True, name="w")
    result = an.gradcheck(lambda x: an.tanh(x @ x), [x])
    assert "random projections" in result.method and result.compared == 8
    with pytest.raises(GradcheckError) as info:
        an.gradcheck(lambda x: square_wrong_at((row, col))(x).sum(), [x])
    assert f"element w[{row}, {col}]" in str(info.value)


@settings(max_examples=15, deadline=None)
@given(
    x=tensors(
        shape=(3, 4), dtype=np.float32, elements=floats(-3, 3, np.float32), requires_grad=True
    ),
    w=tensors(
        shape=(4, 2), dtype=np.float32, elements=floats(-3, 3, np.float32), requires_grad=True
    ),
)
def test_a_correct_float32_function_passes_with_a_warning(x, w):
    with pytest.warns(GradcheckWarning, match="float32"):
        result = an.gradcheck(lambda x, w: an.sigmoid(x @ w) * an.tanh(w.sum()), [x, w])
    assert result.eps == 1e-3  # the step for float32


@settings(max_examples=10, deadline=None)
@given(
    x=tensors(shape=(4,), dtype=np.float32, elements=floats(0.5, 2, np.float32), requires_grad=True)
)
def test_a_wrong_formula_still_fails_in_float32(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradcheckWarning)
        with pytest.raises(GradcheckError):
            an.gradcheck(lambda x: WRONG_CUBE(x), [x])


@settings(max_examples=15, deadline=None)
@given(x=tensors(shape=(5,), elements=floats(0.5, 3), requires_grad=True))
def test_float32_rounding_inside_a_float64_function_is_not_a_failure(x):
    # f computes in float32; eps=1e-6 (from the float64 input) puts a rounding error of about
    # 6e-8 * |f| / 1e-6 ~ 10% into the plain central difference, so this passes only
    # because mismatching entries are re-estimated with larger steps and Richardson extrapolation.
    def f(x):
        return (x.astype(np.float32) ** 3).astype(np.float64) * 1000

    result = an.gradcheck(f, [x])  # raises on failure
    assert result.compared == 25 and result.skipped == 0


def test_float32_rounding_is_passed_by_refining_the_difference():
    # The same function at points where the plain difference is off (for a few x it happens to
    # land within tolerance, so the mechanism is pinned here on fixed points, not drawn ones).
    def f(x):
        return (x.astype(np.float32) ** 3).astype(np.float64) * 1000

    result = an.gradcheck(f, [an.tensor(np.linspace(0.5, 3, 5), requires_grad=True)])
    assert result.refined == 5


def test_a_mismatch_from_rounding_is_diagnosed_as_such():
    # A float32 computation differenced with a step far too small for it (eps=1e-9): the plain
    # difference is mostly rounding noise, and the message says so rather than blaming the VJP.
    x = an.tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    with pytest.raises(GradcheckError) as info:
        an.gradcheck(lambda x: (x.astype(np.float32) ** 3).astype(np.float64), [x], eps=1e-9)
    message = str(info.value)
    assert "changes with the step" in message
    assert "looks like finite-difference error (rounding or truncation)" in message


def near_kinks(shape):
    # Exactly at the kink, within eps of it (eps = 1e-6), and clearly away from it.
    values = [0.0, 1e-9, -1e-9, 3e-7, -3e-7, 0.5, -0.5, 2.0, -2.0]
    return hnp.arrays(np.float64, shape, elements=st.sampled_from(values))


@pytest.mark.parametrize("name", ["relu", "abs", "sign"])
@settings(max_examples=20, deadline=None)
@given(x=near_kinks((6,)))
def test_elements_at_a_kink_are_skipped_not_failed(name, x):
    t = an.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradcheckWarning)
        result = an.gradcheck(lambda t: P[name](t) * (t + 3), [t])
    # An element is skipped exactly when its window [x - 1e-6, x + 1e-6] reaches 0.
    assert result.skipped == int((np.abs(x) <= 1e-6).sum())


@settings(max_examples=20, deadline=None)
@given(a=near_kinks((2, 3)), b=near_kinks((2, 3)))
def test_ties_of_maximum_and_max_are_skipped_not_failed(a, b):
    ta, tb = an.tensor(a, requires_grad=True), an.tensor(b, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradcheckWarning)
        result = an.gradcheck(an.maximum, [ta, tb])
        # Moving a_i by h = 1e-6 max(1, |a_i|) changes the side of a_i - b_i when |a_i - b_i| <= h.
        gap = np.abs(a - b)
        assert result.skipped == int(
            (gap <= 1e-6 * np.maximum(1, np.abs(a))).sum()
            + (gap <= 1e-6 * np.maximum(1, np.abs(b))).sum()
        )
        result = an.gradcheck(lambda t: t.max(axis=1), [ta])
    if any((row == row.max()).sum() > 1 for row in a):
        assert result.skipped > 0


def test_without_skipping_the_kink_would_be_a_false_failure_and_the_report_counts_skips():
    x = an.tensor([0.0, 1.0, -1.0], requires_grad=True, name="x")
    result = an.gradcheck(an.relu, [x])
    assert result.skipped == 1 and result.compared == 6
    # The skip count also appears in a failure's message.
    wrong_relu = an.Primitive("wrong_relu", np.abs, lambda g, out, x: g)  # |x|, VJP of x
    with pytest.raises(GradcheckError, match=r"0 element\(s\) of x skipped"):
        an.gradcheck(wrong_relu, [x])
    with pytest.raises(GradcheckError, match=r"1 element\(s\) of x skipped"):
        an.gradcheck(lambda x: wrong_relu(x) + an.relu(x), [x])


def test_a_check_with_everything_skipped_warns():
    x = an.tensor([0.0, 0.0], requires_grad=True)
    with pytest.warns(GradcheckWarning, match="nothing was compared"):
        an.gradcheck(an.abs, [x])


@settings(max_examples=10, deadline=None)
@given(x=tensors(shape=(2, 3), requires_grad=True), w=tensors(shape=(3, 2), requires_grad=True))
def test_gradgradcheck_passes_on_smooth_functions(x, w):
    assert an.gradgradcheck(lambda x, w: an.sigmoid(x @ w) * an.tanh(x).sum(), [x, w])
    assert an.gradgradcheck(lambda x: an.exp(x) / (1 + x * x), [x])


def test_gradgradcheck_fails_when_only_the_second_derivative_is_wrong():
    # cube's VJP g * 3 * square(x) is right; square's own VJP (3x instead of 2x) is not, which
    # only the second derivative sees.
    square = an.Primitive("square", lambda x: x**2, lambda g, out, x: g * 3 * x)
    cube = cube_with_vjp(lambda g, out, x: g * 3 * square(x))
    x = an.tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    assert an.gradcheck(cube, [x])
    with pytest.raises(GradcheckError, match="square"):
        an.gradgradcheck(cube, [x])


def test_gradgradcheck_skips_the_step_of_relus_derivative():
    x = an.tensor([0.0, 1e-9, 1.0, -1.0], requires_grad=True)
    result = an.gradgradcheck(lambda x: an.relu(x) * x, [x])
    assert result.skipped == 2


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="none of the 1 inputs requires grad"):
        an.gradcheck(an.exp, [an.tensor([1.0])])
    with pytest.raises(TypeError, match="must return a Tensor"):
        an.gradcheck(lambda x: x.data, [an.tensor([1.0], requires_grad=True)])
    with pytest.raises(RuntimeError, match="called under no_grad"), an.no_grad():
        an.gradcheck(an.exp, [an.tensor([1.0], requires_grad=True)])
    with pytest.raises(ValueError, match="grad_outputs has shape"):
        an.gradgradcheck(an.exp, [an.tensor([1.0], requires_grad=True)], grad_outputs=np.ones(2))
