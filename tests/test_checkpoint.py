"""Checkpoints: an.save / an.load / load_state_dict round-trip exactly (any array, any str name),
write atomically and clean up after killed saves; a damaged, crafted, truncated, mismatched or
pickled file raises a clear ValueError and leaves the model as it was."""

import io
import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn
from tests.conftest import run_env
from tests.test_errors import DOCS, docs_row, run_example

MANIFEST = "autonet-manifest.json"  # the member that lists names, dtypes, shapes and sha256s


def snapshot(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after.keys() == before.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


@settings(max_examples=10, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_restores_every_parameter_exactly(tmp_path_factory, sizes, bias, seed):
    path = tmp_path_factory.mktemp("ck") / "model.npz"
    model = nn.MLP(sizes, bias=bias, rng=seed)
    an.save(model.state_dict(), path)
    other = nn.MLP(sizes, bias=bias, rng=seed + 1)
    other.load_state_dict(an.load(path))
    assert_unchanged(other, snapshot(model))
    x = np.random.default_rng(seed).normal(size=(2, sizes[0]))
    np.testing.assert_array_equal(other(x).data, model(x).data)


def test_state_dict_is_a_copy_and_load_copies_too(tmp_path):
    model = nn.Linear(2, 2, rng=0)
    state = model.state_dict()
    state["weight"][0, 0] = 99.0
    assert model.weight.data[0, 0] != 99.0
    model.load_state_dict(state)
    state["weight"][0, 0] = -1.0
    assert model.weight.data[0, 0] == 99.0


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model = nn.Linear(2, 3, rng=0)
    an.save(model.state_dict(), path)
    first = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process were stopped between write and rename

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        an.save(nn.Linear(2, 3, rng=1).state_dict(), path)
    assert path.read_bytes() == first  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    monkeypatch.undo()
    an.save(nn.Linear(2, 3, rng=1).state_dict(), path)
    assert path.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file_errors_and_model_is_unchanged(tmp_path, keep):
    path = tmp_path / "model.npz"
    an.save(nn.MLP([3, 4, 1], rng=0).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(keep * len(data))])
    model = nn.MLP([3, 4, 1], rng=1)
    before = snapshot(model)
    with pytest.raises(ValueError, match="cannot read .* as a checkpoint"):
        model.load_state_dict(an.load(path))
    assert_unchanged(model, before)


def test_pickled_files_are_refused(tmp_path):
    model = nn.MLP([3, 4, 1], rng=1)
    before = snapshot(model)
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps(model.state_dict()))
    with pytest.raises(ValueError, match="no pickled objects"):
        an.load(pickled)
    objects = tmp_path / "objects.npz"
    np.savez(objects, **{"layers.0.weight": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(ValueError, match="holds dtype object; only numeric arrays load"):
        an.load(objects)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match=r"single array \(.npy\)"):
        an.load(single)
    with pytest.raises(TypeError, match="only numeric arrays can be saved"):
        an.save({"w": np.array([object()])}, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
    assert_unchanged(model, before)


def test_mismatched_state_lists_every_problem_and_changes_nothing(tmp_path):
    path = tmp_path / "model.npz"
    # every saved value differs from the model's (biases start at 0 in both: shift them)
    an.save({k: v + 1 for k, v in nn.MLP([3, 5, 1], rng=0).state_dict().items()}, path)
    model = nn.MLP([3, 4, 1], rng=1)
    before = snapshot(model)
    with pytest.raises(ValueError) as error:
        model.load_state_dict(an.load(path))
    message = str(error.value)
    assert "nothing was changed" in message
    assert "'layers.0.weight' has shape (3, 5), the model's has (3, 4)" in message
    assert "'layers.2.weight' has shape (5, 1), the model's has (4, 1)" in message
    assert_unchanged(model, before)  # layers.2.bias fits, but was not loaded either

    state = an.load(path)
    state["extra"] = np.zeros(1)
    del state["layers.0.bias"]
    with pytest.raises(ValueError, match="missing 'layers.0.bias'.*unexpected 'extra'"):
        nn.MLP([3, 5, 1], rng=2).load_state_dict(state)


WRITERS = {
    "an.save": lambda path, state: an.save(state, path),
    # files written before the manifest (an.save was np.savez), or by NumPy directly
    "np.savez": lambda path, state: np.savez(path, **state),
    "np.savez_compressed": lambda path, state: np.savez_compressed(path, **state),
}


def assert_same_state(loaded, saved):
    """loaded holds saved's names in order, each array with the same dtype (byte order included),
    shape and bytes, as a writeable ndarray."""
    assert list(loaded) == list(saved)
    for name, value in saved.items():
        array, expected = loaded[name], np.asarray(value)
        assert type(array) is np.ndarray and array.flags.writeable
        assert array.dtype.str == expected.dtype.str and array.shape == expected.shape
        assert array.tobytes() == expected.tobytes()


def rewrite_archive(path, edit=lambda name, data: data, add=None):
    """Rewrite the zip archive at path, each member's bytes replaced by edit(name, bytes) and the
    members add ({name: bytes}) appended. zipfile recomputes every CRC-32, so only autonet's own
    checks can notice."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, edit(name, source.read(name)))
        for name, data in (add or {}).items():
            target.writestr(name, data)
    path.write_bytes(out.getvalue())


def npy(shape, dtype, data):
    """A .npy file's bytes: a header claiming shape and dtype, followed by data (of any length)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )
    return header.getvalue() + data


def damaged_copies(data):
    """data with each single bit flipped, then data cut short at every length."""
    for bit in range(8 * len(data)):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        yield bytes(damaged)
    for length in range(len(data)):
        yield data[:length]


@pytest.mark.parametrize("writer", ["an.save", "np.savez"])
def test_every_bit_flip_and_truncation_is_refused_or_loads_exactly_what_was_saved(tmp_path, writer):
    path = tmp_path / "model.npz"
    state = {"w": np.array([1.5, -2.0, 3.25], np.float32)}
    if writer == "np.savez":  # two members, so that a damaged entry could hide one
        state["layers.0.bias"] = np.array([7, -8], np.int8)
    WRITERS[writer](path, state)
    refused = exact = 0
    # rewritten in place: truncating on open, thousands of times, is slow on some file systems
    with open(path, "r+b") as file:
        for damaged in damaged_copies(path.read_bytes()):
            file.seek(0)
            file.write(damaged)
            file.truncate()
            file.flush()
            try:
                loaded = an.load(path)
            except ValueError as error:
                assert f"cannot read {str(path)!r} as a checkpoint" in str(error)
                refused += 1
            else:
                assert_same_state(loaded, state)
                exact += 1
    # bits that zipfile never reads (the local headers' copies of sizes, CRCs, times) are harmless
    assert refused > exact > 0


@pytest.mark.parametrize("writer", ["an.save", "np.savez"])
def test_a_header_claiming_2_to_the_40_elements_is_refused_without_allocating(tmp_path, writer):
    path = tmp_path / "model.npz"
    WRITERS[writer](path, {"w": np.zeros(1)})

    def claim_2_to_the_40(name, data):
        if name == MANIFEST:
            manifest = json.loads(data)
            manifest["arrays"][0]["shape"] = [2**40]
            return json.dumps(manifest)
        return npy((2**40,), np.float64, np.zeros(1).tobytes())

    rewrite_archive(path, claim_2_to_the_40)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"declares shape \(1099511627776,\) of float64"):
            an.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


@pytest.mark.parametrize(
    "writer, add, reason",
    [
        ("np.savez", {"notes.txt": b"not an array"}, r"member 'notes.txt' is not an array"),
        ("an.save", {"notes.txt": b"not an array"}, r"the members are .*'notes.txt'"),
        ("an.save", {"arr_1.npy": npy((1,), np.float64, bytes(8))}, r"the members are .*arr_1"),
        ("np.savez_compressed", None, r"member 'w.npy' is compressed \(zip method 8\)"),
    ],
)
def test_a_member_that_an_save_does_not_write_is_refused(tmp_path, writer, add, reason):
    path = tmp_path / "model.npz"
    WRITERS[writer](path, {"w": np.ones(2)})
    if add:
        rewrite_archive(path, add=add)
    with pytest.raises(ValueError, match=reason):
        an.load(path)


@pytest.mark.parametrize("length", ["comment", "extra field"])
def test_a_damaged_length_that_hides_the_next_entry_from_zipfile_is_refused(tmp_path, length):
    # The second entry of the central directory (46 bytes, then its name) is 518 bytes long, so
    # that read as extra fields it is one field of 513 bytes (its signature PK.. gives the length)
    # and 1 byte left over, which zipfile accepts; any bytes make a comment.
    path = tmp_path / "model.npz"
    np.savez(path, a=np.ones(2), **{"b" * 468: np.zeros(2)})
    data = bytearray(path.read_bytes())
    first = data.index(b"PK\x01\x02")
    second = data.index(b"PK\x01\x02", first + 1)
    field = first + {"comment": 32, "extra field": 30}[length]
    (old,) = struct.unpack_from("<H", data, field)
    struct.pack_into("<H", data, field, old + data.index(b"PK\x05\x06") - second)
    path.write_bytes(data)
    assert zipfile.ZipFile(path).namelist() == ["a.npy"]  # the second array is out of sight
    with pytest.raises(ValueError, match="'a.npy' has a comment or an unknown extra field"):
        an.load(path)


def edit_first_array(change):
    """An edit for rewrite_archive that applies change to the bytes of the first array's member."""
    return lambda name, data: change(data) if name == "arr_0.npy" else data


@pytest.mark.parametrize(
    "edit, reason",
    [
        # the last element's bytes: a valid file, but not the one that was saved
        (edit_first_array(lambda data: data[:-1] + b"\x01"), "differs from the manifest's"),
        # the header now says (3, 2), which the same bytes fit
        (
            edit_first_array(lambda data: data.replace(b"(2, 3)", b"(3, 2)")),
            r"header dtype <f8, shape \(3, 2\).*the manifest says <f8, \(2, 3\)",
        ),
        (lambda name, data: b"{}" if name == MANIFEST else data, "is not an autonet manifest"),
        (lambda name, data: b"[" * 10**5 if name == MANIFEST else data, "RecursionError"),
    ],
    ids=["data", "header", "manifest", "nested manifest"],
)
def test_a_member_rewritten_with_a_valid_crc_is_refused_by_the_manifest(tmp_path, edit, reason):
    path = tmp_path / "model.npz"
    an.save({"w": np.arange(6.0).reshape(2, 3)}, path)
    rewrite_archive(path, edit)
    with pytest.raises(ValueError, match=reason):
        an.load(path)


SPECIAL_NAMES = ["allow_pickle", "file", "a", "a.npy", "x\x00y", "\x00", "arr_0", MANIFEST, "é/ü"]


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.sampled_from(SPECIAL_NAMES + [""]) | st.text(), max_size=6, unique=True))
@example(names=["allow_pickle", "file", "a", "a.npy", "x\x00y", "\U0001f600", "\ud800"])
def test_any_str_name_round_trips_and_the_empty_name_is_refused_before_writing(
    tmp_path_factory, names
):
    folder = tmp_path_factory.mktemp("ck")
    path = folder / "model.npz"
    path.write_bytes(b"the previous checkpoint")
    state = {name: np.full(index, index, np.int16) for index, name in enumerate(names)}
    if "" in names:
        with pytest.raises(ValueError, match="the empty name ''"):
            an.save(state, path)
        assert path.read_bytes() == b"the previous checkpoint"
    else:
        an.save(state, path)
        assert_same_state(an.load(path), state)
    assert [p.name for p in folder.iterdir()] == ["model.npz"]


