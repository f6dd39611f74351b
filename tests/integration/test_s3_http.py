"""The S3 HTTP API with a real S3 client (boto3) and plain HTTP, against a
default dev cluster (TLS, authenticated) started by ``dev up``, configured
only from the export lines ``dev up`` prints; and objects written through one
door (gRPC SDK) read through the other (HTTP), and back."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.etree import ElementTree as ET

import aiohttp
import boto3
import pytest
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpchecksum import StreamingChecksumBody

from node.s3.objects import WHOLE_ANSWER_MAX
from node.s3.xml import NS as S3_NS
from tests.integration.cluster import (
    ROOT,
    DevCluster,
    exported,
    free_base_port,
    start_cluster,
    wait_until,
)
from tristore import checksums, cors, errors, sigv4, tls
from tristore.model import CompletedPart, CopySource

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
#: The nodes' [node] s3_domain (virtual-host addressing).
VHOST_DOMAIN = "s3.test"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    # Ports below the range the other integration modules pick from: the S3
    # ports sit between a cluster's own blocks.
    base = free_base_port(low=12_000, high=19_000)
    c = start_cluster(
        tmp_path_factory.mktemp("s3"),
        "--nodes-per-az",
        "1",
        "--replicators",
        "0",
        base_port=base,
        extra_env={"TRISTORE_NODE_S3_DOMAIN": VHOST_DOMAIN},
    )
    try:
        yield c
    finally:
        c.down()


@pytest.fixture(scope="module")
def env(cluster: DevCluster) -> dict[str, str]:
    """The AWS_* export lines of ``dev up`` (run again: it starts nothing new)."""
    out = exported(cluster.dev("up").stdout.decode())
    return {k: v for k, v in out.items() if k.startswith("AWS_")}


def _client(env: dict[str, str], **kw: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=kw.pop("access_key", env["AWS_ACCESS_KEY_ID"]),
        aws_secret_access_key=kw.pop("secret", env["AWS_SECRET_ACCESS_KEY"]),
        region_name=env["AWS_DEFAULT_REGION"],
        verify=env["AWS_CA_BUNDLE"],
        **kw,
    )


@pytest.fixture(scope="module")
def s3(env: dict[str, str]) -> Iterator[Any]:
    client = _client(env)
    yield client
    client.close()  # its pooled connections, closed now rather than by the collector


@pytest.fixture(scope="module")
def s3_plain(env: dict[str, str]) -> Iterator[Any]:
    """A client that sends no flexible checksum unless an operation needs one
    (boto3 sends a CRC32 with every PUT and UploadPart by default)."""
    client = _client(env, config=Config(request_checksum_calculation="when_required"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="http")
    return "http"


def _ssl(env: dict[str, str]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=env["AWS_CA_BUNDLE"])


def _fetch(
    env: dict[str, str],
    url: str,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """The body of a 2xx answer (HTTPError for any other), over plain HTTPS."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    return _urlopen(req, env)


def _urlopen(req: urllib.request.Request, env: dict[str, str]) -> bytes:
    """urlopen's body; an HTTPError raised with its body read and its
    connection closed (one left open is closed only when collected: a
    ResourceWarning in whichever test runs then)."""
    try:
        with urllib.request.urlopen(req, context=_ssl(env), timeout=30) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as e:
        with e:
            body = e.read()
        raise urllib.error.HTTPError(e.url, e.code, e.msg, e.headers, io.BytesIO(body)) from None


def _error_of(exc: urllib.error.HTTPError) -> dict[str, str]:
    with exc:
        root = ET.fromstring(exc.read())
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def test_dev_up_exports_what_boto3_needs(cluster: DevCluster, env: dict[str, str]) -> None:
    assert env["AWS_ENDPOINT_URL"] == cluster.s3_endpoint
    assert env["AWS_ENDPOINT_URL"].startswith("https://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == ROOT.access_key_id
    assert env["AWS_SECRET_ACCESS_KEY"] == ROOT.secret_access_key
    assert env["AWS_DEFAULT_REGION"] == sigv4.DEFAULT_REGION
    assert Path(env["AWS_CA_BUNDLE"]).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    # Every node serves the API.
    for node in cluster.config.nodes:
        host, _, port = node.s3.rpartition(":")
        conn = http.client.HTTPSConnection(host, int(port), context=_ssl(env), timeout=10)
        try:
            conn.request("GET", "/")
            with conn.getresponse() as resp:
                assert resp.status == 403  # anonymous ListBuckets
                assert b"<Code>AccessDenied</Code>" in resp.read()
        finally:
            conn.close()


def test_buckets(s3: Any) -> None:
    s3.create_bucket(Bucket="b-one")
    assert "b-one" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="b-one")
    assert s3.get_bucket_location(Bucket="b-one")["LocationConstraint"] is None
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="b-one")
    assert e.value.response["Error"]["Code"] in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou")
    s3.put_object(Bucket="b-one", Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="b-one")
    assert e.value.response["Error"]["Code"] == "BucketNotEmpty"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    s3.delete_object(Bucket="b-one", Key="k")
    s3.delete_bucket(Bucket="b-one")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="b-one")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="b-one")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"


def _length(r: dict[str, Any]) -> str | None:
    """The Content-Length of a boto3 answer (or of a ClientError's response)."""
    return r["ResponseMetadata"]["HTTPHeaders"].get("content-length")


def _signed_heads(env: dict[str, str], urls: list[str]) -> tuple[list[int], int]:
    """HEAD each of ``urls`` (signed by botocore) with one aiohttp client
    session: the statuses, and how many connections it opened."""

    async def go() -> tuple[list[int], int]:
        opened: list[object] = []

        async def on_open(*_: object) -> None:
            opened.append(1)

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(on_open)
        creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        statuses = []
        tls_context = _ssl(env)  # one: connections are pooled by it too
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            for url in urls:
                req = AWSRequest(method="HEAD", url=url)
                S3SigV4Auth(creds, "s3", env["AWS_DEFAULT_REGION"]).add_auth(req)
                async with session.head(url, headers=dict(req.headers), ssl=tls_context) as resp:
                    await resp.read()
                    statuses.append(resp.status)
        return statuses, len(opened)

    return asyncio.run(go())


def test_answers_without_a_body_say_content_length_0(
    s3: Any, env: dict[str, str], bucket: str
) -> None:
    """HeadBucket, and HEAD answers of errors, carry Content-Length: 0, as
    S3's: without it aiohttp's client drops the connection after each one."""
    etag = s3.put_object(Bucket=bucket, Key="cl", Body=b"body")["ETag"]
    assert _length(s3.head_bucket(Bucket=bucket)) == "0"
    assert _length(s3.head_object(Bucket=bucket, Key="cl")) == "4"
    assert _length(s3.put_object_tagging(Bucket=bucket, Key="cl", Tagging={"TagSet": []})) == "0"
    for kw in ({"Key": "absent"}, {"Key": "cl", "IfMatch": '"0"'}):
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, **kw)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (404, 412)
        assert _length(e.value.response) == "0", kw
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="no-such-bucket-here")
    assert _length(e.value.response) == "0"
    # 204 and 304 carry none (RFC 9110): their status says there is no body.
    assert _length(s3.delete_object(Bucket=bucket, Key="absent")) is None
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="cl", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert _length(e.value.response) is None
    # aiohttp's client keeps one connection alive through them all.
    url = f"{env['AWS_ENDPOINT_URL']}/{bucket}"
    statuses, connections = _signed_heads(env, [url, url, f"{url}/absent", url])
    assert (statuses, connections) == ([200, 200, 404, 200], 1)


def test_requests_leave_nothing_for_the_cyclic_collector(
    cluster: DevCluster, env: dict[str, str], bucket: str
) -> None:
    """A request's objects are freed by their reference counts. Each S3
    request once left ~30 in a reference cycle (the request held its call,
    which named the request): the node's collector then ran every ~2,000
    requests, freed ~30,000 objects at a time and stopped the node's event
    loop for 85-155 ms, every request on the node waiting. 3,000 signed
    HEADs here would leave ~90,000."""
    url = f"{env['AWS_ENDPOINT_URL']}/{bucket}"
    metric = "python_gc_objects_collected_total"
    before = cluster.metric("a1", metric)

    statuses, _ = _signed_heads(env, [url] * 3000)
    assert statuses == [200] * 3000
    collected = cluster.metric("a1", metric) - before
    assert collected < 3000, f"{collected:.0f} objects freed by the cyclic collector"


def test_put_get_head_delete_with_metadata(s3: Any, bucket: str) -> None:
    body = os.urandom(300_000)
    r = s3.put_object(
        Bucket=bucket,
        Key="dir/obj ü+x.bin",
        Body=body,
        ContentType="application/x-test",
        Metadata={"colour": "blue", "n": "1"},
        Tagging="a=1&b=two",
    )
    md5 = hashlib.md5(body).hexdigest()
    assert r["ETag"] == f'"{md5}"'
    # boto3 sends a CRC32 in an aws-chunked trailer by default; it comes back.
    assert r.get("ChecksumCRC32")
    g = s3.get_object(Bucket=bucket, Key="dir/obj ü+x.bin")
    assert g["Body"].read() == body
    assert g["ContentType"] == "application/x-test"
    assert g["Metadata"] == {"colour": "blue", "n": "1"}
    assert g["ETag"] == f'"{md5}"'
    assert g["TagCount"] == 2
    h = s3.head_object(Bucket=bucket, Key="dir/obj ü+x.bin")
    assert h["ContentLength"] == len(body)
    assert h["LastModified"].tzinfo is not None
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert h["ResponseMetadata"]["HostId"]  # x-amz-id-2, as botocore reads it
    s3.delete_object(Bucket=bucket, Key="dir/obj ü+x.bin")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/obj ü+x.bin")
    err = e.value.response["Error"]
    assert err["Code"] == "NoSuchKey"
    assert err["Resource"] == f"/{bucket}/dir/obj ü+x.bin"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_empty_objects_and_customer_keys(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert (got["ContentLength"], got["Body"].read()) == (0, b"")
    key = os.urandom(32)
    s3.put_object(
        Bucket=bucket, Key="ssec", Body=b"sealed", SSECustomerAlgorithm="AES256", SSECustomerKey=key
    )
    got = s3.get_object(
        Bucket=bucket, Key="ssec", SSECustomerAlgorithm="AES256", SSECustomerKey=key
    )
    assert got["Body"].read() == b"sealed"
    assert got["SSECustomerAlgorithm"] == "AES256"
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="ssec")
    with pytest.raises(ClientError):
        s3.get_object(
            Bucket=bucket, Key="ssec", SSECustomerAlgorithm="AES256", SSECustomerKey=os.urandom(32)
        )


def test_checksums_are_verified(s3: Any, bucket: str) -> None:
    # (CRC32C and CRC64NVME: botocore computes them with awscrt, a dependency.)
    for algo in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        r = s3.put_object(Bucket=bucket, Key=f"sum-{algo}", Body=b"checked", ChecksumAlgorithm=algo)
        assert r[f"Checksum{algo}"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="sum-bad", Body=b"checked", ChecksumCRC32="AAAAAA==")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Code"] == "BadDigest"  # as S3 answers it
    with pytest.raises(ClientError) as e:
        s3.put_object(
            Bucket=bucket, Key="md5-bad", Body=b"x", ContentMD5="XrY7u+Ae7tCTyyK7j1rNww=="
        )
    assert e.value.response["Error"]["Code"] == "BadDigest"
    # A body stored in chunks (its checksum computed beside its MD5, off the
    # event loop) is checked as well: a whole PUT, and a part.
    big = os.urandom(3 * MiB)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="sum-bad-big", Body=big, ChecksumCRC32="AAAAAA==")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    u = s3.create_multipart_upload(Bucket=bucket, Key="sum-bad-part")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(
            Bucket=bucket, Key="sum-bad-part", UploadId=u, PartNumber=1, Body=big,
            ChecksumSHA256=checksums.digest_of("sha256", b"another body"),
        )  # fmt: skip
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.list_parts(Bucket=bucket, Key="sum-bad-part", UploadId=u).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="sum-bad-part", UploadId=u)
    r = s3.put_object(Bucket=bucket, Key="sum-big", Body=big, ChecksumAlgorithm="SHA1")
    assert r["ChecksumSHA1"] == checksums.digest_of("sha1", big)
    for key in ("sum-bad", "md5-bad", "sum-bad-big"):
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key=key)


def _sums(r: dict[str, Any]) -> dict[str, str]:
    """The Checksum* fields of a boto3 answer (ChecksumType included)."""
    return {k: v for k, v in r.items() if k.startswith("Checksum")}


def test_stored_checksums_come_back_on_get_and_head(
    s3: Any, s3_plain: Any, env: dict[str, str]
) -> None:
    """S3's flexible checksums: stored with the object, returned on GET and
    HEAD with ChecksumMode=ENABLED (which boto3 then checks against the body),
    never for a range; an object sent without one gets a CRC-64/NVME."""
    s3.create_bucket(Bucket="sums")
    body = os.urandom(100_000)
    for algo in ("SHA256", "CRC32C", "CRC32", "SHA1", "CRC64NVME"):
        key = f"sum-{algo}"
        put = s3.put_object(Bucket="sums", Key=key, Body=body, ChecksumAlgorithm=algo)
        want = {f"Checksum{algo}": checksums.digest_of(algo.lower(), body)}
        want["ChecksumType"] = "FULL_OBJECT"
        assert _sums(put) == want, algo
        got = s3.get_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
        assert _sums(got) == want, algo
        # boto3 checks what it can (every algorithm here, with awscrt) as it reads.
        assert isinstance(got["Body"], StreamingChecksumBody), algo
        assert got["Body"].read() == body
        assert _sums(s3.head_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")) == want
        assert _sums(s3.head_object(Bucket="sums", Key=key)) == {}  # not asked
        ranged = s3.get_object(Bucket="sums", Key=key, Range="bytes=0-9", ChecksumMode="ENABLED")
        assert _sums(ranged) == {}
        assert ranged["Body"].read() == body[:10]
    # Sent with none (boto3 sends a CRC32 unless told not to): CRC-64/NVME, as S3.
    put = s3_plain.put_object(Bucket="sums", Key="none", Body=body)
    assert put["ChecksumCRC64NVME"] == checksums.digest_of("crc64nvme", body)
    head = s3.head_object(Bucket="sums", Key="none", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == put["ChecksumCRC64NVME"]
    got = s3.get_object(Bucket="sums", Key="none", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    # An algorithm asked for (x-amz-checksum-algorithm) with no value: computed.
    asking = _client(env, config=Config(request_checksum_calculation="when_required"))
    try:

        def ask(request: AWSRequest, **_: Any) -> None:
            request.headers["x-amz-checksum-algorithm"] = "SHA1"

        asking.meta.events.register("before-sign.s3.PutObject", ask)
        put = asking.put_object(Bucket="sums", Key="asked", Body=body)
    finally:
        asking.close()
    assert put["ChecksumSHA1"] == checksums.digest_of("sha1", body)
    # Listings name each object's algorithm and type, as S3's do.
    listed = {
        o["Key"]: (o.get("ChecksumAlgorithm"), o.get("ChecksumType"))
        for o in s3.list_objects_v2(Bucket="sums")["Contents"]
    }
    assert listed["sum-SHA256"] == (["SHA256"], "FULL_OBJECT")
    assert listed["none"] == (["CRC64NVME"], "FULL_OBJECT")
    assert listed["asked"] == (["SHA1"], "FULL_OBJECT")


def test_copies_keep_or_compute_the_checksum(s3: Any) -> None:
    s3.create_bucket(Bucket="sums-copy")
    body = os.urandom(70_000)
    s3.put_object(Bucket="sums-copy", Key="src", Body=body, ChecksumAlgorithm="SHA256")
    sha = checksums.digest_of("sha256", body)
    # No algorithm asked: the source's whole-object checksum is kept.
    c = s3.copy_object(Bucket="sums-copy", Key="kept", CopySource="sums-copy/src")
    assert c["CopyObjectResult"]["ChecksumSHA256"] == sha
    h = s3.head_object(Bucket="sums-copy", Key="kept", ChecksumMode="ENABLED")
    assert (h["ChecksumSHA256"], h["ChecksumType"]) == (sha, "FULL_OBJECT")
    # One asked: computed over the copied body.
    c = s3.copy_object(
        Bucket="sums-copy", Key="crc", CopySource="sums-copy/src", ChecksumAlgorithm="CRC32C"
    )
    crc = checksums.digest_of("crc32c", body)
    assert c["CopyObjectResult"]["ChecksumCRC32C"] == crc
    h = s3.head_object(Bucket="sums-copy", Key="crc", ChecksumMode="ENABLED")
    assert _sums(h) == {"ChecksumCRC32C": crc, "ChecksumType": "FULL_OBJECT"}
    # Onto itself, only to change the checksum: allowed, as in S3.
    s3.copy_object(
        Bucket="sums-copy", Key="src", CopySource="sums-copy/src", ChecksumAlgorithm="CRC32"
    )
    h = s3.head_object(Bucket="sums-copy", Key="src", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == checksums.digest_of("crc32", body)
    # A multipart source's checksum of parts is no checksum of the copy's one
    # body: the copy gets the whole body's, of the same algorithm.
    u = s3.create_multipart_upload(Bucket="sums-copy", Key="mp", ChecksumAlgorithm="SHA256")
    p = s3.upload_part(
        Bucket="sums-copy", Key="mp", UploadId=u["UploadId"], PartNumber=1, Body=body,
        ChecksumAlgorithm="SHA256",
    )  # fmt: skip
    listed = {"PartNumber": 1, "ETag": p["ETag"], "ChecksumSHA256": p["ChecksumSHA256"]}
    s3.complete_multipart_upload(
        Bucket="sums-copy", Key="mp", UploadId=u["UploadId"],
        MultipartUpload={"Parts": [listed]},
    )  # fmt: skip
    assert s3.head_object(Bucket="sums-copy", Key="mp", ChecksumMode="ENABLED")[
        "ChecksumSHA256"
    ].endswith("-1")
    c = s3.copy_object(Bucket="sums-copy", Key="mp-copy", CopySource="sums-copy/mp")
    assert c["CopyObjectResult"]["ChecksumSHA256"] == sha


def _multipart(s3: Any, key: str, parts: list[bytes], create: dict[str, str], **part: Any) -> Any:
    """Upload ``parts`` to sums-mp/``key``; the answers of Complete and of a HEAD
    asking for the checksum. ``part``: each UploadPart's extra arguments, or
    ``algorithms``, one ChecksumAlgorithm a part. Complete lists the parts'
    checksums only where S3 needs them (an upload of COMPOSITE type)."""
    created = s3.create_multipart_upload(Bucket="sums-mp", Key=key, **create)
    u = created["UploadId"]
    composite = created.get("ChecksumType") == "COMPOSITE"
    algorithms = part.pop("algorithms", [None] * len(parts))
    done = []
    for n, (data, algo) in enumerate(zip(parts, algorithms, strict=True), 1):
        extra = dict(part, ChecksumAlgorithm=algo) if algo else part
        r = s3.upload_part(Bucket="sums-mp", Key=key, UploadId=u, PartNumber=n, Body=data, **extra)
        sums = {k: v for k, v in _sums(r).items() if k != "ChecksumType"} if composite else {}
        done.append({"PartNumber": n, "ETag": r["ETag"], **sums})
    complete = s3.complete_multipart_upload(
        Bucket="sums-mp", Key=key, UploadId=u, MultipartUpload={"Parts": done}
    )
    return complete, s3.head_object(Bucket="sums-mp", Key=key, ChecksumMode="ENABLED")


def test_a_completed_uploads_location_is_its_url(s3: Any, env: dict[str, str], bucket: str) -> None:
    """CompleteMultipartUpload's ``Location`` is the object's URL, its key
    percent-encoded as S3's is. Was: the key as it is, spaces and all."""
    key = "dir/a b+c&d.txt"
    u = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=u, PartNumber=1, Body=b"one part")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=u,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]},
    )
    assert done["Location"] == f"{env['AWS_ENDPOINT_URL']}/{bucket}/dir/a%20b%2Bc%26d.txt"
    assert done["Key"] == key


