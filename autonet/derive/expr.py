"""Expr: a symbolic array that the table's VJP rules compute on, and the simplifications a person
makes as each expression is built.

Every operation on an Expr goes through `apply`, which builds the primitive's node (its value
computed by the primitive's NumPy forward) and simplifies it without changing that value (x * 1 is
x, transposes compose). Printing is render.py's; the whole story is in docs/derive.md.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autonet.derive.forms import LOG_SOFTMAX, ONEHOT, SOFTMAX
from autonet.derive.render import render, transpose_axes
from autonet.primitives import PRIMITIVES, ArrayStandIn, Primitive, keepdims_shape
from autonet.tensor import Tensor

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class Expr(ArrayStandIn):
    """A symbolic array: an operation on other Exprs, a named tensor, or a constant.

    op      a Primitive of the table (or a user's, or softmax and onehot of forms.py), "symbol",
            "const", or a comparison (">", ...)
    args    the operand Exprs, in order
    params  the primitive's static arguments (axis=..., shape=...); a symbol's kind: a size
            ({"size": True}: a length of the data, such as the batch size m) or class indices
            ({"labels": True})
    value   the ndarray this expression evaluates to, computed from the args' values
    name    the tensor's name, for op == "symbol"

    Exprs support the operators and methods that the VJP rules use (+ - * / ** @, comparisons,
    indexing, .sum, .reshape, .swapaxes, .transpose, .astype, .shape, .ndim, .dtype), each building
    a new Expr through `apply`, and primitives called as functions reach `apply_primitive`.
    """

    __slots__ = ("op", "args", "params", "value", "name")
    op: Primitive | str
    args: tuple[Expr, ...]
    params: dict[str, Any]
    value: np.ndarray
    name: str | None
    __array_ufunc__ = None  # ndarray (op) Expr defers to Expr's reflected operator
    __hash__ = object.__hash__  # == builds an Expr, so identity is the key

    def __init__(
        self,
        op: Primitive | str,
        args: tuple[Expr, ...] = (),
        params: dict[str, Any] | None = None,
        value: np.ndarray | None = None,
        name: str | None = None,
    ) -> None:
        self.op = op
        self.args = args
        self.params = params or {}
        self.name = name
        if value is None:
            values = [a.value for a in args]
            if isinstance(op, Primitive):
                value = op.forward(*values, **self.params)
            else:
                value = COMPARISONS[op](*values)
        self.value = np.asarray(value)

    @classmethod
    def symbol(cls, name: str, value: Any) -> Expr:
        return cls("symbol", value=np.asarray(value), name=name)

    @classmethod
    def const(cls, value: Any) -> Expr:
        return cls("const", value=np.asarray(value))

    @classmethod
    def dimension(cls, name: str, length: int, dtype: Any) -> Expr:
        """A length of the data as a symbol (m, the batch size), 0-d, of the loss's dtype."""
        return cls("symbol", params={"size": True}, value=np.asarray(length, dtype), name=name)

    @classmethod
    def labels(cls, labels: np.ndarray) -> Expr:
        """Class indices (cross-entropy's targets) as a symbol; derive names it (T) at the end."""
        return cls("symbol", params={"labels": True}, value=labels, name="T")

    @classmethod
    def apply_primitive(cls, primitive: Primitive, args: Sequence[Any], params: dict) -> Expr:
        """A primitive called as a function on Exprs (broadcast_to(g, shape=...), sign(x), ...)."""
        like = next(a for a in args if isinstance(a, Expr))
        return apply(primitive, tuple(operand(a, like) for a in args), params)

    # -- attributes ---------------------------------------------------------------------------

    @property
    def T(self) -> Expr:
        return self.transpose()

    @property
    def scalar(self) -> Any:
        """For a constant whose elements are all equal, that value; otherwise None."""
        if self.op != "const" or self.value.size == 0:
            return None
        first = self.value.flat[0]
        return first.item() if np.all(self.value == first) else None

    def __bool__(self) -> bool:
        raise TypeError("an Expr has no truth value: compare its .value, or its .shape")

    def __str__(self) -> str:
        return render(self)

    def __repr__(self) -> str:
        return f"Expr({render(self)}, shape={self.shape})"

    def latex(self) -> str:
        return render(self, latex=True)

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    # -- operators: each applies the primitive of the same name --------------------------------

    def __add__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["add"], (self, operand(other, self)))

    def __radd__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["add"], (operand(other, self), self))

    def __sub__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["sub"], (self, operand(other, self)))

    def __rsub__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["sub"], (operand(other, self), self))

    def __mul__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["mul"], (self, operand(other, self)))

    def __rmul__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["mul"], (operand(other, self), self))

    def __truediv__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["div"], (self, operand(other, self)))

    def __rtruediv__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["div"], (operand(other, self), self))

    def __pow__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["pow"], (self, operand(other, self)))

    def __rpow__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["pow"], (operand(other, self), self))

    def __matmul__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["matmul"], (self, operand(other, self)))

    def __rmatmul__(self, other: Any) -> Expr:
        return apply(PRIMITIVES["matmul"], (operand(other, self), self))

    def __neg__(self) -> Expr:
        return apply(PRIMITIVES["neg"], (self,))

    def __gt__(self, other: Any) -> Expr:
        return apply(">", (self, operand(other, self)))

    def __lt__(self, other: Any) -> Expr:
        return apply("<", (self, operand(other, self)))

    def __ge__(self, other: Any) -> Expr:
        return apply(">=", (self, operand(other, self)))

    def __le__(self, other: Any) -> Expr:
        return apply("<=", (self, operand(other, self)))

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return apply("==", (self, operand(other, self)))

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return apply("!=", (self, operand(other, self)))

    def __getitem__(self, index: Any) -> Expr:
        return apply(PRIMITIVES["getitem"], (self,), {"index": index})

    # -- methods ------------------------------------------------------------------------------

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Expr:
        if axis is not None:
            axes = tuple(int(a) % self.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
            axis = axes if isinstance(axis, tuple) else axes[0]
        return apply(PRIMITIVES["sum"], (self,), {"axis": axis, "keepdims": keepdims})

    def reshape(self, *shape: Any) -> Expr:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = self.value.reshape(shape).shape  # -1 resolved, so that formulas state the shape
        return apply(PRIMITIVES["reshape"], (self,), {"shape": shape})

    def transpose(self, *axes: Any) -> Expr:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes_param = tuple(int(a) for a in axes) if axes else None  # argsort gives np.int64
        return apply(PRIMITIVES["transpose"], (self,), {"axes": axes_param})

    def swapaxes(self, axis1: int, axis2: int) -> Expr:
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return apply(PRIMITIVES["transpose"], (self,), {"axes": tuple(axes)})

    def astype(self, dtype: Any) -> Expr:
        return apply(PRIMITIVES["astype"], (self,), {"dtype": np.dtype(dtype)})


def operand(x: Any, like: Expr) -> Expr:
    """x as an Expr operand of an operation with `like`: a Python number becomes a constant of
    like's floating dtype (as Tensor does, so float32 rules stay float32), an array a constant."""
    if isinstance(x, Expr):
        return x
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic):
        dtype = like.dtype if like.dtype.kind == "f" else None
        return Expr.const(np.asarray(x, dtype=dtype if isinstance(x, numbers.Real) else None))
    if isinstance(x, Tensor):
        raise TypeError(
            "derive: a VJP rule mixed a Tensor with symbols; rules must compute only on their "
            "arguments (g, out and the inputs)"
        )
    return Expr.const(np.asarray(x))


