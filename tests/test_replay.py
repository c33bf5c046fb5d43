"""Replay computes what eager mode computes, bit for bit: the loss and every parameter's .grad.

Replay's code makes the NumPy calls that eager's forward and backward pass make, on the same
arrays in the same order, so results are compared with assert_array_equal (tolerance 0), not
approximately. Each test builds the same step twice, on separate copies of the parameters, and
runs it eagerly and replayed side by side for a few SGD steps or on a few different arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.seed import seed_gradients
from tests.strategies import seed_problems

LR = 0.5


def tutorial_loss(syn0: an.Tensor, syn1: an.Tensor) -> Callable[[an.Tensor, an.Tensor], an.Tensor]:
    """The tutorial's network: L = 1/2 sum (sigmoid(sigmoid(S syn0) syn1) - Y)^2."""

    def loss_fn(S: an.Tensor, Y: an.Tensor) -> an.Tensor:
        O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
        return 0.5 * ((O - Y) ** 2).sum()

    return loss_fn


def run_both(make_loss, weights, data, steps=3):
    """Eager and replayed runs of `steps` SGD steps from the same weights; returns both histories
    [(loss, [grad of each parameter])] and the replay object."""
    histories = []
    for replayed in (False, True):
        params = [an.tensor(w.copy(), requires_grad=True) for w in weights]
        loss_fn = make_loss(*params)
        step = an.replay(loss_fn)
        history = []
        for _ in range(steps):
            for p in params:
                p.grad = None
            if replayed:
                loss = step(*data)
            else:
                loss = loss_fn(*data)
                loss.backward()
            history.append((loss.data, [p.grad.data.copy() for p in params]))
            for p in params:
                p.data = p.data - LR * p.grad.data
        histories.append(history)
    return histories[0], histories[1], step


def tutorial_source(seed: int, m: int = 4, n: int = 3, p: int = 4, k: int = 1) -> str:
    """The code that replay records for the tutorial's step at sizes (m, n, p, k)."""
    rng = np.random.default_rng(seed)
    syn0 = an.tensor(rng.uniform(-1, 1, (n, p)), requires_grad=True)
    syn1 = an.tensor(rng.uniform(-1, 1, (p, k)), requires_grad=True)
    step = an.replay(tutorial_loss(syn0, syn1))
    step(rng.normal(size=(m, n)), rng.random((m, k)))
    return step.source


def assert_same(eager, replayed):
    for (loss_e, grads_e), (loss_r, grads_r) in zip(eager, replayed, strict=True):
        assert type(loss_r) is np.ndarray and loss_r.dtype == loss_e.dtype  # as record() makes
        np.testing.assert_array_equal(loss_r, loss_e)
        for g_e, g_r in zip(grads_e, grads_r, strict=True):
            assert g_r.dtype == g_e.dtype and g_r.shape == g_e.shape
            np.testing.assert_array_equal(g_r, g_e)


@settings(max_examples=20, deadline=None)
@given(problem=seed_problems(dtypes=(np.float64, np.float32)))
def test_replay_of_the_tutorial_step_equals_eager_bit_for_bit(problem):
    S, Y, w0, w1, _ = problem
    eager, replayed, step = run_both(tutorial_loss, [w0, w1], (an.tensor(S), an.tensor(Y)))
    assert_same(eager, replayed)
    assert len(step.recordings) == 1  # recorded once, replayed for the later steps


