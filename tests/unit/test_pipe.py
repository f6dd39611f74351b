"""Pipes (tristore/pipe.py) and the batcher (tristore/batcher.py): answers reach the
request that asked, out of order too; a silent or lost peer fails what waits on
it and the next request opens a new stream; a stopping server ends its pipes;
one event-loop turn's requests share one message."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from tristore import framed, pipe
from tristore.batcher import Batcher
from tristore.pb import replica_pb2

pytestmark = pytest.mark.unit

METHOD = "/test.Pipe/Pipe"
Handler = Callable[[replica_pb2.PipeRequest], Awaitable[replica_pb2.PipeResponse]]


def _echo_keys(req: replica_pb2.PipeRequest) -> replica_pb2.PipeResponse:
    """One result per op: a read_meta answer naming the key it was asked."""
    results = [
        replica_pb2.BatchResult(
            read_meta=replica_pb2.ReadMetaResponse(found=True, version={"key": op.read_meta.key})
        )
        for op in req.ops
    ]
    return replica_pb2.PipeResponse(id=req.id, results=results)


async def _grpc_server(handle: Handler) -> tuple[grpc.aio.Server, str]:
    async def serve(
        requests: AsyncIterator[replica_pb2.PipeRequest], context: Any
    ) -> AsyncIterator[replica_pb2.PipeResponse]:
        async def answer(req: replica_pb2.PipeRequest) -> replica_pb2.PipeResponse:
            return await handle(req)

        async for resp in pipe.serve(requests, answer):
            yield resp

    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(
        serve,
        request_deserializer=replica_pb2.PipeRequest.FromString,
        response_serializer=replica_pb2.PipeResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Pipe", {"Pipe": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


class Transport:
    """A pipe server and the clients of it, on gRPC or on the pipe port."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._stops: list[Callable[[], Awaitable[None]]] = []
        self._servers: list[framed.PipeServer] = []

    async def serve(self, handle: Handler) -> str:
        if self.kind == "grpc":
            server, addr = await _grpc_server(handle)
            self._stops.append(lambda: server.stop(None))
            return addr
        service = framed.PipeService(METHOD, replica_pb2.PipeRequest.FromString, handle)
        srv = framed.PipeServer(service, "local", None, None)
        self._servers.append(srv)
        port = free_port()
        await srv.start(f"127.0.0.1:{port}")

        async def stop() -> None:
            srv.stop()

        self._stops.append(stop)
        return f"127.0.0.1:{port}"

    def client(self, addr: str, timeout_s: float = 5.0) -> pipe.PipeClient[Any, Any]:
        if self.kind == "grpc":
            channel = grpc.aio.insecure_channel(addr)
            self._stops.append(channel.close)
            open_call = channel.stream_stream(
                METHOD,
                request_serializer=replica_pb2.PipeRequest.SerializeToString,
                response_deserializer=replica_pb2.PipeResponse.FromString,
            )
            opener: pipe.Opener[Any, Any] = pipe.GrpcConn.opener(open_call)
        else:
            opener = framed.opener(addr, METHOD, replica_pb2.PipeResponse.FromString, lambda: None)
        client: pipe.PipeClient[Any, Any] = pipe.PipeClient(opener, timeout_s, "test-peer")
        self._stops.insert(0, client.close)
        return client

    def close_all(self) -> None:
        """What a stopping process does (tristore.server.run)."""
        pipe.close_all()
        for srv in self._servers:
            srv.stop()

    async def stop(self) -> None:
        for stop in self._stops:
            await stop()


@pytest.fixture(params=["grpc", "framed"])
def transport(request: pytest.FixtureRequest) -> Transport:
    return Transport(request.param)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(key: str) -> replica_pb2.PipeRequest:
    return replica_pb2.PipeRequest(
        ops=[replica_pb2.BatchOp(read_meta=replica_pb2.ReadMetaRequest(key=key))]
    )


def test_answers_reach_their_requests_even_out_of_order(transport: Transport) -> None:
    async def handle(req: replica_pb2.PipeRequest) -> replica_pb2.PipeResponse:
        # The first request asked is answered last.
        await asyncio.sleep(0.2 if req.ops[0].read_meta.key == "slow" else 0)
        return _echo_keys(req)

    async def go() -> list[str]:
        client = transport.client(await transport.serve(handle))
        try:
            finished: list[str] = []

            async def one(key: str) -> str:
                resp = await client.call(_ask(key))
                finished.append(key)
                return str(resp.results[0].read_meta.version.key)

            got = await asyncio.gather(*(one(k) for k in ["slow", "a", "b", "c"]))
            assert finished[-1] == "slow"
            return got
        finally:
            await transport.stop()

    assert asyncio.run(go()) == ["slow", "a", "b", "c"]


