"""The code a recording writes: its lines, the namespace of the constants and functions they use,
and the compiled function. Values enter it by name (Value; tracing.Traced computes with them).
The compiled code deletes each array after its last use and writes element-wise results into the
buffers of operands that die with them (buffers()). The whole story: docs/replay.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from autonet import backend


class Value:
    """A value of the code: what it is on the arguments of the recording call, and its name.

    value     the ndarray (or NumPy scalar) it is on the arguments of the recording call
    code      the CodeWriter that each operation on it writes a line to
    name      the name the code gives it: a local (g3), or for a constant, a name of the
              namespace (None until the constant is first written)
    constant  whether the value is the same at every call (computed from constants only)
    """

    __slots__ = ("value", "code", "name", "constant")

    def __init__(
        self, value: Any, code: CodeWriter, name: str | None = None, constant: bool = False
    ) -> None:
        self.value = value
        self.code = code
        self.name = name
        self.constant = constant


class Elementwise(NamedTuple):
    """A line's operation as an element-wise call of a ufunc, which could write its result into
    one of its operands: `v3 = EXP(v2, out=v2)` for `v3 = EXP(v2)`, `v5 = DIVIDE(c0, v4, out=v4)`
    for `v5 = c0 / v4`."""

    ufunc: str  # the ufunc's name in the namespace (EXP, DIVIDE)
    operands: tuple[str, ...]  # the code of each operand, in order
    # The locals among the operands whose array is laid out as the result is (the same shape,
    # dtype and strides): the buffers the result could be written into.
    buffers: tuple[str, ...]


class Line(NamedTuple):
    """One line of the generated code."""

    target: str | None  # the local it assigns; None for a line kept for its effect
    code: str
    reads: tuple[str, ...]  # the locals it reads
    comment: tuple[int, str]  # see CodeWriter.comment
    # Whether the line's result is a new array (NumPy allocates it) and the line keeps
    # no reference to what it reads and returns no view of it: a ufunc's call or reduce, an
    # operator, np.where(c, a, b). Any other line (a method, x.T, x[i], a function called as a
    # whole, asarray, accumulate_grad, return) may hand out what it reads, or a view of it.
    allocates: bool = False
    elementwise: Elementwise | None = None
    # A check of the arguments' and parameters' strides, kept only if some line writes into a
    # buffer (the strides fix the layout of every array the code computes; see buffers()).
    for_buffers: bool = False


class CodeWriter:
    """The lines of the generated function and the namespace of the constants and functions they
    refer to.

    Names: t0, t1, ... the arguments; a0, ... float arguments' arrays; p0, ... parameters' arrays
    (P0, ... the parameter Tensors); v0, ... values of the forward pass; g0, ... of the backward
    pass; c0, ... constants; upper case, NumPy functions (EXP, MATMUL), and functions of the
    table called as they are (RULE, a forward).

    Each operation on Traced values writes its line through tracing.apply().
    """

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.namespace: dict[str, Any] = {"asarray": np.asarray}
        self.counts: dict[str, int] = {}
        self.nbytes: dict[str, int] = {}  # the size of each computed local's array
        self.scalars: dict[tuple[Any, ...], str] = {}  # the name of each 0-d constant
        self.prefix = "v"  # of the locals assigned now: v in the forward pass, g in the backward
        # What the lines emitted now compute, written as a comment on the first of them: (a
        # serial number, so that two sigmoids in a row each get theirs; the text).
        self.comment: tuple[int, str] = (0, "")

    def fresh(self, prefix: str) -> str:
        count = self.counts.get(prefix, 0)
        self.counts[prefix] = count + 1
        return f"{prefix}{count}"

    def begin(self, comment: str) -> None:
        """Comment the lines emitted from now on with `comment`."""
        self.comment = (self.comment[0] + 1, comment)

    def constant(self, value: Any) -> str:
        """A name for value in the namespace; one for all equal 0-d constants (the code never
        writes into a constant, so they can share it)."""
        key = None
        if isinstance(value, (np.ndarray, np.generic)) and value.ndim == 0:
            key = (type(value), value.dtype, value.tobytes())
            if key in self.scalars:
                return self.scalars[key]
        name = self.fresh("c")
        self.namespace[name] = value
        if key is not None:
            self.scalars[key] = name
        return name

    def global_name(self, preferred: str, value: Any) -> str:
        """A name bound to value in the namespace: `preferred` unless it is taken by another
        value (two user primitives may share a name), then preferred_1, preferred_2, ..."""
        name, count = preferred, 0
        while name in self.namespace and self.namespace[name] is not value:
            count += 1
            name = f"{preferred}_{count}"
        self.namespace[name] = value
        return name

    def emit(
        self,
        target: str | None,
        code: str,
        reads: list[str],
        value: Any = None,
        allocates: bool = False,
        elementwise: Elementwise | None = None,
        for_buffers: bool = False,
    ) -> None:
        """A line assigning `target` (None: a line kept for its effect) from the locals `reads`;
        `value` is the array target holds; see Line for the rest."""
        line = Line(target, code, tuple(reads), self.comment, allocates, elementwise, for_buffers)
        self.lines.append(line)
        if value is not None:
            self.nbytes[target] = getattr(value, "nbytes", 0)

    def owns(self, name: str) -> bool:
        """Whether local `name` holds an array that no one else holds: a line allocated it and
        every line that read it since allocated its own result (no view of it was taken, and
        no function called as a whole received it)."""
        made = any(line.target == name and line.allocates for line in self.lines)
        return made and not any(name in line.reads for line in self.lines if not line.allocates)

    def text(self, x: Any, reads: list[str]) -> str:
        """The code for operand x; the locals it reads are appended to reads. Python numbers and
        the like are written as literals, other values become constants of the namespace."""
        if isinstance(x, Value):
            if x.name is None:  # a constant, named when first written
                x.name = self.constant(x.value)
            elif not x.constant:
                reads.append(x.name)
            return x.name
        kind = type(x)
        if kind in (int, bool, str) or x is None or kind is float and np.isfinite(x):
            return repr(x)
        if kind in (tuple, list):
            items = ", ".join(self.text(item, reads) for item in x)
            if kind is list:
                return f"[{items}]"
            return f"({items},)" if len(x) == 1 else f"({items})"
        if kind is slice:
            return f"slice({', '.join(self.text(i, reads) for i in (x.start, x.stop, x.step))})"
        if isinstance(x, np.dtype) and x.isbuiltin and np.dtype(x.name) == x:
            return repr(x.name)
        return self.constant(x)

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any], reads: list[str]) -> str:
        texts = [self.text(a, reads) for a in args]
        texts += [f"{k}={self.text(v, reads)}" for k, v in kwargs.items()]
        return ", ".join(texts)

    def elementwise(
        self, ufunc: np.ufunc, args: tuple[Any, ...], value: np.ndarray
    ) -> Elementwise | None:
        """ufunc(*args) with result `value`, as a call that could take out=."""
        if ufunc.signature is not None or ufunc.nout != 1 or ufunc.nin != len(args):
            return None  # a generalized ufunc (matmul) is not element-wise
        if type(value) is not np.ndarray:
            return None  # a NumPy scalar (of 0-d operands), which out= would make an array
        buffers = tuple(
            a.name
            for a in args
            if isinstance(a, Value)
            and not a.constant
            and type(a.value) is np.ndarray
            # no broadcasting up, no casting, and the result's layout: values written in
            # place are the values NumPy computes into a new array, at the same positions
            and a.value.shape == value.shape
            and a.value.dtype == value.dtype
            and a.value.strides == value.strides
        )
        if not buffers:
            return None
        name = self.global_name(function_name(ufunc.__name__), ufunc)
        return Elementwise(name, tuple(self.text(a, []) for a in args), buffers)

    def function(self, name: str, parameters: list[str]) -> tuple[Callable[..., Any], str]:
        """Compile the lines into `def name(*parameters)`: only the lines needed(), each array the
        code computes deleted after its last use (deletions()), and element-wise operations
        written into the buffer of an operand that dies with them where that is safe (buffers());
        a comment says what each group of lines computes, and one line each constant."""
        kept, reused = buffers(needed(self.lines), self.nbytes)
        if not reused:  # the layouts need no check
            kept = [line for line in kept if not line.for_buffers]
        done_at = deletions(kept, self.nbytes)
        body, comment = [], (0, "")
        for position, (_, code, _, line_comment, *_) in enumerate(kept):
            line = "    " + code.replace("\n", "\n    ")
            if line_comment != comment and line_comment[1]:
                line += f"  # {line_comment[1]}"  # on the first line of each group
            comment = line_comment
            body.append(line)
            if position in done_at and position < len(kept) - 1:
                body.append("    del " + ", ".join(sorted(done_at[position])))
        constants = sorted(
            {c for line in kept for c in re.findall(r"\bc[0-9]+\b", line.code)},
            key=lambda c: int(c[1:]),
        )
        legend = [f"# {describe(c, self.namespace[c])}\n" for c in constants]
        source = "".join(legend) + f"def {name}({', '.join(parameters)}):\n"
        source += "\n".join(body) + "\n"
        exec(compile(source, f"<replay {name}>", "exec"), self.namespace)  # noqa: S102
        return self.namespace[name], source


def needed(lines: list[Line]) -> list[Line]:
    """The lines that the lines kept for their effect (a check, a gradient accumulated, the
    return) need, those included, in order."""
    read_later: set[str] = set()
    kept = []
    for line in reversed(lines):
        if line.target is None or line.target in read_later:
            kept.append(line)
            read_later.update(line.reads)
    kept.reverse()
    return kept


def deletions(lines: list[Line], nbytes: dict[str, int]) -> dict[int, list[str]]:
    """The locals to delete after each line (by position): each array the code computes, after
    its last use, so that it is freed as soon as the code is done with it, unless it is small
    (under DELETE_FROM_BYTES) and the return comes within KEEP_LINES lines: then a `del` would
    cost more time than the array costs memory. Arguments and parameters are never deleted
    (their tensors hold them; nbytes has no entry for them)."""
    last_use = {read: position for position, line in enumerate(lines) for read in line.reads}
    done_at: dict[int, list[str]] = {}
    for read, position in last_use.items():
        size = nbytes.get(read)
        if size is not None and (size >= DELETE_FROM_BYTES or len(lines) - position > KEEP_LINES):
            done_at.setdefault(position, []).append(read)
    return done_at


def buffers(lines: list[Line], nbytes: dict[str, int]) -> tuple[list[Line], bool]:
    """The lines, with each element-wise operation written into the buffer of an operand that
    dies with it where that is safe (`v3 = EXP(v2, out=v2)`): NumPy then need not allocate (and
    the OS fault in) a new array, nor free the old one; the values are the same, bit for bit. And
    whether any line does.

    Eager mode gets some of this for free: NumPy overwrites a temporary of an expression
    (`-np.abs(x)`) that nothing else refers to; a local of the generated code is never one.

    A line writes into the array of its operand x only if all of these hold:
    - the line is an element-wise call of a ufunc (not reduce, not a generalized ufunc such as
      matmul), and x has exactly the result's shape, dtype and strides (no broadcasting up, no
      casting; Elementwise.buffers);
    - x was computed by a line that allocates its result (Line.allocates): never an argument, a
      parameter's array or a constant, which others hold, nor a result that may be a view;
    - every line reading x allocates its result and keeps no reference: no view of x was taken
      (x.T, x.reshape, x[i]), no function called as a whole received it, and it is neither
      handed to accumulate_grad (which .grad keeps) nor returned;
    - this line is the last to read x;
    - x is at least REUSE_FROM_BYTES large.
    Such an x is held by no other name, and no other operand of the line shares its memory, so
    the ufunc computes each element in place from the element it overwrites. (The name x is
    still deleted after the line, if large: the array lives on as the result, and is freed when
    the last of its names is deleted.)
    The layout of every array the code computes follows from the layouts of the arguments and
    the parameters, which a recording does not otherwise fix: a result that NumPy lays out
    like x for these arguments' strides might be laid out otherwise for others (an F-ordered
    argument), and a reduction or matmul of it would then add in another order. So a recording
    that writes into buffers also checks these strides (the line marked for_buffers).
    """
    last_use = {read: position for position, line in enumerate(lines) for read in line.reads}
    allocated = {line.target for line in lines if line.allocates}
    exposed = {read for line in lines if not line.allocates for read in line.reads}
    result, reused = [], False
    for position, line in enumerate(lines):
        call = line.elementwise
        if call is not None:
            for x in call.buffers:
                if (
                    x in allocated
                    and x not in exposed
                    and last_use[x] == position
                    and nbytes[x] >= REUSE_FROM_BYTES
                ):
                    code = f"{line.target} = {call.ufunc}({', '.join(call.operands)}, out={x})"
                    line, reused = line._replace(code=code), True
                    break
        result.append(line)
    return result, reused


def describe(name: str, value: Any) -> str:
    """A constant of the code as a comment: `c4 = 1.0 (float64 array, shape ())`."""
    if backend.is_foreign(value):  # another library's array: described by its values
        value = backend.to_numpy(value)
    if not isinstance(value, (np.ndarray, np.generic)):
        return " ".join(f"{name} = {value!r}".split())[:100]
    kind = f"{value.dtype} scalar"
    if isinstance(value, np.ndarray):
        kind = f"{value.dtype} array, shape {value.shape}"
    if value.size and (value == value.flat[0]).all():
        return f"{name} = {value.flat[0].item()!r} ({kind})"
    return f"{name}: {kind}"


DELETE_FROM_BYTES = 65536
KEEP_LINES = 64
# An element-wise line writes into a dying operand's buffer from this size (see buffers()): two
# float64 elements. Measured here (NumPy 2.4): `NEGATIVE(x, out=x)` rather than `-x` saves 10 to
# 35 ns per line from two elements to 64 KiB, tens of us from 128 KiB (where each new array is
# mapped and faulted in afresh), but costs 0.3 us more on a one-element array.
REUSE_FROM_BYTES = 16


def function_name(name: str) -> str:
    """A function's or primitive's name as an upper-case Python name for the code."""
    text = "".join(c if c.isalnum() else "_" for c in name).upper()
    return text if text.isidentifier() else f"F_{text}"


def tuple_text(items: Any) -> str:
    """The code of a tuple of the expressions `items`."""
    items = list(items)
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
