"""Tensor: an ndarray that records the primitives applied to it, and the functions that build them.

A Tensor is a node of the computation graph:

    data            the value: a NumPy ndarray, or an array of another Array API library
                    (PyTorch, CuPy, array_api_strict: backend.py), whose type every op keeps
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

import builtins
import copy
import copyreg
import math
import numbers
import operator
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autonet import backend, engine, modes
from autonet.batched import Batched, ValuesNeededError
from autonet.engine import array_of, next_tick
from autonet.modes import grad_mode, is_grad_enabled, replay_recording
from autonet.primitives import OUTSIDE_GRAPH, PRIMITIVES, Primitive

# Held while a .grad is read and replaced (Tensor.accumulate_grad): one lock for all tensors, as
# it is held briefly and backward passes that contend for it are rare.
accumulation_lock = threading.Lock()
_pickling = threading.local()  # .pending: the ids of the nodes a graph's pickle lists first
NO_PARAMS: dict[str, Any] = {}  # the params of an op that has none (shared, never mutated)
ADD, SUB, MUL, DIV, POW, NEG = (PRIMITIVES[k] for k in ("add", "sub", "mul", "div", "pow", "neg"))
MATMUL, SIGMOID, SIGN, SUM = (PRIMITIVES[k] for k in ("matmul", "sigmoid", "sign", "sum"))
POW_SCALAR, COPY = PRIMITIVES["pow_scalar"], PRIMITIVES["copy"]
RESHAPE, TRANSPOSE, GETITEM = (PRIMITIVES[k] for k in ("reshape", "transpose", "getitem"))


def binary_operator(primitive: Primitive) -> tuple[Callable, Callable]:
    """The operator `self op other` and its reflected form `other op self`, each recording
    primitive; the operand that is not self may be a Tensor, an array or a number."""

    def direct(self: Tensor, other: Any) -> Tensor:
        # a Tensor operand (the common case) is checked inline: a call costs a tenth of an op
        if type(other) is not Tensor:
            other = as_operand(other, self, primitive.name)
        return record(primitive, (self, other))

    def reflected(self: Tensor, other: Any) -> Tensor:
        return record(primitive, (as_operand(other, self, primitive.name), self))

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
        "_grad",  # the Tensor behind the `grad` property
        "requires_grad",
        "op",
        "parents",
        "params",
        "name",
        "retains_grad",
    )

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's ufuncs on tensors record (np.exp(t), ndarray + t): the table of dispatch.py."""
        from autonet.dispatch import array_ufunc  # dispatch imports ops, which imports tensor

        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """NumPy's functions on tensors record (np.sum(t), np.concatenate): dispatch.py."""
        from autonet.dispatch import array_function

        return array_function(func, types, args, kwargs)

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
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(
                f"tensor: requires_grad=True needs floating-point data, got dtype "
                f"{self.dtype}; pass dtype=np.float64 (or float32) or convert with "
                ".astype(float)"
            )
        self.requires_grad = bool(requires_grad)
        self._grad: Tensor | None = None
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

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickle without recursion, however deep the graph.

        Pickling a node pickles its parents first, then theirs: a chain of 1,000 ops would
        exceed Python's recursion limit. So the first node of a graph that pickle meets puts all
        its ancestors, oldest first, in its state before its own parents: each of them then finds
        its parents already pickled (pickle's memo keeps each object once, so the graph is still
        shared, not copied). `_pickling.pending` tells those ancestors that they need no such
        list of their own; it is replaced by the next graph's, so it never outgrows one graph.
        """
        state = self.__getstate__()
        if self.parents:
            pending = getattr(_pickling, "pending", None)
            if pending is not None and id(self) in pending:
                pending.discard(id(self))
            else:
                ancestors = graph_of(self)[:-1]
                _pickling.pending = {id(t) for t in ancestors}
                state = {"_ancestors": ancestors, **state}
        return copyreg.__newobj__, (Tensor,), state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from __getstate__'s dict, as a tensor made now: a fresh tick. Pickle rebuilds a
        node's parents before the node, so a loaded graph's ticks are still in topological order.
        (An in-place change made before pickling, between recording and backward, is forgotten.)"""
        for name, value in state.items():
            if name != "_ancestors":  # only there to be pickled first (__reduce_ex__)
                object.__setattr__(self, name, value)
        self._tick = next_tick()

    def __copy__(self) -> Tensor:
        """A shallow copy: a new node with the same data, parents and gradient, and a fresh tick."""
        clone = object.__new__(Tensor)
        clone.__setstate__(self.__getstate__())
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        """A copy of the tensor and of every node of its graph, made oldest first without
        recursion (as pickling: a graph of any depth copies), sharing nothing with the original
        except what `memo` already maps (copy.deepcopy's record of what it has copied)."""
        for node in graph_of(self):
            if id(node) in memo:
                continue
            clone = object.__new__(Tensor)
            memo[id(node)] = clone
            state = node.__getstate__()
            parents = state.pop("parents")
            clone.__setstate__({name: copy.deepcopy(value, memo) for name, value in state.items()})
            clone.parents = tuple(memo[id(parent)] for parent in parents)
        return memo[id(self)]

    # -- attributes ---------------------------------------------------------------------------

    # Reading .data is a C-level attribute fetch (it is on every op's path); assigning it stamps
    # the tensor for in-place safety. `w.data -= x` is a get, an in-place ndarray.__isub__ and a
    # set, so it is stamped too. Writes that never assign the attribute (w.data[...] = 0,
    # np.copyto(w.data, a), changes to an array the tensor shares) cannot be seen.
    data = property(
        operator.attrgetter("_data"), doc="The value: an ndarray, or the array of its library."
    )

    @data.setter
    def data(self, value: Any) -> None:
        """Replace or update the value in place; a backward pass through a graph recorded before
        this assignment that needs the old value raises (engine.check_versions)."""
        if type(value) is not np.ndarray:
            value = to_array(value) if not backend.is_foreign(value) else value
        elif value.dtype.kind not in "biuf":
            raise not_numeric("data", value.dtype, f"assigned array of shape {value.shape}")
        self._data = value
        self._version = engine.stamp_data_write()

    @property
    def shape(self) -> tuple[int, ...]:
        data = self._data
        if type(data) is np.ndarray:
            return data.shape
        return tuple(data.shape)  # torch.Size, a tuple subclass, as a tuple

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the data, whatever its library (t.data.dtype is the library's own:
        torch.float32 for a torch tensor)."""
        data = self._data
        if type(data) is np.ndarray:
            return data.dtype
        dtype = data.dtype
        return dtype if isinstance(dtype, np.dtype) else backend.numpy_dtype(data)

    @property
    def size(self) -> int:
        data = self._data
        return data.size if type(data) is np.ndarray else math.prod(data.shape)

    grad = property(operator.attrgetter("_grad"), doc="None, or dL/d(this) as a Tensor.")

    @grad.setter
    def grad(self, value: Any) -> None:
        """Set or clear the gradient (None), as PyTorch's `.grad = ...`: a Tensor is kept as it is,
        an ndarray is copied into a new Tensor; either must match this tensor's shape and
        floating dtype, since later backward passes add to it."""
        if value is None:
            self._grad = None
            return
        if not isinstance(value, (Tensor, np.ndarray)) and not backend.is_foreign(value):
            raise TypeError(
                f"grad: assign a Tensor, an ndarray or None, got {type(value).__name__} (tensor "
                f"shape {self.shape}, dtype {self.dtype})"
            )
        array = value._data if isinstance(value, Tensor) else value
        dtype = backend.numpy_dtype(array)
        if tuple(array.shape) != self.shape or dtype != self.dtype:
            raise ValueError(
                f"grad: the assigned gradient has shape {tuple(array.shape)} and dtype {dtype}, "
                f"but the tensor has shape {self.shape} and dtype {self.dtype}; a gradient must "
                "match both (backward adds to it)"
            )
        self._grad = value if isinstance(value, Tensor) else Tensor(array)  # Tensor() copies

    @property
    def tick(self) -> int:
        """When this tensor was made, on the clock that orders the graph (engine.next_tick): a
        tensor's parents have smaller ticks."""
        return self._tick

    @property
    def version(self) -> int:
        """The clock's tick of the latest assignment to .data, 0 if none (as torch's _version, it
        changes whenever .data is assigned; backward compares it with the nodes' ticks)."""
        return getattr(self, "_version", 0)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op (PyTorch's meaning)."""
        return self.op is None

    @property
    def T(self) -> Tensor:
        """All axes reversed, as ndarray.T."""
        return self.transpose()

    def numpy(self) -> np.ndarray:
        """The value as an ndarray, shared and not copied, as torch's .numpy(); another
        library's array is converted (sharing its memory where it can, a CPU torch tensor's;
        copied from a GPU)."""
        data = self._data
        if type(data) is np.ndarray or type(data) is Batched:
            return data
        return backend.to_numpy(data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if type(self._data) is Batched:
            self._data.needs_values("converting a tensor to a NumPy array")
        array = self.numpy()
        if dtype is not None and dtype != array.dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python number, this one "
                f"has shape {self.shape}"
            )
        return self.numpy().item()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __float__(self) -> float:
        return float(self.item())

    def __format__(self, format_spec: str) -> str:
        """f"{loss:.4f}": a one-element tensor with a format spec formats its number, t.item();
        f"{t}" is str(t), except for a 0-d tensor: its number, as in PyTorch ("2.5"). PyTorch
        takes a spec for 0-d tensors only; autonet for any one-element tensor, as item() does."""
        if self.size == 1 and (format_spec or self.ndim == 0):
            return format(self.item(), format_spec)
        if not format_spec:
            return str(self)
        raise TypeError(
            f"format: the format spec {format_spec!r} is for one number, but this tensor has "
            f"shape {self.shape} ({self.size} elements); format a one-element tensor "
            "(e.g. t.sum() or t[0]), or the elements one by one"
        )

    def __round__(self, ndigits: int | None = None) -> Any:
        """round(t) and round(t, n) of a one-element tensor: round(t.item(), n), a Python number
        (round half to even, as Python's round). PyTorch's Tensor has no __round__ (round(t) raises
        TypeError there; torch.round(t) rounds each element into a tensor)."""
        if self.size != 1:
            raise TypeError(
                f"round: only a one-element tensor can be rounded to a Python number, this one "
                f"has shape {self.shape}; to round each element use np.round(t.numpy(), ndigits) "
                "(a constant, outside the graph)"
            )
        return round(self.item(), ndigits)

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use "
                "(t == u).data.all() or .any()"
            )
        return bool(self.numpy())

    def __repr__(self) -> str:
        if type(self._data) is Batched:
            return f"tensor({self._data!r})"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", threshold=50)
        extras = []
        if self.dtype != np.float64:
            extras.append(f"dtype={self._data.dtype}")
        if backend.is_foreign(self._data):
            extras.append(f"array={backend.library_of(backend.namespace_of(self._data))}")
        if self.op is not None and self.requires_grad:
            extras.append(f"op={self.op.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    def _repr_html_(self) -> str:
        """Jupyter's display: the repr above a drawing of the graph that computed the tensor
        (autonet.viz.tensor_html); print(t) and repr(t) stay text."""
        from autonet.viz import tensor_html  # autonet.viz imports this module

        return tensor_html(self)

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
        if type(self._data) is Batched:
            raise RuntimeError(
                f"backward: this tensor (shape {self.shape}) is batched by vmap, and .grad would "
                "hold the whole batch's gradients; inside vmap take gradients with an.grad or "
                "an.value_and_grad (as JAX and torch.func do), e.g. "
                "an.vmap(an.grad(loss), in_axes=(None, 0, 0))(w, X, Y)"
            )
        root_grad: Any = engine.check_root_grad(self, grad, "backward")
        if create_graph:
            # a Tensor seed stays in the graph: the gradients are then differentiable in it too
            root_grad = grad if isinstance(grad, Tensor) else Tensor(root_grad)
        engine.backpropagate(self, root_grad, retain_graph or create_graph, create_graph)

    def accumulate_grad(self, g: Any, owned: bool = False) -> None:
        """Add g (an array, or a Tensor under create_graph) to self.grad, atomically.

        .grad always owns its memory: the first gradient is copied (the backward pass hands the
        same array to both inputs of an add, views of it through reshapes and broadcasts, and the
        caller's own seed to a leaf root), and each later one makes a new sum. So scaling one
        .grad in place never changes another, nor the caller's array. Backward passes on several
        threads may accumulate into the same leaf: the read and the write of .grad happen under
        one lock, so no thread's gradient is lost (PyTorch serialises accumulation per leaf too).
        owned=True: g is an ndarray that nothing else holds (replay's code knows it of the arrays
        it allocates), kept as the first gradient without the copy.
        """
        accumulation_lock.acquire()  # not `with`: benchmarks/README.md, "Hot paths"
        try:
            current = self._grad
            if isinstance(g, Tensor):  # create_graph: the copy and the sum are recorded
                self._grad = COPY(g) if current is None else current + g
            elif current is None:  # np.array copies (and makes a NumPy scalar an ndarray)
                self._grad = Tensor.wrap(g if owned else copy_of_array(g))
            else:
                total = current._data + g  # NumPy makes a scalar of 0-d arrays: one again
                if type(total) is not np.ndarray and not backend.is_foreign(total):
                    total = np.asarray(total)
                self._grad = Tensor.wrap(total)
        finally:
            accumulation_lock.release()

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient in .grad after backward (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self.retains_grad = True
        return self

    def clone(self) -> Tensor:
        """A copy of the data with memory of its own, recorded: its gradient flows back to self
        (as torch.clone; detach() shares the data and leaves the graph)."""
        return record(COPY, (self,))

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
        t._grad = None
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
        return record(POW, (self, as_operand(other, self, "pow")))

    def __rpow__(self, other: Any) -> Tensor:
        return record(POW, (as_operand(other, self, "pow"), self))

    def __neg__(self) -> Tensor:
        return record(NEG, (self,))

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return record(PRIMITIVES["abs"], (self,))

    # Comparisons are not differentiable: they return boolean tensors outside the graph.
    def __lt__(self, other: Any) -> Tensor:
        return record(OUTSIDE_GRAPH["less"], (self, as_operand(other, self)))

    def __le__(self, other: Any) -> Tensor:
        return record(OUTSIDE_GRAPH["less_equal"], (self, as_operand(other, self)))

    def __gt__(self, other: Any) -> Tensor:
        return record(OUTSIDE_GRAPH["greater"], (self, as_operand(other, self)))

    def __ge__(self, other: Any) -> Tensor:
        return record(OUTSIDE_GRAPH["greater_equal"], (self, as_operand(other, self)))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return record(OUTSIDE_GRAPH["equal"], (self, as_operand(other, self)))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return record(OUTSIDE_GRAPH["not_equal"], (self, as_operand(other, self)))

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
        return record(SUM, (self,), {"axis": axis, "keepdims": keepdims})

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
        axis = nonempty_axis(axis, self, "max", "maximum")
        return record(PRIMITIVES["max"], (self,), {"axis": axis, "keepdims": keepdims})

    def min(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Smallest element over axis (values only), as -max(-x): ties share the gradient."""
        axis = nonempty_axis(axis, self, "min", "minimum")
        return -(-self).max(axis=axis, keepdims=keepdims)

    def var(
        self, axis: int | tuple[int, ...] | None = None, ddof: int = 0, keepdims: bool = False
    ) -> Tensor:
        """Variance over axis, sum((x - mean)^2) / (N - ddof), as ndarray.var (a composite:
        mean, sub, mul, sum; the gradient is 2 (x - mean) g / (N - ddof))."""
        axis = normalize_axis(axis, self, "var")
        deviation = self - self.mean(axis=axis, keepdims=True)
        axes = range(self.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
        count = int(np.prod([self.shape[a] for a in axes]))
        with np.errstate(divide="ignore", invalid="ignore"):  # N <= ddof: inf or nan, as NumPy
            return (deviation * deviation).sum(axis=axis, keepdims=keepdims) / float(
                count - ddof if count > ddof else 0
            )

    def std(
        self, axis: int | tuple[int, ...] | None = None, ddof: int = 0, keepdims: bool = False
    ) -> Tensor:
        """Standard deviation, sqrt(var(x, axis, ddof)) (a composite; its gradient is infinite
        where the variance is 0, as sqrt's at 0)."""
        return self.var(axis=axis, ddof=ddof, keepdims=keepdims).sqrt()

    def prod(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Product over axis; gradient g * (product of the other elements), right with zeros.

        The prod primitive takes one axis or all; several axes are first moved to the end and
        merged into one (transpose and reshape).
        """
        axis = normalize_axis(axis, self, "prod")
        if not isinstance(axis, tuple):
            return record(PRIMITIVES["prod"], (self,), {"axis": axis, "keepdims": keepdims})
        kept = [a for a in range(self.ndim) if a not in axis]
        merged = self.transpose(tuple(kept) + axis).reshape(
            tuple(self.shape[a] for a in kept) + (-1,)
        )
        out = record(PRIMITIVES["prod"], (merged,), {"axis": len(kept), "keepdims": False})
        if keepdims:
            return out.reshape(tuple(1 if a in axis else n for a, n in enumerate(self.shape)))
        return out.reshape(tuple(n for a, n in enumerate(self.shape) if a not in axis))

    def cumsum(self, axis: int | None = None) -> Tensor:
        """Cumulative sum along axis (of the flattened tensor for None), as ndarray.cumsum."""
        return record(PRIMITIVES["cumsum"], (self,), {"axis": axis})

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the largest element along axis (of the flattened tensor for None), as an
        integer tensor outside the graph (an index has no gradient)."""
        return record(OUTSIDE_GRAPH["argmax"], (self,), {"axis": axis, "keepdims": keepdims})

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the smallest element along axis, as argmax: outside the graph."""
        return record(OUTSIDE_GRAPH["argmin"], (self,), {"axis": axis, "keepdims": keepdims})

    def clip(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - ndarray's names
        """Values below min set to min, above max to max (as ndarray.clip, torch.clamp).

        The gradient is g where min <= x <= max, else 0: at a bound it is g, as PyTorch's
        clamp. The bounds are numbers or arrays and get no gradient.
        """
        for bound in (min, max):
            if isinstance(bound, Tensor) and bound.requires_grad and is_grad_enabled():
                raise TypeError(
                    f"clip: a bound of shape {bound.shape} requires grad, but clip's bounds are "
                    "constants and would silently get no gradient; to differentiate the bounds "
                    "use an.minimum(an.maximum(x, lo), hi), or pass lo.detach()"
                )
        bounds = [b.data if isinstance(b, Tensor) else b for b in (min, max)]
        bounds = [b.copy() if isinstance(b, np.ndarray) else b for b in bounds]
        return record(PRIMITIVES["clip"], (self,), {"a_min": bounds[0], "a_max": bounds[1]})

    def squeeze(self, axis: int | tuple[int, ...] | None = None) -> Tensor:
        """The axes of length 1 (or the given ones, which must have length 1) removed, as
        numpy.squeeze (a reshape)."""
        axis = normalize_axis(axis, self, "squeeze")
        return self.reshape(np.squeeze(np.empty(self.shape, np.bool_), axis=axis).shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """A new axis of length 1 at position dim (torch.unsqueeze; numpy.expand_dims), as a
        reshape. dim counts positions of the result: -1 appends an axis."""
        return self.reshape(np.expand_dims(np.empty(self.shape, np.bool_), dim).shape)

    def flatten(self) -> Tensor:
        """The elements as a 1-D tensor, in C order (ndarray.flatten; a reshape, recorded)."""
        return self.reshape(-1)

    def repeat(self, repeats: Any, axis: int | None = None) -> Tensor:
        """Each element repeated `repeats` times along axis (of the flattened tensor for None),
        as ndarray.repeat (not torch's repeat, which is numpy.tile): an indexing, so the
        gradient of each element sums the gradients of its copies."""
        x = self.reshape(-1) if axis is None else self
        axis = 0 if axis is None else normalize_axis(axis, x, "repeat")
        index = np.repeat(np.arange(x.shape[axis]), repeats)
        return x[(slice(None),) * axis + (index,)]

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """Sum of the diagonal (offset above it, as ndarray.trace) of the planes of axis1 and
        axis2: an indexing and a sum, so the gradient is g on that diagonal, 0 elsewhere."""
        axis1 = normalize_axis(axis1, self, "trace")
        axis2 = normalize_axis(axis2, self, "trace")
        rest = tuple(a for a in range(self.ndim) if a not in (axis1, axis2))
        planes = self.transpose(rest + (axis1, axis2))
        rows, cols = self.shape[axis1], self.shape[axis2]
        start = builtins.max(0, -offset)
        length = builtins.max(0, builtins.min(rows - start, cols - start - offset))
        r = np.arange(start, start + length)
        return planes[..., r, r + offset].sum(axis=-1)

    def reshape(self, *shape: Any) -> Tensor:
        """Same data in a new shape (one entry may be -1), as ndarray.reshape."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return record(RESHAPE, (self,), {"shape": tuple(shape)})

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (reverse them by default), as numpy.transpose.

        Unlike torch.transpose(dim0, dim1), which swaps two axes: for that use swapaxes.
        """
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list, np.ndarray))):
            axes = () if axes[0] is None else tuple(axes[0])
        return record(TRANSPOSE, (self,), {"axes": axes or None})

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


def record(
    primitive: Primitive, inputs: tuple[Tensor, ...], params: dict = NO_PARAMS, hooked: bool = True
) -> Tensor:
    """Run primitive.forward on the inputs' data; if an input requires grad and the output is
    floating-point, record the node (as PyTorch, a cast to integers or bool leaves the graph)."""
    if modes.record_hook is not None and hooked:  # a mode that watches every op (modes.py)
        return modes.record_hook(primitive, inputs, params)
    if modes.batched_record is not None:  # inside vmap: a batched input takes its batching rule
        batched = modes.batched_record(primitive, inputs, params)
        if batched is not None:
            return batched
    if params and primitive.axis_param is not None:
        params = with_normalized_axes(primitive, inputs, params)
    # the common arities spelled out (benchmarks/README.md, "Hot paths")
    # (another library's arrays take record_in_namespace: one type check per input here)
    arity = len(inputs)
    if arity == 2:
        a, b = inputs[0]._data, inputs[1]._data
        if (type(a) is not np.ndarray or type(b) is not np.ndarray) and holds_foreign(inputs):
            return record_in_namespace(primitive, inputs, params)
    elif arity == 1:
        a = inputs[0]._data
        if type(a) is not np.ndarray and holds_foreign(inputs):
            return record_in_namespace(primitive, inputs, params)
    elif holds_foreign(inputs):
        return record_in_namespace(primitive, inputs, params)
    try:
        if params:
            if arity == 1:
                out = primitive.forward(a, **params)
            else:
                out = primitive.forward(*map(array_of, inputs), **params)
        elif arity == 2:
            out = primitive.forward(a, b)
        elif arity == 1:
            out = primitive.forward(a)
        else:
            out = primitive.forward(*map(array_of, inputs))
    except (ValueError, IndexError, TypeError, OverflowError) as exc:
        raise describe_failure(primitive, inputs, params, exc) from exc
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    for t in inputs:
        if t.requires_grad:
            # grad_mode.enabled is modes.is_grad_enabled(), without the call
            if grad_mode.enabled and out.dtype.kind == "f":
                return Tensor.wrap(out, primitive, inputs, params)
            break
    if replay_recording.active:
        return recorded_for_replay(out, primitive, inputs, params)
    return Tensor.wrap(out)


def copy_of_array(g: Any) -> Any:
    """A copy of g with memory of its own: an ndarray (np.array also makes a NumPy scalar one),
    or an array of g's own library."""
    if type(g) is np.ndarray or not backend.is_foreign(g):
        return np.array(g)
    return backend.namespace_of(g).asarray(g, copy=True)


def holds_foreign(inputs: tuple[Tensor, ...]) -> bool:
    """An input holds another library's array (backend.py), not an ndarray."""
    return any(backend.is_foreign_kind(type(t._data)) for t in inputs)


def record_in_namespace(primitive: Primitive, inputs: tuple[Tensor, ...], params: dict) -> Tensor:
    """record() for arrays of another library: the forward for their namespace (which must be
    one: mixing libraries raises), after NumPy's type promotion of an element-wise op's value
    operands (the standard leaves bool * float and int + float to each library; autonet gives
    every backend NumPy's answer, so a rule such as g * (x > 0) means the same everywhere)."""
    xp = namespace_of_inputs(primitive, inputs)
    try:
        out = apply_in_namespace(primitive, xp, *(t._data for t in inputs), **params)
    except (ValueError, IndexError, TypeError, OverflowError, RuntimeError) as exc:
        raise describe_failure(primitive, inputs, params, exc) from exc
    if grad_mode.enabled and any(t.requires_grad for t in inputs):
        if backend.numpy_dtype(out).kind == "f":
            return Tensor.wrap(out, primitive, inputs, params)
    if replay_recording.active:  # replay's or onnx.export's recording: see recorded_for_replay
        return recorded_for_replay(out, primitive, inputs, params)
    return Tensor.wrap(out)


def apply_in_namespace(primitive: Primitive, xp: Any, *arrays: Any, **params: Any) -> Any:
    """primitive's forward on arrays of namespace xp, after NumPy's promotion of an element-wise
    op's value operands (what record_in_namespace runs, and replay's code calls)."""
    if primitive.elementwise and len(arrays) > 1 and needs_promotion(arrays, xp):
        arrays = promoted(primitive, arrays, xp)
    out = primitive.forward_in(xp)(*arrays, **params)
    return out if backend.is_foreign(out) else xp.asarray(out)


def namespace_of_inputs(primitive: Primitive, inputs: tuple[Tensor, ...]) -> Any:
    return backend.namespace_of(*(t._data for t in inputs), operation=primitive.name)


def needs_promotion(arrays: tuple, xp: Any) -> bool:
    """Operands of more than one dtype, or masks (bool): promoted() has work to do."""
    first = arrays[0].dtype
    return first == xp.bool or any(a.dtype != first for a in arrays[1:])


def promoted(primitive: Primitive, arrays: tuple, xp: Any) -> tuple:
    """The value operands of an element-wise op (every input with a VJP; all of them for an op
    outside the graph, a comparison) cast to their NumPy result type."""
    carries = [i for i, vjp in enumerate(primitive.vjps) if vjp is not None] or range(len(arrays))
    if primitive.variadic:
        carries = range(len(arrays))
    dtypes = {i: backend.numpy_dtype(arrays[i]) for i in carries}
    target = np.result_type(*dtypes.values())
    if target == np.bool_ and primitive.vjps[0] is not None:
        # arithmetic on masks ((a == 0) * (b == 0)): NumPy's bool result is 0 or 1; the
        # standard has no arithmetic on bools, so it runs on 0/1 integers
        target = np.dtype(np.uint8)
    return tuple(
        xp.astype(a, backend.dtype_in(xp, target)) if i in dtypes and dtypes[i] != target else a
        for i, a in enumerate(arrays)
    )


def recorded_for_replay(
    out: np.ndarray, primitive: Primitive, inputs: tuple[Tensor, ...], params: dict
) -> Tensor:
    """While an.replay records a step: an op outside the graph (a comparison, argmax, a cast to
    integers) on what the step computes is kept as a node that needs no gradient, so that the
    recording computes it again at each call rather than freezing this call's mask."""
    t = Tensor.wrap(out)
    if any(p.requires_grad or p.op is not None for p in inputs):
        t.op, t.parents, t.params = primitive, inputs, params
    return t


def with_normalized_axes(primitive: Primitive, inputs: tuple[Tensor, ...], params: dict) -> dict:
    """params with primitive's axis param checked against its first input and wrapped to
    non-negative ints: the one place where every axis of every primitive is normalised."""
    name = primitive.axis_param
    axis = params.get(name)
    if axis is None:
        return params
    normalized = normalize_axis(axis, inputs[0], primitive.name, primitive.permutation)
    if normalized == axis and type(normalized) is type(axis):
        return params
    return {**params, name: normalized}


def graph_of(root: Tensor) -> list[Tensor]:
    """root and every tensor it was computed from (whether it requires grad or not), each after
    its parents (oldest tick first), found without recursion."""
    nodes, seen = [root], {id(root)}
    for node in nodes:  # visits the nodes appended below, too
        for parent in node.parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                nodes.append(parent)
    nodes.sort(key=operator.attrgetter("_tick"))
    return nodes


def numbers_of(x: Any) -> np.ndarray:
    """The numbers of a tensor (of every example, inside vmap) or an array: for checks that hold
    for all of them (finite values, indices in range), which need no single example's."""
    data = x._data if isinstance(x, Tensor) else x
    return np.asarray(data.value if type(data) is Batched else data)


def to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """data as an ndarray: Python numbers and lists become float64, arrays keep their dtype.

    The array is always a copy, so later changes to the caller's array leave the tensor alone.
    """
    if isinstance(data, Tensor):
        data = data.data
    if type(data) is Batched:  # a tensor inside vmap
        return data.copy() if dtype is None else data.astype(dtype)
    if backend.is_foreign(data):
        return foreign_array(data, dtype)
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
        if array.dtype.kind == "c":
            raise not_numeric("tensor", array.dtype, f"{type(data).__name__} data")
        raise TypeError(
            f"tensor: cannot make a tensor from {type(data).__name__} data (NumPy dtype "
            f"{array.dtype}); pass numbers, nested lists of numbers, or a numeric ndarray"
        )
    array = np.array(data, dtype=dtype)
    if array.dtype.kind == "c":
        raise not_numeric("tensor", array.dtype, f"array of shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"tensor: dtype {array.dtype} is not numeric; pass a numeric array or dtype="
        )
    return array


def foreign_array(data: Any, dtype: Any) -> Any:
    """A copy of another library's array (on its device), in `dtype` if given."""
    xp = backend.namespace_of(data)
    backend.numpy_dtype(data)  # raises for data that is not real numbers (complex, strings)
    if getattr(data, "requires_grad", False):  # a torch tensor in torch's own graph: leave it
        data = data.detach()
    return xp.asarray(data, dtype=None if dtype is None else backend.dtype_in(xp, dtype), copy=True)


def as_operand(x: Any, like: Tensor, op_name: str = "operand") -> Tensor:
    """x as a Tensor operand of an op with `like`: Tensors pass through, arrays are copied, and
    Python numbers take like's floating dtype (as in PyTorch, so that float32 * 2.0 stays
    float32). Complex numbers and arrays raise TypeError naming op_name."""
    if isinstance(x, Tensor):
        return x
    number_type = type(x)
    data = like._data
    # a Python float or int with an ndarray (the common case) first: the abstract-class checks
    # below cost more than the rest of a small op
    if (number_type is float or number_type is int) and type(data) is np.ndarray:
        dtype = data.dtype
        return Tensor.wrap(np.array(x, dtype if dtype.kind == "f" else None))
    if type(data) is not np.ndarray and type(data) is not Batched:
        return foreign_operand(x, like, op_name)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            details = f"an array of shape {x.shape}, with a tensor of shape {like.shape}"
            raise not_numeric(op_name, x.dtype, details)
        # a copy, as Tensor() makes: the rules read operands when backward runs, so a caller's
        # array changed in between would silently change the gradient
        return Tensor.wrap(x.copy())
    if isinstance(x, numbers.Real) and not isinstance(x, np.generic):
        dtype = like._data.dtype if like._data.dtype.kind == "f" else None
        return Tensor.wrap(np.asarray(x, dtype=dtype))
    if isinstance(x, (complex, np.complexfloating)):
        raise not_numeric(op_name, np.asarray(x).dtype, f"the number {x!r}")
    return Tensor(x)


def foreign_operand(x: Any, like: Tensor, op_name: str) -> Tensor:
    """as_operand for a tensor of another library: a Python number becomes a 0-d array of its
    namespace in like's floating dtype, a NumPy scalar or a bool one in its own dtype; an array
    (NumPy's, or a third library's) stays itself, and the op raises naming both libraries."""
    xp = backend.namespace_of(like._data)
    if isinstance(x, (bool, np.bool_, np.integer, np.floating)):
        return Tensor.wrap(xp.asarray(x, dtype=backend.dtype_in(xp, np.asarray(x).dtype)))
    if isinstance(x, numbers.Real):
        dtype = like.dtype
        if dtype.kind != "f":
            dtype = np.result_type(dtype, type(x))
        return Tensor.wrap(xp.asarray(x, dtype=backend.dtype_in(xp, dtype)))
    if isinstance(x, np.ndarray) or backend.is_foreign(x):
        return Tensor(x)
    raise TypeError(
        f"{op_name}: cannot combine {type(x).__name__} {x!r} with a tensor of shape {like.shape}"
    )


def not_numeric(what: str, dtype: np.dtype, details: str) -> TypeError:
    """The error for data that autonet cannot differentiate: complex, object, strings, ..."""
    if dtype.kind == "c":
        reason = (
            "complex numbers are not supported (their gradients need a convention autonet does "
            "not define); pass the real and imaginary parts as two real tensors"
        )
    else:
        reason = "pass a numeric (bool, integer or floating-point) array"
    return TypeError(f"{what}: dtype {dtype} ({details}) is not real numeric; {reason}")


def normalize_axis(
    axis: Any, t: Tensor, op_name: str, permutation: bool = False
) -> int | tuple[int, ...] | None:
    """axis as None, an int or a tuple of ints in range for t, negative ones wrapped (axis -1 of
    a 3-d tensor is 2), as NumPy reads them. With `permutation`, axis must order all of t's axes
    (numpy.transpose's `axes`). A 0-d tensor has no axes, so any int axis is out of range (as
    NumPy; PyTorch accepts 0 and -1)."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    ndim = t.ndim
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(
                f"{op_name}: axis {a!r} is not an integer (tensor shape {t.shape}); axes are "
                "ints, negative ones counted from the end"
            )
        if not -ndim <= a < ndim:
            where = (
                "a 0-d tensor has no axes: use axis=None"
                if ndim == 0
                else f"use an axis in [-{ndim}, {ndim - 1}]"
            )
            raise ValueError(
                f"{op_name}: axis {a} is out of range for a tensor of shape {t.shape} "
                f"(ndim {ndim}); {where}"
            )
    wrapped = tuple(int(a) % ndim for a in axes)
    if len(set(wrapped)) < len(wrapped):
        raise ValueError(
            f"{op_name}: axis {axis} names an axis twice (shape {t.shape}); list each axis once"
        )
    if permutation and len(wrapped) != ndim:
        raise ValueError(
            f"{op_name}: axes {axis} do not order all {ndim} axes of a tensor of shape "
            f"{t.shape}; give each axis once (e.g. {tuple(reversed(range(ndim)))})"
        )
    return wrapped if isinstance(axis, (tuple, list)) else wrapped[0]


def nonempty_axis(axis: Any, t: Tensor, op_name: str, what: str) -> int | tuple[int, ...] | None:
    """axis normalised (normalize_axis), for a reduction that has no value over an empty axis
    (the maximum or minimum of nothing): such an axis raises ValueError."""
    axis = normalize_axis(axis, t, op_name)
    axes = range(t.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    if any(t.shape[a] == 0 for a in axes):
        raise ValueError(
            f"{op_name}: cannot take the {what} over an empty axis (tensor shape {t.shape}, "
            f"axis {axis}); an empty axis has no {what}"
        )
    return axis


def plain_index(index: Any) -> Any:
    """The index as the node keeps it for the backward pass: Tensors replaced by their arrays
    (indices are never differentiated) and every array copied, so that changing the caller's
    index array between forward and backward cannot move the gradient. A list becomes an integer
    or boolean array (an empty list selects nothing, as in NumPy)."""
    if isinstance(index, tuple):
        return tuple(map(plain_index, index))
    if isinstance(index, Tensor):
        if index.op is not None and replay_recording.active:
            raise ValuesNeededError(
                f"replay: an index (shape {index.shape}, dtype {index.dtype}) computed from the "
                "step's values (a mask or argmax) would be frozen at this call's values in the "
                "recording; select with an.where(mask, x, 0) instead, or run the step without "
                "an.replay"
            )
        data = index._data  # an ndarray, a batch inside vmap, or another library's array
        return copy_of_array(data) if backend.is_foreign(data) else data.copy()
    if isinstance(index, np.ndarray):
        return index.copy()
    if isinstance(index, list):
        array = np.array(index)
        return array.astype(np.intp) if array.size == 0 else array
    return index


def describe_failure(
    primitive: Primitive, inputs: tuple[Tensor, ...], params: dict, exc: Exception
) -> Exception:
    """A clear error for an op NumPy refused: the op, the shapes and dtypes, and what to do (the
    primitive's own `explain`, if it has one)."""
    if primitive.explain is not None:
        return primitive.explain(inputs, params, exc)
    name = primitive.name
    shapes = " and ".join(str(t.shape) for t in inputs)
    dtypes = ", ".join(str(t.dtype) for t in inputs)
    if primitive.elementwise and len(inputs) > 1 and isinstance(exc, ValueError):
        return ValueError(
            f"{name}: shapes {shapes} cannot be broadcast together (dtypes {dtypes}): NumPy "
            "broadcasting compares shapes from the last axis and each pair of lengths must be "
            "equal or 1; reshape an operand (e.g. x.reshape(-1, 1)) to line them up"
        )
    details = f"input shapes {shapes}, dtypes {dtypes}"
    if params:
        details += ", " + ", ".join(f"{k}={v!r}" for k, v in params.items())
    return type(exc)(f"{name}: {exc} ({details})")
