"""detect_anomaly: a NaN or inf in a forward value or a gradient raises, naming the op, its input
shapes and the user's line; off by default, nothing changes and no check runs."""

import importlib
import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings

import autonet as an
from autonet import anomaly
from autonet.seed import seed_gradients
from tests.fuzz import AutonetBackend, NumpyBackend, graphs, run
from tests.test_errors import DOCS, docs_row, run_example


def test_forward_nan_or_inf_raises_naming_op_shapes_and_user_line():
    x = an.tensor([[1.0, 0.0, 2.0]], requires_grad=True)
    with an.detect_anomaly(), pytest.raises(FloatingPointError) as info:
        an.log(x)  # log(0) = -inf
    message = str(info.value)
    assert message.startswith("detect_anomaly: log produced inf values, from finite inputs")
    assert "input shapes [(1, 3)], dtypes ['float64']" in message
    assert "test_anomaly.py" in message and "an.log(x)  # log(0) = -inf" in message


@pytest.mark.parametrize(
    "make, op, kind",
    [
        (lambda x: 1.0 / x, "div", "inf"),
        (lambda x: x / x, "div", "nan"),
        (lambda x: an.sqrt(x - 1.0), "sqrt", "nan"),
        (lambda x: an.exp(x + 1000.0), "exp", "inf"),
        (lambda x: x**-1.0, "pow_scalar", "inf"),
        (lambda x: x ** an.tensor(-1.0), "pow", "inf"),
    ],
)
def test_each_kind_of_forward_anomaly_names_its_op(make, op, kind):
    x = an.tensor([0.0, 0.5], requires_grad=True)
    with an.detect_anomaly(), pytest.raises(FloatingPointError, match=f"{op} produced {kind}"):
        make(x)


