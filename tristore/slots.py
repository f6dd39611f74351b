"""Cheaper construction and copying of the frozen, slotted dataclasses every
operation builds many of (versions, changes, stamps).

``@dataclass(frozen=True)`` generates an ``__init__`` that sets each field
through ``object.__setattr__`` (the class's own ``__setattr__`` refuses):
a lookup and a generic call a field, three times what setting the slot
through its member descriptor costs. A PUT builds tens of versions and stamps
on its way through the cluster (converting messages, replacing a version's
stamp), so :func:`fast_init` swaps that ``__init__`` for one that sets the
slots directly, with the same signature, defaults and default factories, and
:func:`copy_with` copies an instance with some fields changed (what
``dataclasses.replace`` does, without calling ``__init__`` again).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
_new = object.__new__
_set = object.__setattr__

#: Each fast class's copier: a new instance with every slot of the one given.
_copiers: dict[type, Callable[[Any], Any]] = {}


class _Missing:
    """A default factory's placeholder: the parameter was not given."""

    def __repr__(self) -> str:
        return "<factory>"


_MISSING = _Missing()


def fast_init(cls: type[_T]) -> type[_T]:
    """Class decorator, applied over ``@dataclass(frozen=True, slots=True)``:
    the ``__init__`` described above, and a copier for :func:`copy_with`.
    Only for classes without ``__post_init__``, init-only or keyword-only
    fields (what would be skipped is refused here, at import)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    slots = getattr(cls, "__slots__", ())
    if (
        tuple(f.name for f in fields) != tuple(slots)
        or hasattr(cls, "__post_init__")
        or any(not f.init or f.kw_only for f in fields)
    ):
        raise TypeError(f"{cls.__name__}: fast_init takes plain frozen, slotted dataclasses")
    ns: dict[str, Any] = {"_new": _new, "_cls": cls, "_MISSING": _MISSING}
    params, body = [], []
    for f in fields:
        name = f.name
        ns[f"_set_{name}"] = getattr(cls, name).__set__
        if f.default is not dataclasses.MISSING:
            ns[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            ns[f"_factory_{name}"] = f.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f"if {name} is _MISSING: {name} = _factory_{name}()")
        else:
            params.append(name)
        body.append(f"_set_{name}(self, {name})")
    copy = [f"_set_{f.name}(new, obj.{f.name})" for f in fields]
    src = (
        f"def __init__(self, {', '.join(params)}) -> None:\n"
        + "".join(f"    {line}\n" for line in body)
        + "def copy(obj):\n    new = _new(_cls)\n"
        + "".join(f"    {line}\n" for line in copy)
        + "    return new\n"
    )
    exec(src, ns)  # the source is built from the class's own field names
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = {f.name: f.type for f in fields} | {"return": None}
    cls.__init__ = init  # type: ignore[method-assign]
    _copiers[cls] = ns["copy"]
    return cls


def copy_with(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace(obj, **changes)`` of a :func:`fast_init` class (or
    any frozen, slotted dataclass without ``__post_init__``, more slowly); a
    name that is no field raises AttributeError."""
    copier = _copiers.get(type(obj))
    if copier is not None:
        new = copier(obj)
    else:
        new = _new(type(obj))
        for name in type(obj).__slots__:  # type: ignore[attr-defined]
            _set(new, name, getattr(obj, name))
    for name, value in changes.items():
        _set(new, name, value)
    return new
