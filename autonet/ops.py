"""The NumPy/torch-style functions of autonet: an.add, an.exp, an.sum, an.concatenate, ...

Each takes Tensors, arrays or numbers and returns a Tensor; each is the method of the same name
(`an.exp(x)` is `an.tensor(x).exp()`), a primitive of the table applied directly, or a composite
of primitives (its docstring says which). The constructors at the end (zeros, ones, rand, ...)
make new leaf tensors.
"""

from __future__ import annotations

import builtins
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from autonet.primitives import PRIMITIVES
from autonet.tensor import Tensor, as_operand, normalize_axis, record


def tensor(
    data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None
) -> Tensor:
    """A new leaf tensor holding a copy of data (same as Tensor(...), as torch.tensor)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def add(a: Any, b: Any) -> Tensor:
    """a + b with broadcasting."""
    return as_tensor(a) + b


def sub(a: Any, b: Any) -> Tensor:
    """a - b with broadcasting."""
    return as_tensor(a) - b


def mul(a: Any, b: Any) -> Tensor:
    """a * b, element-wise with broadcasting (the Hadamard product)."""
    return as_tensor(a) * b


def div(a: Any, b: Any) -> Tensor:
    """a / b with broadcasting."""
    return as_tensor(a) / b


def neg(x: Any) -> Tensor:
    """-x."""
    return -as_tensor(x)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - the NumPy/torch name
    """a ** b with broadcasting."""
    return as_tensor(a) ** b


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b with numpy.matmul's rules: 1-D operands, 2-D, and batched N-D with broadcasting."""
    return as_tensor(a) @ b


def exp(x: Any) -> Tensor:
    return as_tensor(x).exp()


def log(x: Any) -> Tensor:
    return as_tensor(x).log()


def sqrt(x: Any) -> Tensor:
    return as_tensor(x).sqrt()


def sigmoid(x: Any) -> Tensor:
    return as_tensor(x).sigmoid()


def tanh(x: Any) -> Tensor:
    return as_tensor(x).tanh()


def relu(x: Any) -> Tensor:
    return as_tensor(x).relu()


def abs(x: Any) -> Tensor:  # noqa: A001 - the NumPy/torch name
    return as_tensor(x).abs()


def sign(x: Any, at_zero: float = 0.0) -> Tensor:
    return as_tensor(x).sign(at_zero=at_zero)


