"""Networks and optimisers on other Array API libraries: array_api_strict (the standard's
reference, which refuses anything outside it) and PyTorch CPU tensors.

A model moved with model.to(library) must train as it does on NumPy: the same steps from the same
initial weights give NumPy's weights (float64, to 1e-10), and the parameters, buffers, gradients
and optimiser state stay arrays of that library."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn
from autonet.datasets import load_digits
from autonet.nn import functional as F

strict = pytest.importorskip("array_api_strict")

BACKENDS = ["array_api_strict", "torch"]
TOLERANCE = 1e-10


def library(name):
    """The namespace a user passes to model.to: the torch module itself, or array_api_strict."""
    if name == "torch":
        return pytest.importorskip("torch")
    return strict


def on(name, x):
    """x (an ndarray) as an array of the backend `name`, in x's dtype."""
    return library(name).asarray(np.asarray(x))


def backend_maker(name):
    """A function making an ndarray an array of the backend `name`."""
    return lambda x: on(name, x)


def array_type(name):
    return type(on(name, np.zeros(1)))


def assert_on(name, tensors):
    """Every tensor holds an array of the backend `name`."""
    for t in tensors:
        assert type(t.data) is array_type(name), (t.name, type(t.data))


def assert_same_weights(model, reference):
    for (path, p), (_, q) in zip(
        model.named_parameters(), reference.named_parameters(), strict=True
    ):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=0, atol=TOLERANCE, err_msg=path)


OPTIMIZERS = {
    "sgd": lambda params: an.optim.SGD(params, lr=0.5),
    "sgd_nesterov_decay": lambda params: an.optim.SGD(
        params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2
    ),
    "adam": lambda params: an.optim.Adam(params, lr=1e-2),
    "adamw_amsgrad": lambda params: an.optim.AdamW(params, lr=1e-2, amsgrad=True),
    "rmsprop_centered": lambda params: an.optim.RMSprop(
        params, lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-3
    ),
}

NETWORKS = {
    # the tutorial's network: O = sigmoid(sigmoid(S @ W0) @ W1), L = 1/2 sum (O - y)^2
    "tutorial": (
        lambda seed: nn.MLP([3, 4, 1], bias=False, init="uniform", rng=seed),
        F.half_sse,
    ),
    "deeper_with_biases": (
        lambda seed: nn.MLP([5, 7, 6, 3], activation="tanh", last_activation=False, rng=seed),
        F.mse,
    ),
}


def train(model, optimizer, batches, loss_fn, make):
    """One optimiser step per (x, y) batch, each made an array by `make`."""
    for x, y in batches:
        optimizer.zero_grad()
        loss_fn(model(an.tensor(make(x))), an.tensor(make(y))).backward()
        optimizer.step()


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("network", sorted(NETWORKS))
@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 6))
def test_training_steps_equal_numpy(backend_name, network, optimizer_name, seed, batch):
    build, loss_fn = NETWORKS[network]
    model, reference = build(seed), build(seed)
    model.to(library(backend_name))
    rng = np.random.default_rng(seed)
    n_in, n_out = reference.sizes[0], reference.sizes[-1]
    batches = [(rng.normal(size=(batch, n_in)), rng.uniform(size=(batch, n_out))) for _ in range(3)]
    make = backend_maker(backend_name)
    train(model, OPTIMIZERS[optimizer_name](model.parameters()), batches, loss_fn, make)
    train(
        reference, OPTIMIZERS[optimizer_name](reference.parameters()), batches, loss_fn, np.asarray
    )
    assert_on(backend_name, model.parameters())
    assert_on(backend_name, [p.grad for p in model.parameters()])
    assert_same_weights(model, reference)


def digits_batch(size=32):
    X, y = load_digits()
    return X[:size] / 16.0, y[:size]


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("labels_on_backend", [False, True])
def test_digits_cross_entropy_adam_step_equals_numpy(backend_name, labels_on_backend):
    X, y = digits_batch()
    model, reference = nn.Linear(64, 10, rng=0), nn.Linear(64, 10, rng=0)
    model.to(library(backend_name))
    losses = []
    for net, x, labels in (
        (model, on(backend_name, X), on(backend_name, y) if labels_on_backend else y),
        (reference, X, y),
    ):
        optimizer = an.optim.Adam(net.parameters(), lr=1e-2)
        loss = F.cross_entropy(net(an.tensor(x)), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        moments = [v for key, v in optimizer.state[0].items() if key != "step"]
        assert all(type(v) is type(net.weight.data) for v in moments)
    assert losses[0] == pytest.approx(losses[1], abs=TOLERANCE)
    assert_on(backend_name, model.parameters())
    assert_same_weights(model, reference)


def model_with_buffers(seed=0):
    return nn.Sequential(
        nn.Linear(4, 3, rng=seed), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 2, rng=seed + 1)
    )


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_to_backend_and_back_round_trips_exactly(backend_name):
    model = model_with_buffers()
    F.mse(model(np.random.default_rng(0).normal(size=(5, 4))), np.zeros((5, 2))).backward()
    before = {path: a.copy() for path, a in model.state_dict().items()}
    grads = {path: p.grad.numpy().copy() for path, p in model.named_parameters()}
    model.to(library(backend_name))
    assert_on(backend_name, model.parameters() + model.buffers())
    assert_on(backend_name, [p.grad for p in model.parameters()])
    assert model[1].num_batches_tracked.dtype == np.int64
    model.to(np)
    for path, tensor in model.named_parameters() + model.named_buffers():
        assert type(tensor.data) is np.ndarray
        assert tensor.dtype == before[path].dtype
        np.testing.assert_array_equal(tensor.data, before[path], err_msg=path)
    for path, p in model.named_parameters():
        assert type(p.grad.data) is np.ndarray
        np.testing.assert_array_equal(p.grad.data, grads[path], err_msg=path)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_to_float32_on_backend_keeps_the_library(backend_name):
    model = model_with_buffers().to(library(backend_name)).to(np.float32)
    assert_on(backend_name, model.parameters() + model.buffers())
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert model[1].num_batches_tracked.dtype == np.int64  # integer buffers stay integers
    x = an.tensor(on(backend_name, np.ones((2, 4), np.float32)))
    assert model(x).dtype == np.float32


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_numpy_input_to_backend_model_names_both_libraries(backend_name):
    model = nn.MLP([3, 4, 1], rng=0).to(library(backend_name))
    with pytest.raises(TypeError, match=rf"numpy\.ndarray.*{backend_name.split('_')[0]}"):
        model(np.ones((2, 3)))


