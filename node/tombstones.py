"""Collecting tombstones: the markers of removed versions, and the current
records that are removals.

**Markers.** Removing a version (DELETE with a version id, a lifecycle
expiration) leaves a marker on each replica, so that a late copy of the
version (a write-back from a node that still held it, a hint handed back, a
commit that was on its way) is refused instead of bringing it back. Without
collection they would pile up for ever, one per removed version.

A node collects its own markers ``[node] tombstone_retention_s`` after the
removal (far longer than any request lives, so nothing that set out with the
version is still on its way) and only once every node of the key's AZs answers
that it holds no copy of the version: the copies a late write could come from
are gone, hints included (a hint sits on another node of its AZ). A node that
does not answer keeps the marker until a later round.

A node that still holds the version that long after missed the removal: a
DELETE whose try reached only some AZs before it failed (one was down or cut
off), and was not tried again. Reads already take the version for gone (a
removal in any AZ wins: ``Protocol.read_version``), but a listing that scans
that node's AZ still shows it, and on the key's first-AZ home its removal is
never notified. So the removal is committed on each such node (it answers
with its own log entry, and its event), and the marker is collected in a later
round, once none holds the version. A removed version never comes back, so
finishing its removal changes nothing any read could have answered.

**Removals.** An unversioned DELETE (and the removal of a key's last version)
leaves a removal as the key's current record: a tombstone that reads as
NoSuchKey and keeps last-writer-wins ordering with writes racing it. A node
forgets such a key (its current record, null-version pointer and index entry:
:meth:`~node.replica_store.ReplicaStore.drop_removal`) when all of this holds:

1. the removal's stamp is older than ``tombstone_retention_s`` plus
   ``[cluster] max_clock_skew_ms`` by this node's wall clock;
2. every node of the key's AZs answers, and each holds that same removal
   (same stamp) as the key's current record, or nothing, and no version
   record of the key;
3. every witness of the key's group forgot the key at that stamp
   (:meth:`~node.witness_client.WitnessFleet.forget`);
4. at the drop itself (in the writer thread, atomically with it): the
   current record here is still that removal, no version record of the key
   and no hint for it are held here.

Why a read after that still answers NoSuchKey, and never an older version:

- *No copy of anything older is left to come back.* By (2) no node of the
  key's AZs (homes, fallbacks, nodes the map moved it from) holds a live
  version of the key; a node that missed the DELETE would hold the older
  version and stop the collection, and a node that is down stops it too. A
  hint on a fallback is a copy of the fallback's own state, which (2) found to
  be the removal or nothing, so handing it over brings back nothing older; and
  no node drops while it holds a hint itself (4). What could still be on its
  way (a commit, a write-back of a read, a handed-off copy) set out before the
  removal was written, far longer than any request lives ago (1).
- *The witness.* Until it forgets, the witness vouches for the removal's
  stamp; a read that met a witness stamp and no replica holding it would
  answer ServiceUnavailable. So the witness forgets first, before any drop.
  Forgetting raises the witness's floor above the removal's stamp: no record
  of that stamp or an older one is taken again (a late confirmation, or a
  read that finds the removal on a node that has not dropped it yet and
  finishes it), so from then on every member answers the key unknown or at
  a newer stamp. An unknown key sends readers to every node of each AZ (a
  majority of AZs heard whole): they find the removal (and finish it: written
  back where it was dropped, collected again later) or nothing, NoSuchKey
  either way. A coordinator's metadata cache may still hold the removal, but
  a cached entry is served only at or above the witness's stamp, which is
  unknown or newer now: never served over a later write.
- *The floor of a later write.* A write's stamp must exceed every
  acknowledged stamp of its key. While the witness knows the removal, its
  floor is the removal's stamp; after the witness forgot it, the floor is
  read from every node of each AZ, which hold the removal until they drop it.
  Once none holds it, the stamp comes from the coordinator's hybrid clock,
  which is at or above its wall clock: by (1) the removal is older than the
  retention plus the cluster's clock-skew bound, so that stamp is above the
  removal's on every node whose clock keeps within the bound. (Were it not,
  the witness would still refuse the older stamp below its floor, leaving the
  key unknown, and readers read the nodes.)

A drop is not a change of the key (it still reads as absent), so it adds no
change-log entry and nothing is replicated or notified.

The protocol model explores these rules (tests/modelcheck, ``CI_COLLECT``)
and finds a collection without the forget, a forget without the floor and a
collection before the retention period (tests/unit/test_modelcheck.py).
"""

from __future__ import annotations

import asyncio
import logging

from node.metrics import REMOVALS_FINISHED, TOMBSTONES_CHECKED, TOMBSTONES_COLLECTED
from node.peers import Peers, ReplicaUnavailable
from node.replica_store import ReplicaStore
from node.witness_client import WitnessFleet
from tristore.config import NodeSection, NodeSpec
from tristore.errors import TristoreError
from tristore.model import Change
from tristore.placement import Placer
from tristore.stamps import HybridClock, Stamp

log = logging.getLogger(__name__)


