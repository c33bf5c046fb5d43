"""Random graphs: autograd agrees with float64 finite differences and with PyTorch.

The strategy (tests/fuzz.py) composes up to 30 random operations, with broadcasting, reductions,
indexing, reshapes, joins, matmul and reuse of intermediate values. Checked on each graph: the
forward values against raw NumPy; the gradients against central differences and against PyTorch;
dtypes when inputs mix float32 and float64; Hessian-vector products (create_graph=True). The
example count is modest in the normal suite; for a long run set AUTONET_FUZZ_EXAMPLES, e.g.

    AUTONET_FUZZ_EXAMPLES=20000 python -m pytest -q tests/test_fuzz.py
"""

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import autonet as an
from tests.fuzz import AutonetBackend, Graph, NumpyBackend, TorchBackend, graphs, run

EXAMPLES = int(os.environ.get("AUTONET_FUZZ_EXAMPLES", "40"))
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Graphs are big draws and some are rejected (values out of range); both are expected
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

H = 1e-6  # central-difference step: truncation error O(H^2), rounding error O(eps / H) = 2e-10
LIMIT = 1e6  # graphs with a larger intermediate value are rejected (exp of exp of ... overflows)


def oracle(graph: Graph) -> tuple[float, list[np.ndarray], float]:
    """(loss, pool, scale) from raw NumPy, rejecting graphs that leave the well-conditioned range;
    scale = sum |w * v| over the loss terms, the size of the numbers the loss adds up."""
    numpy_run = NumpyBackend()
    loss, pool = run(graph, numpy_run)
    assume(all(np.all(np.isfinite(v)) and np.all(np.abs(v) < LIMIT) for v in pool))
    scale = float(sum(np.sum(np.abs(w * pool[i])) for i, w in graph.weights.items()))
    return loss, pool, scale


def autonet_gradients(graph: Graph) -> tuple[float, list, list[np.ndarray | None]]:
    """(loss, pool, gradient of each input): None for an input that does not require grad,
    zeros for one the loss does not reach."""
    loss, pool = run(graph, AutonetBackend())
    loss.backward()
    grads: list[np.ndarray | None] = []
    for leaf in pool[: len(graph.inputs)]:
        if not leaf.requires_grad:
            grads.append(None)
        else:
            grads.append(np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.data)
    return loss.item(), pool, grads


def finite_differences(graph: Graph) -> list[np.ndarray | None] | None:
    """dL/d(input) by central differences in float64, or None if a perturbed run falls on the
    other side of a kink (relu, abs, maximum, max) than the unperturbed one: there the
    derivative the two sides average is not the one autograd computes."""
    base = NumpyBackend()
    run(graph, base)
    if base.ties:
        return None
    grads: list[np.ndarray | None] = []
    for i, (a, requires_grad) in enumerate(zip(graph.inputs, graph.requires_grad, strict=True)):
        if not requires_grad:
            grads.append(None)
            continue
        grad = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            losses = []
            for sign in (1, -1):
                moved = a.copy()
                moved[j] += sign * H
                inputs = graph.inputs[:i] + [moved] + graph.inputs[i + 1 :]
                perturbed = NumpyBackend()
                losses.append(run(graph, perturbed, inputs)[0])
                if perturbed.ties or any(
                    not np.array_equal(p, q)
                    for p, q in zip(perturbed.kinks, base.kinks, strict=True)
                ):
                    return None
            grad[j] = (losses[0] - losses[1]) / (2 * H)
        grads.append(grad)
    return grads


@fuzz_settings
@given(graph=graphs())
def test_random_graph_forward_matches_numpy(graph):
    expected_loss, expected_pool, scale = oracle(graph)
    loss, pool = run(graph, AutonetBackend())
    # the same float64 ops in the same order, except sigmoid (autonet's overflow-free form):
    # agreement to a few ulps of the largest value, however the graph amplifies them
    for got, expected in zip(pool, expected_pool, strict=True):
        np.testing.assert_allclose(
            got.data if hasattr(got, "data") else got,
            expected,
            rtol=1e-12,
            atol=1e-12 * (1 + scale),
        )
    np.testing.assert_allclose(loss.item(), expected_loss, rtol=1e-12, atol=1e-12 * (1 + scale))


@fuzz_settings
@given(graph=graphs())
def test_random_graph_gradients_match_finite_differences(graph):
    _, _, scale = oracle(graph)
    _, _, grads = autonet_gradients(graph)
    expected = finite_differences(graph)
    event("compared" if expected is not None else "skipped: a kink within the FD step")
    if expected is None:
        return
    for got, want in zip(grads, expected, strict=True):
        if want is not None:
            # rounding: the loss is a sum of terms of total size `scale`, each computed to a few
            # ulps, and the difference divides that error by 2H: 1e-16 * scale / 1e-6 = 1e-10
            # scale; truncation H^2 f''' is far below. 1e-6 (rel) and 1e-7 scale (abs) leave
            # a thousandfold margin yet catch any wrong rule, which is off by O(1) relative.
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7 * (1 + scale))


