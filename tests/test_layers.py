"""Layers of autonet.nn (convolution, pooling, Flatten, LayerNorm, BatchNorm, Embedding and the
activations): with the same weights copied in, outputs and gradients (input and parameters) equal
PyTorch's in float64, in training and evaluation mode, over drawn shapes; BatchNorm's running
statistics after several training steps equal PyTorch's; every layer's gradient matches finite
differences (autonet.gradcheck, float64), second derivatives too where they are not trivial;
default initialisations have PyTorch's distributions; float32 stays float32; bad inputs raise
errors that name the layer and both shapes; a residual block trains."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn
from autonet.nn import functional as F

torch = pytest.importorskip("torch")

draws = settings(max_examples=10, deadline=None)

# float64 sums of at most a few hundred terms, computed in a different order by each engine.
CLOSE = {"rtol": 1e-9, "atol": 1e-11}


def copy_weights(layer: nn.Module, torch_layer) -> None:
    """torch_layer's parameters and buffers set to layer's (same names and layouts)."""
    torch_state = torch_layer.state_dict()
    state = layer.state_dict()
    assert sorted(state) == sorted(torch_state)
    with torch.no_grad():
        for name, array in state.items():
            torch_state[name].copy_(torch.from_numpy(array))


def randomise(layer: nn.Module, rng: np.random.Generator) -> None:
    """Parameters drawn afresh, so that affine weights are not all 1 and biases not all 0."""
    for parameter in layer.parameters():
        parameter.data = rng.normal(size=parameter.shape)


def run(layer, x, seed, integer_input=False):
    """layer(x), a random upstream gradient u, and the gradients of sum(u * layer(x)) for x and
    each parameter, in autonet."""
    xt = an.tensor(x) if integer_input else an.tensor(x, requires_grad=True)
    for parameter in layer.parameters():
        parameter.grad = None
    out = layer(xt)
    u = np.random.default_rng(seed).normal(size=out.shape)
    (out * u).sum().backward()
    grads = {name: p.grad.data for name, p in layer.named_parameters()}
    return out.data, u, (None if integer_input else xt.grad.data), grads


def run_torch(torch_layer, x, u, integer_input=False):
    xt = torch.tensor(x) if integer_input else torch.tensor(x, requires_grad=True)
    torch_layer.zero_grad()
    out = torch_layer(xt)
    (out * torch.tensor(u)).sum().backward()
    grads = {name: p.grad.numpy() for name, p in torch_layer.named_parameters()}
    return out.detach().numpy(), (None if integer_input else xt.grad.numpy()), grads


def assert_same_as_torch(layer, torch_layer, x, seed=0, integer_input=False):
    """Outputs and all gradients equal, for a random upstream gradient u."""
    out, u, x_grad, grads = run(layer, x, seed, integer_input)
    out_t, x_grad_t, grads_t = run_torch(torch_layer, x, u, integer_input)
    assert out.shape == out_t.shape
    np.testing.assert_allclose(out, out_t, **CLOSE)
    if not integer_input:
        np.testing.assert_allclose(x_grad, x_grad_t, **CLOSE)
    assert sorted(grads) == sorted(grads_t)
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, grads_t[name], **CLOSE, err_msg=name)


def check_gradients(layer, x, second_order=False):
    """The layer's gradients (input and parameters) against finite differences in float64: the
    layer computes with gradcheck's copies of its parameters, swapped in for each evaluation."""
    modules = dict(layer.named_modules())
    places = [path.rpartition(".") for path, _ in layer.named_parameters()]
    originals = layer.parameters()

    def f(x, *weights):
        for (owner, _, attr), weight in zip(places, weights, strict=True):
            setattr(modules[owner], attr, weight)
        return layer(x)

    inputs = [an.tensor(x, requires_grad=True)]
    inputs += [an.tensor(p.data, requires_grad=True) for p in originals]
    try:
        assert an.gradcheck(f, inputs)
        if second_order:
            assert an.gradgradcheck(f, inputs)
    finally:
        for (owner, _, attr), original in zip(places, originals, strict=True):
            setattr(modules[owner], attr, original)


