"""Long-lived request/answer streams between cluster processes ("pipes").

A unary gRPC call costs each side about three times what one message on an open
stream does (call set-up, headers, trailers). So a coordinator keeps one
bidirectional stream open to each peer it talks to (every storage node, every
witness) and sends its requests on it: each request carries an ``id`` that its
answer repeats, and answers may come back in any order. Together with
:class:`tristore.batcher.Batcher`, which puts what one event-loop turn produced for
a peer into one request, this is how many operations share one message.

:class:`PipeClient` is the sending end. A request that gets no answer within
its timeout fails, and so does the stream (every request waiting on it fails
too; the next request opens a new stream): a peer that does not answer one
request in time is as good as down. A broken stream fails every request waiting
on it in the same way; the caller maps that to its "peer unavailable" error.

:func:`serve` is the answering end's loop for a servicer whose handler may
wait (a commit waits for its fsync): requests are handled side by side and
answered as they finish. When the process stops, :func:`close_all` makes every
pipe stop reading, answer what it has, and end, so that peers move on at once
instead of waiting out the server's grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, Protocol, TypeVar

import grpc

from tristore.loops import LoopBound

log = logging.getLogger(__name__)


class Message(Protocol):
    id: int


Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class PipeBroken(Exception):
    """The stream to the peer failed, ended, or a request on it timed out."""


_ReqIn = TypeVar("_ReqIn", contravariant=True)
_RespOut = TypeVar("_RespOut", covariant=True)


class Conn(Protocol[_ReqIn]):
    """One open stream to a peer, as :class:`PipeClient` uses it."""

    def send(self, req: _ReqIn) -> None: ...

    def close(self) -> None: ...


class Opener(Protocol[_ReqIn, _RespOut]):
    """Opens a stream: each answer that arrives goes to ``on_answer``; when the
    stream fails or ends, ``on_broken`` gets why."""

    def __call__(
        self, on_answer: Callable[[_RespOut], None], on_broken: Callable[[str], None], /
    ) -> Conn[_ReqIn]: ...


class GrpcConn(Generic[Req, Resp]):
    """A pipe stream on a gRPC bidirectional call (``open_call``: a stub's
    stream-stream method, e.g. ``stub.Pipe``)."""

    def __init__(
        self,
        open_call: Callable[[AsyncIterator[Req]], Any],
        on_answer: Callable[[Resp], None],
        on_broken: Callable[[str], None],
    ) -> None:
        self._outgoing: asyncio.Queue[Req | None] = asyncio.Queue()
        self._on_answer = on_answer
        self._on_broken = on_broken
        self._call = open_call(self._requests())
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    def opener(cls, open_call: Callable[[AsyncIterator[Req]], Any]) -> Opener[Req, Resp]:
        return lambda on_answer, on_broken: cls(open_call, on_answer, on_broken)

    async def _requests(self) -> AsyncIterator[Req]:
        while (req := await self._outgoing.get()) is not None:
            yield req

    async def _read(self) -> None:
        why = "the stream ended"
        try:
            async for resp in self._call:
                self._on_answer(resp)
        except grpc.aio.AioRpcError as exc:
            why = f"{exc.code().name} {exc.details()}"
        except asyncio.CancelledError:
            why = "the stream was closed"
        except Exception as exc:  # noqa: BLE001 - any failure of the stream is a broken pipe
            why = f"{type(exc).__name__}: {exc}"
        self._on_broken(why)

    def send(self, req: Req) -> None:
        self._outgoing.put_nowait(req)

    def close(self) -> None:
        self._outgoing.put_nowait(None)
        self._call.cancel()


class _Stream(Generic[Req, Resp]):
    """One open stream: its connection and who waits for what."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[Resp]] = {}
        self.conn: Conn[Req] | None = None
        self.broken = False

    def answered(self, resp: Resp) -> None:
        fut = self.waiting.pop(resp.id, None)
        if fut is not None and not fut.done():
            fut.set_result(resp)

    def fail(self, why: str) -> None:
        """Fail every waiting request and end the stream."""
        if self.broken:
            return
        self.broken = True
        err = PipeBroken(why)
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(err)
        self.waiting.clear()
        if self.conn is not None:
            self.conn.close()


