"""Event notifications: the change logs of a cluster as a resumable stream of
object-created and object-removed events of one bucket.

- **Where a key's events come from.** Every version is in the change logs of
  the key's three AZ homes (and of a stand-in while a home was down). A
  subscription takes each key's events from one log only: that of the key's
  first-AZ home (``Placer.place(...).azs[0].home``). So a key's events come in
  one node's commit order, and each change is seen once (not three times). A
  write made while that home was down reaches its log when hinted handoff
  commits it there: late, not lost.
- **Who reads.** Each node turns its own log into events for the keys whose
  first-AZ home it is (:class:`NodeEvents`, the ``ReadNodeEvents`` RPC): the
  log is filtered where it lies. The node serving a subscription
  (:class:`EventStreams`) tails every node that way, one task a node, and
  merges what they send; a node that is down is asked again until it answers.
- **Cursor.** A subscription's position is one change-log sequence number per
  node. Every message carries it, encoded (:func:`encode_cursor`); an event's
  cursor covers the event and everything before it in every log, so resuming
  from it delivers everything after it at least once (the rest of a change
  that made several events may come again).
- **What is an event.** A new version (PUT, copy, completed multipart upload,
  a replica: its commit says so, as its record has the form of an edit, a
  stamp that is not its version stamp; and the versions hinted handoff hands
  back), a delete marker, an
  unversioned DELETE, or a version removed for good (the first time the node
  marks it, held there or not; a write's earlier try, ``Change.withdrawn``,
  only where it was held: no event of removing a try nobody saw there). A
  change that only edits
  an existing version (tags, ACL, replication status, a version made current
  again) is not an event. Internal buckets (``.buckets``, ``.uploads``) have none.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import struct
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import grpc

from node import records
from node.metrics import EVENT_STREAMS, EVENTS_SENT
from node.peers import Peers, ReplicaUnavailable
from node.replica_store import ReplicaStore
from tristore import credentials, errors, validation
from tristore.config import ClusterConfig, NodeSection, NodeSpec
from tristore.events import (
    CREATED_PUT,
    REMOVED_DELETE,
    REMOVED_MARKER,
    Event,
    Heartbeat,
    event_from_pb,
)
from tristore.model import NULL_VERSION, Change, ms_to_datetime
from tristore.pb import events_pb2, events_pb2_grpc
from tristore.placement import Placer

log = logging.getLogger(__name__)

#: Accepted heartbeat intervals a subscriber may choose (0: the node's
#: ``events_heartbeat_s``).
HEARTBEAT_MS_RANGE = range(100, 600_001)
#: Flags the position of a node whose log end is not known yet: it was down
#: when a subscription began "from now". The rest of the value is that time
#: (ms); the node, once back, gives what it received since (see ``since_ms``).
END = 1 << 63

# -- what a change-log entry means -----------------------------------------------


def first_home(placer: Placer, bucket: str, key: str) -> str:
    """The node whose change log a key's events come from."""
    return placer.place(bucket, key).azs[0].home.name


def events_of(change: Change, node: str, seq: int) -> list[Event]:
    """The events of one change-log entry, in stamp order.

    A version record whose ``version_stamp`` differs from its stamp is an edit
    of an existing version (tags, ACL, replication status, made current
    again), not an event, except in a commit marked ``created`` (a replica,
    new here) or a merge commit without a condition: hinted handoff giving
    the home everything its stand-in held, where the version may be new to
    the home (an edited version is then sent as created: at least once,
    never missed).
    """
    whole = change.merge and change.expect is None
    versions = list(change.versions)
    head = change.head
    if (
        head is not None
        and head.deleted
        and head.null_version
        and all(v.stamp != head.stamp for v in versions)
    ):
        # An unversioned DELETE is a version record only in its own commit;
        # hinted handoff carries it as the key's current record alone.
        versions.append(head)
    out: list[Event] = []
    for v in sorted(versions, key=lambda v: (v.vstamp, v.stamp)):
        edit = v.version_stamp is not None and v.version_stamp != v.stamp
        if edit and not (whole or change.created):
            continue
        if v.delete_marker:
            name = REMOVED_MARKER
        elif v.deleted:
            name = REMOVED_DELETE  # an unversioned DELETE: the null version is gone
        else:
            name = CREATED_PUT
        out.append(
            Event(
                name=name,
                bucket=change.bucket,
                key=change.key,
                version_id=v.version_id,
                size=0 if v.deleted else v.size,
                etag="" if v.deleted else v.etag,
                sequencer=v.vstamp.version_id,
                event_time=ms_to_datetime(v.vstamp.physical_ms),
                node=node,
                seq=seq,
            )
        )
    for gone in sorted(change.removed):
        out.append(
            Event(
                name=REMOVED_DELETE,
                bucket=change.bucket,
                key=change.key,
                version_id=gone.version_id,
                size=0,
                etag="",
                sequencer=change.stamp.version_id,
                event_time=ms_to_datetime(change.stamp.physical_ms),
                node=node,
                seq=seq,
            )
        )
    return out


