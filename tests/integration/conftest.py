from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import (
    DevCluster,
    SharedCluster,
    cluster_fixture,
    settled_health,
    start_shared_cluster,
    two_clusters,
)


class _Shared:
    """The worker's shared cluster, started when a module first asks for it
    and started afresh if a module left it changed."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.cluster: SharedCluster | None = None

    def get(self) -> SharedCluster:
        if self.cluster is None:
            self.cluster = start_shared_cluster(self.tmp_path_factory.mktemp("shared"))
        return self.cluster

    def discard(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


@pytest.fixture(scope="session")
def _shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Shared]:
    # A session of a pytest-xdist worker is that worker's: each has its own.
    shared = _Shared(tmp_path_factory)
    try:
        yield shared
    finally:
        shared.discard()


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevCluster]:
    """A healthy three-AZ cluster of the default layout for a test module.

    Modules share one per test worker (a cluster start costs ~9 s of CPU): their
    tests use bucket names of their own, change nothing cluster-wide, and count
    cluster-wide state only as deltas. The shared cluster refuses launcher and
    admin commands that change it, and a module that leaves it changed anyway
    (a process restarted, the map or a node's state changed) fails and gets it
    replaced. A module that needs a cluster of its own (kills, map changes,
    users, cluster-wide totals) says ``pytestmark = pytest.mark.private_cluster``.
    """
    if request.node.get_closest_marker("private_cluster") is not None:
        yield from cluster_fixture(tmp_path_factory.mktemp("cluster"))
        return
    shared: _Shared = request.getfixturevalue("_shared")
    c = shared.get()
    before = settled_health(c)
    yield c
    after = settled_health(c, like=before)
    if after != before:
        shared.discard()
        changed = sorted(k for k in before if before[k] != after.get(k))
        raise AssertionError(
            f"{request.node.name} left the shared cluster changed ({', '.join(changed)}): "
            "mark it `pytestmark = pytest.mark.private_cluster`"
        )


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    """A cluster for one test alone: it may kill and restart what it likes."""
    yield from cluster_fixture(tmp_path)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, DevCluster]]:
    """Two clusters (`dev up --clusters 2`): east and west, each naming the other
    in [[remotes]]; replicators give up on a refused version after two tries."""
    yield from two_clusters(
        tmp_path_factory.mktemp("pair"),
        {
            "TRISTORE_REPLICATOR_MAX_ATTEMPTS": "2",
            "TRISTORE_REPLICATOR_RETRY_BACKOFF_S": "0.1",
        },
    )
