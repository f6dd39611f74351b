"""The object API as any node serves it: the coordinator's write, read and list paths.

Write: validate, take a stamp, write to one node in each of the key's three AZs
in parallel (the home node, or the next node of that AZ with a hint when the home
is down), reply once all three AZs have fsynced it. Small bodies travel inline
with the commit; large ones are first streamed as chunks to the same three nodes.

Once all three AZs hold it, the stamp is recorded at a witness-group majority
(the read barrier) and the version enters this coordinator's cache.

Read: ask the witness majority for the newest acknowledged stamp ``w``. A cached
version at least as new as ``w`` is served as is. Otherwise one node in each AZ
is asked; the newest version is returned, and if it is newer than ``w`` (or the
witness does not know the key) it is an unfinished write, finished first:
written back to the AZs that lack it and recorded at the witness.

List: scan every node of N-2 whole AZs (each key lives in three AZs, and hints
stay inside their AZ), merge by newest stamp, and check each record at the
witness the way a read does; when too few AZs are whole, merge every reachable
node.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from node import keys
from node.cache import MetadataCache
from node.metrics import CACHE_HITS, CACHE_MISSES, OBJECT_BYTES, QUORUM_FAILURES, WRITE_BACKS
from node.peers import Peers, Replica, ReplicaUnavailable
from node.replica_store import CommitResult
from node.witness_client import Fence, WitnessFleet
from tristore import replication, validation
from tristore.config import ClusterConfig, NodeSpec
from tristore.errors import (
    BadDigest,
    BucketAlreadyExists,
    BucketNotEmpty,
    ConditionalRequestConflict,
    EntityTooLarge,
    IncompleteBody,
    InvalidArgument,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    NotModified,
    PreconditionFailed,
    QuorumUnavailable,
    ServiceUnavailable,
)
from tristore.model import (
    NULL_VERSION,
    VERSIONING_ENABLED,
    Acl,
    BucketInfo,
    ByteRange,
    Change,
    Conditions,
    CopyResult,
    CopySource,
    DeleteResult,
    ListEntry,
    ListPage,
    ObjectInfo,
    ObjectVersion,
    Tagging,
    VersionEntry,
    VersionPage,
    ms_to_datetime,
)
from tristore.placement import AzReplicas, Placement, Placer
from tristore.stamps import ZERO, HybridClock, Stamp

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Times a write is re-stamped when a replica already holds a newer stamp.
RESTAMP_ATTEMPTS = 4
#: Rounds of "witnesses refused the record; read the nodes and record again".
CONFIRM_ATTEMPTS = 3
#: Records each node returns per scan round of a listing.
SCAN_BATCH = 1000
#: Keys of one listing page read in full at once when the witness doubts them.
LIST_VERIFY_PARALLEL = 32
_STAGE_QUEUE = 4


@dataclass(frozen=True, slots=True)
class PutHeader:
    bucket: str
    key: str
    content_type: str = ""
    metadata: dict[str, str] | None = None
    #: Declared length, or -1 when unknown.
    size: int = -1
    content_md5: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    acl: str = ""
    storage_class: str = ""
    sse: str = ""
    #: "*": create only if the key has no current object.
    if_none_match: str = ""
    #: An ETag: replace only that object (compare-and-swap).
    if_match: str = ""


@dataclass(frozen=True, slots=True)
class GetResult:
    info: ObjectInfo
    #: Inclusive byte range carried by ``body`` (0, -1 for an empty body).
    first: int
    last: int
    body: AsyncIterator[bytes]


@dataclass(frozen=True, slots=True)
class _ReplicaRead:
    placement: Placement
    #: The newest version any answering AZ holds.
    best: ObjectVersion | None
    #: Replicas holding ``best``, this node first.
    holders: list[Replica]
    #: (AZ, replica asked, what it holds) for every AZ that answered.
    answers: list[tuple[AzReplicas, Replica, ObjectVersion | None]]


class _AzDown(Exception):
    def __init__(self, az: str, nodes: list[str]) -> None:
        super().__init__(az)
        self.az = az
        self.nodes = nodes


def _quorum_error(failed: list[_AzDown], what: str) -> QuorumUnavailable:
    for f in failed:
        QUORUM_FAILURES.labels(f.az).inc()
    parts = "; ".join(
        f"AZ {f.az} is unavailable (nodes {', '.join(f.nodes)} unreachable)" for f in failed
    )
    return QuorumUnavailable(f"{parts}: {what} needs all three of the key's AZs")


def _etag_matches(header: str, etag: str) -> bool:
    """An If-Match / If-None-Match list: ``*`` or ETags, quoted or weak or not."""
    for item in header.split(","):
        tag = item.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == etag:
            return True
    return False


def check_conditions(v: ObjectVersion, c: Conditions | None, copy_source: bool = False) -> None:
    """S3's evaluation of HTTP preconditions (dates compare to the second).

    If-Match wins over If-Unmodified-Since, If-None-Match over If-Modified-Since.
    A copy source answers every failed condition with 412, GET and HEAD answer a
    failed If-None-Match or If-Modified-Since with 304.
    """
    if not c:
        return
    modified_s = v.last_modified_ms // 1000
    if c.if_match:
        if not _etag_matches(c.if_match, v.etag):
            raise PreconditionFailed(f"If-Match {c.if_match!r}: the ETag is {v.etag!r}")
    elif c.if_unmodified_since is not None and modified_s > int(c.if_unmodified_since.timestamp()):
        raise PreconditionFailed(
            f"modified after {c.if_unmodified_since.isoformat()} (If-Unmodified-Since)"
        )
    unchanged = NotModified if not copy_source else PreconditionFailed
    if c.if_none_match:
        if _etag_matches(c.if_none_match, v.etag):
            raise unchanged(f"If-None-Match {c.if_none_match!r}: the ETag is {v.etag!r}")
    elif c.if_modified_since is not None and modified_s <= int(c.if_modified_since.timestamp()):
        raise unchanged(f"not modified after {c.if_modified_since.isoformat()} (If-Modified-Since)")


def _parse_version_id(version_id: str) -> Stamp | None:
    """The stamp of a version id; None for the null version."""
    if version_id == NULL_VERSION:
        return None
    try:
        return Stamp.from_version_id(version_id)
    except ValueError:
        raise InvalidArgument(f"version id {version_id!r} is not valid") from None


def _bucket_info(record: ObjectVersion) -> BucketInfo:
    return BucketInfo(
        record.key,
        ms_to_datetime(record.last_modified_ms),
        record.versioning,
        record.replication_rules,
    )


def to_replicate(
    v: ObjectVersion, bucket: BucketInfo, delete_marker: bool = False
) -> ObjectVersion:
    """``v`` marked PENDING for each destination its bucket's rules send it to."""
    dests = replication.destinations_for(bucket.replication, v.key, v.tags, delete_marker)
    if not dests:
        return v
    return replace(
        v,
        replication_status=replication.PENDING,
        replication_targets={d.name: replication.PENDING for d in dests},
    )


def requeue_modified(v: ObjectVersion, bucket: BucketInfo) -> ObjectVersion:
    """``v`` after a change of its tags or ACL, PENDING again for every
    destination that takes the change: those its bucket's rules send it to or,
    for a replica, those of rules with replica-modification sync on (which is
    how a change made to a replica reaches the cluster it came from)."""
    rules = bucket.replication
    if v.replication_status == replication.REPLICA:
        rules = tuple(r for r in rules if r.replica_modifications)
    dests = replication.destinations_for(rules, v.key, v.tags, v.delete_marker)
    if not dests:
        return v
    targets = dict(v.replication_targets)
    targets.update({d.name: replication.PENDING for d in dests})
    return replace(v, replication_targets=targets, replication_status=_status_of(v, targets))


def _status_of(v: ObjectVersion, targets: dict[str, str]) -> str:
    """A version's overall status: a replica stays REPLICA whatever it sends on."""
    if v.replication_status == replication.REPLICA:
        return replication.REPLICA
    return replication.overall_status(targets)


def _hint_for(node: NodeSpec, azr: AzReplicas) -> str:
    """The home a node stands in for when it takes a write for ``azr``."""
    return "" if node.name == azr.home.name else azr.home.name


async def _single(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def _rechunk(body: AsyncIterator[bytes], head: bytes, size: int) -> AsyncIterator[bytes]:
    """Cut a stream of arbitrary pieces into pieces of exactly ``size`` (the last shorter)."""
    buf = bytearray(head)
    async for piece in body:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def encode_token(key: str, is_prefix: bool) -> str:
    raw = json.dumps({"k": key, "p": is_prefix}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, bool]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        obj = json.loads(raw)
        key, is_prefix = obj["k"], obj["p"]
        if not isinstance(key, str) or not isinstance(is_prefix, bool):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "the continuation token is not one this service issued; start the listing again"
        ) from None
    return key, is_prefix


