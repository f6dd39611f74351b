"""One S3 request being handled (:class:`Call`), and what every operation's
handler shares (:class:`Base`): authorization through the guard, request
bodies streamed (or, for small documents, read whole and checked), answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from node.coordinator import Coordinator
from node.guard import Guard
from node.metrics import S3_BYTES
from node.multipart import Multipart
from node.s3 import body as bodies
from node.s3 import headers as hdr
from node.s3 import xml
from node.s3.auth import Caller
from tristore import checksums, errors, sigv4
from tristore.errors import (
    BadDigest,
    IncompleteBody,
    InvalidArgument,
    InvalidRequest,
    MissingContentLength,
    XAmzContentSHA256Mismatch,
)

#: Pieces a PUT body is read in (the coordinator re-chunks to its own size).
READ_PIECE = 256 * 1024
#: x-amz-checksum-* headers that name no checksum value.
_NOT_CHECKSUMS = frozenset(
    {"x-amz-checksum-type", "x-amz-checksum-algorithm", "x-amz-checksum-mode"}
)


@dataclass
class Call:
    """One S3 request being handled."""

    request: web.Request
    request_id: str
    bucket: str
    key: str
    #: Query parameters (first value of each).
    query: dict[str, str]
    #: Headers by lower-case name.
    headers: dict[str, str]
    caller: Caller
    #: Policy condition keys (aws:SourceIp, aws:SecureTransport).
    context: dict[str, str] = field(default_factory=dict)
    #: Set once a streamed answer's headers went out (an error can no longer be XML).
    prepared: bool = False
    #: Addressed virtual-host style (the bucket in the Host, the path the key).
    virtual: bool = False

    def int_param(self, name: str, default: int) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise InvalidArgument(f"{name} must be an integer, not {raw!r}") from None

    @property
    def owner(self) -> str:
        return self.caller.user.name if self.caller.user is not None else ""

    def object_url(self, key: str) -> str:
        """The URL of ``key`` in this call's bucket, addressed as the call was
        (an answer's ``Location``), the key percent-encoded."""
        path = quote(key, safe="/~")
        if not self.virtual:
            path = f"{self.bucket}/{path}"
        return f"{self.request.scheme}://{self.request.host}/{path}"


def answer(doc: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An answer carrying an S3 XML document."""
    return web.Response(body=doc, status=status, content_type=xml.CONTENT_TYPE, headers=headers)


def empty(status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An answer of headers only, ``Content-Length: 0`` said outright, as S3
    says it: aiohttp leaves it out of an answer to HEAD (whose length would
    be the GET's), and a client that cannot tell where the answer ends closes
    the connection instead of keeping it alive (aiohttp's does). A 204 or 304
    carries none (RFC 9110; aiohttp takes it out)."""
    return web.Response(status=status, headers={"Content-Length": "0", **(headers or {})})


class Base:
    """The state every handler uses: the Coordinator (as the gRPC servicer
    holds it), the guard, multipart uploads and the region it answers for."""

    def __init__(self, coord: Coordinator, guard: Guard, region: str) -> None:
        self.coord = coord
        self.guard = guard
        self.multipart = Multipart(coord, coord.cfg.node)
        self.region = region

    async def allow(
        self,
        call: Call,
        operation: str,
        key: str | None = None,
        version: str = "",
        prefix: str = "",
        source: tuple[str, str, str] | None = None,
    ) -> None:
        await self.guard.authorize(
            call.caller.user,
            operation,
            call.bucket,
            call.key if key is None else key,
            version,
            call.context,
            prefix=prefix,
            source=source,
        )

    # -- bodies ------------------------------------------------------------------

    def body(self, call: Call) -> tuple[AsyncIterator[bytes], int, bodies.Checksum | None]:
        """A PUT's body as it streams in, its declared size and flexible
        checksum (checked when the body ends)."""
        h = call.headers
        mode = call.caller.payload or h.get("x-amz-content-sha256", "")
        trailer = h.get("x-amz-trailer", "")
        checksum = declared_checksum(h, trailer)
        content = call.request.content
        stream: AsyncIterator[bytes]
        if mode.startswith("STREAMING-"):
            if mode not in (
                sigv4.STREAMING_SIGNED,
                sigv4.STREAMING_SIGNED_TRAILER,
                sigv4.STREAMING_UNSIGNED_TRAILER,
            ):
                raise errors.NotImplemented(f"x-amz-content-sha256 {mode} is not supported")
            signed = mode != sigv4.STREAMING_UNSIGNED_TRAILER
            if signed and call.caller.chunks is None:
                raise InvalidRequest(f"{mode} needs a signed request")
            if checksum is not None and not trailer and mode != sigv4.STREAMING_SIGNED:
                raise InvalidRequest(f"{mode} needs an x-amz-trailer header")
            stream = bodies.aws_chunked(
                content,
                call.caller.chunks if signed else None,
                checksum if trailer else None,
                trailer_signed=mode == sigv4.STREAMING_SIGNED_TRAILER,
            )
            declared = h.get("x-amz-decoded-content-length")
            if declared is None:
                raise MissingContentLength("aws-chunked needs x-amz-decoded-content-length")
            try:
                size = int(declared)
            except ValueError:
                raise InvalidArgument("x-amz-decoded-content-length is not a number") from None
        else:
            if trailer:
                raise InvalidRequest("x-amz-trailer needs an aws-chunked body")
            length = call.request.content_length
            if length is None and not _chunked(h):
                # No body framing at all: HTTP reads that as an empty body, S3
                # as a client that forgot its length (curl -X PUT without
                # data), not as an empty object. A chunked body (of unknown
                # length, streamed) is taken.
                raise MissingContentLength("You must provide the Content-Length HTTP header.")
            stream = content.iter_chunked(READ_PIECE)
            size = length if length is not None else -1
        sha = call.caller.payload_sha256 or (
            mode if len(mode) == 64 and not mode.startswith("STREAMING") else ""
        )
        return _counted(bodies.checked(_reading(stream), checksum, sha)), size, checksum

    async def small_body(
        self,
        call: Call,
        limit: int = xml.MAX_REQUEST_XML,
        optional: bool = False,
        integrity: bool = False,
        checksummed: bool = True,
    ) -> bytes:
        """A request document (XML, a policy), read whole: it is small, and
        checked against its Content-MD5, its flexible checksum
        (``x-amz-checksum-*``) and signed SHA-256. Without a Content-Length
        (and not chunked) the request carries no document by HTTP's framing:
        411 MissingContentLength, as S3 answers, unless the document is
        ``optional`` (CreateBucket's). With ``integrity`` (DeleteObjects), a
        request without a Content-MD5 or a flexible checksum is refused, as
        S3 refuses it: a damaged list of keys would delete the wrong ones.
        Not ``checksummed`` (CompleteMultipartUpload's), an
        ``x-amz-checksum-*`` header is the object's, not the document's."""
        h = call.headers
        checksum = None
        if checksummed:
            if h.get("x-amz-trailer"):
                raise InvalidRequest("x-amz-trailer needs an aws-chunked body")
            checksum = declared_checksum(h)
        if integrity and checksum is None and not h.get("content-md5"):
            raise InvalidRequest(
                "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"
            )
        length = call.request.content_length
        if length is None and not optional and not _chunked(h):
            raise MissingContentLength("You must provide the Content-Length HTTP header.")
        if length is not None and length > limit:
            raise InvalidArgument(f"the request body is over {limit} bytes")
        data = b""
        async for piece in call.request.content.iter_chunked(READ_PIECE):
            data += piece
            if len(data) > limit:
                raise InvalidArgument(f"the request body is over {limit} bytes")
        md5 = hdr.md5_hex(h.get("content-md5"))
        if md5 and hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
            raise BadDigest("the Content-MD5 you specified did not match what we received")
        if checksum is not None:
            hasher = checksum.hasher()
            if hasher is not None:
                hasher.update(data)
                checksum.finish(hasher)
        sha = call.caller.payload_sha256
        if sha and hashlib.sha256(data).hexdigest() != sha.lower():
            raise XAmzContentSHA256Mismatch(
                "the body's SHA-256 is not the x-amz-content-sha256 the request was signed with"
            )
        return data


def _chunked(h: Mapping[str, str]) -> bool:
    """Whether a request's body is framed as HTTP/1.1 chunks (of a length not
    known up front)."""
    return "chunked" in h.get("transfer-encoding", "").lower()


def declared_checksum(h: Mapping[str, str], trailer: str = "") -> bodies.Checksum | None:
    """The flexible checksum a request declares: named by x-amz-trailer (its
    value comes at the end of the body), or one x-amz-checksum-* header. An
    x-amz-sdk-checksum-algorithm beside it must name the same algorithm, and
    a value must be one of that algorithm (else InvalidRequest, as S3)."""
    sdk = h.get("x-amz-sdk-checksum-algorithm", "").strip().lower()
    if trailer:
        checksum = bodies.Checksum(bodies.checksum_name(trailer.strip()))
    else:
        named = [n for n in h if n.startswith(bodies.CHECKSUM_PREFIX) and n not in _NOT_CHECKSUMS]
        if len(named) > 1:
            raise InvalidRequest("a request may carry only one x-amz-checksum-* header")
        if not named:
            return None
        value = h[named[0]].strip()
        if not value:
            raise InvalidRequest(f"{named[0]} is empty: give the body's checksum, or leave it out")
        checksum = bodies.Checksum(bodies.checksum_name(named[0]), value)
        if not checksums.well_formed(checksum.name, value):
            raise InvalidRequest(
                f"Value for {named[0]} header is invalid: not the base64 of a "
                f"{checksums.DIGEST_SIZES[checksum.name]}-byte {checksum.name.upper()}"
            )
    if sdk and sdk != checksum.name:
        raise InvalidRequest(
            f"Value for x-amz-sdk-checksum-algorithm header is invalid: {sdk.upper()}, "
            f"but the request carries a {checksum.name.upper()} checksum"
        )
    return checksum


async def _reading(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A request body that ends early (the client went away, or sent less
    than its Content-Length) is IncompleteBody: the PUT it feeds stores nothing."""
    try:
        async for piece in body:
            yield piece
    except (ConnectionError, BadHttpMessage) as e:
        raise IncompleteBody(f"the request body ended early ({type(e).__name__})") from None
    except ValueError as e:  # aiohttp's readline: a line over its limit
        raise InvalidArgument(f"the request body is malformed: {e}") from None


async def _counted(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    received = S3_BYTES.labels("received")
    async for piece in body:
        received.inc(len(piece))
        yield piece
