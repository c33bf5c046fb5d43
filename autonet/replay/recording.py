"""record_step(): run a step once, eagerly, then its graph once more on Traced values (a copy of
it, GraphCopy), writing the function a Recording keeps: the checks that the recording fits the
call (guard.py), the forward pass, the engine's own backward pass, the gradients accumulated into
the parameters, the loss returned. modes.is_recording() says, to code that draws random numbers,
that a step is being recorded. The whole story: docs/replay.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from autonet import backend, engine
from autonet.modes import replay_recording
from autonet.primitives import Primitive
from autonet.replay.captured import step_roots
from autonet.replay.codegen import CodeWriter, function_name
from autonet.replay.guard import SignatureCheck, guard_captured
from autonet.replay.tracing import Traced, call, follow, following, in_namespace
from autonet.tensor import Tensor, copy_of_array, graph_of


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


def record_step(loss_fn: Callable[..., Tensor], args: tuple[Any, ...], name: str) -> Recording:
    """Run loss_fn on args once, eagerly, and write its forward and backward pass as a function
    of the arguments that returns the loss array and accumulates the parameters' .grad."""
    inputs, stand_ins = recording_inputs(args)
    loss, start = run_recorded(loss_fn, inputs, name)
    order = step_order(loss)

    code = CodeWriter()
    argument_names = [code.fresh("t") for _ in args]
    # The prologue: read the arguments' and the parameters' arrays, and check that they are what
    # the recording assumes, and that the tensors the step read besides are the ones recorded.
    signature_check = SignatureCheck(code)
    argument_locals = signature_check.read_arguments(args, argument_names)
    arguments = {
        stand_in: (argument_locals[i], argument_names[i], requires_grad(args[i]))
        for stand_in, i in stand_ins.items()
    }
    copy = GraphCopy(code)
    leaves = copy.copy_leaves(order, arguments, signature_check)
    checks = guard_captured(code, step_roots(loss_fn, args), order, copy.parameters, inputs, start)
    signature_check.write()
    # The body: the forward pass, then the backward pass and the gradients accumulated.
    copy.write_forward(order)
    copy.write_backward(loss, leaves, argument_names, name)

    function_name_ = f"replayed_{name}" if name.isidentifier() else "replayed_step"
    function, source = code.function(function_name_, argument_names)
    return Recording(function, source, len(args), checks)


def step_order(loss: Tensor) -> list[Tensor]:
    """The nodes the step computed the loss from, each after its inputs: those that require grad
    (engine.topological_order's) and those that need none but depend on them (masks and other
    ops outside the graph, which tensor.record keeps while recording)."""
    return [t for t in graph_of(loss) if t.requires_grad or t.op is not None]


def recording_inputs(args: tuple[Any, ...]) -> tuple[list[Any], dict[Tensor, int]]:
    """What loss_fn is called with when recording: for each float argument a stand-in, requiring
    grad so that every operation on an argument is recorded (and so replayed on the next call's
    values); and the index of the argument each stand-in stands for."""
    stand_ins: dict[Tensor, int] = {}
    inputs = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) or backend.is_foreign(a):
            a = Tensor.wrap(a)
        if isinstance(a, Tensor) and a.dtype.kind == "f":
            stand_in = Tensor.wrap(a.data)
            stand_in.requires_grad = True
            stand_ins[stand_in] = i
            a = stand_in
        elif isinstance(a, Tensor):
            # other arrays (labels, indices) are constants of the recording, checked by value
            # at each call: a copy, so that changes to the caller's array cannot reach it
            a = Tensor.wrap(copy_of_array(a.data))
        inputs.append(a)
    return inputs, stand_ins


def run_recorded(
    loss_fn: Callable[..., Tensor], inputs: list[Any], name: str
) -> tuple[Tensor, int]:
    """loss_fn(*inputs), run eagerly while modes.is_recording() says so; the loss, and the clock's
    tick when the step began (the tensors made from then on are the step's own)."""
    replay_recording.active = True
    start = engine.next_tick()
    try:
        loss = check_loss(loss_fn(*inputs), name)
    finally:
        replay_recording.active = False
    return loss, start


def requires_grad(argument: Any) -> bool:
    """Whether an argument receives a gradient: a Tensor that requires grad."""
    return isinstance(argument, Tensor) and argument.requires_grad


