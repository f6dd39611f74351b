"""Coalescing of single requests into batched calls.

While a call to a peer is in flight, new requests for it queue; when the call
returns, the next one carries everything queued meanwhile (up to a maximum).
There is no timer by default: a lone request goes out at once, so an idle
system adds no latency, and under load each call carries what one round
trip's worth of concurrent requests produced. The witness client, the replica
client and the replicator (batched applies and status updates) use it.

A ``linger`` is for requests no one waits on in a hurry (a replicator's status
updates): a call leaves once it is full or its requests have waited that long,
so at a moderate rate one call carries a linger's worth of requests, where
without it each would go nearly alone and cost its receiver the whole of a
write each. Under load the calls fill and nothing waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram

from tristore.loops import LoopBound

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Batcher(Generic[Req, Resp]):
    """Coalesces single requests into batched calls, ``max_inflight`` calls at a time
    (the size of each observed in ``sizes``).

    ``send`` gets a list of requests and answers a list of the same length: a
    result, or an exception instance for a request that failed on its own. An
    exception raised by ``send`` fails every request of that call."""

    def __init__(
        self,
        send: Callable[[list[Req]], Awaitable[Sequence[Resp | BaseException]]],
        max_batch: int,
        max_inflight: int = 1,
        sizes: Histogram | None = None,
        linger_s: float = 0.0,
    ) -> None:
        self._send = send
        self._linger = linger_s
        #: Set while a call lingers: resolved when the queue fills.
        self._filling: asyncio.Future[None] | None = None
        #: When what is queued started to wait (the loop's time).
        self._since = 0.0
        self._sizes = sizes
        self._max = max_batch
        self._max_inflight = max_inflight
        self._pending: list[tuple[Req, asyncio.Future[Resp]]] = []
        self._running = 0
        #: Requests in the calls in flight (sent, not yet answered).
        self.sending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = LoopBound()

    def submit(self, item: Req) -> asyncio.Future[Resp]:
        loop = self._loop.loop
        fut: asyncio.Future[Resp] = loop.create_future()
        if self._linger and not self._pending:
            self._since = loop.time()
        self._pending.append((item, fut))
        filling = self._filling
        if filling is not None:
            if len(self._pending) >= self._max and not filling.done():
                filling.set_result(None)
            return fut  # the lingering call takes it
        if self._running < self._max_inflight:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)  # held: the loop keeps only a weak reference
            task.add_done_callback(self._tasks.discard)
        return fut

    async def _linger_for_more(self) -> None:
        """Wait until the queue is full or its requests have waited the linger."""
        loop = self._loop.loop
        wait = self._since + self._linger - loop.time()
        if wait <= 0 or len(self._pending) >= self._max:
            return
        self._filling = loop.create_future()
        try:
            await asyncio.wait((self._filling,), timeout=wait)
        finally:
            self._filling = None

    async def _drain(self) -> None:
        try:
            while self._pending:
                if self._linger > 0:
                    if self._filling is not None:
                        return  # another call lingers: it takes what is queued
                    await self._linger_for_more()
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                if self._linger > 0:
                    self._since = self._loop.loop.time()
                batch = [(item, fut) for item, fut in batch if not fut.cancelled()]
                if not batch:
                    continue
                if self._sizes is not None:
                    self._sizes.observe(len(batch))
                self.sending += len(batch)
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every waiter of the batch gets it
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                finally:
                    self.sending -= len(batch)
                for (_, fut), result in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self._running -= 1
