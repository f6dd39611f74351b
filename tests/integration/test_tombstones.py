"""Tombstones are collected once old and once every node of the key's AZs
agrees, never while one still holds what they remove (node/tombstones.py):
markers of removed versions, and the current records unversioned DELETEs
leave (the witness forgets the key first; the key then reads as absent, also
after a restart, and can be written again)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tristore import errors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BUCKET = "tombs"
#: A bucket never versioned: a DELETE leaves a removal as the key's current record.
PLAIN = "plain-tombs"
FAST = {"TRISTORE_NODE_TOMBSTONE_RETENTION_S": "1", "TRISTORE_NODE_TOMBSTONE_CHECK_S": "0.3"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One cluster for both tests: each uses a key of its own and leaves no
    marker behind (the second restarts the node it kills and waits for its
    hints to be handed back)."""
    c = start_cluster(tmp_path_factory.mktemp("tombs"), extra_env=FAST)
    try:
        with c.client() as client:
            client.create_bucket(BUCKET)
            client.put_bucket_versioning(BUCKET, "Enabled")
            client.create_bucket(PLAIN)
        yield c
    finally:
        c.down()


def _total(cluster: DevCluster, metric: str, names: list[str]) -> float:
    return sum(cluster.metric(n, metric) for n in names)


def test_markers_are_collected_and_removed_versions_stay_gone(cluster: DevCluster) -> None:
    nodes = [n.name for n in cluster.config.nodes]
    collected = _total(cluster, "tristore_node_tombstones_collected_total", nodes)
    with cluster.client() as c:
        ids = [c.put_object(BUCKET, "gone", f"v{i}".encode()).version_id for i in range(3)]
        for vid in ids[:2]:
            c.delete_object(BUCKET, "gone", version_id=vid)
    # One marker per removed version on a node of each AZ, then none.
    wait_until(
        lambda: _total(cluster, "tristore_node_tombstones_collected_total", nodes) >= collected + 6,
        60,
        what="the markers to be collected",
    )
    assert _total(cluster, "tristore_node_tombstones", nodes) == 0
    with cluster.client() as c:
        listed = [
            v.version_id
            for p in c.iter_object_versions(BUCKET, "gone")
            for v in p.versions
            if v.key == "gone"
        ]
        assert listed == [ids[2]]
        for vid in ids[:2]:
            with pytest.raises(errors.NoSuchVersion):
                c.get_object(BUCKET, "gone", version_id=vid)


def test_a_node_that_still_holds_the_version_keeps_the_markers(cluster: DevCluster) -> None:
    key = "held"
    homes = cluster.homes(BUCKET, key)
    down = homes[1]  # the home in the second AZ misses the removal
    fallback = next(
        n.name
        for n in cluster.config.nodes
        if n.az == cluster.config.node_named(down).az and n.name != down
    )
    with cluster.client() as c:
        first = c.put_object(BUCKET, key, b"first").version_id
        c.put_object(BUCKET, key, b"second")
    cluster.kill(down, "KILL")
    with cluster.client() as c:
        c.delete_object(BUCKET, key, version_id=first)
    # The other homes look at their marker again and again, and keep it: the
    # node that is down may still hold the version.
    others = [homes[0], homes[2]]
    seen = _total(cluster, "tristore_node_tombstones_checked_total", others)
    wait_until(
        lambda: _total(cluster, "tristore_node_tombstones_checked_total", others) >= seen + 6,
        60,
        what="the markers to be looked at",
    )
    assert all(cluster.metric(n, "tristore_node_tombstones") == 1 for n in others)
    assert cluster.metric(fallback, "tristore_node_tombstones") == 1  # with the hint

    # Back: the hint removes the version there too; then every marker goes.
    cluster.start(down, extra_env=FAST)
    cluster.wait_hints_drained(120)
    wait_until(
        lambda: _total(cluster, "tristore_node_tombstones", [*homes, fallback]) == 0,
        60,
        what="the markers to be collected",
    )
    assert all(v.version_id != first for v in cluster.node_versions_all(down) if v.key == key)
    with cluster.client() as c:
        listed = [
            v.version_id
            for p in c.iter_object_versions(BUCKET, key)
            for v in p.versions
            if v.key == key
        ]
        assert first not in listed and len(listed) == 1


def _removals_on_disk(cluster: DevCluster, bucket: str, key: str) -> list[str]:
    """The nodes whose RocksDB holds a removal as the key's current record."""
    out = []
    for n in cluster.config.nodes:
        v = cluster.node_versions(n.name).get((bucket, key))
        if v is not None and v.deleted:
            out.append(n.name)
    return out


