"""Version stamps and the hybrid logical clock."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tristore.stamps import ENCODED_SIZE, ZERO, HybridClock, Stamp

pytestmark = pytest.mark.unit

stamps = st.builds(
    Stamp,
    physical_ms=st.integers(min_value=0, max_value=2**64 - 1),
    logical=st.integers(min_value=0, max_value=2**32 - 1),
    cluster_id=st.integers(min_value=0, max_value=2**16 - 1),
    node_id=st.integers(min_value=0, max_value=2**16 - 1),
)
# Stamps that collide often on their leading fields, so the tiebreaks get exercised.
close_stamps = st.builds(
    Stamp,
    physical_ms=st.integers(min_value=0, max_value=3),
    logical=st.integers(min_value=0, max_value=3),
    cluster_id=st.integers(min_value=0, max_value=3),
    node_id=st.integers(min_value=0, max_value=3),
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_order_is_physical_then_logical_then_cluster_then_node() -> None:
    ordered = [
        ZERO,
        Stamp(1, 0, 0, 0),
        Stamp(1, 0, 0, 1),
        Stamp(1, 0, 1, 0),
        Stamp(1, 1, 0, 0),
        Stamp(1, 1, 65535, 65535),
        Stamp(2, 0, 0, 0),
    ]
    assert sorted(reversed(ordered)) == ordered
    for a, b in itertools.pairwise(ordered):
        assert a < b and b > a and a != b


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(stamps)
def test_encode_decode_round_trip(s: Stamp) -> None:
    raw = s.encode()
    assert len(raw) == ENCODED_SIZE == 16
    assert Stamp.decode(raw) == s
    assert Stamp.from_version_id(s.version_id) == s
    assert len(s.version_id) == 32


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(st.one_of(stamps, close_stamps), st.one_of(stamps, close_stamps))
def test_byte_order_is_tuple_order(a: Stamp, b: Stamp) -> None:
    assert (a < b) == (a.encode() < b.encode())
    assert (a == b) == (a.encode() == b.encode())
    assert (a < b) == (a.version_id < b.version_id)  # hex keeps the order too


@pytest.mark.parametrize("vid", ["", "00", "zz" * 16, "0" * 31, "0" * 34])
def test_bad_version_ids(vid: str) -> None:
    with pytest.raises(ValueError):
        Stamp.from_version_id(vid)


def test_clock_is_strictly_monotonic() -> None:
    clock = HybridClock(cluster_id=1, node_id=2)
    seen = [clock.now() for _ in range(20_000)]  # many share a millisecond
    assert all(a < b for a, b in itertools.pairwise(seen))
    assert all(s.cluster_id == 1 and s.node_id == 2 for s in seen)


def test_clock_tracks_the_wall_clock() -> None:
    before = _now_ms()
    s = HybridClock(1, 1).now()
    assert before <= s.physical_ms <= _now_ms()
    assert s.logical == 0


def test_clock_is_monotonic_across_threads() -> None:
    clock = HybridClock(1, 1)
    per_thread: list[list[Stamp]] = [[] for _ in range(8)]

    def work(out: list[Stamp]) -> None:
        for _ in range(2_000):
            out.append(clock.now())

    threads = [threading.Thread(target=work, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [s for out in per_thread for s in out]
    assert len(set(everything)) == len(everything), "two callers got the same stamp"
    for out in per_thread:
        assert all(a < b for a, b in itertools.pairwise(out))


def test_after_a_floor_far_in_the_future() -> None:
    """A writer on a node whose clock is behind still issues a newer stamp."""
    clock = HybridClock(cluster_id=1, node_id=1)
    floor = Stamp(_now_ms() + 10 * 365 * 86_400_000, 7, 65535, 65535)
    s = clock.after(floor)
    assert s > floor
    # The same physical time and logical+1: the ids of the floor are larger,
    # so only a higher logical counter makes the stamp greater.
    assert (s.physical_ms, s.logical) == (floor.physical_ms, floor.logical + 1)
    # The clock stays ahead of the floor afterwards.
    later = clock.now()
    assert later > s > floor


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(close_stamps, st.lists(close_stamps, max_size=20))
def test_after_is_above_the_floor_and_every_earlier_stamp(floor: Stamp, seen: list[Stamp]) -> None:
    clock = HybridClock(cluster_id=0, node_id=0, offset_ms=-_now_ms())  # wall clock near 0
    issued = []
    for s in seen:
        clock.observe(s)
        issued.append(clock.now())
    s = clock.after(floor)
    assert s > floor
    assert all(s > earlier for earlier in issued)


def test_after_a_floor_in_the_past_uses_the_wall_clock() -> None:
    clock = HybridClock(1, 1)
    s = clock.after(Stamp(1000, 5, 9, 9))
    assert s.physical_ms >= _now_ms() - 1000
    assert s.logical == 0


def test_observe_never_moves_the_clock_back() -> None:
    clock = HybridClock(1, 1)
    first = clock.now()
    clock.observe(Stamp(1, 0, 0, 0))
    assert clock.now() > first


@pytest.mark.parametrize("offset_ms", [60_000, -60_000, 3_600_000])
def test_offset_skews_the_wall_clock(offset_ms: int) -> None:
    clock = HybridClock(1, 1, offset_ms=offset_ms)
    before = _now_ms()
    wall = clock.wall_ms()
    after = _now_ms()
    assert before + offset_ms <= wall <= after + offset_ms
    assert before + offset_ms <= clock.now().physical_ms <= _now_ms() + offset_ms


def test_skewed_clocks_still_order_causally() -> None:
    """A node 5 s behind that has seen a stamp from a node 5 s ahead issues a
    greater stamp (its physical part jumps to the other node's time)."""
    ahead = HybridClock(1, 1, offset_ms=5_000)
    behind = HybridClock(1, 2, offset_ms=-5_000)
    s1 = ahead.now()
    s2 = behind.after(s1)
    assert s2 > s1
    assert s2.physical_ms == s1.physical_ms


def test_zero_is_the_smallest_stamp() -> None:
    assert ZERO.encode() == b"\x00" * 16
    assert HybridClock(0, 0).now() > ZERO
