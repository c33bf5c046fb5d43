"""What enters the graph is real: complex data and operands are refused with a TypeError, and a
cast to an integer or bool dtype leaves the graph (PyTorch's rule): nothing can back-propagate
through a rounding."""

from __future__ import annotations

import numpy as np
import pytest

import autonet as an

COMPLEX_OPERANDS = {
    "python complex": lambda x: x * 1j,
    "reflected": lambda x: 1j + x,
    "complex array": lambda x: x * np.array([1j, 2j]),
    "numpy complex scalar": lambda x: x - np.complex128(1),
    "pow": lambda x: x ** np.complex64(2),
    "maximum": lambda x: an.maximum(x, np.array([1j, 0])),
    "tensor": lambda x: an.tensor(np.array([1j, 2])),
    "data": lambda x: setattr(x, "data", np.array([1j, 2j])),
}


@pytest.mark.parametrize("make", COMPLEX_OPERANDS.values(), ids=COMPLEX_OPERANDS.keys())
def test_complex_numbers_are_refused(make):
    """Found by review: an.abs(x * 1j).sum().backward() gave a wrong sign, with only a warning."""
    x = an.tensor([1.0, -2.0], requires_grad=True)
    with pytest.raises(TypeError, match="complex numbers are not supported"):
        make(x)


def test_object_arrays_cannot_become_data():
    x = an.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="dtype object"):
        x.data = np.array([object(), object()])


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint16, np.bool_])
def test_a_cast_to_integers_or_bool_leaves_the_graph(dtype):
    """Found by review: x.astype(int64) required grad and back-propagated."""
    x = an.tensor([1.7, -2.2, 0.0], requires_grad=True)
    cast = x.astype(dtype)
    assert not cast.requires_grad and cast.op is None and cast.dtype == dtype
    y = (x * cast.astype(np.float64)).sum()  # the cast values act as constants
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.array([1.7, -2.2, 0.0]).astype(dtype))


def test_a_cast_between_float_dtypes_stays_in_the_graph():
    x = an.tensor([1.5, 2.5], requires_grad=True)
    (x.astype(np.float32) * 2).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
