"""Start a witness: ``tristore serve witness --config cluster.toml --name NAME``."""

from __future__ import annotations

import logging

import grpc

from tristore import server
from tristore.config import ClusterConfig
from tristore.pb import witness_pb2, witness_pb2_grpc
from witness.metrics import INCARNATION
from witness.servicer import WitnessServicer
from witness.table import WitnessTable

log = logging.getLogger(__name__)


async def build(cfg: ClusterConfig, name: str) -> server.ProcessSpec:
    spec = cfg.witness_named(name)
    table = WitnessTable(cfg.witness.max_keys)
    INCARNATION.set(table.incarnation)
    log.info("witness %s starts empty, incarnation %x", name, table.incarnation)

    servicer = WitnessServicer(spec, table, cfg.cluster.max_clock_skew_ms)

    def register(srv: grpc.aio.Server) -> list[str]:
        witness_pb2_grpc.add_WitnessServiceServicer_to_server(servicer, srv)
        return [witness_pb2.DESCRIPTOR.services_by_name["WitnessService"].full_name]

    return server.ProcessSpec(
        name=name,
        role="witness",
        grpc_addr=spec.grpc,
        metrics_addr=spec.metrics,
        cluster=cfg.cluster.name,
        az=f"group-{spec.group}",
        register=register,
        pipe=servicer.pipe_service(),
        config=cfg,
    )


def main(cfg: ClusterConfig, name: str) -> None:
    server.setup_logging(name)
    server.main(lambda: build(cfg, name))
