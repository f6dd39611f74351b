"""A model of the witness / cache / write-back protocol for one key
(DESIGN.md §3, issue 4), as pure step functions over frozen states.

Both the Hypothesis machine (tests/unit/test_protocol_model.py) and the
explicit-state checker (tests/modelcheck/checker.py) drive these functions, so
there is one model. A step takes a :class:`State` and its arguments (the
choices: which coordinator, which witness majority, which write) and returns
the next state; the state itself when the step does nothing. A step that
breaks the reference model raises :class:`Violation`.

The model follows node/protocol.py (with node/quorum.py and
node/witness_client.py) step by step, at the granularity where interleavings
matter: a write takes its stamp above the key's floor (witness majority, or
the replicas when a member does not know the key), commits AZ by AZ (last
writer wins; never re-stamped), then records at a witness majority, then is
acknowledged; writes can be abandoned half way (unfinished writes);
witnesses can restart at any moment (and know nothing) or forget the key to
stay within their size (eviction: same incarnation, and a floor below which a
record of a key they do not know is not taken); keys sharing the floor's slot
raise it too; coordinators keep caches. Each AZ has a home node and, with two
nodes an AZ, a fallback that takes a write (and a hint) while the home is
down and hands it back later. A read is one atomic step: majority check,
cache if at least the witness's stamp, else the newest answer of the AZs it
hears from (one node an AZ when that is the agreed witness stamp, else every
node of each AZ, an AZ heard only when all of its nodes answer), finished
(written back and recorded) when newer than the witness or when the witness
does not know the key.

A plain write may be a removal (an unversioned DELETE): the key's value
becomes absent, and a read whose answer is that removal, or no record at
all, reads absent. Removals are collected as node/tombstones.py does it
(:func:`collect_removal`, :func:`drop_removal`): every witness of the key's
group forgets the key at the removal's stamp (the floor rises just above it),
then each node drops the record; from then on "no record" stands for the
collected removal, in the reference model as in the protocol.

Conditional writes (If-Match, If-None-Match) go beside the plain ones: the
key's first AZ serializes them on its home, which decides against the newest
record of every node of its AZ (it asks the others first; while one is down,
every node of the other AZs instead), and what matters is that a refusal is true (a refused write
never becomes visible, a refused call never took effect).

Versions (a versioned bucket's key, node/objects.py ``_delete_version``) in
their own, smaller form: one non-current version V, held on the home of
every AZ at the start (``State.version``; empty when a run has none). A
DELETE of V looks for it first (:func:`delete_version`: every node of the
AZs that answer, as Protocol.version_to_remove asks them), then commits its
removal AZ by AZ (:func:`commit_version_removal`, Protocol.commit_change:
not through the witness, the current record does not change; a down home's
fallback takes it with a hint), and is acknowledged once every AZ took it;
a try can fail after some AZs (:func:`abandon_version_delete`), and the
client's retry is a new DELETE, the same look. A GET ?versionId
(:func:`read_version`) asks every node of the AZs that answer, as
Protocol.read_version does: a removal on any of them wins, and otherwise
it answers only when some AZ was heard whole. Once a DELETE of V was
acknowledged, no read returns V. The tombstone collector's part
(node/tombstones.py: finishing a removal a node missed, dropping the
markers once no node holds a copy) is in the model too. The old look and
read asked one node an AZ (``versions_ask_every_node`` off): with AZs of
two nodes, a fallback that never held V, or a home back from the dead that
missed the removal its fallback took, answered for its AZ (the checker's
trace: 3 steps; the hand trace of the home: 8).

Applies of a replica version (node/replication_apply.py apply_replica,
node/protocol.py ``_add_noncurrent_replica``) in the same form: the version
is then R, older than the key's current version and on no node at the
start (``State.replica_version``), and each apply brings a copy of its own
(a record stamp, tags, maybe a body; copies are numbered in the order of
their record stamps, and where two meet the newer is kept, as a version
record keeps the newest record stamp). An apply of a key the witness
majority does not know is first tried as a create (:func:`start_create`
with ``replica``), which the first AZ takes only when none of its nodes
holds a record of the key, nor its home the marker of R's removal; here
the key's current version is held, so it is refused and the apply goes
on as below (a create taken needs no look: every change of R reaches the
other AZs only after the first AZ took it). An apply looks first
(:func:`start_version_apply`: spread_version, every node of every AZ):
removed, there is nothing to do; held, R is written back to the AZs
lacking it and only its tags are settled (ReplicaHeld). Else its change,
marked ``new_versions``, goes to the key's first AZ: to its home, or to
the home's fallback after the home did not answer (a refusal there is
then undecided: the apply fails), or to the node of the AZ a chunked body
was streamed to (picked by the coordinator's view of which nodes are up,
which may lag). That node first asks the other nodes of its AZ whether
one holds a record of R (:func:`version_apply_hear`, a round of its own
before the decision: HintedHandoff.versions_in_my_az; one silent, every
node of the other AZs; one of those silent too, it will refuse), then
decides against what it heard and its own records in one batch
(:func:`version_apply_decide`; a removal marker is no record: taken,
nothing stored). Taken, the copy is committed in the other AZs
unconditionally (:func:`commit_version_apply`, on each AZ's first live
node) and acknowledged once every AZ took it; refused by the home, the
coordinator reads R as the AZs hold it (:func:`version_apply_refused`):
found, it is spread as above and acknowledged, else the apply fails (a
replicator's retry is a copy of its own). An apply may be abandoned at
any point (its coordinator died). Markers of R's removal are kept for the
retention period: none is dropped while an apply is in flight, and no
apply begins after one was. The reference model of versions: no node
ever holds a copy other than the first one any node held (V is the only
copy of the V runs); once an apply was acknowledged, every AZ holds a
copy on some node unless R is being removed; and once a DELETE of the
version was acknowledged, no read returns it and no node holds a copy of
R unless a removal marker is held too (the collector then finishes it). The
old apply (``new_versions_decided`` off) committed every copy everywhere
unconditionally: two applies at once, and the copy committed last
replaced the first one's record (the checker's trace: 6 steps).

The design takes a second copy all the same in three ways the checker
finds (tests/unit/test_modelcheck.py pins the shortest traces; the
invariant is not weakened for them). With AZs of two nodes: the home of
the first AZ took copy 1 and is down, and AZs 1 and 2 do not hold it yet
(its coordinator died, or is on its way): the fallback that decides copy
2 does not hear the home, so it hears every node of those AZs instead and
refuses only when one of them is silent too (8 steps); and the home and
its fallback decide two copies at once, each asking the other before its
own batch (6 steps with a chunked body streamed to the fallback by a
coordinator whose view lags; by hand in test_protocol_model.py, 9 steps
with the home back from the dead, no node silent when asked). With AZs
of one node: a DELETE's removal reached the first AZ between the two
decisions, and a removal marker is no record of the version there, so
copy 2 is taken (nothing stored) and committed in AZs 1 and 2, where copy
1 is on its way (9 steps).

The reference model is the newest acknowledged stamp and the newest stamp any
read returned: every read must return at least both (read-after-write, no
flicker); and every AZ holds the newest acknowledged stamp on some node. A
read that answers no record after a removal was collected answers that
removal (:func:`_returned`), so it is checked as that stamp: a stale read if
a newer write was acknowledged, an older value come back if anything older
than the removal is read. A read that meets a witness stamp no node holds
at all, with every node up and every AZ heard, fails for ever
(ServiceUnavailable where DESIGN.md promises the read works): a violation.

Stamps are (clock, uid): unique and totally ordered, as the hybrid logical
clock's are. Clock skew is the ``clock`` a write brings: any value, above
the floor or not; the checker tries every position among the stamps that
exist, which is every skew there is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

_T = TypeVar("_T")


class Stamp(NamedTuple):
    clock: int
    uid: int


NONE = Stamp(0, 0)
AZS = 3
WITNESSES = 3
COORDINATORS = 2
MAJORITIES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))
ALL_AZS: tuple[int, ...] = tuple(range(AZS))
MAJORITY_OF_AZS = AZS // 2 + 1
#: A conditional write is stamped again at most this many times (restamp_attempts).
TRIES = 4


#: What a node holds of the version V (State.version): no record of it (never
#: had it, or its removal marker was collected), a record of it, or the marker
#: of its removal (a removed version never comes back). A record is a copy:
#: HELD (V, or the first copy of a replica) up to MAX_COPIES, numbered in the
#: order of their record stamps, so that where two meet the larger is kept
#: (a version record keeps the newest record stamp), and a marker, above
#: them all, wins over any copy.
NO_COPY, HELD, REMOVED = 0, 1, 9
MAX_COPIES = 3


def is_copy(held: int) -> bool:
    """Whether a node's ``held`` (State.version) is a record of the version."""
    return NO_COPY < held < REMOVED


class Violation(AssertionError):
    """The reference model is broken: the message says how."""


