"""A Hypothesis strategy for random computation graphs, and three ways to run one.

A `Graph` is a small program over a pool of values: a few input arrays, then up to ~30 steps,
each applying one operation to earlier values of the pool (any of them, so intermediates are
reused and gradients fan out), with broadcasting, reductions, indexing, reshapes, joins and matmul.
The loss is sum_k sum(w_k * v_k) over the values no step consumed (the sinks) and the first
input, with fixed random weights w_k, so every branch of the graph feeds it.

The same program runs on three backends: autonet (the engine under test), raw NumPy in float64
(the independent oracle for finite differences) and PyTorch (when installed). Steps whose math has
a domain (log, sqrt, division, powers) apply it to a positive expression, x * x + 1/2, so a graph
stays differentiable wherever its inputs are; `pow_relu`, relu(a) ** (b * b + 2), has a base of
exactly 0 for every a < 0, where pow's gradients must take their limits (the exponent is at least
2 so that second derivatives stay finite too: below 2, d/da a^(b-1) is infinite at a = 0 and the
chain rule meets inf * 0 = nan, in PyTorch as in autonet). Kinks (relu, abs,
maximum, max) are detected when the program runs (`NumpyBackend.kinks`), not avoided.

Every axis argument is drawn in all its spellings: negative axes, permutations with negative
entries (transpose), two axes to exchange (swapaxes), reduction axes as tuples in any order, and
join axes (concatenate, stack, log_softmax) counted from either end. softplus and log_sigmoid
are steps too: smooth functions whose stable form, max(x, 0) + log1p(exp(-|x|)), has kinked parts.

`graphs(special_values=True)` draws inputs and constants from a few exact values (0, +-1/2,
+-1, +-2) instead of uniformly, so that graphs meet exact zeros, ties, zero exponents and the
kinks inside smooth composites: the points where second-order rules are most often wrong.
`with_dtype` gives the same graph in float32, and `GivenLeaves` runs it on existing leaves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import autonet as an
from autonet.nn import functional as F
from autonet.testing import shapes


def fuzz_settings(examples: int, *more_checks: HealthCheck) -> settings:
    """Hypothesis settings of a fuzz property: `examples` graphs, no deadline, and the health
    checks that graphs trip by design suppressed (they are big draws, and some are rejected for
    values out of range)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            *more_checks,
        ],
    )


MAX_SIZE = 64  # elements per value: keeps finite differences (2 runs per input element) fast
MAX_NDIM = 4

UNARY = ["neg", "exp", "tanh", "sigmoid", "relu", "abs", "log", "sqrt", "square", "cube"]
UNARY += ["softplus", "log_sigmoid"]
BINARY = ["add", "sub", "mul", "div", "maximum", "pow", "pow_relu"]
REDUCTIONS = ["sum", "mean", "max"]
SHAPING = ["reshape", "transpose", "swapaxes", "getitem", "concatenate", "stack", "matmul"]
SHAPING += ["log_softmax"]  # (an axis argument, like the joins)
# exact values for graphs(special_values=True): zeros, ties, and exponents and bases of 0 and 1
SPECIAL_VALUES = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]


@dataclass
class Step:
    """out = kind(pool[args[0]], pool[args[1]], ..., **params). A negative arg -k - 1 is the
    constant graph.constants[k] (an array that does not require grad)."""

    kind: str
    args: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    inputs: list[np.ndarray]
    requires_grad: list[bool]
    constants: list[np.ndarray]
    steps: list[Step]
    weights: dict[int, np.ndarray]  # pool index of each sink -> its weight in the loss


# -------------------------------------------------------------------------------------------
# Backends: one function per step kind, over the backend's array type.