class PipeClient(Generic[Req, Resp]):
    """The sending end of a pipe to one peer; ``open`` opens a stream to it
    (:meth:`GrpcConn.opener`, or :func:`tristore.framed.opener`)."""

    def __init__(self, open: Opener[Req, Resp], timeout_s: float, peer: str) -> None:
        self._open = open
        self._timeout_s = timeout_s
        self._peer = peer
        self._ids = itertools.count(1)
        self._stream: _Stream[Req, Resp] | None = None
        self._loop = LoopBound()

    def _current(self) -> _Stream[Req, Resp]:
        stream = self._stream
        if stream is None or stream.broken:
            stream = self._stream = _Stream()
            stream.conn = self._open(stream.answered, stream.fail)
        return stream

    async def call(self, req: Req) -> Resp:
        """Send ``req`` and wait for its answer; PipeBroken if none comes."""
        stream = self._current()
        req.id = next(self._ids)
        loop = self._loop.loop
        fut: asyncio.Future[Resp] = loop.create_future()
        stream.waiting[req.id] = fut
        assert stream.conn is not None
        stream.conn.send(req)
        timer = loop.call_later(self._timeout_s, self._expire, stream, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    def _expire(self, stream: _Stream[Req, Resp], fut: asyncio.Future[Resp]) -> None:
        if not fut.done():
            stream.fail(f"no answer from {self._peer} within {self._timeout_s:.1f}s")

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.fail("the pipe was closed")


#: Set when this process stops: every open pipe answers what it has and ends.
#: One per event loop (a process runs one; tests may run several in turn).
_closing: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None


def closing() -> asyncio.Event:
    """Set once this process stops: a pipe's serving loop then ends."""
    global _closing
    loop = asyncio.get_running_loop()
    if _closing is None or _closing[0] is not loop:
        _closing = (loop, asyncio.Event())
    return _closing[1]


#: Serving loops that answer at once and end by being cancelled (see :func:`ends_on_close`).
_cancel_on_close: set[asyncio.Task[Any]] = set()


def close_all() -> None:
    """Make every pipe this process serves end (see the module docstring).
    Call it from the process's event loop."""
    closing().set()
    for task in list(_cancel_on_close):
        task.cancel()


@contextlib.contextmanager
def ends_on_close() -> Iterator[None]:
    """For a serving loop that answers each request at once (nothing is left
    half done when it stops between two): :func:`close_all` cancels it."""
    task = asyncio.current_task()
    assert task is not None
    if closing().is_set():
        raise asyncio.CancelledError
    _cancel_on_close.add(task)
    try:
        yield
    finally:
        _cancel_on_close.discard(task)


async def serve(
    requests: AsyncIterator[Req], handle: Callable[[Req], Coroutine[Any, Any, Resp]]
) -> AsyncIterator[Resp]:
    """Answer each request of a pipe with ``handle`` (which must answer, not
    raise: a failure is part of its answer), side by side, as each finishes."""
    stopping = closing()
    answers: asyncio.Queue[Resp | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    busy: set[asyncio.Task[Resp]] = set()
    reading = True

    def finished(task: asyncio.Task[Resp]) -> None:
        busy.discard(task)
        if task.cancelled():
            pass
        elif (exc := task.exception()) is not None:
            log.error("a pipe request failed without an answer", exc_info=exc)
        else:
            answers.put_nowait(task.result())
        if not reading and not busy:
            answers.put_nowait(None)

    async def pump() -> None:
        nonlocal reading
        try:
            async for req in requests:
                task = loop.create_task(handle(req))
                busy.add(task)
                task.add_done_callback(finished)
        finally:
            reading = False
            if not busy:
                answers.put_nowait(None)

    pumping = loop.create_task(pump())
    stopper = loop.create_task(stopping.wait())
    stopper.add_done_callback(lambda t: pumping.cancel() if not t.cancelled() else None)
    try:
        while (answer := await answers.get()) is not None:
            yield answer
    finally:
        stopper.cancel()
        pumping.cancel()
        for task in list(busy):
            task.cancel()
