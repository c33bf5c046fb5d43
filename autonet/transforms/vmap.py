"""vmap: a function of one example, mapped over a batch by running it once on the whole batch.

    vmap(f, in_axes=0, out_axes=0)(*args)

Inside, each mapped argument is a tensor of one example's shape whose value holds the batch
(autonet/batched.py), and every primitive applied to it runs once, for all examples, by its
batching rule: an element-wise primitive lines the examples up and broadcasts; a primitive on
axes (sum, max, transpose, ...) shifts its axis params past the batch axes; the others (matmul,
reshape, indexing, convolution, ...) have a rule in the table (Primitive.batch). A primitive
without one (a user's, neither element-wise nor on axes) runs once per example, with a warning.

Gradients inside vmap are per example: grad, value_and_grad, vjp, jacobian, hessian run their
backward pass through the batching rules too (by recording it, as create_graph does), so

    an.vmap(an.grad(loss), in_axes=(None, 0, 0))(w, X, Y)

is the gradient of loss(w, x, y) for each example (x, y) of (X, Y), stacked: JAX's and
torch.func's per-example gradients. Nested vmaps map over several axes.

Where autonet differs: the mapped function may not depend on values (a Python `if` on a tensor,
float(t)) -- it raises, as JAX does -- and vmap's results are not differentiable from outside
(grad of a vmapped function raises and says to put grad inside).
"""

from __future__ import annotations

import functools
import itertools
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autonet import backend, modes
from autonet.batched import Batched, RecordedThroughMapError
from autonet.modes import grad_mode
from autonet.primitives import Mapped, Primitive, per_example, with_rank
from autonet.tensor import Tensor, describe_failure, record, with_normalized_axes
from autonet.transforms.core import gradients

next_level = itertools.count(1).__next__  # atomic: nested and concurrent vmaps never share one
_active = threading.Lock()
_depth = 0  # how many vmap calls run, in all threads (modes.batched_record is set while > 0)
_warned: set[str] = set()


def vmap(function: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0) -> Callable[..., Any]:
    """f mapped over a batch axis of its arguments (JAX's vmap, torch.func.vmap).

        vmap(f)(X)[i] = f(X[i])          vmap(f, in_axes=(None, 0))(w, X)[i] = f(w, X[i])

    in_axes   for each positional argument, the axis that runs over the examples, or None for an
              argument shared by all of them; one int or None applies to every argument, and
              an argument that is a tuple, list or dict takes one entry per item (or one for all)
    out_axes  where the examples' axis goes in each output (an int, or one per output of a
              tuple); None for an output that is the same for every example
    Every mapped axis must have the same length. Arguments may be Tensors, arrays or numbers;
    the results are Tensors (a tuple, list or dict of them, as f returns).
    """

    @functools.wraps(function)
    def mapped(*args: Any) -> Any:
        if modes.is_recording():
            raise RuntimeError(
                f"vmap of {getattr(function, '__name__', 'a function')}: called while an.replay "
                "records a step, which cannot follow a batch; run this step eagerly (call the loss "
                "and backward()), or take vmap out of the replayed step"
            )
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(
                f"vmap: in_axes has {len(axes)} entries but the function was called with "
                f"{len(args)} positional arguments; give one axis (or None) per argument"
            )
        batch = Batch(next_level())
        batched_args = [
            to_batched(arg, axis, batch, f"argument {i}")
            for i, (arg, axis) in enumerate(zip(args, axes, strict=True))
        ]
        sizes = batch.sizes
        if not sizes:
            raise ValueError(
                f"vmap: in_axes={in_axes!r} maps no argument; give at least one argument an axis "
                "to map over (None means shared by every example)"
            )
        if len(set(sizes)) > 1:
            raise ValueError(
                f"vmap: the mapped axes have different lengths {sizes}; every mapped argument "
                "needs the same number of examples"
            )
        enter()
        try:
            out = function(*batched_args)
        finally:
            leave()
        return from_batched(out, out_axes, batch, "output")

    return mapped


