"""The one place where domain dataclasses and protobuf messages meet."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from tristore import cors
from tristore.model import (
    Acl,
    BucketInfo,
    Change,
    ClusterStatus,
    CompletedPart,
    Conditions,
    DeletedObject,
    ListEntry,
    ListPage,
    MultipartUpload,
    NodeHealth,
    NodeStatus,
    ObjectInfo,
    ObjectVersion,
    Part,
    PartPage,
    RepairReport,
    ReplicatorHealth,
    ReplicatorStatus,
    ScrubReport,
    Tagging,
    UploadPage,
    VersionEntry,
    VersionPage,
    WitnessHealth,
    ms_to_datetime,
)
from tristore.pb import admin_pb2, common_pb2, objects_pb2, replica_pb2
from tristore.replication import Destination, Rule
from tristore.stamps import Stamp

if TYPE_CHECKING:
    # Only the admin calls convert cluster maps: a client's object calls load
    # neither module (the cluster config's dataclasses cost ~50 ms a process).
    from tristore.clustermap import ClusterMap


def _ms(t: dt.datetime) -> int:
    return round(t.timestamp() * 1000)


def stamp_to_pb(s: Stamp) -> common_pb2.Stamp:
    return common_pb2.Stamp(
        physical_ms=s.physical_ms, logical=s.logical, cluster_id=s.cluster_id, node_id=s.node_id
    )


def stamp_from_pb(p: common_pb2.Stamp) -> Stamp:
    return Stamp(p.physical_ms, p.logical, p.cluster_id, p.node_id)


def version_to_pb(v: ObjectVersion, with_inline: bool = True) -> common_pb2.ObjectVersion:
    # Only the fields that hold something are set (proto3: an unset scalar
    # reads and serializes as its default): most records leave most of them
    # empty, and each one given to the constructor costs as much as one set
    # here, where an empty one costs a test (a commit converts every version
    # it carries; this halves the cost of that).
    msg = common_pb2.ObjectVersion(bucket=v.bucket, key=v.key, stamp=stamp_to_pb(v.stamp))
    if v.deleted:
        msg.deleted = True
    if v.size:
        msg.size = v.size
    if v.etag:
        msg.etag = v.etag
    if v.content_type:
        msg.content_type = v.content_type
    if v.data_id:
        msg.data_id = v.data_id
    if v.chunk_size:
        msg.chunk_size = v.chunk_size
    if v.null_version:
        msg.null_version = True
    if v.delete_marker:
        msg.delete_marker = True
    if v.acl:
        msg.acl = v.acl
    if v.owner:
        msg.owner = v.owner
    if v.storage_class:
        msg.storage_class = v.storage_class
    if v.sse:
        msg.sse = v.sse
    if v.versioning:
        msg.versioning = v.versioning
    if v.replication_status:
        msg.replication_status = v.replication_status
    if v.origin_cluster:
        msg.origin_cluster = v.origin_cluster
    if v.sse_key:
        msg.sse_key = v.sse_key
    if v.sse_customer_hmac:
        msg.sse_customer_hmac = v.sse_customer_hmac
    if v.default_sse:
        msg.default_sse = v.default_sse
    if v.request_id:
        msg.request_id = v.request_id
    if v.sse_bucket:
        msg.sse_bucket = v.sse_bucket
    if v.checksum_algorithm:
        msg.checksum_algorithm = v.checksum_algorithm
    if v.checksum_type:
        msg.checksum_type = v.checksum_type
    if v.checksum:
        msg.checksum = v.checksum
    if v.metadata:
        msg.metadata.update(v.metadata)
    if v.tags:
        msg.tags.update(v.tags)
    if v.replication_targets:
        msg.replication_targets.update(v.replication_targets)
    if v.headers:
        msg.headers.update(v.headers)
    if v.part_sizes:
        msg.part_sizes.extend(v.part_sizes)
    if v.removed:
        msg.removed.extend(stamp_to_pb(r) for r in v.removed)
    if v.replication_rules:
        msg.replication_rules.extend(rule_to_pb(r) for r in v.replication_rules)
    if v.version_stamp is not None:
        msg.version_stamp.CopyFrom(stamp_to_pb(v.version_stamp))
        msg.has_version_stamp = True
    if v.meta_stamp is not None:
        msg.meta_stamp.CopyFrom(stamp_to_pb(v.meta_stamp))
        msg.has_meta_stamp = True
    if with_inline and v.inline is not None:
        msg.inline_data = v.inline
        msg.has_inline = True
    return msg


def version_from_pb(p: common_pb2.ObjectVersion) -> ObjectVersion:
    return ObjectVersion(
        bucket=p.bucket,
        key=p.key,
        stamp=stamp_from_pb(p.stamp),
        deleted=p.deleted,
        size=p.size,
        etag=p.etag,
        content_type=p.content_type,
        metadata=dict(p.metadata) if p.metadata else {},
        data_id=p.data_id,
        chunk_size=p.chunk_size,
        inline=p.inline_data if p.has_inline else None,
        version_stamp=stamp_from_pb(p.version_stamp) if p.has_version_stamp else None,
        meta_stamp=stamp_from_pb(p.meta_stamp) if p.has_meta_stamp else None,
        null_version=p.null_version,
        delete_marker=p.delete_marker,
        tags=dict(p.tags) if p.tags else {},
        acl=p.acl,
        owner=p.owner,
        storage_class=p.storage_class,
        sse=p.sse,
        removed=tuple(stamp_from_pb(r) for r in p.removed) if p.removed else (),
        versioning=p.versioning,
        replication_rules=(
            tuple(rule_from_pb(r) for r in p.replication_rules) if p.replication_rules else ()
        ),
        replication_status=p.replication_status,
        replication_targets=dict(p.replication_targets) if p.replication_targets else {},
        origin_cluster=p.origin_cluster,
        sse_key=p.sse_key,
        sse_customer_hmac=p.sse_customer_hmac,
        default_sse=p.default_sse,
        request_id=p.request_id,
        headers=dict(p.headers) if p.headers else {},
        sse_bucket=p.sse_bucket,
        checksum_algorithm=p.checksum_algorithm,
        checksum_type=p.checksum_type,
        checksum=p.checksum,
        part_sizes=tuple(p.part_sizes) if p.part_sizes else (),
    )


def info_to_pb(i: ObjectInfo) -> objects_pb2.ObjectInfo:
    return objects_pb2.ObjectInfo(
        bucket=i.bucket,
        key=i.key,
        size=i.size,
        etag=i.etag,
        content_type=i.content_type,
        metadata=i.metadata,
        version_id=i.version_id,
        last_modified_ms=_ms(i.last_modified),
        replication_status=i.replication_status,
        tag_count=i.tag_count,
        storage_class=i.storage_class,
        sse=i.sse,
        sse_customer_algorithm=i.sse_customer_algorithm,
        sse_customer_key_md5=i.sse_customer_key_md5,
        headers=i.headers,
        checksum_algorithm=i.checksum_algorithm,
        checksum_type=i.checksum_type,
        checksum=i.checksum,
        part_sizes=i.part_sizes,
    )


def info_from_pb(p: objects_pb2.ObjectInfo) -> ObjectInfo:
    return ObjectInfo(
        bucket=p.bucket,
        key=p.key,
        size=p.size,
        etag=p.etag,
        content_type=p.content_type,
        metadata=dict(p.metadata),
        version_id=p.version_id,
        last_modified=ms_to_datetime(p.last_modified_ms),
        replication_status=p.replication_status,
        tag_count=p.tag_count,
        storage_class=p.storage_class,
        sse=p.sse,
        sse_customer_algorithm=p.sse_customer_algorithm,
        sse_customer_key_md5=p.sse_customer_key_md5,
        headers=dict(p.headers),
        checksum_algorithm=p.checksum_algorithm,
        checksum_type=p.checksum_type,
        checksum=p.checksum,
        part_sizes=tuple(p.part_sizes),
    )


def bucket_to_pb(b: BucketInfo) -> objects_pb2.BucketInfo:
    return objects_pb2.BucketInfo(name=b.name, created_ms=_ms(b.created))


def bucket_from_pb(p: objects_pb2.BucketInfo) -> BucketInfo:
    return BucketInfo(name=p.name, created=ms_to_datetime(p.created_ms))


def deleted_to_pb(r: DeletedObject) -> objects_pb2.DeletedObject:
    out = objects_pb2.DeletedObject(
        key=r.key,
        version_id=r.version_id,
        delete_marker=r.delete_marker,
        delete_marker_version_id=r.delete_marker_version_id,
    )
    if not r.deleted:
        out.error.code = r.error_code
        out.error.message = r.error_message
    return out


def deleted_from_pb(p: objects_pb2.DeletedObject) -> DeletedObject:
    return DeletedObject(
        key=p.key,
        version_id=p.version_id,
        delete_marker=p.delete_marker,
        delete_marker_version_id=p.delete_marker_version_id,
        error_code=p.error.code,
        error_message=p.error.message,
    )


def page_to_pb(page: ListPage) -> objects_pb2.ListObjectsResponse:
    return objects_pb2.ListObjectsResponse(
        contents=[
            objects_pb2.ListEntry(
                key=e.key,
                size=e.size,
                etag=e.etag,
                last_modified_ms=_ms(e.last_modified),
            )
            for e in page.contents
        ],
        common_prefixes=page.common_prefixes,
        is_truncated=page.is_truncated,
        next_continuation_token=page.next_continuation_token or "",
        key_count=page.key_count,
    )


def page_from_pb(p: objects_pb2.ListObjectsResponse) -> ListPage:
    return ListPage(
        contents=[
            ListEntry(
                key=e.key,
                size=e.size,
                etag=e.etag,
                last_modified=ms_to_datetime(e.last_modified_ms),
            )
            for e in p.contents
        ],
        common_prefixes=list(p.common_prefixes),
        is_truncated=p.is_truncated,
        next_continuation_token=p.next_continuation_token or None,
        key_count=p.key_count,
    )


def node_status_to_pb(s: NodeStatus) -> admin_pb2.NodeStatusResponse:
    return admin_pb2.NodeStatusResponse(
        name=s.name,
        az=s.az,
        role=s.role,
        hints_pending=s.hints_pending,
        objects=s.objects,
        disk_bytes=s.disk_bytes,
        change_log_seq=s.change_log_seq,
        epoch=s.epoch,
        uptime_seconds=s.uptime_seconds,
        state=s.state,
        handoffs_pending=s.handoffs_pending,
        tombstones=s.tombstones,
        disk_free_bytes=s.disk_free_bytes,
        disk_state=s.disk_state,
    )


def node_status_from_pb(p: admin_pb2.NodeStatusResponse) -> NodeStatus:
    return NodeStatus(
        name=p.name,
        az=p.az,
        role=p.role,
        hints_pending=p.hints_pending,
        objects=p.objects,
        disk_bytes=p.disk_bytes,
        change_log_seq=p.change_log_seq,
        epoch=p.epoch,
        uptime_seconds=p.uptime_seconds,
        state=p.state or "active",
        handoffs_pending=p.handoffs_pending,
        tombstones=p.tombstones,
        disk_free_bytes=p.disk_free_bytes,
        disk_state=p.disk_state,
    )


def cluster_map_to_pb(m: ClusterMap) -> admin_pb2.ClusterMap:
    return admin_pb2.ClusterMap(
        epoch=m.epoch,
        nodes=[
            admin_pb2.NodeSpec(
                name=n.name,
                id=n.id,
                az=n.az,
                grpc=n.grpc,
                metrics=n.metrics,
                state=n.state,
                s3=n.s3,
            )
            for n in m.nodes
        ],
    )


def cluster_map_from_pb(p: admin_pb2.ClusterMap) -> ClusterMap:
    from tristore.clustermap import ClusterMap
    from tristore.config import NodeSpec

    return ClusterMap(
        p.epoch,
        tuple(
            NodeSpec(n.name, n.id, n.az, n.grpc, n.metrics, n.state or "active", n.s3)
            for n in p.nodes
        ),
    )


def node_health_to_pb(h: NodeHealth) -> admin_pb2.NodeHealth:
    msg = admin_pb2.NodeHealth(name=h.name, az=h.az, grpc=h.grpc, up=h.up, error=h.error)
    if h.status is not None:
        msg.status.CopyFrom(node_status_to_pb(h.status))
    return msg


def node_health_from_pb(p: admin_pb2.NodeHealth) -> NodeHealth:
    return NodeHealth(
        name=p.name,
        az=p.az,
        grpc=p.grpc,
        up=p.up,
        error=p.error,
        status=node_status_from_pb(p.status) if p.HasField("status") else None,
    )


def witness_health_to_pb(w: WitnessHealth) -> admin_pb2.WitnessHealth:
    return admin_pb2.WitnessHealth(
        name=w.name,
        group=w.group,
        grpc=w.grpc,
        up=w.up,
        error=w.error,
        incarnation=w.incarnation,
        keys=w.keys,
        uptime_seconds=w.uptime_seconds,
    )


def witness_health_from_pb(p: admin_pb2.WitnessHealth) -> WitnessHealth:
    return WitnessHealth(
        name=p.name,
        group=p.group,
        grpc=p.grpc,
        up=p.up,
        error=p.error,
        incarnation=p.incarnation,
        keys=p.keys,
        uptime_seconds=p.uptime_seconds,
    )


def replicator_status_to_pb(s: ReplicatorStatus) -> admin_pb2.ReplicatorStatusResponse:
    return admin_pb2.ReplicatorStatusResponse(
        name=s.name,
        uptime_seconds=s.uptime_seconds,
        dlq_entries=s.dlq_entries,
        log_entries_behind=s.log_entries_behind,
        nodes_tailed=s.nodes_tailed,
        destinations=[
            admin_pb2.DestinationStatus(
                destination=d, lag_seconds=lag, in_flight=s.in_flight.get(d, 0)
            )
            for d, lag in sorted(s.lag_seconds.items())
        ],
    )


def replicator_status_from_pb(p: admin_pb2.ReplicatorStatusResponse) -> ReplicatorStatus:
    return ReplicatorStatus(
        name=p.name,
        uptime_seconds=p.uptime_seconds,
        dlq_entries=p.dlq_entries,
        log_entries_behind=p.log_entries_behind,
        nodes_tailed=p.nodes_tailed,
        lag_seconds={d.destination: d.lag_seconds for d in p.destinations},
        in_flight={d.destination: d.in_flight for d in p.destinations},
    )


def replicator_health_to_pb(r: ReplicatorHealth) -> admin_pb2.ReplicatorHealth:
    msg = admin_pb2.ReplicatorHealth(name=r.name, grpc=r.grpc, up=r.up, error=r.error)
    if r.status is not None:
        msg.status.CopyFrom(replicator_status_to_pb(r.status))
    return msg


def replicator_health_from_pb(p: admin_pb2.ReplicatorHealth) -> ReplicatorHealth:
    return ReplicatorHealth(
        name=p.name,
        grpc=p.grpc,
        up=p.up,
        error=p.error,
        status=replicator_status_from_pb(p.status) if p.HasField("status") else None,
    )


def cluster_status_to_pb(c: ClusterStatus) -> admin_pb2.ClusterStatusResponse:
    return admin_pb2.ClusterStatusResponse(
        cluster=c.cluster,
        epoch=c.epoch,
        nodes=[node_health_to_pb(n) for n in c.nodes],
        witnesses=[witness_health_to_pb(w) for w in c.witnesses],
        replicators=[replicator_health_to_pb(r) for r in c.replicators],
    )


def cluster_status_from_pb(p: admin_pb2.ClusterStatusResponse) -> ClusterStatus:
    return ClusterStatus(
        cluster=p.cluster,
        epoch=p.epoch,
        nodes=tuple(node_health_from_pb(n) for n in p.nodes),
        witnesses=tuple(witness_health_from_pb(w) for w in p.witnesses),
        replicators=tuple(replicator_health_from_pb(r) for r in p.replicators),
    )


def conditions_to_pb(c: Conditions | None) -> objects_pb2.Conditions:
    msg = objects_pb2.Conditions()
    if c is None:
        return msg
    msg.if_match = c.if_match
    msg.if_none_match = c.if_none_match
    if c.if_modified_since is not None:
        msg.if_modified_since_ms = _ms(c.if_modified_since)
        msg.has_if_modified_since = True
    if c.if_unmodified_since is not None:
        msg.if_unmodified_since_ms = _ms(c.if_unmodified_since)
        msg.has_if_unmodified_since = True
    return msg


def conditions_from_pb(p: objects_pb2.Conditions) -> Conditions:
    return Conditions(
        if_match=p.if_match,
        if_none_match=p.if_none_match,
        if_modified_since=(
            ms_to_datetime(p.if_modified_since_ms) if p.has_if_modified_since else None
        ),
        if_unmodified_since=(
            ms_to_datetime(p.if_unmodified_since_ms) if p.has_if_unmodified_since else None
        ),
    )


def version_page_to_pb(page: VersionPage) -> objects_pb2.ListObjectVersionsResponse:
    return objects_pb2.ListObjectVersionsResponse(
        versions=[
            objects_pb2.VersionEntry(
                key=e.key,
                version_id=e.version_id,
                is_latest=e.is_latest,
                delete_marker=e.delete_marker,
                size=e.size,
                etag=e.etag,
                last_modified_ms=_ms(e.last_modified),
                storage_class=e.storage_class,
                owner=e.owner,
                replication_status=e.replication_status,
                replication_targets=e.replication_targets,
                checksum_algorithm=e.checksum_algorithm,
                checksum_type=e.checksum_type,
            )
            for e in page.versions
        ],
        common_prefixes=page.common_prefixes,
        is_truncated=page.is_truncated,
        next_key_marker=page.next_key_marker or "",
        next_version_id_marker=page.next_version_id_marker or "",
    )


def version_page_from_pb(p: objects_pb2.ListObjectVersionsResponse) -> VersionPage:
    return VersionPage(
        versions=[
            VersionEntry(
                key=e.key,
                version_id=e.version_id,
                is_latest=e.is_latest,
                delete_marker=e.delete_marker,
                size=e.size,
                etag=e.etag,
                last_modified=ms_to_datetime(e.last_modified_ms),
                storage_class=e.storage_class,
                owner=e.owner,
                replication_status=e.replication_status,
                replication_targets=dict(e.replication_targets),
                checksum_algorithm=e.checksum_algorithm,
                checksum_type=e.checksum_type,
            )
            for e in p.versions
        ],
        common_prefixes=list(p.common_prefixes),
        is_truncated=p.is_truncated,
        next_key_marker=p.next_key_marker or None,
        next_version_id_marker=p.next_version_id_marker or None,
    )


def tagging_to_pb(t: Tagging) -> objects_pb2.ObjectTaggingResponse:
    return objects_pb2.ObjectTaggingResponse(version_id=t.version_id, tags=t.tags)


def tagging_from_pb(p: objects_pb2.ObjectTaggingResponse) -> Tagging:
    return Tagging(version_id=p.version_id, tags=dict(p.tags))


def acl_to_pb(a: Acl) -> objects_pb2.ObjectAclResponse:
    return objects_pb2.ObjectAclResponse(version_id=a.version_id, owner=a.owner, acl=a.acl)


def acl_from_pb(p: objects_pb2.ObjectAclResponse) -> Acl:
    return Acl(version_id=p.version_id, owner=p.owner, acl=p.acl)


def change_to_pb(
    c: Change, hint_for: str = "", with_inline: bool = True
) -> replica_pb2.CommitRequest:
    versions = [version_to_pb(v, with_inline) for v in c.versions]
    msg = replica_pb2.CommitRequest(
        bucket=c.bucket,
        key=c.key,
        stamp=stamp_to_pb(c.stamp),
        versions=versions,
        removed=[stamp_to_pb(r) for r in c.removed],
        merge=c.merge,
        hint_for=hint_for,
        created=c.created,
        new_versions=c.new_versions,
        withdrawn=[stamp_to_pb(r) for r in c.withdrawn] if c.withdrawn else None,
    )
    if c.head is not None:
        # A new version is usually also the head: converted once.
        same = next((pb for v, pb in zip(c.versions, versions, strict=True) if v is c.head), None)
        msg.head.CopyFrom(same if same is not None else version_to_pb(c.head, with_inline))
        msg.has_head = True
        mark_condition(msg.head, c.condition)
    if c.expect is not None:
        msg.expect.CopyFrom(stamp_to_pb(c.expect))
        msg.has_expect = True
    if c.version_expect is not None:
        msg.version_expect.CopyFrom(stamp_to_pb(c.version_expect))
        msg.has_version_expect = True
    return msg


def mark_condition(msg: common_pb2.ObjectVersion, condition: Stamp | None) -> None:
    """Keep in record ``msg`` the record a conditional write read
    (:attr:`Change.condition`; None: nothing to keep)."""
    if condition is not None:
        msg.condition_read.CopyFrom(stamp_to_pb(condition))
        msg.has_condition_read = True


def change_from_pb(p: replica_pb2.CommitRequest) -> Change:
    versions = tuple(version_from_pb(v) for v in p.versions)
    head = None
    if p.has_head:
        # A new version is usually also the head (see change_to_pb): converted
        # once, and the same object, as it was where the change was made.
        head = next((v for v, pb in zip(versions, p.versions, strict=True) if pb == p.head), None)
        if head is None:
            head = version_from_pb(p.head)
    return Change(
        bucket=p.bucket,
        key=p.key,
        stamp=stamp_from_pb(p.stamp),
        head=head,
        versions=versions,
        removed=tuple(stamp_from_pb(r) for r in p.removed),
        expect=stamp_from_pb(p.expect) if p.has_expect else None,
        merge=p.merge,
        created=p.created,
        new_versions=p.new_versions,
        withdrawn=tuple(stamp_from_pb(r) for r in p.withdrawn) if p.withdrawn else (),
        version_expect=stamp_from_pb(p.version_expect) if p.has_version_expect else None,
        condition=stamp_from_pb(p.head.condition_read) if p.head.has_condition_read else None,
    )


# -- multipart upload ------------------------------------------------------------


def upload_to_pb(u: MultipartUpload) -> objects_pb2.MultipartUpload:
    return objects_pb2.MultipartUpload(
        key=u.key,
        upload_id=u.upload_id,
        initiated_ms=_ms(u.initiated),
        storage_class=u.storage_class,
        owner=u.owner,
    )


def upload_from_pb(bucket: str, p: objects_pb2.MultipartUpload) -> MultipartUpload:
    return MultipartUpload(
        bucket, p.key, p.upload_id, ms_to_datetime(p.initiated_ms), p.storage_class, p.owner
    )


def upload_page_to_pb(page: UploadPage) -> objects_pb2.ListMultipartUploadsResponse:
    return objects_pb2.ListMultipartUploadsResponse(
        uploads=[upload_to_pb(u) for u in page.uploads],
        is_truncated=page.is_truncated,
        next_key_marker=page.next_key_marker or "",
        next_upload_id_marker=page.next_upload_id_marker or "",
        common_prefixes=page.common_prefixes,
    )


def upload_page_from_pb(bucket: str, p: objects_pb2.ListMultipartUploadsResponse) -> UploadPage:
    return UploadPage(
        [upload_from_pb(bucket, u) for u in p.uploads],
        p.is_truncated,
        p.next_key_marker or None,
        p.next_upload_id_marker or None,
        list(p.common_prefixes),
    )


def part_to_pb(part: Part) -> objects_pb2.Part:
    return objects_pb2.Part(
        part_number=part.part_number,
        etag=part.etag,
        size=part.size,
        last_modified_ms=_ms(part.last_modified),
        checksum_algorithm=part.checksum_algorithm,
        checksum=part.checksum,
    )


def part_from_pb(p: objects_pb2.Part) -> Part:
    return Part(
        p.part_number,
        p.etag,
        p.size,
        ms_to_datetime(p.last_modified_ms),
        p.checksum_algorithm,
        p.checksum,
    )


def part_page_to_pb(page: PartPage) -> objects_pb2.ListPartsResponse:
    return objects_pb2.ListPartsResponse(
        parts=[part_to_pb(p) for p in page.parts],
        is_truncated=page.is_truncated,
        next_part_number_marker=page.next_part_number_marker or 0,
        checksum_algorithm=page.checksum_algorithm,
        checksum_type=page.checksum_type,
        storage_class=page.storage_class,
    )


def part_page_from_pb(p: objects_pb2.ListPartsResponse) -> PartPage:
    return PartPage(
        [part_from_pb(x) for x in p.parts],
        p.is_truncated,
        p.next_part_number_marker or None,
        p.checksum_algorithm,
        p.checksum_type,
        p.storage_class,
    )


def completed_part_to_pb(part: CompletedPart) -> objects_pb2.CompletedPart:
    return objects_pb2.CompletedPart(
        part_number=part.part_number,
        etag=part.etag,
        checksum_algorithm=part.checksum_algorithm,
        checksum=part.checksum,
    )


def completed_part_from_pb(p: objects_pb2.CompletedPart) -> CompletedPart:
    return CompletedPart(p.part_number, p.etag, p.checksum_algorithm, p.checksum)


# -- replication -------------------------------------------------------------------


def rule_to_pb(r: Rule) -> common_pb2.ReplicationRule:
    return common_pb2.ReplicationRule(
        id=r.id,
        priority=r.priority,
        enabled=r.enabled,
        prefix=r.prefix,
        tags=dict(r.tags),
        destinations=[
            common_pb2.ReplicationDestination(
                cluster=d.cluster, bucket=d.bucket, storage_class=d.storage_class, owner=d.owner
            )
            for d in r.destinations
        ],
        delete_markers=r.delete_markers,
        replica_modifications=r.replica_modifications,
    )


def rule_from_pb(p: common_pb2.ReplicationRule) -> Rule:
    return Rule(
        id=p.id,
        destinations=tuple(
            Destination(d.cluster, d.bucket, d.storage_class, d.owner) for d in p.destinations
        ),
        priority=p.priority,
        enabled=p.enabled,
        prefix=p.prefix,
        tags=dict(p.tags),
        delete_markers=p.delete_markers,
        replica_modifications=p.replica_modifications,
    )


# -- CORS --------------------------------------------------------------------------


def cors_rule_to_pb(r: cors.Rule) -> objects_pb2.CorsRule:
    return objects_pb2.CorsRule(
        id=r.id,
        allowed_origins=r.allowed_origins,
        allowed_methods=r.allowed_methods,
        allowed_headers=r.allowed_headers,
        expose_headers=r.expose_headers,
        max_age_seconds=r.max_age_seconds or 0,
        has_max_age=r.max_age_seconds is not None,
    )


def cors_rule_from_pb(p: objects_pb2.CorsRule) -> cors.Rule:
    return cors.Rule(
        tuple(p.allowed_origins),
        tuple(p.allowed_methods),
        tuple(p.allowed_headers),
        tuple(p.expose_headers),
        p.max_age_seconds if p.has_max_age else None,
        p.id,
    )


def scrub_report_to_pb(r: ScrubReport) -> admin_pb2.ScrubProgress:
    return admin_pb2.ScrubProgress(
        node=r.node,
        records_checked=r.records_checked,
        chunks_checked=r.chunks_checked,
        bytes_checked=r.bytes_checked,
        corrupt_records=r.corrupt_records,
        corrupt_chunks=r.corrupt_chunks,
        repaired=r.repaired,
        error=r.error,
        done=r.done,
    )


def scrub_report_from_pb(p: admin_pb2.ScrubProgress) -> ScrubReport:
    return ScrubReport(
        node=p.node,
        records_checked=p.records_checked,
        chunks_checked=p.chunks_checked,
        bytes_checked=p.bytes_checked,
        corrupt_records=p.corrupt_records,
        corrupt_chunks=p.corrupt_chunks,
        repaired=p.repaired,
        error=p.error,
        done=p.done,
    )


def repair_report_to_pb(r: RepairReport) -> admin_pb2.RepairProgress:
    return admin_pb2.RepairProgress(
        bucket=r.bucket,
        keys_checked=r.keys_checked,
        keys_repaired=r.keys_repaired,
        versions_written=r.versions_written,
        missing_by_az=r.missing_by_az,
        keys_failed=r.keys_failed,
        done=r.done,
    )


def repair_report_from_pb(p: admin_pb2.RepairProgress) -> RepairReport:
    return RepairReport(
        bucket=p.bucket,
        keys_checked=p.keys_checked,
        keys_repaired=p.keys_repaired,
        versions_written=p.versions_written,
        missing_by_az=dict(p.missing_by_az),
        keys_failed=p.keys_failed,
        done=p.done,
    )
