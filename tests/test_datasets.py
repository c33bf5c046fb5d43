"""autonet.datasets: the shipped digits are scikit-learn's, whole, in the documented shapes."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autonet import datasets
from autonet.datasets import load_digits

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("n_class", range(1, 11))
def test_digits_equal_scikit_learns_for_every_n_class(n_class):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = load_digits(n_class=n_class)
    expected_X, expected_y = sklearn_datasets.load_digits(n_class=n_class, return_X_y=True)
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)
    assert X.dtype == expected_X.dtype and y.dtype == expected_y.dtype


def test_digits_images_equal_scikit_learns_images():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    images, _ = load_digits(return_images=True)
    np.testing.assert_array_equal(images, sklearn_datasets.load_digits().images)


def test_digits_have_the_documented_shapes_dtypes_values_and_classes():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert np.array_equal(X, np.round(X)) and X.min() == 0 and X.max() == 16
    counts = np.bincount(y)
    assert len(counts) == 10 and counts.sum() == 1797
    assert counts.min() >= 170 and counts.max() <= 190  # about 180 images of each digit
    # every image has ink and no two classes share their mean image
    assert (X.sum(axis=1) > 0).all()
    means = np.stack([X[y == digit].mean(axis=0) for digit in range(10)])
    assert len(np.unique(means.round(6), axis=0)) == 10


@pytest.mark.parametrize("n_class", range(1, 11))
def test_images_are_the_rows_of_X_reshaped_and_n_class_keeps_the_first_digits(n_class):
    images, y_images = load_digits(n_class=n_class, return_images=True)
    X, y = load_digits(n_class=n_class)
    assert images.shape == (len(X), 8, 8)
    np.testing.assert_array_equal(images.reshape(len(X), 64), X)
    np.testing.assert_array_equal(y_images, y)
    assert set(np.unique(y)) == set(range(n_class))
    everything, all_labels = load_digits()
    np.testing.assert_array_equal(X, everything[all_labels < n_class])


def test_each_call_returns_new_arrays():
    X, y = load_digits()
    X[:] = -1
    y[:] = -1
    X_again, y_again = load_digits()
    assert X_again.min() == 0 and y_again.min() == 0


@given(
    st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=11),
        st.floats(allow_nan=True),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
    )
)
def test_n_class_outside_1_to_10_or_not_an_integer_is_refused(n_class):
    with pytest.raises(ValueError, match=r"^load_digits: n_class must be an integer in 1\.\.10"):
        load_digits(n_class=n_class)


def test_the_digits_file_is_declared_as_package_data():
    """A wheel carries only the data files pyproject.toml lists: the digits file must match."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["autonet"]
    package = ROOT / "autonet"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    assert package / datasets.DIGITS_FILE in shipped
