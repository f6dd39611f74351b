"""Anti-entropy repair (``tristore admin repair``): every version of every key
back on a node of each of the key's three AZs.

A write is acknowledged once three AZs hold it, but an AZ can lose it later (a
disk replaced, a data dir deleted) or keep an older record of it (a change of
tags that reached it only in part). Repair finds every key any node of the
cluster holds, asks each of the key's AZs what it holds (its first answering
node, home first, as every read does), compares that with the union of the
answers (:func:`plan_key`), and writes back what an AZ lacks in one merging
commit per AZ, as hinted handoff does: the AZ keeps, record by record, whatever
is newer on its side, so a write racing the repair is never undone and a repair
run twice does no harm. A version removed for good anywhere is never written
back, and an AZ that does not answer is left alone (the key counts as failed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from node import keys
from node.coordinator import Coordinator
from node.metrics import REPAIR_KEYS_CHECKED, REPAIR_VERSIONS_WRITTEN
from node.peers import Peers, Replica, ReplicaUnavailable
from node.protocol import ReplicaRead
from node.replica_store import ReplicaStore
from tristore import convert, validation
from tristore.config import NodeSection
from tristore.errors import NoSuchBucket, TristoreError
from tristore.model import Change, ObjectVersion, RepairReport, tries_of
from tristore.pb import admin_pb2
from tristore.placement import REPLICA_AZS, AzReplicas
from tristore.stamps import Stamp

log = logging.getLogger(__name__)

#: Versions asked of each AZ for one key; a key with that many is asked again
#: with the next limit (a key with more than the last one fails).
VERSION_LIMITS = (128, 2048, 32768)

_WHAT = "repairing a key"


# -- what an AZ lacks (pure) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AzHeld:
    """What one AZ (its first answering node) holds of a key."""

    #: Its current record of the key.
    head: ObjectVersion | None
    #: Its version records of the key.
    versions: Sequence[ObjectVersion] = ()


@dataclass(frozen=True, slots=True)
class AzPlan:
    """What one AZ must be given of a key."""

    az: str
    #: The key's newest current record, when the AZ's own is older or missing.
    head: ObjectVersion | None
    #: Version records it lacks or holds with a lower record stamp, oldest first.
    versions: tuple[ObjectVersion, ...]

    @property
    def missing(self) -> int:
        """Records the AZ lacks: its versions, and the head unless it is one of them."""
        head = self.head
        extra = head is not None and all(v.vstamp != head.vstamp for v in self.versions)
        return len(self.versions) + int(extra)


def plan_key(held: Mapping[str, AzHeld], removed: Collection[Stamp] = ()) -> list[AzPlan]:
    """What each AZ that answered lacks of one key, against the union of them all.

    Versions are matched by version stamp; of each, the record with the highest
    stamp is the one every AZ should hold (a later change of its tags, ACL or
    replication status took a higher stamp). An AZ lacks a version it holds no
    record of, or only an older record of; and it lacks the key's current
    record when its own is older than the newest any AZ holds, or missing.

    Never planned: a version in ``removed`` or in any current record's
    ``removed`` (removed for good somewhere: it must not come back), and a null
    version older than the key's newest null version (a replica would drop it
    on arrival). AZs that lack nothing are left out.
    """
    gone = set(removed)
    heads = [h.head for h in held.values() if h.head is not None]
    for head in heads:
        gone.update(head.removed)
    union: dict[Stamp, ObjectVersion] = {}
    for h in held.values():
        for v in h.versions:
            if v.vstamp in gone:
                continue
            best = union.get(v.vstamp)
            if best is None or v.stamp > best.stamp:
                union[v.vstamp] = v
    nulls = [v.vstamp for v in (*union.values(), *heads) if v.null_version]
    if nulls:
        newest_null = max(nulls)
        union = {s: v for s, v in union.items() if not v.null_version or s == newest_null}
    newest = max(heads, key=lambda v: v.stamp, default=None)
    if newest is not None and newest.vstamp in gone:
        newest = None
    plans: list[AzPlan] = []
    for az, h in held.items():
        mine = {v.vstamp: v for v in h.versions}
        lacking = tuple(
            v
            for s, v in sorted(union.items())
            if (own := mine.get(s)) is None or own.stamp < v.stamp
        )
        stale = newest is not None and (h.head is None or h.head.stamp < newest.stamp)
        if lacking or stale:
            plans.append(AzPlan(az, newest if stale else None, lacking))
    return plans


# -- the repairer -----------------------------------------------------------------


@dataclass
class _Outcome:
    """One key's result."""

    missing: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    repaired: bool = False
    failed: bool = False


