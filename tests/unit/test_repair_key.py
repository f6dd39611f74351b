"""One key through the repairer (node/repair.py): what is read, what is
written where, and what is counted, against three in-memory AZs that answer
the way the coordinator's readers do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from node.repair import Repairer
from tristore.config import NodeSection, NodeSpec
from tristore.model import Change, ObjectVersion
from tristore.placement import AzReplicas, Placement
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit

AZS = ("az-a", "az-b", "az-c")


def _stamp(ms: int) -> Stamp:
    return Stamp(1_700_000_000_000 + ms, 0, 7, 1)


def _version(ms: int, **kw: Any) -> ObjectVersion:
    fields: dict[str, Any] = {"size": 2, "etag": "e" * 32, "inline": b"hi"}
    fields.update(kw)
    return ObjectVersion("b", "k", _stamp(ms), **fields)


class Node:
    """One node: the records it holds of the key, and what it was sent."""

    def __init__(self, az: str) -> None:
        self.spec = NodeSpec(az[-1] + "1", 1, az, "127.0.0.1:1", "127.0.0.1:2")
        self.head: ObjectVersion | None = None
        self.versions: dict[Stamp, ObjectVersion] = {}
        self.removed: set[Stamp] = set()
        self.down = False
        self.commits: list[Change] = []
        self.staged: list[bytes] = []

    def hold(self, head: ObjectVersion | None, *versions: ObjectVersion) -> None:
        self.head = head
        self.versions = {v.vstamp: v for v in versions}

    async def commit(self, change: Change, hint_for: str = "") -> None:
        assert hint_for == ""
        self.commits.append(change)

    async def stage(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> None:
        async for _ in chunks:
            pass
        self.staged.append(data_id)


class Coordinator:
    """The protocol and quorum steps repair uses (coordinator.protocol and
    coordinator.quorum: both this object), over the nodes."""

    def __init__(self) -> None:
        self.nodes = {az: Node(az) for az in AZS}
        self.me = self.nodes["az-a"].spec
        self.placement = Placement(tuple(AzReplicas(az, (n.spec,)) for az, n in self.nodes.items()))
        self.placer = SimpleNamespace(azs=AZS, place=lambda bucket, key: self.placement)
        by_name = {n.spec.name: n for n in self.nodes.values()}
        self.peers = SimpleNamespace(
            replica=lambda spec: by_name[spec.name], mark_down=lambda name, why: None
        )
        self.protocol = self.quorum = self

    def _up(self) -> list[tuple[AzReplicas, Node]]:
        return [
            (azr, self.nodes[azr.az]) for azr in self.placement.azs if not self.nodes[azr.az].down
        ]

    async def versions_in_azs(
        self, bucket: str, key: str, vstamp: Stamp | None, limit: int, what: str, every: bool
    ) -> list[tuple[AzReplicas, Node, list[ObjectVersion], bool]]:
        out = []
        for azr, n in self._up():
            if vstamp is None:
                vs = sorted(n.versions.values(), key=lambda v: v.vstamp, reverse=True)[:limit]
                out.append((azr, n, vs, False))
            else:
                held = n.versions.get(vstamp)
                out.append((azr, n, [held] if held else [], held is None and vstamp in n.removed))
        return out

    async def read_replicas(self, bucket: str, key: str) -> Any:
        return SimpleNamespace(answers=[(azr, n, n.head) for azr, n in self._up()])

    def candidates(self, azr: AzReplicas) -> list[NodeSpec]:
        return [] if self.nodes[azr.az].down else list(azr.nodes)

    async def copy_chunks(
        self, v: ObjectVersion, holders: list[Any]
    ) -> AsyncIterator[tuple[int, bytes]]:
        assert holders, f"no holder of {v.version_id}"
        yield 0, b"chunk"


def _run(coord: Coordinator, dry_run: bool = False) -> Any:
    return asyncio.run(Repairer(coord, NodeSection())._compare_and_write("b", "k", dry_run))  # type: ignore[arg-type]


def test_a_lost_az_gets_everything_in_one_merging_commit() -> None:
    coord = Coordinator()
    v1, v2 = _version(1), _version(2)
    for az in ("az-a", "az-c"):
        coord.nodes[az].hold(v2, v2, v1)
    outcome = _run(coord)
    assert (outcome.missing, outcome.written, outcome.repaired, outcome.failed) == (
        {"az-b": 2},
        {"az-b": 2},
        True,
        False,
    )
    [change] = coord.nodes["az-b"].commits
    assert change.merge and change.head == v2
    assert sorted(change.versions, key=lambda v: v.vstamp) == [v1, v2]
    assert not coord.nodes["az-a"].commits and not coord.nodes["az-c"].commits


def test_a_dry_run_counts_and_writes_nothing() -> None:
    coord = Coordinator()
    v1 = _version(1)
    coord.nodes["az-a"].hold(v1, v1)
    outcome = _run(coord, dry_run=True)
    assert (outcome.missing, outcome.written, outcome.repaired) == (
        {"az-b": 1, "az-c": 1},
        {},
        True,
    )
    assert not any(n.commits for n in coord.nodes.values())


def test_a_version_removed_in_one_az_is_not_spread() -> None:
    coord = Coordinator()
    v1, v2 = _version(1), _version(2)
    coord.nodes["az-a"].hold(v2, v2, v1)  # missed the removal of v1
    coord.nodes["az-c"].hold(v2, v2)
    coord.nodes["az-c"].removed.add(v1.vstamp)
    outcome = _run(coord)
    assert outcome.missing == {"az-b": 1}
    [change] = coord.nodes["az-b"].commits
    assert change.versions == (v2,)
    assert not coord.nodes["az-c"].commits


def test_an_az_down_fails_the_key_and_the_others_are_still_repaired() -> None:
    coord = Coordinator()
    v1 = _version(1)
    coord.nodes["az-a"].hold(v1, v1)
    coord.nodes["az-c"].down = True
    outcome = _run(coord)
    assert (outcome.failed, outcome.missing, outcome.written) == (True, {"az-b": 1}, {"az-b": 1})


def test_chunked_bodies_are_staged_unless_the_node_holds_them() -> None:
    coord = Coordinator()
    big = _version(1, size=3 << 20, inline=None, data_id=b"d" * 16, chunk_size=1 << 20)
    tagged = replace(big, stamp=_stamp(5), version_stamp=big.vstamp, tags={"t": "1"})
    coord.nodes["az-a"].hold(tagged, tagged)
    coord.nodes["az-b"].hold(big, big)  # the same body, an older record
    outcome = _run(coord)
    assert outcome.missing == {"az-b": 1, "az-c": 1}
    assert coord.nodes["az-b"].staged == []  # it has the chunks already
    assert coord.nodes["az-c"].staged == [b"d" * 16]
    for az in ("az-b", "az-c"):
        [change] = coord.nodes[az].commits
        assert change.head == tagged and change.versions == (tagged,)
