"""Encoding of stored values. Every value starts with a format-version byte, so
a future format can migrate old records when it reads them (as Garage does).

Version records and body chunks carry a CRC-32C of their bytes, checked on
every read (:func:`record_payload`, :func:`chunk_payload`): RocksDB checksums
its own blocks, but a value damaged before it reached them (in memory, in the
memtable or the write-ahead log) would pass. A damaged value raises
:class:`~tristore.errors.CorruptData` and is counted; the coordinator then
reads another copy and writes it back (node/protocol.py, node/scrub.py).

- a version record is ``0x02 | crc32c(payload) u32 BE | payload`` (``0x01 |
  payload``: a record written before checksums, still read as it is);
- a chunk is ``CHUNK_MAGIC | crc32c(data) u32 BE | data``. Chunks had no
  format byte, so a chunk without the magic is one from before checksums: read
  as it is in a data directory made before them, damaged in one made since
  (:attr:`node.replica_store.ReplicaStore.strict_chunks`);
- a change-log entry is ``0x02 | crc32c u32 BE | payload`` (``0x01 |
  payload``: from before checksums), counted as ``log``;
- a hint is ``0x02 | crc32c u32 BE | stamp(16)`` (a bare 16-byte stamp: from
  before checksums), counted as ``hint``;
- a removal marker (``x``) and a staging marker (``s``) are ``0x02 | crc32c
  u32 BE | ms u64 BE`` (``0x01 | ms``, or a bare ``0x01``: from before
  checksums), counted as ``marker``; a removal marker of a write's earlier
  try (``Change.withdrawn``) has a last byte ``0x01`` after the time.

All of these share :func:`frame` and :func:`unframe`. Where a damaged log
entry, hint or marker is met on a write or a background pass, it is counted
and handled as the caller's docstring says (never taken for sound).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c as _crc32c
from google.protobuf.message import DecodeError

from node.metrics import CORRUPT_READS
from tristore.convert import (
    change_from_pb,
    change_to_pb,
    mark_condition,
    stamp_from_pb,
    version_from_pb,
    version_to_pb,
)
from tristore.errors import CorruptData, InternalError
from tristore.model import Change, ObjectVersion, version_stood_for
from tristore.pb import common_pb2, replica_pb2
from tristore.stamps import ENCODED_SIZE, Stamp

VERSION_V1 = 1
#: A version record behind the CRC-32C of its bytes.
VERSION_V2 = 2
_U64 = struct.Struct(">Q")
_GC = struct.Struct(">QI")  # created/due ms, chunk count
_RECORD_HEADER = struct.Struct(">BI")  # format, crc32c
_CRC = struct.Struct(">I")
#: The first bytes of a chunk stored with its checksum (4 bytes: a chunk from
#: before checksums starts with them by chance once in 2^32).
CHUNK_MAGIC = b"\xd3tc\x01"
CHUNK_HEADER = len(CHUNK_MAGIC) + _CRC.size
RECORD = "record"
CHUNK = "chunk"
#: Kinds of the framed small values (the ``kind`` label of the corruption counters).
LOG = "log"
HINT = "hint"
MARKER = "marker"
#: The format byte of a framed value: ``FRAMED | crc32c(payload) u32 BE | payload``.
FRAMED = 2


def crc(data: bytes | memoryview) -> int:
    """CRC-32C, in C (hardware instructions where the CPU has them)."""
    return int(_crc32c.crc32c(data))


def corrupt(kind: str, what: str) -> CorruptData:
    """The error of a damaged value of ``kind`` (RECORD, CHUNK), counted."""
    CORRUPT_READS.labels(kind).inc()
    return CorruptData(what)


def encode_version(
    v: ObjectVersion, with_inline: bool = True, condition: Stamp | None = None
) -> bytes:
    """``condition``: see :attr:`tristore.model.Change.condition`."""
    msg = version_to_pb(v, with_inline)
    mark_condition(msg, condition)
    return encode_version_pb(msg)


def encode_version_pb(msg: common_pb2.ObjectVersion) -> bytes:
    """A version record from the message it is stored as (what a peer's
    commit carries: no dataclass in between)."""
    payload = msg.SerializeToString()
    return _RECORD_HEADER.pack(VERSION_V2, crc(payload)) + payload


def record_payload(raw: bytes) -> memoryview:
    """The protobuf bytes of a stored version record, its checksum checked."""
    if not raw:
        raise corrupt(RECORD, "empty object record")
    fmt = raw[0]
    if fmt == VERSION_V2 and len(raw) >= _RECORD_HEADER.size:
        payload = memoryview(raw)[_RECORD_HEADER.size :]
        if crc(payload) != _RECORD_HEADER.unpack_from(raw)[1]:
            raise corrupt(RECORD, "object record fails its checksum")
        return payload
    if fmt == VERSION_V1:
        return memoryview(raw)[1:]
    raise corrupt(RECORD, f"unknown object record format {raw[:1]!r}")


def record_sound(raw: bytes) -> bool:
    """Whether ``raw`` is a sound version record (not counted: no read)."""
    if raw[:1] == bytes([VERSION_V2]) and len(raw) >= _RECORD_HEADER.size:
        return crc(memoryview(raw)[_RECORD_HEADER.size :]) == _RECORD_HEADER.unpack_from(raw)[1]
    if raw[:1] == bytes([VERSION_V1]):
        try:
            common_pb2.ObjectVersion().ParseFromString(raw[1:])
        except DecodeError:
            return False
        return True
    return False


def version_record_pb(raw: bytes, with_inline: bool = True) -> common_pb2.ObjectVersion:
    """A stored record as the protobuf it is stored as: what a replica sends
    a coordinator as is, without building the dataclass in between."""
    payload = record_payload(raw)
    msg = common_pb2.ObjectVersion()
    try:
        msg.ParseFromString(payload)
    except DecodeError as exc:  # a damaged record from before checksums
        raise corrupt(RECORD, f"object record does not parse: {exc}") from None
    if not with_inline and msg.has_inline:
        msg.ClearField("inline_data")
        msg.has_inline = False
    return msg


def decode_version(raw: bytes) -> ObjectVersion:
    return version_from_pb(version_record_pb(raw))


@dataclass(frozen=True, slots=True)
class RecordHead:
    """What a commit needs of a record it replaces or drops (its checksum
    checked as :func:`decode_version` checks it), without building the whole
    :class:`ObjectVersion`: a commit meets one or two on every write."""

    stamp: Stamp
    data_id: bytes
    #: :attr:`ObjectVersion.is_version`.
    is_version: bool
    #: The version the record stands for (:func:`tristore.model.version_stood_for`).
    version: Stamp
    #: The record the conditional write that made it read (None: none made
    #: it, or not here): :attr:`tristore.model.Change.condition`.
    condition: Stamp | None = None


def decode_head(raw: bytes) -> RecordHead:
    msg = version_record_pb(raw)
    stamp = stamp_from_pb(msg.stamp)
    is_version = not msg.deleted or msg.delete_marker
    version = version_stood_for(
        stamp,
        stamp_from_pb(msg.version_stamp) if msg.has_version_stamp else None,
        is_version,
        (stamp_from_pb(r) for r in msg.removed),
    )
    condition = stamp_from_pb(msg.condition_read) if msg.has_condition_read else None
    return RecordHead(stamp, msg.data_id, is_version, version, condition)


def frame_chunk(data: bytes) -> bytes:
    """A body chunk as stored: behind its magic and checksum."""
    return CHUNK_MAGIC + _CRC.pack(crc(data)) + data


def chunk_payload(raw: bytes, strict: bool) -> bytes:
    """The data of a stored chunk, its checksum checked. Without the magic:
    a chunk from before checksums, taken as it is unless ``strict``."""
    if raw[: len(CHUNK_MAGIC)] == CHUNK_MAGIC and len(raw) >= CHUNK_HEADER:
        data = raw[CHUNK_HEADER:]
        if crc(data) != _CRC.unpack_from(raw, len(CHUNK_MAGIC))[0]:
            raise corrupt(CHUNK, "body chunk fails its checksum")
        return data
    if strict:
        raise corrupt(CHUNK, "body chunk without its checksum")
    return raw


def chunk_sound(raw: bytes, strict: bool) -> bool:
    """Whether a stored chunk passes its checksum (not counted: no read)."""
    if raw[: len(CHUNK_MAGIC)] == CHUNK_MAGIC and len(raw) >= CHUNK_HEADER:
        return crc(memoryview(raw)[CHUNK_HEADER:]) == _CRC.unpack_from(raw, len(CHUNK_MAGIC))[0]
    return not strict


def frame(payload: bytes) -> bytes:
    """A small value as stored: behind its format byte and CRC-32C."""
    return _RECORD_HEADER.pack(FRAMED, crc(payload)) + payload


def unframe(raw: bytes, kind: str, what: str) -> bytes | None:
    """The payload of a framed value, its checksum checked (CorruptData,
    counted as ``kind``, when it fails); None when ``raw`` is not framed (a
    value from before checksums: the caller reads its old format)."""
    if raw[:1] != bytes([FRAMED]):
        return None
    if len(raw) < _RECORD_HEADER.size:
        raise corrupt(kind, f"{what} is cut short")
    payload = raw[_RECORD_HEADER.size :]
    if crc(payload) != _RECORD_HEADER.unpack_from(raw)[1]:
        raise corrupt(kind, f"{what} fails its checksum")
    return payload


def encode_ms(ms: int) -> bytes:
    """A time in ms as meta values hold it (unframed: meta keys are read once, at start)."""
    return bytes([VERSION_V1]) + _U64.pack(ms)


def decode_ms(raw: bytes) -> int:
    if not raw or raw[0] != VERSION_V1:
        raise InternalError(f"unknown timestamp record format {raw[:1]!r}")
    return int(_U64.unpack_from(raw, 1)[0])


def encode_marker(ms: int, withdrawn: bool = False) -> bytes:
    """A removal or staging marker: when it was made, framed; ``withdrawn``:
    it removed a write's earlier try (see :func:`marker_withdrawn`)."""
    return frame(_U64.pack(ms) + (b"\x01" if withdrawn else b""))


