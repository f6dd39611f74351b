"""An explicit-state model checker over the protocol model (model.py).

Breadth first, from the initial state, over every interleaving of the model's
atomic steps with every choice each step has (coordinator, witness majority,
the AZs a read hears from, the write concerned, and the clock: every position
a new stamp can take among those that exist, which is every clock skew), up to
the budgets of :class:`Bounds`. States are canonical: the stamps of a state
are renamed by rank (only their order matters to the protocol), so two
states that differ only in clock values are one. The invariants are checked
in every state reached and the reference model at every read; breadth first,
the first violation found has a shortest trace.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from tests.modelcheck import model as m
from tests.modelcheck.model import NONE, SAFE, Cond, Stamp, State, Variant, Violation, Write, _with


@dataclass(frozen=True)
class Bounds:
    """Every bound of a run, in one place. What is not bounded here (reads,
    records, commits, hand-offs, abandons, resends) is unbounded: the state
    space is finite because stamps are."""

    #: Nodes in each of the 3 AZs: 1, or 2 (a home and a fallback with hints).
    nodes_per_az: int = 1
    #: Plain writes (PUT or DELETE) started in all, and at once.
    writes: int = 2
    pending: int = 2
    #: How many of those writes may be removals (an unversioned DELETE).
    deletes: int = 0
    #: Collections of a removal (node/tombstones.py): the witnesses forget
    #: the key at its stamp, then each node drops it (unbounded drops).
    collections: int = 0
    #: Conditional writes (If-Match, If-None-Match) started in all.
    conditionals: int = 1
    #: How many of those may be edits of the version they read (new tags, a
    #: replication status): a record of that version, not a new one.
    edits: int = 0
    #: Whether the key starts written (a version acknowledged while every
    #: node was up: on every home and witness), not absent.
    written: bool = False
    #: Of the plain writes, how many may start as a PUT does: tried as a
    #: create when the witness majority does not know the key (model.start_create).
    creates: int = 0
    #: Replicas applied (a version another cluster wrote) of a key the
    #: majority does not know, tried as a create (model.start_create, replica).
    replica_creates: int = 0
    #: Witness restarts (new incarnation) and evictions of the key, in all.
    witness_restarts: int = 1
    evictions: int = 2
    #: Evictions of a second key sharing the floor's slot (a raised floor).
    other_key_evictions: int = 1
    #: Storage node crashes in all (each may restart, before its hand-off).
    node_crashes: int = 0
    #: Whether a read (or a write's floor) may hear from only some of the
    #: AZs (the others time out), rather than from every AZ with a live node.
    partial_reads: bool = False
    #: Whether a client may lose a conditional call's reply and resend it.
    resends: bool = True
    #: DELETEs of one non-current version V (node/objects.py
    #: _delete_version), first calls and retries, in all; 0: no version V.
    version_deletes: int = 0
    #: Applies of a replica version R older than the key's current one
    #: (node/protocol.py _add_noncurrent_replica), each a copy of its own
    #: (at most model.MAX_COPIES); the version is then R, held by no node
    #: at the start (the DELETEs above are R's).
    version_applies: int = 0
    #: Whether an apply may bring a chunked body, streamed to the node of
    #: the first AZ the coordinator believes up (the home's fallback too,
    #: its view lagging), which then decides it.
    streamed_bodies: bool = False
    #: Explore only this many steps from the start (None: to the end): a
    #: shorter run that still covers every trace a mutant needs to show.
    max_depth: int | None = None
    #: Stop (and fail) past this many states: a guard against a bound typo.
    max_states: int = 3_000_000

    def describe(self) -> str:
        return (
            f"3 AZs x {self.nodes_per_az} node(s), 3 witnesses, 2 coordinators; "
            f"{self.writes} writes ({self.pending} at once, {self.deletes} may be a delete), "
            f"{self.collections} collection(s), {self.conditionals} conditional "
            f"({self.edits} may be an edit), "
            f"{self.creates} write(s) tried as a create, "
            f"{self.replica_creates} replica(s) tried as a create, "
            f"{self.witness_restarts} witness restart(s), {self.evictions} eviction(s), "
            f"{self.other_key_evictions} eviction(s) of a key sharing the floor, "
            f"{self.node_crashes} node crash(es), "
            f"{'partial' if self.partial_reads else 'whole'} reads, "
            f"resends {'on' if self.resends else 'off'}"
            + (f", {self.version_deletes} DELETE(s) of a version" if self.version_deletes else "")
            + (
                f", {self.version_applies} apply(ies) of a replica version"
                + (" (streamed bodies too)" if self.streamed_bodies else "")
                if self.version_applies
                else ""
            )
            + (f", {self.max_depth} steps deep" if self.max_depth is not None else "")
        )


#: What every run in the unit tier starts from (each well under a minute on
#: two slow cores): one write at a time, no conditional write, no witness
#: restarts or evictions, no resends; each run adds what it explores.
_CI_BASE = Bounds(
    pending=1,
    conditionals=0,
    witness_restarts=0,
    evictions=0,
    other_key_evictions=0,
    resends=False,
)
#: Plain writes racing with evictions: 2 writes, one at a time, 2 evictions.
CI = replace(_CI_BASE, writes=2, evictions=2)
#: A PUT of a key the witness majority does not know, tried as a create,
#: beside a plain write. With a witness restart too (run by hand with
#: explore(): 644,919 states, clean, 447 s) it is past the test timeout.
CI_CREATE = replace(_CI_BASE, writes=2, creates=1)
#: A replica of a key the witness majority does not know, tried as a create,
#: beside a plain write. With two plain writes (one at a time) it ran by
#: hand: 514,774 states, clean, 383 s.
CI_REPLICA_CREATE = replace(_CI_BASE, writes=1, replica_creates=1)
#: A conditional write beside a plain one (with resends: the mutant tests).
CI_CONDITIONAL = replace(_CI_BASE, writes=1, conditionals=1)
#: An edit of a version (new tags, a replication status: decided by the
#: first AZ as a conditional write) racing a plain write of a new version,
#: the key written at the start (the version edited).
CI_EDIT = replace(_CI_BASE, written=True, writes=1, conditionals=1, edits=1)
#: Reads (and writes' floors) that hear from only some AZs, the others timing
#: out: two plain writes, one at a time.
CI_PARTIAL = replace(_CI_BASE, writes=2, partial_reads=True)
#: AZs of two nodes (a home and a fallback that takes writes, and hints,
#: while the home is down), a node crash, and reads (and floors) that hear
#: from only some AZs: one plain write; the witness starts out not knowing
#: the key, so every read relies on the AZs.
CI_TWO_NODES = replace(_CI_BASE, nodes_per_az=2, writes=1, node_crashes=1, partial_reads=True)
#: Removals and their collection: two plain writes, one at a time, either of
#: which may be a delete (one at most), and one collection; the witness
#: knows everything it was told (no restarts or evictions).
CI_COLLECT = replace(_CI_BASE, writes=2, deletes=1, collections=1)
#: DELETEs of one non-current version V, each try committing its removal AZ
#: by AZ, with a node crash (and restart) and reads (and the DELETE's look)
#: that hear from only some AZs: 3 DELETEs (a first call and two retries),
#: any of them at once; no plain writes (the key's current record does not
#: change), and the tombstone collector's steps.
CI_VERSIONS = replace(_CI_BASE, writes=0, version_deletes=3, node_crashes=1, partial_reads=True)
#: The same with AZs of two nodes (a home and a fallback that takes the
#: removal, and a hint, while the home is down; hand-offs): where the old
#: look and read, one node an AZ, took a fallback's answer, or a home's
#: back from the dead, for its AZ's.
CI_VERSIONS_TWO_NODES = replace(CI_VERSIONS, nodes_per_az=2)
#: Applies of a replica version R older than the key's current one, R on
#: no node at the start: three copies of it (three applies at once, or a
#: replicator's retries), AZs of one node, a node crash, and the version's
#: reads hearing some AZs; no DELETE (see test_modelcheck.py for why).
CI_REPLICA_VERSIONS = replace(
    _CI_BASE, writes=0, version_applies=3, node_crashes=1, partial_reads=True
)
#: One apply of R beside a DELETE of it, with AZs of two nodes (the first
#: AZ's fallback deciding while its home is down, hints and hand-offs), a
#: node crash and reads hearing some AZs.
CI_REPLICA_VERSIONS_TWO_NODES = replace(
    CI_REPLICA_VERSIONS, nodes_per_az=2, version_applies=1, version_deletes=1
)
#: TRISTORE_LONG=1: two writes at once with restarts, evictions, a second
#: key's floor and a conditional write (not timed: expect many minutes).
LONG = Bounds(
    writes=2,
    pending=2,
    conditionals=1,
    witness_restarts=1,
    evictions=2,
    other_key_evictions=1,
    resends=True,
)


def bounds_from_env() -> Bounds:
    return LONG if os.environ.get("TRISTORE_LONG") == "1" else CI


# -- canonical states --------------------------------------------------------------


def _stamps(s: State) -> set[Stamp]:
    out: set[Stamp] = {s.acked, s.observed, s.retired, *s.refused, *s.returned, *s.floor}
    out.add(s.acked_version)
    for az in s.nodes:
        out.update(az)
    out.update(w for w in s.witness if w is not None)
    out.update(c for c in s.cache if c is not None)
    for w in s.pending:
        out.update((w.stamp, w.record_stamp, w.after, w.behind, w.under))
    for c in (*s.conds, *s.lost):
        out.update((c.first_expect, c.expect, c.stamp, c.newer, *c.tries))
    out.update(s.acked_plain)
    for pair in s.acked_conds:
        out.update(pair)
    return out


def canonical(s: State) -> State:
    """One representative of the states that behave alike:

    - stamps renamed by rank (clock = rank, uid 0) and the next uid reset:
      every stamp a step makes is then (clock, 1), just above the stamp of
      rank ``clock``; only their order matters to the protocol;
    - incarnations: only whether a fence is the witness's current one
      matters (1) or not (0), so restarts need no budget;
    - ``returned`` kept only for stamps of conditional tries still in flight
      (the only ones it is asked about);
    - symmetry: the three witnesses, the two coordinators, and AZs 1 and 2
      (AZ 0 decides conditional writes) are put in a fixed order.
    """
    tries = {t for c in (*s.conds, *s.lost) for t in c.tries}
    returned = s.returned & tries
    stamps = _stamps(s)
    if s.of_version:
        # Only the records still named somewhere matter (with their versions).
        of_version = frozenset(p for p in s.of_version if p[0] in stamps)
        if of_version != s.of_version:
            s = _with(s, of_version=of_version)
        stamps.update(version for _, version in of_version)
    if s.conditions:
        conditions = frozenset(p for p in s.conditions if p[0] in stamps)
        if conditions != s.conditions:
            s = _with(s, conditions=conditions)
        stamps.update(read for _, read in conditions)
    removals = s.removals & stamps if s.removals else s.removals
    order = sorted(stamps - {NONE})
    if not all(st.uid == 0 and st.clock == i + 1 for i, st in enumerate(order)):
        r: dict[Stamp | None, Stamp | None] = {NONE: NONE, None: None}
        r.update((st, Stamp(i + 1, 0)) for i, st in enumerate(order))
        s = _rename(s, r)
        returned = frozenset(r[x] for x in returned)  # type: ignore[misc]
        removals = frozenset(r[x] for x in removals)  # type: ignore[misc]
    if returned != s.returned or s.next_uid != 1 or removals != s.removals:
        s = _with(s, returned=returned, next_uid=1, removals=removals)
    return _symmetric(s)


def _rename(s: State, r: dict[Stamp | None, Stamp | None]) -> State:
    def write(w: Write) -> Write:
        return _with(
            w,
            stamp=r[w.stamp],
            record_stamp=r[w.record_stamp],
            after=r[w.after],
            behind=r[w.behind],
            under=r[w.under],
        )

    def cond(c: Cond) -> Cond:
        return _with(
            c,
            first_expect=r[c.first_expect],
            expect=r[c.expect],
            stamp=r[c.stamp],
            newer=r[c.newer],
            tries=tuple(r[t] for t in c.tries),
        )

    return _with(
        s,
        nodes=tuple(tuple(r[n] for n in az) for az in s.nodes),
        witness=tuple(r[w] for w in s.witness),
        floor=tuple(r[f] for f in s.floor),
        cache=tuple(r[c] for c in s.cache),
        pending=tuple(write(w) for w in s.pending),
        conds=tuple(cond(c) for c in s.conds),
        lost=tuple(cond(c) for c in s.lost),
        acked=r[s.acked],
        acked_version=r[s.acked_version],
        of_version=frozenset((r[a], r[b]) for a, b in s.of_version),
        observed=r[s.observed],
        retired=r[s.retired],
        refused=frozenset(r[x] for x in s.refused),
        acked_plain=frozenset(r[x] for x in s.acked_plain),  # type: ignore[misc]
        acked_conds=frozenset((r[a], r[b]) for a, b in s.acked_conds),  # type: ignore[misc]
        conditions=frozenset((r[a], r[b]) for a, b in s.conditions),  # type: ignore[misc]
    )


def _symmetric(s: State) -> State:
    inc = s.incarnation
    calls = (*s.conds, *s.lost)

    def fence(f: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(int(f[i] == inc[i]) for i in range(m.WITNESSES))

    # Witnesses, by everything that tells one from another.
    def wsig(i: int) -> tuple:
        return (
            s.witness[i] or (-1, -1),
            s.floor[i],
            s.above[i],
            tuple((w.fence[i] == inc[i], i in w.recorded) for w in s.pending),
            tuple(c.fence[i] == inc[i] for c in calls),
        )

    wp = sorted(range(m.WITNESSES), key=wsig)  # new position j holds old witness wp[j]
    wnew = {old: j for j, old in enumerate(wp)}

    def cp_sig(c: int) -> tuple:
        return (
            s.cache[c] or (-1, -1),
            tuple(w.coordinator == c for w in s.pending),
            tuple(x.coordinator == c for x in calls),
        )

    cp = sorted(range(m.COORDINATORS), key=cp_sig)
    cnew = {old: j for j, old in enumerate(cp)}

    def azsig(az: int) -> tuple:
        sig = (
            s.nodes[az],
            s.up[az],
            s.hinted[az],
            tuple(az in w.committed for w in s.pending),
            tuple(az in c.others for c in calls),
        )
        if s.version:
            return (
                *sig,
                s.version[az],
                tuple(az in d for d in s.vdeletes),
                tuple(az in a.committed for a in s.vapplies),
            )
        return sig

    ap = [0, *sorted((1, 2), key=azsig)]
    if inc == (1,) * m.WITNESSES and wp == [0, 1, 2] and cp == [0, 1] and ap == [0, 1, 2]:
        return _sorted_versions(s) if s.version else s  # already in order
    anew = {old: j for j, old in enumerate(ap)}

    def write(w: Write) -> Write:
        f = fence(w.fence)
        return _with(
            w,
            coordinator=cnew[w.coordinator],
            fence=tuple(f[i] for i in wp),
            committed=frozenset(anew[a] for a in w.committed),
            recorded=frozenset(wnew[i] for i in w.recorded),
        )

    def cond(c: Cond) -> Cond:
        f = fence(c.fence)
        return _with(
            c,
            coordinator=cnew[c.coordinator],
            fence=tuple(f[i] for i in wp),
            others=frozenset(anew[a] for a in c.others),
        )

    s = _with(
        s,
        nodes=tuple(s.nodes[a] for a in ap),
        up=tuple(s.up[a] for a in ap),
        hinted=tuple(s.hinted[a] for a in ap),
        witness=tuple(s.witness[i] for i in wp),
        floor=tuple(s.floor[i] for i in wp),
        above=tuple(s.above[i] for i in wp),
        incarnation=(1,) * m.WITNESSES,
        cache=tuple(s.cache[c] for c in cp),
        pending=tuple(write(w) for w in s.pending),
        conds=tuple(cond(c) for c in s.conds),
        lost=tuple(cond(c) for c in s.lost),
    )
    if s.version:
        s = _with(
            s,
            version=tuple(s.version[a] for a in ap),
            vdeletes=tuple(frozenset(anew[a] for a in d) for d in s.vdeletes),
            vapplies=tuple(
                _with(a, committed=frozenset(anew[x] for x in a.committed)) for a in s.vapplies
            ),
        )
        return _sorted_versions(s)
    return s


def _apply_order(a: m.VApply) -> tuple:
    return (a.copy, a.phase, a.decider, a.streamed, a.heard, a.uncertain, sorted(a.committed))


def _sorted_versions(s: State) -> State:
    """DELETEs and applies of the version in flight in a fixed order (only
    the AZs each DELETE committed to tells one from another)."""
    if len(s.vdeletes) > 1:
        order = tuple(sorted(s.vdeletes, key=sorted))
        if order != s.vdeletes:
            s = _with(s, vdeletes=order)
    if len(s.vapplies) > 1:
        applies = tuple(sorted(s.vapplies, key=_apply_order))
        if applies != s.vapplies:
            s = _with(s, vapplies=applies)
    return s


# -- the steps a state allows --------------------------------------------------------

Step = Callable[[State, Variant], State]


def _read(
    coordinator: int, check_at: tuple[int, ...], record_at: tuple[int, ...], hear: tuple[int, ...]
) -> Step:
    return lambda s, v: m.read(s, v, coordinator, check_at, record_at, hear)[0]


def actions(s: State, b: Bounds) -> Iterator[tuple[str, Step]]:
    """Every step the state allows within the bounds, with a label that says
    which (its arguments: what a trace prints)."""
    coords = range(m.COORDINATORS)
    clocks = range(len(_stamps(s)) + 1)  # every position among the stamps
    hears: list[tuple[int, ...]] = [m.ALL_AZS]
    if b.partial_reads:
        hears = [h for n in (1, 2, 3) for h in itertools.combinations(m.ALL_AZS, n)]

    # A majority matters only by its answer: one majority for each answer.
    by_answer = {(m.majority_check(s, at), m.majority_agrees(s, at)): at for at in m.MAJORITIES}
    checks = [(w, at) for (w, _), at in by_answer.items()]
    if s.used("creates") < b.creates and s.used("writes") < b.writes:
        # A PUT of a key the majority does not know (one it knows is a plain
        # write, above): tried as a create.
        for c, (w, at), clock in itertools.product(coords, checks, clocks):
            if w is None:
                for h in hears:
                    yield (
                        f"start_create(coordinator={c}, clock={clock}, check_at={at}, hear={h})",
                        lambda s, v, c=c, clock=clock, at=at, h=h: m.start_create(
                            s, v, c, clock, at, h
                        ),
                    )
    if s.used("replica_creates") < b.replica_creates:
        for c, (w, at), clock in itertools.product(coords, checks, clocks):
            if w is None:
                yield (
                    f"start_create(coordinator={c}, clock={clock}, check_at={at}, replica=True)",
                    lambda s, v, c=c, clock=clock, at=at: m.start_create(
                        s, v, c, clock, at, replica=True
                    ),
                )
    if s.used("writes") < b.writes and len(s.pending) < b.pending:
        kinds = (False, True) if s.used("deletes") < b.deletes else (False,)
        for c, (w, at), clock, rm in itertools.product(coords, checks, clocks, kinds):
            for h in hears if w is None else [m.ALL_AZS]:
                yield (
                    f"start_write(coordinator={c}, clock={clock}, check_at={at}, hear={h}"
                    + (", remove=True)" if rm else ")"),
                    lambda s, v, c=c, clock=clock, at=at, h=h, rm=rm: m.start_write(
                        s, v, c, clock, at, h, rm
                    ),
                )
    for i, w in enumerate(s.pending):
        for az in m.ALL_AZS:
            if az not in w.committed:
                # The clock matters only to a write stamped again: after the
                # last AZ answered, having met an older version above it.
                last = len(w.committed) == m.AZS - 1
                again = last and (
                    w.behind != NONE
                    or w.under != NONE
                    or m.older_above(s, az, w.stamp) is not None
                    or m.under_condition(s, az, w.stamp) is not None
                )
                for clock in clocks if again else [0]:
                    yield (
                        f"commit_to_az(which={i}, az={az}"
                        + (f", clock={clock})" if again else ")"),
                        lambda s, v, i=i, az=az, clock=clock: m.commit_to_az(s, i, az, v, clock),
                    )
        yield f"abandon(which={i})", lambda s, v, i=i: m.abandon(s, i)
    for i, w in enumerate(m._ready(s)):
        for wi in range(m.WITNESSES):
            if wi not in w.recorded:
                yield (
                    f"record(which={i}, witness={wi})",
                    lambda s, v, i=i, wi=wi: m.record(s, v, i, wi),
                )
        yield f"refence(which={i})", lambda s, v, i=i: m.refence(s, v, i)
    if any(len(w.recorded) * 2 > m.WITNESSES for w in s.pending):
        n = sum(len(w.recorded) * 2 > m.WITNESSES for w in s.pending)
        for i in range(n):
            yield f"acknowledge(which={i})", lambda s, v, i=i: m.acknowledge(s, i, v)

    for wi in range(m.WITNESSES):
        if s.used("witness_restarts") < b.witness_restarts:
            yield f"restart_witness(witness={wi})", lambda s, v, wi=wi: m.restart_witness(s, wi)
        if s.used("evictions") < b.evictions and s.witness[wi] is not None:
            yield f"evict(witness={wi})", lambda s, v, wi=wi: m.evict(s, wi)
        if s.used("other_key_evictions") < b.other_key_evictions:
            for clock in clocks:
                yield (
                    f"other_key_evicted(witness={wi}, clock={clock})",
                    lambda s, v, wi=wi, clock=clock: m.other_key_evicted(s, wi, clock),
                )
    if s.used("collections") < b.collections and m._newest_held(s) in s.removals:
        yield "collect_removal()", m.collect_removal  # the state itself when not enabled
    if s.retired != NONE:
        for az in m.ALL_AZS:
            for node in range(b.nodes_per_az):
                if s.nodes[az][node] == s.retired:
                    yield (
                        f"drop_removal(az={az}, node={node})",
                        lambda s, v, az=az, node=node: m.drop_removal(s, az, node),
                    )
    for c in coords:
        if s.cache[c] is not None:
            yield (
                f"restart_coordinator(coordinator={c})",
                lambda s, v, c=c: m.restart_coordinator(s, c),
            )
    for az in m.ALL_AZS:
        for node in range(b.nodes_per_az):
            if s.up[az][node] and s.used("node_crashes") < b.node_crashes:
                yield (
                    f"crash_node(az={az}, node={node})",
                    lambda s, v, az=az, node=node: m.crash_node(s, az, node),
                )
            if not s.up[az][node]:
                yield (
                    f"restart_node(az={az}, node={node})",
                    lambda s, v, az=az, node=node: m.restart_node(s, az, node),
                )
        if s.hinted[az]:
            yield f"hand_off(az={az})", lambda s, v, az=az: m.hand_off(s, az)

    if s.version:
        yield from _version_actions(s, b, hears)

    # Reads of the key's current record; with no write of it in the run
    # (the versions' runs), every one of them answers no record.
    key_reads = itertools.product(coords, checks, hears) if b.writes or b.conditionals else ()
    for c, (w, at), h in key_reads:
        # Where it records matters only when it finishes what it read.
        best = m.read_azs(s, True, h).best  # at least what one node an AZ gives
        finishes = (
            best is not None
            and best != m.NONE
            and (w is None or best > w or not m.majority_agrees(s, at))
        )
        for rec in m.MAJORITIES if finishes else m.MAJORITIES[:1]:
            yield (
                f"read(coordinator={c}, check_at={at}, record_at={rec}, hear={h})",
                _read(c, at, rec, h),
            )

    # Conditional writes.
    if s.used("conditionals") < b.conditionals:
        edits: tuple[bool, ...] = (False,)
        if s.used("edits") < b.edits:
            # Every conditional write an edit when the bounds say so.
            edits = (True,) if b.edits >= b.conditionals else (False, True)
        for c, clock, e in itertools.product(coords, clocks, edits):
            yield (
                f"start_conditional(coordinator={c}, clock={clock}"
                + (", edit=True)" if e else ")"),
                (lambda s, v, c=c, clock=clock, e=e: m.start_conditional(s, c, clock, edit=e)),
            )
        # A replication status expects what the first AZ's home holds, when
        # that is not what a read would give (behind it, or a try ahead).
        read = max(m.az_holds(s, az) for az in m.ALL_AZS)
        if s.up[0][0] and s.nodes[0][0] != read:
            for c, clock, e in itertools.product(coords, clocks, edits):
                yield (
                    f"start_conditional(coordinator={c}, clock={clock}, guess=True"
                    + (", edit=True)" if e else ")"),
                    (lambda s, v, c=c, clock=clock, e=e: m.start_conditional(s, c, clock, True, e)),
                )
    for i in range(len(m._waiting(s))):
        yield (
            f"conditional_at_first_az(which={i})",
            lambda s, v, i=i: m.conditional_at_first_az(s, v, i),
        )
    for i, cw in enumerate(m._going(s)):
        for az in range(1, m.AZS):
            if az in cw.others:
                continue
            last = len(cw.others) == m.AZS - 2
            for clock in clocks if last else [0]:
                yield (
                    f"conditional_at_other_az(which={i}, az={az}, clock={clock})",
                    lambda s, v, i=i, az=az, clock=clock: m.conditional_at_other_az(
                        s, i, az, clock, v
                    ),
                )
    for i in range(sum(cw.finishing for cw in s.conds)):
        for at in m.MAJORITIES:
            yield (
                f"conditional_acknowledged(which={i}, at={at})",
                lambda s, v, i=i, at=at: m.conditional_acknowledged(s, v, i, at),
            )
    for i in range(len(s.conds)):
        yield f"conditional_abandoned(which={i})", lambda s, v, i=i: m.conditional_abandoned(s, i)
    if b.resends:
        for i in range(sum(not cw.gone for cw in s.conds)):
            yield f"reply_lost(which={i})", lambda s, v, i=i: m.reply_lost(s, i)
        for i in range(len(m._lookable(s))):
            yield f"resend_look(which={i})", lambda s, v, i=i: m.resend_look(s, i)
        calls = len(s.lost) + sum(cw.gone for cw in s.conds)
        recs = m.MAJORITIES
        for i, c, (_, at), rec in itertools.product(range(calls), coords, checks, recs):
            yield (
                f"resend(which={i}, coordinator={c}, check_at={at}, record_at={rec})",
                lambda s, v, i=i, c=c, at=at, rec=rec: m.resend(s, v, i, c, at, rec),
            )


def _version_actions(
    s: State, b: Bounds, hears: list[tuple[int, ...]]
) -> Iterator[tuple[str, Step]]:
    """The steps of DELETEs of the version V, its reads (which change
    nothing: the checker checks them and goes on), and the tombstone
    collector's."""
    if s.used("version_deletes") < b.version_deletes:
        for h in hears:
            yield (
                f"delete_version(hear={h})",
                lambda s, v, h=h: m.delete_version(s, v, h),
            )
    for i, done in enumerate(s.vdeletes):
        for az in m.ALL_AZS:
            if az not in done:
                yield (
                    f"commit_version_removal(which={i}, az={az})",
                    lambda s, v, i=i, az=az: m.commit_version_removal(s, i, az),
                )
        yield f"abandon_version_delete(which={i})", lambda s, v, i=i: m.abandon_version_delete(s, i)
        if len(done) == m.AZS:
            yield (
                f"acknowledge_version_delete(which={i})",
                lambda s, v, i=i: m.acknowledge_version_delete(s, i),
            )
    yield from _apply_actions(s, b)
    for h in hears:
        yield f"read_version(hear={h})", lambda s, v, h=h: (m.read_version(s, v, h), s)[1]
    if all(all(up) for up in s.up):
        for az in m.ALL_AZS:
            for node in range(b.nodes_per_az):
                held = s.version[az][node]
                if m.is_copy(held):
                    yield (
                        f"finish_version_removal(az={az}, node={node})",
                        lambda s, v, az=az, node=node: m.finish_version_removal(s, az, node),
                    )
                elif held == m.REMOVED:
                    yield (
                        f"drop_version_marker(az={az}, node={node})",
                        lambda s, v, az=az, node=node: m.drop_version_marker(s, az, node),
                    )


