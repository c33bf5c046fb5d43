"""Replay writes element-wise results into the buffers of operands that die with them (out=), and
its results stay eager's, bit for bit; arrays it does not own are never written.

The generated code writes `v3 = EXP(v2, out=v2)` only where v2 is an array the code allocated
itself, laid out as the result is (shape, dtype, strides), never viewed or handed out, and read
for the last time (autonet/replay/codegen.py, buffers()). Each step below is built so that one of
these conditions decides; results are compared with eager mode with assert_array_equal (tolerance 0,
as in test_replay.py), over several calls with changing values, and the caller's arrays and the
parameters' arrays are checked unchanged by each call. REUSE_FROM_BYTES is pinned at 16 bytes
here, so that the small arrays of these steps take the path whatever the default.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from tests.fuzz import AutonetBackend, graphs, run
from tests.strategies import seed_problems
from tests.test_replay import tutorial_loss, tutorial_source

replay_module = importlib.import_module("autonet.replay")
codegen = importlib.import_module("autonet.replay.codegen")  # where buffers() reads the threshold
SMALL = 16  # bytes: arrays of 2 float64 or 4 float32 elements take the path
WRITES_INTO = re.compile(r"^\s*(\w+) = \w+\(.*, out=(\w+)\)", re.MULTILINE)


@pytest.fixture
def small_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codegen, "REUSE_FROM_BYTES", SMALL)


def snapshot(arrays: list) -> list[tuple[tuple[int, ...], str, bytes]]:
    """The shape, dtype and bytes of each array (or Tensor's array)."""
    arrays = [a.data if isinstance(a, an.Tensor) else a for a in arrays]
    return [(a.shape, a.dtype.str, a.tobytes()) for a in arrays]


def compare(
    make_loss: Callable[..., Callable[..., an.Tensor]],
    weights: list[np.ndarray],
    calls: list[tuple[np.ndarray, ...]],
) -> an.Replay:
    """make_loss(*parameters) run eagerly and replayed on each tuple of arguments in calls, from
    the same weights, with an SGD update after each call so that the parameters change too.
    Asserts the losses and the gradients equal bit for bit, the arguments and the parameters'
    arrays unchanged by each call, and the .grad arrays of a call unchanged by the next."""
    params = [[an.tensor(w.copy(), requires_grad=True) for w in weights] for _ in range(2)]
    eager_fn, replay_fn = (make_loss(*p) for p in params)
    step = an.replay(replay_fn)
    previous: list[tuple[np.ndarray, bytes]] = []  # the last call's .grad arrays and their bytes
    for args in calls:
        before = snapshot(list(args))
        results = []
        for replayed, ps in ((False, params[0]), (True, params[1])):
            for p in ps:
                p.grad = None
            data = snapshot([p.data for p in ps])
            if replayed:
                loss = step(*args)
            else:
                loss = eager_fn(*args)
                loss.backward()
            assert snapshot([p.data for p in ps]) == data, "a parameter's array was written"
            results.append((loss, [p.grad.data for p in ps]))
        assert snapshot(list(args)) == before, "an argument was written"
        (eager_loss, eager_grads), (loss, grads) = results
        assert loss.dtype == eager_loss.dtype
        np.testing.assert_array_equal(loss.data, eager_loss.data)
        for g, eager_g in zip(grads, eager_grads, strict=True):
            assert g.dtype == eager_g.dtype and g.shape == eager_g.shape
            np.testing.assert_array_equal(g, eager_g)
        for g, data in previous:
            assert g.tobytes() == data, "a gradient handed to .grad was written by the next call"
        previous = [(g, g.tobytes()) for g in grads]
        for ps, gs in ((params[0], eager_grads), (params[1], grads)):
            for p, g in zip(ps, gs, strict=True):
                p.data = p.data - 0.01 * g
    return step


def writes(source: str) -> dict[str, str]:
    """Each line of the code that writes into a buffer: the local it assigns -> the buffer."""
    return dict(WRITES_INTO.findall(source))


def assert_buffers_are_safe(source: str) -> None:
    """What the code says about each buffer it writes into: a local the code computed (v or g,
    never an argument t/a, a parameter p or a constant c), read by no later line, and never
    viewed, handed to .grad or returned anywhere."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        match = WRITES_INTO.match(line)
        if match is None:
            continue
        buffer = match.group(2)
        assert re.fullmatch(r"[vg][0-9]+", buffer), line
        word = re.compile(rf"\b{buffer}\b")
        later = [x for x in lines[number + 1 :] if not x.lstrip().startswith("del ")]
        assert not any(word.search(x) for x in later), f"{buffer} is read after {line!r}"
        for x in lines:
            if word.search(x):
                assert not re.search(rf"\b{buffer}\.(swapaxes|transpose|reshape|T\b)", x), x
                assert "accumulate_grad" not in x and "return" not in x, x


# ---------------------------------------------------------------------------------------------
# The tutorial's step


@settings(max_examples=15, deadline=None)
@given(problem=seed_problems(m=(4, 9), n=(1, 4), p=(4, 7), dtypes=(np.float64, np.float32)))
def test_tutorial_step_with_buffers_equals_eager_bit_for_bit(problem):
    S, Y, w0, w1, rng = problem
    calls = [(S, Y)] + [
        (rng.normal(size=S.shape).astype(S.dtype), rng.random(Y.shape).astype(Y.dtype))
        for _ in range(2)
    ]
    weights = [w0, w1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codegen, "REUSE_FROM_BYTES", SMALL)
        step = compare(tutorial_loss, weights, calls)
    assert len(step.recordings) == 1
    assert writes(step.source)  # the hidden layer (m x p, at least 16 elements) takes the path
    assert_buffers_are_safe(step.source)


def test_tutorial_source_shows_out_where_expected(small_buffers):
    source = tutorial_source(0, m=8, n=3, p=8, k=2)
    backward = source[source.index("grad of input") :]
    # each sigmoid of the forward pass is one call (scipy's expit, in a forward that branches on
    # values, so it is called rather than traced); the loss's (O - Y) is the square's gradient
    # (0.5 * 2 * (O - Y): times constant ones, no line) and dies in sigmoid's, in place
    assert len(re.findall(r"= SIGMOID\(v\d+\)", source)) == 2
    assert re.search(r"= MULTIPLY\((v\d+), g\d+, out=\1\)", backward)
    # the backward pass: the hidden layer's g @ syn1^T times sigmoid's H * (1 - H), in place
    assert re.search(r"= MULTIPLY\((g\d+), g\d+, out=\1\)", backward)
    assert "!= STRIDES" in source  # layouts checked, as the buffers assume them
    assert_buffers_are_safe(source)
    # what the hidden layer's output holds, viewed for syn1's gradient, is never written into
    viewed = re.findall(r"= (v\d+)\.swapaxes", source)
    assert viewed and not set(viewed) & set(writes(source).values())


def one_layer(w: an.Tensor) -> Callable[[np.ndarray], an.Tensor]:
    return lambda S: an.sigmoid(S @ w).sum()


def test_arrays_below_the_threshold_are_not_written_into():
    # The default threshold: a one-element array is computed afresh (there, out= costs more time
    # than the allocation it saves), and then the code is what it is without buffers; an array
    # of two float64 elements is written into.
    rng = np.random.default_rng(1)
    sources = []
    for m in (1, 2):
        calls = [(rng.normal(size=(m, 3)),) for _ in range(2)]
        sources.append(compare(one_layer, [rng.uniform(-1, 1, (3, 1))], calls).source)
    assert "out=" not in sources[0] and "STRIDES" not in sources[0]
    assert writes(sources[1]) and "!= STRIDES" in sources[1]
    assert codegen.REUSE_FROM_BYTES == 16


# ---------------------------------------------------------------------------------------------
# Where a buffer must not be written into


def viewed(w: an.Tensor) -> Callable[[np.ndarray], an.Tensor]:
    def loss_fn(S):
        h = S @ w  # allocated by the code
        v = h.T  # a view of h, read after
        n = -h  # h's last use: element-wise, same shape, yet writing into h would change v
        return (n @ v).sum()  # (v computed first: see the test)

    return loss_fn


def arguments_and_parameters(w: an.Tensor) -> Callable[..., an.Tensor]:
    def loss_fn(S, Y, X):
        # the last use of each of S, w, X (an argument that requires grad), Y is element-wise
        return ((-S) * (-w) * an.exp(-X) - Y).sum()

    return loss_fn


def closed_over_constant(w: an.Tensor) -> Callable[[np.ndarray], an.Tensor]:
    C = an.tensor(np.linspace(-1, 1, 24).reshape(4, 6))  # a constant of the recording

    def loss_fn(S):
        return (-(C * (S @ w)) * C).sum()

    return loss_fn


def a_view(w: an.Tensor) -> Callable[[np.ndarray], an.Tensor]:
    def loss_fn(S):
        h = an.exp(S @ w)  # allocated, read again by exp's gradient
        r = h.reshape(6, 4)  # a view of h: not an array of its own
        return (-r).sum()  # r's last use: writing into r would write into h

    return loss_fn


def broadcasting(w: an.Tensor, b: an.Tensor, u: an.Tensor) -> Callable[[np.ndarray], an.Tensor]:
    def loss_fn(S):
        h = S @ w  # (10, 12)
        c = -b  # (1, 12) allocated, dies in the sum below, which is larger: no out=c (its
        # strides are those of the sum, (96, 8): only the shapes tell them apart)
        z = an.exp(c + h)
        d = -(S @ u)  # (10, 1) allocated, dies in the sum below: no out=d
        return (z + d).sum()

    return loss_fn


def mixed_dtypes(w: an.Tensor) -> Callable[[np.ndarray, np.ndarray], an.Tensor]:
    def loss_fn(S, V):
        u = S * w  # allocated, dies in the product with V, of the dtype of S
        return an.sigmoid(u * V).sum()  # the product: of the wider dtype of S and V

    return loss_fn


def layouts(w: an.Tensor) -> Callable[[np.ndarray, np.ndarray], an.Tensor]:
    def loss_fn(S, V):
        u = -S  # laid out as S is (F-ordered S: F-ordered u)
        y = u * V  # u dies here: NumPy lays y out by u's and V's layouts (F and C: C)
        # y summed in memory order: its bits depend on y's layout; w's gradient, 2 w + 2 w, is
        # written in place whatever the arguments' layouts
        return y.sum() + 2.0 * (w * w).sum()

    return loss_fn


def test_a_viewed_array_is_not_written_into(small_buffers):
    rng = np.random.default_rng(2)
    step = compare(
        viewed, [rng.normal(size=(3, 6))], [(rng.normal(size=(5, 3)),) for _ in range(3)]
    )
    # the view of h comes first, then -h, the last use of h, then the view is read
    view, h = re.search(r"(v\d+) = TRANSPOSE\((v\d+)", step.source).groups()
    assert re.search(rf"= NEGATIVE\({h}\)  # neg\n.*\b{view}\b", step.source)
    assert_buffers_are_safe(step.source)


def test_arguments_and_parameters_are_never_written_into(small_buffers):
    rng = np.random.default_rng(3)
    calls = [
        (
            rng.normal(size=(4, 6)),
            rng.normal(size=(4, 6)),
            an.tensor(rng.normal(size=(4, 6)), requires_grad=True),
        )
        for _ in range(3)
    ]
    step = compare(arguments_and_parameters, [rng.normal(size=(4, 6))], calls)
    assert writes(step.source)  # -S * -w and exp(-X): computed arrays are written into
    assert_buffers_are_safe(step.source)


def test_a_constant_is_never_written_into(small_buffers):
    rng = np.random.default_rng(4)
    step = compare(
        closed_over_constant,
        [rng.normal(size=(3, 6))],
        [(rng.normal(size=(4, 3)),) for _ in range(3)],
    )
    assert writes(step.source)
    assert_buffers_are_safe(step.source)


def test_a_view_is_not_written_into(small_buffers):
    rng = np.random.default_rng(9)
    step = compare(
        a_view, [rng.normal(size=(3, 6))], [(rng.normal(size=(4, 3)),) for _ in range(3)]
    )
    assert_buffers_are_safe(step.source)


def test_a_smaller_operand_is_not_written_into(small_buffers):
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=(3, 12)), rng.normal(size=(1, 12)), rng.normal(size=(3, 1))]
    step = compare(broadcasting, weights, [(rng.normal(size=(10, 3)),) for _ in range(3)])
    assert writes(step.source)  # c + h into h's buffer
    assert_buffers_are_safe(step.source)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float64), (np.float64, np.float32)])
def test_an_operand_of_another_dtype_is_not_written_into(small_buffers, dtypes):
    rng = np.random.default_rng(6)
    s_dtype, v_dtype = dtypes
    calls = [
        (rng.normal(size=(4, 6)).astype(s_dtype), rng.normal(size=(4, 6)).astype(v_dtype))
        for _ in range(3)
    ]
    step = compare(mixed_dtypes, [rng.normal(size=(4, 6)).astype(s_dtype)], calls)
    # float64 S: u * V into u's buffer; float32 S: no out=u, the product is float64
    assert ("= MULTIPLY(v0, t1, out=v0)" in step.source) == (s_dtype == np.float64)
    assert_buffers_are_safe(step.source)


def test_an_operand_of_another_dtype_of_the_same_size_is_no_buffer():
    # Strides tell float32 from float64 operands apart, not int64 from float64: the dtypes must.
    # (autonet's steps compute floats only, so such an operand is built here by hand.)
    code = replay_module.CodeWriter()
    x = replay_module.Traced(np.arange(12).reshape(3, 4), code, "v0")
    y = replay_module.Traced(np.ones((3, 4)), code, "v1")
    z = x * y
    assert code.lines[-1].elementwise.buffers == ("v1",)
    assert z.value.dtype == np.float64


def test_buffers_follow_the_layouts_of_the_arguments(small_buffers):
    # An F-ordered S gives an F-ordered u, and u * V (V C-ordered) a C-ordered y in NumPy: y
    # cannot be written into u. A recording made for C-ordered arguments writes y into u, so it
    # checks the strides of its arguments, and records again for other ones.
    rng = np.random.default_rng(7)

    def argument(order):
        return np.asarray(rng.normal(size=(16, 16)).astype(np.float32), order=order)

    recorded, record = [], replay_module.record_step

    def record_step(*args):
        recorded.append(record(*args))
        return recorded[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(replay_module, "record_step", record_step)
        calls = [(argument(s), argument("C")) for s in "CCFCF"]
        step = compare(layouts, [rng.normal(size=(16, 16)).astype(np.float32)], calls)
    assert len(recorded) == 4  # the first call, then each change of layout
    y_into_u = re.compile(r"= MULTIPLY\((v\d+), t1, out=\1\)")
    assert [bool(y_into_u.search(r.source)) for r in recorded] == [True, False, True, False]
    assert_buffers_are_safe(step.source)


# ---------------------------------------------------------------------------------------------
# Random graphs, and the premise


@settings(max_examples=25, deadline=None)
@given(
    graph=graphs(max_steps=15),
    seed=st.integers(0, 2**32 - 1),
    float32=st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_random_graphs_with_buffers_equal_eager_bit_for_bit(graph, seed, float32):
    # Random programs through every kind of operation (tests/fuzz.py), their inputs the step's
    # arguments (those with requires_grad receive gradients), float32 or float64 at random, any
    # array of 16 bytes or more written into where the analysis allows it; later calls get other
    # values, drawn from a few so that kinks and ties are common.
    rng = np.random.default_rng(seed)

    class GivenLeaves(AutonetBackend):
        def __init__(self, leaves):
            self.leaves = iter(leaves)

        def leaf(self, a, requires_grad):
            return next(self.leaves)

    def loss_fn(*leaves):
        return run(graph, GivenLeaves(leaves))[0]

    dtypes = [np.float32 if f else np.float64 for f in float32[: len(graph.inputs)]]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codegen, "REUSE_FROM_BYTES", SMALL)
        step = an.replay(loss_fn)
        for call in range(3):
            arrays = [
                (a if call == 0 else rng.integers(-2, 3, size=a.shape) / 2).astype(d)
                for a, d in zip(graph.inputs, dtypes, strict=True)
            ]
            before = snapshot(arrays)
            results = []
            for replayed in (False, True):
                leaves = [
                    an.tensor(a, requires_grad=r)
                    for a, r in zip(arrays, graph.requires_grad, strict=True)
                ]
                with np.errstate(all="ignore"):  # exp of exp ... may overflow, alike in both
                    if replayed:
                        loss = step(*leaves)
                    else:
                        loss = loss_fn(*leaves)
                        if not loss.requires_grad:
                            return  # nothing to differentiate: replay refuses such a step
                        loss.backward()
                results.append((loss, leaves))
            assert snapshot(arrays) == before
            (eager_loss, eager_leaves), (loss, leaves) = results
            assert loss.dtype == eager_loss.dtype
            np.testing.assert_array_equal(loss.data, eager_loss.data)
            for leaf, eager_leaf in zip(leaves, eager_leaves, strict=True):
                if eager_leaf.grad is None:
                    assert leaf.grad is None
                else:
                    assert leaf.grad.dtype == eager_leaf.grad.dtype
                    np.testing.assert_array_equal(leaf.grad.data, eager_leaf.grad.data)
    assert len(step.recordings) == 1
    assert "_RULE_" not in step.source  # every rule traced down to NumPy operations
    assert_buffers_are_safe(step.source)


FLOAT_UFUNCS = sorted(
    (
        u
        for u in vars(np).values()
        if isinstance(u, np.ufunc)
        and u.nout == 1
        and u.signature is None
        and any(t in u.types for t in ("d->d", "dd->d", "f->f", "ff->f"))
    ),
    key=lambda u: u.__name__,
)


@pytest.mark.parametrize("ufunc", FLOAT_UFUNCS, ids=lambda u: u.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_ufunc_computed_in_place_gives_the_same_bits(ufunc, dtype):
    # The premise of out=: NumPy computes each element alike into a new array or into the
    # operand's own (contiguous, long enough for its vector loops, and with a tail).
    rng = np.random.default_rng(8)
    operands = [rng.uniform(-3, 3, 1027).astype(dtype) for _ in range(ufunc.nin)]
    operands[-1][:4] = [0.0, -0.0, 0.5, 2.0]
    with np.errstate(all="ignore"):
        expected = ufunc(*operands)
        if expected.dtype != dtype:
            pytest.skip(f"{ufunc.__name__} gives {expected.dtype}")
        for i in range(ufunc.nin):
            copies = [a.copy() for a in operands]
            result = ufunc(*copies, out=copies[i])
            assert result is copies[i]
            assert result.tobytes() == expected.tobytes(), (ufunc.__name__, i)