BIG = np.arange(24, dtype=np.float64).reshape(2, 3, 4)


@pytest.mark.parametrize(
    "array",
    [np.linspace(-3, 3, 7).astype(dtype) for dtype in ["f2", "f4", "f8", "c8", "c16"]]
    + [np.arange(-3, 4).astype(dtype) for dtype in ["i1", "i2", "i4", "i8", "u1", "u8", "?"]]
    + [
        np.array(2.5),  # 0-d
        np.zeros((0,)),
        np.zeros((2, 0, 3), np.int32),
        BIG[:, ::2, 1:],  # not contiguous
        BIG.T,  # Fortran order
        BIG.astype(">f8"),  # big-endian
        np.array([np.nan, -0.0, np.inf], ">f4"),
        np.array([1 + 2j, -np.inf], ">c16"),
        np.array([0x7FF8000000000001], np.uint64).view(np.float64),  # a NaN with a payload
    ],
    ids=lambda array: (
        f"{array.dtype.str}{array.shape}"
        + ("" if array.flags.c_contiguous else "-F" if array.flags.f_contiguous else "-strided")
    ),
)
def test_every_numeric_array_round_trips_bit_for_bit(tmp_path, array):
    path = tmp_path / "model.npz"
    state = {"x": array}
    if array.dtype.kind != "c":  # a Tensor's .data is saved; Tensors cannot hold complex numbers
        state["t"] = an.tensor(array)
    an.save(state, path)
    assert_same_state(an.load(path), {name: array for name in state})


