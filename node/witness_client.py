"""The coordinator's view of the witness fleet.

Keys are spread over witness groups by hash; inside a group every read and
write goes to all members and waits for a majority. Concurrent requests to one
witness are coalesced: while a call is in flight, new keys queue, and the next
call carries all of them (no timer, so an idle system adds no latency).

A majority read answers a stamp only if every member in that majority knows the
key; any "unknown" (a restarted or forgetful witness), or no majority at all,
answers unknown, which sends the reader to the storage nodes. Recording needs a
majority: without one the write cannot be promised to readers, and it fails.

Records are fenced by incarnation. A restarted witness knows nothing, and must
not come to answer a stamp older than one its earlier life was told: a record
sent late (queued behind a call to the dead process, or from a slow writer)
could do exactly that. So each record carries the incarnation of the witness
the coordinator knew when the change (or the read that finishes it) *began*,
its :data:`Fence`; the witness refuses any other. A change that began after
the coordinator heard of an incarnation began after that witness restarted,
so its stamp is above everything acknowledged before the restart (a committed
change is above everything its three AZs held). When a majority refuses, the
coordinator takes a new fence, reads the nodes and records what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc

from node.metrics import WITNESS_CALLS, WITNESS_FENCED, WITNESS_UNKNOWN
from tristore.config import ClusterConfig, WitnessSpec
from tristore.errors import QuorumUnavailable
from tristore.pb import witness_pb2, witness_pb2_grpc
from tristore.server import CHANNEL_OPTIONS
from tristore.stamps import ENCODED_SIZE, Stamp

log = logging.getLogger(__name__)

UNKNOWN = bytes(ENCODED_SIZE)
#: The incarnations of a key's witness group, as known when a change began (0: never heard).
Fence = tuple[int, ...]
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def witness_key(bucket: str, key: str) -> bytes:
    return bucket.encode() + b"\x00" + key.encode()


class Batcher(Generic[Req, Resp]):
    """Coalesces single requests into batched calls, one call in flight at a time."""

    def __init__(self, send: Callable[[list[Req]], Awaitable[list[Resp]]], max_batch: int) -> None:
        self._send = send
        self._max = max_batch
        self._pending: list[tuple[Req, asyncio.Future[Resp]]] = []
        self._running = False

    def submit(self, item: Req) -> asyncio.Future[Resp]:
        fut: asyncio.Future[Resp] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every waiter of the batch gets it
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self._running = False


class WitnessConn:
    def __init__(self, spec: WitnessSpec, timeout_s: float, max_batch: int) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.channel = grpc.aio.insecure_channel(spec.grpc, options=CHANNEL_OPTIONS)
        self.stub = witness_pb2_grpc.WitnessServiceStub(self.channel)
        #: The incarnation this process last heard of (0: none yet).
        self.incarnation = 0
        self.checks: Batcher[bytes, bytes] = Batcher(self._check, max_batch)
        self.records: Batcher[tuple[bytes, bytes, int], bool] = Batcher(self._record, max_batch)

    def _heard(self, incarnation: int) -> None:
        if incarnation != self.incarnation:
            if self.incarnation:
                log.info("witness %s has a new incarnation %x", self.spec.name, incarnation)
            self.incarnation = incarnation

    async def learn(self) -> None:
        """Ask the witness its incarnation (so first records are not refused)."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            self._heard((await self.status()).incarnation)

    async def _check(self, keys: list[bytes]) -> list[bytes]:
        WITNESS_CALLS.labels("check").inc()
        resp = await self.stub.Check(witness_pb2.CheckRequest(keys=keys), timeout=self.timeout_s)
        self._heard(resp.incarnation)
        raw = resp.stamps
        if len(raw) != ENCODED_SIZE * len(keys):
            raise ValueError(
                f"witness {self.spec.name} answered {len(raw)} bytes for {len(keys)} keys"
            )
        return [raw[i * ENCODED_SIZE : (i + 1) * ENCODED_SIZE] for i in range(len(keys))]

    async def _record(self, items: list[tuple[bytes, bytes, int]]) -> list[bool]:
        """Record each (key, stamp, incarnation); True for each the witness took."""
        WITNESS_CALLS.labels("record").inc()
        resp = await self.stub.Record(
            witness_pb2.RecordRequest(
                keys=[k for k, _, _ in items],
                stamps=b"".join(s for _, s, _ in items),
                incarnations=[i for _, _, i in items],
            ),
            timeout=self.timeout_s,
        )
        self._heard(resp.incarnation)
        refused = set(resp.refused)
        if refused:
            WITNESS_FENCED.inc(len(refused))
        return [i not in refused for i in range(len(items))]

    async def status(self) -> witness_pb2.WitnessStatusResponse:
        return await self.stub.Status(witness_pb2.WitnessStatusRequest(), timeout=self.timeout_s)

    async def close(self) -> None:
        await self.channel.close()


