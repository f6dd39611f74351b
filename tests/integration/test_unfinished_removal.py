"""A DELETE of a version that reached only some AZs is finished by its retry.

The 30-minute soak (issue 14) found versions its pruner had deleted, with the
deletes acknowledged, still held by the key's home in one AZ at the end: the
first try of each DELETE had removed the version in two AZs and failed in the
third (cut off by a partition), and the SDK's retry found the version "removed
for good" and answered success without going back to that AZ. That home kept
the version for ever: listings scanning its AZ showed it, ``replication
verify`` called it missing at the destination, and, the key's first-AZ home
being the node whose change log a key's events come from, the removal's
``ObjectRemoved:Delete`` event never came.

Here the AZ is taken away by killing both of its nodes, the first try fails
with the SDK's retries off, and the retry is sent once the AZ is back. A try
that is never retried leaves the same state; the tombstone collector finishes
that removal once its markers are old (node/tombstones.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node import keys
from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tests.integration.test_events import collect
from tristore import errors
from tristore.client import Client, RetryPolicy
from tristore.events import REMOVED_DELETE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BUCKET = "half-removed"
#: Markers old after a second, looked at three times a second.
FAST = {"TRISTORE_NODE_TOMBSTONE_RETENTION_S": "1", "TRISTORE_NODE_TOMBSTONE_CHECK_S": "0.3"}


def _cluster(tmp: Path, env: dict[str, str] | None = None) -> Iterator[DevCluster]:
    c = start_cluster(tmp, extra_env=env)
    try:
        with c.client() as client:
            client.create_bucket(BUCKET)
            client.put_bucket_versioning(BUCKET, "Enabled")
        yield c
    finally:
        c.down()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    """Markers kept a day: only a retry can finish a removal here."""
    yield from _cluster(tmp_path)


@pytest.fixture
def fast_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    yield from _cluster(tmp_path, FAST)


def _endpoint(cluster: DevCluster, names: list[str]) -> str:
    return ",".join(cluster.config.node_named(n).grpc for n in names)


def _holders(cluster: DevCluster, key: str, version_id: str) -> list[str]:
    """The nodes whose own RocksDB holds a record of the version."""
    return [
        n.name
        for n in cluster.config.nodes
        if any(
            v.bucket == BUCKET and v.key == key and v.version_id == version_id
            for v in cluster.node_versions_all(n.name)
        )
    ]


def _listed(c: Client, key: str) -> set[str]:
    return {
        v.version_id
        for page in c.iter_object_versions(BUCKET, prefix=key)
        for v in page.versions
        if v.key == key
    }


def _half_removed(cluster: DevCluster, key: str) -> tuple[str, str, list[str], list[str]]:
    """Two versions of ``key``, then a DELETE of the older one whose only try
    failed with the key's first AZ down (both its nodes killed): removed in
    the other two AZs only (their data read from disk meanwhile). The AZ is
    started again. Returns (the removed
    version, the current one, the nodes of that AZ, the others)."""
    first = cluster.homes(BUCKET, key)[0]
    az = cluster.config.node_named(first).az
    in_az = [n.name for n in cluster.config.nodes if n.az == az]
    elsewhere = [n.name for n in cluster.config.nodes if n.az != az]
    with cluster.client(_endpoint(cluster, elsewhere)) as c:
        old = c.put_object(BUCKET, key, b"old").version_id
        new = c.put_object(BUCKET, key, b"new").version_id
    assert set(_holders(cluster, key, old)) >= set(cluster.homes(BUCKET, key))
    for name in in_az:
        cluster.kill(name)
    try:
        once = RetryPolicy(max_attempts=1)
        with (
            cluster.client(_endpoint(cluster, elsewhere), retry=once) as c,
            pytest.raises((errors.QuorumUnavailable, errors.ServiceUnavailable)),
        ):
            c.delete_object(BUCKET, key, version_id=old)
        # The try removed it where it could: every node left holding it is
        # in the AZ that is down, the key's first-AZ home among them.
        left = _holders(cluster, key, old)
        assert set(left) <= set(in_az)
        assert first in left
    finally:
        for name in in_az:
            cluster.start(name)
    return old, new, in_az, elsewhere


def _removed_everywhere(
    cluster: DevCluster, key: str, old: str, new: str, in_az: list[str]
) -> None:
    """No node holds ``old`` (the first-AZ home included: at once, or by a
    hint handed back to it), a listing that scans the AZ that was down does
    not show it, and the first-AZ home's change log has its removal: the
    event comes."""
    wait_until(lambda: not _holders(cluster, key, old), 60, 0.5, f"no node to hold {key}@{old}")
    with cluster.client(_endpoint(cluster, in_az)) as c:
        assert _listed(c, key) == {new}
        events, _ = collect(
            c,
            BUCKET,
            lambda es: any(e.version_id == old and e.name == REMOVED_DELETE for e in es),
            from_start=True,
            timeout=30,
        )
    assert (key, old, REMOVED_DELETE) in {(e.key, e.version_id, e.name) for e in events}


def test_a_retried_version_delete_finishes_in_the_az_its_first_try_missed(
    cluster: DevCluster,
) -> None:
    key = "k"
    old, new, in_az, elsewhere = _half_removed(cluster, key)
    with cluster.client(_endpoint(cluster, elsewhere)) as c:
        # The retry (the SDK's retries on: the AZ may not look up yet).
        c.delete_object(BUCKET, key, version_id=old)
        with pytest.raises(errors.NoSuchVersion):
            c.get_object(BUCKET, key, version_id=old)
    _removed_everywhere(cluster, key, old, new, in_az)


def test_a_removal_never_retried_is_finished_by_the_tombstone_collector(
    fast_cluster: DevCluster,
) -> None:
    cluster = fast_cluster
    key = "k"
    finished = sum(
        cluster.metric(n.name, "tristore_node_removals_finished_total")
        for n in cluster.config.nodes
    )
    old, new, in_az, _ = _half_removed(cluster, key)
    _removed_everywhere(cluster, key, old, new, in_az)
    assert (
        sum(
            cluster.metric(n.name, "tristore_node_removals_finished_total")
            for n in cluster.config.nodes
        )
        > finished
    )


def _key_sharing_a_home_with_the_bucket(cluster: DevCluster) -> tuple[str, str]:
    """A key one of whose homes is also a home of the bucket's record: with
    only that node up, and the witnesses, the bucket and the key's current
    version can still be read (the witness vouches for both)."""
    bucket_homes = set(cluster.homes(keys.BUCKETS, BUCKET))
    for i in range(200):
        key = f"k{i}"
        shared = [h for h in cluster.homes(BUCKET, key) if h in bucket_homes]
        if shared:
            return key, shared[0]
    raise AssertionError("no key shares a home with the bucket's record")


def test_a_home_back_from_the_dead_does_not_answer_for_its_az_alone(
    cluster: DevCluster,
) -> None:
    """The protocol model's versions (AZs of two nodes) found it: a DELETE of
    a version acknowledged while the key's home H was down left the removal
    on H's fallback F, with a hint; H came back before the hand-off (F died).
    A GET of that version that heard only H's AZ, by H alone, returned it.
    A read by version id now asks every node of each AZ and answers only
    with an AZ heard whole: here none is, so it fails instead of answering
    the removed version; with the cluster back, the version is gone."""
    key, home = _key_sharing_a_home_with_the_bucket(cluster)
    az = cluster.config.node_named(home).az
    fallback = next(n.name for n in cluster.config.nodes if n.az == az and n.name != home)
    others = [n.name for n in cluster.config.nodes if n.az != az]
    with cluster.client() as c:
        old = c.put_object(BUCKET, key, b"old").version_id
        c.put_object(BUCKET, key, b"new")
    cluster.kill(home)
    with cluster.client(_endpoint(cluster, [fallback, *others])) as c:
        c.delete_object(BUCKET, key, version_id=old)  # acknowledged: F holds it for H
    cluster.kill(fallback)
    cluster.start(home)
    for name in others:
        cluster.kill(name)
    try:
        # H came back holding the removed version (read from its disk, which
        # it may be opening still).
        wait_until(lambda: home in _holders(cluster, key, old), 15, 0.3, f"{home} to hold {old}")
        once = RetryPolicy(max_attempts=1)
        with cluster.client(_endpoint(cluster, [home]), retry=once) as c:
            # H alone serves what the witness vouches for...
            wait_until(lambda: _reads_new(c, key), 30, 0.3, f"{home} alone to serve {key}")
            # ...but cannot tell a removed version from a kept one.
            with pytest.raises(errors.QuorumUnavailable, match="every node of one of"):
                c.get_object(BUCKET, key, version_id=old)
    finally:
        for name in [fallback, *others]:
            cluster.start(name)
    with cluster.client() as c:
        wait_until(lambda: not _holders(cluster, key, old), 60, 0.5, f"no node to hold {old}")
        with pytest.raises(errors.NoSuchVersion):
            c.get_object(BUCKET, key, version_id=old)


def _reads_new(c: Client, key: str) -> bool:
    try:
        return c.get_object(BUCKET, key) == b"new"
    except (errors.QuorumUnavailable, errors.ServiceUnavailable):
        return False
