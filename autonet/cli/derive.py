"""`autonet derive`: the tutorial's formulas, and those of deeper networks, derived from code.

    autonet derive                      the tutorial's 3-4-1 network: grad1 and grad0, compared
                                        with the formulas the tutorial derives by hand
    autonet derive --layers 3 --bias    a deeper sigmoid network with biases: the recurring rule
    autonet derive --loss bce           the network ending in logits Z, with binary cross-entropy
    autonet derive --loss cross-entropy ... or with softmax cross-entropy over 2 classes

The networks (on the tutorial's XNOR data, m = 4 examples):

    tutorial   H = sigmoid(S . syn0),  O = sigmoid(H . syn1),  L = 1/2 sum (O - Y)^2
    --layers   H_l = sigmoid(H_{l-1} . W_l (+ b_l)),  l = 1..N-1,  H_0 = S, and the output layer
               half-sse        H_N = sigmoid(H_{N-1} . W_N (+ b_N)),  L = 1/2 sum (H_N - Y)^2
               bce             Z = H_{N-1} . W_N (+ b_N),  L = mean(softplus(Z) - Y * Z)
               cross-entropy   Z = H_{N-1} . W_N (+ b_N) (2 columns),  L = mean(-log_softmax(Z)[T]),
                               T the class of each example (Y as indices 0 and 1)

`--loss bce` and `--loss cross-entropy` without `--layers` take the tutorial's depth, 2 layers of
width 4. Every formula printed is derived by `autonet.derive` from the recorded graph and checked
against autograd's gradient and against finite differences (the printed `verified` line); the
statements about them (equal to the tutorial's, the recurring rule) are checked by comparing the
derived text, so the command fails (exit status 1) if one does not hold.
"""

from __future__ import annotations

import argparse

import numpy as np

import autonet as an
import autonet.nn.functional as F
from autonet.cli import positive_int
from autonet.derive import Derivation, derive
from autonet.seed import XNOR_INPUTS, XNOR_TARGETS, seed_gradients, seed_weights
from autonet.tensor import Tensor

# The tutorial's two formulas. Its last equations write grad0 as S^T . ((O - Y) * O * (1 - O) .
# syn1^T * H * (1 - H)), reading * and . left to right; with . binding tighter than * (as derive
# prints, and as the tutorial's own step (O - Y) * O * (1 - O) . syn1^T means), the parentheses
# around (O - Y) * O * (1 - O) are needed, as its formula for grad1 has them.
TUTORIAL_FORMULAS = {
    "syn1": "H^T·((O−Y)*O*(1−O))",
    "syn0": "S^T·(((O−Y)*O*(1−O))·syn1^T * H*(1−H))",
}

LOSSES = ("half-sse", "bce", "cross-entropy")
# The gradient of each loss with respect to the output layer's pre-activation, as a textbook
# writes it, for the mean over m examples ("{m}" is " / m", or "" for one example, where the mean
# divides by nothing), and the line that explains it.
OUTPUT_DELTAS = {
    "bce": ("(σ(Z) − Y){m}", "binary cross-entropy on logits: softplus' = σ"),
    "cross-entropy": (
        "(softmax(Z) − onehot(T)){m}",
        "cross-entropy on logits: d/dZ of −log_softmax(Z)[T] = softmax(Z) − onehot(T)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layers",
        type=positive_int,
        help="derive a sigmoid network of this many layers (weight matrices) instead of the "
        "tutorial's",
    )
    parser.add_argument("--bias", action="store_true", help="give every layer a bias b_l")
    parser.add_argument(
        "--width", type=positive_int, help="hidden units per layer (default 4; needs --layers)"
    )
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default="half-sse",
        help="the loss: the tutorial's half sum of squares (default), or binary cross-entropy "
        "or cross-entropy on the logits Z of the last layer (the tutorial's depth unless "
        "--layers is given)",
    )
    parser.add_argument("--latex", action="store_true", help="also print the formulas in LaTeX")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the weights")


