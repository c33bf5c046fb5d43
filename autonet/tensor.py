"""Tensor: an ndarray that records the primitives applied to it, and the functions that build them.

A Tensor is a node of the computation graph:

    data            the value, a NumPy ndarray
    grad            None, or a Tensor of data's shape: dL/d(this), filled in by backward()
    requires_grad   whether gradients flow to this tensor
    op, parents     the Primitive that made it and its input Tensors (None and () for a leaf)
    params          the op's static arguments (axis=..., shape=...)

Every operator and method below applies one primitive of the table (primitives.py) or composes a
few; none has a backward of its own. Conventions follow NumPy (broadcasting, dtype promotion,
axis/keepdims, transpose(axes)) and PyTorch (backward(), .grad, requires_grad, no_grad, detach).
Where the two disagree autonet follows NumPy and says so: `transpose` permutes axes as
numpy.transpose (torch.transpose swaps two; use `swapaxes`), and `max(axis)` returns values only.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autonet import engine
from autonet.engine import _grad_mode as grad_mode
from autonet.engine import array_of, next_tick
from autonet.primitives import PRIMITIVES, Primitive

NO_PARAMS: dict[str, Any] = {}  # the params of an op that has none (shared, never mutated)
ADD, SUB, MUL, DIV, POW, NEG = (PRIMITIVES[k] for k in ("add", "sub", "mul", "div", "pow", "neg"))
MATMUL, SIGMOID, SIGN, SUM = (PRIMITIVES[k] for k in ("matmul", "sigmoid", "sign", "sum"))
POW_SCALAR = PRIMITIVES["pow_scalar"]
RESHAPE, TRANSPOSE, GETITEM = (PRIMITIVES[k] for k in ("reshape", "transpose", "getitem"))


def binary_operator(primitive: Primitive) -> tuple[Callable, Callable]:
    """The operator `self op other` and its reflected form `other op self`, each recording
    primitive; the operand that is not self may be a Tensor, an array or a number."""

    def direct(self: Tensor, other: Any) -> Tensor:
        # a Tensor operand (the common case) is checked inline: a call costs a tenth of an op
        return record(
            primitive, (self, other if type(other) is Tensor else as_operand(other, self))
        )

    def reflected(self: Tensor, other: Any) -> Tensor:
        return record(primitive, (as_operand(other, self), self))

    return direct, reflected


class Tensor:
    """An n-dimensional array that records its computation graph for reverse-mode gradients.

        x = an.tensor([[1.0, 2.0]], requires_grad=True)
        y = (x * x).sum()          # y = sum x_i^2
        y.backward()               # x.grad = dy/dx = 2 x = [[2., 4.]]

    Python numbers and lists become float64; ndarrays keep their dtype (float32 stays float32
    through every op and its gradient). Only floating-point tensors can require grad.
    """

    __slots__ = (
        "_data",  # the ndarray behind the `data` property
        "_version",  # the tick of the latest assignment to .data; unset until the first one
        # (engine.check_versions reads it with a default: one store fewer per tensor made)
        "_tick",  # the clock's tick when this tensor was made (engine.next_tick)
        "grad",
        "requires_grad",
        "op",
        "parents",
        "params",
        "name",
        "retains_grad",
    )
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator
    __hash__ = object.__hash__  # graph nodes hash by identity; == is element-wise

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        self._data = to_array(data, dtype)
        self._tick = next_tick()
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(
                f"tensor: requires_grad=True needs floating-point data, got dtype "
                f"{self._data.dtype}; pass dtype=np.float64 (or float32) or convert with "
                ".astype(float)"
            )
        self.requires_grad = bool(requires_grad)
        self.grad: Tensor | None = None
        self.op: Primitive | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.params: dict[str, Any] = {}
        self.name = name
        self.retains_grad = False

    # -- recording --------------------------------------------------------------------------

    @classmethod
    def apply_primitive(cls, primitive: Primitive, args: Sequence[Any], params: dict) -> Tensor:
        """Apply `primitive` to args (Tensors, arrays or numbers) and record it. Used by
        Primitive.__call__, so user-defined primitives record like built-in ones."""
        like = next(a for a in args if isinstance(a, Tensor))
        return record(primitive, tuple(as_operand(a, like) for a in args), params)

    # -- copying and pickling -----------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What pickle and copy keep: every slot but the clock's (_tick, _version). Ticks are
        this process's (engine.next_tick), so a tensor loaded elsewhere with its old tick could
        sort after the nodes made from it there, and look written after them."""
        return {
            name: getattr(self, name)
            for name in Tensor.__slots__
            if name not in ("_tick", "_version") and hasattr(self, name)
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from __getstate__'s dict, as a tensor made now: a fresh tick. Pickle rebuilds a
        node's parents before the node, so a loaded graph's ticks are still in topological order.
        (An in-place change made before pickling, between recording and backward, is forgotten.)"""
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self._tick = next_tick()

    # -- attributes ---------------------------------------------------------------------------

    # Reading .data is a C-level attribute fetch (it is on every op's path); assigning it stamps
    # the tensor for in-place safety. `w.data -= x` is a get, an in-place ndarray.__isub__ and a
    # set, so it is stamped too. Writes that never assign the attribute (w.data[...] = 0,
    # np.copyto(w.data, a), changes to an array the tensor shares) cannot be seen.
    data = property(operator.attrgetter("_data"), doc="The value, a NumPy ndarray.")

    @data.setter
    def data(self, value: Any) -> None:
        """Replace or update the value in place; a backward pass through a graph recorded before
        this assignment that needs the old value raises (engine.check_versions)."""
        self._data = value if type(value) is np.ndarray else to_array(value)
        self._version = engine.stamp_data_write()

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op (PyTorch's meaning)."""
        return self.op is None

    @property
    def T(self) -> Tensor:
        """All axes reversed, as ndarray.T."""
        return self.transpose()

    def numpy(self) -> np.ndarray:
        """The value as an ndarray (shared, not copied; as torch's .numpy())."""
        return self.data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python number, this one "
                f"has shape {self.shape}"
            )
        return self.data.item()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use "
                "(t == u).data.all() or .any()"
            )
        return bool(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", threshold=50)
        extras = []
        if self.data.dtype != np.float64:
            extras.append(f"dtype={self.data.dtype}")
        if self.op is not None and self.requires_grad:
            extras.append(f"op={self.op.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    # -- gradients ----------------------------------------------------------------------------

    def backward(
        self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad; add it to leaf.grad.

        grad          dL/d(self); may be omitted for a one-element tensor (then 1)
        retain_graph  keep the graph for another backward (it is freed otherwise)
        create_graph  record the backward pass itself, so the .grad tensors can be
                      differentiated again (higher-order derivatives); implies retain_graph
        Gradients accumulate, as in PyTorch: zero them (t.grad = None) between steps.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: this tensor (shape {self.shape}) does not require grad: none of the "
                "tensors it was computed from has requires_grad=True (or it was computed under "
                "no_grad)"
            )
        root_grad: Any = engine.check_root_grad(self, grad, "backward")
        if create_graph:
            root_grad = Tensor(root_grad)
        engine.backpropagate(self, root_grad, retain_graph or create_graph, create_graph)

    def accumulate_grad(self, g: Any) -> None:
        """Add g (an array, or a Tensor under create_graph) to self.grad."""
        if isinstance(g, Tensor):
            self.grad = g if self.grad is None else self.grad + g
            return
        if self.grad is None:
            # a broadcast view (read-only), or the NumPy scalar that arithmetic on 0-d arrays
            # returns: .grad gets an ndarray of its own
            if type(g) is not np.ndarray or not g.flags.writeable:
                g = np.array(g)
            self.grad = Tensor.wrap(g)
        else:
            self.grad = Tensor.wrap(np.asarray(self.grad._data + g))

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient in .grad after backward (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self.retains_grad = True
        return self

    def detach(self) -> Tensor:
        """The same data (shared) as a new leaf outside the graph."""
        return Tensor.wrap(self.data)

    @classmethod
    def wrap(
        cls,
        array: np.ndarray,
        op: Primitive | None = None,
        parents: tuple[Tensor, ...] = (),
        params: dict[str, Any] = NO_PARAMS,
    ) -> Tensor:
        """A tensor around an existing ndarray, without copying or checking (internal fast path):
        a leaf, or, given `op`, the recorded output of op applied to `parents` (requires grad)."""
        t = object.__new__(cls)
        t._data = array
        t._tick = next_tick()
        t.grad = None
        t.requires_grad = op is not None
        t.op = op
        t.parents = parents
        t.params = params
        t.name = None
        t.retains_grad = False
        return t

    # -- arithmetic ---------------------------------------------------------------------------

    __add__, __radd__ = binary_operator(ADD)
    __sub__, __rsub__ = binary_operator(SUB)
    __mul__, __rmul__ = binary_operator(MUL)
    __truediv__, __rtruediv__ = binary_operator(DIV)
    __matmul__, __rmatmul__ = binary_operator(MATMUL)

    def __pow__(self, other: Any) -> Tensor:
        """self ** other; a Python number exponent is a param of pow_scalar, not an input."""
        if type(other) is int or type(other) is float:
            return record(POW_SCALAR, (self,), {"exponent": other})
        return record(POW, (self, as_operand(other, self)))

    def __rpow__(self, other: Any) -> Tensor:
        return record(POW, (as_operand(other, self), self))

    def __neg__(self) -> Tensor:
        return record(NEG, (self,))

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return record(PRIMITIVES["abs"], (self,))

    # Comparisons are not differentiable: they return boolean tensors outside the graph.
    def __lt__(self, other: Any) -> Tensor:
        return Tensor.wrap(np.asarray(self.data < as_operand(other, self).data))

    def __le__(self, other: Any) -> Tensor:
        return Tensor.wrap(np.asarray(self.data <= as_operand(other, self).data))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor.wrap(np.asarray(self.data > as_operand(other, self).data))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor.wrap(np.asarray(self.data >= as_operand(other, self).data))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor.wrap(np.asarray(self.data == as_operand(other, self).data))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor.wrap(np.asarray(self.data != as_operand(other, self).data))

    # -- element-wise functions ---------------------------------------------------------------

    def exp(self) -> Tensor:
        """exp(x); gradient g * exp(x)."""
        return record(PRIMITIVES["exp"], (self,))

    def log(self) -> Tensor:
        """Natural log; gradient g / x. log(0) = -inf, log(x < 0) = nan, as NumPy."""
        return record(PRIMITIVES["log"], (self,))

    def sqrt(self) -> Tensor:
        """sqrt(x); gradient g / (2 sqrt(x))."""
        return record(PRIMITIVES["sqrt"], (self,))

    def sigmoid(self) -> Tensor:
        """1 / (1 + exp(-x)), overflow-free; gradient g * s * (1 - s) from the saved output s."""
        return record(SIGMOID, (self,))

    def tanh(self) -> Tensor:
        """tanh(x); gradient g * (1 - tanh(x)^2) from the saved output."""
        return record(PRIMITIVES["tanh"], (self,))

    def relu(self) -> Tensor:
        """max(x, 0); gradient g where x > 0, else 0 (0 at x = 0, as PyTorch)."""
        return record(PRIMITIVES["relu"], (self,))

    def abs(self) -> Tensor:
        """|x|; gradient g * sign(x) (0 at x = 0, as PyTorch)."""
        return record(PRIMITIVES["abs"], (self,))

    def sign(self, at_zero: float = 0.0) -> Tensor:
        """sign(x) in {-1, 0, 1}; gradient 0.

        sign(0) = at_zero: 0 by default (NumPy, PyTorch); at_zero=-1 gives the perceptron
        convention sign(x) = 1 if x > 0 else -1 used by many textbooks.
        """
        if at_zero == 0:
            return record(SIGN, (self,))
        return record(SIGN, (self,), {"at_zero": at_zero})

    # -- reductions and shape ----------------------------------------------------------------

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over axis (all by default); gradient: g broadcast back over the summed axes."""
        params = {"axis": normalize_axis(axis, self, "sum"), "keepdims": keepdims}
        return record(SUM, (self,), params)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """sum(x, axis) / (number of elements summed)."""
        axis = normalize_axis(axis, self, "mean")
        axes = range(self.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
        count = int(np.prod([self.shape[a] for a in axes]))
        if count == 0:
            raise ValueError(f"mean: no elements to average (shape {self.shape}, axis {axis})")
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Largest element over axis (values only); gradient to the maxima, ties share it."""
        if self.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {self.shape}")
        params = {"axis": normalize_axis(axis, self, "max"), "keepdims": keepdims}
        return record(PRIMITIVES["max"], (self,), params)

    def reshape(self, *shape: Any) -> Tensor:
        """Same data in a new shape (one entry may be -1), as ndarray.reshape."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return record(RESHAPE, (self,), {"shape": tuple(shape)})

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (reverse them by default), as numpy.transpose.

        Unlike torch.transpose(dim0, dim1), which swaps two axes: for that use swapaxes.
        """
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return record(TRANSPOSE, (self,), {"axes": tuple(axes) if axes else None})

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Exchange two axes, as ndarray.swapaxes and torch.transpose(dim0, dim1)."""
        axis1 = normalize_axis(axis1, self, "swapaxes")
        axis2 = normalize_axis(axis2, self, "swapaxes")
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return record(TRANSPOSE, (self,), {"axes": tuple(axes)})

    def astype(self, dtype: Any) -> Tensor:
        """The values converted to dtype; the gradient is converted back."""
        if np.dtype(dtype).kind not in "biuf":
            raise TypeError(
                f"astype: dtype {np.dtype(dtype)} is not numeric (tensor shape {self.shape}, "
                f"dtype {self.dtype}); convert to a bool, integer or float dtype"
            )
        return record(PRIMITIVES["astype"], (self,), {"dtype": np.dtype(dtype)})

    def __getitem__(self, index: Any) -> Tensor:
        """Basic slices, integers, None, Ellipsis and integer/boolean arrays, as NumPy.

        The gradient scatters g back to the indexed positions; an index repeated in an integer
        array receives the sum of its gradients.
        """
        return record(GETITEM, (self,), {"index": plain_index(index)})

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))


# -------------------------------------------------------------------------------------------
# Recording


def record(primitive: Primitive, inputs: tuple[Tensor, ...], params: dict = NO_PARAMS) -> Tensor:
    """Run primitive.forward on the inputs' data; if an input requires grad, record the node."""
    try:
        # the common arities spelled out: unpacking a map costs about as much as a small NumPy op
        arity = len(inputs)
        if params:
            if arity == 1:
                out = primitive.forward(inputs[0]._data, **params)
            else:
                out = primitive.forward(*map(array_of, inputs), **params)
        elif arity == 2:
            out = primitive.forward(inputs[0]._data, inputs[1]._data)
        elif arity == 1:
            out = primitive.forward(inputs[0]._data)
        else:
            out = primitive.forward(*map(array_of, inputs))
    except (ValueError, IndexError, TypeError, OverflowError) as exc:
        raise describe_failure(primitive, inputs, params, exc) from exc
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    for t in inputs:
        if t.requires_grad:
            if grad_mode.enabled:  # engine.is_grad_enabled(), without the call
                return Tensor.wrap(out, primitive, inputs, params)
            break
    return Tensor.wrap(out)


def to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """data as an ndarray: Python numbers and lists become float64, arrays keep their dtype.

    The array is always a copy, so later changes to the caller's array leave the tensor alone.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)):
        try:
            array = np.array(data)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(
                "tensor: the nested lists have rows of different lengths, so they do not form "
                "an array; give every row the same length"
            ) from exc
        if array.dtype.kind in "biuf":
            return array.astype(np.float64, copy=False)
        raise TypeError(
            f"tensor: cannot make a tensor from {type(data).__name__} data (NumPy dtype "
            f"{array.dtype}); pass numbers, nested lists of numbers, or a numeric ndarray"
        )
    array = np.array(data, dtype=dtype)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"tensor: dtype {array.dtype} is not numeric; pass a numeric array or dtype="
        )
    return array


def as_operand(x: Any, like: Tensor) -> Tensor:
    """x as a Tensor operand of an op with `like`: Tensors pass through, arrays are wrapped
    without copying, and Python numbers take like's floating dtype (as in PyTorch, so that
    float32 * 2.0 stays float32)."""
    if isinstance(x, Tensor):
        return x
    number_type = type(x)
    # a Python float or int (the common case) first: the abstract-class checks below cost more
    # than the rest of a small op
    if number_type is float or number_type is int:
        dtype = like._data.dtype
        return Tensor.wrap(np.array(x, dtype if dtype.kind == "f" else None))
    if isinstance(x, np.ndarray):
        return Tensor.wrap(x)
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic):
        real = isinstance(x, numbers.Real)
        dtype = like._data.dtype if real and like._data.dtype.kind == "f" else None
        return Tensor.wrap(np.asarray(x, dtype=dtype))
    return Tensor(x)


def normalize_axis(axis: Any, t: Tensor, op_name: str) -> int | tuple[int, ...] | None:
    """axis as None, an int or a tuple of ints in range for t (negative ones wrapped)."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    for a in axes:
        if not -t.ndim <= a < max(t.ndim, 1):
            raise ValueError(
                f"{op_name}: axis {a} is out of range for a tensor of shape {t.shape} "
                f"(ndim {t.ndim}); use an axis in [-{t.ndim}, {t.ndim - 1}]"
            )
    wrapped = tuple(a % max(t.ndim, 1) for a in axes)
    if len(set(wrapped)) < len(wrapped):
        raise ValueError(
            f"{op_name}: axis {axis} names an axis twice (shape {t.shape}); list each axis once"
        )
    return wrapped if isinstance(axis, (tuple, list)) else wrapped[0]


def plain_index(index: Any) -> Any:
    """An index with Tensors replaced by their arrays (indices are never differentiated)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


ELEMENTWISE = {"add", "sub", "mul", "div", "pow", "maximum"}


def describe_failure(
    primitive: Primitive, inputs: tuple[Tensor, ...], params: dict, exc: Exception
) -> Exception:
    """A clear error for an op NumPy refused: the op, the shapes and dtypes, and what to do."""
    name = primitive.name
    shapes = " and ".join(str(t.shape) for t in inputs)
    dtypes = ", ".join(str(t.dtype) for t in inputs)
    if name == "matmul":
        a, b = inputs
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
    if name in ELEMENTWISE and isinstance(exc, ValueError):
        return ValueError(
            f"{name}: shapes {shapes} cannot be broadcast together (dtypes {dtypes}): NumPy "
            "broadcasting compares shapes from the last axis and each pair of lengths must be "
            "equal or 1; reshape an operand (e.g. x.reshape(-1, 1)) to line them up"
        )
    if name == "reshape":
        return ValueError(
            f"reshape: cannot reshape a tensor of shape {inputs[0].shape} ({inputs[0].size} "
            f"elements) into shape {params['shape']}; the sizes must match (one length may be -1)"
        )
    if name == "getitem":
        index = params["index"]
        return IndexError(f"getitem: {exc} (tensor shape {inputs[0].shape}, index {index!r})")
    details = f"input shapes {shapes}, dtypes {dtypes}"
    if params:
        details += ", " + ", ".join(f"{k}={v!r}" for k, v in params.items())
    return type(exc)(f"{name}: {exc} ({details})")
