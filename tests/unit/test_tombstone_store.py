"""Removal markers in the store (node/replica_store.py): dated, counted, found
by age in batches, and forgotten only while the version stays away."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from node.replica_store import ReplicaStore
from tristore.config import NodeSection
from tristore.model import Change, ObjectVersion
from tristore.stamps import ZERO, Stamp

pytestmark = pytest.mark.unit


def _version(i: int) -> ObjectVersion:
    return ObjectVersion("b", "k", Stamp(1_000 + i, 0, 1, 1), inline=b"x", size=1)


def test_markers_are_dated_counted_listed_and_dropped(tmp_path: Path) -> None:
    now = [5_000]

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            vs = [_version(i) for i in range(4)]
            for v in vs:
                await store.commit(Change.of(v))
            for v in vs[:3]:  # removed at 5000, 6000, 7000
                await store.commit(Change("b", "k", v.stamp, removed=(v.vstamp,)))
                now[0] += 1_000
            assert store.tombstones == 3
            assert REGISTRY.get_sample_value("tristore_node_tombstones") == 3
            # Removed before 6500: the first two, one batch of one at a time.
            first, cursor = await store.old_tombstones(b"", 1, 6_500)
            assert [s for _, _, s, _ in first] == [vs[0].vstamp.encode()]
            rest, end = await store.old_tombstones(cursor, 10, 6_500)
            assert [s for _, _, s, _ in rest] == [vs[1].vstamp.encode()] and end == b""
            # Dropped once; a marker changed since it was seen is kept.
            (bucket, key, vstamp, seen) = first[0]
            assert await store.drop_tombstone(bucket, key, vstamp, seen)
            assert not await store.drop_tombstone(bucket, key, vstamp, seen)  # gone already
            (bucket, key, vstamp, _seen) = rest[0]
            assert not await store.drop_tombstone(bucket, key, vstamp, b"\x01")
            assert store.tombstones == 2
            # The marker still refuses a late copy of its version.
            await store.commit(Change("b", "k", vs[1].stamp, versions=(vs[1],)))
            got, removed = await store.read_versions("b", "k", vs[1].vstamp)
            assert got == [] and removed
        finally:
            await asyncio.to_thread(store.close)

    asyncio.run(go())


def test_removals_are_indexed_counted_and_dropped_only_while_unchanged(tmp_path: Path) -> None:
    """The current record an unversioned DELETE leaves is indexed (and counted
    as a tombstone) until the key is written again or the removal is dropped;
    a data directory from before the index is indexed when it opens."""
    now = [5_000]
    live = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"x", size=1, null_version=True)
    gone = ObjectVersion("b", "k", Stamp(2_000, 0, 1, 1), deleted=True, null_version=True)
    other = ObjectVersion("b", "o", Stamp(2_500, 0, 1, 1), deleted=True, null_version=True)

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            await store.commit(Change.of(live))
            assert store.tombstones == 0
            await store.commit(Change.of(gone))
            await store.commit(Change.of(other))
            assert store.tombstones == 2
            old, end = await store.old_removals(b"", 10, 2_200)
            assert old == [("b", "k", gone.stamp.encode())] and end == b""
            # Written again: no longer a removal.
            again = replace(live, stamp=Stamp(3_000, 0, 1, 1))
            await store.commit(Change.of(again))
            assert store.tombstones == 1
            assert not await store.drop_removal("b", "k", gone.stamp.encode(), [])
            # A hint held for the key keeps it; without, it goes.
            hinted = replace(other, stamp=Stamp(2_600, 0, 1, 1))
            await store.commit(Change.of(hinted), hint_for="n2")
            assert not await store.drop_removal("b", "o", hinted.stamp.encode(), ["n2"])
            assert await store.drop_removal("b", "o", hinted.stamp.encode(), ["n3"])
            assert store.tombstones == 0
            assert await store.read_meta("b", "o") is None
        finally:
            await asyncio.to_thread(store.close)

    asyncio.run(go())
    # An older data directory: the index is made when it opens.

    async def reopen() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            await store.commit(Change.of(replace(gone, stamp=Stamp(4_000, 0, 1, 1))))
            store.db.delete(b"r" + b"b\x00k")
            store.db.delete(b"mremoval_index")
        finally:
            await asyncio.to_thread(store.close)
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: now[0])
        try:
            assert store.tombstones == 1
            assert store.db.get(b"r" + b"b\x00k") is not None
        finally:
            store.close()

    asyncio.run(reopen())


def test_a_create_of_a_version_removed_here_is_refused(tmp_path: Path) -> None:
    """A replica applied to a key this cluster no longer holds any record of
    is tried as a create (Protocol._write_replica): refused where the marker
    of that very version's removal is still held (its key's removal record
    collected first), so a late send never brings a removed version back;
    another version of the key is created as usual."""
    now = [5_000]
    vstamp = Stamp(1_000, 0, 9, 1)  # a version another cluster (id 9) wrote
    replica = ObjectVersion(
        "b", "k", Stamp(1_500, 0, 1, 1), version_stamp=vstamp, inline=b"x", size=1
    )
    removal = ObjectVersion("b", "k", Stamp(2_000, 0, 1, 1), deleted=True, removed=(vstamp,))

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            await store.commit(Change.of(replica, expect=ZERO, created=True))
            await store.commit(Change.of(removal))
            assert await store.drop_removal("b", "k", removal.stamp.encode(), [])
            assert await store.read_meta("b", "k") is None
            late = replace(replica, stamp=Stamp(3_000, 0, 1, 1))
            result = await store.commit(Change.of(late, expect=ZERO, created=True))
            assert result.conflict and not result.applied
            got, removed = await store.read_versions("b", "k", vstamp)
            assert got == [] and removed
            assert await store.read_meta("b", "k") is None
            other = ObjectVersion("b", "k", Stamp(3_500, 0, 1, 1), inline=b"y", size=1)
            assert (await store.commit(Change.of(other, expect=ZERO))).applied
            assert await store.read_meta("b", "k") == other
        finally:
            await asyncio.to_thread(store.close)

    asyncio.run(go())


def test_a_record_of_a_version_removed_here_is_refused(tmp_path: Path) -> None:
    """Versions A, then B (current). A DELETE of A removes it; a DELETE of B,
    which read A as the version below it before that, makes A current again
    (a conditional write of a record of A, expecting B): refused where A's
    removal is held, so the acknowledged DELETE of A is not undone; the
    write of the tombstone that takes B's place instead is taken."""
    now = [5_000]
    a = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"a", size=1)
    b = ObjectVersion("b", "k", Stamp(2_000, 0, 1, 1), inline=b"b", size=1)

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: now[0])
        store.start(asyncio.get_running_loop())
        before = REGISTRY.get_sample_value("tristore_node_removed_version_refusals_total") or 0
        try:
            for v in (a, b):
                assert (await store.commit(Change.of(v))).applied
            # The DELETE of A: its removal, the current record (B) untouched.
            removal = Change("b", "k", Stamp(2_500, 0, 1, 1), removed=(a.stamp,))
            assert (await store.commit(removal)).applied
            promoted = replace(a, stamp=Stamp(3_000, 0, 1, 1), version_stamp=a.stamp)
            promoted = replace(promoted, removed=(b.stamp,))
            result = await store.commit(Change.of(promoted, expect=b.stamp))
            assert result.conflict and not result.applied
            assert await store.read_meta("b", "k") == b
            after = REGISTRY.get_sample_value("tristore_node_removed_version_refusals_total")
            assert after == before + 1
            tomb = ObjectVersion("b", "k", Stamp(3_500, 0, 1, 1), deleted=True, removed=(b.stamp,))
            assert (await store.commit(Change.of(tomb, expect=b.stamp))).applied
            got, _ = await store.read_versions("b", "k", None, False, 10)
            assert got == []
        finally:
            await asyncio.to_thread(store.close)

    asyncio.run(go())