def test_multipart_checksums(s3: Any, s3_plain: Any) -> None:
    """A multipart object's checksum: of the parts' checksums with -N
    (COMPOSITE), or, for CRCs of FULL_OBJECT type, the whole body's."""
    s3.create_bucket(Bucket="sums-mp")
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    whole = b"".join(parts)
    raw = b"".join(hashlib.sha256(p).digest() for p in parts)
    composite = base64.b64encode(hashlib.sha256(raw).digest()).decode() + "-2"
    sha = {"ChecksumAlgorithm": "SHA256"}
    complete, head = _multipart(s3, "sha", parts, sha, ChecksumAlgorithm="SHA256")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (composite, "COMPOSITE")
    assert (complete["ChecksumSHA256"], complete["ChecksumType"]) == (composite, "COMPOSITE")
    got = s3.get_object(Bucket="sums-mp", Key="sha", ChecksumMode="ENABLED")
    assert got["Body"].read() == whole  # boto3 skips a -N checksum, as for S3's

    full = {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
    _, head = _multipart(s3, "crc", parts, full, ChecksumAlgorithm="CRC32")
    assert _sums(head) == {
        "ChecksumCRC32": checksums.digest_of("crc32", whole),
        "ChecksumType": "FULL_OBJECT",
    }
    got = s3.get_object(Bucket="sums-mp", Key="crc", ChecksumMode="ENABLED")
    assert isinstance(got["Body"], StreamingChecksumBody)
    assert got["Body"].read() == whole

    # No algorithm named, parts sent with none: CRC-64/NVME of the whole, as S3.
    _, head = _multipart(s3_plain, "none", parts, {})
    assert head["ChecksumCRC64NVME"] == checksums.digest_of("crc64nvme", whole)
    assert head["ChecksumType"] == "FULL_OBJECT"
    # ... parts of mixed algorithms: no checksum at all.
    _, head = _multipart(s3, "mixed", parts, {}, algorithms=["CRC32", "SHA1"])
    assert _sums(head) == {}
    # A part of another algorithm than the upload's is refused.
    u = s3.create_multipart_upload(Bucket="sums-mp", Key="bad", **sha)["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(
            Bucket="sums-mp", Key="bad", UploadId=u, PartNumber=1, Body=b"x",
            ChecksumAlgorithm="CRC32",
        )  # fmt: skip
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(
            Bucket="sums-mp", Key="bad", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT"
        )
    assert e.value.response["Error"]["Code"] == "InvalidRequest"


def test_complete_checks_the_part_checksums_it_lists_and_list_parts_shows_them(
    s3: Any, s3_plain: Any
) -> None:
    """CompleteMultipartUpload: a part's checksum listed in the request
    (``<ChecksumCRC32>``) must be the stored part's, else InvalidPart and the
    upload stays as it was. ListParts lists each part's checksum, and the
    upload's algorithm and type."""
    s3.create_bucket(Bucket="sums-parts")
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    sums = [checksums.digest_of("crc32", p) for p in parts]
    key = "crc"
    u = s3.create_multipart_upload(Bucket="sums-parts", Key=key, ChecksumAlgorithm="CRC32")
    uid = u["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket="sums-parts", Key=key, UploadId=uid, PartNumber=n, Body=data,
            ChecksumAlgorithm="CRC32",
        )  # fmt: skip
        assert r["ChecksumCRC32"] == sums[n - 1]
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket="sums-parts", Key=key, UploadId=uid)
    assert [(p["PartNumber"], p["ChecksumCRC32"]) for p in listed["Parts"]] == [
        (1, sums[0]),
        (2, sums[1]),
    ]
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("CRC32", "COMPOSITE")

    wrong_value = [done[0], dict(done[1], ChecksumCRC32=sums[0])]
    other_algorithm = [
        done[0],
        {"PartNumber": 2, "ETag": done[1]["ETag"], "ChecksumSHA256": sums[1]},
    ]
    for listing in (wrong_value, other_algorithm):
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(
                Bucket="sums-parts", Key=key, UploadId=uid, MultipartUpload={"Parts": listing}
            )
        assert e.value.response["Error"]["Code"] == "InvalidPart"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "part 2" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="sums-parts", Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert len(s3.list_parts(Bucket="sums-parts", Key=key, UploadId=uid)["Parts"]) == 2

    c = s3.complete_multipart_upload(
        Bucket="sums-parts", Key=key, UploadId=uid, MultipartUpload={"Parts": done}
    )
    raw = b"".join(base64.b64decode(v) for v in sums)
    assert c["ChecksumCRC32"] == checksums.digest_of("crc32", raw) + "-2"
    assert s3.get_object(Bucket="sums-parts", Key=key)["Body"].read() == b"".join(parts)

    # An upload that named no algorithm: parts sent with none get CRC-64/NVME,
    # listed as such; the upload lists no algorithm.
    uid = s3_plain.create_multipart_upload(Bucket="sums-parts", Key="plain")["UploadId"]
    s3_plain.upload_part(Bucket="sums-parts", Key="plain", UploadId=uid, PartNumber=1, Body=b"p")
    listed = s3_plain.list_parts(Bucket="sums-parts", Key="plain", UploadId=uid)
    assert listed["Parts"][0]["ChecksumCRC64NVME"] == checksums.digest_of("crc64nvme", b"p")
    assert "ChecksumAlgorithm" not in listed and "ChecksumType" not in listed
    s3_plain.abort_multipart_upload(Bucket="sums-parts", Key="plain", UploadId=uid)


def test_a_composite_upload_completes_only_with_every_part_checksum(
    cluster: DevCluster, s3: Any
) -> None:
    """An upload created for COMPOSITE checksums (SHA-256) completes only when
    the request lists every part's checksum, through either door (S3's
    InvalidRequest, naming the first part without one); the upload stays as
    it was. One of FULL_OBJECT type needs none (test_multipart_checksums)."""
    s3.create_bucket(Bucket="sums-need")
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    u = s3.create_multipart_upload(Bucket="sums-need", Key="k", ChecksumAlgorithm="SHA256")
    uid = u["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket="sums-need", Key="k", UploadId=uid, PartNumber=n, Body=data,
            ChecksumAlgorithm="SHA256",
        )  # fmt: skip
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in done]
    for listing, missing in ((bare, 1), ([done[0], bare[1]], 2)):
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(
                Bucket="sums-need", Key="k", UploadId=uid, MultipartUpload={"Parts": listing}
            )
        assert e.value.response["Error"]["Code"] == "InvalidRequest"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        message = e.value.response["Error"]["Message"]
        assert f"missing for part {missing}" in message and "sha256" in message
    with cluster.client() as c:
        pairs = [(p["PartNumber"], p["ETag"].strip('"')) for p in done]
        with pytest.raises(errors.InvalidRequest, match="missing for part 1"):
            c.complete_multipart_upload("sums-need", "k", uid, pairs)
        listed = c.list_parts("sums-need", "k", uid)
        assert [p.part_number for p in listed.parts] == [1, 2]
        with pytest.raises(errors.NoSuchKey):
            c.head_object("sums-need", "k")
        # The parts as ListParts gives them carry their checksums: enough.
        info = c.complete_multipart_upload("sums-need", "k", uid, listed.parts)
    raw = b"".join(hashlib.sha256(p).digest() for p in parts)
    want = base64.b64encode(hashlib.sha256(raw).digest()).decode() + "-2"
    assert (info.checksum_algorithm, info.checksum_type, info.checksum) == (
        "sha256",
        "COMPOSITE",
        want,
    )
    assert s3.get_object(Bucket="sums-need", Key="k")["Body"].read() == b"".join(parts)


def test_grpc_lists_and_checks_part_checksums_as_the_s3_door_does(
    cluster: DevCluster, s3: Any
) -> None:
    """gRPC's UploadPart and ListParts name each part's checksum (and ListParts
    the upload's algorithm and type), and its Complete checks a listed one as
    the S3 door's does: another value or algorithm is InvalidPart, an
    algorithm not offered or a value without one InvalidRequest."""
    s3.create_bucket(Bucket="sums-grpc")
    parts = [os.urandom(5 * MiB), os.urandom(2000)]
    uid = s3.create_multipart_upload(Bucket="sums-grpc", Key="crc", ChecksumAlgorithm="CRC32")[
        "UploadId"
    ]
    with cluster.client() as c:
        sent = [c.upload_part("sums-grpc", "crc", uid, n, d) for n, d in enumerate(parts, 1)]
        sums = [checksums.digest_of("crc32", d) for d in parts]
        assert [(p.checksum_algorithm, p.checksum) for p in sent] == [("crc32", v) for v in sums]
        page = c.list_parts("sums-grpc", "crc", uid)
        assert (page.checksum_algorithm, page.checksum_type) == ("crc32", "COMPOSITE")
        assert [(p.part_number, p.checksum_algorithm, p.checksum) for p in page.parts] == [
            (1, "crc32", sums[0]),
            (2, "crc32", sums[1]),
        ]
        # The same as the S3 door lists them.
        http = s3.list_parts(Bucket="sums-grpc", Key="crc", UploadId=uid)["Parts"]
        assert [p["ChecksumCRC32"] for p in http] == sums

        first = CompletedPart(1, sent[0].etag, "crc32", sums[0])
        refused = [
            (CompletedPart(2, sent[1].etag, "crc32", sums[0]), errors.InvalidPart),
            (CompletedPart(2, sent[1].etag, "sha256", sums[1]), errors.InvalidPart),
            (CompletedPart(2, sent[1].etag, "md5", sums[1]), errors.InvalidRequest),
            (CompletedPart(2, sent[1].etag, "", sums[1]), errors.InvalidRequest),
            (CompletedPart(2, sent[1].etag, "crc32", ""), errors.InvalidRequest),
        ]
        for second, error in refused:
            with pytest.raises(error, match="part 2"):
                c.complete_multipart_upload("sums-grpc", "crc", uid, [first, second])
        assert len(c.list_parts("sums-grpc", "crc", uid).parts) == 2
        # Upper case, as S3 spells algorithms, is taken too.
        second = CompletedPart(2, sent[1].etag, "CRC32", sums[1])
        info = c.complete_multipart_upload("sums-grpc", "crc", uid, [first, second])
    raw = b"".join(base64.b64decode(v) for v in sums)
    assert info.checksum == checksums.digest_of("crc32", raw) + "-2"
    head = s3.head_object(Bucket="sums-grpc", Key="crc", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (info.checksum, "COMPOSITE")

    # An upload over gRPC (no algorithm named): CRC-64/NVME parts, and a
    # Complete that lists them or not.
    with cluster.client() as c:
        u = c.create_multipart_upload("sums-grpc", "plain")
        p = c.upload_part("sums-grpc", "plain", u.upload_id, 1, b"plain part")
        assert (p.checksum_algorithm, p.checksum) == (
            "crc64nvme",
            checksums.digest_of("crc64nvme", b"plain part"),
        )
        page = c.list_parts("sums-grpc", "plain", u.upload_id)
        assert (page.checksum_algorithm, page.checksum_type) == ("", "")
        assert page.parts[0].checksum == p.checksum
        info = c.complete_multipart_upload("sums-grpc", "plain", u.upload_id, [p])
        assert (info.checksum_algorithm, info.checksum) == ("crc64nvme", p.checksum)


def test_version_listings_name_each_version_checksum(cluster: DevCluster, s3: Any) -> None:
    """ListObjectVersions names each version's checksum algorithm and type, as
    ListObjects v2 does (a delete marker has none), through both doors."""
    s3.create_bucket(Bucket="sums-versions")
    s3.put_bucket_versioning(Bucket="sums-versions", VersioningConfiguration={"Status": "Enabled"})
    body = os.urandom(3000)
    s3.put_object(Bucket="sums-versions", Key="k", Body=body, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket="sums-versions", Key="k", Body=body, ChecksumAlgorithm="CRC32C")
    with cluster.client() as c:
        c.put_object("sums-versions", "g", body)  # CRC-64/NVME, gRPC's default
        s3.delete_object(Bucket="sums-versions", Key="g")
        listed = s3.list_object_versions(Bucket="sums-versions")
        got = [
            (v["Key"], v.get("ChecksumAlgorithm"), v.get("ChecksumType"))
            for v in listed["Versions"]
        ]
        assert got == [
            ("g", ["CRC64NVME"], "FULL_OBJECT"),
            ("k", ["CRC32C"], "FULL_OBJECT"),
            ("k", ["SHA256"], "FULL_OBJECT"),
        ]
        marker = listed["DeleteMarkers"][0]
        assert "ChecksumAlgorithm" not in marker and "ChecksumType" not in marker
        page = c.list_object_versions("sums-versions")
        assert [
            (v.key, v.delete_marker, v.checksum_algorithm, v.checksum_type) for v in page.versions
        ] == [
            ("g", True, "", ""),
            ("g", False, "crc64nvme", "FULL_OBJECT"),
            ("k", False, "crc32c", "FULL_OBJECT"),
            ("k", False, "sha256", "FULL_OBJECT"),
        ]


def test_a_signed_payload_is_checked_against_its_sha256(
    env: dict[str, str], s3: Any, bucket: str
) -> None:
    """x-amz-content-sha256 with the body's real SHA-256 (boto3 with payload
    signing): a body of many pieces (hashed off the event loop) is stored
    when it matches, refused with XAmzContentSHA256Mismatch (nothing stored)
    when a byte changed after signing."""
    signing = _client(
        env,
        config=Config(
            s3={"payload_signing_enabled": True}, request_checksum_calculation="when_required"
        ),
    )
    body = os.urandom(3 * MiB + 12345)
    sent: list[str] = []

    def seen(request: Any, **_: Any) -> None:
        value = request.headers["x-amz-content-sha256"]
        sent.append(value.decode() if isinstance(value, bytes) else value)

    def damage(request: Any, **_: Any) -> None:
        data = request.body if isinstance(request.body, bytes) else request.body.read()
        request.body = data[:-1] + bytes([data[-1] ^ 1])

    try:
        signing.meta.events.register("before-send.s3.PutObject", seen)
        signing.put_object(Bucket=bucket, Key="signed-sha", Body=body)
        assert sent == [hashlib.sha256(body).hexdigest()]  # a real hash was signed
        assert s3.get_object(Bucket=bucket, Key="signed-sha")["Body"].read() == body
        signing.meta.events.register_first("before-send.s3.PutObject", damage)
        with pytest.raises(ClientError) as e:
            signing.put_object(Bucket=bucket, Key="signed-sha-bad", Body=body)
    finally:
        signing.close()
    assert e.value.response["Error"]["Code"] == "XAmzContentSHA256Mismatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="signed-sha-bad")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_ranges_and_conditions(s3: Any, bucket: str) -> None:
    body = bytes(range(256)) * 40
    etag = s3.put_object(Bucket=bucket, Key="ranged", Body=body)["ETag"]
    r = s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=10-19")
    assert r["Body"].read() == body[10:20]
    assert r["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=-5")["Body"].read() == body[-5:]
    assert (
        s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=10000-")["Body"].read()
        == (body[10000:])
    )
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="ranged", Range=f"bytes={len(body)}-")
    assert e.value.response["Error"]["Code"] == "InvalidRange"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    assert s3.get_object(Bucket=bucket, Key="ranged", IfMatch=etag)["Body"].read() == body
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="ranged", IfMatch='"0000"')
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="ranged", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["etag"] == etag
    past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert s3.get_object(Bucket=bucket, Key="ranged", IfModifiedSince=past)["Body"].read() == body
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="ranged", IfUnmodifiedSince=past)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    r = s3.get_object(
        Bucket=bucket,
        Key="ranged",
        ResponseContentType="text/x-override",
        ResponseContentDisposition="attachment; filename=x.bin",
    )
    assert r["ContentType"] == "text/x-override"
    assert r["ContentDisposition"] == "attachment; filename=x.bin"
    assert r["Body"].read() == body


def test_a_suffix_range_of_an_empty_object_is_its_empty_body(
    cluster: DevCluster, s3: Any, bucket: str
) -> None:
    """``Range: bytes=-N`` of an empty object: 200 and no bytes, as S3 answers
    (a suffix range is satisfiable whatever the length, RFC 9110 14.1.3);
    readers of a file's tail (object_store, Trino) ask it of every file. Was
    416 InvalidRange. A range that starts at a byte is still 416."""
    s3.put_object(Bucket=bucket, Key="tail-of-empty", Body=b"")
    r = s3.get_object(Bucket=bucket, Key="tail-of-empty", Range="bytes=-8")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ContentRange" not in r
    assert (r["ContentLength"], r["Body"].read()) == (0, b"")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="tail-of-empty", Range="bytes=0-")
    assert _refusal(e)[:2] == (416, "InvalidRange")
    # The gRPC door reads through the same code.
    with cluster.client() as c:
        assert c.get_object(bucket, "tail-of-empty", range="bytes=-8") == b""


def test_an_unsatisfiable_range_tells_the_objects_size(s3: Any, bucket: str) -> None:
    """A 416 carries the object's size, as S3's does: ``Content-Range: bytes
    */SIZE`` (RFC 9110 15.5.17) and ``ActualObjectSize`` in the error
    document; a reader past the end learns the length from it. Was: neither."""
    s3.put_object(Bucket=bucket, Key="sized", Body=b"x" * 1000)
    for spec in ("bytes=1000-", "bytes=5000-6000", "bytes=-0"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="sized", Range=spec)
        status, code, headers = _refusal(e)
        assert (status, code, headers["content-range"]) == (416, "InvalidRange", "bytes */1000")
        assert e.value.response["Error"]["ActualObjectSize"] == "1000", spec


def test_a_head_with_a_range_answers_as_a_get_of_it_would(s3: Any, bucket: str) -> None:
    """HeadObject with a Range (boto3's ``head_object(Range=...)``): 206 with
    the range's Content-Length and Content-Range, 416 when unsatisfiable, as
    S3's API says ("only the ContentLength is affected"). Was: the Range
    ignored, 200 with the whole length, never 416."""
    s3.put_object(Bucket=bucket, Key="head-ranged", Body=b"0123456789")
    for spec, length, content_range in [
        ("bytes=2-4", 3, "bytes 2-4/10"),
        ("bytes=-3", 3, "bytes 7-9/10"),
        ("bytes=6-", 4, "bytes 6-9/10"),
        ("bytes=8-100", 2, "bytes 8-9/10"),
    ]:
        r = s3.head_object(Bucket=bucket, Key="head-ranged", Range=spec)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, spec
        assert (r["ContentLength"], r["ContentRange"]) == (length, content_range), spec
        got = s3.get_object(Bucket=bucket, Key="head-ranged", Range=spec)
        assert (got["ContentLength"], got["ContentRange"]) == (length, content_range), spec
    # Not one byte range: ignored, the whole object (as a GET).
    r = s3.head_object(Bucket=bucket, Key="head-ranged", Range="bytes=0-1,4-5")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r["ContentLength"] == 10
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="head-ranged", Range="bytes=10-")
    assert _refusal(e)[0] == 416
    assert _refusal(e)[2]["content-range"] == "bytes */10"
    # An empty object: a suffix is its empty body, any other range 416.
    s3.put_object(Bucket=bucket, Key="head-ranged-empty", Body=b"")
    r = s3.head_object(Bucket=bucket, Key="head-ranged-empty", Range="bytes=-4")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r["ContentLength"] == 0
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="head-ranged-empty", Range="bytes=0-")
    assert _refusal(e)[0] == 416


def test_the_last_0_bytes_of_an_object_are_unsatisfiable(s3: Any, bucket: str) -> None:
    """``Range: bytes=-0`` asks for no bytes: S3 answers 416 InvalidRange, to
    GET and HEAD alike, but for an empty object, whose whole (empty) body is
    any suffix of it (200). Was: the header ignored, the whole object, 200."""
    s3.put_object(Bucket=bucket, Key="last-0", Body=b"0123456789")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="last-0", Range="bytes=-0")
    assert _refusal(e)[:2] == (416, "InvalidRange")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="last-0", Range="bytes=-0")
    assert _refusal(e)[0] == 416
    assert _refusal(e)[2]["content-range"] == "bytes */10"
    s3.put_object(Bucket=bucket, Key="last-0-empty", Body=b"")
    r = s3.get_object(Bucket=bucket, Key="last-0-empty", Range="bytes=-0")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ContentRange" not in r
    assert (r["ContentLength"], r["Body"].read()) == (0, b"")
    r = s3.head_object(Bucket=bucket, Key="last-0-empty", Range="bytes=-0")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r["ContentLength"] == 0


def test_small_answers_go_whole_and_large_ones_stream_alike(s3: Any, bucket: str) -> None:
    """A GET answer up to WHOLE_ANSWER_MAX is sent whole with its headers (one
    write), a larger one streamed: both carry the same headers and the bytes."""
    limit = WHOLE_ANSWER_MAX
    body = os.urandom(limit + 1)
    s3.put_object(
        Bucket=bucket, Key="edge", Body=body, ContentType="application/x-edge", Metadata={"m": "1"}
    )
    # Both ranged, so that both answers follow the same rules (a range carries
    # no checksum headers).
    whole = s3.get_object(Bucket=bucket, Key="edge", Range=f"bytes=1-{limit}")
    streamed = s3.get_object(Bucket=bucket, Key="edge", Range=f"bytes=0-{limit}")
    assert whole["Body"].read() == body[1:]
    assert streamed["Body"].read() == body
    assert whole["ContentLength"] == limit and streamed["ContentLength"] == limit + 1
    assert whole["ContentRange"] == f"bytes 1-{limit}/{limit + 1}"
    assert streamed["ContentRange"] == f"bytes 0-{limit}/{limit + 1}"
    for r in (whole, streamed):
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    differ = {"content-range", "content-length", "x-amz-request-id", "date"}
    heads = [r["ResponseMetadata"]["HTTPHeaders"] for r in (whole, streamed)]
    assert {k: v for k, v in heads[0].items() if k not in differ} == {
        k: v for k, v in heads[1].items() if k not in differ
    }
    for r in (whole, streamed):
        assert r["ContentType"] == "application/x-edge"
        assert r["Metadata"] == {"m": "1"}
        assert r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        assert r["ResponseMetadata"]["HTTPHeaders"]["server"] == "tristore"
    # An empty object goes whole too.
    s3.put_object(Bucket=bucket, Key="edge-empty", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="edge-empty")["Body"].read() == b""


def test_copy_with_metadata_directive(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="copy-src", Body=b"original", Metadata={"a": "1"})
    r = s3.copy_object(
        Bucket=bucket, Key="copy-dst", CopySource={"Bucket": bucket, "Key": "copy-src"}
    )
    assert r["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"original").hexdigest()}"'
    assert s3.head_object(Bucket=bucket, Key="copy-dst")["Metadata"] == {"a": "1"}
    s3.copy_object(
        Bucket=bucket,
        Key="copy-dst",
        CopySource=f"{bucket}/copy-src",
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="text/plain",
    )
    h = s3.head_object(Bucket=bucket, Key="copy-dst")
    assert h["Metadata"] == {"b": "2"}
    assert h["ContentType"] == "text/plain"
    assert s3.get_object(Bucket=bucket, Key="copy-dst")["Body"].read() == b"original"
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket,
            Key="copy-dst",
            CopySource={"Bucket": bucket, "Key": "copy-src"},
            CopySourceIfMatch='"0000"',
        )
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"


STANDARD = {
    "CacheControl": "max-age=3600, public",
    "ContentDisposition": 'attachment; filename="report.csv"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "de-CH",
    "Expires": dt.datetime(2044, 12, 1, 16, 0, tzinfo=dt.UTC),
}


def _standard(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r.get(k) for k in STANDARD}