def _apply_actions(s: State, b: Bounds) -> Iterator[tuple[str, Step]]:
    """The steps of applies of the replica version R: a start (its look),
    the first AZ's hearing and decision, the commits to the other AZs (or
    the write-backs of R found), the refused path's read, the
    acknowledgement, and the coordinator's death at any point."""
    if b.version_applies and not s.vcollected:
        targets: list[int | None] = [None]
        if b.streamed_bodies and b.nodes_per_az > 1:
            targets += range(b.nodes_per_az)
        for copy, t in itertools.product(range(1, b.version_applies + 1), targets):
            if copy not in s.vstarted:
                yield (
                    f"start_version_apply(copy={copy}"
                    + (f", target={t})" if t is not None else ")"),
                    lambda s, v, copy=copy, t=t: m.start_version_apply(s, copy, t),
                )
    for i, a in enumerate(s.vapplies):
        if a.phase == m.HEAR:
            yield (
                f"version_apply_hear(which={i})",
                lambda s, v, i=i: m.version_apply_hear(s, i),
            )
        elif a.phase == m.DECIDE:
            yield (
                f"version_apply_decide(which={i})",
                lambda s, v, i=i: m.version_apply_decide(s, v, i),
            )
        elif a.phase == m.REFUSED:
            yield (
                f"version_apply_refused(which={i})",
                lambda s, v, i=i: m.version_apply_refused(s, i),
            )
        else:
            for az in m.ALL_AZS:
                if az not in a.committed:
                    yield (
                        f"commit_version_apply(which={i}, az={az})",
                        lambda s, v, i=i, az=az: m.commit_version_apply(s, i, az),
                    )
            if len(a.committed) == m.AZS:
                yield (
                    f"acknowledge_version_apply(which={i})",
                    lambda s, v, i=i: m.acknowledge_version_apply(s, i),
                )
        yield (
            f"abandon_version_apply(which={i})",
            lambda s, v, i=i: m.abandon_version_apply(s, i),
        )


