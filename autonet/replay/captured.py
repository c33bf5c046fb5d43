"""What a step can read besides its arguments: captured() walks from the step's function (its
closure cells, the globals its code names, its defaults, a bound method's self) and from its
arguments, through containers and objects' attributes, and says where it found each object
(Place), so that guard.py can check that the same tensors are still there. See docs/replay.md.
"""

from __future__ import annotations

import functools
import threading
import types
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from autonet.tensor import Tensor


def step_roots(loss_fn: Callable[..., Any], args: tuple[Any, ...]) -> list[tuple[Any, str]]:
    """Where the walk starts, each with its path: the step's function, and each argument that
    may hold tensors and whose type compares by identity: the key of the recordings
    (guard.signature()) holds that very object, the same at each call of the recording."""
    return [(loss_fn, "")] + [
        (a, f"args[{i}]")
        for i, a in enumerate(args)
        if type(a).__eq__ is object.__eq__ and may_hold_tensors(a)
    ]


class Place(NamedTuple):
    """Where the walk of captured() found an object: in `holder`, read as holder.cell_contents
    (access "cell": a closure cell), holder[key] ("item": a dict's entry, a list's item) or
    holder.key ("attribute": a function's defaults), or from something that cannot change
    ("fixed": a tuple's item, a bound method's self; holder None). parent is the object the
    walk found it in; path names it for people (m.w, layers[0], params['w'], args[1].w)."""

    parent: Any
    holder: Any
    access: str
    key: Any
    path: str


# The walk of captured() collects at most this many ways, and does not enter a container of more
# items: a step's tensors are found long before, and a long list (a data set, a log of losses)
# is not worth the time.
WALK_LIMIT = 10_000


def captured(roots: list[tuple[Any, str]]) -> list[tuple[Any, Place]]:
    """Every way to an object reachable from the roots, breadth first, as (the object, the place
    it is read from): what the step can read besides its arguments. Containers, functions and
    objects' attributes are followed (held()); Tensors are collected but not entered; modules,
    classes, arrays and numbers are left out. An object reached again is not entered again."""
    ways: list[tuple[Any, Place]] = []
    entered = {id(root) for root, _ in roots}
    queue = deque(roots)
    while queue and len(ways) < WALK_LIMIT:
        x, path = queue.popleft()
        for child, place in held(x, path):
            ways.append((child, place))
            if (
                id(child) not in entered
                and not isinstance(child, Tensor)
                # the number of its attributes (an object's, a function's) or of its items
                and len(getattr(child, "__dict__", child)) <= WALK_LIMIT
            ):
                entered.add(id(child))
                queue.append((child, place.path))
    return ways


def held(x: Any, path: str) -> Iterator[tuple[Any, Place]]:
    """What x holds that may hold a tensor or be one (may_hold_tensors()), each with the place it
    is read from (see Place): a function's closure cells, the globals its code names and its
    defaults; a bound method's self and function, a partial's; a tuple's, a list's and a dict's
    items; other objects' attributes."""
    kind = type(x)
    if kind is types.FunctionType:
        for name, cell in zip(x.__code__.co_freevars, x.__closure__ or (), strict=True):
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not assigned yet
                continue
            if may_hold_tensors(contents):
                yield contents, Place(x, cell, "cell", None, name)
        namespace = x.__globals__
        for name in names_used(x.__code__):
            if may_hold_tensors(namespace.get(name)):
                yield namespace[name], Place(x, namespace, "item", name, name)
        for attribute in ("__defaults__", "__kwdefaults__"):
            if getattr(x, attribute):
                path_ = f"{x.__name__}.{attribute}"
                yield getattr(x, attribute), Place(x, x, "attribute", attribute, path_)
    elif kind is types.MethodType or kind is functools.partial:  # what they hold cannot change
        if kind is types.MethodType:
            fixed = [(x.__self__, "self"), (x.__func__, path)]
        else:
            fixed = [(getattr(x, a), f"{path}.{a}") for a in ("func", "args", "keywords")]
        for child, path_ in fixed:
            if may_hold_tensors(child):
                yield child, Place(x, None, "fixed", None, path_)
    elif isinstance(x, (tuple, list)):  # a named tuple too
        holder, access = (None, "fixed") if isinstance(x, tuple) else (x, "item")
        for i, item in enumerate(x):
            if may_hold_tensors(item):
                yield item, Place(x, holder, access, i, f"{path}[{i}]")
    else:  # a dict, or an object with attributes: read from its __dict__
        attributes = x if isinstance(x, dict) else x.__dict__
        for key, value in list(attributes.items()):
            if may_hold_tensors(value):
                text = f"{path}[{key!r}]" if attributes is x else f"{path}.{key}" if path else key
                yield value, Place(x, attributes, "item", key, text)


def names_used(code: types.CodeType) -> Iterator[str]:
    """The global (and attribute) names code and the functions defined in it use."""
    stack = [code]
    while stack:
        code = stack.pop()
        yield from code.co_names
        stack += (c for c in code.co_consts if isinstance(c, types.CodeType))


def may_hold_tensors(x: Any) -> bool:
    """Whether captured() collects x (a Tensor) or walks into it: a tuple, list or dict, a
    function, bound method or partial, or an object with attributes (a __dict__); not a module,
    a class, a thread's local data, nor an array or a number (which have no __dict__)."""
    kind = type(x)
    if kind in WALKED:
        return True
    if kind in NOT_WALKED or isinstance(x, (type, types.ModuleType, threading.local)):
        return False
    return isinstance(x, (Tensor, tuple, list, dict)) or type(getattr(x, "__dict__", None)) is dict


# The types of what may_hold_tensors() answers at once (a list of numbers is looked at quickly).
WALKED = frozenset(
    {Tensor, tuple, list, dict, types.FunctionType, types.MethodType, functools.partial}
)
NOT_WALKED = frozenset(
    {type(None), bool, int, float, complex, str, bytes, np.ndarray, np.float64, np.float32}
)
