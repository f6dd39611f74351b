"""A node's durable state: one RocksDB, written through a group-commit thread.

Every change that must survive a crash (a committed version, its change-log
entry, a hint, the removal of a handed-off copy) goes through :class:`Writer`:
one thread takes every request queued since its last write, applies them in
order to one ``WriteBatch``, writes it and fdatasyncs the write-ahead log
(:mod:`node.wal`: done by Python, not RocksDB, so the event loop runs during
the fsync). Concurrent writes therefore share one fsync, and the
read-check-write of last-writer-wins is atomic because only that thread does it.

Body chunks are written without sync before their commit: the commit's sync of
the write-ahead log covers them.

Reads run on a small thread pool so RocksDB never blocks the event loop.

Version records and body chunks carry a checksum (node/records.py), checked on
every read here (so do change-log entries, hints and markers: node/records.py
says how a damaged one is taken): a damaged value, or a RocksDB block that
fails RocksDB's own checksum, is a :class:`~tristore.errors.CorruptData` for the reader (counted in
``tristore_node_corrupt_reads_total``). A write over a damaged record takes it
as absent: that is how a good copy is written back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import rocksdict

from node import keys, records
from node.disk import DiskWatch
from node.metrics import (
    CHANGE_LOG_ENTRIES,
    CHANGE_LOG_SEQ,
    CHANGE_LOG_TRIMMED,
    CONDITIONAL_AZ_REFUSALS,
    CORRUPT_READS,
    FSYNC_SECONDS,
    GC_BODIES,
    HINTS_PENDING,
    REMOVED_VERSION_REFUSALS,
    TOMBSTONES,
    WRITE_BATCH_SIZE,
)
from node.wal import WalSync
from tristore import rocks
from tristore.batcher import Batcher
from tristore.config import NodeSection
from tristore.errors import CorruptData, InternalError
from tristore.model import Change, ObjectVersion, evolve
from tristore.pb import replica_pb2
from tristore.replication import PENDING, key_digest, share_of
from tristore.stamps import ZERO, Stamp

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class VersionRead(NamedTuple):
    """What :meth:`ReplicaStore.read_version_records` is asked."""

    bucket: str
    key: str
    #: The version's stamp; None: the newest ``limit``.
    vstamp: Stamp | None = None
    #: The key's null version instead.
    null: bool = False
    limit: int = 1


FORMAT = b"tristore-node-2"
#: Meta key set while a node made with a new data directory has not rebuilt
#: its copies yet.
REBUILD = "rebuild"
#: Meta key: when the data directory was made (ms).
CREATED = "created_ms"
#: Meta key: the first change-log seq the replication index (keys.PENDING_LOG) covers.
PENDING_FROM = "pending_log_from"
#: Meta key: the change log holds no entry at or below this seq (trimmed).
TRIMMED_TO = "log_trimmed_to"
#: Meta key: stamp time (ms) of the first change ever logged here (kept when trimmed).
FIRST_CHANGE = "first_change_ms"
#: Meta key prefix: the change-log cursor a replicator last reported reading from.
READER = "reader/"
#: Meta key: when (ms) the last background scrub of this node ended.
SCRUBBED = "scrub_done_ms"
#: Meta key set once the removal index (keys.REMOVAL) covers every current record.
REMOVAL_INDEX = "removal_index"
#: Meta key set in data directories made with checksummed chunks: a chunk
#: without its checksum is damaged there (in an older one, it is an old chunk).
CHUNK_CRC = "chunk_crc"


@dataclass(frozen=True, slots=True)
class CommitResult:
    applied: bool
    #: The newest stamp this replica holds for the key's current record afterwards.
    current: Stamp
    #: The change's ``expect`` did not match, or a record of one of its
    #: ``new_versions`` is held here; nothing was applied.
    conflict: bool = False
    #: A merge commit's head is a newer version than the current record
    #: here, which is stamped above it (an edit of an older version, or a
    #: removal of one, that this node took first): the head was kept as a
    #: version only, and its coordinator stamps it again above.
    older_above: bool = False
    #: The change's head is a record of an older version than the current
    #: record here (an edit that a newer version got here before): kept as
    #: its version's record only, the current record left as it was.
    newer_version: bool = False
    #: A merge commit of a new version that this node, the key's home, kept
    #: below the record of a conditional write whose condition read a record
    #: older than it (:attr:`tristore.model.Change.condition`): taken first,
    #: that write came first, so its coordinator stamps this one again above.
    below_condition: bool = False


@dataclass(frozen=True, slots=True)
class KeyState:
    """Everything one replica holds of a key (hinted handoff ships it whole)."""

    head: ObjectVersion | None
    versions: list[ObjectVersion]
    removed: list[Stamp]
    #: Those of ``removed`` that are a write's earlier tries (:attr:`Change.withdrawn`).
    withdrawn: list[Stamp] = field(default_factory=list)


@dataclass
class ScrubPage:
    """What one step of a scrub (:meth:`ReplicaStore.scrub_page`) read."""

    records: int = 0
    chunks: int = 0
    read_bytes: int = 0
    #: Raw keys (``o`` or ``v``) of records that fail their checksum.
    bad_records: list[bytes] = field(default_factory=list)
    #: Chunks that fail theirs: the (sound) record holding the body, the index.
    bad_chunks: list[tuple[ObjectVersion, int]] = field(default_factory=list)
    #: Change-log entries, hints and markers read (:meth:`ReplicaStore.scrub_values`).
    values: int = 0
    #: Raw keys of those that fail their checksum.
    bad_values: list[bytes] = field(default_factory=list)
    #: RocksDB could not read on past the last key (a damaged block in an SST
    #: file): the rest of this family cannot be scanned.
    unreadable: str = ""
    #: Where the next step starts (raw key, chunk index), None: the end.
    cursor: tuple[bytes, int] | None = None


class _Op:
    """One request to the writer thread. ``apply`` adds to the batch and
    returns the value the caller's future gets once the batch is synced."""

    #: How many writes the request is (the group commit's size counts writes).
    writes = 1

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> Any:
        raise NotImplementedError


@dataclass
class _Commit(_Op):
    change: Change
    hint_for: str
    #: For a conditional change this node decides as the key's home: the
    #: newest record the other nodes of its AZ hold of the key (ZERO: none).
    in_az: Stamp = ZERO
    #: The message a peer's commit arrived as (``change`` is made from it):
    #: records and the log entry are its bytes, not the change encoded again.
    wire: replica_pb2.CommitRequest | None = None
    #: For a change with ``new_versions`` or ``version_expect`` this node
    #: decides: the newest record of its versions another node of its AZ
    #: holds (ZERO: none).
    version_in_az: Stamp = ZERO

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> CommitResult:
        c = self.change
        for v in (c.head, *c.versions):
            if v is not None and v.size and not v.data_id and v.inline is None:
                # A record read without its inline body must never be stored as is.
                raise InternalError(
                    f"refusing to store {c.bucket}/{c.key}@{v.version_id} without its body"
                )
        okey = keys.object_key(c.bucket, c.key)
        cur = store._get_overlay(okey, overlay)
        cur_rec = store._sound_record(cur, okey)
        damaged = cur is not None and cur_rec is None
        if cur_rec is None:
            cur = None  # damaged: taken as absent, so a good copy replaces it
        cur_stamp = cur_rec.stamp if cur_rec is not None else ZERO
        # The key's first AZ serializes conditional changes: one whose reader saw
        # ``expect`` goes through only if nothing newer got here first, here or
        # on another node of the AZ (a write it took while this home was away:
        # ``in_az``). (A node back from the dead may be behind ``expect``,
        # which is no conflict.)
        refused = False
        if c.expect is not None and max(cur_stamp, self.in_az) > c.expect:
            if cur_stamp <= c.expect:
                CONDITIONAL_AZ_REFUSALS.labels("newer_in_az").inc()
            refused = True
        elif (
            c.expect is not None
            and c.head is not None
            and c.head.version_stamp is not None
            and store._get_overlay(
                keys.removed_key(c.bucket, c.key, c.head.version_stamp.encode()), overlay
            )
            is not None
        ):
            # A record of a version removed here (the version below a
            # current one whose DELETE makes it current again, or an edit,
            # while a DELETE of that version got here first): taken, it
            # would bring back a version whose DELETE was acknowledged. Its
            # coordinator reads the key again (the simulation, seed 245
            # with DELETEs of versions).
            REMOVED_VERSION_REFUSALS.inc()
            refused = True
        elif c.expect == ZERO and c.head is not None and c.head.is_version:
            # A create of a version removed here for good (a replica sent
            # again after the key's last record was collected) is refused: its
            # coordinator then finds the removal (Protocol.spread_version).
            refused = (
                store._get_overlay(
                    keys.removed_key(c.bucket, c.key, c.head.vstamp.encode()), overlay
                )
                is not None
            )
        elif c.new_versions:
            # Versions that must be new (a replica's noncurrent version): a
            # record of one held here or in the AZ (another apply of it got
            # in first) is kept. Replaced, the body it names would go to the collector,
            # and whichever copy came last would win, not the one changed
            # last; the coordinator settles tags and ACL on it instead.
            refused = self.version_in_az > ZERO or any(
                store._version_held(overlay, v) for v in c.versions
            )
        elif c.version_expect is not None:
            # An edit of a version's record (tags, ACL, a replication status),
            # built on the record its coordinator read: refused where a newer
            # record of the version is held, here or in the AZ (another edit
            # got there first, whose change it would drop).
            here = [store._version_stamp(overlay, v) for v in c.versions]
            refused = max([self.version_in_az, *here]) > c.version_expect
        if refused:
            # A body staged again for it (Quorum.give_bodies racing another
            # change of the record) must not be left to the collector.
            for v in (c.head, *c.versions):
                if v is not None:
                    store._unstage_held(wb, overlay, v, cur_rec)
            return CommitResult(False, max(cur_stamp, self.in_az), conflict=True)
        kept: set[bytes] = set()  # bodies a record now refers to
        stored: tuple[ObjectVersion, bytes] | None = None  # the head, as encoded
        older_above = newer_version = below_condition = False
        if c.head is not None:
            if cur_stamp >= c.head.stamp and cur is not None:
                # Last writer wins by record stamp, but a record of an older
                # version above a new one (an edit the first AZ took before
                # this write got here) must not keep it from being current:
                # the coordinator is told, unless the version is removed here.
                older_above = (
                    cur_rec is not None
                    and cur_rec.version < c.head.vstamp
                    and store._get_overlay(
                        keys.removed_key(c.bucket, c.key, c.head.vstamp.encode()), overlay
                    )
                    is None
                )
                # Nor may a conditional write's record this home took keep a
                # plain write stamped after the record its condition read
                # (sent before it, arrived after): the conditional write was
                # decided here first, so it is first, and the plain write,
                # which no read can have returned yet, goes above it.
                below_condition = (
                    c.merge
                    and not older_above
                    and not self.hint_for
                    and c.head.version_stamp is None
                    and cur_rec is not None
                    and cur_rec.condition is not None
                    and cur_rec.condition < c.head.stamp < cur_stamp
                )
                if not c.merge:
                    store._unstage_held(wb, overlay, c.head, cur_rec)
                    return CommitResult(False, cur_stamp, older_above=older_above)
            elif (
                cur_rec is not None
                and cur_rec.version > c.head.stands_for
                and cur_rec.version not in c.head.removed
            ):
                # A record of an older version (an edit of its tags or status
                # stamped above a newer version that got here first) never
                # replaces that version: kept as its version's record only
                # (below), and the coordinator is told.
                newer_version = True
            else:
                encoded = (
                    records.encode_version_pb(self.wire.head)
                    if self.wire is not None
                    else records.encode_version(c.head, condition=c.condition)
                )
                stored = (c.head, encoded)
                wb.put(okey, encoded)
                overlay[okey] = encoded
                # Whether a removal is replaced (a damaged record: the index tells).
                was = None if damaged else (cur_rec is not None and not cur_rec.is_version)
                store._index_removal(wb, overlay, c.head, was)
                cur_stamp = c.head.stamp
                kept.add(c.head.data_id)
        # The removals the log lists (the events read from it: node/events.py):
        # a removal the first time this node marks it, held here or not (a
        # version created and removed while this node was down: its removal
        # is all it learns); a write's earlier try only if it was held here,
        # so no event tells of removing a try nobody saw here.
        made = tuple(
            vs
            for vs in c.removed
            if store._remove_version(wb, overlay, c.bucket, c.key, vs, vs in c.withdrawn)
        )
        # The versions the log lists: not one removed here for good (a late
        # copy), which no event may tell of as created after its removal,
        # nor a replicator send.
        listed: list[ObjectVersion] = []
        for v in c.versions:
            put = store._put_version(wb, overlay, v, stored)
            if put is None:
                continue
            listed.append(v)
            if put:
                kept.add(v.data_id)
        for data_id in {v.data_id for v in (c.head, *c.versions) if v is not None and v.data_id}:
            wb.delete(keys.staged_key(data_id))
            if data_id not in kept:
                store._schedule_gc(wb, data_id)  # superseded on arrival (a merge commit)
        if made == c.removed and not c.withdrawn and len(listed) == len(c.versions):
            store._append_log(wb, c, self.wire)
        else:
            store._append_log(wb, evolve(c, versions=tuple(listed), removed=made, withdrawn=()))
        store._batch_touched.append((c.bucket, c.key))
        hint_for = self.hint_for
        if not hint_for and store.rehome is not None:
            # Sent here as to the key's home by a node whose map is older than
            # this one's (or handed back to a node that is home no more): keep
            # it, and hand it on to the key's home by this node's map.
            hint_for = store.rehome(c.bucket, c.key) or ""
        if hint_for:
            hk = keys.hint_key(hint_for, c.bucket, c.key)
            held = store._get_overlay(hk, overlay)
            if held is None:
                store._hint_delta += 1
            if held is None or _hint_stamp(held, hk) < c.stamp:
                encoded = records.encode_hint(c.stamp)
                wb.put(hk, encoded)
                overlay[hk] = encoded
        return CommitResult(
            True,
            cur_stamp,
            older_above=older_above,
            newer_version=newer_version,
            below_condition=below_condition,
        )


