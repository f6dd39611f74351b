"""Simulated processes: storage nodes and witnesses, built from the real parts.

A :class:`SimNode` is what ``node/server.py`` builds, minus the parts that
serve other callers (S3, admin, events) and the background loops the
simulation leaves out (peer probes, map comparisons, GC, scrub): a real
:class:`~node.replica_store.ReplicaStore` on RocksDB, the real
:class:`~node.servicer.ReplicaServicer` answering the other nodes, a real
:class:`~node.coordinator.Coordinator` (with its Peers, Quorum, Protocol,
metadata cache and WitnessFleet) answering the clients, and the real
:class:`~node.hints.HintedHandoff` loop. A :class:`SimWitness` is the real
:class:`~witness.servicer.WitnessServicer` over a real
:class:`~witness.table.WitnessTable`.

What differs from a process: :class:`SimStore` writes its group commits on
the loop (after a simulated fsync delay) instead of on a writer thread, and
:class:`SimClock` reads the virtual clock (plus the node's skew).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.coordinator import Coordinator
from node.hints import HintedHandoff
from node.peers import Peers
from node.replica_store import ReplicaStore
from node.servicer import ReplicaServicer
from node.witness_client import WitnessFleet
from tests.sim.loop import OWNER, SimLoop
from tests.sim.net import SimProcess
from tristore.config import ClusterConfig, NodeSection, NodeSpec, WitnessSpec
from tristore.pb import replica_pb2_grpc, witness_pb2_grpc
from tristore.placement import Placer
from tristore.stamps import HybridClock
from witness.servicer import WitnessServicer
from witness.table import WitnessTable

#: Unix ms at virtual time 0.
EPOCH_MS = 1_750_000_000_000


class SimClock(HybridClock):
    """A node's hybrid logical clock over the virtual wall clock."""

    def __init__(self, cfg: ClusterConfig, spec: NodeSpec, loop: SimLoop, offset_ms: int) -> None:
        super().__init__(cfg.cluster.id, spec.id, offset_ms, cfg.cluster.max_clock_skew_ms)
        self._loop = loop

    def wall_ms(self) -> int:
        return EPOCH_MS + int(self._loop.now * 1000) + self._offset_ms


class SimStore(ReplicaStore):
    """The real store, its group commits written on the loop: requests queue
    as with the writer thread, and after a simulated fsync delay everything
    queued is written as one batch by the real ``_write_batch`` (which applies
    each request's real ``_Op``). A crash drops what is queued, unwritten."""

    def __init__(
        self,
        path: Path,
        cfg: NodeSection,
        clock_ms: Callable[[], int],
        fsync_s: Callable[[], float],
    ) -> None:
        super().__init__(path, cfg, clock_ms)
        self._fsync_s = fsync_s
        self._queued: list[tuple[Any, asyncio.Future[Any]]] = []
        self._flush: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop  # no writer thread

    async def _submit(self, op: Any) -> Any:
        assert self._loop is not None
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._queued.append((op, fut))
        if self._flush is None:
            self._flush = self._loop.call_later(self._fsync_s(), self._write_queued)
        return await fut

    def _write_queued(self) -> None:
        self._flush = None
        if self._closed:
            return
        assert self._loop is not None
        n = self.cfg.group_commit_max
        batch, self._queued = self._queued[:n], self._queued[n:]
        self._write_batch(batch, self._loop)
        if self._queued:
            self._flush = self._loop.call_later(self._fsync_s(), self._write_queued)

    def crash(self) -> None:
        """Stop as a killed process does: what was queued is never written."""
        self._queued.clear()
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self.close()


class SimNode:
    def __init__(self, sim: Any, spec: NodeSpec, data_dir: Path, offset_ms: int) -> None:
        self.sim = sim
        self.spec = spec
        self.name = spec.name
        self.data_dir = data_dir
        self.offset_ms = offset_ms
        self.proc = SimProcess(spec.name, spec.grpc)
        self.proc.alive = False
        sim.net.add(self.proc)
        self.store: SimStore | None = None
        self.coord: Coordinator | None = None
        self.starts = 0

    @property
    def up(self) -> bool:
        return self.proc.alive

    def start(self) -> None:
        sim, cfg, loop, net = self.sim, self.sim.cfg, self.sim.loop, self.sim.net
        loop.revive(self.name)
        net.restart(self.proc)
        self.starts += 1
        clock = SimClock(cfg, self.spec, loop, self.offset_ms)
        store = SimStore(self.data_dir, cfg.node, clock.wall_ms, sim.fsync_delay)
        store.start(loop)
        channel = net.channel_factory(self.proc)
        peers = Peers(cfg, self.spec, store, channel=channel, clock=loop.time)
        placer = Placer(cfg)
        witnesses = WitnessFleet(cfg, self.name, prefer=self.spec.id, channel=channel)
        self.coord = Coordinator(cfg, self.spec, peers, placer, clock, witnesses)
        handoff = HintedHandoff(store, peers, placer, cfg.node)
        servicer = ReplicaServicer(store, self.coord)
        self.proc.serve(
            lambda srv: replica_pb2_grpc.add_ReplicaServiceServicer_to_server(servicer, srv)
        )
        self.store = store
        token = OWNER.set(self.name)
        try:
            loop.create_task(witnesses.learn())
            loop.create_task(handoff.run_forever())
        finally:
            OWNER.reset(token)

    def crash(self) -> None:
        self.sim.net.crash(self.proc)
        self.sim.loop.kill(self.name)
        if self.store is not None:
            self.store.crash()
        self.coord = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def wipe(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


class SimWitness:
    def __init__(self, sim: Any, spec: WitnessSpec) -> None:
        self.sim = sim
        self.spec = spec
        self.name = spec.name
        self.proc = SimProcess(spec.name, spec.grpc)
        self.proc.alive = False
        sim.net.add(self.proc)
        self.table: WitnessTable | None = None

    @property
    def up(self) -> bool:
        return self.proc.alive

    def start(self) -> None:
        sim = self.sim
        sim.loop.revive(self.name)
        sim.net.restart(self.proc)
        table = WitnessTable(sim.cfg.witness.max_keys)
        table.incarnation = sim.rng.getrandbits(48) or 1  # seeded, not os.urandom
        self.table = table
        # No clock-skew bound: the servicer would read the real clock.
        servicer = WitnessServicer(self.spec, table, max_skew_ms=None)
        self.proc.serve(
            lambda srv: witness_pb2_grpc.add_WitnessServiceServicer_to_server(servicer, srv)
        )

    def crash(self) -> None:
        self.sim.net.crash(self.proc)
        self.sim.loop.kill(self.name)
        self.table = None
