"""derive(): the backward pass written out as matrix formulas, the way the tutorial writes them.

    H = an.sigmoid(S @ syn0); H.name = "H"          # named tensors keep their names in formulas
    O = an.sigmoid(H @ syn1); O.name = "O"
    L = 0.5 * ((O - Y) ** 2).sum()
    print(an.derive(L, wrt=[syn1, syn0]))

    δ_O = (O − Y) * O * (1 − O)
    ∂L/∂syn1 = H^T · δ_O
    ∂L/∂syn0 = S^T · (δ_O · syn1^T * H * (1 − H))

How: the engine's own backward pass (engine.backpropagate) runs on the recorded graph with every
node replaced by an `Expr`, a symbol that carries the node's recorded value. Each primitive's VJP
rule from the table (primitives.py) then computes on symbols instead of arrays: the sigmoid rule
`g * out * (1 - out)` builds the expression (O − Y) * O * (1 − O), matmul's `a.swapaxes(-1, -2) @ g`
builds H^T · δ_O, and the engine's `unbroadcast` writes a bias gradient as sum(δ, axis=0). derive
keeps no derivative rule of its own: the table is the single source of the calculus.

Each Expr computes its value from its children's values with the primitive's NumPy forward, so a
formula is a real computation, checked twice: evaluated on the recorded values it must equal the
gradient autograd computes, and central finite differences of the output in float64 (gradcheck's,
kept off kinks), taken by re-running the recorded graph with a nudged value of the tensor. The
first check finds a formula that misreads the rules; the second, independent of every VJP rule,
finds a wrong rule (a user's Primitive with a wrong VJP gives a formula that agrees with autograd
and still fails). `Derivation.verified` says whether every formula passed both.

Notation: `·` is the matrix product (matmul), `*` the element-wise product, ^T swaps the last two
axes, [x > 0] is 1 where the condition holds and 0 elsewhere, sum(x, axis=0) sums over axis 0 (the
batch axis: a column sum). `·` binds tighter than `*`, as juxtaposition does in the tutorial:
δ · W^T * H reads (δ · W^T) * H. A constant such as 1 or 0.5 stands for an array of that value.

Names: a tensor's `.name` (S, syn0, H, O, Y, W_1, ...) is used wherever the rules refer to it;
unnamed intermediates are written out as their forward expressions (S · syn0); unnamed tensors
that are neither constants nor computed are called x1, x2, ... A gradient that is used more than
once is given a name: δ_O is the gradient at the (unnamed) input of the operation whose output is
O, the backpropagation literature's delta; the shared gradient of a named tensor Z is δ_Z; a name
with a subscript, H_2, gives δ_2.

Simplifications, each exact (they change how a formula reads, never its value): constants fold
(0.5 * 2 = 1), multiplication by 1, addition of 0 and x^1 drop, a minus sign moves to the front of
a product, broadcasting that an element-wise operation does anyway is left implicit, transposes
compose, and reshapes or conversions to the same shape or dtype vanish.
"""

from __future__ import annotations

import numbers
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autonet import engine, gradcheck
from autonet.gradcheck import GradcheckError, GradcheckResult, GradcheckWarning
from autonet.primitives import PRIMITIVES, ArrayStandIn, Primitive, keepdims_shape
from autonet.tensor import Tensor

# Precedence, higher binds tighter: + − < * / (and prefix −) < · < ^ (power, ^T) < atoms.
P_SUM, P_PRODUCT, P_MATMUL, P_POWER, P_ATOM = 1, 2, 3, 4, 5

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
LATEX_COMPARISONS = {">": ">", "<": "<", ">=": r"\geq", "<=": r"\leq", "==": "=", "!=": r"\neq"}