def seed_network(
    S: np.ndarray, Y: np.ndarray, w0: np.ndarray, w1: np.ndarray
) -> tuple[Tensor, Tensor, Tensor]:
    """The tutorial's network with the tutorial's names: (L, syn0, syn1)."""
    S_t, Y_t = an.tensor(S, name="S"), an.tensor(Y, name="Y")
    syn0 = an.tensor(w0, requires_grad=True, name="syn0")
    syn1 = an.tensor(w1, requires_grad=True, name="syn1")
    H = an.sigmoid(S_t @ syn0)
    H.name = "H"
    O = an.sigmoid(H @ syn1)
    O.name = "O"
    return 0.5 * ((O - Y_t) ** 2).sum(), syn0, syn1


def layered_network(
    S: np.ndarray,
    Y: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray] | None,
    loss: str = "half-sse",
) -> tuple[Tensor, list[Tensor]]:
    """(L, [W_1, b_1, W_2, ...]) of H_l = sigmoid(H_{l-1} . W_l + b_l), H_0 = S, without biases
    if `biases` is None, and the output layer by `loss`: half-sse, L = 1/2 sum (H_N - Y)^2;
    bce, L = binary_cross_entropy_with_logits(Z, Y); cross-entropy, L = cross_entropy(Z, Y)
    with Y the class indices (m,); Z = H_{N-1} . W_N + b_N (both losses the mean over the batch)."""
    H = an.tensor(S, name="S")
    parameters = []
    for layer, w in enumerate(weights, start=1):
        W = an.tensor(w, requires_grad=True, name=f"W_{layer}")
        Z = H @ W
        parameters.append(W)
        if biases is not None:
            b = an.tensor(biases[layer - 1], requires_grad=True, name=f"b_{layer}")
            Z = Z + b
            parameters.append(b)
        if layer == len(weights) and loss != "half-sse":
            Z.name = "Z"
            if loss == "bce":
                return F.binary_cross_entropy_with_logits(Z, an.tensor(Y, name="Y")), parameters
            return F.cross_entropy(Z, Y), parameters
        H = an.sigmoid(Z)
        H.name = f"H_{layer}"
    return 0.5 * ((H - an.tensor(Y, name="Y")) ** 2).sum(), parameters


def same_formula(derived: str, written: str) -> bool:
    """Equal up to spacing and the minus sign's glyph."""
    return derived.replace("−", "-").replace(" ", "") == written.replace("−", "-").replace(" ", "")


def run_tutorial(seed: int, latex: bool = False) -> int:
    S, Y = XNOR_INPUTS, XNOR_TARGETS
    w0, w1 = seed_weights(seed=seed)
    L, syn0, syn1 = seed_network(S, Y, w0, w1)
    derivation = derive(L, wrt=[syn1, syn0])
    print("The tutorial's network, its backward pass derived from the recorded graph:\n")
    print(derivation)
    if latex:
        print_latex(derivation)
    print("\nWith the delta written out, as the tutorial writes them:")
    ok = derivation.verified
    for tensor, name in ((syn1, "grad1"), (syn0, "grad0")):
        derived = derivation.text(tensor, expand=True)
        written = TUTORIAL_FORMULAS[str(tensor.name)]
        same = same_formula(derived, written)
        ok = ok and same
        print(f"  {name} = {derivation[tensor].label} = {derived}")
        print(f"    the tutorial: {written}    {'the same' if same else 'DIFFERENT'}")
    hand = seed_gradients(S, Y, w0, w1)
    error = max(
        float(np.max(np.abs(derivation[t].expr.value - h)))
        for t, h in zip((syn0, syn1), hand, strict=True)
    )
    ok = ok and error < 1e-12  # the same float64 operations on values of order 1: rounding only
    print(f"  on the XNOR data they equal the tutorial's code (seed_gradients) to {error:.1e}")
    return 0 if ok else 1


def print_latex(derivation: Derivation) -> None:
    print(f"\nIn LaTeX:\n{derivation.latex()}\nwhere {derivation.where(latex=True)}")


