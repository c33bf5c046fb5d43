"""In-place safety: changing a tensor's .data between forward and backward makes backward raise.

The backward pass reads each node's inputs and output from .data, so a value changed in between
would give wrong gradients silently. Every assignment to .data (including `w.data -= x`, which
Python runs as get, __isub__, set) is stamped; backward refuses a node recorded before the stamp.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.seed import seed_gradients


def test_update_between_forward_and_backward_raises_naming_tensor_and_op():
    w = an.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True, name="w")
    x = an.tensor([1.0, 2.0])
    loss = an.sigmoid(x @ w).sum()
    w.grad = an.tensor(np.ones((2, 2)))
    w.data -= 0.1 * w.grad.data
    expected = r"tensor 'w' \(shape \(2, 2\), dtype float64\), input 1 of matmul, was modified"
    with pytest.raises(RuntimeError, match=expected):
        loss.backward()


def test_every_kind_of_data_assignment_is_caught():
    for update in (
        lambda w: setattr(w, "data", w.data * 2),
        lambda w: setattr(w, "data", np.zeros(3)),
        lambda w: setattr(w, "data", [1.0, 2.0, 3.0]),
    ):
        w = an.tensor([1.0, 2.0, 3.0], requires_grad=True)
        loss = (w * w).sum()
        update(w)
        with pytest.raises(RuntimeError, match="input 0 of mul, was modified in place"):
            loss.backward()


@pytest.mark.parametrize("statement", ["w.data -= 1.0", "w.data *= 2.0", "w.data /= 2.0"])
def test_augmented_assignment_is_caught(statement):
    w = an.tensor([1.0, 2.0, 3.0], requires_grad=True, name="w")
    loss = (w * w).sum()
    exec(statement)
    with pytest.raises(RuntimeError, match="'w'.*modified in place"):
        loss.backward()


def test_modified_output_of_an_op_is_caught():
    # sigmoid's VJP reads its own output: changing it would change the gradient
    x = an.tensor([0.5, -1.0], requires_grad=True)
    y = an.sigmoid(x)
    y.data *= 2
    with pytest.raises(RuntimeError, match="the output of sigmoid, was modified in place"):
        y.backward(grad=np.ones(2))
    # used further on, the first node to meet it is the consumer, which names it as its input
    y = an.sigmoid(x)
    loss = y.sum()
    y.data *= 2
    with pytest.raises(RuntimeError, match="input 0 of sum, was modified in place"):
        loss.backward()


def test_functional_gradients_check_versions_too():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    loss = (w.exp() * w).sum()
    w.data += 1
    with pytest.raises(RuntimeError, match="modified in place"):
        an.gradients(loss, [w])


def test_second_backward_of_retained_graph_after_update_raises():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    with an.no_grad():
        w.data -= 0.1 * w.grad.data
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_change_before_the_forward_pass_is_fine():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    w.data *= 3
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [6.0, 12.0])


def test_change_to_a_tensor_outside_the_graph_is_fine():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    other = an.tensor([5.0, 5.0], requires_grad=True)
    loss = (w * w).sum()
    other.data -= 1
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])


def test_documented_training_loop_matches_hand_formulas_every_step():
    # the tutorial's loop: forward, backward, then update .data; gradients stay exact each step
    rng = np.random.default_rng(0)
    S = rng.normal(size=(4, 3))
    Y = rng.random((4, 1))
    syn0 = an.tensor(rng.uniform(-1, 1, (3, 4)), requires_grad=True, name="syn0")
    syn1 = an.tensor(rng.uniform(-1, 1, (4, 1)), requires_grad=True, name="syn1")
    for _ in range(20):
        O = an.sigmoid(an.sigmoid(an.tensor(S) @ syn0) @ syn1)
        (0.5 * ((O - Y) ** 2).sum()).backward()
        grad0, grad1 = seed_gradients(S, Y, syn0.data, syn1.data)
        np.testing.assert_allclose(syn0.grad.data, grad0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(syn1.grad.data, grad1, rtol=0, atol=1e-12)
        with an.no_grad():
            syn0.data -= 0.5 * syn0.grad.data
            syn1.data -= 0.5 * syn1.grad.data
        syn0.grad = syn1.grad = None


def test_item_assignment_is_not_detected_a_documented_limit():
    # w.data[...] = v writes into the array without assigning the attribute, so no stamp is made;
    # the backward pass then reads the new value (docs/errors.md, "What cannot be detected").
    w = an.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    w.data[...] = 10.0
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [20.0, 20.0])


@settings(max_examples=60, deadline=None)
@given(uses_w=st.lists(st.booleans(), min_size=1, max_size=12), data=st.data())
def test_backward_raises_exactly_when_a_node_recorded_before_the_change_reads_it(uses_w, data):
    # a chain z -> z * w (reads w) or z -> tanh(z) (does not); w changes after op number `when`
    when = data.draw(st.integers(0, len(uses_w)), label="when")
    w = an.tensor([0.5, -0.25], requires_grad=True, name="w")
    z0 = an.tensor([1.0, 2.0], requires_grad=True)
    z = z0
    for i, use in enumerate(uses_w):
        if i == when:
            w.data -= 0.01
        z = z * w if use else z.tanh()
    if when == len(uses_w):
        w.data -= 0.01
    expect_error = any(uses_w[:when])
    if expect_error:
        with pytest.raises(RuntimeError, match="'w'.*modified in place"):
            z.sum().backward()
    else:
        # every node reading w was recorded after the change: the gradient is that of a replay
        z.sum().backward()
        w_new = an.tensor(w.data, requires_grad=True)
        z_new = an.tensor([1.0, 2.0], requires_grad=True)
        replay = z_new
        for use in uses_w:
            replay = replay * w_new if use else replay.tanh()
        replay.sum().backward()
        np.testing.assert_array_equal(z0.grad.data, z_new.grad.data)


@pytest.mark.parametrize(
    "index_of",
    [lambda idx: idx, lambda idx: (idx,), lambda idx: an.tensor(idx)],
    ids=["array", "tuple of arrays", "tensor"],
)
def test_an_index_array_changed_after_the_forward_pass_does_not_move_the_gradient(index_of):
    """Found by review: idx[:] = 1 after w[idx] sent the gradient to w[1]. Indices are copied."""
    idx = np.array([0, 0, 2])
    w = an.tensor([1.0, 2.0, 3.0], requires_grad=True)
    index = index_of(idx)
    y = (w[index] * np.array([1.0, 2.0, 4.0])).sum()
    idx[:] = 1
    if isinstance(index, an.Tensor):
        index.data[:] = 1
    y.backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 0.0, 4.0])


def test_an_array_operand_changed_after_the_forward_pass_does_not_move_the_gradient():
    """Found by the fuzzer: arrays given as operands were wrapped without a copy, so zeroing one
    after the forward pass zeroed the gradient. They are copied, as Tensor() copies."""
    x = an.tensor([1.0, 2.0], requires_grad=True)
    c = np.array([3.0, 4.0])
    y = (x * c).sum() + (c * x).sum()
    c[:] = 0
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 8.0])
