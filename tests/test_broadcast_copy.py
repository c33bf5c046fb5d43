"""broadcast_to's forward copies small results and returns NumPy's view for large ones; both paths
give numpy.broadcast_to's values, and both refuse what numpy.broadcast_to refuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonet.primitives import BROADCAST_COPY_LIMIT, broadcast_to_forward


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 2 * BROADCAST_COPY_LIMIT),
    columns=st.integers(1, 4),
    lead=st.integers(0, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_both_paths_equal_numpy_broadcast_to(rows, columns, lead, seed):
    x = np.random.default_rng(seed).normal(size=(1, columns))
    shape = (2,) * lead + (rows, columns)
    out = broadcast_to_forward(x, shape)
    assert out.shape == shape and out.dtype == x.dtype
    assert np.array_equal(out, np.broadcast_to(x, shape))
    # small results are arrays of their own; large ones views of x that take no memory
    assert np.shares_memory(out, x) == (np.prod(shape) > BROADCAST_COPY_LIMIT)


@pytest.mark.parametrize(
    ("x_shape", "shape"),
    [((1, 3), (3,)), ((3,), (2, 2)), ((2,), (2, 4)), ((3,), (-1, 3))],
)
def test_refuses_what_numpy_refuses(x_shape, shape):
    with pytest.raises(ValueError):
        np.broadcast_to(np.ones(x_shape), shape)
    with pytest.raises(ValueError):
        broadcast_to_forward(np.ones(x_shape), shape)


def test_numbers_and_integer_shapes_as_numpy():
    assert np.array_equal(broadcast_to_forward(2.0, 3), np.broadcast_to(2.0, 3))
    assert broadcast_to_forward(np.float32(1), (2, 2)).dtype == np.float32