def test_no_answer_in_time_fails_every_waiter_and_the_next_call_reconnects(
    transport: Transport,
) -> None:
    hang = asyncio.Event()

    async def handle(req: replica_pb2.PipeRequest) -> replica_pb2.PipeResponse:
        if req.ops[0].read_meta.key == "hang":
            await hang.wait()
        return _echo_keys(req)

    async def go() -> None:
        client = transport.client(await transport.serve(handle), timeout_s=1.5)
        try:
            results = await asyncio.gather(
                client.call(_ask("hang")),
                client.call(_ask("hang")),
                return_exceptions=True,
            )
            assert all(isinstance(r, pipe.PipeBroken) for r in results), results
            assert "within 1.5s" in str(results[0])
            # A new stream answers again.
            resp = await client.call(_ask("after"))
            assert resp.results[0].read_meta.version.key == "after"
        finally:
            hang.set()
            await transport.stop()

    asyncio.run(go())


def test_a_lost_peer_fails_the_call_at_once(refused_endpoint: str, transport: Transport) -> None:
    async def go() -> None:
        client = transport.client(refused_endpoint, timeout_s=30)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            why = "UNAVAILABLE" if transport.kind == "grpc" else "cannot reach the pipe port"
            with pytest.raises(pipe.PipeBroken, match=why):
                await client.call(_ask("k"))
            assert loop.time() - started < 10  # refused, not timed out
        finally:
            await transport.stop()

    asyncio.run(go())


def _grpc_opener(addr: str, stops: list[Callable[[], Awaitable[None]]]) -> pipe.Opener[Any, Any]:
    channel = grpc.aio.insecure_channel(addr)
    stops.append(channel.close)
    return pipe.GrpcConn.opener(
        channel.stream_stream(
            METHOD,
            request_serializer=replica_pb2.PipeRequest.SerializeToString,
            response_deserializer=replica_pb2.PipeResponse.FromString,
        )
    )


def test_a_peer_without_a_pipe_port_is_reached_on_its_grpc_pipe(refused_endpoint: str) -> None:
    """A peer of a version from before pipe ports (a rolling upgrade): nothing
    listens on its pipe port, and the requests that waited for it, in order,
    and every later one go to its gRPC Pipe method instead."""
    seen: list[str] = []

    async def handle(req: replica_pb2.PipeRequest) -> replica_pb2.PipeResponse:
        seen.extend(op.read_meta.key for op in req.ops)
        return _echo_keys(req)

    async def go() -> None:
        stops: list[Callable[[], Awaitable[None]]] = []
        server, addr = await _grpc_server(handle)
        stops.append(lambda: server.stop(None))
        client = _with_fallback(refused_endpoint, addr, stops, 5.0, "old-peer")
        try:
            before = _fallbacks()
            first = await asyncio.gather(*(client.call(_ask(k)) for k in ("a", "b", "c")))
            assert [r.results[0].read_meta.version.key for r in first] == ["a", "b", "c"]
            later = await client.call(_ask("d"))
            assert later.results[0].read_meta.version.key == "d"
            assert seen == ["a", "b", "c", "d"]
            assert _fallbacks() == before + 1  # one stream, opened once
        finally:
            await client.close()
            for stop in stops:
                await stop()

    asyncio.run(go())


def _with_fallback(
    endpoint: str,
    grpc_addr: str,
    stops: list[Callable[[], Awaitable[None]]],
    timeout: float,
    name: str,
) -> pipe.PipeClient[Any, Any]:
    """A client of the pipe port ``endpoint`` that falls back to the gRPC
    ``Pipe`` method at ``grpc_addr``."""
    opener = framed.opener(
        endpoint,
        METHOD,
        replica_pb2.PipeResponse.FromString,
        lambda: None,
        fallback=_grpc_opener(grpc_addr, stops),
    )
    return pipe.PipeClient(opener, timeout, name)


