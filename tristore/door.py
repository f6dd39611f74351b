"""The door: a client's small unary calls on one long-lived TLS stream.

Every gRPC call costs a Python server a call's set-up, headers and trailers in
grpc.aio's layers: on a small machine about half a millisecond of CPU between
client and server, more than a linearizable GET costs the cluster behind it.
So a storage node also serves the SDK's hot, small calls (:data:`METHODS`) on
its **door port** (``grpc`` port + ``[tls] door_port_offset``): one TLS stream a
client keeps open, framed as the cluster's pipes are (:mod:`tristore.framed`),
each frame one :class:`DoorCall` or :class:`DoorAnswer` matched by ``id``,
answers in any order.

A call carries what its gRPC twin carries: the full method name, the metadata
(the SigV4 signature of :mod:`tristore.sigv4`, over the same method and request),
the serialized request and the deadline. The node runs it through the very
handler the gRPC server runs (the :class:`tristore.server.Interceptor`'s wrap:
the guard's signature and permission checks, metrics, the error mapping), so
an answer is the one gRPC would give: the status code, its details and the
trailing metadata that carries the S3 error code. TLS verifies the node to the
client as the public gRPC port does; the door asks no client certificate, every
call is signed. Internal services are never served here.

A client (tristore/client/_door.py) that finds nothing listening on the door
port (a node of a version before it, a door turned off) uses gRPC instead.

A process may hand some calls to another one instead of running them
(a :class:`Relay`: a node relays small writes to the cluster's write
coordinators, node/relay.py); the other process runs them through its own
door's handlers (:meth:`Door.answer` with ``here``) with the caller's address,
so the answer, the signature check and the policy's ``aws:SourceIp`` are what
they would be there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from tristore.loops import LoopBound, Timeout
from tristore.model import SMALL_BODY_MAX
from tristore.pb import objects_pb2

if TYPE_CHECKING:
    from tristore.framed import PipeService

#: The door's greeting (the first frame of a stream: the pipe it asks for).
DOOR_PIPE = "/tristore.v1.ObjectService/Door"
_OBJECTS = "/tristore.v1.ObjectService/"
#: What the door serves: unary calls whose messages are small (bounded by
#: SMALL_BODY_MAX), the calls a PUT, a GET or a HEAD of a small object makes.
METHODS = frozenset(
    _OBJECTS + m
    for m in ("PutSmallObject", "GetSmallObject", "HeadObject", "HeadBucket", "DeleteObject")
)
#: The small writes: what a node may hand to one of the cluster's write
#: coordinators (node/relay.py), and what a client sends to the coordinator a
#: node named in :data:`WRITE_HINT`.
WRITES = frozenset(_OBJECTS + m for m in ("PutSmallObject", "DeleteObject"))
#: The trailer of an answer a write coordinator gave in a node's stead: the
#: coordinator's gRPC address. A client may send its next small writes to that
#: node's door itself (tristore/client/_door.py), saving the hop.
WRITE_HINT = "x-tristore-write-coordinator"
#: The longest frame the door takes: a small body, its header and the call's
#: metadata (a longer one breaks the stream, as gRPC refuses an oversized message).
MAX_FRAME_BYTES = SMALL_BODY_MAX + (256 << 10)

_OK = grpc.StatusCode.OK.value[0]


def _code(status: grpc.StatusCode) -> int:
    return int(status.value[0])


class _Aborted(grpc.aio.AbortError):
    """A handler aborted the call (grpc.aio's own abort raises AbortError too,
    which the interceptor's wrap lets through)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: Any) -> None:
        super().__init__(details)
        self.status = code
        self.details = details
        self.trailers = tuple(trailers or ())


class DoorContext:
    """What the wrapped handlers and the guard ask of a gRPC servicer context,
    for a call that came through the door."""

    __slots__ = ("_code", "_metadata", "_peer", "_secure")

    def __init__(self, metadata: tuple[tuple[str, str], ...], peer: str, secure: bool) -> None:
        self._metadata = metadata
        self._peer = peer
        self._secure = secure
        self._code: grpc.StatusCode | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> dict[str, list[bytes]]:
        # As grpc's: aws:SecureTransport is true on a TLS stream.
        return {"transport_security_type": [b"ssl"]} if self._secure else {}

    def code(self) -> grpc.StatusCode | None:
        return self._code

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        self._code = code
        raise _Aborted(code, details, trailing_metadata)


def grpc_peer(caller: str) -> str:
    """A stream's ``host:port`` as gRPC names a peer (``ipv4:...``, ``ipv6:[...]:...``)."""
    host, _, port = caller.rpartition(":")
    if ":" in host:
        return f"ipv6:[{host.strip('[]')}]:{port}"
    return f"ipv4:{caller}"


class Relay(Protocol):
    """Answers some door calls in another process (node/relay.py)."""

    #: The door whose handlers run calls relayed to this process; the door
    #: sets it when it opens.
    door: Door | None
    #: The full method names it may answer; the door runs every other call.
    methods: frozenset[str]

    async def __call__(
        self,
        call: objects_pb2.DoorCall,
        caller: str,
        here: Callable[[], Awaitable[objects_pb2.DoorAnswer]],
    ) -> objects_pb2.DoorAnswer:
        """``call``'s answer: from another process, or ``here()``'s."""
        ...


class Door:
    """Answers door calls with the gRPC server's wrapped handlers
    (``handlers``: full method name to the wrapped unary handler), or hands
    them to ``relay`` first."""

    def __init__(
        self,
        handlers: Mapping[str, grpc.RpcMethodHandler],
        secure: bool,
        relay: Relay | None = None,
    ) -> None:
        self._handlers = {m: h for m, h in handlers.items() if m in METHODS and h.unary_unary}
        self._secure = secure
        self._relay = relay
        self._loop = LoopBound()
        if relay is not None:
            relay.door = self

    def service(self) -> PipeService[objects_pb2.DoorCall, objects_pb2.DoorAnswer]:
        from tristore.framed import PipeService

        return PipeService(DOOR_PIPE, objects_pb2.DoorCall.FromString, self.answer, with_peer=True)

    async def answer(
        self, call: objects_pb2.DoorCall, caller: str, here: bool = False
    ) -> objects_pb2.DoorAnswer:
        """Run ``call`` for ``caller`` (its ``host:port``); unless ``here``
        (a call another process relayed), the relay may answer it instead."""
        if not here and self._relay is not None and call.method in self._relay.methods:
            return await self._relay(call, caller, lambda: self._run(call, caller))
        return await self._run(call, caller)

    async def _run(self, call: objects_pb2.DoorCall, caller: str) -> objects_pb2.DoorAnswer:
        handler = self._handlers.get(call.method)
        if handler is None:
            return objects_pb2.DoorAnswer(
                id=call.id,
                code=_code(grpc.StatusCode.UNIMPLEMENTED),
                details=f"{call.method} is not served on the door: call it over gRPC",
            )
        ctx = DoorContext(
            tuple((m.key, m.value) for m in call.metadata), grpc_peer(caller), self._secure
        )
        request = handler.request_deserializer(call.request)
        try:
            limit = call.timeout_ms / 1000 if call.timeout_ms else None
            async with Timeout(self._loop.loop, limit):
                response = await handler.unary_unary(request, ctx)
        except _Aborted as a:
            return objects_pb2.DoorAnswer(
                id=call.id,
                code=_code(a.status),
                details=a.details,
                trailers=[objects_pb2.DoorMetadatum(key=k, value=v) for k, v in a.trailers],
            )
        except TimeoutError:
            return objects_pb2.DoorAnswer(
                id=call.id,
                code=_code(grpc.StatusCode.DEADLINE_EXCEEDED),
                details="Deadline Exceeded",
            )
        return objects_pb2.DoorAnswer(
            id=call.id, code=_OK, response=handler.response_serializer(response)
        )
