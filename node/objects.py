"""Object operations: PUT (with the body staging of large bodies), GET, HEAD,
DELETE, copy, tags and ACLs.

PUT: validate, take a stamp, write to one node in each of the key's three AZs
in parallel (the home node, or the next node of that AZ with a hint when the
home is down), reply once all three AZs have fsynced it. Small bodies travel
inline with the commit; large ones are first streamed as chunks to the same
three nodes (:meth:`Objects.store`). The commit, the witness and the reads are
node/protocol.py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

from node import keys
from node.buckets import Buckets
from node.encryption import Encryption, seal_chunk
from node.metrics import OBJECT_BYTES, PUT_RESENDS, UPDATE_GUESSES, VERSION_EDITS_REFUSED
from node.peers import Peers, Replica, ReplicaUnavailable
from node.protocol import Floor, Protocol, parse_version_id
from node.quorum import Quorum
from tristore import checksums, replication, sse, validation
from tristore.checksums import Checksum
from tristore.config import ClusterConfig
from tristore.errors import (
    BadDigest,
    ConditionalRequestConflict,
    DeleteMarker,
    EntityTooLarge,
    IncompleteBody,
    InternalError,
    InvalidArgument,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchKey,
    NoSuchVersion,
    NotModified,
    OutcomeUnknown,
    PreconditionFailed,
    ServiceUnavailable,
    StorageFull,
)
from tristore.model import (
    SSE_TAG,
    VERSIONING_ENABLED,
    Acl,
    BucketInfo,
    ByteRange,
    Change,
    Conditions,
    CopyResult,
    CopySource,
    DeleteResult,
    ObjectInfo,
    ObjectVersion,
    Tagging,
    evolve,
)
from tristore.placement import Placer
from tristore.sse import CustomerKey
from tristore.stamps import ZERO, Stamp

log = logging.getLogger(__name__)

#: A resent conditional PUT in an unversioned bucket takes a change of its key
#: this long (beyond the cluster's clock-skew bound) before the call's first
#: attempt as one that may have come after it: the client's clock is trusted
#: only this far.
RESEND_CLOCK_MARGIN_MS = 5_000
#: How many of a key's newest versions a resent PUT looks through for its own.
RESEND_SEARCH_VERSIONS = 1_000


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
    #: SSE-C: the customer's key for the new object.
    sse_customer: CustomerKey | None = None
    #: The call's id, the same in every attempt ("": none); kept with the version.
    request_id: str = ""
    #: An earlier attempt of the call may have taken effect: look before writing.
    resend: bool = False
    #: When the call's first attempt began (Unix ms, the client's clock; 0: unknown).
    first_attempt_ms: int = 0
    #: Standard headers to store (validation.STORED_HEADERS: Cache-Control, ...).
    headers: dict[str, str] | None = None
    #: The body's flexible checksum as its writer declared it or asked for it
    #: (computed, and checked against a declared value, by
    #: :meth:`Objects.store`); for a copy or CreateMultipartUpload, only the
    #: algorithm asked for. None: the body gets CRC-64/NVME (S3's default), a
    #: copy keeps or renews the source's.
    checksum: Checksum | None = None
    #: CreateMultipartUpload: FULL_OBJECT or COMPOSITE ("": the algorithm's default).
    checksum_type: str = ""


@dataclass(frozen=True, slots=True)
class GetResult:
    info: ObjectInfo
    #: Inclusive byte range carried by ``body`` (0, -1 for an empty body).
    first: int
    last: int
    body: AsyncIterator[bytes]


def _with_checksum(v: ObjectVersion, checksum: Checksum | None) -> ObjectVersion:
    """``v`` with the body's flexible checksum, once the body has been read."""
    if checksum is None or not checksum.name:  # none (a multipart object's may be so)
        return v
    if not checksum.computed:  # a bug of the body's iterator, not the client's
        raise InternalError(f"the {checksum.name} checksum of the body was never computed")
    return evolve(
        v,
        checksum_algorithm=checksum.name,
        checksum_type=checksum.type,
        checksum=checksum.computed,
    )


def _copy_checksum(header: PutHeader, src: ObjectVersion) -> PutHeader:
    """A copy's checksum, as S3's: computed over the copied body with the
    algorithm asked for; else the source's when it is of the whole body (the
    bytes are the same); else the source's algorithm (a multipart source's
    checksum of parts means nothing for one single body) or CRC-64/NVME,
    computed over the body."""
    if header.checksum is None and src.checksum and src.checksum_type == checksums.FULL_OBJECT:
        kept = Checksum(src.checksum_algorithm, computed=src.checksum)
        return replace(header, checksum=kept)
    checksum = Checksum(
        header.checksum.name
        if header.checksum is not None
        else src.checksum_algorithm or checksums.DEFAULT
    )
    return replace(header, checksum=checksum)


def _hash(md5: checksums.Hasher | None, other: checksums.Hasher | None, chunk: bytes) -> None:
    """One chunk of a body into its MD5 and its flexible checksum: one pass,
    run in a thread (both let go of the GIL), off the event loop."""
    if md5 is not None:
        md5.update(chunk)
    if other is not None:
        other.update(chunk)


def _needs_md5(etag: str | None, content_md5: str) -> bool:
    """Whether the body's MD5 is needed: as its ETag, or to check a
    Content-MD5. Not when an ``etag`` is given (a completed multipart
    upload's, of its parts' MD5s) and nothing is to be checked: a 64 MiB
    Complete spent ~0.1 s of CPU on an MD5 it threw away."""
    return not etag or bool(content_md5)


