"""an.nn.fit: full-batch, mini-batch and stochastic descent take the right steps, reproducibly;
validation and early stopping work; the tutorial's XNOR and the digits data set are learned; the
steps replay (an.replay) with eager mode's results bit for bit, and run eagerly, saying why, where
replay would be wrong or would not pay."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn, optim
from autonet.datasets import load_digits
from autonet.nn import functional as F
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS


def counting_loss(sizes):
    def loss(output, target):
        sizes.append(len(target))
        return F.half_sse(output, target)

    return loss


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xnor_is_learned_by_the_tutorials_network(seed):
    model = nn.MLP([3, 4, 1], bias=False, init="uniform", rng=seed)
    history = nn.fit(model, XNOR_INPUTS, XNOR_TARGETS, epochs=3000, progress=False)
    assert history.train_loss[-1] < 0.05
    predictions = model(XNOR_INPUTS).data
    np.testing.assert_array_equal(predictions > 0.5, XNOR_TARGETS > 0.5)


@pytest.mark.parametrize("batch_size, steps_per_epoch", [(None, 1), (1, 10), (3, 4), (10, 1)])
def test_batch_size_sets_the_number_of_steps(batch_size, steps_per_epoch):
    X, Y = np.random.default_rng(0).normal(size=(10, 2)), np.zeros((10, 1))
    sizes = []
    model = nn.Linear(2, 1, rng=0)
    nn.fit(
        model,
        X,
        Y,
        loss=counting_loss(sizes),
        optimizer=optim.SGD(model.parameters(), lr=0.01),
        epochs=3,
        batch_size=batch_size,
        progress=False,
        replay=False,  # a replayed step does not call the loss again
    )
    assert len(sizes) == 3 * steps_per_epoch
    assert sum(sizes) == 3 * 10  # every sample once per epoch
    assert max(sizes) == (10 if batch_size is None else min(batch_size, 10))


def test_full_batch_fit_is_the_tutorials_loop():
    model = nn.MLP([3, 4, 1], bias=False, init="uniform", rng=3)
    reference = nn.MLP([3, 4, 1], bias=False, init="uniform", rng=3)
    history = nn.fit(model, XNOR_INPUTS, XNOR_TARGETS, epochs=50, progress=False)
    sgd = optim.SGD(reference.parameters(), lr=1.0)
    for epoch in range(50):
        loss = F.half_sse(reference(XNOR_INPUTS), XNOR_TARGETS)
        assert history.train_loss[epoch] == pytest.approx(float(loss.data), rel=1e-12)
        sgd.zero_grad()
        loss.backward()
        sgd.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=0, atol=1e-12, err_msg=name)


def test_shuffling_is_reproducible_with_a_seed_and_changes_with_it():
    X = np.random.default_rng(1).normal(size=(12, 3))
    Y = (X.sum(axis=1, keepdims=True) > 0).astype(float)

    def train(seed):
        model = nn.MLP([3, 3, 1], rng=0)
        nn.fit(
            model,
            X,
            Y,
            optimizer=optim.SGD(model.parameters(), lr=0.5),
            epochs=5,
            batch_size=2,
            seed=seed,
            progress=False,
        )
        return model.state_dict()

    a, b, c = train(7), train(7), train(8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_validation_split_holds_out_samples_and_records_their_loss():
    X, Y = np.random.default_rng(0).normal(size=(20, 2)), np.zeros((20, 1))
    sizes = []
    model = nn.Linear(2, 1, rng=0)
    history = nn.fit(
        model,
        X,
        Y,
        loss=counting_loss(sizes),
        epochs=4,
        validation_split=0.25,
        optimizer=optim.SGD(model.parameters(), lr=0.01),
        progress=False,
        replay=False,  # a replayed step does not call the loss again
    )
    # each epoch: one training step on 15 samples, then one validation loss on 5
    assert sizes == [15, 5] * 4
    assert len(history.val_loss) == len(history.train_loss) == 4
    with pytest.raises(ValueError, match="validation_split must be in"):
        nn.fit(model, X, Y, validation_split=1.0, progress=False)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    X = np.random.default_rng(0).normal(size=(8, 2))
    Y = X @ np.array([[1.0], [-1.0]])
    model = nn.Linear(2, 1, rng=0)
    once = nn.Linear(2, 1, rng=0)
    nn.fit(once, X, Y, optimizer=optim.SGD(once.parameters(), lr=0.01), epochs=1, progress=False)
    # min_delta is so large that no epoch after the first counts as an improvement
    history = nn.fit(
        model,
        X,
        Y,
        optimizer=optim.SGD(model.parameters(), lr=0.01),
        epochs=100,
        patience=3,
        min_delta=1e9,
        progress=False,
    )
    assert history.stopped_early and len(history.train_loss) == 1 + 3
    assert history.best_epoch == 0
    for name, p in once.named_parameters():
        np.testing.assert_array_equal(dict(model.named_parameters())[name].data, p.data)


def test_early_stopping_on_a_validation_loss_that_rises():
    """A 1-parameter model trained on data whose validation target disagrees: the validation loss
    falls until w passes the validation optimum, then rises, and training stops there."""
    X, Y = np.ones((4, 1)), np.full((4, 1), 2.0)
    w = nn.Linear(1, 1, bias=False, init=lambda shape, rng: np.zeros(shape))
    history = nn.fit(
        w,
        X,
        Y,
        optimizer=optim.SGD(w.parameters(), lr=0.02),
        epochs=200,
        validation_data=(np.ones((1, 1)), np.ones((1, 1))),
        patience=5,
        progress=False,
    )
    assert history.stopped_early and len(history.train_loss) < 200
    best = history.best_epoch
    assert history.val_loss[best] == min(history.val_loss)
    assert abs(float(w.weight.data[0, 0]) - 1.0) < 0.1  # restored to near the validation optimum


def test_progress_bar_is_off_when_stderr_is_not_a_terminal_and_on_when_asked(capsys):
    model = nn.Linear(2, 1, rng=0)
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    nn.fit(model, X, Y, epochs=3)  # under pytest, stderr is captured: not a terminal
    assert capsys.readouterr().err == ""
    nn.fit(model, X, Y, epochs=3, progress=True)
    assert "epoch" in capsys.readouterr().err


def test_schedule_is_stepped_once_per_epoch():
    model = nn.Linear(2, 1, rng=0)
    sgd = optim.SGD(model.parameters(), lr=1.0)
    nn.fit(
        model,
        np.zeros((4, 2)),
        np.zeros((4, 1)),
        optimizer=sgd,
        epochs=4,
        schedule=optim.StepLR(sgd, step_size=2, gamma=0.1),
        progress=False,
    )
    assert sgd.lr == pytest.approx(0.01)


def test_digits_reach_the_stated_accuracy():
    """The 8x8 digits shipped with autonet (1,797 images, no download): a 64-32-10 ReLU network
    with Adam reaches at least 95% test accuracy in 10 epochs (measured: 97.5% with these seeds)."""
    X, y = load_digits()
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    test, train = order[:360], order[360:]
    model = nn.MLP([64, 32, 10], activation="relu", last_activation=False, init="he", rng=0)
    nn.fit(
        model,
        X[train],
        y[train],
        loss=F.cross_entropy,
        epochs=10,
        batch_size=32,
        optimizer=optim.Adam(model.parameters(), lr=0.01),
        seed=0,
        progress=False,
    )
    accuracy = (model(X[test]).data.argmax(axis=1) == y[test]).mean()
    assert accuracy >= 0.95


def test_bad_arguments_are_reported():
    model = nn.Linear(2, 1, rng=0)
    with pytest.raises(ValueError, match="X has 3 samples but Y has 4"):
        nn.fit(model, np.zeros((3, 2)), np.zeros((4, 1)), progress=False)
    with pytest.raises(ValueError, match="batch_size must be None"):
        nn.fit(model, np.zeros((3, 2)), np.zeros((3, 1)), batch_size=0, progress=False)


# ---------------------------------------------------------------------------------------------
# Replay: the steps of full batches are recorded once and replayed, with eager mode's results.


def fit_twice(make_model, X, Y, make_optimizer, **options):
    """fit with replay and without, from the same initial model: (model, History) for each."""
    runs = []
    for replay in (True, False):
        model = make_model()
        history = nn.fit(
            model, X, Y, optimizer=make_optimizer(model), progress=False, replay=replay, **options
        )
        runs.append((model, history))
    return runs


def assert_identical(replayed, eager):
    (model_r, history_r), (model_e, history_e) = replayed, eager
    assert history_r.train_loss == history_e.train_loss  # exact floats, not approximately
    assert history_r.val_loss == history_e.val_loss
    assert history_r.best_epoch == history_e.best_epoch
    for (name, p), q in zip(model_r.named_parameters(), model_e.parameters(), strict=True):
        assert p.data.dtype == q.data.dtype
        assert p.data.tobytes() == q.data.tobytes(), name  # bit for bit


OPTIMIZERS = {
    "sgd": lambda model: optim.SGD(model.parameters(), lr=0.5),
    "momentum": lambda model: optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
    "adam": lambda model: optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3),
}


@settings(max_examples=12, deadline=None)
@given(
    m=st.integers(2, 12),
    n=st.integers(1, 4),
    hidden=st.integers(1, 5),
    k=st.integers(1, 3),
    batch_size=st.one_of(st.none(), st.integers(1, 12)),
    shuffle=st.booleans(),
    activation=st.sampled_from(["sigmoid", "tanh", "relu"]),
    bias=st.booleans(),
    optimizer=st.sampled_from(sorted(OPTIMIZERS)),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_replayed_fit_equals_eager_fit_bit_for_bit(
    m, n, hidden, k, batch_size, shuffle, activation, bias, optimizer, dtype, seed
):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(m, n)).astype(dtype), rng.random((m, k)).astype(dtype)

    def make_model():
        model = nn.MLP([n, hidden, k], activation=activation, bias=bias, rng=seed)
        for p in model.parameters():
            p.data = p.data.astype(dtype)
        return model

    replayed, eager = fit_twice(
        make_model, X, Y, OPTIMIZERS[optimizer], epochs=3, batch_size=batch_size, shuffle=shuffle
    )
    assert_identical(replayed, eager)
    size = m if batch_size is None else min(batch_size, m)
    full, short = divmod(m, size)
    history = replayed[1]
    assert (history.replayed_steps, history.eager_steps) == (3 * full, 3 * (short > 0))
    assert eager[1].replayed_steps == 0 and eager[1].replay_reason == "replay=False"
    if short:
        assert history.replay_reason == (
            f"the last batch of each epoch has {short} samples, not {size}"
        )
    else:
        assert history.replay_reason is None


def test_replayed_fit_with_validation_early_stopping_and_cross_entropy_equals_eager_fit():
    """Classification as replay can do it, with one-hot float targets (class indices are
    integers, which a recording fixes): cross-entropy, Adam, validation data, early stopping."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    Y = np.eye(3)[labels]

    def make_model():
        return nn.MLP([6, 8, 3], activation="relu", last_activation=False, init="he", rng=1)

    replayed, eager = fit_twice(
        make_model,
        X[:30],
        Y[:30],
        OPTIMIZERS["adam"],
        loss=F.cross_entropy,
        epochs=30,
        batch_size=10,
        validation_data=(X[30:], Y[30:]),
        patience=3,
    )
    assert_identical(replayed, eager)
    assert replayed[1].replayed_steps == 3 * len(replayed[1].train_loss)
    assert replayed[1].replay_reason is None


