"""The replicator's work: tail every source node's change log and bring each
new version that its bucket's rules send somewhere to every destination.

- **What is read.** Every node of the source cluster keeps an ordered change log
  (each commit and its log entry share one fsynced batch). A version is in the
  logs of its three AZs' nodes; any of them delivers it, so a node down costs
  nothing. Each log has a durable cursor here, advanced only after its entries
  are handled.
- **What is sent.** A new version (or delete marker) marked PENDING for a
  destination: its body is read from the source by version id, and it is
  applied at the destination with its version id, stamp, ETag,
  Last-Modified, metadata, tags and ACL (an SSE-C body as its ciphertext,
  with its wrapped data key, stored as it is there: see
  :meth:`Replicator._send`): small ones (inline bodies, delete markers) many
  to an ApplyReplicas message, large ones streamed by ApplyReplica each.
  The destination keeps it as a version
  and makes it current only if nothing newer is there: applies are idempotent
  and never go backwards, so the three copies of an entry, retries, and
  replicators that restart halfway are all harmless.
- **Who sends it.** The replicators of a cluster share keys by hash: replicator
  i of n takes the keys whose hash is i mod n. (While one is down its share
  waits for it: nothing is lost, it is late.)
- **Outcome.** COMPLETED is written back to the source version's
  per-destination status (many to a PutReplicationStatuses message, which
  waits up to ``status_linger_s`` to fill; each item is the same conditional
  update as a single call). The tail reads its log on while a batch's
  statuses are on their way; its durable cursor passes the batch only once
  they are recorded, so a restart sends again (harmlessly) whatever's status
  may be missing. An unreachable
  destination is retried with capped backoff for as long as it takes (the
  version stays PENDING, the lag grows);
  an answer that retrying cannot change (a destination bucket without
  versioning, say), ``max_attempts`` times, makes it FAILED with the error,
  and the version is parked in the dead-letter queue. Replicas are marked REPLICA with their
  origin cluster and are never sent on (no loops in two-way setups).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from replicator import metrics
from replicator.state import ReplicatorState
from tristore import credentials, errors, replication, sse
from tristore.batcher import Batcher
from tristore.client import AsyncClient
from tristore.config import ClusterConfig, NodeSpec, ReplicatorSpec
from tristore.convert import change_from_pb, rule_from_pb, stamp_to_pb, version_to_pb
from tristore.model import ObjectVersion, ReplicatorStatus
from tristore.pb import objects_pb2, objects_pb2_grpc, replica_pb2, replica_pb2_grpc
from tristore.server import cluster_channel

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def _item_error(err: objects_pb2.ItemError) -> errors.TristoreError:
    """One item's failure in a batched answer, as the single call would have raised it."""
    return errors.from_code(err.code, err.message)


class _Cluster:
    """Raw stubs of one cluster's nodes, tried in turn (the SDK has no
    ApplyReplica: it is for replicators only)."""

    def __init__(
        self,
        endpoints: list[str],
        dial: Callable[[str], grpc.aio.Channel],
        creds: credentials.Credentials | None,
    ) -> None:
        self.channels = [dial(e) for e in endpoints]
        # Signed with this cluster's root key at the source, with the remote's
        # replication principal at a destination (tristore.sigv4).
        self.signer = credentials.Signer(creds) if creds is not None else None
        service = objects_pb2.DESCRIPTOR.services_by_name["ObjectService"]
        self.stubs = [
            credentials.SignedStub(objects_pb2_grpc.ObjectServiceStub(c), service, self.signer)
            for c in self.channels
        ]
        self._next = 0

    def sign(self, method: str, header: Any) -> list[tuple[str, str]] | None:
        """The metadata that signs a client stream by its header."""
        if self.signer is None:
            return None
        return self.signer.metadata(f"/tristore.v1.ObjectService/{method}", header)

    async def call(self, fn: Any) -> Any:
        """``fn(stub)`` on the next node in turn (so the work of coordinating is
        spread over the cluster), or the one after it while it does not answer;
        S3 errors are raised as is."""
        last: Exception | None = None
        first = self._next
        self._next = (self._next + 1) % len(self.stubs)
        for i in range(len(self.stubs)):
            stub = self.stubs[(first + i) % len(self.stubs)]
            try:
                return await fn(stub)
            except grpc.aio.AioRpcError as exc:
                err = errors.from_rpc_error(exc)
                if not err.retriable:
                    raise err from None
                last = err
        assert last is not None
        raise last

    async def any_healthy(self, timeout_s: float) -> bool:
        """Whether some node of the cluster says it is serving."""

        async def one(channel: grpc.aio.Channel) -> bool:
            try:
                resp = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=timeout_s
                )
            except grpc.aio.AioRpcError:
                return False
            return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)

        return any(await asyncio.gather(*(one(c) for c in self.channels)))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.channels))


