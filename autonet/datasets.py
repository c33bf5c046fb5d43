"""Small data sets shipped inside autonet: no download, no scikit-learn needed.

load_digits()   the 8x8 handwritten digits: 1,797 images, 10 classes, pixels 0..16

Source and licence of the digits: the test set of the UCI Machine Learning Repository's "Optical
Recognition of Handwritten Digits" (E. Alpaydin and C. Kaynak, 1998; doi:10.24432/C50P49),
licensed CC BY 4.0, in the copy that scikit-learn ships as sklearn/datasets/data/digits.csv.gz
(scikit-learn is BSD-3-Clause). 32x32 bitmaps from NIST's preprocessing were divided into 4x4
blocks and the "on" pixels of each block counted, so each pixel is an integer in 0..16.
autonet/data/digits.npz holds the same numbers as uint8, made with

    d = sklearn.datasets.load_digits()
    np.savez_compressed("digits.npz", images=d.images.astype(np.uint8),
                        labels=d.target.astype(np.uint8))

and tests/test_datasets.py checks that they still equal scikit-learn's whenever it is installed.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

DIGITS_FILE = "data/digits.npz"


def load_digits(*, n_class: int = 10, return_images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits as (X, y), in scikit-learn's order, with its n_class option.

    X   float64 pixel counts in 0..16 (divide by 16 for [0, 1]): shape (n, 64), each row an image
        in row-major order, or (n, 8, 8) with return_images=True (ready for a conv layer after
        X[:, None], which adds the channel axis of (N, C, H, W))
    y   int64 labels in 0..n_class-1, shape (n,)

    n_class keeps the digits 0..n_class-1 (n = 1,797 for all 10, about 180 per class), as
    sklearn.datasets.load_digits(n_class=..., return_X_y=True). Each call returns new arrays.

        from autonet.datasets import load_digits
        X, y = load_digits()                      # (1797, 64), (1797,)
        images, y = load_digits(return_images=True)   # (1797, 8, 8)
    """
    if (
        isinstance(n_class, bool)
        or not isinstance(n_class, (int, np.integer))
        or not 1 <= n_class <= 10
    ):
        raise ValueError(
            f"load_digits: n_class must be an integer in 1..10 (it keeps the digits "
            f"0..n_class-1), got {n_class!r}"
        )
    with resources.files("autonet").joinpath(DIGITS_FILE).open("rb") as file, np.load(file) as data:
        images, labels = data["images"], data["labels"]
    keep = labels < n_class
    X = images[keep].astype(np.float64)
    y = labels[keep].astype(np.int64)
    return (X if return_images else X.reshape(len(X), -1)), y
