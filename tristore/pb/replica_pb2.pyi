from tristore.pb import common_pb2 as _common_pb2
from tristore.pb import objects_pb2 as _objects_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadSealedBodyRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id", "sse_key")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    SSE_KEY_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    sse_key: bytes
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., sse_key: _Optional[bytes] = ...) -> None: ...

class PipeRequest(_message.Message):
    __slots__ = ("id", "ops")
    ID_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    id: int
    ops: _containers.RepeatedCompositeFieldContainer[BatchOp]
    def __init__(self, id: _Optional[int] = ..., ops: _Optional[_Iterable[_Union[BatchOp, _Mapping]]] = ...) -> None: ...

class BatchOp(_message.Message):
    __slots__ = ("commit", "read_meta", "read_versions", "relay")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    READ_META_FIELD_NUMBER: _ClassVar[int]
    READ_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    RELAY_FIELD_NUMBER: _ClassVar[int]
    commit: CommitRequest
    read_meta: ReadMetaRequest
    read_versions: ReadVersionsRequest
    relay: RelayedCall
    def __init__(self, commit: _Optional[_Union[CommitRequest, _Mapping]] = ..., read_meta: _Optional[_Union[ReadMetaRequest, _Mapping]] = ..., read_versions: _Optional[_Union[ReadVersionsRequest, _Mapping]] = ..., relay: _Optional[_Union[RelayedCall, _Mapping]] = ...) -> None: ...

class RelayedCall(_message.Message):
    __slots__ = ("call", "caller")
    CALL_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    call: _objects_pb2.DoorCall
    caller: str
    def __init__(self, call: _Optional[_Union[_objects_pb2.DoorCall, _Mapping]] = ..., caller: _Optional[str] = ...) -> None: ...

class BatchError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("commit", "read_meta", "error", "read_versions", "relay")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    READ_META_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    READ_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    RELAY_FIELD_NUMBER: _ClassVar[int]
    commit: CommitResponse
    read_meta: ReadMetaResponse
    error: BatchError
    read_versions: ReadVersionsResponse
    relay: _objects_pb2.DoorAnswer
    def __init__(self, commit: _Optional[_Union[CommitResponse, _Mapping]] = ..., read_meta: _Optional[_Union[ReadMetaResponse, _Mapping]] = ..., error: _Optional[_Union[BatchError, _Mapping]] = ..., read_versions: _Optional[_Union[ReadVersionsResponse, _Mapping]] = ..., relay: _Optional[_Union[_objects_pb2.DoorAnswer, _Mapping]] = ...) -> None: ...

class PipeResponse(_message.Message):
    __slots__ = ("id", "results")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    id: int
    results: _containers.RepeatedCompositeFieldContainer[BatchResult]
    def __init__(self, id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[BatchResult, _Mapping]]] = ...) -> None: ...

class ReadLogRequest(_message.Message):
    __slots__ = ("after", "limit", "wait_ms", "pending_only", "reader", "share", "shares")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    PENDING_ONLY_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    after: int
    limit: int
    wait_ms: int
    pending_only: bool
    reader: str
    share: int
    shares: int
    def __init__(self, after: _Optional[int] = ..., limit: _Optional[int] = ..., wait_ms: _Optional[int] = ..., pending_only: _Optional[bool] = ..., reader: _Optional[str] = ..., share: _Optional[int] = ..., shares: _Optional[int] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("seq", "change")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    change: CommitRequest
    def __init__(self, seq: _Optional[int] = ..., change: _Optional[_Union[CommitRequest, _Mapping]] = ...) -> None: ...

class ReadLogResponse(_message.Message):
    __slots__ = ("entries", "last_seq", "scanned_to")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    SCANNED_TO_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    last_seq: int
    scanned_to: int
    def __init__(self, entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., last_seq: _Optional[int] = ..., scanned_to: _Optional[int] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("bucket", "key", "stamp", "head", "has_head", "versions", "removed", "expect", "has_expect", "merge", "hint_for", "created", "new_versions", "withdrawn", "version_expect", "has_version_expect")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    STAMP_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    HAS_HEAD_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    HAS_EXPECT_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    HINT_FOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    VERSION_EXPECT_FIELD_NUMBER: _ClassVar[int]
    HAS_VERSION_EXPECT_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    stamp: _common_pb2.Stamp
    head: _common_pb2.ObjectVersion
    has_head: bool
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectVersion]
    removed: _containers.RepeatedCompositeFieldContainer[_common_pb2.Stamp]
    expect: _common_pb2.Stamp
    has_expect: bool
    merge: bool
    hint_for: str
    created: bool
    new_versions: bool
    withdrawn: _containers.RepeatedCompositeFieldContainer[_common_pb2.Stamp]
    version_expect: _common_pb2.Stamp
    has_version_expect: bool
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., stamp: _Optional[_Union[_common_pb2.Stamp, _Mapping]] = ..., head: _Optional[_Union[_common_pb2.ObjectVersion, _Mapping]] = ..., has_head: _Optional[bool] = ..., versions: _Optional[_Iterable[_Union[_common_pb2.ObjectVersion, _Mapping]]] = ..., removed: _Optional[_Iterable[_Union[_common_pb2.Stamp, _Mapping]]] = ..., expect: _Optional[_Union[_common_pb2.Stamp, _Mapping]] = ..., has_expect: _Optional[bool] = ..., merge: _Optional[bool] = ..., hint_for: _Optional[str] = ..., created: _Optional[bool] = ..., new_versions: _Optional[bool] = ..., withdrawn: _Optional[_Iterable[_Union[_common_pb2.Stamp, _Mapping]]] = ..., version_expect: _Optional[_Union[_common_pb2.Stamp, _Mapping]] = ..., has_version_expect: _Optional[bool] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("applied", "current", "conflict", "older_above", "newer_version", "below_condition")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    CONFLICT_FIELD_NUMBER: _ClassVar[int]
    OLDER_ABOVE_FIELD_NUMBER: _ClassVar[int]
    NEWER_VERSION_FIELD_NUMBER: _ClassVar[int]
    BELOW_CONDITION_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    current: _common_pb2.Stamp
    conflict: bool
    older_above: bool
    newer_version: bool
    below_condition: bool
    def __init__(self, applied: _Optional[bool] = ..., current: _Optional[_Union[_common_pb2.Stamp, _Mapping]] = ..., conflict: _Optional[bool] = ..., older_above: _Optional[bool] = ..., newer_version: _Optional[bool] = ..., below_condition: _Optional[bool] = ...) -> None: ...

class ReadVersionsRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_stamp", "has_version_stamp", "null_version", "limit", "include_inline")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_STAMP_FIELD_NUMBER: _ClassVar[int]
    HAS_VERSION_STAMP_FIELD_NUMBER: _ClassVar[int]
    NULL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INLINE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_stamp: _common_pb2.Stamp
    has_version_stamp: bool
    null_version: bool
    limit: int
    include_inline: bool
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_stamp: _Optional[_Union[_common_pb2.Stamp, _Mapping]] = ..., has_version_stamp: _Optional[bool] = ..., null_version: _Optional[bool] = ..., limit: _Optional[int] = ..., include_inline: _Optional[bool] = ...) -> None: ...

