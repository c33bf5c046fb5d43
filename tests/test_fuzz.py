"""Random graphs: autograd agrees with float64 finite differences and with PyTorch.

The strategy (tests/fuzz.py) composes up to 30 random operations, with broadcasting, reductions,
indexing, reshapes, joins, matmul, softplus and log_softmax, and reuse of intermediate values;
every axis argument comes in all its spellings (negative, permuted, tuples in any order). Checked
on each graph: the forward values against raw NumPy; the gradients against central differences
and against PyTorch; dtypes when inputs mix float32 and float64; whole graphs in float32 against
float64 (values, gradients, and every .grad in its leaf's dtype); Hessian-vector products
(create_graph=True); that no .grad shares memory with another .grad or with the caller's arrays
(the seed of backward(grad=...) included). At the edges of the graph: casts to integers leave
it, complex operands are refused, index arrays changed after the forward pass do not change the
gradient, and softplus and log_sigmoid are correct to rounding over the whole float64 range.

Second derivatives at special points are in test_fuzz_second_order.py, concurrent backward
passes in test_fuzz_threads.py. The example count is modest in the normal suite; for a long run
set AUTONET_FUZZ_EXAMPLES (and AUTONET_FUZZ_SECOND_ORDER_EXAMPLES for second order), e.g.

    AUTONET_FUZZ_EXAMPLES=2000 python -m pytest -q tests/test_fuzz.py tests/test_fuzz_threads.py
    AUTONET_FUZZ_SECOND_ORDER_EXAMPLES=5000 python -m pytest -q tests/test_fuzz_second_order.py
"""

import copy
import dataclasses
import decimal
import itertools
import os
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import engine
from autonet.nn import functional as F
from tests.fuzz import (
    AutonetBackend,
    GivenLeaves,
    Graph,
    NumpyBackend,
    Step,
    TorchBackend,
    example_graph,
    fuzz_settings,
    graphs,
    index_for,
    leaves_of,
    run,
    small_shapes,
    with_dtype,
)

EXAMPLES = int(os.environ.get("AUTONET_FUZZ_EXAMPLES", "40"))
graph_settings = fuzz_settings(EXAMPLES)

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


@graph_settings
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


def uniform(*shape: int, seed: int = 0) -> np.ndarray:
    """Fixed values in [-2, 2] for the graphs of the examples."""
    return np.random.default_rng(seed).uniform(-2, 2, size=shape)


# Axis arguments in every spelling, each once as a one-step graph: negative axes, permutations
# with negative entries, reduction tuples out of order, joins counted from the end.
AXIS_EXAMPLES = [
    ([uniform(3, 3)], Step("transpose", (0,), {"axes": (-1, 0)})),
    ([uniform(2, 3, 4)], Step("transpose", (0,), {"axes": (0, -1, 1)})),
    ([uniform(2, 3, 4)], Step("transpose", (0,), {"axes": (-2, -3, 2)})),
    ([uniform(2, 3, 4)], Step("swapaxes", (0,), {"axis1": -1, "axis2": 0})),
    ([uniform(2, 3, 4)], Step("sum", (0,), {"axis": (-1, 0), "keepdims": False})),
    ([uniform(2, 3, 4)], Step("mean", (0,), {"axis": (2, -3), "keepdims": True})),
    ([uniform(2, 3, 4)], Step("max", (0,), {"axis": (-1, -2), "keepdims": False})),
    ([uniform(2, 3), uniform(2, 2, seed=1)], Step("concatenate", (0, 1), {"axis": -1})),
    ([uniform(2, 3), uniform(2, 3, seed=1)], Step("stack", (0, 1), {"axis": -1})),
    ([uniform(2, 3), uniform(2, 3, seed=1)], Step("stack", (0, 1), {"axis": -3})),
    ([uniform(3, 4)], Step("log_softmax", (0,), {"axis": -2})),
]


def with_axis_examples(test):
    for inputs, step in AXIS_EXAMPLES:
        test = example(graph=example_graph(inputs, [step]))(test)
    return test


@graph_settings
@given(graph=graphs())
@with_axis_examples
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


@graph_settings
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