def test_the_tutorials_full_batch_fit_replays():
    model = nn.MLP([3, 4, 1], bias=False, init="uniform", rng=3)
    history = nn.fit(model, XNOR_INPUTS, XNOR_TARGETS, epochs=20, progress=False)
    assert (history.replayed_steps, history.eager_steps, history.replay_reason) == (20, 0, None)


def test_full_batch_with_class_indices_replays_but_mini_batches_run_eagerly():
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(12, 4)), rng.integers(0, 3, size=12)

    def make_model():
        return nn.MLP([4, 5, 3], activation="relu", last_activation=False, rng=0)

    full = fit_twice(make_model, X, labels, OPTIMIZERS["sgd"], loss=F.cross_entropy, epochs=4)
    assert_identical(*full)
    assert full[0][1].replayed_steps == 4  # the same batch, so the same labels, every epoch
    mini = fit_twice(
        make_model, X, labels, OPTIMIZERS["sgd"], loss=F.cross_entropy, epochs=2, batch_size=4
    )
    assert_identical(*mini)
    assert (mini[0][1].replayed_steps, mini[0][1].eager_steps) == (0, 6)
    assert mini[0][1].replay_reason == (
        "Y is int64 (not floating point): a recording fixes the values of such arrays, so each "
        "new batch would record again; pass one-hot float targets to replay a classifier"
    )


