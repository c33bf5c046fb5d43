"""What a replayed step takes from each call's values and what it would fix at recording: the
shift that keeps softmax from overflowing is recomputed; a random dropout mask cannot be, so
recording a step with dropout is refused with a clear error."""

import importlib
import warnings

import numpy as np
import pytest

import autonet as an
from autonet.nn import functional as F

replay_module = importlib.import_module("autonet.replay")  # autonet.replay is the function


def test_a_replayed_cross_entropy_shifts_by_each_calls_own_maximum():
    # log_softmax subtracts max(z) before exp so that nothing overflows. Computed from z's values
    # outside the graph, that shift would be a constant of a recording: logits 800 above the
    # recorded ones would overflow exp at the next call. As a primitive's forward it is replayed.
    w = an.tensor(np.eye(3), requires_grad=True)
    targets = np.array([0, 2, 1, 0])
    step = an.replay(lambda z: F.cross_entropy(z @ w, targets))
    step(np.zeros((4, 3)))
    logits = 800.0 + np.arange(12.0).reshape(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w.grad = None
        replayed = step(logits).data
        replayed_grad = w.grad.data
    w.grad = None
    eager = F.cross_entropy(an.tensor(logits) @ w, targets)
    eager.backward()
    assert np.isfinite(replayed) and np.array_equal(replayed, eager.data)
    assert np.array_equal(replayed_grad, w.grad.data)


@pytest.mark.parametrize("through", ["function", "module"])
def test_recording_a_step_with_dropout_is_refused(through):
    # A recording would keep the mask drawn while recording and apply it at every call: the same
    # units dropped forever, silently. It raises instead, naming what to do.
    w = an.tensor(np.ones((3, 2)), requires_grad=True)
    layer = an.nn.Dropout(0.5)

    def loss_fn(x):
        h = x @ w
        h = F.dropout(h, 0.5) if through == "function" else layer(h)
        return h.sum()

    step = an.replay(loss_fn)
    with pytest.raises(RuntimeError, match="dropout.*replay.*eval"):
        step(np.ones((4, 3)))
    layer.eval()
    if through == "module":  # without dropout the step records and replays as usual
        assert float(step(np.ones((4, 3))).data) == 24.0


def test_labels_that_change_at_every_call_keep_a_bounded_number_of_recordings():
    # Integer arguments are constants of a recording, checked by value: new labels record again.
    # The recordings kept are bounded, and a warning says why the step is slow.
    w = an.tensor(np.eye(3), requires_grad=True)
    step = an.replay(lambda z, t: F.cross_entropy(z @ w, t))
    rng = np.random.default_rng(0)
    limit = replay_module.MAX_RECORDINGS
    with pytest.warns(RuntimeWarning, match="integer arrays such as labels"):
        for _ in range(limit + 5):
            z, t = rng.normal(size=(8, 3)), rng.integers(0, 3, size=8)
            w.grad = None
            replayed = step(z, t).data
            replayed_grad = w.grad.data
            w.grad = None
            eager = F.cross_entropy(an.tensor(z) @ w, t)
            eager.backward()
            assert np.array_equal(replayed, eager.data)
            assert np.array_equal(replayed_grad, w.grad.data)
    assert len(step.recordings) == limit