class Expr(ArrayStandIn):
    """A symbolic array: an operation on other Exprs, a named tensor, or a constant.

    op      a Primitive of the table (or a user's), "symbol", "const", or a comparison (">", ...)
    args    the operand Exprs, in order
    params  the primitive's static arguments (axis=..., shape=...)
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
    return None


def simplify_sub(args: tuple[Expr, ...], params: dict) -> Expr | None:
    a, b = args
    shape = np.broadcast_shapes(a.shape, b.shape)
    if is_value(b, 0) and a.shape == shape:
        return a
    if is_value(a, 0) and b.shape == shape:
        return apply(NEG, (b,))
    if b.op is NEG:
        return apply(ADD, (a, b.args[0]))
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


def simplify_reshape(args: tuple[Expr, ...], params: dict) -> Expr | None:
    (x,) = args
    shape = tuple(params["shape"])
    if x.shape == shape:
        return x
    if x.op is RESHAPE:
        return apply(RESHAPE, x.args, params)
    if x.op is SUM and not x.params["keepdims"]:  # the engine's unbroadcast to a (1, n) shape
        summed = x.args[0]
        if shape == keepdims_shape(summed.shape, x.params["axis"]):
            return apply(SUM, x.args, {"axis": x.params["axis"], "keepdims": True})
    return None


def transpose_axes(ndim: int, axes: tuple[int, ...] | None) -> tuple[int, ...]:
    return tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)


SIMPLIFICATIONS: dict[Primitive, Callable[[tuple[Expr, ...], dict], Expr | None]] = {
    MUL: simplify_mul,
    ADD: simplify_add,
    SUB: simplify_sub,
    DIV: simplify_div,
    POW: simplify_pow,
    NEG: lambda args, params: args[0].args[0] if args[0].op is NEG else None,
    TRANSPOSE: simplify_transpose,
    RESHAPE: simplify_reshape,
    BROADCAST_TO: lambda args, params: args[0] if args[0].shape == tuple(params["shape"]) else None,
    ASTYPE: lambda args, params: args[0] if args[0].dtype == np.dtype(params["dtype"]) else None,
    ZEROS_LIKE: lambda args, params: zeros(args[0].shape, args[0]),
}


# ---------------------------------------------------------------------------------------------
# Printing: plain text (Unicode) and LaTeX, from one table of forms.


def render(root: Expr, latex: bool = False, names: dict[int, str] | None = None) -> str:
    """root as text (or LaTeX); an Expr named in `names` (by id) prints as its name, except root.

    Bottom-up with an explicit stack, so a deep formula needs no recursion."""
    names = names or {}
    done: dict[int, tuple[str, int]] = {}
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        e, args_done = stack.pop()
        if id(e) in done:
            continue
        if e is not root and id(e) in names:
            done[id(e)] = (format_name(names[id(e)], latex), P_ATOM)
        elif args_done or not e.args:
            done[id(e)] = form(e, [done[id(a)] for a in e.args], latex)
        else:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args)
    return done[id(root)][0]


def wrap(part: tuple[str, int], level: int, latex: bool) -> str:
    """part's text, in parentheses if it binds less tightly than `level`."""
    text, precedence = part
    if precedence >= level:
        return text
    return rf"\left({text}\right)" if latex else f"({text})"


# The precedence of each binding of an infix operator (a primitive's notation.infix).
INFIX_PRECEDENCE = {"sum": P_SUM, "product": P_PRODUCT, "matmul": P_MATMUL}


