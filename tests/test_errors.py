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
        "arrays of two libraries in one op",
        "import array_api_strict as xp; an.tensor(xp.ones(3)) + an.tensor(np.ones(3))",
        TypeError,
        "add: the operands are arrays of different libraries "
        "(array_api_strict._array_object.Array of shape (3,), numpy.ndarray of shape "
        "(3,)); autonet does not move values between libraries (or devices) on its own: "
        "convert one first, an.tensor(xp.asarray(a)) into library xp or t.numpy() into "
        "NumPy, and model.to(xp) for a model's parameters",
    ),
    (
        "vmap over another library's arrays",
        "import array_api_strict as xp; an.vmap(lambda x: x * 2)(an.tensor(xp.ones((3, 2))))",
        NotImplementedError,
        "vmap: argument 0 (shape (3, 2)) holds array_api_strict arrays; vmap's batching "
        "rules are written for NumPy arrays: map over NumPy arrays, or loop over the "
        "examples (or use the library's own vmap, such as torch.func.vmap)",
    ),
    (
        "erf on a library without one",
        "import array_api_strict as xp; an.erf(an.tensor(xp.ones(3)))",
        NotImplementedError,
        "erf: array_api_strict has no erf and the Array API standard none either; use "
        "nn.GELU(approximate='tanh') rather than the exact GELU, or NumPy or PyTorch "
        "arrays (input shapes (3,), dtypes float64)",
    ),
    (
        "onnx.export of an integer input",
        'an.onnx.export(lambda i: i * 2.0, np.arange(3), "int.onnx")',
        TypeError,
        "onnx.export: example input 0 has dtype int64; only floating-point inputs are "
        "supported (an integer input used as an index would be frozen at the example's "
        "values)",
    ),
    (
        "onnx.export of a primitive without an ONNX operator",
        'cube = an.Primitive("cube", lambda x: x**3, lambda g, out, x:'
        ' 3 * g * x**2); an.onnx.export(cube, np.ones(2), "cube.onnx")',
        NotImplementedError,
        "onnx.export: primitive 'cube' (output shape (2,)) has no ONNX operator in autonet's "
        "exporter (autonet.onnx.EXPORTS lists those that have); write the function with the "
        "table's primitives, or add an entry to EXPORTS",
    ),
    (
        "onnx.export with an opset older than 18",
        'an.onnx.export(lambda x: x * 2, np.ones(2), "old.onnx", opset=13)',
        ValueError,
        "onnx.export: opset 13 is older than 18, the first in which every reduction takes its "
        "axes as an input; pass opset=18 or newer",
    ),
    (
        "vmap of a function that branches on a tensor's value",
        "an.vmap(lambda x: x if x.sum() > 0 else -x)(np.ones((3, 2)))",
        an.ValuesNeededError,
        "vmap: the truth value of a tensor (an `if` or `while` on it) needs the values of one "
        "example, but inside vmap a tensor of shape () stands for a whole batch (shape (3,)); "
        "compute with autonet operations instead (an.where(x > 0, a, b) for an `if`, a mask "
        "for a loop), or call the function outside vmap",
    ),
    (
        "vmap over axes of different lengths",
        "an.vmap(lambda x, y: x * y)(np.ones(3), np.ones(4))",
        ValueError,
        "vmap: the mapped axes have different lengths [3, 4]; every mapped argument needs the "
        "same number of examples",
    ),
    (
        "vmap over an axis out of range",
        "an.vmap(lambda x: x, in_axes=2)(np.ones((3, 2)))",
        ValueError,
        "vmap: in_axes=2 is out of range for argument 0 of shape (3, 2) (2 axes); map over an "
        "axis from -2 to 1",
    ),
    (
        "backward() inside vmap",
        "an.vmap(lambda x: (x * an.tensor(2.0, requires"
        "_grad=True)).sum().backward())(np.ones((3, 2)))",
        RuntimeError,
        "backward: this tensor (shape ()) is batched by vmap, and .grad would hold the whole "
        "batch's gradients; inside vmap take gradients with an.grad or an.value_and_grad (as "
        "JAX and torch.func do), e.g. an.vmap(an.grad(loss), in_axes=(None, 0, 0))(w, X, Y)",
    ),
    (
        "differentiating through nested vmaps",
        "an.vmap(lambda row: an.vmap(lambda v: v * 2)(row)"
        ")(an.tensor(np.ones((3, 2)), requires_grad=True))",
        NotImplementedError,
        "vmap: argument 0 (shape (2,)) requires grad and is mapped by an enclosing vmap too; "
        "differentiating through nested vmaps is not supported: put the derivative inside the "
        "innermost map",
    ),
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
        "a format spec for a tensor with several elements",
        "f'{an.tensor(np.ones(3)):.4f}'",
        TypeError,
        "format: the format spec '.4f' is for one number, but this tensor has shape (3,) "
        "(3 elements); format a one-element tensor (e.g. t.sum() or t[0]), or the elements one by "
        "one",
    ),
    (
        "round() of a tensor with several elements",
        "round(an.tensor(np.ones(3)))",
        TypeError,
        "round: only a one-element tensor can be rounded to a Python number, this one has shape "
        "(3,); to round each element use np.round(t.numpy(), ndigits) (a constant, outside the "
        "graph)",
    ),
    (
        "cross_entropy with float class indices",
        "an.nn.functional.cross_entropy(an.tensor(np.ones((3, 4))), np.array([0.0, 1.0, 3.0]))",
        TypeError,
        "cross_entropy: a 1-D target holds class indices, which must be integers, got dtype "
        "float64 (target shape (3,), logits shape (3, 4)); convert it with target.astype(int), or "
        "pass class probabilities of shape (3, 4)",
    ),
    (
        "a drawing written into a folder that does not exist",
        "an.render(an.tensor(1.0), 'no/such/folder/x.dot')",
        FileNotFoundError,
        "render: there is no folder 'no/such/folder' to write 'x.dot' in; create it first, or "
        "give a path in an existing folder",
    ),
    (
        "a drawing's precision that is not a number of digits",
        "an.draw(an.tensor([1.0]), precision=0)",
        ValueError,
        "draw: precision is the number of significant digits printed, a whole number >= 1; got 0",
    ),
    (
        "a drawing asked to expand a module it does not have",
        "w = an.tensor([1.0], requires_grad=True, name='layer.w'); "
        "an.draw((w * 2).sum(), expand=['layer.x'])",
        ValueError,
        "draw: expand names ['layer.x'], not modules of the drawing; its modules (the prefixes of "
        "parameter names, layers.0 for layers.0.weight) are ['layer']",
    ),
    (
        "a drawing's expand that is neither a flag nor names",
        "an.draw(an.tensor([1.0]), expand=3)",
        TypeError,
        "draw: expand must be True, False, None or a list of module names, got int",
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
        "derive() after backward() freed the graph",
        "x = an.tensor(np.ones(3), requires_grad=True); y = x.exp().sum(); y.backward(); "
        "an.derive(y, wrt=[x])",
        RuntimeError,
        "derive: the graph through sum (output shape ()) was freed by backward(), so there is "
        "nothing to derive from; call derive before backward(), or keep the graph with "
        "backward(retain_graph=True)",
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
    (
        "a list of modules assigned to a module (use ModuleList)",
        "m = an.nn.Module(); m.layers = [an.nn.Linear(2, 2), an.nn.Tanh()]",
        TypeError,
        "Module: attribute 'layers' is a list holding Modules; parameters(), state_dict() and "
        "train() do not look inside it, so its layers would be silently left out. Wrap it: "
        "self.layers = an.nn.ModuleList(...)",
    ),
    (
        "a layer given an input with the wrong number of channels",
        "an.nn.Conv2d(3, 8, 3)(an.tensor(np.ones((2, 4, 8, 8))))",
        ValueError,
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), dilation=(1, 1), "
        "bias=True): expected input of shape (N, 3, H, W), got (2, 4, 8, 8); the numbers are "
        "the sizes the layer was built for: build it for this input, or reshape the input",
    ),
    (
        "batch norm in training with one value per channel",
        "an.nn.BatchNorm1d(4)(an.tensor(np.ones((1, 4))))",
        ValueError,
        "batch_norm: input of shape (1, 4) has 1 value per channel; training needs more than 1 "
        "to estimate a variance (as PyTorch); use a larger batch, or eval mode",
    ),
    (
        "embedding indices that are not integers",
        "an.nn.Embedding(10, 3)(np.array([1.0, 2.0]))",
        TypeError,
        "embedding: indices must be integers, got dtype float64 (shape (2,)); convert them with "
        ".astype(int)",
    ),
    (
        "embedding indices out of range",
        "an.nn.Embedding(10, 3)(np.array([3, 10]))",
        IndexError,
        "embedding: indices must be in [0, 10) for a weight of shape (10, 3), got values in [3, "
        "10]",
    ),
    (
        "load_state_dict of a state with missing entries",
        "an.nn.Linear(2, 3).load_state_dict({'weight': np.ones((2, 3))})",
        ValueError,
        "load_state_dict: the state does not fit Linear (nothing was changed): missing 'bias' "
        "(shape (3,)). Load a state saved from a model built with the same layer sizes and "
        "options, or pass strict=False to load the entries whose names match",
    ),
    (
        "an .html page of a drawing not made by an.draw",
        "an.viz.Drawing().save('graph.html')",
        ValueError,
        "render: an .html page ('graph.html') shows the tensors' values and gradients, which DOT "
        "source lacks; save a drawing made by an.draw (an.render(root, path) or "
        "an.draw(root).save(path)), or write .svg",
    ),
    (
        "load_digits with n_class outside 1..10",
        "from autonet.datasets import load_digits; load_digits(n_class=11)",
        ValueError,
        "load_digits: n_class must be an integer in 1..10 (it keeps the digits 0..n_class-1), "
        "got 11",
    ),
    (
        "fit on no samples",
        "an.nn.fit(an.nn.Linear(2, 1), np.zeros((0, 2)), np.zeros((0, 1)))",
        ValueError,
        "fit: X has no samples (shape (0, 2)); pass at least one",
    ),
    (
        "optimizer load_state_dict of a state for another number of parameters",
        "sgd = an.optim.SGD(an.nn.Linear(2, 3).parameters(), lr=0.1)\n"
        "sgd.load_state_dict(an.optim.SGD(an.nn.Linear(2, 3, bias=False).parameters(), "
        "lr=0.1).state_dict())",
        ValueError,
        "SGD.load_state_dict: the state lists 1 parameter(s), this optimizer has 2 (nothing "
        "was changed); load a state saved from an optimizer of the same model, built the "
        "same way",
    ),
    (
        "optimizer load_state_dict of a state of another shape",
        "w = an.tensor(np.ones(3), requires_grad=True); adam = an.optim.Adam([w]); w.grad = "
        "np.ones(3); adam.step()\n"
        "state = adam.state_dict(); state['state'][0]['exp_avg'] = np.zeros(4)\n"
        "adam.load_state_dict(state)",
        ValueError,
        "Adam.load_state_dict: 'exp_avg' of parameter 0 has shape (4,) and dtype float64, "
        "but the parameter has shape (3,) and dtype float64 (nothing was changed); load a "
        "state saved from an optimizer of the same model",
    ),
    (
        "optimizer load_state_dict of another optimizer's state",
        "params = an.nn.Linear(2, 3).parameters()\n"
        "an.optim.SGD(params, lr=0.1).load_state_dict(an.optim.Adam(params).state_dict())",
        ValueError,
        "SGD.load_state_dict: the state holds ['amsgrad', 'betas', "
        "'decoupled_weight_decay', 'eps', 'lr', 'weight_decay'], but SGD's are "
        "['dampening', 'lr', 'momentum', 'nesterov', 'weight_decay']; was it saved from "
        "another optimizer or scheduler? (nothing was changed)",
    ),
    (
        "optimizer load_state_dict of a model's state_dict",
        "model = an.nn.Linear(2, 3)\n"
        "an.optim.SGD(model.parameters(), lr=0.1).load_state_dict(model.state_dict())",
        ValueError,
        "SGD.load_state_dict: expected {'state': {...}, 'param_groups': [...]} as "
        "optimizer.state_dict() returns, got keys ['bias', 'weight']; pass the optimizer's "
        "part of the checkpoint (checkpoint['optimizer'])",
    ),
    (
        "scheduler load_state_dict of another schedule's state",
        "sgd = an.optim.SGD(an.nn.Linear(2, 3).parameters(), lr=0.1)\n"
        "an.optim.CosineAnnealingLR(sgd, T_max=10).load_state_dict(an.optim.StepLR(sgd, "
        "step_size=2).state_dict())",
        ValueError,
        "CosineAnnealingLR.load_state_dict: the state holds ['base_lr', 'gamma', "
        "'last_epoch', 'step_size'], but CosineAnnealingLR's are ['T_max', 'base_lr', "
        "'eta_min', 'last_epoch']; was it saved from another optimizer or scheduler? "
        "(nothing was changed)",
    ),
    (
        "clip_grad_norm_ of a non-finite gradient, error_if_nonfinite=True",
        "w = an.tensor(np.ones(2), requires_grad=True); w.grad = np.array([np.inf, 1.0])\n"
        "an.nn.utils.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)",
        RuntimeError,
        "clip_grad_norm_: the total norm of order 2.0 of the gradients is inf, so they "
        "cannot be clipped; find the non-finite gradient (an.detect_anomaly() names the "
        "operation), or pass error_if_nonfinite=False to scale by the non-finite norm "
        "anyway",
    ),
    (
        "clip_grad_norm_ with a norm_type that is not a number",
        "w = an.tensor(np.ones(2), requires_grad=True); w.grad = np.ones(2)\n"
        "an.nn.utils.clip_grad_norm_([w], 1.0, norm_type='fro')",
        ValueError,
        "clip_grad_norm_: norm_type must be a number, inf or 'inf', got 'fro'",
    ),
    (
        "SGD with nesterov=True but no momentum",
        "an.optim.SGD(an.nn.Linear(2, 3).parameters(), lr=0.1, nesterov=True)",
        ValueError,
        "SGD: nesterov=True needs a momentum > 0 and dampening 0, got momentum 0.0 and "
        "dampening 0.0",
    ),
    (
        "ReduceLROnPlateau with a factor of 1 or more",
        "an.optim.ReduceLROnPlateau(an.optim.SGD(an.nn.Linear(2, 3).parameters(), lr=0.1), "
        "factor=2.0)",
        ValueError,
        "ReduceLROnPlateau: factor must be < 1, got 2.0",
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
