"""HTTP headers of the S3 API to and from the domain's dataclasses: a PUT's
PutHeader, GET's conditions and range, an object's headers in an answer."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.header
import email.utils
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from node.objects import PutHeader
from node.s3.auth import decode
from node.s3.body import CHECKSUM_PREFIX
from tristore import checksums, errors, sse, validation
from tristore.checksums import Checksum
from tristore.errors import InvalidArgument, InvalidDigest, InvalidRequest
from tristore.model import NULL_VERSION, ByteRange, Conditions, ObjectInfo, ms_to_datetime
from tristore.validation import STORED_HEADERS

META_PREFIX = "x-amz-meta-"
#: GET's response-* query parameters and the header each one sets.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def http_date(t: dt.datetime) -> str:
    """RFC 7231's date form (Last-Modified)."""
    return email.utils.format_datetime(t.astimezone(dt.UTC), usegmt=True)


def parse_http_date(value: str | None) -> dt.datetime | None:
    """An HTTP date; None when absent or not a date (HTTP ignores such a header)."""
    if not value:
        return None
    try:
        t = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def md5_hex(content_md5: str | None) -> str:
    """Content-MD5 (base64 of 16 bytes) as the hex digest the domain compares."""
    if not content_md5:
        return ""
    try:
        raw = base64.b64decode(content_md5, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise InvalidDigest(f"the Content-MD5 you specified is not valid: {content_md5!r}")
    return raw.hex()


def _metadata(h: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in h.items():
        if name.startswith(META_PREFIX):
            out[name[len(META_PREFIX) :]] = _decode_word(value)
    return out


def _decode_word(value: str) -> str:
    """A metadata value that a client sent as an RFC 2047 encoded word."""
    if value.startswith("=?") and value.endswith("?="):
        try:
            return str(email.header.make_header(email.header.decode_header(value)))
        except (ValueError, LookupError, binascii.Error):
            return value
    return value


def tags(value: str | None) -> dict[str, str]:
    """x-amz-tagging: a URL-encoded query string of tags (a key given twice:
    InvalidTag, as S3)."""
    if not value:
        return {}
    return validation.tags_from_pairs(
        parse_qsl(value, keep_blank_values=True, strict_parsing=False)
    )


def customer_key(
    h: Mapping[str, str], prefix: str = "x-amz-server-side-encryption"
) -> sse.CustomerKey | None:
    """SSE-C's three headers (``prefix``: of the copy source, for a copy)."""
    algorithm = h.get(f"{prefix}-customer-algorithm", "")
    key_b64 = h.get(f"{prefix}-customer-key", "")
    try:
        key = base64.b64decode(key_b64, validate=True) if key_b64 else b""
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{prefix}-customer-key is not base64") from None
    return sse.customer_key(algorithm, key, h.get(f"{prefix}-customer-key-md5", ""))


#: Header prefixes of what tristore does not offer on a write (explicit ACL
#: grants, object lock, website redirects): refused rather than ignored.
UNOFFERED = ("x-amz-grant-", "x-amz-object-lock-", "x-amz-website-redirect-location")
#: The name each stored header (validation.STORED_HEADERS) is answered under.
STORED_NAMES = {n: "-".join(p.capitalize() for p in n.split("-")) for n in STORED_HEADERS}


def _refuse_unoffered(h: Mapping[str, str]) -> None:
    named = sorted(n for n in h if n.startswith(UNOFFERED))
    if named:
        raise errors.NotImplemented(
            f"{', '.join(named)} on a write is not supported; leave the header out"
        )


def stored_headers(h: Mapping[str, str]) -> dict[str, str]:
    """Cache-Control, Content-Disposition, Content-Encoding, Content-Language
    and Expires of a write, to store with the object. ``aws-chunked`` in
    Content-Encoding says how this request's body is framed, not what the
    object is: it is taken out, as S3 does."""
    out = {n: h[n] for n in STORED_HEADERS if n in h}
    if "content-encoding" in out:
        encodings = [e.strip() for e in out["content-encoding"].split(",")]
        out["content-encoding"] = ", ".join(e for e in encodings if e and e != "aws-chunked")
    return validation.normalize_headers(out)


def put_header(
    bucket: str,
    key: str,
    h: Mapping[str, str],
    size: int = -1,
    checksum: Checksum | None = None,
) -> PutHeader:
    """A PUT's (or CreateMultipartUpload's, or a copy's target) PutHeader.
    ``checksum``: the body's (:func:`asked_checksum` for a copy or an upload)."""
    _refuse_unoffered(h)
    return PutHeader(
        bucket,
        key,
        h.get("content-type", ""),
        _metadata(h),
        size,
        md5_hex(h.get("content-md5")),
        tags=tags(h.get("x-amz-tagging")),
        acl=h.get("x-amz-acl", ""),
        storage_class=h.get("x-amz-storage-class", ""),
        sse=h.get("x-amz-server-side-encryption", ""),
        if_none_match=h.get("if-none-match", ""),
        if_match=h.get("if-match", ""),
        sse_customer=customer_key(h),
        headers=stored_headers(h),
        checksum=checksum,
        checksum_type=h.get("x-amz-checksum-type", ""),
    )


#: The attempt number an AWS SDK sends with each try of a call
#: (``amz-sdk-request: attempt=2; max=5``).
_SDK_ATTEMPT = re.compile(r"(?:^|;)\s*attempt=(\d+)")


def sdk_attempt(h: Mapping[str, str]) -> tuple[str, bool]:
    """(the call's id, whether this try is a retry) from what AWS SDKs send
    with every try of one call: ``amz-sdk-invocation-id`` (the same in each)
    and ``amz-sdk-request`` (its attempt number). A PUT retried after a try
    whose answer was lost then finds that try's version instead of failing
    its own condition (node.objects.PutHeader.resend), as the gRPC SDK's
    request id does. ("", False) when the headers are absent or not of that form."""
    rid = h.get("amz-sdk-invocation-id", "")
    try:
        validation.check_request_id(rid)
    except InvalidArgument:
        return "", False
    m = _SDK_ATTEMPT.search(h.get("amz-sdk-request", ""))
    return rid, bool(rid) and m is not None and int(m.group(1)) > 1


def asked_checksum(h: Mapping[str, str]) -> Checksum | None:
    """The checksum algorithm x-amz-checksum-algorithm asks a copy, an upload
    or a PUT that declares no value to compute (None: not asked)."""
    name = h.get("x-amz-checksum-algorithm", "")
    return Checksum(checksums.check_algorithm(name)) if name else None


def conditions(h: Mapping[str, str], prefix: str = "") -> Conditions | None:
    """GET/HEAD's preconditions (``prefix`` ``x-amz-copy-source-`` for a copy's source)."""
    c = Conditions(
        if_match=h.get(f"{prefix}if-match", ""),
        if_none_match=h.get(f"{prefix}if-none-match", ""),
        if_modified_since=parse_http_date(h.get(f"{prefix}if-modified-since")),
        if_unmodified_since=parse_http_date(h.get(f"{prefix}if-unmodified-since")),
    )
    return c if c != Conditions() else None


def byte_range(value: str | None) -> ByteRange | None:
    """A Range header: ``bytes=A-B``, ``bytes=A-``, ``bytes=-N``. A header that
    is not one single byte range is ignored, as S3 does (the whole object).
    ``bytes=-0`` is not ignored: S3 refuses it (416) but of an empty object."""
    if not value:
        return None
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            n = int(last)
            if n == 0:
                return ByteRange(0, empty_suffix=True)
            return ByteRange(-n) if n > 0 else None
        start = int(first)
        end = int(last) if last else -1
    except ValueError:
        return None
    if start < 0 or (end >= 0 and end < start):
        return None
    return ByteRange(start, end)


def _header_value(v: str) -> str:
    """A value for an HTTP header: non-ASCII text as an RFC 2047 encoded word (S3's way)."""
    if v.isascii() and "\n" not in v and "\r" not in v:
        return v
    return "=?UTF-8?B?" + base64.b64encode(v.encode()).decode() + "?="


def version_header(
    version_id: str, bucket_versioned: bool = True, name: str = "x-amz-version-id"
) -> dict[str, str]:
    """The header naming a version (``name``: x-amz-version-id, or a copy's
    x-amz-copy-source-version-id). In a bucket that never had versioning S3
    sends none, not even ``null``; once the bucket has been versioned (now
    Enabled or Suspended) it names the ``null`` version too."""
    if not version_id or (version_id == NULL_VERSION and not bucket_versioned):
        return {}
    return {name: version_id}


def object_headers(info: ObjectInfo) -> dict[str, str]:
    """What GET and HEAD answer about an object (besides length and range)."""
    out = {
        "ETag": f'"{info.etag}"',
        "Last-Modified": http_date(info.last_modified),
        "Content-Type": info.content_type or "binary/octet-stream",
        "Accept-Ranges": "bytes",
    }
    out |= version_header(info.version_id, info.bucket_versioned)
    for k, v in info.metadata.items():
        out[META_PREFIX + k] = _header_value(v)
    if info.sse:
        out["x-amz-server-side-encryption"] = info.sse
    if info.sse_customer_algorithm:
        out["x-amz-server-side-encryption-customer-algorithm"] = info.sse_customer_algorithm
        out["x-amz-server-side-encryption-customer-key-MD5"] = info.sse_customer_key_md5
    if info.storage_class and info.storage_class != "STANDARD":
        out["x-amz-storage-class"] = info.storage_class
    if info.tag_count:
        out["x-amz-tagging-count"] = str(info.tag_count)
    if info.replication_status:
        out["x-amz-replication-status"] = info.replication_status
    for name, value in info.headers.items():
        out[STORED_NAMES.get(name, name)] = value
    return out


def parts_count(info: ObjectInfo) -> dict[str, str]:
    """x-amz-mp-parts-count of a GET or HEAD by partNumber: only for an object
    uploaded in parts (as S3; one completed before part sizes were kept is
    answered as one part, without it)."""
    return {"x-amz-mp-parts-count": str(len(info.part_sizes))} if info.part_sizes else {}


def error_headers(err: errors.TristoreError) -> dict[str, str]:
    """What an error answer says besides its XML: the delete marker it is
    about (x-amz-delete-marker and its x-amz-version-id; a 405 for a marker
    asked for by version id, its Last-Modified too), and an unsatisfiable
    range's object size (``Content-Range: bytes */SIZE``), as S3's."""
    if isinstance(err, errors.InvalidRange) and err.object_size is not None:
        return {"Content-Range": f"bytes */{err.object_size}"}
    m = err.delete_marker
    if m is None:
        return {}
    out = {"x-amz-delete-marker": "true", "x-amz-version-id": m.version_id}
    if isinstance(err, errors.MethodNotAllowed):
        out["Last-Modified"] = http_date(ms_to_datetime(m.last_modified_ms))
    return out


def checksum_headers(algorithm: str, value: str, kind: str = "") -> dict[str, str]:
    """``x-amz-checksum-<algorithm>`` (and ``x-amz-checksum-type``): S3's
    flexible checksum of an object or a part; none when it has none."""
    if not algorithm or not value:
        return {}
    out = {CHECKSUM_PREFIX + algorithm: value}
    if kind:
        out["x-amz-checksum-type"] = kind
    return out


def checksum_mode(h: Mapping[str, str]) -> bool:
    """Whether a GET or HEAD asks for the stored checksum (x-amz-checksum-mode)."""
    return h.get("x-amz-checksum-mode", "").strip().upper() == "ENABLED"


def put_answer(info: ObjectInfo) -> dict[str, str]:
    """What PUT (and Complete) answer: the ETag, version, checksum and encryption."""
    out = {"ETag": f'"{info.etag}"'}
    out |= version_header(info.version_id, info.bucket_versioned)
    out |= checksum_headers(info.checksum_algorithm, info.checksum, info.checksum_type)
    if info.sse:
        out["x-amz-server-side-encryption"] = info.sse
    if info.sse_customer_algorithm:
        out["x-amz-server-side-encryption-customer-algorithm"] = info.sse_customer_algorithm
        out["x-amz-server-side-encryption-customer-key-MD5"] = info.sse_customer_key_md5
    return out


def copy_source(value: str) -> tuple[str, str, str]:
    """x-amz-copy-source: ``[/]bucket/key[?versionId=V]``, URL-encoded."""
    path, _, query = value.partition("?")
    path = decode(path, "x-amz-copy-source").lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise InvalidArgument(f"x-amz-copy-source {value!r} is not BUCKET/KEY")
    version = ""
    for name, v in parse_qsl(query, keep_blank_values=True):
        if name == "versionId":
            if not v:  # as on a request's own versionId (node/s3/objects.py)
                raise InvalidArgument("x-amz-copy-source: version id cannot be the empty string")
            version = v
        else:
            raise InvalidRequest(f"x-amz-copy-source takes only versionId, not {name!r}")
    return bucket, key, version


#: Headers that grant an ACL's permissions one by one (x-amz-acl's canned
#: ACLs aside, not supported: node/s3/buckets.py, node/s3/objects.py).
GRANT_HEADERS = (
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
)


def grant_headers(h: Mapping[str, str]) -> list[str]:
    """The :data:`GRANT_HEADERS` a request carries."""
    return [name for name in GRANT_HEADERS if name in h]
