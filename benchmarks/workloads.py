"""The benchmarked workloads, written once per engine: the same math in each engine's own idiom.

Each `make_*` function takes the initial NumPy arrays and returns a `step()` that does the whole
workload once (forward, backward and, for training steps, the SGD update) and returns the
gradients it computed as NumPy arrays, so that run.py can check them against hand formulas before
timing. Engines:

    hand      hand-written NumPy: for the tutorial's network, the tutorial's own step (its
              sigmoid 1 / (1 + exp(-x)), its formulas); elsewhere the formulas written by hand
    stable    the tutorial's step with autonet's sigmoid (stable_sigmoid: scipy's expit, which
              never overflows), as autonet.seed writes the reference formulas
    eager     autonet: operators record the graph, loss.backward() walks it
    replay    autonet.replay: the step recorded once, replayed as generated NumPy code
    torch     PyTorch CPU eager (when installed)
    autograd  HIPS autograd (when installed)

PyTorch uses torch.sigmoid, and HIPS autograd (which has no sigmoid) (1 + tanh(x / 2)) / 2. The
tutorial's sigmoid overflows exp(-x) to inf for x < -709 (float64) or x < -88 (float32, at the
large size), where 1 / (1 + inf) = 0 is still the right value; run.py silences that warning.

The digits workloads (`make_digits_epoch`) train a whole epoch instead: an MLP or a small CNN on
the 8x8 digits, with autonet's fit (eagerly or replayed) or PyTorch's usual loop.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

import autonet as an
from autonet.primitives import stable_sigmoid

Step = Callable[[], tuple[np.ndarray, ...]]
# The SGD step size. Its value matters for timing only through the values it leads to: the
# tutorial's loss is a sum over the m samples, so its steps use LR / m; with LR itself, the large
# network saturates within a step and float32 gradients become subnormal numbers, on which the
# processor's arithmetic (and so every engine) is many times slower.
LR = 0.1


def available_engines() -> list[str]:
    """The engines that can run here: autonet's always, torch and autograd when installed."""
    # find_spec looks for the package without importing it (importing torch takes seconds)
    return ["hand", "stable", "eager", "replay"] + [
        module for module in ("torch", "autograd") if importlib.util.find_spec(module) is not None
    ]


# ---------------------------------------------------------------------------------------------
# The tutorial's network: H = sigmoid(S syn0), O = sigmoid(H syn1), L = 1/2 sum (O - Y)^2.


def tutorial_sigmoid(x: np.ndarray) -> np.ndarray:
    """The tutorial's sigmoid, as it writes it: 1 / (1 + e^(-x))."""
    return 1 / (1 + np.exp(-x))


def tutorial_hand(
    S: np.ndarray,
    Y: np.ndarray,
    w0: np.ndarray,
    w1: np.ndarray,
    sigmoid: Callable[[np.ndarray], np.ndarray] = tutorial_sigmoid,
) -> Step:
    """The tutorial's step: its forward pass, its hand-derived gradients (autonet.seed's
    docstring), its update syn' = syn - alpha grad in place, and the loss L it reports."""
    syn0, syn1 = w0.copy(), w1.copy()
    lr = LR / len(S)

    def step() -> tuple[np.ndarray, ...]:
        nonlocal syn0, syn1  # updated in place below, as the tutorial does
        H = sigmoid(S @ syn0)
        O = sigmoid(H @ syn1)
        loss = 0.5 * np.sum((O - Y) ** 2)
        delta_O = (O - Y) * O * (1 - O)
        grad1 = H.T @ delta_O
        grad0 = S.T @ ((delta_O @ syn1.T) * H * (1 - H))
        syn0 -= lr * grad0
        syn1 -= lr * grad1
        return loss, grad0, grad1

    return step


