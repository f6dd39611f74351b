from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, cluster_fixture


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One three-AZ cluster shared by a test module (tests must not break it)."""
    yield from cluster_fixture(tmp_path_factory.mktemp("cluster"))


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    """A cluster for one test alone: it may kill and restart what it likes."""
    yield from cluster_fixture(tmp_path)
