"""Checkpoints: an.save(state_dict, path) and an.load(path), as torch.save/torch.load but as .npz.

A checkpoint is a NumPy .npz archive of named arrays (model.state_dict()), read back with
allow_pickle=False: loading a file never runs code from it, unlike pickle-based formats. The file
is written to a temporary file in the same folder and then renamed over the target (os.replace,
atomic on POSIX and Windows), so an interrupted save leaves the previous checkpoint intact rather
than a half-written one.

    an.save(model.state_dict(), "model.npz")
    model.load_state_dict(an.load("model.npz"))
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from autonet.tensor import Tensor


def save(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write {name: array or Tensor} to path as an .npz archive, atomically.

    The path is used as given (np.savez would append ".npz" to a name without it).
    """
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"save: names must be non-empty strings, got {name!r}")
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biufc":
            raise TypeError(
                f"save: {name!r} has dtype {array.dtype}; only numeric arrays can be saved "
                "(no objects, so that loading never needs pickle)"
            )
        arrays[name] = array
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The {name: array} saved by save(), read with allow_pickle=False.

    A file that is not a complete .npz of numeric arrays (truncated, corrupted, a single .npy, or
    containing pickled objects) raises ValueError naming the file and the reason.
    """
    name = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except UNREADABLE as exc:
        raise unreadable(name, exc) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"load: {name!r} holds a single array (.npy), not the named .npz archive that an.save "
            "writes"
        )
    try:
        with archive:
            return {key: archive[key] for key in archive.files}
    except UNREADABLE as exc:  # a truncated member, a bad CRC, or an object (pickled) array
        raise unreadable(name, exc) from exc


UNREADABLE = (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError)


def unreadable(name: str, exc: Exception) -> ValueError:
    return ValueError(
        f"load: cannot read {name!r} as a checkpoint ({type(exc).__name__}: {exc}); it must be a "
        "complete .npz file written by an.save (no pickled objects)"
    )
