"""Checkpoints: an.save(state_dict, path) and an.load(path), as torch.save/torch.load.

    an.save(model.state_dict(), "model.npz")
    model.load_state_dict(an.load("model.npz"))

Format. A checkpoint is an uncompressed zip archive, readable by np.load: array i is the .npy
member arr_i.npy, and the member autonet-manifest.json lists, in order, each array's name, dtype,
shape and the sha256 of its raw C-order bytes. Names live only in the manifest, so any non-empty
str round-trips exactly ('file', 'allow_pickle', 'a' beside 'a.npy', '\\x00', any unicode); as
.npz member names they would collide with np.savez's keywords, with each other or be cut short.
Arrays come back exactly as saved: same dtype (byte order included: a big-endian array stays
big-endian), same shape (0-d and empty too), same bytes, in a fresh writeable array.

load() trusts nothing in the file and never runs code from it (no pickle). Before reading an array
it checks that the zip member is stored (not compressed, not encrypted) and fits in the file, and
that the .npy header agrees with the manifest and with the member's real size, so a header cannot
ask for more memory than the file holds; it then checks the zip CRC-32 and the manifest's sha256,
and that the archive holds exactly the manifest's members. Any failure raises ValueError naming the
file and the reason. A file without a manifest (np.savez, or an.save before the manifest) is loaded
with the same checks minus the sha256 (the CRC-32 still covers every byte), its names taken from
the member names; every member must then be a .npy of a numeric array, stored uncompressed
(np.savez, not np.savez_compressed: a compressed member's size is not bounded by the file's).

Writing. save() checks every name and array before touching the disk, writes a temporary file in
the target's folder, fsyncs it and renames it over the target (os.replace, atomic on POSIX and
Windows): a reader sees the old checkpoint or the new one, never part of one. The temporary is
named .{target name}.{host}.{pid}.{thread id}.autonet-tmp and removed if the save fails; one left
by a killed process (kill -9, power loss) is removed by the next save of the same target on the
same host, once no process with its pid is alive. Temporaries of live savers, on this host or on
others sharing the folder, are left alone, so concurrent saves of one target do not disturb each
other (the last rename wins). On Windows, where os.kill cannot probe a process without ending it,
stale temporaries are not removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import socket
import struct
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from autonet.tensor import Tensor

MANIFEST = "autonet-manifest.json"
FORMAT = "autonet checkpoint"
VERSION = 1
NUMERIC = "biufc"  # bool, int, uint, float, complex: arrays that load without pickle
# a canonical numeric dtype string, e.g. '<f8', '|b1', '>c16' (no objects, records or subarrays)
DTYPE = re.compile(r"[<>|][biufc][0-9]{1,2}")
CHUNK = 1 << 20  # bytes read at a time, so a load allocates only what the file really holds


class Entry(NamedTuple):
    """One array as the manifest describes it."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    sha256: str


class CorruptError(Exception):
    """A check of load() failed; the message says which."""


