"""Normalisation layers, as torch.nn's: LayerNorm (over each sample's last axes) and BatchNorm1d,
BatchNorm2d (over the batch, per channel, with running statistics kept as buffers). Each
forward is the functional form, a composite of the table's ops.

Where autonet differs from PyTorch: parameters and running statistics are float64 (use
model.to(np.float32) for float32); a float32 input to a float64 layer gives a float64 output, as
NumPy promotes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autonet.nn import functional as F
from autonet.nn.layers import check_input
from autonet.nn.modules import Module
from autonet.ops import as_tensor
from autonet.tensor import Tensor


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axes, those of
    normalized_shape (an int or a tuple); weight starts at ones and bias at zeros, both of
    normalized_shape (elementwise_affine=False: neither; bias=False: no bias). See
    functional.layer_norm."""

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        self.normalized_shape = F.normalized_axes(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        affine = elementwise_affine
        self.weight = Tensor(np.ones(self.normalized_shape), requires_grad=True) if affine else None
        has_bias = affine and bias
        self.bias = (
            Tensor(np.zeros(self.normalized_shape), requires_grad=True) if has_bias else None
        )

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        check_input(self, x, [("...", *self.normalized_shape)])
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the input layouts they take.

    Each channel c (axis 1) is normalised, (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c:
    in training mode with the batch's mean and biased variance (over every axis but 1), and the
    buffers running_mean (starting at 0) and running_var (at 1) move towards them, with the
    unbiased variance, outside the graph:

        running = (1 - momentum) running + momentum batch_statistic

    (momentum=None: the cumulative average, momentum 1 / num_batches_tracked). In eval mode the
    running statistics are used instead. track_running_stats=False keeps no buffers and always
    uses the batch's statistics; affine=False drops weight (starting at 1) and bias (at 0).
    """

    LAYOUTS: list[tuple[Any, ...]] = []

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(
                f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}"
            )
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Tensor(np.ones(num_features), requires_grad=True) if affine else None
        self.bias = Tensor(np.zeros(num_features), requires_grad=True) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features))
            self.register_buffer("running_var", np.ones(num_features))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        check_input(
            self, x, [(*layout[:1], self.num_features, *layout[2:]) for layout in self.LAYOUTS]
        )
        counter = self.num_batches_tracked if self.training else None  # None: no update
        if self.momentum is not None:
            momentum = self.momentum
        elif counter is not None:  # the cumulative average of the batches so far
            momentum = 1.0 / (int(counter.data) + 1)
        else:
            momentum = 0.0  # unused: the running statistics stay as they are
        out = F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=self.training or not self.track_running_stats,
            momentum=momentum,
            eps=self.eps,
        )
        if counter is not None:
            counter.data = counter.data + 1
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) signals; see BatchNorm."""

    LAYOUTS = [("N", "C"), ("N", "C", "L")]


class BatchNorm2d(BatchNorm):
    """Batch normalisation of (N, C, H, W) images, per channel; see BatchNorm."""

    LAYOUTS = [("N", "C", "H", "W")]
