"""An in-memory network for the simulation, at the gRPC channel.

A simulated process reaches another through :class:`SimChannel`, which offers
what a ``grpc.aio.Channel`` offers the generated stubs (``unary_unary``,
``unary_stream``, ``stream_unary``, ``stream_stream``). So everything above
the channel is the real code (stubs, ``tristore.pipe``, ``tristore.batcher``,
``RemoteReplica``, ``WitnessConn``, the protobuf conversions) and everything
below it is too: each message is serialized, carried as bytes, and handed to
the real servicer of the destination, wrapped by the real server interceptor
(``tristore.server.Interceptor``: errors become a status with the S3 code in
the trailers, which the client side turns back into the same exception).

Every message takes a delay drawn from the run's random stream (in order
within a call, as HTTP/2 keeps a stream's messages in order), so requests,
answers and calls overtake one another in ways the seed decides. Faults:

- a *crashed* process refuses new calls (UNAVAILABLE after a round trip) and
  every call to it fails; calls it made are cancelled at the other end;
- a *cut* direction (a partition, both ways or one) holds every message sent
  over it until it heals, as TCP retransmits: a call with a deadline fails
  with DEADLINE_EXCEEDED meanwhile, and what was held arrives after the heal
  (a request the caller gave up on is then served all the same);
- a *slow* process adds a delay to every message to or from it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from tests.sim.loop import OWNER, SimLoop
from tristore.server import Interceptor

#: How long a call without a deadline waits on a peer that does not answer
#: (what gRPC keepalive takes to find a dead connection).
KEEPALIVE_S = 20.0


class SimAbort(grpc.aio.AbortError):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[Any, ...]) -> None:
        super().__init__(details)
        self.code, self.details, self.trailers = code, details, trailers


class SimContext:
    """What the servicers and the interceptor use of a ServicerContext."""

    def __init__(self, peer: str, write: Callable[[Any], None] | None = None) -> None:
        self._peer = peer
        self._code: grpc.StatusCode | None = None
        self._write = write

    async def write(self, message: Any) -> None:
        """One message of a streamed answer (a handler that writes rather than
        yields, as grpc.aio lets it)."""
        assert self._write is not None, "write() outside a streaming call"
        self._write(message)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        self._code = code
        raise SimAbort(code, details, tuple(trailing_metadata))

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        pass

    def set_trailing_metadata(self, md: Any) -> None:
        pass

    def invocation_metadata(self) -> tuple[Any, ...]:
        return ()

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> dict[str, Any]:
        return {}


def rpc_error(code: grpc.StatusCode, details: str, trailers: tuple[Any, ...] = ()) -> Exception:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details=details
    )


class _FakeServer:
    """Collects the handlers a generated ``add_*Servicer_to_server`` registers."""

    def __init__(self) -> None:
        self.generic: list[Any] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        pass


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


@dataclass(eq=False)
class SimProcess:
    name: str
    address: str
    alive: bool = True
    #: Bumped on every start: messages of an earlier life are dropped.
    epoch: int = 0
    handlers: dict[str, grpc.RpcMethodHandler] = field(default_factory=dict)
    #: Full method name -> its wrapped handler (None: not served here).
    _wrapped: dict[str, grpc.RpcMethodHandler | None] = field(default_factory=dict)
    _generic: list[Any] = field(default_factory=list)
    _interceptor: Interceptor = field(default_factory=Interceptor)

    def serve(self, register: Callable[[Any], None]) -> None:
        """Register servicers as with a real server: ``register(server)``."""
        fake = _FakeServer()
        register(fake)
        self._generic = fake.generic
        self._wrapped.clear()

    def handler(self, method: str) -> grpc.RpcMethodHandler | None:
        if method not in self._wrapped:
            found = None
            for g in self._generic:
                found = g.service(_Details(method))
                if found is not None:
                    break
            self._wrapped[method] = (
                self._interceptor._wrap(found, method, None) if found is not None else None
            )
        return self._wrapped[method]


_END = object()


class _Call:
    """One RPC in flight between two processes (any of the four kinds)."""

    def __init__(
        self,
        net: SimNet,
        src: SimProcess,
        dst: SimProcess,
        method: str,
        serialize: Callable[[Any], bytes],
        deserialize: Callable[[bytes], Any],
        request_stream: bool,
        response_stream: bool,
        timeout: float | None,
    ) -> None:
        self.net, self.src, self.dst, self.method = net, src, dst, method
        self.id = next(net.call_ids)
        self.src_epoch, self.dst_epoch = src.epoch, dst.epoch
        self.serialize, self.deserialize = serialize, deserialize
        self.request_stream, self.response_stream = request_stream, response_stream
        self.responses: asyncio.Queue[Any] = asyncio.Queue()
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        self.finished = False
        self.server_task: asyncio.Task[None] | None = None
        self.pump: asyncio.Task[None] | None = None
        self.timeout = timeout
        self.timer: asyncio.TimerHandle | None = None
        if timeout is not None:
            self.timer = net.loop.call_later(
                timeout, self.fail, grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
            )
        net.calls[self.id] = self
        self.short = method.rsplit("/", 1)[-1]

    # -- the client side -----------------------------------------------------

    def start(self, requests: Any) -> None:
        if not self.dst.alive:
            self.net.after_rtt(
                self.src, self.dst, lambda: self.fail(grpc.StatusCode.UNAVAILABLE, "refused")
            )
            return
        if self.request_stream:
            self.net.transmit(self, True, self._arrive_start, "open")
            self.pump = asyncio.get_running_loop().create_task(self._pump(requests))
        else:
            data = self.serialize(requests)

            def arrive() -> None:
                self.requests.put_nowait(data)
                self._arrive_start()

            self.net.transmit(self, True, arrive, len(data))

    async def _pump(self, requests: AsyncIterator[Any]) -> None:
        try:
            async for req in requests:
                if self.finished:
                    return
                data = self.serialize(req)
                self.net.transmit(
                    self, True, functools.partial(self.requests.put_nowait, data), len(data)
                )
        except asyncio.CancelledError:
            return
        except Exception as exc:  # noqa: BLE001 - the request stream failed: the call is over
            self.fail(grpc.StatusCode.UNKNOWN, f"request stream failed: {exc!r}")
            return
        self.net.transmit(self, True, lambda: self.requests.put_nowait(_END), "end")

    def fail(self, code: grpc.StatusCode, details: str, trailers: tuple[Any, ...] = ()) -> None:
        """End the call with an error at the client at once; the server hears
        of it a trip later (if the link lets it)."""
        if self.finished:
            return
        self._finish()
        self.responses.put_nowait(rpc_error(code, details, trailers))
        self.net.transmit(self, True, self._cancel_server, "cancel", force=True)

    def cancel(self) -> bool:
        if self.finished:
            return False
        self._finish()
        self.responses.put_nowait(asyncio.CancelledError())
        self.net.transmit(self, True, self._cancel_server, "cancel", force=True)
        return True

    def _finish(self) -> None:
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self.net.calls.pop(self.id, None)
        if self.pump is not None:
            self.pump.cancel()

    def _cancel_server(self) -> None:
        if self.server_task is not None:
            self.server_task.cancel()

    async def next_response(self) -> Any:
        item = await self.responses.get()
        if item is _END:
            self.responses.put_nowait(_END)
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self.responses.put_nowait(item)
            raise item
        return item

    def _answer(self, data: Any) -> None:
        if self.finished:
            return
        if data is _END:
            self._finish()
            self.responses.put_nowait(_END)
        else:
            self.responses.put_nowait(self.deserialize(data))

    def _error(self, code: grpc.StatusCode, details: str, trailers: tuple[Any, ...]) -> None:
        if not self.finished:
            self._finish()
            self.responses.put_nowait(rpc_error(code, details, trailers))

    # -- the server side -----------------------------------------------------

    def _arrive_start(self) -> None:
        handler = self.dst.handler(self.method)
        if handler is None:
            self.net.transmit(
                self,
                False,
                lambda: self._error(grpc.StatusCode.UNIMPLEMENTED, self.method, ()),
                "unimplemented",
            )
            return
        token = OWNER.set(self.dst.name)
        try:
            self.server_task = asyncio.get_running_loop().create_task(self._serve(handler))
        finally:
            OWNER.reset(token)

    async def _requests(self, decode: Callable[[bytes], Any]) -> AsyncIterator[Any]:
        while (data := await self.requests.get()) is not _END:
            yield decode(data)

    def _send(self, handler: grpc.RpcMethodHandler, resp: Any) -> None:
        data = handler.response_serializer(resp)
        self.net.transmit(self, False, functools.partial(self._answer, data), len(data))

    async def _serve(self, handler: grpc.RpcMethodHandler) -> None:
        ctx = SimContext(self.src.name, functools.partial(self._send, handler))
        try:
            if self.request_stream:
                request: Any = self._requests(handler.request_deserializer)
            else:
                first = await self.requests.get()
                request = handler.request_deserializer(first)
            if self.response_stream:
                fn = handler.stream_stream if self.request_stream else handler.unary_stream
                if inspect.iscoroutinefunction(fn):
                    await fn(request, ctx)  # writes its answers (ctx.write)
                else:
                    async for resp in fn(request, ctx):
                        self._send(handler, resp)
            else:
                fn = handler.stream_unary if self.request_stream else handler.unary_unary
                resp = await fn(request, ctx)
                data = handler.response_serializer(resp)

                def answer() -> None:
                    self._answer(data)
                    self._answer(_END)

                self.net.transmit(self, False, answer, len(data))
                return
            self.net.transmit(self, False, lambda: self._answer(_END), "ok")
        except SimAbort as a:
            code, details, trailers = a.code, a.details, a.trailers
            self.net.transmit(self, False, lambda: self._error(code, details, trailers), code.name)


class _Multi:
    """A stub's multi-callable: calling it starts a :class:`_Call`."""

    def __init__(
        self,
        channel: SimChannel,
        method: str,
        serialize: Callable[[Any], bytes],
        deserialize: Callable[[bytes], Any],
        request_stream: bool,
        response_stream: bool,
    ) -> None:
        self.channel, self.method = channel, method
        self.serialize, self.deserialize = serialize, deserialize
        self.request_stream, self.response_stream = request_stream, response_stream

    def __call__(self, request: Any, timeout: float | None = None, **_: Any) -> Any:
        ch = self.channel
        call = _Call(
            ch.net,
            ch.src,
            ch.net.by_address[ch.address],
            self.method,
            self.serialize,
            self.deserialize,
            self.request_stream,
            self.response_stream,
            timeout,
        )
        if ch.src.epoch != ch.epoch or not ch.src.alive:
            call.fail(grpc.StatusCode.CANCELLED, "the calling process is gone")
        else:
            call.start(request)
        if self.response_stream:
            return _StreamCall(call)
        return _unary_result(call)


