"""S3 input rules, checked at the edge (client SDK and coordinator alike).

Every check raises the S3 error a user would get from S3 itself, with a message
that says what to change.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence

from tristore.errors import (
    IllegalLocationConstraintException,
    IllegalVersioningConfigurationException,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidLocationConstraint,
    InvalidPartNumber,
    InvalidRange,
    InvalidRequest,
    InvalidStorageClass,
    InvalidTag,
    KeyTooLongError,
    MetadataTooLarge,
)

MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
MAX_CONTENT_TYPE = 1024
MAX_LIST_KEYS = 1000
#: Keys a DeleteObjects call deletes at most (S3's limit).
MAX_DELETE_KEYS = 1000
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
META_PREFIX = "x-amz-meta-"

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TOKEN_RE = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


#: Four dot-separated groups of digits, valid address or not (``256.256.256.256``):
#: S3 refuses every name formatted as an IP address. A match, not a parse: this
#: runs on every request.
_IP_LIKE_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def check_bucket_name(name: str) -> None:
    """The S3 general-purpose bucket naming rules."""
    if not 3 <= len(name) <= 63:
        raise InvalidBucketName(
            f"bucket name {name!r} must be 3 to 63 characters long (it is {len(name)})"
        )
    if not _BUCKET_RE.match(name):
        raise InvalidBucketName(
            f"bucket name {name!r} may contain only lowercase letters, digits, '.' and '-', "
            "and must begin and end with a letter or digit"
        )
    if ".." in name:
        raise InvalidBucketName(f"bucket name {name!r} must not contain two adjacent periods")
    if _IP_LIKE_RE.match(name):
        raise InvalidBucketName(f"bucket name {name!r} must not look like an IP address")
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        raise InvalidBucketName(f"bucket name {name!r} uses a prefix or suffix S3 reserves")


def check_key(key: str) -> None:
    if not key:
        raise InvalidArgument("object key must not be empty")
    size = len(key.encode("utf-8", errors="surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise KeyTooLongError(f"object key is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("object key must be valid UTF-8") from None
    if "\x00" in key:
        raise InvalidArgument("object key must not contain NUL (U+0000)")


def normalize_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """Lower-case names, strip an ``x-amz-meta-`` prefix, and enforce S3's 2 KB limit."""
    out: dict[str, str] = {}
    for raw_name, value in (metadata or {}).items():
        if not isinstance(raw_name, str) or not isinstance(value, str):
            raise InvalidArgument("metadata names and values must be strings")
        name = raw_name.strip().lower()
        if name.startswith(META_PREFIX):
            name = name[len(META_PREFIX) :]
        if not name or not _TOKEN_RE.match(name):
            raise InvalidArgument(
                f"metadata name {raw_name!r} is not a valid HTTP header name "
                "(letters, digits and !#$%&'*+.^_`|~- only)"
            )
        if any(c in value for c in "\r\n\x00"):
            raise InvalidArgument(f"metadata value of {name!r} must not contain CR, LF or NUL")
        if name in out:
            raise InvalidArgument(f"metadata name {name!r} is given twice")
        out[name] = value
    total = sum(len(k.encode()) + len(v.encode()) for k, v in out.items())
    if total > MAX_METADATA_BYTES:
        raise MetadataTooLarge(
            f"user metadata is {total} bytes (names plus values, UTF-8); "
            f"the limit is {MAX_METADATA_BYTES}"
        )
    return out


def normalize_content_type(content_type: str | None) -> str:
    if not content_type:
        return DEFAULT_CONTENT_TYPE
    if len(content_type) > MAX_CONTENT_TYPE or any(c in content_type for c in "\r\n\x00"):
        raise InvalidArgument(
            f"content type must be at most {MAX_CONTENT_TYPE} characters with no CR, LF or NUL"
        )
    return content_type


#: Standard HTTP headers stored with an object and answered by GET and HEAD
#: (S3's system metadata), by their lower-case names.
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
#: At most this many bytes in one stored header's value (S3 refuses a request
#: whose headers pass 8 KiB in all).
MAX_STORED_HEADER = 2048