def test_standard_headers_are_stored_and_answered(
    cluster: DevCluster, s3: Any, env: dict[str, str], bucket: str
) -> None:
    """Cache-Control, Content-Disposition, Content-Encoding, Content-Language
    and Expires: stored by PUT, multipart and copy (kept by COPY, replaced by
    REPLACE), answered by GET, HEAD and 304, overridden by response-*, and the
    same through the gRPC door."""
    s3.put_object(Bucket=bucket, Key="std", Body=b"\x1f\x8b...", **STANDARD)
    assert _standard(s3.head_object(Bucket=bucket, Key="std")) == STANDARD
    got = s3.get_object(Bucket=bucket, Key="std")
    assert _standard(got) == STANDARD and got["Body"].read() == b"\x1f\x8b..."
    over = s3.get_object(Bucket=bucket, Key="std", ResponseCacheControl="no-store")
    assert over["CacheControl"] == "no-store" and over["ContentLanguage"] == "de-CH"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="std", IfNoneMatch=got["ETag"])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    cached = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert cached["cache-control"] == STANDARD["CacheControl"]
    assert "expires" in cached

    # An object written without them answers none of them.
    s3.put_object(Bucket=bucket, Key="plain-std", Body=b"x")
    assert _standard(s3.head_object(Bucket=bucket, Key="plain-std")) == dict.fromkeys(STANDARD)

    # Copy: COPY keeps them, REPLACE takes the request's (none here: all gone).
    src = {"Bucket": bucket, "Key": "std"}
    s3.copy_object(Bucket=bucket, Key="std-copy", CopySource=src)
    assert _standard(s3.head_object(Bucket=bucket, Key="std-copy")) == STANDARD
    s3.copy_object(
        Bucket=bucket, Key="std-replace", CopySource=src, MetadataDirective="REPLACE",
        CacheControl="no-cache",
    )  # fmt: skip
    replaced = _standard(s3.head_object(Bucket=bucket, Key="std-replace"))
    assert replaced == dict.fromkeys(STANDARD) | {"CacheControl": "no-cache"}

    # Multipart: given at create, the completed object has them.
    up = s3.create_multipart_upload(Bucket=bucket, Key="std-mpu", **STANDARD)
    part = s3.upload_part(
        Bucket=bucket, Key="std-mpu", UploadId=up["UploadId"], PartNumber=1, Body=b"p"
    )
    s3.complete_multipart_upload(
        Bucket=bucket, Key="std-mpu", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )  # fmt: skip
    assert _standard(s3.head_object(Bucket=bucket, Key="std-mpu")) == STANDARD

    # A presigned GET (what a browser follows) carries them too.
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "std"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url, context=_ssl(env), timeout=30) as resp:
        assert resp.headers["Content-Disposition"] == STANDARD["ContentDisposition"]
        assert resp.headers["Content-Encoding"] == "gzip"

    # The other door: the SDK stores and reads the same headers.
    with cluster.client() as c:
        assert c.head_object(bucket, "std").headers["cache-control"] == STANDARD["CacheControl"]
        c.put_object(bucket, "std-grpc", b"x", headers={"Content-Language": "fr"})
        assert s3.head_object(Bucket=bucket, Key="std-grpc")["ContentLanguage"] == "fr"
        with pytest.raises(errors.InvalidArgument):
            c.put_object(bucket, "std-bad", b"x", headers={"x-custom": "1"})

    # Bad values are refused with S3's 400, and nothing is stored.
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="std-bad", Body=b"x", CacheControl="\u00e9")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="std-bad")


def test_listings_page_with_the_paginators(s3: Any) -> None:
    s3.create_bucket(Bucket="lists")
    keys = [f"p/{i:03d} a+b" for i in range(23)] + ["q/1", "q/2/x", "top"]
    for k in keys:
        s3.put_object(Bucket="lists", Key=k, Body=b"x")
    got = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="lists", PaginationConfig={"PageSize": 7}
    ):
        got += [c["Key"] for c in page.get("Contents", [])]
    assert got == sorted(keys)
    v1 = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket="lists", PaginationConfig={"PageSize": 5}
    ):
        v1 += [c["Key"] for c in page.get("Contents", [])]
    assert v1 == sorted(keys)
    r = s3.list_objects_v2(Bucket="lists", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["p/", "q/"]
    assert [c["Key"] for c in r["Contents"]] == ["top"]
    assert r["KeyCount"] == 3
    # v1 with a delimiter pages through prefixes by NextMarker.
    seen: list[str] = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket="lists", Delimiter="/", PaginationConfig={"PageSize": 1}
    ):
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        seen += [c["Key"] for c in page.get("Contents", [])]
    assert seen == ["p/", "q/", "top"]
    r = s3.list_objects_v2(Bucket="lists", Prefix="q/", StartAfter="q/1")
    assert [c["Key"] for c in r["Contents"]] == ["q/2/x"]
    # Owner (the bucket's: it owns every object): v1 always, v2 with FetchOwner.
    assert all("Owner" not in c for c in r["Contents"])
    owner = s3.list_buckets()["Owner"]
    for r in (
        s3.list_objects_v2(Bucket="lists", Prefix="q/", FetchOwner=True),
        s3.list_objects(Bucket="lists", Prefix="q/"),
    ):
        assert [c["Owner"] for c in r["Contents"]] == [owner, owner]
    r = s3.delete_objects(
        Bucket="lists", Delete={"Objects": [{"Key": k} for k in keys] + [{"Key": "never"}]}
    )
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted([*keys, "never"])
    assert not r.get("Errors")
    assert s3.list_objects_v2(Bucket="lists")["KeyCount"] == 0


def test_keys_with_control_characters_come_back_as_they_are(s3: Any, env: dict[str, str]) -> None:
    """A listing without encoding-type=url (s3cmd asks for none) writes a key's
    CR and LF as character references, as S3 does: a raw CR comes back from
    any XML parser as LF, another key (which s3cmd then failed to delete)."""
    s3.create_bucket(Bucket="controls")
    keys = ["cr\rkey", "crlf\r\nkey", "lf\nkey", "tab\tkey"]
    for k in keys:
        s3.put_object(Bucket="controls", Key=k, Body=b"x")
    parts = urlsplit(env["AWS_ENDPOINT_URL"])
    signing = sigv4.signing_key(
        env["AWS_SECRET_ACCESS_KEY"], sigv4.amz_date()[:8], env["AWS_DEFAULT_REGION"]
    )
    for listing in ([("list-type", "2")], [], [("versions", "")]):
        q = sigv4.presign_query(
            env["AWS_ACCESS_KEY_ID"], signing, env["AWS_DEFAULT_REGION"], "GET",
            "/controls", parts.netloc, 60, listing,
        )  # fmt: skip
        url = f"{env['AWS_ENDPOINT_URL']}/controls?{urlencode(q, quote_via=quote)}"
        doc = ET.fromstring(_fetch(env, url))
        assert [k.text for k in doc.iter(f"{{{S3_NS}}}Key")] == sorted(keys), listing


def test_upload_and_download_file_multipart(s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(20 * MiB)
    src.write_bytes(data)
    cfg = TransferConfig(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2
    )
    s3.upload_file(str(src), bucket, "big.bin", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="big.bin")
    assert h["ContentLength"] == len(data)
    assert h["ETag"].endswith('-4"')
    out = tmp_path / "big.out"
    s3.download_file(bucket, "big.bin", str(out), Config=cfg)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_multipart_by_hand(s3: Any, bucket: str) -> None:
    u = s3.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"m": "1"})["UploadId"]
    assert u in [x["UploadId"] for x in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    p1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=u, PartNumber=1, Body=b"a" * 5 * MiB)
    p2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=u, PartNumber=2, Body=b"b" * 10)
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=u)
    parts = listed["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, 10)]
    # Who started it and who owns the object-to-be, as ListMultipartUploads says.
    (upload,) = [x for x in s3.list_multipart_uploads(Bucket=bucket)["Uploads"] if x["Key"] == "mp"]
    assert upload["Owner"]["ID"]
    assert (listed["Initiator"], listed["Owner"]) == (upload["Initiator"], upload["Owner"])
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=u,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": p1["ETag"]},
                {"PartNumber": 2, "ETag": p2["ETag"]},
            ]
        },
    )
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Metadata"] == {"m": "1"}
    assert got["Body"].read() == b"a" * 5 * MiB + b"b" * 10
    u2 = s3.create_multipart_upload(Bucket=bucket, Key="mp2")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="mp2", UploadId=u2)
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp2", UploadId=u2)
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"


def test_list_multipart_uploads_with_a_delimiter(s3: Any) -> None:
    """As S3: uploads of keys holding the delimiter after the prefix are
    rolled up into CommonPrefixes, each once and counted against
    max-uploads; a page that ends on one names it as NextKeyMarker, and the
    next page starts after every upload under it; encoding-type=url encodes
    the prefixes too."""
    b = "mpu-delimited"
    s3.create_bucket(Bucket=b)
    ids = {}
    for key in ("a/1", "a/2", "b", "c/x/1", "c/x/2", "c/y", "d", "e f/1"):
        ids[key] = s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    whole = s3.list_multipart_uploads(Bucket=b, Delimiter="/")
    assert whole["Delimiter"] == "/" and whole["IsTruncated"] is False
    assert [(u["Key"], u["UploadId"]) for u in whole["Uploads"]] == [
        ("b", ids["b"]),
        ("d", ids["d"]),
    ]
    assert [p["Prefix"] for p in whole["CommonPrefixes"]] == ["a/", "c/", "e f/"]
    assert "Delimiter" not in s3.list_multipart_uploads(Bucket=b)
    under = s3.list_multipart_uploads(Bucket=b, Prefix="c/", Delimiter="/")
    assert [u["Key"] for u in under["Uploads"]] == ["c/y"]
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["c/x/"]
    # Pages of one and of two, by the markers each page gives.
    everything = ["a/", "b", "c/", "d", "e f/"]
    for size in (1, 2):
        seen: list[str] = []
        markers: dict[str, str] = {}
        while True:
            page = s3.list_multipart_uploads(Bucket=b, Delimiter="/", MaxUploads=size, **markers)
            got = sorted(
                [u["Key"] for u in page.get("Uploads", [])]
                + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            )
            assert 0 < len(got) <= size, page
            seen += got
            if not page["IsTruncated"]:
                break
            assert page["NextKeyMarker"] == got[-1], page
            if got[-1].endswith("/"):  # a common prefix: no upload id to resume from
                assert not page.get("NextUploadIdMarker"), page
            else:
                assert page["NextUploadIdMarker"] == ids[got[-1]], page
            markers = {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }
        assert seen == everything, (size, seen)
    paginator = s3.get_paginator("list_multipart_uploads")
    pages = list(paginator.paginate(Bucket=b, Delimiter="/", PaginationConfig={"PageSize": 2}))
    assert [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])] == [
        "a/",
        "c/",
        "e f/",
    ]
    assert [u["Key"] for page in pages for u in page.get("Uploads", [])] == ["b", "d"]
    encoded = s3.list_multipart_uploads(Bucket=b, Delimiter="/", EncodingType="url", Prefix="e")
    assert encoded["EncodingType"] == "url"
    assert [p["Prefix"] for p in encoded["CommonPrefixes"]] == ["e%20f/"]
    inside = s3.list_multipart_uploads(Bucket=b, EncodingType="url", Prefix="e f/")
    assert inside["Prefix"] == "e%20f/"
    assert [u["Key"] for u in inside["Uploads"]] == ["e%20f/1"]
    for key, upload_id in ids.items():
        s3.abort_multipart_upload(Bucket=b, Key=key, UploadId=upload_id)
    assert s3.list_multipart_uploads(Bucket=b, Delimiter="/").get("CommonPrefixes", []) == []


def test_complete_multipart_upload_is_a_conditional_write(s3: Any, bucket: str) -> None:
    """If-None-Match: * and If-Match on CompleteMultipartUpload, as on a PUT: a
    refusal changes nothing (the object stays, the upload can still be
    completed), a condition that holds completes."""
    key = "mp-conditional"
    s3.put_object(Bucket=bucket, Key=key, Body=b"original")
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    u = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    p = s3.upload_part(Bucket=bucket, Key=key, UploadId=u, PartNumber=1, Body=b"assembled")
    parts = {"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]}
    for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"0123456789abcdef0123456789abcdef"'}):
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=u, MultipartUpload=parts, **condition
            )
        assert e.value.response["Error"]["Code"] == "PreconditionFailed", condition
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"original"
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=u)["Parts"]
    assert [x["PartNumber"] for x in listed] == [1]
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=u, MultipartUpload=parts, IfMatch=etag
    )
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"assembled"
    # Create-if-absent on a key with no object completes.
    u = s3.create_multipart_upload(Bucket=bucket, Key=key + "-new")["UploadId"]
    p = s3.upload_part(Bucket=bucket, Key=key + "-new", UploadId=u, PartNumber=1, Body=b"new")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key + "-new",
        UploadId=u,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]},
        IfNoneMatch="*",
    )
    assert s3.get_object(Bucket=bucket, Key=key + "-new")["Body"].read() == b"new"


def test_multipart_copy(s3: Any, bucket: str) -> None:
    """UploadPartCopy, by hand with ranges and through boto3's managed copy."""
    data = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket, Key="copy-big", Body=data)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.copy({"Bucket": bucket, "Key": "copy-big"}, bucket, "copy-big-2", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="copy-big-2")
    assert h["ETag"].endswith('-3"')
    assert s3.get_object(Bucket=bucket, Key="copy-big-2")["Body"].read() == data
    u = s3.create_multipart_upload(Bucket=bucket, Key="spliced")["UploadId"]
    p1 = s3.upload_part_copy(
        Bucket=bucket, Key="spliced", UploadId=u, PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "copy-big"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )  # fmt: skip
    p2 = s3.upload_part_copy(
        Bucket=bucket, Key="spliced", UploadId=u, PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "copy-big"}, CopySourceRange="bytes=100-199",
    )  # fmt: skip
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="spliced",
        UploadId=u,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
            ]
        },
    )
    got = s3.get_object(Bucket=bucket, Key="spliced")["Body"].read()
    assert got == data[: 5 * MiB] + data[100:200]


def test_replication_configuration_reaches_the_bucket(s3: Any) -> None:
    """Rules in S3's XML go through the same checks as gRPC's (a one-cluster
    dev dir has no remote to replicate to, so the rule is refused by them)."""
    s3.create_bucket(Bucket="replicated")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_replication(Bucket="replicated")
    assert e.value.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError"
    s3.put_bucket_versioning(Bucket="replicated", VersioningConfiguration={"Status": "Enabled"})
    rule = {
        "ID": "r1",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": "docs/"},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": "arn:aws:s3:nowhere::copy"},
    }
    with pytest.raises(ClientError) as e:
        s3.put_bucket_replication(
            Bucket="replicated",
            ReplicationConfiguration={"Role": "arn:aws:iam:::role/r", "Rules": [rule]},
        )
    assert "nowhere" in e.value.response["Error"]["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Refused as S3 refuses them, before the destination is looked at, not
    # an InternalError and not accepted and dropped.
    tags = {"And": {"Tags": [{"Key": "k", "Value": "v"}, {"Key": "k", "Value": "w"}]}}
    for change, status, code in (
        ({"Priority": 2**31}, 400, "InvalidArgument"),
        ({"Filter": tags}, 400, "InvalidRequest"),
        ({"ExistingObjectReplication": {"Status": "Enabled"}}, 501, "NotImplemented"),
    ):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_replication(
                Bucket="replicated",
                ReplicationConfiguration={
                    "Role": "arn:aws:iam:::role/r",
                    "Rules": [{**rule, **change}],
                },
            )
        got = e.value.response
        assert (got["ResponseMetadata"]["HTTPStatusCode"], got["Error"]["Code"]) == (
            status,
            code,
        ), change


def test_bucket_encryption(s3: Any) -> None:
    s3.create_bucket(Bucket="sealed")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket="sealed")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.put_bucket_encryption(
        Bucket="sealed",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    rules = s3.get_bucket_encryption(Bucket="sealed")["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.put_object(Bucket="sealed", Key="k", Body=b"x")["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket="sealed", Key="k")["ServerSideEncryption"] == "AES256"
    s3.delete_bucket_encryption(Bucket="sealed")
    with pytest.raises(ClientError):
        s3.get_bucket_encryption(Bucket="sealed")


def test_version_id_header_only_once_the_bucket_had_versioning(s3: Any) -> None:
    """S3 sends x-amz-version-id on GET and HEAD only in a bucket whose
    versioning was ever Enabled or Suspended (``null`` for a null version
    there); in one never versioned, none at all."""
    s3.create_bucket(Bucket="never-versioned")
    etag = s3.put_object(Bucket="never-versioned", Key="k", Body=b"plain")["ETag"]
    for r in (
        s3.head_object(Bucket="never-versioned", Key="k"),
        s3.get_object(Bucket="never-versioned", Key="k"),
        s3.get_object(Bucket="never-versioned", Key="k", Range="bytes=0-1"),
    ):
        assert "VersionId" not in r
        assert "x-amz-version-id" not in r["ResponseMetadata"]["HTTPHeaders"]
    with pytest.raises(ClientError) as ce:  # a 304 answers no version either
        s3.get_object(Bucket="never-versioned", Key="k", IfNoneMatch=etag)
    assert ce.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert "x-amz-version-id" not in ce.value.response["ResponseMetadata"]["HTTPHeaders"]

    # Enabled: a new version has its id; the object written before is "null".
    s3.put_bucket_versioning(
        Bucket="never-versioned", VersioningConfiguration={"Status": "Enabled"}
    )
    assert s3.head_object(Bucket="never-versioned", Key="k")["VersionId"] == "null"
    v = s3.put_object(Bucket="never-versioned", Key="k", Body=b"versioned")["VersionId"]
    assert v != "null"
    assert s3.head_object(Bucket="never-versioned", Key="k")["VersionId"] == v
    assert s3.get_object(Bucket="never-versioned", Key="k")["VersionId"] == v
    old = s3.get_object(Bucket="never-versioned", Key="k", VersionId="null")
    assert (old["VersionId"], old["Body"].read()) == ("null", b"plain")
    # Suspended: new writes are the null version again, and named so.
    s3.put_bucket_versioning(
        Bucket="never-versioned", VersioningConfiguration={"Status": "Suspended"}
    )
    s3.put_object(Bucket="never-versioned", Key="k2", Body=b"suspended")
    assert s3.head_object(Bucket="never-versioned", Key="k2")["VersionId"] == "null"
    assert s3.get_object(Bucket="never-versioned", Key="k2")["VersionId"] == "null"
    assert s3.head_object(Bucket="never-versioned", Key="k", VersionId=v)["VersionId"] == v


def _writes_and_deletes(s3: Any, bucket: str) -> dict[str, Any]:
    """The answers of every write and delete that can name a version, in ``bucket``."""
    out: dict[str, Any] = {"put": s3.put_object(Bucket=bucket, Key="src", Body=b"source")}
    u = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=u, PartNumber=1, Body=b"part")
    out["part_copy"] = s3.upload_part_copy(
        Bucket=bucket, Key="mp", UploadId=u, PartNumber=2, CopySource=f"{bucket}/src"
    )
    parts = [
        {"PartNumber": 1, "ETag": p1["ETag"]},
        {"PartNumber": 2, "ETag": out["part_copy"]["CopyPartResult"]["ETag"]},
    ]
    # (parts under 5 MiB: only the last may be small, so this one completes with one)
    out["complete"] = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=u, MultipartUpload={"Parts": parts[:1]}
    )
    out["copy"] = s3.copy_object(Bucket=bucket, Key="copied", CopySource=f"{bucket}/src")
    out["delete"] = s3.delete_object(Bucket=bucket, Key="copied")
    out["delete_objects"] = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "mp"}]})
    return out


def test_writes_name_a_version_only_once_the_bucket_had_versioning(s3: Any) -> None:
    """PUT, Complete, copies and deletes, as S3: no version id at all in a
    bucket never versioned; ``null`` in a Suspended one; the id when Enabled."""
    s3.create_bucket(Bucket="vid-never")
    r = _writes_and_deletes(s3, "vid-never")
    for name in ("put", "complete", "copy", "delete"):
        assert "VersionId" not in r[name], name
        assert "x-amz-version-id" not in r[name]["ResponseMetadata"]["HTTPHeaders"], name
    assert "CopySourceVersionId" not in r["copy"]
    assert "CopySourceVersionId" not in r["part_copy"]
    assert "DeleteMarker" not in r["delete"]
    assert r["delete_objects"]["Deleted"] == [{"Key": "mp"}]

    s3.create_bucket(Bucket="vid-suspended")
    s3.put_bucket_versioning(
        Bucket="vid-suspended", VersioningConfiguration={"Status": "Suspended"}
    )
    r = _writes_and_deletes(s3, "vid-suspended")
    for name in ("put", "complete", "copy", "delete"):
        assert r[name]["VersionId"] == "null", name
    assert r["copy"]["CopySourceVersionId"] == "null"
    assert r["part_copy"]["CopySourceVersionId"] == "null"
    assert r["delete"]["DeleteMarker"] is True
    (deleted,) = r["delete_objects"]["Deleted"]
    assert (deleted["DeleteMarker"], deleted["DeleteMarkerVersionId"]) == (True, "null")

    s3.create_bucket(Bucket="vid-enabled")
    s3.put_bucket_versioning(Bucket="vid-enabled", VersioningConfiguration={"Status": "Enabled"})
    r = _writes_and_deletes(s3, "vid-enabled")
    ids = [r[name]["VersionId"] for name in ("put", "complete", "copy", "delete")]
    assert "null" not in ids and len(set(ids)) == 4
    assert r["copy"]["CopySourceVersionId"] == r["put"]["VersionId"]
    assert r["part_copy"]["CopySourceVersionId"] == r["put"]["VersionId"]
    (deleted,) = r["delete_objects"]["Deleted"]
    assert deleted["DeleteMarkerVersionId"] not in ("", "null")
    # Once versioned, the never-versioned bucket's null version is named.
    s3.put_bucket_versioning(Bucket="vid-never", VersioningConfiguration={"Status": "Enabled"})
    assert s3.put_object(Bucket="vid-never", Key="k", Body=b"x")["VersionId"] != "null"
    c = s3.copy_object(Bucket="vid-never", Key="k2", CopySource="vid-never/src")
    assert c["CopySourceVersionId"] == "null"


def test_tagging_and_acl_answers_name_a_version_only_once_the_bucket_had_versioning(
    s3: Any,
) -> None:
    """Get/Put/DeleteObjectTagging and Get/PutObjectAcl, as S3: no
    x-amz-version-id in a bucket never versioned, ``null`` in a Suspended
    one, the version's id in an Enabled one."""
    want = {}
    for name, status in (("tag-never", ""), ("tag-suspended", "Suspended"), ("tag-on", "Enabled")):
        s3.create_bucket(Bucket=name)
        if status:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        put = s3.put_object(Bucket=name, Key="k", Body=b"tagged")
        want[name] = put.get("VersionId")
        tags = {"TagSet": [{"Key": "a", "Value": "1"}]}
        answers = {
            "put_tagging": s3.put_object_tagging(Bucket=name, Key="k", Tagging=tags),
            "get_tagging": s3.get_object_tagging(Bucket=name, Key="k"),
            "delete_tagging": s3.delete_object_tagging(Bucket=name, Key="k"),
            "put_acl": s3.put_object_acl(Bucket=name, Key="k", ACL="public-read"),
            "get_acl": s3.get_object_acl(Bucket=name, Key="k"),
        }
        assert answers["get_tagging"]["TagSet"] == tags["TagSet"]
        for op, r in answers.items():
            headers = r["ResponseMetadata"]["HTTPHeaders"]
            assert headers.get("x-amz-version-id") == want[name], (name, op)
    assert want["tag-never"] is None
    assert want["tag-suspended"] == "null"
    assert want["tag-on"] not in (None, "null")


