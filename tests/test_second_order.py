"""Second derivatives: exact at the points where a smooth function's obvious decomposition has a
kink or a special case (softplus, log_sigmoid and the logistic loss at 0, pow at a zero exponent),
and a Tensor seed under create_graph stays in the graph, so the double-VJP trick gives J v."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.nn import functional as F

POINTS = st.floats(-30, 30, allow_nan=False, allow_subnormal=False)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@settings(max_examples=40, deadline=None)
@given(x=POINTS)
@example(x=0.0)  # found by review: the Hessian was 0 here (exact 1/4), from maximum's kink
def test_second_derivatives_of_the_logistic_family_are_exact(x):
    curvature = sigmoid(x) * sigmoid(-x)  # s (1 - s), without 1 - s cancelling for large x
    second = an.grad(an.grad(F.softplus))(x).item()
    # the engine computes s (1 - s) from s = sigmoid(x): 1 - s loses digits as s -> 1
    rtol = 1e-15 / curvature + 1e-12
    np.testing.assert_allclose(second, curvature, rtol=rtol)
    np.testing.assert_allclose(an.grad(an.grad(F.log_sigmoid))(x).item(), -curvature, rtol=rtol)
    y = an.tensor([0.3])

    def logistic_loss(z):
        return F.binary_cross_entropy_with_logits(z.reshape(1), y, reduction="sum")

    np.testing.assert_allclose(an.grad(an.grad(logistic_loss))(x).item(), curvature, rtol=rtol)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.1, 5), b=st.floats(-3, 3) | st.just(0.0))
@example(a=2.0, b=0.0)  # found by review: 1.0 (exact 1/a = 0.5; PyTorch gives 0)
def test_mixed_partial_of_pow_is_exact_at_every_exponent(a, b):
    """d/db d(a^b)/da = d/db (b a^(b-1)) = a^(b-1) (1 + b log a)."""
    at, bt = an.tensor(a, requires_grad=True), an.tensor(b, requires_grad=True)
    (grad_a,) = an.gradients(at**bt, [at], create_graph=True)
    (mixed,) = an.gradients(grad_a, [bt])
    np.testing.assert_allclose(mixed.item(), a ** (b - 1) * (1 + b * np.log(a)), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_a_tensor_seed_stays_in_the_graph_so_double_vjp_gives_jvp(seed):
    """J v by reverse mode twice: g(u) = J^T u is linear in u, so d<g(u), v>/du = J v.
    Found by review: the seed was detached, so this returned zeros."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 4))
    x = an.tensor(rng.normal(size=4), requires_grad=True)
    v = rng.normal(size=4)

    def f(t):
        return (an.tensor(A) @ t).tanh()

    u = an.tensor(np.zeros(3), requires_grad=True)
    (g,) = an.gradients(f(x), [x], grad=u, create_graph=True)
    (jvp,) = an.gradients(g, [u], grad=v)
    jacobian = (1 - np.tanh(A @ x.data) ** 2)[:, None] * A
    np.testing.assert_allclose(jvp.data, jacobian @ v, rtol=1e-12, atol=1e-14)
    # the same through backward(u, create_graph=True)
    f(x).backward(u, create_graph=True)
    (jvp_from_backward,) = an.gradients(x.grad, [u], grad=v)
    np.testing.assert_allclose(jvp_from_backward.data, jacobian @ v, rtol=1e-12, atol=1e-14)


def test_second_derivatives_match_pytorch_away_from_special_points():
    torch = pytest.importorskip("torch")
    x = np.linspace(-5, 5, 11)
    t = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(torch.nn.functional.softplus(t).sum(), [t], create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), [t])
    ours = an.tensor(x, requires_grad=True)
    (ga,) = an.gradients(F.softplus(ours).sum(), [ours], create_graph=True)
    (ha,) = an.gradients(ga.sum(), [ours])
    np.testing.assert_allclose(ha.data, h.numpy(), rtol=1e-12)


def test_grad_of_grad_gives_mixed_partials_and_sees_captured_tensors():
    """Found by the fuzzer: an inner an.grad recorded its backward pass only when an argument it
    differentiated already required grad, so mixed partials and tensors the function closes over
    got 0 (torch.func.grad gives 1 and 4 here)."""
    mixed = an.grad(lambda a, b: an.grad(lambda a, b: a * b, argnums=0)(a, b), argnums=1)
    assert mixed(2.0, 3.0).item() == 1.0
    w = an.tensor(3.0, requires_grad=True)
    inner = an.grad(lambda x: x * x * w)(2.0)  # 2 x w, a function of w
    assert inner.requires_grad
    inner.backward()
    assert w.grad.item() == 4.0
