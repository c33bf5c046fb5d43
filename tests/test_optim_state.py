"""Optimiser and scheduler state: state_dict() has torch.optim's structure and values, survives
an.save/an.load, and loading it into a fresh optimiser continues exactly where the first one was;
a state that does not fit is refused before anything changes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import optim
from tests.test_optim import OPTIMISERS, SHAPES, stepped_both

# keys torch.optim's param_groups hold that autonet's do not (options autonet does not have)
TORCH_ONLY = {"maximize", "foreach", "capturable", "differentiable", "fused", "params"}


def make_weights(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [an.tensor(rng.normal(size=shape).astype(dtype), requires_grad=True) for shape in SHAPES]


def train(optimizer, weights, steps, first=0):
    """steps updates on a loss that changes with the step number (first, first + 1, ...); one
    parameter in three sits each step out, so states differ in their step counts."""
    for step in range(first, first + steps):
        rng = np.random.default_rng(step)
        used = [j for j in range(len(weights)) if (step + j) % 3]
        optimizer.zero_grad()
        loss = sum(((weights[j] - rng.normal(size=weights[j].shape)) ** 2).sum() for j in used)
        loss.backward()
        optimizer.step()


def assert_same_weights(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        assert a.data.dtype == b.data.dtype and a.data.tobytes() == b.data.tobytes()


@pytest.mark.parametrize("name", OPTIMISERS)
@settings(max_examples=6, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_state_dict_has_torchs_structure_and_values(name, data, seed):
    ours, theirs = stepped_both(name, data.draw(OPTIMISERS[name], label="options"), seed, 4)
    mine, expected = ours.state_dict(), theirs.state_dict()
    (group,) = mine["param_groups"]
    (torch_group,) = expected["param_groups"]
    assert group["params"] == torch_group["params"] == list(range(len(SHAPES)))
    assert {k: v for k, v in group.items() if k != "params"} == {
        k: v for k, v in torch_group.items() if k not in TORCH_ONLY
    }
    assert mine["state"].keys() == expected["state"].keys()
    for index, entry in mine["state"].items():
        assert entry.keys() == expected["state"][index].keys()
        for key, value in entry.items():
            torch_value = expected["state"][index][key]
            if key == "step":  # an int here, a float tensor in torch
                assert type(value) is int and value == torch_value.item()
            else:
                np.testing.assert_allclose(value, torch_value.numpy(), rtol=1e-12, atol=1e-13)


SCHEDULES = {
    "none": None,
    "StepLR": lambda o: optim.StepLR(o, step_size=2, gamma=0.5),
    "CosineAnnealingLR": lambda o: optim.CosineAnnealingLR(o, T_max=3, eta_min=1e-4),
    "ReduceLROnPlateau": lambda o: optim.ReduceLROnPlateau(o, mode="max", patience=1),
}


def schedule_step(schedule, epoch):
    if isinstance(schedule, optim.ReduceLROnPlateau):
        schedule.step([1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0][epoch % 8])
    elif schedule is not None:
        schedule.step()


@pytest.mark.parametrize("schedule_name", SCHEDULES)
@pytest.mark.parametrize("name", OPTIMISERS)
@settings(max_examples=3, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), k=st.integers(0, 5))
def test_resuming_from_a_saved_state_continues_bit_for_bit(
    tmp_path_factory, name, schedule_name, data, seed, k
):
    options = data.draw(OPTIMISERS[name], label="options")
    make_schedule = SCHEDULES[schedule_name]
    path = tmp_path_factory.mktemp("ck") / "checkpoint.npz"
    # uninterrupted: 6 epochs of 1 step each
    weights = make_weights(seed)
    optimizer = getattr(optim, name)(weights, **options)
    schedule = make_schedule and make_schedule(optimizer)
    for epoch in range(6):
        train(optimizer, weights, 1, first=epoch)
        schedule_step(schedule, epoch)
    # interrupted after k epochs, saved, loaded into fresh objects with other values
    first = make_weights(seed)
    optimizer = getattr(optim, name)(first, **options)
    schedule = make_schedule and make_schedule(optimizer)
    for epoch in range(k):
        train(optimizer, first, 1, first=epoch)
        schedule_step(schedule, epoch)
    state = {"weights": [w.data for w in first], "optimizer": optimizer.state_dict()}
    if schedule is not None:
        state["schedule"] = schedule.state_dict()
    an.save(state, path)
    loaded = an.load(path)
    resumed = make_weights(seed + 1)
    for w, array in zip(resumed, loaded["weights"], strict=True):
        w.data = array
    optimizer = getattr(optim, name)(resumed, lr=0.5)  # other options: the state brings its own
    optimizer.load_state_dict(loaded["optimizer"])
    assert optimizer.state_dict().keys() == state["optimizer"].keys()
    schedule = make_schedule and make_schedule(optimizer)
    if schedule is not None:
        schedule.load_state_dict(loaded["schedule"])
    for epoch in range(k, 6):
        train(optimizer, resumed, 1, first=epoch)
        schedule_step(schedule, epoch)
    assert_same_weights(resumed, weights)


def test_a_loaded_state_round_trips_exactly_with_its_python_types(tmp_path):
    weights = make_weights(0)
    adam = optim.Adam(weights, betas=(0.5, 0.75), amsgrad=True)
    train(adam, weights, 3)
    plateau = optim.ReduceLROnPlateau(adam, mode="max", threshold_mode="abs")
    plateau.step(1.5)
    saved = {"optimizer": adam.state_dict(), "plateau": plateau.state_dict()}
    an.save(saved, tmp_path / "state.npz")
    loaded = an.load(tmp_path / "state.npz")
    assert loaded["optimizer"]["param_groups"] == saved["optimizer"]["param_groups"]
    assert type(loaded["optimizer"]["param_groups"][0]["betas"]) is tuple
    assert loaded["plateau"] == saved["plateau"]  # str, int, float (best = 1.5), in order
    assert list(loaded["plateau"]) == list(saved["plateau"])
    assert loaded["optimizer"]["state"].keys() == {0, 1, 2, 3}  # int keys stay ints
    for index, entry in saved["optimizer"]["state"].items():
        assert list(loaded["optimizer"]["state"][index]) == list(entry)
        for key, value in entry.items():
            np.testing.assert_array_equal(loaded["optimizer"]["state"][index][key], value)


def test_state_dict_is_a_copy_and_load_state_dict_copies_too():
    weights = make_weights(0)
    sgd = optim.SGD(weights, lr=0.1, momentum=0.9)
    train(sgd, weights, 2)
    state = sgd.state_dict()
    buffer = sgd.state[1]["momentum_buffer"].copy()
    state["state"][1]["momentum_buffer"] += 1.0
    state["param_groups"][0]["lr"] = 7.0
    np.testing.assert_array_equal(sgd.state[1]["momentum_buffer"], buffer)
    assert sgd.lr == 0.1
    sgd.load_state_dict(state)
    state["state"][1]["momentum_buffer"] += 1.0
    np.testing.assert_array_equal(sgd.state[1]["momentum_buffer"], buffer + 1.0)
    assert sgd.lr == 7.0


def test_a_float64_state_loads_into_float32_parameters_as_float32():
    weights = make_weights(0)
    adam = optim.Adam(weights)
    train(adam, weights, 2)
    narrow = make_weights(0, np.float32)
    other = optim.Adam(narrow)
    other.load_state_dict(adam.state_dict())
    assert other.state[0]["exp_avg"].dtype == np.float32
    train(other, narrow, 1)
    assert all(w.dtype == np.float32 for w in narrow)


def snapshot(optimizer):
    return repr(optimizer), {
        i: {k: np.copy(v) for k, v in entry.items()} for i, entry in optimizer.state.items()
    }


def misfits(state):
    """Copies of an Adam state (4 parameters, amsgrad=False), each damaged in one way, with the
    reason load_state_dict gives."""
    import copy

    def damaged(change):
        copied = copy.deepcopy(state)
        change(copied)
        return copied

    yield damaged(lambda s: s["state"][0].pop("exp_avg_sq")), r"holds \['exp_avg', 'step'\]"
    yield damaged(lambda s: s["state"][0].update(step=0)), "step count of parameter 0 is 0"
    yield damaged(lambda s: s["state"][0].update(step=1.5)), "step count of parameter 0 is 1.5"
    yield damaged(lambda s: s["state"].update({4: s["state"][0]})), "names parameter 4"
    yield damaged(lambda s: s["state"].update({"0": s["state"][0]})), "names parameter '0'"
    yield (
        damaged(lambda s: s["state"][2].update(exp_avg=np.zeros(5))),
        r"'exp_avg' of parameter 2 has shape \(5,\) and dtype float64, but the parameter has "
        r"shape \(4,\)",
    )
    yield (
        damaged(lambda s: s["state"][0].update(exp_avg=np.zeros((3, 2), complex))),
        "dtype complex128",
    )
    yield damaged(lambda s: s["param_groups"][0].update(lr="0.1")), r"'lr' is '0.1' \(str\)"
    yield damaged(lambda s: s["param_groups"][0].update(betas=(0.9,))), "'betas' is"
    yield damaged(lambda s: s["param_groups"][0].update(betas=(0.9, 1.5))), "betas must be"
    yield damaged(lambda s: s["param_groups"][0].update(amsgrad=1)), r"'amsgrad' is 1 \(int\)"
    yield damaged(lambda s: s["param_groups"][0].update(params=[0, 1, 2])), "lists 3 parameter"
    yield damaged(lambda s: s["param_groups"][0].update(params=[3, 2, 1, 0])), "lists 4 param"
    yield damaged(lambda s: s["param_groups"].append(s["param_groups"][0])), "2 parameter groups"
    yield damaged(lambda s: s.pop("state")), "expected {'state'"
    yield damaged(lambda s: s["param_groups"][0].pop("params")), "1 parameter groups"


def test_a_state_that_does_not_fit_is_refused_and_changes_nothing():
    weights = make_weights(0)
    adam = optim.Adam(weights)
    train(adam, weights, 4)
    source = optim.Adam(make_weights(1), lr=0.5)
    train(source, source.params, 4)
    good = source.state_dict()
    before = snapshot(adam)
    for bad, reason in misfits(good):
        with pytest.raises((ValueError, TypeError), match=reason):
            adam.load_state_dict(bad)
        after = snapshot(adam)
        assert after[0] == before[0]
        assert after[1].keys() == before[1].keys()
        for i, entry in before[1].items():
            for key, value in entry.items():
                np.testing.assert_array_equal(after[1][i][key], value)
    adam.load_state_dict(good)  # the undamaged state fits
    assert adam.lr == 0.5


def test_hyperparameters_of_a_misfit_state_are_not_kept():
    # the groups are checked and set before the per-parameter state; a state that then misfits
    # must leave the old hyperparameters (here: amsgrad, whose state key is missing)
    weights = make_weights(0)
    adam = optim.Adam(weights, lr=0.01)
    train(adam, weights, 1)
    state = adam.state_dict()
    state["param_groups"][0].update(amsgrad=True, lr=0.3)
    with pytest.raises(ValueError, match="'max_exp_avg_sq'"):
        adam.load_state_dict(state)
    assert adam.lr == 0.01 and adam.amsgrad is False


def test_scheduler_state_checks_its_values():
    sgd = optim.SGD(make_weights(0), lr=0.1)
    plateau = optim.ReduceLROnPlateau(sgd)
    state = plateau.state_dict()
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'up'"):
        plateau.load_state_dict(state | {"mode": "up"})
    with pytest.raises(TypeError, match=r"'patience' is 2.5 \(float\)"):
        plateau.load_state_dict(state | {"patience": 2.5})
    assert plateau.state_dict() == state
    cosine = optim.CosineAnnealingLR(sgd, T_max=4)
    with pytest.raises(ValueError, match="T_max must be a positive integer, got 0"):
        cosine.load_state_dict(cosine.state_dict() | {"T_max": 0})


@pytest.mark.parametrize("name", OPTIMISERS)
def test_a_fresh_optimizers_empty_state_round_trips(tmp_path, name):
    optimizer = getattr(optim, name)(make_weights(0))
    an.save({"optimizer": optimizer.state_dict()}, tmp_path / "fresh.npz")
    loaded = an.load(tmp_path / "fresh.npz")["optimizer"]
    assert loaded == {"state": {}, "param_groups": optimizer.state_dict()["param_groups"]}
    other = getattr(optim, name)(make_weights(1), lr=0.5)
    other.load_state_dict(loaded)
    assert repr(other) == repr(optimizer) and other.state == {}
