"""an.retain_grads keeps every intermediate gradient and the graph through backward, for drawing;
a graph backward() freed is drawn as far as it remains, with the fix said."""

from __future__ import annotations

import numpy as np
import pytest

import autonet as an
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients, seed_weights
from tests.dot_parsing import parse

# Gradients are compared with the tutorial's closed forms in float64; backward and the formulas
# do the same few operations in a different order, so they agree to a few ulps of values ~1.
TOL = 1e-12


def seed_network():
    S, Y = an.tensor(XNOR_INPUTS, name="S"), an.tensor(XNOR_TARGETS, name="Y")
    w0, w1 = seed_weights(seed=3)
    syn0 = an.tensor(w0, requires_grad=True, name="syn0")
    syn1 = an.tensor(w1, requires_grad=True, name="syn1")
    H = an.sigmoid(S @ syn0)
    O = an.sigmoid(H @ syn1)
    L = 0.5 * ((O - Y) ** 2).sum()
    return S, Y, syn0, syn1, H, O, L


def test_intermediate_gradients_are_kept_and_match_the_hand_formulas():
    S, Y, syn0, syn1, H, O, L = seed_network()
    with an.retain_grads(L):
        L.backward()
    o = O.data
    # dL/dO = O - Y;  dL/dH = ((O - Y) * O * (1 - O)) . syn1^T   (the tutorial's chain rule)
    np.testing.assert_allclose(O.grad.data, o - Y.data, rtol=0, atol=TOL)
    np.testing.assert_allclose(H.grad.data, ((o - Y.data) * o * (1 - o)) @ syn1.data.T, atol=TOL)
    grad0, grad1 = seed_gradients(S.data, Y.data, syn0.data, syn1.data)
    np.testing.assert_allclose(syn0.grad.data, grad0, atol=TOL)
    np.testing.assert_allclose(syn1.grad.data, grad1, atol=TOL)
    assert L.grad.data == 1.0


def test_without_retain_grads_intermediates_have_no_gradient_and_the_drawing_says_so():
    *_, H, O, L = seed_network()
    L.backward(retain_graph=True)
    assert H.grad is None and O.grad is None
    drawing = an.draw(L)
    assert "Intermediate gradients were not kept" in drawing.source
    assert "an.retain_grads(loss)" in drawing.source


def test_retain_grads_restores_the_graph_and_the_flags():
    *_, syn0, syn1, H, O, L = seed_network()
    nodes = an.topological_order(L)
    parents = [t.parents for t in nodes]
    with an.retain_grads(L) as root:
        assert root is L
        assert all(t.retains_grad for t in nodes if t.op is not None)
        L.backward()
    assert [t.parents for t in nodes] == parents
    assert not any(t.retains_grad for t in nodes)
    first = syn0.grad.data.copy()
    L.backward()  # the graph is whole again: a second pass works and accumulates
    np.testing.assert_allclose(syn0.grad.data, 2 * first, rtol=1e-15)
    assert H.grad is not None  # kept from the first pass, not grown by the second
    np.testing.assert_allclose(O.grad.data, O.data - XNOR_TARGETS, atol=TOL)


def test_user_retain_grad_flags_survive_the_block():
    *_, H, O, L = seed_network()
    H.retain_grad()
    with an.retain_grads(L):
        L.backward()
    assert H.retains_grad and not O.retains_grad


def test_freed_graph_is_drawn_as_far_as_it_remains_with_a_warning():
    *_, L = seed_network()
    L.backward()
    with pytest.warns(RuntimeWarning, match=r"freed by backward\(\).*retain_grads"):
        drawing = an.draw(L)
    dot = parse(drawing)
    assert list(dot.ops().values()) == ["mul"]
    assert "inputs freed by backward" in drawing.source
    assert "The graph was freed by backward()" in drawing.source


def test_retain_grads_needs_a_tensor():
    with pytest.raises(TypeError, match="retain_grads: expected an autonet Tensor"):
        an.retain_grads(np.ones(3))
