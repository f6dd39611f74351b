"""Fixtures for the unit tier: pure data, no processes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from .clusters import node_table


@pytest.fixture
def raw_config() -> dict[str, Any]:
    """A cluster map as tomllib would load it: three AZs, two nodes each."""
    return {
        "cluster": {"name": "test", "id": 7, "epoch": 3, "data_dir": "data"},
        "node": {"chunk_size": 262144, "inline_max": 65536},
        "nodes": node_table(),
    }


@pytest.fixture
def refused_endpoint() -> Iterator[str]:
    """A loopback address that refuses connections: the port is bound (so no
    one else can take it) but never listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(autouse=True)
def plaintext_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tier's servers are in-process plaintext stand-ins (grpc.aio
    servers on an insecure port): its SDK clients use the insecure switch, as a
    user of an ``[tls] insecure`` cluster would. TLS itself is tested against
    real processes in tests/integration/test_tls.py."""
    monkeypatch.setenv("TRISTORE_INSECURE", "1")
    monkeypatch.delenv("TRISTORE_CA_BUNDLE", raising=False)
