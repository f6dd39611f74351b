"""Request signing: HMAC-SHA256 in the SigV4 scheme, carried in gRPC metadata.

The signing key is SigV4's (``AWS4`` + secret, then HMAC over the date, the
region, the service and ``aws4_request``), so the same access keys serve the
gRPC API and a later S3 HTTP API. What is signed differs only in the canonical
request: a gRPC call has no URI or query, so it names the RPC, the bucket, the
key and the version it is about, the request time and the payload's digest::

    TRISTORE-GRPC\\n
    /tristore.ObjectService/GetObject\\n
    <bucket>\\n<key>\\n<version id>\\n
    <x-tristore-date>\\n
    <x-tristore-content-sha256>

The S3 HTTP API (node/s3/) signs as AWS does: SigV4's canonical request of the
HTTP request (:func:`http_canonical_request`), from an Authorization header or
a presigned query string (:func:`parse_http`), and aws-chunked bodies chunk by
chunk (:func:`chunk_signature`).

The string to sign and the signature are SigV4's (``AWS4-HMAC-SHA256``, the
request time, the credential scope, the hex SHA-256 of the canonical request).

The payload digest is the SHA-256 of the request message in protobuf's
deterministic serialization (map entries sorted), which client and server both
compute from the message (a unary PutSmallObject's body included). A
client-streaming call (PutObject, UploadPart, ApplyReplica) signs the
``header`` of its first message, which names the
bucket, key, metadata and any declared ``content_md5``; the body chunks after
it are not in the signature (as S3's ``UNSIGNED-PAYLOAD``): the TLS channel
carries their integrity, and a declared ``content_md5`` is checked against the
whole body when it ends (BadDigest).

Metadata keys: ``authorization`` (``AWS4-HMAC-SHA256 Credential=AKID/DATE/
REGION/s3/aws4_request, SignedHeaders=x-tristore-content-sha256;x-tristore-date,
Signature=HEX``), ``x-tristore-date`` (``YYYYMMDDTHHMMSSZ``) and
``x-tristore-content-sha256``. A request more than :data:`MAX_SKEW_S` away from
the server's clock is refused (RequestTimeTooSkewed).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tristore.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestTimeTooSkewed,
    TristoreError,
)

ALGORITHM = "AWS4-HMAC-SHA256"
CANONICAL_HEAD = "TRISTORE-GRPC"
SERVICE = "s3"
DEFAULT_REGION = "us-east-1"
TERMINATOR = "aws4_request"
AUTH_KEY = "authorization"
DATE_KEY = "x-tristore-date"
SHA_KEY = "x-tristore-content-sha256"
SIGNED_HEADERS = f"{SHA_KEY};{DATE_KEY}"
#: Requests dated further than this from the server's clock are refused (S3's window).
MAX_SKEW_S = 15 * 60
DATE_FORMAT = "%Y%m%dT%H%M%SZ"

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request, ?SignedHeaders=(?P<headers>[^,\s]+), ?"
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)
_AKID_RE = re.compile(r"[A-Za-z0-9]{8,128}")


def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """SigV4's derived key: HMAC chain over date (YYYYMMDD), region, service."""
    k = hmac.digest(("AWS4" + secret).encode(), date.encode(), "sha256")
    k = hmac.digest(k, region.encode(), "sha256")
    k = hmac.digest(k, service.encode(), "sha256")
    return hmac.digest(k, TERMINATOR.encode(), "sha256")


def scope(date: str, region: str, service: str = SERVICE) -> str:
    return f"{date}/{region}/{service}/{TERMINATOR}"


def canonical_request(
    method: str, bucket: str, key: str, version_id: str, amz_date: str, payload_sha256: str
) -> str:
    return "\n".join((CANONICAL_HEAD, method, bucket, key, version_id, amz_date, payload_sha256))