@dataclass(frozen=True)
class Variant:
    """What the node and witness do; every field off its default is a mutant
    the model must catch."""

    #: A witness keeps the floor of what it evicted (witness/table.py).
    eviction_floor: bool = True
    #: A witness refuses a record meant for an earlier incarnation.
    incarnation_fence: bool = True
    #: A coordinator serves its cache without the witness (unsafe_skip_witness).
    reads_skip_witness: bool = False
    #: A write is stamped by its clock alone, not above the key's floor
    #: (unsafe_skip_floor).
    skip_floor: bool = False
    #: A plain write of a key no witness of the majority knows is tried as a
    #: create (a conditional write expecting nothing, decided by the first AZ),
    #: and one the first AZ refuses goes on as a plain write above the floor
    #: the nodes give (Protocol._write). Off: it goes on stamped by its clock
    #: alone.
    create_reads_floor_when_refused: bool = True
    #: What the node does when the first AZ refuses a try after an earlier try
    #: of the same write was taken there: ``finish`` it (the fix), or
    #: ``refuse`` (the old behaviour, a false refusal).
    on_late_conflict: str = "finish"
    #: A read that finds the majority's largest stamp at one member only
    #: records it before returning it (the fix the checker led to; off: the
    #: old read, which took any stamp of the check for one at a majority).
    agreed_checks: bool = True
    #: A resent call looks for its request id among the key's versions.
    resend_lookup: bool = True
    #: A resent call that finds its earlier attempt among the key's versions
    #: finishes it as a late try is finished (a merge commit in every AZ) and
    #: records it at the witness before it answers success
    #: (Protocol.finish_attempt); off: it spread the attempt to every AZ and
    #: answered, and when the attempt was newer than the witness's stamp a
    #: coordinator whose cache the witness vouched for served the older
    #: version after the success (a stale read; the simulation's seed 1,592).
    found_attempts_recorded: bool = True
    #: A resent call takes the current version by a linearizable read (which
    #: finishes it), not by a plain look at the replicas.
    resend_reads: bool = True
    #: A resend about to be refused looks for its call among the versions
    #: once more (node/objects.py put_object): its earlier attempt may have
    #: been on its way during the first look (:func:`resend_look`) and taken
    #: by the first AZ since, which is what made the precondition fail; off:
    #: the first look only, and that refusal was false (the CI run of
    #: 2026-12-03: a refused write, then visible).
    refusals_look_again: bool = True
    #: A read that relies on the AZs (the witness does not know the key, or
    #: the version is not agreed at the witness: it is finished first) hears
    #: a majority of them; off: one AZ was enough, and a version finished in
    #: one AZ could vanish behind a witness that missed its record (flicker).
    reads_hear_majority: bool = True
    #: A read finishes a version only where the key's first AZ (the one that
    #: serializes conditional writes) holds it afterwards; off: a version
    #: finished in the other two AZs, and returned, was unknown to the first
    #: AZ, which then took a conditional write's try whose precondition the
    #: returned version had already broken.
    finish_at_first_az: bool = True
    #: A read the witness cannot vouch for asks every node of each AZ (the
    #: newest any of them holds is the AZ's answer) and counts an AZ toward
    #: the majority and the first-AZ rule only when every node of it
    #: answered; off: it asked one node an AZ (the first live one, home
    #: first), and an AZ answered by a fallback that never took a write for
    #: the key, or by a home back from the dead that has not collected its
    #: hints, counted as heard: a stale read.
    reads_ask_every_node: bool = True
    #: The same for a write's floor when the witness does not know the key
    #: (Protocol.floor) and for the read of a confirmation the witnesses
    #: refused (Protocol.confirm); off: one node an AZ, and a floor that
    #: missed a version it should be above (a lost write).
    floors_ask_every_node: bool = True
    #: The first AZ's home asks the other nodes of its AZ for their record of
    #: the key before it decides a conditional write, and decides against the
    #: newest of them all; when one of them does not answer it hears every
    #: node of the other AZs instead, and only when one of those is silent
    #: too refuses the try (ConditionalRequestConflict: nothing written)
    #: rather than guess (node/replica_store.py, node/hints.py). Off: the old home, which
    #: decided against its own record, and a home back from the dead that had
    #: not collected its hints took a try whose precondition a version on its
    #: fallback had already broken (after a resend of that call was refused).
    home_hears_its_az: bool = True
    #: A removal is collected only after every witness of the group forgot
    #: the key at its stamp (node/tombstones.py, rule 3); off: the nodes drop
    #: it while the witnesses still vouch for it, and reads fail.
    collect_forgets: bool = True
    #: Forgetting raises the witness's floor just above the removal's stamp
    #: (WitnessTable.forget); off: it forgets like an eviction of nothing,
    #: and a late record of the removal (a read finishing it on a node that
    #: has not dropped it yet) is taken again, and vouched for after the drop.
    forget_raises_floor: bool = True
    #: A removal is collected only once no write at or below its stamp is
    #: still in flight (what the retention period stands for); off: an older
    #: write that was on its way lands after the drop and comes back.
    collect_after_retention: bool = True
    #: A DELETE of one version commits its removal again whenever some AZ
    #: that answers holds the version, or some AZ (answering or not) is not
    #: known to have removed it, and answers success only once every AZ took
    #: the removal (Protocol.version_to_remove); off: the old look, a read's
    #: (Protocol.read_version), where a removal found in one AZ ended it and
    #: the retry answered success, so the AZ an earlier try missed kept the
    #: version for good, and a read that heard that AZ returned it.
    retry_removes_everywhere: bool = True
    #: A GET by version id and a DELETE's look ask every node of each AZ
    #: they hear (Quorum.ask_every_node: the AZ's other nodes first, then
    #: the home), as the reads the witness cannot vouch for do. A read
    #: answers only when some AZ was heard whole (every node of it
    #: answered), unless it heard a removal; a look answers "nothing to
    #: do" only when every AZ holds the removal, or when every node of
    #: every AZ answered that it holds neither the version nor its removal.
    #: Off: one node an AZ (the first live one, home first), and a fallback
    #: that never held the version (its home down: a look answered success,
    #: nothing removed), or a home back from the dead that missed the
    #: removal its fallback took, answered for its AZ (a removed version
    #: read).
    versions_ask_every_node: bool = True
    #: A replica older than the key's current version is added by a change
    #: whose version must be new (Change.new_versions, node/protocol.py
    #: _add_noncurrent_replica): the key's first AZ decides it, refusing it
    #: where a record of the version is held, before the other AZs are sent
    #: it. Off: the old apply, which committed every copy in every AZ
    #: unconditionally (a version record keeps the newest record stamp), so
    #: that of two applies of one version at once the copy committed last
    #: replaced the first one's record, body and tags.
    new_versions_decided: bool = True
    #: A plain write whose commit meets, in some AZ, a record of an older
    #: version stamped above it (an edit of that version's tags or status
    #: the first AZ took before this write got there) is stamped again above
    #: it, keeping its version, and committed again before it is recorded
    #: (node/protocol.py ``_write``; the replica says so:
    #: CommitResult.older_above). Off: it stayed a noncurrent version there,
    #: was acknowledged, and reads returned the older version as current.
    versions_go_above_older_records: bool = True
    #: A read that finds the newest record (by record stamp) standing for an
    #: older version than a record some node it heard holds (an edit above a
    #: write whose coordinator could not put it above: the write landed on a
    #: fallback while the first AZ's home, holding the edit, was down)
    #: finishes that newer version, stamped again above, in every AZ
    #: (node/protocol.py ``_promote_newer``). Off: it finished the edit.
    reads_promote_newer_versions: bool = True
    #: A node never lets a record of an older version (an edit) replace a
    #: newer version as the key's current record, whatever their stamps: the
    #: edit is kept as its version's record only (ReplicaStore: the commit
    #: answers newer_version), and the edit's coordinator then reads the key,
    #: which finishes the newer version above it (node/protocol.py
    #: ``_write_conditional``). Off: the edit replaced it in the AZs it
    #: reached after the new version, and was recorded at the witness.
    edits_yield_to_newer_versions: bool = True
    #: A plain write stamped again above an edit of the version before it
    #: that meets, in some AZ, a newer version another write made current
    #: there meanwhile (kept as its version's record only: :func:`takes`)
    #: yields: it is the older of two concurrent writes, stays a version,
    #: and is not recorded; its coordinator reads the key, which settles it
    #: on the newer version (node/protocol.py ``_merge_above_older``,
    #: ``_Yielded``). Off: its new stamp was recorded, the witnesses vouched
    #: for a stamp no node held as current, and every read of the key
    #: failed until its next write (the simulation, seed 1842 with edits).
    writes_yield_to_newer_versions: bool = True
    #: A plain write of a new version that the first AZ's home keeps below
    #: the record of a conditional write whose condition read a record older
    #: than the plain write (the conditional write was taken there first: the
    #: plain one, stamped earlier, got there later) is stamped again above it
    #: as a new version once every AZ answered, and committed again before it
    #: is recorded (node/protocol.py ``_merge_above_older``; the home says so:
    #: CommitResult.below_condition). The home decided the conditional write
    #: holding nothing newer than its condition, so no read can have
    #: returned the plain write before it. Off: it stayed below, was
    #: acknowledged, and was lost, the conditional write acknowledged too
    #: (a fault probe with boto3: about 1 in 60 races where both succeed).
    writes_go_above_conditions: bool = True
    #: Check that an acknowledged conditional write's condition held at its
    #: place in the order: no acknowledged plain write is stamped between the
    #: record its condition read and its own stamp (such a write came between
    #: them unseen, or is lost below it).
    check_conditions: bool = True


SAFE = Variant()


@dataclass(frozen=True)
class Write:
    """A plain write (PUT, or DELETE: a removal, ``State.removals``) in flight."""

    stamp: Stamp
    coordinator: int
    #: The witnesses' incarnations when the write began: a record under an
    #: older one is refused (node/witness_client.py).
    fence: tuple[int, ...]
    #: What it records: its own stamp, or a newer one it finished on a re-fence.
    record_stamp: Stamp
    #: The newest stamp acknowledged or returned when it began: it must be
    #: ordered after.
    after: Stamp = NONE
    committed: frozenset[int] = frozenset()
    recorded: frozenset[int] = frozenset()
    #: The newest record of an older version it met above it in an AZ
    #: (NONE: none): it is stamped again once every AZ answered.
    behind: Stamp = NONE
    #: How many times it was stamped again (at most TRIES - 1).
    restamps: int = 0
    #: An AZ kept it as its version's record only, a newer version being
    #: current there (CommitResult.newer_version): it yields once every AZ
    #: answered.
    yielded: bool = False
    #: The record of a conditional write the first AZ's home kept it below,
    #: that write's condition older than it (NONE: none): it is stamped
    #: again, a new version, once every AZ answered.
    under: Stamp = NONE


@dataclass(frozen=True)
class Cond:
    """A conditional write: the key's first AZ (AZ 0) serializes it against
    ``expect``, the current stamp its precondition read saw. A try that some
    other AZ holds something newer than is stamped again, conditional on the
    try before it (node/protocol.py)."""

    call: int  # the request id, the same in every attempt
    first_expect: Stamp  # what the call's precondition read saw
    expect: Stamp
    stamp: Stamp
    coordinator: int
    fence: tuple[int, ...]
    gone: bool = False  # the client's attempt failed; its coordinator may go on
    tries: tuple[Stamp, ...] = ()  # stamps the first AZ took, in order
    others: frozenset[int] = frozenset()  # AZs 1.. that answered for this try
    newer: Stamp = NONE  # the newest a later AZ held above this try
    finishing: bool = False  # committed everywhere: recording, then acknowledged
    #: A resend of the call looked for it among the versions and did not
    #: find it; it decides later (:func:`resend`), this attempt still going.
    looked: bool = False
    #: A plain write tried as a create (:func:`start_create`): what it goes
    #: on as a plain write with when the first AZ refuses it (clock, the
    #: witness majority it checks, the AZs its floor read hears), and the
    #: newest stamp acknowledged or read when it began (it must land above).
    plain: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None
    after: Stamp = NONE
    #: An edit of the version its precondition read saw (new tags, a
    #: replication status: Objects.update_version): each try's record is a
    #: record of that version (:attr:`State.of_version`), not a new one.
    edit: bool = False
    #: An AZ kept its try as a version's record only, a newer version being
    #: current there: it is not recorded; its coordinator reads the key.
    yielded: bool = False
    #: A replica (a version another cluster wrote) tried as a create.
    replica: bool = False

    @property
    def conditional(self) -> bool:
        """Whether the call is conditional on the key's current record
        (If-Match, If-None-Match): not a create the protocol tries, nor an
        edit (conditional on its version's record, whichever is current)."""
        return self.plain is None and not self.replica and not self.edit


