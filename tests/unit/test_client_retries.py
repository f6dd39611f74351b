"""The SDK's retry, failover and streaming rules, against a scripted in-process
ObjectService (a stand-in that fails on cue; the real node is exercised by the
integration tier). Every server error goes through the real server interceptor."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tristore import errors
from tristore.client import AsyncClient, RetryPolicy
from tristore.pb import objects_pb2 as pb
from tristore.pb import objects_pb2_grpc
from tristore.server import SERVER_OPTIONS, Interceptor

pytestmark = pytest.mark.unit

FAST = RetryPolicy(base_s=0.001, cap_s=0.002)
MiB = 1024 * 1024


@dataclass
class Script(objects_pb2_grpc.ObjectServiceServicer):
    """Each RPC takes the next scripted error for its method (None: succeed)."""

    plan: dict[str, list[errors.TristoreError | None]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    requests: list[Any] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    objects: dict[str, bytes] = field(default_factory=dict)
    buckets: set[str] = field(default_factory=set)
    #: GetObject: how many bytes to send before failing mid-stream (None: all).
    break_after: list[int | None] = field(default_factory=list)
    #: GetObject: announce this range end instead of the real one.
    lie_range_end: int | None = None
    pages: list[pb.ListObjectsResponse] = field(default_factory=list)
    #: PutObject: the header of every attempt, refused ones included.
    headers: list[pb.PutObjectHeader] = field(default_factory=list)

    def _next(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        queue = self.plan.get(method, [])
        err = queue.pop(0) if queue else None
        if err is not None:
            raise err

    async def CreateBucket(self, request, context):
        self.calls["CreateBucket"] = self.calls.get("CreateBucket", 0) + 1
        queue = self.plan.get("CreateBucket", [])
        err = queue.pop(0) if queue else None
        if request.bucket in self.buckets:
            raise errors.BucketAlreadyExists(f"bucket {request.bucket!r} already exists")
        self.buckets.add(request.bucket)  # applied even when the reply then fails
        if err is not None:
            raise err
        return pb.CreateBucketResponse()

    async def HeadBucket(self, request, context):
        self._next("HeadBucket")
        return pb.HeadBucketResponse(bucket=pb.BucketInfo(name=request.bucket, created_ms=1))

    async def PutObject(self, request_iterator, context):
        self.calls["PutObject"] = self.calls.get("PutObject", 0) + 1
        queue = self.plan.get("PutObject", [])
        err = queue.pop(0) if queue else None
        body = bytearray()
        header = None
        async for msg in request_iterator:
            if header is None:
                header = msg.header
                self.headers.append(header)
                if err is not None:
                    raise err  # refuse right after the header, mid-upload
            body += msg.data
        assert header is not None
        self.bodies.append(bytes(body))
        self.objects[header.key] = bytes(body)
        info = pb.ObjectInfo(
            bucket=header.bucket, key=header.key, size=len(body), etag=hashlib.md5(body).hexdigest()
        )
        return pb.PutObjectResponse(info=info)

    async def GetObject(self, request, context):
        self._next("GetObject")
        self.requests.append(request)
        data = self.objects[request.key]
        first, last = 0, len(data) - 1
        if request.has_range:
            from tristore.validation import resolve_range

            first, last = resolve_range(request.range.start, request.range.end, len(data))
        body = data[first : last + 1]
        limit = self.break_after.pop(0) if self.break_after else None
        end = last if self.lie_range_end is None else self.lie_range_end
        yield pb.GetObjectResponse(
            info=pb.ObjectInfo(bucket=request.bucket, key=request.key, size=len(data)),
            range_start=first,
            range_end=max(end, 0),
        )
        step = 64 * 1024
        for i in range(0, len(body), step):
            if limit is not None and i >= limit:
                raise errors.ServiceUnavailable("node is shutting down")
            yield pb.GetObjectResponse(data=body[i : i + step])

    async def ListObjects(self, request, context):
        self._next("ListObjects")
        self.requests.append(request)
        return self.pages.pop(0) if self.pages else pb.ListObjectsResponse()


async def _serve(script: Script, check: Callable[[int], Awaitable[None]]) -> None:
    server = grpc.aio.server(interceptors=[Interceptor()], options=SERVER_OPTIONS)
    objects_pb2_grpc.add_ObjectServiceServicer_to_server(script, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await check(port)
    finally:
        await server.stop(None)


def run(script: Script, check: Callable[[int], Awaitable[None]]) -> None:
    asyncio.run(_serve(script, check))


def two_names(port: int) -> list[str]:
    """Two endpoints (two channels) that reach the same server."""
    return [f"127.0.0.1:{port}", f"localhost:{port}"]


# -- retries ---------------------------------------------------------------------


def test_retriable_error_then_success_replays_the_whole_body() -> None:
    script = Script(plan={"PutObject": [errors.QuorumUnavailable("az-b down"), None]})
    data = bytes(range(256)) * (3 * MiB // 256 + 7)
    seen: list[int] = []

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            info = await c.put_object("bkt", "k", data, progress=seen.append)
        assert info.size == len(data)

    run(script, check)
    assert script.calls["PutObject"] == 2
    assert script.bodies == [data]
    assert seen[-1] == len(data)


@pytest.mark.parametrize(
    ("first", "resend"),
    [
        # Failures that may come after the change reached replicas: resend.
        (errors.QuorumUnavailable("az-b down"), True),
        (errors.ServiceUnavailable("draining"), True),
        # Refusals answered before anything was written: a fresh attempt.
        (errors.ConditionalRequestConflict("raced"), False),
        (errors.SlowDown("busy"), False),
    ],
)
def test_every_attempt_carries_one_request_id(first: errors.TristoreError, resend: bool) -> None:
    script = Script(plan={"PutObject": [first, None]})

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            await c.put_object("bkt", "k", b"v", if_none_match="*")

    run(script, check)
    one, two = script.headers
    assert len(one.request_id) == 32 and one.request_id == two.request_id
    assert one.first_attempt_ms == two.first_attempt_ms > 0
    assert (one.resend, two.resend) == (False, resend)


def test_each_call_has_its_own_request_id() -> None:
    script = Script()

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            await c.put_object("bkt", "k", b"v")
            await c.put_object("bkt", "k", b"v")

    run(script, check)
    assert len({h.request_id for h in script.headers}) == 2


def test_seekable_file_is_replayed_from_its_start_position(tmp_path: Any) -> None:
    script = Script(plan={"PutObject": [errors.ServiceUnavailable("draining"), None]})
    path = tmp_path / "f"
    path.write_bytes(b"skip" + b"body" * MiB)

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            with path.open("rb") as f:
                f.seek(4)
                await c.put_object("bkt", "k", f)

    run(script, check)
    assert script.bodies == [b"body" * MiB]


def test_cluster_wide_errors_get_few_attempts() -> None:
    script = Script(plan={"PutObject": [errors.QuorumUnavailable("az-b down")] * 10})

    async def check(port: int) -> None:
        # 3 endpoints would allow 6 attempts; QuorumUnavailable gets 3.
        eps = [*two_names(port), f"ipv4:127.0.0.1:{port}"]
        async with AsyncClient(eps, retry=FAST) as c:
            with pytest.raises(errors.QuorumUnavailable, match="az-b down") as info:
                await c.put_object("bkt", "k", b"x")
        assert info.value.message == "az-b down", "the server's message, untouched"

    run(script, check)
    assert script.calls["PutObject"] == 3


def test_endpoint_errors_try_every_endpoint_twice() -> None:
    script = Script(plan={"HeadBucket": [errors.ServiceUnavailable("not ready")] * 10})

    async def check(port: int) -> None:
        async with AsyncClient(two_names(port), retry=FAST) as c:
            with pytest.raises(errors.ServiceUnavailable):
                await c.head_bucket("bkt")

    run(script, check)
    assert script.calls["HeadBucket"] == 4


def test_non_retriable_errors_are_not_retried() -> None:
    script = Script(plan={"PutObject": [errors.NoSuchBucket("no bucket 'bkt'")] * 5})

    async def check(port: int) -> None:
        async with AsyncClient(two_names(port), retry=FAST) as c:
            with pytest.raises(errors.NoSuchBucket, match="no bucket"):
                await c.put_object("bkt", "k", b"x" * (2 * MiB))

    run(script, check)
    assert script.calls["PutObject"] == 1


def test_a_started_one_shot_body_is_not_retried() -> None:
    script = Script(plan={"PutObject": [errors.QuorumUnavailable("az-c down"), None]})

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"z" * MiB

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            with pytest.raises(errors.QuorumUnavailable):
                await c.put_object("bkt", "k", body())

    run(script, check)
    assert script.calls["PutObject"] == 1


def test_a_one_shot_body_moves_on_when_an_endpoint_is_unreachable(
    refused_endpoint: str,
) -> None:
    """Connection refused before any byte was read: the next endpoint gets it."""
    script = Script()
    pulled: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for i in range(3):
            pulled.append(i)
            yield b"q" * 1000

    async def check(port: int) -> None:
        c = AsyncClient([refused_endpoint, f"127.0.0.1:{port}"], retry=FAST)
        c._preferred = 0  # start on the refusing endpoint
        async with c:
            info = await c.put_object("bkt", "k", body())
        assert info.size == 3000

    run(script, check)
    assert pulled == [0, 1, 2]
    assert script.bodies == [b"q" * 3000]


def test_refusal_mid_upload_keeps_the_servers_error() -> None:
    """grpc.aio reports a write to an RPC the server has ended as INTERNAL
    'Internal error from Core'; the SDK must surface the server's real error."""
    script = Script(plan={"PutObject": [errors.NoSuchBucket("no bucket 'nob'")] * 30})

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            for _ in range(30):
                with pytest.raises(errors.NoSuchBucket):
                    await c.put_object("nob", "k", b"y" * (4 * MiB))

    run(script, check)


