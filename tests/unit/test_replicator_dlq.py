"""The replicator's dead-letter queue stays bounded (replicator/state.py on a
real RocksDB): entries older than the retention go, then the oldest beyond
the cap; what is newer stays, and a count reads without loading entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replicator.state import ReplicatorState

pytestmark = pytest.mark.unit


def _entry(i: int, parked_ms: int | None) -> dict[str, object]:
    e: dict[str, object] = {
        "bucket": "b",
        "key": f"k{i:03d}",
        "version_id": f"v{i}",
        "destination": "west/b",
        "error": "AccessDenied: no",
    }
    if parked_ms is not None:
        e["parked_ms"] = parked_ms
    return e


def test_age_then_cap_oldest_first(tmp_path: Path) -> None:
    s = ReplicatorState(tmp_path / "state")
    try:
        for i, ms in enumerate([500, 100, 900, 300, 700, None]):
            s.park(_entry(i, ms))
        assert s.parked_count() == 6
        # Parked before 200 (and the entry with no time): gone by age; then
        # the oldest of the rest beyond 2.
        assert s.trim_dlq(max_entries=2, oldest_ms=200) == (2, 2)
        assert sorted(e["parked_ms"] for e in s.parked()) == [700, 900]
        assert s.trim_dlq(max_entries=2, oldest_ms=200) == (0, 0)
        assert s.parked_count() == 2
    finally:
        s.close()


def test_trimming_survives_a_reopen(tmp_path: Path) -> None:
    s = ReplicatorState(tmp_path / "state")
    for i in range(5):
        s.park(_entry(i, 1000 + i))
    s.trim_dlq(max_entries=3, oldest_ms=0)
    s.close()
    s = ReplicatorState(tmp_path / "state")
    try:
        assert [e["key"] for e in s.parked()] == ["k002", "k003", "k004"]
    finally:
        s.close()


@settings(max_examples=40, deadline=None)
@given(
    times=st.lists(st.integers(0, 1000), max_size=30),
    cap=st.integers(1, 10),
    oldest=st.integers(0, 1000),
)
def test_what_is_kept_is_the_newest_within_both_bounds(
    tmp_path_factory: pytest.TempPathFactory, times: list[int], cap: int, oldest: int
) -> None:
    s = ReplicatorState(tmp_path_factory.mktemp("dlq") / "state")
    try:
        for i, ms in enumerate(times):
            s.park(_entry(i, ms))
        aged, over = s.trim_dlq(cap, oldest)
        kept = sorted(int(str(e["parked_ms"])) for e in s.parked())
        young = sorted(ms for ms in times if ms >= oldest)
        assert kept == young[len(young) - min(cap, len(young)) :]
        assert aged == len(times) - len(young) and over == len(young) - len(kept)
        assert s.parked_count() == len(kept)
    finally:
        s.close()
