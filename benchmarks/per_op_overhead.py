"""Per-op cost of recording and of the backward pass on tiny tensors, in microseconds.

    python benchmarks/per_op_overhead.py

Times a chain of element-wise ops on 3-element float64 tensors, where the engine's bookkeeping
(not NumPy's arithmetic) dominates: `forward` is the cost of one recorded op, `backward` the cost
of one node of the backward pass. Run it before and after a change to record() or backpropagate().
"""

from __future__ import annotations

import timeit

import numpy as np

import autonet as an

CHAIN = 200


def forward(x: an.Tensor, y: an.Tensor) -> an.Tensor:
    z = x
    for _ in range(CHAIN // 2):
        z = z * y
        z = z + x
    return z


def main() -> None:
    x = an.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y = an.tensor(np.array([1.0, 0.5, 0.25]), requires_grad=True)
    repeats, number = 15, 40
    fwd = min(timeit.repeat(lambda: forward(x, y), number=number, repeat=repeats))
    both = min(timeit.repeat(lambda: forward(x, y).sum().backward(), number=number, repeat=repeats))
    per_forward = fwd / number / CHAIN * 1e6
    per_backward = (both - fwd) / number / CHAIN * 1e6
    print(f"forward  {per_forward:.3f} us per recorded op")
    print(f"backward {per_backward:.3f} us per node")


if __name__ == "__main__":
    main()
