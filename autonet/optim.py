"""Optimisers: SGD (with momentum and weight decay) and Adam, plus a step learning-rate schedule.

An optimiser holds a list of parameters (Tensors that require grad). After loss.backward() has
filled each parameter's .grad, step() moves the parameters; zero_grad() clears the gradients
before the next backward (they accumulate otherwise, as in PyTorch). Updates are written on the
parameters' arrays (.data) in place, under no_grad: an update is not part of any model's
computation, so it is never recorded, and the parameters stay the same Tensor objects (the
optimiser's list and the model's attributes keep pointing at them). A parameter whose .grad is
None (unused by the loss) is left alone.

The update equations are PyTorch's (torch.optim.SGD with dampening=0, nesterov=False, and
torch.optim.Adam with amsgrad=False), so results can be compared step by step.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from autonet.modes import no_grad
from autonet.tensor import Tensor


class Optimizer:
    """Base class: keeps the parameters and the learning rate `lr`; subclasses define update()."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(
                f"{type(self).__name__}: got no parameters to optimise; pass model.parameters()"
            )
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} is not a Tensor with "
                    "requires_grad=True; pass model.parameters() or tensors made with "
                    "an.tensor(..., requires_grad=True)"
                )
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr}")
        self.lr = float(lr)
        self.steps = 0

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        self.steps += 1
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                g = np.asarray(p.grad.data)
                if g.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}.step: parameter {p.name or i} has shape "
                        f"{p.shape} but its grad has shape {g.shape}"
                    )
                p.data -= self.update(i, p.data, g)

    def update(self, i: int, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The amount to subtract from parameter i (value w, gradient g)."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum and L2 weight decay.

        d = g + weight_decay * w                  (the gradient of L + weight_decay/2 * |w|^2)
        v = momentum * v + d                      (v = d at the first step; no momentum: v = d)
        w = w - lr * v

    With momentum=0 and weight_decay=0 this is the tutorial's update w = w - alpha * grad.
    """

    def __init__(
        self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity: dict[int, np.ndarray] = {}

    def update(self, i: int, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        d = g + self.weight_decay * w if self.weight_decay else g
        if self.momentum:
            previous = self.velocity.get(i)
            d = d.copy() if previous is None else self.momentum * previous + d
            self.velocity[i] = d
        return self.lr * d


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): per-element steps scaled by running gradient moments.

    d = g + weight_decay * w
    m = beta1 * m + (1 - beta1) * d           (m = v = 0 before the first step)
    v = beta2 * v + (1 - beta2) * d^2
    m_hat = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)     (t = 1, 2, ...: bias correction)
    w = w - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}

    def update(self, i: int, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        beta1, beta2 = self.betas
        d = g + self.weight_decay * w if self.weight_decay else g
        self.m[i] = beta1 * self.m.get(i, 0.0) + (1 - beta1) * d
        self.v[i] = beta2 * self.v.get(i, 0.0) + (1 - beta2) * d * d
        m_hat = self.m[i] / (1 - beta1**self.steps)
        v_hat = self.v[i] / (1 - beta2**self.steps)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class StepLR:
    """Multiply the optimiser's lr by gamma every step_size calls of step() (once per epoch):
    lr_epoch = lr_0 * gamma ** (epoch // step_size), as torch.optim.lr_scheduler.StepLR."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr = optimizer.lr
        self.epoch = 0

    def step(self) -> None:
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)
