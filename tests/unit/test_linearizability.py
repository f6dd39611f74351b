"""The checker itself: it must pass what is linearizable and catch what is not."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.linearizability import PRESENT, READ, REMOVE, WRITE, Op, check, echo_of

pytestmark = pytest.mark.unit


def w(value: object, start: float, end: float, ok: bool = True) -> Op:
    return Op("k", WRITE, value, start, end if ok else math.inf, ok)  # type: ignore[arg-type]


def r(value: object, start: float, end: float) -> Op:
    return Op("k", READ, value, start, end)  # type: ignore[arg-type]


def rm(value: object, start: float, end: float, ok: bool = True) -> Op:
    """A DELETE of the version the write of ``value`` made."""
    return Op("k", REMOVE, value, start, end if ok else math.inf, ok)  # type: ignore[arg-type]


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


def test_a_retried_write_may_take_effect_at_each_attempt_within_its_call() -> None:
    # The failure of 2026-12-07: writes of 1 and 2 run together; reads see
    # 1, then 2, then 1 again. Flicker, unless the write of 1 was sent twice
    # (at least once): its earlier attempt, then 2, then its resend.
    history = [w(1, 0, 10), w(2, 1, 8), r(1, 2, 3), r(2, 4, 5), r(1, 6, 7)]
    assert not check(history).ok
    assert check([*history, echo_of(history[0])]).ok
    # The call's own write still must take effect: an echo excuses no lost write.
    assert not check([w(1, 0, 10), echo_of(w(1, 0, 10)), r(None, 11, 12)]).ok
    # But only within its call: after the call ended and another write came,
    # the value may not come back.
    late = [w(1, 0, 3), w(2, 4, 5), r(2, 6, 7), r(1, 8, 9)]
    assert not check([*late, echo_of(late[0])]).ok


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


def test_an_unknown_write_seen_by_a_read_took_effect_before_that_read() -> None:
    # Seen: it must go before the read that saw it, so a read that completed
    # before that write began cannot have seen it.
    assert not check([w(1, 0, 1), r(2, 2, 3), w(2, 4, 5, ok=False)]).ok
    # Never seen, it is as if it had not happened, wherever it is.
    assert check([w(1, 0, 1), w(2, 2, 3, ok=False), r(1, 4, 5), w(3, 6, 7), r(3, 8, 9)]).ok
    # An unknown delete may still land late or never.
    assert check([w(1, 0, 1), w(None, 2, 3, ok=False), r(1, 4, 5), r(None, 6, 7)]).ok


def _brute(ops: list[Op]) -> bool:
    """Reference: try every subset of the unknown writes and every order (a
    history with removes: the key's list of versions)."""
    import itertools

    unknown = [o for o in ops if not o.ok]
    known = [o for o in ops if o.ok]
    for k in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, k):
            picked = known + list(chosen)
            for order in itertools.permutations(picked):
                if any(
                    b.completed < a.invoked for i, a in enumerate(order) for b in order[i + 1 :]
                ):
                    continue
                held: list[object] = []
                good = True
                for o in order:
                    if o.kind == WRITE:
                        held.append(o.value)
                    elif o.kind == REMOVE:
                        held = [v for v in held if v is None or v != o.value]
                    elif o.value != (held[-1] if held else None):
                        good = False
                        break
                if good:
                    return True
    return False


@st.composite
def concurrent_histories(draw: st.DrawFn) -> list[Op]:
    """Small overlapping histories, unknown writes included (values unique but
    for deletes, as the robustness workload writes them)."""
    ops: list[Op] = []
    for i in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, 10))
        end = start + draw(st.integers(0, 4))
        kind = draw(st.sampled_from([WRITE, WRITE, READ]))
        if kind == WRITE:
            value = None if draw(st.integers(0, 4)) == 0 else 10 + i
            ops.append(w(value, start, end, ok=draw(st.integers(0, 3)) != 0))
        else:
            ops.append(r(draw(st.sampled_from([None, 10, 11, 12, 13])), start, end))
    return ops


@given(concurrent_histories())
def test_the_checker_agrees_with_brute_force(ops: list[Op]) -> None:
    assert check(ops).ok == _brute(ops)


