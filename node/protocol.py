"""The linearizable read/write protocol of one key: stamps, the three-AZ commit,
the witness barrier and the finishing of unfinished writes.

Write (:meth:`Protocol.write`): take a stamp above the key's floor, commit in
one node of each of the key's three AZs, then confirm: record the stamp at a
witness-group majority (the read barrier) and cache the version.

Read (:meth:`Protocol.read`): ask the witness majority for the newest
acknowledged stamp ``w``. A cached version at least as new as ``w`` is served
as is. Otherwise one node in each AZ is asked; the newest version is returned,
and if it is newer than ``w`` (or the witness does not know the key) it is an
unfinished write, finished first (:meth:`Protocol.finish`): written back to the
AZs that lack it and recorded at the witness.

The invariants every step keeps:

- only finished versions (acknowledged, or written back) enter the metadata
  cache or are returned;
- a current record's stamp only grows, and a write's stamp is above every
  acknowledged stamp of its key (the witness's, or the replicas' when the
  witness does not know the key);
- a confirmation is fenced: witnesses that restarted since the change (or the
  read that found it) began refuse it, and the nodes are read again.

The public steps are those the object operations, replication apply, repair
and multipart uploads are built from; the replicas are reached through
node/quorum.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Set
from dataclasses import dataclass, field, replace

from node.cache import MetadataCache
from node.metrics import (
    CACHE_HITS,
    CACHE_MISSES,
    CORRUPT_REPAIRED,
    CREATES_REFUSED,
    EDITS_YIELDED,
    READS_OVERTAKEN,
    READS_PROMOTED,
    WRITE_BACKS,
    WRITES_ABOVE_CONDITIONS,
    WRITES_ABOVE_OLDER,
    WRITES_YIELDED,
)
from node.peers import Replica, ReplicaUnavailable
from node.quorum import AzDown, Quorum, Target, quorum_error
from node.replica_store import CommitResult
from node.witness_client import Fence, WitnessFleet
from tristore.config import NodeSection, NodeSpec
from tristore.errors import (
    ConditionalRequestConflict,
    CorruptData,
    InvalidArgument,
    ServiceUnavailable,
)
from tristore.loops import LoopBound
from tristore.model import NULL_VERSION, Change, ObjectVersion, evolve
from tristore.placement import AzReplicas, Placement, Placer
from tristore.stamps import ZERO, HybridClock, Stamp

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplicaRead:
    """What a key's AZs hold as its current record: one node of each (the
    first that answers), or every node of each (``every``)."""

    placement: Placement
    #: The newest version any answering node holds.
    best: ObjectVersion | None
    #: Replicas holding ``best``, this node first.
    holders: list[Replica]
    #: (AZ, replica, what it holds) for every AZ some node of which answered:
    #: the replica asked, or (``every``) the one holding the AZ's newest.
    answers: list[tuple[AzReplicas, Replica, ObjectVersion | None]]
    #: AZs whose replica's record failed its checksum: taken as holding
    #: nothing (in ``answers`` with None), and owed a sound copy.
    corrupt: tuple[AzReplicas, ...] = ()
    #: AZs none of whose nodes answered; with ``every``, also those only
    #: some of whose nodes answered (the nodes that did not).
    down: tuple[AzDown, ...] = ()
    #: Whether every node of each AZ was asked.
    every: bool = False
    #: With ``every``: the AZs every node of which answered. What such an AZ
    #: holds is known; one only some of whose nodes answered may hold a
    #: newer version on a node that did not (a write it took while the
    #: others were away, or a hint not yet handed back to a home).
    heard: frozenset[str] = frozenset()
    #: With ``every``: of every record found, one with the greatest version
    #: stamp (it may stand below ``best``, a record of an older version).
    newest_version: ObjectVersion | None = None

    def answered(self) -> set[str]:
        return {azr.az for azr, _, _ in self.answers}


#: What one AZ holds of a key's versions: (AZ, replica asked, versions, whether
#: the one asked for was removed for good).
AzVersions = tuple[AzReplicas, Replica, list[ObjectVersion], bool]


async def _read_meta(
    replica: Replica, bucket: str, key: str, damaged: set[str]
) -> ObjectVersion | None:
    """A replica's current record of the key; a damaged one (CorruptData) as
    none, its node's name added to ``damaged``: another AZ serves the read."""
    try:
        return await replica.read_meta(bucket, key, True)
    except CorruptData as exc:
        log.warning("record of %s/%s on %s is damaged: %s", bucket, key, replica.spec.name, exc)
        damaged.add(replica.spec.name)
        return None


async def _read_versions(
    replica: Replica,
    bucket: str,
    key: str,
    vstamp: Stamp | None,
    null: bool,
    limit: int,
    damaged: set[str],
) -> tuple[list[ObjectVersion], bool]:
    """As :func:`_read_meta`, for version records."""
    try:
        return await replica.read_versions(bucket, key, vstamp, null, limit, True)
    except CorruptData as exc:
        log.warning("versions of %s/%s on %s are damaged: %s", bucket, key, replica.spec.name, exc)
        damaged.add(replica.spec.name)
        return [], False


def parse_version_id(version_id: str) -> Stamp | None:
    """The stamp of a version id; None for the null version (as
    :meth:`Protocol.read_version` takes it)."""
    if version_id == NULL_VERSION:
        return None
    try:
        return Stamp.from_version_id(version_id)
    except ValueError:
        raise InvalidArgument(f"version id {version_id!r} is not valid") from None


@dataclass
class VersionLook:
    """What the nodes of a key's AZs answered of one version."""

    #: AZs every node of which answered.
    whole: set[str] = field(default_factory=set)
    #: AZs a node of which holds the version's removal.
    removed_in: set[str] = field(default_factory=set)
    #: The nodes holding the version, with their copy.
    found: list[tuple[Replica, ObjectVersion]] = field(default_factory=list)
    #: The nodes that did not answer, by AZ.
    down: list[AzDown] = field(default_factory=list)
    #: AZs some node of which answered.
    heard: set[str] = field(default_factory=set)


def _version_name(vstamp: Stamp | None) -> str:
    return NULL_VERSION if vstamp is None else vstamp.version_id


class _FirstTryUndecided(Exception):
    """Internal: a PUT tried as a create whose first try the first AZ left
    undecided (its home did not answer, its fallback refused)."""


class _Overtaken(Exception):
    """A read's finishing of a version met a record of an older version
    above it in some AZ (:meth:`Protocol.finish`); the stamp of that record."""

    def __init__(self, above: Stamp) -> None:
        super().__init__(f"a record of an older version at {above} is above it")
        self.above = above