@dataclass
class _Tally:
    """Running counts of one bucket, or of the whole run."""

    azs: tuple[str, ...]
    keys_checked: int = 0
    keys_repaired: int = 0
    versions_written: int = 0
    keys_failed: int = 0
    missing: dict[str, int] = field(default_factory=dict)

    def add(self, o: _Outcome) -> None:
        self.keys_checked += 1
        self.keys_repaired += int(o.repaired)
        self.keys_failed += int(o.failed)
        self.versions_written += sum(o.written.values())
        for az, n in o.missing.items():
            self.missing[az] = self.missing.get(az, 0) + n

    def add_tally(self, t: _Tally) -> None:
        self.keys_checked += t.keys_checked
        self.keys_repaired += t.keys_repaired
        self.keys_failed += t.keys_failed
        self.versions_written += t.versions_written
        for az, n in t.missing.items():
            self.missing[az] = self.missing.get(az, 0) + n

    def report(self, bucket: str, done: bool = False) -> RepairReport:
        missing = dict.fromkeys(self.azs, 0)
        missing.update(self.missing)
        return RepairReport(
            bucket=bucket,
            keys_checked=self.keys_checked,
            keys_repaired=self.keys_repaired,
            versions_written=self.versions_written,
            missing_by_az=missing,
            keys_failed=self.keys_failed,
            done=done,
        )


