"""an.nn.fit: full-batch, mini-batch and stochastic descent take the right steps, reproducibly;
validation and early stopping work; the tutorial's XNOR and the digits data set are learned."""

import numpy as np
import pytest

from autonet import nn, optim
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
    """scikit-learn's bundled 8x8 digits (1,797 images, no download): a 64-32-10 ReLU network with
    Adam reaches at least 95% test accuracy in 10 epochs (measured: 97.5% with these seeds)."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    X, y = digits.data / 16.0, digits.target
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