def save(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write {name: array or Tensor} to path, atomically, with a manifest that load() verifies.

    The path is used as given (no ".npz" appended). Names must be non-empty str; arrays must be
    numeric (dtype kind b, i, u, f or c). Nothing is written unless every entry passes.
    """
    if not isinstance(state, Mapping):
        raise TypeError(
            f"save: expected a mapping {{name: array}}, got {type(state).__name__}; to save a "
            "model's parameters, pass model.state_dict()"
        )
    arrays = [(name, checked_array(name, value)) for name, value in state.items()]
    target = Path(path)
    remove_stale_temporaries(target)
    temporary = target.with_name(
        f".{target.name}.{socket.gethostname()}.{os.getpid()}.{threading.get_native_id()}"
        ".autonet-tmp"
    )
    descriptor = create_exclusively(temporary)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write_archive(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def checked_array(name: object, value: Any) -> np.ndarray:
    """value as a C-contiguous numeric ndarray, or TypeError/ValueError naming what to fix."""
    if not isinstance(name, str):
        raise TypeError(
            f"save: names must be strings, got {name!r} ({type(name).__name__}); nothing was "
            "written"
        )
    if not name:
        raise ValueError(
            "save: an array has the empty name ''; give every array a non-empty name, as "
            "state_dict() does ('layers.0.weight'); nothing was written"
        )
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in NUMERIC:
        raise TypeError(
            f"save: {name!r} has dtype {array.dtype}; only numeric arrays can be saved "
            "(no objects, so that loading never needs pickle)"
        )
    return array if array.flags.c_contiguous else array.copy(order="C")


def write_archive(file: io.BufferedWriter, arrays: list[tuple[str, np.ndarray]]) -> None:
    """The zip archive of arrays (C-contiguous) and their manifest, written to file."""
    records = []
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for index, (name, array) in enumerate(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                buffer, np.lib.format.header_data_from_array_1_0(array)
            )
            header = buffer.getvalue()
            data = array.reshape(-1).view(np.uint8)  # the raw bytes, without a copy
            # ZipInfo's default date (1980) keeps the file a function of the state alone
            info = zipfile.ZipInfo(member_name(index))
            info.file_size = len(header) + data.nbytes  # zipfile decides on zip64 from it
            with archive.open(info, "w") as member:
                member.write(header)
                member.write(data)
            records.append(
                {
                    "name": name,
                    "dtype": array.dtype.str,
                    "shape": list(array.shape),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        manifest = {"format": FORMAT, "version": VERSION, "arrays": records}
        # json escapes non-ASCII characters, so the manifest is ASCII whatever the names
        archive.writestr(zipfile.ZipInfo(MANIFEST), json.dumps(manifest, indent=1))


def member_name(index: int) -> str:
    return f"arr_{index}.npy"  # np.savez's name for a positional array, so np.load reads it too


def remove_stale_temporaries(target: Path) -> None:
    """Remove the temporaries of target left on this host by saves whose process is gone."""
    if os.name != "posix":
        return  # os.kill(pid, 0) would end the process there, not probe it
    prefix = re.escape(f".{target.name}.{socket.gethostname()}.")
    pattern = re.compile(prefix + r"([1-9][0-9]*)\.[0-9]+\.autonet-tmp")
    for entry in os.scandir(target.parent):
        match = pattern.fullmatch(entry.name)
        if match and not process_is_alive(int(match[1])):
            # another saver may be removing the same file at the same moment
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def process_is_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (zombies included)."""
    try:
        os.kill(pid, 0)  # signal 0: checks that pid exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists and belongs to another user
    except OverflowError:
        return False  # larger than any pid, so no live process wrote it
    return True


def create_exclusively(path: Path) -> int:
    """A descriptor of path, newly created (O_EXCL: never through a link planted there)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        return os.open(path, flags, 0o600)
    except FileExistsError:
        # Only this thread of this process uses this name and it saves one file at a time, so
        # the file was left by a killed process that had the same pid and thread id.
        os.unlink(path)
        return os.open(path, flags, 0o600)


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The {name: array} that save() wrote to path, exactly, or ValueError naming the problem.

    A file that is not a complete, unmodified checkpoint (truncated, a flipped bit, a member that
    is not a numeric .npy, a header claiming more data than the file holds, a single .npy, a
    pickle) raises ValueError naming the file and the reason. A missing file raises
    FileNotFoundError, as open() does.
    """
    name = os.fspath(path)
    with open(path, "rb") as file:
        if file.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX:
            raise ValueError(
                f"load: {name!r} holds a single array (.npy), not the archive of named arrays "
                "that an.save writes"
            )
        file.seek(0)
        try:
            return read_archive(file, os.fstat(file.fileno()).st_size)
        except UNREADABLE as exc:
            reason = str(exc) if isinstance(exc, CorruptError) else f"{type(exc).__name__}: {exc}"
            raise ValueError(
                f"load: cannot read {name!r} as a checkpoint ({reason}); it must be a complete "
                "file written by an.save (no pickled objects)"
            ) from exc


# What reading a damaged file raises besides our own checks: zipfile meets any bytes with
# BadZipFile, EOFError, OSError (a seek before the start), NotImplementedError (a zip version or
# feature it lacks); numpy's .npy header parser and json raise ValueError (UnicodeDecodeError
# too), and json raises RecursionError on a deeply nested manifest.
UNREADABLE = (
    CorruptError,
    zipfile.BadZipFile,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RecursionError,
)


def read_archive(file: io.BufferedReader, size: int) -> dict[str, np.ndarray]:
    """The arrays of the zip archive in file (size bytes long), each check passed, or an error."""
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        names = [member.filename for member in members]
        if len(set(names)) != len(names):
            raise CorruptError(f"a member name appears twice in {names}")
        for member in members:
            if member.comment or foreign_extra(member.extra):
                # A damaged comment or extra-field length in an entry of the central directory
                # swallows the entries after it, which zipfile then skips without a word. an.save
                # and np.savez write no comments, and extra fields only for zip64 sizes.
                raise CorruptError(
                    f"member {member.filename!r} has a comment or an unknown extra field"
                )
            if member.flag_bits & 0x1:
                raise CorruptError(f"member {member.filename!r} is encrypted")
            if member.compress_type != zipfile.ZIP_STORED:
                raise CorruptError(
                    f"member {member.filename!r} is compressed (zip method "
                    f"{member.compress_type}); an.save stores members uncompressed: read it "
                    "with np.load and save it again with an.save"
                )
            if member.compress_size != member.file_size or (
                member.header_offset + member.file_size > size
            ):
                raise CorruptError(
                    f"member {member.filename!r} claims {member.file_size} bytes at offset "
                    f"{member.header_offset}, but the file has {size} bytes"
                )
        if MANIFEST not in names:
            # written without a manifest: names from the members, checked as below but no sha256
            for name in names:
                if not name.endswith(".npy"):
                    raise CorruptError(f"member {name!r} is not an array (.npy)")
            return {name[: -len(".npy")]: read_array(archive, name, None) for name in names}
        entries = parse_manifest(archive.read(MANIFEST))
        expected = [MANIFEST] + [member_name(index) for index in range(len(entries))]
        if sorted(names) != sorted(expected):
            raise CorruptError(
                f"the members are {sorted(names)}, the manifest lists {sorted(expected)}"
            )
        return {
            entry.name: read_array(archive, member_name(index), entry)
            for index, entry in enumerate(entries)
        }


def foreign_extra(extra: bytes) -> bool:
    """Whether a member's extra fields hold anything but zip64 sizes (header id 1)."""
    while len(extra) >= 4:
        header_id, length = struct.unpack("<HH", extra[:4])
        if header_id != 1:
            return True
        extra = extra[4 + length :]
    return len(extra) > 0


def parse_manifest(data: bytes) -> list[Entry]:
    """The manifest's entries, each field checked for type and range, or CorruptError."""
    manifest = json.loads(data.decode("ascii"))
    if not (
        isinstance(manifest, dict)
        and manifest.keys() == {"format", "version", "arrays"}
        and manifest["format"] == FORMAT
        and isinstance(manifest["arrays"], list)
    ):
        raise CorruptError(f"{MANIFEST} is not an autonet manifest")
    if manifest["version"] != VERSION:
        raise CorruptError(
            f"{MANIFEST} has version {manifest['version']!r}; this autonet reads version "
            f"{VERSION} (a newer autonet wrote it?)"
        )
    entries = []
    for record in manifest["arrays"]:
        if not (
            isinstance(record, dict)
            and record.keys() == {"name", "dtype", "shape", "sha256"}
            and isinstance(record["name"], str)
            and record["name"]
            and canonical_dtype(record["dtype"])
            and isinstance(record["shape"], list)
            and len(record["shape"]) <= 64  # numpy's limit on dimensions
            and all(type(n) is int and n >= 0 for n in record["shape"])
            and isinstance(record["sha256"], str)
            and re.fullmatch("[0-9a-f]{64}", record["sha256"])
        ):
            raise CorruptError(f"{MANIFEST} has a malformed entry {record!r}")
        dtype = np.dtype(record["dtype"])
        entries.append(Entry(record["name"], dtype, tuple(record["shape"]), record["sha256"]))
    if len({entry.name for entry in entries}) != len(entries):
        raise CorruptError(f"{MANIFEST} lists a name twice")
    return entries


def canonical_dtype(text: object) -> bool:
    """Whether text is the .str of a numeric dtype: '<f8' is, '<b1' ('|b1') and 'f8' are not."""
    if not (isinstance(text, str) and DTYPE.fullmatch(text)):
        return False
    try:
        return np.dtype(text).str == text
    except TypeError:  # '<f3', '<i7': the pattern admits sizes numpy does not have
        return False


def read_array(archive: zipfile.ZipFile, member: str, entry: Entry | None) -> np.ndarray:
    """The array in member, checked against entry (None: no manifest), or CorruptError.

    Nothing is allocated until the .npy header's shape and dtype account exactly for the bytes the
    member holds, and that size was checked against the file's size by read_archive.
    """
    size = archive.getinfo(member).file_size
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise CorruptError(f"member {member!r} is a .npy of unsupported version {version}")
        if dtype.kind not in NUMERIC or dtype.fields is not None or dtype.subdtype is not None:
            raise CorruptError(f"member {member!r} holds dtype {dtype}; only numeric arrays load")
        if any(n < 0 for n in shape):
            raise CorruptError(f"member {member!r} has a negative length in its shape {shape}")
        if entry is not None and (dtype.str, shape, fortran_order) != (
            entry.dtype.str,
            entry.shape,
            False,
        ):
            raise CorruptError(
                f"member {member!r} has header dtype {dtype.str}, shape {shape}, fortran_order "
                f"{fortran_order}; the manifest says {entry.dtype.str}, {entry.shape}, False"
            )
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != size - stream.tell():
            raise CorruptError(
                f"member {member!r} declares shape {shape} of {dtype} ({nbytes} bytes) but holds "
                f"{size - stream.tell()} bytes of data"
            )
        data = bytearray(nbytes)
        view = memoryview(data)
        filled = 0
        while filled < nbytes:
            count = stream.readinto(view[filled : filled + CHUNK])  # zipfile checks the CRC-32
            if count == 0:  # zipfile raises EOFError first; this guards against a silent loop
                raise CorruptError(f"member {member!r} ends early")
            filled += count
    if entry is not None and hashlib.sha256(data).hexdigest() != entry.sha256:
        raise CorruptError(f"the sha256 of {entry.name!r} ({member!r}) differs from the manifest's")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")