HANG_IN_FSYNC = """
import os, sys, time
import numpy as np
import autonet as an

def hang(descriptor):  # the temporary is written; stop here until killed
    print("syncing", flush=True)
    time.sleep(60)

os.fsync = hang
an.save({"w": np.zeros(1_000_000)}, sys.argv[1])
"""


POSIX_ONLY = pytest.mark.skipif(
    os.name != "posix", reason="stale temporaries are found by probing pids, on POSIX only"
)


@POSIX_ONLY
def test_the_next_save_removes_a_killed_saves_temporary_and_keeps_live_ones(tmp_path):
    path = tmp_path / "model.npz"
    an.save({"w": np.zeros(3)}, path)
    first = path.read_bytes()
    killed = subprocess.Popen(
        [sys.executable, "-c", HANG_IN_FSYNC, str(path)], stdout=subprocess.PIPE, env=run_env()
    )
    try:
        assert killed.stdout.readline() == b"syncing\n"
    finally:
        killed.kill()  # SIGKILL: no handler runs, the temporary stays
        killed.wait()
        killed.stdout.close()
    assert path.read_bytes() == first
    assert len(list(tmp_path.iterdir())) == 2  # the checkpoint and the killed save's temporary
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()
    kept = [
        f".model.npz.{host}.{live.pid}.{live.pid}.autonet-tmp",  # a save in progress here
        f".model.npz.{host}x.{killed.pid}.1.autonet-tmp",  # one on another host sharing the folder
        f".other.npz.{host}.{killed.pid}.1.autonet-tmp",  # another target's
    ]
    for name in kept:
        (tmp_path / name).write_bytes(b"partial")
    try:
        an.save({"w": np.ones(3)}, path)
    finally:
        live.kill()
        live.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["model.npz"])
    assert_same_state(an.load(path), {"w": np.ones(3)})