class GraphCopy:
    """The recorded graph copied node by node (each copy a shadow), with primitives whose rules
    are followed, and argument leaves that require grad only if the argument does. The forward
    pass and the engine's backward pass run again on the copy, on Traced values, and so write
    the code; the user's tensors are left alone."""

    def __init__(self, code: CodeWriter) -> None:
        self.code = code
        self.shadows: dict[Tensor, Tensor] = {}  # recorded node -> its copy
        self.traced: dict[Tensor, Traced] = {}  # copy (or constant tensor) -> its value in the code
        self.owners: dict[int, str] = {}  # id of a copied leaf needing a gradient -> who gets it
        self.parameters: dict[Tensor, str] = {}  # each parameter -> its name in the code (P0, ...)

    def copy_leaves(
        self,
        order: list[Tensor],
        arguments: dict[Tensor, tuple[str, str, bool]],
        signature_check: SignatureCheck,
    ) -> list[Tensor]:
        """Copy the leaves of the graph `order`, in the order the step first uses them, each
        known to the code as an argument's array or a parameter's (read and checked by
        signature_check). arguments: each stand-in -> the name of its argument's array, of the
        argument, and whether the argument requires grad. Returns the leaves."""
        first_use: dict[Tensor, int] = {}  # so that parameters are numbered in order of use
        for node in order:
            for parent in node.parents:
                first_use.setdefault(parent, len(first_use))
        leaves = sorted(
            (node for node in order if node.op is None),
            key=lambda leaf: first_use.get(leaf, len(first_use)),
        )
        for node in leaves:
            shadow = self.shadows[node] = Tensor.wrap(node.data)
            if node in arguments:
                local, owner, wanted = arguments[node]
            else:  # a leaf that requires grad and is no argument: a parameter
                local, owner = signature_check.read_parameter(node)
                self.parameters[node], wanted = owner, True
            if wanted:
                shadow.requires_grad = True
                self.owners[id(shadow)] = owner
            self.traced[shadow] = Traced(node.data, self.code, local)
        return leaves

    def operand(self, t: Tensor) -> Traced:
        """What the code knows tensor t as: its Traced value; a constant if t is not computed."""
        x = self.traced.get(t)
        if x is None:
            x = self.traced[t] = Traced(t.data, self.code, constant=True)
        return x

    def write_forward(self, order: list[Tensor]) -> None:
        """Each primitive's forward followed on its inputs, as record() applies it: NumPy's
        traced down to its operations; another library's (namespace xp) one call of the
        primitive's forward there (tensor.apply_in_namespace, NumPy's promotion included)."""
        code = self.code
        followed: dict[Primitive, Primitive] = {}
        xp = backend.namespace_of(*(node.data for node in order), operation="replay")
        for node in order:
            if node.op is None:
                continue
            op = followed.get(node.op)
            if op is None:
                op = followed[node.op] = following(node.op, code, xp)
            parents = tuple(self.shadows.get(p, p) for p in node.parents)
            shadow = op(*parents, **node.params)  # records the copy
            if not node.requires_grad:  # a value the step computed without a gradient (a mask,
                shadow = Tensor.wrap(shadow.data)  # a result under no_grad): no gradient here
            self.shadows[node] = shadow
            code.begin(node.op.name)
            inputs = tuple(map(self.operand, parents))
            forward = op.forward if xp is np else in_namespace(node.op, xp)
            output = follow(code, forward, function_name(op.name), inputs, node.params)
            if type(output.value) is not np.ndarray and xp is np:
                # record() turns a NumPy scalar into a 0-d array (the type is fixed by the shapes)
                output = call(code, "asarray", np.asarray, (output,), {})
            self.traced[shadow] = output

    def write_backward(
        self, loss: Tensor, leaves: list[Tensor], argument_names: list[str], name: str
    ) -> None:
        """The engine's backward pass on the copy, on Traced values, then each gradient found
        accumulated into its owner (a parameter, an argument), and the loss returned."""
        code, shadows = self.code, self.shadows
        if not shadows[loss].requires_grad:
            raise nothing_to_differentiate(name)
        code.prefix = "g"
        seed = engine.check_root_grad(loss, None, f"replay({name})")
        found = engine.backpropagate(
            shadows[loss],
            Traced(seed, code, constant=True),
            retain_graph=False,
            create_graph=False,
            wanted=[shadows[node] for node in leaves if id(shadows[node]) in self.owners],
            operand=self.operand,
        )
        code.begin("")
        texts = {key: (code.text(g, reads := []), reads) for key, g in found.items()}
        handed = Counter(text for text, _ in texts.values())
        for key, (g_text, reads) in texts.items():
            # accumulate_grad copies, unless the code made the array and hands it to this
            # parameter only (a constant gradient is the same array at every call: copied)
            owned = handed[g_text] == 1 and g_text in reads and code.owns(g_text)
            owner = self.owners[key]
            reads += [owner] if owner in argument_names else []
            keep = ", owned=True" if owned else ""
            code.emit(None, f"{owner}.accumulate_grad({g_text}{keep})", reads)
        reads = []
        code.emit(None, f"return {code.text(self.traced[shadows[loss]], reads)}", reads)


def check_loss(loss: Any, name: str) -> Tensor:
    """loss, if it is what a step must return: a one-element Tensor."""
    if not isinstance(loss, Tensor) or loss.size != 1:
        shape = getattr(loss, "shape", type(loss).__name__)
        raise TypeError(f"replay({name}): the step must return a one-element Tensor, got {shape}")
    return loss


def nothing_to_differentiate(name: str) -> RuntimeError:
    return RuntimeError(
        f"replay({name}): the loss does not depend on any tensor that requires grad, so "
        "there is nothing to differentiate; set requires_grad=True on the parameters"
    )
