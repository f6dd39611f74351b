"""The door (tristore/door.py) of a real ``dev up`` cluster: the SDK's small
calls travel on it, answer as gRPC does, and it lets in only signed calls of
the methods it serves, over TLS that checks the node."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.cluster import ROOT, DevCluster
from tristore import errors, framed, tls
from tristore.client import _door
from tristore.credentials import Signer
from tristore.door import DOOR_PIPE
from tristore.pb import objects_pb2

pytestmark = pytest.mark.integration

BUCKET = "door-test"
HEAD = "/tristore.v1.ObjectService/HeadBucket"


@pytest.fixture(scope="module")
def seeded(cluster: DevCluster) -> DevCluster:
    with cluster.client() as c, contextlib.suppress(errors.BucketAlreadyOwnedByYou):
        c.create_bucket(BUCKET)
    return cluster


def _door_of(cluster: DevCluster) -> str:
    address = cluster.config.door_address(cluster.config.nodes[0].grpc)
    assert address is not None
    return address


def _tls() -> ssl.SSLContext:
    return ssl.create_default_context(cadata=Path(os.environ[tls.CA_BUNDLE_ENV]).read_text())


def test_the_sdk_goes_through_the_door_and_answers_as_over_grpc(
    seeded: DevCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = seeded.config.nodes[0]
    before = seeded.metric(node.name, "tristore_rpc_handled_total")
    outcomes: list[list[Any]] = []
    for offset in ("", "0"):  # the door, then gRPC alone
        monkeypatch.setenv(_door.DOOR_OFFSET_ENV, offset)
        with seeded.client(node.grpc) as c:
            got: list[Any] = []
            c.put_object(BUCKET, "k", b"hello door")
            got.append(c.get_object(BUCKET, "k"))
            got.append(c.head_object(BUCKET, "k").size)
            c.delete_object(BUCKET, "k")
            for call in (
                lambda: c.get_object(BUCKET, "k"),
                lambda: c.head_bucket("no-such-door-bucket"),
            ):
                with pytest.raises(errors.TristoreError) as err:
                    call()
                got.append((type(err.value), err.value.message, err.value.delete_marker is None))
            if offset == "":
                assert seeded.metric(node.name, "tristore_door_connections") >= 1
            outcomes.append(got)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == b"hello door"
    # Every call was counted as a call of its method, door or not.
    assert seeded.metric(node.name, "tristore_rpc_handled_total") - before >= 2 * 6


def test_the_door_takes_only_signed_calls_of_its_methods(seeded: DevCluster) -> None:
    async def go() -> None:
        client = _door.DoorClient(_door_of(seeded), _tls)
        request = objects_pb2.HeadBucketRequest(bucket=BUCKET)
        try:
            signer = Signer(ROOT)
            ok = await client.call(
                HEAD, request.SerializeToString(), signer.metadata(HEAD, request), 10
            )
            assert ok.code == 0
            assert objects_pb2.HeadBucketResponse.FromString(ok.response).bucket.name == BUCKET
            # Unsigned, or signed for another request: refused as gRPC refuses them.
            other = signer.metadata(HEAD, objects_pb2.HeadBucketRequest(bucket="x"))
            for md, expected in (
                ([], errors.AccessDenied),
                (other, errors.SignatureDoesNotMatch),
            ):
                refused = await client.call(HEAD, request.SerializeToString(), md, 10)
                err = errors.from_grpc(
                    errors.status_of_number(refused.code),
                    refused.details,
                    [(t.key, t.value) for t in refused.trailers],
                )
                assert type(err) is expected, err
            # An internal method is never served here, signed or not.
            internal = await client.call("/tristore.v1.ReplicaService/Commit", b"", [], 10)
            assert internal.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
        finally:
            client.close()

    asyncio.run(go())


def test_the_door_is_tls_checked_and_serves_one_pipe(seeded: DevCluster, tmp_path: Path) -> None:
    host, _, port = _door_of(seeded).rpartition(":")
    # Plaintext: no frame comes back, the handshake fails on the server's side.
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(framed.frame(DOOR_PIPE.encode()))
        s.settimeout(5)
        assert s.recv(100)[:1] in (b"\x15", b"")  # a TLS alert, or the end
    # A client that does not trust the cluster's CA refuses the node.
    rogue = tmp_path / "rogue"
    tls.ensure_ca(rogue)
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx = ssl.create_default_context(cafile=str(rogue / "ca.crt"))
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            ctx.wrap_socket(raw, server_hostname=host)
    # TLS without a client certificate: the door answers its own pipe only.
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        _tls().wrap_socket(raw, server_hostname=host) as s,
    ):
        s.sendall(framed.frame(framed.REPLICA_PIPE.encode()))
        s.settimeout(5)
        answer = s.recv(1000)
        assert b"this port serves" in answer and DOOR_PIPE.encode() in answer
