"""Replay: record a fixed-shape training step once, then re-run it as straight-line NumPy code.

    step = an.replay(loss_fn)      # loss_fn(*args) -> a one-element Tensor
    loss = step(S, Y)              # what `loss = loss_fn(S, Y); loss.backward()` does

The first call with arguments of given shapes and dtypes runs loss_fn eagerly, as autonet always
does, and writes down its forward pass and its backward pass as the body of one Python function
(`step.source` shows it). Later calls with the same shapes and dtypes run that function, without
creating Tensors, walking the graph, or checking shapes and dtypes per op.

How the code is written: a tracer. The recorded graph's forward pass, then the engine's own
backward pass (engine.backpropagate, with its unbroadcast, dtype casts and gradient accumulation),
run once more, on a copy of the graph (the user's tensors are left alone) and on `Traced` values
instead of arrays, as derive runs the backward pass on symbols.
A Traced value carries the array it stands for (so shapes and dtypes are known, and results can
be checked) and the name the code gives it. Each operation done on it by a primitive's forward
or by a VJP rule of the table (`g * out`, `1 - out`, `a.swapaxes(-1, -2)`, `x > 0`, np.exp(x),
np.where(...), `broadcast_to(g, shape=...)`) is computed now with the same NumPy call on the same
operands in the same order, and written as one line (`g3 = g2 * v3`). So the code is the NumPy
operations themselves: no rule or forward runs as a Python function at replay time, and the
results are eager's, bit for bit.
- Constants: an operation whose operands are all constants (the seed dL/dL = 1, numbers in the
  step, tensors it closes over, static arguments such as shapes) gives the same result at every
  call, so it is computed once here and the code holds its result (the broadcast of a constant
  gradient by sum's rule, pow's exponent arithmetic). Whatever reads an argument or a
  parameter, comparisons included (relu's `x > 0`), is written as code.
- A Python number meeting an array becomes the 0-d array NumPy would convert it to (`1 - out`
  is `c4 - v3`, c4 = array(1.0)): the same bits, without NumPy inspecting the number each call.
- Only what the loss and the wanted gradients need is kept (no gradient for a data argument).
  Arrays are deleted after their last use, so that memory is released as early as the code
  allows (but for small ones close to the return, where a `del` costs more than it saves).
- An element-wise operation writes its result into the array of an operand that dies with it
  (`v3 = EXP(v2, out=v2)` for `v3 = EXP(v2)`), where that is safe: the operand is an array the
  code allocated itself, laid out as the result, never viewed nor handed out (buffers()). So a
  step allocates fewer arrays than eager mode, where NumPy reuses only an expression's
  temporaries. Such a recording also checks the strides of the arguments and parameters, as
  its buffers assume their layouts: arguments laid out otherwise (F-ordered) record again.
- A function the tracer cannot follow (it branches on its operands' values, converts them with
  np.asarray or float(), writes into an array, or gives another result on Traced values than on
  arrays: each is also run on the arrays to check) is written as one call of the function on the
  arrays (`g5 = CUBE_RULE_0(g4, v3, v2)`, `v7 = SIGMOID(v6)`), as eager mode calls it.
- The code starts by checking that the arguments and the parameters are of the kinds, shapes
  and dtypes recorded (and constant arguments of the values recorded), else it returns None; a
  step called like the previous call reuses its recording without computing a key.
- It also checks the tensors the step read besides its arguments (guard_captured()): its
  parameters, the constants it used and the nodes of a graph made before it ran. Each is looked
  up wherever the step may have found it (captured(): a closure cell, a global its code names,
  a default, a bound method's self, and from there attributes of objects such as modules, items
  of lists and dicts), and the code checks that the same tensor is still there, that its
  requires_grad is unchanged and, for a constant, that its .data was not assigned since (the
  stamp backward() checks too). So `m.w = an.tensor(...)`, `u.requires_grad = True` or
  `c.data = new_array` between calls record again, as eager mode would read them. Each check is
  an `is` or an attribute read: about 20 ns.
New argument shapes or dtypes record again; the recordings are kept keyed by them (the newest
MAX_RECORDINGS), one per key: a recording refused for another reason (a parameter reshaped, a
captured tensor replaced) is replaced by a new one.

A recording fixes what any trace fixes (as torch.jit.trace and jax.jit):
- the sequence of primitives: Python control flow is not re-run, so a step whose operations
  depend on values (`if loss.item() > 1: ...`) replays the branch taken when it was recorded;
- constants: a tensor that is neither an argument nor requires grad (a number in the step, a
  tensor it closes over) is used with the array it held when recorded. Assigning its .data
  records again (above); writing into that array (`c.data[...] = 0`) may not be seen. Not
  checked at all: a tensor that met only other constants in the step (`u * 2` with u a
  constant: the recording holds the result, not u); and not checked for being replaced: a
  tensor found by the code of a class's methods (a global read in a module's forward), though
  its requires_grad and .data are. Pass data that changes as an argument. What autonet does not
  record is a constant too, even when computed from an argument: results of operations under
  no_grad, of comparisons, detach(), .item() and .data.
  A random draw in the step is a constant too: dropout in training mode refuses to be recorded
  (it asks `is_recording()`) rather than apply one mask at every call.
  Non-float array arguments (labels, indices) are part of the key: new values record again.
  Python numbers among the arguments are also part of the key.
Parameters (leaves with requires_grad=True, passed as arguments or closed over) are read at each
call, so an optimiser that replaces or updates `p.data` between calls is seen, and their gradients
accumulate in `p.grad` exactly as backward() accumulates them (zero them with `p.grad = None`).
Differences from eager: the returned loss is a leaf without a graph (its gradients are already
in the parameters), and retain_grad() on tensors inside the step has no effect. A tensor passed
as two arguments (or passed and closed over) accumulates its two gradients into .grad one after
the other, where backward() adds them first: the same value, rounded differently in the last bit.

Under an.detect_anomaly() (on the calling thread) a step runs eagerly, loss_fn(*args) then
backward(), instead of its recording: the generated code records no op, so anomaly mode could
check nothing, while eager mode raises FloatingPointError at the op or the VJP that made a NaN or
an infinity, naming the line of the step that created it. Nothing is recorded then.

Threads may call one step at once. The recordings are shared: the dict of them changes under a
lock, and a step records outside it (two threads may record one key at once; the later one is
kept). The code's arrays, the buffers it writes into with out= included, are locals of each call,
and gradients accumulate through Tensor.accumulate_grad, as backward() accumulates them.
"""

