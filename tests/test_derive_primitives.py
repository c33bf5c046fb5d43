"""Every primitive of the table can be derived symbolically: its VJP rule, run on symbols, prints
as the rule's formula and evaluates to the gradient the engine computes on arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import autonet as an
from autonet.primitives import PRIMITIVES
from tests.strategies import PRIMITIVE_CASES

P = PRIMITIVES
RNG = np.random.default_rng(0)


def x(shape, name, low=-1.0, high=1.0, dtype=np.float64):
    return an.tensor(RNG.uniform(low, high, shape).astype(dtype), requires_grad=True, name=name)


# The image primitives' params at their defaults (derive leaves those out), and a 2x2 pool.
UNIT_CONV = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
POOL_2X2 = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}


# name -> (inputs, a function of them giving the primitive's output, the derived formula of each
# input's gradient with G = dL/d(out)). Every primitive needs one: test_cases_cover_the_table.
CASES = {
    "add": ([x((2, 3), "a"), x((3,), "b")], lambda a, b: a + b, ["G", "sum(G, axis=0)"]),
    "sub": ([x((2, 3), "a"), x((3,), "b")], lambda a, b: a - b, ["G", "sum(−G, axis=0)"]),
    "mul": ([x((2, 3), "a"), x((2, 3), "b")], lambda a, b: a * b, ["G * b", "G * a"]),
    "div": ([x((2, 3), "a"), x((2, 3), "b", 1, 2)], lambda a, b: a / b, ["G / b", "−G * out / b"]),
    "neg": ([x((2, 3), "a")], lambda a: -a, ["−G"]),
    "pow": (
        [x((2, 3), "a", 0.5, 2), x((2, 3), "b")],
        lambda a, b: a**b,
        ["G * b * a^(b − 1 + [b == 0] * [a == 0])", "G * out * log(a + [a == 0] * [b >= 0])"],
    ),
    "pow_scalar": ([x((2, 3), "a", 0.5, 2)], lambda a: a**3, ["3 * G * a^2"]),
    "matmul": ([x((2, 3), "a"), x((3, 4), "b")], lambda a, b: a @ b, ["G · b^T", "a^T · G"]),
    "exp": ([x((2, 3), "a")], lambda a: a.exp(), ["G * out"]),
    "log": ([x((2, 3), "a", 0.5, 2)], lambda a: a.log(), ["G / a"]),
    "sqrt": ([x((2, 3), "a", 0.5, 2)], lambda a: a.sqrt(), ["G / (2 * out)"]),
    "sigmoid": ([x((2, 3), "a")], lambda a: a.sigmoid(), ["G * out * (1 − out)"]),
    "softplus": ([x((2, 3), "a")], lambda a: an.nn.functional.softplus(a), ["G * σ(a)"]),
    "tanh": ([x((2, 3), "a")], lambda a: a.tanh(), ["G * (1 − out * out)"]),
    "relu": ([x((2, 3), "a")], lambda a: a.relu(), ["G * [a > 0]"]),
    "abs": ([x((2, 3), "a")], lambda a: a.abs(), ["G * sign(a)"]),
    "sign": ([x((2, 3), "a")], lambda a: a.sign(), ["0"]),
    "maximum": (
        [x((2, 3), "a"), x((2, 3), "b")],
        lambda a, b: an.maximum(a, b),
        ["G * ([a > b] + 0.5 * [a == b])", "G * ([b > a] + 0.5 * [b == a])"],
    ),
    "sum": (
        [x((2, 3), "a")],
        lambda a: a.sum(axis=1),
        ["broadcast_to(reshape(G, (2, 1)), (2, 3))"],
    ),
    "max": (
        [x((2, 3), "a")],
        lambda a: a.max(axis=1),
        [
            "[a == reshape(out, (2, 1))] * reshape(G, (2, 1))"
            " / sum([a == reshape(out, (2, 1))], axis=1, keepdims)"
        ],
    ),
    "log_softmax": (
        [x((2, 3), "a")],
        lambda a: P["log_softmax"](a, axis=1),
        ["G − exp(out) * sum(G, axis=1, keepdims)"],
    ),
    "broadcast_to": (
        [x((3,), "a")],
        lambda a: P["broadcast_to"](a, shape=(2, 3)),
        ["sum(G, axis=0)"],
    ),
    "reshape": ([x((2, 3), "a")], lambda a: a.reshape(3, 2), ["reshape(G, (2, 3))"]),
    "transpose": ([x((2, 3, 4), "a")], lambda a: a.transpose(2, 0, 1), ["transpose(G, (1, 2, 0))"]),
    "getitem": (
        [x((4,), "a")],
        lambda a: a[np.array([0, 2, 2])],
        ["scatter_add(G, index=[[0, 2, 2]], shape=(4,))"],
    ),
    "scatter_add": (
        [x((3,), "a")],
        lambda a: P["scatter_add"](a, index=np.array([0, 2, 2]), shape=(4,)),
        ["G[[0, 2, 2]]"],
    ),
    "concatenate": (
        [x((2,), "a"), x((3,), "b")],
        lambda a, b: an.concatenate([a, b]),
        ["G[0:2]", "G[2:5]"],
    ),
    "astype": (
        [x((2, 3), "a", dtype=np.float32)],
        lambda a: a.astype(np.float64),
        ["astype(G, float32)"],
    ),
    "zeros_like": ([x((2, 3), "a")], lambda a: P["zeros_like"](a), ["0"]),
    "copy": ([x((2, 3), "a")], lambda a: a.clone(), ["G"]),
    "sin": ([x((2, 3), "a")], lambda a: an.sin(a), ["G * cos(a)"]),
    "cos": ([x((2, 3), "a")], lambda a: an.cos(a), ["−G * sin(a)"]),
    "tan": ([x((2, 3), "a")], lambda a: an.tan(a), ["G * (1 + out * out)"]),
    "arcsin": ([x((2, 3), "a", -0.5, 0.5)], lambda a: an.arcsin(a), ["G / sqrt(1 − a * a)"]),
    "arccos": ([x((2, 3), "a", -0.5, 0.5)], lambda a: an.arccos(a), ["−G / sqrt(1 − a * a)"]),
    "arctan": ([x((2, 3), "a")], lambda a: an.arctan(a), ["G / (1 + a * a)"]),
    "sinh": ([x((2, 3), "a")], lambda a: an.sinh(a), ["G * cosh(a)"]),
    "cosh": ([x((2, 3), "a")], lambda a: an.cosh(a), ["G * sinh(a)"]),
    "log1p": ([x((2, 3), "a", 0, 1)], lambda a: an.log1p(a), ["G / (1 + a)"]),
    "expm1": ([x((2, 3), "a")], lambda a: an.expm1(a), ["G * (out + 1)"]),
    "log2": ([x((2, 3), "a", 0.5, 2)], lambda a: an.log2(a), ["G / (0.693147 * a)"]),
    "log10": ([x((2, 3), "a", 0.5, 2)], lambda a: an.log10(a), ["G / (2.30259 * a)"]),
    "exp2": ([x((2, 3), "a")], lambda a: an.exp2(a), ["0.693147 * G * out"]),
    "erf": ([x((2, 3), "a")], lambda a: an.erf(a), ["1.12838 * G * exp(−a * a)"]),
    "where": (
        [x((2, 3), "a"), x((2, 3), "b")],
        lambda a, b: an.where(an.tensor(np.array([True, False, True]), name="c"), a, b),
        ["G * c", "G * [c == 0]"],
    ),
    "clip": ([x((2, 3), "a")], lambda a: a.clip(-0.5, 0.5), ["G * [a >= −0.5] * [a <= 0.5]"]),
    "minimum": (
        [x((2, 3), "a"), x((2, 3), "b")],
        lambda a, b: an.minimum(a, b),
        ["G * ([a < b] + 0.5 * [a == b])", "G * ([b < a] + 0.5 * [b == a])"],
    ),
    "logsumexp": (
        [x((2, 3), "a")],
        lambda a: an.logsumexp(a, axis=1),
        ["reshape(G, (2, 1)) * exp(a − reshape(out, (2, 1)))"],
    ),
    "cumsum": (
        [x((2, 3), "a")],
        lambda a: a.cumsum(axis=1),
        ["cumsum(G[:, ::-1], axis=1)[:, ::-1]"],
    ),
    "prod": (
        [x((2, 3), "a")],
        lambda a: a.prod(axis=1),
        ["reshape(G, (2, 1)) * prod(const[3×3] * reshape(a, (2, 1, 3)) + const[3×3], axis=2)"],
    ),
    "pad": ([x((2, 3), "a")], lambda a: an.pad(a, ((1, 0), (0, 2))), ["G[1:3, 0:3]"]),
    "einsum": (
        [x((2, 3), "a"), x((3, 4), "b")],
        lambda a, b: an.einsum("ij,jk->ik", a, b),
        ["einsum(G, b, subscripts=ik,jk->ij)", "einsum(G, a, subscripts=ik,ij->jk)"],
    ),
    "conv2d": (
        [x((1, 2, 4, 4), "a"), x((3, 2, 2, 2), "b")],
        lambda a, b: an.nn.functional.conv2d(a, b, padding=1),
        [
            "conv2d_input_grad(G, b, input_size=(4, 4), padding=(1, 1))",
            "conv2d_weight_grad(a, G, kernel_size=(2, 2), padding=(1, 1))",
        ],
    ),
    "conv2d_input_grad": (
        [x((1, 3, 3, 3), "a"), x((3, 2, 2, 2), "b")],
        lambda a, b: P["conv2d_input_grad"](a, b, input_size=(4, 4), **UNIT_CONV),
        ["conv2d(G, b)", "conv2d_weight_grad(G, a, kernel_size=(2, 2))"],
    ),
    "conv2d_weight_grad": (
        [x((1, 2, 4, 4), "a"), x((1, 3, 3, 3), "b")],
        lambda a, b: P["conv2d_weight_grad"](a, b, kernel_size=(2, 2), **UNIT_CONV),
        ["conv2d_input_grad(b, G, input_size=(4, 4))", "conv2d(a, G)"],
    ),
    "avg_pool2d": (
        [x((1, 2, 4, 4), "a")],
        lambda a: an.nn.functional.avg_pool2d(a, 2),
        ["avg_pool2d_grad(G, input_size=(4, 4), kernel_size=(2, 2), stride=(2, 2))"],
    ),
    "avg_pool2d_grad": (
        [x((1, 2, 2, 2), "a")],
        lambda a: P["avg_pool2d_grad"](a, input_size=(4, 4), **POOL_2X2),
        ["avg_pool2d(G, kernel_size=(2, 2), stride=(2, 2))"],
    ),
    "max_pool2d": (
        [x((1, 2, 4, 4), "a")],
        lambda a: an.nn.functional.max_pool2d(a, 2),
        ["max_pool2d_scatter(G, a, kernel_size=(2, 2), stride=(2, 2))"],
    ),
    "max_pool2d_scatter": (
        [x((1, 2, 2, 2), "a"), x((1, 2, 4, 4), "b")],
        lambda a, b: P["max_pool2d_scatter"](a, b, **POOL_2X2),
        ["max_pool2d_gather(G, b, kernel_size=(2, 2), stride=(2, 2))", "0"],
    ),
    "max_pool2d_gather": (
        [x((1, 2, 4, 4), "a"), x((1, 2, 4, 4), "b")],
        lambda a, b: P["max_pool2d_gather"](a, b, **POOL_2X2),
        ["max_pool2d_scatter(G, b, kernel_size=(2, 2), stride=(2, 2))", "0"],
    ),
}


def derive_case(inputs, function):
    out = function(*inputs)
    out.name = "out"
    G = an.tensor(RNG.normal(size=out.shape).astype(out.dtype), name="G")
    return an.derive(out, wrt=inputs, grad=G), out, G


def test_cases_cover_the_table():
    assert sorted(CASES) == sorted(PRIMITIVES)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_each_primitive_derives_its_rule(name):
    inputs, function, expected = CASES[name]
    derivation, out, _ = derive_case(inputs, function)
    assert out.op is PRIMITIVES[name]
    assert [derivation.text(t) for t in inputs] == expected
    assert derivation.verified, str(derivation)


@pytest.mark.parametrize("name", sorted(PRIMITIVE_CASES))
def test_each_primitive_derivation_evaluates_to_the_engines_gradient(name):
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=PRIMITIVE_CASES[name])
    def check(case):
        arrays, params = case
        inputs = [
            an.tensor(a, requires_grad=a.dtype.kind == "f", name=f"x{i}")
            for i, a in enumerate(arrays)
        ]
        out = PRIMITIVES[name](*inputs, **params)
        wrt = [t for t in inputs if t.requires_grad]  # not where's condition
        G = RNG.normal(size=out.shape)
        derivation = an.derive(out, wrt=wrt, grad=G)
        expected = an.gradients(out, wrt, grad=G)
        for t, e in zip(wrt, expected, strict=True):
            value = derivation[t].expr.value
            assert value.shape == t.shape
            # The formula regroups the rule's arithmetic (constants folded first): a few ulps.
            np.testing.assert_allclose(value, e.data, rtol=1e-12, atol=1e-12)
        assert derivation.verified

    check()
