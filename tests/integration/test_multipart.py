"""Multipart upload on real processes, against what S3 documents: the ETag,
every wrong use and its error code, nothing left behind in the nodes' RocksDB,
and a coordinator SIGKILLed during complete leaving the whole object or none."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node import keys
from node.multipart import MIN_PART_SIZE, multipart_etag
from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tristore import errors

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_upload_complete_and_read_back(cluster: DevCluster) -> None:
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE), os.urandom(1234)]
    with cluster.client() as c:
        c.create_bucket("mpu")
        up = c.create_multipart_upload(
            "mpu", "big/object", "application/x-test", {"owner": "me"}, tags={"t": "1"}
        )
        assert len(up.upload_id) >= 16
        etags = []
        # Out of order, through different coordinators, like parallel uploaders.
        for n in (3, 1, 2):
            with cluster.client(cluster.config.nodes[n].grpc) as other:
                p = other.upload_part("mpu", "big/object", up.upload_id, n, parts[n - 1])
            assert p.etag == _md5(parts[n - 1]) and p.size == len(parts[n - 1])
        etags = [_md5(b) for b in parts]
        listed = c.list_parts("mpu", "big/object", up.upload_id)
        assert [(p.part_number, p.etag, p.size) for p in listed.parts] == [
            (i + 1, etags[i], len(parts[i])) for i in range(3)
        ]
        uploads = c.list_multipart_uploads("mpu")
        assert [(u.key, u.upload_id) for u in uploads.uploads] == [("big/object", up.upload_id)]
        # The object does not exist before complete.
        with pytest.raises(errors.NoSuchKey):
            c.head_object("mpu", "big/object")
        info = c.complete_multipart_upload(
            "mpu", "big/object", up.upload_id, [(1, etags[0]), (2, f'"{etags[1]}"'), (3, etags[2])]
        )
        assert info.etag == multipart_etag(etags)
        assert info.etag.endswith("-3")
        assert info.size == sum(map(len, parts))
        body = c.get_object("mpu", "big/object")
        assert body == b"".join(parts)
        head = c.head_object("mpu", "big/object")
        assert head.etag == info.etag
        assert head.content_type == "application/x-test"
        assert head.metadata == {"owner": "me"}
        assert c.get_object_tagging("mpu", "big/object").tags == {"t": "1"}
        # A ranged read across a part boundary.
        assert (
            c.get_object("mpu", "big/object", (MIN_PART_SIZE - 10, MIN_PART_SIZE + 9))
            == (parts[0] + parts[1])[MIN_PART_SIZE - 10 : MIN_PART_SIZE + 10]
        )
        # The upload is gone once complete.
        assert c.list_multipart_uploads("mpu").uploads == []
        with pytest.raises(errors.NoSuchUpload):
            c.list_parts("mpu", "big/object", up.upload_id)
        # The same Complete again (a retry whose first reply was lost) answers
        # with the object it made, as S3 does; with other parts it is refused.
        again = c.complete_multipart_upload(
            "mpu", "big/object", up.upload_id, [(1, etags[0]), (2, etags[1]), (3, etags[2])]
        )
        assert (again.version_id, again.etag, again.size) == (info.version_id, info.etag, info.size)
        with pytest.raises(errors.NoSuchUpload):
            c.complete_multipart_upload("mpu", "big/object", up.upload_id, [(1, etags[0])])


def test_a_part_uploaded_again_replaces_the_first(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("mpu-again")
        up = c.create_multipart_upload("mpu-again", "k")
        c.upload_part("mpu-again", "k", up.upload_id, 1, b"first")
        second = c.upload_part("mpu-again", "k", up.upload_id, 1, b"second")
        parts = c.list_parts("mpu-again", "k", up.upload_id).parts
        assert [(p.part_number, p.etag) for p in parts] == [(1, second.etag)]
        with pytest.raises(errors.InvalidPart):
            c.complete_multipart_upload("mpu-again", "k", up.upload_id, [(1, _md5(b"first"))])
        info = c.complete_multipart_upload("mpu-again", "k", up.upload_id, [(1, second.etag)])
        assert c.get_object("mpu-again", "k") == b"second"
        assert info.etag == multipart_etag([second.etag])


def test_every_wrong_use_gets_its_error_and_writes_nothing(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("mpu-bad")
        up = c.create_multipart_upload("mpu-bad", "k")
        small = c.upload_part("mpu-bad", "k", up.upload_id, 1, b"x" * 100)
        big = c.upload_part("mpu-bad", "k", up.upload_id, 2, os.urandom(MIN_PART_SIZE))
        last = c.upload_part("mpu-bad", "k", up.upload_id, 3, b"tail")
        uid = up.upload_id
        cases: list[tuple[type[errors.TristoreError], list[tuple[int, str]]]] = [
            (errors.MalformedXML, []),
            (errors.InvalidPartOrder, [(2, big.etag), (1, small.etag)]),
            (errors.InvalidPartOrder, [(2, big.etag), (2, big.etag)]),
            (errors.InvalidPart, [(2, big.etag), (4, last.etag)]),
            (errors.InvalidPart, [(2, small.etag), (3, last.etag)]),
            (errors.EntityTooSmall, [(1, small.etag), (2, big.etag)]),
        ]
        for error, chosen in cases:
            with pytest.raises(error):
                c.complete_multipart_upload("mpu-bad", "k", uid, chosen)
        for n in (0, 10_001):
            with pytest.raises(errors.InvalidArgument):
                c.upload_part("mpu-bad", "k", uid, n, b"x")
        for bad_id in ("nope", "0" * 28, uid[:-1] + ("0" if uid[-1] != "0" else "1")):
            with pytest.raises(errors.NoSuchUpload):
                c.upload_part("mpu-bad", "k", bad_id, 1, b"x")
            with pytest.raises(errors.NoSuchUpload):
                c.abort_multipart_upload("mpu-bad", "k", bad_id)
        with pytest.raises(errors.NoSuchUpload):
            c.list_parts("mpu-bad", "other-key", uid)  # the id belongs to another key
        with pytest.raises(errors.NoSuchBucket):
            c.create_multipart_upload("mpu-no-such-bucket", "k")
        with pytest.raises(errors.BadDigest):
            c.upload_part("mpu-bad", "k", uid, 4, b"abc", content_md5=_md5(b"abd"))
        # Nothing was written by any of that.
        with pytest.raises(errors.NoSuchKey):
            c.head_object("mpu-bad", "k")
        assert [p.part_number for p in c.list_parts("mpu-bad", "k", uid).parts] == [1, 2, 3]
        # The valid completion still works after all the refusals.
        c.complete_multipart_upload("mpu-bad", "k", uid, [(2, big.etag), (3, last.etag)])
        assert c.head_object("mpu-bad", "k").size == MIN_PART_SIZE + 4


def test_uploads_list_by_key_then_creation_with_markers(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("mpu-list")
        made = []
        for key in ("b", "a", "a/x", "b"):
            made.append((key, c.create_multipart_upload("mpu-list", key).upload_id))
            time.sleep(0.002)  # ids sort by creation time in ms
        expected = sorted(made)
        page = c.list_multipart_uploads("mpu-list")
        assert [(u.key, u.upload_id) for u in page.uploads] == expected
        assert not page.is_truncated
        seen = []
        key_marker, id_marker = "", ""
        for _ in range(10):
            page = c.list_multipart_uploads(
                "mpu-list", key_marker=key_marker, upload_id_marker=id_marker, max_uploads=1
            )
            seen += [(u.key, u.upload_id) for u in page.uploads]
            if not page.is_truncated:
                break
            key_marker, id_marker = page.next_key_marker or "", page.next_upload_id_marker or ""
        assert seen == expected
        assert [u.key for u in c.list_multipart_uploads("mpu-list", prefix="a").uploads] == [
            "a",
            "a/x",
        ]
        after_a = c.list_multipart_uploads("mpu-list", key_marker="a")
        assert [u.key for u in after_a.uploads] == ["a/x", "b", "b"]
        for key, uid in made:
            c.abort_multipart_upload("mpu-list", key, uid)
        assert c.list_multipart_uploads("mpu-list").uploads == []


def test_uploads_roll_up_by_a_delimiter(cluster: DevCluster) -> None:
    """ListMultipartUploads with a delimiter over gRPC: common prefixes as
    ListObjects gives them, and pages that resume after a prefix. The
    delimiter is looked for in keys only: not in the byte that ends a key in
    the store's name of an upload, nor in the upload id after it."""
    with cluster.client() as c:
        c.create_bucket("mpu-rolled")
        made = [
            (key, c.create_multipart_upload("mpu-rolled", key).upload_id)
            for key in ("k", "k", "x/p", "x/q", "z")
        ]
        page = c.list_multipart_uploads("mpu-rolled", delimiter="/")
        assert [(u.key, u.upload_id) for u in page.uploads] == sorted(
            m for m in made if "/" not in m[0]
        )
        assert page.common_prefixes == ["x/"] and not page.is_truncated
        walk: list[str] = []
        key_marker, id_marker = "", ""
        for _ in range(10):
            page = c.list_multipart_uploads(
                "mpu-rolled", "", key_marker, id_marker, max_uploads=1, delimiter="/"
            )
            walk += [u.key for u in page.uploads] + page.common_prefixes
            if not page.is_truncated:
                break
            key_marker, id_marker = page.next_key_marker or "", page.next_upload_id_marker or ""
        assert walk == ["k", "k", "x/", "z"]
        for delimiter in ["\x01", *"0123456789abcdef"]:
            whole = c.list_multipart_uploads("mpu-rolled", delimiter=delimiter)
            assert whole.common_prefixes == [], delimiter
            assert sorted((u.key, u.upload_id) for u in whole.uploads) == sorted(made)


