from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatusResponse(_message.Message):
    __slots__ = ("name", "az", "role", "hints_pending", "objects", "disk_bytes", "change_log_seq", "epoch", "uptime_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AZ_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    HINTS_PENDING_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHANGE_LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    az: str
    role: str
    hints_pending: int
    objects: int
    disk_bytes: int
    change_log_seq: int
    epoch: int
    uptime_seconds: float
    def __init__(self, name: _Optional[str] = ..., az: _Optional[str] = ..., role: _Optional[str] = ..., hints_pending: _Optional[int] = ..., objects: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., change_log_seq: _Optional[int] = ..., epoch: _Optional[int] = ..., uptime_seconds: _Optional[float] = ...) -> None: ...

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
    __slots__ = ("cluster", "epoch", "nodes", "witnesses")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    WITNESSES_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    epoch: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeHealth]
    witnesses: _containers.RepeatedCompositeFieldContainer[WitnessHealth]
    def __init__(self, cluster: _Optional[str] = ..., epoch: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeHealth, _Mapping]]] = ..., witnesses: _Optional[_Iterable[_Union[WitnessHealth, _Mapping]]] = ...) -> None: ...
