"""Modules: layers that hold parameters, as torch.nn.Module, built only from autonet's ops.

A Module's parameters are the Tensor attributes that require grad, found by walking its
attributes in the order they were set (and its sub-modules' attributes, recursively). Each
parameter's `name` is its dotted path from the outermost module, e.g. `layers.0.weight` in an
MLP, so graph drawings and checkpoints can group it by layer. (PyTorch marks parameters with
nn.Parameter; here any Tensor attribute with requires_grad=True is one.) Buffers are the state
that is saved but not trained, such as BatchNorm's running statistics: register_buffer.

Sub-modules are Module attributes, or the items of a ModuleList, ModuleDict or Sequential. A plain
list, tuple, set or dict holding Modules raises TypeError when assigned: PyTorch silently skips
it, so its layers' parameters reach neither the optimiser nor the checkpoint.

Where autonet differs from PyTorch:
- Parameters are float64 (PyTorch's are float32): model.to(np.float32) converts them.
- Parameters are NumPy arrays; model.to(torch) (or any Array API namespace: array_api_strict,
  cupy, ...) makes them arrays of that library, model.to(numpy) brings them back. PyTorch's
  module.to takes a device or a torch dtype instead: here the library comes first and the device
  is an option, model.to(torch, device="cuda").
- state_dict() returns NumPy copies of the arrays (PyTorch returns the live tensors), so a saved
  state does not change as training goes on and loads on any library. A parameter shared by two
  layers appears once in it.
- Sequential is a ModuleList with a forward (PyTorch keeps the two apart), so it has the list
  methods; ModuleList, like PyTorch's, has no forward.
- A parameter's `name` is set when it is assigned; a layer appended to a ModuleList that is
  already inside another module is named from the list down (`3.weight`), while
  named_parameters() and state_dict() always give the full path (`blocks.3.weight`).

The layers themselves are in layers.py, convolution.py and normalization.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from autonet import backend
from autonet.tensor import Tensor

RandomState = np.random.Generator | int | None


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) skipped, as PyTorch's result: the model's entries the
    state lacked and the state's entries the model has no place for."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def joined(prefix: str, attr: str) -> str:
    """The dotted path of attribute attr under prefix ("" at the outermost module)."""
    return f"{prefix}.{attr}" if prefix else attr


def holds_modules(value: Any) -> bool:
    """Whether value is a list, tuple, set or dict with a Module inside (at any depth)."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, (list, tuple, set, frozenset)):
        return False
    return any(isinstance(item, Module) or holds_modules(item) for item in value)


def is_array_namespace(value: Any) -> bool:
    """value is an array library's namespace module: numpy, torch, array_api_strict, cupy, ..."""
    return isinstance(value, ModuleType) and hasattr(value, "asarray")


def converted(array: Any, namespace: ModuleType, device: Any = None) -> Any:
    """array's values, in its dtype, as an array of namespace's library (on device if given).

    Within one library only the device changes (array_api_compat.to_device; array itself when
    no device is given); between two libraries the values are copied through host memory
    (backend.to_numpy, then namespace.asarray), so the result shares no memory with array."""
    if backend.library_of(backend.namespace_of(array)) == backend.library_of(namespace):
        return array if device is None else backend.array_api_compat().to_device(array, device)
    namespace = backend.standard_namespace(namespace)
    on_device = {} if device is None else {"device": device}
    return namespace.asarray(backend.to_numpy(array), copy=True, **on_device)


def array_like(values: Any, like: Any) -> Any:
    """A copy of values (a NumPy array or anything np.asarray takes) as an array of like's
    library, dtype and device: how a saved state (NumPy) returns to a parameter's array."""
    values = np.asarray(values)
    if type(like) is np.ndarray:
        return values.astype(like.dtype, copy=True)
    device = backend.array_api_compat().device(like)
    return backend.namespace_of(like).asarray(values, dtype=like.dtype, device=device, copy=True)


def require_module(value: Any, what: str) -> Module:
    """value itself if it is a Module; TypeError naming `what` otherwise."""
    if not isinstance(value, Module):
        raise TypeError(f"{what} is a {type(value).__name__}, not a Module")
    return value