@fuzz_settings
@given(graph=graphs())
def test_random_graph_gradients_match_pytorch(graph):
    torch = pytest.importorskip("torch")
    _, _, scale = oracle(graph)
    loss, _, grads = autonet_gradients(graph)
    torch_loss, torch_pool = run(graph, TorchBackend(torch))
    torch_loss.backward()
    np.testing.assert_allclose(loss, torch_loss.item(), rtol=1e-9, atol=1e-12 * (1 + scale))
    for got, leaf in zip(grads, torch_pool[: len(grads)], strict=True):
        if got is not None:
            want = np.zeros(got.shape) if leaf.grad is None else leaf.grad.numpy()
            # two exact implementations of the same chain rule: only summation order differs
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * (1 + scale))


@fuzz_settings
@given(graph=graphs(), float32=st.lists(st.booleans(), min_size=3, max_size=3))
def test_random_mixed_precision_graphs_keep_numpy_dtypes(graph, float32):
    # inputs in float32 or float64 at random: every value has the dtype NumPy gives it (float32
    # stays float32, a mix promotes to float64) and every gradient its input's dtype; values and
    # gradients agree with PyTorch's at float32 precision. (PyTorch's dtypes differ in one case:
    # a 0-d float64 tensor with a float32 tensor gives float32 there, float64 in NumPy.)
    torch = pytest.importorskip("torch")
    _, _, scale = oracle(graph)
    inputs = [
        a.astype(np.float32) if f else a
        for a, f in zip(graph.inputs, float32[: len(graph.inputs)], strict=True)
    ]
    graph = dataclasses.replace(graph, inputs=inputs)
    _, numpy_pool = run(graph, NumpyBackend())
    loss, pool = run(graph, AutonetBackend())
    loss.backward()
    torch_loss, torch_pool = run(graph, TorchBackend(torch))
    torch_loss.backward()
    for value, numpy_value, torch_value in zip(pool, numpy_pool, torch_pool, strict=True):
        assert value.dtype == np.asarray(numpy_value).dtype
        # float32 rounding (eps 1.2e-7), amplified by up to 30 ops: agreement to 1e-3
        np.testing.assert_allclose(
            value.data, torch_value.detach().numpy(), rtol=1e-3, atol=1e-3 * (1 + scale)
        )
    for leaf, torch_leaf in zip(pool[: len(inputs)], torch_pool, strict=False):
        if leaf.requires_grad and torch_leaf.grad is not None:
            assert leaf.grad.dtype == leaf.dtype == torch_leaf.grad.numpy().dtype
            np.testing.assert_allclose(
                leaf.grad.data, torch_leaf.grad.numpy(), rtol=1e-3, atol=1e-3 * (1 + scale)
            )


@fuzz_settings
@given(graph=graphs(max_steps=15))
def test_random_graph_hessian_vector_products_match_finite_differences(graph):
    # second order (create_graph=True): H v = d/dt grad L(x0 + t v) at t = 0, against central
    # differences of the first-order gradients (which the test above checks against raw NumPy)
    _, _, scale = oracle(graph)
    x0 = graph.inputs[0]
    v = np.random.default_rng(0).uniform(-1, 1, size=x0.shape)

    def gradient(x, create_graph=False):
        loss, pool = run(graph, AutonetBackend(), [x] + graph.inputs[1:])
        return an.gradients(loss, [pool[0]], create_graph=create_graph)[0], pool[0]

    def kinks(x):
        numpy_run = NumpyBackend()
        run(graph, numpy_run, [x] + graph.inputs[1:])
        return numpy_run

    base = kinks(x0)
    for x in (x0 + H * v, x0 - H * v):
        moved = kinks(x)
        crossed = moved.ties or any(
            not np.array_equal(p, q) for p, q in zip(moved.kinks, base.kinks, strict=True)
        )
        assume(not base.ties and not crossed)
    g, leaf = gradient(x0, create_graph=True)
    hv = an.gradients((g * v).sum(), [leaf])[0].data if g.requires_grad else np.zeros_like(x0)
    expected = (gradient(x0 + H * v)[0].data - gradient(x0 - H * v)[0].data) / (2 * H)
    # as above: rounding of the gradients (size ~ scale) divided by 2H
    np.testing.assert_allclose(hv, expected, rtol=1e-5, atol=1e-6 * (1 + scale))
