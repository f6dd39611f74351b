"""CORS over the S3 HTTP API: preflights (``OPTIONS``, answered without
authentication, as S3 answers them) and the ``Access-Control-*`` headers of
cross-origin requests, both from the bucket's rules (tristore/cors.py).

The rules come from the bucket entry the guard caches for authorization
(node/guard.py, with the bucket's owner and policy): a request without an
``Origin`` header never looks at them, and one with it reads nothing its
authorization does not read anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from node.guard import Guard
from node.s3.call import Base, Call, empty
from tristore import cors
from tristore.errors import AccessForbidden, BadRequest, TristoreError

#: What S3 varies a CORS answer by.
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
#: S3's words (its spelling too) for a preflight no rule allows.
NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution "
    "of Origin, request method / Access-Control-Request-Method or "
    "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."
)
NOT_ENABLED = "CORSResponse: CORS is not enabled for this bucket."


def headers(m: cors.Match, allow_headers: Sequence[str] = ()) -> dict[str, str]:
    """The Access-Control-* headers of an allowed request (``allow_headers``:
    a preflight's requested headers, echoed)."""
    out = {
        "Access-Control-Allow-Origin": m.allow_origin,
        "Access-Control-Allow-Methods": ", ".join(m.rule.allowed_methods),
        "Vary": VARY,
    }
    if allow_headers:
        out["Access-Control-Allow-Headers"] = ", ".join(h.lower() for h in allow_headers)
    if m.rule.expose_headers:
        out["Access-Control-Expose-Headers"] = ", ".join(m.rule.expose_headers)
    if m.rule.max_age_seconds is not None:
        out["Access-Control-Max-Age"] = str(m.rule.max_age_seconds)
    if m.credentials:
        out["Access-Control-Allow-Credentials"] = "true"
    return out


async def for_request(guard: Guard, bucket: str, origin: str, method: str) -> dict[str, str]:
    """The CORS headers of an actual (not preflight) request with an Origin:
    none when the bucket has no rule for it, or its rules cannot be read now
    (the request itself then says what is wrong)."""
    if not bucket:
        return {}
    try:
        rules = await guard.bucket_cors(bucket)
    except TristoreError:
        return {}
    m = cors.match(rules, origin, method)
    return headers(m) if m is not None else {}


class CorsHandlers(Base):
    """The preflight (the Get/Put/DeleteBucketCors operations are bucket
    handlers, node/s3/buckets.py)."""

    async def preflight(self, call: Call) -> web.StreamResponse:
        """``OPTIONS /BUCKET[/KEY]``: unauthenticated (browsers send no
        credentials with a preflight); 200 with the first allowing rule's
        headers, 403 AccessForbidden when none allows it (or the bucket has
        no CORS configuration, or does not exist: an anonymous caller learns
        nothing), 400 without Origin or a valid Access-Control-Request-Method."""
        origin = call.headers.get("origin")
        if not origin:
            raise BadRequest("Insufficient information. Origin request header needed.")
        method = call.headers.get("access-control-request-method", "")
        if method not in cors.METHODS:
            raise BadRequest(f"Invalid Access-Control-Request-Method: {method or 'null'}")
        rules = await self.guard.bucket_cors(call.bucket)
        if not rules:
            raise AccessForbidden(NOT_ENABLED)
        asked = cors.request_headers(call.headers.get("access-control-request-headers"))
        m = cors.match(rules, origin, method, asked)
        if m is None:
            raise AccessForbidden(NOT_ALLOWED)
        return empty(headers=headers(m, asked))
