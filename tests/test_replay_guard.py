"""A replayed step reads what eager mode reads, and several threads may call it at once.

A recording checks at each call that the tensors the step read besides its arguments are the
ones recorded: a parameter or a constant replaced (in a closure cell, a module's attribute, a
list, a dict, a global, a default), a requires_grad turned on or off, a constant's .data assigned
(autonet/replay/guard.py, guard_captured()). Any of these records again. Each scenario runs twice,
eagerly (loss_fn then backward()) and replayed, and the losses and every .grad (None included)
are compared bit for bit, as in test_replay.py; small integer values keep every sum exact.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import autonet as an
from tests.concurrency import on_threads

replay_module = importlib.import_module("autonet.replay")  # autonet.replay is the function


def call(loss_fn: Callable[..., an.Tensor], step: an.Replay, replayed: bool, *args: Any) -> Any:
    """One call of the step, eager (loss_fn, then backward()) or replayed; the loss array."""
    if replayed:
        return step(*args).data
    loss = loss_fn(*(an.tensor(a) if isinstance(a, np.ndarray) else a for a in args))
    loss.backward()
    return loss.data


def grads(*tensors: an.Tensor) -> list[Any]:
    """Each tensor's .grad as an array (None if it has none); then zeroed for the next call."""
    found = [None if t.grad is None else t.grad.data.copy() for t in tensors]
    for t in tensors:
        t.grad = None
    return found


def assert_same(eager: Any, replayed: Any) -> None:
    """Equal nested lists of arrays and Nones: None where None, arrays of one dtype, bit for bit."""
    if isinstance(eager, list):
        assert isinstance(replayed, list) and len(eager) == len(replayed)
        for e, r in zip(eager, replayed, strict=True):
            assert_same(e, r)
    elif eager is None:
        assert replayed is None, "replay filled a .grad that eager mode leaves None"
    else:
        assert replayed is not None, "replay left None a .grad that eager mode fills"
        assert replayed.dtype == eager.dtype
        np.testing.assert_array_equal(replayed, eager)


def test_unfreezing_a_closed_over_tensor_gives_it_its_gradient():
    def scenario(replayed):
        w = an.tensor([1.0, 2.0], requires_grad=True)
        u = an.tensor([3.0, -1.0])

        def loss_fn(x):
            return (x * w * u).sum()

        step = an.replay(loss_fn)
        seen = []
        for requires_grad in (False, True, True, False):
            u.requires_grad = requires_grad
            seen.append([call(loss_fn, step, replayed, np.array([0.5, 2.0])), *grads(w, u)])
        return seen

    assert_same(scenario(False), scenario(True))


def test_freezing_a_parameter_stops_its_gradient():
    def scenario(replayed):
        w = an.tensor([1.0, 2.0], requires_grad=True)
        v = an.tensor([3.0, 4.0], requires_grad=True)

        def loss_fn(x):
            return (x * w + x * v).sum()

        step = an.replay(loss_fn)
        seen = []
        for requires_grad in (True, False, False, True):
            w.requires_grad = requires_grad
            seen.append([call(loss_fn, step, replayed, np.array([0.5, 2.0])), *grads(w, v)])
        return seen

    assert_same(scenario(False), scenario(True))


class Scale(an.nn.Module):
    def __init__(self, w: an.Tensor) -> None:
        self.w = w

    def forward(self, x: Any) -> an.Tensor:
        return (x * self.w).sum()


def closure(w):
    def loss_fn(x):
        return (x * w).sum()

    def rebind(new):
        nonlocal w
        w = new

    return loss_fn, rebind, ()


def global_variable(w):
    namespace = {"W": w}
    # loss_fn reads W through another function of the module: both are found
    exec("def scaled(x):\n    return x * W\ndef loss_fn(x):\n    return scaled(x).sum()", namespace)
    return namespace["loss_fn"], functools.partial(namespace.__setitem__, "W"), ()


def list_item(w):
    holder = [w]
    return (lambda x: (x * holder[0]).sum()), functools.partial(holder.__setitem__, 0), ()


def dict_entry(w):
    params = {"w": w}
    return (lambda x: (x * params["w"]).sum()), functools.partial(params.__setitem__, "w"), ()


def module_attribute(w):
    m = Scale(w)
    return (lambda x: m(x)), functools.partial(setattr, m, "w"), ()


def bound_method(w):
    m = Scale(w)
    return m.forward, functools.partial(setattr, m, "w"), ()


def default(w):
    def loss_fn(x, w=w):
        return (x * w).sum()

    def rebind(new):
        loss_fn.__defaults__ = (new,)

    return loss_fn, rebind, ()


