"""autonet.optim: SGD and Adam follow their update equations, checked on examples worked by hand
and (when PyTorch is installed) step by step against torch.optim."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import optim


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


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    weight_decay=st.sampled_from([0.0, 0.1]),
    adam=st.booleans(),
)
def test_optimisers_match_torch_step_by_step(seed, momentum, weight_decay, adam):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    w0, targets = rng.normal(size=(3, 2)), rng.normal(size=(5, 3, 2))
    w = an.tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    if adam:
        ours = optim.Adam([w], lr=0.05, weight_decay=weight_decay)
        theirs = torch.optim.Adam([tw], lr=0.05, weight_decay=weight_decay)
    else:
        ours = optim.SGD([w], lr=0.05, momentum=momentum, weight_decay=weight_decay)
        theirs = torch.optim.SGD([tw], lr=0.05, momentum=momentum, weight_decay=weight_decay)
    for target in targets:  # a different loss each step, so the gradients vary
        ours.zero_grad()
        (((w - target) ** 3).sum()).backward()
        ours.step()
        theirs.zero_grad()
        (((tw - torch.tensor(target)) ** 3).sum()).backward()
        theirs.step()
        # float64 on both sides, same equations: differences are rounding only
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-12, atol=1e-12)


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
