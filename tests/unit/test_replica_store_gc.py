"""When a node's garbage collector looks: at once after start, then only when
the first superseded body falls due (an idle node does not scan every few
seconds), on a real RocksDB."""

from __future__ import annotations

import asyncio
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
