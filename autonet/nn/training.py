"""fit(): the tutorial's training loop, generalised: batches, shuffling, validation, early stop.

Each epoch visits the training samples once, in batches:

    batch_size=None     full-batch gradient descent (the tutorial: one step per epoch on all of S)
    batch_size=1        stochastic gradient descent (one step per sample)
    batch_size=b        mini-batch gradient descent (ceil(m / b) steps per epoch)

and for each batch computes the loss, calls backward() and optimizer.step(). With shuffle=True the
order is drawn anew every epoch from a Generator seeded with `seed`, so runs repeat exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from autonet.modes import no_grad
from autonet.nn import functional as F
from autonet.nn.modules import Module
from autonet.optim import SGD, Optimizer
from autonet.tensor import Tensor

Loss = Callable[[Tensor, Any], Tensor]


@dataclass
class History:
    """What fit() measured, one entry per epoch run.

    train_loss      the mean of the batch losses (each computed before its step), weighted by
                    batch size; for full-batch training, the loss before that epoch's step
    val_loss        the validation loss after the epoch, in evaluation mode (empty without one)
    best_epoch      the epoch (0-based) with the lowest monitored loss
    stopped_early   True if early stopping ended the run before `epochs`
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def split_validation(
    X: np.ndarray, Y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, Y_train, X_val, Y_val): a random `fraction` of the samples held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"fit: validation_split must be in (0, 1), got {fraction}")
    order = rng.permutation(len(X))
    n_val = max(1, int(round(fraction * len(X))))
    if n_val >= len(X):
        raise ValueError(
            f"fit: validation_split={fraction} of {len(X)} samples leaves none to train on"
        )
    val, train = order[:n_val], order[n_val:]
    return X[train], Y[train], X[val], Y[val]


def fit(
    model: Module,
    X: Any,
    Y: Any,
    loss: Loss = F.half_sse,
    optimizer: Optimizer | None = None,
    epochs: int = 100,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = 0,
    validation_split: float = 0.0,
    validation_data: tuple[Any, Any] | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    schedule: Any = None,
    progress: bool | None = None,
) -> History:
    """Train model on (X, Y) and return the History of losses.

    loss            loss(output, targets) -> scalar Tensor (default: the tutorial's half_sse)
    optimizer       default SGD(model.parameters(), lr=1.0), the tutorial's step
    batch_size      None: full batch; 1: stochastic; b: mini-batches of b samples
    shuffle, seed   reshuffle the samples every epoch, reproducibly
    validation_split / validation_data
                    hold out a random fraction of (X, Y), or give (X_val, Y_val)
    patience        early stopping: stop when the validation loss (the training loss if there is
                    no validation set) has not improved by more than min_delta for `patience`
                    epochs; with restore_best the model gets back the weights of its best epoch
    schedule        an object with step() called after every epoch (e.g. optim.StepLR)
    progress        a tqdm progress bar; None: shown only when stderr is a terminal

    The model is left in evaluation mode (model.eval()), ready for predictions.
    """
    X, Y = (
        np.asarray(X.data if isinstance(X, Tensor) else X),
        np.asarray(Y.data if isinstance(Y, Tensor) else Y),
    )
    if len(X) != len(Y):
        raise ValueError(f"fit: X has {len(X)} samples but Y has {len(Y)}; they must match")
    if epochs < 1:
        raise ValueError(f"fit: epochs must be at least 1, got {epochs}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"fit: batch_size must be None (full batch) or >= 1, got {batch_size}")
    rng = np.random.default_rng(seed)
    if validation_data is not None:
        X_val, Y_val = (np.asarray(getattr(a, "data", a)) for a in validation_data)
    elif validation_split:
        X, Y, X_val, Y_val = split_validation(X, Y, validation_split, rng)
    else:
        X_val = Y_val = None
    optimizer = optimizer or SGD(model.parameters(), lr=1.0)
    size = len(X) if batch_size is None else min(batch_size, len(X))
    history = History()
    best, best_state, waited = np.inf, None, 0
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(range(epochs), disable=not show, unit="epoch", leave=False, file=sys.stderr)
    for epoch in bar:
        model.train()
        order = rng.permutation(len(X)) if shuffle and size < len(X) else np.arange(len(X))
        total = 0.0
        for start in range(0, len(X), size):
            batch = order[start : start + size]
            value = loss(model(X[batch]), Y[batch])
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            total += float(value.data) * len(batch)
        history.train_loss.append(total / len(X))
        monitored = history.train_loss[-1]
        if X_val is not None:
            model.eval()
            with no_grad():
                monitored = float(loss(model(X_val), Y_val).data)
            history.val_loss.append(monitored)
        if schedule is not None:
            schedule.step()
        bar.set_postfix(loss=f"{history.train_loss[-1]:.4g}", refresh=False)
        if monitored < best - min_delta:
            best, waited, history.best_epoch = monitored, 0, epoch
            if patience is not None and restore_best:
                best_state = model.state_dict()
        else:
            waited += 1
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    bar.close()
    model.eval()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