def normalize_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The standard headers to store with an object: names of
    :data:`STORED_HEADERS` in any case, values of printable ASCII (and tab)
    up to :data:`MAX_STORED_HEADER` bytes; empty values are left out."""
    out: dict[str, str] = {}
    for raw_name, value in (headers or {}).items():
        if not isinstance(raw_name, str) or not isinstance(value, str):
            raise InvalidArgument("header names and values must be strings")
        name = raw_name.strip().lower()
        if name not in STORED_HEADERS:
            raise InvalidArgument(
                f"{raw_name!r} is not a header stored with an object; "
                f"these are: {', '.join(STORED_HEADERS)} (use metadata for others)"
            )
        value = value.strip()
        if not value:
            continue
        if len(value) > MAX_STORED_HEADER or not all(" " <= c <= "~" or c == "\t" for c in value):
            raise InvalidArgument(
                f"the value of {name} must be at most {MAX_STORED_HEADER} characters of "
                "printable ASCII (no CR, LF or other control characters)"
            )
        if name in out:
            raise InvalidArgument(f"header {name!r} is given twice")
        out[name] = value
    return out


def check_delete_count(n: int) -> None:
    """A DeleteObjects call names 1..MAX_DELETE_KEYS keys."""
    if not 1 <= n <= MAX_DELETE_KEYS:
        raise InvalidArgument(
            f"DeleteObjects takes 1 to {MAX_DELETE_KEYS} keys a call (got {n}); "
            "split the keys into batches"
        )


#: The largest value a listing's limit may be given as (S3 reads it as an int32).
MAX_LIMIT_VALUE = 2**31 - 1


def cap_max_keys(max_keys: int, name: str = "max-keys") -> int:
    """A listing's limit (``max-keys``, ``max-uploads``, ``max-parts``) as S3
    reads it: a page holds at most :data:`MAX_LIST_KEYS` entries, and a larger
    limit is capped to it, not refused (``aws s3 ls --page-size 5000`` and
    Hadoop S3A's ``fs.s3a.paging.maximum=5000`` ask for more). Negative, or
    past an int32: InvalidArgument naming the parameter."""
    if max_keys < 0:
        raise InvalidArgument(f"{name} must be a non-negative integer (got {max_keys})")
    if max_keys > MAX_LIMIT_VALUE:
        raise InvalidArgument(f"{name} {max_keys} is not within the integer range")
    return min(max_keys, MAX_LIST_KEYS)


#: The regions a CreateBucketConfiguration's LocationConstraint may name (S3's
#: BucketLocationConstraint, with ``EU``, the old name of eu-west-1, and
#: us-east-1, which S3's own list leaves out: it is the empty constraint).
S3_REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
        "ap-southeast-7", "ca-central-1", "ca-west-1", "cn-north-1", "cn-northwest-1", "EU",
        "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1",
        "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
        "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-gov-east-1",
        "us-gov-west-1", "us-west-1", "us-west-2",
    }
)  # fmt: skip


def check_location_constraint(constraint: str, region: str) -> None:
    """A CreateBucket's LocationConstraint where the cluster is ``region``:
    none or the cluster's own is fine; another region is refused as S3's
    regional endpoints refuse it (a bucket is made where the request is
    sent), a name that is no region as S3 refuses it."""
    if not constraint or constraint == region:
        return
    if constraint in S3_REGIONS:
        raise IllegalLocationConstraintException(
            f"The {constraint} location constraint is incompatible for the region specific "
            f"endpoint this request was sent to (this cluster is {region})."
        )
    raise InvalidLocationConstraint(
        f"The specified location-constraint is not valid: {constraint[:64]!r}"
    )


def check_delimiter(delimiter: str) -> None:
    if len(delimiter.encode()) > MAX_KEY_BYTES:
        raise InvalidArgument("delimiter is longer than a key can be")


def resolve_range(start: int, end: int, size: int, empty_suffix: bool = False) -> tuple[int, int]:
    """Turn an HTTP-style inclusive range into ``(first, last)`` byte offsets.

    ``start < 0`` is a suffix range (the last ``-start`` bytes); ``end < 0``
    means "to the end". Raises InvalidRange when nothing of the object is in it.
    A suffix of an empty object is its whole (empty) body, ``(0, -1)``: a
    suffix range is satisfiable whatever the length (RFC 9110 14.1.3), and S3
    answers it ``200`` with no bytes, which readers of a file's tail (Parquet
    footers, Trino) count on; ``bytes=0-`` of an empty object stays refused.
    ``empty_suffix``: ``bytes=-0`` (:class:`tristore.model.ByteRange`): an
    empty object's empty body too, but of any other nothing, so InvalidRange
    (S3's 416), never the whole object.
    """
    if empty_suffix:
        if size:
            raise InvalidRange.of_object(
                f"range bytes=-0 asks for the last 0 bytes of the object (size {size}); "
                "nothing satisfies it",
                size,
            )
        return 0, -1
    if start < 0:
        if end >= 0:
            raise InvalidRange("a suffix range (bytes=-N) cannot also have an end")
        length = -start
        return max(0, size - length), size - 1
    if end >= 0 and end < start:
        raise InvalidRange(f"range end {end} is before its start {start}")
    if start >= size:
        raise InvalidRange.of_object(
            f"range start {start} is beyond the object's last byte (object size {size})", size
        )
    last = size - 1 if end < 0 else min(end, size - 1)
    return start, last


def check_part_number(number: int) -> int:
    """S3's partNumber of a GET or HEAD: 1 to :data:`MAX_PARTS`."""
    if not 1 <= number <= MAX_PARTS:
        raise InvalidArgument(
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive (not {number})"
        )
    return number


def resolve_part(
    part_sizes: Sequence[int], size: int, number: int, has_range: bool = False
) -> tuple[int, int]:
    """Part ``number`` of an object of ``size`` bytes uploaded in parts of
    ``part_sizes`` as ``(first, last)`` byte offsets (``(0, -1)``: an empty
    part). Without part sizes (not uploaded in parts, or completed before
    they were kept) the object is one part. Past the last part: S3's
    InvalidPartNumber; with a Range too (``has_range``): InvalidRequest."""
    check_part_number(number)
    if has_range:
        raise InvalidRequest("Cannot specify both Range header and partNumber query parameter")
    sizes = part_sizes or (size,)
    if number > len(sizes):
        raise InvalidPartNumber(
            f"The requested partnumber is not satisfiable: part {number} of an object "
            f"of {len(sizes)} part{'s' if len(sizes) > 1 else ''}"
        )
    first = sum(sizes[: number - 1])
    return first, first + sizes[number - 1] - 1


def resolve_copy_range(start: int, end: int, size: int) -> tuple[int, int]:
    """x-amz-copy-source-range ``bytes=start-end`` of a source of ``size``
    bytes as ``(first, last)``. Unlike a GET's Range it is not clamped: a
    range reaching past the source's last byte is S3's InvalidArgument."""
    if start < 0 or end < start or end >= size:
        raise InvalidArgument(
            f"Range specified is not valid for source object of size: {size} (bytes={start}-{end})"
        )
    return start, end


#: Range bounds travel as int64; anything larger is past every object anyway.
MAX_RANGE_BOUND = 2**63 - 1


def check_content_md5(value: str) -> str:
    """A Content-MD5 as 32 hex digits (lower case), from hex or, as S3's header
    carries it, base64 of the 16 bytes. "" stays "" (none given)."""
    if not value:
        return ""
    text = value.strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", text):
        return text.lower()
    if re.fullmatch(r"[A-Za-z0-9+/]{22}==", text):
        return base64.b64decode(text).hex()
    raise InvalidDigest(
        f"Content-MD5 {value[:64]!r} is not an MD5: give 32 hex digits or the "
        "base64 of the 16-byte digest"
    )


def parse_range_header(spec: str) -> tuple[int, int]:
    """``bytes=A-B``, ``bytes=A-`` or ``bytes=-N`` (also without ``bytes=``)."""
    text = spec.strip()
    if text.startswith("bytes="):
        text = text[len("bytes=") :]
    m = re.fullmatch(r"(\d*)-(\d*)", text)
    if not m or (not m.group(1) and not m.group(2)):
        raise InvalidRange(f"range {spec!r} is not of the form bytes=START-END, START- or -SUFFIX")
    a, b = m.group(1), m.group(2)
    if any(len(g) > 19 or int(g) > MAX_RANGE_BOUND for g in (a, b) if g):
        raise InvalidRange(f"range {spec!r} reaches past the largest possible object")
    if not a:
        if int(b) == 0:
            raise InvalidRange(f"range {spec!r} asks for the last 0 bytes; nothing satisfies it")
        return -int(b), -1
    return int(a), int(b) if b else -1


MAX_TAGS = 10
#: Tags a bucket can have (S3's limit; an object's is :data:`MAX_TAGS`).
MAX_BUCKET_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_RE = re.compile(r"^[\w +\-=.:/@]*$")

#: S3's canned ACLs for objects.
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
#: The storage classes of an S3 general-purpose bucket, kept as labels.
#: OUTPOSTS and EXPRESS_ONEZONE are the classes of other kinds of bucket
#: (S3 on Outposts, directory buckets): S3 refuses them on this kind, as here.
STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
)
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
VERSIONING_STATES = ("Enabled", "Suspended")


