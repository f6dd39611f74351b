"""Options of every gRPC channel tristore opens: a process's channels to its
peers (:mod:`tristore.server`) and the SDK's (:mod:`tristore.client`).

Apart from the server builder so that the SDK, and the CLI with it, need not
import the server's modules (health, reflection, Prometheus, uvloop).
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: How long one attempt to connect (TCP, TLS handshake, HTTP/2 settings) may take.
CONNECT_TIMEOUT_MS = 5_000
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    # A restarted peer must be seen within a second, not after gRPC's default
    # reconnect backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    # gRPC takes this as the time one connection attempt may take (not as a
    # bound on the backoff): a TLS handshake on a busy host needs more than
    # the 100 ms it once was, or dozens of new connections at once all time out.
    ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