def test_failover_sticks_to_the_endpoint_that_works(refused_endpoint: str) -> None:
    script = Script()

    async def check(port: int) -> None:
        async with AsyncClient([refused_endpoint, f"127.0.0.1:{port}"], retry=FAST) as c:
            for _ in range(5):
                await c.head_bucket("bkt")
            assert c._preferred == 1

    run(script, check)
    assert script.calls["HeadBucket"] == 5


# -- ambiguous bucket writes ---------------------------------------------------------


def test_create_bucket_that_an_earlier_attempt_created() -> None:
    script = Script(plan={"CreateBucket": [errors.QuorumUnavailable("reply lost")]})

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            await c.create_bucket("bkt")  # attempt 1 applied it, attempt 2 finds it
            with pytest.raises(errors.BucketAlreadyExists):
                await c.create_bucket("bkt")  # no earlier failure: a real conflict

    run(script, check)
    assert script.calls["CreateBucket"] == 3


# -- downloads -------------------------------------------------------------------


def test_get_object_retries_a_broken_download() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    script = Script(objects={"k": data}, break_after=[128 * 1024, None])

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            assert await c.get_object("bkt", "k") == data

    run(script, check)
    assert script.calls["GetObject"] == 2


def test_a_broken_stream_raises_and_is_not_retried() -> None:
    data = bytes(range(256)) * 4096
    script = Script(objects={"k": data}, break_after=[128 * 1024, None])

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            got = bytearray()
            with pytest.raises(errors.ServiceUnavailable, match="broke after") as info:
                async with c.get_object_stream("bkt", "k") as s:
                    assert s.info.size == len(data)
                    async for chunk in s:
                        got += chunk
            assert "node is shutting down" in info.value.message
            assert bytes(got) == data[: len(got)] and len(got) < len(data)

    run(script, check)
    assert script.calls["GetObject"] == 1


