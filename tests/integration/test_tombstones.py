"""Markers of removed versions are collected once old and once no node of the
key's AZs holds the version, never while one still does (node/tombstones.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tristore import errors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BUCKET = "tombs"
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
