from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Stamp(_message.Message):
    __slots__ = ("physical_ms", "logical", "cluster_id", "node_id")
    PHYSICAL_MS_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    physical_ms: int
    logical: int
    cluster_id: int
    node_id: int
    def __init__(self, physical_ms: _Optional[int] = ..., logical: _Optional[int] = ..., cluster_id: _Optional[int] = ..., node_id: _Optional[int] = ...) -> None: ...

class ObjectVersion(_message.Message):
    __slots__ = ("bucket", "key", "stamp", "deleted", "size", "etag", "content_type", "metadata", "data_id", "chunk_size", "inline_data", "has_inline", "version_stamp", "has_version_stamp", "null_version", "delete_marker", "tags", "acl", "owner", "storage_class", "sse", "removed", "versioning", "replication_rules", "replication_status", "replication_targets", "origin_cluster", "meta_stamp", "has_meta_stamp", "sse_key", "sse_customer_hmac", "default_sse", "request_id", "headers", "sse_bucket", "checksum_algorithm", "checksum_type", "checksum", "part_sizes", "condition_read", "has_condition_read")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ReplicationTargetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    STAMP_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DATA_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    INLINE_DATA_FIELD_NUMBER: _ClassVar[int]
    HAS_INLINE_FIELD_NUMBER: _ClassVar[int]
    VERSION_STAMP_FIELD_NUMBER: _ClassVar[int]
    HAS_VERSION_STAMP_FIELD_NUMBER: _ClassVar[int]
    NULL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETE_MARKER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    SSE_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    VERSIONING_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_RULES_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_TARGETS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_CLUSTER_FIELD_NUMBER: _ClassVar[int]
    META_STAMP_FIELD_NUMBER: _ClassVar[int]
    HAS_META_STAMP_FIELD_NUMBER: _ClassVar[int]
    SSE_KEY_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_HMAC_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SSE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    SSE_BUCKET_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    PART_SIZES_FIELD_NUMBER: _ClassVar[int]
    CONDITION_READ_FIELD_NUMBER: _ClassVar[int]
    HAS_CONDITION_READ_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    stamp: Stamp
    deleted: bool
    size: int
    etag: str
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    data_id: bytes
    chunk_size: int
    inline_data: bytes
    has_inline: bool
    version_stamp: Stamp
    has_version_stamp: bool
    null_version: bool
    delete_marker: bool
    tags: _containers.ScalarMap[str, str]
    acl: str
    owner: str
    storage_class: str
    sse: str
    removed: _containers.RepeatedCompositeFieldContainer[Stamp]
    versioning: str
    replication_rules: _containers.RepeatedCompositeFieldContainer[ReplicationRule]
    replication_status: str
    replication_targets: _containers.ScalarMap[str, str]
    origin_cluster: str
    meta_stamp: Stamp
    has_meta_stamp: bool
    sse_key: bytes
    sse_customer_hmac: bytes
    default_sse: str
    request_id: str
    headers: _containers.ScalarMap[str, str]
    sse_bucket: str
    checksum_algorithm: str
    checksum_type: str
    checksum: str
    part_sizes: _containers.RepeatedScalarFieldContainer[int]
    condition_read: Stamp
    has_condition_read: bool
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., stamp: _Optional[_Union[Stamp, _Mapping]] = ..., deleted: _Optional[bool] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., data_id: _Optional[bytes] = ..., chunk_size: _Optional[int] = ..., inline_data: _Optional[bytes] = ..., has_inline: _Optional[bool] = ..., version_stamp: _Optional[_Union[Stamp, _Mapping]] = ..., has_version_stamp: _Optional[bool] = ..., null_version: _Optional[bool] = ..., delete_marker: _Optional[bool] = ..., tags: _Optional[_Mapping[str, str]] = ..., acl: _Optional[str] = ..., owner: _Optional[str] = ..., storage_class: _Optional[str] = ..., sse: _Optional[str] = ..., removed: _Optional[_Iterable[_Union[Stamp, _Mapping]]] = ..., versioning: _Optional[str] = ..., replication_rules: _Optional[_Iterable[_Union[ReplicationRule, _Mapping]]] = ..., replication_status: _Optional[str] = ..., replication_targets: _Optional[_Mapping[str, str]] = ..., origin_cluster: _Optional[str] = ..., meta_stamp: _Optional[_Union[Stamp, _Mapping]] = ..., has_meta_stamp: _Optional[bool] = ..., sse_key: _Optional[bytes] = ..., sse_customer_hmac: _Optional[bytes] = ..., default_sse: _Optional[str] = ..., request_id: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., sse_bucket: _Optional[str] = ..., checksum_algorithm: _Optional[str] = ..., checksum_type: _Optional[str] = ..., checksum: _Optional[str] = ..., part_sizes: _Optional[_Iterable[int]] = ..., condition_read: _Optional[_Union[Stamp, _Mapping]] = ..., has_condition_read: _Optional[bool] = ...) -> None: ...

class ReplicationRule(_message.Message):
    __slots__ = ("id", "priority", "enabled", "prefix", "tags", "destinations", "delete_markers", "replica_modifications")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    DELETE_MARKERS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_MODIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    priority: int
    enabled: bool
    prefix: str
    tags: _containers.ScalarMap[str, str]
    destinations: _containers.RepeatedCompositeFieldContainer[ReplicationDestination]
    delete_markers: bool
    replica_modifications: bool
    def __init__(self, id: _Optional[str] = ..., priority: _Optional[int] = ..., enabled: _Optional[bool] = ..., prefix: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., destinations: _Optional[_Iterable[_Union[ReplicationDestination, _Mapping]]] = ..., delete_markers: _Optional[bool] = ..., replica_modifications: _Optional[bool] = ...) -> None: ...

class ReplicationDestination(_message.Message):
    __slots__ = ("cluster", "bucket", "storage_class", "owner")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    bucket: str
    storage_class: str
    owner: str
    def __init__(self, cluster: _Optional[str] = ..., bucket: _Optional[str] = ..., storage_class: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...
