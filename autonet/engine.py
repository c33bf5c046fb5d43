"""The graph walk: topological order, the backward pass, and the clock that orders and guards it.

The engine knows the graph, not the operations: each node is a Tensor with `op` (a Primitive, or
None for a leaf), `parents` (its inputs) and `params` (the op's static arguments); the math lives
in the primitive table (primitives.py). For a scalar loss L and every node x that needs a gradient,
the backward pass computes dL/dx by the chain rule in reverse topological order:

    dL/dx = sum over each use of x as input i of a node y:   y.op.vjps[i](dL/dy, y, *y.parents)

Memory, as PyTorch's saved tensors: unless the graph is kept, a value that no VJP will read
(the table's `saves`) and that nothing but the graph holds is freed before the VJPs allocate
(release_unread), and a gradient array only the pass holds becomes `.grad` without a copy.
"""

from __future__ import annotations

import itertools
import math
import operator
import sys
import threading
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import numpy as np

from autonet import backend

if TYPE_CHECKING:
    from autonet.tensor import Tensor


# One clock orders the graph and guards it against in-place changes. Every tensor takes a fresh
# tick when it is made (t._tick): a node's parents exist before it, so ascending ticks are a
# topological order, and the backward pass takes nodes latest tick first instead of searching the
# graph depth-first.
# In-place safety, a version counter as in PyTorch: VJPs read a node's output and inputs from .data
# when backward runs, so a .data changed in between would silently give wrong gradients. Each
# assignment to a tensor's .data stamps it (t._version) with a fresh tick of the same clock and
# records it in `last_data_write`; backward refuses a node whose output or an input was stamped
# after the node's own tick. One clock rather than a version per tensor saved per node, so
# recording stores one int instead of a tuple.
next_tick = itertools.count(1).__next__  # atomic: two threads never get the same tick
last_data_write = 0
_data_write_lock = threading.Lock()


def stamp_data_write() -> int:
    """A fresh tick for an assignment to some tensor's .data. The lock keeps `last_data_write`
    the latest tick of any write, whichever thread made it (backward's fast check relies on it)."""
    global last_data_write
    _data_write_lock.acquire()  # not `with`: benchmarks/README.md, "Hot paths"
    try:
        last_data_write = next_tick()
        return last_data_write
    finally:
        _data_write_lock.release()


def check_versions(node: Tensor) -> None:
    """Raise if node's output or one of its inputs had .data assigned after node was recorded."""
    for position, t in enumerate((node, *node.parents)):
        if getattr(t, "_version", 0) > node._tick:  # a tensor never assigned: 0
            role = "the output" if position == 0 else f"input {position - 1}"
            which = f"tensor {t.name!r}" if t.name else "a tensor"
            raise RuntimeError(
                f"backward: {which} (shape {t.shape}, dtype {t.dtype}), {role} of "
                f"{node.op.name}, was modified in place (.data assigned) after {node.op.name} "
                "saved it for the backward pass, so its gradient would be computed from the "
                "new value; change .data only after backward() (e.g. w.data -= lr * w.grad.data), "
                "or run the forward pass again after the change"
            )


def topological_order(root: Tensor) -> list[Tensor]:
    """Every node that root depends on and that requires grad, each after all its parents.

    The nodes are found breadth-first (a list that grows while it is read, no recursion), then
    put in the order they were made (their ticks): a parent is always made before its children.
    """
    order = [root]
    seen = {root}  # Tensors hash by identity
    for node in order:  # visits the nodes appended below, too
        for parent in node.parents:
            if parent.requires_grad and parent not in seen:
                seen.add(parent)
                order.append(parent)
    order.sort(key=tick_of)
    return order


tick_of = operator.attrgetter("_tick")
array_of = operator.attrgetter("_data")  # a Tensor's ndarray, without the property call


def same_tensor(t: Tensor) -> Tensor:
    """What a node hands its VJPs under create_graph: the Tensor itself, so the rules record."""
    return t


def constant_tensor(t: Tensor) -> Tensor:
    """t's value as a new leaf that requires no grad (the rules then record nothing)."""
    return type(t).wrap(t._data)


def unbroadcast(grad: Any, shape: tuple[int, ...], op_name: str = "") -> Any:
    """Sum grad over the axes that broadcasting added or stretched, so that it has `shape`.

    If out = f(x) broadcast x from `shape` to grad.shape, every copy of an element of x
    contributed to L, so dL/dx is the sum of g over the copies: over the leading axes x lacked,
    and over each axis where x had length 1.
    """
    extra = grad.ndim - len(shape)
    if extra < 0 or any(n != 1 and n != m for n, m in zip(shape, grad.shape[extra:], strict=True)):
        raise RuntimeError(
            f"{op_name}: its VJP returned a gradient of shape {grad.shape} for an input of shape "
            f"{shape}; a VJP must return the input's shape or one that broadcasts from it"
        )
    stretched = tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    axes = tuple(range(extra)) + stretched
    if axes:
        grad = grad.sum(axis=axes)
    return grad.reshape(shape) if grad.shape != shape else grad