async def _first_majority(
    futures: list[asyncio.Future[bytes]], need: int, stop_on: Callable[[bytes], bool]
) -> list[bytes] | None:
    """Results of the first ``need`` members to answer, or None when that many
    cannot answer, or as soon as one answer satisfies ``stop_on``."""
    got: list[bytes] = []
    failed = 0
    for next_done in asyncio.as_completed(futures):
        try:
            result = await next_done
        except Exception:  # noqa: BLE001 - a member that failed is a member that did not answer
            failed += 1
            if len(futures) - failed < need:
                return None
            continue
        if stop_on(result):
            return [result]
        got.append(result)
        if len(got) >= need:
            return got
    return None


class WitnessFleet:
    def __init__(self, cfg: ClusterConfig) -> None:
        self.groups = [
            [WitnessConn(w, cfg.witness.timeout_s, cfg.witness.max_batch) for w in members]
            for members in cfg.witness_groups
        ]

    def group_of(self, wkey: bytes) -> list[WitnessConn]:
        h = int.from_bytes(hashlib.blake2b(wkey, digest_size=8).digest(), "big")
        return self.groups[h % len(self.groups)]

    async def check(self, bucket: str, key: str) -> Stamp | None:
        """The newest acknowledged stamp of the key, or None for unknown."""
        wkey = witness_key(bucket, key)
        members = self.group_of(wkey)
        futures = [m.checks.submit(wkey) for m in members]
        answers = await _first_majority(futures, len(members) // 2 + 1, lambda s: s == UNKNOWN)
        for fut in futures:
            # Late answers are not needed; keep their errors from being logged as unretrieved.
            fut.add_done_callback(_consume)
        if answers is None or UNKNOWN in answers:
            WITNESS_UNKNOWN.inc()
            return None
        return Stamp.decode(max(answers))

    def fence(self, bucket: str, key: str) -> Fence:
        """What this process knows of the key's witnesses now; take it before a
        change (or a read that may finish one) begins, and record under it."""
        return tuple(m.incarnation for m in self.group_of(witness_key(bucket, key)))

    async def learn(self) -> None:
        await asyncio.gather(*(m.learn() for g in self.groups for m in g))

    async def record(self, bucket: str, key: str, stamp: Stamp, fence: Fence) -> bool:
        """Record ``stamp`` at a majority of the key's group under ``fence``.

        True when a majority took it; False when enough answered but too few
        took it (witnesses restarted since ``fence``: take a new fence and
        record what the nodes hold); QuorumUnavailable when too few answered.
        """
        wkey = witness_key(bucket, key)
        members = self.group_of(wkey)
        encoded = stamp.encode()
        futures = [
            m.records.submit((wkey, encoded, inc)) for m, inc in zip(members, fence, strict=True)
        ]
        need = len(members) // 2 + 1
        took = refused = 0
        try:
            for next_done in asyncio.as_completed(futures):
                try:
                    ok = await next_done
                except Exception:  # noqa: BLE001 - a member that failed did not answer
                    continue
                else:
                    took += ok
                    refused += not ok
                if took >= need:
                    break  # the rest need not be waited for
        finally:
            for fut in futures:
                fut.add_done_callback(_consume)
        if took >= need:
            return True
        if took + refused >= need:
            return False
        names = ", ".join(m.spec.name for m in members)
        raise QuorumUnavailable(
            f"no majority of witness group {members[0].spec.group} ({names}) answered; "
            "the write is durable on the storage nodes but could not be confirmed, retry"
        )

    async def close(self) -> None:
        await asyncio.gather(*(m.close() for g in self.groups for m in g))


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
