from tristore.pb import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BucketPolicyRequest(_message.Message):
    __slots__ = ("bucket", "policy")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    policy: str
    def __init__(self, bucket: _Optional[str] = ..., policy: _Optional[str] = ...) -> None: ...

class BucketPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: str
    def __init__(self, policy: _Optional[str] = ...) -> None: ...

class CorsRule(_message.Message):
    __slots__ = ("id", "allowed_origins", "allowed_methods", "allowed_headers", "expose_headers", "max_age_seconds", "has_max_age")
    ID_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_METHODS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXPOSE_HEADERS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HAS_MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    allowed_origins: _containers.RepeatedScalarFieldContainer[str]
    allowed_methods: _containers.RepeatedScalarFieldContainer[str]
    allowed_headers: _containers.RepeatedScalarFieldContainer[str]
    expose_headers: _containers.RepeatedScalarFieldContainer[str]
    max_age_seconds: int
    has_max_age: bool
    def __init__(self, id: _Optional[str] = ..., allowed_origins: _Optional[_Iterable[str]] = ..., allowed_methods: _Optional[_Iterable[str]] = ..., allowed_headers: _Optional[_Iterable[str]] = ..., expose_headers: _Optional[_Iterable[str]] = ..., max_age_seconds: _Optional[int] = ..., has_max_age: _Optional[bool] = ...) -> None: ...

class BucketCorsRequest(_message.Message):
    __slots__ = ("bucket", "rules")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    rules: _containers.RepeatedCompositeFieldContainer[CorsRule]
    def __init__(self, bucket: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[CorsRule, _Mapping]]] = ...) -> None: ...

class BucketCorsResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[CorsRule]
    def __init__(self, rules: _Optional[_Iterable[_Union[CorsRule, _Mapping]]] = ...) -> None: ...

class BucketTaggingRequest(_message.Message):
    __slots__ = ("bucket", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, bucket: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BucketTaggingResponse(_message.Message):
    __slots__ = ("tags",)
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Conditions(_message.Message):
    __slots__ = ("if_match", "if_none_match", "if_modified_since_ms", "has_if_modified_since", "if_unmodified_since_ms", "has_if_unmodified_since")
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_MODIFIED_SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_IF_MODIFIED_SINCE_FIELD_NUMBER: _ClassVar[int]
    IF_UNMODIFIED_SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_IF_UNMODIFIED_SINCE_FIELD_NUMBER: _ClassVar[int]
    if_match: str
    if_none_match: str
    if_modified_since_ms: int
    has_if_modified_since: bool
    if_unmodified_since_ms: int
    has_if_unmodified_since: bool
    def __init__(self, if_match: _Optional[str] = ..., if_none_match: _Optional[str] = ..., if_modified_since_ms: _Optional[int] = ..., has_if_modified_since: _Optional[bool] = ..., if_unmodified_since_ms: _Optional[int] = ..., has_if_unmodified_since: _Optional[bool] = ...) -> None: ...

class ObjectInfo(_message.Message):
    __slots__ = ("bucket", "key", "size", "etag", "content_type", "metadata", "version_id", "last_modified_ms", "replication_status", "tag_count", "storage_class", "sse", "sse_customer_algorithm", "sse_customer_key_md5", "headers", "checksum_algorithm", "checksum_type", "checksum", "part_sizes")
    class MetadataEntry(_message.Message):
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
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_MS_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    TAG_COUNT_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    SSE_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_KEY_MD5_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    PART_SIZES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    version_id: str
    last_modified_ms: int
    replication_status: str
    tag_count: int
    storage_class: str
    sse: str
    sse_customer_algorithm: str
    sse_customer_key_md5: str
    headers: _containers.ScalarMap[str, str]
    checksum_algorithm: str
    checksum_type: str
    checksum: str
    part_sizes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., version_id: _Optional[str] = ..., last_modified_ms: _Optional[int] = ..., replication_status: _Optional[str] = ..., tag_count: _Optional[int] = ..., storage_class: _Optional[str] = ..., sse: _Optional[str] = ..., sse_customer_algorithm: _Optional[str] = ..., sse_customer_key_md5: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., checksum_algorithm: _Optional[str] = ..., checksum_type: _Optional[str] = ..., checksum: _Optional[str] = ..., part_sizes: _Optional[_Iterable[int]] = ...) -> None: ...

class SseCustomerKey(_message.Message):
    __slots__ = ("algorithm", "key", "key_md5")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_MD5_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    key: bytes
    key_md5: str
    def __init__(self, algorithm: _Optional[str] = ..., key: _Optional[bytes] = ..., key_md5: _Optional[str] = ...) -> None: ...