def test_gradient_nan_or_inf_raises_naming_op_and_creation_line():
    x = an.tensor([0.0, 4.0], requires_grad=True)
    with an.detect_anomaly():
        y = an.sqrt(x)  # finite value, infinite derivative at 0
        loss = y.sum()
        with pytest.raises(FloatingPointError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith("detect_anomaly: the gradient of sqrt for input 0 has inf values")
    assert "from a finite incoming gradient" in message
    assert "input shapes [(2,)]" in message
    assert "y = an.sqrt(x)  # finite value, infinite derivative at 0" in message


def test_nan_in_input_data_is_reported_as_coming_from_the_data():
    x = an.tensor([1.0, np.nan, 3.0], name="x")
    w = an.tensor([1.0, 1.0, 1.0], requires_grad=True)
    with an.detect_anomaly(), pytest.raises(FloatingPointError) as info:
        w * x
    assert "mul produced nan values, its input 1 ('x', shape (3,)) already contains nan" in str(
        info.value
    )


def test_nan_seed_gradient_is_reported_as_coming_from_backward():
    x = an.tensor([1.0, 2.0], requires_grad=True)
    with an.detect_anomaly():
        y = x * 3.0
        with pytest.raises(FloatingPointError, match="flowing into it was already non-finite"):
            y.backward(grad=np.array([1.0, np.nan]))


def test_off_by_default_numpy_values_and_no_error():
    assert not an.is_anomaly_enabled()
    x = an.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own divide-by-zero warning
        log, sqrt, inv = an.log(x), an.sqrt(x), 1.0 / x
        (log.sum() + sqrt.sum() + inv.sum()).backward()
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(log.data, np.log([0.0, 1.0]))
        np.testing.assert_array_equal(inv.data, 1.0 / np.array([0.0, 1.0]))
        # d/dx [log x + sqrt x + 1/x] at 0: 1/0 + 1/(2*0) - 1/0^2 = inf + inf - inf = nan
        np.testing.assert_array_equal(x.grad.data, [np.nan, 1.0 + 0.5 - 1.0])


def test_off_means_no_hook_and_one_hook_while_any_mode_is_on():
    # the zero-cost claim: outside anomaly mode record reads one global, None, and goes on
    modes = importlib.import_module("autonet.modes")
    assert modes.record_hook is None
    with an.detect_anomaly():
        assert an.is_anomaly_enabled()
        assert modes.record_hook is anomaly.record_checked
        with an.detect_anomaly():
            assert modes.record_hook is anomaly.record_checked
        assert modes.record_hook is anomaly.record_checked  # still inside the outer one
    assert modes.record_hook is None
    with pytest.raises(FloatingPointError), an.detect_anomaly():
        an.log(an.tensor(0.0))
    assert modes.record_hook is None and not an.is_anomaly_enabled()


def test_a_record_function_imported_at_any_time_is_checked():
    """The mode is a hook that record consults, not a function swapped in loaded modules: a
    `record` imported before the mode was entered (as a user's own module would) is checked."""
    from autonet.primitives import PRIMITIVES
    from autonet.tensor import record

    x = an.tensor([0.0, 1.0], requires_grad=True)
    with pytest.raises(FloatingPointError, match="log produced inf"), an.detect_anomaly():
        record(PRIMITIVES["log"], (x,))
    with np.errstate(divide="ignore"):
        assert record(PRIMITIVES["log"], (x,)).data[0] == -np.inf


def test_anomaly_mode_is_per_thread():
    entered, done = threading.Event(), threading.Event()

    def other_thread():
        with an.detect_anomaly():
            entered.set()
            done.wait(10)

    thread = threading.Thread(target=other_thread)
    thread.start()
    entered.wait(10)
    try:
        assert not an.is_anomaly_enabled()
        with np.errstate(all="ignore"):
            out = an.log(an.tensor([0.0]))  # this thread is not in anomaly mode: no error
        assert out.data[0] == -np.inf
    finally:
        done.set()
        thread.join()


def test_training_under_anomaly_mode_gives_the_same_gradients():
    rng = np.random.default_rng(1)
    S, Y = rng.normal(size=(4, 3)), rng.random((4, 1))
    w0, w1 = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 1))
    syn0, syn1 = an.tensor(w0, requires_grad=True), an.tensor(w1, requires_grad=True)
    with an.detect_anomaly():
        O = an.sigmoid(an.sigmoid(an.tensor(S) @ syn0) @ syn1)
        (0.5 * ((O - Y) ** 2).sum()).backward()
    grad0, grad1 = seed_gradients(S, Y, w0, w1)
    np.testing.assert_allclose(syn0.grad.data, grad0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(syn1.grad.data, grad1, rtol=0, atol=1e-12)


def test_higher_order_gradients_work_under_anomaly_mode():
    x = an.tensor([0.3, -1.2])
    with an.detect_anomaly():
        second = an.grad(lambda t: an.grad(lambda u: an.sigmoid(u).sum())(t).sum())(x)
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(second.data, s * (1 - s) * (1 - 2 * s), rtol=1e-12)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(graph=graphs(max_steps=15))
def test_finite_random_graphs_run_identically_under_anomaly_mode(graph):
    _, pool = run(graph, NumpyBackend())
    assume(all(np.all(np.isfinite(v)) and np.all(np.abs(v) < 1e6) for v in pool))

    def loss_and_gradients():
        loss, leaves = run(graph, AutonetBackend())
        loss.backward()
        n = len(graph.inputs)
        return [loss.data] + [t.grad.data for t in leaves[:n] if t.grad is not None]

    plain = loss_and_gradients()
    with an.detect_anomaly():
        watched = loss_and_gradients()
    for p, w in zip(plain, watched, strict=True):
        np.testing.assert_array_equal(p, w)


# A replayed step runs its generated NumPy code, which records no op: under anomaly mode it runs
# eagerly instead (loss_fn, then backward()), so it raises where eager mode raises, naming the
# step's own line.


def test_a_replayed_step_raises_on_a_nan_in_its_forward_pass():
    w = an.tensor([1.0, 1.0], requires_grad=True)
    step = an.replay(lambda x: an.log(x * w).sum())  # log of a negative number: nan
    step(np.array([1.0, 2.0]))  # recorded
    with an.detect_anomaly(), pytest.raises(FloatingPointError) as info:
        step(np.array([1.0, -2.0]))
    message = str(info.value)
    assert message.startswith("detect_anomaly: log produced nan values, from finite inputs")
    assert "step = an.replay(lambda x: an.log(x * w).sum())" in message


def test_a_replayed_step_raises_on_an_infinite_gradient():
    w = an.tensor([1.0, 1.0], requires_grad=True)
    step = an.replay(lambda x: an.sqrt(x * w).sum())  # sqrt at 0: a finite value, an inf slope
    step(np.array([1.0, 4.0]))  # recorded
    w.grad = None
    with an.detect_anomaly(), pytest.raises(FloatingPointError) as info:
        step(np.array([0.0, 4.0]))
    message = str(info.value)
    assert message.startswith("detect_anomaly: the gradient of sqrt for input 0 has inf values")
    assert "step = an.replay(lambda x: an.sqrt(x * w).sum())" in message


def test_a_replayed_step_under_anomaly_mode_computes_what_its_recording_does():
    rng = np.random.default_rng(3)
    S, Y = rng.normal(size=(4, 3)), rng.random((4, 1))
    syn0 = an.tensor(rng.uniform(-1, 1, (3, 4)), requires_grad=True)
    syn1 = an.tensor(rng.uniform(-1, 1, (4, 1)), requires_grad=True)

    def loss_fn(S, Y):
        return 0.5 * ((an.sigmoid(an.sigmoid(S @ syn0) @ syn1) - Y) ** 2).sum()

    step = an.replay(loss_fn)
    results = []
    for checked in (True, False, True):  # first call eager: it records nothing
        syn0.grad = syn1.grad = None
        if checked:
            with an.detect_anomaly():
                loss = step(S, Y)
        else:
            loss = step(S, Y)
        assert not loss.requires_grad and loss.op is None  # a leaf either way
        results.append([loss.data, syn0.grad.data, syn1.grad.data])
        assert step.recorded == (0 if len(results) == 1 else 1)
    for result in results[1:]:
        for replayed, eager in zip(result, results[0], strict=True):
            np.testing.assert_array_equal(replayed, eager)


REPLAYED_NAN = (
    "a NaN in a replayed step, under anomaly mode",
    "w = an.tensor([1.0, 1.0], requires_grad=True); step = an.replay(lambda x: an.log(x * w).sum())"
    "\nstep(np.ones(2))\nwith an.detect_anomaly(): step(np.array([1.0, -1.0]))",
    FloatingPointError,
    "detect_anomaly: log produced nan values, from finite inputs (e.g. log or division at 0, sqrt "
    "of a negative number, exp overflow); input shapes [(2,)], dtypes ['float64']; created at\n"
    '    File "<example>", line 1, in <lambda>: w = an.tensor([1.0, 1.0], requires_grad=True); '
    "step = an.replay(lambda x: an.log(x * w).sum())",
)


def test_the_docs_row_of_a_nan_in_a_replayed_step_is_its_error_word_for_word():
    _, code, error, message = REPLAYED_NAN
    with pytest.raises(error) as info:
        run_example(code)
    assert str(info.value) == message
    assert docs_row(*REPLAYED_NAN) in DOCS.read_text().splitlines()