def decode_marker(raw: bytes) -> int:
    """When a removal or staging marker was made (ms); 0 for a removal marker
    from before they were dated (``0x01``). CorruptData when damaged."""
    payload = unframe(raw, MARKER, "marker")
    if payload is not None:
        if len(payload) not in (_U64.size, _U64.size + 1):
            raise corrupt(MARKER, "marker has the wrong size")
        return int(_U64.unpack_from(payload)[0])
    if raw == bytes([VERSION_V1]):
        return 0
    if len(raw) == 1 + _U64.size and raw[0] == VERSION_V1:
        return int(_U64.unpack_from(raw, 1)[0])
    raise corrupt(MARKER, f"unknown marker format {raw[:1]!r}")


def marker_withdrawn(raw: bytes) -> bool:
    """Whether a removal marker removed a write's earlier try, never
    acknowledged (``Change.withdrawn``), not a version a user or a rule
    removed. A damaged or old marker reads as a removal."""
    try:
        payload = unframe(raw, MARKER, "marker")
    except CorruptData:
        return False
    return payload is not None and len(payload) == _U64.size + 1 and payload[-1] == 1


def encode_hint(stamp: Stamp) -> bytes:
    return frame(stamp.encode())


def decode_hint(raw: bytes) -> Stamp:
    """The stamp a hint holds. CorruptData when damaged."""
    payload = unframe(raw, HINT, "hint")
    if payload is None:
        if len(raw) != ENCODED_SIZE:
            raise corrupt(HINT, "hint has the wrong size")
        payload = raw  # from before checksums: the bare stamp
    elif len(payload) != ENCODED_SIZE:
        raise corrupt(HINT, "hint has the wrong size")
    return Stamp.decode(payload)


