"""Replay: record a fixed-shape training step once, then re-run it as straight-line NumPy code.

    step = an.replay(loss_fn)      # loss_fn(*args) -> a one-element Tensor
    loss = step(S, Y)              # what `loss = loss_fn(S, Y); loss.backward()` does

The first call with arguments of given shapes and dtypes runs loss_fn eagerly, as autonet always
does, then walks the graph it recorded as backward() would (topological_order, the VJPs of the
primitive table, unbroadcast) and writes down every NumPy call of the forward and the backward
pass as the body of one Python function (`step.source` shows it). Later calls with the same
shapes and dtypes run that function: the same primitives' forwards and VJPs on the same arrays in
the same order, so the loss and the gradients are the ones eager mode computes, bit for bit, but
without creating Tensors, walking the graph, or checking shapes and dtypes per op; each forward
value is deleted after its last use, so memory is released as early as the code allows. New
argument shapes or dtypes record again; every recording is kept, keyed by them.

A recording fixes what any trace fixes (as torch.jit.trace and jax.jit):
- the sequence of primitives: Python control flow is not re-run, so a step whose operations
  depend on values (`if loss.item() > 1: ...`) replays the branch taken when it was recorded;
- constants: a tensor that is neither an argument nor requires grad (a number in the step, a
  tensor it closes over) keeps the array it held when recorded. Pass data that changes as an
  argument. What autonet does not record is a constant too, even when computed from an
  argument: results of operations under no_grad, of comparisons, detach(), .item() and .data.
  Non-float array arguments (labels, indices) are part of the key: new values record again.
  Python numbers among the arguments are also part of the key.
Parameters (leaves with requires_grad=True, passed as arguments or closed over) are read at each
call, so an optimiser that replaces or updates `p.data` between calls is seen, and their gradients
accumulate in `p.grad` exactly as backward() accumulates them (zero them with `p.grad = None`).
Differences from eager: the returned loss is a leaf without a graph (its gradients are already
in the parameters), and retain_grad() on tensors inside the step has no effect.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from autonet import engine
from autonet.engine import topological_order, unbroadcast
from autonet.tensor import Tensor


class Recording:
    """One recorded step: the generated function and its source.

    function(*args) returns the loss array, or None if a closed-over parameter no longer has the
    shape and dtype it was recorded with (then the step is recorded again).
    """

    __slots__ = ("function", "source")

    def __init__(self, function: Callable[..., Any], source: str) -> None:
        self.function = function
        self.source = source


class Replay:
    """A training step's forward and backward pass, recorded once per argument signature and
    replayed as a flat list of NumPy calls. Made by `replay(loss_fn)`; see the module docstring.

        step = an.replay(lambda S, Y: 0.5 * ((an.sigmoid(S @ w) - Y) ** 2).sum())
        for _ in range(1000):
            w.grad = None
            loss = step(S, Y)          # fills w.grad as loss.backward() would
            w.data -= 0.1 * w.grad.data
        print(step.source)             # the NumPy calls it replays
    """

    def __init__(self, loss_fn: Callable[..., Tensor]) -> None:
        self.loss_fn = loss_fn
        self.recordings: dict[tuple[Hashable, ...], Recording] = {}
        self.__name__ = getattr(loss_fn, "__name__", "step")
        self.__doc__ = loss_fn.__doc__

    def __call__(self, *args: Any) -> Tensor:
        """loss_fn(*args), with its gradients accumulated into the parameters' .grad."""
        if not engine._grad_mode.enabled:  # engine.is_grad_enabled(), without the call
            raise RuntimeError(
                f"replay({self.__name__}): called under no_grad, where nothing can be "
                "differentiated; call the step outside no_grad (or call loss_fn directly)"
            )
        key = tuple(map(signature, args))
        recording = self.recordings.get(key)
        loss = None if recording is None else recording.function(*args)
        if loss is None:
            recording = self.recordings[key] = record_step(self.loss_fn, args, self.__name__)
            loss = recording.function(*args)
        return Tensor.wrap(loss)

    @property
    def source(self) -> str:
        """The generated code of the most recent recording."""
        if not self.recordings:
            raise RuntimeError(f"replay({self.__name__}): nothing recorded yet; call it once")
        return list(self.recordings.values())[-1].source