class BucketInfo(_message.Message):
    __slots__ = ("name", "created_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_ms: int
    def __init__(self, name: _Optional[str] = ..., created_ms: _Optional[int] = ...) -> None: ...

class CreateBucketRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class CreateBucketResponse(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: BucketInfo
    def __init__(self, bucket: _Optional[_Union[BucketInfo, _Mapping]] = ...) -> None: ...

class DeleteBucketRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class DeleteBucketResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeadBucketRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class HeadBucketResponse(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: BucketInfo
    def __init__(self, bucket: _Optional[_Union[BucketInfo, _Mapping]] = ...) -> None: ...

class ListBucketsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBucketsResponse(_message.Message):
    __slots__ = ("buckets",)
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[BucketInfo]
    def __init__(self, buckets: _Optional[_Iterable[_Union[BucketInfo, _Mapping]]] = ...) -> None: ...

class PutObjectHeader(_message.Message):
    __slots__ = ("bucket", "key", "content_type", "metadata", "size", "content_md5", "tags", "acl", "storage_class", "sse", "if_none_match", "if_match", "sse_customer", "request_id", "resend", "first_attempt_ms", "headers")
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
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_MD5_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    SSE_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESEND_FIELD_NUMBER: _ClassVar[int]
    FIRST_ATTEMPT_MS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    size: int
    content_md5: str
    tags: _containers.ScalarMap[str, str]
    acl: str
    storage_class: str
    sse: str
    if_none_match: str
    if_match: str
    sse_customer: SseCustomerKey
    request_id: str
    resend: bool
    first_attempt_ms: int
    headers: _containers.ScalarMap[str, str]
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., size: _Optional[int] = ..., content_md5: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., acl: _Optional[str] = ..., storage_class: _Optional[str] = ..., sse: _Optional[str] = ..., if_none_match: _Optional[str] = ..., if_match: _Optional[str] = ..., sse_customer: _Optional[_Union[SseCustomerKey, _Mapping]] = ..., request_id: _Optional[str] = ..., resend: _Optional[bool] = ..., first_attempt_ms: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PutObjectRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: PutObjectHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[PutObjectHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class PutObjectResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: ObjectInfo
    def __init__(self, info: _Optional[_Union[ObjectInfo, _Mapping]] = ...) -> None: ...

class Range(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class GetObjectRequest(_message.Message):
    __slots__ = ("bucket", "key", "range", "has_range", "version_id", "conditions", "sse_customer", "part_number")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    HAS_RANGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    range: Range
    has_range: bool
    version_id: str
    conditions: Conditions
    sse_customer: SseCustomerKey
    part_number: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., range: _Optional[_Union[Range, _Mapping]] = ..., has_range: _Optional[bool] = ..., version_id: _Optional[str] = ..., conditions: _Optional[_Union[Conditions, _Mapping]] = ..., sse_customer: _Optional[_Union[SseCustomerKey, _Mapping]] = ..., part_number: _Optional[int] = ...) -> None: ...

class GetObjectResponse(_message.Message):
    __slots__ = ("info", "range_start", "range_end", "data", "too_large")
    INFO_FIELD_NUMBER: _ClassVar[int]
    RANGE_START_FIELD_NUMBER: _ClassVar[int]
    RANGE_END_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOO_LARGE_FIELD_NUMBER: _ClassVar[int]
    info: ObjectInfo
    range_start: int
    range_end: int
    data: bytes
    too_large: bool
    def __init__(self, info: _Optional[_Union[ObjectInfo, _Mapping]] = ..., range_start: _Optional[int] = ..., range_end: _Optional[int] = ..., data: _Optional[bytes] = ..., too_large: _Optional[bool] = ...) -> None: ...

class GetSmallObjectRequest(_message.Message):
    __slots__ = ("get", "max_size")
    GET_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    get: GetObjectRequest
    max_size: int
    def __init__(self, get: _Optional[_Union[GetObjectRequest, _Mapping]] = ..., max_size: _Optional[int] = ...) -> None: ...

class HeadObjectRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id", "conditions", "sse_customer", "part_number")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    conditions: Conditions
    sse_customer: SseCustomerKey
    part_number: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., conditions: _Optional[_Union[Conditions, _Mapping]] = ..., sse_customer: _Optional[_Union[SseCustomerKey, _Mapping]] = ..., part_number: _Optional[int] = ...) -> None: ...

class HeadObjectResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: ObjectInfo
    def __init__(self, info: _Optional[_Union[ObjectInfo, _Mapping]] = ...) -> None: ...

class DeleteObjectRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id", "if_match")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    if_match: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., if_match: _Optional[str] = ...) -> None: ...

class DeleteObjectResponse(_message.Message):
    __slots__ = ("version_id", "delete_marker")
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    DELETE_MARKER_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    delete_marker: bool
    def __init__(self, version_id: _Optional[str] = ..., delete_marker: _Optional[bool] = ...) -> None: ...

class ObjectIdentifier(_message.Message):
    __slots__ = ("key", "version_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    key: str
    version_id: str
    def __init__(self, key: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class DeleteObjectsRequest(_message.Message):
    __slots__ = ("bucket", "objects", "quiet")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    QUIET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    objects: _containers.RepeatedCompositeFieldContainer[ObjectIdentifier]
    quiet: bool
    def __init__(self, bucket: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[ObjectIdentifier, _Mapping]]] = ..., quiet: _Optional[bool] = ...) -> None: ...

class DeletedObject(_message.Message):
    __slots__ = ("key", "version_id", "delete_marker", "delete_marker_version_id", "error")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    DELETE_MARKER_FIELD_NUMBER: _ClassVar[int]
    DELETE_MARKER_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    key: str
    version_id: str
    delete_marker: bool
    delete_marker_version_id: str
    error: ItemError
    def __init__(self, key: _Optional[str] = ..., version_id: _Optional[str] = ..., delete_marker: _Optional[bool] = ..., delete_marker_version_id: _Optional[str] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class DeleteObjectsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DeletedObject]
    def __init__(self, results: _Optional[_Iterable[_Union[DeletedObject, _Mapping]]] = ...) -> None: ...

class ListObjectsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "delimiter", "max_keys", "has_max_keys", "continuation_token", "start_after")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    HAS_MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    CONTINUATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    delimiter: str
    max_keys: int
    has_max_keys: bool
    continuation_token: str
    start_after: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., delimiter: _Optional[str] = ..., max_keys: _Optional[int] = ..., has_max_keys: _Optional[bool] = ..., continuation_token: _Optional[str] = ..., start_after: _Optional[str] = ...) -> None: ...

class ListEntry(_message.Message):
    __slots__ = ("key", "size", "etag", "last_modified_ms")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_MS_FIELD_NUMBER: _ClassVar[int]
    key: str
    size: int
    etag: str
    last_modified_ms: int
    def __init__(self, key: _Optional[str] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., last_modified_ms: _Optional[int] = ...) -> None: ...

class ListObjectsResponse(_message.Message):
    __slots__ = ("contents", "common_prefixes", "is_truncated", "next_continuation_token", "key_count")
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    COMMON_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_CONTINUATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    contents: _containers.RepeatedCompositeFieldContainer[ListEntry]
    common_prefixes: _containers.RepeatedScalarFieldContainer[str]
    is_truncated: bool
    next_continuation_token: str
    key_count: int
    def __init__(self, contents: _Optional[_Iterable[_Union[ListEntry, _Mapping]]] = ..., common_prefixes: _Optional[_Iterable[str]] = ..., is_truncated: _Optional[bool] = ..., next_continuation_token: _Optional[str] = ..., key_count: _Optional[int] = ...) -> None: ...

class PutBucketVersioningRequest(_message.Message):
    __slots__ = ("bucket", "status")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    status: str
    def __init__(self, bucket: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class PutBucketVersioningResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBucketVersioningRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class GetBucketVersioningResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    def __init__(self, status: _Optional[str] = ...) -> None: ...

class ListObjectVersionsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "delimiter", "max_keys", "has_max_keys", "key_marker", "version_id_marker")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    HAS_MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    delimiter: str
    max_keys: int
    has_max_keys: bool
    key_marker: str
    version_id_marker: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., delimiter: _Optional[str] = ..., max_keys: _Optional[int] = ..., has_max_keys: _Optional[bool] = ..., key_marker: _Optional[str] = ..., version_id_marker: _Optional[str] = ...) -> None: ...

