"""The one server builder. Every tristore process starts through :func:`serve`.

It gives every process the same things: a grpc.aio server on uvloop with the
metrics-and-errors interceptor, the gRPC health service and reflection, an HTTP
listener with ``/metrics`` and ``/healthz``, and a graceful stop on SIGTERM or
SIGINT (health goes NOT_SERVING, in-flight RPCs get a grace period, then the
process's own ``on_stop`` runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import uvloop
from grpc._cython.cygrpc import ExecuteBatchError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tristore import door, errors, framed, malloc, pipe, tls
from tristore.channel import CHANNEL_OPTIONS, MAX_MESSAGE_BYTES
from tristore.config import ClusterConfig
from tristore.door import Relay
from tristore.metrics import PROCESS_INFO, RPC_HANDLED, RPC_SECONDS

log = logging.getLogger(__name__)

#: What gRPC itself lets a server take in: above MAX_MESSAGE_BYTES, so that the
#: interceptor sees a message that is too large and answers EntityTooLarge
#: (gRPC's own refusal is RESOURCE_EXHAUSTED, which clients take for "slow down").
#: Only messages over this cap still get gRPC's answer.
RECEIVE_CAP_BYTES = 4 * MAX_MESSAGE_BYTES
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", RECEIVE_CAP_BYTES),
    ("grpc.so_reuseport", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


_SVC = "/tristore.v1."
_NODE = frozenset({"node"})
#: The cluster-internal RPCs and the roles that may call them (by full method
#: name, or by service: ``/pkg.Service/``). Every other RPC is public.
INTERNAL_METHODS: dict[str, frozenset[str]] = {
    f"{_SVC}ReplicaService/": _NODE,
    # Replicators of the same cluster tail the change logs.
    f"{_SVC}ReplicaService/ReadLog": frozenset({"node", "replicator"}),
    # SSE-C bodies as stored (ciphertext), for replicators to ship as they are.
    f"{_SVC}ReplicaService/ReadSealedBody": frozenset({"replicator"}),
    f"{_SVC}WitnessService/": _NODE,
    f"{_SVC}ReplicatorAdmin/": _NODE,
    f"{_SVC}AdminService/PutClusterMap": _NODE,
    # A node's own change events, read by the node serving a subscription.
    f"{_SVC}EventService/ReadNodeEvents": _NODE,
}
#: gRPC's own services: neither counted nor checked.
_UNWRAPPED = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    }
)


def internal_roles(method: str) -> frozenset[str] | None:
    """The roles that may call ``method`` (a full gRPC method name), or None
    when it is public."""
    found = INTERNAL_METHODS.get(method)
    if found is None:
        found = INTERNAL_METHODS.get(method.rpartition("/")[0] + "/")
    return found


class _BadMessage:
    """What a request that could not be taken in deserializes to; the handler
    raises ``error`` (InvalidArgument, EntityTooLarge) instead of running."""

    __slots__ = ("error",)

    def __init__(self, error: errors.TristoreError) -> None:
        self.error = error


def _guarded(deserialize: Callable[[bytes], Any] | None, method: str) -> Any:
    """A request deserializer that turns a message over MAX_MESSAGE_BYTES or one
    protobuf cannot parse (a string field that is not UTF-8, say) into a
    _BadMessage, where gRPC would answer INTERNAL or RESOURCE_EXHAUSTED."""
    if deserialize is None:
        return None

    def parse(raw: bytes) -> Any:
        if len(raw) > MAX_MESSAGE_BYTES:
            return _BadMessage(
                errors.EntityTooLarge(
                    f"{method}: a message of {len(raw)} bytes; at most {MAX_MESSAGE_BYTES} "
                    "bytes a message (stream large bodies in chunks)"
                )
            )
        try:
            return deserialize(raw)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the caller's
            return _BadMessage(
                errors.InvalidArgument(
                    f"{method}: malformed request message ({type(exc).__name__}: {exc}); "
                    "string fields must be valid UTF-8"
                )
            )

    return parse


def _checked(request: Any) -> Any:
    if isinstance(request, _BadMessage):
        raise request.error
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _checked(request)


#: The user name of the caller of the RPC being handled ("" when the process
#: checks no signatures, None-like "" too for an anonymous caller): set by the
#: guard, read where a request's effect depends on who made it (a bucket's owner).
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("tristore_caller", default="")


class Guard(Protocol):
    """Authenticates and authorizes calls before their handler runs."""

    def covers(self, method: str) -> bool:
        """Whether calls of ``method`` (a full name) go through :meth:`admit`."""
        ...

    async def admit(
        self, method: str, context: grpc.aio.ServicerContext, message: Any, streamed: bool
    ) -> None:
        """Raise (SignatureDoesNotMatch, AccessDenied, ...) unless the call may
        go on. ``message`` is the request, or (``streamed``) the first message
        of a client stream (None if the stream is empty)."""
        ...

    async def answer_for(self, method: str, exc: Exception) -> Exception:
        """The error the caller of an admitted call that failed with ``exc``
        is told (a caller that may not list a bucket is not told which keys
        are missing from it)."""
        ...


async def _first_then_rest(first: Any, rest: Any) -> AsyncIterator[Any]:
    if first is not None:
        yield first
    async for item in rest:
        yield item


async def _told(guard: Guard | None, full: str, exc: Exception) -> Exception:
    """``exc`` as the guard has the caller told it (as it is without one)."""
    return exc if guard is None else await guard.answer_for(full, exc)


def _method_name(full: str) -> str:
    return full.rsplit("/", 1)[-1] if full else "unknown"


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    if type(exc) is NotImplementedError:
        # A method of the service this server does not serve (the generated
        # base class raises this): UNIMPLEMENTED, as grpc answers on its own,
        # so a client can tell it from a failure and use another method.
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented here")
    if not isinstance(exc, errors.TristoreError):
        log.exception("unhandled error in %s", method, exc_info=exc)
    elif isinstance(exc, errors.InternalError):
        # Raised on purpose, but a bug or damage all the same: an operator
        # should see it without the client's help.
        log.error("%s answered InternalError: %s", method, exc.message)
    err = errors.as_tristore(exc)
    await context.abort(
        err.grpc_status, err.message, trailing_metadata=errors.trailing_metadata(err)
    )


#: Label children by (method, code) and by method: a ``labels()`` lookup takes a
#: lock and builds a key, on every RPC.
_HANDLED: dict[tuple[str, str], Any] = {}
_SECONDS: dict[str, Any] = {}


async def _sent(context: grpc.aio.ServicerContext, item: Any, method: str) -> bool:
    """Send one message of a streamed answer; False when the caller went away
    (it cancelled, or its connection closed under the write): the stream is
    over, and nothing more, not even a status, can reach it. (Yielded from
    the handler instead, grpc.aio would log the failed send as an error with
    a traceback, for every download a client stops reading.)"""
    try:
        await context.write(item)
    except ExecuteBatchError:
        log.debug("%s: the caller went away while its answer streamed", method)
        return False
    return True


def _record(method: str, started: float, context: grpc.aio.ServicerContext) -> None:
    code = context.code() if hasattr(context, "code") else None
    name = code.name if isinstance(code, grpc.StatusCode) else "OK"
    if isinstance(code, int) and not isinstance(code, grpc.StatusCode):
        name = (errors.status_of_number(code) or grpc.StatusCode.UNKNOWN).name
    handled = _HANDLED.get((method, name))
    if handled is None:
        handled = _HANDLED[method, name] = RPC_HANDLED.labels(method, name)
    handled.inc()
    seconds = _SECONDS.get(method)
    if seconds is None:
        seconds = _SECONDS[method] = RPC_SECONDS.labels(method)
    seconds.observe(time.perf_counter() - started)


class Interceptor(grpc.aio.ServerInterceptor):
    """Turns TristoreError into a status with the S3 code in the trailers,
    counts and times every RPC, answers malformed and oversized messages with
    InvalidArgument / EntityTooLarge, and, with ``cluster`` given, lets an
    internal RPC (:data:`INTERNAL_METHODS`) through only for a caller whose
    certificate names one of its roles in this cluster (AccessDenied else)."""

    def __init__(self, cluster: str | None = None, guard: Guard | None = None) -> None:
        #: None: internal RPCs are not checked (plaintext, ``[tls] insecure``).
        self.cluster = cluster
        # The wrapped handler of each method, built once: the services' handlers
        # do not change while the server runs.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        self.guard = guard

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
        full = details.method.decode() if isinstance(details.method, bytes) else details.method
        guard = self.guard if self.guard is not None and self.guard.covers(full) else None
        if guard is None and full in _UNWRAPPED:
            wrapped = handler
        else:
            wrapped = self._wrap(handler, full, guard)
        self._wrapped[details.method] = wrapped
        return wrapped

    def wrapped(self, full: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` of method ``full`` as this interceptor serves it (the door
        runs its calls through this, as gRPC does)."""
        guard = self.guard if self.guard is not None and self.guard.covers(full) else None
        return self._wrap(handler, full, guard)

    def _wrap(
        self, handler: grpc.RpcMethodHandler, full: str, guard: Guard | None
    ) -> grpc.RpcMethodHandler:
        method = _method_name(full)
        roles = internal_roles(full) if self.cluster is not None else None
        cluster = self.cluster or ""
        streamed_in = bool(handler.stream_unary or handler.stream_stream)

        async def admit(request: Any, context: grpc.aio.ServicerContext) -> Any:
            """The request to run the handler with, once the caller's certificate
            (internal RPCs) and the guard (signature, permission) let it in."""
            if roles is not None:
                tls.check_peer(tls.identity_of(context.auth_context()), roles, cluster, method)
            request = _checked_stream(request) if streamed_in else _checked(request)
            if guard is None:
                return request
            if not streamed_in:
                await guard.admit(full, context, request, False)
                return request
            first = await anext(aiter(request), None)
            await guard.admit(full, context, first, True)
            return _first_then_rest(first, request)

        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary

            async def unary_resp(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                try:
                    request = await admit(request, context)
                    return await inner(request, context)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001 - every error becomes a status
                    await _abort(context, await _told(guard, full, exc), method)
                finally:
                    _record(method, started, context)

            behavior: Callable[..., Any] = unary_resp
            factory = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary
                else grpc.stream_unary_rpc_method_handler
            )
        else:
            inner_stream = handler.unary_stream or handler.stream_stream

            async def stream_resp(request: Any, context: grpc.aio.ServicerContext) -> None:
                started = time.perf_counter()
                try:
                    request = await admit(request, context)
                    async with contextlib.aclosing(inner_stream(request, context)) as items:
                        async for item in items:
                            if not await _sent(context, item, method):
                                return
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001 - every error becomes a status
                    await _abort(context, await _told(guard, full, exc), method)
                finally:
                    _record(method, started, context)

            behavior = stream_resp
            factory = (
                grpc.unary_stream_rpc_method_handler
                if handler.unary_stream
                else grpc.stream_stream_rpc_method_handler
            )
        return factory(
            behavior,
            request_deserializer=_guarded(handler.request_deserializer, method),
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
    #: The pipe this process serves on its pipe port (``[tls] pipe_port_offset``):
    #: nodes the replica pipe, witnesses the witness pipe.
    pipe: framed.PipeService[Any, Any] | None = None
    #: Serve the door (tristore/door.py) on ``[tls] door_port_offset``: nodes.
    door: bool = False
    #: Hands some door calls to other processes (a node's write relay).
    door_relay: Relay | None = None
    #: Runs after the listeners are up (start background tasks here).
    on_start: Callable[[], Awaitable[None]] | None = None
    #: Runs after the gRPC server stopped (flush and close state here).
    on_stop: Callable[[], Awaitable[None]] | None = None
    #: Checks signatures and permissions of the calls it covers.
    guard: Guard | None = None
    grace_s: float = 5.0
    #: The cluster's config, for ``[tls]`` (the process's certificate files,
    #: the internal port). None serves plaintext with nothing checked (tests
    #: of the server builder itself).
    config: ClusterConfig | None = None
    #: Set to stop the process as SIGTERM does.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    #: What ``/healthz`` adds while the process serves, degraded ("": all
    #: well), e.g. a node whose disk is full (reads served, writes refused).
    health: Callable[[], str] | None = None
    #: Set before :attr:`stop` to have the process start itself again, with
    #: the same command line and environment, once it has stopped (a node
    #: whose store needs reopening: see node/disk.py).
    restart: str = ""
    _ready: bool = field(default=False, init=False)


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _http_handler(
    spec: ProcessSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        async with asyncio.timeout(5):
            line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
        parts = line.decode("latin-1").split()
        path = parts[1] if len(parts) > 1 else "/"
        if path.startswith("/metrics"):
            body, status, ctype = generate_latest(), "200 OK", CONTENT_TYPE_LATEST
        elif path.startswith("/healthz"):
            ok = spec._ready
            note = spec.health() if ok and spec.health is not None else ""
            body = (
                (f"ok; {note}\n" if note else "ok\n").encode() if ok else b"starting or stopping\n"
            )
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


def _listen(server: grpc.aio.Server, spec: ProcessSpec) -> tls.Reloader | None:
    """Open the public and internal ports; returns the certificate reloader
    (None in plaintext)."""
    cfg = spec.config
    if cfg is None:
        server.add_insecure_port(spec.grpc_addr)
        return None
    internal = cfg.internal_address(spec.grpc_addr)
    if cfg.tls.insecure:
        log.warning(
            "INSECURE: [tls] insecure = true: %s %s serves PLAINTEXT gRPC on %s and %s; "
            "anyone who reaches these ports can read the traffic and call the "
            "cluster-internal services (replica writes, witness records, the cluster map)",
            spec.role,
            spec.name,
            spec.grpc_addr,
            internal,
        )
        server.add_insecure_port(spec.grpc_addr)
        server.add_insecure_port(internal)
        return None
    reloader = tls.Reloader(cfg.tls_files(spec.name))
    server.add_secure_port(spec.grpc_addr, reloader.server_credentials(require_client_cert=False))
    server.add_secure_port(internal, reloader.server_credentials(require_client_cert=True))
    log.info(
        "TLS: public gRPC on %s, internal (mutual TLS, cluster certificates) on %s; "
        "certificate serial %x from %s",
        spec.grpc_addr,
        internal,
        reloader.serial,
        reloader.files.cert,
    )
    return reloader


async def run(spec: ProcessSpec) -> None:
    checked = spec.config is not None and not spec.config.tls.insecure
    interceptor = Interceptor(spec.cluster if checked else None, spec.guard)
    server = grpc.aio.server(interceptors=[interceptor], options=SERVER_OPTIONS)
    recorder = _Recorder(server)
    names = list(spec.register(recorder))
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
    reloader = _listen(server, spec)
    pipes = None
    if spec.pipe is not None and spec.config is not None:
        method = spec.pipe.method
        pipes = framed.PipeServer(
            spec.pipe, spec.cluster, internal_roles(method) if checked else None, reloader
        )
        address = spec.config.pipe_address(spec.grpc_addr)
        try:
            await pipes.start(address)
        except OSError as exc:
            raise RuntimeError(
                f"cannot listen on the pipe port {address} (the gRPC port + [tls] "
                f"pipe_port_offset): {exc.strerror or exc}"
            ) from None
        log.info("pipe %s on %s", method, address)
    doors = await _open_door(spec, interceptor, recorder.handlers, reloader)
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
    if reloader is not None:
        loop.add_signal_handler(signal.SIGHUP, reloader.request_reload)
    await stop.wait()
    log.info(
        "%s %s stopping: draining in-flight requests (%.0fs grace)",
        spec.role,
        spec.name,
        spec.grace_s,
    )
    spec._ready = False
    pipe.close_all()  # peers' long-lived streams end now, not after the grace period
    if pipes is not None:
        pipes.stop()
    if doors is not None:
        doors.stop()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(spec.grace_s)
    http.close()
    if spec.on_stop is not None:
        await spec.on_stop()
    log.info("%s %s stopped", spec.role, spec.name)


class _Recorder:
    """The gRPC server as ``ProcessSpec.register`` sees it: what is registered
    goes to the server, and each method's handler is kept (for the door)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self._server.add_registered_method_handlers(service, handlers)
        for method, handler in handlers.items():
            self.handlers[f"/{service}/{method}"] = handler


async def _open_door(
    spec: ProcessSpec,
    interceptor: Interceptor,
    handlers: dict[str, grpc.RpcMethodHandler],
    reloader: tls.Reloader | None,
) -> framed.PipeServer | None:
    """Listen on the door port (tristore/door.py) when the spec and config ask for it."""
    address = spec.config.door_address(spec.grpc_addr) if spec.config is not None else None
    if not spec.door or address is None:
        return None
    served = {m: interceptor.wrapped(m, h) for m, h in handlers.items() if m in door.METHODS}
    gate = door.Door(served, secure=reloader is not None, relay=spec.door_relay)
    server = framed.PipeServer(
        gate.service(),
        spec.cluster,
        None,  # every call is signed: the guard checks each one
        reloader,
        client_certs=False,
        max_frame=door.MAX_FRAME_BYTES,
    )
    try:
        await server.start(address)
    except OSError as exc:
        raise RuntimeError(
            f"cannot listen on the door port {address} (the gRPC port + [tls] "
            f"door_port_offset; 0 turns the door off): {exc.strerror or exc}"
        ) from None
    log.info("door (%d methods) on %s", len(served), address)
    return server


def setup_logging(name: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s",
    )


#: Allocations of container objects (less deallocations) between two of the
#: cyclic garbage collector's young collections, and young (then middle-aged)
#: collections between two older ones: Python's defaults are 700, 10, 10.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Make Python's cyclic garbage collector cheap on a busy server.

    With Python's defaults, a node under load spent about a sixth of its
    event loop's CPU in the collector (py-spy --native, PUT at c64): every
    700 allocations a young collection, each tenth of those a middle one,
    and the full ones walked every object the process had made at start
    (modules, generated message classes, the config) again and again. Objects
    that live as long as the process are moved out of its reach once the
    process is up (:func:`freeze_startup_objects`); the young generation is
    collected far less often, so most of a call's objects are freed by their
    reference counts before a collection ever looks at them. Cycles are still
    collected, a little later."""
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_objects() -> None:
    """Move every object alive now to the collector's permanent generation
    (``gc.freeze``): the process's startup objects are never walked again."""
    gc.collect()
    gc.freeze()


def set_batch_scheduling() -> bool:
    """Put every thread of this process under Linux's SCHED_BATCH policy
    (``[cluster] sched_batch``); the threads it starts later inherit it.
    Whether it took (not on another OS, or where the policy is refused).

    The processes of a cluster send one another many small messages. Under
    the default policy, a process a message wakes preempts the sender on a
    busy CPU at once, so the sender leaves its event-loop turn half done and
    the receiver finds one message where a moment later it would have found
    several. A SCHED_BATCH process does not preempt on wakeup (the timer tick
    does, as for any process), with the same share of the CPU. Measured on
    the two-core machine of ``bench/`` (six nodes, three witnesses, the
    client), alternating runs: PUT 1 KiB at c64 1,092-1,389/s at 1.07-1.37
    ms of cluster CPU a PUT, against 988-1,074/s at 1.35-1.47 ms."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return False
    param = os.sched_param(0)
    try:
        # This thread first: what it starts from now on inherits the policy.
        os.sched_setscheduler(0, policy, param)
    except OSError as exc:
        log.warning("SCHED_BATCH refused (%s): running under the default policy", exc)
        return False
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return True  # no /proc: the threads started later have it
    for tid in threads:
        try:
            os.sched_setscheduler(tid, policy, param)
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        except OSError as exc:
            log.warning("SCHED_BATCH refused for thread %d (%s)", tid, exc)
    return True


def main(make_spec: Callable[[], Awaitable[ProcessSpec]]) -> None:
    """Build the process's spec inside the loop and serve until SIGTERM."""
    malloc.tune(malloc.SERVER)
    tune_gc()

    spec: ProcessSpec | None = None

    async def go() -> None:
        nonlocal spec
        spec = await make_spec()
        if spec.config is not None and spec.config.cluster.sched_batch:
            set_batch_scheduling()
        freeze_startup_objects()
        await run(spec)

    uvloop.run(go())
    if spec is not None and spec.restart:
        reexec(spec.restart)


def reexec(why: str) -> None:
    """Start this process again in place: the same pid (launchers, pid files
    and supervisors still see it), command line and environment. Every file
    it held is closed on exec (Python and RocksDB open them close-on-exec), so
    the new image opens the store afresh."""
    log.warning("restarting in place: %s", why)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


async def aiter_items(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def cluster_channel(
    cfg: ClusterConfig, me: str, address: str, internal: bool = True
) -> grpc.aio.Channel:
    """A channel from this cluster's process ``me`` to the process whose gRPC
    (public) address is ``address``: to its internal port with ``me``'s
    certificate (mutual TLS), or with ``internal=False`` to that public port
    itself (a remote cluster's nodes). Plaintext with ``[tls] insecure``. The
    files are read now: a channel made after a renewal uses the new ones."""
    target = cfg.internal_address(address) if internal else address
    if cfg.tls.insecure:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    creds = tls.channel_credentials(cfg.tls_files(me))
    return grpc.aio.secure_channel(target, creds, options=CHANNEL_OPTIONS)


def cluster_pipe(
    cfg: ClusterConfig,
    me: str,
    address: str,
    method: str,
    parse: Callable[[bytes], Any],
    fallback: pipe.Opener[Any, Any] | None = None,
) -> pipe.Opener[Any, Any]:
    """Opens pipe streams from this cluster's process ``me`` to the pipe port of
    the process whose gRPC (public) address is ``address`` (tristore/framed.py):
    mutual TLS with ``me``'s certificate, read at each new stream; plaintext
    with ``[tls] insecure``. ``fallback``: where a stream goes when nothing
    listens on the pipe port (:class:`tristore.framed.FramedConn`)."""

    def context() -> Any:
        return None if cfg.tls.insecure else framed.client_context(cfg.tls_files(me))

    return framed.opener(cfg.pipe_address(address), method, parse, context, fallback)


def peer_pipe(
    cfg: ClusterConfig,
    me: str,
    address: str,
    method: str,
    parse: Callable[[bytes], Any],
    grpc_pipe: Callable[..., Any],
    simulated: bool,
) -> pipe.Opener[Any, Any]:
    """How ``me`` opens its pipe to a peer: :func:`cluster_pipe` (the peer's
    pipe port; the gRPC stream method ``grpc_pipe`` of a peer that has none,
    one of an older version during a rolling upgrade), or ``grpc_pipe`` alone
    where the channels are made elsewhere (``simulated``: the deterministic
    simulation, tests/sim/, whose network carries gRPC calls only)."""
    over_grpc: pipe.Opener[Any, Any] = pipe.GrpcConn.opener(grpc_pipe)
    if simulated:
        return over_grpc
    return cluster_pipe(cfg, me, address, method, parse, fallback=over_grpc)


def private_files(data_dir: Path | None = None) -> None:
    """Keep what a process writes to itself: a umask of 077 (new files 0600,
    new directories 0700, RocksDB's included), and its data directory, the
    cluster's data directory above it and what they hold tightened to that
    if an earlier run or a launcher made them looser."""
    os.umask(0o077)
    if data_dir is None:
        return
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    loose = 0
    for top in (data_dir.parent, data_dir):
        loose += _tighten(top, 0o700)
    for root, dirs, files in os.walk(data_dir):
        for d in dirs:
            loose += _tighten(Path(root) / d, 0o700)
        for f in files:
            loose += _tighten(Path(root) / f, 0o600)
    if loose:
        log.warning("tightened the modes of %d paths under %s (0700 / 0600)", loose, data_dir)


def _tighten(path: Path, mode: int) -> int:
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
            return 0
        if stat.S_IMODE(st.st_mode) & ~mode:
            path.chmod(stat.S_IMODE(st.st_mode) & mode)
            return 1
    except FileNotFoundError:
        pass
    return 0
