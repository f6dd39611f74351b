"""A change whose versions must be new (``Change.new_versions``: a replica's
noncurrent version) on a real RocksDB store: refused where a record of the
version is held, here or (as its AZ answers) on another node of the AZ,
leaving the record held and the body it names alone; taken otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from node.replica_store import ReplicaStore
from tristore import convert
from tristore.config import NodeSection
from tristore.model import Change, ObjectVersion
from tristore.stamps import ZERO, Stamp

pytestmark = pytest.mark.unit

CFG = NodeSection(gc_grace_s=600.0, stage_ttl_s=3600.0)
VSTAMP = Stamp(1_000, 0, 9, 1)  # a version another cluster (id 9) wrote


def _copy(record_ms: int, data_id: bytes, tags: dict[str, str], meta_ms: int) -> ObjectVersion:
    """A replica of version VSTAMP, as one apply of it records it here."""
    return ObjectVersion(
        "b",
        "k",
        Stamp(record_ms, 0, 1, 1),
        version_stamp=VSTAMP,
        data_id=data_id,
        chunk_size=10,
        size=10,
        etag="0" * 32,
        tags=tags,
        meta_stamp=Stamp(meta_ms, 0, 9, 1),
        replication_status="REPLICA",
    )


def _added(v: ObjectVersion) -> Change:
    return Change(v.bucket, v.key, v.stamp, versions=(v,), created=True, new_versions=True)


async def _body() -> AsyncIterator[tuple[int, bytes]]:
    yield 0, b"0123456789"


def test_a_second_copy_of_a_held_version_is_refused_and_the_held_body_kept(
    tmp_path: Path,
) -> None:
    """Two applies of one noncurrent version: the copy whose tags changed
    last commits first, the older copy (a later record stamp) second. It
    was stored over the first (a version record keeps the newest record
    stamp): its older tags won, and the first copy's body went to the
    collector. Now it is refused; its own staged body is collected as
    abandoned, the held one stays."""
    now = [1_000_000]

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", CFG, lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            current = ObjectVersion("b", "k", Stamp(5_000, 0, 1, 1), inline=b"x", size=1)
            await store.commit(Change.of(current))
            newer, older = b"n" * 16, b"o" * 16
            await store.stage(newer, _body())
            await store.stage(older, _body())
            first = _copy(6_000, newer, {"t": "new"}, meta_ms=1_500)
            assert not (await store.commit(_added(first))).conflict
            late = _copy(7_000, older, {}, meta_ms=1_000)
            result = await store.commit(_added(late))
            assert result.conflict and not result.applied
            [held], _ = await store.read_versions("b", "k", VSTAMP)
            assert held.tags == {"t": "new"} and held.data_id == newer
            assert (await store.read_meta("b", "k")) == current  # the head is untouched
            now[0] += 3_600_000 + 1  # past the grace and the staging's time to live
            assert await store.collect_garbage() == 1  # the refused copy's staging
            assert await store.read_chunk(newer, 0) is not None
            assert await store.read_chunk(older, 0) is None
        finally:
            store.close()

    asyncio.run(go())


def test_a_copy_is_refused_when_another_node_of_the_az_holds_the_version(
    tmp_path: Path,
) -> None:
    """The node deciding hears its AZ first (a fallback may hold the
    version, added while this home was away); a version new to the AZ is
    taken, a removed one stays removed, and without ``new_versions`` the AZ
    is not asked."""
    asked: list[tuple[str, str, list[Stamp]]] = []
    held_elsewhere = [Stamp(5_000, 0, 2, 1)]  # the newest record of them the AZ holds

    async def hear(bucket: str, key: str, vstamps: Sequence[Stamp]) -> Stamp:
        asked.append((bucket, key, list(vstamps)))
        return held_elsewhere[0]

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", CFG, lambda: 1_000_000)
        store.hear_az_versions = hear
        store.start(asyncio.get_running_loop())
        try:
            copy = replace(_copy(6_000, b"", {}, meta_ms=1_000), inline=b"0123456789")
            assert (await store.commit(_added(copy))).conflict
            assert await store.read_versions("b", "k", VSTAMP) == ([], False)
            assert asked == [("b", "k", [VSTAMP])]
            held_elsewhere[0] = ZERO
            assert not (await store.commit(_added(copy))).conflict
            assert (await store.read_versions("b", "k", VSTAMP))[0] == [copy]
            await store.commit(Change("b", "k", Stamp(8_000, 0, 1, 1), removed=(VSTAMP,)))
            again = replace(copy, stamp=Stamp(9_000, 0, 1, 1))
            assert not (await store.commit(_added(again))).conflict
            assert await store.read_versions("b", "k", VSTAMP) == ([], True)
            asked.clear()
            await store.commit(replace(_added(again), new_versions=False))
            assert asked == []
        finally:
            store.close()

    asyncio.run(go())


def test_new_versions_crosses_the_wire_and_makes_a_change_conditional() -> None:
    change = _added(_copy(6_000, b"d" * 16, {}, meta_ms=1_000))
    assert change.conditional and not replace(change, new_versions=False).conditional
    assert convert.change_from_pb(convert.change_to_pb(change)) == change
