"""The S3 multipart upload operations: create, upload part (and part copy),
complete, abort, list parts.
"""

from __future__ import annotations

from aiohttp import web

from node.objects import marker_source
from node.s3 import headers as hdr
from node.s3 import xml
from node.s3.call import Base, Call, answer, empty
from tristore import errors, validation
from tristore.errors import (
    InvalidArgument,
)


class MultipartHandlers(Base):
    """One method per multipart S3 operation."""

    async def create_multipart_upload(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "CreateMultipartUpload")
        h = call.headers
        header = hdr.put_header(call.bucket, call.key, h, checksum=hdr.asked_checksum(h))
        u = await self.multipart.create(header)
        out = {}
        if u.checksum_algorithm:
            out["x-amz-checksum-algorithm"] = u.checksum_algorithm.upper()
            out["x-amz-checksum-type"] = u.checksum_type
        return answer(xml.initiate_multipart(u), headers=out)

    async def upload_part(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "UploadPart")
        if "x-amz-copy-source" in call.headers:
            return await self.upload_part_copy(call)
        number = call.int_param("partNumber", 0)
        stream, size, checksum = self.body(call)
        part = await self.multipart.upload_part(
            call.bucket,
            call.key,
            call.query["uploadId"],
            number,
            stream,
            size,
            hdr.md5_hex(call.headers.get("content-md5")),
            hdr.customer_key(call.headers),
            checksum,
        )
        out = {"ETag": f'"{part.etag}"'}
        out |= hdr.checksum_headers(part.checksum_algorithm, part.checksum)
        return empty(headers=out)

    async def upload_part_copy(self, call: Call) -> web.StreamResponse:
        """UploadPart with x-amz-copy-source: a GetObject of the source (or of
        x-amz-copy-source-range of it) streamed into an UploadPart."""
        h = call.headers
        src_bucket, src_key, src_version = hdr.copy_source(h["x-amz-copy-source"])
        await self.guard.authorize(
            call.caller.user, "GetObject", src_bucket, src_key, src_version, call.context
        )
        rng = None
        if "x-amz-copy-source-range" in h:
            rng = hdr.byte_range(h["x-amz-copy-source-range"])
            if rng is None or rng.start < 0 or rng.end < 0:
                raise InvalidArgument(
                    "x-amz-copy-source-range must be bytes=FIRST-LAST, "
                    f"not {h['x-amz-copy-source-range']!r}"
                )
        try:
            result = await self.coord.get_object(
                src_bucket,
                src_key,
                rng,
                src_version,
                hdr.conditions(h, "x-amz-copy-source-"),
                hdr.customer_key(h, "x-amz-copy-source-server-side-encryption"),
                copy_range=True,
            )
        except errors.NotModified as e:  # a copy source answers every failed condition so
            raise errors.PreconditionFailed(e.message) from None
        except errors.MethodNotAllowed:
            raise marker_source(src_bucket, src_key, src_version) from None
        try:
            part = await self.multipart.upload_part(
                call.bucket,
                call.key,
                call.query["uploadId"],
                call.int_param("partNumber", 0),
                result.body,
                result.last - result.first + 1 if result.info.size else 0,
                "",
                hdr.customer_key(h),
            )
        finally:
            aclose = getattr(result.body, "aclose", None)
            if aclose is not None:
                await aclose()
        info = result.info
        out = hdr.version_header(
            info.version_id, info.bucket_versioned, "x-amz-copy-source-version-id"
        )
        return answer(xml.copy_part_result(part), headers=out)

    async def complete_multipart_upload(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "CompleteMultipartUpload")
        parts = xml.parse_complete(await self.small_body(call, checksummed=False))
        info = await self.multipart.complete(
            call.bucket,
            call.key,
            call.query["uploadId"],
            parts,
            hdr.customer_key(call.headers),
            call.headers.get("if-none-match", ""),
            call.headers.get("if-match", ""),
        )
        out = hdr.put_answer(info)
        out.pop("ETag")
        return answer(xml.complete_multipart(info, call.object_url(call.key)), headers=out)

    async def abort_multipart_upload(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "AbortMultipartUpload")
        await self.multipart.abort(call.bucket, call.key, call.query["uploadId"])
        return empty(204)

    async def list_parts(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "ListParts")
        marker = call.int_param("part-number-marker", 0)
        max_parts = validation.cap_max_keys(call.int_param("max-parts", 1000), "max-parts")
        upload_id = call.query["uploadId"]
        page = await self.multipart.list_parts(call.bucket, call.key, upload_id, marker, max_parts)
        owner = await self.guard.bucket_owner(call.bucket)
        doc = xml.list_parts(page, call.bucket, call.key, upload_id, marker, max_parts, owner)
        return answer(doc)