@POSIX_ONLY
def test_a_link_left_under_the_savers_own_temporary_name_is_replaced_not_followed(tmp_path):
    # a killed process with this pid and thread id, or someone else, left it
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    own = f".model.npz.{socket.gethostname()}.{os.getpid()}.{threading.get_native_id()}"
    (folder / f"{own}.autonet-tmp").symlink_to(victim)
    an.save({"w": np.ones(3)}, folder / "model.npz")
    assert victim.read_bytes() == b"keep me"
    assert [p.name for p in folder.iterdir()] == ["model.npz"]
    assert_same_state(an.load(folder / "model.npz"), {"w": np.ones(3)})


# (bad input, code, exception type, exact message), rows of docs/errors.md; run in an empty folder
SAVE_CASES = [
    (
        "an.save of a model instead of its state_dict()",
        "an.save(an.nn.Linear(2, 3), 'model.npz')",
        TypeError,
        "save: expected a mapping {name: array}, got Linear; to save a model's parameters, pass "
        "model.state_dict()",
    ),
    (
        "an.save of an optimizer instead of its state_dict()",
        "an.save(an.optim.SGD(an.nn.Linear(2, 3).parameters(), lr=0.1), 'model.npz')",
        TypeError,
        "save: expected a mapping {name: array}, got SGD; to save an optimizer's state, pass "
        "optimizer.state_dict()",
    ),
    (
        "an.save of a model inside the checkpoint",
        "an.save({'model': an.nn.Linear(2, 3), 'epoch': 3}, 'model.npz')",
        TypeError,
        "save: 'model' is a Linear; values must be arrays, Tensors, bool, int, float, str, or "
        "dicts, lists and tuples of them (for a model or an optimizer, save its state_dict()); "
        "nothing was written",
    ),
    (
        "an.save with a key that is neither str nor int",
        "an.save({1.5: np.ones(3)}, 'model.npz')",
        TypeError,
        "save: keys must be str or int, got 1.5 (float); nothing was written",
    ),
    (
        "an.save with the empty name",
        "an.save({'': np.ones(3)}, 'model.npz')",
        ValueError,
        "save: an array has the empty name ''; give every array a non-empty name, as state_dict() "
        "does ('layers.0.weight'); nothing was written",
    ),
]
LOAD_CASES = [
    (
        "an.load of a damaged checkpoint (truncated, a flipped bit, edited)",
        "an.save({'w': np.ones(3)}, 'model.npz')\n"
        "with open('model.npz', 'r+b') as file: file.truncate(200)\n"
        "an.load('model.npz')",
        ValueError,
        "load: cannot read 'model.npz' as a checkpoint (BadZipFile: File is not a zip file); it "
        "must be a complete file written by an.save (no pickled objects)",
    ),
    (
        "an.load of an np.savez_compressed file",
        "np.savez_compressed('model.npz', w=np.ones(3))\nan.load('model.npz')",
        ValueError,
        "load: cannot read 'model.npz' as a checkpoint (member 'w.npy' is compressed (zip method "
        "8); an.save stores members uncompressed: read it with np.load and save it again with "
        "an.save); it must be a complete file written by an.save (no pickled objects)",
    ),
]


