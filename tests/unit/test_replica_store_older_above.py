"""A merge commit of a new version below a record of an older version
(``CommitResult.older_above``), on a real RocksDB store: the new version is
kept as a noncurrent version, and the coordinator is told so that it stamps
it again above (node/protocol.py ``_merge_above_older``). Told only when the
current record stands for an older version than the one committed: an edit
of one (a version stamp of its own), or a removal made by deleting one.

And below the record of a conditional write (``CommitResult.below_condition``):
the key's home in its first AZ took the conditional write (If-Match of the
record ONE) and keeps, in that record, the record its condition read; a
plain write stamped after ONE but below the conditional one, getting there
later, is told, so that its coordinator stamps it again above: else both
are acknowledged and the plain write is lost below a write whose condition
it should have failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from node.replica_store import CommitResult, ReplicaStore
from tristore.config import NodeSection
from tristore.convert import change_from_pb, change_to_pb
from tristore.model import Change, ObjectVersion, evolve
from tristore.stamps import ZERO, Stamp

pytestmark = pytest.mark.unit

CFG = NodeSection(gc_grace_s=600.0, stage_ttl_s=3600.0)
ONE = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"one", size=3)
TWO = ObjectVersion("b", "k", Stamp(2_000, 0, 1, 2), inline=b"two", size=3)
#: An edit of version ONE, stamped above TWO (its clock ahead).
EDIT = evolve(ONE, stamp=Stamp(3_000, 0, 1, 3), version_stamp=ONE.stamp, tags={"t": "1"})
#: A conditional write expecting ONE, stamped above TWO (TWO, a plain
#: write stamped after ONE, sent before it, gets to the home after it).
COND = ObjectVersion("b", "k", Stamp(3_000, 0, 2, 3), inline=b"cnd", size=3)


def _merge(v: ObjectVersion) -> Change:
    return evolve(Change.of(v), merge=True)


def _run(tmp_path: Path, body: Callable[[ReplicaStore], Awaitable[None]]) -> None:
    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", CFG, lambda: 1_000_000)
        store.start(asyncio.get_running_loop())
        try:
            await body(store)
        finally:
            store.close()

    asyncio.run(go())


def test_a_new_version_below_an_edit_of_an_older_one_is_told_so(tmp_path: Path) -> None:
    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        await store.commit(Change.of(EDIT, expect=ONE.stamp))
        result = await store.commit(_merge(TWO))
        assert result == CommitResult(True, EDIT.stamp, older_above=True)
        assert (await store.read_meta("b", "k")) == EDIT  # the head stays: stamps only grow
        [kept], _ = await store.read_versions("b", "k", TWO.stamp)
        assert kept == TWO  # a version already, ready to be made current
        # Stamped again above, keeping its version: current, not told again.
        again = evolve(TWO, stamp=Stamp(4_000, 0, 1, 2), version_stamp=TWO.stamp)
        assert (await store.commit(_merge(again))) == CommitResult(True, again.stamp)
        assert (await store.read_meta("b", "k")) == again
        assert (await store.commit(_merge(TWO))) == CommitResult(True, again.stamp)

    _run(tmp_path, body)


def test_a_write_below_a_newer_version_is_not_told(tmp_path: Path) -> None:
    """Last writer wins as before: a concurrent newer version (or an edit of
    the same version) above it is no reason to go again."""

    async def body(store: ReplicaStore) -> None:
        newer = replace(TWO, stamp=Stamp(5_000, 0, 1, 2))
        await store.commit(Change.of(newer))
        assert (await store.commit(_merge(TWO))) == CommitResult(True, newer.stamp)
        same = evolve(newer, stamp=Stamp(6_000, 0, 1, 3), version_stamp=newer.stamp, tags={})
        await store.commit(Change.of(same, expect=newer.stamp))
        assert (await store.commit(_merge(newer))) == CommitResult(True, same.stamp)

    _run(tmp_path, body)


def test_a_removed_version_below_an_edit_is_not_told(tmp_path: Path) -> None:
    """A version removed here for good (a DELETE of it got here first) never
    comes back: no reason to stamp it again."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        await store.commit(Change.of(EDIT, expect=ONE.stamp))
        await store.commit(Change("b", "k", Stamp(3_500, 0, 1, 4), removed=(TWO.stamp,)))
        assert (await store.commit(_merge(TWO))) == CommitResult(True, EDIT.stamp)

    _run(tmp_path, body)