async def _unary_result(call: _Call) -> Any:
    try:
        resp = await call.next_response()
    except asyncio.CancelledError:
        call.cancel()
        raise
    return resp


class _StreamCall:
    def __init__(self, call: _Call) -> None:
        self._call = call

    def __aiter__(self) -> _StreamCall:
        return self

    async def __anext__(self) -> Any:
        return await self._call.next_response()

    def cancel(self) -> bool:
        return self._call.cancel()


class SimChannel:
    """A channel from process ``src`` (in its current life) to ``address``."""

    def __init__(self, net: SimNet, src: SimProcess, address: str) -> None:
        self.net, self.src, self.address, self.epoch = net, src, address, src.epoch

    def unary_unary(
        self, method: str, request_serializer: Any, response_deserializer: Any, **_: Any
    ) -> _Multi:
        return _Multi(self, method, request_serializer, response_deserializer, False, False)

    def unary_stream(
        self, method: str, request_serializer: Any, response_deserializer: Any, **_: Any
    ) -> _Multi:
        return _Multi(self, method, request_serializer, response_deserializer, False, True)

    def stream_unary(
        self, method: str, request_serializer: Any, response_deserializer: Any, **_: Any
    ) -> _Multi:
        return _Multi(self, method, request_serializer, response_deserializer, True, False)

    def stream_stream(
        self, method: str, request_serializer: Any, response_deserializer: Any, **_: Any
    ) -> _Multi:
        return _Multi(self, method, request_serializer, response_deserializer, True, True)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        dst = self.net.by_address[self.address]
        return (
            grpc.ChannelConnectivity.READY
            if dst.alive
            else grpc.ChannelConnectivity.TRANSIENT_FAILURE
        )

    async def wait_for_state_change(self, state: grpc.ChannelConnectivity) -> None:
        await asyncio.get_running_loop().create_future()  # the probe loop is not simulated

    async def close(self) -> None:
        pass


