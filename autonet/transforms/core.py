"""gradients (torch.autograd.grad) and the steps every transform shares: which arguments are
variables, what the function returned, whether to record, how results are assembled."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autonet.batched import Batched
from autonet.engine import backpropagate, check_root_grad, topological_order
from autonet.modes import is_grad_enabled
from autonet.ops import stack
from autonet.primitives import constant_like
from autonet.tensor import Tensor


def gradients(
    output: Tensor,
    inputs: Sequence[Tensor],
    grad: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> tuple[Tensor, ...]:
    """d(output)/d(input) for each input, returned rather than stored (as torch.autograd.grad).

    `inputs` may be leaves or intermediate tensors; an input that output does not depend on gets a
    gradient of zeros (torch.autograd.grad raises unless allow_unused=True). No `.grad` changes.
    `retain_graph` defaults to `create_graph`.
    """
    detach = False
    if not output.requires_grad:
        raise RuntimeError(
            "gradients: the output does not require grad (no input of it has requires_grad=True)"
        )
    if type(output._data) is Batched or (isinstance(grad, Tensor) and type(grad._data) is Batched):
        # inside vmap: the rules run on the batch through the batching rules, so the pass runs
        # on Tensors (recorded, as under create_graph), never on the batch's bare arrays; the
        # results leave that record unless create_graph asked for it
        detach, create_graph = not create_graph, True
        if isinstance(grad, Tensor):
            seed_like(grad, output, "gradients", "grad", "the output")
    root_grad: Any = (
        grad
        if isinstance(grad, Tensor) and type(grad._data) is Batched
        else check_root_grad(output, grad, "gradients")
    )
    if create_graph:
        # a Tensor seed stays in the graph, so the gradients are differentiable in it too (the
        # double-VJP trick for Jacobian-vector products differentiates them with respect to it)
        root_grad = grad if isinstance(grad, Tensor) else Tensor(root_grad)
    found = backpropagate(
        output,
        root_grad,
        retain_graph=create_graph if retain_graph is None else retain_graph,
        create_graph=create_graph,
        wanted=inputs,
    )
    result, owned = [], {id(values_of(root_grad))}
    for t in inputs:
        g = found.get(id(t))
        if g is None:
            g = constant_like(t, np.zeros(t.shape, dtype=t.dtype))
        # each result owns its memory (Tensor() and clone() copy): the pass may hand the same
        # array, or the caller's seed, to several inputs. Inside vmap a batch's gradient that
        # a rule has just made (it owns its memory, and no other result or the seed has it) is
        # kept without the copy: per-example gradients are the size of the batch times the
        # parameters'
        if detach and isinstance(g, Tensor) and fresh(values_of(g), owned):
            result.append(g)
        else:
            result.append(g.clone() if isinstance(g, Tensor) else Tensor(g))
    return tuple(t.detach() for t in result) if detach else tuple(result)


def values_of(t: Any) -> Any:
    """The array holding a tensor's (or an array's) numbers, a batch's whole array inside vmap."""
    data = t._data if isinstance(t, Tensor) else t
    return data.value if type(data) is Batched else data


def fresh(array: Any, owned: set[int]) -> bool:
    """Whether array owns its memory and is not yet owned by a result (nor the seed); if so, it
    is now."""
    if not (isinstance(array, np.ndarray) and array.flags.owndata) or id(array) in owned:
        return False
    owned.add(id(array))
    return True


# ---------------------------------------------------------------------------------------------
# Shared steps: which arguments are variables, what the function returned, whether to record


def positions_of(argnums: int | Sequence[int], count: int, transform: str) -> tuple[int, ...]:
    """argnums as non-negative positions, checked against the number of arguments."""
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in positions:
        if not -count <= i < count:
            raise ValueError(
                f"{transform}: argnums={argnums!r} is out of range for a call with {count} "
                f"positional argument(s); pass positions from 0 to {count - 1} (or negative ones "
                "counting from the end)"
            )
    return tuple(i % count for i in positions)


def variables(args: Sequence[Any], positions: Sequence[int]) -> tuple[list[Any], set[int]]:
    """args with a fresh variable at each position, and the ids of the leaves made here.

    A number, array or Tensor outside the graph becomes a new leaf that requires grad. A Tensor
    that requires grad (an enclosing transform's variable, say) becomes a recorded copy, so the
    gradient flows on to it, yet this transform differentiates with respect to the copy only: a
    function that also closes over the Tensor is not confused with it (JAX's perturbation
    confusion), e.g. grad(lambda x: grad(lambda y: x * y)(x))(x) is 1, not 2.
    """
    args_list, made_here = list(args), set()
    for i in positions:
        arg = args_list[i]
        if isinstance(arg, Tensor) and arg.requires_grad and is_grad_enabled():
            args_list[i] = arg.clone()
        else:
            args_list[i] = Tensor(arg.data if isinstance(arg, Tensor) else arg, requires_grad=True)
            made_here.add(id(args_list[i]))
    return args_list, made_here


