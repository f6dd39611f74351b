"""The SDK's event subscription against a scripted in-process EventService: it
resumes on another endpoint from the last cursor it received, gives up on
errors that retrying cannot change, and checks its input before any call. The
CLI's parsing and line format of `events tail`. (The real node is exercised by
tests/integration/test_events.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tristore import errors
from tristore.cli.events import format_event, parse_target
from tristore.client import AsyncClient, Client, RetryPolicy
from tristore.events import Event, Heartbeat
from tristore.pb import events_pb2 as pb
from tristore.pb import events_pb2_grpc
from tristore.server import SERVER_OPTIONS, Interceptor

pytestmark = pytest.mark.unit

FAST = RetryPolicy(base_s=0.001, cap_s=0.002)


def _event(i: int) -> pb.Event:
    return pb.Event(name="ObjectCreated:Put", bucket="bkt", key=f"k{i}", version_id=f"v{i}")


@dataclass
class Script(events_pb2_grpc.EventServiceServicer):
    """Each Subscribe call plays the next script: messages, then an error (or none)."""

    plays: list[tuple[list[pb.SubscribeResponse], errors.TristoreError | None]] = field(
        default_factory=list
    )
    requests: list[pb.SubscribeRequest] = field(default_factory=list)

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Any
    ) -> AsyncIterator[pb.SubscribeResponse]:
        copy = pb.SubscribeRequest()
        copy.CopyFrom(request)
        self.requests.append(copy)
        messages, err = self.plays.pop(0) if self.plays else ([], None)
        for m in messages:
            yield m
        if err is not None:
            raise err
        await asyncio.sleep(30)  # an open stream with nothing to say


async def _serve(script: Script, check: Callable[[int], Awaitable[None]]) -> None:
    server = grpc.aio.server(interceptors=[Interceptor()], options=SERVER_OPTIONS)
    events_pb2_grpc.add_EventServiceServicer_to_server(script, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await asyncio.wait_for(check(port), 20)
    finally:
        await server.stop(None)


def run(script: Script, check: Callable[[int], Awaitable[None]]) -> None:
    asyncio.run(_serve(script, check))


def test_a_broken_stream_resumes_on_the_next_endpoint_from_the_last_cursor() -> None:
    script = Script(
        plays=[
            (
                [
                    pb.SubscribeResponse(cursor="c0"),
                    pb.SubscribeResponse(event=_event(1), has_event=True, cursor="c1"),
                    pb.SubscribeResponse(event=_event(2), has_event=True, cursor="c2"),
                ],
                errors.ServiceUnavailable("node going down"),
            ),
            ([pb.SubscribeResponse(event=_event(3), has_event=True, cursor="c3")], None),
        ]
    )
    got: list[Event | Heartbeat] = []

    async def check(port: int) -> None:
        eps = [f"127.0.0.1:{port}", f"localhost:{port}"]
        async with AsyncClient(eps, retry=FAST) as c:
            async for m in c.subscribe_events("bkt", "k", from_start=True, heartbeats=True):
                got.append(m)
                if len(got) == 4:
                    break

    run(script, check)
    assert got[0] == Heartbeat("c0")
    assert [(m.key, m.cursor) for m in got[1:] if isinstance(m, Event)] == [
        ("k1", "c1"),
        ("k2", "c2"),
        ("k3", "c3"),
    ]
    first, second = script.requests
    assert (first.bucket, first.prefix, first.cursor, first.from_start) == ("bkt", "k", "", True)
    assert (second.cursor, second.from_start) == ("c2", False)


def test_heartbeats_are_left_out_unless_asked_for() -> None:
    script = Script(
        plays=[
            (
                [
                    pb.SubscribeResponse(cursor="c0"),
                    pb.SubscribeResponse(event=_event(1), has_event=True, cursor="c1"),
                ],
                None,
            )
        ]
    )

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            messages = c.subscribe_events("bkt")
            first = await anext(messages)
            await messages.aclose()  # type: ignore[attr-defined]
        assert isinstance(first, Event) and first.cursor == "c1"

    run(script, check)


def test_an_error_retrying_cannot_change_is_raised_at_once() -> None:
    script = Script(plays=[([], errors.NoSuchBucket("bucket 'bkt' does not exist"))] * 3)

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=FAST) as c:
            with pytest.raises(errors.NoSuchBucket, match="does not exist"):
                async for _ in c.subscribe_events("bkt"):
                    pass

    run(script, check)
    assert len(script.requests) == 1


def test_failures_in_a_row_are_bounded() -> None:
    script = Script(plays=[([], errors.ServiceUnavailable("down"))] * 20)

    async def check(port: int) -> None:
        async with AsyncClient(f"127.0.0.1:{port}", retry=RetryPolicy(3, base_s=0.001)) as c:
            with pytest.raises(errors.ServiceUnavailable):
                async for _ in c.subscribe_events("bkt"):
                    pass

    run(script, check)
    assert len(script.requests) == 3


def test_input_is_checked_before_any_call(refused_endpoint: str) -> None:
    with Client(refused_endpoint) as c:
        with pytest.raises(errors.InvalidArgument, match="not both"):
            c.subscribe_events("bkt", cursor="abc", from_start=True)
        with pytest.raises(errors.InvalidBucketName):
            c.subscribe_events("Bad_Bucket")
        with pytest.raises(errors.InvalidArgument, match="heartbeat_s"):
            c.subscribe_events("bkt", heartbeat_s=0.01)
        with pytest.raises(errors.InvalidArgument, match="longer than a key"):
            c.subscribe_events("bkt", "x" * 1025)


# -- the CLI -------------------------------------------------------------------------


def test_tail_target_takes_a_url_or_a_bare_bucket_and_one_prefix() -> None:
    assert parse_target("s3://photos", None) == ("photos", "")
    assert parse_target("s3://photos/2024/", None) == ("photos", "2024/")
    assert parse_target("photos", "2024/") == ("photos", "2024/")
    with pytest.raises(errors.InvalidArgument, match="prefix once"):
        parse_target("s3://photos/a", "b")
    with pytest.raises(errors.InvalidBucketName):
        parse_target("No_Such", None)


def test_tail_line_format() -> None:
    t = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    put = Event("ObjectCreated:Put", "b", "cat.jpg", "v1", 1234, "e", "s", t)
    gone = Event("ObjectRemoved:DeleteMarkerCreated", "b", "cat.jpg", "v2", 0, "", "s", t)
    assert format_event(put).split()[-4:] == ["ObjectCreated:Put", "1234", "v1", "cat.jpg"]
    assert format_event(gone).split()[-4:] == [
        "ObjectRemoved:DeleteMarkerCreated",
        "-",
        "v2",
        "cat.jpg",
    ]