def form(e: Expr, args: list[tuple[str, int]], latex: bool) -> tuple[str, int]:
    """The text of e and its precedence, given its operands' texts and precedences."""
    if e.op == "symbol":
        return format_name(str(e.name), latex), P_ATOM
    if e.op == "const":
        return format_const(e, latex)
    if isinstance(e.op, str):  # a comparison: the indicator [a > b], 1 where it holds
        symbol = LATEX_COMPARISONS[e.op] if latex else e.op
        return f"[{args[0][0]} {symbol} {args[1][0]}]", P_ATOM
    name = e.op.name if PRIMITIVES.get(e.op.name) is e.op else None
    if name == "div" and latex:
        return rf"\frac{{{args[0][0]}}}{{{args[1][0]}}}", P_ATOM
    notation = e.op.notation
    if notation.infix is not None:
        level = INFIX_PRECEDENCE[notation.infix]
        left, right = wrap(args[0], level, latex), wrap(args[1], level + notation.strict, latex)
        return left + ((notation.latex or notation.text) if latex else notation.text) + right, level
    if name == "neg":
        return ("-" if latex else "−") + wrap(args[0], P_PRODUCT, latex), P_PRODUCT
    if name in ("pow", "pow_scalar"):
        power = args[1] if name == "pow" else format_number(e.params["exponent"], latex)
        exponent = power[0] if power[1] == P_ATOM else f"({power[0]})"
        exponent = f"{{{power[0]}}}" if latex else exponent
        return f"{wrap(args[0], P_ATOM, latex)}^{exponent}", P_POWER
    if name == "transpose" and e.ndim >= 2:
        axes = transpose_axes(e.ndim, e.params["axes"])
        swapped = tuple(range(e.ndim - 2)) + (e.ndim - 1, e.ndim - 2)
        if axes == swapped:  # x^T: the last two axes exchanged, as matmul's rules write it
            return wrap(args[0], P_ATOM, latex) + ("^{T}" if latex else "^T"), P_POWER
    if name == "sqrt" and latex:
        return rf"\sqrt{{{args[0][0]}}}", P_ATOM
    if name == "abs":
        return (rf"\left|{args[0][0]}\right|" if latex else f"|{args[0][0]}|"), P_ATOM
    if name == "getitem":
        index = format_index(e.params["index"], latex)
        return wrap(args[0], P_ATOM, latex) + (
            rf"\left[{index}\right]" if latex else f"[{index}]"
        ), P_ATOM
    if name in ("sum", "max"):
        return format_reduction(name, args[0][0], e.params, latex), P_ATOM
    label = notation.text if not latex else notation.latex or rf"\mathrm{{{escape(notation.text)}}}"
    items = [text for text, _ in args] + [
        format_param(k, v, latex, bare=(name, k) in BARE_PARAMS)
        for k, v in e.params.items()
        if v is not None and not (name == "sign" and v == 0)
    ]
    return (
        rf"{label}\left({', '.join(items)}\right)" if latex else f"{label}({', '.join(items)})"
    ), P_ATOM


def format_reduction(name: str, operand_text: str, params: dict, latex: bool) -> str:
    """sum(x, axis=0) in text; in LaTeX a sum (or max) with the axis below it."""
    axis, keepdims = params.get("axis"), params.get("keepdims", False)
    if isinstance(axis, tuple) and len(axis) == 1:
        axis = axis[0]
    if not latex:
        items = [operand_text] + ([] if axis is None else [f"axis={axis}"])
        return f"{name}({', '.join(items + (['keepdims'] if keepdims else []))})"
    below = [] if axis is None else [rf"\mathrm{{axis}}\,{axis}"]
    below += [r"\mathrm{keepdims}"] if keepdims else []
    sub = "_{" + r",\,".join(below) + "}" if below else ""
    return (r"\sum" if name == "sum" else r"\max") + sub + rf"\left({operand_text}\right)"


def format_const(e: Expr, latex: bool) -> tuple[str, int]:
    value = e.scalar
    if value is None:
        shape = (r" \times " if latex else "×").join(map(str, e.shape))
        return (rf"\mathrm{{const}}_{{{shape}}}" if latex else f"const[{shape}]"), P_ATOM
    return format_number(value, latex)


def format_number(value: Any, latex: bool) -> tuple[str, int]:
    """A number as a formula writes it (2, 0.5, −1) and its precedence (a sign binds loosely)."""
    value = float(value)
    text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if value < 0:
        return ("-" if latex else "−") + text.lstrip("-"), P_PRODUCT
    return text, P_ATOM


def format_name(name: str, latex: bool) -> str:
    """A tensor or delta name; in LaTeX, "syn0" -> \\mathit{syn0}, "H_2" -> H_{2}, "δ_O" ->
    \\delta_{O}."""
    if not latex:
        return name
    base, _, sub = name.partition("_")
    primes = len(base) - len(base.rstrip("′"))
    base = base.rstrip("′")
    tex = {"δ": r"\delta"}.get(base) or (
        escape(base) if len(base) == 1 else rf"\mathit{{{escape(base)}}}"
    )
    tex += "'" * primes
    return f"{tex}_{{{escape(sub)}}}" if sub else tex


