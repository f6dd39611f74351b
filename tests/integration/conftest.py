from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, cluster_fixture, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One three-AZ cluster shared by a test module (tests must not break it)."""
    yield from cluster_fixture(tmp_path_factory.mktemp("cluster"))


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    """A cluster for one test alone: it may kill and restart what it likes."""
    yield from cluster_fixture(tmp_path)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, DevCluster]]:
    """Two clusters (`dev up --clusters 2`): east and west, each naming the other
    in [[remotes]]; replicators give up on a refused version after two tries."""
    east = start_cluster(
        tmp_path_factory.mktemp("pair"),
        "--clusters",
        "2",
        extra_env={
            "TRISTORE_REPLICATOR_MAX_ATTEMPTS": "2",
            "TRISTORE_REPLICATOR_RETRY_BACKOFF_S": "0.1",
        },
    )
    try:
        yield east, east.clusters["west"]
    finally:
        east.down()
