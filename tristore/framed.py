"""Pipes on a plain (TLS) stream: length-prefixed protobuf messages, no gRPC.

The pipes of :mod:`tristore.pipe` carry almost every message between cluster
processes (replica commits and reads, witness checks and records). On a gRPC
stream each message costs each side ~0.4 ms of CPU on a small machine, in the
grpc.aio layers around it; on an asyncio TLS stream it costs ~0.1 ms. So every
process that serves a pipe also listens on its **pipe port** (``grpc`` port +
``[tls] pipe_port_offset``) and cluster peers open their pipes there.

The stream: mutual TLS with cluster certificates (plaintext with ``[tls]
insecure``), then frames of a 4-byte big-endian length and that many bytes.
The first frame the client sends is the full gRPC method name of the pipe it
wants (``/tristore.v1.ReplicaService/Pipe``); the server's first frame answers
it: empty when it serves that pipe to this caller, otherwise why not (the
caller's certificate does not name a role :mod:`tristore.server` lets call the
method, or the process serves another pipe). Every later frame is one request
message (client to server) or one answer message (server to client), the
``PipeRequest``/``PipeResponse`` pairs of the proto files, answers in any order,
matched by ``id`` as on the gRPC stream. The gRPC ``Pipe`` methods stay served,
the same messages on a gRPC stream (the deterministic simulation uses them).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from tristore import tls
from tristore.errors import AccessDenied
from tristore.metrics import DOOR_CONNECTIONS, PIPE_CONNECTIONS, PIPE_FALLBACKS, PIPE_REFUSED
from tristore.pipe import Conn, Opener

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
#: The largest frame either side takes (a batch of commits with inline bodies
#: stays well below it); a longer one breaks the stream.
MAX_FRAME_BYTES = 256 << 20
CONNECT_TIMEOUT_S = 5.0
HANDSHAKE_TIMEOUT_S = 10.0

#: The pipes there are (the gRPC method names their first frame gives).
REPLICA_PIPE = "/tristore.v1.ReplicaService/Pipe"
WITNESS_PIPE = "/tristore.v1.WitnessService/Pipe"

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def frame(data: bytes) -> bytes:
    return _HEADER.pack(len(data)) + data


class FrameError(Exception):
    """The peer sent something that is not a frame of this protocol."""


class _Frames:
    """Splits what arrives on a stream into frames (at most ``limit`` bytes each)."""

    __slots__ = ("_buf", "_limit")

    def __init__(self, limit: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        off, end = 0, len(buf)
        while end - off >= 4:
            (n,) = _HEADER.unpack_from(buf, off)
            if n > self._limit:
                raise FrameError(f"a frame of {n} bytes (the most is {self._limit})")
            if end - off - 4 < n:
                break
            out.append(bytes(buf[off + 4 : off + 4 + n]))
            off += 4 + n
        if off:
            del buf[:off]
        return out


class _Corked:
    """Writes to a transport, coalesced: what one event-loop turn wrote goes
    out in one write at the turn's end (one TLS record and one system call
    where each frame on its own would cost both)."""

    __slots__ = ("_loop", "_parts", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._parts: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._parts:
            self._loop.call_soon(self.flush)
        self._parts.append(data)

    def flush(self) -> None:
        parts, self._parts = self._parts, []
        if parts and not self.transport.is_closing():
            self.transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        """Close the transport once what was written is sent."""
        self.flush()
        self.transport.close()


# --- the client end -----------------------------------------------------------


def client_context(files: tls.Files) -> ssl.SSLContext:
    """TLS for dialling a peer's pipe port: the peer verified against the CA,
    this process's certificate presented. The files are read now."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    if files.cert is not None and files.key is not None:
        ctx.load_cert_chain(str(files.cert), str(files.key))
    return ctx


def _framed(req: Any) -> bytes:
    return frame(req.SerializeToString())