def cast_gradient(grad: Any, parent: Tensor, op_name: str) -> Any:
    """grad in parent's dtype: an op mixing float32 and float64 computes in float64 (NumPy's
    promotion) and returns each input's gradient in the input's own dtype."""
    if parent.dtype.kind != "f":
        # only reachable by setting requires_grad=True on an existing integer tensor: the
        # constructor refuses it, and a gradient cast to integers would be silently truncated
        raise TypeError(
            f"backward: an input of {op_name} (shape {parent.shape}, dtype {parent.dtype}) has "
            "requires_grad=True but integer data; only floating-point tensors can hold "
            "gradients: convert it with .astype(float) before the forward pass"
        )
    return grad.astype(parent.dtype)


def references_of_a_local() -> int:
    """What sys.getrefcount reports for an object that only a local variable holds: 2 where the
    call's argument is a reference of its own, 1 where the interpreter borrows it (CPython 3.14
    may). The engine's counts below are relative to it."""
    probe = object()
    return sys.getrefcount(probe)


LOCAL_REFERENCES = references_of_a_local()

# Values smaller than this are never freed early: the stand-in costs more than it saves (NumPy's
# temporary elision starts at the same size for the same reason).
RELEASE_BYTES = 256 * 1024


def release_unread(parent: Tensor) -> None:
    """Free the value of `parent`, an input that no VJP of its consumer reads (op.saves) and that
    only the consumer holds, unless its producer's VJPs read it (or it is a leaf's).

    `S @ W` inside `sigmoid(S @ W)` is such an input: sigmoid's VJP reads its output, matmul's
    its inputs, and only the graph holds the product, so the backward pass frees it before
    sigmoid's gradient is computed, as PyTorch saves only what a VJP reads. "Only the consumer
    holds it" is the backward pass's check of its reference count (the consumer's tuple of
    parents and one local): any other holder (the user's variable, another consumer, a list)
    keeps the value. The value becomes `freed(value)`, so the engine's shape and dtype checks
    still read it, and a read it should not have would show as NaN, never as a plausible number
    (tests/test_table.py checks each `saves` that way).
    """
    producer, data = parent.op, parent._data
    if producer is not None and not producer.saves_out and data.dtype.kind == "f":
        parent._data = freed(data)


def freed(data: np.ndarray) -> np.ndarray:
    """What a freed value becomes: a read-only array of data's shape and (floating) dtype whose
    elements are all one NaN, in no memory of its own."""
    return np.broadcast_to(np.array(np.nan, dtype=data.dtype), data.shape)