@dataclass
class Batch:
    """One call of a mapped function: its level, the lengths of the mapped axes, and the mapped
    arguments that require grad (id of the tensor the function sees -> that tensor, the
    argument, the argument's mapped axis)."""

    level: int
    sizes: list[int] = field(default_factory=list)
    mapped: dict[int, tuple[Tensor, Tensor, int]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Into the batch and out of it


def to_batched(arg: Any, axis: Any, batch: Batch, where: str) -> Any:
    """arg as the mapped function sees it: with axis None as it is; else a tensor of one
    example's shape holding the batch at `level` (recursing into tuples, lists and dicts)."""
    if isinstance(arg, (tuple, list)):
        axes = axis if isinstance(axis, (tuple, list)) else (axis,) * len(arg)
        if len(axes) != len(arg):
            raise ValueError(
                f"vmap: {where} has {len(arg)} items but its in_axes entry {axis!r} has "
                f"{len(axes)}; give one axis per item, or one int (or None) for all"
            )
        items = [
            to_batched(a, ax, batch, f"{where}[{i}]")
            for i, (a, ax) in enumerate(zip(arg, axes, strict=True))
        ]
        return type(arg)(items)
    if isinstance(arg, dict):
        axes = axis if isinstance(axis, dict) else dict.fromkeys(arg, axis)
        return {
            key: to_batched(value, axes.get(key), batch, f"{where}[{key!r}]")
            for key, value in arg.items()
        }
    if axis is None:
        return arg
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"vmap: in_axes for {where} must be an int or None, got {axis!r}")
    differentiated = isinstance(arg, Tensor) and arg.requires_grad and grad_mode.enabled
    if backend.is_foreign(arg.data if isinstance(arg, Tensor) else arg):
        library = backend.library_of(backend.namespace_of(getattr(arg, "data", arg)))
        raise NotImplementedError(
            f"vmap: {where} (shape {tuple(arg.shape)}) holds {library} arrays; vmap's batching "
            "rules are written for NumPy arrays: map over NumPy arrays, or loop over the "
            "examples (or use the library's own vmap, such as torch.func.vmap)"
        )
    if isinstance(arg, Tensor):
        if differentiated and type(arg.data) is Batched:
            raise NotImplementedError(
                f"vmap: {where} (shape {arg.shape}) requires grad and is mapped by an enclosing "
                "vmap too; differentiating through nested vmaps is not supported: put the "
                "derivative inside the innermost map"
            )
        data, dtype_kind = arg.data, arg.dtype.kind
    else:
        data = np.asarray(arg)
        if data.dtype.kind in "biu" and not isinstance(arg, np.ndarray):
            data = data.astype(np.float64)  # numbers and lists: float64, as an.tensor makes them
        dtype_kind = data.dtype.kind
    if dtype_kind not in "biuf":
        raise TypeError(f"vmap: {where} has dtype {data.dtype}; pass a numeric array or Tensor")
    levels = data.levels if type(data) is Batched else ()
    value = data.value if type(data) is Batched else data
    ndim = value.ndim - len(levels)
    if ndim == 0:
        raise ValueError(
            f"vmap: {where} is 0-d, so it has no axis to map over (in_axes={axis}); pass "
            "in_axes=None for it, to share it between the examples"
        )
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"vmap: in_axes={axis} is out of range for {where} of shape "
            f"{value.shape[len(levels) :]} ({ndim} axes); map over an axis from {-ndim} to "
            f"{ndim - 1}"
        )
    # the new level is the innermost: its axis goes after the enclosing vmaps' axes
    value = np.moveaxis(value, len(levels) + axis % ndim, len(levels))
    batch.sizes.append(value.shape[len(levels)])
    inner = Tensor(Batched(value, (*levels, batch.level)), requires_grad=differentiated)
    if differentiated:  # its gradient goes back to the argument (see differentiable_result)
        batch.mapped[id(inner)] = (inner, arg, axis % ndim)
    return inner


