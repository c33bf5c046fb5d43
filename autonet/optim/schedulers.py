"""The learning-rate schedules: StepLR, CosineAnnealingLR (lr from the epoch count) and
ReduceLROnPlateau (lr from a metric's history), with state_dict()s (see autonet.optim)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

from autonet.optim.optimizers import Optimizer, checked_values


class Scheduler:
    """Base class of the learning-rate schedules: state_dict() and load_state_dict() of the
    attributes named in STATE, and get_last_lr()."""

    STATE: ClassVar[tuple[str, ...]]

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected an optimizer (an.optim.SGD, Adam, ...), got "
                f"{type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.last_epoch = 0  # the number of step() calls

    def get_last_lr(self) -> list[float]:
        """[the optimiser's current lr], a list as torch's (one entry per parameter group)."""
        return [self.optimizer.lr]

    def check(self, values: dict[str, Any]) -> None:
        """Raise ValueError if the options (values) are out of range."""

    def state_dict(self) -> dict[str, Any]:
        """{option or counter: value}, everything but the optimiser, as torch's schedulers."""
        return {key: getattr(self, key) for key in self.STATE}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what state_dict() returned. The optimiser's lr is restored by its own
        load_state_dict, as in PyTorch."""
        current = {key: getattr(self, key) for key in self.STATE}
        values = checked_values(type(self).__name__, state_dict, current)
        self.check(values)
        for key, value in values.items():
            setattr(self, key, value)


class LRScheduler(Scheduler):
    """A schedule that sets lr from the number of epochs done: step() (once per epoch) counts
    last_epoch and sets optimizer.lr = lr_at(last_epoch), with lr_at(0) = base_lr, the lr the
    optimiser had when the schedule was made. Computing lr from last_epoch alone (torch's closed
    form; torch's step() updates lr recursively, equal up to rounding) makes a resumed schedule
    exact, but ignores changes made to lr by other code between steps."""

    def __init__(self, optimizer: Optimizer) -> None:
        super().__init__(optimizer)
        self.base_lr = optimizer.lr

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError


class StepLR(LRScheduler):
    """Multiply the optimiser's lr by gamma every step_size calls of step() (once per epoch):
    lr_epoch = lr_0 * gamma ** (epoch // step_size), as torch.optim.lr_scheduler.StepLR."""

    STATE = ("step_size", "gamma", "base_lr", "last_epoch")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        self.check({"step_size": step_size})
        self.step_size, self.gamma = int(step_size), float(gamma)

    def check(self, values: dict[str, Any]) -> None:
        step_size = values["step_size"]
        if not (isinstance(step_size, numbers.Integral) and int(step_size) >= 1):
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Anneal lr from lr_0 to eta_min along half a cosine over T_max epochs (SGDR, Loshchilov and
    Hutter, 2017, without restarts), as torch.optim.lr_scheduler.CosineAnnealingLR:

        lr_epoch = eta_min + (lr_0 - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    Past T_max the cosine goes on, so lr climbs back to lr_0 at 2 T_max, as in PyTorch.
    """

    STATE = ("T_max", "eta_min", "base_lr", "last_epoch")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        super().__init__(optimizer)
        self.check({"T_max": T_max})
        self.T_max, self.eta_min = int(T_max), float(eta_min)

    def check(self, values: dict[str, Any]) -> None:
        T_max = values["T_max"]  # noqa: N806
        if not (isinstance(T_max, numbers.Integral) and int(T_max) >= 1):
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max}")

    def lr_at(self, epoch: int) -> float:
        cosine = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * cosine / 2


class ReduceLROnPlateau(Scheduler):
    """Multiply lr by factor once a metric has stopped improving for more than patience epochs,
    as torch.optim.lr_scheduler.ReduceLROnPlateau: step(metric), once per epoch.

    metric improves on best when, for mode "min" ("max" mirrors it),
        metric < best * (1 - threshold)    if threshold_mode == "rel"
        metric < best - threshold          if threshold_mode == "abs"
    and then best = metric; otherwise the epoch is bad. After more than patience bad epochs in a
    row, lr = max(lr * factor, min_lr) (unchanged if that moves it by eps or less), and the next
    cooldown epochs do not count as bad.
    """

    STATE = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
        "last_epoch",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
    )

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(optimizer)
        self.check(
            {
                "mode": mode,
                "threshold_mode": threshold_mode,
                "factor": factor,
                "patience": patience,
                "cooldown": cooldown,
            }
        )
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.threshold = float(factor), float(threshold)
        self.min_lr, self.eps = float(min_lr), float(eps)
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0

    def check(self, values: dict[str, Any]) -> None:
        if values["mode"] not in ("min", "max"):
            raise ValueError(
                f"ReduceLROnPlateau: mode must be 'min' or 'max', got {values['mode']!r}"
            )
        if values["threshold_mode"] not in ("rel", "abs"):
            raise ValueError(
                "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got "
                f"{values['threshold_mode']!r}"
            )
        if not values["factor"] < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {values['factor']}")
        for key in ("patience", "cooldown"):
            if not (isinstance(values[key], numbers.Integral) and values[key] >= 0):
                raise ValueError(
                    f"ReduceLROnPlateau: {key} must be an integer >= 0, got {values[key]!r}"
                )

    def step(self, metrics: float) -> None:
        """Count one epoch whose metric (e.g. the validation loss) is metrics."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def is_better(self, metric: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return metric < (
                self.best * (1 - self.threshold) if rel else self.best - self.threshold
            )
        return metric > (self.best * (1 + self.threshold) if rel else self.best + self.threshold)
