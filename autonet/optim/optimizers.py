"""The optimisers: the Optimizer base class (parameters, per-parameter state, state_dict) and
SGD, Adam, AdamW, RMSprop, each with its update equation (see autonet.optim).

Parameters may hold arrays of any Array API library (model.to(torch)): each update is computed
in the parameter's own namespace (backend.namespace_of), so its state stays in that library and
on that device. state_dict() saves the state as NumPy arrays; load_state_dict() puts each entry
back into its parameter's library."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from autonet import backend
from autonet.modes import no_grad
from autonet.nn.modules import array_like
from autonet.tensor import Tensor


def checked_values(owner: str, given: object, current: Mapping[str, Any]) -> dict[str, Any]:
    """given, a state_dict()'s {key: value}, checked to have current's keys and kinds of values
    (bool, int, real, str, tuple of reals), with reals made floats; or ValueError/TypeError."""
    if not isinstance(given, Mapping) or set(given) != set(current):
        keys = sorted(map(str, given)) if isinstance(given, Mapping) else type(given).__name__
        raise ValueError(
            f"{owner}.load_state_dict: the state holds {keys}, but {owner}'s are "
            f"{sorted(current)}; was it saved from another optimizer or scheduler? (nothing was "
            "changed)"
        )
    values = {}
    for key, now in current.items():
        value = given[key]
        if isinstance(now, bool) or isinstance(now, str):
            fits = type(value) is type(now)
        elif isinstance(now, int):
            fits = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            value = int(value) if fits else value
        elif isinstance(now, tuple):
            fits = isinstance(value, (list, tuple)) and len(value) == len(now)
            fits = fits and all(isinstance(v, numbers.Real) for v in value)
            value = tuple(float(v) for v in value) if fits else value
        else:
            fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
            value = float(value) if fits else value
        if not fits:
            raise TypeError(
                f"{owner}.load_state_dict: {key!r} is {value!r} ({type(value).__name__}), but "
                f"{owner}'s is {now!r} ({type(now).__name__}) (nothing was changed)"
            )
        values[key] = value
    return values


class Optimizer:
    """Base class: keeps the parameters, their per-parameter state and the hyperparameters
    (attributes named as in HYPERPARAMETERS); subclasses define check(), state_keys(), update()."""

    HYPERPARAMETERS: ClassVar[tuple[str, ...]]
    lr: float

    def __init__(self, params: Iterable[Tensor], **hyperparameters: Any) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(
                f"{type(self).__name__}: got no parameters to optimise; pass model.parameters()"
            )
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} is not a Tensor with "
                    "requires_grad=True; pass model.parameters() or tensors made with "
                    "an.tensor(..., requires_grad=True)"
                )
        self.set_hyperparameters(hyperparameters)
        # {parameter index: {name: array or step count}}, filled at a parameter's first update
        self.state: dict[int, dict[str, Any]] = {}

    def set_hyperparameters(self, values: dict[str, Any]) -> None:
        if not values["lr"] > 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {values['lr']}")
        self.check(values)
        for key in self.HYPERPARAMETERS:
            setattr(self, key, values[key])

    def check(self, values: dict[str, Any]) -> None:
        """Raise ValueError if the hyperparameters (values) are out of range."""

    def state_keys(self) -> tuple[str, ...]:
        """The names in a parameter's state, with the current hyperparameters."""
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient, in the namespace of its
        arrays (NumPy's for ndarrays); a gradient of another library than its parameter's
        raises TypeError naming both."""
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                w, g = p.data, p.grad.data
                if type(w) is np.ndarray and type(g) is np.ndarray:
                    xp = np
                else:
                    xp = backend.namespace_of(w, g, operation=f"{type(self).__name__}.step")
                if tuple(g.shape) != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}.step: parameter {p.name or i} has shape "
                        f"{p.shape} but its grad has shape {tuple(g.shape)}"
                    )
                state = self.state.get(i, {})
                p.data -= self.update(state, w, g, xp)
                if state:  # plain SGD keeps none, as torch's
                    self.state[i] = state

    def update(self, state: dict[str, Any], w: Any, g: Any, xp: Any) -> Any:
        """The amount to subtract from a parameter (value w, gradient g, its state, updated),
        computed with the functions of namespace xp, the arrays' own."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {name: array or int}}, "param_groups": [{hyperparameter: value,
        "params": [0, 1, ...]}]}, as torch.optim's; a copy, for an.save and load_state_dict. The
        arrays are NumPy copies whatever the parameters' library (backend.to_numpy: a GPU
        array is copied to host memory), so a checkpoint loads on any library."""
        group = {key: getattr(self, key) for key in self.HYPERPARAMETERS}
        group["params"] = list(range(len(self.params)))
        state = {
            i: {
                key: value if isinstance(value, int) else np.array(backend.to_numpy(value))
                for key, value in entry.items()
            }
            for i, entry in self.state.items()
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what state_dict() returned (an.load gives it back), after checking that it
        fits: the same optimiser class and options, as many parameters, each state array of its
        parameter's shape (converted to its dtype, library and device). Nothing changes unless
        all of it fits."""
        owner = type(self).__name__
        if not (
            isinstance(state_dict, Mapping)
            and set(state_dict) == {"state", "param_groups"}
            and isinstance(state_dict["state"], Mapping)
            and isinstance(state_dict["param_groups"], (list, tuple))
        ):
            got = (
                f"keys {sorted(map(str, state_dict))}"
                if isinstance(state_dict, Mapping)
                else type(state_dict).__name__
            )
            raise ValueError(
                f"{owner}.load_state_dict: expected {{'state': {{...}}, 'param_groups': [...]}} "
                f"as optimizer.state_dict() returns, got {got}; pass the optimizer's part of the "
                "checkpoint (checkpoint['optimizer'])"
            )
        groups = state_dict["param_groups"]
        if len(groups) != 1 or not isinstance(groups[0], Mapping) or "params" not in groups[0]:
            raise ValueError(
                f"{owner}.load_state_dict: the state has {len(groups)} parameter groups; an "
                "autonet optimizer has one, holding all its parameters (nothing was changed)"
            )
        indices = groups[0]["params"]
        count = len(indices) if isinstance(indices, (list, tuple)) else repr(indices)
        if count != len(self.params) or list(indices) != list(range(len(self.params))):
            raise ValueError(
                f"{owner}.load_state_dict: the state lists {count} parameter(s), this optimizer "
                f"has {len(self.params)} (nothing was changed); load a state saved from an "
                "optimizer of the same model, built the same way"
            )
        current = {key: getattr(self, key) for key in self.HYPERPARAMETERS}
        hyperparameters = checked_values(
            owner, {k: v for k, v in groups[0].items() if k != "params"}, current
        )
        self.set_hyperparameters(hyperparameters)  # checked; undone below if the state misfits
        try:
            state = self.checked_state(owner, state_dict["state"])
        except (TypeError, ValueError):
            self.set_hyperparameters(current)
            raise
        self.state = state

    def checked_state(self, owner: str, given: Mapping) -> dict[int, dict[str, Any]]:
        """The per-parameter state given, checked against the parameters and copied."""
        expected = self.state_keys()
        state: dict[int, dict[str, Any]] = {}
        for i, entry in given.items():
            if not (
                isinstance(i, numbers.Integral)
                and not isinstance(i, bool)
                and 0 <= int(i) < len(self.params)
            ):
                raise ValueError(
                    f"{owner}.load_state_dict: the state names parameter {i!r}, but this "
                    f"optimizer has parameters 0 to {len(self.params) - 1} (nothing was changed)"
                )
            if not isinstance(entry, Mapping) or set(entry) != set(expected):
                keys = (
                    sorted(map(str, entry)) if isinstance(entry, Mapping) else type(entry).__name__
                )
                raise ValueError(
                    f"{owner}.load_state_dict: the state of parameter {i} holds {keys}, but "
                    f"{owner} with these options keeps {sorted(expected)} (nothing was changed)"
                )
            p = self.params[int(i)]
            checked: dict[str, Any] = {}
            for key in expected:
                value = entry[key]
                if key == "step":
                    if not (isinstance(value, numbers.Integral) and int(value) >= 1):
                        raise ValueError(
                            f"{owner}.load_state_dict: the step count of parameter {i} is "
                            f"{value!r}; it must be an int >= 1 (nothing was changed)"
                        )
                    checked[key] = int(value)
                    continue
                array = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
                if array.shape != p.shape or array.dtype.kind not in "biuf":
                    raise ValueError(
                        f"{owner}.load_state_dict: {key!r} of parameter {i} has shape "
                        f"{array.shape} and dtype {array.dtype}, but the parameter has shape "
                        f"{p.shape} and dtype {p.dtype} (nothing was changed); load a state "
                        "saved from an optimizer of the same model"
                    )
                checked[key] = array_like(array, p.data)
            if checked:  # an empty entry (plain SGD) is no state
                state[int(i)] = checked
        return state

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.HYPERPARAMETERS)
        return f"{type(self).__name__}({options})"


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum, dampening, Nesterov momentum and L2 weight
    decay, as torch.optim.SGD:

        d = g + weight_decay * w                  (the gradient of L + weight_decay/2 * |w|^2)
        b = momentum * b + (1 - dampening) * d    (b = d at the first step; none if momentum = 0)
        d = d + momentum * b  if nesterov  else  b
        w = w - lr * d

    With momentum=0 and weight_decay=0 this is the tutorial's update w = w - alpha * grad.
    State per parameter: "momentum_buffer" (b), when momentum != 0.
    """

    HYPERPARAMETERS = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=float(lr),
            momentum=float(momentum),
            dampening=float(dampening),
            weight_decay=float(weight_decay),
            nesterov=bool(nesterov),
        )

    def check(self, values: dict[str, Any]) -> None:
        if not 0 <= values["momentum"] < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {values['momentum']}")
        if not values["weight_decay"] >= 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {values['weight_decay']}")
        if values["nesterov"] and (values["momentum"] == 0 or values["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs a momentum > 0 and dampening 0, got momentum "
                f"{values['momentum']} and dampening {values['dampening']}"
            )

    def state_keys(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum else ()

    def update(self, state: dict[str, Any], w: Any, g: Any, xp: Any) -> Any:
        d = g + self.weight_decay * w if self.weight_decay else g
        if self.momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = xp.asarray(d, copy=True)
            else:
                buffer = self.momentum * buffer + (1 - self.dampening) * d
            state["momentum_buffer"] = buffer
            d = d + self.momentum * buffer if self.nesterov else buffer
        return self.lr * d


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): per-element steps scaled by running gradient moments, as
    torch.optim.Adam:

        w = w * (1 - lr * weight_decay)  if decoupled_weight_decay   (AdamW)
        d = g + weight_decay * w         otherwise                   (L2 penalty)
        m = beta1 * m + (1 - beta1) * d           (m = v = 0 before the first step)
        v = beta2 * v + (1 - beta2) * d^2
        v_max = max(v_max, v)  if amsgrad, and v below stands for v_max
        w = w - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    t = 1, 2, ... counts the parameter's own updates (the bias correction). State per parameter:
    "step" (t), "exp_avg" (m), "exp_avg_sq" (v) and, if amsgrad, "max_exp_avg_sq" (v_max).
    """

    HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay")
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool
    decoupled_weight_decay: bool

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        decoupled_weight_decay: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=float(lr),
            betas=tuple(float(beta) for beta in betas),
            eps=float(eps),
            weight_decay=float(weight_decay),
            amsgrad=bool(amsgrad),
            decoupled_weight_decay=bool(decoupled_weight_decay),
        )

    def check(self, values: dict[str, Any]) -> None:
        name = type(self).__name__
        if len(values["betas"]) != 2 or not all(0 <= b < 1 for b in values["betas"]):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {values['betas']}")
        if not values["eps"] >= 0:
            raise ValueError(f"{name}: eps must be >= 0, got {values['eps']}")
        if not values["weight_decay"] >= 0:
            raise ValueError(f"{name}: weight_decay must be >= 0, got {values['weight_decay']}")

    def state_keys(self) -> tuple[str, ...]:
        moments = ("step", "exp_avg", "exp_avg_sq")
        return (*moments, "max_exp_avg_sq") if self.amsgrad else moments

    def update(self, state: dict[str, Any], w: Any, g: Any, xp: Any) -> Any:
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(w), exp_avg_sq=xp.zeros_like(w))
            if self.amsgrad:
                state["max_exp_avg_sq"] = xp.zeros_like(w)
        state["step"] += 1
        decay: Any = 0.0
        if self.weight_decay and self.decoupled_weight_decay:
            decay = self.lr * self.weight_decay * w
        elif self.weight_decay:
            g = g + self.weight_decay * w
        state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
        state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        v = state["exp_avg_sq"]
        if self.amsgrad:
            v = state["max_exp_avg_sq"] = xp.maximum(state["max_exp_avg_sq"], v)
        step_size = self.lr / (1 - beta1 ** state["step"])
        denominator = xp.sqrt(v) / math.sqrt(1 - beta2 ** state["step"]) + self.eps
        return decay + step_size * state["exp_avg"] / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as torch.optim.AdamW:
    each step first shrinks w to w * (1 - lr * weight_decay), then takes Adam's step without an
    L2 term in the gradient (see Adam). weight_decay defaults to 1e-2."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True)


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), as torch.optim.RMSprop:

        d = g + weight_decay * w
        s = alpha * s + (1 - alpha) * d^2                   (s = 0 before the first step)
        a = alpha * a + (1 - alpha) * d,   r = sqrt(s - a^2) + eps    if centered
        r = sqrt(s) + eps                                             otherwise
        b = momentum * b + d / r,   w = w - lr * b                    if momentum > 0 (b = 0 first)
        w = w - lr * d / r                                            otherwise

    State per parameter: "step", "square_avg" (s), "momentum_buffer" (b) if momentum > 0 and
    "grad_avg" (a) if centered.
    """

    HYPERPARAMETERS = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=float(lr),
            alpha=float(alpha),
            eps=float(eps),
            weight_decay=float(weight_decay),
            momentum=float(momentum),
            centered=bool(centered),
        )

    def check(self, values: dict[str, Any]) -> None:
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            if not values[key] >= 0:
                raise ValueError(f"RMSprop: {key} must be >= 0, got {values[key]}")

    def state_keys(self) -> tuple[str, ...]:
        momentum = ("momentum_buffer",) if self.momentum > 0 else ()
        return ("step", "square_avg", *momentum, *(("grad_avg",) if self.centered else ()))

    def update(self, state: dict[str, Any], w: Any, g: Any, xp: Any) -> Any:
        if not state:
            state.update({key: xp.zeros_like(w) for key in self.state_keys()}, step=0)
        state["step"] += 1
        if self.weight_decay:
            g = g + self.weight_decay * w
        alpha = self.alpha
        state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * g * g
        if self.centered:
            state["grad_avg"] = alpha * state["grad_avg"] + (1 - alpha) * g
            root = xp.sqrt(state["square_avg"] - state["grad_avg"] ** 2) + self.eps
        else:
            root = xp.sqrt(state["square_avg"]) + self.eps
        if self.momentum > 0:
            state["momentum_buffer"] = self.momentum * state["momentum_buffer"] + g / root
            return self.lr * state["momentum_buffer"]
        return self.lr * g / root
