"""Endpoints, their channels, and the retry policy the SDK's calls share.

A client holds one :class:`Endpoint` per address it was given. The gRPC channel
of an endpoint is created on first use, inside the event loop that will use it
(grpc.aio channels belong to one loop), and then reused by every call.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from tristore import errors
from tristore.pb import admin_pb2_grpc, events_pb2_grpc, objects_pb2_grpc
from tristore.server import CHANNEL_OPTIONS

log = logging.getLogger(__name__)

ENDPOINT_ENV = "TRISTORE_ENDPOINT"

#: The shared channel options, plus a short reconnect backoff: gRPC's default
#: grows to two minutes, so a client would keep skipping a node long after it
#: came back.
CLIENT_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    *CHANNEL_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

_NO_ENDPOINT = (
    "no tristore endpoint given: pass --endpoint HOST:PORT[,HOST:PORT...] "
    f"or export {ENDPOINT_ENV}=HOST:PORT[,HOST:PORT...]"
)


def parse_endpoints(
    endpoints: str | Sequence[str] | None, env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """``"h:p,h:p"``, a list of them, or None to read ``TRISTORE_ENDPOINT``.

    Duplicates are dropped, order is kept. Raises InvalidArgument when nothing
    usable is left, with a message telling the user how to give an endpoint.
    """
    if endpoints is None:
        endpoints = (os.environ if env is None else env).get(ENDPOINT_ENV, "")
    if isinstance(endpoints, str):
        parts = endpoints.split(",")
    else:
        parts = [p for item in endpoints for p in str(item).split(",")]
    out: list[str] = []
    for raw in parts:
        ep = _normalize_endpoint(raw)
        if ep and ep not in out:
            out.append(ep)
    if not out:
        raise errors.InvalidArgument(_NO_ENDPOINT)
    return tuple(out)


def _normalize_endpoint(raw: str) -> str:
    ep = raw.strip()
    if not ep:
        return ""
    if ep.startswith("http://"):
        ep = ep[len("http://") :].rstrip("/")
    elif ep.startswith("https://"):
        raise errors.InvalidArgument(f"endpoint {ep!r}: TLS is not supported; give HOST:PORT")
    # gRPC target URIs (dns:///h:p, unix:/path, ipv4:...) are passed through.
    if ep.startswith(("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:")):
        return ep
    host, sep, port = ep.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.InvalidArgument(f"endpoint {ep!r} is not of the form HOST:PORT")
    return ep


class Endpoint:
    """One server address, its channel and stubs (created lazily, then reused)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel: grpc.aio.Channel | None = None
        self._objects: Any = None
        self._admin: Any = None
        self._events: Any = None

    def _open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.address, options=CLIENT_CHANNEL_OPTIONS)
        self._objects = objects_pb2_grpc.ObjectServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)
        self._events = events_pb2_grpc.EventServiceStub(self._channel)

    @property
    def opened(self) -> bool:
        return self._channel is not None

    @property
    def objects(self) -> Any:
        """The ObjectService stub (creates the channel on first use)."""
        if self._channel is None:
            self._open()
        return self._objects

    @property
    def admin(self) -> Any:
        if self._channel is None:
            self._open()
        return self._admin

    @property
    def events(self) -> Any:
        if self._channel is None:
            self._open()
        return self._events

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        self._objects = self._admin = self._events = None
        if channel is not None:
            await channel.close()

    def __repr__(self) -> str:
        return f"Endpoint({self.address!r})"


#: Errors that say something about the whole cluster, not the endpoint that
#: answered: trying other endpoints quickly does not help, so they get few tries.
CLUSTER_WIDE: tuple[type[errors.TristoreError], ...] = (errors.QuorumUnavailable, errors.SlowDown)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, bounded in attempts and time.

    ``max_attempts`` None means ``max(3, 2 * number of endpoints)``: every
    endpoint gets at least two chances before the client gives up.
    """

    max_attempts: int | None = None
    #: Errors of :data:`CLUSTER_WIDE` are tried at most this many times.
    cluster_wide_attempts: int = 3
    #: No new attempt starts this long after the first one. Longer than a
    #: few unary deadlines, so one endpoint that hangs still leaves time to
    #: fail over to the others.
    total_s: float = 60.0
    base_s: float = 0.05
    cap_s: float = 1.0

    def attempts(self, n_endpoints: int) -> int:
        if self.max_attempts is not None:
            return max(1, self.max_attempts)
        return max(3, 2 * n_endpoints)

    def backoff(self, failures: int) -> float:
        """Seconds to sleep after the ``failures``-th failed attempt (1-based).

        "Equal jitter": half the capped exponential step, plus up to as much
        again at random, so retries from many clients spread out but never
        hammer a struggling cluster with zero delay.
        """
        step = min(self.cap_s, self.base_s * 2 ** max(0, failures - 1))
        return step / 2 + random.uniform(0, step / 2)


def has_server_code(exc: grpc.aio.AioRpcError) -> bool:
    """True when the error came from a tristore handler (not from the transport)."""
    return any(item[0] == errors.ERROR_CODE_KEY for item in exc.trailing_metadata() or ())
