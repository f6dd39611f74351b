"""The client end of the door (tristore/door.py): a node's small unary calls
on one long-lived TLS stream instead of one gRPC call each.

An endpoint's :class:`DoorStub` stands in for its ObjectService stub. A call of
one of :data:`tristore.door.METHODS` is signed as its gRPC twin is and sent on
the endpoint's door stream (opened on first use at the gRPC port +
``TRISTORE_DOOR_PORT_OFFSET``, default ``[tls] door_port_offset``); its answer
comes back as gRPC's would, and a refusal raises the ``grpc.aio.AioRpcError``
gRPC would raise, so retries, failover and error mapping are the same. When
nothing listens on the door port (a node of an older version, a door turned
off, a port not published), or what answers there is no door, or nothing
answers within :data:`DOOR_GREETING_TIMEOUT_S`, the endpoint's calls go over
gRPC for :data:`RETRY_DOOR_S`; the calls that waited on that stream go there
at once only if none can have left (a refused connection), else they fail as
from a broken connection and the caller's retry sends them (a PUT as a
resend). A call without a deadline and every other method always use gRPC.

A node that hands small writes to one of the cluster's write coordinators
(node/relay.py) names it in the answer (:data:`tristore.door.WRITE_HINT`):
the endpoint then sends its small writes (:data:`tristore.door.WRITES`) to
that node's door itself, one hop less for both, while that door answers; when
it refuses a stream (the node went away) they go to the endpoint's own door
again, which relays them or names another coordinator. ``TRISTORE_WRITE_HINTS=0``
ignores the hints (every write goes to the endpoint).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from tristore import door, errors, malloc, tls
from tristore.loops import LoopBound, Timeout
from tristore.pb import objects_pb2

log = logging.getLogger(__name__)

DOOR_OFFSET_ENV = "TRISTORE_DOOR_PORT_OFFSET"
WRITE_HINTS_ENV = "TRISTORE_WRITE_HINTS"
#: After a node's door port refused a stream, its calls go over gRPC for this
#: long before the door is tried again.
RETRY_DOOR_S = 30.0
#: A door stream the server has not taken this long after it was opened (a
#: port that holds connections and says nothing, a hung process) is given up,
#: its calls sent over gRPC.
DOOR_GREETING_TIMEOUT_S = 3.0


def door_offset(env: Mapping[str, str] | None = None) -> int:
    """The door port's offset from the gRPC port (0: no door)."""
    raw = (os.environ if env is None else env).get(DOOR_OFFSET_ENV, "").strip()
    if not raw:
        return tls.DOOR_PORT_OFFSET
    if not raw.isdigit() or int(raw) > 65534:
        log.warning("%s=%r is not a port offset (0-65534): no door", DOOR_OFFSET_ENV, raw)
        return 0
    return int(raw)


def door_address(address: str, offset: int) -> str | None:
    """The door of the gRPC endpoint ``address`` (None: none, e.g. a target URI)."""
    host, sep, port = address.rpartition(":")
    if not offset or not sep or not host or not port.isdigit() or "/" in address:
        return None
    if int(port) + offset > 65535:
        return None
    return tls.internal_address(address, offset)


class _NoDoor(Exception):
    """Nothing listens on the door port."""


def _rpc_error(code: grpc.StatusCode, details: str, trailers: Any = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details=details
    )


_SERVICE = objects_pb2.DESCRIPTOR.services_by_name["ObjectService"]