def test_versioning(s3: Any) -> None:
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="versioned")["Status"] == "Enabled"
    v1 = s3.put_object(Bucket="versioned", Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket="versioned", Key="k", Body=b"two")["VersionId"]
    assert v1 and v2 and v1 != v2
    assert s3.get_object(Bucket="versioned", Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.head_object(Bucket="versioned", Key="k")["VersionId"] == v2
    d = s3.delete_object(Bucket="versioned", Key="k")
    assert d["DeleteMarker"] is True
    with pytest.raises(ClientError):
        s3.get_object(Bucket="versioned", Key="k")
    r = s3.list_object_versions(Bucket="versioned")
    assert [v["VersionId"] for v in r["Versions"]] == [v2, v1]
    assert [m["VersionId"] for m in r["DeleteMarkers"]] == [d["VersionId"]]
    assert r["DeleteMarkers"][0]["IsLatest"] is True
    s3.delete_object(Bucket="versioned", Key="k", VersionId=d["VersionId"])
    assert s3.get_object(Bucket="versioned", Key="k")["Body"].read() == b"two"


def test_presigned_urls_with_plain_http(s3: Any, env: dict[str, str], bucket: str) -> None:
    v4 = _client(env, config=Config(signature_version="s3v4"))
    s3.put_object(Bucket=bucket, Key="shared", Body=b"for the link")
    url = v4.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "shared"}, ExpiresIn=60)
    assert _fetch(env, url) == b"for the link"
    url = v4.generate_presigned_url("put_object", {"Bucket": bucket, "Key": "up"}, ExpiresIn=60)
    _fetch(env, url, "PUT", b"put by link")
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"put by link"
    # Expired: signed ten minutes ago for five.
    parts = urlsplit(env["AWS_ENDPOINT_URL"])
    then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    key = sigv4.signing_key(ROOT.secret_access_key, sigv4.amz_date(then)[:8], sigv4.DEFAULT_REGION)
    q = sigv4.presign_query(
        ROOT.access_key_id, key, sigv4.DEFAULT_REGION, "GET", f"/{bucket}/shared",
        parts.netloc, 300, now=then,
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{env['AWS_ENDPOINT_URL']}/{bucket}/shared?{urlencode(q, quote_via=quote)}")
    assert e.value.code == 403
    assert _error_of(e.value)["Code"] == "AccessDenied"
    # A tampered one.
    url = v4.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "shared"}, ExpiresIn=60)
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, url.replace("/shared?", "/up?"))
    assert _error_of(e.value)["Code"] == "SignatureDoesNotMatch"
    # Signature Version 2 presigned URLs (boto3's default for presigning, the
    # aws CLI v1's `s3 presign`, s3cmd's `signurl`) work too.
    url = s3.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "shared"})
    assert "AWSAccessKeyId=" in url and "X-Amz-" not in url
    assert _fetch(env, url) == b"for the link"
    url = s3.generate_presigned_url(
        "get_object",
        {"Bucket": bucket, "Key": "shared", "ResponseContentType": "text/x-link"},
        ExpiresIn=60,
    )
    assert _fetch(env, url) == b"for the link"
    url = s3.generate_presigned_url("put_object", {"Bucket": bucket, "Key": "up2"}, ExpiresIn=60)
    # V2 signs the Content-Type: none was signed, so none is sent (urllib
    # would add a form type of its own).
    plain = {"Content-Type": ""}
    _fetch(env, url, "PUT", b"put by a V2 link", plain)
    assert s3.get_object(Bucket=bucket, Key="up2")["Body"].read() == b"put by a V2 link"
    for bad, method, headers in (
        (url.replace("/up2?", "/up?"), "PUT", plain),  # another key
        (url, "PUT", {"Content-Type": "text/plain"}),  # another content type
        (url, "GET", {}),  # a GET with a PUT's link
    ):
        with pytest.raises(urllib.error.HTTPError) as e:
            _fetch(env, bad, method, b"x" if method == "PUT" else None, headers)
        assert _error_of(e.value)["Code"] == "SignatureDoesNotMatch", (method, headers)
    # Links to a bucket (botocore signs its resource as /BUCKET/, the URL
    # names /BUCKET): a listing, and the bucket's location.
    url = s3.generate_presigned_url("list_objects", {"Bucket": bucket, "Prefix": "up"})
    keys = [k.text for k in ET.fromstring(_fetch(env, url)).iter(f"{{{S3_NS}}}Key")]
    assert keys == ["up", "up2"]
    url = s3.generate_presigned_url("get_bucket_location", {"Bucket": bucket})
    assert ET.fromstring(_fetch(env, url)).tag == f"{{{S3_NS}}}LocationConstraint"
    # Expired: validly signed, for a second that has passed.
    expires = int(time.time()) - 5
    to_sign = sigv4.v2_string_to_sign("GET", {}, expires, f"/{bucket}/shared", [])
    q = {
        "AWSAccessKeyId": ROOT.access_key_id,
        "Expires": str(expires),
        "Signature": sigv4.v2_signature(ROOT.secret_access_key, to_sign),
    }
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{env['AWS_ENDPOINT_URL']}/{bucket}/shared?{urlencode(q)}")
    assert e.value.code == 403 and "expired" in _error_of(e.value)["Message"]
    # A V2 signature in the Authorization header is refused, saying what to use.
    req = urllib.request.Request(
        f"{env['AWS_ENDPOINT_URL']}/{bucket}/shared",
        headers={"Authorization": f"AWS {ROOT.access_key_id}:c2lnbmF0dXJl"},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        _urlopen(req, env)
    assert e.value.code == 400
    assert "AWS4-HMAC-SHA256" in _error_of(e.value)["Message"]


def _presigned_put(
    env: dict[str, str], path: str, region: str = sigv4.DEFAULT_REGION, **change: str | None
) -> str:
    """A V4 presigned PUT URL of ``path``, signed now for a minute, with the
    query parameters ``change`` names replaced (None: left out) after signing."""
    parts = urlsplit(env["AWS_ENDPOINT_URL"])
    key = sigv4.signing_key(ROOT.secret_access_key, sigv4.amz_date()[:8], region)
    q = dict(sigv4.presign_query(ROOT.access_key_id, key, region, "PUT", path, parts.netloc, 60))
    q = {k: v for k, v in {**q, **change}.items() if v is not None}
    return f"{env['AWS_ENDPOINT_URL']}{path}?{urlencode(q, quote_via=quote)}"


def test_a_malformed_presigned_url_is_a_400_naming_the_fault(
    s3: Any, env: dict[str, str], bucket: str
) -> None:
    """S3's answer to a SigV4 presigned URL whose X-Amz-* parameters are not
    well formed: 400 AuthorizationQueryParametersError naming the fault, and
    nothing written. Was: 403 AccessDenied. One well formed but past its
    time stays 403 AccessDenied "Request has expired"."""
    path = f"/{bucket}/by-bad-link"
    _fetch(env, _presigned_put(env, path), "PUT", b"as signed")  # the link itself is good
    s3.delete_object(Bucket=bucket, Key="by-bad-link")
    day = sigv4.amz_date()[:8]
    cred = f"{ROOT.access_key_id}/{day}/{sigv4.DEFAULT_REGION}/s3/aws4_request"
    malformed = {
        "requires the X-Amz-Algorithm": {"X-Amz-SignedHeaders": None},
        "X-Amz-Expires should be a number": {"X-Amz-Expires": "soon"},
        "less than a week (in seconds) that is 604800 seconds": {"X-Amz-Expires": "604801"},
        "non-negative": {"X-Amz-Expires": "-5"},
        "X-Amz-Date must be in the ISO8601 Long Format": {"X-Amz-Date": f"{day}-120000"},
        "the Credential is mal-formed": {"X-Amz-Credential": cred.rsplit("/", 1)[0]},
        'incorrect service "ec2"': {"X-Amz-Credential": cred.replace("/s3/", "/ec2/")},
        "X-Amz-Algorithm only supports": {"X-Amz-Algorithm": "AWS4-HMAC-SHA1"},
        "X-Amz-SignedHeaders must include host": {"X-Amz-SignedHeaders": "x-amz-date"},
    }
    for says, change in malformed.items():
        with pytest.raises(urllib.error.HTTPError) as e:
            _fetch(env, _presigned_put(env, path, **change), "PUT", b"by a bad link")
        err = _error_of(e.value)
        assert (e.value.code, err["Code"]) == (400, "AuthorizationQueryParametersError"), err
        assert says in err["Message"], (change, err)
    with pytest.raises(ClientError) as ce:
        s3.head_object(Bucket=bucket, Key="by-bad-link")
    assert _refusal(ce)[0] == 404
    # Well formed, signed ten minutes ago for five: expired.
    parts = urlsplit(env["AWS_ENDPOINT_URL"])
    then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    key = sigv4.signing_key(ROOT.secret_access_key, sigv4.amz_date(then)[:8], sigv4.DEFAULT_REGION)
    q = sigv4.presign_query(
        ROOT.access_key_id, key, sigv4.DEFAULT_REGION, "PUT", path, parts.netloc, 300, now=then
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{env['AWS_ENDPOINT_URL']}{path}?{urlencode(q, quote_via=quote)}", "PUT", b"x")
    err = _error_of(e.value)
    assert (e.value.code, err["Code"]) == (403, "AccessDenied")
    assert err["Message"].startswith("Request has expired")


def test_the_sdk_presigns_urls_that_plain_http_can_use(
    cluster: DevCluster, env: dict[str, str]
) -> None:
    """An object written through gRPC, read and replaced through links the
    SDK signed (no call to the cluster), and a link past its time refused."""
    base, bucket = env["AWS_ENDPOINT_URL"], "sdk-links"
    with cluster.client() as c:
        c.create_bucket(bucket)
        c.put_bucket_versioning(bucket, "Enabled")
        first = c.put_object(bucket, "linked/a b+ü", b"first").version_id
        url = c.presign_url(bucket, "linked/a b+ü", expires_in=60, endpoint_url=base)
        assert _fetch(env, url) == b"first"
        put = c.presign_url(bucket, "linked/a b+ü", method="PUT", endpoint_url=base)
        _fetch(env, put, "PUT", b"second")
        assert c.get_object(bucket, "linked/a b+ü") == b"second"
        # An older version by its id; the newest by the first link, made before it.
        old = c.presign_url(bucket, "linked/a b+ü", version_id=first, endpoint_url=base)
        assert _fetch(env, old) == b"first"
        assert _fetch(env, url) == b"second"
        then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        stale = c.presign_url(bucket, "linked/a b+ü", expires_in=300, endpoint_url=base, now=then)
        with pytest.raises(urllib.error.HTTPError) as e:
            _fetch(env, stale)
        assert e.value.code == 403 and _error_of(e.value)["Code"] == "AccessDenied"


def test_unsigned_and_wrongly_signed_requests_are_refused(
    s3: Any, env: dict[str, str], bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{env['AWS_ENDPOINT_URL']}/{bucket}/private")
    assert e.value.code == 403
    err = _error_of(e.value)
    assert err["Code"] == "AccessDenied"
    assert err["Resource"] == f"/{bucket}/private"
    assert err["RequestId"] == e.value.headers["x-amz-request-id"]
    assert err["HostId"] == e.value.headers["x-amz-id-2"] and err["HostId"]
    wrong = _client(env, secret="x" * 40)
    with pytest.raises(ClientError) as ce:
        wrong.get_object(Bucket=bucket, Key="private")
    assert ce.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert ce.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as ce:
        wrong.put_object(Bucket=bucket, Key="private", Body=b"overwritten?")
    assert ce.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    wrong.close()
    unknown = _client(env, access_key="AKNOSUCHKEY000000000")
    with pytest.raises(ClientError) as ce:
        unknown.list_buckets()
    unknown.close()
    assert ce.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert s3.get_object(Bucket=bucket, Key="private")["Body"].read() == b"secret"
    # A public-read object: anonymous GET allowed (the same ACL check as gRPC), PUT not.
    s3.put_object(Bucket=bucket, Key="public", Body=b"for all", ACL="public-read")
    assert _fetch(env, f"{env['AWS_ENDPOINT_URL']}/{bucket}/public") == b"for all"
    grants = s3.get_object_acl(Bucket=bucket, Key="public")["Grants"]
    assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [
        g["Grantee"] for g in grants
    ]
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{env['AWS_ENDPOINT_URL']}/{bucket}/public", "PUT", b"defaced")
    assert _error_of(e.value)["Code"] == "AccessDenied"
    assert e.value.code == 403


def test_a_malformed_authorization_header_is_a_400_naming_the_fault(
    s3: Any, env: dict[str, str], bucket: str
) -> None:
    """S3's answers: 400 AuthorizationHeaderMalformed for an AWS4-HMAC-SHA256
    header that is not well formed, 400 InvalidArgument for another scheme (a
    bearer token); nothing is read or written. A well-formed header with a
    wrong signature stays 403 (test above)."""
    s3.put_object(Bucket=bucket, Key="guarded", Body=b"secret")
    url = f"{env['AWS_ENDPOINT_URL']}/{bucket}/guarded"
    req = AWSRequest(method="GET", url=url)
    creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    S3SigV4Auth(creds, "s3", env["AWS_DEFAULT_REGION"]).add_auth(req)
    good = dict(req.headers)
    assert _fetch(env, url, headers=good) == b"secret"  # as signed
    auth = good["Authorization"]
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    akid, day, region, _, _ = scope.split("/")
    malformed = {
        "AWS4-HMAC-SHA256 garbage": 'component "garbage" is malformed',
        auth.split(", Signature=")[0]: "requires three components",
        auth.replace(scope, f"{akid}/{day}/{region}/s3"): "Credential is mal-formed",
        auth.replace(scope, f"{akid}/{day}/extra/{region}/s3/aws4_request"): "mal-formed",
        auth.replace(f"/{day}/", "/24-05-2013/"): "Credential is mal-formed",
        # A real day, not the request's (was 403 AccessDenied).
        auth.replace(f"/{day}/", "/20130524/"): "Date is not the same as X-Amz-Date",
    }
    for header, says in malformed.items():
        with pytest.raises(urllib.error.HTTPError) as e:
            _fetch(env, url, headers={**good, "Authorization": header})
        assert e.value.code == 400, header
        err = _error_of(e.value)
        assert err["Code"] == "AuthorizationHeaderMalformed", (header, err)
        assert err["Message"].startswith("The authorization header is malformed; "), err
        assert says in err["Message"], (header, err)
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, url, headers={**good, "Authorization": "Bearer a-token"})
    assert e.value.code == 400
    err = _error_of(e.value)
    assert err["Code"] == "InvalidArgument", err
    assert err["Message"].startswith("Unsupported Authorization Type"), err
    # boto3 reads the code as S3's (its error class by that name).
    bad = _client(env)

    def spoil(request: Any, **_: Any) -> None:
        request.headers["Authorization"] = "AWS4-HMAC-SHA256 garbage"

    bad.meta.events.register("before-send.s3.GetObject", spoil)
    with pytest.raises(ClientError) as ce:
        bad.get_object(Bucket=bucket, Key="guarded")
    bad.close()
    assert ce.value.response["Error"]["Code"] == "AuthorizationHeaderMalformed"
    assert ce.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_bucket_policy_opens_a_prefix_to_anonymous_readers(s3: Any, env: dict[str, str]) -> None:
    s3.create_bucket(Bucket="opened")
    s3.put_object(Bucket="opened", Key="pub/a", Body=b"open")
    s3.put_object(Bucket="opened", Key="priv/a", Body=b"closed")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::opened/pub/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket="opened", Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket="opened")["Policy"])["Statement"]
    url = env["AWS_ENDPOINT_URL"]
    assert _fetch(env, f"{url}/opened/pub/a") == b"open"
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{url}/opened/priv/a")
    assert _error_of(e.value)["Code"] == "AccessDenied"
    # A key the reader may read but that is not there: without s3:ListBucket
    # it is not told apart from a key it may not read (403, as S3), a HEAD too.
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{url}/opened/pub/missing")
    assert e.value.code == 403 and _error_of(e.value)["Code"] == "AccessDenied"
    head = urllib.request.Request(f"{url}/opened/pub/missing", method="HEAD")
    with pytest.raises(urllib.error.HTTPError) as e:
        _urlopen(head, env)
    assert e.value.code == 403
    # response-* overrides need a signed request (S3: not for anonymous GETs).
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{url}/opened/pub/a?response-content-type=x/y")
    assert e.value.code == 400 and _error_of(e.value)["Code"] == "InvalidRequest"
    signed = s3.get_object(Bucket="opened", Key="pub/a", ResponseContentType="x/y")
    assert signed["ContentType"] == "x/y"
    # Given s3:ListBucket too, it is a 404 NoSuchKey.
    policy["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::opened",
        }
    )
    s3.put_bucket_policy(Bucket="opened", Policy=json.dumps(policy))
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{url}/opened/pub/missing")
    assert e.value.code == 404 and _error_of(e.value)["Code"] == "NoSuchKey"
    # The owner (who may list) is told as before.
    with pytest.raises(ClientError) as ce:
        s3.head_object(Bucket="opened", Key="pub/missing")
    assert ce.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.delete_bucket_policy(Bucket="opened")
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, f"{url}/opened/pub/a")
    assert _error_of(e.value)["Code"] == "AccessDenied"


def test_conditional_writes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def _signed_put(
    env: dict[str, str], url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str]]:
    """A PUT signed by botocore with ``headers``, sent once (no SDK retry):
    its status, and the error code or the version id header."""
    req = AWSRequest(method="PUT", url=url, data=body, headers=headers)
    creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    S3SigV4Auth(creds, "s3", env["AWS_DEFAULT_REGION"]).add_auth(req)
    try:
        _urlopen(urllib.request.Request(url, body, dict(req.headers), method="PUT"), env)
    except urllib.error.HTTPError as e:
        return e.code, _error_of(e)
    return 200, {}


def test_an_sdk_retry_of_a_put_finds_its_earlier_try(s3: Any, env: dict[str, str]) -> None:
    """AWS SDKs send the same amz-sdk-invocation-id with every try of a call
    and the try's number in amz-sdk-request. A conditional PUT retried after a
    try that took effect (its answer lost) succeeds with that try's version,
    as the gRPC SDK's request id does, instead of failing its own condition."""
    s3.create_bucket(Bucket="sdk-retries")
    url = f"{env['AWS_ENDPOINT_URL']}/sdk-retries/lock"
    call = {"If-None-Match": "*", "amz-sdk-invocation-id": "0f6c1f54-4c1e-4d42-9a2e-7d5b3a1c0e11"}
    assert _signed_put(env, url, b"mine", {**call, "amz-sdk-request": "attempt=1; max=3"})[0] == 200
    # The same call's second try: its first took effect.
    assert _signed_put(env, url, b"mine", {**call, "amz-sdk-request": "attempt=2; max=3"})[0] == 200
    # A first try of another call is refused.
    other = {**call, "amz-sdk-invocation-id": "7a0e2b6d-1c55-4f0b-8a4e-2f9d6c3b5a70"}
    status, err = _signed_put(env, url, b"theirs", {**other, "amz-sdk-request": "attempt=1"})
    assert (status, err["Code"]) == (412, "PreconditionFailed")
    # Its retry cannot tell whether its first try took effect and was
    # replaced since (the bucket keeps no versions to look in): it says so.
    status, err = _signed_put(env, url, b"theirs", {**other, "amz-sdk-request": "attempt=2"})
    assert (status, err["Code"]) == (409, "OutcomeUnknown")
    assert s3.get_object(Bucket="sdk-retries", Key="lock")["Body"].read() == b"mine"
    # With versions to look in, it can tell: refused.
    s3.put_bucket_versioning(Bucket="sdk-retries", VersioningConfiguration={"Status": "Enabled"})
    status, err = _signed_put(env, url, b"theirs", {**other, "amz-sdk-request": "attempt=3"})
    assert (status, err["Code"]) == (412, "PreconditionFailed")
    # An unconditional PUT retried after its try took effect adds no second version.
    plain = {"amz-sdk-invocation-id": "5d1e7c2a-9b3f-4e6d-8c0a-1f2e3d4c5b6a"}
    for attempt in (1, 2):
        headers = {**plain, "amz-sdk-request": f"attempt={attempt}; max=3"}
        assert _signed_put(env, f"{url}-v", b"once", headers)[0] == 200
    assert len(s3.list_object_versions(Bucket="sdk-retries", Prefix="lock-v")["Versions"]) == 1


def _put_without_length(
    env: dict[str, str], path: str, chunks: list[bytes] | None = None
) -> tuple[int, dict[str, str]]:
    """A PUT of ``path`` (and its query), signed by botocore (UNSIGNED-PAYLOAD
    over HTTPS), sent without Content-Length: no body framing at all
    (``chunks`` None), or ``chunks`` as a plain HTTP/1.1 chunked body. Its
    status and the error's fields ({} for a 2xx)."""
    url = env["AWS_ENDPOINT_URL"] + path
    req = AWSRequest(method="PUT", url=url)
    # The body is unknown when signing: UNSIGNED-PAYLOAD, not the empty body's SHA-256.
    req.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    S3SigV4Auth(creds, "s3", env["AWS_DEFAULT_REGION"]).add_auth(req)
    headers = dict(req.headers)
    assert headers["X-Amz-Content-SHA256"] == sigv4.UNSIGNED_PAYLOAD
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, context=_ssl(env), timeout=30
    )
    try:
        if chunks is None:
            # Not conn.request: it would add Content-Length: 0 to a PUT.
            conn.putrequest("PUT", path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
        else:
            headers["Transfer-Encoding"] = "chunked"
            conn.request("PUT", path, body=iter(chunks), headers=headers, encode_chunked=True)
        with conn.getresponse() as resp:
            status, answer = resp.status, resp.read()
    finally:
        conn.close()
    if status < 300:
        return status, {}
    root = ET.fromstring(answer)
    return status, {child.tag: child.text or "" for child in root}


def test_a_put_without_content_length_is_411(env: dict[str, str], s3: Any, bucket: str) -> None:
    """PutObject and UploadPart with neither Content-Length nor a chunked body
    (HTTP reads that as no body): S3's 411 MissingContentLength, and nothing
    stored. Was: taken, an empty object (or part) stored. A plain HTTP/1.1
    chunked body of unknown length stays taken; aws-chunked ones (every boto3
    PUT here) too."""
    status, err = _put_without_length(env, f"/{bucket}/no-length")
    assert (status, err.get("Code")) == (411, "MissingContentLength"), err
    assert err["Message"] == "You must provide the Content-Length HTTP header."
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="no-length")
    assert _refusal(e)[0] == 404
    upload = s3.create_multipart_upload(Bucket=bucket, Key="no-length-parts")["UploadId"]
    path = f"/{bucket}/no-length-parts?partNumber=1&uploadId={quote(upload, safe='')}"
    status, err = _put_without_length(env, path)
    assert (status, err.get("Code")) == (411, "MissingContentLength"), err
    listed = s3.list_parts(Bucket=bucket, Key="no-length-parts", UploadId=upload)
    assert listed.get("Parts", []) == []
    # Chunked, of a length told by its last chunk: taken, as before.
    assert _put_without_length(env, f"/{bucket}/chunked-plain", [b"ab", b"cde"]) == (200, {})
    assert s3.get_object(Bucket=bucket, Key="chunked-plain")["Body"].read() == b"abcde"
    assert _put_without_length(env, path, [b"part"]) == (200, {})
    listed = s3.list_parts(Bucket=bucket, Key="no-length-parts", UploadId=upload)
    assert [p["Size"] for p in listed["Parts"]] == [4]
    s3.abort_multipart_upload(Bucket=bucket, Key="no-length-parts", UploadId=upload)
    # A request document (tags, a policy) too; CreateBucket's is optional.
    status, err = _put_without_length(env, f"/{bucket}?tagging")
    assert (status, err.get("Code")) == (411, "MissingContentLength"), err
    status, err = _put_without_length(env, f"/{bucket}/no-length-parts?tagging")
    assert (status, err.get("Code")) == (411, "MissingContentLength"), err
    assert _put_without_length(env, "/no-length-bucket") == (200, {})
    s3.delete_bucket(Bucket="no-length-bucket")


