"""Backward passes on several threads into the same leaves lose no gradient.

Each thread runs the forward and backward pass of a graph whose leaves all threads share, so
every pass adds its gradient to the same .grad. Every pass computes the same gradient g, bit for
bit (the same NumPy operations on the same values), and the sum of n copies of g does not depend
on the order they arrive in: it is g + g + ... + g, each addition rounding the same partial sum
s_k = k g (rounded) plus g. So the threads must end exactly where n passes on one thread end;
with integer-valued floats (x @ w) no addition rounds at all, and the sum is n g exactly. One
lost update (a read of .grad, another thread's write, then a write from the stale read) shows
as a shortfall of whole multiples of g.

The example count follows AUTONET_FUZZ_EXAMPLES (see test_fuzz.py), divided by 4; for a long run

    AUTONET_FUZZ_EXAMPLES=2000 python -m pytest -q tests/test_fuzz_threads.py
"""

import os

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import autonet as an
from tests.concurrency import on_threads
from tests.fuzz import GivenLeaves, NumpyBackend, fuzz_settings, graphs, leaves_of, run

EXAMPLES = max(int(os.environ.get("AUTONET_FUZZ_EXAMPLES", "40")) // 4, 5)
thread_settings = fuzz_settings(EXAMPLES, HealthCheck.function_scoped_fixture)
THREADS = 4


def grads_of(leaves: list[an.Tensor]) -> list[np.ndarray | None]:
    return [None if t.grad is None else t.grad.data.copy() for t in leaves]


def assert_same(got: list, want: list) -> None:
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert (g is None) == (w is None), f"input {i}"
        if w is not None:
            np.testing.assert_array_equal(g, w, err_msg=f"input {i}")


def in_range(graph) -> None:
    _, pool = run(graph, NumpyBackend())
    assume(all(np.all(np.isfinite(v)) and np.all(np.abs(v) < 1e6) for v in pool))


@thread_settings
@given(graph=graphs(max_steps=10), runs=st.integers(1, 6))
def test_threads_running_their_own_graphs_on_shared_leaves_lose_no_gradient(
    graph, runs, frequent_switches
):
    in_range(graph)

    def passes(leaves: list[an.Tensor], n: int) -> None:
        for _ in range(n):
            with np.errstate(all="ignore"):
                loss, _ = run(graph, GivenLeaves(leaves))
            loss.backward()

    sequential = leaves_of(graph)
    passes(sequential, THREADS * runs)
    concurrent = leaves_of(graph)
    on_threads(lambda _: passes(concurrent, runs), THREADS)
    assert_same(grads_of(concurrent), grads_of(sequential))


@thread_settings
@given(graph=graphs(max_steps=10), runs=st.integers(1, 6))
def test_threads_sharing_one_retained_graph_lose_no_gradient(graph, runs, frequent_switches):
    # one forward pass, then backward(retain_graph=True) on every thread, several times each
    in_range(graph)

    def passes(loss: an.Tensor, n: int) -> None:
        for _ in range(n):
            loss.backward(retain_graph=True)

    sequential = leaves_of(graph)
    with np.errstate(all="ignore"):
        loss, _ = run(graph, GivenLeaves(sequential))
    passes(loss, THREADS * runs)
    concurrent = leaves_of(graph)
    with np.errstate(all="ignore"):
        loss, _ = run(graph, GivenLeaves(concurrent))
    on_threads(lambda _: passes(loss, runs), THREADS)
    assert_same(grads_of(concurrent), grads_of(sequential))


@settings(thread_settings, max_examples=max(EXAMPLES // 2, 3))
@given(
    m=st.integers(1, 4),
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
@example(m=2, n=3, k=2, seed=0)
def test_threads_accumulate_integer_gradients_exactly(m, n, k, seed, frequent_switches):
    # (x @ w).sum() with small integers: every gradient and every partial sum is an integer
    # below 2^53, so n passes give exactly n times one pass's gradient, whatever the order.
    # Many short passes make a lost update likely if .grad is not updated atomically.
    rng = np.random.default_rng(seed)
    x = an.tensor(rng.integers(-3, 4, size=(m, n)).astype(float), requires_grad=True)
    w = an.tensor(rng.integers(-3, 4, size=(n, k)).astype(float), requires_grad=True)
    runs = 200

    def passes() -> None:
        for _ in range(runs):
            (x @ w).sum().backward()

    on_threads(lambda _: passes(), THREADS)
    total = THREADS * runs
    np.testing.assert_array_equal(x.grad.data, total * (np.ones((m, k)) @ w.data.T))
    np.testing.assert_array_equal(w.grad.data, total * (x.data.T @ np.ones((m, k))))
