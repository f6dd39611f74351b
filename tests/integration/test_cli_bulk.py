"""Bulk work on real processes: the SDK's delete_objects (batched DeleteObjects,
authorized key by key) and the CLI's rm --recursive, rb --force, ls, cp
--recursive, sync, mv and du."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cluster import DevCluster
from tristore import errors
from tristore.client import Client, Credentials

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def alice(cluster: DevCluster) -> Iterator[Credentials]:
    with cluster.client() as root:
        root.create_user("alice", "user")
        k = root.create_access_key("alice")
    yield Credentials(k.access_key_id, k.secret_access_key)


def _keys(c: Client, bucket: str, prefix: str = "") -> list[str]:
    return [e.key for page in c.iter_objects(bucket, prefix) for e in page.contents]


# --- SDK: delete_objects ---------------------------------------------------------


def test_delete_objects_batches_and_answers_per_key(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("bulkdel")
        keys = [f"d/{i:04d}" for i in range(1203)]  # two calls: 1000 + 203
        for k in keys:
            c.put_object("bulkdel", k, b"x")
        c.put_object("bulkdel", "keep", b"k")
        results = c.delete_objects("bulkdel", keys)
        assert [r.key for r in results] == keys
        assert all(r.deleted and not r.delete_marker for r in results)
        assert _keys(c, "bulkdel") == ["keep"]
        # a key that is not there is deleted too (S3's DeleteObject answers it so)
        assert c.delete_objects("bulkdel", ["gone"], quiet=True) == []


def test_delete_objects_versions_and_markers(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("bulkver")
        c.put_bucket_versioning("bulkver", "Enabled")
        v1 = c.put_object("bulkver", "a", b"1").version_id
        c.put_object("bulkver", "a", b"2")
        c.put_object("bulkver", "b", b"b")
        results = c.delete_objects("bulkver", [("a", v1), "b"])
        assert (results[0].key, results[0].version_id, results[0].deleted) == ("a", v1, True)
        assert not results[0].delete_marker
        marker = results[1]
        assert marker.key == "b" and marker.delete_marker and marker.delete_marker_version_id
        assert c.get_object("bulkver", "a") == b"2"
        with pytest.raises(errors.NoSuchKey):
            c.head_object("bulkver", "b")
        # the marker deleted by its version id: b is back
        again = c.delete_objects("bulkver", [("b", marker.delete_marker_version_id)])
        assert again[0].deleted and again[0].delete_marker
        assert c.get_object("bulkver", "b") == b"b"
        versions = c.list_object_versions("bulkver").versions
        assert sorted(v.key for v in versions) == ["a", "b"]


def test_delete_objects_refuses_bad_input_before_deleting(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("bulkbad")
        c.put_object("bulkbad", "a", b"1")
        with pytest.raises(errors.KeyTooLongError):
            c.delete_objects("bulkbad", ["a", "k" * 2000])
        with pytest.raises(errors.InvalidArgument):
            c.delete_objects("bulkbad", ["a", 7])  # type: ignore[list-item]
        assert _keys(c, "bulkbad") == ["a"]
        assert c.delete_objects("bulkbad", []) == []
        assert c.delete_objects("nosuchbucketbulk", ["a"])[0].error_code == "NoSuchBucket"


def test_delete_objects_authorizes_each_key(cluster: DevCluster, alice: Credentials) -> None:
    with cluster.client() as root:
        root.create_bucket("rootsbulk")
        root.put_object("rootsbulk", "r", b"root's")
    with Client(cluster.endpoint, credentials=alice) as a:
        a.create_bucket("alicebulk")
        a.put_object("alicebulk", "mine", b"m")
        # None of the keys may go: the call is refused whole, nothing changes.
        with pytest.raises(errors.AccessDenied):
            a.delete_objects("rootsbulk", ["r"])
        assert a.delete_objects("alicebulk", ["mine"])[0].deleted
    policy = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["alice"]},'
        '"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::rootsbulk/open/*"}]}'
    )
    with cluster.client() as root:
        root.put_object("rootsbulk", "open/x", b"x")
        root.put_bucket_policy("rootsbulk", policy)
    with Client(cluster.endpoint, credentials=alice) as a:
        got = {r.key: r.error_code for r in a.delete_objects("rootsbulk", ["open/x", "r"])}
    assert got == {"open/x": "", "r": "AccessDenied"}
    with cluster.client() as root:
        assert _keys(root, "rootsbulk") == ["r"]