def test_replay_gradients_match_the_tutorial_formulas():
    rng = np.random.default_rng(1)
    S, Y = rng.normal(size=(4, 3)), rng.random((4, 1))
    w0, w1 = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 1))
    syn0, syn1 = an.tensor(w0, requires_grad=True), an.tensor(w1, requires_grad=True)
    step = an.replay(tutorial_loss(syn0, syn1))
    step(S, Y)
    syn0.grad = syn1.grad = None
    step(S, Y)  # the replayed call, not the recording one
    grad0, grad1 = seed_gradients(S, Y, w0, w1)
    # Same formulas, different association of the products: float64 rounding only.
    np.testing.assert_allclose(syn0.grad.data, grad0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(syn1.grad.data, grad1, rtol=0, atol=1e-12)


# Steps that exercise the rest of the engine: fan-out (gradient accumulation), broadcasting
# (unbroadcast), a variadic primitive, dtype casts, reductions over axes, indexing, numbers.
def fan_out_and_broadcast(w, b):
    def loss_fn(x):
        h = an.tanh(x @ w + b)  # b (1, 3) broadcast over the batch
        return (h * h).mean() + (h.exp() * 0.5).sum() - an.maximum(h, 0.1).sum(axis=0).max()

    return loss_fn


def shapes_and_indexing(w, b):
    def loss_fn(x):
        z = an.concatenate([x @ w, an.relu(x) * b], axis=1)  # (m, 3) and (m, 2)
        z = z.reshape(-1).reshape(z.shape).T
        picked = z[1:4, ::2] + z[np.array([0, 0, 2])].sum(axis=1, keepdims=True)
        return (picked.astype(np.float32) ** 2).sum() / 7.0 + an.sqrt(b * b + 1.0).sum()

    return loss_fn


def closed_over_constant(w, b):
    shift = an.tensor(np.linspace(-1, 1, 3))  # neither argument nor parameter: a constant

    def loss_fn(x):
        return an.log(an.sigmoid(x @ w - shift) + 1e-3).sum() * (b * b).sum()

    return loss_fn


@pytest.mark.parametrize(
    "make_loss", [fan_out_and_broadcast, shapes_and_indexing, closed_over_constant]
)
def test_replay_equals_eager_bit_for_bit_through_the_engine(make_loss):
    rng = np.random.default_rng(7)
    b_shape = (1, 3) if make_loss is fan_out_and_broadcast else (2,)
    weights = [rng.normal(size=(2, 3)), rng.normal(size=b_shape)]
    x = an.tensor(rng.normal(size=(5, 2)))
    eager, replayed, step = run_both(make_loss, weights, (x,), steps=4)
    assert_same(eager, replayed)
    assert "_RULE_" not in step.source  # every rule traced down to NumPy operations


def test_replay_records_again_when_argument_shapes_change():
    rng = np.random.default_rng(2)
    w0, w1 = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 1))
    syn0, syn1 = an.tensor(w0, requires_grad=True), an.tensor(w1, requires_grad=True)
    loss_fn = tutorial_loss(syn0, syn1)
    step = an.replay(loss_fn)
    for m in (4, 6, 4, 6, 2):
        S, Y = rng.normal(size=(m, 3)), rng.random((m, 1))
        syn0.grad = syn1.grad = None
        loss = step(S, Y)
        replayed = (loss.data, syn0.grad.data, syn1.grad.data)
        syn0.grad = syn1.grad = None
        eager_loss = loss_fn(an.tensor(S), an.tensor(Y))
        eager_loss.backward()
        for r, e in zip(replayed, (eager_loss.data, syn0.grad.data, syn1.grad.data), strict=True):
            np.testing.assert_array_equal(r, e)
    assert len(step.recordings) == 3  # one per batch size
    step(rng.normal(size=(2, 3)).astype(np.float32), rng.random((2, 1)).astype(np.float32))
    assert len(step.recordings) == 4  # a new dtype records again


def test_replay_reads_parameters_afresh_and_records_again_when_their_shape_changes():
    w = an.tensor([1.0], requires_grad=True)  # broadcast against x: its gradient is summed
    step = an.replay(lambda x: ((w * x) ** 2).sum())
    x = np.array([3.0, 3.0])
    step(x)
    np.testing.assert_array_equal(w.grad.data, [36.0])  # d/dw sum_i (w x_i)^2 = 2 w sum x_i^2
    w.grad, w.data = None, np.array([0.5])  # a new array, as an optimiser may assign
    step(x)
    np.testing.assert_array_equal(w.grad.data, [18.0])
    w.grad, w.data = None, np.array([1.0, 2.0])  # same arguments, parameter reshaped
    loss = step(x)
    assert loss.item() == 45.0 and len(step.recordings) == 1  # same key, recorded again
    np.testing.assert_array_equal(w.grad.data, [18.0, 36.0])


def test_replay_accumulates_into_grad_as_backward_does():
    w = an.tensor([1.0, -2.0], requires_grad=True)
    step = an.replay(lambda x: (w * x).sum())
    step(np.array([1.0, 1.0]))
    step(np.array([2.0, 3.0]))  # no zeroing in between: gradients add up
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])


def test_arguments_that_require_grad_receive_gradients():
    step = an.replay(lambda a, b: (a * b).sum())
    a, b = an.tensor([1.0, 2.0], requires_grad=True), an.tensor([3.0, 5.0])
    step(a, b)
    np.testing.assert_array_equal(a.grad.data, [3.0, 5.0])
    assert b.grad is None
    a2 = an.tensor([7.0, 7.0], requires_grad=True)  # another tensor, same signature: replayed
    step(a2, an.tensor([1.0, -1.0]))
    np.testing.assert_array_equal(a2.grad.data, [1.0, -1.0])
    assert len(step.recordings) == 1


