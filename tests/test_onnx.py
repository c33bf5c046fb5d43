"""an.onnx.export: every exported model passes onnx.checker and, run by onnxruntime, computes what
autonet computes (1e-12 in float64, 1e-6 in float32): each primitive of the table, the tutorial's
network, an MLP, random graphs of the fuzzer, and on inputs other than the example's (masks are
exported as operators, not frozen). What cannot be exported is refused by name."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.onnx import EXPORTS, export
from autonet.primitives import PRIMITIVES
from tests.fuzz import GivenLeaves, graphs, run
from tests.strategies import PRIMITIVE_CASES

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

# primitives that only backward passes apply (their forward is a VJP of another): no operator
BACKWARD_ONLY = {
    "scatter_add",
    "conv2d_input_grad",
    "conv2d_weight_grad",
    "avg_pool2d_grad",
    "max_pool2d_scatter",
    "max_pool2d_gather",
}
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-6}
# operators onnxruntime has no float64 kernel for (NOT_IMPLEMENTED when a session loads the
# model): exported and checked in float64, run in float32
NO_FLOAT64_KERNEL = {"arccos", "arcsin", "arctan", "tan", "sinh", "cosh", "erf", "conv2d"}
NO_FLOAT64_KERNEL |= {"avg_pool2d"}


def run_onnx(path, *inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: np.asarray(x) for n, x in zip(names, inputs, strict=True)})


def assert_close(got, expected, dtype):
    assert got.shape == expected.shape
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


def test_every_forward_primitive_has_an_onnx_operator():
    assert set(PRIMITIVES) - BACKWARD_ONLY <= set(EXPORTS)


@pytest.mark.parametrize("name", sorted(set(PRIMITIVES) - BACKWARD_ONLY))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32]))
def test_each_primitive_runs_in_onnxruntime_as_in_autonet(name, data, dtype, tmp_path_factory):
    inputs, params = data.draw(PRIMITIVE_CASES[name])
    inputs = [np.asarray(x) for x in inputs]
    floats = [i for i, x in enumerate(inputs) if x.dtype.kind == "f"]
    examples = tuple(inputs[i].astype(dtype) for i in floats)
    if name == "astype":
        params = {"dtype": np.dtype(dtype)}

    def f(*xs):
        args = list(inputs)
        for i, x in zip(floats, xs, strict=True):
            args[i] = x
        return PRIMITIVES[name](
            *(an.tensor(a) if isinstance(a, np.ndarray) else a for a in args), **params
        )

    path = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
    export(f, examples, path)  # onnx.checker accepts it
    if dtype == np.float64 and name in NO_FLOAT64_KERNEL:
        return
    (got,) = run_onnx(path, *examples)
    expected = f(*(an.tensor(x) for x in examples)).data
    assert_close(got, expected, dtype)


def seed_network(S):
    return an.sigmoid(an.sigmoid(S @ SYN0) @ SYN1)


rng = np.random.default_rng(0)
SYN0 = an.tensor(2 * rng.random((3, 4)) - 1, requires_grad=True)
SYN1 = an.tensor(2 * rng.random((4, 1)) - 1, requires_grad=True)


def test_the_tutorials_network_and_an_mlp(tmp_path):
    S = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    export(seed_network, S, tmp_path / "seed.onnx")
    (got,) = run_onnx(tmp_path / "seed.onnx", S)
    assert_close(got, seed_network(an.tensor(S)).data, np.float64)
    model = an.nn.MLP([5, 8, 8, 3], rng=1)
    X = np.random.default_rng(1).normal(size=(6, 5))
    export(model, X, tmp_path / "mlp.onnx", input_names=["x"], output_names=["logits"])
    session = ort.InferenceSession(str(tmp_path / "mlp.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x"]
    (got,) = session.run(["logits"], {"x": X})
    assert_close(got, model(X).data, np.float64)
    X32 = X.astype(np.float32)
    model32 = an.nn.MLP([5, 8, 3], rng=1)
    for p in model32.parameters():
        p.data = p.data.astype(np.float32)
    export(model32, X32, tmp_path / "mlp32.onnx")
    (got,) = run_onnx(tmp_path / "mlp32.onnx", X32)
    assert_close(got, model32(X32).data, np.float32)


def test_masks_follow_the_inputs_not_the_example(tmp_path):
    def f(x):
        return (
            an.where(x > 0, x, 0.1 * x) + (x * (x < -1).astype(float)) + x.argmax(axis=1)[:, None]
        )

    example = np.array([[1.0, -2.0, 0.5]])
    export(f, example, tmp_path / "masks.onnx")
    other = np.array([[-1.0, 3.0, -0.5]])
    (got,) = run_onnx(tmp_path / "masks.onnx", other)
    assert_close(got, f(an.tensor(other)).data, np.float64)


def test_a_module_is_exported_in_evaluation_mode_and_left_as_it_was(tmp_path):
    model = an.nn.Sequential(
        an.nn.Linear(4, 4, rng=0), an.nn.Dropout(0.5), an.nn.Linear(4, 2, rng=1)
    )
    model.train()
    X = np.ones((3, 4))
    export(model, X, tmp_path / "dropout.onnx")
    assert model.training
    (got,) = run_onnx(tmp_path / "dropout.onnx", X)
    model.eval()
    assert_close(got, model(X).data, np.float64)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(graph=graphs(max_steps=12), seed=st.integers(0, 2**16))
def test_random_graphs_of_the_fuzzer(graph, seed, tmp_path_factory):
    def loss(*leaves):
        return run(graph, GivenLeaves(list(leaves)))[0]

    with np.errstate(all="ignore"):
        expected = loss(*(an.tensor(x) for x in graph.inputs)).data
    if not np.all(np.isfinite(expected)):
        return
    path = tmp_path_factory.mktemp("onnx") / "graph.onnx"
    export(loss, tuple(graph.inputs), path)
    (got,) = run_onnx(path, *graph.inputs)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    # other inputs: kinks and masks are taken at their values
    moved = [x + np.random.default_rng(seed).normal(size=x.shape) for x in graph.inputs]
    with np.errstate(all="ignore"):
        expected = loss(*(an.tensor(x) for x in moved)).data
        (got,) = run_onnx(path, *moved)
    if np.all(np.isfinite(expected)):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_what_cannot_be_exported_is_refused_by_name(tmp_path, monkeypatch):
    x = np.ones((2, 2))
    cube = an.Primitive("cube", lambda x: x**3, lambda g, out, x: 3 * g * x**2)
    with pytest.raises(NotImplementedError, match="primitive 'cube' .* has no ONNX operator"):
        export(cube, x, tmp_path / "cube.onnx")
    with pytest.raises(TypeError, match="example input 0 has dtype int64"):
        export(lambda i: i * 2.0, np.arange(3), tmp_path / "int.onnx")
    with pytest.raises(ValueError, match="opset 13 is older than 18"):
        export(lambda x: x * 2, x, tmp_path / "old.onnx", opset=13)
    with pytest.raises(ValueError, match="2 input names for 1 inputs"):
        export(lambda x: x * 2, x, tmp_path / "names.onnx", input_names=["a", "b"])
    with pytest.raises(TypeError, match="must return a Tensor"):
        export(lambda x: 3.0, x, tmp_path / "number.onnx")
    with pytest.raises(FileNotFoundError, match="onnx.export: there is no folder"):
        export(lambda x: x * 2, x, tmp_path / "missing" / "x.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match="pip install 'autonet\\[onnx\\]'"):
        export(lambda x: x * 2, x, tmp_path / "no_onnx.onnx")


def test_a_cnn_with_normalisation_in_float32(tmp_path):
    nn = an.nn
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=0),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.LayerNorm(36),
        nn.Linear(36, 10, rng=1),
        nn.GELU(),
        nn.LogSoftmax(dim=1),
    ).to(np.float32)
    X = np.random.default_rng(2).normal(size=(5, 1, 8, 8)).astype(np.float32)
    model.train()
    for _ in range(3):  # running statistics that differ from the initial ones
        model(X)
    export(model, X, tmp_path / "cnn.onnx")
    model.eval()
    (got,) = run_onnx(tmp_path / "cnn.onnx", X)
    assert_close(got, model(X).data, np.float32)


def test_a_dynamic_batch_axis(tmp_path):
    nn = an.nn
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, rng=0),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 4, rng=1),
        nn.LogSoftmax(dim=1),
    ).to(np.float32)
    rng = np.random.default_rng(3)
    example = rng.normal(size=(2, 1, 4, 4)).astype(np.float32)
    export(model, example, tmp_path / "cnn.onnx", dynamic_batch=True)
    session = ort.InferenceSession(str(tmp_path / "cnn.onnx"))
    assert session.get_inputs()[0].shape == ["batch", 1, 4, 4]
    for size in (1, 3, 11):
        X = rng.normal(size=(size, 1, 4, 4)).astype(np.float32)
        (got,) = session.run(None, {"input_0": X})
        assert_close(got, model(X).data, np.float32)

    def with_tricks(x):  # a broadcast, slices of the features, a mask
        shifted = an.broadcast_to((x + an.tensor([1.0, 2.0, 3.0]))[:, None, :], (x.shape[0], 2, 3))
        return an.where(x > 0, x, 0.0) + shifted[:, 1, ::2].sum(axis=1, keepdims=True)

    export(with_tricks, np.ones((2, 3)), tmp_path / "tricks.onnx", dynamic_batch=True)
    X = rng.normal(size=(5, 3))
    (got,) = run_onnx(tmp_path / "tricks.onnx", X)
    assert_close(got, with_tricks(an.tensor(X)).data, np.float64)


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda x: x.mean(), "has other values with one more example"),
        (lambda x: x[-1] * 2, "takes part of the batch axis"),
        (lambda x: x.T @ x, "becomes shape"),
        (lambda x: x + an.zeros(x.shape), "is made for the batch's size"),
    ],
)
def test_a_dynamic_batch_that_cannot_be_is_refused(function, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        export(function, np.ones((2, 3)), tmp_path / "x.onnx", dynamic_batch=True)
    assert not list(tmp_path.iterdir())


def test_a_boolean_scalar_index_is_a_mask_not_the_integer_one(tmp_path):
    """x[True] adds an axis (NumPy reads a bool as a 0-d mask); it was exported as x[1]."""

    def f(x):
        return x[True] * 2 + x[False].sum()

    x = np.arange(3.0)
    export(f, x, tmp_path / "bool.onnx")
    (got,) = run_onnx(tmp_path / "bool.onnx", x)
    assert_close(got, f(an.tensor(x)).data, np.float64)