#: Inline bodies up to this size travel in change-log entries too, so that a
#: replicator sends them without reading the body back from the nodes.
LOG_INLINE_MAX = 4096


def encode_change(c: Change) -> bytes:
    """A change-log entry: the commit, with small inline bodies, larger bodies
    by reference only (:func:`encode_change_pb` of the change's message)."""
    return encode_change_pb(change_to_pb(c))


def encode_change_pb(msg: replica_pb2.CommitRequest) -> bytes:
    """A change-log entry from the message a commit arrives as (a peer's: no
    converting the change back): the sender's ``hint_for`` is not part of it,
    and inline bodies above LOG_INLINE_MAX are left out (the message itself
    is left as it is)."""
    if msg.hint_for or any(_fat(v) for v in (*msg.versions, msg.head)):
        msg = replica_pb2.CommitRequest.FromString(msg.SerializeToString())
        msg.hint_for = ""
        for v in (*msg.versions, msg.head):
            if _fat(v):
                v.ClearField("inline_data")
                v.has_inline = False
    return frame(msg.SerializeToString())


def _fat(v: common_pb2.ObjectVersion) -> bool:
    return v.has_inline and len(v.inline_data) > LOG_INLINE_MAX


def change_pb(raw: bytes) -> replica_pb2.CommitRequest:
    """A change-log entry as the protobuf it is stored as, its checksum
    checked (CorruptData, counted as ``log``, when damaged)."""
    payload: bytes | memoryview | None = unframe(raw, LOG, "change-log entry")
    if payload is None:
        if raw[:1] != bytes([VERSION_V1]):
            raise corrupt(LOG, f"unknown change-log entry format {raw[:1]!r}")
        payload = memoryview(raw)[1:]
    msg = replica_pb2.CommitRequest()
    try:
        msg.ParseFromString(payload)
    except DecodeError as exc:  # a damaged entry from before checksums
        raise corrupt(LOG, f"change-log entry does not parse: {exc}") from None
    return msg


def decode_change(raw: bytes) -> Change:
    return change_from_pb(change_pb(raw))


def change_time_ms(raw: bytes) -> int:
    """The wall time (ms) of a change-log entry's stamp, without decoding its
    versions (what log trimming asks of every entry it passes)."""
    return int(change_pb(raw).stamp.physical_ms)


def value_sound(kind: str, raw: bytes) -> bool:
    """Whether a stored log entry, hint or marker (``kind``) reads sound
    (what a scrub asks; a damaged one is counted as a read)."""
    try:
        if kind == LOG:
            change_pb(raw)
        elif kind == HINT:
            decode_hint(raw)
        else:
            decode_marker(raw)
    except CorruptData:
        return False
    return True