#: Where an apply of R is (VApply.phase): its first AZ's node is to hear the
#: other nodes of its AZ, then to decide; the first AZ took it and the
#: others are sent it; the first AZ refused it and the coordinator is to
#: read R as the AZs hold it; R was found and is written back to the AZs
#: lacking it.
HEAR, DECIDE, COMMIT, REFUSED, SPREAD = range(5)
#: What the deciding node heard (VApply.heard): no record of R elsewhere,
#: one, or nothing it could go by (a node of its AZ silent, and one of the
#: other AZs too: it refuses).
HEARD_NONE, HEARD_HELD, UNHEARD = range(3)


@dataclass(frozen=True)
class VApply:
    """An apply of copy ``copy`` of the replica version R, older than the
    key's current version (node/protocol.py _add_noncurrent_replica): a
    change whose version must be new, decided by the key's first AZ."""

    copy: int
    #: The node of the first AZ that decides it: the home, or the fallback
    #: after the home did not answer (``uncertain``), or the node its body
    #: was streamed to (``streamed``).
    decider: int = 0
    #: A chunked body: its targets were picked as it was streamed
    #: (Quorum.pick_targets, not as for a conditional write: by the
    #: coordinator's view of which nodes are up, which may lag), and the
    #: first AZ's target decides; no other node is tried.
    streamed: bool = False
    phase: int = HEAR
    heard: int = HEARD_NONE
    #: A node tried before the decider may have taken it: a refusal is no
    #: refusal but "undecided" (ServiceUnavailable: the apply fails).
    uncertain: bool = False
    #: The AZs that took it (COMMIT) or hold R (SPREAD).
    committed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class State:
    #: Per AZ, per node (home first), the stamp of the key's current record.
    nodes: tuple[tuple[Stamp, ...], ...] = ((NONE,),) * AZS
    up: tuple[tuple[bool, ...], ...] = ((True,),) * AZS
    #: Per AZ: the fallback holds a hint for the home (hands the key back).
    hinted: tuple[bool, ...] = (False,) * AZS
    witness: tuple[Stamp | None, ...] = (None,) * WITNESSES  # None: unknown
    floor: tuple[Stamp, ...] = (NONE,) * WITNESSES  # the newest stamp it evicted
    #: Per witness: its floor is just *above* its stamp (it forgot the key
    #: there on request, WitnessTable.forget), so not even that stamp is taken.
    above: tuple[bool, ...] = (False,) * WITNESSES
    incarnation: tuple[int, ...] = (0,) * WITNESSES
    cache: tuple[Stamp | None, ...] = (None,) * COORDINATORS
    pending: tuple[Write, ...] = ()
    conds: tuple[Cond, ...] = ()
    #: Conditional calls finished and recorded whose client was not told.
    lost: tuple[Cond, ...] = ()
    next_uid: int = 1
    next_call: int = 1
    #: The stamps whose write is a removal (the key's value absent).
    removals: frozenset[Stamp] = frozenset()
    #: The newest removal collected (its witnesses forgot it; nodes holding
    #: it may drop it): no record now reads as this removal, and every clock
    #: is past it (the retention period and the skew bound: rule 1).
    retired: Stamp = NONE
    #: The stamps that are records of an older version, with that version's
    #: stamp: an edit's tries, and a write stamped again above one (it keeps
    #: its version). Every other stamp is a version of its own.
    of_version: frozenset[tuple[Stamp, Stamp]] = frozenset()
    # The reference model.
    acked: Stamp = NONE
    #: The newest version (by version stamp) a write made and acknowledged:
    #: a read never returns a record of an older one (S3: an edit of a
    #: version never makes it current again).
    acked_version: Stamp = NONE
    observed: Stamp = NONE
    refused: frozenset[Stamp] = frozenset()
    returned: frozenset[Stamp] = frozenset()
    #: Calls whose try the first AZ took, and calls a resend refused.
    took_effect: frozenset[int] = frozenset()
    refused_calls: frozenset[int] = frozenset()
    #: Per AZ, per node (home first), what it holds of the version V
    #: (NO_COPY, HELD, REMOVED); empty when the run has no versions.
    version: tuple[tuple[int, ...], ...] = ()
    #: DELETEs of V in flight: the AZs each one's removal was committed to.
    vdeletes: tuple[frozenset[int], ...] = ()
    #: A DELETE of V was acknowledged (the reference model of versions).
    vdeleted: bool = False
    #: The version is R, a replica's, on no node at the start: applies bring it.
    replica_version: bool = False
    #: Applies of the replica version R in flight (:class:`VApply`).
    vapplies: tuple[VApply, ...] = ()
    #: The copies of R whose apply began (each copy once: a replicator's
    #: retry is a copy of its own, under a new record stamp).
    vstarted: frozenset[int] = frozenset()
    #: The first copy of the version any node held (NO_COPY: none yet; V
    #: is HELD from the start): no node may hold another one, ever.
    vfirst: int = NO_COPY
    #: An apply of R was acknowledged (committed in every AZ, or refused
    #: and R found and spread): every AZ holds a copy of R from then on,
    #: unless R is removed.
    vacked: bool = False
    #: A node dropped its marker of the version's removal: the retention
    #: period is over, and no apply of R that might bring it back is in
    #: flight or begins.
    vcollected: bool = False
    #: With ``check_conditions``: the stamps of acknowledged plain writes, and
    #: (the record its condition read, its stamp) of acknowledged conditional ones.
    acked_plain: frozenset[Stamp] = frozenset()
    acked_conds: frozenset[tuple[Stamp, Stamp]] = frozenset()
    #: (the record, the record its condition read) of each try of a
    #: conditional call the first AZ's home took (its record says so:
    #: ``condition_read``; a PUT tried as a create is no condition).
    conditions: frozenset[tuple[Stamp, Stamp]] = frozenset()
    #: How many of each bounded step happened (the checker's budgets).
    spent: tuple[tuple[str, int], ...] = field(default=())

    def _raise(self, witness: int, stamp: Stamp, above: bool = False) -> State:
        """The witness's floor rises to ``stamp`` (just above it: ``above``)."""
        floor = self.floor[witness]
        if stamp < floor or (stamp == floor and not above):
            return self
        return _with(
            self,
            floor=_set(self.floor, witness, stamp),
            above=_set(self.above, witness, above),
        )

    def used(self, what: str) -> int:
        for name, n in self.spent:
            if name == what:
                return n
        return 0


def initial(
    nodes_per_az: int = 1, versions: bool = False, held: bool = True, written: bool = False
) -> State:
    """The key absent; with ``versions``, the version V on the home of
    every AZ (written there while every node was up, acknowledged), or,
    without ``held``, the replica version R on no node (its applies bring
    it: :func:`start_version_apply`). With ``written``, the key's current
    record is a version written and acknowledged while every node was up:
    on the home of every AZ, at every witness."""
    first = HELD if versions and held else NO_COPY
    s = State(
        nodes=((NONE,) * nodes_per_az,) * AZS,
        up=((True,) * nodes_per_az,) * AZS,
        version=((first,) + (NO_COPY,) * (nodes_per_az - 1),) * AZS if versions else (),
        vfirst=first,
        replica_version=versions and not held,
    )
    if written:
        one = Stamp(1, 0)
        s = _with(
            s,
            nodes=((one,) + (NONE,) * (nodes_per_az - 1),) * AZS,
            witness=(one,) * WITNESSES,
            acked=one,
            acked_version=one,
        )
    return s


def _with(obj: _T, **changes: object) -> _T:
    """dataclasses.replace without its cost (the checker makes millions):
    a frozen dataclass copied field by field."""
    new = object.__new__(type(obj))
    d = new.__dict__
    d.update(obj.__dict__)
    d.update(changes)
    return new


def _spend(s: State, what: str) -> tuple[tuple[str, int], ...]:
    counts = dict(s.spent)
    counts[what] = counts.get(what, 0) + 1
    return tuple(sorted(counts.items()))


def _set(t: tuple, i: int, v: object) -> tuple:
    return (*t[:i], v, *t[i + 1 :])


def _drop(t: tuple, i: int) -> tuple:
    return (*t[:i], *t[i + 1 :])


# -- the AZs (node/quorum.py) ---------------------------------------------------


def az_holds(s: State, az: int) -> Stamp:
    """The newest the AZ holds on any node (what durability promises)."""
    return max(s.nodes[az])


def az_answer(s: State, az: int) -> Stamp | None:
    """What a read of the AZ gets: the first live node's record, home first
    (Quorum.ask_az); None when no node of the AZ answers."""
    for i, up in enumerate(s.up[az]):
        if up:
            return s.nodes[az][i]
    return None


def az_commit(s: State, az: int, stamp: Stamp, v: Variant | None = None) -> State | None:
    """Commit (or write back) ``stamp`` in the AZ: at the home, or, when it is
    down, at the next live node, which keeps a hint. Last writer wins
    (:func:`takes`). None when no node of the AZ is up."""
    for i, up in enumerate(s.up[az]):
        if up:
            held = s.nodes[az]
            nodes = _set(s.nodes, az, _set(held, i, takes(s, held[i], stamp, v)))
            hinted = _set(s.hinted, az, True) if i > 0 else s.hinted
            return _with(s, nodes=nodes, hinted=hinted)
    return None


def takes(s: State, held: Stamp, stamp: Stamp, v: Variant | None = None) -> Stamp:
    """A node's current record after ``stamp`` reaches it holding ``held``:
    the newer by record stamp, except that a record of an older version
    never replaces a newer version (``edits_yield_to_newer_versions``)."""
    if stamp <= held:
        return held
    if (v or SAFE).edits_yield_to_newer_versions and version_of(s, held) > version_of(s, stamp):
        return held
    return stamp


def commit_everywhere(s: State, stamp: Stamp, azs: Iterable[int] = ALL_AZS) -> State | None:
    for az in azs:
        nxt = az_commit(s, az, stamp)
        if nxt is None:
            return None
        s = nxt
    return s


def newest_answer(s: State, hear: Iterable[int] = ALL_AZS) -> tuple[Stamp | None, tuple[int, ...]]:
    """The newest record among the AZs in ``hear`` that answer, one node an
    AZ, and those AZs (Protocol.read_replicas); (None, ()) when none answers."""
    answered = tuple(az for az in hear if az_answer(s, az) is not None)
    if not answered:
        return None, ()
    return max(az_answer(s, az) or NONE for az in answered), answered


