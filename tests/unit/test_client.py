"""The SDK without a server: endpoints, input checks before any network call,
bodies, ranges, the retry policy, and lifecycle."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import io
import os
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import tristore
from tristore import (
    AsyncClient,
    ByteRange,
    Client,
    Conditions,
    CopySource,
    Destination,
    Rule,
    errors,
    tls,
)
from tristore.client import CHUNK_SIZE, ENDPOINT_ENV, RetryPolicy, parse_endpoints
from tristore.client._body import FileBody, make_body, rechunk
from tristore.client._transport import Security, resolve_security
from tristore.client.aio import coerce_range
from tristore.credentials import Credentials
from tristore.tls import CA_BUNDLE_ENV, INSECURE_ENV

pytestmark = pytest.mark.unit

FAST = RetryPolicy(base_s=0.001, cap_s=0.005)
RULE = Rule("r1", (Destination("east", "dst"),))


def _run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


# -- the package -----------------------------------------------------------------


def test_package_exports() -> None:
    for name in (
        "Client", "AsyncClient", "errors", "ObjectInfo", "BucketInfo", "ListEntry", "ListPage",
        "ByteRange", "ClusterStatus", "NodeHealth", "NodeStatus", "__version__",
        "Conditions", "DeleteResult", "VersionEntry", "VersionPage", "Tagging", "Acl",
        "CopySource", "CopyResult", "Rule", "Destination",
    ):  # fmt: skip
        assert hasattr(tristore, name), name
        assert name in tristore.__all__
    assert isinstance(tristore.__version__, str) and tristore.__version__
    from tristore.client import AsyncClient as A
    from tristore.client import Client as C

    assert (tristore.AsyncClient, tristore.Client) == (A, C)
    with pytest.raises(AttributeError):
        _ = tristore.NoSuchThing


# -- endpoints -------------------------------------------------------------------


def test_endpoint_forms() -> None:
    assert parse_endpoints("127.0.0.1:7101") == ("127.0.0.1:7101",)
    assert parse_endpoints(" a:1 , b:2,,a:1 ") == ("a:1", "b:2")
    assert parse_endpoints(["a:1", "b:2,c:3"]) == ("a:1", "b:2", "c:3")
    assert parse_endpoints("[::1]:7101") == ("[::1]:7101",)
    assert parse_endpoints("http://host:80/") == ("host:80",)
    assert parse_endpoints("unix:/tmp/sock") == ("unix:/tmp/sock",)


def test_endpoint_from_environment() -> None:
    assert parse_endpoints(None, env={ENDPOINT_ENV: "h:1,h:2"}) == ("h:1", "h:2")


@pytest.mark.parametrize("bad", ["host", "host:", ":7101", "host:port", "host:0", "host:70000"])
def test_bad_endpoints(bad: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="HOST:PORT"):
        parse_endpoints(bad)


def test_url_schemes_are_stripped() -> None:
    # TLS is the default whatever the scheme; plaintext needs the insecure switch.
    assert parse_endpoints("https://host:443,http://h2:7101/") == ("host:443", "h2:7101")


def test_security_defaults_to_tls(tmp_path: Path) -> None:
    assert resolve_security(env={}) == Security()
    assert resolve_security(env={INSECURE_ENV: "1"}).insecure
    assert not resolve_security(insecure=False, env={INSECURE_ENV: "1"}).insecure
    ca = tmp_path / "ca.crt"
    with pytest.raises(errors.InvalidArgument, match="cannot be read"):
        resolve_security(env={CA_BUNDLE_ENV: str(ca)})
    ca.write_text("not a certificate")
    with pytest.raises(errors.InvalidArgument, match="no PEM certificate"):
        resolve_security(ca_file=ca, env={})
    crt = tls.ensure_ca(tmp_path / "ca")
    assert resolve_security(env={CA_BUNDLE_ENV: str(crt)}).ca_pem == crt.read_bytes()


@pytest.mark.parametrize("given", [None, "", " , ", []])
def test_missing_endpoint_says_how_to_give_one(given: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    for factory in (AsyncClient, Client):
        with pytest.raises(errors.InvalidArgument) as info:
            factory(given)
        assert "--endpoint" in info.value.message
        assert ENDPOINT_ENV in info.value.message


def test_client_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "127.0.0.1:7101,127.0.0.1:7102")
    assert AsyncClient().endpoints == ("127.0.0.1:7101", "127.0.0.1:7102")
    with Client() as c:
        assert c.endpoints == ("127.0.0.1:7101", "127.0.0.1:7102")


# -- input checks happen before any network call ----------------------------------

BAD_CALLS: list[tuple[str, Callable[[Any], Any], type[errors.TristoreError]]] = [
    ("create_bucket", lambda c: c.create_bucket("Bad_Name"), errors.InvalidBucketName),
    ("delete_bucket", lambda c: c.delete_bucket("ab"), errors.InvalidBucketName),
    ("head_bucket", lambda c: c.head_bucket("192.168.0.1"), errors.InvalidBucketName),
    ("put bucket", lambda c: c.put_object("UPPER", "k", b"x"), errors.InvalidBucketName),
    ("put empty key", lambda c: c.put_object("bkt", "", b"x"), errors.InvalidArgument),
    ("put long key", lambda c: c.put_object("bkt", "é" * 513, b"x"), errors.KeyTooLongError),
    ("put metadata", lambda c: c.put_object("bkt", "k", b"", metadata={"a b": "v"}),
     errors.InvalidArgument),
    ("put metadata CRLF", lambda c: c.put_object("bkt", "k", b"", metadata={"a": "x\r\ny"}),
     errors.InvalidArgument),
    ("put big metadata", lambda c: c.put_object("bkt", "k", b"", metadata={"k": "v" * 2048}),
     errors.MetadataTooLarge),
    ("put content type", lambda c: c.put_object("bkt", "k", b"", content_type="a\nb"),
     errors.InvalidArgument),
    ("put str body", lambda c: c.put_object("bkt", "k", "text"), errors.InvalidArgument),
    ("put text file", lambda c: c.put_object("bkt", "k", io.StringIO("t")),
     errors.InvalidArgument),
    ("put int body", lambda c: c.put_object("bkt", "k", 42), errors.InvalidArgument),
    ("get key", lambda c: c.get_object("bkt", ""), errors.InvalidArgument),
    ("get range order", lambda c: c.get_object("bkt", "k", range=(9, 2)), errors.InvalidRange),
    ("get range string", lambda c: c.get_object("bkt", "k", range="bytes=x-y"),
     errors.InvalidRange),
    ("get range suffix 0", lambda c: c.get_object("bkt", "k", range="bytes=-0"),
     errors.InvalidRange),
    ("get range empty suffix",
     lambda c: c.get_object("bkt", "k", range=ByteRange(0, empty_suffix=True)),
     errors.InvalidRange),
    ("get version", lambda c: c.get_object("bkt", "k", version_id="v1"), errors.InvalidArgument),
    ("stream bucket", lambda c: c.get_object_stream("A", "k"), errors.InvalidBucketName),
    ("stream range", lambda c: c.get_object_stream("bkt", "k", range=(-5, 3)),
     errors.InvalidRange),
    ("head key", lambda c: c.head_object("bkt", "x" * 1025), errors.KeyTooLongError),
    ("head version", lambda c: c.head_object("bkt", "k", version_id="zz" * 16),
     errors.InvalidArgument),
    ("delete key", lambda c: c.delete_object("bkt", ""), errors.InvalidArgument),
    ("delete bucket name", lambda c: c.delete_object("b..b", "k"), errors.InvalidBucketName),
    ("list bucket", lambda c: c.list_objects("-b-"), errors.InvalidBucketName),
    ("list max_keys past int32", lambda c: c.list_objects("bkt", max_keys=2**31),
     errors.InvalidArgument),
    ("list max_keys negative", lambda c: c.list_objects("bkt", max_keys=-1),
     errors.InvalidArgument),
    ("list max_keys bool", lambda c: c.list_objects("bkt", max_keys=True),
     errors.InvalidArgument),
    ("list prefix", lambda c: c.list_objects("bkt", prefix="p" * 1025), errors.InvalidArgument),
    ("iter bucket", lambda c: c.iter_objects("Nope"), errors.InvalidBucketName),
    ("iter page size", lambda c: c.iter_objects("bkt", page_size=-1), errors.InvalidArgument),
    # S3 object semantics
    ("put tags", lambda c: c.put_object("bkt", "k", b"", tags={f"k{i}": "" for i in range(11)}),
     errors.InvalidTag),
    ("put tags aws:", lambda c: c.put_object("bkt", "k", b"", tags={"aws:x": "1"}),
     errors.InvalidTag),
    ("put tags type", lambda c: c.put_object("bkt", "k", b"", tags=[("a", "b")]),
     errors.InvalidTag),
    ("put acl", lambda c: c.put_object("bkt", "k", b"", acl="world"), errors.InvalidArgument),
    ("put storage class", lambda c: c.put_object("bkt", "k", b"", storage_class="COLD"),
     errors.InvalidStorageClass),
    ("put sse", lambda c: c.put_object("bkt", "k", b"", sse="rot13"), errors.InvalidArgument),
    ("put if_none_match", lambda c: c.put_object("bkt", "k", b"", if_none_match="abc"),
     errors.InvalidArgument),
    ("put if_match CRLF", lambda c: c.put_object("bkt", "k", b"", if_match="a\r\nb"),
     errors.InvalidArgument),
    ("put NUL key", lambda c: c.put_object("bkt", "a\x00b", b""), errors.InvalidArgument),
    ("get conditions type", lambda c: c.get_object("bkt", "k", conditions={"if_match": "x"}),
     errors.InvalidArgument),
    ("get naive time", lambda c: c.get_object(
        "bkt", "k", conditions=Conditions(if_modified_since=dt.datetime(2024, 1, 1))),
     errors.InvalidArgument),
    ("stream conditions", lambda c: c.get_object_stream(
        "bkt", "k", conditions=Conditions(if_none_match="a\nb")), errors.InvalidArgument),
    ("head conditions", lambda c: c.head_object(
        "bkt", "k", conditions=Conditions(if_unmodified_since="yesterday")),  # type: ignore[arg-type]
     errors.InvalidArgument),
    ("delete version", lambda c: c.delete_object("bkt", "k", version_id="nil"),
     errors.InvalidArgument),
    ("delete_objects bucket", lambda c: c.delete_objects("B", ["k"]), errors.InvalidBucketName),
    ("delete_objects key", lambda c: c.delete_objects("bkt", ["a", ""]), errors.InvalidArgument),
    ("delete_objects long key", lambda c: c.delete_objects("bkt", ["k" * 1025]),
     errors.KeyTooLongError),
    ("delete_objects item type", lambda c: c.delete_objects("bkt", [("k", "v", "x")]),
     errors.InvalidArgument),
    ("delete_objects version", lambda c: c.delete_objects("bkt", [("k", "nil")]),
     errors.InvalidArgument),
    ("versioning status", lambda c: c.put_bucket_versioning("bkt", "On"),
     errors.IllegalVersioningConfigurationException),
    ("versioning unversioned", lambda c: c.put_bucket_versioning("bkt", ""),
     errors.IllegalVersioningConfigurationException),
    ("versioning bucket", lambda c: c.put_bucket_versioning("B", "Enabled"),
     errors.InvalidBucketName),
    ("get versioning bucket", lambda c: c.get_bucket_versioning("b"), errors.InvalidBucketName),
    ("versions bucket", lambda c: c.list_object_versions("a_b"), errors.InvalidBucketName),
    ("versions max_keys", lambda c: c.list_object_versions("bkt", max_keys=-1),
     errors.InvalidArgument),
    ("versions vid marker alone", lambda c: c.list_object_versions(
        "bkt", version_id_marker="null"), errors.InvalidArgument),
    ("versions vid marker", lambda c: c.list_object_versions(
        "bkt", key_marker="k", version_id_marker="v1"), errors.InvalidArgument),
    ("versions key marker", lambda c: c.list_object_versions("bkt", key_marker="k" * 1025),
     errors.InvalidArgument),
    ("iter versions page size", lambda c: c.iter_object_versions("bkt", page_size=-1),
     errors.InvalidArgument),
    ("get tagging key", lambda c: c.get_object_tagging("bkt", ""), errors.InvalidArgument),
    ("put tagging", lambda c: c.put_object_tagging("bkt", "k", {"k": "v" * 257}),
     errors.InvalidTag),
    ("put tagging version", lambda c: c.put_object_tagging("bkt", "k", {}, version_id="x"),
     errors.InvalidArgument),
    ("delete tagging bucket", lambda c: c.delete_object_tagging("..", "k"),
     errors.InvalidBucketName),
    ("get acl key", lambda c: c.get_object_acl("bkt", "k" * 1025), errors.KeyTooLongError),
    ("put acl canned", lambda c: c.put_object_acl("bkt", "k", "public"), errors.InvalidArgument),
    ("copy source type", lambda c: c.copy_object(("bkt", "k"), "bkt", "k2"),
     errors.InvalidArgument),
    ("copy source bucket", lambda c: c.copy_object(CopySource("B", "k"), "bkt", "k2"),
     errors.InvalidBucketName),
    ("copy dest key", lambda c: c.copy_object(CopySource("bkt", "k"), "bkt", ""),
     errors.InvalidArgument),
    ("copy source version", lambda c: c.copy_object(CopySource("bkt", "k", "v"), "bkt", "k2"),
     errors.InvalidArgument),
    ("copy source conditions", lambda c: c.copy_object(
        CopySource("bkt", "k", conditions=Conditions(if_match="\x00")), "bkt", "k2"),
     errors.InvalidArgument),
    ("copy directive", lambda c: c.copy_object(
        CopySource("bkt", "k"), "bkt", "k2", metadata_directive="MOVE"), errors.InvalidArgument),
    ("copy metadata without REPLACE", lambda c: c.copy_object(
        CopySource("bkt", "k"), "bkt", "k2", metadata={"a": "1"}), errors.InvalidArgument),
    ("copy content type without REPLACE", lambda c: c.copy_object(
        CopySource("bkt", "k"), "bkt", "k2", content_type="t/p"), errors.InvalidArgument),
    ("copy tags without REPLACE", lambda c: c.copy_object(
        CopySource("bkt", "k"), "bkt", "k2", tags={"a": "1"}), errors.InvalidArgument),
    ("copy bad tags", lambda c: c.copy_object(
        CopySource("bkt", "k"), "bkt", "k2", tagging_directive="REPLACE", tags={"a*": "1"}),
     errors.InvalidTag),
    ("copy storage class", lambda c: c.copy_object(
        CopySource("bkt", "k"), "bkt", "k2", storage_class="X"), errors.InvalidStorageClass),
    ("copy onto itself", lambda c: c.copy_object(CopySource("bkt", "k"), "bkt", "k"),
     errors.InvalidRequest),
    ("put replication bucket", lambda c: c.put_bucket_replication("B", [RULE]),
     errors.InvalidBucketName),
    ("get replication bucket", lambda c: c.get_bucket_replication("b"), errors.InvalidBucketName),
    ("delete replication bucket", lambda c: c.delete_bucket_replication("a..b"),
     errors.InvalidBucketName),
    ("replication no rules", lambda c: c.put_bucket_replication("bkt", []),
     errors.InvalidArgument),
    ("replication one rule not a list", lambda c: c.put_bucket_replication("bkt", RULE),
     errors.InvalidArgument),
    ("replication rule type", lambda c: c.put_bucket_replication("bkt", [RULE.to_json()]),
     errors.InvalidArgument),
    ("replication ids", lambda c: c.put_bucket_replication("bkt", [RULE, RULE]),
     errors.InvalidArgument),
    ("replication no destination", lambda c: c.put_bucket_replication(
        "bkt", [Rule("r", ())]), errors.InvalidArgument),
    ("replication destination bucket", lambda c: c.put_bucket_replication(
        "bkt", [Rule("r", (Destination("east", "B"),))]), errors.InvalidBucketName),
    ("replication priority", lambda c: c.put_bucket_replication(
        "bkt", [Rule("r", RULE.destinations, priority=2**31)]), errors.InvalidArgument),
    ("replication tags", lambda c: c.put_bucket_replication(
        "bkt", [Rule("r", RULE.destinations, tags={"aws:x": "1"})]), errors.InvalidTag),
]  # fmt: skip


@pytest.mark.parametrize(("what", "call", "exc"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_async_client_checks_input_before_the_network(
    refused_endpoint: str, what: str, call: Callable[[Any], Any], exc: type[Exception]
) -> None:
    async def main() -> None:
        client = AsyncClient(refused_endpoint, retry=FAST)
        try:
            with pytest.raises(exc) as info:
                result = call(client)
                if asyncio.iscoroutine(result):
                    await result
            assert type(info.value) is exc
            assert not any(ep.opened for ep in client._endpoints), "a channel was opened"
        finally:
            await client.close()

    asyncio.run(main())


@pytest.mark.parametrize(("what", "call", "exc"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_sync_client_checks_input_before_the_network(
    refused_endpoint: str, what: str, call: Callable[[Any], Any], exc: type[Exception]
) -> None:
    with Client(refused_endpoint, retry=FAST) as client:
        with pytest.raises(exc):
            call(client)
        assert not any(ep.opened for ep in client._aio._endpoints), "a channel was opened"


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(cls).items()
        if callable(fn) and not name.startswith("_")
    }


def test_sync_and_async_clients_have_the_same_methods_and_parameters() -> None:
    sync, aio = _public_methods(Client), _public_methods(AsyncClient)
    assert set(sync) == set(aio)
    for name, sig in sync.items():
        params = [(p.name, p.kind, p.default) for p in sig.parameters.values()]
        assert params == [(p.name, p.kind, p.default) for p in aio[name].parameters.values()], name


GOOD_CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    ("null version", lambda c: c.get_object("bkt", "k", version_id="null")),
    ("conditions", lambda c: c.head_object("bkt", "k", conditions=Conditions(
        if_match="e", if_none_match="*", if_modified_since=dt.datetime.now(dt.UTC)))),
    ("empty conditions", lambda c: c.get_object("bkt", "k", conditions=Conditions())),
    ("put extras", lambda c: c.put_object(
        "bkt", "k", b"", tags={"a b": "c+d"}, acl="public-read", storage_class="STANDARD_IA",
        sse="aws:kms", if_none_match="*")),
    ("put if_match", lambda c: c.put_object("bkt", "k", b"", if_match="d41d8cd9")),
    ("versioning", lambda c: c.put_bucket_versioning("bkt", "Suspended")),
    ("versions markers", lambda c: c.list_object_versions(
        "bkt", key_marker="k", version_id_marker="null")),
    ("untag version", lambda c: c.delete_object_tagging("bkt", "k", version_id="null")),
    ("copy onto itself with a change", lambda c: c.copy_object(
        CopySource("bkt", "k"), "bkt", "k", metadata_directive="REPLACE")),
    ("restore a version", lambda c: c.copy_object(CopySource("bkt", "k", "null"), "bkt", "k")),
    ("put replication", lambda c: c.put_bucket_replication("bkt", (RULE,))),
    ("get replication", lambda c: c.get_bucket_replication("bkt")),
    ("delete replication", lambda c: c.delete_bucket_replication("bkt")),
]  # fmt: skip


@pytest.mark.parametrize(("what", "call"), GOOD_CALLS, ids=[g[0] for g in GOOD_CALLS])
def test_good_input_reaches_the_network(
    refused_endpoint: str, what: str, call: Callable[[Any], Any]
) -> None:
    with Client(refused_endpoint, retry=FAST) as client, pytest.raises(errors.ServiceUnavailable):
        call(client)


def test_valid_metadata_is_accepted_by_the_client(refused_endpoint: str) -> None:
    """Good input passes the checks and reaches the (refusing) network."""
    with Client(refused_endpoint, retry=FAST) as client, pytest.raises(errors.ServiceUnavailable):
        client.put_object("bkt", "k", b"x", metadata={"X-Amz-Meta-A": "1"}, content_type="t/p")


# -- transport failures, retries and failover --------------------------------------


def test_unreachable_endpoint_is_retried_then_reported(refused_endpoint: str) -> None:
    with (
        Client(refused_endpoint, retry=FAST) as client,
        pytest.raises(errors.ServiceUnavailable) as info,
    ):
        client.head_bucket("bkt")
    message = info.value.message
    assert refused_endpoint in message
    assert "after 3 attempt(s)" in message  # max(3, 2 * 1 endpoint)
    assert info.value.retriable


def test_every_endpoint_is_tried(refused_endpoint: str) -> None:
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        second = f"127.0.0.1:{other.getsockname()[1]}"
        with (
            Client([refused_endpoint, second], retry=FAST) as client,
            pytest.raises(errors.ServiceUnavailable) as info,
        ):
            client.list_buckets()
    assert refused_endpoint in info.value.message and second in info.value.message
    assert "after 4 attempt(s)" in info.value.message  # max(3, 2 * 2 endpoints)


def test_attempts_are_bounded_in_time(refused_endpoint: str) -> None:
    """total_s ends the attempts long before max_attempts: 0.3 s of backoffs of
    at least 0.025 s (half the 0.05 s step, then jitter) is a dozen attempts at
    most, not 1000."""
    policy = RetryPolicy(max_attempts=1000, base_s=0.05, cap_s=0.05, total_s=0.3)
    with (
        Client(refused_endpoint, retry=policy) as client,
        pytest.raises(errors.ServiceUnavailable) as info,
    ):
        client.list_buckets()
    m = re.search(r"after (\d+) attempt\(s\)", info.value.message)
    assert m is not None, info.value.message
    assert 2 <= int(m.group(1)) <= 0.3 / 0.025 + 1, info.value.message


def test_an_unreachable_endpoint_leaves_a_one_shot_body_untouched(refused_endpoint: str) -> None:
    """Nothing was read from the generator, so every attempt could have sent it."""
    pulled: list[int] = []

    def body() -> Any:
        for i in range(3):
            pulled.append(i)
            yield b"x" * 10

    with Client(refused_endpoint, retry=FAST) as client:
        with pytest.raises(errors.ServiceUnavailable, match=r"after 3 attempt\(s\)"):
            client.put_object("bkt", "k", body())
        with pytest.raises(errors.ServiceUnavailable, match=r"after 3 attempt\(s\)"):
            client.put_object("bkt", "k", io.BytesIO(b"replayable"))
    assert pulled == []


# -- ranges ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, None),
        ((0, 9), ByteRange(0, 9)),
        ((5, None), ByteRange(5, -1)),
        ((5, -1), ByteRange(5, -1)),
        ((-100, None), ByteRange(-100, -1)),
        (ByteRange(3, 4), ByteRange(3, 4)),
        (ByteRange(-7), ByteRange(-7, -1)),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=10-", ByteRange(10, -1)),
        ("bytes=-10", ByteRange(-10, -1)),
    ],
)
def test_range_forms(spec: Any, expected: ByteRange | None) -> None:
    assert coerce_range(spec) == expected


@pytest.mark.parametrize("spec", [(5, 2), (-5, 3), ("a", 1), (1.5, 2), (1, 2, 3), [0, 1], 7])
def test_bad_ranges(spec: Any) -> None:
    with pytest.raises(errors.InvalidRange):
        coerce_range(spec)


# -- bodies ----------------------------------------------------------------------


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [c async for c in chunks]


def test_bytes_body() -> None:
    data = os.urandom(2 * CHUNK_SIZE + 5)
    body = make_body(data)
    assert body.size == len(data) and body.replayable
    chunks = _run(_collect(body.chunks()))
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, 5]
    assert b"".join(chunks) == data
    assert _run(_collect(body.chunks())) == chunks  # replayable: the same again
    assert _run(_collect(make_body(b"").chunks())) == []
    assert _run(_collect(make_body(bytearray(b"ab")).chunks())) == [b"ab"]
    assert _run(_collect(make_body(memoryview(b"abc")[1:]).chunks())) == [b"bc"]


def test_seekable_file_body_starts_where_the_file_is(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(CHUNK_SIZE + 100)
    path.write_bytes(b"HEADER" + data)
    with path.open("rb") as f:
        f.seek(6)
        body = make_body(f)
        assert isinstance(body, FileBody)
        assert body.size == len(data) and body.replayable
        assert b"".join(_run(_collect(body.chunks()))) == data
        assert b"".join(_run(_collect(body.chunks()))) == data  # seeks back for a retry


def test_file_body_that_grows_is_refused_not_cut(tmp_path: Path) -> None:
    # Sending the first 5 bytes would store an object nobody wrote.
    path = tmp_path / "growing"
    path.write_bytes(b"12345")
    with path.open("rb") as f:
        body = make_body(f)
        assert body.size == 5
        with path.open("ab") as w:
            w.write(b"67890")
        with pytest.raises(errors.InvalidArgument, match="grew while it was being sent"):
            _run(_collect(body.chunks()))


def test_pipe_body_is_one_shot_with_unknown_size() -> None:
    r, w = os.pipe()
    payload = os.urandom(3 * CHUNK_SIZE // 2)

    def writer() -> None:
        with os.fdopen(w, "wb") as wf:
            for i in range(0, len(payload), 4096):
                wf.write(payload[i : i + 4096])

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, "rb", buffering=0) as rf:  # unbuffered: short reads
        body = make_body(rf)
        assert body.size == -1 and not body.replayable
        chunks = _run(_collect(body.chunks()))
    t.join()
    assert b"".join(chunks) == payload
    assert all(len(c) == CHUNK_SIZE for c in chunks[:-1])


def test_iterables_are_one_shot() -> None:
    body = make_body(iter([b"a", b"bc"]))
    assert body.size == -1 and not body.replayable
    assert _run(_collect(body.chunks())) == [b"abc"]

    async def agen() -> AsyncIterator[bytes | bytearray]:
        yield b"x"
        yield bytearray(b"y")

    abody = make_body(agen())
    assert not abody.replayable
    assert _run(_collect(abody.chunks())) == [b"xy"]


def test_iterables_must_yield_bytes() -> None:
    with pytest.raises(errors.InvalidArgument, match="yield bytes"):
        _run(_collect(make_body(["text"]).chunks()))


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([], []),
        ([3, 3, 3], [4, 4, 1]),
        ([4], [4]),
        ([10], [4, 4, 2]),
        ([1, 10, 1], [4, 4, 4]),
        ([2, 2, 2, 2], [4, 4]),
        ([0, 5, 0], [4, 1]),
    ],
)
def test_rechunk(sizes: list[int], expected: list[int]) -> None:
    pieces = [bytes([i]) * n for i, n in enumerate(sizes)]

    async def source() -> AsyncIterator[memoryview]:
        for p in pieces:
            yield memoryview(p)

    out = _run(_collect(rechunk(source(), size=4)))
    assert [len(c) for c in out] == expected
    assert b"".join(out) == b"".join(pieces)


# -- retry policy ----------------------------------------------------------------


def test_retry_policy_attempts() -> None:
    assert RetryPolicy().attempts(1) == 3
    assert RetryPolicy().attempts(2) == 4
    assert RetryPolicy().attempts(6) == 12
    assert RetryPolicy(max_attempts=5).attempts(6) == 5
    assert RetryPolicy(max_attempts=0).attempts(6) == 1


def test_retry_backoff_is_capped_exponential_with_jitter() -> None:
    p = RetryPolicy(base_s=0.1, cap_s=1.0)
    for failures, step in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (30, 1.0)]:
        delays = {p.backoff(failures) for _ in range(200)}
        assert all(step / 2 <= d <= step for d in delays), (failures, delays)
        assert len(delays) > 1, "no jitter"


# -- lifecycle -------------------------------------------------------------------


def test_sync_client_close_stops_its_thread(refused_endpoint: str) -> None:
    before = set(threading.enumerate())
    client = Client(refused_endpoint)
    runner = client._runner.thread
    assert runner.is_alive() and runner.daemon
    client.close()
    client.close()  # idempotent
    assert not runner.is_alive()
    assert set(threading.enumerate()) <= before
    with pytest.raises(RuntimeError, match="closed"):
        client.list_buckets()


def test_sync_client_used_from_many_threads(refused_endpoint: str) -> None:
    failures: list[BaseException] = []
    with Client(refused_endpoint, retry=RetryPolicy(max_attempts=1)) as client:

        def work() -> None:
            for _ in range(5):
                try:
                    client.head_object("bkt", "k")
                except errors.ServiceUnavailable:
                    pass
                except BaseException as e:  # noqa: BLE001 - reported below
                    failures.append(e)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures


def test_unclosed_sync_client_is_closed_by_the_garbage_collector(refused_endpoint: str) -> None:
    client = Client(refused_endpoint)
    runner = client._runner.thread
    del client
    import gc

    gc.collect()
    runner.join(5)
    assert not runner.is_alive()


def test_async_client_close_and_context_manager(refused_endpoint: str) -> None:
    async def main() -> None:
        async with AsyncClient(refused_endpoint) as client:
            assert not client.closed
        assert client.closed
        await client.close()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            await client.list_buckets()

    asyncio.run(main())


def test_async_client_belongs_to_one_loop(refused_endpoint: str) -> None:
    client = AsyncClient(refused_endpoint, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(errors.ServiceUnavailable):
        asyncio.run(client.list_buckets())
    with pytest.raises(RuntimeError, match="another event loop"):
        asyncio.run(client.list_buckets())


# --- presigned URLs ---------------------------------------------------------------

PRESIGN_CREDS = Credentials("TKPRESIGN0000001", "presign-secret")
PRESIGN_AT = dt.datetime(2026, 12, 2, 10, 0, 0, tzinfo=dt.UTC)


def test_a_presigned_url_is_the_sigv4_query_of_its_path() -> None:
    from urllib.parse import parse_qsl, urlsplit

    from tristore import sigv4

    client = AsyncClient("127.0.0.1:7101", credentials=PRESIGN_CREDS)
    url = client.presign_url(
        "bkt", "dir/a b+ü.txt", method="put", expires_in=600,
        endpoint_url="https://127.0.0.1:7600", now=PRESIGN_AT,
    )  # fmt: skip
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "127.0.0.1:7600")
    assert parts.path == "/bkt/dir/a%20b%2B%C3%BC.txt"  # encoded once, slashes kept
    key = sigv4.signing_key(PRESIGN_CREDS.secret_access_key, "20261202", sigv4.DEFAULT_REGION)
    expected = sigv4.presign_query(
        PRESIGN_CREDS.access_key_id, key, sigv4.DEFAULT_REGION, "PUT",
        "/bkt/dir/a b+ü.txt", "127.0.0.1:7600", 600, now=PRESIGN_AT,
    )  # fmt: skip
    assert parse_qsl(parts.query) == expected
    assert dict(expected)["X-Amz-Expires"] == "600"


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"method": "POST"}, "not 'POST'"),
        ({"expires_in": 0}, "1 to 604800"),
        ({"expires_in": 604801}, "1 to 604800"),
        ({"endpoint_url": "127.0.0.1:7600"}, "base URL"),
        ({"endpoint_url": "https://127.0.0.1:7600/bkt"}, "base URL"),
        ({"version_id": "not-a-version"}, "version"),
    ],
)
def test_presign_refuses_what_no_url_could_do(kw: dict[str, Any], says: str) -> None:
    client = AsyncClient("127.0.0.1:7101", credentials=PRESIGN_CREDS)
    args: dict[str, Any] = {"endpoint_url": "https://127.0.0.1:7600", **kw}
    with pytest.raises(errors.InvalidArgument, match=re.escape(says)):
        client.presign_url("bkt", "k", **args)


def test_presign_needs_credentials_and_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.InvalidArgument, match="access key"):
        AsyncClient("127.0.0.1:7101", anonymous=True).presign_url(
            "bkt", "k", endpoint_url="https://h:1"
        )
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = AsyncClient("127.0.0.1:7101", credentials=PRESIGN_CREDS)
    with pytest.raises(errors.InvalidArgument, match="AWS_ENDPOINT_URL"):
        client.presign_url("bkt", "k")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://h:7600")
    assert client.presign_url("bkt", "k").startswith("https://h:7600/bkt/k?")