def partial_keyword(w):
    loss_fn = functools.partial(lambda x, w: (x * w).sum(), w=w)
    return loss_fn, functools.partial(loss_fn.keywords.__setitem__, "w"), ()


def module_argument(w):
    m = Scale(w)  # passed to the step at each call: the same object, its attribute replaced
    return (lambda m, x: m(x)), functools.partial(setattr, m, "w"), (m,)


@pytest.mark.parametrize(
    "holder",
    [
        closure,
        global_variable,
        list_item,
        dict_entry,
        module_attribute,
        bound_method,
        default,
        partial_keyword,
        module_argument,
    ],
)
def test_a_parameter_replaced_where_the_step_finds_it_is_read(holder):
    def scenario(replayed):
        old = an.tensor([1.0, 1.0, 1.0], requires_grad=True)
        new = an.tensor([2.0, 2.0, 2.0], requires_grad=True)
        loss_fn, rebind, leading = holder(old)
        step = an.replay(loss_fn)
        x = np.array([1.0, 2.0, 3.0])
        seen = []
        for w in (old, new, new, old):
            rebind(w)
            seen.append([call(loss_fn, step, replayed, *leading, x), *grads(old, new)])
        return seen

    eager = scenario(False)
    assert [float(loss) for loss, *_ in eager] == [6.0, 12.0, 12.0, 6.0]
    assert_same(eager, scenario(True))


def test_every_way_to_a_parameter_is_checked():
    # The walk reaches w first through `params` (nearer), but the step reads it through
    # outer.inner.w: replacing either records again.
    def scenario(replayed):
        old = an.tensor([1.0, 1.0], requires_grad=True)
        new = an.tensor([3.0, 3.0], requires_grad=True)
        outer = an.nn.Module()
        outer.inner = Scale(old)
        params = [old]

        def loss_fn(x):
            return outer.inner(x) * float(len(params))

        step = an.replay(loss_fn)
        x = np.array([1.0, 2.0])
        seen = [[call(loss_fn, step, replayed, x), *grads(old, new)]]
        outer.inner.w = new
        seen.append([call(loss_fn, step, replayed, x), *grads(old, new)])
        params[0] = new
        seen.append([call(loss_fn, step, replayed, x), *grads(old, new)])
        return seen

    assert_same(scenario(False), scenario(True))


def test_a_parameter_replaced_in_a_sequential_model_is_read():
    def scenario(replayed):
        model = an.nn.Sequential(an.nn.Linear(3, 2, rng=0), an.nn.Tanh(), an.nn.Linear(2, 1, rng=1))

        def loss_fn(x):
            return model(x).sum()

        step = an.replay(loss_fn)
        x = np.arange(6.0).reshape(2, 3) / 4
        old = model[0].weight
        seen = [[call(loss_fn, step, replayed, x), *grads(old)]]
        model[0].weight = new = an.tensor(np.full((3, 2), 0.5), requires_grad=True)
        seen.append([call(loss_fn, step, replayed, x), *grads(old, new, model[2].bias)])
        return seen

    assert_same(scenario(False), scenario(True))


def add_one_in_place(c: an.Tensor) -> None:
    c.data += 1.0  # NumPy adds into the same array, then .data is assigned it


def test_a_closed_over_constant_whose_data_is_assigned_is_read():
    # Another shape (broadcast against w), another dtype, the same shape, an augmented
    # assignment: each records again.
    changes = [
        lambda c: None,
        lambda c: setattr(c, "data", np.array([3.0])),
        lambda c: setattr(c, "data", np.array([1.0, -2.0], np.float32)),
        lambda c: setattr(c, "data", np.array([5.0, 6.0], np.float32)),
        add_one_in_place,
        lambda c: None,
    ]

    def scenario(replayed):
        w = an.tensor([1.0, 2.0], requires_grad=True)
        c = an.tensor([10.0, 20.0])

        def loss_fn(x):
            return (x * w * c).sum()

        step = an.replay(loss_fn)
        seen = []
        for change in changes:
            change(c)
            seen.append([call(loss_fn, step, replayed, np.array([1.0, 0.5])), *grads(w)])
        return seen

    assert_same(scenario(False), scenario(True))


def test_a_tensor_passed_one_call_and_closed_over_the_next():
    def scenario(replayed):
        a = an.tensor([1.0, 2.0], requires_grad=True)
        b = an.tensor([3.0, -4.0], requires_grad=True)
        holder = [b]

        def loss_fn(v):
            return (v * holder[0] * 2.0).sum()

        step = an.replay(loss_fn)
        seen = []
        for passed, held in ((a, b), (b, a), (a, a), (b, b), (a, b)):
            holder[0] = held
            seen.append([call(loss_fn, step, replayed, passed), *grads(a, b)])
        return seen

    assert_same(scenario(False), scenario(True))


