"""Empty inputs give the results NumPy and PyTorch give, with gradients of their shape; only what
has no answer (the maximum or mean of nothing) raises a ValueError that says so."""

from __future__ import annotations

import numpy as np
import pytest

import autonet as an
from autonet.nn import functional as F

CASES = {
    # found by review: these three raised where NumPy and PyTorch return empty results
    "max over a full axis of an empty tensor": (
        (0, 3),
        lambda t: t.max(axis=1),
        lambda a: a.max(axis=1),
    ),
    "log_softmax over an empty axis": ((3, 0), lambda t: F.log_softmax(t), lambda a: a),
    "an empty index list": ((3,), lambda t: t[[]], lambda a: a[[]]),
    "sum": ((0, 3), lambda t: t.sum(axis=0), lambda a: a.sum(axis=0)),
    "matmul": ((0, 3), lambda t: t @ an.tensor(np.ones((3, 2))), lambda a: a @ np.ones((3, 2))),
    "transpose": ((0, 3), lambda t: t.transpose(-1, 0), lambda a: a.T),
    "concatenate": ((0, 3), lambda t: an.concatenate([t, t], axis=-2), lambda a: a),
    "softplus": ((2, 0), lambda t: F.softplus(t), lambda a: a),
    "cumsum": ((0, 3), lambda t: an.cumsum(t, axis=-1), lambda a: a),
    "prod over an empty axis": ((0, 3), lambda t: t.prod(axis=0), lambda a: a.prod(axis=0)),
    "pad": ((0, 2), lambda t: an.pad(t, 1), lambda a: np.pad(a, 1)),
    "einsum": ((0, 3), lambda t: an.einsum("ij,jk->ik", t, np.ones((3, 2))), lambda a: a[:, :2]),
}


@pytest.mark.parametrize("shape, function, reference", CASES.values(), ids=CASES.keys())
def test_empty_inputs_give_empty_results_and_gradients(shape, function, reference):
    x = an.tensor(np.ones(shape), requires_grad=True)
    out = function(x)
    assert out.shape == reference(np.ones(shape)).shape
    out.sum().backward()
    assert x.grad.shape == shape
    np.testing.assert_array_equal(x.grad.data, np.zeros(shape))


def test_what_has_no_answer_raises():
    with pytest.raises(ValueError, match="cannot take the maximum over an empty axis"):
        an.tensor(np.ones((0, 3))).max(axis=0)
    with pytest.raises(ValueError, match="no elements to average"):
        an.tensor(np.ones((0, 3))).mean(axis=0)