def call(function: Callable[..., Any], args: Sequence[Any], transform: str, has_aux: bool) -> Any:
    """function(*args), and its auxiliary data (None without has_aux)."""
    result = function(*args)
    if not has_aux:
        return result, None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(
            f"{transform}: with has_aux=True the function must return a pair (output, aux), got "
            f"{describe(result)}"
        )
    return result


def describe(value: Any) -> str:
    """A value's type, and its shape if it has one, for error messages."""
    shape = getattr(value, "shape", None)
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return type(value).__name__ + ("" if shape is None else f" of shape {shape}")


def outputs_of(out: Any, transform: str) -> tuple[Tensor, ...]:
    """The function's outputs as a tuple of Tensors (one for a single output)."""
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(
                f"{transform}: the function must return a Tensor (or a tuple of Tensors), got "
                f"{describe(o)}; compute it from the arguments with autonet operations (an.exp(x), "
                "np.exp(x), x @ w), not from their .data"
            )
    return outs


def recorded(outs: Sequence[Tensor], made_here: set[int], seeds: Sequence[Any] = ()) -> bool:
    """Whether to record this transform's passes: something outside may differentiate its
    results when they depend on a leaf that requires grad and was not made here (an argument
    that requires grad, an enclosing transform's variable, a tensor the function closes over),
    or on a seed (tangent, cotangent) that requires grad."""
    if not is_grad_enabled():
        return False
    if any(isinstance(s, Tensor) and s.requires_grad for s in seeds):
        return True
    return any(
        node.op is None and node.requires_grad and id(node) not in made_here
        for o in outs
        for node in topological_order(o)
    )


def results(outs: Sequence[Tensor], keep: bool) -> tuple[Tensor, ...]:
    """The outputs to hand back: in the graph when recorded, else detached from this one."""
    return tuple(outs) if keep else tuple(o.detach() for o in outs)


def seed_like(value: Any, like: Tensor, transform: str, name: str, like_name: str) -> Any:
    """A tangent or cotangent checked against the primal or output it goes with: same shape,
    same dtype (numbers and lists take like's dtype). Tensors are kept, to stay in the graph."""
    if not hasattr(value, "dtype"):
        value = np.asarray(value, dtype=like.dtype)
    if value.shape != like.shape:
        raise ValueError(
            f"{transform}: {name} has shape {value.shape} but {like_name} has shape {like.shape}; "
            f"each {name.split()[0]} must have the shape and dtype of its {like_name.split()[0]} "
            f"({like.shape}, {like.dtype})"
        )
    if value.dtype != like.dtype:
        raise TypeError(
            f"{transform}: {name} has dtype {value.dtype} but {like_name} has dtype {like.dtype}; "
            f"convert it with .astype({like.dtype.name!r})"
        )
    return value


def one_hot(like: Tensor, k: int) -> Any:
    """The k-th basis array (row-major) of like's shape and dtype, in like's array library."""
    e = np.zeros(like.size, dtype=like.dtype)
    e[k] = 1
    return constant_like(like, e.reshape(like.shape))


def assemble(pieces: list[Tensor], out: Tensor, x: Tensor, rows: bool) -> Tensor:
    """The Jacobian block of out with respect to x, shape out.shape + x.shape, from its rows (one
    per element of out, each of x's shape) or its columns (one per element of x, out's shape)."""
    if not pieces:  # out or x is empty
        zeros = np.zeros(out.shape + x.shape, dtype=np.result_type(out.dtype, x.dtype))
        return Tensor(constant_like(x, zeros))
    return arranged(stack(pieces), out, x, rows)


def arranged(stacked: Tensor, out: Tensor, x: Tensor, rows: bool) -> Tensor:
    """The Jacobian block, shape out.shape + x.shape, from its rows or columns stacked on a
    first axis (as assemble, or as vmap over the seeds gives them)."""
    out_shape, in_shape = out.shape, x.shape
    if rows:
        return stacked.reshape(out_shape + in_shape)
    block = stacked.reshape(in_shape + out_shape)
    n_in, n_out = len(in_shape), len(out_shape)
    if n_in == 0 or n_out == 0:
        return block.reshape(out_shape + in_shape)
    return block.transpose(*range(n_in, n_in + n_out), *range(n_in))


def arrange(blocks: list[tuple[Tensor, ...]], out: Any, argnums: Any) -> Any:
    """JAX's layout: a tuple over outputs (if f returned one) of tuples over argnums (if given)."""
    per_output = [block[0] if isinstance(argnums, int) else block for block in blocks]
    return tuple(per_output) if isinstance(out, tuple) else per_output[0]


def add_up(total: list[Any], terms: Sequence[Tensor | None]) -> list[Any]:
    """total + terms elementwise, a None (in either) counting as zero."""
    return [
        s if t is None else t if s is None else s + t for s, t in zip(total, terms, strict=True)
    ]


def zeros_for(like: Tensor) -> Tensor:
    """The gradient of something that does not depend on `like`."""
    return Tensor(constant_like(like, np.zeros(like.shape, dtype=like.dtype)))
