"""Traced: an array followed through a function. Each NumPy operation on it is computed now, on
the array it stands for, and written as one line of the code (codegen.py) by apply(); follow()
runs a primitive's forward or VJP rule on Traced values, or writes it as one call where the
tracer cannot follow it. The whole story: docs/replay.md.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from autonet import backend
from autonet.batched import ValuesNeededError
from autonet.primitives import PRIMITIVES, ArrayStandIn, Primitive
from autonet.replay.codegen import CodeWriter, Value, function_name
from autonet.tensor import Tensor, apply_in_namespace


def apply(
    code: CodeWriter,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    write: Callable[[list[str]], str],
    allocates: bool = False,
    ufunc: np.ufunc | None = None,
) -> Traced:
    """function(*args, **kwargs) on the operands' values, computed now. If every operand is a
    constant, so is the result; otherwise a line `v3 = write(reads)` of the code computes it at
    each call (write renders the operation with code.text, collecting the locals it reads).

    allocates: the operation allocates its result and keeps nothing it reads (see
    codegen.Line.allocates), if its operands are arrays, NumPy scalars or Python numbers.
    ufunc: the operation is exactly ufunc(*args), so the line may be written with out=
    (see codegen.Elementwise)."""
    value = function(*values_of(args), **values_of(kwargs))
    if is_constant(args) and is_constant(kwargs):
        return Traced(value, code, constant=True)
    if ufunc is np.multiply and not kwargs:
        unchanged = multiplied_by_ones(args, value)
        if unchanged is not None:
            return unchanged
    reads: list[str] = []
    expression = write(reads)
    name = code.fresh(code.prefix)
    # an operand of another kind (an ndarray subclass, a list) may run other code
    allocates = allocates and all(map(is_plain, args))
    elementwise = None
    if allocates and ufunc is not None and not kwargs:
        elementwise = code.elementwise(ufunc, args, value)
    code.emit(name, f"{name} = {expression}", reads, value, allocates, elementwise)
    return Traced(value, code, name)


def multiplied_by_ones(args: tuple[Any, ...], value: Any) -> Traced | None:
    """The operand of a * b that the product is, bit for bit, when the other one is a constant of
    ones that changes neither its shape nor its dtype (x * 1 = x in IEEE arithmetic, NaN and -0
    included): the line would only copy it. The chain rule makes such products: the gradient of
    a sum, broadcast back and scaled by constants that come to 1 (0.5 * (O - Y)^2's 0.5 * 2)."""
    for x, ones in ((args[0], args[1]), (args[1], args[0])):
        if (
            isinstance(x, Traced)
            and not x.constant
            and is_constant(ones)
            and type(x.value) is np.ndarray
            and type(value) is np.ndarray
            and x.value.shape == value.shape
            and x.value.dtype == value.dtype
            and bool(np.all(np.asarray(values_of(ones)) == 1))
        ):
            return x
    return None


def call(
    code: CodeWriter,
    name: str,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict,
    allocates: bool = False,
    ufunc: np.ufunc | None = None,
) -> Traced:
    """function(*args, **kwargs), written as a call of `name` (of the code's namespace)."""
    return apply(
        code,
        function,
        args,
        kwargs,
        lambda reads: f"{name}({code.arguments(args, kwargs, reads)})",
        allocates,
        ufunc,
    )


def binary(
    symbol: str, function: Callable[[Any, Any], Any], ufunc: np.ufunc | None = None
) -> tuple[Callable, Callable]:
    """The operator `a symbol b` and its reflected form, each computed with function(a, b).
    ufunc: the ufunc NumPy calls for it on arrays, when it calls no other (`**` may call
    np.square or np.sqrt instead of np.power)."""

    def operation(a: Any, b: Any) -> Traced:
        code = a.code if isinstance(a, Traced) else b.code
        a, b = numbers_as_arrays(function, a, b)

        def write(reads: list[str]) -> str:
            # a negative literal in parentheses: -1.0 ** g would be -(1.0 ** g)
            texts = [code.text(x, reads) for x in (a, b)]
            texts = [f"({t})" if t.startswith("-") else t for t in texts]
            return f"{texts[0]} {symbol} {texts[1]}"

        return apply(code, function, (a, b), {}, write, allocates=True, ufunc=ufunc)

    return operation, lambda self, other: operation(other, self)


def numbers_as_arrays(function: Callable[[Any, Any], Any], a: Any, b: Any) -> tuple[Any, Any]:
    """A Python number operand of an operation with an array as the 0-d array NumPy converts it
    to: NumPy gives a Python number the array's dtype (or the default one of the number's kind;
    NEP 50), then runs the same ufunc loop as for an array of that dtype, so the results are the
    same bits, and the operation skips inspecting the number at each call (about 0.2 us, as
    much as the operation itself on small arrays). Kept a number unless the bits agree here."""
    converted = []
    for x, other in ((a, b), (b, a)):
        if type(x) in (int, float, bool) and isinstance(other, Traced) and not other.constant:
            array = other.value
            if type(array) is np.ndarray and array.ndim > 0:
                try:
                    x = np.asarray(x, dtype=np.result_type(x, array.dtype))
                except (OverflowError, TypeError, ValueError):
                    pass  # out of the dtype's range: left to NumPy's rules for numbers
        converted.append(x)
    if converted[0] is a and converted[1] is b:
        return a, b
    expected = function(*values_of((a, b)))
    try:
        same = same_bits(function(*values_of(converted)), expected)
    except (TypeError, ValueError):  # no loop for that dtype (np.ldexp's exponent): keep it
        same = False
    return (*converted,) if same else (a, b)


def unary(template: str, function: Callable[[Any], Any], ufunc: np.ufunc | None = None) -> Callable:
    def operation(self: Traced) -> Traced:
        return apply(
            self.code,
            function,
            (self,),
            {},
            lambda reads: template.format(self.code.text(self, reads)),
            allocates=True,
            ufunc=ufunc,
        )

    return operation


def method(name: str) -> Callable:
    """The ndarray method `name`, called on the value and written as `x.name(...)`; on another
    library's array (which may lack it), the table's primitive of that name, one call."""

    def operation(self: Traced, *args: Any, **kwargs: Any) -> Traced:
        code = self.code
        if backend.is_foreign(self.value):
            primitive, params = METHOD_PRIMITIVES[name](self.ndim, *args, **kwargs)
            forward = in_namespace(primitive, backend.namespace_of(self.value))
            title = function_name(primitive.name)
            return call(code, code.global_name(title, forward), forward, (self,), params)
        return apply(
            code,
            lambda x, *a, **k: getattr(x, name)(*a, **k),
            (self, *args),
            kwargs,
            lambda reads: f"{code.text(self, reads)}.{name}({code.arguments(args, kwargs, reads)})",
        )

    operation.__name__ = name
    return operation


def shape_of(args: tuple) -> tuple:
    """The shape of x.reshape(*args): one tuple, or the lengths one by one."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def swapped(ndim: int, axis1: int, axis2: int) -> tuple[int, ...]:
    """The permutation of x.swapaxes(axis1, axis2)."""
    axes = list(range(ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return tuple(axes)


# The array methods that the engine and the rules call, as the table's primitive and its params
# (ndim, *args, **kwargs) -> (primitive, params): what Traced writes for another library's arrays.
METHOD_PRIMITIVES: dict[str, Callable[..., tuple[Primitive, dict[str, Any]]]] = {
    "sum": lambda ndim, axis=None, keepdims=False: (
        PRIMITIVES["sum"],
        {"axis": axis, "keepdims": keepdims},
    ),
    "max": lambda ndim, axis=None, keepdims=False: (
        PRIMITIVES["max"],
        {"axis": axis, "keepdims": keepdims},
    ),
    "reshape": lambda ndim, *shape: (PRIMITIVES["reshape"], {"shape": shape_of(shape)}),
    "astype": lambda ndim, dtype: (PRIMITIVES["astype"], {"dtype": np.dtype(dtype)}),
    "copy": lambda ndim: (PRIMITIVES["copy"], {}),
    "transpose": lambda ndim, *axes: (
        PRIMITIVES["transpose"],
        {"axes": shape_of(axes) if axes and axes[0] is not None else None},
    ),
    "swapaxes": lambda ndim, axis1, axis2: (
        PRIMITIVES["transpose"],
        {"axes": swapped(ndim, axis1, axis2)},
    ),
}


def in_namespace(primitive: Primitive, xp: Any) -> Callable[..., Any]:
    """primitive's forward on arrays of namespace xp, as record() runs it there."""

    def forward(*arrays: Any, **params: Any) -> Any:
        return apply_in_namespace(primitive, xp, *arrays, **params)

    forward.__name__ = primitive.name
    return forward


class Traced(Value, ArrayStandIn):
    """An array followed through a function: its value, and the code that computes it (value,
    code, name, constant: see Value).

    Traced values support what the primitives' forwards, their VJP rules and the engine's
    backward pass do with arrays: operators and comparisons, indexing, the methods .sum,
    .reshape, .swapaxes, .transpose, .astype (and a few more), .T, .shape, .ndim, .dtype, NumPy's
    ufuncs (np.exp(x), np.add.reduce(x)) and functions (np.where), and primitives called as
    functions (through apply_primitive). Each computes the value with the call that the function
    makes on arrays, and writes that call. What depends on the values themselves (truth, float(),
    np.asarray) raises ValuesNeededError.
    """

    __slots__ = ()
    __hash__ = object.__hash__  # == builds a Traced, so identity is the key

    @classmethod
    def apply_primitive(cls, primitive: Primitive, args: Any, params: dict) -> Traced:
        """A primitive called as a function by a rule (broadcast_to(g, shape=...), sign(x)): its
        forward, as Primitive.__call__ applies it to arrays."""
        code = next(a.code for a in args if isinstance(a, Traced))
        return follow(code, primitive.forward, function_name(primitive.name), tuple(args), params)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Traced:
        """np.exp(x), np.add.reduce(x, axis=0), and ndarray (op) Traced: the ufunc's call."""
        code = self.code
        if method == "at" or "out" in kwargs:
            raise ValuesNeededError(f"replay: {ufunc.__name__}.{method} writes into an array")
        if method == "__call__" and len(inputs) == 2 and not kwargs:
            inputs = numbers_as_arrays(ufunc, *inputs)
        name = code.global_name(function_name(ufunc.__name__), ufunc)
        if method == "__call__":
            return call(code, name, ufunc, inputs, kwargs, allocates=True, ufunc=ufunc)
        method_ = getattr(ufunc, method)
        return call(code, f"{name}.{method}", method_, inputs, kwargs, allocates=method == "reduce")

    def __array_function__(self, function: Any, types: Any, args: Any, kwargs: Any) -> Traced:
        """np.where(c, a, b) and the other NumPy functions that dispatch on their arguments."""
        if "out" in kwargs:
            raise ValuesNeededError(f"replay: {function.__name__}(out=...) writes into an array")
        code = self.code
        name = code.global_name(function_name(function.__name__), function)
        # np.where(c, a, b) allocates its result; np.where(c) gives indices
        allocates = function is np.where and len(args) == 3 and not kwargs
        result = call(code, name, function, args, kwargs, allocates)
        if result.value is None:  # np.copyto, np.put, ...: it wrote into one of its arguments
            raise ValuesNeededError(f"replay: {function.__name__} writes into an array")
        return result

    def __repr__(self) -> str:
        return f"Traced({self.name or 'constant'}, shape={self.shape}, dtype={self.dtype})"

    def needs_values(self, *args: Any, **kwargs: Any) -> Any:
        raise ValuesNeededError(
            "replay: an array's values were used outside an operation (truth value, conversion "
            "to a number or to an array), which the recorded code cannot repeat"
        )

    __bool__ = __float__ = __int__ = __index__ = __complex__ = __array__ = needs_values
    __iter__ = needs_values

    __add__, __radd__ = binary("+", operator.add, np.add)
    __sub__, __rsub__ = binary("-", operator.sub, np.subtract)
    __mul__, __rmul__ = binary("*", operator.mul, np.multiply)
    __truediv__, __rtruediv__ = binary("/", operator.truediv, np.divide)
    __pow__, __rpow__ = binary("**", operator.pow)
    __matmul__, __rmatmul__ = binary("@", operator.matmul)
    __and__, __rand__ = binary("&", operator.and_)
    __or__, __ror__ = binary("|", operator.or_)
    # Comparisons: Python turns `0 < x` into x.__gt__(0), as it does for arrays.
    __gt__ = binary(">", operator.gt)[0]
    __lt__ = binary("<", operator.lt)[0]
    __ge__ = binary(">=", operator.ge)[0]
    __le__ = binary("<=", operator.le)[0]
    __eq__ = binary("==", operator.eq)[0]  # type: ignore[assignment]
    __ne__ = binary("!=", operator.ne)[0]  # type: ignore[assignment]
    __neg__ = unary("-{}", operator.neg, np.negative)
    __pos__ = unary("+{}", operator.pos)
    __abs__ = unary("abs({})", abs, np.absolute)
    __invert__ = unary("~{}", operator.invert)

    sum = method("sum")
    mean = method("mean")
    max = method("max")
    min = method("min")
    reshape = method("reshape")
    swapaxes = method("swapaxes")
    transpose = method("transpose")
    astype = method("astype")
    copy = method("copy")

    @property
    def T(self) -> Traced:
        return apply(
            self.code, lambda x: x.T, (self,), {}, lambda reads: f"{self.code.text(self, reads)}.T"
        )

    def __getitem__(self, index: Any) -> Traced:
        code = self.code

        def write(reads: list[str]) -> str:
            """x[1:4, ::2] rather than x[(slice(1, 4, None), slice(None, None, 2))]."""
            items = index if type(index) is tuple else (index,)
            texts = []
            for item in items:
                if type(item) is slice:
                    parts = [item.start, item.stop] + ([] if item.step is None else [item.step])
                    texts.append(":".join("" if x is None else code.text(x, reads) for x in parts))
                elif item is Ellipsis:
                    texts.append("...")
                else:
                    texts.append(code.text(item, reads))
            trailing = "," if type(index) is tuple and len(items) == 1 else ""
            return f"{code.text(self, reads)}[{', '.join(texts)}{trailing}]"

        return apply(code, operator.getitem, (self, index), {}, write)


def values_of(x: Any) -> Any:
    """x with each Traced value replaced by the array it stands for."""
    if isinstance(x, Traced):
        return x.value
    if type(x) in (tuple, list):
        return type(x)(map(values_of, x))
    if type(x) is dict:
        return {k: values_of(v) for k, v in x.items()}
    return x


def is_plain(x: Any) -> bool:
    """Whether operand x is an ndarray, a NumPy scalar or a Python number (or a Traced one):
    what NumPy's operators and ufuncs take without calling other code."""
    if isinstance(x, Traced):
        x = x.value
    return type(x) is np.ndarray or isinstance(x, np.generic) or type(x) in (int, float, bool)


def is_constant(x: Any) -> bool:
    """Whether x is the same at every call: no Traced value in it that is not a constant."""
    if isinstance(x, Traced):
        return x.constant
    if type(x) in (tuple, list):
        return all(map(is_constant, x))
    if type(x) is dict:
        return all(map(is_constant, x.values()))
    return True


def same_result(traced: Any, expected: Any) -> bool:
    """Whether a function gave on Traced values what it gives on arrays: the same type, dtype,
    shape and values (NaN where NaN)."""
    if not isinstance(expected, (np.ndarray, np.generic)) or type(traced) is not type(expected):
        return False
    if traced.shape != expected.shape or traced.dtype != expected.dtype:
        return False
    return bool(np.array_equal(traced, expected, equal_nan=expected.dtype.kind in "fc"))


def same_bits(x: Any, y: Any) -> bool:
    """Whether two results of an operation are identical: type, dtype, shape and bytes."""
    return (
        type(x) is type(y)
        and isinstance(x, (np.ndarray, np.generic))
        and x.dtype == y.dtype
        and x.shape == y.shape
        and x.tobytes() == y.tobytes()
    )


def follow(
    code: CodeWriter, function: Callable[..., Any], name: str, args: tuple, kwargs: dict
) -> Traced:
    """function(*args, **kwargs) on Traced values: traced down to its NumPy operations, or, if
    the tracer cannot follow it, written as one call of the function (as `name`) on the arrays.

    The function also runs on the arrays, and the trace is kept only if it gives the same
    result: a function that takes a branch on the type of its operands, or calls something that
    refuses Traced values (np.asarray, truth values), is called instead. This also gives the
    error eager mode gives if the function raises on the arrays."""
    if any(isinstance(a, Traced) and backend.is_foreign(a.value) for a in args):
        # another library's arrays: NumPy's operations cannot be traced on them; one call
        return call(code, code.global_name(name, function), function, args, kwargs)
    expected = function(*values_of(args), **values_of(kwargs))
    try:
        result = function(*args, **kwargs)
    except Exception:  # noqa: BLE001 - whatever a Traced value cannot do, an array can: call it
        result = None
    if isinstance(result, Traced) and same_result(result.value, expected):
        return result
    return call(code, code.global_name(name, function), function, args, kwargs)


def following(op: Primitive, code: CodeWriter, xp: Any = np) -> Primitive:
    """op with each VJP rule followed: run on Traced values, it writes the code of the gradient.
    On another library's arrays (namespace xp) each rule is one call, run as the eager backward
    runs it there: on Tensors outside the graph (the library's arrays lack NumPy's methods)."""

    def followed_rule(index: int) -> Callable[..., Any]:
        rule = op.vjps[index] if xp is np else on_constant_tensors(op.vjps[index])

        def run(*args: Any, **params: Any) -> Any:
            position = args[0] if op.variadic else index
            code.begin(f"{op.name}: grad of input {position}")
            return follow(code, rule, f"{function_name(op.name)}_RULE_{index}", args, params)

        return run

    vjps = map(followed_rule, range(len(op.vjps)))
    return Primitive(
        op.name, op.forward_spec, *vjps, variadic=op.variadic, elementwise=op.elementwise
    )


def on_constant_tensors(rule: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """rule run on Tensors that hold its array arguments and require no grad; its result's
    array."""
    if rule is None:
        return None

    def run(*args: Any, **params: Any) -> Any:
        tensors = [Tensor.wrap(a) if backend.is_foreign(a) else a for a in args]
        result = rule(*tensors, **params)
        return result._data if isinstance(result, Tensor) else result

    run.__name__ = getattr(rule, "__name__", "rule")
    return run