class VersionEntry(_message.Message):
    __slots__ = ("key", "version_id", "is_latest", "delete_marker", "size", "etag", "last_modified_ms", "storage_class", "owner", "replication_status", "replication_targets", "checksum_algorithm", "checksum_type")
    class ReplicationTargetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    IS_LATEST_FIELD_NUMBER: _ClassVar[int]
    DELETE_MARKER_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_MS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_TARGETS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_TYPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    size: int
    etag: str
    last_modified_ms: int
    storage_class: str
    owner: str
    replication_status: str
    replication_targets: _containers.ScalarMap[str, str]
    checksum_algorithm: str
    checksum_type: str
    def __init__(self, key: _Optional[str] = ..., version_id: _Optional[str] = ..., is_latest: _Optional[bool] = ..., delete_marker: _Optional[bool] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., last_modified_ms: _Optional[int] = ..., storage_class: _Optional[str] = ..., owner: _Optional[str] = ..., replication_status: _Optional[str] = ..., replication_targets: _Optional[_Mapping[str, str]] = ..., checksum_algorithm: _Optional[str] = ..., checksum_type: _Optional[str] = ...) -> None: ...

class ListObjectVersionsResponse(_message.Message):
    __slots__ = ("versions", "common_prefixes", "is_truncated", "next_key_marker", "next_version_id_marker")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    COMMON_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    NEXT_VERSION_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[VersionEntry]
    common_prefixes: _containers.RepeatedScalarFieldContainer[str]
    is_truncated: bool
    next_key_marker: str
    next_version_id_marker: str
    def __init__(self, versions: _Optional[_Iterable[_Union[VersionEntry, _Mapping]]] = ..., common_prefixes: _Optional[_Iterable[str]] = ..., is_truncated: _Optional[bool] = ..., next_key_marker: _Optional[str] = ..., next_version_id_marker: _Optional[str] = ...) -> None: ...

class ObjectTaggingRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ObjectTaggingResponse(_message.Message):
    __slots__ = ("version_id", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, version_id: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ObjectAclRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id", "acl")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    acl: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., acl: _Optional[str] = ...) -> None: ...

class ObjectAclResponse(_message.Message):
    __slots__ = ("version_id", "owner", "acl")
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    owner: str
    acl: str
    def __init__(self, version_id: _Optional[str] = ..., owner: _Optional[str] = ..., acl: _Optional[str] = ...) -> None: ...

class CopyObjectRequest(_message.Message):
    __slots__ = ("source_bucket", "source_key", "source_version_id", "source_conditions", "bucket", "key", "metadata_directive", "content_type", "metadata", "tagging_directive", "tags", "acl", "storage_class", "sse", "sse_customer", "copy_source_sse_customer", "headers")
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
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SOURCE_BUCKET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TAGGING_DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    SSE_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    COPY_SOURCE_SSE_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    source_bucket: str
    source_key: str
    source_version_id: str
    source_conditions: Conditions
    bucket: str
    key: str
    metadata_directive: str
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    tagging_directive: str
    tags: _containers.ScalarMap[str, str]
    acl: str
    storage_class: str
    sse: str
    sse_customer: SseCustomerKey
    copy_source_sse_customer: SseCustomerKey
    headers: _containers.ScalarMap[str, str]
    def __init__(self, source_bucket: _Optional[str] = ..., source_key: _Optional[str] = ..., source_version_id: _Optional[str] = ..., source_conditions: _Optional[_Union[Conditions, _Mapping]] = ..., bucket: _Optional[str] = ..., key: _Optional[str] = ..., metadata_directive: _Optional[str] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., tagging_directive: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., acl: _Optional[str] = ..., storage_class: _Optional[str] = ..., sse: _Optional[str] = ..., sse_customer: _Optional[_Union[SseCustomerKey, _Mapping]] = ..., copy_source_sse_customer: _Optional[_Union[SseCustomerKey, _Mapping]] = ..., headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CopyObjectResponse(_message.Message):
    __slots__ = ("info", "source_version_id")
    INFO_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    info: ObjectInfo
    source_version_id: str
    def __init__(self, info: _Optional[_Union[ObjectInfo, _Mapping]] = ..., source_version_id: _Optional[str] = ...) -> None: ...

class CreateMultipartUploadRequest(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: PutObjectHeader
    def __init__(self, header: _Optional[_Union[PutObjectHeader, _Mapping]] = ...) -> None: ...

class CreateMultipartUploadResponse(_message.Message):
    __slots__ = ("bucket", "key", "upload_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class UploadPartHeader(_message.Message):
    __slots__ = ("bucket", "key", "upload_id", "part_number", "size", "content_md5", "sse_customer")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_MD5_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    part_number: int
    size: int
    content_md5: str
    sse_customer: SseCustomerKey
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ..., part_number: _Optional[int] = ..., size: _Optional[int] = ..., content_md5: _Optional[str] = ..., sse_customer: _Optional[_Union[SseCustomerKey, _Mapping]] = ...) -> None: ...

class UploadPartRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: UploadPartHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[UploadPartHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadPartResponse(_message.Message):
    __slots__ = ("etag", "size", "checksum_algorithm", "checksum")
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    etag: str
    size: int
    checksum_algorithm: str
    checksum: str
    def __init__(self, etag: _Optional[str] = ..., size: _Optional[int] = ..., checksum_algorithm: _Optional[str] = ..., checksum: _Optional[str] = ...) -> None: ...

class CompletedPart(_message.Message):
    __slots__ = ("part_number", "etag", "checksum_algorithm", "checksum")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    etag: str
    checksum_algorithm: str
    checksum: str
    def __init__(self, part_number: _Optional[int] = ..., etag: _Optional[str] = ..., checksum_algorithm: _Optional[str] = ..., checksum: _Optional[str] = ...) -> None: ...

class CompleteMultipartUploadRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id", "parts", "sse_customer", "if_none_match", "if_match")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    SSE_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    parts: _containers.RepeatedCompositeFieldContainer[CompletedPart]
    sse_customer: SseCustomerKey
    if_none_match: str
    if_match: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[CompletedPart, _Mapping]]] = ..., sse_customer: _Optional[_Union[SseCustomerKey, _Mapping]] = ..., if_none_match: _Optional[str] = ..., if_match: _Optional[str] = ...) -> None: ...

class CompleteMultipartUploadResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: ObjectInfo
    def __init__(self, info: _Optional[_Union[ObjectInfo, _Mapping]] = ...) -> None: ...

class AbortMultipartUploadRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class AbortMultipartUploadResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MultipartUpload(_message.Message):
    __slots__ = ("key", "upload_id", "initiated_ms", "storage_class", "owner")
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    INITIATED_MS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    key: str
    upload_id: str
    initiated_ms: int
    storage_class: str
    owner: str
    def __init__(self, key: _Optional[str] = ..., upload_id: _Optional[str] = ..., initiated_ms: _Optional[int] = ..., storage_class: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class ListMultipartUploadsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "key_marker", "upload_id_marker", "max_uploads", "delimiter")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOADS_FIELD_NUMBER: _ClassVar[int]
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    key_marker: str
    upload_id_marker: str
    max_uploads: int
    delimiter: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., key_marker: _Optional[str] = ..., upload_id_marker: _Optional[str] = ..., max_uploads: _Optional[int] = ..., delimiter: _Optional[str] = ...) -> None: ...

