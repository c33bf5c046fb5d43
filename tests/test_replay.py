"""Replay computes what eager mode computes, bit for bit: the loss and every parameter's .grad.

Replay re-runs the recorded primitives' forwards and VJPs on the same arrays in the same order as
eager's forward and backward pass, so results are compared with assert_array_equal (tolerance 0),
not approximately. Each test builds the same step twice, on separate copies of the parameters,
and runs it eagerly and replayed side by side for a few SGD steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.seed import seed_gradients

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


def assert_same(eager, replayed):
    for (loss_e, grads_e), (loss_r, grads_r) in zip(eager, replayed, strict=True):
        assert type(loss_r) is np.ndarray and loss_r.dtype == loss_e.dtype  # as record() makes
        np.testing.assert_array_equal(loss_r, loss_e)
        for g_e, g_r in zip(grads_e, grads_r, strict=True):
            assert g_r.dtype == g_e.dtype and g_r.shape == g_e.shape
            np.testing.assert_array_equal(g_r, g_e)


@settings(max_examples=20, deadline=None)
@given(
    m=st.integers(1, 6),
    n=st.integers(1, 5),
    p=st.integers(1, 5),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_replay_of_the_tutorial_step_equals_eager_bit_for_bit(m, n, p, k, seed, dtype):
    rng = np.random.default_rng(seed)
    S, Y = rng.normal(size=(m, n)).astype(dtype), rng.random((m, k)).astype(dtype)
    weights = [rng.uniform(-1, 1, (n, p)).astype(dtype), rng.uniform(-1, 1, (p, k)).astype(dtype)]
    eager, replayed, step = run_both(tutorial_loss, weights, (an.tensor(S), an.tensor(Y)))
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
    eager, replayed, _ = run_both(make_loss, weights, (x,), steps=4)
    assert_same(eager, replayed)


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
    # no argument or parameter, so the code holds them as constants; the pow rule reads O - Y.
    rng = np.random.default_rng(3)
    syn0 = an.tensor(rng.uniform(-1, 1, (3, 4)), requires_grad=True)
    syn1 = an.tensor(rng.uniform(-1, 1, (4, 1)), requires_grad=True)
    step = an.replay(tutorial_loss(syn0, syn1))
    step(rng.normal(size=(4, 3)), rng.random((4, 1)))
    source = step.source
    assert "# mul: grad" not in source and "# sum: grad" not in source
    assert "# pow: grad of input 0" in source and "# sigmoid: grad of input 0" in source


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
    shift.data = np.array([0.0, 0.0])  # replaced after recording: the recording keeps the old
    assert step(x).item() == 33.0
    assert step(np.array([2.0, 0.0])).item() == 22.0  # arguments are read at every call
