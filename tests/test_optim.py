"""autonet.optim: SGD and Adam follow their update equations, checked on examples worked by hand
and (when PyTorch is installed) step by step against torch.optim."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn, optim


def run(optimizer_class, w0, loss, steps, **options):
    w = an.tensor(w0, requires_grad=True)
    optimizer = optimizer_class([w], **options)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(w).backward()
        optimizer.step()
    return w.data


def test_sgd_with_momentum_and_weight_decay_matches_a_hand_computed_example():
    # L = 0.5 w1 + 1.0 w2, so g = [0.5, 1.0]; lr 0.1, momentum 0.9, weight decay 0.01, w = [1, -2]
    # step 1: d = g + 0.01 w = [0.51, 0.98];  v = d;  w = [1 - 0.051, -2 - 0.098] = [0.949, -2.098]
    # step 2: d = [0.5 + 0.00949, 1 - 0.02098] = [0.50949, 0.97902]
    #         v = 0.9 [0.51, 0.98] + d = [0.96849, 1.86102];  w = [0.852151, -2.284102]
    def loss(w):
        return (w * np.array([0.5, 1.0])).sum()

    options = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
    np.testing.assert_allclose(
        run(optim.SGD, [1.0, -2.0], loss, 1, **options), [0.949, -2.098], rtol=1e-14
    )
    np.testing.assert_allclose(
        run(optim.SGD, [1.0, -2.0], loss, 2, **options), [0.852151, -2.284102], rtol=1e-14
    )


def test_plain_sgd_is_the_tutorials_update():
    w0, g = np.array([0.3, -0.7]), np.array([2.0, -1.0])
    result = run(optim.SGD, w0, lambda w: (w * g).sum(), 3, lr=0.25)
    np.testing.assert_allclose(result, w0 - 3 * 0.25 * g, rtol=1e-15)


def test_adam_matches_a_hand_computed_example():
    # L = 1/2 |w|^2, so g = w; lr 0.1, betas (0.9, 0.999), eps 1e-8, w = [1, -2]
    # step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2: w -= 0.1 g / (|g| + eps)
    eps = 1e-8
    w1 = np.array([1 - 0.1 * 1 / (1 + eps), -2 + 0.1 * 2 / (2 + eps)])
    # step 2: g = w1 ~ [0.9, -1.9]
    #   m = 0.9 * 0.1 * [1, -2] + 0.1 * w1;            m_hat = m / (1 - 0.9^2) = m / 0.19
    #   v = 0.999 * 0.001 * [1, 4] + 0.001 * w1^2;     v_hat = v / (1 - 0.999^2) = v / 0.001999
    m = 0.09 * np.array([1.0, -2.0]) + 0.1 * w1
    v = 0.000999 * np.array([1.0, 4.0]) + 0.001 * w1**2
    w2 = w1 - 0.1 * (m / 0.19) / (np.sqrt(v / 0.001999) + eps)

    # rounding the 1/0.19 ... quotients differs from the optimiser's order of operations by ~1e-16
    def loss(w):
        return 0.5 * (w * w).sum()

    np.testing.assert_allclose(run(optim.Adam, [1.0, -2.0], loss, 1, lr=0.1), w1, rtol=1e-14)
    np.testing.assert_allclose(run(optim.Adam, [1.0, -2.0], loss, 2, lr=0.1), w2, rtol=1e-13)
    # rounded to 6 places, as one would by hand: [0.9, -1.9] then about [0.8, -1.8]
    np.testing.assert_allclose(w2, [0.8, -1.8], atol=2e-3)


SHAPES = [(3, 2), (), (4,), (0, 2)]  # a matrix, a scalar, a vector, and no elements at all


def step_both(ours, theirs, weights, torch_weights, targets, steps):
    """Run steps of ours and theirs (torch) on the same losses; at each step one parameter in
    three is left out of the loss, so its .grad is None and the optimisers must skip it."""
    torch = pytest.importorskip("torch")
    for step in range(steps):
        used = [j for j in range(len(SHAPES)) if (step + j) % 3]
        ours.zero_grad()
        sum(((weights[j] - targets[step][j]) ** 2).sum() for j in used).backward()
        ours.step()
        theirs.zero_grad()
        sum(
            ((torch_weights[j] - torch.tensor(targets[step][j])) ** 2).sum() for j in used
        ).backward()
        theirs.step()
        for w, tw in zip(weights, torch_weights, strict=True):
            # float64 on both sides, same equations: differences are rounding only
            np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-12, atol=1e-13)


OPTIMISERS = {
    "SGD": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([0.01, 0.1]),
            "momentum": st.sampled_from([0.0, 0.5, 0.9]),
            "dampening": st.sampled_from([0.0, 0.3]),
            "weight_decay": st.sampled_from([0.0, 0.1]),
            "nesterov": st.booleans(),
        }
    ).map(lambda o: o | {"nesterov": o["nesterov"] and o["momentum"] > 0 and not o["dampening"]}),
    "Adam": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([1e-3, 0.05]),
            "betas": st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)]),
            "eps": st.sampled_from([1e-8, 1e-3]),
            "weight_decay": st.sampled_from([0.0, 0.1]),
            "amsgrad": st.booleans(),
        }
    ),
    "AdamW": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([1e-3, 0.05]),
            "weight_decay": st.sampled_from([0.0, 1e-2, 0.5]),
            "amsgrad": st.booleans(),
        }
    ),
    "RMSprop": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([1e-2, 1e-3]),
            "alpha": st.sampled_from([0.99, 0.5]),
            "eps": st.sampled_from([1e-8, 1e-2]),
            "weight_decay": st.sampled_from([0.0, 0.1]),
            "momentum": st.sampled_from([0.0, 0.5]),
            "centered": st.booleans(),
        }
    ),
}


@pytest.mark.parametrize("name", OPTIMISERS)
@settings(max_examples=12, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_optimisers_match_torch_step_by_step(name, data, seed):
    stepped_both(name, data.draw(OPTIMISERS[name], label="options"), seed, steps=8)


def stepped_both(name, options, seed, steps):
    """autonet's and torch's optimiser `name` on the same random weights, after `steps` steps of
    step_both (which checks them equal at each step): (ours, theirs)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    initial = [rng.normal(size=shape) for shape in SHAPES]
    targets = [[rng.normal(size=shape) for shape in SHAPES] for _ in range(steps)]
    weights = [an.tensor(w, requires_grad=True) for w in initial]
    torch_weights = [torch.tensor(w, requires_grad=True) for w in initial]
    ours = getattr(optim, name)(weights, **options)
    theirs = getattr(torch.optim, name)(torch_weights, **options)
    step_both(ours, theirs, weights, torch_weights, targets, steps)
    return ours, theirs


