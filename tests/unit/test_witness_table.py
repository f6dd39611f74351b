"""The witness table: larger stamp wins, bounded size, records fenced by incarnation."""

from __future__ import annotations

import pytest

from tristore.stamps import Stamp
from witness.table import UNKNOWN, WitnessTable

pytestmark = pytest.mark.unit


def _s(wall: int) -> bytes:
    return Stamp(wall, 0, 1, 1).encode()


def test_keeps_the_larger_stamp_and_answers_unknown_otherwise() -> None:
    t = WitnessTable(max_keys=10)
    inc = t.incarnation
    assert t.record([b"k"], _s(5), [inc]) == ([], 0)
    t.record([b"k"], _s(3), [inc])
    stamps, unknown = t.check([b"k", b"other"])
    assert stamps == _s(5) + UNKNOWN
    assert unknown == 1


def test_a_record_meant_for_another_incarnation_is_refused() -> None:
    """A late record from before a restart must not make the new life answer it."""
    before = WitnessTable(max_keys=10)
    after = WitnessTable(max_keys=10)  # the same witness restarted: a new incarnation
    assert after.incarnation != before.incarnation
    refused, _ = after.record([b"a", b"b"], _s(1) + _s(2), [before.incarnation, after.incarnation])
    assert refused == [0]
    assert after.check([b"a", b"b"]) == (UNKNOWN + _s(2), 1)
    refused, _ = after.record([b"c"], _s(1), [0])  # a sender that never heard of it
    assert refused == [0]


def test_bounded_forgets_least_recently_written() -> None:
    t = WitnessTable(max_keys=2)
    inc = [t.incarnation]
    t.record([b"a"], _s(1), inc)
    t.record([b"b"], _s(1), inc)
    _, evicted = t.record([b"c"], _s(1), inc)
    assert evicted == 1
    assert t.check([b"a"]) == (UNKNOWN, 1)


def test_mismatched_lengths_are_refused_whole() -> None:
    t = WitnessTable(max_keys=2)
    with pytest.raises(ValueError):
        t.record([b"a", b"b"], _s(1), [t.incarnation] * 2)
    with pytest.raises(ValueError):
        t.record([b"a"], _s(1), [])