from __future__ import annotations

import functools
import operator
import re
import threading
import types
import warnings
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any, NamedTuple

import numpy as np

from autonet import anomaly, engine
from autonet.engine import topological_order
from autonet.primitives import ArrayStandIn, Primitive
from autonet.tensor import Tensor


class RecordingState(threading.local):
    """Whether replay is running a step to record it, on this thread. Code that draws random
    numbers (dropout) asks, since a recording would fix its draws as constants."""

    active = False


_recording = RecordingState()


def is_recording() -> bool:
    """Whether an.replay is recording a step on this thread (its values become constants)."""
    return _recording.active


class Recording:
    """One recorded step: the generated function, its source and how many arguments it takes.

    function(*args) returns the loss array, or None if an argument or a parameter is not of the
    kind, shape and dtype (or, for a constant argument, the value) it was recorded with, or if a
    tensor the step read is not the one, or not as, recorded (guard_captured()). `checks` are
    the latter checks, each (a condition true when it fails, what that means), for messages.
    """

    __slots__ = ("function", "source", "arity", "checks")

    def __init__(
        self,
        function: Callable[..., Any],
        source: str,
        arity: int,
        checks: list[tuple[str, str]],
    ) -> None:
        self.function = function
        self.source = source
        self.arity = arity
        self.checks = checks

    def what_changed(self) -> str:
        """Why the recording refuses arguments of its own signature now, in words: the first of
        its checks of the captured tensors that fails, else a change its signature check sees."""
        for condition, meaning in self.checks:
            try:
                failed = eval(condition, self.function.__globals__)  # noqa: S307
            except (LookupError, ValueError):  # removed, as the code's own check finds
                failed = True
            if failed:
                return meaning
        return "a parameter's shape, dtype or layout changed"


# Recordings kept per replayed step (the oldest dropped beyond it): enough for a few shapes (a last
# smaller batch, evaluation batches), bounded when a value in the key changes at every call.
MAX_RECORDINGS = 16


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
        self.latest: Recording | None = None  # the recording used by the previous call
        self.recorded = 0  # how many recordings were made
        self.warned = False  # about recording more than MAX_RECORDINGS times
        self.lock = threading.Lock()  # held while the recordings and the counts change
        self.__name__ = getattr(loss_fn, "__name__", "step")
        self.__doc__ = loss_fn.__doc__

    def __call__(self, *args: Any) -> Tensor:
        """loss_fn(*args), with its gradients accumulated into the parameters' .grad. Under
        an.detect_anomaly() it runs eagerly instead, checked as eager mode is (run_eagerly)."""
        if not engine._grad_mode.enabled:  # engine.is_grad_enabled(), without the call
            raise RuntimeError(
                f"replay({self.__name__}): called under no_grad, where nothing can be "
                "differentiated; call the step outside no_grad (or call loss_fn directly)"
            )
        # anomaly.is_anomaly_enabled(), without the call, and while no thread is in anomaly mode
        # without reading this thread's state either (a thread-local lookup costs 60 ns or more)
        if anomaly._active and anomaly._anomaly_mode.enabled:
            return self.run_eagerly(args)
        # A loop calls the step with arguments like the previous call's: the recording used
        # then checks them itself, which costs less than computing their signature.
        recording, loss = self.latest, None
        if recording is not None and len(args) == recording.arity:
            loss = recording.function(*args)
        if loss is None:
            loss = self.look_up(args)
        return Tensor.wrap(loss)

    def look_up(self, args: tuple[Any, ...]) -> Any:
        """The loss array from the recording for args' signature, recorded first if there is
        none, or if it refuses the arguments (a parameter changed shape or dtype since, or a
        tensor the step read was replaced or changed)."""
        key = tuple(map(signature, args))
        recording = self.recordings.get(key)
        loss = None if recording is None else recording.function(*args)
        if loss is None:
            why = "the arguments have a new signature"
            if recording is not None:
                why = recording.what_changed()
            recording = record_step(self.loss_fn, args, self.__name__)
            self.keep(key, recording, why)
            loss = recording.function(*args)
            if loss is None:
                raise RuntimeError(
                    f"replay({self.__name__}): the step's arguments do not equal themselves "
                    "(a NaN among Python numbers?), or a tensor it read was replaced while it "
                    "was recorded (by another thread?), so the new recording refuses them; pass "
                    "such a number as an array, or replace tensors between calls"
                )
        self.latest = recording
        return loss

    def keep(self, key: tuple[Hashable, ...], recording: Recording, why: str) -> None:
        """Keep a new recording (made because `why`) as the newest, dropping the oldest beyond
        MAX_RECORDINGS; warn the first time the step records more than MAX_RECORDINGS times, as
        a step that records at most calls is slower than eager mode."""
        with self.lock:  # other threads may keep theirs at the same time
            self.recordings.pop(key, None)  # recorded again (a parameter changed): the newest
            self.recordings[key] = recording
            if len(self.recordings) > MAX_RECORDINGS:
                del self.recordings[next(iter(self.recordings))]
            self.recorded += 1
            recorded, warn = self.recorded, self.recorded > MAX_RECORDINGS and not self.warned
            self.warned = self.warned or warn
        if warn:
            warnings.warn(
                f"replay({self.__name__}): recorded {recorded} times, the latest because {why}. "
                "A step records again for each signature of its arguments (shapes and dtypes, "
                "and the values of integer arrays such as labels or indices, and of Python "
                "numbers), and when a tensor it read other than an argument is replaced, changes "
                "requires_grad or has .data assigned. If that happens at most calls, replay is "
                "slower than eager mode: pass what changes as an argument, or call loss_fn and "
                f"backward() instead. The newest {MAX_RECORDINGS} recordings are kept.",
                RuntimeWarning,
                stacklevel=4,
            )

    def run_eagerly(self, args: tuple[Any, ...]) -> Tensor:
        """`loss = loss_fn(*args); loss.backward()`, as eager mode runs it, which anomaly mode
        checks op by op (the recordings are neither used nor made). Array arguments are wrapped
        as Tensors, as for a recording; the loss is returned as a leaf, as a replayed call
        returns it."""
        inputs = [Tensor.wrap(a) if isinstance(a, np.ndarray) else a for a in args]
        loss = check_loss(self.loss_fn(*inputs), self.__name__)
        if not loss.requires_grad:
            raise nothing_to_differentiate(self.__name__)
        loss.backward()
        return Tensor.wrap(loss.data)

    @property
    def source(self) -> str:
        """The generated code of the most recent recording."""
        with self.lock:
            recordings = list(self.recordings.values())
        if not recordings:
            raise RuntimeError(f"replay({self.__name__}): nothing recorded yet; call it once")
        return recordings[-1].source


