"""The table of primitives: every operation autonet records, its forward and its VJPs side by side.

Notation used in every rule below:

    out        the primitive's output (forward value), as saved by the forward pass
    g          dL/d(out), the gradient flowing back into this primitive, same shape as out
    a, b, x    the inputs, named as in the formula
    grad_a     dL/da = the vector-Jacobian product g^T * d(out)/da

A primitive has one VJP per input, in input order, so the engine computes the gradient of an input
only when that input needs one (no grad_S is ever formed for a data matrix S). A VJP may return a
gradient with more (broadcast) dimensions than its input: the engine sums it back to the input's
shape in one place (`unbroadcast`), so no rule handles broadcasting itself.

Rules are written in operators and methods that NumPy arrays and autonet Tensors share (`*`, `@`,
`.sum`, `.reshape`, `.swapaxes`, comparisons) and in primitives of this table called as functions
(`exp(x)`, `broadcast_to(g, shape)`). Called on arrays, a rule is plain NumPy (the fast path);
called on Tensors (``backward(create_graph=True)``) the same rule records a differentiable graph, so
higher-order derivatives need no second set of rules; called on symbols, it writes the formula
(``autonet.derive``).
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
import string
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from autonet import backend


class Kink(NamedTuple):
    """Where a primitive is not differentiable, and what its rule gives there.

    convention   the rule's value at the kink, in words ("x == 0: grad 0")
    side         node -> for each element, which side of the kink it lies on (gradcheck: two
                 points with the same sides lie on one smooth piece, so a finite difference
                 between them means something)
    """

    convention: str
    side: Callable[[Any], np.ndarray]


class Notation(NamedTuple):
    r"""How `derive` writes the primitive: a function applied to its arguments, f(x), or with
    `infix` an operator between two operands, a + b.

    text     the name or the operator, as printed ("σ", " + ")
    latex    the same in LaTeX (r"\sigma"); None for \mathrm{text}
    infix    for an operator, how tightly it binds: "sum", "product" or "matmul"
    strict   an operator whose right operand of the same binding needs parentheses (a − (b − c))
    bare     params that read well without their keyword: reshape(x, (4, 1))
    omitted  (param, value) pairs not worth printing, as a default: sign's at_zero=0
    """

    text: str
    latex: str | None = None
    infix: str | None = None
    strict: bool = False
    bare: tuple[str, ...] = ()
    omitted: tuple[tuple[str, Any], ...] = ()


class Standard(NamedTuple):
    """A forward that is the Array API standard's function `name` in the inputs' namespace
    (numpy.exp for ndarrays, torch.exp for torch tensors); `numpy`, if given, is a faster NumPy
    function computing the same (numpy.add.reduce for sum: no Python-level dispatch)."""

    name: str
    numpy: Callable[..., Any] | None = None


class InNamespace(NamedTuple):
    """A forward written against the namespace of its inputs: rule(xp, *inputs, **params), with xp
    the Array API namespace of the arrays (backend.namespace_of). `numpy`, if given, is NumPy's
    faster road to the same result, taken for ndarrays (scipy's expit, strided views, add.at):
    the rule is then the standard composite every other library falls back on."""

    rule: Callable[..., Any]
    numpy: Callable[..., Any] | None = None


def resolve_forward(spec: Any, xp: Any) -> Callable[..., Any]:
    """The function computing a forward `spec` (Standard, InNamespace or a plain function of
    arrays: a user's primitive, applied to any array as it is) on namespace xp's arrays."""
    if type(spec) is Standard:
        if xp is np and spec.numpy is not None:
            return spec.numpy
        return getattr(xp, spec.name)
    if type(spec) is InNamespace:
        if xp is np and spec.numpy is not None:
            return spec.numpy
        return functools.partial(spec.rule, xp)
    return spec


class Primitive:
    """One differentiable operation: a forward and one vector-Jacobian product per input, with
    every fact the tools need about it.

    forward(*inputs, **params) -> out          inputs are arrays; params are static (axis=...)
    vjps[i](g, out, *inputs, **params) -> grad_i

    The forward is given as a function of arrays, as the standard's function of that name
    (Standard("exp")), or as a rule of the arrays' namespace (InNamespace): `forward` is then
    NumPy's, and `forward_in(xp)` the one for the arrays of namespace xp (backend.py).

    A VJP of None marks an input without a gradient (an index, a condition): the engine never
    asks for one. A variadic primitive (concatenate) has a single rule taking the input's position
    first: vjps[0](i, g, out, *inputs, **params).

    The facts, each a keyword (the engine, gradcheck, derive, replay and the drawing read them
    here, never from a list of names of their own; tests/test_table.py checks each is declared):

        elementwise   out[i] depends on the inputs' elements at i only, after broadcasting
        commutative   two inputs whose order does not change out (a + b = b + a)
        axis_param    the param holding axes of the first input: None, an int or a tuple of ints
                      as NumPy takes them, or with `permutation=True` an order of all the axes
                      (numpy.transpose's). Recording checks it and wraps negative axes once
                      (tensor.normalize_axis), so no rule meets a negative axis.
        kink          where the primitive is not differentiable (a Kink), None if nowhere
        notation      how derive writes it (a Notation); by default a function named `name`
        explain       (inputs, params, exc) -> the error to raise when NumPy refuses the inputs,
                      naming shapes and the fix; by default NumPy's message with shapes and dtypes
        saves         the values the VJPs read, by their names in the VJP's signature: "out" and
                      the inputs' ("a b"; a variadic primitive's *xs: "xs"); "" for none. A VJP
                      may still read the others' shapes and dtypes. None (a user's primitive's
                      default): all of them. The backward pass frees the inputs that no VJP
                      will read (engine.release_unread), as PyTorch keeps only the tensors an op
                      saved; a variadic primitive's inputs are kept
        batch         vmap's rule for a primitive that is neither element-wise nor a one-input
                      op on axes (those two follow from the facts above):
                      batch(k, batched, *inputs, **params) -> the outputs of every example at
                      once, where a batched input carries k leading batch axes (length 1 where
                      it is not mapped: they broadcast) and an unbatched one is one example's
                      array (see "Batching rules" below; without one, vmap loops and warns)

    Calling a primitive applies it: to ndarrays it returns the forward value; if any argument is a
    Tensor (or another kind that defines ``apply_primitive``, such as derive's symbols) that kind
    records the call. This is also how users add their own differentiable operations::

        cube = an.Primitive("cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
        y = cube(an.tensor([1.0, 2.0], requires_grad=True))
    """

    __slots__ = (
        "name",
        "forward",
        "forward_spec",
        "forwards",
        "vjps",
        "variadic",
        "elementwise",
        "commutative",
        "axis_param",
        "permutation",
        "kink",
        "notation",
        "explain",
        "batch",
        "saves",
        "saves_out",
        "unsaved_inputs",
    )

    def __init__(
        self,
        name: str,
        forward: Callable[..., Any],
        *vjps: Callable[..., Any] | None,
        variadic: bool = False,
        elementwise: bool = False,
        commutative: bool = False,
        axis_param: str | None = None,
        permutation: bool = False,
        kink: Kink | None = None,
        notation: Notation | None = None,
        explain: Callable[..., Exception] | None = None,
        batch: Callable[..., Any] | None = None,
        saves: str | None = None,
    ) -> None:
        if not vjps:
            raise TypeError(f"Primitive {name!r} needs one VJP per input (got none)")
        self.name = name
        self.forward_spec = forward
        self.forwards = {np: resolve_forward(forward, np)}
        self.forward = self.forwards[np]
        self.vjps = vjps
        self.variadic = variadic
        self.elementwise = elementwise
        self.commutative = commutative
        self.axis_param = axis_param
        self.permutation = permutation
        self.kink = kink
        self.notation = notation if notation is not None else Notation(name)
        self.explain = explain
        self.batch = batch
        self.saves = saves
        self.saves_out, self.unsaved_inputs = parse_saves(name, saves, vjps, variadic)

    def forward_in(self, xp: Any) -> Callable[..., Any]:
        """The forward for arrays of namespace xp (made once per namespace)."""
        found = self.forwards.get(xp)
        if found is None:
            found = self.forwards[xp] = resolve_forward(self.forward_spec, xp)
        return found

    def __call__(self, *args: Any, **params: Any) -> Any:
        foreign = False
        for arg in args:
            if type(arg) is np.ndarray:  # the VJPs' fast path: skip the lookup
                continue
            kind = type(arg)
            apply = recorder_of(kind)
            if apply is not None:
                return apply(self, args, params)
            foreign = foreign or backend.is_foreign_kind(kind)
        if foreign:
            return self.forward_in(backend.namespace_of(*args, operation=self.name))(
                *args, **params
            )
        return self.forward(*args, **params)

    def __reduce_ex__(self, protocol: Any) -> Any:
        """A primitive of the table is pickled and copied by name, so that a loaded or copied graph
        holds the table's own objects (`op is PRIMITIVES[op.name]`, as derive and replay check)
        and no rule's lambda is pickled; a user's primitive is pickled as its parts."""
        if PRIMITIVES.get(self.name) is self:
            return table_primitive, (self.name,)
        return super().__reduce_ex__(protocol)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def parse_saves(
    name: str, saves: str | None, vjps: tuple, variadic: bool
) -> tuple[bool, tuple[int, ...]]:
    """A `saves` declaration as (whether the VJPs read out, the positions of the inputs they do
    not read: none for a variadic primitive or an undeclared one), its names checked against the
    first VJP's signature."""
    if saves is None:
        return True, ()
    rule = next(vjp for vjp in vjps if vjp is not None)
    names = [
        p.name
        for p in inspect.signature(rule).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ][2 + variadic :]  # after (i,) g, out: the inputs
    read = saves.split()
    unknown = set(read) - {"out", *names}
    if unknown:
        raise ValueError(
            f"Primitive {name!r}: saves names {sorted(unknown)}, which are neither 'out' nor "
            f"inputs of its VJPs ({', '.join(names)})"
        )
    if variadic:
        return "out" in read, ()
    return "out" in read, tuple(i for i in range(len(vjps)) if names[i] not in read)


@functools.cache
def recorder_of(kind: type) -> Callable[..., Any] | None:
    """kind.apply_primitive, or None for the kinds that do not record (NumPy scalars, numbers),
    looked up once per kind: a failed attribute lookup costs as much as a small NumPy call, and
    arithmetic on 0-d arrays hands the rules NumPy scalars."""
    return getattr(kind, "apply_primitive", None)


class ArrayStandIn:
    """Base of the kinds that stand in for arrays when the rules run (derive's symbols, replay's
    traced values): each carries the array it stands for in `.value` and answers from it what the
    rules ask about its layout (shape, ndim, dtype, size, len)."""

    __slots__ = ()
    value: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def dtype(self) -> np.dtype:
        return backend.numpy_dtype(self.value)  # a NumPy dtype, as Tensor.dtype

    @property
    def size(self) -> int:
        return self.value.size

    def __len__(self) -> int:
        return len(self.value)


# ---------------------------------------------------------------------------------------------
# Forward functions that are more than one NumPy call.


# -log(largest finite number) per floating dtype, below which exp(-x) overflows (stable_sigmoid):
# found once per dtype (np.finfo and np.log cost as much as the sigmoid of a small array).
EXP_OVERFLOWS_BELOW: dict[np.dtype, float] = {}


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) = 1 / (1 + exp(-x)), without overflow and with full relative precision.

    scipy.special.expit computes it in one pass (several times faster than composing NumPy
    calls), correctly rounded except where exp(-x) overflows (x < -709.78 in float64, -88.72 in
    float32): it gives 0 there, where the exact value is a subnormal number down to x = -745
    (-103.3). There 1 + exp(x) rounds to 1, so sigmoid(x) = exp(x) / (1 + exp(x)) = exp(x) to
    rounding: those elements take exp(x). (The tempting (1 + tanh(x/2)) / 2 rounds every
    x < -37 to exactly 0.)
    """
    out = np.asarray(special.expit(x))
    if out.size and out.dtype.kind == "f":
        overflows = EXP_OVERFLOWS_BELOW.get(out.dtype)
        if overflows is None:
            overflows = EXP_OVERFLOWS_BELOW[out.dtype] = -np.log(np.finfo(out.dtype).max)
        if np.minimum.reduce(x, axis=None) < overflows:  # x.min(), without its Python wrapper
            tail = x < overflows
            out[tail] = np.exp(x[tail])
    return out


def sign_with(xp: Any, x: Any, at_zero: float = 0.0) -> Any:
    """sign(x) in {-1, 0, 1}; at_zero sets the value at x == 0 (NumPy and PyTorch: 0)."""
    if at_zero == 0:
        return xp.sign(x)
    return xp.where(x == 0, xp.asarray(at_zero, dtype=x.dtype), xp.sign(x))


def softplus_forward(x: np.ndarray) -> np.ndarray:
    """softplus(x) = log(1 + exp(x)) = logaddexp(0, x), in x's floating dtype."""
    return np.logaddexp(np.zeros((), x.dtype if x.dtype.kind == "f" else np.float64), x)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """relu(x) = max(x, 0), keeping x's dtype."""
    return np.maximum(x, 0)


def scatter_add_forward(g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    """zeros(shape) with g added at index; a repeated index receives the sum of its entries."""
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return out


# Up to this many elements, broadcast_to copies (see broadcast_to_forward): the measured
# break-even with numpy.broadcast_to's view (benchmarks/README.md, "Hot paths").
BROADCAST_COPY_LIMIT = 4096


def broadcast_to_forward(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """numpy.broadcast_to(x, shape): x repeated along the axes it is broadcast over.

    A small result is written into a new array: numpy.broadcast_to's read-only view has a
    Python-level set-up (an nditer) that costs more than copying a few thousand numbers, and sum's
    VJP broadcasts the gradient of every loss this way. A large result is that view, which takes
    no memory. (Assignment would also drop leading axes of length 1, which broadcast_to refuses:
    x with more axes than `shape` goes to numpy.broadcast_to, which raises.)
    """
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if type(shape) is not tuple:
        shape = tuple(shape) if np.iterable(shape) else (shape,)
    if x.ndim > len(shape) or math.prod(shape) > BROADCAST_COPY_LIMIT:
        return np.broadcast_to(x, shape)
    out = np.empty(shape, dtype=x.dtype)
    out[...] = x
    return out


def log_softmax_forward(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(exp(x) / sum exp(x)) along axis, as (x - c) - log(sum(exp(x - c))) with c = max(x).

    With the shift every exp(x - c) <= 1 and one equals 1, so the sum neither overflows nor is 0,
    and the largest entry's x - c is exactly 0. c is part of the forward, not of the graph: the
    result does not depend on it (so it has no gradient), and it is recomputed from each input's
    own values wherever the forward runs (a replayed step included).
    """
    if x.size == 0:  # an empty axis has no maximum; the result is as empty as x
        return np.empty(x.shape, np.result_type(x.dtype, np.float16))
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))


def concatenate_forward(*xs: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def clip_forward(x: np.ndarray, a_min: Any = None, a_max: Any = None) -> np.ndarray:
    """numpy.clip(x, a_min, a_max), either bound may be None (number bounds keep x's dtype)."""
    if a_min is None and a_max is None:
        return np.copy(x)
    return np.clip(x, a_min, a_max)


def logsumexp_forward(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """log(sum(exp(x), axis)) as c + log(sum(exp(x - c))) with c = max(x) along axis.

    As log_softmax's shift: every exp(x - c) <= 1 and one equals 1, so logsumexp([1000, 1000]) is
    1000 + log 2, not inf. An infinite c (all -inf, or a +inf) is replaced by 0 so that x - c is
    not inf - inf; the result is then -inf or inf, as the sum says. An empty axis sums to 0: -inf.
    """
    if x.size == 0:
        with np.errstate(divide="ignore"):
            return np.log(np.add.reduce(np.exp(x), axis=axis, keepdims=keepdims))
    c = np.max(x, axis=axis, keepdims=True)
    c = np.where(np.isfinite(c), c, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.add.reduce(np.exp(x - c), axis=axis, keepdims=True)) + c
    return out if keepdims else out.reshape(np.max(x, axis=axis).shape)


def pad_forward(x: np.ndarray, pad_width: tuple, constant_values: float = 0.0) -> np.ndarray:
    """numpy.pad(x, pad_width, constant_values=...): pad_width holds (before, after) per axis."""
    return np.pad(x, pad_width, constant_values=constant_values)


def einsum_forward(*xs: np.ndarray, subscripts: str) -> np.ndarray:
    return np.asarray(np.einsum(subscripts, *xs))


# ---------------------------------------------------------------------------------------------
# Forwards in the Array API standard: every library's road (NumPy's where it has no faster one).
# Each is written with the standard's functions of namespace xp only, so that array_api_strict,
# the standard's reference, runs them (tests/test_backends.py).


def floating(xp: Any, x: Any) -> Any:
    """x itself if floating, else x as float64 (as NumPy computes exp of integers)."""
    if xp.isdtype(x.dtype, "real floating"):
        return x
    return xp.astype(x, xp.float64)


def sigmoid_in(xp: Any, x: Any) -> Any:
    """sigmoid: the library's own one-pass function (backend.extension "expit"), else
    1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) below, neither of which overflows."""
    x = floating(xp, x)
    expit = backend.extension(xp, "expit")
    if expit is not None:
        return expit(x)
    e = xp.exp(-xp.abs(x))  # <= 1
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus_in(xp: Any, x: Any) -> Any:
    x = floating(xp, x)
    return xp.logaddexp(xp.zeros_like(x), x)


def relu_in(xp: Any, x: Any) -> Any:
    return xp.maximum(x, xp.zeros_like(x))


def exp2_in(xp: Any, x: Any) -> Any:
    x = floating(xp, x)
    return xp.pow(xp.asarray(2, dtype=x.dtype), x)


def erf_in(xp: Any, x: Any) -> Any:
    """erf: the library's own (backend.extension "erf"); the standard has none, and autonet does
    not approximate it."""
    erf = backend.extension(xp, "erf")
    if erf is None:
        raise NotImplementedError(
            f"{xp.__name__} has no erf and the Array API standard none either; use "
            "nn.GELU(approximate='tanh') rather than the exact GELU, or NumPy or PyTorch arrays"
        )
    return erf(floating(xp, x))


def sum_in(xp: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """sum; a mask's True elements are counted, as NumPy does (the standard sums numbers only)."""
    if x.dtype == xp.bool:
        x = xp.astype(x, xp.int64)
    return xp.sum(x, axis=axis, keepdims=keepdims)


def clip_in(xp: Any, x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    if a_min is None and a_max is None:
        return xp.asarray(x, copy=True)
    return xp.clip(x, min=a_min, max=a_max)


def log_softmax_in(xp: Any, x: Any, axis: int = -1) -> Any:
    """As log_softmax_forward, in the standard's functions."""
    if math.prod(x.shape) == 0:
        return xp.empty(x.shape, dtype=floating(xp, x).dtype)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def logsumexp_in(xp: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """As logsumexp_forward, in the standard's functions."""
    if math.prod(x.shape) == 0:
        return xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=keepdims))
    c = xp.max(x, axis=axis, keepdims=True)
    c = xp.where(xp.isfinite(c), c, xp.zeros_like(c))
    out = xp.log(xp.sum(xp.exp(x - c), axis=axis, keepdims=True)) + c
    return out if keepdims else xp.reshape(out, xp.max(x, axis=axis).shape)


def cumsum_in(xp: Any, x: Any, axis: int | None = None) -> Any:
    if axis is None:
        x, axis = xp.reshape(x, (-1,)), 0
    return xp.cumulative_sum(x, axis=axis)


def shape_tuple(shape: Any) -> tuple[int, ...]:
    """A shape as NumPy takes it (an int, a list) as the tuple the standard asks for."""
    return tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)


def broadcast_to_in(xp: Any, x: Any, shape: Any) -> Any:
    return xp.broadcast_to(x, shape_tuple(shape))


def reshape_in(xp: Any, x: Any, shape: Any) -> Any:
    return xp.reshape(x, shape_tuple(shape))


def transpose_in(xp: Any, x: Any, axes: tuple[int, ...] | None = None) -> Any:
    return xp.permute_dims(x, tuple(reversed(range(x.ndim))) if axes is None else tuple(axes))


def positions_in(xp: Any, positions: np.ndarray) -> Any:
    """Host positions as take's indices: xp's array, except for Dask, whose take reads NumPy's
    (and mistakes an index array made from [0] for its own offsets: dask/dask#6709)."""
    return positions if backend.library_of(xp) == "dask" else xp.asarray(positions)


def flat_positions(index: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The flat positions that x[index] reads, for x of `shape`, in x[index]'s shape (NumPy's
    indexing rules, applied on the host to the positions rather than to x)."""
    items = index if type(index) is tuple else (index,)
    host = tuple(backend.to_numpy(item) if backend.is_foreign(item) else item for item in items)
    return np.array(np.arange(math.prod(shape)).reshape(shape)[host], order="C")  # 0-d stays


def getitem_in(xp: Any, x: Any, index: Any) -> Any:
    """x[index]: a basic index (integers, slices, None, ...) as it is; one with arrays or
    backward steps as a take of the flat positions it selects, found on the host (NumPy's rules
    for every mix, where the standard specifies integer arrays with integers only, and PyTorch
    takes no negative step)."""
    if is_forward_basic(index):
        return x[full_index(index)]
    positions = flat_positions(index, tuple(x.shape))
    flat = xp.take(xp.reshape(x, (-1,)), positions_in(xp, positions.reshape(-1)), axis=0)
    return xp.reshape(flat, positions.shape)


def is_forward_basic(index: Any) -> bool:
    """index holds integers, slices with positive steps, None and ... only."""
    return all(
        is_integer(item)
        or item is None
        or item is Ellipsis
        or (isinstance(item, slice) and (item.step is None or item.step > 0))
        for item in (index if type(index) is tuple else (index,))
    )


def full_index(index: Any) -> tuple:
    """index as a tuple ending in `...` (NumPy's implicit full slices of the axes it leaves out,
    which the standard asks to be written)."""
    items = index if type(index) is tuple else (index,)
    return items if any(item is Ellipsis for item in items) else (*items, Ellipsis)


def scatter_add_in(xp: Any, g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """zeros(shape) with g added at index, in the standard (which has no scatter): the flat
    positions index selects are found on the host (NumPy), g's entries are summed per position
    by sorting them (take, cumulative_sum), and each element of the output takes its position's
    sum (take again). No assignment, so that immutable arrays (JAX's) take it too."""
    out = xp.zeros(tuple(shape), dtype=g.dtype)
    positions = np.broadcast_to(flat_positions(index, tuple(shape)), tuple(g.shape)).reshape(-1)
    if positions.size == 0:
        return out
    order = np.argsort(positions, kind="stable")
    sorted_positions = positions[order]
    ends = np.flatnonzero(np.append(sorted_positions[1:] != sorted_positions[:-1], True))
    flat_g = xp.take(xp.reshape(g, (-1,)), positions_in(xp, order), axis=0)
    running = xp.cumulative_sum(flat_g, include_initial=True)
    sums = xp.take(running, positions_in(xp, ends + 1), axis=0) - xp.take(
        running, positions_in(xp, np.concatenate(([0], ends[:-1] + 1))), axis=0
    )
    lookup = np.zeros(math.prod(shape), dtype=np.int64)
    lookup[sorted_positions[ends]] = np.arange(1, len(ends) + 1)
    padded_sums = xp.concat((xp.zeros((1,), dtype=g.dtype), sums))
    return xp.reshape(xp.take(padded_sums, positions_in(xp, lookup), axis=0), tuple(shape))


def concatenate_in(xp: Any, *xs: Any, axis: int | None = 0) -> Any:
    if axis is None:
        xs, axis = tuple(xp.reshape(x, (-1,)) for x in xs), 0
    return xp.concat(xs, axis=axis)


def pad_in(xp: Any, x: Any, pad_width: tuple, constant_values: float = 0.0) -> Any:
    """x between blocks of constant_values, (before, after) more elements along each axis: one
    concat per padded axis (no assignment, so that immutable arrays, JAX's, take it too)."""
    for axis, (before, after) in enumerate(pad_width):
        if before or after:
            shape = tuple(x.shape)
            blocks = [
                xp.full(shape[:axis] + (n,) + shape[axis + 1 :], constant_values, dtype=x.dtype)
                for n in (before, after)
            ]
            x = xp.concat([blocks[0], x, blocks[1]], axis=axis)
    return x


def spread(xp: Any, x: Any, axis: int, step: int, before: int, total: int) -> Any:
    """x along `axis` laid out on an axis of length `total`: x[i] at before + i * step, zeros
    elsewhere (step - 1 zeros interleaved by a concat and a reshape, then padding)."""
    n = x.shape[axis]
    if step > 1 and n:
        shape = tuple(x.shape)
        zeros = xp.zeros(shape[: axis + 1] + (step - 1,) + shape[axis + 1 :], dtype=x.dtype)
        x = xp.concat([xp.expand_dims(x, axis=axis + 1), zeros], axis=axis + 1)
        x = xp.reshape(x, shape[:axis] + (n * step,) + shape[axis + 1 :])
        x = x[(slice(None),) * axis + (slice(0, (n - 1) * step + 1), Ellipsis)]
    widths = [(0, 0)] * x.ndim
    widths[axis] = (before, total - before - x.shape[axis])
    return pad_in(xp, x, tuple(widths))


def einsum_in(xp: Any, *xs: Any, subscripts: str) -> Any:
    """einsum: the library's own (backend.extension "einsum"), else products and sums of the
    operands laid out over every letter: a repeated letter within an operand (its diagonal) is
    taken by multiplying with an identity mask and summing one of the two axes."""
    found = backend.extension(xp, "einsum")
    if found is not None:
        return found(subscripts, *xs)
    inputs, output = subscripts.split("->")
    letters = sorted(set(inputs.replace(",", "")), key=lambda c: (c not in output, c))
    letters = list(output) + [c for c in letters if c not in output]
    total = None
    for term, x in zip(inputs.split(","), xs, strict=True):
        while len(set(term)) < len(term):  # a repeated letter: take its diagonal
            c = next(c for c in term if term.count(c) > 1)
            p, q = term.index(c), term.index(c, term.index(c) + 1)
            n = x.shape[p]
            eye = xp.reshape(
                xp.eye(n, dtype=x.dtype),
                tuple(n if axis in (p, q) else 1 for axis in range(x.ndim)),
            )
            x = xp.sum(x * eye, axis=q)
            term = term[:q] + term[q + 1 :]
        order = sorted(range(len(term)), key=lambda i: letters.index(term[i]))
        x = xp.permute_dims(x, tuple(order))
        present = [term[i] for i in order]
        x = xp.reshape(x, tuple(x.shape[present.index(c)] if c in present else 1 for c in letters))
        total = x if total is None else total * x
    assert total is not None
    summed = tuple(range(len(output), len(letters)))
    return xp.sum(total, axis=summed) if summed else total


def astype_in(xp: Any, x: Any, dtype: Any) -> Any:
    return xp.astype(x, backend.dtype_in(xp, dtype))


def copy_in(xp: Any, x: Any) -> Any:
    return xp.asarray(x, copy=True)


# ---------------------------------------------------------------------------------------------
# VJPs that are more than one line.


def keepdims_shape(shape: tuple[int, ...], axis: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of a reduction over `axis` of an array of `shape`, with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def matmul_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    """out = a @ b   =>   grad_a = g @ b^T  (b^T swaps b's last two axes).

    Cases, by NumPy's matmul rules: a 1-D `a` is a row (1, n) and `out` has lost that axis, so g
    gains it back; a 1-D `b` is a column (n, 1) and g gains a trailing axis. Batch axes broadcast:
    the engine sums grad_a over the batch axes `a` did not have (grad_a of a 1-D `a` then has shape
    (..., 1, n) and sums to (n,)).
    """
    if b.ndim == 1:
        return g * b if a.ndim == 1 else g.reshape(g.shape + (1,)) * b
    if a.ndim == 1:
        g = g.reshape(g.shape[:-1] + (1, g.shape[-1]))
    return g @ b.swapaxes(-1, -2)


def matmul_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    """out = a @ b   =>   grad_b = a^T @ g  (same cases as matmul_vjp_a, mirrored)."""
    if a.ndim == 1:
        if b.ndim == 1:
            return g * a
        # a (n,), b (..., n, k), g (..., k): grad_b[..., i, j] = a[i] g[..., j]
        return a.reshape((-1, 1)) * g.reshape(g.shape[:-1] + (1, g.shape[-1]))
    if b.ndim == 1:
        # a (..., m, n), b (n,), g (..., m): grad_b[..., i] = sum_r a[..., r, i] g[..., r]
        column = a.swapaxes(-1, -2) @ g.reshape(g.shape + (1,))
        return column.reshape(column.shape[:-1])
    return a.swapaxes(-1, -2) @ g


def constant_like(x: Any, array: np.ndarray) -> Any:
    """A NumPy constant a rule builds (an identity, a mask) as an array of x's library: NumPy's
    for ndarrays and the kinds that stand in for them, the same library's for another's."""
    data = getattr(x, "_data", x)
    if backend.is_foreign(data):
        return backend.namespace_of(data).asarray(array)
    return array


def quiet_at_zero(rule: Callable[..., Any]) -> Callable[..., Any]:
    """rule (a forward or a VJP) without NumPy's divide-by-zero RuntimeWarning: the values and
    gradients of sqrt and pow at 0 are +-inf by their formulas (0^-1, 1 / (2 sqrt 0)), as in
    PyTorch, which does not warn either. Other warnings (sqrt(-1), 0 * inf) still show."""

    @functools.wraps(rule)
    def quiet(*args: Any, **params: Any) -> Any:
        with np.errstate(divide="ignore"):
            return rule(*args, **params)

    return quiet


def pow_scalar_vjp(g: Any, out: Any, x: Any, exponent: float) -> Any:
    """out = x ** p for a number p   =>   grad_x = g * p * x^(p-1), and 0 where p = 0 (as pow).

    `x ** 2` with a Python number is this primitive rather than pow with a constant input (as in
    PyTorch, and JAX's integer_pow): p is known when the rule runs, so p - 1 is Python arithmetic,
    not three NumPy calls on a 0-d array, and for the square x^(p-1) is x itself.
    """
    if exponent == 2:
        return g * 2 * x
    return g * exponent * x ** (exponent - 1 + (exponent == 0))


def sum_vjp(g: Any, out: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """out = sum(x, axis)   =>   grad_x = g broadcast back over the summed axes.

    g lacks the summed axes unless keepdims (or all of them were summed: g then has shape () and
    broadcasts as it is); they are put back as axes of length 1 before broadcasting.
    """
    if axis is not None and not keepdims:
        g = g.reshape(keepdims_shape(x.shape, axis))
    return broadcast_to(g, shape=x.shape)


def max_vjp(g: Any, out: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """out = max(x, axis)   =>   grad_x = g at the maximal elements, 0 elsewhere.

    Ties share g equally (as PyTorch's amax): with k maximal elements, each receives g / k, so the
    gradient stays a valid subgradient and sums to g.
    """
    reduced = keepdims_shape(x.shape, axis)
    is_max = x == out.reshape(reduced)
    return is_max * (g.reshape(reduced) / is_max.sum(axis=axis, keepdims=True))


def log_softmax_vjp(g: Any, out: Any, x: Any, axis: int = -1) -> Any:
    """out = log_softmax(x, axis)   =>   grad_x = g - softmax(x) * sum(g, axis), softmax = exp(out).

    d out_i / d x_j = [i = j] - softmax_j along the axis, so grad_x_j = g_j - softmax_j sum_i g_i.
    """
    return g - exp(out) * g.sum(axis=axis, keepdims=True)


def maximum_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    """out = maximum(a, b)   =>   grad_a = g where a > b, g/2 where a == b (ties share), else 0."""
    return g * ((a > b) + 0.5 * (a == b))


def concatenate_vjp(i: int, g: Any, out: Any, *xs: Any, axis: int = 0) -> Any:
    """out = concatenate(xs, axis)   =>   grad_xs[i] = the slice of g that xs[i] filled."""
    axis = axis % out.ndim
    start = sum(x.shape[axis] for x in xs[:i])
    return g[(slice(None),) * axis + (slice(start, start + xs[i].shape[axis]),)]


def transpose_vjp(g: Any, out: Any, x: Any, axes: tuple[int, ...] | None = None) -> Any:
    """out = transpose(x, axes)   =>   grad_x = transpose(g, inverse permutation of axes)."""
    if axes is None:
        return g.transpose()
    return g.transpose(tuple(np.argsort(axes)))


def minimum_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    """out = minimum(a, b)   =>   grad_a = g where a < b, g/2 where a == b (ties share), else 0."""
    return g * ((a < b) + 0.5 * (a == b))


def clip_vjp(g: Any, out: Any, x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """out = clip(x, a_min, a_max)   =>   grad_x = g where a_min <= x <= a_max, else 0.

    At a bound (x == a_min or x == a_max) the gradient is g, as PyTorch's clamp: the bounds count
    as inside, so clipping a value that already lies on a bound leaves its gradient alone.
    """
    if a_min is None and a_max is None:
        return g
    if a_max is None:
        return g * (x >= a_min)
    if a_min is None:
        return g * (x <= a_max)
    return g * (x >= a_min) * (x <= a_max)


def logsumexp_vjp(g: Any, out: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """out = logsumexp(x, axis)   =>   grad_x = g * softmax(x) = g * exp(x - out).

    d out / d x_i = exp(x_i) / sum_j exp(x_j) = exp(x_i - out); x - out <= 0, so exp never
    overflows. g and out lack the reduced axes unless keepdims: they are put back (length 1).
    """
    reduced = keepdims_shape(x.shape, axis)
    return g.reshape(reduced) * exp(x - out.reshape(reduced))


def reversed_along(x: Any, axis: int) -> Any:
    """x with the order of its elements along axis reversed (x[..., ::-1, ...])."""
    return x[(slice(None),) * axis + (slice(None, None, -1),)]


def cumsum_vjp(g: Any, out: Any, x: Any, axis: int | None = None) -> Any:
    """out = cumsum(x, axis)   =>   grad_x = the reversed cumulative sum of g along axis.

    out_i = sum_{j <= i} x_j, so grad_x_j = sum_{i >= j} g_i: cumsum of g from the far end.
    axis=None sums x flattened: g is then 1-D and its result is reshaped to x's shape.
    """
    if axis is None:
        return reversed_along(cumsum(reversed_along(g, 0), axis=0), 0).reshape(x.shape)
    return reversed_along(cumsum(reversed_along(g, axis), axis=axis), axis)


def prod_vjp(g: Any, out: Any, x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """out = prod(x, axis)   =>   grad_x_i = g * (product of the other x_j along axis).

    Not g * out / x_i, which is 0 / 0 where x_i = 0 (the product of the others need not be 0).
    The n products of n - 1 factors are one prod over an n x n array: row i holds x with x_i
    replaced by 1 (x * (1 - I) + I). It takes n^2 numbers, and it is written in primitives, so
    the rule is itself differentiable (every second derivative, with zeros too).
    """
    shape = x.shape
    if axis is None:
        x, axis = x.reshape((-1,)), 0
    g = g.reshape(keepdims_shape(x.shape, axis)).swapaxes(axis, -1)
    last = x.swapaxes(axis, -1)
    n = last.shape[-1]
    rows = broadcast_to(last.reshape(last.shape[:-1] + (1, n)), shape=last.shape + (n,))
    eye = constant_like(x, np.eye(n, dtype=x.dtype))
    others = prod(rows * (1 - eye) + eye, axis=last.ndim)
    return (g * others).swapaxes(axis, -1).reshape(shape)


def pad_vjp(g: Any, out: Any, x: Any, pad_width: tuple, constant_values: float = 0.0) -> Any:
    """out = pad(x, pad_width)   =>   grad_x = g with the padding cut off (the slice x filled)."""
    return g[
        tuple(slice(before, before + n) for (before, _), n in zip(pad_width, x.shape, strict=True))
    ]


def einsum_vjp(i: int, g: Any, out: Any, *xs: Any, subscripts: str) -> Any:
    """out = einsum("s_0,...,s_k->o", x_0, ..., x_k)   =>
    grad_x_i = einsum("o,s_j (j != i)->s_i", g, x_j (j != i)).

    out is linear in x_i, with x_i's coefficient the product of the other operands: the gradient
    contracts g with them onto x_i's letters. einsum cannot write every s_i as an output:
      - a letter that only x_i has (summed over in the forward, "ij->i") appears in no operand
        of the gradient's einsum: it is left out, and the result broadcast along it;
      - a letter repeated in s_i ("ii->i", the diagonal) cannot be repeated in an output: the
        gradient is computed once per letter and put on the diagonal (times a 0/1 mask).
    subscripts are explicit, without "..." (an.einsum writes them so: ops.explicit_subscripts).
    """
    inputs, output = subscripts.split("->")
    names = inputs.split(",")
    mine = names[i]
    others = [output] + [s for j, s in enumerate(names) if j != i]
    operands = [g] + [x for j, x in enumerate(xs) if j != i]
    letters = list(dict.fromkeys(mine))  # each letter once, in the order of first appearance
    present = [c for c in letters if any(c in s for s in others)]
    grad = einsum(*operands, subscripts=",".join(others) + "->" + "".join(present))
    x = xs[i]
    size = {c: x.shape[mine.index(c)] for c in letters}
    if len(present) < len(letters):  # broadcast along the letters only x_i has
        grad = grad.reshape(
            tuple(grad.shape[present.index(c)] if c in present else 1 for c in letters)
        )
        grad = broadcast_to(
            grad,
            shape=tuple(grad.shape[k] if c in present else size[c] for k, c in enumerate(letters)),
        )
    if len(letters) < len(mine):  # put the repeated letters' gradient on their diagonal
        first = [mine.index(c) for c in mine]
        grad = grad.reshape(
            tuple(grad.shape[letters.index(c)] if first[p] == p else 1 for p, c in enumerate(mine))
        )
        index = np.indices(x.shape, sparse=True)
        mask = np.ones(x.shape, dtype=bool)
        for p, q in enumerate(first):
            mask = mask & (index[p] == index[q])
        grad = grad * constant_like(x, mask.astype(x.dtype))
    return grad


# ---------------------------------------------------------------------------------------------
# Convolution and pooling of images (N, C, H, W). Every forward reads the input through a strided
# view of its windows, (N, C, OH, OW, KH, KW), made without copying (window_view); products with
# the weights are one tensordot (im2col: tensordot copies the windows into one matrix, then one
# matrix product). The transposed maps add each window back where it came from, one strided
# slice per kernel offset (add_windows): KH * KW whole-array additions, no loop over pixels.
# Params are pairs of ints (height, width); nn.functional.conv2d and the pools check and pair them.


def window_view(xp: Any, x: Any, kernel: tuple, stride: tuple, dilation: tuple = (1, 1)) -> Any:
    """The windows of an (N, C, H, W) array, shape (N, C, OH, OW, KH, KW):
    view[n, c, i, j, p, q] = x[n, c, i * sh + p * dh, j * sw + q * dw]. NumPy's is a read-only
    view (no copy); the standard has no strided views: there the windows are stacked from
    KH * KW strided slices (a copy of KH * KW times x's size)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, c, h, w = x.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    if xp is np:
        s = x.strides
        return np.lib.stride_tricks.as_strided(
            x,
            (n, c, oh, ow, kh, kw),
            (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw),
            writeable=False,
        )
    planes = [
        window_plane(x, p * dh, q * dw, (oh, ow), stride) for p in range(kh) for q in range(kw)
    ]
    return xp.reshape(xp.stack(planes, axis=-1), (n, c, oh, ow, kh, kw))


def window_plane(x: Any, top: int, left: int, size: tuple, stride: tuple) -> Any:
    """The (N, C, OH, OW) elements at one kernel offset of every window: a strided slice."""
    (oh, ow), (sh, sw) = size, stride
    return x[:, :, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw]


def padded(xp: Any, x: Any, padding: tuple, value: float = 0.0) -> Any:
    """x with `padding` (ph, pw) rows and columns of `value` on each side of its last two axes."""
    (ph, pw) = padding
    if ph == pw == 0:
        return x
    width = ((0, 0), (0, 0), (ph, ph), (pw, pw))
    if xp is np:
        return np.pad(x, width, constant_values=value)
    return pad_in(xp, x, width, value)


def add_windows(
    xp: Any,
    plane: Callable[[int, int], np.ndarray],
    shape: tuple,
    kernel: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple = (1, 1),
) -> np.ndarray:
    """The transpose of window_view after padding: plane(p, q), an (N, C, OH, OW) array for each
    kernel offset (p, q), added into zeros of `shape` (N, C, H, W) padded, where each window's
    (p, q) element came from; the padding is then cut off."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = shape
    if xp is not np:  # each plane spread over the padded image, then summed: no assignment
        planes = (
            spread(
                xp, spread(xp, plane(p, q), 2, sh, p * dh, h + 2 * ph), 3, sw, q * dw, w + 2 * pw
            )
            for p in range(kh)
            for q in range(kw)
        )
        out = functools.reduce(operator.add, planes)
        return out[:, :, ph : ph + h, pw : pw + w]
    out = None
    for p in range(kh):
        for q in range(kw):
            values = plane(p, q)
            if out is None:
                out = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=values.dtype)
            oh, ow = values.shape[2:]
            top, left = p * dh, q * dw
            where = (
                slice(None),
                slice(None),
                slice(top, top + sh * (oh - 1) + 1, sh),
                slice(left, left + sw * (ow - 1) + 1, sw),
            )
            out[where] = out[where] + values
    return out[:, :, ph : ph + h, pw : pw + w]


def contiguous(xp: Any, x: Any) -> Any:
    """x in C order: NumPy's copy of a transposed result (later products read it faster)."""
    return np.ascontiguousarray(x) if xp is np else x


def conv2d_forward(
    xp: Any, x: Any, w: Any, stride: tuple, padding: tuple, dilation: tuple
) -> np.ndarray:
    """out[n, o, i, j] = sum_{c, p, q} xpad[n, c, i*sh + p*dh, j*sw + q*dw] w[o, c, p, q]."""
    cols = window_view(xp, padded(xp, x, padding), w.shape[2:], stride, dilation)
    # contracted from w's side, tensordot copies the windows as (C, KH, KW) rows of N * OH * OW
    # pixels, reading each image row in order: ~5x faster than (N, OH, OW) rows of C * KH * KW
    out = xp.tensordot(w, cols, axes=((1, 2, 3), (1, 4, 5)))  # (O, N, OH, OW)
    return contiguous(xp, xp.permute_dims(out, (1, 0, 2, 3)))


def conv2d_input_grad_forward(
    xp: Any, u: Any, w: Any, input_size: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> np.ndarray:
    """The transpose of conv2d in x: u (N, O, OH, OW) -> (N, C, H, W), each output pixel's u times
    the weights added back onto the window it was computed from (a transposed convolution)."""
    cols = xp.tensordot(w, u, axes=((0,), (1,)))  # (C, KH, KW, N, OH, OW): planes, as conv2d's
    return add_windows(
        xp,
        lambda p, q: xp.permute_dims(cols[:, p, q, ...], (1, 0, 2, 3)),
        (u.shape[0], w.shape[1]) + tuple(input_size),
        w.shape[2:],
        stride,
        padding,
        dilation,
    )


def conv2d_weight_grad_forward(
    xp: Any, x: Any, u: Any, kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> np.ndarray:
    """The transpose of conv2d in w: out[o, c, p, q] = sum_{n, i, j} u[n, o, i, j] * window[...]."""
    cols = window_view(xp, padded(xp, x, padding), kernel_size, stride, dilation)
    out = xp.tensordot(cols, u, axes=((0, 2, 3), (0, 2, 3)))  # (C, KH, KW, O), as conv2d's
    return contiguous(xp, xp.permute_dims(out, (3, 0, 1, 2)))


def avg_pool2d_forward(xp: Any, x: Any, kernel_size: tuple, stride: tuple, padding: tuple) -> Any:
    """The mean of each window; padding adds zeros that count in the mean (as PyTorch's default,
    count_include_pad=True), so every window divides by KH * KW."""
    (kh, kw) = kernel_size
    cols = window_view(xp, padded(xp, x, padding), kernel_size, stride)
    out = cols[..., 0, 0] + 0  # a copy, in every library
    for k in range(1, kh * kw):  # as window_first_maxima: faster than sum(axis=(4, 5))
        out += cols[..., k // kw, k % kw]
    return out / xp.asarray(kh * kw, dtype=x.dtype)


def avg_pool2d_grad_forward(
    xp: Any, u: Any, input_size: tuple, kernel_size: tuple, stride: tuple, padding: tuple
) -> Any:
    """The transpose of avg_pool2d: each window's u / (KH * KW) added onto every pixel of it."""
    share = u / xp.asarray(kernel_size[0] * kernel_size[1], dtype=u.dtype)
    shape = tuple(u.shape[:2]) + tuple(input_size)
    return add_windows(xp, lambda p, q: share, shape, kernel_size, stride, padding)


def window_first_maxima(
    xp: Any, x: Any, kernel_size: tuple, stride: tuple, padding: tuple
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each window's maximum (x padded with -inf) and, for each kernel offset k = p * KW + q, a
    mask of the windows whose first maximum in row-major order is at k (numpy.argmax's and
    PyTorch's choice among ties; a NaN counts as the maximum, as in PyTorch). A loop over the
    KH * KW offsets of whole-array operations: a reduction over the view's two short last axes
    is ~20x slower."""
    (kh, kw) = kernel_size
    cols = window_view(xp, padded(xp, x, padding, -math.inf), kernel_size, stride)
    top = max_of_windows(xp, cols, kh * kw, kw)
    masks, taken = [], xp.zeros(top.shape, dtype=xp.bool)
    for k in range(kh * kw):
        value = cols[..., k // kw, k % kw]
        hit = ((value == top) | (value != value)) & ~taken
        taken = taken | hit
        masks.append(hit)
    return top, masks


def max_of_windows(xp: Any, cols: Any, count: int, kw: int) -> Any:
    """The maximum over each window's `count` elements, NaN if one is NaN (as PyTorch)."""
    if xp is np:
        top = cols[..., 0, 0].copy()
        for k in range(1, count):
            np.maximum(top, cols[..., k // kw, k % kw], out=top)  # propagates NaN
        return top
    top = cols[..., 0, 0]
    for k in range(1, count):
        value = cols[..., k // kw, k % kw]
        top = xp.where(value != value, value, xp.maximum(top, value))
    return top


def max_pool2d_forward(xp: Any, x: Any, kernel_size: tuple, stride: tuple, padding: tuple) -> Any:
    """The maximum of each window; padding adds -inf, which is never a window's maximum."""
    (kh, kw) = kernel_size
    cols = window_view(xp, padded(xp, x, padding, -math.inf), kernel_size, stride)
    return max_of_windows(xp, cols, kh * kw, kw)


def max_pool2d_scatter_forward(
    xp: Any, u: Any, x: Any, kernel_size: tuple, stride: tuple, padding: tuple
) -> Any:
    """u (one number per window of x) added at each window's first maximum; x's shape."""
    _, masks = window_first_maxima(xp, x, kernel_size, stride, padding)
    zero = xp.zeros((), dtype=u.dtype)

    def plane(p: int, q: int) -> Any:
        return xp.where(masks[p * kernel_size[1] + q], u, zero)

    return add_windows(xp, plane, tuple(x.shape), kernel_size, stride, padding)


def max_pool2d_gather_forward(
    xp: Any, v: Any, x: Any, kernel_size: tuple, stride: tuple, padding: tuple
) -> Any:
    """v (x's shape) read at each window's first maximum of x: the transpose of the scatter."""
    _, masks = window_first_maxima(xp, x, kernel_size, stride, padding)
    cols = window_view(xp, padded(xp, v, padding), kernel_size, stride)
    kw = kernel_size[1]
    out = xp.zeros(masks[0].shape, dtype=v.dtype)
    for k, mask in enumerate(masks):
        if xp is np:
            np.copyto(out, cols[..., k // kw, k % kw], where=mask)
        else:
            out = xp.where(mask, cols[..., k // kw, k % kw], out)
    return out


# The default params of conv2d and the pools, left out when derive writes a formula.
CONV_DEFAULTS = (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1)))
POOL_DEFAULTS = (("padding", (0, 0)),)

MAX_POOL_TIES = "ties in a window: its first maximum (row-major) gets g, as PyTorch"

# ---------------------------------------------------------------------------------------------
# Kinks: which side of a primitive's kink each element of a recorded node lies on (node.parents are
# its inputs, as Tensors).


def side_of_zero(node: Any) -> np.ndarray:
    """-1, 0 or 1: x < 0, x == 0 (the kink), x > 0."""
    return np.sign(node.parents[0].numpy())


def side_of_tie(node: Any) -> np.ndarray:
    """-1, 0 or 1: a < b, a == b (the kink), a > b."""
    a, b = node.parents
    return np.sign(a.numpy() - b.numpy())


def maxima(node: Any) -> np.ndarray:
    """True at the elements equal to their maximum (where ties would be)."""
    x = node.parents[0].numpy()
    return x == node.numpy().reshape(keepdims_shape(x.shape, node.params.get("axis")))


def side_of_bounds(node: Any) -> np.ndarray:
    """-1, 0 or 1 against each bound of clip, as one number: 3 * side of a_min + side of a_max."""
    x = node.parents[0].numpy()
    a_min, a_max = node.params.get("a_min"), node.params.get("a_max")
    low = np.zeros(x.shape) if a_min is None else np.sign(x - a_min)
    high = np.zeros(x.shape) if a_max is None else np.sign(x - a_max)
    return 3 * low + high


def window_maxima(node: Any) -> np.ndarray:
    """Max pooling's kink: which element of each window is its first maximum (the input x is the
    node's last parent: max_pool2d's only one, the scatter's and the gather's second)."""
    p = node.params
    _, masks = window_first_maxima(
        np, node.parents[-1].numpy(), p["kernel_size"], p["stride"], p["padding"]
    )
    return sum(k * mask for k, mask in enumerate(masks))


# ---------------------------------------------------------------------------------------------
# What to say when NumPy refuses a primitive's inputs: inputs are Tensors (shape, ndim, size).


def explain_matmul(inputs: Any, params: dict, exc: Exception) -> Exception:
    a, b = inputs
    shapes = f"{a.shape} and {b.shape}"
    if a.ndim == 0 or b.ndim == 0:
        return ValueError(
            f"matmul: shapes {shapes}: matmul needs operands of at least 1 dimension; "
            "multiply by a scalar with * instead"
        )
    inner_a, inner_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if inner_a != inner_b:
        return ValueError(
            f"matmul: shapes {shapes} are not aligned ({inner_a} != {inner_b}): the last "
            "axis of the first operand must match the second-to-last axis of the second "
            "(transpose one of them?)"
        )
    return ValueError(
        f"matmul: shapes {shapes}: the batch axes (all but the last two), "
        f"{a.shape[:-2]} and {b.shape[:-2]}, cannot be broadcast together; make each pair of "
        "batch lengths equal, or 1"
    )


def explain_reshape(inputs: Any, params: dict, exc: Exception) -> Exception:
    x = inputs[0]
    shape = params["shape"]
    lengths = shape if isinstance(shape, tuple) else (shape,)
    if -1 not in lengths and math.prod(lengths) == x.size:  # the library refused another way
        return type(exc)(f"reshape: {exc} (tensor shape {x.shape}, shape {shape})")
    return ValueError(
        f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into shape "
        f"{params['shape']}; the sizes must match (one length may be -1)"
    )


def explain_getitem(inputs: Any, params: dict, exc: Exception) -> Exception:
    return IndexError(f"getitem: {exc} (tensor shape {inputs[0].shape}, index {params['index']!r})")


# ---------------------------------------------------------------------------------------------
# Batching rules (vmap). A rule computes every example's output at once: a batched input holds
# k leading batch axes (one per enclosing vmap that maps it; length 1 where it is not mapped,
# which broadcasts), an unbatched input is one example's array, the same for every example.
# `batched` says which inputs are which. Element-wise primitives and one-input primitives on
# axes need no rule of their own (transforms/vmap.py derives theirs from those facts).


def with_rank(x: np.ndarray, is_batched: bool, k: int, rank: int) -> np.ndarray:
    """A batched x with length-1 axes inserted after its k batch axes, so that one example has
    `rank` axes: NumPy then broadcasts its examples against arrays of that rank as it broadcasts
    one example (an unbatched x broadcasts from the right as it is)."""
    if not is_batched:
        return x
    return x.reshape(x.shape[:k] + (1,) * (rank - (x.ndim - k)) + x.shape[k:])


def example_ranks(arrays: tuple, batched: tuple, k: int) -> list[int]:
    return [x.ndim - k if b else x.ndim for x, b in zip(arrays, batched, strict=True)]


def batch_lead(arrays: tuple, batched: tuple, k: int) -> tuple[int, ...]:
    """The batch axes' lengths, broadcast over the batched inputs."""
    return np.broadcast_shapes(*(x.shape[:k] for x, b in zip(arrays, batched, strict=True) if b))


def with_lead(x: np.ndarray, is_batched: bool, k: int, lead: tuple[int, ...]) -> np.ndarray:
    """x with exactly the batch axes `lead`: batched ones stretched, unbatched ones repeated."""
    shape = x.shape[k:] if is_batched else x.shape
    return np.broadcast_to(x, lead + shape)


class Mapped(NamedTuple):
    """A param that differs between examples (an index array mapped by vmap, x[labels]): its
    value with the k batch axes in front (length 1 where it is not mapped)."""

    value: np.ndarray


def param_at(value: Any, lead: tuple[int, ...], i: tuple[int, ...] | None) -> Any:
    """A param as example i sees it: a Mapped one's i-th entry (in tuples too); with i None,
    zeros of one example's shape (to learn the output's shape of an empty batch)."""
    if isinstance(value, Mapped):
        k = len(lead)
        if i is None:
            return np.zeros(value.value.shape[k:], value.value.dtype)
        return np.broadcast_to(value.value, lead + value.value.shape[k:])[i]
    if type(value) is tuple:
        return tuple(param_at(v, lead, i) for v in value)
    return value


def mapped_leads(params: dict, k: int) -> list[tuple[int, ...]]:
    found = []
    for value in params.values():
        for v in value if type(value) is tuple else (value,):
            if isinstance(v, Mapped):
                found.append(v.value.shape[:k])
    return found


def per_example(forward: Callable[..., Any]) -> Callable[..., Any]:
    """The rule that runs forward once per example and stacks the outputs: right for any
    primitive, at a Python call per example (what a rule that handles the batch at once avoids)."""

    def rule(k: int, batched: tuple, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        lead = np.broadcast_shapes(
            *(x.shape[:k] for x, b in zip(arrays, batched, strict=True) if b),
            *mapped_leads(params, k),
        )
        arrays = tuple(
            with_lead(x, b, k, lead) if b else x for x, b in zip(arrays, batched, strict=True)
        )
        if math.prod(lead) == 0:  # no example to run: the shape from zeros of one example's
            probe = [
                np.zeros(x.shape[k:], x.dtype) if b else x
                for x, b in zip(arrays, batched, strict=True)
            ]
            first = {name: param_at(v, lead, None) for name, v in params.items()}
            out = np.asarray(forward(*probe, **first))
            return np.zeros(lead + out.shape, out.dtype)
        outs = [
            np.asarray(
                forward(
                    *(x[i] if b else x for x, b in zip(arrays, batched, strict=True)),
                    **{name: param_at(v, lead, i) for name, v in params.items()},
                )
            )
            for i in np.ndindex(*lead)
        ]
        return np.stack(outs).reshape(lead + outs[0].shape)

    return rule


def matmul_batch(k: int, batched: tuple, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b per example: a 1-D operand becomes a one-row (a) or one-column (b) matrix, the
    examples' batch axes are lined up in front of the matrix axes, and the added axis is
    dropped again, as numpy.matmul does for one example."""
    rank_a, rank_b = example_ranks((a, b), batched, k)
    if rank_a == 0 or rank_b == 0:
        raise ValueError("matmul: an operand is 0-d (use * to multiply by a number)")
    if rank_a == 1:
        a = np.expand_dims(a, -2)
    if rank_b == 1:
        b = np.expand_dims(b, -1)
    rank = max(rank_a, rank_b, 2)
    out = np.matmul(with_rank(a, batched[0], k, rank), with_rank(b, batched[1], k, rank))
    if rank_b == 1:
        out = out[..., 0]
    if rank_a == 1:
        out = out[..., 0, :] if rank_b != 1 else out[..., 0]
    return out


def cumsum_batch(k: int, batched: tuple, x: np.ndarray, axis: Any = None) -> np.ndarray:
    """Each example's cumulative sum (axis None: over its flattened elements)."""
    if axis is None:
        return np.cumsum(x.reshape(x.shape[:k] + (-1,)), axis=k)
    return np.cumsum(x, axis=axis + k)


def reshape_batch(k: int, batched: tuple, x: np.ndarray, shape: Any) -> np.ndarray:
    """Each example reshaped: the batch axes stay in front."""
    return x.reshape(x.shape[:k] + (tuple(shape) if isinstance(shape, tuple) else (shape,)))


def broadcast_to_batch(k: int, batched: tuple, x: np.ndarray, shape: tuple) -> np.ndarray:
    """Each example broadcast to `shape`, behind its batch axes."""
    x = with_rank(x, True, k, len(shape))
    return broadcast_to_forward(x, x.shape[:k] + tuple(shape))


def is_basic(item: Any) -> bool:
    return item is None or item is Ellipsis or isinstance(item, slice)


def advanced_block(items: tuple) -> tuple[int, int] | None:
    """(start, stop) of the advanced items of an index (arrays, lists, and integers when there
    are arrays: NumPy then treats integers as arrays too), None if there are none."""
    arrays = [i for i, item in enumerate(items) if not (is_basic(item) or is_integer(item))]
    if not arrays:
        return None
    advanced = [i for i, item in enumerate(items) if not is_basic(item)]
    return advanced[0], advanced[-1] + 1


def is_integer(item: Any) -> bool:
    """An integer index (a bool is not one: NumPy reads x[True] as a mask)."""
    return isinstance(item, (int, np.integer)) and not isinstance(item, bool)


def gather_plan(k: int, lead: tuple[int, ...], index: Any) -> tuple[tuple, int, int] | None:
    """How to index every example at once: (the index for the batched array, where the
    examples' advanced axes come out, how many) -- or None when a loop is needed.

    With nothing mapped in the index, k full slices in front keep the batch axes first, unless
    the advanced items are split by a basic one (NumPy then moves their axes to the front). With
    mapped index arrays, aranges over the batch axes join the advanced items: they come out
    first, then the advanced axes, which belong after the `before` axes of the basic items
    ahead of them."""
    items = index if type(index) is tuple else (index,)
    block = advanced_block(items)
    if block is not None and any(is_basic(item) for item in items[block[0] : block[1]]):
        return None
    if not any(isinstance(item, Mapped) for item in items):
        return (slice(None),) * k + items, 0, 0
    if any(item is None or item is Ellipsis for item in items):
        return None
    assert block is not None  # a Mapped item is an advanced one
    per_example = [
        item.value if isinstance(item, Mapped) else np.asarray(item)
        for item in items[block[0] : block[1]]
    ]
    shape = np.broadcast_shapes(
        *(
            a.shape[k:] if isinstance(i, Mapped) else a.shape
            for a, i in zip(per_example, items[block[0] : block[1]], strict=True)
        )
    )
    width = len(shape)
    advanced = [
        a.reshape(a.shape[:k] + (1,) * (width - (a.ndim - k)) + a.shape[k:])
        if isinstance(item, Mapped)
        else a
        for a, item in zip(per_example, items[block[0] : block[1]], strict=True)
    ]
    aranges = [
        np.arange(n).reshape((1,) * j + (n,) + (1,) * (k - 1 - j + width))
        for j, n in enumerate(lead)
    ]
    return (*aranges, *items[: block[0]], *advanced, *items[block[1] :]), block[0], width


def getitem_batch(k: int, batched: tuple, x: np.ndarray, index: Any) -> np.ndarray:
    """x[index] per example, for every example at once (see gather_plan)."""
    lead = np.broadcast_shapes(
        *([x.shape[:k]] if batched[0] else []), *mapped_leads({"i": index}, k)
    )
    plan = gather_plan(k, lead, index)
    if plan is None:
        return per_example(lambda x, index: x[index])(k, batched, x, index=index)
    physical, before, width = plan
    out = with_lead(x, batched[0], k, lead)[physical]
    if before:  # the advanced axes came out first: move them behind the basic ones before them
        out = np.moveaxis(out, range(k, k + width), range(k + before, k + before + width))
    return out


def scatter_add_batch(k: int, batched: tuple, g: np.ndarray, index: Any, shape: tuple) -> Any:
    """zeros(shape) with g added at index, per example (getitem's transpose, batched alike)."""
    lead = np.broadcast_shapes(
        *([g.shape[:k]] if batched[0] else []), *mapped_leads({"i": index}, k)
    )
    plan = gather_plan(k, lead, index)
    if plan is None:
        return per_example(scatter_add_forward)(k, batched, g, index=index, shape=shape)
    physical, before, width = plan
    g = with_lead(g, batched[0], k, lead)
    if before:
        g = np.moveaxis(g, range(k + before, k + before + width), range(k, k + width))
    out = np.zeros(lead + tuple(shape), dtype=g.dtype)
    np.add.at(out, physical, g)
    return out


def concatenate_batch(k: int, batched: tuple, *xs: np.ndarray, axis: Any = 0) -> np.ndarray:
    """The examples' pieces joined along their axis; an unbatched piece is repeated per example."""
    lead = batch_lead(xs, batched, k)
    xs = tuple(with_lead(x, b, k, lead) for x, b in zip(xs, batched, strict=True))
    if axis is None:  # numpy.concatenate flattens each piece first
        xs, axis = tuple(x.reshape(lead + (-1,)) for x in xs), 0
    return np.concatenate(xs, axis=axis + k)


def pad_batch(k: int, batched: tuple, x: np.ndarray, pad_width: tuple, **params: Any) -> Any:
    """Each example padded; the batch axes get no padding."""
    return pad_forward(x, ((0, 0),) * k + tuple(pad_width), **params)


def einsum_batch(k: int, batched: tuple, *xs: np.ndarray, subscripts: str) -> np.ndarray:
    """The same contraction with k more letters, unused by the subscripts, for the batch axes of
    the batched operands and of the output."""
    letters = "".join(c for c in string.ascii_letters if c not in subscripts)[:k]
    operands, result = subscripts.split("->")
    terms = [letters + t if b else t for t, b in zip(operands.split(","), batched, strict=True)]
    lead = batch_lead(xs, batched, k)
    xs = tuple(with_lead(x, True, k, lead) if b else x for x, b in zip(xs, batched, strict=True))
    return einsum_forward(*xs, subscripts=",".join(terms) + "->" + letters + result)


def in_numpy(rule: Callable[..., Any]) -> Callable[..., Any]:
    """An InNamespace rule as a function of ndarrays (what the batching rules call)."""
    return functools.partial(rule, np)


def samplewise(forward: Callable[..., Any], sample_inputs: tuple[int, ...]) -> Callable[..., Any]:
    """The rule of an image op whose output's sample n depends on sample n of the inputs at
    `sample_inputs` only (pooling, and convolution with one set of weights): the batch axes join
    the samples axis (N), one call, and are split off again. With another input batched
    (per-example weights) the op runs once per example."""
    looped = per_example(forward)

    def rule(k: int, batched: tuple, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        if any(b for i, b in enumerate(batched) if i not in sample_inputs):
            return looped(k, batched, *arrays, **params)
        lead = batch_lead(arrays, batched, k)
        merged = [
            with_lead(x, b, k, lead).reshape((-1,) + x.shape[k + 1 if b else 1 :])
            if i in sample_inputs
            else x
            for i, (x, b) in enumerate(zip(arrays, batched, strict=True))
        ]
        out = forward(*merged, **params)
        return out.reshape(lead + (-1,) + out.shape[1:])

    return rule


# ---------------------------------------------------------------------------------------------
# The table. g = dL/d(out); one VJP per input, in input order.

PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in [
        # out = a + b                grad_a = g,  grad_b = g
        Primitive(
            "add",
            Standard("add"),
            lambda g, out, a, b: g,
            lambda g, out, a, b: g,
            elementwise=True,
            commutative=True,
            notation=Notation(" + ", " + ", infix="sum"),
            saves="",
        ),
        # out = a - b                grad_a = g,  grad_b = -g
        Primitive(
            "sub",
            Standard("subtract"),
            lambda g, out, a, b: g,
            lambda g, out, a, b: -g,
            elementwise=True,
            notation=Notation(" − ", " - ", infix="sum", strict=True),
            saves="",
        ),
        # out = a * b                grad_a = g * b,  grad_b = g * a
        Primitive(
            "mul",
            Standard("multiply"),
            lambda g, out, a, b: g * b,
            lambda g, out, a, b: g * a,
            elementwise=True,
            commutative=True,
            notation=Notation(" * ", " * ", infix="product"),
            saves="a b",
        ),
        # out = a / b                grad_a = g / b,  grad_b = -g * a / b^2 = -g * out / b
        Primitive(
            "div",
            Standard("divide"),
            lambda g, out, a, b: g / b,
            lambda g, out, a, b: -g * out / b,
            elementwise=True,
            notation=Notation(" / ", " / ", infix="product", strict=True),
            saves="out b",
        ),
        # out = -x                   grad_x = -g
        Primitive(
            "neg",
            Standard("negative"),
            lambda g, out, x: -g,
            elementwise=True,
            saves="",
        ),
        # out = a ** b               grad_a = g * b * a^(b-1),  grad_b = g * out * log(a)
        # At a = 0 these give 0 * inf = nan where the derivative has a limit; take it, as PyTorch:
        # for a = b = 0, a^0 = 1 and grad_a = 0 (there the exponent b-1 is raised to 0, so the
        # factor is 1); for b >= 0, grad_b = lim a^b log a = 0 (log is taken of a + 1 = 1 where
        # a = 0), and for b < 0 it is inf * log 0 = -inf. The exponent is changed only where
        # a = 0 too: elsewhere grad_a stays b a^(b-1) as a function of b, so its derivative in b
        # at b = 0 is a^-1 (mixed second derivatives).
        Primitive(
            "pow",
            Standard("pow", numpy=quiet_at_zero(np.power)),
            quiet_at_zero(lambda g, out, a, b: g * b * a ** (b - 1 + (b == 0) * (a == 0))),
            quiet_at_zero(lambda g, out, a, b: g * out * log(a + (a == 0) * (b >= 0))),
            elementwise=True,
            saves="out a b",
        ),
        # out = x ** p, p a number   grad_x = g * p * x^(p-1)   (p a param, not an input: see vjp)
        Primitive(
            "pow_scalar",
            quiet_at_zero(lambda x, exponent: x**exponent),
            quiet_at_zero(pow_scalar_vjp),
            elementwise=True,
            saves="x",
        ),
        # out = a @ b                grad_a = g @ b^T,  grad_b = a^T @ g   (1-D, batched: see vjps)
        Primitive(
            "matmul",
            Standard("matmul"),
            matmul_vjp_a,
            matmul_vjp_b,
            notation=Notation(" · ", r" \cdot ", infix="matmul"),
            batch=matmul_batch,
            explain=explain_matmul,
            saves="a b",
        ),
        # out = exp(x)               grad_x = g * out                        (reuses out)
        Primitive(
            "exp",
            Standard("exp"),
            lambda g, out, x: g * out,
            elementwise=True,
            notation=Notation("exp", r"\exp"),
            saves="out",
        ),
        # out = log(x)               grad_x = g / x
        Primitive(
            "log",
            Standard("log"),
            lambda g, out, x: g / x,
            elementwise=True,
            notation=Notation("log", r"\log"),
            saves="x",
        ),
        # out = sqrt(x)              grad_x = g / (2 * out)                  (reuses out)
        Primitive(
            "sqrt",
            Standard("sqrt"),
            quiet_at_zero(lambda g, out, x: g / (2 * out)),
            elementwise=True,
            saves="out",
        ),
        # out = sigmoid(x)           grad_x = g * out * (1 - out)            (reuses out)
        Primitive(
            "sigmoid",
            InNamespace(sigmoid_in, numpy=stable_sigmoid),
            lambda g, out, x: g * (out * (1 - out)),
            elementwise=True,
            notation=Notation("σ", r"\sigma"),
            saves="out",
        ),
        # out = softplus(x) = log(1 + exp(x))      grad_x = g * sigmoid(x)
        # One primitive, not maximum(x, 0) + log(1 + exp(-|x|)): that composite is smooth but its
        # parts have kinks at 0, where their second derivatives (0 by convention) would give
        # softplus''(0) = 0 instead of sigmoid'(0) = 1/4. numpy.logaddexp(0, x) computes
        # max(x, 0) + log1p(exp(-|x|)): no overflow, full relative precision for x << 0 too.
        Primitive(
            "softplus",
            InNamespace(softplus_in, numpy=softplus_forward),
            lambda g, out, x: g * sigmoid(x),
            elementwise=True,
            saves="x",
        ),
        # out = tanh(x)              grad_x = g * (1 - out^2)                (reuses out)
        Primitive(
            "tanh",
            Standard("tanh"),
            lambda g, out, x: g * (1 - out * out),
            elementwise=True,
            notation=Notation("tanh", r"\tanh"),
            saves="out",
        ),
        # out = max(x, 0)            grad_x = g * [x > 0]       (0 at the kink x = 0, as PyTorch)
        Primitive(
            "relu",
            InNamespace(relu_in, numpy=relu_forward),
            lambda g, out, x: g * (x > 0),
            elementwise=True,
            kink=Kink("x == 0: grad 0", side_of_zero),
            saves="x",
        ),
        # out = |x|                  grad_x = g * sign(x)       (0 at the kink x = 0, as PyTorch)
        Primitive(
            "abs",
            Standard("abs"),
            lambda g, out, x: g * sign(x),
            elementwise=True,
            kink=Kink("x == 0: grad 0", side_of_zero),
            saves="x",
        ),
        # out = sign(x)              grad_x = 0  (0 almost everywhere; 0 at x = 0 by convention)
        Primitive(
            "sign",
            InNamespace(sign_with),
            lambda g, out, x, at_zero=0.0: zeros_like(x),
            elementwise=True,
            kink=Kink("x == 0: grad 0 (and 0 everywhere else)", side_of_zero),
            notation=Notation("sign", omitted=(("at_zero", 0),)),
            saves="",
        ),
        # out = maximum(a, b)        grad_a = g * [a > b],  grad_b = g * [b > a]  (ties share g/2)
        Primitive(
            "maximum",
            Standard("maximum"),
            maximum_vjp_a,
            lambda g, out, a, b: maximum_vjp_a(g, out, b, a),
            elementwise=True,
            commutative=True,
            kink=Kink("a == b: each input gets g/2", side_of_tie),
            notation=Notation("max", r"\max"),
            saves="a b",
        ),
        # out = sin(x)               grad_x = g * cos(x)
        Primitive(
            "sin",
            Standard("sin"),
            lambda g, out, x: g * cos(x),
            elementwise=True,
            saves="x",
        ),
        # out = cos(x)               grad_x = -g * sin(x)
        Primitive(
            "cos",
            Standard("cos"),
            lambda g, out, x: -g * sin(x),
            elementwise=True,
            saves="x",
        ),
        # out = tan(x)               grad_x = g * (1 + out^2)  (= g / cos(x)^2)   (reuses out)
        Primitive(
            "tan",
            Standard("tan"),
            lambda g, out, x: g * (1 + out * out),
            elementwise=True,
            saves="out",
        ),
        # out = arcsin(x)            grad_x = g / sqrt(1 - x^2)      (inf at |x| = 1, the edges)
        Primitive(
            "arcsin",
            Standard("asin", numpy=np.arcsin),
            lambda g, out, x: g / sqrt(1 - x * x),
            elementwise=True,
            saves="x",
        ),
        # out = arccos(x)            grad_x = -g / sqrt(1 - x^2)
        Primitive(
            "arccos",
            Standard("acos", numpy=np.arccos),
            lambda g, out, x: -g / sqrt(1 - x * x),
            elementwise=True,
            saves="x",
        ),
        # out = arctan(x)            grad_x = g / (1 + x^2)
        Primitive(
            "arctan",
            Standard("atan", numpy=np.arctan),
            lambda g, out, x: g / (1 + x * x),
            elementwise=True,
            saves="x",
        ),
        # out = sinh(x)              grad_x = g * cosh(x)
        Primitive(
            "sinh",
            Standard("sinh"),
            lambda g, out, x: g * cosh(x),
            elementwise=True,
            saves="x",
        ),
        # out = cosh(x)              grad_x = g * sinh(x)
        Primitive(
            "cosh",
            Standard("cosh"),
            lambda g, out, x: g * sinh(x),
            elementwise=True,
            saves="x",
        ),
        # out = log(1 + x)           grad_x = g / (1 + x)    (log1p: exact for tiny x, as NumPy's)
        Primitive(
            "log1p",
            Standard("log1p"),
            lambda g, out, x: g / (1 + x),
            elementwise=True,
            saves="x",
        ),
        # out = exp(x) - 1           grad_x = g * (out + 1)                  (reuses out)
        Primitive(
            "expm1",
            Standard("expm1"),
            lambda g, out, x: g * (out + 1),
            elementwise=True,
            saves="out",
        ),
        # out = log2(x)              grad_x = g / (x * ln 2)
        Primitive(
            "log2",
            Standard("log2"),
            lambda g, out, x: g / (x * math.log(2)),
            elementwise=True,
            saves="x",
        ),
        # out = log10(x)             grad_x = g / (x * ln 10)
        Primitive(
            "log10",
            Standard("log10"),
            lambda g, out, x: g / (x * math.log(10)),
            elementwise=True,
            saves="x",
        ),
        # out = 2^x                  grad_x = g * out * ln 2                 (reuses out)
        Primitive(
            "exp2",
            InNamespace(exp2_in, numpy=np.exp2),
            lambda g, out, x: g * out * math.log(2),
            elementwise=True,
            saves="out",
        ),
        # out = erf(x) = 2/sqrt(pi) integral_0^x exp(-t^2) dt    grad_x = g * 2/sqrt(pi) exp(-x^2)
        Primitive(
            "erf",
            InNamespace(erf_in, numpy=special.erf),
            lambda g, out, x: g * (2 / math.sqrt(math.pi)) * exp(-(x * x)),
            elementwise=True,
            saves="x",
        ),
        # out = cond ? a : b         grad_cond: none (a condition),  grad_a = g * [cond],
        #                            grad_b = g * [not cond]
        # (g is masked, not the values: a nan or inf in the branch not taken does not leak in)
        Primitive(
            "where",
            Standard("where"),
            None,
            lambda g, out, cond, a, b: g * cond,
            lambda g, out, cond, a, b: g * (cond == 0),
            elementwise=True,
            saves="cond",
        ),
        # out = clip(x, a_min, a_max)    grad_x = g * [a_min <= x <= a_max]
        # At a bound the gradient is g (the bounds count as inside), as PyTorch's clamp.
        Primitive(
            "clip",
            InNamespace(clip_in, numpy=clip_forward),
            clip_vjp,
            elementwise=True,
            kink=Kink(
                "x == a_min or x == a_max: grad g (the bounds count as inside)", side_of_bounds
            ),
            saves="x",
        ),
        # out = minimum(a, b)        grad_a = g * [a < b],  grad_b = g * [b < a]  (ties share g/2)
        Primitive(
            "minimum",
            Standard("minimum"),
            minimum_vjp_a,
            lambda g, out, a, b: minimum_vjp_a(g, out, b, a),
            elementwise=True,
            commutative=True,
            kink=Kink("a == b: each input gets g/2", side_of_tie),
            notation=Notation("min", r"\min"),
            saves="a b",
        ),
        # out = sum(x, axis)         grad_x = g broadcast over the summed axes
        # (the forward is the reduction numpy.sum calls, the same pairwise sum bit for bit, without
        # numpy.sum's Python-level dispatch, which costs more than a small sum)
        Primitive(
            "sum",
            InNamespace(sum_in, numpy=np.add.reduce),
            sum_vjp,
            axis_param="axis",
            saves="",
        ),
        # out = max(x, axis)         grad_x = g at the maxima (ties share), 0 elsewhere
        Primitive(
            "max",
            Standard("max"),
            max_vjp,
            axis_param="axis",
            kink=Kink("ties: the maxima share g equally", maxima),
            saves="out x",
        ),
        # out = log_softmax(x, axis)  grad_x = g - exp(out) * sum(g, axis)     (reuses out)
        Primitive(
            "log_softmax",
            InNamespace(log_softmax_in, numpy=log_softmax_forward),
            log_softmax_vjp,
            axis_param="axis",
            saves="out",
        ),
        # out = log(sum(exp(x), axis))   grad_x = g * exp(x - out) = g * softmax(x)  (reuses out)
        # (the forward shifts by the maximum, as log_softmax's: see logsumexp_forward)
        Primitive(
            "logsumexp",
            InNamespace(logsumexp_in, numpy=logsumexp_forward),
            logsumexp_vjp,
            axis_param="axis",
            saves="out x",
        ),
        # out = cumsum(x, axis)      grad_x = cumsum of g from the far end of the axis
        Primitive(
            "cumsum",
            InNamespace(cumsum_in, numpy=np.cumsum),
            cumsum_vjp,
            axis_param="axis",
            batch=cumsum_batch,
            saves="",
        ),
        # out = prod(x, axis)        grad_x_i = g * product of the other x_j  (zeros allowed)
        Primitive(
            "prod",
            Standard("prod"),
            prod_vjp,
            axis_param="axis",
            saves="x",
        ),
        # out = broadcast_to(x, shape)   grad_x = g summed back to x's shape   (by the engine)
        Primitive(
            "broadcast_to",
            InNamespace(broadcast_to_in, numpy=broadcast_to_forward),
            lambda g, out, x, shape: g,
            notation=Notation("broadcast_to", bare=("shape",)),
            batch=broadcast_to_batch,
            saves="",
        ),
        # out = reshape(x, shape)    grad_x = reshape(g, x.shape)
        Primitive(
            "reshape",
            InNamespace(reshape_in, numpy=np.reshape),
            lambda g, out, x, shape: g.reshape(x.shape),
            notation=Notation("reshape", bare=("shape",)),
            explain=explain_reshape,
            batch=reshape_batch,
            saves="",
        ),
        # out = transpose(x, axes)   grad_x = transpose(g, argsort(axes))
        Primitive(
            "transpose",
            InNamespace(transpose_in, numpy=np.transpose),
            transpose_vjp,
            axis_param="axes",
            permutation=True,
            notation=Notation("transpose", bare=("axes",)),
            saves="",
        ),
        # out = x[index]             grad_x = zeros like x, with g added at index (repeats add up)
        Primitive(
            "getitem",
            InNamespace(getitem_in, numpy=lambda x, index: x[index]),
            lambda g, out, x, index: scatter_add(g, index=index, shape=x.shape),
            explain=explain_getitem,
            batch=getitem_batch,
            saves="",
        ),
        # out = zeros(shape) with g added at index      grad_g = out_grad[index]
        Primitive(
            "scatter_add",
            InNamespace(scatter_add_in, numpy=scatter_add_forward),
            lambda g, out, x, index, shape: g[index],
            batch=scatter_add_batch,
            saves="",
        ),
        # out = concatenate(xs, axis)    grad_xs[i] = the slice of g that xs[i] filled
        Primitive(
            "concatenate",
            InNamespace(concatenate_in, numpy=concatenate_forward),
            concatenate_vjp,
            variadic=True,
            axis_param="axis",
            batch=concatenate_batch,
            saves="",
        ),
        # out = pad(x, pad_width, constant)    grad_x = g with the padding sliced off
        Primitive(
            "pad",
            InNamespace(pad_in, numpy=pad_forward),
            pad_vjp,
            notation=Notation("pad", bare=("pad_width",)),
            batch=pad_batch,
            saves="",
        ),
        # out = einsum(subscripts, xs)   grad_xs[i] = einsum of g with the other operands onto
        # x_i's subscripts (letters only x_i has: broadcast; repeated ones: on the diagonal).
        # The subscripts param is explicit ("ij,jk->ik"), without "...": an.einsum writes it so.
        Primitive(
            "einsum",
            InNamespace(einsum_in, numpy=einsum_forward),
            einsum_vjp,
            variadic=True,
            batch=einsum_batch,
            saves="xs",
        ),
        # out = x as dtype           grad_x = g as x's dtype
        Primitive(
            "astype",
            InNamespace(astype_in, numpy=lambda x, dtype: x.astype(dtype)),
            lambda g, out, x, dtype: astype(g, dtype=x.dtype),
            elementwise=True,
            notation=Notation("astype", bare=("dtype",)),
            saves="",
        ),
        # out = a copy of x          grad_x = g     (Tensor.clone; gives each leaf's .grad its own)
        Primitive(
            "copy",
            InNamespace(copy_in, numpy=np.copy),
            lambda g, out, x: g,
            elementwise=True,
            saves="",
        ),
        # out = zeros like x         grad_x = 0   (used by the zero rules above)
        Primitive(
            "zeros_like",
            Standard("zeros_like"),
            lambda g, out, x: zeros_like(x),
            elementwise=True,
            saves="",
        ),
        # Images (N, C, H, W); the params are pairs (height, width): see window_view.
        # out[n, o, i, j] = sum_{c, p, q} x[n, c, i*sh + p*dh - ph, j*sw + q*dw - pw] w[o, c, p, q]
        # (x is 0 in the padding). out is linear in x and in w, so each gradient is the transpose:
        #   grad_x = conv2d_input_grad(g, w)    g times the weights, added back on each window
        #   grad_w = conv2d_weight_grad(x, g)   sum over n, i, j of g times each window
        Primitive(
            "conv2d",
            InNamespace(conv2d_forward),
            lambda g, out, x, w, **p: conv2d_input_grad(g, w, input_size=x.shape[2:], **p),
            lambda g, out, x, w, **p: conv2d_weight_grad(x, g, kernel_size=w.shape[2:], **p),
            notation=Notation("conv2d", omitted=CONV_DEFAULTS),
            batch=samplewise(in_numpy(conv2d_forward), sample_inputs=(0,)),
            saves="x w",
        ),
        # out = conv2d_input_grad(u, w), bilinear: <g, out> = <conv2d(g, w), u>, which is
        # <conv2d_weight_grad(g, u), w>:  grad_u = conv2d(g, w),  grad_w = conv2d_weight_grad(g, u)
        Primitive(
            "conv2d_input_grad",
            InNamespace(conv2d_input_grad_forward),
            lambda g, out, u, w, input_size, **p: conv2d(g, w, **p),
            lambda g, out, u, w, input_size, **p: conv2d_weight_grad(
                g, u, kernel_size=w.shape[2:], **p
            ),
            notation=Notation("conv2d_input_grad", omitted=CONV_DEFAULTS),
            batch=samplewise(in_numpy(conv2d_input_grad_forward), sample_inputs=(0,)),
            saves="u w",
        ),
        # out = conv2d_weight_grad(x, u), bilinear: <g, out> = <conv2d(x, g), u>, which is
        # <x, conv2d_input_grad(u, g)>:   grad_x = conv2d_input_grad(u, g),  grad_u = conv2d(x, g)
        Primitive(
            "conv2d_weight_grad",
            InNamespace(conv2d_weight_grad_forward),
            lambda g, out, x, u, kernel_size, **p: conv2d_input_grad(
                u, g, input_size=x.shape[2:], **p
            ),
            lambda g, out, x, u, kernel_size, **p: conv2d(x, g, **p),
            notation=Notation("conv2d_weight_grad", omitted=CONV_DEFAULTS),
            # each example's weight gradient sums over its own samples: one call per example
            batch=per_example(in_numpy(conv2d_weight_grad_forward)),
            saves="x u",
        ),
        # out = the mean of each window of x (the padding's zeros count: PyTorch's default)
        #                            grad_x = avg_pool2d_grad(g)  (its transpose: g / (kh * kw)
        #                                                          added on every pixel of a window)
        Primitive(
            "avg_pool2d",
            InNamespace(avg_pool2d_forward),
            lambda g, out, x, **p: avg_pool2d_grad(g, input_size=x.shape[2:], **p),
            notation=Notation("avg_pool2d", omitted=POOL_DEFAULTS),
            batch=samplewise(in_numpy(avg_pool2d_forward), sample_inputs=(0,)),
            saves="",
        ),
        # out = avg_pool2d_grad(u), linear; its transpose is avg_pool2d    grad_u = avg_pool2d(g)
        Primitive(
            "avg_pool2d_grad",
            InNamespace(avg_pool2d_grad_forward),
            lambda g, out, u, input_size, **p: avg_pool2d(g, **p),
            notation=Notation("avg_pool2d_grad", omitted=POOL_DEFAULTS),
            batch=samplewise(in_numpy(avg_pool2d_grad_forward), sample_inputs=(0,)),
            saves="",
        ),
        # out = the maximum of each window of x (padded with -inf)
        #                            grad_x = max_pool2d_scatter(g, x):
        # each window's g goes to its maximum. Ties: all of g goes to the window's first maximum in
        # row-major order, as PyTorch (max shares g among ties instead; here PyTorch's choice
        # keeps gradients equal to those of networks ported from it, and costs one argmax).
        Primitive(
            "max_pool2d",
            InNamespace(max_pool2d_forward),
            lambda g, out, x, **p: max_pool2d_scatter(g, x, **p),
            kink=Kink(MAX_POOL_TIES, window_maxima),
            notation=Notation("max_pool2d", omitted=POOL_DEFAULTS),
            batch=samplewise(in_numpy(max_pool2d_forward), sample_inputs=(0,)),
            saves="x",
        ),
        # out = max_pool2d_scatter(u, x): u added at the maxima of x's windows. Linear in u; in x
        # constant between ties:    grad_u = max_pool2d_gather(g, x),  grad_x = 0
        Primitive(
            "max_pool2d_scatter",
            InNamespace(max_pool2d_scatter_forward),
            lambda g, out, u, x, **p: max_pool2d_gather(g, x, **p),
            lambda g, out, u, x, **p: zeros_like(x),
            kink=Kink(MAX_POOL_TIES, window_maxima),
            notation=Notation("max_pool2d_scatter", omitted=POOL_DEFAULTS),
            batch=samplewise(in_numpy(max_pool2d_scatter_forward), sample_inputs=(0, 1)),
            saves="x",
        ),
        # out = max_pool2d_gather(v, x): v read at the maxima of x's windows (the scatter's
        # transpose):               grad_v = max_pool2d_scatter(g, x),  grad_x = 0
        Primitive(
            "max_pool2d_gather",
            InNamespace(max_pool2d_gather_forward),
            lambda g, out, v, x, **p: max_pool2d_scatter(g, x, **p),
            lambda g, out, v, x, **p: zeros_like(x),
            kink=Kink(MAX_POOL_TIES, window_maxima),
            notation=Notation("max_pool2d_gather", omitted=POOL_DEFAULTS),
            batch=samplewise(in_numpy(max_pool2d_gather_forward), sample_inputs=(0, 1)),
            saves="x",
        ),
    ]
}


# Operations outside the graph: their outputs are booleans or indices, which have no gradient, so
# recording never keeps them (tensor.record keeps floating outputs only). They are primitives so
# that every operation on a tensor takes one path, vmap's batching rules included; not being
# differentiable, they are not in the table.


def index_of_extreme_batch(find: Callable[..., Any]) -> Callable[..., Any]:
    """argmax / argmin per example: along the axis moved past the batch axes, or (axis None)
    over each example's flattened elements."""

    def rule(k: int, batched: tuple, x: np.ndarray, axis: Any = None, keepdims: bool = False):
        if axis is None:
            out = find(x.reshape(x.shape[:k] + (-1,)), axis=k)
            return out.reshape(out.shape + (1,) * (x.ndim - k)) if keepdims else out
        return find(x, axis=axis + k, keepdims=keepdims)

    return rule


OUTSIDE_GRAPH: dict[str, Primitive] = {
    p.name: p
    for p in [
        *(
            Primitive(name, ufunc, None, None, elementwise=True)
            for name, ufunc in [
                ("less", Standard("less")),
                ("less_equal", Standard("less_equal")),
                ("greater", Standard("greater")),
                ("greater_equal", Standard("greater_equal")),
                ("equal", Standard("equal")),
                ("not_equal", Standard("not_equal")),
            ]
        ),
        Primitive(
            "argmax",
            Standard("argmax"),
            None,
            axis_param="axis",
            batch=index_of_extreme_batch(np.argmax),
        ),
        Primitive(
            "argmin",
            Standard("argmin"),
            None,
            axis_param="axis",
            batch=index_of_extreme_batch(np.argmin),
        ),
    ]
}


def table_primitive(name: str) -> Primitive:
    """The table's primitive of that name (what a pickled one is loaded as)."""
    return PRIMITIVES[name]


# The primitives that rules call as functions.
astype = PRIMITIVES["astype"]
broadcast_to = PRIMITIVES["broadcast_to"]
exp = PRIMITIVES["exp"]
cos = PRIMITIVES["cos"]
cosh = PRIMITIVES["cosh"]
cumsum = PRIMITIVES["cumsum"]
einsum = PRIMITIVES["einsum"]
prod = PRIMITIVES["prod"]
sin = PRIMITIVES["sin"]
sinh = PRIMITIVES["sinh"]
sqrt = PRIMITIVES["sqrt"]
log = PRIMITIVES["log"]
sigmoid = PRIMITIVES["sigmoid"]
scatter_add = PRIMITIVES["scatter_add"]
sign = PRIMITIVES["sign"]
zeros_like = PRIMITIVES["zeros_like"]
conv2d = PRIMITIVES["conv2d"]
conv2d_input_grad = PRIMITIVES["conv2d_input_grad"]
conv2d_weight_grad = PRIMITIVES["conv2d_weight_grad"]
avg_pool2d = PRIMITIVES["avg_pool2d"]
avg_pool2d_grad = PRIMITIVES["avg_pool2d_grad"]
max_pool2d_scatter = PRIMITIVES["max_pool2d_scatter"]
max_pool2d_gather = PRIMITIVES["max_pool2d_gather"]