def replay(loss_fn: Callable[..., Tensor]) -> Replay:
    """Record loss_fn(*args) and its backward pass once per argument signature; replay it after.

    The returned callable does what `loss = loss_fn(*args); loss.backward(); return loss` does,
    with the same results bit for bit, by re-running the recorded NumPy calls. See the module
    docstring for what a recording fixes (control flow, constants) and what it reads afresh
    (arguments, parameters).
    """
    return Replay(loss_fn)


def signature(x: Any) -> Hashable:
    """What a recording depends on in one argument: for a float Tensor or ndarray its kind, shape,
    dtype and requires_grad; the values too of any other array (indices, labels) and of a Python
    value (which the recording treats as constants)."""
    if isinstance(x, Tensor):
        data, requires_grad = x.data, x.requires_grad
    elif isinstance(x, np.ndarray):
        data, requires_grad = x, False
    else:
        return (type(x), x)
    if data.dtype.kind == "f":
        return (type(x), data.shape, data.dtype, requires_grad)
    return (type(x), data.shape, data.dtype, data.tobytes())


# ---------------------------------------------------------------------------------------------
# Recording


class CodeWriter:
    """The lines of the generated function and the namespace they refer to.

    Each value the code handles has a name: t0, t1, ... the argument Tensors; a0, ... their arrays;
    p0, ... parameters' arrays; c0, ... constants; v0, ... forward values; g0, ... gradients.
    """

    def __init__(self) -> None:
        self.lines: list[tuple[str, tuple[str, ...]]] = []  # (code, names it reads)
        self.namespace: dict[str, Any] = {"asarray": np.asarray, "unbroadcast": unbroadcast}
        self.counts: dict[str, int] = {}

    def fresh(self, prefix: str) -> str:
        count = self.counts.get(prefix, 0)
        self.counts[prefix] = count + 1
        return f"{prefix}{count}"

    def constant(self, prefix: str, value: Any) -> str:
        name = self.fresh(prefix)
        self.namespace[name] = value
        return name

    def emit(self, code: str, *reads: str) -> None:
        self.lines.append((code, reads))

    def result(self, value: Any, expression: str, *reads: str) -> str:
        """A name for `value`, the result of `expression`: a constant, computed now, if every
        name the expression reads is a constant; else a new local that an emitted line assigns."""
        if all(read in self.namespace for read in reads):
            return self.constant("c", value)
        name = self.fresh("g")
        self.emit(f"{name} = {expression}", *reads)
        return name

    def function(self, name: str, parameters: list[str]) -> tuple[Any, str]:
        """Compile the lines into `def name(*parameters)`, each local deleted after its last use,
        so that its array can be freed as soon as the code is done with it."""
        last_use: dict[str, int] = {}
        for position, (_, reads) in enumerate(self.lines):
            for read in reads:
                last_use[read] = position
        done_at: dict[int, list[str]] = {}
        for read, position in last_use.items():
            if read not in self.namespace:
                done_at.setdefault(position, []).append(read)
        body = []
        for position, (code, _) in enumerate(self.lines):
            body.append("    " + code)
            if position in done_at and position < len(self.lines) - 1:
                body.append("    del " + ", ".join(sorted(done_at[position])))
        source = f"def {name}({', '.join(parameters)}):\n" + "\n".join(body) + "\n"
        exec(compile(source, f"<replay {name}>", "exec"), self.namespace)  # noqa: S102
        return self.namespace[name], source