def replay(loss_fn: Callable[..., Tensor]) -> Replay:
    """Record loss_fn(*args) and its backward pass once per argument signature; replay it after.

    The returned callable does what `loss = loss_fn(*args); loss.backward(); return loss` does,
    with the same results bit for bit, by re-running the recorded NumPy calls. It records again
    when a tensor the step read besides its arguments is replaced, changes requires_grad or (a
    constant) has .data assigned; under an.detect_anomaly() it runs eagerly, so that a NaN or an
    infinity raises as in eager mode. See the module docstring for what a recording fixes
    (control flow, constants), what it reads afresh (arguments, parameters) and what it checks.
    """
    return Replay(loss_fn)


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
        return (type(x), x)
    if data.dtype.kind == "f":
        return (type(x), data.shape, data.dtype, requires_grad)
    return (type(x), data.shape, data.dtype, data.tobytes())


# ---------------------------------------------------------------------------------------------
# The code being written


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

    def text(self, x: Any, reads: list[str]) -> str:
        """The code for operand x; the locals it reads are appended to reads. Python numbers and
        the like are written as literals, other values become constants of the namespace."""
        if isinstance(x, Traced):
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

    def apply(
        self,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        write: Callable[[list[str]], str],
        allocates: bool = False,
        ufunc: np.ufunc | None = None,
    ) -> Traced:
        """function(*args, **kwargs) on the operands' values, computed now. If every operand is a
        constant, so is the result; otherwise a line `v3 = write(reads)` computes it at each call
        (write renders the operation with self.text, collecting the locals it reads).

        allocates: the operation allocates its result and keeps nothing it reads (see
        Line.allocates), if its operands are arrays, NumPy scalars or Python numbers.
        ufunc: the operation is exactly ufunc(*args), so the line may be written with out=
        (see Elementwise)."""
        value = function(*values_of(args), **values_of(kwargs))
        if is_constant(args) and is_constant(kwargs):
            return Traced(value, self, constant=True)
        reads: list[str] = []
        expression = write(reads)
        name = self.fresh(self.prefix)
        # an operand of another kind (an ndarray subclass, a list) may run other code
        allocates = allocates and all(map(is_plain, args))
        elementwise = None
        if allocates and ufunc is not None and not kwargs:
            elementwise = self.elementwise(ufunc, args, value)
        self.emit(name, f"{name} = {expression}", reads, value, allocates, elementwise)
        return Traced(value, self, name)

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
            if isinstance(a, Traced)
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

    def call(
        self,
        name: str,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict,
        allocates: bool = False,
        ufunc: np.ufunc | None = None,
    ) -> Traced:
        """function(*args, **kwargs), written as a call of `name` (of the namespace)."""
        return self.apply(
            function,
            args,
            kwargs,
            lambda reads: f"{name}({self.arguments(args, kwargs, reads)})",
            allocates,
            ufunc,
        )

    def function(self, name: str, parameters: list[str]) -> tuple[Callable[..., Any], str]:
        """Compile the lines into `def name(*parameters)`: only the lines that a line kept for its
        effect (a check, a gradient accumulated, the return) needs. Each array the code computes
        is deleted after its last use, so that it is freed as soon as the code is done with it,
        unless it is small (under DELETE_FROM_BYTES) and the return comes within KEEP_LINES
        lines: then a `del` would cost more time than the array costs memory. Arguments and
        parameters are never deleted (their tensors hold them). Element-wise operations write
        into the buffer of an operand that dies with them where that is safe (see buffers())."""
        needed: set[str] = set()
        kept = []
        for line in reversed(self.lines):
            if line.target is None or line.target in needed:
                kept.append(line)
                needed.update(line.reads)
        kept.reverse()
        kept, reused = buffers(kept, self.nbytes)
        if not reused:  # the layouts need no check
            kept = [line for line in kept if not line.for_buffers]
        last_use = {read: position for position, line in enumerate(kept) for read in line.reads}
        done_at: dict[int, list[str]] = {}
        for read, position in last_use.items():
            nbytes = self.nbytes.get(read)
            if nbytes is not None and (
                nbytes >= DELETE_FROM_BYTES or len(kept) - position > KEEP_LINES
            ):
                done_at.setdefault(position, []).append(read)
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
    if not isinstance(value, (np.ndarray, np.generic)):
        return f"{name} = {value!r}"[:100]
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


