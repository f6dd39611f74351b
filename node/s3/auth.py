"""Who sent an S3 HTTP request: AWS Signature V4 from the Authorization header,
a presigned query string or a POST Object form's fields, or Signature V2 from
a presigned query string or a form's fields, checked with the access keys of
node/iam.py (the same keys and the same cached signing keys the gRPC door
uses, node/guard.py).

A request without either is anonymous; it then goes through the same
authorization as a signed one (a public-read object can be read, nothing else).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from node.guard import Guard
from node.iam import User
from node.s3.body import ChunkSigner
from tristore import sigv4
from tristore.errors import (
    InvalidAccessKeyId,
    InvalidArgument,
    SignatureDoesNotMatch,
)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Caller:
    """The outcome of authentication."""

    user: User | None
    #: x-amz-content-sha256 as signed: a hex digest (checked against the body),
    #: UNSIGNED-PAYLOAD, a STREAMING-* mode, or "" (anonymous, unsigned).
    payload: str = ""
    #: Checks aws-chunked chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
    chunks: ChunkSigner | None = None

    @property
    def payload_sha256(self) -> str:
        """The body's declared SHA-256 when it is one (else empty)."""
        return self.payload if _HEX64.fullmatch(self.payload) else ""


def decode(raw: str, what: str) -> str:
    """Percent-decoding that refuses bytes that are not UTF-8 (rather than
    replacing them, which would name another key)."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidArgument(f"{what} is not percent-encoded UTF-8") from None


def query_pairs(raw: str) -> list[tuple[str, str]]:
    """A raw query string as (name, value) pairs, percent-decoded (``+`` kept:
    SigV4 clients encode a space as %20, and the signature is over that)."""
    out = []
    for item in raw.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        out.append((decode(name, "the query string"), decode(value, "the query string")))
    return out


def lower_headers(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, repeated ones joined by commas (SigV4's form)."""
    out: dict[str, str] = {}
    for k, v in items:
        name = k.lower()
        out[name] = f"{out[name]},{v}" if name in out else v
    return out


async def _secret_of(guard: Guard, access_key_id: str) -> tuple[User, str]:
    """The user and secret of an access key; InvalidAccessKeyId if the cluster has none such."""
    found = await guard.iam.lookup(access_key_id)
    if found is None:
        raise InvalidAccessKeyId(
            f"the access key id {access_key_id} does not exist in this cluster"
        )
    return found


def _mismatch() -> SignatureDoesNotMatch:
    # S3's words for it.
    return SignatureDoesNotMatch(
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )


async def authenticate(
    guard: Guard,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    v2_resource: str = "",
) -> Caller:
    """The caller of one request (``path`` decoded, ``headers`` by lower-case
    name); raises SignatureDoesNotMatch, InvalidAccessKeyId,
    AuthorizationHeaderMalformed (a malformed AWS4-HMAC-SHA256 header),
    AuthorizationQueryParametersError (a malformed presigned URL),
    InvalidArgument (another scheme), InvalidRequest (Signature V2 in the
    header), AccessDenied (expired; a malformed V2 presigned URL),
    RequestTimeTooSkewed. ``v2_resource``: the
    request's path-style path as sent (encoded), which a V2 presigned URL signs."""
    if "AWSAccessKeyId" in (k for k, _ in query):
        return await _v2_presigned(guard, method, query, headers, v2_resource or path)
    signed = sigv4.parse_http(headers, dict(reversed(query)))
    if signed is None:
        return Caller(None, headers.get("x-amz-content-sha256", ""))
    s = signed.signed
    presigned = signed.expires_s > 0
    sigv4.check_time(
        s, field="X-Amz-Date" if presigned else "x-amz-date", expires_s=signed.expires_s
    )
    user, secret = await _secret_of(guard, s.access_key_id)
    key = guard.signing_key(s.access_key_id, secret, s)
    canonical = sigv4.http_canonical_request(
        method, path, query, headers, signed.signed_headers, s.payload_sha256
    )
    if not sigv4.matches(sigv4.http_signature(s, key, canonical), s.signature):
        raise _mismatch()
    chunks = None
    if s.payload_sha256 in (sigv4.STREAMING_SIGNED, sigv4.STREAMING_SIGNED_TRAILER):
        chunks = ChunkSigner(key, s.amz_date, sigv4.scope(s.date, s.region), s.signature)
    return Caller(user, s.payload_sha256, chunks)


def _missing_field(name: str) -> InvalidArgument:
    # S3's words for it.
    return InvalidArgument(
        f"Bucket POST must contain a field named '{name}'.  If it is specified, "
        "please check the order of the fields."
    )


async def authenticate_form(guard: Guard, fields: Mapping[str, str]) -> User | None:
    """The signer of a POST Object form (``fields`` by lower-case name): a
    Signature V4 of its base64 ``policy`` (``x-amz-algorithm``,
    ``x-amz-credential``, ``x-amz-date``, ``x-amz-signature``), with the key
    its credential names, or a Signature V2 of it (``AWSAccessKeyId``,
    ``signature``). None: a form without policy nor signature, an anonymous
    upload. A policy without a signature, or the reverse, is InvalidArgument
    naming the field missing, as S3 answers, and so is a form with fields of
    both signatures. Signatures are not checked when the cluster checks none
    (auth disabled)."""
    version = sigv4.post_signature_version(fields)
    if version == 0 and "policy" not in fields:
        return None
    if version == 2:
        return await _v2_form(guard, fields)
    for name in ("policy", *sigv4.POST_FIELDS):
        if not fields.get(name):
            raise _missing_field(name)
    signed = sigv4.parse_post(fields)
    if not guard.enabled:
        return None
    user, secret = await _secret_of(guard, signed.access_key_id)
    key = guard.signing_key(signed.access_key_id, secret, signed)
    if not sigv4.matches(sigv4.post_signature(key, fields["policy"]), signed.signature):
        raise _mismatch()
    return user


async def _v2_form(guard: Guard, fields: Mapping[str, str]) -> User | None:
    """A Signature V2 form: its ``signature`` the base64 HMAC-SHA1 of its
    policy as sent, with the secret of its ``AWSAccessKeyId``."""
    for name in ("policy", "AWSAccessKeyId", "signature"):  # as S3 names them
        if not fields.get(name.lower()):
            raise _missing_field(name)
    if not guard.enabled:
        return None
    user, secret = await _secret_of(guard, fields["awsaccesskeyid"])
    if not sigv4.matches(sigv4.v2_post_signature(secret, fields["policy"]), fields["signature"]):
        raise _mismatch()
    return user


async def _v2_presigned(
    guard: Guard,
    method: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    resource: str,
) -> Caller:
    """A Signature Version 2 presigned URL (the aws CLI v1's ``s3 presign``,
    s3cmd's ``signurl``): its body is not signed (UNSIGNED-PAYLOAD)."""
    v2 = sigv4.parse_v2_presigned(dict(reversed(query)))
    user, secret = await _secret_of(guard, v2.access_key_id)
    # A link to a bucket names /BUCKET; its signer may have signed /BUCKET/
    # (botocore does, as V2 writes a bucket's resource).
    resources = [resource, resource + "/"] if resource.count("/") == 1 else [resource]
    wants = (
        sigv4.v2_signature(secret, sigv4.v2_string_to_sign(method, headers, v2.expires, r, query))
        for r in resources
    )
    if not any(sigv4.matches(want, v2.signature) for want in wants):
        raise _mismatch()
    return Caller(user, sigv4.UNSIGNED_PAYLOAD)
