"""Start a replicator: ``tristore serve replicator --config cluster.toml --name NAME``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc

from replicator.state import ReplicatorState
from replicator.worker import Replicator
from tristore import server
from tristore.config import ClusterConfig
from tristore.convert import replicator_status_to_pb
from tristore.pb import admin_pb2, admin_pb2_grpc

log = logging.getLogger(__name__)


class ReplicatorAdminServicer(admin_pb2_grpc.ReplicatorAdminServicer):
    def __init__(self, worker: Replicator) -> None:
        self.worker = worker

    async def ReplicatorStatus(
        self, request: admin_pb2.ReplicatorStatusRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReplicatorStatusResponse:
        return replicator_status_to_pb(self.worker.status())


async def build(cfg: ClusterConfig, name: str) -> server.ProcessSpec:
    spec = cfg.replicator_named(name)
    state = await asyncio.to_thread(ReplicatorState, cfg.data_dir_for(name), cfg.node)
    worker = Replicator(cfg, spec, state)
    tasks: list[asyncio.Task[None]] = []

    def register(srv: grpc.aio.Server) -> list[str]:
        admin_pb2_grpc.add_ReplicatorAdminServicer_to_server(ReplicatorAdminServicer(worker), srv)
        return [admin_pb2.DESCRIPTOR.services_by_name["ReplicatorAdmin"].full_name]

    async def on_start() -> None:
        log.info(
            "replicator %s (%d of %d) tails %d nodes; remotes: %s",
            name,
            worker.index + 1,
            worker.count,
            len(cfg.nodes),
            ", ".join(r.name for r in cfg.remotes) or "none",
        )
        tasks.append(asyncio.create_task(worker.run_forever()))

    async def on_stop() -> None:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await worker.close()
        await asyncio.to_thread(state.close)

    return server.ProcessSpec(
        name=name,
        role="replicator",
        grpc_addr=spec.grpc,
        metrics_addr=spec.metrics,
        cluster=cfg.cluster.name,
        az="",
        register=register,
        config=cfg,
        on_start=on_start,
        on_stop=on_stop,
    )


def main(cfg: ClusterConfig, name: str) -> None:
    server.setup_logging(name)
    server.main(lambda: build(cfg, name))