def values_of(x: Any) -> Any:
    """x with each Traced value replaced by the array it stands for."""
    if isinstance(x, Traced):
        return x.value
    if type(x) in (tuple, list):
        return type(x)(map(values_of, x))
    if type(x) is dict:
        return {k: values_of(v) for k, v in x.items()}
    return x


def is_plain(x: Any) -> bool:
    """Whether operand x is an ndarray, a NumPy scalar or a Python number (or a Traced one):
    what NumPy's operators and ufuncs take without calling other code."""
    if isinstance(x, Traced):
        x = x.value
    return type(x) is np.ndarray or isinstance(x, np.generic) or type(x) in (int, float, bool)


def is_constant(x: Any) -> bool:
    """Whether x is the same at every call: no Traced value in it that is not a constant."""
    if isinstance(x, Traced):
        return x.constant
    if type(x) in (tuple, list):
        return all(map(is_constant, x))
    if type(x) is dict:
        return all(map(is_constant, x.values()))
    return True


def same_result(traced: Any, expected: Any) -> bool:
    """Whether a function gave on Traced values what it gives on arrays: the same type, dtype,
    shape and values (NaN where NaN)."""
    if not isinstance(expected, (np.ndarray, np.generic)) or type(traced) is not type(expected):
        return False
    if traced.shape != expected.shape or traced.dtype != expected.dtype:
        return False
    return bool(np.array_equal(traced, expected, equal_nan=expected.dtype.kind in "fc"))


def same_bits(x: Any, y: Any) -> bool:
    """Whether two results of an operation are identical: type, dtype, shape and bytes."""
    return (
        type(x) is type(y)
        and isinstance(x, (np.ndarray, np.generic))
        and x.dtype == y.dtype
        and x.shape == y.shape
        and x.tobytes() == y.tobytes()
    )


# ---------------------------------------------------------------------------------------------
# Traced values


class ValuesNeededError(TypeError):
    """Raised when a function uses a Traced value in a way that depends on its values (truth,
    conversion to a number or an array): a recording follows operations, not decisions."""


def binary(
    symbol: str, function: Callable[[Any, Any], Any], ufunc: np.ufunc | None = None
) -> tuple[Callable, Callable]:
    """The operator `a symbol b` and its reflected form, each computed with function(a, b).
    ufunc: the ufunc NumPy calls for it on arrays, when it calls no other (`**` may call
    np.square or np.sqrt instead of np.power)."""

    def operation(a: Any, b: Any) -> Traced:
        code = a.code if isinstance(a, Traced) else b.code
        a, b = numbers_as_arrays(function, a, b)

        def write(reads: list[str]) -> str:
            # a negative literal in parentheses: -1.0 ** g would be -(1.0 ** g)
            texts = [code.text(x, reads) for x in (a, b)]
            texts = [f"({t})" if t.startswith("-") else t for t in texts]
            return f"{texts[0]} {symbol} {texts[1]}"

        return code.apply(function, (a, b), {}, write, allocates=True, ufunc=ufunc)

    return operation, lambda self, other: operation(other, self)


def numbers_as_arrays(function: Callable[[Any, Any], Any], a: Any, b: Any) -> tuple[Any, Any]:
    """A Python number operand of an operation with an array as the 0-d array NumPy converts it
    to: NumPy gives a Python number the array's dtype (or the default one of the number's kind;
    NEP 50), then runs the same ufunc loop as for an array of that dtype, so the results are the
    same bits, and the operation skips inspecting the number at each call (about 0.2 us, as
    much as the operation itself on small arrays). Kept a number unless the bits agree here."""
    converted = []
    for x, other in ((a, b), (b, a)):
        if type(x) in (int, float, bool) and isinstance(other, Traced) and not other.constant:
            array = other.value
            if type(array) is np.ndarray and array.ndim > 0:
                try:
                    x = np.asarray(x, dtype=np.result_type(x, array.dtype))
                except (OverflowError, TypeError, ValueError):
                    pass  # out of the dtype's range: left to NumPy's rules for numbers
        converted.append(x)
    if converted[0] is a and converted[1] is b:
        return a, b
    expected = function(*values_of((a, b)))
    try:
        same = same_bits(function(*values_of(converted)), expected)
    except (TypeError, ValueError):  # no loop for that dtype (np.ldexp's exponent): keep it
        same = False
    return (*converted,) if same else (a, b)


def unary(template: str, function: Callable[[Any], Any], ufunc: np.ufunc | None = None) -> Callable:
    def operation(self: Traced) -> Traced:
        return self.code.apply(
            function,
            (self,),
            {},
            lambda reads: template.format(self.code.text(self, reads)),
            allocates=True,
            ufunc=ufunc,
        )

    return operation


def method(name: str) -> Callable:
    """The ndarray method `name`, called on the value and written as `x.name(...)`."""

    def call(self: Traced, *args: Any, **kwargs: Any) -> Traced:
        code = self.code
        return code.apply(
            lambda x, *a, **k: getattr(x, name)(*a, **k),
            (self, *args),
            kwargs,
            lambda reads: f"{code.text(self, reads)}.{name}({code.arguments(args, kwargs, reads)})",
        )

    call.__name__ = name
    return call