def test_a_signed_aws_chunked_upload(env: dict[str, str], s3: Any, bucket: str) -> None:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD as the Java and Go SDKs send it, by
    hand: accepted when every chunk's signature chains, refused (nothing
    stored) when one chunk was altered."""
    chunks = [os.urandom(70_000), os.urandom(70_000), os.urandom(1_000)]
    status, _ = _chunked_put(env, bucket, "chunked", chunks)
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"".join(chunks)
    status, answer = _chunked_put(env, bucket, "chunked-bad", chunks, tamper=True)
    assert status == 403
    root = ET.fromstring(answer)
    assert root.findtext("Code") == "SignatureDoesNotMatch"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="chunked-bad")


def _chunked_put(
    env: dict[str, str], bucket: str, key: str, chunks: list[bytes], tamper: bool = False
) -> tuple[int, bytes]:
    """PUT ``chunks`` as a signed aws-chunked body; (status, answer)."""
    parts = urlsplit(env["AWS_ENDPOINT_URL"])
    when = sigv4.amz_date()
    scope = sigv4.scope(when[:8], sigv4.DEFAULT_REGION)
    skey = sigv4.signing_key(ROOT.secret_access_key, when[:8], sigv4.DEFAULT_REGION)
    size = sum(len(c) for c in chunks)
    headers = {
        "host": parts.netloc,
        "x-amz-date": when,
        "x-amz-content-sha256": sigv4.STREAMING_SIGNED,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(size),
    }
    names = sorted(headers)
    path = f"/{bucket}/{key}"
    canonical = sigv4.http_canonical_request(
        "PUT", path, [], headers, names, sigv4.STREAMING_SIGNED
    )
    seed = sigv4.signature(skey, sigv4.string_to_sign(when, scope, canonical))
    body = b""
    previous = seed
    for data in [*chunks, b""]:
        sig = sigv4.chunk_signature(skey, when, scope, previous, hashlib.sha256(data).hexdigest())
        previous = sig
        sent = data[:-1] + bytes([data[-1] ^ 1]) if tamper and data is chunks[1] else data
        body += f"{len(data):x};chunk-signature={sig}\r\n".encode() + sent + b"\r\n"
    headers["authorization"] = (
        f"{sigv4.ALGORITHM} Credential={ROOT.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={seed}"
    )
    headers["content-length"] = str(len(body))
    conn = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, context=_ssl(env), timeout=30
    )
    try:
        conn.request("PUT", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_one_door_then_the_other(cluster: DevCluster, s3: Any, bucket: str) -> None:
    with cluster.client() as c:
        info = c.put_object(bucket, "by-grpc", b"written over gRPC", metadata={"door": "grpc"})
        got = s3.get_object(Bucket=bucket, Key="by-grpc")
        assert got["Body"].read() == b"written over gRPC"
        assert got["Metadata"] == {"door": "grpc"}
        assert got["ETag"] == f'"{info.etag}"'
        r = s3.put_object(
            Bucket=bucket, Key="by-http", Body=b"written over HTTP", Metadata={"door": "http"}
        )
        assert c.get_object(bucket, "by-http") == b"written over HTTP"
        head = c.head_object(bucket, "by-http")
        assert head.metadata == {"door": "http"}
        assert f'"{head.etag}"' == r["ETag"]
        # The checksum boto3 sent (CRC32) is the object's, through either door;
        # one written over gRPC gets a CRC-64/NVME, as S3's default.
        assert (head.checksum_algorithm, head.checksum) == ("crc32", r["ChecksumCRC32"])
        assert head.checksum_type == "FULL_OBJECT"
        h = s3.head_object(Bucket=bucket, Key="by-grpc", ChecksumMode="ENABLED")
        assert h["ChecksumCRC64NVME"] == info.checksum
        assert info.checksum == checksums.digest_of("crc64nvme", b"written over gRPC")
        keys = [e.key for e in c.list_objects(bucket, prefix="by-").contents]
        assert keys == ["by-grpc", "by-http"]


def test_an_aws_cli_session(env: dict[str, str], tmp_path: Path) -> None:
    """The aws CLI, configured by nothing but ``dev up``'s export lines."""
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the aws CLI is not installed (pip install -e '.[dev]' installs it)")
    run_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env}

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [str(aws), *args], env=run_env, capture_output=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout.decode()

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    files = {"a.txt": os.urandom(1000), "b.txt": b"bee", "sub/big.bin": os.urandom(9 * MiB)}
    for name, data in files.items():
        (tree / name).write_bytes(data)
    assert "make_bucket: awscli" in cli("s3", "mb", "s3://awscli")
    cli("s3", "sync", str(tree), "s3://awscli/tree", "--no-progress")
    listed = cli("s3", "ls", "s3://awscli/tree/", "--recursive")
    assert sorted(line.split()[-1] for line in listed.splitlines()) == sorted(
        f"tree/{n}" for n in files
    )
    assert cli("s3", "sync", str(tree), "s3://awscli/tree", "--no-progress") == ""
    cli("s3", "cp", "s3://awscli/tree/sub/big.bin", str(tmp_path / "big.out"), "--no-progress")
    assert (tmp_path / "big.out").read_bytes() == files["sub/big.bin"]
    cli("s3", "cp", "s3://awscli/tree/sub/big.bin", "s3://awscli/copy.bin", "--no-progress")
    head = json.loads(cli("s3api", "head-object", "--bucket", "awscli", "--key", "copy.bin"))
    assert head["ContentLength"] == 9 * MiB
    url = cli("s3", "presign", "s3://awscli/tree/b.txt", "--expires-in", "60").strip()
    assert _fetch(env, url) == b"bee"
    cli("s3", "rm", "s3://awscli", "--recursive")
    assert "remove_bucket: awscli" in cli("s3", "rb", "s3://awscli")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (.ci/run installs Debian's package)")
    return found


def _run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, timeout=180, check=False)
    assert proc.returncode == 0, f"{args[:3]}: {proc.stderr.decode()[-2000:]}"
    return proc.stdout.decode()


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": os.urandom(3000), "sub/b.bin": os.urandom(17 * MiB)}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_an_rclone_session(env: dict[str, str], tmp_path: Path) -> None:
    rclone = _tool("rclone")
    run_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "RCLONE_CONFIG_TS_TYPE": "s3",
        "RCLONE_CONFIG_TS_PROVIDER": "Other",
        "RCLONE_CONFIG_TS_ENDPOINT": env["AWS_ENDPOINT_URL"],
        "RCLONE_CONFIG_TS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
        "RCLONE_CONFIG_TS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
        "RCLONE_CONFIG_TS_REGION": env["AWS_DEFAULT_REGION"],
        "RCLONE_CONFIG_TS_FORCE_PATH_STYLE": "true",
    }
    # (rclone's AWS SDK cannot take AWS_CA_BUNDLE; --ca-cert gives it the CA.)
    base = [rclone, "-q", "--ca-cert", env["AWS_CA_BUNDLE"]]
    files = _tree(tmp_path / "src")
    _run([*base, "mkdir", "ts:rclone"], run_env)
    _run([*base, "copy", str(tmp_path / "src"), "ts:rclone/copy"], run_env)
    _run([*base, "check", str(tmp_path / "src"), "ts:rclone/copy"], run_env)
    (tmp_path / "src" / "a.txt").unlink()
    _run([*base, "sync", str(tmp_path / "src"), "ts:rclone/copy"], run_env)
    listed = _run([*base, "ls", "ts:rclone"], run_env)
    assert [line.split()[-1] for line in listed.splitlines()] == ["copy/sub/b.bin"]
    _run([*base, "copy", "ts:rclone/copy", str(tmp_path / "back")], run_env)
    assert (tmp_path / "back" / "sub" / "b.bin").read_bytes() == files["sub/b.bin"]
    _run([*base, "purge", "ts:rclone"], run_env)


def test_an_s3cmd_session(env: dict[str, str], tmp_path: Path) -> None:
    """s3cmd signs every payload's SHA-256 (no UNSIGNED-PAYLOAD) and uploads
    large files in 15 MiB parts."""
    s3cmd = _tool("s3cmd")
    host = urlsplit(env["AWS_ENDPOINT_URL"]).netloc
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {env['AWS_ACCESS_KEY_ID']}\n"
        f"secret_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
        f"host_base = {host}\nhost_bucket = {host}\n"
        f"use_https = True\nca_certs_file = {env['AWS_CA_BUNDLE']}\n"
        f"bucket_location = {env['AWS_DEFAULT_REGION']}\nsignature_v2 = False\n"
    )
    run_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    base = [s3cmd, "-c", str(cfg)]
    files = _tree(tmp_path / "src")
    _run([*base, "mb", "s3://s3cmd"], run_env)
    _run([*base, "sync", f"{tmp_path / 'src'}/", "s3://s3cmd/tree/"], run_env)
    listed = _run([*base, "ls", "--recursive", "s3://s3cmd"], run_env)
    assert sorted(line.split()[-1] for line in listed.splitlines()) == [
        "s3://s3cmd/tree/a.txt",
        "s3://s3cmd/tree/sub/b.bin",
    ]
    _run([*base, "get", "s3://s3cmd/tree/sub/b.bin", str(tmp_path / "b.out")], run_env)
    assert (tmp_path / "b.out").read_bytes() == files["sub/b.bin"]
    # s3cmd prints its signed URL with http: whatever use_https says.
    url = _run([*base, "signurl", "s3://s3cmd/tree/a.txt", "+60"], run_env).strip()
    assert _fetch(env, url.replace("http://", "https://", 1)) == files["a.txt"]
    # setacl reads the object's ACL, adds or takes away AllUsers' READ, and
    # puts the policy back.
    plain = f"{env['AWS_ENDPOINT_URL']}/s3cmd/tree/a.txt"
    _run([*base, "setacl", "--acl-public", "s3://s3cmd/tree/a.txt"], run_env)
    assert _fetch(env, plain) == files["a.txt"]
    _run([*base, "setacl", "--acl-private", "s3://s3cmd/tree/a.txt"], run_env)
    with pytest.raises(urllib.error.HTTPError) as e:
        _fetch(env, plain)
    assert e.value.code == 403
    _run([*base, "del", "--recursive", "--force", "s3://s3cmd"], run_env)
    _run([*base, "rb", "s3://s3cmd"], run_env)


def test_virtual_host_addressing(s3: Any, env: dict[str, str], bucket: str) -> None:
    """``BUCKET.<s3_domain>``: signed by botocore's own SigV4 signer, sent to
    the node's address (the name need not resolve for the test)."""
    s3.put_object(Bucket=bucket, Key="vhost/key x", Body=b"by host name")
    port = urlsplit(env["AWS_ENDPOINT_URL"]).port
    url = f"https://{bucket}.{VHOST_DOMAIN}:{port}/vhost/key%20x"
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": sigv4.EMPTY_SHA256})
    creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    S3SigV4Auth(creds, "s3", env["AWS_DEFAULT_REGION"]).add_auth(req)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_ssl(env), timeout=10)
    try:
        headers = {**dict(req.headers.items()), "Host": f"{bucket}.{VHOST_DOMAIN}:{port}"}
        conn.request("GET", "/vhost/key%20x", headers=headers)
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"by host name")
    finally:
        conn.close()


def _signed_put_head(env: dict[str, str], url: str, headers: dict[str, str], secret: str) -> bytes:
    """The request line and headers of a PUT signed by botocore with
    ``secret``, to send by hand on a socket (the body follows, or not)."""
    req = AWSRequest(method="PUT", url=url, headers=headers)
    creds = Credentials(env["AWS_ACCESS_KEY_ID"], secret)
    S3SigV4Auth(creds, "s3", env["AWS_DEFAULT_REGION"]).add_auth(req)
    parts = urlsplit(url)
    lines = [
        f"PUT {parts.path} HTTP/1.1",
        f"Host: {parts.hostname}:{parts.port}",
        *(f"{k}: {v}" for k, v in req.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _put_answers(cluster: DevCluster, node: str, operation: str = "PutObject") -> float:
    """``operation`` requests a node's S3 API has answered (any status)."""
    addr = cluster.config.node_named(node).metrics
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as resp:
        lines = resp.read().decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("tristore_s3_requests_total{") and f'operation="{operation}"' in line
    )


def test_a_body_cut_short_stores_nothing(
    cluster: DevCluster, s3: Any, env: dict[str, str], bucket: str
) -> None:
    """A signed PUT that declares 100,000 bytes, sends 10 and hangs up."""
    url = f"{env['AWS_ENDPOINT_URL']}/{bucket}/cut-short"
    node = next(n.name for n in cluster.config.nodes if n.s3 == urlsplit(url).netloc)
    answered = _put_answers(cluster, node)
    headers = {"x-amz-content-sha256": sigv4.UNSIGNED_PAYLOAD, "content-length": "100000"}
    head = _signed_put_head(env, url, headers, env["AWS_SECRET_ACCESS_KEY"])
    parts = urlsplit(url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    with _ssl(env).wrap_socket(raw, server_hostname=parts.hostname) as conn:
        conn.sendall(head + b"x" * 10)
    # The node saw the hang-up and ended the PUT its body fed (counted once it did).
    wait_until(
        lambda: _put_answers(cluster, node) > answered, 30, what="the PUT to end on the node"
    )
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="cut-short")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_wrongly_signed_upload_is_refused_before_its_body(
    env: dict[str, str], bucket: str
) -> None:
    """Expect: 100-continue: the signature is checked before the body is asked for."""
    url = f"{env['AWS_ENDPOINT_URL']}/{bucket}/never-sent"
    headers = {
        "x-amz-content-sha256": sigv4.UNSIGNED_PAYLOAD,
        "content-length": str(50 * MiB),
        "expect": "100-continue",
    }
    head = _signed_put_head(env, url, headers, "x" * 40)
    parts = urlsplit(url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    with _ssl(env).wrap_socket(raw, server_hostname=parts.hostname) as conn:
        conn.sendall(head)
        answer = b""
        while b"</Error>" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b"<Code>SignatureDoesNotMatch</Code>" in answer
    # The body was never sent: the connection cannot carry another request
    # (its next bytes would be read as this one's body), and the answer says
    # so, or a client would send its next request on it.
    assert b"\r\nConnection: close\r\n" in answer.split(b"\r\n\r\n")[0], answer[:400]


def test_a_download_the_client_drops_is_one_warning_not_an_error(
    cluster: DevCluster, s3: Any, env: dict[str, str], bucket: str
) -> None:
    """A client that goes away mid-download (routine) is logged once, as a
    warning, not also as aiohttp's error with a traceback."""
    s3.put_object(Bucket=bucket, Key="dropped", Body=os.urandom(24 * MiB))
    v4 = _client(env, config=Config(signature_version="s3v4"))
    url = urlsplit(v4.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "dropped"}))
    raw = socket.create_connection((url.hostname, url.port), timeout=10)
    conn = _ssl(env).wrap_socket(raw, server_hostname=url.hostname)
    conn.sendall(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
    assert conn.recv(65536).startswith(b"HTTP/1.1 200")
    # Gone at once, the rest unread (a reset, not a close the server waits out).
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()
    log = cluster.dir / "logs" / f"{cluster.config.nodes[0].name}.log"
    wait_until(lambda: "S3 GetObject failed while streaming" in log.read_text(), 30)
    assert "Error handling request" not in log.read_text()


def test_what_is_not_offered_is_refused_as_not_implemented(s3: Any, bucket: str) -> None:
    rule = {"ID": "r", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}
    with pytest.raises(ClientError) as e:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}
        )
    assert e.value.response["Error"]["Code"] == "NotImplemented"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert "tristore does not offer lifecycle" in e.value.response["Error"]["Message"]


def _error(e: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def test_conditional_deletes(s3: Any, bucket: str) -> None:
    """S3's conditional delete (If-Match on DeleteObject, ETag in a
    DeleteObjects entry): deleted only if the ETag matches; 412 and nothing
    deleted if not; 404 for a key that is not there. Before, the condition
    was ignored and the object deleted whatever it held."""
    etag = s3.put_object(Bucket=bucket, Key="cd", Body=b"kept")["ETag"]
    wrong = '"00000000000000000000000000000000"'
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="cd", IfMatch=wrong)
    assert _error(e) == (412, "PreconditionFailed")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "cd", "ETag": wrong}]})
    assert [(x["Key"], x["Code"]) for x in out["Errors"]] == [("cd", "PreconditionFailed")]
    assert not out.get("Deleted")
    assert s3.get_object(Bucket=bucket, Key="cd")["Body"].read() == b"kept"
    s3.delete_object(Bucket=bucket, Key="cd", IfMatch=etag)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="cd")
    assert _error(e)[0] == 404
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="cd", IfMatch=etag)
    assert _error(e) == (404, "NoSuchKey")
    etag = s3.put_object(Bucket=bucket, Key="cd2", Body=b"two")["ETag"]
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "cd2", "ETag": etag}]})
    assert [x["Key"] for x in out["Deleted"]] == ["cd2"] and not out.get("Errors")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="cd2")
    assert _error(e)[0] == 404


def test_conditional_deletes_in_a_versioned_bucket(s3: Any) -> None:
    """If-Match without a version id: a delete marker, only if the current
    object's ETag matches; with one, that version's ETag."""
    b = "conditional-deletes-versioned"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=b, Key="k", Body=b"one")
    second = s3.put_object(Bucket=b, Key="k", Body=b"two")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=b, Key="k", IfMatch=first["ETag"])
    assert _error(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=b, Key="k", VersionId=first["VersionId"], IfMatch=second["ETag"])
    assert _error(e) == (412, "PreconditionFailed")
    s3.delete_object(Bucket=b, Key="k", VersionId=first["VersionId"], IfMatch=first["ETag"])
    marker = s3.delete_object(Bucket=b, Key="k", IfMatch=second["ETag"])
    assert marker["DeleteMarker"] is True
    versions = s3.list_object_versions(Bucket=b, Prefix="k")
    assert [v["VersionId"] for v in versions["Versions"]] == [second["VersionId"]]
    assert [m["VersionId"] for m in versions["DeleteMarkers"]] == [marker["VersionId"]]


def test_conditions_only_directory_buckets_take_are_refused(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="cs", Body=b"kept")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="cs", IfMatchSize=4)
    assert _error(e) == (501, "NotImplemented")
    assert s3.get_object(Bucket=bucket, Key="cs")["Body"].read() == b"kept"


def test_an_empty_version_id_is_refused(s3: Any, bucket: str) -> None:
    """Taken for no version id, a DELETE would remove the current object."""
    s3.put_object(Bucket=bucket, Key="ev", Body=b"kept")
    for call in (
        lambda: s3.get_object(Bucket=bucket, Key="ev", VersionId=""),
        lambda: s3.delete_object(Bucket=bucket, Key="ev", VersionId=""),
        lambda: s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": "ev", "VersionId": ""}]}
        ),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _error(e) == (400, "InvalidArgument")
    assert s3.get_object(Bucket=bucket, Key="ev")["Body"].read() == b"kept"


def test_listings_name_each_objects_storage_class(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="sc/ia", Body=b"x", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=bucket, Key="sc/std", Body=b"x")
    want = {"sc/ia": "STANDARD_IA", "sc/std": "STANDARD"}
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="sc/")["Contents"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="sc/")["Contents"]
    for listing in (v2, v1):
        assert {c["Key"]: c["StorageClass"] for c in listing} == want


def test_mfa_delete_and_other_object_ownerships_are_refused_not_ignored(s3: Any) -> None:
    b = "mfa-delete-refused"
    s3.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(
            Bucket=b,
            MFA="arn:aws:iam::1:mfa/root 123456",
            VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"},
        )
    assert _error(e) == (501, "NotImplemented")
    assert "Status" not in s3.get_bucket_versioning(Bucket=b)  # left as it was
    for ownership, status, code in (
        ("ObjectWriter", 501, "NotImplemented"),
        ("Bogus", 400, "InvalidArgument"),
    ):
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket="ownership-refused", ObjectOwnership=ownership)
        assert _error(e) == (status, code)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="ownership-refused")
    assert _error(e)[0] == 404
    s3.create_bucket(Bucket="ownership-enforced", ObjectOwnership="BucketOwnerEnforced")


def test_an_error_about_a_key_with_control_characters_names_its_code(s3: Any, bucket: str) -> None:
    """The error document stays XML 1.0, so the SDK reads its code (it
    reported the HTTP status instead)."""
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="no\x01such\x02key")
    assert _error(e) == (404, "NoSuchKey")


def test_a_bucket_with_object_lock_is_refused(s3: Any) -> None:
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="with-object-lock", ObjectLockEnabledForBucket=True)
    assert _error(e) == (501, "NotImplemented")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="with-object-lock")
    assert _error(e)[0] == 404  # no bucket was made


