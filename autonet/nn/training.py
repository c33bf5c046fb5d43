"""fit(): the tutorial's training loop, generalised: batches, shuffling, validation, early stop.

Each epoch visits the training samples once, in batches:

    batch_size=None     full-batch gradient descent (the tutorial: one step per epoch on all of S)
    batch_size=1        stochastic gradient descent (one step per sample)
    batch_size=b        mini-batch gradient descent (ceil(m / b) steps per epoch)

and for each batch computes the loss, calls backward() and optimizer.step(). With shuffle=True the
order is drawn anew every epoch from a Generator seeded with `seed`, so runs repeat exactly.

The steps of full batches are replayed (an.replay: recorded once, then re-run as generated NumPy
code, with eager mode's results bit for bit) when that is correct and pays: see replay_refusal()
and the checks in fit(). Otherwise, and for a last shorter batch, a step runs eagerly;
History.replay_reason says why.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from autonet import backend
from autonet.modes import no_grad
from autonet.nn import functional as F
from autonet.nn.layers import Dropout
from autonet.nn.modules import Module
from autonet.optim import SGD, Optimizer, ReduceLROnPlateau
from autonet.replay import Replay
from autonet.replay import replay as replay_step
from autonet.tensor import Tensor

Loss = Callable[[Tensor, Any], Tensor]
logger = logging.getLogger(__name__)


@dataclass
class History:
    """What fit() measured, one entry per epoch run.

    train_loss      the mean of the batch losses (each computed before its step), weighted by
                    batch size; for full-batch training, the loss before that epoch's step
    val_loss        the validation loss after the epoch, in evaluation mode (empty without one)
    best_epoch      the epoch (0-based) with the lowest monitored loss
    stopped_early   True if early stopping ended the run before `epochs`
    replayed_steps  training steps replayed (an.replay), and eager_steps those run eagerly
    replay_reasons  why steps ran eagerly, each reason once, in order (replay_reason: joined)
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    replayed_steps: int = 0
    eager_steps: int = 0
    replay_reasons: list[str] = field(default_factory=list)

    @property
    def replay_reason(self) -> str | None:
        """Why steps ran eagerly, the reasons joined by "; "; None if every step replayed."""
        return "; ".join(self.replay_reasons) or None

    def ran_eagerly(self, reason: str) -> None:
        """Count one eager step, and note (and log, at INFO level) its reason the first time."""
        self.eager_steps += 1
        if reason not in self.replay_reasons:
            self.replay_reasons.append(reason)
            logger.info("fit: a step runs eagerly: %s", reason)


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


def model_namespace(model: Module) -> Any:
    """The array namespace of the model's parameters (numpy for a model on NumPy's arrays)."""
    arrays = [p.data for p in model.parameters()]
    return backend.namespace_of(*arrays, operation="fit") if arrays else np