class Traced(ArrayStandIn):
    """An array followed through a function: its value, and the code that computes it.

    value     the ndarray (or NumPy scalar) it is on the arguments of the recording call
    code      the CodeWriter that each operation on it writes a line to
    name      the name the code gives it: a local (g3), or for a constant, a name of the
              namespace (None until the constant is first written)
    constant  whether the value is the same at every call (computed from constants only)

    Traced values support what the primitives' forwards, their VJP rules and the engine's
    backward pass do with arrays: operators and comparisons, indexing, the methods .sum,
    .reshape, .swapaxes, .transpose, .astype (and a few more), .T, .shape, .ndim, .dtype, NumPy's
    ufuncs (np.exp(x), np.add.reduce(x)) and functions (np.where), and primitives called as
    functions (through apply_primitive). Each computes the value with the call that the function
    makes on arrays, and writes that call. What depends on the values themselves (truth, float(),
    np.asarray) raises ValuesNeededError.
    """

    __slots__ = ("value", "code", "name", "constant")
    __hash__ = object.__hash__  # == builds a Traced, so identity is the key

    def __init__(
        self, value: Any, code: CodeWriter, name: str | None = None, constant: bool = False
    ) -> None:
        self.value = value
        self.code = code
        self.name = name
        self.constant = constant

    @classmethod
    def apply_primitive(cls, primitive: Primitive, args: Any, params: dict) -> Traced:
        """A primitive called as a function by a rule (broadcast_to(g, shape=...), sign(x)): its
        forward, as Primitive.__call__ applies it to arrays."""
        code = next(a.code for a in args if isinstance(a, Traced))
        return follow(code, primitive.forward, function_name(primitive.name), tuple(args), params)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Traced:
        """np.exp(x), np.add.reduce(x, axis=0), and ndarray (op) Traced: the ufunc's call."""
        code = self.code
        if method == "at" or "out" in kwargs:
            raise ValuesNeededError(f"replay: {ufunc.__name__}.{method} writes into an array")
        if method == "__call__" and len(inputs) == 2 and not kwargs:
            inputs = numbers_as_arrays(ufunc, *inputs)
        name = code.global_name(function_name(ufunc.__name__), ufunc)
        if method == "__call__":
            return code.call(name, ufunc, inputs, kwargs, allocates=True, ufunc=ufunc)
        method_ = getattr(ufunc, method)
        return code.call(f"{name}.{method}", method_, inputs, kwargs, allocates=method == "reduce")

    def __array_function__(self, function: Any, types: Any, args: Any, kwargs: Any) -> Traced:
        """np.where(c, a, b) and the other NumPy functions that dispatch on their arguments."""
        if "out" in kwargs:
            raise ValuesNeededError(f"replay: {function.__name__}(out=...) writes into an array")
        code = self.code
        name = code.global_name(function_name(function.__name__), function)
        # np.where(c, a, b) allocates its result; np.where(c) gives indices
        allocates = function is np.where and len(args) == 3 and not kwargs
        result = code.call(name, function, args, kwargs, allocates)
        if result.value is None:  # np.copyto, np.put, ...: it wrote into one of its arguments
            raise ValuesNeededError(f"replay: {function.__name__} writes into an array")
        return result

    def __repr__(self) -> str:
        return f"Traced({self.name or 'constant'}, shape={self.shape}, dtype={self.dtype})"

    def needs_values(self, *args: Any, **kwargs: Any) -> Any:
        raise ValuesNeededError(
            "replay: an array's values were used outside an operation (truth value, conversion "
            "to a number or to an array), which the recorded code cannot repeat"
        )

    __bool__ = __float__ = __int__ = __index__ = __complex__ = __array__ = needs_values
    __iter__ = needs_values

    __add__, __radd__ = binary("+", operator.add, np.add)
    __sub__, __rsub__ = binary("-", operator.sub, np.subtract)
    __mul__, __rmul__ = binary("*", operator.mul, np.multiply)
    __truediv__, __rtruediv__ = binary("/", operator.truediv, np.divide)
    __pow__, __rpow__ = binary("**", operator.pow)
    __matmul__, __rmatmul__ = binary("@", operator.matmul)
    __and__, __rand__ = binary("&", operator.and_)
    __or__, __ror__ = binary("|", operator.or_)
    # Comparisons: Python turns `0 < x` into x.__gt__(0), as it does for arrays.
    __gt__ = binary(">", operator.gt)[0]
    __lt__ = binary("<", operator.lt)[0]
    __ge__ = binary(">=", operator.ge)[0]
    __le__ = binary("<=", operator.le)[0]
    __eq__ = binary("==", operator.eq)[0]  # type: ignore[assignment]
    __ne__ = binary("!=", operator.ne)[0]  # type: ignore[assignment]
    __neg__ = unary("-{}", operator.neg, np.negative)
    __pos__ = unary("+{}", operator.pos)
    __abs__ = unary("abs({})", abs, np.absolute)
    __invert__ = unary("~{}", operator.invert)

    sum = method("sum")
    mean = method("mean")
    max = method("max")
    min = method("min")
    reshape = method("reshape")
    swapaxes = method("swapaxes")
    transpose = method("transpose")
    astype = method("astype")
    copy = method("copy")

    @property
    def T(self) -> Traced:
        return self.code.apply(
            lambda x: x.T, (self,), {}, lambda reads: f"{self.code.text(self, reads)}.T"
        )

    def __getitem__(self, index: Any) -> Traced:
        code = self.code

        def write(reads: list[str]) -> str:
            """x[1:4, ::2] rather than x[(slice(1, 4, None), slice(None, None, 2))]."""
            items = index if type(index) is tuple else (index,)
            texts = []
            for item in items:
                if type(item) is slice:
                    parts = [item.start, item.stop] + ([] if item.step is None else [item.step])
                    texts.append(":".join("" if x is None else code.text(x, reads) for x in parts))
                elif item is Ellipsis:
                    texts.append("...")
                else:
                    texts.append(code.text(item, reads))
            trailing = "," if type(index) is tuple and len(items) == 1 else ""
            return f"{code.text(self, reads)}[{', '.join(texts)}{trailing}]"

        return code.apply(operator.getitem, (self, index), {}, write)


