"""Convolution and pooling layers over (N, C, L) signals and (N, C, H, W) images, as torch.nn's,
each a call to the functional form (the table's conv2d, max_pool2d and avg_pool2d primitives).

Where autonet differs from PyTorch:
- No groups, padding="same" or padding_mode (zeros only); pooling has no ceil_mode, dilation or
  return_indices, and avg pooling always counts the padding (count_include_pad=True).
- An unbatched input (C, H, W) is refused: reshape it to (1, C, H, W).
- Weights are float64, drawn from `rng` with PyTorch's distribution: kaiming_uniform with
  a = sqrt(5), which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as are the biases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autonet.nn import functional as F
from autonet.nn.init import uniform
from autonet.nn.layers import check_input
from autonet.nn.modules import Module, RandomState, make_rng
from autonet.ops import as_tensor
from autonet.tensor import Tensor


def uniform_fan_in(shape: tuple[int, ...], fan_in: int, rng: np.random.Generator) -> Tensor:
    """A parameter drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for
    convolution weights (kaiming_uniform with a = sqrt(5): gain sqrt(2 / (1 + a^2)) = sqrt(1/3)
    times sqrt(3 / fan_in)) and for their biases."""
    return Tensor(uniform(shape, rng) / np.sqrt(fan_in), requires_grad=True)


def check_channels(layer: str, in_channels: Any, out_channels: Any) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")


class Conv2d(Module):
    """out = conv2d(x, weight, bias, stride, padding, dilation) of images x (N, C_in, H, W):
    weight (out_channels, in_channels, kH, kW), bias (out_channels,); see functional.conv2d.
    kernel_size, stride, padding and dilation are ints or pairs (height, width)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        bias: bool = True,
        rng: RandomState = None,
    ) -> None:
        check_channels("Conv2d", in_channels, out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = F.pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = F.pair(stride, "stride", "Conv2d", 1)
        self.padding = F.pair(padding, "padding", "Conv2d", 0)
        self.dilation = F.pair(dilation, "dilation", "Conv2d", 1)
        generator = make_rng(rng)
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = uniform_fan_in(shape, fan_in, generator)
        self.bias = uniform_fan_in((out_channels,), fan_in, generator) if bias else None

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        check_input(self, x, [("N", self.in_channels, "H", "W")])
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.bias is not None}"
        )


class Conv1d(Module):
    """out = conv1d(x, weight, bias, stride, padding, dilation) of signals x (N, C_in, L):
    weight (out_channels, in_channels, kernel_size), bias (out_channels,); see
    functional.conv1d. kernel_size, stride, padding and dilation are ints."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = True,
        rng: RandomState = None,
    ) -> None:
        check_channels("Conv1d", in_channels, out_channels)
        for name, value, least in (
            ("kernel_size", kernel_size, 1),
            ("stride", stride, 1),
            ("padding", padding, 0),
            ("dilation", dilation, 1),
        ):
            if not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"Conv1d: {name} must be an int >= {least}, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = int(kernel_size), int(stride)
        self.padding, self.dilation = int(padding), int(dilation)
        generator = make_rng(rng)
        fan_in = in_channels * self.kernel_size
        shape = (out_channels, in_channels, self.kernel_size)
        self.weight = uniform_fan_in(shape, fan_in, generator)
        self.bias = uniform_fan_in((out_channels,), fan_in, generator) if bias else None

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        check_input(self, x, [("N", self.in_channels, "L")])
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.bias is not None}"
        )


class Pool2d(Module):
    """What the pooling layers share: kernel_size, stride (default kernel_size) and padding,
    ints or pairs (height, width), checked when the layer is built."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        name = type(self).__name__
        self.kernel_size = F.pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else F.pair(stride, "stride", name, 1)
        self.padding = F.pair(padding, "padding", name, 0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(Pool2d):
    """The maximum of each kernel_size window of images (N, C, H, W), moved by stride (default
    kernel_size), with -inf padding; see functional.max_pool2d."""

    def forward(self, x: Any) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(Pool2d):
    """The mean of each kernel_size window of images (N, C, H, W), moved by stride (default
    kernel_size), zero padding counted in the mean; see functional.avg_pool2d."""

    def forward(self, x: Any) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
