"""S3 object semantics on real processes: versioning, delete markers, tags, ACLs,
copy and conditional requests, checked against what S3 documents."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tristore import errors
from tristore.model import Conditions, CopySource

pytestmark = pytest.mark.integration

LONG = os.environ.get("TRISTORE_LONG") == "1"


def _fresh(c, name: str, versioning: str | None = "Enabled") -> str:  # type: ignore[no-untyped-def]
    c.create_bucket(name)
    if versioning:
        c.put_bucket_versioning(name, versioning)
    return name


def test_versioning_states_and_their_errors(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "vstates", None)
        assert c.get_bucket_versioning(b) == ""
        c.put_bucket_versioning(b, "Enabled")
        # Through another coordinator at once: the bucket record is read like any key.
        with cluster.client(cluster.config.nodes[-1].grpc) as other:
            assert other.get_bucket_versioning(b) == "Enabled"
        c.put_bucket_versioning(b, "Suspended")
        assert c.get_bucket_versioning(b) == "Suspended"
        with pytest.raises(errors.IllegalVersioningConfigurationException):
            c.put_bucket_versioning(b, "Disabled")
        with pytest.raises(errors.IllegalVersioningConfigurationException):
            c.put_bucket_versioning(b, "")
        assert c.get_bucket_versioning(b) == "Suspended"
        with pytest.raises(errors.NoSuchBucket):
            c.put_bucket_versioning("no-such-bucket", "Enabled")


def test_versions_delete_markers_and_restore(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "versions")
        v1 = c.put_object(b, "k", b"one")
        v2 = c.put_object(b, "k", b"two")
        assert v1.version_id != v2.version_id and "null" not in (v1.version_id, v2.version_id)
        assert c.get_object(b, "k") == b"two"
        assert c.get_object(b, "k", version_id=v1.version_id) == b"one"
        assert c.head_object(b, "k", version_id=v1.version_id).etag == v1.etag

        marker = c.delete_object(b, "k")
        assert marker.delete_marker and marker.version_id
        with pytest.raises(errors.NoSuchKey):
            c.get_object(b, "k")
        assert "k" not in {e.key for e in c.list_objects(b).contents}
        # Older versions are still there, by id.
        assert c.get_object(b, "k", version_id=v2.version_id) == b"two"
        with pytest.raises(errors.MethodNotAllowed):
            c.get_object(b, "k", version_id=marker.version_id)

        page = c.list_object_versions(b)
        assert [(v.version_id, v.is_latest, v.delete_marker) for v in page.versions] == [
            (marker.version_id, True, True),
            (v2.version_id, False, False),
            (v1.version_id, False, False),
        ]
        # Deleting the marker restores the object.
        gone = c.delete_object(b, "k", version_id=marker.version_id)
        assert gone.version_id == marker.version_id and gone.delete_marker
        assert c.get_object(b, "k") == b"two"
        assert "k" in {e.key for e in c.list_objects(b).contents}

        # Deleting the current version for good makes the next newest current.
        c.delete_object(b, "k", version_id=v2.version_id)
        assert c.get_object(b, "k") == b"one"
        with pytest.raises(errors.NoSuchVersion):
            c.get_object(b, "k", version_id=v2.version_id)
        # A noncurrent version, then the last one: the key is gone, no marker left.
        v3 = c.put_object(b, "k", b"three")
        c.delete_object(b, "k", version_id=v1.version_id)
        assert [v.version_id for v in c.list_object_versions(b).versions] == [v3.version_id]
        c.delete_object(b, "k", version_id=v3.version_id)
        with pytest.raises(errors.NoSuchKey):
            c.head_object(b, "k")
        assert c.list_object_versions(b).versions == []
        # As S3: deleting a version that does not exist is no error; a bad id is.
        c.delete_object(b, "k", version_id=v3.version_id)
        with pytest.raises(errors.InvalidArgument):
            c.delete_object(b, "k", version_id="not-a-version")
        c.delete_bucket(b)


def test_null_version_when_unversioned_and_suspended(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "nullver", None)
        pre = c.put_object(b, "k", b"before")
        assert pre.version_id == "null"
        c.put_bucket_versioning(b, "Enabled")
        v1 = c.put_object(b, "k", b"versioned")
        assert c.get_object(b, "k", version_id="null") == b"before"
        c.put_bucket_versioning(b, "Suspended")
        # A PUT while suspended replaces the null version and keeps the others.
        s1 = c.put_object(b, "k", b"suspended")
        assert s1.version_id == "null"
        assert c.get_object(b, "k", version_id="null") == b"suspended"
        assert c.get_object(b, "k", version_id=v1.version_id) == b"versioned"
        ids = [v.version_id for v in c.list_object_versions(b).versions]
        assert ids == ["null", v1.version_id]
        # A DELETE while suspended is a null delete marker.
        d = c.delete_object(b, "k")
        assert d.delete_marker and d.version_id == "null"
        entries = c.list_object_versions(b).versions
        assert [(v.version_id, v.delete_marker, v.is_latest) for v in entries] == [
            ("null", True, True),
            (v1.version_id, False, False),
        ]
        # The bucket is not empty while versions remain.
        with pytest.raises(errors.BucketNotEmpty):
            c.delete_bucket(b)
        c.delete_object(b, "k", version_id="null")
        assert c.get_object(b, "k") == b"versioned"


def test_version_listing_pages_with_markers_and_delimiter(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "vlisting")
        expected: list[tuple[str, str]] = []
        for key in ("a", "dir/x", "dir/y", "z"):
            ids = [c.put_object(b, key, f"{key}{i}".encode()).version_id for i in range(3)]
            expected += [(key, vid) for vid in reversed(ids)]
        seen: list[tuple[str, str]] = []
        latest: list[bool] = []
        for page in c.iter_object_versions(b, page_size=2):
            assert len(page.versions) <= 2
            seen += [(v.key, v.version_id) for v in page.versions]
            latest += [v.is_latest for v in page.versions]
        assert seen == expected
        assert latest == [i % 3 == 0 for i in range(len(expected))]
        page = c.list_object_versions(b, delimiter="/")
        assert page.common_prefixes == ["dir/"]
        assert {v.key for v in page.versions} == {"a", "z"}
        page = c.list_object_versions(b, prefix="dir/", max_keys=4)
        assert page.is_truncated and [v.key for v in page.versions] == ["dir/x"] * 3 + ["dir/y"]
        rest = c.list_object_versions(
            b,
            prefix="dir/",
            key_marker=page.next_key_marker,
            version_id_marker=page.next_version_id_marker,
        )
        assert [(v.key, v.is_latest) for v in rest.versions] == [("dir/y", False)] * 2
        with pytest.raises(errors.InvalidArgument):
            c.list_object_versions(b, version_id_marker=expected[0][1])


def test_deep_version_stack(cluster: DevCluster) -> None:
    """GET latest reads one record however many versions lie below it."""
    depth = 10_000 if LONG else 600
    with cluster.client() as c:
        b = _fresh(c, "deepstack")
        last = None
        for i in range(depth):
            last = c.put_object(b, "hot", str(i).encode())
        assert last is not None
        assert c.get_object(b, "hot") == str(depth - 1).encode()
        assert c.head_object(b, "hot").version_id == last.version_id
        count = sum(len(p.versions) for p in c.iter_object_versions(b))
        assert count == depth


def test_tags_and_acls_per_version(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "tagged")
        v1 = c.put_object(b, "k", b"one", tags={"team": "storage"}, acl="public-read")
        v2 = c.put_object(b, "k", b"two")
        assert c.head_object(b, "k", version_id=v1.version_id).tag_count == 1
        assert c.get_object_tagging(b, "k").tags == {}
        assert c.get_object_tagging(b, "k", version_id=v1.version_id).tags == {"team": "storage"}
        acl = c.get_object_acl(b, "k", version_id=v1.version_id)
        assert acl.acl == "public-read" and acl.owner
        assert c.get_object_acl(b, "k").acl == "private"

        # Tags of the current version change in place: same version, same Last-Modified.
        before = c.head_object(b, "k")
        t = c.put_object_tagging(b, "k", {"a": "1", "b": "2"})
        assert t.version_id == v2.version_id
        after = c.head_object(b, "k")
        assert after.version_id == before.version_id and after.last_modified == before.last_modified
        assert after.tag_count == 2
        # ... and of a noncurrent one, without touching the current one.
        c.put_object_tagging(b, "k", {"old": "yes"}, version_id=v1.version_id)
        assert c.get_object_tagging(b, "k", version_id=v1.version_id).tags == {"old": "yes"}
        assert c.get_object_tagging(b, "k").tags == {"a": "1", "b": "2"}
        assert c.delete_object_tagging(b, "k").version_id == v2.version_id
        assert c.get_object_tagging(b, "k").tags == {}
        c.put_object_acl(b, "k", "bucket-owner-full-control")
        assert c.get_object_acl(b, "k").acl == "bucket-owner-full-control"
        assert c.get_object(b, "k") == b"two"

        with pytest.raises(errors.InvalidTag):
            c.put_object_tagging(b, "k", {f"k{i}": "v" for i in range(11)})
        with pytest.raises(errors.InvalidTag):
            c.put_object_tagging(b, "k", {"aws:reserved": "v"})
        with pytest.raises(errors.InvalidArgument):
            c.put_object_acl(b, "k", "everyone-may-write")
        with pytest.raises(errors.NoSuchVersion):
            c.get_object_tagging(b, "k", version_id="0" * 32)
        marker = c.delete_object(b, "k")
        with pytest.raises(errors.MethodNotAllowed):
            c.put_object_tagging(b, "k", {"a": "b"}, version_id=marker.version_id)
        with pytest.raises(errors.NoSuchKey):
            c.get_object_tagging(b, "k")


def test_storage_class_and_sse_are_kept(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "classes", None)
        c.put_object(b, "cold", b"x", storage_class="GLACIER", sse="AES256")
        info = c.head_object(b, "cold")
        assert (info.storage_class, info.sse) == ("GLACIER", "AES256")
        assert c.head_object(b, "cold").storage_class == "GLACIER"
        c.put_object(b, "plain", b"x")
        assert c.head_object(b, "plain").storage_class == "STANDARD"
        with pytest.raises(errors.InvalidStorageClass):
            c.put_object(b, "bad", b"x", storage_class="FROZEN")
        with pytest.raises(errors.InvalidArgument):
            c.put_object(b, "bad", b"x", sse="rot13")
        with pytest.raises(errors.NoSuchKey):
            c.head_object(b, "bad")


def test_server_side_copy(cluster: DevCluster) -> None:
    with cluster.client() as c:
        src = _fresh(c, "copy-src")
        dst = _fresh(c, "copy-dst", None)
        big = os.urandom(3 * 1024 * 1024 + 17)
        old = c.put_object(
            src, "big", big, content_type="x/old", metadata={"m": "1"}, tags={"t": "1"}
        )
        c.put_object(src, "big", b"newer")
        out = c.copy_object(CopySource(src, "big", old.version_id), dst, "copy")
        assert out.source_version_id == old.version_id
        assert out.info.etag == old.etag
        assert c.get_object(dst, "copy") == big
        info = c.head_object(dst, "copy")
        assert (info.content_type, info.metadata, info.tag_count) == ("x/old", {"m": "1"}, 1)
        # REPLACE takes the request's metadata and tags instead.
        c.copy_object(
            CopySource(src, "big"),
            dst,
            "small",
            metadata_directive="REPLACE",
            content_type="text/plain",
            metadata={"n": "2"},
            tagging_directive="REPLACE",
            tags={},
        )
        info = c.head_object(dst, "small")
        assert (info.content_type, info.metadata, info.tag_count) == ("text/plain", {"n": "2"}, 0)
        assert c.get_object(dst, "small") == b"newer"
        # Copying onto itself needs a change; with one it makes a new version.
        with pytest.raises(errors.InvalidRequest):
            c.copy_object(CopySource(src, "big"), src, "big")
        again = c.copy_object(
            CopySource(src, "big"), src, "big", metadata_directive="REPLACE", metadata={"x": "y"}
        )
        assert again.info.version_id != old.version_id
        # Source preconditions answer 412; a missing source 404.
        with pytest.raises(errors.PreconditionFailed):
            c.copy_object(CopySource(src, "big", conditions=Conditions(if_match="nope")), dst, "x")
        with pytest.raises(errors.NoSuchKey):
            c.copy_object(CopySource(src, "absent"), dst, "x")
        with pytest.raises(errors.InvalidArgument):
            c.copy_object(CopySource(src, "big"), dst, "x", metadata_directive="MERGE")
        with pytest.raises(errors.NoSuchKey):
            c.head_object(dst, "x")


def test_conditional_get_and_head(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "conditional", None)
        info = c.put_object(b, "k", b"body")
        etag = info.etag
        lm = info.last_modified
        hour = dt.timedelta(hours=1)
        ok = [
            Conditions(if_match=etag),
            Conditions(if_match=f'"{etag}"'),
            Conditions(if_match="*"),
            Conditions(if_none_match="other"),
            Conditions(if_modified_since=lm - hour),
            Conditions(if_unmodified_since=lm + hour),
            # If-Match true wins over a false If-Unmodified-Since.
            Conditions(if_match=etag, if_unmodified_since=lm - hour),
            # If-None-Match true wins over a false If-Modified-Since.
            Conditions(if_none_match="other", if_modified_since=lm + hour),
        ]
        for cond in ok:
            assert c.get_object(b, "k", conditions=cond) == b"body", cond
            c.head_object(b, "k", conditions=cond)
        failed = [
            (Conditions(if_match="other"), errors.PreconditionFailed),
            (Conditions(if_unmodified_since=lm - hour), errors.PreconditionFailed),
            (Conditions(if_none_match=etag), errors.NotModified),
            (Conditions(if_none_match="*"), errors.NotModified),
            (Conditions(if_modified_since=lm + hour), errors.NotModified),
            (Conditions(if_none_match=etag, if_modified_since=lm - hour), errors.NotModified),
        ]
        for cond, err in failed:
            with pytest.raises(err):
                c.get_object(b, "k", conditions=cond)
            with pytest.raises(err):
                c.head_object(b, "k", conditions=cond)


def test_conditional_put(cluster: DevCluster) -> None:
    with cluster.client() as c:
        b = _fresh(c, "condput", None)
        first = c.put_object(b, "k", b"one", if_none_match="*")
        with pytest.raises(errors.PreconditionFailed):
            c.put_object(b, "k", b"two", if_none_match="*")
        assert c.get_object(b, "k") == b"one"
        second = c.put_object(b, "k", b"two", if_match=first.etag)
        with pytest.raises(errors.PreconditionFailed):
            c.put_object(b, "k", b"three", if_match=first.etag)  # compare-and-swap lost
        assert c.get_object(b, "k") == b"two"
        with pytest.raises(errors.NoSuchKey):
            c.put_object(b, "absent", b"x", if_match=second.etag)
        with pytest.raises(errors.InvalidArgument):
            c.put_object(b, "k", b"x", if_none_match="some-etag")
        # A deleted key may be created again with If-None-Match.
        c.delete_object(b, "k")
        c.put_object(b, "k", b"again", if_none_match="*")
        big = os.urandom(2 * 1024 * 1024)
        with pytest.raises(errors.PreconditionFailed):
            c.put_object(b, "k", big, if_none_match="*")
        assert c.get_object(b, "k") == b"again"


@pytest.mark.parametrize("writers", [8])
def test_racing_create_if_absent_has_exactly_one_winner(cluster: DevCluster, writers: int) -> None:
    """N clients, spread over every coordinator, race If-None-Match: * on fresh keys."""
    nodes = [n.grpc for n in cluster.config.nodes]
    rounds = 12
    with cluster.client() as c:
        b = _fresh(c, "race-create", None)
    lock = threading.Lock()

    def race(i: int, key: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
        with cluster.client(nodes[i % len(nodes)]) as w:
            barrier.wait()
            try:
                w.put_object(b, key, f"writer-{i}".encode(), if_none_match="*")
                result = f"won:{i}"
            except (errors.PreconditionFailed, errors.ConditionalRequestConflict) as exc:
                result = exc.code
        with lock:
            outcomes.append(result)

    for r in range(rounds):
        key = f"k{r}"
        barrier = threading.Barrier(writers, timeout=30)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=race, args=(i, key, barrier, outcomes)) for i in range(writers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(outcomes) == writers
        winners = [o for o in outcomes if o.startswith("won:")]
        assert len(winners) == 1, outcomes
        with cluster.client() as c:
            assert c.get_object(b, key) == f"writer-{winners[0][4:]}".encode()


def test_versions_on_disk_leave_nothing_behind(own_cluster: DevCluster) -> None:
    """Removed versions leave no version record on any node's own RocksDB."""
    cluster = own_cluster
    with cluster.client() as c:
        b = _fresh(c, "ondisk")
        ids = [c.put_object(b, "k", os.urandom(100)).version_id for _ in range(5)]
        for vid in ids[1:4]:
            c.delete_object(b, "k", version_id=vid)
        c.put_object_tagging(b, "k", {"t": "x"}, version_id=ids[0])
    # A home that looked down for a moment got its share as a hint; let it land.
    cluster.wait_hints_drained()
    cluster.down()  # so that each node's RocksDB can be opened from here
    homes = cluster.homes(b, "k")
    for name in homes:
        held = sorted(
            v.version_id for v in cluster.node_versions_all(name) if (v.bucket, v.key) == (b, "k")
        )
        assert held == sorted([ids[0], ids[4]]), name
        tags = {
            v.version_id: v.tags
            for v in cluster.node_versions_all(name)
            if (v.bucket, v.key) == (b, "k")
        }
        assert tags[ids[0]] == {"t": "x"}


