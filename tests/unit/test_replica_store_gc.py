"""When a node's garbage collector looks: at once after start, then only when
the first superseded body falls due (an idle node does not scan every few
seconds), on a real RocksDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from node.replica_store import ReplicaStore
from tristore.config import NodeSection
from tristore.model import Change, ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


def _version(physical_ms: int, data_id: bytes) -> ObjectVersion:
    stamp = Stamp(physical_ms, 0, 1, 1)
    return ObjectVersion("b", "k", stamp, data_id=data_id, size=10, null_version=True)


def test_the_collector_sleeps_until_the_first_body_falls_due(tmp_path: Path) -> None:
    now = [1_000_000]
    cfg = NodeSection(gc_grace_s=600.0, stage_ttl_s=3600.0)

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", cfg, lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            assert store.gc_wait_s(5.0) == 5.0  # after start: look at once
            assert await store.collect_garbage() == 0
            assert store.gc_wait_s(5.0) == 600.0  # nothing held: a new entry's grace
            await store.commit(Change.of(_version(1_000, b"a" * 16)))
            await store.commit(Change.of(_version(2_000, b"b" * 16)))  # supersedes a
            now[0] += 100_000
            assert await store.collect_garbage() == 0
            assert store.gc_wait_s(5.0) == pytest.approx(500.0)  # a's grace ends then
            now[0] += 500_000
            assert store.gc_wait_s(5.0) == 5.0
            assert await store.collect_garbage() == 1
            assert store.gc_wait_s(5.0) == 600.0
        finally:
            store.close()

    asyncio.run(go())


def test_a_refused_conditional_change_does_not_leave_a_held_body_to_the_collector(
    tmp_path: Path,
) -> None:
    """A record-only change committed to a fallback stages the version's body
    there first when the fallback seems to lack it (Quorum.give_bodies); two
    such changes at once may both stage it, and the one the fallback refuses
    (a conditional change that lost) left its staging marker behind: after
    stage_ttl_s the collector took the body as abandoned, though the other
    change's record holds it."""
    now = [1_000_000]
    cfg = NodeSection(gc_grace_s=600.0, stage_ttl_s=3600.0)
    data_id = b"d" * 16

    async def body() -> AsyncIterator[tuple[int, bytes]]:
        yield 0, b"0123456789"

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", cfg, lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            first = _version(1_000, data_id)
            await store.stage(data_id, body())
            await store.commit(Change.of(first))
            tagged = replace(
                first, stamp=Stamp(2_000, 0, 1, 1), version_stamp=first.stamp, tags={"t": "1"}
            )
            await store.commit(Change.of(tagged, expect=first.stamp))
            await store.stage(data_id, body())  # the other change's copy
            lost = replace(
                first, stamp=Stamp(3_000, 0, 1, 2), version_stamp=first.stamp, tags={"t": "2"}
            )
            result = await store.commit(Change.of(lost, expect=first.stamp))
            assert result.conflict
            now[0] += 3_600_000 + 1
            assert await store.collect_garbage() == 0
            assert await store.read_chunk(data_id, 0) is not None
        finally:
            store.close()

    asyncio.run(go())