class Repairer:
    """Runs repairs through this node's coordinator (its placement, its peers,
    its readers and its view of which nodes are up)."""

    def __init__(self, coord: Coordinator, cfg: NodeSection) -> None:
        self.coord = coord
        self.cfg = cfg

    async def run(self, bucket: str, dry_run: bool) -> AsyncIterator[RepairReport]:
        """Repair one bucket, or ("") every bucket and the internal ones.

        Yields the bucket's counts so far every ``repair_report_every`` keys and
        once it is through, then the totals with ``done`` set. With ``dry_run``
        nothing is written: what is missing is counted all the same.
        """
        coord = self.coord
        total = _Tally(coord.placer.azs)
        if bucket:
            validation.check_bucket_name(bucket)
            await coord.head_bucket(bucket)  # NoSuchBucket
            names = [bucket]
        else:
            # The bucket records first: a bucket an AZ lost is back before its
            # keys. The buckets are then found on every node, not by a listing:
            # a listing reads one AZ, which may be the one that lost them.
            async for report in self._repair_one(keys.BUCKETS, dry_run, total):
                yield report
            names = [*await self._buckets(), keys.UPLOADS]
        for name in names:
            async for report in self._repair_one(name, dry_run, total):
                yield report
        yield total.report(bucket, done=True)

    async def _repair_one(
        self, bucket: str, dry_run: bool, total: _Tally
    ) -> AsyncIterator[RepairReport]:
        """Repair one bucket: its reports, then its counts added to ``total``."""
        tally = _Tally(total.azs)
        async for _ in self._repair_bucket(bucket, dry_run, tally):
            yield tally.report(bucket)
        yield tally.report(bucket)
        total.add_tally(tally)
        log.info(
            "repair%s of %s: %d keys checked, %d repaired, %d records written, %d failed",
            " (dry run)" if dry_run else "",
            bucket,
            tally.keys_checked,
            tally.keys_repaired,
            tally.versions_written,
            tally.keys_failed,
        )

    async def _buckets(self) -> list[str]:
        """Every bucket with a record on any node, but those deleted (read as
        any read is; one that cannot be read now is repaired all the same:
        repair only spreads what is there)."""
        gate = asyncio.Semaphore(self.cfg.repair_parallel_keys)

        async def exists(name: str) -> bool:
            async with gate:
                try:
                    await self.coord.head_bucket(name)
                except NoSuchBucket:
                    return False
                except TristoreError as exc:
                    log.warning("repair: bucket %s not read (%s); repaired anyway", name, exc)
            return True

        names = [name async for batch in self._keys(keys.BUCKETS) for name in batch]
        found = await asyncio.gather(*(exists(n) for n in names))
        return [n for n, ok in zip(names, found, strict=True) if ok]

    async def _repair_bucket(
        self, bucket: str, dry_run: bool, tally: _Tally
    ) -> AsyncIterator[None]:
        """Repair every key of ``bucket``; yields after each ``repair_report_every`` keys."""
        gate = asyncio.Semaphore(self.cfg.repair_parallel_keys)
        every = self.cfg.repair_report_every

        async def one(key: str) -> None:
            async with gate:
                outcome = await self._repair_key(bucket, key, dry_run)
            tally.add(outcome)

        pending: list[str] = []
        async for names in self._keys(bucket):
            pending += names
            while len(pending) >= every:
                batch, pending = pending[:every], pending[every:]
                await asyncio.gather(*(one(k) for k in batch))
                yield
        await asyncio.gather(*(one(k) for k in pending))

    # -- finding the keys --------------------------------------------------------

    async def _keys(self, bucket: str) -> AsyncIterator[list[str]]:
        """Every key any node of any AZ holds a record of (current or version),
        in order, a batch at a time: the nodes' scans merged round by round up
        to the smallest key a node has not yet scanned past."""
        placer = self.coord.placer
        nodes = [n for az in placer.azs for n in placer.nodes_in(az)]
        live = [self.coord.peers.replica(n) for n in nodes]
        cursor = ""
        while live:
            results = await asyncio.gather(
                *(self._scan_node(r, bucket, cursor, self.cfg.repair_scan_batch) for r in live),
                return_exceptions=True,
            )
            names: set[str] = set()
            open_ends: list[str] = []
            answered: list[Replica] = []
            for replica, result in zip(live, results, strict=True):
                if isinstance(result, ReplicaUnavailable | TristoreError):
                    # Its keys are on nodes of two other AZs too; those are scanned.
                    log.warning(
                        "repair of %s: %s not scanned: %s", bucket, replica.spec.name, result
                    )
                    if isinstance(result, ReplicaUnavailable):
                        self.coord.peers.mark_down(replica.spec.name, str(result))
                    continue
                if isinstance(result, BaseException):
                    raise result
                found, open_end = result
                answered.append(replica)
                names.update(found)
                if open_end is not None:
                    open_ends.append(open_end)
            live = answered
            bound = min(open_ends) if open_ends else None
            batch = sorted(n for n in names if bound is None or n <= bound)
            if batch:
                yield batch
            if bound is None:
                return
            cursor = bound

    @staticmethod
    async def _scan_node(
        replica: Replica, bucket: str, cursor: str, limit: int
    ) -> tuple[list[str], str | None]:
        """Keys one node holds after ``cursor`` (current records and versions),
        and the last key it has surely listed (None: it has no more)."""
        (current, cur_done), (versions, ver_done) = await asyncio.gather(
            replica.scan(bucket, "", cursor, False, limit),
            replica.scan_versions(bucket, "", cursor, None, limit),
        )
        ends = [
            recs[-1].key
            for recs, done in ((current, cur_done), (versions, ver_done))
            if not done and recs
        ]
        open_end = min(ends) if ends else None
        found = {v.key for v in (*current, *versions)}
        return [k for k in found if open_end is None or k <= open_end], open_end

    # -- one key -------------------------------------------------------------------

    async def repair_key(self, bucket: str, key: str) -> bool:
        """Repair one key (what a scrub does for a damaged record of it); False
        when it could not be compared in every AZ or written back."""
        return not (await self._repair_key(bucket, key, dry_run=False)).failed

    async def _repair_key(self, bucket: str, key: str, dry_run: bool) -> _Outcome:
        REPAIR_KEYS_CHECKED.inc()
        try:
            return await self._compare_and_write(bucket, key, dry_run)
        except TristoreError as exc:
            log.warning("repair of %s/%s failed: %s: %s", bucket, key, exc.code, exc.message)
        except Exception:
            log.exception("repair of %s/%s failed", bucket, key)
        return _Outcome(failed=True)

    async def _compare_and_write(self, bucket: str, key: str, dry_run: bool) -> _Outcome:
        placement = self.coord.placer.place(bucket, key)
        n_azs = len(placement.azs)
        states, asked, rr = await self._read_azs(bucket, key)
        outcome = _Outcome(failed=len(states) < n_azs)
        plans = plan_key(states)
        if not plans:
            return outcome
        # Each version to write back, as the AZs hold it now: one removed for
        # good in any AZ stays removed, and its body is read from its holders.
        wanted = sorted({v.vstamp for p in plans for v in p.versions})
        found, removed, answered = await self._versions_now(bucket, key, wanted)
        outcome.failed = outcome.failed or answered < n_azs
        if removed:
            plans = plan_key(states, removed)
        head = next((p.head for p in plans if p.head is not None), None)
        head_holders = self._holders(
            rep
            for _, rep, v in rr.answers
            if head is not None and v is not None and v.stamp == head.stamp
        )
        by_az = {azr.az: azr for azr in placement.azs}
        for planned in plans:
            plan = _refreshed(planned, found)
            if not plan.missing:
                continue
            outcome.missing[plan.az] = plan.missing
            outcome.repaired = True
            if dry_run:
                continue
            bodies: dict[bytes, tuple[ObjectVersion, list[Replica]]] = {}
            for v in plan.versions:
                if v.data_id:
                    bodies.setdefault(v.data_id, (v, found[v.vstamp][1]))
            if plan.head is not None and plan.head.data_id:
                bodies.setdefault(plan.head.data_id, (plan.head, head_holders))
            has = {v.data_id for v in states[plan.az].versions if v.data_id}
            change = _change(bucket, key, plan)
            if await self._write_to(by_az[plan.az], change, bodies, asked[plan.az], has):
                outcome.written[plan.az] = plan.missing
                REPAIR_VERSIONS_WRITTEN.labels(plan.az).inc(plan.missing)
                log.debug("repair of %s/%s: %d records to %s", bucket, key, plan.missing, plan.az)
            else:
                log.warning("repair of %s/%s: no node of %s took the write", bucket, key, plan.az)
                outcome.failed = True
        return outcome

    async def _read_azs(
        self, bucket: str, key: str
    ) -> tuple[dict[str, AzHeld], dict[str, Replica], ReplicaRead]:
        """What each of the key's AZs holds (current record and versions), the
        node that answered for it, and the read of the current records. An AZ
        missing from the first two did not answer."""
        held, rr = await asyncio.gather(
            self._held_versions(bucket, key), self.coord.protocol.read_replicas(bucket, key)
        )
        heads = {azr.az: v for azr, _, v in rr.answers}
        states: dict[str, AzHeld] = {}
        asked: dict[str, Replica] = {}
        for azr, rep, vs, _ in held:
            if azr.az in heads:
                states[azr.az] = AzHeld(heads[azr.az], tuple(vs))
                asked[azr.az] = rep
        return states, asked, rr

    async def _held_versions(
        self, bucket: str, key: str
    ) -> list[tuple[AzReplicas, Replica, list[ObjectVersion], bool]]:
        """Every version each answering AZ holds of the key (with inline bodies)."""
        for limit in VERSION_LIMITS:
            held = await self.coord.protocol.versions_in_azs(
                bucket, key, None, limit, _WHAT, every=False
            )
            if all(len(vs) < limit for _, _, vs, _ in held):
                return held
        raise TristoreError(f"{bucket}/{key} has more than {VERSION_LIMITS[-1]} versions in an AZ")

    async def _versions_now(
        self, bucket: str, key: str, wanted: Sequence[Stamp]
    ) -> tuple[dict[Stamp, tuple[ObjectVersion, list[Replica]]], set[Stamp], int]:
        """Versions of the key read one by one from every AZ: those some AZ
        holds (the newest record, and the replicas holding its body), those
        some AZ removed for good, and the fewest AZs that answered a read."""
        reads = await asyncio.gather(
            *(
                self.coord.protocol.versions_in_azs(bucket, key, s, 1, _WHAT, every=False)
                for s in wanted
            )
        )
        found: dict[Stamp, tuple[ObjectVersion, list[Replica]]] = {}
        removed: set[Stamp] = set()
        answered = min((len(r) for r in reads), default=REPLICA_AZS)
        for vstamp, answers in zip(wanted, reads, strict=True):
            if any(gone for _, _, _, gone in answers):
                removed.add(vstamp)
                continue
            recs = [(rep, vs[0]) for _, rep, vs, _ in answers if vs]
            if recs:
                best = max((v for _, v in recs), key=lambda v: v.stamp)
                holders = self._holders(rep for rep, v in recs if v.data_id == best.data_id)
                found[vstamp] = (best, holders)
        return found, removed, answered

    def _holders(self, reps: Iterable[Replica]) -> list[Replica]:
        """Replicas to read a body from, this node first."""
        return sorted(reps, key=lambda rep: rep.spec.name != self.coord.me.name)

    async def _write_to(
        self,
        azr: AzReplicas,
        change: Change,
        bodies: Mapping[bytes, tuple[ObjectVersion, list[Replica]]],
        asked: Replica,
        has: set[bytes],
    ) -> bool:
        """Commit ``change`` on the first node of the AZ that takes it (a fallback
        keeps a hint for the home, as for any write), staging first the chunked
        bodies it does not hold. False when no node of the AZ answered."""
        coord = self.coord
        for node in coord.quorum.candidates(azr):
            replica = coord.peers.replica(node)
            try:
                for data_id, (v, holders) in bodies.items():
                    if node.name == asked.spec.name and data_id in has:
                        continue  # the body of a record it holds at an older stamp
                    await replica.stage(data_id, coord.quorum.copy_chunks(v, holders))
                await replica.commit(change, "" if node.name == azr.home.name else azr.home.name)
            except ReplicaUnavailable as exc:
                coord.peers.mark_down(node.name, str(exc))
                continue
            return True
        return False


