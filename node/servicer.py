"""gRPC servicers of the storage node: decode, call the domain, encode."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias, TypeVar, cast

import grpc

from node import bulk_delete, keys, records
from node.coordinator import Coordinator
from node.events import EventStreams, NodeEvents
from node.guard import KEY_CHECK, Guard
from node.iam import AccessKey, Iam, User
from node.membership import Membership
from node.multipart import Multipart
from node.objects import GetResult, PutHeader
from node.peers import Peers
from node.relay import WriteRelay
from node.repair import Repairer, serve_repair
from node.replica_store import CommitResult, ReplicaStore, VersionRead
from node.replication_apply import StatusUpdate
from node.scrub import Scrubber, scrub_nodes
from node.witness_client import WitnessConn, WitnessFleet
from tristore import clustermap, config, framed, loops, pipe, tls, validation
from tristore.config import NodeSpec, ReplicatorSpec
from tristore.convert import (
    acl_to_pb,
    bucket_to_pb,
    change_from_pb,
    cluster_map_from_pb,
    cluster_map_to_pb,
    completed_part_from_pb,
    conditions_from_pb,
    cors_rule_from_pb,
    cors_rule_to_pb,
    deleted_to_pb,
    info_to_pb,
    page_to_pb,
    part_page_to_pb,
    rule_from_pb,
    rule_to_pb,
    scrub_report_to_pb,
    stamp_from_pb,
    stamp_to_pb,
    tagging_to_pb,
    upload_page_to_pb,
    version_from_pb,
    version_page_to_pb,
    version_to_pb,
)
from tristore.errors import (
    AccessDenied,
    CorruptData,
    InvalidArgument,
    InvalidRequest,
    TristoreError,
    as_tristore,
)
from tristore.events import event_to_pb, message_to_pb
from tristore.model import SMALL_BODY_MAX, ByteRange, Change, CopySource
from tristore.pb import (
    admin_pb2,
    admin_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    objects_pb2,
    objects_pb2_grpc,
    replica_pb2,
    replica_pb2_grpc,
)
from tristore.server import cluster_channel
from tristore.sse import CustomerKey, customer_key

log = logging.getLogger(__name__)

Ctx: TypeAlias = grpc.aio.ServicerContext


class ObjectServicer(objects_pb2_grpc.ObjectServiceServicer):
    def __init__(self, coord: Coordinator, guard: Guard | None = None) -> None:
        self.coord = coord
        self.guard = guard
        self.multipart = Multipart(coord, coord.cfg.node)

    async def CreateBucket(
        self, request: objects_pb2.CreateBucketRequest, context: Ctx
    ) -> objects_pb2.CreateBucketResponse:
        info = await self.coord.create_bucket(request.bucket)
        return objects_pb2.CreateBucketResponse(bucket=bucket_to_pb(info))

    async def DeleteBucket(
        self, request: objects_pb2.DeleteBucketRequest, context: Ctx
    ) -> objects_pb2.DeleteBucketResponse:
        await self.coord.delete_bucket(request.bucket)
        return objects_pb2.DeleteBucketResponse()

    async def HeadBucket(
        self, request: objects_pb2.HeadBucketRequest, context: Ctx
    ) -> objects_pb2.HeadBucketResponse:
        info = await self.coord.head_bucket(request.bucket)
        return objects_pb2.HeadBucketResponse(bucket=bucket_to_pb(info))

    async def ListBuckets(
        self, request: objects_pb2.ListBucketsRequest, context: Ctx
    ) -> objects_pb2.ListBucketsResponse:
        buckets = await self.coord.list_buckets()
        if self.guard is not None:  # a user sees the buckets it owns, as in S3
            shown = await self.guard.visible([b.name for b in buckets])
            buckets = [b for b in buckets if b.name in shown]
        return objects_pb2.ListBucketsResponse(buckets=[bucket_to_pb(b) for b in buckets])

    async def PutObject(
        self, request_iterator: AsyncIterator[objects_pb2.PutObjectRequest], context: Ctx
    ) -> objects_pb2.PutObjectResponse:
        first, body = await _header_then_body(request_iterator, "PutObject")
        info = await self.coord.put_object(_put_header(first.header), body)
        return objects_pb2.PutObjectResponse(info=info_to_pb(info))

    async def _get(
        self, request: objects_pb2.GetObjectRequest
    ) -> tuple[GetResult, objects_pb2.GetObjectResponse]:
        """The object GetObject and GetSmallObject read, and the first message
        of the answer (its info and range, no data yet)."""
        rng = ByteRange(request.range.start, request.range.end) if request.has_range else None
        result = await self.coord.get_object(
            request.bucket,
            request.key,
            rng,
            request.version_id,
            conditions_from_pb(request.conditions),
            _customer_key(request.sse_customer),
            part_number=request.part_number,
        )
        head = objects_pb2.GetObjectResponse(
            info=info_to_pb(result.info),
            range_start=max(result.first, 0),
            range_end=max(result.last, 0),
        )
        return result, head

    async def GetObject(
        self, request: objects_pb2.GetObjectRequest, context: Ctx
    ) -> AsyncIterator[objects_pb2.GetObjectResponse]:
        result, first = await self._get(request)
        head: objects_pb2.GetObjectResponse | None = first
        async for piece in result.body:
            if head is not None:
                head.data = piece
                yield head
                head = None
            else:
                yield objects_pb2.GetObjectResponse(data=piece)
        if head is not None:
            yield head

    async def PutSmallObject(
        self, request: objects_pb2.PutObjectRequest, context: Ctx
    ) -> objects_pb2.PutObjectResponse:
        if len(request.data) > SMALL_BODY_MAX:
            raise InvalidArgument(
                f"PutSmallObject carries at most {SMALL_BODY_MAX} bytes; "
                f"stream a body of {len(request.data)} with PutObject"
            )
        if not request.HasField("header"):
            raise InvalidArgument("PutSmallObject needs a header")
        info = await self.coord.put_object(_put_header(request.header), _single(request.data))
        return objects_pb2.PutObjectResponse(info=info_to_pb(info))

    async def GetSmallObject(
        self, request: objects_pb2.GetSmallObjectRequest, context: Ctx
    ) -> objects_pb2.GetObjectResponse:
        result, resp = await self._get(request.get)
        if result.last - result.first + 1 > min(request.max_size, SMALL_BODY_MAX):
            await _close(result.body)
            resp.too_large = True
            return resp
        pieces = [piece async for piece in result.body]
        resp.data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return resp

    async def HeadObject(
        self, request: objects_pb2.HeadObjectRequest, context: Ctx
    ) -> objects_pb2.HeadObjectResponse:
        info = await self.coord.head_object(
            request.bucket,
            request.key,
            request.version_id,
            conditions_from_pb(request.conditions),
            _customer_key(request.sse_customer),
            request.part_number,
        )
        return objects_pb2.HeadObjectResponse(info=info_to_pb(info))

    async def DeleteObject(
        self, request: objects_pb2.DeleteObjectRequest, context: Ctx
    ) -> objects_pb2.DeleteObjectResponse:
        result = await self.coord.delete_object(
            request.bucket, request.key, request.version_id, request.if_match
        )
        return objects_pb2.DeleteObjectResponse(
            version_id=result.version_id, delete_marker=result.delete_marker
        )

    async def DeleteObjects(
        self, request: objects_pb2.DeleteObjectsRequest, context: Ctx
    ) -> objects_pb2.DeleteObjectsResponse:
        bucket = request.bucket
        check = self._key_check(bucket)
        objects = [(o.key, o.version_id, "") for o in request.objects]
        results = await bulk_delete.delete_objects(self.coord, bucket, objects, check)
        shown = [r for r in results if not (request.quiet and r.deleted)]
        return objects_pb2.DeleteObjectsResponse(results=[deleted_to_pb(r) for r in shown])

    def _key_check(self, bucket: str) -> bulk_delete.KeyCheck | None:
        """DeleteObject's authorization of each key of a DeleteObjects call."""
        check = KEY_CHECK.get()
        if check is None:
            if self.guard is not None and self.guard.enabled:
                # Fail closed: the guard sets the check for every call it admits.
                raise AccessDenied("DeleteObjects reached its handler without authorization")
            return None
        bound = check

        async def one(key: str, version_id: str) -> None:
            await bound(bucket, key, version_id)

        return one

    async def ListObjects(
        self, request: objects_pb2.ListObjectsRequest, context: Ctx
    ) -> objects_pb2.ListObjectsResponse:
        page = await self.coord.list_objects(
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            max_keys=request.max_keys if request.has_max_keys else 1000,
            continuation_token=request.continuation_token or None,
            start_after=request.start_after,
        )
        return page_to_pb(page)

    async def PutBucketVersioning(
        self, request: objects_pb2.PutBucketVersioningRequest, context: Ctx
    ) -> objects_pb2.PutBucketVersioningResponse:
        await self.coord.put_bucket_versioning(request.bucket, request.status)
        return objects_pb2.PutBucketVersioningResponse()

    async def PutBucketEncryption(
        self, request: objects_pb2.PutBucketEncryptionRequest, context: Ctx
    ) -> objects_pb2.BucketEncryptionResponse:
        sse = await self.coord.put_bucket_encryption(request.bucket, request.sse)
        return objects_pb2.BucketEncryptionResponse(sse=sse)

    async def GetBucketEncryption(
        self, request: objects_pb2.GetBucketEncryptionRequest, context: Ctx
    ) -> objects_pb2.BucketEncryptionResponse:
        sse = await self.coord.get_bucket_encryption(request.bucket)
        return objects_pb2.BucketEncryptionResponse(sse=sse)

    async def DeleteBucketEncryption(
        self, request: objects_pb2.DeleteBucketEncryptionRequest, context: Ctx
    ) -> objects_pb2.BucketEncryptionResponse:
        await self.coord.delete_bucket_encryption(request.bucket)
        return objects_pb2.BucketEncryptionResponse()

    async def GetBucketVersioning(
        self, request: objects_pb2.GetBucketVersioningRequest, context: Ctx
    ) -> objects_pb2.GetBucketVersioningResponse:
        info = await self.coord.head_bucket(request.bucket)
        return objects_pb2.GetBucketVersioningResponse(status=info.versioning)

    async def ListObjectVersions(
        self, request: objects_pb2.ListObjectVersionsRequest, context: Ctx
    ) -> objects_pb2.ListObjectVersionsResponse:
        page = await self.coord.list_object_versions(
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            max_keys=request.max_keys if request.has_max_keys else 1000,
            key_marker=request.key_marker,
            version_id_marker=request.version_id_marker,
        )
        return version_page_to_pb(page)

    async def GetObjectTagging(
        self, request: objects_pb2.ObjectTaggingRequest, context: Ctx
    ) -> objects_pb2.ObjectTaggingResponse:
        t = await self.coord.get_object_tagging(request.bucket, request.key, request.version_id)
        return tagging_to_pb(t)

    async def PutObjectTagging(
        self, request: objects_pb2.ObjectTaggingRequest, context: Ctx
    ) -> objects_pb2.ObjectTaggingResponse:
        t = await self.coord.put_object_tagging(
            request.bucket, request.key, request.version_id, dict(request.tags)
        )
        return tagging_to_pb(t)

    async def DeleteObjectTagging(
        self, request: objects_pb2.ObjectTaggingRequest, context: Ctx
    ) -> objects_pb2.ObjectTaggingResponse:
        t = await self.coord.put_object_tagging(request.bucket, request.key, request.version_id, {})
        return tagging_to_pb(t)

    async def GetObjectAcl(
        self, request: objects_pb2.ObjectAclRequest, context: Ctx
    ) -> objects_pb2.ObjectAclResponse:
        a = await self.coord.get_object_acl(request.bucket, request.key, request.version_id)
        return acl_to_pb(a)

    async def PutObjectAcl(
        self, request: objects_pb2.ObjectAclRequest, context: Ctx
    ) -> objects_pb2.ObjectAclResponse:
        a = await self.coord.put_object_acl(
            request.bucket, request.key, request.version_id, request.acl
        )
        return acl_to_pb(a)

    async def CopyObject(
        self, request: objects_pb2.CopyObjectRequest, context: Ctx
    ) -> objects_pb2.CopyObjectResponse:
        source = CopySource(
            request.source_bucket,
            request.source_key,
            request.source_version_id,
            conditions_from_pb(request.source_conditions),
        )
        dest = PutHeader(
            request.bucket,
            request.key,
            request.content_type,
            dict(request.metadata),
            tags=dict(request.tags),
            acl=request.acl,
            storage_class=request.storage_class,
            sse=request.sse,
            sse_customer=_customer_key(request.sse_customer),
            headers=dict(request.headers),
        )
        result = await self.coord.copy_object(
            source,
            dest,
            request.metadata_directive,
            request.tagging_directive,
            _customer_key(request.copy_source_sse_customer),
        )
        return objects_pb2.CopyObjectResponse(
            info=info_to_pb(result.info), source_version_id=result.source_version_id
        )

    # -- multipart upload ------------------------------------------------------------

    async def CreateMultipartUpload(
        self, request: objects_pb2.CreateMultipartUploadRequest, context: Ctx
    ) -> objects_pb2.CreateMultipartUploadResponse:
        u = await self.multipart.create(_put_header(request.header))
        return objects_pb2.CreateMultipartUploadResponse(
            bucket=u.bucket, key=u.key, upload_id=u.upload_id
        )

    async def UploadPart(
        self, request_iterator: AsyncIterator[objects_pb2.UploadPartRequest], context: Ctx
    ) -> objects_pb2.UploadPartResponse:
        first, body = await _header_then_body(request_iterator, "UploadPart")
        h = first.header
        part = await self.multipart.upload_part(
            h.bucket,
            h.key,
            h.upload_id,
            h.part_number,
            body,
            h.size,
            h.content_md5,
            _customer_key(h.sse_customer),
        )
        return objects_pb2.UploadPartResponse(
            etag=part.etag,
            size=part.size,
            checksum_algorithm=part.checksum_algorithm,
            checksum=part.checksum,
        )

    async def CompleteMultipartUpload(
        self, request: objects_pb2.CompleteMultipartUploadRequest, context: Ctx
    ) -> objects_pb2.CompleteMultipartUploadResponse:
        info = await self.multipart.complete(
            request.bucket,
            request.key,
            request.upload_id,
            [completed_part_from_pb(p) for p in request.parts],
            _customer_key(request.sse_customer),
            request.if_none_match,
            request.if_match,
        )
        return objects_pb2.CompleteMultipartUploadResponse(info=info_to_pb(info))

    async def AbortMultipartUpload(
        self, request: objects_pb2.AbortMultipartUploadRequest, context: Ctx
    ) -> objects_pb2.AbortMultipartUploadResponse:
        await self.multipart.abort(request.bucket, request.key, request.upload_id)
        return objects_pb2.AbortMultipartUploadResponse()

    async def ListMultipartUploads(
        self, request: objects_pb2.ListMultipartUploadsRequest, context: Ctx
    ) -> objects_pb2.ListMultipartUploadsResponse:
        page = await self.multipart.list_uploads(
            request.bucket,
            request.prefix,
            request.key_marker,
            request.upload_id_marker,
            request.max_uploads or 1000,
            request.delimiter,
        )
        return upload_page_to_pb(page)

    async def ListParts(
        self, request: objects_pb2.ListPartsRequest, context: Ctx
    ) -> objects_pb2.ListPartsResponse:
        page = await self.multipart.list_parts(
            request.bucket,
            request.key,
            request.upload_id,
            request.part_number_marker,
            request.max_parts or 1000,
        )
        return part_page_to_pb(page)

    # -- replication -----------------------------------------------------------------

    async def PutBucketReplication(
        self, request: objects_pb2.PutBucketReplicationRequest, context: Ctx
    ) -> objects_pb2.BucketReplicationResponse:
        rules = await self.coord.put_bucket_replication(
            request.bucket, [rule_from_pb(r) for r in request.rules]
        )
        return objects_pb2.BucketReplicationResponse(rules=[rule_to_pb(r) for r in rules])

    async def GetBucketReplication(
        self, request: objects_pb2.GetBucketReplicationRequest, context: Ctx
    ) -> objects_pb2.BucketReplicationResponse:
        rules = await self.coord.get_bucket_replication(request.bucket)
        return objects_pb2.BucketReplicationResponse(rules=[rule_to_pb(r) for r in rules])

    async def DeleteBucketReplication(
        self, request: objects_pb2.DeleteBucketReplicationRequest, context: Ctx
    ) -> objects_pb2.BucketReplicationResponse:
        await self.coord.delete_bucket_replication(request.bucket)
        return objects_pb2.BucketReplicationResponse()

    async def ApplyReplica(
        self, request_iterator: AsyncIterator[objects_pb2.ApplyReplicaRequest], context: Ctx
    ) -> objects_pb2.ApplyReplicaResponse:
        first, body = await _header_then_body(request_iterator, "ApplyReplica")
        applied = await self.coord.apply_replica(
            version_from_pb(first.header.version), first.header.origin_cluster, body
        )
        return objects_pb2.ApplyReplicaResponse(applied=applied)

    async def PutReplicationStatus(
        self, request: objects_pb2.PutReplicationStatusRequest, context: Ctx
    ) -> objects_pb2.PutReplicationStatusResponse:
        await self.coord.put_replication_status(
            request.bucket,
            request.key,
            request.version_id,
            request.destination,
            request.status,
            request.error,
            stamp_from_pb(request.stamp) if request.HasField("stamp") else None,
        )
        return objects_pb2.PutReplicationStatusResponse()

    async def ApplyReplicas(
        self, request: objects_pb2.ApplyReplicasRequest, context: Ctx
    ) -> objects_pb2.ApplyReplicasResponse:
        items = [
            (version_from_pb(i.header.version), i.header.origin_cluster, i.data)
            for i in request.items
        ]
        results = await self.coord.apply_replicas(items)
        return objects_pb2.ApplyReplicasResponse(
            results=[
                objects_pb2.ApplyReplicaResult(error=_item_error(r))
                if isinstance(r, Exception)
                else objects_pb2.ApplyReplicaResult(applied=r)
                for r in results
            ]
        )

    async def PutBucketPolicy(
        self, request: objects_pb2.BucketPolicyRequest, context: Ctx
    ) -> objects_pb2.BucketPolicyResponse:
        text = await self.coord.put_bucket_policy(request.bucket, request.policy)
        return objects_pb2.BucketPolicyResponse(policy=text)

    async def GetBucketPolicy(
        self, request: objects_pb2.BucketPolicyRequest, context: Ctx
    ) -> objects_pb2.BucketPolicyResponse:
        text = await self.coord.get_bucket_policy(request.bucket)
        return objects_pb2.BucketPolicyResponse(policy=text)

    async def DeleteBucketPolicy(
        self, request: objects_pb2.BucketPolicyRequest, context: Ctx
    ) -> objects_pb2.BucketPolicyResponse:
        await self.coord.delete_bucket_policy(request.bucket)
        return objects_pb2.BucketPolicyResponse()

    async def PutBucketCors(
        self, request: objects_pb2.BucketCorsRequest, context: Ctx
    ) -> objects_pb2.BucketCorsResponse:
        rules = [cors_rule_from_pb(r) for r in request.rules]
        await self.coord.put_bucket_cors(request.bucket, rules)
        return objects_pb2.BucketCorsResponse()

    async def GetBucketCors(
        self, request: objects_pb2.BucketCorsRequest, context: Ctx
    ) -> objects_pb2.BucketCorsResponse:
        rules = await self.coord.get_bucket_cors(request.bucket)
        return objects_pb2.BucketCorsResponse(rules=[cors_rule_to_pb(r) for r in rules])

    async def DeleteBucketCors(
        self, request: objects_pb2.BucketCorsRequest, context: Ctx
    ) -> objects_pb2.BucketCorsResponse:
        await self.coord.delete_bucket_cors(request.bucket)
        return objects_pb2.BucketCorsResponse()

    async def PutBucketTagging(
        self, request: objects_pb2.BucketTaggingRequest, context: Ctx
    ) -> objects_pb2.BucketTaggingResponse:
        tags = await self.coord.put_bucket_tagging(request.bucket, dict(request.tags))
        return objects_pb2.BucketTaggingResponse(tags=tags)

    async def GetBucketTagging(
        self, request: objects_pb2.BucketTaggingRequest, context: Ctx
    ) -> objects_pb2.BucketTaggingResponse:
        tags = await self.coord.get_bucket_tagging(request.bucket)
        return objects_pb2.BucketTaggingResponse(tags=tags)

    async def DeleteBucketTagging(
        self, request: objects_pb2.BucketTaggingRequest, context: Ctx
    ) -> objects_pb2.BucketTaggingResponse:
        await self.coord.delete_bucket_tagging(request.bucket)
        return objects_pb2.BucketTaggingResponse()

    async def PutReplicationStatuses(
        self, request: objects_pb2.PutReplicationStatusesRequest, context: Ctx
    ) -> objects_pb2.PutReplicationStatusesResponse:
        items = [
            StatusUpdate(
                i.bucket,
                i.key,
                i.version_id,
                i.destination,
                i.status,
                i.error,
                stamp_from_pb(i.stamp) if i.HasField("stamp") else None,
            )
            for i in request.items
        ]
        results = await self.coord.put_replication_statuses(items)
        return objects_pb2.PutReplicationStatusesResponse(
            results=[
                objects_pb2.PutReplicationStatusResult(error=_item_error(r))
                if isinstance(r, Exception)
                else objects_pb2.PutReplicationStatusResult()
                for r in results
            ]
        )