# -- the search --------------------------------------------------------------------------


@dataclass
class Result:
    bounds: Bounds
    variant: Variant
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    #: The violation's message and its shortest trace: (step, state after) pairs.
    violation: str | None = None
    trace: list[tuple[str, State]] = field(default_factory=list)

    def summary(self) -> str:
        what = f"VIOLATION: {self.violation}" if self.violation else "no violation"
        return (
            f"{what}; {self.states:,} states, {self.transitions:,} transitions, "
            f"depth {self.depth}, {self.seconds:.1f} s ({self.bounds.describe()})"
        )

    def format_trace(self) -> str:
        lines = [f"{len(self.trace)} steps to: {self.violation}"]
        lines += [
            f"  {i + 1:2}. {step}\n      {describe(st)}" for i, (step, st) in enumerate(self.trace)
        ]
        return "\n".join(lines)


def initial(bounds: Bounds) -> State:
    """The first state of a run: with DELETEs of a version, V on every
    home; with applies of one, R on no node."""
    versions = bounds.version_deletes > 0 or bounds.version_applies > 0
    return m.initial(
        bounds.nodes_per_az, versions, held=bounds.version_applies == 0, written=bounds.written
    )


def explore(bounds: Bounds = CI, variant: Variant = SAFE) -> Result:
    """Every state within ``bounds``, breadth first; stops at the first violation."""
    t0 = time.perf_counter()
    start = canonical(initial(bounds))
    parent: dict[State, tuple[State, str] | None] = {start: None}
    frontier = [start]
    res = Result(bounds, variant)

    def path(s: State) -> list[tuple[str, State]]:
        out: list[tuple[str, State]] = []
        while (p := parent[s]) is not None:
            out.append((p[1], s))
            s = p[0]
        return out[::-1]

    while frontier:
        nxt: list[State] = []
        for s in frontier:
            for label, step in actions(s, bounds):
                res.transitions += 1
                try:
                    t = step(s, variant)
                    m.check_invariants(t)
                except Violation as exc:
                    res.violation = str(exc)
                    res.trace = [*path(s), (label, s)]
                    res.depth += 1
                    res.states = len(parent)
                    res.seconds = time.perf_counter() - t0
                    return res
                if t is s:
                    continue
                t = canonical(t)
                if t not in parent:
                    parent[t] = (s, label)
                    nxt.append(t)
            if len(parent) > bounds.max_states:
                raise RuntimeError(f"more than {bounds.max_states:,} states: {bounds}")
        if nxt:
            res.depth += 1
        frontier = nxt
        if bounds.max_depth is not None and res.depth >= bounds.max_depth:
            break
    res.states = len(parent)
    res.seconds = time.perf_counter() - t0
    return res