class _Stream:
    """One door stream and the calls waiting on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: dict[int, asyncio.Future[objects_pb2.DoorAnswer]] = {}
        self.conn: Any = None
        self.broken = False
        #: When the last answer arrived (loop time; 0: none yet).
        self.heard = 0.0
        #: Called when the stream ends before the server accepted it.
        self.on_no_door: Callable[[], None] | None = None

    def answered(self, answer: objects_pb2.DoorAnswer) -> None:
        self.heard = self.loop.time()
        fut = self.waiting.pop(answer.id, None)
        if fut is not None and not fut.done():
            fut.set_result(answer)

    def fail(self, why: str | BaseException) -> None:
        if self.broken:
            return
        self.broken = True
        if self.on_no_door is not None and self.conn is not None and not self.conn.greeted:
            # It ended before the server took it: no door there (another
            # server on the port, a door that refused the stream, a hung
            # one): the endpoint's calls go over gRPC. Those waiting go there
            # at once only if none of them can have reached a server; else
            # they fail as from a broken connection, and the caller's retry
            # (which tells a PUT's server it is one) sends them again.
            self.on_no_door()
            if not self.conn.reached:
                why = _NoDoor()
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(
                    why
                    if isinstance(why, BaseException)
                    else _rpc_error(grpc.StatusCode.UNAVAILABLE, f"the door stream broke: {why}")
                )
        self.waiting.clear()
        if self.conn is not None:
            self.conn.close()


class _Refused:
    """What a door stream falls back to when the port refuses it: the stream
    ends before it reached a server, so its calls go over gRPC instead."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    def send(self, call: objects_pb2.DoorCall) -> None:
        self._stream.fail("the door port refused the connection")

    def close(self) -> None:
        pass


class DoorClient:
    """The door of one node: one stream at a time, opened on first use."""

    def __init__(self, address: str, context: Callable[[], ssl.SSLContext | None]) -> None:
        self.address = address
        self._context = context
        self._ids = itertools.count(1)
        self._loop = LoopBound()
        self._stream: _Stream | None = None
        self._off_until = 0.0
        #: The door of the write coordinator this node's answers named, and
        #: the gRPC address they named it by.
        self._writes: DoorClient | None = None
        self._hint = ""
        #: A hint whose door broke, and until when it is not taken again.
        self._shunned = ("", 0.0)
        self._retired: list[DoorClient] = []
        self._follow = os.environ.get(WRITE_HINTS_ENV, "").strip() != "0"

    @property
    def usable(self) -> bool:
        return time.monotonic() >= self._off_until

    def for_writes(self) -> DoorClient:
        """The door this endpoint's small writes go to: the write
        coordinator's this node named, while it takes streams; else its own."""
        writes = self._writes
        return writes if writes is not None and writes.usable else self

    def note(self, answer: objects_pb2.DoorAnswer) -> None:
        """Take the write coordinator an answer names (its gRPC address),
        unless its door broke with a call on it in the last RETRY_DOOR_S."""
        for t in answer.trailers:
            if t.key == door.WRITE_HINT and t.value != self._hint and self._follow:
                if t.value == self._shunned[0] and time.monotonic() < self._shunned[1]:
                    return
                address = door_address(t.value, door_offset())
                if address is None or address == self.address:
                    return
                if self._writes is not None:
                    self._retire(self._writes)
                self._hint = t.value
                self._writes = DoorClient(address, self._context)
                log.debug("small writes of %s go to %s", self.address, address)

    def forget_writes(self, writes: DoorClient) -> None:
        """``writes``, the coordinator's door, broke with a call on it: the
        writes go to this node for RETRY_DOOR_S (it relays them, runs them
        or names another coordinator), as they do while a door that refused
        a stream is skipped."""
        if self._writes is writes:
            self._shunned = (self._hint, time.monotonic() + RETRY_DOOR_S)
            self._writes, self._hint = None, ""
            self._retire(writes)

    def _retire(self, writes: DoorClient) -> None:
        """Close a coordinator's door once no call waits on it (a hint that
        changed leaves calls in flight on the door it replaced)."""
        self._retired.append(writes)
        self._retired = [w for w in self._retired if not w.idle_close()]

    def idle_close(self) -> bool:
        """Close when no call waits on this door; whether it did."""
        if self._stream is not None and self._stream.waiting:
            return False
        self.close()
        return True

    def refused(self) -> None:
        self._off_until = time.monotonic() + RETRY_DOOR_S
        log.debug("no door at %s: gRPC for %.0f s", self.address, RETRY_DOOR_S)

    def _current(self) -> _Stream:
        stream = self._stream
        if stream is None or stream.broken:
            from tristore import framed  # not before a door is used (the CLI starts faster)

            malloc.tune(malloc.CLIENT)  # uvloop's TLS reads: see tristore/malloc.py
            stream = self._stream = _Stream(self._loop.loop)
            stream.on_no_door = self.refused
            conn: framed.FramedConn[Any, objects_pb2.DoorAnswer] = framed.FramedConn(
                door.DOOR_PIPE,
                objects_pb2.DoorAnswer.FromString,
                stream.answered,
                stream.fail,
                fallback=lambda _answered, _broken: _Refused(stream),
            )
            stream.conn = conn
            try:
                context = self._context()
            except (ssl.SSLError, ValueError) as exc:
                # A CA bundle ssl cannot load: gRPC says what is wrong with it.
                log.debug("no TLS context for the door at %s: %s", self.address, exc)
                stream.fail(exc)  # never started: no door, as a refused one
                raise _NoDoor() from None
            conn.start(self.address, context)
            stream.loop.call_later(DOOR_GREETING_TIMEOUT_S, self._unanswered, stream)
        return stream

    def _unanswered(self, stream: _Stream) -> None:
        if not stream.broken and not stream.conn.greeted:
            stream.fail(f"no answer from the door within {DOOR_GREETING_TIMEOUT_S:.0f} s")

    async def call(
        self, method: str, request: bytes, metadata: Any, timeout: float | None
    ) -> objects_pb2.DoorAnswer:
        """Send one call and wait for its answer (raises _NoDoor, or the
        AioRpcError gRPC would raise for a broken stream or a deadline)."""
        stream = self._current()
        ident = next(self._ids)
        loop = stream.loop
        fut: asyncio.Future[objects_pb2.DoorAnswer] = loop.create_future()
        stream.waiting[ident] = fut
        stream.conn.send(
            objects_pb2.DoorCall(
                id=ident,
                method=method,
                metadata=[objects_pb2.DoorMetadatum(key=k, value=v) for k, v in metadata],
                request=request,
                timeout_ms=max(1, int(timeout * 1000)) if timeout is not None else 0,
            )
        )
        sent = loop.time()
        try:
            async with Timeout(loop, timeout):
                return await fut
        except TimeoutError:
            if stream.heard < sent:
                # Not a word on the stream for the call's whole deadline: the
                # node (or its host) may be gone without a word, which TCP
                # does not tell an idle stream. The next call opens a new one.
                stream.fail(f"no answer on the door stream within {timeout:.1f} s")
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        finally:
            stream.waiting.pop(ident, None)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.fail("the client was closed")
        for writes in [*self._retired, *([self._writes] if self._writes else [])]:
            writes.close()
        self._retired.clear()