def test_adam_counts_each_parameters_own_steps_for_its_bias_correction():
    # b gets its first gradient at the second step: its bias correction is that of step 1
    # (m_hat = g, so the step is lr * g / (|g| + eps) = 0.1), as torch.optim.Adam's per-parameter
    # step count gives, not that of step 2
    a, b = an.tensor([1.0], requires_grad=True), an.tensor([1.0], requires_grad=True)
    optimizer = optim.Adam([a, b], lr=0.1, eps=0.0)
    (a * 3).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    (a * 3 + b * 5).sum().backward()
    optimizer.step()
    assert b.data[0] == pytest.approx(0.9, rel=1e-15)
    assert optimizer.state[0]["step"] == 2 and optimizer.state[1]["step"] == 1


@pytest.mark.parametrize("name", OPTIMISERS)
def test_float32_parameters_keep_float32_state_and_values(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]
    targets = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(5)]
    weights = [an.tensor(w, requires_grad=True) for w in initial]
    ours = getattr(optim, name)(weights, lr=0.01)
    torch_weights = [torch.tensor(w, requires_grad=True) for w in initial]
    theirs = getattr(torch.optim, name)(torch_weights, lr=0.01)
    for step in range(5):
        for optimizer, ws, lift in (
            (ours, weights, np.asarray),
            (theirs, torch_weights, torch.tensor),
        ):
            optimizer.zero_grad()
            sum(
                ((w - lift(t)) ** 2).sum() for w, t in zip(ws, targets[step], strict=True)
            ).backward()
            optimizer.step()
    for w, tw in zip(weights, torch_weights, strict=True):
        assert w.dtype == np.float32
        # float32 rounding, in a different order of operations: a few ulps of float32
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    for entry in ours.state.values():
        assert all(v.dtype == np.float32 for v in entry.values() if isinstance(v, np.ndarray))


