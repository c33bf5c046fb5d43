"""Threads: grad mode is per thread, and models trained concurrently on separate threads end
exactly where they end when trained one after the other."""

import threading

import numpy as np
import pytest

import autonet as an
from tests.concurrency import on_threads


def test_no_grad_on_one_thread_leaves_another_recording():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def without_grad():
        with an.no_grad():
            inside.set()
            checked.wait(10)
            seen["other thread records"] = an.is_grad_enabled()
            y = an.tensor([1.0], requires_grad=True) * 2
            seen["other thread result requires grad"] = y.requires_grad

    thread = threading.Thread(target=without_grad)
    thread.start()
    inside.wait(10)
    try:
        assert an.is_grad_enabled()
        y = an.tensor([1.0], requires_grad=True) * 2
        assert y.requires_grad and y.op is not None
    finally:
        checked.set()
        thread.join()
    assert seen == {"other thread records": False, "other thread result requires grad": False}


def test_a_new_thread_starts_with_grad_enabled_even_if_its_parent_is_in_no_grad():
    seen = []
    with an.no_grad():
        thread = threading.Thread(target=lambda: seen.append(an.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def train(seed: int, steps: int = 150) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """The tutorial's network trained by gradient descent, updates under no_grad."""
    rng = np.random.default_rng(seed)
    S, Y = rng.normal(size=(8, 3)), rng.random((8, 1))
    syn0 = an.tensor(rng.uniform(-1, 1, (3, 5)), requires_grad=True)
    syn1 = an.tensor(rng.uniform(-1, 1, (5, 1)), requires_grad=True)
    losses = []
    for _ in range(steps):
        O = an.sigmoid(an.sigmoid(an.tensor(S) @ syn0) @ syn1)
        loss = 0.5 * ((O - Y) ** 2).sum()
        loss.backward()
        with an.no_grad():
            syn0.data -= 0.5 * syn0.grad.data
            syn1.data -= 0.5 * syn1.grad.data
        syn0.grad = syn1.grad = None
        losses.append(loss.item())
    return syn0.data, syn1.data, losses


def test_concurrent_training_matches_sequential(frequent_switches):
    seeds = [3, 4, 5]
    sequential = [train(seed) for seed in seeds]
    concurrent: dict[int, tuple] = {}

    def worker(i: int) -> None:
        concurrent[seeds[i]] = train(seeds[i])

    on_threads(worker, len(seeds))
    for seed, (w0, w1, losses) in zip(seeds, sequential, strict=True):
        c0, c1, c_losses = concurrent[seed]
        np.testing.assert_array_equal(c0, w0)  # bitwise: the same ops in the same order
        np.testing.assert_array_equal(c1, w1)
        assert c_losses == losses
        assert losses[-1] < losses[0]


@pytest.mark.parametrize("create_graph", [False, True])
def test_concurrent_backward_into_a_shared_leaf_loses_no_gradient(frequent_switches, create_graph):
    """Found by review: 8 threads x 500 backward passes into one w ended with 13k-18k of 32k.
    Every gradient is an integer, so the exact total is the only right answer."""
    threads, runs = 8, 100 if create_graph else 500
    x = an.tensor(np.ones((4, 3)))
    w = an.tensor(np.zeros((3, 2)), requires_grad=True)

    def work(_: int) -> None:
        for _ in range(runs):
            (x @ w).sum().backward(create_graph=create_graph)

    on_threads(work, threads)
    np.testing.assert_array_equal(w.grad.data, np.full((3, 2), 4.0 * threads * runs))
