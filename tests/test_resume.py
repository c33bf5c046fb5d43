"""Training resumed from a checkpoint ends bit for bit where uninterrupted training ends: N steps
in one go equal k steps, an.save of model + optimizer + scheduler, an.load into freshly built
objects (other initial weights, default options) and N - k more steps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn, optim
from autonet.nn import functional as F

STEPS = 12  # minibatch steps; an epoch is 3 of them
SIZES = [3, 5, 2]
rng = np.random.default_rng(0)
X, Y = rng.normal(size=(32, 3)), rng.normal(size=(32, 2))

CONFIGS = {
    "Adam, clipped gradients": (
        lambda params: optim.Adam(params, lr=0.01, amsgrad=True),
        lambda params: optim.Adam(params),
        None,
    ),
    "SGD Nesterov momentum, cosine schedule": (
        lambda params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda params: optim.SGD(params),
        lambda optimizer: optim.CosineAnnealingLR(optimizer, T_max=3, eta_min=0.01),
    ),
    "SGD momentum, step schedule": (
        lambda params: optim.SGD(params, lr=0.1, momentum=0.5, dampening=0.1),
        lambda params: optim.SGD(params),
        lambda optimizer: optim.StepLR(optimizer, step_size=2, gamma=0.5),
    ),
    "centered RMSprop, reduce on plateau": (
        lambda params: optim.RMSprop(params, lr=0.01, momentum=0.9, centered=True),
        lambda params: optim.RMSprop(params),
        lambda optimizer: optim.ReduceLROnPlateau(optimizer, patience=0, threshold=0.5),
    ),
}


def train(model, optimizer, schedule, steps, clip):
    """Minibatch steps (their batches depend on the step number alone); the schedule steps after
    every third one (an epoch), ReduceLROnPlateau on that step's loss."""
    for step in steps:
        batch = np.random.default_rng(step).choice(len(X), size=8, replace=False)
        loss = F.mse(model(X[batch]), Y[batch])
        optimizer.zero_grad()
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        optimizer.step()
        if schedule is not None and step % 3 == 2:
            if isinstance(schedule, optim.ReduceLROnPlateau):
                schedule.step(loss.item())
            else:
                schedule.step()


@pytest.mark.parametrize("config", CONFIGS)
@settings(max_examples=4, deadline=None)
@given(k=st.integers(0, STEPS))
def test_resumed_training_ends_bit_for_bit_where_uninterrupted_training_ends(
    tmp_path_factory, config, k
):
    make_optimizer, make_default, make_schedule = CONFIGS[config]
    clip = "clipped" in config

    model = nn.MLP(SIZES, activation="tanh", rng=1)
    optimizer = make_optimizer(model.parameters())
    schedule = make_schedule and make_schedule(optimizer)
    train(model, optimizer, schedule, range(STEPS), clip)

    first = nn.MLP(SIZES, activation="tanh", rng=1)
    first_optimizer = make_optimizer(first.parameters())
    first_schedule = make_schedule and make_schedule(first_optimizer)
    train(first, first_optimizer, first_schedule, range(k), clip)
    checkpoint = {"model": first.state_dict(), "optimizer": first_optimizer.state_dict(), "step": k}
    if first_schedule is not None:
        checkpoint["scheduler"] = first_schedule.state_dict()
    path = tmp_path_factory.mktemp("ck") / "checkpoint.npz"
    an.save(checkpoint, path)

    loaded = an.load(path)
    resumed = nn.MLP(SIZES, activation="tanh", rng=2)  # other weights, replaced by the file's
    resumed.load_state_dict(loaded["model"])
    resumed_optimizer = make_default(resumed.parameters())
    resumed_optimizer.load_state_dict(loaded["optimizer"])
    resumed_schedule = make_schedule and make_schedule(resumed_optimizer)
    if resumed_schedule is not None:
        resumed_schedule.load_state_dict(loaded["scheduler"])
    assert loaded["step"] == k and type(loaded["step"]) is int
    train(resumed, resumed_optimizer, resumed_schedule, range(loaded["step"], STEPS), clip)

    for (name, expected), (_, got) in zip(
        model.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert got.tobytes() == expected.tobytes(), name
    assert resumed_optimizer.lr == optimizer.lr
    expected_state = optimizer.state_dict()["state"]
    got_state = resumed_optimizer.state_dict()["state"]
    assert got_state.keys() == expected_state.keys()
    for index, entry in expected_state.items():
        for key, value in entry.items():
            assert np.asarray(got_state[index][key]).tobytes() == np.asarray(value).tobytes()