def test_gradients_of_consecutive_calls_do_not_share_memory():
    # d(p + 0)/dp is the seed gradient itself; each call must hand out an array of its own.
    p = an.tensor(1.5, requires_grad=True)
    step = an.replay(lambda: p + 0.0)
    step()
    first = p.grad
    p.grad = None
    step()
    first.data[...] = 100.0
    assert p.grad.item() == 1.0


def test_replay_source_lists_the_numpy_calls():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    step = an.replay(lambda x: an.exp(w * x).sum())
    with pytest.raises(RuntimeError, match="nothing recorded yet"):
        _ = step.source
    step(np.array([0.5, 0.25]))
    source = step.source
    for name in ("# mul", "# exp", "# sum", "accumulate_grad"):
        assert name in source


def test_replay_rejects_what_backward_rejects():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="one-element Tensor"):
        an.replay(lambda: w * 2.0)()
    with pytest.raises(RuntimeError, match="does not depend on any tensor that requires grad"):
        an.replay(lambda x: (x * 2.0).sum())(np.array([1.0]))
    with an.no_grad(), pytest.raises(RuntimeError, match="no_grad"):
        an.replay(lambda: (w * 2.0).sum())()


def test_gradients_that_depend_only_on_constants_are_computed_once():
    # L = 0.5 * sum((O - Y)^2): dL/d(sum) = 0.5 and its broadcast back over (O - Y)^2 depend on
    # no argument or parameter, so the code holds them as constants; the square's rule,
    # 0.5 * 2 * (O - Y), is (O - Y) times constant ones: (O - Y) itself, no line.
    source = tutorial_source(3)
    assert "# mul: grad" not in source and "# sum: grad" not in source
    assert "# pow_scalar: grad" not in source and "# sigmoid: grad of input 0" in source
    o_minus_y = re.search(r"(v\d+) = SUBTRACT\(", source).group(1)
    assert re.search(rf"= MULTIPLY\({o_minus_y}, g\d+, out={o_minus_y}\)", source)


@pytest.mark.parametrize(
    ("factor", "shape", "dtype", "elided"),
    [
        (1.0, (), np.float64, False),  # 0-d operands make a NumPy scalar: left as it is
        (1.0, (3, 4), np.float64, True),
        (np.ones((3, 4)), (3, 4), np.float64, True),
        (np.ones((3, 4)), (3, 1), np.float64, False),  # the product broadcasts x up
        (np.ones((), np.float64), (3, 4), np.float32, False),  # and promotes float32
        (np.float32(1.0), (3, 4), np.float32, True),
        (np.array([1.0, 2.0, 1.0, 1.0]), (3, 4), np.float64, False),
    ],
)
def test_a_product_with_constant_ones_is_its_other_operand(factor, shape, dtype, elided):
    w = an.tensor(np.full(shape, 0.5, dtype=dtype), requires_grad=True)

    def loss(x):
        return (an.sin(w + x) * factor).sum()

    step = an.replay(loss)
    x = np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(dtype)
    for scale in (1.0, 2.0):
        w.grad = None
        got = step(x * scale).data
        got_grad = w.grad.data
        w.grad = None
        want = loss(an.tensor(x * scale))
        want.backward()
        assert got.dtype == want.data.dtype and got == want.data
        np.testing.assert_array_equal(got_grad, w.grad.data)
    forward = step.source[: step.source.index("grad of input")]
    assert (re.search(r"# mul$", forward, re.MULTILINE) is None) == elided, step.source


def test_rules_that_read_varying_values_are_not_folded():
    # relu's rule g * [x > 0] gets a constant g here; the mask still changes with x each call.
    w = an.tensor([1.0, -1.0, 2.0], requires_grad=True)
    step = an.replay(lambda x: an.relu(w * x).sum())
    for x in ([1.0, 1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, -1.0, -1.0]):
        w.grad = None
        step(np.array(x))
        np.testing.assert_array_equal(w.grad.data, np.array(x) * (w.data * np.array(x) > 0))
    assert "# relu: grad of input 0" in step.source