class FramedConn(asyncio.Protocol, Generic[Req, Resp]):
    """The client end of one pipe stream (the ``Conn`` of :class:`tristore.pipe.PipeClient`).

    Requests sent before the stream is up wait in order and go out once it is.
    Each answer goes to ``on_answer``; when the stream fails or ends,
    ``on_broken`` gets why, once.

    ``fallback`` opens the same pipe another way (the peer's gRPC ``Pipe``
    method): taken when nothing listens on the pipe port (the connection is
    refused), as on a peer of a version from before pipe ports, during a
    rolling upgrade. The requests that waited go there, in order."""

    def __init__(
        self,
        method: str,
        parse: Callable[[bytes], Resp],
        on_answer: Callable[[Resp], None],
        on_broken: Callable[[str], None],
        fallback: Opener[Req, Resp] | None = None,
    ) -> None:
        self._parse = parse
        self._on_answer = on_answer
        self._on_broken = on_broken
        self._frames = _Frames()
        self._transport: asyncio.Transport | None = None
        self._out: _Corked | None = None
        self._greeting = frame(method.encode())
        #: Requests sent before the stream is up, in order: framed once it is,
        #: or handed to the fallback as they are.
        self._early: list[Req] = []
        self._fallback = fallback
        self._via: Conn[Req] | None = None
        self._greeted = False
        #: The stream was set up: what was sent on it may have reached the server.
        self._reached = False
        self._over = False
        self._connecting: asyncio.Task[Any] | None = None
        self._peer = ""

    def start(self, address: str, ctx: ssl.SSLContext | None) -> None:
        self._peer = address
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        loop = asyncio.get_running_loop()

        async def connect() -> None:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S + HANDSHAKE_TIMEOUT_S):
                    await loop.create_connection(
                        lambda: self,
                        host,
                        int(port),
                        ssl=ctx,
                        server_hostname=host if ctx is not None else None,
                        ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if ctx is not None else None,
                    )
            except asyncio.CancelledError:
                self._broken("the pipe was closed")
            except ConnectionRefusedError as exc:
                if self._fallback is None or self._over:
                    self._broken(f"cannot reach the pipe port {address}: {exc}")
                    return
                PIPE_FALLBACKS.inc()
                self._via = self._fallback(self._on_answer, self._broken)
                for req in self._early:
                    self._via.send(req)
                self._early = []
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                self._broken(f"cannot reach the pipe port {address}: {exc}")

        self._connecting = loop.create_task(connect())

    @property
    def greeted(self) -> bool:
        """Whether the server accepted the stream (answered its first frame)."""
        return self._greeted

    @property
    def reached(self) -> bool:
        """Whether the stream was set up (TCP and TLS): requests sent on it
        may have reached the server, even if it never answered."""
        return self._reached

    def send(self, req: Req) -> None:
        if self._via is not None:
            self._via.send(req)
            return
        if self._out is not None:
            self._out.write(_framed(req))
        elif not self._over:
            self._early.append(req)

    def close(self) -> None:
        self._broken("the pipe was closed")
        if self._via is not None:
            self._via.close()
        elif self._transport is not None:
            self._transport.abort()
        elif self._connecting is not None:
            self._connecting.cancel()

    def _broken(self, why: str) -> None:
        if not self._over:
            self._over = True
            self._on_broken(why)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's TLS transport is not an asyncio.Transport subclass, but is one)
        transport = cast(asyncio.Transport, transport)
        if self._over:
            transport.abort()
            return
        self._transport = transport
        self._out = _Corked(transport)
        self._reached = True
        transport.write(b"".join([self._greeting, *map(_framed, self._early)]))
        self._early = []

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._frames.feed(data)
            for body in frames:
                if not self._greeted:
                    if body:
                        raise FrameError(f"{self._peer} refused the pipe: {body.decode()}")
                    self._greeted = True
                    continue
                self._on_answer(self._parse(body))
        except Exception as exc:  # noqa: BLE001 - a stream we cannot read is broken
            self._broken(f"{type(exc).__name__}: {exc}")
            if self._transport is not None:
                self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = self._out = None
        self._broken(f"the stream ended: {exc}" if exc else "the stream ended")


