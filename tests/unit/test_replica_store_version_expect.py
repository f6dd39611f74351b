"""An edit of one version's record (``Change.version_expect``: new tags, a
new ACL, a replication status of a noncurrent version) on a real RocksDB
store: taken when the record held is the one the edit was built on (or
older), refused when a newer record of the version is held, here or (as
its AZ answers) on another node of the AZ; the current record untouched."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from node.replica_store import ReplicaStore
from tristore.config import NodeSection
from tristore.model import Change, ObjectVersion
from tristore.stamps import ZERO, Stamp

pytestmark = pytest.mark.unit


def _edit(v: ObjectVersion, record_ms: int, read: Stamp, **changes: object) -> Change:
    edited = replace(v, stamp=Stamp(record_ms, 0, 1, 1), version_stamp=v.vstamp, **changes)
    return Change(v.bucket, v.key, edited.stamp, versions=(edited,), version_expect=read)


def test_an_edit_built_on_an_older_record_of_the_version_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 1_000_000)
        store.start(asyncio.get_running_loop())
        try:
            old = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"o", size=1)
            new = ObjectVersion("b", "k", Stamp(2_000, 0, 1, 1), inline=b"n", size=1)
            await store.commit(Change.of(old))
            await store.commit(Change.of(new))
            # Two edits read version `old` at its first record; the tag change wins the race.
            tags = _edit(old, 3_000, old.stamp, tags={"t": "1"})
            acl = _edit(old, 4_000, old.stamp, acl="public-read")
            assert (await store.commit(tags)).applied
            refused = await store.commit(acl)
            assert refused.conflict and not refused.applied
            [held], _ = await store.read_versions("b", "k", old.vstamp)
            assert held.tags == {"t": "1"} and held.acl == ""
            # Read again and made on top of the tag change: both stay.
            again = _edit(held, 5_000, held.stamp, acl="public-read")
            assert (await store.commit(again)).applied
            [held], _ = await store.read_versions("b", "k", old.vstamp)
            assert held.tags == {"t": "1"} and held.acl == "public-read"
            assert await store.read_meta("b", "k") == new  # the current record untouched
            # A newer record of the version on another node of the AZ refuses it too.
            store.hear_az_versions = _heard(Stamp(6_000, 0, 2, 1))
            late = _edit(held, 7_000, held.stamp, tags={"t": "2"})
            assert (await store.commit(late)).conflict
            store.hear_az_versions = _heard(ZERO)
            assert (await store.commit(late)).applied
        finally:
            await asyncio.to_thread(store.close)

    asyncio.run(go())


def _heard(stamp: Stamp):  # type: ignore[no-untyped-def]
    """What the other nodes of the AZ answer (node/hints.py versions_in_my_az)."""

    async def hear(bucket: str, key: str, vstamps: object) -> Stamp:
        return stamp

    return hear
