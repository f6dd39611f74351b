from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RotateMasterKeyRequest(_message.Message):
    __slots__ = ("keep_key",)
    KEEP_KEY_FIELD_NUMBER: _ClassVar[int]
    keep_key: bool
    def __init__(self, keep_key: _Optional[bool] = ...) -> None: ...

class RotateMasterKeyResponse(_message.Message):
    __slots__ = ("key_id", "rewrapped", "unchanged")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    rewrapped: int
    unchanged: int
    def __init__(self, key_id: _Optional[str] = ..., rewrapped: _Optional[int] = ..., unchanged: _Optional[int] = ...) -> None: ...

class NodeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatusResponse(_message.Message):
    __slots__ = ("name", "az", "role", "hints_pending", "objects", "disk_bytes", "change_log_seq", "epoch", "uptime_seconds", "state", "handoffs_pending", "created_ms", "first_change_ms", "tombstones", "disk_free_bytes", "disk_state")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AZ_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    HINTS_PENDING_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHANGE_LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HANDOFFS_PENDING_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHANGE_MS_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONES_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    az: str
    role: str
    hints_pending: int
    objects: int
    disk_bytes: int
    change_log_seq: int
    epoch: int
    uptime_seconds: float
    state: str
    handoffs_pending: int
    created_ms: int
    first_change_ms: int
    tombstones: int
    disk_free_bytes: int
    disk_state: str
    def __init__(self, name: _Optional[str] = ..., az: _Optional[str] = ..., role: _Optional[str] = ..., hints_pending: _Optional[int] = ..., objects: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., change_log_seq: _Optional[int] = ..., epoch: _Optional[int] = ..., uptime_seconds: _Optional[float] = ..., state: _Optional[str] = ..., handoffs_pending: _Optional[int] = ..., created_ms: _Optional[int] = ..., first_change_ms: _Optional[int] = ..., tombstones: _Optional[int] = ..., disk_free_bytes: _Optional[int] = ..., disk_state: _Optional[str] = ...) -> None: ...

class ClusterStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeHealth(_message.Message):
    __slots__ = ("name", "az", "grpc", "up", "error", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AZ_FIELD_NUMBER: _ClassVar[int]
    GRPC_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    az: str
    grpc: str
    up: bool
    error: str
    status: NodeStatusResponse
    def __init__(self, name: _Optional[str] = ..., az: _Optional[str] = ..., grpc: _Optional[str] = ..., up: _Optional[bool] = ..., error: _Optional[str] = ..., status: _Optional[_Union[NodeStatusResponse, _Mapping]] = ...) -> None: ...

class WitnessHealth(_message.Message):
    __slots__ = ("name", "group", "grpc", "up", "error", "incarnation", "keys", "uptime_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    GRPC_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    group: int
    grpc: str
    up: bool
    error: str
    incarnation: int
    keys: int
    uptime_seconds: float
    def __init__(self, name: _Optional[str] = ..., group: _Optional[int] = ..., grpc: _Optional[str] = ..., up: _Optional[bool] = ..., error: _Optional[str] = ..., incarnation: _Optional[int] = ..., keys: _Optional[int] = ..., uptime_seconds: _Optional[float] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("cluster", "epoch", "nodes", "witnesses", "replicators")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    WITNESSES_FIELD_NUMBER: _ClassVar[int]
    REPLICATORS_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    epoch: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeHealth]
    witnesses: _containers.RepeatedCompositeFieldContainer[WitnessHealth]
    replicators: _containers.RepeatedCompositeFieldContainer[ReplicatorHealth]
    def __init__(self, cluster: _Optional[str] = ..., epoch: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeHealth, _Mapping]]] = ..., witnesses: _Optional[_Iterable[_Union[WitnessHealth, _Mapping]]] = ..., replicators: _Optional[_Iterable[_Union[ReplicatorHealth, _Mapping]]] = ...) -> None: ...

class ReplicatorStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DestinationStatus(_message.Message):
    __slots__ = ("destination", "lag_seconds", "in_flight")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    destination: str
    lag_seconds: float
    in_flight: int
    def __init__(self, destination: _Optional[str] = ..., lag_seconds: _Optional[float] = ..., in_flight: _Optional[int] = ...) -> None: ...

class ReplicatorStatusResponse(_message.Message):
    __slots__ = ("name", "uptime_seconds", "dlq_entries", "log_entries_behind", "destinations", "nodes_tailed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DLQ_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LOG_ENTRIES_BEHIND_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    NODES_TAILED_FIELD_NUMBER: _ClassVar[int]
    name: str
    uptime_seconds: float
    dlq_entries: int
    log_entries_behind: int
    destinations: _containers.RepeatedCompositeFieldContainer[DestinationStatus]
    nodes_tailed: int
    def __init__(self, name: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., dlq_entries: _Optional[int] = ..., log_entries_behind: _Optional[int] = ..., destinations: _Optional[_Iterable[_Union[DestinationStatus, _Mapping]]] = ..., nodes_tailed: _Optional[int] = ...) -> None: ...

class ReplicatorHealth(_message.Message):
    __slots__ = ("name", "grpc", "up", "error", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GRPC_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    grpc: str
    up: bool
    error: str
    status: ReplicatorStatusResponse
    def __init__(self, name: _Optional[str] = ..., grpc: _Optional[str] = ..., up: _Optional[bool] = ..., error: _Optional[str] = ..., status: _Optional[_Union[ReplicatorStatusResponse, _Mapping]] = ...) -> None: ...

class NodeSpec(_message.Message):
    __slots__ = ("name", "id", "az", "grpc", "metrics", "state", "s3")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    AZ_FIELD_NUMBER: _ClassVar[int]
    GRPC_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    S3_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: int
    az: str
    grpc: str
    metrics: str
    state: str
    s3: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[int] = ..., az: _Optional[str] = ..., grpc: _Optional[str] = ..., metrics: _Optional[str] = ..., state: _Optional[str] = ..., s3: _Optional[str] = ...) -> None: ...

class ClusterMap(_message.Message):
    __slots__ = ("epoch", "nodes")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeSpec]
    def __init__(self, epoch: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeSpec, _Mapping]]] = ...) -> None: ...

class GetClusterMapRequest(_message.Message):
    __slots__ = ("known_epoch", "known_digest", "from_node", "handoffs_pending")
    KNOWN_EPOCH_FIELD_NUMBER: _ClassVar[int]
    KNOWN_DIGEST_FIELD_NUMBER: _ClassVar[int]
    FROM_NODE_FIELD_NUMBER: _ClassVar[int]
    HANDOFFS_PENDING_FIELD_NUMBER: _ClassVar[int]
    known_epoch: int
    known_digest: str
    from_node: str
    handoffs_pending: int
    def __init__(self, known_epoch: _Optional[int] = ..., known_digest: _Optional[str] = ..., from_node: _Optional[str] = ..., handoffs_pending: _Optional[int] = ...) -> None: ...

class ClusterMapResponse(_message.Message):
    __slots__ = ("epoch", "map", "handoffs_pending")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    HANDOFFS_PENDING_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    map: ClusterMap
    handoffs_pending: int
    def __init__(self, epoch: _Optional[int] = ..., map: _Optional[_Union[ClusterMap, _Mapping]] = ..., handoffs_pending: _Optional[int] = ...) -> None: ...

class PutClusterMapRequest(_message.Message):
    __slots__ = ("map",)
    MAP_FIELD_NUMBER: _ClassVar[int]
    map: ClusterMap
    def __init__(self, map: _Optional[_Union[ClusterMap, _Mapping]] = ...) -> None: ...

