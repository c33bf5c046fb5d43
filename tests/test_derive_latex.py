"""derive()'s LaTeX: every formula parses in matplotlib's mathtext (when installed) and is well
formed; the Jupyter representations carry it."""

from __future__ import annotations

import re

import numpy as np
import pytest

import autonet as an
from autonet.cli.derive import layered_network, seed_network
from tests.test_derive_primitives import CASES, derive_case

RNG = np.random.default_rng(0)


def derivations():
    S, Y = RNG.normal(size=(4, 3)), RNG.random((4, 1))
    L, syn0, syn1 = seed_network(S, Y, RNG.uniform(-1, 1, (3, 4)), RNG.uniform(-1, 1, (4, 1)))
    yield "seed", an.derive(L, wrt=[syn1, syn0])
    weights = [RNG.uniform(-1, 1, s) for s in ((3, 4), (4, 4), (4, 1))]
    L, parameters = layered_network(S, Y, weights, [RNG.uniform(-1, 1, n) for n in (4, 4, 1)])
    yield "layers", an.derive(L, wrt=parameters)
    for name, (inputs, function, _) in CASES.items():
        yield name, derive_case(inputs, function)[0]


ALL = list(derivations())


def equations(derivation):
    """Every line of the LaTeX block, as `left = right`, and the forward definitions."""
    block = derivation.latex()
    assert block.startswith("\\begin{aligned}\n") and block.endswith("\n\\end{aligned}")
    rows = (
        block.removeprefix("\\begin{aligned}\n").removesuffix("\n\\end{aligned}").split(" \\\\\n")
    )
    assert len(rows) == len(derivation.deltas) + len(derivation.formulas)
    return [row.replace(" &= ", " = ", 1) for row in rows] + [
        f"{name} = {expr.latex()}" for name, expr in derivation.forward
    ]


@pytest.mark.parametrize("name, derivation", ALL, ids=[name for name, _ in ALL])
def test_latex_is_well_formed(name, derivation):
    for line in equations(derivation):
        assert line.isascii(), line  # Greek letters and operators as commands (\delta, \cdot)
        depth = 0
        for char in re.sub(r"\\[{}]", "", line):  # escaped braces are text
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0, line
        assert depth == 0, line
        assert line.count("\\left") == line.count("\\right"), line


@pytest.mark.parametrize("name, derivation", ALL, ids=[name for name, _ in ALL])
def test_latex_renders_in_mathtext(name, derivation):
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    for line in equations(derivation):
        parser.parse(f"${line}$")  # raises ValueError on LaTeX that mathtext cannot typeset


def test_seed_latex_reads_as_the_tutorials():
    derivation = dict(ALL)["seed"]
    assert derivation.text("syn0", latex=True, expand=True) == (
        r"S^{T} \cdot \left(\left(\left(O - Y\right) * O * \left(1 - O\right)\right) \cdot "
        r"\mathit{syn1}^{T} * H * \left(1 - H\right)\right)"
    )
    assert equations(derivation)[0] == r"\delta_{O} = \left(O - Y\right) * O * \left(1 - O\right)"


def test_jupyter_representations():
    derivation = dict(ALL)["layers"]
    latex = derivation._repr_latex_()
    assert latex == f"$${derivation.latex()}$$"
    markdown = derivation._repr_markdown_()
    assert derivation.latex() in markdown and derivation.check() in markdown
    assert r"\sum_{\mathrm{axis}\,0}\left(\delta_{1}\right)" in latex
    expr = derivation["W_1"].expr
    assert expr._repr_latex_() == f"$${expr.latex()}$$"