def maximum(a: Any, b: Any) -> Tensor:
    """Element-wise maximum with broadcasting; at ties each input receives half the gradient."""
    a = as_tensor(a)
    return record(PRIMITIVES["maximum"], (a, as_operand(b, a, "maximum")))


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return as_tensor(x).sum(axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return as_tensor(x).mean(axis=axis, keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return as_tensor(x).max(axis=axis, keepdims=keepdims)


def reshape(x: Any, shape: Any) -> Tensor:
    return as_tensor(x).reshape(shape)


def transpose(x: Any, axes: Any = None) -> Tensor:
    return as_tensor(x).transpose(axes) if axes is not None else as_tensor(x).transpose()


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis, as numpy.concatenate (torch.cat)."""
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    inputs = [as_tensor(t) for t in tensors]
    ndim = inputs[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: 0-d tensors cannot be concatenated; use stack")
    params = {"axis": axis}
    return record(PRIMITIVES["concatenate"], tuple(inputs), params)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along a new axis, as numpy.stack (torch.stack)."""
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    inputs = [as_tensor(t) for t in tensors]
    shapes = {t.shape for t in inputs}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    ndim = inputs[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis {axis} is out of range for the result's {ndim} dimensions")
    axis %= ndim
    expanded = [t.reshape(t.shape[:axis] + (1,) + t.shape[axis:]) for t in inputs]
    return concatenate(expanded, axis=axis)


# -- element-wise --------------------------------------------------------------------------------


def elementwise(name: str, x: Any) -> Tensor:
    return record(PRIMITIVES[name], (as_tensor(x),))


def sin(x: Any) -> Tensor:
    """sin(x); gradient g * cos(x)."""
    return elementwise("sin", x)


def cos(x: Any) -> Tensor:
    """cos(x); gradient -g * sin(x)."""
    return elementwise("cos", x)


def tan(x: Any) -> Tensor:
    """tan(x); gradient g * (1 + tan(x)^2) from the saved output."""
    return elementwise("tan", x)


def arcsin(x: Any) -> Tensor:
    """arcsin(x) for -1 <= x <= 1; gradient g / sqrt(1 - x^2) (inf at x = +-1)."""
    return elementwise("arcsin", x)


def arccos(x: Any) -> Tensor:
    """arccos(x) for -1 <= x <= 1; gradient -g / sqrt(1 - x^2) (-inf at x = +-1)."""
    return elementwise("arccos", x)


def arctan(x: Any) -> Tensor:
    """arctan(x); gradient g / (1 + x^2)."""
    return elementwise("arctan", x)


def sinh(x: Any) -> Tensor:
    """sinh(x); gradient g * cosh(x)."""
    return elementwise("sinh", x)


def cosh(x: Any) -> Tensor:
    """cosh(x); gradient g * sinh(x)."""
    return elementwise("cosh", x)


def log1p(x: Any) -> Tensor:
    """log(1 + x), accurate for tiny x; gradient g / (1 + x)."""
    return elementwise("log1p", x)


def expm1(x: Any) -> Tensor:
    """exp(x) - 1, accurate for tiny x; gradient g * (expm1(x) + 1) from the saved output."""
    return elementwise("expm1", x)


def log2(x: Any) -> Tensor:
    """Base-2 logarithm; gradient g / (x ln 2)."""
    return elementwise("log2", x)


def log10(x: Any) -> Tensor:
    """Base-10 logarithm; gradient g / (x ln 10)."""
    return elementwise("log10", x)


def exp2(x: Any) -> Tensor:
    """2 ** x; gradient g * 2^x * ln 2 from the saved output."""
    return elementwise("exp2", x)


def erf(x: Any) -> Tensor:
    """The error function, 2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt (scipy.special.erf);
    gradient g * 2/sqrt(pi) * exp(-x^2)."""
    return elementwise("erf", x)


def square(x: Any) -> Tensor:
    """x * x, as numpy.square: a composite, x ** 2 (the pow_scalar primitive), gradient 2 x g."""
    return as_tensor(x) ** 2


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """a where condition is true, else b, with broadcasting (numpy.where with three arguments).

    The condition is read as booleans and gets no gradient; a gets g where it was chosen, b
    where it was not (0 elsewhere, even if the branch not chosen is nan or inf there).
    """
    # numbers take the dtype of a tensor operand, as in arithmetic
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else as_tensor(a)
    cond = as_tensor(condition)
    if cond.dtype != np.bool_:
        cond = Tensor.wrap(cond.data.astype(bool))
    operands = (cond, as_operand(a, like, "where"), as_operand(b, like, "where"))
    return record(PRIMITIVES["where"], operands)


def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Tensor:
    """x limited to [a_min, a_max] (numpy.clip, torch.clamp); see Tensor.clip: at a bound the
    gradient is g (the bounds count as inside, as PyTorch), and the bounds get none."""
    return as_tensor(x).clip(a_min, a_max)


def minimum(a: Any, b: Any) -> Tensor:
    """Element-wise minimum with broadcasting; at ties each input receives half the gradient."""
    a = as_tensor(a)
    return record(PRIMITIVES["minimum"], (a, as_operand(b, a, "minimum")))


# -- reductions --------------------------------------------------------------------------------


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Smallest element over axis: a composite, -max(-x) (ties share the gradient)."""
    return as_tensor(x).min(axis=axis, keepdims=keepdims)


def var(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance, sum((x - mean)^2) / (N - ddof): a composite (see Tensor.var)."""
    return as_tensor(x).var(axis=axis, ddof=ddof, keepdims=keepdims)


def std(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Standard deviation, sqrt(var(x)): a composite."""
    return as_tensor(x).std(axis=axis, ddof=ddof, keepdims=keepdims)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Product over axis (a primitive); gradient g * (product of the others), right with zeros."""
    return as_tensor(x).prod(axis=axis, keepdims=keepdims)


def cumsum(x: Any, axis: int | None = None) -> Tensor:
    """Cumulative sum along axis (a primitive); gradient: the cumulative sum of g reversed."""
    return as_tensor(x).cumsum(axis=axis)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x), axis)) without overflow (a primitive: its forward shifts by the maximum,
    so logsumexp([1000, 1000]) = 1000 + log 2); gradient g * softmax(x)."""
    x = as_tensor(x)
    return record(PRIMITIVES["logsumexp"], (x,), {"axis": axis, "keepdims": keepdims})


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the largest element (an integer tensor outside the graph)."""
    return as_tensor(x).argmax(axis=axis, keepdims=keepdims)


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the smallest element (an integer tensor outside the graph)."""
    return as_tensor(x).argmin(axis=axis, keepdims=keepdims)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum exp(x) along axis (nn.functional.softmax: exp of the log_softmax primitive)."""
    from autonet.nn import functional

    return functional.softmax(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along axis (nn.functional.log_softmax, a primitive)."""
    from autonet.nn import functional

    return functional.log_softmax(x, axis=axis)


# -- shape ---------------------------------------------------------------------------------------


def squeeze(x: Any, axis: Any = None) -> Tensor:
    """The axes of length 1 removed (a reshape), as numpy.squeeze."""
    return as_tensor(x).squeeze(axis)


def expand_dims(x: Any, axis: int) -> Tensor:
    """A new axis of length 1 at position axis of the result (a reshape), as numpy.expand_dims."""
    return as_tensor(x).unsqueeze(axis)


def flatten(x: Any) -> Tensor:
    """The elements as a 1-D tensor (a reshape)."""
    return as_tensor(x).flatten()


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """x repeated along new or length-1 axes to shape (a primitive); the gradient sums back."""
    shape = tuple(shape) if np.iterable(shape) else (shape,)
    return record(PRIMITIVES["broadcast_to"], (as_tensor(x),), {"shape": shape})


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """x cut along axis into equal sections, or at the given indices, as numpy.split (slices:
    each piece's gradient lands on its part of x)."""
    x = as_tensor(x)
    axis = normalize_axis(axis, x, "split")
    pieces = np.split(np.arange(x.shape[axis]), indices_or_sections)
    before = (slice(None),) * axis
    starts = np.cumsum([0] + [len(p) for p in pieces])
    return [
        x[before + (slice(int(a), int(b)),)] for a, b in zip(starts[:-1], starts[1:], strict=True)
    ]


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0.0) -> Tensor:
    """x surrounded by constant_values, pad_width[i] = (before, after) elements along axis i
    (an int or one pair stands for every axis), as numpy.pad's constant mode (a primitive: the
    gradient is g with the padding sliced off)."""
    x = as_tensor(x)
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; only mode='constant' is")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (x.ndim, 2))
    params = {
        "pad_width": tuple((int(a), int(b)) for a, b in widths),
        "constant_values": constant_values,
    }
    return record(PRIMITIVES["pad"], (x,), params)


def take_along_axis(x: Any, indices: Any, axis: int | None) -> Tensor:
    """x's elements at indices along axis, as numpy.take_along_axis: an indexing (getitem), so
    the gradient adds g at the indices (a repeated index gets the sum)."""
    x = as_tensor(x)
    if not isinstance(indices, Tensor):  # (a Tensor stays one: inside vmap, a batch of indices)
        indices = np.asarray(indices)
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = normalize_axis(axis, x, "take_along_axis")
    # the other axes index themselves, broadcast against indices (as numpy.take_along_axis)
    grid = np.ogrid[tuple(slice(n) for n in x.shape)]
    index = tuple(indices if a == axis else grid[a] for a in range(x.ndim))
    return x[index]


def tile(x: Any, reps: Any) -> Tensor:
    """x repeated reps[i] times along axis i, as numpy.tile (a reshape, a broadcast_to and a
    reshape: the gradient of each element sums over its copies)."""
    x = as_tensor(x)
    reps = tuple(reps) if np.iterable(reps) else (reps,)
    ndim = builtins.max(x.ndim, len(reps))
    shape = (1,) * (ndim - x.ndim) + x.shape
    reps = (1,) * (ndim - len(reps)) + reps
    spread = x.reshape(tuple(v for n in shape for v in (1, n)))
    copies = broadcast_to(
        spread, tuple(v for r, n in zip(reps, shape, strict=True) for v in (r, n))
    )
    return copies.reshape(tuple(r * n for r, n in zip(reps, shape, strict=True)))


def repeat(x: Any, repeats: Any, axis: int | None = None) -> Tensor:
    """Each element repeated along axis, as numpy.repeat (see Tensor.repeat)."""
    return as_tensor(x).repeat(repeats, axis=axis)


# -- linear algebra ------------------------------------------------------------------------------


def explicit_subscripts(subscripts: str, shapes: Sequence[tuple[int, ...]]) -> str:
    """einsum subscripts as "s_0,...,s_k->o" with letters only: "..." replaced by letters of
    its own (right-aligned, as einsum broadcasts it) and an implicit output written out (the
    letters used once, in alphabetical order, after the ellipsis's, as numpy.einsum)."""
    subscripts = subscripts.replace(" ", "")
    inputs, arrow, output = subscripts.partition("->")
    names = inputs.split(",")
    if len(names) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(names)} operand(s), "
            f"but {len(shapes)} were given"
        )
    spare = [c for c in string.ascii_letters if c not in subscripts]
    ellipsis_ndim = builtins.max(
        [
            len(shape) - len(name) + 3
            for name, shape in zip(names, shapes, strict=True)
            if "..." in name
        ],
        default=0,
    )
    dots = "".join(spare[:ellipsis_ndim])
    for k, (name, shape) in enumerate(zip(names, shapes, strict=True)):
        if "..." in name:
            own = len(shape) - len(name) + 3
            names[k] = name.replace("...", dots[ellipsis_ndim - own :])
    if not arrow:
        letters = "".join(n.replace("...", "") for n in inputs.split(","))
        output = "..." * ("..." in inputs) + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1)
        )
    return ",".join(names) + "->" + output.replace("...", dots)


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation, as numpy.einsum (a primitive): every subscripts NumPy accepts,
    repeated letters ("ii->i", the diagonal), "..." and implicit outputs included.

    The gradient of each operand is an einsum of g with the other operands (see the table's
    einsum_vjp), so einsum differentiates to any order. optimize is not taken: the operands are
    contracted in one call, as numpy.einsum's default.
    """
    inputs = [as_tensor(x) for x in operands]
    if not inputs:
        raise ValueError("einsum: needs at least one operand")
    params = {"subscripts": explicit_subscripts(subscripts, [t.shape for t in inputs])}
    like = next((t for t in inputs if t.dtype.kind == "f"), inputs[0])
    return record(PRIMITIVES["einsum"], tuple(as_operand(t, like) for t in inputs), params)


def tensordot(a: Any, b: Any, axes: Any = 2) -> Tensor:
    """Sum of products over the last `axes` axes of a and the first of b, or over the given
    pairs of axes, as numpy.tensordot (a composite: one einsum)."""
    a, b = as_tensor(a), as_tensor(b)
    if isinstance(axes, (int, np.integer)):
        axes_a, axes_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        axes_a, axes_b = ([n] if isinstance(n, (int, np.integer)) else list(n) for n in axes)
    axes_a = [int(k) % a.ndim for k in axes_a]
    axes_b = [int(k) % b.ndim for k in axes_b]
    letters = iter(string.ascii_letters)
    name_a = [next(letters) for _ in range(a.ndim)]
    name_b = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(axes_a, axes_b, strict=True):
        name_b[j] = name_a[i]
    output = [c for k, c in enumerate(name_a) if k not in axes_a]
    output += [c for k, c in enumerate(name_b) if k not in axes_b]
    return einsum("".join(name_a) + "," + "".join(name_b) + "->" + "".join(output), a, b)


def outer(a: Any, b: Any) -> Tensor:
    """out[i, j] = a[i] * b[j] of the flattened a and b, as numpy.outer (a composite: reshapes
    and a broadcast multiply)."""
    return as_tensor(a).reshape(-1, 1) * as_tensor(b).reshape(1, -1)


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """Sum along a diagonal, as numpy.trace (a composite: an indexing and a sum)."""
    return as_tensor(x).trace(offset=offset, axis1=axis1, axis2=axis2)


# -- constructors ----------------------------------------------------------------------------------


def leaf(array: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    """A new leaf tensor holding array in dtype (float64 by default)."""
    return Tensor(array, requires_grad=requires_grad, dtype=np.float64 if dtype is None else dtype)


def zeros(shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float64 unless dtype), as numpy.zeros."""
    return leaf(np.zeros(shape), dtype, requires_grad)