def test_stand_in_copies_do_not_outlive_what_their_home_removed(tmp_path: Path) -> None:
    """A node holding hints for a home that is back must not make removed
    versions reappear in version listings (nor keep a bucket from being deleted)
    before it hands them back. Hints are held for a long while here on purpose."""
    cluster = start_cluster(tmp_path, extra_env={"TRISTORE_NODE_HINT_INTERVAL_S": "60"})
    try:
        coordinator = cluster.config.node_named("a2")  # lists from its own AZ: a1, a2
        on_a1 = [k for k in (f"k{i}" for i in range(100)) if "a1" in cluster.homes("standin", k)]
        on_a1 = on_a1[:5]
        with cluster.client(coordinator.grpc) as c:
            c.create_bucket("standin")
            c.put_object("standin", "versioned-later", b"x")
            cluster.kill("a1", "KILL")
            for k in on_a1:
                c.put_object("standin", k, b"while a1 was down")
            assert cluster.hints_pending() > 0
            cluster.start("a1")
            wait_until(
                lambda: cluster.metric("b1", "tristore_cluster_nodes_up") == 6,
                10,
                what="b1 to see a1",
            )
            for k in {*on_a1, "versioned-later"}:
                c.delete_object("standin", k)
            assert cluster.hints_pending() > 0, "the hints must still be held for this to test"
            page = c.list_object_versions("standin")
            assert page.versions == [], [(v.key, v.version_id) for v in page.versions]
            c.delete_bucket("standin")
    finally:
        cluster.down()


