"""The door (tristore/door.py, tristore/client/_door.py) in one process: a real
door port (plaintext) serving handlers wrapped by the real Interceptor, and the
SDK's door stub in front of a gRPC server of the same handlers, so each answer
can be set beside the one gRPC gives."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import uvloop

from tristore import errors, framed
from tristore.client import _door
from tristore.credentials import SignedStub
from tristore.door import DOOR_PIPE, METHODS, WRITE_HINT, Door, grpc_peer
from tristore.pb import objects_pb2, objects_pb2_grpc
from tristore.server import SERVER_OPTIONS, Interceptor, _Recorder

pytestmark = pytest.mark.unit

_SERVICE = objects_pb2.DESCRIPTOR.services_by_name["ObjectService"]


class _Objects(objects_pb2_grpc.ObjectServiceServicer):
    """HeadBucket: a bucket "b" exists, any other does not; "slow" never answers.
    HeadObject: a key "marker" is a delete marker. Everything else: not here."""

    def __init__(self) -> None:
        self.peers: list[str] = []
        self.cancelled = asyncio.Event()

    async def HeadBucket(self, request: Any, context: Any) -> Any:
        self.peers.append(context.peer())
        if request.bucket == "slow":
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if request.bucket != "b":
            raise errors.NoSuchBucket(f"bucket {request.bucket!r} does not exist")
        return objects_pb2.HeadBucketResponse(bucket=objects_pb2.BucketInfo(name="b"))

    async def HeadObject(self, request: Any, context: Any) -> Any:
        if request.key == "marker":
            raise errors.NoSuchKey(
                "the current version is a delete marker", errors.DeleteMarker("v1", 1234)
            )
        raise errors.InternalError("boom")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Node:
    servicer: _Objects
    #: The gRPC address, its port, and the door's offset from it.
    address: str
    port: int
    offset: int
    pipes: framed.PipeServer


@contextlib.asynccontextmanager
async def _node() -> AsyncIterator[_Node]:
    """A gRPC server of :class:`_Objects` and its door port (plaintext)."""
    servicer = _Objects()
    interceptor = Interceptor()
    server = grpc.aio.server(interceptors=[interceptor], options=SERVER_OPTIONS)
    rec = _Recorder(server)
    objects_pb2_grpc.add_ObjectServiceServicer_to_server(servicer, rec)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    door = Door({m: interceptor.wrapped(m, h) for m, h in rec.handlers.items()}, secure=False)
    pipes = framed.PipeServer(
        door.service(), "local", None, None, client_certs=False, max_frame=1 << 16
    )
    door_port = _free_port()
    await pipes.start(f"127.0.0.1:{door_port}")
    try:
        yield _Node(servicer, f"127.0.0.1:{port}", port, door_port - port, pipes)
    finally:
        pipes.stop()
        await server.stop(0)


@contextlib.asynccontextmanager
async def _stub(address: str, offset: int) -> AsyncIterator[tuple[Any, _door.DoorClient | None]]:
    """The SDK's ObjectService stub of ``address`` with its door at ``offset``
    (0: none), and the door's client."""
    channel = grpc.aio.insecure_channel(address)
    signed = SignedStub(objects_pb2_grpc.ObjectServiceStub(channel), _SERVICE, None)
    door_at = _door.door_address(address, offset)
    client = _door.DoorClient(door_at, lambda: None) if door_at else None
    try:
        yield (_door.DoorStub(signed, client, None) if client else signed), client
    finally:
        if client is not None:
            client.close()
        await channel.close()


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def _both(call: Callable[[Any], Awaitable[Any]]) -> tuple[Any, Any]:
    """``call`` on the door and on gRPC: each one's result or exception."""
    out = []
    async with _node() as node:
        for offset in (node.offset, 0):
            async with _stub(node.address, offset) as (stub, _):
                try:
                    out.append(await call(stub))
                except Exception as exc:  # noqa: BLE001 - compared below
                    out.append(exc)
    return out[0], out[1]


def _as_error(exc: Any) -> errors.TristoreError:
    assert isinstance(exc, grpc.aio.AioRpcError), exc
    return errors.from_rpc_error(exc)


def _head(bucket: str, timeout: float | None = 5) -> Callable[[Any], Awaitable[Any]]:
    return lambda s: s.HeadBucket(objects_pb2.HeadBucketRequest(bucket=bucket), timeout=timeout)