class ReadVersionsResponse(_message.Message):
    __slots__ = ("versions", "removed")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectVersion]
    removed: bool
    def __init__(self, versions: _Optional[_Iterable[_Union[_common_pb2.ObjectVersion, _Mapping]]] = ..., removed: _Optional[bool] = ...) -> None: ...

class ScanVersionsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "key_marker", "after_version", "has_after_version", "limit")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    HAS_AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    key_marker: str
    after_version: _common_pb2.Stamp
    has_after_version: bool
    limit: int
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., key_marker: _Optional[str] = ..., after_version: _Optional[_Union[_common_pb2.Stamp, _Mapping]] = ..., has_after_version: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class ScanVersionsResponse(_message.Message):
    __slots__ = ("versions", "exhausted")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectVersion]
    exhausted: bool
    def __init__(self, versions: _Optional[_Iterable[_Union[_common_pb2.ObjectVersion, _Mapping]]] = ..., exhausted: _Optional[bool] = ...) -> None: ...

class StageRequest(_message.Message):
    __slots__ = ("data_id", "index", "data", "mend")
    DATA_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MEND_FIELD_NUMBER: _ClassVar[int]
    data_id: bytes
    index: int
    data: bytes
    mend: bool
    def __init__(self, data_id: _Optional[bytes] = ..., index: _Optional[int] = ..., data: _Optional[bytes] = ..., mend: _Optional[bool] = ...) -> None: ...

class StageResponse(_message.Message):
    __slots__ = ("chunks", "bytes", "mended")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    MENDED_FIELD_NUMBER: _ClassVar[int]
    chunks: int
    bytes: int
    mended: int
    def __init__(self, chunks: _Optional[int] = ..., bytes: _Optional[int] = ..., mended: _Optional[int] = ...) -> None: ...

class ReadMetaRequest(_message.Message):
    __slots__ = ("bucket", "key", "include_inline")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INLINE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    include_inline: bool
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., include_inline: _Optional[bool] = ...) -> None: ...

class ReadMetaResponse(_message.Message):
    __slots__ = ("found", "version")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    found: bool
    version: _common_pb2.ObjectVersion
    def __init__(self, found: _Optional[bool] = ..., version: _Optional[_Union[_common_pb2.ObjectVersion, _Mapping]] = ...) -> None: ...

class ReadDataRequest(_message.Message):
    __slots__ = ("data_id", "chunk_size", "offset", "length")
    DATA_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    data_id: bytes
    chunk_size: int
    offset: int
    length: int
    def __init__(self, data_id: _Optional[bytes] = ..., chunk_size: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class ReadDataResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "start_after", "limit", "skip_prefix")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SKIP_PREFIX_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    start_after: str
    limit: int
    skip_prefix: bool
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., start_after: _Optional[str] = ..., limit: _Optional[int] = ..., skip_prefix: _Optional[bool] = ...) -> None: ...

class ScanResponse(_message.Message):
    __slots__ = ("versions", "exhausted")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectVersion]
    exhausted: bool
    def __init__(self, versions: _Optional[_Iterable[_Union[_common_pb2.ObjectVersion, _Mapping]]] = ..., exhausted: _Optional[bool] = ...) -> None: ...
