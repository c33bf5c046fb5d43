"""NumPy's functions on Tensors: the table of the autonet function that records each one.

A Tensor takes part in NumPy's two override protocols (NEP 13 `__array_ufunc__`, NEP 18
`__array_function__`), so NumPy code runs unchanged on tensors and records its graph:

    def f(x):                        # written for ndarrays
        return np.sum(np.tanh(x) ** 2)

    an.grad(f)(x)                    # = 2 tanh(x) (1 - tanh(x)^2)

The contract:

- A NumPy ufunc or function of the table, called with at least one Tensor among its array
  arguments, calls the autonet function the table names and returns its result: a Tensor,
  recorded as that function records it (`np.exp(t)` is `an.exp(t)`, `np.sum(t, axis=0)` is
  `t.sum(axis=0)`). Comparisons (`np.less`, ...) return boolean tensors outside the graph, as
  Tensor's comparison operators do.
- Operands mix as in the operators: NumPy calls `ndarray + t`, `ndarray * t` and `ndarray @ t`
  through the ufunc, which records `add`, `mul` and `matmul` with the array first. An operand
  before the first Tensor becomes a Tensor as a reflected operator makes it (`as_operand`: arrays
  keep their dtype, a Python number takes the tensor's floating dtype, so float32 stays float32);
  the others are handed to the autonet function as they are, as a direct operator gets them
  (`np.power(t, 2)` records `pow_scalar`, as `t ** 2`). `Tensor op Tensor` and `Tensor op
  ndarray` never come here: Python calls Tensor's own operators first.
- `np.add.reduce` is `sum` and `np.maximum.reduce` is `max` (with NumPy's default axis=0);
  ufunc methods other than `__call__` are otherwise refused.
- `np.split` returns a list of tensors; `np.argmax` and `np.argmin` integer tensors outside the
  graph, as autonet's argmax and argmin; `np.where(condition)` alone (np.nonzero: indices) is
  computed by NumPy on the values.
- The few functions of ON_VALUES, whose results have no gradient (`np.isfinite`, `np.allclose`,
  `np.shape`, ...), are computed by NumPy on the values: an array result becomes a tensor
  outside the graph, as a comparison's, and a bool or a shape is returned as NumPy gives it.
- Any other NumPy function or ufunc raises TypeError naming it: its result would be computed on
  the values, outside the graph, and gradients would silently stop there. Compute with an
  autonet operation, or call it on `np.asarray(t)` to get the values on purpose.
  `np.asarray(t)` and `np.array(t)` (the `__array__` protocol) still give the plain array.
  NumPy dispatches on the array arguments only: a list of tensors where NumPy expects one array
  (`np.sum([t, u])`) is converted by `__array__` and leaves the graph; `np.concatenate([t, u])`
  and `np.stack`, whose arguments are sequences, record.
- `out=` is refused (writing into a tensor, or into an array a graph may have saved, would
  change recorded values), and so is any argument the autonet function has no parameter for
  (`where=`, `dtype=`, `order=`, ...); an argument passed as None where NumPy's default is None
  is ignored.

Adding an autonet operation to NumPy's dispatch is one line of NUMPY: `np.sin: ops.sin`
(tests/test_numpy_dispatch.py then checks it against NumPy and finite differences; a function
other than an element-wise ufunc also needs a case there). A function's NumPy arguments are
bound by NumPy's own signature; its first (the array, or the sequence of arrays) is passed first
and every other one by its NumPy name (NumPy's `**kwargs`, as np.pad's `constant_values`, by
their own names), which the autonet function must share (`axis`, `keepdims`, `shape`, `axes`);
one it lacks is refused. Where the names differ a small adapter here maps them: `np.where`'s
x and y, `np.clip`'s a_min/a_max or min/max, `np.einsum`'s operands (and its optimize, which
only orders NumPy's contraction, ignored), `np.take_along_axis`'s default axis=-1.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from autonet import ops
from autonet.tensor import Tensor, as_operand

# Adapters: NumPy's names and defaults where the autonet function's differ.


def take_along_axis(arr: Any, indices: Any, axis: int | None = -1) -> Tensor:
    """np.take_along_axis: NumPy's default axis=-1 (autonet's take_along_axis has none)."""
    return ops.take_along_axis(arr, indices, axis)


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """np.where(condition, x, y): NumPy's x and y are ops.where's a and b. np.where(condition)
    alone is np.nonzero, indices without gradient: computed by NumPy on the values."""
    if x is None and y is None:
        return on_values(np.where, (condition,), {})
    return ops.where(condition, x, y)


def clip(
    a: Any,
    a_min: Any = None,
    a_max: Any = None,
    *,
    min: Any = None,  # noqa: A002 - NumPy 2's names
    max: Any = None,  # noqa: A002
) -> Tensor:
    """np.clip: bounds by NumPy's a_min/a_max or NumPy 2's min/max (not both kinds, as NumPy)."""
    if (min is not None or max is not None) and (a_min is not None or a_max is not None):
        np.clip(np.empty(0), a_min, a_max, min=min, max=max)  # NumPy's ValueError
    return ops.clip(a, a_min if min is None else min, a_max if max is None else max)


def einsum(operands: tuple, optimize: Any = False) -> Tensor:
    """np.einsum(subscripts, *operands): NumPy binds them all to one tuple. optimize only
    chooses NumPy's order of contraction; autonet's einsum contracts in one call."""
    return ops.einsum(*operands)


# NumPy ufunc or function -> the autonet function that records it. A ufunc's inputs are its
# operands; a function's arguments are bound by NumPy's signature (see the module docstring).
NUMPY: dict[Callable[..., Any], Callable[..., Any]] = {
    # element-wise ufuncs (ndarray's operators call them too: ndarray + t is np.add(ndarray, t))
    np.add: ops.add,
    np.subtract: ops.sub,
    np.multiply: ops.mul,
    np.divide: ops.div,  # also np.true_divide: the same ufunc
    np.power: ops.pow,
    np.matmul: ops.matmul,
    np.maximum: ops.maximum,
    np.negative: ops.neg,
    np.exp: ops.exp,
    np.log: ops.log,
    np.sqrt: ops.sqrt,
    np.tanh: ops.tanh,
    np.absolute: ops.abs,  # also np.abs
    np.sign: ops.sign,
    np.minimum: ops.minimum,
    np.square: ops.square,
    np.sin: ops.sin,
    np.cos: ops.cos,
    np.tan: ops.tan,
    np.arcsin: ops.arcsin,
    np.arccos: ops.arccos,
    np.arctan: ops.arctan,
    np.sinh: ops.sinh,
    np.cosh: ops.cosh,
    np.log1p: ops.log1p,
    np.expm1: ops.expm1,
    np.log2: ops.log2,
    np.log10: ops.log10,
    np.exp2: ops.exp2,
    # comparisons: boolean tensors outside the graph, as Tensor's operators
    np.less: Tensor.__lt__,
    np.less_equal: Tensor.__le__,
    np.greater: Tensor.__gt__,
    np.greater_equal: Tensor.__ge__,
    np.equal: Tensor.__eq__,
    np.not_equal: Tensor.__ne__,
    # ufunc reductions (axis=0 by default, as NumPy's ufunc.reduce)
    np.add.reduce: ops.sum,
    np.maximum.reduce: ops.max,
    # functions
    np.sum: ops.sum,
    np.mean: ops.mean,
    np.max: ops.max,
    np.amax: ops.max,
    np.reshape: ops.reshape,
    np.transpose: ops.transpose,
    np.swapaxes: Tensor.swapaxes,
    np.concatenate: ops.concatenate,
    np.stack: ops.stack,
    np.broadcast_to: ops.broadcast_to,
    np.copy: Tensor.clone,
    np.min: ops.min,
    np.amin: ops.min,
    np.var: ops.var,
    np.std: ops.std,
    np.prod: ops.prod,
    np.cumsum: ops.cumsum,
    np.squeeze: ops.squeeze,
    np.expand_dims: ops.expand_dims,
    np.split: ops.split,  # a list of tensors
    np.take_along_axis: take_along_axis,
    np.tile: ops.tile,
    np.repeat: ops.repeat,
    np.tensordot: ops.tensordot,
    np.outer: ops.outer,
    np.trace: ops.trace,
    np.where: where,
    np.clip: clip,
    np.pad: ops.pad,
    np.einsum: einsum,
    # indices: integer tensors outside the graph (an index has no gradient)
    np.argmax: ops.argmax,
    np.argmin: ops.argmin,
}

# Not differentiable (their results are booleans, shapes or counts), so nothing is lost outside
# the graph: NumPy computes them on the tensors' values. An array result becomes a tensor outside
# the graph, as a comparison's; other results (a bool, a shape) are returned as NumPy gives them.
ON_VALUES: frozenset[Any] = frozenset(
    {np.isfinite, np.isnan, np.isinf, np.allclose, np.isclose, np.array_equal, np.all, np.any}
    | {np.shape, np.ndim, np.size}
)


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """Tensor.__array_ufunc__: `ufunc.method(*inputs, **kwargs)` by the table, or TypeError."""
    if method == "__call__" and not kwargs:  # ndarray + t, np.exp(t): the common case first
        function = NUMPY.get(ufunc)
        if function is not None:
            return function(*operands(inputs, ufunc))
    # an argument passed as None (dtype=None, np.add.reduce(x, 0, None)) is NumPy's default
    kwargs = {key: value for key, value in kwargs.items() if value is not None or key == "axis"}
    key = ufunc if method == "__call__" else getattr(ufunc, method)
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    function = look_up(key, name, kwargs)
    if function is None:
        return on_values(key, inputs, kwargs)
    if method == "reduce":
        check_arguments(name, kwargs, parameters_of(function)[1:])
        return function(*inputs, **{"axis": 0, **kwargs})
    check_arguments(name, kwargs, ())
    return function(*operands(inputs, ufunc))


def array_function(func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
    """Tensor.__array_function__: `func(*args, **kwargs)` by the table, or TypeError."""
    if not all(issubclass(kind, (Tensor, np.ndarray)) for kind in types):
        return NotImplemented  # another library's array: let it (or NumPy) decide
    name = numpy_name(func)
    function = look_up(func, name, kwargs)
    if function is None:
        return on_values(func, args, kwargs)
    signature = numpy_signature(func)
    first, *rest = bound = signature.bind(*args, **kwargs).arguments
    # NumPy's **kwargs (np.pad's constant_values) are arguments by their own names
    given = {}
    for key in rest:
        if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
            given.update(bound[key])
        else:
            given[key] = bound[key]
    # an argument passed as None where NumPy's default is None changes nothing
    given = {
        key: value
        for key, value in given.items()
        if not (
            value is None
            and key in signature.parameters
            and signature.parameters[key].default is None
        )
    }
    if "out" in given:
        raise out_refused(name)
    check_arguments(name, given, parameters_of(function)[1:])
    return function(bound[first], **given)


def look_up(key: Any, name: str, kwargs: dict) -> Callable[..., Any] | None:
    """key's autonet function, or None for one of ON_VALUES; TypeError for out= (None is NumPy's
    default) and for a key in neither table."""
    if kwargs.get("out") is not None:
        raise out_refused(name)
    if key in ON_VALUES:
        return None
    function = NUMPY.get(key)
    if function is None:
        raise not_supported(name)
    return function


def operands(inputs: tuple, ufunc: np.ufunc) -> tuple:
    """The ufunc's inputs for the autonet function: those before the first Tensor made Tensors
    as a reflected operator makes them, the rest as they are (a direct operator converts them)."""
    if type(inputs[0]) is Tensor:
        return inputs
    name = f"np.{ufunc.__name__}"
    if len(inputs) == 2 and type(inputs[1]) is Tensor:  # ndarray + t, 2.0 * t
        return as_operand(inputs[0], inputs[1], name), inputs[1]
    first = [isinstance(x, Tensor) for x in inputs].index(True)
    like = inputs[first]
    return tuple(as_operand(x, like, name) for x in inputs[:first]) + inputs[first:]


def on_values(func: Callable, args: tuple, kwargs: dict) -> Any:
    """func computed by NumPy on the values: Tensors (also in a list or tuple) become their
    arrays, and an array result a tensor outside the graph."""
    result = func(*map(values_of, args), **{k: values_of(v) for k, v in kwargs.items()})
    return Tensor.wrap(result) if type(result) is np.ndarray else result


def values_of(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(map(values_of, x))
    return x


def check_arguments(name: str, given: Any, accepted: tuple[str, ...]) -> None:
    """TypeError for the first argument the autonet function has no parameter for."""
    for key in given:
        if key not in accepted:
            takes = f"takes {', '.join(accepted)}" if accepted else "takes no other arguments"
            raise TypeError(
                f"{name}: {key}= is not supported on autonet Tensors ({name} {takes} here); "
                f"leave it out, or call {name} on np.asarray(t) to compute on the values "
                "outside the graph"
            )


def not_supported(name: str) -> TypeError:
    return TypeError(
        f"{name} is not supported on autonet Tensors (it would leave the graph); use an autonet "
        "operation, or np.asarray(t) to compute on the values outside the graph"
    )


def out_refused(name: str) -> TypeError:
    return TypeError(
        f"{name}: out= is not supported on autonet Tensors (writing into an array would change "
        "values a graph may have recorded); use the returned tensor instead"
    )


def numpy_name(func: Callable) -> str:
    """np.sum, np.linalg.norm: how a NumPy function is spelled in errors."""
    module = getattr(func, "__module__", None) or "numpy"
    return module.replace("numpy", "np", 1) + "." + func.__name__


@functools.cache
def numpy_signature(func: Callable) -> inspect.Signature:
    return inspect.signature(func)


@functools.cache
def parameters_of(function: Callable) -> tuple[str, ...]:
    """The autonet function's parameter names, in order."""
    return tuple(inspect.signature(function).parameters)
