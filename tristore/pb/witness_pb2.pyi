from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WitnessPipeRequest(_message.Message):
    __slots__ = ("id", "check", "record")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    id: int
    check: CheckRequest
    record: RecordRequest
    def __init__(self, id: _Optional[int] = ..., check: _Optional[_Union[CheckRequest, _Mapping]] = ..., record: _Optional[_Union[RecordRequest, _Mapping]] = ...) -> None: ...

class WitnessPipeResponse(_message.Message):
    __slots__ = ("id", "check", "record", "error_code", "error_message")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: int
    check: CheckResponse
    record: RecordResponse
    error_code: str
    error_message: str
    def __init__(self, id: _Optional[int] = ..., check: _Optional[_Union[CheckResponse, _Mapping]] = ..., record: _Optional[_Union[RecordResponse, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class RecordRequest(_message.Message):
    __slots__ = ("keys", "stamps", "incarnations")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    STAMPS_FIELD_NUMBER: _ClassVar[int]
    INCARNATIONS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    stamps: bytes
    incarnations: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, keys: _Optional[_Iterable[bytes]] = ..., stamps: _Optional[bytes] = ..., incarnations: _Optional[_Iterable[int]] = ...) -> None: ...

class RecordResponse(_message.Message):
    __slots__ = ("incarnation", "refused")
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    incarnation: int
    refused: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, incarnation: _Optional[int] = ..., refused: _Optional[_Iterable[int]] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("keys", "stamps")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    STAMPS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    stamps: bytes
    def __init__(self, keys: _Optional[_Iterable[bytes]] = ..., stamps: _Optional[bytes] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("newer", "incarnation")
    NEWER_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    newer: _containers.RepeatedScalarFieldContainer[int]
    incarnation: int
    def __init__(self, newer: _Optional[_Iterable[int]] = ..., incarnation: _Optional[int] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("stamps", "incarnation")
    STAMPS_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    stamps: bytes
    incarnation: int
    def __init__(self, stamps: _Optional[bytes] = ..., incarnation: _Optional[int] = ...) -> None: ...

class WitnessStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WitnessStatusResponse(_message.Message):
    __slots__ = ("name", "group", "incarnation", "keys", "max_keys", "uptime_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    group: int
    incarnation: int
    keys: int
    max_keys: int
    uptime_seconds: float
    def __init__(self, name: _Optional[str] = ..., group: _Optional[int] = ..., incarnation: _Optional[int] = ..., keys: _Optional[int] = ..., max_keys: _Optional[int] = ..., uptime_seconds: _Optional[float] = ...) -> None: ...