@dataclass
class _Commits(_Op):
    """Unconditional commits that came in one message (a peer's pipe batch):
    one request to the writer instead of one each. Each keeps its own outcome,
    (True, its CommitResult) or (False, the error its apply raised), as it
    would alone; a failed group commit fails them all."""

    commits: list[_Commit]

    @property
    def writes(self) -> int:  # type: ignore[override]
        return len(self.commits)

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> list[tuple[bool, Any]]:
        return _apply_each(self.commits, store, wb, overlay)


def _apply_each(
    ops: Iterable[_Op],
    store: ReplicaStore,
    wb: rocksdict.WriteBatch,
    overlay: dict[bytes, bytes | None],
) -> list[tuple[bool, Any]]:
    """Apply each of ``ops`` to one write batch; their outcomes in order,
    (True, what apply returned) or (False, the error it raised), each handed
    to that op's own caller."""
    outcomes: list[tuple[bool, Any]] = []
    for op in ops:
        try:
            outcomes.append((True, op.apply(store, wb, overlay)))
        except Exception as exc:  # noqa: BLE001 - handed to that op's caller
            outcomes.append((False, exc))
    return outcomes


@dataclass
class _DropHint(_Op):
    home: str
    bucket: str
    key: str
    stamp: Stamp
    drop_copy: bool
    #: The change-log position the handed-off state was read at: a key changed
    #: here since then is kept (and its hint), to be handed off again.
    shipped_seq: int = -1

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> bool:
        hk = keys.hint_key(self.home, self.bucket, self.key)
        held = store._get_overlay(hk, overlay)
        if held is None:
            return False
        if _hint_stamp(held, hk) > self.stamp:
            return False  # a newer hinted write arrived meanwhile: hand that one over later
        if self.drop_copy and store._touched_since(self.bucket, self.key, self.shipped_seq):
            return False
        wb.delete(hk)
        overlay[hk] = None
        store._hint_delta -= 1
        if self.drop_copy:
            store._drop_key(wb, overlay, self.bucket, self.key)
        return True


@dataclass
class _DropTombstone(_Op):
    """Forget a removed version's marker (node/tombstones.py), unless the
    version is back here meanwhile, or was removed again since ``seen``."""

    bucket: str
    key: str
    vstamp: bytes
    seen: bytes

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> bool:
        rk = keys.removed_key(self.bucket, self.key, self.vstamp)
        if store._get_overlay(rk, overlay) != self.seen:
            return False
        vk = keys.version_key(self.bucket, self.key, self.vstamp)
        if store._get_overlay(vk, overlay) is not None:
            return False
        wb.delete(rk)
        overlay[rk] = None
        store._tomb_delta -= 1
        return True


@dataclass
class _DropRemoval(_Op):
    """Forget a key whose current record is the removal ``stamp`` (see
    node/tombstones.py), unless the key changed meanwhile (its current record
    is another one now), a version record of it is held, or a hint for it
    (to any of ``homes``) is held here."""

    bucket: str
    key: str
    stamp: bytes
    homes: tuple[str, ...]

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> bool:
        b, k = self.bucket, self.key
        rk = keys.removal_key(b, k)
        if store._get_overlay(rk, overlay) != self.stamp:
            return False
        vprefix = keys.version_prefix(b, k)
        if any(x.startswith(vprefix) and v is not None for x, v in overlay.items()):
            return False
        if any(x not in overlay for x, _ in store._prefix_items(vprefix)):
            return False
        if any(store._get_overlay(keys.hint_key(h, b, k), overlay) for h in self.homes):
            return False
        for dk in (rk, keys.object_key(b, k), keys.null_key(b, k)):
            wb.delete(dk)
            overlay[dk] = None
        store._tomb_delta -= 1
        return True


@dataclass
class _MarkHints(_Op):
    """Hints for keys this node holds but is not home to (a map change)."""

    items: list[tuple[str, str, str, Stamp]]

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> int:
        added = 0
        for home, bucket, key, stamp in self.items:
            hk = keys.hint_key(home, bucket, key)
            if store._get_overlay(hk, overlay) is None:
                encoded = records.encode_hint(stamp)
                wb.put(hk, encoded)
                overlay[hk] = encoded
                store._hint_delta += 1
                added += 1
        return added


@dataclass
class _Mend(_Op):
    """Write a sound copy over a damaged chunk. A chunk no longer held (its
    body collected meanwhile) is not made again, and a sound one is left."""

    data_id: bytes
    index: int
    framed: bytes

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> bool:
        k = keys.chunk_key(self.data_id, self.index)
        try:
            raw = store.db.get(k)
        except Exception:  # noqa: BLE001 - RocksDB cannot read it: damaged, written over
            raw = b""
        if raw is None or (raw and records.chunk_sound(raw, store.strict_chunks)):
            return False
        wb.put(k, self.framed)
        return True


@dataclass
class _MendValue(_Op):
    """See :meth:`ReplicaStore.mend_value`. A value gone, or sound, since the
    scrub read it is left."""

    raw_key: bytes
    staged_marker: bytes

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> bool:
        k = self.raw_key
        kind = {keys.HINT: records.HINT, keys.LOG: records.LOG}.get(k[:1], records.MARKER)
        if kind == records.LOG:
            return False
        raw = store._get_overlay(k, overlay)
        if raw is None or records.value_sound(kind, raw):
            return False
        if kind == records.HINT:
            value = records.encode_hint(ZERO)
        elif k.startswith(keys.STAGED):
            value = self.staged_marker
        else:
            value = records.encode_marker(0)
        wb.put(k, value)
        overlay[k] = value
        return True


@dataclass
class _Raw(_Op):
    """Puts and deletes prepared by the caller (garbage collection)."""

    puts: list[tuple[bytes, bytes]]
    deletes: list[bytes]
    ranges: list[tuple[bytes, bytes]]

    def apply(
        self, store: ReplicaStore, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None]
    ) -> None:
        for k, v in self.puts:
            wb.put(k, v)
        for k in self.deletes:
            wb.delete(k)
        for start, end in self.ranges:
            wb.delete_range(start, end)


