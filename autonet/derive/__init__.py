"""derive(): the backward pass written out as matrix formulas, the way the tutorial writes them.

    print(an.derive(L, wrt=[syn1, syn0]))
    # δ_O = (O − Y) * O * (1 − O)
    # ∂L/∂syn1 = H^T · δ_O
    # ∂L/∂syn0 = S^T · (δ_O · syn1^T * H * (1 − H))

The table's own VJP rules run on symbols (expr.py, with the identities that make the losses read
as a textbook writes them, and softmax and onehot from forms.py), printed as text or LaTeX
(render.py); derivation.py walks the graph, naming.py names, check.py checks. How and why:
docs/derive.md.
"""

from autonet.derive.derivation import Derivation, Formula, derive
from autonet.derive.expr import Expr

__all__ = ["Derivation", "Expr", "Formula", "derive"]
