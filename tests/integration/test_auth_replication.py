"""Cross-cluster replication with authentication on: replicators sign at the
destination as its replication principal, which may only apply replicas, and
only to the buckets it names."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from tests.integration.cluster import ROOT, DevCluster, signed_channel, wait_until
from tests.integration.test_auth import call, sign
from tristore import errors, stamps
from tristore.client import Client, Credentials
from tristore.convert import version_to_pb
from tristore.model import ObjectVersion
from tristore.pb import objects_pb2, objects_pb2_grpc
from tristore.replication import Destination, Rule

pytestmark = pytest.mark.integration


def test_replication_signs_as_the_replication_principal_and_stays_in_its_buckets(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    east, west = pair
    assert east.config.remotes[0].access_key_id == west.config.auth.replication_access_key_id
    with east.client() as e, west.client() as w:
        e.create_bucket("auth-rep")
        e.put_bucket_versioning("auth-rep", "Enabled")
        w.create_bucket("auth-rep-dst")
        w.put_bucket_versioning("auth-rep-dst", "Enabled")
        e.put_bucket_replication("auth-rep", [Rule("r", (Destination("west", "auth-rep-dst"),))])
        info = e.put_object("auth-rep", "k", b"replicated")
        wait_until(lambda: _has(w, "auth-rep-dst", "k", info.version_id), 60, what="the replica")
        assert w.get_object("auth-rep-dst", "k") == b"replicated"

        # A replication principal limited to one bucket.
        w.create_user("east-repl", "replication", ["auth-rep-dst"])
        key = w.create_access_key("east-repl")
        repl = Credentials(key.access_key_id, key.secret_access_key)
        w.create_bucket("auth-other")
        w.put_bucket_versioning("auth-other", "Enabled")
    svc = objects_pb2.DESCRIPTOR.services_by_name["ObjectService"]
    apply = svc.methods_by_name["ApplyReplicas"]
    ep = west.config.nodes[0].grpc

    def forged(bucket: str) -> Any:
        msg = objects_pb2.ApplyReplicasRequest()
        item = msg.items.add()
        item.header.version.bucket = bucket
        item.header.version.key = "forged"
        item.header.origin_cluster = "east"
        return msg

    other = forged("auth-other")
    assert call(ep, svc, apply, other, sign(repl, svc, apply, other)) == "AccessDenied"
    # Nor may it read, list or write like a user, even in its own bucket.
    for name, msg in (
        ("GetObject", objects_pb2.GetObjectRequest(bucket="auth-rep-dst", key="k")),
        ("ListObjects", objects_pb2.ListObjectsRequest(bucket="auth-rep-dst")),
        ("DeleteObject", objects_pb2.DeleteObjectRequest(bucket="auth-rep-dst", key="k")),
        ("ListBuckets", objects_pb2.ListBucketsRequest()),
    ):
        m = svc.methods_by_name[name]
        assert call(ep, svc, m, msg, sign(repl, svc, m, msg)) == "AccessDenied", name
    with west.client() as w:
        assert w.list_objects("auth-other").contents == []
        assert w.get_object("auth-rep-dst", "k") == b"replicated"


def _has(c: Client, bucket: str, key: str, version_id: str) -> bool:
    try:
        return c.head_object(bucket, key).version_id == version_id
    except errors.NoSuchKey:
        return False


def test_a_replica_is_checked_as_strictly_as_a_put(pair: tuple[DevCluster, DevCluster]) -> None:
    """Whoever may apply replicas (here: root) cannot store through ApplyReplicas
    what a PUT would refuse: each broken item gets its S3 error, and none of
    them becomes visible; a well-formed replica next to them is applied."""
    _, west = pair
    with west.client() as w:
        w.create_bucket("rep-checked")
        w.put_bucket_versioning("rep-checked", "Enabled")
    now = int(time.time() * 1000)
    east_id = west.config.cluster.id + 1

    def version(key: str, **kw: Any) -> ObjectVersion:
        fields: dict[str, Any] = {
            "stamp": stamps.Stamp(now, 0, east_id, 101),
            "size": 2,
            "etag": hashlib.md5(b"ok").hexdigest(),
            "content_type": "text/plain",
        }
        fields.update(kw)
        return ObjectVersion("rep-checked", key, **fields)

    cases = {
        "metadata": (version("m", metadata={f"k{i}": "v" * 20 for i in range(200)}), "east"),
        "tags": (version("t", tags={f"t{i}": "v" for i in range(50)}), "east"),
        "content-type": (version("c", content_type="text/plain\r\nX-Evil: 1"), "east"),
        "acl": (version("a", acl="bogus-acl"), "east"),
        "storage-class": (version("s", storage_class="BOGUS"), "east"),
        "etag": (version("e", etag="not-an-md5"), "east"),
        "future": (version("f", stamp=stamps.Stamp(now + 3_600_000, 0, east_id, 101)), "east"),
        "origin": (version("o"), "east\r\nwest"),
        "key": (version(""), "east"),
    }
    msg = objects_pb2.ApplyReplicasRequest()
    for v, origin in [*cases.values(), (version("fine"), "east")]:
        item = msg.items.add(data=b"ok")
        item.header.version.CopyFrom(version_to_pb(v, with_inline=False))
        item.header.origin_cluster = origin
    with signed_channel(west.config.nodes[0].grpc, ROOT) as ch:
        resp = objects_pb2_grpc.ObjectServiceStub(ch).ApplyReplicas(msg, timeout=30)
    *broken, fine = resp.results
    got = {name: r.error.code for name, r in zip(cases, broken, strict=True)}
    assert got == {
        "metadata": "MetadataTooLarge",
        "tags": "InvalidTag",
        "content-type": "InvalidArgument",
        "acl": "InvalidArgument",
        "storage-class": "InvalidStorageClass",
        "etag": "InvalidArgument",
        "future": "InvalidArgument",
        "origin": "InvalidArgument",
        "key": "InvalidArgument",
    }
    assert fine.applied and not fine.HasField("error")
    with west.client() as w:
        assert [o.key for o in w.list_objects("rep-checked").contents] == ["fine"]
        assert w.get_object("rep-checked", "fine") == b"ok"