class ReplicaStore:
    def __init__(self, path: Path, cfg: NodeSection, clock_ms: Callable[[], int]) -> None:
        self.path = path
        self.cfg = cfg
        self._clock_ms = clock_ms
        path.mkdir(parents=True, exist_ok=True)
        opts = rocks.options(cfg)
        opts.set_max_background_jobs(2)
        table = rocksdict.BlockBasedOptions()
        table.set_block_cache(rocksdict.Cache(cfg.block_cache_bytes))
        opts.set_block_based_table_factory(table)
        self.db = rocksdict.Rdict(str(path), opts)
        self._sync = rocksdict.WriteOptions()
        self._sync.sync = True
        self._nosync = rocksdict.WriteOptions()
        self._wal = WalSync(path, fsync=not cfg.unsafe_no_fsync, generation=self._super_version)
        fmt = self.db.get(keys.meta_key("format"))
        if fmt is None:
            # A new data directory: if the cluster already holds data, this
            # node's copies must be rebuilt from the other AZs (node/repair.py).
            # One synced batch: a directory marked with the format is marked
            # for the rebuild too, whenever the power goes.
            wb = rocksdict.WriteBatch(raw_mode=True)
            wb.put(keys.meta_key(CREATED), records.encode_ms(clock_ms()))
            wb.put(keys.meta_key(CHUNK_CRC), b"1")
            wb.put(keys.meta_key(REMOVAL_INDEX), b"1")
            wb.put(keys.meta_key(REBUILD), b"1")
            wb.put(keys.meta_key("format"), FORMAT)
            self.db.write(wb, self._sync)
        elif fmt != FORMAT:
            raise RuntimeError(f"{path} holds data of format {fmt!r}, not {FORMAT!r}")
        #: Every chunk here was written with its checksum (a data directory
        #: made since chunks have one): one without is damaged, not old.
        self.strict_chunks = self.db.get(keys.meta_key(CHUNK_CRC)) is not None
        scrubbed = self.db.get(keys.meta_key(SCRUBBED))
        #: When (ms) the last background scrub ended (0: none yet).
        self.scrub_done_ms = records.decode_ms(scrubbed) if scrubbed is not None else 0
        created = self.db.get(keys.meta_key(CREATED))
        #: When this data directory was made (0: before this was recorded).
        self.created_ms = records.decode_ms(created) if created is not None else 0
        #: Whether this node started from a new data directory and has not
        #: rebuilt its copies (or found the cluster new) yet.
        self.needs_rebuild = self.db.get(keys.meta_key(REBUILD)) is not None
        self._seq = self._last_seq_of(keys.LOG)
        self._hints = self._count_prefix(keys.hint_prefix())
        #: Free space on the data disk; new data is refused while it is short
        #: (set by the node; None: never refused).
        self.disk: DiskWatch | None = None
        self._hint_delta = 0
        if self.db.get(keys.meta_key(REMOVAL_INDEX)) is None:
            self._index_removals()
        #: Removal markers (a removed version's tombstone) and current records
        #: that are removals held (node/tombstones.py collects both).
        self._tombstones = self._count_prefix(keys.REMOVED) + self._count_prefix(keys.REMOVAL)
        self._tomb_delta = 0
        TOMBSTONES.set(self._tombstones)
        #: Given a key, the node of this AZ to hand it to when this node is not
        #: its home by the current map (None: keep it). Set by the node.
        self.rehome: Callable[[str, str], str | None] | None = None
        #: Called on the event loop after a batch that added hints (the
        #: handoff loop sleeps on it while none are pending). Set by the node.
        self.on_hinted: Callable[[], None] | None = None
        #: Given a key, the newest record of it the other nodes of this AZ
        #: hold, asked before this node decides a conditional change as the
        #: key's home; raises ConditionalRequestConflict when one of them
        #: does not answer (node/hints.py). Set by the node.
        self.hear_az: Callable[[str, str], Awaitable[Stamp]] | None = None
        #: Given a key and version stamps, the newest record of one of them
        #: the other nodes of this AZ hold (ZERO: none), asked before this
        #: node decides a change whose versions must be new
        #: (``Change.new_versions``) or an edit of a version's record
        #: (``Change.version_expect``); raises as :attr:`hear_az` does
        #: (node/hints.py). Set by the node.
        self.hear_az_versions: Callable[[str, str, Sequence[Stamp]], Awaitable[Stamp]] | None = None
        #: When (ms) the first GC entry or staged body held falls due, as of
        #: the last collection (0 before the first: it looks at once; None: none held).
        self._gc_next_ms: int | None = 0
        # The change-log seq of the last commit to each recently changed key
        # (bounded; a key that fell out counts as changed after _forgotten_seq).
        self._committed_seq = self._seq
        # The replication index (keys.PENDING_LOG) covers the log from this seq
        # on (a log written before the index existed is read whole below it),
        # and its newest synced entry.
        self._pending_from = self._pending_index_start()
        self._pending_committed = self._last_seq_of(keys.PENDING_LOG)
        self._batch_pending = 0
        self._touched: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._forgotten_seq = self._seq
        self._batch_touched: list[tuple[str, str]] = []
        self._first_change = self._stored_first_change()
        raw_trim = self.db.get(keys.meta_key(TRIMMED_TO))
        self._trimmed_to = int(raw_trim) if raw_trim is not None else 0
        #: Replicator name -> the cursor it last read this log from: entries
        #: awaiting replication are trimmed only once every replicator passed them.
        self._reader_cursors: dict[str, int] = {
            k[len(keys.meta_key(READER)) :].decode(): int(v)
            for k, v in self._prefix_items(keys.meta_key(READER))
        }
        self._batch_first_change = 0
        # Resolved (and replaced) when a batch adding change-log entries is
        # synced; the second only for a batch with an entry awaiting replication
        # (what replicators wait for: every other commit leaves them asleep).
        self._log_grown: asyncio.Future[None] | None = None
        self._pending_grown: asyncio.Future[None] | None = None
        self._log_waits_ended = False
        # Batches written so far, and (batches then, current records) of the last count.
        self._batches = 0
        self._objects: tuple[int, int] | None = None
        HINTS_PENDING.set(self._hints)
        CHANGE_LOG_SEQ.set(self._seq)
        CHANGE_LOG_ENTRIES.set(self._seq - self._trimmed_to)
        self._queue: queue.SimpleQueue[tuple[_Op, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer = threading.Thread(target=self._write_loop, name="group-commit", daemon=True)
        self._readers = concurrent.futures.ThreadPoolExecutor(
            cfg.read_threads, thread_name_prefix="rocksdb-read"
        )
        # Point reads of current records: those of one event-loop turn share
        # one thread hop (a RocksDB multi-get) instead of one each.
        self._meta_reads: Batcher[bytes, bytes | None] = Batcher(
            self._get_many, max_batch=256, max_inflight=cfg.read_threads
        )
        # Reads of a key's versions likewise (a replication apply asks every
        # node of each AZ for the version it brings; backfills, a version).
        self._version_reads: Batcher[VersionRead, tuple[list[bytes], bool]] = Batcher(
            self._read_version_records, max_batch=256, max_inflight=cfg.read_threads
        )
        self._closed = False

    # -- lifecycle ---------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._writer.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._writer.is_alive():
            self._writer.join(timeout=10)
        self._readers.shutdown(wait=True)
        try:
            self.db.close()
        except Exception as exc:  # noqa: BLE001 - a store that failed a write says so again
            # Its last write failed (a full disk); what it had synced is on disk,
            # and the next open recovers from the WAL.
            log.warning("closing the store at %s: %s", self.path, exc)
        self._wal.close()

    # -- the group-commit writer -----------------------------------------

    async def _submit(self, op: _Op) -> Any:
        assert self._loop is not None, "ReplicaStore.start() was not called"
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put((op, fut))
        return await fut

    def _write_loop(self) -> None:
        assert self._loop is not None
        loop = self._loop
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            writes = first[0].writes
            stop = False
            # Bounded by writes, not requests: a peer's message is one request.
            while writes < self.cfg.group_commit_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                writes += item[0].writes
            self._write_batch(batch, loop)
            if stop:
                return

    def _super_version(self) -> int:
        """RocksDB's super-version number (node/wal.py: a new log changes it)."""
        return int(self.db.property_int_value("rocksdb.current-super-version-number") or 0)

    def _sync_wal(self) -> None:
        try:
            self._wal.sync()
        except OSError as exc:
            # After a failed fsync the kernel may have dropped the dirty pages
            # and a second fsync can succeed without writing them: nothing
            # written since the last good sync can be trusted. As PostgreSQL
            # does, stop at once; a restart replays what is really on disk.
            log.critical(
                "fdatasync of the write-ahead log in %s failed (%s): writes since the last "
                "sync may be lost; the node stops now, restart it to recover from disk",
                self.path,
                exc,
            )
            logging.shutdown()
            os._exit(1)

    def _write_batch(
        self, batch: list[tuple[_Op, asyncio.Future[Any]]], loop: asyncio.AbstractEventLoop
    ) -> None:
        wb = rocksdict.WriteBatch(raw_mode=True)
        overlay: dict[bytes, bytes | None] = {}
        seq_before, self._hint_delta, self._tomb_delta = self._seq, 0, 0
        self._batch_touched, self._batch_pending, self._batch_first_change = [], 0, 0
        wake_log = wake_pending = hinted = False
        outcomes = _apply_each((op for op, _fut in batch), self, wb, overlay)
        try:
            started = time.perf_counter()
            self.db.write(wb, self._nosync)
            self._sync_wal()
            FSYNC_SECONDS.observe(time.perf_counter() - started)
            WRITE_BATCH_SIZE.observe(sum(op.writes for op, _ in batch))
        except Exception as exc:
            log.exception("group commit of %d writes failed", len(batch))
            failed = self.disk.write_failed(exc) if self.disk is not None else exc
            self._seq = seq_before
            outcomes = [(False, failed)] * len(batch)
        else:
            if self.disk is not None:
                self.disk.note_write()
            self._hints += self._hint_delta
            HINTS_PENDING.set(self._hints)
            self._tombstones += self._tomb_delta
            TOMBSTONES.set(self._tombstones)
            CHANGE_LOG_SEQ.set(self._seq)
            CHANGE_LOG_ENTRIES.set(self._seq - self._trimmed_to)
            self._first_change = self._first_change or self._batch_first_change
            self._note_touched(self._batch_touched, self._seq)
            self._pending_committed = max(self._pending_committed, self._batch_pending)
            self._batches += 1
            wake_log = self._seq > seq_before
            wake_pending = self._batch_pending > 0
            hinted = self._hint_delta > 0
        # One wakeup of the event loop for the whole batch.
        loop.call_soon_threadsafe(self._settle, batch, outcomes, wake_log, wake_pending, hinted)

    def _settle(
        self,
        batch: list[tuple[_Op, asyncio.Future[Any]]],
        outcomes: list[tuple[bool, Any]],
        wake_log: bool,
        wake_pending: bool,
        hinted: bool,
    ) -> None:
        """On the event loop: a group commit's waiters (log readers and the
        hint handoff first, as the commit's changes are in the log)."""
        if wake_log:
            self._wake_log_readers(wake_pending)
        if hinted and self.on_hinted is not None:
            self.on_hinted()
        for (_op, fut), (ok, value) in zip(batch, outcomes, strict=True):
            _resolve(fut, ok, value)

    def _note_touched(self, touched: list[tuple[str, str]], seq: int) -> None:
        for bk in touched:
            self._touched[bk] = seq
            self._touched.move_to_end(bk)
        while len(self._touched) > self.cfg.handoff_touched_remembered:
            _, old = self._touched.popitem(last=False)
            self._forgotten_seq = max(self._forgotten_seq, old)
        self._committed_seq = seq

    def _touched_since(self, bucket: str, key: str, seq: int) -> bool:
        if seq < 0:
            return False
        if (bucket, key) in self._batch_touched:
            return True  # changed by a commit ahead of this drop in the same batch
        at = self._touched.get((bucket, key))
        return at > seq if at is not None else self._forgotten_seq > seq

    def _wake_log_readers(self, pending: bool = True) -> None:
        """Wake the readers waiting for any new entry, and with ``pending``
        those waiting for one awaiting replication."""
        grown, self._log_grown = self._log_grown, None
        if grown is not None:
            _resolve(grown, True, None)
        if pending:
            grown, self._pending_grown = self._pending_grown, None
            if grown is not None:
                _resolve(grown, True, None)

    def end_log_waits(self) -> None:
        """The process is stopping: every wait for the log returns now (a long
        poll must not hold up the graceful stop's grace period)."""
        self._log_waits_ended = True
        self._wake_log_readers()

    async def wait_for_log(self, after: int, timeout_s: float, pending_only: bool = False) -> bool:
        """Return once a synced change-log entry after ``after`` exists (at
        once when one does, or when the log is behind ``after``: it restarted),
        or after ``timeout_s``. With ``pending_only``, only an entry awaiting
        replication counts (see read_pending_log). A wakeup from the writer,
        not polling. False when it returns for want of such an entry (time is
        up, or stopping)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._log_waiting(after, pending_only):
            remaining = deadline - loop.time()
            if remaining <= 0 or self._log_waits_ended:
                return False
            # asyncio.wait leaves the future alone when its time is up: one
            # reader's timeout does not cancel the others' wakeup.
            await asyncio.wait((self._wakeup(after, pending_only, loop),), timeout=remaining)
        return True

    def _indexed(self, after: int, pending_only: bool) -> bool:
        """Whether a reader from ``after`` waits for entries awaiting
        replication only (their index covers what it reads next)."""
        return pending_only and after + 1 >= self._pending_from

    def _log_waiting(self, after: int, pending_only: bool) -> bool:
        if after > self._seq:
            return False  # the log restarted: the reader must hear of it now
        if not self._indexed(after, pending_only):
            return self._committed_seq <= after
        return self._pending_committed <= after

    def _wakeup(
        self, after: int, pending_only: bool, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[None]:
        """The future a reader from ``after`` waits on (see _wake_log_readers)."""
        if self._indexed(after, pending_only):
            if self._pending_grown is None:
                self._pending_grown = loop.create_future()
            return self._pending_grown
        if self._log_grown is None:
            self._log_grown = loop.create_future()
        return self._log_grown

    @property
    def committed_seq(self) -> int:
        """The change-log position of the last synced commit (see _DropHint)."""
        return self._committed_seq

    def _get_overlay(self, key: bytes, overlay: dict[bytes, bytes | None]) -> bytes | None:
        if key in overlay:
            return overlay[key]
        try:
            value: bytes | None = self.db.get(key)
        except Exception as exc:  # noqa: BLE001 - RocksDB's Corruption: written over
            log.warning("value of %r unreadable (%s): taken as absent by this write", key, exc)
            return None
        return value

    @staticmethod
    def _sound_record(raw: bytes | None, key: bytes) -> records.RecordHead | None:
        """A record about to be replaced or dropped, or None when there is
        none or it is damaged (then it is written over: a good copy repairs it)."""
        if raw is None:
            return None
        try:
            return records.decode_head(raw)
        except CorruptData as exc:
            log.warning("record %r is damaged (%s): taken as absent by this write", key, exc)
            return None

    def _unstage_held(
        self,
        wb: rocksdict.WriteBatch,
        overlay: dict[bytes, bytes | None],
        v: ObjectVersion,
        cur: records.RecordHead | None,
    ) -> None:
        """A refused commit of ``v`` whose body was staged again (a write-back
        racing another, a damaged copy healed twice): if a record here holds
        that body (the current one, or ``v``'s version record), its staging
        marker must go, or the collector would take the body for abandoned."""
        if not v.data_id:
            return
        held = cur is not None and cur.data_id == v.data_id
        if not held:
            vk = keys.version_key(v.bucket, v.key, v.vstamp.encode())
            old = self._sound_record(self._get_overlay(vk, overlay), vk)
            held = old is not None and old.data_id == v.data_id
        if held:
            wb.delete(keys.staged_key(v.data_id))

    def _version_held(self, overlay: dict[bytes, bytes | None], v: ObjectVersion) -> bool:
        """Whether a sound record of version ``v`` is held here (a damaged
        one is taken as absent: a good copy replaces it)."""
        return self._version_stamp(overlay, v) > ZERO

    def _version_stamp(self, overlay: dict[bytes, bytes | None], v: ObjectVersion) -> Stamp:
        """The stamp of the sound record of version ``v`` held here (ZERO: none)."""
        vk = keys.version_key(v.bucket, v.key, v.vstamp.encode())
        held = self._sound_record(self._get_overlay(vk, overlay), vk)
        return held.stamp if held is not None else ZERO

    def _get_checked(self, key: bytes, kind: str) -> bytes | None:
        """``db.get``, RocksDB's own corruption error as CorruptData."""
        try:
            value: bytes | None = self.db.get(key)
        except Exception as exc:  # noqa: BLE001 - rocksdict raises a bare Exception
            raise records.corrupt(kind, f"RocksDB could not read {kind} {key!r}: {exc}") from None
        return value

    def _get_chunk(self, data_id: bytes, index: int) -> bytes | None:
        """One chunk's data (None: not held), its checksum checked."""
        raw = self._get_checked(keys.chunk_key(data_id, index), records.CHUNK)
        if raw is None:
            return None
        try:
            return records.chunk_payload(raw, self.strict_chunks)
        except CorruptData as exc:
            raise CorruptData(f"chunk {index} of body {data_id.hex()}: {exc}") from None

    def _append_log(
        self, wb: rocksdict.WriteBatch, c: Change, wire: replica_pb2.CommitRequest | None = None
    ) -> None:
        if not self._first_change and not self._batch_first_change:
            self._batch_first_change = c.stamp.physical_ms
            wb.put(keys.meta_key(FIRST_CHANGE), records.encode_ms(c.stamp.physical_ms))
        self._seq += 1
        entry = records.encode_change(c) if wire is None else records.encode_change_pb(wire)
        wb.put(keys.log_key(self._seq), entry)
        if awaits_replication(c):
            # The key's digest: a replicator is sent only its share's entries.
            wb.put(keys.pending_log_key(self._seq), key_digest(c.bucket, c.key))
            self._batch_pending = self._seq

    def _put_version(
        self,
        wb: rocksdict.WriteBatch,
        overlay: dict[bytes, bytes | None],
        v: ObjectVersion,
        stored: tuple[ObjectVersion, bytes] | None = None,
    ) -> bool | None:
        """Add or replace one version record (last writer wins per version). A
        null version replaces the key's older null version; a removed version
        never comes back (None). True when the record was stored. ``stored``: a
        record this commit stored and its encoding (the new head: most
        versions are it, and need not be encoded twice)."""
        if v.removed:
            v = evolve(v, removed=())
        vs = v.vstamp.encode()
        if self._get_overlay(keys.removed_key(v.bucket, v.key, vs), overlay) is not None:
            return None
        if v.null_version:
            nk = keys.null_key(v.bucket, v.key)
            held = self._get_overlay(nk, overlay)
            if held is not None and held > vs:
                return False
            if held is not None and held < vs:
                self._delete_version_record(wb, overlay, v.bucket, v.key, held)
            wb.put(nk, vs)
            overlay[nk] = vs
            if not v.is_version:
                return False  # an unversioned DELETE: the null version is gone, nothing replaces it
        vk = keys.version_key(v.bucket, v.key, vs)
        old = self._sound_record(self._get_overlay(vk, overlay), vk)
        if old is not None:
            if old.stamp >= v.stamp:
                return old.data_id == v.data_id
            if old.data_id and old.data_id != v.data_id:
                self._schedule_gc(wb, old.data_id)
        encoded = (
            stored[1]
            if stored is not None and (stored[0] is v or stored[0] == v)
            else records.encode_version(v)
        )
        wb.put(vk, encoded)
        overlay[vk] = encoded
        return True

    def _delete_version_record(
        self,
        wb: rocksdict.WriteBatch,
        overlay: dict[bytes, bytes | None],
        bucket: str,
        key: str,
        vs: bytes,
    ) -> bool:
        vk = keys.version_key(bucket, key, vs)
        existing = self._get_overlay(vk, overlay)
        if existing is None:
            return False
        old = self._sound_record(existing, vk)
        if old is not None and old.data_id:
            self._schedule_gc(wb, old.data_id)
        wb.delete(vk)
        overlay[vk] = None
        return True

    def _remove_version(
        self,
        wb: rocksdict.WriteBatch,
        overlay: dict[bytes, bytes | None],
        bucket: str,
        key: str,
        vstamp: Stamp,
        withdrawn: bool,
    ) -> bool:
        """Remove a version for good, leaving its marker (``withdrawn``: a
        write's earlier try, :attr:`Change.withdrawn`). Whether the change
        log lists the removal: this node held the version, or (not a try) it
        marks the removal for the first time."""
        vs = vstamp.encode()
        held = self._delete_version_record(wb, overlay, bucket, key, vs)
        rk = keys.removed_key(bucket, key, vs)
        had = self._get_overlay(rk, overlay)
        if had is None:
            self._tomb_delta += 1
        elif withdrawn:
            withdrawn = records.marker_withdrawn(had)  # a removal stays one
        # The value is when the version was removed: the marker is collected
        # some time after (node/tombstones.py).
        marker = records.encode_marker(self._clock_ms(), withdrawn)
        wb.put(rk, marker)
        overlay[rk] = marker
        return held or (had is None and not withdrawn)

    def _index_removal(
        self,
        wb: rocksdict.WriteBatch,
        overlay: dict[bytes, bytes | None],
        head: ObjectVersion,
        was: bool | None,
    ) -> None:
        """Keep the removal index (``keys.REMOVAL``) in step with a new current
        record ``head``; ``was``: whether the record it replaces was a removal
        (None: unknown, a damaged record, so the index is read)."""
        rk = keys.removal_key(head.bucket, head.key)
        if was is None:
            was = self._get_overlay(rk, overlay) is not None
        if not head.is_version:
            stamp = head.stamp.encode()
            wb.put(rk, stamp)
            overlay[rk] = stamp
            self._tomb_delta += not was
        elif was:
            wb.delete(rk)
            overlay[rk] = None
            self._tomb_delta -= 1

    def _drop_key(
        self, wb: rocksdict.WriteBatch, overlay: dict[bytes, bytes | None], bucket: str, key: str
    ) -> None:
        """Forget a key this node held only as a stand-in (its home has it now)."""
        okey = keys.object_key(bucket, key)
        if self._get_overlay(okey, overlay) is not None:
            wb.delete(okey)
            overlay[okey] = None
        rk = keys.removal_key(bucket, key)
        if self._get_overlay(rk, overlay) is not None:
            wb.delete(rk)
            overlay[rk] = None
            self._tomb_delta -= 1
        for k, raw in self._prefix_items(keys.version_prefix(bucket, key)):
            if k in overlay and overlay[k] is None:
                continue
            old = self._sound_record(raw, k)
            if old is not None and old.data_id:
                self._schedule_gc(wb, old.data_id)
            wb.delete(k)
            overlay[k] = None
        for k, _ in self._prefix_items(keys.removed_prefix(bucket, key)):
            if k in overlay and overlay[k] is None:
                continue
            wb.delete(k)
            overlay[k] = None
            self._tomb_delta -= 1
        nk = keys.null_key(bucket, key)
        wb.delete(nk)
        overlay[nk] = None

    def _schedule_gc(self, wb: rocksdict.WriteBatch, data_id: bytes) -> None:
        due = self._clock_ms() + int(self.cfg.gc_grace_s * 1000)
        wb.put(keys.gc_key(due, data_id), b"\x01")

    # -- writes ----------------------------------------------------------

    async def commit(
        self, change: Change, hint_for: str = "", wire: replica_pb2.CommitRequest | None = None
    ) -> CommitResult:
        """Apply ``change`` (durable once this returns). A conditional change
        (only the key's first AZ is sent one: its home, or a fallback standing
        in, ``hint_for``, while the home does not answer) is decided against
        what every node of this AZ holds of the key: the others are asked
        first (:attr:`hear_az`, :attr:`hear_az_versions`), since one may hold
        a write it took while this node was away or out of a coordinator's
        reach. ``wire``: the message ``change`` was made from (a peer's
        commit), stored as it came."""
        if self.disk is not None:
            self.disk.refuse_if_full("new writes")
        hear_key, hear_versions = self._hearings(change)
        in_az = ZERO
        if hear_key is not None:
            in_az = await hear_key(change.bucket, change.key)
        version_in_az = ZERO
        if hear_versions is not None:
            vstamps = [v.vstamp for v in change.versions]
            version_in_az = await hear_versions(change.bucket, change.key, vstamps)
        result: CommitResult = await self._submit(
            _Commit(change, hint_for, in_az, wire, version_in_az)
        )
        return result

    def _hearings(
        self, change: Change
    ) -> tuple[
        Callable[[str, str], Awaitable[Stamp]] | None,
        Callable[[str, str, Sequence[Stamp]], Awaitable[Stamp]] | None,
    ]:
        """What :meth:`commit` asks the AZ's other nodes before it decides
        ``change``: of the key (an ``expect``), of its versions (a versions
        condition); None for what it need not ask."""
        hear_key = self.hear_az if change.expect is not None else None
        conditional = change.new_versions or change.version_expect is not None
        hear_versions = self.hear_az_versions if conditional else None
        return hear_key, hear_versions

    def hears_az(self, change: Change) -> bool:
        """Whether :meth:`commit` asks the AZ's other nodes before it decides
        ``change`` (a conditional change: see there)."""
        hear_key, hear_versions = self._hearings(change)
        return hear_key is not None or hear_versions is not None

    async def commit_plain(
        self, commits: Sequence[tuple[Change, str, replica_pb2.CommitRequest | None]]
    ) -> list[tuple[bool, Any]]:
        """:meth:`commit` of each of ``commits`` (change, hint_for, wire), none
        of which :meth:`hears_az`, as one request to the writer (one future,
        not one each: a peer's message carries several). Their outcomes, in
        order: (True, CommitResult) or (False, the error that commit met)."""
        if self.disk is not None:
            self.disk.refuse_if_full("new writes")
        outcomes: list[tuple[bool, Any]] = await self._submit(
            _Commits([_Commit(c, hint_for, ZERO, wire) for c, hint_for, wire in commits])
        )
        return outcomes

    async def drop_hint(
        self,
        home: str,
        bucket: str,
        key: str,
        stamp: Stamp,
        drop_copy: bool,
        shipped_seq: int = -1,
    ) -> bool:
        done: bool = await self._submit(_DropHint(home, bucket, key, stamp, drop_copy, shipped_seq))
        return done

    async def old_tombstones(
        self, after: bytes, limit: int, removed_before_ms: int
    ) -> tuple[list[tuple[str, str, bytes, bytes]], bytes]:
        """Up to ``limit`` removal markers after the marker key ``after`` (b"":
        from the first) of versions removed before ``removed_before_ms``, as
        (bucket, key, vstamp, marker value); and where the next scan starts
        (b"" once the end was reached)."""
        result: tuple[list[tuple[str, str, bytes, bytes]], bytes] = await self._read(
            self._old_tombstones, after, limit, removed_before_ms
        )
        return result

    def _old_tombstones(
        self, after: bytes, limit: int, removed_before_ms: int
    ) -> tuple[list[tuple[str, str, bytes, bytes]], bytes]:
        def old(key: bytes, value: bytes) -> tuple[str, str, bytes, bytes] | None:
            # A marker from before they were dated ("\x01") counts as old, and
            # so does a damaged one (its date is all it held: whether the
            # version is gone is asked of the nodes all the same).
            try:
                removed_ms = records.decode_marker(value)
            except CorruptData:
                removed_ms = 0
            if removed_ms >= removed_before_ms:
                return None
            bucket, name, vstamp = keys.split_removed_key(key)
            return bucket, name, vstamp, value

        return self._scan_index(keys.REMOVED, after, limit, old)

    async def old_removals(
        self, after: bytes, limit: int, before_ms: int
    ) -> tuple[list[tuple[str, str, bytes]], bytes]:
        """Up to ``limit`` keys whose current record is a removal stamped
        before ``before_ms`` (wall time), after the raw index key ``after``
        (b"": from the first), as (bucket, key, encoded stamp); and where the
        next scan starts (b"" once the end was reached)."""
        result: tuple[list[tuple[str, str, bytes]], bytes] = await self._read(
            self._old_removals, after, limit, before_ms
        )
        return result

    def _old_removals(
        self, after: bytes, limit: int, before_ms: int
    ) -> tuple[list[tuple[str, str, bytes]], bytes]:
        def old(key: bytes, stamp: bytes) -> tuple[str, str, bytes] | None:
            if Stamp.decode(stamp).physical_ms >= before_ms:
                return None
            bucket, name = keys.split_object_key(key)
            return bucket, name, stamp

        return self._scan_index(keys.REMOVAL, after, limit, old)

    def _scan_index(
        self,
        prefix: bytes,
        after: bytes,
        limit: int,
        pick: Callable[[bytes, bytes], _T | None],
    ) -> tuple[list[_T], bytes]:
        """Up to ``limit`` entries of the index ``prefix`` after the raw key
        ``after`` (b"": from the first), each given to ``pick`` with its
        value: what it returns, kept unless None; and where the next scan
        starts (b"" once the end was reached)."""
        out: list[_T] = []
        scanned = 0
        for k, v in self.db.items(from_key=after or prefix):
            key = cast(bytes, k)
            if not key.startswith(prefix):
                return out, b""
            if key == after:
                continue
            scanned += 1
            item = pick(key, cast(bytes, v))
            if item is not None:
                out.append(item)
            if scanned >= limit:
                return out, key
        return out, b""

    async def drop_removal(self, bucket: str, key: str, stamp: bytes, homes: Sequence[str]) -> bool:
        """Forget a key whose current record is a removal (see :class:`_DropRemoval`)."""
        done: bool = await self._submit(_DropRemoval(bucket, key, stamp, tuple(homes)))
        return done

    async def drop_tombstone(self, bucket: str, key: str, vstamp: bytes, seen: bytes) -> bool:
        """Forget the marker of a removed version (see :class:`_DropTombstone`)."""
        done: bool = await self._submit(_DropTombstone(bucket, key, vstamp, seen))
        return done

    @property
    def tombstones(self) -> int:
        return self._tombstones

    def wall_ms(self) -> int:
        """The node's wall clock (what removal markers are dated by)."""
        return self._clock_ms()

    async def mark_hints(self, items: list[tuple[str, str, str, Stamp]]) -> int:
        """Hint (home, bucket, key, stamp) for each item not hinted to that home yet."""
        added: int = await self._submit(_MarkHints(items))
        return added

    async def stage(
        self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]
    ) -> tuple[int, int]:
        """Store the chunks of a body ahead of its commit. Returns (chunks, bytes)."""
        if len(data_id) != keys.DATA_ID_SIZE:
            raise ValueError("data id must be 16 bytes")
        if self.disk is not None:
            self.disk.refuse_if_full("new bodies")
        loop = asyncio.get_running_loop()
        marker = records.encode_marker(self._clock_ms())
        await loop.run_in_executor(
            self._readers, self._put_nosync, keys.staged_key(data_id), marker
        )
        count = total = 0
        async for index, data in chunks:
            await loop.run_in_executor(
                self._readers,
                self._put_nosync,
                keys.chunk_key(data_id, index),
                records.frame_chunk(data),
            )
            count += 1
            total += len(data)
        return count, total

    async def mend(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> int:
        """Write sound copies (read from another holder) over the chunks of a
        body that are damaged here, durably; chunks not held or sound are
        left. Returns the chunks written."""
        mended = 0
        async for index, data in chunks:
            if await self._submit(_Mend(data_id, index, records.frame_chunk(data))):
                mended += 1
        return mended

    def _put_nosync(self, key: bytes, value: bytes) -> None:
        try:
            self.db.put(key, value, self._nosync)
        except Exception as exc:
            if self.disk is not None:
                failed = self.disk.write_failed(exc)
                if failed is not exc:
                    raise failed from exc
            raise
        if self.disk is not None:
            self.disk.note_write()

    # -- reads -----------------------------------------------------------

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    async def _get_many(self, okeys: list[bytes]) -> list[bytes | BaseException | None]:
        got: list[bytes | BaseException | None] = await self._read(self._multi_get, okeys)
        return got

    def _multi_get(self, okeys: list[bytes]) -> list[bytes | BaseException | None]:
        try:
            return list(cast(list[bytes | None], self.db.get(cast(Any, okeys))))
        except Exception:  # noqa: BLE001 - one damaged block fails them all: ask one by one
            out: list[bytes | BaseException | None] = []
            for k in okeys:
                try:
                    out.append(self._get_checked(k, records.RECORD))
                except CorruptData as exc:
                    out.append(exc)
            return out

    async def read_meta_record(self, bucket: str, key: str) -> bytes | None:
        """The key's current record as stored (see node/records.py)."""
        return await self._meta_reads.submit(keys.object_key(bucket, key))

    async def read_meta(self, bucket: str, key: str) -> ObjectVersion | None:
        raw = await self.read_meta_record(bucket, key)
        return records.decode_version(raw) if raw is not None else None

    def _version_records(self, ask: VersionRead) -> tuple[list[bytes], bool]:
        bucket, key, vstamp, null, limit = ask
        if null:
            held = self.db.get(keys.null_key(bucket, key))
            if held is None:
                return [], False
            vstamp = Stamp.decode(held)
        if vstamp is not None:
            vs = vstamp.encode()
            raw = self._get_checked(keys.version_key(bucket, key, vs), records.RECORD)
            if raw is not None:
                return [raw], False
            return [], self.db.get(keys.removed_key(bucket, key, vs)) is not None
        out: list[bytes] = []
        for _k, raw in self._prefix_items(keys.version_prefix(bucket, key)):
            if len(out) >= limit:
                break
            out.append(raw)
        return out, False

    def _many_version_records(
        self, asks: list[VersionRead]
    ) -> list[tuple[list[bytes], bool] | BaseException]:
        out: list[tuple[list[bytes], bool] | BaseException] = []
        for ask in asks:
            try:
                out.append(self._version_records(ask))
            except Exception as exc:  # noqa: BLE001 - this read's failure, not the others'
                out.append(exc)
        return out

    async def _read_version_records(
        self, asks: list[VersionRead]
    ) -> list[tuple[list[bytes], bool] | BaseException]:
        got: list[tuple[list[bytes], bool] | BaseException] = await self._read(
            self._many_version_records, asks
        )
        return got

    async def read_version_records(self, ask: VersionRead) -> tuple[list[bytes], bool]:
        """One version's record (by stamp, or the null one's), or the newest
        ``limit`` records, as stored (see node/records.py; their checksums
        are checked when they are decoded); and whether the one asked for was
        removed for good. Those asked in one event-loop turn share a thread hop."""
        return await self._version_reads.submit(ask)

    async def read_versions(
        self,
        bucket: str,
        key: str,
        vstamp: Stamp | None = None,
        null: bool = False,
        limit: int = 1,
    ) -> tuple[list[ObjectVersion], bool]:
        """:meth:`read_version_records`, decoded."""
        raws, removed = await self.read_version_records(
            VersionRead(bucket, key, vstamp, null, limit)
        )
        return [records.decode_version(raw) for raw in raws], removed

    def _scan_versions(
        self, bucket: str, prefix: str, key_marker: str, after: Stamp | None, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        lower = keys.version_prefix(bucket, prefix=prefix)
        start = lower
        if key_marker:
            if after is not None:
                marker = keys.version_key(bucket, key_marker, after.encode()) + b"\x00"
            else:
                marker = keys.successor(keys.version_prefix(bucket, key_marker))
            start = max(start, marker)
        out: list[ObjectVersion] = []
        it = self.db.iter()
        try:
            it.seek(start)
            while it.valid():
                k = it.key()
                if not k.startswith(lower):
                    return out, True
                if len(out) >= limit:
                    return out, False
                out.append(evolve(records.decode_version(it.value()), inline=None))
                it.next()
            _iter_status(it)
            return out, True
        finally:
            del it

    async def scan_versions(
        self, bucket: str, prefix: str, key_marker: str, after: Stamp | None, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        """Version records in (key, newest first) order, from just past the marker."""
        result: tuple[list[ObjectVersion], bool] = await self._read(
            self._scan_versions, bucket, prefix, key_marker, after, limit
        )
        return result

    def _key_state(self, bucket: str, key: str) -> KeyState:
        raw = self._get_checked(keys.object_key(bucket, key), records.RECORD)
        head = records.decode_version(raw) if raw is not None else None
        versions = [
            records.decode_version(v)
            for _k, v in self._prefix_items(keys.version_prefix(bucket, key))
        ]
        removed: list[Stamp] = []
        withdrawn: list[Stamp] = []
        for k, v in self._prefix_items(keys.removed_prefix(bucket, key)):
            removed.append(Stamp.decode(k[-keys.STAMP_SIZE :]))
            if records.marker_withdrawn(v):
                withdrawn.append(removed[-1])
        return KeyState(head, versions, removed, withdrawn)

    async def key_state(self, bucket: str, key: str) -> KeyState:
        result: KeyState = await self._read(self._key_state, bucket, key)
        return result

    async def read_chunk(self, data_id: bytes, index: int) -> bytes | None:
        chunk: bytes | None = await self._read(self._get_chunk, data_id, index)
        return chunk

    async def read_data(
        self, data_id: bytes, chunk_size: int, offset: int, length: int
    ) -> AsyncIterator[bytes]:
        """The bytes [offset, offset+length) of a body, chunk by chunk."""
        if chunk_size <= 0:
            raise InternalError(f"body {data_id.hex()} has no chunk size: its record is damaged")
        end = offset + length
        index = offset // chunk_size
        pos = index * chunk_size
        if pos >= end:
            return
        loop = asyncio.get_running_loop()

        def read(i: int) -> asyncio.Future[bytes | None]:
            return loop.run_in_executor(self._readers, self._get_chunk, data_id, i)

        # The next chunk is read while this one is sent (at most two held).
        pending = read(index)
        try:
            while pos < end:
                chunk = await pending
                if pos + chunk_size < end:
                    pending = read(index + 1)
                if chunk is None:
                    raise LookupError(f"chunk {index} of body {data_id.hex()} is missing")
                lo = max(offset - pos, 0)
                hi = min(end - pos, len(chunk))
                yield chunk if (lo, hi) == (0, len(chunk)) else chunk[lo:hi]
                pos += chunk_size
                index += 1
        finally:
            pending.cancel()

    async def scrub_page(
        self, prefix: bytes, cursor: tuple[bytes, int] | None, max_bytes: int, max_records: int
    ) -> ScrubPage:
        """Read and verify the records whose raw key starts with ``prefix``
        (one family, ``o`` or ``v``, maybe of one bucket) from ``cursor`` (None:
        the first), and the chunks of the bodies they hold, until about
        ``max_bytes`` or ``max_records`` were read. A version record's body is
        read only when the key's current record does not hold the same one."""
        page: ScrubPage = await self._read(self._scrub_page, prefix, cursor, max_bytes, max_records)
        return page

    def _scrub_page(
        self, prefix: bytes, cursor: tuple[bytes, int] | None, max_bytes: int, max_records: int
    ) -> ScrubPage:
        page = ScrubPage()
        start, first_chunk = cursor if cursor is not None else (prefix, 0)
        it = self.db.iter()
        try:
            it.seek(start)
            while it.valid():
                k = cast(bytes, it.key())
                if not k.startswith(prefix):
                    return page
                if page.read_bytes >= max_bytes or page.records >= max_records:
                    page.cursor = (k, first_chunk)
                    return page
                raw = cast(bytes, it.value())
                if first_chunk == 0:
                    page.records += 1
                    page.read_bytes += len(raw)
                try:
                    v = records.decode_version(raw)
                except CorruptData:
                    page.bad_records.append(k)
                    it.next()
                    continue
                if v.data_id and self._scrub_body(k, v):
                    resume = self._scrub_chunks(v, first_chunk, max_bytes, page)
                    if resume is not None:
                        page.cursor = (k, resume)
                        return page
                first_chunk = 0
                it.next()
            try:
                it.status()
            except Exception as exc:  # noqa: BLE001 - rocksdict raises a bare Exception
                CORRUPT_READS.labels(records.RECORD).inc()
                page.unreadable = str(exc)
            return page
        finally:
            del it

    async def scrub_values(
        self, prefix: bytes, kind: str, cursor: bytes | None, max_bytes: int, max_records: int
    ) -> ScrubPage:
        """Read and verify the framed small values of one family (``prefix``:
        change log, hints, removal or staging markers; ``kind`` as
        :func:`node.records.value_sound` takes it) from just past the raw key
        ``cursor`` (None: the first), until about ``max_bytes`` or
        ``max_records`` were read."""
        page: ScrubPage = await self._read(
            self._scrub_values, prefix, kind, cursor, max_bytes, max_records
        )
        return page

    def _scrub_values(
        self, prefix: bytes, kind: str, cursor: bytes | None, max_bytes: int, max_records: int
    ) -> ScrubPage:
        page = ScrubPage()
        it = self.db.iter()
        try:
            it.seek(cursor + b"\x00" if cursor is not None else prefix)
            while it.valid():
                k = cast(bytes, it.key())
                if not k.startswith(prefix):
                    return page
                raw = cast(bytes, it.value())
                page.values += 1
                page.read_bytes += len(raw)
                if not records.value_sound(kind, raw):
                    page.bad_values.append(k)
                if page.read_bytes >= max_bytes or page.values >= max_records:
                    page.cursor = (k, 0)
                    return page
                it.next()
            try:
                it.status()
            except Exception as exc:  # noqa: BLE001 - rocksdict raises a bare Exception
                CORRUPT_READS.labels(kind).inc()
                page.unreadable = str(exc)
            return page
        finally:
            del it

    async def mend_value(self, raw_key: bytes) -> bool:
        """Write a sound value over a damaged hint or marker, from what is
        known without it: a hint of the oldest stamp (handoff then ships
        everything held for the key and drops it), a removal marker from
        before markers were dated (still refusing its version; old enough
        to collect once no node holds the version), a staging marker dated
        now (its body is collected ``stage_ttl_s`` from now unless a commit
        claims it). A change-log entry cannot be made again: False."""
        op = _MendValue(raw_key, records.encode_marker(self._clock_ms()))
        done: bool = await self._submit(op)
        return done

    def _scrub_body(self, k: bytes, v: ObjectVersion) -> bool:
        """Whether a scrub reads the body of the record at ``k``: a version
        record's body is read with the key's current record when that holds it."""
        if not k.startswith(keys.VERSION):
            return True
        try:
            head = self.db.get(keys.object_key(v.bucket, v.key))
            return head is None or records.decode_version(head).data_id != v.data_id
        except Exception:  # noqa: BLE001 - a damaged head: its own step reports it
            return True

    def _scrub_chunks(
        self, v: ObjectVersion, first: int, max_bytes: int, page: ScrubPage
    ) -> int | None:
        """Verify ``v``'s chunks from ``first``; the index to resume at when
        the page is full (None: all done)."""
        count = -(-v.body_size // v.chunk_size) if v.chunk_size > 0 else 0
        for index in range(first, count):
            if page.read_bytes >= max_bytes and index > first:
                return index
            try:
                data = self._get_chunk(v.data_id, index)
            except CorruptData:
                page.chunks += 1
                page.bad_chunks.append((v, index))
                continue
            if data is not None:
                page.chunks += 1
                page.read_bytes += len(data)
        return None

    def _scan(
        self, bucket: str, prefix: str, start_after: str, skip_prefix: bool, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        lower = keys.object_prefix(bucket, prefix)
        start = lower
        if start_after:
            after = keys.object_key(bucket, start_after)
            after = keys.successor(after) if skip_prefix else after + b"\x00"
            start = max(start, after)
        out: list[ObjectVersion] = []
        it = self.db.iter()
        try:
            it.seek(start)
            while it.valid():
                k = it.key()
                if not k.startswith(lower):
                    return out, True
                if len(out) >= limit:
                    return out, False
                v = records.decode_version(it.value())
                out.append(evolve(v, inline=None))
                it.next()
            _iter_status(it)
            return out, True
        finally:
            del it

    async def scan(
        self, bucket: str, prefix: str, start_after: str, skip_prefix: bool, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        result: tuple[list[ObjectVersion], bool] = await self._read(
            self._scan, bucket, prefix, start_after, skip_prefix, limit
        )
        return result

    def _prefix_items(
        self, prefix: bytes, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with ``prefix``, in order (from
        ``start`` on, when given: a key under ``prefix``). A block RocksDB
        cannot read ends it with CorruptData (``items()`` would end there
        silently)."""
        it = self.db.iter()
        try:
            it.seek(prefix if start is None else start)
            while it.valid():
                key = cast(bytes, it.key())
                if not key.startswith(prefix):
                    return
                yield key, cast(bytes, it.value())
                it.next()
            _iter_status(it)
        finally:
            del it

    def _hints_for(
        self, home: str, limit: int, after: tuple[str, str] | None
    ) -> list[tuple[str, str, Stamp]]:
        out: list[tuple[str, str, Stamp]] = []
        skip = keys.hint_key(home, *after) if after is not None else None
        for k, v in self._prefix_items(keys.hint_prefix(home), skip):
            if len(out) >= limit:
                break
            if k != skip:
                _, bucket, key = keys.split_hint_key(k)
                out.append((bucket, key, _hint_stamp(v, k)))
        return out

    async def hints_for(
        self, home: str, limit: int = 256, after: tuple[str, str] | None = None
    ) -> list[tuple[str, str, Stamp]]:
        """Up to ``limit`` hints held for ``home`` (bucket, key, stamp), in key
        order, after the hint of ``after`` (bucket, key) when given."""
        result: list[tuple[str, str, Stamp]] = await self._read(self._hints_for, home, limit, after)
        return result

    def _hint_homes(self) -> list[str]:
        homes: list[str] = []
        prefix = keys.hint_prefix()
        it = self.db.iter()
        try:
            it.seek(prefix)
            while it.valid() and it.key().startswith(prefix):
                home = keys.split_hint_key(it.key())[0]
                homes.append(home)
                it.seek(keys.successor(keys.hint_prefix(home)))
        finally:
            del it
        return homes

    async def hint_homes(self) -> list[str]:
        result: list[str] = await self._read(self._hint_homes)
        return result

    def _index_removals(self) -> None:
        """Index the current records that are removals of a data directory
        made before the index (once, at start)."""
        wb = rocksdict.WriteBatch(raw_mode=True)
        for k, raw in self._prefix_items(keys.OBJECT):
            try:
                v = records.decode_version(raw)
            except CorruptData:
                continue  # a scrub or a read repairs it; the write indexes it then
            if not v.is_version:
                bucket, key = keys.split_object_key(k)
                wb.put(keys.removal_key(bucket, key), v.stamp.encode())
        wb.put(keys.meta_key(REMOVAL_INDEX), b"1")
        self.db.write(wb, self._sync)

    def _stored_first_change(self) -> int:
        raw = self.db.get(keys.meta_key(FIRST_CHANGE))
        if raw is not None:
            return records.decode_ms(raw)
        # A store from before this was recorded: its log has not been trimmed.
        for _k, entry in self._prefix_items(keys.LOG):
            try:
                ms = records.change_time_ms(entry)
            except CorruptData:
                continue
            self.db.put(keys.meta_key(FIRST_CHANGE), records.encode_ms(ms), self._sync)
            return ms
        return 0

    async def first_change_ms(self) -> int:
        """Stamp time of the first change this store ever logged (0: none yet);
        kept when the change log is trimmed."""
        return self._first_change

    # -- change-log retention ------------------------------------------------

    @property
    def trimmed_to(self) -> int:
        """No change-log entry at or below this seq is left (trimmed)."""
        return self._trimmed_to

    def note_reader(self, name: str, after: int) -> None:
        """A replicator read this log from ``after``: it has handled every entry
        up to there (its cursor never moves back, so neither does this)."""
        if after > self._reader_cursors.get(name, -1):
            self._reader_cursors[name] = after

    async def trim_log(self, readers: Sequence[str], limit: int | None = None) -> int:
        """Trim the change log (and its replication index) up to the newest
        entry that is older than ``changelog_retention_s`` and, when it awaits
        replication, already read by every one of ``readers``. Returns the
        entries trimmed."""
        horizon_ms = self._clock_ms() - int(self.cfg.changelog_retention_s * 1000)
        limit = limit or self.cfg.changelog_trim_batch
        start = self._trimmed_to
        cursors = dict(self._reader_cursors)
        upto = await self._read(self._trim_point, start, horizon_ms, limit, readers, cursors)
        if upto <= start:
            return 0
        puts = [(keys.meta_key(TRIMMED_TO), str(upto).encode())]
        puts += [(keys.meta_key(READER + n), str(c).encode()) for n, c in cursors.items()]
        ranges = [
            (keys.log_key(start + 1), keys.log_key(upto + 1)),
            (keys.pending_log_key(start + 1), keys.pending_log_key(upto + 1)),
        ]
        await self._submit(_Raw(puts, [], ranges))
        self._trimmed_to = upto
        CHANGE_LOG_ENTRIES.set(self._seq - upto)
        CHANGE_LOG_TRIMMED.inc(upto - start)
        return upto - start

    def _trim_point(
        self,
        start: int,
        horizon_ms: int,
        limit: int,
        readers: Sequence[str],
        cursors: dict[str, int],
    ) -> int:
        upto = start
        for seq, raw in self._read_log(start, limit):
            if seq > self._committed_seq:
                break
            try:
                at_ms = records.change_time_ms(raw)
            except CorruptData:
                at_ms = 0  # damaged: no reader can use it; the replication index still holds it
            if at_ms > horizon_ms:
                break
            upto = seq
        # Entries awaiting replication stay until every replicator read past them.
        read_by_all = min((cursors.get(n, 0) for n in readers), default=upto)
        if read_by_all < upto:
            for k, _ in self.db.items(from_key=keys.pending_log_key(read_by_all + 1)):
                key = cast(bytes, k)
                if key.startswith(keys.PENDING_LOG):
                    upto = min(upto, keys.split_log_key(key) - 1)
                break
        return max(upto, start)

    async def note_scrubbed(self, ms: int) -> None:
        """Record, durably, that a background scrub ended at ``ms``."""
        await self._submit(_Raw([(keys.meta_key(SCRUBBED), records.encode_ms(ms))], [], []))
        self.scrub_done_ms = ms

    async def record_sound(self, raw_key: bytes) -> bool:
        """Whether the record at ``raw_key`` reads sound now (or is gone)."""
        sound: bool = await self._read(self._record_sound, raw_key)
        return sound

    def _record_sound(self, raw_key: bytes) -> bool:
        try:
            raw = self.db.get(raw_key)
        except Exception:  # noqa: BLE001 - RocksDB cannot read it
            return False
        return raw is None or records.record_sound(raw)

    async def rebuilt(self) -> None:
        """Clear :attr:`needs_rebuild`, durably."""
        await self._submit(_Raw([], [keys.meta_key(REBUILD)], []))
        self.needs_rebuild = False

    @property
    def hints_pending(self) -> int:
        return self._hints

    @property
    def log_seq(self) -> int:
        return self._seq

    # -- garbage collection -----------------------------------------------

    def _collectable(self, now_ms: int, limit: int) -> tuple[list[bytes], list[bytes], int | None]:
        """GC entries that are due, staged bodies that were abandoned, and
        when (ms) the first of those that are not yet will be (None: none held)."""
        due: list[bytes] = []
        later: int | None = None
        for k, _v in self._prefix_items(keys.GC):
            if len(due) >= limit:
                later = now_ms
                break
            when, _ = keys.split_gc_key(k)
            if when > now_ms:
                later = when
                break
            due.append(k)
        stale: list[bytes] = []
        ttl_ms = int(self.cfg.stage_ttl_s * 1000)
        for k, v in self._prefix_items(keys.STAGED):
            if len(stale) >= limit:
                later = now_ms
                break
            try:
                at = records.decode_marker(v) + ttl_ms
            except CorruptData:
                # Damaged: when it was staged is lost; its body may still be
                # on its way to a commit, so it is kept (a scrub dates it anew).
                continue
            if at <= now_ms:
                stale.append(k)
            elif later is None or at < later:
                later = at
        return due, stale, later

    def gc_wait_s(self, floor_s: float) -> float:
        """How long the collector may sleep: until the first entry held falls
        due, and no longer than the shortest grace a new entry gets (one made
        from now on is due that long after it was made), at least ``floor_s``.
        Sleeping long is never unsafe (the scan checks due times itself); an
        idle node so scans once every gc_grace_s, not every gc_interval_s."""
        now = self._clock_ms()
        horizon = now + int(min(self.cfg.gc_grace_s, self.cfg.stage_ttl_s) * 1000)
        nxt = horizon if self._gc_next_ms is None else min(self._gc_next_ms, horizon)
        return max(floor_s, (nxt - now) / 1000)

    async def collect_garbage(self, limit: int = 1000) -> int:
        """Delete superseded bodies past their grace period and abandoned
        uploads. Returns how many bodies went."""
        due, stale, self._gc_next_ms = await self._read(self._collectable, self._clock_ms(), limit)
        if not due and not stale:
            return 0
        ranges = [keys.chunk_range(keys.split_gc_key(k)[1]) for k in due]
        ranges += [keys.chunk_range(k[1:]) for k in stale]
        await self._submit(_Raw([], [*due, *stale], ranges))
        GC_BODIES.inc(len(ranges))
        return len(ranges)

    # -- status ----------------------------------------------------------

    def _read_log(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        for k, v in self.db.items(from_key=keys.log_key(after + 1)):
            key = cast(bytes, k)
            if not key.startswith(keys.LOG) or len(out) >= limit:
                break
            out.append((keys.split_log_key(key), cast(bytes, v)))
        return out

    async def read_log(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Change-log entries (seq, encoded change) after ``after``, in order."""
        return cast(list[tuple[int, bytes]], await self._read(self._read_log, after, limit))

    async def read_pending_log(
        self, after: int, limit: int, share: int = 0, shares: int = 0
    ) -> tuple[list[tuple[int, bytes]], int]:
        """The change-log entries after ``after`` that carry a version awaiting
        replication (at most ``limit``), and the seq the reader may move its
        cursor to: every synced entry up to it was considered. A replicator
        reads only these, so a cluster that replicates nothing costs it nothing.
        With ``shares`` > 0, only the entries of keys in share ``share`` (the
        replicator's part of the keys: :func:`tristore.replication.share_of`);
        the others' are passed over, at most ``limit`` * ``shares`` index
        entries a call. Below the index's start (a log from before it), and for
        index entries written before they carried the key's digest, entries
        come unfiltered."""
        committed = self._committed_seq
        got = await self._read(self._read_pending_log, after, limit, committed, share, shares)
        return cast(tuple[list[tuple[int, bytes]], int], got)

    def _read_pending_log(
        self, after: int, limit: int, committed: int, share: int = 0, shares: int = 0
    ) -> tuple[list[tuple[int, bytes]], int]:
        if after + 1 < self._pending_from:
            entries = self._read_log(after, min(limit, self._pending_from - 1 - after))
            entries = [(seq, raw) for seq, raw in entries if seq <= committed]
            return entries, entries[-1][0] if entries else after
        seqs: list[int] = []
        looked, seen, full = after, 0, False
        budget = limit * max(1, shares)
        for k, digest in self.db.items(from_key=keys.pending_log_key(after + 1)):
            key = cast(bytes, k)
            if not key.startswith(keys.PENDING_LOG):
                break
            if len(seqs) >= limit or seen >= budget:
                full = True
                break
            seq = keys.split_log_key(key)
            if seq > committed:
                break
            looked, seen = seq, seen + 1
            if shares and len(digest) == 8 and share_of(cast(bytes, digest), shares) != share:
                continue
            seqs.append(seq)
        raws = cast(list[bytes | None], self.db.get([keys.log_key(seq) for seq in seqs]))
        entries = [(seq, raw) for seq, raw in zip(seqs, raws, strict=True) if raw is not None]
        scanned = looked if full or len(seqs) >= limit else max(committed, after)
        return entries, scanned

    def _last_seq_of(self, family: bytes) -> int:
        """The largest seq of the change log (``keys.LOG``) or of its
        replication index (``keys.PENDING_LOG``); 0 when empty."""
        it = self.db.iter()
        try:
            it.seek_for_prev(family + b"\xff" * 8)
            if it.valid() and it.key().startswith(family):
                return keys.split_log_key(it.key())
            return 0
        finally:
            del it

    def _pending_index_start(self) -> int:
        raw = self.db.get(keys.meta_key(PENDING_FROM))
        if raw is not None:
            return int(raw)
        start = self._seq + 1
        self.db.put(keys.meta_key(PENDING_FROM), str(start).encode(), self._sync)
        return start

    def _count_prefix(self, prefix: bytes) -> int:
        return sum(1 for _ in self._prefix_items(prefix))

    async def disk_bytes(self) -> int:
        """Bytes of data on disk, from RocksDB's own accounting (its SST files,
        and its memtables for what is still only in the write-ahead log): no
        walk of the data directory."""
        sst = self.db.property_int_value("rocksdb.total-sst-files-size") or 0
        mem = self.db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
        return sst + mem

    async def object_count(self) -> int:
        """Current records held here (exact: a drain's end is decided on it).
        Counted again only after a write, so an idle node's status scans nothing."""
        batches = self._batches
        if self._objects is None or self._objects[0] != batches:
            count: int = await self._read(self._count_prefix, keys.OBJECT)
            self._objects = (batches, count)
        return self._objects[1]

    def _held_page(
        self, family: bytes, after: bytes, limit: int
    ) -> tuple[list[tuple[str, str, Stamp]], bytes | None]:
        """Up to ``limit`` (bucket, key, record stamp) of current records
        (``keys.OBJECT``) or versions (``keys.VERSION``) after the raw key
        ``after``, and where the next page starts (None: the end)."""
        out: list[tuple[str, str, Stamp]] = []
        start = after + b"\x00" if after else family  # the next raw key
        for k, v in self.db.items(from_key=start):
            raw = cast(bytes, k)
            if not raw.startswith(family):
                return out, None
            if len(out) >= limit:
                return out, after
            bucket, key, _ = (raw[1:] + keys.SEP).split(keys.SEP, 2)
            out.append((bucket.decode(), key.decode(), records.decode_version(v).stamp))
            after = raw
        return out, None

    async def held_keys(self, limit: int = 1024) -> AsyncIterator[list[tuple[str, str, Stamp]]]:
        """Every key with a current record or a version here, with a record
        stamp, a page at a time (a key may come more than once)."""
        for family in (keys.OBJECT, keys.VERSION):
            after = b""
            while True:
                page, nxt = await self._read(self._held_page, family, after, limit)
                if page:
                    yield page
                if nxt is None:
                    break
                after = nxt

    def iter_objects(self) -> Iterator[ObjectVersion]:
        """Every current record (tests and tools; runs on the caller's thread)."""
        for _k, v in self._prefix_items(keys.OBJECT):
            yield records.decode_version(v)

    def iter_versions(self) -> Iterator[ObjectVersion]:
        """Every version record (tests and tools; runs on the caller's thread)."""
        for _k, v in self._prefix_items(keys.VERSION):
            yield records.decode_version(v)


def _hint_stamp(raw: bytes, key: bytes) -> Stamp:
    """The stamp a hint holds; ZERO for a damaged one (counted): older than
    any write, so the next hinted write replaces it, and handoff ships all
    that is held for the key and then drops it."""
    try:
        return records.decode_hint(raw)
    except CorruptData as exc:
        log.warning("hint %r is damaged (%s): taken as the oldest", key, exc)
        return ZERO


def _iter_status(it: Any) -> None:
    """Raise CorruptData if a RocksDB iterator stopped at a block it could not
    read (``valid()`` is then false, as at the end)."""
    try:
        it.status()
    except Exception as exc:  # noqa: BLE001 - rocksdict raises a bare Exception
        raise records.corrupt(records.RECORD, f"RocksDB could not read on: {exc}") from None


def awaits_replication(c: Change) -> bool:
    """Whether a change carries a version some replicator still has to send
    (a replication target PENDING) in a bucket users see."""
    if c.bucket.startswith("."):
        return False
    return any(s == PENDING for v in c.versions for s in v.replication_targets.values())


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
