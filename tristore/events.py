"""Event notifications as the SDK and the nodes see them: :class:`Event`,
:class:`Heartbeat`, and their protobuf conversion.

An event says that a version of a key was created or removed. Its ``name`` is
S3's event name without the ``s3:`` prefix; ``type`` is the part before the
colon. Events of one key arrive in the order of one change log; ``sequencer``
(the change's stamp in hex) orders them where that matters (a version handed
back by hinted handoff arrives late, after newer ones). ``cursor`` resumes a
subscription right after the event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tristore.model import ms_to_datetime
from tristore.pb import events_pb2

OBJECT_CREATED = "ObjectCreated"
OBJECT_REMOVED = "ObjectRemoved"

#: A new version (PUT, copy, completed multipart upload, replica), or an overwrite.
CREATED_PUT = "ObjectCreated:Put"
#: A DELETE without a version id in a versioned (or suspended) bucket.
REMOVED_MARKER = "ObjectRemoved:DeleteMarkerCreated"
#: A version removed for good (DELETE with a version id), or a DELETE in an
#: unversioned bucket.
REMOVED_DELETE = "ObjectRemoved:Delete"

NAMES = (CREATED_PUT, REMOVED_MARKER, REMOVED_DELETE)


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    bucket: str
    key: str
    version_id: str
    size: int
    etag: str
    #: 32 hex digits; compare as strings to order one key's events.
    sequencer: str
    event_time: dt.datetime
    #: The node whose change log held the change, and the entry's sequence number.
    node: str = ""
    seq: int = 0
    #: Resumes the subscription right after this event ("" inside the nodes).
    cursor: str = ""

    @property
    def type(self) -> str:
        """``ObjectCreated`` or ``ObjectRemoved``."""
        return self.name.partition(":")[0]

    @property
    def delete_marker(self) -> bool:
        return self.name == REMOVED_MARKER

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "size": self.size,
            "etag": self.etag,
            "sequencer": self.sequencer,
            "event_time": self.event_time.isoformat(),
            "node": self.node,
            "seq": self.seq,
            "cursor": self.cursor,
        }


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent by a subscription when it has had no event for a while: the cursor
    that resumes it (past every change-log entry read so far)."""

    cursor: str


def event_to_pb(e: Event) -> events_pb2.Event:
    return events_pb2.Event(
        name=e.name,
        bucket=e.bucket,
        key=e.key,
        version_id=e.version_id,
        size=e.size,
        etag=e.etag,
        sequencer=e.sequencer,
        event_time_ms=round(e.event_time.timestamp() * 1000),
        node=e.node,
        seq=e.seq,
    )


def event_from_pb(p: events_pb2.Event, cursor: str = "") -> Event:
    return Event(
        name=p.name,
        bucket=p.bucket,
        key=p.key,
        version_id=p.version_id,
        size=p.size,
        etag=p.etag,
        sequencer=p.sequencer,
        event_time=ms_to_datetime(p.event_time_ms),
        node=p.node,
        seq=p.seq,
        cursor=cursor,
    )


def message_from_pb(p: events_pb2.SubscribeResponse) -> Event | Heartbeat:
    """One message of a subscription: an event, or a heartbeat."""
    if p.has_event:
        return event_from_pb(p.event, p.cursor)
    return Heartbeat(p.cursor)


def message_to_pb(m: Event | Heartbeat) -> events_pb2.SubscribeResponse:
    if isinstance(m, Heartbeat):
        return events_pb2.SubscribeResponse(cursor=m.cursor)
    return events_pb2.SubscribeResponse(event=event_to_pb(m), has_event=True, cursor=m.cursor)
