"""Checkpoints: an.save(state, path) and an.load(path), as torch.save/torch.load.

    an.save(model.state_dict(), "model.npz")
    model.load_state_dict(an.load("model.npz"))

    an.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, path)
    checkpoint = an.load(path)          # the same nesting: checkpoint["epoch"] == 3
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])

What a state holds. A state is a mapping; its values, at any depth, are
    arrays and Tensors       saved as arrays (a Tensor's .data), loaded as ndarrays;
    bool, int, float         Python numbers (np.float64 is a float), saved as 0-d arrays of dtype
                             bool, int64, float64 and loaded as the same Python type and value
                             (an int outside int64's range is refused); other NumPy scalars
                             (np.float32(1)) are saved and loaded as 0-d arrays;
    str                      kept in the manifest (not an array), loaded as str;
    mappings                 keys are non-empty str or int (np.integer becomes int, np.str_
                             str), loaded as dicts with the same keys, in the same order;
    lists and tuples         loaded as lists and tuples (each number in them is a 0-d array of
                             its own: store a long run of numbers as one array instead).
Nothing else (None, bytes, objects): save refuses it, naming where it sits. Nesting is flattened:
every array is stored under its dotted key, the keys on its path joined by "." (ints in decimal:
"optimizer.state.0.exp_avg"), and the manifest keeps the nesting itself (its "tree"), each key
verbatim. So keys containing dots need no escaping: {"layers.0.weight": w} and
{"layers": {"0": {"weight": w}}} share the dotted key "layers.0.weight" but load back each as it
was saved, and an int key 0 comes back as 0, not "0".

Format. A checkpoint is an uncompressed zip archive, readable by np.load: array i is the .npy
member arr_i.npy, and the member autonet-manifest.json lists, in order, each array's dotted key,
dtype, shape and the sha256 of its raw C-order bytes, and the tree: a JSON node that is
{"dict": [[key, node], ...]}, {"list": [node, ...]}, {"tuple": [node, ...]}, or a leaf
{"array": i}, {"int": i}, {"float": i} or {"bool": i} (array i, and how to return it) or
{"str": text}; the array leaves, read depth first, number the arrays 0, 1, 2, ... Keys live
only in the manifest, so any non-empty str round-trips exactly ('file', 'allow_pickle', 'a'
beside 'a.npy', '\\x00', any unicode); as .npz member names they would collide with np.savez's
keywords, with each other or be cut short.
Arrays come back exactly as saved: same dtype (byte order included: a big-endian array stays
big-endian), same shape (0-d and empty too), same bytes, in a fresh writeable array. Files of
version 1 (a flat manifest without a tree, written by an earlier autonet) load as {key: array}.

load() trusts nothing in the file and never runs code from it (no pickle). Before reading an array
it checks that the zip member is stored (not compressed, not encrypted) and fits in the file, and
that the .npy header agrees with the manifest and with the member's real size, so a header cannot
ask for more memory than the file holds; it then checks the zip CRC-32 and the manifest's sha256,
that the archive holds exactly the manifest's members, and that the tree numbers every array once,
in order, under its dotted key, a number leaf's array being 0-d of its dtype. Any failure raises
ValueError naming the file and the reason. A file without a manifest (np.savez, or an.save before
the manifest) is loaded with the same checks minus the sha256 (the CRC-32 still covers every
byte), its names taken from the member names; every member must then be a .npy of a numeric
array, stored uncompressed (np.savez, not np.savez_compressed: a compressed member's size is not
bounded by the file's).

Writing. save() checks every key and value before touching the disk, writes a temporary file in
the target's folder, fsyncs it and renames it over the target (os.replace, atomic on POSIX and
Windows): a reader sees the old checkpoint or the new one, never part of one. The file gets mode
0o666 & ~umask, as open() would give it. The temporary is
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from autonet import backend
from autonet.optim import Optimizer
from autonet.tensor import Tensor

MANIFEST = "autonet-manifest.json"
FORMAT = "autonet checkpoint"
VERSION = 2  # 1: a flat manifest of names; 2: dotted keys and the tree that nests them
MAX_DEPTH = 64  # containers nested deeper (a dict that holds itself?) are refused
# the 0-d arrays that hold Python numbers, by the tree's name for them
NUMBERS = {"bool": np.dtype(np.bool_), "int": np.dtype(np.int64), "float": np.dtype(np.float64)}
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


def save(state: Mapping[Any, Any], path: str | os.PathLike) -> None:
    """Write state ({key: array, Tensor, number or nested dict/list of them}) to path, atomically,
    with a manifest that load() verifies; the module docstring gives the rules.

    The path is used as given (no ".npz" appended). Keys must be non-empty str or int; arrays must
    be numeric (dtype kind b, i, u, f or c). Nothing is written unless every entry passes.
    """
    if not isinstance(state, Mapping):
        # a model or an optimizer passed itself instead of its state
        what = (
            "an optimizer's state, pass optimizer.state_dict()"
            if isinstance(state, Optimizer)
            else "a model's parameters, pass model.state_dict()"
        )
        raise TypeError(
            f"save: expected a mapping {{name: array}}, got {type(state).__name__}; to save {what}"
        )
    arrays: list[tuple[str, np.ndarray]] = []
    tree = flatten(state, (), arrays)
    target = Path(path)
    remove_stale_temporaries(target)
    temporary = target.with_name(
        f".{target.name}.{socket.gethostname()}.{os.getpid()}.{threading.get_native_id()}"
        ".autonet-tmp"
    )
    descriptor = create_exclusively(temporary)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write_archive(file, arrays, tree)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def flatten(value: Any, path: tuple[str | int, ...], arrays: list) -> dict:
    """The tree node of value (at path), its arrays appended to arrays as (dotted key, array)."""
    if len(path) > MAX_DEPTH:
        raise ValueError(
            f"save: {dotted(path[:3])!r}... is nested more than {MAX_DEPTH} levels deep (does a "
            "container hold itself?); nothing was written"
        )
    if isinstance(value, Mapping):
        return {"dict": [[key, flatten(value[key], (*path, key), arrays)] for key in keys(value)]}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [flatten(item, (*path, i), arrays) for i, item in enumerate(value)]}
    if isinstance(value, str):
        return {"str": value}  # in the manifest itself: a str is no array
    kind, array = leaf(value, path)
    arrays.append((dotted(path), array))
    return {kind: len(arrays) - 1}


def keys(mapping: Mapping) -> list[str | int]:
    """mapping's keys, each checked: a non-empty str or an int (np.integer becomes int)."""
    checked = []
    for key in mapping:
        if isinstance(key, np.integer):
            key = int(key)
        elif isinstance(key, str):
            key = str(key)  # np.str_ and other subclasses: a plain str, as load returns
        if type(key) not in (str, int):  # bool is an int, but would come back as 0 or 1
            raise TypeError(
                f"save: keys must be str or int, got {key!r} ({type(key).__name__}); nothing was "
                "written"
            )
        if key == "":
            raise ValueError(
                "save: an array has the empty name ''; give every array a non-empty name, as "
                "state_dict() does ('layers.0.weight'); nothing was written"
            )
        checked.append(key)
    return checked


