"""Edits of one noncurrent version, as a model of their own, explored
exhaustively: every interleaving of every step, every clock.

An edit (new tags, a new ACL, a replication status: node/objects.py
``update_version`` of a version that is not the key's current one) reads the
version's record, changes one part of it and writes the whole record back,
stamped by its coordinator's clock above the record it read. A replica keeps
the record with the newest stamp (``ReplicaStore._put_version``: last writer
wins per version). Each edit here changes a part of its own (edit ``i``
adds ``i`` to the record's set), as a tag change and a status change of one
version do, so a record that lacks an acknowledged edit lost it.

The steps:

- **read** (:func:`read`): the version's record as some AZs hold it, the
  newest of those heard (any non-empty set of AZs: a read need not hear
  them all); the edit's record is that one plus its own part, stamped at any
  position above it (every clock skew between coordinators);
- **decide** (:func:`decide`, with ``conditional``): the key's first AZ's
  home takes the record only if the record it holds of the version is not
  newer than the one the edit read (``Change.version_expect``), else
  refuses it and nothing is written: the edit reads again (up to ``tries``
  reads, then the call fails with nothing written);
- **commit** (:func:`commit`): an AZ takes the record (last writer wins);
  without ``conditional`` (the old edit) every AZ, the first included, in
  any order, with no decision first;
- **abandon**: the coordinator dies (or an AZ did not answer and the call
  failed) at any point, before the acknowledgement.

One node an AZ: the decision is the home's, which hears the other nodes
of its AZ first as for any conditional change (a fallback may hold a record
it took while the home was away: ``HintedHandoff.versions_in_my_az``), the
step model.py explores with AZs of two nodes for ``expect`` and
``new_versions``.

An edit is acknowledged once every AZ took its record. The invariant, in
every state: every AZ's record holds every acknowledged edit. Sound because
every record above the first one is decided by the home, which takes one
only if it was built on the newest the home holds, so the records the home
takes form a chain each built on the one before (the other AZs take records
only after the home did); without the decision two edits that read the same
record each write it without the other's part, and the newer stamp wins: the
checker's trace is 8 steps (tests/unit/test_modelcheck.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import combinations

from tests.modelcheck import bfs
from tests.modelcheck.bfs import Result, Violation

AZS = 3
#: An edit's phases.
READ, DECIDE, COMMIT = "read", "decide", "commit"


@dataclass(frozen=True, order=True)
class Record:
    stamp: Fraction
    parts: frozenset[int]


@dataclass(frozen=True)
class Edit:
    ident: int
    phase: str = READ
    base: Fraction = Fraction(0)  # the stamp of the record it read
    record: Record | None = None  # what it writes
    taken: frozenset[int] = frozenset()  # AZs that took it
    reads: int = 0


@dataclass(frozen=True)
class State:
    azs: tuple[Record, ...]
    edits: tuple[Edit, ...] = ()
    started: int = 0
    acked: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Bounds:
    edits: int = 2
    #: Reads an edit makes before it gives up (the code's restamp_attempts).
    tries: int = 2


@dataclass(frozen=True)
class Variant:
    #: The first AZ's home decides an edit against the record it read.
    conditional: bool = True


def initial() -> State:
    return State(azs=(Record(Fraction(1), frozenset()),) * AZS)


def _stamps(s: State) -> list[Fraction]:
    out = {r.stamp for r in s.azs}
    for e in s.edits:
        out.add(e.base)
        if e.record is not None:
            out.add(e.record.stamp)
    return sorted(out)


def canonical(s: State) -> State:
    """Stamps renamed by rank: only their order matters."""
    rank = {st: Fraction(i) for i, st in enumerate(_stamps(s))}

    def rec(r: Record | None) -> Record | None:
        return None if r is None else Record(rank[r.stamp], r.parts)

    azs = tuple(Record(rank[r.stamp], r.parts) for r in s.azs)
    edits = tuple(replace(e, base=rank[e.base], record=rec(e.record)) for e in s.edits)
    return replace(s, azs=azs, edits=edits)


def _put(s: State, i: int, e: Edit | None) -> State:
    edits = list(s.edits)
    if e is None:
        del edits[i]
    else:
        edits[i] = e
    return replace(s, edits=tuple(edits))


def read(s: State, i: int, heard: tuple[int, ...], v: Variant) -> Iterator[State]:
    e = s.edits[i]
    got = max(s.azs[az] for az in heard)
    for stamp in bfs.above(_stamps(s), got.stamp):
        record = Record(stamp, got.parts | {e.ident})
        phase = DECIDE if v.conditional else COMMIT
        yield _put(s, i, replace(e, phase=phase, base=got.stamp, record=record, reads=e.reads + 1))


def decide(s: State, i: int, b: Bounds) -> State:
    e = s.edits[i]
    assert e.record is not None
    home = s.azs[0]
    if home.stamp > e.base:
        # Refused, nothing written: read again, or fail.
        return _put(s, i, replace(e, phase=READ) if e.reads < b.tries else None)
    s = _commit_to(s, 0, e.record)
    return _put(s, i, replace(e, phase=COMMIT, taken=frozenset({0})))


def _commit_to(s: State, az: int, record: Record) -> State:
    held = s.azs[az]
    if held.stamp >= record.stamp:
        return s  # last writer wins
    azs = list(s.azs)
    azs[az] = record
    return replace(s, azs=tuple(azs))


def commit(s: State, i: int, az: int) -> State:
    e = s.edits[i]
    assert e.record is not None
    s = _commit_to(s, az, e.record)
    taken = e.taken | {az}
    if len(taken) == AZS:
        return replace(_put(s, i, None), acked=s.acked | {e.ident})
    return _put(s, i, replace(e, taken=taken))


def check(s: State) -> None:
    for ident in s.acked:
        for az, r in enumerate(s.azs):
            if ident not in r.parts:
                raise Violation(f"acknowledged edit {ident} lost: AZ {az} holds {sorted(r.parts)}")


def steps(s: State, b: Bounds, v: Variant) -> Iterator[tuple[str, State]]:
    if s.started < b.edits:
        yield (
            f"start edit {s.started}",
            replace(s, edits=(*s.edits, Edit(s.started)), started=s.started + 1),
        )
    for i, e in enumerate(s.edits):
        yield f"edit {e.ident} abandoned", _put(s, i, None)
        if e.phase == READ:
            for n in range(1, AZS + 1):
                for heard in combinations(range(AZS), n):
                    for nxt in read(s, i, heard, v):
                        yield f"edit {e.ident} reads AZs {heard}", nxt
        elif e.phase == DECIDE:
            yield f"edit {e.ident} decided by the home", decide(s, i, b)
        else:
            for az in range(AZS):
                if az not in e.taken:
                    yield f"edit {e.ident} committed in AZ {az}", commit(s, i, az)


def explore(b: Bounds = Bounds(), v: Variant = Variant()) -> Result:
    """Breadth first: the first violation found has a shortest trace."""
    return bfs.explore(initial(), lambda s: steps(s, b, v), canonical, check)
