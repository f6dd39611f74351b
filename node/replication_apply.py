"""Replication apply: the calls replicators make on a destination (or, for
status, the source) cluster.

- :meth:`ReplicationApply.apply_replica` stores a version another cluster
  wrote, keeping its version id, and never moves a key backwards (its body
  sealed here under this cluster's keys, or, an SSE-C one, stored as the
  source stored it: :func:`check_sealed_replica`);
- :meth:`ReplicationApply.put_replication_status` records a replicator's word
  on one destination of a source version (or requeues it);
- :meth:`ReplicationApply.apply_replicas` and
  :meth:`ReplicationApply.put_replication_statuses` do many of those in one
  call: items of one key one after the other, in their order (so a batch
  cannot race itself), keys concurrently (so their writes share the pipes'
  messages and fsyncs);
- :meth:`ReplicationApply.settle_current` brings a key's current record back
  to its newest version after a race between a replica and a local write;
- :meth:`ReplicationApply.sync_modification` applies tags and ACLs changed on
  another cluster (replica-modification sync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from node.buckets import Buckets
from node.objects import Objects, replication_status_of
from node.protocol import Protocol, ReplicaHeld, ReplicaRemoved
from tristore import replication, sse, validation
from tristore.config import MAX_CHUNK_SIZE, ClusterConfig
from tristore.errors import (
    ConditionalRequestConflict,
    InvalidArgument,
    InvalidBucketName,
    InvalidRequest,
)
from tristore.model import SSE_TAG, VERSIONING_ENABLED, BucketInfo, ObjectVersion, evolve
from tristore.stamps import Stamp, check_skew

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class StatusUpdate:
    """One item of :meth:`ReplicationApply.put_replication_statuses`."""

    bucket: str
    key: str
    version_id: str
    destination: str
    status: str
    error: str = ""
    #: The record the status is for (:meth:`ReplicationApply.put_replication_status`).
    stamp: Stamp | None = None


async def per_key(
    items: Sequence[T], key_of: Callable[[T], tuple[str, str]], fn: Callable[[T], Awaitable[R]]
) -> list[R | Exception]:
    """``fn`` of every item: those of one key in their order, keys
    concurrently. The result or the exception of each, in the items' order."""
    out: list[R | Exception] = [InvalidRequest("not run")] * len(items)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(key_of(item), []).append(i)

    async def run(indexes: list[int]) -> None:
        for i in indexes:
            try:
                out[i] = await fn(items[i])
            except Exception as exc:  # noqa: BLE001 - this item's answer, not the call's
                out[i] = exc

    await asyncio.gather(*(run(ix) for ix in groups.values()))
    return out


#: An S3 ETag: the MD5 of the body, or of the parts' MD5s with "-<parts>".
_ETAG_RE = re.compile(r"^[0-9a-f]{32}(-[1-9][0-9]{0,4})?$")
_CLUSTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_OWNER = 128


async def _answer(work: Awaitable[None]) -> Exception | None:
    """``work``'s exception, as the answer of one item, or None."""
    try:
        await work
    except Exception as exc:  # noqa: BLE001 - this item's answer, not the call's
        return exc
    return None


def _status_groups(items: Sequence[StatusUpdate]) -> list[list[int]]:
    """The items' indexes in groups: COMPLETED and FAILED for different
    destinations of one version from one change-log entry (the same stamp)
    together; any other item alone. In the order of each group's first item."""
    groups: list[list[int]] = []
    at: dict[tuple[str, str, str, Stamp | None], int] = {}
    for i, u in enumerate(items):
        if u.status in (replication.COMPLETED, replication.FAILED):
            ident = (u.bucket, u.key, u.version_id, u.stamp)
            g = at.get(ident)
            if g is not None and all(items[j].destination != u.destination for j in groups[g]):
                groups[g].append(i)
                continue
            at[ident] = len(groups)
        groups.append([i])
    return groups


def _group_key(group: list[StatusUpdate]) -> tuple[str, str]:
    return group[0].bucket, group[0].key


def _wanted(status: str, error: str) -> str:
    """A destination's status as a version records it (``FAILED: why``)."""
    return f"{status}: {error}" if error and status == replication.FAILED else status


class _Separately(Exception):
    """A group of statuses to put one at a time (see
    :meth:`ReplicationApply._put_statuses_together`)."""


