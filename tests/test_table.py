"""The table declares every fact of every primitive that a tool reads (the engine, gradcheck,
derive, replay and the drawing take them from the entry, not from lists of their own), and each
declaration is checked against what the primitive computes, so a missing or wrong one fails here:
element-wise, commutative, which param holds axes, where the kinks are, how derive writes it,
which values the VJPs read."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import autonet as an
from autonet.engine import freed
from autonet.primitives import PRIMITIVES, Kink, Notation, Primitive
from tests.strategies import PRIMITIVE_CASES

NAMES = sorted(PRIMITIVES)
quick = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", NAMES)
def test_every_fact_is_declared_with_its_type(name):
    p = PRIMITIVES[name]
    assert p.name == name and callable(p.forward) and p.vjps
    assert isinstance(p.elementwise, bool) and isinstance(p.commutative, bool)
    assert isinstance(p.variadic, bool) and isinstance(p.permutation, bool)
    assert p.kink is None or isinstance(p.kink, Kink) and p.kink.convention
    assert isinstance(p.notation, Notation) and p.notation.text
    assert p.notation.infix in (None, "sum", "product", "matmul")
    assert p.explain is None or callable(p.explain)
    assert not p.permutation or p.axis_param is not None


@pytest.mark.parametrize("name", NAMES)
def test_axis_param_and_bare_notation_name_params_of_the_primitive(name):
    @quick
    @given(case=PRIMITIVE_CASES[name])
    def check(case):
        _, params = case
        axis_params = [k for k in params if k in ("axis", "axes")]
        assert PRIMITIVES[name].axis_param == (axis_params[0] if axis_params else None)
        notation = PRIMITIVES[name].notation  # derive's bare params are params of the primitive
        assert set(notation.bare) <= set(params)

    check()


@pytest.mark.parametrize("name", [n for n in NAMES if PRIMITIVES[n].elementwise])
def test_elementwise_means_each_output_element_depends_on_the_same_input_elements(name):
    p = PRIMITIVES[name]

    @quick
    @given(case=PRIMITIVE_CASES[name])
    def check(case):
        arrays, params = case
        out = p.forward(*arrays, **params)
        broadcast = np.broadcast_arrays(*arrays)
        assert all(a.shape == out.shape for a in broadcast)
        for k in np.ndindex(out.shape):
            alone = p.forward(*(np.asarray(a[k]) for a in broadcast), **params)
            np.testing.assert_array_equal(alone, out[k])

    check()


def test_primitives_not_declared_elementwise_are_not():
    x = np.arange(6.0).reshape(2, 3)
    for name in ("matmul", "sum", "max", "log_softmax", "transpose", "reshape"):
        assert not PRIMITIVES[name].elementwise
    assert (
        PRIMITIVES["log_softmax"].forward(x, axis=1)[0, 0]
        != PRIMITIVES["log_softmax"].forward(x[:1, :1], axis=1)[0, 0]
    )


# The params of the two-input image primitives, for operands of shape (2, 2, 3, 3) both ways round.
UNIT = {"stride": (1, 1), "padding": (0, 0)}
IMAGE_PARAMS = {
    "conv2d": {**UNIT, "dilation": (1, 1)},
    "conv2d_input_grad": {**UNIT, "dilation": (1, 1), "input_size": (5, 5)},
    "conv2d_weight_grad": {**UNIT, "dilation": (1, 1), "kernel_size": (1, 1)},
    "max_pool2d_scatter": {**UNIT, "kernel_size": (1, 1)},
    "max_pool2d_gather": {**UNIT, "kernel_size": (1, 1)},
}


@pytest.mark.parametrize("name", [n for n in NAMES if len(PRIMITIVES[n].vjps) == 2])
def test_commutative_is_declared_exactly_where_the_order_does_not_matter(name):
    p = PRIMITIVES[name]
    rng = np.random.default_rng(0)
    params = IMAGE_PARAMS.get(name, {})
    a, b = rng.uniform(0.5, 2.0, (2, 2, 2, 3, 3) if params else (2, 3, 3))
    assert np.array_equal(p.forward(a, b, **params), p.forward(b, a, **params)) == p.commutative


def jumps_across(p: Primitive, point: float, h: float = 1e-7, **params) -> bool | None:
    """Whether p's value or gradient jumps between point - h and point + h (a one-input p), or
    between a = point -+ h with b = point (a tie, for a two-input p); None where either is not
    finite there (log at 0, division by 0): not a kink but the edge of the domain."""
    values, grads = [], []
    for x in (point - h, point + h):
        t = an.tensor([x], requires_grad=True)
        with np.errstate(all="ignore"):  # sqrt(-1), log(-1): not finite, so not a kink (below)
            out = p(t, an.tensor([point])) if len(p.vjps) == 2 else p(t, **params)
            out.sum().backward()
        values.append(out.data)
        grads.append(t.grad.data)
    if not np.all(np.isfinite(values + grads)):
        return None
    return bool(
        np.abs(values[1] - values[0]).max() > 1e-3 or np.abs(grads[1] - grads[0]).max() > 1e-3
    )


# The params a one-input primitive needs for the test below (clip's bounds lie on test points).
KINK_TEST_PARAMS = {"clip": {"a_min": -1.0, "a_max": 1.0}}


@pytest.mark.parametrize(
    "name",
    [n for n in NAMES if PRIMITIVES[n].elementwise and n not in ("astype", "pow_scalar", "where")],
)
def test_a_kink_is_declared_exactly_where_value_or_gradient_jumps(name):
    """At -1, 0 and 1 (a one-input primitive) or at a tie there (a two-input one), a jump of the
    value or of the gradient needs a declared kink, for gradcheck; smooth ones declare none.
    (astype and pow_scalar need a param; both are smooth. where's jump is in its condition,
    which has no gradient: in a and b it is linear.)"""
    p = PRIMITIVES[name]
    params = KINK_TEST_PARAMS.get(name, {})
    found = [jumps_across(p, point, **params) for point in (-1.0, 0.0, 1.0)]
    assert any(f is not None for f in found)
    assert any(found) == (p.kink is not None)


@pytest.mark.parametrize("name", ["sum", "max", "log_softmax", "logsumexp", "prod"])
def test_reductions_declare_their_kinks_at_ties(name):
    p = PRIMITIVES[name]
    grads = []
    for x in ([1.0, 1.0 + 1e-7], [1.0 + 1e-7, 1.0]):
        t = an.tensor(x, requires_grad=True)
        p(t, axis=0).sum().backward()
        grads.append(t.grad.data)
    jumps = np.max(np.abs(grads[0] - grads[1])) > 1e-3
    assert jumps == (p.kink is not None)


def test_infix_notation_only_on_two_input_primitives():
    for p in PRIMITIVES.values():
        if p.notation.infix is not None:
            assert len(p.vjps) == 2 and not p.variadic


def test_a_vjp_of_none_marks_an_input_without_gradient():
    scale = an.Primitive(
        "scale_by", lambda x, k: x * k, lambda g, out, x, k: g * k, None
    )  # k is a factor, not differentiated
    x = an.tensor([1.0, 2.0], requires_grad=True)
    k = an.tensor([3.0, 4.0], requires_grad=True)
    scale(x, k).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])
    assert k.grad is None


@pytest.mark.parametrize("name", NAMES)
def test_saves_names_every_value_a_vjp_reads(name):
    """Each VJP gives the same gradient when the values its primitive does not declare in
    `saves` are replaced by what the backward pass frees them to (NaN in no memory, of the
    same shape and dtype): so freeing them early never changes a gradient."""
    p = PRIMITIVES[name]
    rng = np.random.default_rng(0)

    @quick
    @given(case=PRIMITIVE_CASES[name])
    def check(case):
        arrays, params = case
        out = np.asarray(p.forward(*arrays, **params))
        g = rng.standard_normal(out.shape).astype(out.dtype)
        values = [out, *arrays]
        if p.variadic:  # its inputs are *xs: all of them or none
            kept = [p.saves_out] + ["xs" in p.saves.split()] * len(arrays)
        else:
            kept = [p.saves_out] + [i not in p.unsaved_inputs for i in range(len(arrays))]
        cut = [
            v if keep or np.asarray(v).dtype.kind != "f" else freed(np.asarray(v))
            for v, keep in zip(values, kept, strict=True)
        ]
        for i, vjp in enumerate(p.vjps * len(arrays) if p.variadic else p.vjps):
            if vjp is None:
                continue
            call = functools.partial(vjp, i) if p.variadic else vjp
            with np.errstate(all="ignore"):
                want = call(g, *values, **params)
                got = call(g, *cut, **params)
            np.testing.assert_array_equal(got, want)

    check()


def test_saves_is_checked_against_the_vjp_signature():
    with pytest.raises(ValueError, match=r"saves names \['y'\].*inputs of its VJPs \(x\)"):
        Primitive("twice", lambda x: 2 * x, lambda g, out, x: 2 * g, saves="y")
    user = Primitive("cube", lambda x: x**3, lambda g, out, x: g * 3 * x**2)
    assert user.saves is None and user.saves_out and user.unsaved_inputs == ()
