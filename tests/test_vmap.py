"""vmap: a function of one example run once on a batch gives what a loop over the examples gives,
for every primitive of the table (forward and per-example gradients), for the seed network's
per-example gradients (against the tutorial's formulas and PyTorch's torch.func), and composed
with the other transforms; what it cannot do, it refuses clearly."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.batched import ValuesNeededError
from autonet.primitives import PRIMITIVES
from tests.concurrency import on_threads
from tests.strategies import PRIMITIVE_CASES, seed_problems


def examples_of(x: np.ndarray, count: int) -> np.ndarray:
    """count examples like x, stacked on axis 0: floats scaled a little differently each (so a
    rule that mixes examples up shows), other dtypes (conditions, indices) repeated."""
    if x.dtype.kind != "f":
        return np.stack([x] * count)
    scales = 1 + 0.01 * np.arange(count, dtype=x.dtype)
    return scales.reshape((count,) + (1,) * x.ndim) * x


def loop(function, args, in_axes):
    """function over the examples one by one, its outputs stacked on axis 0 (the reference)."""
    count = next(np.shape(a)[ax] for a, ax in zip(args, in_axes, strict=True) if ax is not None)
    outs = []
    for i in range(count):
        one = [
            a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, in_axes, strict=True)
        ]
        outs.append(np.asarray(getattr(function(*one), "data", None)))
    return np.stack(outs)


@st.composite
def batched_case(draw, name):
    """(arrays with a batch axis somewhere or none, in_axes, params) for primitive name."""
    inputs, params = draw(PRIMITIVE_CASES[name])
    count = draw(st.integers(1, 3))
    mapped = draw(st.lists(st.booleans(), min_size=len(inputs), max_size=len(inputs)))
    if not any(mapped):
        mapped[draw(st.integers(0, len(inputs) - 1))] = True
    args, in_axes = [], []
    for x, is_mapped in zip(inputs, mapped, strict=True):
        x = np.asarray(x)
        if not is_mapped:
            args.append(x)
            in_axes.append(None)
            continue
        axis = draw(st.integers(0, x.ndim))
        args.append(np.moveaxis(examples_of(x, count), 0, axis))
        in_axes.append(axis)
    return args, tuple(in_axes), params


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_vmap_of_each_primitive_is_the_loop_over_examples(name, data):
    args, in_axes, params = data.draw(batched_case(name))
    primitive = PRIMITIVES[name]

    def f(*xs):
        return primitive(*(an.tensor(x) if isinstance(x, np.ndarray) else x for x in xs), **params)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every primitive of the table has a batching rule
        out = an.vmap(f, in_axes=in_axes)(*args)
    expected = loop(f, args, in_axes)
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_per_example_gradients_of_each_primitive_are_the_loop(name, data):
    """vmap(grad): the backward pass runs its VJPs through the batching rules."""
    args, in_axes, params = data.draw(batched_case(name))
    primitive = PRIMITIVES[name]
    vjps = primitive.vjps * len(args) if primitive.variadic else primitive.vjps
    wrt = tuple(
        i
        for i, (x, vjp) in enumerate(zip(args, vjps, strict=True))
        if vjp is not None and x.dtype.kind == "f"
    )
    if not wrt:
        return
    first = [
        a if ax is None else np.take(a, 0, axis=ax) for a, ax in zip(args, in_axes, strict=True)
    ]
    weights = np.random.default_rng(0).normal(size=primitive.forward(*first, **params).shape)

    def loss(*xs):
        return (primitive(*xs, **params) * weights).sum()

    gradient = an.grad(loss, argnums=wrt)
    out = an.vmap(gradient, in_axes=in_axes)(*args)
    for position, got in enumerate(out):
        expected = loop(lambda *xs, at=position: gradient(*xs)[at], args, in_axes)
        np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed_problems(), st.sampled_from([0, 1]))
def test_per_example_gradients_of_the_seed_network_are_the_tutorials_formulas(problem, axis):
    S, Y, syn0, syn1 = problem.S, problem.Y, problem.w0, problem.w1

    def loss(syn0, syn1, s, y):
        H = an.sigmoid(s @ syn0)
        O = an.sigmoid(H @ syn1)
        return 0.5 * ((O - y) ** 2).sum()

    grad0, grad1 = an.vmap(an.grad(loss, argnums=(0, 1)), in_axes=(None, None, axis, axis))(
        syn0, syn1, np.moveaxis(S, 0, axis), np.moveaxis(Y, 0, axis)
    )
    for i in range(len(S)):
        hand0, hand1 = an.seed_gradients(S[i : i + 1], Y[i : i + 1], syn0, syn1)
        np.testing.assert_allclose(grad0.data[i], hand0, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grad1.data[i], hand1, rtol=1e-10, atol=1e-12)
    # the batch gradient of the tutorial is their sum
    batch0, batch1 = an.seed_gradients(S, Y, syn0, syn1)
    np.testing.assert_allclose(grad0.data.sum(0), batch0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad1.data.sum(0), batch1, rtol=1e-9, atol=1e-12)


def mlp_loss(w1, b1, w2, b2, x, label):
    h = an.relu(x @ w1 + b1)
    logits = h @ w2 + b2
    return -an.nn.functional.log_softmax(logits)[label]


def test_per_example_gradients_of_an_mlp_match_torch_func():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    params = [rng.normal(size=s) * 0.3 for s in [(12, 8), (8,), (8, 4), (4,)]]
    X, labels = rng.normal(size=(6, 12)), rng.integers(0, 4, size=6)
    per_example = an.grad(mlp_loss, argnums=(0, 1, 2, 3))
    ours = an.vmap(per_example, in_axes=(None, None, None, None, 0, 0))(*params, X, labels)

    def torch_loss(params, x, label):
        w1, b1, w2, b2 = params
        logits = torch.relu(x @ w1 + b1) @ w2 + b2
        # (torch.func.vmap cannot index by a mapped label, which autonet's vmap can)
        return -(torch.log_softmax(logits, -1) * (label == torch.arange(4))).sum()

    theirs = torch.func.vmap(torch.func.grad(torch_loss), in_dims=(None, 0, 0))(
        [torch.tensor(p) for p in params], torch.tensor(X), torch.tensor(labels)
    )
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-12)


def test_compositions_with_the_other_transforms():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4, 3))

    def f(x):
        return (an.tanh(x) * x.sum() + an.exp(x) ** 2).sum()

    hessians = an.vmap(an.hessian(f))(X)
    for i in range(4):
        np.testing.assert_allclose(hessians.data[i], an.hessian(f)(X[i]).data, rtol=1e-12)
        np.testing.assert_allclose(hessians.data[i], hessians.data[i].T, rtol=1e-12)

    def g(x):
        return an.sin(x) * x[0]

    jacobians = an.vmap(an.jacfwd(an.jacrev(g)))(X)
    for i in range(4):
        np.testing.assert_allclose(jacobians.data[i], an.jacfwd(an.jacrev(g))(X[i]).data)
    tangents = rng.normal(size=(4, 3))
    _, pushed = an.vmap(lambda x, v: an.jvp(g, (x,), (v,)))(X, tangents)
    for i in range(4):
        np.testing.assert_allclose(pushed.data[i], an.jacobian(g)(X[i]).data @ tangents[i])
    cotangents = rng.normal(size=(4, 3))

    def pulled(x, u):
        _, vjp_fn = an.vjp(g, x)
        return vjp_fn(u)[0]

    back = an.vmap(pulled)(X, cotangents)
    for i in range(4):
        np.testing.assert_allclose(back.data[i], cotangents[i] @ an.jacobian(g)(X[i]).data)


def test_jacobian_rows_by_vmap_of_vjp_agree_with_jacobian():
    x = np.array([0.3, -1.2, 2.0])

    def g(x):
        return an.stack([x[0] * x[1], an.exp(x[2]), x.sum()])

    out, vjp_fn = an.vjp(g, x)
    rows = an.vmap(lambda u: vjp_fn(u)[0])(np.eye(3))
    np.testing.assert_allclose(rows.data, an.jacobian(g)(x).data, rtol=1e-12)


def test_nested_vmaps_map_over_two_axes():
    a, b = np.arange(3.0), np.arange(4.0) + 1
    outer = an.vmap(an.vmap(lambda x, y: x * y + x, in_axes=(0, None)), in_axes=(None, 0))(a, b)
    np.testing.assert_array_equal(outer.data, b[:, None] * a[None, :] + a[None, :])
    M = np.random.default_rng(3).normal(size=(2, 3, 4))
    sums = an.vmap(an.vmap(lambda row: row.sum()))(M)
    np.testing.assert_allclose(sums.data, M.sum(-1))
    # in_axes / out_axes other than 0, negative ones included
    moved = an.vmap(lambda x: x * 2, in_axes=-1, out_axes=1)(M)
    np.testing.assert_allclose(moved.data, np.moveaxis(M * 2, -1, 1))


def test_arguments_and_outputs_in_containers_and_shared_outputs():
    X = np.random.default_rng(4).normal(size=(5, 2))

    def f(pair, scale):
        x, y = pair
        return {"sum": (x + y) * scale["k"], "first": x[0], "constant": an.tensor(7.0)}

    out = an.vmap(f, in_axes=((0, 0), None))((X, X * 2), {"k": 3.0})
    np.testing.assert_allclose(out["sum"].data, X * 9)
    np.testing.assert_allclose(out["first"].data, X[:, 0])
    np.testing.assert_array_equal(out["constant"].data, np.full(5, 7.0))
    same = an.vmap(lambda x: (x * 2, an.tensor(1.0)), out_axes=(0, None))(X)
    assert same[1].shape == ()


def test_dtypes_zero_d_examples_and_an_empty_batch():
    x32 = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert an.vmap(lambda x: an.sigmoid(x) * 2.0)(x32).dtype == np.float32
    scalars = an.vmap(lambda x: x * x + 1.0)(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(scalars.data, [2.0, 5.0, 10.0])
    empty = an.vmap(lambda x: (x @ np.ones((2, 3))).sum())(np.zeros((0, 2)))
    assert empty.shape == (0,)
    per_example = an.vmap(an.grad(lambda w, x: (x @ w).sum()), in_axes=(None, 0))(
        np.ones(2), np.zeros((0, 2))
    )
    assert per_example.shape == (0, 2)


def test_a_users_primitive_without_a_rule_loops_with_one_warning():
    cube_rows = an.Primitive("cube_rows", lambda x: x[::-1] ** 3, lambda g, out, x: g)
    X = np.arange(6.0).reshape(3, 2)
    with pytest.warns(RuntimeWarning, match="cube_rows.*no batching rule"):
        out = an.vmap(lambda x: cube_rows(x))(X)
    np.testing.assert_array_equal(out.data, X[:, ::-1] ** 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        an.vmap(lambda x: cube_rows(x))(X)
    elementwise = an.Primitive("twice", lambda x: 2 * x, lambda g, out, x: 2 * g, elementwise=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a declared fact gives the rule
        np.testing.assert_array_equal(an.vmap(elementwise)(X).data, 2 * X)


def test_anomaly_mode_watches_the_batch():
    X = np.array([[1.0, 2.0], [-3.0, 1.0]])
    with an.detect_anomaly():
        fine = an.vmap(an.grad(lambda w, x: an.log(x @ w) ** 2), in_axes=(None, 0))
        assert fine(np.ones(2), np.abs(X)).shape == (2, 2)
        with pytest.raises(FloatingPointError, match="log produced nan"):
            fine(np.ones(2), X)  # the second example's x @ w is negative


def test_what_vmap_refuses_it_refuses_clearly():
    X = np.ones((3, 2))
    with pytest.raises(ValuesNeededError, match="vmap: the truth value"):
        an.vmap(lambda x: x if x.sum() > 0 else -x)(X)
    with pytest.raises(ValuesNeededError, match="item"):
        an.vmap(lambda x: x * x.sum().item())(X)
    with pytest.raises(RuntimeError, match="batched by vmap.*an.grad"):
        an.vmap(lambda x: (x * an.tensor(1.0, requires_grad=True)).sum().backward())(X)
    with pytest.raises(ValueError, match=r"different lengths \[3, 4\]"):
        an.vmap(lambda x, y: x)(X, np.ones(4))
    with pytest.raises(ValueError, match="in_axes has 1 entries but .* 2 positional"):
        an.vmap(lambda x, y: x, in_axes=(0,))(X, X)
    with pytest.raises(ValueError, match="maps no argument"):
        an.vmap(lambda x: x, in_axes=None)(X)
    with pytest.raises(ValueError, match="in_axes=2 is out of range .* shape \\(3, 2\\)"):
        an.vmap(lambda x: x, in_axes=2)(X)
    with pytest.raises(ValueError, match="out_axes is None .* differs between examples"):
        an.vmap(lambda x: x, out_axes=None)(X)
    with pytest.raises(ValueError, match="argument 0 is 0-d, so it has no axis to map over"):
        an.vmap(lambda x: x)(np.float64(3.0))
    with pytest.raises(NotImplementedError, match="nested vmaps is not supported"):
        per_example = an.grad(lambda w, x: an.vmap(lambda r: (r * w).sum())(x).sum())
        an.vmap(per_example, in_axes=(None, 0))(np.ones(2), np.ones((4, 3, 2)))
    with pytest.raises(NotImplementedError, match="nested vmaps"):
        an.vmap(lambda row: an.vmap(lambda v: v * 2)(row))(an.tensor(X, requires_grad=True))
    with pytest.raises(ValueError, match=r"matmul: .*\(2,\) and \(3,\)"):
        an.vmap(lambda x: x @ np.ones(3))(X)


def test_vmap_on_threads_beside_eager_work():
    rng = np.random.default_rng(5)
    w, X, Y = rng.normal(size=3), rng.normal(size=(8, 3)), rng.normal(size=8)

    def loss(w, x, y):
        return ((an.tanh(x @ w) - y) ** 2).sum()

    expected = loop(an.grad(loss), [w, X, Y], (None, 0, 0))
    errors: list[str] = []
    lock = threading.Lock()

    def work(i):
        for _ in range(20):
            if i % 2:
                got = an.vmap(an.grad(loss), in_axes=(None, 0, 0))(w, X, Y).data
            else:  # eager work on another thread never meets a batched value
                got = np.stack([an.grad(loss)(w, X[j], Y[j]).data for j in range(8)])
            if not np.allclose(got, expected, rtol=1e-12, atol=1e-14):
                with lock:
                    errors.append(f"thread {i}")

    on_threads(work, 4)
    assert not errors


INDEX_FORMS = {
    "x[i]": lambda i: i,
    "x[:, i]": lambda i: (slice(None), i),
    "x[i, :]": lambda i: (i, slice(None)),
    "x[i, j]": lambda i: (i, np.array([0, 2, 1])),
    "x[:, i, 1]": lambda i: (slice(None), i, 1),
    "x[1:, i]": lambda i: (slice(1, None), i),
    "x[i, :, 0] (split)": lambda i: (i, slice(None), 0),
}


@settings(max_examples=20, deadline=None)
@given(
    form=st.sampled_from(sorted(INDEX_FORMS)),
    count=st.integers(0, 4),
    label_shape=st.sampled_from([(), (3,), (2, 3)]),
    x_mapped=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_indexing_by_a_mapped_index_array_is_the_loop(form, count, label_shape, x_mapped, seed):
    """x[labels] with the labels mapped too (the loss of a classifier, per example): gathered for
    all examples at once, and its VJP scattered back, as a loop over examples does."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, 3, 3, 2) if x_mapped else (3, 3, 2))
    labels = rng.integers(0, 3, size=(count, *label_shape))
    index = INDEX_FORMS[form]
    in_axes = (0 if x_mapped else None, 0)

    def pick(x, i):  # (x[i] on an ndarray x is NumPy's indexing, which needs i's values)
        return (x if isinstance(x, an.Tensor) else an.tensor(x))[index(i)]

    out = an.vmap(pick, in_axes=in_axes)(X, labels)
    if count:
        np.testing.assert_array_equal(out.data, loop(pick, [X, labels], in_axes))
    weights = rng.normal(size=out.shape[1:])

    def loss(x, i):
        return (pick(x, i) * weights).sum()

    grads = an.vmap(an.grad(loss), in_axes=in_axes)(X, labels)
    assert grads.shape == (count, 3, 3, 2)
    if count:
        np.testing.assert_allclose(grads.data, loop(an.grad(loss), [X, labels], in_axes))


