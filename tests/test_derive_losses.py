"""derive() on the losses people use after the tutorial's: binary cross-entropy and cross-entropy
on logits print as a textbook writes them, δ_Z = (σ(Z) − Y) / m and (softmax(Z) − onehot(T)) / m,
with the batch size m a symbol; every printed formula (and the where line) is checked, so an
identity that is wrong is caught."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
import autonet.nn.functional as F
from autonet.cli import main
from autonet.cli.derive import layered_network, recurring_rule
from autonet.derive import expr
from autonet.derive.forms import ONEHOT
from autonet.primitives import PRIMITIVES

LOSSES = ["bce", "cross-entropy"]


@st.composite
def loss_problem(draw, loss, layers=None, bias=None):
    """(S, targets, weights, biases or None, layers, bias): any batch size, widths and depth;
    targets are 0/1 columns for bce, class indices of 2 or 3 classes for cross-entropy."""
    layers = draw(st.integers(1, 3)) if layers is None else layers
    bias = draw(st.booleans()) if bias is None else bias
    m = draw(st.integers(1, 6))
    outputs = st.integers(1, 3) if loss == "bce" else st.integers(2, 3)
    sizes = [draw(st.integers(1, 4)) for _ in range(layers)] + [draw(outputs)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = [rng.uniform(-1, 1, (a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [rng.uniform(-1, 1, n) for n in sizes[1:]] if bias else None
    if loss == "bce":
        targets = (rng.random((m, sizes[-1])) < 0.5).astype(float)
    else:
        targets = rng.integers(0, sizes[-1], m)
    return rng.normal(size=(m, sizes[0])), targets, weights, biases, layers, bias


def torch_gradients(S, targets, weights, biases, loss):
    """The gradients of the same network and loss, by PyTorch (float64)."""
    torch = pytest.importorskip("torch")
    H = torch.tensor(S)
    params = []
    for layer, w in enumerate(weights):
        W = torch.tensor(w, requires_grad=True)
        params.append(W)
        Z = H @ W
        if biases is not None:
            b = torch.tensor(biases[layer], requires_grad=True)
            params.append(b)
            Z = Z + b
        H = torch.sigmoid(Z)
    t = torch.tensor(targets)
    if loss == "bce":
        L = torch.nn.functional.binary_cross_entropy_with_logits(Z, t)
    else:
        L = torch.nn.functional.cross_entropy(Z, t)
    return [g.numpy() for g in torch.autograd.grad(L, params)]


@pytest.mark.parametrize("loss", LOSSES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_formulas_are_verified_and_equal_pytorchs_gradients(loss, data):
    S, targets, weights, biases, layers, bias = data.draw(loss_problem(loss))
    L, parameters = layered_network(S, targets, weights, biases, loss)
    derivation = an.derive(L, wrt=parameters)
    assert derivation.verified, str(derivation)
    expected_gradients = torch_gradients(S, targets, weights, biases, loss)
    for t, expected in zip(parameters, expected_gradients, strict=True):
        np.testing.assert_allclose(derivation[t].expr.value, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", LOSSES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_every_layer_follows_the_textbook_rule(loss, data):
    S, targets, weights, biases, layers, bias = data.draw(loss_problem(loss))
    L, parameters = layered_network(S, targets, weights, biases, loss)
    derivation = an.derive(L, wrt=parameters, finite_differences=False)
    checks = recurring_rule(derivation, layers, bias, loss)
    assert checks and all(ok for _, _, ok in checks), checks
    m = len(S)
    given_sizes = dict(derivation.given)
    assert given_sizes.get("m") == (str(m) if m > 1 else None)  # the mean over one divides by 1


def network(loss, bias=True, layers=2, labels=(0, 2, 1, 2)):
    rng = np.random.default_rng(0)
    sizes = [3] + [4] * (layers - 1) + [1 if loss == "bce" else 3]
    weights = [rng.uniform(-1, 1, (a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [rng.uniform(-1, 1, n) for n in sizes[1:]] if bias else None
    m = len(labels)
    targets = rng.integers(0, 2, (m, 1)).astype(float) if loss == "bce" else np.array(labels)
    return layered_network(rng.normal(size=(m, 3)), targets, weights, biases, loss)


def test_binary_cross_entropy_reads_as_a_textbook():
    L, parameters = network("bce")
    derivation = an.derive(L, wrt=parameters)
    lines = str(derivation).splitlines()
    for expected in (
        "δ_Z = (σ(Z) − Y) / m",
        "δ_1 = δ_Z · W_2^T * H_1 * (1 − H_1)",
        "∂L/∂W_2 = H_1^T · δ_Z",
        "∂L/∂b_2 = sum(δ_Z, axis=0)",
        "where H_1 = σ(S · W_1 + b_1), Z = H_1 · W_2 + b_2, "
        "L = sum(softplus(Z) − Y * Z) / m, m = 4",
    ):
        assert expected in lines
    assert derivation.verified
    latex = derivation.latex()
    assert r"\delta_{Z} &= \frac{\sigma\left(Z\right) - Y}{m} \\" in latex
    assert (
        r"\frac{\partial L}{\partial b_{2}} &= \sum_{\mathrm{axis}\,0}\left(\delta_{Z}\right)"
        in (latex)
    )
    where = derivation.where(latex=True)
    assert r"$L = \frac{\sum\left(\mathrm{softplus}\left(Z\right) - Y * Z\right)}{m}$" in where
    assert where.endswith("$m = 4$")


def test_cross_entropy_reads_as_a_textbook():
    L, parameters = network("cross-entropy", layers=3)
    derivation = an.derive(L, wrt=parameters)
    lines = str(derivation).splitlines()
    for expected in (
        "δ_Z = (softmax(Z) − onehot(T)) / m",
        "δ_2 = δ_Z · W_3^T * H_2 * (1 − H_2)",
        "∂L/∂W_3 = H_2^T · δ_Z",
        "∂L/∂b_3 = sum(δ_Z, axis=0)",
    ):
        assert expected in lines
    where = next(line for line in lines if line.startswith("where"))
    assert where.endswith("L = −sum(onehot(T) * log_softmax(Z)) / m, m = 4, T = [0, 2, 1, 2]")
    assert derivation.verified
    latex = derivation.latex()
    assert (
        r"\delta_{Z} &= \frac{\mathrm{softmax}\left(Z\right) - \mathrm{onehot}\left(T\right)}{m}"
        in latex
    )


def test_the_batch_size_is_a_symbol_and_a_half_stays_a_half():
    X = an.tensor(np.arange(6.0).reshape(2, 3) / 6, name="X")
    w = an.tensor(np.ones((3, 1)), requires_grad=True, name="w")
    Y = an.tensor([[0.0], [1.0]], name="Y")
    O = X @ w
    O.name = "O"
    # 1/2 sum over a batch of 2 is numerically a mean; written as 0.5 * sum, it stays a half.
    half = an.derive(F.half_sse(O, Y), wrt=[w])
    assert half.text(w) == "X^T · (O − Y)" and half.given == []
    mean = an.derive(F.mse(O, Y), wrt=[w])
    assert mean.text(w) == "X^T · (2 * (O − Y) / m)" and mean.given == [("m", "2")]
    assert str(mean).splitlines()[1] == "where O = X · w, L = sum((O − Y)^2) / m, m = 2"
    by_hand = an.derive(((O - Y) ** 2).sum() / 2, wrt=[w])  # sum / (its count) is a mean too
    assert by_hand.text(w) == "X^T · (2 * (O − Y) / m)"
    for derivation in (half, mean, by_hand):
        assert derivation.verified


def test_a_mean_over_more_axes_divides_by_their_sizes():
    X = an.tensor(np.linspace(-1, 1, 15).reshape(5, 3), name="X")
    W = an.tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True, name="W")
    Z = X @ W
    Z.name = "Z"
    derivation = an.derive(F.log_sigmoid(Z).mean(), wrt=[W])
    assert derivation.text(W) == "X^T · (σ(−Z) / (m * n_1))"
    assert derivation.given == [("m", "5"), ("n_1", "4")]
    Z = X @ W
    Z.name = "Z"
    derivation = an.derive((Z * Z).mean(axis=1).sum(), wrt=[W])
    assert derivation.text(W) == "X^T · ((Z + Z) / n_1)" and derivation.verified


def test_log_sum_exp_gradient_is_softmax():
    X = an.tensor(np.linspace(-1, 1, 15).reshape(5, 3), name="X")
    W = an.tensor(np.linspace(-2, 2, 12).reshape(3, 4), requires_grad=True, name="W")
    Z = X @ W
    Z.name = "Z"
    derivation = an.derive(an.logsumexp(Z, axis=1).mean(), wrt=[W])
    assert derivation.text(W) == "X^T · (softmax(Z) / m)" and derivation.verified


def test_taken_names_are_not_reused_for_sizes_and_labels():
    X = an.tensor(np.linspace(-1, 1, 15).reshape(5, 3), name="m")
    W = an.tensor(np.linspace(-2, 2, 12).reshape(3, 4), requires_grad=True, name="T")
    derivation = an.derive(F.cross_entropy(X @ W, np.array([0, 3, 1, 1, 2])), wrt=[W])
    assert derivation.text(W) == "m^T · ((softmax(m · T) − onehot(T′)) / m′)"
    assert derivation.given == [("m′", "5"), ("T′", "[0, 3, 1, 1, 2]")]
    assert derivation.verified


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_losses_stay_float32_and_verified(dtype):
    rng = np.random.default_rng(3)
    X = an.tensor(rng.normal(size=(6, 3)).astype(dtype), name="X")
    W = an.tensor(rng.normal(size=(3, 2)).astype(dtype), requires_grad=True, name="W")
    for L in (
        F.cross_entropy(X @ W, np.array([0, 1, 1, 0, 1, 0])),
        F.binary_cross_entropy_with_logits(X @ W, an.tensor((rng.random((6, 2)) < 0.5) * 1.0)),
    ):
        derivation = an.derive(L, wrt=[W])
        assert derivation[W].expr.value.dtype == dtype
        assert derivation.verified, str(derivation)


def test_cross_entropy_with_a_seed_or_a_sum_keeps_the_onehot():
    X = an.tensor(np.linspace(-1, 1, 6).reshape(3, 2), name="X")
    W = an.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True, name="W")
    Z = X @ W
    Z.name = "Z"
    labels = np.array([2, 0, 2])
    summed = an.derive(F.cross_entropy(Z, labels, reduction="sum"), wrt=[W])
    assert summed.text(W) == "X^T · (softmax(Z) − onehot(T))" and summed.verified
    G = an.tensor([1.0, -2.0, 0.5], name="G")
    seeded = an.derive(F.cross_entropy(Z, labels, reduction="none"), wrt=[W], grad=G)
    assert "onehot(T)" in seeded.text(W) and seeded.verified


# A wrong identity prints a wrong formula, and the check says so.


def cross_entropy_network():
    L, parameters = network("cross-entropy", bias=False, layers=1)
    return L, parameters[0]


def test_a_wrong_softmax_identity_is_caught(monkeypatch):
    # exp(log_softmax(x)) written as σ(x): the formula reads plausibly, and is wrong.
    sigmoid = PRIMITIVES["sigmoid"]
    monkeypatch.setitem(
        expr.SIMPLIFICATIONS, expr.EXP, lambda args, params: sigmoid(args[0].args[0])
    )
    L, W = cross_entropy_network()
    derivation = an.derive(L, wrt=[W])
    assert derivation.text(W) == "S^T · ((σ(Z) − onehot(T)) / m)"
    assert not derivation.verified
    assert derivation.check().startswith("NOT verified: these formulas differ from autograd's")


def test_a_wrong_onehot_is_caught(monkeypatch):
    shifted = ONEHOT.forward
    monkeypatch.setattr(
        ONEHOT, "forward", lambda t, classes, dtype: shifted((t + 1) % classes, classes, dtype)
    )
    L, W = cross_entropy_network()
    derivation = an.derive(L, wrt=[W])
    assert derivation.text(W) == "S^T · ((softmax(Z) − onehot(T)) / m)"
    assert not derivation.verified
    # the where line's L = −sum(onehot(T) * log_softmax(Z)) / m is checked too
    assert "these definitions differ from the recorded values: L" in derivation.check()


def test_a_wrong_batch_size_is_caught(monkeypatch):
    dimension = expr.Expr.dimension
    monkeypatch.setattr(
        expr.Expr,
        "dimension",
        staticmethod(lambda name, length, dtype: dimension(name, length + 1, dtype)),
    )
    L, W = cross_entropy_network()
    derivation = an.derive(L, wrt=[W])
    assert derivation.text(W) == "S^T · ((softmax(Z) − onehot(T)) / m)"
    assert derivation.given[0] == ("m", "5")  # the wrong value is shown, and fails the check
    assert not derivation.verified


def test_a_wrong_forward_identity_is_caught(monkeypatch):
    # x[arange(m), T] rewritten as the sum of the whole row: only the where line uses it.
    monkeypatch.setitem(
        expr.SIMPLIFICATIONS, expr.GETITEM, lambda args, params: args[0].sum(axis=1)
    )
    L, W = cross_entropy_network()
    derivation = an.derive(L, wrt=[W])
    assert all(f.verified for f in derivation.formulas)
    assert not derivation.verified
    assert derivation.check().startswith(
        "NOT verified: these definitions differ from the recorded values: L"
    )


# After backward()


def test_derive_after_backward_needs_the_graph_kept():
    L, W = cross_entropy_network()
    L.backward(retain_graph=True)
    assert an.derive(L, wrt=[W]).verified
    L.backward()
    with pytest.raises(RuntimeError, match=r"freed by backward\(\).*retain_graph=True"):
        an.derive(L, wrt=[W])


# The command


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--loss", "bce"], ["δ_Z = (σ(Z) − Y) / m", "∂L/∂W_2 = H_1^T · δ_Z"]),
        (
            ["--loss", "cross-entropy", "--layers", "3", "--bias", "--width", "3", "--latex"],
            [
                "δ_Z = (softmax(Z) − onehot(T)) / m",
                "∂L/∂b_3 = sum(δ_Z, axis=0)",
                r"\delta_{Z} &= \frac{\mathrm{softmax}\left(Z\right) - "
                r"\mathrm{onehot}\left(T\right)}{m} \\",
            ],
        ),
    ],
    ids=["bce", "cross-entropy"],
)
def test_the_command_derives_the_losses(args, expected, capsys):
    assert main(["derive", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in expected:
        assert line in lines
    assert any(line.startswith("verified:") for line in lines)
    assert any(line.startswith("The recurring rule") and "(matches" in line for line in lines)


@pytest.mark.parametrize("option", [["--width", "7"], ["--bias"]])
def test_the_command_refuses_options_of_layered_networks_without_layers(option, capsys):
    assert main(["derive", *option]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"autonet derive: {option[0]} needs --layers N")


def test_a_size_that_the_dtype_cannot_hold_stays_a_number():
    # 100000 is inf in float16: 1/m would be 0, so the mean keeps its constant.
    x = an.tensor(np.full(100_000, 0.01, np.float16), requires_grad=True, name="x")
    derivation = an.derive(x.mean(), wrt=[x], finite_differences=False)
    assert derivation.given == [] and "/ m" not in str(derivation)
    assert derivation.verified
    small = an.tensor(np.full(2000, 0.01, np.float16), requires_grad=True, name="x")
    assert an.derive(small.mean(), wrt=[small], finite_differences=False).given == [("m", "2000")]
