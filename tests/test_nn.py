"""autonet.nn modules: outputs and gradients equal the same math written with autonet's ops, the
gradients match finite differences, and MLP([3, 4, 1]) is exactly the tutorial's network."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_weights
from tests.oracles import numeric_gradient

SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(
    m=st.integers(1, 5),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 4),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_linear_matches_matmul_plus_bias_and_its_gradients(m, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    layer = nn.Linear(n_in, n_out, bias=bias, rng=rng)
    if bias:
        layer.bias.data = rng.normal(size=n_out)
    x = rng.normal(size=(m, n_in))
    upstream = rng.normal(size=(m, n_out))
    out = layer(x)
    (out * upstream).sum().backward()
    w = an.tensor(layer.weight.data, requires_grad=True)
    b = an.tensor(layer.bias.data if bias else np.zeros(n_out), requires_grad=True)
    expected = an.tensor(x) @ w + b
    (expected * upstream).sum().backward()
    np.testing.assert_array_equal(out.data, expected.data)
    np.testing.assert_array_equal(layer.weight.grad.data, w.grad.data)
    if bias:
        np.testing.assert_array_equal(layer.bias.grad.data, b.grad.data)
    # and independently: d/dW sum(upstream * (x W + b)) = x^T upstream, d/db = column sums
    np.testing.assert_allclose(layer.weight.grad.data, x.T @ upstream, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "module, function",
    [
        (nn.Sigmoid(), an.sigmoid),
        (nn.Tanh(), an.tanh),
        (nn.ReLU(), an.relu),
        (nn.Identity(), lambda x: x),
        (nn.Sign(at_zero=-1), lambda x: an.sign(x, at_zero=-1)),
    ],
    ids=["sigmoid", "tanh", "relu", "identity", "sign"],
)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_activation_modules_match_their_ops(module, function, seed):
    x = np.random.default_rng(seed).normal(size=(3, 4))
    a, b = an.tensor(x, requires_grad=True), an.tensor(x, requires_grad=True)
    out, expected = module(a), function(b)
    np.testing.assert_array_equal(out.data, expected.data)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_array_equal(a.grad.data, b.grad.data)


def test_sign_module_uses_the_perceptron_convention_at_zero():
    x = an.tensor([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(nn.Sign(at_zero=-1)(x).data, [-1, -1, 1])
    np.testing.assert_array_equal(nn.Sign()(x).data, [-1, 0, 1])


@SETTINGS
@given(
    sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    activation=st.sampled_from(["sigmoid", "tanh", "relu"]),
    bias=st.booleans(),
    last_activation=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_mlp_gradients_match_finite_differences(sizes, activation, bias, last_activation, seed):
    rng = np.random.default_rng(seed)
    model = nn.MLP(
        sizes, activation=activation, bias=bias, last_activation=last_activation, rng=rng
    )
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):  # biases start at 0, which would put relu on its kink
            parameter.data = rng.normal(size=parameter.shape)
    x = rng.normal(size=(3, sizes[0]))
    y = rng.normal(size=(3, sizes[-1]))
    an.nn.functional.half_sse(model(x), y).backward()
    for name, parameter in model.named_parameters():

        def loss_at(values, parameter=parameter):
            saved = parameter.data
            parameter.data = values
            with an.no_grad():
                value = float(an.nn.functional.half_sse(model(x), y).data)
            parameter.data = saved
            return value

        numeric = numeric_gradient(loss_at, [parameter.data], 0)
        # central differences with eps = 1e-6: truncation ~eps^2 * f''' and rounding ~1e-16/eps,
        # both below 1e-8 here; relu kinks are hit with probability 0 for normal inputs and biases
        np.testing.assert_allclose(parameter.grad.data, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_mlp_reproduces_the_tutorials_numpy_loop_exactly():
    """Same initial weights, then 2,000 full-batch steps: autograd through nn and optim, versus
    the tutorial's hand-written update, agree to 1e-10 in every output and weight."""
    model = nn.MLP([3, 4, 1], bias=False, init="uniform", rng=7)
    syn0, syn1 = seed_weights(seed=7)  # the tutorial's init, from the same generator sequence
    np.testing.assert_array_equal(model.layers[0].weight.data, syn0)
    np.testing.assert_array_equal(model.layers[2].weight.data, syn1)
    optimizer = an.optim.SGD(model.parameters(), lr=1.0)
    S, Y = XNOR_INPUTS, XNOR_TARGETS
    for _ in range(2000):
        O = model(S)
        loss = an.nn.functional.half_sse(O, Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # the tutorial's loop, verbatim in NumPy
        H = 1 / (1 + np.exp(-(S @ syn0)))
        O_ref = 1 / (1 + np.exp(-(H @ syn1)))
        np.testing.assert_allclose(O.data, O_ref, rtol=0, atol=1e-10)
        delta = (O_ref - Y) * O_ref * (1 - O_ref)
        syn1_new = syn1 - 1.0 * H.T @ delta
        syn0 = syn0 - 1.0 * S.T @ ((delta @ syn1.T) * H * (1 - H))
        syn1 = syn1_new
        np.testing.assert_allclose(model.layers[0].weight.data, syn0, rtol=0, atol=1e-10)
        np.testing.assert_allclose(model.layers[2].weight.data, syn1, rtol=0, atol=1e-10)
    assert float(loss.data) < 0.05


def test_parameter_names_are_dotted_paths_from_the_outermost_module():
    model = nn.MLP([2, 3, 1], rng=0)
    names = [name for name, _ in model.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert [p.name for p in model.parameters()] == names

    class Wrapper(nn.Module):
        def __init__(self):
            self.scale = an.tensor(1.0, requires_grad=True)
            self.net = model

        def forward(self, x):
            return self.net(x) * self.scale

    wrapper = Wrapper()
    assert [p.name for p in wrapper.parameters()] == ["scale"] + ["net." + n for n in names]


def test_shared_parameters_are_listed_once_and_zero_grad_clears_them():
    layer = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(layer, nn.Tanh(), layer)
    assert len(model.parameters()) == 2
    model(np.ones((1, 2))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_and_eval_reach_every_submodule():
    model = nn.MLP([2, 4, 4, 1], dropout=0.5, rng=0)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_dropout_is_inactive_in_eval_mode_and_scales_kept_units_in_training():
    x = an.tensor(np.ones((200, 50)), requires_grad=True)
    layer = nn.Dropout(0.3, rng=0)
    out = layer(x)
    kept = out.data != 0
    assert abs(kept.mean() - 0.7) < 0.02  # 10,000 Bernoulli(0.7) draws: std 0.0046
    np.testing.assert_allclose(out.data[kept], 1 / 0.7)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, kept / 0.7)  # dropped units get no gradient
    layer.eval()
    x.grad = None
    out = layer(x)
    np.testing.assert_array_equal(out.data, x.data)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((200, 50)))


def test_initialisers_have_their_stated_ranges_and_variances():
    rng = np.random.default_rng(0)
    u = nn.init.uniform((400, 300), rng)
    assert u.min() >= -1 and u.max() < 1 and abs(u.var() - 1 / 3) < 0.01
    bound = np.sqrt(6 / 700)
    x = nn.init.xavier_uniform((400, 300), rng)
    assert np.abs(x).max() <= bound and abs(x.var() - 2 / 700) < 0.05 * 2 / 700
    h = nn.init.he_normal((400, 300), rng)
    assert abs(h.std() - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)


def test_bad_configuration_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown initialiser 'orthogonal'"):
        nn.Linear(2, 3, init="orthogonal")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([2, 3], activation="swish")
    with pytest.raises(ValueError, match=r"input shape \(4, 2\) does not end in in_features = 3"):
        nn.Linear(3, 1)(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        nn.Dropout(1.0)
    with pytest.raises(TypeError, match="argument 1 is a ufunc, not a Module"):
        nn.Sequential(nn.Tanh(), np.tanh)