def ones(shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones, as numpy.ones."""
    return leaf(np.ones(shape), dtype, requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of fill_value, as numpy.full."""
    return leaf(np.full(shape, fill_value, dtype=np.float64), dtype, requires_grad)


def eye(
    n: int, m: int | None = None, k: int = 0, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """The n x m identity (ones on diagonal k), as numpy.eye."""
    return leaf(np.eye(n, m, k), dtype, requires_grad)


def arange(*args: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, stop) with step, as numpy.arange (float64 unless dtype,
    as torch.arange of floats: a tensor that may require grad)."""
    return leaf(np.arange(*args, dtype=np.float64), dtype, requires_grad)


def linspace(
    start: float, stop: float, num: int = 50, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """num evenly spaced values from start to stop inclusive, as numpy.linspace."""
    return leaf(np.linspace(start, stop, num), dtype, requires_grad)


def zeros_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of x's shape and dtype (a new leaf, not recorded), as numpy.zeros_like."""
    x = as_tensor(x)
    return Tensor(np.zeros(x.shape, dtype or x.dtype), requires_grad=requires_grad)


def ones_like(x: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of x's shape and dtype (a new leaf), as numpy.ones_like."""
    x = as_tensor(x)
    return Tensor(np.ones(x.shape, dtype or x.dtype), requires_grad=requires_grad)


def full_like(x: Any, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """fill_value in x's shape and dtype (a new leaf), as numpy.full_like."""
    x = as_tensor(x)
    return Tensor(np.full(x.shape, fill_value, dtype or x.dtype), requires_grad=requires_grad)


def generator(rng: Any) -> np.random.Generator:
    """rng as a numpy Generator: a Generator as it is, a seed (or None) through default_rng."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def rand(*shape: int, rng: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) of shape (torch.rand's signature; rng: a numpy Generator or a
    seed, fresh entropy if None)."""
    shape = tuple(shape[0]) if len(shape) == 1 and np.iterable(shape[0]) else shape
    return leaf(generator(rng).random(shape), dtype, requires_grad)


def randn(*shape: int, rng: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples of shape (torch.randn's signature; rng as rand's)."""
    shape = tuple(shape[0]) if len(shape) == 1 and np.iterable(shape[0]) else shape
    return leaf(generator(rng).standard_normal(shape), dtype, requires_grad)
