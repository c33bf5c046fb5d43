"""Every .grad owns its memory: no two leaves share a gradient buffer, no .grad is a view of
another array, and the caller's seed is never kept. Scaling one .grad in place (gradient
clipping) then changes that gradient alone. Assigning .grad checks shape and dtype."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an


def assert_owned(*arrays):
    for a, b in itertools.combinations(arrays, 2):
        assert not np.shares_memory(a, b)


GRAPHS = {
    # found by review: add hands the same array to both inputs
    "add": lambda w, b: (w + b).sum(),
    "sub": lambda w, b: (w - b).sum(),
    # reshape and broadcast hand views of the incoming gradient
    "reshape": lambda w, b: (w.reshape(6) + b.reshape(6)).sum(),
    "broadcast": lambda w, b: (w + b[0]).sum(),
    "getitem": lambda w, b: (w[0] + b[1]).sum(),
    "fan-out": lambda w, b: (w + w + b).sum(),
}


@pytest.mark.parametrize("graph", GRAPHS.values(), ids=GRAPHS.keys())
def test_no_two_grads_share_memory(graph):
    w = an.tensor(np.ones((2, 3)), requires_grad=True)
    b = an.tensor(np.ones((2, 3)), requires_grad=True)
    graph(w, b).backward()
    assert_owned(w.grad.data, b.grad.data)
    before = b.grad.data.copy()
    w.grad.data *= 0.5  # clipping one gradient in place leaves the other alone
    np.testing.assert_array_equal(b.grad.data, before)


GRAPHS_WITH_PRODUCTS = GRAPHS | {
    # the replayed code hands a gradient it allocated to .grad without a copy (owned=True)
    "matmul": lambda w, b: (w @ b.T).sum(),
    "products": lambda w, b: (w * b * 2.0).sum(),
}


@pytest.mark.parametrize("graph", GRAPHS_WITH_PRODUCTS.values(), ids=GRAPHS_WITH_PRODUCTS.keys())
def test_replayed_grads_own_their_memory_and_equal_eager(graph):
    w = an.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = an.tensor(np.ones((2, 3)), requires_grad=True)
    graph(w, b).backward()
    eager = [w.grad.data.copy(), b.grad.data.copy()]
    step = an.replay(graph)
    for _ in range(3):  # records, then replays
        w.grad = b.grad = None
        step(w, b)
        assert_owned(w.grad.data, b.grad.data, w.data, b.data)
        np.testing.assert_array_equal(w.grad.data, eager[0])
        np.testing.assert_array_equal(b.grad.data, eager[1])
    before = b.grad.data.copy()
    w.grad.data *= 0.5
    np.testing.assert_array_equal(b.grad.data, before)


def test_replay_hands_over_only_the_gradients_it_allocated():
    w = an.tensor(np.ones((2, 3)), requires_grad=True)
    b = an.tensor(np.ones((2, 3)), requires_grad=True)
    step = an.replay(lambda w, b: (w @ b.T).sum() + (w + b).sum())
    step(w, b)
    handed = step.source.count("owned=True")
    assert handed == 2  # each parameter's sum of two gradients is a new array
    shared = an.replay(lambda w, b: (w + b).sum())  # one constant array for both: copied
    shared(w, b)
    assert "owned=True" not in shared.source


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), create_graph=st.booleans())
def test_the_callers_seed_is_never_kept(seed, create_graph):
    rng = np.random.default_rng(seed)
    grad = rng.normal(size=3)
    kept = grad.copy()
    x = an.tensor(rng.normal(size=3), requires_grad=True)
    y = an.tensor(rng.normal(size=3), requires_grad=True)
    x.backward(grad=grad)  # a leaf as the root: its .grad was the caller's array
    (x + y).backward(grad=grad, create_graph=create_graph)
    assert_owned(grad, x.grad.data, y.grad.data)
    x.grad.data[...] = 0
    y.grad.data[...] = 0
    np.testing.assert_array_equal(grad, kept)


def test_create_graph_grads_are_distinct_tensors_with_their_own_memory():
    w = an.tensor(np.ones(3), requires_grad=True)
    b = an.tensor(np.ones(3), requires_grad=True)
    (w * w + b).sum().backward(create_graph=True)
    (w + b).sum().backward(create_graph=True)
    assert w.grad is not b.grad
    assert_owned(w.grad.data, b.grad.data)
    gw, gb = an.gradients((w + b).sum(), [w, b], create_graph=True)
    assert gw is not gb
    assert_owned(gw.data, gb.data)


def test_retained_grads_own_their_memory():
    w = an.tensor(np.ones(3), requires_grad=True)
    h = (w * 2.0).retain_grad()
    (h + w).sum().backward()
    assert_owned(h.grad.data, w.grad.data)


def test_assigning_grad_checks_shape_and_dtype_and_copies_arrays():
    x = an.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(3, 1\) and dtype float64, but the tensor"):
        x.grad = np.ones((3, 1))  # found by review: later accumulation made it (3, 3)
    with pytest.raises(ValueError, match="dtype float32"):
        x.grad = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="assign a Tensor, an ndarray or None, got list"):
        x.grad = [1.0, 2.0, 3.0]
    mine = np.ones(3)
    x.grad = mine  # found by review: an ndarray failed later with AttributeError: _data
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(mine, [1.0, 1.0, 1.0])
    x.grad = None
    assert x.grad is None


def test_a_gradient_only_the_backward_pass_holds_becomes_grad_without_a_copy():
    # the VJP's result is a new array nothing else holds: the engine hands it over (as replay
    # does with owned=True); one that something still holds is copied
    made, kept = [], []

    def vjp(g, out, x):
        grad = g * 3.0
        made.append(id(grad))
        return grad

    def keeping_vjp(g, out, x):
        grad = g * 3.0
        kept.append(grad)
        return grad

    for rule, log in ((vjp, made), (keeping_vjp, kept)):
        triple = an.Primitive("triple", lambda x: 3.0 * x, rule)
        x = an.tensor(np.ones((2, 3)), requires_grad=True)
        triple(x).sum().backward()
        np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 3.0))
        if log is made:
            assert id(x.grad.data) == made[0]
        else:
            assert not np.shares_memory(x.grad.data, kept[0])
            x.grad.data[...] = 0  # the VJP's own array is left alone
            np.testing.assert_array_equal(kept[0], np.full((2, 3), 3.0))


def test_a_read_only_gradient_is_copied_so_grad_stays_writable():
    def vjp(g, out, x):
        grad = g * 3.0
        grad.flags.writeable = False  # a user's rule may hand back a read-only array
        return grad

    triple = an.Primitive("triple", lambda x: 3.0 * x, vjp)
    x = an.tensor(np.ones(3), requires_grad=True)
    triple(x).sum().backward()
    x.grad.data *= 0.5  # clipping in place
    np.testing.assert_array_equal(x.grad.data, np.full(3, 1.5))