def backpropagate(
    root: Tensor,
    root_grad: Any,
    retain_graph: bool,
    create_graph: bool,
    wanted: Sequence[Tensor] | None = None,
    operand: Callable[[Tensor], Any] | None = None,
) -> dict[int, Any]:
    """Run the backward pass from root, seeded with dL/d(root) = root_grad.

    With `wanted=None`, gradients accumulate into `.grad` of the leaves (and of tensors that called
    `retain_grad()`), as `Tensor.backward`; otherwise the gradients of the wanted tensors are
    returned by id and no `.grad` changes, as `gradients`. Gradients are arrays, or Tensors that
    record a graph of their own when `create_graph` (so they can be differentiated again). Each
    node's gradient is dropped from the pass's dict once its VJPs have used it, and, unless
    `retain_graph`, each node's links to its parents are cut, freeing the graph. `operand(node)`,
    if given, is what a node passes to the VJPs instead of its data (derive passes symbols).
    """
    collect = wanted is not None
    wanted_ids = {id(t) for t in wanted} if collect else set()
    found: dict[int, Any] = {}
    # what a node hands its VJPs for its output and inputs: arrays, or Tensors / symbols
    value_of = operand if operand is not None else same_tensor if create_graph else array_of
    foreign = type(root._data) is not np.ndarray and backend.is_foreign(root._data)
    if value_of is array_of and foreign:
        # another library's arrays (backend.py) lack NumPy's methods the rules use (.sum,
        # .reshape, ...): they run on Tensors outside the graph, whose methods are primitives
        value_of = constant_tensor
        if not hasattr(root_grad, "_data"):
            root_grad = type(root).wrap(root_grad)
    # values no VJP reads are freed on the way (release_unread), when the graph is not kept
    releasing = not retain_graph and value_of is array_of
    grads: dict[Tensor, Any] = {root: root_grad}  # keyed by node: Tensors hash by identity
    # The nodes that have received a gradient and wait for their turn, in a heap of (-tick, node)
    # that hands out the latest tick first. Every consumer of a node has a later tick, so by the
    # node's turn all its gradients have arrived: reverse topological order, found as the pass
    # goes (no separate walk of the graph), and a node is let go as soon as it is done.
    waiting = [(-root._tick, root)]
    while waiting:
        node = heappop(waiting)[1]
        g = grads.pop(node)
        op = node.op
        if collect:
            if id(node) in wanted_ids:
                found[id(node)] = g
        elif op is None or node.retains_grad:
            # a writable array of its own memory that only this pass holds (the VJP made it)
            # becomes .grad as it is; anything else (a view, the caller's seed, an array another
            # node still waits with, a read-only one) is copied, so no .grad shares memory
            owned = (
                type(g) is np.ndarray
                and g.base is None
                and sys.getrefcount(g) == LOCAL_REFERENCES
                and g.flags.writeable
            )
            node.accumulate_grad(g, owned)
        if op is None:
            continue
        if node._tick < last_data_write:  # some .data was assigned since: look closer
            check_versions(node)
        parents = node.parents
        if not parents:
            raise RuntimeError(
                f"backward: the graph through {op.name} (output shape {node.shape}) was already "
                "freed by an earlier backward(); call the first backward(retain_graph=True) to "
                "backpropagate through the same graph twice"
            )
        if releasing:  # inputs no VJP will read, freed before the VJPs allocate
            for i in op.unsaved_inputs:
                parent = parents[i]  # held by parents' tuple and this local, and nothing else?
                if (
                    type(parent._data) is np.ndarray  # not a batch of vmap's, nor a stand-in
                    and parent._data.nbytes >= RELEASE_BYTES
                    and sys.getrefcount(parent) == LOCAL_REFERENCES + 1
                ):
                    release_unread(parent)
        # one and two inputs spelled out (benchmarks/README.md, "Hot paths")
        arity = len(parents)
        if arity == 2:
            args = (g, value_of(node), value_of(parents[0]), value_of(parents[1]))
        elif arity == 1:
            args = (g, value_of(node), value_of(parents[0]))
        else:
            args = (g, value_of(node), *map(value_of, parents))
        params, vjps = node.params, op.vjps
        for i, parent in enumerate(parents):
            if not parent.requires_grad:
                continue
            if op.variadic:
                grad = vjps[0](i, *args, **params)
            elif vjps[i] is None:  # an input without a gradient (an index, a condition)
                continue
            elif params:
                grad = vjps[i](*args, **params)
            else:  # most ops have no params: a call without ** (benchmarks/README.md)
                grad = vjps[i](*args)
            data = parent if foreign else parent._data  # shape and NumPy dtype, on any library
            try:
                shape = grad.shape
            except AttributeError:
                raise not_an_array(op, i, grad) from None
            if shape != data.shape:
                grad = unbroadcast(grad, data.shape, op.name)
            if grad.dtype is not data.dtype and grad.dtype != data.dtype:  # `is`: the usual case
                grad = cast_gradient(grad, parent, op.name)
            previous = grads.get(parent)
            if previous is None:  # parent's first gradient: it now waits for its turn
                grads[parent] = grad
                heappush(waiting, (-parent._tick, parent))
            else:
                grads[parent] = previous + grad
        grad = previous = None  # held here, a parent's gradient would look shared (owned, above)
        if not retain_graph:
            node.parents = ()
    return found


def not_an_array(op: Any, position: int, grad: Any) -> TypeError:
    """The error for a VJP (a user's, since the table's are tested) that returned no array."""
    return TypeError(
        f"backward: the VJP of {op.name} for input {position} returned {type(grad).__name__} "
        f"{grad!r}, not an array; a VJP must return an array (or Tensor) of its input's shape, "
        "or one that broadcasts from it (e.g. g * 2.0 rather than 2.0)"
    )


def check_root_grad(root: Tensor, grad: Any, caller: str) -> np.ndarray:
    """The seed dL/d(root) as an array: ones for a one-element root, else `grad`, checked."""
    if grad is None:
        data = root._data
        if (data.size if type(data) is np.ndarray else math.prod(data.shape)) != 1:
            raise RuntimeError(
                f"{caller}: grad can be implied only for a one-element output, but the output has "
                f"shape {root.shape}; reduce it first (e.g. loss.sum()) or pass "
                f"grad=an array of shape {root.shape}"
            )
        if backend.is_foreign(data):  # another library's array: its namespace's ones
            return backend.namespace_of(data).ones(data.shape, dtype=data.dtype)
        one = np.array(1, dtype=data.dtype)  # (cheaper than numpy.ones)
        return one if data.ndim == 0 else one.reshape(data.shape)
    array = getattr(grad, "data", grad)
    if not backend.is_foreign(array):
        array = np.asarray(array)
    array_dtype = array.dtype if isinstance(array, np.ndarray) else backend.numpy_dtype(array)
    if array.shape != root.shape:
        raise ValueError(
            f"{caller}: grad has shape {array.shape} but the output has shape {root.shape}; "
            "pass a gradient of the output's shape"
        )
    if array_dtype != root.dtype:
        raise TypeError(
            f"{caller}: grad has dtype {array_dtype} but the output has dtype {root.dtype}; "
            f"convert it with .astype({root.dtype.name!r})"
        )
    return array
