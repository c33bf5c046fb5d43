"""an.onnx.export: a model's (or a function's) forward pass as an ONNX model, to run it with
onnxruntime or any other ONNX runtime (needs the optional `onnx` package:
pip install 'autonet[onnx]').

    an.onnx.export(model, example_input, "model.onnx")

The model runs once on the example inputs, in evaluation mode (as torch.onnx.export does by
default: dropout off, batch normalisation with its running statistics), and the graph it records
is written node by node: each primitive of the table as the ONNX operator that computes the same
function (EXPORTS below), the parameters and constants as initializers, the example inputs as the
graph's inputs with their shapes (fixed: the exported model takes inputs of the example's shape,
batch size included). The recording is made as an.replay makes one, so masks computed from the
inputs (x > 0, argmax) are exported as operators, not frozen at the example's values, and an
index computed from the values is refused. A primitive without an ONNX operator (a user's, or a
backward-only one such as conv2d_weight_grad) raises an error naming it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from autonet import backend
from autonet.modes import grad_mode, replay_recording
from autonet.primitives import is_basic, is_integer
from autonet.tensor import Tensor, graph_of

DEFAULT_OPSET = 18  # the Reduce* operators take their axes as an input from opset 18 on


def export(
    model_or_function: Callable[..., Any],
    example_inputs: Any,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_batch: bool = False,
) -> Path:
    """Write model_or_function's forward pass on example_inputs (one array or Tensor, or a tuple
    of them) to path as an ONNX model checked by onnx.checker; returns the path.

    A Module runs in evaluation mode and its parameters are stored under their state_dict names;
    the inputs are named input_0, ... and the outputs output_0, ... unless names are given.
    The shapes are the example's; with dynamic_batch=True the first axis of every input is a
    batch axis of any length ("batch" in the model), found by running the model a second time
    on one more example: every tensor must then differ between the two runs in its first axis
    only, and every constant not at all (else a clear error: a mean over the batch, for one,
    divides by a number that depends on it).
    """
    onnx = import_onnx()
    if opset < DEFAULT_OPSET:
        raise ValueError(
            f"onnx.export: opset {opset} is older than {DEFAULT_OPSET}, the first in which every "
            f"reduction takes its axes as an input; pass opset={DEFAULT_OPSET} or newer"
        )
    examples = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    inputs = [leaf_of(x, i) for i, x in enumerate(examples)]
    names = parameter_names(model_or_function)
    outputs = traced_outputs(model_or_function, inputs)
    nodes = nodes_of(outputs)
    graph = GraphWriter(onnx, names)
    if dynamic_batch:
        more = [leaf_of(one_more_example(x), i) for i, x in enumerate(inputs)]
        graph.batched = batched_nodes(nodes, nodes_of(traced_outputs(model_or_function, more)))
    input_names = input_names or [f"input_{i}" for i in range(len(inputs))]
    output_names = output_names or [f"output_{i}" for i in range(len(outputs))]
    for names_given, count, what in (
        (input_names, len(inputs), "input"),
        (output_names, len(outputs), "output"),
    ):
        if len(names_given) != count:
            raise ValueError(
                f"onnx.export: {len(names_given)} {what} names for {count} {what}s; give one "
                f"name per {what}"
            )
    for t, name in zip(inputs, input_names, strict=True):
        graph.names[id(t)] = name
        graph.inputs.append(value_info(onnx, name, t, id(t) in graph.batched))
    for node in nodes:
        graph.write(node)
    for out, name in zip(outputs, output_names, strict=True):
        graph.nodes.append(onnx.helper.make_node("Identity", [graph.name_of(out)], [name]))
        graph.outputs.append(value_info(onnx, name, out, id(out) in graph.batched))
    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, "autonet", graph.inputs, graph.outputs, graph.initializers
        ),
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name="autonet",
    )
    onnx.checker.check_model(model, full_check=True)
    target = Path(path)
    from autonet.viz.rendering import write_atomically

    write_atomically(target, model.SerializeToString(), "onnx.export")
    return target


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "onnx.export needs the onnx package: pip install 'autonet[onnx]' (or pip install "
            "onnx onnxruntime)"
        ) from None
    return onnx


def leaf_of(x: Any, position: int) -> Tensor:
    """An example input as a fresh leaf that requires grad, so that every op on it records."""
    data = x.data if isinstance(x, Tensor) else x if backend.is_foreign(x) else np.asarray(x)
    dtype = backend.numpy_dtype(data)
    if dtype.kind != "f":
        raise TypeError(
            f"onnx.export: example input {position} has dtype {dtype}; only floating-point "
            "inputs are supported (an integer input used as an index would be frozen at the "
            "example's values)"
        )
    return Tensor(data, requires_grad=True)


def one_more_example(x: Tensor) -> Any:
    """x with its first example repeated at the end, in x's array library."""
    values = x.numpy()
    more = np.concatenate([values, values[:1]])
    return more if not backend.is_foreign(x.data) else backend.namespace_of(x.data).asarray(more)