def test_dropout_in_training_mode_runs_eagerly_and_says_so():
    X, Y = np.random.default_rng(0).normal(size=(8, 3)), np.zeros((8, 1))
    model = nn.MLP([3, 6, 1], dropout=0.25, rng=0)
    history = nn.fit(model, X, Y, epochs=3, batch_size=4, progress=False)
    assert (history.replayed_steps, history.eager_steps) == (0, 6)
    assert history.replay_reason == (
        "Dropout(p=0.25) in training mode draws a new mask at every step, which a recording "
        "would fix"
    )
    # the same model without dropout's draws: p=0 replays
    history = nn.fit(nn.MLP([3, 6, 1], dropout=0.0, rng=0), X, Y, epochs=3, progress=False)
    assert history.replayed_steps == 3


def test_a_layer_that_refuses_to_be_recorded_runs_eagerly():
    """F.dropout called by a module of the user's own (not an nn.Dropout fit can see) refuses to
    be recorded before it draws its mask: fit runs that step, and the rest, eagerly, drawing the
    masks an eager fit draws."""

    class Noisy(nn.Module):
        def __init__(self):
            self.linear = nn.Linear(3, 1, rng=0)
            self.rng = np.random.default_rng(5)

        def forward(self, x):
            return an.sigmoid(F.dropout(self.linear(x), 0.5, self.training, rng=self.rng))

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)), rng.random((8, 1))
    replayed, eager = fit_twice(Noisy, X, Y, OPTIMIZERS["sgd"], epochs=3, batch_size=4)
    assert_identical(replayed, eager)
    history = replayed[1]
    assert (history.replayed_steps, history.eager_steps) == (0, 6)
    assert history.replay_reason == (
        "a layer refused to be recorded: dropout (p=0.5, input shape (4, 1)): called while "
        "an.replay records a step"
    )