class DoorStub:
    """An endpoint's ObjectService stub (``signed``, a SignedStub) whose door
    methods go through ``client`` while it is usable."""

    def __init__(self, signed: Any, client: DoorClient, signer: Any) -> None:
        self._signed = signed
        self._client = client
        self._signer = signer

    def __getattr__(self, name: str) -> Any:
        path = self._signed.path(name)
        if path not in door.METHODS:
            return getattr(self._signed, name)
        client, signer = self._client, self._signer
        grpc_call = getattr(self._signed, name)
        parse = getattr(objects_pb2, _SERVICE.methods_by_name[name].output_type.name).FromString
        write = path in door.WRITES

        async def call(request: Any, *, timeout: float | None = None, metadata: Any = None) -> Any:
            # A door stream has no keepalive to tell a hung node from a slow
            # call: one with no deadline waits on gRPC's instead.
            if timeout is None or not client.usable:
                return await grpc_call(request, timeout=timeout, metadata=metadata)
            md = [*(metadata or ()), *(signer.metadata(path, request) if signer else ())]
            payload = request.SerializeToString()
            target = client.for_writes() if write else client
            try:
                try:
                    answer = await target.call(path, payload, md, timeout)
                except _NoDoor:
                    if target is client:
                        raise
                    # The coordinator's door took no stream (it went away):
                    # the endpoint's own door, which knows where writes go now.
                    answer = await client.call(path, payload, md, timeout)
                except grpc.aio.AioRpcError as exc:
                    if target is not client and exc.code() == grpc.StatusCode.UNAVAILABLE:
                        client.forget_writes(target)  # the caller's retry goes to the endpoint
                    raise
            except _NoDoor:
                return await grpc_call(request, timeout=timeout, metadata=metadata)
            if answer.trailers:
                client.note(answer)
            if answer.code:
                code = errors.status_of_number(answer.code) or grpc.StatusCode.UNKNOWN
                raise _rpc_error(code, answer.details, [(t.key, t.value) for t in answer.trailers])
            return parse(answer.response)

        self.__dict__[name] = call
        return call