@graph_settings
@given(graph=graphs())
def test_random_graphs_give_the_same_gradients_when_their_unheld_values_are_freed(graph):
    """The pool holds every intermediate value, so autonet_gradients frees none; here only the
    leaves and the loss are held, and with no size threshold the backward pass frees every value
    no VJP reads (engine.release_unread): the gradients are the same, bit for bit."""
    _, _, held = autonet_gradients(graph)
    loss, pool = run(graph, AutonetBackend())
    leaves = pool[: len(graph.inputs)]
    del pool
    with mock.patch.object(engine, "RELEASE_BYTES", 0):
        loss.backward()
    for want, leaf in zip(held, leaves, strict=True):
        if want is not None:
            got = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.data
            np.testing.assert_array_equal(got, want)


@graph_settings
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


@graph_settings
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


# -------------------------------------------------------------------------------------------
# Whole graphs in float32


@graph_settings
@given(graph=graphs())
def test_random_float32_graphs_stay_float32_and_match_float64(graph):
    # The graph with every input, constant and loss weight rounded to float32, run in float32 by
    # autonet and in float64 (on the same rounded numbers) by NumPy and PyTorch.
    graph32 = with_dtype(graph, np.float32)
    graph64 = with_dtype(graph32, np.float64)
    _, expected_pool, scale = oracle(graph64)
    sides32, sides64 = NumpyBackend(), NumpyBackend()
    run(graph32, sides32)
    run(graph64, sides64)
    same_sides = sides32.ties == sides64.ties and all(
        np.array_equal(p, q) for p, q in zip(sides32.kinks, sides64.kinks, strict=True)
    )
    loss, pool = run(graph32, AutonetBackend())
    loss.backward()
    # float32 rounds each op to 2^-24 = 6e-8 (relative). The float64 tests above allow 1e-12,
    # about 4,500 float64 ulps, for what up to 30 ops amplify their rounding to; the same count
    # of float32 ulps is 4,500 * 1.2e-7 = 5e-4: 1e-3, relative and on the scale of the loss.
    tolerance = dict(rtol=1e-3, atol=1e-3 * (1 + scale))
    for value, expected in zip(pool, expected_pool, strict=True):
        assert value.dtype == np.float32
        np.testing.assert_allclose(value.data, expected, **tolerance)
    for leaf in pool[: len(graph.inputs)]:
        if leaf.requires_grad and leaf.grad is not None:
            assert leaf.grad.dtype == leaf.dtype == np.float32
    # a value that float32 puts on the other side of a kink (or on it) than float64 has another
    # derivative there: gradients are compared only when every kink falls alike
    event("gradients compared" if same_sides else "gradients skipped: float32 moved a kink")
    if not same_sides:
        return
    torch = pytest.importorskip("torch")
    torch_loss, torch_pool = run(graph64, TorchBackend(torch))
    torch_loss.backward()
    for leaf, torch_leaf in zip(pool, torch_pool[: len(graph.inputs)], strict=False):
        if leaf.requires_grad:
            got = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.data
            want = np.zeros(leaf.shape) if torch_leaf.grad is None else torch_leaf.grad.numpy()
            np.testing.assert_allclose(got, want, **tolerance)


# -------------------------------------------------------------------------------------------
# Gradients own their memory