# ---------------------------------------------------------------------------------------------
# Building expressions, with the simplifications a person makes. Each returns an expression of
# the same value; the checks on shapes keep it so where broadcasting is involved.

ADD, SUB, MUL, DIV, NEG, POW = (PRIMITIVES[k] for k in ("add", "sub", "mul", "div", "neg", "pow"))
MATMUL, SUM, TRANSPOSE, RESHAPE = (PRIMITIVES[k] for k in ("matmul", "sum", "transpose", "reshape"))
BROADCAST_TO, ASTYPE, ZEROS_LIKE = (PRIMITIVES[k] for k in ("broadcast_to", "astype", "zeros_like"))
EXP, LOGSUMEXP, GETITEM = (PRIMITIVES[k] for k in ("exp", "logsumexp", "getitem"))
SCATTER_ADD = PRIMITIVES["scatter_add"]


def apply(op: Primitive | str, args: tuple[Expr, ...], params: dict | None = None) -> Expr:
    """op applied to args, simplified: the one way every Expr operation is built."""
    params = params or {}
    if op in COMPARISONS or isinstance(op, Primitive) and op.elementwise and len(args) == 2:
        shape = np.broadcast_shapes(args[0].shape, args[1].shape)
        a = implicit_broadcast(args[0], args[1].shape, shape)
        args = (a, implicit_broadcast(args[1], a.shape, shape))
    if args and all(a.op == "const" for a in args):
        folded = Expr(op, args, params)
        if folded.value.size and np.all(folded.value == folded.value.flat[0]):
            return Expr.const(folded.value)
    simplify = SIMPLIFICATIONS.get(op) if isinstance(op, Primitive) else None
    simpler = simplify(args, params) if simplify is not None else None
    return simpler if simpler is not None else Expr(op, args, params)


