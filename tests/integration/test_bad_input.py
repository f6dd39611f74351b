"""Bad input gets the right S3 error and changes nothing (DESIGN.md invariant 6).

These go straight at the server over gRPC, past the SDK's own checks, so the
server's validation is what is tested; the SDK's is covered in tests/unit.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.integration.cluster import DevCluster, signed_channel
from tristore import errors
from tristore.model import SMALL_BODY_MAX
from tristore.pb import objects_pb2 as pb
from tristore.pb import objects_pb2_grpc

pytestmark = pytest.mark.integration

BUCKET = "badinput"


@pytest.fixture(scope="module")
def stub(cluster: DevCluster) -> Iterator[objects_pb2_grpc.ObjectServiceStub]:
    with cluster.client() as c:
        c.create_bucket(BUCKET)
    channel = signed_channel(cluster.config.nodes[0].grpc)
    yield objects_pb2_grpc.ObjectServiceStub(channel)
    channel.close()


def _error(fn, request) -> errors.TristoreError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        result = fn(request)
        if hasattr(result, "__iter__") and not isinstance(result, bytes):
            list(result)
    return errors.from_rpc_error(info.value)


def _put(
    stub: objects_pb2_grpc.ObjectServiceStub, key: str, data: bytes = b"x", **header: object
) -> errors.TristoreError:
    def requests() -> Iterator[pb.PutObjectRequest]:
        hdr = pb.PutObjectHeader(
            bucket=header.pop("bucket", BUCKET),
            key=key,
            size=header.pop("size", len(data)),
            **header,
        )  # type: ignore[arg-type]
        yield pb.PutObjectRequest(header=hdr, data=data)

    return _error(stub.PutObject, requests())


def _assert_absent(cluster: DevCluster, key: str) -> None:
    with cluster.client() as c:
        names = {e.key for e in c.list_objects(BUCKET).contents}
    assert key not in names
    for spec in cluster.config.nodes:
        assert (BUCKET, key) not in cluster.node_versions(spec.name)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ab", "InvalidBucketName"),
        ("a" * 64, "InvalidBucketName"),
        ("UPPER", "InvalidBucketName"),
        ("has_underscore", "InvalidBucketName"),
        ("-leading", "InvalidBucketName"),
        ("double..dot", "InvalidBucketName"),
        ("192.168.1.1", "InvalidBucketName"),
        ("xn--punycode", "InvalidBucketName"),
        ("ends-s3alias", "InvalidBucketName"),
    ],
)
def test_bad_bucket_names(stub: objects_pb2_grpc.ObjectServiceStub, name: str, code: str) -> None:
    err = _error(stub.CreateBucket, pb.CreateBucketRequest(bucket=name))
    assert err.code == code
    assert name[:10] in err.message


def test_missing_bucket(stub: objects_pb2_grpc.ObjectServiceStub) -> None:
    assert _put(stub, "k", bucket="no-such-bucket").code == "NoSuchBucket"
    assert (
        _error(stub.HeadObject, pb.HeadObjectRequest(bucket="no-such-bucket", key="k")).code
        == "NoSuchBucket"
    )
    assert (
        _error(stub.ListObjects, pb.ListObjectsRequest(bucket="no-such-bucket")).code
        == "NoSuchBucket"
    )
    assert (
        _error(stub.DeleteBucket, pb.DeleteBucketRequest(bucket="no-such-bucket")).code
        == "NoSuchBucket"
    )
    # The whole call, not one error a key (S3's 404).
    gone = pb.DeleteObjectsRequest(bucket="no-such-bucket", objects=[pb.ObjectIdentifier(key="k")])
    assert _error(stub.DeleteObjects, gone).code == "NoSuchBucket"


def test_key_limits(cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub) -> None:
    too_long = "é" * 513  # 1026 bytes of UTF-8
    assert _put(stub, too_long).code == "KeyTooLongError"
    _assert_absent(cluster, too_long)
    assert _put(stub, "").code == "InvalidArgument"
    exactly = "é" * 512  # 1024 bytes: allowed
    with cluster.client() as c:
        c.put_object(BUCKET, exactly, b"ok")
        assert c.get_object(BUCKET, exactly) == b"ok"


def test_metadata_limits(cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub) -> None:
    big = {"k": "v" * 2048}
    assert _put(stub, "meta-big", metadata=big).code == "MetadataTooLarge"
    _assert_absent(cluster, "meta-big")
    assert _put(stub, "meta-bad", metadata={"bad name": "v"}).code == "InvalidArgument"
    assert (
        _put(stub, "meta-crlf", metadata={"ok": "line\r\nX-Injected: 1"}).code == "InvalidArgument"
    )
    for key in ("meta-bad", "meta-crlf"):
        _assert_absent(cluster, key)


def big_body() -> bytes:
    return b"q" * (2 * 1024 * 1024)


def test_declared_size_mismatch_writes_nothing(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    assert _put(stub, "short-body", data=b"abc", size=10).code == "IncompleteBody"
    assert _put(stub, "bad-md5", data=b"abc", content_md5="0" * 32).code == "BadDigest"
    # Not an MD5 at all: S3's InvalidDigest, before any of the body is kept.
    assert _put(stub, "bad-md5", data=b"abc", content_md5="zz").code == "InvalidDigest"
    assert _put(stub, "bad-md5", data=big_body(), content_md5="zz").code == "InvalidDigest"
    big = b"z" * (2 * 1024 * 1024 + 5)  # a staged (chunked) body, not inline
    assert _put(stub, "short-big", data=big, size=len(big) + 1).code == "IncompleteBody"
    for key in ("short-body", "bad-md5", "short-big"):
        _assert_absent(cluster, key)


def test_entity_too_large_is_refused_up_front(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    assert _put(stub, "huge", size=6 * 1024**3).code == "EntityTooLarge"
    _assert_absent(cluster, "huge")


def test_list_arguments(stub: objects_pb2_grpc.ObjectServiceStub) -> None:
    err = _error(
        stub.ListObjects, pb.ListObjectsRequest(bucket=BUCKET, max_keys=-1, has_max_keys=True)
    )
    assert err.code == "InvalidArgument"
    assert "max-keys" in err.message
    # More than a page holds is capped, as S3 caps it, not refused.
    stub.ListObjects(pb.ListObjectsRequest(bucket=BUCKET, max_keys=5000, has_max_keys=True))
    err = _error(
        stub.ListObjects, pb.ListObjectsRequest(bucket=BUCKET, continuation_token="garbage!")
    )
    assert err.code == "InvalidArgument"


def test_bad_version_id_and_range(
    stub: objects_pb2_grpc.ObjectServiceStub, cluster: DevCluster
) -> None:
    with cluster.client() as c:
        c.put_object(BUCKET, "v", b"abc")
    assert (
        _error(
            stub.HeadObject, pb.HeadObjectRequest(bucket=BUCKET, key="v", version_id="nope")
        ).code
        == "InvalidArgument"
    )
    assert (
        _error(
            stub.HeadObject, pb.HeadObjectRequest(bucket=BUCKET, key="v", version_id="0" * 32)
        ).code
        == "NoSuchVersion"
    )
    req = pb.GetObjectRequest(
        bucket=BUCKET, key="v", has_range=True, range=pb.Range(start=5, end=9)
    )
    assert _error(stub.GetObject, req).code == "InvalidRange"


def test_header_must_come_first(stub: objects_pb2_grpc.ObjectServiceStub) -> None:
    assert _error(stub.PutObject, iter([pb.PutObjectRequest(data=b"x")])).code == "InvalidArgument"
    assert _error(stub.PutObject, iter([])).code == "InvalidArgument"


def test_small_object_calls_refuse_what_they_cannot_carry(
    cluster: DevCluster, stub: objects_pb2_grpc.ObjectServiceStub
) -> None:
    big = b"x" * (SMALL_BODY_MAX + 1)
    hdr = pb.PutObjectHeader(bucket=BUCKET, key="small-too-big", size=len(big))
    err = _error(stub.PutSmallObject, pb.PutObjectRequest(header=hdr, data=big))
    assert isinstance(err, errors.InvalidArgument) and "PutObject" in err.message
    _assert_absent(cluster, "small-too-big")
    err = _error(stub.PutSmallObject, pb.PutObjectRequest(data=b"x"))
    assert isinstance(err, errors.InvalidArgument)
    # A declared size that is not the body's: nothing is written.
    hdr = pb.PutObjectHeader(bucket=BUCKET, key="small-short", size=10)
    err = _error(stub.PutSmallObject, pb.PutObjectRequest(header=hdr, data=b"abc"))
    assert isinstance(err, errors.IncompleteBody | errors.InvalidArgument), err
    _assert_absent(cluster, "small-short")
    # A body over the asked-for size is described, not sent.
    with cluster.client() as c:
        c.put_object(BUCKET, "mid", b"m" * 5000)
    get = pb.GetObjectRequest(bucket=BUCKET, key="mid")
    resp = stub.GetSmallObject(pb.GetSmallObjectRequest(get=get, max_size=4096))
    assert resp.too_large and not resp.data and resp.info.size == 5000
    resp = stub.GetSmallObject(pb.GetSmallObjectRequest(get=get, max_size=5000))
    assert not resp.too_large and resp.data == b"m" * 5000
    ranged = pb.GetObjectRequest(
        bucket=BUCKET, key="mid", has_range=True, range=pb.Range(start=10, end=19)
    )
    resp = stub.GetSmallObject(pb.GetSmallObjectRequest(get=ranged, max_size=4096))
    assert (resp.data, resp.range_start, resp.range_end) == (b"m" * 10, 10, 19)