def string_to_sign(amz_date: str, credential_scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{credential_scope}\n{digest}"


def signature(key: bytes, to_sign: str) -> str:
    return hmac.digest(key, to_sign.encode(), "sha256").hex()


def payload_of(msg: Any, streamed: bool) -> Any:
    """The part of a request message the signature covers: of a client
    stream's first message, its ``header`` (when it has one); else all of it."""
    return msg.header if streamed and _has(msg, "header") else msg


def payload_sha256(payload: Any) -> str:
    return hashlib.sha256(payload.SerializeToString(deterministic=True)).hexdigest()


def resource_of(msg: Any) -> tuple[str, str, str]:
    """(bucket, key, version id) a request message is about: its own fields,
    or those of its ``header`` / ``version`` (the first message of a stream)
    / ``get`` (GetSmallObject).
    Empty strings where the message has none."""
    for _ in range(2):
        own, inner = _resource_plan(msg)
        if "bucket" in own:
            break
        name = next((n for n in inner if _has(msg, n)), None)
        if name is None:
            break
        msg = getattr(msg, name)
    own, _ = _resource_plan(msg)
    return (
        str(msg.bucket or "") if "bucket" in own else "",
        str(msg.key or "") if "key" in own else "",
        str(msg.version_id or "") if "version_id" in own else "",
    )


_RESOURCE_FIELDS = ("bucket", "key", "version_id")
_RESOURCE_INNER = ("header", "version", "get")
#: Per message type: which of _RESOURCE_FIELDS it has, and which of
#: _RESOURCE_INNER could hold them (every request is signed and checked: its
#: type is looked at once, not by attribute errors on each call).
_resource_plans: dict[Any, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _resource_plan(msg: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    kind = type(msg)
    plan = _resource_plans.get(kind)
    if plan is None:
        plan = (
            tuple(f for f in _RESOURCE_FIELDS if hasattr(msg, f)),
            tuple(n for n in _RESOURCE_INNER if hasattr(msg, n)),
        )
        if len(_resource_plans) < 1024:
            _resource_plans[kind] = plan
    return plan


def _has(msg: Any, name: str) -> bool:
    try:
        return bool(msg.HasField(name))
    except (ValueError, AttributeError):
        return False


def amz_date(now: dt.datetime | None = None) -> str:
    t = now or dt.datetime.now(dt.UTC)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}Z"


@dataclass(frozen=True)
class Signed:
    """The signature parts a request carries (parsed from its metadata)."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    amz_date: str
    payload_sha256: str
    signature: str


def sign_metadata(
    access_key_id: str,
    key: bytes,
    region: str,
    method: str,
    message: Any,
    now: dt.datetime | None = None,
) -> list[tuple[str, str]]:
    """The metadata that signs one call of ``method`` with ``message`` (the
    request; of a client stream, the header of its first message), ``key``
    being the signing key of ``now``'s date (:func:`signing_key`)."""
    when = amz_date(now)
    sha = payload_sha256(message)
    resource = resource_of(message)
    canonical = canonical_request(method, *resource, when, sha)
    cred_scope = scope(when[:8], region)
    sig = signature(key, string_to_sign(when, cred_scope, canonical))
    auth = (
        f"{ALGORITHM} Credential={access_key_id}/{cred_scope}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={sig}"
    )
    return [(AUTH_KEY, auth), (DATE_KEY, when), (SHA_KEY, sha)]


def parse(metadata: Any) -> Signed | None:
    """The signature a call's metadata carries; None when it carries none
    (an anonymous request). Malformed signatures are AccessDenied."""
    auth = when = sha = None
    for item in metadata or ():
        k, v = item[0], item[1]
        if k == AUTH_KEY:
            auth = v
        elif k == DATE_KEY:
            when = v
        elif k == SHA_KEY:
            sha = v
    if auth is None:
        return None
    if isinstance(auth, bytes) or isinstance(when, bytes) or isinstance(sha, bytes):
        raise AccessDenied("the authorization metadata must be text")
    m = _AUTH_RE.match(auth)
    if m is None:
        raise AccessDenied(
            "the authorization metadata is malformed: expected "
            f"'{ALGORITHM} Credential=AKID/DATE/REGION/s3/aws4_request, "
            f"SignedHeaders={SIGNED_HEADERS}, Signature=HEX'"
        )
    if not when or not sha:
        raise AccessDenied(f"a signed request needs {DATE_KEY} and {SHA_KEY} metadata")
    if m["headers"] != SIGNED_HEADERS:
        raise AccessDenied(f"SignedHeaders must be {SIGNED_HEADERS}")
    if m["service"] != SERVICE:
        raise AccessDenied(f"the credential scope names service {m['service']!r}, not {SERVICE!r}")
    if not _AKID_RE.fullmatch(m["akid"]):
        raise InvalidAccessKeyId("the access key id is malformed")
    return Signed(m["akid"], m["date"], m["region"], m["service"], when, sha, m["sig"])


@functools.lru_cache(maxsize=64)
def _amz_time(d: str) -> dt.datetime:
    """A YYYYMMDDTHHMMSSZ date (ValueError if it is not one). Remembered: the
    requests of one second all carry the same."""
    if len(d) != 16 or d[8] != "T" or d[15] != "Z":
        raise ValueError(d)
    # By hand: strptime costs a third of a verification.
    return dt.datetime(
        int(d[0:4]), int(d[4:6]), int(d[6:8]), int(d[9:11]), int(d[11:13]), int(d[13:15]),
        tzinfo=dt.UTC,
    )  # fmt: skip


def check_time(
    signed: Signed, now: dt.datetime | None = None, field: str = DATE_KEY, expires_s: int = 0
) -> None:
    """Refuse a request dated outside the 15-minute window, or whose scope's
    date is not its own. ``field`` names the date's header in the message;
    ``expires_s`` > 0: a presigned URL, valid from its date (with the same
    skew allowed before it) until that many seconds after it."""
    try:
        t = _amz_time(signed.amz_date)
    except ValueError:
        raise AccessDenied(f"{field} {signed.amz_date!r} is not YYYYMMDDTHHMMSSZ") from None
    if signed.amz_date[:8] != signed.date:
        raise AccessDenied("the credential scope's date is not the request's date")
    age = ((now or dt.datetime.now(dt.UTC)) - t).total_seconds()
    if expires_s > 0:
        if age > expires_s:
            raise AccessDenied(f"Request has expired: signed {signed.amz_date}, for {expires_s}s")
        if age < -MAX_SKEW_S:
            raise RequestTimeTooSkewed(f"the URL is dated {signed.amz_date}, in the future")
        return
    skew = abs(age)
    if skew > MAX_SKEW_S:
        raise RequestTimeTooSkewed(
            f"the request time {signed.amz_date} is {skew:.0f}s from the server's time; "
            f"the difference must be under {MAX_SKEW_S // 60} minutes"
        )


def expected(
    signed: Signed, key: bytes, method: str, resource: tuple[str, str, str], payload_sha256: str
) -> str:
    canonical = canonical_request(method, *resource, signed.amz_date, payload_sha256)
    cred_scope = scope(signed.date, signed.region, signed.service)
    return signature(key, string_to_sign(signed.amz_date, cred_scope, canonical))


def matches(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# -- SigV4 over HTTP (the S3 API, node/s3/) ---------------------------------------------

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: aws-chunked bodies: each chunk signed (and optionally a signed trailer), or
#: not signed with a trailer carrying the checksum.
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: A presigned URL lives at most a week, as in S3.
MAX_PRESIGN_S = 7 * 24 * 3600

#: The components of an Authorization header after its scheme, each once.
_AUTH_COMPONENTS = ("Credential", "SignedHeaders", "Signature")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_SPACES = re.compile(r"\s+")


def uri_encode(text: str, encode_slash: bool = True) -> str:
    """SigV4's URI encoding: every byte but unreserved characters as %XX (uppercase)."""
    return quote(text, safe="-_.~" if encode_slash else "-_.~/")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The query string's canonical form: names and values encoded, sorted by
    name then value (X-Amz-Signature left out, for a presigned URL)."""
    items = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs if k != "X-Amz-Signature")
    return "&".join(f"{k}={v}" for k, v in items)


def http_canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """SigV4's canonical request of an HTTP request. ``path``: decoded (it is
    encoded once here, as S3 does, never twice); ``headers``: lower-case names
    to their values (several values of one name joined by commas)."""
    canon_headers = "".join(
        f"{h}:{_SPACES.sub(' ', headers.get(h, '').strip())}\n" for h in signed_headers
    )
    return "\n".join(
        (
            method,
            uri_encode(path, encode_slash=False) or "/",
            canonical_query(query),
            canon_headers,
            ";".join(signed_headers),
            payload_hash,
        )
    )


@dataclass(frozen=True)
class HttpSigned:
    """What an HTTP request's signature claims: from its Authorization header
    or its presigned query string."""

    signed: Signed
    signed_headers: tuple[str, ...]
    #: Seconds a presigned URL is valid (0: header auth).
    expires_s: int = 0


def _credential(cred: str, malformed: Callable[[str], TristoreError]) -> tuple[str, str, str, str]:
    """A credential's access key id, date, region and service.
    ``malformed(what is wrong)``: the error of the door it came by."""
    parts = cred.split("/")
    if len(parts) != 5 or not _scope_date(parts[1]):
        raise malformed(
            'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/'
            f'aws4_request" (got {len(parts)} part(s): {cred[:200]!r})'
        )
    akid, date, region, service, terminal = parts
    if not akid:
        raise malformed("a non-empty Access Key (AKID) must be provided in the credential")
    if not region:
        raise malformed("the credential names no region")
    if service != SERVICE:
        raise malformed(f'incorrect service "{service}"; this endpoint belongs to "{SERVICE}"')
    if terminal != TERMINATOR:
        raise malformed(f'incorrect terminal "{terminal}"; this endpoint uses "{TERMINATOR}"')
    if not re.fullmatch(r"[A-Za-z0-9]{8,128}", akid):
        raise InvalidAccessKeyId("the access key id is malformed")
    return akid, date, region, service


def _scope_date(d: str) -> bool:
    """Whether ``d`` is a credential scope's date: a real day as YYYYMMDD."""
    if not re.fullmatch(r"\d{8}", d):
        return False
    try:
        dt.date(int(d[:4]), int(d[4:6]), int(d[6:]))
    except ValueError:
        return False
    return True


def _header_malformed(what: str) -> AuthorizationHeaderMalformed:
    return AuthorizationHeaderMalformed(f"The authorization header is malformed; {what}.")


def _query_malformed(what: str) -> AuthorizationQueryParametersError:
    return AuthorizationQueryParametersError(what)


def _query_credential_malformed(what: str) -> AuthorizationQueryParametersError:
    return AuthorizationQueryParametersError(
        f"Error parsing the X-Amz-Credential parameter; {what}."
    )


def _header_components(auth: str) -> dict[str, str]:
    """An Authorization header's Credential, SignedHeaders and Signature
    (AWS4-HMAC-SHA256: InvalidRequest for Signature Version 2, InvalidArgument
    for another scheme, as S3 answers; AuthorizationHeaderMalformed naming
    what is wrong with the rest)."""
    scheme, rest = [*auth.split(None, 1), "", ""][:2]
    if scheme != ALGORITHM:
        # Not echoed: what a client sent there may be a token of its own.
        raise InvalidArgument(
            f"Unsupported Authorization Type: this endpoint takes {ALGORITHM} "
            "signatures (Signature Version 4) in the Authorization header"
        )
    components = [c.strip() for c in rest.split(",")] if rest.strip() else []
    found: dict[str, str] = {}
    for component in components:
        name, eq, value = component.partition("=")
        if not eq or not value:
            raise _header_malformed(f'the authorization component "{component[:200]}" is malformed')
        found.setdefault(name, value)
    if len(components) != len(_AUTH_COMPONENTS) or set(found) != set(_AUTH_COMPONENTS):
        raise _header_malformed(
            "the authorization header requires three components: Credential, "
            "SignedHeaders, and Signature"
        )
    if not _HEX64.fullmatch(found["Signature"]):
        raise _header_malformed("the Signature must be 64 hexadecimal digits")
    return found


#: The query parameters of a SigV4 presigned URL, each required; any of the
#: first three makes a request one (else it is anonymous, or V2's).
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                  "X-Amz-SignedHeaders", "X-Amz-Expires")  # fmt: skip


def parse_http(headers: Mapping[str, str], query: Mapping[str, str]) -> HttpSigned | None:
    """The signature of an HTTP request: Authorization header or presigned
    query (None: anonymous). ``headers``: lower-case names.

    Raises what S3 answers a request it cannot read the signature of: a
    malformed header is AuthorizationHeaderMalformed, malformed query
    parameters AuthorizationQueryParametersError (both 400, naming the
    fault)."""
    auth = headers.get("authorization")
    if (auth is not None and auth.startswith("AWS ")) or "AWSAccessKeyId" in query:
        # Signature Version 2 (HMAC-SHA1) in a header: refused, as S3 does in
        # its newer regions. A V2 presigned query is checked before this, by
        # parse_v2_presigned (node/s3/auth.py); here it is never anonymous.
        raise InvalidRequest(
            "The authorization mechanism you have provided is not supported. Please use "
            "AWS4-HMAC-SHA256 (s3cmd: signature_v2 = False)"
        )
    if auth is not None:
        m = _header_components(auth)
        akid, date, region, service = _credential(m["Credential"], _header_malformed)
        when = headers.get("x-amz-date", "")
        if not when:
            raise AccessDenied("a signed request needs an x-amz-date header")
        if when[:8] != date:  # as a presigned URL's credential (_presigned)
            raise _header_malformed(
                "Invalid credential date. Date is not the same as X-Amz-Date: the scope "
                f"names {date}, x-amz-date is {when[:50]}"
            )
        sha = headers.get("x-amz-content-sha256", "")
        if not sha:
            raise AccessDenied("a signed request needs an x-amz-content-sha256 header")
        signed_headers = tuple(m["SignedHeaders"].lower().split(";"))
        if "host" not in signed_headers:
            raise AccessDenied("SignedHeaders must include host")
        sig = Signed(akid, date, region, service, when, sha, m["Signature"].lower())
        return HttpSigned(sig, signed_headers)
    if not any(name in query for name in _PRESIGN_PARAMS[:3]):
        return None
    return _presigned(headers, query)


def _presigned(headers: Mapping[str, str], query: Mapping[str, str]) -> HttpSigned:
    """The signature of a presigned query string (:func:`parse_http`)."""
    missing = [n for n in _PRESIGN_PARAMS if n not in query]
    if missing:
        raise _query_malformed(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            f"X-Amz-Expires parameters; missing: {', '.join(missing)}"
        )
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise _query_malformed(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    when = query["X-Amz-Date"]
    try:
        _amz_time(when)
    except ValueError:
        raise _query_malformed(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        ) from None
    raw_expires = query["X-Amz-Expires"]
    if not re.fullmatch(r"-?\d{1,20}", raw_expires):
        raise _query_malformed("X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if expires < 0:
        raise _query_malformed("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_S:
        raise _query_malformed(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_S} seconds"
        )
    akid, date, region, service = _credential(
        query["X-Amz-Credential"], _query_credential_malformed
    )
    if date != when[:8]:
        raise _query_credential_malformed(
            f'Invalid credential date "{date}": it is not the date of X-Amz-Date ({when})'
        )
    if not _HEX64.fullmatch(query["X-Amz-Signature"]):
        raise _query_malformed("X-Amz-Signature must be 64 hexadecimal digits")
    signed_headers = tuple(query["X-Amz-SignedHeaders"].lower().split(";"))
    if "host" not in signed_headers:
        raise _query_malformed("X-Amz-SignedHeaders must include host")
    if expires == 0:  # well formed, valid for no time at all
        raise AccessDenied(f"Request has expired: signed {when}, for 0s")
    sha = query.get("X-Amz-Content-Sha256") or headers.get("x-amz-content-sha256") or ""
    sig = Signed(
        akid,
        date,
        region,
        service,
        when,
        sha or UNSIGNED_PAYLOAD,
        query["X-Amz-Signature"].lower(),
    )
    return HttpSigned(sig, signed_headers, expires)


def http_signature(signed: Signed, key: bytes, canonical: str) -> str:
    cred_scope = scope(signed.date, signed.region, signed.service)
    return signature(key, string_to_sign(signed.amz_date, cred_scope, canonical))


def chunk_signature(
    key: bytes, amz_date: str, cred_scope: str, previous: str, chunk_sha256: str
) -> str:
    """The signature of one aws-chunked chunk: chained to the previous one
    (the request's own signature for the first chunk)."""
    to_sign = "\n".join(
        (CHUNK_ALGORITHM, amz_date, cred_scope, previous, EMPTY_SHA256, chunk_sha256)
    )
    return signature(key, to_sign)


def trailer_signature(
    key: bytes, amz_date: str, cred_scope: str, previous: str, trailer: bytes
) -> str:
    """The signature of an aws-chunked body's trailing headers."""
    digest = hashlib.sha256(trailer).hexdigest()
    to_sign = "\n".join((TRAILER_ALGORITHM, amz_date, cred_scope, previous, digest))
    return signature(key, to_sign)


def presign_query(
    access_key_id: str,
    key: bytes,
    region: str,
    method: str,
    path: str,
    host: str,
    expires_s: int,
    query: Iterable[tuple[str, str]] = (),
    now: dt.datetime | None = None,
) -> list[tuple[str, str]]:
    """The query of a presigned URL (host the only signed header; the body
    unsigned): what tests and a future SDK presign with."""
    when = amz_date(now)
    cred_scope = scope(when[:8], region)
    pairs = [
        *query,
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key_id}/{cred_scope}"),
        ("X-Amz-Date", when),
        ("X-Amz-Expires", str(expires_s)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    canonical = http_canonical_request(
        method, path, pairs, {"host": host}, ["host"], UNSIGNED_PAYLOAD
    )
    sig = signature(key, string_to_sign(when, cred_scope, canonical))
    return [*pairs, ("X-Amz-Signature", sig)]


# -- POST Object: browser form uploads (node/s3/post.py) -------------------------

#: The fields that sign a POST Object form with Signature V4, beside its policy.
POST_FIELDS = ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
#: The fields that sign one with Signature V2 (what boto3's
#: generate_presigned_post makes unless told s3v4), beside its policy.
V2_POST_FIELDS = ("awsaccesskeyid", "signature")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


def post_signature_version(fields: Mapping[str, str]) -> int:
    """Which signature a POST Object form (``fields`` by lower-case name)
    carries: 4 (any of :data:`POST_FIELDS`), 2 (any of :data:`V2_POST_FIELDS`)
    or 0 (neither). A form with fields of both is InvalidArgument, as S3
    answers a request that carries two of its auth mechanisms: which one
    was meant is not for the server to guess."""
    v4 = [n for n in POST_FIELDS if n in fields]
    v2 = [n for n in V2_POST_FIELDS if n in fields]
    if v4 and v2:
        raise InvalidArgument(
            "Only one auth mechanism allowed; a POST form is signed either with Signature "
            "Version 4 (x-amz-algorithm, x-amz-credential, x-amz-date, x-amz-signature) or "
            f"with Version 2 (AWSAccessKeyId, signature), not both (it has {', '.join(v4 + v2)})"
        )
    return 4 if v4 else 2 if v2 else 0


def _post_malformed(what: str) -> InvalidArgument:
    return InvalidArgument(f"the form's x-amz-credential is malformed: {what}")


def parse_post(fields: Mapping[str, str]) -> Signed:
    """The signature of a POST Object form (``fields`` by lower-case name,
    each of :data:`POST_FIELDS` present): its credential, date and
    signature. The signed "payload" is the base64 policy itself. No time
    window: the policy's expiration says how long the form is good for."""
    if fields["x-amz-algorithm"] != ALGORITHM:
        raise InvalidArgument(
            f"x-amz-algorithm {fields['x-amz-algorithm'][:50]!r} is not supported; use {ALGORITHM}"
        )
    akid, date, region, service = _credential(fields["x-amz-credential"], _post_malformed)
    when = fields["x-amz-date"]
    if not _AMZ_DATE.fullmatch(when):
        raise InvalidArgument(f"x-amz-date {when[:50]!r} is not YYYYMMDDTHHMMSSZ")
    if when[:8] != date:
        raise InvalidArgument("the x-amz-credential's date is not the x-amz-date's day")
    sig = fields["x-amz-signature"].lower()
    if not _HEX64.fullmatch(sig):
        raise InvalidArgument("x-amz-signature is not 64 hex digits")
    return Signed(akid, date, region, service, when, UNSIGNED_PAYLOAD, sig)


def post_signature(key: bytes, policy_b64: str) -> str:
    """The x-amz-signature of a POST Object form: HMAC-SHA256 of its policy
    as sent (base64), with the signing key of its credential's scope."""
    return signature(key, policy_b64)


# -- Signature Version 2: presigned query strings and POST forms -----------------

#: The query parameters a V2 signature covers (the "sub-resources" of S3's
#: CanonicalizedResource, as botocore and s3cmd list them); others are not signed.
V2_SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "delete", "inventory", "lifecycle",
        "location", "logging", "metrics", "notification", "object-lock", "partNumber",
        "policy", "replication", "requestPayment", "response-cache-control",
        "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires",
        "restore", "select", "select-type", "storageClass", "tagging", "torrent",
        "uploadId", "uploads", "versionId", "versioning", "versions", "website",
    }
)  # fmt: skip
V2_QUERY_KEYS = ("AWSAccessKeyId", "Expires", "Signature")


@dataclass(frozen=True)
class V2Presigned:
    """A Signature Version 2 presigned URL (``AWSAccessKeyId``, ``Expires``,
    ``Signature``): what the aws CLI v1's ``s3 presign`` and s3cmd's
    ``signurl`` make. HMAC-SHA1 over the method, Content-MD5, Content-Type,
    the expiry, the x-amz-* headers and the resource."""

    access_key_id: str
    expires: int
    signature: str


def parse_v2_presigned(query: Mapping[str, str], now: dt.datetime | None = None) -> V2Presigned:
    """The V2 signature of a presigned query; AccessDenied when it is
    malformed, expired, or valid for longer than a presigned URL may be."""
    missing = [k for k in V2_QUERY_KEYS if not query.get(k)]
    if missing:
        raise AccessDenied(f"the presigned URL lacks {', '.join(missing)}")
    try:
        expires = int(query["Expires"])
    except ValueError:
        raise AccessDenied("Expires must be seconds since the epoch") from None
    t = (now or dt.datetime.now(dt.UTC)).timestamp()
    if t > expires:
        raise AccessDenied(
            f"Request has expired: the URL was valid until {expires} (epoch seconds)"
        )
    if expires - t > MAX_PRESIGN_S + MAX_SKEW_S:
        raise AccessDenied(
            f"Expires is more than {MAX_PRESIGN_S} seconds (a week) ahead: a presigned URL "
            "lives at most a week"
        )
    return V2Presigned(query["AWSAccessKeyId"], expires, query["Signature"])


def v2_string_to_sign(
    method: str,
    headers: Mapping[str, str],
    expires: int,
    resource: str,
    query: Iterable[tuple[str, str]],
) -> str:
    """S3's V2 StringToSign of a presigned request. ``headers`` by lower-case
    name; ``resource`` the path-style path as sent (``/BUCKET/KEY``, encoded);
    ``query`` the decoded pairs (only sub-resources count)."""
    amz = sorted(
        (name, " ".join(value.split()))
        for name, value in headers.items()
        if name.startswith("x-amz-")
    )
    sub = sorted((k, v) for k, v in query if k in V2_SUBRESOURCES)
    canonical = resource
    if sub:
        canonical += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
    return (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{expires}\n" + "".join(f"{k}:{v}\n" for k, v in amz) + canonical
    )


def v2_signature(secret: str, string_to_sign: str) -> str:
    mac = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def v2_post_signature(secret: str, policy_b64: str) -> str:
    """The ``signature`` of a Signature V2 POST Object form: base64 of the
    HMAC-SHA1 of its policy as sent (base64), with the secret itself."""
    return v2_signature(secret, policy_b64)