def is_requeued(v: ObjectVersion, after_ms: float) -> bool:
    """Whether a logged version is there because it was queued again (by a
    backfill or a replay): its record changed at least ``after_ms`` after the
    version's write, and not by a change of its tags or ACL (which stamps
    ``meta_stamp``; a user's change replicates as a write does). A status
    recorded for one destination while another is still PENDING changes the
    record too, but within the replication's lag of the write."""
    return (
        v.stamp != v.vstamp
        and v.stamp != v.meta_stamp
        and v.stamp.physical_ms - v.vstamp.physical_ms >= after_ms
    )


class Replicator:
    def __init__(self, cfg: ClusterConfig, spec: ReplicatorSpec, state: ReplicatorState) -> None:
        self.cfg = cfg
        self.rcfg = cfg.replicator
        self.spec = spec
        self.state = state
        self.index = [r.name for r in cfg.replicators].index(spec.name)
        self.count = len(cfg.replicators)
        endpoints = [n.grpc for n in cfg.nodes]
        root = credentials.root_credentials(cfg)
        self.source = AsyncClient(
            endpoints,
            timeout=self.rcfg.timeout_s,
            ca_file=str(cfg.tls_files(spec.name).ca),
            insecure=cfg.tls.insecure,
            credentials=root,
            anonymous=root is None,
        )

        def public(address: str) -> grpc.aio.Channel:
            return cluster_channel(cfg, spec.name, address, internal=False)

        self.source_raw = _Cluster(endpoints, public, root)
        self.remotes = {
            r.name: _Cluster(r.endpoint_list, public, credentials.remote_credentials(cfg, r))
            for r in cfg.remotes
        }
        self._logs = {
            n.name: replica_pb2_grpc.ReplicaServiceStub(cluster_channel(cfg, spec.name, n.grpc))
            for n in cfg.nodes
        }
        self._rules: dict[str, tuple[float, tuple[replication.Rule, ...]]] = {}
        #: A bucket's rules being fetched: every version that needs them meanwhile
        #: waits for that one call (not one call each when the cache expires).
        self._rules_fetching: dict[str, asyncio.Future[tuple[replication.Rule, ...]]] = {}
        self._destinations_seen: set[str] = set()
        self._gate = asyncio.Semaphore(self.rcfg.parallel)
        self._paced_after_ms = self.rcfg.paced_after_s * 1000
        #: Held by a tail whose last paced batch found the source busy, from
        #: its next read until that batch is through (:meth:`_pace`): while a
        #: backfill keeps the source busy, this replicator's tails take turns
        #: (a version's entry is in three logs, read by three tails).
        self._bulk = asyncio.Semaphore(1)
        self._streams = asyncio.Semaphore(self.rcfg.streams)
        # Status updates to the source and small applies to each remote: what
        # the versions in flight produce meanwhile shares one message.
        self._statuses: Batcher[objects_pb2.PutReplicationStatusRequest, None] = Batcher(
            self._send_statuses,
            self.rcfg.max_batch,
            self.rcfg.max_inflight,
            linger_s=self.rcfg.status_linger_s,
        )
        self._applies: dict[str, Batcher[objects_pb2.ApplyReplicaItem, bool]] = {
            name: Batcher(
                self._applier(name),
                self.rcfg.max_batch,
                self.rcfg.max_inflight,
                linger_s=self.rcfg.apply_linger_s,
            )
            for name in self.remotes
        }
        self._next_sealed = 0
        self._inflight: dict[
            tuple[str, str, str, str], asyncio.Future[asyncio.Task[None] | None]
        ] = {}
        self._tails: dict[str, asyncio.Task[None]] = {}
        #: By node: the batches read from its log whose durable cursor waits
        #: for their status updates, oldest first (:meth:`_persist`).
        self._owing: dict[str, list[asyncio.Task[None]]] = {}
        #: By destination: when (s, the source's clock) each change read from a
        #: log and not handled yet was made; the lag is the oldest one's age.
        self._waiting: dict[str, Counter[float]] = {}
        #: By node: its tail's last batch's destinations, held as waiting (:meth:`_hold`).
        self._held: dict[str, list[tuple[str, float]]] = {}
        self._sending: dict[str, int] = {}
        self._behind: dict[str, int] = {}
        self._started = time.monotonic()
        self._done: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        metrics.DLQ.set(state.parked_count())

    # -- the loop --------------------------------------------------------------

    async def run_forever(self) -> None:
        self._tails = {n.name: asyncio.create_task(self._tail(n)) for n in self.cfg.nodes}
        try:
            await asyncio.gather(self.wait_for_clusters(), self.watch_map(), self.expire_dlq())
        finally:
            for t in self._tails.values():
                t.cancel()

    def status(self) -> ReplicatorStatus:
        """What `tristore admin status` shows of this replicator."""
        return ReplicatorStatus(
            name=self.spec.name,
            uptime_seconds=time.monotonic() - self._started,
            dlq_entries=self.state.parked_count(),
            log_entries_behind=sum(self._behind.get(n, 0) for n in self._tails),
            nodes_tailed=len(self._tails),
            lag_seconds={d: self.lag(d) for d in self._destinations_seen},
            in_flight=dict(self._sending),
        )

    async def wait_for_clusters(self) -> None:
        """At start, say plainly which cluster no node of answers yet, until each does."""
        pending = {f"source cluster {self.cfg.cluster.name}": self.source_raw}
        pending |= {f"remote cluster {name}": c for name, c in self.remotes.items()}
        last_said = float("-inf")
        while pending:
            answered = await asyncio.gather(
                *(c.any_healthy(self.rcfg.cluster_probe_s) for c in pending.values())
            )
            for name, ok in zip(list(pending), answered, strict=True):
                if ok:
                    log.info("%s reachable", name)
                    del pending[name]
            if pending and time.monotonic() - last_said >= self.rcfg.waiting_log_every_s:
                last_said = time.monotonic()
                log.warning(
                    "waiting for %s: no node answers yet; changes wait in the change logs "
                    "and are sent once it does (retrying every %.0fs)",
                    " and ".join(pending),
                    self.rcfg.cluster_probe_s,
                )
            if pending:
                await asyncio.sleep(self.rcfg.cluster_probe_s)

    async def watch_map(self) -> None:
        """Tail the change log of every node of the source cluster's map as it
        is now (nodes join and leave at run time)."""
        while True:
            await asyncio.sleep(self.rcfg.map_watch_s)
            try:
                cmap = await self.source.cluster_map()
            except errors.TristoreError as exc:
                log.debug("reading the cluster map: %s", exc)
                continue
            for n in cmap.nodes:
                if n.name not in self._tails:
                    log.info("map epoch %d: tailing %s's change log too", cmap.epoch, n.name)
                    self._logs[n.name] = replica_pb2_grpc.ReplicaServiceStub(
                        cluster_channel(self.cfg, self.spec.name, n.grpc)
                    )
                    self._tails[n.name] = asyncio.create_task(self._tail(n))
            names = {n.name for n in cmap.nodes}
            for name in [name for name in self._tails if name not in names]:
                # Every entry of its log is in the logs of the key's other AZs too.
                log.info("map epoch %d: %s left; no longer tailing it", cmap.epoch, name)
                self._tails.pop(name).cancel()
                self._release(name)

    async def _tail(self, node: NodeSpec) -> None:
        stub = self._logs[node.name]
        cursor = self.state.cursor(node.name)
        delay = self.rcfg.poll_interval_s
        bulk = False  # the source was busy with the last batch: this read waits its turn
        while True:
            slot = self._bulk if bulk else None
            bulk = False
            if slot is not None:
                await slot.acquire()
            try:
                if not await self._settle_owed(node.name):
                    # A batch's statuses failed: its entries are read again from
                    # the last cursor that is durable (applies are idempotent).
                    cursor = self.state.cursor(node.name)
                    await asyncio.sleep(self.rcfg.max_backoff_s)
                    continue
                asked = time.monotonic()
                # After a batch, a read that does not wait: see _held.
                peek = bool(self._held.get(node.name))
                try:
                    resp = await stub.ReadLog(
                        replica_pb2.ReadLogRequest(
                            after=cursor,
                            limit=self.rcfg.batch,
                            wait_ms=0 if peek else self.rcfg.log_wait_ms,
                            pending_only=True,
                            reader=self.spec.name,
                            share=self.index,
                            shares=self.count,
                        ),
                        timeout=self.rcfg.timeout_s + self.rcfg.log_wait_ms / 1000,
                    )
                except grpc.aio.AioRpcError as exc:
                    self._release(node.name)
                    log.debug("reading %s's change log: %s", node.name, exc.code().name)
                    await asyncio.sleep(min(5.0, delay))
                    delay = min(5.0, delay * 2)
                    continue
                delay = self.rcfg.poll_interval_s
                self._release(node.name)  # what came meanwhile is in this answer
                if resp.last_seq < cursor:
                    # The node's data was wiped (a new node under the same name): start over.
                    log.warning("%s's change log restarted at %d; reading it again", node.name, 0)
                    cursor = 0
                    continue
                # The node looked up to scanned_to; an older node (no index) does
                # not say, and sent every entry up to the last it sent.
                scanned = resp.scanned_to or (resp.entries[-1].seq if resp.entries else cursor)
                if not resp.entries:
                    if scanned > cursor:
                        cursor = scanned
                        self._persist(node.name, cursor, [])
                    self._caught_up(node.name, resp.last_seq, cursor)
                    # The node waited up to self.rcfg.log_wait_ms for an entry; one that
                    # answered at once (it does not wait) is polled instead.
                    if not peek and time.monotonic() - asked < self.rcfg.log_wait_ms / 2000:
                        await asyncio.sleep(self.rcfg.poll_interval_s)
                    continue
                self._caught_up(node.name, resp.last_seq, cursor)  # the backlog while it is handled
                # A batch's versions go out together (bounded); the destination keeps
                # per-key order itself (last writer wins, never backwards). The
                # cursor moves past the batch only once all of it is handled.
                versions = [v for e in resp.entries for v in change_from_pb(e.change).versions]
                work = [(v, dests) for v in versions if (dests := self._pending(v))]
                waiting = self._wait(work)
                try:
                    owed = await asyncio.gather(
                        *(self._bounded(self.handle(v, d)) for v, d in work)
                    )
                except Exception:
                    log.exception(
                        "handling %s's change log after %d failed; reading it again",
                        node.name,
                        cursor,
                    )
                    await asyncio.sleep(self.rcfg.max_backoff_s)
                    continue
                finally:
                    self._unwait(waiting)
                self._hold(node.name, {dest for dest, _ in waiting})
                cursor = max(scanned, resp.entries[-1].seq)
                self._persist(node.name, cursor, [t for ts in owed for t in ts])
                if any(is_requeued(v, self._paced_after_ms) for v, _ in work):
                    bulk = await self._pace(node.name)
                self._caught_up(node.name, resp.last_seq, cursor)
                if len(resp.entries) < self.rcfg.batch:
                    await asyncio.sleep(self.rcfg.log_gather_s)
            finally:
                if slot is not None:
                    slot.release()

    async def _pace(self, node: str) -> bool:
        """Pace a batch of the node's log holding versions queued again (a
        backfill's or a replay's requeues): they are bulk work, and the tail
        reads on only once the batch's statuses are recorded, so the source,
        which is queueing them, is not also handed their replication as fast
        as it queues (a batch of writes does not wait). True when that took
        longer than ``[replicator] paced_busy_s`` (when set): the source is
        busy, and the tail's next read waits its turn after the other tails'
        (``_bulk``)."""
        metrics.PACED.labels(node).inc()
        began = time.monotonic()
        await asyncio.wait(self._owing[node][-1:])
        busy = self.rcfg.paced_busy_s
        return busy > 0 and time.monotonic() - began > busy

    def _persist(self, node: str, cursor: int, owed: list[asyncio.Task[None]]) -> None:
        """Make ``cursor`` the node's durable cursor once ``owed`` (the status
        updates of the batch it moves past) and every batch before it are
        through. The tail reads on meanwhile: a status does not hold up the
        next batch's applies, while a restart still reads again every entry
        whose status may not be recorded."""
        chain = self._owing.setdefault(node, [])
        prev = chain[-1] if chain else None
        chain.append(asyncio.create_task(self._finish(node, prev, owed, cursor)))

    async def _finish(
        self,
        node: str,
        prev: asyncio.Task[None] | None,
        owed: list[asyncio.Task[None]],
        cursor: int,
    ) -> None:
        if prev is not None:
            await prev  # in order; one that failed fails the rest
        if owed:
            await asyncio.gather(*owed)
        await asyncio.to_thread(self.state.set_cursor, node, cursor)

    async def _settle_owed(self, node: str) -> bool:
        """Forget the node's batches that are through, waiting for the
        oldest while too many are owed: of this log's batches, or of status
        updates in calls the source has not answered, in all (a source too
        slow to take them holds the tails back, as a backfill's requeues make
        it: the replication they queue waits for the source instead of taking
        its CPU); False (and none owed any more) when one failed."""
        chain = self._owing.get(node, [])
        while chain and (
            chain[0].done()
            or len(chain) > self.rcfg.max_owed_batches
            or self._statuses.sending > self.rcfg.max_owed_statuses
        ):
            try:
                await chain[0]
            except Exception:
                log.exception("recording the statuses of a batch of %s's change log", node)
                for t in chain:
                    t.cancel()
                chain.clear()
                return False
            chain.pop(0)
        return True

    def _caught_up(self, node: str, last_seq: int, cursor: int) -> None:
        """Entries of the node's log not yet looked at (those awaiting nothing
        are skipped unread, so this is an upper bound of the real backlog)."""
        behind = max(0, last_seq - cursor)
        metrics.LOG_BEHIND.labels(node).set(behind)
        self._behind[node] = behind

    def lag(self, dest: str) -> float:
        """Age of the oldest change read for ``dest`` and not handled yet, or
        of a batch just through while a read has yet to show what came
        meanwhile (:meth:`_hold`; 0: none). Read when asked (a scrape, a
        status call), so it keeps growing while a destination does not
        answer, and is 0 only once nothing waits."""
        times = self._waiting.get(dest)
        if not times:
            return 0.0
        return max(0.0, time.time() - min(times))

    def _wait(self, work: list[tuple[ObjectVersion, list[str]]]) -> list[tuple[str, float]]:
        """Count a batch's changes as waiting for their destinations (their
        time: the change's stamp, a new version's write or a later change of
        its tags or status, such as a requeue) until :meth:`_unwait`."""
        waiting = []
        for v, dests in work:
            at = v.stamp.physical_ms / 1000
            for dest in dests:
                if dest not in self._destinations_seen:
                    self._destinations_seen.add(dest)
                    metrics.LAG.labels(dest).set_function(partial(self.lag, dest))
                self._waiting.setdefault(dest, Counter())[at] += 1
                waiting.append((dest, at))
        return waiting

    def _hold(self, node: str, dests: set[str]) -> None:
        """Count ``dests`` as waiting from now until :meth:`_release`: the
        destinations of a batch of ``node``'s log just through. A change
        written while the batch was out is in the log unread, and the lag
        must not read 0 (nothing waits) before a read shows it; that read
        (the tail's next) does not wait for an entry, so nothing holds the
        lag up for long."""
        now = time.time()
        held = [(dest, now) for dest in dests]
        for dest, at in held:
            self._waiting.setdefault(dest, Counter())[at] += 1
        self._held[node] = held

    def _release(self, node: str) -> None:
        """Undo :meth:`_hold` of ``node``'s last batch, if any."""
        self._unwait(self._held.pop(node, []))

    def _unwait(self, waiting: list[tuple[str, float]]) -> None:
        for dest, at in waiting:
            times = self._waiting[dest]
            times[at] -= 1
            if times[at] <= 0:
                del times[at]

    def _pending(self, v: ObjectVersion) -> list[str]:
        """The destinations a logged version is still PENDING for (a new
        version, a change of its tags or ACL, or a replica's change sent
        back) that this replicator sends it to: none for an internal
        bucket's, or a key in another replicator's share."""
        if v.bucket.startswith("."):
            return []
        dests = [d for d, s in v.replication_targets.items() if s == replication.PENDING]
        # The node sends only this replicator's share (ReadLogRequest.share);
        # a node that does not filter sends every entry.
        if not dests or not self._ours(v):
            return []
        return dests

    async def handle(self, v: ObjectVersion, dests: list[str]) -> list[asyncio.Task[None]]:
        """Replicate one logged version to ``dests`` (:meth:`_pending`); once
        it is applied, the status updates on their way (:meth:`_replicate`)."""
        owed = await asyncio.gather(*(self._once(v, d) for d in dests))
        return [t for t in owed if t is not None]

    def _ours(self, v: ObjectVersion) -> bool:
        """Whether ``v``'s key is in this replicator's share."""
        digest = replication.key_digest(v.bucket, v.key)
        return replication.share_of(digest, self.count) == self.index

    async def _bounded(self, work: Awaitable[_T]) -> _T:
        async with self._gate:
            return await work

    async def _once(self, v: ObjectVersion, dest: str) -> asyncio.Task[None] | None:
        """One replication of a version to a destination, however many of the
        three change logs holding it deliver it (they all reach this replicator:
        keys are shared by hash). A copy that arrives while the first is in
        flight waits for it; one that arrives after it is done is skipped (after
        a restart the memory is empty and the destination skips it instead).
        The status update the first one owes (None for the copies)."""
        # The record's stamp tells a requeue (replay, backfill) from a copy.
        ident = (v.bucket, v.key, v.stamp.encode().hex(), dest)
        if ident in self._done:
            return None
        running = self._inflight.get(ident)
        if running is None:
            running = asyncio.ensure_future(self._replicate(v, dest))
            self._inflight[ident] = running
            try:
                owed = await running
            finally:
                del self._inflight[ident]
            self._done[ident] = None
            while len(self._done) > self.rcfg.done_remembered:
                self._done.popitem(last=False)
            return owed
        await asyncio.shield(running)
        return None

    # -- one version to one destination -----------------------------------------

    async def _replicate(self, v: ObjectVersion, dest: str) -> asyncio.Task[None] | None:
        """Send ``v`` to ``dest`` until it is there or FAILED; then the
        status update, on its way (None: the version is gone from the source)."""
        self._sending[dest] = self._sending.get(dest, 0) + 1
        metrics.PENDING.labels(dest).inc()
        metrics.PENDING_BYTES.labels(dest).inc(v.size)
        ident = (v.bucket, v.key, v.version_id, dest)
        try:
            error = ""
            # Answers that retrying cannot change, counted across restarts.
            refusals = self.state.refusals(*ident)  # a read: no fsync
            gone = 0
            tries = 0
            while refusals < self.rcfg.max_attempts:
                tries += 1
                try:
                    applied = await self._send(v, dest)
                except errors.NoSuchVersion:
                    # Deleted on the source since, or not visible from here for a
                    # moment (a node back from the dead): look a few times.
                    gone += 1
                    if gone >= self.rcfg.gone_checks:
                        return None
                    await asyncio.sleep(self.rcfg.retry_backoff_s * gone)
                    continue
                except (errors.TristoreError, OSError) as exc:
                    transient = not isinstance(exc, errors.TristoreError) or exc.retriable
                    if not transient:
                        refusals += 1
                        await asyncio.to_thread(self.state.set_refusals, *ident, refusals)
                    error = (
                        f"{exc.code}: {exc}" if isinstance(exc, errors.TristoreError) else str(exc)
                    )
                    metrics.FAILED.labels(dest).inc()
                    log.info(
                        "replicating %s/%s@%s to %s (try %d): %s",
                        v.bucket,
                        v.key,
                        v.version_id,
                        dest,
                        tries,
                        error,
                    )
                    # An unreachable destination (or source) is waited for, however
                    # long: the version stays PENDING and the lag shows it.
                    backoff = self.rcfg.retry_backoff_s * 2 ** min(tries - 1, 8)
                    await asyncio.sleep(min(backoff, self.rcfg.max_backoff_s))
                    continue
                took = time.time() - v.last_modified_ms / 1000
                if applied:  # not another copy of the same change-log entry
                    metrics.REPLICATED.labels(dest).inc()
                    metrics.LATENCY.labels(dest).observe(max(0.0, took))
                if applied and took > self.rcfg.threshold_s:
                    metrics.THRESHOLD_MISSES.labels(dest).inc()
                    log.warning(
                        "%s/%s@%s reached %s %.0f s after its write (threshold %.0f s)",
                        v.bucket,
                        v.key,
                        v.version_id,
                        dest,
                        took,
                        self.rcfg.threshold_s,
                    )
                through = bool(refusals) or self.state.is_parked(*ident)
                return asyncio.create_task(
                    self._record(v, dest, replication.COMPLETED, "", ident if through else None)
                )
            await asyncio.to_thread(self._park, ident, error)
            return asyncio.create_task(self._record(v, dest, replication.FAILED, error, None))
        finally:
            self._sending[dest] -= 1
            metrics.PENDING.labels(dest).dec()
            metrics.PENDING_BYTES.labels(dest).dec(v.size)

    async def _record(
        self,
        v: ObjectVersion,
        dest: str,
        status: str,
        error: str,
        through: tuple[str, str, str, str] | None,
    ) -> None:
        """A version's status at the source; ``through``: its refusals and
        parking to forget once that is done."""
        await self._set_status(v, dest, status, error)
        if through is not None:
            await asyncio.to_thread(self._through, through)

    def _through(self, ident: tuple[str, str, str, str]) -> None:
        """A version is at its destination: forget its refusals and any parking
        (a replayed one); blocking, so called from a thread."""
        self.state.set_refusals(*ident, 0)
        if self.state.unpark(*ident):
            metrics.DLQ.set(self.state.parked_count())

    def _park(self, ident: tuple[str, str, str, str], error: str) -> None:
        """Blocking (RocksDB, fsync): called from a thread."""
        bucket, key, version_id, dest = ident
        self.state.park(
            {
                "bucket": bucket,
                "key": key,
                "version_id": version_id,
                "destination": dest,
                "error": error,
                "parked_ms": int(time.time() * 1000),
            }
        )
        self.state.set_refusals(*ident, 0)
        if self.state.parked_count() > self.rcfg.dlq_max_entries:
            self.trim_dlq()  # age is expire_dlq's to check, once a dlq_check_s
        metrics.DLQ.set(self.state.parked_count())

    def trim_dlq(self) -> None:
        """Keep the dead-letter queue within [replicator] dlq_max_entries and
        dlq_retention_s (blocking: called from a thread). What goes loses
        nothing: its version stays FAILED at the source."""
        oldest_ms = int((time.time() - self.rcfg.dlq_retention_s) * 1000)
        aged, over = self.state.trim_dlq(self.rcfg.dlq_max_entries, oldest_ms)
        for reason, n in (("age", aged), ("cap", over)):
            if n:
                metrics.DLQ_DROPPED.labels(reason).inc(n)
        if aged or over:
            log.warning(
                "dropped %d entries from the dead-letter queue (%d parked over "
                "[replicator] dlq_retention_s = %.0fs ago, %d beyond dlq_max_entries = %d); "
                "their versions stay FAILED at the source: `tristore replication dlq list` "
                "shows them, `dlq replay` retries them",
                aged + over,
                aged,
                self.rcfg.dlq_retention_s,
                over,
                self.rcfg.dlq_max_entries,
            )
        metrics.DLQ.set(self.state.parked_count())

    async def expire_dlq(self) -> None:
        """Drop dead-letter entries as they pass dlq_retention_s."""
        while True:
            await asyncio.to_thread(self.trim_dlq)
            await asyncio.sleep(self.rcfg.dlq_check_s)

    async def _set_status(self, v: ObjectVersion, dest: str, status: str, error: str) -> None:
        request = objects_pb2.PutReplicationStatusRequest(
            bucket=v.bucket,
            key=v.key,
            version_id=v.version_id,
            destination=dest,
            status=status,
            error=error[:500],
            stamp=stamp_to_pb(v.stamp),
        )
        for attempt in range(self.rcfg.status_tries):
            try:
                await self._statuses.submit(request)
                return
            except errors.TristoreError as exc:
                if not exc.retriable or attempt + 1 == self.rcfg.status_tries:
                    log.warning("could not record %s for %s/%s: %s", status, v.bucket, v.key, exc)
                    return
                await asyncio.sleep(
                    min(self.rcfg.max_backoff_s, self.rcfg.retry_backoff_s * 2**attempt)
                )

    async def _send_statuses(
        self, items: list[objects_pb2.PutReplicationStatusRequest]
    ) -> list[BaseException | None]:
        request = objects_pb2.PutReplicationStatusesRequest(items=items)
        resp = await self.source_raw.call(
            lambda s: s.PutReplicationStatuses(request, timeout=self.rcfg.timeout_s)
        )
        return [_item_error(r.error) if r.HasField("error") else None for r in resp.results]

    def _applier(
        self, cluster: str
    ) -> Callable[[list[objects_pb2.ApplyReplicaItem]], Awaitable[list[bool | BaseException]]]:
        async def send(items: list[objects_pb2.ApplyReplicaItem]) -> list[bool | BaseException]:
            request = objects_pb2.ApplyReplicasRequest(items=items)
            resp = await self.remotes[cluster].call(
                lambda s: s.ApplyReplicas(request, timeout=self.rcfg.timeout_s)
            )
            return [
                _item_error(r.error) if r.HasField("error") else r.applied for r in resp.results
            ]

        return send

    async def _destination(self, v: ObjectVersion, dest: str) -> replication.Destination:
        """The destination with its overrides, from the bucket's rules now."""
        cached = self._rules.get(v.bucket)
        if cached is None or time.monotonic() - cached[0] > self.rcfg.rules_ttl_s:
            fetching = self._rules_fetching.get(v.bucket)
            if fetching is None:
                fetching = asyncio.ensure_future(self._fetch_rules(v.bucket))
                self._rules_fetching[v.bucket] = fetching
                fetching.add_done_callback(partial(self._fetched, v.bucket))
            rules = await asyncio.shield(fetching)
        else:
            rules = cached[1]
        for d in replication.destinations_for(rules, v.key, v.tags, v.delete_marker):
            if d.name == dest:
                return d
        cluster, _, bucket = dest.partition("/")
        return replication.Destination(cluster, bucket)

    def _fetched(self, bucket: str, _done: asyncio.Future[tuple[replication.Rule, ...]]) -> None:
        self._rules_fetching.pop(bucket, None)

    async def _fetch_rules(self, bucket: str) -> tuple[replication.Rule, ...]:
        """The bucket's replication rules, from its cluster now (and cached)."""
        resp = await self.source_raw.call(
            lambda s: s.GetBucketReplication(
                objects_pb2.GetBucketReplicationRequest(bucket=bucket),
                timeout=self.rcfg.timeout_s,
            )
        )
        rules = tuple(rule_from_pb(r) for r in resp.rules)
        self._rules[bucket] = (time.monotonic(), rules)
        return rules

    async def _send(self, v: ObjectVersion, dest_name: str) -> bool:
        """Apply ``v`` at the destination; False if it was there already."""
        dest = await self._destination(v, dest_name)
        remote = self.remotes.get(dest.cluster)
        if remote is None:
            raise errors.InvalidArgument(
                f"destination cluster {dest.cluster!r} is not in this cluster's [[remotes]]"
            )
        # An SSE-C version is shipped as stored: ciphertext, its data key
        # wrapped under the customer's key and the key's salted HMAC (nobody
        # here can open it), bound to the bucket it was sealed in. Any other
        # is read in plaintext and sealed again at the destination under its
        # own keys (as ``sse``, or the destination bucket's default, asks).
        sealed = sse.scheme_of(v.sse_key) == sse.SCHEME_CUSTOMER_KEY
        bound = v.sse_bucket or v.bucket
        replica = replace(
            v,
            bucket=dest.bucket,
            storage_class=dest.storage_class or v.storage_class,
            owner=dest.owner or v.owner,
            sse_key=v.sse_key if sealed else b"",
            sse_customer_hmac=v.sse_customer_hmac if sealed else b"",
            sse_bucket=bound if sealed and bound != dest.bucket else "",
        )
        header = objects_pb2.ApplyReplicaHeader(
            version=version_to_pb(replica, with_inline=False),
            origin_cluster=v.origin_cluster or self.cfg.cluster.name,
        )

        # A small version travels whole in one item of a batched call: its
        # body from the change-log entry (an SSE-S3 one's is ciphertext under
        # this cluster's keys: it is read decrypted instead).
        inline = v.inline if v.inline is not None and (sealed or not v.encrypted) else None
        if v.delete_marker or inline is not None or (v.size == 0 and not sealed):
            item = objects_pb2.ApplyReplicaItem(header=header, data=inline or b"")
            return await self._applies[dest.cluster].submit(item)
        body = self._sealed_body if sealed else self._plain_body
        async with self._streams:
            return await self._stream(remote, header, lambda: body(v))

    def _plain_body(self, v: ObjectVersion) -> AsyncIterator[bytes]:
        """A version's body in plaintext, read from the source like a GET."""

        async def read() -> AsyncIterator[bytes]:
            stream = self.source.get_object_stream(v.bucket, v.key, version_id=v.version_id)
            async with stream as s:
                async for chunk in s:
                    yield chunk

        return read()

    async def _sealed_body(self, v: ObjectVersion) -> AsyncIterator[bytes]:
        """An SSE-C version's body as the source stores it (ciphertext), from
        ReplicaService.ReadSealedBody: open to this cluster's replicators only,
        on the nodes' internal port; the next node is asked while none has
        answered yet."""
        request = replica_pb2.ReadSealedBodyRequest(
            bucket=v.bucket, key=v.key, version_id=v.version_id, sse_key=v.sse_key
        )
        stubs = list(self._logs.values())
        first = self._next_sealed
        self._next_sealed = (first + 1) % len(stubs)
        last: errors.TristoreError | None = None
        for i in range(len(stubs)):
            sent = False
            try:
                call = stubs[(first + i) % len(stubs)].ReadSealedBody(
                    request, timeout=self.rcfg.timeout_s
                )
                async for msg in call:
                    sent = True
                    yield msg.data
                return
            except grpc.aio.AioRpcError as exc:
                err = errors.from_rpc_error(exc)
                if sent or not err.retriable:
                    raise err from None
                last = err
        assert last is not None
        raise last

    async def _stream(
        self,
        remote: _Cluster,
        header: objects_pb2.ApplyReplicaHeader,
        source: Callable[[], AsyncIterator[bytes]],
    ) -> bool:
        """Apply a version with a large body, streamed from ``source()`` (anew
        for each node of the destination tried)."""
        source_failed: list[Exception] = []

        async def requests() -> AsyncIterator[objects_pb2.ApplyReplicaRequest]:
            yield objects_pb2.ApplyReplicaRequest(header=header)
            try:
                async for chunk in source():
                    yield objects_pb2.ApplyReplicaRequest(data=chunk)
            except Exception as exc:  # noqa: BLE001 - raised below, once the call is over
                # An error raised inside a request iterator can leave the call
                # hanging; end the body short instead (the destination refuses
                # an incomplete body and stores nothing) and raise it after.
                source_failed.append(exc)

        try:
            resp = await remote.call(
                lambda stub: stub.ApplyReplica(
                    requests(),
                    timeout=self.rcfg.timeout_s,
                    metadata=remote.sign("ApplyReplica", header),
                )
            )
        finally:
            if source_failed:
                raise source_failed[0]
        return bool(resp.applied)

    async def close(self) -> None:
        await self.source.close()
        await self.source_raw.close()
        for c in self.remotes.values():
            await c.close()