def _failure(exc: BaseException, what: str) -> TristoreError:
    """One item of a batched call failed: the error its single call would have
    raised (an unexpected one logged, and answered as InternalError)."""
    if not isinstance(exc, TristoreError):
        log.error("%s failed", what, exc_info=exc)
    return as_tristore(exc)


def _batch_error(exc: BaseException) -> replica_pb2.BatchResult:
    """The answer to one operation of a pipe batch that failed."""
    err = _failure(exc, "batch operation")
    return replica_pb2.BatchResult(error=replica_pb2.BatchError(code=err.code, message=err.message))


def _commit_response(result: CommitResult) -> replica_pb2.CommitResponse:
    return replica_pb2.CommitResponse(
        applied=result.applied,
        current=stamp_to_pb(result.current),
        conflict=result.conflict,
        older_above=result.older_above,
        newer_version=result.newer_version,
        below_condition=result.below_condition,
    )


def _item_error(exc: Exception) -> objects_pb2.ItemError:
    err = _failure(exc, "replication item")
    return objects_pb2.ItemError(code=err.code, message=err.message)


_Streamed = TypeVar(
    "_Streamed",
    objects_pb2.PutObjectRequest,
    objects_pb2.UploadPartRequest,
    objects_pb2.ApplyReplicaRequest,
)