def test_results_share_no_memory_with_the_callers_arrays():
    w = an.tensor([1.0, 2.0])
    X = np.ones((3, 2))
    shared, same = an.vmap(lambda x: (w, x), out_axes=(None, 0))(X)
    shared.data[0] = 99.0
    same.data[0, 0] = 99.0
    assert w.data[0] == 1.0 and X[0, 0] == 1.0
    repeated = an.vmap(lambda x: w, in_axes=0)(np.ones((1, 2)))  # one example: a broadcast
    repeated.data[0, 0] = 5.0
    assert w.data[0] == 1.0


def test_per_example_cross_entropy_with_mapped_labels():
    rng = np.random.default_rng(6)
    W, X, labels = rng.normal(size=(5, 3)), rng.normal(size=(4, 5)), np.array([0, 2, 1, 2])

    def loss(w, x, label):
        return an.nn.functional.cross_entropy((x @ w)[None], label[None])

    per_example = an.vmap(an.grad(loss), in_axes=(None, 0, 0))(W, X, labels)
    for i in range(4):
        np.testing.assert_allclose(per_example.data[i], an.grad(loss)(W, X[i], labels[i]).data)
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\) .* \[0, 5\]"):
        an.vmap(loss, in_axes=(None, 0, 0))(W, X, np.array([0, 2, 1, 5]))