def check_put_conditions(if_none_match: str, if_match: str) -> None:
    """The conditions a write takes (a PUT, a multipart Complete): If-None-Match
    only as ``*`` (create if absent), or If-Match, not both."""
    if if_none_match and if_none_match.strip() != "*":
        raise InvalidArgument("If-None-Match on a write takes only '*' (create if absent)")
    if if_none_match and if_match:
        raise InvalidArgument("give If-None-Match or If-Match on a write, not both")


def _etag_matches(header: str, etag: str, weak: bool = False) -> bool:
    """An If-Match list (``*`` or ETags, quoted or not) compared strongly: a
    weak ETag (``W/"..."``) matches nothing, as RFC 9110 has it; ``weak``
    (If-None-Match) compares weakly: it matches its ETag too."""
    for item in header.split(","):
        tag = item.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            if not weak:
                continue
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
        if _etag_matches(c.if_none_match, v.etag, weak=True):
            raise unchanged(f"If-None-Match {c.if_none_match!r}: the ETag is {v.etag!r}")
    elif c.if_modified_since is not None and modified_s <= int(c.if_modified_since.timestamp()):
        raise unchanged(f"not modified after {c.if_modified_since.isoformat()} (If-Modified-Since)")


def _marker(v: ObjectVersion) -> DeleteMarker:
    return DeleteMarker(v.version_id, v.last_modified_ms)


def marker_source(bucket: str, key: str, version_id: str) -> InvalidRequest:
    """S3's answer to a copy (CopyObject, UploadPartCopy) whose source names
    a delete marker by version id: 400 InvalidRequest, not a GET's 405."""
    return InvalidRequest(
        "The source of a copy request may not specifically refer to a delete marker by "
        f"version id (version {version_id} of {bucket}/{key})"
    )