@pytest.mark.parametrize("case", SAVE_CASES + LOAD_CASES, ids=lambda case: case[0])
def test_checkpoint_errors_are_the_documented_ones(tmp_path, monkeypatch, case):
    _, code, error, message = case
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception) as info:
        run_example(code)
    assert type(info.value) is error
    assert str(info.value) == message
    if case in SAVE_CASES:
        assert list(tmp_path.iterdir()) == []  # refused before writing anything
    assert docs_row(*case) in DOCS.read_text().splitlines(), f"docs/errors.md: {case[0]!r}"


KEYS = (
    st.text(min_size=1, max_size=4)
    | st.sampled_from(["a.b", ".", "0", "state"])
    | st.integers(-3, 3)
)
LEAVES = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.builds(np.arange, st.integers(0, 4)).map(lambda a: a.astype(np.float32))
    | st.just(np.array(2.5))
    | st.just(np.float32(1.5))  # a NumPy scalar that is not a Python float: a 0-d array
)
NESTED = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(KEYS, children, max_size=3)
    ),
    max_leaves=12,
)


def assert_same_nesting(loaded, saved):
    """loaded is saved: same container types, keys (and their types) in order, Python numbers of
    the same type and value, arrays of the same dtype, shape and bytes."""
    if isinstance(saved, dict):
        assert type(loaded) is dict and list(loaded) == list(saved)
        assert [type(key) for key in loaded] == [type(key) for key in saved]
        for key in saved:
            assert_same_nesting(loaded[key], saved[key])
    elif isinstance(saved, (list, tuple)):
        assert type(loaded) is type(saved) and len(loaded) == len(saved)
        for a, b in zip(loaded, saved, strict=True):
            assert_same_nesting(a, b)
    elif isinstance(saved, (bool, int, float, str)):
        assert type(loaded) is type(saved) and loaded == saved
    else:
        expected = np.asarray(saved)
        assert type(loaded) is np.ndarray and loaded.dtype == expected.dtype
        assert loaded.shape == expected.shape and loaded.tobytes() == expected.tobytes()