def _plain(
    env: dict[str, str], method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers by lower-case name, body) of one plain HTTPS request
    to the node (``path`` with its query), signed by nobody."""
    port = urlsplit(env["AWS_ENDPOINT_URL"]).port
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_ssl(env), timeout=10)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


APP = "https://app.example.com"
PREFLIGHT_VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


def test_cors_configuration_preflight_and_cross_origin_answers(
    s3: Any, env: dict[str, str]
) -> None:
    s3.create_bucket(Bucket="cors")
    s3.put_object(Bucket="cors", Key="private", Body=b"secret")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket="cors")
    assert e.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    ask = {"Origin": APP, "Access-Control-Request-Method": "GET"}
    status, _, body = _plain(env, "OPTIONS", "/cors/private", ask)
    assert status == 403 and b"<Code>AccessForbidden</Code>" in body
    assert b"CORS is not enabled for this bucket" in body

    rules = [
        {
            "ID": "app",
            "AllowedHeaders": ["x-amz-*", "Content-Type"],
            "AllowedMethods": ["GET", "PUT"],
            "AllowedOrigins": ["https://*.example.com"],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 600,
        },
        {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"]},
    ]
    s3.put_bucket_cors(Bucket="cors", CORSConfiguration={"CORSRules": rules})
    assert s3.get_bucket_cors(Bucket="cors")["CORSRules"] == rules
    for bad, code in (
        ({"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}, "InvalidRequest"),
        ({"AllowedMethods": ["GET"], "AllowedOrigins": ["https://*.*.com"]}, "InvalidRequest"),
        ({"AllowedMethods": ["GET"], "AllowedOrigins": []}, "MalformedXML"),
    ):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_cors(Bucket="cors", CORSConfiguration={"CORSRules": [bad]})
        assert e.value.response["Error"]["Code"] == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.get_bucket_cors(Bucket="cors")["CORSRules"] == rules  # unchanged

    # A preflight needs no signature, of an object (a multipart part too) or the bucket.
    for path in ("/cors/private", "/cors/new%20key?partNumber=1&uploadId=x", "/cors"):
        status, h, body = _plain(
            env,
            "OPTIONS",
            path,
            {**ask, "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "Content-Type, X-Amz-Date"},
        )  # fmt: skip
        assert (status, body) == (200, b""), (path, body)
        assert h["access-control-allow-origin"] == APP
        assert h["access-control-allow-methods"] == "GET, PUT"
        assert h["access-control-allow-headers"] == "content-type, x-amz-date"
        assert h["access-control-expose-headers"] == "ETag, x-amz-request-id"
        assert h["access-control-max-age"] == "600"
        assert h["access-control-allow-credentials"] == "true"
        assert h["vary"] == PREFLIGHT_VARY
    # The second rule: any origin, GET and HEAD only, no headers.
    status, h, _ = _plain(env, "OPTIONS", "/cors/private", {**ask, "Origin": "https://x.org"})
    assert status == 200 and h["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h
    # No rule allows these: 403 AccessForbidden.
    for refused in (
        {**ask, "Origin": "https://x.org", "Access-Control-Request-Method": "PUT"},
        {**ask, "Access-Control-Request-Method": "DELETE"},
        {**ask, "Origin": "https://x.org", "Access-Control-Request-Headers": "x-amz-date"},
    ):
        status, h, body = _plain(env, "OPTIONS", "/cors/private", refused)
        assert status == 403, refused
        assert b"<Code>AccessForbidden</Code>" in body and b"CORSResponse" in body
        assert "access-control-allow-origin" not in h
    # Without Origin or the method asked for: 400.
    status, _, body = _plain(env, "OPTIONS", "/cors/private", {"Origin": APP})
    assert status == 400 and b"<Code>BadRequest</Code>" in body
    status, _, body = _plain(
        env, "OPTIONS", "/cors/private", {"Access-Control-Request-Method": "GET"}
    )
    assert status == 400 and b"Origin request header needed" in body
    # Virtual-host style.
    port = urlsplit(env["AWS_ENDPOINT_URL"]).port
    status, h, _ = _plain(
        env, "OPTIONS", "/private", {**ask, "Host": f"cors.{VHOST_DOMAIN}:{port}"}
    )
    assert status == 200 and h["access-control-allow-origin"] == APP

    # Actual requests: an unsigned GET of a private object is still refused,
    # and its error carries the CORS headers (so the page can read the error).
    status, h, body = _plain(env, "GET", "/cors/private", {"Origin": APP})
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert h["access-control-allow-origin"] == APP
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert "Origin" in h["vary"]
    # A signed one (a presigned URL, as a page would use) gets the object and the headers.
    v4 = _client(env, config=Config(signature_version="s3v4"))
    url = urlsplit(v4.generate_presigned_url("get_object", {"Bucket": "cors", "Key": "private"}))
    status, h, body = _plain(env, "GET", f"{url.path}?{url.query}", {"Origin": "https://x.org"})
    assert (status, body) == (200, b"secret")
    assert h["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h
    # An origin no rule allows for the method, or no Origin at all: no CORS headers.
    status, h, _ = _plain(env, "DELETE", "/cors/private", {"Origin": APP})
    assert status == 403 and "access-control-allow-origin" not in h
    status, h, _ = _plain(env, "GET", "/cors/private", {})
    assert "access-control-allow-origin" not in h and "vary" not in h

    s3.delete_bucket_cors(Bucket="cors")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket="cors")
    assert e.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    status, _, _ = _plain(env, "OPTIONS", "/cors/private", ask)
    assert status == 403
    # A bucket that does not exist answers as one without CORS (nothing learnt).
    status, _, body = _plain(env, "OPTIONS", "/no-such-bucket/k", ask)
    assert status == 403 and b"AccessForbidden" in body


def test_cors_through_one_door_then_the_other(cluster: DevCluster, s3: Any) -> None:
    s3.create_bucket(Bucket="cors-grpc")
    rule = cors.Rule(("https://*.example.com",), ("GET",), ("x-amz-*",), ("ETag",), 60, "sdk")
    with cluster.client() as c:
        with pytest.raises(errors.NoSuchCORSConfiguration):
            c.get_bucket_cors("cors-grpc")
        with pytest.raises(errors.InvalidRequest):
            c.put_bucket_cors("cors-grpc", [cors.Rule(("*",), ("PATCH",))])
        c.put_bucket_cors("cors-grpc", [rule])
        assert c.get_bucket_cors("cors-grpc") == (rule,)
        assert s3.get_bucket_cors(Bucket="cors-grpc")["CORSRules"] == [
            {
                "ID": "sdk",
                "AllowedHeaders": ["x-amz-*"],
                "AllowedMethods": ["GET"],
                "AllowedOrigins": ["https://*.example.com"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 60,
            }
        ]
        s3.put_bucket_cors(
            Bucket="cors-grpc",
            CORSConfiguration={"CORSRules": [{"AllowedMethods": ["PUT"], "AllowedOrigins": ["*"]}]},
        )
        assert c.get_bucket_cors("cors-grpc") == (cors.Rule(("*",), ("PUT",)),)
        c.delete_bucket_cors("cors-grpc")
        with pytest.raises(ClientError) as e:
            s3.get_bucket_cors(Bucket="cors-grpc")
        assert e.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"


def test_requests_are_counted(cluster: DevCluster, s3: Any) -> None:
    s3.list_buckets()
    assert cluster.metric("a1", "tristore_s3_requests_total") > 0
    assert cluster.metric("a1", "tristore_s3_bytes_total") > 0


def test_a_renewed_certificate_is_served_without_a_restart(
    cluster: DevCluster, s3: Any, env: dict[str, str]
) -> None:
    cfg = cluster.config
    files = cfg.tls_files("a1")
    assert files.cert is not None and files.key is not None
    host, _, port = cfg.nodes[0].s3.rpartition(":")

    def served() -> int:
        pem = ssl.get_server_certificate((host, int(port)), ca_certs=env["AWS_CA_BUNDLE"])
        return tls.serial_of(pem.encode())

    assert served() == tls.serial_of(files.cert.read_bytes())
    new = tls.issue(
        files.ca.parent,
        files.cert,
        files.key,
        ["127.0.0.1", "localhost"],
        tls.Identity(cfg.cluster.name, "node", "a1"),
    )
    wait_until(lambda: served() == new, 15, what="the renewed certificate on the S3 port")
    assert s3.list_buckets()["Buckets"]


# --- S3 compatibility: buckets and listings


def test_list_limits_above_a_page_are_capped(s3: Any, bucket: str) -> None:
    """``aws s3 ls --page-size 5000`` and Hadoop S3A (paging.maximum=5000) ask
    for more than a page holds: S3 answers at most 1,000 and echoes the capped
    limit. Negative stays InvalidArgument, naming the parameter."""
    s3.put_object(Bucket=bucket, Key="cap/a", Body=b"a")
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="cap/", MaxKeys=5000)
    assert v2["MaxKeys"] == 1000 and [c["Key"] for c in v2["Contents"]] == ["cap/a"]
    assert s3.list_objects(Bucket=bucket, Prefix="cap/", MaxKeys=5000)["MaxKeys"] == 1000
    versions = s3.list_object_versions(Bucket=bucket, Prefix="cap/", MaxKeys=5000)
    assert versions["MaxKeys"] == 1000 and len(versions["Versions"]) == 1
    assert s3.list_multipart_uploads(Bucket=bucket, MaxUploads=5000)["MaxUploads"] == 1000
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="cap/mpu")["UploadId"]
    try:
        parts = s3.list_parts(Bucket=bucket, Key="cap/mpu", UploadId=upload_id, MaxParts=5000)
        assert parts["MaxParts"] == 1000
        refused = {
            "max-keys": lambda: s3.list_objects_v2(Bucket=bucket, MaxKeys=-1),
            "max-uploads": lambda: s3.list_multipart_uploads(Bucket=bucket, MaxUploads=-1),
            "max-parts": lambda: s3.list_parts(
                Bucket=bucket, Key="cap/mpu", UploadId=upload_id, MaxParts=-1
            ),
        }
        for name, call in refused.items():
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.response["Error"]["Code"] == "InvalidArgument"
            assert e.value.response["Error"]["Message"].startswith(f"{name} "), name
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="cap/mpu", UploadId=upload_id)


@pytest.fixture(scope="module")
def other(cluster: DevCluster, env: dict[str, str]) -> Iterator[Any]:
    """A boto3 client of a second user (role user), with a key of its own."""
    with cluster.client() as root:
        root.create_user("s3compat")
        key = root.create_access_key("s3compat")
    client = _client(env, access_key=key.access_key_id, secret=key.secret_access_key)
    yield client
    client.close()


def test_create_bucket_of_ones_own_is_bucket_already_owned_by_you(s3: Any, other: Any) -> None:
    s3.create_bucket(Bucket="owned-twice")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="owned-twice")
    assert e.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(ClientError) as e:
        other.create_bucket(Bucket="owned-twice")  # someone else's
    assert e.value.response["Error"]["Code"] == "BucketAlreadyExists"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_uploads_of_a_deleted_bucket_are_not_a_new_buckets(s3: Any, other: Any) -> None:
    """DeleteBucket with an upload in progress succeeds, as S3's; the upload is
    gone with the bucket: another user who creates a bucket of that name can
    neither list it nor read or complete its parts."""
    s3.create_bucket(Bucket="reused-name")
    u = s3.create_multipart_upload(Bucket="reused-name", Key="secret")["UploadId"]
    p = s3.upload_part(Bucket="reused-name", Key="secret", UploadId=u, PartNumber=1, Body=b"s")
    s3.create_multipart_upload(Bucket="reused-name", Key="hidden/secret")
    s3.delete_bucket(Bucket="reused-name")
    other.create_bucket(Bucket="reused-name")
    assert other.list_multipart_uploads(Bucket="reused-name").get("Uploads", []) == []
    rolled = other.list_multipart_uploads(Bucket="reused-name", Delimiter="/")
    assert rolled.get("CommonPrefixes", []) == [] and rolled.get("Uploads", []) == []
    for call, args in (
        (other.list_parts, {}),
        (
            other.complete_multipart_upload,
            {"MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]}},
        ),
    ):
        with pytest.raises(ClientError) as e:
            call(Bucket="reused-name", Key="secret", UploadId=u, **args)
        assert e.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        other.get_object(Bucket="reused-name", Key="secret")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"


def test_delete_objects_of_a_missing_bucket_is_no_such_bucket(s3: Any) -> None:
    """S3 answers 404 NoSuchBucket for the whole request, not one error a key."""
    with pytest.raises(ClientError) as e:
        s3.delete_objects(
            Bucket="no-such-bucket-here", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]}
        )
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_create_bucket_reads_its_configuration(s3: Any, env: dict[str, str]) -> None:
    """A body that is not a CreateBucketConfiguration is MalformedXML; a
    LocationConstraint other than the cluster's region is refused as S3's
    regional endpoints refuse it; none, or the cluster's own, is fine."""
    region = env["AWS_DEFAULT_REGION"]
    refused = {
        "eu-west-1": "IllegalLocationConstraintException",
        "mars-north-1": "InvalidLocationConstraint",
    }
    for constraint, code in refused.items():
        with pytest.raises(ClientError) as e:
            s3.create_bucket(
                Bucket="located", CreateBucketConfiguration={"LocationConstraint": constraint}
            )
        assert e.value.response["Error"]["Code"] == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    v4 = _client(env, config=Config(signature_version="s3v4"))
    url = v4.generate_presigned_url("create_bucket", Params={"Bucket": "located"})
    v4.close()
    with pytest.raises(urllib.error.HTTPError) as h:
        _fetch(env, url, "PUT", data=b"this is not XML")
    assert h.value.code == 400 and _error_of(h.value)["Code"] == "MalformedXML"
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="located")  # none of them made it
    s3.create_bucket(Bucket="located", CreateBucketConfiguration={"LocationConstraint": region})
    s3.create_bucket(Bucket="located-too")
    assert s3.get_bucket_location(Bucket="located")["LocationConstraint"] is None


def test_list_buckets_by_prefix_and_in_pages(s3: Any) -> None:
    """ListBuckets' Prefix, MaxBuckets and ContinuationToken (S3's since 2024)."""
    names = [f"lb-page-{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    whole = s3.list_buckets(Prefix="lb-page-")
    assert [b["Name"] for b in whole["Buckets"]] == names and whole["Prefix"] == "lb-page-"
    assert "ContinuationToken" not in whole
    assert {b["BucketRegion"] for b in whole["Buckets"]} == {s3.meta.region_name}
    assert s3.list_buckets(Prefix="lb-page-", BucketRegion="eu-west-1")["Buckets"] == []
    seen, kw = [], {}
    while True:
        page = s3.list_buckets(Prefix="lb-page-", MaxBuckets=2, **kw)
        assert len(page["Buckets"]) <= 2
        seen += [b["Name"] for b in page["Buckets"]]
        if "ContinuationToken" not in page:
            break
        kw = {"ContinuationToken": page["ContinuationToken"]}
    assert seen == names
    paged = [b["Name"] for p in s3.get_paginator("list_buckets").paginate(
        Prefix="lb-page-", PaginationConfig={"PageSize": 3}) for b in p["Buckets"]]  # fmt: skip
    assert paged == names
    for kw in ({"MaxBuckets": 10001}, {"ContinuationToken": "not-ours"}):
        with pytest.raises(ClientError) as e:
            s3.list_buckets(**kw)
        assert e.value.response["Error"]["Code"] == "InvalidArgument", kw


def test_every_owner_is_the_bucket_owner(s3: Any, other: Any) -> None:
    """ListBuckets, ListObjects, GetObjectAcl, ListObjectVersions (versions
    and delete markers) and ListMultipartUploads name one owner: the bucket's,
    who owns every object in it (S3's BucketOwnerEnforced), not the cluster."""
    for client, name in ((s3, "owners-root"), (other, "owners-other")):
        client.create_bucket(Bucket=name)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        client.put_object(Bucket=name, Key="k", Body=b"v")
        client.delete_object(Bucket=name, Key="k")  # a delete marker
        client.put_object(Bucket=name, Key="k2", Body=b"v")
        upload_id = client.create_multipart_upload(Bucket=name, Key="mpu")["UploadId"]
        try:
            me = client.list_buckets()["Owner"]
            listed = client.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"]
            versions = client.list_object_versions(Bucket=name)
            uploads = client.list_multipart_uploads(Bucket=name)["Uploads"]
            owners = [
                *(c["Owner"] for c in listed),
                client.get_object_acl(Bucket=name, Key="k2")["Owner"],
                *(v["Owner"] for v in versions["Versions"]),
                *(m["Owner"] for m in versions["DeleteMarkers"]),
                *(u["Owner"] for u in uploads),
                *(u["Initiator"] for u in uploads),
            ]
            assert len(owners) == 7 and all(o == me for o in owners), (me, owners)
        finally:
            client.abort_multipart_upload(Bucket=name, Key="mpu", UploadId=upload_id)
    assert s3.list_buckets()["Owner"] != other.list_buckets()["Owner"]


# --- S3 compatibility: objects and parts


def _refusal(e: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, dict[str, str]]:
    """(status, error code, headers) of a refused boto3 call."""
    r = e.value.response
    meta = r["ResponseMetadata"]
    return meta["HTTPStatusCode"], r["Error"]["Code"], meta["HTTPHeaders"]


def test_get_and_head_by_part_number(cluster: DevCluster, s3: Any, env: dict[str, str]) -> None:
    """GET and HEAD with ?partNumber=N: that part's bytes as a 206 with its
    Content-Range and the object's part count; part 1 of an object not
    uploaded in parts is the whole object; a part beyond the last is 416
    InvalidPartNumber; a part number with a Range, or outside 1..10000, 400."""
    b = "s3c-parts"
    s3.create_bucket(Bucket=b)
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 7), b"tail" * 10]
    u = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    done = [
        {"PartNumber": n, "ETag": s3.upload_part(
            Bucket=b, Key="mp", UploadId=u, PartNumber=n, Body=data)["ETag"]}
        for n, data in enumerate(parts, 1)
    ]  # fmt: skip
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=u, MultipartUpload={"Parts": done})
    total = sum(len(p) for p in parts)
    first = 0
    for n, data in enumerate(parts, 1):
        last = first + len(data) - 1
        got = s3.get_object(Bucket=b, Key="mp", PartNumber=n)
        head = s3.head_object(Bucket=b, Key="mp", PartNumber=n)
        for r in (got, head):
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
            assert r["ContentRange"] == f"bytes {first}-{last}/{total}"
            assert r["ContentLength"] == len(data)
            assert r["PartsCount"] == 3
            assert r["ETag"].endswith('-3"')
        assert got["Body"].read() == data
        first = last + 1
    with cluster.client() as c:  # the gRPC door names the parts' sizes
        assert c.head_object(b, "mp").part_sizes == tuple(len(p) for p in parts)
    # Without a part number: the whole object, and no part count (as S3).
    whole = s3.head_object(Bucket=b, Key="mp")
    assert whole["ContentLength"] == total and "PartsCount" not in whole
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as e:
            call(Bucket=b, Key="mp", PartNumber=4)
        status, code, _ = _refusal(e)
        assert status == 416 and code in ("InvalidPartNumber", "416")
        with pytest.raises(ClientError) as e:
            call(Bucket=b, Key="mp", PartNumber=1, Range="bytes=0-9")
        status, code, _ = _refusal(e)
        assert status == 400 and code in ("InvalidRequest", "400")
    # Not uploaded in parts: part 1 is the whole object, there is no part 2.
    s3.put_object(Bucket=b, Key="one", Body=b"0123456789")
    for call in (s3.get_object, s3.head_object):
        r = call(Bucket=b, Key="one", PartNumber=1)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert r["ContentRange"] == "bytes 0-9/10" and r["ContentLength"] == 10
        assert "PartsCount" not in r
        with pytest.raises(ClientError) as e:
            call(Bucket=b, Key="one", PartNumber=2)
        assert _refusal(e)[0] == 416
    assert s3.get_object(Bucket=b, Key="one", PartNumber=1)["Body"].read() == b"0123456789"
    # An empty object has no range to answer: 200, no Content-Range.
    s3.put_object(Bucket=b, Key="empty", Body=b"")
    r = s3.get_object(Bucket=b, Key="empty", PartNumber=1)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ContentRange" not in r
    assert r["Body"].read() == b""
    # Outside 1..10000 (by a presigned URL: plain HTTP, the answer's XML).
    for bad in (0, 10001):
        params = {"Bucket": b, "Key": "one", "PartNumber": bad}
        url = s3.generate_presigned_url("get_object", params, ExpiresIn=60)
        with pytest.raises(urllib.error.HTTPError) as h:
            _fetch(env, url)
        assert h.value.code == 400
        assert _error_of(h.value)["Code"] == "InvalidArgument"


def test_a_delete_marker_is_named_by_get_and_head(cluster: DevCluster, s3: Any) -> None:
    """GET and HEAD of a key whose current version is a delete marker: 404
    with x-amz-delete-marker and the marker's version id; of the marker by
    its id: 405 with the same and its Last-Modified. A key never written has
    neither. The gRPC door's errors carry the marker too."""
    b = "s3c-markers"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    listed = s3.list_object_versions(Bucket=b)["DeleteMarkers"][0]["LastModified"]
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as e:
            call(Bucket=b, Key="k")
        status, code, headers = _refusal(e)
        assert status == 404 and code in ("NoSuchKey", "404")
        assert headers["x-amz-delete-marker"] == "true"
        assert headers["x-amz-version-id"] == marker
        with pytest.raises(ClientError) as e:
            call(Bucket=b, Key="k", VersionId=marker)
        status, code, headers = _refusal(e)
        assert status == 405 and code in ("MethodNotAllowed", "405")
        assert headers["x-amz-delete-marker"] == "true"
        assert headers["x-amz-version-id"] == marker
        modified = email.utils.parsedate_to_datetime(headers["last-modified"])
        assert modified == listed.replace(microsecond=0)
        with pytest.raises(ClientError) as e:
            call(Bucket=b, Key="never")
        status, _, headers = _refusal(e)
        assert status == 404
        assert "x-amz-delete-marker" not in headers and "x-amz-version-id" not in headers
    with cluster.client() as c:
        with pytest.raises(errors.NoSuchKey) as g:
            c.head_object(b, "k")
        assert g.value.delete_marker is not None
        assert g.value.delete_marker.version_id == marker
        with pytest.raises(errors.MethodNotAllowed) as m:
            c.get_object(b, "k", version_id=marker)
        assert m.value.delete_marker == g.value.delete_marker
        with pytest.raises(errors.NoSuchKey) as g:
            c.head_object(b, "never")
        assert g.value.delete_marker is None


