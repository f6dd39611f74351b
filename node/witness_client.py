"""The coordinator's view of the witness fleet.

Keys are spread over witness groups by hash. Inside a group a record goes to
every member and waits for a majority; a check goes to a bare majority (each
coordinator starting at a different member) and to another member only when one
of them fails or is slow; a member that looks hung or down to this node is
asked last. Every coordinator keeps one long-lived stream to each witness
(tristore/pipe.py), and concurrent requests share its messages: while one is in
flight, new checks and records queue, and the next message carries all of them
(no timer, so an idle system adds no latency).

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
import math
from collections.abc import Callable

import grpc

from node.metrics import PEER_BATCH_SIZE, WITNESS_CALLS, WITNESS_FENCED, WITNESS_UNKNOWN
from tristore import errors, framed
from tristore.batcher import Batcher
from tristore.config import ClusterConfig, WitnessSpec
from tristore.errors import QuorumUnavailable
from tristore.loops import LoopBound
from tristore.pb import witness_pb2, witness_pb2_grpc
from tristore.pipe import PipeBroken, PipeClient
from tristore.server import cluster_channel, peer_pipe
from tristore.stamps import ENCODED_SIZE, Stamp

log = logging.getLogger(__name__)

UNKNOWN = bytes(ENCODED_SIZE)
#: The incarnations of a key's witness group, as known when a change began (0: never heard).
Fence = tuple[int, ...]


def witness_key(bucket: str, key: str) -> bytes:
    return bucket.encode() + b"\x00" + key.encode()


#: How long a witness whose message failed is asked after the others.
FAILED_LAST_S = 1.0

_CHECK_CALLS = WITNESS_CALLS.labels("check")
_RECORD_CALLS = WITNESS_CALLS.labels("record")

#: One operation for a witness: (key, encoded stamp to record or None to check,
#: the incarnation the record is fenced by).
_Op = tuple[bytes, bytes | None, int]


class WitnessConn:
    def __init__(
        self,
        spec: WitnessSpec,
        cfg: ClusterConfig,
        me: str,
        channel: Callable[[str], grpc.aio.Channel] | None = None,
    ) -> None:
        """``channel``: see :class:`WitnessFleet`."""
        self.spec = spec
        self.timeout_s = cfg.witness.timeout_s
        self.channel = (
            channel(spec.grpc) if channel is not None else cluster_channel(cfg, me, spec.grpc)
        )
        self.stub = witness_pb2_grpc.WitnessServiceStub(self.channel)
        #: The incarnation this process last heard of (0: none yet).
        self.incarnation = 0
        # Checks and records of concurrent requests share one message on one
        # long-lived stream to the witness's pipe port (tristore/pipe.py).
        opener = peer_pipe(
            cfg,
            me,
            spec.grpc,
            framed.WITNESS_PIPE,
            witness_pb2.WitnessPipeResponse.FromString,
            self.stub.Pipe,
            simulated=channel is not None,
        )
        self._pipe: PipeClient[witness_pb2.WitnessPipeRequest, witness_pb2.WitnessPipeResponse] = (
            PipeClient(opener, self.timeout_s, spec.name)
        )
        self._ops: Batcher[_Op, bytes | bool] = Batcher(
            self._send, cfg.witness.max_batch, sizes=PEER_BATCH_SIZE.labels("witness")
        )
        self._lag_s = cfg.witness.check_hedge_s
        #: When the message in flight was sent (None: none is), and when the
        #: last one failed (the loop's clock).
        self._sent_at: float | None = None
        self._failed_at = -math.inf
        self._loop = LoopBound()

    def lagging(self, now: float) -> bool:
        """Whether this witness looks hung or down: a message of ours has gone
        unanswered for longer than ``[witness] check_hedge_s``, or one failed
        within the last :data:`FAILED_LAST_S`. Checks ask such a member last,
        so they do not wait out their hedge on it (:meth:`WitnessFleet._ask_order`)."""
        sent = self._sent_at
        return (sent is not None and now - sent > self._lag_s) or (
            now - self._failed_at < FAILED_LAST_S
        )

    def check(self, wkey: bytes) -> asyncio.Future[bytes]:
        """The witness's stamp of the key (:data:`UNKNOWN` if it does not know it)."""
        return self._ops.submit((wkey, None, 0))  # type: ignore[return-value]

    def record(self, wkey: bytes, stamp: bytes, incarnation: int) -> asyncio.Future[bool]:
        """Record ``stamp``; True if the witness took it (it was not fenced out)."""
        return self._ops.submit((wkey, stamp, incarnation))  # type: ignore[return-value]

    def _heard(self, incarnation: int) -> None:
        if incarnation != self.incarnation:
            if self.incarnation:
                log.info("witness %s has a new incarnation %x", self.spec.name, incarnation)
            self.incarnation = incarnation

    async def learn(self) -> None:
        """Ask the witness its incarnation (so first records are not refused)."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            self._heard((await self.status()).incarnation)

    async def _send(self, ops: list[_Op]) -> list[bytes | bool]:
        req = witness_pb2.WitnessPipeRequest()
        checks = [key for key, stamp, _ in ops if stamp is None]
        records = [(key, stamp, inc) for key, stamp, inc in ops if stamp is not None]
        if checks:
            _CHECK_CALLS.inc()
            req.check.keys.extend(checks)
        if records:
            _RECORD_CALLS.inc()
            req.record.keys.extend(k for k, _, _ in records)
            req.record.stamps = b"".join(s for _, s, _ in records)
            req.record.incarnations.extend(i for _, _, i in records)
        loop = self._loop.loop
        self._sent_at = loop.time()
        try:
            resp = await self._pipe.call(req)
        except PipeBroken as exc:
            self._failed_at = loop.time()
            raise QuorumUnavailable(f"witness {self.spec.name}: {exc}") from None
        finally:
            self._sent_at = None
        if resp.error_code:
            raise errors.from_code(resp.error_code, resp.error_message)
        raw = resp.check.stamps
        if len(raw) != ENCODED_SIZE * len(checks):
            raise ValueError(
                f"witness {self.spec.name} answered {len(raw)} bytes for {len(checks)} keys"
            )
        if records:
            self._heard(resp.record.incarnation)
        if checks:
            self._heard(resp.check.incarnation)
        refused = set(resp.record.refused)
        if refused:
            WITNESS_FENCED.inc(len(refused))
        out: list[bytes | bool] = []
        c = r = 0
        for _, stamp, _ in ops:
            if stamp is None:
                out.append(raw[c * ENCODED_SIZE : (c + 1) * ENCODED_SIZE])
                c += 1
            else:
                out.append(r not in refused)
                r += 1
        return out

    async def forget(self, wkey: bytes, stamp: bytes) -> bool:
        """Ask the witness to forget the key at ``stamp`` (see
        :meth:`WitnessFleet.forget`); False if it holds a newer stamp."""
        resp = await self.stub.Forget(
            witness_pb2.ForgetRequest(keys=[wkey], stamps=stamp), timeout=self.timeout_s
        )
        self._heard(resp.incarnation)
        return not resp.newer

    async def status(self) -> witness_pb2.WitnessStatusResponse:
        return await self.stub.Status(witness_pb2.WitnessStatusRequest(), timeout=self.timeout_s)

    async def close(self) -> None:
        await self._pipe.close()
        await self.channel.close()


class _MajorityCheck:
    """One :meth:`WitnessFleet.check_agreed` in flight: asks the members of
    the key's group in ``order``, a bare majority first, and settles
    ``outcome`` once a majority answered (or cannot).

    A class and not two closures that call each other: such closures form a
    reference cycle, which only the cyclic garbage collector frees. Every
    check left 17 objects for it, and under load (a node's young generation
    is collected every 50,000 allocations, tristore/server.py) each young
    collection freed about 50,000 of them and stopped the node's event loop
    for 50-90 ms: every client of the node waited at once."""

    __slots__ = ("asked", "failed", "got", "need", "order", "outcome", "wkey")

    def __init__(
        self,
        order: list[WitnessConn],
        wkey: bytes,
        outcome: asyncio.Future[tuple[Stamp | None, bool]],
    ) -> None:
        self.order = order
        self.wkey = wkey
        self.outcome = outcome
        self.need = len(order) // 2 + 1
        self.got: list[bytes] = []
        self.asked = 0
        self.failed = 0

    def ask_next(self) -> None:
        fut = self.order[self.asked].check(self.wkey)
        self.asked += 1
        fut.add_done_callback(self.answered)

    def hedge(self) -> None:
        if not self.outcome.done() and self.asked < len(self.order):
            self.ask_next()

    def answered(self, fut: asyncio.Future[bytes]) -> None:
        outcome = self.outcome
        if fut.cancelled() or fut.exception() is not None:
            self.failed += 1
            if outcome.done():
                return
            if self.asked < len(self.order):
                self.ask_next()
            elif self.asked - self.failed < self.need:
                outcome.set_result((None, False))  # no majority can answer
            return
        if outcome.done():
            return
        stamp = fut.result()
        if stamp == UNKNOWN:
            outcome.set_result((None, False))
            return
        got = self.got
        got.append(stamp)
        if len(got) >= self.need:
            outcome.set_result((Stamp.decode(max(got)), len(set(got)) == 1))


class WitnessFleet:
    def __init__(
        self,
        cfg: ClusterConfig,
        me: str,
        prefer: int = 0,
        channel: Callable[[str], grpc.aio.Channel] | None = None,
    ) -> None:
        """``channel`` makes the channel to a witness's address (default:
        :func:`tristore.server.cluster_channel`); a seam for the
        deterministic simulation (tests/sim/)."""
        self.groups = [
            [WitnessConn(w, cfg, me, channel) for w in members] for members in cfg.witness_groups
        ]
        # The order each group's members are asked in: a check goes to a bare
        # majority (the first ones) and to the next member only when one of
        # those fails. Coordinators start at different members (``prefer``,
        # the node's id) so that the witnesses share the load.
        self._orders = [g[prefer % len(g) :] + g[: prefer % len(g)] for g in self.groups]
        self._hedge_s = cfg.witness.check_hedge_s
        self._loop = LoopBound()

    def _group_index(self, wkey: bytes) -> int:
        if len(self.groups) == 1:
            return 0
        h = int.from_bytes(hashlib.blake2b(wkey, digest_size=8).digest(), "big")
        return h % len(self.groups)

    def group_of(self, wkey: bytes) -> list[WitnessConn]:
        return self.groups[self._group_index(wkey)]

    def _ask_order(self, wkey: bytes) -> list[WitnessConn]:
        """The order a check of the key asks its group's members in: this
        node's (``prefer``), but members that look hung or down
        (:meth:`WitnessConn.lagging`) last, so that a bare majority of the
        others is asked first. Records reach every member, so any majority
        knows what a check must find."""
        order = self._orders[self._group_index(wkey)]
        now = self._loop.loop.time()
        if any(m.lagging(now) for m in order):
            order = sorted(order, key=lambda m: m.lagging(now))  # stable: the rest keep their order
        return order

    async def check(self, bucket: str, key: str) -> Stamp | None:
        """The newest acknowledged stamp of the key, or None for unknown.

        A majority must answer and every member of it must know the key
        (records reach a majority, and any two majorities meet). The check
        goes to a bare majority first; a member that fails, or has not answered
        within ``[witness] check_hedge_s``, is joined by the next. Any
        "unknown" answers unknown at once."""
        return (await self.check_agreed(bucket, key))[0]

    async def check_agreed(self, bucket: str, key: str) -> tuple[Stamp | None, bool]:
        """:meth:`check`, and whether every member of the majority answered
        that same stamp.

        The largest stamp of a majority is at or above every acknowledged
        one, but it need not be at a majority itself: a record in flight (or
        whose writer died) may have reached one member only. Only an agreed
        stamp is known to be at a majority, where every later check meets
        it; a reader that returns a version at a stamp not agreed must record
        it first, or a later check at another majority answers an older stamp
        and a reader trusts an older cached version (flicker). The model
        checker found that interleaving (tests/modelcheck, docs/architecture.md)."""
        wkey = witness_key(bucket, key)
        loop = self._loop.loop
        check = _MajorityCheck(self._ask_order(wkey), wkey, loop.create_future())
        for _ in range(check.need):
            check.ask_next()
        # A member that is slow to answer (hung, not dead: its stream stays open
        # until the deadline) is not waited for: the next member is asked too.
        hedge = loop.call_later(self._hedge_s, check.hedge)
        try:
            w, agreed = await check.outcome
        finally:
            hedge.cancel()
        if w is None:
            WITNESS_UNKNOWN.inc()
        return w, agreed

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
        futures = [m.record(wkey, encoded, inc) for m, inc in zip(members, fence, strict=True)]
        need = len(members) // 2 + 1
        took = refused = answered = 0
        enough: asyncio.Future[None] = self._loop.loop.create_future()

        def one(fut: asyncio.Future[bool]) -> None:
            nonlocal took, refused, answered
            answered += 1
            # A member that failed did not answer (its exception is consumed here).
            if not fut.cancelled() and fut.exception() is None:
                if fut.result():
                    took += 1
                else:
                    refused += 1
            # The rest need not be waited for once a majority took it.
            if not enough.done() and (took >= need or answered == len(futures)):
                enough.set_result(None)

        for fut in futures:
            fut.add_done_callback(one)
        await enough
        if took >= need:
            return True
        if took + refused >= need:
            return False
        names = ", ".join(m.spec.name for m in members)
        raise QuorumUnavailable(
            f"no majority of witness group {members[0].spec.group} ({names}) answered, so "
            "the change could not be confirmed: it may not take effect; retry (a retry of "
            "a write finds it if it did)"
        )

    async def forget(self, bucket: str, key: str, stamp: Stamp) -> bool:
        """Make every member of the key's group forget it at ``stamp`` (a
        removal the nodes collect, node/tombstones.py). True only when every
        member answered that it forgot it: from then on no member answers the
        key at ``stamp`` or older (a record of such a stamp is left out), so a
        check answers unknown or a newer stamp. False when a member holds a
        newer stamp or did not answer (try again later)."""
        wkey = witness_key(bucket, key)
        encoded = stamp.encode()
        results = await asyncio.gather(
            *(m.forget(wkey, encoded) for m in self.group_of(wkey)), return_exceptions=True
        )
        for m, r in zip(self.group_of(wkey), results, strict=True):
            if isinstance(r, BaseException):
                log.info("witness %s did not forget %s/%s: %s", m.spec.name, bucket, key, r)
        return all(r is True for r in results)

    async def close(self) -> None:
        await asyncio.gather(*(m.close() for g in self.groups for m in g))