def escape(text: str) -> str:
    for char in "\\_#$%&{}":
        text = text.replace(char, "\\" + char)
    return text


def format_index(index: Any, latex: bool) -> str:
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for item in items:
        if isinstance(item, slice):
            bounds = ["" if v is None else str(v) for v in (item.start, item.stop, item.step)]
            parts.append(":".join(bounds if item.step is not None else bounds[:2]))
        elif item is Ellipsis:
            parts.append("...")
        else:
            parts.append(str(np.asarray(item).tolist()) if item is not None else "None")
    text = ", ".join(parts)
    if latex:
        text = text.replace("...", r"\ldots").replace(":", "{:}").replace("None", r"\mathrm{None}")
    return text


# Parameters that read well without their keyword: reshape(x, (4, 1)), astype(x, float32).
BARE_PARAMS = {
    ("reshape", "shape"),
    ("broadcast_to", "shape"),
    ("transpose", "axes"),
    ("astype", "dtype"),
}


def format_param(key: str, value: Any, latex: bool, bare: bool) -> str:
    if key == "index":
        text = f"[{format_index(value, latex)}]"
    elif key == "dtype":
        text = np.dtype(value).name
    else:
        text = str(tuple(value) if isinstance(value, list) else value)
    if latex and key != "index":
        text = rf"\mathrm{{{escape(text)}}}"
    if bare:
        return text
    return (rf"\mathrm{{{escape(key)}}}=" if latex else f"{key}=") + text


# ---------------------------------------------------------------------------------------------
# derive: the engine's backward pass on symbols, then names, printing and the check.


@dataclass
class Formula:
    """d(output)/d(tensor) as an expression, and how it compares with autograd's gradient and with
    finite differences."""

    label: str  # ∂L/∂syn1
    name: str  # syn1
    expr: Expr
    autograd: np.ndarray
    error: float  # max |expr.value - autograd|
    matches_autograd: bool
    # gradcheck's comparison of expr.value with finite differences when they agree (None when they
    # disagree or were not compared), and its explanation when they disagree.
    finite_differences: GradcheckResult | None = None
    finite_difference_failure: str | None = None

    @property
    def verified(self) -> bool:
        """Equal to autograd's gradient, and not contradicted by finite differences."""
        return self.matches_autograd and self.finite_difference_failure is None