class TombstoneCollector:
    def __init__(
        self,
        store: ReplicaStore,
        peers: Peers,
        placer: Placer,
        cfg: NodeSection,
        clock: HybridClock,
        witness: WitnessFleet | None = None,
        max_skew_ms: int = 0,
    ) -> None:
        self.store = store
        self.peers = peers
        self.placer = placer
        self.cfg = cfg
        self.witness = witness
        self.max_skew_ms = max_skew_ms
        #: Stamps the removals finished on nodes that missed them.
        self.clock = clock
        #: Where the next round goes on looking (b"": from the first marker).
        self._cursor = b""
        #: The same, in the index of removals.
        self._removal_cursor = b""

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.tombstone_check_s)
            try:
                await self.collect_once()
            except Exception:
                log.exception("collecting tombstones failed")

    async def collect_once(self) -> int:
        """Look through one batch of markers and one of removals; returns how
        many were collected."""
        return await self._collect_markers() + await self._collect_removals()

    async def _collect_markers(self) -> int:
        before = self.store.wall_ms() - int(self.cfg.tombstone_retention_s * 1000)
        old, self._cursor = await self.store.old_tombstones(
            self._cursor, self.cfg.tombstone_batch, before
        )
        collected = 0
        TOMBSTONES_CHECKED.inc(len(old))
        for bucket, key, vstamp, seen in old:
            stamp = Stamp.decode(vstamp)
            holders = await self._holders(bucket, key, stamp)
            if holders:
                await self._finish_removal(bucket, key, stamp, holders)
            elif holders is not None and await self.store.drop_tombstone(bucket, key, vstamp, seen):
                collected += 1
        TOMBSTONES_COLLECTED.inc(collected)
        return collected

    async def _collect_removals(self) -> int:
        retention_ms = int(self.cfg.tombstone_retention_s * 1000) + self.max_skew_ms
        before = self.store.wall_ms() - retention_ms
        old, self._removal_cursor = await self.store.old_removals(
            self._removal_cursor, self.cfg.tombstone_batch, before
        )
        collected = 0
        TOMBSTONES_CHECKED.inc(len(old))
        for bucket, key, encoded in old:
            if await self._collect_removal(bucket, key, Stamp.decode(encoded)):
                collected += 1
        TOMBSTONES_COLLECTED.inc(collected)
        return collected

    async def _collect_removal(self, bucket: str, key: str, stamp: Stamp) -> bool:
        """Steps 2 to 4 of the module's rule for one key."""
        nodes = [n for azr in self.placer.place(bucket, key).azs for n in azr.nodes]
        agreed = await asyncio.gather(*(self._holds_only(n, bucket, key, stamp) for n in nodes))
        if not all(agreed):
            return False
        if self.witness is not None:
            try:
                forgot = await self.witness.forget(bucket, key, stamp)
            except TristoreError as exc:
                log.info("witnesses did not forget %s/%s: %s", bucket, key, exc)
                return False
            if not forgot:
                return False
        homes = [n.name for n in nodes]
        return await self.store.drop_removal(bucket, key, stamp.encode(), homes)

    async def _holds_only(self, node: NodeSpec, bucket: str, key: str, stamp: Stamp) -> bool:
        """Whether ``node`` answers that it holds the removal at ``stamp`` as
        the key's current record (or no current record), and no version."""
        replica = self.peers.replica(node)
        try:
            head, (versions, _removed) = await asyncio.gather(
                replica.read_meta(bucket, key, False),
                replica.read_versions(bucket, key, None, False, 1),
            )
        except (ReplicaUnavailable, TristoreError):
            return False
        if head is not None and (head.stamp != stamp or head.is_version):
            return False
        return not versions

    async def _holders(self, bucket: str, key: str, vstamp: Stamp) -> list[NodeSpec] | None:
        """The nodes of the key's AZs that answer that they hold a copy of the
        version (none: removed, or never had it); None when a node did not
        answer. The nodes are asked at once."""

        async def holds(node: NodeSpec) -> bool | None:
            try:
                versions, _removed = await self.peers.replica(node).read_versions(
                    bucket, key, vstamp
                )
            except (ReplicaUnavailable, TristoreError):
                return None
            return bool(versions)

        nodes = [node for azr in self.placer.place(bucket, key).azs for node in azr.nodes]
        answers = await asyncio.gather(*(holds(n) for n in nodes))
        if any(a is None for a in answers):
            return None
        return [n for n, a in zip(nodes, answers, strict=True) if a]

    async def _finish_removal(
        self, bucket: str, key: str, vstamp: Stamp, holders: list[NodeSpec]
    ) -> None:
        """Commit the removal of a version on the nodes that missed it (see the
        module's note); the marker waits for a later round."""
        for node in holders:
            change = Change(bucket, key, self.clock.now(), removed=(vstamp,))
            try:
                await self.peers.replica(node).commit(change)
            except (ReplicaUnavailable, TristoreError) as exc:
                log.info("finishing the removal of %s/%s on %s: %s", bucket, key, node.name, exc)
                continue
            REMOVALS_FINISHED.inc()
            log.warning(
                "%s still held %s/%s@%s, removed for good elsewhere over %g s ago "
                "(a DELETE that missed its AZ): removed there now",
                node.name,
                bucket,
                key,
                vstamp.version_id,
                self.cfg.tombstone_retention_s,
            )
