"""The S3 operations on objects: PUT (and copy), GET, HEAD, DELETE, tagging, ACLs."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from node.metrics import S3_BYTES
from node.objects import GetResult
from node.s3 import headers as hdr
from node.s3 import xml
from node.s3.call import Base, Call, answer, empty
from tristore import errors, validation
from tristore.errors import (
    InvalidArgument,
    InvalidRequest,
)
from tristore.model import Conditions, CopySource

#: A GET answer up to this size is read whole and sent with its headers in one
#: write; a larger one is streamed. A streamed answer sends its headers on
#: their own: for a small object, two sends and two wake-ups of the client
#: where one does.
WHOLE_ANSWER_MAX = 64 * 1024


async def _whole(result: GetResult, status: int, headers: dict[str, str]) -> web.Response:
    """A small GET answer, read before anything is sent (so an error reading it
    is still S3's XML error, not a cut connection)."""
    try:
        body = b"".join([piece async for piece in result.body])
    finally:
        aclose = getattr(result.body, "aclose", None)
        if aclose is not None:
            await aclose()
    S3_BYTES.labels("sent").inc(len(body))
    return web.Response(status=status, headers=headers, body=body)


def _part_number(call: Call) -> int:
    """GET's and HEAD's partNumber (0: none), 1 to 10,000 (InvalidArgument otherwise)."""
    if "partNumber" not in call.query:
        return 0
    raw = call.query["partNumber"]
    try:
        number = int(raw)
    except ValueError:
        raise InvalidArgument(
            f"Part number must be an integer between 1 and {validation.MAX_PARTS}, "
            f"inclusive (not {raw!r})"
        ) from None
    return validation.check_part_number(number)


class ObjectHandlers(Base):
    """One method per object-level S3 operation."""

    async def put_object(self, call: Call) -> web.StreamResponse:
        if "x-amz-copy-source" in call.headers:
            return await self.copy_object(call)
        await self.allow(call, "PutObject")
        stream, size, checksum = self.body(call)
        if checksum is None:
            checksum = hdr.asked_checksum(call.headers)
        # With none declared nor asked for, the object gets S3's default (CRC-64/NVME).
        header = hdr.put_header(call.bucket, call.key, call.headers, size, checksum)
        rid, resend = hdr.sdk_attempt(call.headers)
        header = replace(header, request_id=rid, resend=resend)
        info = await self.coord.put_object(header, stream)
        return empty(headers=hdr.put_answer(info))

    async def copy_object(self, call: Call) -> web.StreamResponse:
        h = call.headers
        src = hdr.copy_source(h["x-amz-copy-source"])
        await self.allow(call, "CopyObject", source=src)
        directive = h.get("x-amz-metadata-directive", "COPY").upper()
        tagging = h.get("x-amz-tagging-directive", "COPY").upper()
        for name, value in (("metadata", directive), ("tagging", tagging)):
            if value not in ("COPY", "REPLACE"):
                raise InvalidArgument(f"x-amz-{name}-directive must be COPY or REPLACE")
        source = CopySource(*src, hdr.conditions(h, "x-amz-copy-source-") or Conditions())
        dest = hdr.put_header(call.bucket, call.key, h, checksum=hdr.asked_checksum(h))
        result = await self.coord.copy_object(
            source,
            dest,
            directive,
            tagging,
            hdr.customer_key(h, "x-amz-copy-source-server-side-encryption"),
        )
        out = hdr.version_header(result.info.version_id, result.info.bucket_versioned)
        out |= hdr.version_header(
            result.source_version_id,
            result.source_bucket_versioned,
            "x-amz-copy-source-version-id",
        )
        if result.info.sse:
            out["x-amz-server-side-encryption"] = result.info.sse
        return answer(xml.copy_result(result.info), headers=out)

    async def get_object(self, call: Call) -> web.StreamResponse:
        q = call.query
        version = _version_id(call)
        await self.allow(call, "GetObject", version=version)
        overrides = {name: q[p] for p, name in hdr.RESPONSE_OVERRIDES.items() if p in q}
        if overrides and call.caller.user is None and self.guard.enabled:
            raise InvalidRequest(
                "Request specific response headers cannot be used for anonymous GET requests "
                "(response-* parameters need a signed request or a presigned URL)"
            )
        h = call.headers
        part = _part_number(call)
        rng = hdr.byte_range(h.get("range"))
        try:
            result = await self.coord.get_object(
                call.bucket,
                call.key,
                rng,
                version,
                hdr.conditions(h),
                hdr.customer_key(h),
                part_number=part,
            )
        except errors.NotModified:
            return await self._not_modified(call, version)
        except errors.NoSuchKey as exc:
            raise await self._absent(call, exc) from None
        info = result.info
        out = hdr.object_headers(info)
        whole = result.first == 0 and result.last == info.size - 1
        if hdr.checksum_mode(h) and (rng is None and (not part or whole)):
            # Of the whole object only: a range, or a part of several, gets none (as S3).
            out |= hdr.checksum_headers(info.checksum_algorithm, info.checksum, info.checksum_type)
        out |= overrides
        length = result.last - result.first + 1 if info.size else 0
        status = 200
        if (rng is not None or part) and info.size:
            status = 206
            out["Content-Range"] = f"bytes {result.first}-{result.last}/{info.size}"
        if part:
            out |= hdr.parts_count(info)
        if length <= WHOLE_ANSWER_MAX:
            return await _whole(result, status, out)
        resp = web.StreamResponse(status=status, headers=out)
        resp.content_length = length
        try:
            await resp.prepare(call.request)
            call.prepared = True
            async for piece in result.body:
                S3_BYTES.labels("sent").inc(len(piece))
                await resp.write(piece)
            await resp.write_eof()
        finally:
            aclose = getattr(result.body, "aclose", None)
            if aclose is not None:
                await aclose()
        return resp

    async def head_object(self, call: Call) -> web.StreamResponse:
        version = _version_id(call)
        await self.allow(call, "HeadObject", version=version)
        h = call.headers
        part = _part_number(call)
        rng = hdr.byte_range(h.get("range"))
        if part and rng is not None:
            validation.resolve_part((), 0, part, has_range=True)
        try:
            info = await self.coord.head_object(
                call.bucket, call.key, version, hdr.conditions(h), hdr.customer_key(h), part
            )
        except errors.NotModified:
            return await self._not_modified(call, version)
        except errors.NoSuchKey as exc:
            raise await self._absent(call, exc) from None
        out = hdr.object_headers(info)
        first, last = 0, info.size - 1
        status = 200
        # A part or a Range is answered as a GET of it would be (S3's "ranged
        # HEAD": 206 with its Content-Range and length, 416 if unsatisfiable).
        if part:
            first, last = validation.resolve_part(info.part_sizes, info.size, part)
            out |= hdr.parts_count(info)
        elif rng is not None:
            first, last = validation.resolve_range(rng.start, rng.end, info.size, rng.empty_suffix)
        if (part or rng is not None) and info.size:
            status = 206
            out["Content-Range"] = f"bytes {first}-{last}/{info.size}"
        if hdr.checksum_mode(h) and rng is None and first == 0 and last == info.size - 1:
            out |= hdr.checksum_headers(info.checksum_algorithm, info.checksum, info.checksum_type)
        resp = web.StreamResponse(status=status, headers=out)
        resp.content_length = last - first + 1 if info.size else 0
        await resp.prepare(call.request)
        call.prepared = True
        await resp.write_eof()
        return resp

    async def get_object_attributes(self, call: Call) -> web.StreamResponse:
        """GetObjectAttributes: what x-amz-object-attributes asks of an object
        (ETag, Checksum, ObjectParts, StorageClass, ObjectSize) without its
        body, read as HEAD reads it (SSE-C: the customer's key is needed)."""
        version = _version_id(call)
        await self.allow(call, "GetObjectAttributes", version=version)
        wanted = xml.parse_object_attributes(call.headers.get("x-amz-object-attributes"))
        try:
            info = await self.coord.head_object(
                call.bucket, call.key, version, None, hdr.customer_key(call.headers)
            )
        except errors.NoSuchKey as exc:
            raise await self._absent(call, exc) from None
        out = {"Last-Modified": hdr.http_date(info.last_modified)}
        out |= hdr.version_header(info.version_id, info.bucket_versioned)
        return answer(xml.object_attributes(info, wanted), headers=out)

    async def _absent(self, call: Call, missing: errors.NoSuchKey) -> errors.TristoreError:
        """What a read of a key that is not there answers (Guard.absent)."""
        return await self.guard.absent(
            call.caller.user, call.bucket, call.key, call.context, missing
        )

    async def _not_modified(self, call: Call, version: str) -> web.StreamResponse:
        """304, with the ETag and Last-Modified a cache revalidates by, and the
        object's Cache-Control and Expires (as S3's, and RFC 9110 asks)."""
        info = await self.coord.head_object(
            call.bucket, call.key, version, None, hdr.customer_key(call.headers)
        )
        out = hdr.object_headers(info)
        keep = ("ETag", "Last-Modified", "x-amz-version-id", "Cache-Control", "Expires")
        return empty(304, {k: v for k, v in out.items() if k in keep})

    async def delete_object(self, call: Call) -> web.StreamResponse:
        version = _version_id(call)
        await self.allow(call, "DeleteObject", version=version)
        unoffered = [h for h in UNOFFERED_DELETE_CONDITIONS if h in call.headers]
        if unoffered:
            # Ignored, the object would be deleted whatever it holds now.
            raise errors.NotImplemented(
                f"conditional deletes by {', '.join(unoffered)} are not supported (S3 takes "
                "them in directory buckets only): nothing was deleted; use If-Match"
            )
        if_match = call.headers.get("if-match", "")
        r = await self.coord.delete_object(call.bucket, call.key, version, if_match)
        # The version asked for is echoed, or the delete marker made named; an
        # unversioned DELETE (no version id, bucket never versioned) has neither.
        out = hdr.version_header(r.version_id)
        if r.delete_marker:
            out["x-amz-delete-marker"] = "true"
        return empty(204, out)

    async def get_object_tagging(self, call: Call) -> web.StreamResponse:
        version = _version_id(call)
        await self.allow(call, "GetObjectTagging", version=version)
        t = await self.coord.get_object_tagging(call.bucket, call.key, version)
        return answer(
            xml.tagging(t.tags), headers=hdr.version_header(t.version_id, t.bucket_versioned)
        )

    async def put_object_tagging(self, call: Call) -> web.StreamResponse:
        version = _version_id(call)
        await self.allow(call, "PutObjectTagging", version=version)
        tags = xml.parse_tagging(await self.small_body(call))
        t = await self.coord.put_object_tagging(call.bucket, call.key, version, tags)
        return empty(headers=hdr.version_header(t.version_id, t.bucket_versioned))

    async def delete_object_tagging(self, call: Call) -> web.StreamResponse:
        version = _version_id(call)
        await self.allow(call, "DeleteObjectTagging", version=version)
        t = await self.coord.put_object_tagging(call.bucket, call.key, version, {})
        return empty(204, hdr.version_header(t.version_id, t.bucket_versioned))

    async def get_object_acl(self, call: Call) -> web.StreamResponse:
        version = _version_id(call)
        await self.allow(call, "GetObjectAcl", version=version)
        a = await self.coord.get_object_acl(call.bucket, call.key, version)
        # The bucket's owner owns every object in it (S3's BucketOwnerEnforced),
        # as every other Owner this door answers.
        owner = await self.guard.bucket_owner(call.bucket)
        return answer(
            xml.acl(owner, a.acl), headers=hdr.version_header(a.version_id, a.bucket_versioned)
        )

    async def put_object_acl(self, call: Call) -> web.StreamResponse:
        version = _version_id(call)
        await self.allow(call, "PutObjectAcl", version=version)
        canned = call.headers.get("x-amz-acl")
        granted = hdr.grant_headers(call.headers)
        if granted:
            raise errors.NotImplemented(
                f"grant headers ({', '.join(granted)}) are not supported: give a canned ACL "
                f"as x-amz-acl ({', '.join(xml.DISTINCT_CANNED)}), or the AccessControlPolicy "
                "one makes"
            )
        body = await self.small_body(call, optional=canned is not None)
        if canned is not None and body.strip():
            raise errors.InvalidRequest(
                "give either the x-amz-acl header or an AccessControlPolicy document, not both"
            )
        if canned is None:
            # A tool's read-modify-write (s3cmd setacl --acl-public): the
            # policy GetObjectAcl answered, a grant added or taken away.
            grants = xml.parse_acl(body)
            canned = xml.canned_of(grants, await self.guard.bucket_owner(call.bucket))
            if canned is None:
                named = ", ".join(str(g) for g in grants) or "no grant at all"
                raise errors.NotImplemented(
                    f"an object's ACL is one of the canned ACLs "
                    f"({', '.join(xml.DISTINCT_CANNED)}), as x-amz-acl or as the "
                    f"AccessControlPolicy it makes; this one grants {named}"
                )
        a = await self.coord.put_object_acl(call.bucket, call.key, version, canned)
        return empty(headers=hdr.version_header(a.version_id, a.bucket_versioned))


#: Conditions of a DeleteObject S3 takes in directory buckets only: refused
#: here, not ignored (If-Match is taken).
UNOFFERED_DELETE_CONDITIONS = ("x-amz-if-match-last-modified-time", "x-amz-if-match-size")


def _version_id(call: Call) -> str:
    """The ``versionId`` the request names ("" for none); an empty one is
    refused, as S3 does (taken for none, a DELETE would remove the current
    object or make a delete marker)."""
    version = call.query.get("versionId")
    if version is None:
        return ""
    if not version:
        raise InvalidArgument("Version id cannot be the empty string")
    return version
