"""The change log as replicators read it: only entries awaiting replication,
from an index written in the same batch as the entry, on a real RocksDB."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import rocksdict

from node import keys, records
from node.replica_store import PENDING_FROM, ReplicaStore
from node.servicer import ReplicaServicer
from tristore.config import NodeSection
from tristore.convert import change_from_pb, change_to_pb
from tristore.errors import InvalidArgument
from tristore.model import Change, ObjectVersion
from tristore.pb import replica_pb2
from tristore.replication import COMPLETED, PENDING, key_digest, share_of
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


def _change(i: int, target: str | None, bucket: str = "b") -> Change:
    v = ObjectVersion(bucket, f"k{i}", Stamp(1_000 + i, 0, 1, 1), inline=b"x", size=1)
    if target is not None:
        v = replace(v, replication_targets={"west": target})
    return Change.of(v)


def _seqs(entries: list[tuple[int, bytes]]) -> list[int]:
    return [seq for seq, _ in entries]


def test_only_pending_entries_and_how_far_it_looked(tmp_path: Path) -> None:
    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            # seq 1..6: plain, pending, done, internal bucket pending, pending, plain
            for i, target, bucket in [
                (1, None, "b"),
                (2, PENDING, "b"),
                (3, COMPLETED, "b"),
                (4, PENDING, ".uploads"),
                (5, PENDING, "b"),
                (6, None, "b"),
            ]:
                await store.commit(_change(i, target, bucket))
            entries, scanned = await store.read_pending_log(0, 100)
            assert _seqs(entries) == [2, 5]
            assert scanned == 6
            # A full page stops at its last entry: the rest is read next time.
            entries, scanned = await store.read_pending_log(0, 1)
            assert (_seqs(entries), scanned) == ([2], 2)
            entries, scanned = await store.read_pending_log(2, 1)
            assert (_seqs(entries), scanned) == ([5], 5)
            assert await store.read_pending_log(5, 10) == ([], 6)
            # Nothing pending after 5: the wait ends for want of one, and a
            # plain commit does not end it; a pending one does.
            assert not await store.wait_for_log(5, 0.05, pending_only=True)
            assert await store.wait_for_log(5, 0.05)  # seq 6 exists
            waiter = asyncio.ensure_future(store.wait_for_log(6, 5.0, pending_only=True))
            plain = asyncio.ensure_future(store.wait_for_log(6, 5.0))
            await asyncio.sleep(0)
            asleep = store._pending_grown
            assert asleep is not None
            await store.commit(_change(7, None))
            assert await asyncio.wait_for(plain, 5.0)
            await asyncio.sleep(0)
            assert not waiter.done()
            # A commit with nothing awaiting replication leaves the replicators'
            # long polls asleep: not woken to look and wait again.
            assert store._pending_grown is asleep and not asleep.done()
            await store.commit(_change(8, PENDING))
            assert await asyncio.wait_for(waiter, 5.0)
            assert _seqs((await store.read_pending_log(6, 10))[0]) == [8]
        finally:
            store.close()

    asyncio.run(go())


def _share(i: int) -> int:
    return share_of(key_digest("b", f"k{i}"), 2)


def test_a_replicator_is_sent_only_its_share_of_the_keys(tmp_path: Path) -> None:
    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            for i in range(1, 21):  # seq i: key k{i}, awaiting replication
                await store.commit(_change(i, PENDING))
            mine = {s: [i for i in range(1, 21) if _share(i) == s] for s in (0, 1)}
            assert mine[0] and mine[1]  # 20 keys land in both shares
            for s in (0, 1):
                entries, scanned = await store.read_pending_log(0, 100, s, 2)
                assert (_seqs(entries), scanned) == (mine[s], 20)
            # A full page stops at its last entry, as without shares.
            entries, scanned = await store.read_pending_log(0, 1, 0, 2)
            assert (_seqs(entries), scanned) == ([mine[0][0]], mine[0][0])
            # One call looks at most limit * shares index entries: a run of the
            # other share's entries is passed over in steps, never sent.
            other = mine[1][0]
            entries, scanned = await store.read_pending_log(other - 1, 1, 0, 2)
            looked = list(range(other, 21))[:2]
            got = [i for i in looked if _share(i) == 0][:1]
            assert (_seqs(entries), scanned) == (got, got[0] if got else looked[-1])
            # An index entry written before entries carried the key's digest
            # is sent to every share (the replicator checks the key itself).
            store.db.put(keys.pending_log_key(mine[1][0]), b"")
            entries, _ = await store.read_pending_log(0, 100, 0, 2)
            assert _seqs(entries) == sorted([*mine[0], mine[1][0]])
        finally:
            store.close()

    asyncio.run(go())


def test_a_long_poll_waits_past_other_shares_entries(tmp_path: Path) -> None:
    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        servicer = ReplicaServicer(store, None)  # type: ignore[arg-type]
        try:
            ours = next(i for i in range(1, 100) if _share(i) == 0)
            theirs = next(i for i in range(1, 100) if _share(i) == 1)
            await store.commit(_change(theirs, PENDING))  # seq 1
            ask = replica_pb2.ReadLogRequest(
                after=0, limit=10, wait_ms=5_000, pending_only=True, share=0, shares=2
            )
            poll = asyncio.ensure_future(servicer.ReadLog(ask, None))  # type: ignore[arg-type]
            await asyncio.sleep(0.2)
            assert not poll.done()  # seq 1 is share 1's: still waiting
            await store.commit(_change(theirs + 100, None))  # seq 2: nothing to replicate
            await store.commit(_change(ours, PENDING))  # seq 3
            resp = await asyncio.wait_for(poll, 5.0)
            assert [e.seq for e in resp.entries] == [3]
            assert resp.scanned_to == 3
            assert change_from_pb(resp.entries[0].change).key == f"k{ours}"
            # Time up with only other shares' entries: none sent, the cursor moves past them.
            again = next(
                i
                for i in range(theirs + 1, 300)
                if _share(i) == 1 and i not in (ours, theirs + 100)
            )
            await store.commit(_change(again, PENDING))  # seq 4
            quick = replica_pb2.ReadLogRequest(
                after=3, limit=10, wait_ms=100, pending_only=True, share=0, shares=2
            )
            resp = await servicer.ReadLog(quick, None)  # type: ignore[arg-type]
            assert (list(resp.entries), resp.scanned_to) == ([], 4)
            with pytest.raises(InvalidArgument):
                await servicer.ReadLog(
                    replica_pb2.ReadLogRequest(pending_only=True, share=2, shares=2),
                    None,  # type: ignore[arg-type]
                )
        finally:
            store.close()

    asyncio.run(go())


def test_a_log_from_before_the_index_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "n"

    async def write(changes: list[Change]) -> None:
        store = ReplicaStore(path, NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            for c in changes:
                await store.commit(c)
        finally:
            store.close()

    asyncio.run(write([_change(1, None), _change(2, PENDING), _change(3, None)]))
    # As a node of the previous version left it: no index, no start marker.
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
    for k in [keys.pending_log_key(2), keys.meta_key(PENDING_FROM)]:
        db.delete(k)
    db.close()

    async def read() -> None:
        store = ReplicaStore(path, NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            await store.commit(_change(4, PENDING))
            await store.commit(_change(5, None))
            # Below the index's start every entry comes (the replicator filters).
            entries, scanned = await store.read_pending_log(0, 100)
            assert (_seqs(entries), scanned) == ([1, 2, 3], 3)
            assert await store.wait_for_log(0, 0.01, pending_only=True)
            entries, scanned = await store.read_pending_log(3, 100)
            assert (_seqs(entries), scanned) == ([4], 5)
        finally:
            store.close()

    asyncio.run(read())


def _at(i: int, ms: int, target: str | None = None) -> Change:
    v = ObjectVersion("b", f"k{i}", Stamp(ms, 0, 1, 1), inline=b"x", size=1)
    if target is not None:
        v = replace(v, replication_targets={"west": target})
    return Change.of(v)


def test_trim_keeps_retention_and_what_replicators_have_not_read(tmp_path: Path) -> None:
    now = [100_000]
    cfg = NodeSection(changelog_retention_s=10.0)
    path = tmp_path / "n"

    async def go() -> None:
        store = ReplicaStore(path, cfg, lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            # seq 1..6 at 1 s apart; seq 3 and 5 await replication.
            for i in range(1, 7):
                await store.commit(_at(i, 1_000 * i, PENDING if i in (3, 5) else None))
            assert await store.first_change_ms() == 1_000
            # Nothing is older than the retention yet.
            now[0] = 10_500
            assert await store.trim_log(["r1", "r2"]) == 0
            # Entries 1..4 are older than 10 s; r2 has not read anything, so the
            # trim stops below the first entry awaiting replication (3).
            now[0] = 14_500
            store.note_reader("r1", 6)
            assert await store.trim_log(["r1", "r2"]) == 2
            assert store.trimmed_to == 2
            assert _seqs(await store.read_log(0, 100)) == [3, 4, 5, 6]
            # r2 passes 3: 3 and 4 go; 5 awaits r2 still (and is not old enough).
            store.note_reader("r2", 3)
            store.note_reader("r2", 1)  # a cursor never moves back
            assert await store.trim_log(["r1", "r2"]) == 2
            assert _seqs(await store.read_log(0, 100)) == [5, 6]
            assert _seqs((await store.read_pending_log(0, 100))[0]) == [5]
            # Without replicators only age counts.
            now[0] = 100_000
            assert await store.trim_log([]) == 2
            assert await store.read_log(0, 100) == []
            assert store.log_seq == 6  # numbering goes on
            await store.commit(_at(7, 99_000))
            assert _seqs(await store.read_log(0, 100)) == [7]
        finally:
            store.close()

    asyncio.run(go())

    async def reopened() -> None:
        store = ReplicaStore(path, cfg, lambda: now[0])
        store.start(asyncio.get_running_loop())
        try:
            assert store.trimmed_to == 6
            assert await store.first_change_ms() == 1_000, "kept though its entry is gone"
            assert _seqs(await store.read_log(0, 100)) == [7]
        finally:
            store.close()

    asyncio.run(reopened())


def test_a_trim_stops_at_its_batch(tmp_path: Path) -> None:
    async def go() -> None:
        cfg = NodeSection(changelog_retention_s=0.0, changelog_trim_batch=3)
        store = ReplicaStore(tmp_path / "n", cfg, lambda: 10_000)
        store.start(asyncio.get_running_loop())
        try:
            for i in range(1, 8):
                await store.commit(_at(i, i))
            assert [await store.trim_log([]) for _ in range(4)] == [3, 3, 1, 0]
        finally:
            store.close()

    asyncio.run(go())


def test_a_peers_commit_is_stored_as_the_change_encoded_here_would_be(tmp_path: Path) -> None:
    """A replica stores a peer's commit from the message it came as (no
    re-encoding): every value written must be what encoding the change here
    writes, the peer's ``hint_for`` aside and bodies above LOG_INLINE_MAX left
    out of the log entry, as they are on the other path."""
    small = ObjectVersion(
        "b", "small", Stamp(2_000, 0, 1, 1), inline=b"x", size=1, metadata={"m": "1"}
    )
    fat_body = b"y" * (records.LOG_INLINE_MAX + 1)
    fat = ObjectVersion("b", "fat", Stamp(2_001, 0, 1, 1), inline=fat_body, size=len(fat_body))
    fat = replace(fat, tags={"t": "v"}, replication_targets={"west": PENDING})
    older = replace(fat, stamp=Stamp(1_999, 0, 1, 1), inline=b"z", size=1)
    changes = [
        (Change.of(small), ""),
        (Change("b", "fat", fat.stamp, head=fat, versions=(older, fat)), "b2"),
    ]

    async def stored(path: Path, wire: bool) -> dict[bytes, bytes]:
        store = ReplicaStore(path, NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            for change, hint_for in changes:
                if wire:
                    msg = change_to_pb(change, hint_for)
                    await store.commit(change_from_pb(msg), hint_for, msg)
                else:
                    await store.commit(change, hint_for)
            return {k: v for k, v in store.db.items() if not k.startswith(keys.META)}
        finally:
            store.close()

    async def go() -> None:
        plain = await stored(tmp_path / "plain", wire=False)
        from_wire = await stored(tmp_path / "wire", wire=True)
        assert from_wire == plain
        entries = [records.decode_change(v) for k, v in plain.items() if k.startswith(keys.LOG)]
        assert [e.key for e in entries] == ["small", "fat"]
        assert entries[0].head == small
        assert entries[1].head is not None and entries[1].head.inline is None
        assert [v.inline for v in entries[1].versions] == [b"z", None]

    asyncio.run(go())


def test_the_log_lists_only_the_removals_this_node_made(tmp_path: Path) -> None:
    """A change removing versions for good lists, in this node's change log,
    only those it held: a write retried with a new stamp removes its earlier
    try, which may never have reached this node, and the events read from the
    log (node/events.py) must not tell of removing a version nobody saw here
    (the soak's "an event of a removal nobody made"). The marker that keeps a
    late copy out is left either way."""
    held = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"x", size=1)
    never = Stamp(1_001, 0, 1, 1)  # a try that never got here
    head = ObjectVersion("b", "k", Stamp(1_002, 0, 1, 1), inline=b"y", size=1)
    removal = Change.of(replace(head, removed=(held.stamp, never)))

    async def go(wire: bool) -> None:
        path = tmp_path / ("wire" if wire else "plain")
        store = ReplicaStore(path, NodeSection(), lambda: 5_000)
        store.start(asyncio.get_running_loop())
        try:
            await store.commit(Change.of(held))
            if wire:
                msg = change_to_pb(removal)
                await store.commit(change_from_pb(msg), "", msg)
            else:
                await store.commit(removal)
            entries = [records.decode_change(raw) for _, raw in await store.read_log(0, 10)]
            assert [e.removed for e in entries] == [(), (held.stamp,)]
            assert [e.stamp for e in entries] == [held.stamp, head.stamp]
            # The stored head keeps the change's whole list (repair reads it).
            assert entries[1].head is not None and entries[1].head.removed == (held.stamp, never)
            for vs in (held.stamp, never):
                assert store.db.get(keys.removed_key("b", "k", vs.encode())) is not None
            # The same removal again (a resend, a handoff): nothing new removed.
            await store.commit(replace(removal, stamp=Stamp(1_003, 0, 1, 1), merge=True))
            [*_, last] = [records.decode_change(raw) for _, raw in await store.read_log(0, 10)]
            assert last.removed == ()
        finally:
            store.close()

    asyncio.run(go(False))
    asyncio.run(go(True))


def test_a_removal_is_listed_where_the_version_never_was_a_try_is_not(tmp_path: Path) -> None:
    """A version created and removed while the key's first-AZ home was down
    reaches the home as its removal only (hinted handoff ships the key's
    state): the home's log lists that removal, once, though it never held
    the version, so its ObjectRemoved:Delete event comes (CI's soak: 'an
    acknowledged change never came', after the log had listed only removals
    of versions held). A write's earlier try is listed only where it was
    held, also when it comes by handoff: the stand-in's marker keeps what it
    was."""
    gone = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"x", size=1)
    try_ = Stamp(1_001, 0, 1, 1)  # an undecided try, removed by its retry
    retry = ObjectVersion("b", "k", Stamp(1_002, 0, 1, 1), inline=b"y", size=1)
    delete = Change("b", "k", Stamp(1_003, 0, 1, 1), removed=(gone.stamp,))  # by version id

    async def go(wire: bool) -> None:
        def open_(name: str) -> ReplicaStore:
            store = ReplicaStore(tmp_path / f"{name}-{wire}", NodeSection(), lambda: 5_000)
            store.start(asyncio.get_running_loop())
            return store

        async def commit(store: ReplicaStore, c: Change) -> None:
            if wire:
                msg = change_to_pb(c)
                await store.commit(change_from_pb(msg), "", msg)
            else:
                await store.commit(c)

        async def listed(store: ReplicaStore) -> list[tuple[Stamp, ...]]:
            return [records.decode_change(raw).removed for _, raw in await store.read_log(0, 20)]

        stand_in, home = open_("stand-in"), open_("home")
        try:
            # The stand-in takes all three changes; it held each version.
            await commit(stand_in, Change.of(gone))
            await commit(stand_in, Change.of(replace(retry, removed=(try_,))))
            await commit(stand_in, delete)
            assert await listed(stand_in) == [(), (), (gone.stamp,)]
            state = await stand_in.key_state("b", "k")
            assert (state.removed, state.withdrawn) == ([gone.stamp, try_], [try_])
            # Handed back as hints.py does: the key's state in one merge.
            handoff = Change(
                "b",
                "k",
                delete.stamp,
                head=state.head,
                versions=tuple(state.versions),
                removed=tuple(state.removed),
                merge=True,
                withdrawn=tuple(state.withdrawn),
            )
            await commit(home, handoff)
            assert await listed(home) == [(gone.stamp,)]
            for vs in (gone.stamp, try_):
                assert home.db.get(keys.removed_key("b", "k", vs.encode())) is not None
            # Handed back again, and the DELETE resent: nothing listed twice.
            await commit(home, replace(handoff, stamp=Stamp(1_004, 0, 1, 1)))
            await commit(home, replace(delete, stamp=Stamp(1_005, 0, 1, 1)))
            assert await listed(home) == [(gone.stamp,), (), ()]
            # The home's own state keeps the try a try (a later handoff of it).
            state = await home.key_state("b", "k")
            assert (state.removed, state.withdrawn) == ([gone.stamp, try_], [try_])
        finally:
            stand_in.close()
            home.close()

    asyncio.run(go(False))
    asyncio.run(go(True))


def test_a_new_versions_removals_are_its_tries_others_are_removals() -> None:
    """Change.of marks a current record's removals: a new version removes
    only its own earlier tries (withdrawn, and still removed for a node that
    does not know the field); a record a version DELETE made current (the
    next newest, or none) removes what the user deleted."""
    v1, v2 = (ObjectVersion("b", "k", Stamp(1_000 + i, 0, 1, 1)) for i in (1, 2))
    retried = replace(v2, stamp=Stamp(1_003, 0, 1, 1), removed=(v2.stamp,))
    assert (Change.of(retried).removed, Change.of(retried).withdrawn) == ((v2.stamp,),) * 2
    promoted = replace(v1, stamp=Stamp(1_004, 0, 1, 1), version_stamp=v1.stamp, removed=(v2.stamp,))
    assert (Change.of(promoted).removed, Change.of(promoted).withdrawn) == ((v2.stamp,), ())
    none_left = ObjectVersion("b", "k", Stamp(1_005, 0, 1, 1), deleted=True, removed=(v1.stamp,))
    assert (Change.of(none_left).removed, Change.of(none_left).withdrawn) == ((v1.stamp,), ())
    msg = change_to_pb(Change.of(retried))
    assert change_from_pb(msg).withdrawn == (v2.stamp,)


def test_a_late_copy_of_a_removed_version_is_not_logged_as_created(tmp_path: Path) -> None:
    """A copy of a version that arrives after its removal (a stand-in's
    handoff, a resend) is kept out by the removal's marker, and the log does
    not list it either: no ObjectCreated event after the ObjectRemoved one,
    nothing for a replicator to send (it listed the copy before)."""
    v = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"x", size=1)
    newer = ObjectVersion("b", "k", Stamp(1_002, 0, 1, 1), inline=b"y", size=1)

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 5_000)
        store.start(asyncio.get_running_loop())
        try:
            await store.commit(Change("b", "k", Stamp(1_001, 0, 1, 1), removed=(v.stamp,)))
            late = Change("b", "k", newer.stamp, head=newer, versions=(v, newer), merge=True)
            await store.commit(late)
            [_, entry] = [records.decode_change(raw) for _, raw in await store.read_log(0, 10)]
            assert entry.versions == (newer,) and entry.head == newer
            assert await store.read_meta("b", "k") == newer
            assert store.db.get(keys.version_key("b", "k", v.stamp.encode())) is None
        finally:
            store.close()

    asyncio.run(go())
