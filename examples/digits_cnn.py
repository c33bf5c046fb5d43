"""A small convolutional network on the 8x8 digits, beside an MLP on the same split.

The CNN: Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(16*4*4, 10),
logits for the softmax cross-entropy. The MLP: 64-64-10 with ReLU. Both are trained by
an.nn.fit with Adam (lr 1e-2), mini-batches of 32, seed 0, on the same 1,437 images, and tested
on the other 360 (a random 20% held out once, with a fixed seed): the printed table gives each
model's parameters, epochs, training time and test accuracy.

Then the trained CNN and its optimizer are saved with an.save (one checkpoint: the model's and
Adam's state dicts and the epoch), loaded into a fresh model and optimizer (built from other
random weights): the two models give identical predictions, and one more epoch of each gives
identical weights (Adam's moments and step count came back too). Last, the CNN's graph (one
forward and backward pass on 4 images, each layer in a box) is written as DOT, and as SVG when a
Graphviz renderer is installed (the system `dot`, or graphviz-pure, installed with autonet).

Data: autonet.datasets.load_digits (shipped with autonet, no download), pixels scaled to [0, 1].

Run: python examples/digits_cnn.py [--quick] [--out FOLDER]   (--quick trains each model for 3
epochs instead of 20, to check that everything runs, not to measure; FOLDER default
autonet-examples/)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from common import arguments

import autonet as an
from autonet import nn, optim
from autonet.datasets import load_digits
from autonet.nn import functional as F
from autonet.viz import find_renderer

SEED, N_TEST, EPOCHS, QUICK_EPOCHS, LR = 0, 360, 20, 3, 1e-2


class DigitsCNN(nn.Module):
    """Conv2d(1, channels, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(., 10).

    Input (N, 1, 8, 8) images; the convolution keeps 8x8, the pooling halves it to 4x4, so the
    classifier sees channels * 16 features. Output: (N, 10) logits.
    """

    def __init__(self, channels: int = 16, rng: Any = None) -> None:
        generator = np.random.default_rng(rng)
        self.conv = nn.Conv2d(1, channels, 3, padding=1, rng=generator)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels * 4 * 4, 10, rng=generator)

    def forward(self, x: Any) -> an.Tensor:
        return self.fc(self.flatten(self.pool(self.relu(self.conv(x)))))


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.data.size for parameter in model.parameters())


def predict(model: nn.Module, X: np.ndarray) -> np.ndarray:
    """The model's logits for X, in evaluation mode and without recording a graph."""
    model.eval()
    with an.no_grad():
        return model(X).data


def timed_fit(
    model: nn.Module, optimizer: optim.Optimizer, X: np.ndarray, y: np.ndarray, epochs: int
) -> float:
    """Train model on (X, y) in mini-batches of 32 (shuffled by SEED); return the seconds taken."""
    start = time.perf_counter()
    nn.fit(
        model,
        X,
        y,
        loss=F.cross_entropy,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=32,
        seed=SEED,
    )
    return time.perf_counter() - start


def main() -> None:
    args = arguments(__doc__, "autonet-examples")
    images, y = load_digits(return_images=True)
    X = images[:, None] / 16.0  # (N, 1, 8, 8): one channel, pixels in [0, 1]
    order = np.random.default_rng(SEED).permutation(len(X))
    test, train = order[:N_TEST], order[N_TEST:]
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    print(f"digits: {len(train)} training and {len(test)} test images, {epochs} epochs each")

    cnn = DigitsCNN(rng=SEED)
    cnn_optimizer = optim.Adam(cnn.parameters(), lr=LR)
    mlp = nn.MLP([64, 64, 10], activation="relu", init="he", last_activation=False, rng=SEED)
    lines = [
        "| model | parameters | epochs | train time (s) | test accuracy |",
        "|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for name, model, optimizer, inputs in [
        ("CNN: conv 3x3 x16, max pool 2, linear", cnn, cnn_optimizer, X),
        ("MLP: 64-64-10, ReLU", mlp, optim.Adam(mlp.parameters(), lr=LR), X.reshape(len(X), 64)),
    ]:
        seconds = timed_fit(model, optimizer, inputs[train], y[train], epochs)
        accuracy = (predict(model, inputs[test]).argmax(axis=1) == y[test]).mean()
        line = (
            f"| {name} | {count_parameters(model):,} | {epochs} | {seconds:.1f} | {accuracy:.3f} |"
        )
        print(line, flush=True)
        lines.append(line)
    (args.out / "digits_cnn.md").write_text("\n".join(lines) + "\n")

    checkpoint = args.out / "digits_cnn.npz"
    state = {"model": cnn.state_dict(), "optimizer": cnn_optimizer.state_dict(), "epoch": epochs}
    an.save(state, checkpoint)
    saved = an.load(checkpoint)
    resumed = DigitsCNN(rng=SEED + 1)  # other random weights, all replaced by the checkpoint's
    resumed_optimizer = optim.Adam(resumed.parameters(), lr=LR)
    resumed.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["optimizer"])  # Adam's moments and step count
    same_logits = np.array_equal(predict(resumed, X[test]), predict(cnn, X[test]))
    print(
        f"checkpoint {checkpoint} (model, optimizer, epoch {saved['epoch']}) loaded into a fresh "
        f"model: identical logits on the {len(test)} test images: {same_logits}"
    )
    for model, optimizer in [(cnn, cnn_optimizer), (resumed, resumed_optimizer)]:
        timed_fit(model, optimizer, X[train], y[train], epochs=1)
    same_weights = all(
        np.array_equal(a, b)
        for a, b in zip(cnn.state_dict().values(), resumed.state_dict().values(), strict=True)
    )
    print(
        f"one more epoch of the trained and of the resumed model: identical weights: {same_weights}"
    )

    batch = an.tensor(X[test[:4]])
    loss = F.cross_entropy(cnn(batch), y[test[:4]])
    with an.retain_grads(loss):  # keep the graph, and every gradient, for the drawing
        loss.backward()
    drawing = an.draw(
        loss,
        names={"images": batch, "loss": loss},
        show_values=False,
        title="DigitsCNN: one forward and backward pass on 4 images",
    )
    written = [drawing.save(args.out / "digits_cnn_graph.dot")]
    if find_renderer() is None:
        print("note: no Graphviz renderer (dot or graphviz-pure) found, so no SVG; DOT only")
    else:
        written.append(drawing.save(args.out / "digits_cnn_graph.svg"))
    print("wrote " + ", ".join(str(path) for path in [args.out / "digits_cnn.md", *written]))


if __name__ == "__main__":
    main()