class Derivation:
    """The formulas of d(output)/d(tensor) for each tensor of `wrt`, checked against autograd and
    (unless derive(..., finite_differences=False)) against finite differences.

    str(d) prints them (named deltas first, then one line per tensor, then the forward definitions
    of the named intermediates); d.latex() is LaTeX; in Jupyter it renders as math. d[syn0] (or
    d["syn0"]) is the Formula of one tensor; d.text(syn0, expand=True) writes it with every delta
    substituted, as the tutorial writes its formulas.
    """

    def __init__(
        self,
        output: str,
        formulas: list[Formula],
        deltas: list[tuple[str, Expr]],
        forward: list[tuple[str, Expr]],
        names: dict[int, str],
        keys: list[Tensor],
        seed: tuple[str, str] | None = None,
    ) -> None:
        self.output = output
        self.seed = seed  # (G, y) when dL/dy = G was given for a non-scalar output y
        self.formulas = formulas
        self.deltas = deltas
        self.forward = forward
        self.names = names
        self.keys = keys

    def __getitem__(self, key: Tensor | str) -> Formula:
        for tensor, formula in zip(self.keys, self.formulas, strict=True):
            if tensor is key or (isinstance(key, str) and formula.name == key):
                return formula
        raise KeyError(f"derive: {key!r} is not among the tensors this derivation was taken for")

    @property
    def verified(self) -> bool:
        """Whether every formula evaluates to autograd's gradient and agrees with finite
        differences (where they were compared)."""
        return all(f.verified for f in self.formulas)

    @property
    def max_error(self) -> float:
        """The largest |formula - autograd| over all elements of all formulas."""
        return max((f.error for f in self.formulas), default=0.0)

    @property
    def finite_differences_checked(self) -> bool:
        return any(
            f.finite_differences is not None or f.finite_difference_failure is not None
            for f in self.formulas
        )

    @property
    def max_relative_error(self) -> float:
        """The largest relative error |formula - finite difference| / max(|formula|, |finite
        difference|, 1e-5) of the formulas that agree with finite differences."""
        results = [f.finite_differences for f in self.formulas if f.finite_differences]
        return max((r.max_rel_error for r in results), default=0.0)

    @property
    def skipped_at_kinks(self) -> int:
        """Elements (or random directions) left out of the finite-difference check because their
        +-h window crosses a kink (relu, abs at 0; max at ties)."""
        return sum(f.finite_differences.skipped for f in self.formulas if f.finite_differences)

    def text(self, key: Tensor | str, expand: bool = False, latex: bool = False) -> str:
        """The right-hand side of the formula of a tensor (or of a delta, by name: "δ_O");
        expand=True substitutes every named delta."""
        deltas = dict(self.deltas)
        expr = deltas[key] if isinstance(key, str) and key in deltas else self[key].expr
        return render(expr, latex, {} if expand else self.names)

    def equations(self, latex: bool = False) -> list[tuple[str, str]]:
        """(left, right) of every line: the deltas, then the gradient of each tensor."""
        lines = [(format_name(n, latex), render(e, latex, self.names)) for n, e in self.deltas]
        for f in self.formulas:
            left = rf"\frac{{\partial {format_name(self.output, latex)}}}{{\partial "
            left += rf"{format_name(f.name, latex)}}}" if latex else ""
            lines.append((left if latex else f.label, render(f.expr, latex, self.names)))
        return lines

    def check(self) -> str:
        """One sentence: whether every formula equals autograd's gradient and finite differences,
        and by how much; when one does not, the sentence is followed by gradcheck's explanation
        of each finite-difference mismatch."""
        if self.verified:
            return (
                "verified: each formula, evaluated on the recorded values, equals autograd's "
                f"gradient (largest difference {self.max_error:.1e})" + self.numeric_summary()
            )
        faults = []
        wrong = [
            f"{f.label} (off by {f.error:.1e})" for f in self.formulas if not f.matches_autograd
        ]
        if wrong:
            faults.append(f"these formulas differ from autograd's gradient: {', '.join(wrong)}")
        failed = [f for f in self.formulas if f.finite_difference_failure is not None]
        if failed:
            labels = ", ".join(
                f.label + (" (which equals autograd's: a VJP rule on its path is wrong)")
                if f.matches_autograd
                else f.label
                for f in failed
            )
            faults.append(f"these differ from finite differences: {labels}")
        details = ["  " + str(f.finite_difference_failure).replace("\n", "\n  ") for f in failed]
        return "\n".join(["NOT verified: " + "; ".join(faults), *details])

    def numeric_summary(self) -> str:
        """' and finite differences (...)' for the verified sentence, or '' if not compared."""
        results = [(f, f.finite_differences) for f in self.formulas if f.finite_differences]
        if not results:
            return ""
        largest = max(r.max_abs_error for _, r in results)
        notes = [f"largest difference {largest:.1e}, relative {self.max_relative_error:.0e}"]
        skipped = self.skipped_at_kinks
        if skipped:
            notes.append(f"{skipped} element{'s' if skipped > 1 else ''} skipped at kinks")
        projected = [
            f"{f.name} ({r.compared} random directions)"
            for f, r in results
            if r.method != "full Jacobian"
        ]
        if projected:
            notes.append("compared along random directions for " + ", ".join(projected))
        unchecked = [f.name for f, r in results if r.compared == 0]
        if unchecked:
            notes.append(f"nothing compared for {', '.join(unchecked)}: every element at a kink")
        return f" and finite differences ({'; '.join(notes)})"

    def __str__(self) -> str:
        lines = [f"{left} = {right}" for left, right in self.equations()]
        if self.forward:
            lines.append(f"where {self.where()}")
        return "\n".join(lines + [self.check()])

    def __repr__(self) -> str:
        return str(self)

    def where(self, latex: bool = False) -> str:
        """The forward definitions of the named tensors (and of the seed G, if one was given)."""
        defs = [(format_name(n, latex), render(e, latex)) for n, e in self.forward]
        if self.seed is not None:
            g, y = (format_name(n, latex) for n in self.seed)
            defs.append((g, rf"\frac{{\partial L}}{{\partial {y}}}" if latex else f"∂L/∂{y}"))
        return ", ".join(f"${n} = {e}$" if latex else f"{n} = {e}" for n, e in defs)

    def latex(self) -> str:
        """The formulas as a LaTeX aligned block (for a document, or `$$ ... $$` in Markdown)."""
        rows = [f"{left} &= {right}" for left, right in self.equations(latex=True)]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def _repr_markdown_(self) -> str:
        where = self.where(latex=True)
        verdict, *details = self.check().split("\n")  # gradcheck's explanation, preformatted
        details_block = "\n\n```text\n" + "\n".join(details) + "\n```" if details else ""
        return (
            f"$$\n{self.latex()}\n$$\n\n"
            + (f"where {where}\n\n" if where else "")
            + verdict
            + details_block
        )