def assert_own_memory(grads: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    """No two of grads overlap in memory, and none overlaps an array of theirs."""
    for (a, x), (b, y) in itertools.combinations(grads.items(), 2):
        assert not np.shares_memory(x, y), f"{a} and {b} share memory"
    for (a, x), (b, y) in itertools.product(grads.items(), theirs.items()):
        assert not np.shares_memory(x, y), f"{a} shares memory with {b}"


@graph_settings
@given(
    graph=graphs(max_steps=8),
    output=st.integers(-4, 8),
    retain=st.booleans(),
    create_graph=st.booleans(),
)
@example(  # (w + b).sum(): add hands the same gradient to both leaves
    graph=example_graph(
        [uniform(3), uniform(3, seed=1)],
        [Step("add", (0, 1)), Step("sum", (2,), {"axis": None, "keepdims": False})],
    ),
    output=-1,
    retain=False,
    create_graph=False,
)
@example(  # w - b, seeded by the caller: the seed itself reaches w
    graph=example_graph([uniform(3), uniform(3, seed=1)], [Step("sub", (0, 1))]),
    output=-1,
    retain=False,
    create_graph=False,
)
@example(  # m.reshape(6) + v: m's gradient a reshaped view of v's
    graph=example_graph(
        [uniform(2, 3), uniform(6, seed=1)],
        [Step("reshape", (0,), {"shape": (6,)}), Step("add", (2, 1))],
    ),
    output=-1,
    retain=False,
    create_graph=False,
)
@example(  # a broadcast: (w + b) with b of shape (1, 3)
    graph=example_graph([uniform(2, 3), uniform(1, 3, seed=1)], [Step("add", (0, 1))]),
    output=-1,
    retain=False,
    create_graph=False,
)
@example(  # a leaf as the root: its .grad is the seed
    graph=example_graph([uniform(2, 2)], []), output=0, retain=False, create_graph=False
)
@example(  # a retained intermediate: (w + b).grad and w.grad
    graph=example_graph([uniform(3), uniform(3, seed=1)], [Step("add", (0, 1))]),
    output=-1,
    retain=True,
    create_graph=False,
)
def test_no_gradient_shares_memory_with_another_or_with_the_callers_arrays(
    graph, output, retain, create_graph
):
    # After a backward pass no two .grad arrays overlap, and none overlaps the seed passed as
    # backward(grad=seed), the caller's input arrays and constants, or any value of the graph:
    # otherwise an in-place update of one (w.grad.data *= 0.5, or the caller reusing the seed
    # array) silently changes another. With `retain`, every intermediate value keeps its .grad
    # too. The same holds for the results of an.gradients, and after a second, accumulating pass.
    # (values are not filtered for range: an overflow changes no memory, so it is not reported)
    def quiet():
        return np.errstate(all="ignore")

    leaves = leaves_of(graph)
    with quiet():
        _, pool = run(graph, GivenLeaves(leaves))
    roots = [i for i, t in enumerate(pool) if t.requires_grad]
    k = roots[output % len(roots)]
    if retain:
        for t in pool:
            if t.requires_grad and t.op is not None:
                t.retain_grad()
    seed = np.random.default_rng(abs(output)).uniform(0.5, 1.5, size=pool[k].shape)
    with quiet():
        pool[k].backward(grad=seed, create_graph=create_graph)
    theirs = {f"input {i}": a for i, a in enumerate(graph.inputs)}
    theirs |= {f"constant {i}": c for i, c in enumerate(graph.constants)}
    theirs |= {f"the value of pool[{i}]": t.data for i, t in enumerate(pool)}

    def grads_of(pool: list) -> dict[str, np.ndarray]:
        return {f"pool[{i}].grad": t.grad.data for i, t in enumerate(pool) if t.grad is not None}

    assert_own_memory(grads_of(pool), theirs | {"the seed": seed})
    # an.gradients on a new forward pass: its results, each other and the seed
    with quiet():
        _, fresh = run(graph, GivenLeaves(leaves_of(graph)))
        wrt = [t for t in fresh if t.requires_grad]
        found = an.gradients(fresh[k], wrt, grad=seed, create_graph=create_graph)
    assert_own_memory({f"gradient {i}": g.data for i, g in enumerate(found)}, {"the seed": seed})
    # a second pass, the loss with its implicit seed, accumulates into the same .grad
    with quiet():
        loss, second = run(graph, GivenLeaves(leaves))
        if loss.requires_grad:
            loss.backward()
    assert_own_memory(grads_of(second), theirs)


# -------------------------------------------------------------------------------------------
# The edges of the graph: what leaves it, what is refused, what is saved


INTEGER_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.bool_]