def record_step(loss_fn: Callable[..., Tensor], args: list[Any], name: str) -> Recording:
    """Run loss_fn on args once, eagerly, and write its forward and backward pass as a function
    of the argument Tensors that returns the loss array and accumulates the parameters' .grad."""
    # Stand-ins for the float arguments that require grad, so that every operation on an argument
    # is recorded (and so replayed on the next call's values). Whether the argument itself needs
    # a gradient is decided below, as for any parameter.
    stand_ins: dict[Tensor, int] = {}
    inputs = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            a = Tensor.wrap(a)
        if isinstance(a, Tensor) and a.data.dtype.kind == "f":
            stand_in = Tensor.wrap(a.data)
            stand_in.requires_grad = True
            stand_ins[stand_in] = i
            a = stand_in
        inputs.append(a)
    loss = loss_fn(*inputs)
    if not isinstance(loss, Tensor) or loss.data.size != 1:
        shape = getattr(loss, "shape", type(loss).__name__)
        raise TypeError(f"replay({name}): the step must return a one-element Tensor, got {shape}")

    # Every node that depends on an argument or a parameter, parents first.
    order = topological_order(loss)
    # The nodes backward() would visit: parameters and everything computed from one.
    needs_grad: set[Tensor] = set()
    parameters: list[Tensor] = []  # closed-over leaves that require grad
    for node in order:
        if node.op is None:
            i = stand_ins.get(node)
            if i is None:
                parameters.append(node)
                needs_grad.add(node)
            elif getattr(args[i], "requires_grad", False):
                needs_grad.add(node)
        elif any(parent in needs_grad for parent in node.parents):
            needs_grad.add(node)
    if loss not in needs_grad:
        raise RuntimeError(
            f"replay({name}): the loss does not depend on any tensor that requires grad, so "
            "there is nothing to differentiate; set requires_grad=True on the parameters"
        )

    code = CodeWriter()
    names: dict[Tensor, str] = {}
    argument_names = [code.fresh("t") for _ in args]
    for node, i in stand_ins.items():
        names[node] = code.fresh("a")
        data = ".data" if isinstance(args[i], Tensor) else ""
        code.emit(f"{names[node]} = {argument_names[i]}{data}", argument_names[i])
    for p in parameters:
        names[p] = code.fresh("p")
        code.namespace[names[p].upper()] = p
        named = f"  # {p.name}" if p.name else ""
        code.emit(f"{names[p]} = {names[p].upper()}.data{named}")
    if parameters:
        code.namespace["PARAMETERS"] = tuple(x for p in parameters for x in (p.shape, p.dtype))
        read = ", ".join(f"{names[p]}.shape, {names[p]}.dtype" for p in parameters)
        code.emit(
            f"if ({read},) != PARAMETERS:  # a parameter changed shape or dtype",
            *[names[p] for p in parameters],
        )
        code.emit("    return None  # record again")

    def name_of(t: Tensor) -> str:
        if t not in names:  # a leaf outside the recorded graph: a constant
            # a 0-d constant (a number in the step) as a NumPy scalar: the same dtype and values,
            # but arithmetic on it in a rule (pow's b - 1 + (b == 0)) skips the ufunc machinery
            names[t] = code.constant("c", t.data[()] if t.data.ndim == 0 else t.data)
        return names[t]

    # Forward: each primitive applied to its inputs' arrays, as record() applies it.
    keyword_arguments: dict[Tensor, str] = {}  # the node's static arguments (axis=...)
    for node in order:
        if node.op is None:
            continue
        names[node] = code.fresh("v")
        inputs_ = [name_of(parent) for parent in node.parents]
        keyword_arguments[node] = "".join(
            f", {k}={code.constant('k', v)}" for k, v in node.params.items()
        )
        call = (
            f"{code.constant('f', node.op.forward)}({', '.join(inputs_)}{keyword_arguments[node]})"
        )
        if not isinstance(node.op.forward, np.ufunc) or node.data.ndim == 0:
            call = f"asarray({call})"  # record() turns NumPy scalars into 0-d arrays
        code.emit(f"{names[node]} = {call}  # {node.op.name}", *inputs_)

    # Backward: backpropagate()'s loop, run here once on the recorded arrays to learn each
    # gradient's shape and dtype, and written down call by call. A gradient that depends only on
    # constants (the seed dL/dL = 1, numbers in the step, and what is computed from them alone)
    # is the same at every call: it is computed now and becomes a constant of the code.
    seed = engine.check_root_grad(loss, None, f"replay({name})")
    grads: dict[Tensor, tuple[str, Any]] = {loss: (code.constant("c", seed), seed)}
    for node in reversed([node for node in order if node in needs_grad]):
        g_name, g = grads.pop(node)
        if node.op is None:  # a parameter: accumulate as backward() does
            owner = argument_names[stand_ins[node]] if node in stand_ins else names[node].upper()
            constants = [c for c in code.namespace.values() if isinstance(c, np.ndarray)]
            if any(np.may_share_memory(g, c) for c in constants):
                copy = code.fresh("g")
                code.emit(f"{copy} = {g_name}.copy()  # .grad gets an array of its own", g_name)
                g_name = copy
            code.emit(f"{owner}.accumulate_grad({g_name})", owner, g_name)
            continue
        op, params, parents = node.op, node.params, node.parents
        values = (g, node.data, *[parent.data for parent in parents])
        value_names = (g_name, names[node], *[name_of(parent) for parent in parents])
        arguments = ", ".join(value_names) + keyword_arguments[node]
        for i, parent in enumerate(parents):
            if parent not in needs_grad:
                continue
            # A variadic primitive has one rule for every input, told which one by position.
            vjp, position = (op.vjps[0], (i,)) if op.variadic else (op.vjps[i], ())
            grad = vjp(*position, *values, **params)
            if reads_only_constants(vjp, position, values, value_names, params, code):
                grad_name = code.constant("c", grad)
            else:
                call = f"{code.constant('b', vjp)}({', '.join(map(str, position + (arguments,)))})"
                grad_name = code.fresh("g")
                code.emit(f"{grad_name} = {call}  # {op.name}: grad of input {i}", *value_names)
            shape, dtype = parent.data.shape, parent.data.dtype
            if grad.shape != shape:
                grad = unbroadcast(grad, shape, op.name)
                grad_name = code.result(
                    grad, f"unbroadcast({grad_name}, {shape}, {op.name!r})", grad_name
                )
            if grad.dtype != dtype:
                grad = grad.astype(dtype)
                grad_name = code.result(grad, f"{grad_name}.astype({dtype.name!r})", grad_name)
            previous = grads.get(parent)
            if previous is not None:
                grad = previous[1] + grad
                grad_name = code.result(
                    grad, f"{previous[0]} + {grad_name}", previous[0], grad_name
                )
            grads[parent] = (grad_name, grad)
    code.emit(f"return {names[loss]}", names[loss])

    function_name = f"replayed_{name}" if name.isidentifier() else "replayed_step"
    function, source = code.function(function_name, argument_names)
    return Recording(function, source)


