"""Every bad input of the public API raises a clear exception: its type and exact message.

Each case is a line of user code, run as written; docs/errors.md lists the same cases with the
same messages, and the last test keeps the two in step.
"""

import linecache
import pathlib

import numpy as np
import pytest

import autonet as an

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "errors.md"

# (bad input, code, exception type, exact message)
CASES = [
    (
        "a clip bound that requires grad",
        "x = an.tensor([0.0, 2.0], requires_grad=True); "
        "an.clip(x, an.tensor([0.5, 0.5], requires_grad=True), 1.0)",
        TypeError,
        "clip: a bound of shape (2,) requires grad, but clip's bounds are constants and would "
        "silently get no gradient; to differentiate the bounds use "
        "an.minimum(an.maximum(x, lo), hi), or pass lo.detach()",
    ),
    (
        "shapes that do not broadcast",
        "an.tensor(np.ones((2, 3))) + an.tensor(np.ones(4))",
        ValueError,
        "add: shapes (2, 3) and (4,) cannot be broadcast together (dtypes float64, float64): NumPy "
        "broadcasting compares shapes from the last axis and each pair of lengths must be equal or "
        "1; reshape an operand (e.g. x.reshape(-1, 1)) to line them up",
    ),
    (
        "matmul, inner lengths differ",
        "an.tensor(np.ones((2, 3))) @ an.tensor(np.ones((4, 5)))",
        ValueError,
        "matmul: shapes (2, 3) and (4, 5) are not aligned (3 != 4): the last axis of the first "
        "operand must match the second-to-last axis of the second (transpose one of them?)",
    ),
    (
        "matmul, batch axes do not broadcast",
        "an.tensor(np.ones((2, 2, 3))) @ an.tensor(np.ones((3, 3, 4)))",
        ValueError,
        "matmul: shapes (2, 2, 3) and (3, 3, 4): the batch axes (all but the last two), (2,) and "
        "(3,), cannot be broadcast together; make each pair of batch lengths equal, or 1",
    ),
    (
        "matmul of a 0-d tensor",
        "an.tensor(2.0) @ an.tensor(np.ones(3))",
        ValueError,
        "matmul: shapes () and (3,): matmul needs operands of at least 1 dimension; multiply by a "
        "scalar with * instead",
    ),
    (
        "backward() on a non-scalar without grad",
        "(an.tensor(np.ones(3), requires_grad=True) * 2).backward()",
        RuntimeError,
        "backward: grad can be implied only for a one-element output, but the output has shape "
        "(3,); reduce it first (e.g. loss.sum()) or pass grad=an array of shape (3,)",
    ),
    (
        "backward(grad) of the wrong shape",
        "(an.tensor(np.ones(3), requires_grad=True) * 2).backward(grad=np.ones(4))",
        ValueError,
        "backward: grad has shape (4,) but the output has shape (3,); pass a gradient of the "
        "output's shape",
    ),
    (
        "backward(grad) of the wrong dtype",
        "(an.tensor(np.ones(3), requires_grad=True) * 2).backward(grad=np.ones(3, np.float32))",
        TypeError,
        "backward: grad has dtype float32 but the output has dtype float64; convert it with "
        ".astype('float64')",
    ),
    (
        "backward() on a tensor that does not require grad",
        "(an.tensor(np.ones(3)) * 2).sum().backward()",
        RuntimeError,
        "backward: this tensor (shape ()) does not require grad: none of the tensors it was "
        "computed from has requires_grad=True (or it was computed under no_grad)",
    ),
    (
        "requires_grad=True on integer data",
        "an.tensor(np.arange(3), requires_grad=True)",
        TypeError,
        "tensor: requires_grad=True needs floating-point data, got dtype int64; pass "
        "dtype=np.float64 (or float32) or convert with .astype(float)",
    ),
    (
        "requires_grad set later on integer data",
        "t = an.tensor(np.arange(3)); t.requires_grad = True; (t * 2.0).sum().backward()",
        TypeError,
        "backward: an input of mul (shape (3,), dtype int64) has requires_grad=True but integer "
        "data; only floating-point tensors can hold gradients: convert it with .astype(float) "
        "before the forward pass",
    ),
    (
        "index out of range",
        "an.tensor(np.ones((2, 3)))[:, 3]",
        IndexError,
        "getitem: index 3 is out of bounds for axis 1 with size 3 (tensor shape (2, 3), index "
        "(slice(None, None, None), 3))",
    ),
    (
        "too many indices",
        "an.tensor(np.ones(3))[0, 0]",
        IndexError,
        "getitem: too many indices for array: array is 1-dimensional, but 2 were indexed (tensor "
        "shape (3,), index (0, 0))",
    ),
    (
        "an index that is not an integer",
        "an.tensor(np.ones(3))[1.5]",
        IndexError,
        "getitem: only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and "
        "integer or boolean arrays are valid indices (tensor shape (3,), index 1.5)",
    ),
    (
        "axis out of range",
        "an.tensor(np.ones((2, 3))).sum(axis=2)",
        ValueError,
        "sum: axis 2 is out of range for a tensor of shape (2, 3) (ndim 2); use an axis in [-2, 1]",
    ),
    (
        "the same axis twice",
        "an.tensor(np.ones((2, 3))).sum(axis=(0, -2))",
        ValueError,
        "sum: axis (0, -2) names an axis twice (shape (2, 3)); list each axis once",
    ),
    (
        "swapaxes with an axis out of range",
        "an.tensor(np.ones((2, 3))).swapaxes(0, 5)",
        ValueError,
        "swapaxes: axis 5 is out of range for a tensor of shape (2, 3) (ndim 2); use an axis in "
        "[-2, 1]",
    ),
    (
        "transpose with a repeated axis",
        "an.tensor(np.ones((2, 3))).transpose(0, 0)",
        ValueError,
        "transpose: axis (0, 0) names an axis twice (shape (2, 3)); list each axis once",
    ),
    (
        "reshape to a different size",
        "an.tensor(np.ones((2, 3))).reshape(4)",
        ValueError,
        "reshape: cannot reshape a tensor of shape (2, 3) (6 elements) into shape (4,); the sizes "
        "must match (one length may be -1)",
    ),
    (
        "concatenate, shapes differ off the axis",
        "an.concatenate([an.tensor(np.ones((2, 3))), an.tensor(np.ones((2, 4)))])",
        ValueError,
        "concatenate: all the input array dimensions except for the concatenation axis must match "
        "exactly, but along dimension 1, the array at index 0 has size 3 and the array at index 1 "
        "has size 4 (input shapes (2, 3) and (2, 4), dtypes float64, float64, axis=0)",
    ),
    (
        "concatenate of nothing",
        "an.concatenate([])",
        ValueError,
        "concatenate: needs at least one tensor",
    ),
    (
        "concatenate of 0-d tensors",
        "an.concatenate([an.tensor(1.0), an.tensor(2.0)])",
        ValueError,
        "concatenate: 0-d tensors cannot be concatenated; use stack",
    ),
    (
        "stack of different shapes",
        "an.stack([an.tensor(np.ones(2)), an.tensor(np.ones(3))])",
        ValueError,
        "stack: all tensors must have the same shape, got [(2,), (3,)]",
    ),
    (
        "non-numeric data",
        "an.tensor('abc')",
        TypeError,
        "tensor: cannot make a tensor from str data (NumPy dtype <U3); pass numbers, nested lists "
        "of numbers, or a numeric ndarray",
    ),
    (
        "nested lists of unequal lengths",
        "an.tensor([[1, 2], [3]])",
        ValueError,
        "tensor: the nested lists have rows of different lengths, so they do not form an array; "
        "give every row the same length",
    ),
    (
        "astype to a non-numeric dtype",
        "an.tensor(np.ones(3)).astype(str)",
        TypeError,
        "astype: dtype <U0 is not numeric (tensor shape (3,), dtype float64); convert to a bool, "
        "integer or float dtype",
    ),
    (
        "item() of a tensor with several elements",
        "an.tensor(np.ones(3)).item()",
        ValueError,
        "item: only one-element tensors can be converted to a Python number, this one has shape "
        "(3,)",
    ),
    (
        "truth value of a tensor with several elements",
        "bool(an.tensor(np.ones(3)))",
        ValueError,
        "the truth value of a tensor of shape (3,) is ambiguous; use (t == u).data.all() or .any()",
    ),
    (
        "mean of an empty tensor",
        "an.tensor(np.ones(0)).mean()",
        ValueError,
        "mean: no elements to average (shape (0,), axis None)",
    ),
    (
        "max of an empty tensor",
        "an.tensor(np.ones(0)).max()",
        ValueError,
        "max: cannot take the maximum over an empty axis (tensor shape (0,), axis None); an empty "
        "axis has no maximum",
    ),
    (
        "min of an empty tensor",
        "an.tensor(np.ones((2, 0))).min(axis=1)",
        ValueError,
        "min: cannot take the minimum over an empty axis (tensor shape (2, 0), axis 1); an empty "
        "axis has no minimum",
    ),
    (
        "pad with a mode other than constant",
        "an.pad(an.tensor(np.ones(3)), 1, mode='edge')",
        ValueError,
        "pad: mode 'edge' is not supported; only mode='constant' is",
    ),
    (
        "einsum subscripts for another number of operands",
        "an.einsum('ij,jk->ik', an.tensor(np.ones((2, 3))))",
        ValueError,
        "einsum: subscripts 'ij,jk->ik' name 2 operand(s), but 1 were given",
    ),
    (
        "einsum of nothing",
        "an.einsum('->')",
        ValueError,
        "einsum: needs at least one operand",
    ),
    (
        "an axis of a 0-d tensor",
        "an.tensor(1.0).mean(axis=0)",
        ValueError,
        (
            "mean: axis 0 is out of range for a tensor of shape () (ndim 0); a 0-d tensor has no "
            "axes: use axis=None"
        ),
    ),
    (
        "transpose axes that miss an axis",
        "an.tensor(np.ones((2, 3, 4))).transpose(0, 1)",
        ValueError,
        (
            "transpose: axes (0, 1) do not order all 3 axes of a tensor of shape (2, 3, 4); give "
            "each axis once (e.g. (2, 1, 0))"
        ),
    ),
    (
        "a complex operand",
        "an.tensor([1.0, 2.0]) * 1j",
        TypeError,
        (
            "mul: dtype complex128 (the number 1j) is not real numeric; complex numbers are not "
            "supported (their gradients need a convention autonet does not define); pass the real "
            "and imaginary parts as two real tensors"
        ),
    ),
    (
        "an object array assigned to .data",
        "t = an.tensor([1.0]); t.data = np.array([object()])",
        TypeError,
        (
            "data: dtype object (assigned array of shape (1,)) is not real numeric; pass a numeric "
            "(bool, integer or floating-point) array"
        ),
    ),
    (
        "a .grad of the wrong shape",
        "x = an.tensor(np.ones(3), requires_grad=True); x.grad = np.ones((3, 1))",
        ValueError,
        (
            "grad: the assigned gradient has shape (3, 1) and dtype float64, but the tensor has "
            "shape (3,) and dtype float64; a gradient must match both (backward adds to it)"
        ),
    ),
    (
        "a .grad that is not an array",
        "x = an.tensor(np.ones(3), requires_grad=True); x.grad = [1.0, 1.0, 1.0]",
        TypeError,
        "grad: assign a Tensor, an ndarray or None, got list (tensor shape (3,), dtype float64)",
    ),
    (
        "a user's VJP that returns a number",
        (
            "cube = an.Primitive('cube', lambda x: x**3, lambda g, out, x: 3.0); "
            "cube(an.tensor([1.0], requires_grad=True)).sum().backward()"
        ),
        TypeError,
        (
            "backward: the VJP of cube for input 0 returned float 3.0, not an array; a VJP must "
            "return an array (or Tensor) of its input's shape, or one that broadcasts from it "
            "(e.g. g * 2.0 rather than 2.0)"
        ),
    ),
    (
        "a second backward() through a freed graph",
        "y = an.tensor(np.ones(3), requires_grad=True).exp().sum(); y.backward(); y.backward()",
        RuntimeError,
        "backward: the graph through sum (output shape ()) was already freed by an earlier "
        "backward(); call the first backward(retain_graph=True) to backpropagate through the same "
        "graph twice",
    ),
    (
        "retain_grad() on a tensor that does not require grad",
        "an.tensor(np.ones(3)).retain_grad()",
        RuntimeError,
        "retain_grad: this tensor does not require grad",
    ),
    (
        "grad(f) of a function with a non-scalar output",
        "an.grad(lambda x: x * 2)(np.ones(3))",
        TypeError,
        "grad: the function must return a one-element Tensor, got (3,); for a vector output use "
        "gradients(output, inputs, grad=...)",
    ),
    (
        "gradients() of an output that does not require grad",
        "an.gradients(an.tensor(np.ones(3)).sum(), [an.tensor(np.ones(3))])",
        RuntimeError,
        "gradients: the output does not require grad (no input of it has requires_grad=True)",
    ),
    (
        "jacobian(f) of a function that returns an array",
        "an.jacobian(lambda x: np.sin(x.data))(np.ones(3))",
        TypeError,
        "jacobian: the function must return a Tensor (or a tuple of Tensors), got ndarray of "
        "shape (3,); compute it from the arguments with autonet operations (an.exp(x), np.exp(x), "
        "x @ w), not from their .data",
    ),
    (
        "jvp with a tangent of the wrong shape",
        "an.jvp(an.sin, (np.ones(3),), (np.ones(4),))",
        ValueError,
        "jvp: tangent 0 has shape (4,) but primal 0 has shape (3,); each tangent must have the "
        "shape and dtype of its primal ((3,), float64)",
    ),
    (
        "jvp with a tangent of the wrong dtype",
        "an.jvp(an.sin, (np.ones(3),), (np.ones(3, np.float32),))",
        TypeError,
        "jvp: tangent 0 has dtype float32 but primal 0 has dtype float64; convert it with "
        ".astype('float64')",
    ),
    (
        "argnums out of range",
        "an.grad(lambda x, y: (x * y).sum(), argnums=2)(1.0, 2.0)",
        ValueError,
        "grad: argnums=2 is out of range for a call with 2 positional argument(s); pass positions "
        "from 0 to 1 (or negative ones counting from the end)",
    ),
    (
        "a Primitive without VJPs",
        "an.Primitive('cube', lambda x: x**3)",
        TypeError,
        "Primitive 'cube' needs one VJP per input (got none)",
    ),
    (
        "an input changed in place between forward and backward",
        "w = an.tensor([1.0, 2.0], requires_grad=True, name='w'); loss = (w * w).sum(); "
        "w.data -= 0.1; loss.backward()",
        RuntimeError,
        "backward: tensor 'w' (shape (2,), dtype float64), input 0 of mul, was modified in place "
        "(.data assigned) after mul saved it for the backward pass, so its gradient would be "
        "computed from the new value; change .data only after backward() (e.g. w.data -= lr * "
        "w.grad.data), or run the forward pass again after the change",
    ),
    (
        "NaN in the input data, under anomaly mode",
        "x = an.tensor([1.0, np.nan], name='x')\n"
        "with an.detect_anomaly(): an.tensor([1.0, 1.0], requires_grad=True) * x",
        FloatingPointError,
        "detect_anomaly: mul produced nan values, its input 1 ('x', shape (2,)) already contains "
        "nan: it comes from the data or from a tensor computed outside detect_anomaly; input "
        "shapes [(2,), (2,)], dtypes ['float64', 'float64']; created at\n"
        '    File "<example>", line 2, in <module>: with an.detect_anomaly(): '
        "an.tensor([1.0, 1.0], requires_grad=True) * x",
    ),
    (
        "log(0), division by 0, ... under anomaly mode",
        "x = an.tensor([1.0, 0.0], requires_grad=True)\nwith an.detect_anomaly(): an.log(x)",
        FloatingPointError,
        "detect_anomaly: log produced inf values, from finite inputs (e.g. log or division at 0, "
        "sqrt of a negative number, exp overflow); input shapes [(2,)], dtypes ['float64']; "
        "created at\n"
        '    File "<example>", line 2, in <module>: with an.detect_anomaly(): an.log(x)',
    ),
    (
        "an infinite gradient (sqrt at 0) under anomaly mode",
        "x = an.tensor([1.0, 0.0], requires_grad=True)\n"
        "with an.detect_anomaly(): an.sqrt(x).sum().backward()",
        FloatingPointError,
        "detect_anomaly: the gradient of sqrt for input 0 has inf values, from a finite incoming "
        "gradient: the derivative is infinite or undefined at these inputs (e.g. log or sqrt at 0, "
        "division by 0); sqrt had input shapes [(2,)], dtypes ['float64'], and was created at\n"
        '    File "<example>", line 2, in <module>: with an.detect_anomaly(): '
        "an.sqrt(x).sum().backward()",
    ),
    (
        "a NumPy function autonet does not have, on a tensor",
        "np.fft.fft(an.tensor([1.0, 2.0]))",
        TypeError,
        "np.fft.fft is not supported on autonet Tensors (it would leave the graph); use an autonet "
        "operation, or np.asarray(t) to compute on the values outside the graph",
    ),
    (
        "a NumPy ufunc autonet does not have, on a tensor",
        "np.floor(an.tensor([1.5, 2.5]))",
        TypeError,
        "np.floor is not supported on autonet Tensors (it would leave the graph); use an autonet "
        "operation, or np.asarray(t) to compute on the values outside the graph",
    ),
    (
        "a ufunc method other than a call (accumulate, outer, at)",
        "np.add.accumulate(an.tensor([1.0, 2.0]))",
        TypeError,
        "np.add.accumulate is not supported on autonet Tensors (it would leave the graph); use an "
        "autonet operation, or np.asarray(t) to compute on the values outside the graph",
    ),
    (
        "out= in a NumPy call on a tensor",
        "t = an.tensor([1.0, 2.0]); np.exp(t, out=t)",
        TypeError,
        "np.exp: out= is not supported on autonet Tensors (writing into an array would change "
        "values a graph may have recorded); use the returned tensor instead",
    ),
    (
        "a NumPy argument autonet has no parameter for (dtype=, where=, ...)",
        "np.sum(an.tensor([1.0, 2.0]), dtype=np.float32)",
        TypeError,
        "np.sum: dtype= is not supported on autonet Tensors (np.sum takes axis, keepdims here); "
        "leave it out, or call np.sum on np.asarray(t) to compute on the values outside the graph",
    ),
    (
        "conv2d of an input that is not 4-D",
        "an.nn.functional.conv2d(an.tensor(np.ones((3, 8, 8))), an.tensor(np.ones((4, 3, 3, 3))))",
        ValueError,
        "conv2d: input of shape (3, 8, 8) is not 4-D; conv2d takes inputs of shape (N, C, H, W) "
        "(for one image use x.reshape(1, *x.shape))",
    ),
    (
        "conv2d, weight channels differ from the input's",
        "an.nn.functional.conv2d(an.tensor(np.ones((2, 3, 8, 8))), an.tensor(np.ones((4, 2, 3, "
        "3))))",
        ValueError,
        "conv2d: input of shape (2, 3, 8, 8) has 3 channels but weight of shape (4, 2, 3, 3) "
        "expects 2 (weight is (out_channels, in_channels, kH, kW)); give the weight 3 input "
        "channels",
    ),
    (
        "conv2d, kernel larger than the padded input",
        "an.nn.functional.conv2d(an.tensor(np.ones((2, 3, 4, 4))), an.tensor(np.ones((4, 3, 5, "
        "5))), padding=0)",
        ValueError,
        "conv2d: the kernel spans (5, 5) but the padded input is only (4, 4) (input shape (2, 3, "
        "4, 4), padding (0, 0)); use a smaller kernel or dilation, or more padding",
    ),
    (
        "conv2d, a bias of the wrong shape",
        "an.nn.functional.conv2d(an.tensor(np.ones((2, 3, 8, 8))), an.tensor(np.ones((4, 3, 3, "
        "3))), an.tensor(np.ones(3)))",
        ValueError,
        "conv2d: bias of shape (3,) does not match weight of shape (4, 3, 3, 3); give a bias of "
        "shape (4,), one per output channel",
    ),
    (
        "conv2d with stride 0",
        "an.nn.functional.conv2d(an.tensor(np.ones((2, 3, 8, 8))), an.tensor(np.ones((4, 3, 3, "
        "3))), stride=0)",
        ValueError,
        "conv2d: stride must be an int >= 1 or a pair of them (height, width), got 0",
    ),
    (
        "max_pool2d, kernel larger than the padded input",
        "an.nn.functional.max_pool2d(an.tensor(np.ones((1, 1, 2, 2))), 3)",
        ValueError,
        "max_pool2d: the kernel spans (3, 3) but the padded input is only (2, 2) (input shape (1, "
        "1, 2, 2), padding (0, 0)); use a smaller kernel_size",
    ),
    (
        "max_pool2d with padding more than half the kernel",
        "an.nn.functional.max_pool2d(an.tensor(np.ones((1, 1, 8, 8))), 2, padding=2)",
        ValueError,
        "max_pool2d: padding (2, 2) is more than half of kernel_size (2, 2); use padding <= "
        "kernel_size // 2 (as PyTorch), so that every window holds an input element",
    ),
    (
        "avg_pool2d of an input that is not 4-D",
        "an.nn.functional.avg_pool2d(an.tensor(np.ones((8, 8))), 2)",
        ValueError,
        "avg_pool2d: input of shape (8, 8) is not 4-D; avg_pool2d takes inputs of shape (N, C, H, "
        "W) (for one image use x.reshape(1, *x.shape))",
    ),
    (
        "conv1d of an input that is not 3-D",
        "an.nn.functional.conv1d(an.tensor(np.ones((2, 3, 8, 8))), an.tensor(np.ones((4, 3, 3))))",
        ValueError,
        "conv1d: input of shape (2, 3, 8, 8) is not 3-D; conv1d takes inputs of shape (N, C, L) "
        "(for one signal use x.reshape(1, *x.shape))",
    ),
    (
        "conv1d, kernel larger than the padded input",
        "an.nn.functional.conv1d(an.tensor(np.ones((2, 3, 4))), an.tensor(np.ones((4, 3, 5))))",
        ValueError,
        "conv1d: the kernel spans 5 but the padded input is only 4 (input shape (2, 3, 4), "
        "padding 0); use a smaller kernel or dilation, or more padding",
    ),
]