def test_a_down_peer_fails_the_call_at_once_on_its_grpc_pipe_too(refused_endpoint: str) -> None:
    """Both ports refuse (the peer is down): the call fails at once, as
    without the fallback, and the next call tries the pipe port again."""

    async def go() -> None:
        stops: list[Callable[[], Awaitable[None]]] = []
        client = _with_fallback(refused_endpoint, refused_endpoint, stops, 30.0, "down-peer")
        try:
            loop = asyncio.get_running_loop()
            before = _fallbacks()
            for _ in range(2):
                started = loop.time()
                with pytest.raises(pipe.PipeBroken, match="UNAVAILABLE"):
                    await client.call(_ask("k"))
                assert loop.time() - started < 10  # refused, not timed out
            assert _fallbacks() == before + 2
        finally:
            await client.close()
            for stop in stops:
                await stop()

    asyncio.run(go())


def _fallbacks() -> float:
    return REGISTRY.get_sample_value("tristore_pipe_fallbacks_total") or 0.0


def test_close_all_answers_what_is_in_flight_then_ends_the_stream(transport: Transport) -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def handle(req: replica_pb2.PipeRequest) -> replica_pb2.PipeResponse:
        arrived.set()
        await release.wait()
        return _echo_keys(req)

    async def go() -> None:
        client = transport.client(await transport.serve(handle))
        try:
            in_flight = asyncio.ensure_future(client.call(_ask("inflight")))
            await asyncio.wait_for(arrived.wait(), 5)  # the server has it
            transport.close_all()
            await asyncio.sleep(0.1)  # the close takes effect before the answer is ready
            release.set()
            resp = await asyncio.wait_for(in_flight, 5)
            assert resp.results[0].read_meta.version.key == "inflight"
            # The stream ended: a stopping server takes no more on it.
            with pytest.raises(pipe.PipeBroken):
                await asyncio.wait_for(client.call(_ask("late")), 5)
        finally:
            await transport.stop()

    asyncio.run(go())  # the flag close_all sets belongs to this test's event loop


def test_batcher_puts_one_turns_requests_in_one_call_and_fails_each_alone() -> None:
    calls: list[list[int]] = []

    async def send(items: list[int]) -> list[int | BaseException]:
        calls.append(items)
        await asyncio.sleep(0.01)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    async def go() -> list[Any]:
        b: Batcher[int, int] = Batcher(send, max_batch=3)
        first = b.submit(0)
        await asyncio.sleep(0)  # the first goes alone
        rest = [b.submit(i) for i in range(1, 6)]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(go())
    assert calls == [[0], [1, 2, 3], [4, 5]]
    assert results[0] == 0 and results[2] == 20 and results[4] == 40
    assert [str(r) for r in results if isinstance(r, ValueError)] == ["odd 1", "odd 3", "odd 5"]


def test_batcher_fails_a_whole_call_when_sending_fails() -> None:
    async def send(items: list[int]) -> list[int | BaseException]:
        raise ConnectionError("peer gone")

    async def go() -> list[Any]:
        b: Batcher[int, int] = Batcher(send, max_batch=8)
        return await asyncio.gather(*(b.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in asyncio.run(go()))


def test_a_lingering_batcher_sends_what_arrives_within_the_linger_in_one_call() -> None:
    calls: list[tuple[float, list[int]]] = []

    async def send(items: list[int]) -> list[int | BaseException]:
        calls.append((asyncio.get_running_loop().time(), items))
        return [i for i in items]

    async def go() -> tuple[float, list[int]]:
        loop = asyncio.get_running_loop()
        b: Batcher[int, int] = Batcher(send, max_batch=100, max_inflight=4, linger_s=0.2)
        started = loop.time()
        futs = []
        for i in range(5):  # spread over less than the linger
            futs.append(b.submit(i))
            await asyncio.sleep(0.02)
        return started, list(await asyncio.gather(*futs))

    started, results = asyncio.run(go())
    assert results == [0, 1, 2, 3, 4]
    assert [items for _, items in calls] == [[0, 1, 2, 3, 4]]  # one call, not one each
    assert calls[0][0] - started >= 0.19  # the first waited the linger


def test_a_lingering_batcher_sends_a_full_call_at_once() -> None:
    calls: list[list[int]] = []

    async def send(items: list[int]) -> list[int | BaseException]:
        calls.append(items)
        return [i for i in items]

    async def go() -> float:
        loop = asyncio.get_running_loop()
        b: Batcher[int, int] = Batcher(send, max_batch=3, linger_s=30.0)
        started = loop.time()
        futs = [b.submit(i) for i in range(7)]
        await asyncio.gather(*futs[:6])  # two full calls: no linger
        took = loop.time() - started
        for f in futs[6:]:
            f.cancel()  # the last one lingers alone; not waited for here
        return took

    took = asyncio.run(go())
    assert calls[:2] == [[0, 1, 2], [3, 4, 5]]
    assert took < 5.0
