"""replay(): record a fixed-shape training step once, then re-run it as straight-line NumPy code.

    step = an.replay(loss_fn)      # loss_fn(*args) -> a one-element Tensor
    loss = step(S, Y)              # what `loss = loss_fn(S, Y); loss.backward()` does

Replay (here) keeps a Recording per signature of the arguments. recording.py makes one: the step
run eagerly, then its graph again on Traced values (tracing.py) that write the code (codegen.py),
which starts with the checks that the recording fits the call (guard.py, of what captured.py
finds the step read). How it works, and what a recording fixes: docs/replay.md.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from autonet import modes
from autonet.anomaly import is_anomaly_enabled
from autonet.modes import grad_mode
from autonet.replay.codegen import CodeWriter
from autonet.replay.guard import signature
from autonet.replay.recording import (
    Recording,
    check_loss,
    nothing_to_differentiate,
    record_step,
)
from autonet.replay.tracing import Traced
from autonet.tensor import Tensor

__all__ = [
    "MAX_RECORDINGS",
    "Recording",
    "Replay",
    "replay",
    # What tests of the written code reach: record_step, which Replay looks up here; CodeWriter,
    # Traced.
    "CodeWriter",
    "Traced",
    "record_step",
]


# Recordings kept per replayed step (the oldest dropped beyond it): enough for a few shapes (a last
# smaller batch, evaluation batches), bounded when a value in the key changes at every call.
MAX_RECORDINGS = 16


class Replay:
    """A training step's forward and backward pass, recorded once per argument signature and
    replayed as a flat list of NumPy calls. Made by `replay(loss_fn)`; see docs/replay.md.

        step = an.replay(lambda S, Y: 0.5 * ((an.sigmoid(S @ w) - Y) ** 2).sum())
        for _ in range(1000):
            w.grad = None
            loss = step(S, Y)          # fills w.grad as loss.backward() would
            w.data -= 0.1 * w.grad.data
        print(step.source)             # the NumPy calls it replays
    """

    def __init__(self, loss_fn: Callable[..., Tensor]) -> None:
        self.loss_fn = loss_fn
        self.recordings: dict[tuple[Hashable, ...], Recording] = {}
        self.latest: Recording | None = None  # the recording used by the previous call
        self.recorded = 0  # how many recordings were made
        self.warned = False  # about recording more than MAX_RECORDINGS times
        self.lock = threading.Lock()  # held while the recordings and the counts change
        self.__name__ = getattr(loss_fn, "__name__", "step")
        self.__doc__ = loss_fn.__doc__

    def __call__(self, *args: Any) -> Tensor:
        """loss_fn(*args), with its gradients accumulated into the parameters' .grad. Under
        an.detect_anomaly() it runs eagerly instead, checked as eager mode is (run_eagerly)."""
        if not grad_mode.enabled:  # modes.is_grad_enabled(), without the call
            raise RuntimeError(
                f"replay({self.__name__}): called under no_grad, where nothing can be "
                "differentiated; call the step outside no_grad (or call loss_fn directly)"
            )
        # record_hook is set only while some thread is in anomaly mode: one global read when off
        if modes.record_hook is not None and is_anomaly_enabled():
            return self.run_eagerly(args)
        # A loop calls the step with arguments like the previous call's: the recording used
        # then checks them itself, which costs less than computing their signature.
        recording, loss = self.latest, None
        if recording is not None and len(args) == recording.arity:
            loss = recording.function(*args)
        if loss is None:
            loss = self.look_up(args)
        return Tensor.wrap(loss)

    def look_up(self, args: tuple[Any, ...]) -> Any:
        """The loss array from the recording for args' signature, recorded first if there is
        none, or if it refuses the arguments (a parameter changed shape or dtype since, or a
        tensor the step read was replaced or changed)."""
        key = tuple(map(signature, args))
        recording = self.recordings.get(key)
        loss = None if recording is None else recording.function(*args)
        if loss is None:
            why = "the arguments have a new signature"
            if recording is not None:
                why = recording.what_changed()
            recording = record_step(self.loss_fn, args, self.__name__)
            self.keep(key, recording, why)
            loss = recording.function(*args)
            if loss is None:
                raise RuntimeError(
                    f"replay({self.__name__}): the step's arguments do not equal themselves "
                    "(a NaN among Python numbers?), or a tensor it read was replaced while it "
                    "was recorded (by another thread?), so the new recording refuses them; pass "
                    "such a number as an array, or replace tensors between calls"
                )
        self.latest = recording
        return loss

    def keep(self, key: tuple[Hashable, ...], recording: Recording, why: str) -> None:
        """Keep a new recording (made because `why`) as the newest, dropping the oldest beyond
        MAX_RECORDINGS; warn the first time the step records more than MAX_RECORDINGS times, as
        a step that records at most calls is slower than eager mode."""
        with self.lock:  # other threads may keep theirs at the same time
            self.recordings.pop(key, None)  # recorded again (a parameter changed): the newest
            self.recordings[key] = recording
            if len(self.recordings) > MAX_RECORDINGS:
                del self.recordings[next(iter(self.recordings))]
            self.recorded += 1
            recorded, warn = self.recorded, self.recorded > MAX_RECORDINGS and not self.warned
            self.warned = self.warned or warn
        if warn:
            warnings.warn(
                f"replay({self.__name__}): recorded {recorded} times, the latest because {why}. "
                "A step records again for each signature of its arguments (shapes and dtypes, "
                "and the values of integer arrays such as labels or indices, and of Python "
                "numbers), and when a tensor it read other than an argument is replaced, changes "
                "requires_grad or has .data assigned. If that happens at most calls, replay is "
                "slower than eager mode: pass what changes as an argument, or call loss_fn and "
                f"backward() instead. The newest {MAX_RECORDINGS} recordings are kept.",
                RuntimeWarning,
                stacklevel=4,
            )

    def run_eagerly(self, args: tuple[Any, ...]) -> Tensor:
        """`loss = loss_fn(*args); loss.backward()`, as eager mode runs it, which anomaly mode
        checks op by op (the recordings are neither used nor made). Array arguments are wrapped
        as Tensors, as for a recording; the loss is returned as a leaf, as a replayed call
        returns it."""
        inputs = [Tensor.wrap(a) if isinstance(a, np.ndarray) else a for a in args]
        loss = check_loss(self.loss_fn(*inputs), self.__name__)
        if not loss.requires_grad:
            raise nothing_to_differentiate(self.__name__)
        loss.backward()
        return Tensor.wrap(loss.data)

    @property
    def source(self) -> str:
        """The generated code of the most recent recording."""
        with self.lock:
            recordings = list(self.recordings.values())
        if not recordings:
            raise RuntimeError(f"replay({self.__name__}): nothing recorded yet; call it once")
        return recordings[-1].source


def replay(loss_fn: Callable[..., Tensor]) -> Replay:
    """Record loss_fn(*args) and its backward pass once per argument signature; replay it after.

    The returned callable does what `loss = loss_fn(*args); loss.backward(); return loss` does,
    with the same results bit for bit, by re-running the recorded NumPy calls. It records again
    when a tensor the step read besides its arguments is replaced, changes requires_grad or (a
    constant) has .data assigned; under an.detect_anomaly() it runs eagerly, so that a NaN or an
    infinity raises as in eager mode. See docs/replay.md for what a recording fixes
    (control flow, constants), what it reads afresh (arguments, parameters) and what it checks.
    """
    return Replay(loss_fn)
