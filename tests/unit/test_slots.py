"""tristore.slots: the fast __init__ and copy of frozen, slotted dataclasses
behave as the ones @dataclass generates."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from tristore.model import Change, ObjectInfo, ObjectVersion, evolve
from tristore.slots import copy_with, fast_init
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str = "b"
    c: dict[str, str] = dataclasses.field(default_factory=dict)
    d: tuple[int, ...] = ()


_Fast = fast_init(
    dataclasses.make_dataclass(
        "_Fast",
        [(f.name, f.type, f) for f in dataclasses.fields(_Plain)],
        frozen=True,
        slots=True,
    )
)


def test_same_signature_defaults_and_fresh_factories() -> None:
    assert str(inspect.signature(_Fast)) == str(inspect.signature(_Plain))
    for args, kwargs in [((1,), {}), ((1, "x"), {"d": (2,)}), ((), {"a": 3, "c": {"k": "v"}})]:
        fast, plain = _Fast(*args, **kwargs), _Plain(*args, **kwargs)
        assert dataclasses.astuple(fast) == dataclasses.astuple(plain)  # type: ignore[arg-type]
    one, two = _Fast(1), _Fast(1)
    assert one == two and one.c is not two.c  # each gets its own dict
    with pytest.raises(TypeError):
        _Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Fast(1, e=2)  # type: ignore[call-arg]


def test_still_frozen_ordered_and_hashable() -> None:
    s = Stamp(1, 2, 3, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.logical = 5  # type: ignore[misc]
    assert Stamp(1, 2, 3, 4) == s and hash(Stamp(1, 2, 3, 4)) == hash(s)
    assert Stamp(1, 3, 0, 0) > s > Stamp(1, 2, 3, 3)
    assert inspect.signature(Stamp).parameters.keys() == {
        "physical_ms", "logical", "cluster_id", "node_id"
    }  # fmt: skip


@pytest.mark.parametrize(
    "obj",
    [
        ObjectVersion("b", "k", Stamp(1, 2, 3, 4), size=3, tags={"t": "1"}),
        Change("b", "k", Stamp(1, 2, 3, 4), removed=(Stamp(0, 1, 1, 1),)),
        _Fast(1, "x", {"k": "v"}),
        _Plain(1),
    ],
)
def test_copy_with_is_replace(obj: object) -> None:
    first = dataclasses.fields(obj)[0].name  # type: ignore[arg-type]
    assert copy_with(obj) == obj and copy_with(obj) is not obj
    changed = copy_with(obj, **{first: getattr(obj, first)})
    assert changed == dataclasses.replace(obj, **{first: getattr(obj, first)})  # type: ignore[type-var]
    with pytest.raises(AttributeError):
        copy_with(obj, no_such_field=1)


def test_evolve_changes_only_what_it_is_given() -> None:
    v = ObjectVersion("b", "k", Stamp(1, 2, 3, 4), size=3, tags={"t": "1"})
    moved = evolve(v, stamp=Stamp(2, 0, 3, 4))
    assert moved == dataclasses.replace(v, stamp=Stamp(2, 0, 3, 4)) and v.stamp == Stamp(1, 2, 3, 4)


def test_hot_classes_are_fast() -> None:
    for cls in (ObjectVersion, Change, ObjectInfo, Stamp):
        names = cls.__init__.__code__.co_names
        first = dataclasses.fields(cls)[0].name
        assert "__setattr__" not in names and f"_set_{first}" in names, cls


def test_refuses_what_it_would_skip() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class KwOnly:
        a: int = dataclasses.field(kw_only=True)

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (Post, KwOnly, NoSlots):
        with pytest.raises(TypeError):
            fast_init(cls)
