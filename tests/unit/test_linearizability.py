"""The checker itself: it must pass what is linearizable and catch what is not."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.linearizability import READ, WRITE, Op, check

pytestmark = pytest.mark.unit


def w(value: object, start: float, end: float, ok: bool = True) -> Op:
    return Op("k", WRITE, value, start, end if ok else math.inf, ok)  # type: ignore[arg-type]


def r(value: object, start: float, end: float) -> Op:
    return Op("k", READ, value, start, end)  # type: ignore[arg-type]


def test_sequential_history_is_linearizable() -> None:
    assert check(
        [w(1, 0, 1), r(1, 2, 3), w(2, 4, 5), r(2, 6, 7), w(None, 8, 9), r(None, 10, 11)]
    ).ok


def test_reads_concurrent_with_a_write_may_see_either_value() -> None:
    assert check([w(1, 0, 1), w(2, 2, 10), r(1, 3, 4), r(2, 5, 6)]).ok
    assert check([w(1, 0, 1), w(2, 2, 10), r(2, 3, 4)]).ok


def test_concurrent_writes_take_either_order() -> None:
    assert check([w(1, 0, 5), w(2, 0, 5), r(1, 6, 7)]).ok
    assert check([w(1, 0, 5), w(2, 0, 5), r(2, 6, 7)]).ok


def test_stale_read_is_caught() -> None:
    verdict = check([w(1, 0, 1), w(2, 2, 3), r(1, 4, 5)])
    assert not verdict.ok
    assert verdict.key == "k" and "no order" in verdict.explanation


def test_flicker_is_caught() -> None:
    # A write still in flight: once one read saw it, a later read may not go back.
    assert check([w(1, 0, 1), w(2, 2, 20), r(2, 3, 4), r(2, 5, 6)]).ok
    assert not check([w(1, 0, 1), w(2, 2, 20), r(2, 3, 4), r(1, 5, 6)]).ok


def test_lost_write_is_caught() -> None:
    assert not check([w(1, 0, 1), r(None, 2, 3)]).ok
    assert not check([w(1, 0, 1), w(None, 2, 3), w(2, 4, 5), r(None, 6, 7)]).ok


def test_a_read_of_a_value_nobody_wrote_is_caught() -> None:
    assert not check([w(1, 0, 1), r(7, 2, 3)]).ok


def test_unknown_writes_may_take_effect_late_or_never() -> None:
    # The client saw an error: the write may land long after, or not at all.
    assert check([w(1, 0, 1), w(2, 2, 3, ok=False), r(1, 4, 5), r(2, 6, 7)]).ok
    assert check([w(1, 0, 1), w(2, 2, 3, ok=False), r(1, 4, 5)]).ok
    # ... but once seen, it stays seen.
    assert not check([w(1, 0, 1), w(2, 2, 3, ok=False), r(2, 4, 5), r(1, 6, 7)]).ok


def test_keys_are_checked_independently() -> None:
    ops = [
        Op("a", WRITE, 1, 0, 1),
        Op("b", WRITE, 2, 0, 1),
        Op("a", READ, 1, 2, 3),
        Op("b", READ, 1, 2, 3),
    ]
    verdict = check(ops)
    assert not verdict.ok and verdict.key == "b"


@st.composite
def sequential_histories(draw: st.DrawFn) -> list[Op]:
    """Histories of a real register run one operation at a time."""
    value: int | None = None
    ops: list[Op] = []
    t = 0.0
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.booleans()):
            value = draw(st.one_of(st.none(), st.integers(0, 5)))
            ops.append(w(value, t, t + 1))
        else:
            ops.append(r(value, t, t + 1))
        t += 2
    return ops


@given(sequential_histories())
def test_any_real_sequential_history_passes(ops: list[Op]) -> None:
    assert check(ops).ok


@given(sequential_histories(), st.data())
def test_a_falsified_read_in_a_sequential_history_fails(ops: list[Op], data: st.DataObject) -> None:
    reads = [i for i, o in enumerate(ops) if o.kind == READ]
    if not reads:
        return
    i = data.draw(st.sampled_from(reads))
    wrong = data.draw(st.integers(100, 200))
    ops[i] = r(wrong, ops[i].invoked, ops[i].completed)
    assert not check(ops).ok


def test_a_wide_concurrent_history_stays_fast() -> None:
    # 12 overlapping writers and readers on one key: the memoized search copes.
    ops = [w(i, 0, 10) for i in range(12)] + [r(5, 11, 12), r(5, 13, 14)]
    assert check(ops).ok
    assert not check([*ops, r(6, 15, 16)]).ok
