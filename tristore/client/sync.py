"""Client: the blocking SDK, a thin facade over :class:`AsyncClient`.

Each Client runs a private event loop in a daemon thread and submits every call
to it, so the sync and async SDKs share one implementation. Any number of
threads may use one Client at once. ``close()`` (or leaving a ``with`` block)
stops the loop; a Client that is never closed is closed when it is garbage
collected or at interpreter exit, quietly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import os
import threading
import weakref
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import uvloop

from tristore import cors, validation
from tristore.client._body import BodyInput
from tristore.client._transport import RetryPolicy
from tristore.client.aio import (
    DEFAULT_TIMEOUT_S,
    AsyncClient,
    AsyncObjectStream,
    ObjectRef,
    Progress,
    RangeSpec,
)
from tristore.credentials import Credentials
from tristore.errors import TristoreError
from tristore.events import Event, Heartbeat
from tristore.model import (
    AccessKeyInfo,
    Acl,
    BucketInfo,
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
)
from tristore.presign import PresignedPost
from tristore.replication import Rule

if TYPE_CHECKING:
    from tristore.clustermap import ClusterMap, MapChange, NodeConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

_SHUTDOWN_TIMEOUT_S = 10.0
#: How often a caller waiting for a call looks for a signal to handle.
_SIGNAL_CHECK_S = 0.2


class _LoopThread:
    """An event loop running forever in a daemon thread, until :meth:`close`."""

    def __init__(self, name: str) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._lock = threading.Lock()
        self._closed = False
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError(
                "a sync tristore Client cannot be called from its own callbacks "
                "(such as a progress callback); use the AsyncClient there"
            )
        with self._lock:
            if self._closed:
                coro.close()
                raise RuntimeError("the tristore client is closed")
            fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return _wait(fut)
        except concurrent.futures.CancelledError:
            # Only close() cancels work behind a caller's back.
            raise RuntimeError("the tristore client was closed during the call") from None
        except BaseException:
            fut.cancel()  # e.g. KeyboardInterrupt: stop the call in the loop too
            raise

    def close(self, aclose: Coroutine[Any, Any, None]) -> None:
        with self._lock:
            if self._closed:
                aclose.close()
                return
            self._closed = True
        if threading.current_thread() is self.thread:
            aclose.close()
            raise RuntimeError("a sync tristore Client cannot be closed from its own callbacks")
        fut = asyncio.run_coroutine_threadsafe(_shutdown(aclose), self.loop)
        try:
            fut.result(_SHUTDOWN_TIMEOUT_S)
        except Exception:
            log.warning("tristore client did not shut down cleanly", exc_info=True)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(_SHUTDOWN_TIMEOUT_S)
            if not self.thread.is_alive():
                self.loop.close()


def _wait(fut: concurrent.futures.Future[T]) -> T:
    """``fut``'s result, waking every _SIGNAL_CHECK_S: a signal the kernel
    hands to another thread (the loop's) only runs its Python handler (Ctrl-C's
    KeyboardInterrupt, SIGTERM) once the main thread wakes, and an untimed wait
    would not wake until a long call (a whole upload_file) ended."""
    while True:
        try:
            return fut.result(_SIGNAL_CHECK_S)
        except concurrent.futures.TimeoutError:
            if fut.done():
                # It ended just now, or raised TimeoutError itself: its own
                # outcome, never the wait's timeout.
                return fut.result()


async def _shutdown(aclose: Coroutine[Any, Any, None]) -> None:
    await aclose
    me = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not me]
    for t in rest:
        t.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def _finalize(runner: _LoopThread, aio: AsyncClient) -> None:
    runner.close(aio.close())


class Client:
    """The blocking tristore SDK; the same methods as :class:`AsyncClient`.

    ``progress`` callbacks run on the client's loop thread.
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
        self._aio = AsyncClient(
            endpoints,
            timeout=timeout,
            retry=retry,
            ca_file=ca_file,
            insecure=insecure,
            credentials=credentials,
            anonymous=anonymous,
        )
        self._runner = _LoopThread(f"tristore-client-{id(self):x}")
        self._finalizer = weakref.finalize(self, _finalize, self._runner, self._aio)

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._aio.endpoints

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({','.join(self.endpoints)!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    # -- buckets ---------------------------------------------------------------

    def create_bucket(self, bucket: str) -> None:
        self._run(self._aio.create_bucket(bucket))

    def delete_bucket(self, bucket: str) -> None:
        self._run(self._aio.delete_bucket(bucket))

    def head_bucket(self, bucket: str) -> BucketInfo:
        return self._run(self._aio.head_bucket(bucket))

    def list_buckets(self) -> list[BucketInfo]:
        return self._run(self._aio.list_buckets())

    # -- objects ---------------------------------------------------------------

    def put_object(
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
        return self._run(
            self._aio.put_object(
                bucket,
                key,
                data,
                content_type,
                metadata,
                progress,
                tags=tags,
                acl=acl,
                storage_class=storage_class,
                sse=sse,
                if_none_match=if_none_match,
                if_match=if_match,
                sse_customer_key=sse_customer_key,
                headers=headers,
            )
        )

    def get_object(
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
        return self._run(
            self._aio.get_object(
                bucket,
                key,
                range,
                version_id,
                conditions=conditions,
                sse_customer_key=sse_customer_key,
                part_number=part_number,
            )
        )

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
    ) -> ObjectStream:
        """Open a streaming GET: ``with client.get_object_stream(b, k) as s:``,
        then ``for chunk in s``. Errors such as NoSuchKey raise here."""
        stream = self._aio.get_object_stream(
            bucket,
            key,
            range,
            version_id,
            conditions=conditions,
            sse_customer_key=sse_customer_key,
            part_number=part_number,
        )
        self._run(stream.open())
        return ObjectStream(self, stream)

    def head_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        *,
        conditions: Conditions | None = None,
        sse_customer_key: bytes | None = None,
        part_number: int | None = None,
    ) -> ObjectInfo:
        return self._run(
            self._aio.head_object(
                bucket,
                key,
                version_id,
                conditions=conditions,
                sse_customer_key=sse_customer_key,
                part_number=part_number,
            )
        )

    def delete_object(
        self, bucket: str, key: str, version_id: str | None = None, if_match: str | None = None
    ) -> DeleteResult:
        return self._run(self._aio.delete_object(bucket, key, version_id, if_match))

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
        """A presigned URL of the S3 HTTP API for one object (see
        :meth:`tristore.client.aio.AsyncClient.presign_url`): whoever holds it
        may GET (or HEAD, PUT, DELETE) it until it expires, with no credentials
        of their own. No call is made to the cluster."""
        return self._aio.presign_url(
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
    ) -> PresignedPost:
        """A browser upload form of the S3 HTTP API (see
        :meth:`tristore.client.aio.AsyncClient.presign_post`): POST ``url``
        with ``fields`` and the file. No call is made to the cluster."""
        return self._aio.presign_post(
            bucket,
            key,
            expires_in=expires_in,
            fields=fields,
            conditions=conditions,
            endpoint_url=endpoint_url,
            now=now,
        )

    def delete_objects(
        self, bucket: str, objects: Iterable[ObjectRef], quiet: bool = False
    ) -> list[DeletedObject]:
        """Delete many keys of ``bucket`` (S3's DeleteObjects), 1,000 a call.

        ``objects``: keys, or ``(key, version_id)`` pairs. Each key is
        authorized and deleted as its own :meth:`delete_object`; one result a
        key, in order (with ``quiet``, only the failures): ``deleted``, or the
        S3 ``error_code`` and ``error_message`` of the key that was not.
        Bad keys or version ids raise before anything is deleted."""
        return self._run(self._aio.delete_objects(bucket, objects, quiet))

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        max_keys: int | None = None,
        continuation_token: str | None = None,
        start_after: str | None = None,
    ) -> ListPage:
        return self._run(
            self._aio.list_objects(
                bucket, prefix, delimiter, max_keys, continuation_token, start_after
            )
        )

    def iter_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        page_size: int | None = None,
        start_after: str | None = None,
        continuation_token: str | None = None,
    ) -> Iterator[ListPage]:
        """Every page of a listing, following continuation tokens to the end."""
        # Built (and so validated) now, not at the first next().
        pages = self._aio.iter_objects(
            bucket, prefix, delimiter, page_size, start_after, continuation_token
        )
        return self._iterate(pages)

    # -- versioning ------------------------------------------------------------

    def put_bucket_versioning(self, bucket: str, status: str) -> None:
        self._run(self._aio.put_bucket_versioning(bucket, status))

    def get_bucket_versioning(self, bucket: str) -> str:
        return self._run(self._aio.get_bucket_versioning(bucket))

    def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        max_keys: int | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
    ) -> VersionPage:
        return self._run(
            self._aio.list_object_versions(
                bucket, prefix, delimiter, max_keys, key_marker, version_id_marker
            )
        )

    def iter_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        page_size: int | None = None,
        key_marker: str | None = None,
        version_id_marker: str | None = None,
    ) -> Iterator[VersionPage]:
        """Every page of a version listing, following the markers to the end."""
        pages = self._aio.iter_object_versions(
            bucket, prefix, delimiter, page_size, key_marker, version_id_marker
        )
        return self._iterate(pages)

    # -- tags and ACLs ---------------------------------------------------------

    def get_object_tagging(self, bucket: str, key: str, version_id: str | None = None) -> Tagging:
        return self._run(self._aio.get_object_tagging(bucket, key, version_id))

    def put_object_tagging(
        self,
        bucket: str,
        key: str,
        tags: Mapping[str, str],
        version_id: str | None = None,
    ) -> Tagging:
        return self._run(self._aio.put_object_tagging(bucket, key, tags, version_id))

    def delete_object_tagging(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Tagging:
        return self._run(self._aio.delete_object_tagging(bucket, key, version_id))

    def get_object_acl(self, bucket: str, key: str, version_id: str | None = None) -> Acl:
        return self._run(self._aio.get_object_acl(bucket, key, version_id))

    def put_object_acl(self, bucket: str, key: str, acl: str, version_id: str | None = None) -> Acl:
        return self._run(self._aio.put_object_acl(bucket, key, acl, version_id))

    # -- replication -------------------------------------------------------------

    def put_bucket_replication(self, bucket: str, rules: Sequence[Rule]) -> tuple[Rule, ...]:
        """Replace the rules; see :meth:`AsyncClient.put_bucket_replication`."""
        return self._run(self._aio.put_bucket_replication(bucket, rules))

    def get_bucket_replication(self, bucket: str) -> tuple[Rule, ...]:
        return self._run(self._aio.get_bucket_replication(bucket))

    def delete_bucket_replication(self, bucket: str) -> None:
        self._run(self._aio.delete_bucket_replication(bucket))

    # -- default encryption --------------------------------------------------------

    def put_bucket_encryption(self, bucket: str, sse: str = "AES256") -> None:
        self._run(self._aio.put_bucket_encryption(bucket, sse))

    def get_bucket_encryption(self, bucket: str) -> str:
        return self._run(self._aio.get_bucket_encryption(bucket))

    def delete_bucket_encryption(self, bucket: str) -> None:
        self._run(self._aio.delete_bucket_encryption(bucket))

    def requeue_replication(self, bucket: str, key: str, version_id: str, destination: str) -> None:
        self._run(self._aio.requeue_replication(bucket, key, version_id, destination))

    def requeue_replications(
        self, bucket: str, items: Sequence[tuple[str, str, str]]
    ) -> list[TristoreError | None]:
        return self._run(self._aio.requeue_replications(bucket, items))

    # -- multipart upload --------------------------------------------------------

    def create_multipart_upload(
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
        return self._run(
            self._aio.create_multipart_upload(
                bucket,
                key,
                content_type,
                metadata,
                tags=tags,
                acl=acl,
                storage_class=storage_class,
                sse=sse,
                sse_customer_key=sse_customer_key,
                headers=headers,
            )
        )

    def upload_part(
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
        return self._run(
            self._aio.upload_part(
                bucket,
                key,
                upload_id,
                part_number,
                data,
                progress,
                content_md5,
                sse_customer_key=sse_customer_key,
            )
        )

    def complete_multipart_upload(
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
        return self._run(
            self._aio.complete_multipart_upload(
                bucket,
                key,
                upload_id,
                list(parts),
                timeout=timeout,
                sse_customer_key=sse_customer_key,
                if_none_match=if_none_match,
                if_match=if_match,
            )
        )

    def upload_file(
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
        """See :meth:`AsyncClient.upload_file` (``progress`` runs on the
        client's loop thread)."""
        return self._run(
            self._aio.upload_file(
                path, bucket, key, content_type, metadata,
                multipart_threshold=multipart_threshold, part_size=part_size,
                parallel=parallel, progress=progress, resume=resume, state_dir=state_dir,
                tags=tags, acl=acl, storage_class=storage_class, sse=sse,
                sse_customer_key=sse_customer_key, headers=headers,
            )
        )  # fmt: skip

    def download_file(
        self,
        bucket: str,
        key: str,
        path: str | os.PathLike[str],
        version_id: str | None = None,
        *,
        sse_customer_key: bytes | None = None,
    ) -> ObjectInfo:
        """See :meth:`AsyncClient.download_file`."""
        return self._run(
            self._aio.download_file(
                bucket, key, path, version_id, sse_customer_key=sse_customer_key
            )
        )

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._run(self._aio.abort_multipart_upload(bucket, key, upload_id))

    def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int | None = None,
        delimiter: str | None = None,
    ) -> UploadPage:
        return self._run(
            self._aio.list_multipart_uploads(
                bucket, prefix, key_marker, upload_id_marker, max_uploads, delimiter
            )
        )

    def list_parts(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int = 0,
        max_parts: int | None = None,
    ) -> PartPage:
        return self._run(
            self._aio.list_parts(bucket, key, upload_id, part_number_marker, max_parts)
        )

    # -- copy ------------------------------------------------------------------

    def copy_object(
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
        """Server-side copy; see :meth:`AsyncClient.copy_object`."""
        return self._run(
            self._aio.copy_object(
                source,
                bucket,
                key,
                metadata_directive,
                content_type,
                metadata,
                tagging_directive,
                tags,
                acl,
                storage_class,
                sse,
                sse_customer_key,
                copy_source_sse_customer_key,
                headers,
            )
        )

    def _iterate(self, pages: Any) -> Iterator[Any]:
        try:
            while True:
                try:
                    yield self._run(pages.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            # Also runs when an abandoned generator is collected, possibly after close().
            with contextlib.suppress(RuntimeError):
                self._run(pages.aclose())

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
    ) -> Iterator[Event | Heartbeat]:
        """Events of a bucket as they happen (see AsyncClient.subscribe_events).
        Blocks in ``next()`` until the next event; never ends by itself."""
        messages = self._aio.subscribe_events(
            bucket,
            prefix,
            cursor=cursor,
            from_start=from_start,
            heartbeats=heartbeats,
            heartbeat_s=heartbeat_s,
        )
        return self._iterate(messages)

    # -- admin -----------------------------------------------------------------

    def cluster_status(self) -> ClusterStatus:
        return self._run(self._aio.cluster_status())

    def repair(self, bucket: str = "", dry_run: bool = False) -> Iterator[RepairReport]:
        """Anti-entropy repair (see AsyncClient.repair): progress reports as
        they come, the last one with ``done`` set and the totals."""
        return self._iterate(self._aio.repair(bucket, dry_run))

    def scrub(self, bucket: str = "") -> Iterator[ScrubReport]:
        """Scrub every node (see AsyncClient.scrub): progress reports as they
        come, each node's last one with ``done`` set."""
        return self._iterate(self._aio.scrub(bucket))

    def cluster_map(self) -> ClusterMap:
        return self._run(self._aio.cluster_map())

    def put_bucket_policy(self, bucket: str, policy: str | Mapping[str, Any]) -> str:
        return self._run(self._aio.put_bucket_policy(bucket, policy))

    def get_bucket_policy(self, bucket: str) -> str:
        return self._run(self._aio.get_bucket_policy(bucket))

    def delete_bucket_policy(self, bucket: str) -> None:
        self._run(self._aio.delete_bucket_policy(bucket))

    def put_bucket_cors(self, bucket: str, rules: Sequence[cors.Rule]) -> None:
        """Replace the CORS rules; see :meth:`AsyncClient.put_bucket_cors`."""
        self._run(self._aio.put_bucket_cors(bucket, rules))

    def get_bucket_cors(self, bucket: str) -> tuple[cors.Rule, ...]:
        """The CORS rules; NoSuchCORSConfiguration when the bucket has none."""
        return self._run(self._aio.get_bucket_cors(bucket))

    def delete_bucket_cors(self, bucket: str) -> None:
        """Remove the bucket's CORS configuration."""
        self._run(self._aio.delete_bucket_cors(bucket))

    def put_bucket_tagging(self, bucket: str, tags: Mapping[str, str]) -> dict[str, str]:
        """Replace the bucket's tags; see :meth:`AsyncClient.put_bucket_tagging`."""
        return self._run(self._aio.put_bucket_tagging(bucket, tags))

    def get_bucket_tagging(self, bucket: str) -> dict[str, str]:
        """The bucket's tags; NoSuchTagSet when it has none."""
        return self._run(self._aio.get_bucket_tagging(bucket))

    def delete_bucket_tagging(self, bucket: str) -> None:
        """Remove the bucket's tags."""
        self._run(self._aio.delete_bucket_tagging(bucket))

    def create_user(self, name: str, role: str = "user", buckets: Sequence[str] = ()) -> UserInfo:
        return self._run(self._aio.create_user(name, role, buckets))

    def list_users(self) -> list[UserInfo]:
        return self._run(self._aio.list_users())

    def delete_user(self, name: str) -> None:
        self._run(self._aio.delete_user(name))

    def create_access_key(self, user: str) -> AccessKeyInfo:
        return self._run(self._aio.create_access_key(user))

    def list_access_keys(self, user: str | None = None) -> list[AccessKeyInfo]:
        return self._run(self._aio.list_access_keys(user))

    def revoke_access_key(self, access_key_id: str) -> None:
        self._run(self._aio.revoke_access_key(access_key_id))

    def change_node(
        self, name: str, action: str, expect_epoch: int = 0, force: bool = False
    ) -> MapChange:
        return self._run(self._aio.change_node(name, action, expect_epoch, force))

    def node_config(self) -> NodeConfig:
        return self._run(self._aio.node_config())

    def rotate_master_key(self, keep_key: bool = False) -> KeyRotation:
        return self._run(self._aio.rotate_master_key(keep_key))


class ObjectStream:
    """A blocking view of :class:`AsyncObjectStream`: iterate for chunks.

    The Client may be shared between threads; one stream is read by one
    thread at a time."""

    def __init__(self, client: Client, stream: AsyncObjectStream) -> None:
        self._client = client
        self._stream = stream
        self._closed = False

    @property
    def info(self) -> ObjectInfo:
        return self._stream.info

    @property
    def range_start(self) -> int:
        return self._stream.range_start

    @property
    def range_end(self) -> int:
        return self._stream.range_end

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        chunk = self._client._run(self._stream.read_chunk())
        if chunk is None:
            raise StopIteration
        return chunk

    def read(self) -> bytes:
        """The rest of the body, all at once."""
        return self._client._run(self._stream.read())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # the client is closed: so is the stream
            self._client._run(self._stream.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
