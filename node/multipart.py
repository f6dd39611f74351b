"""Multipart upload: S3's CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
AbortMultipartUpload, ListMultipartUploads and ListParts.

An upload and its parts are ordinary keys of the internal bucket
:data:`keys.UPLOADS` (not a valid S3 name, so no user can reach it), so they get
everything a key gets: the three-AZ commit, the witness, hinted handoff.

- ``u/<bucket>/<key>\\x01<upload id>``: the upload, a record without a body that
  carries the object-to-be's fields (content type, metadata, tags, ACL, storage
  class, SSE); it sorts by key, then by upload id, which sorts by creation.
- ``p/<upload id>/<part number, 5 digits>``: one part, its body and MD5 ETag.

Complete checks the client's list against the stored parts (S3's InvalidPart,
InvalidPartOrder, EntityTooSmall), then streams the chosen parts' bodies, in
order, into one new version of the target key, which commits like any PUT: in
all three AZs or not at all, with ETag ``md5(concatenated part MD5s)-N``. Then
the parts and the upload are deleted and their bodies go to the garbage
collector. A crash before that leaves the upload in place, to be completed again
or aborted.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import re
from collections.abc import AsyncIterator
from dataclasses import replace

from node import keys
from node.coordinator import Coordinator
from node.listing import decode_token, encode_token
from node.objects import RESEND_SEARCH_VERSIONS, PutHeader, check_put_conditions, to_replicate
from tristore import checksums, sse, validation
from tristore.checksums import Checksum
from tristore.config import NodeSection
from tristore.errors import (
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    MalformedXML,
    NoSuchBucket,
    NoSuchUpload,
)
from tristore.model import (
    VERSIONING_ENABLED,
    BucketInfo,
    CompletedPart,
    MultipartUpload,
    ObjectInfo,
    ObjectVersion,
    Part,
    PartPage,
    UploadPage,
    ms_to_datetime,
)
from tristore.stamps import ZERO
from tristore.validation import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE

log = logging.getLogger(__name__)

#: S3's limits (the part limits: tristore.validation).
MAX_OBJECT_SIZE = 5 * 1024**4
MAX_LIST = 1000

_UPLOAD_ID = re.compile(r"[0-9a-f]{28}")
_SEP = "\x01"


def _upload_key(bucket: str, key: str, upload_id: str) -> str:
    return f"u/{bucket}/{key}{_SEP}{upload_id}"


def _uploads_prefix(bucket: str, prefix: str = "") -> str:
    return f"u/{bucket}/{prefix}"


def _part_prefix(upload_id: str) -> str:
    return f"p/{upload_id}/"


def _part_key(upload_id: str, number: int) -> str:
    return f"{_part_prefix(upload_id)}{number:05d}"


def multipart_etag(part_etags: list[str]) -> str:
    """S3's ETag of a multipart object: MD5 of the parts' binary MD5s, dash, count."""
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in part_etags)).hexdigest()
    return f"{digest}-{len(part_etags)}"


def _before_bucket(began_ms: int, bucket: BucketInfo) -> bool:
    """Whether an upload that began at ``began_ms`` (its record's stamp, which
    its id begins with) began before ``bucket`` was created: an upload of an
    earlier bucket of the same name, deleted since. An upload of this bucket
    began after the coordinator that created it read the bucket's record, so
    its stamp is not below the bucket's creation."""
    return began_ms < round(bucket.created.timestamp() * 1000)


def _bare(etag: str) -> str:
    return etag.strip().strip('"').lower()


