"""A record-only change (tags, a replication status) of a version whose home
is down lands on the AZ's fallback, which never held the version's body: the
fallback must get the body too, and the hand-off back to the home must go
through (it was stuck forever on 'chunk 0 of body ... is missing locally')."""

from __future__ import annotations

import os
import time

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


def _drop_body(cluster: DevCluster, node: str, data_id: bytes) -> None:
    """Delete a body's chunks from a stopped node's RocksDB (a lost body)."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            db = rocksdict.Rdict(
                str(cluster.config.data_dir_for(node)), rocksdict.Options(raw_mode=True)
            )
            break
        except Exception as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        start, end = keys.chunk_range(data_id)
        doomed: list[bytes] = []
        for k, _ in db.items(from_key=start):
            if k >= end:
                break
            doomed.append(k)
        assert doomed, f"{node} holds no chunk of {data_id.hex()}"
        for k in doomed:
            del db[k]
    finally:
        db.close()


def test_handoff_copes_with_a_body_the_fallback_lacks(own_cluster: DevCluster) -> None:
    """A stand-in that lacks a hinted version's body ships it from the key's
    other nodes; a body no node holds any more keeps only its own key back
    (logged once, counted in tristore_node_hints_stuck), never the others."""
    cluster = own_cluster
    elsewhere, lost, small = _keys_homed_on(cluster, VICTIM, 3)
    bodies = {k: os.urandom(BIG) for k in (elsewhere, lost)}
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        cluster.kill(VICTIM, "KILL")
        _first_up(c, 30)
        for k, body in bodies.items():
            c.put_object(BUCKET, k, body)
        c.put_object(BUCKET, small, b"small")
    # Every node but b2 stops; the bodies go from the fallback (and all of the
    # lost one from every node), then they start again.
    others = sorted(n.name for n in cluster.config.nodes if n.name != VICTIM)
    for name in others:
        cluster.kill(name, "KILL")
    ids = {(v.key): v.data_id for v in cluster.node_versions_all(FALLBACK) if v.bucket == BUCKET}
    _drop_body(cluster, FALLBACK, ids[elsewhere])
    for name in others:
        if any(
            v.bucket == BUCKET and v.data_id == ids[lost] for v in cluster.node_versions_all(name)
        ):
            _drop_body(cluster, name, ids[lost])
    for name in [*others, VICTIM]:
        cluster.start(name)
    cluster.wait_every_node_seen_up(30)
    wait_until(lambda: cluster.hints_pending() == 1, 30, what="every hint but the lost one to go")
    wait_until(
        lambda: cluster.metric(FALLBACK, "tristore_node_hints_stuck") == 1,
        10,
        what="the lost body's hint counted as stuck",
    )
    with cluster.client() as c:
        assert c.get_object(BUCKET, elsewhere) == bodies[elsewhere]
        assert c.get_object(BUCKET, small) == b"small"
    time.sleep(3 * cluster.config.node.hint_interval_s)
    log = (cluster.dir / "logs" / f"{FALLBACK}.log").read_text()
    assert log.count(f"hintbodies/{lost} cannot be handed to {VICTIM}") == 1, log[-3000:]
    cluster.down()
    home = {v.key for v in cluster.node_versions_all(VICTIM) if v.bucket == BUCKET}
    assert {elsewhere, small} <= home
