"""detect_anomaly: find the operation where a NaN or an infinity first appears, and where the
user's code created it.

    with an.detect_anomaly():
        loss = model(x)      # an op whose value has a NaN or inf raises FloatingPointError here,
        loss.backward()      # and so does a VJP whose gradient has one, naming the op, its input
                             # shapes and dtypes, and the line of user code that created the op

Free when off: entering the first mode sets the one hook that tensor.record consults
(modes.record_hook, None while no thread is in anomaly mode) to `record_checked`, and leaving the
last clears it. `record_checked` notes the first frame outside autonet (the user's line), checks
the forward value, and gives a recorded node a `WatchedPrimitive` op whose VJPs check their
gradients; the backward pass runs them like any other op.

Anomaly mode is per thread, as no_grad: while another thread is in it, ops on this thread pass
through `record_checked` unchecked. A step of an.replay called on a thread in anomaly mode runs
eagerly, loss_fn then backward() (its generated code records no op, so nothing would be checked):
it raises where eager mode raises, with the same message.
Differences from torch.autograd.detect_anomaly: forward values are checked too, not only
gradients, and the error is a FloatingPointError (PyTorch: RuntimeError).
Not checked: the sum of two finite gradients of a reused tensor that overflows to inf.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from autonet import modes
from autonet.primitives import Primitive
from autonet.tensor import NO_PARAMS, Tensor, numbers_of, record


class AnomalyMode(threading.local):
    """Whether anomaly mode is on, per thread. `enabled` defaults to False as a class attribute,
    so reading it is one attribute lookup."""

    enabled = False


_anomaly_mode = AnomalyMode()
_hook_lock = threading.Lock()
_active = 0  # how many `with detect_anomaly()` blocks are open, over all threads (replay reads it)
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_anomaly_enabled() -> bool:
    """Whether anomaly detection is on for this thread (as torch.is_anomaly_enabled)."""
    return _anomaly_mode.enabled


class detect_anomaly:
    """Context manager: raise FloatingPointError at the first op whose value or gradient has a NaN
    or an infinity, naming the op, its input shapes and dtypes, and the user's line that created
    it. Slow (every value is scanned); off by default, and costs nothing while off."""

    def __enter__(self) -> detect_anomaly:
        global _active
        self.previous = is_anomaly_enabled()
        _anomaly_mode.enabled = True
        with _hook_lock:
            if _active == 0:
                modes.record_hook = record_checked
            _active += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _active
        _anomaly_mode.enabled = self.previous
        with _hook_lock:
            _active -= 1
            if _active == 0:
                modes.record_hook = None


class Site:
    """Where user code created an op: the first stack frame outside the autonet package."""

    __slots__ = ("filename", "lineno", "function")

    def __init__(self) -> None:
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_code.co_filename.startswith(PACKAGE_DIR):
            frame = frame.f_back
        self.filename = frame.f_code.co_filename
        self.lineno = frame.f_lineno
        self.function = frame.f_code.co_name

    def __str__(self) -> str:
        where = f'File "{self.filename}", line {self.lineno}, in {self.function}'
        line = linecache.getline(self.filename, self.lineno).strip()
        return f"{where}: {line}" if line else where


class WatchedPrimitive(Primitive):
    """A primitive recorded under anomaly mode: same name, forward and math, plus the site that
    created the node and VJPs that raise if a gradient they return has a NaN or an infinity."""

    __slots__ = ("site", "input_shapes", "input_dtypes")

    def __init__(self, primitive: Primitive, inputs: tuple[Tensor, ...], site: Site) -> None:
        self.site = site
        self.input_shapes = [t.shape for t in inputs]
        self.input_dtypes = [str(t.dtype) for t in inputs]
        vjps = [
            None if vjp is None else self.checked(vjp, None if primitive.variadic else i)
            for i, vjp in enumerate(primitive.vjps)
        ]
        super().__init__(
            primitive.name,
            primitive.forward,
            *vjps,
            variadic=primitive.variadic,
            elementwise=primitive.elementwise,
            commutative=primitive.commutative,
            axis_param=primitive.axis_param,
            permutation=primitive.permutation,
            kink=primitive.kink,
            notation=primitive.notation,
            explain=primitive.explain,
        )

    def checked(self, vjp: Callable[..., Any], position: int | None) -> Callable[..., Any]:
        def checked_vjp(*args: Any, **params: Any) -> Any:
            with np.errstate(all="ignore"):  # NumPy's warnings become the error below
                grad = vjp(*args, **params)
            if not all_finite(grad):
                i = args[0] if position is None else position
                g = args[1] if position is None else args[0]
                cause = (
                    "the gradient flowing into it was already non-finite (check backward's grad)"
                    if not all_finite(g)
                    else "from a finite incoming gradient: the derivative is infinite or "
                    "undefined at these inputs (e.g. log or sqrt at 0, division by 0)"
                )
                raise FloatingPointError(
                    f"detect_anomaly: the gradient of {self.name} for input {i} has "
                    f"{nonfinite_kind(grad)} values, {cause}; {self.name} had input shapes "
                    f"{self.input_shapes}, dtypes {self.input_dtypes}, and was created at\n"
                    f"    {self.site}"
                )
            return grad

        return checked_vjp


def all_finite(x: Any) -> bool:
    array = numbers_of(x)
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


def nonfinite_kind(x: Any) -> str:
    array = numbers_of(x)
    return "nan" if np.isnan(array).any() else "inf"


def record_checked(
    primitive: Primitive, inputs: tuple[Tensor, ...], params: dict = NO_PARAMS
) -> Tensor:
    """tensor.record, checked when this thread is in anomaly mode (see the module docstring)."""
    if not _anomaly_mode.enabled:
        return record(primitive, inputs, params, hooked=False)
    site = Site()
    with np.errstate(all="ignore"):  # NumPy's warnings become the error below
        out = record(primitive, inputs, params, hooked=False)
    if not all_finite(out):
        shapes = [t.shape for t in inputs]
        dtypes = [str(t.dtype) for t in inputs]
        bad = [i for i, t in enumerate(inputs) if not all_finite(t)]
        if bad:
            culprit = inputs[bad[0]]
            named = f"{culprit.name!r}, " if culprit.name else ""
            cause = (
                f"its input {bad[0]} ({named}shape {culprit.shape}) already contains "
                f"{nonfinite_kind(culprit)}: it comes from the data or from a tensor "
                "computed outside detect_anomaly"
            )
        else:
            cause = (
                "from finite inputs (e.g. log or division at 0, sqrt of a negative number, "
                "exp overflow)"
            )
        raise FloatingPointError(
            f"detect_anomaly: {primitive.name} produced {nonfinite_kind(out)} values, {cause}; "
            f"input shapes {shapes}, dtypes {dtypes}; created at\n    {site}"
        )
    if out.op is primitive:
        out.op = WatchedPrimitive(primitive, inputs, site)
    return out