def az_newest(s: State, az: int) -> Stamp | None:
    """What a read of every node of the AZ gets: the newest record of its
    live nodes (None when none answers)."""
    live = [n for n, up in zip(s.nodes[az], s.up[az], strict=True) if up]
    return max(live) if live else None


class AzsRead(NamedTuple):
    """A read of the AZs in ``hear`` (Protocol.read_azs): the newest record
    found, the AZs some node of which answered, and those every node of
    which answered (heard: what the AZ holds is known)."""

    best: Stamp | None
    answered: tuple[int, ...]
    heard: tuple[int, ...]


def read_azs(s: State, every: bool, hear: Iterable[int] = ALL_AZS) -> AzsRead:
    """With ``every``, every node of each AZ asked; else one node an AZ, and
    an AZ that answered counts as heard."""
    if not every:
        best, answered = newest_answer(s, hear)
        return AzsRead(best, answered, answered)
    answered = tuple(az for az in hear if az_newest(s, az) is not None)
    if not answered:
        return AzsRead(None, (), ())
    heard = tuple(az for az in answered if all(s.up[az]))
    return AzsRead(max(az_newest(s, az) or NONE for az in answered), answered, heard)


def write_back(s: State, every: bool, stamp: Stamp, azs: Iterable[int]) -> State:
    """Write ``stamp`` back to each of ``azs`` that lacks it: judged by the
    newest of its nodes (``every``) or by its first live node
    (Protocol.write_back_lacking); it lands on the first live node."""
    for az in azs:
        held = az_newest(s, az) if every else az_answer(s, az)
        if held is not None and held < stamp:
            nxt = az_commit(s, az, stamp)
            assert nxt is not None
            s = nxt
    return s


# -- the witnesses (witness/table.py, node/witness_client.py) ---------------------


def majority_check(s: State, at: tuple[int, ...]) -> Stamp | None:
    """The largest stamp of the majority, or None (unknown) if any member of it
    does not know the key."""
    answers = [s.witness[i] for i in at]
    if any(a is None for a in answers):
        return None
    return max(a for a in answers if a is not None)


def majority_agrees(s: State, at: tuple[int, ...]) -> bool:
    """Whether every member of the majority holds the same stamp: only then
    is the check's stamp known to be at a majority (WitnessFleet.check_agreed)."""
    return len({s.witness[i] for i in at}) == 1


def witness_record(s: State, v: Variant, witness: int, stamp: Stamp) -> State:
    """The witness keeps the larger stamp; a key it does not know only at or
    above its eviction floor (only above it, after a forget); else it stays
    unknown: "ask the nodes"."""
    held = s.witness[witness]
    if held is None:
        floor = s.floor[witness]
        if v.eviction_floor and (stamp < floor or (stamp == floor and s.above[witness])):
            return s
        return _with(s, witness=_set(s.witness, witness, stamp))
    return _with(s, witness=_set(s.witness, witness, max(held, stamp)))


def absent(s: State, stamp: Stamp) -> bool:
    """Whether a read answering ``stamp`` answers that the key is absent: no
    record (NONE), or a removal."""
    return stamp == NONE or stamp in s.removals


def version_of(s: State, stamp: Stamp) -> Stamp:
    """The version ``stamp``'s record is a record of: itself, unless it is
    an edit's try or a write stamped again (:attr:`State.of_version`)."""
    for record, version in s.of_version:
        if record == stamp:
            return version
    return stamp


def _acked(s: State, stamp: Stamp, new_version: bool = True) -> State:
    """A write of ``stamp`` acknowledged (``new_version``: it made a version,
    not an edit of one)."""
    if not new_version:
        return _with(s, acked=max(s.acked, stamp))
    return _with(
        s, acked=max(s.acked, stamp), acked_version=max(s.acked_version, version_of(s, stamp))
    )


def _returned(s: State, stamp: Stamp) -> State:
    """A read returns ``stamp``: checked against the reference model. No
    record, once a removal was collected, is that removal: absent, as it
    reads; so it is stale if a newer write was acknowledged or read, and
    anything older than it (present or absent) read later is a flicker."""
    if stamp == NONE:
        stamp = s.retired
    if stamp in s.refused:
        raise Violation(f"{stamp} was refused, then read")
    if stamp < s.acked:
        raise Violation(f"stale read: {stamp} after {s.acked} was acknowledged")
    if stamp < s.observed:
        raise Violation(f"flicker: {stamp} after {s.observed} was returned")
    if version_of(s, stamp) < s.acked_version:
        raise Violation(
            f"an older version current again: {stamp}, a record of version "
            f"{version_of(s, stamp)}, read after version {s.acked_version} was acknowledged"
        )
    return _with(s, observed=stamp, returned=s.returned | {stamp})


def _cache(s: State, coordinator: int, stamp: Stamp) -> State:
    cached = s.cache[coordinator]
    return _with(
        s, cache=_set(s.cache, coordinator, stamp if cached is None else max(cached, stamp))
    )


# -- plain writes ----------------------------------------------------------------


def start_write(
    s: State,
    v: Variant,
    coordinator: int,
    clock: int,
    check_at: tuple[int, ...],
    hear: tuple[int, ...] = ALL_AZS,
    remove: bool = False,
) -> State:
    """A write (a removal: ``remove``) learns the key's floor (the witness
    majority's stamp, or the newest record of the AZs it hears from when a
    member does not know the key: Protocol.floor) and takes a stamp above
    it and at or above what its (possibly skewed) clock gives. A floor the
    nodes cannot give (QuorumUnavailable) fails the write before it began."""
    floor = majority_check(s, check_at)
    if floor is None:
        found = read_azs(s, v.floors_ask_every_node, hear)
        if found.best is None:
            return s
        if v.floors_ask_every_node and len(found.heard) < MAJORITY_OF_AZS:
            return s  # QuorumUnavailable: a version finished in a majority may be missed
        floor = found.best
    if v.skip_floor:
        floor = NONE
    # (floor.clock, uid) is above the floor: the uid is the newest there is.
    stamp = Stamp(max(clock, floor.clock, s.retired.clock), s.next_uid)
    w = Write(stamp, coordinator, s.incarnation, stamp, max(s.acked, s.observed))
    s = _with(s, pending=(*s.pending, w), next_uid=s.next_uid + 1, spent=_spend(s, "writes"))
    if remove:
        s = _with(s, removals=s.removals | {stamp}, spent=_spend(s, "deletes"))
    return s


def commit_to_az(s: State, which: int, az: int, v: Variant = SAFE, clock: int = 0) -> State:
    """Last writer wins: a replica holding a newer (concurrent) write keeps
    it; the write is stored there as an older version and not stamped again.

    Unless what it holds is a record of an older version stamped above the
    write (an edit the first AZ took before the write got there: it was
    decided there first, so no read can have returned the write before
    it): once every AZ answered, the write is stamped again above it (at
    or above ``clock``), keeping its version, and committed again in every
    AZ (:func:`older_above`); after TRIES - 1 of those it fails. And unless
    an AZ kept it as its version's record only, a newer version being
    current there (:func:`newer_version_kept`, a write stamped again): once
    every AZ answered, it yields (``writes_yield_to_newer_versions``)."""
    w = s.pending[which % len(s.pending)]
    nxt = az_commit(s, az, w.stamp)
    if nxt is None:
        return s  # the AZ is down: the write waits (or is abandoned)
    i = s.pending.index(w)
    behind = older_above(s, az, w.stamp)
    under = under_condition(s, az, w.stamp)
    w = _with(
        w,
        committed=w.committed | {az},
        behind=max(w.behind, behind or NONE),
        yielded=w.yielded or newer_version_kept(s, az, w.stamp),
        under=max(w.under, under or NONE),
    )
    if len(w.committed) == AZS and w.yielded and v.writes_yield_to_newer_versions:
        # Not recorded; the call succeeds (its coordinator's read of the
        # key, which finishes the newer version, is any read: :func:`read`).
        return _with(nxt, pending=_drop(s.pending, i))
    above = w.behind if v.versions_go_above_older_records else NONE
    new_version = above == NONE and v.writes_go_above_conditions and w.under != NONE
    if new_version:
        above = w.under
    if len(w.committed) < AZS or above == NONE:
        return _with(nxt, pending=_set(s.pending, i, w))
    if w.restamps + 1 >= TRIES:
        return _with(nxt, pending=_drop(s.pending, i))  # kept changing: it fails, unknown
    stamp = Stamp(max(clock, above.clock, nxt.retired.clock), nxt.next_uid)
    again = _with(
        w,
        stamp=stamp,
        record_stamp=stamp,
        committed=frozenset(),
        recorded=frozenset(),
        behind=NONE,
        restamps=w.restamps + 1,
        yielded=False,
        under=NONE,
    )
    # Above an older version's record it keeps its version; above a
    # conditional write it is a new version (its earlier try removed).
    of_version = nxt.of_version
    if not new_version:
        of_version = of_version | {(stamp, version_of(nxt, w.stamp))}
    return _with(
        nxt,
        pending=_set(s.pending, i, again),
        next_uid=nxt.next_uid + 1,
        of_version=of_version,
    )


def newer_version_kept(s: State, az: int, stamp: Stamp) -> bool:
    """Whether a commit of ``stamp`` in the AZ is kept as its version's
    record only: the node that takes it (its first live one) holds, older by
    record stamp, a record of a newer version (ReplicaStore:
    CommitResult.newer_version; only a record stamped again can be newer
    than the version current there and stand for an older one)."""
    for n, up in enumerate(s.up[az]):
        if up:
            held = s.nodes[az][n]
            return held < stamp and version_of(s, held) > version_of(s, stamp)
    return False


def older_above(s: State, az: int, stamp: Stamp) -> Stamp | None:
    """What a commit of ``stamp`` in the AZ answers when the node that takes
    it (its first live one) holds a record of an older version stamped above
    it (ReplicaStore: CommitResult.older_above): that record; else None."""
    for n, up in enumerate(s.up[az]):
        if up:
            held = s.nodes[az][n]
            if held > stamp and version_of(s, held) < version_of(s, stamp):
                return held
            return None
    return None


def under_condition(s: State, az: int, stamp: Stamp) -> Stamp | None:
    """What a commit of ``stamp`` in the AZ answers when it is the first
    AZ, its home takes it, and the home holds above it the record of a
    conditional write whose condition read a record older than ``stamp``
    (ReplicaStore: CommitResult.below_condition): that record; else None."""
    if az != 0 or not s.up[0][0]:
        return None
    held = s.nodes[0][0]
    if held > stamp and any(r == held and read < stamp for r, read in s.conditions):
        return held
    return None


def _ready(s: State) -> list[Write]:
    return [w for w in s.pending if len(w.committed) == AZS]


