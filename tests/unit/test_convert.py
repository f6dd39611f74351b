"""Domain dataclasses <-> protobuf messages: lossless in both directions."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tristore import convert
from tristore.model import (
    BucketInfo,
    ClusterStatus,
    CompletedPart,
    DeletedObject,
    ListEntry,
    ListPage,
    NodeHealth,
    NodeStatus,
    ObjectInfo,
    ObjectVersion,
    Part,
    PartPage,
    VersionEntry,
    VersionPage,
    ms_to_datetime,
)
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit

ms = st.integers(min_value=0, max_value=2**45)
text = st.text(max_size=20)


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(ms)
def test_milliseconds_survive_the_datetime_round_trip(t: int) -> None:
    info = ObjectInfo("b", "k", 1, "e", "t", {}, "v", ms_to_datetime(t))
    assert convert.info_to_pb(info).last_modified_ms == t
    assert convert.bucket_to_pb(BucketInfo("b", ms_to_datetime(t))).created_ms == t


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(
    st.builds(
        ObjectInfo,
        bucket=text,
        key=text,
        size=st.integers(min_value=0, max_value=2**40),
        etag=text,
        content_type=text,
        metadata=st.dictionaries(text, text, max_size=3),
        version_id=text,
        last_modified=ms.map(ms_to_datetime),
        replication_status=st.sampled_from(["", "PENDING", "COMPLETED", "FAILED", "REPLICA"]),
        headers=st.dictionaries(st.sampled_from(["cache-control", "expires"]), text, max_size=2),
        checksum_algorithm=st.sampled_from(["", "crc32", "crc64nvme", "sha256"]),
        checksum_type=st.sampled_from(["", "FULL_OBJECT", "COMPOSITE"]),
        checksum=text,
        part_sizes=st.lists(st.integers(min_value=0, max_value=2**40), max_size=3).map(tuple),
    )
)
def test_object_info_round_trip(info: ObjectInfo) -> None:
    assert convert.info_from_pb(convert.info_to_pb(info)) == info


@pytest.mark.parametrize("inline", [None, b"", b"body"])
def test_object_version_round_trip(inline: bytes | None) -> None:
    v = ObjectVersion(
        bucket="b",
        key="k/ü",
        stamp=Stamp(1_700_000_000_123, 4, 2, 9),
        size=4,
        etag="abc",
        content_type="text/plain",
        metadata={"a": "1"},
        data_id=b"\x01\x02",
        chunk_size=4096,
        inline=inline,
        headers={"cache-control": "no-cache", "content-encoding": "gzip"},
        checksum_algorithm="sha256",
        checksum_type="COMPOSITE",
        checksum="LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=-3",
        part_sizes=(5 * 2**20, 3),
    )
    assert convert.version_from_pb(convert.version_to_pb(v)) == v
    without = convert.version_from_pb(convert.version_to_pb(v, with_inline=False))
    assert without.inline is None


def test_object_version_round_trip_of_every_field() -> None:
    """Each field set to something other than its default survives (the
    conversions set only fields that hold something: a field they forget is lost)."""
    from tristore.replication import Destination, Rule

    s = Stamp(1_700_000_000_123, 4, 2, 9)
    given = {
        "stamp": s,
        "deleted": True,
        "size": 7,
        "chunk_size": 4096,
        "inline": b"body",
        "version_stamp": Stamp(1_700_000_000_000, 1, 2, 3),
        "meta_stamp": Stamp(1_700_000_000_500, 0, 2, 3),
        "null_version": True,
        "delete_marker": True,
        "removed": (Stamp(1, 2, 3, 4), Stamp(5, 6, 7, 8)),
        "replication_rules": (Rule("r", (Destination("west", "dst"),)),),
        "part_sizes": (5 * 2**20, 3),
    }
    values: dict[str, object] = {}
    for f in dataclasses.fields(ObjectVersion):
        if f.name in given:
            values[f.name] = given[f.name]
        elif f.type in ("str",):
            values[f.name] = f"{f.name}-value"
        elif f.type == "bytes":
            values[f.name] = f.name.encode()
        elif f.type == "dict[str, str]":
            values[f.name] = {f.name: "x"}
        else:
            raise AssertionError(f"give test_convert a value for {f.name}: {f.type}")
    v = ObjectVersion(**values)  # type: ignore[arg-type]
    back = convert.version_from_pb(convert.version_to_pb(v))
    assert back == v
    assert [f.name for f in dataclasses.fields(v) if getattr(v, f.name) == f.default] == []


def test_tombstone_round_trip() -> None:
    v = ObjectVersion("b", "k", Stamp(5, 0, 1, 1), deleted=True)
    assert convert.version_from_pb(convert.version_to_pb(v)) == v


@pytest.mark.parametrize("token", [None, "next-token"])
def test_list_page_round_trip(token: str | None) -> None:
    page = ListPage(
        contents=[
            ListEntry("a", 1, "e1", ms_to_datetime(1001)),
            ListEntry("b", 0, "", ms_to_datetime(3)),
        ],
        common_prefixes=["p/", "q/"],
        is_truncated=token is not None,
        next_continuation_token=token,
        key_count=4,
    )
    assert convert.page_from_pb(convert.page_to_pb(page)) == page


def test_cluster_status_round_trip() -> None:
    full = NodeStatus("a1", "az-a", "node", 3, 10, 4096, 99, 7, 12.5)
    bare = NodeStatus("c1", "az-c", "node")
    status = ClusterStatus(
        cluster="east",
        epoch=7,
        nodes=(
            NodeHealth("a1", "az-a", "127.0.0.1:7101", True, status=full),
            NodeHealth("b1", "az-b", "127.0.0.1:7102", False, error="connection refused"),
            NodeHealth("c1", "az-c", "127.0.0.1:7103", True, status=bare),
        ),
    )
    again = convert.cluster_status_from_pb(convert.cluster_status_to_pb(status))
    assert again == status
    assert again.nodes[1].status is None  # "could not ask" is not a zeroed report
    assert again.nodes[2].status == NodeStatus("c1", "az-c", "node")


def test_cluster_status_summaries() -> None:
    status = ClusterStatus(
        cluster="c",
        epoch=1,
        nodes=(
            NodeHealth("a1", "az-a", "x", True, status=NodeStatus("a1", "az-a", "node", 2)),
            NodeHealth("a2", "az-a", "x", False, error="down"),
            NodeHealth("b1", "az-b", "x", True, status=NodeStatus("b1", "az-b", "node", 5)),
        ),
    )
    assert status.azs == ("az-a", "az-b")
    assert status.nodes_up == 2
    assert status.hints_pending == 7
    assert [n.name for n in status.nodes_in("az-a")] == ["a1", "a2"]
    js = status.to_json()
    assert js["azs"] == {"az-a": {"up": 1, "down": 1}, "az-b": {"up": 1, "down": 0}}
    assert js["nodes"][1] == {  # type: ignore[index]
        "name": "a2", "az": "az-a", "grpc": "x", "up": False, "error": "down", "status": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    "item",
    [
        DeletedObject("k"),
        DeletedObject("k", "v1", True, "v1"),
        DeletedObject("k", "", error_code="AccessDenied", error_message="no"),
    ],
)
def test_deleted_object_round_trip(item: DeletedObject) -> None:
    back = convert.deleted_from_pb(convert.deleted_to_pb(item))
    assert back == item
    assert back.deleted is (item.error_code == "")


def test_multipart_checksums_round_trip() -> None:
    """A part's checksum, listed (ListParts, with the upload's algorithm and
    type) and given back (Complete's CompletedPart)."""
    page = PartPage(
        [
            Part(1, "e1", 5, ms_to_datetime(1001), "sha256", "c2hh"),
            Part(2, "e2", 1, ms_to_datetime(1002)),
        ],
        True,
        2,
        "sha256",
        "COMPOSITE",
    )
    assert convert.part_page_from_pb(convert.part_page_to_pb(page)) == page
    done = CompletedPart(3, "e3", "crc32", "AAAAAA==")
    assert convert.completed_part_from_pb(convert.completed_part_to_pb(done)) == done


def test_version_checksums_round_trip() -> None:
    entries = [
        VersionEntry("k", "v2", True, True, 0, "", ms_to_datetime(2)),
        VersionEntry(
            "k", "v1", False, False, 3, "e", ms_to_datetime(1), "STANDARD", "o", "",
            {}, "crc32c", "FULL_OBJECT",
        ),
    ]  # fmt: skip
    page = VersionPage(entries, [], False, None, None)
    assert convert.version_page_from_pb(convert.version_page_to_pb(page)) == page