def test_a_single_step_is_not_recorded():
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    history = nn.fit(nn.Linear(2, 1, rng=0), X, Y, epochs=1, progress=False)
    assert (history.replayed_steps, history.eager_steps) == (0, 1)
    assert history.replay_reason == "a single step: recording it would cost more than running it"


class RunningMean(nn.Module):
    """A BatchNorm-like layer: in training mode it updates a running mean of its inputs outside
    the graph (which replay would not repeat) and subtracts the batch mean."""

    def __init__(self, features, momentum=0.1):
        self.momentum = momentum
        self.running_mean = an.zeros(features)

    def forward(self, x):
        x = an.tensor(x) if not isinstance(x, an.Tensor) else x
        if self.training:
            mean = x.mean(axis=0)
            with an.no_grad():
                self.running_mean.data = (
                    1 - self.momentum
                ) * self.running_mean.data + self.momentum * mean.data
            return x - mean
        return x - self.running_mean


@pytest.mark.parametrize(
    "make_norm, replayed_steps, reason",
    [
        (  # its state is found changed after the first (replayed) step
            lambda: RunningMean(3),
            1,
            "the model changed RunningMean.running_mean during a step, outside the graph "
            "(running statistics?): replay would not repeat that",
        ),
        (  # its registered buffers are seen before any step
            lambda: nn.BatchNorm1d(3),
            0,
            "the model has buffers (0.running_mean, 0.running_var, 0.num_batches_tracked), which "
            "modules in training mode update outside the graph (running statistics), and a "
            "recording would update once",
        ),
    ],
)
def test_a_model_that_updates_state_outside_the_graph_is_not_replayed_wrongly(
    make_norm, replayed_steps, reason
):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 3)), rng.random((12, 1))

    def make_model():
        return nn.Sequential(make_norm(), nn.Linear(3, 1, rng=0), nn.Sigmoid())

    replayed, eager = fit_twice(
        make_model,
        X,
        Y,
        OPTIMIZERS["sgd"],
        epochs=3,
        batch_size=4,
        validation_data=(X[:5], Y[:5]),
    )
    assert_identical(replayed, eager)
    running = [model[0].running_mean.data for model, _ in (replayed, eager)]
    assert running[0].tobytes() == running[1].tobytes()  # 9 updates each, in training mode only
    assert np.abs(running[0]).max() > 0
    history = replayed[1]
    assert (history.replayed_steps, history.eager_steps) == (replayed_steps, 9 - replayed_steps)
    assert history.replay_reason == reason


