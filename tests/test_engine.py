"""Engine properties: accumulation, fan-out, retain_graph, freed graphs, no_grad, detach, higher
order, deep chains, broadcasting, dtypes, and the functional API."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autonet as an
from tests.oracles import ATOL, RTOL, numeric_gradient
from tests.strategies import arrays


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_gradients_accumulate_across_backward_calls():
    x = an.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3 + 2, 3 + 4])


def test_the_grad_of_a_0d_tensor_is_an_ndarray_not_a_numpy_scalar():
    # arithmetic on 0-d arrays returns NumPy scalars (np.float64), which .grad must not hold
    x = an.tensor(2.0, requires_grad=True)
    (x * 3.0).backward()  # the first gradient: mul's rule g * 3.0 on 0-d arrays
    assert type(x.grad.data) is np.ndarray and x.grad.shape == () and x.grad.item() == 3.0
    (x * x).backward()  # accumulated: 3 + 2 x
    assert type(x.grad.data) is np.ndarray and x.grad.item() == 7.0
    x.grad.data[...] = 0.0  # an array can be zeroed in place, as an optimizer may
    assert x.grad.item() == 0.0


UNPICKLE_AND_BACKWARD = """
import pickle, sys
import numpy as np
import autonet as an
w, loss = pickle.loads(sys.stdin.buffer.read())
x = an.tensor([3.0, 4.0], requires_grad=True)
y = (w * x).sum() * 2.0  # new nodes, made from a loaded tensor
y.backward()
loss.backward()  # the loaded graph itself
print(w.grad.data.tolist(), x.grad.data.tolist())
"""


def test_tensors_pickled_here_work_in_a_fresh_process():
    # A fresh interpreter's clock starts again at 1: a loaded tensor must not keep this process's
    # tick (it would sort after the nodes made from it there) or its .data-write stamp.
    for _ in range(1000):
        an.tensor(1.0)  # move this process's clock on
    w = an.tensor([1.0, 2.0], requires_grad=True)
    w.data = w.data * 1.0  # a write: w is stamped with a tick of this process
    loss = (w * w).sum()  # a graph to load as it is: d/dw = 2 w
    payload = pickle.dumps((w, loss))
    result = subprocess.run(
        [sys.executable, "-c", UNPICKLE_AND_BACKWARD],
        input=payload,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    # w.grad: 2 x from y, plus 2 w from the loaded loss; x.grad: 2 w
    assert result.stdout.decode().split("\n")[0] == "[8.0, 12.0] [2.0, 4.0]"


def test_a_deep_copy_of_a_graph_backpropagates_like_the_original():
    w = an.tensor([1.0, -2.0], requires_grad=True)
    loss = (an.sigmoid(w) * w).sum()
    copied_w, copied_loss = copy.deepcopy((w, loss))
    assert copied_loss.op is loss.op  # the table's own primitive, copied by name
    copied_loss.backward()
    loss.backward()
    np.testing.assert_array_equal(copied_w.grad.data, w.grad.data)


def test_fan_out_sums_the_gradient_of_every_use():
    x = an.tensor(0.5, requires_grad=True)
    y = x * x + x  # x used three times
    y.backward()
    assert x.grad.item() == pytest.approx(2 * 0.5 + 1)


def test_a_tensor_used_1000_times():
    x = an.tensor([1.0, -1.0], requires_grad=True)
    total = x
    for _ in range(999):
        total = total + x
    total.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1000.0, 1000.0])


def test_chain_of_100000_ops_runs_without_recursion_error():
    x = an.tensor([0.1, 0.2], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_unused_inputs_and_constants_get_no_gradient():
    x = an.tensor([1.0], requires_grad=True)
    unused = an.tensor([2.0], requires_grad=True)
    constant = an.tensor([3.0])
    (x * constant).sum().backward()
    assert unused.grad is None and constant.grad is None
    np.testing.assert_array_equal(x.grad.data, [3.0])


def test_intermediate_gradients_are_kept_only_when_retained():
    x = an.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    k = h * 3
    (k * k).sum().backward()
    np.testing.assert_allclose(h.grad.data, 2 * k.data * 3)
    assert k.grad is None and not k.is_leaf and x.is_leaf


def test_second_backward_through_freed_graph_raises():
    x = an.tensor([1.0], requires_grad=True)
    y = an.sigmoid(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = an.tensor([1.0, 2.0], requires_grad=True)
    y = (an.sigmoid(x) * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)


def test_no_grad_records_nothing():
    x = an.tensor([1.0], requires_grad=True)
    with an.no_grad():
        y = x * 2
    assert not y.requires_grad and y.op is None
    assert (x * 2).requires_grad


def test_no_grad_is_per_thread():
    seen = {}

    def other_thread():
        seen["enabled"] = an.is_grad_enabled()

    with an.no_grad():
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert not an.is_grad_enabled()
    assert seen["enabled"] and an.is_grad_enabled()


def test_no_grad_as_decorator_restores_grad_mode():
    @an.no_grad()
    def double(t):
        return t * 2

    assert not double(an.tensor([1.0], requires_grad=True)).requires_grad
    assert an.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = an.tensor([1.0], requires_grad=True)
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0])


def test_backward_on_non_scalar_needs_grad():
    x = an.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element output.*shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(grad=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.data, [2.0, 20.0])


def test_backward_rejects_a_grad_of_the_wrong_shape_or_dtype():
    x = an.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        (x * 2).backward(grad=np.ones(3))
    with pytest.raises(TypeError, match="float32.*float64"):
        (x * 2).backward(grad=np.ones(2, dtype=np.float32))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        an.tensor([1.0]).sum().backward()


def test_integer_data_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        an.tensor(np.array([1, 2]), requires_grad=True)
    assert an.tensor([1, 2]).dtype == np.float64  # Python numbers become float64


@pytest.mark.parametrize(
    "op",
    [
        lambda x: an.sigmoid(x @ x.T).sum() * 2.0,
        lambda x: (an.tanh(x) / (1 + x * x)).mean(),
        lambda x: an.concatenate([x, x**2], axis=1).max(axis=0).sum(),
        lambda x: (an.exp(x) - 1.0).reshape(-1)[[0, 0, 2]].sum(),
    ],
)
def test_float32_stays_float32_through_ops_and_gradients(op):
    x = an.tensor(np.array([[0.1, -0.2], [0.3, 0.4]], dtype=np.float32), requires_grad=True)
    y = op(x)
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


def test_mixed_precision_promotes_like_numpy_and_returns_each_gradient_in_its_dtype():
    a = an.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    b = an.tensor(np.ones(2, dtype=np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


@settings(max_examples=40, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=4, max_side=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_broadcast_gradients_are_summed_back_to_each_input_shape(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.normal(size=s) for s in shapes.input_shapes)
    ta, tb, tc = (an.tensor(v, requires_grad=True) for v in (a, b, c))
    (an.sigmoid(ta * tb - tc) * tb).sum().backward()

    def f(a, b, c):
        return float(np.sum(sigmoid(a * b - c) * b))

    for i, t in enumerate((ta, tb, tc)):
        assert t.grad.shape == t.shape
        np.testing.assert_allclose(
            t.grad.data, numeric_gradient(f, [a, b, c], i), rtol=RTOL, atol=ATOL
        )


def test_second_derivative_of_sigmoid_via_grad_of_grad():
    x = np.linspace(-3, 3, 7)
    s = sigmoid(x)
    second = [an.grad(an.grad(an.sigmoid))(v).item() for v in x]
    np.testing.assert_allclose(second, s * (1 - s) * (1 - 2 * s), rtol=1e-12, atol=1e-15)


def test_third_derivative_of_tanh():
    x = 0.3
    t = np.tanh(x)
    third = an.grad(an.grad(an.grad(an.tanh)))(x).item()
    np.testing.assert_allclose(third, -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(x=arrays((3,), -1.5, 1.5), w=arrays((3, 3), -1.0, 1.0))
def test_create_graph_gives_differentiable_gradients(x, w):
    """d/dx of ||dL/dx||^2 for L = sum(tanh(W x)^2) against finite differences of the exact
    first derivative (a Hessian-vector product)."""

    def first_grad(x_):
        t = np.tanh(w @ x_)
        return w.T @ (2 * t * (1 - t**2))

    tx = an.tensor(x, requires_grad=True)
    loss = (an.tanh(an.tensor(w) @ tx) ** 2).sum()
    (gx,) = an.gradients(loss, [tx], create_graph=True)
    np.testing.assert_allclose(gx.data, first_grad(x), rtol=1e-12, atol=1e-12)
    (gx * gx).sum().backward()
    expected = numeric_gradient(lambda x_: float(np.sum(first_grad(x_) ** 2)), [x], 0)
    np.testing.assert_allclose(tx.grad.data, expected, rtol=RTOL, atol=ATOL)


def test_grad_with_several_argnums():
    dfdx, dfdy = an.grad(lambda x, y: (x * y * y).sum(), argnums=(0, 1))(2.0, 3.0)
    assert (dfdx.item(), dfdy.item()) == (9.0, 12.0)


def test_gradients_does_not_touch_grad_and_returns_zeros_for_unused_inputs():
    x = an.tensor([1.0, 2.0], requires_grad=True)
    unused = an.tensor([5.0], requires_grad=True)
    h = x * x
    gx, gh, gu = an.gradients((h * 3).sum(), [x, h, unused])
    np.testing.assert_array_equal(gx.data, 6 * x.data)
    np.testing.assert_array_equal(gh.data, [3.0, 3.0])
    np.testing.assert_array_equal(gu.data, [0.0])
    assert x.grad is None


def test_user_defined_primitive_records_and_differentiates():
    cube = an.Primitive("cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
    x = an.tensor([1.0, -2.0], requires_grad=True)
    y = cube(x)
    assert y.op is cube
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 12.0])
    np.testing.assert_array_equal(cube(np.array([2.0])), [8.0])  # arrays in, array out


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(
        st.tuples(st.integers(0, 2**16), st.integers(0, 2**16), st.booleans()),
        min_size=1,
        max_size=10,  # x = 1.5 squared up to 2^9 times stays finite
    )
)
def test_each_node_of_a_random_graph_runs_its_rule_once_with_its_whole_gradient(picks):
    """A random DAG: node k combines two earlier nodes (by + or *) and passes through a tap, an
    identity primitive that logs the gradient its rule receives. The backward pass must run every
    tap's rule exactly once, after all its consumers, so with the gradient summed over every use
    (a node handled too early would run twice, with part of its gradient each time)."""
    received: dict[int, list[np.ndarray]] = {}

    def tap_vjp(g, out, x, k):
        received.setdefault(k, []).append(np.array(g))
        return g

    tap = an.Primitive("tap", lambda x, k: x.copy(), tap_vjp)
    x = an.tensor([0.5, -1.5], requires_grad=True)
    nodes = [x]
    for k, (i, j, multiply) in enumerate(picks):
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        nodes.append(tap(a * b if multiply else a + b, k=k))
    for t in nodes[1:]:
        t.retain_grad()
    total = x.sum()
    for t in nodes[1:]:
        total = total + t.sum() * 0.25
    total.backward()
    assert sorted(received) == list(range(len(picks)))
    for k, gradients in received.items():
        assert len(gradients) == 1, f"tap {k}'s rule ran {len(gradients)} times"
        # the gradient a tap's rule got is the whole dL/d(its output)
        np.testing.assert_array_equal(gradients[0], nodes[k + 1].grad.data)
    # and the whole gradient reaches x: forward-mode derivatives of the same graph (every op is
    # element-wise, so d(node)/dx is an array like x: (a*b)' = a'b + ab', (a+b)' = a' + b')
    values, derivatives = [x.data], [np.ones(2)]
    for i, j, multiply in picks:
        (a, da), (b, db) = [(values[n % len(values)], derivatives[n % len(values)]) for n in (i, j)]
        values.append(a * b if multiply else a + b)
        derivatives.append(da * b + a * db if multiply else da + db)
    expected = 1 + 0.25 * sum(derivatives[1:])
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)


def test_topological_order_puts_parents_first_and_is_deterministic():
    x = an.tensor([1.0], requires_grad=True)
    a = x * 2
    b = a + x
    c = b * a
    order = an.topological_order(c)
    position = {id(t): i for i, t in enumerate(order)}
    for node in order:
        for parent in node.parents:
            if parent.requires_grad:  # constants (the 2 in x * 2) are not graph nodes to walk
                assert position[id(parent)] < position[id(node)]
    assert [id(t) for t in order] == [id(t) for t in an.topological_order(c)]
    assert order[-1] is c and len(order) == 4


def test_elementwise_equality_keeps_tensors_hashable_by_identity():
    a, b = an.tensor([1.0, 2.0]), an.tensor([1.0, 3.0])
    np.testing.assert_array_equal((a == b).data, [True, False])
    assert len({a, b}) == 2


def test_a_graph_of_100000_ops_pickles_copies_and_backpropagates():
    """Found by review: pickling ~1,000 ops and deep-copying ~200 raised RecursionError. Both walk
    the graph without recursion, and keep it shared: a loaded or copied loss still reaches the
    loaded or copied w, and nothing else."""
    w = an.tensor([0.5, -0.5], requires_grad=True)
    one = an.tensor(1.0)
    y = w
    for _ in range(100_000):
        y = y * one
    loss = (y * y).sum()
    for copied_w, copied_loss in (pickle.loads(pickle.dumps((w, loss))), copy.deepcopy((w, loss))):
        assert copied_w is not w
        copied_loss.backward()
        np.testing.assert_array_equal(copied_w.grad.data, [1.0, -1.0])
    assert w.grad is None
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, -1.0])


def test_a_shallow_copy_shares_the_graph():
    w = an.tensor([1.0, 2.0], requires_grad=True)
    y = w * 3.0
    clone = copy.copy(y)
    assert clone is not y and clone.parents == y.parents and clone.data is y.data
    clone.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0])
