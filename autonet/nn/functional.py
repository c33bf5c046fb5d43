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

Reductions follow PyTorch: reduction="mean" (default), "sum" or "none"; `half_sse` is the
tutorial's L = 1/2 sum (o - y)^2 and always sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autonet.modes import is_recording
from autonet.ops import as_tensor
from autonet.primitives import PRIMITIVES
from autonet.tensor import Tensor

LOG_SOFTMAX, SOFTPLUS = PRIMITIVES["log_softmax"], PRIMITIVES["softplus"]

REDUCTIONS = ("mean", "sum", "none")


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
    gradient with respect to z is softmax(z) - onehot(t).
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(
            f"cross_entropy: logits must have shape (N, C), got {logits.shape}; for one sample "
            "use logits.reshape(1, -1)"
        )
    log_p = log_softmax(logits, axis=-1)
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind in "iu":
        n, c = logits.shape
        if t.shape != (n,):
            raise ValueError(
                f"cross_entropy: class-index targets must have shape ({n},) for logits of shape "
                f"{logits.shape}, got {t.shape}"
            )
        if t.size and (t.min() < 0 or t.max() >= c):
            raise ValueError(
                f"cross_entropy: class indices must be in [0, {c}) for {c} classes, got values in "
                f"[{t.min()}, {t.max()}]"
            )
        loss = -log_p[np.arange(n), t]
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

    The gradient is g * mask / (1 - p): dropped units get none.
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
    return x * (keep / (1 - p))