def test_a_step_that_records_again_falls_back_to_eager():
    """A constant the model reads (a temperature) gets new .data every epoch: replay records
    again (as it must), and fit stops replaying rather than record at every epoch."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 2)), rng.random((8, 1))

    class Tempered(nn.Module):
        def __init__(self):
            self.linear = nn.Linear(2, 1, rng=0)
            self.temperature = an.tensor(1.0)

        def forward(self, x):
            return an.sigmoid(self.linear(x) / self.temperature)

    class Cooling:
        def __init__(self, model):
            self.model = model

        def step(self):
            self.model.temperature.data = self.model.temperature.data * 0.5

    runs = []
    for replay in (True, False):
        model = Tempered()
        history = nn.fit(
            model,
            X,
            Y,
            optimizer=optim.SGD(model.parameters(), lr=0.5),
            epochs=4,
            batch_size=4,
            schedule=Cooling(model),
            progress=False,
            replay=replay,
        )
        runs.append((model, history))
    assert_identical(*runs)
    history = runs[0][1]
    # epoch 0 records and replays; epoch 1 records again (new temperature) and stops replaying
    assert (history.replayed_steps, history.eager_steps) == (3, 5)
    assert history.replay_reason == "the step recorded 2 times for one batch shape"


def test_fit_trains_in_training_mode_and_validates_in_evaluation_mode():
    calls = []

    class Probe(nn.Module):
        def forward(self, x):
            calls.append((self.training, an.is_grad_enabled()))
            return x

    X, Y = np.random.default_rng(0).normal(size=(6, 2)), np.zeros((6, 1))
    for replay in (True, False):
        calls.clear()
        model = nn.Sequential(nn.Linear(2, 1, rng=0), Probe())
        model.eval()  # fit must switch it to training mode itself
        nn.fit(
            model,
            X,
            Y,
            epochs=3,
            batch_size=3,
            validation_split=0.5,
            progress=False,
            replay=replay,
        )
        training = [mode for mode, grad in calls if grad]
        validation = [mode for mode, grad in calls if not grad]
        # replayed, the forward runs to record and to check the first replay; eagerly, each step
        assert len(training) == (2 if replay else 3) and all(training)
        assert len(validation) == 3 and not any(validation)
        assert not model.training and not model[1].training  # left in evaluation mode


def test_a_model_that_reads_its_input_outside_the_graph_is_caught_by_the_first_replay():
    """an.tensor(x) copies a recording's input into a constant: the replays would train on the
    first batch forever. fit compares the first replay with eager mode and stops replaying."""

    class Copying(nn.Module):
        def __init__(self):
            self.linear = nn.Linear(3, 1, rng=0)

        def forward(self, x):
            return an.sigmoid(self.linear(an.tensor(x)))

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 3)), rng.random((12, 1))
    replayed, eager = fit_twice(Copying, X, Y, OPTIMIZERS["sgd"], epochs=2, batch_size=4)
    assert_identical(replayed, eager)
    history = replayed[1]
    assert (history.replayed_steps, history.eager_steps) == (1, 5)
    assert history.replay_reason == (
        "a replayed step gave other results than eager mode: does the model read its input "
        "outside the graph (an.tensor(x), x.data) or branch on values?"
    )


def test_the_reason_for_eager_steps_is_logged_once(caplog):
    X, Y = np.zeros((5, 2)), np.zeros((5, 1))
    with caplog.at_level(logging.INFO, logger="autonet.nn.training"):
        history = nn.fit(nn.Linear(2, 1, rng=0), X, Y, epochs=3, batch_size=2, progress=False)
    assert (history.replayed_steps, history.eager_steps) == (6, 3)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "fit: a step runs eagerly: the last batch of each epoch has 1 samples, not 2"
    ]


def test_reduce_lr_on_plateau_steps_on_the_monitored_loss():
    """fit steps ReduceLROnPlateau with the validation loss (torch's scheduler.step(val_loss)),
    where it used to call step() without one and raise TypeError."""
    model = nn.MLP([3, 4, 1], bias=False, init="uniform", rng=1)
    sgd = optim.SGD(model.parameters(), lr=1.0)
    plateau = optim.ReduceLROnPlateau(sgd, patience=0, factor=0.5, threshold=0.0)
    history = nn.fit(
        model,
        XNOR_INPUTS,
        XNOR_TARGETS,
        optimizer=sgd,
        epochs=20,
        validation_data=(XNOR_INPUTS, XNOR_TARGETS),
        schedule=plateau,
        progress=False,
    )
    assert plateau.best == min(history.val_loss)