def test_a_tag_change_and_an_acl_change_of_one_noncurrent_version_at_once_both_stay(
    cluster: DevCluster,
) -> None:
    """Two clients change one noncurrent version at once through nodes of two
    AZs, one its tags, the other its ACL: both calls succeed and both changes
    stay. An edit of a noncurrent version was committed everywhere without a
    decision: each wrote the record it read plus its own change, the later
    stamp won, and the other change (acknowledged) was gone. Now the key's
    first AZ takes an edit only if no newer record of the version is there;
    the other is read again and made on top of it."""
    from tristore.client import AsyncClient

    nodes = cluster.config.nodes
    second = next(n for n in nodes if n.az != nodes[0].az)
    with cluster.client() as c:
        bucket = _fresh(c, "edits-at-once")

    async def rounds(n: int) -> list[str]:
        lost: list[str] = []
        a, b = AsyncClient(nodes[0].grpc), AsyncClient(second.grpc)
        try:
            for r in range(n):
                key = f"k{r}"
                old = await a.put_object(bucket, key, b"old", tags={"was": "here"})
                await a.put_object(bucket, key, b"new")
                await asyncio.wait_for(
                    asyncio.gather(
                        a.put_object_tagging(
                            bucket, key, {"round": str(r)}, version_id=old.version_id
                        ),
                        b.put_object_acl(bucket, key, "public-read", version_id=old.version_id),
                    ),
                    30,
                )
                tags = (await a.get_object_tagging(bucket, key, version_id=old.version_id)).tags
                acl = (await b.get_object_acl(bucket, key, version_id=old.version_id)).acl
                if tags != {"round": str(r)} or acl != "public-read":
                    lost.append(f"round {r}: tags {tags}, ACL {acl}")
                assert await a.get_object(bucket, key) == b"new"  # the current one untouched
        finally:
            await a.close()
            await b.close()
        return lost

    lost = asyncio.run(rounds(60))
    assert lost == [], lost