def replay_refusal(
    model: Module, X: np.ndarray, Y: np.ndarray, size: int, epochs: int, replay: bool
) -> str | None:
    """Why fit must not (or need not) replay this model's training step, or None if it may.

    A recording fixes what it saw (docs/replay.md): a random draw (Dropout in training mode),
    the update of a buffer (BatchNorm's running statistics, updated outside the graph: once, while
    recording), and the values of integer arrays, so integer inputs or targets (class indices)
    would record again for every new batch. A fit of one step would pay for a recording it never
    reuses."""
    if not replay:
        return "replay=False"
    dropouts = [m for m in model.modules() if isinstance(m, Dropout) and m.training and m.p > 0]
    if dropouts:
        return (
            f"Dropout(p={dropouts[0].p}) in training mode draws a new mask at every step, which "
            "a recording would fix"
        )
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return (
            f"the model has buffers ({', '.join(buffers)}), which modules in training mode "
            "update outside the graph (running statistics), and a recording would update once"
        )
    for name, array, fix in (
        ("X", X, "pass float inputs"),
        ("Y", Y, "pass one-hot float targets to replay a classifier"),
    ):
        if array.dtype.kind != "f" and size < len(X):
            return (
                f"{name} is {array.dtype} (not floating point): a recording fixes the values of "
                f"such arrays, so each new batch would record again; {fix}"
            )
    if epochs * (len(X) // size) < 2:
        return "a single step: recording it would cost more than running it"
    return None


def module_state(model: Module) -> dict[tuple[int, str], Any]:
    """What a module's forward could change besides the graph: every attribute of every
    sub-module, by identity, with the bytes of arrays and of tensors that are not parameters
    (running statistics) and the state of random generators. Parameters and their .grad are
    left out: the step's backward pass and the optimizer change those."""
    state: dict[tuple[int, str], Any] = {}
    for index, module in enumerate(model.modules()):
        for attr, value in vars(module).items():
            fingerprint: Any = id(value)
            if isinstance(value, Tensor) and not value.requires_grad:
                fingerprint = (id(value), id(value.data), backend.host_bytes(value.data))
            elif isinstance(value, np.ndarray):
                fingerprint = (id(value), value.tobytes())
            elif isinstance(value, np.random.Generator):
                fingerprint = repr(value.bit_generator.state)
            elif isinstance(value, (bool, int, float, str)):
                fingerprint = (id(value), value)
            state[index, attr] = fingerprint
    return state


def state_changes(model: Module, before: dict[tuple[int, str], Any]) -> list[str]:
    """The attributes (`Type.attr`) of model's sub-modules that differ from `before`."""
    after, modules = module_state(model), model.modules()
    return [
        f"{type(modules[index]).__name__}.{attr}"
        for index, attr in after.keys() | before.keys()
        if after.get((index, attr)) != before.get((index, attr))
    ]


def check_replayed_step(model: Module, step: Replay, before: dict | None) -> str | None:
    """Why the steps after this replayed one must run eagerly, or None: the model changed its
    own state outside the graph while the step was recorded (`before`, the module_state() from
    before it; replay would not repeat such an update), or the step recorded a second time (a
    tensor it read was replaced, or an argument's values are part of the recording), which
    would repeat at every step and cost more than eager mode. The step itself gave eager mode's
    results either way: a recording runs the step eagerly."""
    changed = [] if before is None else state_changes(model, before)
    if changed:
        return (
            f"the model changed {', '.join(sorted(changed))} during a step, outside the graph "
            "(running statistics?): replay would not repeat that"
        )
    if step.recorded > 1:
        return f"the step recorded {step.recorded} times for one batch shape"
    return None


def replay_differs(
    step: Replay, model: Module, loss: Loss, parameters: list[Tensor], x: np.ndarray, y: np.ndarray
) -> tuple[Tensor, bool]:
    """Run one step both ways, replayed then eagerly, and compare the losses and gradients bit
    for bit: a forward that reads its input outside the graph (an.tensor(x), x.data) records it
    as a constant, and its replays would train on the recorded batch forever. Returns the eager
    loss (the gradients are eager's too) and whether the replayed results differed."""
    before = [p.grad for p in parameters]  # accumulation makes new arrays: these stay as they are
    replayed_value = step(x, y)
    replayed = [p.grad for p in parameters]
    for p, grad in zip(parameters, before, strict=True):
        p.grad = grad
    value = loss(model(x), y)
    value.backward()
    differs = backend.host_bytes(replayed_value.data) != backend.host_bytes(value.data) or any(
        (g is None) != (p.grad is None)
        or (g is not None and backend.host_bytes(g.data) != backend.host_bytes(p.grad.data))
        for p, g in zip(parameters, replayed, strict=True)
    )
    return value, differs


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
    replay: bool = True,
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
    schedule        an object with step() called after every epoch (e.g. optim.StepLR);
                    optim.ReduceLROnPlateau is stepped with the monitored loss (the validation
                    loss if there is validation data, else the training loss)
    progress        a tqdm progress bar; None: shown only when stderr is a terminal
    replay          replay the steps of full batches (an.replay) where that gives eager mode's
                    results; False: every step eagerly. History.replay_reason says why steps ran
                    eagerly: replay=False, Dropout or buffers (BatchNorm) in training mode, a
                    layer that refuses to be recorded (F.dropout called by a module of your
                    own), integer inputs or targets with mini-batches, a single step, a model that
                    changed its own state during a step, a step that recorded again, a first
                    replay whose results differ from an eager run of the same batch (which
                    fit runs to check it), or the last batch of an epoch being shorter than
                    batch_size (it runs eagerly, the rest replay). A
                    replayed step does not call model and loss: their Python side effects
                    (prints, counters) happen only when a step records or runs eagerly

    The model is in training mode (model.train()) for the steps and in evaluation mode for the
    validation loss, and is left in evaluation mode (model.eval()), ready for predictions.
    PyTorch has no fit(); its steps are the usual zero_grad(), loss.backward(), step().
    """
    X, Y = (backend.to_numpy(a.data if isinstance(a, Tensor) else np.asarray(a)) for a in (X, Y))
    if len(X) != len(Y):
        raise ValueError(f"fit: X has {len(X)} samples but Y has {len(Y)}; they must match")
    if len(X) == 0:
        raise ValueError(f"fit: X has no samples (shape {X.shape}); pass at least one")
    if epochs < 1:
        raise ValueError(f"fit: epochs must be at least 1, got {epochs}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"fit: batch_size must be None (full batch) or >= 1, got {batch_size}")
    rng = np.random.default_rng(seed)
    if validation_data is not None:
        X_val, Y_val = (backend.to_numpy(getattr(a, "data", a)) for a in validation_data)
    elif validation_split:
        X, Y, X_val, Y_val = split_validation(X, Y, validation_split, rng)
    else:
        X_val = Y_val = None
    optimizer = optimizer or SGD(model.parameters(), lr=1.0)
    size = len(X) if batch_size is None else min(batch_size, len(X))
    history = History()
    # the batches are NumPy's rows of X and Y, made arrays of the model's library (backend.py)
    library = model_namespace(model)
    rows = (lambda A, i: A[i]) if library is np else (lambda A, i: library.asarray(A[i]))
    if X_val is not None and library is not np:
        X_val, Y_val = library.asarray(X_val), library.asarray(Y_val)
    refusal = replay_refusal(model.train(), X, Y, size, epochs, replay)
    step: Replay | None = None if refusal else replay_step(lambda x, y: loss(model(x), y))
    # the first replayed step records: did the model change its own state? The second is the
    # first to replay a recording: is it what eager mode computes?
    watch, verify = step is not None, step is not None
    parameters = list(dict.fromkeys([*model.parameters(), *optimizer.params]))
    best, best_state, waited = np.inf, None, 0
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(range(epochs), disable=not show, unit="epoch", leave=False, file=sys.stderr)
    for epoch in bar:
        model.train()
        order = rng.permutation(len(X)) if shuffle and size < len(X) else np.arange(len(X))
        total = 0.0
        for start in range(0, len(X), size):
            batch = order[start : start + size]
            optimizer.zero_grad()
            if step is None or len(batch) < size:
                value = loss(model(rows(X, batch)), rows(Y, batch))
                value.backward()
                history.ran_eagerly(
                    refusal or f"the last batch of each epoch has {len(batch)} samples, not {size}"
                )
            elif watch:  # records
                before, watch = module_state(model), False
                try:
                    value = step(rows(X, batch), rows(Y, batch))
                except RuntimeError as error:
                    # a layer called functionally (F.dropout, F.batch_norm in training) refuses
                    # to be recorded, before it draws or updates anything: run the step eagerly
                    if "while an.replay records a step" not in str(error):
                        raise
                    refusal = f"a layer refused to be recorded: {str(error).split(';')[0]}"
                    value = loss(model(rows(X, batch)), rows(Y, batch))
                    value.backward()
                    history.ran_eagerly(refusal)
                else:
                    refusal = check_replayed_step(model, step, before)
                    history.replayed_steps += 1
            elif verify:  # replays a recording for the first time, and checks it
                value, differs = replay_differs(
                    step, model, loss, parameters, rows(X, batch), rows(Y, batch)
                )
                verify, refusal = False, check_replayed_step(model, step, None)
                if differs:
                    refusal = (
                        "a replayed step gave other results than eager mode: does the model read "
                        "its input outside the graph (an.tensor(x), x.data) or branch on values?"
                    )
                if refusal:
                    history.ran_eagerly(refusal)
                else:
                    history.replayed_steps += 1
            else:
                value = step(rows(X, batch), rows(Y, batch))
                refusal = check_replayed_step(model, step, None)
                history.replayed_steps += 1
            step = None if refusal else step
            optimizer.step()
            total += float(value.data) * len(batch)
        history.train_loss.append(total / len(X))
        monitored = history.train_loss[-1]
        if X_val is not None:
            model.eval()
            with no_grad():
                monitored = float(loss(model(X_val), Y_val).data)
            history.val_loss.append(monitored)
        if isinstance(schedule, ReduceLROnPlateau):  # it steps on the monitored loss
            schedule.step(monitored)
        elif schedule is not None:
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
