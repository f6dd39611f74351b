"""WitnessFleet.check_agreed's and WitnessFleet.record's majority logic, with
members that answer from the event loop (what a witness answers is all they
look at); that a member that looks hung is asked last by checks; and that a
check or a record leaves nothing for the cyclic garbage collector: under load
the collector freed about 50,000 such objects at a time and stopped a node's
event loop for 50-90 ms."""

from __future__ import annotations

import asyncio
import gc
import types
from collections.abc import Iterator

import pytest

from node.witness_client import UNKNOWN, WitnessFleet
from tristore.errors import QuorumUnavailable
from tristore.loops import LoopBound
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


class _Member:
    """Answers each check with the next of ``answers`` (bytes, or an
    exception to fail with, or None: never answers); each record with
    ``took`` (True took it, False refused it, an exception, None)."""

    def __init__(
        self, answers: Iterator[bytes | Exception | None], took: bool | Exception | None = None
    ) -> None:
        self.answers = answers
        self.took = took
        self.spec = types.SimpleNamespace(name="w", group=0)
        self.asked = 0
        self.hung = False
        self.records: list[tuple[bytes, int]] = []

    def lagging(self, now: float) -> bool:
        return self.hung

    def _answer(self, answer: object) -> asyncio.Future[object]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[object] = loop.create_future()
        if isinstance(answer, Exception):
            loop.call_soon(fut.set_exception, answer)
        elif answer is not None:
            loop.call_soon(fut.set_result, answer)
        return fut

    def check(self, wkey: bytes) -> asyncio.Future[object]:
        self.asked += 1
        return self._answer(next(self.answers))

    def record(self, wkey: bytes, stamp: bytes, incarnation: int) -> asyncio.Future[object]:
        self.records.append((stamp, incarnation))
        return self._answer(self.took)


def _recorder(took: bool | Exception | None) -> _Member:
    return _Member(_always(UNKNOWN), took)


def _fleet(members: list[_Member], hedge_s: float = 0.05) -> WitnessFleet:
    fleet = WitnessFleet.__new__(WitnessFleet)
    fleet.groups = [members]  # type: ignore[list-item]
    fleet._orders = [members]  # type: ignore[list-item]
    fleet._hedge_s = hedge_s
    fleet._loop = LoopBound()
    return fleet


def _always(answer: bytes | Exception | None) -> Iterator[bytes | Exception | None]:
    while True:
        yield answer


S1 = Stamp(1_000, 0, 1, 1)
S2 = Stamp(2_000, 0, 1, 1)


def test_majorities_hedges_and_failures() -> None:
    async def go() -> None:
        a, b, c = (_Member(_always(S1.encode())) for _ in range(3))
        assert await _fleet([a, b, c]).check_agreed("bk", "k") == (S1, True)
        assert (a.asked, b.asked, c.asked) == (1, 1, 0)  # a bare majority

        # Different stamps: the larger, not agreed.
        a, b = _Member(_always(S1.encode())), _Member(_always(S2.encode()))
        assert await _fleet([a, b, _Member(_always(None))]).check_agreed("bk", "k") == (S2, False)

        # Unknown anywhere: unknown at once.
        unknown = _Member(_always(UNKNOWN))
        assert await _fleet([unknown, a, a]).check_agreed("bk", "k") == (None, False)

        # A failed member: the next is asked.
        down, ok1, ok2 = (
            _Member(_always(ConnectionError("down"))),
            _Member(_always(S1.encode())),
            _Member(_always(S1.encode())),
        )
        assert await _fleet([down, ok1, ok2]).check_agreed("bk", "k") == (S1, True)
        assert ok2.asked == 1

        # A member that never answers: after the hedge, the next is asked.
        hung, ok1, ok2 = (
            _Member(_always(None)),
            _Member(_always(S1.encode())),
            _Member(_always(S1.encode())),
        )
        assert await _fleet([hung, ok1, ok2], hedge_s=0.05).check_agreed("bk", "k") == (S1, True)
        assert ok2.asked == 1

        # Too few can answer: unknown.
        downs = [_Member(_always(ConnectionError("down"))) for _ in range(2)]
        assert await _fleet([*downs, ok1]).check_agreed("bk", "k") == (None, False)

    asyncio.run(go())


def test_a_check_leaves_no_garbage_cycles() -> None:
    async def go() -> int:
        fleet = _fleet([_Member(_always(S1.encode())) for _ in range(3)])
        await fleet.check_agreed("bk", "warm")
        gc.collect()
        gc.disable()
        try:
            for i in range(200):
                assert await fleet.check_agreed("bk", f"k{i}") == (S1, True)
            return gc.collect()
        finally:
            gc.enable()

    assert asyncio.run(go()) == 0


def test_a_member_that_looks_hung_or_down_is_asked_last() -> None:
    async def go() -> None:
        hung, ok1, ok2 = (
            _Member(_always(None)),  # never answers
            _Member(_always(S1.encode())),
            _Member(_always(S1.encode())),
        )
        hung.hung = True  # a message of ours has waited on it past the hedge
        fleet = _fleet([hung, ok1, ok2], hedge_s=60)
        for i in range(10):
            # Not the hedge's wait (60 s here): the member is not asked at all.
            async with asyncio.timeout(5):
                assert await fleet.check_agreed("bk", f"k{i}") == (S1, True)
        assert (hung.asked, ok1.asked, ok2.asked) == (0, 10, 10)

    asyncio.run(go())


def test_a_record_goes_to_every_member_and_a_majority_decides() -> None:
    fence = (7, 8, 9)

    async def record(members: list[_Member]) -> bool:
        return await _fleet(members).record("bk", "k", S1, fence)

    async def go() -> None:
        a, b, c = _recorder(True), _recorder(True), _recorder(True)
        assert await record([a, b, c]) is True
        # Every member, each under its own incarnation (so any majority a
        # later check asks knows the key).
        assert (a.records, b.records, c.records) == (
            [(S1.encode(), 7)],
            [(S1.encode(), 8)],
            [(S1.encode(), 9)],
        )
        # One failed, refused or hung: the other two are a majority.
        for odd in (ConnectionError("down"), False, None):
            assert await record([_recorder(odd), _recorder(True), _recorder(True)]) is True, odd
        # Refused by a majority (witnesses restarted since the fence): False.
        assert await record([_recorder(False), _recorder(True), _recorder(False)]) is False
        # Too few answer at all.
        down = ConnectionError("down")
        with pytest.raises(QuorumUnavailable, match="no majority of witness group"):
            await record([_recorder(down), _recorder(True), _recorder(down)])

    asyncio.run(go())


def test_a_record_leaves_no_garbage_cycles() -> None:
    async def go() -> int:
        fleet = _fleet([_recorder(True) for _ in range(3)])
        await fleet.record("bk", "warm", S1, (1, 1, 1))
        gc.collect()
        gc.disable()
        try:
            for i in range(200):
                assert await fleet.record("bk", f"k{i}", S1, (1, 1, 1)) is True
            return gc.collect()
        finally:
            gc.enable()

    assert asyncio.run(go()) == 0
