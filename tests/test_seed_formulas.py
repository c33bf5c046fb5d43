"""The tutorial's hand-derived gradients agree with autograd (the seed's formulas as an oracle)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet.seed import seed_gradients


@settings(max_examples=50, deadline=None)
@given(m=st.integers(1, 6), n=st.integers(1, 5), p=st.integers(1, 5), k=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_autograd_matches_seed_formulas(m, n, p, k, seed):
    rng = np.random.default_rng(seed)
    S, Y = rng.normal(size=(m, n)), rng.random((m, k))
    w0, w1 = rng.uniform(-1, 1, (n, p)), rng.uniform(-1, 1, (p, k))
    syn0, syn1 = an.tensor(w0, requires_grad=True), an.tensor(w1, requires_grad=True)
    O = an.sigmoid(an.sigmoid(an.tensor(S) @ syn0) @ syn1)
    (0.5 * ((O - Y) ** 2).sum()).backward()
    grad0, grad1 = seed_gradients(S, Y, w0, w1)
    np.testing.assert_allclose(syn0.grad.data, grad0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(syn1.grad.data, grad1, rtol=0, atol=1e-10)
