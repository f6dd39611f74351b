"""Metrics every process exports (per-RPC, from the one server interceptor)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_HANDLED = Counter(
    "tristore_rpc_handled_total",
    "RPCs completed by the server, by method and gRPC status code.",
    ["method", "code"],
)
RPC_SECONDS = Histogram(
    "tristore_rpc_handling_seconds",
    "Time from an RPC's arrival to its completion, by method.",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROCESS_INFO = Gauge(
    "tristore_process_info",
    "Always 1; labels say what this process is.",
    ["name", "role", "cluster", "az"],
)
PIPE_CONNECTIONS = Gauge(
    "tristore_pipe_connections",
    "Pipe streams open on this process's pipe port (tristore/framed.py): one "
    "from each peer that sends it commits, reads, checks or records.",
)
DOOR_CONNECTIONS = Gauge(
    "tristore_door_connections",
    "Client streams open on this node's door port (tristore/door.py): one from "
    "each SDK client that made a small call here (their calls are counted in "
    "tristore_rpc_handled_total as gRPC calls are).",
)
PIPE_FALLBACKS = Counter(
    "tristore_pipe_fallbacks_total",
    "Pipe streams this process opened on a peer's gRPC Pipe method because "
    "nothing listened on the peer's pipe port (a peer of an older version, "
    "during a rolling upgrade; or a peer that is down, whose gRPC port refuses too).",
)
PIPE_REFUSED = Counter(
    "tristore_pipe_refused_total",
    "Pipe streams this process's pipe port refused, by reason: identity (the "
    "caller's certificate names no role that may call the pipe) or method.",
    ["reason"],
)