def tutorial_autonet(
    S: np.ndarray, Y: np.ndarray, w0: np.ndarray, w1: np.ndarray, replayed: bool
) -> Step:
    S_, Y_ = an.tensor(S), an.tensor(Y)
    syn0, syn1 = an.tensor(w0, requires_grad=True), an.tensor(w1, requires_grad=True)
    lr = LR / len(S)

    def loss_fn(S: an.Tensor, Y: an.Tensor) -> an.Tensor:
        O = an.sigmoid(an.sigmoid(S @ syn0) @ syn1)
        return 0.5 * ((O - Y) ** 2).sum()

    replay = an.replay(loss_fn)

    def step() -> tuple[np.ndarray, ...]:
        syn0.grad = syn1.grad = None
        if replayed:
            loss = replay(S_, Y_)
        else:
            loss = loss_fn(S_, Y_)
            loss.backward()
        grad0, grad1 = syn0.grad.data, syn1.grad.data
        syn0.data -= lr * grad0
        syn1.data -= lr * grad1
        return loss.data, grad0, grad1

    return step


def tutorial_torch(S: np.ndarray, Y: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> Step:
    import torch

    S_, Y_ = torch.from_numpy(S), torch.from_numpy(Y)
    syn0 = torch.tensor(w0, requires_grad=True)
    syn1 = torch.tensor(w1, requires_grad=True)
    lr = LR / len(S)

    def step() -> tuple[np.ndarray, ...]:
        nonlocal syn0, syn1  # updated in place below
        O = torch.sigmoid(torch.sigmoid(S_ @ syn0) @ syn1)
        loss = 0.5 * ((O - Y_) ** 2).sum()
        loss.backward()
        grad0, grad1 = syn0.grad, syn1.grad
        with torch.no_grad():
            syn0 -= lr * grad0
            syn1 -= lr * grad1
        syn0.grad = syn1.grad = None
        return loss.detach().numpy(), grad0.numpy(), grad1.numpy()

    return step


def tutorial_autograd(S: np.ndarray, Y: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> Step:
    import autograd
    import autograd.numpy as anp

    def sigmoid(x: Any) -> Any:
        return 0.5 * (anp.tanh(0.5 * x) + 1)  # = 1 / (1 + exp(-x)), without overflow

    def loss_fn(weights: tuple[Any, Any]) -> Any:
        syn0, syn1 = weights
        O = sigmoid(sigmoid(anp.dot(S, syn0)) @ syn1)
        return 0.5 * anp.sum((O - Y) ** 2)

    loss_and_grads = autograd.value_and_grad(loss_fn)
    weights = [w0.copy(), w1.copy()]
    lr = LR / len(S)

    def step() -> tuple[np.ndarray, ...]:
        loss, (grad0, grad1) = loss_and_grads(tuple(weights))
        weights[0] = weights[0] - lr * grad0
        weights[1] = weights[1] - lr * grad1
        return np.asarray(loss), grad0, grad1

    return step


def make_tutorial(
    engine: str, S: np.ndarray, Y: np.ndarray, w0: np.ndarray, w1: np.ndarray
) -> Step:
    if engine in ("eager", "replay"):
        return tutorial_autonet(S, Y, w0, w1, replayed=engine == "replay")
    if engine == "stable":
        return tutorial_hand(S, Y, w0, w1, sigmoid=stable_sigmoid)
    return {"hand": tutorial_hand, "torch": tutorial_torch, "autograd": tutorial_autograd}[engine](
        S, Y, w0, w1
    )


# ---------------------------------------------------------------------------------------------
# A deep chain: y <- y * d and y <- tanh(y) in turn, `length` element-wise ops on a small vector,
# then L = sum(y) and dL/dx. With d close to 1 the values shrink slowly towards 0, so the
# gradient (a product of d's and of 1 - y^2) stays representable even at 100,000 ops; it depends
# on x, so every engine really runs the backward pass.


def chain_hand(x: np.ndarray, d: np.ndarray, length: int) -> Step:
    def step() -> tuple[np.ndarray, ...]:
        ys = [x]
        for i in range(length):
            ys.append(ys[-1] * d if i % 2 == 0 else np.tanh(ys[-1]))
        loss = np.sum(ys[-1])
        g = np.ones_like(x)
        for i in reversed(range(length)):
            g = g * d if i % 2 == 0 else g * (1 - ys[i + 1] ** 2)  # tanh' = 1 - tanh^2
        return loss, g

    return step


def chain_autonet(x: np.ndarray, d: np.ndarray, length: int, replayed: bool) -> Step:
    def loss_fn(x_: an.Tensor) -> an.Tensor:
        y = x_
        for i in range(length):
            y = y * d if i % 2 == 0 else y.tanh()
        return y.sum()

    replay = an.replay(loss_fn)

    def step() -> tuple[np.ndarray, ...]:
        x_ = an.tensor(x, requires_grad=True)
        if replayed:
            loss = replay(x_)
        else:
            loss = loss_fn(x_)
            loss.backward()
        return loss.data, x_.grad.data

    return step


def chain_torch(x: np.ndarray, d: np.ndarray, length: int) -> Step:
    import torch

    d_ = torch.from_numpy(d)

    def step() -> tuple[np.ndarray, ...]:
        x_ = torch.tensor(x, requires_grad=True)
        y = x_
        for i in range(length):
            y = y * d_ if i % 2 == 0 else torch.tanh(y)
        loss = y.sum()
        loss.backward()
        return loss.detach().numpy(), x_.grad.numpy()

    return step


def chain_autograd(x: np.ndarray, d: np.ndarray, length: int) -> Step:
    import autograd
    import autograd.numpy as anp

    def loss_fn(x_: Any) -> Any:
        y = x_
        for i in range(length):
            y = y * d if i % 2 == 0 else anp.tanh(y)
        return anp.sum(y)

    loss_and_grad = autograd.value_and_grad(loss_fn)

    def step() -> tuple[np.ndarray, ...]:
        loss, g = loss_and_grad(x)
        return np.asarray(loss), g

    return step


def make_chain(engine: str, x: np.ndarray, d: np.ndarray, length: int) -> Step:
    if engine in ("eager", "replay"):
        return chain_autonet(x, d, length, replayed=engine == "replay")
    return {"hand": chain_hand, "torch": chain_torch, "autograd": chain_autograd}[engine](
        x, d, length
    )


# ---------------------------------------------------------------------------------------------
# A wide MLP from primitives: h_0 = X, h_i = relu(h_{i-1} W_i + b_i) for the hidden layers, a
# linear last layer, L = mean((h - T)^2); one SGD step on every W_i and b_i.


def mlp_hand(X: np.ndarray, T: np.ndarray, weights: list[np.ndarray]) -> Step:
    params = [w.copy() for w in weights]  # W_1, b_1, W_2, b_2, ...

    def step() -> tuple[np.ndarray, ...]:
        layers = len(params) // 2
        activations, pre = [X], []
        for i in range(layers):
            z = activations[-1] @ params[2 * i] + params[2 * i + 1]
            pre.append(z)
            activations.append(np.maximum(z, 0) if i < layers - 1 else z)
        diff = activations[-1] - T
        loss = np.mean(diff**2)
        g = 2 * diff / diff.size  # dL/dh for L = mean((h - T)^2)
        grads: list[np.ndarray] = [np.empty(0)] * len(params)
        for i in reversed(range(layers)):
            if i < layers - 1:
                g = g * (pre[i] > 0)  # relu'(z) = [z > 0]
            grads[2 * i] = activations[i].T @ g
            grads[2 * i + 1] = g.sum(axis=0)
            if i > 0:
                g = g @ params[2 * i].T
        for p, grad in zip(params, grads, strict=True):
            p -= LR * grad
        return (loss, *grads)

    return step


def mlp_autonet(X: np.ndarray, T: np.ndarray, weights: list[np.ndarray], replayed: bool) -> Step:
    params = [an.tensor(w, requires_grad=True) for w in weights]
    X_, T_ = an.tensor(X), an.tensor(T)

    def loss_fn(X: an.Tensor, T: an.Tensor) -> an.Tensor:
        layers = len(params) // 2
        h = X
        for i in range(layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < layers - 1:
                h = an.relu(h)
        return ((h - T) ** 2).mean()

    replay = an.replay(loss_fn)

    def step() -> tuple[np.ndarray, ...]:
        for p in params:
            p.grad = None
        if replayed:
            loss = replay(X_, T_)
        else:
            loss = loss_fn(X_, T_)
            loss.backward()
        grads = [p.grad.data for p in params]
        for p, grad in zip(params, grads, strict=True):
            p.data -= LR * grad
        return (loss.data, *grads)

    return step


def mlp_torch(X: np.ndarray, T: np.ndarray, weights: list[np.ndarray]) -> Step:
    import torch

    params = [torch.tensor(w, requires_grad=True) for w in weights]
    X_, T_ = torch.from_numpy(X), torch.from_numpy(T)

    def step() -> tuple[np.ndarray, ...]:
        layers = len(params) // 2
        h = X_
        for i in range(layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < layers - 1:
                h = torch.relu(h)
        loss = ((h - T_) ** 2).mean()
        loss.backward()
        grads = [p.grad for p in params]
        with torch.no_grad():
            for p, grad in zip(params, grads, strict=True):
                p -= LR * grad
                p.grad = None
        return (loss.detach().numpy(), *[g.numpy() for g in grads])

    return step


def mlp_autograd(X: np.ndarray, T: np.ndarray, weights: list[np.ndarray]) -> Step:
    import autograd
    import autograd.numpy as anp

    def loss_fn(params: tuple[Any, ...]) -> Any:
        layers = len(params) // 2
        h = X
        for i in range(layers):
            h = anp.dot(h, params[2 * i]) + params[2 * i + 1]
            if i < layers - 1:
                h = anp.maximum(h, 0)
        return anp.mean((h - T) ** 2)

    loss_and_grads = autograd.value_and_grad(loss_fn)
    params = [w.copy() for w in weights]

    def step() -> tuple[np.ndarray, ...]:
        loss, grads = loss_and_grads(tuple(params))
        for i, grad in enumerate(grads):
            params[i] = params[i] - LR * grad
        return (np.asarray(loss), *grads)

    return step


def make_mlp(engine: str, X: np.ndarray, T: np.ndarray, weights: list[np.ndarray]) -> Step:
    if engine in ("eager", "replay"):
        return mlp_autonet(X, T, weights, replayed=engine == "replay")
    return {"hand": mlp_hand, "torch": mlp_torch, "autograd": mlp_autograd}[engine](X, T, weights)


# ---------------------------------------------------------------------------------------------
# Epochs on the 8x8 digits: an MLP (64-128-10, ReLU) and a small CNN (Conv2d 3x3 to 8 channels,
# ReLU, MaxPool2d 2, Linear 128-10), cross-entropy against one-hot targets, SGD on batches
# of DIGITS_BATCH in the order fit(seed=0) shuffles them. One-hot float targets (rather than class
# indices, which a recording fixes) let fit replay the steps.

DIGITS_BATCH = 32
DIGITS_LR = 0.1


def digits_data() -> tuple[np.ndarray, np.ndarray, str]:
    """(images (N, 1, 8, 8) in [0, 1], one-hot targets (N, 10), where they come from): autonet's
    copy of the digits, else scikit-learn's, else random images of the same shape."""
    try:
        from autonet.datasets import load_digits

        images, labels = load_digits(return_images=True)
        source = "the 8x8 digits (autonet.datasets.load_digits)"
    except ImportError:
        try:
            from sklearn.datasets import load_digits as sklearn_digits

            digits = sklearn_digits()
            images, labels = digits.images, digits.target
            source = "the 8x8 digits (sklearn.datasets.load_digits)"
        except ImportError:
            rng = np.random.default_rng(0)
            images, labels = rng.integers(0, 17, (1797, 8, 8)), rng.integers(0, 10, 1797)
            source = "synthetic 8x8 images (no digits data set installed)"
    images = (np.asarray(images, dtype=np.float64) / 16)[:, None]
    return images, np.eye(10)[labels], source


def digits_weights(model: str) -> list[np.ndarray]:
    """Initial weights (He-normal, zero biases), in autonet's layouts: Linear (in, out), Conv2d
    (out, in, kH, kW) as PyTorch's."""
    rng = np.random.default_rng(0)

    def he(*shape: int, fan_in: int) -> np.ndarray:
        return rng.normal(scale=np.sqrt(2 / fan_in), size=shape)

    if model == "mlp":
        return [he(64, 128, fan_in=64), np.zeros(128), he(128, 10, fan_in=128), np.zeros(10)]
    return [he(8, 1, 3, 3, fan_in=9), np.zeros(8), he(128, 10, fan_in=128), np.zeros(10)]


def digits_model(model: str) -> an.nn.Module:
    """The MLP or the CNN from autonet's layers, with the weights of digits_weights(model)."""
    nn = an.nn
    if model == "mlp":
        layers = [nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)]
    else:
        layers = [
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(128, 10),
        ]
    net = nn.Sequential(*layers)
    for parameter, weights in zip(net.parameters(), digits_weights(model), strict=True):
        parameter.data = weights.copy()
    return net


def digits_autonet(
    model: str, images: np.ndarray, targets: np.ndarray, epochs: int, replayed: bool
) -> Step:
    net = digits_model(model)
    sgd = an.optim.SGD(net.parameters(), lr=DIGITS_LR)
    F = an.nn.functional

    def step() -> tuple[np.ndarray, ...]:
        an.nn.fit(
            net,
            images,
            targets,
            loss=F.cross_entropy,
            optimizer=sgd,
            epochs=epochs,
            batch_size=DIGITS_BATCH,
            seed=0,
            progress=False,
            replay=replayed,
        )
        return tuple(p.data.copy() for p in net.parameters())

    return step


def digits_torch(model: str, images: np.ndarray, targets: np.ndarray, epochs: int) -> Step:
    import torch
    import torch.nn.functional as TF

    w0, b0, w1, b1 = (torch.tensor(w, requires_grad=True) for w in digits_weights(model))
    params = [w0, b0, w1, b1]
    sgd = torch.optim.SGD(params, lr=DIGITS_LR)
    X, T = torch.from_numpy(images), torch.from_numpy(targets)

    def forward(x: Any) -> Any:
        if model == "mlp":
            h = torch.relu(x.reshape(len(x), -1) @ w0 + b0)
        else:
            h = TF.max_pool2d(torch.relu(TF.conv2d(x, w0, b0, padding=1)), 2)
            h = h.reshape(h.shape[0], -1)
        return h @ w1 + b1

    def step() -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(0)  # the batches of fit(seed=0)
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(X)))
            for start in range(0, len(X), DIGITS_BATCH):
                batch = order[start : start + DIGITS_BATCH]
                sgd.zero_grad()
                loss = TF.cross_entropy(forward(X[batch]), T[batch])
                loss.backward()
                sgd.step()
                loss.item()  # as fit reads every batch's loss
        return tuple(p.detach().numpy().copy() for p in params)

    return step


def make_digits_epoch(
    engine: str, model: str, images: np.ndarray, targets: np.ndarray, epochs: int
) -> Step:
    """`epochs` epochs of training the digits `model` ("mlp" or "cnn"); returns the weights."""
    if engine == "torch":
        return digits_torch(model, images, targets, epochs)
    return digits_autonet(model, images, targets, epochs, replayed=engine == "replay")
