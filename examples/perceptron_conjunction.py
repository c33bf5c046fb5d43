"""The tutorial's Fig. 1: two perceptrons and their conjunction, as matrices and sign().

    p1(x) = sign(x1 - 1),   p2(x) = sign(1 - x2),   f(x) = sign(p1(x) + p2(x))

computed as the tutorial does, with the sample extended by a constant 1:

    [x1 x2 1] . W1 = [x1 - 1, 1 - x2]        W1 = [[1, 0], [0, -1], [-1, 1]]
    [p1 p2 1] . W2 = p1 + p2                 W2 = [[1], [1], [0]]

Two details of the tutorial are handled here, not hidden:

1. Its first matrix is misprinted. As printed, row 2 is [1, -1], which gives x1 + x2 - 1 in the
   first column, not x1 - 1. The right row is [0, -1]. Both are run below: the misprint changes
   p1 at s2 (the point x = (0, 2)), though not f at the four sample points.
2. Its f(s1) = sign(0) = -1 relies on its own definition sign(x) = 1 if x > 0 else -1, i.e.
   sign(0) = -1, where NumPy and PyTorch give sign(0) = 0. autonet offers both:
   an.sign(x) (0 at 0) and an.sign(x, at_zero=-1) (the tutorial's). With the tutorial's
   convention f(s1..s4) = -1, -1, -1, 1 as printed; with NumPy's it is 0, -1, 0, 1.

Run: python examples/perceptron_conjunction.py [--out FOLDER]  (writes perceptron_regions.png)
"""

from __future__ import annotations

import numpy as np
from common import arguments

import autonet as an
from autonet.plotting import pyplot

W1 = np.array([[1.0, 0.0], [0.0, -1.0], [-1.0, 1.0]])
W1_AS_PRINTED = np.array([[1.0, 0.0], [1.0, -1.0], [-1.0, 1.0]])
W2 = np.array([[1.0], [1.0], [0.0]])
# One point in each region of Fig. 1: s1 upper right, s2 upper left, s3 lower left, s4 lower right.
SAMPLES = np.array([[2.0, 2.0], [0.0, 2.0], [0.0, 0.0], [2.0, 0.0]])


def with_ones(x: an.Tensor) -> an.Tensor:
    """[x, 1]: the constant input that lets a matrix add an offset (the tutorial's bias trick)."""
    return an.concatenate([x, an.tensor(np.ones((x.shape[0], 1)))], axis=1)


def perceptrons(x: np.ndarray, w1: np.ndarray, at_zero: float) -> tuple[an.Tensor, an.Tensor]:
    """(P, f): P = [p1, p2] = sign([x, 1] . w1) and f = sign([P, 1] . W2), one row per sample."""
    P = an.sign(an.matmul(with_ones(an.tensor(x)), w1), at_zero=at_zero)
    f = an.sign(an.matmul(with_ones(P), W2), at_zero=at_zero)
    return P, f


def main() -> None:
    args = arguments(__doc__, "autonet-examples")
    for title, w1, at_zero in [
        ("corrected W1, tutorial's sign(0) = -1", W1, -1.0),
        ("corrected W1, NumPy's sign(0) = 0", W1, 0.0),
        ("W1 as printed (row 2 = [1, -1]), sign(0) = -1", W1_AS_PRINTED, -1.0),
    ]:
        P, f = perceptrons(SAMPLES, w1, at_zero)
        print(title)
        for i, (x, p, y) in enumerate(zip(SAMPLES, P.data, f.data[:, 0], strict=True), 1):
            print(f"  s{i} = {x}:  p1 = {p[0]:+.0f}  p2 = {p[1]:+.0f}  f = {y:+.0f}")
        print("  f(s1..s4) = " + ", ".join(f"{v:.0f}" for v in f.data[:, 0]))

    plt = pyplot("the plot of the four regions")
    if plt is None:
        return
    grid = np.linspace(-0.5, 2.5, 301)
    x1, x2 = np.meshgrid(grid, grid)
    _, f = perceptrons(np.stack([x1.ravel(), x2.ravel()], axis=1), W1, -1.0)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.contourf(
        x1, x2, f.data.reshape(x1.shape), levels=[-2, 0, 2], colors=["#f4cccc", "#cfe2f3"]
    )
    axes.axvline(1, color="k", lw=1, label="line1: x1 = 1 (p1)")
    axes.axhline(1, color="k", lw=1, ls="--", label="line2: x2 = 1 (p2)")
    for i, (a, b) in enumerate(SAMPLES, 1):
        axes.annotate(f"s{i}", (a, b), ha="center", va="center", fontsize=14)
    axes.set(xlabel="x1", ylabel="x2", title="f(x) = sign(p1 + p2): blue +1, red -1")
    axes.legend(loc="lower left", fontsize=8)
    path = args.out / "perceptron_regions.png"
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