def test_removing_the_current_version_uncovers_the_one_before() -> None:
    assert check([w(1, 0, 1), w(2, 2, 3), rm(2, 4, 5), r(1, 6, 7)]).ok
    assert check([w(1, 0, 1), w(None, 2, 3), w(2, 4, 5), rm(2, 6, 7), r(None, 8, 9)]).ok
    assert check([w(1, 0, 1), w(2, 2, 3), rm(1, 4, 5), r(2, 6, 7), rm(2, 8, 9), r(None, 10, 11)]).ok
    # Removing a noncurrent version changes no read.
    assert not check([w(1, 0, 1), w(2, 2, 3), rm(1, 4, 5), r(None, 6, 7)]).ok


def test_a_removed_version_never_comes_back() -> None:
    assert not check([w(1, 0, 1), w(2, 2, 3), rm(2, 4, 5), r(2, 6, 7)]).ok
    # Once a read saw it gone, a later one may not see it again (a remove
    # still in flight may have landed or not, but once).
    history = [w(1, 0, 1), w(2, 2, 3), rm(2, 4, 20), r(1, 5, 6)]
    assert check(history).ok
    assert not check([*history, r(2, 7, 8)]).ok
    assert check([w(1, 0, 1), w(2, 2, 3), rm(2, 4, 5, ok=False), r(2, 6, 7), r(1, 8, 9)]).ok


def test_a_remove_is_not_taken_for_a_read_of_the_version_it_names() -> None:
    # Hypothesis found it: the remove of version 10, done before a write of
    # 10 of unknown outcome began, was counted as a read that returned 10,
    # so the write was made to have happened before it was invoked.
    assert check([w(10, 1, 2, ok=False), rm(10, 0, 0), r(None, 1, 1)]).ok


@st.composite
def version_histories(draw: st.DrawFn) -> list[Op]:
    """Small overlapping histories of a versioned key: writes (unique values,
    delete markers), reads, and removes of written values."""
    ops: list[Op] = []
    written: list[int] = []
    for i in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, 10))
        end = start + draw(st.integers(0, 4))
        kind = draw(st.sampled_from([WRITE, WRITE, READ, REMOVE] if written else [WRITE, READ]))
        ok = draw(st.integers(0, 3)) != 0
        if kind == WRITE:
            value = None if draw(st.integers(0, 4)) == 0 else 10 + i
            if value is not None:
                written.append(value)
            ops.append(w(value, start, end, ok=ok))
        elif kind == REMOVE:
            ops.append(rm(draw(st.sampled_from(written)), start, end, ok=ok))
        else:
            ops.append(r(draw(st.sampled_from([None, 10, 11, 12, 13])), start, end))
    return ops


@given(version_histories())
def test_the_versions_checker_agrees_with_brute_force(ops: list[Op]) -> None:
    assert check(ops).ok == _brute(ops)


def cdel(expect: object, start: float, end: float, ok: bool = True) -> Op:
    """A DELETE with If-Match: it goes only where the key holds ``expect``."""
    return Op("k", WRITE, None, start, end if ok else math.inf, ok, expect=expect)  # type: ignore[arg-type]


def test_a_conditional_delete_goes_only_where_its_condition_holds() -> None:
    assert check([w(1, 0, 1), cdel(1, 2, 3), r(None, 4, 5)]).ok
    assert check([w(1, 0, 1), cdel(PRESENT, 2, 3), r(None, 4, 5)]).ok
    # Acknowledged while the key held another value, or none: not linearizable.
    assert not check([w(1, 0, 1), w(2, 2, 3), cdel(1, 4, 5)]).ok
    assert not check([w(1, 0, 1), w(None, 2, 3), cdel(PRESENT, 4, 5)]).ok
    # Concurrent with the write it names: it may go after it.
    assert check([w(1, 0, 1), w(2, 2, 10), cdel(2, 3, 4), r(None, 11, 12)]).ok
    # A write of unknown outcome no read saw may be what it found.
    assert check([w(None, 0, 1), w(7, 2, 3, ok=False), cdel(PRESENT, 4, 5)]).ok


def test_a_long_history_with_many_unknown_writes_is_checked() -> None:
    # 8 clients on one key, 3000 operations, one write in ten failing with
    # its outcome unknown (as node kills make them): a real register's history.
    import random

    rnd = random.Random(7)
    ops: list[Op] = []
    value: int | None = None
    t = 0.0
    for i in range(3000):
        t += 1
        start, end = t - rnd.random() * 6, t + rnd.random() * 6
        if rnd.random() < 0.5:
            lost = rnd.random() < 0.1
            if not lost or rnd.random() < 0.5:
                value = i if i % 7 else None
            ops.append(w(i if i % 7 else None, start, t, ok=not lost))
        else:
            ops.append(r(value, t, end))
    assert check(ops).ok