def record(s: State, v: Variant, which: int, witness: int) -> State:
    ready = _ready(s)
    if not ready:
        return s
    w = ready[which % len(ready)]
    if v.incarnation_fence and w.fence[witness] != s.incarnation[witness]:
        return s  # refused: the witness restarted since the write began
    nxt = witness_record(s, v, witness, w.record_stamp)
    i = s.pending.index(w)
    return _with(nxt, pending=_set(s.pending, i, _with(w, recorded=w.recorded | {witness})))


def refence(s: State, v: Variant, which: int) -> State:
    """Refused by restarted witnesses: take a new fence, read the replicas,
    finish the newest they hold (write it back) and record that instead
    (Protocol.confirm). A read that does not hear a majority of AZs cannot
    tell the newest: the confirmation fails (the write stays unconfirmed)."""
    ready = _ready(s)
    if not ready:
        return s
    w = ready[which % len(ready)]
    every = v.floors_ask_every_node
    newest, answered, heard = read_azs(s, every)
    if newest is None or (every and len(heard) < MAJORITY_OF_AZS):
        return s
    nxt = write_back(s, every, newest, answered) if newest > w.stamp else s
    i = s.pending.index(w)
    w2 = _with(w, fence=s.incarnation, record_stamp=max(w.stamp, newest), recorded=frozenset())
    return _with(nxt, pending=_set(s.pending, i, w2))


def acknowledge(s: State, which: int, v: Variant = SAFE) -> State:
    ready = [w for w in s.pending if len(w.recorded) * 2 > WITNESSES]
    if not ready:
        return s
    w = ready[which % len(ready)]
    if w.stamp < w.after:
        raise Violation(
            f"lost write: {w.stamp} acknowledged below {w.after}, acknowledged or read first"
        )
    if v.check_conditions:
        _check_condition(w.stamp, s.acked_conds)
        s = _with(s, acked_plain=s.acked_plain | {w.stamp})
    s = _cache(s, w.coordinator, w.record_stamp)
    return _acked(_with(s, pending=_drop(s.pending, s.pending.index(w))), w.stamp)


def _check_condition(plain: Stamp, conds: Iterable[tuple[Stamp, Stamp]]) -> None:
    for read, stamp in conds:
        if read < plain < stamp:
            raise Violation(
                f"a plain write lost under a conditional one: {plain} acknowledged between "
                f"the record {read} a conditional write's condition read and its stamp {stamp}"
            )


def abandon(s: State, which: int) -> State:
    """The writer's coordinator died: whatever it committed stays, unfinished."""
    if not s.pending:
        return s
    return _with(s, pending=_drop(s.pending, which % len(s.pending)))


# -- faults ----------------------------------------------------------------------


def restart_witness(s: State, witness: int) -> State:
    """A new process: a new incarnation that knows nothing (floors included)."""
    return _with(
        s,
        witness=_set(s.witness, witness, None),
        floor=_set(s.floor, witness, NONE),
        above=_set(s.above, witness, False),
        incarnation=_set(s.incarnation, witness, s.incarnation[witness] + 1),
        spent=_spend(s, "witness_restarts"),
    )


def evict(s: State, witness: int) -> State:
    """The witness forgets the key to stay within max_keys: same incarnation;
    the slot's floor rises to what it forgot."""
    held = s.witness[witness]
    if held is None:
        return s
    return _with(s, witness=_set(s.witness, witness, None), spent=_spend(s, "evictions"))._raise(
        witness, held
    )


def other_key_evicted(s: State, witness: int, clock: int) -> State:
    """Another key of the same floor slot (a second key: they share the
    witness's floor) is forgotten at its own stamp, which may sit anywhere
    among this key's stamps; the floor rises to it."""
    stamp = Stamp(clock, s.next_uid)
    return _with(s, next_uid=s.next_uid + 1, spent=_spend(s, "other_key_evictions"))._raise(
        witness, stamp
    )


def restart_coordinator(s: State, coordinator: int) -> State:
    if s.cache[coordinator] is None:
        return s
    return _with(s, cache=_set(s.cache, coordinator, None))


def crash_node(s: State, az: int, node: int) -> State:
    """A storage node stops (SIGKILL): it keeps what it fsynced."""
    if node >= len(s.up[az]) or not s.up[az][node]:
        return s
    return _with(s, up=_set(s.up, az, _set(s.up[az], node, False)), spent=_spend(s, "node_crashes"))


def restart_node(s: State, az: int, node: int) -> State:
    """Back from the dead, before it collected its hints."""
    if node >= len(s.up[az]) or s.up[az][node]:
        return s
    return _with(s, up=_set(s.up, az, _set(s.up[az], node, True)))


def hand_off(s: State, az: int) -> State:
    """The fallback hands the key back to its live home (node/hints.py): the
    home takes its record (last writer wins), then the fallback drops its
    hint and its stand-in copy in one batch."""
    if not s.hinted[az] or not s.up[az][0] or not s.up[az][1]:
        return s
    held = s.nodes[az]
    nodes = _set(s.nodes, az, (takes(s, held[0], held[1]), NONE, *held[2:]))
    s = _with(s, nodes=nodes, hinted=_set(s.hinted, az, False))
    if s.version:
        # A removal wins over the version it removes, a copy over no record,
        # and of two copies the newer record.
        vs = s.version[az]
        s = _with(s, version=_set(s.version, az, (max(vs[0], vs[1]), NO_COPY, *vs[2:])))
    return s


# -- collecting a removal (node/tombstones.py) -------------------------------------


def _newest_held(s: State) -> Stamp:
    return max(az_holds(s, az) for az in ALL_AZS)


def collectable(s: State, v: Variant) -> Stamp | None:
    """The removal a collection may take now, or None: the key's current
    record on every node of every AZ is that removal or nothing (rule 2:
    every node answers, so every node is up), no hint for the key is held,
    nothing at or below it is in flight (rule 1), and no witness of the
    group holds a newer stamp (rule 3: WitnessTable.forget keeps a newer
    one and the collection waits for a later round)."""
    r = _newest_held(s)
    if r <= s.retired or r not in s.removals or any(s.hinted):
        return None
    if not all(all(up) for up in s.up):
        return None
    if any(n != r and n != NONE for az in s.nodes for n in az):
        return None
    # Rule 1, the retention period: the removal is older than any request
    # lives (plus the clock-skew bound), so no write, conditional try,
    # write-back or hand-off at or below its stamp is still on its way. In
    # the model that is a condition on what is in flight, not a clock.
    if v.collect_after_retention and (
        any(w.stamp <= r for w in s.pending)
        or any(c.stamp <= r or any(t <= r for t in c.tries) for c in s.conds)
    ):
        return None
    if v.collect_forgets and any(w is not None and w > r for w in s.witness):
        return None
    return r


def collect_removal(s: State, v: Variant) -> State:
    """TombstoneCollector._collect_removal up to the drop: every witness of
    the group forgets the key at the removal's stamp, its floor raised just
    above it (WitnessFleet.forget; one step: a member that forgot alone is an
    eviction, which the model explores on its own). From then on the
    removal is retired: every node holding it may drop it (:func:`drop_removal`),
    and every clock is past it (rule 1 with the skew bound: a later write's
    stamp is above it even when its floor finds nothing)."""
    r = collectable(s, v)
    if r is None:
        return s
    s = _with(s, retired=r, spent=_spend(s, "collections"))
    if v.collect_forgets:
        for i in range(WITNESSES):
            s = _with(s, witness=_set(s.witness, i, None))
            if v.forget_raises_floor:
                s = s._raise(i, r, above=True)
    return s


def drop_removal(s: State, az: int, node: int) -> State:
    """ReplicaStore.drop_removal on one node, after the witnesses forgot
    (each node drops its own record; a node may crash before it does): only
    while its current record is still the retired removal and it holds no
    hint (rule 4, atomic with the drop). A copy of the removal written back
    after the drop (a read finishing it) is dropped again later."""
    if s.retired == NONE or not s.up[az][node] or s.nodes[az][node] != s.retired:
        return s
    if node > 0 and s.hinted[az]:
        return s  # the fallback holds a hint for the key: it keeps the record
    return _with(s, nodes=_set(s.nodes, az, _set(s.nodes[az], node, NONE)))


# -- reads -----------------------------------------------------------------------


def read(
    s: State,
    v: Variant,
    coordinator: int,
    check_at: tuple[int, ...],
    record_at: tuple[int, ...],
    hear: tuple[int, ...] = ALL_AZS,
) -> tuple[State, Stamp | None]:
    """Protocol.read: the next state and the stamp returned, or None (no
    value: ServiceUnavailable or QuorumUnavailable)."""
    cached = s.cache[coordinator]
    if v.reads_skip_witness and cached is not None:
        return _returned(s, cached), cached
    w = majority_check(s, check_at)
    if cached is not None and w is not None and cached >= w:
        return _returned(s, cached), cached
    agreed = not v.agreed_checks or majority_agrees(s, check_at)
    # One node an AZ first: the hot path (a version the witness vouches for).
    best, answered = newest_answer(s, hear)
    heard = answered
    every = v.reads_ask_every_node
    if every and not (w is not None and agreed and best == w):
        # The witness cannot vouch for what one node an AZ gave: every node.
        best, answered, heard = read_azs(s, True, hear)
    if best is None:
        return s, None  # no AZ answered: QuorumUnavailable
    if w is not None and best < w:
        if hear == ALL_AZS and all(all(up) for up in s.up) and w > _newest_held(s):
            # Not a node down or an AZ timing out: no replica holds what the
            # witness vouches for, and every read of the key fails like this.
            raise Violation(f"unavailable: the witnesses vouch for {w}, which no replica holds")
        return s, None  # ServiceUnavailable: an acknowledged version is missing
    relies_on_azs = w is None or best > w or not agreed
    if v.reads_hear_majority and relies_on_azs and len(heard) < MAJORITY_OF_AZS:
        # QuorumUnavailable: what one AZ holds is not known to be at a
        # majority of AZs, where every later read meets it.
        return s, None
    # The first AZ must answer (a node of it then holds what is finished); it
    # need not be heard whole: its home decides conditional writes against
    # every node of it (home_hears_its_az), so a version on its fallback is
    # enough.
    if v.finish_at_first_az and relies_on_azs and best != NONE and 0 not in answered:
        return s, None  # QuorumUnavailable: the first AZ must hold what is finished
    if best == NONE:
        return _returned(s, NONE), NONE
    if v.reads_promote_newer_versions and relies_on_azs:
        heard_nodes = [
            n
            for az in answered
            for n, up in zip(s.nodes[az], s.up[az], strict=True)
            if up and n != NONE
        ]
        newer = max(heard_nodes, key=lambda n: version_of(s, n), default=NONE)
        if version_of(s, newer) > version_of(s, best):
            # Stamped again above what it read, committed in every AZ (a
            # merge commit: each must take it), then recorded.
            stamp = Stamp(best.clock, s.next_uid)
            nxt = commit_everywhere(
                _with(
                    s,
                    next_uid=s.next_uid + 1,
                    of_version=s.of_version | {(stamp, version_of(s, newer))},
                ),
                stamp,
            )
            if nxt is None:
                return s, None  # an AZ is down: QuorumUnavailable
            s = nxt
            for i in record_at:
                s = witness_record(s, v, i, stamp)
            s = _cache(s, coordinator, stamp)
            return _returned(s, stamp), stamp
    if relies_on_azs:
        # Finish it: write back to every AZ that answered, then record at a
        # majority. A stamp the majority does not agree on may be at one
        # witness only (a record in flight): recorded too.
        s = write_back(s, every, best, answered)
        for i in record_at:
            s = witness_record(s, v, i, best)
    s = _cache(s, coordinator, best)
    return _returned(s, best), best