def replay(trace: list[tuple[str, State]], bounds: Bounds, variant: Variant) -> None:
    """Run a trace's steps again from the initial state (each from the state
    the trace holds before it): raises the violation it ends in."""
    s = canonical(initial(bounds))
    for label, after in trace:
        step = dict(actions(s, bounds))[label]
        t = step(s, variant)
        m.check_invariants(t)
        s = canonical(t)
        if s != after and label != trace[-1][0]:
            raise AssertionError(f"the trace does not replay at {label}")


def _stamp(st: Stamp | None) -> str:
    return "-" if st is None else f"s{st.clock}"


def describe(s: State) -> str:
    """One line of a state, stamps by rank (s0: none; a floor just above
    its stamp has a +), the removals among them, the retired removal."""
    azs = " ".join(
        "/".join(
            ("" if up else "x") + _stamp(n) for n, up in zip(s.nodes[az], s.up[az], strict=True)
        )
        + ("h" if s.hinted[az] else "")
        for az in m.ALL_AZS
    )
    pend = ", ".join(
        f"{_stamp(w.stamp)}@c{w.coordinator}:az{''.join(map(str, sorted(w.committed)))}"
        f"w{''.join(map(str, sorted(w.recorded)))}"
        for w in s.pending
    )
    conds = ", ".join(
        f"call{c.call}:{_stamp(c.stamp)}>{_stamp(c.expect)}"
        f"{' tries=' + ','.join(map(_stamp, c.tries)) if c.tries else ''}"
        f"{' finishing' if c.finishing else ''}{' gone' if c.gone else ''}"
        f"{' looked' if c.looked else ''}"
        for c in s.conds
    )
    floors = " ".join(
        _stamp(f) + ("+" if above else "") for f, above in zip(s.floor, s.above, strict=True)
    )
    return (
        f"nodes[{azs}] witness[{' '.join(map(_stamp, s.witness))}] "
        f"floor[{floors}] inc{list(s.incarnation)} "
        f"cache[{' '.join(map(_stamp, s.cache))}] pending[{pend}]"
        + (f" conds[{conds}]" if s.conds else "")
        + f" acked={_stamp(s.acked)} observed={_stamp(s.observed)}"
        + (f" deletes[{' '.join(sorted(map(_stamp, s.removals)))}]" if s.removals else "")
        + (f" retired={_stamp(s.retired)}" if s.retired != NONE else "")
        + (_describe_version(s) if s.version else "")
    )