def _refreshed(plan: AzPlan, found: Mapping[Stamp, tuple[ObjectVersion, list[Replica]]]) -> AzPlan:
    """``plan`` with each version as it was read last (the newer record wins);
    a version no AZ holds any more (a null version replaced meanwhile, a
    stand-in's copy handed back) is left out."""
    versions = []
    for v in plan.versions:
        if v.vstamp in found:
            now, _ = found[v.vstamp]
            versions.append(now if now.stamp >= v.stamp else v)
    return AzPlan(plan.az, plan.head, tuple(versions))


def _change(bucket: str, key: str, plan: AzPlan) -> Change:
    """One merging commit of everything an AZ lacks of a key: each record is
    taken only where it is newer, so a write that raced the repair stays."""
    versions = list(plan.versions)
    head = plan.head
    removed: tuple[Stamp, ...] = ()
    withdrawn: tuple[Stamp, ...] = ()
    if head is not None:
        # As the head's own commit carried it (Change.of): its version record
        # (for an unversioned DELETE, the null version it ends) and its removals.
        if (head.is_version or head.null_version) and all(
            v.vstamp != head.vstamp for v in versions
        ):
            versions.append(head)
        removed, withdrawn = head.removed, tries_of(head)
    stamp = max(v.stamp for v in (*versions, *((head,) if head is not None else ())))
    return Change(
        bucket,
        key,
        stamp,
        head=head,
        versions=tuple(versions),
        removed=removed,
        merge=True,
        withdrawn=withdrawn,
    )


