"""The one server builder. Every tristore process starts through :func:`serve`.

It gives every process the same things: a grpc.aio server on uvloop with the
metrics-and-errors interceptor, the gRPC health service and reflection, an HTTP
listener with ``/metrics`` and ``/healthz``, and a graceful stop on SIGTERM or
SIGINT (health goes NOT_SERVING, in-flight RPCs get a grace period, then the
process's own ``on_stop`` runs).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tristore import errors, pipe
from tristore.metrics import PROCESS_INFO, RPC_HANDLED, RPC_SECONDS

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
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
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def _method_name(full: str) -> str:
    return full.rsplit("/", 1)[-1] if full else "unknown"


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    if not isinstance(exc, errors.TristoreError):
        log.exception("unhandled error in %s", method, exc_info=exc)
    err = errors.as_tristore(exc)
    await context.abort(
        err.grpc_status, err.message, trailing_metadata=errors.trailing_metadata(err)
    )


#: Label children by (method, code) and by method: a ``labels()`` lookup takes a
#: lock and builds a key, on every RPC.
_HANDLED: dict[tuple[str, str], Any] = {}
_SECONDS: dict[str, Any] = {}


def _record(method: str, started: float, context: grpc.aio.ServicerContext) -> None:
    code = context.code() if hasattr(context, "code") else None
    name = code.name if isinstance(code, grpc.StatusCode) else "OK"
    if isinstance(code, int) and not isinstance(code, grpc.StatusCode):
        name = next((s.name for s in grpc.StatusCode if s.value[0] == code), "UNKNOWN")
    handled = _HANDLED.get((method, name))
    if handled is None:
        handled = _HANDLED[method, name] = RPC_HANDLED.labels(method, name)
    handled.inc()
    seconds = _SECONDS.get(method)
    if seconds is None:
        seconds = _SECONDS[method] = RPC_SECONDS.labels(method)
    seconds.observe(time.perf_counter() - started)


class Interceptor(grpc.aio.ServerInterceptor):
    """Turns TristoreError into a status with the S3 code in the trailers, and
    counts and times every RPC."""

    def __init__(self) -> None:
        # The wrapped handler of each method, built once: the services' handlers
        # do not change while the server runs.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        wrapped = self._wrapped.get(details.method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        if handler is None:
            return handler
        wrapped = self._wrap(handler, _method_name(details.method))
        self._wrapped[details.method] = wrapped
        return wrapped

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if method in ("Check", "Watch", "ServerReflectionInfo"):
            return handler

        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary

            async def unary_resp(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                try:
                    return await inner(request, context)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001 - every error becomes a status
                    await _abort(context, exc, method)
                finally:
                    _record(method, started, context)

            factory = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary
                else grpc.stream_unary_rpc_method_handler
            )
        else:
            inner_stream = handler.unary_stream or handler.stream_stream

            async def unary_resp(request: Any, context: grpc.aio.ServicerContext) -> Any:  # type: ignore[misc]
                started = time.perf_counter()
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001 - every error becomes a status
                    await _abort(context, exc, method)
                finally:
                    _record(method, started, context)

            factory = (
                grpc.unary_stream_rpc_method_handler
                if handler.unary_stream
                else grpc.stream_stream_rpc_method_handler
            )
        return factory(
            unary_resp,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclass
class ProcessSpec:
    name: str
    role: str
    grpc_addr: str
    metrics_addr: str
    cluster: str = ""
    az: str = ""
    #: Adds servicers to the server; returns the full names of the services.
    register: Callable[[grpc.aio.Server], Iterable[str]] = lambda _s: ()
    #: Runs after the listeners are up (start background tasks here).
    on_start: Callable[[], Awaitable[None]] | None = None
    #: Runs after the gRPC server stopped (flush and close state here).
    on_stop: Callable[[], Awaitable[None]] | None = None
    grace_s: float = 5.0
    #: Set to stop the process as SIGTERM does.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _ready: bool = field(default=False, init=False)


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _http_handler(
    spec: ProcessSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
        while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
            pass
        parts = line.decode("latin-1").split()
        path = parts[1] if len(parts) > 1 else "/"
        if path.startswith("/metrics"):
            body, status, ctype = generate_latest(), "200 OK", CONTENT_TYPE_LATEST
        elif path.startswith("/healthz"):
            ok = spec._ready
            body = b"ok\n" if ok else b"starting or stopping\n"
            status, ctype = ("200 OK" if ok else "503 Service Unavailable"), "text/plain"
        else:
            body, status, ctype = (
                b"not found: try /metrics or /healthz\n",
                "404 Not Found",
                "text/plain",
            )
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def run(spec: ProcessSpec) -> None:
    server = grpc.aio.server(interceptors=[Interceptor()], options=SERVER_OPTIONS)
    names = list(spec.register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    server.add_insecure_port(spec.grpc_addr)
    host, port = _split(spec.metrics_addr)
    http = await asyncio.start_server(lambda r, w: _http_handler(spec, r, w), host, port)
    await server.start()
    PROCESS_INFO.labels(spec.name, spec.role, spec.cluster, spec.az).set(1)
    if spec.on_start is not None:
        await spec.on_start()
    for svc in ["", *names]:
        await health_servicer.set(svc, health_pb2.HealthCheckResponse.SERVING)
    spec._ready = True
    log.info(
        "%s %s serving gRPC on %s, metrics on http://%s/metrics",
        spec.role,
        spec.name,
        spec.grpc_addr,
        spec.metrics_addr,
    )

    stop = spec.stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(
        "%s %s stopping: draining in-flight requests (%.0fs grace)",
        spec.role,
        spec.name,
        spec.grace_s,
    )
    spec._ready = False
    pipe.close_all()  # peers' long-lived streams end now, not after the grace period
    await health_servicer.enter_graceful_shutdown()
    await server.stop(spec.grace_s)
    http.close()
    if spec.on_stop is not None:
        await spec.on_stop()
    log.info("%s %s stopped", spec.role, spec.name)


def setup_logging(name: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s",
    )


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Buffers below this come from the heap, never from a fresh mmap of their own.
MALLOC_MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap kept for reuse rather than given back.
MALLOC_TRIM_THRESHOLD = 64 * 1024 * 1024


def tune_malloc() -> bool:
    """Keep glibc from mapping and unmapping a fresh region for each body
    chunk. Chunks (1 MiB) and their copies in protobuf messages sit above
    glibc's default mmap and trim thresholds, so each one was a new mapping
    whose pages the kernel faulted in and zeroed, then unmapped: about a third
    of a node's CPU on a large GET. Returns whether the settings took (not on
    other C libraries, which are left as they are)."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) == 1
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD) == 1)


def main(make_spec: Callable[[], Awaitable[ProcessSpec]]) -> None:
    """Build the process's spec inside the loop and serve until SIGTERM."""
    tune_malloc()

    async def go() -> None:
        await run(await make_spec())

    uvloop.run(go())


async def aiter_items(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