@settings(max_examples=40, deadline=None)
@given(state=st.dictionaries(KEYS, NESTED, max_size=4))
def test_nested_states_round_trip_with_their_types(tmp_path_factory, state):
    path = tmp_path_factory.mktemp("ck") / "state.npz"
    an.save(state, path)
    assert_same_nesting(an.load(path), state)


def test_nested_arrays_are_stored_under_dotted_keys_and_dots_in_keys_survive(tmp_path):
    path = tmp_path / "checkpoint.npz"
    model = nn.Linear(2, 3, rng=0)
    state = {
        "model": model.state_dict(),
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2)}}, "lr": [0.1, 0.01]},
        "epoch": 3,
        "layers.0": {"weight": np.zeros(1)},
        "layers": {"0": {"weight": np.ones(1)}},
    }
    an.save(state, path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read(MANIFEST))
    assert [entry["name"] for entry in manifest["arrays"]] == [
        "model.weight",
        "model.bias",
        "optimizer.state.0.step",
        "optimizer.state.0.exp_avg",
        "optimizer.lr.0",
        "optimizer.lr.1",
        "epoch",
        "layers.0.weight",
        "layers.0.weight",
    ]
    loaded = an.load(path)
    assert_same_nesting(loaded, state)
    model.load_state_dict(loaded["model"])  # a module's dotted names come back as they were
    assert np.load(path)["arr_6"] == 3  # np.load sees the 0-d int64 array of "epoch"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o000])
@POSIX_ONLY
def test_a_saved_file_has_the_mode_the_umask_gives(tmp_path, umask):
    path = tmp_path / "model.npz"
    previous = os.umask(umask)
    try:
        an.save({"w": np.ones(2)}, path)
        an.save({"w": np.zeros(2)}, path)  # replacing a file gives the same mode
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def containing_itself():
    state = {"a": []}
    state["a"].append(state)
    return state


@pytest.mark.parametrize(
    "state, error, reason",
    [
        ({"w": None}, TypeError, "'w' is a NoneType"),
        ({"a": {"b": [1, b"x"]}}, TypeError, "'a.b.1' is a bytes"),
        ({"a": {True: np.ones(1)}}, TypeError, r"keys must be str or int, got True \(bool\)"),
        ({"a": {"": np.ones(1)}}, ValueError, "the empty name ''"),
        ({"n": 2**63}, OverflowError, "'n' is the int 9223372036854775808, outside int64"),
        ({"o": np.array([object()])}, TypeError, "'o' has dtype object"),
        (containing_itself(), ValueError, "nested more than 64 levels deep"),
        ({"m": nn.Linear(2, 2)}, TypeError, r"'m' is a Linear.*save its state_dict\(\)"),
    ],
    ids=["None", "bytes", "bool key", "empty key", "int64 overflow", "object", "cycle", "module"],
)
def test_what_cannot_be_saved_is_refused_before_writing(tmp_path, state, error, reason):
    path = tmp_path / "state.npz"
    with pytest.raises(error, match=reason):
        an.save(state, path)
    assert list(tmp_path.iterdir()) == []


