"""Collecting the markers of removed versions.

Removing a version (DELETE with a version id, a lifecycle expiration) leaves a
marker on each replica, so that a late copy of the version (a write-back from a
node that still held it, a hint handed back, a commit that was on its way) is
refused instead of bringing it back. Without collection they would pile up for
ever, one per removed version.

A node collects its own markers ``[node] tombstone_retention_s`` after the
removal (far longer than any request lives, so nothing that set out with the
version is still on its way) and only once every node of the key's AZs answers
that it holds no copy of the version: the copies a late write could come from
are gone, hints included (a hint sits on another node of its AZ). A node that
does not answer keeps the marker until a later round.
"""

from __future__ import annotations

import asyncio
import logging

from node.metrics import TOMBSTONES_CHECKED, TOMBSTONES_COLLECTED
from node.peers import Peers, ReplicaUnavailable
from node.replica_store import ReplicaStore
from tristore.config import NodeSection, NodeSpec
from tristore.errors import TristoreError
from tristore.placement import Placer
from tristore.stamps import Stamp

log = logging.getLogger(__name__)


class TombstoneCollector:
    def __init__(self, store: ReplicaStore, peers: Peers, placer: Placer, cfg: NodeSection) -> None:
        self.store = store
        self.peers = peers
        self.placer = placer
        self.cfg = cfg
        #: Where the next round goes on looking (b"": from the first marker).
        self._cursor = b""

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.tombstone_check_s)
            try:
                await self.collect_once()
            except Exception:
                log.exception("collecting the markers of removed versions failed")

    async def collect_once(self) -> int:
        """Look through one batch of markers; returns how many were collected."""
        before = self.store.wall_ms() - int(self.cfg.tombstone_retention_s * 1000)
        old, self._cursor = await self.store.old_tombstones(
            self._cursor, self.cfg.tombstone_batch, before
        )
        collected = 0
        TOMBSTONES_CHECKED.inc(len(old))
        for bucket, key, vstamp, seen in old:
            held = not await self._held_nowhere(bucket, key, Stamp.decode(vstamp))
            if not held and await self.store.drop_tombstone(bucket, key, vstamp, seen):
                collected += 1
        TOMBSTONES_COLLECTED.inc(collected)
        return collected

    async def _held_nowhere(self, bucket: str, key: str, vstamp: Stamp) -> bool:
        """Whether every node of the key's AZs answers that it holds no copy
        of the version (removed, or never had it); the nodes are asked at once."""

        async def holds_none(node: NodeSpec) -> bool:
            try:
                versions, _removed = await self.peers.replica(node).read_versions(
                    bucket, key, vstamp
                )
            except (ReplicaUnavailable, TristoreError):
                return False
            return not versions

        nodes = [node for azr in self.placer.place(bucket, key).azs for node in azr.nodes]
        return all(await asyncio.gather(*(holds_none(n) for n in nodes)))
