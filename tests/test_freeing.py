"""The backward pass frees each value that no VJP will read and nothing else holds
(engine.release_unread, from the table's `saves`): a step of the tutorial's network then
peaks no higher than the tutorial's own code, and no gradient changes. Values the user holds, or
that a kept graph (retain_graph, create_graph) still needs, are never freed."""

from __future__ import annotations

import threading
import tracemalloc
from unittest import mock

import numpy as np
import pytest

import autonet as an
from autonet import engine


def counting_releases():
    """engine.release_unread, wrapped to count the values it frees."""
    count = [0]
    release = engine.release_unread

    def counted(parent):
        before = parent._data
        release(parent)
        count[0] += parent._data is not before

    return mock.patch.object(engine, "release_unread", counted), count


def seed_problem(m=1024, n=256, p=256, k=10):
    rng = np.random.default_rng(0)
    S, Y = rng.standard_normal((m, n)), rng.random((m, k))
    return S, Y, rng.standard_normal((n, p)) * 0.05, rng.standard_normal((p, k)) * 0.05


def tutorial_step(S, Y, syn0, syn1):
    """The tutorial's step as it writes it: its sigmoid and its hand-derived gradients."""

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    H = sigmoid(S @ syn0)
    O = sigmoid(H @ syn1)
    delta_O = (O - Y) * O * (1 - O)
    return S.T @ ((delta_O @ syn1.T) * H * (1 - H)), H.T @ delta_O


def autonet_step(S, Y, syn0, syn1):
    O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
    (0.5 * ((O - Y) ** 2).sum()).backward()
    return syn0.grad.data, syn1.grad.data


def peak_of(step, *args):
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = step(*args)
        return tracemalloc.get_traced_memory()[1] - start, result
    finally:
        tracemalloc.stop()


def test_a_step_of_the_seed_network_peaks_no_higher_than_the_tutorials_code():
    S, Y, w0, w1 = seed_problem()
    hand_peak, hand = peak_of(tutorial_step, S, Y, w0, w1)
    syn0, syn1 = an.tensor(w0, requires_grad=True), an.tensor(w1, requires_grad=True)
    autonet_peak, grads = peak_of(autonet_step, an.tensor(S), an.tensor(Y), syn0, syn1)
    # S @ syn0 is freed before sigmoid's gradient is computed (which takes one temporary):
    # 3 arrays of (m, p) at the peak, as the tutorial's code (without freeing it was 5, 4 MiB
    # more); the graph also holds two small arrays of (m, k) the tutorial's code has let go
    m, k = Y.shape
    assert autonet_peak <= hand_peak + 2 * m * k * 8, (autonet_peak, hand_peak)
    for got, want in zip(grads, hand, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_an_unheld_intermediate_is_freed_and_the_gradients_are_the_same():
    rng = np.random.default_rng(1)
    S, w = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    results = []
    for threshold in (engine.RELEASE_BYTES, 0):
        x = an.tensor(w, requires_grad=True)
        patch, count = counting_releases()
        with patch, mock.patch.object(engine, "RELEASE_BYTES", threshold):
            an.tanh(an.sigmoid(S @ x) * 2.0).sum().backward()
        results.append((count[0], x.grad.data))
    (small_count, small_grad), (count, grad) = results
    assert small_count == 0  # 5 x 3 floats: below RELEASE_BYTES, never freed
    assert count == 2  # S @ x (read by neither matmul's nor sigmoid's VJP), and sigmoid * 2
    np.testing.assert_array_equal(grad, small_grad)


def test_values_the_user_holds_or_a_kept_graph_needs_are_never_freed():
    rng = np.random.default_rng(2)
    S, w = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    x = an.tensor(w, requires_grad=True)
    patch, count = counting_releases()
    with patch, mock.patch.object(engine, "RELEASE_BYTES", 0):
        z = S @ x  # held by the user
        loss = an.sigmoid(z).sum()
        loss.backward()
        assert count[0] == 0
        np.testing.assert_array_equal(z.data, S @ w)
        kept = an.sigmoid(S @ x).sum()
        kept.backward(retain_graph=True)  # the graph is kept, and with it every value
        kept.backward()
        x2 = an.tensor(w, requires_grad=True)
        an.sigmoid(S @ x2).sum().backward(create_graph=True)  # gradients that are graphs
        assert count[0] == 1  # only the second pass through `kept`, the graph then let go
    h = 1 / (1 + np.exp(-(S @ w)))
    np.testing.assert_allclose(x.grad.data, 3 * S.T @ (h * (1 - h)), rtol=1e-12)


def test_a_users_primitive_reads_its_input_whatever_made_it():
    cube = an.Primitive("cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)  # no `saves`
    rng = np.random.default_rng(3)
    S, w = rng.standard_normal((6, 5)), rng.standard_normal((5, 4))
    x = an.tensor(w, requires_grad=True)
    with mock.patch.object(engine, "RELEASE_BYTES", 0):
        cube(S @ x).sum().backward()
    np.testing.assert_allclose(x.grad.data, S.T @ (3 * (S @ w) ** 2), rtol=1e-12)


def test_threads_backpropagating_through_shared_weights_free_only_their_own_values():
    rng = np.random.default_rng(4)
    S, w = rng.standard_normal((64, 32)), rng.standard_normal((32, 16))
    x = an.tensor(w, requires_grad=True)
    errors = []

    def work():
        try:
            for _ in range(20):
                g = an.grad(lambda x: an.tanh(an.sigmoid(S @ x) * 2.0).sum())(x)
                h = 1 / (1 + np.exp(-(S @ w)))
                want = S.T @ ((1 - np.tanh(2 * h) ** 2) * 2 * h * (1 - h))
                np.testing.assert_allclose(g.data, want, rtol=1e-12)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with mock.patch.object(engine, "RELEASE_BYTES", 0):
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_freed_value_keeps_its_shape_and_dtype_and_reads_as_nan(dtype):
    data = np.ones((3, 4), dtype=dtype)
    stand_in = engine.freed(data)
    assert stand_in.shape == (3, 4) and stand_in.dtype == dtype
    assert not stand_in.flags.writeable and np.isnan(stand_in).all()
    assert stand_in.base.nbytes == np.dtype(dtype).itemsize
