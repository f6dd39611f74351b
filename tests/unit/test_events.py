"""Event notifications, the pure parts: the cursor codec and its validation,
what a change-log entry means as events, and the protobuf round trip."""

from __future__ import annotations

import base64
import datetime as dt
import struct
import zlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.events import (
    END,
    decode_cursor,
    encode_cursor,
    events_of,
)
from tristore import errors
from tristore.events import (
    CREATED_PUT,
    REMOVED_DELETE,
    REMOVED_MARKER,
    Event,
    Heartbeat,
    event_from_pb,
    event_to_pb,
    message_from_pb,
    message_to_pb,
)
from tristore.model import Change, ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit

CLUSTER = (7, "test")

positions = st.dictionaries(
    st.integers(min_value=1, max_value=2**16 - 1),
    st.integers(min_value=0, max_value=2**64 - 1),
    max_size=40,
)
buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)


def _decode(text: str, bucket: str = "photos") -> dict[int, int]:
    return decode_cursor(text, *CLUSTER, bucket)


# -- the cursor -------------------------------------------------------------------


@given(positions, buckets)
def test_cursor_round_trips(pos: dict[int, int], bucket: str) -> None:
    text = encode_cursor(7, bucket, pos)
    assert text.isascii() and "=" not in text and "/" not in text and "+" not in text
    assert decode_cursor(text, *CLUSTER, bucket) == pos


def test_cursor_keeps_the_mark_of_a_node_not_read_yet_and_its_time() -> None:
    pending = END | 1_700_000_000_000
    assert _decode(encode_cursor(7, "photos", {1: 5, 2: pending})) == {1: 5, 2: pending}


def test_cursor_of_another_bucket_is_refused_with_what_to_do() -> None:
    text = encode_cursor(7, "photos", {1: 3})
    with pytest.raises(errors.InvalidArgument, match="another bucket than 'videos'"):
        _decode(text, "videos")


def test_cursor_of_another_cluster_is_refused() -> None:
    text = encode_cursor(8, "photos", {1: 3})
    with pytest.raises(errors.InvalidArgument, match=r"cluster id 8.*'test' \(id 7\)"):
        _decode(text)


@pytest.mark.parametrize(
    "text",
    ["garbage", "!!!not base64!!!", "", "AQAB", "A" * 70_000],
    ids=["word", "symbols", "empty", "short", "huge"],
)
def test_malformed_cursors_are_invalid_argument(text: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="damaged or truncated") as info:
        _decode(text)
    assert info.value.grpc_status.name == "INVALID_ARGUMENT"
    assert len(str(info.value)) < 400  # a long token is not echoed whole


def test_a_damaged_or_truncated_cursor_is_caught_by_its_checksum() -> None:
    text = encode_cursor(7, "photos", {1: 3, 2: 9, 3: 12})
    flipped = text[:10] + ("B" if text[10] != "B" else "C") + text[11:]
    for bad in (flipped, text[:-3], text + "AAAA"):
        with pytest.raises(errors.InvalidArgument, match="damaged or truncated"):
            _decode(bad)


def test_a_cursor_of_a_newer_format_says_so() -> None:
    body = struct.pack(">BHIH", 2, 7, zlib.crc32(b"photos"), 0)
    body += struct.pack(">I", zlib.crc32(body))
    text = base64.urlsafe_b64encode(body).decode()
    with pytest.raises(errors.InvalidArgument, match="format 2"):
        _decode(text)


# -- what a change means -----------------------------------------------------------


def _stamp(ms: int, node: int = 1) -> Stamp:
    return Stamp(1_700_000_000_000 + ms, 0, 7, node)


def _version(ms: int, **kw: object) -> ObjectVersion:
    fields: dict[str, object] = {"size": 5, "etag": "e" * 32}
    fields.update(kw)
    return ObjectVersion("photos", "cat.jpg", _stamp(ms), **fields)  # type: ignore[arg-type]


def test_a_replica_is_created_and_an_edit_is_not() -> None:
    """A record stamped above its version stamp is an edit (tags, a status)
    unless its commit says it is new here (a replica): then it is created,
    with the source's version id, whether it becomes current or not."""
    replica = _version(9, version_stamp=_stamp(2, node=3))
    for change in (
        Change.of(replica, _stamp(8), created=True),
        Change("photos", "cat.jpg", replica.stamp, versions=(replica,), created=True),
    ):
        [e] = events_of(change, "a1", 1)
        assert (e.name, e.version_id) == (CREATED_PUT, replica.vstamp.version_id)
    assert events_of(Change.of(replica, _stamp(8)), "a1", 2) == []