def test_removals_of_unversioned_deletes_are_collected(cluster: DevCluster) -> None:
    nodes = [n.name for n in cluster.config.nodes]
    names = [f"plain-{i}" for i in range(3)]
    collected = _total(cluster, "tristore_node_tombstones_collected_total", nodes)
    with cluster.client() as c:
        for name in names:
            c.put_object(PLAIN, name, b"old " + name.encode())
        for name in names:
            c.delete_object(PLAIN, name)
        # Read (and so cached as a removal by the coordinator) before collection.
        for name in names:
            with pytest.raises(errors.NoSuchKey):
                c.get_object(PLAIN, name)
    # One a key on a node of each AZ: held, or (a loaded machine is slow to get
    # here, and the retention is 1 s) collected already.
    made = _total(cluster, "tristore_node_tombstones", nodes) + (
        _total(cluster, "tristore_node_tombstones_collected_total", nodes) - collected
    )
    assert made >= 9
    wait_until(
        lambda: _total(cluster, "tristore_node_tombstones", nodes) == 0,
        60,
        what="the removals to be collected",
    )
    assert all(
        (PLAIN, name) not in cluster.node_versions(n.name)
        for n in cluster.config.nodes
        for name in names
    )
    # The witness forgot the keys first: reads answer NoSuchKey (not
    # ServiceUnavailable for a stamp no replica holds), HEAD and LIST too.
    with cluster.client() as c:
        for name in names:
            with pytest.raises(errors.NoSuchKey):
                c.get_object(PLAIN, name)
            with pytest.raises(errors.NoSuchKey):
                c.head_object(PLAIN, name)
        assert [o.key for o in c.list_objects(PLAIN).contents] == []
    # After a restart (the gauge counts what is on disk) nothing comes back.
    first = cluster.homes(PLAIN, names[0])[0]
    cluster.kill(first, "KILL")
    cluster.start(first, extra_env=FAST)
    wait_until(lambda: first in cluster.up_names(), 60, what=f"{first} to be up")
    assert cluster.metric(first, "tristore_node_tombstones") == 0
    with cluster.client() as c:
        for name in names:
            with pytest.raises(errors.NoSuchKey):
                c.get_object(PLAIN, name)
        # Written again: read back, and listed.
        c.put_object(PLAIN, names[0], b"new")
        assert c.get_object(PLAIN, names[0]) == b"new"
        assert [o.key for o in c.list_objects(PLAIN).contents] == [names[0]]
        c.delete_object(PLAIN, names[0])
    wait_until(
        lambda: _total(cluster, "tristore_node_tombstones", nodes) == 0,
        60,
        what="the new removal to be collected",
    )
    with cluster.client() as c, pytest.raises(errors.NoSuchKey):
        c.get_object(PLAIN, names[0])


def test_a_node_that_missed_an_unversioned_delete_keeps_the_removal(cluster: DevCluster) -> None:
    key = "plain-missed"
    homes = cluster.homes(PLAIN, key)
    down = homes[1]  # the home in the second AZ misses the DELETE: it keeps the old version
    fallback = next(
        n.name
        for n in cluster.config.nodes
        if n.az == cluster.config.node_named(down).az and n.name != down
    )
    with cluster.client() as c:
        c.put_object(PLAIN, key, b"old")
    cluster.kill(down, "KILL")
    with cluster.client() as c:
        c.delete_object(PLAIN, key)
    others = [homes[0], homes[2], fallback]
    seen = _total(cluster, "tristore_node_tombstones_checked_total", others)
    wait_until(
        lambda: _total(cluster, "tristore_node_tombstones_checked_total", others) >= seen + 9,
        60,
        what="the removals to be looked at",
    )
    # Kept on every node that holds it: the node that is down holds the old version.
    assert sorted(_removals_on_disk(cluster, PLAIN, key)) == sorted(others)
    old = cluster.node_versions(down)[(PLAIN, key)]
    assert not old.deleted and old.inline == b"old"
    assert all(cluster.metric(n, "tristore_node_tombstones") == 1 for n in others)

    # Back: the hint gives it the removal; then the removal goes everywhere.
    cluster.start(down, extra_env=FAST)
    cluster.wait_hints_drained(120)
    wait_until(
        lambda: not _removals_on_disk(cluster, PLAIN, key),
        60,
        what="the removal to be collected everywhere",
    )
    with cluster.client() as c:
        with pytest.raises(errors.NoSuchKey):
            c.get_object(PLAIN, key)
        assert key not in [o.key for o in c.list_objects(PLAIN).contents]


def test_a_deleted_bucket_record_is_collected_and_the_name_made_again(cluster: DevCluster) -> None:
    """Bucket records are keys of an internal bucket: an `rb` leaves a removal,
    collected the same way; the name is then free, and made again."""
    nodes = [n.name for n in cluster.config.nodes]
    name = "tombs-again"
    with cluster.client() as c:
        c.create_bucket(name)
        c.delete_bucket(name)
    # Younger than the retention (1 s) and the clock-skew bound (1 s): held.
    assert _total(cluster, "tristore_node_tombstones", nodes) >= 3
    wait_until(
        lambda: _total(cluster, "tristore_node_tombstones", nodes) == 0,
        60,
        what="the bucket record's removal to be collected",
    )
    with cluster.client() as c:
        assert name not in [b.name for b in c.list_buckets()]
        with pytest.raises(errors.NoSuchBucket):
            c.put_object(name, "k", b"x")
        c.create_bucket(name)
        c.put_object(name, "k", b"back")
        assert c.get_object(name, "k") == b"back"