def test_parameter_updates_and_tensors_the_step_does_not_read_do_not_record_again():
    # The guard checks what the step read, not all it can reach: an optimiser's updates of
    # .data, a tensor kept on the module after each call, a constant it holds but does not read.
    model = an.nn.Sequential(an.nn.Linear(3, 4, rng=0), an.nn.Sigmoid(), an.nn.Linear(4, 1, rng=1))
    model.unused = an.tensor(np.ones(2))
    optimiser = an.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    step = an.replay(lambda x: (model(x) ** 2).sum())
    x = np.arange(6.0).reshape(2, 3)
    for _ in range(5):
        optimiser.zero_grad()
        model.last_loss = step(x)
        optimiser.step()
        model.unused.data = model.unused.data * 2.0
    assert step.recorded == 1


def test_recording_at_every_call_warns_naming_what_changed():
    # A functional-style update that replaces the parameter at each call: correct, but every call
    # records again, which is slower than eager mode; the warning says which tensor changes.
    m = Scale(an.tensor([1.0, 1.0], requires_grad=True))
    step = an.replay(lambda x: m(x))
    x = np.array([1.0, 3.0])
    with pytest.warns(RuntimeWarning, match=r"the latest because m\.w is another object"):
        for i in range(replay_module.MAX_RECORDINGS + 1):
            assert step(x).item() == 4.0 * (i + 1)
            m.w = an.tensor(m.w.data + 1.0, requires_grad=True)
    assert step.recorded == replay_module.MAX_RECORDINGS + 1
    assert len(step.recordings) == 1  # one key: each recording replaced the previous one


def test_the_recorded_code_shows_where_it_checks_each_tensor():
    m = Scale(an.tensor([1.0, 1.0], requires_grad=True))
    c = an.tensor([2.0, 2.0])
    step = an.replay(lambda x: m(x * c))
    step(np.ones(2))
    for comment in ("# m\n", "# m.w\n", "# c\n"):
        assert comment in step.source


def test_threads_replaying_one_step_into_a_shared_parameter_lose_no_gradient(
    frequent_switches,
):
    x = np.arange(6.0).reshape(2, 3)
    w = an.tensor(np.zeros((3, 2)), requires_grad=True)
    step = an.replay(lambda x: (x @ w).sum())  # recorded by whichever thread comes first
    steps = 300

    def work(_: int) -> None:
        for _ in range(steps):
            assert step(x).item() == 0.0

    on_threads(work, 8)
    # d/dw sum(x @ w) = x^T 1: the column sums of x, 3, 5 and 7, in each column, at each step
    expected = 8 * steps * np.repeat(x.sum(axis=0)[:, None], 2, axis=1)
    np.testing.assert_array_equal(w.grad.data, expected)


def test_threads_write_into_buffers_of_their_own(frequent_switches):
    # The element-wise lines write into arrays the call allocated (out=): each thread's values
    # must stay its own, equal to eager mode's for its arguments.
    w = an.tensor(np.linspace(-1, 1, 64), requires_grad=True)

    def loss_fn(x):
        return (an.tanh(an.sigmoid(x * w) * x) * 3.0).sum()

    step = an.replay(loss_fn)
    xs = [np.linspace(-2, 2, 64) * (i + 1) for i in range(8)]
    expected = [loss_fn(an.tensor(x)).data for x in xs]
    step(xs[0])
    assert "out=" in step.source

    def work(i: int) -> None:
        for _ in range(200):
            np.testing.assert_array_equal(step(xs[i]).data, expected[i])

    on_threads(work, 8)


def test_threads_sharing_the_recordings_of_several_shapes(frequent_switches, monkeypatch):
    # More shapes than recordings kept: threads record, keep and drop recordings at once.
    monkeypatch.setattr(replay_module, "MAX_RECORDINGS", 2)
    w = an.tensor([1.0, 2.0, 3.0], requires_grad=True)
    step = an.replay(lambda x: (x * w).sum())
    batches = [np.ones((n, 3)) for n in range(1, 6)]

    def work(i: int) -> None:
        for j in range(40):
            x = batches[(i + j) % len(batches)]
            assert step(x).item() == 6.0 * len(x)

    with pytest.warns(RuntimeWarning, match="slower than eager mode"):
        on_threads(work, 8)
    assert len(step.recordings) == 2
