"""The S3 HTTP endpoint of a node: an aiohttp server on the node's own event
loop, started and stopped with the node (node/server.py), HTTPS with the
node's certificate unless the cluster is ``[tls] insecure``.

A request goes: address (path style: ``/BUCKET/KEY``) → authentication
(node/s3/auth.py) → the operation its method, target and sub-resource name
(:data:`ROUTES`) → the handler (node/s3/handlers.py), which authorizes and
calls the Coordinator. Every error is S3's XML with S3's status
(tristore.errors.HTTP_STATUS); an operation not offered is NotImplemented.

CORS (node/s3/cors.py): an ``OPTIONS`` on a bucket or object is a preflight,
answered without authentication whatever its query; any other request with an
``Origin`` header gets the bucket's Access-Control-* headers when a rule
allows it, on its answer whatever it is (errors too, streamed answers too).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.web_urldispatcher import _default_expect_handler

from node.coordinator import Coordinator
from node.guard import Guard, count_refused, enter
from node.metrics import S3_REQUESTS, S3_SECONDS
from node.s3 import cors, xml
from node.s3 import headers as hdr
from node.s3.auth import Caller, authenticate, decode, lower_headers, query_pairs
from node.s3.call import empty
from node.s3.handlers import Call, Handlers
from tristore import errors, sigv4, tls
from tristore.config import ClusterConfig, NodeSpec
from tristore.errors import TristoreError
from tristore.server import CALLER

log = logging.getLogger(__name__)


class _StreamCut(ConnectionResetError):
    """A streamed answer cut after its headers went out (see S3Server._broken):
    logged once, as a warning, not again by aiohttp as an error with a traceback."""


def _not_a_cut(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], _StreamCut))


logging.getLogger("aiohttp.server").addFilter(_not_a_cut)

SERVICE, BUCKET, OBJECT = "service", "bucket", "object"
#: What a request carries between the Expect check and its handler.
REQUEST_ID = "s3_request_id"
STARTED = "s3_started"
OPERATION = "s3_operation"
CALL = "s3_call"
#: The Access-Control-* headers of a cross-origin request (node/s3/cors.py).
CORS = "s3_cors"
#: The operation of an OPTIONS on a bucket or object, whatever its query.
PREFLIGHT = ("PreflightRequest", "preflight")
#: Errors counted as refused requests (tristore_node_auth_refused_total), as
#: the gRPC door counts them.
_REFUSALS = (
    errors.AccessDenied,
    errors.SignatureDoesNotMatch,
    errors.InvalidAccessKeyId,
    errors.RequestTimeTooSkewed,
)
#: Query parameters that name a sub-resource (an operation other than the plain one).
SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
        "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
        "metrics", "notification", "object-lock", "ownershipControls", "policy",
        "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore",
        "retention", "select", "tagging", "torrent", "uploadId", "uploads", "versioning",
        "versions", "website",
    }
)  # fmt: skip

#: (method, target, sub-resource) -> (S3 operation, Handlers method name).
ROUTES: dict[tuple[str, str, str], tuple[str, str]] = {
    ("GET", SERVICE, ""): ("ListBuckets", "list_buckets"),
    ("PUT", BUCKET, ""): ("CreateBucket", "create_bucket"),
    ("HEAD", BUCKET, ""): ("HeadBucket", "head_bucket"),
    ("DELETE", BUCKET, ""): ("DeleteBucket", "delete_bucket"),
    ("GET", BUCKET, ""): ("ListObjects", "list_objects"),
    ("GET", BUCKET, "location"): ("GetBucketLocation", "get_bucket_location"),
    ("GET", BUCKET, "versioning"): ("GetBucketVersioning", "get_bucket_versioning"),
    ("PUT", BUCKET, "versioning"): ("PutBucketVersioning", "put_bucket_versioning"),
    ("GET", BUCKET, "versions"): ("ListObjectVersions", "list_object_versions"),
    ("GET", BUCKET, "uploads"): ("ListMultipartUploads", "list_multipart_uploads"),
    ("POST", BUCKET, "delete"): ("DeleteObjects", "delete_objects"),
    ("POST", BUCKET, ""): ("PostObject", "post_object"),
    ("GET", BUCKET, "policy"): ("GetBucketPolicy", "get_bucket_policy"),
    ("PUT", BUCKET, "policy"): ("PutBucketPolicy", "put_bucket_policy"),
    ("DELETE", BUCKET, "policy"): ("DeleteBucketPolicy", "delete_bucket_policy"),
    ("GET", BUCKET, "encryption"): ("GetBucketEncryption", "get_bucket_encryption"),
    ("PUT", BUCKET, "encryption"): ("PutBucketEncryption", "put_bucket_encryption"),
    ("DELETE", BUCKET, "encryption"): ("DeleteBucketEncryption", "delete_bucket_encryption"),
    ("GET", BUCKET, "replication"): ("GetBucketReplication", "get_bucket_replication"),
    ("PUT", BUCKET, "replication"): ("PutBucketReplication", "put_bucket_replication"),
    ("DELETE", BUCKET, "replication"): ("DeleteBucketReplication", "delete_bucket_replication"),
    ("PUT", OBJECT, ""): ("PutObject", "put_object"),
    ("GET", OBJECT, ""): ("GetObject", "get_object"),
    ("HEAD", OBJECT, ""): ("HeadObject", "head_object"),
    ("DELETE", OBJECT, ""): ("DeleteObject", "delete_object"),
    ("GET", OBJECT, "tagging"): ("GetObjectTagging", "get_object_tagging"),
    ("PUT", OBJECT, "tagging"): ("PutObjectTagging", "put_object_tagging"),
    ("DELETE", OBJECT, "tagging"): ("DeleteObjectTagging", "delete_object_tagging"),
    ("GET", OBJECT, "acl"): ("GetObjectAcl", "get_object_acl"),
    ("GET", OBJECT, "attributes"): ("GetObjectAttributes", "get_object_attributes"),
    ("PUT", OBJECT, "acl"): ("PutObjectAcl", "put_object_acl"),
    ("POST", OBJECT, "uploads"): ("CreateMultipartUpload", "create_multipart_upload"),
    ("PUT", OBJECT, "uploadId"): ("UploadPart", "upload_part"),
    ("POST", OBJECT, "uploadId"): ("CompleteMultipartUpload", "complete_multipart_upload"),
    ("DELETE", OBJECT, "uploadId"): ("AbortMultipartUpload", "abort_multipart_upload"),
    ("GET", OBJECT, "uploadId"): ("ListParts", "list_parts"),
    ("GET", BUCKET, "cors"): ("GetBucketCors", "get_bucket_cors"),
    ("PUT", BUCKET, "cors"): ("PutBucketCors", "put_bucket_cors"),
    ("DELETE", BUCKET, "cors"): ("DeleteBucketCors", "delete_bucket_cors"),
    ("GET", BUCKET, "tagging"): ("GetBucketTagging", "get_bucket_tagging"),
    ("PUT", BUCKET, "tagging"): ("PutBucketTagging", "put_bucket_tagging"),
    ("DELETE", BUCKET, "tagging"): ("DeleteBucketTagging", "delete_bucket_tagging"),
    ("GET", BUCKET, "acl"): ("GetBucketAcl", "get_bucket_acl"),
    ("PUT", BUCKET, "acl"): ("PutBucketAcl", "put_bucket_acl"),
    # Configurations not offered (node/s3/configs.py): none, as S3 answers it.
    ("GET", BUCKET, "lifecycle"): ("GetBucketLifecycleConfiguration", "get_bucket_lifecycle"),
    ("DELETE", BUCKET, "lifecycle"): ("DeleteBucketLifecycle", "delete_bucket_lifecycle"),
    ("GET", BUCKET, "website"): ("GetBucketWebsite", "get_bucket_website"),
    ("DELETE", BUCKET, "website"): ("DeleteBucketWebsite", "delete_bucket_website"),
    ("GET", BUCKET, "logging"): ("GetBucketLogging", "get_bucket_logging"),
    ("GET", BUCKET, "notification"): (
        "GetBucketNotificationConfiguration",
        "get_bucket_notification",
    ),
    ("GET", BUCKET, "object-lock"): (
        "GetObjectLockConfiguration",
        "get_object_lock_configuration",
    ),
    ("GET", BUCKET, "publicAccessBlock"): ("GetPublicAccessBlock", "get_public_access_block"),
    ("GET", BUCKET, "ownershipControls"): (
        "GetBucketOwnershipControls",
        "get_bucket_ownership_controls",
    ),
    ("GET", BUCKET, "accelerate"): ("GetBucketAccelerateConfiguration", "get_bucket_accelerate"),
    ("GET", BUCKET, "requestPayment"): ("GetBucketRequestPayment", "get_bucket_request_payment"),
    ("OPTIONS", BUCKET, ""): PREFLIGHT,
    ("OPTIONS", OBJECT, ""): PREFLIGHT,
}

#: Bucket sub-resources whose configuration tristore does not offer: reading
#: one answers "none" (above); setting one is NotImplemented naming this.
UNOFFERED = {
    "lifecycle": "lifecycle configurations (expiration and transition rules)",
    "website": "static website hosting",
    "logging": "server access logging",
    "notification": (
        "S3 event notification configurations (tristore's own events are "
        "subscribed to over gRPC: tristore events)"
    ),
    "object-lock": "Object Lock",
    "publicAccessBlock": "public access block configurations",
    "ownershipControls": "object ownership controls",
    "accelerate": "transfer acceleration",
    "requestPayment": "Requester Pays",
}


def route(method: str, bucket: str, key: str, query: dict[str, str]) -> tuple[str, str]:
    """The (operation, handler name) of a request; NotImplemented when none."""
    target = OBJECT if key else BUCKET if bucket else SERVICE
    if method == "OPTIONS" and target != SERVICE:
        return PREFLIGHT  # a preflight of any operation (UploadPart's ?uploadId too)
    subs = sorted(n for n in query if n in SUBRESOURCES)
    sub = subs[0] if subs else ""
    if "uploadId" in subs:
        sub = "uploadId"  # ?uploadId beside ?partNumber, never with another
    found = ROUTES.get((method, target, sub))
    if found is None:
        what = f"{method} on a {target}" + (f" with ?{sub}" if sub else "")
        if target == BUCKET and sub in UNOFFERED:
            raise errors.NotImplemented(
                f"{what} is not supported by this S3 endpoint: tristore does not offer "
                f"{UNOFFERED[sub]}"
            )
        raise errors.NotImplemented(f"{what} is not supported by this S3 endpoint")
    return found


def split_path(raw_path: str, host: str = "", domain: str = "") -> tuple[str, str]:
    """The (bucket, key) a request addresses: virtual-host style when its Host
    is ``BUCKET.<domain>`` (the whole path is the key), else path style
    (``/BUCKET/KEY``). ``raw_path`` as sent (encoded)."""
    return _split(raw_path, virtual_bucket(host, domain))


def _split(raw_path: str, virtual: str) -> tuple[str, str]:
    """:func:`split_path` with the bucket the Host names (``virtual``; "":
    path style) known already."""
    path = decode(raw_path, "the request path")
    if virtual:
        return virtual, path[1:] if path.startswith("/") else path
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def virtual_bucket(host: str, domain: str) -> str:
    """The bucket a virtual-host style Host names (``BUCKET.<domain>``), else ""."""
    if not domain:
        return ""
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    name = name.rstrip(".").lower()
    suffix = "." + domain.lower()
    if name.endswith(suffix) and len(name) > len(suffix):
        return name[: -len(suffix)]
    return ""


def host_id(node: str) -> str:
    """The node's S3 host id (x-amz-id-2, an error document's HostId): what a
    support ticket names beside the request id, the same for every answer of
    one node (a hash of its name, as MinIO's is of its deployment)."""
    return base64.b64encode(hashlib.sha256(f"tristore:{node}".encode()).digest()).decode()


async def _stamp(host: str, request: web.Request, response: web.StreamResponse) -> None:
    """Every answer names its request (x-amz-request-id) and the node that
    answered (x-amz-id-2), streamed ones too, and the server without its
    library's version; a cross-origin one carries its CORS headers."""
    response.headers["x-amz-request-id"] = request.get(REQUEST_ID, "")
    response.headers["x-amz-id-2"] = host
    response.headers["Server"] = "tristore"
    allowed = request.get(CORS)
    if allowed:
        response.headers.update(allowed)


def _error(
    err: TristoreError, resource: str, request_id: str, head: bool, host: str = ""
) -> web.Response:
    status = errors.http_status(err)
    headers = hdr.error_headers(err)
    if head or status == 304:  # HEAD and Not Modified carry no body, as S3's
        return empty(status, headers)
    extra: dict[str, object] = {}
    if isinstance(err, errors.InvalidRange) and err.object_size is not None:
        extra["ActualObjectSize"] = err.object_size
    body = xml.error(err.code, err.message, resource, request_id, extra, host)
    return web.Response(status=status, body=body, content_type=xml.CONTENT_TYPE, headers=headers)


class S3Server:
    """The S3 HTTP endpoint of one node."""

    def __init__(self, cfg: ClusterConfig, me: NodeSpec, coord: Coordinator, guard: Guard) -> None:
        self.cfg = cfg
        self.me = me
        self.guard = guard
        self.region = sigv4.DEFAULT_REGION
        self.host_id = host_id(me.name)
        self.handlers = Handlers(coord, guard, self.region)
        self._bound: dict[str, Callable[[Call], Any]] = {
            name: getattr(self.handlers, name) for _, name in ROUTES.values()
        }
        self._runner: web.AppRunner | None = None
        self.secure = not cfg.tls.insecure
        self.domain = cfg.node.s3_domain.strip(".")
        self._certs: tls.Reloader | None = None
        self._served = 0
        #: The context of the newest certificate (handshakes switch to it).
        self._newest: ssl.SSLContext | None = None
        self._stopping: asyncio.Task[None] | None = None
        #: How long requests in flight get when the node stops (gRPC's grace too).
        self.grace_s = 5.0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=xml.MAX_REQUEST_XML)
        # Every path (a key's LF too: `.` would not match it, and the request
        # would get aiohttp's bare 404): the handler reads the raw path itself.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.handle, expect_handler=self.expect)
        app.on_response_prepare.append(functools.partial(_stamp, self.host_id))
        return app

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.secure:
            return None
        files = self.cfg.tls_files(self.me.name)
        self._certs = tls.Reloader(files)
        ctx = self._context()
        ctx.sni_callback = self._on_hello
        self._newest = ctx
        self._served = self._certs.generation
        return ctx

    def _context(self) -> ssl.SSLContext:
        assert self._certs is not None
        files = self._certs.files
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(files.cert), str(files.key))
        return ctx

    def _on_hello(self, conn: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        """At each handshake (OpenSSL calls it on every ClientHello, with or
        without a server name): a renewed certificate (the node's files
        replaced) is served from this handshake on, as the gRPC ports do. A
        few ``stat`` calls, no timer."""
        assert self._certs is not None and self._newest is not None
        self._certs.refresh()
        if self._certs.generation != self._served:
            self._served = self._certs.generation
            try:
                self._newest = self._context()
            except (OSError, ssl.SSLError) as exc:
                log.warning("S3 endpoint: the new certificate cannot be loaded: %s", exc)
            else:
                log.info("S3 endpoint: serving certificate serial %x", self._certs.serial)
        if self._newest is not ctx:
            conn.context = self._newest

    async def start(self) -> None:
        if not self.me.s3:
            return
        host, _, port = self.me.s3.rpartition(":")
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=self.grace_s
        )
        await self._runner.setup()
        ctx = self._ssl()
        site = web.TCPSite(self._runner, host or "127.0.0.1", int(port), ssl_context=ctx)
        await site.start()
        log.info(
            "S3 HTTP API on %s://%s (%s)",
            "https" if self.secure else "http",
            self.me.s3,
            f"path style, and virtual-host style under {self.domain}"
            if self.domain
            else "path-style addressing",
        )

    async def stop(self) -> None:
        """Stop listening, give requests in flight ``grace_s`` to finish, close.
        Idempotent: the node calls it when it starts stopping (beside gRPC's
        own grace period) and again in its on_stop."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _call(self, request: web.Request) -> tuple[str, str, Call]:
        """Address, route and authenticate a request: (operation, handler
        name, the call). Once a request (the Expect: 100-continue check made
        it before the body was sent)."""
        made = request.get(CALL)
        if made is not None:
            enter(made[2].caller.user)
            return made
        raw_path = request.rel_url.raw_path
        virtual = virtual_bucket(request.host, self.domain)
        bucket, key = _split(raw_path, virtual)
        pairs = query_pairs(request.rel_url.raw_query_string)
        query = dict(reversed(pairs))
        headers = lower_headers(list(request.headers.items()))
        operation, name = route(request.method, bucket, key, query)
        request[OPERATION] = operation
        if (operation, name) == PREFLIGHT:
            enter(None)  # browsers send a preflight without credentials
            caller = Caller(None)
        else:
            caller = await self._authenticate(request, raw_path, pairs, headers)
        ctx = {
            "aws:SourceIp": request.remote or "",
            "aws:SecureTransport": str(self.secure).lower(),
        }
        await self._expected_owners(bucket, headers)
        call = Call(
            request,
            request[REQUEST_ID],
            bucket,
            key,
            query,
            headers,
            caller,
            ctx,
            virtual=bool(virtual),
        )
        request[CALL] = made = (operation, name, call)
        return made

    async def _expected_owners(self, bucket: str, headers: dict[str, str]) -> None:
        """The owners a request expects of its bucket and a copy's source
        bucket (x-amz-expected-bucket-owner, x-amz-source-expected-bucket-owner):
        AccessDenied when another user owns it (:meth:`Guard.expected_owner`)."""
        expected = headers.get("x-amz-expected-bucket-owner")
        if expected is not None and bucket:
            await self.guard.expected_owner(bucket, expected, "x-amz-expected-bucket-owner")
        expected = headers.get("x-amz-source-expected-bucket-owner")
        if expected is not None and "x-amz-copy-source" in headers:
            source = hdr.copy_source(headers["x-amz-copy-source"])[0]
            await self.guard.expected_owner(source, expected, "x-amz-source-expected-bucket-owner")

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: authenticate before asking for the body,
        so a wrongly signed upload is refused before it is sent."""
        request[REQUEST_ID] = os.urandom(8).hex().upper()
        request[STARTED] = time.monotonic()
        await self._cors(request)
        try:
            await self._call(request)
        except TristoreError as e:
            refusal = self._refusal(request, e)
            # The client holds its body back: what it sends next on this
            # connection could be that body or its next request, which the
            # server cannot tell apart. S3 closes it too.
            refusal.force_close()
            return self._answer(request, refusal)
        await _default_expect_handler(request)  # aiohttp's own: 100 Continue
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if REQUEST_ID not in request:
            request[REQUEST_ID] = os.urandom(8).hex().upper()
            request[STARTED] = time.monotonic()
            await self._cors(request)
        call: Call | None = None
        try:
            _, name, call = await self._call(request)
            resp = await self._bound[name](call)
        except TristoreError as e:
            if call is not None and call.prepared:
                return self._broken(request, e)
            resp = self._refusal(request, e)
        except Exception as e:  # answered as S3's InternalError
            if call is not None and call.prepared:
                return self._broken(request, e)
            log.exception("S3 %s failed", request.get(OPERATION, "Unknown"))
            resp = self._refusal(request, errors.InternalError(f"{type(e).__name__}: {e}"))
        finally:
            # The call names the request and the request held the call: left
            # so, every request's objects (~30: its headers, streams, match
            # info) waited for the cyclic collector, whose runs then freed
            # ~30,000 at a time and stopped the node's loop for 85-155 ms.
            request.pop(CALL, None)
        return self._answer(request, resp)

    async def _cors(self, request: web.Request) -> None:
        """Look up the CORS headers of a cross-origin request (one with an
        Origin, not a preflight) before it is handled, so that its answer
        carries them whatever it is. Costs nothing without an Origin."""
        origin = request.headers.get("Origin")
        if not origin or request.method == "OPTIONS":
            return
        try:
            bucket, _ = split_path(request.rel_url.raw_path, request.host, self.domain)
        except TristoreError:
            return
        request[CORS] = await cors.for_request(self.guard, bucket, origin, request.method)

    def _refusal(self, request: web.Request, e: TristoreError) -> web.Response:
        if isinstance(e, _REFUSALS):
            count_refused(e)
        resource = unquote(request.rel_url.raw_path)
        return _error(e, resource, request[REQUEST_ID], request.method == "HEAD", self.host_id)

    def _answer(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        operation = request.get(OPERATION, "Unknown")
        S3_REQUESTS.labels(operation, str(resp.status)).inc()
        S3_SECONDS.labels(operation).observe(time.monotonic() - request[STARTED])
        return resp

    async def _authenticate(
        self,
        request: web.Request,
        raw_path: str,
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
    ) -> Caller:
        if not self.guard.enabled:
            CALLER.set("root")
            return Caller(None, headers.get("x-amz-content-sha256", ""))
        path = decode(raw_path, "the request path")
        # A V2 signature covers the path-style path: /BUCKET before a
        # virtual-host request's own.
        bucket = virtual_bucket(request.host, self.domain)
        v2_resource = f"/{bucket}{raw_path}" if bucket else raw_path
        caller = await authenticate(
            self.guard, request.method, path, pairs, headers, v2_resource=v2_resource
        )
        enter(caller.user)
        return caller

    def _broken(self, request: web.Request, exc: BaseException) -> web.StreamResponse:
        """An error after a streamed answer's headers went out: nothing is left
        to say it with but cutting the connection (the client sees a short body)."""
        operation = request.get(OPERATION, "Unknown")
        log.warning("S3 %s failed while streaming: %s", operation, exc)
        S3_REQUESTS.labels(operation, "aborted").inc()
        if request.transport is not None:
            request.transport.close()
        raise _StreamCut(f"S3 {operation} failed while streaming")