# -- conditional writes (If-Match / If-None-Match, bucket updates) -----------------


def start_conditional(
    s: State, coordinator: int, clock: int, guess: bool = False, edit: bool = False
) -> State:
    """Its precondition read saw the newest stamp; it takes a stamp above.

    With ``guess`` (a replication status: Objects.update_version), no read:
    the record the first AZ's home holds, which may be behind what was
    acknowledged (a home back from the dead) or ahead of it (a try it took
    alone), is the expectation; that home then decides the write against it
    as against any. A home that is down gives no guess: the call reads.

    An ``edit`` (new tags, a replication status) writes a record of the
    version it expects, not a new one; there must be one (an absent key
    has nothing to edit: NoSuchKey)."""
    read = max(az_holds(s, az) for az in ALL_AZS)
    expect = s.nodes[0][0] if guess and s.up[0][0] else read
    if edit and absent(s, expect):
        return s
    stamp = Stamp(max(clock, expect.clock, s.retired.clock), s.next_uid)
    c = Cond(s.next_call, expect, expect, stamp, coordinator, s.incarnation, edit=edit)
    spent = _spend(s, "conditionals")
    of_version = s.of_version
    if edit:
        spent = _spend(_with(s, spent=spent), "edits")
        of_version = of_version | {(stamp, version_of(s, expect))}
    return _with(
        s,
        conds=(*s.conds, c),
        next_uid=s.next_uid + 1,
        next_call=s.next_call + 1,
        spent=spent,
        of_version=of_version,
    )


def start_create(
    s: State,
    v: Variant,
    coordinator: int,
    clock: int,
    check_at: tuple[int, ...],
    hear: tuple[int, ...] = ALL_AZS,
    replica: bool = False,
) -> State:
    """A plain write (PUT) whose floor check finds the key unknown to a
    member of the witness majority: instead of reading the floor from every
    node, it is tried as a create (expect nothing) stamped by its clock, which
    the first AZ decides as any conditional write (node/protocol.py). A key
    the majority knows is written as :func:`start_write` writes it.

    A ``replica`` (a version a replicator brings: Protocol._write_replica)
    is tried the same way, but refused it ends there: the apply then reads
    the key and goes on as a conditional write, a call of its own
    (:func:`read`, :func:`start_conditional`), under a new stamp; a key the
    majority knows is not tried at all."""
    if majority_check(s, check_at) is not None:
        if replica:
            return s
        return start_write(s, v, coordinator, clock, check_at, hear)
    stamp = Stamp(max(clock, s.retired.clock), s.next_uid)
    c = Cond(
        s.next_call,
        NONE,
        NONE,
        stamp,
        coordinator,
        s.incarnation,
        plain=None if replica else (clock, check_at, hear),
        replica=replica,
        after=max(s.acked, s.observed),
    )
    s = _with(s, spent=_spend(s, "replica_creates" if replica else "writes"))
    return _with(
        s,
        conds=(*s.conds, c),
        next_uid=s.next_uid + 1,
        next_call=s.next_call + 1,
        spent=_spend(s, "creates") if not replica else s.spent,
    )


def _waiting(s: State) -> list[Cond]:
    return [c for c in s.conds if not c.finishing and (not c.tries or c.tries[-1] != c.stamp)]


def conditional_at_first_az(s: State, v: Variant, which: int) -> State:
    """The first AZ's home takes the try, or refuses it when the newest
    record its AZ holds is newer than ``expect`` (a conditional write's
    first AZ is always its home: while it is down, the write waits). It asks
    the AZ's other nodes first (home_hears_its_az): a fallback may hold a
    write it took while the home was away (or unreachable), not yet handed
    back; one that does not answer makes it refuse."""
    waiting = _waiting(s)
    if not waiting or not s.up[0][0]:
        return s
    c = waiting[which % len(waiting)]
    own = s.nodes[0][0]
    newest = own
    if v.home_hears_its_az:
        newest = az_holds(s, 0)
        if not all(s.up[0]):
            # What the silent node holds is unknown: every node of the other
            # AZs is heard instead (an acknowledged write is in all three, a
            # version a read finished in a majority with this one), or, when
            # one of them is silent too, the try is refused rather than
            # guessed (node/hints.py).
            if not all(all(s.up[az]) for az in range(1, len(s.up))):
                return _conflict_at_first_az(s, v, c)
            heard = [n for n, up in zip(s.nodes[0], s.up[0], strict=True) if up]
            newest = max([*heard, *(az_holds(s, az) for az in range(1, len(s.up)))])
    if newest > c.expect:
        return _conflict_at_first_az(s, v, c)
    i = s.conds.index(c)
    nodes = _set(s.nodes, 0, _set(s.nodes[0], 0, max(own, c.stamp)))
    c2 = _with(c, tries=(*c.tries, c.stamp), others=frozenset(), newer=NONE, yielded=False)
    conditions = s.conditions
    if c.conditional:
        # (An edit's record is of an older version: a plain write below it
        # goes above it keeping its version, ``versions_go_above_older_records``.)
        conditions = conditions | {(c.stamp, c.first_expect)}
    return _with(
        s,
        nodes=nodes,
        conds=_set(s.conds, i, c2),
        took_effect=s.took_effect | {c.call},
        conditions=conditions,
    )


def _conflict_at_first_az(s: State, v: Variant, c: Cond) -> State:
    """The first AZ refused the try (ConditionalRequestConflict: nothing
    written there): a true refusal of the call when it was the first try;
    else the earlier try, which that AZ took, is finished."""
    i = s.conds.index(c)
    if not c.tries:
        # Refused before anything was written.
        s = _with(s, conds=_drop(s.conds, i), refused=s.refused | {c.stamp})
        if c.plain is not None:
            # A create: the PUT goes on as a plain write, above the floor the
            # nodes give (the key exists somewhere, or an AZ-0 node is silent).
            clock, check_at, hear = c.plain
            variant = v if v.create_reads_floor_when_refused else _with(v, skip_floor=True)
            s = start_write(s, variant, c.coordinator, clock, check_at, hear)
        return s
    if v.on_late_conflict == "refuse":
        if set(c.tries) & s.returned:
            raise Violation("a refused write was seen")
        return _with(s, conds=_drop(s.conds, i), refused=s.refused | set(c.tries))
    # The earlier try happened: finish it (merge commits everywhere).
    stamp = c.tries[-1]
    nxt = commit_everywhere(s, stamp)
    if nxt is None:
        return s  # an AZ is down: the call fails, outcome unknown (abandon)
    return _with(nxt, conds=_set(s.conds, i, _with(c, stamp=stamp, finishing=True)))


def _going(s: State) -> list[Cond]:
    return [c for c in s.conds if c.tries and c.tries[-1] == c.stamp and not c.finishing]


def conditional_at_other_az(
    s: State, which: int, az: int, clock: int = 0, v: Variant | None = None
) -> State:
    """The try of a conditional write the first AZ took, in another AZ: a
    newer record there (by stamp) sends it round again above; an edit that
    meets a newer version there is kept as its version's record only
    (:func:`takes`), and once every AZ answered its coordinator reads the
    key (which finishes that version above it) instead of recording it."""
    going = _going(s)
    if not going:
        return s
    c = going[which % len(going)]
    if az in c.others or az == 0:
        return s
    i = s.conds.index(c)
    held = az_answer(s, az)
    if held is None:
        return s  # the AZ is down: the write waits
    if held > c.stamp:
        c = _with(c, others=c.others | {az}, newer=max(c.newer, held))
    else:
        nxt = az_commit(s, az, c.stamp, v)
        assert nxt is not None
        s = nxt
        c = _with(c, others=c.others | {az})
        if az_answer(s, az) == held and held != c.stamp:
            c = _with(c, yielded=True)  # a newer version is current there
    nxt_uid = s.next_uid
    if len(c.others) == AZS - 1:
        if c.newer != NONE and len(c.tries) < TRIES:
            # Stamped again above what it met, conditional on this try (an
            # edit's next try is a record of the same version).
            again = Stamp(max(clock, c.newer.clock, s.retired.clock), nxt_uid)
            if c.edit:
                s = _with(s, of_version=s.of_version | {(again, version_of(s, c.stamp))})
            c = _with(c, expect=c.stamp, stamp=again)
            nxt_uid += 1
        else:
            c = _with(c, finishing=True)
    return _with(s, conds=_set(s.conds, i, c), next_uid=nxt_uid)


def conditional_acknowledged(s: State, v: Variant, which: int, at: tuple[int, ...]) -> State:
    ready = [c for c in s.conds if c.finishing]
    if not ready:
        return s
    c = ready[which % len(ready)]
    i = s.conds.index(c)
    stamp = c.stamp
    if c.yielded:
        # A newer version is current where the edit was kept as its
        # version's record: the edit is not the key's current record, so it
        # is not recorded (its coordinator's read, or any read, finishes the
        # newer version above it: :func:`read`). The call succeeds.
        return _with(s, conds=_drop(s.conds, i))
    if any(c.fence[w] != s.incarnation[w] for w in at):
        # Refused by a restarted witness: finish the newest the replicas
        # hold and record that under a new fence (Protocol.confirm).
        every = v.floors_ask_every_node
        newest, answered, heard = read_azs(s, every)
        if every and len(heard) < MAJORITY_OF_AZS:
            return s  # the newest cannot be told: not confirmed now
        stamp = max(c.stamp, newest or NONE)
        s = write_back(s, every, stamp, answered)
    for w in at:
        s = witness_record(s, v, w, stamp)
    s = _with(s, conds=_drop(s.conds, i))
    if c.stamp in s.refused:
        raise Violation(f"{c.stamp} was refused, then acknowledged")
    if c.plain is not None and stamp < c.after:
        raise Violation(
            f"lost write: create {stamp} acknowledged below {c.after}, acknowledged or read first"
        )
    if v.check_conditions and c.conditional:
        for plain in s.acked_plain:
            _check_condition(plain, [(c.first_expect, c.stamp)])
        s = _with(s, acked_conds=s.acked_conds | {(c.first_expect, c.stamp)})
    if c.gone:
        return _with(s, lost=(*s.lost, c))  # done, but the client was not told: it resends
    return _acked(s, c.stamp, new_version=not c.edit)