async def _single(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def _close(body: AsyncIterator[bytes]) -> None:
    """Let go of a body not read (a stream of chunks from the replicas)."""
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()


async def _header_then_body(
    requests: AsyncIterator[_Streamed], rpc: str
) -> tuple[_Streamed, AsyncIterator[bytes]]:
    """The first message (which must carry the header) and the body's bytes."""
    stream = requests.__aiter__()
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        raise InvalidArgument(f"{rpc} stream was empty: send a header first") from None
    if not first.HasField("header"):
        raise InvalidArgument(f"the first {rpc} message must carry the header")

    async def body() -> AsyncIterator[bytes]:
        if first.data:
            yield first.data
        async for msg in stream:
            if msg.HasField("header"):
                raise InvalidArgument(f"only the first {rpc} message may carry a header")
            yield msg.data

    return first, body()


def _put_header(h: objects_pb2.PutObjectHeader) -> PutHeader:
    return PutHeader(
        h.bucket,
        h.key,
        h.content_type,
        dict(h.metadata),
        h.size,
        h.content_md5,
        tags=dict(h.tags),
        acl=h.acl,
        storage_class=h.storage_class,
        sse=h.sse,
        if_none_match=h.if_none_match,
        if_match=h.if_match,
        sse_customer=_customer_key(h.sse_customer),
        request_id=validation.check_request_id(h.request_id),
        resend=h.resend,
        first_attempt_ms=h.first_attempt_ms,
        headers=dict(h.headers),
    )


def _check_data_id(data_id: bytes, what: str) -> None:
    if len(data_id) != keys.DATA_ID_SIZE:
        raise InvalidArgument(f"{what}: a data id is {keys.DATA_ID_SIZE} bytes, not {len(data_id)}")


def _check_change(change: Change) -> None:
    """A commit from a peer is checked as a request at the edge is: a real
    bucket (or one of the store's own), and versions of the change's key
    whose bodies have well-formed ids."""
    if change.bucket not in keys.INTERNAL_BUCKETS:
        validation.check_bucket_name(change.bucket)
    for v in (*change.versions, *((change.head,) if change.head is not None else ())):
        if (v.bucket, v.key) != (change.bucket, change.key):
            raise InvalidArgument(
                f"a commit of {change.bucket}/{change.key} carries a version of {v.bucket}/{v.key}"
            )
        if v.data_id:
            _check_data_id(v.data_id, "Commit")


def _customer_key(k: objects_pb2.SseCustomerKey) -> CustomerKey | None:
    return customer_key(k.algorithm, k.key, k.key_md5)


class ReplicaServicer(replica_pb2_grpc.ReplicaServiceServicer):
    def __init__(
        self, store: ReplicaStore, coord: Coordinator, relay: WriteRelay | None = None
    ) -> None:
        self.store = store
        #: For ReadSealedBody, the one call here a node serves as coordinator.
        self.coord = coord
        #: Runs the door calls peers relay here (a write coordinator).
        self.relay = relay
        self._loop = loops.LoopBound()

    async def Commit(
        self, request: replica_pb2.CommitRequest, context: Ctx
    ) -> replica_pb2.CommitResponse:
        return await self._commit(request)

    async def _commit(self, request: replica_pb2.CommitRequest) -> replica_pb2.CommitResponse:
        change = change_from_pb(request)
        _check_change(change)
        result = await self.store.commit(change, request.hint_for, request)
        return _commit_response(result)

    async def Pipe(
        self, request_iterator: AsyncIterator[replica_pb2.PipeRequest], context: Ctx
    ) -> AsyncIterator[replica_pb2.PipeResponse]:
        async for answer in pipe.serve(request_iterator, self.answer):
            yield answer

    def pipe_service(self) -> framed.PipeService[Any, Any]:
        """The pipe on the pipe port (tristore/framed.py): the same messages as :meth:`Pipe`."""
        return framed.PipeService(
            framed.REPLICA_PIPE, replica_pb2.PipeRequest.FromString, self.answer
        )

    async def answer(self, request: replica_pb2.PipeRequest) -> replica_pb2.PipeResponse:
        ops = request.ops
        if len(ops) == 1:
            return replica_pb2.PipeResponse(id=request.id, results=[await self._one(ops[0])])
        # Side by side: the commits land in the store's next group commit
        # together. Those decided without asking the AZ (all but conditional
        # ones) go to the writer as one request.
        results: list[replica_pb2.BatchResult | None] = [None] * len(ops)
        plain: list[tuple[int, Change, replica_pb2.CommitRequest]] = []
        others: list[int] = []
        for i, op in enumerate(ops):
            if op.WhichOneof("op") != "commit":
                others.append(i)
                continue
            try:
                change = change_from_pb(op.commit)
                _check_change(change)
            except Exception as exc:  # noqa: BLE001 - one operation's failure is its own
                results[i] = _batch_error(exc)
                continue
            if self.store.hears_az(change):
                others.append(i)
            else:
                plain.append((i, change, op.commit))

        async def commit_plain() -> None:
            try:
                outcomes = await self.store.commit_plain(
                    [(change, wire.hint_for, wire) for _, change, wire in plain]
                )
            except Exception as exc:  # noqa: BLE001 - each commit's failure is its own
                outcomes = [(False, exc)] * len(plain)
            for (i, _, _), (ok, value) in zip(plain, outcomes, strict=True):
                results[i] = (
                    replica_pb2.BatchResult(commit=_commit_response(value))
                    if ok
                    else _batch_error(value)
                )

        async def other(i: int) -> None:
            results[i] = await self._one(ops[i])

        work = [other(i) for i in others]
        if plain:
            work.append(commit_plain())
        if len(work) == 1:
            await work[0]
        elif work:
            await loops.gather(self._loop.loop, *work)
        # Every operation has its result now: each path above sets its own.
        done = cast("list[replica_pb2.BatchResult]", results)
        return replica_pb2.PipeResponse(id=request.id, results=done)

    async def _one(self, op: replica_pb2.BatchOp) -> replica_pb2.BatchResult:
        try:
            kind = op.WhichOneof("op")
            if kind == "commit":
                return replica_pb2.BatchResult(commit=await self._commit(op.commit))
            if kind == "read_meta":
                return replica_pb2.BatchResult(read_meta=await self._read_meta(op.read_meta))
            if kind == "relay":
                return replica_pb2.BatchResult(relay=await self._relayed(op.relay))
            if kind == "read_versions":
                return replica_pb2.BatchResult(
                    read_versions=await self._read_versions(op.read_versions)
                )
            raise InvalidArgument(
                "a batch operation must be a commit, a read_meta, a read_versions or a relay"
            )
        except Exception as exc:  # noqa: BLE001 - one operation's failure is its own
            return _batch_error(exc)

    async def _relayed(self, op: replica_pb2.RelayedCall) -> objects_pb2.DoorAnswer:
        if self.relay is None:
            raise InvalidArgument("this node runs no calls relayed to it")
        return await self.relay.run_here(op.call, op.caller)

    async def Stage(
        self, request_iterator: AsyncIterator[replica_pb2.StageRequest], context: Ctx
    ) -> replica_pb2.StageResponse:
        stream = request_iterator.__aiter__()
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            return replica_pb2.StageResponse()

        _check_data_id(first.data_id, "Stage")

        async def chunks() -> AsyncIterator[tuple[int, bytes]]:
            yield first.index, first.data
            async for msg in stream:
                if msg.data_id != first.data_id:
                    raise InvalidArgument("one Stage stream carries one body")
                yield msg.index, msg.data

        if first.mend:
            return replica_pb2.StageResponse(mended=await self.store.mend(first.data_id, chunks()))
        count, total = await self.store.stage(first.data_id, chunks())
        return replica_pb2.StageResponse(chunks=count, bytes=total)

    async def ReadMeta(
        self, request: replica_pb2.ReadMetaRequest, context: Ctx
    ) -> replica_pb2.ReadMetaResponse:
        return await self._read_meta(request)

    async def _read_meta(
        self, request: replica_pb2.ReadMetaRequest
    ) -> replica_pb2.ReadMetaResponse:
        raw = await self.store.read_meta_record(request.bucket, request.key)
        if raw is None:
            return replica_pb2.ReadMetaResponse(found=False)
        # The record is stored as the message it is sent as: no decoding in between.
        version = records.version_record_pb(raw, request.include_inline)
        return replica_pb2.ReadMetaResponse(found=True, version=version)

    async def ReadData(
        self, request: replica_pb2.ReadDataRequest, context: Ctx
    ) -> AsyncIterator[replica_pb2.ReadDataResponse]:
        if request.chunk_size == 0:
            raise InvalidArgument("chunk_size must be positive")
        _check_data_id(request.data_id, "ReadData")
        try:
            async for piece in self.store.read_data(
                request.data_id, request.chunk_size, request.offset, request.length
            ):
                yield replica_pb2.ReadDataResponse(data=piece)
        except LookupError as exc:  # a chunk this node does not hold
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))

    async def Scan(
        self, request: replica_pb2.ScanRequest, context: Ctx
    ) -> replica_pb2.ScanResponse:
        versions, exhausted = await self.store.scan(
            request.bucket,
            request.prefix,
            request.start_after,
            request.skip_prefix,
            request.limit or 1000,
        )
        return replica_pb2.ScanResponse(
            versions=[version_to_pb(v, with_inline=False) for v in versions], exhausted=exhausted
        )

    async def ReadVersions(
        self, request: replica_pb2.ReadVersionsRequest, context: Ctx
    ) -> replica_pb2.ReadVersionsResponse:
        return await self._read_versions(request)

    async def _read_versions(
        self, request: replica_pb2.ReadVersionsRequest
    ) -> replica_pb2.ReadVersionsResponse:
        raws, removed = await self.store.read_version_records(
            VersionRead(
                request.bucket,
                request.key,
                stamp_from_pb(request.version_stamp) if request.has_version_stamp else None,
                request.null_version,
                request.limit or 1,
            )
        )
        # Records are stored as the messages they are sent as (see _read_meta).
        return replica_pb2.ReadVersionsResponse(
            versions=[records.version_record_pb(raw, request.include_inline) for raw in raws],
            removed=removed,
        )

    async def ScanVersions(
        self, request: replica_pb2.ScanVersionsRequest, context: Ctx
    ) -> replica_pb2.ScanVersionsResponse:
        versions, exhausted = await self.store.scan_versions(
            request.bucket,
            request.prefix,
            request.key_marker,
            stamp_from_pb(request.after_version) if request.has_after_version else None,
            request.limit or 1000,
        )
        return replica_pb2.ScanVersionsResponse(
            versions=[version_to_pb(v, with_inline=False) for v in versions], exhausted=exhausted
        )

    async def ReadLog(
        self, request: replica_pb2.ReadLogRequest, context: Ctx
    ) -> replica_pb2.ReadLogResponse:
        limit = min(request.limit or 256, 10_000)
        # A long poll: the reader hears of a change as soon as it is synced.
        wait_ms = min(request.wait_ms, self.store.cfg.read_log_max_wait_ms)
        if request.reader:
            self.store.note_reader(request.reader, request.after)
        share, shares = request.share, request.shares
        if shares and share >= shares:
            raise InvalidArgument(f"share {share} of {shares}: a share is 0 to shares - 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        after = request.after
        while True:
            await self.store.wait_for_log(after, deadline - loop.time(), request.pending_only)
            if not request.pending_only:
                found = await self.store.read_log(after, limit)
                scanned = found[-1][0] if found else after
                break
            found, scanned = await self.store.read_pending_log(after, limit, share, shares)
            if found or scanned <= after or loop.time() >= deadline:
                break
            # Only other replicators' entries arrived: wait on past them
            # (their reader is not woken for entries it would skip).
            after = scanned
        entries = []
        for seq, raw in found:
            try:
                change = records.change_pb(raw)
            except CorruptData as exc:
                # Counted; the same commit is in the logs of the key's other
                # AZs, which the replicators read too.
                log.warning("change-log entry %d is damaged (%s): not sent", seq, exc)
                continue
            entries.append(replica_pb2.LogEntry(seq=seq, change=change))
        return replica_pb2.ReadLogResponse(
            entries=entries, last_seq=self.store.log_seq, scanned_to=scanned
        )

    async def ReadSealedBody(
        self, request: replica_pb2.ReadSealedBodyRequest, context: Ctx
    ) -> AsyncIterator[replica_pb2.ReadDataResponse]:
        body = await self.coord.sealed_body(
            request.bucket, request.key, request.version_id, request.sse_key
        )
        async for piece in body:
            yield replica_pb2.ReadDataResponse(data=piece)


def _user_pb(u: User) -> admin_pb2.User:
    return admin_pb2.User(
        name=u.name, role=u.role, buckets=list(u.buckets), created_ms=u.created_ms
    )


def _key_pb(k: AccessKey) -> admin_pb2.AccessKey:
    return admin_pb2.AccessKey(access_key_id=k.access_key_id, user=k.user, created_ms=k.created_ms)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        membership: Membership,
        store: ReplicaStore,
        peers: Peers,
        witness: WitnessFleet | None,
        repairer: Repairer,
        iam: Iam | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.iam = iam
        self.repairer = repairer
        self.scrubber = scrubber
        self._replicator_stubs: dict[str, Any] = {}
        self.witness = witness
        self.membership = membership
        self.me = membership.me
        self.store = store
        self.peers = peers
        self.started = time.monotonic()

    def _users(self) -> Iam:
        if self.iam is None:
            raise InvalidRequest("this node keeps no users")
        return self.iam

    async def CreateUser(
        self, request: admin_pb2.UserRequest, context: Ctx
    ) -> admin_pb2.UserResponse:
        user = await self._users().add_user(request.name, request.role, tuple(request.buckets))
        return admin_pb2.UserResponse(user=_user_pb(user))

    async def ListUsers(
        self, request: admin_pb2.ListUsersRequest, context: Ctx
    ) -> admin_pb2.ListUsersResponse:
        users = await self._users().list_users()
        return admin_pb2.ListUsersResponse(users=[_user_pb(u) for u in users])

    async def DeleteUser(
        self, request: admin_pb2.UserRequest, context: Ctx
    ) -> admin_pb2.UserResponse:
        await self._users().delete_user(request.name)
        return admin_pb2.UserResponse()

    async def CreateAccessKey(
        self, request: admin_pb2.AccessKeyRequest, context: Ctx
    ) -> admin_pb2.AccessKeyResponse:
        key, secret = await self._users().create_key(request.user)
        return admin_pb2.AccessKeyResponse(key=_key_pb(key), secret_access_key=secret)

    async def ListAccessKeys(
        self, request: admin_pb2.AccessKeyRequest, context: Ctx
    ) -> admin_pb2.ListAccessKeysResponse:
        found = await self._users().list_keys(request.user)
        return admin_pb2.ListAccessKeysResponse(keys=[_key_pb(k) for k in found])

    async def RevokeAccessKey(
        self, request: admin_pb2.AccessKeyRequest, context: Ctx
    ) -> admin_pb2.AccessKeyResponse:
        await self._users().revoke_key(request.access_key_id)
        return admin_pb2.AccessKeyResponse()

    async def _status(self) -> admin_pb2.NodeStatusResponse:
        disk = self.store.disk
        return admin_pb2.NodeStatusResponse(
            name=self.me.name,
            az=self.me.az,
            role="node",
            hints_pending=self.store.hints_pending,
            objects=await self.store.object_count(),
            disk_bytes=await self.store.disk_bytes(),
            change_log_seq=self.store.log_seq,
            epoch=self.membership.epoch,
            uptime_seconds=time.monotonic() - self.started,
            state=self.membership.state,
            handoffs_pending=self.membership.handoffs_pending(),
            created_ms=self.store.created_ms,
            first_change_ms=await self.store.first_change_ms(),
            tombstones=self.store.tombstones,
            disk_free_bytes=max(0, disk.free) if disk is not None else 0,
            disk_state=disk.state if disk is not None else "",
        )

    async def NodeStatus(
        self, request: admin_pb2.NodeStatusRequest, context: Ctx
    ) -> admin_pb2.NodeStatusResponse:
        return await self._status()

    async def ClusterStatus(
        self, request: admin_pb2.ClusterStatusRequest, context: Ctx
    ) -> admin_pb2.ClusterStatusResponse:

        async def one(spec: NodeSpec) -> admin_pb2.NodeHealth:
            health = admin_pb2.NodeHealth(name=spec.name, az=spec.az, grpc=spec.grpc)
            try:
                if spec.name == self.me.name:
                    status = await self._status()
                else:
                    status = await self.peers.replica_for_map(spec).node_status()
            except Exception as exc:  # noqa: BLE001 - reported in the status, not raised
                health.up = False
                health.error = str(exc)
                return health
            health.up = True
            health.status.CopyFrom(status)
            return health

        cmap = self.membership.map
        nodes, witnesses, replicators = await asyncio.gather(
            asyncio.gather(*(one(n) for n in cmap.nodes)),
            asyncio.gather(*(self._witness(c) for c in self._witness_conns())),
            asyncio.gather(*(self._replicator(r) for r in self.membership.cfg.replicators)),
        )
        return admin_pb2.ClusterStatusResponse(
            cluster=self.membership.cfg.cluster.name,
            epoch=cmap.epoch,
            nodes=nodes,
            witnesses=witnesses,
            replicators=replicators,
        )

    async def _replicator(self, spec: ReplicatorSpec) -> admin_pb2.ReplicatorHealth:
        health = admin_pb2.ReplicatorHealth(name=spec.name, grpc=spec.grpc)
        stub = self._replicator_stubs.get(spec.name)
        if stub is None:
            cfg = self.membership.cfg
            channel = cluster_channel(cfg, self.me.name, spec.grpc)
            stub = self._replicator_stubs[spec.name] = admin_pb2_grpc.ReplicatorAdminStub(channel)
        try:
            status = await stub.ReplicatorStatus(
                admin_pb2.ReplicatorStatusRequest(),
                timeout=self.membership.cfg.node.replicator_status_timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            health.error = f"{exc.code().name}: {exc.details()}"
            return health
        health.up = True
        health.status.CopyFrom(status)
        return health

    async def GetClusterMap(
        self, request: admin_pb2.GetClusterMapRequest, context: Ctx
    ) -> admin_pb2.ClusterMapResponse:
        if request.from_node:
            # The peer map exchange: what a caller says of itself steers this
            # node (its handoffs), so only a node of this cluster may say it.
            cfg = self.membership.cfg
            if not cfg.tls.insecure:
                tls.check_peer(
                    tls.identity_of(context.auth_context()),
                    frozenset({"node"}),
                    cfg.cluster.name,
                    "GetClusterMap with from_node (the peer map exchange)",
                )
        self.membership.heard_from(
            request.from_node, request.handoffs_pending, request.known_epoch, request.known_digest
        )
        return self.membership.to_pb(request.known_epoch, request.known_digest)

    async def PutClusterMap(
        self, request: admin_pb2.PutClusterMapRequest, context: Ctx
    ) -> admin_pb2.ClusterMapResponse:
        await self.membership.adopt(cluster_map_from_pb(request.map))
        return self.membership.to_pb(0)

    async def ChangeNode(
        self, request: admin_pb2.ChangeNodeRequest, context: Ctx
    ) -> admin_pb2.ChangeNodeResponse:
        if request.action == clustermap.REMOVE and request.name == self.me.name:
            raise InvalidRequest(
                f"{self.me.name} cannot remove itself from the map; ask another node"
            )
        new, acked, missed = await self.membership.change(
            request.name, request.action, request.expect_epoch, request.force
        )
        return admin_pb2.ChangeNodeResponse(
            map=cluster_map_to_pb(new), acked=acked, not_reached=missed
        )

    async def Repair(
        self, request: admin_pb2.RepairRequest, context: Ctx
    ) -> AsyncIterator[admin_pb2.RepairProgress]:
        async for progress in serve_repair(self.repairer, request):
            yield progress

    async def Scrub(
        self, request: admin_pb2.ScrubRequest, context: Ctx
    ) -> AsyncIterator[admin_pb2.ScrubProgress]:
        if self.scrubber is None:
            raise InvalidRequest("this node runs no scrubber")
        if request.bucket:
            validation.check_bucket_name(request.bucket)
        if request.node_only:
            reports = self.scrubber.run(request.bucket)
        else:
            remotes = [
                self.peers.replica_for_map(n) for n in self.peers.nodes if n.name != self.me.name
            ]
            reports = scrub_nodes(self.scrubber, remotes, request.bucket)
        async for report in reports:
            yield scrub_report_to_pb(report)

    async def RotateMasterKey(
        self, request: admin_pb2.RotateMasterKeyRequest, context: Ctx
    ) -> admin_pb2.RotateMasterKeyResponse:
        r = await self.repairer.coord.rotate_master_key(request.keep_key)
        # Users' secrets are sealed under the same master keys.
        if self.iam is not None:
            await self.iam.rewrap()
        return admin_pb2.RotateMasterKeyResponse(
            key_id=r.key_id, rewrapped=r.rewrapped, unchanged=r.unchanged
        )

    async def GetConfig(
        self, request: admin_pb2.GetConfigRequest, context: Ctx
    ) -> admin_pb2.GetConfigResponse:
        return admin_pb2.GetConfigResponse(
            toml=config.dump(self.membership.cfg),
            epoch=self.membership.epoch,
            node=self.me.name,
        )

    def _witness_conns(self) -> list[WitnessConn]:
        return [m for g in self.witness.groups for m in g] if self.witness is not None else []

    async def _witness(self, conn: WitnessConn) -> admin_pb2.WitnessHealth:
        spec = conn.spec
        health = admin_pb2.WitnessHealth(name=spec.name, group=spec.group, grpc=spec.grpc)
        try:
            st = await conn.status()
        except Exception as exc:  # noqa: BLE001 - reported in the status, not raised
            health.error = str(exc)
            return health
        health.up = True
        health.incarnation = st.incarnation
        health.keys = st.keys
        health.uptime_seconds = st.uptime_seconds
        return health


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(self, streams: EventStreams, local: NodeEvents) -> None:
        self.streams = streams
        self.local = local

    async def Subscribe(
        self, request: events_pb2.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[events_pb2.SubscribeResponse]:
        messages = self.streams.subscribe(
            request.bucket,
            request.prefix,
            request.cursor,
            request.from_start,
            request.heartbeat_ms,
        )
        async for message in messages:
            yield message_to_pb(message)

    async def ReadNodeEvents(
        self, request: events_pb2.ReadNodeEventsRequest, context: Ctx
    ) -> events_pb2.ReadNodeEventsResponse:
        batch = await self.local.read(
            request.bucket,
            request.prefix,
            request.after,
            min(request.limit or 256, 10_000),
            min(request.wait_ms, 10_000) / 1000,
            request.from_end,
            request.since_ms,
        )
        return events_pb2.ReadNodeEventsResponse(
            events=[event_to_pb(e) for e in batch.events],
            position=batch.position,
            last_seq=batch.last_seq,
        )
