"""The S3 HTTP client bench/compare.py drives a node's S3 door with: aiohttp,
requests signed with SigV4 (tristore.sigv4) the way boto3 signs them by
default over HTTPS, on keep-alive connections from one pool a phase.

What boto3 (1.44) sends by default over HTTPS, and so what this sends:

- PutObject: ``x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER``, an
  ``aws-chunked`` body (one chunk, then the CRC32 in a trailer,
  ``x-amz-trailer: x-amz-checksum-crc32``), ``x-amz-decoded-content-length``,
  and ``Expect: 100-continue``. The body is not covered by the signature (TLS
  carries its integrity, the CRC32 its correctness), so neither side hashes it
  with SHA-256.
- GetObject: ``x-amz-content-sha256`` of the empty body and
  ``x-amz-checksum-mode: ENABLED``.

boto3 frames the aws-chunked body with ``Transfer-Encoding: chunked``; this
sends the same bytes with a Content-Length (the node reads both alike).

Against a plaintext cluster with authentication off (``[tls] insecure`` and
``[auth] enabled = false``) requests go unsigned over HTTP with a plain body,
as anonymous calls there are taken as root's.
"""

from __future__ import annotations

import base64
import datetime as dt
import ssl
import zlib
from dataclasses import dataclass

import aiohttp

from tristore import sigv4
from tristore.credentials import Credentials

#: boto3's PutObject over HTTPS waits for ``100 Continue`` before the body.
EXPECT_100 = True
CALL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Target:
    """One cluster's S3 door: node endpoints (``HOST:PORT``), the CA to trust
    (None: plain HTTP) and the keys to sign with (None: unsigned)."""

    endpoints: tuple[str, ...]
    ca_file: str | None
    credentials: Credentials | None

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"

    @property
    def mode(self) -> str:
        """What the results say about how requests were sent."""
        if self.credentials is None:
            return f"{self.scheme}, unsigned, plain body"
        return (
            f"{self.scheme}, SigV4 as boto3 by default: PUT aws-chunked "
            f"{sigv4.STREAMING_UNSIGNED_TRAILER} + CRC32 trailer"
            f"{', Expect: 100-continue' if EXPECT_100 else ''}; GET empty-body SHA-256"
        )


class Pool:
    """One phase's connections: a connector of ``size`` keep-alive connections
    shared by its workers, closed when the last worker's session closes."""

    def __init__(self, target: Target, size: int) -> None:
        self.target = target
        ctx: ssl.SSLContext | bool = False
        if target.ca_file:
            ctx = ssl.create_default_context(cafile=target.ca_file)
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=size, limit_per_host=0, ssl=ctx),
            timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
            # No cookies, and no Accept-Encoding other than boto3's.
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"Accept-Encoding": "identity"},
            skip_auto_headers=("User-Agent",),
        )
        self._open = 0
        self._keys: dict[str, bytes] = {}

    def session(self, endpoint: str) -> S3Session:
        self._open += 1
        return S3Session(self, endpoint)

    async def release(self) -> None:
        self._open -= 1
        if self._open <= 0 and not self.http.closed:
            await self.http.close()

    def sign(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        payload: str,
        query: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Add x-amz-date, x-amz-content-sha256 and Authorization to ``headers``
        (lower-case names, ``host`` among them), signing every header given."""
        creds = self.target.credentials
        if creds is None:
            return
        when = sigv4.amz_date(dt.datetime.now(dt.UTC))
        headers["x-amz-date"] = when
        headers["x-amz-content-sha256"] = payload
        key = self._keys.get(when[:8])
        if key is None:
            key = self._keys[when[:8]] = sigv4.signing_key(
                creds.secret_access_key, when[:8], creds.region
            )
        names = sorted(headers)
        canonical = sigv4.http_canonical_request(method, path, query, headers, names, payload)
        cred_scope = sigv4.scope(when[:8], creds.region)
        sig = sigv4.signature(key, sigv4.string_to_sign(when, cred_scope, canonical))
        headers["authorization"] = (
            f"{sigv4.ALGORITHM} Credential={creds.access_key_id}/{cred_scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={sig}"
        )


def aws_chunked(data: bytes) -> tuple[bytes, str]:
    """``data`` as boto3's one-chunk aws-chunked body with a CRC32 trailer,
    and that CRC32 (base64)."""
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = b"%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % (len(data), data, crc.encode())
    return body, crc


class S3Session:
    """One worker: PUTs and GETs of ``/BUCKET/KEY`` on one node's endpoint."""

    def __init__(self, pool: Pool, endpoint: str) -> None:
        self._pool = pool
        self._host = endpoint
        self._base = f"{pool.target.scheme}://{endpoint}"
        self._closed = False

    async def put(self, bucket: str, key: str, value: bytes) -> None:
        path = f"/{bucket}/{key}"
        headers = {"host": self._host}
        signed = self._pool.target.credentials is not None
        if signed:
            body, crc = aws_chunked(value)
            headers |= {
                "content-encoding": "aws-chunked",
                "x-amz-decoded-content-length": str(len(value)),
                "x-amz-sdk-checksum-algorithm": "CRC32",
                "x-amz-trailer": "x-amz-checksum-crc32",
            }
            self._pool.sign("PUT", path, headers, sigv4.STREAMING_UNSIGNED_TRAILER)
        else:
            body, crc = value, ""
        async with self._pool.http.put(
            self._base + path, data=body, headers=headers, expect100=EXPECT_100 and signed
        ) as resp:
            text = await resp.read()
            if resp.status != 200:
                raise AssertionError(f"S3 PUT {path}: {resp.status} {text[:300]!r}")
            if crc and resp.headers.get("x-amz-checksum-crc32") != crc:
                raise AssertionError(f"S3 PUT {path}: CRC32 not echoed ({dict(resp.headers)})")

    async def get(self, bucket: str, key: str, size: int) -> None:
        path = f"/{bucket}/{key}"
        headers = {"host": self._host, "x-amz-checksum-mode": "ENABLED"}
        self._pool.sign("GET", path, headers, sigv4.EMPTY_SHA256)
        async with self._pool.http.get(self._base + path, headers=headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise AssertionError(f"S3 GET {path}: {resp.status} {data[:300]!r}")
            if len(data) != size:
                raise AssertionError(f"S3 GET {path}: {len(data)} bytes, not {size}")

    async def bucket_location(self, bucket: str) -> None:
        """GetBucketLocation: what a worker opens its connection with. (Not
        HeadBucket: aiohttp's client does not keep a connection after a HEAD
        answer without a Content-Length, so every worker would open another.)"""
        path = f"/{bucket}"
        headers = {"host": self._host}
        self._pool.sign("GET", path, headers, sigv4.EMPTY_SHA256, (("location", ""),))
        async with self._pool.http.get(self._base + path + "?location=", headers=headers) as resp:
            text = await resp.read()
            if resp.status != 200:
                raise AssertionError(f"S3 GET {path}?location: {resp.status} {text[:300]!r}")

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._pool.release()