def recurring_rule(
    derivation: Derivation, layers: int, bias: bool, loss: str = "half-sse"
) -> list[tuple[str, str, bool]]:
    """The rule, written for every layer l and compared with the derived text: (rule, derived,
    holds) for each formula."""
    deltas = {name for name, _ in derivation.deltas}
    sizes = [name for name, _ in derivation.given if name in ("m", "n_1")]
    over = "" if not sizes else f" / {sizes[0]}" if len(sizes) == 1 else " / (m * n_1)"

    def name(l: int) -> str:
        return "δ_Z" if l == layers and loss != "half-sse" else f"δ_{l}"

    def delta(l: int) -> str:
        if l == layers and loss != "half-sse":
            text = OUTPUT_DELTAS[loss][0].format(m=over)
            return text[1:-1] if not over else text  # σ(Z) − Y, without the parentheses
        if l == layers:
            return f"(H_{l} − Y) * H_{l} * (1 − H_{l})"
        return f"{ref(l + 1)} · W_{l + 1}^T * H_{l} * (1 − H_{l})"

    def ref(l: int) -> str:  # a delta used once is written out where it is used
        return name(l) if name(l) in deltas else f"({delta(l)})"

    checks = []
    for l in range(layers, 0, -1):
        below = "S" if l == 1 else f"H_{l - 1}"
        if name(l) in deltas:
            derived = derivation.text(name(l))
            checks.append(
                (f"{name(l)} = {delta(l)}", f"{name(l)} = {derived}", derived == delta(l))
            )
        rule = f"{below}^T · {ref(l)}"
        derived = derivation.text(f"W_{l}")
        checks.append((f"∂L/∂W_{l} = {rule}", f"∂L/∂W_{l} = {derived}", derived == rule))
        if bias:
            rule, derived = f"sum({ref(l)}, axis=0)", derivation.text(f"b_{l}")
            checks.append((f"∂L/∂b_{l} = {rule}", f"∂L/∂b_{l} = {derived}", derived == rule))
    return checks


def run_layers(layers: int, bias: bool, width: int, seed: int, loss: str, latex: bool) -> int:
    rng = np.random.default_rng(seed)
    targets = XNOR_TARGETS if loss != "cross-entropy" else XNOR_TARGETS[:, 0].astype(int)
    outputs = 2 if loss == "cross-entropy" else XNOR_TARGETS.shape[1]
    sizes = [XNOR_INPUTS.shape[1]] + [width] * (layers - 1) + [outputs]
    weights = [rng.uniform(-1, 1, (m, n)) for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [rng.uniform(-1, 1, (n,)) for n in sizes[1:]] if bias else None
    L, parameters = layered_network(XNOR_INPUTS, targets, weights, biases, loss)
    derivation = derive(L, wrt=parameters)
    with_bias = " with biases" if bias else ""
    print(
        f"A {layers}-layer sigmoid network{with_bias}, loss {loss}, its backward pass derived "
        "from the recorded graph:\n"
    )
    print(derivation)
    if latex:
        print_latex(derivation)
    checks = recurring_rule(derivation, layers, bias, loss)
    holds = all(ok for _, _, ok in checks)
    verdict = "matches every formula above" if holds else "DOES NOT match the formulas above"
    print(f"\nThe recurring rule, N = {layers}, H_0 = S ({verdict}):")
    if loss == "half-sse":
        print("  δ_N = (H_N − Y) * H_N * (1 − H_N)              the output layer")
    else:
        text, why = OUTPUT_DELTAS[loss]
        print(f"  δ_N = δ_Z = {text.format(m=' / m')}    the output layer Z: {why}")
    print(
        "  δ_l = δ_{l+1} · W_{l+1}^T * H_l * (1 − H_l)    l < N: back through W_{l+1}, "
        "times σ' = H_l * (1 − H_l)"
    )
    print("  ∂L/∂W_l = H_{l−1}^T · δ_l")
    if bias:
        print(
            "  ∂L/∂b_l = sum(δ_l, axis=0)                     the column sum of δ_l "
            "(b_l is broadcast over the batch axis)"
        )
    for rule, derived, ok in checks:
        if not ok:
            print(f"  expected {rule}\n  derived  {derived}")
    return 0 if holds and derivation.verified else 1


def run(args: argparse.Namespace) -> int:
    if args.layers is None:
        refused = [
            ("--bias", args.bias, "has no biases"),
            ("--width", args.width is not None, "has 4 hidden units"),
        ]
        for option, given, why in refused:
            if given:
                raise ValueError(f"{option} needs --layers N (the tutorial's network {why})")
        if args.loss == "half-sse":
            return run_tutorial(args.seed, args.latex)
    layers = 2 if args.layers is None else args.layers  # the tutorial's depth
    width = 4 if args.width is None else args.width
    return run_layers(layers, args.bias, width, args.seed, args.loss, args.latex)