class ChangeNodeRequest(_message.Message):
    __slots__ = ("name", "action", "expect_epoch", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EXPECT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    action: str
    expect_epoch: int
    force: bool
    def __init__(self, name: _Optional[str] = ..., action: _Optional[str] = ..., expect_epoch: _Optional[int] = ..., force: _Optional[bool] = ...) -> None: ...

class ChangeNodeResponse(_message.Message):
    __slots__ = ("map", "acked", "not_reached")
    MAP_FIELD_NUMBER: _ClassVar[int]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    NOT_REACHED_FIELD_NUMBER: _ClassVar[int]
    map: ClusterMap
    acked: _containers.RepeatedScalarFieldContainer[str]
    not_reached: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, map: _Optional[_Union[ClusterMap, _Mapping]] = ..., acked: _Optional[_Iterable[str]] = ..., not_reached: _Optional[_Iterable[str]] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("toml", "epoch", "node")
    TOML_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    toml: str
    epoch: int
    node: str
    def __init__(self, toml: _Optional[str] = ..., epoch: _Optional[int] = ..., node: _Optional[str] = ...) -> None: ...

class RepairRequest(_message.Message):
    __slots__ = ("bucket", "dry_run")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    dry_run: bool
    def __init__(self, bucket: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ScrubRequest(_message.Message):
    __slots__ = ("bucket", "node_only")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    NODE_ONLY_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    node_only: bool
    def __init__(self, bucket: _Optional[str] = ..., node_only: _Optional[bool] = ...) -> None: ...

class ScrubProgress(_message.Message):
    __slots__ = ("node", "records_checked", "chunks_checked", "bytes_checked", "corrupt_records", "corrupt_chunks", "repaired", "error", "done")
    NODE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    BYTES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_RECORDS_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    node: str
    records_checked: int
    chunks_checked: int
    bytes_checked: int
    corrupt_records: int
    corrupt_chunks: int
    repaired: int
    error: str
    done: bool
    def __init__(self, node: _Optional[str] = ..., records_checked: _Optional[int] = ..., chunks_checked: _Optional[int] = ..., bytes_checked: _Optional[int] = ..., corrupt_records: _Optional[int] = ..., corrupt_chunks: _Optional[int] = ..., repaired: _Optional[int] = ..., error: _Optional[str] = ..., done: _Optional[bool] = ...) -> None: ...

class RepairProgress(_message.Message):
    __slots__ = ("bucket", "keys_checked", "keys_repaired", "versions_written", "missing_by_az", "keys_failed", "done")
    class MissingByAzEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEYS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    KEYS_REPAIRED_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    MISSING_BY_AZ_FIELD_NUMBER: _ClassVar[int]
    KEYS_FAILED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    keys_checked: int
    keys_repaired: int
    versions_written: int
    missing_by_az: _containers.ScalarMap[str, int]
    keys_failed: int
    done: bool
    def __init__(self, bucket: _Optional[str] = ..., keys_checked: _Optional[int] = ..., keys_repaired: _Optional[int] = ..., versions_written: _Optional[int] = ..., missing_by_az: _Optional[_Mapping[str, int]] = ..., keys_failed: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("name", "role", "buckets", "created_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    buckets: _containers.RepeatedScalarFieldContainer[str]
    created_ms: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., buckets: _Optional[_Iterable[str]] = ..., created_ms: _Optional[int] = ...) -> None: ...

class UserRequest(_message.Message):
    __slots__ = ("name", "role", "buckets")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    buckets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., buckets: _Optional[_Iterable[str]] = ...) -> None: ...

class UserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class AccessKey(_message.Message):
    __slots__ = ("access_key_id", "user", "created_ms")
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    access_key_id: str
    user: str
    created_ms: int
    def __init__(self, access_key_id: _Optional[str] = ..., user: _Optional[str] = ..., created_ms: _Optional[int] = ...) -> None: ...

class AccessKeyRequest(_message.Message):
    __slots__ = ("user", "access_key_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    access_key_id: str
    def __init__(self, user: _Optional[str] = ..., access_key_id: _Optional[str] = ...) -> None: ...

class AccessKeyResponse(_message.Message):
    __slots__ = ("key", "secret_access_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    key: AccessKey
    secret_access_key: str
    def __init__(self, key: _Optional[_Union[AccessKey, _Mapping]] = ..., secret_access_key: _Optional[str] = ...) -> None: ...

class ListAccessKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[AccessKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[AccessKey, _Mapping]]] = ...) -> None: ...