class ValuesNeededError(Exception):
    """Raised by ShapeOnly when a rule uses the values it stands in for."""


class ShapeOnly:
    """A stand-in for an array whose values change from call to call: it has the array's shape,
    ndim, dtype and size (fixed for a recording) and refuses every other use (operators, NumPy
    functions, methods, comparisons, truth), so a rule that returns while given it did not read
    those values."""

    __slots__ = ("shape", "ndim", "dtype", "size")
    __array_ufunc__ = None  # ndarray (op) ShapeOnly defers to ShapeOnly, which has no operators
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, array: np.ndarray) -> None:
        self.shape, self.ndim, self.dtype, self.size = (
            array.shape,
            array.ndim,
            array.dtype,
            array.size,
        )

    def __getattr__(self, name: str) -> Any:
        raise ValuesNeededError(name)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise ValuesNeededError("__array__")

    def __eq__(self, other: object) -> bool:
        raise ValuesNeededError("==")

    def __ne__(self, other: object) -> bool:
        raise ValuesNeededError("!=")

    def __bool__(self) -> bool:
        raise ValuesNeededError("bool")


def reads_only_constants(
    vjp: Callable[..., Any],
    position: tuple[int, ...],
    values: tuple[Any, ...],
    value_names: tuple[str, ...],
    params: dict[str, Any],
    code: CodeWriter,
) -> bool:
    """Whether the rule's result depends only on the constants among its arguments: it returns
    (and does not return a stand-in) when every argument that is not a constant is a ShapeOnly.
    VJPs are pure functions of their arguments' values and shapes, so its result is then the
    same at every call (shapes are fixed for a recording)."""
    probes = [
        v if n in code.namespace else ShapeOnly(v) for v, n in zip(values, value_names, strict=True)
    ]
    if len(probes) == sum(isinstance(p, ShapeOnly) for p in probes):
        return False  # nothing constant: no need to ask
    try:
        result = vjp(*position, *probes, **params)
    except Exception:  # noqa: BLE001 - any use of a stand-in's values ends the probe
        return False
    return not isinstance(result, ShapeOnly)