def _status_edit(
    bucket: str,
    key: str,
    version_id: str,
    destination: str,
    wanted: str,
    info: BucketInfo | None,
    stamp: Stamp | None,
) -> Callable[[ObjectVersion], ObjectVersion | None]:
    """The edit :meth:`ReplicationApply.put_replication_status` makes to the
    version's record: ``destination``'s status set to ``wanted`` (None: it
    is already); ``info``: the bucket's, for a requeue (PENDING)."""

    def edit(v: ObjectVersion) -> ObjectVersion | None:
        if stamp is not None and v.stamp < stamp:
            raise ConditionalRequestConflict(
                f"version {version_id} of {bucket}/{key} is not (yet) at the change "
                f"the status is for; retry"
            )
        if v.replication_targets.get(destination) == wanted:
            return None  # another copy of the change-log entry got here first
        if info is None and destination not in v.replication_targets:
            # A replicator may outrun the change that queued the version (a
            # requeue it read from one AZ's change log before the change was
            # acknowledged): it is told to try again shortly.
            raise ConditionalRequestConflict(
                f"version {version_id} of {bucket}/{key} is not (yet) queued for "
                f"{destination!r}; retry"
            )
        if info is not None:
            if v.replication_status == replication.REPLICA:
                raise InvalidRequest(f"{bucket}/{key}@{version_id} is a replica: it is not sent on")
            rules = info.replication
            names = {
                d.name for d in replication.destinations_for(rules, key, v.tags, v.delete_marker)
            }
            if destination not in names:
                raise InvalidArgument(
                    f"no enabled rule of bucket {bucket!r} sends {key!r} to {destination!r}"
                )
        targets = dict(v.replication_targets)
        targets[destination] = wanted
        return evolve(
            v, replication_targets=targets, replication_status=replication_status_of(v, targets)
        )

    return edit


def check_replica(version: ObjectVersion, origin: str, wall_ms: int, max_skew_ms: int) -> None:
    """A version a replicator brings, checked as strictly as a PUT checks what
    it stores (a replicator is a client like any other: a forged or broken
    version must not become current)."""
    validation.check_bucket_name(version.bucket)
    validation.check_key(version.key)
    if not _CLUSTER_RE.match(origin):
        raise InvalidArgument(f"origin cluster {origin[:80]!r} is not a cluster name")
    for what, stamp in (
        ("version", version.stamp),
        ("version", version.version_stamp),
        ("tag or ACL change", version.meta_stamp),
    ):
        if stamp is not None:
            check_skew(stamp.physical_ms, wall_ms, max_skew_ms, f"this node's ({what} stamp)")
    if version.deleted and not version.delete_marker:
        raise InvalidArgument("a replica is a version or a delete marker, not a removal")
    if version.delete_marker:
        if version.size or version.etag:
            raise InvalidArgument("a delete marker has no body, size or ETag")
    elif not _ETAG_RE.match(version.etag):
        raise InvalidArgument(f"ETag {version.etag[:80]!r} is not an MD5 (with -PARTS)")
    if version.size < 0:
        raise InvalidArgument(f"size {version.size} is negative")
    if len(version.owner) > MAX_OWNER:
        raise InvalidArgument(f"owner is longer than {MAX_OWNER} characters")
    if validation.normalize_metadata(version.metadata) != version.metadata:
        raise InvalidArgument("metadata names must be stored lower-case, without x-amz-meta-")
    validation.normalize_content_type(version.content_type)
    if validation.normalize_headers(version.headers) != version.headers:
        raise InvalidArgument("stored headers must have lower-case names and non-empty values")
    validation.normalize_tags(version.tags)
    validation.check_acl(version.acl)
    validation.check_storage_class(version.storage_class)
    validation.check_sse(version.sse)
    check_sealed_replica(version)