# --- the serving end ----------------------------------------------------------


@dataclass(frozen=True)
class PipeService(Generic[Req, Resp]):
    """What a process serves on its pipe port: one pipe method."""

    #: The full gRPC name of the method (its roles in :data:`tristore.server.INTERNAL_METHODS`).
    method: str
    parse: Callable[[bytes], Req]
    #: Answers one request: at once, or as an awaitable (which must answer, not
    #: raise: a failure is part of its answer). With ``with_peer``, called with
    #: the caller's ``host:port`` too.
    handle: Callable[..., Resp | Awaitable[Resp]]
    with_peer: bool = False


#: TCP keepalive on every stream a pipe or door port takes: a peer whose host
#: died (no FIN, no RST) is found out in about KEEPALIVE_IDLE_S +
#: KEEPALIVE_INTERVAL_S * KEEPALIVE_PROBES seconds and its stream closed,
#: instead of being held open for good.
KEEPALIVE_IDLE_S = 60
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_PROBES = 6


def _keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux; elsewhere the system's timings
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
    except OSError as exc:
        log.debug("no TCP keepalive on a pipe stream: %s", exc)


def server_context(files: tls.Files, client_certs: bool = True) -> ssl.SSLContext:
    """TLS for the pipe port: this process's certificate, a client certificate
    from the CA required (``client_certs``; else none is asked: the door)."""
    assert files.cert is not None and files.key is not None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    ctx.load_cert_chain(str(files.cert), str(files.key))
    ctx.verify_mode = ssl.CERT_REQUIRED if client_certs else ssl.CERT_NONE
    return ctx


class _Serving(asyncio.Protocol):
    def __init__(self, server: PipeServer) -> None:
        self._server = server
        self._frames = _Frames(server.max_frame)
        self._transport: asyncio.Transport | None = None
        self._out: _Corked | None = None
        self._greeted = False
        self._busy: set[asyncio.Future[Any]] = set()
        self._stopping = False
        self._caller = "?"
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # as above
        self._transport = transport
        self._out = _Corked(transport)
        peer = transport.get_extra_info("peername")
        self._caller = f"{peer[0]}:{peer[1]}" if peer else "?"
        _keepalive(transport)
        self._server.conns.add(self)
        self._server.gauge.inc()

    def _refuse(self, why: str, reason: str) -> None:
        assert self._transport is not None
        PIPE_REFUSED.labels(reason).inc()
        log.warning("pipe from %s refused: %s", self._caller, why)
        self._transport.write(frame(why.encode()))
        self._transport.close()

    def _greet(self, method: str) -> bool:
        srv = self._server
        assert self._transport is not None
        if method != srv.service.method:
            self._refuse(f"this port serves {srv.service.method}, not {method!r}", "method")
            return False
        if srv.roles is not None:
            ident = tls.peer_identity(self._transport.get_extra_info("peercert"))
            try:
                tls.check_peer(ident, srv.roles, srv.cluster, method)
            except AccessDenied as exc:
                self._refuse(str(exc), "identity")
                return False
        self._transport.write(frame(b""))
        self._greeted = True
        return True

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self._stopping:
            return
        try:
            bodies = self._frames.feed(data)
        except FrameError as exc:
            log.warning("pipe from %s broken: %s", self._caller, exc)
            transport.abort()
            return
        service = self._server.service
        out = self._out
        assert out is not None
        for body in bodies:
            if not self._greeted:
                if not self._greet(body.decode("utf-8", "replace")):
                    return
                continue
            try:
                req = service.parse(body)
            except Exception as exc:  # noqa: BLE001 - a message we cannot parse breaks the stream
                log.warning(
                    "pipe from %s sent a message that does not parse: %s", self._caller, exc
                )
                transport.abort()
                return
            answer = service.handle(req, self._caller) if service.with_peer else service.handle(req)
            if asyncio.iscoroutine(answer):
                task = self._loop.create_task(answer)
                self._busy.add(task)
                task.add_done_callback(self._finished)
            else:
                out.write(frame(answer.SerializeToString()))  # type: ignore[union-attr]

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._busy.discard(task)
        if task.cancelled():
            pass
        elif (exc := task.exception()) is not None:
            log.error("a pipe request failed without an answer", exc_info=exc)
        elif self._out is not None and not self._out.transport.is_closing():
            self._out.write(frame(task.result().SerializeToString()))
        if self._stopping and not self._busy and self._out is not None:
            self._out.close()

    def stop(self) -> None:
        """Read no more; close once every request taken is answered."""
        self._stopping = True
        if self._out is not None:
            if not self._busy:
                self._out.close()
            else:
                self._out.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = self._out = None
        self._server.conns.discard(self)
        self._server.gauge.dec()
        for task in list(self._busy):
            task.cancel()


