"""Replayed steps recompute what eager mode computes from each call's values, including the
shifts that keep softmax from overflowing."""

import warnings

import numpy as np

import autonet as an
from autonet.nn import functional as F


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
