"""The checks that a recording fits a call, written at the start of its code: the arguments and
the parameters are of the kinds, shapes and dtypes recorded (what signature() keys the recordings
by; SignatureCheck), and the tensors the step read besides its arguments, which captured.py finds,
are the same and as recorded (guard_captured()). A failing check returns None, and the step
records again. The whole story: docs/replay.md.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from autonet import backend
from autonet.replay.captured import Place, captured
from autonet.replay.codegen import CodeWriter, tuple_text
from autonet.tensor import Tensor


def signature(x: Any) -> Hashable:
    """What a recording depends on in one argument: for a float Tensor or ndarray its kind, shape,
    dtype and requires_grad; the values too of any other array (indices, labels) and of a Python
    value (which the recording treats as constants). The key of the recordings; each recording
    also checks these itself at the start of its code, which is what makes replaying it valid."""
    if isinstance(x, Tensor):
        data, requires_grad = x.data, x.requires_grad
    elif isinstance(x, np.ndarray):
        data, requires_grad = x, False
    else:
        data, requires_grad = x, False
        if not backend.is_foreign(x):
            return (type(x), x)
    dtype, shape = backend.numpy_dtype(data), tuple(data.shape)
    if dtype.kind == "f":
        return (type(x), type(data), shape, dtype, requires_grad)
    return (type(x), type(data), shape, dtype, backend.host_bytes(data))


class SignatureCheck:
    """The check that the arguments and the parameters are what the recording assumes: their
    kinds, shapes and dtypes, requires_grad, the values of constant arguments (what signature()
    keys recordings by), and their strides if the code writes into buffers (codegen.buffers()).
    Written as the code reads their arrays, then as lines that return None on a difference."""

    def __init__(self, code: CodeWriter) -> None:
        self.code = code
        self.values: dict[str, Any] = {}  # each name the checks read, at this call
        self.expressions: list[str] = []  # compared at each call with their values at this one
        self.layouts: list[str] = []  # the strides of each array argument and parameter

    def read_arguments(self, args: tuple[Any, ...], names: list[str]) -> list[str]:
        """Write the check of the arguments' types, and a read of each Tensor argument's array;
        the name of each argument's array (a0, ...), or of the argument."""
        code = self.code
        code.namespace["TYPES"] = tuple(map(type, args))
        code.emit(
            None,
            f"if {tuple_text(f'type({t})' for t in names)} != TYPES:\n    return None",
            names,
        )
        argument_locals = []
        for t, a in zip(names, args, strict=True):
            self.values[t], local = a, t
            if isinstance(a, Tensor):
                local = code.fresh("a")
                code.emit(local, f"{local} = {t}.data", [t])
                self.values[local] = a.data
            if isinstance(a, (Tensor, np.ndarray)) or backend.is_foreign(a):
                value = self.values[local]
                self.expressions += [f"type({local})", f"{local}.shape", f"{local}.dtype"]
                if type(value) is np.ndarray:  # (another library's code writes into no buffer)
                    self.layouts.append(f"{local}.strides")
                if backend.numpy_dtype(value).kind != "f":  # a constant: its values
                    code.namespace["HOST_BYTES"] = backend.host_bytes
                    self.expressions.append(f"HOST_BYTES({local})")
                elif isinstance(a, Tensor):
                    self.expressions.append(f"{t}.requires_grad")
            else:
                self.expressions.append(t)  # a Python value: a constant of the recording
            argument_locals.append(local)
        return argument_locals

    def read_parameter(self, parameter: Tensor) -> tuple[str, str]:
        """Write the read of a parameter's array (p0 = P0.data, the array read at each call);
        its name and the parameter's name in the code."""
        code = self.code
        local = code.fresh("p")
        owner = code.global_name(local.upper(), parameter)
        named = f"  # {parameter.name}" if parameter.name else ""
        code.emit(local, f"{local} = {owner}.data{named}", [])
        self.values[local] = parameter.data
        self.expressions += [f"type({local})", f"{local}.shape", f"{local}.dtype"]
        if type(parameter.data) is np.ndarray:
            self.layouts.append(f"{local}.strides")
        return local, owner

    def write(self) -> None:
        """The checks, once every argument and parameter is read; the strides' check is kept
        only if a line writes into a buffer (codegen.buffers())."""
        self.guard("SIGNATURE", self.expressions, "other shapes, dtypes or values")
        if self.layouts:
            why = "other layouts than out= below assumes"
            self.guard("STRIDES", self.layouts, why, for_buffers=True)

    def guard(self, name: str, expressions: list[str], why: str, for_buffers: bool = False) -> None:
        """A line that returns None unless the expressions have the values they have now, kept
        as the constant `name` (the check's own expressions evaluated now, so the two agree);
        `why` says what a difference means. On None the caller looks for another recording of
        the arguments' signature, or records again."""
        check = tuple_text(expressions)
        self.code.namespace[name] = eval(check, self.code.namespace, self.values)  # noqa: S307
        self.code.emit(
            None,
            f"if {check} != {name}:  # {why}\n"
            "    return None  # record again, or use another recording",
            list(self.values),
            for_buffers=for_buffers,
        )


