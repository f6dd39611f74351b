"""What the small models of their own (version_edits.py, version_deletes.py)
share: stamps placed anywhere among those that exist, and a breadth-first
search of every state a model's steps reach, checking each."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

S = TypeVar("S", bound=Hashable)


class Violation(Exception):
    """A state breaks the model's invariant."""


@dataclass
class Result:
    states: int
    violation: str | None = None
    trace: list[str] | None = None


def above(stamps: Iterable[Fraction], base: Fraction) -> Iterator[Fraction]:
    """Every position a new stamp above ``base`` can take among ``stamps``:
    only their order matters, so this is every clock there is."""
    lower = base
    for st in sorted(st for st in set(stamps) if st > base):
        yield (lower + st) / 2
        lower = st
    yield lower + 1


def explore(
    start: S,
    steps: Callable[[S], Iterable[tuple[str, S]]],
    canonical: Callable[[S], S],
    check: Callable[[S], None],
) -> Result:
    """Breadth first from ``start`` over ``steps`` (label, next state), each
    state taken in ``canonical`` form and ``check``-ed (raising
    :class:`Violation`): the first violation found has a shortest trace."""
    first = canonical(start)
    parent: dict[S, tuple[S, str] | None] = {first: None}
    queue = deque([first])
    while queue:
        s = queue.popleft()
        for label, nxt in steps(s):
            c = canonical(nxt)
            if c in parent:
                continue
            parent[c] = (s, label)
            try:
                check(c)
            except Violation as exc:
                trace: list[str] = []
                at: S | None = c
                while at is not None and (link := parent[at]) is not None:
                    at, step = link
                    trace.append(step)
                return Result(len(parent), str(exc), trace[::-1])
            queue.append(c)
    return Result(len(parent))
