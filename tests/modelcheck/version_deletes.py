"""DELETEs of a key's current version and of the version below it, at once,
as a model of their own, explored exhaustively: every interleaving of every
step, every clock, every set of AZs a look hears.

The key holds two versions, A and then B, B current, in each of its three
AZs (one node an AZ). A DELETE of a version by its id (node/objects.py
``_delete_version``):

- **reads** the key's current record (:func:`read`; here the newest record
  any AZ holds, which a read finishes). If it stands for the version to
  delete, the DELETE goes as the *current* one: it **looks** for the newest
  older version the AZs it hears hold (``_versions_after``; any non-empty
  set of AZs), and writes a record of it (or a tombstone when there is
  none) stamped above the current one, removing the deleted version,
  conditional on the current record it read: the key's first AZ
  **decides** it (refused when its current record changed; with
  ``removed_versions_refused``, also when it holds the removal of the
  version the record stands for: ReplicaStore's
  ``tristore_node_removed_version_refusals_total``), and refused, the
  DELETE reads again; taken, the other AZs **commit** it (last writer wins
  by stamp; the deleted version removed).
- Else it **looks** for the version (any non-empty set of AZs answers;
  Protocol.version_to_remove): nothing to do only when every AZ answered
  and every one holds the version's removal, or none holds the version or
  its removal; else its removal is **committed** in every AZ,
  unconditionally. Then, with ``deletes_read_again``, it reads the key
  again: if the current record now stands for the version (the other
  DELETE made it current meanwhile), it goes on as the current one's.
- Either may be **abandoned** (its coordinator died) at any step; a DELETE
  that is refused ``tries`` times fails with nothing acknowledged.

The invariant, in every state: no version whose DELETE was acknowledged is
what a read returns (the newest current record, by stamp, of the AZs).
Without ``removed_versions_refused``, the removal of A reaches every AZ and
is acknowledged, and then B's DELETE, which saw A before, makes it current
again (the simulation's seed 245 with DELETEs of versions); without
``deletes_read_again``, the first AZ takes that record before the removal
gets there, and the removal is acknowledged under it
(tests/unit/test_modelcheck.py pins both traces).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import combinations

from tests.modelcheck import bfs
from tests.modelcheck.bfs import Result, Violation

AZS = 3
A, B = "A", "B"
#: A DELETE's phases.
READ, DECIDE, COMMIT, REMOVE, AGAIN = "read", "decide", "commit", "remove", "again"


@dataclass(frozen=True, order=True)
class Record:
    """A current record: its stamp and the version it stands for (None: a
    tombstone, no version left)."""

    stamp: Fraction
    version: str | None


@dataclass(frozen=True)
class Az:
    current: Record
    #: Versions whose record the AZ holds, and those whose removal it holds.
    held: frozenset[str] = frozenset({A, B})
    removed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Delete:
    target: str
    phase: str = READ
    #: The current record it read (the condition of its write), and its write.
    expect: Fraction = Fraction(0)
    record: Record | None = None
    taken: frozenset[int] = frozenset()
    reads: int = 0


@dataclass(frozen=True)
class State:
    azs: tuple[Az, ...]
    deletes: tuple[Delete, ...] = ()
    #: DELETEs begun, per version (a client's retry is a DELETE of its own).
    started: tuple[str, ...] = ()
    acked: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Bounds:
    #: Reads a DELETE makes before it gives up (the code's restamp_attempts).
    tries: int = 3
    #: DELETEs of each version (the first call, and retries).
    each: int = 1


@dataclass(frozen=True)
class Variant:
    removed_versions_refused: bool = True
    deletes_read_again: bool = True


def initial() -> State:
    return State(azs=(Az(Record(Fraction(1), B)),) * AZS)


def newest(s: State) -> Record:
    return max(az.current for az in s.azs)


def _stamps(s: State) -> list[Fraction]:
    out = {az.current.stamp for az in s.azs}
    for d in s.deletes:
        out.add(d.expect)
        if d.record is not None:
            out.add(d.record.stamp)
    return sorted(out)


def canonical(s: State) -> State:
    """Stamps renamed by rank: only their order matters."""
    rank = {st: Fraction(i) for i, st in enumerate(_stamps(s))}

    def rec(r: Record | None) -> Record | None:
        return None if r is None else Record(rank[r.stamp], r.version)

    azs = tuple(
        replace(az, current=Record(rank[az.current.stamp], az.current.version)) for az in s.azs
    )
    deletes = tuple(replace(d, expect=rank[d.expect], record=rec(d.record)) for d in s.deletes)
    return replace(s, azs=azs, deletes=deletes)


def _put(s: State, i: int, d: Delete | None) -> State:
    deletes = list(s.deletes)
    if d is None:
        del deletes[i]
    else:
        deletes[i] = d
    return replace(s, deletes=tuple(deletes))


def _set_az(s: State, i: int, az: Az) -> State:
    azs = list(s.azs)
    azs[i] = az
    return replace(s, azs=tuple(azs))


def _heard_sets() -> Iterator[tuple[int, ...]]:
    for n in range(1, AZS + 1):
        yield from combinations(range(AZS), n)


def read(s: State, i: int) -> Iterator[tuple[str, State]]:
    """Read the key; as the current version's DELETE, look and build the write."""
    d = s.deletes[i]
    cur = newest(s)
    if cur.version != d.target:
        # Protocol.version_to_remove: commit where a node holds it; nothing
        # to do only when every AZ answered, and every one holds its
        # removal, or none holds it or its removal; else commit again.
        for heard in _heard_sets():
            held = any(d.target in s.azs[az].held for az in heard)
            marks = [d.target in s.azs[az].removed for az in heard]
            if not held and len(heard) == AZS and (all(marks) or not any(marks)):
                yield f"{d.target}'s DELETE finds nothing to do in AZs {heard}", _ack(s, i)
            else:
                yield (
                    f"{d.target}'s DELETE looks at AZs {heard}",
                    _put(s, i, replace(d, phase=REMOVE, reads=d.reads + 1)),
                )
        return
    older = [A] if d.target == B else []
    for heard in _heard_sets():
        found = [v for v in older if any(v in s.azs[az].held for az in heard)]
        below = found[-1] if found else None
        for stamp in bfs.above(_stamps(s), cur.stamp):
            record = Record(stamp, below)
            yield (
                f"{d.target}'s DELETE, current, looks at AZs {heard}: makes {below} current",
                _put(
                    s,
                    i,
                    replace(d, phase=DECIDE, expect=cur.stamp, record=record, reads=d.reads + 1),
                ),
            )