@graph_settings
@given(
    shape=small_shapes,
    dtype=st.sampled_from(INTEGER_DTYPES + [np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
@example(shape=(1,), dtype=np.int64, seed=0)
def test_casts_to_integers_leave_the_graph_and_float_casts_stay(shape, dtype, seed):
    # As in PyTorch, an integer (or bool) result has no gradient: x.astype(int) does not require
    # grad, and in x * x.astype(int) the cast is a constant, so d/dx sum(x * n) = n exactly.
    data = np.random.default_rng(seed).uniform(-4, 4, size=shape)
    if np.dtype(dtype).kind == "u":
        data = np.abs(data)  # (a negative float cast to unsigned is undefined in C)
    x = an.tensor(data, requires_grad=True)
    cast = x.astype(dtype)
    assert cast.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(cast.data, data.astype(dtype))
    is_float = np.dtype(dtype).kind == "f"
    assert cast.requires_grad == is_float
    (x * cast).sum().backward()
    # with a float cast c, d/dx x * c = c + x dc/dx, where the gradient reaching c is x rounded
    # to c's dtype: 2 c exactly (float64: 2 x; float32: 2 float32(x))
    rounded = data.astype(dtype).astype(np.float64)
    expected = 2 * rounded if is_float else rounded
    np.testing.assert_array_equal(x.grad.data, expected)
    assert x.grad.dtype == np.float64


COMPLEX_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "matmul": lambda a, b: a @ b,
    "maximum": an.maximum,
}


@graph_settings
@given(
    op=st.sampled_from(sorted(COMPLEX_OPS)),
    form=st.sampled_from(["python", "numpy scalar", "array"]),
    tensor_first=st.booleans(),
    n=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
)
@example(op="mul", form="python", tensor_first=True, n=1, dtype=np.float64)  # x * 1j
@example(op="add", form="array", tensor_first=True, n=1, dtype=np.float64)  # x + [1j]
def test_complex_operands_are_refused(op, form, tensor_first, n, dtype):
    # autonet differentiates real functions: a complex operand, whatever its form and side,
    # raises TypeError instead of giving a complex value whose gradient would drop its
    # imaginary part (NumPy's casting of complex gradients to float discards it, with a warning).
    x = an.tensor(np.linspace(0.5, 1.5, n).astype(dtype), requires_grad=True)
    if op == "matmul" and form != "array":
        form = "array"  # matmul takes no scalars, complex or not
    operand = {
        "python": 1j,
        "numpy scalar": np.complex128(1j),
        "array": np.full(n, 1 + 1j),
    }[form]
    with pytest.raises(TypeError):
        COMPLEX_OPS[op](x, operand) if tensor_first else COMPLEX_OPS[op](operand, x)


@graph_settings
@given(
    case=small_shapes.filter(len).flatmap(lambda s: st.tuples(st.just(s), index_for(s))),
    as_tensor=st.booleans(),
)
@example(case=((4,), (np.array([0, 0, 2]),)), as_tensor=False)  # w[idx]; idx[:] = 1; backward
def test_an_index_array_changed_after_the_forward_pass_does_not_change_the_gradient(
    case, as_tensor
):
    # w[idx] saves idx for its backward pass; writing into the caller's index array (or into the
    # Tensor holding it) afterwards must not move the gradient to other positions.
    shape, index = case
    index = tuple(np.array(i) if isinstance(i, np.ndarray) else i for i in index)  # our own
    original = tuple(i.copy() if isinstance(i, np.ndarray) else i for i in index)
    given_index = tuple(
        an.tensor(i) if isinstance(i, np.ndarray) and as_tensor else i for i in index
    )
    w = an.tensor(np.random.default_rng(0).uniform(-2, 2, size=shape), requires_grad=True)
    y = w[given_index]
    seed = np.random.default_rng(1).uniform(0.5, 1.5, size=y.shape)
    # every array of the index rewritten in place: integer arrays to other valid positions of
    # their axis (arrays come after slices only, so the k-th item indexes axis k), masks flipped
    for axis, item in enumerate(given_index):
        array = item.data if isinstance(item, an.Tensor) else item
        if isinstance(array, np.ndarray):
            array[...] = ~array if array.dtype == bool else (array + 1) % shape[axis]
    y.backward(grad=seed)
    expected = np.zeros(shape)
    np.add.at(expected, original, seed)
    np.testing.assert_array_equal(w.grad.data, expected)


def callers_arrays(graph: Graph) -> list[np.ndarray]:
    """Every array the caller hands autonet in running the graph: inputs, constants, loss
    weights, and the integer and boolean arrays of getitem's indices."""
    arrays = [*graph.inputs, *graph.constants, *graph.weights.values()]
    for step in graph.steps:
        index = step.params.get("index", ())
        arrays += [i for i in index if isinstance(i, np.ndarray)]
    return arrays


@graph_settings
@given(graph=graphs(max_steps=15))
@example(  # x * c, then c[:] = 0 before backward: the gradient is still c's old value
    graph=example_graph([[1.0, 2.0]], [Step("mul", (0, -1))], constants=([3.0, 4.0],))
)
def test_arrays_changed_after_the_forward_pass_do_not_change_the_gradients(graph):
    # The caller's arrays (constant operands, the loss weights, index arrays) are overwritten
    # between the forward and the backward pass. The gradients must be those of the values the
    # forward pass saw, bit for bit (autonet then owns what it saved), or backward must refuse
    # (as PyTorch refuses a tensor modified in place): never a silent mix of old and new values.
    oracle(graph)
    _, _, expected = autonet_gradients(graph)
    graph = copy.deepcopy(graph)  # arrays of this test's own, to overwrite
    loss, pool = run(graph, AutonetBackend())
    for array in callers_arrays(graph):
        if array.dtype == bool:
            array[...] = ~array
        elif array.dtype.kind in "iu":
            array[...] = 0
        else:
            array[...] = 1 - 3 * array
    try:
        loss.backward()
    except RuntimeError as exc:
        assert "modified" in str(exc), exc
        event("backward refused: an array was modified")
        return
    for leaf, want in zip(pool, expected, strict=False):
        if want is not None:
            got = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.data
            np.testing.assert_array_equal(got, want)


def exact(function: str, x: float) -> float:
    """softplus(x) = log(1 + e^x) or sigmoid(x) = 1 / (1 + e^-x), in Decimal arithmetic, rounded
    once to float64. 1 + e^x keeps e^x's 17 digits beside the 1 only with ~|x| / 2.3 more."""
    with decimal.localcontext() as context:
        context.prec = 40 + int(abs(x) / 2.3)
        d = decimal.Decimal(x)
        if function == "softplus":
            return float((1 + d.exp()).ln())
        return float(1 / (1 + (-d).exp()))


@settings(graph_settings, max_examples=max(EXAMPLES // 4, 10))
@given(
    xs=st.lists(st.floats(-745, 745), min_size=1, max_size=50),
    dtype=st.sampled_from([np.float64, np.float32]),
)
@example(xs=[-40.0, -30.0, -745.0, -709.0, 0.0, 37.0, 40.0, 745.0], dtype=np.float64)
@example(xs=[-104.0, -90.0, -17.0, 0.0, 17.0, 90.0], dtype=np.float32)
def test_softplus_and_log_sigmoid_and_their_gradients_are_correct_to_rounding(xs, dtype):
    # softplus(x) = log(1 + e^x), log_sigmoid(x) = -softplus(-x), and their gradients sigmoid(x)
    # and sigmoid(-x), against exact values rounded once. Computed as max(x, 0) + log1p(e^-|x|),
    # each part rounds once (exp, log1p, the sum, and 1 / (1 + e) for sigmoid) and none
    # amplifies the others' error, so a few ulps: 8 eps relative. A result below the smallest
    # normal number (x < -708 in float64, x < -87 in float32) has an ulp of its own: 4 of those.
    x = np.array(xs, dtype=dtype)
    finfo = np.finfo(dtype)
    tolerance = dict(rtol=8 * finfo.eps, atol=4 * finfo.smallest_subnormal)
    for function, flip in [(F.softplus, 1), (F.log_sigmoid, -1)]:
        t = an.tensor(x, requires_grad=True)
        y = function(t)
        y.sum().backward()
        values = np.array([flip * exact("softplus", flip * float(v)) for v in x])
        slopes = np.array([exact("sigmoid", flip * float(v)) for v in x])
        assert y.dtype == t.grad.dtype == dtype
        np.testing.assert_allclose(y.data, values.astype(dtype), **tolerance)
        np.testing.assert_allclose(t.grad.data, slopes.astype(dtype), **tolerance)


@graph_settings
@given(graph=graphs(), count=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_random_graphs_per_example_gradients_by_vmap_are_the_loop(graph, count, seed):
    """vmap(grad) of a random graph over a batch of its inputs: each primitive's batching rule,
    in the forward pass and in the VJPs of the backward pass, against one graph per example."""
    wrt = tuple(i for i, r in enumerate(graph.requires_grad) if r)
    if not wrt:
        return
    rng = np.random.default_rng(seed)
    batch = [
        np.stack([x * (1 + 0.01 * k) + 0.001 * rng.normal(size=x.shape) for k in range(count)])
        for x in graph.inputs
    ]

    def loss(*leaves):
        return run(graph, GivenLeaves(list(leaves)))[0]

    with np.errstate(all="ignore"):
        per_example = an.vmap(an.grad(loss, argnums=wrt))(*batch)
        for k in range(count):
            one = an.grad(loss, argnums=wrt)(*(x[k] for x in batch))
            for got, want in zip(per_example, one, strict=True):
                np.testing.assert_allclose(got.data[k], want.data, rtol=1e-12, atol=1e-12)
