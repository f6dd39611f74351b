"""Endpoints, their channels, and the retry policy the SDK's calls share.

A client holds one :class:`Endpoint` per address it was given. The gRPC channel
of an endpoint is created on first use, inside the event loop that will use it
(grpc.aio channels belong to one loop), and then reused by every call.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tristore import errors
from tristore.channel import CHANNEL_OPTIONS, CONNECT_TIMEOUT_MS
from tristore.client._door import DoorClient, DoorStub, door_address, door_offset
from tristore.credentials import SignedStub, Signer
from tristore.pb import (
    admin_pb2,
    admin_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    objects_pb2,
    objects_pb2_grpc,
)
from tristore.tls import CA_BUNDLE_ENV, INSECURE_ENV

log = logging.getLogger(__name__)

ENDPOINT_ENV = "TRISTORE_ENDPOINT"
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Security:
    """How a client's channels are secured: TLS verifying the server against
    ``ca_pem`` (None: gRPC's built-in public roots), or plaintext."""

    ca_pem: bytes | None = None
    insecure: bool = False

    def channel(self, address: str) -> grpc.aio.Channel:
        if self.insecure:
            return grpc.aio.insecure_channel(address, options=CLIENT_CHANNEL_OPTIONS)
        creds = grpc.ssl_channel_credentials(root_certificates=self.ca_pem)
        return grpc.aio.secure_channel(address, creds, options=CLIENT_CHANNEL_OPTIONS)

    def door_context(self) -> ssl.SSLContext | None:
        """TLS for a node's door (tristore/door.py), verifying it as the channel
        does; None in plaintext."""
        if self.insecure:
            return None
        if self.ca_pem is None:
            return ssl.create_default_context()
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii", "replace"))


def resolve_security(
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Security:
    """TLS unless ``insecure`` (or, when it is None, ``TRISTORE_INSECURE=1``);
    the CA from ``ca_file`` or ``TRISTORE_CA_BUNDLE``, else the public roots."""
    env = os.environ if env is None else env
    if insecure is None:
        insecure = env.get(INSECURE_ENV, "").strip().lower() in _TRUE
    if insecure:
        return Security(insecure=True)
    path = ca_file if ca_file is not None else (env.get(CA_BUNDLE_ENV) or None)
    if path is None:
        return Security()
    try:
        pem = Path(path).expanduser().read_bytes()
    except OSError as e:
        raise errors.InvalidArgument(
            f"CA bundle {path} cannot be read ({e.strerror}); give the cluster's CA "
            f"certificate (PEM) with ca_file=, --ca-bundle or {CA_BUNDLE_ENV}"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise errors.InvalidArgument(f"CA bundle {path} holds no PEM certificate")
    return Security(ca_pem=pem)


#: The shared channel options, plus a short reconnect backoff: gRPC's default
#: grows to two minutes, so a client would keep skipping a node long after it
#: came back.
CLIENT_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    *CHANNEL_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
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
    # The scheme says nothing here: TLS is the default, plaintext needs
    # the insecure switch.
    for scheme in ("http://", "https://"):
        if ep.startswith(scheme):
            ep = ep[len(scheme) :].rstrip("/")
    # gRPC target URIs (dns:///h:p, unix:/path, ipv4:...) are passed through.
    if ep.startswith(("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:")):
        return ep
    host, sep, port = ep.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.InvalidArgument(f"endpoint {ep!r} is not of the form HOST:PORT")
    return ep


class Endpoint:
    """One server address, its channel and stubs (created lazily, then reused)."""

    def __init__(
        self, address: str, security: Security | None = None, signer: Signer | None = None
    ) -> None:
        self.address = address
        self.security = security or Security()
        self.signer = signer
        self._channel: grpc.aio.Channel | None = None
        self._objects: Any = None
        self._admin: Any = None
        self._events: Any = None
        #: Methods this endpoint's server answered UNIMPLEMENTED (an older version).
        self.unimplemented: set[str] = set()
        door = door_address(address, door_offset())
        self._door = DoorClient(door, self.security.door_context) if door else None

    def _open(self) -> None:
        self._channel = self.security.channel(self.address)
        # Every call of these services is signed (tristore.sigv4).
        self._objects = SignedStub(
            objects_pb2_grpc.ObjectServiceStub(self._channel),
            objects_pb2.DESCRIPTOR.services_by_name["ObjectService"],
            self.signer,
        )
        if self._door is not None:
            # The small calls of the hot path on the node's door (tristore/door.py).
            self._objects = DoorStub(self._objects, self._door, self.signer)
        self._admin = SignedStub(
            admin_pb2_grpc.AdminServiceStub(self._channel),
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
            self.signer,
        )
        self._events = SignedStub(
            events_pb2_grpc.EventServiceStub(self._channel),
            events_pb2.DESCRIPTOR.services_by_name["EventService"],
            self.signer,
        )

    def sign(self, method: str, header: Any) -> list[tuple[str, str]] | None:
        """The metadata that signs a client stream of ObjectService ``method``
        whose first message carries ``header`` (None: unsigned)."""
        if self.signer is None:
            return None
        return self.signer.metadata(f"/tristore.v1.ObjectService/{method}", header)

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
        if self._door is not None:
            self._door.close()
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
