"""A node's first probe of a peer waits as long as a replica call would: a
peer that is slow to answer its first health check (a busy machine, a TLS
handshake) is not taken for down; one that is not listening is, at once."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.peers import Peers
from tristore import config, errors

from .clusters import node_table

pytestmark = pytest.mark.unit

#: Longer than a probe interval (0.5 s), well under the replica timeout (5 s).
SLOW_S = 1.0


class _SlowHealth(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self.calls = 0

    async def Check(self, request: Any, context: Any) -> health_pb2.HealthCheckResponse:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(SLOW_S)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _probe(tmp_path: Any) -> tuple[Peers, _SlowHealth, float]:
    """Node a1 probes its five peers once: b1's internal port answers its
    first health check after SLOW_S, nothing listens on the others'."""
    server = grpc.aio.server()
    health = _SlowHealth()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    slow_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        cfg = _config_around(tmp_path, slow_port)
        me = next(n for n in cfg.nodes if n.name == "a1")
        peers = Peers(cfg, me, store=None)  # type: ignore[arg-type] # probes only
        try:
            started = time.monotonic()
            probing = asyncio.ensure_future(peers.probe_once())
            await asyncio.sleep(SLOW_S / 2)
            # The closed ports' answers count before the slow one's comes.
            assert not probing.done() and not peers.is_up("b2") and not peers.is_up("c1")
            await probing
            return peers, health, time.monotonic() - started
        finally:
            for r in peers.remote.values():
                await r.close()
    finally:
        await server.stop(0)


def _config_around(tmp_path: Any, slow_port: int) -> config.ClusterConfig:
    """A map whose b1 has ``slow_port`` as its internal port and whose other
    nodes have closed ports. Free ports are drawn at random: a draw whose
    ports collide (one's internal port another's gRPC port, which the map
    refuses) is drawn again."""
    for _ in range(50):
        table = node_table()
        for n in table:
            n["grpc"] = f"127.0.0.1:{_closed_port()}"
        raw = {"nodes": table, "tls": {"insecure": True}, "cluster": {"data_dir": str(tmp_path)}}
        offset = config.parse(raw, env={}).tls.internal_port_offset if _parses(raw) else None
        if offset is None:
            continue
        (b1,) = [n for n in table if n["name"] == "b1"]
        b1["grpc"] = f"127.0.0.1:{slow_port - offset}"  # its internal port: the slow server
        if _parses(raw):
            return config.parse(raw, env={})
    raise AssertionError("no free ports that make a valid map in 50 draws")


def _parses(raw: dict[str, Any]) -> bool:
    try:
        config.parse(raw, env={})
    except errors.InvalidArgument:
        return False
    return True


def test_a_slow_first_answer_is_up_and_a_closed_port_is_down(tmp_path: Any) -> None:
    peers, health, took = asyncio.run(_probe(tmp_path))
    assert health.calls == 1
    assert took >= SLOW_S, "the first probe waited for the slow answer"
    assert peers.is_up("b1"), "a peer slow to answer its first probe is not down"
    assert not peers.is_up("b2") and not peers.is_up("c1"), "nothing listens there: down"
