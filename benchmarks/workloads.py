"""The benchmarked workloads, written once per engine: the same math in each engine's own idiom.

Each `make_*` function takes the initial NumPy arrays and returns a `step()` that does the whole
workload once (forward, backward and, for training steps, the SGD update) and returns the
gradients it computed as NumPy arrays, so that run.py can check them against hand formulas before
timing. Engines:

    hand      hand-written NumPy: the tutorial's formulas (the physical limit of a NumPy engine)
    eager     autonet: operators record the graph, loss.backward() walks it
    replay    autonet.replay: the step recorded once, replayed as generated NumPy code
    torch     PyTorch CPU eager (when installed)
    autograd  HIPS autograd (when installed)

The hand-written step uses autonet.primitives.stable_sigmoid, the same sigmoid as autonet and the
tutorial's reference formulas (autonet.seed), so hand and autonet compute the same numbers;
PyTorch uses torch.sigmoid, and HIPS autograd (which has no sigmoid) (1 + tanh(x / 2)) / 2: the
tutorial's 1 / (1 + exp(-x)) overflows in float32 at the large size.
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
    return ["hand", "eager", "replay"] + [
        module for module in ("torch", "autograd") if importlib.util.find_spec(module) is not None
    ]


# ---------------------------------------------------------------------------------------------
# The tutorial's network: H = sigmoid(S syn0), O = sigmoid(H syn1), L = 1/2 sum (O - Y)^2.


def tutorial_hand(S: np.ndarray, Y: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> Step:
    syn0, syn1 = w0.copy(), w1.copy()
    lr = LR / len(S)

    def step() -> tuple[np.ndarray, ...]:
        nonlocal syn0, syn1  # updated in place below, as the tutorial does
        H = stable_sigmoid(S @ syn0)
        O = stable_sigmoid(H @ syn1)
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