class Coordinator:
    def __init__(
        self,
        cfg: ClusterConfig,
        me: NodeSpec,
        peers: Peers,
        placer: Placer,
        clock: HybridClock,
        witness: WitnessFleet | None = None,
    ) -> None:
        self.cfg = cfg
        self.ncfg = cfg.node
        self.me = me
        self.peers = peers
        self.placer = placer
        self.clock = clock
        self.witness = witness
        self.cache = MetadataCache(cfg.node.cache_bytes)
        #: AZs where a node is handing keys to another (node/membership.py).
        self.moving_azs: Callable[[], set[str]] = set

    # -- buckets -----------------------------------------------------------

    async def create_bucket(self, name: str) -> BucketInfo:
        validation.check_bucket_name(name)
        current, _ = await self._read(keys.BUCKETS, name)
        if current is not None and not current.deleted:
            raise BucketAlreadyExists(f"bucket {name!r} already exists")
        expect = current.stamp if current is not None else ZERO
        self.clock.observe(expect)
        record = ObjectVersion(keys.BUCKETS, name, self.clock.now(), null_version=True)
        try:
            record = await self._write(record, expect=expect)
        except ConditionalRequestConflict:
            raise BucketAlreadyExists(
                f"bucket {name!r} was just created by another request"
            ) from None
        return _bucket_info(record)

    async def head_bucket(self, name: str) -> BucketInfo:
        return _bucket_info(await self._bucket_record(name))

    async def _bucket_record(self, name: str) -> ObjectVersion:
        # A linearizable read like any other: the bucket record is checked at the
        # witness and served from the metadata cache while it is current, so a
        # bucket deleted through one node is gone through every node at once.
        validation.check_bucket_name(name)
        current, _ = await self._read(keys.BUCKETS, name)
        if current is None or current.deleted:
            raise NoSuchBucket(f"bucket {name!r} does not exist")
        return current

    async def delete_bucket(self, name: str) -> None:
        record = await self._bucket_record(name)
        page = await self.list_object_versions(name, max_keys=1)
        if page.versions or page.common_prefixes:
            raise BucketNotEmpty(
                f"bucket {name!r} is not empty; delete its objects (every version and "
                "delete marker, when it has been versioned) first"
            )
        self.clock.observe(record.stamp)
        tomb = ObjectVersion(keys.BUCKETS, name, self.clock.now(), deleted=True, null_version=True)
        await self._write(tomb, expect=record.stamp)

    async def put_bucket_versioning(self, name: str, status: str) -> None:
        validation.check_versioning_status(status)

        def edit(record: ObjectVersion) -> ObjectVersion | None:
            if record.versioning == status:
                return None
            if record.replication_rules and status != VERSIONING_ENABLED:
                raise InvalidRequest(
                    f"bucket {name!r} has replication rules: versioning cannot be suspended "
                    "(delete the replication configuration first)"
                )
            return replace(record, versioning=status)

        await self._update_bucket(name, edit)

    async def _update_bucket(
        self, name: str, edit: Callable[[ObjectVersion], ObjectVersion | None]
    ) -> ObjectVersion:
        """Change a bucket's record (compare-and-swap at its home); ``edit``
        returns None when there is nothing to change."""
        for _attempt in range(RESTAMP_ATTEMPTS):
            record = await self._bucket_record(name)
            edited = edit(record)
            if edited is None:
                return record
            self.clock.observe(record.stamp)
            updated = replace(edited, stamp=self.clock.now(), version_stamp=record.vstamp)
            try:
                return await self._write(updated, expect=record.stamp)
            except ConditionalRequestConflict:
                continue
        raise ConditionalRequestConflict(
            f"bucket {name!r} kept changing while it was updated; retry"
        )

    async def put_bucket_replication(
        self, name: str, rules: list[replication.Rule]
    ) -> tuple[replication.Rule, ...]:
        remotes = [r.name for r in self.cfg.remotes]

        def edit(record: ObjectVersion) -> ObjectVersion:
            checked = replication.check_rules(rules, remotes, record.versioning)
            return replace(record, replication_rules=checked)

        return (await self._update_bucket(name, edit)).replication_rules

    async def get_bucket_replication(self, name: str) -> tuple[replication.Rule, ...]:
        return (await self._bucket_record(name)).replication_rules

    async def delete_bucket_replication(self, name: str) -> None:
        await self._update_bucket(
            name, lambda r: replace(r, replication_rules=()) if r.replication_rules else None
        )

    async def list_buckets(self) -> list[BucketInfo]:
        out: list[BucketInfo] = []
        token: str | None = None
        while True:
            page = await self._list(keys.BUCKETS, "", "", validation.MAX_LIST_KEYS, token, "")
            out += [BucketInfo(e.key, e.last_modified) for e in page.contents]
            if not page.is_truncated:
                return out
            token = page.next_continuation_token

    async def _require_bucket(self, name: str) -> BucketInfo:
        return await self.head_bucket(name)

    # -- PUT ---------------------------------------------------------------

    async def put_object(self, header: PutHeader, body: AsyncIterator[bytes]) -> ObjectInfo:
        validation.check_bucket_name(header.bucket)
        validation.check_key(header.key)
        base = self._new_version(header, header.content_type, header.metadata, header.tags)
        if header.size > self.ncfg.max_object_size:
            raise EntityTooLarge(
                f"object of {header.size} bytes is larger than the limit of "
                f"{self.ncfg.max_object_size} bytes for one PUT"
            )
        if header.if_none_match and header.if_none_match.strip() != "*":
            raise InvalidArgument("If-None-Match on a PUT takes only '*' (create if absent)")
        if header.if_none_match and header.if_match:
            raise InvalidArgument("give If-None-Match or If-Match on a PUT, not both")
        bucket = await self._require_bucket(header.bucket)
        base = replace(base, null_version=bucket.versioning != VERSIONING_ENABLED)
        base = to_replicate(base, bucket)
        expect = await self._put_precondition(header)
        version = await self._store(
            base, body, header.size, header.content_md5, self.ncfg.max_object_size, expect
        )
        return ObjectInfo.of(version)

    async def _store(
        self,
        base: ObjectVersion,
        body: AsyncIterator[bytes],
        size: int,
        content_md5: str,
        limit: int,
        expect: Stamp | None = None,
        etag: str | None = None,
        replica: bool = False,
    ) -> ObjectVersion:
        """Store ``body`` as a new version of ``base``'s key: inline when small,
        else staged in chunks on one node per AZ, then committed in all three.

        ``size`` (-1: unknown) and ``content_md5`` ("": none) are what the
        client declared; ``etag`` replaces the body's MD5 as the ETag (a
        completed multipart upload's). A ``replica`` keeps ``base``'s version
        id (see :meth:`_write_replica`)."""
        # Read just past the inline limit to learn whether the body is small.
        head = bytearray()
        stream = body.__aiter__()
        small = True
        while len(head) <= self.ncfg.inline_max:
            try:
                head += await anext(stream)
            except StopAsyncIteration:
                break
        else:
            small = False
        if small:
            data = bytes(head)
            md5 = self._check_body(size, content_md5, len(data), hashlib.md5(data).hexdigest())
            version = replace(base, size=len(data), etag=etag or md5, inline=data)
            if not replica:
                version = replace(version, stamp=self.clock.now())
            version = await self._write(version, expect=expect, replica=replica)
        else:
            chunks = _rechunk(stream, bytes(head), self.ncfg.chunk_size)
            version = await self._put_large(
                base, chunks, size, content_md5, limit, expect, etag, replica
            )
        OBJECT_BYTES.labels("in").inc(version.size)
        return version

    # -- replication (the calls replicators make) -------------------------------

    async def apply_replica(
        self, version: ObjectVersion, origin: str, body: AsyncIterator[bytes]
    ) -> bool:
        """Store a version another cluster wrote, with its version id, ETag,
        Last-Modified, metadata, tags and ACL; it becomes the key's current
        version only if it is newer than the current one (never backwards: see
        :meth:`_write_replica`). A version already here takes the incoming tags
        and ACL if they changed later than its own (:meth:`_sync_modification`).
        False when nothing changed."""
        validation.check_key(version.key)
        info = await self._require_bucket(version.bucket)
        if info.versioning != VERSIONING_ENABLED:
            raise InvalidRequest(
                f"destination bucket {version.bucket!r} must have versioning Enabled to "
                "receive replicas"
            )
        held, removed = await self._spread_version(version.bucket, version.key, version.vstamp)
        if removed:
            return False
        if held is not None:
            return await self._sync_modification(held, version)
        base = replace(
            version,
            data_id=b"",
            inline=None,
            chunk_size=0,
            removed=(),
            null_version=False,
            replication_status=replication.REPLICA,
            replication_targets={},
            origin_cluster=origin,
        )
        if version.delete_marker:
            await self._write(base, replica=True)
            return True
        multipart = "-" in version.etag
        await self._store(
            base,
            body,
            version.size,
            "" if multipart else version.etag,
            self.ncfg.max_object_size if not multipart else 5 * 1024**4,
            etag=version.etag,
            replica=True,
        )
        return True

    async def put_replication_status(
        self, bucket: str, key: str, version_id: str, destination: str, status: str, error: str
    ) -> None:
        """A replicator's word on one destination of a source version: COMPLETED
        or FAILED. PENDING (re)queues the version for a destination its bucket's
        rules send it to (backfill of versions older than the rule, replay of a
        failed one): the change lands in the change log, where replicators find it."""
        states = (replication.COMPLETED, replication.FAILED, replication.PENDING)
        if status not in states:
            raise InvalidArgument(
                f"replication status must be one of {', '.join(states)}, not {status!r}"
            )
        wanted = f"{status}: {error}" if error and status == replication.FAILED else status
        info = await self._require_bucket(bucket) if status == replication.PENDING else None

        def edit(v: ObjectVersion) -> ObjectVersion | None:
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
                    raise InvalidRequest(
                        f"{bucket}/{key}@{version_id} is a replica: it is not sent on"
                    )
                rules = info.replication
                names = {
                    d.name
                    for d in replication.destinations_for(rules, key, v.tags, v.delete_marker)
                }
                if destination not in names:
                    raise InvalidArgument(
                        f"no enabled rule of bucket {bucket!r} sends {key!r} to {destination!r}"
                    )
            targets = dict(v.replication_targets)
            targets[destination] = wanted
            return replace(
                v, replication_targets=targets, replication_status=_status_of(v, targets)
            )

        await self._update_version(bucket, key, version_id, edit, markers=True, settle=True)

    async def _settle_current(self, bucket: str, key: str) -> None:
        """Make the key's newest version (by version stamp) current if it is not.

        A replica that became current took a record stamp above the current
        one; a local write that raced it may have committed with a lower stamp
        and been stored as noncurrent, though its version is newer. Last writer
        wins by stamp inside a cluster, by version stamp across clusters: this
        brings the two back together, so both sides of a two-way pair settle
        on the same current version. Run after every replication status update
        of a noncurrent version (each version a cluster replicates gets one
        once it is through). A key that changes meanwhile is left to the next one."""
        current, _ = await self._read(bucket, key)
        if current is None or not (current.is_version or current.delete_marker):
            return
        newest = await self._newest_version(bucket, key)
        if newest is None or newest.vstamp <= current.vstamp:
            return
        self.clock.observe(current.stamp)
        promoted = replace(newest, stamp=self.clock.now(), version_stamp=newest.vstamp, removed=())
        log.info(
            "%s/%s: newest version %s made current over %s",
            bucket,
            key,
            newest.version_id,
            current.version_id,
        )
        with contextlib.suppress(ConditionalRequestConflict):
            await self._write(promoted, expect=current.stamp)

    async def _newest_version(self, bucket: str, key: str) -> ObjectVersion | None:
        """The newest version (or delete marker) any reachable AZ of the key holds."""
        held = await self._versions_in_azs(bucket, key, None, 1, "", every=False)
        found = [v for _, _, vs, _ in held for v in vs]
        return max(found, key=lambda v: v.vstamp) if found else None

    def _new_version(
        self,
        header: PutHeader,
        content_type: str,
        metadata: dict[str, str] | None,
        tags: dict[str, str] | None,
    ) -> ObjectVersion:
        """The validated fields of a new version (stamp and body come later)."""
        return ObjectVersion(
            header.bucket,
            header.key,
            ZERO,
            content_type=validation.normalize_content_type(content_type),
            metadata=validation.normalize_metadata(metadata),
            tags=validation.normalize_tags(tags),
            acl=validation.check_acl(header.acl),
            owner=self.cfg.cluster.name,
            storage_class=validation.check_storage_class(header.storage_class),
            sse=validation.check_sse(header.sse),
        )

    async def _put_precondition(self, header: PutHeader) -> Stamp | None:
        """Check a conditional PUT against the current object; the stamp its
        commit must not find exceeded (None for an unconditional PUT)."""
        if not header.if_none_match and not header.if_match:
            return None
        current, _ = await self._read(header.bucket, header.key)
        exists = current is not None and not current.deleted
        if header.if_none_match and exists:
            raise PreconditionFailed(
                f"{header.bucket}/{header.key} already exists (If-None-Match: *)"
            )
        if header.if_match:
            if not exists:
                raise NoSuchKey(
                    f"key {header.key!r} does not exist in bucket {header.bucket!r} (If-Match)"
                )
            assert current is not None
            if not _etag_matches(header.if_match, current.etag):
                raise PreconditionFailed(
                    f"If-Match {header.if_match!r}: the current ETag is {current.etag!r}"
                )
        expect = current.stamp if current is not None else ZERO
        self.clock.observe(expect)
        return expect

    @staticmethod
    def _check_body(declared: int, content_md5: str, size: int, md5_hex: str) -> str:
        if declared >= 0 and size != declared:
            raise IncompleteBody(
                f"the body had {size} bytes but the request declared {declared}; nothing was stored"
            )
        if content_md5 and content_md5.lower() != md5_hex:
            raise BadDigest(
                f"the body's MD5 is {md5_hex}, not the {content_md5} the request gave; "
                "nothing was stored"
            )
        return md5_hex

    async def _put_large(
        self,
        base: ObjectVersion,
        chunks: AsyncIterator[bytes],
        declared: int,
        content_md5: str,
        limit: int,
        expect: Stamp | None,
        etag: str | None,
        replica: bool,
    ) -> ObjectVersion:
        placement = self.placer.place(base.bucket, base.key)
        targets = await self._pick_targets(placement, conditional=expect is not None)
        data_id = os.urandom(keys.DATA_ID_SIZE)
        queues: list[asyncio.Queue[tuple[int, bytes] | None]] = [
            asyncio.Queue(_STAGE_QUEUE) for _ in targets
        ]

        async def drain(
            q: asyncio.Queue[tuple[int, bytes] | None],
        ) -> AsyncIterator[tuple[int, bytes]]:
            while (item := await q.get()) is not None:
                yield item

        tasks = [
            asyncio.create_task(self.peers.replica(node).stage(data_id, drain(q)))
            for (node, _home), q in zip(targets, queues, strict=True)
        ]
        md5 = hashlib.md5()
        size = 0
        try:
            index = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise EntityTooLarge(
                        f"the body is larger than the limit of {limit} bytes; nothing was stored"
                    )
                await asyncio.to_thread(md5.update, chunk)
                for q, task in zip(queues, tasks, strict=True):
                    await self._feed(q, (index, chunk), task)
                index += 1
            for q, task in zip(queues, tasks, strict=True):
                await self._feed(q, None, task)
            await asyncio.gather(*tasks)
        except ReplicaUnavailable as exc:
            for node, _home in targets:
                if node.name in str(exc):
                    self.peers.mark_down(node.name, str(exc))
            raise ServiceUnavailable(
                f"a replica failed while receiving the body ({exc}); nothing was stored, retry"
            ) from None
        finally:
            for task in tasks:
                task.cancel()
        md5_hex = self._check_body(declared, content_md5, size, md5.hexdigest())
        version = replace(
            base,
            stamp=base.stamp if replica else self.clock.now(),
            size=size,
            etag=etag or md5_hex,
            data_id=data_id,
            chunk_size=self.ncfg.chunk_size,
        )
        return await self._write(version, targets, expect, replica)

    @staticmethod
    async def _feed(
        q: asyncio.Queue[tuple[int, bytes] | None],
        item: tuple[int, bytes] | None,
        task: asyncio.Task[None],
    ) -> None:
        """Hand ``item`` to a stage stream, or raise its error if it has failed."""
        if task.done():
            task.result()
            raise ReplicaUnavailable("a replica closed its stage stream early")
        put = asyncio.ensure_future(q.put(item))
        done, _ = await asyncio.wait({put, task}, return_when=asyncio.FIRST_COMPLETED)
        if put not in done:
            put.cancel()
            task.result()
            raise ReplicaUnavailable("a replica closed its stage stream early")

    async def _pick_targets(
        self, placement: Placement, conditional: bool = False
    ) -> list[tuple[NodeSpec, str]]:
        """One node per AZ for a streamed body, with the home it stands in for.
        A conditional write's first AZ is always its home (see _commit_all)."""
        if any(not any(self.peers.is_up(n.name) for n in azr.nodes) for azr in placement.azs):
            # Look again before refusing: what is known may be a probe interval old.
            await self.peers.probe_once()
        targets: list[tuple[NodeSpec, str]] = []
        failed: list[_AzDown] = []
        for i, azr in enumerate(placement.azs):
            node = next((n for n in azr.nodes if self.peers.is_up(n.name)), None)
            if conditional and i == 0:
                node = azr.home
            if node is None:
                failed.append(_AzDown(azr.az, [n.name for n in azr.nodes]))
            else:
                targets.append((node, _hint_for(node, azr)))
        if failed:
            raise _quorum_error(failed, "a write")
        return targets

    def _candidates(self, azr: AzReplicas) -> list[NodeSpec]:
        """The AZ's nodes to try, in order: those believed up. When none is, all
        of them: what is known of a peer's health can be a probe interval old
        (at start-up, say), and a dead node refuses at once on a live network."""
        up = [n for n in azr.nodes if self.peers.is_up(n.name)]
        return up or list(azr.nodes)

    # -- the three-AZ commit ---------------------------------------------------

    async def _write(
        self,
        head: ObjectVersion,
        targets: list[tuple[NodeSpec, str]] | None = None,
        expect: Stamp | None = None,
        replica: bool = False,
    ) -> ObjectVersion:
        """Make ``head`` the key's current record in all three AZs; returns it
        with the stamp it got.

        A ``replica`` (a version another cluster wrote, brought by a replicator)
        goes through :meth:`_write_replica`.

        An unconditional write first learns the key's floor: the witness's stamp
        (every acknowledged write of the key is at or below it), or, when the
        witness does not know the key, the newest stamp its replicas hold. Its
        stamp is taken above that, so it is ordered after every write that was
        acknowledged before it began. A replica that holds a newer stamp than
        this write's at commit holds a *concurrent* write, which may come after
        it: the write is then added as a version there but does not become
        current (last writer wins), and it is not stamped again. (Stamping again
        would make it current a second time after a concurrent delete a reader
        may already have seen: flicker.)

        Without witnesses, a replica holding a newer stamp makes the write take a
        stamp above it and go again.

        With ``expect`` the write is conditional: the key's first AZ takes it
        first, and refuses it (ConditionalRequestConflict, nothing written
        anywhere) when its current record is newer than ``expect``. Racing
        conditional writes are thereby serialized there: one wins.
        """
        if replica:
            return await self._write_replica(head, targets)
        placement = self.placer.place(head.bucket, head.key)
        fence = self._fence(head.bucket, head.key)
        if expect is None and self.witness is not None:
            floor = await self._floor(head.bucket, head.key)
            if floor is not None:
                self.clock.observe(floor)
                if head.stamp <= floor:
                    head = replace(head, stamp=self.clock.now())
            await self._commit_change(replace(Change.of(head), merge=True), placement, targets)
            await self._confirm(head, fence)
            return head
        for attempt in range(RESTAMP_ATTEMPTS):
            change = Change.of(head, expect)
            results = await self._commit_change(change, placement, targets)
            newer = [r.current for r in results if not r.applied and r.current > head.stamp]
            if not newer:
                break
            self.clock.observe(max(newer))
            if attempt + 1 < RESTAMP_ATTEMPTS:
                if expect is not None:
                    expect = head.stamp  # the first AZ holds this try: go on from it
                left = (head.stamp,) if head.version_stamp is None and head.is_version else ()
                head = replace(head, stamp=self.clock.now(), removed=head.removed + left)
        await self._confirm(head, fence)
        return head

    async def _write_replica(
        self, v: ObjectVersion, targets: list[tuple[NodeSpec, str]] | None
    ) -> ObjectVersion:
        """A version another cluster wrote keeps its version id (``vstamp``)
        and becomes current only if it is newer than the current version *by
        version stamp*: a record's own stamp also moves when its tags or status
        change, which must not outrank a newer version. So every cluster
        settles on the same current version of a key, whatever order it learns
        of its versions in (last writer wins; stamps carry cluster and node ids,
        so there are no ties). An older one is added as a noncurrent version.
        The record is stamped above the current one, by a conditional write
        tried again if the key moves meanwhile: current records' stamps only
        grow, as the witness needs."""
        bucket, key = v.bucket, v.key
        self.clock.observe(v.stamp)
        for _attempt in range(RESTAMP_ATTEMPTS):
            current, _ = await self._read(bucket, key)
            if current is not None:
                self.clock.observe(current.stamp)
            record = replace(v, stamp=self.clock.now(), version_stamp=v.vstamp)
            if current is not None and current.vstamp >= v.vstamp:
                change = Change(bucket, key, record.stamp, versions=(record,))
                await self._commit_change(change, self.placer.place(bucket, key), targets)
                return record
            try:
                return await self._write(
                    record, targets, expect=current.stamp if current is not None else ZERO
                )
            except ConditionalRequestConflict:
                continue
        raise ConditionalRequestConflict(f"{bucket}/{key} kept changing; the replica is retried")

    async def _floor(self, bucket: str, key: str) -> Stamp | None:
        """A stamp at or above every acknowledged write of the key: the
        witness's, or (unknown there) the newest its replicas hold."""
        assert self.witness is not None
        w = await self.witness.check(bucket, key)
        if w is not None:
            return w
        rr = await self._read_replicas(bucket, key)
        return rr.best.stamp if rr.best is not None else None

    def _fence(self, bucket: str, key: str) -> Fence:
        return self.witness.fence(bucket, key) if self.witness is not None else ()

    async def _confirm(self, version: ObjectVersion, fence: Fence) -> None:
        """Make a version durable in three AZs visible: record it at a witness
        majority (so every later read knows of it), then cache it.

        ``fence`` was taken before the change (or the read that found it) began.
        If witnesses restarted since, they refuse it (see node/witness_client.py):
        then the nodes are read under a new fence and the newest they hold,
        finished where it must be, is recorded instead.
        """
        if self.witness is not None:
            bucket, key = version.bucket, version.key
            for _ in range(CONFIRM_ATTEMPTS):
                if await self.witness.record(bucket, key, version.stamp, fence):
                    break
                fence = self._fence(bucket, key)
                rr = await self._read_replicas(bucket, key)
                if rr.best is not None and rr.best.stamp > version.stamp:
                    await self._write_back_lacking(rr.best, rr)
                    version = rr.best
            else:
                raise ServiceUnavailable(
                    f"the witnesses of {bucket}/{key} kept restarting while this request "
                    "confirmed it; it is durable on the nodes, retry to see it confirmed"
                )
        self.cache.put(version)

    async def _commit_change(
        self,
        change: Change,
        placement: Placement,
        targets: list[tuple[NodeSpec, str]] | None = None,
    ) -> list[CommitResult]:
        """Commit ``change`` in all three AZs (a conditional one in the first AZ
        first, and in the others only once that one took it)."""
        azs = list(enumerate(placement.azs))
        if change.expect is None:
            return await self._commit_all(change, azs, targets)
        first = await self._commit_all(change, azs[:1], targets)
        if first[0].conflict:
            raise ConditionalRequestConflict(
                f"{change.bucket}/{change.key} changed while this conditional request ran; "
                "retry it (it will be checked against the new state)"
            )
        if not first[0].applied:
            return first  # newer than this try: restamp and go again
        return first + await self._commit_all(replace(change, expect=None), azs[1:], targets)

    async def _commit_all(
        self,
        change: Change,
        azs: list[tuple[int, AzReplicas]],
        targets: list[tuple[NodeSpec, str]] | None,
    ) -> list[CommitResult]:
        async def one_az(i: int, azr: AzReplicas) -> CommitResult:
            if targets is not None:
                candidates = [targets[i]]
            elif change.expect is not None:
                # The home decides a conditional change whatever this node believes
                # of its health (a view that lags, at start-up say, must not make
                # two coordinators ask two different nodes); a fallback decides
                # only when the home does not answer.
                candidates = [(n, _hint_for(n, azr)) for n in azr.nodes]
            else:
                candidates = [(n, _hint_for(n, azr)) for n in self._candidates(azr)]
            for node, hint_for in candidates:
                try:
                    return await self.peers.replica(node).commit(change, hint_for)
                except ReplicaUnavailable as exc:
                    self.peers.mark_down(node.name, str(exc))
            raise _AzDown(azr.az, [n.name for n in azr.nodes])

        results = await asyncio.gather(*(one_az(i, azr) for i, azr in azs), return_exceptions=True)
        failed = [r for r in results if isinstance(r, _AzDown)]
        if failed:
            raise _quorum_error(failed, "a write")
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if isinstance(r, CommitResult)]

    # -- GET / HEAD ----------------------------------------------------------------

    async def _ask_az(
        self, azr: AzReplicas, call: Callable[[Replica], Awaitable[_T]]
    ) -> tuple[Replica, _T]:
        """``call`` on the first node of the AZ that answers (_AzDown if none does)."""
        for node in self._candidates(azr):
            replica = self.peers.replica(node)
            try:
                return replica, await call(replica)
            except ReplicaUnavailable as exc:
                self.peers.mark_down(node.name, str(exc))
        raise _AzDown(azr.az, [n.name for n in azr.nodes])

    async def _read_replicas(self, bucket: str, key: str) -> _ReplicaRead:
        """What one node of each of the key's AZs holds (bodies up to inline_max included)."""
        placement = self.placer.place(bucket, key)

        results = await asyncio.gather(
            *(self._ask_az(a, lambda r: r.read_meta(bucket, key, True)) for a in placement.azs),
            return_exceptions=True,
        )
        answers: list[tuple[AzReplicas, Replica, ObjectVersion | None]] = []
        down: list[_AzDown] = []
        for azr, r in zip(placement.azs, results, strict=True):
            if isinstance(r, _AzDown):
                down.append(r)
            elif isinstance(r, BaseException):
                raise r
            else:
                answers.append((azr, *r))
        if not answers:
            raise _quorum_error(down, "a read")
        found = [v for _, _, v in answers if v is not None]
        best = max(found, key=lambda v: v.stamp) if found else None
        holders: list[Replica] = []
        if best is not None:
            self.clock.observe(best.stamp)
            holders = [rep for _, rep, v in answers if v is not None and v.stamp == best.stamp]
            holders.sort(key=lambda rep: rep.spec.name != self.me.name)
        return _ReplicaRead(placement, best, holders, answers)

    async def _read(self, bucket: str, key: str) -> tuple[ObjectVersion | None, list[Replica]]:
        """The key's current version, linearizably, and replicas known to hold it.

        The witness majority gives ``w``, the newest acknowledged stamp. A cached
        version at least as new as ``w`` is current. Otherwise the replicas are
        read; a version newer than ``w`` (or any version, when the witness does
        not know the key) may be an unfinished write, and is finished (written
        back to three AZs and recorded at the witness) before it is returned, so
        no later read can return anything older.
        """
        if self.witness is None:
            rr = await self._read_replicas(bucket, key)
            return rr.best, rr.holders
        cached = self.cache.get(bucket, key)
        if self.ncfg.unsafe_skip_witness and cached is not None:
            CACHE_HITS.inc()
            return cached, []
        w = await self.witness.check(bucket, key)
        if cached is not None and w is not None and cached.stamp >= w:
            CACHE_HITS.inc()
            return cached, []
        CACHE_MISSES.inc()
        fence = self._fence(bucket, key)  # before the nodes are read: see _confirm
        rr = await self._read_replicas(bucket, key)
        best = rr.best
        if best is None:
            if w is not None:
                raise ServiceUnavailable(
                    f"the replicas that answered for {bucket}/{key} hold no version, but one "
                    "was acknowledged; retry when more of its AZs are reachable"
                )
            return None, []
        if w is not None and best.stamp < w:
            raise ServiceUnavailable(
                f"the replicas that answered for {bucket}/{key} are behind the newest "
                "acknowledged version; retry when more of its AZs are reachable"
            )
        if w is None or best.stamp > w:
            await self._finish(best, rr, fence)
        else:
            self.cache.put(best)
        return best, rr.holders

    async def _finish(self, v: ObjectVersion, rr: _ReplicaRead, fence: Fence) -> None:
        """Write ``v`` back to every AZ that answered without it, then confirm it."""
        await self._write_back_lacking(v, rr)
        await self._confirm(v, fence)

    async def _write_back_lacking(self, v: ObjectVersion, rr: _ReplicaRead) -> None:
        """Write ``v`` back to every AZ that answered without it.

        An AZ that did not answer at all is left alone: the version is then held
        by the AZs that answered, and every later read takes the newest version
        of the AZs it reaches.
        """
        lacking = [azr for azr, _, held in rr.answers if held is None or held.stamp != v.stamp]
        if lacking:
            WRITE_BACKS.inc()
            log.info(
                "finishing %s/%s@%s: writing back to %s",
                v.bucket,
                v.key,
                v.version_id,
                ", ".join(a.az for a in lacking),
            )
            results = await asyncio.gather(
                *(self._write_back(v, azr, rr.holders) for azr in lacking), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, _AzDown)]
            if failed:
                raise _quorum_error(failed, "finishing an interrupted write")
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    async def _write_back(
        self,
        v: ObjectVersion,
        azr: AzReplicas,
        holders: list[Replica],
        merge: bool = False,
        as_version: bool = False,
    ) -> None:
        """Write ``v`` to one node of ``azr``: as the key's current record (if
        newer than the one there), or ``as_version`` only as one of its versions."""
        if as_version:
            change = Change(v.bucket, v.key, v.stamp, versions=(v,), merge=True)
        else:
            change = replace(Change.of(v), merge=True) if merge else Change.of(v)
        for node in self._candidates(azr):
            replica = self.peers.replica(node)
            try:
                if v.data_id:
                    await replica.stage(v.data_id, self._copy_chunks(v, holders))
                await replica.commit(change, _hint_for(node, azr))
                return
            except ReplicaUnavailable as exc:
                self.peers.mark_down(node.name, str(exc))
        raise _AzDown(azr.az, [n.name for n in azr.nodes])

    async def _copy_chunks(
        self, v: ObjectVersion, holders: list[Replica]
    ) -> AsyncIterator[tuple[int, bytes]]:
        index = 0
        async for piece in self._stream_body(v, holders, 0, v.size):
            yield index, piece
            index += 1

    async def _current(
        self, bucket: str, key: str, version_id: str = "", markers: bool = False
    ) -> tuple[ObjectVersion, list[Replica]]:
        """The version a GET or HEAD is about: the current one, or ``version_id``
        (a delete marker only with ``markers``: it has no body)."""
        version, holders, _ = await self._lookup(bucket, key, version_id, markers)
        return version, holders

    async def _lookup(
        self, bucket: str, key: str, version_id: str = "", markers: bool = False
    ) -> tuple[ObjectVersion, list[Replica], ObjectVersion | None]:
        """:meth:`_current`, and the key's current record it read on the way."""
        validation.check_key(key)
        validation.check_bucket_name(bucket)
        wanted = _parse_version_id(version_id) if version_id else None
        # The bucket and the key are read side by side; a missing bucket wins.
        exists, read = await asyncio.gather(
            self._require_bucket(bucket), self._read(bucket, key), return_exceptions=True
        )
        if isinstance(exists, BaseException):
            raise exists
        if isinstance(read, BaseException):
            raise read
        current, holders = read
        if not version_id:
            if current is None or current.deleted:
                marker = (
                    f" (its current version is delete marker {current.version_id})"
                    if current is not None and current.delete_marker
                    else ""
                )
                raise NoSuchKey(f"key {key!r} does not exist in bucket {bucket!r}{marker}")
            return current, holders, current
        if current is not None and current.is_version and current.version_id == version_id:
            version: ObjectVersion | None = current
        else:
            version, holders = await self._read_version(bucket, key, wanted)
        if version is None:
            raise NoSuchVersion(f"version {version_id} of {bucket}/{key} does not exist")
        if version.delete_marker and not markers:
            raise MethodNotAllowed(
                f"version {version_id} of {bucket}/{key} is a delete marker; it has no body"
            )
        return version, holders, current

    async def _read_version(
        self, bucket: str, key: str, vstamp: Stamp | None
    ) -> tuple[ObjectVersion | None, list[Replica]]:
        """One version (``None``: the null version) as the key's AZs hold it.

        Every reachable AZ is asked: a version written anywhere is found, one
        removed anywhere is gone. Replicas holding it come back for its body.
        """
        placement = self.placer.place(bucket, key)

        results = await asyncio.gather(
            *(
                self._ask_az(
                    a, lambda r: r.read_versions(bucket, key, vstamp, vstamp is None, 1, True)
                )
                for a in placement.azs
            ),
            return_exceptions=True,
        )
        answers = [r for r in results if not isinstance(r, BaseException)]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, _AzDown):
                raise r
        if not answers:
            raise _quorum_error([r for r in results if isinstance(r, _AzDown)], "a read")
        if any(removed for _, (_, removed) in answers):
            return None, []
        found = [(rep, v) for rep, (vs, _) in answers for v in vs]
        if not found:
            return None, []
        best = max((v for _, v in found), key=lambda v: (v.vstamp, v.stamp))
        holders = [rep for rep, v in found if v.vstamp == best.vstamp and v.data_id == best.data_id]
        holders.sort(key=lambda rep: rep.spec.name != self.me.name)
        return best, holders

    async def _versions_in_azs(
        self,
        bucket: str,
        key: str,
        vstamp: Stamp | None,
        limit: int,
        what: str,
        every: bool = True,
    ) -> list[tuple[AzReplicas, Replica, list[ObjectVersion], bool]]:
        """What one node of each of the key's AZs holds of its versions (with
        inline bodies): version ``vstamp``, or the newest ``limit``; and whether
        the one asked for was removed for good. With ``every``, an AZ that does
        not answer fails the whole ``what``; otherwise it is left out."""
        placement = self.placer.place(bucket, key)
        results = await asyncio.gather(
            *(
                self._ask_az(a, lambda r: r.read_versions(bucket, key, vstamp, False, limit, True))
                for a in placement.azs
            ),
            return_exceptions=True,
        )
        down = [r for r in results if isinstance(r, _AzDown)]
        if down and every:
            raise _quorum_error(down, what)
        out = []
        for azr, r in zip(placement.azs, results, strict=True):
            if isinstance(r, _AzDown):
                continue
            if isinstance(r, BaseException):
                raise r
            rep, (vs, removed) = r
            out.append((azr, rep, vs, removed))
        return out

    async def _spread_version(
        self, bucket: str, key: str, vstamp: Stamp
    ) -> tuple[ObjectVersion | None, bool]:
        """(the version as the key's AZs hold it, whether it was removed for
        good). A version only some AZs hold is first written back to the others:
        an earlier try that reached only some AZs (one was down) is finished
        this way, never taken for done. Every AZ must answer."""
        held_by = await self._versions_in_azs(bucket, key, vstamp, 1, "checking a version")
        answers: list[tuple[AzReplicas, Replica, ObjectVersion | None]] = []
        for azr, rep, vs, removed in held_by:
            if removed:
                return None, True  # removed here for good: it never comes back
            answers.append((azr, rep, vs[0] if vs else None))
        held = [(rep, v) for _, rep, v in answers if v is not None]
        if not held:
            return None, False
        v = max((v for _, v in held), key=lambda v: v.stamp)
        lacking = [azr for azr, _, got in answers if got is None]
        if lacking:
            WRITE_BACKS.inc()
            log.info(
                "finishing %s/%s@%s: writing it back to %s",
                bucket,
                key,
                v.version_id,
                ", ".join(a.az for a in lacking),
            )
            holders = [rep for rep, _ in held]
            # As a version only: its record stamp may be above the key's current
            # record (a later status or tag change), and it must not become
            # current where it lands. The current record follows separately.
            written = await asyncio.gather(
                *(self._write_back(v, a, holders, as_version=True) for a in lacking),
                return_exceptions=True,
            )
            failed = [r for r in written if isinstance(r, _AzDown)]
            if failed:
                raise _quorum_error(failed, "finishing an earlier try")
            for w in written:
                if isinstance(w, BaseException):
                    raise w
            rr = await self._read_replicas(bucket, key)
            if rr.best is not None:
                await self._write_back_lacking(rr.best, rr)
        return v, False

    async def _sync_modification(self, held: ObjectVersion, incoming: ObjectVersion) -> bool:
        """Tags and ACL of a version another cluster changed, applied here if
        that change is newer than the last one here (last writer wins on the
        modification stamp, so two clusters changing one version settle on the
        same tags). The change is not marked for replication again: no loops."""

        def edit(v: ObjectVersion) -> ObjectVersion | None:
            if incoming.modified <= v.modified:
                return None
            return replace(
                v, tags=dict(incoming.tags), acl=incoming.acl, meta_stamp=incoming.modified
            )

        if incoming.modified <= held.modified:
            return False
        self.clock.observe(incoming.modified)
        updated = await self._update_version(held.bucket, held.key, held.version_id, edit)
        return updated.meta_stamp == incoming.modified

    async def head_object(
        self, bucket: str, key: str, version_id: str = "", conditions: Conditions | None = None
    ) -> ObjectInfo:
        version, _ = await self._current(bucket, key, version_id)
        check_conditions(version, conditions)
        return ObjectInfo.of(version)

    async def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None = None,
        version_id: str = "",
        conditions: Conditions | None = None,
    ) -> GetResult:
        version, holders = await self._current(bucket, key, version_id)
        check_conditions(version, conditions)
        if byte_range is not None:
            first, last = validation.resolve_range(byte_range.start, byte_range.end, version.size)
        else:
            first, last = 0, version.size - 1
        length = last - first + 1
        OBJECT_BYTES.labels("out").inc(length)
        if version.inline is not None:
            body = _single(version.inline[first : last + 1])
        else:
            body = self._stream_body(version, holders, first, length)
        return GetResult(ObjectInfo.of(version), first, last, body)

    async def _stream_body(
        self, version: ObjectVersion, holders: list[Replica], offset: int, length: int
    ) -> AsyncIterator[bytes]:
        """Stream from one holder; if it fails, resume from the next one. With no
        holders known (a cache hit), try one node of each of the key's AZs."""
        if not holders:
            placement = self.placer.place(version.bucket, version.key)
            nodes = [n for azr in placement.azs for n in self._candidates(azr)]
            nodes.sort(key=lambda n: n.name != self.me.name)
            holders = [self.peers.replica(n) for n in nodes]
        sent = 0
        last_error: Exception | None = None
        for replica in holders:
            try:
                async for piece in replica.read_data(
                    version.data_id, version.chunk_size, offset + sent, length - sent
                ):
                    sent += len(piece)
                    yield piece
                if sent == length:
                    return
            except (ReplicaUnavailable, LookupError) as exc:
                last_error = exc
                log.warning(
                    "body of %s/%s from %s failed: %s",
                    version.bucket,
                    version.key,
                    replica.spec.name,
                    exc,
                )
        raise ServiceUnavailable(
            f"no replica could deliver the rest of {version.bucket}/{version.key} "
            f"after {sent} of {length} bytes ({last_error}); retry"
        )

    # -- DELETE ----------------------------------------------------------------

    async def delete_object(self, bucket: str, key: str, version_id: str = "") -> DeleteResult:
        """S3's DELETE: without a version id, a delete marker (versioned bucket)
        or the removal of the null version (unversioned); with one, that version
        is removed for good, and the next newest becomes current if it was."""
        validation.check_key(key)
        info = await self._require_bucket(bucket)
        if version_id:
            return await self._delete_version(bucket, key, version_id)
        now = self.clock.now()
        if info.versioning == VERSIONING_ENABLED:
            marker = ObjectVersion(bucket, key, now, deleted=True, delete_marker=True)
        elif info.versioning:
            marker = ObjectVersion(
                bucket, key, now, deleted=True, delete_marker=True, null_version=True
            )
        else:
            # S3 answers a DELETE of a missing key with success: the tombstone is
            # cheap and keeps last-writer-wins ordering with any write racing it.
            await self._write(ObjectVersion(bucket, key, now, deleted=True, null_version=True))
            return DeleteResult()
        marker = to_replicate(replace(marker, owner=self.cfg.cluster.name), info, True)
        marker = await self._write(marker)
        return DeleteResult(marker.version_id, True)

    async def _delete_version(self, bucket: str, key: str, version_id: str) -> DeleteResult:
        wanted = _parse_version_id(version_id)
        placement = self.placer.place(bucket, key)
        for _attempt in range(RESTAMP_ATTEMPTS):
            current, _ = await self._read(bucket, key)
            if current is not None and current.is_version and current.version_id == version_id:
                # The current version goes: the next newest takes its place.
                target = current
                following = await self._versions_after(bucket, key, target.vstamp)
                self.clock.observe(current.stamp)
                now = self.clock.now()
                if following is not None:
                    head = replace(following, stamp=now, version_stamp=following.vstamp, removed=())
                else:
                    head = ObjectVersion(bucket, key, now, deleted=True)
                head = replace(head, removed=(target.vstamp,))
                try:
                    await self._write(head, expect=current.stamp)
                except ConditionalRequestConflict:
                    continue
                return DeleteResult(version_id, target.delete_marker)
            found, _ = await self._read_version(bucket, key, wanted)
            if found is None:
                return DeleteResult(version_id, False)  # as S3: nothing to delete is no error
            now = self.clock.now()
            await self._commit_change(Change(bucket, key, now, removed=(found.vstamp,)), placement)
            return DeleteResult(version_id, found.delete_marker)
        raise ConditionalRequestConflict(
            f"{bucket}/{key} kept changing while version {version_id} was deleted; retry"
        )

    async def _versions_after(self, bucket: str, key: str, vstamp: Stamp) -> ObjectVersion | None:
        """The newest version of the key older than ``vstamp``, as its AZs hold it."""
        held = await self._versions_in_azs(bucket, key, None, 4, "deleting the current version")
        older = [v for _, _, vs, _ in held for v in vs if v.vstamp < vstamp]
        if not older:
            return None
        return max(older, key=lambda v: (v.vstamp, v.stamp))

    # -- tags and ACLs ---------------------------------------------------------

    async def _version_for_update(
        self, bucket: str, key: str, version_id: str, markers: bool = False
    ) -> tuple[ObjectVersion, ObjectVersion | None]:
        """(the version, the current record when the version is current);
        delete markers only with ``markers``."""
        version, _, current = await self._lookup(bucket, key, version_id, markers)
        return (version, current) if version is current else (version, None)

    async def _update_version(
        self,
        bucket: str,
        key: str,
        version_id: str,
        edit: Callable[[ObjectVersion], ObjectVersion | None],
        modifies: bool = False,
        markers: bool = False,
        settle: bool = False,
    ) -> ObjectVersion:
        """Change a version's record in place (same version id, same
        Last-Modified); ``edit`` returning None leaves it as it is. A change
        that ``modifies`` the version (its tags or ACL, as a user sees them) is
        stamped as such and queued again for the destinations that take it."""
        placement = self.placer.place(bucket, key)
        info = await self._require_bucket(bucket) if modifies else None
        for _attempt in range(RESTAMP_ATTEMPTS):
            version, current = await self._version_for_update(bucket, key, version_id, markers)
            self.clock.observe(version.stamp)
            edited = edit(version)
            if edited is None:
                return version
            updated = replace(
                edited, stamp=self.clock.now(), version_stamp=version.vstamp, removed=()
            )
            if info is not None:
                updated = requeue_modified(replace(updated, meta_stamp=updated.stamp), info)
            if current is None:
                change = Change(bucket, key, updated.stamp, versions=(updated,))
                await self._commit_change(change, placement)
                if settle:
                    await self._settle_current(bucket, key)
                return updated
            try:
                return await self._write(updated, expect=current.stamp)
            except ConditionalRequestConflict:
                continue
        raise ConditionalRequestConflict(f"{bucket}/{key} kept changing; retry")

    async def get_object_tagging(self, bucket: str, key: str, version_id: str = "") -> Tagging:
        version, _ = await self._current(bucket, key, version_id)
        return Tagging(version.version_id, dict(version.tags))

    async def put_object_tagging(
        self, bucket: str, key: str, version_id: str, tags: dict[str, str]
    ) -> Tagging:
        tags = validation.normalize_tags(tags)
        v = await self._update_version(
            bucket, key, version_id, lambda v: replace(v, tags=tags), modifies=True
        )
        return Tagging(v.version_id, dict(v.tags))

    async def get_object_acl(self, bucket: str, key: str, version_id: str = "") -> Acl:
        version, _ = await self._current(bucket, key, version_id)
        return Acl(
            version.version_id, version.owner or self.cfg.cluster.name, version.acl or "private"
        )

    async def put_object_acl(self, bucket: str, key: str, version_id: str, acl: str) -> Acl:
        if not acl:
            raise InvalidArgument("give a canned ACL to set (private, public-read, ...)")
        acl = validation.check_acl(acl)
        v = await self._update_version(
            bucket, key, version_id, lambda v: replace(v, acl=acl), modifies=True
        )
        return Acl(v.version_id, v.owner or self.cfg.cluster.name, v.acl)

    # -- COPY ----------------------------------------------------------------------

    async def copy_object(
        self,
        source: CopySource,
        dest: PutHeader,
        metadata_directive: str = "COPY",
        tagging_directive: str = "COPY",
    ) -> CopyResult:
        """Server-side copy: this node streams the source body to the new
        version's replicas; the client sends and receives no body."""
        validation.check_bucket_name(dest.bucket)
        validation.check_key(dest.key)
        meta_mode = validation.check_directive("metadata directive", metadata_directive)
        tag_mode = validation.check_directive("tagging directive", tagging_directive)
        src, holders = await self._current(source.bucket, source.key, source.version_id)
        check_conditions(src, source.conditions, copy_source=True)
        # Copying a named version onto its own key is S3's way to restore it.
        same = (source.bucket, source.key) == (dest.bucket, dest.key) and not source.version_id
        if (
            same
            and meta_mode == "COPY"
            and not (dest.storage_class or dest.sse or dest.acl or tag_mode == "REPLACE")
        ):
            raise InvalidRequest(
                "this copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class or encryption"
            )
        content_type, metadata = (
            (src.content_type, src.metadata)
            if meta_mode == "COPY"
            else (dest.content_type, dest.metadata)
        )
        tags = src.tags if tag_mode == "COPY" else dest.tags
        header = replace(
            dest, content_type=content_type, metadata=metadata, tags=tags, size=src.size
        )
        body = (
            _single(src.inline)
            if src.inline is not None
            else self._stream_body(src, holders, 0, src.size)
        )
        info = await self.put_object(header, body)
        return CopyResult(info, src.version_id)

    # -- LIST ---------------------------------------------------------------------

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = validation.MAX_LIST_KEYS,
        continuation_token: str | None = None,
        start_after: str = "",
    ) -> ListPage:
        validation.check_bucket_name(bucket)
        validation.check_max_keys(max_keys)
        validation.check_delimiter(delimiter)
        if len(prefix.encode()) > validation.MAX_KEY_BYTES:
            raise InvalidArgument("prefix is longer than a key can be")
        await self._require_bucket(bucket)
        return await self._list(
            bucket, prefix, delimiter, max_keys, continuation_token, start_after
        )

    async def _verified(
        self, bucket: str, scanned: dict[str, ObjectVersion]
    ) -> dict[str, ObjectVersion]:
        """Check scanned records against the witness, as a read would.

        A record whose stamp is the witness's is current. Any other (a newer,
        unfinished write; an older copy on a node back from the dead; a key the
        witness does not know) gets a full read, which finishes what needs it.
        """
        assert self.witness is not None
        names = list(scanned)
        stamps = await asyncio.gather(*(self.witness.check(bucket, n) for n in names))
        doubtful = [n for n, w in zip(names, stamps, strict=True) if w != scanned[n].stamp]
        if not doubtful:
            return scanned
        out = dict(scanned)
        gate = asyncio.Semaphore(LIST_VERIFY_PARALLEL)

        async def settle(name: str) -> None:
            async with gate:
                v, _ = await self._read(bucket, name)
            if v is None:
                out.pop(name, None)
            else:
                out[name] = v

        await asyncio.gather(*(settle(n) for n in doubtful))
        return out

    def _list_sources(self) -> list[NodeSpec]:
        """Nodes whose merged scans hold every key: all nodes of enough whole AZs.

        A key lives in three of the cluster's N AZs, so any N-2 of them share at
        least one with it (N-2 + 3 > N). With three AZs one whole AZ is enough.
        When not enough AZs are whole, merge every reachable node. An AZ where
        keys are moving between nodes (a drain, a map change, hinted handoff)
        is not relied on alone: a key in flight could be missed by both scans.
        """
        need = max(1, len(self.placer.azs) - 2)
        azs = [self.me.az, *(az for az in self.placer.azs if az != self.me.az)]
        moving = self.moving_azs()
        whole = [
            az
            for az in azs
            if az not in moving and all(self.peers.is_up(n.name) for n in self.placer.nodes_in(az))
        ]
        if len(whole) >= need:
            return [n for az in whole[:need] for n in self.placer.nodes_in(az)]
        return [n for n in self.placer.nodes if self.peers.is_up(n.name)]

    async def _list(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        continuation_token: str | None,
        start_after: str,
    ) -> ListPage:
        if max_keys == 0:
            return ListPage([], [], False, None, 0)
        return await self._from_sources(
            "listing",
            lambda sources: self._list_from(
                sources, bucket, prefix, delimiter, max_keys, continuation_token, start_after
            ),
        )

    async def _from_sources(self, what: str, scan: Callable[[list[NodeSpec]], Awaitable[_T]]) -> _T:
        """Run a merged scan over :meth:`_list_sources`; a node that fails it is
        marked down and the scan starts again over the sources left."""
        last_error: Exception | None = None
        for _attempt in range(3):
            sources = self._list_sources()
            if not sources:
                break
            try:
                return await scan(sources)
            except ReplicaUnavailable as exc:
                last_error = exc
                for n in sources:
                    if n.name in str(exc):
                        self.peers.mark_down(n.name, str(exc))
        raise ServiceUnavailable(f"no set of nodes could complete the {what} ({last_error}); retry")

    async def _list_from(
        self,
        sources: list[NodeSpec],
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        continuation_token: str | None,
        start_after: str,
    ) -> ListPage:
        cursor, skip = (
            decode_token(continuation_token) if continuation_token else (start_after, False)
        )
        # (name, entry or None for a common prefix), in key order.
        items: list[tuple[str, ListEntry | None]] = []
        last_prefix = cursor if skip else ""
        need = max_keys + 1
        replicas = [self.peers.replica(n) for n in sources]
        while len(items) < need:
            pages = await asyncio.gather(
                *(r.scan(bucket, prefix, cursor, skip, SCAN_BATCH) for r in replicas)
            )
            open_ends = [recs[-1].key for recs, exhausted in pages if not exhausted and recs]
            bound = min(open_ends) if open_ends else None
            newest: dict[str, ObjectVersion] = {}
            for recs, _ in pages:
                for v in recs:
                    if bound is not None and v.key > bound:
                        break
                    held = newest.get(v.key)
                    if held is None or v.stamp > held.stamp:
                        newest[v.key] = v
            if self.witness is not None:
                newest = await self._verified(bucket, newest)
            for name in sorted(newest):
                v = newest[name]
                if last_prefix and name.startswith(last_prefix):
                    continue
                if v.deleted:
                    continue
                if delimiter:
                    at = name.find(delimiter, len(prefix))
                    if at >= 0:
                        last_prefix = name[: at + len(delimiter)]
                        items.append((last_prefix, None))
                        if len(items) >= need:
                            break
                        continue
                items.append(
                    (name, ListEntry(name, v.size, v.etag, ms_to_datetime(v.last_modified_ms)))
                )
                if len(items) >= need:
                    break
            if bound is None:
                break
            if last_prefix and bound.startswith(last_prefix):
                cursor, skip = last_prefix, True
            else:
                cursor, skip = bound, False
        truncated = len(items) > max_keys
        items = items[:max_keys]
        token = None
        if truncated:
            name, entry = items[-1]
            token = encode_token(name, entry is None)
        contents = [e for _, e in items if e is not None]
        prefixes = [n for n, e in items if e is None]
        return ListPage(contents, prefixes, truncated, token, len(items))

    # -- LIST VERSIONS -------------------------------------------------------------

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = validation.MAX_LIST_KEYS,
        key_marker: str = "",
        version_id_marker: str = "",
    ) -> VersionPage:
        """S3's ListObjectVersions: every version and delete marker, by key and
        newest first, merged from the same nodes a listing scans."""
        validation.check_bucket_name(bucket)
        validation.check_max_keys(max_keys)
        validation.check_delimiter(delimiter)
        if len(prefix.encode()) > validation.MAX_KEY_BYTES:
            raise InvalidArgument("prefix is longer than a key can be")
        if version_id_marker and not key_marker:
            raise InvalidArgument("a version-id marker needs a key marker")
        await self._require_bucket(bucket)
        after: Stamp | None = None
        if version_id_marker:
            after = _parse_version_id(version_id_marker)
            if after is None:
                null, _ = await self._read_version(bucket, key_marker, None)
                after = null.vstamp if null is not None else None
        if max_keys == 0:
            return VersionPage([], [], False, None, None)
        return await self._from_sources(
            "version listing",
            lambda sources: self._versions_from(
                sources, bucket, prefix, delimiter, max_keys, key_marker, after
            ),
        )

    async def _versions_from(
        self,
        sources: list[NodeSpec],
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        key_marker: str,
        after: Stamp | None,
    ) -> VersionPage:
        replicas = [self.peers.replica(n) for n in sources]
        items: list[tuple[str, VersionEntry | None]] = []
        need = max_keys + 1
        # A marker that is a common prefix already listed: skip what it rolls up.
        last_prefix = key_marker if delimiter and key_marker.endswith(delimiter) else ""
        # The key whose versions a page continues: its next version is not the latest.
        prev_key = key_marker if after is not None else None
        nulls_seen: set[str] = set()
        cursor, cursor_after = key_marker, after
        while len(items) < need:
            pages = await asyncio.gather(
                *(
                    r.scan_versions(bucket, prefix, cursor, cursor_after, SCAN_BATCH)
                    for r in replicas
                )
            )
            open_ends = [
                _version_pos(recs[-1]) for recs, exhausted in pages if not exhausted and recs
            ]
            bound = min(open_ends) if open_ends else None
            merged: dict[tuple[bytes, bytes], ObjectVersion] = {}
            held_by: dict[tuple[bytes, bytes], set[str]] = defaultdict(set)
            for source, (recs, _) in zip(sources, pages, strict=True):
                for v in recs:
                    pos = _version_pos(v)
                    if bound is not None and pos > bound:
                        break
                    held_by[pos].add(source.name)
                    held = merged.get(pos)
                    if held is None or v.stamp > held.stamp:
                        merged[pos] = v
            settled = await self._settle_stand_ins(bucket, merged, held_by)
            for pos in sorted(merged):
                if pos not in settled:
                    continue  # a stand-in's copy of a version its home no longer has
                v = settled[pos]
                if last_prefix and v.key.startswith(last_prefix):
                    continue
                if delimiter:
                    at = v.key.find(delimiter, len(prefix))
                    if at >= 0:
                        last_prefix = v.key[: at + len(delimiter)]
                        items.append((last_prefix, None))
                        if len(items) >= need:
                            break
                        continue
                if v.null_version:
                    if v.key in nulls_seen:
                        continue  # an older null version a replica still holds
                    nulls_seen.add(v.key)
                items.append((v.key, _version_entry(v, is_latest=v.key != prev_key)))
                prev_key = v.key
                if len(items) >= need:
                    break
            if bound is None:
                break
            last = merged.get(bound)
            if last is None:
                break
            cursor, cursor_after = last.key, last.vstamp
        truncated = len(items) > max_keys
        items = items[:max_keys]
        next_key = next_version = None
        if truncated:
            name, entry = items[-1]
            next_key = name
            next_version = entry.version_id if entry is not None else None
        versions = [e for _, e in items if e is not None]
        prefixes = [n for n, e in items if e is None]
        return VersionPage(versions, prefixes, truncated, next_key, next_version)

    async def _settle_stand_ins(
        self,
        bucket: str,
        merged: dict[tuple[bytes, bytes], ObjectVersion],
        held_by: dict[tuple[bytes, bytes], set[str]],
    ) -> dict[tuple[bytes, bytes], ObjectVersion]:
        """Versions seen only on nodes standing in for a key's homes (hints not
        yet handed back) are checked against the key's AZs, as GET by version id
        does: the home may have removed or superseded them since. Returns what
        stands, by position."""
        out = dict(merged)
        doubtful = [
            pos
            for pos, v in merged.items()
            if not held_by[pos] & {a.home.name for a in self.placer.place(bucket, v.key).azs}
        ]
        gate = asyncio.Semaphore(LIST_VERIFY_PARALLEL)

        async def settle(pos: tuple[bytes, bytes]) -> None:
            v = merged[pos]
            async with gate:
                found, _ = await self._read_version(bucket, v.key, v.vstamp)
            if found is None:
                del out[pos]
            else:
                out[pos] = found

        await asyncio.gather(*(settle(pos) for pos in doubtful))
        return out


def _version_pos(v: ObjectVersion) -> tuple[bytes, bytes]:
    """Where a version sorts in a version listing: by key, then newest first."""
    return v.key.encode(), bytes(255 - b for b in v.vstamp.encode())


def _version_entry(v: ObjectVersion, is_latest: bool) -> VersionEntry:
    return VersionEntry(
        key=v.key,
        version_id=v.version_id,
        is_latest=is_latest,
        delete_marker=v.delete_marker,
        size=v.size,
        etag=v.etag,
        last_modified=ms_to_datetime(v.last_modified_ms),
        storage_class=v.storage_class or "STANDARD",
        owner=v.owner,
        replication_status=v.replication_status,
        replication_targets=dict(v.replication_targets),
    )
