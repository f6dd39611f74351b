"""A record-only change (tags, a replication status) of a version whose home
is down lands on the AZ's fallback, which never held the version's body: the
fallback must get the body too, and the hand-off back to the home must go
through (it was stuck forever on 'chunk 0 of body ... is missing locally')."""

from __future__ import annotations

import os

import pytest
import rocksdict

from node import keys
from tests.integration.cluster import DevCluster, wait_until
from tristore import Client

pytestmark = pytest.mark.integration

BUCKET = "hintbodies"
VICTIM = "b2"
FALLBACK = "b1"
#: Above [node] inline_max (64 KiB): the body is stored in chunks.
BIG = 70_000


def _keys_homed_on(cluster: DevCluster, node: str, n: int) -> list[str]:
    out = [k for i in range(400) if node in cluster.homes(BUCKET, k := f"k{i}")]
    assert len(out) >= n
    return out[:n]


def _has_chunk(cluster: DevCluster, node: str, data_id: bytes) -> bool:
    """Whether the node's own RocksDB holds the first chunk of a body."""
    db = rocksdict.Rdict(
        str(cluster.config.data_dir_for(node)),
        rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(),
    )
    try:
        return db.get(keys.chunk_key(data_id, 0)) is not None
    finally:
        db.close()


def _first_up(c: Client, timeout: float) -> None:
    """Until a write whose home in az-b is down is taken (the fallback stands in)."""

    def ok() -> bool:
        try:
            c.put_object(BUCKET, "probe", b"x")
        except Exception:  # noqa: BLE001
            return False
        return True

    wait_until(ok, timeout, what="a write with b2 down")


def test_tag_change_while_home_down_hands_back(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    old_key, cur_key, new_key = _keys_homed_on(cluster, VICTIM, 3)
    bodies = {k: os.urandom(BIG) for k in (old_key, cur_key)}
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        c.put_bucket_versioning(BUCKET, "Enabled")
        old_v = c.put_object(BUCKET, old_key, bodies[old_key]).version_id
        c.put_object(BUCKET, old_key, b"newer")  # the big one is noncurrent now
        cur_v = c.put_object(BUCKET, cur_key, bodies[cur_key]).version_id

        cluster.kill(VICTIM, "KILL")
        _first_up(c, 30)
        # Record-only changes while the home is down: on the fallback.
        c.put_object_tagging(BUCKET, old_key, {"t": "old"}, version_id=old_v)
        c.put_object_tagging(BUCKET, cur_key, {"t": "cur"}, version_id=cur_v)
        c.put_object(BUCKET, new_key, b"written while b2 was down")

        # No node holds a record whose body it does not have.
        held = {
            (v.key, v.version_id): v.data_id
            for v in cluster.node_versions_all(FALLBACK)
            if v.bucket == BUCKET and v.data_id
        }
        for k, vid in ((old_key, old_v), (cur_key, cur_v)):
            assert _has_chunk(cluster, FALLBACK, held[(k, vid)]), (k, vid)

        cluster.start(VICTIM)
        cluster.wait_every_node_seen_up(30)
        cluster.wait_hints_drained(30)

        assert c.get_object_tagging(BUCKET, old_key, version_id=old_v).tags == {"t": "old"}
        assert c.get_object_tagging(BUCKET, cur_key, version_id=cur_v).tags == {"t": "cur"}
        assert c.get_object(BUCKET, old_key, version_id=old_v) == bodies[old_key]
        assert c.get_object(BUCKET, cur_key) == bodies[cur_key]
        assert c.get_object(BUCKET, new_key) == b"written while b2 was down"
    cluster.down()
    home = {(v.key, v.version_id): v for v in cluster.node_versions_all(VICTIM)}
    assert home[(old_key, old_v)].tags == {"t": "old"}
    assert home[(cur_key, cur_v)].tags == {"t": "cur"}
    assert any(k == new_key for k, _ in home)