def test_the_door_answers_what_grpc_answers() -> None:
    async def test() -> None:
        ok_door, ok_grpc = await _both(_head("b"))
        assert ok_door == ok_grpc and ok_door.bucket.name == "b"

        missing = await _both(_head("nope"))
        door_err, grpc_err = (_as_error(e) for e in missing)
        assert type(door_err) is type(grpc_err) is errors.NoSuchBucket
        assert door_err.message == grpc_err.message
        assert missing[0].code() == missing[1].code() == grpc.StatusCode.NOT_FOUND

        # The delete marker rides in the trailers, as on gRPC.
        marker = await _both(
            lambda s: s.HeadObject(
                objects_pb2.HeadObjectRequest(bucket="b", key="marker"), timeout=5
            )
        )
        door_err, grpc_err = (_as_error(e) for e in marker)
        assert door_err.delete_marker == grpc_err.delete_marker == errors.DeleteMarker("v1", 1234)

        # A method the door does not serve goes over gRPC (UNIMPLEMENTED there).
        other = await _both(lambda s: s.ListBuckets(objects_pb2.ListBucketsRequest(), timeout=5))
        assert all(e.code() == grpc.StatusCode.UNIMPLEMENTED for e in other)

    _run(test)


def test_the_door_names_the_caller_as_grpc_does() -> None:
    async def test() -> None:
        async with _node() as node, _stub(node.address, node.offset) as (stub, _):
            await _head("b")(stub)
        assert node.servicer.peers[0].startswith("ipv4:127.0.0.1:")
        assert grpc_peer("[::1]:5") == "ipv6:[::1]:5" and grpc_peer("::1:5") == "ipv6:[::1]:5"

    _run(test)


def test_a_call_past_its_deadline_fails_alone_and_the_server_stops_it() -> None:
    async def test() -> None:
        async with _node() as node, _stub(node.address, node.offset) as (stub, _):
            slow = asyncio.ensure_future(_head("slow", timeout=0.3)(stub))
            # Another call on the same stream is answered meanwhile.
            assert (await _head("b")(stub)).bucket.name == "b"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await slow
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The node cancels the handler at the deadline it was sent.
            await asyncio.wait_for(node.servicer.cancelled.wait(), 5)

    _run(test)


def test_a_stream_silent_for_a_whole_deadline_is_given_up() -> None:
    """A call that times out with no word on the stream meanwhile (a node or
    host gone without a word) ends the stream: the next call opens a new one;
    one that times out while others are answered keeps it (above)."""

    async def test() -> None:
        async with _node() as node, _stub(node.address, node.offset) as (stub, client):
            assert client is not None
            assert (await _head("b")(stub)).bucket.name == "b"
            first = client._stream
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _head("slow", timeout=0.3)(stub)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert first is not None and first.broken
            assert (await _head("b")(stub)).bucket.name == "b"
            assert client._stream is not first and client.usable

    _run(test)


def test_door_streams_have_tcp_keepalive() -> None:
    """A client whose host died leaves no stream held open on the node for good."""

    async def test() -> None:
        async with _node() as node, _stub(node.address, node.offset) as (stub, _):
            await _head("b")(stub)
            (serving,) = node.pipes.conns
            assert serving._transport is not None
            sock = serving._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            assert idle == framed.KEEPALIVE_IDLE_S

    _run(test)
    uvloop.run(test())  # as the servers run


def test_the_door_refuses_what_it_does_not_serve() -> None:
    async def test() -> None:
        async with _node() as node:
            client = _door.DoorClient(f"127.0.0.1:{node.port + node.offset}", lambda: None)
            try:
                internal = await client.call(
                    "/tristore.v1.ReplicaService/Commit", b"", [], timeout=5
                )
                assert internal.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
                assert "over gRPC" in internal.details
                bad = await client.call(
                    "/tristore.v1.ObjectService/HeadBucket", b"\xff\xff\xff", [], timeout=5
                )
                err = errors.from_grpc(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    bad.details,
                    [(t.key, t.value) for t in bad.trailers],
                )
                assert isinstance(err, errors.InvalidArgument) and "malformed" in err.message
            finally:
                client.close()
        assert "/tristore.v1.ObjectService/ListBuckets" not in METHODS

    _run(test)


async def _server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Not a door: it answers something else and hangs up."""
    writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    await writer.drain()
    writer.close()


def _unavailable_then_grpc(stub: Any, client: Any, timeout: float = 5) -> Awaitable[None]:
    """A call sent on a stream that no door took fails as from a broken
    connection (it may have reached a server: the caller's retry sends it
    again, as one); the endpoint's next calls go over gRPC."""

    async def check() -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _head("b", timeout=timeout)(stub)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert client is not None and not client.usable
        for _ in range(2):
            assert (await _head("b")(stub)).bucket.name == "b"

    return check()


