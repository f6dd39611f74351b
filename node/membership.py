"""The cluster map as this node holds it, and how changes to it spread.

A node starts from the newer of its config file's map and the one it kept in
its data directory (``cluster-map.json``, written atomically and fsynced before
the map is used). It asks each peer for its map's epoch and digest (the map
itself comes back only when it differs); a peer with a newer map gives it (this
node takes it), a peer with an older one is given this node's. (Of two maps of
one epoch, the one with the higher digest wins everywhere.) While every peer
agrees and no node hands keys off, the comparison backs off from
``[node] map_sync_interval_s`` to ``map_sync_max_interval_s``; a peer coming up or going
down, a new map or handoffs starting here make it due at once. A comparison
tells both sides: a peer that compared maps here since the last round (same
map, no handoffs pending) is not asked back, and either direction counts as
hearing from the peer, in place of a health probe (node/peers.py). ``ChangeNode``
(``tristore admin drain|undrain|decommission``) makes the next map here and
hands it to every node at once.

Taking a map places keys by it from then on; the hinted-handoff loop then
moves every key this node holds but is no longer home to (node/hints.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from node.hints import HintedHandoff
from node.metrics import MAP_EPOCH
from node.peers import Peers, ReplicaUnavailable
from node.replica_store import ReplicaStore
from tristore import convert
from tristore.clustermap import REMOVE, ClusterMap
from tristore.config import DRAINING, ClusterConfig, NodeSpec
from tristore.errors import ConditionalRequestConflict, InvalidRequest, TristoreError
from tristore.pb import admin_pb2
from tristore.placement import Placer
from tristore.wakeup import wait_for_any

log = logging.getLogger(__name__)

MAP_FILE = "cluster-map.json"


def map_path(cfg: ClusterConfig, name: str) -> Path:
    return cfg.data_dir_for(name) / MAP_FILE


def starting_config(cfg: ClusterConfig, name: str) -> ClusterConfig:
    """``cfg`` with the map this node kept, when that one is newer than the
    file's (a change made at run time outlives a restart)."""
    path = map_path(cfg, name)
    try:
        kept = ClusterMap.loads(path.read_text())
    except FileNotFoundError:
        return cfg
    if kept.epoch <= cfg.cluster.epoch:
        return cfg
    log.info("using the cluster map at epoch %d kept in %s", kept.epoch, path)
    return kept.apply_to(cfg)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Membership:
    def __init__(
        self,
        cfg: ClusterConfig,
        me: NodeSpec,
        placer: Placer,
        peers: Peers,
        handoff: HintedHandoff,
        store: ReplicaStore,
    ) -> None:
        self.cfg = cfg
        self.me = me
        self.map = ClusterMap.of(cfg)
        self.placer = placer
        self.peers = peers
        self.handoff = handoff
        self.store = store
        self.path = map_path(cfg, me.name)
        #: Handoffs each peer reported pending at the last sync.
        self.peer_handoffs: dict[str, int] = {}
        #: Peer -> (when it last compared maps here, the map order it held,
        #: its handoffs pending, this node's handoffs pending it was told).
        self._asked_by: dict[str, tuple[float, tuple[int, str], int, int]] = {}
        #: Set while this node rebuilds its copies (node/repair.py).
        self.rebuilding = False
        #: Called once this node is no longer in the map (decommissioned).
        self.on_removed: Callable[[], None] | None = None
        self._adopt_lock = asyncio.Lock()
        self._change_lock = asyncio.Lock()
        #: Set when what :meth:`_view` sees may have changed (with
        #: ``peers.changed``): the loop looks then, not every second.
        self._poke = asyncio.Event()
        handoff.on_hinted = self.poke
        MAP_EPOCH.set(self.map.epoch)

    def poke(self) -> None:
        """Something a map comparison should hear of soon may have changed
        here (a new map, handoffs or a rebuild starting)."""
        self._poke.set()

    @property
    def epoch(self) -> int:
        return self.map.epoch

    @property
    def state(self) -> str:
        return next((n.state for n in self.map.nodes if n.name == self.me.name), "removed")

    def handoffs_pending(self) -> int:
        """Keys held here that belong elsewhere (a scan still to run, or a
        rebuild in progress, counts one)."""
        busy = self.handoff.rescan.is_set() or self.handoff.scanning or self.rebuilding
        return self.store.hints_pending + (1 if busy else 0)

    def moving_azs(self) -> set[str]:
        """AZs with a node that is handing keys to another (a listing must not
        rely on such an AZ alone: a key in flight may be on neither scan)."""
        moving = {n.az for n in self.map.nodes if n.state == DRAINING}
        moving |= {
            n.az for n in self.map.nodes if self.peer_handoffs.get(n.name, 0) and n != self.me
        }
        if self.handoffs_pending():
            moving.add(self.me.az)
        return moving

    # -- taking a map ------------------------------------------------------------

    async def adopt(self, new: ClusterMap) -> bool:
        """Take ``new`` if it is newer than the map held; True if taken."""
        async with self._adopt_lock:
            if new.order <= self.map.order:
                return False
            cfg = new.apply_to(self.cfg)  # validates; raises on a bad map
            await asyncio.to_thread(_write_atomically, self.path, new.dumps())
            old, self.map, self.cfg = self.map, new, cfg
            self.placer.update(new.nodes, new.epoch)
            self.peers.update(new.nodes)
            self.handoff.rescan.set()
            self.poke()
            MAP_EPOCH.set(new.epoch)
            log.info("cluster map epoch %d -> %d: %s", old.epoch, new.epoch, _diff(old, new))
        if not new.has(self.me.name) and self.on_removed is not None:
            log.warning(
                "%s is not in the cluster map at epoch %d (decommissioned): stopping",
                self.me.name,
                new.epoch,
            )
            self.on_removed()
        return True

    async def sync_once(self, asked_since: float | None = None) -> bool:
        """Compare maps with every reachable peer; take a newer map, give an
        older one. True when every peer asked holds this very map and no node
        asked (nor this one) has handoffs pending: nothing to compare soon.

        With ``asked_since`` (a ``time.monotonic()``), a peer that compared
        maps here since then, holding this very map, with no handoffs pending
        on either side then or here now, is not asked again: that comparison
        told both sides all this one would (one RPC a pair of idle nodes, not
        one each way)."""
        mine = self.map
        pending = self.handoffs_pending()
        settled = not pending
        timeout_s, me = self.cfg.node.map_sync_interval_s, self.me.name

        async def one(name: str) -> None:
            nonlocal settled
            remote = self.peers.remote.get(name)
            if remote is None or not self.peers.is_up(name):
                return
            asked = self._asked_by.get(name)
            if (
                asked_since is not None
                and asked is not None
                and asked[0] >= asked_since
                and asked[1:] == (mine.order, 0, 0)
                and not pending
            ):
                return
            try:
                resp = await remote.get_map(mine.epoch, timeout_s, mine.order[1], me, pending)
            except (ReplicaUnavailable, TristoreError):
                settled = False
                return
            self.peers.heard_from(name)
            self.peer_handoffs[name] = resp.handoffs_pending
            if resp.handoffs_pending:
                settled = False
            theirs = convert.cluster_map_from_pb(resp.map) if resp.HasField("map") else None
            if theirs is not None and theirs != self.map and theirs.order > self.map.order:
                settled = False
                try:
                    await self.adopt(theirs)
                except TristoreError as exc:
                    log.warning("refused the cluster map %s offered: %s", name, exc)
            elif resp.epoch < self.map.epoch or (theirs is not None and theirs != self.map):
                settled = False
                with contextlib.suppress(ReplicaUnavailable, TristoreError):
                    await remote.put_map(convert.cluster_map_to_pb(self.map))

        await asyncio.gather(*(one(n) for n in list(self.peers.remote)))
        return settled and self.map is mine

    def heard_from(
        self, name: str, handoffs_pending: int, known_epoch: int = 0, known_digest: str = ""
    ) -> None:
        """A peer compared maps with this node: it told its handoffs pending
        and the map it holds (and is told this node's, and its handoffs)."""
        if name and name != self.me.name:
            self.peer_handoffs[name] = handoffs_pending
            self._asked_by[name] = (
                time.monotonic(),
                (known_epoch, known_digest),
                handoffs_pending,
                self.handoffs_pending(),
            )
            self.peers.heard_from(name)

    def _view(self) -> tuple[object, ...]:
        """What makes a map comparison due at once when it changes."""
        up = frozenset(n for n in self.peers.remote if self.peers.is_up(n))
        return self.map.order, bool(self.handoffs_pending()), up

    async def sync_forever(self) -> None:
        step = self.cfg.node.map_sync_interval_s
        longest = self.cfg.node.map_sync_max_interval_s
        interval = step
        last_round: float | None = None
        while True:
            started = time.monotonic()
            try:
                settled = await self.sync_once(last_round)
            except Exception:
                log.exception("cluster map sync failed")
                settled = False
            last_round = started
            interval = min(2 * interval, longest) if settled else step
            # Idle: sleep long, but compare at once when a peer comes or goes,
            # the map changes or handoffs begin here (woken by those, not by
            # looking every step).
            if await self._changed_within(interval):
                interval = step

    async def _changed_within(self, interval: float) -> bool:
        """Wait up to ``interval``; True as soon as :meth:`_view` changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + interval
        view = self._view()
        while True:
            # Cleared before looking: a change from here on wakes the wait.
            self._poke.clear()
            self.peers.changed.clear()
            if self._view() != view:
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            await wait_for_any([self._poke, self.peers.changed], left)

    # -- changing it -------------------------------------------------------------

    async def change(
        self, name: str, action: str, expect_epoch: int, force: bool
    ) -> tuple[ClusterMap, list[str], list[str]]:
        """Make the next map (drain, undrain or remove ``name``), take it, and
        hand it to every node of the old and new maps. Returns the map, the
        nodes that took it, and those not reached (they learn it from peers)."""
        async with self._change_lock:
            await self.sync_once()  # start from the newest map any peer holds
            current = self.map
            current.check_epoch(expect_epoch)
            new = current.changed(name, action)
            if new == current:
                return current, [self.me.name], []  # nothing to change
            new.apply_to(self.cfg)
            if action == REMOVE and not force:
                await self._check_drained(current.node(name))
            await self.adopt(new)
            targets = {n.name: n for n in (*current.nodes, *new.nodes) if n.name != self.me.name}
            offered = convert.cluster_map_to_pb(new)

            async def give(spec: NodeSpec) -> bool:
                try:
                    resp = await self.peers.replica_for_map(spec).put_map(offered)
                except (ReplicaUnavailable, TristoreError):
                    return False
                return resp.epoch >= new.epoch

            results = await asyncio.gather(*(give(s) for s in targets.values()))
            if self.map != new:
                raise ConditionalRequestConflict(
                    f"another change of the cluster map at epoch {new.epoch} was made at the "
                    "same time and won; look at `tristore admin status` and try again"
                )
        acked = [self.me.name, *(n for n, ok in zip(targets, results, strict=True) if ok)]
        missed = [n for n, ok in zip(targets, results, strict=True) if not ok]
        return new, sorted(acked), sorted(missed)

    async def _check_drained(self, spec: NodeSpec) -> None:
        if spec.state != DRAINING:
            raise InvalidRequest(
                f"{spec.name} is {spec.state}: drain it first (`tristore admin drain "
                f"{spec.name}`), or decommission it with --force if it is gone for good "
                "and run `tristore admin repair` after"
            )
        if spec.name == self.me.name:
            status = (self.store.hints_pending, await self.store.object_count())
        else:
            try:
                st = await self.peers.replica_for_map(spec).node_status()
            except ReplicaUnavailable as exc:
                raise InvalidRequest(
                    f"{spec.name} does not answer ({exc}), so whether it still holds data "
                    "is unknown; use --force if it is gone for good, then run "
                    "`tristore admin repair`"
                ) from None
            status = (st.handoffs_pending, st.objects)
        if any(status):
            raise InvalidRequest(
                f"{spec.name} still holds {status[1]} keys ({status[0]} handoffs pending); "
                "wait for its drain to finish (`tristore admin drain` shows progress)"
            )

    def to_pb(self, known_epoch: int, known_digest: str = "") -> admin_pb2.ClusterMapResponse:
        resp = admin_pb2.ClusterMapResponse(
            epoch=self.map.epoch, handoffs_pending=self.handoffs_pending()
        )
        if known_digest and (known_epoch, known_digest) == self.map.order:
            return resp  # the caller holds this very map
        if self.map.epoch >= known_epoch:
            resp.map.CopyFrom(convert.cluster_map_to_pb(self.map))
        return resp


def _diff(old: ClusterMap, new: ClusterMap) -> str:
    before = {n.name: n for n in old.nodes}
    after = {n.name: n for n in new.nodes}
    parts = [f"{n} joined ({after[n].az})" for n in after if n not in before]
    parts += [f"{n} left" for n in before if n not in after]
    parts += [
        f"{n} {before[n].state} -> {after[n].state}"
        for n in after
        if n in before and before[n] != after[n]
    ]
    return ", ".join(parts) or "no node changed"