class _Yielded(Exception):
    """A version stamped again above a record of an older version met, in
    some AZ, a *newer* version current there (written at the same time):
    kept there as its version's record only (CommitResponse.newer_version).
    Its stamp is then no current record of the key, so it is not recorded
    at the witness (:meth:`Protocol._merge_above_older`)."""


class ReplicaRemoved(Exception):
    """Raised by :meth:`Protocol.write` of a replica whose version was
    removed here for good (a DELETE of it by version id on this cluster):
    a late or repeated send never brings it back. Never leaves the node."""


class ReplicaHeld(Exception):
    """Raised by :meth:`Protocol.write` of a replica whose version is held
    here already, as the key's current version or as a noncurrent one:
    another apply of that very version got in first (a copy sent twice: a
    replicator killed mid-stream and its resend, or the version's tags
    changed while its first send was in flight). This copy's body is not
    committed: recorded as that version's record, it would replace the body
    the record held names, which would then be collected as superseded, and
    its tags would win for coming last, though maybe older. The caller
    settles the tags and ACL by their modification stamp
    (:meth:`ReplicationApply.sync_modification`); this copy's staged chunks
    are collected as abandoned. Never leaves the node."""

    def __init__(self, held: ObjectVersion) -> None:
        super().__init__(f"{held.bucket}/{held.key}@{held.version_id} is held here already")
        self.held = held


class NotKnown:
    """:meth:`Protocol.floor`'s answer for a key a member of the witness
    majority does not know: its floor is not read from the replicas yet."""


NOT_KNOWN = NotKnown()
#: A key's floor (:meth:`Protocol.floor`).
Floor = Stamp | None | NotKnown