def test_opening_a_stream_is_retried() -> None:
    data = b"abc" * 1000
    script = Script(objects={"k": data}, plan={"GetObject": [errors.ServiceUnavailable("x")]})

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            s = await c.get_object_stream("bkt", "k", range=(10, 19))
            assert (s.range_start, s.range_end) == (10, 19)
            assert await s.read() == data[10:20]
            await s.aclose()

    run(script, check)
    assert script.calls["GetObject"] == 2


def test_a_short_stream_is_an_error() -> None:
    script = Script(objects={"k": b"0123456789"}, lie_range_end=20)

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=RetryPolicy(max_attempts=1)) as c:
            with pytest.raises(errors.InternalError, match="10 of 21 bytes"):
                await c.get_object("bkt", "k")

    run(script, check)


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [((2, 5), 2, 5), ("bytes=-3", -3, -1), ("bytes=4-", 4, -1), ((0, None), 0, -1)],
)
def test_ranges_on_the_wire(spec: Any, start: int, end: int) -> None:
    data = b"0123456789"
    script = Script(objects={"k": data})

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}") as c:
            got = await c.get_object("bkt", "k", range=spec)
        expect = data[start:] if end < 0 else data[start : end + 1]
        assert got == expect

    run(script, check)
    (request,) = script.requests
    assert request.has_range and (request.range.start, request.range.end) == (start, end)