# -- convolution and pooling ---------------------------------------------------------------------


@st.composite
def conv2d_layers(draw):
    """A Conv2d with drawn sizes and an input it fits (N may be 0)."""
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    size = [max(1, s - 2 * p) + draw(st.integers(0, 3)) for s, p in zip(span, padding, strict=True)]
    n, bias, seed = draw(st.integers(0, 3)), draw(st.booleans()), draw(st.integers(0, 2**32 - 1))
    layer = nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, bias=bias, rng=seed)
    x = np.random.default_rng(seed).normal(size=(n, c_in, *size))
    return layer, x


@draws
@given(case=conv2d_layers())
def test_conv2d_matches_torch(case):
    layer, x = case
    torch_layer = torch.nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        bias=layer.bias is not None,
    ).double()
    copy_weights(layer, torch_layer)
    assert_same_as_torch(layer, torch_layer, x)


@draws
@given(
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    extra=st.integers(0, 3),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv1d_matches_torch(c_in, c_out, kernel, stride, padding, extra, bias, seed):
    layer = nn.Conv1d(c_in, c_out, kernel, stride, padding, bias=bias, rng=seed)
    torch_layer = torch.nn.Conv1d(c_in, c_out, kernel, stride, padding, bias=bias).double()
    copy_weights(layer, torch_layer)
    length = max(1, kernel - 2 * padding) + extra
    assert_same_as_torch(
        layer, torch_layer, np.random.default_rng(seed).normal(size=(2, c_in, length))
    )


@pytest.mark.parametrize("kind", ["MaxPool2d", "AvgPool2d"])
@draws
@given(
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.none() | st.integers(1, 3),
    pad=st.booleans(),
    extra=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    seed=st.integers(0, 2**32 - 1),
)
def test_pooling_matches_torch(kind, kernel, stride, pad, extra, seed):
    padding = (kernel[0] // 2, kernel[1] // 2) if pad else 0
    layer = getattr(nn, kind)(kernel, stride, padding)
    torch_layer = getattr(torch.nn, kind)(kernel, stride, padding)
    shape = (2, 3, kernel[0] + extra[0], kernel[1] + extra[1])
    # distinct values: no ties inside a max-pooling window
    x = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) / 7.0
    assert_same_as_torch(layer, torch_layer, x)


@draws
@given(
    shape=st.lists(st.integers(0, 3), min_size=1, max_size=4),
    dims=st.tuples(st.integers(-4, 3), st.integers(-4, 3)),
)
def test_flatten_matches_torch(shape, dims):
    ndim = len(shape)
    start, end = dims
    if not (-ndim <= start < ndim and -ndim <= end < ndim and start % ndim <= end % ndim):
        with pytest.raises(ValueError, match="Flatten"):
            nn.Flatten(start, end)(np.ones(shape))
        return
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    assert_same_as_torch(nn.Flatten(start, end), torch.nn.Flatten(start, end), x)


# -- normalisation ------------------------------------------------------------------------------


@draws
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    normalized=st.integers(1, 4),
    affine=st.booleans(),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_layer_norm_matches_torch(shape, normalized, affine, bias, seed):
    normalized_shape = tuple(shape[len(shape) - min(normalized, len(shape)) :])
    rng = np.random.default_rng(seed)
    layer = nn.LayerNorm(normalized_shape, eps=1e-3, elementwise_affine=affine, bias=bias)
    randomise(layer, rng)
    torch_layer = torch.nn.LayerNorm(
        normalized_shape, eps=1e-3, elementwise_affine=affine, bias=bias
    ).double()
    copy_weights(layer, torch_layer)
    assert_same_as_torch(layer, torch_layer, rng.normal(size=shape) * 3 + 1)


BATCH_NORMS = {
    "BatchNorm1d (N, C)": (nn.BatchNorm1d, torch.nn.BatchNorm1d, ()),
    "BatchNorm1d (N, C, L)": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (5,)),
    "BatchNorm2d": (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 4)),
}