def normalize_tags(
    tags: dict[str, str] | None, limit: int = MAX_TAGS, what: str = "an object"
) -> dict[str, str]:
    """S3's tag rules: at most ``limit`` (an object's 10, a bucket's
    :data:`MAX_BUCKET_TAGS`), keys 1-128 and values 0-256 characters of
    letters, digits, spaces and ``+ - = . _ : / @``; no ``aws:`` keys."""
    out = dict(tags or {})
    if len(out) > limit:
        raise InvalidTag(f"{what} can have at most {limit} tags (got {len(out)})")
    for k, v in out.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidTag("tag keys and values must be strings")
        if not 1 <= len(k) <= MAX_TAG_KEY:
            raise InvalidTag(f"tag key {k!r} must be 1 to {MAX_TAG_KEY} characters")
        if len(v) > MAX_TAG_VALUE:
            raise InvalidTag(f"the value of tag {k!r} is longer than {MAX_TAG_VALUE} characters")
        if not _TAG_RE.match(k) or not _TAG_RE.match(v):
            raise InvalidTag(
                f"tag {k!r}={v!r} may use only letters, digits, spaces and + - = . _ : / @"
            )
        if k.lower().startswith("aws:"):
            raise InvalidTag(f"tag key {k!r}: the aws: prefix is reserved")
    return out


