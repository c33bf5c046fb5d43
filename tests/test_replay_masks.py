"""A replayed step computes its masks (comparisons, argmax, casts of what it computes) and what
it computes under no_grad again at each call, and gives them no gradient: a recording that froze
the first call's mask gave other calls wrong losses and gradients without a word. An index
computed from the step's values, which a recording cannot follow, is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autonet as an

values = hnp.arrays(np.float64, 3, elements=st.floats(-2, 2).filter(lambda v: abs(v) > 1e-3))


def masked_loss(x, w):
    z = x * w
    kept = an.where(z > 0, z, 0 * z).sum()  # a mask from the step's values
    small = (z * (z < 0.5).astype(float)).sum()  # a mask cast to floats
    first = (z * (z.argmax() == an.arange(3))).sum()  # argmax of the step's values
    with an.no_grad():
        scale = (z * z).sum()  # a value of the step that gets no gradient
    return kept + small + first + (x * (x >= 0)).sum() + (z * scale).sum()


@settings(max_examples=15, deadline=None)
@given(st.lists(values, min_size=2, max_size=4), values)
def test_replayed_masks_follow_each_calls_values(xs, w0):
    w = an.tensor(w0, requires_grad=True)
    step = an.replay(lambda x: masked_loss(x, w))
    for x in xs:
        w.grad = None
        replayed = step(x).item()
        replayed_grad = w.grad.data.copy()
        w.grad = None
        eager = masked_loss(an.tensor(x), w)
        eager.backward()
        assert replayed == eager.item()
        np.testing.assert_array_equal(replayed_grad, w.grad.data)


def test_an_index_computed_from_the_steps_values_is_refused():
    w = an.tensor([1.0, -1.0], requires_grad=True)
    step = an.replay(lambda x: (x * w)[(x * w) > 0].sum())
    with pytest.raises(an.ValuesNeededError, match="replay: an index .* computed from the step"):
        step(np.array([1.0, 1.0]))
