"""How repair finds every key: the scans of every node (current records and
versions) merged round by round, with in-memory replicas and tiny pages."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from node import repair
from node.peers import ReplicaUnavailable
from tristore.config import NodeSection, NodeSpec
from tristore.model import ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


def _stamp(n: int) -> Stamp:
    return Stamp(1_700_000_000_000 + n, 0, 7, 1)


class FakeReplica:
    """A node's records, scanned as node/replica_store.py scans them."""

    def __init__(
        self, name: str, current: list[str], versions: dict[str, int], down: bool = False
    ) -> None:
        self.spec = NodeSpec(name, 1, "az-" + name[0], "127.0.0.1:1", "127.0.0.1:2")
        self.current = sorted(current)
        self.versions = sorted(
            ((k, n) for k, count in versions.items() for n in range(count, 0, -1)),
            key=lambda kn: (kn[0], -kn[1]),
        )
        self.down = down
        self.calls = 0

    async def scan(
        self, bucket: str, prefix: str, start_after: str, skip_prefix: bool, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        self.calls += 1
        if self.down:
            raise ReplicaUnavailable(f"node {self.spec.name}: UNAVAILABLE")
        after = [k for k in self.current if k > start_after]
        return [ObjectVersion(bucket, k, _stamp(0)) for k in after[:limit]], len(after) <= limit

    async def scan_versions(
        self, bucket: str, prefix: str, key_marker: str, after: Stamp | None, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        assert after is None
        rest = [(k, n) for k, n in self.versions if k > key_marker]
        page = [ObjectVersion(bucket, k, _stamp(n)) for k, n in rest[:limit]]
        return page, len(rest) <= limit


def _repairer(*replicas: FakeReplica) -> tuple[repair.Repairer, list[str]]:
    by_az: dict[str, list[NodeSpec]] = {}
    for r in replicas:
        by_az.setdefault(r.spec.az, []).append(r.spec)
    by_name = {r.spec.name: r for r in replicas}
    marked: list[str] = []
    coord: Any = SimpleNamespace(
        placer=SimpleNamespace(azs=tuple(sorted(by_az)), nodes_in=lambda az: by_az[az]),
        peers=SimpleNamespace(
            replica=lambda spec: by_name[spec.name],
            mark_down=lambda name, why: marked.append(name),
        ),
    )
    # Tiny pages: three records a node per scan round.
    return repair.Repairer(coord, NodeSection(repair_scan_batch=3)), marked


async def _all_keys(r: repair.Repairer) -> list[list[str]]:
    return [batch async for batch in r._keys("photos")]


def test_every_key_once_in_order_across_nodes_and_pages() -> None:
    a = FakeReplica("a1", ["k01", "k02", "k05", "k09"], {"k01": 1, "k02": 2, "k05": 1})
    # b1 holds one key with more versions than a page, and keys with versions only.
    b = FakeReplica("b1", ["k02", "k03"], {"k03": 7, "k04": 2, "k10": 1})
    c = FakeReplica("c1", [], {"k06": 1, "k07": 1, "k08": 1, "k11": 1})
    r, marked = _repairer(a, b, c)
    batches = asyncio.run(_all_keys(r))
    flat = [k for batch in batches for k in batch]
    assert flat == [f"k{i:02d}" for i in range(1, 12)]
    assert all(batches)
    assert len(batches) > 1  # it did page
    assert marked == []


def test_a_node_that_does_not_answer_is_left_out() -> None:
    a = FakeReplica("a1", ["k1", "k2"], {"k1": 1, "k2": 1})
    b = FakeReplica("b1", ["k1", "k3"], {}, down=True)
    c = FakeReplica("c1", ["k2", "k4", "k5", "k6", "k7"], {})
    r, marked = _repairer(a, b, c)
    flat = [k for batch in asyncio.run(_all_keys(r)) for k in batch]
    assert flat == ["k1", "k2", "k4", "k5", "k6", "k7"]
    assert marked == ["b1"]
    assert b.calls == 1  # not asked again


def test_an_empty_bucket_has_no_keys() -> None:
    r, _ = _repairer(FakeReplica("a1", [], {}), FakeReplica("b1", [], {}))
    assert asyncio.run(_all_keys(r)) == []