def parameter_names(model: Any) -> dict[int, str]:
    """id of each parameter and buffer of a Module -> its state_dict name (none for a function)."""
    named = getattr(model, "named_parameters", None)
    return {id(t): name for name, t in named()} if callable(named) else {}


def traced_outputs(model: Callable[..., Any], inputs: list[Tensor]) -> list[Tensor]:
    """The model's outputs on the inputs, recorded in evaluation mode, as replay records."""
    training = getattr(model, "training", None)
    if training:
        model.eval()  # type: ignore[attr-defined]
    enabled, recording = grad_mode.enabled, replay_recording.active
    grad_mode.enabled, replay_recording.active = True, True
    try:
        out = model(*inputs)
    finally:
        grad_mode.enabled, replay_recording.active = enabled, recording
        if training:
            model.train()  # type: ignore[attr-defined]
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(
                f"onnx.export: the model must return a Tensor (or a tuple of Tensors), got "
                f"{type(o).__name__}"
            )
    return outs


def nodes_of(outputs: list[Tensor]) -> list[Tensor]:
    """Every tensor the outputs were computed from, each after its inputs (leaves included)."""
    seen: dict[int, Tensor] = {}
    for out in outputs:
        for t in graph_of(out):
            seen.setdefault(id(t), t)
    return sorted(seen.values(), key=lambda t: t.tick)


def value_info(onnx: Any, name: str, t: Tensor, batched: bool = False) -> Any:
    shape: list[Any] = list(t.shape)
    if batched:
        shape[0] = "batch"
    return onnx.helper.make_tensor_value_info(
        name, onnx.helper.np_dtype_to_tensor_dtype(t.dtype), shape
    )


def batched_nodes(first: list[Tensor], second: list[Tensor]) -> set[int]:
    """The ids of the tensors of `first` whose first axis is the batch axis, from a second run on
    one more example: the two runs must record the same operations with the same params (but
    the target shape of a reshape or broadcast, in its first axis), their tensors must differ in
    the first axis only, and their constants not at all."""

    def refuse(t: Tensor, why: str) -> NoReturn:
        what = t.op.name if t.op is not None else "a constant"
        raise ValueError(
            f"onnx.export: dynamic_batch needs the batch to be the first axis of every tensor "
            f"that depends on it, but {what} (shape {t.shape}) {why}; export with "
            "dynamic_batch=False (the example's batch size), or keep the batch axis first"
        )

    if len(first) != len(second):
        refuse(first[-1], "belongs to a graph that changes with the batch size")
    batched = set()
    for a, b in zip(first, second, strict=True):
        if a.op is not b.op:
            refuse(a, "belongs to a graph that changes with the batch size")
        constant = a.op is None and not a.requires_grad
        if a.shape != b.shape:
            if a.ndim != b.ndim or a.shape[1:] != b.shape[1:] or b.shape[0] != a.shape[0] + 1:
                refuse(a, f"becomes shape {b.shape} with one more example")
            if constant:
                refuse(
                    a,
                    "is made for the batch's size (an.zeros(x.shape)? compute it from x: 0 * x)",
                )
            batched.add(id(a))
        elif constant and not np.array_equal(a.numpy(), b.numpy(), equal_nan=True):
            refuse(a, "has other values with one more example (a mean over the batch?)")
        elif a.op is not None and not same_params(a, b):
            refuse(a, f"has other params with one more example ({a.params} and {b.params})")
    return batched