def test_no_range_means_no_range() -> None:
    script = Script(objects={"k": b""})

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}") as c:
            assert await c.get_object("bkt", "k") == b""
            async with c.get_object_stream("bkt", "k") as s:
                assert [chunk async for chunk in s] == []

    run(script, check)
    assert not any(r.has_range for r in script.requests)


# -- listings --------------------------------------------------------------------


def _page(keys: list[str], token: str = "") -> pb.ListObjectsResponse:
    return pb.ListObjectsResponse(
        contents=[pb.ListEntry(key=k) for k in keys],
        is_truncated=bool(token),
        next_continuation_token=token,
        key_count=len(keys),
    )


def test_max_keys_is_sent_only_when_given() -> None:
    script = Script()

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}") as c:
            await c.list_objects("bkt")
            await c.list_objects("bkt", max_keys=0)
            await c.list_objects("bkt", prefix="p/", delimiter="/", max_keys=1000, start_after="a")

    run(script, check)
    default, zero, full = script.requests
    assert not default.has_max_keys
    assert zero.has_max_keys and zero.max_keys == 0
    assert full.has_max_keys and full.max_keys == 1000
    assert (full.prefix, full.delimiter, full.start_after) == ("p/", "/", "a")


def test_iter_objects_follows_the_tokens() -> None:
    script = Script(pages=[_page(["a", "b"], "t1"), _page(["c"], "t2"), _page(["d"])])

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}") as c:
            pages = [p async for p in c.iter_objects("bkt", page_size=2, start_after="0")]
        assert [[e.key for e in p.contents] for p in pages] == [["a", "b"], ["c"], ["d"]]

    run(script, check)
    first, second, third = script.requests
    assert (first.continuation_token, first.start_after) == ("", "0")
    assert (second.continuation_token, second.start_after) == ("t1", "")
    assert third.continuation_token == "t2"
    assert all(r.max_keys == 2 and r.has_max_keys for r in script.requests)


def test_iter_objects_stops_on_a_truncated_page_without_token() -> None:
    bad = _page(["a"])
    bad.is_truncated = True
    script = Script(pages=[bad])

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}") as c:
            with pytest.raises(errors.InternalError, match="continuation token"):
                async for _ in c.iter_objects("bkt"):
                    pass

    run(script, check)


def test_sync_client_shares_the_rules() -> None:
    """The sync facade runs the same code: a retried PUT and a paged listing."""
    from tristore import Client

    script = Script(
        plan={"PutObject": [errors.SlowDown("busy"), None]},
        pages=[_page(["a"], "t"), _page(["b"])],
    )

    async def check(port: int) -> None:
        def work() -> None:
            with Client(f"127.0.0.1:{port}", retry=FAST) as c:
                assert c.put_object("bkt", "k", b"v").size == 1
                assert [e.key for p in c.iter_objects("bkt") for e in p.contents] == ["a", "b"]
                with c.get_object_stream("bkt", "k") as s:
                    assert b"".join(s) == b"v"

        await asyncio.to_thread(work)

    run(script, check)
    assert script.calls["PutObject"] == 2


# -- small bodies in one unary call -------------------------------------------------