def dotted(path: Sequence[str | int]) -> str:
    """The dotted key of an array: the keys on its path joined by '.' ('state.0.exp_avg')."""
    return ".".join(str(key) for key in path)


def leaf(value: Any, path: tuple[str | int, ...]) -> tuple[str, np.ndarray]:
    """How load() returns value ('array', 'bool', 'int' or 'float') and its C-contiguous array."""
    name = dotted(path)
    if type(value) is bool:
        return "bool", np.array(value, np.bool_)
    if type(value) is int:
        if not -(2**63) <= value < 2**63:
            raise OverflowError(
                f"save: {name!r} is the int {value}, outside int64's range; save it as a float "
                "or split it; nothing was written"
            )
        return "int", np.array(value, np.int64)
    if isinstance(value, float):
        return "float", np.array(value, np.float64)
    if not isinstance(value, (Tensor, np.ndarray, np.generic)) and not backend.is_foreign(value):
        raise TypeError(
            f"save: {name!r} is a {type(value).__name__}; values must be arrays, Tensors, "
            "bool, int, float, str, or dicts, lists and tuples of them (for a model or an "
            "optimizer, save its state_dict()); nothing was written"
        )
    # another library's array (a torch tensor, on a GPU too) is saved as its values in NumPy
    if isinstance(value, Tensor):
        array = value.numpy()
    elif backend.is_foreign(value):
        array = backend.to_numpy(value)
    else:
        array = np.asarray(value)
    if array.dtype.kind not in NUMERIC:
        raise TypeError(
            f"save: {name!r} has dtype {array.dtype}; only numeric arrays can be saved "
            "(no objects, so that loading never needs pickle)"
        )
    return "array", array if array.flags.c_contiguous else array.copy(order="C")


def write_archive(
    file: io.BufferedWriter, arrays: list[tuple[str, np.ndarray]], tree: dict
) -> None:
    """The zip archive of arrays (C-contiguous) and their manifest with tree, written to file."""
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
        manifest = {"format": FORMAT, "version": VERSION, "arrays": records, "tree": tree}
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
        return os.open(path, flags, 0o666)  # 0o666 & ~umask, as open(path, "w") would
    except FileExistsError:
        # Only this thread of this process uses this name and it saves one file at a time, so
        # the file was left by a killed process that had the same pid and thread id.
        os.unlink(path)
        return os.open(path, flags, 0o666)