def implicit_broadcast(x: Expr, other: tuple[int, ...], shape: tuple[int, ...]) -> Expr:
    """x without the broadcast_to (or leading-1 reshape) that an element-wise operation with an
    operand of shape `other` would do anyway, as long as the result keeps `shape`."""
    while x.op is BROADCAST_TO or (
        x.op is RESHAPE and x.shape[x.ndim - x.args[0].ndim :] == x.args[0].shape
    ):
        if np.broadcast_shapes(x.args[0].shape, other) != shape:
            break
        x = x.args[0]
    return x


def is_value(x: Expr, value: float) -> bool:
    return x.scalar is not None and x.scalar == value


def zeros(shape: tuple[int, ...], like: Expr) -> Expr:
    return Expr.const(np.zeros(shape, dtype=like.dtype))


def simplify_mul(args: tuple[Expr, ...], params: dict) -> Expr | None:
    a, b = args
    shape = np.broadcast_shapes(a.shape, b.shape)
    if b.op == "const" and a.op != "const":
        return apply(MUL, (b, a))  # constants first: 2 * x
    if a.op is NEG:
        return apply(NEG, (apply(MUL, (a.args[0], b)),))
    if b.op is NEG:
        return apply(NEG, (apply(MUL, (a, b.args[0])),))
    if b.op is DIV and is_size(b.args[1]):  # a * (x / m) = (a * x) / m: the size outside
        return apply(DIV, (apply(MUL, (a, b.args[0])), b.args[1]))
    if a.op is DIV and is_size(a.args[1]):
        return apply(DIV, (apply(MUL, (a.args[0], b)), a.args[1]))
    if a.op != "const":
        return None
    if is_value(a, 0):
        return zeros(shape, b)
    if b.shape == shape and is_value(a, 1):
        return b
    if b.shape == shape and is_value(a, -1):
        return apply(NEG, (b,))
    if b.op is MUL and b.args[0].op == "const":  # 0.5 * (2 * x) = 1 * x = x
        return apply(MUL, (apply(MUL, (a, b.args[0])), b.args[1]))
    return None


def simplify_add(args: tuple[Expr, ...], params: dict) -> Expr | None:
    a, b = args
    shape = np.broadcast_shapes(a.shape, b.shape)
    if is_value(a, 0) and b.shape == shape:
        return b
    if is_value(b, 0) and a.shape == shape:
        return a
    if b.op is NEG:
        return apply(SUB, (a, b.args[0]))
    if a.op is NEG:  # −a + b = b − a
        return apply(SUB, (b, a.args[0]))
    positive = negated(b)
    if positive is not None:  # a + (−2) * x = a − 2 * x
        return apply(SUB, (a, positive))
    return over_common_size(ADD, a, b)


def simplify_sub(args: tuple[Expr, ...], params: dict) -> Expr | None:
    a, b = args
    shape = np.broadcast_shapes(a.shape, b.shape)
    if is_value(b, 0) and a.shape == shape:
        return a
    if is_value(a, 0) and b.shape == shape:
        return apply(NEG, (b,))
    if b.op is NEG:
        return apply(ADD, (a, b.args[0]))
    positive = negated(b)
    if positive is not None:  # a − (−2) * x = a + 2 * x
        return apply(ADD, (a, positive))
    return over_common_size(SUB, a, b)


def over_common_size(op: Primitive, a: Expr, b: Expr) -> Expr | None:
    """a / m ± b / m = (a ± b) / m, for the same size m."""
    if a.op is DIV and b.op is DIV and is_size(a.args[1]) and same_size(a.args[1], b.args[1]):
        return apply(DIV, (apply(op, (a.args[0], b.args[0])), a.args[1]))
    return None


def is_size(x: Expr) -> bool:
    """A length of the data (m), or a product of them (m * n_1): what a mean divides by."""
    if x.op is MUL:
        return all(is_size(a) for a in x.args)
    return x.op == "symbol" and bool(x.params.get("size"))


def same_size(x: Expr, y: Expr) -> bool:
    if x.op is MUL and y.op is MUL:
        return all(same_size(a, b) for a, b in zip(x.args, y.args, strict=True))
    return x.op == y.op == "symbol" and x.name == y.name and x.params == y.params


