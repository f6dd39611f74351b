"""A merge commit of a new version below the record of a conditional write
(``CommitResult.below_condition``), on a real RocksDB store. The key's home
in its first AZ took the conditional write (If-Match of the record ONE) and
keeps, in that record, the record its condition read; a plain write stamped
after ONE but below the conditional one, getting there later, is told, so
that its coordinator stamps it again above (node/protocol.py
``_merge_above_older``): else both are acknowledged and the plain write is
lost below a write whose condition it should have failed."""

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
#: A plain write, stamped after ONE, sent before the conditional one.
PLAIN = ObjectVersion("b", "k", Stamp(2_000, 0, 1, 2), inline=b"two", size=3)
#: A conditional write expecting ONE, stamped above PLAIN.
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
        result = await store.commit(_merge(PLAIN))
        assert result == CommitResult(True, COND.stamp, below_condition=True)
        assert (await store.read_meta("b", "k")) == COND  # the head stays: stamps only grow
        # Stamped again above (a new version, its try removed): current.
        again = replace(PLAIN, stamp=Stamp(4_000, 0, 1, 4), removed=(PLAIN.stamp,))
        assert (await store.commit(_merge(again))) == CommitResult(True, again.stamp)
        assert (await store.read_meta("b", "k")) == again
        assert not (await store.read_versions("b", "k", PLAIN.stamp))[0]

    _run(tmp_path, body)


def test_writes_the_condition_does_not_order_are_not_told(tmp_path: Path) -> None:
    """Last writer wins as before for a write stamped at or before the
    record the condition read (the conditional write read it, or it came
    before), for a write sent to a fallback (only the home decided the
    conditional write), and below a plain write or a create a PUT tries."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(ONE))
        await store.commit(Change.of(COND, expect=ONE.stamp, condition=ONE.stamp))
        early = replace(PLAIN, stamp=Stamp(500, 0, 1, 5))
        assert (await store.commit(_merge(early))) == CommitResult(True, COND.stamp)
        assert (await store.commit(_merge(PLAIN), hint_for="n9")) == CommitResult(True, COND.stamp)
        for key, head in (
            ("plain", Change.of(replace(COND, key="plain"))),
            ("create", Change.of(replace(COND, key="create"), expect=ZERO)),
        ):
            await store.commit(head)
            assert (await store.commit(_merge(replace(PLAIN, key=key)))) == CommitResult(
                True, COND.stamp
            )

    _run(tmp_path, body)


def test_if_none_match_orders_every_write_after_it(tmp_path: Path) -> None:
    """If-None-Match (the condition read nothing: ZERO): any plain write
    below it that gets there after it is told."""

    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(COND, expect=ZERO, condition=ZERO))
        result = await store.commit(_merge(PLAIN))
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
