"""Scrub: read every record and body chunk a node holds, verify its checksum
(node/records.py), and write a sound copy over each damaged one.

``tristore admin scrub`` runs one pass on every node at once, as fast as the
node reads; each node also runs a slow pass in the background every ``[node]
scrub_interval_s``, paced to ``scrub_bytes_per_s``. The store reads the
records (current ones, then versions) a step at a time on a read thread
(:meth:`~node.replica_store.ReplicaStore.scrub_page`), with the chunks of each
body they hold (a version record's body only when the key's current record
does not hold the same one).

What a step finds damaged is repaired before the next step:

- a record, by anti-entropy repair of its key (node/repair.py): the key's AZs
  are compared, this node's damaged copy counting as none, and the AZ is given
  what it lacks (a write takes a damaged record as absent);
- a chunk, by mending it (:meth:`~node.quorum.Quorum.mend_chunk`): the chunk
  is read from another node of the key's AZs that holds the body and written
  over the damaged one.

A whole-node pass (no bucket given) then reads the framed small values too
(:meth:`~node.replica_store.ReplicaStore.scrub_values`): change-log entries,
hints, removal and staging markers, counted as records in the report and by
their own ``kind`` in the metrics. A damaged hint or marker is written over
with what is known without it (:meth:`~node.replica_store.ReplicaStore.mend_value`);
a damaged change-log entry cannot be made again and is only reported: the
same commit is in the logs of the key's other AZs, which replicators and
event streams read too.

A value is counted repaired once this node reads it sound again. A block that
RocksDB itself cannot read while scanning (an SST file damaged on disk) ends
the scan of that family: it is reported as the node's error, since no
iterator reads past it (reads of single keys there still fail over to another
AZ); rebuild such a node (a new data directory, see ``admin repair``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from node import keys, records
from node.metrics import (
    CORRUPT_REPAIRED,
    SCRUB_CHECKED,
    SCRUB_CHECKED_BYTES,
    SCRUB_CORRUPT,
    SCRUB_PASSES,
)
from node.peers import RemoteReplica, ReplicaUnavailable
from node.repair import Repairer
from node.replica_store import ReplicaStore, ScrubPage
from tristore.config import NodeSection, NodeSpec
from tristore.errors import TristoreError
from tristore.model import ObjectVersion, ScrubReport

log = logging.getLogger(__name__)

#: A scrub's cursor: (raw key, chunk index) for records, the raw key for values.
_C = TypeVar("_C")


@dataclass
class _Tally:
    node: str
    records: int = 0
    chunks: int = 0
    read_bytes: int = 0
    bad_records: int = 0
    bad_chunks: int = 0
    repaired: int = 0
    error: str = ""

    def add(self, page: ScrubPage, kind: str = "") -> None:
        if kind:
            self.records += page.values
            self.read_bytes += page.read_bytes
            self.bad_records += len(page.bad_values) + int(bool(page.unreadable))
            SCRUB_CHECKED.labels(kind).inc(page.values)
            SCRUB_CHECKED_BYTES.inc(page.read_bytes)
            SCRUB_CORRUPT.labels(kind).inc(len(page.bad_values) + int(bool(page.unreadable)))
            return
        self.records += page.records
        self.chunks += page.chunks
        self.read_bytes += page.read_bytes
        self.bad_records += len(page.bad_records) + int(bool(page.unreadable))
        self.bad_chunks += len(page.bad_chunks)
        SCRUB_CHECKED.labels(records.RECORD).inc(page.records)
        SCRUB_CHECKED.labels(records.CHUNK).inc(page.chunks)
        SCRUB_CHECKED_BYTES.inc(page.read_bytes)
        SCRUB_CORRUPT.labels(records.RECORD).inc(len(page.bad_records) + int(bool(page.unreadable)))
        SCRUB_CORRUPT.labels(records.CHUNK).inc(len(page.bad_chunks))

    def report(self, done: bool = False) -> ScrubReport:
        return ScrubReport(
            node=self.node,
            records_checked=self.records,
            chunks_checked=self.chunks,
            bytes_checked=self.read_bytes,
            corrupt_records=self.bad_records,
            corrupt_chunks=self.bad_chunks,
            repaired=self.repaired,
            error=self.error,
            done=done,
        )


def _families(bucket: str) -> list[bytes]:
    """The raw-key prefixes a scrub reads: current records, then versions."""
    if not bucket:
        return [keys.OBJECT, keys.VERSION]
    return [keys.object_prefix(bucket), keys.version_prefix(bucket, prefix="")]


#: The families of framed small values a whole-node scrub reads after the
#: records, with their kind (node/records.py).
_VALUE_FAMILIES = (
    (keys.LOG, records.LOG),
    (keys.HINT, records.HINT),
    (keys.REMOVED, records.MARKER),
    (keys.STAGED, records.MARKER),
)


def _split(raw_key: bytes) -> tuple[str, str]:
    if raw_key.startswith(keys.VERSION):
        bucket, key, _ = keys.split_version_key(raw_key)
        return bucket, key
    return keys.split_object_key(raw_key)


class Scrubber:
    """Scrubs this node's store; repairs through this node's repairer and quorum."""

    def __init__(
        self, store: ReplicaStore, repairer: Repairer, cfg: NodeSection, me: NodeSpec
    ) -> None:
        self.store = store
        self.repairer = repairer
        self.cfg = cfg
        self.me = me

    async def run(self, bucket: str = "", paced: bool = False) -> AsyncIterator[ScrubReport]:
        """One pass over this node's records (of ``bucket``, or all) and their
        bodies: a report after each step, then the final one (``done``).
        ``paced``: no faster than ``scrub_bytes_per_s``."""
        tally = _Tally(self.me.name)
        started = asyncio.get_running_loop().time()
        for prefix in _families(bucket):
            async for report in self._run_records(prefix, tally, paced, started):
                yield report
        if not bucket:
            for prefix, kind in _VALUE_FAMILIES:
                async for report in self._run_values(prefix, kind, tally, paced, started):
                    yield report
        final = tally.report(done=True)
        log.info(
            "scrub of %s%s: %d records, %d chunks (%d bytes) checked; %d damaged records, "
            "%d damaged chunks, %d repaired",
            self.me.name,
            f" (bucket {bucket})" if bucket else "",
            final.records_checked,
            final.chunks_checked,
            final.bytes_checked,
            final.corrupt_records,
            final.corrupt_chunks,
            final.repaired,
        )
        yield final

    async def _run_records(
        self, prefix: bytes, tally: _Tally, paced: bool, started: float
    ) -> AsyncIterator[ScrubReport]:
        async def read(cursor: tuple[bytes, int] | None) -> ScrubPage:
            return await self.store.scrub_page(
                prefix, cursor, self.cfg.scrub_step_bytes, self.cfg.repair_scan_batch
            )

        async def check(page: ScrubPage) -> None:
            tally.add(page)
            await self._repair(page, tally)

        async for report in self._pages(read, check, lambda c: c, tally, paced, started):
            yield report

    async def _run_values(
        self, prefix: bytes, kind: str, tally: _Tally, paced: bool, started: float
    ) -> AsyncIterator[ScrubReport]:
        async def read(cursor: bytes | None) -> ScrubPage:
            return await self.store.scrub_values(
                prefix, kind, cursor, self.cfg.scrub_step_bytes, self.cfg.repair_scan_batch
            )

        async def check(page: ScrubPage) -> None:
            tally.add(page, kind)
            for k in page.bad_values:
                if await self.store.mend_value(k):
                    tally.repaired += 1
                    CORRUPT_REPAIRED.labels(kind).inc()
                else:
                    log.warning("scrub of %s: %s %r is damaged", self.me.name, kind, k)

        async for report in self._pages(read, check, lambda c: c[0], tally, paced, started):
            yield report

    async def _pages(
        self,
        read: Callable[[_C | None], Awaitable[ScrubPage]],
        check: Callable[[ScrubPage], Awaitable[None]],
        resume: Callable[[tuple[bytes, int]], _C],
        tally: _Tally,
        paced: bool,
        started: float,
    ) -> AsyncIterator[ScrubReport]:
        """One family a step at a time: ``read`` a page from the cursor (None:
        the first), ``check`` it (count it, repair what is damaged), a report
        after each, until the end or a block RocksDB cannot read past;
        ``resume`` makes a page's cursor the next read's. ``paced``: no faster
        than ``scrub_bytes_per_s`` since ``started`` (loop time)."""
        loop = asyncio.get_running_loop()
        cursor: _C | None = None
        while True:
            page = await read(cursor)
            await check(page)
            if page.unreadable:
                tally.error = (
                    f"RocksDB could not read past a damaged block (after {cursor!r}): "
                    f"{page.unreadable}; rebuild this node from the other AZs"
                )
                log.error("scrub of %s: %s", self.me.name, tally.error)
            yield tally.report()
            if page.unreadable or page.cursor is None:
                return
            cursor = resume(page.cursor)
            if paced:
                ahead = tally.read_bytes / self.cfg.scrub_bytes_per_s - (loop.time() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)

    async def _repair(self, page: ScrubPage, tally: _Tally) -> None:
        for bucket, key in dict.fromkeys(_split(k) for k in page.bad_records):
            await self.repairer.repair_key(bucket, key)
        for k in page.bad_records:
            if await self.store.record_sound(k):
                tally.repaired += 1
                CORRUPT_REPAIRED.labels(records.RECORD).inc()
            else:
                log.warning("scrub of %s: record %r is still damaged", self.me.name, k)
        for v, index in page.bad_chunks:
            if await self._mend(v, index):
                tally.repaired += 1

    async def _mend(self, v: ObjectVersion, index: int) -> bool:
        coord = self.repairer.coord
        placement = coord.placer.place(v.bucket, v.key)
        nodes = [n for azr in placement.azs for n in coord.quorum.candidates(azr)]
        holders = [coord.peers.replica(n) for n in nodes if n.name != self.me.name]
        try:
            return await coord.quorum.mend_chunk(coord.peers.replica(self.me), v, index, holders)
        except (TristoreError, ReplicaUnavailable) as exc:
            log.warning(
                "scrub of %s: chunk %d of %s/%s not mended: %s",
                self.me.name,
                index,
                v.bucket,
                v.key,
                exc,
            )
            return False

    async def run_forever(self) -> None:
        """The background scrub: a paced pass every ``scrub_interval_s``,
        counted from the end of the last one (kept across restarts)."""
        interval_ms = int(self.cfg.scrub_interval_s * 1000)
        if interval_ms <= 0:
            return
        while True:
            now = self.store.wall_ms()
            last = self.store.scrub_done_ms or self.store.created_ms or now
            await asyncio.sleep(max(1.0, (last + interval_ms - now) / 1000))
            try:
                async for _ in self.run(paced=True):
                    pass
            except Exception:
                log.exception("background scrub of %s failed", self.me.name)
            SCRUB_PASSES.inc()
            await self.store.note_scrubbed(self.store.wall_ms())


async def scrub_nodes(
    local: Scrubber, remotes: Sequence[RemoteReplica], bucket: str
) -> AsyncIterator[ScrubReport]:
    """Every node's scrub at once (this node's and each of ``remotes``, the
    peers' ``scrub`` streams), their reports merged as they come. A node that
    does not answer ends with a final report naming the error. A ``bucket``
    that does not exist is NoSuchBucket before any node starts, as a repair
    of it is (each node's own pass would find nothing and report zeros)."""
    if bucket:
        await local.repairer.coord.head_bucket(bucket)  # NoSuchBucket
    queue: asyncio.Queue[ScrubReport | None] = asyncio.Queue()

    async def pump(name: str, reports: AsyncIterator[ScrubReport]) -> None:
        done = False
        try:
            async for report in reports:
                done = done or report.done
                await queue.put(report)
        except (TristoreError, ReplicaUnavailable) as exc:
            log.warning("scrub of %s failed: %s", name, exc)
            if not done:
                await queue.put(ScrubReport(name, error=str(exc), done=True))
        finally:
            await queue.put(None)

    streams = [(local.me.name, local.run(bucket))]
    streams += [(r.spec.name, r.scrub(bucket)) for r in remotes]
    tasks = [asyncio.create_task(pump(name, s)) for name, s in streams]
    try:
        ended = 0
        while ended < len(tasks):
            item = await queue.get()
            if item is None:
                ended += 1
            else:
                yield item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