def simplify_neg(args: tuple[Expr, ...], params: dict) -> Expr | None:
    """−(−x) = x; −(c * x) = (−c) * x for a constant c: −(−0.25 * x) is 0.25 * x."""
    (x,) = args
    if x.op is NEG:
        return x.args[0]
    if x.op is MUL and x.args[0].scalar is not None:
        return apply(MUL, (apply(NEG, x.args[:1]), x.args[1]))
    return None


def negated(x: Expr) -> Expr | None:
    """For −x written with a negative constant factor, (−c) * y, the positive x' = c * y."""
    factor = x.args[0].scalar if x.op is MUL else None
    if isinstance(factor, numbers.Real) and factor < 0:
        return apply(MUL, (apply(NEG, x.args[:1]), x.args[1]))
    return None


def simplify_div(args: tuple[Expr, ...], params: dict) -> Expr | None:
    a, b = args
    if is_value(b, 1) and a.shape == np.broadcast_shapes(a.shape, b.shape):
        return a
    if a.op is NEG:
        return apply(NEG, (apply(DIV, (a.args[0], b)),))
    return None


def simplify_pow(args: tuple[Expr, ...], params: dict) -> Expr | None:
    a, b = args
    if is_value(b, 1) and a.shape == np.broadcast_shapes(a.shape, b.shape):
        return a
    return None


def simplify_transpose(args: tuple[Expr, ...], params: dict) -> Expr | None:
    (x,) = args
    axes = transpose_axes(x.ndim, params["axes"])
    if x.op is TRANSPOSE:  # transpose(transpose(y, p), q) = transpose(y, p[q])
        inner = transpose_axes(x.ndim, x.params["axes"])
        return apply(TRANSPOSE, x.args, {"axes": tuple(inner[i] for i in axes)})
    if axes == tuple(range(x.ndim)):
        return x
    return None


def moved_inside(op: Primitive, x: Expr, params: dict, simplify: Callable) -> Expr | None:
    """The rewrites a reshape and a broadcast share, as operations that move elements without
    changing them: op(a / m) = op(a) / m for a size m, and op(−a) = −op(a) when op(a) simplifies
    (`simplify`, op's own rule)."""
    if x.op is DIV and is_size(x.args[1]):
        return apply(DIV, (apply(op, x.args[:1], params), x.args[1]))
    if x.op is NEG:
        inner = simplify(x.args, params)
        return apply(NEG, (inner,)) if inner is not None else None
    return None


def simplify_reshape(args: tuple[Expr, ...], params: dict) -> Expr | None:
    (x,) = args
    shape = tuple(params["shape"])
    if x.shape == shape:
        return x
    if x.op is DIV or x.op is NEG:
        return moved_inside(RESHAPE, x, params, simplify_reshape)
    if x.op is BROADCAST_TO and x.args[0].ndim == 0:  # a number broadcast: to the new shape
        return apply(BROADCAST_TO, x.args, params)
    if x.op is RESHAPE:
        return apply(RESHAPE, x.args, params)
    if x.op is SUM and not x.params["keepdims"]:  # the engine's unbroadcast to a (1, n) shape
        summed = x.args[0]
        if shape == keepdims_shape(summed.shape, x.params["axis"]):
            return apply(SUM, x.args, {"axis": x.params["axis"], "keepdims": True})
    return None


# The identities a textbook uses for the losses: the log-sum-exp and log_softmax gradients are
# softmax, and cross-entropy's gather at the class indices T is onehot(T) (docs/derive.md,
# "Identities"). Each builds an expression whose value is computed anew, so a wrong one is caught
# by derive's checks.


def simplify_exp(args: tuple[Expr, ...], params: dict) -> Expr | None:
    """exp(log_softmax(x)) = softmax(x); exp(x − logsumexp(x)) = softmax(x) (one axis)."""
    (x,) = args
    if x.op is LOG_SOFTMAX:
        return softmax(x.args[0], x.params["axis"])
    if x.op is SUB:
        z, shift = x.args
        while shift.op is RESHAPE:  # logsumexp's VJP puts the reduced axis back
            shift = shift.args[0]
        axis = shift.params.get("axis") if shift.op is LOGSUMEXP else None
        if isinstance(axis, tuple) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, int) and shift.args[0] is z and x.shape == z.shape:
            return softmax(z, axis)
    return None


def softmax(x: Expr, axis: int) -> Expr:
    """softmax(x) along axis; the last axis is written -1 (the default, not printed)."""
    return apply(SOFTMAX, (x,), {"axis": -1 if axis % x.ndim == x.ndim - 1 else axis})


