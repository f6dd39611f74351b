"""A resent PUT (an earlier attempt of the same call failed without saying
whether it took effect) finds that attempt instead of writing twice, and a
conditional one never answers a refusal for a write that happened.

The SDK sets ``resend`` only after such a failure, which a test cannot cause at
will; these requests set it by hand, straight over gRPC, as the SDK's retry
would send them (tests/unit/test_client_retries.py checks that it does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from tests.integration.cluster import DevCluster, signed_channel
from tristore import errors
from tristore.pb import objects_pb2 as pb
from tristore.pb import objects_pb2_grpc

pytestmark = pytest.mark.integration

VERSIONED = "resend-versioned"
PLAIN = "resend-plain"


@pytest.fixture(scope="module")
def stub(cluster: DevCluster) -> Iterator[objects_pb2_grpc.ObjectServiceStub]:
    with cluster.client() as c:
        c.create_bucket(VERSIONED)
        c.put_bucket_versioning(VERSIONED, "Enabled")
        c.create_bucket(PLAIN)
    channel = signed_channel(cluster.config.nodes[1].grpc)
    yield objects_pb2_grpc.ObjectServiceStub(channel)
    channel.close()


def put(
    stub: objects_pb2_grpc.ObjectServiceStub,
    bucket: str,
    key: str,
    body: bytes,
    rid: str,
    resend: bool = False,
    began_ms: int | None = None,
    **conditions: str,
) -> pb.ObjectInfo:
    header = pb.PutObjectHeader(
        bucket=bucket,
        key=key,
        size=len(body),
        request_id=rid,
        resend=resend,
        first_attempt_ms=began_ms if began_ms is not None else int(time.time() * 1000),
        **conditions,
    )
    resp = stub.PutObject(iter([pb.PutObjectRequest(header=header, data=body)]))
    return resp.info


def refusal(fn, *args, **kw) -> errors.TristoreError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kw)
    return errors.from_rpc_error(info.value)


def versions(cluster: DevCluster, bucket: str, key: str) -> list[str]:
    with cluster.client() as c:
        return [
            v.version_id
            for page in c.iter_object_versions(bucket, prefix=key)
            for v in page.versions
            if v.key == key
        ]


def test_a_resent_put_whose_attempt_is_current_is_not_written_again(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    began = int(time.time() * 1000)
    first = put(stub, VERSIONED, "plain", b"one", "rid-plain-1", began_ms=began)
    again = put(stub, VERSIONED, "plain", b"one", "rid-plain-1", resend=True, began_ms=began)
    assert again.version_id == first.version_id
    assert versions(cluster, VERSIONED, "plain") == [first.version_id]


def test_a_resent_create_that_took_effect_succeeds_even_when_replaced_since(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    began = int(time.time() * 1000)
    created = put(stub, VERSIONED, "cas", b"mine", "rid-cas-1", began_ms=began, if_none_match="*")
    with cluster.client() as c:
        other = c.put_object(VERSIONED, "cas", b"theirs")
    # Without the request id the retry would be refused (the key exists), a lie.
    again = put(stub, VERSIONED, "cas", b"mine", "rid-cas-1", True, began, if_none_match="*")
    assert again.version_id == created.version_id
    assert set(versions(cluster, VERSIONED, "cas")) == {created.version_id, other.version_id}
    with cluster.client() as c:
        assert c.get_object(VERSIONED, "cas") == b"theirs"  # nothing rewritten


def test_a_resent_create_that_never_took_effect_is_refused_truthfully(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    began = int(time.time() * 1000)
    with cluster.client() as c:
        c.put_object(VERSIONED, "taken", b"theirs")
    err = refusal(
        put, stub, VERSIONED, "taken", b"mine", "rid-never", True, began, if_none_match="*"
    )
    assert err.code == "PreconditionFailed", err


def test_a_resent_if_match_that_took_effect_succeeds(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    with cluster.client() as c:
        base = c.put_object(VERSIONED, "swap", b"base")
    began = int(time.time() * 1000)
    swapped = put(stub, VERSIONED, "swap", b"mine", "rid-swap", False, began, if_match=base.etag)
    with cluster.client() as c:
        c.put_object(VERSIONED, "swap", b"theirs")
    again = put(stub, VERSIONED, "swap", b"mine", "rid-swap", True, began, if_match=base.etag)
    assert again.version_id == swapped.version_id


def test_without_versions_a_changed_key_makes_the_outcome_unknown(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    began = int(time.time() * 1000)
    put(stub, PLAIN, "cas", b"mine", "rid-plain-cas", began_ms=began, if_none_match="*")
    with cluster.client() as c:
        c.delete_object(PLAIN, "cas")
    # The key is absent again: a naive retry would create it a second time.
    err = refusal(put, stub, PLAIN, "cas", b"mine", "rid-plain-cas", True, began, if_none_match="*")
    assert err.code == "OutcomeUnknown", err
    with cluster.client() as c, pytest.raises(errors.NoSuchKey):
        c.get_object(PLAIN, "cas")


def test_without_versions_a_current_attempt_is_still_found(
    stub: objects_pb2_grpc.ObjectServiceStub,
) -> None:
    began = int(time.time() * 1000)
    created = put(stub, PLAIN, "mine", b"v", "rid-plain-found", began_ms=began, if_none_match="*")
    again = put(stub, PLAIN, "mine", b"v", "rid-plain-found", True, began, if_none_match="*")
    assert again.etag == created.etag and again.last_modified_ms == created.last_modified_ms


@pytest.mark.parametrize("rid", ["has space", "x" * 65, "dot.s", "ünï"])
def test_a_bad_request_id_is_refused(stub: objects_pb2_grpc.ObjectServiceStub, rid: str) -> None:
    err = refusal(put, stub, PLAIN, "bad-rid", b"v", rid)
    assert err.code == "InvalidArgument", err