def conditional_abandoned(s: State, which: int) -> State:
    """Its coordinator died: the outcome is unknown (neither refused nor acknowledged)."""
    if not s.conds:
        return s
    return _with(s, conds=_drop(s.conds, which % len(s.conds)))


def reply_lost(s: State, which: int) -> State:
    """The client's attempt fails (a timeout, a dropped connection) without
    saying whether it took effect; its coordinator goes on."""
    going = [c for c in s.conds if not c.gone and c.plain is None and not c.edit]
    if not going:
        return s
    c = going[which % len(going)]
    return _with(s, conds=_set(s.conds, s.conds.index(c), _with(c, gone=True)))


def resend(
    s: State,
    v: Variant,
    which: int,
    coordinator: int,
    check_at: tuple[int, ...],
    record_at: tuple[int, ...],
) -> State:
    """The client sends the call again, flagged as a resend, to any node."""
    calls = list(s.lost) + [c for c in s.conds if c.gone]
    if not calls:
        return s
    c = calls[which % len(calls)]
    if v.resend_reads:
        s, current = read(s, v, coordinator, check_at, record_at)
        if current is None:
            return s  # ServiceUnavailable: the client will try again
    else:
        current = max(az_holds(s, az) for az in ALL_AZS)

    def done(s: State) -> State:
        if c in s.lost:
            return _with(s, lost=_drop(s.lost, s.lost.index(c)))
        return _with(s, conds=_drop(s.conds, s.conds.index(c)))

    def found(s: State) -> State:
        # Found among the versions: the newest try the first AZ took (a later
        # try removes the one before it). Spread to every AZ (merge commits:
        # current where it is the newest), then recorded at the witness
        # majority and cached (Protocol.finish_attempt): the resend's read may
        # have been served from a cache the witness vouched for at an older
        # stamp, and not met it. Answered success (acknowledged); its
        # coordinator may stop now.
        attempt = c.tries[-1]
        nxt = commit_everywhere(s, attempt)
        if nxt is None:
            return s  # an AZ is down: QuorumUnavailable, the client will try again
        s = nxt
        if v.found_attempts_recorded:
            for i in record_at:
                s = witness_record(s, v, i, attempt)
            s = _cache(s, coordinator, attempt)
        s = done(s)
        return _acked(s, attempt, new_version=not c.edit)

    # The look at the resend's start (:func:`resend_look`, when it was a
    # step of its own, saw what the first AZ had taken then).
    if v.resend_lookup and c.call in s.took_effect and not c.looked:
        return found(s)
    if current > c.first_expect:
        if v.resend_lookup and v.refusals_look_again and c.call in s.took_effect:
            return found(s)  # the look again: the refusal was the attempt's own doing
        # The precondition fails: refused. Its coordinator, if still going,
        # must never get a try of it taken now.
        s = _with(
            s,
            refused_calls=s.refused_calls | {c.call},
            refused=s.refused | {*c.tries, c.stamp},
        )
        return _with(s, lost=_drop(s.lost, s.lost.index(c))) if c in s.lost else s
    # A fresh attempt: the call goes on.
    return _with(s, conds=_set(s.conds, s.conds.index(c), _with(c, gone=False, looked=False)))


def _lookable(s: State) -> list[Cond]:
    """Calls whose reply was lost and whose resend has not looked yet, with
    nothing of them taken (a look that finds its call is :func:`resend`'s)."""
    return [c for c in s.conds if c.gone and not c.looked and c.call not in s.took_effect]


def resend_look(s: State, which: int) -> State:
    """A resend's first step (node/objects.py ``_earlier_attempt``): it looks
    for its call among the key's versions while the earlier attempt is
    still on its way, and does not find it; it decides later
    (:func:`resend`). Without this step a resend looks and decides at once."""
    going = _lookable(s)
    if not going:
        return s
    c = going[which % len(going)]
    return _with(s, conds=_set(s.conds, s.conds.index(c), _with(c, looked=True)))


# -- versions (node/objects.py _delete_version, node/tombstones.py) ----------------


def version_answers(s: State, hear: Iterable[int] = ALL_AZS) -> list[int]:
    """What the AZs in ``hear`` answer of the version V, one node an AZ: the
    first live one, home first (Quorum.ask_every_az); an AZ none of whose
    nodes is up does not answer. (The old look and read:
    ``versions_ask_every_node`` off.)"""
    out = []
    for az in hear:
        for held, up in zip(s.version[az], s.up[az], strict=True):
            if up:
                out.append(held)
                break
    return out


class VersionLook(NamedTuple):
    """What every node of the AZs in ``hear`` answers of the version V
    (Quorum.ask_every_node): per AZ that answered, what its live nodes
    hold, and whether it was heard whole (every node of it answered)."""

    #: (az, what each live node of it holds, heard whole) per AZ that answered.
    azs: tuple[tuple[int, tuple[int, ...], bool], ...]

    def holds(self, what: int) -> bool:
        return any(what in held for _, held, _ in self.azs)

    def holds_copy(self) -> bool:
        """Whether some node answered with a record of the version."""
        return any(is_copy(x) for _, held, _ in self.azs for x in held)

    def any_whole(self) -> bool:
        return any(whole for _, _, whole in self.azs)


def version_look(s: State, hear: Iterable[int] = ALL_AZS) -> VersionLook:
    """Every node of each AZ in ``hear`` asked; a node that is down does not
    answer, and an AZ none of whose nodes is up is left out."""
    azs = []
    for az in hear:
        held = tuple(x for x, up in zip(s.version[az], s.up[az], strict=True) if up)
        if held:
            azs.append((az, held, len(held) == len(s.up[az])))
    return VersionLook(tuple(azs))


def _look_commits(look: VersionLook, v: Variant) -> bool:
    """Whether a look that asked every node commits the removal."""
    if not v.retry_removes_everywhere:
        return look.holds_copy() and not look.holds(REMOVED)
    if look.holds_copy():
        return True
    every_az = len(look.azs) == AZS
    if every_az and all(REMOVED in held for _, held, _ in look.azs):
        return False  # removed in every AZ: nothing to do
    # Nothing to do when every node answered and none holds V or its
    # removal; else (removed in some AZs only, or a node silent) the commit
    # again is harmless.
    every_node = every_az and all(whole for _, _, whole in look.azs)
    return not every_node or look.holds(REMOVED)


def delete_version(s: State, v: Variant, hear: tuple[int, ...] = ALL_AZS) -> State:
    """A DELETE of V, a first call or a client's retry after a try failed
    (the same call, the same look): it asks the AZs of ``hear`` that answer
    and either commits the removal (a try in flight, :func:`commit_version_removal`)
    or answers success at once, as S3 does when there is nothing to remove.
    No node answers: QuorumUnavailable, nothing done.

    The look (Protocol.version_to_remove) asks every node of each AZ
    (``versions_ask_every_node``): it commits when a node holds V; answers
    success when every AZ holds the removal on some node, or when every
    node of every AZ answered that it holds neither V nor its removal (V
    never was, or its markers were collected); else (removed in some AZs
    only, or a node silent) it commits the removal again, which is
    harmless: the commit needs all three AZs. The old look, one node an
    AZ (``retry_removes_everywhere``): commit when an AZ holds V, or when
    some AZs hold its removal and not all three answered that they do.
    The older look still (Protocol.read_version's): a removal in any AZ
    meant nothing to do."""
    if v.versions_ask_every_node:
        look = version_look(s, hear)
        if not look.azs:
            return s
        s = _with(s, spent=_spend(s, "version_deletes"))
        commit = _look_commits(look, v)
    else:
        answers = version_answers(s, hear)
        if not answers:
            return s
        s = _with(s, spent=_spend(s, "version_deletes"))
        removed_in = answers.count(REMOVED)
        if v.retry_removes_everywhere:
            commit = any(map(is_copy, answers)) or 0 < removed_in < AZS
        else:
            commit = any(map(is_copy, answers)) and not removed_in
    if not commit:
        if s.vfirst == NO_COPY and not any(REMOVED in held for held in s.version):
            return s  # R never was here (its apply may bring it later): nothing removed
        return _with(s, vdeleted=True)
    return _with(s, vdeletes=(*s.vdeletes, frozenset()))


def commit_version_removal(s: State, which: int, az: int) -> State:
    """The try's removal lands in the AZ (Protocol.commit_change, not through
    the witness): on the home, or, while it is down, on the next live node,
    which keeps a hint. An AZ none of whose nodes is up does not take it:
    the try waits there, or fails (:func:`abandon_version_delete`)."""
    if not s.vdeletes:
        return s
    i = which % len(s.vdeletes)
    done = s.vdeletes[i]
    if az in done:
        return s
    for node, up in enumerate(s.up[az]):
        if up:
            return _with(
                s,
                version=_set(s.version, az, _set(s.version[az], node, REMOVED)),
                hinted=_set(s.hinted, az, True) if node > 0 else s.hinted,
                vdeletes=_set(s.vdeletes, i, done | {az}),
            )
    return s


def abandon_version_delete(s: State, which: int) -> State:
    """The try fails (an AZ down or cut off: QuorumUnavailable; or its
    coordinator died): not acknowledged; what it committed stays."""
    if not s.vdeletes:
        return s
    return _with(s, vdeletes=_drop(s.vdeletes, which % len(s.vdeletes)))


def acknowledge_version_delete(s: State, which: int) -> State:
    """Every AZ took the removal (commit_change needs all three, as every
    write does): the DELETE answers success."""
    if not s.vdeletes:
        return s
    i = which % len(s.vdeletes)
    if len(s.vdeletes[i]) < AZS:
        return s
    return _with(s, vdeletes=_drop(s.vdeletes, i), vdeleted=True)


def read_version(s: State, v: Variant, hear: tuple[int, ...] = ALL_AZS) -> bool | None:
    """GET ?versionId of V (Protocol.read_version): whether V is returned
    (False: NoSuchVersion), None when it cannot answer (QuorumUnavailable).
    It asks every node of each AZ of ``hear`` (``versions_ask_every_node``):
    a removal on any node heard wins; else an answer (V, or NoSuchVersion
    when no node holds it) needs some AZ heard whole, since a node that did
    not answer may hold the removal. Off: one node an AZ, every AZ that
    answers; a removal in any of them wins. A read changes nothing."""
    if v.versions_ask_every_node:
        look = version_look(s, hear)
        if not look.azs:
            return None
        if look.holds(REMOVED):
            return False
        if not look.any_whole():
            return None
        found = look.holds_copy()
    else:
        answers = version_answers(s, hear)
        if not answers:
            return None
        if REMOVED in answers:
            return False
        found = any(map(is_copy, answers))
    if not found:
        return False
    if s.vdeleted:
        raise Violation("a removed version was read after its DELETE was acknowledged")
    return True


