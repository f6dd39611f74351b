"""How a failed call to a peer node is read: a node that cannot answer
(the connection broke, it timed out, it is gone) is ReplicaUnavailable, so the
coordinator asks the AZ's next node; a node's own answer keeps its error."""

from __future__ import annotations

import grpc
import pytest

from node.peers import ReplicaUnavailable, _unavailable
from tristore import errors
from tristore.config import NodeSpec

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