def from_batched(out: Any, axis: Any, batch: Batch, where: str) -> Any:
    """The mapped function's result with the batch at `level` moved to `axis` of each output
    (tuples, lists and dicts of outputs kept as they are)."""
    if isinstance(out, (tuple, list)):
        axes = axis if isinstance(axis, (tuple, list)) else (axis,) * len(out)
        if len(axes) != len(out):
            raise ValueError(
                f"vmap: the function returned {len(out)} outputs but out_axes has {len(axes)} "
                "entries; give one axis per output, or one for all"
            )
        return type(out)(
            from_batched(o, ax, batch, f"{where} {i}")
            for i, (o, ax) in enumerate(zip(out, axes, strict=True))
        )
    if isinstance(out, dict):
        axes = axis if isinstance(axis, dict) else dict.fromkeys(out, axis)
        return {k: from_batched(v, axes.get(k), batch, f"{where} {k!r}") for k, v in out.items()}
    boundary = []
    if isinstance(out, Tensor):
        data = out.data
        boundary = boundary_of(out, batch) if out.requires_grad else []
    else:
        data = np.asarray(out)
    level, size = batch.level, batch.sizes[0]
    levels = data.levels if type(data) is Batched else ()
    value = data.value if type(data) is Batched else data
    ndim = value.ndim - len(levels)  # one example's axes
    if level not in levels:  # the same for every example (perhaps a caller's array: copied)
        if axis is None:
            return tensor_of(value.copy(), levels)
        value = np.array(
            np.broadcast_to(
                np.expand_dims(value, len(levels)),
                value.shape[: len(levels)] + (size,) + value.shape[len(levels) :],
            )
        )
        levels = (*levels, level)
    elif axis is None:
        raise ValueError(
            f"vmap: out_axes is None for the {where}, but it differs between examples (shape "
            f"{value.shape[len(levels) :]} per example); give it an axis"
        )
    if not -(ndim + 1) <= axis <= ndim:
        raise ValueError(
            f"vmap: out_axes={axis} is out of range for the {where}, which has {ndim} axes per "
            f"example; give an axis from {-(ndim + 1)} to {ndim}"
        )
    position = levels.index(level)
    remaining = levels[:position] + levels[position + 1 :]
    value = np.moveaxis(value, position, len(remaining) + axis % (ndim + 1))
    if boundary:
        if remaining:
            raise NotImplementedError(
                f"vmap: the {where} (shape {out.shape}) is differentiable and mapped by an "
                "enclosing vmap too; differentiating through nested vmaps is not supported: put "
                "the derivative inside the innermost map"
            )
        return differentiable_result(out, np.ascontiguousarray(value), boundary, batch, axis)
    return tensor_of(np.ascontiguousarray(value), remaining)


def tensor_of(value: np.ndarray, levels: tuple[int, ...]) -> Tensor:
    """A tensor of value, still batched by the enclosing vmaps at `levels`, if any. Not copied:
    a batch was made inside the map (the mapped arguments are copies; rules make new arrays or
    views of those), so no caller's array is shared; per-example gradients are big."""
    return Tensor.wrap(Batched(value, levels) if levels else value)  # type: ignore[arg-type]


def boundary_of(out: Tensor, batch: Batch) -> list[tuple[Tensor, Tensor, int | None]]:
    """Where the gradient of a result of the map leaves it: (the tensor inside, the tensor
    outside, the mapped axis or None) for each tensor from outside the map that requires grad
    and that out was computed from (a parameter: the same for every example), and for each
    mapped argument that requires grad."""
    found, seen, todo = [], {id(out)}, [out]
    while todo:
        t = todo.pop()
        if type(t._data) is not Batched:
            found.append((t, t, None))
            continue
        if id(t) in batch.mapped:
            found.append(batch.mapped[id(t)])
            continue
        for parent in t.parents:
            if parent.requires_grad and id(parent) not in seen:
                seen.add(id(parent))
                todo.append(parent)
    return found