class PipeServer:
    """The pipe port of one process."""

    def __init__(
        self,
        service: PipeService[Any, Any],
        cluster: str,
        roles: frozenset[str] | None,
        reloader: tls.Reloader | None,
        *,
        client_certs: bool = True,
        max_frame: int = MAX_FRAME_BYTES,
    ) -> None:
        self.service = service
        self.cluster = cluster
        #: None: every caller is let in (plaintext, ``[tls] insecure``; the door,
        #: whose every call is signed).
        self.roles = roles
        self.max_frame = max_frame
        #: Open streams: the door's client streams apart from the pipes.
        self.gauge = PIPE_CONNECTIONS if client_certs else DOOR_CONNECTIONS
        self._reloader = reloader
        self._ctx = server_context(reloader.files, client_certs) if reloader is not None else None
        self._generation = reloader.generation if reloader is not None else 0
        self.conns: set[_Serving] = set()
        self._server: asyncio.base_events.Server | None = None

    def _accept(self) -> _Serving:
        # A renewed certificate is served from the next handshake on (the one
        # this connection makes already started with the context it had).
        r = self._reloader
        if r is not None and self._ctx is not None:
            r.refresh()
            if r.generation != self._generation:
                self._generation = r.generation
                try:
                    self._ctx.load_cert_chain(str(r.files.cert), str(r.files.key))
                    self._ctx.load_verify_locations(cafile=str(r.files.ca))
                except (OSError, ssl.SSLError) as exc:
                    log.warning("the pipe port keeps its old certificate: %s", exc)
        return _Serving(self)

    async def start(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._server = await asyncio.get_running_loop().create_server(
            self._accept,
            host.strip("[]") or "127.0.0.1",
            int(port),
            ssl=self._ctx,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if self._ctx is not None else None,
            reuse_address=True,
        )

    def stop(self) -> None:
        """Take no new streams; each open one answers what it took and ends."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.conns):
            conn.stop()


def opener(
    address: str,
    method: str,
    parse: Callable[[bytes], Resp],
    context: Callable[[], ssl.SSLContext | None],
    fallback: Opener[Any, Resp] | None = None,
) -> Callable[[Callable[[Resp], None], Callable[[str], None]], FramedConn[Any, Resp]]:
    """Opens streams to the pipe port ``address`` (the ``open`` of a
    :class:`tristore.pipe.PipeClient`); ``context`` gives the TLS of each new
    stream (None: plaintext), so a stream opened after a renewal uses the new
    files; ``fallback``: see :class:`FramedConn`."""

    def open(on_answer: Callable[[Resp], None], on_broken: Callable[[str], None]) -> Any:
        conn: FramedConn[Any, Resp] = FramedConn(method, parse, on_answer, on_broken, fallback)
        conn.start(address, context())
        return conn

    return open