def test_tensors_neither_argument_nor_parameter_are_constants_of_the_recording():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    shift = an.tensor([10.0, 20.0])
    step = an.replay(lambda x: ((w + shift) * x).sum())
    x = np.array([1.0, 1.0])
    assert step(x).item() == 33.0
    assert step(np.array([2.0, 0.0])).item() == 22.0  # arguments are read at every call
    assert step.recorded == 1  # the constant is part of the recording
    shift.data = np.array([0.0, 0.0])  # assigned after recording: recorded again, as eager reads
    assert step(x).item() == 3.0 and step.recorded == 2


# Steps whose gradients depend on comparisons of the arguments' values (relu's x > 0, abs's
# sign, maximum's ties, max's maxima, sign), on indexing, joins, broadcasting and dtypes. Each is
# replayed on arguments with other values at every call: a comparison the recording folded into
# a constant would give the gradient of the first call's pattern.
KINKED_STEPS = {
    "relu": lambda w: lambda x: (an.relu(x * w) * x).sum(),
    "abs": lambda w: lambda x: (an.abs(x - w) * w).sum(),
    "maximum": lambda w: lambda x: (an.maximum(x, w) * w).sum() + an.maximum(x * w, 0.0).sum(),
    "max": lambda w: lambda x: (x * w).max(axis=0).sum() + (x - w).max(),
    "sign": lambda w: lambda x: (an.sign(x) * w * x).sum() + (an.sign(w) * x).sum(),
    "getitem": lambda w: (
        lambda x: (
            (x[1:, ::2] * w[0, ::2]).sum()
            + (x[np.array([0, 0, 2])] * w).sum()
            + (x[np.array([True, False, True])] * w[1:]).sum()
        )
    ),
    "concatenate": lambda w: lambda x: (an.relu(an.concatenate([x, x * w, w], axis=0)) ** 2).sum(),
    "broadcasting": lambda w: (
        lambda x: (an.tanh(x.reshape(3, 1, 4) * w + w[0]).sum(axis=(0, 2)) * w[:, 0]).sum()
    ),
}


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(sorted(KINKED_STEPS)),
    seed=st.integers(0, 2**32 - 1),
    dtypes=st.sampled_from(
        [
            (np.float64, np.float64),
            (np.float32, np.float32),
            (np.float32, np.float64),
            (np.float64, np.float32),
        ]
    ),
)
def test_replay_equals_eager_bit_for_bit_on_changing_arguments(name, seed, dtypes):
    rng = np.random.default_rng(seed)
    x_dtype, w_dtype = dtypes

    # few distinct values, so that zeros, ties and sign changes are common
    def values(shape, dtype):
        return rng.integers(-2, 3, size=shape).astype(dtype) / 2

    w0 = values((3, 4), w_dtype)
    ws = [an.tensor(w0.copy(), requires_grad=True) for _ in range(2)]
    eager_fn, replay_fn = (KINKED_STEPS[name](w) for w in ws)
    step = an.replay(replay_fn)
    for _ in range(4):
        x = values((3, 4), x_dtype)
        for w in ws:
            w.grad = None
        eager_loss = eager_fn(an.tensor(x))
        eager_loss.backward()
        loss = step(an.tensor(x))
        assert loss.dtype == eager_loss.dtype
        np.testing.assert_array_equal(loss.data, eager_loss.data)
        assert ws[1].grad.dtype == ws[0].grad.dtype == w_dtype
        np.testing.assert_array_equal(ws[1].grad.data, ws[0].grad.data)
    assert len(step.recordings) == 1
    assert "_RULE_" not in step.source  # every rule traced down to NumPy operations


def test_the_tutorial_step_is_traced_down_to_numpy_operations():
    # No rule of the table is called as a function: the code is the NumPy operations they make,
    # as the hand-written step is. Sigmoid's forward is one call (scipy's expit, in a function
    # that branches on values for its subnormal tail, so the tracer calls it whole).
    source = tutorial_source(4)
    assert "_RULE_" not in source and source.count("SIGMOID(") == 2
    assert "MULTIPLY(" in source and ".swapaxes(-1, -2)" in source
    assert "accumulate_grad" in source


