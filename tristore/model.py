"""Domain types. Everything past the servicers and the client works with these,
never with generated protobuf classes (see :mod:`tristore.convert`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from tristore.errors import InvalidArgument
from tristore.replication import Rule
from tristore.slots import copy_with, fast_init
from tristore.stamps import Stamp

#: Bytes an AES-GCM tag adds to each encrypted chunk (tristore/sse.py).
SSE_TAG = 16

#: The version id of objects written while a bucket was not versioning.
NULL_VERSION = "null"

#: Largest body PutSmallObject and GetSmallObject carry in one message (larger
#: ones stream through PutObject / GetObject).
SMALL_BODY_MAX = 1024 * 1024

#: Bucket versioning states (S3's), and the empty state of a bucket never versioned.
VERSIONING_ENABLED = "Enabled"
VERSIONING_SUSPENDED = "Suspended"


def check_version_id(version_id: str | None) -> str:
    """A version id as the server writes it: a stamp's hex, or ``"null"``
    (``""`` for none); else InvalidArgument."""
    if not version_id:
        return ""
    if version_id == NULL_VERSION:
        return version_id
    try:
        Stamp.from_version_id(version_id)
    except ValueError:
        raise InvalidArgument(f"invalid version id {version_id!r}") from None
    return version_id


def ms_to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


#: ``dataclasses.replace`` of a version or a change at a fraction of its cost
#: (:func:`tristore.slots.copy_with`): a PUT replaces its version several
#: times on the way, on every node it touches.
evolve = copy_with


def version_stood_for(
    stamp: Stamp, version_stamp: Stamp | None, is_version: bool, removed: Iterable[Stamp]
) -> Stamp:
    """The version a current record stands for, against a new version
    committed below it: its version stamp (a version's record, maybe edited
    since); for a removal made by deleting versions (the key's last one, by
    its id), the newest of them; else its own stamp. ``removed`` is read only
    for a removal (node/records.py decodes it lazily)."""
    if version_stamp is not None:
        return version_stamp
    if not is_version:
        return max(removed, default=stamp)
    return stamp


@fast_init
@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of a key (or its tombstone) as the storage nodes hold it."""

    bucket: str
    key: str
    stamp: Stamp
    deleted: bool = False
    size: int = 0
    etag: str = ""
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    #: Id the body's chunks are stored under; empty when the body is inline.
    data_id: bytes = b""
    chunk_size: int = 0
    #: The body, when small enough to be kept with the metadata.
    inline: bytes | None = None
    #: The version this record is, when not ``stamp`` itself (a later change to
    #: the version — new tags, a promotion back to current — took ``stamp``).
    version_stamp: Stamp | None = None
    #: Version id "null": written while the bucket was unversioned or suspended.
    null_version: bool = False
    #: A delete marker. ``deleted`` without it: the null version was removed.
    delete_marker: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    acl: str = ""
    owner: str = ""
    storage_class: str = ""
    sse: str = ""
    #: Versions removed by the change that wrote this current record.
    removed: tuple[Stamp, ...] = ()
    #: Bucket records only: "", "Enabled" or "Suspended".
    versioning: str = ""
    #: Bucket records only: the replication rules.
    replication_rules: tuple[Rule, ...] = ()
    #: "", PENDING, COMPLETED, FAILED (a source version) or REPLICA (tristore.replication).
    replication_status: str = ""
    #: Per destination ("cluster/bucket"): PENDING, COMPLETED or "FAILED: why".
    replication_targets: dict[str, str] = field(default_factory=dict)
    #: The cluster the version was first written in ("" for this one).
    origin_cluster: str = ""
    #: When the version's tags or ACL last changed, on whichever cluster (None:
    #: never). A replica takes a change of tags or ACL only if it is newer.
    meta_stamp: Stamp | None = None
    #: Encryption at rest (node/encryption.py): a version's wrapped data key
    #: (empty: stored in plaintext), or a bucket record's sealed bucket key.
    sse_key: bytes = b""
    #: SSE-C: salt and HMAC of the customer's key (never the key).
    sse_customer_hmac: bytes = b""
    #: Bucket records only: default encryption of new objects ("" or "AES256").
    default_sse: str = ""
    #: The id of the call that wrote the version, the same in each of its
    #: attempts ("": not given): a retry that finds it took effect already.
    request_id: str = ""
    #: Standard HTTP headers stored with the object and answered by GET and
    #: HEAD (S3's system metadata): lower-case names of
    #: :data:`tristore.validation.STORED_HEADERS` to their values.
    headers: dict[str, str] = field(default_factory=dict)
    #: SSE-C replicas only: the bucket the ciphertext and the wrapped data key
    #: are bound to (the source bucket), when not this version's own.
    sse_bucket: str = ""
    #: S3's flexible checksum of the body (:mod:`tristore.checksums`): its
    #: algorithm ("": none), type (FULL_OBJECT or COMPOSITE) and base64 value.
    #: An upload record: the algorithm and type its parts and object take.
    checksum_algorithm: str = ""
    checksum_type: str = ""
    checksum: str = ""
    #: A completed multipart upload: its parts' sizes, in order (empty: not
    #: uploaded in parts, or completed before they were kept: one part).
    part_sizes: tuple[int, ...] = ()

    @property
    def encrypted(self) -> bool:
        """Whether the body is stored as ciphertext (:mod:`tristore.sse`)."""
        return bool(self.sse_key)

    @property
    def body_size(self) -> int:
        """Bytes the chunked body takes in storage: the size, plus an AES-GCM
        tag a chunk when encrypted (``chunk_size`` is then the stored chunk's
        size, tag included)."""
        if not self.sse_key or self.chunk_size <= SSE_TAG:
            return self.size
        plain = self.chunk_size - SSE_TAG
        return self.size + SSE_TAG * max(1, -(-self.size // plain))

    @property
    def vstamp(self) -> Stamp:
        """The stamp that identifies the version (and orders a key's versions)."""
        return self.version_stamp if self.version_stamp is not None else self.stamp

    @property
    def stands_for(self) -> Stamp:
        """The version this record stands for (:func:`version_stood_for`)."""
        return version_stood_for(self.stamp, self.version_stamp, self.is_version, self.removed)

    @property
    def modified(self) -> Stamp:
        """When the version's tags or ACL last changed (its own stamp if never)."""
        return self.meta_stamp if self.meta_stamp is not None else self.vstamp

    @property
    def version_id(self) -> str:
        return NULL_VERSION if self.null_version else self.vstamp.version_id

    @property
    def is_version(self) -> bool:
        """Whether the record is a version (object or delete marker) a user can list."""
        return not self.deleted or self.delete_marker

    @property
    def last_modified_ms(self) -> int:
        """When the version was written (a later change of tags keeps it)."""
        return self.vstamp.physical_ms


@fast_init
@dataclass(frozen=True, slots=True)
class Change:
    """One change to a key, as a replica commits it in one batch.

    ``head`` is the key's new current record (None when only noncurrent
    versions change); ``versions`` are version records to add or replace,
    ``removed`` versions to remove for good. ``expect`` makes the change
    conditional: refused when the current record is newer (ZERO: any record). ``merge``
    applies each part on its own (hinted handoff) instead of all or nothing.
    ``created``: its versions are new here though their records carry an older
    version stamp (a replica): events name them as created, not as edits.
    ``new_versions`` makes it conditional on its versions: refused where a
    record of one of them is held already (a replica's noncurrent version,
    which another apply of it may have added meanwhile: node/protocol.py).
    A conditional change (``expect``, ``new_versions``) is decided by the
    key's first AZ before the others are sent it. ``withdrawn`` are those of
    ``removed`` that are the write's own earlier tries (stamped again, never
    acknowledged): a node's change log lists one only if the node held it,
    where another removal is listed the first time the node marks it (a
    version created and removed while the node was down included). They stay
    in ``removed`` too, so a node of a version before the field removes them
    all the same. ``version_expect`` makes a change of one noncurrent
    version's record (an edit of its tags, ACL or replication status)
    conditional on that record: refused where a newer record of the version
    is held (another edit got there first), so two edits of one version
    never both write a record built on the same one (the later stamp would
    drop the other's change). ``condition`` is the record a client's
    conditional write read (its ``expect`` on the first try; ZERO: none):
    the key's first AZ's home keeps it in the record it takes, so that a
    plain write stamped between the two that gets there later is stamped
    again above it (CommitResult.below_condition).
    """

    bucket: str
    key: str
    stamp: Stamp
    head: ObjectVersion | None = None
    versions: tuple[ObjectVersion, ...] = ()
    removed: tuple[Stamp, ...] = ()
    expect: Stamp | None = None
    merge: bool = False
    created: bool = False
    new_versions: bool = False
    withdrawn: tuple[Stamp, ...] = ()
    version_expect: Stamp | None = None
    condition: Stamp | None = None

    @property
    def conditional(self) -> bool:
        """Whether the key's first AZ decides the change (it may refuse it)."""
        return self.expect is not None or self.new_versions or self.version_expect is not None

    @classmethod
    def of(
        cls,
        head: ObjectVersion,
        expect: Stamp | None = None,
        created: bool = False,
        condition: Stamp | None = None,
    ) -> Change:
        """The change that makes ``head`` current: a new version, or the
        removal that ``head.removed`` records."""
        versions = (head,) if head.is_version or head.null_version else ()
        return cls(
            head.bucket,
            head.key,
            head.stamp,
            head,
            versions,
            head.removed,
            expect,
            False,
            created,
            withdrawn=tries_of(head),
            condition=condition,
        )


def tries_of(head: ObjectVersion) -> tuple[Stamp, ...]:
    """Those of current record ``head``'s removals that are its write's own
    earlier tries (:attr:`Change.withdrawn`). A new version's record (its
    stamp is its version stamp) removes nothing else: a write stamped again
    (node/protocol.py ``_restamped``); any other record's removals (a version
    DELETE that made the next newest current, or left none) are removals."""
    return head.removed if head.is_version and head.version_stamp is None else ()


@fast_init
@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What HEAD, GET and PUT tell a user about an object."""

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    metadata: dict[str, str]
    version_id: str
    last_modified: dt.datetime
    replication_status: str = ""
    tag_count: int = 0
    storage_class: str = ""
    sse: str = ""
    #: SSE-C: "AES256" and the base64 MD5 of the customer's key.
    sse_customer_algorithm: str = ""
    sse_customer_key_md5: str = ""
    #: Cache-Control, Content-Disposition, Content-Encoding, Content-Language
    #: and Expires as stored with the object (lower-case names; absent: not set).
    headers: dict[str, str] = field(default_factory=dict)
    #: The flexible checksum stored with the object ("": none; see ObjectVersion).
    checksum_algorithm: str = ""
    checksum_type: str = ""
    checksum: str = ""
    #: The sizes of the parts the object was uploaded in (empty: one part).
    part_sizes: tuple[int, ...] = ()
    #: Whether the bucket has had versioning (Enabled or Suspended) when the
    #: answer was made. Only then does S3's HTTP API name a ``null`` version
    #: (``x-amz-version-id``); in a bucket never versioned it sends none. Not
    #: on the wire: the gRPC API always gives ``version_id``, ``null`` included.
    bucket_versioned: bool = True

    @classmethod
    def of(cls, v: ObjectVersion, key_md5: str = "", bucket_versioned: bool = True) -> ObjectInfo:
        return cls(
            bucket=v.bucket,
            key=v.key,
            size=v.size,
            etag=v.etag,
            content_type=v.content_type,
            metadata=dict(v.metadata),
            version_id=v.version_id,
            last_modified=ms_to_datetime(v.last_modified_ms),
            replication_status=v.replication_status,
            tag_count=len(v.tags),
            storage_class=v.storage_class or "STANDARD",
            sse=v.sse,
            sse_customer_algorithm="AES256" if v.sse_customer_hmac else "",
            sse_customer_key_md5=key_md5 if v.sse_customer_hmac else "",
            headers=dict(v.headers),
            checksum_algorithm=v.checksum_algorithm,
            checksum_type=v.checksum_type,
            checksum=v.checksum,
            part_sizes=v.part_sizes,
            bucket_versioned=bucket_versioned,
        )

    def to_json(self) -> dict[str, object]:
        ssec = (
            {
                "sse_customer_algorithm": self.sse_customer_algorithm,
                "sse_customer_key_md5": self.sse_customer_key_md5,
            }
            if self.sse_customer_algorithm
            else {}
        )
        checksum = (
            {
                "checksum_algorithm": self.checksum_algorithm,
                "checksum_type": self.checksum_type,
                "checksum": self.checksum,
            }
            if self.checksum_algorithm
            else {}
        )
        return (
            ssec
            | checksum
            | {
                "bucket": self.bucket,
                "key": self.key,
                "size": self.size,
                "etag": self.etag,
                "content_type": self.content_type,
                "metadata": dict(self.metadata),
                "version_id": self.version_id,
                "last_modified": self.last_modified.isoformat(),
                "replication_status": self.replication_status,
                "tag_count": self.tag_count,
                "storage_class": self.storage_class,
                "sse": self.sse,
                "headers": dict(self.headers),
            }
        )


@dataclass(frozen=True, slots=True)
class BucketInfo:
    name: str
    created: dt.datetime
    #: "", "Enabled" or "Suspended".
    versioning: str = ""
    #: Replication rules (tristore.replication).
    replication: tuple[Rule, ...] = ()
    #: Default encryption of new objects ("" or "AES256").
    default_sse: str = ""
    #: The bucket key sealed under a master key (node/encryption.py); "" until
    #: the bucket's first encrypted write.
    sse_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class Conditions:
    """HTTP preconditions as S3 applies them to GET, HEAD and copy sources."""

    if_match: str = ""
    if_none_match: str = ""
    if_modified_since: dt.datetime | None = None
    if_unmodified_since: dt.datetime | None = None

    def __bool__(self) -> bool:
        return bool(
            self.if_match
            or self.if_none_match
            or self.if_modified_since is not None
            or self.if_unmodified_since is not None
        )


@dataclass(frozen=True, slots=True)
class DeleteResult:
    #: The delete marker made, or the version removed; "" in an unversioned bucket.
    version_id: str = ""
    delete_marker: bool = False


@dataclass(frozen=True, slots=True)
class DeletedObject:
    """One key of a DeleteObjects call: S3's ``<Deleted>`` (``error_code`` empty)
    or ``<Error>``."""

    key: str
    #: The version id asked for ("" for the key itself).
    version_id: str = ""
    #: A delete marker was made (or, deleted by its version id, removed).
    delete_marker: bool = False
    delete_marker_version_id: str = ""
    #: The S3 code (``AccessDenied``, ``NoSuchVersion``, ...) of a key not deleted.
    error_code: str = ""
    error_message: str = ""

    @property
    def deleted(self) -> bool:
        return not self.error_code


@dataclass(frozen=True, slots=True)
class VersionEntry:
    key: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    size: int
    etag: str
    last_modified: dt.datetime
    storage_class: str = "STANDARD"
    owner: str = ""
    replication_status: str = ""
    replication_targets: dict[str, str] = field(default_factory=dict)
    #: The version's flexible checksum algorithm and type ("": none, or a
    #: delete marker), as S3's ListObjectVersions names them.
    checksum_algorithm: str = ""
    checksum_type: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "version_id": self.version_id,
            "is_latest": self.is_latest,
            "replication_status": self.replication_status,
            "replication_targets": dict(self.replication_targets),
            "delete_marker": self.delete_marker,
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified.isoformat(),
            "storage_class": self.storage_class,
            "owner": self.owner,
        }


@dataclass(frozen=True, slots=True)
class VersionPage:
    versions: list[VersionEntry]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "versions": [v.to_json() for v in self.versions],
            "common_prefixes": list(self.common_prefixes),
            "is_truncated": self.is_truncated,
            "next_key_marker": self.next_key_marker,
            "next_version_id_marker": self.next_version_id_marker,
        }


@dataclass(frozen=True, slots=True)
class Tagging:
    version_id: str
    tags: dict[str, str]
    #: Whether the bucket has had versioning (see ObjectInfo.bucket_versioned).
    bucket_versioned: bool = True


@dataclass(frozen=True, slots=True)
class Acl:
    version_id: str
    owner: str
    acl: str
    #: Whether the bucket has had versioning (see ObjectInfo.bucket_versioned).
    bucket_versioned: bool = True


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str
    key: str
    version_id: str = ""
    conditions: Conditions = field(default_factory=Conditions)


@dataclass(frozen=True, slots=True)
class CopyResult:
    info: ObjectInfo
    source_version_id: str
    #: The source bucket has had versioning (see ObjectInfo.bucket_versioned).
    source_bucket_versioned: bool = True


@dataclass(frozen=True, slots=True)
class ListEntry:
    key: str
    size: int
    etag: str
    last_modified: dt.datetime
    #: The version's flexible checksum ("": none), for listings that show it
    #: (ListParts: the value; the S3 door's ListObjects: the algorithm and
    #: type); not on the gRPC wire of ListObjects.
    checksum_algorithm: str = ""
    checksum: str = ""
    checksum_type: str = ""
    #: The version's storage class ("": STANDARD), for the S3 door's listings;
    #: not on the gRPC wire of ListObjects.
    storage_class: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ListPage:
    contents: list[ListEntry]
    common_prefixes: list[str]
    is_truncated: bool
    next_continuation_token: str | None
    key_count: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "contents": [e.to_json() for e in self.contents],
            "common_prefixes": list(self.common_prefixes),
            "is_truncated": self.is_truncated,
            "next_continuation_token": self.next_continuation_token,
        }


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An HTTP-style inclusive range; ``start < 0`` is a suffix, ``end < 0`` open.

    ``empty_suffix``: ``bytes=-0``, the last no bytes, which a negative
    ``start`` cannot say (``start`` and ``end`` are then unused): the whole,
    empty body of an empty object, unsatisfiable (InvalidRange) for any other
    (RFC 9110 14.1.1), as S3 answers it. The S3 door's Range header only; the
    SDK refuses ``bytes=-0`` before sending it."""

    start: int
    end: int = -1
    empty_suffix: bool = False


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What one storage node says about itself (AdminService.NodeStatus)."""

    name: str
    az: str
    role: str
    hints_pending: int = 0
    objects: int = 0
    disk_bytes: int = 0
    change_log_seq: int = 0
    epoch: int = 0
    uptime_seconds: float = 0.0
    #: ``active`` or ``draining``.
    state: str = "active"
    #: Keys held here that belong on another node (drain, map change, hints).
    handoffs_pending: int = 0
    #: Markers of removed versions held.
    tombstones: int = 0
    disk_free_bytes: int = 0
    #: "" (writes taken), "full" (writes refused: below the free-space
    #: reserve) or "stuck" (restart once space is freed).
    disk_state: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "az": self.az,
            "role": self.role,
            "state": self.state,
            "hints_pending": self.hints_pending,
            "handoffs_pending": self.handoffs_pending,
            "objects": self.objects,
            "tombstones": self.tombstones,
            "disk_bytes": self.disk_bytes,
            "disk_free_bytes": self.disk_free_bytes,
            "disk_state": self.disk_state,
            "change_log_seq": self.change_log_seq,
            "epoch": self.epoch,
            "uptime_seconds": self.uptime_seconds,
        }


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """One node of the cluster map as the answering node sees it."""

    name: str
    az: str
    grpc: str
    up: bool
    #: Why the node is counted down; empty when it is up.
    error: str = ""
    #: The node's own report; None when it could not be asked.
    status: NodeStatus | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "az": self.az,
            "grpc": self.grpc,
            "up": self.up,
            "error": self.error,
            "status": self.status.to_json() if self.status is not None else None,
        }


@dataclass(frozen=True, slots=True)
class WitnessHealth:
    """One witness of the cluster map as the answering node sees it."""

    name: str
    group: int
    grpc: str
    up: bool
    error: str = ""
    incarnation: int = 0
    keys: int = 0
    uptime_seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "group": self.group,
            "grpc": self.grpc,
            "up": self.up,
            "error": self.error,
            "incarnation": f"{self.incarnation:x}" if self.up else None,
            "keys": self.keys,
            "uptime_seconds": self.uptime_seconds,
        }


@dataclass(frozen=True, slots=True)
class ReplicatorStatus:
    """What one replicator says about itself (ReplicatorAdmin.ReplicatorStatus)."""

    name: str
    uptime_seconds: float = 0.0
    dlq_entries: int = 0
    log_entries_behind: int = 0
    nodes_tailed: int = 0
    #: Lag in seconds by destination (``CLUSTER/BUCKET``); 0 when caught up.
    lag_seconds: dict[str, float] = field(default_factory=dict)
    #: Versions being sent, by destination.
    in_flight: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "uptime_seconds": self.uptime_seconds,
            "dlq_entries": self.dlq_entries,
            "log_entries_behind": self.log_entries_behind,
            "nodes_tailed": self.nodes_tailed,
            "lag_seconds": dict(self.lag_seconds),
            "in_flight": dict(self.in_flight),
        }


@dataclass(frozen=True, slots=True)
class ReplicatorHealth:
    name: str
    grpc: str
    up: bool
    error: str = ""
    status: ReplicatorStatus | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "grpc": self.grpc,
            "up": self.up,
            "error": self.error,
            "status": self.status.to_json() if self.status is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """The whole cluster as one node sees it (AdminService.ClusterStatus)."""

    cluster: str
    epoch: int
    nodes: tuple[NodeHealth, ...] = ()
    witnesses: tuple[WitnessHealth, ...] = ()
    replicators: tuple[ReplicatorHealth, ...] = ()

    @property
    def replication_lag(self) -> dict[str, float]:
        """The largest lag any replicator reports, by destination."""
        out: dict[str, float] = {}
        for r in self.replicators:
            if r.status is not None:
                for dest, lag in r.status.lag_seconds.items():
                    out[dest] = max(out.get(dest, 0.0), lag)
        return out

    @property
    def azs(self) -> tuple[str, ...]:
        return tuple(sorted({n.az for n in self.nodes}))

    def nodes_in(self, az: str) -> tuple[NodeHealth, ...]:
        return tuple(n for n in self.nodes if n.az == az)

    @property
    def nodes_up(self) -> int:
        return sum(1 for n in self.nodes if n.up)

    @property
    def hints_pending(self) -> int:
        return sum(n.status.hints_pending for n in self.nodes if n.status is not None)

    def to_json(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "epoch": self.epoch,
            "azs": {
                az: {
                    "up": sum(1 for n in self.nodes_in(az) if n.up),
                    "down": sum(1 for n in self.nodes_in(az) if not n.up),
                }
                for az in self.azs
            },
            "hints_pending": self.hints_pending,
            "nodes": [n.to_json() for n in self.nodes],
            "witnesses": [w.to_json() for w in self.witnesses],
            "replicators": [r.to_json() for r in self.replicators],
            "replication_lag_seconds": self.replication_lag,
        }


# -- multipart upload ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """An upload in progress (CreateMultipartUpload until Complete or Abort)."""

    bucket: str
    key: str
    upload_id: str
    initiated: dt.datetime
    storage_class: str = ""
    owner: str = ""
    #: The checksum its parts and object take ("": as each part comes; see
    #: tristore.checksums): algorithm and type (FULL_OBJECT or COMPOSITE).
    checksum_algorithm: str = ""
    checksum_type: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "upload_id": self.upload_id,
            "initiated": self.initiated.isoformat(),
            "storage_class": self.storage_class,
            "owner": self.owner,
        }


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One part a CompleteMultipartUpload lists: its number and ETag, and the
    flexible checksum its writer says it has ("": none listed)."""

    part_number: int
    etag: str
    checksum_algorithm: str = ""
    checksum: str = ""


@dataclass(frozen=True, slots=True)
class Part:
    """One uploaded part of a multipart upload."""

    part_number: int
    etag: str
    size: int
    last_modified: dt.datetime
    #: The part's flexible checksum ("": none, or not known here).
    checksum_algorithm: str = ""
    checksum: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "part_number": self.part_number,
            "etag": self.etag,
            "size": self.size,
            "last_modified": self.last_modified.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class UploadPage:
    uploads: list[MultipartUpload]
    is_truncated: bool
    #: Where the next page starts: the key and upload id of this page's last
    #: upload, or (its upload id None) the common prefix it ended on.
    next_key_marker: str | None
    next_upload_id_marker: str | None
    #: With a delimiter: the key prefixes (after the listing's prefix, up to
    #: and with the delimiter's first occurrence) of uploads rolled up, each
    #: once; each counts as one upload against the page's limit.
    common_prefixes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "uploads": [u.to_json() for u in self.uploads],
            "common_prefixes": list(self.common_prefixes),
            "is_truncated": self.is_truncated,
            "next_key_marker": self.next_key_marker,
            "next_upload_id_marker": self.next_upload_id_marker,
        }


@dataclass(frozen=True, slots=True)
class PartPage:
    parts: list[Part]
    is_truncated: bool
    next_part_number_marker: int | None
    #: The upload's checksum algorithm and type ("": it named none).
    checksum_algorithm: str = ""
    checksum_type: str = ""
    #: The storage class the upload was created with ("": STANDARD).
    storage_class: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "parts": [p.to_json() for p in self.parts],
            "is_truncated": self.is_truncated,
            "next_part_number_marker": self.next_part_number_marker,
        }