def run_example(code: str) -> None:
    """Run code as a user's script named <example> (its lines visible to tracebacks)."""
    lines = [line + "\n" for line in code.split("\n")]
    linecache.cache["<example>"] = (len(code), None, lines, "<example>")
    exec(compile(code, "<example>", "exec"), {"an": an, "np": np})


@pytest.mark.parametrize("bad_input, code, error, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(bad_input, code, error, message):
    with pytest.raises(Exception) as info:
        run_example(code)
    assert type(info.value) is error
    assert str(info.value) == message


def test_float32_and_float64_mix_promotes_as_numpy_and_keeps_each_gradient_dtype():
    # not an error: documented promotion (docs/errors.md, "Not errors")
    a = an.tensor(np.ones(2, np.float32), requires_grad=True)
    b = an.tensor(np.ones(2), requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert (a * 2.0).dtype == np.float32  # a Python number takes the tensor's dtype


def docs_row(bad_input: str, code: str, error: type, message: str) -> str:
    """The case's row of the table in docs/errors.md (the message's whitespace collapsed)."""
    code_cell = "<br>".join(f"`{line}`" for line in code.split("\n"))
    return f"| {bad_input} | {code_cell} | {error.__name__} | `` {' '.join(message.split())} `` |"


def test_docs_table_lists_every_case_with_its_exact_message():
    lines = DOCS.read_text().splitlines()
    for case in CASES:
        assert docs_row(*case) in lines, f"docs/errors.md: missing or stale row for {case[0]!r}"
