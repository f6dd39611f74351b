"""Presigned URLs of the S3 HTTP API: SigV4 query authentication, signed with
an access key and no call to the cluster (what boto3's
``generate_presigned_url`` makes). The SDK's ``presign_url`` and
``tristore presign`` both come here; node/s3/auth.py checks them."""

from __future__ import annotations

import datetime as dt
import os
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
    check_expires_in(expires_in)
    if signer is None:
        raise errors.InvalidArgument(
            "a presigned URL is signed with an access key: give the client credentials "
            "(or set TRISTORE_ACCESS_KEY_ID and TRISTORE_SECRET_ACCESS_KEY)"
        )
    scheme, netloc = s3_base_url(endpoint_url)
    query = [("versionId", check_version_id(version_id))] if version_id else []
    path = f"/{bucket}/{key}"
    signed = signer.presign(method, path, netloc, expires_in, query, now)
    encoded = sigv4.uri_encode(path, encode_slash=False)
    return f"{scheme}://{netloc}{encoded}?{urlencode(signed, quote_via=quote)}"