def test_without_a_door_the_calls_go_over_grpc() -> None:
    async def test() -> None:
        async with _node() as node:
            # Nothing listens there: refused before anything was sent, so the
            # calls go over gRPC at once.
            async with _stub(node.address, _free_port() - node.port) as (stub, client):
                for _ in range(2):
                    assert (await _head("b")(stub)).bucket.name == "b"
                assert client is not None and not client.usable
            # A server that is not a door took the connection (and the call).
            junk, junk_port = await _server(_junk)
            try:
                async with _stub(node.address, junk_port - node.port) as (stub, client):
                    await _unavailable_then_grpc(stub, client)
            finally:
                junk.close()

    _run(test)


def test_a_call_without_a_deadline_goes_over_grpc() -> None:
    """A door stream has no keepalive to tell a hung node from a slow call:
    a call that would wait for ever waits on gRPC's."""

    async def test() -> None:
        async with _node() as node, _stub(node.address, node.offset) as (stub, client):
            assert (await _head("b", timeout=None)(stub)).bucket.name == "b"
            assert client is not None and client._stream is None  # never opened

    _run(test)


def test_a_door_port_that_never_answers_is_given_up_for_grpc() -> None:
    """Something that takes the connection and says nothing (a hung process, a
    port that is not a door): the calls go over gRPC after a few seconds."""

    async def test() -> None:
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        async with _node() as node:
            quiet, quiet_port = await _server(silent)
            try:
                async with _stub(node.address, quiet_port - node.port) as (stub, client):
                    # Given up before its deadline (not DEADLINE_EXCEEDED).
                    await _unavailable_then_grpc(stub, client, timeout=30)
            finally:
                for w in held:
                    w.close()
                quiet.close()

    _run(test)


def test_door_addresses() -> None:
    assert _door.door_address("127.0.0.1:7101", 600) == "127.0.0.1:7701"
    assert _door.door_address("127.0.0.1:7101", 0) is None
    assert _door.door_address("dns:///example:7101", 600) is None
    assert _door.door_address("127.0.0.1:65000", 600) is None
    assert _door.door_offset({}) == 600
    assert _door.door_offset({_door.DOOR_OFFSET_ENV: "0"}) == 0
    assert _door.door_offset({_door.DOOR_OFFSET_ENV: "nope"}) == 0
    assert DOOR_PIPE.startswith("/tristore.v1.ObjectService/")


def _hinting(value: str) -> objects_pb2.DoorAnswer:
    return objects_pb2.DoorAnswer(
        id=1, trailers=[objects_pb2.DoorMetadatum(key=WRITE_HINT, value=value)]
    )


def test_small_writes_follow_the_coordinator_an_answer_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(_door.DOOR_OFFSET_ENV, raising=False)
    monkeypatch.delenv(_door.WRITE_HINTS_ENV, raising=False)
    client = _door.DoorClient("127.0.0.1:7703", lambda: None)
    assert client.for_writes() is client
    client.note(objects_pb2.DoorAnswer(id=1))  # no hint: nothing changes
    assert client.for_writes() is client
    client.note(_hinting("127.0.0.1:7101"))
    writes = client.for_writes()
    assert writes is not client and writes.address == "127.0.0.1:7701"
    client.note(_hinting("127.0.0.1:7101"))  # the same hint again: the same door
    assert client.for_writes() is writes
    # A door that refuses streams is skipped; one that broke is forgotten.
    writes.refused()
    assert client.for_writes() is client
    client.note(_hinting("127.0.0.1:7102"))
    other = client.for_writes()
    assert other.address == "127.0.0.1:7702"
    client.forget_writes(other)
    assert client.for_writes() is client
    client.note(_hinting("127.0.0.1:7102"))  # named again: skipped for a while
    assert client.for_writes() is client
    monkeypatch.setattr(_door.time, "monotonic", lambda: 1e12)
    client.note(_hinting("127.0.0.1:7102"))
    assert client.for_writes().address == "127.0.0.1:7702"
    client.forget_writes(client.for_writes())
    # A hint naming the endpoint itself, or nothing a door can be found at, is ignored.
    client.note(_hinting("127.0.0.1:7103"))
    client.note(_hinting("dns:///somewhere:7101"))
    assert client.for_writes() is client
    client.close()


def test_write_hints_can_be_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_door.WRITE_HINTS_ENV, "0")
    client = _door.DoorClient("127.0.0.1:7703", lambda: None)
    client.note(_hinting("127.0.0.1:7101"))
    assert client.for_writes() is client
