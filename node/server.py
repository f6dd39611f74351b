"""Start a storage node: ``tristore serve node --config cluster.toml --name NAME``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc

from node.coordinator import Coordinator
from node.disk import DiskWatch
from node.events import EventStreams, NodeEvents
from node.guard import Guard
from node.hints import HintedHandoff
from node.iam import Iam
from node.membership import Membership, map_path, starting_config
from node.multipart import Multipart
from node.peers import Peers
from node.relay import WriteRelay
from node.repair import Repairer, rebuild_if_new
from node.replica_store import ReplicaStore
from node.s3.server import S3Server
from node.scrub import Scrubber
from node.servicer import AdminServicer, EventServicer, ObjectServicer, ReplicaServicer
from node.tombstones import TombstoneCollector
from node.upload_expiry import UploadExpiry
from node.witness_client import WitnessFleet
from tristore import credentials, server
from tristore.config import ClusterConfig
from tristore.kms import LocalKeyFile
from tristore.pb import (
    admin_pb2,
    admin_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    objects_pb2,
    objects_pb2_grpc,
    replica_pb2,
    replica_pb2_grpc,
)
from tristore.placement import Placer
from tristore.stamps import HybridClock

log = logging.getLogger(__name__)


async def build(cfg: ClusterConfig, name: str) -> server.ProcessSpec:
    cfg = await asyncio.to_thread(starting_config, cfg, name)
    if not any(n.name == name for n in cfg.nodes):
        log.error(
            "%s is not in the cluster map at epoch %d (it was decommissioned; the map is "
            "kept in %s): not starting",
            name,
            cfg.cluster.epoch,
            map_path(cfg, name),
        )
        raise SystemExit(2)
    me = cfg.node_named(name)
    # Calls to other nodes' public services (cluster map, events) sign as root.
    credentials.use_for_process(await asyncio.to_thread(credentials.root_credentials, cfg))
    clock = HybridClock(
        cfg.cluster.id, me.id, cfg.node.clock_offset_ms, cfg.cluster.max_clock_skew_ms
    )
    store = await asyncio.to_thread(ReplicaStore, cfg.data_dir_for(name), cfg.node, clock.wall_ms)
    disk = DiskWatch(name, store.path, cfg.node.disk_reserve_bytes, cfg.node.disk_resume_bytes)
    await asyncio.to_thread(disk.check)
    store.disk = disk
    store.start(asyncio.get_running_loop())
    peers = Peers(cfg, me, store)
    placer = Placer(cfg)
    witnesses = WitnessFleet(cfg, me.name, prefer=me.id) if cfg.witnesses else None
    coord = Coordinator(cfg, me, peers, placer, clock, witnesses)
    handoff = HintedHandoff(store, peers, placer, cfg.node)
    tombstones = TombstoneCollector(
        store, peers, placer, cfg.node, clock, witnesses, cfg.cluster.max_clock_skew_ms
    )
    upload_expiry = UploadExpiry(Multipart(coord, cfg.node), peers, cfg.node)
    membership = Membership(cfg, me, placer, peers, handoff, store)
    coord.moving_azs = membership.moving_azs
    repairer = Repairer(coord, cfg.node)
    scrubber = Scrubber(store, repairer, cfg.node, me)
    iam = Iam(cfg, coord.protocol, await asyncio.to_thread(LocalKeyFile, cfg.kms_key_file))
    guard = Guard(cfg, iam, coord)
    if cfg.node.unsafe_no_fsync:
        log.warning(
            "[node] unsafe_no_fsync = true: writes are acknowledged WITHOUT fsync; a power "
            "cut loses them. Only for benchmarks and tests, never for data you keep!"
        )
    if not cfg.auth.enabled:
        log.warning(
            "[auth] enabled = false: every call is taken as root's, signed or not. "
            "Only for a trusted test bench!"
        )
    elif not cfg.auth.root_access_key_id:
        log.error(
            "[auth] root_access_key_id is empty: nobody can sign as root (admin); give "
            "the root credentials in the config (tristore dev up generates them)"
        )

    def set_rebuilding(on: bool) -> None:
        membership.rebuilding = on
        membership.poke()

    set_rebuilding(store.needs_rebuild)  # until rebuild_if_new knows better

    s3 = S3Server(cfg, me, coord, guard)
    node_events = NodeEvents(me, store, placer, cfg.node)
    event_streams = EventStreams(cfg, node_events, peers, coord.head_bucket)
    tasks: list[asyncio.Task[None]] = []

    # Every node runs the writes peers relay to it, whatever its own
    # write_coordinators says (it relays only when that is above 0).
    relay = WriteRelay(placer, peers, me, cfg.node.write_coordinators, cfg.node.inline_max)
    replica = ReplicaServicer(store, coord, relay)

    def register(srv: grpc.aio.Server) -> list[str]:
        objects_pb2_grpc.add_ObjectServiceServicer_to_server(ObjectServicer(coord, guard), srv)
        replica_pb2_grpc.add_ReplicaServiceServicer_to_server(replica, srv)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(membership, store, peers, witnesses, repairer, iam, scrubber), srv
        )
        events_pb2_grpc.add_EventServiceServicer_to_server(
            EventServicer(event_streams, node_events), srv
        )
        return [
            objects_pb2.DESCRIPTOR.services_by_name["ObjectService"].full_name,
            replica_pb2.DESCRIPTOR.services_by_name["ReplicaService"].full_name,
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
            events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
        ]

    async def gc_forever() -> None:
        while True:
            await asyncio.sleep(store.gc_wait_s(cfg.node.gc_interval_s))
            try:
                await store.collect_garbage()
            except Exception:
                log.exception("garbage collection round failed")

    async def trim_log_forever() -> None:
        readers = [r.name for r in cfg.replicators]
        while True:
            await asyncio.sleep(cfg.node.changelog_trim_interval_s)
            try:
                while await store.trim_log(readers) >= cfg.node.changelog_trim_batch:
                    pass  # a backlog: the next batch at once
            except Exception:
                log.exception("trimming the change log failed")

    async def end_long_polls() -> None:
        await spec.stop.wait()
        store.end_log_waits()

    async def stop_s3() -> None:
        # Beside gRPC's grace period, not after it: both doors drain at once.
        await spec.stop.wait()
        await s3.stop()

    async def on_start() -> None:
        background = [
            end_long_polls(),
            stop_s3(),
            peers.probe_forever(),
            handoff.run_forever(),
            gc_forever(),
            trim_log_forever(),
            membership.sync_forever(),
            peers.wait_for_peers(),
            rebuild_if_new(repairer, store, peers, set_rebuilding),
            disk.run_forever(cfg.node.disk_check_s, cfg.node.disk_idle_check_s),
            tombstones.run_forever(),
            scrubber.run_forever(),
            upload_expiry.run_forever(),
        ]
        if witnesses is not None:
            background.append(witnesses.learn())  # best effort; any answer teaches it too
        tasks.extend(asyncio.create_task(c) for c in background)
        await s3.start()

    async def on_stop() -> None:
        await s3.stop()  # done already, unless the start failed half-way
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await peers.close()
        if witnesses is not None:
            await witnesses.close()
        await asyncio.to_thread(store.close)

    spec = server.ProcessSpec(
        name=name,
        role="node",
        grpc_addr=me.grpc,
        metrics_addr=me.metrics,
        cluster=cfg.cluster.name,
        az=me.az,
        register=register,
        pipe=replica.pipe_service(),
        door=True,
        door_relay=relay,
        config=cfg,
        on_start=on_start,
        on_stop=on_stop,
        guard=guard,
        health=disk.health,
    )

    s3.grace_s = spec.grace_s

    def reopen() -> None:
        spec.restart = "the store's space is back after it failed a write for lack of it"
        spec.stop.set()

    disk.on_space_back = reopen

    def removed() -> None:
        # Decommissioned: stop a moment later, once the call that said so is answered.
        asyncio.get_running_loop().call_later(1.0, spec.stop.set)

    membership.on_removed = removed
    return spec


def main(cfg: ClusterConfig, name: str) -> None:
    server.setup_logging(name)
    server.main(lambda: build(cfg, name))