def test_to_refuses_what_is_neither_a_dtype_nor_a_namespace():
    model = nn.Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="'cuda' .*neither a floating dtype nor an array"):
        model.to("cuda")
    with pytest.raises(TypeError, match="dtype int32 is not a floating dtype"):
        model.to(np.int32)
    with pytest.raises(TypeError, match="device='cpu' goes with an array namespace"):
        model.to(np.float32, device="cpu")
    assert type(model.weight.data) is np.ndarray


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    batch=st.integers(1, 3),
    size=st.integers(4, 7),
    padding=st.integers(0, 1),
)
def test_conv_pool_forward_and_grads_equal_numpy(backend_name, seed, batch, size, padding):
    def network():
        return nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=padding, rng=seed),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )

    model, reference = network().to(library(backend_name)), network()
    x = np.random.default_rng(seed).normal(size=(batch, 2, size, size))
    out, expected = model(an.tensor(on(backend_name, x))), reference(an.tensor(x))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=0, atol=TOLERANCE)
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    assert_on(backend_name, [p.grad for p in model.parameters()])
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_normalisation_dropout_and_clipping_equal_numpy(backend_name):
    def network():
        return nn.Sequential(
            nn.Linear(4, 6, rng=3),
            nn.BatchNorm1d(6),
            nn.GELU(approximate="tanh"),
            nn.Dropout(0.3, rng=7),
            nn.LayerNorm(6),
            nn.Linear(6, 3, rng=4),
        )

    model, reference = network().to(library(backend_name)), network()
    rng = np.random.default_rng(1)
    for _ in range(2):
        x, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
        for net, make in ((model, backend_maker(backend_name)), (reference, np.asarray)):
            optimizer = an.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
            F.cross_entropy(net(an.tensor(make(x))), y).backward()
            nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.5)
            optimizer.step()
            net.zero_grad()
    assert_on(backend_name, model.parameters() + model.buffers())
    assert_same_weights(model, reference)
    for (path, b), (_, c) in zip(model.named_buffers(), reference.named_buffers(), strict=True):
        np.testing.assert_allclose(b.numpy(), c.numpy(), rtol=0, atol=TOLERANCE, err_msg=path)
    model.eval(), reference.eval()
    x = rng.normal(size=(3, 4))
    np.testing.assert_allclose(
        model(an.tensor(on(backend_name, x))).numpy(), reference(x).numpy(), atol=TOLERANCE
    )


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_clip_grad_norm_returns_the_backend_norm(backend_name):
    w = an.tensor(on(backend_name, np.array([3.0, 4.0])), requires_grad=True)
    (w * w).sum().backward()  # grad (6, 8), norm 10
    norm = nn.utils.clip_grad_norm_([w], max_norm=1.0)
    assert type(norm.data) is array_type(backend_name)
    assert norm.item() == pytest.approx(10.0)
    np.testing.assert_allclose(w.grad.numpy(), [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_state_dicts_are_numpy_and_load_back_into_the_library(backend_name):
    X, y = digits_batch(16)
    model, reference = nn.Linear(64, 10, rng=0), nn.Linear(64, 10, rng=0)
    model.to(library(backend_name))
    make = backend_maker(backend_name)
    optimizer = an.optim.Adam(model.parameters(), lr=1e-2, amsgrad=True)
    expected = an.optim.Adam(reference.parameters(), lr=1e-2, amsgrad=True)
    for net, opt, x in ((model, optimizer, make(X)), (reference, expected, X)):
        F.cross_entropy(net(an.tensor(x)), y).backward()
        opt.step()
    saved, saved_model = optimizer.state_dict(), model.state_dict()
    assert all(type(a) is np.ndarray for a in saved_model.values())
    assert all(
        type(v) is np.ndarray
        for entry in saved["state"].values()
        for k, v in entry.items()
        if k != "step"
    )
    restored = nn.Linear(64, 10, rng=5).to(library(backend_name))
    restored.load_state_dict(saved_model)
    resumed = an.optim.Adam(restored.parameters(), lr=1e-2, amsgrad=True)
    resumed.load_state_dict(saved)
    assert_on(backend_name, restored.parameters())
    for entry in resumed.state.values():
        assert all(type(v) is array_type(backend_name) for k, v in entry.items() if k != "step")
    for net, opt, x in ((restored, resumed, make(X)), (reference, expected, X)):
        net.zero_grad()
        F.cross_entropy(net(an.tensor(x)), y).backward()
        opt.step()
    assert_same_weights(restored, reference)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_optimizer_refuses_a_gradient_of_another_library(backend_name):
    w = an.tensor(on(backend_name, np.ones(3)), requires_grad=True)
    (w * w).sum().backward()
    optimizer = an.optim.SGD([w], lr=0.1)
    w.data = np.ones(3)  # the parameter moved back to NumPy, its gradient did not
    with pytest.raises(TypeError, match="SGD.step: the operands are arrays of different"):
        optimizer.step()
