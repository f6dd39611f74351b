"""The door (tristore/door.py, tristore/client/_door.py) in one process: a real
door port (plaintext) serving handlers wrapped by the real Interceptor, and the
SDK's door stub in front of a gRPC server of the same handlers, so each answer
can be set beside the one gRPC gives."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from tristore import errors, framed
from tristore.client import _door
from tristore.credentials import SignedStub
from tristore.door import DOOR_PIPE, METHODS, Door, grpc_peer
from tristore.pb import objects_pb2, objects_pb2_grpc
from tristore.server import SERVER_OPTIONS, Interceptor

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


class _Recorder:
    def __init__(self, server: grpc.aio.Server) -> None:
        self.server = server
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        self.server.add_registered_method_handlers(service, handlers)
        for m, h in handlers.items():
            self.handlers[f"/{service}/{m}"] = h


async def _serve(
    servicer: _Objects,
) -> tuple[str, framed.PipeServer, grpc.aio.Server]:
    """The door port and the gRPC server of ``servicer``; returns the gRPC address."""
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
    await pipes.start(f"127.0.0.1:{_door_port(port)}")
    return f"127.0.0.1:{port}", pipes, server


_OFFSETS: dict[int, int] = {}


def _door_port(grpc_port: int) -> int:
    """A free port for the door of ``grpc_port`` (its offset remembered)."""
    door = _free_port()
    _OFFSETS[grpc_port] = door - grpc_port
    return door


def _stub(address: str, offset: int) -> tuple[Any, grpc.aio.Channel, _door.DoorClient | None]:
    channel = grpc.aio.insecure_channel(address)
    signed = SignedStub(objects_pb2_grpc.ObjectServiceStub(channel), _SERVICE, None)
    door_at = _door.door_address(address, offset)
    if door_at is None:
        return signed, channel, None
    client = _door.DoorClient(door_at, lambda: None)
    return _door.DoorStub(signed, client, None), channel, client


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def _both(
    call: Callable[[Any], Awaitable[Any]],
) -> tuple[Any, Any]:
    """``call`` on the door and on gRPC: each one's result or exception."""
    servicer = _Objects()
    address, pipes, server = await _serve(servicer)
    port = int(address.rpartition(":")[2])
    out = []
    try:
        for offset in (_OFFSETS[port], 0):
            stub, channel, client = _stub(address, offset)
            try:
                out.append(await call(stub))
            except Exception as exc:  # noqa: BLE001 - compared below
                out.append(exc)
            finally:
                if client is not None:
                    client.close()
                await channel.close()
    finally:
        pipes.stop()
        await server.stop(0)
    return out[0], out[1]


def _as_error(exc: Any) -> errors.TristoreError:
    assert isinstance(exc, grpc.aio.AioRpcError), exc
    return errors.from_rpc_error(exc)


def test_the_door_answers_what_grpc_answers() -> None:
    async def test() -> None:
        ok_door, ok_grpc = await _both(
            lambda s: s.HeadBucket(objects_pb2.HeadBucketRequest(bucket="b"), timeout=5)
        )
        assert ok_door == ok_grpc and ok_door.bucket.name == "b"

        missing = await _both(
            lambda s: s.HeadBucket(objects_pb2.HeadBucketRequest(bucket="nope"), timeout=5)
        )
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
        servicer = _Objects()
        address, pipes, server = await _serve(servicer)
        stub, channel, client = _stub(address, _OFFSETS[int(address.rpartition(":")[2])])
        try:
            await stub.HeadBucket(objects_pb2.HeadBucketRequest(bucket="b"), timeout=5)
        finally:
            assert client is not None
            client.close()
            await channel.close()
            pipes.stop()
            await server.stop(0)
        assert servicer.peers[0].startswith("ipv4:127.0.0.1:")
        assert grpc_peer("[::1]:5") == "ipv6:[::1]:5" and grpc_peer("::1:5") == "ipv6:[::1]:5"

    _run(test)