def differentiable_result(
    out: Tensor, value: np.ndarray, boundary: list, batch: Batch, axis: int
) -> Tensor:
    """A result of the map as a node of the graph outside it: its inputs are the tensors the
    gradient reaches outside (boundary_of), and its VJP is the backward pass through the map,
    batched: dL/dw = sum over the examples of each example's gradient for a tensor w they share,
    and each example's own gradient for a mapped argument (JAX's transpose of vmap). Under
    create_graph the pass is recorded and its results leave the map the same way, so second
    derivatives go through it too."""
    out_axis = axis % (out.ndim + 1)
    cache: dict[str, Any] = {}

    def pulled_back(g: Any) -> list[Any]:
        if cache.get("g") is not g:
            inners = [inner for inner, _, _ in boundary]
            if not isinstance(g, Tensor):
                seed = Tensor(Batched(np.moveaxis(np.asarray(g), out_axis, 0), (batch.level,)))
                enter()
                try:
                    found = gradients(out, inners, seed, True)
                finally:
                    leave()
                grads = [
                    gradient_outside(f._data, mapped_axis, batch.sizes[0])
                    for f, (_, _, mapped_axis) in zip(found, boundary, strict=True)
                ]
            elif type(g._data) is Batched:
                raise RecordedThroughMapError(
                    f"vmap: a result of vmap (shape {value.shape}) differentiated inside another "
                    "vmap (jacobian's rows, vmap of grad): not supported; put the derivative "
                    "inside the map"
                )
            else:  # create_graph: the pass through the map recorded, and its results mapped out
                seed = to_batched(g, out_axis, batch, "the gradient of a result of vmap")
                enter()
                try:
                    found = gradients(out, inners, seed, create_graph=True)
                finally:
                    leave()
                grads = [
                    from_batched(f, 0, batch, "gradient").sum(axis=0)
                    if mapped_axis is None
                    else from_batched(f, mapped_axis, batch, "gradient")
                    for f, (_, _, mapped_axis) in zip(found, boundary, strict=True)
                ]
            cache["g"], cache["grads"] = g, grads
        return cache["grads"]

    vjps = [lambda g, result, *inputs, i=i: pulled_back(g)[i] for i in range(len(boundary))]
    node = Primitive("vmap", lambda *inputs: value, *vjps)
    return record(node, tuple(outside for _, outside, _ in boundary))


def gradient_outside(data: Any, mapped_axis: int | None, size: int) -> np.ndarray:
    """A gradient found inside the map as the tensor outside needs it: summed over the
    examples for a shared tensor, each example's at the argument's axis for a mapped one."""
    if type(data) is not Batched:  # the same for every example
        data = np.broadcast_to(data, (size, *np.shape(data)))
    else:
        data = data.value
    if mapped_axis is None:
        return data.sum(axis=0)
    return np.ascontiguousarray(np.moveaxis(data, 0, mapped_axis))


# ---------------------------------------------------------------------------------------------
# Applying primitives to batched tensors


def enter() -> None:
    global _depth
    with _active:
        _depth += 1
        modes.batched_record = record_batched


def leave() -> None:
    global _depth
    with _active:
        _depth -= 1
        if _depth == 0:
            modes.batched_record = None