def class_indices(index: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """T when index is (arange(m), T) into shape (m, C): one class index per row, T[i] the
    column taken from row i (cross_entropy's gather); None for any other index."""
    if len(shape) != 2 or not isinstance(index, tuple) or len(index) != 2:
        return None
    rows, labels = (np.asarray(i) for i in index)
    if rows.dtype.kind not in "iu" or labels.dtype.kind not in "iu":
        return None
    if rows.shape != (shape[0],) or labels.shape != rows.shape:
        return None
    return labels if np.array_equal(rows, np.arange(shape[0])) else None


def onehot(labels: np.ndarray, classes: int, like: Expr) -> Expr:
    return apply(ONEHOT, (Expr.labels(labels),), {"classes": classes, "dtype": like.dtype})


def simplify_getitem(args: tuple[Expr, ...], params: dict) -> Expr | None:
    """x[arange(m), T] = sum(onehot(T) * x, axis=1): row i's element T[i] (for finite x, where
    the zeros times the other elements add exactly nothing)."""
    (x,) = args
    labels = class_indices(params["index"], x.shape)
    if labels is None or not np.all(np.isfinite(x.value)):
        return None
    return apply(MUL, (onehot(labels, x.shape[1], x), x)).sum(axis=1)


def simplify_scatter_add(args: tuple[Expr, ...], params: dict) -> Expr | None:
    """g scattered at (arange(m), T) into (m, C) = g (one value per row) * onehot(T)."""
    (g,) = args
    labels = class_indices(params["index"], tuple(params["shape"]))
    if labels is None:
        return None
    return apply(MUL, (per_row(g), onehot(labels, params["shape"][1], g)))


def per_row(g: Expr) -> Expr:
    """g, of shape (m,), as a factor of an (m, C) array: a column, or the scalar it broadcasts."""
    if g.op is NEG:
        return apply(NEG, (per_row(g.args[0]),))
    if g.op is BROADCAST_TO and g.args[0].ndim == 0:
        return g.args[0]
    return apply(RESHAPE, (g,), {"shape": (len(g), 1)})


def simplify_sum(args: tuple[Expr, ...], params: dict) -> Expr | None:
    """Sums that a textbook does in its head: of onehot rows (1 each), of a sum over all axes of
    a sum (one sum); of −x and x / m, −sum(x) and sum(x) / m when sum(x) is one of those (else
    the sum keeps its operand, which may be a named delta: sum(δ_Z, axis=0))."""
    (x,) = args
    axis, keepdims = params["axis"], params["keepdims"]
    if x.op is NEG or (x.op is DIV and is_size(x.args[1])):
        inner = simplify_sum(x.args[:1], params)
        return apply(x.op, (inner, *x.args[1:])) if inner is not None else None
    if axis is None and not keepdims and x.op is SUM and not x.params["keepdims"]:
        return apply(SUM, x.args, params)
    if axis not in (1, (1,)) or x.ndim != 2:
        return None
    out_shape = keepdims_shape(x.shape, 1) if keepdims else x.shape[:1]
    if x.op is ONEHOT:  # each row of onehot(T) holds one 1
        return Expr.const(np.ones(out_shape, x.dtype))
    if x.op is MUL and keepdims:  # sum(c * onehot(T), axis=1) = c, for c constant along axis 1
        for factor, other in (x.args, x.args[::-1]):
            if factor.op is ONEHOT and other.shape == out_shape:
                return other
    return None


def simplify_broadcast_to(args: tuple[Expr, ...], params: dict) -> Expr | None:
    (x,) = args
    if x.shape == tuple(params["shape"]):
        return x
    return moved_inside(BROADCAST_TO, x, params, simplify_broadcast_to)


SIMPLIFICATIONS: dict[Primitive, Callable[[tuple[Expr, ...], dict], Expr | None]] = {
    MUL: simplify_mul,
    ADD: simplify_add,
    SUB: simplify_sub,
    DIV: simplify_div,
    POW: simplify_pow,
    NEG: simplify_neg,
    TRANSPOSE: simplify_transpose,
    RESHAPE: simplify_reshape,
    BROADCAST_TO: simplify_broadcast_to,
    ASTYPE: lambda args, params: args[0] if args[0].dtype == np.dtype(params["dtype"]) else None,
    ZEROS_LIKE: lambda args, params: zeros(args[0].shape, args[0]),
    EXP: simplify_exp,
    GETITEM: simplify_getitem,
    SCATTER_ADD: simplify_scatter_add,
    SUM: simplify_sum,
}
