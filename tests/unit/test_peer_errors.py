"""How a failed call to a peer node is read: a node that cannot answer
(the connection broke, it timed out, it is gone) is ReplicaUnavailable, so the
coordinator asks the AZ's next node; a node's own answer keeps its error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest

from node.peers import RemoteReplica, ReplicaUnavailable, _unavailable
from tristore import config, errors
from tristore.config import NodeSpec
from tristore.pb import replica_pb2_grpc

pytestmark = pytest.mark.unit

SPEC = NodeSpec("b1", 3, "az-b", "127.0.0.1:1", "127.0.0.1:2")


def _rpc_error(
    code: grpc.StatusCode, details: str, err: errors.TristoreError | None = None
) -> grpc.aio.AioRpcError:
    trailers = grpc.aio.Metadata(*errors.trailing_metadata(err)) if err else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details)


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.UNAVAILABLE, "Socket closed"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        (grpc.StatusCode.CANCELLED, "Cancelled"),
        # grpc.aio's mask when the connection broke under a streamed call.
        (grpc.StatusCode.INTERNAL, errors.GRPC_CORE_ERROR),
    ],
)
def test_a_node_that_cannot_answer_is_unavailable(code: grpc.StatusCode, details: str) -> None:
    exc = _unavailable(SPEC, _rpc_error(code, details))
    assert isinstance(exc, ReplicaUnavailable)
    assert "node b1 (az-b)" in str(exc) and code.name in str(exc)


def test_a_nodes_own_errors_keep_their_kind() -> None:
    own = _rpc_error(
        grpc.StatusCode.INTERNAL, "the record is damaged", errors.InternalError("damaged")
    )
    assert type(_unavailable(SPEC, own)) is errors.InternalError
    gone = _rpc_error(grpc.StatusCode.NOT_FOUND, "no bucket", errors.NoSuchBucket("no bucket"))
    assert type(_unavailable(SPEC, gone)) is errors.NoSuchBucket


class _RefusesBodies(replica_pb2_grpc.ReplicaServiceServicer):
    """A peer whose disk fills as a body arrives: it takes the first chunk,
    then refuses the stage with StorageFull, as a node's servicer does."""

    async def Stage(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        await anext(aiter(request_iterator))
        full = errors.StorageFull("node b1 is out of disk space")
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED, full.message, errors.trailing_metadata(full)
        )


def test_a_stage_the_peer_ends_early_says_why(raw_config: dict[str, Any]) -> None:
    """The peer ends a Stage call before the body is all sent: the writer is
    told the peer's own error (StorageFull), or, when grpc.aio lost it under a
    failed write, that the peer is unavailable: either way the coordinator
    tries the AZ's next node. Never grpc.aio's "RPC already finished" of the
    next write, which escaped as an InternalError to the client (seen in the
    soak, with a disk filling). Several stages: which of the two a write
    meets depends on timing."""
    asyncio.run(_stage_refused(raw_config))


async def _stage_refused(raw_config: dict[str, Any]) -> None:
    server = grpc.aio.server()
    replica_pb2_grpc.add_ReplicaServiceServicer_to_server(_RefusesBodies(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    cfg = config.parse(raw_config, env={})
    spec = replace(cfg.nodes[2], grpc=f"127.0.0.1:{port}")
    peer = RemoteReplica(spec, cfg, cfg.nodes[0].name, channel=grpc.aio.insecure_channel)

    async def chunks() -> AsyncIterator[tuple[int, bytes]]:
        for i in range(400):
            yield i, b"x" * 65536

    try:
        for _ in range(8):
            with pytest.raises((errors.StorageFull, ReplicaUnavailable)):
                await peer.stage(b"\x01" * 16, chunks())
    finally:
        await peer.channel.close()
        await server.stop(None)


def test_a_stream_step_cancelled_as_it_completes_stays_cancelled(
    raw_config: dict[str, Any],
) -> None:
    """A stage stream's writer that gives up (the upload failed, its client
    went away) cancels the stream's task; a cancellation arriving as the
    task's step (a chunk's write) completed was dropped by asyncio.wait_for
    on Python 3.11, and the task then waited for a chunk that never came
    ("Task was destroyed but it is pending!" in a node's log, its Stage call
    left open, seen under node kills)."""

    async def go() -> None:
        cfg = config.parse(raw_config, env={})
        peer = RemoteReplica(
            cfg.nodes[2], cfg, cfg.nodes[0].name, channel=grpc.aio.insecure_channel
        )
        try:
            step: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(peer._within(step, "took no data"))
            await asyncio.sleep(0)  # the task waits on its step
            step.set_result("written")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await peer.channel.close()

    asyncio.run(go())