def test_vmap_inside_a_replayed_step_is_refused_and_fit_runs_it_eagerly():
    w = an.tensor(np.ones(3), requires_grad=True)

    @an.replay
    def step(X):
        return an.vmap(lambda x: (x * w.detach()).sum())(X).sum() + (w * w).sum()

    with pytest.raises(RuntimeError, match="vmap of <lambda>: called while an.replay records"):
        step(np.ones((4, 3)))

    class PerExampleNorms(an.nn.Module):
        def __init__(self):
            self.layer = an.nn.Linear(3, 1, rng=0)

        def forward(self, x):
            return self.layer(x) * an.vmap(lambda row: (row * row).sum())(x)[:, None]

    model = PerExampleNorms()
    history = an.nn.fit(model, np.ones((8, 3)), np.ones((8, 1)), epochs=2, batch_size=4)
    assert history.replayed_steps == 0 and "vmap" in history.replay_reason


@settings(max_examples=15, deadline=None)
@given(axis=st.integers(-2, 1), count=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_gradients_flow_out_of_vmap_as_out_of_the_loop(axis, count, seed):
    """vmap's results are nodes of the graph outside it: backward() through them gives a shared
    parameter the sum of the examples' gradients and a mapped argument each example's, as the
    same computation written with a loop over the examples does (JAX's transpose of vmap)."""
    rng = np.random.default_rng(seed)
    layer = an.nn.Linear(3, 2, rng=seed)
    X0 = rng.normal(size=(count, 3))
    weights = rng.normal(size=(count, 2))

    def per_example(x):
        return an.tanh(layer(x)) * layer.bias

    X = an.tensor(np.moveaxis(X0, 0, axis), requires_grad=True)
    mapped = an.vmap(per_example, in_axes=axis)(X)
    (mapped * weights).sum().backward()
    got = [layer.weight.grad.data.copy(), layer.bias.grad.data.copy(), X.grad.data.copy()]
    layer.zero_grad()
    X_loop = an.tensor(X0, requires_grad=True)
    looped = an.stack([per_example(X_loop[i]) for i in range(count)])
    (looped * weights).sum().backward()
    np.testing.assert_allclose(mapped.data, looped.data, rtol=1e-12)
    expected = [
        layer.weight.grad.data,
        layer.bias.grad.data,
        np.moveaxis(X_loop.grad.data, 0, axis),
    ]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # the same through an.grad, and a vmap inside a loss trained by an optimiser
    w = an.grad(lambda w: an.vmap(lambda x: (an.sin(x) * w).sum())(X0).sum())(np.ones(3))
    np.testing.assert_allclose(w.data, np.sin(X0).sum(axis=0), rtol=1e-12)


def test_jacobian_of_a_function_with_a_vmap_inside():
    X = np.random.default_rng(7).normal(size=(4, 3))

    def f(w):
        return an.vmap(lambda x: an.tanh((x * w).sum()))(X)

    w = np.array([0.3, -0.2, 0.5])
    expected = (1 - np.tanh(X @ w) ** 2)[:, None] * X
    np.testing.assert_allclose(an.jacobian(f)(w).data, expected, rtol=1e-12)


def test_second_derivatives_through_vmaps_results():
    rng = np.random.default_rng(8)
    X, w, v = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)

    def loss(w):
        return an.vmap(lambda x: an.tanh((x * w).sum()))(X).sum()

    t = np.tanh(X @ w)
    hessian = (X.T * (-2 * t * (1 - t**2))) @ X
    np.testing.assert_allclose(an.hessian(loss)(w).data, hessian, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(an.hvp(loss, w, v).data, hessian @ v, rtol=1e-10, atol=1e-12)
    _, pushed = an.jvp(lambda w: an.vmap(lambda x: an.sin((x * w).sum()))(X), (w,), (v,))
    np.testing.assert_allclose(pushed.data, np.cos(X @ w) * (X @ v), rtol=1e-12)
    Xt = an.tensor(X, requires_grad=True)
    (first,) = an.gradients(an.vmap(lambda x: (x**3).sum())(Xt).sum(), [Xt], create_graph=True)
    (second,) = an.gradients(first.sum(), [Xt])
    np.testing.assert_allclose(first.data, 3 * X**2, rtol=1e-12)
    np.testing.assert_allclose(second.data, 6 * X, rtol=1e-12)