def test_upload_part_copy_refuses_a_range_past_the_source(s3: Any) -> None:
    """x-amz-copy-source-range reaching past the source's last byte is
    refused (400 InvalidArgument naming the source's size), not clamped."""
    b = "s3c-copyrange"
    s3.create_bucket(Bucket=b)
    size = 6 * MiB
    s3.put_object(Bucket=b, Key="src", Body=os.urandom(size))
    u = s3.create_multipart_upload(Bucket=b, Key="dst")["UploadId"]
    try:
        for rng in ("bytes=0-99999999", f"bytes={size}-{size + 10}", f"bytes=0-{size}"):
            with pytest.raises(ClientError) as e:
                s3.upload_part_copy(
                    Bucket=b, Key="dst", UploadId=u, PartNumber=1,
                    CopySource={"Bucket": b, "Key": "src"}, CopySourceRange=rng,
                )  # fmt: skip
            status, code, _ = _refusal(e)
            assert (status, code) == (400, "InvalidArgument"), rng
            message = e.value.response["Error"]["Message"]
            assert f"Range specified is not valid for source object of size: {size}" in message
        assert s3.list_parts(Bucket=b, Key="dst", UploadId=u).get("Parts", []) == []
        # The last byte itself is in range.
        r = s3.upload_part_copy(
            Bucket=b, Key="dst", UploadId=u, PartNumber=1,
            CopySource={"Bucket": b, "Key": "src"}, CopySourceRange=f"bytes=0-{size - 1}",
        )  # fmt: skip
        assert r["CopyPartResult"]["ETag"]
    finally:
        s3.abort_multipart_upload(Bucket=b, Key="dst", UploadId=u)


def test_duplicate_tag_keys_are_refused(s3: Any) -> None:
    """Two tags of one key, in a Tagging document or in x-amz-tagging: 400
    InvalidTag, and nothing is written."""
    b = "s3c-tags"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="tagged", Body=b"x", Tagging="k=v")
    twice = {"TagSet": [{"Key": "k", "Value": "v"}, {"Key": "k", "Value": "w"}]}
    calls = [
        lambda: s3.put_object_tagging(Bucket=b, Key="tagged", Tagging=twice),
        lambda: s3.put_object(Bucket=b, Key="new", Body=b"x", Tagging="k=v&k=w"),
        lambda: s3.create_multipart_upload(Bucket=b, Key="new", Tagging="k=v&k=w"),
        lambda: s3.copy_object(
            Bucket=b,
            Key="new",
            CopySource={"Bucket": b, "Key": "tagged"},
            TaggingDirective="REPLACE",
            Tagging="k=v&k=w",
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        status, code, _ = _refusal(e)
        assert (status, code) == (400, "InvalidTag")
        assert (
            "Cannot provide multiple Tags with the same key" in e.value.response["Error"]["Message"]
        )
    assert s3.get_object_tagging(Bucket=b, Key="tagged")["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]] == ["tagged"]
    assert s3.list_multipart_uploads(Bucket=b).get("Uploads", []) == []


def test_a_copy_from_a_delete_marker_is_an_invalid_request(cluster: DevCluster, s3: Any) -> None:
    """CopyObject and UploadPartCopy naming a delete marker by version id:
    400 InvalidRequest (S3's), not 405; a gRPC copy too."""
    b = "s3c-copymarker"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    source = {"Bucket": b, "Key": "k", "VersionId": marker}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=b, Key="copy", CopySource=source)
    assert _refusal(e)[:2] == (400, "InvalidRequest")
    u = s3.create_multipart_upload(Bucket=b, Key="copy")["UploadId"]
    try:
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket=b, Key="copy", UploadId=u, PartNumber=1, CopySource=source)
        assert _refusal(e)[:2] == (400, "InvalidRequest")
    finally:
        s3.abort_multipart_upload(Bucket=b, Key="copy", UploadId=u)
    with cluster.client() as c, pytest.raises(errors.InvalidRequest, match="delete marker"):
        c.copy_object(CopySource(b, "k", marker), b, "copy")


# -- bucket tagging, ACLs and the configurations tristore does not offer ------------


def test_bucket_tagging_is_stored_replaced_and_removed(s3: Any, other: Any) -> None:
    """Put/Get/DeleteBucketTagging as S3's: the whole set replaced by each
    put, NoSuchTagSet while there is none, S3's limits refused with InvalidTag
    (nothing changed), the owner's to read and change unless a policy says
    otherwise (s3:GetBucketTagging; deleting is s3:PutBucketTagging)."""
    b = "s3c-btags"
    s3.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=b)
    assert _refusal(e)[:2] == (404, "NoSuchTagSet")
    tags = [{"Key": "team", "Value": "blue"}, {"Key": "cost-center", "Value": ""}]
    put = s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tags})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.get_bucket_tagging(Bucket=b)["TagSet"]
    assert sorted(got, key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])
    fifty = [{"Key": f"k{i:02}", "Value": "v" * 256} for i in range(50)]
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": fifty})  # replaces, not adds
    assert sorted(t["Key"] for t in s3.get_bucket_tagging(Bucket=b)["TagSet"]) == [
        t["Key"] for t in fifty
    ]
    for bad in (
        [*fifty, {"Key": "k50", "Value": "v"}],
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "aws:reserved", "Value": "v"}],
        [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
    ):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": bad})
        assert _refusal(e)[:2] == (400, "InvalidTag"), bad[-1]["Key"][:8]
    assert len(s3.get_bucket_tagging(Bucket=b)["TagSet"]) == 50  # unchanged
    # Someone else's bucket: refused, until its policy opens reading the tags.
    for call in (
        lambda: other.get_bucket_tagging(Bucket=b),
        lambda: other.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tags}),
        lambda: other.delete_bucket_tagging(Bucket=b),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _refusal(e)[:2] == (403, "AccessDenied")
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["s3compat"]},
                "Action": "s3:GetBucketTagging",
                "Resource": f"arn:aws:s3:::{b}",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps(grant))
    assert len(other.get_bucket_tagging(Bucket=b)["TagSet"]) == 50
    with pytest.raises(ClientError) as e:
        other.delete_bucket_tagging(Bucket=b)  # s3:PutBucketTagging, not granted
    assert _refusal(e)[:2] == (403, "AccessDenied")
    s3.delete_bucket_policy(Bucket=b)

    deleted = s3.delete_bucket_tagging(Bucket=b)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=b)
    assert _refusal(e)[:2] == (404, "NoSuchTagSet")
    s3.delete_bucket_tagging(Bucket=b)  # none to delete: 204 still
    for call in (
        lambda: s3.get_bucket_tagging(Bucket="s3c-no-such-bucket"),
        lambda: s3.put_bucket_tagging(Bucket="s3c-no-such-bucket", Tagging={"TagSet": tags}),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _refusal(e)[:2] == (404, "NoSuchBucket")


def test_bucket_tags_through_one_door_then_the_other(cluster: DevCluster, s3: Any) -> None:
    b = "s3c-btags-grpc"
    s3.create_bucket(Bucket=b)
    with cluster.client() as c:
        with pytest.raises(errors.NoSuchTagSet):
            c.get_bucket_tagging(b)
        with pytest.raises(errors.InvalidTag, match="at most 50"):
            c.put_bucket_tagging(b, {f"k{i}": "v" for i in range(51)})
        assert c.put_bucket_tagging(b, {"team": "blue", "tier": ""}) == {
            "team": "blue",
            "tier": "",
        }
        assert s3.get_bucket_tagging(Bucket=b)["TagSet"] == [
            {"Key": "team", "Value": "blue"},
            {"Key": "tier", "Value": ""},
        ]
        s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "from", "Value": "http"}]})
        assert c.get_bucket_tagging(b) == {"from": "http"}
        # The bucket's tags are not its objects' (nor the other way round).
        s3.put_object(Bucket=b, Key="k", Body=b"x", Tagging="obj=1")
        assert c.get_bucket_tagging(b) == {"from": "http"}
        assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == [{"Key": "obj", "Value": "1"}]
        c.delete_bucket_tagging(b)
        with pytest.raises(ClientError) as e:
            s3.get_bucket_tagging(Bucket=b)
        assert _refusal(e)[:2] == (404, "NoSuchTagSet")
        assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == [{"Key": "obj", "Value": "1"}]


def test_get_object_attributes_answers_what_the_header_asks(
    s3: Any, other: Any, env: dict[str, str]
) -> None:
    """GetObjectAttributes, as boto3 and the aws CLI call it: the ETag
    (unquoted), the object's flexible checksum, the parts' count of a
    multipart upload, storage class and size, of the newest version or one
    by id; an unknown attribute is 400 InvalidArgument, a missing key 404
    NoSuchKey, another user without a grant 403 (was 501 for all)."""
    b = "s3c-attrs"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=b, Key="k", Body=b"first")
    s3.put_object(Bucket=b, Key="k", Body=b"second!", StorageClass="STANDARD_IA")
    every = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    got = s3.get_object_attributes(Bucket=b, Key="k", ObjectAttributes=every)
    head = s3.head_object(Bucket=b, Key="k", ChecksumMode="ENABLED")
    assert got["ETag"] == head["ETag"].strip('"')
    assert (got["ObjectSize"], got["StorageClass"]) == (7, "STANDARD_IA")
    # The checksum the SDK sent (CRC32 by default), as HEAD gives it.
    stored = {k: v for k, v in head.items() if k.startswith("Checksum")}
    assert got["Checksum"] == stored and "ChecksumType" in stored
    assert "ObjectParts" not in got  # one part
    assert got["VersionId"] == head["VersionId"] and got["LastModified"] == head["LastModified"]
    old = s3.get_object_attributes(
        Bucket=b, Key="k", VersionId=first["VersionId"], ObjectAttributes=["ObjectSize", "ETag"]
    )
    assert (old["ObjectSize"], old["ETag"], old["VersionId"]) == (
        5, first["ETag"].strip('"'), first["VersionId"],
    )  # fmt: skip
    assert "StorageClass" not in old and "Checksum" not in old
    up = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    parts = [
        {"PartNumber": n, "ETag": s3.upload_part(
            Bucket=b, Key="mp", UploadId=up, PartNumber=n, Body=os.urandom(size))["ETag"]}
        for n, size in ((1, 5 * MiB), (2, 5 * MiB), (3, 100))
    ]  # fmt: skip
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
    got = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=every)
    assert got["ObjectParts"]["TotalPartsCount"] == 3
    assert got["ETag"].endswith("-3") and got["ObjectSize"] == 10 * MiB + 100
    for kw, status, code in (
        ({"Key": "k", "ObjectAttributes": ["ETag", "Bogus"]}, 400, "InvalidArgument"),
        ({"Key": "missing", "ObjectAttributes": ["ETag"]}, 404, "NoSuchKey"),
    ):
        with pytest.raises(ClientError) as e:
            s3.get_object_attributes(Bucket=b, **kw)
        assert _refusal(e)[:2] == (status, code), kw
    with pytest.raises(ClientError) as e:
        other.get_object_attributes(Bucket=b, Key="k", ObjectAttributes=["ETag"])
    assert _refusal(e)[:2] == (403, "AccessDenied")


def test_an_object_acl_is_taken_as_the_policy_a_canned_acl_makes(
    s3: Any, env: dict[str, str]
) -> None:
    """PutObjectAcl with an AccessControlPolicy body (what a tool writes back
    after adding a grant to what GetObjectAcl gave: s3cmd setacl
    --acl-public, boto3's AccessControlPolicy) is taken when its grants are
    those of a canned ACL, in any order; any other grant set, a grant header,
    or a header and a body at once are refused, the ACL unchanged (was 501
    for every body)."""
    b = "s3c-oacl"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"shared")
    url = f"{env['AWS_ENDPOINT_URL']}/{b}/k"
    got = s3.get_object_acl(Bucket=b, Key="k")
    everyone = {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}
    public = {
        "Owner": got["Owner"],
        "Grants": [{"Grantee": everyone, "Permission": "READ"}, *got["Grants"]],
    }
    s3.put_object_acl(Bucket=b, Key="k", AccessControlPolicy=public)
    assert _fetch(env, url) == b"shared"  # anonymous: public-read
    made = s3.get_object_acl(Bucket=b, Key="k")["Grants"]
    assert sorted(map(str, made)) == sorted(map(str, public["Grants"]))
    s3.put_object_acl(
        Bucket=b, Key="k", AccessControlPolicy={"Owner": got["Owner"], "Grants": made}
    )
    stranger = {"Grantee": {"Type": "CanonicalUser", "ID": "someone-else"}, "Permission": "READ"}
    no_owner = [{"Grantee": everyone, "Permission": "READ"}]
    refused: list[tuple[dict[str, Any], int, str, str]] = [
        ({"AccessControlPolicy": {**public, "Grants": [*made, stranger]}},
         501, "NotImplemented", "READ to CanonicalUser 'someone-else'"),
        ({"AccessControlPolicy": {**public, "Grants": no_owner}},
         501, "NotImplemented", "READ to Group"),
        ({"GrantRead": f"uri={everyone['URI']}"}, 501, "NotImplemented", "x-amz-grant-read"),
        ({"ACL": "private", "AccessControlPolicy": public}, 400, "InvalidRequest", "not both"),
    ]  # fmt: skip
    for kw, status, code, says in refused:
        with pytest.raises(ClientError) as e:
            s3.put_object_acl(Bucket=b, Key="k", **kw)
        assert _refusal(e)[:2] == (status, code), kw
        assert says in e.value.response["Error"]["Message"], kw
    assert _fetch(env, url) == b"shared"  # still public-read
    private = {"Owner": got["Owner"], "Grants": got["Grants"]}
    s3.put_object_acl(Bucket=b, Key="k", AccessControlPolicy=private)
    with pytest.raises(urllib.error.HTTPError) as he:
        _fetch(env, url)
    assert he.value.code == 403
    assert s3.get_object_acl(Bucket=b, Key="k")["Grants"] == got["Grants"]


