"""AsyncClient: the asyncio SDK.

The sync :class:`tristore.client.Client` runs this same code on a private event
loop, so there is one implementation of validation, failover and retries.

Every call validates its input first (a bad call raises the S3 error the server
would, before any network traffic), then runs on one endpoint; an error whose
``retriable`` flag is set moves it to the next endpoint after a short backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import grpc

from tristore import convert, cors, errors, presign, validation
from tristore.client._body import Body, BodyInput, BytesBody, make_body
from tristore.client._transport import (
    CLUSTER_WIDE,
    Endpoint,
    RetryPolicy,
    has_server_code,
    parse_endpoints,
    resolve_security,
)
from tristore.credentials import Credentials, Signer
from tristore.credentials import from_env as credentials_from_env
from tristore.events import Event, Heartbeat, message_from_pb
from tristore.model import (
    SMALL_BODY_MAX,
    AccessKeyInfo,
    Acl,
    BucketInfo,
    ByteRange,
    ClusterStatus,
    CompletedPart,
    Conditions,
    CopyResult,
    CopySource,
    DeletedObject,
    DeleteResult,
    KeyRotation,
    ListPage,
    MultipartUpload,
    ObjectInfo,
    Part,
    PartPage,
    RepairReport,
    ScrubReport,
    Tagging,
    UploadPage,
    UserInfo,
    VersionPage,
    check_version_id,
    ms_to_datetime,
)
from tristore.pb import admin_pb2, events_pb2, objects_pb2
from tristore.replication import Rule, check_rules

if TYPE_CHECKING:
    # Loaded by the calls that use them: the admin calls (the cluster map and
    # its config dataclasses) and SSE-C (cryptography), ~70 ms a CLI process.
    from tristore.clustermap import ClusterMap, MapChange, NodeConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A byte range: ByteRange, ``(start, end)`` (inclusive; end None or -1 = to
#: the end; start < 0 = the last -start bytes), or an HTTP ``"bytes=A-B"`` string.
RangeSpec = ByteRange | tuple[int, int | None] | str
#: Called with the total number of body bytes sent so far (restarts from 0 when
#: a retry sends the body again).
Progress = Callable[[int], object]

DEFAULT_TIMEOUT_S = 15.0


def coerce_range(spec: RangeSpec | None) -> ByteRange | None:
    """Check a user's range and turn it into a ByteRange (InvalidRange if malformed)."""
    if spec is None:
        return None
    if isinstance(spec, ByteRange):
        if spec.empty_suffix:  # as "bytes=-0" (the wire's range cannot carry it)
            raise errors.InvalidRange("range asks for the last 0 bytes; nothing satisfies it")
        start, end = spec.start, spec.end
    elif isinstance(spec, str):
        start, end = validation.parse_range_header(spec)
    elif isinstance(spec, tuple) and len(spec) == 2:
        start, end = spec[0], -1 if spec[1] is None else spec[1]
    else:
        raise errors.InvalidRange(
            "range must be a ByteRange, a (start, end) tuple or a 'bytes=A-B' string"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise errors.InvalidRange(f"range bounds must be integers, got ({start!r}, {end!r})")
    bound = validation.MAX_RANGE_BOUND
    if not all(-bound <= v <= bound for v in (start, end)):
        raise errors.InvalidRange(f"range ({start}, {end}) reaches past the largest object")
    if start < 0 and end >= 0:
        raise errors.InvalidRange("a suffix range (the last N bytes) cannot also have an end")
    if start >= 0 and 0 <= end < start:
        raise errors.InvalidRange(f"range end {end} is before its start {start}")
    return ByteRange(start, -1 if end < 0 else end)


#: A key to delete, or a ``(key, version_id)`` pair.
ObjectRef = str | tuple[str, str | None]


def _object_ref(ref: ObjectRef) -> tuple[str, str]:
    """(key, version id) of a :meth:`AsyncClient.delete_objects` item, checked."""
    if isinstance(ref, str):
        key, version_id = ref, None
    elif isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], str):
        key, version_id = ref
    else:
        raise errors.InvalidArgument(
            f"delete_objects takes keys or (key, version_id) pairs, not {ref!r}"
        )
    validation.check_key(key)
    return key, check_version_id(version_id)


def _check_etag(what: str, etag: str) -> str:
    if not isinstance(etag, str) or any(c in etag for c in "\r\n\x00"):
        raise errors.InvalidArgument(f"{what} must be an ETag string without CR, LF or NUL")
    return etag


def _check_time(what: str, t: dt.datetime | None) -> None:
    if t is None:
        return
    if not isinstance(t, dt.datetime) or t.utcoffset() is None:
        raise errors.InvalidArgument(f"{what} must be a timezone-aware datetime, got {t!r}")


def check_conditions(conditions: Conditions | None) -> Conditions | None:
    """GET/HEAD/copy-source preconditions; None (or all empty) means none."""
    if conditions is None:
        return None
    if not isinstance(conditions, Conditions):
        raise errors.InvalidArgument(
            f"conditions must be a tristore.Conditions, got {type(conditions).__name__}"
        )
    _check_etag("if_match", conditions.if_match)
    _check_etag("if_none_match", conditions.if_none_match)
    _check_time("if_modified_since", conditions.if_modified_since)
    _check_time("if_unmodified_since", conditions.if_unmodified_since)
    return conditions if conditions else None


def new_request_id() -> str:
    """A call's id, sent with each of its attempts (32 hex digits)."""
    return os.urandom(16).hex()


def now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


#: Refusals that say the attempt wrote nothing: a retry after one of them is a
#: fresh attempt, not a resend.
_NOTHING_WRITTEN = (errors.ClientError, errors.SlowDown)


def may_have_taken_effect(exc: grpc.aio.AioRpcError | errors.TristoreError) -> bool:
    """Whether a failed write attempt may have taken effect all the same: any
    failure but a refusal the node answered before writing (a client error, a
    conditional conflict, SlowDown). A transport error, a timeout or an
    unavailable quorum may come after the change reached some replicas."""
    if isinstance(exc, grpc.aio.AioRpcError):
        if not has_server_code(exc):
            return True
        exc = errors.from_rpc_error(exc)
    return not isinstance(exc, _NOTHING_WRITTEN)


def _check_part(part_number: int | None) -> int:
    """A GET's or HEAD's part number (0: none): 1 to 10,000 (InvalidArgument)."""
    if part_number is None:
        return 0
    if isinstance(part_number, bool) or not isinstance(part_number, int):
        raise errors.InvalidArgument(f"part_number must be an integer, not {part_number!r}")
    return validation.check_part_number(part_number)


def check_put_conditions(if_none_match: str | None, if_match: str | None) -> tuple[str, str]:
    """A conditional PUT: ``if_none_match="*"`` (create only) or ``if_match=ETAG``
    (replace only that version). S3 accepts no other If-None-Match on a write."""
    if if_none_match and if_none_match != "*":
        raise errors.InvalidArgument(
            f"if_none_match on a PUT must be '*' (create only if absent), got {if_none_match!r}"
        )
    return if_none_match or "", _check_etag("if_match", if_match) if if_match else ""


def _check_prefix(what: str, prefix: str) -> None:
    if len(prefix.encode("utf-8", errors="surrogatepass")) > validation.MAX_KEY_BYTES:
        raise errors.InvalidArgument(f"{what} is longer than a key can be")


def _completed(part: tuple[int, str] | CompletedPart | Part) -> CompletedPart:
    """One entry of a Complete's part list, with the checksum a Part carries."""
    if isinstance(part, CompletedPart):
        return part
    if isinstance(part, Part):
        return CompletedPart(part.part_number, part.etag, part.checksum_algorithm, part.checksum)
    number, etag = part
    return CompletedPart(number, etag)


def _check_max_keys(max_keys: int, name: str = "max-keys") -> int:
    """A listing's limit, capped to a page's 1,000 as the server caps it (so
    that it also fits the request's int32)."""
    if isinstance(max_keys, bool) or not isinstance(max_keys, int):
        raise errors.InvalidArgument(f"{name} must be an integer, got {max_keys!r}")
    return validation.cap_max_keys(max_keys, name)


def check_tag_set(tags: Mapping[str, str] | None, bucket: bool = False) -> dict[str, str]:
    """An object's tags (a bucket's with ``bucket``), checked as the server checks them."""
    if tags is not None and not isinstance(tags, Mapping):
        raise errors.InvalidTag(f"tags must be a dict of str to str, got {type(tags).__name__}")
    if bucket:
        return validation.normalize_bucket_tags(dict(tags or {}))
    return validation.normalize_tags(dict(tags or {}))


_INT32 = range(-(2**31), 2**31)