class NumpyBackend:
    """Plain NumPy float64: the forward oracle. Records where the run stands at each kink."""

    def __init__(self) -> None:
        # one pattern per kink evaluated, in order: the side of the kink each element is on, and
        # whether it is on the kink itself (sign(x) for relu, the maxima for max)
        self.kinks: list[np.ndarray] = []
        self.ties = False  # True if some kink was hit exactly (x == 0, a == b, tied maxima)

    def leaf(self, a: np.ndarray, requires_grad: bool) -> np.ndarray:
        return a

    def constant(self, a: np.ndarray) -> np.ndarray:
        return a

    def unary(self, kind: str, x: np.ndarray) -> np.ndarray:
        if kind in ("relu", "abs"):
            self.kinks.append(np.sign(x))
            self.ties |= bool(np.any(x == 0))
        positive = x * x + 0.5
        return {
            "neg": lambda: -x,
            "exp": lambda: np.exp(x),
            "tanh": lambda: np.tanh(x),
            "sigmoid": lambda: 1 / (1 + np.exp(-x)),
            "relu": lambda: np.where(x > 0, x, 0.0),
            "abs": lambda: np.abs(x),
            "log": lambda: np.log(positive),
            "sqrt": lambda: np.sqrt(positive),
            "square": lambda: x**2,
            "cube": lambda: x**3,
            # log(1 + e^x) and log(sigmoid(x)) = -log(1 + e^-x), each to a few ulps
            "softplus": lambda: np.logaddexp(0, x),
            "log_sigmoid": lambda: -np.logaddexp(0, -x),
        }[kind]()

    def binary(self, kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if kind == "maximum":
            self.kinks.append(np.sign(a - b))  # (a - b is 0 exactly when a == b)
            self.ties |= bool(np.any(a == b))
            return np.maximum(a, b)
        if kind == "div":
            return a / (b * b + 0.5)
        if kind == "pow":
            return (a * a + 0.5) ** b
        if kind == "pow_relu":
            self.kinks.append(np.sign(a))
            self.ties |= bool(np.any(a == 0))
            return np.where(a > 0, a, 0.0) ** (b * b + 2)
        return {"add": np.add, "sub": np.subtract, "mul": np.multiply}[kind](a, b)

    def reduce(self, kind: str, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        if kind == "max":
            out = np.max(x, axis=axis, keepdims=True)
            is_max = x == out
            self.kinks.append(is_max)
            self.ties |= bool(np.any(np.sum(is_max, axis=axis) > 1))
            return out if keepdims else np.max(x, axis=axis)
        return getattr(np, kind)(x, axis=axis, keepdims=keepdims)

    def reshape(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return x.reshape(shape)

    def transpose(self, x: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
        return x.transpose(axes)

    def swapaxes(self, x: np.ndarray, axis1: int, axis2: int) -> np.ndarray:
        return x.swapaxes(axis1, axis2)

    def log_softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        # the shift by the maximum is no kink: the result does not depend on it
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))

    def getitem(self, x: np.ndarray, index: tuple) -> np.ndarray:
        return x[index]

    def concatenate(self, xs: list[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(xs, axis=axis)

    def stack(self, xs: list[np.ndarray], axis: int) -> np.ndarray:
        return np.stack(xs, axis=axis)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b

    def weighted_sum(self, v: np.ndarray, w: np.ndarray) -> Any:
        return np.sum(v * w)


class AutonetBackend:
    """The engine under test, through its public API only."""

    def leaf(self, a: np.ndarray, requires_grad: bool) -> an.Tensor:
        return an.tensor(a, requires_grad=requires_grad)

    def constant(self, a: np.ndarray) -> np.ndarray:
        return a  # an ndarray operand: wrapped by the op, never requires grad

    def unary(self, kind: str, x: an.Tensor) -> an.Tensor:
        positive = x * x + 0.5
        return {
            "neg": lambda: -x,
            "exp": lambda: an.exp(x),
            "tanh": lambda: an.tanh(x),
            "sigmoid": lambda: an.sigmoid(x),
            "relu": lambda: an.relu(x),
            "abs": lambda: an.abs(x),
            "log": lambda: an.log(positive),
            "sqrt": lambda: an.sqrt(positive),
            "square": lambda: x**2,
            "cube": lambda: x**3,
            "softplus": lambda: F.softplus(x),
            "log_sigmoid": lambda: F.log_sigmoid(x),
        }[kind]()

    def binary(self, kind: str, a: Any, b: Any) -> an.Tensor:
        a = an.as_tensor(a)
        if kind == "maximum":
            return an.maximum(a, b)
        if kind == "div":
            return a / (b * b + 0.5)
        if kind == "pow":
            return (a * a + 0.5) ** b
        if kind == "pow_relu":
            return an.relu(a) ** (b * b + 2)
        return {"add": an.add, "sub": an.sub, "mul": an.mul}[kind](a, b)

    def reduce(self, kind: str, x: an.Tensor, axis: Any, keepdims: bool) -> an.Tensor:
        return getattr(x, kind)(axis=axis, keepdims=keepdims)

    def reshape(self, x: an.Tensor, shape: tuple[int, ...]) -> an.Tensor:
        return x.reshape(shape)

    def transpose(self, x: an.Tensor, axes: tuple[int, ...] | None) -> an.Tensor:
        # the varargs spelling, x.transpose(-1, 0) (the tuple form takes the same path)
        return x.transpose() if axes is None else x.transpose(*axes)

    def swapaxes(self, x: an.Tensor, axis1: int, axis2: int) -> an.Tensor:
        return x.swapaxes(axis1, axis2)

    def log_softmax(self, x: an.Tensor, axis: int) -> an.Tensor:
        return F.log_softmax(x, axis=axis)

    def getitem(self, x: an.Tensor, index: tuple) -> an.Tensor:
        return x[index]

    def concatenate(self, xs: list[an.Tensor], axis: int) -> an.Tensor:
        return an.concatenate(xs, axis=axis)

    def stack(self, xs: list[an.Tensor], axis: int) -> an.Tensor:
        return an.stack(xs, axis=axis)

    def matmul(self, a: Any, b: Any) -> an.Tensor:
        return an.matmul(a, b)

    def weighted_sum(self, v: an.Tensor, w: np.ndarray) -> an.Tensor:
        return (an.as_tensor(v) * w).sum()


class TorchBackend:
    """PyTorch, in the inputs' dtypes, with the same conventions at kinks as autonet (relu'(0) = 0,
    |x|'(0) = 0, maximum and amax share the gradient between ties)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def leaf(self, a: np.ndarray, requires_grad: bool) -> Any:
        return self.torch.from_numpy(a.copy()).requires_grad_(requires_grad)

    def constant(self, a: np.ndarray) -> Any:
        return self.torch.from_numpy(a.copy())

    def unary(self, kind: str, x: Any) -> Any:
        t = self.torch
        positive = x * x + 0.5
        return {
            "neg": lambda: -x,
            "exp": lambda: t.exp(x),
            "tanh": lambda: t.tanh(x),
            "sigmoid": lambda: t.sigmoid(x),
            "relu": lambda: t.relu(x),
            "abs": lambda: t.abs(x),
            "log": lambda: t.log(positive),
            "sqrt": lambda: t.sqrt(positive),
            "square": lambda: x**2,
            "cube": lambda: x**3,
            # logaddexp rather than torch's softplus, which returns x itself past x = 20
            "softplus": lambda: t.logaddexp(t.zeros_like(x), x),
            "log_sigmoid": lambda: -t.logaddexp(t.zeros_like(x), -x),
        }[kind]()

    def binary(self, kind: str, a: Any, b: Any) -> Any:
        t = self.torch
        if kind == "maximum":
            return t.maximum(a, b)
        if kind == "div":
            return a / (b * b + 0.5)
        if kind == "pow":
            # base^b as exp(b log base) (the base is positive): torch's pow zeroes grad_base where
            # b == 0 with a mask, so its derivative in b there is 0 instead of 1 / base
            return t.exp(b * t.log(a * a + 0.5))
        if kind == "pow_relu":
            return t.relu(a) ** (b * b + 2)
        return {"add": t.add, "sub": t.sub, "mul": t.mul}[kind](a, b)

    def reduce(self, kind: str, x: Any, axis: Any, keepdims: bool) -> Any:
        dim = tuple(range(x.ndim)) if axis is None else axis
        if kind == "max":
            return self.torch.amax(x, dim=dim, keepdim=keepdims)
        if x.ndim == 0:  # torch's sum/mean take no dim=() on 0-d tensors the way NumPy does
            return x * 1 if kind == "sum" else x / 1
        return getattr(self.torch, kind)(x, dim=dim, keepdim=keepdims)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return x.reshape(shape)

    def transpose(self, x: Any, axes: tuple[int, ...] | None) -> Any:
        return x.permute(tuple(reversed(range(x.ndim))) if axes is None else axes)

    def swapaxes(self, x: Any, axis1: int, axis2: int) -> Any:
        return x.swapaxes(axis1, axis2)

    def log_softmax(self, x: Any, axis: int) -> Any:
        return self.torch.log_softmax(x, dim=axis)

    def getitem(self, x: Any, index: tuple) -> Any:
        return x[tuple(self.torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)]

    def concatenate(self, xs: list[Any], axis: int) -> Any:
        return self.torch.cat(xs, dim=axis)

    def stack(self, xs: list[Any], axis: int) -> Any:
        return self.torch.stack(xs, dim=axis)

    def matmul(self, a: Any, b: Any) -> Any:
        dtype = self.torch.promote_types(a.dtype, b.dtype)  # torch.matmul does not promote
        return self.torch.matmul(a.to(dtype), b.to(dtype))

    def weighted_sum(self, v: Any, w: np.ndarray) -> Any:
        return (v * self.torch.from_numpy(w)).sum()


def run(graph: Graph, backend: Any, inputs: list[np.ndarray] | None = None) -> tuple[Any, list]:
    """Evaluate the graph on a backend: (loss, pool). The pool starts with the leaves."""
    inputs = graph.inputs if inputs is None else inputs
    pool = [backend.leaf(a, r) for a, r in zip(inputs, graph.requires_grad, strict=True)]
    constants = [backend.constant(c) for c in graph.constants]
    # a random graph may overflow (exp of exp ...): such examples are compared as they come out
    # (or rejected as non-finite by the tests); NumPy's warnings about them say nothing more
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in graph.steps:
            args = [pool[a] if a >= 0 else constants[-a - 1] for a in step.args]
            pool.append(apply(step, args, backend))
        loss = None
        for i, w in graph.weights.items():
            term = backend.weighted_sum(pool[i], w)
            loss = term if loss is None else loss + term
    return loss, pool


def apply(step: Step, args: list, backend: Any) -> Any:
    kind, p = step.kind, step.params
    if kind in UNARY:
        return backend.unary(kind, *args)
    if kind in BINARY:
        return backend.binary(kind, *args)
    if kind in REDUCTIONS:
        return backend.reduce(kind, args[0], p["axis"], p["keepdims"])
    if kind in ("concatenate", "stack"):
        return getattr(backend, kind)(args, p["axis"])
    if kind == "matmul":
        return backend.matmul(*args)
    return getattr(backend, kind)(args[0], *p.values())


# -------------------------------------------------------------------------------------------
# The strategy. Shapes are tracked by running each candidate step on NumPy zeros.

small_shapes = shapes(min_dims=0, max_dims=3)


def fits(shape: tuple[int, ...]) -> bool:
    return 0 < math.prod(shape) <= MAX_SIZE and len(shape) <= MAX_NDIM


def try_shape(step: Step, shapes: list[tuple[int, ...]], constants: list[np.ndarray]) -> Any:
    """The output shape of step, or None if it is invalid or too large."""
    args = [np.zeros(shapes[a]) if a >= 0 else constants[-a - 1] for a in step.args]
    try:
        shape = np.shape(apply(step, args, NumpyBackend()))
    except (ValueError, IndexError):
        return None
    return shape if fits(shape) else None


@st.composite
def any_spelling(draw: Any, axis: int, ndim: int) -> int:
    """axis (in [0, ndim)) as itself or as its negative twin, axis - ndim."""
    return axis - ndim if draw(st.booleans()) else axis


@st.composite
def axis_params(draw: Any, ndim: int) -> dict[str, Any]:
    """axis=None, one axis, or a tuple of distinct axes in any order; each maybe negative."""
    if ndim == 0 or draw(st.booleans()):
        axis: Any = None
    elif draw(st.booleans()):
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, unique=True))
        axis = tuple(draw(any_spelling(a, ndim)) for a in axes)
    return {"axis": axis, "keepdims": draw(st.booleans())}


@st.composite
def permutation(draw: Any, ndim: int) -> tuple[int, ...] | None:
    """None (all axes reversed) or a permutation of the axes, each entry maybe negative."""
    if ndim and draw(st.integers(0, 4)) == 0:
        return None
    axes = draw(st.permutations(range(ndim)))
    return tuple(draw(any_spelling(a, ndim)) for a in axes)


@st.composite
def index_for(draw: Any, shape: tuple[int, ...]) -> tuple:
    """A NumPy index that PyTorch reads the same way: ints, positive-step slices, integer arrays
    (repeats allowed), boolean masks, None and Ellipsis; or two integer arrays on the first two
    axes, or an int after an Ellipsis."""
    if not shape:
        return draw(st.sampled_from([(None,), (Ellipsis,), (Ellipsis, None)]))
    if len(shape) >= 2 and draw(st.booleans()):
        if draw(st.booleans()):  # advanced indexing: pairs (rows[k], cols[k]), repeats allowed
            k = draw(st.integers(1, 4))
            rows = draw(st.lists(st.integers(0, shape[0] - 1), min_size=k, max_size=k))
            cols = draw(st.lists(st.integers(-shape[1], shape[1] - 1), min_size=k, max_size=k))
            return (np.array(rows), np.array(cols))
        return (Ellipsis, draw(st.integers(-shape[-1], shape[-1] - 1)))
    axis = draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    kind = draw(st.sampled_from(["int", "slice", "array", "mask", "newaxis"]))
    if kind == "int":
        item: Any = draw(st.integers(-n, n - 1))
    elif kind == "slice":
        start = draw(st.integers(0, n - 1))
        item = slice(start, draw(st.integers(start + 1, n)), draw(st.integers(1, 2)))
    elif kind == "array":
        item = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5)))
    elif kind == "mask":
        item = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        if not item.any():
            item[draw(st.integers(0, n - 1))] = True
    else:
        item = None
    return (slice(None),) * axis + (item,)


@st.composite
def reshape_target(draw: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A random shape of the same size: its prime factors dealt out to 1-3 axes, maybe a -1."""
    size, factors, p = math.prod(shape), [], 2
    while size > 1:
        while size % p == 0:
            factors.append(p)
            size //= p
        p += 1
    ndim = draw(st.integers(1, 3))
    target = [1] * ndim
    for f in factors:
        target[draw(st.integers(0, ndim - 1))] *= f
    if draw(st.booleans()):
        target[draw(st.integers(0, ndim - 1))] = -1
    return tuple(target)


@st.composite
def graphs(draw: Any, max_steps: int = 30, special_values: bool = False) -> Graph:
    """A random Graph of 1 to max_steps operations on 1 to 3 inputs; with special_values, the
    inputs and constants are drawn from SPECIAL_VALUES rather than uniformly from [-2, 2]."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="values seed"))

    def values(shape: tuple[int, ...]) -> np.ndarray:
        if special_values:
            return np.asarray(rng.choice(SPECIAL_VALUES, size=shape), dtype=np.float64)
        return np.asarray(rng.uniform(-2, 2, size=shape))

    input_shapes = draw(st.lists(small_shapes, min_size=1, max_size=3), label="input shapes")
    inputs = [values(s) for s in input_shapes]
    requires_grad = [True] + [draw(st.booleans()) for _ in input_shapes[1:]]
    shapes: list[tuple[int, ...]] = list(input_shapes)
    constants: list[np.ndarray] = []
    steps: list[Step] = []
    n_steps = draw(st.integers(1, max_steps), label="steps")
    for _ in range(n_steps):
        x = draw(st.integers(0, len(shapes) - 1))
        shape = shapes[x]
        kind = draw(st.sampled_from(UNARY + BINARY + REDUCTIONS + SHAPING))
        candidates: list[Step] = []
        new_constant: list[np.ndarray] = []  # the constant the candidates may use, if any
        if kind in UNARY:
            candidates = [Step(kind, (x,))]
        elif kind in REDUCTIONS:
            candidates = [Step(kind, (x,), draw(axis_params(len(shape))))]
        elif kind == "reshape":
            candidates = [Step(kind, (x,), {"shape": draw(reshape_target(shape))})]
        elif kind == "transpose":
            candidates = [Step(kind, (x,), {"axes": draw(permutation(len(shape)))})]
        elif kind in ("swapaxes", "log_softmax"):
            if shape:
                n = len(shape)
                params = (
                    {"axis1": draw(st.integers(-n, n - 1)), "axis2": draw(st.integers(-n, n - 1))}
                    if kind == "swapaxes"
                    else {"axis": draw(st.integers(-n, n - 1))}
                )
                candidates = [Step(kind, (x,), params)]
        elif kind == "getitem":
            candidates = [Step(kind, (x,), {"index": draw(index_for(shape))})]
        else:
            # a second operand: any value of the pool that fits (x itself included), or else a
            # constant of a shape that broadcasts against x
            others = list(range(len(shapes)))
            draw(st.randoms()).shuffle(others)
            constant_shape = draw(
                st.sampled_from(
                    [shape, shape[1:], (1,) + shape[1:], shape[:-1] + (1,) if shape else ()]
                )
            )
            if kind == "matmul" and shape:
                constant_shape = (shape[-1], draw(st.integers(1, 3)))
            constant_shape = tuple(constant_shape)
            others.append(-len(constants) - 1)
            # the join's axis, counted from either end: concatenate's among x's axes, stack's
            # among the result's (one more)
            n = len(shape) + (kind == "stack")
            params = {"axis": draw(st.integers(-n, max(n - 1, 0)))}
            for y in others[:8]:
                if kind in BINARY:
                    order = (x, y) if draw(st.booleans()) else (y, x)
                    candidates.append(Step(kind, order))
                elif kind == "matmul":
                    candidates.append(Step(kind, (x, y)))
                else:
                    candidates.append(Step(kind, (x, y), params))
            new_constant = [values(constant_shape)]
        for step in candidates:
            out = try_shape(step, shapes, constants + new_constant)
            if out is not None:
                if any(a < 0 for a in step.args) and -min(step.args) - 1 == len(constants):
                    constants += new_constant
                steps.append(step)
                shapes.append(out)
                break
    return with_loss(inputs, requires_grad, constants, steps, shapes, rng)


def with_loss(
    inputs: list[np.ndarray],
    requires_grad: list[bool],
    constants: list[np.ndarray],
    steps: list[Step],
    shapes: list[tuple[int, ...]],
    rng: np.random.Generator,
) -> Graph:
    """The Graph of these steps, its loss weighing input 0 and every value no step consumes."""
    used = {a for step in steps for a in step.args}
    # input 0 (which requires grad) always feeds the loss, so the loss always requires grad
    sinks = [0] + [i for i in range(len(inputs), len(shapes)) if i not in used]
    weights = {i: rng.uniform(0.5, 1.5, size=shapes[i]) for i in sinks}
    return Graph(inputs, requires_grad, constants, steps, weights)


def example_graph(
    inputs: list[Any], steps: list[Step], constants: tuple = (), requires_grad: Any = None
) -> Graph:
    """A fixed Graph, for @example: the given inputs (every one requiring grad unless said) and
    steps, and a loss built as graphs() builds it (weights from a fixed seed)."""
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    constants_list = [np.asarray(c, dtype=np.float64) for c in constants]
    pool: list[Any] = list(inputs)
    for step in steps:
        args = [pool[a] if a >= 0 else constants_list[-a - 1] for a in step.args]
        pool.append(np.asarray(apply(step, args, NumpyBackend())))
    requires_grad = [True] * len(inputs) if requires_grad is None else list(requires_grad)
    shapes = [np.shape(v) for v in pool]
    return with_loss(inputs, requires_grad, constants_list, steps, shapes, np.random.default_rng(0))


def with_dtype(graph: Graph, dtype: Any) -> Graph:
    """The same graph with its inputs, constants and loss weights in dtype (values rounded)."""
    return Graph(
        [np.asarray(a).astype(dtype) for a in graph.inputs],
        graph.requires_grad,
        [np.asarray(c).astype(dtype) for c in graph.constants],
        graph.steps,
        {i: np.asarray(w).astype(dtype) for i, w in graph.weights.items()},
    )


class GivenLeaves(AutonetBackend):
    """autonet on leaves made beforehand: a graph run many times accumulates into their .grad."""

    def __init__(self, leaves: list[an.Tensor]) -> None:
        self.leaves = iter(leaves)

    def leaf(self, a: np.ndarray, requires_grad: bool) -> an.Tensor:
        return next(self.leaves)


def leaves_of(graph: Graph, dtype: Any = None) -> list[an.Tensor]:
    """Fresh autonet leaves for the graph's inputs."""
    return [
        an.tensor(np.asarray(a, dtype=dtype), requires_grad=r)
        for a, r in zip(graph.inputs, graph.requires_grad, strict=True)
    ]


def depending_on(graph: Graph, i: int) -> list[int]:
    """The pool indices of the values computed from input i (i itself included), in order."""
    reached = {i}
    for k, step in enumerate(graph.steps):
        if any(a in reached for a in step.args):
            reached.add(len(graph.inputs) + k)
    return sorted(reached)