def record_batched(primitive: Primitive, inputs: tuple[Tensor, ...], params: dict) -> Tensor | None:
    """primitive applied to inputs of which some are batched (None if none is): its batching
    rule run on the batch, recorded as tensor.record records (the node keeps one example's
    params, so the backward pass's rules are batched the same way)."""
    datas = [t._data for t in inputs]
    in_params = batched_params(params) if params else []
    if not in_params and not any(type(d) is Batched for d in datas):
        return None
    if params and primitive.axis_param is not None:
        params = with_normalized_axes(primitive, inputs, params)
    levels = tuple(
        sorted({level for d in (*datas, *in_params) if type(d) is Batched for level in d.levels})
    )
    batched = tuple(type(d) is Batched for d in datas)
    arrays = [d.aligned(levels) if type(d) is Batched else d for d in datas]
    rule, rule_params = batching_rule(primitive), params
    if in_params:  # an index that differs between examples
        rule_params = {name: as_mapped(value, levels) for name, value in params.items()}
        if primitive.batch is None:
            rule = per_example(primitive.forward)
    try:
        out = np.asarray(rule(len(levels), batched, *arrays, **rule_params))
    except (ValueError, IndexError, TypeError, OverflowError) as exc:
        raise describe_failure(primitive, inputs, params, exc) from exc
    value = Batched(out, levels)
    if grad_mode.enabled and out.dtype.kind == "f" and any(t.requires_grad for t in inputs):
        return Tensor.wrap(value, primitive, inputs, params)  # type: ignore[arg-type]
    return Tensor.wrap(value)  # type: ignore[arg-type]


@functools.cache
def batching_rule(primitive: Primitive) -> Callable[..., Any]:
    """The primitive's batching rule: its own (Primitive.batch), or one that follows from its
    facts (element-wise; one input with axis params), or else a loop over the examples."""
    if primitive.batch is not None:
        return primitive.batch
    if primitive.elementwise:
        return elementwise_rule(primitive.forward)
    if primitive.axis_param is not None and len(primitive.vjps) == 1 and not primitive.variadic:
        return axes_rule(primitive)
    looped = per_example(primitive.forward)

    def warned(*args: Any, **params: Any) -> Any:
        if primitive.name not in _warned:
            _warned.add(primitive.name)
            warnings.warn(
                f"vmap: primitive {primitive.name!r} has no batching rule, so it runs once per "
                "example; declare it elementwise=True or axis_param=..., or give it batch=... "
                "(see Primitive)",
                RuntimeWarning,
                stacklevel=4,
            )
        return looped(*args, **params)

    return warned


def batched_params(params: dict) -> list[Batched]:
    """The params that differ between examples (an index tensor mapped by vmap)."""
    return [
        p
        for value in params.values()
        for p in (value if type(value) is tuple else (value,))
        if type(p) is Batched
    ]


def as_mapped(value: Any, levels: tuple[int, ...]) -> Any:
    """A param with each Batched value in it as the rules take it (primitives.Mapped)."""
    if type(value) is Batched:
        return Mapped(value.aligned(levels))
    if type(value) is tuple:
        return tuple(as_mapped(v, levels) for v in value)
    return value


def elementwise_rule(forward: Callable[..., Any]) -> Callable[..., Any]:
    """Element-wise: each batched input's examples lined up to the output's rank, behind the
    batch axes, so that NumPy broadcasts them as it broadcasts one example."""

    def rule(k: int, batched: tuple, *arrays: np.ndarray, **params: Any) -> Any:
        rank = max(x.ndim - k if b else x.ndim for x, b in zip(arrays, batched, strict=True))
        return forward(
            *(with_rank(x, b, k, rank) for x, b in zip(arrays, batched, strict=True)), **params
        )

    return rule


def axes_rule(primitive: Primitive) -> Callable[..., Any]:
    """One input, axis params: the same op with every axis moved past the k batch axes (None,
    all of one example's axes, spelled out)."""
    name, forward = primitive.axis_param, primitive.forward

    def rule(k: int, batched: tuple, x: np.ndarray, **params: Any) -> Any:
        axis, ndim = params.get(name), x.ndim - k
        if primitive.permutation:
            order = tuple(reversed(range(ndim))) if axis is None else axis
            shifted: Any = tuple(range(k)) + tuple(a + k for a in order)
        elif axis is None:
            shifted = tuple(range(k, k + ndim))
        elif isinstance(axis, tuple):
            shifted = tuple(a + k for a in axis)
        else:
            shifted = axis + k
        return forward(x, **{**params, name: shifted})

    return rule