def test_parameters_without_gradient_are_left_alone_and_zero_grad_clears():
    used, unused = an.tensor([1.0], requires_grad=True), an.tensor([5.0], requires_grad=True)
    optimizer = optim.SGD([used, unused], lr=0.5)
    (used * 2).sum().backward()
    optimizer.step()
    np.testing.assert_array_equal(used.data, [0.0])
    np.testing.assert_array_equal(unused.data, [5.0])
    optimizer.zero_grad()
    assert used.grad is None


def test_step_lr_schedule_decays_every_step_size_epochs():
    optimizer = optim.SGD([an.tensor([1.0], requires_grad=True)], lr=1.0)
    schedule = optim.StepLR(optimizer, step_size=2, gamma=0.5)
    seen = []
    for _ in range(5):
        seen.append(optimizer.lr)
        schedule.step()
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="got no parameters"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is not a Tensor with requires_grad=True"):
        optim.Adam([an.tensor([1.0])])
    with pytest.raises(ValueError, match="lr must be positive"):
        optim.SGD([an.tensor([1.0], requires_grad=True)], lr=0)


def lr_sequences(make_ours, make_theirs, lr, epochs, metrics=None):
    """The lr after each of epochs steps of a schedule, ours and torch's (torch's optimiser steps
    first, as PyTorch asks, with no gradients: a no-op)."""
    torch = pytest.importorskip("torch")
    ours = make_ours(optim.SGD([an.tensor([1.0], requires_grad=True)], lr=lr))
    theirs_optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    theirs = make_theirs(theirs_optimizer)
    seen, expected = [], []
    for epoch in range(epochs):
        theirs_optimizer.step()
        if metrics is None:
            ours.step()
            theirs.step()
        else:
            ours.step(metrics[epoch])
            theirs.step(metrics[epoch])
        seen.append(ours.optimizer.lr)
        expected.append(theirs.get_last_lr()[0])
        assert ours.get_last_lr() == [seen[-1]]
    return seen, expected


@settings(max_examples=15, deadline=None)
@given(
    T_max=st.integers(1, 12),
    eta_min=st.sampled_from([0.0, 1e-3, 0.05]),
    lr=st.sampled_from([0.1, 1.0]),
)
def test_cosine_annealing_lr_sequence_matches_torch(T_max, eta_min, lr):  # noqa: N803
    torch = pytest.importorskip("torch")
    seen, expected = lr_sequences(
        lambda o: optim.CosineAnnealingLR(o, T_max, eta_min),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min),
        lr,
        epochs=3 * T_max + 1,  # past T_max, where the cosine climbs back
    )
    # torch updates lr recursively, autonet from the closed form: equal up to rounding
    np.testing.assert_allclose(seen, expected, rtol=1e-10, atol=1e-12 * lr)
    assert seen[T_max - 1] == pytest.approx(eta_min, abs=1e-15)


@settings(max_examples=10, deadline=None)
@given(step_size=st.integers(1, 4), gamma=st.sampled_from([0.1, 0.5, 0.9]))
def test_step_lr_sequence_matches_torch(step_size, gamma):
    torch = pytest.importorskip("torch")
    seen, expected = lr_sequences(
        lambda o: optim.StepLR(o, step_size, gamma),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma),
        1.0,
        epochs=12,
    )
    np.testing.assert_allclose(seen, expected, rtol=1e-13)


@settings(max_examples=40, deadline=None)
@given(
    metrics=st.lists(
        st.sampled_from([1.0, 0.99995, 0.9, 0.5, 2.0, -1.0, float("nan")]), max_size=30
    ),
    mode=st.sampled_from(["min", "max"]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    threshold=st.sampled_from([1e-4, 0.2]),
    factor=st.sampled_from([0.1, 0.5]),
    patience=st.integers(0, 3),
    cooldown=st.integers(0, 2),
    min_lr=st.sampled_from([0.0, 0.02]),
)
def test_reduce_lr_on_plateau_matches_torch(
    metrics, mode, threshold_mode, threshold, factor, patience, cooldown, min_lr
):
    torch = pytest.importorskip("torch")
    options = {
        "mode": mode,
        "factor": factor,
        "patience": patience,
        "threshold": threshold,
        "threshold_mode": threshold_mode,
        "cooldown": cooldown,
        "min_lr": min_lr,
    }
    seen, expected = lr_sequences(
        lambda o: optim.ReduceLROnPlateau(o, **options),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **options),
        1.0,
        epochs=len(metrics),
        metrics=metrics,
    )
    assert seen == expected  # the same multiplications and comparisons: exactly equal