async def serve_repair(
    repairer: Repairer, request: admin_pb2.RepairRequest
) -> AsyncIterator[admin_pb2.RepairProgress]:
    """AdminService.Repair: the repairer's reports as protobuf."""
    async for report in repairer.run(request.bucket, request.dry_run):
        yield convert.repair_report_to_pb(report)


async def rebuild_if_new(
    repairer: Repairer, store: ReplicaStore, peers: Peers, rebuilding: Callable[[bool], None]
) -> None:
    """A node whose data directory is new, in a cluster that already holds
    data (a replaced disk, a wiped node, a node added to the map), repairs
    every key so that its AZ's copies are whole again. Meanwhile it reports a
    handoff pending, so listings do not rely on its AZ alone; reads ask all
    three AZs anyway. A new cluster needs nothing: no peer held data from
    before this node's data directory was made (stamp times compared)."""
    if not store.needs_rebuild:
        return
    await peers.wait_for_peers(say=False)
    statuses = await asyncio.gather(
        *(r.node_status() for r in list(peers.remote.values())), return_exceptions=True
    )
    mine = store.created_ms
    older = [
        st.name
        for st in statuses
        if not isinstance(st, BaseException) and 0 < st.first_change_ms < mine
    ]
    if not older:
        log.info("new data directory in a new cluster: nothing to rebuild")
        await store.rebuilt()
        rebuilding(False)
        return
    log.info("peers holding data older than this data directory: %s", ", ".join(older))
    rebuilding(True)  # the node set it at start already; a listing must not wait for this
    try:
        while True:
            log.warning(
                "new data directory in a cluster that holds data (a replaced disk, a wiped "
                "or a new node): rebuilding this AZ's copies from the other AZs"
            )
            final: RepairReport | None = None
            try:
                async for report in repairer.run("", dry_run=False):
                    final = report
            except TristoreError as exc:
                log.warning("rebuild interrupted: %s; trying again", exc)
            if final is not None and final.done and not final.keys_failed:
                log.info(
                    "rebuilt: %d keys checked, %d repaired, %d records written",
                    final.keys_checked,
                    final.keys_repaired,
                    final.versions_written,
                )
                await store.rebuilt()
                return
            await asyncio.sleep(repairer.cfg.repair_rebuild_retry_s)
    finally:
        rebuilding(False)