def test_a_new_version_is_created() -> None:
    v = _version(1)
    [e] = events_of(replace(Change.of(v), merge=True), "a1", 9)
    assert (e.name, e.type, e.key, e.version_id, e.size, e.etag) == (
        CREATED_PUT,
        "ObjectCreated",
        "cat.jpg",
        v.version_id,
        5,
        "e" * 32,
    )
    assert (e.node, e.seq, e.sequencer) == ("a1", 9, v.stamp.version_id)
    assert e.event_time == dt.datetime.fromtimestamp(v.stamp.physical_ms / 1000, dt.UTC)


def test_a_null_version_and_an_unversioned_delete() -> None:
    put = _version(1, null_version=True)
    [created] = events_of(Change.of(put), "a1", 1)
    assert (created.name, created.version_id) == (CREATED_PUT, "null")
    tomb = _version(2, deleted=True, null_version=True, size=0, etag="")
    [removed] = events_of(Change.of(tomb), "a1", 2)
    assert (removed.name, removed.version_id, removed.size) == (REMOVED_DELETE, "null", 0)


def test_a_delete_marker() -> None:
    marker = _version(3, deleted=True, delete_marker=True, size=0, etag="")
    [e] = events_of(replace(Change.of(marker), merge=True), "a1", 3)
    assert (e.name, e.type, e.delete_marker) == (REMOVED_MARKER, "ObjectRemoved", True)
    assert e.version_id == marker.version_id


def test_a_version_removed_for_good() -> None:
    gone = _stamp(1)
    [e] = events_of(Change("photos", "cat.jpg", _stamp(5), removed=(gone,)), "a1", 4)
    assert (e.name, e.version_id, e.sequencer) == (
        REMOVED_DELETE,
        gone.version_id,
        _stamp(5).version_id,
    )


def test_removing_the_current_version_promotes_the_next_without_a_created_event() -> None:
    older = _version(1)
    head = replace(older, stamp=_stamp(9), version_stamp=older.stamp, removed=(_stamp(5),))
    events = events_of(Change.of(head, expect=_stamp(5)), "a1", 7)
    assert [(e.name, e.version_id) for e in events] == [(REMOVED_DELETE, _stamp(5).version_id)]


def test_edits_of_an_existing_version_are_not_events() -> None:
    v = _version(1)
    tagged = replace(v, stamp=_stamp(4), version_stamp=v.stamp, tags={"a": "b"})
    # The current version (a conditional write) and a noncurrent one (a plain commit).
    assert events_of(Change.of(tagged, expect=v.stamp), "a1", 1) == []
    assert events_of(Change("photos", "cat.jpg", tagged.stamp, versions=(tagged,)), "a1", 2) == []


def test_hinted_handoff_sends_every_version_the_stand_in_held_in_stamp_order() -> None:
    a = _version(1)
    b = replace(_version(2), stamp=_stamp(3), version_stamp=_stamp(2))  # written, then tagged
    marker = _version(4, deleted=True, delete_marker=True, size=0, etag="")
    handoff = Change(
        "photos",
        "cat.jpg",
        marker.stamp,
        head=marker,
        versions=(marker, b, a),
        removed=(_stamp(0),),
        merge=True,
    )
    events = events_of(handoff, "a1", 11)
    assert [(e.name, e.version_id) for e in events] == [
        (CREATED_PUT, a.version_id),
        (CREATED_PUT, _stamp(2).version_id),
        (REMOVED_MARKER, marker.version_id),
        (REMOVED_DELETE, _stamp(0).version_id),
    ]
    assert {e.seq for e in events} == {11}


def test_hinted_handoff_of_an_unversioned_delete_is_a_removal() -> None:
    put = _version(1, null_version=True)
    tomb = _version(2, deleted=True, null_version=True, size=0, etag="")
    handoff = Change("photos", "cat.jpg", tomb.stamp, head=tomb, versions=(put,), merge=True)
    events = events_of(handoff, "a1", 5)
    assert [(e.name, e.version_id, e.sequencer) for e in events] == [
        (CREATED_PUT, "null", put.stamp.version_id),
        (REMOVED_DELETE, "null", tomb.stamp.version_id),
    ]


# -- protobuf -----------------------------------------------------------------------


def test_event_and_heartbeat_round_trip_through_protobuf() -> None:
    [e] = events_of(Change.of(_version(1)), "b2", 42)
    e = replace(e, cursor="CUR")
    assert event_from_pb(event_to_pb(e), "CUR") == e
    assert message_from_pb(message_to_pb(e)) == e
    assert message_from_pb(message_to_pb(Heartbeat("H"))) == Heartbeat("H")
    assert isinstance(message_from_pb(message_to_pb(e)), Event)
    assert e.to_json()["cursor"] == "CUR" and e.to_json()["event_time"].endswith("+00:00")