def function_name(name: str) -> str:
    """A function's or primitive's name as an upper-case Python name for the code."""
    text = "".join(c if c.isalnum() else "_" for c in name).upper()
    return text if text.isidentifier() else f"F_{text}"


# ---------------------------------------------------------------------------------------------
# Recording


def follow(
    code: CodeWriter, function: Callable[..., Any], name: str, args: tuple, kwargs: dict
) -> Traced:
    """function(*args, **kwargs) on Traced values: traced down to its NumPy operations, or, if
    the tracer cannot follow it, written as one call of the function (as `name`) on the arrays.

    The function also runs on the arrays, and the trace is kept only if it gives the same
    result: a function that takes a branch on the type of its operands, or calls something that
    refuses Traced values (np.asarray, truth values), is called instead. This also gives the
    error eager mode gives if the function raises on the arrays."""
    expected = function(*values_of(args), **values_of(kwargs))
    try:
        result = function(*args, **kwargs)
    except Exception:  # noqa: BLE001 - whatever a Traced value cannot do, an array can: call it
        result = None
    if isinstance(result, Traced) and same_result(result.value, expected):
        return result
    return code.call(code.global_name(name, function), function, args, kwargs)


def following(op: Primitive, code: CodeWriter) -> Primitive:
    """op with each VJP rule followed: run on Traced values, it writes the code of the gradient."""

    def followed_rule(index: int) -> Callable[..., Any]:
        rule = op.vjps[index]

        def run(*args: Any, **params: Any) -> Any:
            position = args[0] if op.variadic else index
            code.begin(f"{op.name}: grad of input {position}")
            return follow(code, rule, f"{function_name(op.name)}_RULE_{index}", args, params)

        return run

    vjps = map(followed_rule, range(len(op.vjps)))
    return Primitive(op.name, op.forward, *vjps, variadic=op.variadic)


def record_step(loss_fn: Callable[..., Tensor], args: tuple[Any, ...], name: str) -> Recording:
    """Run loss_fn on args once, eagerly, and write its forward and backward pass as a function
    of the arguments that returns the loss array and accumulates the parameters' .grad."""
    # Stand-ins for the float arguments, requiring grad so that every operation on an argument
    # is recorded (and so replayed on the next call's values).
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
        elif isinstance(a, Tensor):
            # other arrays (labels, indices) are constants of the recording, checked by value
            # at each call: a copy, so that changes to the caller's array cannot reach it
            a = Tensor.wrap(a.data.copy())
        inputs.append(a)
    _recording.active = True
    start = engine.next_tick()  # the tensors made from now on are the step's own
    try:
        loss = check_loss(loss_fn(*inputs), name)
    finally:
        _recording.active = False

    order = topological_order(loss)
    code = CodeWriter()
    argument_names = [code.fresh("t") for _ in args]

    # The prologue: read the arguments' and the parameters' arrays, and check that they are what
    # the recording assumes (the kinds, shapes and dtypes, requires_grad, the values of constant
    # arguments: what signature() keys recordings by), else return None.
    code.namespace["TYPES"] = tuple(map(type, args))
    code.emit(
        None,
        f"if {tuple_text(f'type({t})' for t in argument_names)} != TYPES:\n    return None",
        argument_names,
    )
    values: dict[str, Any] = {}  # each name the checks read, at this call
    checks: list[str] = []  # expressions compared at each call with their values at this one
    argument_locals = []  # the name of each argument's array, or of the argument
    layouts: list[str] = []  # the strides of each array argument and parameter (see buffers())
    for t, a in zip(argument_names, args, strict=True):
        values[t], local = a, t
        if isinstance(a, Tensor):
            local = code.fresh("a")
            code.emit(local, f"{local} = {t}.data", [t])
            values[local] = a.data
        if isinstance(a, (Tensor, np.ndarray)):
            checks += [f"{local}.shape", f"{local}.dtype"]
            layouts.append(f"{local}.strides")
            if values[local].dtype.kind != "f":
                checks.append(f"{local}.tobytes()")  # a constant of the recording: its values
            elif isinstance(a, Tensor):
                checks.append(f"{t}.requires_grad")
        else:
            checks.append(t)  # a Python value: a constant of the recording
        argument_locals.append(local)

    # The recorded graph is copied node by node (each copy a shadow), with primitives whose rules
    # are followed, and argument leaves that require grad only if the argument does; the
    # engine's backward pass runs on the copy, leaving the user's tensors alone.
    shadows: dict[Tensor, Tensor] = {}  # recorded node -> its copy
    traced: dict[Tensor, Traced] = {}  # copy (or constant tensor) -> its value in the code
    owners: dict[int, str] = {}  # id of a copied leaf that needs a gradient -> who receives it
    parameters: dict[Tensor, str] = {}  # each parameter -> its name in the code (P0, ...)
    first_use: dict[Tensor, int] = {}  # so that parameters are numbered in order of use
    for node in order:
        for parent in node.parents:
            first_use.setdefault(parent, len(first_use))
    leaves = sorted(
        (node for node in order if node.op is None),
        key=lambda leaf: first_use.get(leaf, len(first_use)),
    )
    for node in leaves:
        shadow = shadows[node] = Tensor.wrap(node.data)
        i = stand_ins.get(node)
        if i is None:  # a leaf that requires grad and is no argument: a parameter
            local = code.fresh("p")
            owner = parameters[node] = code.global_name(local.upper(), node)
            named = f"  # {node.name}" if node.name else ""
            code.emit(local, f"{local} = {owner}.data{named}", [])
            values[local] = node.data
            checks += [f"{local}.shape", f"{local}.dtype"]
            layouts.append(f"{local}.strides")
        else:
            local, owner = argument_locals[i], argument_names[i]
        if i is None or isinstance(args[i], Tensor) and args[i].requires_grad:
            shadow.requires_grad = True
            owners[id(shadow)] = owner
        traced[shadow] = Traced(node.data, code, local)

    def guard(name: str, expressions: list[str], why: str, for_buffers: bool = False) -> None:
        """A line that returns None unless the expressions have the values they have now, kept
        as the constant `name` (the check's own expressions evaluated now, so the two agree);
        `why` says what a difference means. On None the caller looks for another recording of
        the arguments' signature, or records again."""
        check = tuple_text(expressions)
        code.namespace[name] = eval(check, code.namespace, values)  # noqa: S307
        code.emit(
            None,
            f"if {check} != {name}:  # {why}\n"
            "    return None  # record again, or use another recording",
            list(values),
            for_buffers=for_buffers,
        )

    roots = [(loss_fn, "")] + [
        (a, f"args[{i}]")
        for i, a in enumerate(args)
        # an argument checked by identity (its type compares so): the same object at each call
        if type(a).__eq__ is object.__eq__ and may_hold_tensors(a)
    ]
    captured_checks = guard_captured(code, roots, order, parameters, inputs, start)
    guard("SIGNATURE", checks, "other shapes, dtypes or values")
    if layouts:  # kept only if a line writes into a buffer
        guard("STRIDES", layouts, "other layouts than out= below assumes", for_buffers=True)

    def operand(t: Tensor) -> Traced:
        """What the code knows tensor t as: its Traced value; a constant if t is not computed."""
        x = traced.get(t)
        if x is None:
            x = traced[t] = Traced(t.data, code, constant=True)
        return x

    # Forward: each primitive's forward followed on its inputs, as record() applies it.
    followed: dict[Primitive, Primitive] = {}
    for node in order:
        if node.op is None:
            continue
        op = followed.get(node.op)
        if op is None:
            op = followed[node.op] = following(node.op, code)
        parents = tuple(shadows.get(p, p) for p in node.parents)
        shadow = shadows[node] = op(*parents, **node.params)  # records the copy
        code.begin(node.op.name)
        inputs_ = tuple(map(operand, parents))
        output = follow(code, op.forward, function_name(op.name), inputs_, node.params)
        if type(output.value) is not np.ndarray:
            # record() turns a NumPy scalar into a 0-d array (the type is fixed by the shapes)
            output = code.call("asarray", np.asarray, (output,), {})
        traced[shadow] = output

    # Backward: the engine's pass on the copy, on Traced values.
    if not shadows[loss].requires_grad:
        raise nothing_to_differentiate(name)
    code.prefix = "g"
    seed = engine.check_root_grad(loss, None, f"replay({name})")
    found = engine.backpropagate(
        shadows[loss],
        Traced(seed, code, constant=True),
        retain_graph=False,
        create_graph=False,
        wanted=[shadows[node] for node in leaves if id(shadows[node]) in owners],
        operand=operand,
    )
    code.begin("")
    for key, g in found.items():
        # (accumulate_grad copies: a constant gradient, the same array at every call, is fine)
        reads: list[str] = []
        g_text = code.text(g, reads)
        owner = owners[key]
        reads += [owner] if owner in argument_names else []
        code.emit(None, f"{owner}.accumulate_grad({g_text})", reads)
    reads = []
    code.emit(None, f"return {code.text(traced[shadows[loss]], reads)}", reads)

    function_name_ = f"replayed_{name}" if name.isidentifier() else "replayed_step"
    function, source = code.function(function_name_, argument_names)
    return Recording(function, source, len(args), captured_checks)


