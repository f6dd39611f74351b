"""Encoding of stored values. Every value starts with a format-version byte, so
a future format can migrate old records when it reads them (as Garage does)."""

from __future__ import annotations

import struct
from dataclasses import replace

from tristore.convert import change_from_pb, change_to_pb, version_from_pb, version_to_pb
from tristore.errors import InternalError
from tristore.model import Change, ObjectVersion
from tristore.pb import common_pb2, replica_pb2

VERSION_V1 = 1
_U64 = struct.Struct(">Q")
_GC = struct.Struct(">QI")  # created/due ms, chunk count


def encode_version(v: ObjectVersion, with_inline: bool = True) -> bytes:
    return bytes([VERSION_V1]) + version_to_pb(v, with_inline).SerializeToString()


def version_record_pb(raw: bytes, with_inline: bool = True) -> common_pb2.ObjectVersion:
    """A stored record as the protobuf it is stored as: what a replica sends
    a coordinator as is, without building the dataclass in between."""
    if not raw or raw[0] != VERSION_V1:
        raise InternalError(f"unknown object record format {raw[:1]!r}")
    msg = common_pb2.ObjectVersion()
    msg.ParseFromString(raw[1:])
    if not with_inline and msg.has_inline:
        msg.ClearField("inline_data")
        msg.has_inline = False
    return msg


def decode_version(raw: bytes) -> ObjectVersion:
    return version_from_pb(version_record_pb(raw))


def encode_ms(ms: int) -> bytes:
    return bytes([VERSION_V1]) + _U64.pack(ms)


def decode_ms(raw: bytes) -> int:
    if not raw or raw[0] != VERSION_V1:
        raise InternalError(f"unknown timestamp record format {raw[:1]!r}")
    return int(_U64.unpack_from(raw, 1)[0])


#: Inline bodies up to this size travel in change-log entries too, so that a
#: replicator sends them without reading the body back from the nodes.
LOG_INLINE_MAX = 4096


def encode_change(c: Change) -> bytes:
    """A change-log entry: the commit, with small inline bodies, larger bodies
    by reference only."""

    def slim(v: ObjectVersion) -> ObjectVersion:
        if v.inline is not None and len(v.inline) > LOG_INLINE_MAX:
            return replace(v, inline=None)
        return v

    c = replace(
        c,
        head=slim(c.head) if c.head is not None else None,
        versions=tuple(slim(v) for v in c.versions),
    )
    return bytes([VERSION_V1]) + change_to_pb(c, with_inline=True).SerializeToString()


def _change_pb(raw: bytes) -> replica_pb2.CommitRequest:
    if not raw or raw[0] != VERSION_V1:
        raise InternalError(f"unknown change-log record format {raw[:1]!r}")
    msg = replica_pb2.CommitRequest()
    msg.ParseFromString(raw[1:])
    return msg


def decode_change(raw: bytes) -> Change:
    return change_from_pb(_change_pb(raw))


def change_time_ms(raw: bytes) -> int:
    """The wall time (ms) of a change-log entry's stamp, without decoding its
    versions (what log trimming asks of every entry it passes)."""
    return int(_change_pb(raw).stamp.physical_ms)