# -- anti-entropy repair -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScrubReport:
    """Progress of ``tristore admin scrub`` (AdminService.Scrub) on one node
    so far, or (``done``) its final counts."""

    node: str
    records_checked: int = 0
    chunks_checked: int = 0
    bytes_checked: int = 0
    #: Records (object or version) and body chunks that failed their checksum.
    corrupt_records: int = 0
    corrupt_chunks: int = 0
    #: Damaged values a sound copy from another holder was written over.
    repaired: int = 0
    #: Why the node was not scrubbed, or not whole ("": it was).
    error: str = ""
    done: bool = False

    @property
    def unrepaired(self) -> int:
        """Damaged values still damaged (no sound copy could be written)."""
        return max(0, self.corrupt_records + self.corrupt_chunks - self.repaired)

    def to_json(self) -> dict[str, object]:
        return {
            "node": self.node,
            "records_checked": self.records_checked,
            "chunks_checked": self.chunks_checked,
            "bytes_checked": self.bytes_checked,
            "corrupt_records": self.corrupt_records,
            "corrupt_chunks": self.corrupt_chunks,
            "repaired": self.repaired,
            "unrepaired": self.unrepaired,
            "error": self.error,
            "done": self.done,
        }


@dataclass(frozen=True, slots=True)
class RepairReport:
    """Progress of ``tristore admin repair`` (AdminService.Repair), for one
    bucket so far, or (``done``) the totals of the whole run."""

    #: The bucket the counts are about; in the final report, the bucket asked
    #: for ("" when every bucket was repaired).
    bucket: str
    keys_checked: int = 0
    #: Keys that lacked something in some AZ and were written back (with a dry
    #: run: that would have been).
    keys_repaired: int = 0
    #: Records written, one for each version (or current record) and AZ it went
    #: to; 0 in a dry run.
    versions_written: int = 0
    #: Records each AZ lacked or held with an older record stamp, by AZ.
    missing_by_az: dict[str, int] = field(default_factory=dict)
    #: Keys not compared in every AZ (an AZ did not answer, or a write back
    #: failed): repair again when every AZ answers.
    keys_failed: int = 0
    done: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "bucket": self.bucket,
            "keys_checked": self.keys_checked,
            "keys_repaired": self.keys_repaired,
            "versions_written": self.versions_written,
            "missing_by_az": dict(sorted(self.missing_by_az.items())),
            "keys_failed": self.keys_failed,
            "done": self.done,
        }


@dataclass(frozen=True)
class UserInfo:
    """A user of the cluster (``tristore admin user ls``)."""

    name: str
    #: ``admin``, ``user`` or ``replication``.
    role: str
    #: A replication user: the buckets it may apply replicas to (``*``: any).
    buckets: tuple[str, ...] = ()
    created: dt.datetime | None = None


@dataclass(frozen=True)
class AccessKeyInfo:
    """An access key; ``secret_access_key`` only in the answer that created it."""

    access_key_id: str
    user: str
    created: dt.datetime | None = None
    secret_access_key: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What a master-key rotation did (``tristore admin kms rotate``)."""

    #: The master key now current.
    key_id: str
    #: Bucket keys re-wrapped under it, and those already under it.
    rewrapped: int
    unchanged: int

    def to_json(self) -> dict[str, object]:
        return {"key_id": self.key_id, "rewrapped": self.rewrapped, "unchanged": self.unchanged}