def test_a_bucket_acl_is_its_owners_full_control(s3: Any, other: Any) -> None:
    """GetBucketAcl answers the owner's FULL_CONTROL (as GetObjectAcl of a
    private object); PutBucketAcl of that same ACL (canned ``private``, or the
    policy GetBucketAcl gave) succeeds and changes nothing; any other is 501
    NotImplemented naming it, as CreateBucket answers a non-private ACL."""
    b = "s3c-bacl"
    s3.create_bucket(Bucket=b)
    got = s3.get_bucket_acl(Bucket=b)
    owner = got["Owner"]["ID"]
    assert owner == "root" and got["Owner"]["DisplayName"] == "root"
    assert got["Grants"] == [
        {
            "Grantee": {"ID": owner, "DisplayName": owner, "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        }
    ]
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    assert s3.get_object_acl(Bucket=b, Key="k")["Grants"] == got["Grants"]
    assert s3.put_bucket_acl(Bucket=b, ACL="private")["ResponseMetadata"]["HTTPStatusCode"] == 200
    policy = {"Owner": got["Owner"], "Grants": got["Grants"]}
    s3.put_bucket_acl(Bucket=b, AccessControlPolicy=policy)  # as a tool writes back what it read
    everyone = {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}
    refused: list[tuple[dict[str, Any], str]] = [
        ({"ACL": "public-read"}, "x-amz-acl: public-read"),
        ({"ACL": "authenticated-read"}, "x-amz-acl: authenticated-read"),
        ({"GrantRead": f"uri={everyone['URI']}"}, "x-amz-grant-read"),
        (
            {
                "AccessControlPolicy": {
                    "Owner": got["Owner"],
                    "Grants": [*got["Grants"], {"Grantee": everyone, "Permission": "READ"}],
                }
            },
            "READ to Group",
        ),
    ]
    for kw, says in refused:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_acl(Bucket=b, **kw)
        assert _refusal(e)[:2] == (501, "NotImplemented"), kw
        assert says in e.value.response["Error"]["Message"]
    for kw, _ in refused[:3]:  # CreateBucket answers the same
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket="s3c-bacl-new", **kw)
        assert _refusal(e)[:2] == (501, "NotImplemented"), kw
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="s3c-bacl-new")  # none of them made it
    assert s3.get_bucket_acl(Bucket=b)["Grants"] == got["Grants"]  # unchanged
    # Someone else's bucket: refused before anything else (s3:GetBucketAcl,
    # s3:PutBucketAcl); a bucket that does not exist: NoSuchBucket.
    for call in (
        lambda: other.get_bucket_acl(Bucket=b),
        lambda: other.put_bucket_acl(Bucket=b, ACL="private"),
        lambda: other.put_bucket_acl(Bucket=b, ACL="public-read"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _refusal(e)[:2] == (403, "AccessDenied")
    for call in (
        lambda: s3.get_bucket_acl(Bucket="s3c-no-such-bucket"),
        lambda: s3.put_bucket_acl(Bucket="s3c-no-such-bucket", ACL="private"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _refusal(e)[:2] == (404, "NoSuchBucket")


def test_configurations_not_offered_read_as_none(s3: Any, other: Any) -> None:
    """What tristore does not offer reads as S3 answers a bucket without it
    (a tool asking "is there one?" learns "no"), after the NoSuchBucket and
    authorization checks; deleting lifecycle or website has nothing to
    delete (204); setting any is 501 NotImplemented naming it."""
    b = "s3c-noconf"
    s3.create_bucket(Bucket=b)
    missing = {
        "get_bucket_lifecycle_configuration": "NoSuchLifecycleConfiguration",
        "get_bucket_lifecycle": "NoSuchLifecycleConfiguration",  # the older call, same query
        "get_bucket_website": "NoSuchWebsiteConfiguration",
        "get_object_lock_configuration": "ObjectLockConfigurationNotFoundError",
        "get_public_access_block": "NoSuchPublicAccessBlockConfiguration",
        "get_bucket_ownership_controls": "OwnershipControlsNotFoundError",
    }
    for name, code in missing.items():
        with pytest.raises(ClientError) as e:
            getattr(s3, name)(Bucket=b)
        assert _refusal(e)[:2] == (404, code), name
    logging = s3.get_bucket_logging(Bucket=b)
    assert "LoggingEnabled" not in logging
    notes = s3.get_bucket_notification_configuration(Bucket=b)
    assert not {"TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations",
                "EventBridgeConfiguration"} & set(notes)  # fmt: skip
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=b)
    assert s3.get_bucket_request_payment(Bucket=b)["Payer"] == "BucketOwner"
    for name in ("delete_bucket_lifecycle", "delete_bucket_website"):
        r = getattr(s3, name)(Bucket=b)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204, name

    readers = [*missing, "get_bucket_logging", "get_bucket_notification_configuration",
               "get_bucket_accelerate_configuration", "get_bucket_request_payment",
               "delete_bucket_lifecycle", "delete_bucket_website"]  # fmt: skip
    for name in readers:
        with pytest.raises(ClientError) as e:
            getattr(s3, name)(Bucket="s3c-no-such-bucket")
        assert _refusal(e)[:2] == (404, "NoSuchBucket"), name
        with pytest.raises(ClientError) as e:
            getattr(other, name)(Bucket=b)  # someone else's bucket
        assert _refusal(e)[:2] == (403, "AccessDenied"), name

    setters: list[tuple[str, dict[str, Any], str]] = [
        ("put_bucket_website", {"WebsiteConfiguration": {"IndexDocument": {"Suffix": "i"}}},
         "static website hosting"),
        ("put_bucket_logging", {"BucketLoggingStatus": {}}, "server access logging"),
        ("put_bucket_notification_configuration", {"NotificationConfiguration": {}},
         "S3 event notification"),
        ("put_object_lock_configuration",
         {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}}, "Object Lock"),
        ("put_public_access_block",
         {"PublicAccessBlockConfiguration": {"BlockPublicAcls": True}}, "public access block"),
        ("put_bucket_ownership_controls",
         {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
         "object ownership"),
        ("put_bucket_accelerate_configuration",
         {"AccelerateConfiguration": {"Status": "Enabled"}}, "transfer acceleration"),
        ("put_bucket_request_payment",
         {"RequestPaymentConfiguration": {"Payer": "Requester"}}, "Requester Pays"),
    ]  # fmt: skip
    for name, kw, says in setters:
        with pytest.raises(ClientError) as e:
            getattr(s3, name)(Bucket=b, **kw)
        assert _refusal(e)[:2] == (501, "NotImplemented"), name
        assert f"tristore does not offer {says}" in e.value.response["Error"]["Message"], name
    assert s3.get_bucket_request_payment(Bucket=b)["Payer"] == "BucketOwner"  # unchanged


def test_a_request_for_another_owners_bucket_is_refused(other: Any) -> None:
    """x-amz-expected-bucket-owner (boto3's ExpectedBucketOwner) and a copy's
    x-amz-source-expected-bucket-owner: a request that expects another owner
    is 403 AccessDenied and changes nothing, as S3's; the right owner passes;
    a bucket that does not exist is still NoSuchBucket."""
    other.create_bucket(Bucket="owner-expected")
    other.put_object(Bucket="owner-expected", Key="k", Body=b"x", ExpectedBucketOwner="s3compat")
    refused = {
        "put": lambda: other.put_object(
            Bucket="owner-expected", Key="k2", Body=b"y", ExpectedBucketOwner="someone"
        ),
        "head-bucket": lambda: other.head_bucket(
            Bucket="owner-expected", ExpectedBucketOwner="someone"
        ),
        "get": lambda: other.get_object(
            Bucket="owner-expected", Key="k", ExpectedBucketOwner="someone"
        ),
        "copy-source": lambda: other.copy_object(
            Bucket="owner-expected",
            Key="k3",
            CopySource={"Bucket": "owner-expected", "Key": "k"},
            ExpectedSourceBucketOwner="someone",
        ),
    }
    for name, call in refused.items():
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, name
    listed = other.list_objects_v2(Bucket="owner-expected", ExpectedBucketOwner="s3compat")
    assert [o["Key"] for o in listed["Contents"]] == ["k"]
    other.copy_object(
        Bucket="owner-expected",
        Key="k3",
        CopySource={"Bucket": "owner-expected", "Key": "k"},
        ExpectedSourceBucketOwner="s3compat",
    )
    with pytest.raises(ClientError) as e:
        other.head_object(Bucket="no-such-owned", Key="k", ExpectedBucketOwner="s3compat")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# -- POST Object: browser form uploads --------------------------------------------


def _post_form(
    env: dict[str, str],
    url: str,
    fields: dict[str, str],
    file: bytes,
    filename: str = "notes.txt",
    host: str = "",
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers by lower-case name, body) of a form POSTed as a
    browser posts it (multipart/form-data, its file last), over plain HTTPS,
    redirects not followed."""
    body, content_type = urllib3.encode_multipart_formdata(
        [*fields.items(), ("file", (filename, file, "text/plain"))]
    )
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection("127.0.0.1", parts.port, context=_ssl(env), timeout=30)
    headers = {"Content-Type": content_type, **({"Host": host} if host else {})}
    try:
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _form_error(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, str, str]:
    """(status, Code, Message) of an error answer."""
    status, _, body = answer
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    return status, root.findtext("Code") or "", root.findtext("Message") or ""


@pytest.fixture(scope="module")
def s3v4(env: dict[str, str]) -> Iterator[Any]:
    """A client that signs presigned URLs and POST policies with Signature V4
    (boto3 signs them with V2 unless told)."""
    client = _client(env, config=Config(signature_version="s3v4"))
    yield client
    client.close()


def test_a_form_from_the_sdks_presign_post_uploads_an_object(
    s3: Any, cluster: DevCluster, env: dict[str, str]
) -> None:
    """Client.presign_post, signed on the client with no call to the
    cluster, POSTed as a page would: stored with its fields; a file outside
    its content-length-range is refused and nothing stored."""
    s3.create_bucket(Bucket="sdk-forms")
    with cluster.client() as c:
        made = c.presign_post(
            "sdk-forms",
            "in/${filename}",
            fields={"Content-Type": "text/csv", "x-amz-meta-from": "sdk"},
            conditions=[["content-length-range", 1, 1000]],
            expires_in=120,
            endpoint_url=env["AWS_ENDPOINT_URL"],
        )
    status, _, body = _post_form(env, made.url, made.fields, b"a,b\n1,2\n", "t.csv")
    assert (status, body) == (204, b""), body
    got = s3.get_object(Bucket="sdk-forms", Key="in/t.csv")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
        b"a,b\n1,2\n", "text/csv", {"from": "sdk"},
    )  # fmt: skip
    status, _, body = _post_form(env, made.url, made.fields, b"x" * 1001, "big.csv")
    assert _form_error((status, {}, body))[:2] == (400, "EntityTooLarge"), body
    assert "Contents" not in s3.list_objects_v2(Bucket="sdk-forms", Prefix="in/big")


def test_a_form_signed_by_boto3s_presigned_post_uploads_an_object(
    s3: Any, s3v4: Any, env: dict[str, str]
) -> None:
    """boto3's generate_presigned_post, POSTed as a page would: the key's
    ${filename} filled in, the form's Content-Type, Cache-Control and
    x-amz-meta-* stored, streamed through PutObject (three chunks' worth),
    in a bucket with versioning and default encryption: 204 by default."""
    s3.create_bucket(Bucket="forms")
    s3.put_bucket_versioning(Bucket="forms", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket="forms",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    fields = {"Content-Type": "text/plain", "Cache-Control": "no-cache", "x-amz-meta-who": "ann"}
    made = s3v4.generate_presigned_post(
        "forms",
        "up/${filename}",
        Fields=fields,
        Conditions=[{k: v} for k, v in fields.items()],
        ExpiresIn=300,
    )
    assert made["url"] == f"{env['AWS_ENDPOINT_URL']}/forms"
    data = os.urandom(3 * MiB + 5)
    status, headers, body = _post_form(env, made["url"], made["fields"], data, "notes.txt")
    assert (status, body) == (204, b""), body
    etag = f'"{hashlib.md5(data).hexdigest()}"'
    assert headers["etag"] == etag
    assert headers["location"] == f"{env['AWS_ENDPOINT_URL']}/forms/up/notes.txt"
    assert headers["x-amz-server-side-encryption"] == "AES256"
    got = s3.get_object(Bucket="forms", Key="up/notes.txt", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ETag"] == etag
    assert got["ContentType"] == "text/plain"
    assert got["CacheControl"] == "no-cache"
    assert got["Metadata"] == {"who": "ann"}
    assert got["ServerSideEncryption"] == "AES256"
    assert got["VersionId"] == headers["x-amz-version-id"] != "null"
    assert got["ChecksumCRC64NVME"] == headers["x-amz-checksum-crc64nvme"]  # S3's default


def test_a_form_upload_answers_201_200_or_a_redirect_as_asked(
    s3: Any, s3v4: Any, env: dict[str, str], bucket: str
) -> None:
    """success_action_status 201: S3's PostResponse document; 200: empty;
    success_action_redirect: 303 to it with the bucket, key and ETag."""
    etag = f'"{hashlib.md5(b"answered").hexdigest()}"'
    for status in ("201", "200"):
        made = s3v4.generate_presigned_post(
            bucket,
            f"answered-{status}",
            Fields={"success_action_status": status},
            Conditions=[{"success_action_status": status}],
        )
        got, headers, body = _post_form(env, made["url"], made["fields"], b"answered")
        assert got == int(status), body
        assert headers["etag"] == etag
        if status == "201":
            root = ET.fromstring(body)
            assert root.tag == "PostResponse"
            assert {el.tag: el.text for el in root} == {
                "Location": f"{env['AWS_ENDPOINT_URL']}/{bucket}/answered-201",
                "Bucket": bucket,
                "Key": "answered-201",
                "ETag": etag,
            }
        else:
            assert body == b""
    page = "https://app.example.com/done?from=form"
    made = s3v4.generate_presigned_post(
        bucket,
        "redirected/a b",
        Fields={"success_action_redirect": page},
        Conditions=[{"success_action_redirect": page}],
    )
    got, headers, body = _post_form(env, made["url"], made["fields"], b"answered")
    assert got == 303, body
    to = urlsplit(headers["location"])
    assert f"{to.scheme}://{to.netloc}{to.path}" == "https://app.example.com/done"
    assert parse_qs(to.query) == {
        "from": ["form"],
        "bucket": [bucket],
        "key": ["redirected/a b"],
        "etag": [etag],
    }
    assert s3.get_object(Bucket=bucket, Key="redirected/a b")["Body"].read() == b"answered"


def test_a_form_the_policy_refuses_stores_nothing(
    s3: Any, s3v4: Any, env: dict[str, str], bucket: str
) -> None:
    """An expired policy, a field no condition names, a condition the form
    fails, a file outside the content-length-range, a wrong signature: S3's
    statuses, codes and words, and no object."""
    made = s3v4.generate_presigned_post(
        bucket,
        "refused/${filename}",
        Fields={"Content-Type": "text/plain"},
        Conditions=[{"Content-Type": "text/plain"}, ["content-length-range", 1, MiB]],
        ExpiresIn=300,
    )
    url, fields = made["url"], made["fields"]
    expired = s3v4.generate_presigned_post(bucket, "refused/expired", ExpiresIn=-60)
    cases = {
        "expired": (
            expired["fields"], b"x", "expired",
            (403, "AccessDenied", "Invalid according to Policy: Policy expired."),
        ),
        "extra": (
            {**fields, "x-amz-meta-extra": "1"}, b"x", "extra",
            (403, "AccessDenied", "Invalid according to Policy: Extra input fields: "
             "x-amz-meta-extra"),
        ),
        "starts-with": (
            {**fields, "key": "elsewhere/${filename}"}, b"x", "starts-with",
            (403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: "
             '["starts-with", "$key", "refused/"]'),
        ),
        "too large": (fields, b"x" * (MiB + 1), "too-large", (400, "EntityTooLarge", None)),
        "too small": (fields, b"", "too-small", (400, "EntityTooSmall", None)),
        "signature": (
            {**fields, "x-amz-signature": "0" * 64}, b"x", "signature",
            (403, "SignatureDoesNotMatch", None),
        ),
        "policy changed": (
            {**fields, "policy": expired["fields"]["policy"]}, b"x", "policy-changed",
            (403, "SignatureDoesNotMatch", None),
        ),
    }  # fmt: skip
    for name, (form, data, filename, (status, code, message)) in cases.items():
        answer = _form_error(_post_form(env, url, form, data, filename))
        assert answer[:2] == (status, code), (name, answer)
        if message is not None:
            assert answer[2] == message, (name, answer)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="refused/")
    assert listed["KeyCount"] == 0, listed.get("Contents")
    for key in ("refused/expired", "elsewhere/starts-with"):
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, Key=key)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # The same form within its limits goes in.
    status, _, body = _post_form(env, url, fields, b"x" * MiB, "fits")
    assert status == 204, body
    assert s3.head_object(Bucket=bucket, Key="refused/fits")["ContentLength"] == MiB


def _post_raw(
    env: dict[str, str], path: str, body: bytes, content_type: str
) -> tuple[int, dict[str, str], bytes]:
    """(status, no headers, body) of the answer to a POST of ``body`` as ``content_type``."""
    port = urlsplit(env["AWS_ENDPOINT_URL"]).port
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_ssl(env), timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, {}, resp.read()
    finally:
        conn.close()


def test_forms_s3_cannot_take_are_refused_naming_why(
    s3: Any, s3v4: Any, other: Any, env: dict[str, str], bucket: str
) -> None:
    """No key, no file, a signature without its policy, a form with the
    fields of both Signature V4 and V2, a form that is not multipart, a
    signer the bucket is not open to (a user whose own form, rightly signed,
    is AccessDenied as their PUT would be), and an unsigned form: S3's
    answers, and no object."""
    made = s3v4.generate_presigned_post(bucket, "odd/form")
    fields = made["fields"]
    v2 = s3.generate_presigned_post(bucket, "odd/form")
    assert "AWSAccessKeyId" in v2["fields"]
    creds = other._get_credentials()
    theirs_v4 = _client(
        env,
        access_key=creds.access_key,
        secret=creds.secret_key,
        config=Config(signature_version="s3v4"),
    )
    theirs = theirs_v4.generate_presigned_post(bucket, "odd/form")
    theirs_v4.close()
    no_policy = {k: v for k, v in fields.items() if k != "policy"}
    for form, (status, code, says) in (
        ({k: v for k, v in fields.items() if k != "key"},
         (400, "InvalidArgument", "Bucket POST must contain a field named 'key'.")),
        (no_policy, (400, "InvalidArgument", "must contain a field named 'policy'")),
        ({**fields, "AWSAccessKeyId": v2["fields"]["AWSAccessKeyId"],
          "signature": v2["fields"]["signature"]},
         (400, "InvalidArgument", "Only one auth mechanism allowed")),
        (theirs["fields"], (403, "AccessDenied", "user s3compat is not authorized")),
        ({"key": "odd/form"}, (403, "AccessDenied", "anonymous is not authorized")),
    ):  # fmt: skip
        answer = _form_error(_post_form(env, made["url"], form, b"x"))
        assert answer[:2] == (status, code), (form, answer)
        assert says in answer[2], (form, answer)
    body, content_type = urllib3.encode_multipart_formdata(list(fields.items()))
    assert _form_error(_post_raw(env, f"/{bucket}", body, content_type)) == (
        400,
        "IncorrectNumberOfFilesInPostRequest",
        "POST requires exactly one file upload per request.",
    )
    urlencoded = urlencode({**fields, "file": "x"}).encode()
    status, code, says = _form_error(
        _post_raw(env, f"/{bucket}", urlencoded, "application/x-www-form-urlencoded")
    )
    assert (status, code) == (412, "PreconditionFailed")
    assert "multipart/form-data" in says
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="odd/form")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_form_signed_with_v2_by_a_default_boto3_client_uploads_an_object(
    s3: Any, env: dict[str, str], bucket: str
) -> None:
    """The form a boto3 client makes when not told s3v4 (Signature V2:
    AWSAccessKeyId, policy, signature), POSTed as a page would: stored as a
    V4 form's upload is, readable after."""
    fields = {"Content-Type": "text/plain", "x-amz-meta-who": "ann"}
    made = s3.generate_presigned_post(
        bucket,
        "v2form/${filename}",
        Fields={**fields, "success_action_status": "201"},
        Conditions=[*({k: v} for k, v in fields.items()), {"success_action_status": "201"}],
        ExpiresIn=300,
    )
    assert {"AWSAccessKeyId", "policy", "signature"} <= set(made["fields"])
    assert "x-amz-signature" not in made["fields"]
    status, headers, body = _post_form(env, made["url"], made["fields"], b"by a V2 form", "a.txt")
    assert status == 201, body
    etag = f'"{hashlib.md5(b"by a V2 form").hexdigest()}"'
    assert headers["etag"] == etag
    assert ET.fromstring(body).findtext("Key") == "v2form/a.txt"
    got = s3.get_object(Bucket=bucket, Key="v2form/a.txt")
    assert got["Body"].read() == b"by a V2 form"
    assert got["ETag"] == etag
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"who": "ann"}


def test_a_v2_form_is_refused_as_s3_refuses_it(
    s3: Any, other: Any, env: dict[str, str], bucket: str
) -> None:
    """A Signature V2 form with a wrong signature, an unknown access key, no
    signature, a condition it fails, a field no condition names, an expired
    policy, or a signer the bucket is not open to: S3's answers, as for a V4
    form, and no object."""
    made = s3.generate_presigned_post(
        bucket,
        "v2refused/${filename}",
        Fields={"Content-Type": "text/plain"},
        Conditions=[{"Content-Type": "text/plain"}],
        ExpiresIn=300,
    )
    url, fields = made["url"], made["fields"]
    expired = s3.generate_presigned_post(bucket, "v2refused/expired", ExpiresIn=-60)
    theirs = other.generate_presigned_post(bucket, "v2refused/theirs")
    cases = {
        "signature": (
            {**fields, "signature": "c2lnbmF0dXJlIG9mIG5vdGhpbmc="}, "signature",
            (403, "SignatureDoesNotMatch", "The request signature we calculated"),
        ),
        "policy changed": (
            {**fields, "policy": expired["fields"]["policy"]}, "policy-changed",
            (403, "SignatureDoesNotMatch", "The request signature we calculated"),
        ),
        "access key": (
            {**fields, "AWSAccessKeyId": "AKIANOSUCHKEY0000000"}, "access-key",
            (403, "InvalidAccessKeyId", "AKIANOSUCHKEY0000000"),
        ),
        "no signature": (
            {k: v for k, v in fields.items() if k != "signature"}, "no-signature",
            (400, "InvalidArgument", "must contain a field named 'signature'"),
        ),
        "condition": (
            {**fields, "Content-Type": "text/html"}, "condition",
            (403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: "
             '["eq", "$Content-Type", "text/plain"]'),
        ),
        "starts-with": (
            {**fields, "key": "elsewhere/${filename}"}, "starts-with",
            (403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: "
             '["starts-with", "$key", "v2refused/"]'),
        ),
        "extra": (
            {**fields, "x-amz-meta-extra": "1"}, "extra",
            (403, "AccessDenied", "Invalid according to Policy: Extra input fields: "
             "x-amz-meta-extra"),
        ),
        "expired": (
            expired["fields"], "expired",
            (403, "AccessDenied", "Invalid according to Policy: Policy expired."),
        ),
        "another user": (
            theirs["fields"], "theirs",
            (403, "AccessDenied", "user s3compat is not authorized"),
        ),
    }  # fmt: skip
    for name, (form, filename, (status, code, says)) in cases.items():
        answer = _form_error(_post_form(env, url, form, b"x", filename))
        assert answer[:2] == (status, code), (name, answer)
        assert says in answer[2], (name, answer)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="v2refused/")
    assert listed["KeyCount"] == 0, listed.get("Contents")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="elsewhere/starts-with")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_form_upload_by_virtual_host(s3: Any, s3v4: Any, env: dict[str, str]) -> None:
    """``POST /`` to ``BUCKET.<s3_domain>``: the same upload (the name need not
    resolve: sent to the node's address)."""
    made = s3v4.generate_presigned_post("forms-vhost", "by/${filename}")
    s3.create_bucket(Bucket="forms-vhost")
    port = urlsplit(env["AWS_ENDPOINT_URL"]).port
    host = f"forms-vhost.{VHOST_DOMAIN}:{port}"
    status, headers, body = _post_form(
        env, f"https://{host}/", made["fields"], b"by host name", "v.txt", host=host
    )
    assert status == 204, body
    assert headers["location"] == f"https://{host}/by/v.txt"
    assert s3.get_object(Bucket="forms-vhost", Key="by/v.txt")["Body"].read() == b"by host name"


def test_a_form_cut_short_stores_nothing(
    cluster: DevCluster, s3v4: Any, s3: Any, env: dict[str, str], bucket: str
) -> None:
    """A form whose file is cut off (the closing boundary never comes, the
    client hangs up): the PUT its file fed stores nothing."""
    made = s3v4.generate_presigned_post(bucket, "cut-form")
    body, content_type = urllib3.encode_multipart_formdata(
        [*made["fields"].items(), ("file", ("f", b"y" * MiB, "text/plain"))]
    )
    url = made["url"]
    node = next(n.name for n in cluster.config.nodes if n.s3 == urlsplit(url).netloc)
    answered = _put_answers(cluster, node, "PostObject")
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    with _ssl(env).wrap_socket(raw, server_hostname=parts.hostname) as conn:
        conn.sendall(head + body[: len(body) // 2])
    wait_until(
        lambda: _put_answers(cluster, node, "PostObject") > answered,
        30,
        what="the POST to end on the node",
    )
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="cut-form")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_if_match_compares_etags_strongly(s3: Any, bucket: str) -> None:
    """If-Match takes only a strong match (RFC 9110): a weak ETag of the
    object's own value fails it, on a GET and on a conditional PUT; If-None-Match
    compares weakly, so there it matches."""
    etag = s3.put_object(Bucket=bucket, Key="weak", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="weak", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="weak", IfMatch=f"W/{etag}")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="weak", Body=b"v2", IfMatch=f"W/{etag}")
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="weak", IfNoneMatch=f"W/{etag}")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert s3.get_object(Bucket=bucket, Key="weak")["Body"].read() == b"v1"


def test_multipart_listings_as_s3_answers_them(s3: Any, bucket: str) -> None:
    """ListParts names the upload's storage class; ListMultipartUploads
    ignores an upload-id-marker given without a key-marker (S3 does)."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mpu-ia", StorageClass="STANDARD_IA")[
        "UploadId"
    ]
    try:
        assert s3.list_parts(Bucket=bucket, Key="mpu-ia", UploadId=uid)["StorageClass"] == (
            "STANDARD_IA"
        )
        page = s3.list_multipart_uploads(Bucket=bucket, Prefix="mpu-ia", UploadIdMarker=uid)
        assert [u["UploadId"] for u in page["Uploads"]] == [uid]
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="mpu-ia", UploadId=uid)


def test_checksum_headers_that_cannot_be_right_are_invalid(
    s3: Any, env: dict[str, str], bucket: str
) -> None:
    """A checksum value that is no checksum of its algorithm, and an
    x-amz-sdk-checksum-algorithm naming another algorithm than the checksum
    sent, are InvalidRequest (S3), not a BadDigest; nothing is stored."""
    url = f"{env['AWS_ENDPOINT_URL']}/{bucket}/sum-invalid"
    body = b"checked"
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    for headers in (
        {"x-amz-checksum-crc32": "garbage"},
        {"x-amz-checksum-crc32": base64.b64encode(b"\0" * 8).decode()},  # 8 bytes, not 4
        {"x-amz-checksum-crc32": crc, "x-amz-sdk-checksum-algorithm": "SHA256"},
    ):
        status, err = _signed_put(env, url, body, headers)
        assert (status, err.get("Code")) == (400, "InvalidRequest"), (headers, status, err)
    assert _signed_put(env, url, body, {"x-amz-checksum-crc32": crc})[0] == 200
    assert (
        _signed_put(
            env, url, body, {"x-amz-checksum-crc32": crc, "x-amz-sdk-checksum-algorithm": "crc32"}
        )[0]
        == 200
    )


def test_an_empty_version_id_in_a_copy_source_is_refused(
    s3: Any, env: dict[str, str], bucket: str
) -> None:
    """As on a request's own versionId: taken for none, the copy would read
    the current version instead of the one meant."""
    s3.put_object(Bucket=bucket, Key="empty-vid-src", Body=b"src")
    url = f"{env['AWS_ENDPOINT_URL']}/{bucket}/empty-vid-dst"
    status, err = _signed_put(
        env, url, b"", {"x-amz-copy-source": f"/{bucket}/empty-vid-src?versionId="}
    )
    assert (status, err.get("Code")) == (400, "InvalidArgument"), err
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="empty-vid-dst")


def _delete_objects_with(s3: Any, bucket: str, headers: Callable[[bytes], dict[str, str]]) -> Any:
    """DeleteObjects of key ``a``, its integrity headers replaced by
    ``headers(body)`` before the request is signed."""

    def swap(request: Any, **_: Any) -> None:
        for name in list(request.headers):
            low = name.lower()
            if low.startswith("x-amz-checksum-") or low in (
                "content-md5",
                "x-amz-sdk-checksum-algorithm",
            ):
                del request.headers[name]
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        for name, value in headers(body).items():
            request.headers[name] = value

    event = "before-sign.s3.DeleteObjects"
    s3.meta.events.register(event, swap)
    try:
        return s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
    finally:
        s3.meta.events.unregister(event, swap)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_delete_objects_needs_and_checks_an_integrity_header(s3: Any, bucket: str) -> None:
    """S3 refuses a DeleteObjects without Content-MD5 or a flexible checksum
    (a damaged list of keys would delete the wrong ones), and one whose
    checksum is not its body's: nothing is deleted then. Either header,
    right, is enough."""
    s3.put_object(Bucket=bucket, Key="a", Body=b"kept")
    wrong: list[Callable[[bytes], dict[str, str]]] = [
        lambda body: {},
        lambda body: {"x-amz-checksum-crc32": checksums.digest_of("crc32", body + b" ")},
        lambda body: {"Content-MD5": _md5_b64(body + b" ")},
    ]
    for headers, code in zip(wrong, ("InvalidRequest", "BadDigest", "BadDigest"), strict=True):
        with pytest.raises(ClientError) as e:
            _delete_objects_with(s3, bucket, headers)
        assert e.value.response["Error"]["Code"] == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"kept"
    for right in (
        lambda body: {"x-amz-checksum-crc32": checksums.digest_of("crc32", body)},
        lambda body: {"Content-MD5": _md5_b64(body)},
    ):
        s3.put_object(Bucket=bucket, Key="a", Body=b"gone")
        r = _delete_objects_with(s3, bucket, right)
        assert r["Deleted"] == [{"Key": "a"}] and "Errors" not in r
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key="a")