@dataclass
class SmallScript(Script):
    """A server of this version: small bodies travel in one message each way."""

    small_limit: int = MiB  # GetSmallObject answers too_large above this

    async def PutSmallObject(self, request, context):
        self._next("PutSmallObject")
        self.bodies.append(request.data)
        self.objects[request.header.key] = request.data
        data = request.data
        info = pb.ObjectInfo(
            key=request.header.key, size=len(data), etag=hashlib.md5(data).hexdigest()
        )
        return pb.PutObjectResponse(info=info)

    async def GetSmallObject(self, request, context):
        self._next("GetSmallObject")
        data = self.objects[request.get.key]
        info = pb.ObjectInfo(key=request.get.key, size=len(data))
        resp = pb.GetObjectResponse(info=info, range_start=0, range_end=max(len(data) - 1, 0))
        if len(data) > min(request.max_size, self.small_limit):
            resp.too_large = True
        else:
            resp.data = data
        return resp


def test_small_bodies_go_in_one_unary_call_each_way() -> None:
    script = SmallScript(small_limit=1000)

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            seen: list[int] = []
            await c.put_object("bkt", "small", b"s" * 500, progress=seen.append)
            assert seen == [500]
            await c.put_object("bkt", "empty", b"")
            await c.put_object("bkt", "big", b"b" * (2 * MiB))  # streams
            assert await c.get_object("bkt", "small") == b"s" * 500
            assert await c.get_object("bkt", "empty") == b""
            # Larger than the server answers in one message: described, then streamed.
            assert await c.get_object("bkt", "big") == b"b" * (2 * MiB)

    run(script, check)
    assert script.calls["PutSmallObject"] == 2 and script.calls["PutObject"] == 1
    assert script.calls["GetSmallObject"] == 3 and script.calls["GetObject"] == 1


def test_a_small_put_is_retried_like_any_other() -> None:
    script = SmallScript(plan={"PutSmallObject": [errors.QuorumUnavailable("az-b down"), None]})

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            assert (await c.put_object("bkt", "k", b"x" * 10)).size == 10

    run(script, check)
    assert script.calls["PutSmallObject"] == 2
    assert script.bodies == [b"x" * 10]


def test_a_server_without_the_small_calls_gets_streams() -> None:
    # Script implements only PutObject / GetObject (a server of the previous
    # version): the client hears UNIMPLEMENTED once per endpoint, then streams.
    script = Script()

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            for i in range(3):
                await c.put_object("bkt", f"k{i}", b"v")
                assert await c.get_object("bkt", f"k{i}") == b"v"

    run(script, check)
    assert script.calls["PutObject"] == 3 and script.calls["GetObject"] == 3


class _Growing:
    """A seekable binary file that another writer appends to once the upload
    has started reading it."""

    def __init__(self, data: bytes, extra: bytes) -> None:
        import io

        self._f = io.BytesIO(data)
        self._extra = extra

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def read(self, n: int = -1) -> bytes:
        piece = self._f.read(n)
        if self._extra and piece:
            end = self._f.tell()
            self._f.seek(0, 2)
            self._f.write(self._extra)
            self._f.seek(end)
            self._extra = b""
        return piece


def test_a_file_that_grows_during_the_upload_never_sends_its_declared_size() -> None:
    script = Script()

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            with pytest.raises(errors.InvalidArgument, match="grew while it was being sent"):
                await c.put_object("bkt", "k", _Growing(b"a" * (3 * MiB), b"more"))

    run(script, check)
    # The declared size never went out whole (the growth is seen on the last
    # read): a server takes what did reach it as a short body (IncompleteBody,
    # tests/integration/test_bad_input.py), never as the object.
    assert all(len(b) < 3 * MiB for b in script.bodies), [len(b) for b in script.bodies]


def test_upload_file_part_sizes() -> None:
    """upload_file plans its parts as tristore cp does (validation.choose_part_size)."""
    from tristore.validation import MAX_PARTS, choose_part_size

    mib = 1024 * 1024
    assert choose_part_size(100 * mib, 8 * mib) == 8 * mib
    # 10,000 parts at most: a 100 GiB file gets parts of just over 10 MiB.
    size = 100 * 1024 * mib
    part = choose_part_size(size, 8 * mib)
    assert part > 8 * mib and -(-size // part) <= MAX_PARTS
    with pytest.raises(errors.InvalidArgument, match="5 MiB"):
        choose_part_size(10 * mib, mib)