def check_rule_list(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """Replication rules as PutBucketReplication checks them, except for what
    only the server knows (the bucket's versioning, the cluster's remotes)."""
    if isinstance(rules, Rule) or not isinstance(rules, Sequence):
        raise errors.InvalidArgument(
            f"rules must be a sequence of tristore.replication.Rule, got {type(rules).__name__}"
        )
    for r in rules:
        if not isinstance(r, Rule):
            raise errors.InvalidArgument(
                f"rules must be tristore.replication.Rule objects, got {type(r).__name__}"
            )
        if isinstance(r.priority, bool) or not isinstance(r.priority, int):
            raise errors.InvalidArgument(f"rule {r.id!r}: priority must be an integer")
        if r.priority not in _INT32:
            raise errors.InvalidArgument(f"rule {r.id!r}: priority {r.priority} is out of range")
    clusters = {d.cluster for r in rules for d in r.destinations}
    return check_rules(rules, clusters, versioning="Enabled")


class AsyncClient:
    """The tristore SDK for asyncio programs.

    ``AsyncClient("h:p,h:p")``, a list of addresses, or no argument to read
    ``TRISTORE_ENDPOINT``. A client belongs to the event loop it is first used
    in; ``await client.close()`` (or ``async with``) releases its channels.

    ``timeout`` is the deadline of each unary call attempt, and how long a GET
    may wait for its first message; uploads and downloads themselves have no
    deadline, as a large object may take any time.

    Every call is signed with ``credentials``; without them, with those of
    ``TRISTORE_ACCESS_KEY_ID`` / ``TRISTORE_SECRET_ACCESS_KEY`` or the profile
    file (tristore.credentials). ``anonymous=True`` sends unsigned calls.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str] | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        insecure: bool | None = None,
        credentials: Credentials | None = None,
        anonymous: bool = False,
    ) -> None:
        security = resolve_security(ca_file, insecure)
        creds = None if anonymous else credentials or credentials_from_env()
        self._signer = Signer(creds) if creds is not None else None
        self._endpoints = tuple(
            Endpoint(a, security, self._signer) for a in parse_endpoints(endpoints)
        )
        # Clients start on a random endpoint so that many of them spread the
        # coordinator load; each then sticks to the endpoint that works.
        self._preferred = random.randrange(len(self._endpoints))
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(ep.address for ep in self._endpoints)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(ep.close() for ep in self._endpoints))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient({','.join(self.endpoints)!r})"

    # -- buckets ---------------------------------------------------------------

    async def create_bucket(self, bucket: str) -> None:
        """Create a bucket; BucketAlreadyOwnedByYou if the caller has it
        already, BucketAlreadyExists (its base class) if another user does.
        When an attempt fails retriably and the retry finds the bucket, the
        failed attempt had created it: that counts as success. The retry finds
        it as the caller's own (BucketAlreadyOwnedByYou); BucketAlreadyExists
        counts too, as before, because a server from before that code answers
        it for both."""
        validation.check_bucket_name(bucket)
        await self._unary(
            "CreateBucket",
            objects_pb2.CreateBucketRequest(bucket=bucket),
            done_if=errors.BucketAlreadyExists,
        )

    async def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket (the retry rule of create_bucket, mirrored)."""
        validation.check_bucket_name(bucket)
        await self._unary(
            "DeleteBucket",
            objects_pb2.DeleteBucketRequest(bucket=bucket),
            done_if=errors.NoSuchBucket,
        )

    async def head_bucket(self, bucket: str) -> BucketInfo:
        validation.check_bucket_name(bucket)
        resp = await self._unary("HeadBucket", objects_pb2.HeadBucketRequest(bucket=bucket))
        return convert.bucket_from_pb(resp.bucket)

    async def list_buckets(self) -> list[BucketInfo]:
        resp = await self._unary("ListBuckets", objects_pb2.ListBucketsRequest())
        return [convert.bucket_from_pb(b) for b in resp.buckets]

    # -- objects ---------------------------------------------------------------

    async def put_object(
        self,
        bucket: str,
        key: str,
        data: BodyInput,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        progress: Progress | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        acl: str | None = None,
        storage_class: str | None = None,
        sse: str | None = None,
        if_none_match: str | None = None,
        if_match: str | None = None,
        sse_customer_key: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Store ``data`` (bytes, a binary file, or an (async) iterable of bytes).

        ``tags`` (at most 10), a canned ``acl`` (default private), a
        ``storage_class`` (default STANDARD), an ``sse`` algorithm and
        ``headers`` (any of Cache-Control, Content-Disposition,
        Content-Encoding, Content-Language and Expires, by name: answered as
        HTTP headers by the S3 API's GET and HEAD, and in ``ObjectInfo.headers``)
        are stored with the version. ``if_none_match="*"`` writes only if the key has no
        current object, ``if_match=ETAG`` only if the current object has that
        ETag; otherwise PreconditionFailed (ConditionalRequestConflict, which is
        retried, when another write raced this one). ``sse="AES256"`` encrypts
        the body at rest under the cluster's keys (SSE-S3);
        ``sse_customer_key`` (32 bytes) under that key instead (SSE-C), which
        every later GET and HEAD must give again.

        Bytes and seekable files are retried on retriable errors (a file is
        sent again from the position it had when the call began). A pipe or
        an iterator cannot be replayed: its PUT moves to another endpoint only
        when the first could not be reached, before any of the body was read.
        Every attempt of a call carries one request id, stored with the
        version. A retry after an attempt that failed without saying it did not
        take effect asks the node to look for that attempt first. A conditional
        PUT is thereby exactly-once: a retry whose earlier attempt took effect
        succeeds with that version, a refusal (PreconditionFailed) means nothing
        was written, and where the node cannot tell (the key changed since the
        call began, in a bucket that keeps no versions) it raises
        OutcomeUnknown. A plain PUT is answered with its earlier version while
        that is current, and written again otherwise (at least once, as S3).
        """
        none_match, match = check_put_conditions(if_none_match, if_match)
        header = _object_header(
            bucket, key, content_type, metadata, tags, acl, storage_class, sse, headers
        )
        header.if_none_match, header.if_match = none_match, match
        _set_ssec(header.sse_customer, sse_customer_key)
        body = make_body(data)
        header.size = body.size
        header.request_id = new_request_id()
        header.first_attempt_ms = now_ms()

        async def attempt(ep: Endpoint) -> Any:
            try:
                return await one_attempt(ep)
            except (grpc.aio.AioRpcError, errors.TristoreError) as exc:
                header.resend = header.resend or may_have_taken_effect(exc)
                raise

        async def one_attempt(ep: Endpoint) -> Any:
            if isinstance(body, BytesBody) and body.size <= SMALL_BODY_MAX:
                # One message each way (a unary call costs half of a stream).
                request = objects_pb2.PutObjectRequest(header=header, data=body.whole())
                resp = await self._unary_on(ep, "PutSmallObject", request)
                if resp is not None:
                    if progress is not None:
                        progress(body.size)
                    return resp
            return await self._put_once(ep, header, body, progress)

        resp = await self._call(
            "PutObject", attempt, retry_if=lambda: body.replayable or not body.started
        )
        return convert.info_from_pb(resp.info)

    async def get_object(
        self,
        bucket: str,
        key: str,
        range: RangeSpec | None = None,
        version_id: str | None = None,
        *,
        conditions: Conditions | None = None,
        sse_customer_key: bytes | None = None,
        part_number: int | None = None,
    ) -> bytes:
        """The object's bytes (or the range's). Retried as a whole on retriable errors.
        An SSE-C object needs its ``sse_customer_key``.

        ``conditions`` are HTTP preconditions: PreconditionFailed when
        If-Match / If-Unmodified-Since fail, NotModified when If-None-Match /
        If-Modified-Since do. ``part_number``: the bytes of that part of an
        object completed by multipart upload (1 to its part count; part 1 of
        any other object is all of it; InvalidPartNumber past the last), not
        with ``range``."""
        request = self._get_request(
            bucket, key, range, version_id, conditions, sse_customer_key, part_number
        )

        small = objects_pb2.GetSmallObjectRequest(get=request, max_size=SMALL_BODY_MAX)

        async def attempt(ep: Endpoint) -> bytes:
            # A small body comes in one unary answer; a larger one is only
            # described there, and streams.
            resp = await self._unary_on(ep, "GetSmallObject", small)
            if resp is not None and not resp.too_large:
                info = convert.info_from_pb(resp.info)
                expected = 0 if info.size == 0 else resp.range_end - resp.range_start + 1
                if len(resp.data) != expected:
                    raise errors.InternalError(
                        f"GetSmallObject sent {len(resp.data)} of {expected} bytes"
                    )
                return bytes(resp.data)
            stream = AsyncObjectStream(self, request)
            await stream._open_on(ep)
            try:
                return await stream.read()
            finally:
                await stream.aclose()

        return await self._call("GetObject", attempt)

    def get_object_stream(
        self,
        bucket: str,
        key: str,
        range: RangeSpec | None = None,
        version_id: str | None = None,
        *,
        conditions: Conditions | None = None,
        sse_customer_key: bytes | None = None,
        part_number: int | None = None,
    ) -> AsyncObjectStream:
        """A streaming GET: ``async with client.get_object_stream(b, k) as s:``
        then ``async for chunk in s``; or ``s = await client.get_object_stream(...)``.
        ``part_number`` as for :meth:`get_object`.

        Opening is retried like any call; a failure once data flows is raised,
        never retried behind the caller's back.
        """
        request = self._get_request(
            bucket, key, range, version_id, conditions, sse_customer_key, part_number
        )
        return AsyncObjectStream(self, request)

    async def head_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        *,
        conditions: Conditions | None = None,
        sse_customer_key: bytes | None = None,
        part_number: int | None = None,
    ) -> ObjectInfo:
        """The object's info; with ``part_number``, checked against its parts
        (InvalidPartNumber past the last; ``info.part_sizes`` gives each)."""
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        request = objects_pb2.HeadObjectRequest(
            bucket=bucket,
            key=key,
            version_id=check_version_id(version_id),
            part_number=_check_part(part_number),
        )
        _set_ssec(request.sse_customer, sse_customer_key)
        checked = check_conditions(conditions)
        if checked is not None:
            request.conditions.CopyFrom(convert.conditions_to_pb(checked))
        resp = await self._unary("HeadObject", request)
        return convert.info_from_pb(resp.info)

    async def delete_object(
        self, bucket: str, key: str, version_id: str | None = None, if_match: str | None = None
    ) -> DeleteResult:
        """Delete the key, or with ``version_id`` one version of it for good.

        In a versioned bucket a plain delete adds a delete marker: the result
        carries its version id and ``delete_marker=True``. Deleting a marker by
        its version id also says ``delete_marker=True``. In a bucket that was
        never versioned the version id is empty.

        ``if_match`` (S3's conditional delete): only if the object, or the
        version named, has that ETag (or one of a comma-separated list; ``*``:
        any); else PreconditionFailed, NoSuchKey when there is none, and
        nothing is deleted."""
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        request = objects_pb2.DeleteObjectRequest(
            bucket=bucket,
            key=key,
            version_id=check_version_id(version_id),
            if_match=if_match or "",
        )
        resp = await self._unary("DeleteObject", request)
        return DeleteResult(version_id=resp.version_id, delete_marker=resp.delete_marker)

    def presign_url(
        self,
        bucket: str,
        key: str,
        *,
        method: str = "GET",
        expires_in: int = 3600,
        version_id: str | None = None,
        endpoint_url: str | None = None,
        now: dt.datetime | None = None,
    ) -> str:
        """A presigned URL of the S3 HTTP API for one object: whoever holds it
        may ``method`` it (GET, HEAD, PUT or DELETE) until it expires, with no
        credentials of their own, as this client's access key may.

        ``expires_in``: seconds, 1 to 604,800 (7 days, S3's limit).
        ``endpoint_url``: the S3 API's base URL (``https://HOST:PORT``);
        default ``$AWS_ENDPOINT_URL``, which ``tristore dev up`` exports.
        Signed here, with no call to the cluster: a URL for a key that does not
        exist is made all the same (its use answers NoSuchKey).
        """
        return presign.presign_url(
            self._signer,
            bucket,
            key,
            method=method,
            expires_in=expires_in,
            version_id=version_id,
            endpoint_url=endpoint_url,
            now=now,
        )

    def presign_post(
        self,
        bucket: str,
        key: str,
        *,
        expires_in: int = 3600,
        fields: Mapping[str, str] | None = None,
        conditions: Sequence[Mapping[str, str] | Sequence[Any]] = (),
        endpoint_url: str | None = None,
        now: dt.datetime | None = None,
    ) -> presign.PresignedPost:
        """A browser upload form of the S3 HTTP API (POST Object, SigV4), as
        boto3's ``generate_presigned_post`` makes it: a page POSTs ``url`` as
        multipart/form-data with every one of ``fields`` and, last, the
        file, until the form expires, with no credentials of its own.

        A ``key`` ending in ``${filename}`` takes the uploaded file's name.
        ``fields``: more form fields (``Content-Type``, ``acl``,
        ``x-amz-meta-*``, ``success_action_status``...), each also an
        exact-match condition unless ``conditions`` names it. ``conditions``:
        more of S3's policy conditions (``["content-length-range", 1,
        10485760]``, ``["starts-with", "$Content-Type", "image/"]``).
        ``expires_in`` and ``endpoint_url`` as :meth:`presign_url`'s. Signed
        here, with no call to the cluster.
        """
        return presign.presign_post(
            self._signer,
            bucket,
            key,
            expires_in=expires_in,
            fields=fields,
            conditions=conditions,
            endpoint_url=endpoint_url,
            now=now,
        )

    async def delete_objects(
        self,
        bucket: str,
        objects: Iterable[ObjectRef],
        quiet: bool = False,
    ) -> list[DeletedObject]:
        """Delete many keys of ``bucket`` (S3's DeleteObjects), 1,000 a call.

        ``objects``: keys, or ``(key, version_id)`` pairs to delete one version
        each. Every key is authorized and deleted as its own
        :meth:`delete_object`; one that fails does not stop the others. The
        result has one :class:`DeletedObject` a key, in order: deleted, or
        ``error_code``/``error_message`` (``AccessDenied``, ``NoSuchVersion``,
        ...). With ``quiet``, only the keys that failed. Every key and version
        id is checked before anything is deleted (InvalidArgument,
        KeyTooLongError)."""
        validation.check_bucket_name(bucket)
        pairs = [_object_ref(o) for o in objects]
        out: list[DeletedObject] = []
        step = validation.MAX_DELETE_KEYS
        for start in range(0, len(pairs), step):
            request = objects_pb2.DeleteObjectsRequest(
                bucket=bucket,
                objects=[
                    objects_pb2.ObjectIdentifier(key=k, version_id=v)
                    for k, v in pairs[start : start + step]
                ],
                quiet=quiet,
            )
            resp = await self._unary("DeleteObjects", request)
            out.extend(convert.deleted_from_pb(r) for r in resp.results)
        return out

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        max_keys: int | None = None,
        continuation_token: str | None = None,
        start_after: str | None = None,
    ) -> ListPage:
        """One page of a listing (ListObjectsV2). ``max_keys`` None means the
        server's default of 1000."""
        request = self._list_request(
            bucket, prefix, delimiter, max_keys, continuation_token, start_after
        )
        resp = await self._unary("ListObjects", request)
        return convert.page_from_pb(resp)

    def iter_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        page_size: int | None = None,
        start_after: str | None = None,
        continuation_token: str | None = None,
    ) -> AsyncIterator[ListPage]:
        """Every page of a listing, following continuation tokens to the end:
        ``async for page in client.iter_objects(b)`` (``page.contents``,
        ``page.common_prefixes``)."""
        first = self._list_request(
            bucket, prefix, delimiter, page_size, continuation_token, start_after
        )
        return self._pages(first)

    async def _pages(self, request: Any) -> AsyncIterator[ListPage]:
        seen: set[str] = set()
        while True:
            page = convert.page_from_pb(await self._unary("ListObjects", request))
            yield page
            if not page.is_truncated:
                return
            token = page.next_continuation_token
            if not token or token in seen:
                raise errors.InternalError(
                    "the listing is truncated but the server gave no new continuation token"
                )
            seen.add(token)
            following = objects_pb2.ListObjectsRequest()
            following.CopyFrom(request)
            following.continuation_token = token
            following.start_after = ""  # S3 ignores it once a token is given
            request = following

    # -- versioning ------------------------------------------------------------

    async def put_bucket_versioning(self, bucket: str, status: str) -> None:
        """Turn versioning on (``"Enabled"``) or pause it (``"Suspended"``).
        A bucket that was ever versioned never goes back to unversioned."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.PutBucketVersioningRequest(
            bucket=bucket, status=validation.check_versioning_status(status)
        )
        await self._unary("PutBucketVersioning", request)

    async def get_bucket_versioning(self, bucket: str) -> str:
        """``"Enabled"``, ``"Suspended"``, or ``""`` for a bucket never versioned."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.GetBucketVersioningRequest(bucket=bucket)
        resp = await self._unary("GetBucketVersioning", request)
        return str(resp.status)

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        max_keys: int | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
    ) -> VersionPage:
        """One page of every version and delete marker, by key and then newest
        first (ListObjectVersions). ``max_keys`` None means the server's 1000;
        resume with the page's ``next_key_marker`` and ``next_version_id_marker``."""
        request = self._versions_request(
            bucket, prefix, delimiter, max_keys, key_marker, version_id_marker
        )
        resp = await self._unary("ListObjectVersions", request)
        return convert.version_page_from_pb(resp)

    def iter_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        page_size: int | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
    ) -> AsyncIterator[VersionPage]:
        """Every page of a version listing, following the markers to the end."""
        first = self._versions_request(
            bucket, prefix, delimiter, page_size, key_marker, version_id_marker
        )
        return self._version_pages(first)

    async def _version_pages(self, request: Any) -> AsyncIterator[VersionPage]:
        seen: set[tuple[str, str]] = set()
        while True:
            page = convert.version_page_from_pb(await self._unary("ListObjectVersions", request))
            yield page
            if not page.is_truncated:
                return
            marker = (page.next_key_marker or "", page.next_version_id_marker or "")
            if not marker[0] or marker in seen:
                raise errors.InternalError(
                    "the version listing is truncated but the server gave no new key marker"
                )
            seen.add(marker)
            following = objects_pb2.ListObjectVersionsRequest()
            following.CopyFrom(request)
            following.key_marker, following.version_id_marker = marker
            request = following

    # -- tags and ACLs ---------------------------------------------------------

    async def get_object_tagging(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Tagging:
        """The tag set of the current version (or of ``version_id``)."""
        request = self._tagging_request(bucket, key, version_id)
        return convert.tagging_from_pb(await self._unary("GetObjectTagging", request))

    async def put_object_tagging(
        self,
        bucket: str,
        key: str,
        tags: Mapping[str, str],
        version_id: str | None = None,
    ) -> Tagging:
        """Replace the whole tag set; returns the version tagged and its tags."""
        request = self._tagging_request(bucket, key, version_id)
        request.tags.update(check_tag_set(tags))
        return convert.tagging_from_pb(await self._unary("PutObjectTagging", request))

    async def delete_object_tagging(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Tagging:
        """Remove every tag; returns the version untagged (and no tags)."""
        request = self._tagging_request(bucket, key, version_id)
        return convert.tagging_from_pb(await self._unary("DeleteObjectTagging", request))

    async def get_object_acl(self, bucket: str, key: str, version_id: str | None = None) -> Acl:
        """The owner and canned ACL of the current version (or of ``version_id``)."""
        request = self._acl_request(bucket, key, version_id)
        return convert.acl_from_pb(await self._unary("GetObjectAcl", request))

    async def put_object_acl(
        self, bucket: str, key: str, acl: str, version_id: str | None = None
    ) -> Acl:
        """Set a canned ACL (``private``, ``public-read``, ...) on a version."""
        request = self._acl_request(bucket, key, version_id)
        request.acl = validation.check_acl(acl)
        return convert.acl_from_pb(await self._unary("PutObjectAcl", request))

    # -- replication -------------------------------------------------------------

    async def put_bucket_replication(self, bucket: str, rules: Sequence[Rule]) -> tuple[Rule, ...]:
        """Replace the bucket's replication rules; returns them as stored. The
        bucket must have versioning Enabled (InvalidRequest otherwise) and every
        destination's cluster must be one of the cluster's ``[[remotes]]``."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.PutBucketReplicationRequest(
            bucket=bucket, rules=[convert.rule_to_pb(r) for r in check_rule_list(rules)]
        )
        resp = await self._unary("PutBucketReplication", request)
        return tuple(convert.rule_from_pb(r) for r in resp.rules)

    async def get_bucket_replication(self, bucket: str) -> tuple[Rule, ...]:
        """The bucket's replication rules (empty when it has none)."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.GetBucketReplicationRequest(bucket=bucket)
        resp = await self._unary("GetBucketReplication", request)
        return tuple(convert.rule_from_pb(r) for r in resp.rules)

    async def delete_bucket_replication(self, bucket: str) -> None:
        """Remove every replication rule of the bucket (a no-op when it has none)."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.DeleteBucketReplicationRequest(bucket=bucket)
        await self._unary("DeleteBucketReplication", request)

    async def put_bucket_encryption(self, bucket: str, sse: str = "AES256") -> None:
        """Encrypt the bucket's new objects at rest by default (S3's
        PutBucketEncryption): those a request does not give an encryption."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.PutBucketEncryptionRequest(bucket=bucket, sse=sse)
        await self._unary("PutBucketEncryption", request)

    async def get_bucket_encryption(self, bucket: str) -> str:
        """The bucket's default encryption; ServerSideEncryptionConfigurationNotFoundError
        when it has none."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.GetBucketEncryptionRequest(bucket=bucket)
        resp = await self._unary("GetBucketEncryption", request)
        return str(resp.sse)

    async def delete_bucket_encryption(self, bucket: str) -> None:
        """New objects of the bucket are no longer encrypted by default."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.DeleteBucketEncryptionRequest(bucket=bucket)
        await self._unary("DeleteBucketEncryption", request)

    async def requeue_replication(
        self, bucket: str, key: str, version_id: str, destination: str
    ) -> None:
        """Mark one version PENDING for ``destination`` ("cluster/bucket") again,
        so that the replicators send it: a version written before its rule
        existed (backfill), or one that FAILED (replay). The bucket's enabled
        rules must send the key there."""
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        request = objects_pb2.PutReplicationStatusRequest(
            bucket=bucket,
            key=key,
            version_id=check_version_id(version_id),
            destination=destination,
            status="PENDING",
        )
        await self._unary("PutReplicationStatus", request)

    async def requeue_replications(
        self, bucket: str, items: Sequence[tuple[str, str, str]]
    ) -> list[errors.TristoreError | None]:
        """:meth:`requeue_replication` of many ``(key, version_id, destination)``
        items of one bucket in one call (backfill, replay): for each, None, or
        the error that refused it. At most ``[node] replication_max_batch`` items."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.PutReplicationStatusesRequest()
        for key, version_id, destination in items:
            validation.check_key(key)
            request.items.add(
                bucket=bucket,
                key=key,
                version_id=check_version_id(version_id),
                destination=destination,
                status="PENDING",
            )
        # A retry of the whole call is safe: an item already PENDING is left as it is.
        resp = await self._unary("PutReplicationStatuses", request)
        return [
            errors.from_code(r.error.code, r.error.message) if r.HasField("error") else None
            for r in resp.results
        ]

    # -- multipart upload --------------------------------------------------------

    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        acl: str | None = None,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_customer_key: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> MultipartUpload:
        """Start a multipart upload; the object gets these fields on complete.
        With ``sse_customer_key`` every part and the complete must give it too."""
        header = _object_header(
            bucket, key, content_type, metadata, tags, acl, storage_class, sse, headers
        )
        _set_ssec(header.sse_customer, sse_customer_key)
        request = objects_pb2.CreateMultipartUploadRequest(header=header)
        resp = await self._unary("CreateMultipartUpload", request)
        return MultipartUpload(
            resp.bucket, resp.key, resp.upload_id, dt.datetime.now(dt.UTC), storage_class or ""
        )

    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        data: BodyInput,
        progress: Progress | None = None,
        content_md5: str = "",
        *,
        sse_customer_key: bytes | None = None,
    ) -> Part:
        """Upload one part (1..10,000; 5 MiB to 5 GiB except the last); uploading a
        part number again replaces it. Returns its number, ETag, size and
        flexible checksum (``checksum_algorithm``, ``checksum``: the upload's
        algorithm, or CRC-64/NVME), which Complete may be given back."""
        header = objects_pb2.UploadPartHeader(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            part_number=part_number,
            content_md5=validation.check_content_md5(content_md5),
        )
        _set_ssec(header.sse_customer, sse_customer_key)
        body = make_body(data)
        header.size = body.size

        async def attempt(ep: Endpoint) -> Any:
            return await self._put_once(ep, header, body, progress, "UploadPart")

        resp = await self._call(
            "UploadPart", attempt, retry_if=lambda: body.replayable or not body.started
        )
        return Part(
            part_number,
            resp.etag,
            resp.size,
            dt.datetime.now(dt.UTC),
            resp.checksum_algorithm,
            resp.checksum,
        )

    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Iterable[tuple[int, str] | CompletedPart | Part],
        *,
        timeout: float | None = None,
        sse_customer_key: bytes | None = None,
        if_none_match: str | None = None,
        if_match: str | None = None,
    ) -> ObjectInfo:
        """Assemble the object from ``parts``, ascending: (part number, ETag)
        pairs, or CompletedPart or Part objects (:mod:`tristore.model`; the
        ones ``upload_part`` and ``list_parts`` return), whose checksums are
        listed too. A listed checksum must be the
        stored part's (InvalidPart); an upload created for COMPOSITE checksums
        needs each part's (InvalidRequest), as in S3.

        The cluster copies the parts into the object before it answers, which
        takes a while for a large one: ``timeout`` gives each attempt a longer
        deadline than the client's.

        ``if_none_match="*"`` completes only if the key has no object yet, and
        ``if_match=ETAG`` only over the object with that ETag (PreconditionFailed
        otherwise; the upload stays, to complete otherwise or abort), as for
        ``put_object``."""
        none_match, match = check_put_conditions(if_none_match, if_match)
        request = objects_pb2.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            parts=[convert.completed_part_to_pb(_completed(p)) for p in parts],
            if_none_match=none_match,
            if_match=match,
        )
        _set_ssec(request.sse_customer, sse_customer_key)
        resp = await self._unary("CompleteMultipartUpload", request, timeout=timeout)
        return convert.info_from_pb(resp.info)

    async def upload_file(
        self,
        path: str | os.PathLike[str],
        bucket: str,
        key: str,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        *,
        multipart_threshold: int = validation.DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = validation.DEFAULT_PART_SIZE,
        parallel: int = validation.DEFAULT_PARALLEL_PARTS,
        progress: Progress | None = None,
        resume: bool = True,
        state_dir: str | os.PathLike[str] | None = None,
        tags: Mapping[str, str] | None = None,
        acl: str | None = None,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_customer_key: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Upload the file at ``path``: one PUT below ``multipart_threshold``
        bytes (64 MiB), else a multipart upload of ``part_size`` parts (8 MiB,
        grown so that the file needs at most 10,000), ``parallel`` in flight,
        each checked by its MD5, and the object's ETag checked (BadDigest).
        ``progress`` is called with the bytes done so far (parts a resume
        skips count at once).

        Resumable across runs (``resume=True``): the upload keeps a record in
        ``state_dir`` (default ``$XDG_STATE_HOME/tristore/uploads``, shared
        with ``tristore cp``); if it fails or is interrupted, the upload and
        its parts stay, and the next call for the same unchanged file and key
        (whatever the threshold) sends only the parts the store lacks (by size
        and MD5), keeping the content type and other fields it began with. A
        changed file starts a new upload; a file that changes while it is
        sent aborts it (FileChanged). ``resume=False``: no record, and a
        failed upload is aborted. The other arguments are :meth:`put_object`'s."""
        extra = {"tags": tags, "acl": acl, "storage_class": storage_class, "sse": sse,
                 "sse_customer_key": sse_customer_key, "headers": headers}  # fmt: skip
        from tristore.client import files  # hashing, file slices, the resume record

        return await files.upload_file(
            self, path, bucket, key, content_type=content_type, metadata=metadata,
            multipart_threshold=multipart_threshold, part_size=part_size, parallel=parallel,
            progress=progress, resume=resume, state_dir=state_dir, extra=extra,
        )  # fmt: skip

    async def download_file(
        self,
        bucket: str,
        key: str,
        path: str | os.PathLike[str],
        version_id: str | None = None,
        *,
        sse_customer_key: bytes | None = None,
    ) -> ObjectInfo:
        """Write the object (or ``version_id``) to ``path``, streamed: into a
        temporary file beside it, renamed over ``path`` once complete, so a
        failed download leaves no partial file there. Returns its info."""
        from tristore.client import files

        return await files.download_file(
            self, bucket, key, path, version_id=version_id, sse_customer_key=sse_customer_key
        )

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Drop an upload and every part uploaded for it."""
        request = objects_pb2.AbortMultipartUploadRequest(
            bucket=bucket, key=key, upload_id=upload_id
        )
        await self._unary("AbortMultipartUpload", request)

    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int | None = None,
        delimiter: str | None = None,
    ) -> UploadPage:
        """One page of the bucket's uploads in progress, by key then creation.
        With a ``delimiter``, the uploads of keys holding it after ``prefix``
        are rolled up into ``common_prefixes`` (each once, each counted
        against ``max_uploads``); a page that ends on one gives it as
        ``next_key_marker`` (``next_upload_id_marker`` None), to pass back as
        ``key_marker``."""
        if delimiter:
            validation.check_delimiter(delimiter)
        request = objects_pb2.ListMultipartUploadsRequest(
            bucket=bucket,
            prefix=prefix,
            key_marker=key_marker,
            upload_id_marker=upload_id_marker,
            max_uploads=_check_max_keys(max_uploads, "max-uploads")
            if max_uploads is not None
            else 0,
            delimiter=delimiter or "",
        )
        return convert.upload_page_from_pb(
            bucket, await self._unary("ListMultipartUploads", request)
        )

    async def list_parts(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int = 0,
        max_parts: int | None = None,
    ) -> PartPage:
        """One page of an upload's parts, by part number."""
        request = objects_pb2.ListPartsRequest(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            part_number_marker=part_number_marker,
            max_parts=_check_max_keys(max_parts, "max-parts") if max_parts is not None else 0,
        )
        return convert.part_page_from_pb(await self._unary("ListParts", request))

    # -- copy ------------------------------------------------------------------

    async def copy_object(
        self,
        source: CopySource,
        bucket: str,
        key: str,
        metadata_directive: str = "COPY",
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        tagging_directive: str = "COPY",
        tags: Mapping[str, str] | None = None,
        acl: str | None = None,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_customer_key: bytes | None = None,
        copy_source_sse_customer_key: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CopyResult:
        """Copy ``source`` to ``bucket``/``key`` inside the cluster (the body
        never passes through the client).

        The copy keeps the source's content type and metadata (its tags) unless
        ``metadata_directive`` (``tagging_directive``) is ``"REPLACE"``; then
        ``content_type``, ``metadata`` and ``headers`` (``tags``) are the new
        ones. ACL,
        storage class and encryption are never copied: they are the ones given
        here, or the defaults. ``source.conditions`` are checked against the
        source (PreconditionFailed). Copying the current object onto itself
        must change something (InvalidRequest otherwise), as in S3; copying a
        given ``source.version_id`` onto its own key restores that version.
        """
        if not isinstance(source, CopySource):
            raise errors.InvalidArgument(
                f"source must be a tristore.CopySource, got {type(source).__name__}"
            )
        validation.check_bucket_name(source.bucket)
        validation.check_key(source.key)
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        meta_dir = validation.check_directive("metadata_directive", metadata_directive)
        tag_dir = validation.check_directive("tagging_directive", tagging_directive)
        if meta_dir == "COPY" and (
            content_type is not None or metadata is not None or headers is not None
        ):
            raise errors.InvalidArgument(
                "content_type, metadata and headers replace the source's only with "
                "metadata_directive='REPLACE'"
            )
        if tag_dir == "COPY" and tags is not None:
            raise errors.InvalidArgument(
                "tags replace the source's only with tagging_directive='REPLACE'"
            )
        request = objects_pb2.CopyObjectRequest(
            source_bucket=source.bucket,
            source_key=source.key,
            source_version_id=check_version_id(source.version_id),
            bucket=bucket,
            key=key,
            metadata_directive=meta_dir,
            tagging_directive=tag_dir,
            acl=validation.check_acl(acl) if acl else "",
            storage_class=validation.check_storage_class(storage_class) if storage_class else "",
            sse=validation.check_sse(sse or ""),
        )
        _set_ssec(request.sse_customer, sse_customer_key)
        _set_ssec(request.copy_source_sse_customer, copy_source_sse_customer_key)
        checked = check_conditions(source.conditions)
        if checked is not None:
            request.source_conditions.CopyFrom(convert.conditions_to_pb(checked))
        if meta_dir == "REPLACE":
            request.content_type = validation.normalize_content_type(content_type)
            request.metadata.update(validation.normalize_metadata(metadata))
            request.headers.update(validation.normalize_headers(headers))
        if tag_dir == "REPLACE":
            request.tags.update(check_tag_set(tags))
        if (
            (source.bucket, source.key) == (bucket, key)
            and not source.version_id
            and meta_dir == "COPY"
            and tag_dir == "COPY"
            and not (
                acl or storage_class or sse or sse_customer_key or copy_source_sse_customer_key
            )
        ):
            raise errors.InvalidRequest(
                "this copy request is illegal because it is trying to copy an object to "
                "itself without changing the object's metadata, storage class or encryption"
            )
        resp = await self._unary("CopyObject", request)
        return CopyResult(
            info=convert.info_from_pb(resp.info), source_version_id=resp.source_version_id
        )

    # -- event notifications -----------------------------------------------------

    def subscribe_events(
        self,
        bucket: str,
        prefix: str = "",
        *,
        cursor: str | None = None,
        from_start: bool = False,
        heartbeats: bool = False,
        heartbeat_s: float | None = None,
    ) -> AsyncIterator[Event | Heartbeat]:
        """Object-created and object-removed events of a bucket (keys under
        ``prefix``), as they are committed::

            async for e in client.subscribe_events("photos"):
                print(e.name, e.key, e.version_id, e.cursor)

        Starts from now; after ``cursor`` (the ``cursor`` of an event or
        heartbeat received before); or, with ``from_start``, at the beginning
        of the change logs. Each key's events come in order; delivery is at
        least once (resuming can repeat the events just before the cursor).
        ``heartbeats``: also yield :class:`~tristore.events.Heartbeat`
        messages, sent after ``heartbeat_s`` (server default 5 s) without an
        event; their cursor moves past other buckets' changes too.

        When the node serving the subscription fails (or sends nothing for
        ``heartbeat_s`` plus the client's timeout), it is resumed on the next
        endpoint from the last cursor received, within the retry policy (whose
        counts start afresh after every message). It never ends by itself:
        break out of the loop, or ``aclose()`` the iterator, to stop.
        """
        validation.check_bucket_name(bucket)
        _check_prefix("prefix", prefix)
        if cursor and from_start:
            raise errors.InvalidArgument("give a cursor or from_start, not both")
        heartbeat_ms = 0
        if heartbeat_s is not None:
            if isinstance(heartbeat_s, bool) or not isinstance(heartbeat_s, int | float):
                raise errors.InvalidArgument(f"heartbeat_s must be a number, got {heartbeat_s!r}")
            heartbeat_ms = round(heartbeat_s * 1000)
            if not 100 <= heartbeat_ms <= 600_000:
                raise errors.InvalidArgument(
                    f"heartbeat_s must be 0.1 to 600 seconds, got {heartbeat_s!r}"
                )
        request = events_pb2.SubscribeRequest(
            bucket=bucket,
            prefix=prefix,
            cursor=cursor or "",
            from_start=from_start,
            heartbeat_ms=heartbeat_ms,
        )
        return self._subscription(request, heartbeats)

    async def _subscription(
        self, request: events_pb2.SubscribeRequest, heartbeats: bool
    ) -> AsyncIterator[Event | Heartbeat]:
        if self._closed:
            raise RuntimeError("the tristore client is closed")
        loop = self._bind_loop()
        policy = self._retry
        n = len(self._endpoints)
        # A server sends a heartbeat at least this often; silence much longer
        # than that is a hung node (or network), and the stream moves on.
        quiet_s = (request.heartbeat_ms / 1000 or 5.0) + (self._timeout or DEFAULT_TIMEOUT_S)
        failures = 0
        give_up_at: float | None = None
        while True:
            ep = self._endpoints[self._preferred % n]
            call = ep.events.Subscribe(request)
            try:
                while True:
                    try:
                        async with asyncio.timeout(quiet_s):
                            msg = await call.read()
                    except TimeoutError:
                        raise errors.ServiceUnavailable(
                            f"{ep.address} sent nothing on the event stream for {quiet_s:g}s"
                        ) from None
                    if msg is grpc.aio.EOF:
                        raise errors.ServiceUnavailable(f"{ep.address} ended the event stream")
                    failures, give_up_at = 0, None
                    if msg.cursor:
                        request.cursor, request.from_start = msg.cursor, False
                    message = message_from_pb(msg)
                    if heartbeats or isinstance(message, Event):
                        yield message
            except grpc.aio.AioRpcError as exc:
                err = errors.from_rpc_error(exc)
            except errors.TristoreError as exc:
                err = exc
            finally:
                call.cancel()
            failures += 1
            if give_up_at is None:
                give_up_at = loop.time() + policy.total_s
            delay = policy.backoff(failures)
            if (
                not err.retriable
                or failures >= policy.attempts(n)
                or loop.time() + delay > give_up_at
            ):
                raise err from None
            self._preferred = (self._preferred + 1) % n
            log.info(
                "event stream from %s failed (%s: %s); resuming on %s",
                ep.address,
                err.code,
                err.message,
                self._endpoints[self._preferred].address,
            )
            await asyncio.sleep(delay)

    # -- admin -----------------------------------------------------------------

    async def cluster_status(self) -> ClusterStatus:
        """The cluster as the answering node sees it (every node's health)."""
        resp = await self._unary("ClusterStatus", admin_pb2.ClusterStatusRequest(), admin=True)
        return convert.cluster_status_from_pb(resp)

    async def repair(self, bucket: str = "", dry_run: bool = False) -> AsyncIterator[RepairReport]:
        """Anti-entropy repair (``tristore admin repair``): the answering node
        compares what each of a key's AZs holds with the others, for every key
        of ``bucket`` (of every bucket when empty), and writes back what an AZ
        lacks; with ``dry_run`` it only counts::

            async for report in client.repair("photos"):
                print(report.keys_checked, report.missing_by_az)

        A report comes every ~200 keys and when a bucket is through; the last
        one has ``done`` set and the totals. Starting is retried like any call;
        a stream that breaks once reports flow is raised (repairing again is
        harmless)."""
        if bucket:
            validation.check_bucket_name(bucket)
        request = admin_pb2.RepairRequest(bucket=bucket, dry_run=dry_run)

        async def start(ep: Endpoint) -> tuple[Any, Any]:
            call = ep.admin.Repair(request)
            try:
                return call, await call.read()
            except BaseException:
                call.cancel()
                raise

        call, msg = await self._call("Repair", start)
        try:
            while msg is not grpc.aio.EOF:
                yield convert.repair_report_from_pb(msg)
                msg = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def scrub(self, bucket: str = "") -> AsyncIterator[ScrubReport]:
        """Scrub (``tristore admin scrub``): every node of the cluster reads
        every record and body chunk it holds (of ``bucket``, or all), checks
        their checksums and writes a sound copy from another holder over each
        damaged one::

            async for report in client.scrub():
                print(report.node, report.corrupt_records, report.repaired)

        Reports come per node as it goes; each node's last one has ``done``
        set (and ``error`` when it could not be scrubbed, or not whole)."""
        if bucket:
            validation.check_bucket_name(bucket)
        request = admin_pb2.ScrubRequest(bucket=bucket)

        async def start(ep: Endpoint) -> tuple[Any, Any]:
            call = ep.admin.Scrub(request)
            try:
                return call, await call.read()
            except BaseException:
                call.cancel()
                raise

        call, msg = await self._call("Scrub", start)
        try:
            while msg is not grpc.aio.EOF:
                yield convert.scrub_report_from_pb(msg)
                msg = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def cluster_map(self) -> ClusterMap:
        """The cluster map (nodes, their AZs and states, epoch) the answering node holds."""
        resp = await self._unary("GetClusterMap", admin_pb2.GetClusterMapRequest(), admin=True)
        return convert.cluster_map_from_pb(resp.map)

    async def change_node(
        self, name: str, action: str, expect_epoch: int = 0, force: bool = False
    ) -> MapChange:
        """``drain``, ``undrain`` or ``remove`` a node: a new map, epoch + 1,
        handed to every node. ``expect_epoch`` refuses the change when the map
        moved on meanwhile (ConditionalRequestConflict)."""
        from tristore import clustermap

        if action not in clustermap.ACTIONS:
            raise errors.InvalidArgument(
                f"unknown action {action!r}; actions: {', '.join(clustermap.ACTIONS)}"
            )
        req = admin_pb2.ChangeNodeRequest(
            name=name, action=action, expect_epoch=expect_epoch, force=force
        )
        resp = await self._unary("ChangeNode", req, admin=True)
        return clustermap.MapChange(
            convert.cluster_map_from_pb(resp.map), tuple(resp.acked), tuple(resp.not_reached)
        )

    async def rotate_master_key(self, keep_key: bool = False) -> KeyRotation:
        """Add a master key and make it current (unless ``keep_key``), then
        re-wrap every bucket key under it; bodies and data keys stay as they are."""
        req = admin_pb2.RotateMasterKeyRequest(keep_key=keep_key)
        resp = await self._unary("RotateMasterKey", req, admin=True)
        return KeyRotation(resp.key_id, resp.rewrapped, resp.unchanged)

    async def node_config(self) -> NodeConfig:
        """The answering node's effective configuration, as TOML."""
        resp = await self._unary("GetConfig", admin_pb2.GetConfigRequest(), admin=True)
        from tristore.clustermap import NodeConfig

        return NodeConfig(resp.node, resp.epoch, resp.toml)

    # -- bucket policies ---------------------------------------------------------

    async def put_bucket_policy(self, bucket: str, policy: str | Mapping[str, Any]) -> str:
        """Set the bucket's policy (S3's JSON form, a string or a dict);
        MalformedPolicy says what the cluster cannot take."""
        validation.check_bucket_name(bucket)
        text = policy if isinstance(policy, str) else json.dumps(policy)
        request = objects_pb2.BucketPolicyRequest(bucket=bucket, policy=text)
        return str((await self._unary("PutBucketPolicy", request)).policy)

    async def get_bucket_policy(self, bucket: str) -> str:
        """The bucket's policy document; NoSuchBucketPolicy when it has none."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.BucketPolicyRequest(bucket=bucket)
        return str((await self._unary("GetBucketPolicy", request)).policy)

    async def delete_bucket_policy(self, bucket: str) -> None:
        validation.check_bucket_name(bucket)
        await self._unary("DeleteBucketPolicy", objects_pb2.BucketPolicyRequest(bucket=bucket))

    # -- bucket CORS ---------------------------------------------------------------

    async def put_bucket_cors(self, bucket: str, rules: Sequence[cors.Rule]) -> None:
        """Replace the bucket's CORS configuration (S3's CORSRules, at most
        100; MalformedXML or InvalidRequest say what S3 would refuse). The S3
        HTTP API answers preflights and cross-origin requests with it."""
        validation.check_bucket_name(bucket)
        checked = cors.check_rules(rules)
        request = objects_pb2.BucketCorsRequest(
            bucket=bucket, rules=[convert.cors_rule_to_pb(r) for r in checked]
        )
        await self._unary("PutBucketCors", request)

    async def get_bucket_cors(self, bucket: str) -> tuple[cors.Rule, ...]:
        """The bucket's CORS rules; NoSuchCORSConfiguration when it has none."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.BucketCorsRequest(bucket=bucket)
        resp = await self._unary("GetBucketCors", request)
        return tuple(convert.cors_rule_from_pb(r) for r in resp.rules)

    async def delete_bucket_cors(self, bucket: str) -> None:
        """Remove the bucket's CORS configuration (a no-op when it has none)."""
        validation.check_bucket_name(bucket)
        await self._unary("DeleteBucketCors", objects_pb2.BucketCorsRequest(bucket=bucket))

    # -- bucket tags ---------------------------------------------------------------

    async def put_bucket_tagging(self, bucket: str, tags: Mapping[str, str]) -> dict[str, str]:
        """Replace the bucket's tags (S3's PutBucketTagging: at most 50, keys
        1-128 and values 0-256 characters; InvalidTag otherwise); an empty set
        removes them. Returns the tags now stored."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.BucketTaggingRequest(
            bucket=bucket, tags=check_tag_set(tags, bucket=True)
        )
        return dict((await self._unary("PutBucketTagging", request)).tags)

    async def get_bucket_tagging(self, bucket: str) -> dict[str, str]:
        """The bucket's tags; NoSuchTagSet when it has none (as S3 answers)."""
        validation.check_bucket_name(bucket)
        request = objects_pb2.BucketTaggingRequest(bucket=bucket)
        return dict((await self._unary("GetBucketTagging", request)).tags)

    async def delete_bucket_tagging(self, bucket: str) -> None:
        """Remove the bucket's tags (a no-op when it has none)."""
        validation.check_bucket_name(bucket)
        await self._unary("DeleteBucketTagging", objects_pb2.BucketTaggingRequest(bucket=bucket))

    # -- users and access keys (admin role) ---------------------------------------

    async def create_user(
        self, name: str, role: str = "user", buckets: Sequence[str] = ()
    ) -> UserInfo:
        """A new user: role ``user``, ``admin``, or ``replication`` (which may
        only apply replicas, to ``buckets``; ``*`` for any)."""
        req = admin_pb2.UserRequest(name=name, role=role, buckets=list(buckets))
        resp = await self._unary("CreateUser", req, admin=True)
        return _user(resp.user)

    async def list_users(self) -> list[UserInfo]:
        resp = await self._unary("ListUsers", admin_pb2.ListUsersRequest(), admin=True)
        return [_user(u) for u in resp.users]

    async def delete_user(self, name: str) -> None:
        """Remove a user and every access key of it."""
        await self._unary("DeleteUser", admin_pb2.UserRequest(name=name), admin=True)

    async def create_access_key(self, user: str) -> AccessKeyInfo:
        """A new key of ``user``; its secret is in this answer only."""
        req = admin_pb2.AccessKeyRequest(user=user)
        resp = await self._unary("CreateAccessKey", req, admin=True)
        return replace(_key(resp.key), secret_access_key=resp.secret_access_key)

    async def list_access_keys(self, user: str | None = None) -> list[AccessKeyInfo]:
        req = admin_pb2.AccessKeyRequest(user=user or "")
        resp = await self._unary("ListAccessKeys", req, admin=True)
        return [_key(k) for k in resp.keys]

    async def revoke_access_key(self, access_key_id: str) -> None:
        """Delete a key: every node refuses it within ``[auth] cache_s``."""
        req = admin_pb2.AccessKeyRequest(access_key_id=access_key_id)
        await self._unary("RevokeAccessKey", req, admin=True)

    # -- plumbing --------------------------------------------------------------

    def _get_request(
        self,
        bucket: str,
        key: str,
        range_: RangeSpec | None,
        version_id: str | None,
        conditions: Conditions | None,
        sse_customer_key: bytes | None = None,
        part_number: int | None = None,
    ) -> Any:
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        request = objects_pb2.GetObjectRequest(
            bucket=bucket,
            key=key,
            version_id=check_version_id(version_id),
            part_number=_check_part(part_number),
        )
        _set_ssec(request.sse_customer, sse_customer_key)
        checked = check_conditions(conditions)
        if checked is not None:
            request.conditions.CopyFrom(convert.conditions_to_pb(checked))
        r = coerce_range(range_)
        if r is not None:
            request.range.start = r.start
            request.range.end = r.end
            request.has_range = True
        return request

    def _versions_request(
        self,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        max_keys: int | None,
        key_marker: str | None,
        version_id_marker: str | None,
    ) -> Any:
        validation.check_bucket_name(bucket)
        _check_prefix("prefix", prefix)
        _check_prefix("key_marker", key_marker or "")
        if delimiter:
            validation.check_delimiter(delimiter)
        if version_id_marker and not key_marker:
            raise errors.InvalidArgument("a version-id marker cannot be given without a key marker")
        request = objects_pb2.ListObjectVersionsRequest(
            bucket=bucket,
            prefix=prefix,
            delimiter=delimiter or "",
            key_marker=key_marker or "",
            version_id_marker=check_version_id(version_id_marker),
        )
        if max_keys is not None:
            request.max_keys = _check_max_keys(max_keys)
            request.has_max_keys = True
        return request

    def _tagging_request(self, bucket: str, key: str, version_id: str | None) -> Any:
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        return objects_pb2.ObjectTaggingRequest(
            bucket=bucket, key=key, version_id=check_version_id(version_id)
        )

    def _acl_request(self, bucket: str, key: str, version_id: str | None) -> Any:
        validation.check_bucket_name(bucket)
        validation.check_key(key)
        return objects_pb2.ObjectAclRequest(
            bucket=bucket, key=key, version_id=check_version_id(version_id)
        )

    def _list_request(
        self,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        max_keys: int | None,
        continuation_token: str | None,
        start_after: str | None,
    ) -> Any:
        validation.check_bucket_name(bucket)
        _check_prefix("prefix", prefix)
        if delimiter:
            validation.check_delimiter(delimiter)
        request = objects_pb2.ListObjectsRequest(
            bucket=bucket,
            prefix=prefix,
            delimiter=delimiter or "",
            continuation_token=continuation_token or "",
            start_after=start_after or "",
        )
        if max_keys is not None:
            request.max_keys = _check_max_keys(max_keys)
            request.has_max_keys = True
        return request

    async def _unary(
        self,
        method: str,
        request: Any,
        *,
        admin: bool = False,
        done_if: type[errors.TristoreError] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One unary call with retries. ``done_if``: the error that means a
        retry found the work already done, by an earlier attempt that failed
        after it took effect (BucketAlreadyExists for a create, and so its
        subclass BucketAlreadyOwnedByYou). ``timeout``:
        each attempt's deadline, when longer than the client's."""
        retried = False
        if timeout is not None and self._timeout is not None:
            timeout = max(timeout, self._timeout)
        else:
            timeout = self._timeout

        async def attempt(ep: Endpoint) -> Any:
            nonlocal retried
            stub = ep.admin if admin else ep.objects
            try:
                return await getattr(stub, method)(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                err = errors.from_rpc_error(exc)
                if retried and done_if is not None and isinstance(err, done_if):
                    log.debug("%s: %s after a retry; an earlier attempt did it", method, err.code)
                    return None
                retried = retried or err.retriable
                raise

        return await self._call(method, attempt)

    async def _unary_on(self, ep: Endpoint, method: str, request: Any) -> Any:
        """One attempt of a unary ObjectService call on ``ep`` (the caller
        retries); None when the server is of a version without ``method``."""
        if method in ep.unimplemented:
            return None
        try:
            return await getattr(ep.objects, method)(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            ep.unimplemented.add(method)
            return None

    async def _put_once(
        self,
        ep: Endpoint,
        header: Any,
        body: Body,
        progress: Progress | None,
        method: str = "PutObject",
    ) -> Any:
        """One client-streaming upload: PutObject, or UploadPart."""
        # A client stream is signed by its header, before the call starts.
        call = getattr(ep.objects, method)(metadata=ep.sign(method, header))
        message = _STREAMED[method]
        first = _FirstStatus(call)
        try:
            try:
                # Connect before taking anything from the body, so that an
                # unreachable endpoint leaves even a one-shot body untouched.
                await call.wait_for_connection()
                await _send_body(call, message, header, body, progress)
                await call.done_writing()
            except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
                # The RPC ended early: the server refused the upload part-way
                # (or the connection broke). The failed write reports only
                # "Internal error from Core"; the call's own status says why.
                pass
            try:
                return await call
            except grpc.aio.AioRpcError as exc:
                real = first.error_hidden_by(exc)
                if real is not None:
                    raise real from None
                # No status of the server's under the mask: the connection broke
                # while the body went out (the node died, say): errors.from_grpc
                # makes that ServiceUnavailable.
                raise
        except BaseException:
            call.cancel()
            raise

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, the one this client is bound to."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this AsyncClient is bound to another event loop; create one client per loop"
            )
        return loop

    async def _call(
        self,
        op: str,
        attempt: Callable[[Endpoint], Awaitable[T]],
        *,
        retry_if: Callable[[], bool] | None = None,
    ) -> T:
        """Run ``attempt`` on an endpoint; on a retriable error, back off and
        run it on the next one, within the policy's attempt and time bounds
        (and only while ``retry_if()``, when given, says a retry is possible)."""
        if self._closed:
            raise RuntimeError("the tristore client is closed")
        loop = self._bind_loop()
        policy = self._retry
        n = len(self._endpoints)
        max_attempts = policy.attempts(n)
        give_up_at = loop.time() + policy.total_s
        idx = self._preferred
        tried: list[str] = []
        failures = 0
        while True:
            ep = self._endpoints[idx % n]
            if ep.address not in tried:
                tried.append(ep.address)
            try:
                return await attempt(ep)
            except grpc.aio.AioRpcError as exc:
                err = errors.from_rpc_error(exc)
                transport = not has_server_code(exc)
            except errors.TristoreError as exc:
                err, transport = exc, False
            failures += 1
            limit = max_attempts
            if isinstance(err, CLUSTER_WIDE):
                limit = min(limit, policy.cluster_wide_attempts)
            delay = policy.backoff(failures)
            if (
                not err.retriable
                or failures >= limit
                or loop.time() + delay > give_up_at
                or (retry_if is not None and not retry_if())
            ):
                if err.retriable and transport:
                    raise type(err)(
                        f"{op} failed on {', '.join(tried)} after {failures} attempt(s): "
                        f"{err.message}"
                    ) from None
                raise err from None
            if self._preferred == idx % n:
                self._preferred = (idx + 1) % n  # fail over for every later call too
            idx += 1
            log.debug(
                "%s failed on %s (%s: %s); retrying on %s in %.0f ms",
                op,
                ep.address,
                err.code,
                err.message,
                self._endpoints[idx % n].address,
                delay * 1000,
            )
            await asyncio.sleep(delay)


def _user(u: Any) -> UserInfo:
    created = ms_to_datetime(u.created_ms) if u.created_ms else None
    return UserInfo(u.name, u.role, tuple(u.buckets), created)


def _key(k: Any) -> AccessKeyInfo:
    created = ms_to_datetime(k.created_ms) if k.created_ms else None
    return AccessKeyInfo(k.access_key_id, k.user, created)


def _object_header(
    bucket: str,
    key: str,
    content_type: str | None,
    metadata: dict[str, str] | None,
    tags: Mapping[str, str] | None,
    acl: str | None,
    storage_class: str | None,
    sse: str | None,
    headers: Mapping[str, str] | None = None,
) -> objects_pb2.PutObjectHeader:
    """The validated fields of a new object (a PUT's, or a multipart upload's)."""
    validation.check_bucket_name(bucket)
    validation.check_key(key)
    return objects_pb2.PutObjectHeader(
        bucket=bucket,
        key=key,
        content_type=validation.normalize_content_type(content_type),
        metadata=validation.normalize_metadata(metadata),
        tags=check_tag_set(tags),
        acl=validation.check_acl(acl) if acl else "",
        storage_class=validation.check_storage_class(storage_class) if storage_class else "",
        sse=validation.check_sse(sse or ""),
        headers=validation.normalize_headers(headers),
    )


#: The request message of each client-streaming upload.
_STREAMED: dict[str, Any] = {
    "PutObject": objects_pb2.PutObjectRequest,
    "UploadPart": objects_pb2.UploadPartRequest,
}


async def _send_body(
    call: Any, message: Any, header: Any, body: Body, progress: Progress | None
) -> None:
    """Write the header (with the first chunk) and the rest of the body."""
    sent = 0
    first = True
    async with contextlib.aclosing(body.chunks()) as chunks:
        async for chunk in chunks:
            if first:
                await call.write(message(header=header, data=chunk))
                first = False
            else:
                await call.write(message(data=chunk))
            sent += len(chunk)
            if progress is not None:
                progress(sent)
    if first:  # an empty body: the header alone
        await call.write(message(header=header))


class _FirstStatus:
    """Remembers the first final status grpc.aio gives a call.

    When a client-streaming write fails because the server has just ended the
    RPC (it refused the upload part-way), grpc.aio sets the call's status to
    INTERNAL "Internal error from Core" -- even when the server's own status
    had already arrived, which it then overwrites. Done callbacks run on every
    status change, so the first one sees the server's real status. This reads
    a private attribute of grpc.aio; if that ever goes away, the workaround
    quietly does nothing.
    """

    def __init__(self, call: Any) -> None:
        self._status: Any = None
        call.add_done_callback(self._on_done)

    def _on_done(self, call: Any) -> None:
        if self._status is None:
            self._status = getattr(getattr(call, "_cython_call", None), "_status", None)

    def error_hidden_by(self, exc: grpc.aio.AioRpcError) -> errors.TristoreError | None:
        """The server's error, when ``exc`` is grpc.aio's INTERNAL mask over it."""
        if not errors.broken_connection(exc.code().name, exc.details()):
            return None
        try:
            code = self._status.code()
            details = self._status.details()
            trailers = self._status.trailing_metadata()
        except Exception:  # noqa: BLE001 - grpc.aio internals changed: give up quietly
            return None
        status = errors.status_of_number(code)
        if status in (None, grpc.StatusCode.OK) or details == errors.GRPC_CORE_ERROR:
            return None
        return errors.from_grpc(status, details, trailers)


class AsyncObjectStream:
    """A GET in progress. ``info``, ``range_start`` and ``range_end`` (inclusive)
    are known once it is open; iterating yields the body's chunks.

    A failure while the body flows raises (the caller may have consumed part of
    it, so it is not silently retried). The stream checks that it received
    exactly the bytes the range announced.
    """

    def __init__(self, client: AsyncClient, request: Any) -> None:
        self._client = client
        self._request = request
        self._call: Any = None
        self._info: ObjectInfo | None = None
        self._pending = b""
        self._expected = 0
        self._received = 0
        self._done = False
        self.range_start = 0
        self.range_end = 0

    @property
    def info(self) -> ObjectInfo:
        if self._info is None:
            raise RuntimeError("the stream is not open: use 'async with' or await it first")
        return self._info

    async def open(self) -> Self:
        if self._info is None:
            if self._done:
                raise RuntimeError("the stream is closed")
            await self._client._call("GetObject", self._open_on)
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self.open().__await__()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _open_on(self, ep: Endpoint) -> None:
        call = ep.objects.GetObject(self._request)
        try:
            timeout = self._client._timeout
            if timeout is None:
                first = await call.read()
            else:
                try:
                    async with asyncio.timeout(timeout):
                        first = await call.read()
                except TimeoutError:
                    raise errors.ServiceUnavailable(
                        f"{ep.address} sent no response within {timeout:g}s"
                    ) from None
            if first is grpc.aio.EOF or not first.HasField("info"):
                raise errors.InternalError("the GetObject stream ended before the object info")
        except BaseException:
            call.cancel()
            raise
        self._call = call
        self._info = convert.info_from_pb(first.info)
        self.range_start, self.range_end = first.range_start, first.range_end
        self._expected = 0 if self._info.size == 0 else self.range_end - self.range_start + 1
        self._pending = first.data

    async def read_chunk(self) -> bytes | None:
        """The next chunk of the body, or None at its end."""
        if self._info is None:
            raise RuntimeError("the stream is not open: use 'async with' or await it first")
        if self._pending:
            data, self._pending = self._pending, b""
            self._received += len(data)
            return data
        while not self._done:
            try:
                msg = await self._call.read()
            except grpc.aio.AioRpcError as exc:
                self._done = True
                err = errors.from_rpc_error(exc)
                raise type(err)(
                    f"the download of {self.info.key!r} broke after {self._received} of "
                    f"{self._expected} bytes: {err.message}"
                ) from None
            if msg is grpc.aio.EOF:
                self._done = True
                if self._received != self._expected:
                    raise errors.InternalError(
                        f"the GetObject stream ended after {self._received} of "
                        f"{self._expected} bytes"
                    )
                break
            if msg.data:
                self._received += len(msg.data)
                return bytes(msg.data)
        return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read(self) -> bytes:
        """The rest of the body, all at once."""
        parts = [c async for c in self]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def aclose(self) -> None:
        self._done = True
        if self._call is not None:
            self._call.cancel()  # a no-op when the stream already ended


def _set_ssec(field: Any, key: bytes | None) -> None:
    """Fill an SseCustomerKey message from a customer's key (checked, MD5 added)."""
    if key is None:
        return
    from tristore import sse as sse_mod  # cryptography: only with SSE-C

    ck = sse_mod.customer_key(sse_mod.SSE_C_ALGORITHM, bytes(key), "")
    assert ck is not None
    field.algorithm = sse_mod.SSE_C_ALGORITHM
    field.key = ck.key
    field.key_md5 = ck.key_md5