def test_reduce_lr_on_plateau_waits_patience_epochs_then_cools_down():
    optimizer = optim.SGD([an.tensor([1.0], requires_grad=True)], lr=1.0)
    schedule = optim.ReduceLROnPlateau(optimizer, patience=2, cooldown=1, factor=0.5)
    lrs = []
    for loss in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]:
        schedule.step(loss)
        lrs.append(optimizer.lr)
    # epoch 1 sets best; 2, 3, 4 are bad: after the third (> patience) lr halves; epoch 5 is
    # cooldown; 6, 7 bad again, 8 improves
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]


GRADIENT_SHAPES = st.lists(
    st.sampled_from([(3,), (2, 2), (), (0,), None]), min_size=1, max_size=4
)  # None: a parameter without .grad


@settings(max_examples=40, deadline=None)
@given(
    shapes=GRADIENT_SHAPES,
    max_norm=st.sampled_from([0.1, 1.0, 100.0]),
    norm_type=st.sampled_from([1.0, 2.0, 3.5, 0.0, float("inf"), "inf", float("-inf")]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_clip_grad_norm_matches_torch(shapes, max_norm, norm_type, dtype, seed):
    torch = pytest.importorskip("torch")
    if norm_type in (float("inf"), "inf", float("-inf")) and (0,) in shapes:
        shapes = [s for s in shapes if s != (0,)]  # torch refuses an empty gradient there
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape in shapes:
        w = an.tensor(np.zeros((1,) if shape is None else shape, dtype), requires_grad=True)
        t = torch.zeros(
            (1,) if shape is None else shape,
            dtype=torch.float64 if dtype == np.float64 else torch.float32,
        )
        if shape is not None:
            g = rng.normal(size=shape).astype(dtype)
            w.grad = g.copy()
            t.grad = torch.tensor(g)
        ours.append(w)
        theirs.append(t)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert isinstance(total, an.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), expected.item(), rtol=tolerance)
    for w, t in zip(ours, theirs, strict=True):
        if t.grad is None:
            assert w.grad is None
        else:
            assert w.grad.dtype == dtype
            np.testing.assert_allclose(w.grad.data, t.grad.numpy(), rtol=tolerance, atol=1e-30)


def test_clip_grad_norm_scales_to_max_norm_and_leaves_small_gradients_alone():
    w = an.tensor(np.zeros(2), requires_grad=True)
    w.grad = np.array([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(w, 1.0).item() == 5.0
    np.testing.assert_allclose(w.grad.data, [3 / (5 + 1e-6), 4 / (5 + 1e-6)], rtol=1e-15)
    w.grad = np.array([0.3, 0.4])
    assert nn.utils.clip_grad_norm_([w], 1.0).item() == pytest.approx(0.5, rel=1e-15)
    np.testing.assert_array_equal(w.grad.data, [0.3, 0.4])  # the coefficient is clamped to 1


def test_clip_grad_norm_of_a_non_finite_gradient():
    torch = pytest.importorskip("torch")
    w = an.tensor(np.zeros(2), requires_grad=True)
    w.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="the total norm of order 2.0 of the gradients is inf"):
        nn.utils.clip_grad_norm_(w, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(w.grad.data, [np.inf, 1.0])  # untouched
    t = torch.zeros(2, dtype=torch.float64)
    t.grad = torch.tensor([np.inf, 1.0], dtype=torch.float64)
    assert nn.utils.clip_grad_norm_(w, 1.0).item() == torch.nn.utils.clip_grad_norm_(t, 1.0).item()
    np.testing.assert_array_equal(w.grad.data, t.grad.numpy())  # inf * 0 = nan, 1 * 0 = 0
