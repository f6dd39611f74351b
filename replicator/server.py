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

log = logging.getLogger(__name__)


async def build(cfg: ClusterConfig, name: str) -> server.ProcessSpec:
    spec = cfg.replicator_named(name)
    state = await asyncio.to_thread(ReplicatorState, cfg.data_dir_for(name))
    worker = Replicator(cfg, spec, state)
    tasks: list[asyncio.Task[None]] = []

    def register(srv: grpc.aio.Server) -> list[str]:
        return []  # health and reflection only; the work is outbound

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
        on_start=on_start,
        on_stop=on_stop,
    )


def main(cfg: ClusterConfig, name: str) -> None:
    server.setup_logging(name)
    server.main(lambda: build(cfg, name))
