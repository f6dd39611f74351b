"""POST Object: a browser form upload (``POST /BUCKET``, multipart/form-data),
what boto3's ``generate_presigned_post`` and minio's ``presigned_post_policy``
make for a page to use.

The form's fields come first (``key``, ``policy``, the signature's fields,
``Content-Type``, ``x-amz-meta-*``, ``success_action_status`` ...), read whole
(they are small: at most :data:`FIELDS_MAX` bytes together); its ``file`` comes
last and is streamed, never held whole. When the file's part begins, before
any of its bytes is read, the form is authenticated (node/s3/auth.py: the
signature of its policy), checked against its policy (node/s3/post_policy.py)
and authorized as a PutObject of its key; then the file goes through the same
PutObject as a PUT's body (the Coordinator's: three AZs, versioning,
encryption, checksums), its size checked against the policy's
content-length-range as it streams, so that a file out of range stores nothing.
Fields after the file are ignored, as S3 ignores them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from node.guard import enter
from node.metrics import S3_BYTES
from node.s3 import headers as hdr
from node.s3 import post_policy, xml
from node.s3.auth import Caller, authenticate_form
from node.s3.call import READ_PIECE, Base, Call, answer, declared_checksum, empty
from tristore import sigv4, validation
from tristore.errors import (
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    IncorrectNumberOfFilesInPostRequest,
    InvalidArgument,
    MalformedPOSTRequest,
    MaxPostPreDataLengthExceeded,
    PreconditionFailed,
)

#: The fields before the file, names and values together, at most this many
#: bytes (S3's limit: 20 KB).
FIELDS_MAX = 20 * 1024
#: Fields stored with the object as the PUT header of the same name.
_AS_HEADERS = frozenset(
    {
        "content-type", "cache-control", "content-disposition", "content-encoding",
        "content-language", "expires", "x-amz-storage-class", "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-customer-algorithm",
        "x-amz-server-side-encryption-customer-key",
        "x-amz-server-side-encryption-customer-key-md5",
    }
)  # fmt: skip
#: Field prefixes stored as headers: metadata, a checksum of the file, and
#: what PutObject refuses as not offered (hdr.UNOFFERED), refused the same.
_AS_HEADER_PREFIXES = (hdr.META_PREFIX, "x-amz-checksum-", *hdr.UNOFFERED)
_MALFORMED = "The body of your POST request is not well-formed multipart/form-data."


@dataclass
class Form:
    """A POST Object form read up to its file."""

    #: The fields before the file, by lower-case name.
    fields: dict[str, str]
    #: The file's part, its bytes not read yet.
    file: BodyPartReader
    #: The file name the browser gave it ("" if none).
    filename: str


async def read_form(request: web.Request) -> Form:
    """The fields of a POST Object form, up to the part of its file."""
    mime = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if mime != "multipart/form-data":
        # S3's status and words (412) for a POST to a bucket of another kind.
        raise PreconditionFailed(
            "At least one of the pre-conditions you specified did not hold: "
            "Bucket POST must be of the enclosure-type multipart/form-data"
        )
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise MalformedPOSTRequest(f"{_MALFORMED} (no boundary)") from None
    fields: dict[str, str] = {}
    room = FIELDS_MAX
    while True:
        try:
            part = await reader.next()
        except (ValueError, BadHttpMessage) as e:
            raise MalformedPOSTRequest(f"{_MALFORMED} ({e})") from None
        except ConnectionError:
            raise IncompleteBody("the form ended early") from None
        if part is None:
            raise IncorrectNumberOfFilesInPostRequest(
                "POST requires exactly one file upload per request."
            )
        if not isinstance(part, BodyPartReader) or not part.name:
            raise MalformedPOSTRequest(f"{_MALFORMED} (a part without a field name)")
        name = part.name.lower()
        if name == "file":
            return Form(fields, part, part.filename or "")
        room -= len(name)
        value = await _field(part, room)
        room -= len(value)
        if name in fields:
            raise InvalidArgument(f"the form gives the field {name!r} more than once")
        try:
            fields[name] = value.decode()
        except UnicodeDecodeError:
            raise InvalidArgument(f"the form field {name!r} is not UTF-8 text") from None


async def _field(part: BodyPartReader, room: int) -> bytes:
    data = b""
    while not part.at_eof():
        data += await _chunk(part, 8192)
        if len(data) > room:
            raise MaxPostPreDataLengthExceeded(
                "Your POST request fields preceding the upload file were too large "
                f"(at most {FIELDS_MAX} bytes together)."
            )
    return data


async def _chunk(part: BodyPartReader, size: int) -> bytes:
    try:
        return await part.read_chunk(size)
    except (ConnectionError, BadHttpMessage) as e:
        raise IncompleteBody(f"the form ended early ({type(e).__name__})") from None
    except ValueError as e:  # the closing boundary never came, or a malformed part
        raise MalformedPOSTRequest(f"{_MALFORMED} ({e})") from None


async def file_body(
    part: BodyPartReader, length_range: tuple[int, int] | None
) -> AsyncIterator[bytes]:
    """The file's bytes as they arrive; its size checked against the policy's
    content-length-range, a file too large as soon as it is (EntityTooLarge),
    one too small at its end (EntityTooSmall): either way before the PUT it
    feeds commits, so nothing is stored."""
    low, high = length_range or (0, -1)
    received = S3_BYTES.labels("received")
    size = 0
    while not part.at_eof():
        piece = await _chunk(part, READ_PIECE)
        size += len(piece)
        if high >= 0 and size > high:
            raise EntityTooLarge(
                f"Your proposed upload exceeds the maximum allowed size: the policy's "
                f"content-length-range allows at most {high} bytes; nothing was stored"
            )
        if piece:
            received.inc(len(piece))
            yield piece
    if size < low:
        raise EntityTooSmall(
            f"Your proposed upload is smaller than the minimum allowed size: the policy's "
            f"content-length-range asks for at least {low} bytes, the file has {size}; "
            "nothing was stored"
        )


def put_headers(fields: dict[str, str]) -> dict[str, str]:
    """The form's fields that a PUT would send as headers (the canned ``acl``
    as x-amz-acl), by lower-case name."""
    out = {
        name: value
        for name, value in fields.items()
        if name in _AS_HEADERS or name.startswith(_AS_HEADER_PREFIXES)
    }
    if "acl" in fields:
        out["x-amz-acl"] = fields["acl"]
    return out


class PostHandlers(Base):
    """POST Object."""

    async def post_object(self, call: Call) -> web.StreamResponse:
        form = await read_form(call.request)
        fields = form.fields
        # The form's signature says who uploads (an Authorization header, which
        # a browser's form never has, does not).
        signer = await authenticate_form(self.guard, fields)
        enter(signer)
        call.caller = Caller(signer, sigv4.UNSIGNED_PAYLOAD)
        if "key" not in fields:
            raise InvalidArgument(
                "Bucket POST must contain a field named 'key'.  If it is specified, "
                "please check the order of the fields."
            )
        key = fields["key"].replace("${filename}", form.filename)
        validation.check_key(key)
        fields["key"] = key  # the policy is checked against the key to be written
        if fields.get("bucket", call.bucket) != call.bucket:
            raise InvalidArgument(
                f"the form's bucket field names {fields['bucket']!r}, the request {call.bucket!r}"
            )
        length_range = None
        if "policy" in fields:
            policy = post_policy.parse(fields["policy"])
            post_policy.check(policy, fields, call.bucket)
            length_range = policy.length_range
        await self.allow(call, "PostObject", key=key)
        h = put_headers(fields)
        header = hdr.put_header(call.bucket, key, h, checksum=declared_checksum(h))
        if header.checksum is None:
            header = replace(header, checksum=hdr.asked_checksum(h))
        if "tagging" in fields:
            header = replace(header, tags=xml.parse_tagging(fields["tagging"].encode()))
        info = await self.coord.put_object(header, file_body(form.file, length_range))
        return _answer(call, fields, key, hdr.put_answer(info), info.etag)


def _answer(
    call: Call, fields: dict[str, str], key: str, out: dict[str, str], etag: str
) -> web.Response:
    """S3's answers: a 303 to ``success_action_redirect`` (with the bucket,
    key and ETag in its query), else ``success_action_status`` 200, 201 (with
    a PostResponse document) or 204 (the default, and for any other value)."""
    location = call.object_url(key)
    redirect = fields.get("success_action_redirect") or fields.get("redirect", "")
    if redirect.startswith(("http://", "https://")):
        query = urlencode({"bucket": call.bucket, "key": key, "etag": xml.quote_etag(etag)})
        return empty(
            303, {**out, "Location": f"{redirect}{'&' if '?' in redirect else '?'}{query}"}
        )
    out["Location"] = location
    status = fields.get("success_action_status", "")
    if status == "201":
        return answer(xml.post_response(location, call.bucket, key, etag), 201, out)
    return empty(200 if status == "200" else 204, out)