def check_loss(loss: Any, name: str) -> Tensor:
    """loss, if it is what a step must return: a one-element Tensor."""
    if not isinstance(loss, Tensor) or loss.data.size != 1:
        shape = getattr(loss, "shape", type(loss).__name__)
        raise TypeError(f"replay({name}): the step must return a one-element Tensor, got {shape}")
    return loss


def nothing_to_differentiate(name: str) -> RuntimeError:
    return RuntimeError(
        f"replay({name}): the loss does not depend on any tensor that requires grad, so "
        "there is nothing to differentiate; set requires_grad=True on the parameters"
    )


# ---------------------------------------------------------------------------------------------
# What the step read besides its arguments


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
    since (tensor._version, the stamp backward() checks, moves at each assignment).

    A tensor the walk does not find keeps the checks of its requires_grad and .data: the code
    keeps the tensor itself (a parameter's array is read from it at each call)."""
    arguments = {id(x) for x in inputs}
    kinds: dict[Tensor, str] = {}  # each tensor the step read -> parameter, constant or node
    for node in order:
        if id(node) in arguments:
            continue
        if node.op is None:
            kinds[node] = "parameter"
        elif node._tick < start:
            kinds[node] = "node"
        for parent in node.parents:
            if not parent.requires_grad and id(parent) not in arguments:
                kinds.setdefault(parent, "constant")
    ways = captured(roots)
    into: dict[int, list[int]] = {}  # id of an object -> the ways (indices) that lead to it
    for i, (x, _) in enumerate(ways):
        into.setdefault(id(x), []).append(i)
    read = [
        t for t, kind in kinds.items() if id(t) in into or t._tick < start or kind == "parameter"
    ]
    # Every way to a tensor read is checked, and every way to what holds it: the step may
    # have read the tensor through any of them.
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

    names = {id(t): name for t, name in parameters.items()}

    def name_of(x: Any) -> str:
        """x's name in the code: a parameter's P0, K0 for other tensors, H0 for the rest."""
        name = names.get(id(x))
        if name is None:
            prefix = "K" if isinstance(x, Tensor) else "H"
            name = names[id(x)] = code.global_name(code.fresh(prefix), x)
        return name

    conditions: dict[str, tuple[str, str]] = {}  # code true when it fails -> (meaning, path)
    for i in sorted(needed):  # in the order the walk found them: the holders first
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
            test = f"getattr({name_of(t)}, '_version', 0) != {getattr(t, '_version', 0)}"
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


class Place(NamedTuple):
    """Where the walk of captured() found an object: in `holder`, read as holder.cell_contents
    (access "cell": a closure cell), holder[key] ("item": a dict's entry, a list's item) or
    holder.key ("attribute": a function's defaults), or from something that cannot change
    ("fixed": a tuple's item, a bound method's self; holder None). parent is the object the
    walk found it in; path names it for people (m.w, layers[0], params['w'], args[1].w)."""

    parent: Any
    holder: Any
    access: str
    key: Any
    path: str


# The walk of captured() collects at most this many ways, and does not enter a container of more
# items: a step's tensors are found long before, and a long list (a data set, a log of losses)
# is not worth the time.
WALK_LIMIT = 10_000


def captured(roots: list[tuple[Any, str]]) -> list[tuple[Any, Place]]:
    """Every way to an object reachable from the roots, breadth first, as (the object, the place
    it is read from): what the step can read besides its arguments. Containers, functions and
    objects' attributes are followed (held()); Tensors are collected but not entered; modules,
    classes, arrays and numbers are left out. An object reached again is not entered again."""
    ways: list[tuple[Any, Place]] = []
    entered = {id(root) for root, _ in roots}
    queue = deque(roots)
    while queue and len(ways) < WALK_LIMIT:
        x, path = queue.popleft()
        for child, place in held(x, path):
            ways.append((child, place))
            if (
                id(child) not in entered
                and not isinstance(child, Tensor)
                # the number of its attributes (an object's, a function's) or of its items
                and len(getattr(child, "__dict__", child)) <= WALK_LIMIT
            ):
                entered.add(id(child))
                queue.append((child, place.path))
    return ways


def held(x: Any, path: str) -> Iterator[tuple[Any, Place]]:
    """What x holds that may hold a tensor or be one (may_hold_tensors()), each with the place it
    is read from (see Place): a function's closure cells, the globals its code names and its
    defaults; a bound method's self and function, a partial's; a tuple's, a list's and a dict's
    items; other objects' attributes."""
    kind = type(x)
    if kind is types.FunctionType:
        for name, cell in zip(x.__code__.co_freevars, x.__closure__ or (), strict=True):
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not assigned yet
                continue
            if may_hold_tensors(contents):
                yield contents, Place(x, cell, "cell", None, name)
        namespace = x.__globals__
        for name in names_used(x.__code__):
            if may_hold_tensors(namespace.get(name)):
                yield namespace[name], Place(x, namespace, "item", name, name)
        for attribute in ("__defaults__", "__kwdefaults__"):
            if getattr(x, attribute):
                path_ = f"{x.__name__}.{attribute}"
                yield getattr(x, attribute), Place(x, x, "attribute", attribute, path_)
    elif kind is types.MethodType or kind is functools.partial:  # what they hold cannot change
        if kind is types.MethodType:
            fixed = [(x.__self__, "self"), (x.__func__, path)]
        else:
            fixed = [(getattr(x, a), f"{path}.{a}") for a in ("func", "args", "keywords")]
        for child, path_ in fixed:
            if may_hold_tensors(child):
                yield child, Place(x, None, "fixed", None, path_)
    elif isinstance(x, (tuple, list)):  # a named tuple too
        holder, access = (None, "fixed") if isinstance(x, tuple) else (x, "item")
        for i, item in enumerate(x):
            if may_hold_tensors(item):
                yield item, Place(x, holder, access, i, f"{path}[{i}]")
    else:  # a dict, or an object with attributes: read from its __dict__
        attributes = x if isinstance(x, dict) else x.__dict__
        for key, value in list(attributes.items()):
            if may_hold_tensors(value):
                text = f"{path}[{key!r}]" if attributes is x else f"{path}.{key}" if path else key
                yield value, Place(x, attributes, "item", key, text)


def names_used(code: types.CodeType) -> Iterator[str]:
    """The global (and attribute) names code and the functions defined in it use."""
    stack = [code]
    while stack:
        code = stack.pop()
        yield from code.co_names
        stack += (c for c in code.co_consts if isinstance(c, types.CodeType))


def may_hold_tensors(x: Any) -> bool:
    """Whether captured() collects x (a Tensor) or walks into it: a tuple, list or dict, a
    function, bound method or partial, or an object with attributes (a __dict__); not a module,
    a class, a thread's local data, nor an array or a number (which have no __dict__)."""
    kind = type(x)
    if kind in WALKED:
        return True
    if kind in NOT_WALKED or isinstance(x, (type, types.ModuleType, threading.local)):
        return False
    return isinstance(x, (Tensor, tuple, list, dict)) or type(getattr(x, "__dict__", None)) is dict


# The types of what may_hold_tensors() answers at once (a list of numbers is looked at quickly).
WALKED = frozenset(
    {Tensor, tuple, list, dict, types.FunctionType, types.MethodType, functools.partial}
)
NOT_WALKED = frozenset(
    {type(None), bool, int, float, complex, str, bytes, np.ndarray, np.float64, np.float32}
)


def read_code(place: Place, name_of: Callable[[Any], str]) -> str:
    """The code that reads the object at `place` from its holder."""
    holder = name_of(place.holder)
    if place.access == "cell":
        return f"{holder}.cell_contents"
    if place.access == "attribute":
        return f"{holder}.{place.key}"
    key = place.key
    return f"{holder}[{key!r}]" if type(key) in (str, int) else f"{holder}[{name_of(key)}]"


def tuple_text(items: Any) -> str:
    """The code of a tuple of the expressions `items`."""
    items = list(items)
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
