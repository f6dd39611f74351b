"""Clusters shaped differently from the default three AZs of two nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, start_cluster
from tristore import errors

pytestmark = pytest.mark.integration


@pytest.fixture
def four_azs(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp_path, "--azs", "4", "--nodes-per-az", "1")
    try:
        yield cluster
    finally:
        cluster.down()


def test_four_azs_every_listing_sees_every_key(four_azs: DevCluster) -> None:
    keys = {f"k{i:03d}" for i in range(60)}
    with four_azs.client() as c:
        c.create_bucket("four")
        for k in keys:
            c.put_object("four", k, k.encode())
    # Each key is on three of the four AZs; whichever node coordinates the
    # listing, it must merge enough AZs to see them all.
    for spec in four_azs.config.nodes:
        with four_azs.client(spec.grpc) as c:
            assert {e.key for e in c.list_objects("four").contents} == keys, spec.name
            with pytest.raises(errors.BucketNotEmpty):
                c.delete_bucket("four")