_PHASES = {m.HEAR: "hear", m.DECIDE: "decide", m.COMMIT: "commit", m.REFUSED: "refused"}
_HEARD = {m.HEARD_NONE: "", m.HEARD_HELD: " heard-held", m.UNHEARD: " unheard"}


def _describe_version(s: State) -> str:
    """The version on each node (V: held, or cN: copy N of R; r: its
    removal; -: no record), the DELETEs in flight by the AZs they committed
    to, whether one was acknowledged, and the applies of R in flight (copy,
    phase, deciding node, AZs taken)."""

    def mark(x: int) -> str:
        if x == m.NO_COPY:
            return "-"
        if x == m.REMOVED:
            return "r"
        return f"c{x}" if s.replica_version else "V"

    azs = " ".join("/".join(map(mark, held)) for held in s.version)
    tries = ", ".join("az" + "".join(map(str, sorted(d))) for d in s.vdeletes)
    out = f" version[{azs}] vdeletes[{tries}]" + (" vdeleted" if s.vdeleted else "")
    if not s.replica_version:
        return out
    applies = ", ".join(
        f"c{a.copy}:"
        + (
            "spread"
            if a.phase == m.SPREAD
            else f"{_PHASES[a.phase]}@n{a.decider}{_HEARD[a.heard]}"
            + (" streamed" if a.streamed else "")
            + (" uncertain" if a.uncertain else "")
        )
        + (" az" + "".join(map(str, sorted(a.committed))) if a.committed else "")
        for a in s.vapplies
    )
    return (
        out
        + f" applies[{applies}]"
        + (" acked" if s.vacked else "")
        + (" collected" if s.vcollected else "")
    )
