"""Modes that change what operations do: grad mode (no_grad) and whether a step is being recorded
by an.replay, each per thread, and the hook through which a mode watches every op.

Grad mode is read on every recorded op (tensor.record reads `grad_mode.enabled`, one attribute
lookup); `is_grad_enabled()` and `no_grad` are its public face, as in PyTorch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class GradMode(threading.local):
    """Whether operations are recorded, per thread. `enabled` defaults to True as a class
    attribute, so reading it (on every recorded op) is one attribute lookup."""

    enabled = True


grad_mode = GradMode()


def is_grad_enabled() -> bool:
    """Whether operations on this thread are recorded (False inside `no_grad`)."""
    return grad_mode.enabled


class no_grad:
    """Context manager (and decorator) under which nothing is recorded, on this thread only.

    Use it for parameter updates and evaluation, as torch.no_grad:

        with an.no_grad():
            w.data -= lr * w.grad.data     # not `w -= ...`: that rebinds w to a new tensor
    """

    def __enter__(self) -> None:
        self.previous = is_grad_enabled()
        grad_mode.enabled = False

    def __exit__(self, *exc_info: object) -> None:
        grad_mode.enabled = self.previous

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def without_grad(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return function(*args, **kwargs)

        without_grad.__name__ = getattr(function, "__name__", "without_grad")
        without_grad.__doc__ = function.__doc__
        return without_grad


# While a mode that watches every op is on in some thread (detect_anomaly), the function
# tensor.record calls instead of recording: it records with hooked=False and checks the result.
# None when off, so record pays one read, and every module, whenever imported, behaves the same.
record_hook: Callable[..., Any] | None = None

# While some thread is inside vmap, the function tensor.record calls first: it applies the
# primitive's batching rule when an input is batched (transforms/vmap.py) and returns None when
# none is. None when no vmap runs, so record pays one read.
batched_record: Callable[..., Any] | None = None


class ReplayRecording(threading.local):
    """Whether an.replay is recording a step on this thread (operations that cannot be replayed,
    such as dropout's random mask, refuse to be recorded)."""

    active = False


replay_recording = ReplayRecording()


def is_recording() -> bool:
    """Whether an.replay is recording a step on this thread."""
    return replay_recording.active