def derive(
    output: Tensor, wrt: Sequence[Tensor], grad: Any = None, finite_differences: bool = True
) -> Derivation:
    """The formula of d(output)/d(t) for each t in wrt, from the recorded graph.

        S, Y = an.tensor(X, name="S"), an.tensor(T, name="Y")
        syn0 = an.tensor(w0, requires_grad=True, name="syn0")     # and syn1 likewise
        H = an.sigmoid(S @ syn0); H.name = "H"
        O = an.sigmoid(H @ syn1); O.name = "O"
        d = an.derive(0.5 * ((O - Y) ** 2).sum(), wrt=[syn1, syn0])
        d.text(syn1)               # 'H^T · δ_O'
        d.verified                 # True: each formula equals autograd's gradient

    output must be a one-element tensor, or `grad` gives dL/d(output) (a Tensor, whose name is
    used, or an array, called G). The graph is kept (as retain_graph=True), so backward() can
    still follow.

    Each formula's value is checked against autograd's gradient and, with finite_differences=True,
    against central differences of L (the output, or sum(G * output)) in float64:

        formula[i] ~= (L(t + h e_i) - L(t - h e_i)) / (2 h)      every element i of t

    by gradcheck's machinery (its step, tolerances atol=1e-5, rtol=1e-3, refinement and kink
    skipping), with L re-evaluated by running the recorded graph again on the nudged value.
    This costs two evaluations of the part of the graph that depends on t per element; beyond
    MAX_FULL_SIZE elements it compares along N_PROJECTIONS random directions instead.
    """
    if not isinstance(output, Tensor) or not output.requires_grad:
        raise RuntimeError(
            "derive: the output must be a Tensor that requires grad (computed from a tensor with "
            "requires_grad=True)"
        )
    for i, t in enumerate(wrt):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(
                f"derive: wrt[{i}] ({getattr(t, 'name', None) or type(t).__name__}) does not "
                "require grad, so it has no gradient; pass tensors created with requires_grad=True"
            )
    if finite_differences and not engine.is_grad_enabled():
        raise RuntimeError(
            "derive: finite differences re-run the recorded graph, and under no_grad nothing is "
            "recorded to keep them off its kinks; call derive outside the `with an.no_grad():` "
            "block, or pass finite_differences=False"
        )
    seed_array = engine.check_root_grad(output, grad, "derive")
    seed = (
        Expr.const(seed_array)
        if grad is None
        else Expr.symbol(getattr(grad, "name", None) or "G", seed_array)
    )
    order = engine.topological_order(output)
    # With a seed G = dL/dy for a non-scalar output y, the formulas are those of dL/dx.
    loss, result = ("L", output.name or "y") if grad is not None else (output.name or "L",) * 2
    symbols, forward = symbols_of(order, output, result)
    found = engine.backpropagate(
        output,
        seed,
        retain_graph=True,
        create_graph=False,
        wanted=order,
        operand=lambda node: symbols[id(node)],
    )
    autograd = engine.gradients(
        output, wrt, grad=None if grad is None else seed_array, retain_graph=True
    )
    exprs = [found.get(id(t), Expr.const(np.zeros(t.shape, t.dtype))) for t in wrt]
    names, deltas = name_deltas(
        order, found, exprs, taken={e.name for e in symbols.values() if e.name}
    )
    formulas = []
    for i, (t, expr, auto) in enumerate(zip(wrt, exprs, autograd, strict=True)):
        symbol = symbols.get(id(t))
        name = t.name or (symbol.name if symbol is not None and symbol.name else f"wrt[{i}]")
        value = expr.value.astype(t.dtype)
        error = float(np.max(np.abs(value - auto.data), initial=0.0))
        formula = Formula(
            f"∂{loss}/∂{name}", name, expr, auto.data, error, agrees(value, auto.data)
        )
        if finite_differences:
            seed_of_sum = None if grad is None else seed_array
            check_numerically(formula, t, replay(order, output, t, seed_of_sum))
        formulas.append(formula)
    seed_names = None if grad is None else (str(seed.name), result)
    return Derivation(loss, formulas, deltas, forward, names, list(wrt), seed_names)