def to_replicate(
    v: ObjectVersion, bucket: BucketInfo, delete_marker: bool = False
) -> ObjectVersion:
    """``v`` marked PENDING for each destination its bucket's rules send it to."""
    dests = replication.destinations_for(bucket.replication, v.key, v.tags, delete_marker)
    if not dests:
        return v
    return evolve(
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
    return evolve(
        v, replication_targets=targets, replication_status=replication_status_of(v, targets)
    )


def replication_status_of(v: ObjectVersion, targets: dict[str, str]) -> str:
    """A version's overall status: a replica stays REPLICA whatever it sends on."""
    if v.replication_status == replication.REPLICA:
        return replication.REPLICA
    return replication.overall_status(targets)


async def _single(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def _rechunk(body: AsyncIterator[bytes], head: bytes, size: int) -> AsyncIterator[bytes]:
    """Cut a stream of arbitrary pieces into pieces of exactly ``size`` (the last shorter)."""
    buf = bytearray(head)
    while len(buf) >= size:  # a head longer than a chunk (a large first message)
        yield bytes(buf[:size])
        del buf[:size]
    async for piece in body:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


class Objects:
    """The object operations this node serves as coordinator."""

    def __init__(
        self,
        cfg: ClusterConfig,
        protocol: Protocol,
        quorum: Quorum,
        buckets: Buckets,
        peers: Peers,
        placer: Placer,
        encryption: Encryption,
    ) -> None:
        self.cfg = cfg
        self.encryption = encryption
        self.ncfg = cfg.node
        self.protocol = protocol
        self.quorum = quorum
        self.buckets = buckets
        self.peers = peers
        self.placer = placer
        self.clock = protocol.clock

    # -- PUT ---------------------------------------------------------------

    async def put_object(self, header: PutHeader, body: AsyncIterator[bytes]) -> ObjectInfo:
        validation.check_bucket_name(header.bucket)
        validation.check_key(header.key)
        base = self.new_version(header, header.content_type, header.metadata, header.tags)
        if header.size > self.ncfg.max_object_size:
            raise EntityTooLarge(
                f"object of {header.size} bytes is larger than the limit of "
                f"{self.ncfg.max_object_size} bytes for one PUT"
            )
        check_put_conditions(header.if_none_match, header.if_match)
        conditional = bool(header.if_none_match or header.if_match)
        resend = header.resend and bool(header.request_id)
        floor = (
            None if conditional or resend else self.protocol.early_floor(header.bucket, header.key)
        )
        key_md5 = header.sse_customer.key_md5 if header.sse_customer else ""
        try:
            bucket = await self.buckets.require_bucket(header.bucket)
            versioned = bucket.versioning == VERSIONING_ENABLED
            base = evolve(base, null_version=not versioned, request_id=header.request_id)
            base = to_replicate(base, bucket)
            base, cipher = await self.encryption.sealer(base, bucket, header.sse_customer)
            if resend:
                try:
                    earlier = await self._earlier_attempt(header, versioned)
                except OutcomeUnknown:
                    PUT_RESENDS.labels("unknown").inc()
                    raise
                PUT_RESENDS.labels("none" if earlier is None else "found").inc()
                log.info(
                    "resent PUT of %s/%s (request %s): %s",
                    header.bucket,
                    header.key,
                    header.request_id,
                    f"its earlier attempt took effect as version {earlier.version_id}"
                    if earlier is not None
                    else "no earlier attempt is current; written now",
                )
                if earlier is not None:
                    return ObjectInfo.of(earlier, key_md5, bool(bucket.versioning))
            try:
                expect = await self.put_precondition(header)
                checksum = header.checksum or Checksum(checksums.DEFAULT)
                version = await self.store(
                    base,
                    body,
                    header.size,
                    header.content_md5,
                    self.ncfg.max_object_size,
                    expect,
                    floor=floor,
                    cipher=cipher,
                    checksum=checksum,
                )
            except (PreconditionFailed, NoSuchKey, ConditionalRequestConflict):
                if not (resend and conditional):
                    raise
                # The earlier attempt may have been on its way during the look
                # above and taken by the first AZ since: the refusal may be its
                # own doing. Once refused, a try of it that has not been taken
                # never will be (the first AZ now holds something newer than
                # what it expects), so one more look tells the truth.
                earlier = await self._earlier_attempt(header, versioned)
                if earlier is None:
                    raise
                PUT_RESENDS.labels("found").inc()
                log.info(
                    "resent PUT of %s/%s (request %s) refused by its earlier attempt, "
                    "which took effect as version %s meanwhile",
                    header.bucket,
                    header.key,
                    header.request_id,
                    earlier.version_id,
                )
                return ObjectInfo.of(earlier, key_md5, bool(bucket.versioning))
        finally:
            if floor is not None:
                if floor.done() and not floor.cancelled():
                    floor.exception()  # retrieved: its error, if any, was raised or is moot
                floor.cancel()  # not needed after all (the PUT failed before its write)
        return ObjectInfo.of(version, key_md5, bool(bucket.versioning))

    async def store(
        self,
        base: ObjectVersion,
        body: AsyncIterator[bytes],
        size: int,
        content_md5: str,
        limit: int,
        expect: Stamp | None = None,
        etag: str | None = None,
        replica: bool = False,
        floor: asyncio.Future[Floor] | None = None,
        cipher: sse.ChunkCipher | None = None,
        checksum: Checksum | None = None,
    ) -> ObjectVersion:
        """Store ``body`` as a new version of ``base``'s key: inline when small,
        else staged in chunks on one node per AZ, then committed in all three.
        With a ``cipher`` (node/encryption.py) every chunk, and an inline body,
        is sealed here, before it leaves for the replicas.

        ``size`` (-1: unknown) and ``content_md5`` ("": none) are what the
        client declared; ``etag`` replaces the body's MD5 as the ETag (a
        completed multipart upload's). A ``replica`` keeps ``base``'s version
        id (see :meth:`Protocol.write`). ``checksum``: stored with the
        version, its value computed here over the body (inline for a small
        one, with the MD5 in a thread for a chunked one) and checked against
        the declared one, unless known already (:meth:`Checksum.hasher`);
        None keeps ``base``'s (a replica's, from its source)."""
        content_md5 = validation.check_content_md5(content_md5)
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
            if checksum is not None and (hasher := checksum.hasher()) is not None:
                hasher.update(data)
                checksum.finish(hasher)
            md5 = self._check_body(
                size,
                content_md5,
                len(data),
                hashlib.md5(data).hexdigest() if _needs_md5(etag, content_md5) else "",
            )
            stored = await seal_chunk(cipher, 0, data) if cipher is not None else data
            version = evolve(base, size=len(data), etag=etag or md5, inline=stored)
            version = _with_checksum(version, checksum)
            if not replica:
                version = evolve(version, stamp=self.clock.now())
            version = await self.protocol.write(
                version, expect=expect, replica=replica, floor=floor
            )
        else:
            chunks = _rechunk(stream, bytes(head), self.ncfg.chunk_size)
            version = await self._put_large(
                base,
                chunks,
                size,
                content_md5,
                limit,
                expect,
                etag,
                replica,
                floor,
                cipher,
                checksum=checksum,
            )
        OBJECT_BYTES.labels("in").inc(version.size)
        return version

    async def store_sealed(
        self, base: ObjectVersion, body: AsyncIterator[bytes], limit: int
    ) -> ObjectVersion:
        """Store an SSE-C replica's body as its source stored it (see
        :meth:`sealed_body`): ciphertext in chunks of ``base.chunk_size``
        (0: one chunk, a body the source kept inline), each kept whole and at
        its index, which is its nonce. Nothing is opened (no key here, nor
        needed): the framing is checked, by the length of the whole, and a
        chunk altered on the way fails its AES-GCM tag when it is read. Kept
        inline here if it is one chunk no larger than ``inline_max`` allows."""
        if base.size > limit:
            raise EntityTooLarge(
                f"object of {base.size} bytes is larger than the limit of {limit} bytes"
            )
        stored = base.chunk_size or max(base.size, 1) + SSE_TAG
        base = evolve(base, chunk_size=stored)
        whole = base.body_size
        if whole <= stored and whole <= self.ncfg.inline_max + SSE_TAG:
            data = bytearray()
            async for piece in body:
                data += piece
                if len(data) > whole:
                    break
            if len(data) != whole:
                raise IncompleteBody(
                    f"the sealed body of {base.key!r} has {len(data)} bytes, not the "
                    f"{whole} its size and chunk size make; nothing was stored"
                )
            version = evolve(base, chunk_size=0, inline=bytes(data))
            version = await self.protocol.write(version, replica=True)
        else:
            chunks = _rechunk(body.__aiter__(), b"", stored)
            version = await self._put_large(
                base, chunks, -1, "", whole, None, base.etag, True, sealed=True
            )
        OBJECT_BYTES.labels("in").inc(version.size)
        return version

    def new_version(
        self,
        header: PutHeader,
        content_type: str,
        metadata: dict[str, str] | None,
        tags: dict[str, str] | None,
    ) -> ObjectVersion:
        """The validated fields of a new version (stamp and body come later)."""
        if header.sse and header.sse_customer is not None:
            raise InvalidArgument(
                "give server-side encryption (x-amz-server-side-encryption) or a customer "
                "key (SSE-C), not both"
            )
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
            headers=validation.normalize_headers(header.headers),
        )

    async def _earlier_attempt(self, header: PutHeader, versioned: bool) -> ObjectVersion | None:
        """For a resent PUT: the version an earlier attempt of the same call
        wrote, if one took effect (None: none did, or, for a plain PUT, none is
        current). A conditional PUT is exactly-once: a retry whose earlier
        attempt took effect answers success with that version, and a refusal
        means that nothing was written. When that cannot be told it raises
        OutcomeUnknown. A plain PUT writes again when its earlier version is
        not current (what S3 does: at least once).

        Told apart by: the current version (the request id is stored with
        every version); in a versioned bucket, every version of the key (all
        are kept); otherwise, whether the key changed since the call began (a
        version that replaced ours and was then removed leaves no trace)."""
        bucket, key, rid = header.bucket, header.key, header.request_id
        what = "confirming an earlier attempt"

        def mine(v: ObjectVersion | None) -> bool:
            return v is not None and v.request_id == rid and not v.deleted

        fence = self.protocol.fence(bucket, key)  # before the look: see Protocol.confirm
        newest = (await self.protocol.read_replicas(bucket, key)).best
        if mine(newest):
            # This call's success promises all three AZs: the attempt is written
            # back where it lacks first (or the resend fails). Then it is
            # recorded at the witness: the read below may be served from a
            # cache the witness vouches for at an older stamp, and would not
            # meet it (Protocol.finish_attempt).
            assert newest is not None
            await self.protocol.settle_everywhere(newest, what)
            await self.protocol.confirm(newest, fence)
        current, _ = await self.protocol.read(bucket, key)
        if mine(current):
            assert current is not None
            if newest is None or newest.stamp != current.stamp:
                # The earlier attempt landed meanwhile (it was still on its way).
                await self.protocol.settle_everywhere(current, what)
            return current
        if not (header.if_none_match or header.if_match):
            return None
        if versioned:
            return await self._version_of_request(bucket, key, rid)
        margin = self.cfg.cluster.max_clock_skew_ms + RESEND_CLOCK_MARGIN_MS
        began = header.first_attempt_ms - margin
        if current is None or (header.first_attempt_ms and current.stamp.physical_ms < began):
            return None  # untouched since the call began: no attempt took effect
        raise OutcomeUnknown(
            f"{bucket}/{key} changed since this conditional PUT began, and an earlier "
            "attempt of it failed without saying whether it took effect; the bucket "
            "keeps no versions to tell by: read the key to learn what it holds"
        )

    async def _version_of_request(self, bucket: str, key: str, rid: str) -> ObjectVersion | None:
        """The version of ``key`` that request ``rid`` wrote (finished first: in
        every AZ, then recorded at the witness, as the write path finishes a
        late try), or None if no AZ holds one."""
        fence = self.protocol.fence(bucket, key)  # before the look: see Protocol.confirm
        held = await self.protocol.versions_in_azs(
            bucket,
            key,
            None,
            RESEND_SEARCH_VERSIONS,
            "looking for an earlier attempt",
            whole_first=True,
        )
        for _, _, versions, _ in held:
            for v in versions:
                if v.request_id == rid and not v.delete_marker:
                    found, removed, holders = await self.protocol.spread_version(
                        bucket, key, v.vstamp
                    )
                    if removed or found is None:
                        return None
                    await self.protocol.finish_attempt(found, holders, fence)
                    return found
        if any(len(vs) >= RESEND_SEARCH_VERSIONS for _, _, vs, _ in held):
            raise OutcomeUnknown(
                f"{bucket}/{key} has more versions than the newest {RESEND_SEARCH_VERSIONS} "
                "this retried PUT looked through for its earlier attempt; whether that took "
                "effect is unknown: list the key's versions to find out"
            )
        return None

    async def put_precondition(self, header: PutHeader) -> Stamp | None:
        """Check a conditional PUT (or multipart Complete) against the current
        object; the stamp its commit must not find exceeded (None for an
        unconditional one). The commit is refused if the key changed since."""
        if not header.if_none_match and not header.if_match:
            return None
        current, _ = await self.protocol.read(header.bucket, header.key)
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
        floor: asyncio.Future[Floor] | None = None,
        cipher: sse.ChunkCipher | None = None,
        sealed: bool = False,
        checksum: Checksum | None = None,
    ) -> ObjectVersion:
        """The chunked body of :meth:`store`; ``sealed``: chunks already sealed
        (an SSE-C replica's, in ``base.chunk_size``), stored as they come."""
        placement = self.placer.place(base.bucket, base.key)
        targets = await self.quorum.pick_targets(placement, conditional=expect is not None)
        data_id = os.urandom(keys.DATA_ID_SIZE)
        queues: list[asyncio.Queue[tuple[int, bytes] | None]] = [
            asyncio.Queue(self.ncfg.stage_queue_chunks) for _ in targets
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
        md5 = hashlib.md5() if _needs_md5(etag, content_md5) and not sealed else None
        # The flexible checksum, computed beside the MD5 (a sealed body's is the source's).
        hasher = checksum.hasher() if checksum is not None and not sealed else None
        size = 0
        try:
            index = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise EntityTooLarge(
                        f"the body is larger than the limit of {limit} bytes; nothing was stored"
                    )
                # The chunk is hashed (in a thread) while it is queued for the
                # replicas (a sealed one is not: its ETag is the source's; nor
                # one with a given ETag and a checksum known or of its parts).
                hashing = (
                    None
                    if md5 is None and hasher is None
                    else asyncio.ensure_future(asyncio.to_thread(_hash, md5, hasher, chunk))
                )
                try:
                    if cipher is not None:
                        chunk = await seal_chunk(cipher, index, chunk)
                    for q, task in zip(queues, tasks, strict=True):
                        await self._feed(q, (index, chunk), task)
                finally:
                    if hashing is not None:
                        await hashing
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
        except StorageFull as exc:
            # A target ran short of disk: the retry stages on its AZ's other node.
            for node, _home in targets:
                if f"node {node.name}:" in str(exc):
                    self.peers.mark_full(node.name, str(exc))
            raise
        finally:
            for task in tasks:
                task.cancel()
        if sealed:
            if size != base.body_size:
                raise IncompleteBody(
                    f"the sealed body of {base.key!r} has {size} bytes, not the "
                    f"{base.body_size} its size and chunk size make; nothing was stored"
                )
            return await self.protocol.write(evolve(base, data_id=data_id), targets, None, True)
        if checksum is not None and hasher is not None:
            checksum.finish(hasher)
        md5_hex = self._check_body(declared, content_md5, size, md5.hexdigest() if md5 else "")
        version = evolve(
            base,
            stamp=base.stamp if replica else self.clock.now(),
            size=size,
            etag=etag or md5_hex,
            data_id=data_id,
            chunk_size=self.ncfg.chunk_size
            if cipher is None
            else sse.stored_chunk_size(self.ncfg.chunk_size),
        )
        version = _with_checksum(version, checksum)
        return await self.protocol.write(version, targets, expect, replica, floor)

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

    async def _current(
        self, bucket: str, key: str, version_id: str = "", markers: bool = False
    ) -> tuple[ObjectVersion, list[Replica]]:
        """The version a GET or HEAD is about: the current one, or ``version_id``
        (a delete marker only with ``markers``: it has no body)."""
        version, holders, _, _ = await self._lookup(bucket, key, version_id, markers)
        return version, holders

    async def _lookup(
        self,
        bucket: str,
        key: str,
        version_id: str = "",
        markers: bool = False,
        known: BucketInfo | None = None,
    ) -> tuple[ObjectVersion, list[Replica], ObjectVersion | None, BucketInfo]:
        """:meth:`_current`, and the key's current record and the bucket's
        info it read on the way (``known``: the caller read it already)."""
        validation.check_key(key)
        validation.check_bucket_name(bucket)
        wanted = parse_version_id(version_id) if version_id else None

        async def bucket_info() -> BucketInfo:
            return known if known is not None else await self.buckets.require_bucket(bucket)

        # The bucket and the key are read side by side; a missing bucket wins.
        exists, read = await asyncio.gather(
            bucket_info(), self.protocol.read(bucket, key), return_exceptions=True
        )
        if isinstance(exists, BaseException):
            raise exists
        if isinstance(read, BaseException):
            raise read
        info = exists
        current, holders = read
        if not version_id:
            if current is None or current.deleted:
                if current is not None and current.delete_marker:
                    raise NoSuchKey(
                        f"key {key!r} does not exist in bucket {bucket!r} (its current "
                        f"version is delete marker {current.version_id})",
                        _marker(current),
                    )
                raise NoSuchKey(f"key {key!r} does not exist in bucket {bucket!r}")
            return current, holders, current, info
        if current is not None and current.is_version and current.version_id == version_id:
            version: ObjectVersion | None = current
        else:
            version, holders = await self.protocol.read_version(bucket, key, wanted)
        if version is None:
            raise NoSuchVersion(f"version {version_id} of {bucket}/{key} does not exist")
        if version.delete_marker and not markers:
            raise MethodNotAllowed(
                f"version {version_id} of {bucket}/{key} is a delete marker; it has no body",
                _marker(version),
            )
        return version, holders, current, info

    async def head_object(
        self,
        bucket: str,
        key: str,
        version_id: str = "",
        conditions: Conditions | None = None,
        sse_customer: sse.CustomerKey | None = None,
        part_number: int = 0,
    ) -> ObjectInfo:
        """The version's info; ``part_number`` (0: none) is checked against its
        parts (InvalidPartNumber past the last: see :func:`validation.resolve_part`)."""
        if part_number:
            validation.check_part_number(part_number)
        version, _, _, bucket_info = await self._lookup(bucket, key, version_id)
        given = sse.check_customer_key(version.sse_customer_hmac, sse_customer, f"{bucket}/{key}")
        check_conditions(version, conditions)
        if part_number:
            validation.resolve_part(version.part_sizes, version.size, part_number)
        key_md5 = given.key_md5 if given else ""
        return ObjectInfo.of(version, key_md5, bool(bucket_info.versioning))

    def body(
        self,
        v: ObjectVersion,
        cipher: sse.ChunkCipher | None,
        holders: list[Replica],
        first: int,
        length: int,
    ) -> AsyncIterator[bytes]:
        """Plaintext bytes [first, first+length) of ``v``'s body (``cipher``
        from :meth:`Encryption.opener` opens an encrypted one)."""
        if cipher is not None:
            return self.encryption.plain_body(v, cipher, holders, first, length)
        if v.inline is not None:
            return _single(v.inline[first : first + length])
        return self.quorum.stream_body(v, holders, first, length)

    async def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None = None,
        version_id: str = "",
        conditions: Conditions | None = None,
        sse_customer: sse.CustomerKey | None = None,
        copy_range: bool = False,
        part_number: int = 0,
    ) -> GetResult:
        """The body (or ``byte_range`` of it) of the current version or of
        ``version_id``. ``copy_range``: the range is a copy source's
        (x-amz-copy-source-range), refused rather than clamped when it reaches
        past the last byte. ``part_number`` (0: none): that part's bytes
        (:func:`validation.resolve_part`), never with a range."""
        if part_number:
            validation.check_part_number(part_number)
            if byte_range is not None:
                validation.resolve_part((), 0, part_number, has_range=True)
        version, holders, _, bucket_info = await self._lookup(bucket, key, version_id)
        cipher = await self.encryption.opener(version, sse_customer)
        check_conditions(version, conditions)
        if part_number:
            first, last = validation.resolve_part(version.part_sizes, version.size, part_number)
        elif byte_range is not None and copy_range:
            first, last = validation.resolve_copy_range(
                byte_range.start, byte_range.end, version.size
            )
        elif byte_range is not None:
            first, last = validation.resolve_range(
                byte_range.start, byte_range.end, version.size, byte_range.empty_suffix
            )
        else:
            first, last = 0, version.size - 1
        length = last - first + 1
        OBJECT_BYTES.labels("out").inc(length)
        body = self.body(version, cipher, holders, first, length)
        key_md5 = sse_customer.key_md5 if sse_customer is not None else ""
        info = ObjectInfo.of(version, key_md5, bool(bucket_info.versioning))
        return GetResult(info, first, last, body)

    async def sealed_body(
        self, bucket: str, key: str, version_id: str, sse_key: bytes
    ) -> AsyncIterator[bytes]:
        """The body of an SSE-C version as stored: ciphertext, never opened,
        for a replicator to ship as it is (:meth:`store_sealed` keeps it so
        at the destination, which opens it with the customer's key as this
        cluster does). ``sse_key`` is the version's wrapped data key as the
        replicator knows it. Any other version is refused: SSE-S3 and
        plaintext bodies are replicated as plaintext and sealed again there."""
        if not version_id:
            raise InvalidArgument("a sealed body is read by version id")
        version, holders = await self._current(bucket, key, version_id)
        if sse.scheme_of(version.sse_key) != sse.SCHEME_CUSTOMER_KEY:
            raise InvalidRequest(
                f"version {version_id} of {bucket}/{key} is not encrypted with a "
                "customer-provided key (SSE-C): only such a body is read sealed"
            )
        if version.sse_key != sse_key:
            # A null version written over since the replicator read the change log.
            raise NoSuchVersion(
                f"version {version_id} of {bucket}/{key} has another data key than the one "
                "asked for"
            )
        OBJECT_BYTES.labels("out").inc(version.size)
        if version.inline is not None:
            return _single(version.inline)
        return self.quorum.stream_body(version, holders, 0, version.body_size)

    # -- DELETE ----------------------------------------------------------------

    async def delete_object(
        self, bucket: str, key: str, version_id: str = "", if_match: str = ""
    ) -> DeleteResult:
        """S3's DELETE: without a version id, a delete marker (versioned bucket)
        or the removal of the null version (unversioned); with one, that version
        is removed for good, and the next newest becomes current if it was.

        ``if_match`` (S3's conditional delete): only if the object, or the
        version named, has an ETag the header lists (``*``: any); else
        PreconditionFailed, and NoSuchKey (NoSuchVersion) when there is none.
        The delete of the object is then a conditional write against the
        record the check read (ConditionalRequestConflict, nothing deleted,
        if the key changed since); a version's ETag never changes."""
        validation.check_key(key)
        if if_match:
            return await self._delete_if_match(bucket, key, version_id, if_match)
        info = await self.buckets.require_bucket(bucket)
        if version_id:
            return await self._delete_version(bucket, key, version_id)
        return await self._delete_current(info, key)

    async def _delete_current(
        self, info: BucketInfo, key: str, expect: Stamp | None = None
    ) -> DeleteResult:
        """A delete marker, or (unversioned) the null version's removal;
        conditional on the key's record being ``expect`` if one is given."""
        bucket = info.name
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
            await self.protocol.write(
                ObjectVersion(bucket, key, now, deleted=True, null_version=True), expect=expect
            )
            return DeleteResult()
        marker = to_replicate(evolve(marker, owner=self.cfg.cluster.name), info, True)
        marker = await self.protocol.write(marker, expect=expect)
        return DeleteResult(marker.version_id, True)

    async def _delete_if_match(
        self, bucket: str, key: str, version_id: str, if_match: str
    ) -> DeleteResult:
        version, _, current, info = await self._lookup(bucket, key, version_id, markers=True)
        if not _etag_matches(if_match, version.etag):
            what = f"version {version_id}" if version_id else "the current object"
            raise PreconditionFailed(
                f"If-Match {if_match!r}: the ETag of {what} is {version.etag!r}; nothing deleted"
            )
        if version_id:
            return await self._delete_version(bucket, key, version_id)
        assert current is not None
        self.clock.observe(current.stamp)
        return await self._delete_current(info, key, expect=current.stamp)

    async def _delete_version(self, bucket: str, key: str, version_id: str) -> DeleteResult:
        wanted = parse_version_id(version_id)
        placement = self.placer.place(bucket, key)
        for _attempt in range(self.ncfg.restamp_attempts):
            current, _ = await self.protocol.read(bucket, key)
            if current is not None and current.is_version and current.version_id == version_id:
                # The current version goes: the next newest takes its place.
                target = current
                following = await self._versions_after(bucket, key, target.vstamp)
                self.clock.observe(current.stamp)
                now = self.clock.now()
                if following is not None:
                    head = evolve(following, stamp=now, version_stamp=following.vstamp, removed=())
                else:
                    head = ObjectVersion(bucket, key, now, deleted=True)
                head = evolve(head, removed=(target.vstamp,))
                try:
                    await self.protocol.write(head, expect=current.stamp)
                except ConditionalRequestConflict:
                    continue
                return DeleteResult(version_id, target.delete_marker)
            # A removal some AZs hold already (an earlier try of this DELETE
            # that failed) is committed again, so that it reaches every AZ.
            found, gone = await self.protocol.version_to_remove(bucket, key, wanted)
            if gone is None:
                return DeleteResult(version_id, False)  # as S3: nothing to delete is no error
            now = self.clock.now()
            await self.protocol.commit_change(Change(bucket, key, now, removed=(gone,)), placement)
            # A DELETE of the version above it may have made it current
            # meanwhile (its first AZ took that before this removal got
            # there; once the removal is there, it refuses such a write):
            # then it goes as the current version does. The key's replicas
            # are read, not this node's cache, where the write may not be.
            self.protocol.forget(bucket, key)
            current, _ = await self.protocol.read(bucket, key)
            if current is not None and current.is_version and current.vstamp == gone:
                continue
            return DeleteResult(version_id, found is not None and found.delete_marker)
        raise ConditionalRequestConflict(
            f"{bucket}/{key} kept changing while version {version_id} was deleted; retry"
        )

    async def _versions_after(self, bucket: str, key: str, vstamp: Stamp) -> ObjectVersion | None:
        """The newest version of the key older than ``vstamp``, as its AZs hold it."""
        held = await self.protocol.versions_in_azs(
            bucket, key, None, 4, "deleting the current version"
        )
        older = [v for _, _, vs, _ in held for v in vs if v.vstamp < vstamp]
        if not older:
            return None
        return max(older, key=lambda v: (v.vstamp, v.stamp))

    # -- tags and ACLs ---------------------------------------------------------

    async def _version_for_update(
        self,
        bucket: str,
        key: str,
        version_id: str,
        markers: bool = False,
        known: BucketInfo | None = None,
    ) -> tuple[ObjectVersion, ObjectVersion | None]:
        """(the version, the current record when the version is current);
        delete markers only with ``markers``."""
        version, _, current, _ = await self._lookup(bucket, key, version_id, markers, known)
        return (version, current) if version is current else (version, None)

    async def _guess_for_update(
        self, bucket: str, key: str, version_id: str, markers: bool
    ) -> ObjectVersion | None:
        """The key's record on its first AZ's home if it is ``version_id``,
        current there, and a guess :meth:`update_version` may take."""
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        held = await self.protocol.home_record(bucket, key)
        if (
            held is None
            or not held.is_version
            or held.version_id != version_id
            or (held.delete_marker and not markers)
            or held.data_id
            or held.removed
        ):
            return None
        return held

    async def update_version(
        self,
        bucket: str,
        key: str,
        version_id: str,
        edit: Callable[[ObjectVersion], ObjectVersion | None],
        modifies: bool = False,
        markers: bool = False,
        settle: Callable[[], Awaitable[None]] | None = None,
        info: BucketInfo | None = None,
        guess: bool = False,
    ) -> ObjectVersion:
        """Change a version's record in place (same version id, same
        Last-Modified); ``edit`` returning None leaves it as it is. A change
        that ``modifies`` the version (its tags or ACL, as a user sees them) is
        stamped as such and queued again for the destinations that take it.
        ``settle`` runs after a change committed to a noncurrent version.
        ``info``: the bucket's, when the caller has read it already (it is
        not read again).

        ``guess`` (a replicator's status, which no user waits on): the first
        try edits the record the first AZ's home holds
        (:meth:`Protocol.home_record`) instead of reading the key, when that
        record is the version, current there: the conditional write is
        decided by that home, so a guess behind is refused with nothing
        written, and the key is then read. Such a try saves the witness's
        check and the other AZs' reads. Only a record whose write needs
        nothing more to be finished is taken (no chunked body, which the
        other AZs may lack, no versions it removed); an edit that finds
        nothing to change is taken only from a read."""
        placement = self.placer.place(bucket, key)
        known = info
        if not modifies:
            info = None
        elif info is None:
            info = known = await self.buckets.require_bucket(bucket)
        fresh = False
        attempt = 0
        while attempt < self.ncfg.restamp_attempts:
            guessed = None
            current: ObjectVersion | None
            if guess:
                guess = False
                guessed = await self._guess_for_update(bucket, key, version_id, markers)
                if guessed is None:
                    UPDATE_GUESSES.labels("none").inc()
            if guessed is not None:
                version = current = guessed
            else:
                version, current = await self._version_for_update(
                    bucket, key, version_id, markers, known
                )
            self.clock.observe(version.stamp)
            try:
                edited = edit(version)
            except Exception as exc:
                if guessed is not None:
                    UPDATE_GUESSES.labels("refused").inc()
                    continue  # judged on a guess: judged again on a read
                if not isinstance(exc, ConditionalRequestConflict) or fresh:
                    raise
                # The edit finds the version short of a change it builds on (a
                # status for a requeue it does not show): maybe one no one
                # finished, hidden by the cache. Once more, from the replicas.
                self.protocol.forget(bucket, key)
                fresh = True
                continue
            if guessed is not None:
                if edited is None:
                    UPDATE_GUESSES.labels("refused").inc()
                    continue  # nothing to change as the home has it: the key is read
            else:
                attempt += 1  # a guess refused is no try of the write's own
            if edited is None:
                return version
            updated = evolve(
                edited, stamp=self.clock.now(), version_stamp=version.vstamp, removed=()
            )
            if info is not None:
                updated = requeue_modified(evolve(updated, meta_stamp=updated.stamp), info)
            if current is None:
                # A noncurrent version: the first AZ takes the record only if
                # it holds none newer than the one read (another edit of the
                # version got there first: it is read again, and this edit
                # made on top of that one, so neither change is lost).
                change = Change(
                    bucket, key, updated.stamp, versions=(updated,), version_expect=version.stamp
                )
                try:
                    await self.protocol.commit_change(change, placement)
                except ConditionalRequestConflict:
                    VERSION_EDITS_REFUSED.inc()
                    continue
                if settle is not None:
                    await settle()
                return updated
            try:
                written = await self.protocol.write(updated, expect=current.stamp)
            except ConditionalRequestConflict:
                if guessed is not None:
                    UPDATE_GUESSES.labels("refused").inc()
                continue
            if guessed is not None:
                UPDATE_GUESSES.labels("taken").inc()
            return written
        raise ConditionalRequestConflict(f"{bucket}/{key} kept changing; retry")

    async def get_object_tagging(self, bucket: str, key: str, version_id: str = "") -> Tagging:
        version, _, _, info = await self._lookup(bucket, key, version_id)
        return Tagging(version.version_id, dict(version.tags), bool(info.versioning))

    async def put_object_tagging(
        self, bucket: str, key: str, version_id: str, tags: dict[str, str]
    ) -> Tagging:
        tags = validation.normalize_tags(tags)
        info = await self.buckets.require_bucket(bucket)
        v = await self.update_version(
            bucket, key, version_id, lambda v: evolve(v, tags=tags), modifies=True, info=info
        )
        return Tagging(v.version_id, dict(v.tags), bool(info.versioning))

    async def get_object_acl(self, bucket: str, key: str, version_id: str = "") -> Acl:
        version, _, _, info = await self._lookup(bucket, key, version_id)
        owner = version.owner or self.cfg.cluster.name
        return Acl(version.version_id, owner, version.acl or "private", bool(info.versioning))

    async def put_object_acl(self, bucket: str, key: str, version_id: str, acl: str) -> Acl:
        if not acl:
            raise InvalidArgument("give a canned ACL to set (private, public-read, ...)")
        acl = validation.check_acl(acl)
        info = await self.buckets.require_bucket(bucket)
        v = await self.update_version(
            bucket, key, version_id, lambda v: evolve(v, acl=acl), modifies=True, info=info
        )
        owner = v.owner or self.cfg.cluster.name
        return Acl(v.version_id, owner, v.acl, bool(info.versioning))

    # -- COPY ----------------------------------------------------------------------

    async def copy_object(
        self,
        source: CopySource,
        dest: PutHeader,
        metadata_directive: str = "COPY",
        tagging_directive: str = "COPY",
        source_sse_customer: sse.CustomerKey | None = None,
    ) -> CopyResult:
        """Server-side copy: this node streams the source body to the new
        version's replicas; the client sends and receives no body."""
        validation.check_bucket_name(dest.bucket)
        validation.check_key(dest.key)
        meta_mode = validation.check_directive("metadata directive", metadata_directive)
        tag_mode = validation.check_directive("tagging directive", tagging_directive)
        try:
            src, holders, _, src_bucket = await self._lookup(
                source.bucket, source.key, source.version_id
            )
        except MethodNotAllowed:
            raise marker_source(source.bucket, source.key, source.version_id) from None
        cipher = await self.encryption.opener(src, source_sse_customer)
        check_conditions(src, source.conditions, copy_source=True)
        # Copying a named version onto its own key is S3's way to restore it.
        same = (source.bucket, source.key) == (dest.bucket, dest.key) and not source.version_id
        if (
            same
            and meta_mode == "COPY"
            and not (
                dest.storage_class
                or dest.sse
                or dest.sse_customer
                or source_sse_customer
                or dest.acl
                or dest.checksum
                or tag_mode == "REPLACE"
            )
        ):
            raise InvalidRequest(
                "this copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class or encryption"
            )
        content_type, metadata, headers = (
            (src.content_type, src.metadata, src.headers)
            if meta_mode == "COPY"
            else (dest.content_type, dest.metadata, dest.headers)
        )
        tags = src.tags if tag_mode == "COPY" else dest.tags
        header = replace(
            dest,
            content_type=content_type,
            metadata=metadata,
            headers=headers,
            tags=tags,
            size=src.size,
        )
        body = self.body(src, cipher, holders, 0, src.size)
        header = _copy_checksum(header, src)
        info = await self.put_object(header, body)
        return CopyResult(info, src.version_id, bool(src_bucket.versioning))