def check_sealed_replica(version: ObjectVersion) -> None:
    """The encryption fields of a replica. Empty: its body comes in plaintext
    (to be sealed here, as its ``sse`` or the bucket's default asks). Set: an
    SSE-C version shipped as its source stored it (a data key wrapped under
    the customer's key, the key's salted HMAC, ciphertext in chunks of
    ``chunk_size``, 0 for one chunk), stored as it is; only its form can be
    checked here (no key), its ciphertext is checked by AES-GCM when read."""
    if not (version.sse_key or version.sse_customer_hmac or version.sse_bucket):
        return
    if version.delete_marker:
        raise InvalidArgument("a delete marker has no encryption fields")
    if (
        len(version.sse_key) != sse.WRAPPED_KEY_SIZE
        or sse.scheme_of(version.sse_key) != sse.SCHEME_CUSTOMER_KEY
    ):
        raise InvalidArgument(
            "a replica comes in plaintext or sealed under a customer key (SSE-C): its data "
            f"key must be wrapped under one ({sse.WRAPPED_KEY_SIZE} bytes, scheme "
            f"{sse.SCHEME_CUSTOMER_KEY.decode()}), not {len(version.sse_key)} bytes"
        )
    if len(version.sse_customer_hmac) != sse.CUSTOMER_HMAC_SIZE:
        raise InvalidArgument(
            f"an SSE-C replica carries its key's salted HMAC ({sse.CUSTOMER_HMAC_SIZE} "
            f"bytes), not {len(version.sse_customer_hmac)} bytes"
        )
    if version.sse:
        raise InvalidArgument("an SSE-C replica has no server-side encryption (sse) of its own")
    if version.sse_bucket:
        validation.check_bucket_name(version.sse_bucket)
    if version.chunk_size and not SSE_TAG < version.chunk_size <= MAX_CHUNK_SIZE + SSE_TAG:
        raise InvalidArgument(
            f"an SSE-C replica's chunks are {version.chunk_size} bytes; stored chunks hold "
            f"{SSE_TAG + 1} to {MAX_CHUNK_SIZE + SSE_TAG} bytes"
        )