def test_a_new_version_below_the_removal_of_the_only_older_one_is_told_so(
    tmp_path: Path,
) -> None:
    """A DELETE of the key's only version (by its version id) leaves a removal
    naming it; a new version committed below that removal is newer than the
    version it stands for."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        gone = ObjectVersion("b", "k", Stamp(3_000, 0, 1, 3), deleted=True, removed=(ONE.stamp,))
        await store.commit(Change.of(gone, expect=ONE.stamp))
        result = await store.commit(_merge(TWO))
        assert result == CommitResult(True, gone.stamp, older_above=True)
        # An unversioned DELETE (no version removed) stands for itself.
        tomb = ObjectVersion("b", "k2", Stamp(3_000, 0, 1, 3), deleted=True, null_version=True)
        await store.commit(Change.of(tomb))
        plain = replace(TWO, key="k2", null_version=True)
        assert (await store.commit(_merge(plain))) == CommitResult(True, tomb.stamp)

    _run(tmp_path, body)


def test_an_edit_of_an_older_version_never_replaces_a_newer_one(tmp_path: Path) -> None:
    """The other side (``CommitResult.newer_version``): an edit of version ONE
    decided by the first AZ reaches a node where TWO got first, stamped
    above TWO. TWO stays current; the edit is kept as ONE's record."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        await store.commit(Change.of(TWO))
        result = await store.commit(Change.of(EDIT))  # as the other AZs get it: decided
        assert result == CommitResult(True, TWO.stamp, newer_version=True)
        assert (await store.read_meta("b", "k")) == TWO
        [edited], _ = await store.read_versions("b", "k", ONE.stamp)
        assert edited.tags == {"t": "1"} and edited.stamp == EDIT.stamp
        # Handed back by a fallback (a merge commit): the same.
        merged = await store.commit(_merge(evolve(EDIT, stamp=Stamp(3_500, 0, 1, 3))))
        assert merged.newer_version and (await store.read_meta("b", "k")) == TWO
        # A DELETE of TWO by its id makes ONE current again: it names TWO.
        back = evolve(EDIT, stamp=Stamp(4_000, 0, 1, 4), removed=(TWO.stamp,))
        assert (await store.commit(Change.of(back, expect=TWO.stamp))).applied
        assert (await store.read_meta("b", "k")) == back

    _run(tmp_path, body)


@pytest.mark.parametrize("wire", [False, True], ids=["local", "from-a-peer"])
def test_a_plain_write_below_a_conditional_one_is_told_so(tmp_path: Path, wire: bool) -> None:
    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        change = Change.of(COND, expect=ONE.stamp, condition=ONE.stamp)
        if wire:  # stored as a peer's message came, not encoded again
            msg = change_to_pb(change)
            assert change_from_pb(msg).condition == ONE.stamp
            await store.commit(change_from_pb(msg), wire=msg)
        else:
            await store.commit(change)
        result = await store.commit(_merge(TWO))
        assert result == CommitResult(True, COND.stamp, below_condition=True)
        assert (await store.read_meta("b", "k")) == COND  # the head stays: stamps only grow
        # Stamped again above (a new version, its try removed): current.
        again = replace(TWO, stamp=Stamp(4_000, 0, 1, 4), removed=(TWO.stamp,))
        assert (await store.commit(_merge(again))) == CommitResult(True, again.stamp)
        assert (await store.read_meta("b", "k")) == again
        assert not (await store.read_versions("b", "k", TWO.stamp))[0]

    _run(tmp_path, body)


def test_writes_the_condition_does_not_order_are_not_told(tmp_path: Path) -> None:
    """Last writer wins as before for a write stamped at or before the
    record the condition read (the conditional write read it, or it came
    before), for a write sent to a fallback (only the home decided the
    conditional write), and below a plain write or a create a PUT tries."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        await store.commit(Change.of(COND, expect=ONE.stamp, condition=ONE.stamp))
        early = replace(TWO, stamp=Stamp(500, 0, 1, 5))
        assert (await store.commit(_merge(early))) == CommitResult(True, COND.stamp)
        assert (await store.commit(_merge(TWO), hint_for="n9")) == CommitResult(True, COND.stamp)
        for key, head in (
            ("plain", Change.of(replace(COND, key="plain"))),
            ("create", Change.of(replace(COND, key="create"), expect=ZERO)),
        ):
            await store.commit(head)
            assert (await store.commit(_merge(replace(TWO, key=key)))) == CommitResult(
                True, COND.stamp
            )

    _run(tmp_path, body)


def test_if_none_match_orders_every_write_after_it(tmp_path: Path) -> None:
    """If-None-Match (the condition read nothing: ZERO): any plain write
    below it that gets there after it is told."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(COND, expect=ZERO, condition=ZERO))
        result = await store.commit(_merge(TWO))
        assert result == CommitResult(True, COND.stamp, below_condition=True)

    _run(tmp_path, body)


def test_the_conditional_write_itself_sent_again_is_not_told(tmp_path: Path) -> None:
    """Its own record, committed again as a merge (a late try finished, a
    write-back), is no write below it."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        await store.commit(Change.of(COND, expect=ONE.stamp, condition=ONE.stamp))
        assert (await store.commit(_merge(COND))) == CommitResult(True, COND.stamp)

    _run(tmp_path, body)