class Protocol:
    """The protocol's steps, run by this node as coordinator."""

    def __init__(
        self,
        ncfg: NodeSection,
        me: NodeSpec,
        placer: Placer,
        clock: HybridClock,
        quorum: Quorum,
        cache: MetadataCache,
        witness: WitnessFleet | None = None,
    ) -> None:
        self.ncfg = ncfg
        self.me = me
        self.placer = placer
        self.clock = clock
        self.quorum = quorum
        self.cache = cache
        self.witness = witness
        self._loop = LoopBound()

    # -- writes ----------------------------------------------------------------

    async def write(
        self,
        head: ObjectVersion,
        targets: list[Target] | None = None,
        expect: Stamp | None = None,
        replica: bool = False,
        floor: asyncio.Future[Floor] | None = None,
        created: bool = False,
    ) -> ObjectVersion:
        """Make ``head`` the key's current record in all three AZs; returns it
        with the stamp it got. ``created``: see :attr:`Change.created`.

        ``floor`` is the key's floor if the caller asked for it already
        (:meth:`early_floor`), to share a witness message with its own reads.

        A ``replica`` (a version another cluster wrote, brought by a replicator)
        goes through :meth:`_write_replica`.

        An unconditional write first learns the key's floor: the witness's stamp
        (every acknowledged write of the key is at or below it), or, when the
        witness does not know the key, the newest stamp its replicas hold. Its
        stamp is taken above that, so it is ordered after every write that was
        acknowledged before it began. A key the witness majority does not know
        (most often a new key) is first tried as a create: a conditional write
        expecting nothing, which the first AZ decides against what every node
        of it holds (an acknowledged write is in all three AZs), so no floor is
        read; refused (the key is there, or the AZ cannot tell), the write
        goes on as above, its floor read from the replicas. A replica that
        holds a newer stamp than this write's at commit holds a *concurrent*
        write, which may come after
        it: the write is then added as a version there but does not become
        current (last writer wins), and it is not stamped again. (Stamping again
        would make it current a second time after a concurrent delete a reader
        may already have seen: flicker.)

        Without witnesses, a replica holding a newer stamp makes the write take a
        stamp above it and go again.

        With ``expect`` the write is conditional: the key's first AZ takes it
        first, and refuses it (ConditionalRequestConflict, nothing written
        anywhere) when its current record is newer than ``expect``. Racing
        conditional writes are thereby serialized there: one wins.
        """
        if replica:
            return await self._write_replica(head, targets)
        try:
            return await self._write(head, targets, expect, floor, created)
        except BaseException:
            # A write that failed may have left a change in some AZs (the first
            # AZ took a conditional try, then the others failed, or the request
            # was cancelled), and a refused one met something newer than the
            # read it was checked against, maybe such an unfinished write.
            self.forget(head.bucket, head.key)
            raise

    def forget(self, bucket: str, key: str) -> None:
        """The key's next read here asks its replicas, not this node's cache:
        for a caller that has reason to think the key holds a write no one
        finished (its first AZ took it, then its coordinator died or its
        request was cancelled). Such a write is newer than the cached version
        but unknown to the witness, so a cache hit never shows it, and every
        conditional write checked against the entry would be refused for as
        long as it stayed. A read of the replicas finds it and finishes it."""
        self.cache.forget(bucket, key)

    async def _write(
        self,
        head: ObjectVersion,
        targets: list[Target] | None,
        expect: Stamp | None,
        floor: asyncio.Future[Floor] | None,
        created: bool = False,
    ) -> ObjectVersion:
        placement = self.placer.place(head.bucket, head.key)
        fence = self.fence(head.bucket, head.key)
        if expect is None and self.witness is not None:
            known: Stamp | None = None
            if self.ncfg.unsafe_skip_floor:  # the mutant the tests must catch
                if floor is not None:
                    floor.cancel()
            else:
                found = await (floor if floor is not None else self.floor(head.bucket, head.key))
                if isinstance(found, NotKnown):
                    written, undecided = await self._create(head, placement, targets, fence)
                    if written is not None:
                        return written
                    if undecided:
                        # Whether the first AZ's home took the try is unknown:
                        # this write goes above it, and removes it (a version
                        # no one was told of).
                        head = self._restamped(head)
                    found = await self.replicas_floor(head.bucket, head.key)
                known = found
            if known is not None:
                self.clock.observe(known)
                if head.stamp <= known:
                    head = evolve(head, stamp=self.clock.now())
            try:
                head = await self._merge_above_older(head, placement, targets)
            except _Yielded:
                # A newer version, written at the same time, is current in
                # some AZ: this write is the older of two concurrent ones and
                # stays a version. Recorded, the witness would vouch for a
                # stamp no node holds as current, and every read of the key
                # would fail until its next write (the simulation, seed 1842
                # with edits). The key is read instead, which settles it on
                # the newer version.
                WRITES_YIELDED.inc()
                self.forget(head.bucket, head.key)
                await self.read(head.bucket, head.key)
            else:
                await self.confirm(head, fence)
            return head
        return await self._write_conditional(
            head, placement, targets, expect, fence, created=created, condition=expect
        )

    async def _merge_above_older(
        self, head: ObjectVersion, placement: Placement, targets: list[Target] | None
    ) -> ObjectVersion:
        """Commit ``head``, a new version, in all three AZs as a merge (last
        writer wins: where a newer record is held it is kept as a version).

        Except above a record of an *older* version stamped above it: an edit
        of that version (new tags, a replication status) or a DELETE of a
        version, which the key's first AZ took as a conditional write before
        this write got there. Kept below it, this version would be
        acknowledged and the older one read as current (an edit of a version
        never makes it current in S3). So ``head`` is stamped again above
        what the AZs answered, keeping its version id, and committed again;
        the first AZ decided that record before it held this write, so no
        read can have returned this write before it (the protocol model:
        ``versions_go_above_older_records``). And except below the record of
        a conditional write whose condition read a record older than this
        write, which the first AZ's home took before this write got there
        (CommitResult.below_condition): the conditional write came first, so
        this one is stamped again above it as a new version, for the same
        reason no read can have returned it (the model:
        ``writes_go_above_conditions``). Raises ServiceUnavailable
        after ``restamp_attempts`` such rounds (a key edited without pause):
        the write may then be visible or not, as any failed write."""
        for _attempt in range(self.ncfg.restamp_attempts):
            change = evolve(Change.of(head), merge=True)
            results = await self.commit_change(change, placement, targets)
            if any(r.newer_version for r in results):
                raise _Yielded
            above = [r.current for r in results if r.older_above]
            if above:
                WRITES_ABOVE_OLDER.inc()
                self.clock.observe(max(above))
                # Its earlier round committed any removals it carries everywhere.
                head = evolve(head, stamp=self.clock.now(), version_stamp=head.vstamp, removed=())
            elif results[0].below_condition:
                # The first AZ's home took a conditional write, whose
                # condition read a record older than this write, before this
                # write got there: that write is first, and this one goes
                # above it, a new version (its earlier try removed), or it
                # would be acknowledged and lost below it (a write no read
                # can have returned: it was never current in the first AZ).
                WRITES_ABOVE_CONDITIONS.inc()
                self.clock.observe(results[0].current)
                head = self._restamped(head)
            else:
                return head
        raise ServiceUnavailable(
            f"{head.bucket}/{head.key} kept being edited or written conditionally while "
            "this write ran; retry it"
        )

    async def _write_conditional(
        self,
        head: ObjectVersion,
        placement: Placement,
        targets: list[Target] | None,
        expect: Stamp | None,
        fence: Fence,
        create: bool = False,
        created: bool = False,
        condition: Stamp | None = None,
    ) -> ObjectVersion:
        """A write the first AZ decides against ``expect`` (None: without
        witnesses, a plain write a newer replica sends round again). A
        ``create`` (a PUT tried as one: :meth:`write`) whose first try the
        first AZ left undecided raises :class:`_FirstTryUndecided`.
        ``created``: see :attr:`Change.created`; ``condition``: the caller's
        condition (:attr:`Change.condition`), kept by every try."""
        prev = head
        attempts = self.ncfg.restamp_attempts
        for attempt in range(attempts):
            change = Change.of(head, expect, created, condition)
            try:
                results = await self.commit_change(change, placement, targets)
            except ConditionalRequestConflict:
                if attempt == 0:
                    raise  # refused before anything was written: a true refusal
                # The try before this one was taken by the first AZ, which
                # serializes the key's conditional changes: it happened, and what
                # got there since came after it. So that try is finished as any
                # write is (a merge commit: current where it is the newest, a
                # version where it is not) and this request succeeds with it.
                # Refusing now would be false: a reader may have seen it.
                head = prev
                change = evolve(Change.of(head), merge=True)
                results = await self.commit_change(change, placement, targets)
                break
            except ServiceUnavailable:
                if create and attempt == 0:
                    raise _FirstTryUndecided from None
                raise
            newer = [r.current for r in results if not r.applied and r.current > head.stamp]
            if not newer:
                break
            prev = head
            self.clock.observe(max(newer))
            if attempt + 1 < attempts:
                if expect is not None:
                    expect = head.stamp  # the first AZ holds this try: go on from it
                head = self._restamped(head)
        if any(r.newer_version for r in results):
            # An AZ holds a newer version than the one ``head`` is a record
            # of (an edit stamped above a write that got there first), and
            # kept ``head`` as that version's record only: ``head`` is not
            # the key's current record, so it is not recorded. The edit took
            # effect on its version; a read finishes the newer version above
            # it where the first AZ took the edit (:meth:`_promote_newer`).
            EDITS_YIELDED.inc()
            self.forget(head.bucket, head.key)
            await self.read(head.bucket, head.key)
            return head
        await self.confirm(head, fence)
        return head

    async def _create(
        self,
        head: ObjectVersion,
        placement: Placement,
        targets: list[Target] | None,
        fence: Fence,
        created: bool = False,
    ) -> tuple[ObjectVersion | None, bool]:
        """``head`` tried as a create: a conditional write expecting nothing,
        which the key's first AZ takes only if no node of it holds the key.
        (the version written, or None; whether the first try was left
        undecided: the first AZ's home did not answer). One not written is
        counted in ``tristore_creates_refused_total``."""
        try:
            written = await self._write_conditional(
                head, placement, targets, ZERO, fence, create=True, created=created
            )
            return written, False
        except ConditionalRequestConflict:
            undecided = False  # refused before anything was written: the key is there
        except _FirstTryUndecided:
            undecided = True
        CREATES_REFUSED.inc()
        return None, undecided

    def _restamped(self, head: ObjectVersion) -> ObjectVersion:
        """``head`` stamped again, removing its earlier try (a version: a
        record that takes a version's place keeps its version stamp)."""
        left = (head.stamp,) if head.version_stamp is None and head.is_version else ()
        return evolve(head, stamp=self.clock.now(), removed=head.removed + left)

    async def _write_replica(self, v: ObjectVersion, targets: list[Target] | None) -> ObjectVersion:
        """A version another cluster wrote keeps its version id (``vstamp``)
        and becomes current only if it is newer than the current version *by
        version stamp*: a record's own stamp also moves when its tags or status
        change, which must not outrank a newer version. So every cluster
        settles on the same current version of a key, whatever order it learns
        of its versions in (last writer wins; stamps carry cluster and node ids,
        so there are no ties). An older one is added as a noncurrent version.
        The record is stamped above the current one, by a conditional write
        tried again if the key moves meanwhile: current records' stamps only
        grow, as the witness needs.

        A key the witness majority does not know (most often one new here) is
        first tried as a create, as a PUT is (:meth:`write`): a conditional
        write expecting nothing, which the key's first AZ decides against what
        every node of it holds, so the current record is not read from every
        node first. Refused (the key is there, or the AZ cannot tell) or
        undecided (the first AZ's home did not answer), it goes on as above:
        the read finds the key, or the try if the home took it.

        Only when the key is here (the create was not taken, or the witness
        knows the key) is the version looked for first (:meth:`spread_version`,
        every node of every AZ): one whose version is held here already
        (another apply of it got in first, or an earlier try reached some
        AZs) is not stored again: :class:`ReplicaHeld`, once every AZ holds
        it; one removed here for good is not stored at all:
        :class:`ReplicaRemoved`. A create taken needs no look: the first AZ
        took it holding nothing of the key (a removal record, or the marker
        of that very version's removal on its home, refuses it), and every
        change of a key, an earlier apply's among them, reaches the other AZs
        only after the first AZ took it. So a new key costs its apply the
        create alone, as it costs a PUT. Nor is an older one stored whose
        version another apply added meanwhile (:meth:`_add_noncurrent_replica`)."""
        bucket, key = v.bucket, v.key
        self.clock.observe(v.stamp)
        checked: tuple[ObjectVersion | None, Stamp | None, bool] | None = None
        if self.witness is not None and not self.ncfg.unsafe_skip_witness:
            cached = self.cache.get(bucket, key)
            fence = self.fence(bucket, key)
            w, agreed = await self.witness.check_agreed(bucket, key)
            if w is None:
                record = evolve(v, stamp=self.clock.now(), version_stamp=v.vstamp)
                placement = self.placer.place(bucket, key)
                written, _ = await self._create(record, placement, targets, fence, created=True)
                if written is not None:
                    return written
            else:
                checked = (cached, w, agreed)  # the loop's first read starts from it
        held, removed, _ = await self.spread_version(bucket, key, v.vstamp)
        if removed:
            raise ReplicaRemoved(f"{bucket}/{key}@{v.version_id} was removed here")
        if held is not None:
            raise ReplicaHeld(held)
        for _attempt in range(self.ncfg.restamp_attempts):
            if checked is not None:
                current, _ = await self._read_checked(bucket, key, *checked)
                checked = None
            else:
                current, _ = await self.read(bucket, key)
            if current is not None:
                self.clock.observe(current.stamp)
            if current is not None and current.vstamp == v.vstamp:
                raise ReplicaHeld(current)
            record = evolve(v, stamp=self.clock.now(), version_stamp=v.vstamp)
            if current is not None and current.vstamp > v.vstamp:
                await self._add_noncurrent_replica(record, targets)
                return record
            try:
                return await self.write(
                    record,
                    targets,
                    expect=current.stamp if current is not None else ZERO,
                    created=True,
                )
            except ConditionalRequestConflict:
                continue
        raise ConditionalRequestConflict(f"{bucket}/{key} kept changing; the replica is retried")

    async def _add_noncurrent_replica(
        self, record: ObjectVersion, targets: list[Target] | None
    ) -> None:
        """Add ``record``, a replica older than the key's current version, as
        a noncurrent version: only if no record of it is held (a change with
        ``new_versions``, which the key's first AZ decides before the others
        are sent it). A record held already came from another apply of the
        same version that got in first (two sends at once): :class:`ReplicaHeld`
        with it, as for a current version. Its record is never replaced by
        this copy, which would send the body it names to the collector, and
        let whichever copy committed last win, not the one whose tags changed
        last (a version record keeps the newest record stamp)."""
        bucket, key = record.bucket, record.key
        change = Change(
            bucket, key, record.stamp, versions=(record,), created=True, new_versions=True
        )
        try:
            await self.commit_change(change, self.placer.place(bucket, key), targets)
        except ConditionalRequestConflict:
            # Refused: the first AZ holds the version (or could not hear its
            # other nodes). Taken as the AZs hold it, written back first to
            # those an earlier try of it did not reach.
            held, _, _ = await self.spread_version(bucket, key, record.vstamp)
            if held is not None:
                raise ReplicaHeld(held) from None
            raise

    async def commit_change(
        self,
        change: Change,
        placement: Placement,
        targets: list[Target] | None = None,
    ) -> list[CommitResult]:
        """Commit ``change`` in all three AZs (a conditional one in the first AZ
        first, and in the others only once that one took it), without the
        witness: for changes that do not move the key's current record (a
        version added or removed) or that :meth:`confirm` follows."""
        return await self.quorum.commit(change, placement, targets)

    async def replicas_floor(self, bucket: str, key: str) -> Stamp | None:
        """The newest stamp the key's replicas hold, read as a read the witness
        cannot vouch for reads them (every node of each AZ, a majority of AZs
        heard: :meth:`need_azs`), so that it is also above every version a
        read finished and returned (None: none)."""
        rr = await self.read_replicas(bucket, key, every=True)
        self.need_azs(rr, f"a write of {bucket}/{key}", first=False)
        return rr.best.stamp if rr.best is not None else None

    async def floor(self, bucket: str, key: str) -> Floor:
        """A stamp at or above every acknowledged write of the key: the
        witness majority's; :data:`NOT_KNOWN` when a member does not know
        the key (then :meth:`replicas_floor` is, unless the write is tried as
        a create first: :meth:`write`)."""
        assert self.witness is not None
        w = await self.witness.check(bucket, key)
        return w if w is not None else NOT_KNOWN

    def early_floor(self, bucket: str, key: str) -> asyncio.Future[Floor] | None:
        """Start asking the key's floor now, for an unconditional write about
        to begin: a floor taken any time after the request began is a floor
        for it, and asked in the same turn as the request's other witness
        checks (its bucket's record) it shares their message. None without
        witnesses. Hand the result to :meth:`write`; cancel it if the write
        does not happen."""
        if self.witness is None:
            return None
        return self._loop.loop.create_task(self.floor(bucket, key))

    def fence(self, bucket: str, key: str) -> Fence:
        """The witnesses' incarnations now: taken before a change (or the read
        that finds one) begins, and handed to :meth:`confirm`."""
        return self.witness.fence(bucket, key) if self.witness is not None else ()

    async def confirm(self, version: ObjectVersion, fence: Fence) -> None:
        """Make a version durable in three AZs visible: record it at a witness
        majority (so every later read knows of it), then cache it.

        ``fence`` was taken before the change (or the read that found it) began.
        If witnesses restarted since, they refuse it (see node/witness_client.py):
        then the nodes are read under a new fence and the newest they hold,
        finished where it must be, is recorded instead.
        """
        if self.witness is not None:
            bucket, key = version.bucket, version.key
            for _ in range(self.ncfg.confirm_attempts):
                if await self.witness.record(bucket, key, version.stamp, fence):
                    break
                fence = self.fence(bucket, key)
                rr = await self.read_replicas(bucket, key, every=True)
                # Read as a read the witness cannot vouch for: a newer version
                # a read returned must be found, or this one, recorded and
                # cached, would bring back an older one.
                self.need_azs(rr, f"confirming {bucket}/{key}", first=False)
                if rr.best is not None and rr.best.stamp > version.stamp:
                    await self.spread_to_majority(rr.best, rr)
                    version = rr.best
            else:
                raise ServiceUnavailable(
                    f"the witnesses of {bucket}/{key} kept restarting while this request "
                    "confirmed it; it is durable on the nodes, retry to see it confirmed"
                )
        self.cache.put(version)

    # -- reads -----------------------------------------------------------------

    async def home_record(self, bucket: str, key: str) -> ObjectVersion | None:
        """The key's current record as the home of its first AZ holds it, its
        inline body included, or None (it holds none, it is down or does not
        answer, its record is damaged). Not a read: no witness vouches for it
        and no other node is asked, so it may be behind what was acknowledged
        (a home back from the dead) or ahead of it (a write that home took
        alone). It is a guess for a conditional write, which that same home
        decides against what every node of its AZ holds: one built on a
        record behind is refused there, with nothing written (the caller
        then reads as :meth:`read` does), and one built on a record ahead
        finishes that write as a read would (Objects.update_version)."""
        home = self.placer.place(bucket, key).azs[0].home
        if not self.quorum.peers.is_up(home.name):
            return None
        try:
            return await self.quorum.peers.replica(home).read_meta(bucket, key, True)
        except (ReplicaUnavailable, CorruptData):
            return None

    async def read(self, bucket: str, key: str) -> tuple[ObjectVersion | None, list[Replica]]:
        """The key's current version, linearizably, and replicas known to hold it.

        The witness majority gives ``w``, the newest acknowledged stamp. A cached
        version at least as new as ``w`` is current. Otherwise the replicas are
        read; a version newer than ``w`` (or any version, when the witness does
        not know the key) may be an unfinished write, and is finished (written
        back to three AZs and recorded at the witness) before it is returned, so
        no later read can return anything older.
        """
        if self.witness is None:
            rr = await self.read_replicas(bucket, key)
            if rr.best is not None:
                self.heal_records(rr.best, rr)
            return rr.best, rr.holders
        cached = self.cache.get(bucket, key)
        if self.ncfg.unsafe_skip_witness and cached is not None:
            CACHE_HITS.inc()
            return cached, []
        w, agreed = await self.witness.check_agreed(bucket, key)
        return await self._read_checked(bucket, key, cached, w, agreed)

    async def _read_checked(
        self,
        bucket: str,
        key: str,
        cached: ObjectVersion | None,
        w: Stamp | None,
        agreed: bool,
    ) -> tuple[ObjectVersion | None, list[Replica]]:
        """:meth:`read` once the witness majority answered ``w`` (``agreed``
        or not); ``cached``: this node's cached version, taken before it asked."""
        assert self.witness is not None
        if cached is not None and w is not None and cached.stamp >= w:
            CACHE_HITS.inc()
            return cached, []
        CACHE_MISSES.inc()
        fence = self.fence(bucket, key)  # before the nodes are read: see confirm
        if w is not None and agreed:
            # The hot path: one node an AZ. A version at w is acknowledged (or
            # finished), and the witness vouches for it.
            rr = await self.read_replicas(bucket, key)
            if rr.best is not None and rr.best.stamp == w:
                return self._vouched(rr.best, rr)
        # The witness cannot vouch for what one node an AZ holds (it does not
        # know the key, the version found is not the one it knows, or it is
        # not agreed there): every node of each AZ is asked.
        for _attempt in range(self.ncfg.restamp_attempts):
            try:
                return await self._read_every_node(bucket, key, w, agreed, fence)
            except _Overtaken:
                READS_OVERTAKEN.inc()
        raise ServiceUnavailable(
            f"{bucket}/{key} kept being edited while this read finished an unfinished write; retry"
        )

    async def _read_every_node(
        self, bucket: str, key: str, w: Stamp | None, agreed: bool, fence: Fence
    ) -> tuple[ObjectVersion | None, list[Replica]]:
        """:meth:`_read_checked` when the witness cannot vouch for one node an
        AZ: every node of each AZ, and what they give finished if it must be.
        :class:`_Overtaken` when that finishing met, in some AZ, a record of
        an older version above it: nothing returned, nothing recorded."""
        rr = await self.read_replicas(bucket, key, every=True)
        best = rr.best
        if best is None:
            if w is not None:
                raise ServiceUnavailable(
                    f"the replicas that answered for {bucket}/{key} hold no version, but one "
                    "was acknowledged; retry when more of its AZs are reachable"
                )
            self.need_azs(rr, f"a read of {bucket}/{key}", first=False)
            return None, []
        if w is not None and best.stamp < w:
            raise ServiceUnavailable(
                f"the replicas that answered for {bucket}/{key} are behind the newest "
                "acknowledged version; retry when more of its AZs are reachable"
            )
        newer = rr.newest_version
        if (
            newer is not None
            and newer.vstamp > best.stands_for
            and newer.vstamp not in best.removed
        ):
            promoted = await self._promote_newer(best, newer, fence)
            if promoted is not None:
                return promoted, []
        if w is not None and best.stamp == w and agreed:
            return self._vouched(best, rr)
        # Newer than the witness, unknown to it, or at one member of the
        # majority only (a record in flight): finished (recorded at a
        # majority) before it is returned; written back to damaged AZs too.
        await self.finish(best, rr, fence)
        return best, rr.holders

    async def _promote_newer(
        self, best: ObjectVersion, newer: ObjectVersion, fence: Fence
    ) -> ObjectVersion | None:
        """A read found the key's newest record (``best``) standing for an
        older version than ``newer``, a record some node holds: an edit of
        that older version (or a DELETE of it) which the key's first AZ took
        before ``newer``'s write got there, a write whose coordinator could
        not stamp it again above the edit (it died, or the write landed on a
        fallback while the home holding the edit was down). An edit never
        makes an older version current: ``newer`` is finished as its writer
        would have finished it, stamped again above ``best`` keeping its
        version id, committed in every AZ and recorded; None (``best`` is
        finished as usual) when the version was removed for good meanwhile.
        ``tristore_reads_promoted_total``; the protocol model:
        ``reads_promote_newer_versions``."""
        bucket, key = best.bucket, best.key
        held, removed, _ = await self.spread_version(bucket, key, newer.vstamp)
        if removed or held is None:
            return None
        READS_PROMOTED.inc()
        self.clock.observe(best.stamp)
        promoted = evolve(held, stamp=self.clock.now(), version_stamp=held.vstamp, removed=())
        log.info(
            "%s/%s: version %s, below a record of older version %s, made current again",
            bucket,
            key,
            held.version_id,
            best.version_id,
        )
        try:
            promoted = await self._merge_above_older(promoted, self.placer.place(bucket, key), None)
        except _Yielded:
            raise _Overtaken(promoted.stamp) from None  # a newer version yet: read again
        await self.confirm(promoted, fence)
        return promoted

    def _vouched(
        self, v: ObjectVersion, rr: ReplicaRead
    ) -> tuple[ObjectVersion | None, list[Replica]]:
        """A version at the witness majority's agreed stamp: current."""
        self.cache.put(v)
        self.heal_records(v, rr)
        return v, rr.holders

    @staticmethod
    def need_azs(
        rr: ReplicaRead, what: str, first: bool = True, skipped: Set[str] = frozenset()
    ) -> None:
        """QuorumUnavailable unless a majority of the key's AZs were heard
        whole by ``rr`` (a read of every node: every node of each answered)
        and, with ``first``, its first AZ answered (and holds the version a
        read finishes, once written back); AZs in ``skipped`` (they refused
        the write-back) count for neither.

        A read the witness cannot vouch for (it does not know the key, or the
        version is not agreed there) relies on the AZs, and only on AZs every
        node of which answered: an AZ answered by a fallback alone may hold
        the key on its home, and one answered by its home alone may hold a
        newer version on a fallback (a hint not yet handed back). An
        acknowledged version is in all three AZs, but one a read finishes is
        only in the AZs that answered that read. Returned from one AZ, it
        could vanish from the next read, which hears another AZ and a witness
        member that missed its record (flicker); at a majority, every later
        read that hears a majority whole meets it. And the key's first AZ
        decides conditional writes: a version returned without it could be
        overtaken there by a conditional write whose precondition it had
        already broken. The protocol model found each (tests/modelcheck:
        partial reads, AZs of two nodes).
        """
        azs = [a.az for a in rr.placement.azs]
        majority = len(azs) // 2 + 1
        heard = rr.heard - skipped
        holding = rr.answered() - skipped
        if len(heard & set(azs)) >= majority and (not first or azs[0] in holding):
            return
        missing = [d for d in rr.down if d.az not in heard]
        need = f"{majority} of the key's {len(azs)} AZs"
        if first:
            need += f", its first AZ {azs[0]} among them"
        raise quorum_error(missing, f"{what} (a version the witness cannot vouch for)", need)

    def heal_records(self, v: ObjectVersion, rr: ReplicaRead, as_version: bool = False) -> None:
        """Write ``v`` (current, or ``as_version`` only as a version) back to the
        AZs whose copy was damaged, in the background: as to an AZ that lacked it."""
        for azr in rr.corrupt:

            async def one(azr: AzReplicas = azr) -> None:
                await self.quorum.write_back(v, azr, rr.holders, as_version=as_version)
                CORRUPT_REPAIRED.labels("record").inc()
                log.info(
                    "wrote %s/%s@%s back over a damaged copy in %s",
                    v.bucket,
                    v.key,
                    v.version_id,
                    azr.az,
                )

            self.quorum.heal(one(), f"the record of {v.bucket}/{v.key} in {azr.az}")

    async def read_replicas(self, bucket: str, key: str, every: bool = False) -> ReplicaRead:
        """What the key's AZs hold (bodies up to inline_max included), without
        the witness: the raw material of a read. One node of each AZ (the
        first that answers, home first); with ``every``, every node of each,
        the newest of an AZ's answers taken as the AZ's (what a read the
        witness cannot vouch for relies on: a fallback holds the key only if
        it took a write for it while the home was away, and a home back from
        the dead may not have collected its hints yet). At least one AZ must
        answer."""
        placement = self.placer.place(bucket, key)
        damaged: set[str] = set()
        heard: set[str] = set()
        answers: list[tuple[AzReplicas, Replica, ObjectVersion | None]] = []
        down: list[AzDown] = []
        found: list[tuple[Replica, ObjectVersion]] = []
        if not every:
            answers, down = await self.quorum.ask_every_az(
                placement, lambda r: _read_meta(r, bucket, key, damaged)
            )
            found = [(rep, v) for _, rep, v in answers if v is not None]
        else:
            by_az = await self.quorum.ask_every_node(
                placement, lambda r: _read_meta(r, bucket, key, damaged)
            )
            for azr, got, failed in by_az:
                if failed:
                    down.append(AzDown(azr.az, failed))
                if not got:
                    continue
                if not failed:
                    heard.add(azr.az)
                held = [(rep, v) for rep, v in got if v is not None]
                found += held
                rep, newest = max(held, key=lambda h: h[1].stamp) if held else (got[0][0], None)
                answers.append((azr, rep, newest))
        if not answers:
            raise quorum_error(down, "a read")
        best = max((v for _, v in found), key=lambda v: v.stamp) if found else None
        newest = max((v for _, v in found), key=lambda v: v.vstamp) if every and found else None
        holders: list[Replica] = []
        if best is not None:
            self.clock.observe(best.stamp)
            holders = [rep for rep, v in found if v.stamp == best.stamp]
            holders.sort(key=lambda rep: rep.spec.name != self.me.name)
        corrupt = tuple(azr for azr, _, _ in answers if any(n.name in damaged for n in azr.nodes))
        return ReplicaRead(
            placement, best, holders, answers, corrupt, tuple(down), every, frozenset(heard), newest
        )

    async def settle_everywhere(self, v: ObjectVersion, what: str) -> None:
        """Make sure every AZ of ``v``'s key holds ``v`` (the key's current
        version) or something newer: written back where it lacks, and
        QuorumUnavailable for ``what`` if an AZ cannot take it. What a write's
        own success promises; a read's finishing settles for the AZs that
        answer (and take new data)."""
        rr, lacking = await self._lacking_everywhere(v, what)
        holders = [rep for _, rep, held in rr.answers if held is not None and held.stamp == v.stamp]
        if lacking:
            WRITE_BACKS.inc()
            await self.quorum.write_back_all(v, lacking, holders, what)

    async def _lacking_everywhere(
        self, v: ObjectVersion, what: str
    ) -> tuple[ReplicaRead, list[AzReplicas]]:
        """What the AZs of ``v``'s key hold (:meth:`read_replicas`), and those
        of them whose current record is older than ``v`` or none; every AZ must
        answer, else QuorumUnavailable for ``what``. The first step of
        :meth:`settle_everywhere` and :meth:`finish_attempt`."""
        rr = await self.read_replicas(v.bucket, v.key)
        answered = rr.answered()
        down = [
            AzDown(a.az, [n.name for n in a.nodes])
            for a in rr.placement.azs
            if a.az not in answered
        ]
        if down:
            raise quorum_error(down, what)
        lacking = [azr for azr, _, held in rr.answers if held is None or held.stamp < v.stamp]
        return rr, lacking

    async def finish(self, v: ObjectVersion, rr: ReplicaRead, fence: Fence) -> None:
        """Write ``v`` back to every AZ that answered without it, then confirm
        it: QuorumUnavailable unless it is then held by a majority of AZs.

        :class:`_Overtaken` (nothing confirmed) when an AZ holds a record of
        an older version above ``v`` by then: an edit of that version (tags,
        a replication status) the key's first AZ took after the read looked,
        while ``v``, a write no one finished, was on its way. Confirmed and
        returned, ``v`` would be followed by that older version once the
        edit is finished (the simulation with tags: seed 289); read again,
        the edit is what the read finds."""
        above: list[Stamp] = []
        await self.spread_to_majority(v, rr, above)
        if above:
            raise _Overtaken(max(above))
        await self.confirm(v, fence)

    async def spread_to_majority(
        self, v: ObjectVersion, rr: ReplicaRead, above: list[Stamp] | None = None
    ) -> None:
        """:meth:`write_back_lacking`, refused (QuorumUnavailable) unless ``v``
        then is in a majority of the key's AZs, its first AZ among them
        (:meth:`need_azs`). ``above``: see :meth:`Quorum.write_back_all`."""
        assert rr.every, "a version is finished from a read of every node"
        what = f"finishing {v.bucket}/{v.key}@{v.version_id}"
        self.need_azs(rr, what)
        skipped = await self.write_back_lacking(v, rr, above)
        if skipped:
            rr = replace(rr, down=(*rr.down, *skipped))
            self.need_azs(rr, what, skipped={d.az for d in skipped})

    async def write_back_lacking(
        self, v: ObjectVersion, rr: ReplicaRead, above: list[Stamp] | None = None
    ) -> list[AzDown]:
        """Write ``v`` back to every AZ that answered without it; the AZs left
        out are returned.

        An AZ that did not answer at all is left alone: the version is then held
        by the AZs that answered (a majority: :meth:`need_azs`), and every
        later read that relies on the AZs hears a majority. So is one whose
        nodes all refuse new data for lack of disk space (node/disk.py): reads
        go on while an AZ is full.
        """
        lacking = [azr for azr, _, held in rr.answers if held is None or held.stamp != v.stamp]
        if not lacking:
            return []
        WRITE_BACKS.inc()
        log.info(
            "finishing %s/%s@%s: writing back to %s",
            v.bucket,
            v.key,
            v.version_id,
            ", ".join(a.az for a in lacking),
        )
        return await self.quorum.write_back_all(
            v, lacking, rr.holders, "finishing an interrupted write", skip_full=True, above=above
        )

    # -- versions --------------------------------------------------------------

    async def read_version(
        self, bucket: str, key: str, vstamp: Stamp | None
    ) -> tuple[ObjectVersion | None, list[Replica]]:
        """One version (``None``: the null version) as the key's AZs hold it.

        Every node of each AZ is asked (:meth:`_look_for_version`): a version
        removed on any node heard is gone (a removal is final). Otherwise the
        answer needs an AZ heard whole, since an acknowledged PUT or DELETE
        of a version is in every AZ on its home *or* on a fallback that
        stood in for it: an AZ answered by a fallback alone may hold the
        version on its home, and one answered by a home back from the dead
        alone may lack the removal its fallback took (the protocol model's
        versions, AZs of two nodes). With no AZ heard whole:
        QuorumUnavailable. Replicas holding it come back for its body.
        """
        placement = self.placer.place(bucket, key)
        damaged: set[str] = set()
        look = await self._look_for_version(placement, bucket, key, vstamp, damaged)
        if look.removed_in:
            return None, []
        if not look.whole:
            raise quorum_error(
                look.down,
                f"a read of version {_version_name(vstamp)} of {bucket}/{key}",
                "every node of one of the key's AZs",
            )
        if not look.found:
            return None, []
        best = max((v for _, v in look.found), key=lambda v: (v.vstamp, v.stamp))
        holders = [
            rep for rep, v in look.found if v.vstamp == best.vstamp and v.data_id == best.data_id
        ]
        holders.sort(key=lambda rep: rep.spec.name != self.me.name)
        if damaged:
            corrupt = tuple(
                azr for azr in placement.azs if any(n.name in damaged for n in azr.nodes)
            )
            rr = ReplicaRead(placement, best, holders, [], corrupt)
            self.heal_records(best, rr, as_version=True)
        return best, holders

    async def version_to_remove(
        self, bucket: str, key: str, vstamp: Stamp | None
    ) -> tuple[ObjectVersion | None, Stamp | None]:
        """For a DELETE of one version (``None``: the null version): (the
        version as a node still holds it, or None; the stamp of the version
        whose removal must be committed in every AZ, or None when there is
        nothing to remove).

        Unlike :meth:`read_version`, a removal found in one AZ does not end
        the look: an earlier try of the DELETE may have reached only some AZs
        (one was down, or cut off) before it failed, and its retry must write
        the removal to the others before it answers success, or the version
        stays for good where the try missed it (listed by a scan of that AZ,
        and, on the key's first-AZ home, never notified as removed). Every
        node of each AZ is asked, as :meth:`read_version` asks: a fallback
        that never held the version says nothing of its home. So there is
        nothing to remove only when every AZ holds the removal, or every node
        of every AZ answered and none holds the version or its removal (it
        never existed); otherwise the removal is committed (again: twice is
        harmless), which needs every AZ, as a write does. For the null
        version, whose stamp only a holder can tell, a silent node that may
        hold it is QuorumUnavailable.
        """
        placement = self.placer.place(bucket, key)
        look = await self._look_for_version(placement, bucket, key, vstamp, set())
        if look.found:
            best = max((v for _, v in look.found), key=lambda v: (v.vstamp, v.stamp))
            return best, best.vstamp
        if len(look.removed_in) == len(placement.azs):
            return None, None  # removed in every AZ already
        if not look.down and not look.removed_in:
            return None, None  # every node answered: it never existed
        if vstamp is not None:
            return None, vstamp  # removed in some AZs only, or a node is silent
        raise quorum_error(
            look.down, f"a DELETE of the null version of {bucket}/{key}", "every node to answer"
        )

    async def _look_for_version(
        self,
        placement: Placement,
        bucket: str,
        key: str,
        vstamp: Stamp | None,
        damaged: set[str],
    ) -> VersionLook:
        """What every node of each of the key's AZs holds of one version
        (:meth:`Quorum.ask_every_node`): QuorumUnavailable when no node answers."""
        by_az = await self.quorum.ask_every_node(
            placement,
            lambda r: _read_versions(r, bucket, key, vstamp, vstamp is None, 1, damaged),
        )
        look = VersionLook()
        for azr, got, failed in by_az:
            if failed:
                look.down.append(AzDown(azr.az, failed))
            else:
                look.whole.add(azr.az)
            if any(removed for _, (_, removed) in got):
                look.removed_in.add(azr.az)
            look.found += [(rep, v) for rep, (vs, _) in got for v in vs]
            if got:
                look.heard.add(azr.az)
        if not look.heard:
            raise quorum_error(look.down, "a read")
        return look

    async def versions_in_azs(
        self,
        bucket: str,
        key: str,
        vstamp: Stamp | None,
        limit: int,
        what: str,
        every: bool = True,
        whole_first: bool = False,
    ) -> list[AzVersions]:
        """What one node of each of the key's AZs holds of its versions (with
        inline bodies): version ``vstamp``, or the newest ``limit``; and whether
        the one asked for was removed for good. With ``every``, an AZ that does
        not answer fails the whole ``what``; otherwise it is left out.

        With ``whole_first``, every node of the key's first AZ is asked and
        must answer (else ``what`` fails), their versions merged: that AZ
        takes a conditional change first, on its home or, when the home does
        not answer, on a fallback, so only all of its nodes together tell
        whether a try of one took effect."""
        placement = self.placer.place(bucket, key)
        damaged: set[str] = set()  # taken as holding none: repair writes them back

        def call(r: Replica) -> Awaitable[tuple[list[ObjectVersion], bool]]:
            return _read_versions(r, bucket, key, vstamp, False, limit, damaged)

        async def whole(azr: AzReplicas) -> tuple[Replica, tuple[list[ObjectVersion], bool]]:
            got, failed = await self.quorum.ask_whole_az(azr, call)
            if failed:
                raise AzDown(azr.az, failed)
            merged = {v.stamp: v for _, (vs, _) in got for v in vs}
            vs = sorted(merged.values(), key=lambda v: v.vstamp, reverse=True)[:limit]
            return got[0][0], (vs, any(removed for _, (_, removed) in got))

        results = await asyncio.gather(
            *(
                whole(a) if whole_first and i == 0 else self.quorum.ask_az(a, call)
                for i, a in enumerate(placement.azs)
            ),
            return_exceptions=True,
        )
        down = [r for r in results if isinstance(r, AzDown)]
        if down and (every or (whole_first and isinstance(results[0], AzDown))):
            raise quorum_error(down, what)
        out = []
        for azr, r in zip(placement.azs, results, strict=True):
            if isinstance(r, AzDown):
                continue
            if isinstance(r, BaseException):
                raise r
            rep, (vs, removed) = r
            out.append((azr, rep, vs, removed))
        return out

    async def spread_version(
        self, bucket: str, key: str, vstamp: Stamp
    ) -> tuple[ObjectVersion | None, bool, list[Replica]]:
        """(the version as the key's AZs hold it, whether it was removed for
        good, the nodes found holding it). A version only some AZs hold is
        first written back to the others: an earlier try that reached only
        some AZs (one was down) is finished this way, never taken for done.
        Some node of every AZ must answer.

        Every node of each AZ is asked (:meth:`_look_for_version`): while a
        home is away, or until its fallback has handed back what it took
        meanwhile, the fallback may be the only node of its AZ holding the
        version; one node an AZ, home first, missed it there, and a resend
        found its earlier attempt in the first AZ's look and then took it
        for gone (the CI run of 2026-12-03: a write refused, then visible)."""
        placement = self.placer.place(bucket, key)
        look = await self._look_for_version(placement, bucket, key, vstamp, set())
        if look.removed_in:
            return None, True, []  # removed there for good: it never comes back
        silent = [d for d in look.down if d.az not in look.heard]
        if silent:
            raise quorum_error(silent, "checking a version")
        held = look.found
        if not held:
            return None, False, []
        v = max((v for _, v in held), key=lambda v: v.stamp)
        holders = [rep for rep, _ in held]
        lacking = [azr for azr in placement.azs if not any(r.spec.az == azr.az for r in holders)]
        if lacking:
            WRITE_BACKS.inc()
            log.info(
                "finishing %s/%s@%s: writing it back to %s",
                bucket,
                key,
                v.version_id,
                ", ".join(a.az for a in lacking),
            )
            # As a version only: its record stamp may be above the key's current
            # record (a later status or tag change), and it must not become
            # current where it lands. The current record follows separately.
            await self.quorum.write_back_all(
                v, lacking, holders, "finishing an earlier try", as_version=True
            )
            rr = await self.read_replicas(bucket, key)
            if rr.best is not None:
                await self.write_back_lacking(rr.best, rr)
        return v, False, holders

    async def finish_attempt(self, v: ObjectVersion, holders: list[Replica], fence: Fence) -> None:
        """Finish ``v``, an earlier attempt of a conditional change that a
        resend found among the key's versions (and spread to every AZ as a
        version: :meth:`spread_version`), before the resend answers success
        with it: as :meth:`write` finishes a late try, by a merge commit
        (current where it is the newest, a version where it is not) in every
        AZ whose current record is older, its body copied from ``holders``;
        then recorded at the witness and cached (:meth:`confirm`). ``fence``
        was taken before the look that found it. Every AZ must answer, else
        QuorumUnavailable (the outcome stays unknown to the client).

        Spread as a version is not enough: the attempt may be newer than the
        stamp the witness holds (its try was taken on the first AZ's
        fallback while the home was down, and the resend's read, vouched for
        by the witness at the older stamp, did not meet it); a coordinator
        that cached the older version would serve it after the success.

        A record changed since the attempt (new tags on it, kept as a
        version) carries that change's stamp, which may be above the key's
        current record: it is finished at its version stamp, so that it
        never becomes current over a newer version."""
        if v.version_stamp is not None:
            v = evolve(v, stamp=v.version_stamp, version_stamp=None)
        what = f"finishing the earlier attempt {v.bucket}/{v.key}@{v.version_id}"
        _, lacking = await self._lacking_everywhere(v, what)
        if lacking:
            WRITE_BACKS.inc()
            log.info("%s: writing it back to %s", what, ", ".join(a.az for a in lacking))
            results = await asyncio.gather(
                *(self.quorum.write_back(v, azr, holders, merge=True) for azr in lacking),
                return_exceptions=True,
            )
            failed = [r for r in results if isinstance(r, AzDown)]
            if failed:
                raise quorum_error(failed, what)
            for r in results:
                if isinstance(r, BaseException):
                    raise r
        await self.confirm(v, fence)
