"""The witness table: larger stamp wins, bounded size, records fenced by incarnation."""

from __future__ import annotations

import pytest

from tristore.stamps import Stamp
from witness.table import FLOOR_SLOTS, UNKNOWN, WitnessTable

pytestmark = pytest.mark.unit


def _s(wall: int) -> bytes:
    return Stamp(wall, 0, 1, 1).encode()


def test_keeps_the_larger_stamp_and_answers_unknown_otherwise() -> None:
    t = WitnessTable(max_keys=10)
    inc = t.incarnation
    assert t.record([b"k"], _s(5), [inc]) == ([], 0, 0)
    t.record([b"k"], _s(3), [inc])
    stamps, unknown = t.check([b"k", b"other"])
    assert stamps == _s(5) + UNKNOWN
    assert unknown == 1


def test_a_record_meant_for_another_incarnation_is_refused() -> None:
    """A late record from before a restart must not make the new life answer it."""
    before = WitnessTable(max_keys=10)
    after = WitnessTable(max_keys=10)  # the same witness restarted: a new incarnation
    assert after.incarnation != before.incarnation
    fences = [before.incarnation, after.incarnation]
    refused, _, _ = after.record([b"a", b"b"], _s(1) + _s(2), fences)
    assert refused == [0]
    assert after.check([b"a", b"b"]) == (UNKNOWN + _s(2), 1)
    refused, _, _ = after.record([b"c"], _s(1), [0])  # a sender that never heard of it
    assert refused == [0]


def test_bounded_forgets_least_recently_written() -> None:
    t = WitnessTable(max_keys=2)
    inc = [t.incarnation]
    t.record([b"a"], _s(1), inc)
    t.record([b"b"], _s(1), inc)
    _, evicted, _ = t.record([b"c"], _s(1), inc)
    assert evicted == 1
    assert t.check([b"a"]) == (UNKNOWN, 1)


def test_mismatched_lengths_are_refused_whole() -> None:
    t = WitnessTable(max_keys=2)
    with pytest.raises(ValueError):
        t.record([b"a", b"b"], _s(1), [t.incarnation] * 2)
    with pytest.raises(ValueError):
        t.record([b"a"], _s(1), [])


def test_a_late_record_of_a_forgotten_key_does_not_bring_back_an_older_stamp() -> None:
    """Eviction keeps the incarnation: a record sent before the key was
    forgotten, older than what was forgotten, must leave it unknown (a reader
    would otherwise trust an older cached version), while newer ones and other
    keys are taken as before."""
    t = WitnessTable(max_keys=1)
    inc = [t.incarnation]
    t.record([b"k"], _s(5), inc)
    assert t.record([b"other"], _s(6), inc)[1] == 1  # k forgotten at 5
    assert t.check([b"k"]) == (UNKNOWN, 1)
    for late in (3, 4):
        assert t.record([b"k"], _s(late), inc) == ([], 0, 1)
        assert t.check([b"k"]) == (UNKNOWN, 1)
    assert t.record([b"k"], _s(5), inc) == ([], 1, 0)  # what it forgot: taken (other goes)
    assert t.check([b"k"]) == (_s(5), 0)
    assert t.record([b"k"], _s(7), inc) == ([], 0, 0)
    assert t.check([b"k"]) == (_s(7), 0)


def test_the_floor_is_per_slot_of_keys() -> None:
    """A key whose slot forgot nothing takes any stamp, however old."""
    t = WitnessTable(max_keys=1)
    inc = [t.incarnation]
    t.record([b"k"], _s(100), inc)
    t.record([b"other"], _s(101), inc)  # k forgotten at 100
    fresh = next(
        f"key-{i}".encode()
        for i in range(1000)
        if hash(f"key-{i}".encode()) % FLOOR_SLOTS != hash(b"k") % FLOOR_SLOTS
    )
    assert t.record([fresh], _s(1), inc) == ([], 1, 0)
    assert t.check([fresh]) == (_s(1), 0)


def test_forget_drops_the_key_and_refuses_that_stamp_again() -> None:
    """A removal the nodes collect: the key goes, and not even a record of the
    stamp forgotten (a late confirmation, a read finishing a copy of the
    removal) makes the witness answer it again; a newer one does."""
    t = WitnessTable(max_keys=10)
    inc = [t.incarnation]
    t.record([b"k", b"newer"], _s(5) + _s(9), inc * 2)
    assert t.forget([b"k", b"newer", b"unknown"], _s(5) + _s(8) + _s(5)) == [1]
    assert t.check([b"k", b"newer", b"unknown"]) == (UNKNOWN + _s(9) + UNKNOWN, 2)
    for late in (4, 5):
        assert t.record([b"k"], _s(late), inc) == ([], 0, 1)
        assert t.check([b"k"]) == (UNKNOWN, 1)
    assert t.record([b"k"], _s(6), inc) == ([], 0, 0)
    assert t.check([b"k"]) == (_s(6), 0)
    with pytest.raises(ValueError):
        t.forget([b"k"], b"")
