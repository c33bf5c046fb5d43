"""Modules: layers that hold parameters, as torch.nn.Module, built only from autonet's ops.

A Module's parameters are the Tensor attributes that require grad, found by walking its
attributes in the order they were set (and its sub-modules' attributes, recursively). Each
parameter's `name` is its dotted path from the outermost module, e.g. `layers.0.weight` in an
MLP, so graph drawings and checkpoints can group it by layer. (PyTorch marks parameters with
nn.Parameter; here any Tensor attribute with requires_grad=True is one.)

Where autonet differs from PyTorch:
- Linear's weight has shape (in_features, out_features) and the layer computes x @ weight + bias,
  as the tutorial writes S . syn0; torch.nn.Linear stores (out, in) and computes x @ weight.T.
- state_dict() returns copies of the parameter arrays (PyTorch returns the live tensors), so a
  saved state does not change as training goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from autonet.nn import functional as F
from autonet.nn.init import Initialiser, get_initialiser
from autonet.ops import as_tensor
from autonet.tensor import Tensor

RandomState = np.random.Generator | int | None


class Module:
    """Base class: subclasses set parameters and sub-modules as attributes and define forward().

        class Affine(an.nn.Module):
            def __init__(self):
                self.w = an.tensor(np.ones((3, 2)), requires_grad=True)
            def forward(self, x):
                return x @ self.w

    Calling super().__init__() is optional: the registries are made on first use.
    """

    training: bool = True  # class default; train()/eval() set it per instance

    def __setattr__(self, attr: str, value: Any) -> None:
        parameter_names = self.__dict__.setdefault("_parameter_names", [])
        module_names = self.__dict__.setdefault("_module_names", [])
        for names in (parameter_names, module_names):
            if attr in names:
                names.remove(attr)
        if isinstance(value, Tensor) and value.requires_grad:
            parameter_names.append(attr)
            value.name = attr
        elif isinstance(value, Module):
            module_names.append(attr)
            for path, parameter in value.named_parameters():
                parameter.name = f"{attr}.{path}"
        object.__setattr__(self, attr, value)

    def forward(self, *args: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any) -> Tensor:
        return self.forward(*args)

    def children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules, as (attribute name, module), in the order they were set."""
        for attr in self.__dict__.get("_module_names", []):
            yield attr, getattr(self, attr)

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Tensor]]:
        """Every parameter as (dotted path, tensor), each tensor once, in definition order."""
        found: list[tuple[str, Tensor]] = []
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # iterative, as the engine's walks
            path, module = stack.pop()
            for attr in module.__dict__.get("_parameter_names", []):
                parameter = getattr(module, attr)
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    found.append((path + attr, parameter))
            stack.extend(
                (path + attr + ".", child) for attr, child in reversed(list(module.children()))
            )
        return found

    def parameters(self) -> list[Tensor]:
        """Every parameter tensor, each once (a list; torch returns a generator)."""
        return [parameter for _, parameter in self.named_parameters()]

    def modules(self) -> list[Module]:
        """This module and all its sub-modules, depth first."""
        found, stack = [], [self]
        while stack:
            module = stack.pop()
            found.append(module)
            stack.extend(child for _, child in reversed(list(module.children())))
        return found

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (grad = None), before the next backward()."""
        for parameter in self.parameters():
            parameter.grad = None

    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout active) on this module and all sub-modules; returns self."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Set evaluation mode (Dropout is the identity); same as train(False)."""
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """{dotted path: a copy of the parameter's array}, for an.save and load_state_dict."""
        return {path: parameter.data.copy() for path, parameter in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Set every parameter from state, a {dotted path: array} as state_dict() returns.

        Every name and shape is checked before anything changes: a missing, unexpected or
        mis-shaped entry raises ValueError listing all of them and leaves the module as it was.
        Values are copied and converted to each parameter's dtype.
        """
        own = dict(self.named_parameters())
        problems = [
            f"missing {name!r} (shape {own[name].shape})" for name in own if name not in state
        ]
        problems += [f"unexpected {name!r}" for name in state if name not in own]
        arrays = {}
        for name, parameter in own.items():
            if name not in state:
                continue
            value = state[name]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.shape != parameter.shape:
                problems.append(
                    f"{name!r} has shape {array.shape}, the model's has {parameter.shape}"
                )
            elif array.dtype.kind not in "biuf":
                problems.append(f"{name!r} has non-numeric dtype {array.dtype}")
            else:
                arrays[name] = array.astype(parameter.dtype, copy=True)
        if problems:
            raise ValueError(
                f"load_state_dict: the state does not fit {type(self).__name__} "
                f"(nothing was changed): {'; '.join(problems)}. Load a state saved from a model "
                "built with the same layer sizes and options"
            )
        for name, array in arrays.items():
            own[name].data = array

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({attr}): " + repr(child).replace("\n", "\n  ") for attr, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def make_rng(rng: RandomState) -> np.random.Generator:
    """A Generator from a seed (int), a Generator (used as is), or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Linear(Module):
    """out = x @ weight + bias, weight of shape (in_features, out_features), bias (out_features,).

    init names the weight initialiser ("uniform": the tutorial's U[-1, 1); "xavier"; "he"; see
    autonet.nn.init) or is a function (shape, rng) -> array. Biases start at 0. rng is a seed or a
    numpy Generator; layers sharing one Generator draw in turn, as the tutorial's successive calls
    to np.random.random do.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | Initialiser = "xavier",
        rng: RandomState = None,
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, got {in_features}, "
                f"{out_features}"
            )
        generator = make_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        weight = get_initialiser(init)((in_features, out_features), generator)
        self.weight = Tensor(np.asarray(weight, dtype=np.float64), requires_grad=True)
        self.bias = Tensor(np.zeros(out_features), requires_grad=True) if bias else None

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear: input shape {x.shape} does not end in in_features = {self.in_features}; "
                f"pass inputs of shape (batch, {self.in_features})"
            )
        out = x @ self.weight
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Sigmoid(Module):
    """sigmoid(x) = 1 / (1 + exp(-x)), element-wise."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).sigmoid()


class Tanh(Module):
    """tanh(x), element-wise."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).tanh()


class ReLU(Module):
    """max(x, 0), element-wise (gradient 0 at 0)."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).relu()


class Identity(Module):
    """x unchanged."""

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x)


