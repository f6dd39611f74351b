"""The SDK's S3-semantics calls on the wire: what each sends and how it reads the
answer, against a scripted in-process ObjectService (the real node is exercised
by the integration tier). Errors go through the real server interceptor."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tristore import (
    Acl,
    AsyncClient,
    Client,
    Conditions,
    CopySource,
    DeleteResult,
    Tagging,
    errors,
)
from tristore.client import RetryPolicy
from tristore.pb import objects_pb2 as pb
from tristore.pb import objects_pb2_grpc
from tristore.server import SERVER_OPTIONS, Interceptor

pytestmark = pytest.mark.unit

FAST = RetryPolicy(base_s=0.001, cap_s=0.002)
VID = "000001a2082a915f0000000000010002"


@dataclass
class Recorder(objects_pb2_grpc.ObjectServiceServicer):
    """Records every request; answers from ``replies`` (per method, in order),
    raising the scripted error first when ``fail`` has one for the method."""

    requests: dict[str, list[Any]] = field(default_factory=dict)
    replies: dict[str, list[Any]] = field(default_factory=dict)
    fail: dict[str, list[errors.TristoreError]] = field(default_factory=dict)

    def _answer(self, method: str, request: Any, default: Any) -> Any:
        self.requests.setdefault(method, []).append(request)
        queue = self.fail.get(method, [])
        if queue:
            raise queue.pop(0)
        replies = self.replies.get(method, [])
        return replies.pop(0) if replies else default

    async def PutObject(self, request_iterator, context):
        header = None
        async for msg in request_iterator:
            header = header or msg.header
        return self._answer("PutObject", header, pb.PutObjectResponse(info=pb.ObjectInfo()))

    async def GetObject(self, request, context):
        yield self._answer("GetObject", request, pb.GetObjectResponse(info=pb.ObjectInfo(size=0)))

    async def HeadObject(self, request, context):
        info = pb.ObjectInfo(
            key=request.key, version_id=VID, tag_count=2, storage_class="GLACIER", sse="AES256"
        )
        return self._answer("HeadObject", request, pb.HeadObjectResponse(info=info))

    async def DeleteObject(self, request, context):
        return self._answer("DeleteObject", request, pb.DeleteObjectResponse())

    async def PutBucketVersioning(self, request, context):
        return self._answer("PutBucketVersioning", request, pb.PutBucketVersioningResponse())

    async def GetBucketVersioning(self, request, context):
        return self._answer("GetBucketVersioning", request, pb.GetBucketVersioningResponse())

    async def ListObjectVersions(self, request, context):
        return self._answer("ListObjectVersions", request, pb.ListObjectVersionsResponse())

    async def GetObjectTagging(self, request, context):
        return self._answer("GetObjectTagging", request, pb.ObjectTaggingResponse())

    async def PutObjectTagging(self, request, context):
        reply = pb.ObjectTaggingResponse(version_id=VID, tags=request.tags)
        return self._answer("PutObjectTagging", request, reply)

    async def DeleteObjectTagging(self, request, context):
        reply = pb.ObjectTaggingResponse(version_id=VID)
        return self._answer("DeleteObjectTagging", request, reply)

    async def GetObjectAcl(self, request, context):
        reply = pb.ObjectAclResponse(version_id=VID, owner="o1", acl="private")
        return self._answer("GetObjectAcl", request, reply)

    async def PutObjectAcl(self, request, context):
        reply = pb.ObjectAclResponse(version_id=VID, owner="o1", acl=request.acl)
        return self._answer("PutObjectAcl", request, reply)

    async def CopyObject(self, request, context):
        reply = pb.CopyObjectResponse(
            info=pb.ObjectInfo(bucket=request.bucket, key=request.key, size=3, version_id=VID),
            source_version_id="null",
        )
        return self._answer("CopyObject", request, reply)


async def _serve(script: Recorder, check: Callable[[AsyncClient], Awaitable[None]]) -> None:
    server = grpc.aio.server(interceptors=[Interceptor()], options=SERVER_OPTIONS)
    objects_pb2_grpc.add_ObjectServiceServicer_to_server(script, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            await check(c)
    finally:
        await server.stop(None)


def run(script: Recorder, check: Callable[[AsyncClient], Awaitable[None]]) -> None:
    asyncio.run(_serve(script, check))


def _version_page(
    keys: list[tuple[str, str]], next_marker: tuple[str, str] | None = None
) -> pb.ListObjectVersionsResponse:
    return pb.ListObjectVersionsResponse(
        versions=[pb.VersionEntry(key=k, version_id=v) for k, v in keys],
        is_truncated=next_marker is not None,
        next_key_marker=next_marker[0] if next_marker else "",
        next_version_id_marker=next_marker[1] if next_marker else "",
    )


# -- PUT ---------------------------------------------------------------------------


def test_put_sends_tags_acl_class_sse_and_conditions() -> None:
    script = Recorder()

    async def check(c: AsyncClient) -> None:
        await c.put_object(
            "bkt",
            "k",
            b"abc",
            tags={"team": "blue", "env": ""},
            acl="public-read",
            storage_class="ONEZONE_IA",
            sse="AES256",
            if_none_match="*",
        )
        await c.put_object("bkt", "k", b"abc", if_match="5d41402abc4b2a76b9719d911017c592")
        await c.put_object("bkt", "k", b"abc")

    run(script, check)
    full, cas, plain = script.requests["PutObject"]
    assert dict(full.tags) == {"team": "blue", "env": ""}
    assert (full.acl, full.storage_class, full.sse) == ("public-read", "ONEZONE_IA", "AES256")
    assert (full.if_none_match, full.if_match) == ("*", "")
    assert (cas.if_none_match, cas.if_match) == ("", "5d41402abc4b2a76b9719d911017c592")
    # Nothing given: nothing sent, the server's defaults apply.
    assert (dict(plain.tags), plain.acl, plain.storage_class, plain.sse) == ({}, "", "", "")
    assert (plain.if_none_match, plain.if_match) == ("", "")


def test_a_conditional_write_that_lost_a_race_is_retried() -> None:
    script = Recorder(fail={"PutObject": [errors.ConditionalRequestConflict("raced")]})

    async def check(c: AsyncClient) -> None:
        await c.put_object("bkt", "k", b"abc", if_match="e1")

    run(script, check)
    assert len(script.requests["PutObject"]) == 2


def test_a_failed_precondition_is_not_retried() -> None:
    script = Recorder(fail={"PutObject": [errors.PreconditionFailed("exists")] * 3})

    async def check(c: AsyncClient) -> None:
        with pytest.raises(errors.PreconditionFailed, match="exists"):
            await c.put_object("bkt", "k", b"abc", if_none_match="*")

    run(script, check)
    assert len(script.requests["PutObject"]) == 1


# -- GET / HEAD conditions -------------------------------------------------------------


def test_conditions_on_the_wire() -> None:
    since = dt.datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
    script = Recorder()

    async def check(c: AsyncClient) -> None:
        await c.get_object("bkt", "k", conditions=Conditions(if_match="e1"))
        async with c.get_object_stream(
            "bkt", "k", conditions=Conditions(if_none_match="e2", if_modified_since=since)
        ):
            pass
        await c.get_object("bkt", "k", version_id="null", conditions=Conditions())
        info = await c.head_object("bkt", "k", conditions=Conditions(if_unmodified_since=since))
        assert (info.tag_count, info.storage_class, info.sse) == (2, "GLACIER", "AES256")

    run(script, check)
    g1, g2, g3 = script.requests["GetObject"]
    assert g1.conditions.if_match == "e1" and not g1.conditions.has_if_modified_since
    assert g2.conditions.if_none_match == "e2"
    assert g2.conditions.has_if_modified_since
    assert g2.conditions.if_modified_since_ms == 1714564800250
    assert not g3.HasField("conditions") and g3.version_id == "null"
    (h,) = script.requests["HeadObject"]
    assert h.conditions.has_if_unmodified_since and not h.conditions.has_if_modified_since
    assert h.conditions.if_unmodified_since_ms == 1714564800250


@pytest.mark.parametrize("error", [errors.NotModified, errors.PreconditionFailed])
def test_precondition_answers_are_raised_once(error: type[errors.TristoreError]) -> None:
    script = Recorder(fail={"HeadObject": [error("no")] * 3})

    async def check(c: AsyncClient) -> None:
        with pytest.raises(error):
            await c.head_object("bkt", "k", conditions=Conditions(if_match="x"))

    run(script, check)
    assert len(script.requests["HeadObject"]) == 1


# -- DELETE ------------------------------------------------------------------------


def test_delete_returns_the_marker_or_the_removed_version() -> None:
    script = Recorder(
        replies={
            "DeleteObject": [
                pb.DeleteObjectResponse(version_id=VID, delete_marker=True),
                pb.DeleteObjectResponse(version_id="null"),
                pb.DeleteObjectResponse(),
            ]
        }
    )

    async def check(c: AsyncClient) -> None:
        assert await c.delete_object("bkt", "k") == DeleteResult(VID, True)
        assert await c.delete_object("bkt", "k", "null") == DeleteResult("null", False)
        assert await c.delete_object("bkt", "k") == DeleteResult()

    run(script, check)
    assert [r.version_id for r in script.requests["DeleteObject"]] == ["", "null", ""]


# -- versioning ----------------------------------------------------------------------


def test_bucket_versioning_round_trip() -> None:
    script = Recorder(
        replies={"GetBucketVersioning": [pb.GetBucketVersioningResponse(status="Enabled")]}
    )

    async def check(c: AsyncClient) -> None:
        await c.put_bucket_versioning("bkt", "Enabled")
        assert await c.get_bucket_versioning("bkt") == "Enabled"
        assert await c.get_bucket_versioning("bkt") == ""  # never versioned

    run(script, check)
    (put,) = script.requests["PutBucketVersioning"]
    assert (put.bucket, put.status) == ("bkt", "Enabled")


def test_list_object_versions_sends_markers_and_max_keys_only_when_given() -> None:
    script = Recorder()

    async def check(c: AsyncClient) -> None:
        await c.list_object_versions("bkt")
        await c.list_object_versions(
            "bkt", prefix="p/", delimiter="/", max_keys=0, key_marker="p/a", version_id_marker=VID
        )

    run(script, check)
    plain, full = script.requests["ListObjectVersions"]
    assert not plain.has_max_keys and (plain.key_marker, plain.version_id_marker) == ("", "")
    assert full.has_max_keys and full.max_keys == 0
    assert (full.prefix, full.delimiter, full.key_marker, full.version_id_marker) == (
        "p/",
        "/",
        "p/a",
        VID,
    )


def test_iter_object_versions_follows_the_markers() -> None:
    script = Recorder(
        replies={
            "ListObjectVersions": [
                _version_page([("a", VID), ("a", "null")], ("a", "null")),
                _version_page([("b", VID)], ("b", VID)),
                _version_page([("c", "null")]),
            ]
        }
    )

    async def check(c: AsyncClient) -> None:
        pages = [p async for p in c.iter_object_versions("bkt", page_size=2)]
        assert [[(v.key, v.version_id) for v in p.versions] for p in pages] == [
            [("a", VID), ("a", "null")],
            [("b", VID)],
            [("c", "null")],
        ]
        assert pages[0].next_key_marker == "a" and pages[-1].next_key_marker is None

    run(script, check)
    markers = [(r.key_marker, r.version_id_marker) for r in script.requests["ListObjectVersions"]]
    assert markers == [("", ""), ("a", "null"), ("b", VID)]
    assert all(r.has_max_keys and r.max_keys == 2 for r in script.requests["ListObjectVersions"])


@pytest.mark.parametrize(
    "pages",
    [
        [_version_page([("a", VID)], ("", ""))],  # truncated, no marker
        [_version_page([("a", VID)], ("a", VID)), _version_page([("a", VID)], ("a", VID))],
    ],
    ids=["no marker", "same marker twice"],
)
def test_iter_object_versions_stops_on_a_server_that_does_not_advance(
    pages: list[pb.ListObjectVersionsResponse],
) -> None:
    script = Recorder(replies={"ListObjectVersions": list(pages)})

    async def check(c: AsyncClient) -> None:
        with pytest.raises(errors.InternalError, match="key marker"):
            async for _ in c.iter_object_versions("bkt"):
                pass

    run(script, check)


# -- tags and ACLs ---------------------------------------------------------------------


def test_tagging_calls() -> None:
    script = Recorder(
        replies={"GetObjectTagging": [pb.ObjectTaggingResponse(version_id=VID, tags={"a": "1"})]}
    )

    async def check(c: AsyncClient) -> None:
        assert await c.get_object_tagging("bkt", "k") == Tagging(VID, {"a": "1"})
        put = await c.put_object_tagging("bkt", "k", {"x": "y", "z": ""}, version_id="null")
        assert put == Tagging(VID, {"x": "y", "z": ""})
        assert await c.delete_object_tagging("bkt", "k", VID) == Tagging(VID, {})

    run(script, check)
    (put,) = script.requests["PutObjectTagging"]
    assert (put.version_id, dict(put.tags)) == ("null", {"x": "y", "z": ""})
    assert script.requests["DeleteObjectTagging"][0].version_id == VID


def test_acl_calls() -> None:
    script = Recorder()

    async def check(c: AsyncClient) -> None:
        assert await c.get_object_acl("bkt", "k") == Acl(VID, "o1", "private")
        assert await c.put_object_acl("bkt", "k", "public-read", VID) == Acl(
            VID, "o1", "public-read"
        )

    run(script, check)
    (put,) = script.requests["PutObjectAcl"]
    assert (put.acl, put.version_id) == ("public-read", VID)


# -- copy ------------------------------------------------------------------------------


def test_copy_keeps_the_source_by_default() -> None:
    script = Recorder()

    async def check(c: AsyncClient) -> None:
        result = await c.copy_object(CopySource("src", "a", version_id="null"), "dst", "b")
        assert result.source_version_id == "null"
        assert (result.info.bucket, result.info.key, result.info.version_id) == ("dst", "b", VID)

    run(script, check)
    (r,) = script.requests["CopyObject"]
    assert (r.source_bucket, r.source_key, r.source_version_id) == ("src", "a", "null")
    assert (r.bucket, r.key) == ("dst", "b")
    assert (r.metadata_directive, r.tagging_directive) == ("COPY", "COPY")
    assert (r.content_type, dict(r.metadata), dict(r.tags)) == ("", {}, {})
    assert not r.HasField("source_conditions")


def test_copy_replaces_what_it_is_told_to() -> None:
    script = Recorder()
    since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    async def check(c: AsyncClient) -> None:
        await c.copy_object(
            CopySource("bkt", "k", conditions=Conditions(if_match="e1", if_modified_since=since)),
            "bkt",
            "k",
            metadata_directive="replace",
            metadata={"X-Amz-Meta-Color": "red"},
            tagging_directive="REPLACE",
            tags={"t": "1"},
            acl="bucket-owner-read",
            storage_class="GLACIER",
            sse="aws:kms",
        )

    run(script, check)
    (r,) = script.requests["CopyObject"]
    assert (r.metadata_directive, r.tagging_directive) == ("REPLACE", "REPLACE")
    assert r.content_type == "binary/octet-stream"  # REPLACE without one: the default
    assert dict(r.metadata) == {"color": "red"}
    assert dict(r.tags) == {"t": "1"}
    assert (r.acl, r.storage_class, r.sse) == ("bucket-owner-read", "GLACIER", "aws:kms")
    assert r.source_conditions.if_match == "e1" and r.source_conditions.has_if_modified_since


def test_sync_client_shares_the_new_calls() -> None:
    script = Recorder(
        replies={
            "ListObjectVersions": [
                _version_page([("a", VID)], ("a", VID)),
                _version_page([("b", "null")]),
            ],
            "DeleteObject": [pb.DeleteObjectResponse(version_id=VID, delete_marker=True)],
        }
    )

    async def check(c: AsyncClient) -> None:
        port = c.endpoints[0]

        def work() -> None:
            with Client(port, retry=FAST) as s:
                keys = [v.key for p in s.iter_object_versions("bkt") for v in p.versions]
                assert keys == ["a", "b"]
                assert s.delete_object("bkt", "k").delete_marker
                assert s.copy_object(CopySource("bkt", "k"), "bkt", "k2").info.size == 3

        await asyncio.to_thread(work)

    run(script, check)
