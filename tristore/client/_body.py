"""PUT bodies: bytes, binary files and (async) iterables, cut into wire chunks.

A body knows its declared size (-1 when unknown) and whether it can be sent
again from the start: only then may a failed PUT be retried.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, BinaryIO, Protocol

from tristore import errors

#: Bytes per PutObjectRequest message.
CHUNK_SIZE = 1024 * 1024

BytesLike = bytes | bytearray | memoryview
#: What ``put_object`` accepts as data.
BodyInput = BytesLike | BinaryIO | AsyncIterable[bytes] | Iterable[bytes]


class Body(Protocol):
    size: int
    #: The body can be sent again from its start (bytes, seekable files).
    replayable: bool
    #: Some of the body has been taken from its source. Until then even a
    #: one-shot body may be sent on another attempt.
    started: bool

    def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body from its start, in chunks of at most CHUNK_SIZE bytes."""
        ...


def make_body(data: object) -> Body:
    if isinstance(data, str):
        raise errors.InvalidArgument("object data must be bytes, not str: encode it first")
    if isinstance(data, bytes | bytearray | memoryview):
        return BytesBody(data)
    if isinstance(data, io.TextIOBase):
        raise errors.InvalidArgument("object data is a text file: open it in binary mode ('rb')")
    if hasattr(data, "read"):
        return FileBody(data)
    if hasattr(data, "__aiter__"):
        return AsyncIterBody(data)
    if hasattr(data, "__iter__"):
        return AsyncIterBody(_from_sync(iter(data)))
    raise errors.InvalidArgument(
        "object data must be bytes, a binary file object or an iterable of bytes, "
        f"not {type(data).__name__}"
    )


def _as_bytes(piece: object) -> memoryview:
    if not isinstance(piece, bytes | bytearray | memoryview):
        raise errors.InvalidArgument(f"object data must yield bytes, got {type(piece).__name__}")
    return memoryview(piece).cast("B")


class BytesBody:
    replayable = True
    started = False

    def __init__(self, data: BytesLike) -> None:
        self._data = data if isinstance(data, bytes) else memoryview(data).cast("B")
        self.size = len(self._data)

    def whole(self) -> bytes:
        """The body in one piece (a small body sent in one message)."""
        return self._data if isinstance(self._data, bytes) else bytes(self._data)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        data = self._data
        if isinstance(data, bytes) and 0 < len(data) <= CHUNK_SIZE:
            yield data  # the common small PUT: no copy
            return
        for i in range(0, self.size, CHUNK_SIZE):
            yield bytes(data[i : i + CHUNK_SIZE])


class FileBody:
    """A binary file. Seekable files declare their size (from the current
    position to the end) and are replayable; pipes are neither. Reads run in a
    worker thread so a slow disk or pipe never blocks the event loop."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._start = -1
        try:
            seekable = bool(f.seekable())
        except (AttributeError, OSError, ValueError):
            seekable = False
        if seekable:
            self._start = f.tell()
            end = f.seek(0, io.SEEK_END)
            f.seek(self._start)
            self.size = max(0, end - self._start)
        else:
            self.size = -1
        self.replayable = seekable
        self.started = False

    async def _io(self, fn: Any, *args: Any) -> Any:
        if isinstance(self._f, io.BytesIO):
            return fn(*args)  # in memory: a thread hop would cost more than the call
        return await asyncio.to_thread(fn, *args)

    async def _read(self, n: int) -> memoryview:
        piece = await self._io(self._f.read, n)
        if piece is None:
            raise errors.InvalidArgument("the file is in non-blocking mode and had no data ready")
        return _as_bytes(piece)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        self.started = True
        if not self.replayable:
            async for c in rechunk(self._unbounded()):
                yield c
            return
        await self._io(self._f.seek, self._start)
        # Never send more than was declared; if the file shrinks, the server
        # sees a short body and refuses it.
        async for c in rechunk(self._bounded(self.size)):
            yield c

    async def _bounded(self, left: int) -> AsyncIterator[memoryview]:
        if left == 0 and await self._read(1):
            self._grew()
        while left > 0:
            # The last read asks for one byte more: a file that grew since the
            # upload began is refused before its declared size has all gone
            # out (a body cut at the declared size would be stored whole).
            last = left <= CHUNK_SIZE
            piece = await self._read(left + 1 if last else CHUNK_SIZE)
            if not piece:
                return
            if len(piece) > left:
                self._grew()
            left -= len(piece)
            yield piece

    def _grew(self) -> None:
        raise errors.InvalidArgument(
            f"the file grew while it was being sent (beyond the {self.size} bytes it had "
            "when the upload began); nothing was stored: send it again once it stops changing"
        )

    async def _unbounded(self) -> AsyncIterator[memoryview]:
        while True:
            piece = await self._read(CHUNK_SIZE)
            if not piece:
                return
            yield piece


class AsyncIterBody:
    """An (async) iterable of bytes: streamed once, size unknown, never replayed."""

    replayable = False
    size = -1

    def __init__(self, source: AsyncIterable[Any]) -> None:
        self._source: AsyncIterable[Any] | None = source
        self.started = False

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        self.started = True
        source, self._source = self._source, None
        if source is None:
            raise RuntimeError("a streamed body can be sent only once")

        async def pieces() -> AsyncIterator[memoryview]:
            async for piece in source:
                yield _as_bytes(piece)

        async for c in rechunk(pieces()):
            yield c


async def _from_sync(it: Iterator[Any]) -> AsyncIterator[Any]:
    """Drain a blocking iterator from a worker thread (it may read a pipe)."""
    done = object()
    while True:
        item = await asyncio.to_thread(next, it, done)
        if item is done:
            return
        yield item


async def rechunk(
    pieces: AsyncIterator[memoryview], size: int = CHUNK_SIZE
) -> AsyncIterator[bytes]:
    """Coalesce small pieces and split large ones into chunks of ``size`` bytes
    (the last may be shorter). Tiny writes would otherwise cost a message each,
    and one huge piece would exceed the gRPC message limit."""
    buf = bytearray()
    async for mv in pieces:
        pos = 0
        if buf:
            take = min(size - len(buf), len(mv))
            buf += mv[:take]
            pos = take
            if len(buf) < size:
                continue
            yield bytes(buf)
            buf = bytearray()
        while len(mv) - pos >= size:
            yield bytes(mv[pos : pos + size])
            pos += size
        if pos < len(mv):
            buf += mv[pos:]
    if buf:
        yield bytes(buf)
