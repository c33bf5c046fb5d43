"""Losses and activations as functions (as torch.nn.functional), built only from autonet's ops.

Nothing here has a backward of its own: every gradient comes from the primitive table, so each
function is differentiable to any order and can be drawn. The numerically delicate ones are
rewritten so that no intermediate overflows, and stay finite with finite gradients for inputs of
any size (tested up to |x| = 1e4):

    softplus(x)     = log(1 + exp(x))       = max(x, 0) + log1p(exp(-|x|)): a primitive
    log_sigmoid(x)  = log(sigmoid(x))       = -softplus(-x)
    log_softmax(x)  = x - log sum exp(x)    = (x - c) - log sum exp(x - c), c = max(x): a primitive
    binary_cross_entropy_with_logits(z, y)  = softplus(z) - y * z
    cross_entropy(z, t)                     = -log_softmax(z)[t]

Convolution and pooling of images (N, C, H, W), with PyTorch's argument names and weight layout
(out_channels, in_channels, kH, kW), are primitives of the table: conv2d, max_pool2d, avg_pool2d,
each with the primitives its gradient needs (their derivations are in autonet/primitives.py).

Layers' functional forms, composites of the table's primitives: leaky_relu, gelu, embedding
(integer indexing), layer_norm and batch_norm (means, variances, sqrt).

Reductions follow PyTorch: reduction="mean" (default), "sum" or "none"; `half_sse` is the
tutorial's L = 1/2 sum (o - y)^2 and always sums.

Every function takes tensors of any Array API library (backend.py): values that are
differentiated (targets of mse, class probabilities) must be arrays of the input's library, while
integer indices (class labels, embedding indices) may be NumPy arrays or the library's own:
indices are never differentiated, and are checked and resolved to positions in host memory.
Constants made here (dropout's mask, batch_norm's statistics of an empty batch) are drawn or
built with NumPy and put in the input's library and device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autonet import backend
from autonet.modes import is_recording
from autonet.nn.modules import array_like
from autonet.ops import as_tensor, erf, where
from autonet.primitives import PRIMITIVES
from autonet.tensor import Tensor, numbers_of

LOG_SOFTMAX, SOFTPLUS = PRIMITIVES["log_softmax"], PRIMITIVES["softplus"]
CONV2D, MAX_POOL2D, AVG_POOL2D = (PRIMITIVES[k] for k in ("conv2d", "max_pool2d", "avg_pool2d"))

REDUCTIONS = ("mean", "sum", "none")


def host_numbers(x: Any) -> np.ndarray:
    """numbers_of(x) (a tensor's or an array's numbers, every example's inside vmap), with
    another library's array copied to host memory: for the checks on integer indices."""
    data = x.data if isinstance(x, Tensor) else x
    return backend.to_numpy(data) if backend.is_foreign(data) else numbers_of(x)


def constant_like(values: np.ndarray, x: Tensor) -> Tensor:
    """values (a NumPy array made for x: a mask, a statistic) as a constant Tensor of x's array
    library and device; the ndarray itself when x holds one."""
    data = x.data
    return Tensor.wrap(array_like(values, data) if backend.is_foreign(data) else values)


def reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    """loss.mean(), loss.sum() or loss itself, by `reduction`."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_same_shape(output: Tensor, target: Tensor, name: str) -> None:
    """Losses compare element by element: a broadcast (N, 1) - (N,) would silently give (N, N)."""
    if output.shape != target.shape:
        raise ValueError(
            f"{name}: output shape {output.shape} and target shape {target.shape} differ; "
            f"reshape the target to {output.shape} (e.g. y.reshape(-1, 1))"
        )


def half_sse(output: Any, target: Any) -> Tensor:
    """The tutorial's loss L = 1/2 sum (o - y)^2 over all elements; dL/do = o - y."""
    output, target = as_tensor(output), as_tensor(target)
    check_same_shape(output, target, "half_sse")
    return 0.5 * ((output - target) ** 2).sum()


def mse(output: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error (o - y)^2, averaged over all elements (torch's mse_loss)."""
    output, target = as_tensor(output), as_tensor(target)
    check_same_shape(output, target, "mse")
    return reduce((output - target) ** 2, reduction, "mse")


def softplus(x: Any) -> Tensor:
    """softplus(x) = log(1 + exp(x)); gradient sigmoid(x), second derivative s (1 - s).

    One primitive of the table, computed as numpy.logaddexp(0, x) = max(x, 0) + log1p(exp(-|x|)):
    nothing overflows (exp(x) itself does past x = 709) and the relative error stays at rounding
    level for every x, softplus(-40) = 4.25e-18 included (log(1 + exp(-40)) rounds to 0). Written
    as that composite of maximum, abs and log instead, every derivative of order two would be
    wrong at 0, where the parts have kinks (0 instead of 1/4).
    """
    return SOFTPLUS(as_tensor(x))


def log_sigmoid(x: Any) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite everywhere: log(sigmoid(-800)) is -800, not -inf."""
    return -softplus(-as_tensor(x))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(exp(x) / sum exp(x)) along axis, computed as (x - c) - log(sum(exp(x - c))).

    c = max(x) along axis makes every exp(x - c) <= 1 with at least one equal to 1, so the sum
    neither overflows nor is 0. One primitive of the table (its forward takes c from the input's
    values; the result does not depend on c), with the gradient g - softmax(x) * sum(g, axis).
    """
    x = as_tensor(x)
    return LOG_SOFTMAX(x, axis=axis)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum exp(x) along axis, as exp(log_softmax(x))."""
    return log_softmax(x, axis=axis).exp()


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))] for logits z, as softplus(z) - y z.

    Since -log sigmoid(z) = softplus(-z) = softplus(z) - z and -log(1 - sigmoid(z)) = softplus(z),
    the loss is y (softplus(z) - z) + (1 - y) softplus(z) = softplus(z) - y z; the gradient is
    sigmoid(z) - y. Taking sigmoid first and then log would give log(0) = -inf for |z| > ~37.
    """
    logits, target = as_tensor(logits), as_tensor(target)
    check_same_shape(logits, target, "binary_cross_entropy_with_logits")
    return reduce(softplus(logits) - target * logits, reduction, "binary_cross_entropy_with_logits")


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """-log softmax(z)[t]: the softmax cross-entropy of logits z of shape (N, C).

    target is either N class indices (an integer array, each in [0, C)) or N rows of class
    probabilities (a float array of shape (N, C), e.g. one-hot), as torch's cross_entropy. The
    gradient with respect to z is softmax(z) - onehot(t). For logits of another library (torch,
    ...), class indices may be a NumPy array or one of that library (they pick entries, on the
    host); class probabilities must be of the logits' library.
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(
            f"cross_entropy: logits must have shape (N, C), got {logits.shape}; for one sample "
            "use logits.reshape(1, -1)"
        )
    log_p = log_softmax(logits, axis=-1)
    # the target's numbers (inside vmap, every example's: the checks hold for all of them) and
    # its shape (one example's)
    t = host_numbers(target)
    shape = target.shape if isinstance(target, Tensor) else t.shape
    if t.dtype.kind in "iu":
        n, c = logits.shape
        if shape != (n,):
            raise ValueError(
                f"cross_entropy: class-index targets must have shape ({n},) for logits of shape "
                f"{logits.shape}, got {shape}"
            )
        if t.size and (t.min() < 0 or t.max() >= c):
            raise ValueError(
                f"cross_entropy: class indices must be in [0, {c}) for {c} classes, got values in "
                f"[{t.min()}, {t.max()}]"
            )
        # a Tensor index stays one (inside vmap, each example's labels)
        loss = -log_p[np.arange(n), target if isinstance(target, Tensor) else t]
    elif len(shape) == 1:
        raise TypeError(
            f"cross_entropy: a 1-D target holds class indices, which must be integers, got dtype "
            f"{t.dtype} (target shape {shape}, logits shape {logits.shape}); convert it with "
            f"target.astype(int), or pass class probabilities of shape {logits.shape}"
        )
    else:
        probabilities = as_tensor(target)
        check_same_shape(logits, probabilities, "cross_entropy")
        loss = -(probabilities * log_p).sum(axis=-1)
    return reduce(loss, reduction, "cross_entropy")


def dropout(
    x: Any, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Inverted dropout: in training, each element is zeroed with probability p and the rest are
    scaled by 1 / (1 - p), so the expected value is unchanged and evaluation needs no rescaling.

        out = x * mask / (1 - p),   mask_i ~ Bernoulli(1 - p)      (training)
        out = x                                                   (evaluation)

    The gradient is g * mask / (1 - p): dropped units get none. The mask is drawn from rng (a
    NumPy Generator) whatever x's library, so a seed gives the same mask on every library.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    if is_recording():
        raise RuntimeError(
            f"dropout (p={p}, input shape {x.shape}): called while an.replay records a step; the "
            "recording would keep this call's random mask and apply it at every call, dropping the "
            "same units forever. Train steps with dropout eagerly (call loss_fn and backward()); "
            "replay a step without it (model.eval(), or training=False)"
        )
    rng = np.random.default_rng() if rng is None else rng
    keep = (rng.random(x.shape) >= p).astype(x.dtype)
    return x * constant_like(keep / (1 - p), x)


def pair(value: Any, param: str, name: str, least: int) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each at least `least`, as a pair."""
    pair_ = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair_) != 2 or not all(isinstance(v, (int, np.integer)) and v >= least for v in pair_):
        raise ValueError(
            f"{name}: {param} must be an int >= {least} or a pair of them (height, width), "
            f"got {value!r}"
        )
    return int(pair_[0]), int(pair_[1])


IMAGES = "(N, C, H, W) (for one image use x.reshape(1, *x.shape))"


def check_layout(x: Tensor, name: str, what: str, layout: str) -> None:
    """x must have as many axes as `layout` names, e.g. "(N, C, H, W)", which the message shows."""
    ndim = len(layout.split(")")[0].split(","))
    if x.ndim != ndim:
        raise ValueError(
            f"{name}: {what} of shape {x.shape} is not {ndim}-D; {name} takes {what}s of shape "
            f"{layout}"
        )


def check_fits(x: Tensor, span: tuple, padding: tuple, name: str, fix: str) -> None:
    """A window spanning `span` (height, width) must fit in the padded input."""
    size = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if span[0] > size[0] or span[1] > size[1]:
        raise ValueError(
            f"{name}: the kernel spans {span} but the padded input is only {size} (input shape "
            f"{x.shape}, padding {padding}); {fix}"
        )


def conv2d(
    x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1
) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch's) of images x (N, C, H, W) with weights
    w (O, C, kH, kW) and an optional bias b (O,):

        out[n, o, i, j] = b[o] + sum_{c, p, q} x[n, c, i*sh + p*dh - ph, j*sw + q*dw - pw]
                                                 * w[o, c, p, q]

    with x zero in the padding; out has shape (N, O, OH, OW), OH = (H + 2 ph - dh (kH - 1) - 1)
    // sh + 1 (likewise OW). stride, padding and dilation are ints or pairs (height, width).
    Gradients: grad_x = conv2d_input_grad(g, w) (a transposed convolution), grad_w =
    conv2d_weight_grad(x, g), grad_b = g summed over n, i, j; all differentiable again.

        >>> x = an.randn(8, 3, 28, 28, rng=np.random.default_rng(0))
        >>> w = an.randn(16, 3, 3, 3, requires_grad=True, rng=np.random.default_rng(1))
        >>> F.conv2d(x, w, padding=1).shape
        (8, 16, 28, 28)
    """
    x, w = as_tensor(x), as_tensor(w)
    stride, padding = pair(stride, "stride", "conv2d", 1), pair(padding, "padding", "conv2d", 0)
    dilation = pair(dilation, "dilation", "conv2d", 1)
    check_layout(x, "conv2d", "input", IMAGES)
    check_layout(w, "conv2d", "weight", "(out_channels, in_channels, kH, kW)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"conv2d: input of shape {x.shape} has {x.shape[1]} channels but weight of shape "
            f"{w.shape} expects {w.shape[1]} (weight is (out_channels, in_channels, kH, kW)); "
            f"give the weight {x.shape[1]} input channels"
        )
    span = (dilation[0] * (w.shape[2] - 1) + 1, dilation[1] * (w.shape[3] - 1) + 1)
    check_fits(x, span, padding, "conv2d", "use a smaller kernel or dilation, or more padding")
    out = CONV2D(x, w, stride=stride, padding=padding, dilation=dilation)
    if b is None:
        return out
    b = as_tensor(b)
    if b.shape != (w.shape[0],):
        raise ValueError(
            f"conv2d: bias of shape {b.shape} does not match weight of shape {w.shape}; give a "
            f"bias of shape ({w.shape[0]},), one per output channel"
        )
    return out + b.reshape(-1, 1, 1)


def conv1d(
    x: Any, w: Any, b: Any = None, stride: int = 1, padding: int = 0, dilation: int = 1
) -> Tensor:
    """1-D convolution of x (N, C, L) with w (O, C, K) and an optional bias b (O,): conv2d of
    images of height 1, out[n, o, i] = b[o] + sum_{c, p} x[n, c, i*stride + p*dilation - padding]
    w[o, c, p]; out has shape (N, O, OL)."""
    x, w = as_tensor(x), as_tensor(w)
    check_layout(x, "conv1d", "input", "(N, C, L) (for one signal use x.reshape(1, *x.shape))")
    check_layout(w, "conv1d", "weight", "(out_channels, in_channels, K)")
    for param, value in (("stride", stride), ("padding", padding), ("dilation", dilation)):
        if not isinstance(value, (int, np.integer)):
            raise ValueError(f"conv1d: {param} must be an int, got {value!r}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"conv1d: input of shape {x.shape} has {x.shape[1]} channels but weight of shape "
            f"{w.shape} expects {w.shape[1]} (weight is (out_channels, in_channels, K)); give "
            f"the weight {x.shape[1]} input channels"
        )
    span, size = dilation * (w.shape[2] - 1) + 1, x.shape[2] + 2 * padding
    if span > size:
        raise ValueError(
            f"conv1d: the kernel spans {span} but the padded input is only {size} (input shape "
            f"{x.shape}, padding {padding}); use a smaller kernel or dilation, or more padding"
        )
    out = conv2d(
        x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]),
        w.reshape(w.shape[0], w.shape[1], 1, w.shape[2]),
        b,
        stride=(1, stride),
        padding=(0, padding),
        dilation=(1, dilation),
    )
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def pool_params(
    x: Tensor, kernel_size: Any, stride: Any, padding: Any, name: str
) -> dict[str, tuple[int, int]]:
    """The pooling params as pairs, checked: stride defaults to kernel_size (as PyTorch)."""
    check_layout(x, name, "input", IMAGES)
    kernel_size = pair(kernel_size, "kernel_size", name, 1)
    stride = kernel_size if stride is None else pair(stride, "stride", name, 1)
    padding = pair(padding, "padding", name, 0)
    if padding[0] > kernel_size[0] // 2 or padding[1] > kernel_size[1] // 2:
        raise ValueError(
            f"{name}: padding {padding} is more than half of kernel_size {kernel_size}; use "
            "padding <= kernel_size // 2 (as PyTorch), so that every window holds an input element"
        )
    check_fits(x, kernel_size, padding, name, "use a smaller kernel_size")
    return {"kernel_size": kernel_size, "stride": stride, "padding": padding}


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """The maximum of each kernel_size window of images x (N, C, H, W), moved by stride (default
    kernel_size); padding adds -inf, which never wins. out has shape (N, C, OH, OW), OH = (H + 2 ph
    - kH) // sh + 1. The gradient sends each window's g to its maximum; among tied maxima, all of
    it goes to the first in row-major order, as PyTorch (an.max shares g among ties instead)."""
    x = as_tensor(x)
    return MAX_POOL2D(x, **pool_params(x, kernel_size, stride, padding, "max_pool2d"))


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """The mean of each kernel_size window of images x (N, C, H, W), moved by stride (default
    kernel_size); padding adds zeros that count in the mean (PyTorch's count_include_pad=True).
    The gradient spreads each window's g / (kH * kW) over its pixels."""
    x = as_tensor(x)
    return AVG_POOL2D(x, **pool_params(x, kernel_size, stride, padding, "avg_pool2d"))


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, negative_slope * x elsewhere; gradient g where x > 0, negative_slope * g
    elsewhere (at x = 0 too, as PyTorch)."""
    x = as_tensor(x)
    return where(x > 0, x, x * negative_slope)


GELU_APPROXIMATIONS = ("none", "tanh")


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """The Gaussian error linear unit, x Phi(x) with Phi the standard normal CDF:

        approximate="none"   0.5 x (1 + erf(x / sqrt(2)))
        approximate="tanh"   0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))

    built from the erf (or tanh) primitive, so every derivative is exact; the first is
    Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi).
    """
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(
            f"gelu: approximate must be one of {GELU_APPROXIMATIONS}, got {approximate!r}"
        )
    x = as_tensor(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)).tanh())
    return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))


def embedding(indices: Any, weight: Any) -> Tensor:
    """The rows of weight (num_embeddings, embedding_dim) picked by integer indices of any shape:
    out[..., :] = weight[indices[...], :], of shape indices.shape + (embedding_dim,). The gradient
    adds g's rows into the picked rows of weight (a row picked twice gets both). Negative
    indices are refused (NumPy would count them from the end; PyTorch refuses them too)."""
    weight = as_tensor(weight)
    check_layout(weight, "embedding", "weight", "(num_embeddings, embedding_dim)")
    t = backend.to_numpy(indices.data if isinstance(indices, Tensor) else indices)
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"embedding: indices must be integers, got dtype {t.dtype} (shape {t.shape}); "
            "convert them with .astype(int)"
        )
    n = weight.shape[0]
    if t.size and (t.min() < 0 or t.max() >= n):
        raise IndexError(
            f"embedding: indices must be in [0, {n}) for a weight of shape {weight.shape}, got "
            f"values in [{t.min()}, {t.max()}]"
        )
    return weight[t]


def normalized_axes(normalized_shape: Any) -> tuple[int, ...]:
    """normalized_shape (an int or a tuple of positive ints) as a tuple."""
    shape = (
        (normalized_shape,)
        if isinstance(normalized_shape, (int, np.integer))
        else tuple(normalized_shape)
    )
    if not shape or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ValueError(
            f"layer_norm: normalized_shape must be a positive int or a non-empty tuple of them, "
            f"got {normalized_shape!r}"
        )
    return tuple(int(n) for n in shape)


def layer_norm(
    x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Tensor:
    """Each sample normalised over its last axes, those of normalized_shape:

        out = (x - mean) / sqrt(var + eps) * weight + bias

    with mean and the biased variance (divided by the count, not count - 1) taken over the last
    len(normalized_shape) axes; weight and bias (of normalized_shape, optional) scale and shift.
    A composite of mean, sub, mul, sqrt and div, so its gradient and second derivatives come from
    the table.
    """
    x = as_tensor(x)
    shape = normalized_axes(normalized_shape)
    if x.shape[x.ndim - len(shape) :] != shape or x.ndim < len(shape):
        raise ValueError(
            f"layer_norm: input of shape {x.shape} does not end in normalized_shape {shape}; "
            f"give inputs of shape (..., {', '.join(map(str, shape))})"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and as_tensor(value).shape != shape:
            raise ValueError(
                f"layer_norm: {name} of shape {as_tensor(value).shape} does not match "
                f"normalized_shape {shape}; give it shape {shape}"
            )
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    out = (x - mean) / (x.var(axis=axes, keepdims=True) + eps).sqrt()
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def batch_norm(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Each channel (axis 1) of x (N, C, ...) normalised over all other axes, as PyTorch's:

        out = (x - mean) / sqrt(var + eps) * weight + bias         (weight, bias: (C,), optional)

    training=True: mean and var are the batch's, the variance biased (divided by the count n);
    the running statistics (arrays or tensors of shape (C,), or None) are then updated in place,
    outside the graph, with the unbiased variance:

        running_mean = (1 - momentum) running_mean + momentum mean
        running_var  = (1 - momentum) running_var  + momentum var n / (n - 1)

    training=False: mean and var are running_mean and running_var, constants. The gradient in
    training flows through the batch mean and variance too (a composite of the table's ops).
    An empty batch gives an empty output and leaves the running statistics alone.
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(
            f"batch_norm: input of shape {x.shape} has no channel axis; batch_norm takes inputs "
            "of shape (N, C, ...)"
        )
    channels = x.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is not None and np.shape(getattr(value, "data", value)) != (channels,):
            raise ValueError(
                f"batch_norm: {name} of shape {np.shape(getattr(value, 'data', value))} does not "
                f"match the {channels} channels of input of shape {x.shape}; give it shape "
                f"({channels},)"
            )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and as_tensor(value).shape != (channels,):
            raise ValueError(
                f"batch_norm: {name} of shape {as_tensor(value).shape} does not match the "
                f"{channels} channels of input of shape {x.shape}; give it shape ({channels},)"
            )
    axes = (0,) + tuple(range(2, x.ndim))
    per_channel = (1, channels) + (1,) * (x.ndim - 2)
    count = x.size // channels if channels else 0
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm: training=False normalises with running_mean and running_var, but "
                "one of them is None; pass both, or training=True to use the batch's statistics"
            )
        mean = as_tensor(running_mean).reshape(per_channel)
        var = as_tensor(running_var).reshape(per_channel)
    elif count == 0:  # nothing to normalise, nor to learn the statistics from
        mean = constant_like(np.zeros(per_channel, x.dtype), x)
        var = constant_like(np.ones(per_channel, x.dtype), x)
    elif count == 1:
        raise ValueError(
            f"batch_norm: input of shape {x.shape} has 1 value per channel; training needs more "
            "than 1 to estimate a variance (as PyTorch); use a larger batch, or eval mode"
        )
    else:
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        if running_mean is not None or running_var is not None:
            if is_recording():
                raise RuntimeError(
                    f"batch_norm (training, input shape {x.shape}): called while an.replay "
                    "records a step; the recording would update the running statistics only "
                    "once. Train steps with batch norm eagerly; replay in eval mode (model.eval())"
                )
            # detached: the statistics' reshapes stay out of the graph
            batch_mean, batch_var = (s.detach().reshape(channels).data for s in (mean, var))
            update_running(running_mean, batch_mean, momentum)
            update_running(running_var, batch_var * count / (count - 1), momentum)
    out = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * as_tensor(weight).reshape(per_channel)
    return out if bias is None else out + as_tensor(bias).reshape(per_channel)


def update_running(statistic: Any, batch_value: Any, momentum: float) -> None:
    """statistic = (1 - momentum) statistic + momentum batch_value, in place and unrecorded:
    statistic is a Tensor (its data is replaced) or an array (written into), or None; it keeps
    its dtype, and batch_value is an array of its library."""
    if statistic is None:
        return
    current = statistic.data if isinstance(statistic, Tensor) else statistic
    xp = backend.namespace_of(current, batch_value, operation="batch_norm")
    new = xp.astype((1 - momentum) * current + momentum * batch_value, current.dtype)
    if isinstance(statistic, Tensor):
        statistic.data = new
    else:
        statistic[...] = new
