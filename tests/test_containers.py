"""Containers and module state: ModuleList and ModuleDict behave as a list and a dict of the same
modules (checked against Python's own list and dict over drawn sequences of operations) and
register their items, so parameters, state_dict() and train()/eval() reach them; a plain list,
tuple or dict of modules assigned to a module raises instead of silently hiding its layers;
buffers are saved and restored but never trained; load_state_dict(strict=False) reports what
it skipped as PyTorch does; model.to(dtype) converts parameters and buffers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autonet as an
from autonet import nn

draws = settings(max_examples=30, deadline=None)


class FiveOrNine(nn.Module):
    """scale (1 parameter), first and last Linear (2 each) and two hidden Linear layers (2
    each) held in `hidden`: 9 parameters, or 5 if the container hid the hidden layers."""

    def __init__(self, wrap):
        self.scale = an.tensor(1.0, requires_grad=True)
        self.first = nn.Linear(2, 3, rng=0)
        self.hidden = wrap([nn.Linear(3, 3, rng=1), nn.Linear(3, 3, rng=2)])
        self.last = nn.Linear(3, 1, rng=3)

    def forward(self, x):
        x = self.first(x)
        for layer in self.hidden:
            x = layer(x).tanh()
        return self.last(x) * self.scale


def test_a_plain_list_of_modules_raises_and_a_module_list_registers_them():
    with pytest.raises(TypeError) as error:
        FiveOrNine(list)
    assert str(error.value) == (
        "FiveOrNine: attribute 'hidden' is a list holding Modules; parameters(), state_dict() and "
        "train() do not look inside it, so its layers would be silently left out. Wrap it: "
        "self.hidden = an.nn.ModuleList(...)"
    )
    model = FiveOrNine(nn.ModuleList)
    assert len(model.parameters()) == 9
    assert list(model.state_dict()) == [
        "scale",
        "first.weight",
        "first.bias",
        "hidden.0.weight",
        "hidden.0.bias",
        "hidden.1.weight",
        "hidden.1.bias",
        "last.weight",
        "last.bias",
    ]
    model(np.ones((4, 2))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    "value, container",
    [
        ((nn.Linear(2, 2),), "ModuleList"),
        ({"a": nn.Linear(2, 2)}, "ModuleDict"),
        ([[nn.Tanh()]], "ModuleList"),  # nested
        ({"layers": [nn.ReLU()]}, "ModuleDict"),
    ],
)
def test_tuples_dicts_and_nested_containers_of_modules_raise_too(value, container):
    model = nn.Module()
    with pytest.raises(TypeError, match=rf"Wrap it: self.layers = an.nn.{container}\(...\)"):
        model.layers = value
    model.sizes = [3, 4, {"a": 1}]  # plain data is fine
    assert model.parameters() == []


# -- ModuleList as a list ------------------------------------------------------------------------

LIST_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append")),
        st.tuples(st.just("extend"), st.integers(0, 3)),
        st.tuples(st.just("insert"), st.integers(-6, 6)),
        st.tuples(st.just("setitem"), st.integers(-6, 6)),
        st.tuples(st.just("delitem"), st.integers(-6, 6)),
        st.tuples(st.just("delslice"), st.integers(-6, 6), st.integers(-6, 6)),
        st.tuples(st.just("setslice"), st.integers(-6, 6), st.integers(-6, 6), st.integers(0, 3)),
    ),
    max_size=12,
)


def apply(operation, items, fresh):
    """Apply operation to items (a list or a ModuleList) with new modules from fresh()."""
    name, *args = operation
    if name == "append":
        items.append(fresh())
    elif name == "extend":
        items.extend([fresh() for _ in range(args[0])])
    elif name == "insert":
        items.insert(args[0], fresh())
    elif name == "setitem":
        items[args[0]] = fresh()
    elif name == "delitem":
        del items[args[0]]
    elif name == "delslice":
        del items[args[0] : args[1]]
    else:
        items[args[0] : args[1]] = [fresh() for _ in range(args[2])]


@draws
@given(operations=LIST_OPERATIONS, start=st.integers(0, 3))
def test_module_list_behaves_as_a_list_of_the_same_modules(operations, start):
    seeds = iter(range(1000))

    def fresh():
        return nn.Linear(1, 1, bias=False, rng=next(seeds))

    initial = [fresh() for _ in range(start)]
    expected, modules = list(initial), nn.ModuleList(initial)
    owner = nn.Module()
    owner.blocks = modules
    for operation in operations:
        new = [fresh() for _ in range(3)]  # what the operation may add: the same for both
        outcomes = []
        for items in (expected, modules):
            supply = iter(new)
            try:
                apply(operation, items, lambda supply=supply: next(supply))
                outcomes.append("done")
            except IndexError:  # and then the list is unchanged: checked at the end
                outcomes.append("IndexError")
        assert outcomes[0] == outcomes[1], operation
    assert len(modules) == len(expected)
    assert all(a is b for a, b in zip(modules, expected, strict=True))
    assert all(modules[i] is expected[i] for i in range(-len(expected), len(expected)))
    assert all(a is b for a, b in zip(modules[1::2], expected[1::2], strict=True))
    assert isinstance(modules[:1], nn.ModuleList)
    names = [f"blocks.{i}.weight" for i, module in enumerate(expected)]
    unique = [
        name for i, name in enumerate(names) if all(m is not expected[i] for m in expected[:i])
    ]
    assert [name for name, _ in owner.named_parameters()] == unique
    assert list(owner.state_dict()) == unique


def test_module_list_refuses_non_modules_and_bad_indices():
    modules = nn.ModuleList([nn.Tanh()])
    with pytest.raises(
        TypeError, match="ModuleList.append: the argument is a function, not a Module"
    ):
        modules.append(lambda x: x)
    with pytest.raises(TypeError, match="ModuleList: item 1 is a int, not a Module"):
        modules.extend([nn.ReLU(), 3])
    assert len(modules) == 1  # nothing was added
    with pytest.raises(TypeError, match="ModuleList: the new item is a str, not a Module"):
        modules[0] = "tanh"
    with pytest.raises(TypeError, match="ModuleList: a new item is a int, not a Module"):
        modules[0:1] = [nn.ReLU(), 3]
    assert len(modules) == 1 and isinstance(modules[0], nn.Tanh)  # unchanged
    with pytest.raises(TypeError, match="expected an iterable of Modules, got a Linear"):
        modules.extend(nn.Linear(2, 2))
    with pytest.raises(IndexError, match="ModuleList: index 5 is out of range for 1 modules"):
        modules[5]
    with pytest.raises(TypeError, match="ModuleList: indices are ints or slices, got str"):
        modules["0"]
    with pytest.raises(NotImplementedError, match="ModuleList must define forward"):
        modules(np.ones(2))


def test_sequential_has_the_list_methods_and_slices_to_a_sequential():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(2, 3, rng=rng), nn.Tanh())
    model.append(nn.Linear(3, 1, rng=rng))
    model.insert(0, nn.Identity())
    x = rng.normal(size=(4, 2))
    expected = model[3](model[2](model[1](x)))
    np.testing.assert_array_equal(model(x).data, expected.data)
    head = model[:3]
    assert isinstance(head, nn.Sequential) and len(head) == 3
    np.testing.assert_array_equal(head(x).data, model[2](model[1](x)).data)
    assert [name for name, _ in model.named_parameters()] == [
        "1.weight",
        "1.bias",
        "3.weight",
        "3.bias",
    ]


# -- ModuleDict as a dict ------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "conv", "head", "x1"])
DICT_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS),
        st.tuples(st.just("del"), KEYS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("update"), st.lists(KEYS, max_size=3)),
    ),
    max_size=12,
)


@draws
@given(operations=DICT_OPERATIONS)
def test_module_dict_behaves_as_a_dict_of_the_same_modules(operations):
    expected: dict[str, nn.Module] = {}
    modules = nn.ModuleDict()
    owner = nn.Module()
    owner.heads = modules
    for name, arg in operations:
        fresh = nn.Linear(1, 1, bias=False, rng=0)
        if name == "set":
            expected[arg] = modules[arg] = fresh
        elif name == "update":
            pairs = [(key, nn.Linear(1, 1, rng=0)) for key in arg]
            expected.update(pairs)
            modules.update(pairs)
        elif arg not in expected:
            with pytest.raises(KeyError, match=f"ModuleDict: no module named '{arg}'"):
                modules.pop(arg) if name == "pop" else modules.__delitem__(arg)
        elif name == "pop":
            assert modules.pop(arg) is expected.pop(arg)
        else:
            del expected[arg], modules[arg]
    assert list(modules) == list(expected) == modules.keys()
    assert len(modules) == len(expected)
    assert all(modules[key] is module for key, module in expected.items())
    assert all(a is b for a, b in zip(modules.values(), expected.values(), strict=True))
    assert [key for key, _ in modules.items()] == list(expected)
    assert all(key in modules for key in expected) and "missing" not in modules
    assert [name for name, _ in owner.named_parameters()] == [
        f"heads.{key}.{attr}"
        for key, module in expected.items()
        for attr in ("weight", "bias")
        if getattr(module, attr) is not None
    ]


@pytest.mark.parametrize(
    "key, error, message",
    [
        ("a.b", KeyError, "keys are non-empty strings without dots"),
        ("", KeyError, "keys are non-empty strings without dots"),
        (3, KeyError, "keys are non-empty strings without dots"),
        ("keys", KeyError, "'keys' is the name of an attribute or method of ModuleDict"),
        ("training", KeyError, "'training' is the name of an attribute or method"),
    ],
)
def test_module_dict_refuses_keys_that_would_clash(key, error, message):
    modules = nn.ModuleDict()
    with pytest.raises(error, match=message):
        modules[key] = nn.Tanh()
    assert len(modules) == 0 and callable(modules.keys)


def test_module_dict_refuses_non_modules():
    with pytest.raises(TypeError, match="ModuleDict: the value for 'a' is a int, not a Module"):
        nn.ModuleDict({"a": 3})


# -- train / eval --------------------------------------------------------------------------------


def test_train_and_eval_reach_modules_inside_lists_and_dicts():
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))])
    model.heads = nn.ModuleDict({"norm": nn.BatchNorm1d(2)})
    model.eval()
    assert len(model.modules()) == 7
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


# -- buffers and state ---------------------------------------------------------------------------


def test_buffers_are_saved_and_restored_but_never_trained(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.Linear(4, 1, rng=1))
    assert [name for name, _ in model.named_buffers()] == [
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert len(model.parameters()) == 6  # the buffers are not parameters
    optimizer = an.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        optimizer.zero_grad()
        (model(rng.normal(size=(8, 3)) * 3 + 1) ** 2).sum().backward()
        optimizer.step()
    assert int(model[1].num_batches_tracked.data) == 3
    path = tmp_path / "model.npz"
    an.save(model.state_dict(), path)

    fresh = nn.Sequential(nn.Linear(3, 4, rng=5), nn.BatchNorm1d(4), nn.Linear(4, 1, rng=6))
    fresh.load_state_dict(an.load(path))
    for (name, a), (_, b) in zip(
        model.named_buffers() + model.named_parameters(),
        fresh.named_buffers() + fresh.named_parameters(),
        strict=True,
    ):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert a.dtype == b.dtype, name
    x = rng.normal(size=(5, 3))
    model.eval()
    fresh.eval()
    np.testing.assert_array_equal(model(x).data, fresh(x).data)


def test_register_buffer_keeps_it_a_buffer_when_assigned_and_refuses_bad_names():
    module = nn.Module()
    module.register_buffer("steps", np.array(0))
    module.steps = np.array(5)  # an array assigned to a buffer becomes its new tensor
    assert isinstance(module.steps, an.Tensor) and module.state_dict() == {"steps": 5}
    module.steps = an.tensor(7.0)
    assert module.state_dict() == {"steps": 7.0} and module.parameters() == []
    module.steps = 8  # a number too
    assert module.state_dict() == {"steps": 8.0} and module.buffers()[0] is module.steps
    module.steps = None  # no longer a buffer
    assert module.state_dict() == {}
    with pytest.raises(ValueError, match="the name must be a Python identifier"):
        module.register_buffer("a.b", np.zeros(1))
    module.existing = 3
    with pytest.raises(KeyError, match="already has an attribute 'existing'"):
        module.register_buffer("existing", np.zeros(1))


def test_load_state_dict_strict_false_reports_missing_and_unexpected_keys():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNorm1d(3))
    state = model.state_dict()
    state = {name: value + 1 for name, value in state.items()}
    del state["0.bias"], state["1.running_var"]
    state["2.weight"] = np.ones(3)
    result = model.load_state_dict(state, strict=False)
    assert result == nn.IncompatibleKeys(["0.bias", "1.running_var"], ["2.weight"])
    assert result.missing_keys == ["0.bias", "1.running_var"]
    assert result.unexpected_keys == ["2.weight"]
    np.testing.assert_array_equal(model[0].weight.data, state["0.weight"])
    np.testing.assert_array_equal(model[1].running_mean.data, state["1.running_mean"])
    np.testing.assert_array_equal(model[0].bias.data, 0)  # missing: left as it was
    np.testing.assert_array_equal(model[1].running_var.data, 1)
    assert model.load_state_dict(model.state_dict()) == nn.IncompatibleKeys([], [])


def test_load_state_dict_strict_lists_every_problem_and_changes_nothing():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNorm1d(3))
    before = {name: value.copy() for name, value in model.state_dict().items()}
    state = {name: value + 1 for name, value in before.items()}
    del state["1.running_mean"]
    state["extra"] = np.zeros(1)
    with pytest.raises(ValueError) as error:
        model.load_state_dict(state)
    assert str(error.value) == (
        "load_state_dict: the state does not fit Sequential (nothing was changed): missing "
        "'1.running_mean' (shape (3,)); unexpected 'extra'. Load a state saved from a model built "
        "with the same layer sizes and options, or pass strict=False to load the entries whose "
        "names match"
    )
    state["1.running_var"] = np.ones(4)  # a wrong shape raises even when not strict
    with pytest.raises(
        ValueError, match=r"'1.running_var' has shape \(4,\), the model's has \(3,\)"
    ):
        model.load_state_dict(state, strict=False)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_to_converts_floating_parameters_buffers_and_gradients():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNorm1d(3))
    model(np.ones((4, 2)) * np.arange(4)[:, None]).sum().backward()
    assert model.to(np.float32) is model
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())
    assert [b.dtype for b in model.buffers()] == [np.float32, np.float32, np.int64]
    with pytest.raises(TypeError, match="dtype int32 is not a floating dtype"):
        model.to(np.int32)


def test_shared_modules_are_walked_once():
    shared = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert [path for path, _ in model.named_modules()] == ["", "0", "1"]
    assert len(model.parameters()) == 2
    np.testing.assert_array_equal(
        model(np.ones((1, 2))).data, shared(shared(np.ones((1, 2))).tanh()).data
    )