@pytest.mark.parametrize("kind", BATCH_NORMS)
@settings(max_examples=5, deadline=None)
@given(
    channels=st.integers(1, 4),
    batch=st.integers(2, 5),
    momentum=st.sampled_from([0.1, 0.5, None]),
    affine=st.booleans(),
    track=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_norm_matches_torch_in_training_and_eval_and_keeps_its_running_stats(
    kind, channels, batch, momentum, affine, track, seed
):
    make, make_torch, spatial = BATCH_NORMS[kind]
    rng = np.random.default_rng(seed)
    layer = make(channels, momentum=momentum, affine=affine, track_running_stats=track)
    randomise(layer, rng)
    torch_layer = make_torch(
        channels, momentum=momentum, affine=affine, track_running_stats=track
    ).double()
    copy_weights(layer, torch_layer)
    for step in range(4):  # training steps move the running statistics
        x = rng.normal(size=(batch, channels, *spatial)) * 2 + step
        assert_same_as_torch(layer, torch_layer, x, seed=step)
    for name, buffer in layer.named_buffers():
        np.testing.assert_allclose(
            buffer.data, torch_layer.get_buffer(name).numpy(), **CLOSE, err_msg=name
        )
    layer.eval()
    torch_layer.eval()
    assert_same_as_torch(layer, torch_layer, rng.normal(size=(batch, channels, *spatial)))
    before = {name: b.data.copy() for name, b in layer.named_buffers()}
    layer(rng.normal(size=(batch, channels, *spatial)))
    for name, buffer in layer.named_buffers():  # evaluation leaves them alone
        np.testing.assert_array_equal(buffer.data, before[name])


def test_batch_norm_running_variance_is_the_unbiased_one():
    x = np.array([[1.0], [2.0], [4.0]])
    layer = nn.BatchNorm1d(1, momentum=1.0)  # the running statistics become the batch's
    out = layer(x)
    np.testing.assert_allclose(layer.running_mean.data, [7 / 3])
    np.testing.assert_allclose(layer.running_var.data, [np.var(x, ddof=1)])
    np.testing.assert_allclose(out.data, (x - 7 / 3) / np.sqrt(np.var(x) + 1e-5))
    assert not layer.running_mean.requires_grad and layer.running_mean.parents == ()


def test_batch_norm_updates_stay_out_of_the_graph_and_count_batches():
    layer = nn.BatchNorm2d(2)
    x = an.tensor(np.random.default_rng(0).normal(size=(3, 2, 2, 2)), requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert int(layer.num_batches_tracked.data) == 1
    assert all(node is not layer.running_mean for node in an.topological_order(out))
    assert all(p is not layer.running_var for p in layer.parameters())
    with an.no_grad():  # no_grad does not stop the statistics, as in PyTorch
        layer(x)
    assert int(layer.num_batches_tracked.data) == 2


# -- embedding and activations -------------------------------------------------------------------


@draws
@given(
    index_shape=st.lists(st.integers(0, 3), max_size=3),
    num=st.integers(1, 5),
    dim=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_embedding_matches_torch_and_sums_repeated_rows(index_shape, num, dim, seed):
    rng = np.random.default_rng(seed)
    layer = nn.Embedding(num, dim, rng=rng)
    torch_layer = torch.nn.Embedding(num, dim).double()
    copy_weights(layer, torch_layer)
    indices = rng.integers(0, num, size=index_shape)
    assert_same_as_torch(layer, torch_layer, indices, integer_input=True)


ACTIVATIONS = {
    "GELU": (nn.GELU(), torch.nn.GELU()),
    "GELU tanh": (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    "LeakyReLU": (nn.LeakyReLU(), torch.nn.LeakyReLU()),
    "LeakyReLU 0.2": (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    "Softmax": (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    "LogSoftmax": (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@draws
@given(shape=st.tuples(st.integers(0, 3), st.integers(1, 4)), seed=st.integers(0, 2**32 - 1))
def test_activations_match_torch(name, shape, seed):
    layer, torch_layer = ACTIVATIONS[name]
    x = np.random.default_rng(seed).normal(size=shape) * 4
    x[np.abs(x) < 1e-3] = 0.5  # away from LeakyReLU's kink
    assert_same_as_torch(layer, torch_layer, x)


def test_leaky_relu_gradient_at_zero_is_the_slope_as_torch():
    x = an.tensor([0.0], requires_grad=True)
    nn.LeakyReLU(0.3)(x).sum().backward()
    xt = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    torch.nn.LeakyReLU(0.3)(xt).sum().backward()
    np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())


# -- finite differences --------------------------------------------------------------------------


def gradcheck_cases():
    rng = np.random.default_rng(0)
    images, signals = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(2, 2, 6))
    trained = nn.BatchNorm2d(2, affine=True)
    randomise(trained, rng)
    trained(rng.normal(size=(4, 2, 3, 3)))
    evaluating = nn.BatchNorm1d(3)
    evaluating(rng.normal(size=(5, 3)) * 2 + 1)
    evaluating.eval()
    layer_norm = nn.LayerNorm((2, 5))
    randomise(layer_norm, rng)
    x_away_from_zero = rng.choice([-1, 1], size=(3, 4)) * rng.uniform(0.1, 2, size=(3, 4))
    return {
        "Conv2d": (nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=0), images, False),
        "Conv1d": (nn.Conv1d(2, 2, 3, padding=1, dilation=2, rng=0), signals, False),
        "MaxPool2d": (nn.MaxPool2d(2, stride=1), images, False),
        "AvgPool2d": (nn.AvgPool2d(3, stride=2, padding=1), images, False),
        "Flatten": (nn.Flatten(), images, False),
        "LayerNorm": (layer_norm, rng.normal(size=(3, 2, 5)), True),
        "BatchNorm2d training": (trained, rng.normal(size=(3, 2, 2, 2)), True),
        "BatchNorm1d eval": (evaluating, rng.normal(size=(4, 3)), False),
        "GELU": (nn.GELU(), rng.normal(size=(3, 4)) * 2, True),
        "GELU tanh": (nn.GELU("tanh"), rng.normal(size=(3, 4)) * 2, True),
        "LeakyReLU": (nn.LeakyReLU(0.1), x_away_from_zero, False),
        "Softmax": (nn.Softmax(0), rng.normal(size=(3, 4)), True),
        "LogSoftmax": (nn.LogSoftmax(1), rng.normal(size=(3, 4)), True),
    }


@pytest.mark.parametrize("name, case", list(gradcheck_cases().items()), ids=list(gradcheck_cases()))
def test_layer_gradients_match_finite_differences(name, case):
    layer, x, second_order = case
    if name == "BatchNorm2d training":  # each evaluation would move the running statistics
        layer.running_mean, layer.running_var = None, None
        layer.track_running_stats = False
    check_gradients(layer, x, second_order)


def test_embedding_gradient_matches_finite_differences():
    layer = nn.Embedding(4, 3, rng=0)
    indices = np.array([[0, 3, 3], [1, 0, 2]])
    assert an.gradcheck(
        lambda w: F.embedding(indices, w), [an.tensor(layer.weight.data, requires_grad=True)]
    )


# -- initialisation, dtypes, errors ---------------------------------------------------------------


def test_default_initialisations_have_torch_distributions():
    conv = nn.Conv2d(16, 32, (3, 5), rng=0)
    bound = 1 / np.sqrt(16 * 3 * 5)
    for values in (conv.weight.data, conv.bias.data):
        assert np.abs(values).max() <= bound
    assert abs(conv.weight.data.var() - bound**2 / 3) < 0.05 * bound**2 / 3  # U(-b, b): b^2 / 3
    torch_conv = torch.nn.Conv2d(16, 32, (3, 5))
    assert conv.weight.shape == tuple(torch_conv.weight.shape)
    conv1 = nn.Conv1d(4, 8, 5, rng=0)
    assert np.abs(conv1.weight.data).max() <= 1 / np.sqrt(20) and conv1.weight.shape == (8, 4, 5)
    embedding = nn.Embedding(200, 100, rng=0)
    assert abs(embedding.weight.data.std() - 1) < 0.02 and abs(embedding.weight.data.mean()) < 0.02
    norm = nn.LayerNorm((2, 3))
    np.testing.assert_array_equal(norm.weight.data, np.ones((2, 3)))
    np.testing.assert_array_equal(norm.bias.data, np.zeros((2, 3)))
    np.testing.assert_array_equal(
        nn.Conv2d(2, 2, 2, rng=7).weight.data, nn.Conv2d(2, 2, 2, rng=7).weight.data
    )


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, rng=0),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(),
        nn.MaxPool2d(2),
        nn.AvgPool2d(1),
        nn.Flatten(),
        nn.LayerNorm(16),
        nn.GELU(),
        nn.Linear(16, 3, rng=0),
        nn.LogSoftmax(dim=1),
    ).to(np.float32)
    x = an.tensor(rng.normal(size=(3, 2, 4, 4)).astype(np.float32), requires_grad=True)
    for mode in (True, False):
        model.train(mode)
        out = model(x)
        out.sum().backward()
        assert out.dtype == np.float32 and x.grad.dtype == np.float32
        assert all(p.grad.dtype == np.float32 for p in model.parameters())
        assert all(b.dtype == np.float32 for b in model[1].buffers()[:2])
    assert model[1].num_batches_tracked.dtype == np.int64
    embedded = nn.Embedding(3, 2, rng=0).to(np.float32)(np.array([0, 2]))
    assert embedded.dtype == np.float32


@pytest.mark.parametrize(
    "layer, x, message",
    [
        (
            nn.Conv2d(3, 4, 3),
            np.ones((2, 5, 8, 8)),
            r"Conv2d\(3, 4, .*\): expected input of shape \(N, 3, H, W\), got \(2, 5, 8, 8\)",
        ),
        (
            nn.Conv2d(3, 4, 3),
            np.ones((3, 8, 8)),
            r"got \(3, 8, 8\); for one sample use x.reshape\(1, \*x.shape\)",
        ),
        (
            nn.Conv1d(2, 4, 3),
            np.ones((2, 3, 8)),
            r"Conv1d\(2, 4, .*\): expected input of shape \(N, 2, L\), got \(2, 3, 8\)",
        ),
        (
            nn.BatchNorm1d(3),
            np.ones((2, 5)),
            r"expected input of shape \(N, 3\) or \(N, 3, L\), got \(2, 5\)",
        ),
        (
            nn.BatchNorm2d(3),
            np.ones((2, 3, 4)),
            r"BatchNorm2d\(3, .*\): expected input of shape \(N, 3, H, W\), got \(2, 3, 4\)",
        ),
        (
            nn.LayerNorm((2, 3)),
            np.ones((2, 5)),
            r"LayerNorm\(\(2, 3\), .*\): expected input of shape \(\.\.\., 2, 3\), got \(2, 5\)",
        ),
        (nn.LayerNorm(4), np.ones(()), r"expected input of shape \(\.\.\., 4\), got \(\)"),
        (nn.Flatten(), np.ones(3), r"Flatten: axis 1 is out of range for a tensor of shape \(3,\)"),
        (nn.BatchNorm1d(2), np.ones((1, 2)), "has 1 value per channel; training needs more than 1"),
        (nn.MaxPool2d(3), np.ones((1, 1, 2, 2)), r"max_pool2d: the kernel spans \(3, 3\)"),
    ],
)
def test_wrong_inputs_name_the_layer_and_both_shapes(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


def test_embedding_refuses_float_negative_and_out_of_range_indices():
    layer = nn.Embedding(4, 2, rng=0)
    with pytest.raises(
        TypeError, match=r"indices must be integers, got dtype float64 \(shape \(2,\)\)"
    ):
        layer(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="got dtype bool"):
        layer(np.array([True]))
    with pytest.raises(IndexError, match=r"indices must be in \[0, 4\) .* got values in \[-1, 2\]"):
        layer(np.array([2, -1]))  # NumPy would silently read the last row
    with pytest.raises(IndexError, match=r"got values in \[0, 4\]"):
        layer(an.tensor(np.array([[0, 4]])))
    assert layer(np.array(3)).shape == (2,)  # a 0-d index picks one row
    assert layer(np.zeros((0, 5), dtype=int)).shape == (0, 5, 2)


def test_bad_layer_arguments_are_refused_when_the_layer_is_built():
    with pytest.raises(ValueError, match="Conv2d: in_channels must be a positive int, got 0"):
        nn.Conv2d(0, 3, 3)
    with pytest.raises(ValueError, match="Conv2d: stride must be an int >= 1 or a pair"):
        nn.Conv2d(1, 3, 3, stride=0)
    with pytest.raises(ValueError, match="Conv1d: kernel_size must be an int >= 1, got"):
        nn.Conv1d(1, 3, (3, 3))
    with pytest.raises(ValueError, match="MaxPool2d: kernel_size must be an int >= 1"):
        nn.MaxPool2d(0)
    with pytest.raises(ValueError, match="normalized_shape must be a positive int"):
        nn.LayerNorm(())
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be a positive int"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="GELU: approximate must be one of"):
        nn.GELU("sigmoid")
    with pytest.raises(ValueError, match="Embedding: num_embeddings and embedding_dim must be"):
        nn.Embedding(0, 3)


def test_empty_batches_pass_through_and_leave_batch_norm_statistics_alone():
    empty_images = np.zeros((0, 2, 4, 4))
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, rng=0), nn.BatchNorm2d(3), nn.MaxPool2d(2), nn.Flatten()
    )
    x = an.tensor(empty_images, requires_grad=True)
    out = model(x)
    assert out.shape == (0, 3)
    out.sum().backward()
    np.testing.assert_array_equal(model[0].weight.grad.data, 0)
    np.testing.assert_array_equal(model[1].running_mean.data, 0)
    np.testing.assert_array_equal(model[1].running_var.data, 1)
    assert nn.LayerNorm(3)(np.zeros((0, 3))).shape == (0, 3)
    assert nn.Embedding(3, 2, rng=0)(np.zeros(0, dtype=int)).shape == (0, 2)


def test_batch_norm_in_training_refuses_to_be_recorded_by_replay():
    layer = nn.BatchNorm1d(2)
    step = an.replay(lambda x: layer(x).sum())
    with pytest.raises(RuntimeError, match="called while an.replay records a step"):
        step(an.tensor(np.random.default_rng(0).normal(size=(4, 2)), requires_grad=True))


# -- a residual block ----------------------------------------------------------------------------


class Residual(nn.Module):
    """x + body(x): the docstring example of autonet.nn."""

    def __init__(self, width, rng=None):
        self.body = nn.Sequential(nn.Linear(width, width, rng=rng), nn.GELU(), nn.LayerNorm(width))

    def forward(self, x):
        return x + self.body(x)


def test_residual_block_gradient_matches_finite_differences_and_it_trains():
    rng = np.random.default_rng(0)
    block = Residual(3, rng=rng)
    randomise(block, rng)
    check_gradients(block, rng.normal(size=(4, 3)))

    model = nn.Sequential(
        nn.Linear(2, 6, rng=rng),
        Residual(6, rng=rng),
        Residual(6, rng=rng),
        nn.Linear(6, 1, rng=rng),
    )
    X = rng.normal(size=(32, 2))
    Y = (X[:, :1] * X[:, 1:]).copy()
    optimizer = an.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = F.mse(model(X), Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.8 * losses[0]
    assert len(model.parameters()) == 2 + 2 * 4 + 2