def edit_manifest(change):
    """An edit for rewrite_archive that applies change to the parsed manifest."""

    def edit(name, data):
        if name != MANIFEST:
            return data
        manifest = json.loads(data)
        change(manifest)
        return json.dumps(manifest)

    return edit


def set_tree(tree):
    return edit_manifest(lambda manifest: manifest.update(tree=tree))


@pytest.mark.parametrize(
    "edit, reason",
    [
        (
            set_tree({"dict": [["w", {"array": 1}], ["n", {"array": 0}]]}),
            "disagree on array 1 at 'w'",
        ),
        (set_tree({"dict": [["w", {"array": 0}]]}), "tree holds 1 of its 2 arrays"),
        (
            set_tree({"dict": [["v", {"array": 0}], ["n", {"int": 1}]]}),
            "disagree on array 0 at 'v'",
        ),
        (set_tree({"dict": [["w", {"float": 0}], ["n", {"int": 1}]]}), "'w' should be a 0-d"),
        (set_tree({"dict": [["w", {"array": 0}], ["n", {"float": 1}]]}), "'n' should be a 0-d"),
        (set_tree({"list": [{"array": 0}, {"int": 1}]}), "tree is not a mapping"),
        (set_tree({"dict": [["w", {"array": 0}], [True, {"int": 1}]]}), "malformed key at ''"),
        (set_tree({"dict": [["w", {"array": 0}], ["w", {"int": 1}]]}), "malformed key"),
        (set_tree({"dict": [["w", {"array": 0}], ["n", {"set": 1}]]}), "malformed tree at 'n'"),
        (set_tree({"dict": [["w", {"array": 0, "int": 1}]]}), "malformed tree at 'w'"),
        (set_tree({"dict": [["w", {"array": 0}], ["n", {"str": 1}]]}), "malformed tree at 'n'"),
        (edit_manifest(lambda manifest: manifest.pop("tree")), "is not an autonet manifest"),
        (edit_manifest(lambda manifest: manifest.update(version=3)), "reads versions 1 and 2"),
    ],
    ids=[
        "order",
        "missing leaf",
        "renamed",
        "float of an array",
        "float of an int",
        "root list",
        "bool key",
        "repeated key",
        "unknown kind",
        "two kinds",
        "str of a number",
        "no tree",
        "version 3",
    ],
)
def test_a_damaged_tree_is_refused(tmp_path, edit, reason):
    path = tmp_path / "state.npz"
    an.save({"w": np.arange(3.0), "n": 7}, path)
    rewrite_archive(path, edit)
    with pytest.raises(ValueError, match=reason):
        an.load(path)


def test_a_deeply_nested_tree_is_refused(tmp_path):
    path = tmp_path / "state.npz"
    an.save({"w": np.ones(1)}, path)
    tree = {"array": 0}
    for _ in range(70):
        tree = {"dict": [["w", tree]]}
    rewrite_archive(path, set_tree(tree))
    with pytest.raises(ValueError, match="malformed tree at 'w.w.w"):
        an.load(path)


def test_a_version_1_checkpoint_still_loads_as_a_flat_mapping(tmp_path):
    path = tmp_path / "model.npz"
    state = {"layers.0.weight": np.ones((2, 2)), "layers.0.bias": np.zeros(2)}
    an.save(state, path)

    def as_version_1(manifest):
        del manifest["tree"]
        manifest["version"] = 1

    rewrite_archive(path, edit_manifest(as_version_1))
    assert_same_state(an.load(path), state)


def test_numpy_keys_come_back_as_python_keys(tmp_path):
    path = tmp_path / "state.npz"
    an.save({np.str_("state"): {np.int64(3): 1.5, np.uint8(4): [True]}}, path)
    loaded = an.load(path)
    assert loaded == {"state": {3: 1.5, 4: [True]}}
    assert [type(key) for key in loaded["state"]] == [int, int]
    assert type(next(iter(loaded))) is str