class Module:
    """Base class: subclasses set parameters and sub-modules as attributes and define forward().

        class Affine(an.nn.Module):
            def __init__(self):
                self.w = an.tensor(np.ones((3, 2)), requires_grad=True)
            def forward(self, x):
                return x @ self.w

    Calling super().__init__() is optional: the registry is made on first use. It maps each
    registered attribute to its kind, "parameter", "module" or "buffer", in the order set;
    assigning a new value of the same kind keeps the attribute's place (as PyTorch's dicts).
    """

    training: bool = True  # class default; train()/eval() set it per instance

    def __setattr__(self, attr: str, value: Any) -> None:
        if holds_modules(value):
            container = "ModuleDict" if isinstance(value, dict) else "ModuleList"
            raise TypeError(
                f"{type(self).__name__}: attribute {attr!r} is a {type(value).__name__} holding "
                "Modules; parameters(), state_dict() and train() do not look inside it, so its "
                f"layers would be silently left out. Wrap it: self.{attr} = an.nn.{container}(...)"
            )
        kinds = self.__dict__.setdefault("_kinds", {})
        if kinds.get(attr) == "buffer" and (
            isinstance(value, (np.ndarray, np.generic, int, float)) or backend.is_foreign(value)
        ):
            value = Tensor(value)
        if isinstance(value, Tensor) and value.requires_grad:
            kind = "parameter"
            value.name = attr
        elif isinstance(value, Module):
            kind = "module"
            for path, parameter in value.named_parameters():
                parameter.name = joined(attr, path)
        elif kinds.get(attr) == "buffer" and isinstance(value, Tensor):
            kind = "buffer"
        else:
            kind = None
        if kinds.get(attr) != kind:
            kinds.pop(attr, None)
            if kind is not None:
                kinds[attr] = kind
        object.__setattr__(self, attr, value)

    def __delattr__(self, attr: str) -> None:
        self.__dict__.get("_kinds", {}).pop(attr, None)
        object.__delattr__(self, attr)

    def register_buffer(self, name: str, value: Any) -> None:
        """Keep value (an array or a Tensor, copied into a Tensor that does not require grad) as
        the attribute `name`, saved by state_dict() and restored by load_state_dict() but not a
        parameter: optimisers never see it (BatchNorm's running_mean, for example). Assigning
        the attribute a Tensor, an array or a number later keeps it a buffer; None removes it."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"register_buffer: the name must be a Python identifier (no dots), got {name!r}"
            )
        if name in self.__dict__ and self.__dict__.get("_kinds", {}).get(name) != "buffer":
            raise KeyError(
                f"register_buffer: {type(self).__name__} already has an attribute {name!r}; "
                "choose another name"
            )
        buffer = Tensor(value.data if isinstance(value, Tensor) else value)
        self.__dict__.setdefault("_kinds", {})[name] = "buffer"
        object.__setattr__(self, name, buffer)

    def forward(self, *args: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any) -> Tensor:
        return self.forward(*args)

    def registered(self, kind: str) -> list[str]:
        """This module's own attributes of that kind ("parameter", "module", "buffer"), in
        order."""
        return [attr for attr, k in self.__dict__.get("_kinds", {}).items() if k == kind]

    def children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules, as (attribute name, module), in the order they were set."""
        for attr in self.registered("module"):
            yield attr, getattr(self, attr)

    def named_modules(self, prefix: str = "") -> list[tuple[str, Module]]:
        """This module (path prefix) and every sub-module, as (dotted path, module), each once,
        depth first."""
        found: list[tuple[str, Module]] = []
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # iterative, as the engine's walks
            path, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            found.append((path, module))
            stack.extend(
                (joined(path, attr), child) for attr, child in reversed(list(module.children()))
            )
        return found

    def modules(self) -> list[Module]:
        """This module and all its sub-modules, each once, depth first."""
        return [module for _, module in self.named_modules()]

    def named_tensors(self, kind: str, prefix: str = "") -> list[tuple[str, Tensor]]:
        """Every parameter or buffer (kind) as (dotted path, tensor), each tensor once."""
        found: list[tuple[str, Tensor]] = []
        seen: set[int] = set()
        for path, module in self.named_modules(prefix):
            for attr in module.registered(kind):
                tensor = getattr(module, attr)
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    found.append((joined(path, attr), tensor))
        return found

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Tensor]]:
        """Every parameter as (dotted path, tensor), each tensor once, in definition order."""
        return self.named_tensors("parameter", prefix)

    def parameters(self) -> list[Tensor]:
        """Every parameter tensor, each once (a list; torch returns a generator)."""
        return [parameter for _, parameter in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> list[tuple[str, Tensor]]:
        """Every buffer as (dotted path, tensor), each once, in definition order."""
        return self.named_tensors("buffer", prefix)

    def buffers(self) -> list[Tensor]:
        """Every buffer tensor, each once (a list; torch returns a generator)."""
        return [buffer for _, buffer in self.named_buffers()]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (grad = None), before the next backward()."""
        for parameter in self.parameters():
            parameter.grad = None

    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout active, BatchNorm on batch statistics) on this module and
        all sub-modules; returns self."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Set evaluation mode (Dropout is the identity, BatchNorm uses its running statistics);
        same as train(False)."""
        return self.train(False)

    def to(self, target: Any, device: Any = None) -> Module:
        """Convert every parameter and buffer (and gradient), in place; returns self.

        target is one of:
        - a floating dtype (np.float32, "float64"): floating-point parameters and buffers take
          it, as torch's module.to(torch.float32); integer buffers stay integers. Inputs of
          another dtype are promoted as NumPy promotes them.
        - an array library's namespace (torch, array_api_strict, cupy, numpy, ...): every array
          becomes an array of that library with the same values and dtype, on `device` if given
          (passed to its asarray: model.to(torch, device="cuda")); model.to(numpy) comes back.
          Inputs must then be arrays of that library too (an.tensor(torch.asarray(x))): an op
          mixing two libraries raises TypeError. PyTorch's module.to takes a device and a torch
          dtype; here the library is named first, the device is an option.
        """
        name = type(self).__name__
        if is_array_namespace(target):

            def convert(array: Any) -> Any:
                return converted(array, target, device)

        else:
            fix = (
                "use np.float32 or np.float64 to change the dtype, or an array namespace "
                "(import torch; model.to(torch)) to change the array library"
            )
            try:
                dtype = np.dtype(target)
            except (TypeError, ValueError):
                raise TypeError(
                    f"{name}.to: {target!r} ({type(target).__name__}) is neither a floating "
                    f"dtype nor an array library's namespace; {fix}"
                ) from None
            if dtype.kind != "f":
                raise TypeError(f"{name}.to: dtype {dtype} is not a floating dtype; {fix}")
            if device is not None:
                raise TypeError(
                    f"{name}.to: device={device!r} goes with an array namespace "
                    f"(model.to(torch, device={device!r})), not with the dtype {dtype}"
                )

            def convert(array: Any) -> Any:
                if backend.numpy_dtype(array).kind != "f":
                    return array
                xp = backend.namespace_of(array)
                return xp.astype(array, backend.dtype_in(xp, dtype))

        for _, tensor in self.named_parameters() + self.named_buffers():
            data = convert(tensor.data)
            if data is not tensor.data:  # an unchanged array keeps its version
                tensor.data = data
            grad = None if tensor.grad is None else convert(tensor.grad.data)
            if grad is not None and grad is not tensor.grad.data:
                tensor.grad = None  # then stored as backward stores a gradient, in any library
                tensor.accumulate_grad(Tensor.wrap(grad))
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """{dotted path: a copy of the array} for every parameter, then every buffer, for an.save
        and load_state_dict. The copies are NumPy arrays whatever the parameters' library (another
        library's are copied to host memory, backend.to_numpy), so a checkpoint loads anywhere."""
        return {
            path: np.array(backend.to_numpy(tensor.data))
            for path, tensor in self.named_parameters() + self.named_buffers()
        }

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Set every parameter and buffer from state, a {dotted path: array} as state_dict()
        returns; values (NumPy arrays, or arrays of any library) are copied and converted to
        each tensor's dtype, library and device.

        strict=True: the names must match exactly. strict=False loads the entries the model and
        the state share and returns the rest as IncompatibleKeys(missing_keys, unexpected_keys),
        as PyTorch. Either way every entry is checked before anything changes: a shape that does
        not fit, a non-numeric array (or, when strict, a missing or unexpected name) raises
        ValueError listing all of them and leaves the module as it was.
        """
        own = dict(self.named_parameters()) | dict(self.named_buffers())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        problems = []
        if strict:
            problems += [f"missing {name!r} (shape {own[name].shape})" for name in missing]
            problems += [f"unexpected {name!r}" for name in unexpected]
        arrays = {}
        for name, tensor in own.items():
            if name not in state:
                continue
            value = state[name]
            array = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
            if array.shape != tensor.shape:
                problems.append(f"{name!r} has shape {array.shape}, the model's has {tensor.shape}")
            elif array.dtype.kind not in "biuf":
                problems.append(f"{name!r} has non-numeric dtype {array.dtype}")
            else:
                arrays[name] = array_like(array, tensor.data)
        if problems:
            names_only = strict and len(problems) == len(missing) + len(unexpected)
            raise ValueError(
                f"load_state_dict: the state does not fit {type(self).__name__} "
                f"(nothing was changed): {'; '.join(problems)}. Load a state saved from a model "
                "built with the same layer sizes and options"
                + (", or pass strict=False to load the entries whose names match" * names_only)
            )
        for name, array in arrays.items():
            own[name].data = array
        return IncompatibleKeys(missing, unexpected)

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


class ModuleList(Module):
    """A list of modules, registered as sub-modules named "0", "1", ... (parameters read
    `blocks.0.weight`): indexing (negative too), slicing (a new ModuleList of the same modules),
    len, iteration, append, extend, insert, item assignment and del, as torch.nn.ModuleList.

        self.blocks = an.nn.ModuleList(an.nn.Linear(4, 4) for _ in range(3))
        for block in self.blocks:
            x = block(x).relu()
    """

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        self.extend(modules)

    def __len__(self) -> int:
        return len(self.registered("module"))

    def position(self, index: int) -> int:
        """index (negative ones counted from the end) as a position in [0, len)."""
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(
                f"{type(self).__name__}: indices are ints or slices, got {type(index).__name__}"
            )
        if not -len(self) <= index < len(self):
            raise IndexError(
                f"{type(self).__name__}: index {index} is out of range for {len(self)} modules"
            )
        return int(index) % len(self)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(list(self)[index])
        return getattr(self, str(self.position(index)))

    def __setitem__(self, index: int | slice, module: Any) -> None:
        if isinstance(index, slice):
            modules = list(self)
            what = f"{type(self).__name__}: a new item"
            modules[index] = [require_module(m, what) for m in module]
            self.refill(modules)
        else:
            what = f"{type(self).__name__}: the new item"
            setattr(self, str(self.position(index)), require_module(module, what))

    def __delitem__(self, index: int | slice) -> None:
        modules = list(self)
        del modules[index if isinstance(index, slice) else self.position(index)]
        self.refill(modules)

    def __iter__(self) -> Iterator[Module]:
        return (module for _, module in self.children())

    def append(self, module: Module) -> ModuleList:
        """Add module at the end; returns self."""
        what = f"{type(self).__name__}.append: the argument"
        setattr(self, str(len(self)), require_module(module, what))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append each module in turn (nothing if one is not a Module); returns self."""
        if isinstance(modules, Module) and not isinstance(modules, ModuleList):
            raise TypeError(
                f"{type(self).__name__}.extend: expected an iterable of Modules, got a "
                f"{type(modules).__name__}; use append for one module"
            )
        modules = list(modules)  # all checked before any is added
        for i, module in enumerate(modules):
            require_module(module, f"{type(self).__name__}: item {i}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put module before position index (as list.insert), renumbering the ones after it."""
        modules = list(self)
        modules.insert(index, require_module(module, f"{type(self).__name__}.insert: the module"))
        self.refill(modules)

    def refill(self, modules: list[Module]) -> None:
        """Make the items exactly `modules`, numbered from 0."""
        for attr in self.registered("module"):
            delattr(self, attr)
        for module in modules:
            self.append(module)


class Sequential(ModuleList):
    """Modules applied in order: Sequential(a, b, c)(x) = c(b(a(x))). Sub-modules are named
    "0", "1", ... so parameters read `0.weight`, `2.bias`. It has ModuleList's list methods;
    a slice is a new Sequential of the same modules."""

    def __init__(self, *modules: Module) -> None:
        for i, module in enumerate(modules):
            require_module(module, f"Sequential: argument {i}")
        super().__init__(modules)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(*list(self)[index])
        return super().__getitem__(index)

    def forward(self, x: Any) -> Tensor:
        for module in self:
            x = module(x)
        return x


class ModuleDict(Module):
    """Modules by name, registered as sub-modules (parameters read `heads.left.weight`), with a
    dict's methods: [key], [key] = module, del, in, len, iteration over keys (in insertion order),
    keys, values, items, update, pop, as torch.nn.ModuleDict.

        self.heads = an.nn.ModuleDict({"left": an.nn.Linear(8, 2), "right": an.nn.Linear(8, 3)})

    A key must be a non-empty string without dots that is not already the name of one of the
    dict's attributes or methods ("keys", "train", ...), since each is an attribute.
    """

    def __init__(
        self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None
    ) -> None:
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self:
            raise KeyError(f"ModuleDict: no module named {key!r}; the keys are {self.keys()}")
        return getattr(self, key)

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(
                f"ModuleDict: keys are non-empty strings without dots (a dot would make a "
                f"parameter's dotted path ambiguous), got {key!r}"
            )
        if key not in self and (hasattr(type(self), key) or key in self.__dict__):
            raise KeyError(
                f"ModuleDict: key {key!r} is the name of an attribute or method of ModuleDict; "
                "choose another key"
            )
        setattr(self, key, require_module(module, f"ModuleDict: the value for {key!r}"))

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - the KeyError for a missing key
        delattr(self, key)

    def __contains__(self, key: object) -> bool:
        return self.__dict__.get("_kinds", {}).get(key) == "module"

    def __len__(self) -> int:
        return len(self.registered("module"))

    def __iter__(self) -> Iterator[str]:
        return iter(self.registered("module"))

    def keys(self) -> list[str]:
        return self.registered("module")

    def values(self) -> list[Module]:
        return [module for _, module in self.children()]

    def items(self) -> list[tuple[str, Module]]:
        return list(self.children())

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Set each (key, module) of a mapping or of an iterable of pairs, in order."""
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        for key, module in pairs:
            self[key] = module

    def pop(self, key: str) -> Module:
        """Remove the module named key and return it."""
        module = self[key]
        del self[key]
        return module
