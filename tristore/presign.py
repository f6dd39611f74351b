"""Presigned URLs of the S3 HTTP API: SigV4 query authentication, signed with
an access key and no call to the cluster (what boto3's
``generate_presigned_url`` makes). The SDK's ``presign_url`` and
``tristore presign`` both come here; node/s3/auth.py checks them. And
presigned POST forms (what boto3's ``generate_presigned_post`` makes, signed
with SigV4): a page's browser upload, which node/s3/post.py checks."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tristore import errors, sigv4, validation
from tristore.credentials import Signer
from tristore.model import check_version_id

#: What a presigned URL may do, and for how long at most (S3's 7 days).
PRESIGN_METHODS = ("GET", "HEAD", "PUT", "DELETE")
MAX_PRESIGN_EXPIRES_S = sigv4.MAX_PRESIGN_S
#: Where the S3 HTTP API is, as `tristore dev up` exports it (the aws CLI and
#: boto3 read the same variable).
S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL"


def check_expires_in(expires_in: object) -> int:
    """Seconds a URL lives: 1 to 604,800 (7 days, S3's limit); else InvalidArgument."""
    if (
        not isinstance(expires_in, int)
        or isinstance(expires_in, bool)
        or not 1 <= expires_in <= MAX_PRESIGN_EXPIRES_S
    ):
        raise errors.InvalidArgument(
            f"expires_in must be 1 to {MAX_PRESIGN_EXPIRES_S} seconds (7 days), not {expires_in!r}"
        )
    return expires_in


def s3_base_url(endpoint_url: str | None) -> tuple[str, str]:
    """(scheme, host:port) of the S3 API's base URL: ``endpoint_url``, else
    ``$AWS_ENDPOINT_URL``; InvalidArgument when neither is a base URL."""
    base = endpoint_url or os.environ.get(S3_ENDPOINT_ENV, "")
    if not base:
        raise errors.InvalidArgument(
            f"no S3 API URL to presign for: give endpoint_url (tristore presign: "
            f"--s3-endpoint https://HOST:PORT) or set {S3_ENDPOINT_ENV}, as `tristore dev up` "
            "prints it"
        )
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise errors.InvalidArgument(
            f"endpoint_url {base!r} is not the S3 API's base URL (https://HOST:PORT; "
            f"`tristore dev up` prints it as {S3_ENDPOINT_ENV})"
        )
    return parts.scheme, parts.netloc


def _signing(signer: Signer | None, expires_in: int, what: str) -> Signer:
    """The signer of ``what``, its lifetime checked; InvalidArgument without one."""
    check_expires_in(expires_in)
    if signer is None:
        raise errors.InvalidArgument(
            f"{what} is signed with an access key: give the client credentials "
            "(or set TRISTORE_ACCESS_KEY_ID and TRISTORE_SECRET_ACCESS_KEY)"
        )
    return signer


def presign_url(
    signer: Signer | None,
    bucket: str,
    key: str,
    *,
    method: str = "GET",
    expires_in: int = 3600,
    version_id: str | None = None,
    endpoint_url: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """A presigned URL for ``method`` (GET, HEAD, PUT or DELETE) on one object,
    valid ``expires_in`` seconds from ``now``, as ``signer``'s access key may."""
    validation.check_bucket_name(bucket)
    validation.check_key(key)
    method = method.upper()
    if method not in PRESIGN_METHODS:
        raise errors.InvalidArgument(
            f"a presigned URL is for {', '.join(PRESIGN_METHODS)}, not {method!r}"
        )
    signer = _signing(signer, expires_in, "a presigned URL")
    scheme, netloc = s3_base_url(endpoint_url)
    query = [("versionId", check_version_id(version_id))] if version_id else []
    path = f"/{bucket}/{key}"
    signed = signer.presign(method, path, netloc, expires_in, query, now)
    encoded = sigv4.uri_encode(path, encode_slash=False)
    return f"{scheme}://{netloc}{encoded}?{urlencode(signed, quote_via=quote)}"


#: A key that ends so takes the uploaded file's name there (S3's form field).
FILENAME = "${filename}"


@dataclass(frozen=True)
class PresignedPost:
    """A browser upload form: POST ``url`` as multipart/form-data with each
    of ``fields`` and, last, the ``file``."""

    url: str
    fields: dict[str, str]


def presign_post(
    signer: Signer | None,
    bucket: str,
    key: str,
    *,
    expires_in: int = 3600,
    fields: Mapping[str, str] | None = None,
    conditions: Sequence[Mapping[str, str] | Sequence[Any]] = (),
    endpoint_url: str | None = None,
    now: dt.datetime | None = None,
) -> PresignedPost:
    """A POST Object form for ``key`` in ``bucket``, good for ``expires_in``
    seconds from ``now``, as ``signer``'s access key may (it must be allowed
    s3:PutObject there when the form is used).

    A key ending in ``${filename}`` takes the uploaded file's name there.
    ``fields``: more form fields (``Content-Type``, ``acl``, ``x-amz-meta-*``,
    ``success_action_status``...), each also made an exact-match condition
    unless ``conditions`` names it already. ``conditions``: more of S3's
    policy conditions, as boto3 takes them (``["content-length-range", 1,
    10485760]``, ``["starts-with", "$Content-Type", "image/"]``,
    ``{"acl": "public-read"}``).
    """
    validation.check_bucket_name(bucket)
    # A ${filename} key is a prefix the file's name completes.
    prefix = key.removesuffix(FILENAME) if key.endswith(FILENAME) else None
    if prefix != "":
        validation.check_key(key if prefix is None else prefix)
    signer = _signing(signer, expires_in, "a presigned POST form")
    scheme, netloc = s3_base_url(endpoint_url)
    extra = dict(fields or {})
    for reserved in ("key", "bucket", "file", "policy"):
        if any(name.lower() == reserved for name in extra):
            raise errors.InvalidArgument(f"fields may not set {reserved!r}: it is the form's own")
    named = {_condition_field(c) for c in conditions}
    conds: list[Any] = [dict(c) if isinstance(c, Mapping) else list(c) for c in conditions]
    conds += [{k: v} for k, v in extra.items() if k.lower() not in named]
    conds.append({"bucket": bucket})
    conds.append({"key": key} if prefix is None else ["starts-with", "$key", prefix])
    now = now or dt.datetime.now(dt.UTC)
    expiration = (now + dt.timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def policy(credential: str, amz_date: str) -> str:
        signed = [
            {"x-amz-algorithm": sigv4.ALGORITHM},
            {"x-amz-credential": credential},
            {"x-amz-date": amz_date},
        ]
        doc = {"expiration": expiration, "conditions": [*conds, *signed]}
        return base64.b64encode(json.dumps(doc).encode()).decode()

    form = {**extra, "key": key, **signer.post_fields(policy, now)}
    return PresignedPost(f"{scheme}://{netloc}/{quote(bucket)}", form)


def _condition_field(c: Mapping[str, str] | Sequence[Any]) -> str:
    """The form field a condition names, lower-case ("" for content-length-range)."""
    if isinstance(c, Mapping):
        if len(c) != 1:
            raise errors.InvalidArgument(f"a condition names one field: {dict(c)!r}")
        return str(next(iter(c))).lower()
    if len(c) != 3 or not isinstance(c[0], str):
        raise errors.InvalidArgument(f"a condition is [op, field, value]: {list(c)!r}")
    if c[0].lower() == "content-length-range":
        return ""
    return str(c[1]).lstrip("$").lower()