# -- the cursor -------------------------------------------------------------------

CURSOR_FORMAT = 1
_HEAD = struct.Struct(">BHIH")  # format, cluster id, crc32 of the bucket, node count
_POS = struct.Struct(">HQ")  # node id, sequence number
_CRC = struct.Struct(">I")
MAX_CURSOR_CHARS = 64 * 1024

_MALFORMED = (
    "cursor {shown} is damaged or truncated: pass a cursor exactly as an event or "
    "heartbeat of this bucket's subscription carried it, or give none to start from "
    "now (or from the start of the logs)"
)


def _bucket_tag(bucket: str) -> int:
    return zlib.crc32(bucket.encode())


def encode_cursor(cluster_id: int, bucket: str, positions: Mapping[int, int]) -> str:
    """An opaque token: per node id, the last change-log entry handled."""
    body = _HEAD.pack(CURSOR_FORMAT, cluster_id, _bucket_tag(bucket), len(positions))
    body += b"".join(_POS.pack(nid, seq) for nid, seq in sorted(positions.items()))
    body += _CRC.pack(zlib.crc32(body))
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def decode_cursor(text: str, cluster_id: int, cluster_name: str, bucket: str) -> dict[int, int]:
    """The positions a cursor holds; InvalidArgument, saying what to do, if it
    is malformed or belongs to another cluster or bucket."""
    shown = repr(text if len(text) <= 40 else text[:37] + "...")
    if len(text) > MAX_CURSOR_CHARS:
        raise errors.InvalidArgument(_MALFORMED.format(shown=shown))
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise errors.InvalidArgument(_MALFORMED.format(shown=shown)) from None
    if len(raw) < _HEAD.size + _CRC.size:
        raise errors.InvalidArgument(_MALFORMED.format(shown=shown))
    body, (crc,) = raw[: -_CRC.size], _CRC.unpack(raw[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise errors.InvalidArgument(_MALFORMED.format(shown=shown))
    fmt, cid, tag, count = _HEAD.unpack_from(body)
    if fmt != CURSOR_FORMAT:
        raise errors.InvalidArgument(
            f"cursor {shown} has format {fmt}; this node reads format {CURSOR_FORMAT} "
            "(was it issued by a newer tristore?)"
        )
    if len(body) != _HEAD.size + count * _POS.size:
        raise errors.InvalidArgument(_MALFORMED.format(shown=shown))
    if cid != cluster_id:
        raise errors.InvalidArgument(
            f"cursor {shown} was issued by cluster id {cid}, and this is cluster "
            f"{cluster_name!r} (id {cluster_id}): a cursor resumes only in its own cluster"
        )
    if tag != _bucket_tag(bucket):
        raise errors.InvalidArgument(
            f"cursor {shown} was issued for another bucket than {bucket!r}: a cursor "
            "resumes only a subscription to the bucket it came from"
        )
    return dict(_POS.iter_unpack(body[_HEAD.size :]))


# -- one node's log ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeBatch:
    events: list[Event]
    #: Every entry up to here was read (the next read's ``after``).
    position: int
    last_seq: int


class NodeLog(Protocol):
    async def read(
        self,
        bucket: str,
        prefix: str,
        after: int,
        limit: int,
        wait_s: float,
        from_end: bool = False,
        since_ms: int = 0,
    ) -> NodeBatch: ...


class NodeEvents:
    """This node's change log as events, for the keys whose first-AZ home it is."""

    def __init__(self, me: NodeSpec, store: ReplicaStore, placer: Placer, cfg: NodeSection) -> None:
        self.me = me
        self.store = store
        self.placer = placer
        self.cfg = cfg
        #: Where the log stood when this process started, and when that was.
        self.boot_seq = store.log_seq
        self.boot_ms = int(time.time() * 1000)

    def _mine(self, bucket: str, key: str) -> bool:
        return first_home(self.placer, bucket, key) == self.me.name

    def _entry_events(self, seq: int, raw: bytes, bucket: str, prefix: str) -> list[Event]:
        try:
            change = records.decode_change(raw)
        except Exception:  # one bad entry must not stop every subscription
            log.exception("change-log entry %d cannot be decoded; no events for it", seq)
            return []
        if change.bucket != bucket or not change.key.startswith(prefix):
            return []
        if not self._mine(change.bucket, change.key):
            return []
        return events_of(change, self.me.name, seq)

    async def read(
        self,
        bucket: str,
        prefix: str,
        after: int,
        limit: int,
        wait_s: float,
        from_end: bool = False,
        since_ms: int = 0,
    ) -> NodeBatch:
        """Events after ``after`` (up to about ``limit``); with none, wait up to
        ``wait_s`` for one. ``from_end``: no events, and the end of the log as
        the position; or, if this process started after ``since_ms`` (when a
        subscription that could not reach it began), where the log stood then."""
        if from_end:
            started_since = since_ms and self.boot_ms >= since_ms - self.cfg.events_boot_margin_ms
            position = self.boot_seq if started_since else self.store.log_seq
            return NodeBatch([], position, self.store.log_seq)
        if 0 < after < self.store.trimmed_to:
            raise errors.CursorExpired(
                f"node {self.me.name} no longer holds its change log after position {after} "
                f"(entries up to {self.store.trimmed_to} were trimmed, past "
                f"[node] changelog_retention_s): subscribe afresh (without a cursor, or "
                "with --from-start for what is still kept); to bring a replica up to date "
                "use `tristore replication backfill`"
            )
        if after > self.store.log_seq:
            # The log is younger than the cursor: this node's data was wiped.
            log.warning(
                "change log is at %d, a subscriber at %d: reading it again from 0",
                self.store.log_seq,
                after,
            )
            after = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        needle = bucket.encode()
        batch_size, scan_max = self.cfg.events_scan_batch, self.cfg.events_scan_max
        events: list[Event] = []
        scanned = 0
        while True:
            if self.store.log_seq > after:
                entries = await self.store.read_log(after, batch_size)
                for seq, raw in entries:
                    after = seq
                    scanned += 1
                    if needle in raw:  # cheap: most entries of other buckets are not decoded
                        events += self._entry_events(seq, raw, bucket, prefix)
                    if len(events) >= limit:
                        break
                if events or scanned >= scan_max:
                    break
                if len(entries) == batch_size:
                    continue  # more of the log to read now
            if loop.time() >= deadline:
                break
            if not await self.store.wait_for_log(after, deadline - loop.time()):
                break
        return NodeBatch(events, after, self.store.log_seq)


class RemoteNodeEvents:
    """Another node's ReadNodeEvents, over the channel the node already has to it."""

    def __init__(self, spec: NodeSpec, channel: grpc.aio.Channel, timeout_s: float) -> None:
        self.spec = spec
        self.stub = credentials.SignedStub(
            events_pb2_grpc.EventServiceStub(channel),
            events_pb2.DESCRIPTOR.services_by_name["EventService"],
            credentials.process_signer(),
        )
        self.timeout_s = timeout_s

    async def read(
        self,
        bucket: str,
        prefix: str,
        after: int,
        limit: int,
        wait_s: float,
        from_end: bool = False,
        since_ms: int = 0,
    ) -> NodeBatch:
        request = events_pb2.ReadNodeEventsRequest(
            bucket=bucket,
            prefix=prefix,
            after=after,
            limit=limit,
            wait_ms=int(wait_s * 1000),
            from_end=from_end,
            since_ms=since_ms,
        )
        try:
            resp = await self.stub.ReadNodeEvents(request, timeout=wait_s + self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            err = errors.from_rpc_error(exc)
            if isinstance(err, errors.CursorExpired):
                raise err from None
            raise ReplicaUnavailable(
                f"node {self.spec.name}: {exc.code().name} {exc.details()}"
            ) from None
        return NodeBatch([event_from_pb(e) for e in resp.events], resp.position, resp.last_seq)


# -- a subscription ---------------------------------------------------------------


class EventStreams:
    """Serves subscriptions: tails every node's events and merges them."""

    def __init__(
        self,
        cfg: ClusterConfig,
        local: NodeEvents,
        peers: Peers,
        bucket_exists: Callable[[str], Awaitable[object]],
    ) -> None:
        self.cfg = cfg
        self.peers = peers
        self.bucket_exists = bucket_exists
        self.logs: dict[str, NodeLog] = {local.me.name: local}
        self.ids: dict[str, int] = {}
        self._refresh()

    def _refresh(self) -> None:
        """Read the logs of the nodes of the cluster map as it is now (nodes
        join and leave at run time; a subscription keeps the nodes it began with)."""
        timeout = self.cfg.node.replica_timeout_s
        for n in self.peers.nodes:
            if n.name not in self.logs:
                channel = self.peers.replica_for_map(n).channel
                self.logs[n.name] = RemoteNodeEvents(n, channel, timeout)
        self.ids = {n.name: n.id for n in self.peers.nodes}

    async def subscribe(
        self, bucket: str, prefix: str, cursor: str, from_start: bool, heartbeat_ms: int
    ) -> AsyncIterator[Event | Heartbeat]:
        """The subscription's messages: a heartbeat with the starting cursor
        first, then events, and a heartbeat after ``heartbeat_ms`` without one.
        Runs until the caller stops iterating."""
        validation.check_bucket_name(bucket)
        if len(prefix.encode("utf-8", errors="surrogatepass")) > validation.MAX_KEY_BYTES:
            raise errors.InvalidArgument(
                f"prefix is longer than a key can be ({validation.MAX_KEY_BYTES} bytes)"
            )
        if cursor and from_start:
            raise errors.InvalidArgument(
                "give a cursor or from_start, not both: a cursor already says where to start"
            )
        if heartbeat_ms and heartbeat_ms not in HEARTBEAT_MS_RANGE:
            raise errors.InvalidArgument(
                f"heartbeat interval {heartbeat_ms} ms is out of range "
                f"({HEARTBEAT_MS_RANGE.start}..{HEARTBEAT_MS_RANGE.stop - 1}, or 0 for "
                f"{self.cfg.node.events_heartbeat_s:g} s)"
            )
        self._refresh()
        positions = self._start(bucket, cursor, from_start)
        await self.bucket_exists(bucket)
        EVENT_STREAMS.inc()
        try:
            if not cursor and not from_start:
                # A cursor's marks of unread nodes are left to the tails: they
                # carry the time, which tells where such a node's log is to be
                # read from once it answers.
                await self._resolve_ends(bucket, prefix, positions)
            async for message in self._run(bucket, prefix, positions, heartbeat_ms / 1000):
                yield message
        finally:
            EVENT_STREAMS.dec()

    def _start(self, bucket: str, cursor: str, from_start: bool) -> dict[str, int]:
        cid, cname = self.cfg.cluster.id, self.cfg.cluster.name
        if cursor:
            by_id = decode_cursor(cursor, cid, cname, bucket)
            # A node added since the cursor was issued is read from its start;
            # one no longer in the map is dropped.
            return {name: by_id.get(nid, 0) for name, nid in self.ids.items()}
        return dict.fromkeys(self.ids, 0 if from_start else END | int(time.time() * 1000))

    async def _resolve_ends(self, bucket: str, prefix: str, positions: dict[str, int]) -> None:
        """The log end of every node, for a subscription "from now". A node
        that does not answer soon keeps its END mark; its tail resolves it later."""

        async def end(name: str) -> None:
            try:
                async with asyncio.timeout(self.cfg.node.replica_timeout_s):
                    batch = await self.logs[name].read(bucket, prefix, 0, 0, 0.0, from_end=True)
            except (ReplicaUnavailable, TimeoutError) as exc:
                log.info("subscription starts without %s's log end: %s", name, exc)
                return
            positions[name] = batch.position

        await asyncio.gather(*(end(n) for n, p in positions.items() if p & END))

    def _cursor(self, bucket: str, positions: Mapping[str, int]) -> str:
        return encode_cursor(
            self.cfg.cluster.id, bucket, {self.ids[n]: p for n, p in positions.items()}
        )

    async def _run(
        self, bucket: str, prefix: str, positions: dict[str, int], heartbeat_s: float
    ) -> AsyncIterator[Event | Heartbeat]:
        heartbeat_s = heartbeat_s or self.cfg.node.events_heartbeat_s
        queue: asyncio.Queue[tuple[str, NodeBatch | errors.CursorExpired]] = asyncio.Queue(
            maxsize=2 * len(positions)
        )
        tails = [
            asyncio.create_task(self._tail(name, bucket, prefix, pos, queue))
            for name, pos in positions.items()
        ]
        seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        remembered = self.cfg.node.events_dedup_remembered
        try:
            yield Heartbeat(self._cursor(bucket, positions))
            quiet_since = time.monotonic()
            while True:
                left = heartbeat_s - (time.monotonic() - quiet_since)
                try:
                    async with asyncio.timeout(max(0.0, left)):
                        name, batch = await queue.get()
                except TimeoutError:
                    yield Heartbeat(self._cursor(bucket, positions))
                    quiet_since = time.monotonic()
                    continue
                if isinstance(batch, errors.CursorExpired):
                    raise batch
                events = batch.events
                for i, e in enumerate(events):
                    # Mid-entry, the cursor stays before the entry: resuming
                    # there sends the whole change again rather than half of it.
                    whole = i + 1 == len(events) or events[i + 1].seq != e.seq
                    positions[name] = e.seq if whole else e.seq - 1
                    # A null version's id is not unique: its stamp is.
                    vid = e.sequencer if e.version_id == NULL_VERSION else e.version_id
                    ident = (e.key, vid, e.name)
                    if ident in seen:
                        continue
                    seen[ident] = None
                    if len(seen) > remembered:
                        seen.popitem(last=False)
                    EVENTS_SENT.inc()
                    yield replace(e, cursor=self._cursor(bucket, positions))
                    quiet_since = time.monotonic()
                positions[name] = batch.position
        finally:
            for t in tails:
                t.cancel()
            await asyncio.gather(*tails, return_exceptions=True)

    async def _tail(
        self,
        name: str,
        bucket: str,
        prefix: str,
        pos: int,
        queue: asyncio.Queue[tuple[str, NodeBatch | errors.CursorExpired]],
    ) -> None:
        """Read one node's events from ``pos`` on, in order, into ``queue``."""
        node_log = self.logs[name]
        ncfg = self.cfg.node
        delay = ncfg.events_retry_s
        while True:
            if not self.peers.is_up(name):
                await asyncio.sleep(delay)
                delay = min(ncfg.events_retry_max_s, delay * 2)
                continue
            try:
                if pos & END:
                    since = pos & ~END
                    batch = await node_log.read(bucket, prefix, 0, 0, 0.0, True, since)
                else:
                    batch = await node_log.read(
                        bucket, prefix, pos, ncfg.events_read_limit, ncfg.events_wait_s
                    )
            except errors.CursorExpired as exc:
                await queue.put((name, exc))  # the subscription ends with it
                return
            except ReplicaUnavailable as exc:
                log.debug("reading events of %s: %s", name, exc)
                await asyncio.sleep(delay)
                delay = min(ncfg.events_retry_max_s, delay * 2)
                continue
            except Exception:
                log.exception("reading events of %s failed", name)
                await asyncio.sleep(ncfg.events_retry_max_s)
                continue
            delay = ncfg.events_retry_s
            if batch.events or batch.position != pos:
                await queue.put((name, batch))
            pos = batch.position
