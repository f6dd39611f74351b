from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("name", "bucket", "key", "version_id", "size", "etag", "sequencer", "event_time_ms", "node", "seq")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SEQUENCER_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    name: str
    bucket: str
    key: str
    version_id: str
    size: int
    etag: str
    sequencer: str
    event_time_ms: int
    node: str
    seq: int
    def __init__(self, name: _Optional[str] = ..., bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., sequencer: _Optional[str] = ..., event_time_ms: _Optional[int] = ..., node: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "cursor", "from_start", "heartbeat_ms")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    cursor: str
    from_start: bool
    heartbeat_ms: int
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., cursor: _Optional[str] = ..., from_start: _Optional[bool] = ..., heartbeat_ms: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("event", "has_event", "cursor")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HAS_EVENT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    event: Event
    has_event: bool
    cursor: str
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ..., has_event: _Optional[bool] = ..., cursor: _Optional[str] = ...) -> None: ...

class ReadNodeEventsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "after", "limit", "wait_ms", "from_end", "since_ms")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    FROM_END_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    after: int
    limit: int
    wait_ms: int
    from_end: bool
    since_ms: int
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., after: _Optional[int] = ..., limit: _Optional[int] = ..., wait_ms: _Optional[int] = ..., from_end: _Optional[bool] = ..., since_ms: _Optional[int] = ...) -> None: ...

class ReadNodeEventsResponse(_message.Message):
    __slots__ = ("events", "position", "last_seq")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    position: int
    last_seq: int
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., position: _Optional[int] = ..., last_seq: _Optional[int] = ...) -> None: ...