# Above this many elements a tensor's formula is compared with finite differences along
# N_PROJECTIONS random directions (two evaluations each) instead of element by element (two
# evaluations per element); gradcheck's defaults.
MAX_FULL_SIZE = 512
N_PROJECTIONS = 8


def replay(
    order: list[Tensor], output: Tensor, t: Tensor, seed: np.ndarray | None
) -> gradcheck.Evaluation:
    """L as a function of t's value, by the recorded graph: every node that depends on t is
    recomputed by its primitive (recorded, so that gradcheck sees the side of each kink), every
    other node keeps its recorded value. L is the output, or sum(seed * output) when a seed
    dL/d(output) was given."""
    depends = {id(t)}
    recomputed = []
    for node in order:
        if node is not t and any(id(p) in depends for p in node.parents):
            depends.add(id(node))
            recomputed.append(node)

    def evaluate(ts: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        values = {id(t): ts[0]}
        for node in recomputed:
            args = [values[id(p)] if id(p) in values else p.detach() for p in node.parents]
            values[id(node)] = node.op(*args, **node.params)
        out = values[id(output)] if id(output) in values else output.detach()
        if seed is not None:
            out = (out * seed).sum()
        return out, [out]

    return evaluate


def check_numerically(formula: Formula, t: Tensor, evaluate: gradcheck.Evaluation) -> None:
    """Compare the formula's value with finite differences of L with respect to t (gradcheck's
    check, with the formula as its analytic side); record the result in the formula."""
    gradient = formula.expr.value.astype(np.float64)  # of t's shape: unbroadcast sees to it

    def formula_vjp(u: np.ndarray) -> list[np.ndarray]:  # L is a scalar: J^T u = u * dL/dt
        return [float(u.ravel()[0]) * gradient]

    nudged = Tensor(t.data, requires_grad=True, name=formula.name)
    try:
        with warnings.catch_warnings():
            # float32 tensors and checks with every element at a kink: the result says so.
            warnings.simplefilter("ignore", GradcheckWarning)
            formula.finite_differences = gradcheck.check(
                evaluate,
                [nudged],
                "derive",
                eps=None,
                atol=1e-5,
                rtol=1e-3,
                max_full_size=MAX_FULL_SIZE,
                n_projections=N_PROJECTIONS,
                seed=0,
                vjp_of=formula_vjp,
                analytic="the formula",
            )
    except GradcheckError as exc:
        formula.finite_difference_failure = str(exc)


def agrees(value: np.ndarray, reference: np.ndarray) -> bool:
    """Equal up to rounding: a formula does the same arithmetic as the backward pass, regrouped
    (constants folded, products reordered), which changes the result by a few units in the last
    place per operation, relative to the magnitude of the terms; sqrt(eps) (1.5e-8 in float64)
    leaves a wide margin for that while a wrong formula (a missing factor or transpose) is off
    by the size of the gradient itself."""
    if value.shape != reference.shape:
        return False
    tol = float(np.sqrt(np.finfo(reference.dtype).eps)) if reference.dtype.kind == "f" else 0.0
    scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
    return bool(np.allclose(value, reference, rtol=tol, atol=tol * scale))


def symbols_of(
    order: list[Tensor], output: Tensor, output_name: str
) -> tuple[dict[int, Expr], list[tuple[str, Expr]]]:
    """The symbol of every node of the graph, by id, and the forward definitions of the named
    ones: a named tensor is its name; an unnamed computed one its forward expression; an unnamed
    constant (0.5, 2) its value; any other unnamed tensor x1, x2, ..."""
    taken = {t.name for node in order for t in (node, *node.parents) if t.name}
    fresh = (f"x{i}" for i in range(1, 1 << 30) if f"x{i}" not in taken)
    symbols: dict[int, Expr] = {}
    forward: list[tuple[str, Expr]] = []

    def leaf(t: Tensor) -> Expr:
        if t.name:
            return Expr.symbol(t.name, t.data)
        if not t.requires_grad and t.size and np.all(t.data == t.data.flat[0]):
            return Expr.const(t.data)
        return Expr.symbol(next(fresh), t.data)

    if output.op is None:
        symbols[id(output)] = leaf(output)
    for node in order:
        if node.op is None:  # a leaf is named where it is used, so x1, x2 follow the formulas
            continue
        for parent in node.parents:
            if id(parent) not in symbols:
                symbols[id(parent)] = leaf(parent)
        definition = apply(node.op, tuple(symbols[id(p)] for p in node.parents), node.params)
        if node.name or node is output:
            forward.append((node.name or output_name, definition))
        symbols[id(node)] = Expr.symbol(node.name, node.data) if node.name else definition
    return symbols, forward


def name_deltas(
    order: list[Tensor], found: dict[int, Expr], exprs: list[Expr], taken: set[str]
) -> tuple[dict[int, str], list[tuple[str, Expr]]]:
    """Names for the gradients (at graph nodes) that the formulas use more than once, in the
    order the backward pass computed them (so each is defined before it is used)."""
    uses: dict[int, int] = {}
    stack = list(exprs)
    seen: set[int] = set()
    for e in exprs:
        uses[id(e)] = uses.get(id(e), 0) + 1
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        for a in e.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
            stack.append(a)
    consumers: dict[int, list[Tensor]] = {}
    for node in order:
        for parent in node.parents:
            consumers.setdefault(id(parent), []).append(node)
    names: dict[int, str] = {}
    deltas: list[tuple[str, Expr]] = []
    for node in reversed(order):
        gradient = found.get(id(node))
        if (
            gradient is None
            or id(gradient) in names
            or uses.get(id(gradient), 0) < 2
            or is_simple(gradient)
        ):
            continue
        users = consumers.get(id(node), [])
        source = users[0] if not node.name and len(users) == 1 and users[0].name else node
        label = source.name or ""
        name = "δ_" + label.partition("_")[2] if "_" in label else ("δ_" + label if label else "δ")
        while name in taken:
            name = name.replace("_", "′_", 1) if "_" in name else name + "′"
        taken.add(name)
        names[id(gradient)] = name
        deltas.append((name, gradient))
    return names, deltas


def is_simple(e: Expr) -> bool:
    """A symbol, a constant, or one transposed or negated: nothing gained by naming it."""
    if e.op in (TRANSPOSE, NEG):
        e = e.args[0]
    return e.op in ("symbol", "const")
