"""Checkpoints: an.save / an.load / load_state_dict round-trip exactly, write atomically, and a
truncated, mismatched or pickled file raises a clear error and leaves the model as it was."""

import os
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn


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
    with pytest.raises(ValueError, match="Object arrays cannot be loaded"):
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