def same_params(a: Tensor, b: Tensor) -> bool:
    """Whether two runs' nodes have the same params (a reshape's or broadcast's target shape may
    differ in its first axis: the batch)."""
    for key, value in a.params.items():
        other = b.params.get(key)
        if key == "shape" and a.op.name in ("reshape", "broadcast_to"):
            value, other = tuple(value)[1:], tuple(other)[1:]
        if type(value) is tuple and type(other) is tuple and len(value) == len(other):
            if not all(np.array_equal(v, w) for v, w in zip(value, other, strict=True)):
                return False
        elif not np.array_equal(value, other):
            return False
    return True


class GraphWriter:
    """The ONNX graph being written: its nodes, initializers and the name of each tensor."""

    def __init__(self, onnx: Any, parameter_names: dict[int, str]) -> None:
        self.onnx = onnx
        self.parameter_names = parameter_names
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self.names: dict[int, str] = {}
        self.batched: set[int] = set()  # tensors whose first axis is a batch of any length
        self.count = 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def name_of(self, t: Tensor) -> str:
        name = self.names.get(id(t))
        if name is None:  # a leaf: a parameter, or a constant the model made
            name = self.parameter_names.get(id(t)) or self.fresh(t.name or "constant")
            self.constant(t.numpy(), name)  # a parameter of any array library, as NumPy's
            self.names[id(t)] = name
        return name

    def constant(self, value: Any, name: str | None = None) -> str:
        """An initializer holding value; its name."""
        name = name or self.fresh("constant")
        array = np.asarray(value)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], **attributes: Any) -> str:
        """A node op_type(inputs) with one output; its name."""
        out = self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attributes))
        return out

    def write(self, node: Tensor) -> None:
        if node.op is None or id(node) in self.names:
            return  # a leaf is written where it is used (name_of)
        export_one = EXPORTS.get(node.op.name)
        if export_one is None:
            raise NotImplementedError(
                f"onnx.export: primitive {node.op.name!r} (output shape {node.shape}) has no ONNX "
                "operator in autonet's exporter (autonet.onnx.EXPORTS lists those that have); "
                "write the function with the table's primitives, or add an entry to EXPORTS"
            )
        inputs = [self.name_of(p) for p in node.parents]
        self.names[id(node)] = export_one(self, node, inputs)


# ---------------------------------------------------------------------------------------------
# Each primitive as ONNX operators: (writer, node, input names) -> the output's name. ONNX needs
# the operands of an operator in one dtype, where NumPy promotes (float32 * float64): inputs are
# cast to the output's dtype first.

Export = Callable[[GraphWriter, Tensor, list[str]], str]


def same_dtype(g: GraphWriter, node: Tensor, inputs: list[str]) -> list[str]:
    """The inputs cast to the node's dtype where theirs differs (NumPy's promotion, explicit)."""
    onnx = g.onnx
    to = onnx.helper.np_dtype_to_tensor_dtype(node.dtype)
    return [
        name if p.dtype == node.dtype else g.op("Cast", [name], to=to)
        for p, name in zip(node.parents, inputs, strict=True)
    ]


def operator(op_type: str) -> Export:
    """The primitive is ONNX's op_type on the same inputs."""
    return lambda g, node, inputs: g.op(op_type, same_dtype(g, node, inputs))