async def _bytes(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


class ReplicationApply:
    """The replication calls this node serves as coordinator."""

    def __init__(
        self, cfg: ClusterConfig, protocol: Protocol, objects: Objects, buckets: Buckets
    ) -> None:
        self.ncfg = cfg.node
        self.protocol = protocol
        self.objects = objects
        self.buckets = buckets
        self.clock = protocol.clock
        self.max_skew_ms = cfg.cluster.max_clock_skew_ms

    async def apply_replica(
        self,
        version: ObjectVersion,
        origin: str,
        body: AsyncIterator[bytes],
        bucket_info: BucketInfo | None = None,
        whole: bool = False,
    ) -> bool:
        """Store a version another cluster wrote, with its version id, ETag,
        Last-Modified, metadata, tags and ACL; it becomes the key's current
        version only if it is newer than the current one (never backwards: see
        :meth:`Protocol.write`). A version already here, or added by another
        apply of it while this one ran (:class:`ReplicaHeld`), takes the
        incoming tags and ACL if they changed later than its own
        (:meth:`sync_modification`). False when nothing changed (held
        already, or removed here for good).
        ``bucket_info``: the destination bucket's, when the caller has read
        it already. ``whole``: the body came in the message (a batched
        item): the write alone looks for the version, and only when the key
        is here already. Else the version is looked for before its body
        travels."""
        check_replica(version, origin, self.clock.wall_ms(), self.max_skew_ms)
        info = bucket_info or await self.buckets.require_bucket(version.bucket)
        if info.versioning != VERSIONING_ENABLED:
            raise InvalidRequest(
                f"destination bucket {version.bucket!r} must have versioning Enabled to "
                "receive replicas"
            )
        if not whole:
            # A body still to travel does not, when the version is here already.
            held, removed, _ = await self.protocol.spread_version(
                version.bucket, version.key, version.vstamp
            )
            if removed:
                return False
            if held is not None:
                return await self.sync_modification(held, version)
        try:
            return await self._store_replica(version, origin, body, info)
        except ReplicaRemoved:
            return False
        except ReplicaHeld as exc:
            # Another apply of this version got in first (the write looks for
            # it unless the key was new here: Protocol._write_replica).
            return await self.sync_modification(exc.held, version)

    async def _store_replica(
        self, version: ObjectVersion, origin: str, body: AsyncIterator[bytes], info: BucketInfo
    ) -> bool:
        """:meth:`apply_replica` of a version not held here yet: its record and body."""
        base = evolve(
            version,
            data_id=b"",
            inline=None,
            chunk_size=0,
            removed=(),
            null_version=False,
            replication_status=replication.REPLICA,
            replication_targets={},
            origin_cluster=origin,
            sse_key=b"",
            sse_customer_hmac=b"",
            sse_bucket="",
        )
        if version.delete_marker:
            await self.protocol.write(base, replica=True)
            return True
        multipart = "-" in version.etag
        limit = self.ncfg.max_object_size if not multipart else 5 * 1024**4
        if version.sse_key:
            # SSE-C: stored as the source stored it; only the customer's key opens it.
            sealed = evolve(
                base,
                sse_key=version.sse_key,
                sse_customer_hmac=version.sse_customer_hmac,
                sse_bucket=version.sse_bucket if version.sse_bucket != version.bucket else "",
                chunk_size=version.chunk_size,
            )
            await self.objects.store_sealed(sealed, body, limit)
            return True
        # Encrypted here under this cluster's keys, as the source's SSE asks (or
        # this bucket's default): the replicator brought the plaintext.
        base, cipher = await self.objects.encryption.sealer(base, info, None)
        await self.objects.store(
            base,
            body,
            version.size,
            "" if multipart else version.etag,
            limit,
            etag=version.etag,
            replica=True,
            cipher=cipher,
        )
        return True

    def _check_batch(self, n: int) -> None:
        if n > self.ncfg.replication_max_batch:
            raise InvalidArgument(
                f"{n} items in one call; at most {self.ncfg.replication_max_batch} "
                "([node] replication_max_batch)"
            )

    async def apply_replicas(
        self, items: Sequence[tuple[ObjectVersion, str, bytes]]
    ) -> list[bool | Exception]:
        """:meth:`apply_replica` of many (version, origin, whole body) items;
        each bucket named is read once for all of its items."""
        self._check_batch(len(items))
        infos = await self._buckets_of({it[0].bucket for it in items})

        async def one(it: tuple[ObjectVersion, str, bytes]) -> bool:
            info = infos.get(it[0].bucket)
            if isinstance(info, BaseException):
                # A bad item says what is wrong with it before the bucket does.
                check_replica(it[0], it[1], self.clock.wall_ms(), self.max_skew_ms)
                raise info
            return await self.apply_replica(it[0], it[1], _bytes(it[2]), info, whole=True)

        return await per_key(items, lambda it: (it[0].bucket, it[0].key), one)

    async def _buckets_of(self, names: set[str]) -> dict[str, BucketInfo | BaseException]:
        """Each bucket's info, or the error reading it raised (an invalid
        name is left to the item's own checks, which say it better)."""
        valid = []
        for name in sorted(names):
            with contextlib.suppress(InvalidBucketName, InvalidArgument):
                validation.check_bucket_name(name)
                valid.append(name)
        read = await asyncio.gather(
            *(self.buckets.require_bucket(b) for b in valid), return_exceptions=True
        )
        return dict(zip(valid, read, strict=True))

    async def put_replication_statuses(
        self, items: Sequence[StatusUpdate]
    ) -> list[Exception | None]:
        """:meth:`put_replication_status` of many items. Each bucket named is
        read once for all of its items (a backfill's or a replicator's call
        names one or a few), not once an item; the statuses of one version's
        destinations from one change-log entry are one write
        (:meth:`_put_statuses_together`)."""
        self._check_batch(len(items))
        infos = await self._buckets_of({u.bucket for u in items})

        async def one(u: StatusUpdate) -> None:
            info = infos.get(u.bucket)
            if isinstance(info, BaseException):
                raise info
            await self.put_replication_status(
                u.bucket, u.key, u.version_id, u.destination, u.status, u.error, info, u.stamp
            )

        async def unit(group: list[StatusUpdate]) -> list[Exception | None]:
            if len(group) > 1 and not isinstance(infos.get(group[0].bucket), BaseException):
                try:
                    await self._put_statuses_together(group)
                    return [None] * len(group)
                except _Separately:
                    pass
            return [await _answer(one(u)) for u in group]

        groups = _status_groups(items)
        answers = await per_key([[items[i] for i in g] for g in groups], _group_key, unit)
        out: list[Exception | None] = [None] * len(items)
        for g, answer in zip(groups, answers, strict=True):
            each = [answer] * len(g) if isinstance(answer, Exception) else answer
            for i, r in zip(g, each, strict=True):
                out[i] = r
        return out

    async def put_replication_status(
        self,
        bucket: str,
        key: str,
        version_id: str,
        destination: str,
        status: str,
        error: str,
        bucket_info: BucketInfo | None = None,
        stamp: Stamp | None = None,
    ) -> None:
        """A replicator's word on one destination of a source version: COMPLETED
        or FAILED. PENDING (re)queues the version for a destination its bucket's
        rules send it to (backfill of versions older than the rule, replay of a
        failed one): the change lands in the change log, where replicators find it.
        ``bucket_info``: the bucket's, when the caller has read it already.

        ``stamp``: the record the replicator sent (its change-log entry's).
        A record older than it is not the one to mark: the change is in a
        change log before it is acknowledged, so a replicator may send it
        and report while a coordinator still holds (in its cache, vouched
        for by the witness) the record before it, already COMPLETED from the
        change before: marked there, the report changed nothing, and the
        change's own record stayed PENDING for good. Such a report reads the
        version again from the replicas (finishing the change), else is
        refused with ConditionalRequestConflict (retriable)."""
        states = (replication.COMPLETED, replication.FAILED, replication.PENDING)
        if status not in states:
            raise InvalidArgument(
                f"replication status must be one of {', '.join(states)}, not {status!r}"
            )
        wanted = _wanted(status, error)
        if status == replication.PENDING and bucket_info is None:
            bucket_info = await self.buckets.require_bucket(bucket)
        info = bucket_info if status == replication.PENDING else None
        edit = _status_edit(bucket, key, version_id, destination, wanted, info, stamp)
        await self._update_status(bucket, key, version_id, edit, bucket_info)

    async def _update_status(
        self,
        bucket: str,
        key: str,
        version_id: str,
        edit: Callable[[ObjectVersion], ObjectVersion | None],
        bucket_info: BucketInfo | None,
    ) -> None:
        await self.objects.update_version(
            bucket,
            key,
            version_id,
            edit,
            markers=True,
            settle=lambda: self.settle_current(bucket, key),
            info=bucket_info,
            guess=True,
        )

    async def _put_statuses_together(self, items: Sequence[StatusUpdate]) -> None:
        """COMPLETED or FAILED for several destinations of one version, from
        one change-log entry: one write for all of them. Written one after
        the other, each would be a conditional write of its own, and each
        record but the last, still PENDING for the others, would be in the
        change log again, where the replicator would take it for a version
        to send (again) to them. Any item the edit refuses sends the group
        back to :meth:`put_replication_status` one item at a time (raises
        :class:`_Separately`), where each gets its own answer."""
        first = items[0]
        edits = [
            _status_edit(
                u.bucket,
                u.key,
                u.version_id,
                u.destination,
                _wanted(u.status, u.error),
                None,
                u.stamp,
            )
            for u in items
        ]

        def edit(v: ObjectVersion) -> ObjectVersion | None:
            out = v
            for one in edits:
                try:
                    edited = one(out)
                except Exception as exc:
                    raise _Separately from exc
                out = edited if edited is not None else out
            return None if out is v else out

        await self._update_status(first.bucket, first.key, first.version_id, edit, None)

    async def settle_current(self, bucket: str, key: str) -> None:
        """Make the key's newest version (by version stamp) current if it is not.

        A replica that became current took a record stamp above the current
        one; a local write that raced it may have committed with a lower stamp
        and been stored as noncurrent, though its version is newer. Last writer
        wins by stamp inside a cluster, by version stamp across clusters: this
        brings the two back together, so both sides of a two-way pair settle
        on the same current version. Run after every replication status update
        of a noncurrent version (each version a cluster replicates gets one
        once it is through). A key that changes meanwhile is left to the next one."""
        current, _ = await self.protocol.read(bucket, key)
        if current is None or not (current.is_version or current.delete_marker):
            return
        newest = await self._newest_version(bucket, key)
        if newest is None or newest.vstamp <= current.vstamp:
            return
        self.clock.observe(current.stamp)
        promoted = evolve(newest, stamp=self.clock.now(), version_stamp=newest.vstamp, removed=())
        log.info(
            "%s/%s: newest version %s made current over %s",
            bucket,
            key,
            newest.version_id,
            current.version_id,
        )
        with contextlib.suppress(ConditionalRequestConflict):
            await self.protocol.write(promoted, expect=current.stamp)

    async def _newest_version(self, bucket: str, key: str) -> ObjectVersion | None:
        """The newest version (or delete marker) any reachable AZ of the key holds."""
        held = await self.protocol.versions_in_azs(bucket, key, None, 1, "", every=False)
        found = [v for _, _, vs, _ in held for v in vs]
        return max(found, key=lambda v: v.vstamp) if found else None

    async def sync_modification(self, held: ObjectVersion, incoming: ObjectVersion) -> bool:
        """Tags and ACL of a version another cluster changed, applied here if
        that change is newer than the last one here (last writer wins on the
        modification stamp, so two clusters changing one version settle on the
        same tags). The change is not marked for replication again: no loops."""

        def edit(v: ObjectVersion) -> ObjectVersion | None:
            if incoming.modified <= v.modified:
                return None
            return evolve(
                v, tags=dict(incoming.tags), acl=incoming.acl, meta_stamp=incoming.modified
            )

        if incoming.modified <= held.modified:
            return False
        self.clock.observe(incoming.modified)
        updated = await self.objects.update_version(held.bucket, held.key, held.version_id, edit)
        return updated.meta_stamp == incoming.modified