def finish_version_removal(s: State, az: int, node: int) -> State:
    """TombstoneCollector._finish_removal: a node holding the marker of V's
    removal asks every node of the key's AZs (each must answer) which still
    hold V, and commits the removal on such a node (it missed the DELETE).
    The retention period it waits for is no clock here: the step may come
    at any time, which only adds interleavings."""
    if not is_copy(s.version[az][node]) or not all(all(up) for up in s.up):
        return s
    if not any(REMOVED in held for held in s.version):
        return s
    return _with(s, version=_set(s.version, az, _set(s.version[az], node, REMOVED)))


def drop_version_marker(s: State, az: int, node: int) -> State:
    """TombstoneCollector._collect_markers: a node drops its marker of V's
    removal once every node of the key's AZs answers that it holds no copy
    of V. Markers are kept for the retention period (tombstone_retention_s,
    longer than any request lives): an apply of R that began before the
    removal has ended by then, and one that began after it met the marker
    in its look, so none is in flight at a drop, and none begins after."""
    if s.version[az][node] != REMOVED or not all(all(up) for up in s.up):
        return s
    if any(is_copy(x) for held in s.version for x in held) or s.vapplies:
        return s
    s = _with(s, version=_set(s.version, az, _set(s.version[az], node, NO_COPY)))
    return _with(s, vcollected=True) if s.replica_version else s


# -- replica versions (node/protocol.py _add_noncurrent_replica) ----------------


def _land(s: State, az: int, node: int, copy: int) -> State:
    """A commit of ``copy`` of the version on one node: a marker of its
    removal stays (a removed version never comes back), else the newer
    record is kept; a fallback keeps a hint for its home."""
    held = s.version[az][node]
    kept = held if held == REMOVED else max(held, copy)
    s = _with(s, version=_set(s.version, az, _set(s.version[az], node, kept)))
    if node > 0:
        s = _with(s, hinted=_set(s.hinted, az, True))
    if is_copy(kept) and s.vfirst == NO_COPY:
        s = _with(s, vfirst=kept)
    return s


def _spread(look: VersionLook) -> VApply:
    """Protocol.spread_version found R: the copy with the newest record
    stamp it found, to be written back (as a version, merged) to every AZ
    no node of which answered with a record of R."""
    found = max(x for _, held, _ in look.azs for x in held if is_copy(x))
    holding = frozenset(az for az, held, _ in look.azs if any(map(is_copy, held)))
    return VApply(found, phase=SPREAD, committed=holding)


def start_version_apply(s: State, copy: int, target: int | None = None) -> State:
    """ReplicationApply.apply_replica of copy ``copy`` of R, a version older
    than the key's current one: it looks for R first (spread_version: every
    node of every AZ; an AZ none of whose nodes answers fails it,
    QuorumUnavailable, nothing done). Removed: nothing to do (success,
    nothing changed). Held: written back to the AZs lacking it, then only
    its tags are settled (ReplicaHeld), acknowledged once every AZ holds it.
    Else the copy is committed by a change with ``new_versions``
    (:func:`version_apply_hear`): to the first AZ's home, or with a chunked
    body (``target``) to the node of the first AZ it was streamed to, any
    live one (the coordinator's view may lag)."""
    if copy in s.vstarted or s.vcollected:
        return s
    if target is not None and not s.up[0][target]:
        return s  # the body's stream to it failed: nothing done
    look = version_look(s)
    if len(look.azs) < AZS:
        return s
    s = _with(s, vstarted=s.vstarted | {copy})
    if look.holds(REMOVED):
        return s
    if look.holds_copy():
        return _with(s, vapplies=(*s.vapplies, _spread(look)))
    a = VApply(copy, decider=target or 0, streamed=target is not None)
    return _with(s, vapplies=(*s.vapplies, a))


def _in_phase(s: State, which: int, *phases: int) -> VApply | None:
    if not s.vapplies:
        return None
    a = s.vapplies[which % len(s.vapplies)]
    return a if a.phase in phases else None


def _put_apply(s: State, old: VApply, new: VApply | None) -> State:
    i = s.vapplies.index(old)
    if new is None:
        return _with(s, vapplies=_drop(s.vapplies, i))
    return _with(s, vapplies=_set(s.vapplies, i, new))


def _decider_down(s: State, a: VApply) -> State:
    """The deciding node does not answer (ReplicaUnavailable): the next node
    of the first AZ is tried, the home's fallback, the earlier one perhaps
    having taken the change (``uncertain``); with a streamed body, or none
    left, the commit fails (QuorumUnavailable: the apply fails, retried later
    as a copy of its own)."""
    if a.streamed or a.decider + 1 >= len(s.up[0]):
        return _put_apply(s, a, None)
    return _put_apply(s, a, _with(a, decider=a.decider + 1, phase=HEAR, uncertain=True))


def version_apply_hear(s: State, which: int) -> State:
    """The deciding node asks the other nodes of its AZ whether one holds a
    record of R (HintedHandoff.versions_in_my_az, a round of its own before
    the decision); when one does not answer, every node of the other AZs
    instead, and when one of those is silent too it will refuse
    (node/hints.py _hear_az). A removal marker is no record."""
    a = _in_phase(s, which, HEAR)
    if a is None:
        return s
    node = a.decider
    if not s.up[0][node]:
        return _decider_down(s, a)
    others = [n for n in range(len(s.up[0])) if n != node]
    held = [s.version[0][n] for n in others if s.up[0][n]]
    heard = HEARD_NONE
    if len(held) < len(others):
        if not all(all(up) for up in s.up[1:]):
            heard = UNHEARD
        held += [x for az in s.version[1:] for x in az]
    if heard != UNHEARD and any(map(is_copy, held)):
        heard = HEARD_HELD
    return _put_apply(s, a, _with(a, phase=DECIDE, heard=heard))


def version_apply_decide(s: State, v: Variant, which: int) -> State:
    """The deciding node decides, against what it heard and its own records
    (one batch: ReplicaStore _Commit.apply): refused where a record of R is
    held (or it could not hear), else taken (a removal marker there: taken,
    nothing stored). Refused by the home, the coordinator reads R
    (:func:`version_apply_refused`); by a node tried after one that did not
    answer, the refusal is no refusal (the earlier one may have taken it):
    ServiceUnavailable, the apply fails."""
    a = _in_phase(s, which, DECIDE)
    if a is None:
        return s
    node = a.decider
    if not s.up[0][node]:
        return _decider_down(s, a)
    refused = v.new_versions_decided and (a.heard != HEARD_NONE or is_copy(s.version[0][node]))
    if refused:
        return _put_apply(s, a, None if a.uncertain else _with(a, phase=REFUSED))
    s = _land(s, 0, node, a.copy)
    return _put_apply(s, a, _with(a, phase=COMMIT, committed=frozenset({0})))


def commit_version_apply(s: State, which: int, az: int) -> State:
    """The copy (COMMIT: the first AZ took it; SPREAD: the copy found)
    lands in the AZ unconditionally, on its first live node (the home, or
    its fallback, which keeps a hint); an AZ none of whose nodes is up
    does not take it: the apply waits, or fails (:func:`abandon_version_apply`)."""
    a = _in_phase(s, which, COMMIT, SPREAD)
    if a is None or az in a.committed:
        return s
    for node, up in enumerate(s.up[az]):
        if up:
            s = _land(s, az, node, a.copy)
            return _put_apply(s, a, _with(a, committed=a.committed | {az}))
    return s


def version_apply_refused(s: State, which: int) -> State:
    """Refused by the first AZ (ConditionalRequestConflict): the coordinator
    reads R as the AZs hold it (spread_version: every node of every AZ, some
    node of each must answer). Found: written back to the AZs lacking it
    (:func:`commit_version_apply`), then ReplicaHeld: its tags are settled on
    that record. Removed, or not found (the AZ could not hear its nodes), or
    an AZ silent: the apply fails, to be retried later as a copy of its own."""
    a = _in_phase(s, which, REFUSED)
    if a is None:
        return s
    look = version_look(s)
    if len(look.azs) < AZS or look.holds(REMOVED) or not look.holds_copy():
        return _put_apply(s, a, None)
    return _put_apply(s, a, _spread(look))


def acknowledge_version_apply(s: State, which: int) -> State:
    """Every AZ took the copy (or holds R, spread): the apply answers success."""
    a = _in_phase(s, which, COMMIT, SPREAD)
    if a is None or len(a.committed) < AZS:
        return s
    return _with(_put_apply(s, a, None), vacked=True)


def abandon_version_apply(s: State, which: int) -> State:
    """Its coordinator died (or an AZ stayed down: QuorumUnavailable), at
    any point: not acknowledged; what it committed stays."""
    if not s.vapplies:
        return s
    return _with(s, vapplies=_drop(s.vapplies, which % len(s.vapplies)))


# -- invariants ------------------------------------------------------------------


def check_invariants(s: State) -> None:
    for az in ALL_AZS:
        # No record, after a collection, is the collected removal. An
        # acknowledged edit's record may stand below a newer version a node
        # holds (kept as its version's record there: ``takes``).
        if max(az_holds(s, az), s.retired) < s.acked and not any(
            version_of(s, n) > version_of(s, s.acked) for n in s.nodes[az]
        ):
            raise Violation(f"AZ {az} lost the acknowledged {s.acked}")
    if s.refused_calls & s.took_effect:
        raise Violation("a refused call took effect")
    if s.version:
        check_version_invariants(s)


def check_version_invariants(s: State) -> None:
    """One copy of the version, ever; an acknowledged apply of R leaves R in
    every AZ; R, once a DELETE of it was acknowledged, never comes back."""
    copies = {x for held in s.version for x in held if is_copy(x)}
    if copies - {s.vfirst}:
        other = min(copies - {s.vfirst})
        raise Violation(f"two copies of the version: copy {other} held after copy {s.vfirst}")
    removed = any(REMOVED in held for held in s.version)
    if s.vacked and not (removed or s.vdeleted or s.vcollected):
        for az in ALL_AZS:
            if not any(map(is_copy, s.version[az])):
                raise Violation(f"AZ {az} holds no copy of the version an apply acknowledged")
    if s.replica_version and s.vdeleted and copies and not removed:
        # (The V runs check their DELETEs by reads alone, as before.)
        raise Violation("a removed version came back")