def with_number(op_type: str, number: float, first: bool = False) -> Export:
    """op_type(x, number) (or op_type(number, x) with first): log1p = Log(x + 1) and the like."""

    def write(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
        constant = g.constant(np.asarray(number, node.dtype))
        return g.op(op_type, [constant, inputs[0]] if first else [inputs[0], constant])

    return write


def then(first: Export, op_type: str, number: float) -> Export:
    """op_type(first(x), number): expm1 = Exp(x) - 1, log2 = Log(x) / ln 2."""

    def write(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
        inner = first(g, node, inputs)
        return g.op(op_type, [inner, g.constant(np.asarray(number, node.dtype))])

    return write


def axes_of(node: Tensor, param: str = "axis") -> list[int]:
    """The node's axis param as a list (None: every axis of its input)."""
    axis = node.params.get(param)
    ndim = node.parents[0].ndim
    if axis is None:
        return list(range(ndim))
    return list(axis) if isinstance(axis, tuple) else [axis]


def reduction(op_type: str) -> Export:
    def write(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
        axes = axes_of(node)
        keepdims = int(bool(node.params.get("keepdims", False)))
        if not axes:  # axis=() or a 0-d input: nothing to reduce (ONNX would reduce all axes)
            return g.op("Identity", inputs)
        return g.op(op_type, [inputs[0], g.constant(np.asarray(axes, np.int64))], keepdims=keepdims)

    return write


def log_softmax(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    axis = node.params.get("axis", -1)
    if isinstance(axis, int):
        return g.op("LogSoftmax", inputs, axis=axis)
    axes = g.constant(np.asarray(axes_of(node), np.int64))  # x - logsumexp(x) over the axes
    return g.op("Sub", [inputs[0], g.op("ReduceLogSumExp", [inputs[0], axes], keepdims=1)])


def pow_scalar(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    exponent = g.constant(np.asarray(node.params["exponent"], node.dtype))
    return g.op("Pow", [inputs[0], exponent])


def sign(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    at_zero = node.params.get("at_zero", 0.0)
    out = g.op("Sign", inputs)
    if at_zero == 0:
        return out
    zero = g.constant(np.zeros((), node.dtype))
    is_zero = g.op("Equal", [inputs[0], zero])
    return g.op("Where", [is_zero, g.constant(np.asarray(at_zero, node.dtype)), out])


def clip(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    bounds = []
    for param in ("a_min", "a_max"):
        bound = node.params.get(param)
        if bound is not None and np.ndim(bound) != 0:
            raise NotImplementedError(
                f"onnx.export: clip with an array bound (shape {np.shape(bound)}): ONNX's Clip "
                "takes numbers; use an.minimum(an.maximum(x, lo), hi)"
            )
        bounds.append("" if bound is None else g.constant(np.asarray(bound, node.dtype)))
    return g.op("Clip", [inputs[0], *bounds])


def astype(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    return g.op("Cast", inputs, to=g.onnx.helper.np_dtype_to_tensor_dtype(node.dtype))


def zeros_like(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    value = g.onnx.numpy_helper.from_array(np.zeros(1, node.dtype), "value")
    return g.op("ConstantOfShape", [g.op("Shape", inputs)], value=value)


def target_shape(g: GraphWriter, node: Tensor, batch_length: int) -> str:
    """The node's shape as a constant; its first length `batch_length` (0: Reshape's "as the
    input's", 1: Expand's "as the input's") if its first axis is the batch."""
    shape = list(node.shape)
    if id(node) in g.batched:
        x = node.parents[0]  # (Expand aligns shapes from the right: the same rank, or not 0)
        if id(x) not in g.batched or (batch_length == 1 and x.ndim != node.ndim):
            raise ValueError(
                f"onnx.export: dynamic_batch: {node.op.name} moves the batch axis (input shape "
                f"{x.shape}, output shape {node.shape}); export with "
                "dynamic_batch=False, or keep the batch axis first"
            )
        shape[0] = batch_length
    return g.constant(np.asarray(shape, np.int64))


def reshape(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    return g.op("Reshape", [inputs[0], target_shape(g, node, 0)])


def broadcast_to(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    return g.op("Expand", [inputs[0], target_shape(g, node, 1)])


def transpose(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    axes = node.params.get("axes")
    perm = list(reversed(range(node.ndim))) if axes is None else list(axes)
    return g.op("Transpose", inputs, perm=perm) if perm else g.op("Identity", inputs)


def cumsum(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    axis = node.params.get("axis")
    x = inputs[0]
    if axis is None:  # over the flattened input
        x, axis = g.op("Reshape", [x, g.constant(np.asarray([-1], np.int64))]), 0
    return g.op("CumSum", [x, g.constant(np.asarray(axis, np.int64))])


def concatenate(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    axis = node.params.get("axis", 0)
    if axis is None:
        flat = g.constant(np.asarray([-1], np.int64))
        inputs, axis = [g.op("Reshape", [x, flat]) for x in inputs], 0
    return g.op("Concat", same_dtype(g, node, inputs), axis=axis)


def pad(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    widths = np.asarray(node.params["pad_width"], np.int64)  # (before, after) per axis
    pads = g.constant(np.concatenate([widths[:, 0], widths[:, 1]]))
    value = g.constant(np.asarray(node.params.get("constant_values", 0.0), node.dtype))
    return g.op("Pad", [inputs[0], pads, value], mode="constant")


def einsum(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    return g.op("Einsum", same_dtype(g, node, inputs), equation=node.params["subscripts"])


def getitem(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    """Basic indexing (integers, slices with steps, None, ...) as Slice, Squeeze and Unsqueeze;
    advanced indexing as a Gather of the flattened input at the positions the index picks."""
    x = node.parents[0]
    items = node.params["index"]
    items = items if isinstance(items, tuple) else (items,)
    if not all(is_basic(item) or is_integer(item) for item in items):
        # advanced indexing (arrays, masks): the index is a constant, so the elements it picks
        # are known now: their positions in the flattened x, gathered
        if id(x) in g.batched:
            raise ValueError(
                f"onnx.export: dynamic_batch: an advanced index {node.params['index']!r} of a "
                f"tensor of shape {x.shape} with a batch axis; export with dynamic_batch=False"
            )
        positions = np.arange(x.size, dtype=np.int64).reshape(x.shape)[node.params["index"]]
        flat = g.op("Reshape", [inputs[0], g.constant(np.asarray([-1], np.int64))])
        return g.op("Gather", [flat, g.constant(positions)], axis=0)
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if ellipses:  # (NumPy allows one) the axes it stands for, as full slices
        at = ellipses[0]
        used = sum(item is not None for item in items) - 1
        items = items[:at] + (slice(None),) * (x.ndim - used) + items[at + 1 :]
    starts, ends, axes, steps, squeezed, inserted = [], [], [], [], [], []
    axis, out_axis = 0, 0
    for item in items:
        if item is None:
            inserted.append(out_axis)
            out_axis += 1
            continue
        length = x.shape[axis]
        if isinstance(item, slice) and item == slice(None):  # the whole axis: nothing to slice
            out_axis += 1
            axis += 1
            continue
        if axis == 0 and id(x) in g.batched and not (is_integer(item) and item >= 0):
            raise ValueError(
                f"onnx.export: dynamic_batch: the index {node.params['index']!r} takes part of "
                f"the batch axis of a tensor of shape {x.shape} relative to its length; export "
                "with dynamic_batch=False"
            )
        if isinstance(item, slice):
            start, stop, step = item.indices(length)
            if step < 0 and stop < 0:  # to the start: ONNX's end is exclusive, -1 would wrap
                stop = -(2**62)
            starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
            out_axis += 1
        else:  # an integer: a slice of one, then squeezed
            i = int(item) % length
            starts.append(i), ends.append(i + 1), axes.append(axis), steps.append(1)
            squeezed.append(axis)
        axis += 1
    out = inputs[0]
    if axes:
        out = g.op(
            "Slice",
            [out, *(g.constant(np.asarray(v, np.int64)) for v in (starts, ends, axes, steps))],
        )
    if squeezed:
        out = g.op("Squeeze", [out, g.constant(np.asarray(squeezed, np.int64))])
    if inserted:
        out = g.op("Unsqueeze", [out, g.constant(np.asarray(inserted, np.int64))])
    return out


def pair_list(value: Any) -> list[int]:
    return [int(v) for v in value]


def conv2d(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    p = node.params
    (ph, pw) = p["padding"]
    return g.op(
        "Conv",
        same_dtype(g, node, inputs),
        strides=pair_list(p["stride"]),
        pads=[ph, pw, ph, pw],
        dilations=pair_list(p["dilation"]),
        kernel_shape=list(node.parents[1].shape[2:]),
    )


def pool(op_type: str, **extra: Any) -> Export:
    def write(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
        p = node.params
        (ph, pw) = p["padding"]
        return g.op(
            op_type,
            inputs,
            kernel_shape=pair_list(p["kernel_size"]),
            strides=pair_list(p["stride"]),
            pads=[ph, pw, ph, pw],
            **extra,
        )

    return write


def extreme_index(op_type: str) -> Export:
    def write(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
        axis, keepdims = node.params.get("axis"), node.params.get("keepdims", False)
        x = inputs[0]
        if axis is None:
            x, axis = g.op("Reshape", [x, g.constant(np.asarray([-1], np.int64))]), 0
            out = g.op(op_type, [x], axis=0, keepdims=0)
            if keepdims:
                shape = g.constant(np.ones(node.parents[0].ndim, np.int64))
                out = g.op("Reshape", [out, shape])
            return out
        return g.op(op_type, [x], axis=axis, keepdims=int(bool(keepdims)))

    return write


def not_equal(g: GraphWriter, node: Tensor, inputs: list[str]) -> str:
    return g.op("Not", [g.op("Equal", same_types(g, node, inputs))])


def comparison(op_type: str) -> Export:
    return lambda g, node, inputs: g.op(op_type, same_types(g, node, inputs))


def same_types(g: GraphWriter, node: Tensor, inputs: list[str]) -> list[str]:
    """A comparison's operands in one dtype: NumPy's promotion of the two."""
    common = np.result_type(*(p.dtype for p in node.parents))
    to = g.onnx.helper.np_dtype_to_tensor_dtype(common)
    return [
        name if p.dtype == common else g.op("Cast", [name], to=to)
        for p, name in zip(node.parents, inputs, strict=True)
    ]


EXPORTS: dict[str, Export] = {
    "add": operator("Add"),
    "sub": operator("Sub"),
    "mul": operator("Mul"),
    "div": operator("Div"),
    "neg": operator("Neg"),
    "pow": operator("Pow"),
    "pow_scalar": pow_scalar,
    "matmul": operator("MatMul"),
    "exp": operator("Exp"),
    "log": operator("Log"),
    "sqrt": operator("Sqrt"),
    "sigmoid": operator("Sigmoid"),
    "softplus": operator("Softplus"),
    "tanh": operator("Tanh"),
    "relu": operator("Relu"),
    "abs": operator("Abs"),
    "sign": sign,
    "maximum": operator("Max"),
    "minimum": operator("Min"),
    "sin": operator("Sin"),
    "cos": operator("Cos"),
    "tan": operator("Tan"),
    "arcsin": operator("Asin"),
    "arccos": operator("Acos"),
    "arctan": operator("Atan"),
    "sinh": operator("Sinh"),
    "cosh": operator("Cosh"),
    "log1p": lambda g, node, inputs: g.op("Log", [with_number("Add", 1.0)(g, node, inputs)]),
    "expm1": then(operator("Exp"), "Sub", 1.0),
    "log2": then(operator("Log"), "Div", math.log(2)),
    "log10": then(operator("Log"), "Div", math.log(10)),
    "exp2": with_number("Pow", 2.0, first=True),
    "erf": operator("Erf"),
    "where": lambda g, node, inputs: g.op("Where", [inputs[0], *same_dtype(g, node, inputs)[1:]]),
    "clip": clip,
    "sum": reduction("ReduceSum"),
    "max": reduction("ReduceMax"),
    "prod": reduction("ReduceProd"),
    "logsumexp": reduction("ReduceLogSumExp"),
    "log_softmax": log_softmax,
    "cumsum": cumsum,
    "broadcast_to": broadcast_to,
    "reshape": reshape,
    "transpose": transpose,
    "getitem": getitem,
    "concatenate": concatenate,
    "pad": pad,
    "einsum": einsum,
    "astype": astype,
    "copy": operator("Identity"),
    "zeros_like": zeros_like,
    "conv2d": conv2d,
    "avg_pool2d": pool("AveragePool", count_include_pad=1),
    "max_pool2d": pool("MaxPool"),
    # outside the graph: masks and indices computed from the inputs
    "less": comparison("Less"),
    "less_equal": comparison("LessOrEqual"),
    "greater": comparison("Greater"),
    "greater_equal": comparison("GreaterOrEqual"),
    "equal": comparison("Equal"),
    "not_equal": not_equal,
    "argmax": extreme_index("ArgMax"),
    "argmin": extreme_index("ArgMin"),
}