class ListMultipartUploadsResponse(_message.Message):
    __slots__ = ("uploads", "is_truncated", "next_key_marker", "next_upload_id_marker", "common_prefixes")
    UPLOADS_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    NEXT_UPLOAD_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    COMMON_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    uploads: _containers.RepeatedCompositeFieldContainer[MultipartUpload]
    is_truncated: bool
    next_key_marker: str
    next_upload_id_marker: str
    common_prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, uploads: _Optional[_Iterable[_Union[MultipartUpload, _Mapping]]] = ..., is_truncated: _Optional[bool] = ..., next_key_marker: _Optional[str] = ..., next_upload_id_marker: _Optional[str] = ..., common_prefixes: _Optional[_Iterable[str]] = ...) -> None: ...

class Part(_message.Message):
    __slots__ = ("part_number", "etag", "size", "last_modified_ms", "checksum_algorithm", "checksum")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_MS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    etag: str
    size: int
    last_modified_ms: int
    checksum_algorithm: str
    checksum: str
    def __init__(self, part_number: _Optional[int] = ..., etag: _Optional[str] = ..., size: _Optional[int] = ..., last_modified_ms: _Optional[int] = ..., checksum_algorithm: _Optional[str] = ..., checksum: _Optional[str] = ...) -> None: ...

class ListPartsRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id", "part_number_marker", "max_parts")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBER_MARKER_FIELD_NUMBER: _ClassVar[int]
    MAX_PARTS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    part_number_marker: int
    max_parts: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ..., part_number_marker: _Optional[int] = ..., max_parts: _Optional[int] = ...) -> None: ...

