"""The explicit-state model checker (tests/modelcheck) over the protocol model:
every interleaving within the bounds is clean, and each mutant of the
protocol is found, with a shortest trace that replays."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from tests.modelcheck import version_deletes, version_edits
from tests.modelcheck.checker import (
    CI,
    CI_COLLECT,
    CI_CONDITIONAL,
    CI_CREATE,
    CI_EDIT,
    CI_PARTIAL,
    CI_REPLICA_CREATE,
    CI_REPLICA_VERSIONS,
    CI_REPLICA_VERSIONS_TWO_NODES,
    CI_TWO_NODES,
    CI_VERSIONS,
    CI_VERSIONS_TWO_NODES,
    LONG,
    Bounds,
    explore,
    replay,
)
from tests.modelcheck.model import SAFE, Variant

pytestmark = pytest.mark.unit

LONG_RUN = os.environ.get("TRISTORE_LONG") == "1"


def test_every_interleaving_within_the_bounds_is_clean() -> None:
    res = explore(CI)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 10_000


def test_every_interleaving_of_a_put_tried_as_a_create_is_clean() -> None:
    """A PUT of a key the witness majority does not know is tried as a
    create, decided by the first AZ; refused, it goes on as a plain write
    above the floor the nodes give (node/protocol.py). About a minute."""
    res = explore(CI_CREATE)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 1_000


def test_every_interleaving_of_a_replica_tried_as_a_create_is_clean() -> None:
    """A replica (a version another cluster wrote) of a key the witness
    majority does not know is tried as a create, decided by the first AZ;
    refused, the apply ends there and goes on as a read and a conditional
    write (node/protocol.py _write_replica). With a witness restart and an
    eviction too it ran by hand: 862,004 states, clean, 676 s."""
    res = explore(CI_REPLICA_CREATE)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 1_000


def test_every_interleaving_of_an_edit_beside_a_write_is_clean() -> None:
    """An edit of the key's version (new tags, a replication status: a
    conditional write of a record of that version, which may guess on the
    first AZ's home) beside a plain write of a new version: every read
    returns at least the newest version acknowledged, never an edit of an
    older one (docs/architecture.md, guarantees). Fourteen steps deep here
    (the old write's trace is 10); the whole space: TRISTORE_LONG=1."""
    bounds = CI_EDIT if LONG_RUN else replace(CI_EDIT, max_depth=14)
    res = explore(bounds)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 40_000


def test_every_interleaving_of_reads_that_hear_some_azs_is_clean() -> None:
    res = explore(CI_PARTIAL)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 1_000


def test_every_interleaving_with_azs_of_two_nodes_is_clean() -> None:
    res = explore(CI_TWO_NODES)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 1_000


def test_every_interleaving_with_a_delete_and_its_collection_is_clean() -> None:
    res = explore(CI_COLLECT)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 1_000


def test_every_interleaving_of_deletes_of_a_version_is_clean() -> None:
    res = explore(CI_VERSIONS)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 100


def test_every_interleaving_of_deletes_of_a_version_with_azs_of_two_nodes_is_clean() -> None:
    """The version's GET and the DELETE's look ask every node of each AZ:
    reads and looks that hear only some AZs are clean with a fallback and
    a home back from the dead too (about 8 s)."""
    res = explore(CI_VERSIONS_TWO_NODES)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 10_000


def test_the_checker_finds_a_version_look_that_asks_one_node_an_az() -> None:
    """The old look and read: the home of AZ 0 down, a DELETE whose look
    hears only AZ 0 gets its fallback's answer (it never held the version)
    and answers success, nothing removed; a read hearing another AZ
    returns the version. (The 8-step trace of the home back from the dead
    is by hand: test_protocol_model.py.)"""
    variant = Variant(versions_ask_every_node=False)
    res = explore(CI_VERSIONS_TWO_NODES, variant)
    print(res.format_trace())
    assert res.violation is not None and "a removed version was read" in res.violation
    steps = [step for step, _ in res.trace]
    assert steps[:2] == ["crash_node(az=0, node=0)", "delete_version(hear=(0,))"]
    assert len(steps) == 3 and steps[2].startswith("read_version(")
    with pytest.raises(AssertionError, match="a removed version was read"):
        replay(res.trace, CI_VERSIONS_TWO_NODES, variant)


def test_every_interleaving_of_applies_of_a_replica_version_is_clean() -> None:
    """Three applies of one noncurrent replica version, each its own copy,
    with AZs of one node: the first AZ's home decides each one in one
    batch, so the second and third are refused, read R as the AZs hold it
    and spread the first copy (about a second)."""
    res = explore(CI_REPLICA_VERSIONS)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 1_000


def test_every_interleaving_of_an_apply_of_a_replica_version_and_its_delete_is_clean() -> None:
    """An apply of R beside a DELETE of R with AZs of two nodes: a fallback
    that decides or takes the copy while its home is down, a hand-off, the
    collector (about a second)."""
    res = explore(CI_REPLICA_VERSIONS_TWO_NODES)
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.states > 1_000


# The design's open gaps (the replrace branch): the first AZ takes a second
# copy of a replica version. The invariant stands; each test pins the
# shortest trace the checker finds, so that a fix of the design (node/ and
# the model's step) turns it into a clean run of these bounds.

#: Two copies with AZs of two nodes, a node crash.
TWO_COPIES_TWO_NODES = replace(CI_REPLICA_VERSIONS, nodes_per_az=2, version_applies=2)


def _finds_two_copies(bounds: Bounds, steps: list[str]) -> None:
    res = explore(bounds)
    print(res.format_trace())
    assert res.violation == "two copies of the version: copy 2 held after copy 1"
    assert [step for step, _ in res.trace] == steps
    with pytest.raises(AssertionError, match="two copies of the version"):
        replay(res.trace, bounds, SAFE)


def test_the_checker_finds_a_second_copy_taken_while_the_home_holding_the_first_is_down() -> None:
    """The home of AZ 0 takes copy 1 (its coordinator dies, or is still on
    its way to AZs 1 and 2) and goes down; copy 2's coordinator tries it,
    then its fallback, which asks the home, hears nothing, and so asks
    every node of AZs 1 and 2 instead (node/hints.py _hear_az: it refuses
    only when one of those is silent too): none holds R yet, and it takes
    copy 2. The fallback's hint later hands copy 2 to the home, over copy 1
    if its record stamp is newer; else AZ 0 keeps copy 1 and AZs 1 and 2
    copy 2 until a repair writes the newer record everywhere: either way the
    copy with the newer record stamp wins, whatever its tags, which is what
    new_versions was to prevent."""
    _finds_two_copies(
        TWO_COPIES_TWO_NODES,
        [
            "start_version_apply(copy=1)",
            "start_version_apply(copy=2)",
            "version_apply_hear(which=0)",
            "version_apply_decide(which=0)",
            "crash_node(az=0, node=0)",
            "version_apply_hear(which=1)",  # the home does not answer: its fallback
            "version_apply_hear(which=1)",  # the home silent: AZs 1 and 2 heard
            "version_apply_decide(which=1)",
        ],
    )


def test_the_checker_finds_two_nodes_of_the_first_az_deciding_at_once() -> None:
    """No node down: copy 2's body is chunked, and streamed to the home's
    fallback, which its coordinator believes is the first live node of AZ 0
    (Quorum.pick_targets for a replica is not told the change is
    conditional, and a view of the nodes may lag); the fallback then
    decides copy 2 while the home decides copy 1. Each asks the other
    before its own batch, neither holds R yet, and both take their copy.
    (The same race without a chunked body: the home down when copy 1's
    coordinator tries it, back when copy 2's does: test_protocol_model.py.)"""
    bounds = replace(TWO_COPIES_TWO_NODES, node_crashes=0, streamed_bodies=True)
    _finds_two_copies(
        bounds,
        [
            "start_version_apply(copy=1)",
            "start_version_apply(copy=2, target=1)",
            "version_apply_hear(which=0)",
            "version_apply_hear(which=1)",
            "version_apply_decide(which=0)",
            "version_apply_decide(which=1)",
        ],
    )


def test_the_checker_finds_a_second_copy_taken_where_a_delete_removed_the_first() -> None:
    """AZs of one node. A DELETE of R (its look heard AZ 0 only, so it
    commits the removal) removes copy 1 from AZ 0 after the home took it;
    copy 2's change is then taken there too (a removal marker is no record
    of the version: nothing stored) and committed in AZs 1 and 2, where
    copy 1 is on its way. R is being removed (the DELETE goes on, or the
    collector finishes it), but until then two copies are held, and both
    applies are acknowledged."""
    bounds = replace(CI_REPLICA_VERSIONS, version_applies=2, node_crashes=0, version_deletes=1)
    _finds_two_copies(
        bounds,
        [
            "delete_version(hear=(0,))",
            "start_version_apply(copy=1)",
            "start_version_apply(copy=2)",
            "version_apply_hear(which=0)",
            "version_apply_decide(which=0)",
            "commit_version_removal(which=0, az=0)",
            "version_apply_hear(which=1)",
            "version_apply_decide(which=1)",
            "commit_version_apply(which=1, az=1)",
        ],
    )


@pytest.mark.skipif(not LONG_RUN, reason="TRISTORE_LONG=1 (minutes on a loaded machine)")
@pytest.mark.parametrize(
    "bounds",
    [
        CI_CONDITIONAL,
        replace(CI_CONDITIONAL, partial_reads=True, resends=True),
        replace(CI_COLLECT, pending=2),
        replace(CI_COLLECT, nodes_per_az=2, node_crashes=1),
        replace(CI_REPLICA_VERSIONS, node_crashes=2),
        replace(CI_REPLICA_VERSIONS_TWO_NODES, node_crashes=2, version_deletes=2),
        LONG,
    ],
    ids=[
        "conditional",
        "conditional-partial-reads",
        "collect-two-at-once",
        "collect-two-nodes",
        "replica-versions-two-crashes",
        "replica-version-two-nodes-two-crashes",
        "long",
    ],
)
def test_every_interleaving_within_the_long_bounds_is_clean(bounds: Bounds) -> None:
    res = explore(bounds)
    print(res.summary())
    assert res.violation is None, res.format_trace()


_PLAIN = dict(conditionals=0, resends=False, witness_restarts=0, evictions=0, other_key_evictions=0)
_COND = dict(writes=1, pending=1, conditionals=1, witness_restarts=0, evictions=0)
_COND0 = dict(other_key_evictions=0)

MUTANTS = [
    # (mutant, bounds, what it breaks, steps at most)
    (Variant(reads_skip_witness=True), Bounds(writes=2, pending=1, **_PLAIN), "flicker", 8),
    (Variant(skip_floor=True), Bounds(writes=2, pending=1, **_PLAIN), "lost write", 14),
    # A PUT tried as a create, refused (a read finished an older write in
    # the first AZ meanwhile), goes on stamped by its clock alone.
    (
        Variant(create_reads_floor_when_refused=False),
        Bounds(writes=2, pending=1, creates=1, max_depth=11, **_PLAIN),
        "lost write",
        11,
    ),
    (Variant(agreed_checks=False), Bounds(writes=2, pending=2, **_PLAIN), "flicker", 10),
    (
        Variant(on_late_conflict="refuse"),
        Bounds(resends=False, **_COND, **_COND0),
        "a refused write was seen",
        9,
    ),
    (Variant(resend_lookup=False), Bounds(**_COND, **_COND0), "a refused call took effect", 4),
    (Variant(resend_reads=False), Bounds(**_COND, **_COND0), "a refused call took effect", 6),
    # A resend looks (its earlier attempt still on its way), the first AZ
    # takes the attempt's try, the resend's read then meets it and refuses.
    (
        Variant(refusals_look_again=False),
        Bounds(**_COND, **_COND0),
        "a refused call took effect",
        5,
    ),
    (
        Variant(reads_hear_majority=False),
        Bounds(writes=1, pending=1, partial_reads=True, **_PLAIN),
        "flicker",
        4,
    ),
    (
        Variant(finish_at_first_az=False),
        Bounds(partial_reads=True, **_COND, **_COND0),
        "a refused call took effect",
        7,
    ),
    (
        Variant(found_attempts_recorded=False),
        Bounds(**_COND, **_COND0),
        "stale read",
        8,
    ),
    (Variant(reads_ask_every_node=False), CI_TWO_NODES, "flicker", 5),
    (
        Variant(floors_ask_every_node=False),
        Bounds(writes=2, pending=1, partial_reads=True, **_PLAIN),
        "lost write",
        12,
    ),
    # Nodes drop a removal the witnesses still vouch for: reads fail.
    (Variant(collect_forgets=False), CI_COLLECT, "unavailable", 9),
    # A read finishes the removal after the forget; taken again, it is
    # vouched for after the drop.
    (Variant(forget_raises_floor=False), CI_COLLECT, "unavailable", 9),
    # Collected while an older write is on its way: it lands and comes back.
    (Variant(collect_after_retention=False), replace(CI_COLLECT, pending=2), "flicker", 8),
    # A DELETE of a version reaches one AZ (and fails, or is still on its
    # way); the client's retry finds the removal there and answers success;
    # a read that hears another AZ returns the version.
    (
        Variant(retry_removes_everywhere=False),
        CI_VERSIONS,
        "a removed version was read after its DELETE was acknowledged",
        4,
    ),
    # Two applies of a replica version look at once and find nothing; the
    # first AZ takes the first copy, then the second, committed as well.
    (
        Variant(new_versions_decided=False),
        CI_REPLICA_VERSIONS,
        "two copies of the version: copy 2 held after copy 1",
        6,
    ),
    # The write and the read before versions carried their own order: a
    # PUT reaches AZs 1 and 2; an edit of the version before it (a
    # replication status guessing on the first AZ's home) is taken there;
    # the PUT reaches the first AZ below the edit, stays a noncurrent
    # version there, and is acknowledged; a read finishes the edit. (With
    # the read's part on, the trace is longer: the edit finished first.)
    (
        Variant(versions_go_above_older_records=False, reads_promote_newer_versions=False),
        replace(CI_EDIT, max_depth=10),
        "an older version current again",
        10,
    ),
]


@pytest.mark.parametrize(
    ("variant", "bounds", "breaks", "steps"),
    MUTANTS,
    ids=[
        "reads-skip-witness",
        "no-write-floor",
        "create-refused-without-floor",
        "trust-one-witness",
        "false-refusal",
        "resend-no-lookup",
        "resend-plain-look",
        "resend-refused-on-the-first-look",
        "finish-in-one-az",
        "finish-without-first-az",
        "resend-found-unrecorded",
        "read-one-node-an-az",
        "floor-from-one-node-an-az",
        "collect-without-forgetting",
        "forget-without-floor",
        "collect-before-retention",
        "version-delete-retry-stops-at-a-removal",
        "replica-version-committed-unconditionally",
        "new-version-kept-below-an-edit",
    ],
)
def test_the_checker_finds_each_mutant(
    variant: Variant, bounds: Bounds, breaks: str, steps: int
) -> None:
    res = explore(bounds, variant)
    print(res.summary())
    assert res.violation is not None and breaks in res.violation, res.summary()
    print(res.format_trace())
    assert len(res.trace) <= steps  # breadth first: a shortest trace
    with pytest.raises(AssertionError, match=breaks):
        replay(res.trace, bounds, variant)


@pytest.mark.skipif(not LONG_RUN, reason="TRISTORE_LONG=1 (20 s idle, minutes loaded)")
def test_the_checker_finds_the_late_record_after_an_eviction_without_the_floor() -> None:
    """The review's question: with the floor off, an evicted key takes a late
    record of an older stamp and a reader trusts its stale cache. (The unit
    tier has the trace by hand: test_protocol_model.py.)"""
    bounds = Bounds(writes=2, pending=2, **{**_PLAIN, "evictions": 2})
    res = explore(bounds, Variant(eviction_floor=False))
    print(res.format_trace())
    assert res.violation is not None and "flicker" in res.violation
    assert explore(bounds).violation is None


@pytest.mark.skipif(not LONG_RUN, reason="TRISTORE_LONG=1 (about 90 s idle)")
def test_the_checker_finds_a_disabled_incarnation_fence() -> None:
    """Two witnesses restarted under a late record (the unit tier has this
    trace by hand: test_protocol_model.py)."""
    bounds = Bounds(writes=2, pending=2, **{**_PLAIN, "witness_restarts": 2})
    res = explore(bounds, Variant(incarnation_fence=False))
    assert res.violation is not None and "flicker" in res.violation


#: AZs of two nodes, one node crash, a plain write, a conditional write and
#: resends: where a home back from the dead decided a conditional write
#: against its own record, before its fallback handed the plain write back.
HOME_BACK = Bounds(
    nodes_per_az=2,
    node_crashes=1,
    writes=1,
    pending=1,
    conditionals=1,
    witness_restarts=0,
    evictions=0,
    other_key_evictions=0,
)


def test_the_checker_finds_a_home_that_decides_without_its_hints() -> None:
    """The old home (issue 14): a plain write lands on the first AZ's fallback
    while its home is down; the home comes back before the hand-off, a resend
    of a conditional call reads the write (on the fallback) and refuses the
    call, and the home then takes the call's try against its own, older
    record."""
    variant = Variant(home_hears_its_az=False)
    res = explore(HOME_BACK, variant)
    print(res.format_trace())
    assert res.violation is not None and "a refused call took effect" in res.violation
    assert len(res.trace) <= 8
    assert "restart_node(az=0, node=0)" in [step for step, _ in res.trace]
    with pytest.raises(AssertionError, match="a refused call took effect"):
        replay(res.trace, HOME_BACK, variant)


def test_a_home_that_hears_its_az_before_it_decides_is_clean_as_deep_as_the_old_gap() -> None:
    """The same bounds with the home that asks the other nodes of its AZ first
    (and, when one does not answer, every node of the other AZs; it refuses
    when one of those is silent too), every interleaving as long as
    the old home's trace (the whole space: TRISTORE_LONG=1)."""
    res = explore(replace(HOME_BACK, max_depth=8))
    print(res.summary())
    assert res.violation is None, res.format_trace()
    assert res.depth == 8 and res.states > 50_000


@pytest.mark.skipif(not LONG_RUN, reason="TRISTORE_LONG=1 (many minutes on a loaded machine)")
def test_a_home_that_hears_its_az_before_it_decides_is_clean() -> None:
    """Every interleaving within those bounds (which are also CI_CONDITIONAL's
    with AZs of two nodes, a node crash and resends)."""
    assert replace(CI_CONDITIONAL, nodes_per_az=2, node_crashes=1, resends=True) == HOME_BACK
    res = explore(HOME_BACK)
    print(res.summary())
    assert res.violation is None, res.format_trace()


def test_edits_of_a_noncurrent_version_never_lose_an_acknowledged_one() -> None:
    """tests/modelcheck/version_edits.py: three edits of one noncurrent
    version, each read of any set of AZs, every clock, abandons: every AZ
    keeps every acknowledged edit."""
    res = version_edits.explore(version_edits.Bounds(edits=3, tries=2))
    assert res.violation is None, res.trace
    assert res.states > 10_000


def test_edits_committed_without_a_decision_lose_one() -> None:
    """The old edit (committed in every AZ, last writer wins per version
    record): two edits that read the same record, and the later stamp drops
    the other's change, acknowledged."""
    res = version_edits.explore(
        version_edits.Bounds(edits=2), version_edits.Variant(conditional=False)
    )
    assert res.violation is not None and res.trace is not None
    assert len(res.trace) == 8, res.trace


def test_deletes_of_a_version_and_the_one_above_it_at_once_never_bring_it_back() -> None:
    """tests/modelcheck/version_deletes.py: a DELETE of the current version
    (which makes the version below it current) and a DELETE of that version
    at once, every look, clock and abandon: no version whose DELETE was
    acknowledged is read."""
    res = version_deletes.explore()
    assert res.violation is None, res.trace
    assert res.states > 500


@pytest.mark.parametrize(
    ("variant", "steps"),
    [
        # The removal reaches every AZ and is acknowledged; then the current
        # version's DELETE, which looked before, makes it current again
        # (the simulation's seed 245 with DELETEs of versions).
        (version_deletes.Variant(removed_versions_refused=False), 9),
        # The first AZ makes it current before the removal gets there; the
        # removal is acknowledged under it.
        (version_deletes.Variant(deletes_read_again=False), 8),
    ],
    ids=["removed-version-made-current", "removal-under-a-current-record"],
)
def test_deletes_of_adjacent_versions_without_either_rule_bring_one_back(
    variant: version_deletes.Variant, steps: int
) -> None:
    res = version_deletes.explore(v=variant)
    assert res.violation is not None and "after its DELETE was acknowledged" in res.violation
    assert res.trace is not None and len(res.trace) == steps, res.trace


def test_no_plain_write_is_lost_under_a_conditional_one() -> None:
    """Each acknowledged conditional write's condition held at its place in
    the order (``check_conditions``: no acknowledged plain write stamped
    between the record its condition read and its own stamp). The race a
    fault probe measured with boto3 (about 1 in 60 races where both calls
    succeeded, both acknowledged, the plain write lost): a plain write
    reaches AZs 1 and 2; a conditional write, its condition read before
    that, is taken by the first AZ stamped above it; the plain write reaches
    the first AZ below it. Now the home says so, and the plain write goes
    above it as a new version (``writes_go_above_conditions``); without
    that the checker finds the loss in 12 steps."""
    bounds = replace(CI_CONDITIONAL, resends=False, max_depth=12)
    res = explore(bounds)
    assert res.violation is None, res.format_trace()
    res = explore(bounds, Variant(writes_go_above_conditions=False))
    assert res.violation is not None and "lost under a conditional" in res.violation
    assert res.trace is not None and len(res.trace) == 12, res.format_trace()