def run_user_primitive_step(primitive):
    """Eager and replayed loss and gradient of a step through `primitive`, on a few arguments
    with other values; returns the replay."""
    rng = np.random.default_rng(5)
    w0 = rng.normal(size=(2, 3))
    ws = [an.tensor(w0.copy(), requires_grad=True) for _ in range(2)]
    eager_fn, replay_fn = ((lambda x, w=w: (primitive(x * w) * w).sum()) for w in ws)
    step = an.replay(replay_fn)
    for _ in range(3):
        x = rng.normal(size=(2, 3))
        for w in ws:
            w.grad = None
        eager_loss = eager_fn(an.tensor(x))
        eager_loss.backward()
        loss = step(an.tensor(x))
        np.testing.assert_array_equal(loss.data, eager_loss.data)
        np.testing.assert_array_equal(ws[1].grad.data, ws[0].grad.data)
    return step


def test_a_user_primitive_is_traced_like_the_table():
    cube = an.Primitive("cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
    sine = an.Primitive("sine", np.sin, lambda g, out, x: g * np.cos(x))  # NumPy ufuncs trace too
    for primitive in (cube, sine):
        source = run_user_primitive_step(primitive).source
        assert "_RULE_" not in source and f"# {primitive.name}: grad of input 0" in source


def test_rules_and_forwards_the_tracer_cannot_follow_are_called_as_functions():
    # A rule that branches on its operands' values, one that computes differently on arrays
    # and on anything else, and a forward that converts its input to an array: each is called
    # on the arrays at every call, and the step still equals eager bit for bit.
    def branching(g, out, x):
        return g * (x > 0) if float(abs(x).max()) < 100 else g

    def type_dependent(g, out, x):
        return g * (2.0 if isinstance(x, np.ndarray) else 3.0)

    cases = {
        "branching": an.Primitive("branching", lambda x: np.maximum(x, 0), branching),
        "typed": an.Primitive("typed", lambda x: 2.0 * x, type_dependent),
        "converting": an.Primitive(
            "converting", lambda x: np.tanh(np.asarray(x)), lambda g, out, x: g * (1 - out * out)
        ),
    }
    for name, primitive in cases.items():
        source = run_user_primitive_step(primitive).source
        if name == "converting":
            assert "CONVERTING(" in source and "_RULE_" not in source
        else:
            assert f"{name.upper()}_RULE_0(" in source


def test_recording_leaves_the_users_graph_alone():
    # A tensor computed outside the step (a node of the user's graph) used inside it: replay
    # runs its backward pass on a copy, so the user's graph can still be differentiated.
    w = an.tensor([1.0, 2.0], requires_grad=True)
    h = w * 3.0
    step = an.replay(lambda x: (h * x).sum())
    step(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0])
    assert h.parents  # not freed by the recording's backward pass
    h.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [6.0, 6.0])


def test_large_arrays_are_deleted_after_their_last_use():
    # 256 x 256 float64 values take 512 KiB: each is dropped once used, not kept to the end
    rng = np.random.default_rng(6)
    w = an.tensor(rng.normal(size=(256, 256)), requires_grad=True)
    step = an.replay(lambda x: an.tanh(an.tanh(x @ w) @ w).sum())
    step(rng.normal(size=(256, 256)))
    assert "del " in step.source
    v = an.tensor(1.5, requires_grad=True)
    small = an.replay(lambda x: an.tanh(x * v).sum())
    small(np.ones(3))
    assert "del " not in small.source


def test_a_recording_checks_its_arguments():
    # The same shapes with requires_grad changed, a constant (integer) argument with other
    # values, a Python number: each is another recording, used again when it comes back.
    w = an.tensor([1.0, -1.0], requires_grad=True)
    step = an.replay(lambda x, index, scale: (w * x[index] * scale).sum())
    x = an.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    calls = [(x, np.array([0]), 2.0), (x, np.array([1]), 2.0), (x, np.array([1]), 3.0)]
    for _ in range(2):
        for args in calls:
            w.grad = x.grad = None
            loss = step(*args)
            row = args[0].data[args[1][0]]
            assert loss.item() == ((w.data * row).sum() * args[2])
            np.testing.assert_array_equal(w.grad.data, row * args[2])
    assert len(step.recordings) == 3
    x.requires_grad, x.grad = False, None
    step(x, np.array([0]), 2.0)
    assert x.grad is None and len(step.recordings) == 4


def test_a_constant_argument_changed_in_place_is_recorded_again():
    w = an.tensor([1.0, 10.0, 100.0], requires_grad=True)
    step = an.replay(lambda index: w[index].sum())
    index = np.array([0, 1])
    assert step(index).item() == 11.0
    index[1] = 2  # the same array, other values: not the recording's constant
    assert step(index).item() == 101.0
    assert step(np.array([0, 1])).item() == 11.0
    assert len(step.recordings) == 2