def test_a_part_whose_upload_is_aborted_while_it_streams_is_refused_and_dropped(
    cluster: DevCluster,
) -> None:
    """UploadPart checks the upload again once the body is in: a part whose
    upload was aborted meanwhile is NoSuchUpload, and no node keeps it."""
    with cluster.client() as c, cluster.client() as aborter:
        c.create_bucket("mpu-raced")
        up = c.create_multipart_upload("mpu-raced", "k")

        def body() -> Iterator[bytes]:
            yield os.urandom(MIB)
            aborter.abort_multipart_upload("mpu-raced", "k", up.upload_id)
            yield os.urandom(MIB)

        with pytest.raises(errors.NoSuchUpload):
            c.upload_part("mpu-raced", "k", up.upload_id, 1, body())
        part = f"p/{up.upload_id}/00001"
        for n in cluster.config.nodes:
            held = cluster.node_versions(n.name).get((keys.UPLOADS, part))
            assert held is None or held.deleted, (n.name, held)


def test_versioned_bucket_gets_a_new_version(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("mpu-ver")
        c.put_bucket_versioning("mpu-ver", "Enabled")
        first = c.put_object("mpu-ver", "k", b"v1")
        up = c.create_multipart_upload("mpu-ver", "k")
        p = c.upload_part("mpu-ver", "k", up.upload_id, 1, b"v2")
        info = c.complete_multipart_upload("mpu-ver", "k", up.upload_id, [(1, p.etag)])
        assert info.version_id not in ("", "null", first.version_id)
        assert c.get_object("mpu-ver", "k") == b"v2"
        assert c.get_object("mpu-ver", "k", version_id=first.version_id) == b"v1"
        # A Complete retried after a newer version replaced it finds it among
        # the versions: the same answer, and no new version.
        c.put_object("mpu-ver", "k", b"v3")
        again = c.complete_multipart_upload("mpu-ver", "k", up.upload_id, [(1, p.etag)])
        assert again.version_id == info.version_id and again.etag == info.etag
        assert len(c.list_object_versions("mpu-ver", prefix="k").versions) == 3


def test_a_conditional_complete_is_refused_when_the_key_is_not_as_expected(
    cluster: DevCluster,
) -> None:
    """if_none_match="*" / if_match on Complete, as on a PUT (a body of
    several chunks: the conditional write of a large object). Refused, the
    object stays and the upload can still be completed."""
    body = os.urandom(MIN_PART_SIZE) + b"tail"
    with cluster.client() as c:
        c.create_bucket("mpu-cond")
        first = c.put_object("mpu-cond", "k", b"first")
        up = c.create_multipart_upload("mpu-cond", "k")
        parts = [
            (1, c.upload_part("mpu-cond", "k", up.upload_id, 1, body[:MIN_PART_SIZE]).etag),
            (2, c.upload_part("mpu-cond", "k", up.upload_id, 2, body[MIN_PART_SIZE:]).etag),
        ]
        with pytest.raises(errors.PreconditionFailed):
            c.complete_multipart_upload("mpu-cond", "k", up.upload_id, parts, if_none_match="*")
        with pytest.raises(errors.PreconditionFailed):
            c.complete_multipart_upload("mpu-cond", "k", up.upload_id, parts, if_match=_md5(b""))
        none = c.create_multipart_upload("mpu-cond", "none")
        small = [(1, c.upload_part("mpu-cond", "none", none.upload_id, 1, b"x").etag)]
        with pytest.raises(errors.NoSuchKey):
            c.complete_multipart_upload(
                "mpu-cond", "none", none.upload_id, small, if_match="0" * 32
            )
        assert c.get_object("mpu-cond", "k") == b"first"
        assert [p.part_number for p in c.list_parts("mpu-cond", "k", up.upload_id).parts] == [1, 2]
        done = c.complete_multipart_upload(
            "mpu-cond", "k", up.upload_id, parts, if_match=first.etag
        )
        assert done.etag == multipart_etag([e for _, e in parts])
        assert c.get_object("mpu-cond", "k") == body
        # By part, as S3's partNumber.
        assert c.head_object("mpu-cond", "k", part_number=2).part_sizes == (MIN_PART_SIZE, 4)
        assert c.get_object("mpu-cond", "k", part_number=2) == b"tail"
        with c.get_object_stream("mpu-cond", "k", part_number=1) as s:
            assert b"".join(s) == body[:MIN_PART_SIZE]
        with pytest.raises(errors.InvalidPartNumber):
            c.get_object("mpu-cond", "k", part_number=3)
        with pytest.raises(errors.InvalidArgument):
            c.head_object("mpu-cond", "k", part_number=0)


def _data_ids_on_disk(cluster: DevCluster, name: str) -> set[bytes]:
    """Body ids of every chunk in a node's own RocksDB."""
    from rocksdict import AccessType, Options, Rdict

    path = cluster.config.data_dir_for(name)
    db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        found: set[bytes] = set()
        for k in db.keys(from_key=keys.DATA):
            if not k.startswith(keys.DATA):
                break
            found.add(k[1 : 1 + keys.DATA_ID_SIZE])
        return found
    finally:
        db.close()


def test_completed_and_aborted_uploads_leave_no_orphans(tmp_path: Path) -> None:
    """After complete and abort, and the deletion of a bucket with an upload in
    progress, the nodes' RocksDB hold no live upload or part record, and (once
    garbage is collected) no body but the object's. The deleted bucket's
    upload is gone at once: a new bucket of that name does not have it."""
    cluster = start_cluster(
        tmp_path,
        extra_env={
            "TRISTORE_NODE_GC_GRACE_S": "1",
            "TRISTORE_NODE_MULTIPART_EXPIRY_CHECK_S": "0.5",
        },
    )
    try:
        with cluster.client() as c:
            c.create_bucket("deleted")
            left = c.create_multipart_upload("deleted", "left")
            part = c.upload_part("deleted", "left", left.upload_id, 1, os.urandom(2 * MIB))
            c.delete_bucket("deleted")  # as S3: an upload in progress does not hold it
            c.create_bucket("deleted")
            assert c.list_multipart_uploads("deleted").uploads == []
            for call in (
                lambda: c.list_parts("deleted", "left", left.upload_id),
                lambda: c.upload_part("deleted", "left", left.upload_id, 2, b"x"),
                lambda: c.complete_multipart_upload(
                    "deleted", "left", left.upload_id, [(1, part.etag)]
                ),
            ):
                with pytest.raises(errors.NoSuchUpload):
                    call()
            assert c.list_objects("deleted").contents == []
            c.create_bucket("orphans")
            done = c.create_multipart_upload("orphans", "kept")
            a = c.upload_part("orphans", "kept", done.upload_id, 1, os.urandom(MIN_PART_SIZE))
            b = c.upload_part("orphans", "kept", done.upload_id, 2, os.urandom(MIB))
            c.complete_multipart_upload(
                "orphans", "kept", done.upload_id, [(1, a.etag), (2, b.etag)]
            )
            dropped = c.create_multipart_upload("orphans", "dropped")
            for n in (1, 2):
                c.upload_part("orphans", "dropped", dropped.upload_id, n, os.urandom(2 * MIB))
            c.abort_multipart_upload("orphans", "dropped", dropped.upload_id)
            with pytest.raises(errors.NoSuchUpload):
                c.list_parts("orphans", "dropped", dropped.upload_id)
        cluster.wait_hints_drained()
        nodes = [n.name for n in cluster.config.nodes]

        def only_the_object_held() -> bool:
            # Read-only opens of the running nodes' stores (see below for the stopped ones).
            try:
                held = set().union(*(_data_ids_on_disk(cluster, n) for n in nodes))
                kept = {
                    v.data_id
                    for n in nodes
                    for (bucket, key), v in cluster.node_versions(n).items()
                    if (bucket, key) == ("orphans", "kept")
                }
            except Exception:  # noqa: BLE001 - a store caught mid-flush: look again
                return False
            return len(kept) == 1 and held == kept

        # The sweep (every 0.5 s) removes the deleted bucket's upload; the
        # grace period (1 s) and a collection round (every 5 s) pass.
        wait_until(only_the_object_held, 60, interval=1, what="garbage bodies to be collected")
        orphaned = sum(
            cluster.metric(n, "tristore_node_multipart_uploads_orphaned_total") for n in nodes
        )
        assert orphaned == 1
        cluster.down()
        for name in nodes:
            live = {
                v.key: v
                for (bucket, _), v in cluster.node_versions(name).items()
                if bucket == keys.UPLOADS and not v.deleted
            }
            assert live == {}, (name, sorted(live))
        held = set().union(*(_data_ids_on_disk(cluster, n) for n in nodes))
        kept = {
            v.data_id
            for n in nodes
            for (bucket, key), v in cluster.node_versions(n).items()
            if (bucket, key) == ("orphans", "kept")
        }
        assert len(kept) == 1 and held == kept, (len(held), len(kept))
    finally:
        cluster.down()


def test_sigkill_during_complete_leaves_the_whole_object_or_none(tmp_path: Path) -> None:
    """The coordinator of a complete is SIGKILLed at a few moments into it; a
    reader through another node then sees all of the object or none of it (and
    with none, the upload is still there to complete)."""
    cluster = start_cluster(tmp_path)
    try:
        coordinator = cluster.config.node_named("a1")
        parts = [os.urandom(MIN_PART_SIZE) for _ in range(8)]
        whole_md5 = _md5(b"".join(parts))
        interrupted = 0
        with cluster.client(cluster.config.node_named("b1").grpc) as c:
            c.create_bucket("crash")
        for round_, delay in enumerate((0.05, 0.2, 0.5)):
            key = f"k{round_}"
            with cluster.client(cluster.config.node_named("b1").grpc) as c:
                up = c.create_multipart_upload("crash", key)
                chosen = [
                    (n, c.upload_part("crash", key, up.upload_id, n, parts[n - 1]).etag)
                    for n in range(1, len(parts) + 1)
                ]
            outcome: list[object] = []

            def complete(
                key: str, upload_id: str, chosen: list[tuple[int, str]], outcome: list[object]
            ) -> None:
                try:
                    with cluster.client(coordinator.grpc) as only_a1:
                        outcome.append(
                            only_a1.complete_multipart_upload("crash", key, upload_id, chosen)
                        )
                except errors.TristoreError as exc:
                    outcome.append(exc)

            pid = next(int(str(p["pid"])) for p in cluster.status() if p["name"] == "a1")
            t = threading.Thread(target=complete, args=(key, up.upload_id, chosen, outcome))
            t.start()
            time.sleep(delay)
            # Straight from here: `dev kill` takes a CLI start-up (most of a second on
            # a loaded machine), longer than a complete can take.
            os.kill(pid, signal.SIGKILL)
            cluster.kill("a1", "KILL")  # the launcher sees it gone
            t.join(60)
            assert not t.is_alive()
            interrupted += isinstance(outcome[0], errors.TristoreError)
            with cluster.client(cluster.config.node_named("c1").grpc) as c:
                try:
                    info = c.head_object("crash", key)
                except errors.NoSuchKey:
                    # None of it: the upload is still there to complete.
                    listed = c.list_parts("crash", key, up.upload_id).parts
                    assert [p.part_number for p in listed] == [n for n, _ in chosen]
                    info = c.complete_multipart_upload("crash", key, up.upload_id, chosen)
                assert info.size == len(parts) * MIN_PART_SIZE
                assert info.etag == multipart_etag([e for _, e in chosen])
                assert _md5(c.get_object("crash", key)) == whole_md5
            cluster.start("a1")
        assert interrupted >= 1, "no kill landed during a complete: the test tested nothing"
    finally:
        cluster.down()