def test_a_call_past_its_deadline_fails_alone_and_the_server_stops_it() -> None:
    async def test() -> None:
        servicer = _Objects()
        address, pipes, server = await _serve(servicer)
        stub, channel, client = _stub(address, _OFFSETS[int(address.rpartition(":")[2])])
        try:
            slow = asyncio.ensure_future(
                stub.HeadBucket(objects_pb2.HeadBucketRequest(bucket="slow"), timeout=0.3)
            )
            # Another call on the same stream is answered meanwhile.
            fast = await stub.HeadBucket(objects_pb2.HeadBucketRequest(bucket="b"), timeout=5)
            assert fast.bucket.name == "b"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await slow
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The node cancels the handler at the deadline it was sent.
            await asyncio.wait_for(servicer.cancelled.wait(), 5)
        finally:
            assert client is not None
            client.close()
            await channel.close()
            pipes.stop()
            await server.stop(0)

    _run(test)


def test_the_door_refuses_what_it_does_not_serve() -> None:
    async def test() -> None:
        servicer = _Objects()
        address, pipes, server = await _serve(servicer)
        port = int(address.rpartition(":")[2])
        client = _door.DoorClient(f"127.0.0.1:{port + _OFFSETS[port]}", lambda: None)
        try:
            internal = await client.call("/tristore.v1.ReplicaService/Commit", b"", [], timeout=5)
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
            pipes.stop()
            await server.stop(0)
        assert "/tristore.v1.ObjectService/ListBuckets" not in METHODS

    _run(test)


def test_without_a_door_the_calls_go_over_grpc() -> None:
    async def test() -> None:
        servicer = _Objects()
        address, pipes, server = await _serve(servicer)
        port = int(address.rpartition(":")[2])
        # Nothing listens there: refused. The gRPC port itself: not a door.
        nothing = _free_port() - port
        junk, junk_port = await _junk_server()
        try:
            for offset in (nothing, junk_port - port):
                stub, channel, client = _stub(address, offset)
                try:
                    for _ in range(2):
                        resp = await stub.HeadBucket(
                            objects_pb2.HeadBucketRequest(bucket="b"), timeout=5
                        )
                        assert resp.bucket.name == "b"
                    assert client is not None and not client.usable
                finally:
                    if client is not None:
                        client.close()
                    await channel.close()
        finally:
            junk.close()
            pipes.stop()
            await server.stop(0)

    _run(test)


async def _junk_server() -> tuple[asyncio.Server, int]:
    """A server that is not a door: it answers something else and hangs up."""

    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(junk, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def test_a_call_without_a_deadline_goes_over_grpc() -> None:
    """A door stream has no keepalive to tell a hung node from a slow call:
    a call that would wait for ever waits on gRPC's."""

    async def test() -> None:
        servicer = _Objects()
        address, pipes, server = await _serve(servicer)
        stub, channel, client = _stub(address, _OFFSETS[int(address.rpartition(":")[2])])
        try:
            resp = await stub.HeadBucket(objects_pb2.HeadBucketRequest(bucket="b"), timeout=None)
            assert resp.bucket.name == "b"
            assert client is not None and client._stream is None  # never opened
        finally:
            assert client is not None
            client.close()
            await channel.close()
            pipes.stop()
            await server.stop(0)

    _run(test)


def test_a_door_port_that_never_answers_is_given_up_for_grpc() -> None:
    """Something that takes the connection and says nothing (a hung process, a
    port that is not a door): the calls go over gRPC after a few seconds."""

    async def test() -> None:
        servicer = _Objects()
        address, pipes, server = await _serve(servicer)
        port = int(address.rpartition(":")[2])
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
        offset = int(quiet.sockets[0].getsockname()[1]) - port
        stub, channel, client = _stub(address, offset)
        try:
            # Answered, not DEADLINE_EXCEEDED: gRPC took it over in time.
            resp = await stub.HeadBucket(objects_pb2.HeadBucketRequest(bucket="b"), timeout=30)
            assert resp.bucket.name == "b"
            assert client is not None and not client.usable
        finally:
            assert client is not None
            client.close()
            await channel.close()
            for w in held:
                w.close()
            quiet.close()
            pipes.stop()
            await server.stop(0)

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