class Multipart:
    """The multipart operations of one coordinator (which does the storing)."""

    def __init__(self, coord: Coordinator, cfg: NodeSection) -> None:
        self.coord = coord
        self.cfg = cfg

    async def create(self, header: PutHeader) -> MultipartUpload:
        validation.check_bucket_name(header.bucket)
        validation.check_key(header.key)
        c = self.coord
        base = c.objects.new_version(header, header.content_type, header.metadata, header.tags)
        info = await c.buckets.require_bucket(header.bucket)
        # The encryption the object will get (parts get it too): SSE-C is
        # remembered by the HMAC of its key, which each part must match.
        ck = header.sse_customer
        base = replace(
            base,
            sse="" if ck is not None else base.sse or info.default_sse,
            sse_customer_hmac=sse.customer_hmac(ck) if ck is not None else b"",
        )
        algorithm = header.checksum.name if header.checksum is not None else ""
        if algorithm or header.checksum_type:
            kind = checksums.check_type(algorithm, header.checksum_type)
            base = replace(base, checksum_algorithm=algorithm, checksum_type=kind)
        stamp = c.clock.now()
        upload_id = f"{stamp.physical_ms:012x}{os.urandom(8).hex()}"
        record = replace(
            base,
            bucket=keys.UPLOADS,
            key=_upload_key(header.bucket, header.key, upload_id),
            stamp=stamp,
            null_version=True,
        )
        await c.protocol.write(record)
        return _upload_of(header.bucket, header.key, upload_id, record)

    async def _upload(self, bucket: str, key: str, upload_id: str) -> ObjectVersion:
        """The upload's record, read linearizably; NoSuchUpload if it is not in
        progress, or began before its bucket was made (it was an upload of a
        bucket of that name since deleted: it is not this one's)."""
        upload, _ = await self._upload_and_bucket(bucket, key, upload_id)
        return upload

    async def _upload_and_bucket(
        self, bucket: str, key: str, upload_id: str
    ) -> tuple[ObjectVersion, BucketInfo]:
        """:meth:`_upload`, and the bucket's info it was checked against."""
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        if _UPLOAD_ID.fullmatch(upload_id):
            v, _ = await self.coord.protocol.read(keys.UPLOADS, _upload_key(bucket, key, upload_id))
            if v is not None and not v.deleted:
                info = await self.coord.buckets.require_bucket(bucket)
                if not _before_bucket(v.stamp.physical_ms, info):
                    return v, info
        await self.coord.buckets.require_bucket(bucket)
        raise _no_such_upload(bucket, key, upload_id)

    async def _still_in_progress(self, upload: ObjectVersion) -> bool:
        """Whether ``upload``, found by :meth:`_upload` earlier in this call,
        is still in progress (not completed or aborted since): its record
        read again, linearizably. The bucket is not read again: the upload
        was of this bucket when the call began, and an upload whose bucket
        is deleted meanwhile stays invisible all the same (every later call
        checks the bucket, and the sweep removes the upload and its parts)."""
        v, _ = await self.coord.protocol.read(keys.UPLOADS, upload.key)
        return v is not None and not v.deleted

    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: AsyncIterator[bytes],
        size: int = -1,
        content_md5: str = "",
        ck: sse.CustomerKey | None = None,
        checksum: Checksum | None = None,
    ) -> Part:
        """One part. ``checksum``: the one its writer declared (computed and
        checked as the part is stored); else the upload's algorithm, or
        CRC-64/NVME, is computed."""
        if not 1 <= part_number <= MAX_PARTS:
            raise InvalidArgument(
                f"part number {part_number} is out of range: parts are numbered 1 to {MAX_PARTS}"
            )
        if size > MAX_PART_SIZE:
            raise EntityTooLarge(f"a part holds at most {MAX_PART_SIZE} bytes, not {size}")
        upload, info = await self._upload_and_bucket(bucket, key, upload_id)
        sse.check_customer_key(upload.sse_customer_hmac, ck, f"upload {upload_id}")
        wanted = upload.checksum_algorithm
        if checksum is not None and wanted and checksum.name != wanted:
            raise InvalidRequest(
                f"upload {upload_id} was created for {wanted.upper()} checksums; part "
                f"{part_number} carries {checksum.name.upper()} (checksum type mismatch)"
            )
        if checksum is None:
            checksum = Checksum(wanted or checksums.DEFAULT)
        base = ObjectVersion(
            keys.UPLOADS, _part_key(upload_id, part_number), ZERO, null_version=True, sse=upload.sse
        )
        base, cipher = await self.coord.encryption.sealer(base, info, ck)
        v = await self.coord.objects.store(
            base, body, size, content_md5, limit=MAX_PART_SIZE, cipher=cipher, checksum=checksum
        )
        if not await self._still_in_progress(upload):
            # Completed or aborted while the part streamed in: leave nothing behind.
            await self._discard([v.key])
            raise _no_such_upload(bucket, key, upload_id)
        modified = ms_to_datetime(v.last_modified_ms)
        return Part(part_number, v.etag, v.size, modified, v.checksum_algorithm, v.checksum)

    async def complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        chosen: list[CompletedPart],
        ck: sse.CustomerKey | None = None,
        if_none_match: str = "",
        if_match: str = "",
    ) -> ObjectInfo:
        """The upload's ``chosen`` parts as one new version of the key. Each
        must be a stored part with the ETag given and, when a checksum is
        given, that checksum (S3's InvalidPart otherwise); an upload of
        COMPOSITE checksums needs every part's (InvalidRequest). Both doors
        come here: the S3 API's XML and gRPC's CompletedPart list the same.

        A Complete of an upload an earlier Complete with the same parts
        finished (a retry whose first attempt's reply was lost) answers
        success with that version, as S3 does; the version carries the upload
        id as its request id.

        ``if_none_match`` (``*``: only if the key has no current object) and
        ``if_match`` (only over the current object of that ETag) make it a
        conditional write, as a PUT's: PreconditionFailed (NoSuchKey for
        If-Match on no object) leaves the upload as it was, to complete
        otherwise or abort."""
        check_put_conditions(if_none_match, if_match)
        try:
            upload = await self._upload(bucket, key, upload_id)
        except NoSuchUpload:
            done = await self._completed(bucket, key, upload_id, chosen)
            if done is None:
                raise
            log.info("Complete of %s/%s (upload %s) again: it was done", bucket, key, upload_id)
            version, versioned = done
            return ObjectInfo.of(version, ck.key_md5 if ck is not None else "", versioned)
        # Parts are opened and the object sealed here: an SSE-C upload needs
        # its key once more (S3 takes it here too).
        sse.check_customer_key(upload.sse_customer_hmac, ck, f"upload {upload_id}")
        if not chosen:
            raise MalformedXML("the part list is empty: name at least one part to complete")
        numbers = [listed.part_number for listed in chosen]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise InvalidPartOrder(
                "the parts must be listed in ascending order of part number, each once"
            )
        stored = {p.part_number: p for p in await self._all_parts(upload_id)}
        parts: list[Part] = []
        for i, listed in enumerate(chosen):
            number, etag = listed.part_number, listed.etag
            p = stored.get(number)
            if p is None or _bare(etag) != p.etag:
                have = f"its ETag is {p.etag!r}" if p is not None else "it was not uploaded"
                raise InvalidPart(
                    f"part {number} with ETag {etag!r} is not a part of this upload ({have})"
                )
            _check_part_checksum(listed, p, upload)
            if i < len(chosen) - 1 and p.size < MIN_PART_SIZE:
                raise EntityTooSmall(
                    f"part {number} has {p.size} bytes; every part but the last needs at "
                    f"least {MIN_PART_SIZE}"
                )
            parts.append(p)
        c = self.coord
        info = await c.buckets.require_bucket(bucket)
        expect = await c.objects.put_precondition(
            PutHeader(bucket, key, if_none_match=if_none_match, if_match=if_match)
        )
        target = replace(
            upload,
            bucket=bucket,
            key=key,
            stamp=ZERO,
            null_version=info.versioning != VERSIONING_ENABLED,
            checksum_algorithm="",
            checksum_type="",
            request_id=upload_id,
            part_sizes=tuple(p.size for p in parts),
        )
        target = to_replicate(target, info)
        target, cipher = await c.encryption.sealer(target, info, ck)
        total = sum(p.size for p in parts)
        checksum = Checksum(upload.checksum_algorithm, type=upload.checksum_type, of_parts=True)
        version = await c.objects.store(
            target,
            self._bodies(upload_id, parts, bucket, ck, checksum),
            total,
            "",
            limit=MAX_OBJECT_SIZE,
            etag=multipart_etag([p.etag for p in parts]),
            cipher=cipher,
            checksum=checksum,
            expect=expect,
        )
        await self._discard([_part_key(upload_id, n) for n in stored] + [upload.key])
        key_md5 = ck.key_md5 if ck is not None else ""
        return ObjectInfo.of(version, key_md5, bool(info.versioning))

    async def _completed(
        self, bucket: str, key: str, upload_id: str, chosen: list[CompletedPart]
    ) -> tuple[ObjectVersion, bool] | None:
        """The version of ``key`` that upload ``upload_id`` became with the
        parts ``chosen``, if it was completed so (None: it was not, or with
        other parts), and whether the bucket has versioning. Its Complete
        acknowledged it in every AZ before the upload was removed: the
        current version, or in a versioned bucket one of the newest of each
        AZ, holds it."""
        if not _UPLOAD_ID.fullmatch(upload_id) or not chosen:
            return None
        try:
            etag = multipart_etag([_bare(p.etag) for p in chosen])
        except ValueError:
            return None  # not ETags a part can have

        def made(v: ObjectVersion | None) -> bool:
            return v is not None and v.request_id == upload_id and v.etag == etag and not v.deleted

        info = await self.coord.buckets.require_bucket(bucket)
        current, _ = await self.coord.protocol.read(bucket, key)
        found = current if made(current) else None
        if found is None and info.versioning == VERSIONING_ENABLED:
            held = await self.coord.protocol.versions_in_azs(
                bucket, key, None, RESEND_SEARCH_VERSIONS, "looking for a completed upload", False
            )
            found = next((v for _, _, vs, _ in held for v in vs if made(v)), None)
        return (found, bool(info.versioning)) if found is not None else None

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
        upload = await self._upload(bucket, key, upload_id)
        parts = await self._all_parts(upload_id)
        await self._discard([_part_key(upload_id, p.part_number) for p in parts] + [upload.key])

    async def sweep(self, created_before_ms: int | None) -> tuple[int, int]:
        """Abort every upload created before ``created_before_ms`` (wall-clock
        ms, which its id begins with; None: none expire), and remove every
        upload whose bucket is gone, or was deleted and created again after
        the upload began (DeleteBucket leaves its uploads to this: they are
        no longer the bucket's from the moment it is deleted, see
        :func:`_before_bucket`). Returns (expired, orphaned)."""
        expired = orphaned = 0
        buckets: dict[str, BucketInfo | None] = {}
        token: str | None = None
        while True:
            page = await self.coord.listing.list_keys(keys.UPLOADS, "u/", "", MAX_LIST, token, "")
            for entry in page.contents:
                upload_id = entry.key.rpartition(_SEP)[2]
                if not _UPLOAD_ID.fullmatch(upload_id):
                    continue
                began = int(upload_id[:12], 16)
                bucket = entry.key[2:].partition("/")[0]
                if bucket not in buckets:
                    try:
                        buckets[bucket] = await self.coord.buckets.require_bucket(bucket)
                    except NoSuchBucket:
                        buckets[bucket] = None
                info = buckets[bucket]
                gone = info is None or _before_bucket(began, info)
                if not gone and (created_before_ms is None or began >= created_before_ms):
                    continue
                parts = await self._all_parts(upload_id)
                await self._discard(
                    [_part_key(upload_id, p.part_number) for p in parts] + [entry.key]
                )
                log.info(
                    "removed multipart upload %s (%s): %s",
                    upload_id,
                    entry.key[2:].partition(_SEP)[0],
                    "its bucket was deleted" if gone else "older than the expiry",
                )
                if gone:
                    orphaned += 1
                else:
                    expired += 1
            if not page.is_truncated:
                return expired, orphaned
            token = page.next_continuation_token

    async def list_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = MAX_LIST,
        delimiter: str = "",
    ) -> UploadPage:
        """A page of the bucket's uploads in progress, by key then creation.
        With a ``delimiter``, the uploads of keys that hold it after the
        prefix are rolled up into their common prefix (up to and with its
        first occurrence), listed once and counted as one against
        ``max_uploads``, as ListObjects does; a ``key_marker`` that is such
        a common prefix (a page's ``next_key_marker``) resumes after every
        upload under it."""
        validation.check_bucket_name(bucket)
        max_uploads = validation.cap_max_keys(max_uploads, "max-uploads")
        validation.check_delimiter(delimiter)
        if len(prefix.encode()) > validation.MAX_KEY_BYTES:
            raise InvalidArgument("prefix is longer than a key can be")
        if not key_marker:
            upload_id_marker = ""  # S3: without a key marker it is ignored
        info = await self.coord.buckets.require_bucket(bucket)
        start_after, token = "", None
        if key_marker and _is_common_prefix(key_marker, prefix, delimiter):
            token = encode_token(_uploads_prefix(bucket, key_marker), True)
        elif key_marker:
            # After every upload of the marker's key, or after the marker's upload.
            start_after = _upload_key(bucket, key_marker, upload_id_marker or "g")

        def view(name: str) -> str | None:
            # The delimiter is looked for in the key, never in the upload id
            # after it; an upload of a deleted bucket of this name is left out
            # before it is counted (or rolled up into a prefix).
            key_part, _, upload_id = name.rpartition(_SEP)
            if not _UPLOAD_ID.fullmatch(upload_id) or _before_bucket(int(upload_id[:12], 16), info):
                return None
            return key_part

        page = await self.coord.listing.list_keys(
            keys.UPLOADS,
            _uploads_prefix(bucket, prefix),
            delimiter,
            max_uploads,
            token,
            start_after,
            view,
        )
        cut = len(_uploads_prefix(bucket))
        gate = asyncio.Semaphore(self.cfg.multipart_parallel)

        async def one(entry_key: str) -> MultipartUpload | None:
            name, _, upload_id = entry_key[cut:].rpartition(_SEP)
            async with gate:
                record, _ = await self.coord.protocol.read(keys.UPLOADS, entry_key)
            if record is None or record.deleted:
                return None  # completed or aborted since it was listed
            if _before_bucket(record.stamp.physical_ms, info):
                return None  # of a deleted bucket of this name, until the sweep removes it
            return _upload_of(bucket, name, upload_id, record)

        found = await asyncio.gather(*(one(e.key) for e in page.contents))
        uploads = [u for u in found if u is not None]
        next_key = next_id = None
        if page.is_truncated and page.next_continuation_token:
            # Where the listing stopped: its last upload, or its last common prefix.
            last, is_prefix = decode_token(page.next_continuation_token)
            if is_prefix:
                next_key = last[cut:]
            else:
                next_key, _, next_id = last[cut:].rpartition(_SEP)
        return UploadPage(
            uploads,
            page.is_truncated,
            next_key,
            next_id,
            [p[cut:] for p in page.common_prefixes],
        )

    async def list_parts(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int = 0,
        max_parts: int = MAX_LIST,
    ) -> PartPage:
        max_parts = validation.cap_max_keys(max_parts, "max-parts")
        if not 0 <= part_number_marker <= MAX_PARTS:
            raise InvalidArgument(f"part-number marker {part_number_marker} is out of range")
        upload = await self._upload(bucket, key, upload_id)
        page = await self._parts_page(upload_id, part_number_marker, max_parts)
        return replace(
            page,
            checksum_algorithm=upload.checksum_algorithm,
            checksum_type=upload.checksum_type,
            storage_class=upload.storage_class,
        )

    async def _parts_page(self, upload_id: str, after: int, max_parts: int) -> PartPage:
        start = _part_key(upload_id, after) if after else ""
        page = await self.coord.listing.list_keys(
            keys.UPLOADS, _part_prefix(upload_id), "", max_parts, None, start
        )
        parts = [
            Part(
                int(e.key.rsplit("/", 1)[1]),
                e.etag,
                e.size,
                e.last_modified,
                e.checksum_algorithm,
                e.checksum,
            )
            for e in page.contents
        ]
        marker = parts[-1].part_number if page.is_truncated and parts else None
        return PartPage(parts, page.is_truncated, marker)

    async def _all_parts(self, upload_id: str) -> list[Part]:
        out: list[Part] = []
        after = 0
        for _ in range(MAX_PARTS // MAX_LIST + 1):
            page = await self._parts_page(upload_id, after, MAX_LIST)
            out += page.parts
            if not page.is_truncated or page.next_part_number_marker is None:
                break
            after = page.next_part_number_marker
        return out

    async def _bodies(
        self,
        upload_id: str,
        parts: list[Part],
        bucket: str,
        ck: sse.CustomerKey | None,
        checksum: Checksum,
    ) -> AsyncIterator[bytes]:
        """The chosen parts' bodies (plaintext), one after the other; at the
        end, ``checksum`` (the upload's algorithm and type, if it named them)
        is set from the parts' checksums (:func:`_object_checksum`)."""
        c = self.coord
        sums: list[tuple[str, str, int]] = []
        for p in parts:
            v, holders = await c.protocol.read(keys.UPLOADS, _part_key(upload_id, p.part_number))
            if v is None or v.deleted or v.etag != p.etag:
                raise InvalidPart(f"part {p.part_number} changed while the upload completed")
            sums.append((v.checksum_algorithm, v.checksum, v.size))
            cipher = await c.encryption.opener(v, ck, key_bucket=bucket)
            async for piece in c.objects.body(v, cipher, holders, 0, v.size):
                yield piece
        _object_checksum(checksum, sums)

    async def _discard(self, names: list[str]) -> None:
        """Delete internal keys for good (their bodies go to the garbage collector)."""
        c = self.coord
        gate = asyncio.Semaphore(self.cfg.multipart_parallel)

        async def one(name: str) -> None:
            async with gate:
                tomb = ObjectVersion(
                    keys.UPLOADS, name, c.clock.now(), deleted=True, null_version=True
                )
                await c.protocol.write(tomb)

        await asyncio.gather(*(one(n) for n in names))


def _check_part_checksum(chosen: CompletedPart, stored: Part, upload: ObjectVersion) -> None:
    """A checksum the Complete request lists for a part must be the part's
    (S3's InvalidPart): same algorithm, same value. An upload created for
    COMPOSITE checksums (the object's is of its parts' checksums) needs each
    part's listed, as S3 does (InvalidRequest); one of FULL_OBJECT type is
    combined from the stored parts' either way, so there they stay optional."""
    n = chosen.part_number
    if not chosen.checksum_algorithm:
        if chosen.checksum:
            raise InvalidRequest(f"part {n} lists a checksum value but no checksum algorithm")
        if upload.checksum_type == checksums.COMPOSITE:
            raise InvalidRequest(
                f"The upload was created using a {upload.checksum_algorithm} checksum. The "
                "complete request must include the checksum for each part. It was missing "
                f"for part {n} in the request."
            )
        return
    try:
        algorithm = checksums.check_algorithm(chosen.checksum_algorithm)
    except InvalidRequest as e:
        raise InvalidRequest(f"part {n}: {e.message}") from None
    given = algorithm.upper()
    if not chosen.checksum.strip():
        raise InvalidRequest(f"part {n} lists a {given} checksum without its value")
    if algorithm != stored.checksum_algorithm:
        has = (
            f"a {stored.checksum_algorithm.upper()} checksum"
            if stored.checksum_algorithm
            else "no checksum"
        )
        raise InvalidPart(f"part {n} has {has}, not the {given} one the request lists")
    if chosen.checksum.strip() != stored.checksum:
        raise InvalidPart(
            f"part {n}'s {given} checksum is {stored.checksum}, not the "
            f"{chosen.checksum.strip()!r} the request lists"
        )


def _object_checksum(checksum: Checksum, parts: list[tuple[str, str, int]]) -> None:
    """A multipart object's checksum from its parts' (algorithm, checksum,
    size), set on ``checksum``. The parts must all carry one algorithm (the
    upload's, when it named one); then the object's is of the upload's type,
    or, when it named none, the whole body's for CRC-64/NVME (what parts get
    by default) and a checksum of the parts' checksums (``-N``) for the rest.
    Parts of mixed algorithms (an upload that named none) give the object no
    checksum: ``checksum.name`` is cleared."""
    algorithms = {a for a, _, _ in parts}
    if len(algorithms) != 1 or not all(value for _, value, _ in parts):
        checksum.name = ""
        return
    (algorithm,) = algorithms
    if checksum.name and checksum.name != algorithm:  # refused at UploadPart already
        checksum.name = ""
        return
    kind = checksum.type if checksum.name else checksums.check_type(algorithm, "")
    checksum.name, checksum.type = algorithm, kind
    checksum.computed = checksums.combined(algorithm, kind, [(v, n) for _, v, n in parts])


def _is_common_prefix(key_marker: str, prefix: str, delimiter: str) -> bool:
    """Whether ``key_marker`` is a common prefix a listing by ``prefix`` and
    ``delimiter`` rolls keys up into (the prefix, then up to and with the
    delimiter's first occurrence after it)."""
    if not delimiter or not key_marker.startswith(prefix):
        return False
    return key_marker.find(delimiter, len(prefix)) == len(key_marker) - len(delimiter)


def _no_such_upload(bucket: str, key: str, upload_id: str) -> NoSuchUpload:
    return NoSuchUpload(
        f"upload {upload_id!r} of {bucket}/{key} does not exist: it was never created, "
        "or was completed or aborted"
    )


def _upload_of(bucket: str, key: str, upload_id: str, record: ObjectVersion) -> MultipartUpload:
    return MultipartUpload(
        bucket,
        key,
        upload_id,
        ms_to_datetime(record.last_modified_ms),
        record.storage_class,
        record.owner,
        record.checksum_algorithm,
        record.checksum_type,
    )
