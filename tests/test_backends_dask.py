"""Dask arrays as tensor data: what runs (values, gradients and second derivatives equal NumPy's,
and the graph stays lazy until values are asked for) and what fails, with an error naming the
operation.

Dask builds a task graph rather than computing: autonet records on it, backward adds the VJPs'
tasks, and nothing is computed until .numpy(), printing or drawing asks for values. Each array
here is split into several chunks, so that the forwards meet dask's chunked layout."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import autonet as an
from autonet import backend
from autonet.nn import functional as F
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients, seed_loss, seed_weights

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")


def chunked(array, chunks=2):
    """An ndarray as a dask array of several chunks."""
    return da.from_array(np.asarray(array, dtype=np.float64), chunks=chunks)


@contextlib.contextmanager
def counted_computes():
    """Run dask with a scheduler that counts the graphs it is asked to compute."""
    computes = []

    def counting_scheduler(graph, keys, **options):
        computes.append(keys)
        return dask.get(graph, keys, **options)

    with dask.config.set(scheduler=counting_scheduler):
        yield computes


def value_and_gradients(function, arrays, make):
    """function's value on tensors of `make`'s arrays, and the gradient of sum(value * weights)
    for fixed weights (so that every output element counts with its own factor)."""
    tensors = [an.tensor(make(a), requires_grad=True) for a in arrays]
    out = function(*tensors)
    weights = np.random.default_rng(0).normal(size=out.shape)
    grads = an.gradients((out * an.tensor(make(weights))).sum(), tensors)
    return out, grads


def close_to_numpy(function, *arrays, chunks=2):
    """function on chunked dask arrays gives NumPy's value and gradients, as dask arrays."""
    expected_out, expected_grads = value_and_gradients(function, arrays, np.asarray)
    out, grads = value_and_gradients(function, arrays, lambda a: chunked(a, chunks))
    assert isinstance(out.data, da.Array)
    assert out.shape == expected_out.shape and out.dtype == expected_out.dtype
    np.testing.assert_allclose(out.numpy(), expected_out.data, rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(grads, expected_grads, strict=True):
        assert isinstance(mine.data, da.Array)
        np.testing.assert_allclose(mine.numpy(), theirs.data, rtol=1e-12, atol=1e-12)


rng = np.random.default_rng(1)
A = rng.normal(size=(4, 6))
B = rng.normal(size=(6, 3))
IMAGES = rng.normal(size=(2, 3, 6, 6))
KERNELS = rng.normal(size=(4, 3, 3, 3))

CASES = {
    "elementwise": (lambda a: an.tanh(an.sigmoid(a) * 2 - a.exp() / 3) ** 2, [A]),
    "mask times values": (lambda a: (a > 0) * a + an.relu(-a), [A]),
    "matmul": (lambda a, b: a @ b, [A, B]),
    "sum over an axis": (lambda a: a.sum(axis=1), [A]),
    "max over an axis": (lambda a: a.max(axis=0), [A]),
    "transpose": (lambda a: a.T, [A]),
    "reshape within chunks": (lambda a: a.reshape((4, 3, 2)), [A]),
    "flatten": (lambda a: a.reshape((-1,)), [A]),
    "slices": (lambda a: a[1:, ::2], [A]),
    "negative step": (lambda a: a[::-1, 2], [A]),
    "integer array, repeated": (lambda a: a[np.array([3, 0, 3]), 1:], [A]),
    "boolean mask": (lambda a: a[A > 0], [A]),
    "log_softmax": (lambda a: an.log_softmax(a, axis=1), [A]),
    "einsum": (lambda a, b: an.einsum("ij,jk->ik", a, b), [A, B]),
    "pad": (lambda a: an.pad(a, ((1, 0), (2, 1))), [A]),
    "concatenate": (lambda a: an.concatenate([a, a * 2], axis=1), [A]),
    "cumsum": (lambda a: an.cumsum(a, axis=1), [A]),
    "conv2d": (lambda x, w: F.conv2d(x, w, stride=2, padding=1), [IMAGES, KERNELS]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [IMAGES]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=1, padding=1), [IMAGES]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_and_gradients_equal_numpy(case):
    function, arrays = CASES[case]
    close_to_numpy(function, *arrays)


def test_the_seed_network_trains_lazily_and_equals_the_tutorial():
    syn0, syn1 = seed_weights()
    with counted_computes() as computes:
        S = an.tensor(chunked(XNOR_INPUTS, (2, 3)))
        Y = an.tensor(chunked(XNOR_TARGETS))
        w0 = an.tensor(chunked(syn0, (3, 2)), requires_grad=True)
        w1 = an.tensor(chunked(syn1, (2, 1)), requires_grad=True)
        H = an.sigmoid(S @ w0)
        O = an.sigmoid(H @ w1)
        L = 0.5 * ((O - Y) ** 2).sum()
        L.backward()
        assert computes == []  # forward and backward only built task graphs
        assert isinstance(w0.grad.data, da.Array) and isinstance(w1.grad.data, da.Array)
        grad0, grad1 = seed_gradients(XNOR_INPUTS, XNOR_TARGETS, syn0, syn1)
        np.testing.assert_allclose(w0.grad.numpy(), grad0, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(w1.grad.numpy(), grad1, rtol=1e-12, atol=1e-15)
        assert float(L.numpy()) == pytest.approx(
            seed_loss(XNOR_INPUTS, XNOR_TARGETS, syn0, syn1), rel=1e-14
        )
        assert len(computes) == 3


def test_second_derivatives_equal_numpy():
    def hessian_vector_product(make):
        x = an.tensor(make(A), requires_grad=True)
        w = an.tensor(make(B), requires_grad=True)
        loss = an.logsumexp(an.tanh(x @ w), axis=1).sum()
        firsts = an.gradients(loss, [x, w], create_graph=True)
        total = (firsts[0] * an.tensor(make(A[::-1].copy()))).sum() + (firsts[1] ** 2).sum()
        return an.gradients(total, [x, w])

    expected = hessian_vector_product(np.asarray)
    for mine, theirs in zip(hessian_vector_product(chunked), expected, strict=True):
        assert isinstance(mine.data, da.Array)
        np.testing.assert_allclose(mine.numpy(), theirs.data, rtol=1e-11, atol=1e-12)


def test_gradcheck_passes_on_dask_arrays():
    x = an.tensor(chunked(A), requires_grad=True)
    assert an.gradcheck(lambda t: (an.sigmoid(t) * t).sum(), [x])


def test_an_optimizer_step_keeps_the_parameter_a_dask_array():
    w = an.tensor(chunked(np.ones((3, 4))), requires_grad=True)
    optimizer = an.optim.SGD([w], lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        (w * w).sum().backward()
        optimizer.step()
    assert isinstance(w.data, da.Array)
    np.testing.assert_allclose(w.numpy(), np.full((3, 4), 0.8**2))


def test_values_are_computed_only_when_asked_for():
    x = an.tensor(chunked(A), requires_grad=True)
    with counted_computes() as computes:
        images = an.tensor(chunked(IMAGES, (1, 3, 3, 3)), requires_grad=True)
        F.conv2d(images, an.tensor(chunked(KERNELS)), padding=1).sum().backward()
        x[np.array([1, 2])].sum().backward()
        assert computes == []
        x[x > 0]  # a mask's positions are found on the host: the mask is computed
        assert len(computes) == 1
        text = repr(x)
        assert len(computes) == 2
    assert "array=dask" in text and "requires_grad=True" in text
    assert f"{A[0, 0]:.8f}" in text
    assert backend.library_of(backend.namespace_of(x.data)) == "dask"
    assert x.dtype == np.float64 and isinstance(x.numpy(), np.ndarray)


def test_drawing_shows_the_computed_values():
    x = an.tensor(chunked(np.arange(6.0).reshape(2, 3)), requires_grad=True, name="x")
    source = an.draw((x * 2).sum()).source
    assert "<B>x</B>" in source and "(2, 3) float64" in source
    assert "[ 6  8 10]]" in source  # the product's values, computed for the drawing
    assert ">30<" in source  # the sum


# What fails, and says so.


def test_erf_is_scipys_block_by_block():
    """The standard has no erf; on Dask autonet takes scipy.special.erf, applied per block."""
    close_to_numpy(an.erf, A)


def test_a_reshape_across_chunk_boundaries_raises_naming_reshape():
    """Dask splits or merges whole axes only: (4, 6) in chunks of 2 x 2 cannot become (6, 4)
    (the way round is two reshapes: flatten first, then split)."""
    x = an.tensor(chunked(A), requires_grad=True)
    with pytest.raises(
        (ValueError, NotImplementedError),
        match=r"(?s)^reshape: .*only supports.*tensor shape \(4, 6\)",
    ):
        x.reshape((6, 4))
    close_to_numpy(lambda a: a.reshape((-1,)).reshape((6, 4)), A)


def test_taking_element_zero_of_a_single_chunk():
    """Dask gives x[i] a wrong shape when i is the dask array [0] and x is one chunk
    (dask/dask#6709): its own offsets array has the same name as i. autonet hands Dask's take
    NumPy positions, which it reads without that confusion."""
    x = an.tensor(da.from_array(np.arange(4.0)), requires_grad=True)
    np.testing.assert_array_equal(x[np.array([0])].numpy(), [0.0])
    x[np.array([0, 0, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 0.0, 1.0])


def test_mixing_dask_with_numpy_names_both_libraries():
    x = an.tensor(chunked(A), requires_grad=True)
    with pytest.raises(
        TypeError, match=r"^mul: (?=.*dask\.array\.core\.Array)(?=.*numpy\.ndarray).*libraries"
    ):
        x * an.tensor(A)


def test_vmap_refuses_dask_arrays():
    x = an.tensor(chunked(A), requires_grad=True)
    with pytest.raises(NotImplementedError, match=r"^vmap: .*dask arrays"):
        an.vmap(lambda t: (t * t).sum())(x)


def test_replay_on_dask_arrays_gives_eager_modes_gradient():
    def step(t):
        return (an.tanh(t) * t).sum()

    x = an.tensor(chunked(A), requires_grad=True)
    step(x).backward()
    eager = x.grad.numpy()
    x.grad = None
    replay = an.replay(step)
    for _ in range(2):  # records, then replays
        x.grad = None
        replay(x)
        assert isinstance(x.grad.data, da.Array)
        np.testing.assert_array_equal(x.grad.numpy(), eager)


def test_a_model_moves_to_dask_through_the_compat_namespace():
    """model.to takes array_api_compat's dask namespace (dask.array's own asarray has no copy=)."""
    compat_dask = pytest.importorskip("array_api_compat.dask.array")
    model = an.nn.Linear(3, 2)  # weight (3, 2): out = x @ weight + bias
    model.to(compat_dask)
    assert isinstance(model.weight.data, da.Array)
    model(an.tensor(chunked(XNOR_INPUTS, (2, 3)))).sum().backward()
    expected = np.repeat(XNOR_INPUTS.sum(axis=0)[:, None], 2, axis=1)  # sum_n x[n, i] per column
    np.testing.assert_allclose(model.weight.grad.numpy(), expected)