def test_deletes_of_the_current_version_and_the_one_below_it_at_once_leave_neither(
    cluster: DevCluster,
) -> None:
    """Two clients DELETE, through nodes of two AZs at once, a key's current
    version and the version below it: both calls succeed, and neither
    version is read again. The current version's DELETE makes the version
    below it current; when the other DELETE had removed that one first, it
    came back as current for good (the simulation, seed 245 with DELETEs of
    versions). Now the key's first AZ refuses to make a removed version
    current, and a DELETE that finds the version it removed made current
    meanwhile deletes it as the current one."""
    from tristore.client import AsyncClient

    nodes = cluster.config.nodes
    second = next(n for n in nodes if n.az != nodes[0].az)
    with cluster.client() as c:
        bucket = _fresh(c, "deletes-at-once")

    async def rounds(n: int) -> list[str]:
        wrong: list[str] = []
        a, b = AsyncClient(nodes[0].grpc), AsyncClient(second.grpc)
        try:
            for r in range(n):
                key = f"k{r}"
                below = await a.put_object(bucket, key, b"below")
                top = await a.put_object(bucket, key, b"top")
                await asyncio.wait_for(
                    asyncio.gather(
                        a.delete_object(bucket, key, version_id=top.version_id),
                        b.delete_object(bucket, key, version_id=below.version_id),
                    ),
                    30,
                )
                for client in (a, b):
                    try:
                        got = await client.get_object(bucket, key)
                    except errors.NoSuchKey:
                        continue
                    wrong.append(f"round {r}: {got!r} read after both versions were deleted")
                listed = await a.list_object_versions(bucket, prefix=key)
                if [v for v in listed.versions if v.key == key]:
                    wrong.append(f"round {r}: versions listed after both were deleted")
        finally:
            await a.close()
            await b.close()
        return wrong

    wrong = asyncio.run(rounds(60))
    assert wrong == [], wrong