class ListPartsResponse(_message.Message):
    __slots__ = ("parts", "is_truncated", "next_part_number_marker", "checksum_algorithm", "checksum_type", "storage_class")
    PARTS_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_PART_NUMBER_MARKER_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_TYPE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    parts: _containers.RepeatedCompositeFieldContainer[Part]
    is_truncated: bool
    next_part_number_marker: int
    checksum_algorithm: str
    checksum_type: str
    storage_class: str
    def __init__(self, parts: _Optional[_Iterable[_Union[Part, _Mapping]]] = ..., is_truncated: _Optional[bool] = ..., next_part_number_marker: _Optional[int] = ..., checksum_algorithm: _Optional[str] = ..., checksum_type: _Optional[str] = ..., storage_class: _Optional[str] = ...) -> None: ...

class PutBucketReplicationRequest(_message.Message):
    __slots__ = ("bucket", "rules")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    rules: _containers.RepeatedCompositeFieldContainer[_common_pb2.ReplicationRule]
    def __init__(self, bucket: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[_common_pb2.ReplicationRule, _Mapping]]] = ...) -> None: ...

class GetBucketReplicationRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class DeleteBucketReplicationRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class BucketReplicationResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[_common_pb2.ReplicationRule]
    def __init__(self, rules: _Optional[_Iterable[_Union[_common_pb2.ReplicationRule, _Mapping]]] = ...) -> None: ...

class PutBucketEncryptionRequest(_message.Message):
    __slots__ = ("bucket", "sse")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    SSE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    sse: str
    def __init__(self, bucket: _Optional[str] = ..., sse: _Optional[str] = ...) -> None: ...

class GetBucketEncryptionRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class DeleteBucketEncryptionRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class BucketEncryptionResponse(_message.Message):
    __slots__ = ("sse",)
    SSE_FIELD_NUMBER: _ClassVar[int]
    sse: str
    def __init__(self, sse: _Optional[str] = ...) -> None: ...

class ApplyReplicaHeader(_message.Message):
    __slots__ = ("version", "origin_cluster")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_CLUSTER_FIELD_NUMBER: _ClassVar[int]
    version: _common_pb2.ObjectVersion
    origin_cluster: str
    def __init__(self, version: _Optional[_Union[_common_pb2.ObjectVersion, _Mapping]] = ..., origin_cluster: _Optional[str] = ...) -> None: ...

class ApplyReplicaRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ApplyReplicaHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ApplyReplicaHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ApplyReplicaResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    def __init__(self, applied: _Optional[bool] = ...) -> None: ...

class PutReplicationStatusRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id", "destination", "status", "error", "stamp")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STAMP_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    destination: str
    status: str
    error: str
    stamp: _common_pb2.Stamp
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., destination: _Optional[str] = ..., status: _Optional[str] = ..., error: _Optional[str] = ..., stamp: _Optional[_Union[_common_pb2.Stamp, _Mapping]] = ...) -> None: ...

class PutReplicationStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ApplyReplicaItem(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ApplyReplicaHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ApplyReplicaHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ApplyReplicasRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ApplyReplicaItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ApplyReplicaItem, _Mapping]]] = ...) -> None: ...

class ApplyReplicaResult(_message.Message):
    __slots__ = ("applied", "error")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    error: ItemError
    def __init__(self, applied: _Optional[bool] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ApplyReplicasResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ApplyReplicaResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ApplyReplicaResult, _Mapping]]] = ...) -> None: ...

class PutReplicationStatusesRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[PutReplicationStatusRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[PutReplicationStatusRequest, _Mapping]]] = ...) -> None: ...

class PutReplicationStatusResult(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: ItemError
    def __init__(self, error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class PutReplicationStatusesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PutReplicationStatusResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PutReplicationStatusResult, _Mapping]]] = ...) -> None: ...

class DoorMetadatum(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class DoorCall(_message.Message):
    __slots__ = ("id", "method", "metadata", "request", "timeout_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    method: str
    metadata: _containers.RepeatedCompositeFieldContainer[DoorMetadatum]
    request: bytes
    timeout_ms: int
    def __init__(self, id: _Optional[int] = ..., method: _Optional[str] = ..., metadata: _Optional[_Iterable[_Union[DoorMetadatum, _Mapping]]] = ..., request: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class DoorAnswer(_message.Message):
    __slots__ = ("id", "code", "details", "trailers", "response")
    ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    TRAILERS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    id: int
    code: int
    details: str
    trailers: _containers.RepeatedCompositeFieldContainer[DoorMetadatum]
    response: bytes
    def __init__(self, id: _Optional[int] = ..., code: _Optional[int] = ..., details: _Optional[str] = ..., trailers: _Optional[_Iterable[_Union[DoorMetadatum, _Mapping]]] = ..., response: _Optional[bytes] = ...) -> None: ...