def load(path: str | os.PathLike) -> dict[Any, Any]:
    """The state that save() wrote to path, exactly, or ValueError naming the problem.

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


def read_archive(file: io.BufferedReader, size: int) -> dict[Any, Any]:
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
        entries, tree = parse_manifest(archive.read(MANIFEST))
        expected = [MANIFEST] + [member_name(index) for index in range(len(entries))]
        if sorted(names) != sorted(expected):
            raise CorruptError(
                f"the members are {sorted(names)}, the manifest lists {sorted(expected)}"
            )
        arrays = [
            read_array(archive, member_name(index), entry) for index, entry in enumerate(entries)
        ]
        if tree is None:  # version 1: a flat {name: array}
            return {entry.name: array for entry, array in zip(entries, arrays, strict=True)}
        return rebuild(tree, arrays, [entry.name for entry in entries])


def rebuild(tree: object, arrays: list[np.ndarray], names: list[str]) -> dict[Any, Any]:
    """The state that tree describes, its leaves taken from arrays in order, or CorruptError.

    Every node is checked: its kind, its keys (non-empty str or int, each once), its depth, and
    that the leaves number the arrays 0, 1, 2, ... in order, each under its dotted key.
    """
    used = 0

    def build(node: object, path: tuple[str | int, ...]) -> Any:
        nonlocal used
        if len(path) > MAX_DEPTH or not (isinstance(node, dict) and len(node) == 1):
            raise CorruptError(f"{MANIFEST} has a malformed tree at {dotted(path)!r}")
        ((kind, content),) = node.items()
        if kind == "dict" and isinstance(content, list):
            result: dict[str | int, Any] = {}
            for item in content:
                if not (
                    isinstance(item, list)
                    and len(item) == 2
                    and type(item[0]) in (str, int)
                    and item[0] != ""
                    and item[0] not in result
                ):
                    raise CorruptError(f"{MANIFEST} has a malformed key at {dotted(path)!r}")
                result[item[0]] = build(item[1], (*path, item[0]))
            return result
        if kind == "str" and isinstance(content, str):
            return content
        if kind in ("list", "tuple") and isinstance(content, list):
            items = [build(item, (*path, index)) for index, item in enumerate(content)]
            return items if kind == "list" else tuple(items)
        if kind == "array" or kind in NUMBERS:
            if not (
                type(content) is int
                and content == used < len(arrays)
                and names[used] == dotted(path)
            ):
                raise CorruptError(
                    f"{MANIFEST}'s tree and entries disagree on array {content!r} at "
                    f"{dotted(path)!r}"
                )
            array = arrays[used]
            used += 1
            if kind == "array":
                return array
            if array.shape != () or array.dtype.str != NUMBERS[kind].str:
                raise CorruptError(
                    f"{dotted(path)!r} should be a 0-d array of {NUMBERS[kind]} (a Python "
                    f"{kind}), but has shape {array.shape} and dtype {array.dtype}"
                )
            return {"bool": bool, "int": int, "float": float}[kind](array[()])
        raise CorruptError(f"{MANIFEST} has a malformed tree at {dotted(path)!r}")

    if not (isinstance(tree, dict) and list(tree) == ["dict"]):
        raise CorruptError(f"{MANIFEST}'s tree is not a mapping")
    state = build(tree, ())
    if used != len(arrays):
        raise CorruptError(f"{MANIFEST}'s tree holds {used} of its {len(arrays)} arrays")
    return state


def foreign_extra(extra: bytes) -> bool:
    """Whether a member's extra fields hold anything but zip64 sizes (header id 1)."""
    while len(extra) >= 4:
        header_id, length = struct.unpack("<HH", extra[:4])
        if header_id != 1:
            return True
        extra = extra[4 + length :]
    return len(extra) > 0


def parse_manifest(data: bytes) -> tuple[list[Entry], object]:
    """The manifest's entries, each field checked for type and range, and its tree (None in
    version 1), or CorruptError."""
    manifest = json.loads(data.decode("ascii"))
    if not (
        isinstance(manifest, dict)
        and {"format", "version", "arrays"} <= manifest.keys()
        and manifest["format"] == FORMAT
        and isinstance(manifest["arrays"], list)
    ):
        raise CorruptError(f"{MANIFEST} is not an autonet manifest")
    if manifest["version"] not in (1, VERSION) or type(manifest["version"]) is not int:
        raise CorruptError(
            f"{MANIFEST} has version {manifest['version']!r}; this autonet reads versions 1 "
            f"and {VERSION} (a newer autonet wrote it?)"
        )
    fields = {"format", "version", "arrays"} | ({"tree"} if manifest["version"] == 2 else set())
    if manifest.keys() != fields:
        raise CorruptError(f"{MANIFEST} is not an autonet manifest")
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
    if manifest["version"] == 2:  # dotted keys may coincide; the tree tells them apart
        return entries, manifest["tree"]
    if len({entry.name for entry in entries}) != len(entries):
        raise CorruptError(f"{MANIFEST} lists a name twice")
    return entries, None


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