def _ack(s: State, i: int) -> State:
    d = s.deletes[i]
    return replace(_put(s, i, None), acked=s.acked | {d.target})


def _take(az: Az, record: Record, target: str) -> Az:
    """A commit of the current version's DELETE: its record (last writer
    wins by stamp), and the deleted version removed."""
    current = record if record.stamp > az.current.stamp else az.current
    return Az(current, az.held - {target}, az.removed | {target})


def decide(s: State, i: int, b: Bounds, v: Variant) -> State:
    d = s.deletes[i]
    assert d.record is not None
    home = s.azs[0]
    refused = home.current.stamp != d.expect or (
        v.removed_versions_refused and d.record.version in home.removed
    )
    if refused:
        return _put(s, i, replace(d, phase=READ, record=None) if d.reads < b.tries else None)
    s = _set_az(s, 0, _take(home, d.record, d.target))
    return _put(s, i, replace(d, phase=COMMIT, taken=frozenset({0})))


def commit(s: State, i: int, az: int) -> State:
    d = s.deletes[i]
    assert d.record is not None
    s = _set_az(s, az, _take(s.azs[az], d.record, d.target))
    taken = d.taken | {az}
    if len(taken) == AZS:
        return _ack(s, i)
    return _put(s, i, replace(d, taken=taken))


def remove(s: State, i: int, az: int, v: Variant) -> State:
    """The removal of a noncurrent version lands in an AZ (unconditional)."""
    d = s.deletes[i]
    at = s.azs[az]
    s = _set_az(s, az, replace(at, held=at.held - {d.target}, removed=at.removed | {d.target}))
    taken = d.taken | {az}
    if len(taken) < AZS:
        return _put(s, i, replace(d, taken=taken))
    if v.deletes_read_again:
        return _put(s, i, replace(d, phase=AGAIN, taken=frozenset()))
    return _ack(s, i)


def read_again(s: State, i: int, b: Bounds) -> State:
    d = s.deletes[i]
    if newest(s).version != d.target:
        return _ack(s, i)
    # Made current meanwhile: deleted as the current version, a read on.
    return _put(s, i, replace(d, phase=READ) if d.reads < b.tries else None)


def check(s: State) -> None:
    shown = newest(s).version
    if shown is not None and shown in s.acked:
        raise Violation(f"version {shown} read after its DELETE was acknowledged")


def steps(s: State, b: Bounds, v: Variant) -> Iterator[tuple[str, State]]:
    for target in (A, B):
        if s.started.count(target) < b.each:
            yield (
                f"DELETE of {target} begins",
                replace(
                    s,
                    deletes=(*s.deletes, Delete(target)),
                    started=tuple(sorted((*s.started, target))),
                ),
            )
    for i, d in enumerate(s.deletes):
        yield f"{d.target}'s DELETE abandoned", _put(s, i, None)
        if d.phase == READ:
            yield from read(s, i)
        elif d.phase == DECIDE:
            yield f"{d.target}'s DELETE decided by the first AZ", decide(s, i, b, v)
        elif d.phase == COMMIT:
            for az in range(1, AZS):
                if az not in d.taken:
                    yield f"{d.target}'s DELETE committed in AZ {az}", commit(s, i, az)
        elif d.phase == REMOVE:
            for az in range(AZS):
                if az not in d.taken:
                    yield f"{d.target}'s removal committed in AZ {az}", remove(s, i, az, v)
        else:
            yield f"{d.target}'s DELETE reads the key again", read_again(s, i, b)


def explore(b: Bounds = Bounds(), v: Variant = Variant()) -> Result:
    """Breadth first: the first violation found has a shortest trace."""
    return bfs.explore(initial(), lambda s: steps(s, b, v), canonical, check)