def normalize_bucket_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """A bucket's tags, checked as S3 checks PutBucketTagging's (InvalidTag)."""
    return normalize_tags(tags, MAX_BUCKET_TAGS, "a bucket")


def tags_from_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Tags as a request lists them (a Tagging document's TagSet, the query
    string of x-amz-tagging), as a dict. A key listed twice is S3's InvalidTag:
    looked for here, before a dict would keep only the last of them."""
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidTag(f"Cannot provide multiple Tags with the same key ({k!r})")
        out[k] = v
    return out


#: A call's request id (the SDK makes one per call, 32 hex digits).
MAX_REQUEST_ID = 64
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]*")


def check_request_id(value: str) -> str:
    """A request id: at most :data:`MAX_REQUEST_ID` of ``[A-Za-z0-9_-]`` ("": none)."""
    if len(value) > MAX_REQUEST_ID or not _REQUEST_ID.fullmatch(value):
        raise InvalidArgument(
            f"request id {value[:80]!r} is not valid: give at most {MAX_REQUEST_ID} letters, "
            "digits, '-' or '_'"
        )
    return value


def check_acl(acl: str) -> str:
    """A canned ACL; empty means ``private``."""
    if not acl:
        return "private"
    if acl not in CANNED_ACLS:
        raise InvalidArgument(
            f"ACL {acl!r} is not a canned ACL; use one of {', '.join(CANNED_ACLS)}"
        )
    return acl


def check_storage_class(storage_class: str) -> str:
    """A storage class; empty means ``STANDARD``."""
    if not storage_class:
        return "STANDARD"
    if storage_class not in STORAGE_CLASSES:
        raise InvalidStorageClass(
            f"storage class {storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}"
        )
    return storage_class


def check_sse(sse: str) -> str:
    if sse and sse not in SSE_ALGORITHMS:
        raise InvalidArgument(
            f"server-side encryption {sse!r} is not one of {', '.join(SSE_ALGORITHMS)}"
        )
    return sse


def check_versioning_status(status: str) -> str:
    if status not in VERSIONING_STATES:
        raise IllegalVersioningConfigurationException(
            f"versioning status {status!r} must be Enabled or Suspended "
            "(a bucket never goes back to unversioned)"
        )
    return status


def check_directive(name: str, value: str) -> str:
    """COPY (the default) or REPLACE."""
    value = value.upper() if value else "COPY"
    if value not in ("COPY", "REPLACE"):
        raise InvalidArgument(f"{name} must be COPY or REPLACE (got {value!r})")
    return value


# -- multipart uploads ------------------------------------------------------

#: S3's limits on the parts of a multipart upload.
MIN_PART_SIZE = 5 * 1024**2
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000
#: How a file is uploaded unless told otherwise (the SDK's ``upload_file`` and
#: ``tristore cp``): multipart from 64 MiB, in parts of 8 MiB, 4 in flight.
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024**2
DEFAULT_PART_SIZE = 8 * 1024**2
DEFAULT_PARALLEL_PARTS = 4


def choose_part_size(size: int, requested: int) -> int:
    """``requested``, or, when a file of ``size`` bytes would need more than
    10,000 such parts, the smallest whole number of MiB that keeps it within
    (the SDK's ``upload_file`` and ``tristore cp`` both plan with it)."""
    if requested < MIN_PART_SIZE:
        raise InvalidArgument(f"a part must be at least 5 MiB, not {requested} bytes")
    if -(-size // requested) <= MAX_PARTS:
        return requested
    mib = 1024**2
    grown = -(-size // MAX_PARTS)
    grown = -(-grown // mib) * mib
    if grown > MAX_PART_SIZE:
        # Past 10,000 parts of 5 GiB, so always TiB.
        raise InvalidArgument(
            f"{size / 1024**4:.1f} TiB is too large for a multipart upload "
            f"({MAX_PARTS} parts of at most 5 GiB)"
        )
    return grown