def guard_captured(
    code: CodeWriter,
    roots: list[tuple[Any, str]],
    order: list[Tensor],
    parameters: dict[Tensor, str],
    inputs: list[Any],
    start: int,
) -> list[tuple[str, str]]:
    """Write the check that the tensors the step read, other than its arguments, are the ones
    recorded and as recorded: it returns None otherwise, and the step records again. Returns
    its conditions, each (code true when it fails, what that means).

    The tensors: the parameters (leaves that require grad), the constants among the inputs of
    the recorded operations, and the nodes of a graph made before the step ran (a tensor of the
    user's graph it closes over), but not what the step made itself (`start` is the clock's
    tick when it began: the numbers in it, a tensor it creates) unless it keeps it somewhere
    the walk finds (a tensor a module makes on its first call). Every way the walk from the
    roots (captured()) found to such a tensor, and to each object on the way, is checked to
    hold the same object still, since the step may have read it through any of them: an `is`
    per step, from a holder the code keeps (a closure cell, a dict, a list). Then a parameter
    must still require grad; a constant must not, and its .data must not have been assigned
    since (tensor.version, the stamp backward() checks, moves at each assignment).

    A tensor the walk does not find keeps the checks of its requires_grad and .data: the code
    keeps the tensor itself (a parameter's array is read from it at each call)."""
    kinds = kinds_read(order, inputs, start)
    ways = captured(roots)
    into: dict[int, list[int]] = {}  # id of an object -> the ways (indices) that lead to it
    for i, (x, _) in enumerate(ways):
        into.setdefault(id(x), []).append(i)
    read = [
        t for t, kind in kinds.items() if id(t) in into or t.tick < start or kind == "parameter"
    ]
    name_of = namer(code, parameters)
    conditions: dict[str, tuple[str, str]] = {}  # code true when it fails -> (meaning, path)
    for i in sorted(ways_to(read, ways, into)):  # in the order the walk found them: holders first
        x, place = ways[i]
        if place.holder is not None:  # (a tuple's item, a bound method's self cannot change)
            test = f"{read_code(place, name_of)} is not {name_of(x)}"
            conditions[test] = (f"{place.path} is another object now, or was removed", place.path)
    for t in read:
        path = ways[into[id(t)][0]][1].path if id(t) in into else t.name or f"a {t.shape} tensor"
        if kinds[t] == "parameter":
            meaning = f"{path} no longer requires grad"
            conditions[f"not {name_of(t)}.requires_grad"] = (meaning, path)
        elif kinds[t] == "constant":
            conditions[f"{name_of(t)}.requires_grad"] = (f"{path} requires grad now", path)
            test = f"{name_of(t)}.version != {t.version}"
            conditions[test] = (f"{path}.data was assigned", path)
    if conditions:
        tests = "\n        or ".join(f"{test}  # {path}" for test, (_, path) in conditions.items())
        code.emit(
            None,
            "try:  # the tensors read besides the arguments: the same, as recorded\n"
            f"    if (\n        {tests}\n    ):\n"
            "        return None  # record again\n"
            "except (LookupError, ValueError):  # removed: a key, an item, a closure cell's value\n"
            "    return None",
            [],
        )
    return [(test, meaning) for test, (meaning, _) in conditions.items()]


def kinds_read(order: list[Tensor], inputs: list[Any], start: int) -> dict[Tensor, str]:
    """Each tensor of the recorded graph `order` that the step read besides its arguments
    (inputs), as a parameter (a leaf), a constant (an input of an operation that requires no
    grad) or a node (made before the clock's tick `start`, when the step began)."""
    arguments = {id(x) for x in inputs}
    kinds: dict[Tensor, str] = {}
    for node in order:
        if id(node) in arguments:
            continue
        if node.op is None:
            kinds[node] = "parameter"
        elif node.tick < start:
            kinds[node] = "node"
        for parent in node.parents:
            if not parent.requires_grad and id(parent) not in arguments:
                kinds.setdefault(parent, "constant")
    return kinds


def ways_to(
    read: list[Tensor], ways: list[tuple[Any, Place]], into: dict[int, list[int]]
) -> set[int]:
    """The ways (indices into `ways`) to each tensor read and to each object that holds one,
    from a root: the step may have read a tensor through any of them, so each is checked."""
    needed: set[int] = set()
    stack = [id(t) for t in read]
    seen = set(stack)
    while stack:
        for i in into.get(stack.pop(), ()):
            needed.add(i)
            parent = ways[i][1].parent
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(id(parent))
    return needed


def namer(code: CodeWriter, parameters: dict[Tensor, str]) -> Callable[[Any], str]:
    """name_of(x): x's name in the code, bound in its namespace when first asked for: a
    parameter's P0, K0 for other tensors, H0 for the rest (the holders)."""
    names = {id(t): name for t, name in parameters.items()}

    def name_of(x: Any) -> str:
        name = names.get(id(x))
        if name is None:
            prefix = "K" if isinstance(x, Tensor) else "H"
            name = names[id(x)] = code.global_name(code.fresh(prefix), x)
        return name

    return name_of


def read_code(place: Place, name_of: Callable[[Any], str]) -> str:
    """The code that reads the object at `place` from its holder."""
    holder = name_of(place.holder)
    if place.access == "cell":
        return f"{holder}.cell_contents"
    if place.access == "attribute":
        return f"{holder}.{place.key}"
    key = place.key
    return f"{holder}[{key!r}]" if type(key) in (str, int) else f"{holder}[{name_of(key)}]"