class Sign(Module):
    """sign(x), with sign(0) = at_zero (0 as NumPy; -1 for the perceptron convention). Its
    gradient is 0 everywhere, so nothing before it learns by gradient descent."""

    def __init__(self, at_zero: float = 0.0) -> None:
        self.at_zero = at_zero

    def forward(self, x: Any) -> Tensor:
        return as_tensor(x).sign(at_zero=self.at_zero)

    def extra_repr(self) -> str:
        return f"at_zero={self.at_zero}"


class Dropout(Module):
    """Zeroes each element with probability p in training mode (scaling the rest by 1/(1-p));
    the identity in evaluation mode. See functional.dropout."""

    def __init__(self, p: float = 0.5, rng: RandomState = None) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = make_rng(rng)

    def forward(self, x: Any) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied in order: Sequential(a, b, c)(x) = c(b(a(x))). Sub-modules are named
    "0", "1", ... so parameters read `0.weight`, `2.bias`."""

    def __init__(self, *modules: Module) -> None:
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential: argument {i} is a {type(module).__name__}, not a Module"
                )
            setattr(self, str(i), module)

    def __len__(self) -> int:
        return len(self.__dict__.get("_module_names", []))

    def __getitem__(self, i: int) -> Module:
        return getattr(self, str(range(len(self))[i]))

    def __iter__(self) -> Iterator[Module]:
        return (module for _, module in self.children())

    def forward(self, x: Any) -> Tensor:
        for module in self:
            x = module(x)
        return x


ACTIVATIONS: dict[str, Callable[[], Module]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "identity": Identity,
}


class MLP(Module):
    """A multilayer perceptron: Linear layers of the given sizes, each followed by the activation.

        MLP([3, 4, 1], bias=False, init="uniform", rng=1)   # the tutorial's network:
            O = sigmoid(sigmoid(S @ W0) @ W1)     # W0: layers.0.weight, W1: layers.2.weight

    sizes = [inputs, hidden..., outputs]. activation is "sigmoid", "tanh", "relu" or "identity".
    last_activation=False leaves the last layer linear (logits for cross_entropy or
    binary_cross_entropy_with_logits); by default it is squashed too, as in the tutorial.
    dropout > 0 adds Dropout(dropout) after every hidden activation. All layers draw their
    weights from one Generator (rng), in order.
    """

    def __init__(
        self,
        sizes: list[int],
        activation: str = "sigmoid",
        bias: bool = True,
        init: str | Initialiser = "xavier",
        last_activation: bool = True,
        dropout: float = 0.0,
        rng: RandomState = None,
    ) -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least [inputs, outputs], got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}"
            )
        generator = make_rng(rng)
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            last = i == len(sizes) - 2
            layers.append(Linear(n_in, n_out, bias=bias, init=init, rng=generator))
            if not last or last_activation:
                layers.append(ACTIVATIONS[activation]())
            if not last and dropout > 0:
                layers.append(Dropout(dropout, rng=generator))
        self.sizes = list(sizes)
        self.layers = Sequential(*layers)

    def forward(self, x: Any) -> Tensor:
        return self.layers(x)