class SimNet:
    def __init__(self, loop: SimLoop, trace: Callable[[str], None]) -> None:
        self.loop = loop
        self.rng = loop.rng
        self.trace = trace
        self.by_address: dict[str, SimProcess] = {}
        self.calls: dict[int, _Call] = {}
        self.call_ids = itertools.count(1)
        #: Directions (src, dst) that hold every message until they heal.
        self.cut: set[tuple[str, str]] = set()
        #: Messages held by a cut: (src, dst) -> [(call, to_server, deliver)].
        self.held: defaultdict[tuple[str, str], list[tuple[_Call, bool, Callable[[], None]]]] = (
            defaultdict(list)
        )
        #: Extra delay of every message to or from a process.
        self.slow: dict[str, float] = {}
        #: When the last message of each (call, direction) arrives: kept in order.
        self._last: dict[tuple[int, bool], float] = {}
        self.messages = 0
        #: Whether a message may stall for longer than a deadline.
        self.stalls = True
        self.digest = hashlib.blake2b(digest_size=16)

    def add(self, proc: SimProcess) -> None:
        self.by_address[proc.address] = proc

    def channel_factory(self, src: SimProcess) -> Callable[[str], SimChannel]:
        return lambda address: SimChannel(self, src, address)

    def latency(self, a: str, b: str) -> float:
        r = self.rng
        d = r.uniform(0.0002, 0.002)
        x = r.random()
        if x < 0.05:
            d += r.uniform(0.005, 0.08)
        elif x < 0.055 and self.stalls:
            d += r.uniform(0.2, 1.5)  # a long stall: past hedges and some deadlines
        return d + self.slow.get(a, 0.0) + self.slow.get(b, 0.0)

    def transmit(
        self,
        call: _Call,
        to_server: bool,
        deliver: Callable[[], None],
        what: object,
        force: bool = False,
    ) -> None:
        """Carry one message of ``call``; ``deliver`` runs on arrival if both
        ends are still the processes (lives) the call was made between."""
        src, dst = (call.src, call.dst) if to_server else (call.dst, call.src)
        now = self.loop.now
        key = (call.id, to_server)
        at = max(now + self.latency(src.name, dst.name), self._last.get(key, 0.0))
        self._last[key] = at
        self.messages += 1
        self.digest.update(
            f"{now:.9f}|{src.name}>{dst.name}|{call.short}|{call.id}|{what}\n".encode()
        )

        def arrive() -> None:
            if (src.name, dst.name) in self.cut:
                self.held[src.name, dst.name].append((call, to_server, deliver))
                return
            if call.src.epoch != call.src_epoch or call.dst.epoch != call.dst_epoch:
                return
            if not (call.src.alive and call.dst.alive) and not force:
                return
            deliver()

        self.loop.call_later(at - now, arrive)

    def after_rtt(self, a: SimProcess, b: SimProcess, fn: Callable[[], None]) -> None:
        self.loop.call_later(self.latency(a.name, b.name) * 2, fn)

    # -- faults ------------------------------------------------------------------

    def crash(self, proc: SimProcess) -> None:
        """``proc`` stops: its calls fail at the other end a trip later."""
        proc.alive = False
        for call in sorted(self.calls.values(), key=lambda c: c.id):
            if call.dst is proc:
                self.after_rtt(
                    call.src,
                    proc,
                    functools.partial(
                        call._error, grpc.StatusCode.UNAVAILABLE, "connection reset", ()
                    ),
                )
            elif call.src is proc:
                call._finish()
                self.after_rtt(proc, call.dst, call._cancel_server)

    def restart(self, proc: SimProcess) -> None:
        proc.alive = True
        proc.epoch += 1

    def cut_links(self, pairs: list[tuple[str, str]]) -> None:
        """Hold every message over each (src, dst) direction until :meth:`heal`.
        A call without a deadline over a cut link fails after
        :data:`KEEPALIVE_S` (gRPC keepalive finds the dead connection)."""
        self.cut.update(pairs)
        names = {n for pair in pairs for n in pair}
        for call in sorted(self.calls.values(), key=lambda c: c.id):
            if call.timeout is None and {call.src.name, call.dst.name} <= names:

                def check(c: _Call = call) -> None:
                    if (c.src.name, c.dst.name) in self.cut or (c.dst.name, c.src.name) in self.cut:
                        c.fail(grpc.StatusCode.UNAVAILABLE, "keepalive: the peer is silent")

                self.loop.call_later(KEEPALIVE_S, check)

    def heal(self, pairs: list[tuple[str, str]]) -> None:
        for pair in pairs:
            self.cut.discard(pair)
            for call, to_server, deliver in self.held.pop(pair, []):
                self.transmit(call, to_server, deliver, "held")
